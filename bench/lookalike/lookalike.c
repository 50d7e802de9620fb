/* bench/lookalike: the search service under lookalike-load, single node, in one run:
 *
 *   1. a synthetic catalogue (lookalike-synth: N products with clustered vectors, no photos),
 *      ingested once into a cached data directory; "more like this", text, filtered and
 *      hybrid searches against `lookalike serve` on it, one kind at a time;
 *   2. image searches (uploads of real photos) against the demo catalogue (all of
 *      DATA_DIR/products, ingested once, cached), next to the peer: the embed engine's own
 *      throughput on the same model (build/embed-prof, batch 8 on every core), measured in the
 *      same run; the ratio image searches/s over engine images/s is the figure to watch.
 *
 * For each case it prints one JSON line: requests/s, p50/p99 latency, errors, and the server
 * process's CPU seconds over the case (user + sys from /proc), so that a busy machine shows as
 * fewer requests per wall second but not per CPU second. lookalike-load runs on the same
 * machine and takes its share of the cores; its own CPU seconds are printed too.
 *
 *   build/bench/lookalike [--products 100000] [--seconds 10] [--connections 8]
 *                         [--image-connections 4] [--sample 20000] [--cache build/bench-data]
 *                         [--only synthetic|image]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    long products, seconds, connections, image_connections, sample, dim;
    const char *cache, *bin, *models, *data;
    const char *only; /* "synthetic" or "image": run that part alone */
    char model[PATH_MAX];
} opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs argv to completion with stdout to out_path (NULL: inherit) and stderr to err_path (NULL:
 * inherit); returns the exit status, or -1. */
