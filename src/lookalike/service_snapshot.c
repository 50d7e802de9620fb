/* The node snapshot of the service: the records of every collection as of applied_seq,
 * written with the vector indexes made durable first, and loaded at start in place of a
 * rebuild from the catalogue (file format in lookalike.h, section node snapshot). */
#include "lookalike/service_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct {
    lookalike_svc_t *s;
    svc_coll_t *c; /* the collection whose records come now */
    float *vec;    /* scratch for a vector read back */
    uint64_t seq, records, restored, reembedded;
    int applied; /* records went into the tables: a failure must clear them */
    char *err;
    size_t errlen;
} load_t;

/* Visitor returns: 1 stops the load because the snapshot does not fit (message in err), -1
 * stops it on a failure. */
static int on_header(void *ud, uint64_t seq, const char *shards, uint32_t ncollections)
{
    load_t *l = ud;
    char held[1024];
    (void)ncollections;
    lookalike_shard_set_format(&l->s->held, held, sizeof held);
    if (strcmp(shards, held) != 0) {
        lookalike_errf(l->err, l->errlen, "it was made for shards \"%s\" and this node holds \"%s\"", shards,
                       held);
        return 1;
    }
    if (seq > atomic_load(&l->s->catalog_seq)) {
        lookalike_errf(l->err, l->errlen,
                       "it is at seq %" PRIu64 " and the catalogue only at %" PRIu64
                       " (another or a restored database?)",
                       seq, atomic_load(&l->s->catalog_seq));
        return 1;
    }
    l->seq = seq;
    return 0;
}

static int on_collection(void *ud, const char *name, uint32_t nshards, uint32_t key, uint64_t nrecords)
{
    load_t *l = ud;
    (void)nrecords;
    l->c = svc_coll_find(l->s, name);
    if (!l->c || l->c->nshards != nshards || l->c->shard_key != (lookalike_shard_key_t)key) {
        lookalike_errf(l->err, l->errlen, "collection %s is not in the catalogue as the snapshot has it",
                       name);
        return -1;
    }
    return 0;
}

static int on_record(void *ud, uint64_t doc_id, const char *json, size_t len)
{
    load_t *l = ud;
    lookalike_product_t p;
    char e[512];
    if (lookalike_product_parse(json, len, LOOKALIKE_PRODUCT_STORED, &p, e, sizeof e) != 0) {
        lookalike_errf(l->err, l->errlen, "record of doc %" PRIu64 ": %s", doc_id, e);
        return -1;
    }
    p.doc_id = doc_id;
    svc_shard_t *u = l->c->shards[svc_shard_of(l->c, &p)];
    const float *v = NULL;
    int rc = 0;
    if (!u) {
        lookalike_errf(l->err, l->errlen, "product %s is in a shard this node does not hold", p.id);
        rc = -1;
    } else if (!vindex_contains(u->vx, doc_id)) {
        /* The vector index was made durable before the snapshot was written; one that lacks
         * the vector was replaced or damaged since: read it back. */
        int got = svc_stored_vector(l->s, &p, l->vec, e, sizeof e);
        if (got)
            v = l->vec;
        l->restored += got == 1;
        l->reembedded += got == 2;
        if (!got && l->s->progress)
            fprintf(l->s->progress, "lookalike: product %s: not indexed: %s\n", p.id, e);
    }
    l->applied = 1;
    if (rc == 0 && svc_coll_apply(l->c, &p, v, e, sizeof e) != 0) {
        lookalike_errf(l->err, l->errlen, "product %s: %s", p.id, e);
        rc = -1;
    }
    lookalike_product_release(&p);
    l->records += rc == 0;
    return rc;
}

