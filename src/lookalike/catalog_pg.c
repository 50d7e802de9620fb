/* The PostgreSQL catalogue backend, on libpq. The contract is in lookalike.h (section
 * catalogue); the schema and the operator's view are in docs/storage.md.
 *
 * A gap-free change log. Sequence numbers come from one counter row (meta 'seq') that each
 * write increments with UPDATE ... RETURNING inside its transaction. The row lock that takes
 * is held until the transaction ends, and PostgreSQL releases it only after the commit is
 * visible to other sessions, so writers take numbers one at a time in the order they commit:
 * the next writer's UPDATE waits for the previous commit, then reads the number it committed.
 * A write that rolls back undoes its increment, so no number is ever skipped. A SEQUENCE
 * would hand numbers out in the order writers ask, not the order they commit: a tailer that
 * read 7 while 6 was still being written would never see 6. The price is that writes to one
 * catalogue are serialised from the counter update to the commit, which is why the update
 * comes after the checks that need no lock: the lock covers two statements and the commit.
 * A standby replays commits in the same order, so a reader on a replica sees a prefix too.
 *
 * Connections. A small pool, each connection used by one call at a time. Before a call uses a
 * pooled connection it checks that the server sent nothing meanwhile: a server that restarted
 * or was stopped has sent its goodbye and closed the socket, so the connection is replaced
 * before the call runs. A
 * call that still meets a dropped connection (the server died mid-call, or a failover) drops
 * it; reads are retried once on a new connection, writes fail with LOOKALIKE_EAGAIN saying
 * whether they were applied. A new connection goes through the whole host list of the
 * connection string and, with target_session_attrs=read-write, lands on the primary. */
#include "lookalike/catalog_internal.h"
#include "lookalike/image_store.h"
#include "lookalike/lookalike.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connections kept open; a call beyond that waits for one to be free. */
#define POOL_SIZE 4
/* Key of the advisory lock that serialises schema migrations between nodes ("lookalik"). */
#define MIGRATION_LOCK "7813586385497778539"
/* Parameters added to the caller's connection string unless it sets them. */
static const char *const conn_defaults[][2] = {
    {"target_session_attrs", "read-write"},
    {"connect_timeout", "5"},
    {"keepalives_idle", "10"},
    {"keepalives_interval", "2"},
    {"keepalives_count", "3"},
    /* A dead peer (network partition) fails a call after this many ms instead of hanging. */
    {"tcp_user_timeout", "10000"},
    {"application_name", "lookalike"},
    {"client_encoding", "UTF8"},
};

/* Migration i takes the schema from version i to i + 1. Never edit a released one: add.
 * Text that is compared or ordered is COLLATE "C", so ids sort bytewise, as in SQLite. */
static const char *const migrations[] = {
    "CREATE TABLE lookalike.collections(name text COLLATE \"C\" PRIMARY KEY, model text NOT NULL,"
    " metric text NOT NULL, dim integer NOT NULL, index_params text NOT NULL, created_at bigint NOT NULL);"
    "CREATE TABLE lookalike.products(collection text COLLATE \"C\" NOT NULL"
    " REFERENCES lookalike.collections(name), id text COLLATE \"C\" NOT NULL, doc_id bigint NOT NULL UNIQUE,"
    " seq bigint NOT NULL, created_at bigint NOT NULL, updated_at bigint NOT NULL, image_sha256 text,"
    " body text NOT NULL, vector bytea, PRIMARY KEY(collection, id));"
    "CREATE TABLE lookalike.changes(seq bigint PRIMARY KEY, collection text COLLATE \"C\" NOT NULL,"
    " id text COLLATE \"C\" NOT NULL, doc_id bigint NOT NULL, deleted boolean NOT NULL,"
    " UNIQUE(collection, id));"
    "CREATE TABLE lookalike.images(sha256 text COLLATE \"C\" PRIMARY KEY, data bytea NOT NULL);"
    /* Photos are already compressed: do not spend CPU trying again. */
    "ALTER TABLE lookalike.images ALTER COLUMN data SET STORAGE EXTERNAL;"
    "INSERT INTO lookalike.meta(key, value) VALUES('seq', 0);",
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
    S_PROD_WRITE,
    S_PROD_GET,
    S_PROD_GET_DOC,
    S_PROD_DELETE,
    S_PROD_LIST,
    S_CHANGES,
    S_IMG_HAS,
    S_IMG_PUT,
    S_IMG_GET,
    S_VEC_GET,
    S_COUNT
};

/* Each statement with its parameter types, one letter a parameter: t text, i bigint,
 * y bytea, b boolean. */
