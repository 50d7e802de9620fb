/* etcd v3 over its JSON gateway: each call is one POST to /v3/..., tried on the endpoint that
 * answered last, then on the others in turn. Only a failure to reach an endpoint moves on; an
 * answer from etcd (even an error) is final, since every endpoint would give the same one. */
#include "cluster/cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENDPOINTS 16

typedef struct {
    char host[256];
    int port;
} endpoint_t;

struct cluster_etcd {
    endpoint_t ep[MAX_ENDPOINTS];
    int n;
    int current; /* the endpoint that answered last */
    int timeout_ms;
};

static int parse_endpoint(const char *s, size_t len, endpoint_t *ep, char *err, size_t errlen)
{
    const char *scheme = "http://";
    size_t sl = strlen(scheme);
    if (len <= sl || strncmp(s, scheme, sl) != 0) {
        snprintf(err, errlen, "etcd endpoint \"%.*s\" is not an http://host:port URL", (int)len, s);
        return CORE_EINVAL;
    }
    const char *h = s + sl, *end = s + len;
    if (end > h && end[-1] == '/')
        end--;
    const char *colon = NULL;
    for (const char *p = h; p < end; p++)
        if (*p == ':')
            colon = p;
    if (!colon || colon == h || (size_t)(colon - h) >= sizeof ep->host || colon + 1 == end) {
        snprintf(err, errlen, "etcd endpoint \"%.*s\" needs a host and a port", (int)len, s);
        return CORE_EINVAL;
    }
    int port = 0;
    for (const char *p = colon + 1; p < end; p++) {
        if (*p < '0' || *p > '9' || (port = port * 10 + (*p - '0')) > 65535) {
            snprintf(err, errlen, "etcd endpoint \"%.*s\" has a bad port", (int)len, s);
            return CORE_EINVAL;
        }
    }
    memcpy(ep->host, h, (size_t)(colon - h));
    ep->host[colon - h] = '\0';
    ep->port = port;
    return 0;
}

cluster_etcd_t *cluster_etcd_new(const char *endpoints, int timeout_ms, char *err, size_t errlen)
{
    cluster_etcd_t *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    for (const char *p = endpoints; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0) {
            if (e->n == MAX_ENDPOINTS) {
                snprintf(err, errlen, "more than %d etcd endpoints", MAX_ENDPOINTS);
                goto fail;
            }
            if (parse_endpoint(p, len, &e->ep[e->n], err, errlen) != 0)
                goto fail;
            e->n++;
        }
        p += len + (comma ? 1 : 0);
    }
    if (e->n == 0) {
        snprintf(err, errlen, "no etcd endpoint given");
        goto fail;
    }
    return e;
fail:
    free(e);
    return NULL;
}

void cluster_etcd_free(cluster_etcd_t *e)
{
    free(e);
}

/* POSTs req (stolen) to path; on a 200 answer sets *resp to its first JSON value. An error
 * answer is turned into a message and CORE_ENOTFOUND (gRPC code 5) or CORE_EINVAL. */
static int call(cluster_etcd_t *e, const char *path, json_t *req, json_t **resp, char *err, size_t errlen)
{
    *resp = NULL;
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    int rc = CORE_EIO, status = 0;
    char *rbody = NULL;
    size_t rlen = 0;
    char why[256] = "";
    for (int i = 0; i < e->n; i++) {
        int k = (e->current + i) % e->n;
        rc = cluster_http_post(e->ep[k].host, e->ep[k].port, path, body, strlen(body), e->timeout_ms, &status,
                               &rbody, &rlen, why, sizeof why);
        if (rc == 0) {
            e->current = k;
            break;
        }
    }
    free(body);
    if (rc != 0) {
        snprintf(err, errlen, "etcd %s: no endpoint answered (last: %s)", path, why);
        return rc;
    }
    json_error_t jerr;
    json_t *j = json_loadb(rbody, rlen, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!j || !json_is_object(j)) {
        snprintf(err, errlen, "etcd %s: HTTP %d with a body that is not a JSON object", path, status);
        rc = CORE_EINVAL;
        goto done;
    }
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(j, "message"));
        json_int_t code = json_integer_value(json_object_get(j, "code"));
        snprintf(err, errlen, "etcd %s: HTTP %d: %s", path, status, msg ? msg : "(no message)");
        rc = code == 5 ? CORE_ENOTFOUND : CORE_EINVAL;
        goto done;
    }
    *resp = j;
    j = NULL;
    rc = 0;
done:
    json_decref(j);
    free(rbody);
    return rc;
}

/* etcd writes 64-bit integers as decimal strings (and small ones sometimes as numbers). */
static int get_int64(json_t *obj, const char *name, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s)
        return CORE_ENOTFOUND;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (*end)
        return CORE_EINVAL;
    *out = x;
    return 0;
}

static json_t *int64_string(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return json_string(buf);
}

static json_t *b64_string(const char *s)
{
    char *b = cluster_base64_encode(s, strlen(s));
    json_t *j = b ? json_string(b) : NULL;
    free(b);
    return j;
}

