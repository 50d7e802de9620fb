/* Raw echo over an upgraded connection (see example.h). */
#include "example.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct example_echo {
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int active;
    _Atomic bool stopping;
};

typedef struct echo_conn {
    example_echo *e;
    int fd;
    core_http_upgrade *up;
} echo_conn;

example_echo *example_echo_new(void)
{
    example_echo *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->idle, NULL);
    return e;
}

void example_echo_shutdown(void *ud)
{
    example_echo *e = ud;
    atomic_store(&e->stopping, true);
    pthread_mutex_lock(&e->mu);
    while (e->active > 0)
        pthread_cond_wait(&e->idle, &e->mu);
    pthread_mutex_unlock(&e->mu);
}

void example_echo_free(example_echo *e)
{
    if (!e)
        return;
    pthread_cond_destroy(&e->idle);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, 100);
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void *echo_main(void *arg)
{
    echo_conn *c = arg;
    char buf[4096];
    /* Poll with a short timeout so a server shutdown is noticed within 100 ms. */
    while (!atomic_load(&c->e->stopping)) {
        struct pollfd pf = {c->fd, POLLIN, 0};
        int r = poll(&pf, 1, 100);
        if (r == 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        ssize_t n = r > 0 ? recv(c->fd, buf, sizeof buf, 0) : -1;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0 || !write_all(c->fd, buf, (size_t)n))
            break;
    }
    example_echo *e = c->e;
    core_http_upgrade_close(c->up);
    free(c);
    pthread_mutex_lock(&e->mu);
    if (--e->active == 0)
        pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static void on_upgraded(void *ud, int fd, const char *extra, size_t extra_len, core_http_upgrade *up)
{
    example_echo *e = ud;
    echo_conn *c = calloc(1, sizeof *c);
    if (!c || (extra_len && !write_all(fd, extra, extra_len))) {
        free(c);
        core_http_upgrade_close(up);
        return;
    }
    c->e = e;
    c->fd = fd;
    c->up = up;
    pthread_mutex_lock(&e->mu);
    e->active++;
    pthread_mutex_unlock(&e->mu);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, echo_main, c) != 0) {
        pthread_mutex_lock(&e->mu);
        e->active--;
        pthread_mutex_unlock(&e->mu);
        free(c);
        core_http_upgrade_close(up);
    }
    pthread_attr_destroy(&attr);
}

int example_echo_handler(core_http_req *req, void *ud)
{
    const char *upgrade = core_http_req_header(req, "Upgrade");
    if (!upgrade || strcasecmp(upgrade, "x-echo") != 0)
        return core_http_reply_error(req, 426, "upgrade_required", "send Upgrade: x-echo");
    static const char *const headers[] = {"Upgrade", "x-echo", NULL};
    return core_http_respond_upgrade(req, headers, on_upgraded, ud);
}
