/* The service state: start-up rebuild from the catalogue, collections, and the write path
 * (design in lookalike.h, section Service). */
#include "lookalike/service_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TOMB ((svc_rec_t *)(uintptr_t)1)
/* Largest side of the downsized photo that colour extraction looks at. */
#define COLOUR_SIDE 256
/* Most collections a data directory may hold. */
#define COLLECTIONS_MAX 256
/* A vector log longer than this is checkpointed when the collection is closed. */
#define CHECKPOINT_LOG_BYTES (4 << 20)

char *svc_fold(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    if (lookalike_text_fold(in, n, out, n + 1, NULL, NULL, 0) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void rec_free(svc_rec_t *r)
{
    if (!r || r == TOMB)
        return;
    free(r->id);
    free(r->json);
    free(r->category);
    free(r->brand);
    for (size_t i = 0; i < r->nsizes; i++)
        free(r->sizes[i]);
    free(r->sizes);
    for (size_t i = 0; i < r->nattrs; i++) {
        free(r->attr_keys[i]);
        free(r->attr_vals[i]);
    }
    free(r->attr_keys);
    free(r->attr_vals);
    free(r);
}

static char *attr_value_text(const lookalike_attr_t *a)
{
    char buf[64];
    switch (a->type) {
    case LOOKALIKE_ATTR_STRING:
        return svc_fold(a->str);
    case LOOKALIKE_ATTR_NUMBER:
        snprintf(buf, sizeof buf, "%.17g", a->num);
        return strdup(buf);
    default:
        return strdup(a->boolean ? "true" : "false");
    }
}

static svc_rec_t *rec_new(const lookalike_product_t *p)
{
    svc_rec_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->doc_id = p->doc_id;
    r->seq = p->seq;
    r->updated_at = p->updated_at;
    r->price = p->price;
    r->has_price = p->has_price;
    memcpy(r->image_sha256, p->image_sha256, sizeof r->image_sha256);
    if (!(r->id = strdup(p->id)) || !(r->json = lookalike_product_to_json(p, LOOKALIKE_PRODUCT_STORED)))
        goto fail;
    if (p->category && !(r->category = svc_fold(p->category)))
        goto fail;
    if (p->brand && !(r->brand = svc_fold(p->brand)))
        goto fail;
    if (p->nsizes) {
        if (!(r->sizes = calloc(p->nsizes, sizeof *r->sizes)))
            goto fail;
        for (; r->nsizes < p->nsizes; r->nsizes++)
            if (!(r->sizes[r->nsizes] = svc_fold(p->sizes[r->nsizes])))
                goto fail;
    }
    if (p->nattrs) {
        if (!(r->attr_keys = calloc(p->nattrs, sizeof *r->attr_keys)) ||
            !(r->attr_vals = calloc(p->nattrs, sizeof *r->attr_vals)))
            goto fail;
        for (; r->nattrs < p->nattrs; r->nattrs++) {
            r->attr_keys[r->nattrs] = strdup(p->attrs[r->nattrs].key);
            r->attr_vals[r->nattrs] = attr_value_text(&p->attrs[r->nattrs]);
            if (!r->attr_keys[r->nattrs] || !r->attr_vals[r->nattrs]) {
                r->nattrs++;
                goto fail;
            }
        }
    }
    for (size_t i = 0; i < p->ncolours; i++) {
        int c = lookalike_colour_lookup(p->colours[i]);
        if (c >= 0)
            r->colours |= 1u << c;
    }
    for (size_t i = 0; i < p->ndominant_colours; i++) {
        int c = lookalike_colour_lookup(p->dominant_colours[i]);
        if (c >= 0)
            r->colours |= 1u << c;
    }
    return r;
fail:
    rec_free(r);
    return NULL;
}

/* ---- id hash (FNV-1a, linear probing) ---- */

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211ull;
    return h;
}

svc_rec_t *svc_rec_find(svc_coll_t *c, const char *id)
{
    if (!c->ids_cap)
        return NULL;
    size_t mask = c->ids_cap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        svc_rec_t *r = c->ids[i];
        if (!r)
            return NULL;
        if (r != TOMB && strcmp(r->id, id) == 0)
            return r;
    }
}

static int ids_grow(svc_coll_t *c)
{
    size_t cap = c->ids_cap ? c->ids_cap * 2 : 1024;
    if (c->nlive * 4 < c->ids_cap)
        cap = c->ids_cap; /* mostly tombstones: rehash in place size */
    svc_rec_t **n = calloc(cap, sizeof *n);
    if (!n)
        return LOOKALIKE_ENOMEM;
    for (size_t i = 0; i < c->ids_cap; i++) {
        svc_rec_t *r = c->ids[i];
        if (!r || r == TOMB)
            continue;
        size_t j = id_hash(r->id) & (cap - 1);
        while (n[j])
            j = (j + 1) & (cap - 1);
        n[j] = r;
    }
    free(c->ids);
    c->ids = n;
    c->ids_cap = cap;
    c->ids_used = c->nlive;
    return 0;
}

/* What a record offers to filters (borrowing its strings). */
static svc_fdoc_t rec_fdoc(const svc_rec_t *r)
{
    return (svc_fdoc_t){.doc_id = r->doc_id,
                        .category = r->category,
                        .brand = r->brand,
                        .sizes = r->sizes,
                        .nsizes = r->nsizes,
                        .attr_keys = r->attr_keys,
                        .attr_vals = r->attr_vals,
                        .nattrs = r->nattrs,
                        .colours = r->colours,
                        .price = r->price,
                        .has_price = r->has_price};
}

/* Swaps rec in for its product id (caller holds c->lock for writing); frees the old record. */
static int coll_install(svc_coll_t *c, svc_rec_t *rec)
{
    if (rec->doc_id >= c->by_doc_cap) {
        size_t cap = c->by_doc_cap ? c->by_doc_cap : 1024;
        while (cap <= rec->doc_id)
            cap *= 2;
        svc_rec_t **n = realloc(c->by_doc, cap * sizeof *n);
        if (!n)
            return LOOKALIKE_ENOMEM;
        memset(n + c->by_doc_cap, 0, (cap - c->by_doc_cap) * sizeof *n);
        c->by_doc = n;
        c->by_doc_cap = cap;
    }
    if ((c->ids_used + 1) * 2 > c->ids_cap && ids_grow(c) != 0)
        return LOOKALIKE_ENOMEM;
    const svc_rec_t *prev = svc_rec_find(c, rec->id);
    svc_fdoc_t now = rec_fdoc(rec), before = prev ? rec_fdoc(prev) : now;
    if (svc_findex_replace(c->fx, prev ? &before : NULL, &now) != 0)
        return LOOKALIKE_ENOMEM;
    size_t mask = c->ids_cap - 1, tomb = SIZE_MAX, slot;
    for (size_t i = id_hash(rec->id) & mask;; i = (i + 1) & mask) {
        svc_rec_t *r = c->ids[i];
        if (!r) {
            if (tomb != SIZE_MAX) {
                slot = tomb;
            } else {
                slot = i;
                c->ids_used++;
            }
            c->nlive++;
            break;
        }
        if (r == TOMB) {
            if (tomb == SIZE_MAX)
                tomb = i;
            continue;
        }
        if (strcmp(r->id, rec->id) == 0) {
            if (r->doc_id < c->by_doc_cap && c->by_doc[r->doc_id] == r)
                c->by_doc[r->doc_id] = NULL;
            rec_free(r);
            slot = i;
            break;
        }
    }
    c->ids[slot] = rec;
    c->by_doc[rec->doc_id] = rec;
    return 0;
}

/* Removes product id's record (caller holds c->lock for writing). */
static void coll_remove(svc_coll_t *c, const char *id)
{
    if (!c->ids_cap)
        return;
    size_t mask = c->ids_cap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        svc_rec_t *r = c->ids[i];
        if (!r)
            return;
        if (r != TOMB && strcmp(r->id, id) == 0) {
            if (r->doc_id < c->by_doc_cap && c->by_doc[r->doc_id] == r)
                c->by_doc[r->doc_id] = NULL;
            svc_fdoc_t fd = rec_fdoc(r);
            svc_findex_remove(c->fx, &fd);
            rec_free(r);
            c->ids[i] = TOMB;
            c->nlive--;
            return;
        }
    }
}

