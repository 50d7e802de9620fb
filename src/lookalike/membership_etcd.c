/* The etcd membership source (design in lookalike.h, section Cluster): the nodes registered
 * under /lookalike/nodes/, read through src/cluster's directory at every probe round. */
#include "cluster/cluster.h"
#include "lookalike/lookalike.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    lookalike_membership_t base; /* first: the interface */
    cluster_directory_t *dir;
    lookalike_membership_t *fallback; /* owned; NULL for none */
    char self[LOOKALIKE_NODE_NAME_MAX + 1];
    core_log *log; /* borrowed */
    int answered;  /* etcd answered at least once */
    int stale;     /* the last list call could not read etcd */
} etcd_src_t;

static int etcd_list(lookalike_membership_t *m, lookalike_member_t **out, size_t *n, char *err, size_t errlen)
{
    etcd_src_t *s = (etcd_src_t *)m;
    cluster_dir_entry_t *e = NULL;
    size_t ne = 0;
    bool stale = false;
    char why[512] = "";
    *out = NULL;
    *n = 0;
    int rc = cluster_directory_list(s->dir, &e, &ne, &stale, why, sizeof why);
    if (rc != 0) {
        if (s->fallback && !s->answered)
            return s->fallback->list(s->fallback, out, n, err, errlen);
        snprintf(err, errlen, "%s", why);
        return rc == CORE_ENOMEM ? LOOKALIKE_ENOMEM : LOOKALIKE_EAGAIN;
    }
    /* One line when an outage starts and one when it ends, not one per probe round. */
    if (stale && !s->stale)
        core_log_warn(s->log, "cluster", "membership (etcd): %s; keeping the last list of %zu members", why,
                      ne);
    else if (!stale && s->stale)
        core_log_info(s->log, "cluster", "membership (etcd): etcd answers again (%zu members)", ne);
    s->stale = stale;
    s->answered = 1;
    if (ne && !(*out = calloc(ne, sizeof **out))) {
        free(e);
        snprintf(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    for (size_t i = 0; i < ne; i++) {
        lookalike_member_t *o = &(*out)[*n];
        if (strcmp(e[i].name, s->self) == 0 || !lookalike_node_name_valid(e[i].name) ||
            !lookalike_node_url_parse(e[i].url, strlen(e[i].url), o->url))
            continue;
        snprintf(o->name, sizeof o->name, "%s", e[i].name);
        (*n)++;
    }
    free(e);
    return 0;
}

static void etcd_free(lookalike_membership_t *m)
{
    etcd_src_t *s = (etcd_src_t *)m;
    if (!s)
        return;
    cluster_directory_free(s->dir);
    if (s->fallback)
        s->fallback->free(s->fallback);
    free(s);
}

lookalike_membership_t *lookalike_membership_etcd(const char *endpoints, const char *self,
                                                  lookalike_membership_t *fallback, core_log *log, char *err,
                                                  size_t errlen)
{
    etcd_src_t *s = calloc(1, sizeof *s);
    if (!s) {
        if (fallback)
            fallback->free(fallback);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.kind = "etcd";
    s->base.list = etcd_list;
    s->base.free = etcd_free;
    s->fallback = fallback;
    s->log = log;
    snprintf(s->self, sizeof s->self, "%s", self ? self : "");
    /* A probe round waits for this read: short, so an unreachable etcd delays it little. */
    if (!(s->dir = cluster_directory_new(endpoints, LOOKALIKE_ETCD_PREFIX, 1000, err, errlen))) {
        etcd_free(&s->base);
        return NULL;
    }
    return &s->base;
}
