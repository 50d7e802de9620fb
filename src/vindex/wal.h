/* Write-ahead log of a vindex data directory (format in vindex.h, "Data directory and file
 * format"). The index appends a record under its writer lock, applies the change, releases the
 * lock and then commits: commit returns once the record is as durable as the sync mode
 * promises. Because commit runs outside the writer lock, callers on several threads share
 * one fsync (leader/follower group commit). */
#ifndef VINDEX_WAL_H
#define VINDEX_WAL_H

#include <stddef.h>
#include <stdint.h>

#define VINDEX_WAL_MAGIC "VIDXWAL1"
#define VINDEX_WAL_VERSION 1u
#define VINDEX_WAL_HEADER_SIZE 32u
#define VINDEX_WAL_FRAME_SIZE 8u     /* u32 payload length, u32 crc32c */
#define VINDEX_WAL_PAYLOAD_FIXED 24u /* type, 7 reserved, lsn, id */
/* Pending (written but not yet committed) bytes allowed before append fails "too large". */
#define VINDEX_WAL_MAX_PENDING (256u << 20)

enum {
    VINDEX_WAL_INSERT = 1, /* id and vector: insert, or replace the vector of a live id */
    VINDEX_WAL_DELETE = 2, /* id only */
};

/* When a committed record is fsynced (it is always written to the OS before commit returns, so
 * it survives a kill of the process either way). */
enum {
    VINDEX_WAL_SYNC_ALWAYS = 0, /* fdatasync before commit returns; concurrent commits share one */
    VINDEX_WAL_SYNC_BATCH = 1,  /* fdatasync by the first commit at least sync_interval_us after the
                                   last one, and by vindex_wal_sync */
};

typedef struct vindex_wal vindex_wal_t;

/* Called for each replayed record in order; vec is NULL for a delete. Non-zero stops replay. */
typedef int (*vindex_wal_apply_fn)(void *ctx, int type, uint64_t lsn, uint64_t id, const float *vec,
                                   char *err, size_t errlen);

/* Scans a whole log image: checks the header (dim must match), then applies, in order, every
 * record whose lsn is greater than after_lsn. *valid_len receives the length of the valid prefix:
 * less than len when a torn tail (an incomplete or damaged last write, with no valid record after
 * it) was ignored. A damaged record followed by a valid one is corruption: VINDEX_ECORRUPT
 * with the offset in the message. *last_lsn receives the lsn of the last valid record (the
 * header's base lsn when there is none). */
int vindex_wal_scan(const uint8_t *buf, size_t len, uint32_t dim, uint64_t after_lsn,
                    vindex_wal_apply_fn apply, void *ctx, size_t *valid_len, uint64_t *last_lsn, char *err,
                    size_t errlen);

/* Opens dir/wal.log (creating an empty one with base lsn snap_lsn when absent), replays the
 * records after snap_lsn through apply, cuts a torn tail off the file, and takes an exclusive
 * lock on it so a second process cannot open the same directory. A log that starts after
 * snap_lsn + 1 (records missing) is corruption. */
vindex_wal_t *vindex_wal_open(const char *dir, uint32_t dim, uint64_t snap_lsn, int sync_mode,
                              uint32_t sync_interval_us, vindex_wal_apply_fn apply, void *ctx, char *err,
                              size_t errlen);

/* Atomically replaces dir/wal.log with an empty log whose base is base_lsn (for a snapshot
 * saved into a directory that is not the index's own). The caller holds the directory lock. */
int vindex_wal_create_empty(const char *dir, uint32_t dim, uint64_t base_lsn, char *err, size_t errlen);

/* Buffers one record and returns its lsn in *lsn. Call under the index writer lock, in the
 * order the changes are applied. vec is ignored for a delete. */
int vindex_wal_append(vindex_wal_t *w, int type, uint64_t id, const float *vec, uint64_t *lsn, char *err,
                      size_t errlen);

/* Returns once every record up to lsn is written, and fsynced in SYNC_ALWAYS mode. Call without
 * the writer lock. After an I/O error every later append and commit fails. */
int vindex_wal_commit(vindex_wal_t *w, uint64_t lsn, char *err, size_t errlen);
/* Writes and fsyncs every record appended so far, whatever the mode. */
int vindex_wal_sync(vindex_wal_t *w, char *err, size_t errlen);

/* Lsn of the last appended record. */
uint64_t vindex_wal_last_lsn(vindex_wal_t *w);

/* After a snapshot holding every record up to base_lsn is durable: atomically replaces the log
 * with an empty one whose base is base_lsn (temp file, fsync, rename, fsync dir). Call under the
 * writer lock with everything committed. */
int vindex_wal_reset(vindex_wal_t *w, uint64_t base_lsn, char *err, size_t errlen);

/* Size of the log file in bytes (header included), for checkpoint policies. */
uint64_t vindex_wal_size(vindex_wal_t *w);

void vindex_wal_free(vindex_wal_t *w);

#endif