/* ---- collections ---- */

static svc_coll_t *coll_lookup(lookalike_svc_t *s, const char *name)
{
    svc_coll_t *found = NULL;
    pthread_rwlock_rdlock(&s->colls_lock);
    for (size_t i = 0; i < s->ncolls && !found; i++)
        if (strcmp(s->colls[i]->info.name, name) == 0)
            found = s->colls[i];
    pthread_rwlock_unlock(&s->colls_lock);
    return found;
}

static int coll_open(lookalike_svc_t *s, const lookalike_collection_t *col, svc_coll_t **out, char *err,
                     size_t errlen);
static int colls_add(lookalike_svc_t *s, svc_coll_t *c, char *err, size_t errlen);
static void coll_free(svc_coll_t *c);

svc_coll_t *svc_coll_find(lookalike_svc_t *s, const char *name)
{
    svc_coll_t *c = coll_lookup(s, name);
    if (c || !s->shared || !lookalike_collection_name_valid(name))
        return c;
    /* Another node may have created it since we started. */
    lookalike_collection_t col;
    char e[256];
    pthread_mutex_lock(&s->load_mu);
    if (!(c = coll_lookup(s, name)) &&
        lookalike_catalog_get_collection(s->cat, name, &col, e, sizeof e) == 0 &&
        coll_open(s, &col, &c, e, sizeof e) == 0 && colls_add(s, c, e, sizeof e) != 0) {
        coll_free(c);
        c = NULL;
    }
    pthread_mutex_unlock(&s->load_mu);
    return c;
}

static void shard_free(svc_shard_t *u, const char *coll)
{
    if (!u)
        return;
    char err[256], wal[4200];
    struct stat st;
    /* A long log is checkpointed, so the next start maps a snapshot instead of inserting every
     * logged vector into the graph again (minutes for 100,000 vectors); a short one is synced. */
    snprintf(wal, sizeof wal, "%s/wal.log", u->vx_dir ? u->vx_dir : "");
    if (u->vx && u->vx_dir && stat(wal, &st) == 0 && st.st_size > CHECKPOINT_LOG_BYTES) {
        if (vindex_save(u->vx, u->vx_dir, err, sizeof err) != 0)
            fprintf(stderr, "lookalike: collection %s shard %u: checkpoint: %s\n", coll, u->no, err);
    } else if (u->vx && vindex_sync(u->vx, err, sizeof err) != 0) {
        fprintf(stderr, "lookalike: collection %s shard %u: %s\n", coll, u->no, err);
    }
    vindex_free(u->vx);
    free(u->vx_dir);
    lookalike_bm25_free(u->bm);
    free(u);
}

static void coll_free(svc_coll_t *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; c->shards && i < c->nshards; i++)
        shard_free(c->shards[i], c->info.name);
    free(c->shards);
    svc_findex_free(c->fx);
    for (size_t i = 0; i < c->ids_cap; i++)
        rec_free(c->ids[i]);
    free(c->ids);
    free(c->by_doc);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

/* Reads the index settings a collection was created with (index_params JSON). */
static int index_params_read(const lookalike_collection_t *col, uint32_t dim, vindex_params_t *vp,
                             char kind_out[16], uint32_t *nshards, lookalike_shard_key_t *key, char *err,
                             size_t errlen)
{
    json_error_t je;
    json_t *o = json_loads(col->index_params, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        lookalike_errf(err, errlen, "collection %s: index_params is not a JSON object", col->name);
        return LOOKALIKE_EINVAL;
    }
    const char *kind = json_string_value(json_object_get(o, "index"));
    if (!kind)
        kind = "hnsw";
    vindex_kind_t k;
    if (strcmp(kind, "hnsw") == 0)
        k = VINDEX_HNSW;
    else if (strcmp(kind, "flat") == 0)
        k = VINDEX_FLAT;
    else {
        json_decref(o);
        lookalike_errf(err, errlen, "collection %s: unknown index \"%s\"", col->name, kind);
        return LOOKALIKE_EINVAL;
    }
    vindex_metric_t m = strcmp(col->metric, "l2") == 0   ? VINDEX_L2
                        : strcmp(col->metric, "ip") == 0 ? VINDEX_IP
                                                         : VINDEX_COSINE;
    vindex_params_default(vp, k, m, dim);
    vp->capacity = 1u << 24;
    json_t *v;
    if ((v = json_object_get(o, "M")) && json_is_integer(v))
        vp->M = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(o, "ef_construction")) && json_is_integer(v))
        vp->ef_construction = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(o, "ef_search")) && json_is_integer(v))
        vp->ef_search = (uint32_t)json_integer_value(v);
    snprintf(kind_out, 16, "%s", kind);
    /* Collections created before sharding have one shard. */
    *nshards = 1;
    *key = LOOKALIKE_SHARD_KEY_CATEGORY;
    if ((v = json_object_get(o, "shards")) &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > LOOKALIKE_SHARDS_MAX)) {
        json_decref(o);
        lookalike_errf(err, errlen, "collection %s: \"shards\" must be 1..%d", col->name,
                       LOOKALIKE_SHARDS_MAX);
        return LOOKALIKE_EINVAL;
    }
    if (v)
        *nshards = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(o, "shard_key")) &&
        lookalike_shard_key_parse(json_string_value(v), key, err, errlen) != 0) {
        json_decref(o);
        return LOOKALIKE_EINVAL;
    }
    json_decref(o);
    return 0;
}

static int coll_open(lookalike_svc_t *s, const lookalike_collection_t *col, svc_coll_t **out, char *err,
                     size_t errlen)
{
    char dir[4096];
    vindex_params_t vp;
    svc_coll_t *c = calloc(1, sizeof *c);
    if (!c)
        return LOOKALIKE_ENOMEM;
    pthread_rwlock_init(&c->lock, NULL);
    c->info = *col;
    int rc;
    if (col->dim != s->dim) {
        lookalike_errf(err, errlen, "collection %s has dimension %u but the model gives %u", col->name,
                       col->dim, s->dim);
        rc = LOOKALIKE_EINVAL;
        goto fail;
    }
    if ((rc = index_params_read(col, col->dim, &vp, c->index_kind, &c->nshards, &c->shard_key, err,
                                errlen)) != 0)
        goto fail;
    c->metric = vp.metric;
    snprintf(dir, sizeof dir, "%s/vindex", s->data_dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        lookalike_errf(err, errlen, "%s: %s", dir, strerror(errno));
        rc = LOOKALIKE_EIO;
        goto fail;
    }
    if (!(c->fx = svc_findex_new())) {
        lookalike_errf(err, errlen, "out of memory");
        rc = LOOKALIKE_ENOMEM;
        goto fail;
    }
    if (!(c->shards = calloc(c->nshards, sizeof *c->shards))) {
        rc = LOOKALIKE_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < c->nshards; i++) {
        if (!lookalike_shard_set_has(&s->held, i))
            continue;
        svc_shard_t *u = calloc(1, sizeof *u);
        if (!u) {
            rc = LOOKALIKE_ENOMEM;
            goto fail;
        }
        u->no = i;
        c->shards[i] = u;
        /* A collection of one shard keeps the directory it always had. */
        if (c->nshards == 1)
            snprintf(dir, sizeof dir, "%s/vindex/%s", s->data_dir, col->name);
        else
            snprintf(dir, sizeof dir, "%s/vindex/%s.shard%u", s->data_dir, col->name, i);
        char verr[512];
        if (!(u->vx_dir = strdup(dir))) {
            rc = LOOKALIKE_ENOMEM;
            goto fail;
        }
        if (!(u->vx = vindex_open(dir, &vp, VINDEX_DURABILITY_BATCH, verr, sizeof verr))) {
            lookalike_errf(err, errlen, "collection %s: %s", col->name, verr);
            rc = LOOKALIKE_EIO;
            goto fail;
        }
        if (!(u->bm = lookalike_bm25_new(NULL, err, errlen))) {
            rc = LOOKALIKE_ENOMEM;
            goto fail;
        }
    }
    *out = c;
    return 0;
fail:
    coll_free(c);
    return rc;
}

