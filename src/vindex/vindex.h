/*
 * vindex: an in-process vector index for similar-item search (exact `flat`, graph `hnsw`,
 * inverted-file `ivf_flat`), with filters applied inside the search, tombstone deletes,
 * upsert, batch calls that use every core, and a data directory for persistence.
 *
 * Model. An index holds float32 vectors of one dimension (2..4096) under 64-bit external ids
 * (any value but VINDEX_ID_NONE). Each accepted vector gets an internal *slot* (0, 1, 2, ...,
 * never reused); the id map sends an external id to its live slot. Results are (id, score)
 * pairs sorted best first, where score is:
 *   VINDEX_L2      squared Euclidean distance   (smaller is better)
 *   VINDEX_IP      inner product                (larger is better)
 *   VINDEX_COSINE  cosine similarity            (larger is better)
 * Cosine vectors (and queries) are L2-normalised once on the way in, then searched as inner
 * product, so a cosine index stores unit vectors.
 *
 * Structures (private headers: index.h, distance.h, topk.h, region.h, idmap.h).
 * - Storage that grows without moving: every per-slot array lives in a virtual-address
 *   reservation (region.h) sized for `capacity` slots; pages are committed by first touch, so
 *   readers may hold pointers into it while the writer appends. mem_bytes counts touched pages.
 *   The arrays a search reads at random (hnsw level-0 blocks, flat rows) ask for transparent
 *   huge pages once they pass 8 MiB (madvise), which cuts the TLB misses of a graph walk.
 * - flat (flat.c): one contiguous array of vectors, each row padded to 64 bytes; search is a
 *   scan with the SIMD kernel and a bounded max-heap.
 * - hnsw (hnsw.c): hierarchical navigable small-world graph. Level 0 is one block per slot
 *   holding the vector and its neighbour list ([vector dim*4 bytes][count u32][2M ids u32],
 *   padded to 64 bytes); levels >= 1 are small per-node arrays. A node's level comes from a
 *   hash of (seed, slot), so the same inserts give the same levels on any thread schedule.
 *   Search keeps visited marks as 16-bit epoch tags (no per-query clear), gathers a node's
 *   unvisited neighbours first and prefetches all their blocks before scoring any, streams
 *   the next vector in while scoring the current one, prefetches the next candidate's links,
 *   and for L2 stops a distance early once it passes the current k-th best (exact: such a
 *   candidate is rejected whatever the rest of its sum). Inserts choose neighbours top-down
 *   with the diversity heuristic and link them bottom-up, so a reader that reaches a new node
 *   on an upper level finds its level-0 links in place. vindex_add_batch inserts in parallel.
 * - ivf_flat (ivf.c): k-means coarse quantiser of `nlist` centroids (k-means++ start and 10
 *   Lloyd rounds on up to 64*nlist sampled vectors, all drawn from params.seed; spherical for
 *   cosine), trained by vindex_train or by the first vindex_add_batch. Each list is a chain of
 *   blocks (64, 128, 256... entries) that never move, holding slot numbers and float rows or
 *   sq8 codes; `nprobe` nearest lists are scanned per query. A filter is checked inside the
 *   scan (before each distance when fewer than half the items pass it, so failing items cost
 *   no distance); when few items pass, nprobe widens to meet about 2k of them, and past half
 *   the lists (or when the lists yield fewer than k) the search scans the passing items exactly.
 * - sq8 (sq8.c): optional per-dimension 8-bit codes for ivf_flat (bias = training minimum,
 *   scale = range/255), compared with the float query by the kernels' u8 paths; the best
 *   `rerank` (default 4k) candidates are re-scored with the float vectors.
 * - distance kernels (distance.c, distance_avx2.c, distance_avx512.c): L2 (also with an early
 *   exit bound) and inner product on float32, on int8, and float against u8 codes, chosen once
 *   at first use from the CPU's features (AVX-512 F/BW/VL, AVX2+FMA, or portable C).
 *
 * Filters. A filter is a bitmap over external ids or a callback; rejected items still guide
 * the graph walk but are never returned. The search estimates the filter's selectivity s
 * (bitmap popcount, the caller's hint, or 256 sampled callback calls). When s * count is at
 * most 2048 it scans exactly the items that pass (walking a sparse bitmap's set bits through
 * the id map); otherwise the hnsw walk keeps only passing items in its result list and runs
 * with ef / sqrt(s). Either way it returns min(k, number of passing live items) results.

 * Deletes and upsert. vindex_delete marks the slot dead (a tombstone): dead slots still route
 * graph searches but are never returned and leave vindex_count. vindex_upsert writes the new
 * vector into a fresh slot, repoints the id, and tombstones the old slot; readers see the old
 * or the new vector, never a mix. A search that runs while the writer works sees each change
 * either before or after it: an id deleted during the search may still be returned, and an id
 * upserted during it is returned once, scored at its new vector. Tombstoned slots keep their
 * memory and their place in the graph; they are not reclaimed.
 *
 * Threading. Any number of threads may call the search functions and vindex_count at the same
 * time as one writer (add, add_batch, upsert, delete, train, save); writers are serialised by
 * an internal mutex, so calling them from several threads is safe but they run one at a time.
 * Readers never take a lock: slots are published with release stores after their data is
 * written; the id map is probed lock-free (resized copies are kept until vindex_free); hnsw
 * neighbour lists are read with atomic loads while the writer updates them under per-node
 * spinlocks, so a reader sees each list either before or after an update. vindex_add_batch
 * and vindex_search_batch split the work over `threads` threads (default: every online CPU).
 * A filter callback may be called from several threads at once.
 *
 * Ownership. vindex_new/vindex_open return an index the caller frees with vindex_free (which
 * must not race with any other call). Every pointer argument is borrowed for the call only;
 * results are written into caller-owned arrays.
 *
 * Errors. Functions return 0 (or a count) on success and a negative VINDEX_E* code on
 * failure, and write a human-readable message into `err` (errlen bytes, may be 0).
 *
 * ---- Persistence: data directory and file format (store.c, store_file.c, wal.c) ----------
 * A data directory holds:
 *   index.snap   the snapshot: every slot's id, vector, tombstone bit, and the kind's trained
 *                state, as of WAL record `wal_lsn`. Replaced only by writing index.snap.tmp,
 *                fsync, rename over index.snap, fsync of the directory: a reader sees the old or
 *                the new file, never a mix.
 *   wal.log      the write-ahead log of changes after the snapshot (same atomic creation).
 *   LOCK         flock()ed by the one process that has the directory open.
 * vindex_open maps index.snap (read-only, MAP_SHARED), checks every checksum, rebuilds the index
 * (flat reads its rows in place from the mapping, so they cost page cache rather than heap;
 * ivf lists are copied from it, the hnsw graph is restored from its sections; the id map is
 * rebuilt), then replays the
 * log records with lsn > wal_lsn. vindex_save into the index's own directory is a checkpoint:
 * snapshot with wal_lsn = the last record, then the log is replaced by an empty one. A crash
 * between the two leaves records the snapshot already holds, which replay skips by lsn. A new
 * directory gets an empty snapshot at once, so it can be reopened without parameters.
 *
 * Snapshot (little-endian; sections start on 64-byte boundaries, the first at 4096):
 *   off  size    field
 *   0    8       magic "VIDXSNAP"
 *   8    4       format version (1)
 *   12   4       kind (vindex_kind_t)
 *   16   4       metric (vindex_metric_t)
 *   20   4       dim
 *   24   8       n: slots stored (tombstoned ones included)
 *   32   8       wal_lsn: last log record whose change the snapshot holds
 *   40   8       file size in bytes (a truncated or extended file fails this)
 *   48   4       s: section count (<= 32)
 *   52   8       reserved, 0
 *   60   4       CRC-32C of bytes 0..59 followed by the section table
 *   64   32*s    section table, per entry: u32 type, u32 reserved, u64 offset, u64 size,
 *                u32 CRC-32C of the section's bytes, u32 reserved
 * Section types (each at most once; offsets increasing, no overlap, inside the file):
 *   1 PARAMS         u32[16]: kind, metric, dim, M, ef_construction, ef_search, nlist, nprobe,
 *                    sq8, rerank, ivf trained, seed lo/hi, capacity lo/hi, 0
 *   2 IDS            u64[n] external id per slot
 *   3 VECTORS        f32[n*dim] vector per slot, as stored (unit length for cosine)
 *   4 DELETED        u64[ceil(n/64)] tombstones, bit i%64 of word i/64 = slot i
 *   5 IVF_CENTROIDS  f32[nlist*dim]          (ivf_flat, once trained)
 *   6 IVF_ASSIGN     u32[n] list of each slot (ivf_flat, once trained)
 *   7 SQ8_RANGE      f32[dim] bias, f32[dim] scale (ivf_flat with sq8; codes are re-encoded
 *                    from VECTORS at load, so they cannot disagree with them)
 *   8 HNSW_LEVELS    u32 M, u32 entry slot (UINT32_MAX when empty), u32 top level, u32 0,
 *                    then u8[n] level of each slot                              (hnsw)
 *   9 HNSW_LINKS     per slot: u32 count + u32[2M] level-0 neighbours, then for each level
 *                    1..its level u32 count + u32[M]; entries past count are 0  (hnsw; every
 *                    neighbour must be a stored slot whose level reaches the list's level)
 * Anything that fails a check (magic, version, sizes, bounds, checksums, ids that repeat,
 * non-finite values, list numbers >= nlist) makes vindex_open fail with VINDEX_ECORRUPT and a
 * message naming the file; the parser takes a buffer and is fuzzed (fuzz/vindex_load).
 *
 * Log (wal.log): a 32-byte header (magic "VIDXWAL1", u32 version 1, u32 dim, u64 base_lsn,
 * u32 reserved, u32 CRC-32C of bytes 0..27), then records:
 *   off  size    field
 *   0    4       L: payload length (24, or 24 + 4*dim for an insert)
 *   4    4       CRC-32C of bytes 0..3 followed by the payload
 *   8    1       type: 1 insert (upsert semantics: the id gets this vector), 2 delete
 *   9    7       reserved, 0
 *   16   8       lsn: base_lsn + 1, + 2, ... without gaps
 *   24   8       external id
 *   32   4*dim   vector as given by the caller (insert only)
 * Replay stops at the first record that is incomplete or fails its checksum when no valid
 * record follows it: that is a torn tail (a write cut short by the crash), cut off the file
 * before new records are appended. A damaged record followed by a valid one is corruption:
 * vindex_open fails with the record's offset rather than silently dropping acknowledged writes.
 *
 * Durability. A writing call (add, add_batch, upsert, delete) applies its change, appends its
 * record under the writer lock, releases the lock, then commits: the record is write()n before
 * the call returns in every mode but NONE, so it survives kill -9 of the process. In SYNC mode
 * the call also waits for fdatasync; writers on several threads share one fdatasync (group
 * commit: the first waiter writes and syncs everything buffered, the others wait for it), and
 * add_batch costs one fsync for the whole batch. In BATCH mode a commit fsyncs only when the
 * last fsync is 100 ms old, so after an OS crash or power loss up to that much can be lost;
 * vindex_sync, vindex_save and vindex_free make it durable. In NONE mode nothing is logged.
 * A call that fails in its commit has still changed the index in memory. ivf_flat training is
 * not logged: on an index with a data directory it is followed by a checkpoint.
 *
 * Memory with sq8. The lists hold dim bytes per vector (codes) instead of 4*dim. Float
 * vectors are still needed to re-rank candidates and for exact filtered scans: after
 * vindex_open they are read from the mapped snapshot (page cache, loaded on demand, evictable),
 * so 1M x 2048-d costs about 2 GiB of codes in memory; vectors added since the open, or to an
 * index never reopened, are kept in memory as floats.
 * ---------------------------------------------------------------------------------------------
 */