static int run(char *const argv[], const char *out_path, const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err_path)
        posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), st;
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench/lookalike: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* user + sys CPU seconds of a process so far (/proc/PID/stat fields 14 and 15). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double children_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Ingests into dir/data once (dir/READY marks a finished one); prints the ingest's figures. */
static int prepare(const char *dir, const char *what, char *const ingest_argv[])
{
    char ready[PATH_MAX], log[PATH_MAX];
    snprintf(ready, sizeof ready, "%s/READY", dir);
    snprintf(log, sizeof log, "%s/ingest.log", dir);
    if (!exists(ready)) {
        double t0 = now_s();
        fprintf(stderr, "bench/lookalike: ingesting the %s catalogue into %s (once; cached)\n", what, dir);
        if (run(ingest_argv, NULL, log) != 0) {
            fprintf(stderr, "bench/lookalike: ingest failed, see %s\n", log);
            return -1;
        }
        FILE *f = fopen(ready, "w");
        if (f)
            fclose(f);
        fprintf(stderr, "bench/lookalike: ingest took %.0f s\n", now_s() - t0);
    }
    FILE *f = fopen(log, "r");
    char line[512], last[512] = "";
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, " added, "))
            snprintf(last, sizeof last, "%s", line);
    if (f)
        fclose(f);
    unsigned long added = 0, already = 0, failed = 0;
    double secs = 0;
    if (sscanf(last, "ingest: %lu added, %lu already in, %lu failed, in %lf s", &added, &already, &failed,
               &secs) == 4)
        printf(
            "{\"bench\":\"lookalike\",\"case\":\"ingest\",\"catalogue\":\"%s\",\"added\":%lu,\"failed\":%lu,"
            "\"seconds\":%.1f,\"per_s\":%.1f}\n",
            what, added, failed, secs, secs > 0 ? added / secs : 0.0);
    return 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench/lookalike: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_server(const opts_t *o, const char *data, int port, const char *embed_threads,
                          const char *log)
{
    char lk[PATH_MAX], ports[16];
    snprintf(lk, sizeof lk, "%s/lookalike", o->bin);
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[] = {lk,
                    "serve",
                    "--data",
                    (char *)data,
                    "--port",
                    ports,
                    "--model",
                    (char *)o->model,
                    "--access-log=false",
                    "--embed-threads",
                    (char *)embed_threads,
                    NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, lk, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    /* Ready when the log says it listens (start-up may load 100,000 products first). */
    for (int i = 0; i < 6000; i++) {
        char buf[4096];
        FILE *f = fopen(log, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        if (strstr(buf, "\"msg\":\"listening\""))
            return pid;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return -1;
        usleep(100 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* The peer: build/embed-prof on the same model; images per wall second over its timed runs and
 * per CPU second of the whole process (its model load and warm-up included: at least 20 s of
 * runs keep that small). */
static int embed_peer(const opts_t *o, const char *tmp, const char *batch, const char *threads, double *ips,
                      double *ipc)
{
    char prof[PATH_MAX], secs[32], out[PATH_MAX];
    snprintf(prof, sizeof prof, "%s/embed-prof", o->bin);
    snprintf(secs, sizeof secs, "%ld", o->seconds < 20 ? 20 : o->seconds);
    snprintf(out, sizeof out, "%s/embed.json", tmp);
    char *argv[] = {prof,        (char *)o->model, "--batch",   (char *)batch,
                    "--threads", (char *)threads,  "--seconds", secs,
                    NULL};
    json_error_t je;
    double cpu0 = children_cpu_s();
    json_t *j = run(argv, out, NULL) == 0 ? json_load_file(out, 0, &je) : NULL;
    double cpu = children_cpu_s() - cpu0;
    *ips = json_number_value(json_object_get(j, "images_per_s"));
    double images = (double)json_integer_value(json_object_get(j, "runs")) * atof(batch);
    json_decref(j);
    *ipc = cpu > 0 ? images / cpu : 0;
    if (*ips <= 0 || *ipc <= 0) {
        fprintf(stderr, "bench/lookalike: embed-prof --batch %s gave no figure\n", batch);
        return -1;
    }
    return 0;
}

/* The end of a log, to stderr, before the temporary directory holding it goes. */
static void dump_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fseek(f, end > (long)sizeof buf - 1 ? end - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    fprintf(stderr, "--- %s (end) ---\n%s\n", path, buf);
}

static void stop_server(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* One case: lookalike-load with `mix` for the set duration; prints its JSON line. */
static int load_case(const opts_t *o, pid_t server, int port, const char *catalogue, long products,
                     const char *mix, long connections, const char *photos, const char *tmp, json_t **out)
{
    char load[PATH_MAX], url[64], secs[32], conns[32], sample[32], outp[PATH_MAX], errp[PATH_MAX];
    snprintf(load, sizeof load, "%s/lookalike-load", o->bin);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    snprintf(secs, sizeof secs, "%lds", o->seconds);
    snprintf(conns, sizeof conns, "%ld", connections);
    snprintf(sample, sizeof sample, "%ld", o->sample);
    snprintf(outp, sizeof outp, "%s/load.json", tmp);
    snprintf(errp, sizeof errp, "%s/load.err", tmp);
    char *argv[20] = {load,  "--url",    url,    "--mix",  (char *)mix,   "--duration", secs, "--connections",
                      conns, "--sample", sample, "--json", "--id-prefix", "bench"};
    int n = 14;
    if (photos) {
        argv[n++] = "--photos";
        argv[n++] = (char *)photos;
    }
    argv[n] = NULL;
    double cpu0 = proc_cpu_s(server), lcpu0 = children_cpu_s();
    int rc = run(argv, outp, errp);
    double cpu = proc_cpu_s(server) - cpu0, lcpu = children_cpu_s() - lcpu0;
    json_error_t je;
    json_t *d = json_load_file(outp, 0, &je);
    if ((rc != 0 && rc != 3) || !d) {
        fprintf(stderr, "bench/lookalike: lookalike-load %s failed (exit %d)\n", mix, rc);
        dump_log(errp);
        json_decref(d);
        return -1;
    }
    json_t *lat = json_object_get(d, "latency_ms");
    double ok = (double)json_integer_value(json_object_get(d, "ok"));
    double dur = json_number_value(json_object_get(d, "duration_s"));
    json_int_t errors = json_integer_value(json_object_get(d, "requests")) - (json_int_t)ok;
    *out =
        json_pack("{s:s,s:s,s:s,s:I,s:i,s:f,s:f,s:f,s:I,s:f,s:f,s:f}", "bench", "lookalike", "case", mix,
                  "catalogue", catalogue, "products", (json_int_t)products, "connections", (int)connections,
                  "rps", dur > 0 ? ok / dur : 0.0, "p50_ms", json_number_value(json_object_get(lat, "p50")),
                  "p99_ms", json_number_value(json_object_get(lat, "p99")), "errors", errors, "server_cpu_s",
                  cpu, "ok_per_server_cpu_s", cpu > 0 ? ok / cpu : 0.0, "load_tool_cpu_s", lcpu);
    json_decref(d);
    return *out ? 0 : -1;
}

static void print_line(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    printf("%s\n", s);
    fflush(stdout);
    free(s);
}

static long arg_long(const char *v)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 1) {
        fprintf(stderr, "bench/lookalike: \"%s\" is not a positive integer\n", v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    opts_t o = {.products = 100000,
                .seconds = 10,
                .connections = 8,
                .image_connections = 4,
                .sample = 20000,
                .dim = 768,
                .cache = "build/bench-data"};
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "bench/lookalike: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--products"))
            o.products = arg_long(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            o.seconds = arg_long(argv[i + 1]);
        else if (!strcmp(argv[i], "--connections"))
            o.connections = arg_long(argv[i + 1]);
        else if (!strcmp(argv[i], "--image-connections"))
            o.image_connections = arg_long(argv[i + 1]);
        else if (!strcmp(argv[i], "--sample"))
            o.sample = arg_long(argv[i + 1]);
        else if (!strcmp(argv[i], "--cache"))
            o.cache = argv[i + 1];
        else if (!strcmp(argv[i], "--only") &&
                 (!strcmp(argv[i + 1], "synthetic") || !strcmp(argv[i + 1], "image")))
            o.only = argv[i + 1];
        else {
            fprintf(stderr,
                    "usage: %s [--products N] [--seconds S] [--connections C] [--image-connections C] "
                    "[--sample N] [--cache DIR] [--only synthetic|image]\n",
                    argv[0]);
            return 2;
        }
    }
    /* build/bench/lookalike -> build/ holds the programs. */
    static char bin[2048];
    snprintf(bin, sizeof bin, "%s", argv[0]);
    char *slash = strrchr(bin, '/');
    if (slash)
        *slash = 0;
    slash = strrchr(bin, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(bin, sizeof bin, ".");
    o.bin = bin;
    o.models = getenv("MODELS_DIR") ? getenv("MODELS_DIR") : "../shared/models";
    o.data = getenv("DATA_DIR") ? getenv("DATA_DIR") : "../shared/data";
    snprintf(o.model, sizeof o.model, "%s/mobilenet_v1_0.75_224.onnx", o.models);
    setenv("OMP_WAIT_POLICY", "passive", 0);
    char tmp[] = "/tmp/bench-lookalike-XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char dir[2048], data[PATH_MAX], jsonl[PATH_MAX], log[PATH_MAX], lk[PATH_MAX], synth[PATH_MAX];
    snprintf(lk, sizeof lk, "%s/lookalike", bin);
    snprintf(synth, sizeof synth, "%s/lookalike-synth", bin);
    snprintf(log, sizeof log, "%s/server.log", tmp);
    int port = free_port(), exit_code = 1;
    json_t *line;

    pid_t srv;
    if (o.only && strcmp(o.only, "synthetic") != 0)
        goto image;
    /* ---- 1. synthetic catalogue ---- */
    snprintf(dir, sizeof dir, "%s/synth-%ld-d%ld", o.cache, o.products, o.dim);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(jsonl, sizeof jsonl, "%s/products.jsonl", dir);
    char mk[PATH_MAX + 16];
    snprintf(mk, sizeof mk, "%s/READY", dir);
    if (!exists(mk)) {
        char count[32], dims[32];
        snprintf(count, sizeof count, "%ld", o.products);
        snprintf(dims, sizeof dims, "%ld", o.dim);
        char *mkdir_argv[] = {"/bin/mkdir", "-p", dir, NULL};
        char *gen[] = {synth, "--count", count, "--dim", dims, NULL};
        if (run(mkdir_argv, NULL, NULL) != 0 || run(gen, jsonl, NULL) != 0) {
            fprintf(stderr, "bench/lookalike: cannot generate %s\n", jsonl);
            goto out;
        }
    }
    char *ingest_synth[] = {lk, "ingest", "--data", data, "--metadata", jsonl, "--model", o.model, NULL};
    if (prepare(dir, "synthetic", ingest_synth) != 0)
        goto out;
    srv = start_server(&o, data, port, "0", log);
    if (srv < 0) {
        fprintf(stderr, "bench/lookalike: the server did not start\n");
        dump_log(log);
        goto out;
    }
    static const char *const kinds[] = {"similar", "text", "filter", "hybrid"};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        if (load_case(&o, srv, port, "synthetic", o.products, kinds[k], o.connections, NULL, tmp, &line) !=
            0) {
            stop_server(srv);
            goto out;
        }
        print_line(line);
        json_decref(line);
    }
    stop_server(srv);
    if (o.only) {
        exit_code = 0;
        goto out;
    }

image:;
    /* ---- 2. image search on the demo catalogue, and the embed engine alone ---- */
    char photos[2048], meta[PATH_MAX];
    snprintf(photos, sizeof photos, "%s/products", o.data);
    snprintf(meta, sizeof meta, "%s/metadata.csv", photos);
    snprintf(dir, sizeof dir, "%s/demo", o.cache);
    snprintf(data, sizeof data, "%s/data", dir);
    char *mkdir_demo[] = {"/bin/mkdir", "-p", dir, NULL};
    char *ingest_demo[] = {lk,   "ingest",  "--data", data,   "--metadata",
                           meta, "--model", o.model,  photos, NULL};
    if (run(mkdir_demo, NULL, NULL) != 0 || prepare(dir, "demo", ingest_demo) != 0)
        goto out;
    if ((srv = start_server(&o, data, port, "1", log)) < 0) {
        fprintf(stderr, "bench/lookalike: the server did not start\n");
        dump_log(log);
        goto out;
    }
    int rc = load_case(&o, srv, port, "demo", 713, "image", o.image_connections, photos, tmp, &line);
    stop_server(srv);
    if (rc != 0)
        goto out;
    /* Peers: the engine's best throughput (batch 8 split over both cores), and the work of one
     * request without the rest of it (batch 1 on one thread, as the server runs with
     * --embed-threads 1). */
    static const struct {
        const char *name, *batch, *threads;
    } peers[] = {{"batch8_2threads", "8", "2"}, {"batch1_1thread", "1", "1"}};
    double rps = json_number_value(json_object_get(line, "rps"));
    double ours_cpu = json_number_value(json_object_get(line, "ok_per_server_cpu_s"));
    for (size_t pi = 0; pi < sizeof peers / sizeof *peers; pi++) {
        double ips, ipc;
        if (embed_peer(&o, tmp, peers[pi].batch, peers[pi].threads, &ips, &ipc) != 0) {
            json_decref(line);
            goto out;
        }
        char key[96];
        snprintf(key, sizeof key, "embed_%s_images_per_s", peers[pi].name);
        json_object_set_new(line, key, json_real(ips));
        snprintf(key, sizeof key, "embed_%s_images_per_cpu_s", peers[pi].name);
        json_object_set_new(line, key, json_real(ipc));
        snprintf(key, sizeof key, "ratio_vs_embed_%s", peers[pi].name);
        json_object_set_new(line, key, json_real(rps / ips));
        snprintf(key, sizeof key, "ratio_cpu_vs_embed_%s", peers[pi].name);
        json_object_set_new(line, key, json_real(ours_cpu / ipc));
    }
    print_line(line);
    json_decref(line);
    exit_code = 0;
out:;
    char *rm[] = {"/bin/rm", "-rf", tmp, NULL};
    run(rm, NULL, NULL);
    return exit_code;
}
