/* The embedded catalogue backend: one SQLite database in WAL mode with synchronous=FULL, its
 * images as files next to it. Every call holds the handle's mutex, since the prepared
 * statements belong to the one connection. */
#include "lookalike/catalog_internal.h"
#include "lookalike/image_store.h"
#include "lookalike/lookalike.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 5000

/* Migration i takes the schema from user_version i to i + 1. Never edit a released one: add. */
static const char *const migrations[] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta(key, value) VALUES('seq', 0);"
    "CREATE TABLE collections(name TEXT PRIMARY KEY, model TEXT NOT NULL, metric TEXT NOT NULL,"
    " dim INTEGER NOT NULL, index_params TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE products(collection TEXT NOT NULL REFERENCES collections(name), id TEXT NOT NULL,"
    " doc_id INTEGER NOT NULL UNIQUE, seq INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, image_sha256 TEXT, body TEXT NOT NULL,"
    " PRIMARY KEY(collection, id)) WITHOUT ROWID;"
    "CREATE TABLE changes(seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL,"
    " doc_id INTEGER NOT NULL, deleted INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX changes_product ON changes(collection, id);",
    "ALTER TABLE products ADD COLUMN vector BLOB;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_NEXT_SEQ,
    S_MAX_SEQ,
    S_COL_INSERT,
    S_COL_GET,
    S_COL_LIST,
    S_PROD_FIND,
    S_PROD_PUT,
    S_PROD_GET,
    S_PROD_GET_DOC,
    S_PROD_DELETE,
    S_PROD_LIST,
    S_PROD_COUNT,
    S_CHANGE_DELETE,
    S_CHANGE_INSERT,
    S_CHANGES,
    S_VEC_GET,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_COUNT
};

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_NEXT_SEQ] = "UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value",
    [S_MAX_SEQ] = "SELECT value FROM meta WHERE key = 'seq'",
    [S_COL_INSERT] = "INSERT INTO collections(name, model, metric, dim, index_params, created_at)"
                     " VALUES(?, ?, ?, ?, ?, ?)",
    [S_COL_GET] = "SELECT name, model, metric, dim, index_params, created_at FROM collections WHERE name = ?",
    [S_COL_LIST] = "SELECT name, model, metric, dim, index_params, created_at FROM collections ORDER BY name",
    [S_PROD_FIND] = "SELECT doc_id, created_at, image_sha256, seq, updated_at, body FROM products"
                    " WHERE collection = ? AND id = ?",
    /* ?10 true keeps the stored vector (the image stays and no new vector came). */
    [S_PROD_PUT] = "INSERT INTO products(collection, id, doc_id, seq, created_at, updated_at, image_sha256,"
                   " body, vector) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                   " ON CONFLICT(collection, id) DO UPDATE SET doc_id = excluded.doc_id, seq = excluded.seq,"
                   " created_at = excluded.created_at, updated_at = excluded.updated_at,"
                   " image_sha256 = excluded.image_sha256, body = excluded.body,"
                   " vector = CASE WHEN ?10 THEN products.vector ELSE excluded.vector END",
    [S_PROD_GET] = "SELECT body, doc_id FROM products WHERE collection = ? AND id = ?",
    [S_PROD_GET_DOC] = "SELECT body, doc_id, collection FROM products WHERE doc_id = ?",
    [S_PROD_DELETE] = "DELETE FROM products WHERE collection = ? AND id = ?",
    [S_PROD_LIST] = "SELECT body, doc_id FROM products WHERE collection = ? AND id > ? ORDER BY id LIMIT ?",
    [S_PROD_COUNT] = "SELECT count(*) FROM products WHERE collection = ?",
    [S_CHANGE_DELETE] = "DELETE FROM changes WHERE collection = ? AND id = ?",
    [S_CHANGE_INSERT] = "INSERT INTO changes(seq, collection, id, doc_id, deleted) VALUES(?, ?, ?, ?, ?)",
    [S_CHANGES] =
        "SELECT seq, collection, id, doc_id, deleted FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
    [S_VEC_GET] = "SELECT vector FROM products WHERE doc_id = ?",
    /* One write of a batch, undone alone when it fails. */
    [S_SAVEPOINT] = "SAVEPOINT w",
    [S_RELEASE] = "RELEASE w",
    [S_ROLLBACK_TO] = "ROLLBACK TO w",
};

typedef struct {
    lookalike_catalog_t base; /* first, so the handle converts both ways */
    sqlite3 *db;
    pthread_mutex_t mu;
    char *dir;
    sqlite3_stmt *st[S_COUNT];
} sqlite_catalog_t;

