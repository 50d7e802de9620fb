/* cluster: node membership in etcd, so that a cluster knows which query nodes are alive.
 *
 * What it holds, one concept per file:
 *   http_client.c  a blocking HTTP/1.1 client for one request per connection (Connection:
 *                  close), with connect and I/O timeouts and a capped response; the response
 *                  parser (status line, headers, Content-Length, chunked or close-delimited
 *                  body) is public so that it can be fuzzed on its own
 *   base64.c       core's base64 into malloc'd buffers, as etcd's JSON gateway wants keys and values
 *   etcd.c         an etcd v3 client over the JSON gateway (POST /v3/lease/grant,
 *                  /v3/lease/keepalive, /v3/lease/revoke, /v3/kv/put, /v3/kv/range,
 *                  /v3/kv/deleterange), failing over between endpoints
 *   member.c       a node's registration: a key under a lease, kept alive by a thread, put
 *                  back when the lease was lost, revoked on a clean stop
 *   directory.c    the other side: the registrations under a prefix, read on demand, with the
 *                  last list kept for when etcd cannot be reached
 *
 * Membership. A node registers KEY = VALUE (by convention /lookalike/nodes/NAME = a JSON
 * object with its URL) attached to a lease of ttl seconds, and renews the lease every ttl/3 s.
 * A node that dies stops renewing, so etcd deletes its key at most ttl seconds later; a node
 * that stops cleanly revokes the lease, which deletes the key at once. When etcd is
 * unreachable the node keeps trying every second (and keeps serving: membership is what the
 * others see, not a condition to serve); when the lease has expired meanwhile (keepalive
 * answers TTL 0, or a put names an unknown lease) it grants a new one and puts the key again.
 * Readers list the live members with a cluster_directory_t: each call reads the prefix once
 * (no watch: a reader that polls every second sees a node within a second of its registration
 * and at most ttl + 1 s after its death); when no endpoint answers, it returns the last list it
 * read, marked stale, so that a cluster keeps its last known membership through an etcd outage.
 *
 * Wire format (etcd's gRPC gateway): requests and responses are JSON; keys and values are
 * base64 strings; 64-bit integers (lease ids, TTLs, revisions) are decimal strings in responses
 * and are sent as strings too. An error answer is HTTP 4xx/5xx with
 * {"error": "...", "code": N, "message": "..."}. /v3/lease/keepalive is a stream; we send one
 * request and read the first object of {"result": {...}} answers.
 *
 * Errors: functions return 0 on success or a negative CORE_E* code and write a one-line message
 * into `err` (CORE_EIO: no endpoint answered; CORE_ENOTFOUND: etcd says the lease is unknown;
 * CORE_EINVAL: a malformed answer or argument; CORE_ETOOLARGE: an answer over the cap).
 *
 * Threading and ownership: a cluster_etcd_t is used by one thread at a time (the member's
 * thread owns its own). A cluster_member_t runs one thread of its own; cluster_member_registered
 * may be called from any thread. Whatever a function returns through a pointer it allocated
 * (response bodies, decoded strings) is the caller's to free(); callback arguments are borrowed
 * for the duration of the call.
 */
#ifndef CLUSTER_CLUSTER_H
#define CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Largest HTTP response (headers and body) the client reads before failing "too large". */
#define CLUSTER_HTTP_MAX_RESPONSE (4u << 20)

/* ---- HTTP client ------------------------------------------------------------------------- */

/* Parses a complete HTTP/1.x response (the bytes read until the server closed the connection).
 * On success sets *status and *body (malloc'd, NUL-terminated, the caller frees; the chunked
 * transfer coding removed) and *body_len. A truncated or malformed response fails with
 * CORE_EINVAL. */
int cluster_http_parse_response(const char *buf, size_t len, int *status, char **body, size_t *body_len,
                                char *err, size_t errlen);

/* POSTs body (Content-Type: application/json) to http://host:port/path, one connection, no
 * more than timeout_ms for connecting and again for the whole exchange. Fills *status and a
 * malloc'd *resp_body (the caller frees). CORE_EIO when the server cannot be reached or the
 * exchange times out. */
int cluster_http_post(const char *host, int port, const char *path, const char *body, size_t body_len,
                      int timeout_ms, int *status, char **resp_body, size_t *resp_len, char *err,
                      size_t errlen);

/* ---- base64 ------------------------------------------------------------------------------ */

/* Standard alphabet, padded. Returns a malloc'd NUL-terminated string, NULL when out of memory. */
char *cluster_base64_encode(const void *data, size_t len);
/* Decodes standard padded base64; returns a malloc'd buffer (NUL-terminated for convenience)
 * and sets *out_len, or NULL on bad input or out of memory. */