static const struct {
    const char *types;
    const char *sql;
} stmts[S_COUNT] = {
    [S_BEGIN] = {"", "BEGIN"},
    [S_COMMIT] = {"", "COMMIT"},
    [S_ROLLBACK] = {"", "ROLLBACK"},
    [S_NEXT_SEQ] = {"", "UPDATE lookalike.meta SET value = value + 1 WHERE key = 'seq' RETURNING value"},
    [S_MAX_SEQ] = {"", "SELECT value FROM lookalike.meta WHERE key = 'seq'"},
    [S_COL_INSERT] = {"tttiti", "INSERT INTO lookalike.collections(name, model, metric, dim, index_params,"
                                " created_at) VALUES($1, $2, $3, $4, $5, $6)"},
    [S_COL_GET] = {"t", "SELECT name, model, metric, dim, index_params, created_at FROM lookalike.collections"
                        " WHERE name = $1"},
    [S_COL_LIST] = {"", "SELECT name, model, metric, dim, index_params, created_at FROM lookalike.collections"
                        " ORDER BY name"},
    [S_PROD_FIND] = {"tt", "SELECT doc_id, created_at, image_sha256, seq, updated_at, body"
                           " FROM lookalike.products WHERE collection = $1 AND id = $2"},
    /* The product, its change log entry and the notification in one statement; $10 true keeps
     * the stored vector (the image stays and no new vector came). */
    [S_PROD_WRITE] =
        {"ttiiiittyb",
         "WITH p AS (INSERT INTO lookalike.products AS t(collection, id, doc_id, seq, created_at,"
         " updated_at, image_sha256, body, vector) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)"
         " ON CONFLICT (collection, id) DO UPDATE SET doc_id = EXCLUDED.doc_id,"
         " seq = EXCLUDED.seq, created_at = EXCLUDED.created_at,"
         " updated_at = EXCLUDED.updated_at, image_sha256 = EXCLUDED.image_sha256,"
         " body = EXCLUDED.body, vector = CASE WHEN $10 THEN t.vector ELSE EXCLUDED.vector END"
         " RETURNING 1),"
         " c AS (INSERT INTO lookalike.changes AS t(seq, collection, id, doc_id, deleted)"
         " VALUES($4, $1, $2, $3, false) ON CONFLICT (collection, id) DO UPDATE SET"
         " seq = EXCLUDED.seq, doc_id = EXCLUDED.doc_id, deleted = false RETURNING 1)"
         " SELECT pg_notify('lookalike_changes', $4::text) FROM p, c"},
    [S_PROD_GET] = {"tt", "SELECT body, doc_id FROM lookalike.products WHERE collection = $1 AND id = $2"},
    [S_PROD_GET_DOC] = {"i", "SELECT body, doc_id, collection FROM lookalike.products WHERE doc_id = $1"},
    [S_PROD_DELETE] = {"tti", "WITH d AS (DELETE FROM lookalike.products WHERE collection = $1 AND id = $2"
                              " RETURNING doc_id),"
                              " c AS (INSERT INTO lookalike.changes(seq, collection, id, doc_id, deleted)"
                              " SELECT $3, $1, $2, doc_id, true FROM d ON CONFLICT (collection, id) DO UPDATE"
                              " SET seq = EXCLUDED.seq, doc_id = EXCLUDED.doc_id, deleted = true"
                              " RETURNING doc_id)"
                              " SELECT doc_id, pg_notify('lookalike_changes', $3::text) FROM c"},
    /* Whether the collection exists, its count and the page, from one snapshot. */
    [S_PROD_LIST] = {"tti",
                     "SELECT h.has, h.n, p.body, p.doc_id FROM (SELECT"
                     " EXISTS (SELECT 1 FROM lookalike.collections WHERE name = $1) AS has,"
                     " (SELECT count(*) FROM lookalike.products WHERE collection = $1) AS n) h"
                     " LEFT JOIN LATERAL (SELECT body, doc_id, id FROM lookalike.products"
                     " WHERE collection = $1 AND id > $2 ORDER BY id LIMIT $3) p ON true ORDER BY p.id"},
    [S_CHANGES] = {"ii", "SELECT seq, collection, id, doc_id, deleted FROM lookalike.changes WHERE seq > $1"
                         " ORDER BY seq LIMIT $2"},
    [S_IMG_HAS] = {"t", "SELECT 1 FROM lookalike.images WHERE sha256 = $1"},
    [S_IMG_PUT] =
        {"ty", "INSERT INTO lookalike.images(sha256, data) VALUES($1, $2) ON CONFLICT (sha256) DO NOTHING"},
    [S_IMG_GET] = {"t", "SELECT data FROM lookalike.images WHERE sha256 = $1"},
    [S_VEC_GET] = {"i", "SELECT vector FROM lookalike.products WHERE doc_id = $1"},
};

typedef struct {
    PGconn *conn; /* NULL: not connected; connected on next use */
    int busy;     /* a call holds it */
} pg_slot_t;

typedef struct {
    lookalike_catalog_t base; /* first, so the handle converts both ways */
    /* Connection parameters for PQconnectdbParams: NULL-terminated, strings owned here. */
    char **keys;
    char **vals;
    pthread_mutex_t mu; /* guards slots[].busy */
    pthread_cond_t freed;
    pg_slot_t slots[POOL_SIZE];
    /* The LISTEN lookalike_changes connection of changes_wait, opened on first use. */
    pthread_mutex_t listen_mu;
    PGconn *listen;
} pg_catalog_t;

/* One statement's parameters, as text except for bytea (binary). */
typedef struct {
    int n;
    const char *v[10];
    int len[10];
    int fmt[10];
} params_t;

