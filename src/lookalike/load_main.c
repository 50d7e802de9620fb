/* lookalike-load: the stress test for `lookalike serve` (the seeds' stress_test.sh, done
 * properly). Drives a configurable mix of searches and inserts through the load engine
 * (src/load) and reports throughput, latency percentiles, errors by kind and the longest
 * stretch without a successful response, as text or JSON.
 *
 * Before the run it reads what the requests need from the server itself: the collection's
 * dimension, and a sample of its products (ids for "more like this" and filtered searches,
 * categories for filters, title words for text searches). Image searches and photo inserts
 * upload real photos from --photos (read into memory once, at most PHOTOS_MAX files). */
#include "core/core.h"
#include "load/load.h"

#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PHOTOS_MAX 256
#define PHOTOS_BYTES_MAX (64u << 20)
#define SAMPLE_MAX 100000
#define WORDS_MAX 4096
#define MIX_SPEC_MAX 512
#define BOUNDARY "lookalikeLoadBoundary7d1f"

enum { K_SIMILAR, K_TEXT, K_FILTER, K_HYBRID, K_IMAGE, K_INSERT, K_COUNT };
static const char *const kind_names[K_COUNT] = {"similar", "text", "filter", "hybrid", "image", "insert"};

typedef struct {
    void *data;
    size_t len;
    const char *type;
    char *search_body; /* the multipart image search, built once */
    size_t search_len;
} photo_t;

typedef struct {
    /* settings */
    const char *coll;
    int k;
    const char *api_key;
    const char *id_prefix;
    bool check_json;
    FILE *insert_log;
    /* from the server */
    uint32_t dim;
    char **ids; /* product ids ([A-Za-z0-9._-], so they need no escaping in JSON or paths) */
    size_t nids;
    char **cats;  /* JSON-quoted category of each sampled product ("null" when none) */
    char **words; /* JSON-escaped title words, without quotes */
    size_t nwords;
    photo_t *photos;
    size_t nphotos;
    /* the mix */
    double weight[K_COUNT], wsum;
    uint64_t *rng; /* one per connection */
    uint64_t inserts;
    uint64_t partial;      /* search answers that said "partial": true (counted as bad_body too) */
    char coll_path[96];    /* /api/collections/C */
    char search_path[112]; /* /api/collections/C/search */
    char key_header[300];
} mix_t;

static uint64_t rnd(uint64_t *s)
{
    /* xorshift64*: one state per connection, so the runs are repeatable per seed. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

static double rnd01(uint64_t *s)
{
    return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

/* ---- a small blocking HTTP client for the set-up requests ---- */

static int http_fetch(const char *host, int port, const char *path, char **body, int *status, char *err,
                      size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ports[16], req[1024];
    snprintf(ports, sizeof ports, "%d", port);
    int rc = getaddrinfo(host, ports, &hints, &ai), fd = -1;
    load_resp_t resp = {0};
    *body = NULL;
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    rc = -1;
    struct timeval tv = {30, 0};
    if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, strerror(errno));
        goto out;
    }
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", path,
                     host, port);
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errlen, "GET %s: cannot send", path);
        goto out;
    }
    if (load_resp_init(&resp, 64u << 20) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    char buf[65536];
    int prc = LOAD_RESP_MORE;
    while (prc == LOAD_RESP_MORE) {
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got < 0) {
            snprintf(err, errlen, "GET %s: %s", path, strerror(errno));
            goto out;
        }
        prc = got == 0 ? load_resp_eof(&resp) : load_resp_feed(&resp, buf, (size_t)got, NULL);
    }
    if (prc != LOAD_RESP_DONE) {
        snprintf(err, errlen, "GET %s: unreadable HTTP response", path);
        goto out;
    }
    *status = resp.status;
    *body = resp.body;
    resp.body = NULL;
    rc = 0;
out:
    load_resp_release(&resp);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

static json_t *fetch_json(const char *host, int port, const char *path, char *err, size_t errlen)
{
    char *body;
    int status = 0;
    if (http_fetch(host, port, path, &body, &status, err, errlen) != 0)
        return NULL;
    json_t *j = NULL;
    if (status != 200)
        snprintf(err, errlen, "GET %s answered %d: %.200s", path, status, body);
    else
        j = core_json_parse(body, strlen(body), err, errlen);
    free(body);
    return j;
}