static int colls_add(lookalike_svc_t *s, svc_coll_t *c, char *err, size_t errlen)
{
    pthread_rwlock_wrlock(&s->colls_lock);
    int rc = 0;
    if (s->ncolls >= COLLECTIONS_MAX) {
        lookalike_errf(err, errlen, "too many collections (at most %d)", COLLECTIONS_MAX);
        rc = LOOKALIKE_ETOOLARGE;
    } else {
        svc_coll_t **n = realloc(s->colls, (s->ncolls + 1) * sizeof *n);
        if (!n)
            rc = LOOKALIKE_ENOMEM;
        else {
            s->colls = n;
            s->colls[s->ncolls++] = c;
        }
    }
    pthread_rwlock_unlock(&s->colls_lock);
    return rc;
}

/* ---- embedding and colours ---- */

int svc_embed(lookalike_svc_t *s, const void *img, size_t len, float *vec, char *err, size_t errlen)
{
    size_t tlen = embed_image_tensor_len(&s->iopts);
    float *t = malloc(tlen * sizeof *t);
    if (!t)
        return LOOKALIKE_ENOMEM;
    char e[512];
    int rc = embed_image_tensor_buffer(img, len, &s->iopts, t, e, sizeof e);
    if (rc != 0) {
        lookalike_errf(err, errlen, "not a readable image: %s", e);
        free(t);
        return rc == EMBED_IMAGE_ETOOLARGE ? LOOKALIKE_ETOOLARGE
               : rc == EMBED_IMAGE_ENOMEM  ? LOOKALIKE_ENOMEM
                                           : LOOKALIKE_SVC_EIMAGE;
    }
    rc = embed_model_run(s->model, t, 1, s->out_name, vec, s->dim, e, sizeof e);
    free(t);
    if (rc != 0) {
        lookalike_errf(err, errlen, "embedding failed: %s", e);
        return LOOKALIKE_EIO;
    }
    embed_l2_normalize(vec, s->dim);
    return 0;
}

/* Replaces p's dominant colours with those of the photo. */
static int extract_colours(lookalike_svc_t *s, const void *img, size_t len, lookalike_product_t *p, char *err,
                           size_t errlen)
{
    uint8_t *rgb = NULL;
    uint32_t w, h;
    char e[512];
    int rc = embed_image_rgb_buffer(img, len, &s->iopts, COLOUR_SIDE, &rgb, &w, &h, e, sizeof e);
    if (rc != 0) {
        lookalike_errf(err, errlen, "not a readable image: %s", e);
        return rc == EMBED_IMAGE_ETOOLARGE ? LOOKALIKE_ETOOLARGE : LOOKALIKE_SVC_EIMAGE;
    }
    lookalike_colour_t cols[LOOKALIKE_COLOUR_K_MAX];
    size_t n = 0;
    rc = lookalike_colours_extract(rgb, w, h, NULL, cols, LOOKALIKE_COLOUR_K_MAX, &n, err, errlen);
    free(rgb);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < p->ndominant_colours; i++)
        free(p->dominant_colours[i]);
    free(p->dominant_colours);
    p->dominant_colours = NULL;
    p->ndominant_colours = 0;
    if (!n)
        return 0;
    if (!(p->dominant_colours = calloc(n, sizeof *p->dominant_colours)))
        return LOOKALIKE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(p->dominant_colours[i] = strdup(cols[i].name)))
            return LOOKALIKE_ENOMEM;
        p->ndominant_colours++;
    }
    return 0;
}

uint32_t svc_shard_of(const svc_coll_t *c, const lookalike_product_t *p)
{
    return lookalike_shard_of(c->shard_key, c->nshards, p->id, p->category);
}

int svc_holds(const svc_coll_t *c, uint32_t shard)
{
    return shard < c->nshards && c->shards[shard] != NULL;
}

/* Removes doc_id from every shard index held except `keep` (caller holds write_mu): a product
 * lives in one shard, and an index of another may still have it from before it moved, or
 * from a time this node held other shards. */
static void purge_doc(svc_coll_t *c, uint64_t doc_id, const svc_shard_t *keep)
{
    for (uint32_t i = 0; i < c->nshards; i++) {
        svc_shard_t *u = c->shards[i];
        if (!u || u == keep)
            continue;
        lookalike_bm25_remove(u->bm, doc_id);
        if (vindex_contains(u->vx, doc_id))
            vindex_delete(u->vx, doc_id, NULL, 0);
    }
}

/* Removes product id's record and its index entries (caller holds write_mu). */
static void coll_unapply(svc_coll_t *c, const char *id, uint64_t doc_id)
{
    purge_doc(c, doc_id, NULL);
    pthread_rwlock_wrlock(&c->lock);
    coll_remove(c, id);
    pthread_rwlock_unlock(&c->lock);
}

int svc_coll_apply(svc_coll_t *c, const lookalike_product_t *p, const float *vec, char *err, size_t errlen)
{
    uint32_t sh = svc_shard_of(c, p);
    svc_shard_t *u = c->shards[sh];
    if (!u) {
        /* Held elsewhere; a change of category may have moved it away from here. */
        coll_unapply(c, p->id, p->doc_id);
        return 0;
    }
    if (vec) {
        char verr[512];
        if (vindex_upsert(u->vx, p->doc_id, vec, verr, sizeof verr) != 0) {
            lookalike_errf(err, errlen, "vector index: %s", verr);
            return LOOKALIKE_EIO;
        }
    }
    svc_rec_t *rec = rec_new(p);
    if (!rec)
        return LOOKALIKE_ENOMEM;
    rec->shard = sh;
    char *attrs = lookalike_product_attrs_text(p);
    if (!attrs) {
        rec_free(rec);
        return LOOKALIKE_ENOMEM;
    }
    const char *fields[LOOKALIKE_FIELD_COUNT] = {p->title, p->description, p->brand, p->category, attrs};
    int rc = lookalike_bm25_put(u->bm, p->doc_id, fields, err, errlen);
    free(attrs);
    if (rc != 0) {
        rec_free(rec);
        return rc;
    }
    pthread_rwlock_wrlock(&c->lock);
    svc_rec_t *old = svc_rec_find(c, p->id);
    uint64_t old_doc = old ? old->doc_id : 0;
    uint32_t old_shard = old ? old->shard : sh;
    rc = coll_install(c, rec);
    pthread_rwlock_unlock(&c->lock);
    if (rc != 0) {
        rec_free(rec);
        lookalike_errf(err, errlen, "out of memory");
        return rc;
    }
    /* doc_id is stable across upserts, so a different one only comes from the catalogue saying
     * otherwise; a different shard is a change of category. Either way the old entries go. */
    if (old && old_doc != p->doc_id)
        purge_doc(c, old_doc, NULL);
    else if (old && old_shard != sh)
        purge_doc(c, old_doc, u);
    return 0;
}

/* ---- start-up ---- */

int svc_stored_vector(lookalike_svc_t *s, const lookalike_product_t *p, float *vec, char *err, size_t errlen)
{
    if (lookalike_catalog_get_vector(s->cat, p->doc_id, vec, s->dim, err, errlen) == 0)
        return 1;
    if (!p->image_sha256[0])
        return 0; /* a vector product whose vector is gone: nothing to embed */
    void *img = NULL;
    size_t len = 0;
    int got = lookalike_catalog_get_image(s->cat, p->image_sha256, &img, &len, err, errlen) == 0 &&
              svc_embed(s, img, len, vec, err, errlen) == 0;
    free(img);
    return got ? 2 : 0;
}

/* With shard key "id", whether a change is for a shard held elsewhere can be told without
 * reading the product. */
static int change_held_elsewhere(const svc_coll_t *c, const lookalike_change_t *ch)
{
    return c->shard_key == LOOKALIKE_SHARD_KEY_ID &&
           !svc_holds(c, lookalike_shard_of(LOOKALIKE_SHARD_KEY_ID, c->nshards, ch->id, NULL));
}

