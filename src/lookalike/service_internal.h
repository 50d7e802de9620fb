/* The service's private state, shared by service.c (start-up and writes) and search.c
 * (queries and facets). Design in lookalike.h, section Service. */
#ifndef LOOKALIKE_SERVICE_INTERNAL_H
#define LOOKALIKE_SERVICE_INTERNAL_H

#include "embed/embed.h"
#include "lookalike/lookalike.h"
#include "vindex/vindex.h"

#include <pthread.h>
#include <stdatomic.h>

/* One live product as the search path sees it. Immutable once published; replaced whole. */
typedef struct svc_rec {
    char *id;
    char *json; /* STORED product JSON */
    uint64_t doc_id;
    uint64_t seq;
    int64_t updated_at;
    char *category; /* folded, NULL when absent */
    char *brand;
    char **sizes; /* folded */
    size_t nsizes;
    char **attr_keys; /* as given */
    char **attr_vals; /* folded text of the value ("true", "42", "cotton") */
    size_t nattrs;
    uint32_t colours; /* palette bit mask: colours and dominant colours */
    double price;
    int has_price;
    char image_sha256[65];
    /* The photo's vector, filled on the first "more like this" (guarded by vec_mu). */
    float *vec;
} svc_rec_t;

typedef struct svc_coll {
    lookalike_collection_t info;
    char index_kind[16];
    vindex_t *vx;
    char *vx_dir; /* the vindex's data directory */
    lookalike_bm25_t *bm;
    pthread_rwlock_t lock; /* guards by_doc, ids, nlive */
    svc_rec_t **by_doc;    /* indexed by doc_id */
    size_t by_doc_cap;
    svc_rec_t **ids; /* open addressing by product id, NULL = empty slot, tombstone = TOMB */
    size_t ids_cap;
    size_t ids_used; /* live + tombstones */
    size_t nlive;
} svc_coll_t;

struct lookalike_svc {
    lookalike_catalog_t *cat;
    char *data_dir;
    embed_model *model;
    const char *out_name;
    uint32_t dim;
    char model_name[LOOKALIKE_MODEL_MAX + 1];
    embed_image_opts_t iopts;
    pthread_mutex_t write_mu; /* one writer at a time: catalogue commit then indexes */
    pthread_mutex_t vec_mu;   /* guards svc_rec_t.vec */
    pthread_mutex_t load_mu;  /* one thread at a time opens a collection another node created */
    pthread_rwlock_t colls_lock;
    svc_coll_t **colls;
    size_t ncolls;
    _Atomic uint64_t applied_seq;
    FILE *progress; /* where start-up and tailer messages go (NULL: nowhere) */
    /* A store other nodes write to (PostgreSQL): a tailer thread applies their changes, and
     * local writes are applied through the change log too, so applied_seq has no holes. */
    int shared;
    pthread_t tailer;
    int tailer_started;
    atomic_int stopping;
};

/* The collection named `name`, or NULL. With a shared store, one that another node created is
 * opened on first use. Collections are never removed, so the pointer stays valid until
 * lookalike_svc_close. */
svc_coll_t *svc_coll_find(lookalike_svc_t *s, const char *name);
/* The record of product `id` (caller holds c->lock). */
svc_rec_t *svc_rec_find(svc_coll_t *c, const char *id);
/* Embeds a photo: unit-length vector of s->dim floats into vec. */
int svc_embed(lookalike_svc_t *s, const void *img, size_t len, float *vec, char *err, size_t errlen);
/* Applies every catalogue change after applied_seq (takes write_mu). */
int svc_catch_up(lookalike_svc_t *s, char *err, size_t errlen);
/* Folds UTF-8 text into a new malloc'd string (NULL on failure). */
char *svc_fold(const char *in);

#endif
