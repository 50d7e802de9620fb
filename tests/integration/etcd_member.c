/* Helper of etcd_member.sh.
 *
 *   etcd_member register ENDPOINTS KEY VALUE TTL
 *     Registers KEY = VALUE under a TTL-second lease (cluster_member_start) and keeps it alive
 *     until SIGTERM or SIGINT, then leaves cleanly (cluster_member_stop). Prints "registered"
 *     each time it becomes registered and "unregistered" each time it stops being so, polling
 *     every 50 ms, and "left" on the way out.
 *   etcd_member list ENDPOINTS PREFIX
 *     Prints "KEY VALUE" for each key under PREFIX that has a lease, one per line.
 *   etcd_member watch ENDPOINTS PREFIX
 *     Reads the directory under PREFIX (cluster_directory_list) every 100 ms until SIGTERM and
 *     prints a line "fresh|stale NAME=URL ..." each time that line would change, so a test sees
 *     who is listed and whether the list came from etcd or from the last one read. */
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

static int cmd_watch(char **argv)
{
    char err[512], line[8192], last[8192] = "";
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    cluster_directory_t *d = cluster_directory_new(argv[0], argv[1], 500, err, sizeof err);
    if (!d) {
        fprintf(stderr, "etcd_member: %s\n", err);
        return 2;
    }
    const struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop) {
        cluster_dir_entry_t *e = NULL;
        size_t n = 0;
        bool stale = false;
        int rc = cluster_directory_list(d, &e, &n, &stale, err, sizeof err);
        if (rc != 0) {
            snprintf(line, sizeof line, "error");
        } else {
            size_t len = (size_t)snprintf(line, sizeof line, "%s", stale ? "stale" : "fresh");
            for (size_t i = 0; i < n && len < sizeof line; i++)
                len += (size_t)snprintf(line + len, sizeof line - len, " %s=%s", e[i].name, e[i].url);
        }
        free(e);
        if (strcmp(line, last) != 0) {
            printf("%s\n", line);
            snprintf(last, sizeof last, "%s", line);
        }
        nanosleep(&tick, NULL);
    }
    cluster_directory_free(d);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "register") == 0)
        return cmd_register(argv + 2);
    if (argc == 4 && strcmp(argv[1], "list") == 0)
        return cmd_list(argv + 2);
    if (argc == 4 && strcmp(argv[1], "watch") == 0)
        return cmd_watch(argv + 2);
    fprintf(stderr, "usage: etcd_member register ENDPOINTS KEY VALUE TTL | list ENDPOINTS PREFIX | watch "
                    "ENDPOINTS PREFIX\n");
    return 2;
}
