/* The node's view of its cluster and the fan-out to other shards' replicas over HTTP
 * (libcurl): a probe thread asks every member what it is, fan-outs pick a replica per shard,
 * send all requests of a round in parallel and retry failed shards elsewhere (design in
 * lookalike.h, section Cluster). Connections are kept alive per thread: each thread that fans
 * out owns a curl multi handle (a thread-specific value), whose connection cache is never
 * shared with another thread, as libcurl requires. */
#include "lookalike/api.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Largest answer read from a peer: a page of products of up to LOOKALIKE_PRODUCT_JSON_MAX. */
#define ANSWER_MAX ((size_t)LOOKALIKE_SVC_K_MAX * LOOKALIKE_PRODUCT_JSON_MAX / 4)
/* Connections one thread keeps open to peers. */
#define CONNS_PER_THREAD 32

typedef struct {
    lookalike_member_t m;
    lookalike_node_info_t info;
    int have_info;     /* it answered a probe at least once */
    double down_until; /* monotonic seconds: skipped until then */
    double last_ok;    /* when it last answered (monotonic seconds; 0: never) */
    uint64_t failures;
    char error[192]; /* why it last failed */
} peer_t;

struct lookalike_cluster {
    lookalike_cluster_opts_t o;
    char *name, *url;
    pthread_mutex_t mu; /* guards peers, npeers and the self figures */
    peer_t *peers;
    size_t npeers;
    double rate, p50_ms, p99_ms; /* this node's, as of the last round */
    uint64_t last_requests;
    double last_round;
    atomic_int rounds;  /* probe rounds done: a node is not ready before the first */
    char list_err[256]; /* the membership's last failure, "" after a success (probe thread only) */
    pthread_key_t tls;  /* the calling thread's CURLM * */
    pthread_t thread;
    int started;
    atomic_int stopping;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- HTTP exchanges ---- */

typedef struct {
    CURL *h;
    struct curl_slist *headers;
    char *request; /* body sent (owned), NULL for a GET */
    char *answer;  /* body received (owned, NUL-terminated) */
    size_t len, cap;
    int too_large;
    CURLcode rc; /* how the transfer ended */
    long status; /* HTTP status, 0 when none came */
    int added;   /* in the multi handle */
} xfer_t;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    if (x->len + n + 1 > ANSWER_MAX) {
        x->too_large = 1;
        return 0;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *b = realloc(x->answer, cap);
        if (!b)
            return 0;
        x->answer = b;
        x->cap = cap;
    }
    memcpy(x->answer + x->len, p, n);
    x->len += n;
    x->answer[x->len] = '\0';
    return n;
}

static void xfer_release(xfer_t *x)
{
    if (x->h)
        curl_easy_cleanup(x->h);
    curl_slist_free_all(x->headers);
    free(x->request);
    free(x->answer);
    memset(x, 0, sizeof *x);
}

/* Prepares a GET (request NULL) or a JSON POST (request taken) of url. */
static int xfer_init(xfer_t *x, const char *url, char *request, int timeout_ms)
{
    memset(x, 0, sizeof *x);
    x->request = request;
    if (!(x->h = curl_easy_init()))
        return -1;
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 1000 ? timeout_ms : 1000));
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_TCP_NODELAY, 1L);
    /* No "Expect: 100-continue" round trip before a body. */
    x->headers = curl_slist_append(NULL, "Expect:");
    if (request) {
        x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, request);
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(request));
    }
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->headers);
    return x->headers ? 0 : -1;
}

static void multi_free(void *m)
{
    curl_multi_cleanup(m);
}

/* The calling thread's multi handle, made on first use. */
static CURLM *thread_multi(lookalike_cluster_t *c)
{
    CURLM *m = pthread_getspecific(c->tls);
    if (!m && (m = curl_multi_init())) {
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)CONNS_PER_THREAD);
        if (pthread_setspecific(c->tls, m) != 0) {
            curl_multi_cleanup(m);
            m = NULL;
        }
    }
    return m;
}