static int db_fail(sqlite_catalog_t *s, const char *what, char *err, size_t errlen)
{
    lookalike_errf(err, errlen, "catalog: %s: %s", what, sqlite3_errmsg(s->db));
    return LOOKALIKE_EIO;
}

/* Takes a prepared statement for use; done() hands it back reset. */
static sqlite3_stmt *stmt(sqlite_catalog_t *s, int i)
{
    return s->st[i];
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int exec1(sqlite_catalog_t *s, int i)
{
    sqlite3_stmt *st = stmt(s, i);
    int rc = sqlite3_step(st);
    done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void rollback(sqlite_catalog_t *s)
{
    if (!sqlite3_get_autocommit(s->db))
        exec1(s, S_ROLLBACK);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void read_collection(sqlite3_stmt *st, lookalike_collection_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(out->model, sizeof out->model, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(out->metric, sizeof out->metric, "%s", (const char *)sqlite3_column_text(st, 2));
    out->dim = (uint32_t)sqlite3_column_int64(st, 3);
    snprintf(out->index_params, sizeof out->index_params, "%s", (const char *)sqlite3_column_text(st, 4));
    out->created_at = sqlite3_column_int64(st, 5);
}

static int col_create(lookalike_catalog_t *c, lookalike_collection_t *col, char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    col->created_at = catalog_now_ms();
    sqlite3_stmt *st = stmt(s, S_COL_INSERT);
    bind_text(st, 1, col->name);
    bind_text(st, 2, col->model);
    bind_text(st, 3, col->metric);
    sqlite3_bind_int64(st, 4, col->dim);
    bind_text(st, 5, col->index_params);
    sqlite3_bind_int64(st, 6, col->created_at);
    int rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->db);
    done(st);
    int ret = 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT && ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
        lookalike_errf(err, errlen, "collection %s already exists", col->name);
        ret = LOOKALIKE_EEXIST;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(s, "create collection", err, errlen);
    }
    pthread_mutex_unlock(&s->mu);
    return ret;
}

/* Reads one collection; call with the mutex held. */
static int col_get_locked(sqlite_catalog_t *s, const char *name, lookalike_collection_t *out, char *err,
                          size_t errlen)
{
    sqlite3_stmt *st = stmt(s, S_COL_GET);
    bind_text(st, 1, name);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        if (out)
            read_collection(st, out);
    } else if (rc == SQLITE_DONE) {
        lookalike_errf(err, errlen, "no collection %s", name);
        ret = LOOKALIKE_ENOTFOUND;
    } else {
        ret = db_fail(s, "get collection", err, errlen);
    }
    done(st);
    return ret;
}

static int col_get(lookalike_catalog_t *c, const char *name, lookalike_collection_t *out, char *err,
                   size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    int rc = col_get_locked(s, name, out, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int col_list(lookalike_catalog_t *c, lookalike_collection_t **out, size_t *n, char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = stmt(s, S_COL_LIST);
    lookalike_collection_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            lookalike_collection_t *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                lookalike_errf(err, errlen, "out of memory");
                ret = LOOKALIKE_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        read_collection(st, &v[cnt++]);
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = db_fail(s, "list collections", err, errlen);
    done(st);
    pthread_mutex_unlock(&s->mu);
    if (ret) {
        free(v);
        return ret;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int next_seq(sqlite_catalog_t *s, uint64_t *seq)
{
    sqlite3_stmt *st = stmt(s, S_NEXT_SEQ);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
    /* RETURNING finishes its write only when stepped to the end. */
    int rc2 = rc == SQLITE_ROW ? sqlite3_step(st) : rc;
    done(st);
    return rc == SQLITE_ROW && rc2 == SQLITE_DONE ? 0 : -1;
}

static int log_change(sqlite_catalog_t *s, uint64_t seq, const char *collection, const char *id,
                      uint64_t doc_id, int deleted)
{
    sqlite3_stmt *st = stmt(s, S_CHANGE_DELETE);
    bind_text(st, 1, collection);
    bind_text(st, 2, id);
    int rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return -1;
    st = stmt(s, S_CHANGE_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    bind_text(st, 2, collection);
    bind_text(st, 3, id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)doc_id);
    sqlite3_bind_int(st, 5, deleted);
    rc = sqlite3_step(st);
    done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Writes *p inside the open transaction (caller holds the mutex). 0 also when an insert finds
 * the very same product stored (a retry): *p then gets what is stored and nothing is written.
 * On failure the caller rolls back and restores *p (put_restore). */
static int put_locked(sqlite_catalog_t *s, const char *collection, lookalike_product_t *p, int mode,
                      const uint8_t *vec, uint32_t dim, char *err, size_t errlen)
{
    lookalike_collection_t col;
    char *body = NULL;
    int ret;
    if ((ret = col_get_locked(s, collection, &col, err, errlen)) != 0)
        return ret;
    if (vec && dim != col.dim) {
        lookalike_errf(err, errlen, "vector has %u values but collection %s has dimension %u", dim,
                       collection, col.dim);
        return LOOKALIKE_EINVAL;
    }
    sqlite3_stmt *st = stmt(s, S_PROD_FIND);
    bind_text(st, 1, collection);
    bind_text(st, 2, p->id);
    int rc = sqlite3_step(st), exists = rc == SQLITE_ROW, same = 0;
    uint64_t old_doc = 0, old_seq = 0;
    int64_t old_created = 0, old_updated = 0;
    char old_image[65] = "";
    if (exists) {
        old_doc = (uint64_t)sqlite3_column_int64(st, 0);
        old_created = sqlite3_column_int64(st, 1);
        const unsigned char *img = sqlite3_column_text(st, 2);
        if (img)
            snprintf(old_image, sizeof old_image, "%s", (const char *)img);
        old_seq = (uint64_t)sqlite3_column_int64(st, 3);
        old_updated = sqlite3_column_int64(st, 4);
        if (mode == LOOKALIKE_PUT_INSERT)
            same = catalog_same_product((const char *)sqlite3_column_text(st, 5),
                                        (size_t)sqlite3_column_bytes(st, 5), p);
    }
    done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(s, "find product", err, errlen);
    if (exists && mode == LOOKALIKE_PUT_INSERT) {
        if (same) {
            p->seq = old_seq;
            p->doc_id = old_doc;
            p->created_at = old_created;
            p->updated_at = old_updated;
            return 0;
        }
        lookalike_errf(err, errlen, "product %s already exists in collection %s", p->id, collection);
        return LOOKALIKE_EEXIST;
    }
    uint64_t seq;
    if (next_seq(s, &seq) != 0)
        return db_fail(s, "next sequence number", err, errlen);
    int64_t now = catalog_now_ms();
    p->seq = seq;
    p->doc_id = exists ? old_doc : seq;
    p->created_at = exists ? old_created : now;
    p->updated_at = now < p->created_at ? p->created_at : now;
    if (!p->image_sha256[0] && old_image[0])
        memcpy(p->image_sha256, old_image, sizeof old_image);
    if (!(body = lookalike_product_to_json(p, LOOKALIKE_PRODUCT_STORED))) {
        lookalike_errf(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    if (log_change(s, seq, collection, p->id, p->doc_id, 0) != 0) {
        free(body);
        return db_fail(s, "log change", err, errlen);
    }
    st = stmt(s, S_PROD_PUT);
    bind_text(st, 1, collection);
    bind_text(st, 2, p->id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)p->doc_id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)seq);
    sqlite3_bind_int64(st, 5, p->created_at);
    sqlite3_bind_int64(st, 6, p->updated_at);
    bind_text(st, 7, p->image_sha256[0] ? p->image_sha256 : NULL);
    bind_text(st, 8, body);
    if (vec)
        sqlite3_bind_blob(st, 9, vec, (int)dim * 4, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_int(st, 10, !vec && exists && strcmp(old_image, p->image_sha256) == 0);
    rc = sqlite3_step(st);
    done(st);
    free(body);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "write product", err, errlen);
}

/* Puts back what put_locked may have set in *p. */
static void put_restore(lookalike_product_t *p, const lookalike_product_t *saved)
{
    p->seq = saved->seq;
    p->doc_id = saved->doc_id;
    p->created_at = saved->created_at;
    p->updated_at = saved->updated_at;
    memcpy(p->image_sha256, saved->image_sha256, sizeof p->image_sha256);
}

static int prod_put(lookalike_catalog_t *c, const char *collection, lookalike_product_t *p, int mode,
                    const uint8_t *vec, uint32_t dim, char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    lookalike_product_t saved = *p;
    int ret = 0;
    pthread_mutex_lock(&s->mu);
    if (exec1(s, S_BEGIN) != 0)
        ret = db_fail(s, "begin", err, errlen);
    else if ((ret = put_locked(s, collection, p, mode, vec, dim, err, errlen)) == 0 &&
             exec1(s, S_COMMIT) != 0)
        ret = db_fail(s, "commit", err, errlen);
    if (ret != 0) {
        rollback(s);
        put_restore(p, &saved);
    }
    pthread_mutex_unlock(&s->mu);
    return ret;
}

/* Every write in one transaction, each under a savepoint so that a failing one is undone alone:
 * one commit (one fsync of the log) for the batch. */
static int prod_put_batch(lookalike_catalog_t *c, lookalike_catalog_write_t *w, const uint8_t *const *enc,
                          size_t n, char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    lookalike_product_t *saved = malloc((n ? n : 1) * sizeof *saved);
    int ret = 0;
    if (!saved) {
        lookalike_errf(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    size_t upto = 0; /* writes tried */
    pthread_mutex_lock(&s->mu);
    if (exec1(s, S_BEGIN) != 0) {
        ret = db_fail(s, "begin", err, errlen);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        upto = i + 1;
        if (w[i].rc != 0)
            continue;
        saved[i] = *w[i].p;
        if (exec1(s, S_SAVEPOINT) != 0) {
            ret = db_fail(s, "savepoint", err, errlen);
            break;
        }
        w[i].rc = put_locked(s, w[i].collection, w[i].p, w[i].mode, enc[i], enc[i] ? w[i].dim : 0, w[i].err,
                             sizeof w[i].err);
        if (w[i].rc != 0) {
            put_restore(w[i].p, &saved[i]);
            if (exec1(s, S_ROLLBACK_TO) != 0) {
                ret = db_fail(s, "rollback to savepoint", err, errlen);
                break;
            }
        }
        if (exec1(s, S_RELEASE) != 0) {
            ret = db_fail(s, "release savepoint", err, errlen);
            break;
        }
    }
    if (ret == 0 && exec1(s, S_COMMIT) != 0)
        ret = db_fail(s, "commit", err, errlen);
out:
    if (ret != 0) {
        rollback(s);
        /* Nothing of the batch is stored: every write not failed already fails with it. */
        for (size_t i = 0; i < n; i++) {
            if (w[i].rc != 0)
                continue;
            if (i < upto)
                put_restore(w[i].p, &saved[i]);
            w[i].rc = ret;
            snprintf(w[i].err, sizeof w[i].err, "%s", err && errlen ? err : "catalog: batch failed");
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(saved);
    return ret;
}

/* Turns a stored row (body, doc_id) into *out. */
static int load_product(sqlite3_stmt *st, lookalike_product_t *out, char *err, size_t errlen)
{
    const char *body = (const char *)sqlite3_column_text(st, 0);
    int len = sqlite3_column_bytes(st, 0);
    char perr[192];
    if (!body ||
        lookalike_product_parse(body, (size_t)len, LOOKALIKE_PRODUCT_STORED, out, perr, sizeof perr) != 0) {
        lookalike_errf(err, errlen, "catalog: a stored product is damaged: %s", body ? perr : "no body");
        return LOOKALIKE_EIO;
    }
    out->doc_id = (uint64_t)sqlite3_column_int64(st, 1);
    return 0;
}

static int prod_get(lookalike_catalog_t *c, const char *collection, const char *id, lookalike_product_t *out,
                    char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = stmt(s, S_PROD_GET);
    bind_text(st, 1, collection);
    bind_text(st, 2, id);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        ret = load_product(st, out, err, errlen);
    } else if (rc == SQLITE_DONE) {
        lookalike_errf(err, errlen, "no product %s in collection %s", id, collection);
        ret = LOOKALIKE_ENOTFOUND;
    } else {
        ret = db_fail(s, "get product", err, errlen);
    }
    done(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static int prod_get_doc(lookalike_catalog_t *c, uint64_t doc_id,
                        char collection[LOOKALIKE_COLLECTION_NAME_MAX + 1], lookalike_product_t *out,
                        char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = stmt(s, S_PROD_GET_DOC);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)doc_id);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        ret = load_product(st, out, err, errlen);
        if (ret == 0)
            snprintf(collection, LOOKALIKE_COLLECTION_NAME_MAX + 1, "%s",
                     (const char *)sqlite3_column_text(st, 2));
    } else if (rc == SQLITE_DONE) {
        lookalike_errf(err, errlen, "no product with doc_id %llu", (unsigned long long)doc_id);
        ret = LOOKALIKE_ENOTFOUND;
    } else {
        ret = db_fail(s, "get product", err, errlen);
    }
    done(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static int prod_delete(lookalike_catalog_t *c, const char *collection, const char *id, uint64_t *seq_out,
                       char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    int ret = 0;
    pthread_mutex_lock(&s->mu);
    if (exec1(s, S_BEGIN) != 0) {
        ret = db_fail(s, "begin", err, errlen);
        goto out;
    }
    sqlite3_stmt *st = stmt(s, S_PROD_FIND);
    bind_text(st, 1, collection);
    bind_text(st, 2, id);
    int rc = sqlite3_step(st);
    uint64_t doc_id = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    done(st);
    if (rc == SQLITE_DONE) {
        lookalike_errf(err, errlen, "no product %s in collection %s", id, collection);
        ret = LOOKALIKE_ENOTFOUND;
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        ret = db_fail(s, "find product", err, errlen);
        goto fail;
    }
    uint64_t seq;
    if (next_seq(s, &seq) != 0) {
        ret = db_fail(s, "next sequence number", err, errlen);
        goto fail;
    }
    st = stmt(s, S_PROD_DELETE);
    bind_text(st, 1, collection);
    bind_text(st, 2, id);
    rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE || log_change(s, seq, collection, id, doc_id, 1) != 0) {
        ret = db_fail(s, "delete product", err, errlen);
        goto fail;
    }
    if (exec1(s, S_COMMIT) != 0) {
        ret = db_fail(s, "commit", err, errlen);
        goto fail;
    }
    *seq_out = seq;
    goto out;
fail:
    rollback(s);
out:
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static int prod_list(lookalike_catalog_t *c, const char *collection, const char *after, size_t limit,
                     lookalike_product_t *out, size_t *n, int *more, uint64_t *total, char *err,
                     size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    size_t cnt = 0;
    int ret = 0, rc;
    *more = 0;
    pthread_mutex_lock(&s->mu);
    /* Count and page in one read transaction, so they agree. */
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        ret = db_fail(s, "begin", err, errlen);
        goto out;
    }
    if ((ret = col_get_locked(s, collection, NULL, err, errlen)) != 0)
        goto end;
    sqlite3_stmt *st = stmt(s, S_PROD_COUNT);
    bind_text(st, 1, collection);
    rc = sqlite3_step(st);
    *total = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    done(st);
    if (rc != SQLITE_ROW) {
        ret = db_fail(s, "count products", err, errlen);
        goto end;
    }
    st = stmt(s, S_PROD_LIST);
    bind_text(st, 1, collection);
    bind_text(st, 2, after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == limit) {
            *more = 1;
            break;
        }
        if ((ret = load_product(st, &out[cnt], err, errlen)) != 0)
            break;
        cnt++;
    }
    if (ret == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = db_fail(s, "list products", err, errlen);
    done(st);
end:
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&s->mu);
    if (ret) {
        for (size_t i = 0; i < cnt; i++)
            lookalike_product_release(&out[i]);
        cnt = 0;
    }
    *n = cnt;
    return ret;
}

static int changes(lookalike_catalog_t *c, uint64_t since, size_t limit, lookalike_change_t *out, size_t *n,
                   char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = stmt(s, S_CHANGES);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    size_t cnt = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && cnt < limit) {
        lookalike_change_t *ch = &out[cnt++];
        ch->seq = (uint64_t)sqlite3_column_int64(st, 0);
        snprintf(ch->collection, sizeof ch->collection, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(ch->id, sizeof ch->id, "%s", (const char *)sqlite3_column_text(st, 2));
        ch->doc_id = (uint64_t)sqlite3_column_int64(st, 3);
        ch->deleted = sqlite3_column_int(st, 4);
    }
    int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(s, "read changes", err, errlen);
    done(st);
    pthread_mutex_unlock(&s->mu);
    *n = ret ? 0 : cnt;
    return ret;
}

static int max_seq(lookalike_catalog_t *c, uint64_t *seq, char *err, size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = stmt(s, S_MAX_SEQ);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
    else
        ret = db_fail(s, "read sequence number", err, errlen);
    done(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

/* Another process may write the same file, and SQLite has no way to say so: poll. */
static int changes_wait(lookalike_catalog_t *c, uint64_t since, int timeout_ms, char *err, size_t errlen)
{
    for (int waited = 0;; waited += 50) {
        uint64_t seq = 0;
        int rc = max_seq(c, &seq, err, errlen);
        if (rc || seq > since)
            return rc ? rc : 1;
        if (waited >= timeout_ms)
            return 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int image_put(lookalike_catalog_t *c, const void *data, size_t len, char sha256[65], char *err,
                     size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    return image_store_put(s->dir, data, len, sha256, err, errlen);
}

static int image_get(lookalike_catalog_t *c, const char *sha256, void **data, size_t *len, char *err,
                     size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    return image_store_get(s->dir, sha256, data, len, err, errlen);
}

static int vector_get(lookalike_catalog_t *c, uint64_t doc_id, uint8_t *out, uint32_t dim, char *err,
                      size_t errlen)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = stmt(s, S_VEC_GET);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)doc_id);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB) {
        int n = sqlite3_column_bytes(st, 0);
        if ((size_t)n != (size_t)dim * 4) {
            lookalike_errf(err, errlen, "the stored vector of doc_id %llu has %d values, not %u",
                           (unsigned long long)doc_id, n / 4, dim);
            ret = LOOKALIKE_EINVAL;
        } else {
            memcpy(out, sqlite3_column_blob(st, 0), (size_t)n);
        }
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        lookalike_errf(err, errlen, "no vector stored for doc_id %llu", (unsigned long long)doc_id);
        ret = LOOKALIKE_ENOTFOUND;
    } else {
        ret = db_fail(s, "get vector", err, errlen);
    }
    done(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static void sqlite_close(lookalike_catalog_t *c)
{
    sqlite_catalog_t *s = (sqlite_catalog_t *)c;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}

static const lookalike_catalog_ops_t sqlite_ops = {
    .backend = "sqlite",
    .close = sqlite_close,
    .collection_create = col_create,
    .collection_get = col_get,
    .collection_list = col_list,
    .product_put = prod_put,
    .product_put_batch = prod_put_batch,
    .product_get = prod_get,
    .product_get_by_doc = prod_get_doc,
    .product_delete = prod_delete,
    .product_list = prod_list,
    .changes = changes,
    .max_seq = max_seq,
    .changes_wait = changes_wait,
    .image_put = image_put,
    .image_get = image_get,
    .vector_get = vector_get,
};

static int pragma_int(sqlite3 *db, const char *q, int *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

static int migrate(sqlite_catalog_t *s, char *err, size_t errlen)
{
    int version;
    if (pragma_int(s->db, "PRAGMA user_version", &version) != 0)
        return db_fail(s, "read schema version", err, errlen);
    if (version > SCHEMA_VERSION) {
        lookalike_errf(err, errlen,
                       "catalog: schema version %d is newer than this program's (%d); upgrade lookalike",
                       version, SCHEMA_VERSION);
        return LOOKALIKE_EINVAL;
    }
    for (; version < SCHEMA_VERSION; version++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", version + 1);
        if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return db_fail(s, "begin migration", err, errlen);
        if (sqlite3_exec(s->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(s->db, bump, NULL, NULL, NULL) != SQLITE_OK) {
            int rc = db_fail(s, "migrate schema", err, errlen);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return db_fail(s, "commit migration", err, errlen);
    }
    return 0;
}

lookalike_catalog_t *lookalike_catalog_open_sqlite(const char *dir, char *err, size_t errlen)
{
    sqlite_catalog_t *s = calloc(1, sizeof *s);
    if (!s) {
        lookalike_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->mu, NULL);
    char path[4096];
    s->dir = strdup(dir);
    if (!s->dir) {
        lookalike_errf(err, errlen, "out of memory");
        goto fail;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/catalog.db", dir) >= sizeof path) {
        lookalike_errf(err, errlen, "data directory path too large");
        goto fail;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        lookalike_errf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (image_store_init(dir, err, errlen) != 0)
        goto fail;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        lookalike_errf(err, errlen, "catalog: cannot open %s: %s", path,
                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_stmt *st;
    const char *mode = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            mode = (const char *)sqlite3_column_text(st, 0);
        int wal = mode && strcmp(mode, "wal") == 0;
        sqlite3_finalize(st);
        if (!wal) {
            lookalike_errf(err, errlen, "catalog: cannot switch %s to WAL mode", path);
            goto fail;
        }
    } else {
        db_fail(s, "set WAL mode", err, errlen);
        goto fail;
    }
    if (sqlite3_exec(s->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL, NULL, NULL) !=
        SQLITE_OK) {
        db_fail(s, "set pragmas", err, errlen);
        goto fail;
    }
    if (migrate(s, err, errlen) != 0)
        goto fail;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
            db_fail(s, "prepare statement", err, errlen);
            goto fail;
        }
    return &s->base;
fail:
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
    return NULL;
}