static int rebuild(lookalike_svc_t *s, FILE *progress, char *err, size_t errlen)
{
    lookalike_change_t *ch = calloc(LOOKALIKE_PAGE_MAX, sizeof *ch);
    float *vec = malloc(s->dim * sizeof *vec);
    int rc = 0;
    uint64_t since = 0, live = 0, restored = 0, reembedded = 0, removed = 0, elsewhere = 0;
    if (!ch || !vec) {
        rc = LOOKALIKE_ENOMEM;
        goto fail;
    }
    for (;;) {
        size_t n = 0;
        if ((rc = lookalike_catalog_changes(s->cat, since, LOOKALIKE_PAGE_MAX, ch, &n, err, errlen)) != 0)
            goto fail;
        for (size_t i = 0; i < n; i++) {
            since = ch[i].seq;
            svc_coll_t *c = svc_coll_find(s, ch[i].collection);
            if (!c)
                continue;
            if (ch[i].deleted || change_held_elsewhere(c, &ch[i])) {
                for (uint32_t u = 0; u < c->nshards; u++)
                    if (c->shards[u] && vindex_contains(c->shards[u]->vx, ch[i].doc_id)) {
                        vindex_delete(c->shards[u]->vx, ch[i].doc_id, NULL, 0);
                        removed++;
                    }
                elsewhere += !ch[i].deleted;
                continue;
            }
            char cname[LOOKALIKE_COLLECTION_NAME_MAX + 1];
            lookalike_product_t p;
            rc = lookalike_catalog_get_by_doc(s->cat, ch[i].doc_id, cname, &p, err, errlen);
            /* Another node deleted it since the change was read: a later change says so. */
            if (rc == LOOKALIKE_ENOTFOUND)
                continue;
            if (rc != 0)
                goto fail;
            svc_shard_t *u = c->shards[svc_shard_of(c, &p)];
            const float *v = NULL;
            char e[512];
            if (u && !vindex_contains(u->vx, p.doc_id)) {
                int got = svc_stored_vector(s, &p, vec, e, sizeof e);
                if (got)
                    v = vec;
                restored += got == 1;
                reembedded += got == 2;
                if (!got && progress)
                    fprintf(progress, "lookalike: product %s: not indexed: %s\n", p.id, e);
            }
            for (uint32_t o = 0; o < c->nshards; o++)
                if (c->shards[o] && c->shards[o] != u && vindex_contains(c->shards[o]->vx, p.doc_id)) {
                    vindex_delete(c->shards[o]->vx, p.doc_id, NULL, 0);
                    removed++;
                }
            rc = svc_coll_apply(c, &p, v, err, errlen);
            lookalike_product_release(&p);
            if (rc != 0)
                goto fail;
            if (u)
                live++;
            else
                elsewhere++;
        }
        if (n < LOOKALIKE_PAGE_MAX)
            break;
    }
    atomic_store(&s->applied_seq, since);
    if (progress)
        fprintf(progress,
                "lookalike: loaded %" PRIu64 " products from the catalogue (%" PRIu64
                " vectors read from the catalogue, %" PRIu64 " photos embedded again, %" PRIu64
                " stale vectors removed, %" PRIu64 " products of shards held elsewhere)\n",
                live, restored, reembedded, removed, elsewhere);
fail:
    free(ch);
    free(vec);
    return rc;
}

/* ---- following the change log of a store other nodes write to ---- */

/* How long the tailer waits for a notification before it looks anyway. */
#define TAIL_WAIT_MS 500

/* Applies this node's own write of p with the vector of its new photo (own_vec; NULL when it
 * kept its photo). A product that kept its photo but moved to another shard held here needs
 * its vector in that shard's index: it is read back into scratch. */
static int apply_own(lookalike_svc_t *s, svc_coll_t *c, const lookalike_product_t *p, const float *own_vec,
                     float *scratch, char *err, size_t errlen)
{
    svc_shard_t *u = c->shards[svc_shard_of(c, p)];
    if (!own_vec && u && !vindex_contains(u->vx, p->doc_id)) {
        char e[512];
        if (svc_stored_vector(s, p, scratch, e, sizeof e))
            own_vec = scratch;
    }
    return svc_coll_apply(c, p, own_vec, err, errlen);
}

/* Applies one change to the memory indexes (caller holds write_mu). When it is the caller's
 * own write, own and own_vec are that product and its vector, so nothing is read back. */
static int apply_change(lookalike_svc_t *s, const lookalike_change_t *ch, const lookalike_product_t *own,
                        const float *own_vec, float *vec, char *err, size_t errlen)
{
    int rc = 0;
    svc_coll_t *c = svc_coll_find(s, ch->collection);
    if (!c) {
        lookalike_errf(err, errlen, "collection %s of change %llu cannot be opened", ch->collection,
                       (unsigned long long)ch->seq);
        return LOOKALIKE_EIO;
    }
    pthread_rwlock_rdlock(&c->lock);
    svc_rec_t *r = svc_rec_find(c, ch->id);
    uint64_t mem_doc = r ? r->doc_id : 0;
    uint32_t mem_shard = r ? r->shard : 0;
    char mem_image[65] = "";
    if (r)
        memcpy(mem_image, r->image_sha256, sizeof mem_image);
    pthread_rwlock_unlock(&c->lock);
    if (ch->deleted || change_held_elsewhere(c, ch)) {
        if (mem_doc)
            coll_unapply(c, ch->id, mem_doc);
        purge_doc(c, ch->doc_id, NULL);
        return 0;
    }
    if (own && own->seq == ch->seq)
        return apply_own(s, c, own, own_vec, vec, err, errlen);
    lookalike_product_t p;
    char cname[LOOKALIKE_COLLECTION_NAME_MAX + 1];
    rc = lookalike_catalog_get_by_doc(s->cat, ch->doc_id, cname, &p, err, errlen);
    if (rc == LOOKALIKE_ENOTFOUND)
        return 0; /* deleted since the change was read: a later change says so */
    if (rc != 0)
        return rc;
    uint32_t sh = svc_shard_of(c, &p);
    svc_shard_t *u = c->shards[sh];
    const float *v = NULL;
    int same_photo = mem_doc == p.doc_id && mem_shard == sh && strcmp(mem_image, p.image_sha256) == 0;
    /* Without a photo the vector is the caller's and may have changed: read it every time. */
    if (u && (!p.image_sha256[0] || !same_photo || !vindex_contains(u->vx, p.doc_id))) {
        char e[512];
        if (svc_stored_vector(s, &p, vec, e, sizeof e))
            v = vec;
        else if (s->progress)
            fprintf(s->progress, "lookalike: product %s: not indexed: %s\n", p.id, e);
    }
    rc = svc_coll_apply(c, &p, v, err, errlen);
    lookalike_product_release(&p);
    return rc;
}

/* Applies the changes after applied_seq in seq order, so applied_seq never passes a change it
 * has not applied (caller holds write_mu): every one, or with one_page a page of at most
 * LOOKALIKE_PAGE_MAX. *napplied (may be NULL) gets how many were applied; returns 1 when a
 * page was full (there may be more), 0 when the log is exhausted, < 0 on failure. */
static int catch_up_locked(lookalike_svc_t *s, const lookalike_product_t *own, const float *own_vec,
                           int one_page, uint64_t *napplied, char *err, size_t errlen)
{
    lookalike_change_t *ch = calloc(LOOKALIKE_PAGE_MAX, sizeof *ch);
    float *vec = malloc(s->dim * sizeof *vec);
    int rc = 0;
    if (!ch || !vec) {
        lookalike_errf(err, errlen, "out of memory");
        rc = LOOKALIKE_ENOMEM;
        goto out;
    }
    for (;;) {
        size_t n = 0;
        rc = lookalike_catalog_changes(s->cat, atomic_load(&s->applied_seq), LOOKALIKE_PAGE_MAX, ch, &n, err,
                                       errlen);
        for (size_t i = 0; rc == 0 && i < n; i++)
            if ((rc = apply_change(s, &ch[i], own, own_vec, vec, err, errlen)) == 0) {
                atomic_store(&s->applied_seq, ch[i].seq);
                if (napplied)
                    ++*napplied;
            }
        if (rc != 0 || n < LOOKALIKE_PAGE_MAX)
            break;
        if (one_page) {
            rc = 1;
            break;
        }
    }
    if (rc == 0 && atomic_load(&s->applied_seq) > atomic_load(&s->catalog_seq))
        atomic_store(&s->catalog_seq, atomic_load(&s->applied_seq));
out:
    free(ch);
    free(vec);
    return rc;
}

