/* Arena, worker pool and logger. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static int cleanups;
static void count_cleanup(void *p)
{
    (void)p;
    cleanups++;
}

Test(arena, alloc_cap_and_cleanups)
{
    core_arena *a = core_arena_new(10000);
    char *s = core_arena_printf(a, "%s-%d", "x", 42);
    cr_assert_str_eq(s, "x-42");
    void *p = core_arena_alloc(a, 3);
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert_null(core_arena_alloc(a, 20000), "past the cap");
    void *big = core_arena_alloc(a, 8000);
    cr_assert_not_null(big, "a one-off block larger than the block size");
    memset(big, 1, 8000);
    cr_assert_null(core_arena_alloc(a, 2000));
    cleanups = 0;
    core_arena_defer(a, count_cleanup, NULL);
    core_arena_defer(a, count_cleanup, NULL);
    core_arena_free(a);
    cr_assert_eq(cleanups, 2);
}

typedef struct job_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool release;
    atomic_int done;
} job_state;

static void blocking_job(void *ud)
{
    job_state *st = ud;
    pthread_mutex_lock(&st->mu);
    while (!st->release)
        pthread_cond_wait(&st->cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
    atomic_fetch_add(&st->done, 1);
}

Test(pool, bounded_queue_refuses_when_full_and_drains_on_stop)
{
    char err[128];
    job_state st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
    core_pool *p = core_pool_new(1, 2, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(core_pool_submit(p, blocking_job, &st), 0);
    /* Wait until the worker holds the first job, so the queue is empty again. */
    while (core_pool_queued(p) != 0)
        usleep(1000);
    cr_assert_eq(core_pool_submit(p, blocking_job, &st), 0);
    cr_assert_eq(core_pool_submit(p, blocking_job, &st), 0);
    cr_assert_eq(core_pool_submit(p, blocking_job, &st), CORE_EFULL);
    cr_assert_eq(core_pool_queued(p), 2);
    pthread_mutex_lock(&st.mu);
    st.release = true;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
    core_pool_stop(p);
    cr_assert_eq(atomic_load(&st.done), 3);
    cr_assert_eq(core_pool_submit(p, blocking_job, &st), CORE_EFULL, "stopped pools take nothing");
    core_pool_free(p);
}

Test(log, json_lines_and_debug_switch)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    core_log *log = core_log_new(fds[1], CORE_LOG_INFO, "pool");
    cr_assert(core_log_enabled(log, CORE_LOG_DEBUG, "pool"));
    cr_assert_not(core_log_enabled(log, CORE_LOG_DEBUG, "http"));
    json_t *extra = json_pack("{s:s,s:i}", "request_id", "abc", "status", 200);
    core_log_json(log, CORE_LOG_INFO, "http", extra, "hello %d", 7);
    core_log_debug(log, "http", "not shown");
    core_log_debug(log, "pool", "shown");
    json_decref(extra);
    core_log_free(log);
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    cr_assert_not_null(nl);
    *nl = '\0';
    json_error_t je;
    json_t *line = json_loads(buf, 0, &je);
    cr_assert_not_null(line, "%s", buf);
    cr_assert_str_eq(json_string_value(json_object_get(line, "msg")), "hello 7");
    cr_assert_str_eq(json_string_value(json_object_get(line, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(line, "request_id")), "abc");
    cr_assert_eq(json_integer_value(json_object_get(line, "status")), 200);
    cr_assert_not_null(json_object_get(line, "time"));
    json_decref(line);
    cr_assert(strstr(nl + 1, "\"shown\""));
    cr_assert_null(strstr(nl + 1, "not shown"));
    core_log_level lvl;
    cr_assert_eq(core_log_level_parse("WARN", &lvl), 0);
    cr_assert_eq(lvl, CORE_LOG_WARN);
    cr_assert_eq(core_log_level_parse("loud", &lvl), CORE_EINVAL);
}

Test(static, content_types)
{
    cr_assert_str_eq(core_static_content_type("a/b.HTML"), "text/html; charset=utf-8");
    cr_assert_str_eq(core_static_content_type("x.png"), "image/png");
    cr_assert_str_eq(core_static_content_type("dir.d/noext"), "application/octet-stream");
}
