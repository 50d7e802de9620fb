/* Persistence internals shared by the snapshot writer/parser, the WAL and the index kinds.
 * The on-disk format itself is documented in vindex.h ("Data directory and file format").
 *
 * A snapshot is written section by section into a temporary file and made visible by an
 * atomic rename, so a reader only ever sees a complete old or a complete new snapshot. The
 * parser takes a byte buffer (the mmapped file, or a fuzz input) and checks everything before
 * any section is trusted: header checksum, table bounds, overlaps, section checksums. */
#ifndef VINDEX_STORE_H
#define VINDEX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "vindex/vindex.h"

#define VINDEX_SNAP_MAGIC "VIDXSNAP"
#define VINDEX_SNAP_VERSION 1u
#define VINDEX_SNAP_HEADER_SIZE 64u
#define VINDEX_SNAP_ENTRY_SIZE 32u
#define VINDEX_SNAP_MAX_SECTIONS 32u
/* First section offset: room for the header and a full table, page aligned. */
#define VINDEX_SNAP_DATA_START 4096u
#define VINDEX_SNAP_ALIGN 64u

#define VINDEX_SNAP_FILE "index.snap"
#define VINDEX_SNAP_TMP "index.snap.tmp"
#define VINDEX_WAL_FILE "wal.log"
#define VINDEX_WAL_TMP "wal.log.tmp"
#define VINDEX_WAL_LOCK "LOCK"

/* Section types. Values are part of the file format: never renumber. */
enum {
    VINDEX_SEC_PARAMS = 1,        /* u32[16] index parameters, see vindex.h */
    VINDEX_SEC_IDS = 2,           /* u64[n] external id of each slot */
    VINDEX_SEC_VECTORS = 3,       /* f32[n * dim] vector of each slot (normalised for cosine) */
    VINDEX_SEC_DELETED = 4,       /* u64[ceil(n / 64)] tombstone bitmap, bit i = slot i */
    VINDEX_SEC_IVF_CENTROIDS = 5, /* f32[nlist * dim] */
    VINDEX_SEC_IVF_ASSIGN = 6,    /* u32[n] list of each slot */
    VINDEX_SEC_SQ8_RANGE = 7,     /* f32[dim] bias, then f32[dim] scale */
    VINDEX_SEC_HNSW_LEVELS = 8,   /* HNSW node levels, layout owned by hnsw_store.c */
    VINDEX_SEC_HNSW_LINKS = 9,    /* HNSW adjacency, layout owned by hnsw_store.c */
    VINDEX_SEC_MAX_TYPE = 16,
};

/* PARAMS section: u32 words at these indexes. */
enum {
    VINDEX_PARAM_KIND = 0,
    VINDEX_PARAM_METRIC,
    VINDEX_PARAM_DIM,
    VINDEX_PARAM_M,
    VINDEX_PARAM_EF_CONSTRUCTION,
    VINDEX_PARAM_EF_SEARCH,
    VINDEX_PARAM_NLIST,
    VINDEX_PARAM_NPROBE,
    VINDEX_PARAM_SQ8,
    VINDEX_PARAM_RERANK,
    VINDEX_PARAM_TRAINED,
    VINDEX_PARAM_SEED_LO,
    VINDEX_PARAM_SEED_HI,
    VINDEX_PARAM_CAPACITY_LO,
    VINDEX_PARAM_CAPACITY_HI,
    VINDEX_PARAM_WORDS = 16,
};

/* How long a BATCH-mode log may hold committed records before a commit fsyncs them. */
#define VINDEX_STORE_SYNC_INTERVAL_US 100000u

/* What the snapshot header says; filled by the parser, given to the writer. */
typedef struct {
    uint32_t kind;    /* vindex kind value */
    uint32_t metric;  /* vindex metric value */
    uint32_t dim;     /* vector dimension */
    uint64_t count;   /* slots (deleted ones included) */
    uint64_t wal_lsn; /* last WAL record whose effect the snapshot holds */
} vindex_snap_info_t;