int svc_catch_up(lookalike_svc_t *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->write_mu);
    int rc = catch_up_locked(s, NULL, NULL, 0, NULL, err, errlen);
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

/* Applies everything after applied_seq a page at a time, letting writers in between pages. */
static int catch_up_paged(lookalike_svc_t *s, uint64_t *napplied, char *err, size_t errlen)
{
    int rc;
    do {
        pthread_mutex_lock(&s->write_mu);
        rc = catch_up_locked(s, NULL, NULL, 1, napplied, err, errlen);
        pthread_mutex_unlock(&s->write_mu);
    } while (rc > 0 && !atomic_load(&s->stopping));
    return rc < 0 ? rc : 0;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The tail after a loaded snapshot: applied, timed and said. */
static int catch_up_after_snapshot(lookalike_svc_t *s, char *err, size_t errlen)
{
    uint64_t from = atomic_load(&s->applied_seq), n = 0;
    double t0 = mono_s(), c0 = thread_cpu_s();
    int rc = catch_up_paged(s, &n, err, errlen);
    if (rc == 0 && s->progress)
        fprintf(s->progress,
                "lookalike: caught up from the snapshot at seq %" PRIu64 ": %" PRIu64
                " changes applied, now at seq %" PRIu64 " (%.3f s, %.3f s CPU)\n",
                from, n, atomic_load(&s->applied_seq), mono_s() - t0, thread_cpu_s() - c0);
    return rc;
}

/* Wakes on every committed change (NOTIFY), or every TAIL_WAIT_MS, and applies what is new;
 * first the tail a loaded snapshot lacks; writes a snapshot every snapshot_ms. */
static void *tailer_main(void *arg)
{
    lookalike_svc_t *s = arg;
    char err[512];
    int failing = 0;
    double last_snap = mono_s(), last_max = 0;
    while (!atomic_load(&s->stopping)) {
        int rc = 0;
        if (atomic_load(&s->catch_up_pending)) {
            if ((rc = catch_up_after_snapshot(s, err, sizeof err)) == 0)
                atomic_store(&s->catch_up_pending, 0);
        } else {
            rc = lookalike_catalog_changes_wait(s->cat, atomic_load(&s->applied_seq), TAIL_WAIT_MS, err,
                                                sizeof err);
            if (rc > 0)
                rc = catch_up_paged(s, NULL, err, sizeof err);
        }
        uint64_t max = 0;
        if (rc >= 0 && mono_s() - last_max >= 0.25 &&
            lookalike_catalog_max_seq(s->cat, &max, err, sizeof err) == 0) {
            last_max = mono_s();
            atomic_store(&s->catalog_seq, max);
        }
        if (rc < 0) {
            /* Say it once per outage; the store may be failing over. */
            if (!failing && s->progress)
                fprintf(s->progress, "lookalike: following the change log: %s\n", err);
            failing = 1;
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        } else if (rc > 0 || failing) {
            failing = 0;
        }
        if (s->snapshot_ms > 0 && !atomic_load(&s->catch_up_pending) &&
            (mono_s() - last_snap) * 1000 >= s->snapshot_ms) {
            last_snap = mono_s();
            if (atomic_load(&s->applied_seq) != atomic_load(&s->snapshot_seq) &&
                svc_snapshot_write(s, err, sizeof err) != 0 && s->progress)
                fprintf(s->progress, "lookalike: snapshot: %s\n", err);
        }
    }
    return NULL;
}

static int mkdir_p(const char *path, char *err, size_t errlen)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        lookalike_errf(err, errlen, "data directory path too large");
        return LOOKALIKE_ETOOLARGE;
    }
    for (char *q = buf + 1;; q++) {
        if (*q == '/' || !*q) {
            char saved = *q;
            *q = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                lookalike_errf(err, errlen, "%s: %s", buf, strerror(errno));
                return LOOKALIKE_EIO;
            }
            *q = saved;
            if (!saved)
                return 0;
        }
    }
}

static void collection_defaults(lookalike_svc_t *s, lookalike_collection_t *col, const char *name)
{
    memset(col, 0, sizeof *col);
    snprintf(col->name, sizeof col->name, "%s", name);
    snprintf(col->model, sizeof col->model, "%s", s->model_name);
    snprintf(col->metric, sizeof col->metric, "cosine");
    col->dim = s->dim;
    snprintf(col->index_params, sizeof col->index_params, "{\"index\":\"hnsw\"}");
}

lookalike_svc_t *lookalike_svc_open(const lookalike_svc_opts_t *opts, char *err, size_t errlen)
{
    lookalike_svc_t *s = calloc(1, sizeof *s);
    lookalike_collection_t *cols = NULL;
    size_t ncols = 0;
    if (!s) {
        lookalike_errf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->gc_mu, NULL);
    pthread_cond_init(&s->gc_cv, NULL);
    s->gc_tail = &s->gc_head;
    pthread_mutex_init(&s->load_mu, NULL);
    pthread_rwlock_init(&s->colls_lock, NULL);
    if (mkdir_p(opts->data_dir, err, errlen) != 0 || !(s->data_dir = strdup(opts->data_dir)))
        goto fail;
    char e[512];
    if (embed_image_global_init("lookalike", 1, e, sizeof e) != 0) {
        lookalike_errf(err, errlen, "image pipeline: %s", e);
        goto fail;
    }
    embed_model_options mo = {.threads = opts->embed_threads, .reference = 0};
    if (!(s->model = embed_model_load(opts->model_path, &mo, e, sizeof e))) {
        lookalike_errf(err, errlen, "model %s: %s", opts->model_path, e);
        goto fail;
    }
    if (!(s->out_name = embed_model_default_output(s->model))) {
        lookalike_errf(err, errlen, "model %s: no embedding output (no \"embedding\" output, no final Gemm)",
                       opts->model_path);
        goto fail;
    }
    long dim = embed_model_output_dim(s->model, s->out_name, e, sizeof e);
    if (dim < VINDEX_DIM_MIN || dim > VINDEX_DIM_MAX) {
        lookalike_errf(err, errlen, "model %s: embedding size %ld unusable: %s", opts->model_path, dim,
                       dim < 0 ? e : "");
        goto fail;
    }
    s->dim = (uint32_t)dim;
    const char *base = strrchr(opts->model_path, '/');
    snprintf(s->model_name, sizeof s->model_name, "%s", base ? base + 1 : opts->model_path);
    embed_image_opts_init(&s->iopts);
    const char *pre = embed_model_metadata(s->model, "preprocessing");
    if (pre)
        embed_image_opts_parse_preprocessing(&s->iopts, pre, NULL, 0);
    if (!(s->cat = lookalike_catalog_open(opts->store, opts->data_dir, err, errlen)))
        goto fail;
    s->shared = lookalike_store_is_pg(opts->store);
    s->progress = opts->progress;
    s->snapshot_ms = opts->snapshot_ms;
    if (lookalike_shard_set_parse(opts->shards && *opts->shards ? opts->shards : "all", &s->held, err,
                                  errlen) != 0)
        goto fail;
    s->default_shards = opts->default_shards ? opts->default_shards : 1;
    if (s->default_shards > LOOKALIKE_SHARDS_MAX) {
        lookalike_errf(err, errlen, "default collection: shards must be 1..%d", LOOKALIKE_SHARDS_MAX);
        goto fail;
    }
    if (lookalike_shard_key_parse(
            opts->default_shard_key && *opts->default_shard_key ? opts->default_shard_key : "category",
            &s->default_shard_key, err, errlen) != 0)
        goto fail;
    lookalike_collection_t def;
    int rc = lookalike_catalog_get_collection(s->cat, LOOKALIKE_DEFAULT_COLLECTION, &def, e, sizeof e);
    if (rc == LOOKALIKE_ENOTFOUND) {
        collection_defaults(s, &def, LOOKALIKE_DEFAULT_COLLECTION);
        if (s->default_shards > 1)
            snprintf(def.index_params, sizeof def.index_params,
                     "{\"index\":\"hnsw\",\"shard_key\":\"%s\",\"shards\":%u}",
                     lookalike_shard_key_name(s->default_shard_key), s->default_shards);
        rc = lookalike_catalog_create_collection(s->cat, &def, e, sizeof e);
        /* Another node created it at the same moment. */
        if (rc == LOOKALIKE_EEXIST)
            rc = lookalike_catalog_get_collection(s->cat, LOOKALIKE_DEFAULT_COLLECTION, &def, e, sizeof e);
    }
    if (rc != 0) {
        lookalike_errf(err, errlen, "default collection: %s", e);
        goto fail;
    }
    if (lookalike_catalog_list_collections(s->cat, &cols, &ncols, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < ncols; i++) {
        svc_coll_t *c;
        if (coll_open(s, &cols[i], &c, err, errlen) != 0)
            goto fail;
        if (colls_add(s, c, err, errlen) != 0) {
            coll_free(c);
            goto fail;
        }
    }
    free(cols);
    cols = NULL;
    uint64_t max = 0;
    if (lookalike_catalog_max_seq(s->cat, &max, e, sizeof e) == 0)
        atomic_store(&s->catalog_seq, max);
    int loaded = svc_snapshot_load(s, e, sizeof e);
    if (loaded <= 0 && opts->progress && e[0])
        fprintf(opts->progress, "lookalike: snapshot not used: %s\n", e);
    if (loaded < 0) {
        pthread_mutex_lock(&s->write_mu);
        svc_clear_records(s);
        pthread_mutex_unlock(&s->write_mu);
    }
    if (loaded <= 0) {
        if (rebuild(s, opts->progress, err, errlen) != 0)
            goto fail;
    } else if (s->shared && opts->follow_later) {
        atomic_store(&s->catch_up_pending, 1);
    } else if (catch_up_after_snapshot(s, err, errlen) != 0) {
        goto fail;
    }
    s->opened = 1;
    return s;
fail:
    free(cols);
    lookalike_svc_close(s);
    return NULL;
}

int lookalike_svc_follow(lookalike_svc_t *s, char *err, size_t errlen)
{
    if (!s->shared || s->tailer_started)
        return 0;
    if (pthread_create(&s->tailer, NULL, tailer_main, s) != 0) {
        lookalike_errf(err, errlen, "cannot start the change-log tailer");
        return -1;
    }
    s->tailer_started = 1;
    return 0;
}

void lookalike_svc_state(lookalike_svc_t *s, lookalike_svc_state_t *out)
{
    out->applied_seq = atomic_load(&s->applied_seq);
    out->catalog_seq = atomic_load(&s->catalog_seq);
    if (out->catalog_seq < out->applied_seq)
        out->catalog_seq = out->applied_seq;
    out->snapshot_seq = atomic_load(&s->snapshot_seq);
    out->catching_up = atomic_load(&s->catch_up_pending);
    out->held = s->held;
}

void lookalike_svc_set_remote(lookalike_svc_t *s, const lookalike_svc_remote_t *r)
{
    s->remote = *r;
}

int lookalike_svc_sharding(lookalike_svc_t *s, const char *coll, uint32_t *nshards,
                           lookalike_shard_key_t *key)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c)
        return LOOKALIKE_ENOTFOUND;
    *nshards = c->nshards;
    *key = c->shard_key;
    return 0;
}