int svc_snapshot_load(lookalike_svc_t *s, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/node.snap", s->data_dir);
    load_t l = {.s = s, .err = err, .errlen = errlen};
    static const lookalike_snap_visitor_t v = {on_header, on_collection, on_record};
    if (!(l.vec = malloc(s->dim * sizeof *l.vec))) {
        lookalike_errf(err, errlen, "out of memory");
        return -1;
    }
    double t0 = mono_s();
    err[0] = '\0';
    pthread_mutex_lock(&s->write_mu);
    int rc = lookalike_snap_load(path, &v, &l, err, errlen);
    pthread_mutex_unlock(&s->write_mu);
    free(l.vec);
    if (rc == LOOKALIKE_ENOTFOUND) {
        err[0] = '\0';
        return 0;
    }
    if (rc != 0)
        return l.applied ? -1 : 0;
    atomic_store(&s->applied_seq, l.seq);
    atomic_store(&s->snapshot_seq, l.seq);
    if (s->progress)
        fprintf(s->progress,
                "lookalike: loaded %" PRIu64 " products from the snapshot at seq %" PRIu64 " (%" PRIu64
                " vectors read from the catalogue, %" PRIu64 " photos embedded again, %.3f s)\n",
                l.records, l.seq, l.restored, l.reembedded, mono_s() - t0);
    return 1;
}

int svc_snapshot_write(lookalike_svc_t *s, char *err, size_t errlen)
{
    char path[4096], held[1024];
    snprintf(path, sizeof path, "%s/node.snap", s->data_dir);
    lookalike_shard_set_format(&s->held, held, sizeof held);
    double t0 = mono_s();
    int rc = 0;
    uint64_t total = 0;
    pthread_mutex_lock(&s->write_mu);
    uint64_t seq = atomic_load(&s->applied_seq);
    pthread_rwlock_rdlock(&s->colls_lock);
    /* The vectors first: a snapshot must never be ahead of the vector indexes. */
    for (size_t i = 0; rc == 0 && i < s->ncolls; i++)
        for (uint32_t u = 0; rc == 0 && u < s->colls[i]->nshards; u++) {
            svc_shard_t *sh = s->colls[i]->shards[u];
            char verr[512];
            if (sh && vindex_sync(sh->vx, verr, sizeof verr) != 0) {
                lookalike_errf(err, errlen, "collection %s shard %u: %s", s->colls[i]->info.name, u, verr);
                rc = LOOKALIKE_EIO;
            }
        }
    lookalike_snap_writer_t *w =
        rc ? NULL : lookalike_snap_begin(path, seq, held, (uint32_t)s->ncolls, err, errlen);
    if (!rc && !w)
        rc = LOOKALIKE_EIO;
    for (size_t i = 0; rc == 0 && i < s->ncolls; i++) {
        svc_coll_t *c = s->colls[i];
        uint64_t n = 0;
        pthread_rwlock_rdlock(&c->lock);
        for (size_t d = 0; d < c->by_doc_cap; d++)
            n += c->by_doc[d] != NULL;
        rc = lookalike_snap_collection(w, c->info.name, c->nshards, (uint32_t)c->shard_key, n, err, errlen);
        for (size_t d = 0; rc == 0 && d < c->by_doc_cap; d++) {
            const svc_rec_t *r = c->by_doc[d];
            if (r)
                rc = lookalike_snap_record(w, r->doc_id, r->json, strlen(r->json), err, errlen);
        }
        pthread_rwlock_unlock(&c->lock);
        total += n;
    }
    pthread_rwlock_unlock(&s->colls_lock);
    if (rc == 0) {
        rc = lookalike_snap_commit(w, err, errlen);
        w = NULL;
    }
    lookalike_snap_abort(w);
    if (rc == 0)
        atomic_store(&s->snapshot_seq, seq);
    pthread_mutex_unlock(&s->write_mu);
    if (rc == 0 && s->progress)
        fprintf(s->progress, "lookalike: snapshot at seq %" PRIu64 ": %" PRIu64 " products (%.3f s)\n", seq,
                total, mono_s() - t0);
    return rc;
}