/* Runs n prepared transfers at once and waits for all (each is bounded by its timeout). */
static void run_all(lookalike_cluster_t *c, xfer_t *x, size_t n)
{
    CURLM *m = thread_multi(c);
    for (size_t i = 0; i < n; i++) {
        if (x[i].rc == CURLE_OK)
            x[i].rc = CURLE_FAILED_INIT; /* until it is done */
        x[i].added =
            m && x[i].h && x[i].rc == CURLE_FAILED_INIT && curl_multi_add_handle(m, x[i].h) == CURLM_OK;
    }
    int running = 1;
    while (m && running) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE)
                for (size_t i = 0; i < n; i++)
                    if (x[i].h == msg->easy_handle)
                        x[i].rc = msg->data.result;
        if (running && curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        if (!x[i].added)
            continue;
        if (x[i].rc == CURLE_OK)
            curl_easy_getinfo(x[i].h, CURLINFO_RESPONSE_CODE, &x[i].status);
        curl_multi_remove_handle(m, x[i].h);
        x[i].added = 0;
    }
}

/* Why a transfer did not give a usable JSON object, or NULL when it did (*reply set). */
static const char *xfer_result(xfer_t *x, json_t **reply, char *buf, size_t buflen)
{
    *reply = NULL;
    if (x->too_large) {
        snprintf(buf, buflen, "answer too large (over %zu bytes)", ANSWER_MAX);
        return buf;
    }
    if (x->rc != CURLE_OK) {
        snprintf(buf, buflen, "%s", curl_easy_strerror(x->rc));
        return buf;
    }
    json_error_t je;
    json_t *j = x->answer ? json_loadb(x->answer, x->len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(buf, buflen, "HTTP %ld with an answer that is not a JSON object", x->status);
        return buf;
    }
    *reply = j;
    return NULL;
}

/* ---- the view ---- */

static void mark_down(lookalike_cluster_t *c, const char *name, const char *why)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->npeers; i++)
        if (strcmp(c->peers[i].m.name, name) == 0) {
            peer_t *p = &c->peers[i];
            p->down_until = mono_s() + c->o.backoff_ms / 1e3;
            p->failures++;
            snprintf(p->error, sizeof p->error, "%s", why);
        }
    pthread_mutex_unlock(&c->mu);
    core_log_warn(c->o.log, "cluster", "peer %s skipped for %d ms: %s", name, c->o.backoff_ms, why);
}

/* Brings the peer table in line with the membership's list, keeping what is known of those
 * that stay. */
static void update_members(lookalike_cluster_t *c)
{
    lookalike_member_t *m = NULL;
    size_t n = 0;
    char err[256];
    if (c->o.membership->list(c->o.membership, &m, &n, err, sizeof err) != 0) {
        /* Once per kind of failure, not once per round while it lasts. */
        if (strcmp(err, c->list_err) != 0)
            core_log_warn(c->o.log, "cluster", "membership (%s): %s; keeping the last list",
                          c->o.membership->kind, err);
        snprintf(c->list_err, sizeof c->list_err, "%s", err);
        return;
    }
    c->list_err[0] = '\0';
    peer_t *np = n ? calloc(n, sizeof *np) : NULL;
    if (n && !np) {
        free(m);
        return;
    }
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        np[i].m = m[i];
        for (size_t j = 0; j < c->npeers; j++)
            if (strcmp(c->peers[j].m.name, m[i].name) == 0 && strcmp(c->peers[j].m.url, m[i].url) == 0)
                np[i] = c->peers[j];
    }
    free(c->peers);
    c->peers = np;
    c->npeers = n;
    pthread_mutex_unlock(&c->mu);
    free(m);
}

/* A copy of the peer table (caller frees). */
static peer_t *peers_copy(lookalike_cluster_t *c, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    peer_t *p = c->npeers ? malloc(c->npeers * sizeof *p) : NULL;
    *n = p ? c->npeers : 0;
    if (p)
        memcpy(p, c->peers, c->npeers * sizeof *p);
    pthread_mutex_unlock(&c->mu);
    return p;
}