void svc_clear_records(lookalike_svc_t *s)
{
    pthread_rwlock_rdlock(&s->colls_lock);
    for (size_t i = 0; i < s->ncolls; i++) {
        svc_coll_t *c = s->colls[i];
        pthread_rwlock_wrlock(&c->lock);
        for (size_t j = 0; j < c->ids_cap; j++)
            if (c->ids[j] && c->ids[j] != TOMB) {
                for (uint32_t u = 0; u < c->nshards; u++)
                    if (c->shards[u])
                        lookalike_bm25_remove(c->shards[u]->bm, c->ids[j]->doc_id);
                svc_fdoc_t fd = rec_fdoc(c->ids[j]);
                svc_findex_remove(c->fx, &fd);
                rec_free(c->ids[j]);
            }
        free(c->ids);
        free(c->by_doc);
        c->ids = NULL;
        c->by_doc = NULL;
        c->ids_cap = c->ids_used = c->nlive = c->by_doc_cap = 0;
        pthread_rwlock_unlock(&c->lock);
    }
    pthread_rwlock_unlock(&s->colls_lock);
    atomic_store(&s->applied_seq, 0);
}

void lookalike_svc_close(lookalike_svc_t *s)
{
    if (!s)
        return;
    if (s->tailer_started) {
        atomic_store(&s->stopping, 1);
        pthread_join(s->tailer, NULL);
    }
    char err[512];
    if (s->opened && atomic_load(&s->applied_seq) != atomic_load(&s->snapshot_seq) &&
        svc_snapshot_write(s, err, sizeof err) != 0 && s->progress)
        fprintf(s->progress, "lookalike: snapshot: %s\n", err);
    for (size_t i = 0; i < s->ncolls; i++)
        coll_free(s->colls[i]);
    free(s->colls);
    lookalike_catalog_close(s->cat);
    embed_model_free(s->model);
    free(s->data_dir);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->gc_mu);
    pthread_cond_destroy(&s->gc_cv);
    pthread_mutex_destroy(&s->load_mu);
    pthread_rwlock_destroy(&s->colls_lock);
    free(s);
}

static json_t *coll_json(lookalike_svc_t *s, svc_coll_t *c)
{
    return json_pack("{s:s,s:s,s:s,s:i,s:s,s:I,s:I,s:i,s:s}", "name", c->info.name, "metric", c->info.metric,
                     "index", c->index_kind, "dim", (int)c->info.dim, "model", c->info.model, "count",
                     (json_int_t)lookalike_svc_count(s, c->info.name), "created_at",
                     (json_int_t)c->info.created_at, "shards", (int)c->nshards, "shard_key",
                     lookalike_shard_key_name(c->shard_key));
}

json_t *lookalike_svc_list_collections(lookalike_svc_t *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a; i++) {
        /* Collections are only appended, never removed: index i stays the same one. */
        pthread_rwlock_rdlock(&s->colls_lock);
        svc_coll_t *c = i < s->ncolls ? s->colls[i] : NULL;
        pthread_rwlock_unlock(&s->colls_lock);
        if (!c)
            break;
        json_array_append_new(a, coll_json(s, c));
    }
    return a;
}

int lookalike_svc_has_collection(lookalike_svc_t *s, const char *name)
{
    return svc_coll_find(s, name) != NULL;
}

