/* The members listed under a prefix in etcd, as readers of the registrations (member.c) see
 * them: one range read per call, and the last list that was read kept for when etcd cannot be
 * reached, so that a cluster keeps working on its last known membership. */
#include "cluster/cluster.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct cluster_directory {
    cluster_etcd_t *etcd;
    char *prefix;
    cluster_dir_entry_t *last; /* the last list read from etcd; NULL until one was */
    size_t nlast;
    bool have_last;
};

typedef struct {
    size_t plen;
    cluster_dir_entry_t *v;
    size_t n;
} collect_t;

/* Keeps KEY=VALUE when it is a registration: under a lease, a name of 1..CLUSTER_DIR_NAME_MAX
 * bytes without '/', and a JSON object value with a string "url" that fits. Anything else under
 * the prefix (written by hand, by another program) is not a member and is passed over. */
static int collect(void *ud, const char *key, const char *value, int64_t lease)
{
    collect_t *c = ud;
    const char *name = key + c->plen;
    size_t nl = strlen(name);
    if (lease == 0 || nl == 0 || nl > CLUSTER_DIR_NAME_MAX || strchr(name, '/'))
        return 0;
    json_t *v = json_loads(value, 0, NULL);
    const char *url = json_string_value(json_object_get(v, "url"));
    if (url && strlen(url) <= CLUSTER_DIR_URL_MAX) {
        if (c->n == CLUSTER_DIR_MAX) {
            json_decref(v);
            return CORE_ETOOLARGE;
        }
        memcpy(c->v[c->n].name, name, nl + 1);
        snprintf(c->v[c->n].url, sizeof c->v[c->n].url, "%s", url);
        c->n++;
    }
    json_decref(v);
    return 0;
}

cluster_directory_t *cluster_directory_new(const char *endpoints, const char *prefix, int timeout_ms,
                                           char *err, size_t errlen)
{
    cluster_directory_t *d = calloc(1, sizeof *d);
    if (!d || !(d->prefix = strdup(prefix ? prefix : ""))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!*d->prefix) {
        snprintf(err, errlen, "a directory needs a key prefix");
        goto fail;
    }
    if (!(d->etcd = cluster_etcd_new(endpoints, timeout_ms, err, errlen)))
        goto fail;
    return d;
fail:
    cluster_directory_free(d);
    return NULL;
}

void cluster_directory_free(cluster_directory_t *d)
{
    if (!d)
        return;
    cluster_etcd_free(d->etcd);
    free(d->prefix);
    free(d->last);
    free(d);
}

/* A malloc'd copy of n entries into *out (NULL when n is 0). */
static int copy_out(const cluster_dir_entry_t *v, size_t n, cluster_dir_entry_t **out, size_t *nout,
                    char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    if (!n)
        return 0;
    if (!(*out = malloc(n * sizeof **out))) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    memcpy(*out, v, n * sizeof **out);
    *nout = n;
    return 0;
}

int cluster_directory_list(cluster_directory_t *d, cluster_dir_entry_t **out, size_t *n, bool *stale,
                           char *err, size_t errlen)
{
    collect_t c = {.plen = strlen(d->prefix)};
    *stale = false;
    if (!(c.v = malloc(CLUSTER_DIR_MAX * sizeof *c.v))) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    int rc = cluster_etcd_get_prefix(d->etcd, d->prefix, collect, &c, err, errlen);
    if (rc == CORE_ETOOLARGE)
        snprintf(err, errlen, "directory %s: too large (more than %d members)", d->prefix, CLUSTER_DIR_MAX);
    if (rc == 0) {
        free(d->last);
        d->last = c.v;
        d->nlast = c.n;
        d->have_last = true;
        return copy_out(d->last, d->nlast, out, n, err, errlen);
    }
    free(c.v);
    if (!d->have_last)
        return rc;
    *stale = true;
    return copy_out(d->last, d->nlast, out, n, err, errlen) == 0 ? 0 : CORE_ENOMEM;
}
