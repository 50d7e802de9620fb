/* A node's registration in etcd: one thread that holds KEY under a lease, renews the lease
 * every ttl/3 s, and starts over (new lease, key put again) whenever the lease is lost. */
#include "cluster/cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cluster_member {
    char *endpoints, *key, *value; /* owned copies of the options */
    int ttl_s;
    core_log *log;        /* borrowed */
    cluster_etcd_t *etcd; /* used by the thread only (and by stop after the join) */
    int64_t lease;        /* 0 when we hold none */
    atomic_bool registered;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping; /* under mu */
};

/* Sleeps up to ms unless stop is asked; true when stopping. */
static bool wait_or_stop(cluster_member_t *m, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&m->mu);
    while (!m->stopping && pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT) {
    }
    bool stopping = m->stopping;
    pthread_mutex_unlock(&m->mu);
    return stopping;
}

/* Records a change of state, logging only transitions so that an etcd outage costs one line. */
static void set_registered(cluster_member_t *m, bool now, const char *why)
{
    bool was = atomic_exchange(&m->registered, now);
    if (was == now || !m->log)
        return;
    if (now)
        core_log_info(m->log, "member", "registered %s in etcd (lease %lld, ttl %d s)", m->key,
                      (long long)m->lease, m->ttl_s);
    else
        core_log_warn(m->log, "member", "%s is not registered in etcd: %s", m->key, why);
}

static void *member_main(void *arg)
{
    cluster_member_t *m = arg;
    char err[512];
    for (;;) {
        int rc;
        if (m->lease == 0) {
            rc = cluster_etcd_lease_grant(m->etcd, m->ttl_s, &m->lease, err, sizeof err);
            if (rc == 0 && (rc = cluster_etcd_put(m->etcd, m->key, m->value, m->lease, err, sizeof err)) != 0)
                m->lease = 0;
        } else {
            int ttl_left = 0;
            rc = cluster_etcd_lease_keepalive(m->etcd, m->lease, &ttl_left, err, sizeof err);
            if (rc == 0 && ttl_left == 0) {
                /* Expired while etcd was out of reach (or etcd lost its data): start over now. */
                snprintf(err, sizeof err, "lease %lld expired", (long long)m->lease);
                m->lease = 0;
                set_registered(m, false, err);
                continue;
            }
        }
        set_registered(m, rc == 0, err);
        /* Renew three times per ttl; retry every second while etcd cannot be reached. */
        int ms = rc == 0 ? m->ttl_s * 1000 / 3 : 1000;
        if (wait_or_stop(m, ms))
            return NULL;
    }
}

cluster_member_t *cluster_member_start(const cluster_member_opts_t *o, char *err, size_t errlen)
{
    if (!o->key || !*o->key || !o->value || !o->endpoints) {
        snprintf(err, errlen, "membership needs etcd endpoints, a key and a value");
        return NULL;
    }
    if (o->ttl_s < 2 || o->ttl_s > 3600) {
        snprintf(err, errlen, "membership ttl must be 2..3600 seconds, not %d", o->ttl_s);
        return NULL;
    }
    cluster_member_t *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->ttl_s = o->ttl_s;
    m->log = o->log;
    atomic_init(&m->registered, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->mu, NULL);
    /* Each request may take this long per endpoint; keep a renewal well inside the ttl. */
    int timeout_ms = m->ttl_s * 1000 / 3 < 2000 ? m->ttl_s * 1000 / 3 : 2000;
    if (!(m->endpoints = strdup(o->endpoints)) || !(m->key = strdup(o->key)) ||
        !(m->value = strdup(o->value))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(m->etcd = cluster_etcd_new(m->endpoints, timeout_ms, err, errlen)))
        goto fail;
    int rc = pthread_create(&m->thread, NULL, member_main, m);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the membership thread: %s", strerror(rc));
        goto fail;
    }
    return m;
fail:
    cluster_etcd_free(m->etcd);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m->endpoints);
    free(m->key);
    free(m->value);
    free(m);
    return NULL;
}

bool cluster_member_registered(cluster_member_t *m)
{
    return atomic_load(&m->registered);
}

void cluster_member_stop(cluster_member_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    if (m->lease != 0) {
        char err[512];
        if (cluster_etcd_lease_revoke(m->etcd, m->lease, err, sizeof err) != 0 && m->log)
            core_log_warn(m->log, "member", "could not revoke lease %lld (%s); %s goes when it expires",
                          (long long)m->lease, err, m->key);
        else if (m->log)
            core_log_info(m->log, "member", "left: lease %lld revoked, %s deleted", (long long)m->lease,
                          m->key);
    }
    cluster_etcd_free(m->etcd);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m->endpoints);
    free(m->key);
    free(m->value);
    free(m);
}