/* One round: every member is asked GET /api/cluster?view=self, in parallel. */
static void probe_round(lookalike_cluster_t *c)
{
    update_members(c);
    size_t n;
    peer_t *ps = peers_copy(c, &n);
    xfer_t *x = n ? calloc(n, sizeof *x) : NULL;
    int timeout = c->o.probe_ms < c->o.timeout_ms ? c->o.probe_ms : c->o.timeout_ms;
    for (size_t i = 0; x && i < n; i++) {
        char url[LOOKALIKE_NODE_URL_MAX + 32];
        snprintf(url, sizeof url, "%s/api/cluster?view=self", ps[i].m.url);
        xfer_init(&x[i], url, NULL, timeout < 250 ? 250 : timeout);
    }
    if (x)
        run_all(c, x, n);
    for (size_t i = 0; x && i < n; i++) {
        json_t *reply;
        char why[192];
        const char *bad = xfer_result(&x[i], &reply, why, sizeof why);
        lookalike_node_info_t info;
        if (!bad && x[i].status != 200)
            bad = (snprintf(why, sizeof why, "GET /api/cluster: HTTP %ld", x[i].status), why);
        if (!bad && lookalike_wire_node_decode(json_object_get(reply, "self"), &info, why, sizeof why) != 0)
            bad = why;
        if (!bad && strcmp(info.name, ps[i].m.name) != 0)
            bad = (snprintf(why, sizeof why, "it says it is %s", info.name), why);
        json_decref(reply);
        xfer_release(&x[i]);
        pthread_mutex_lock(&c->mu);
        for (size_t j = 0; j < c->npeers; j++) {
            peer_t *p = &c->peers[j];
            if (strcmp(p->m.name, ps[i].m.name) != 0)
                continue;
            if (bad) {
                int was_up = p->last_ok > 0 && p->down_until <= mono_s();
                p->down_until = mono_s() + c->o.backoff_ms / 1e3;
                snprintf(p->error, sizeof p->error, "%s", bad);
                if (was_up || !p->failures)
                    core_log_warn(c->o.log, "cluster", "peer %s (%s): %s", p->m.name, p->m.url, bad);
                p->failures++;
            } else {
                if (p->down_until > 0 && p->failures)
                    core_log_info(c->o.log, "cluster", "peer %s (%s) answers again", p->m.name, p->m.url);
                p->info = info;
                p->have_info = 1;
                p->last_ok = mono_s();
                p->down_until = 0;
                p->failures = 0;
                p->error[0] = '\0';
            }
        }
        pthread_mutex_unlock(&c->mu);
    }
    free(x);
    free(ps);
    /* This node's own request figures. */
    if (c->o.server) {
        core_http_stats st;
        core_http_server_stats(c->o.server, &st);
        double now = mono_s();
        pthread_mutex_lock(&c->mu);
        if (c->last_round > 0 && now > c->last_round)
            c->rate = (double)(st.requests - c->last_requests) / (now - c->last_round);
        c->last_requests = st.requests;
        c->last_round = now;
        c->p50_ms = st.p50_ms;
        c->p99_ms = st.p99_ms;
        pthread_mutex_unlock(&c->mu);
    }
    atomic_fetch_add(&c->rounds, 1);
}

static void *probe_main(void *arg)
{
    lookalike_cluster_t *c = arg;
    while (!atomic_load(&c->stopping)) {
        probe_round(c);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ns = until.tv_nsec + (long)(c->o.probe_ms % 1000) * 1000000L;
        until.tv_sec += c->o.probe_ms / 1000 + ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        pthread_mutex_lock(&c->wake_mu);
        if (!atomic_load(&c->stopping))
            pthread_cond_timedwait(&c->wake, &c->wake_mu, &until);
        pthread_mutex_unlock(&c->wake_mu);
    }
    return NULL;
}

/* ---- fan-out ---- */

/* The replica for shard sh: not tried in this fan-out, holding it; up and ready first, then up
 * and not ready, then one marked down. A down mark is a guess from a recent failure (often a
 * probe that was slow on a loaded machine): trying such a replica costs at most the peer
 * timeout, while leaving the shard out makes the answer partial for certain. The token picks
 * among equals. -1 when there is none. */
static long pick(const peer_t *ps, size_t n, const uint8_t *excluded, uint32_t sh, uint64_t token, double now)
{
    size_t cand[LOOKALIKE_MEMBERS_MAX], nc = 0;
    for (int tier = 0; tier < 3 && !nc; tier++)
        for (size_t i = 0; i < n; i++) {
            if (excluded[i] || !ps[i].have_info || !lookalike_shard_set_has(&ps[i].info.shards, sh))
                continue;
            int up = ps[i].down_until <= now;
            if ((tier == 0 && up && ps[i].info.ready) || (tier == 1 && up && !ps[i].info.ready) ||
                (tier == 2 && !up))
                cand[nc++] = i;
        }
    return nc ? (long)cand[token % nc] : -1;
}