#ifndef VINDEX_VINDEX_H
#define VINDEX_VINDEX_H

#include <stddef.h>
#include <stdint.h>

enum {
    VINDEX_OK = 0,
    VINDEX_EINVAL = -1,    /* bad argument or parameter */
    VINDEX_ENOMEM = -2,    /* allocation failed */
    VINDEX_ENOTFOUND = -3, /* no live item with that id */
    VINDEX_EEXIST = -4,    /* vindex_add of an id that is live */
    VINDEX_ETOOLARGE = -5, /* capacity or another cap reached */
    VINDEX_EIO = -6,       /* read, write or fsync failed */
    VINDEX_ECORRUPT = -7,  /* a file fails its checksum or its format check */
    VINDEX_ESTATE = -8,    /* call not valid now (e.g. ivf_flat add before training) */
};

/* The one id value that cannot be stored (marks empty hash buckets). */
#define VINDEX_ID_NONE UINT64_MAX
#define VINDEX_DIM_MIN 2
#define VINDEX_DIM_MAX 4096

typedef enum {
    VINDEX_FLAT = 0,     /* exact scan: ground truth and fallback */
    VINDEX_HNSW = 1,     /* graph: M, ef_construction, ef_search */
    VINDEX_IVF_FLAT = 2, /* inverted file: nlist (k-means), nprobe */
} vindex_kind_t;

