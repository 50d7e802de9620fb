/*
 * Data directories: vindex_open (snapshot load + log replay), vindex_save (snapshot, and log
 * truncation when saving into the index's own directory), vindex_sync, and the hooks that log
 * each change. The file format is in vindex.h.
 */
#include "vindex/store.h"

#include "vindex/hnsw.h"
#include "vindex/index.h"
#include "vindex/ivf.h"
#include "vindex/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[PATH_MAX];       /* canonical path of the data directory */
    vindex_durability_t mode; /* NONE: nothing logged after open */
    vindex_wal_t *wal;        /* open for the index's lifetime (it also holds the directory lock) */
    vindex_snap_file_t snap;  /* the mapping the index was loaded from, kept while flat or sq8 read it */
} vindex_store_t;

/* ---- hooks ---------------------------------------------------------------------------------- */

int vindex_store_log(vindex_t *ix, int type, uint64_t id, const float *vec, uint64_t *lsn, char *err,
                     size_t errlen)
{
    vindex_store_t *st = ix->store;
    *lsn = 0;
    if (!st || st->mode == VINDEX_DURABILITY_NONE)
        return 0;
    return vindex_wal_append(st->wal, type, id, vec, lsn, err, errlen);
}

int vindex_store_commit(vindex_t *ix, uint64_t lsn, char *err, size_t errlen)
{
    vindex_store_t *st = ix->store;
    if (!st || lsn == 0)
        return 0;
    return vindex_wal_commit(st->wal, lsn, err, errlen);
}

int vindex_sync(vindex_t *ix, char *err, size_t errlen)
{
    vindex_store_t *st = ix->store;
    if (!st)
        return 0;
    return vindex_wal_sync(st->wal, err, errlen);
}

void vindex_store_close(vindex_t *ix)
{
    vindex_store_t *st = ix->store;
    if (!st)
        return;
    char err[8];
    /* Best effort: a BATCH-mode tail becomes durable at a clean close. */
    vindex_wal_sync(st->wal, err, sizeof(err));
    vindex_wal_free(st->wal);
    vindex_snap_file_release(&st->snap);
    free(st);
    ix->store = NULL;
}

/* ---- writing a snapshot ---------------------------------------------------------------------- */

static int put(vindex_snap_writer_t *w, uint32_t type, const void *data, size_t len)
{
    int rc = vindex_snap_writer_section_begin(w, type);
    if (!rc && len)
        rc = vindex_snap_writer_write(w, data, len);
    if (!rc)
        rc = vindex_snap_writer_section_end(w);
    return rc;
}

static void params_encode(const vindex_t *ix, uint32_t *w)
{
    const vindex_params_t *p = &ix->p;
    memset(w, 0, sizeof(uint32_t) * VINDEX_PARAM_WORDS);
    w[VINDEX_PARAM_KIND] = (uint32_t)p->kind;
    w[VINDEX_PARAM_METRIC] = (uint32_t)p->metric;
    w[VINDEX_PARAM_DIM] = p->dim;
    w[VINDEX_PARAM_M] = p->M;
    w[VINDEX_PARAM_EF_CONSTRUCTION] = p->ef_construction;
    w[VINDEX_PARAM_EF_SEARCH] = p->ef_search;
    w[VINDEX_PARAM_NLIST] = p->nlist;
    w[VINDEX_PARAM_NPROBE] = p->nprobe;
    w[VINDEX_PARAM_SQ8] = p->sq8 ? 1 : 0;
    w[VINDEX_PARAM_RERANK] = p->rerank;
    w[VINDEX_PARAM_TRAINED] = p->kind == VINDEX_IVF_FLAT && vindex_ivf_trained(ix);
    w[VINDEX_PARAM_SEED_LO] = (uint32_t)p->seed;
    w[VINDEX_PARAM_SEED_HI] = (uint32_t)(p->seed >> 32);
    w[VINDEX_PARAM_CAPACITY_LO] = (uint32_t)p->capacity;
    w[VINDEX_PARAM_CAPACITY_HI] = (uint32_t)(p->capacity >> 32);
}