/* The string as a JSON string literal with its quotes (new, caller frees). */
static char *json_quote(const char *s)
{
    json_t *v = json_string(s);
    char *q = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    return q;
}

/* Collects the words of a title (split at spaces and punctuation, at least 2 bytes). */
static void add_words(mix_t *m, const char *title)
{
    const char *p = title;
    while (*p && m->nwords < WORDS_MAX) {
        while (*p && (unsigned char)*p < 0x80 &&
               !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            p++;
        const char *s = p;
        while (*p && ((unsigned char)*p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9')))
            p++;
        if (p - s < 2 || p - s > 40)
            continue;
        char w[64];
        snprintf(w, sizeof w, "%.*s", (int)(p - s), s);
        char *q = json_quote(w);
        if (!q)
            return;
        q[strlen(q) - 1] = 0; /* keep the escapes, drop the quotes */
        memmove(q, q + 1, strlen(q));
        m->words[m->nwords++] = q;
    }
}

static int sample_products(mix_t *m, const char *host, int port, size_t want, char *err, size_t errlen)
{
    char path[512], cursor[256] = "";
    json_t *cols = fetch_json(host, port, "/api/collections", err, errlen);
    if (!cols)
        return -1;
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(cols, "collections"), i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (name && strcmp(name, m->coll) == 0)
            m->dim = (uint32_t)json_integer_value(json_object_get(c, "dim"));
    }
    json_decref(cols);
    if (!m->dim) {
        snprintf(err, errlen, "the server has no collection \"%s\"", m->coll);
        return -1;
    }
    if (!(m->ids = calloc(want + 1, sizeof *m->ids)) || !(m->cats = calloc(want + 1, sizeof *m->cats)) ||
        !(m->words = calloc(WORDS_MAX, sizeof *m->words))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (m->nids < want) {
        size_t limit = want - m->nids < 1000 ? want - m->nids : 1000;
        snprintf(path, sizeof path, "%s/products?limit=%zu%s%s", m->coll_path, limit,
                 *cursor ? "&cursor=" : "", cursor);
        json_t *page = fetch_json(host, port, path, err, errlen);
        if (!page)
            return -1;
        json_t *p;
        json_array_foreach(json_object_get(page, "items"), i, p)
        {
            const char *id = json_string_value(json_object_get(p, "id"));
            const char *cat = json_string_value(json_object_get(p, "category"));
            const char *title = json_string_value(json_object_get(p, "title"));
            if (!id || m->nids >= want)
                continue;
            m->ids[m->nids] = strdup(id);
            m->cats[m->nids] = cat ? json_quote(cat) : strdup("null");
            m->nids++;
            if (title)
                add_words(m, title);
        }
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(page);
        if (!*cursor)
            break;
    }
    return 0;
}

/* ---- photos ---- */

static const char *photo_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return NULL;
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))
        return "image/jpeg";
    if (!strcasecmp(dot, ".png"))
        return "image/png";
    if (!strcasecmp(dot, ".webp"))
        return "image/webp";
    return NULL;
}

static int load_photos(mix_t *m, const char *dir, size_t *bytes, int depth, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "--photos %.300s: cannot open", dir);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && m->nphotos < PHOTOS_MAX && (e = readdir(d))) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 8)
                rc = load_photos(m, path, bytes, depth + 1, err, errlen);
            continue;
        }
        const char *type = photo_type(e->d_name);
        if (!S_ISREG(st.st_mode) || !type || st.st_size <= 0 ||
            *bytes + (size_t)st.st_size > PHOTOS_BYTES_MAX)
            continue;
        FILE *f = fopen(path, "rb");
        photo_t *ph = &m->photos[m->nphotos];
        ph->len = (size_t)st.st_size;
        ph->type = type;
        if (!f || !(ph->data = malloc(ph->len)) || fread(ph->data, 1, ph->len, f) != ph->len) {
            if (f)
                fclose(f);
            free(ph->data);
            ph->data = NULL;
            snprintf(err, errlen, "%.300s: cannot read", path);
            rc = -1;
            break;
        }
        fclose(f);
        *bytes += ph->len;
        load_buf_t b = {0};
        if (load_buf_printf(&b,
                            "--" BOUNDARY
                            "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q\"\r\n"
                            "Content-Type: %s\r\n\r\n",
                            type) ||
            load_buf_add(&b, ph->data, ph->len) ||
            load_buf_printf(&b,
                            "\r\n--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n"
                            "{\"k\":%d}\r\n--" BOUNDARY "--\r\n",
                            m->k)) {
            load_buf_release(&b);
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        ph->search_body = b.data;
        ph->search_len = b.len;
        m->nphotos++;
    }
    closedir(d);
    return rc;
}