int cluster_etcd_lease_grant(cluster_etcd_t *e, int ttl_s, int64_t *lease, char *err, size_t errlen)
{
    json_t *resp;
    int rc = call(e, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), &resp, err, errlen);
    if (rc != 0)
        return rc;
    if (get_int64(resp, "ID", lease) != 0 || *lease == 0) {
        const char *why = json_string_value(json_object_get(resp, "error"));
        snprintf(err, errlen, "etcd lease grant: %s", why && *why ? why : "no lease id in the answer");
        rc = CORE_EINVAL;
    }
    json_decref(resp);
    return rc;
}

int cluster_etcd_lease_keepalive(cluster_etcd_t *e, int64_t lease, int *ttl_left, char *err, size_t errlen)
{
    json_t *resp;
    int rc =
        call(e, "/v3/lease/keepalive", json_pack("{s:o}", "ID", int64_string(lease)), &resp, err, errlen);
    if (rc != 0)
        return rc;
    json_t *result = json_object_get(resp, "result");
    int64_t ttl = 0;
    if (!json_is_object(result)) {
        snprintf(err, errlen, "etcd lease keepalive: no result in the answer");
        rc = CORE_EINVAL;
    } else if (get_int64(result, "TTL", &ttl) == CORE_EINVAL) {
        snprintf(err, errlen, "etcd lease keepalive: malformed TTL");
        rc = CORE_EINVAL;
    }
    /* An absent TTL is etcd's way of saying the lease is gone. */
    *ttl_left = rc == 0 ? (int)ttl : 0;
    json_decref(resp);
    return rc;
}

int cluster_etcd_lease_revoke(cluster_etcd_t *e, int64_t lease, char *err, size_t errlen)
{
    json_t *resp;
    int rc = call(e, "/v3/lease/revoke", json_pack("{s:o}", "ID", int64_string(lease)), &resp, err, errlen);
    json_decref(resp);
    return rc;
}

int cluster_etcd_put(cluster_etcd_t *e, const char *key, const char *value, int64_t lease, char *err,
                     size_t errlen)
{
    json_t *req = json_pack("{s:o, s:o}", "key", b64_string(key), "value", b64_string(value));
    if (req && lease != 0)
        json_object_set_new(req, "lease", int64_string(lease));
    json_t *resp;
    int rc = call(e, "/v3/kv/put", req, &resp, err, errlen);
    json_decref(resp);
    return rc;
}

int cluster_etcd_delete(cluster_etcd_t *e, const char *key, char *err, size_t errlen)
{
    json_t *resp;
    int rc = call(e, "/v3/kv/deleterange", json_pack("{s:o}", "key", b64_string(key)), &resp, err, errlen);
    json_decref(resp);
    return rc;
}

int cluster_etcd_get_prefix(cluster_etcd_t *e, const char *prefix, cluster_etcd_kv_cb cb, void *ud, char *err,
                            size_t errlen)
{
    /* range_end: the prefix with its last byte incremented (etcd's idiom for "every key that
     * starts with it"); an empty prefix or one of all 0xff bytes means "to the end" ("\0"). */
    size_t plen = strlen(prefix);
    char *end = malloc(plen + 1);
    if (!end) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    memcpy(end, prefix, plen + 1);
    size_t elen = plen;
    while (elen > 0 && (unsigned char)end[elen - 1] == 0xff)
        elen--;
    json_t *range_end;
    if (elen == 0) {
        range_end = json_string("AA==");
    } else {
        end[elen - 1] = (char)((unsigned char)end[elen - 1] + 1);
        char *b = cluster_base64_encode(end, elen);
        range_end = b ? json_string(b) : NULL;
        free(b);
    }
    free(end);
    json_t *req = json_pack("{s:o, s:o, s:I}", "key", b64_string(prefix), "range_end", range_end, "limit",
                            (json_int_t)10000);
    json_t *resp;
    int rc = call(e, "/v3/kv/range", req, &resp, err, errlen);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *kv;
    json_array_foreach(json_object_get(resp, "kvs"), i, kv)
    {
        const char *k64 = json_string_value(json_object_get(kv, "key"));
        const char *v64 = json_string_value(json_object_get(kv, "value"));
        int64_t lease = 0;
        get_int64(kv, "lease", &lease);
        size_t klen, vlen;
        unsigned char *k = k64 ? cluster_base64_decode(k64, strlen(k64), &klen) : NULL;
        /* An empty value is left out of the JSON altogether. */
        unsigned char *v = cluster_base64_decode(v64 ? v64 : "", v64 ? strlen(v64) : 0, &vlen);
        if (!k || !v) {
            free(k);
            free(v);
            snprintf(err, errlen, "etcd range: a key or value is not base64");
            rc = CORE_EINVAL;
            break;
        }
        rc = cb(ud, (const char *)k, (const char *)v, lease);
        free(k);
        free(v);
        if (rc != 0)
            break;
    }
    json_decref(resp);
    return rc;
}