typedef enum {
    VINDEX_L2 = 0,
    VINDEX_IP = 1,
    VINDEX_COSINE = 2,
} vindex_metric_t;

typedef struct {
    vindex_kind_t kind;
    vindex_metric_t metric;
    uint32_t dim;             /* VINDEX_DIM_MIN..VINDEX_DIM_MAX */
    uint64_t capacity;        /* most slots ever (deleted ones count); address space only */
    uint32_t threads;         /* for add_batch/search_batch; 0 = every online CPU */
    uint64_t seed;            /* hnsw levels, k-means init: same seed + same inserts = same index */
    uint32_t M;               /* hnsw: links per node on levels >= 1 (2*M on level 0); 4..64 */
    uint32_t ef_construction; /* hnsw: candidate list size while inserting (1..100000) */
    uint32_t ef_search;       /* hnsw: default candidate list size of a query, 1..100000 (>= k is used) */
    uint32_t nlist;           /* ivf_flat: number of k-means lists */
    uint32_t nprobe;          /* ivf_flat: default lists scanned per query */
    int sq8;                  /* ivf_flat: store int8 codes (1) instead of float vectors (0) */
    uint32_t rerank;          /* sq8: candidates re-scored exactly per query (0 = 4*k) */
} vindex_params_t;

/* Fills p with defaults for kind/metric/dim: capacity 16M, M 16, ef_construction 200,
 * ef_search 64, nlist 1024, nprobe 16, seed 1, threads 0, sq8 off. */