/* ---- the mix ---- */

static int parse_mix(mix_t *m, const char *spec, char *err, size_t errlen)
{
    char buf[MIX_SPEC_MAX];
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, errlen, "--mix: too large");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        double w = 1;
        if (eq) {
            char *end;
            *eq = 0;
            w = strtod(eq + 1, &end);
            if (end == eq + 1 || *end || !(w >= 0 && w <= 1e6)) {
                snprintf(err, errlen, "--mix: weight of \"%s\" must be a number in 0..1000000", tok);
                return -1;
            }
        }
        int k = 0;
        while (k < K_COUNT && strcmp(kind_names[k], tok) != 0)
            k++;
        if (k == K_COUNT) {
            snprintf(err, errlen,
                     "--mix: unknown kind \"%s\" (expected similar, text, filter, hybrid, image, insert)",
                     tok);
            return -1;
        }
        m->weight[k] = w;
    }
    m->wsum = 0;
    for (int k = 0; k < K_COUNT; k++)
        m->wsum += m->weight[k];
    if (m->wsum <= 0) {
        snprintf(err, errlen, "--mix: give at least one kind a weight above 0");
        return -1;
    }
    return 0;
}

static int pick_kind(mix_t *m, uint64_t *rng)
{
    double x = rnd01(rng) * m->wsum;
    for (int k = 0; k < K_COUNT; k++) {
        if (x < m->weight[k])
            return k;
        x -= m->weight[k];
    }
    for (int k = K_COUNT - 1; k >= 0; k--)
        if (m->weight[k] > 0)
            return k;
    return 0;
}

static int next_request(void *ud, int conn, load_buf_t *b, load_req_t *req)
{
    mix_t *m = ud;
    uint64_t *rng = &m->rng[conn];
    int kind = pick_kind(m, rng);
    size_t pi = m->nids ? (size_t)(rnd(rng) % m->nids) : 0;
    const char *word = m->nwords ? m->words[rnd(rng) % m->nwords] : "a";
    const char *word2 = m->nwords && rnd(rng) % 2 ? m->words[rnd(rng) % m->nwords] : NULL;
    int rc = 0;
    req->kind = kind;
    req->method = "POST";
    req->content_type = "application/json";
    switch (kind) {
    case K_SIMILAR:
        rc = load_buf_printf(b, "%s/products/%s/similar?k=%d", m->coll_path, m->ids[pi], m->k);
        req->method = "GET";
        req->content_type = NULL;
        req->path = b->data;
        return rc;
    case K_TEXT:
        rc = load_buf_printf(b, "{\"text\":\"%s%s%s\",\"k\":%d}", word, word2 ? " " : "", word2 ? word2 : "",
                             m->k);
        break;
    case K_FILTER:
        rc = load_buf_printf(b, "{\"product_id\":\"%s\",\"filters\":{\"category\":%s},\"k\":%d}", m->ids[pi],
                             m->cats[pi], m->k);
        break;
    case K_HYBRID:
        rc = load_buf_printf(b,
                             "{\"product_id\":\"%s\",\"text\":\"%s\",\"filters\":{\"category\":%s},\"k\":%d}",
                             m->ids[pi], word, m->cats[pi], m->k);
        break;
    case K_IMAGE: {
        photo_t *ph = &m->photos[rnd(rng) % m->nphotos];
        req->content_type = "multipart/form-data; boundary=" BOUNDARY;
        req->body = ph->search_body;
        req->body_len = ph->search_len;
        req->path = m->search_path;
        return 0;
    }
    case K_INSERT: {
        uint64_t n = ++m->inserts;
        req->tag = n;
        req->once = 1;
        req->headers = m->key_header[0] ? m->key_header : NULL;
        req->content_type = "multipart/form-data; boundary=" BOUNDARY;
        /* The path goes first in the scratch buffer, the body after it. */
        rc = load_buf_printf(b, "%s/products", m->coll_path);
        size_t body_at = b->len + 1;
        rc = rc || load_buf_add(b, "", 1);
        rc = rc ||
             load_buf_printf(b,
                             "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"product\"\r\n\r\n"
                             "{\"id\":\"%s-%llu\",\"title\":\"%s load %llu\",\"category\":%s,"
                             "\"price\":%llu",
                             m->id_prefix, (unsigned long long)n, word, (unsigned long long)n,
                             m->nids ? m->cats[pi] : "null", (unsigned long long)(rnd(rng) % 1000) * 1000);
        if (!m->nphotos) {
            rc = rc || load_buf_add(b, ",\"vector\":[", 11);
            for (uint32_t i = 0; !rc && i < m->dim; i++)
                rc = load_buf_printf(b, "%s%.4f", i ? "," : "", rnd01(rng) * 2 - 1);
            rc = rc || load_buf_add(b, "]", 1);
        }
        rc = rc || load_buf_add(b, "}\r\n", 3);
        if (m->nphotos) {
            photo_t *ph = &m->photos[rnd(rng) % m->nphotos];
            rc = rc || load_buf_printf(b,
                                       "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"image\"; "
                                       "filename=\"p\"\r\nContent-Type: %s\r\n\r\n",
                                       ph->type);
            rc = rc || load_buf_add(b, ph->data, ph->len);
            rc = rc || load_buf_add(b, "\r\n", 2);
        }
        rc = rc || load_buf_add(b, "--" BOUNDARY "--\r\n", strlen(BOUNDARY) + 6);
        if (rc)
            return -1;
        req->path = b->data;
        req->body = b->data + body_at;
        req->body_len = b->len - body_at;
        return 0;
    }
    }
    if (rc)
        return -1;
    /* JSON searches: the body is the scratch; the path is a constant of the mix. */
    req->body = b->data;
    req->body_len = b->len;
    req->path = m->search_path;
    return 0;
}

