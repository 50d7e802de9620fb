/*
 * bench/embed: the embed engine against ONNX Runtime, and our image pipeline against PIL, on
 * the same machine in the same run.
 *
 *   build/bench/embed --models A.onnx,B.onnx --data DATA_DIR [--threads 1,2] [--batches 1,8,16]
 *                     [--rounds R] [--chunk-ms MS] [--pipeline-images N] [--pipeline-rounds R]
 *                     [--ort-spin 0|1] [--quick]
 *
 * Engine. For every model and thread count, our engine (in this process) and ONNX Runtime
 * (onnxruntime-node in a child process that keeps its session loaded, tools/ort/run.js
 * --serve) get the same input: 16 real product photos preprocessed by our pipeline with the
 * model's normalisation; both compute the model's class scores (the whole network). Each
 * batch size is measured in R rounds; a round is one chunk of runs on our side and one on
 * ONNX Runtime's (about --chunk-ms each), the order alternating between rounds, so a change
 * of machine load hits both. One JSON line per (model, threads, batch): median wall time
 * per run on each side, images/s from it, the ratios ours/ORT of throughput and latency,
 * and CPU time per image (user + system of the whole process, each side measured
 * the same way), which preemption on a shared machine does not inflate.
 *
 * Threads: ours with options.threads = T, ORT with intra_op_num_threads = T and one inter-op
 * thread. Both wait the same way: the benchmark restarts itself with
 * OMP_WAIT_POLICY=passive unless the variable is set, and ORT's intra-op threads spin only
 * if that policy is "active" (--ort-spin overrides).
 *
 * Pipeline. Decode + EXIF + sRGB + resize 256 + crop 224 + normalise of N product photos,
 * one image at a time on one thread, ours (embed_image_tensor_file) against PIL doing
 * torchvision's preprocessing (bench/embed/pil_pipeline.py, libjpeg-turbo like us), in
 * alternating rounds; images/s of each round's loop, median over rounds, CPU time per image.
 */
#include "embed/embed.h"

#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIST 16
#define MAX_PHOTOS 100000
#define INPUT_IMAGES 16
#define MAX_RUNS 100000

typedef struct {
    const char *models[MAX_LIST];
    int n_models;
    int threads[MAX_LIST], n_threads;
    int batches[MAX_LIST], n_batches;
    int rounds;
    double chunk_ms;
    const char *data;
    int pipeline_images, pipeline_rounds;
    int ort_spin; /* -1: follow OMP_WAIT_POLICY */
} opts_t;

typedef struct {
    char **v;
    int n, cap;
} photos_t;

/* A child process with its stdin and stdout piped to us. */
typedef struct {
    pid_t pid;
    FILE *in, *out;
} child_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_ints(const char *s, int *out, int cap, int lo, int hi)
{
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < lo || v > hi || n == cap)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

static int add_photo(photos_t *p, const char *path)
{
    if (p->n == MAX_PHOTOS)
        return 0;
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 1024;
        char **v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    if (!(p->v[p->n] = strdup(path)))
        return -1;
    p->n++;
    return 0;
}

/* Collects every .jpg under dir (at most 8 folders deep). */
static int walk(const char *dir, int depth, photos_t *p)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    if (!d)
        return -1;
    while (rc == 0 && (e = readdir(d))) {
        char path[4096];
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 8)
            rc = walk(path, depth + 1, p);
        else if (S_ISREG(st.st_mode) && len > 4 && strcmp(e->d_name + len - 4, ".jpg") == 0)
            rc = add_photo(p, path);
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .jpg under dir, sorted. */
static int find_photos(const char *dir, photos_t *p)
{
    if (walk(dir, 0, p) != 0 || p->n == 0) {
        fprintf(stderr, "bench/embed: no photos under %s\n", dir);
        return -1;
    }
    qsort(p->v, (size_t)p->n, sizeof *p->v, cmp_str);
    return 0;
}

static int child_start(char *const argv[], child_t *c)
{
    int to[2], from[2];
    if (pipe(to) != 0)
        return -1;
    if (pipe(from) != 0) {
        close(to[0]);
        close(to[1]);
        return -1;
    }
    c->pid = fork();
    if (c->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "bench/embed: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    if (c->pid < 0) {
        close(to[1]);
        close(from[0]);
        return -1;
    }
    c->in = fdopen(to[1], "w");
    c->out = fdopen(from[0], "r");
    return c->in && c->out ? 0 : -1;
}