static void perr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void p_text(params_t *p, const char *v)
{
    p->v[p->n] = v;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void p_bytes(params_t *p, const void *v, size_t len)
{
    p->v[p->n] = v;
    p->len[p->n] = (int)len;
    p->fmt[p->n++] = 1;
}

/* libpq messages end in a newline; keep the first line. */
static const char *one_line(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg && *msg ? msg : "unknown error");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static uint64_t u64(const PGresult *r, int row, int col)
{
    return strtoull(PQgetvalue(r, row, col), NULL, 10);
}

/* ---- connections ---- */

static void slot_drop(pg_slot_t *s)
{
    PQfinish(s->conn);
    s->conn = NULL;
}

/* Connects with the handle's parameters; NULL with a message when no server takes it. */
static PGconn *connect_raw(pg_catalog_t *pg, char *err, size_t errlen)
{
    PGconn *conn = PQconnectdbParams((const char *const *)pg->keys, (const char *const *)pg->vals, 0);
    char line[512];
    if (!conn) {
        perr(err, errlen, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        perr(err, errlen, "catalog: cannot reach a writable PostgreSQL server: %s",
             one_line(PQerrorMessage(conn), line, sizeof line));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static int prepare_all(PGconn *conn, char *err, size_t errlen)
{
    for (int i = 0; i < S_COUNT; i++) {
        Oid types[10];
        int n = (int)strlen(stmts[i].types);
        for (int j = 0; j < n; j++) {
            char t = stmts[i].types[j];
            types[j] = t == 't' ? 25 : t == 'i' ? 20 : t == 'y' ? 17 : 16;
        }
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        PGresult *r = PQprepare(conn, name, stmts[i].sql, n, types);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            char line[512];
            perr(err, errlen, "catalog: prepare statement %d: %s", i,
                 one_line(PQresultErrorMessage(r), line, sizeof line));
        }
        PQclear(r);
        if (!ok)
            return PQstatus(conn) == CONNECTION_OK ? LOOKALIKE_EIO : LOOKALIKE_EAGAIN;
    }
    return 0;
}

/* Takes a pooled connection, waiting while all are in use, and makes sure it is connected
 * and was not closed by the server meanwhile. */
static int acquire(pg_catalog_t *pg, pg_slot_t **out, char *err, size_t errlen)
{
    pthread_mutex_lock(&pg->mu);
    pg_slot_t *s = NULL;
    for (;;) {
        /* A connected slot first, so the pool does not open connections it does not need. */
        for (int i = 0; i < POOL_SIZE && !s; i++)
            if (!pg->slots[i].busy && pg->slots[i].conn)
                s = &pg->slots[i];
        for (int i = 0; i < POOL_SIZE && !s; i++)
            if (!pg->slots[i].busy)
                s = &pg->slots[i];
        if (s)
            break;
        pthread_cond_wait(&pg->freed, &pg->mu);
    }
    s->busy = 1;
    pthread_mutex_unlock(&pg->mu);
    /* An idle connection hears from the server only when it goes away (the termination
     * message, then end of file), since nothing here LISTENs: anything readable means stale. */
    struct pollfd pfd = {.fd = s->conn ? PQsocket(s->conn) : -1, .events = POLLIN};
    if (s->conn && (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) != PQTRANS_IDLE ||
                    pfd.fd < 0 || poll(&pfd, 1, 0) != 0))
        slot_drop(s);
    if (!s->conn) {
        int rc = LOOKALIKE_EAGAIN;
        char why[512];
        if (!(s->conn = connect_raw(pg, why, sizeof why)) ||
            (rc = prepare_all(s->conn, why, sizeof why)) != 0) {
            perr(err, errlen, "%s (retry later)", why);
            slot_drop(s);
            pthread_mutex_lock(&pg->mu);
            s->busy = 0;
            pthread_cond_signal(&pg->freed);
            pthread_mutex_unlock(&pg->mu);
            return rc;
        }
    }
    *out = s;
    return 0;
}

static void release(pg_catalog_t *pg, pg_slot_t *s)
{
    pthread_mutex_lock(&pg->mu);
    s->busy = 0;
    pthread_cond_signal(&pg->freed);
    pthread_mutex_unlock(&pg->mu);
}

/* 1 when a failed call means the connection is unusable and a new one (to the host that is
 * primary now) should be made: lost connection, server shutting down, or a server that turned
 * read-only under us (demoted by a failover). */
static int conn_failure(PGconn *conn, const char *state)
{
    if (PQstatus(conn) != CONNECTION_OK || !state)
        return 1;
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
           strcmp(state, "57P03") == 0 || strcmp(state, "25006") == 0;
}

/* Runs prepared statement st on the slot's connection. Returns its result, or NULL with *rc:
 * LOOKALIKE_EAGAIN when the connection failed (the slot is dropped; err says why),
 * LOOKALIKE_EEXIST on a unique violation, LOOKALIKE_EIO otherwise. */
static PGresult *run(pg_slot_t *s, int st, const params_t *p, int binary, int *rc, char *err, size_t errlen)
{
    char name[16], line[512];
    snprintf(name, sizeof name, "s%d", st);
    PGresult *r = PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, binary);
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), line, sizeof line);
    if (conn_failure(s->conn, state)) {
        perr(err, errlen, "%s", line);
        *rc = LOOKALIKE_EAGAIN;
        slot_drop(s);
    } else {
        perr(err, errlen, "catalog: %s", line);
        *rc = state && strcmp(state, "23505") == 0 ? LOOKALIKE_EEXIST : LOOKALIKE_EIO;
    }
    PQclear(r);
    return NULL;
}

/* Runs one statement that is safe to repeat (a read, or an idempotent write), on a new
 * connection a second time if the first one had dropped. */
static PGresult *run_retry(pg_catalog_t *pg, int st, const params_t *p, int binary, int *rc, char *err,
                           size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        pg_slot_t *s;
        if ((*rc = acquire(pg, &s, err, errlen)) != 0)
            return NULL;
        PGresult *r = run(s, st, p, binary, rc, err, errlen);
        release(pg, s);
        if (r || *rc != LOOKALIKE_EAGAIN || attempt == 1) {
            if (!r && *rc == LOOKALIKE_EAGAIN) {
                char why[512];
                snprintf(why, sizeof why, "%s", err ? err : "");
                perr(err, errlen, "catalog: lost the connection to PostgreSQL twice: %s", why);
            }
            return r;
        }
    }
}

/* ---- writes: one transaction on one connection ---- */

typedef struct {
    pg_catalog_t *pg;
    pg_slot_t *slot;
    int committing; /* the COMMIT was sent: a lost connection leaves the outcome unknown */
} txn_t;