static int check_response(void *ud, const load_req_t *req, int status, const char *body, size_t len)
{
    mix_t *m = ud;
    if (req->kind == K_INSERT && m->insert_log) {
        json_t *j = core_json_parse(body, len, NULL, 0);
        const char *id = json_string_value(json_object_get(j, "id"));
        int ok = status == 201 && id && json_is_integer(json_object_get(j, "seq"));
        if (ok) {
            fprintf(m->insert_log, "%s\n", id);
            fflush(m->insert_log);
        }
        json_decref(j);
        return ok ? 0 : -1;
    }
    if (!m->check_json)
        return 0;
    json_t *j = core_json_parse(body, len, NULL, 0);
    int ok = req->kind == K_INSERT ? json_is_string(json_object_get(j, "id")) && status == 201
                                   : json_is_array(json_object_get(j, "results"));
    /* A sharded cluster answers without the shards no replica answered for, and says so: not a
     * full answer, so not a success. */
    if (ok && json_is_true(json_object_get(j, "partial"))) {
        m->partial++;
        ok = 0;
    }
    json_decref(j);
    return ok ? 0 : -1;
}

/* ---- report ---- */

static json_t *kind_json(const load_kind_stats_t *k, double secs)
{
    json_t *errs = json_object();
    for (int e = 0; e < LOAD_ERR_COUNT; e++)
        json_object_set_new(errs, load_err_name((load_err_t)e), json_integer((json_int_t)k->errors[e]));
    const load_hist_t *h = &k->latency;
    return json_pack("{s:I,s:I,s:f,s:{s:f,s:f,s:f,s:f,s:f},s:o}", "requests", (json_int_t)k->sent, "ok",
                     (json_int_t)k->ok, "ok_per_s", secs > 0 ? k->ok / secs : 0.0, "latency_ms", "p50",
                     load_hist_quantile(h, 0.5) / 1e3, "p90", load_hist_quantile(h, 0.9) / 1e3, "p99",
                     load_hist_quantile(h, 0.99) / 1e3, "max", h->max_us / 1e3, "mean",
                     h->n ? h->sum_us / h->n / 1e3 : 0.0, "errors", errs);
}

static uint64_t errors_of(const load_kind_stats_t *k)
{
    uint64_t n = 0;
    for (int e = 0; e < LOAD_ERR_COUNT; e++)
        n += k->errors[e];
    return n;
}

