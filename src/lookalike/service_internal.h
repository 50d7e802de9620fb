/* The service's private state, shared by service.c (start-up and writes) and search.c
 * (queries and facets). Design in lookalike.h, section Service. */
#ifndef LOOKALIKE_SERVICE_INTERNAL_H
#define LOOKALIKE_SERVICE_INTERNAL_H

#include "embed/embed.h"
#include "lookalike/filter_index.h"
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
    uint32_t shard; /* the shard it belongs to (held by this node) */
} svc_rec_t;

/* One shard of a collection that this node holds: its own vector and text index, so that a
 * shard's figures (BM25 statistics, vector hits) are the same whichever node holds it. */
typedef struct svc_shard {
    uint32_t no;
    vindex_t *vx;
    char *vx_dir; /* <data>/vindex/<collection> (1 shard) or <collection>.shard<no> */
    lookalike_bm25_t *bm;
} svc_shard_t;

typedef struct svc_coll {
    lookalike_collection_t info;
    char index_kind[16];
    vindex_metric_t metric;
    uint32_t nshards;
    lookalike_shard_key_t shard_key;
    svc_shard_t **shards;  /* [nshards]: NULL where this node does not hold the shard */
    pthread_rwlock_t lock; /* guards by_doc, ids, nlive, fx */
    svc_rec_t **by_doc;    /* indexed by doc_id */
    size_t by_doc_cap;
    svc_rec_t **ids; /* open addressing by product id, NULL = empty slot, tombstone = TOMB */
    size_t ids_cap;
    size_t ids_used; /* live + tombstones */
    size_t nlive;
    svc_findex_t *fx; /* the live records' filter postings */
} svc_coll_t;

/* A prepared write in the group-commit queue; lives in its writer's call, which waits for done. */
typedef struct svc_group_item {
    svc_coll_t *c;
    lookalike_svc_write_t *w;
    float *vec; /* to index, or NULL */
    int done;   /* committed and applied, or failed (guarded by gc_mu) */
    struct svc_group_item *next;
} svc_group_item_t;

struct lookalike_svc {
    lookalike_catalog_t *cat;
    char *data_dir;
    embed_model *model;
    const char *out_name;
    uint32_t dim;
    char model_name[LOOKALIKE_MODEL_MAX + 1];
    embed_image_opts_t iopts;
    pthread_mutex_t write_mu; /* one writer at a time: catalogue commit then indexes */
    /* Group commit: writes queue here; one leader at a time commits what is queued. */
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv; /* a group was committed */
    svc_group_item_t *gc_head, **gc_tail;
    int gc_leader;
    pthread_mutex_t load_mu; /* one thread at a time opens a collection another node created */
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
    lookalike_shard_set_t held; /* the shards this node holds, in every collection */
    uint32_t default_shards;
    lookalike_shard_key_t default_shard_key;
    lookalike_svc_remote_t remote; /* how to reach the shards held elsewhere (fanout NULL: none) */
    _Atomic uint64_t fanout_token; /* spreads queries over equally good replicas */
    _Atomic uint64_t catalog_seq;  /* the catalogue's last seq, as last read (for the lag) */
    /* Snapshots: <data>/node.snap, written every snapshot_ms by the tailer and at close. */
    int snapshot_ms;
    _Atomic uint64_t snapshot_seq; /* applied_seq of the last snapshot written or loaded */
    atomic_int catch_up_pending;   /* the tail after a loaded snapshot is still to be applied */
    int opened;                    /* lookalike_svc_open finished: the tables are whole */
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
/* The shard of a product in collection c, and this node's unit for it (NULL: not held). */
uint32_t svc_shard_of(const svc_coll_t *c, const lookalike_product_t *p);
/* 1 if this node holds shard `shard` of collection c. */
int svc_holds(const svc_coll_t *c, uint32_t shard);
/* Puts a catalogue product into memory (caller holds write_mu): its shard's vector index
 * (vec, when not NULL), text index and records; a product of a shard this node does not hold
 * only clears what the node had of it. */
int svc_coll_apply(svc_coll_t *c, const lookalike_product_t *p, const float *vec, char *err, size_t errlen);
/* The vector of a stored product: from the catalogue (1), its photo embedded again (2), or 0
 * with the reason in err. */
int svc_stored_vector(lookalike_svc_t *s, const lookalike_product_t *p, float *vec, char *err, size_t errlen);
/* Drops every record and text index entry of every collection (caller holds write_mu), so
 * that a failed snapshot load can start over from the catalogue. */
void svc_clear_records(lookalike_svc_t *s);

/* Catches up with the change log when min_seq is past applied_seq; LOOKALIKE_EEXIST when the
 * catalogue has not reached it either. */
int svc_wait_seq(lookalike_svc_t *s, uint64_t min_seq, char *err, size_t errlen);

/* ---- query execution (search.c) and coordination (search_fanout.c) ---- */

enum { SIG_IMAGE, SIG_PRODUCT, SIG_TEXT, SIG_FILTERS, SIG_COUNT };
extern const char *const svc_sig_names[SIG_COUNT];

int svc_filter_parse(json_t *o, svc_filter_t *f, char *err, size_t errlen);
void svc_filter_release(svc_filter_t *f);

/* A growable list of one signal's hits. */
typedef struct {
    lookalike_shard_hit_t *hits;
    size_t n, cap;
} svc_hits_t;

int svc_hits_push(svc_hits_t *l, lookalike_shard_hit_t h);
void svc_hits_release(svc_hits_t *l);
/* Sorts one signal's hits from several shards best first (by score in the metric's direction,
 * newest first for SIG_FILTERS; ties by the smaller doc_id) and keeps the first cand. */
void svc_hits_merge(svc_hits_t *l, int sig, vindex_metric_t metric, size_t cand);

/* What every shard runs for a query. */
typedef struct {
    svc_filter_t f;
    const char *text;   /* borrowed; NULL: no text signal */
    float *qvec, *pvec; /* owned; NULL: no image / product signal */
    uint64_t exclude;   /* a doc_id never returned (more like this: the product itself), or UINT64_MAX */
    size_t cand;        /* candidates per signal */
} svc_plan_t;
void svc_plan_release(svc_plan_t *p);

/* Runs plan p on the shards of c with want[shard] set that this node holds, appending each
 * signal's hits to lists; text is scored with g (NULL: each shard's own figures). */
int svc_run_local(lookalike_svc_t *s, svc_coll_t *c, const svc_plan_t *p, const lookalike_bm25_stats_t *g,
                  const uint8_t *want, svc_hits_t lists[SIG_COUNT], char *err, size_t errlen);
/* The BM25 figures of text summed over the wanted shards held here. */
int svc_text_stats_local(svc_coll_t *c, const char *text, const uint8_t *want, lookalike_bm25_stats_t *out,
                         char *err, size_t errlen);
/* Facet counts over the wanted shards held here (new reference; NULL when out of memory). */
json_t *svc_facets_local(svc_coll_t *c, const uint8_t *want);

/* Snapshots (service_snapshot.c): loads <data>/node.snap into the empty tables: 1 when it
 * was loaded (applied_seq is its position), 0 when there was none or it does not fit this
 * node (a message in err says why), < 0 on failure. */
int svc_snapshot_load(lookalike_svc_t *s, char *err, size_t errlen);
/* Writes <data>/node.snap as of applied_seq (takes write_mu). */
int svc_snapshot_write(lookalike_svc_t *s, char *err, size_t errlen);

#endif