static void add_missing(lookalike_fanout_t *out, uint32_t sh)
{
    uint32_t *m = realloc(out->missing, (out->nmissing + 1) * sizeof *m);
    if (m) {
        out->missing = m;
        out->missing[out->nmissing++] = sh;
    }
}

static void fanout(void *ud, const char *coll, const char *op, json_t *body, const uint32_t *shards, size_t n,
                   uint64_t token, lookalike_fanout_t *out)
{
    lookalike_cluster_t *c = ud;
    memset(out, 0, sizeof *out);
    size_t np;
    peer_t *ps = peers_copy(c, &np);
    uint8_t excluded[LOOKALIKE_MEMBERS_MAX] = {0};
    uint32_t todo[LOOKALIKE_SHARDS_MAX];
    size_t ntodo = n < LOOKALIKE_SHARDS_MAX ? n : LOOKALIKE_SHARDS_MAX;
    memcpy(todo, shards, ntodo * sizeof *todo);
    long *chosen = malloc((ntodo ? ntodo : 1) * sizeof *chosen);
    xfer_t *x = calloc(np ? np : 1, sizeof *x);
    long *xpeer = malloc((np ? np : 1) * sizeof *xpeer);
    if (!chosen || !x || !xpeer) {
        for (size_t i = 0; i < ntodo; i++)
            add_missing(out, todo[i]);
        goto done;
    }
    while (ntodo && !out->status) {
        double now = mono_s();
        size_t nx = 0, left = 0;
        for (size_t i = 0; i < ntodo; i++)
            if ((chosen[i] = pick(ps, np, excluded, todo[i], token, now)) < 0)
                add_missing(out, todo[i]);
        /* One request per replica, for all the shards it was picked for. */
        for (size_t i = 0; i < ntodo; i++) {
            if (chosen[i] < 0)
                continue;
            size_t k = 0;
            while (k < nx && xpeer[k] != chosen[i])
                k++;
            if (k < nx)
                continue;
            json_t *list = json_array();
            for (size_t j = i; j < ntodo; j++)
                if (chosen[j] == chosen[i])
                    json_array_append_new(list, json_integer(todo[j]));
            json_object_set_new(body, "shards", list);
            char *req = json_dumps(body, JSON_COMPACT);
            char url[LOOKALIKE_NODE_URL_MAX + LOOKALIKE_COLLECTION_NAME_MAX + 64];
            snprintf(url, sizeof url, "%s/api/collections/%s/shards/%s", ps[chosen[i]].m.url, coll, op);
            xpeer[nx] = chosen[i];
            if (!req || xfer_init(&x[nx], url, req, c->o.timeout_ms) != 0)
                x[nx].rc = CURLE_OUT_OF_MEMORY;
            nx++;
        }
        json_object_del(body, "shards");
        run_all(c, x, nx);
        for (size_t k = 0; k < nx; k++) {
            const peer_t *p = &ps[xpeer[k]];
            json_t *reply;
            char why[192];
            const char *bad = xfer_result(&x[k], &reply, why, sizeof why);
            json_t *e = json_object_get(reply, "error");
            const char *code = json_string_value(json_object_get(e, "code"));
            if (!bad && x[k].status >= 400 && x[k].status < 500 &&
                !(code && !strcmp(code, "shard_not_held"))) {
                /* The request itself was refused: the next replica would refuse it too. */
                if (!out->status) {
                    out->status = (int)x[k].status;
                    snprintf(out->code, sizeof out->code, "%s", code ? code : "");
                    snprintf(out->message, sizeof out->message, "node %s: %s", p->m.name,
                             json_string_value(json_object_get(e, "message"))
                                 ? json_string_value(json_object_get(e, "message"))
                                 : "refused");
                }
                json_decref(reply);
                continue;
            }
            if (!bad && x[k].status != 200)
                bad = (snprintf(why, sizeof why, "HTTP %ld%s%s", x[k].status, code ? ": " : "",
                                code ? code : ""),
                       why);
            int ok = !bad;
            lookalike_fanout_answer_t *a = NULL;
            if (ok) {
                lookalike_fanout_answer_t *na = realloc(out->answers, (out->nanswers + 1) * sizeof *na);
                if (na) {
                    out->answers = na;
                    a = &na[out->nanswers++];
                    memset(a, 0, sizeof *a);
                    a->reply = reply;
                    snprintf(a->node, sizeof a->node, "%s", p->m.name);
                    a->shards = malloc(ntodo * sizeof *a->shards);
                } else {
                    json_decref(reply);
                }
            } else {
                excluded[xpeer[k]] = 1;
                mark_down(c, p->m.name, bad);
            }
            for (size_t i = 0; i < ntodo; i++) {
                if (chosen[i] != xpeer[k])
                    continue;
                if (a && a->shards)
                    a->shards[a->nshards++] = todo[i];
                else if (ok)
                    add_missing(out, todo[i]);
                else
                    todo[left++] = todo[i]; /* to the next replica */
            }
        }
        for (size_t k = 0; k < nx; k++)
            xfer_release(&x[k]);
        ntodo = left;
    }
done:
    free(chosen);
    free(x);
    free(xpeer);
    free(ps);
}

