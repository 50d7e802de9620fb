/* `lookalike serve`: opens the data directory, loads the model once and serves the API and,
 * from --web DIR, the shopper's web page at `/`; with --shards and --peers, one node of a
 * sharded cluster (docs/cluster.md); with --etcd, registers the node in etcd. */
#include "cluster/cluster.h"
#include "lookalike/api.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* GET /: the page itself. Its other files are under /ui/, so every path outside /ui/ and /
 * keeps the router's own 404 and 405 answers (an unknown /api route stays a 404 JSON). */
static int web_index(core_http_req *req, void *ud)
{
    return core_http_reply_file(req, ud, "index.html");
}

/* This node's name (default HOSTNAME-PORT) and the URL peers reach it at (default
 * http://BIND:PORT), known once the server listens; both the cluster and etcd use them. */
static int node_identity(const char *name, const char *advertise, const char *bind, int port,
                         char name_out[LOOKALIKE_NODE_NAME_MAX + 1], char url_out[LOOKALIKE_NODE_URL_MAX + 1],
                         char *err, size_t errlen)
{
    char host[256];
    if (!*name) {
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "node");
        host[sizeof host - 1] = '\0';
        snprintf(name_out, LOOKALIKE_NODE_NAME_MAX + 1, "%.50s-%d", host, port);
        for (char *p = name_out; *p; p++)
            if (!lookalike_node_name_valid((char[]){*p, 0}))
                *p = '-';
    } else if (!lookalike_node_name_valid(name)) {
        snprintf(err, errlen, "--node-name: \"%s\" must be 1..%d of A-Z a-z 0-9 . _ -", name,
                 LOOKALIKE_NODE_NAME_MAX);
        return -1;
    } else {
        snprintf(name_out, LOOKALIKE_NODE_NAME_MAX + 1, "%s", name);
    }
    if (strlen(advertise) > LOOKALIKE_NODE_URL_MAX) {
        snprintf(err, errlen, "--advertise: longer than %d bytes", LOOKALIKE_NODE_URL_MAX);
        return -1;
    }
    if (*advertise)
        snprintf(url_out, LOOKALIKE_NODE_URL_MAX + 1, "%s", advertise);
    else
        snprintf(url_out, LOOKALIKE_NODE_URL_MAX + 1, strchr(bind, ':') ? "http://[%s]:%d" : "http://%s:%d",
                 bind, port);
    return 0;
}

/* Membership: from etcd when --etcd is given (with --peers as the list used until etcd first
 * answers), else the fixed --peers. */
static lookalike_cluster_t *join_cluster(const char *name, const char *url, const char *etcd,
                                         const char *peers, int peer_timeout_ms, int max_lag,
                                         lookalike_svc_t *svc, core_http_server *srv, core_log *log,
                                         char *err, size_t errlen)
{
    lookalike_membership_t *m = lookalike_membership_static(peers, name, err, errlen);
    if (m && *etcd) {
        if (!*peers) {
            m->free(m);
            m = NULL;
        }
        m = lookalike_membership_etcd(etcd, name, m, log, err, errlen);
    }
    if (!m)
        return NULL;
    lookalike_cluster_opts_t o = {.name = name,
                                  .url = url,
                                  .svc = svc,
                                  .membership = m,
                                  .server = srv,
                                  .log = log,
                                  .timeout_ms = peer_timeout_ms,
                                  .max_lag = (uint64_t)max_lag};
    return lookalike_cluster_new(&o, err, errlen);
}

/* Registers this node as /lookalike/nodes/NAME = {"name","url","shards","started_at"} under a
 * lease. The shard set is there for operators (etcdctl get --prefix /lookalike/nodes/); peers
 * learn it from the node itself, which is always current. */
