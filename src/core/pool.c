/* Worker pool: a fixed ring of waiting jobs guarded by one mutex. The ring's size is the
 * admission limit; a full ring refuses work instead of growing. */
#include "core/core.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct pool_job {
    core_pool_fn fn;
    void *ud;
} pool_job;

struct core_pool {
    pthread_mutex_t mu;
    pthread_cond_t has_work;
    pool_job *ring;
    int cap, head, count;
    bool stopping;
    bool joined;
    int nthreads;
    pthread_t *threads;
};

static void *worker_main(void *arg)
{
    core_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->stopping)
            pthread_cond_wait(&p->has_work, &p->mu);
        if (p->count == 0)
            break; /* stopping and drained */
        pool_job job = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        pthread_mutex_unlock(&p->mu);
        job.fn(job.ud);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

core_pool *core_pool_new(int threads, int queue_cap, char *err, size_t errlen)
{
    if (threads < 1 || queue_cap < 1) {
        snprintf(err, errlen, "worker pool needs at least 1 thread and a queue of at least 1");
        return NULL;
    }
    core_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->has_work, NULL);
    p->cap = queue_cap;
    p->ring = calloc((size_t)queue_cap, sizeof *p->ring);
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->ring || !p->threads) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Workers never take signals: the program's main thread waits for them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(rc));
            goto fail;
        }
        p->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p;
fail:
    core_pool_free(p);
    return NULL;
}

void core_pool_stop(core_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    bool join = !p->joined;
    p->joined = true;
    pthread_cond_broadcast(&p->has_work);
    pthread_mutex_unlock(&p->mu);
    if (join)
        for (int i = 0; i < p->nthreads; i++)
            pthread_join(p->threads[i], NULL);
}

void core_pool_free(core_pool *p)
{
    if (!p)
        return;
    core_pool_stop(p);
    pthread_cond_destroy(&p->has_work);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->ring);
    free(p);
}

int core_pool_submit(core_pool *p, core_pool_fn fn, void *ud)
{
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->count == p->cap) {
        pthread_mutex_unlock(&p->mu);
        return CORE_EFULL;
    }
    p->ring[(p->head + p->count) % p->cap] = (pool_job){fn, ud};
    p->count++;
    pthread_cond_signal(&p->has_work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int core_pool_queued(core_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->count;
    pthread_mutex_unlock(&p->mu);
    return n;
}