/* ---- life cycle and the node's own state ---- */

lookalike_cluster_t *lookalike_cluster_new(const lookalike_cluster_opts_t *o, char *err, size_t errlen)
{
    lookalike_cluster_t *c = calloc(1, sizeof *c);
    if (!c) {
        lookalike_errf(err, errlen, "out of memory");
        o->membership->free(o->membership);
        return NULL;
    }
    c->o = *o;
    if (!c->o.probe_ms)
        c->o.probe_ms = 1000;
    if (!c->o.timeout_ms)
        c->o.timeout_ms = 5000;
    if (!c->o.backoff_ms)
        c->o.backoff_ms = 2000;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->wake_mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK || pthread_key_create(&c->tls, multi_free) != 0) {
        lookalike_errf(err, errlen, "cannot set up libcurl");
        goto fail;
    }
    if (!(c->name = strdup(o->name)) || !(c->url = strdup(o->url))) {
        lookalike_errf(err, errlen, "out of memory");
        goto fail;
    }
    c->o.name = c->name;
    c->o.url = c->url;
    if (pthread_create(&c->thread, NULL, probe_main, c) != 0) {
        lookalike_errf(err, errlen, "cannot start the cluster probe thread");
        goto fail;
    }
    c->started = 1;
    return c;
fail:
    lookalike_cluster_free(c);
    return NULL;
}

void lookalike_cluster_free(lookalike_cluster_t *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->wake_mu);
        atomic_store(&c->stopping, 1);
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->wake_mu);
        pthread_join(c->thread, NULL);
    }
    /* This thread's own handle, if it fanned out (the others went with their threads). */
    CURLM *m = pthread_getspecific(c->tls);
    if (m) {
        pthread_setspecific(c->tls, NULL);
        curl_multi_cleanup(m);
    }
    pthread_key_delete(c->tls);
    c->o.membership->free(c->o.membership);
    free(c->peers);
    free(c->name);
    free(c->url);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->wake_mu);
    pthread_cond_destroy(&c->wake);
    free(c);
    curl_global_cleanup();
}

void lookalike_cluster_remote(lookalike_cluster_t *c, lookalike_svc_remote_t *out)
{
    out->fanout = fanout;
    out->ud = c;
}

int lookalike_cluster_ready(lookalike_cluster_t *c, char *msg, size_t msglen)
{
    lookalike_svc_state_t st;
    lookalike_svc_state(c->o.svc, &st);
    uint64_t lag = st.catalog_seq - st.applied_seq;
    if (!atomic_load(&c->rounds)) {
        lookalike_errf(msg, msglen, "has not heard from its peers yet");
        return 1;
    }
    if (c->o.max_lag && lag > c->o.max_lag) {
        lookalike_errf(
            msg, msglen, "behind the change log by %llu changes (at seq %llu of %llu; bound %llu)%s",
            (unsigned long long)lag, (unsigned long long)st.applied_seq, (unsigned long long)st.catalog_seq,
            (unsigned long long)c->o.max_lag, st.catching_up ? ", catching up from its snapshot" : "");
        return 1;
    }
    return 0;
}