static void print_text(const load_result_t *r, const load_opts_t *o, const mix_t *m)
{
    double secs = r->elapsed_ms / 1e3;
    printf("lookalike-load: %llu requests in %.1f s over %d connections%s: %.1f ok/s\n",
           (unsigned long long)r->all.sent, secs, o->connections, o->rate > 0 ? " (open loop)" : "",
           secs > 0 ? r->all.ok / secs : 0.0);
    printf("%-8s %9s %9s %9s %9s %9s %9s %9s %8s\n", "kind", "requests", "ok", "ok/s", "p50 ms", "p90 ms",
           "p99 ms", "max ms", "errors");
    for (int k = 0; k <= K_COUNT; k++) {
        const load_kind_stats_t *s = k < K_COUNT ? &r->kinds[k] : &r->all;
        if (k < K_COUNT && m->weight[k] <= 0)
            continue;
        const load_hist_t *h = &s->latency;
        printf("%-8s %9llu %9llu %9.1f %9.2f %9.2f %9.2f %9.2f %8llu\n", k < K_COUNT ? kind_names[k] : "all",
               (unsigned long long)s->sent, (unsigned long long)s->ok, secs > 0 ? s->ok / secs : 0.0,
               load_hist_quantile(h, 0.5) / 1e3, load_hist_quantile(h, 0.9) / 1e3,
               load_hist_quantile(h, 0.99) / 1e3, h->max_us / 1e3, (unsigned long long)errors_of(s));
    }
    printf("errors:");
    for (int e = 0; e < LOAD_ERR_COUNT; e++)
        printf(" %s %llu%s", load_err_name((load_err_t)e), (unsigned long long)r->all.errors[e],
               e + 1 < LOAD_ERR_COUNT ? "," : "\n");
    printf("downtime: longest %.3f s without a successful response (from +%.3f s to +%.3f s); %zu stretches "
           "over %.3f s\n",
           (r->longest_gap.end_ms - r->longest_gap.start_ms) / 1e3, r->longest_gap.start_ms / 1e3,
           r->longest_gap.end_ms / 1e3, r->ngaps, o->gap_ms / 1e3);
    printf("connections opened: %llu; requests sent again after a keep-alive close: %llu; partial answers "
           "(some shard missing, counted in bad_body): %llu\n",
           (unsigned long long)r->connects, (unsigned long long)r->retried, (unsigned long long)m->partial);
}

static void print_json(const load_result_t *r, const load_opts_t *o, const mix_t *m)
{
    double secs = r->elapsed_ms / 1e3;
    json_t *kinds = json_object(), *gaps = json_array();
    for (int k = 0; k < K_COUNT; k++)
        if (m->weight[k] > 0)
            json_object_set_new(kinds, kind_names[k], kind_json(&r->kinds[k], secs));
    for (size_t i = 0; i < r->ngaps; i++)
        json_array_append_new(gaps, json_pack("[f,f]", r->gaps[i].start_ms / 1e3, r->gaps[i].end_ms / 1e3));
    json_t *all = kind_json(&r->all, secs);
    json_object_update_new(
        all, json_pack(
                 "{s:s,s:s,s:i,s:f,s:f,s:f,s:f,s:[f,f],s:o,s:f,s:f,s:I,s:I,s:o}", "tool", "lookalike-load",
                 "collection", m->coll, "connections", o->connections, "rate", o->rate, "duration_s", secs,
                 "downtime_s", (r->longest_gap.end_ms - r->longest_gap.start_ms) / 1e3, "gap_threshold_s",
                 o->gap_ms / 1e3, "downtime_at_s", r->longest_gap.start_ms / 1e3, r->longest_gap.end_ms / 1e3,
                 "gaps_s", gaps, "first_ok_s", r->first_ok_ms < 0 ? -1.0 : r->first_ok_ms / 1e3, "last_ok_s",
                 r->last_ok_ms < 0 ? -1.0 : r->last_ok_ms / 1e3, "connects", (json_int_t)r->connects,
                 "retried", (json_int_t)r->retried, "kinds", kinds));
    json_object_set_new(all, "partial", json_integer((json_int_t)m->partial));
    char *s = json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(all);
}

/* ---- main ---- */