/* Closes the child's stdin (which ends it) and reaps it; returns its exit status. */
static int child_finish(child_t *c)
{
    int status = 0;
    if (c->in)
        fclose(c->in);
    if (c->out)
        fclose(c->out);
    if (c->pid > 0 && waitpid(c->pid, &status, 0) < 0)
        return -1;
    *c = (child_t){0};
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Asks the ORT peer for `iters` runs at `batch`; appends the wall times (s) to wall[] and
 * returns the CPU seconds, or -1. */
static double ort_runs(child_t *c, int batch, int iters, double *wall, int *n_wall)
{
    char *line = NULL;
    size_t cap = 0;
    double cpu = -1;
    fprintf(c->in, "%d %d\n", batch, iters);
    fflush(c->in);
    if (getline(&line, &cap, c->out) < 0 || strncmp(line, "ok ", 3) != 0) {
        fprintf(stderr, "bench/embed: ONNX Runtime peer: %s", line && !feof(c->out) ? line : "exited\n");
        goto done;
    }
    char *p = line + 3, *end;
    double cpu_ms = strtod(p, &end);
    for (int i = 0; i < iters; i++) {
        p = end;
        double ms = strtod(p, &end);
        if (end == p)
            goto done;
        if (*n_wall < MAX_RUNS)
            wall[(*n_wall)++] = ms / 1e3;
    }
    cpu = cpu_ms / 1e3;
done:
    free(line);
    return cpu;
}

static double ours_runs(embed_ctx *ctx, const float *in, int batch, const char *out_name, float *out,
                        size_t out_cap, int iters, double *wall, int *n_wall)
{
    char err[512];
    double c0 = cpu_now();
    for (int i = 0; i < iters; i++) {
        double t0 = now();
        if (embed_ctx_run(ctx, in, batch, out_name, out, out_cap, err, sizeof err) != 0) {
            fprintf(stderr, "bench/embed: %s\n", err);
            return -1;
        }
        if (*n_wall < MAX_RUNS)
            wall[(*n_wall)++] = now() - t0;
    }
    return cpu_now() - c0;
}

/* The tensor both sides compute: the class scores, so the whole network runs. */
static const char *class_output(const embed_model *m)
{
    for (int i = 0; i < embed_model_output_count(m); i++)
        if (strcmp(embed_model_output_name(m, i), "logits") == 0)
            return "logits";
    return embed_model_output_name(m, 0);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Writes the benchmark input: INPUT_IMAGES photos through the model's preprocessing. */
static float *make_input(const embed_model *m, const photos_t *ph, const char *path, size_t *per_image)
{
    char err[512];
    embed_image_opts_t io;
    embed_image_opts_init(&io);
    const char *pre = embed_model_metadata(m, "preprocessing");
    if (pre)
        embed_image_opts_parse_preprocessing(&io, pre, NULL, 0);
    size_t tlen = embed_image_tensor_len(&io);
    float *in = malloc(INPUT_IMAGES * tlen * sizeof *in);
    FILE *f = NULL;
    if (!in)
        goto fail;
    for (int i = 0; i < INPUT_IMAGES; i++)
        if (embed_image_tensor_file(ph->v[(size_t)i * (size_t)ph->n / INPUT_IMAGES], &io,
                                    in + (size_t)i * tlen, err, sizeof err) != 0) {
            fprintf(stderr, "bench/embed: %s\n", err);
            goto fail;
        }
    if (!(f = fopen(path, "wb")) || fwrite(in, sizeof *in, INPUT_IMAGES * tlen, f) != INPUT_IMAGES * tlen) {
        fprintf(stderr, "bench/embed: cannot write %s\n", path);
        goto fail;
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    *per_image = tlen;
    return in;
fail:
    if (f)
        fclose(f);
    free(in);
    return NULL;
}

static int bench_model(const opts_t *o, const char *path, const photos_t *ph, const char *spin)
{
    char err[512], input_path[] = "/tmp/bench-embed-XXXXXX";
    int rc = -1, fd = mkstemp(input_path);
    embed_model *m = NULL;
    embed_ctx *ctx = NULL;
    float *in = NULL, *out = NULL;
    double *wo = malloc(MAX_RUNS * sizeof *wo), *wr = malloc(MAX_RUNS * sizeof *wr);
    child_t peer = {0};
    if (fd < 0 || !wo || !wr) {
        fprintf(stderr, "bench/embed: cannot create a temporary file\n");
        goto done;
    }
    close(fd);
    for (int ti = 0; ti < o->n_threads; ti++) {
        int threads = o->threads[ti];
        embed_model_options mo = {.threads = threads};
        if (!(m = embed_model_load(path, &mo, err, sizeof err))) {
            fprintf(stderr, "bench/embed: %s: %s\n", path, err);
            goto done;
        }
        const char *out_name = class_output(m);
        long dim = embed_model_output_dim(m, out_name, err, sizeof err);
        size_t tlen = 0;
        if (dim <= 0 || !(ctx = embed_ctx_new(m, err, sizeof err))) {
            fprintf(stderr, "bench/embed: %s: %s\n", path, err);
            goto done;
        }
        if (!in && !(in = make_input(m, ph, input_path, &tlen)))
            goto done;
        size_t out_cap = INPUT_IMAGES * (size_t)dim;
        free(out);
        if (!(out = malloc(out_cap * sizeof *out)))
            goto done;
        char shape[64], threads_s[16];
        int c, h, w;
        embed_model_input_shape(m, &c, &h, &w);
        snprintf(shape, sizeof shape, "%d,%d,%d,%d", INPUT_IMAGES, c, h, w);
        snprintf(threads_s, sizeof threads_s, "%d", threads);
        char *argv[] = {"node",    "tools/ort/run.js", "--serve",        "--model", (char *)path,
                        "--input", input_path,         "--shape",        shape,     "--threads",
                        threads_s, "--outputs",        (char *)out_name, "--spin",  (char *)spin,
                        NULL};
        if (child_start(argv, &peer) != 0) {
            fprintf(stderr, "bench/embed: cannot start the ONNX Runtime peer\n");
            goto done;
        }
        for (int bi = 0; bi < o->n_batches; bi++) {
            int batch = o->batches[bi], n_wo = 0, n_wr = 0;
            if (batch > INPUT_IMAGES)
                continue;
            /* Warm-up (plans, primitives, ORT's arena) and a first estimate of a run's time. */
            double t_ours = ours_runs(ctx, in, batch, out_name, out, out_cap, 2, wo, &n_wo);
            double t_ort = ort_runs(&peer, batch, 2, wr, &n_wr);
            if (t_ours < 0 || t_ort < 0)
                goto done;
            double est = fmax(median(wo, n_wo), median(wr, n_wr));
            int iters = (int)fmax(1, ceil(o->chunk_ms / 1e3 / est));
            double cpu_ours = 0, cpu_ort = 0;
            n_wo = n_wr = 0;
            for (int r = 0; r < o->rounds; r++) {
                for (int side = 0; side < 2; side++) {
                    double cpu = (side ^ (r & 1)) == 0
                                     ? ours_runs(ctx, in, batch, out_name, out, out_cap, iters, wo, &n_wo)
                                     : ort_runs(&peer, batch, iters, wr, &n_wr);
                    if (cpu < 0)
                        goto done;
                    if ((side ^ (r & 1)) == 0)
                        cpu_ours += cpu;
                    else
                        cpu_ort += cpu;
                }
            }
            double images = (double)o->rounds * iters * batch;
            double mo_s = median(wo, n_wo), mr_s = median(wr, n_wr);
            printf(
                "{\"bench\":\"embed\",\"model\":\"%s\",\"threads\":%d,\"batch\":%d,\"runs\":%d,"
                "\"ours_ms\":%.3f,\"ort_ms\":%.3f,\"ours_img_s\":%.2f,\"ort_img_s\":%.2f,"
                "\"ratio_throughput\":%.3f,\"ratio_latency\":%.3f,\"ours_min_ms\":%.3f,\"ort_min_ms\":%.3f,"
                "\"ours_cpu_ms_per_img\":%.3f,\"ort_cpu_ms_per_img\":%.3f,\"ratio_cpu\":%.3f}\n",
                base_name(path), threads, batch, n_wo, mo_s * 1e3, mr_s * 1e3, batch / mo_s, batch / mr_s,
                mr_s / mo_s, mo_s / mr_s, wo[0] * 1e3, wr[0] * 1e3, cpu_ours / images * 1e3,
                cpu_ort / images * 1e3, cpu_ours / cpu_ort);
            fflush(stdout);
        }
        if (child_finish(&peer) != 0) {
            fprintf(stderr, "bench/embed: the ONNX Runtime peer failed\n");
            goto done;
        }
        embed_ctx_free(ctx);
        ctx = NULL;
        embed_model_free(m);
        m = NULL;
    }
    rc = 0;
done:
    if (peer.pid > 0) {
        kill(peer.pid, SIGTERM);
        child_finish(&peer);
    }
    embed_ctx_free(ctx);
    embed_model_free(m);
    unlink(input_path);
    free(in);
    free(out);
    free(wo);
    free(wr);
    return rc;
}

/* One PIL round over the photos: returns its loop's wall seconds, CPU seconds in *cpu. */
static double pil_round(char **files, int n, double *cpu)
{
    char **argv = calloc((size_t)n + 3, sizeof *argv);
    child_t c = {0};
    char line[4096];
    double secs = -1;
    if (!argv)
        return -1;
    argv[0] = "/usr/bin/python3";
    argv[1] = "bench/embed/pil_pipeline.py";
    memcpy(argv + 2, files, (size_t)n * sizeof *argv);
    if (child_start(argv, &c) == 0 && fgets(line, sizeof line, c.out)) {
        const char *s = strstr(line, "\"seconds\":"), *u = strstr(line, "\"cpu_seconds\":");
        if (s && u) {
            secs = strtod(s + 10, NULL);
            *cpu = strtod(u + 14, NULL);
        }
    }
    if (child_finish(&c) != 0)
        secs = -1;
    free(argv);
    return secs;
}

static int bench_pipeline(const opts_t *o, const photos_t *ph)
{
    char err[512];
    int n = o->pipeline_images < ph->n ? o->pipeline_images : ph->n;
    char **files = malloc((size_t)n * sizeof *files);
    embed_image_opts_t io;
    embed_image_opts_init(&io);
    float *t = malloc(embed_image_tensor_len(&io) * sizeof *t);
    double *ours = calloc((size_t)o->pipeline_rounds, sizeof *ours),
           *pil = calloc((size_t)o->pipeline_rounds, sizeof *pil);
    double cpu_ours = 0, cpu_pil = 0;
    int rc = -1;
    if (!files || !t || !ours || !pil)
        goto done;
    for (int i = 0; i < n; i++)
        files[i] = ph->v[(size_t)i * (size_t)ph->n / (size_t)n];
    for (int r = 0; r < o->pipeline_rounds; r++)
        for (int side = 0; side < 2; side++) {
            if ((side ^ (r & 1)) == 0) {
                double c0 = cpu_now(), t0 = now();
                for (int i = 0; i < n; i++)
                    if (embed_image_tensor_file(files[i], &io, t, err, sizeof err) != 0) {
                        fprintf(stderr, "bench/embed: %s\n", err);
                        goto done;
                    }
                ours[r] = n / (now() - t0);
                cpu_ours += cpu_now() - c0;
            } else {
                double cpu = 0, s = pil_round(files, n, &cpu);
                if (s <= 0) {
                    fprintf(stderr, "bench/embed: the PIL peer failed\n");
                    goto done;
                }
                pil[r] = n / s;
                cpu_pil += cpu;
            }
        }
    double mo = median(ours, o->pipeline_rounds), mp = median(pil, o->pipeline_rounds);
    double images = (double)n * o->pipeline_rounds;
    printf("{\"bench\":\"embed_pipeline\",\"images\":%d,\"rounds\":%d,\"ours_img_s\":%.1f,\"pil_img_s\":%.1f,"
           "\"ratio_throughput\":%.3f,\"ours_cpu_ms_per_img\":%.3f,\"pil_cpu_ms_per_img\":%.3f,\"ratio_cpu\":"
           "%.3f}\n",
           n, o->pipeline_rounds, mo, mp, mo / mp, cpu_ours / images * 1e3, cpu_pil / images * 1e3,
           cpu_ours / cpu_pil);
    rc = 0;
done:
    free(files);
    free(t);
    free(ours);
    free(pil);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench/embed --models A.onnx[,B.onnx...] --data DATA_DIR [--threads 1,2] "
                    "[--batches 1,8,16] [--rounds 5] [--chunk-ms 400] [--pipeline-images 200] "
                    "[--pipeline-rounds 5] [--ort-spin 0|1] [--quick]\n"
                    "  --quick: 2 rounds of one run per side, 50 pipeline images in 3 rounds\n");
}

int main(int argc, char **argv)
{
    /* libgomp reads its wait policy once, at load: set it before restarting if unset. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "bench/embed: cannot restart with OMP_WAIT_POLICY=passive: %s\n", strerror(errno));
        return 1;
    }
    opts_t o = {.threads = {1, 2},
                .n_threads = 2,
                .batches = {1, 8, 16},
                .n_batches = 3,
                .rounds = 5,
                .chunk_ms = 400,
                .pipeline_images = 200,
                .pipeline_rounds = 5,
                .ort_spin = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--quick") == 0) {
            o.rounds = 2;
            o.chunk_ms = 0;
            o.pipeline_images = 50;
            o.pipeline_rounds = 3;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--models") == 0) {
            /* The paths point into argv, cut at the commas. */
            char *save = NULL;
            o.n_models = 0;
            for (char *tok = strtok_r(argv[i], ",", &save); tok && o.n_models < MAX_LIST;
                 tok = strtok_r(NULL, ",", &save))
                o.models[o.n_models++] = tok;
        } else if (strcmp(a, "--data") == 0)
            o.data = v;
        else if (strcmp(a, "--threads") == 0)
            bad = (o.n_threads = parse_ints(v, o.threads, MAX_LIST, 1, 64)) <= 0;
        else if (strcmp(a, "--batches") == 0)
            bad = (o.n_batches = parse_ints(v, o.batches, MAX_LIST, 1, INPUT_IMAGES)) <= 0;
        else if (strcmp(a, "--rounds") == 0)
            bad = (o.rounds = atoi(v)) < 1;
        else if (strcmp(a, "--chunk-ms") == 0)
            bad = (o.chunk_ms = atof(v)) < 0;
        else if (strcmp(a, "--pipeline-images") == 0)
            bad = (o.pipeline_images = atoi(v)) < 0;
        else if (strcmp(a, "--pipeline-rounds") == 0)
            bad = (o.pipeline_rounds = atoi(v)) < 1;
        else if (strcmp(a, "--ort-spin") == 0)
            bad = (o.ort_spin = atoi(v)) < 0 || o.ort_spin > 1;
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "bench/embed: bad option %s %s\n", a, v);
            usage();
            return 2;
        }
    }
    if (!o.data || (o.n_models == 0 && o.pipeline_images == 0)) {
        usage();
        return 2;
    }
    char err[512], dir[4096];
    photos_t ph = {0};
    snprintf(dir, sizeof dir, "%s/products", o.data);
    if (find_photos(dir, &ph) != 0)
        return 1;
    if (embed_image_global_init(argv[0], 1, err, sizeof err) != 0) {
        fprintf(stderr, "bench/embed: %s\n", err);
        return 1;
    }
    const char *policy = getenv("OMP_WAIT_POLICY");
    int spin = o.ort_spin >= 0 ? o.ort_spin : strcasecmp(policy, "active") == 0;
    printf(
        "{\"bench\":\"embed_setup\",\"omp_wait_policy\":\"%s\",\"ort_spin\":%d,\"rounds\":%d,\"chunk_ms\":%g,"
        "\"input\":\"%d product photos\"}\n",
        policy, spin, o.rounds, o.chunk_ms, INPUT_IMAGES);
    int rc = 0;
    for (int i = 0; i < o.n_models && rc == 0; i++)
        rc = bench_model(&o, o.models[i], &ph, spin ? "1" : "0");
    if (rc == 0 && o.pipeline_images > 0)
        rc = bench_pipeline(&o, &ph);
    for (int i = 0; i < ph.n; i++)
        free(ph.v[i]);
    free(ph.v);
    return rc ? 1 : 0;
}