int lookalike_svc_create_collection(lookalike_svc_t *s, json_t *spec, json_t **out, char *err, size_t errlen)
{
    static const char *const allowed[] = {"name",      "metric", "index",  "M",        "ef_construction",
                                          "ef_search", "model",  "shards", "shard_key"};
    json_t *v;
    if (!json_is_object(spec)) {
        lookalike_errf(err, errlen, "the request body must be a JSON object");
        return LOOKALIKE_EINVAL;
    }
    if (lookalike_json_only_keys(spec, allowed, sizeof allowed / sizeof *allowed, err, errlen) != 0)
        return LOOKALIKE_EINVAL;
    const char *name = json_string_value(json_object_get(spec, "name"));
    if (!name || !lookalike_collection_name_valid(name)) {
        lookalike_errf(err, errlen, "field \"name\": expected 1..64 of A-Z a-z 0-9 _ -");
        return LOOKALIKE_EINVAL;
    }
    lookalike_collection_t col;
    collection_defaults(s, &col, name);
    if ((v = json_object_get(spec, "model")) &&
        (!json_is_string(v) || strcmp(json_string_value(v), s->model_name) != 0)) {
        lookalike_errf(err, errlen, "field \"model\": this server runs \"%s\" only", s->model_name);
        return LOOKALIKE_EINVAL;
    }
    if ((v = json_object_get(spec, "metric"))) {
        const char *m = json_string_value(v);
        if (!m || (strcmp(m, "cosine") && strcmp(m, "l2") && strcmp(m, "ip"))) {
            lookalike_errf(err, errlen, "field \"metric\": expected \"cosine\", \"l2\" or \"ip\"");
            return LOOKALIKE_EINVAL;
        }
        snprintf(col.metric, sizeof col.metric, "%s", m);
    }
    json_t *params = json_object();
    if (!params)
        return LOOKALIKE_ENOMEM;
    const char *kind = "hnsw";
    if ((v = json_object_get(spec, "index"))) {
        kind = json_string_value(v);
        if (!kind || (strcmp(kind, "hnsw") && strcmp(kind, "flat"))) {
            json_decref(params);
            lookalike_errf(err, errlen, "field \"index\": expected \"hnsw\" or \"flat\"");
            return LOOKALIKE_EINVAL;
        }
    }
    json_object_set_new(params, "index", json_string(kind));
    static const struct {
        const char *name;
        long long lo, hi;
    } ints[] = {{"M", 4, 64}, {"ef_construction", 8, 4096}, {"ef_search", 8, 4096}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        if (!(v = json_object_get(spec, ints[i].name)))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < ints[i].lo || json_integer_value(v) > ints[i].hi) {
            json_decref(params);
            lookalike_errf(err, errlen, "field \"%s\": expected an integer in %lld..%lld", ints[i].name,
                           ints[i].lo, ints[i].hi);
            return LOOKALIKE_EINVAL;
        }
        json_object_set(params, ints[i].name, v);
    }
    /* Sharding is fixed for the collection's life: it goes with the index settings. */
    if ((v = json_object_get(spec, "shards"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > LOOKALIKE_SHARDS_MAX) {
            json_decref(params);
            lookalike_errf(err, errlen, "field \"shards\": expected an integer in 1..%d",
                           LOOKALIKE_SHARDS_MAX);
            return LOOKALIKE_EINVAL;
        }
        json_object_set(params, "shards", v);
    }
    if ((v = json_object_get(spec, "shard_key"))) {
        lookalike_shard_key_t key;
        if (lookalike_shard_key_parse(json_string_value(v), &key, err, errlen) != 0) {
            json_decref(params);
            lookalike_errf(err, errlen, "field \"shard_key\": expected \"category\" or \"id\"");
            return LOOKALIKE_EINVAL;
        }
        json_object_set(params, "shard_key", v);
    }
    char *ptext = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(params);
    if (!ptext)
        return LOOKALIKE_ENOMEM;
    snprintf(col.index_params, sizeof col.index_params, "%s", ptext);
    free(ptext);
    /* load_mu too, so a lookup that finds the new row in the catalogue does not open it twice. */
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->load_mu);
    int rc = lookalike_catalog_create_collection(s->cat, &col, err, errlen);
    svc_coll_t *c = NULL;
    if (rc == 0 && (rc = coll_open(s, &col, &c, err, errlen)) == 0 &&
        (rc = colls_add(s, c, err, errlen)) != 0)
        coll_free(c);
    pthread_mutex_unlock(&s->load_mu);
    pthread_mutex_unlock(&s->write_mu);
    if (rc != 0)
        return rc;
    *out = coll_json(s, c);
    return *out ? 0 : LOOKALIKE_ENOMEM;
}

/* ---- writes ---- */

/* Most writes one group commit takes from the queue. */
#define GROUP_MAX 256

/* Checks a write and does its work that needs no lock: embedding, colours, the photo stored (and
 * fsync'd) by its hash. w->rc and w->err get the outcome; *vec the vector to index (NULL: keep). */
static void write_prepare(lookalike_svc_t *s, svc_coll_t *c, lookalike_svc_write_t *w, float **vec)
{
    lookalike_product_t *p = w->p;
    char *err = w->err;
    size_t errlen = sizeof w->err;
    *vec = NULL;
    w->rc = 0;
    if (w->mode == LOOKALIKE_PUT_INSERT && !w->image && !p->vector) {
        lookalike_errf(err, errlen, "a new product needs a photo (the \"image\" part) or a \"vector\"");
        w->rc = LOOKALIKE_EINVAL;
    } else if (p->vector && p->vector_dim != c->info.dim) {
        lookalike_errf(err, errlen,
                       "field \"vector\": expected %u numbers (the collection's dimension), got %u",
                       c->info.dim, p->vector_dim);
        w->rc = LOOKALIKE_EINVAL;
    } else if (w->image && w->image_len > LOOKALIKE_IMAGE_MAX) {
        lookalike_errf(err, errlen, "image too large (at most %d bytes)", LOOKALIKE_IMAGE_MAX);
        w->rc = LOOKALIKE_ETOOLARGE;
    } else {
        w->rc = lookalike_product_validate(p, err, errlen);
    }
    if (w->rc != 0)
        return;
    if (p->vector || w->image) {
        if (!(*vec = malloc(s->dim * sizeof **vec))) {
            lookalike_errf(err, errlen, "out of memory");
            w->rc = LOOKALIKE_ENOMEM;
            return;
        }
        /* A caller's vector wins over the photo's embedding; the photo is still kept and its
         * colours extracted. */
        if (p->vector)
            memcpy(*vec, p->vector, s->dim * sizeof **vec);
        else
            w->rc = svc_embed(s, w->image, w->image_len, *vec, err, errlen);
    }
    if (w->rc == 0 && w->image && (w->rc = extract_colours(s, w->image, w->image_len, p, err, errlen)) == 0)
        w->rc = lookalike_catalog_put_image(s->cat, w->image, w->image_len, p->image_sha256, err, errlen);
    if (w->rc != 0) {
        free(*vec);
        *vec = NULL;
    }
}

/* An upsert without a photo keeps the stored one and its colours (caller holds write_mu). */
static void write_keep_photo(lookalike_svc_t *s, const char *coll, lookalike_svc_write_t *w, const float *vec)
{
    lookalike_product_t *p = w->p, old;
    char e[256];
    if (w->image || !p->id)
        return;
    if (lookalike_catalog_get(s->cat, coll, p->id, &old, e, sizeof e) == 0) {
        memcpy(p->image_sha256, old.image_sha256, sizeof p->image_sha256);
        p->dominant_colours = old.dominant_colours;
        p->ndominant_colours = old.ndominant_colours;
        old.dominant_colours = NULL;
        old.ndominant_colours = 0;
        lookalike_product_release(&old);
    } else if (!vec) {
        lookalike_errf(w->err, sizeof w->err,
                       "a new product needs a photo (the \"image\" part) or a \"vector\"");
        w->rc = LOOKALIKE_EINVAL;
    }
}

/* Commits a group of prepared writes of one collection and applies them to memory: one
 * catalogue transaction for all (one fsync), then each into the indexes in seq order. Nothing
 * is acknowledged before this returns. */