/* Streams every section of ix (the caller holds the write lock) into dir's snapshot. */
static int snapshot_write(vindex_t *ix, const char *dir, uint64_t wal_lsn, char *err, size_t errlen)
{
    uint32_t n = ix->next_slot, dim = ix->p.dim;
    uint32_t params[VINDEX_PARAM_WORDS];
    params_encode(ix, params);
    vindex_snap_writer_t *w = vindex_snap_writer_begin(dir, err, errlen);
    if (!w)
        return VINDEX_EIO;
    int rc = put(w, VINDEX_SEC_PARAMS, params, sizeof(params));
    if (!rc)
        rc = put(w, VINDEX_SEC_IDS, ix->ext_ids, (size_t)n * sizeof(uint64_t));
    if (!rc && !(rc = vindex_snap_writer_section_begin(w, VINDEX_SEC_DELETED))) {
        for (uint32_t base = 0; base < n && !rc; base += 64) {
            uint64_t word = 0;
            for (uint32_t i = base; i < n && i < base + 64; i++)
                if (__atomic_load_n(&ix->flags[i], __ATOMIC_RELAXED) & VINDEX_FLAG_DEAD)
                    word |= 1ull << (i - base);
            rc = vindex_snap_writer_write(w, &word, sizeof(word));
        }
        if (!rc)
            rc = vindex_snap_writer_section_end(w);
    }
    if (!rc && !(rc = vindex_snap_writer_section_begin(w, VINDEX_SEC_VECTORS))) {
        for (uint32_t i = 0; i < n && !rc; i++)
            rc = vindex_snap_writer_write(w, ix->ops->vector(ix, i), sizeof(float) * dim);
        if (!rc)
            rc = vindex_snap_writer_section_end(w);
    }
    if (!rc && ix->p.kind == VINDEX_HNSW)
        rc = vindex_hnsw_snapshot_write(ix, w, n);
    if (!rc && ix->p.kind == VINDEX_IVF_FLAT && vindex_ivf_trained(ix)) {
        uint32_t nlist = vindex_ivf_nlist(ix);
        if (!(rc = vindex_snap_writer_section_begin(w, VINDEX_SEC_IVF_CENTROIDS))) {
            for (uint32_t l = 0; l < nlist && !rc; l++)
                rc = vindex_snap_writer_write(w, vindex_ivf_centroid(ix, l), sizeof(float) * dim);
            if (!rc)
                rc = vindex_snap_writer_section_end(w);
        }
        if (!rc && !(rc = vindex_snap_writer_section_begin(w, VINDEX_SEC_IVF_ASSIGN))) {
            for (uint32_t i = 0; i < n && !rc; i++) {
                uint32_t l = vindex_ivf_list_of(ix, i);
                rc = vindex_snap_writer_write(w, &l, sizeof(l));
            }
            if (!rc)
                rc = vindex_snap_writer_section_end(w);
        }
        const vindex_sq8_t *sq = vindex_ivf_sq8(ix);
        if (!rc && sq && !(rc = vindex_snap_writer_section_begin(w, VINDEX_SEC_SQ8_RANGE))) {
            rc = vindex_snap_writer_write(w, sq->bias, sizeof(float) * dim);
            if (!rc)
                rc = vindex_snap_writer_write(w, sq->scale, sizeof(float) * dim);
            if (!rc)
                rc = vindex_snap_writer_section_end(w);
        }
    }
    if (rc) {
        snprintf(err, errlen, "write snapshot in %s: %s", dir,
                 rc == VINDEX_EIO ? strerror(errno) : "bad section");
        vindex_snap_writer_abort(w);
        return rc;
    }
    vindex_snap_info_t info = {.kind = (uint32_t)ix->p.kind,
                               .metric = (uint32_t)ix->p.metric,
                               .dim = dim,
                               .count = n,
                               .wal_lsn = wal_lsn};
    return vindex_snap_writer_commit(w, &info, err, errlen);
}

int vindex_store_checkpoint_locked(vindex_t *ix, char *err, size_t errlen)
{
    vindex_store_t *st = ix->store;
    if (!st)
        return 0;
    int rc = vindex_wal_sync(st->wal, err, errlen);
    if (rc)
        return rc;
    uint64_t lsn = vindex_wal_last_lsn(st->wal);
    rc = snapshot_write(ix, st->dir, lsn, err, errlen);
    if (rc)
        return rc;
    /* A crash here leaves a log whose records the snapshot already holds: replay skips them. */
    return vindex_wal_reset(st->wal, lsn, err, errlen);
}