static int txn_begin(pg_catalog_t *pg, txn_t *t, char *err, size_t errlen)
{
    t->pg = pg;
    t->slot = NULL;
    t->committing = 0;
    int rc = acquire(pg, &t->slot, err, errlen);
    if (rc)
        return rc;
    PGresult *r = run(t->slot, S_BEGIN, NULL, 0, &rc, err, errlen);
    PQclear(r);
    return r ? 0 : rc;
}

/* Runs a statement inside the transaction; see run(). */
static PGresult *txn_run(txn_t *t, int st, const params_t *p, int binary, int *rc, char *err, size_t errlen)
{
    return run(t->slot, st, p, binary, rc, err, errlen);
}

/* Ends the transaction: commits when rc is 0 (and returns the commit's outcome), else rolls
 * back and returns rc. A lost connection becomes a message that says whether the write was
 * applied. */
static int txn_end(txn_t *t, int rc, char *err, size_t errlen)
{
    if (!t->slot)
        return rc;
    if (rc == 0 && t->slot->conn) {
        t->committing = 1;
        PGresult *r = run(t->slot, S_COMMIT, NULL, 0, &rc, err, errlen);
        PQclear(r);
    } else if (t->slot->conn && PQtransactionStatus(t->slot->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(t->slot->conn, "ROLLBACK");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            slot_drop(t->slot);
        PQclear(r);
    }
    if (rc == LOOKALIKE_EAGAIN) {
        char why[512];
        snprintf(why, sizeof why, "%s", err ? err : "");
        if (t->committing)
            perr(err, errlen,
                 "catalog: lost the connection to PostgreSQL during commit (%s); the write may have been "
                 "applied: retry it (writes are idempotent on the product id)",
                 why);
        else
            perr(err, errlen,
                 "catalog: lost the connection to PostgreSQL (%s); the write was not applied: retry it", why);
    }
    release(t->pg, t->slot);
    t->slot = NULL;
    return rc;
}

/* ---- collections ---- */

static void read_collection(const PGresult *r, int row, lookalike_collection_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", PQgetvalue(r, row, 0));
    snprintf(out->model, sizeof out->model, "%s", PQgetvalue(r, row, 1));
    snprintf(out->metric, sizeof out->metric, "%s", PQgetvalue(r, row, 2));
    out->dim = (uint32_t)u64(r, row, 3);
    snprintf(out->index_params, sizeof out->index_params, "%s", PQgetvalue(r, row, 4));
    out->created_at = (int64_t)strtoll(PQgetvalue(r, row, 5), NULL, 10);
}

static int col_create(lookalike_catalog_t *c, lookalike_collection_t *col, char *err, size_t errlen)
{
    pg_catalog_t *pg = (pg_catalog_t *)c;
    char dim[16], created[24];
    col->created_at = catalog_now_ms();
    snprintf(dim, sizeof dim, "%u", col->dim);
    snprintf(created, sizeof created, "%lld", (long long)col->created_at);
    params_t p = {0};
    p_text(&p, col->name);
    p_text(&p, col->model);
    p_text(&p, col->metric);
    p_text(&p, dim);
    p_text(&p, col->index_params);
    p_text(&p, created);
    pg_slot_t *s;
    int rc = acquire(pg, &s, err, errlen);
    if (rc)
        return rc;
    PGresult *r = run(s, S_COL_INSERT, &p, 0, &rc, err, errlen);
    release(pg, s);
    PQclear(r);
    if (r)
        return 0;
    if (rc == LOOKALIKE_EEXIST) {
        perr(err, errlen, "collection %s already exists", col->name);
    } else if (rc == LOOKALIKE_EAGAIN) {
        char why[512];
        snprintf(why, sizeof why, "%s", err ? err : "");
        perr(
            err, errlen,
            "catalog: lost the connection to PostgreSQL (%s); the collection may have been created: retry it",
            why);
    }
    return rc;
}

static int col_get(lookalike_catalog_t *c, const char *name, lookalike_collection_t *out, char *err,
                   size_t errlen)
{
    params_t p = {0};
    p_text(&p, name);
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_COL_GET, &p, 0, &rc, err, errlen);
    if (!r)
        return rc;
    if (PQntuples(r) == 1) {
        read_collection(r, 0, out);
        rc = 0;
    } else {
        perr(err, errlen, "no collection %s", name);
        rc = LOOKALIKE_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

static int col_list(lookalike_catalog_t *c, lookalike_collection_t **out, size_t *n, char *err, size_t errlen)
{
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_COL_LIST, NULL, 0, &rc, err, errlen);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    lookalike_collection_t *v = rows ? calloc((size_t)rows, sizeof *v) : NULL;
    if (rows && !v) {
        PQclear(r);
        perr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    for (int i = 0; i < rows; i++)
        read_collection(r, i, &v[i]);
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

/* ---- products ---- */

/* Turns a stored (body, doc_id) row into *out. */
static int load_product(const PGresult *r, int row, lookalike_product_t *out, char *err, size_t errlen)
{
    char perrbuf[192];
    const char *body = PQgetvalue(r, row, 0);
    if (lookalike_product_parse(body, (size_t)PQgetlength(r, row, 0), LOOKALIKE_PRODUCT_STORED, out, perrbuf,
                                sizeof perrbuf) != 0) {
        perr(err, errlen, "catalog: a stored product is damaged: %s", perrbuf);
        return LOOKALIKE_EIO;
    }
    out->doc_id = u64(r, row, 1);
    return 0;
}

static int prod_put(lookalike_catalog_t *c, const char *collection, lookalike_product_t *p, int mode,
                    const uint8_t *vec, uint32_t dim, char *err, size_t errlen)
{
    pg_catalog_t *pg = (pg_catalog_t *)c;
    lookalike_product_t saved = *p;
    char *body = NULL;
    PGresult *r = NULL;
    txn_t t;
    params_t q = {0};
    p_text(&q, collection);
    int rc = txn_begin(pg, &t, err, errlen);
    if (rc)
        goto fail;
    /* Collections are never dropped, so this check needs no lock. */
    if (!(r = txn_run(&t, S_COL_GET, &q, 0, &rc, err, errlen)))
        goto fail;
    if (PQntuples(r) != 1) {
        perr(err, errlen, "no collection %s", collection);
        rc = LOOKALIKE_ENOTFOUND;
        goto fail;
    }
    uint32_t col_dim = (uint32_t)u64(r, 0, 3);
    PQclear(r);
    r = NULL;
    if (vec && dim != col_dim) {
        perr(err, errlen, "vector has %u values but collection %s has dimension %u", dim, collection,
             col_dim);
        rc = LOOKALIKE_EINVAL;
        goto fail;
    }
    /* From here on this transaction holds the counter row: writes are one at a time. */
    if (!(r = txn_run(&t, S_NEXT_SEQ, NULL, 0, &rc, err, errlen)))
        goto fail;
    uint64_t seq = u64(r, 0, 0);
    PQclear(r);
    p_text(&q, p->id);
    if (!(r = txn_run(&t, S_PROD_FIND, &q, 0, &rc, err, errlen)))
        goto fail;
    int exists = PQntuples(r) == 1;
    uint64_t old_doc = exists ? u64(r, 0, 0) : 0;
    int64_t old_created = exists ? (int64_t)strtoll(PQgetvalue(r, 0, 1), NULL, 10) : 0;
    char old_image[65] = "";
    if (exists && !PQgetisnull(r, 0, 2))
        snprintf(old_image, sizeof old_image, "%s", PQgetvalue(r, 0, 2));
    if (exists && mode == LOOKALIKE_PUT_INSERT) {
        if (catalog_same_product(PQgetvalue(r, 0, 5), (size_t)PQgetlength(r, 0, 5), p)) {
            /* A retry of an insert that happened: answer with what is stored, write nothing
             * (the rollback gives the sequence number back). */
            p->doc_id = old_doc;
            p->created_at = old_created;
            p->seq = u64(r, 0, 3);
            p->updated_at = (int64_t)strtoll(PQgetvalue(r, 0, 4), NULL, 10);
            PQclear(r);
            r = NULL;
            txn_end(&t, LOOKALIKE_EEXIST, NULL, 0);
            return 0;
        }
        perr(err, errlen, "product %s already exists in collection %s", p->id, collection);
        rc = LOOKALIKE_EEXIST;
        goto fail;
    }
    PQclear(r);
    r = NULL;
    int64_t now = catalog_now_ms();
    p->seq = seq;
    p->doc_id = exists ? old_doc : seq;
    p->created_at = exists ? old_created : now;
    p->updated_at = now < p->created_at ? p->created_at : now;
    if (!p->image_sha256[0] && old_image[0])
        memcpy(p->image_sha256, old_image, sizeof old_image);
    if (!(body = lookalike_product_to_json(p, LOOKALIKE_PRODUCT_STORED))) {
        perr(err, errlen, "out of memory");
        rc = LOOKALIKE_ENOMEM;
        goto fail;
    }
    char doc_s[24], seq_s[24], created_s[24], updated_s[24];
    snprintf(doc_s, sizeof doc_s, "%llu", (unsigned long long)p->doc_id);
    snprintf(seq_s, sizeof seq_s, "%llu", (unsigned long long)seq);
    snprintf(created_s, sizeof created_s, "%lld", (long long)p->created_at);
    snprintf(updated_s, sizeof updated_s, "%lld", (long long)p->updated_at);
    int keep_vec = !vec && exists && strcmp(old_image, p->image_sha256) == 0;
    params_t w = {0};
    p_text(&w, collection);
    p_text(&w, p->id);
    p_text(&w, doc_s);
    p_text(&w, seq_s);
    p_text(&w, created_s);
    p_text(&w, updated_s);
    p_text(&w, p->image_sha256[0] ? p->image_sha256 : NULL);
    p_text(&w, body);
    if (vec)
        p_bytes(&w, vec, (size_t)dim * 4);
    else
        p_text(&w, NULL);
    p_text(&w, keep_vec ? "t" : "f");
    if (!(r = txn_run(&t, S_PROD_WRITE, &w, 0, &rc, err, errlen)))
        goto fail;
    PQclear(r);
    r = NULL;
    if ((rc = txn_end(&t, 0, err, errlen)) != 0)
        goto fail;
    free(body);
    return 0;
fail:
    PQclear(r);
    rc = txn_end(&t, rc, err, errlen);
    p->seq = saved.seq;
    p->doc_id = saved.doc_id;
    p->created_at = saved.created_at;
    p->updated_at = saved.updated_at;
    memcpy(p->image_sha256, saved.image_sha256, sizeof p->image_sha256);
    free(body);
    return rc;
}

static int prod_get(lookalike_catalog_t *c, const char *collection, const char *id, lookalike_product_t *out,
                    char *err, size_t errlen)
{
    params_t p = {0};
    p_text(&p, collection);
    p_text(&p, id);
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_PROD_GET, &p, 0, &rc, err, errlen);
    if (!r)
        return rc;
    if (PQntuples(r) == 1) {
        rc = load_product(r, 0, out, err, errlen);
    } else {
        perr(err, errlen, "no product %s in collection %s", id, collection);
        rc = LOOKALIKE_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

static int prod_get_doc(lookalike_catalog_t *c, uint64_t doc_id,
                        char collection[LOOKALIKE_COLLECTION_NAME_MAX + 1], lookalike_product_t *out,
                        char *err, size_t errlen)
{
    char doc_s[24];
    snprintf(doc_s, sizeof doc_s, "%llu", (unsigned long long)doc_id);
    params_t p = {0};
    p_text(&p, doc_s);
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_PROD_GET_DOC, &p, 0, &rc, err, errlen);
    if (!r)
        return rc;
    if (PQntuples(r) == 1) {
        rc = load_product(r, 0, out, err, errlen);
        if (rc == 0)
            snprintf(collection, LOOKALIKE_COLLECTION_NAME_MAX + 1, "%s", PQgetvalue(r, 0, 2));
    } else {
        perr(err, errlen, "no product with doc_id %llu", (unsigned long long)doc_id);
        rc = LOOKALIKE_ENOTFOUND;
    }
    PQclear(r);
    return rc;
}

static int prod_delete(lookalike_catalog_t *c, const char *collection, const char *id, uint64_t *seq_out,
                       char *err, size_t errlen)
{
    pg_catalog_t *pg = (pg_catalog_t *)c;
    PGresult *r = NULL;
    txn_t t;
    int rc = txn_begin(pg, &t, err, errlen);
    if (rc)
        goto fail;
    if (!(r = txn_run(&t, S_NEXT_SEQ, NULL, 0, &rc, err, errlen)))
        goto fail;
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%s", PQgetvalue(r, 0, 0));
    uint64_t seq = u64(r, 0, 0);
    PQclear(r);
    params_t p = {0};
    p_text(&p, collection);
    p_text(&p, id);
    p_text(&p, seq_s);
    if (!(r = txn_run(&t, S_PROD_DELETE, &p, 0, &rc, err, errlen)))
        goto fail;
    if (PQntuples(r) != 1) {
        perr(err, errlen, "no product %s in collection %s", id, collection);
        rc = LOOKALIKE_ENOTFOUND;
        goto fail;
    }
    PQclear(r);
    r = NULL;
    if ((rc = txn_end(&t, 0, err, errlen)) != 0)
        return rc;
    *seq_out = seq;
    return 0;
fail:
    PQclear(r);
    return txn_end(&t, rc, err, errlen);
}

static int prod_list(lookalike_catalog_t *c, const char *collection, const char *after, size_t limit,
                     lookalike_product_t *out, size_t *n, int *more, uint64_t *total, char *err,
                     size_t errlen)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", limit + 1);
    params_t p = {0};
    p_text(&p, collection);
    p_text(&p, after);
    p_text(&p, lim);
    *n = 0;
    *more = 0;
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_PROD_LIST, &p, 0, &rc, err, errlen);
    if (!r)
        return rc;
    if (PQntuples(r) < 1 || strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        PQclear(r);
        perr(err, errlen, "no collection %s", collection);
        return LOOKALIKE_ENOTFOUND;
    }
    *total = u64(r, 0, 1);
    size_t cnt = 0;
    rc = 0;
    for (int i = 0; i < PQntuples(r) && !PQgetisnull(r, i, 2); i++) {
        if (cnt == limit) {
            *more = 1;
            break;
        }
        /* Columns 2 and 3 are (body, doc_id): shift the row view by building on load_product. */
        char perrbuf[192];
        if (lookalike_product_parse(PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2),
                                    LOOKALIKE_PRODUCT_STORED, &out[cnt], perrbuf, sizeof perrbuf) != 0) {
            perr(err, errlen, "catalog: a stored product is damaged: %s", perrbuf);
            rc = LOOKALIKE_EIO;
            break;
        }
        out[cnt++].doc_id = u64(r, i, 3);
    }
    PQclear(r);
    if (rc) {
        for (size_t i = 0; i < cnt; i++)
            lookalike_product_release(&out[i]);
        return rc;
    }
    *n = cnt;
    return 0;
}