static void commit_group(lookalike_svc_t *s, svc_group_item_t *const *g, size_t n)
{
    lookalike_catalog_write_t *cw = calloc(n, sizeof *cw);
    /* A product that kept its photo but moved to another shard held here reads its vector back
     * into scratch (apply_own). */
    float *scratch = malloc(s->dim * sizeof *scratch);
    pthread_mutex_lock(&s->write_mu);
    for (size_t i = 0; i < n; i++)
        if (g[i]->w->rc == 0)
            write_keep_photo(s, g[i]->c->info.name, g[i]->w, g[i]->vec);
    if (s->shared || !cw || !scratch) {
        /* Other nodes' writes may come before each one in the log: apply them all in order. */
        for (size_t i = 0; i < n; i++) {
            lookalike_svc_write_t *w = g[i]->w;
            if (w->rc == 0)
                w->rc = lookalike_catalog_put(s->cat, g[i]->c->info.name, w->p, w->mode, NULL, 0, g[i]->vec,
                                              s->dim, w->err, sizeof w->err);
            if (w->rc == 0)
                w->rc = s->shared ? catch_up_locked(s, w->p, g[i]->vec, 0, NULL, w->err, sizeof w->err)
                        : scratch ? apply_own(s, g[i]->c, w->p, g[i]->vec, scratch, w->err, sizeof w->err)
                                  : LOOKALIKE_ENOMEM;
            if (w->rc == 0 && !s->shared && w->p->seq > atomic_load(&s->applied_seq))
                atomic_store(&s->applied_seq, w->p->seq);
        }
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        cw[i] = (lookalike_catalog_write_t){.collection = g[i]->c->info.name,
                                            .p = g[i]->w->p,
                                            .mode = g[i]->w->mode,
                                            .vec = g[i]->vec,
                                            .dim = s->dim,
                                            /* Failed already: the batch leaves it out. */
                                            .rc = g[i]->w->rc};
    char e[256];
    int rc = lookalike_catalog_put_batch(s->cat, cw, n, e, sizeof e);
    for (size_t i = 0; i < n; i++) {
        lookalike_svc_write_t *w = g[i]->w;
        if (w->rc == 0 && (w->rc = cw[i].rc) != 0)
            snprintf(w->err, sizeof w->err, "%s", rc != 0 ? e : cw[i].err);
    }
    for (size_t i = 0; i < n; i++) {
        lookalike_svc_write_t *w = g[i]->w;
        if (w->rc != 0)
            continue;
        w->rc = apply_own(s, g[i]->c, w->p, g[i]->vec, scratch, w->err, sizeof w->err);
        /* A retried insert answers with the seq it had, which may be behind. */
        if (w->rc == 0 && w->p->seq > atomic_load(&s->applied_seq))
            atomic_store(&s->applied_seq, w->p->seq);
    }
out:
    pthread_mutex_unlock(&s->write_mu);
    free(cw);
    free(scratch);
}

int lookalike_svc_put_many(lookalike_svc_t *s, const char *coll, lookalike_svc_write_t *w, size_t n)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    svc_group_item_t *mine = calloc(n ? n : 1, sizeof *mine);
    if (!c || !mine) {
        for (size_t i = 0; i < n; i++) {
            w[i].rc = c ? LOOKALIKE_ENOMEM : LOOKALIKE_ENOTFOUND;
            lookalike_errf(w[i].err, sizeof w[i].err, c ? "out of memory" : "no collection named \"%s\"",
                           coll);
        }
        free(mine);
        return c ? LOOKALIKE_ENOMEM : LOOKALIKE_ENOTFOUND;
    }
    for (size_t i = 0; i < n; i++) {
        mine[i] = (svc_group_item_t){.c = c, .w = &w[i]};
        write_prepare(s, c, &w[i], &mine[i].vec);
    }
    /* Group commit: the first writer to find no leader commits everything queued (its own
     * writes and those that arrived while the previous group was being made durable), the
     * others wait for it. A lone writer commits at once: no wait is added. */
    pthread_mutex_lock(&s->gc_mu);
    for (size_t i = 0; i < n; i++) {
        mine[i].next = NULL;
        *s->gc_tail = &mine[i];
        s->gc_tail = &mine[i].next;
    }
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += !mine[i].done;
        if (!left)
            break;
        if (s->gc_leader) {
            pthread_cond_wait(&s->gc_cv, &s->gc_mu);
            continue;
        }
        s->gc_leader = 1;
        svc_group_item_t *take[GROUP_MAX];
        size_t k = 0;
        /* One collection per group, the oldest writes first. */
        svc_coll_t *gc = s->gc_head->c;
        for (svc_group_item_t **pp = &s->gc_head; *pp && k < GROUP_MAX;) {
            if ((*pp)->c != gc) {
                pp = &(*pp)->next;
                continue;
            }
            take[k++] = *pp;
            *pp = (*pp)->next;
            if (!*pp)
                s->gc_tail = pp;
        }
        pthread_mutex_unlock(&s->gc_mu);
        commit_group(s, take, k);
        pthread_mutex_lock(&s->gc_mu);
        for (size_t i = 0; i < k; i++)
            take[i]->done = 1;
        s->gc_leader = 0;
        pthread_cond_broadcast(&s->gc_cv);
    }
    pthread_mutex_unlock(&s->gc_mu);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        free(mine[i].vec);
        if (w[i].rc != 0 && rc == 0)
            rc = w[i].rc;
    }
    free(mine);
    return rc;
}

int lookalike_svc_put(lookalike_svc_t *s, const char *coll, lookalike_product_t *p, int mode,
                      const void *image, size_t image_len, char *err, size_t errlen)
{
    lookalike_svc_write_t w = {.p = p, .mode = mode, .image = image, .image_len = image_len};
    int rc = lookalike_svc_put_many(s, coll, &w, 1);
    if (rc != 0)
        lookalike_errf(err, errlen, "%s", w.err);
    return rc;
}

int lookalike_svc_delete(lookalike_svc_t *s, const char *coll, const char *id, uint64_t *seq, char *err,
                         size_t errlen)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c) {
        lookalike_errf(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    pthread_mutex_lock(&s->write_mu);
    pthread_rwlock_rdlock(&c->lock);
    svc_rec_t *r = svc_rec_find(c, id);
    uint64_t doc = r ? r->doc_id : 0;
    pthread_rwlock_unlock(&c->lock);
    int rc = lookalike_catalog_delete(s->cat, coll, id, seq, err, errlen);
    if (rc == 0 && s->shared) {
        rc = catch_up_locked(s, NULL, NULL, 0, NULL, err, errlen);
    } else if (rc == 0) {
        if (r)
            coll_unapply(c, id, doc);
        atomic_store(&s->applied_seq, *seq);
    }
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

/* ---- reads ---- */

int lookalike_svc_contains(lookalike_svc_t *s, const char *coll, const char *id)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c)
        return 0;
    pthread_rwlock_rdlock(&c->lock);
    int found = svc_rec_find(c, id) != NULL;
    pthread_rwlock_unlock(&c->lock);
    return found;
}

json_t *lookalike_svc_get(lookalike_svc_t *s, const char *coll, const char *id)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c)
        return NULL;
    json_t *o = NULL;
    pthread_rwlock_rdlock(&c->lock);
    svc_rec_t *r = svc_rec_find(c, id);
    if (r)
        o = json_loads(r->json, 0, NULL);
    pthread_rwlock_unlock(&c->lock);
    return o;
}

int lookalike_svc_image(lookalike_svc_t *s, const char *coll, const char *id, void **data, size_t *len,
                        char *err, size_t errlen)
{
    json_t *prod = NULL;
    int rc = lookalike_svc_find(s, coll, id, &prod, err, errlen);
    if (rc != 0)
        return rc;
    char sha[65] = "";
    const char *h = json_string_value(json_object_get(prod, "image_sha256"));
    if (h)
        snprintf(sha, sizeof sha, "%s", h);
    json_decref(prod);
    if (!sha[0]) {
        lookalike_errf(err, errlen, "no product \"%s\" with a photo in \"%s\"", id, coll);
        return LOOKALIKE_ENOTFOUND;
    }
    return lookalike_catalog_get_image(s->cat, sha, data, len, err, errlen);
}

int lookalike_svc_list(lookalike_svc_t *s, const char *coll, const char *cursor, size_t limit, json_t **out,
                       char *err, size_t errlen)
{
    if (!svc_coll_find(s, coll)) {
        lookalike_errf(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    lookalike_product_t *ps = calloc(limit, sizeof *ps);
    if (!ps)
        return LOOKALIKE_ENOMEM;
    size_t n = 0;
    uint64_t total = 0;
    char next[LOOKALIKE_ID_MAX + 1];
    int rc = lookalike_catalog_list(s->cat, coll, cursor, limit, ps, &n, next, &total, err, errlen);
    if (rc == 0) {
        json_t *items = json_array();
        for (size_t i = 0; i < n; i++) {
            char *j = lookalike_product_to_json(&ps[i], LOOKALIKE_PRODUCT_STORED);
            json_t *o = j ? json_loads(j, 0, NULL) : NULL;
            free(j);
            if (o)
                json_array_append_new(items, o);
        }
        *out = json_pack("{s:o,s:I,s:o}", "items", items, "total", (json_int_t)total, "next_cursor",
                         next[0] ? json_string(next) : json_null());
        if (!*out)
            rc = LOOKALIKE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        lookalike_product_release(&ps[i]);
    free(ps);
    return rc;
}

uint64_t lookalike_svc_count(lookalike_svc_t *s, const char *coll)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c)
        return 0;
    pthread_rwlock_rdlock(&c->lock);
    uint64_t n = c->nlive;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

uint64_t lookalike_svc_applied_seq(lookalike_svc_t *s)
{
    return atomic_load(&s->applied_seq);
}