void vindex_params_default(vindex_params_t *p, vindex_kind_t kind, vindex_metric_t metric, uint32_t dim);

typedef struct vindex vindex_t;

/* An in-memory index (nothing on disk until vindex_save). NULL on error. */
vindex_t *vindex_new(const vindex_params_t *p, char *err, size_t errlen);
/* Frees the index and everything it allocated; NULL is fine. */
void vindex_free(vindex_t *ix);

/* The parameters the index runs with (defaults filled in); valid until vindex_free. */
const vindex_params_t *vindex_params(const vindex_t *ix);
/* Live items (added, not deleted). Lock-free. */
uint64_t vindex_count(const vindex_t *ix);
/* Bytes of memory the index holds (touched pages of its arrays plus heap structures). */
size_t vindex_mem_bytes(const vindex_t *ix);
/* 1 if a live item has this id. */
int vindex_contains(const vindex_t *ix, uint64_t id);

/* Adds one vector (dim floats). VINDEX_EEXIST if id is live (use vindex_upsert to replace). */
int vindex_add(vindex_t *ix, uint64_t id, const float *vec, char *err, size_t errlen);
/* Adds n vectors (row-major, n*dim floats) using `threads` threads. Ids must not be live and
 * must be distinct within the batch (checked before anything is inserted). For an untrained
 * ivf_flat the batch first trains the quantiser. */