static cluster_member_t *register_node(const char *etcd, const char *name, const char *url,
                                       const char *shards, int ttl, core_log *log, char *err, size_t errlen)
{
    char *key = NULL, *value = NULL;
    json_t *v = json_pack("{s:s, s:s, s:s, s:I}", "name", name, "url", url, "shards", shards, "started_at",
                          (json_int_t)time(NULL) * 1000);
    cluster_member_t *m = NULL;
    if (!v || !(value = json_dumps(v, JSON_COMPACT)) ||
        asprintf(&key, "%s%s", LOOKALIKE_ETCD_PREFIX, name) < 0) {
        key = NULL;
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    cluster_member_opts_t o = {.endpoints = etcd, .key = key, .value = value, .ttl_s = ttl, .log = log};
    m = cluster_member_start(&o, err, errlen);
done:
    json_decref(v);
    free(key);
    free(value);
    return m;
}

int lookalike_cmd_serve(int argc, char **argv)
{
    core_http_config cfg;
    core_http_config_defaults(&cfg);
    cfg.service = "lookalike";
    cfg.version = "0.1";
    const char *data = NULL, *model = NULL, *api_key = NULL, *log_level = NULL, *web = NULL, *store = NULL;
    const char *shards = NULL, *peers = NULL, *node_name = NULL, *advertise = NULL, *default_key = NULL;
    const char *etcd = NULL;
    int embed_threads = 0, max_lag = 1000, snapshot_ms = 30000, peer_timeout_ms = 5000, default_shards = 1;
    int member_ttl = 10;
    core_flag flags[CORE_HTTP_CONFIG_NFLAGS + 24];
    size_t nflags = core_http_config_flags(&cfg, flags, CORE_HTTP_CONFIG_NFLAGS);
    flags[nflags++] = (core_flag){"data",
                                  CORE_FLAG_STR,
                                  &data,
                                  "",
                                  0,
                                  0,
                                  "data directory (catalogue, photos, vector indexes); created if missing"};
    flags[nflags++] = (core_flag){"store",
                                  CORE_FLAG_STR,
                                  &store,
                                  "",
                                  0,
                                  0,
                                  "catalogue store: empty for SQLite in the data directory, or a PostgreSQL "
                                  "connection string (postgresql://user@host1:5432,host2:5432/db)"};
    flags[nflags++] = (core_flag){"model",
                                  CORE_FLAG_STR,
                                  &model,
                                  LOOKALIKE_DEFAULT_MODEL,
                                  0,
                                  0,
                                  "ONNX image model that turns photos into vectors"};
    flags[nflags++] = (core_flag){"api-key",
                                  CORE_FLAG_STR,
                                  &api_key,
                                  "",
                                  0,
                                  0,
                                  "when set, write endpoints need this value in the X-API-Key header"};
    flags[nflags++] = (core_flag){"embed-threads",
                                  CORE_FLAG_INT,
                                  &embed_threads,
                                  "0",
                                  0,
                                  256,
                                  "threads per photo inference (0 = every core)"};
    flags[nflags++] = (core_flag){"web",
                                  CORE_FLAG_STR,
                                  &web,
                                  LOOKALIKE_DEFAULT_WEB,
                                  0,
                                  0,
                                  "directory of the web page served at / (\"\" serves the API alone)"};
    flags[nflags++] =
        (core_flag){"log-level", CORE_FLAG_STR, &log_level, "info", 0, 0, "debug, info, warn or error"};
    flags[nflags++] =
        (core_flag){"etcd",
                    CORE_FLAG_STR,
                    &etcd,
                    "",
                    0,
                    0,
                    "etcd endpoints (http://host:port,...): this node registers there and finds its "
                    "peers there (--peers then only until etcd first answers); empty = neither"};
    flags[nflags++] =
        (core_flag){"shards",
                    CORE_FLAG_STR,
                    &shards,
                    "all",
                    0,
                    0,
                    "shards this node holds in every collection: \"all\" or a list such as 0,1 or 0-3 "
                    "(needs a PostgreSQL store)"};
    flags[nflags++] =
        (core_flag){"peers",
                    CORE_FLAG_STR,
                    &peers,
                    "",
                    0,
                    0,
                    "the other nodes, NAME=http://HOST:PORT,... (this node's own entry is skipped); "
                    "searches ask them for the shards not held here; with --etcd, a fallback"};
    flags[nflags++] = (core_flag){
        "node-name",
        CORE_FLAG_STR,
        &node_name,
        "",
        0,
        0,
        "this node's name among its peers and in etcd (/lookalike/nodes/NAME); default HOSTNAME-PORT"};
    flags[nflags++] = (core_flag){"advertise",
                                  CORE_FLAG_STR,
                                  &advertise,
                                  "",
                                  0,
                                  0,
                                  "the URL other machines reach this node at; default http://BIND:PORT"};
    flags[nflags++] = (core_flag){"member-ttl",
                                  CORE_FLAG_INT,
                                  &member_ttl,
                                  "10",
                                  2,
                                  3600,
                                  "seconds a node that died stays registered in etcd"};
    flags[nflags++] =
        (core_flag){"max-lag",
                    CORE_FLAG_INT,
                    &max_lag,
                    "1000",
                    0,
                    1000000000,
                    "changes this node may be behind the change log and still be ready (0: no bound)"};
    flags[nflags++] =
        (core_flag){"snapshot-interval",
                    CORE_FLAG_MS,
                    &snapshot_ms,
                    "30s",
                    0,
                    24 * 3600 * 1000,
                    "how often a node on PostgreSQL saves its tables to <data>/node.snap (0: only at "
                    "a clean stop)"};
    flags[nflags++] = (core_flag){"peer-timeout",
                                  CORE_FLAG_MS,
                                  &peer_timeout_ms,
                                  "5s",
                                  100,
                                  600 * 1000,
                                  "longest a request to a peer may take before another replica is asked"};
    flags[nflags++] = (core_flag){"default-shards",
                                  CORE_FLAG_INT,
                                  &default_shards,
                                  "1",
                                  1,
                                  LOOKALIKE_SHARDS_MAX,
                                  "shards of the default collection \"products\" when this node creates it"};
    flags[nflags++] =
        (core_flag){"default-shard-key",
                    CORE_FLAG_STR,
                    &default_key,
                    "category",
                    0,
                    0,
                    "shard key of the default collection when this node creates it: category or id"};
    char err[1024] = "";
    int rc = core_flags_parse(
        flags, nflags, "LOOKALIKE", argc, argv,
        "lookalike serve: the similar-product search API\n"
        "usage: lookalike serve --data DIR [--store postgresql://...] [--port PORT] [--model FILE.onnx] "
        "[--flag value]...",
        stdout, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "lookalike serve: %s\n", err);
        return 2;
    }
    if (!*data) {
        fprintf(stderr, "lookalike serve: --data (LOOKALIKE_DATA) is required\n");
        return 2;
    }
    core_log_level level;
    if (core_log_level_parse(log_level, &level) != 0) {
        fprintf(stderr, "lookalike serve: --log-level: \"%s\" is not debug, info, warn or error\n",
                log_level);
        return 2;
    }
    if ((strcmp(shards, "all") != 0 || *peers) && !lookalike_store_is_pg(store)) {
        fprintf(stderr,
                "lookalike serve: --shards and --peers need a shared catalogue: --store postgresql://...\n");
        return 2;
    }
    int exit_code = 1;
    core_log *log = core_log_new(2, level, getenv("CORE_DEBUG"));
    core_metrics *metrics = core_metrics_new();
    core_http_server *srv = NULL;
    core_static *site = NULL;
    lookalike_svc_t *svc = NULL;
    cluster_member_t *member = NULL;
    lookalike_cluster_slot_t slot = {NULL};
    if (!log || !metrics) {
        fprintf(stderr, "lookalike serve: out of memory\n");
        goto done;
    }
    /* Opened before the model loads, so a wrong --web fails in milliseconds. no-cache: the
     * browser revalidates every file (a 304 through its ETag), so an upgraded page is seen at
     * once. */
    if (*web && !(site = core_static_new(web, "no-cache", err, sizeof err))) {
        fprintf(stderr, "lookalike serve: --web (LOOKALIKE_WEB): %s; pass --web '' to serve the API alone\n",
                err);
        exit_code = 2;
        goto done;
    }
    lookalike_svc_opts_t so = {.data_dir = data,
                               .store = store,
                               .model_path = model,
                               .embed_threads = embed_threads,
                               .progress = stderr,
                               .shards = shards,
                               .default_shards = (uint32_t)default_shards,
                               .default_shard_key = default_key,
                               .snapshot_ms = snapshot_ms,
                               .follow_later = 1};
    if (!(svc = lookalike_svc_open(&so, err, sizeof err)))
        goto fail;
    lookalike_api_t api = {.svc = svc, .api_key = api_key};
    if (!(srv = core_http_server_new(&cfg, log, metrics, err, sizeof err)))
        goto fail;
    /* The store's password must not reach /debug. */
    char store_desc[512];
    lookalike_store_describe(store, store_desc, sizeof store_desc);
    json_t *dbg = core_flags_to_json(flags, nflags);
    json_object_set_new(dbg, "store", json_string(store_desc));
    core_http_set_debug_config(srv, dbg);
    lookalike_svc_remote_t remote;
    lookalike_cluster_slot_remote(&slot, &remote);
    lookalike_svc_set_remote(svc, &remote);
    if (lookalike_api_routes(&api, srv, err, sizeof err) != 0 ||
        lookalike_cluster_routes(&slot, srv, err, sizeof err) != 0 ||
        (site && (core_http_route(srv, "GET", "/", web_index, site, NULL, err, sizeof err) != 0 ||
                  core_http_route_static(srv, "/ui", site, err, sizeof err) != 0)) ||
        core_http_add_ready_check(srv, "cluster", lookalike_cluster_slot_ready, &slot) != 0 ||
        core_http_server_start(srv, err, sizeof err) != 0)
        goto fail;
    char name[LOOKALIKE_NODE_NAME_MAX + 1], url[LOOKALIKE_NODE_URL_MAX + 1];
    if (node_identity(node_name, advertise, cfg.bind, core_http_server_port(srv), name, url, err,
                      sizeof err) != 0)
        goto fail;
    lookalike_cluster_t *cluster =
        join_cluster(name, url, etcd, peers, peer_timeout_ms, max_lag, svc, srv, log, err, sizeof err);
    if (!cluster)
        goto fail;
    atomic_store(&slot.cluster, cluster);
    /* Listening first: a node catching up from its snapshot says so on /readyz meanwhile. */
    if (lookalike_svc_follow(svc, err, sizeof err) != 0)
        goto fail;
    core_log_info(log, "lookalike",
                  "serving %llu products on http://%s:%d/ (data %s, store %s, model %s, web %s)",
                  (unsigned long long)lookalike_svc_count(svc, LOOKALIKE_DEFAULT_COLLECTION), cfg.bind,
                  core_http_server_port(srv), data, store_desc, model, *web ? web : "off");
    if (*etcd && !(member = register_node(etcd, name, url, shards, member_ttl, log, err, sizeof err)))
        goto fail;
    core_http_server_wait(srv);
    exit_code = 0;
    goto done;
fail:
    fprintf(stderr, "lookalike serve: %s\n", err);
done:
    /* Leave etcd first, so that others stop sending work here while requests drain; requests
     * finish next (they may fan out), then the cluster's probe thread, which reads the server's
     * figures, goes before the server does. */
    cluster_member_stop(member);
    if (srv)
        core_http_server_shutdown(srv);
    lookalike_cluster_free(atomic_load(&slot.cluster));
    core_http_server_free(srv);
    core_static_free(site);
    lookalike_svc_close(svc);
    core_metrics_free(metrics);
    core_log_free(log);
    return exit_code;
}