/* A parsed snapshot: pointers into the caller's buffer, valid while the buffer is. */
typedef struct {
    vindex_snap_info_t info;
    const uint8_t *sec[VINDEX_SEC_MAX_TYPE]; /* NULL when the section is absent */
    uint64_t sec_size[VINDEX_SEC_MAX_TYPE];
} vindex_snap_t;

/* Checks and decodes a snapshot image. verify_sections=0 skips the per-section checksums
 * (the header and table checksum is always checked). Returns 0 or VINDEX_ECORRUPT. */
int vindex_snap_parse(const uint8_t *buf, size_t len, int verify_sections, vindex_snap_t *out, char *err,
                      size_t errlen);

/* Returns a section that must be present with exactly `size` bytes, or NULL with a message. */
const uint8_t *vindex_snap_section(const vindex_snap_t *s, uint32_t type, uint64_t size, char *err,
                                   size_t errlen);

/* Streaming writer: begin, then for each section section_begin / write... / section_end,
 * then commit (fsync, rename over index.snap, fsync the directory) or abort. Both free it. */
typedef struct vindex_snap_writer vindex_snap_writer_t;

vindex_snap_writer_t *vindex_snap_writer_begin(const char *dir, char *err, size_t errlen);
int vindex_snap_writer_section_begin(vindex_snap_writer_t *w, uint32_t type);
int vindex_snap_writer_write(vindex_snap_writer_t *w, const void *buf, size_t len);
int vindex_snap_writer_section_end(vindex_snap_writer_t *w);
int vindex_snap_writer_commit(vindex_snap_writer_t *w, const vindex_snap_info_t *info, char *err,
                              size_t errlen);
void vindex_snap_writer_abort(vindex_snap_writer_t *w);

/* A read-only mapping of a data directory's snapshot. */
typedef struct {
    void *map;
    size_t len;
    vindex_snap_t snap;
} vindex_snap_file_t;

/* Maps and parses dir/index.snap. Returns 1 when there is no snapshot (nothing mapped), 0 when
 * mapped and valid, a negative code otherwise. */
int vindex_snap_file_open(const char *dir, vindex_snap_file_t *f, char *err, size_t errlen);
void vindex_snap_file_release(vindex_snap_file_t *f);

/* Hooks the writers call (no-ops on an index without a data directory). Under ix->write_lock,
 * after a change is applied: log it (*lsn = 0 when nothing was logged). After releasing the lock:
 * commit, which returns once the change is as durable as the index's mode promises. */
struct vindex;
int vindex_store_log(struct vindex *ix, int type, uint64_t id, const float *vec, uint64_t *lsn, char *err,
                     size_t errlen);
int vindex_store_commit(struct vindex *ix, uint64_t lsn, char *err, size_t errlen);
/* Under ix->write_lock: snapshot into the data directory and truncate the log. */
int vindex_store_checkpoint_locked(struct vindex *ix, char *err, size_t errlen);
/* From vindex_free, after the kind is released: final log sync, unmap the snapshot. */
void vindex_store_close(struct vindex *ix);

/* Builds an index from a parsed snapshot (the fuzz target and vindex_open share this).
 * vecs_outlive: the snapshot buffer outlives the index, so flat and sq8 may keep pointing at its
 * vectors. */
struct vindex *vindex_store_load_snapshot(const vindex_snap_t *s, const vindex_params_t *override,
                                          int vecs_outlive, char *err, size_t errlen);

/* fsync of a directory, so a rename or create inside it is durable. */
int vindex_fsync_dir(const char *dir, char *err, size_t errlen);

/* Joins dir and name into out; fails with "too long" rather than truncating. */
int vindex_path_join(char *out, size_t outlen, const char *dir, const char *name, char *err, size_t errlen);

#endif