static int changes(lookalike_catalog_t *c, uint64_t since, size_t limit, lookalike_change_t *out, size_t *n,
                   char *err, size_t errlen)
{
    char since_s[24], lim[24];
    snprintf(since_s, sizeof since_s, "%llu", (unsigned long long)since);
    snprintf(lim, sizeof lim, "%zu", limit);
    params_t p = {0};
    p_text(&p, since_s);
    p_text(&p, lim);
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_CHANGES, &p, 0, &rc, err, errlen);
    if (!r)
        return rc;
    size_t cnt = 0;
    for (int i = 0; i < PQntuples(r) && cnt < limit; i++) {
        lookalike_change_t *ch = &out[cnt++];
        ch->seq = u64(r, i, 0);
        snprintf(ch->collection, sizeof ch->collection, "%s", PQgetvalue(r, i, 1));
        snprintf(ch->id, sizeof ch->id, "%s", PQgetvalue(r, i, 2));
        ch->doc_id = u64(r, i, 3);
        ch->deleted = strcmp(PQgetvalue(r, i, 4), "t") == 0;
    }
    PQclear(r);
    *n = cnt;
    return 0;
}

static int max_seq(lookalike_catalog_t *c, uint64_t *seq, char *err, size_t errlen)
{
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_MAX_SEQ, NULL, 0, &rc, err, errlen);
    if (!r)
        return rc;
    *seq = PQntuples(r) == 1 ? u64(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

/* Drops the listening connection; a lost connection is only a reason to wake the caller, who
 * reads the change log (on a connection of the pool) and comes back. */
static int listen_lost(pg_catalog_t *pg, char *err, size_t errlen)
{
    char line[512];
    perr(err, errlen, "catalog: the connection that waits for changes dropped: %s",
         one_line(PQerrorMessage(pg->listen), line, sizeof line));
    PQfinish(pg->listen);
    pg->listen = NULL;
    return LOOKALIKE_EAGAIN;
}

static int changes_wait(lookalike_catalog_t *c, uint64_t since, int timeout_ms, char *err, size_t errlen)
{
    pg_catalog_t *pg = (pg_catalog_t *)c;
    PGresult *r = NULL;
    PGnotify *n;
    int rc;
    pthread_mutex_lock(&pg->listen_mu);
    if (!pg->listen) {
        char why[512];
        if (!(pg->listen = connect_raw(pg, why, sizeof why))) {
            perr(err, errlen, "%s (retry later)", why);
            rc = LOOKALIKE_EAGAIN;
            goto out;
        }
        r = PQexec(pg->listen, "LISTEN lookalike_changes");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = listen_lost(pg, err, errlen);
            goto out;
        }
        PQclear(r);
    }
    /* Read after LISTEN took effect: a commit after this read also sends us a notification. */
    r = PQexec(pg->listen, "SELECT value FROM lookalike.meta WHERE key = 'seq'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = listen_lost(pg, err, errlen);
        goto out;
    }
    rc = u64(r, 0, 0) > since;
    while ((n = PQnotifies(pg->listen))) {
        PQfreemem(n);
        rc = 1;
    }
    if (rc)
        goto out;
    struct pollfd pfd = {.fd = PQsocket(pg->listen), .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) > 0) {
        if (!PQconsumeInput(pg->listen)) {
            rc = listen_lost(pg, err, errlen);
            goto out;
        }
        while ((n = PQnotifies(pg->listen))) {
            PQfreemem(n);
            rc = 1;
        }
    }