unsigned char *cluster_base64_decode(const char *s, size_t len, size_t *out_len);

/* ---- etcd v3 client ---------------------------------------------------------------------- */

typedef struct cluster_etcd cluster_etcd_t;

/* endpoints: comma-separated http://host:port URLs (at most 16). timeout_ms: per request and
 * endpoint. Tries the endpoint that answered last first, then the others in turn. */
cluster_etcd_t *cluster_etcd_new(const char *endpoints, int timeout_ms, char *err, size_t errlen);
void cluster_etcd_free(cluster_etcd_t *e);

int cluster_etcd_lease_grant(cluster_etcd_t *e, int ttl_s, int64_t *lease, char *err, size_t errlen);
/* Renews the lease once; *ttl_left is the TTL etcd granted, 0 when the lease no longer exists. */
int cluster_etcd_lease_keepalive(cluster_etcd_t *e, int64_t lease, int *ttl_left, char *err, size_t errlen);
int cluster_etcd_lease_revoke(cluster_etcd_t *e, int64_t lease, char *err, size_t errlen);
/* lease 0: a key without a lease. CORE_ENOTFOUND when etcd does not know the lease. */
int cluster_etcd_put(cluster_etcd_t *e, const char *key, const char *value, int64_t lease, char *err,
                     size_t errlen);
int cluster_etcd_delete(cluster_etcd_t *e, const char *key, char *err, size_t errlen);

/* Called once per key under the prefix, in key order; key and value are NUL-terminated and
 * borrowed. A non-zero return stops the listing and is returned by cluster_etcd_get_prefix. */
typedef int (*cluster_etcd_kv_cb)(void *ud, const char *key, const char *value, int64_t lease);
/* Lists the keys that start with prefix (at most 10000). Returns 0, a callback's non-zero
 * value, or a negative error. */
int cluster_etcd_get_prefix(cluster_etcd_t *e, const char *prefix, cluster_etcd_kv_cb cb, void *ud, char *err,
                            size_t errlen);

/* ---- membership -------------------------------------------------------------------------- */

typedef struct {
    const char *endpoints; /* etcd endpoints, as for cluster_etcd_new */
    const char *key;       /* e.g. "/lookalike/nodes/node1" */
    const char *value;     /* e.g. {"url":"http://10.0.0.1:8080"} */
    int ttl_s;             /* lease TTL, 2..3600: how long a dead node stays listed */
    core_log *log;         /* borrowed; registration changes are logged under "member" */
} cluster_member_opts_t;

typedef struct cluster_member cluster_member_t;

/* Copies the options and starts the registration thread; the first registration happens on
 * that thread, so this returns at once even with etcd down. NULL on a bad option (message in
 * err) or when the thread cannot be started. */
cluster_member_t *cluster_member_start(const cluster_member_opts_t *o, char *err, size_t errlen);
/* Whether the key is held under a live lease, as of the last exchange with etcd. */
bool cluster_member_registered(cluster_member_t *m);
/* Stops the thread, revokes the lease (so the key goes at once; best effort when etcd is down)
 * and frees m. NULL is a no-op. */
void cluster_member_stop(cluster_member_t *m);

/* ---- directory -------------------------------------------------------------------------- */

#define CLUSTER_DIR_NAME_MAX 64
#define CLUSTER_DIR_URL_MAX 256
/* Most members a directory lists; more fail "too large". */
#define CLUSTER_DIR_MAX 256

typedef struct {
    char name[CLUSTER_DIR_NAME_MAX + 1]; /* the key after the prefix */
    char url[CLUSTER_DIR_URL_MAX + 1];   /* the value's "url", as registered (checked by the reader) */
} cluster_dir_entry_t;

typedef struct cluster_directory cluster_directory_t;

/* Reads registrations under prefix (e.g. "/lookalike/nodes/") from endpoints (as for
 * cluster_etcd_new). Used by one thread at a time. */
cluster_directory_t *cluster_directory_new(const char *endpoints, const char *prefix, int timeout_ms,
                                           char *err, size_t errlen);
void cluster_directory_free(cluster_directory_t *d);
/* The members now: every key under the prefix held under a lease whose rest is a name of 1..64
 * bytes without '/' and whose value is a JSON object with a string "url"; other keys are passed
 * over. *out is malloc'd (the caller frees; NULL when empty), in key order. When etcd cannot be
 * read but a list was read before, returns 0 with that list, *stale set and why in err;
 * otherwise the error. */
int cluster_directory_list(cluster_directory_t *d, cluster_dir_entry_t **out, size_t *n, bool *stale,
                           char *err, size_t errlen);

#endif