void lookalike_cluster_self(lookalike_cluster_t *c, lookalike_node_info_t *out)
{
    lookalike_svc_state_t st;
    lookalike_svc_state(c->o.svc, &st);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    snprintf(out->url, sizeof out->url, "%s", c->url);
    out->shards = st.held;
    out->applied_seq = st.applied_seq;
    out->catalog_seq = st.catalog_seq;
    out->ready = lookalike_cluster_ready(c, NULL, 0) == 0;
    pthread_mutex_lock(&c->mu);
    out->requests_per_s = c->rate;
    out->p50_ms = c->p50_ms;
    out->p99_ms = c->p99_ms;
    pthread_mutex_unlock(&c->mu);
}

static json_t *self_json(lookalike_cluster_t *c)
{
    lookalike_node_info_t me;
    lookalike_svc_state_t st;
    lookalike_cluster_self(c, &me);
    lookalike_svc_state(c->o.svc, &st);
    json_t *o = lookalike_wire_node_encode(&me);
    if (o) {
        json_object_set_new(o, "lag", json_integer((json_int_t)(me.catalog_seq - me.applied_seq)));
        json_object_set_new(o, "snapshot_seq", json_integer((json_int_t)st.snapshot_seq));
        json_object_set_new(o, "catching_up", json_boolean(st.catching_up));
        json_object_set_new(o, "max_lag", json_integer((json_int_t)c->o.max_lag));
    }
    return o;
}

static const char *peer_state(const peer_t *p, double now)
{
    if (p->down_until > now)
        return "down";
    return p->have_info ? "up" : "unknown";
}

json_t *lookalike_cluster_view(lookalike_cluster_t *c, int self_only)
{
    if (self_only)
        return json_pack("{s:o*}", "self", self_json(c));
    size_t np;
    peer_t *ps = peers_copy(c, &np);
    double now = mono_s();
    json_t *peers = json_array();
    for (size_t i = 0; peers && i < np; i++) {
        json_t *o = ps[i].have_info ? lookalike_wire_node_encode(&ps[i].info) : json_object();
        if (!o)
            continue;
        json_object_set_new(o, "name", json_string(ps[i].m.name));
        json_object_set_new(o, "url", json_string(ps[i].m.url));
        json_object_set_new(o, "state", json_string(peer_state(&ps[i], now)));
        if (ps[i].have_info)
            json_object_set_new(o, "lag",
                                json_integer((json_int_t)(ps[i].info.catalog_seq - ps[i].info.applied_seq)));
        if (ps[i].last_ok > 0)
            json_object_set_new(o, "last_seen_s", json_real(floor((now - ps[i].last_ok) * 10) / 10));
        if (ps[i].error[0])
            json_object_set_new(o, "error", json_string(ps[i].error));
        json_array_append_new(peers, o);
    }
    lookalike_svc_state_t st;
    lookalike_svc_state(c->o.svc, &st);
    json_t *colls = lookalike_svc_list_collections(c->o.svc), *col;
    size_t ci;
    json_array_foreach(colls, ci, col)
    {
        int nshards = (int)json_integer_value(json_object_get(col, "shards"));
        json_t *replicas = json_array();
        for (int sh = 0; replicas && sh < nshards; sh++) {
            json_t *r = json_array();
            if (lookalike_shard_set_has(&st.held, (uint32_t)sh))
                json_array_append_new(r, json_pack("{s:s,s:s}", "node", c->name, "state", "self"));
            for (size_t i = 0; i < np; i++)
                if (ps[i].have_info && lookalike_shard_set_has(&ps[i].info.shards, (uint32_t)sh))
                    json_array_append_new(r, json_pack("{s:s,s:s,s:b}", "node", ps[i].m.name, "state",
                                                       peer_state(&ps[i], now), "ready", ps[i].info.ready));
            json_array_append_new(replicas, r);
        }
        json_object_set_new(col, "replicas", replicas);
    }
    free(ps);
    return json_pack("{s:o*,s:o*,s:s,s:o*}", "self", self_json(c), "peers", peers, "membership",
                     c->o.membership->kind, "collections", colls);
}
