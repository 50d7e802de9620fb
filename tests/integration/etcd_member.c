/* Helper of etcd_member.sh.
 *
 *   etcd_member register ENDPOINTS KEY VALUE TTL
 *     Registers KEY = VALUE under a TTL-second lease (cluster_member_start) and keeps it alive
 *     until SIGTERM or SIGINT, then leaves cleanly (cluster_member_stop). Prints "registered"
 *     each time it becomes registered and "unregistered" each time it stops being so, polling
 *     every 50 ms, and "left" on the way out.
 *   etcd_member list ENDPOINTS PREFIX
 *     Prints "KEY VALUE" for each key under PREFIX that has a lease, one per line. */
#include "cluster/cluster.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int print_kv(void *ud, const char *key, const char *value, int64_t lease)
{
    (void)ud;
    if (lease != 0)
        printf("%s %s\n", key, value);
    return 0;
}

static int cmd_register(char **argv)
{
    char err[512];
    core_log *log = core_log_new(2, CORE_LOG_INFO, NULL);
    cluster_member_opts_t o = {
        .endpoints = argv[0], .key = argv[1], .value = argv[2], .ttl_s = atoi(argv[3]), .log = log};
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    cluster_member_t *m = cluster_member_start(&o, err, sizeof err);
    if (!m) {
        fprintf(stderr, "etcd_member: %s\n", err);
        core_log_free(log);
        return 2;
    }
    bool was = false;
    const struct timespec tick = {0, 50 * 1000 * 1000};
    while (!stop) {
        bool now = cluster_member_registered(m);
        if (now != was) {
            printf("%s\n", now ? "registered" : "unregistered");
            fflush(stdout);
            was = now;
        }
        nanosleep(&tick, NULL);
    }
    cluster_member_stop(m);
    printf("left\n");
    core_log_free(log);
    return 0;
}

static int cmd_list(char **argv)
{
    char err[512];
    cluster_etcd_t *e = cluster_etcd_new(argv[0], 2000, err, sizeof err);
    if (!e) {
        fprintf(stderr, "etcd_member: %s\n", err);
        return 2;
    }
    int rc = cluster_etcd_get_prefix(e, argv[1], print_kv, NULL, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "etcd_member: %s\n", err);
    cluster_etcd_free(e);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "register") == 0)
        return cmd_register(argv + 2);
    if (argc == 4 && strcmp(argv[1], "list") == 0)
        return cmd_list(argv + 2);
    fprintf(stderr, "usage: etcd_member register ENDPOINTS KEY VALUE TTL | list ENDPOINTS PREFIX\n");
    return 2;
}