out:
    PQclear(r);
    pthread_mutex_unlock(&pg->listen_mu);
    return rc;
}

/* ---- images and vectors ---- */

static int image_put(lookalike_catalog_t *c, const void *data, size_t len, char sha256[65], char *err,
                     size_t errlen)
{
    pg_catalog_t *pg = (pg_catalog_t *)c;
    if (len == 0) {
        perr(err, errlen, "image is empty");
        return LOOKALIKE_EINVAL;
    }
    if (len > LOOKALIKE_IMAGE_MAX) {
        perr(err, errlen, "image too large (at most %d bytes)", LOOKALIKE_IMAGE_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    char hex[65];
    lookalike_sha256_hex(data, len, hex);
    params_t p = {0};
    p_text(&p, hex);
    int rc;
    /* Ask first, so storing a photo the catalogue has does not send its bytes again. Both
     * statements may be repeated: the insert does nothing when the hash is there. */
    PGresult *r = run_retry(pg, S_IMG_HAS, &p, 0, &rc, err, errlen);
    if (!r)
        return rc;
    int have = PQntuples(r) == 1;
    PQclear(r);
    if (!have) {
        p_bytes(&p, data, len);
        if (!(r = run_retry(pg, S_IMG_PUT, &p, 0, &rc, err, errlen)))
            return rc;
        PQclear(r);
    }
    memcpy(sha256, hex, sizeof hex);
    return 0;
}

static int image_get(lookalike_catalog_t *c, const char *sha256, void **data, size_t *len, char *err,
                     size_t errlen)
{
    params_t p = {0};
    p_text(&p, sha256);
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_IMG_GET, &p, 1, &rc, err, errlen);
    if (!r)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        perr(err, errlen, "no image %s", sha256);
        return LOOKALIKE_ENOTFOUND;
    }
    size_t n = (size_t)PQgetlength(r, 0, 0);
    void *buf = malloc(n ? n : 1);
    if (!buf) {
        PQclear(r);
        perr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    memcpy(buf, PQgetvalue(r, 0, 0), n);
    PQclear(r);
    *data = buf;
    *len = n;
    return 0;
}

static int vector_get(lookalike_catalog_t *c, uint64_t doc_id, uint8_t *out, uint32_t dim, char *err,
                      size_t errlen)
{
    char doc_s[24];
    snprintf(doc_s, sizeof doc_s, "%llu", (unsigned long long)doc_id);
    params_t p = {0};
    p_text(&p, doc_s);
    int rc;
    PGresult *r = run_retry((pg_catalog_t *)c, S_VEC_GET, &p, 1, &rc, err, errlen);
    if (!r)
        return rc;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        perr(err, errlen, "no vector stored for doc_id %llu", (unsigned long long)doc_id);
        rc = LOOKALIKE_ENOTFOUND;
    } else if ((size_t)PQgetlength(r, 0, 0) != (size_t)dim * 4) {
        perr(err, errlen, "the stored vector of doc_id %llu has %d values, not %u",
             (unsigned long long)doc_id, PQgetlength(r, 0, 0) / 4, dim);
        rc = LOOKALIKE_EINVAL;
    } else {
        memcpy(out, PQgetvalue(r, 0, 0), (size_t)dim * 4);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

/* ---- open and close ---- */

static void free_params(pg_catalog_t *pg)
{
    for (size_t i = 0; pg->keys && pg->keys[i]; i++) {
        free(pg->keys[i]);
        free(pg->vals[i]);
    }
    free(pg->keys);
    free(pg->vals);
}

static void pg_close(lookalike_catalog_t *c)
{
    pg_catalog_t *pg = (pg_catalog_t *)c;
    for (int i = 0; i < POOL_SIZE; i++)
        slot_drop(&pg->slots[i]);
    PQfinish(pg->listen);
    free_params(pg);
    pthread_mutex_destroy(&pg->listen_mu);
    pthread_mutex_destroy(&pg->mu);
    pthread_cond_destroy(&pg->freed);
    free(pg);
}

static const lookalike_catalog_ops_t pg_ops = {
    .backend = "postgresql",
    .close = pg_close,
    .collection_create = col_create,
    .collection_get = col_get,
    .collection_list = col_list,
    .product_put = prod_put,
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

/* The caller's parameters plus conn_defaults for those it leaves unset, as the NULL-terminated
 * arrays PQconnectdbParams takes. */
static int build_params(pg_catalog_t *pg, const char *conninfo, char *err, size_t errlen)
{
    char *perrmsg = NULL, line[512];
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perrmsg);
    if (!opts) {
        perr(err, errlen, "catalog: bad PostgreSQL connection string: %s",
             one_line(perrmsg ? perrmsg : "out of memory", line, sizeof line));
        PQfreemem(perrmsg);
        return LOOKALIKE_EINVAL;
    }
    size_t n = 0, ndef = sizeof conn_defaults / sizeof conn_defaults[0];
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    int rc = LOOKALIKE_ENOMEM;
    if (!(pg->keys = calloc(n + ndef + 1, sizeof *pg->keys)) ||
        !(pg->vals = calloc(n + ndef + 1, sizeof *pg->vals)))
        goto out;
    size_t k = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (!(pg->keys[k] = strdup(o->keyword)) || !(pg->vals[k] = strdup(o->val)))
            goto out;
        k++;
    }
    for (size_t d = 0; d < ndef; d++) {
        size_t j = 0;
        while (j < k && strcmp(pg->keys[j], conn_defaults[d][0]) != 0)
            j++;
        if (j < k)
            continue;
        if (!(pg->keys[k] = strdup(conn_defaults[d][0])) || !(pg->vals[k] = strdup(conn_defaults[d][1])))
            goto out;
        k++;
    }
    rc = 0;
out:
    if (rc)
        perr(err, errlen, "out of memory");
    PQconninfoFree(opts);
    return rc;
}

static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        char line[512];
        perr(err, errlen, "catalog: schema: %s", one_line(PQresultErrorMessage(r), line, sizeof line));
    }
    PQclear(r);
    return ok ? 0 : LOOKALIKE_EIO;
}