static int parse_url(const char *url, char *host, size_t hostcap, int *port, char *err, size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "--url: \"%s\" is not http://HOST[:PORT]", url);
        return -1;
    }
    const char *h = url + 7, *end = h + strcspn(h, "/"), *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) {
            snprintf(err, errlen, "--url: unclosed [");
            return -1;
        }
        snprintf(host, hostcap, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        snprintf(host, hostcap, "%.*s", (int)((colon ? colon : end) - h), h);
    }
    *port = 80;
    if (colon) {
        char *pe;
        long p = strtol(colon + 1, &pe, 10);
        if (pe != end || p < 1 || p > 65535) {
            snprintf(err, errlen, "--url: bad port in \"%s\"", url);
            return -1;
        }
        *port = (int)p;
    }
    if (!*host || (*end && strcmp(end, "/") != 0)) {
        snprintf(err, errlen, "--url: expected http://HOST[:PORT] (no path), got \"%s\"", url);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *coll = NULL, *mix_spec = NULL, *photos_dir = NULL, *api_key = NULL,
               *id_prefix = NULL, *insert_log = NULL, *check = NULL;
    int connections = 16, duration_ms = 0, requests = 0, k = 10, timeout_ms = 10000, gap_ms = 1000,
        sample = 1000, seed = 1;
    int rate = 0;
    bool as_json = false;
    core_flag flags[] = {
        {"url", CORE_FLAG_STR, &url, "http://127.0.0.1:8080", 0, 0, "the server, http://HOST[:PORT]"},
        {"collection", CORE_FLAG_STR, &coll, "products", 0, 0, "collection to search and insert into"},
        {"mix", CORE_FLAG_STR, &mix_spec, "similar=1", 0, 0,
         "request kinds and weights: similar (more like this), text, filter (more like this within the "
         "product's category), hybrid (product + text + category filter), image (a photo upload), insert"},
        {"connections", CORE_FLAG_INT, &connections, "16", 1, 10000, "concurrent keep-alive connections"},
        {"duration", CORE_FLAG_MS, &duration_ms, "0", 0, 24 * 3600 * 1000,
         "how long to run (0: until --requests, or 10s when that is 0 too)"},
        {"requests", CORE_FLAG_INT, &requests, "0", 0, 1000000000,
         "stop after this many requests (0: no limit)"},
        {"rate", CORE_FLAG_INT, &rate, "0", 0, 10000000,
         "open loop: start this many requests per second whatever the answers (0: closed loop)"},
        {"timeout", CORE_FLAG_MS, &timeout_ms, "10s", 1, 3600 * 1000, "per request, connecting included"},
        {"gap", CORE_FLAG_MS, &gap_ms, "1s", 0, 3600 * 1000,
         "list every stretch longer than this without a successful response"},
        {"k", CORE_FLAG_INT, &k, "10", 1, 1000, "results per search"},
        {"photos", CORE_FLAG_STR, &photos_dir, "", 0, 0,
         "folder of photos (searched recursively) for image searches and inserts; inserts without it carry a "
         "random vector"},
        {"sample", CORE_FLAG_INT, &sample, "1000", 1, SAMPLE_MAX,
         "products read from the server before the run, for ids, categories and words"},
        {"api-key", CORE_FLAG_STR, &api_key, "", 0, 0, "X-API-Key for inserts"},
        {"id-prefix", CORE_FLAG_STR, &id_prefix, "", 0, 0, "ids of inserted products (default load-PID)"},
        {"insert-log", CORE_FLAG_STR, &insert_log, "", 0, 0,
         "append the id of every acknowledged insert to this file, as it is acknowledged"},
        {"check", CORE_FLAG_STR, &check, "json", 0, 0, "judge 2xx bodies: json (parse them) or status"},
        {"seed", CORE_FLAG_INT, &seed, "1", 0, 1 << 30, "random seed of the request mix"},
        {"json", CORE_FLAG_BOOL, &as_json, "false", 0, 0, "print the report as one JSON object"},
    };
    char err[1024] = "";
    int rc = core_flags_parse(
        flags, sizeof flags / sizeof *flags, "LOOKALIKE_LOAD", argc, argv,
        "lookalike-load: drive `lookalike serve` with many keep-alive clients and report "
        "throughput, latency, errors and downtime\n"
        "usage: lookalike-load [--url http://127.0.0.1:8080] [--mix similar=4,text=2,image=1] "
        "[--connections 16] [--duration 10s | --requests N] [--json]\n"
        "exit status: 0 every request succeeded, 3 some failed, 1 the run could not start, "
        "2 bad usage",
        stdout, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "lookalike-load: %s\n", err);
        return 2;
    }
    char host[256], prefix[64];
    int port;
    mix_t m = {.coll = coll, .k = k, .api_key = api_key, .check_json = true};
    load_result_t res = {0};
    int exit_code = 1;
    if (parse_url(url, host, sizeof host, &port, err, sizeof err) != 0 ||
        parse_mix(&m, mix_spec, err, sizeof err) != 0) {
        fprintf(stderr, "lookalike-load: %s\n", err);
        return 2;
    }
    if (!*coll || strlen(coll) > 64 ||
        strspn(coll, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(coll)) {
        fprintf(stderr, "lookalike-load: --collection: expected 1..64 of A-Z a-z 0-9 _ -\n");
        return 2;
    }
    if (strcmp(check, "json") && strcmp(check, "status")) {
        fprintf(stderr, "lookalike-load: --check: expected json or status\n");
        return 2;
    }
    if (duration_ms == 0 && requests == 0)
        duration_ms = 10000;
    m.check_json = strcmp(check, "json") == 0;
    snprintf(prefix, sizeof prefix, "load-%ld", (long)getpid());
    m.id_prefix = *id_prefix ? id_prefix : prefix;
    snprintf(m.coll_path, sizeof m.coll_path, "/api/collections/%s", coll);
    snprintf(m.search_path, sizeof m.search_path, "/api/collections/%s/search", coll);
    if (*api_key)
        snprintf(m.key_header, sizeof m.key_header, "X-API-Key: %.250s\r\n", api_key);
    if (*insert_log && !(m.insert_log = fopen(insert_log, "a"))) {
        fprintf(stderr, "lookalike-load: --insert-log %s: %s\n", insert_log, strerror(errno));
        return 1;
    }
    size_t bytes = 0;
    if (!(m.photos = calloc(PHOTOS_MAX, sizeof *m.photos)) ||
        !(m.rng = calloc((size_t)connections, sizeof *m.rng)))
        goto oom;
    if (*photos_dir && load_photos(&m, photos_dir, &bytes, 0, err, sizeof err) != 0)
        goto fail;
    if (m.weight[K_IMAGE] > 0 && !m.nphotos) {
        snprintf(err, sizeof err, "image searches need --photos (a folder of .jpg, .png or .webp files)");
        goto fail;
    }
    if (sample_products(&m, host, port, (size_t)sample, err, sizeof err) != 0)
        goto fail;
    if (!m.nids && (m.weight[K_SIMILAR] > 0 || m.weight[K_FILTER] > 0 || m.weight[K_HYBRID] > 0)) {
        snprintf(err, sizeof err, "collection \"%s\" is empty: similar, filter and hybrid need products",
                 coll);
        goto fail;
    }
    for (int i = 0; i < connections; i++)
        m.rng[i] = 0x9e3779b97f4a7c15ull * ((uint64_t)seed * 1000003u + (uint64_t)i + 1);
    load_opts_t o = {.host = host,
                     .port = port,
                     .connections = connections,
                     .duration_ms = duration_ms,
                     .max_requests = (uint64_t)requests,
                     .rate = rate,
                     .timeout_ms = timeout_ms,
                     .gap_ms = gap_ms,
                     .nkinds = K_COUNT,
                     .next = next_request,
                     .check = check_response,
                     .ud = &m};
    for (int i = 0; i < K_COUNT; i++)
        o.kind_names[i] = kind_names[i];
    if (load_run(&o, &res, err, sizeof err) != 0)
        goto fail;
    if (as_json)
        print_json(&res, &o, &m);
    else
        print_text(&res, &o, &m);
    exit_code = res.all.ok == res.all.sent ? 0 : 3;
    goto done;
oom:
    snprintf(err, sizeof err, "out of memory");
fail:
    fprintf(stderr, "lookalike-load: %s\n", err);
done:
    load_result_release(&res);
    if (m.insert_log)
        fclose(m.insert_log);
    for (size_t i = 0; i < m.nids; i++) {
        free(m.ids[i]);
        free(m.cats[i]);
    }
    for (size_t i = 0; i < m.nwords; i++)
        free(m.words[i]);
    for (size_t i = 0; i < m.nphotos; i++) {
        free(m.photos[i].data);
        free(m.photos[i].search_body);
    }
    free(m.ids);
    free(m.cats);
    free(m.words);
    free(m.photos);
    free(m.rng);
    return exit_code;
}