int vindex_add_batch(vindex_t *ix, const uint64_t *ids, const float *vecs, size_t n, char *err,
                     size_t errlen);
/* Inserts, or replaces the vector of a live id. */
int vindex_upsert(vindex_t *ix, uint64_t id, const float *vec, char *err, size_t errlen);
/* Tombstones the live item with this id; VINDEX_ENOTFOUND if there is none. */
int vindex_delete(vindex_t *ix, uint64_t id, char *err, size_t errlen);
/* ivf_flat: trains the coarse quantiser on n sample vectors (implemented in ivf.c). */
int vindex_train(vindex_t *ix, const float *vecs, size_t n, char *err, size_t errlen);

/* A filter over external ids: an item may be returned only if it passes. Set exactly one of
 * bitmap (bit i of word i/64 set = id i passes; ids >= bitmap_bits fail) or fn (non-zero =
 * passes; must be thread-safe and must not call into the index). */
typedef int (*vindex_filter_fn)(uint64_t id, void *ctx);
typedef struct {
    const uint64_t *bitmap;
    uint64_t bitmap_bits;
    vindex_filter_fn fn;
    void *ctx;
    double selectivity_hint; /* fraction of items expected to pass, if known; 0 = estimate */
} vindex_filter_t;

typedef struct {
    uint32_t k;                    /* results wanted, >= 1 */
    uint32_t ef;                   /* hnsw: candidate list size, at most 100000; 0 = params.ef_search */
    uint32_t nprobe;               /* ivf_flat: lists scanned; 0 = params.nprobe */
    const vindex_filter_t *filter; /* NULL = every live item may be returned */
} vindex_search_params_t;

typedef struct {
    uint64_t id;
    float score;
} vindex_hit_t;

/* Fills hits[0..k) best first; returns how many were found (< k only when fewer live items
 * pass the filter), or a negative error. Lock-free; safe alongside the writer. */
int vindex_search(vindex_t *ix, const float *query, const vindex_search_params_t *sp, vindex_hit_t *hits,
                  char *err, size_t errlen);
/* nq queries (nq*dim floats) over `threads` threads: query i's hits go to hits[i*k..), their
 * number to nhits[i]. Returns 0 or a negative error. */
int vindex_search_batch(vindex_t *ix, const float *queries, size_t nq, const vindex_search_params_t *sp,
                        vindex_hit_t *hits, uint32_t *nhits, char *err, size_t errlen);

/* Persistence: a data directory holds one snapshot and one write-ahead log (format and
 * guarantees in the design comment above). */
typedef enum {
    VINDEX_DURABILITY_NONE = 0,  /* no log: changes after the last save are lost on a crash */
    VINDEX_DURABILITY_BATCH = 1, /* each change is written to the log before the call returns
                                    (survives a process crash); fsynced at most 100 ms later by
                                    a following commit, and by vindex_sync/save/free */
    VINDEX_DURABILITY_SYNC = 2,  /* every writing call returns after its log record is fsynced;
                                    concurrent writers share fsyncs (group commit) */
} vindex_durability_t;

/* Opens the index stored in dir, or creates dir with params p when it holds none (p may be
 * NULL to require an existing index). Replays the log. Later changes are logged per mode. */
vindex_t *vindex_open(const char *dir, const vindex_params_t *p, vindex_durability_t mode, char *err,
                      size_t errlen);
/* Writes a snapshot of ix into dir (crash-safe replace) and, when dir is the index's own data
 * directory, truncates its log (a checkpoint). Into another directory it writes a self-contained
 * copy with an empty log. Blocks writers, not readers, while it runs. */
int vindex_save(vindex_t *ix, const char *dir, char *err, size_t errlen);
/* Makes every change made so far durable (fsync of the log). */
int vindex_sync(vindex_t *ix, char *err, size_t errlen);

#endif