static int dir_lock(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (vindex_path_join(path, sizeof(path), dir, VINDEX_WAL_LOCK, err, errlen) != 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s is in use by another index", dir);
        close(fd);
        return -1;
    }
    return fd;
}

static int make_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
        return VINDEX_EIO;
    }
    return 0;
}

int vindex_save(vindex_t *ix, const char *dir, char *err, size_t errlen)
{
    if (!dir) {
        snprintf(err, errlen, "dir must not be NULL");
        return VINDEX_EINVAL;
    }
    int rc = make_dir(dir, err, errlen);
    if (rc)
        return rc;
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return VINDEX_EIO;
    }
    pthread_mutex_lock(&ix->write_lock);
    vindex_store_t *st = ix->store;
    if (st && strcmp(st->dir, real) == 0) {
        rc = vindex_store_checkpoint_locked(ix, err, errlen);
    } else {
        /* Another directory: a self-contained snapshot and an empty log, under its lock. */
        int lock = dir_lock(real, err, errlen);
        if (lock < 0) {
            rc = VINDEX_EIO;
        } else {
            rc = snapshot_write(ix, real, 0, err, errlen);
            if (!rc)
                rc = vindex_wal_create_empty(real, ix->p.dim, 0, err, errlen);
            close(lock);
        }
    }
    pthread_mutex_unlock(&ix->write_lock);
    return rc;
}

/* ---- loading ---------------------------------------------------------------------------------- */

typedef struct {
    vindex_t *ix;
    const float *vecs;
    const uint32_t *assign;
    char err[160];
} load_ctx_t;