/* Creates or migrates the schema in one transaction, under an advisory lock so that nodes
 * starting together apply each migration once. */
static int migrate(PGconn *conn, char *err, size_t errlen)
{
    PGresult *r = NULL;
    int rc;
    if ((rc = exec_ok(conn, "BEGIN", err, errlen)) != 0 ||
        (rc = exec_ok(conn, "SET LOCAL client_min_messages = warning", err, errlen)) != 0 ||
        (rc = exec_ok(conn, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")", err, errlen)) != 0 ||
        (rc = exec_ok(
             conn,
             "CREATE SCHEMA IF NOT EXISTS lookalike;"
             "CREATE TABLE IF NOT EXISTS lookalike.meta(key text COLLATE \"C\" PRIMARY KEY,"
             " value bigint NOT NULL);"
             "INSERT INTO lookalike.meta(key, value) VALUES('schema_version', 0) ON CONFLICT DO NOTHING",
             err, errlen)) != 0)
        goto fail;
    r = PQexec(conn, "SELECT value FROM lookalike.meta WHERE key = 'schema_version'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        perr(err, errlen, "catalog: cannot read the schema version");
        rc = LOOKALIKE_EIO;
        goto fail;
    }
    long long version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = NULL;
    if (version > SCHEMA_VERSION) {
        perr(err, errlen, "catalog: schema version %lld is newer than this program's (%d); upgrade lookalike",
             version, SCHEMA_VERSION);
        rc = LOOKALIKE_EINVAL;
        goto fail;
    }
    if (version < SCHEMA_VERSION) {
        for (long long v = version; v < SCHEMA_VERSION; v++)
            if ((rc = exec_ok(conn, migrations[v], err, errlen)) != 0)
                goto fail;
        char bump[96];
        snprintf(bump, sizeof bump, "UPDATE lookalike.meta SET value = %d WHERE key = 'schema_version'",
                 SCHEMA_VERSION);
        if ((rc = exec_ok(conn, bump, err, errlen)) != 0)
            goto fail;
    }
    return exec_ok(conn, "COMMIT", err, errlen);
fail:
    PQclear(r);
    PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

lookalike_catalog_t *lookalike_catalog_open_pg(const char *conninfo, char *err, size_t errlen)
{
    pg_catalog_t *pg = calloc(1, sizeof *pg);
    PGconn *conn = NULL;
    if (!pg) {
        perr(err, errlen, "out of memory");
        return NULL;
    }
    pg->base.ops = &pg_ops;
    pthread_mutex_init(&pg->mu, NULL);
    pthread_mutex_init(&pg->listen_mu, NULL);
    pthread_cond_init(&pg->freed, NULL);
    if (build_params(pg, conninfo, err, errlen) != 0 || !(conn = connect_raw(pg, err, errlen)))
        goto fail;
    const char *enc = PQparameterStatus(conn, "server_encoding");
    if (!enc || (strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0)) {
        perr(err, errlen, "catalog: the database's encoding is %s; lookalike needs UTF8",
             enc ? enc : "unknown");
        goto fail;
    }
    if (migrate(conn, err, errlen) != 0 || prepare_all(conn, err, errlen) != 0)
        goto fail;
    pg->slots[0].conn = conn;
    return &pg->base;
fail:
    PQfinish(conn);
    pg_close(&pg->base);
    return NULL;
}

void lookalike_store_describe(const char *store, char *out, size_t outlen)
{
    if (!outlen)
        return;
    if (!store || !*store) {
        snprintf(out, outlen, "sqlite");
        return;
    }
    PQconninfoOption *opts = lookalike_store_is_pg(store) ? PQconninfoParse(store, NULL) : NULL;
    if (!opts) {
        snprintf(out, outlen, "an unusable store");
        return;
    }
    const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && !host))
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    snprintf(out, outlen, "postgresql (host %s, port %s, database %s, user %s)", host ? host : "default",
             port ? port : "default", db ? db : "default", user ? user : "default");
    PQconninfoFree(opts);
}