static int load_task(void *arg, size_t i, unsigned thread)
{
    (void)thread;
    load_ctx_t *c = arg;
    vindex_t *ix = c->ix;
    const float *v = c->vecs + i * ix->p.dim;
    /* Each task writes its own slot; only a failure message is shared, and only the first. */
    char err[160];
    int rc = c->assign ? vindex_ivf_insert_into(ix, (uint32_t)i, v, c->assign[i], err, sizeof(err))
                       : ix->ops->insert(ix, (uint32_t)i, v, err, sizeof(err));
    if (rc) {
        char expected = 0;
        if (__atomic_compare_exchange_n(&c->err[0], &expected, 'x', 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            snprintf(c->err, sizeof(c->err), "%s", err);
    }
    return rc;
}

static int params_decode(const vindex_snap_t *s, vindex_params_t *p, uint32_t *trained, char *err,
                         size_t errlen)
{
    const uint8_t *raw =
        vindex_snap_section(s, VINDEX_SEC_PARAMS, sizeof(uint32_t) * VINDEX_PARAM_WORDS, err, errlen);
    if (!raw)
        return VINDEX_ECORRUPT;
    uint32_t w[VINDEX_PARAM_WORDS];
    memcpy(w, raw, sizeof(w));
    if (w[VINDEX_PARAM_KIND] != s->info.kind || w[VINDEX_PARAM_METRIC] != s->info.metric ||
        w[VINDEX_PARAM_DIM] != s->info.dim) {
        snprintf(err, errlen, "snapshot parameters disagree with its header");
        return VINDEX_ECORRUPT;
    }
    if (w[VINDEX_PARAM_KIND] > VINDEX_IVF_FLAT || w[VINDEX_PARAM_METRIC] > VINDEX_COSINE) {
        snprintf(err, errlen, "snapshot has unknown kind %u or metric %u", w[VINDEX_PARAM_KIND],
                 w[VINDEX_PARAM_METRIC]);
        return VINDEX_ECORRUPT;
    }
    vindex_params_default(p, (vindex_kind_t)w[VINDEX_PARAM_KIND], (vindex_metric_t)w[VINDEX_PARAM_METRIC],
                          w[VINDEX_PARAM_DIM]);
    p->M = w[VINDEX_PARAM_M];
    p->ef_construction = w[VINDEX_PARAM_EF_CONSTRUCTION];
    p->ef_search = w[VINDEX_PARAM_EF_SEARCH];
    p->nlist = w[VINDEX_PARAM_NLIST];
    p->nprobe = w[VINDEX_PARAM_NPROBE];
    p->sq8 = w[VINDEX_PARAM_SQ8] != 0;
    p->rerank = w[VINDEX_PARAM_RERANK];
    p->seed = (uint64_t)w[VINDEX_PARAM_SEED_HI] << 32 | w[VINDEX_PARAM_SEED_LO];
    p->capacity = (uint64_t)w[VINDEX_PARAM_CAPACITY_HI] << 32 | w[VINDEX_PARAM_CAPACITY_LO];
    *trained = w[VINDEX_PARAM_TRAINED];
    return 0;
}

/* Ids ahead whose id-map bucket a reload prefetches. */
#define ID_PREFETCH 16

/* Index of the first NaN or infinity in v[0..n), or n. Whole blocks are tested without an early
 * exit and with a fixed trip count, which the compiler vectorises (a reload checks every stored
 * float, so this runs at memory speed). */
static uint64_t first_non_finite(const float *v, uint64_t n)
{
    enum { BLOCK = 1024 };
    uint64_t at = 0;
    for (; at + BLOCK <= n; at += BLOCK) {
        uint32_t bits[BLOCK], any = 0;
        memcpy(bits, v + at, sizeof(bits));
        for (int i = 0; i < BLOCK; i++)
            any |= (bits[i] & 0x7f800000u) == 0x7f800000u;
        if (any)
            break;
    }
    for (; at < n; at++) {
        if (!isfinite(v[at]))
            return at;
    }
    return n;
}

vindex_t *vindex_store_load_snapshot(const vindex_snap_t *s, const vindex_params_t *override,
                                     int vecs_outlive, char *err, size_t errlen)
{
    vindex_params_t p;
    uint32_t trained = 0;
    if (params_decode(s, &p, &trained, err, errlen))
        return NULL;
    uint64_t n = s->info.count;
    if (override) {
        /* Run-time knobs come from the caller; the stored structure stays as saved. */
        p.threads = override->threads;
        p.ef_search = override->ef_search;
        p.nprobe = override->nprobe;
        p.rerank = override->rerank;
        if (override->capacity > p.capacity)
            p.capacity = override->capacity;
    }
    if (n > p.capacity || n >= VINDEX_SLOT_NONE) {
        snprintf(err, errlen, "snapshot holds %llu slots, more than its capacity %llu", (unsigned long long)n,
                 (unsigned long long)p.capacity);
        return NULL;
    }
    /* Sizes are checked before any allocation sized by them. */
    uint32_t dim = p.dim;
    const uint8_t *ids = vindex_snap_section(s, VINDEX_SEC_IDS, n * sizeof(uint64_t), err, errlen);
    const uint8_t *dead =
        ids ? vindex_snap_section(s, VINDEX_SEC_DELETED, (n + 63) / 64 * 8, err, errlen) : NULL;
    const uint8_t *vecs =
        dead ? vindex_snap_section(s, VINDEX_SEC_VECTORS, n * dim * sizeof(float), err, errlen) : NULL;
    if (!vecs)
        return NULL;
    const uint8_t *cen = NULL, *assign = NULL, *range = NULL;
    if (p.kind == VINDEX_IVF_FLAT && trained) {
        if (p.nlist == 0 || p.nlist > (1u << 16)) {
            snprintf(err, errlen, "snapshot has a bad nlist %u", p.nlist);
            return NULL;
        }
        cen = vindex_snap_section(s, VINDEX_SEC_IVF_CENTROIDS, (uint64_t)p.nlist * dim * sizeof(float), err,
                                  errlen);
        assign =
            cen ? vindex_snap_section(s, VINDEX_SEC_IVF_ASSIGN, n * sizeof(uint32_t), err, errlen) : NULL;
        if (!assign)
            return NULL;
        if (p.sq8 &&
            !(range = vindex_snap_section(s, VINDEX_SEC_SQ8_RANGE, 2ull * dim * sizeof(float), err, errlen)))
            return NULL;
        for (uint64_t i = 0; i < n; i++) {
            uint32_t l;
            memcpy(&l, assign + i * 4, 4);
            if (l >= p.nlist) {
                snprintf(err, errlen, "snapshot assigns slot %llu to list %u of %u", (unsigned long long)i, l,
                         p.nlist);
                return NULL;
            }
        }
    } else if (p.kind == VINDEX_IVF_FLAT && n > 0) {
        snprintf(err, errlen, "snapshot holds items in an untrained ivf_flat index");
        return NULL;
    }
    /* Vectors are stored prepared (finite, normalised for cosine); a file that says otherwise is
     * damaged in a way its checksums did not catch, and would poison every distance. */
    const float *fv = (const float *)(const void *)vecs;
    uint64_t bad = first_non_finite(fv, n * dim);
    if (bad < n * dim) {
        snprintf(err, errlen, "snapshot vector %llu has a non-finite value", (unsigned long long)(bad / dim));
        return NULL;
    }
    vindex_t *ix = vindex_new(&p, err, errlen);
    if (!ix)
        return NULL;
    if (n > 0 && (vindex_region_use(&ix->ext_ids_region, n * sizeof(uint64_t), err, errlen) ||
                  vindex_region_use(&ix->flags_region, n, err, errlen) ||
                  vindex_idmap_reserve(&ix->ids, n, err, errlen)))
        goto fail;
    if (cen) {
        const float *bias = range ? (const float *)(const void *)range : NULL;
        if (vindex_ivf_load_trained(ix, (const float *)(const void *)cen, bias, bias ? bias + dim : NULL,
                                    vecs_outlive ? fv : NULL, (uint32_t)n, err, errlen))
            goto fail;
    }
    load_ctx_t lc = {.ix = ix, .vecs = fv, .assign = (const uint32_t *)(const void *)assign};
    /* An hnsw graph is restored from its sections; without them it is rebuilt by inserting. A
     * flat index whose mapping stays reads its rows in place. */
    if (p.kind == VINDEX_HNSW && s->sec[VINDEX_SEC_HNSW_LEVELS]) {
        if (vindex_hnsw_snapshot_load(ix, s, fv, (uint32_t)n, err, errlen))
            goto fail;
    } else if (p.kind == VINDEX_FLAT && vecs_outlive) {
        if (vindex_flat_use_mapped(ix, fv, (uint32_t)n)) {
            snprintf(err, errlen, "flat index is not empty");
            goto fail;
        }
    } else if (vindex_parallel_for(vindex_threads(ix), n, load_task, &lc)) {
        snprintf(err, errlen, "load: %s", lc.err);
        goto fail;
    }
    memcpy(ix->ext_ids, ids, n * sizeof(uint64_t));
    uint64_t live = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t word;
        memcpy(&word, dead + (i / 64) * 8, 8);
        if ((word >> (i % 64)) & 1u) {
            ix->flags[i] = VINDEX_FLAG_DEAD;
            continue;
        }
        /* Each probe is a cache miss in a table of n ids: start them some ids ahead. */
        if (i + ID_PREFETCH < n)
            vindex_idmap_prefetch(&ix->ids, ix->ext_ids[i + ID_PREFETCH]);
        uint64_t id = ix->ext_ids[i];
        if (id == VINDEX_ID_NONE || vindex_idmap_get(&ix->ids, id) != VINDEX_SLOT_NONE) {
            snprintf(err, errlen, "snapshot has a reserved or duplicate live id %llu",
                     (unsigned long long)id);
            goto fail;
        }
        if (vindex_idmap_set(&ix->ids, id, (uint32_t)i, err, errlen))
            goto fail;
        live++;
    }
    ix->next_slot = (uint32_t)n;
    __atomic_store_n(&ix->n_live, live, __ATOMIC_RELEASE);
    __atomic_store_n(&ix->n_slots, (uint32_t)n, __ATOMIC_RELEASE);
    return ix;
fail:
    vindex_free(ix);
    return NULL;
}

static int replay_apply(void *ctx, int type, uint64_t lsn, uint64_t id, const float *vec, char *err,
                        size_t errlen)
{
    vindex_t *ix = ctx;
    char e[200];
    int rc;
    if (type == VINDEX_WAL_INSERT) {
        rc = vindex_upsert(ix, id, vec, e, sizeof(e));
    } else {
        rc = vindex_delete(ix, id, e, sizeof(e));
        if (rc == VINDEX_ENOTFOUND)
            rc = 0;
    }
    if (rc)
        snprintf(err, errlen, "replaying log record %llu (id %llu): %s", (unsigned long long)lsn,
                 (unsigned long long)id, e);
    return rc;
}

static void remove_temp_files(const char *dir)
{
    char path[PATH_MAX];
    char e[8];
    if (vindex_path_join(path, sizeof(path), dir, VINDEX_SNAP_TMP, e, sizeof(e)) == 0)
        unlink(path);
    if (vindex_path_join(path, sizeof(path), dir, VINDEX_WAL_TMP, e, sizeof(e)) == 0)
        unlink(path);
}

vindex_t *vindex_open(const char *dir, const vindex_params_t *p, vindex_durability_t mode, char *err,
                      size_t errlen)
{
    if (!dir || (mode != VINDEX_DURABILITY_NONE && mode != VINDEX_DURABILITY_BATCH &&
                 mode != VINDEX_DURABILITY_SYNC)) {
        snprintf(err, errlen, "vindex_open: bad directory or durability mode");
        return NULL;
    }
    if (p && make_dir(dir, err, errlen))
        return NULL;
    vindex_store_t *st = calloc(1, sizeof(*st));
    vindex_t *ix = NULL;
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->mode = mode;
    if (!realpath(dir, st->dir)) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    /* The lock first: nothing is read or cleaned while another process owns the directory. */
    int lock = dir_lock(st->dir, err, errlen);
    if (lock < 0)
        goto fail;
    remove_temp_files(st->dir);
    int rc = vindex_snap_file_open(st->dir, &st->snap, err, errlen);
    if (rc < 0) {
        close(lock);
        goto fail;
    }
    if (rc == 1) {
        if (!p) {
            snprintf(err, errlen, "%s holds no index", dir);
            close(lock);
            goto fail;
        }
        /* A new directory gets an empty snapshot at once, so it describes itself (kind, dim)
         * before its first save and can be reopened without parameters. */
        ix = vindex_new(p, err, errlen);
        if (!ix || snapshot_write(ix, st->dir, 0, err, errlen) ||
            vindex_wal_create_empty(st->dir, p->dim, 0, err, errlen)) {
            close(lock);
            goto fail;
        }
    } else {
        if (p &&
            (p->kind != (vindex_kind_t)st->snap.snap.info.kind ||
             p->metric != (vindex_metric_t)st->snap.snap.info.metric || p->dim != st->snap.snap.info.dim)) {
            snprintf(err, errlen, "%s holds a different index (kind %u, metric %u, dim %u)", dir,
                     st->snap.snap.info.kind, st->snap.snap.info.metric, st->snap.snap.info.dim);
            close(lock);
            goto fail;
        }
        char e[256];
        ix = vindex_store_load_snapshot(&st->snap.snap, p, 1, e, sizeof(e));
        if (!ix) {
            snprintf(err, errlen, "%s/%s: %s", dir, VINDEX_SNAP_FILE, e);
            close(lock);
            goto fail;
        }
    }
    /* The log takes over the directory lock (same file, its own descriptor) before ours goes. */
    close(lock);
    st->wal = vindex_wal_open(st->dir, ix->p.dim, st->snap.map ? st->snap.snap.info.wal_lsn : 0,
                              mode == VINDEX_DURABILITY_SYNC ? VINDEX_WAL_SYNC_ALWAYS : VINDEX_WAL_SYNC_BATCH,
                              VINDEX_STORE_SYNC_INTERVAL_US, replay_apply, ix, err, errlen);
    if (!st->wal)
        goto fail;
    /* Only flat (rows read in place) and sq8 (floats for re-ranking) keep reading the mapping;
     * the other kinds copied what they need, so its pages leave the process. */
    if (!(ix->p.kind == VINDEX_FLAT || (ix->p.kind == VINDEX_IVF_FLAT && ix->p.sq8)))
        vindex_snap_file_release(&st->snap);
    ix->store = st;
    return ix;
fail:
    /* The kind may point into the mapping: free the index before unmapping. */
    vindex_free(ix);
    if (st->wal)
        vindex_wal_free(st->wal);
    vindex_snap_file_release(&st->snap);
    free(st);
    return NULL;
}
