/*
 * bench/ann: vindex against its peers on the same data, parameters and threads, in one run:
 * hnswlib for --index hnsw, FAISS IVF-Flat (or IVF-SQ8 with --sq8) for --index ivf_flat.
 *
 * Loads Fashion-MNIST (idx .gz), TEXMEX .fvecs, or makes clustered random data (--synthetic),
 * computes the exact top-k itself (vindex flat, which the unit tests hold to a brute-force
 * reference), builds each index with --threads threads, then times single-thread queries one
 * at a time for every ef (or nprobe) and every filter selectivity. One JSON line per setting
 * and library, then "ratio" lines. mem_bytes is the growth of the resident set over the build,
 * measured the same way for every library; with --reopen, vindex is saved, freed and reopened
 * from its data directory before it is queried, and mem_bytes is its anonymous memory after the
 * reopen (file_rss_bytes: snapshot pages mapped, which the kernel may evict).
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "faiss_peer.h"
#include "hnswlib_peer.h"
#include "vindex/vindex.h"

#define MAX_LIST 32
/* Caps on what the loaders accept from a file. */
#define MAX_ROWS 50000000u
#define MAX_DIM 4096u

typedef struct {
    const char *fmnist;
    const char *fvecs_base, *fvecs_query;
    unsigned syn_n, syn_dim, syn_clusters; /* --synthetic N:DIM:CLUSTERS */
    unsigned k, M, efc, threads, nq, nlist, n_limit, rerank;
    int sq8, reopen, peer_thp;
    vindex_metric_t metric;
    vindex_kind_t kind;
    unsigned ef[MAX_LIST], n_ef;
    unsigned fef[MAX_LIST], n_fef; /* ef list for filtered runs (default: ef) */
    unsigned nprobe[MAX_LIST], n_nprobe;
    double sel[MAX_LIST];
    unsigned n_sel;
    int peer;
} opts_t;

typedef struct {
    float *v;
    size_t n;
    uint32_t dim;
} data_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* A "Key:   123 kB" line of /proc/self/status, in bytes. */
static size_t status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t v = 0, klen = strlen(key);
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            v = (size_t)strtoull(line + klen + 1, NULL, 10) * 1024;
            break;
        }
    }
    if (f)
        fclose(f);
    return v;
}

static int parse_uints(const char *s, unsigned *out, unsigned *n)
{
    *n = 0;
    while (*s && *n < MAX_LIST) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s)
            return -1;
        out[(*n)++] = (unsigned)v;
        s = *end == ',' ? end + 1 : end;
    }
    return *n ? 0 : -1;
}

static int parse_doubles(const char *s, double *out, unsigned *n)
{
    *n = 0;
    while (*s && *n < MAX_LIST) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v <= 0 || v > 1)
            return -1;
        out[(*n)++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return *n ? 0 : -1;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* An idx3-ubyte.gz image file as floats (pixel values 0..255). */
static int load_idx(const char *path, data_t *d)
{
    gzFile f = gzopen(path, "rb");
    unsigned char h[16];
    unsigned char *raw = NULL;
    if (!f) {
        fprintf(stderr, "ann: cannot open %s\n", path);
        return -1;
    }
    if (gzread(f, h, 16) != 16 || be32(h) != 0x803) {
        fprintf(stderr, "ann: %s is not an idx3 image file\n", path);
        goto fail;
    }
    uint32_t n = be32(h + 4), dim = be32(h + 8) * be32(h + 12);
    if (n > MAX_ROWS || dim < 2 || dim > MAX_DIM) {
        fprintf(stderr, "ann: %s: shape too large\n", path);
        goto fail;
    }
    raw = malloc((size_t)n * dim);
    d->v = malloc((size_t)n * dim * sizeof(float));
    if (!raw || !d->v || gzread(f, raw, n * dim) != (int)(n * dim)) {
        fprintf(stderr, "ann: %s: short read\n", path);
        goto fail;
    }
    for (size_t i = 0; i < (size_t)n * dim; i++)
        d->v[i] = raw[i];
    d->n = n;
    d->dim = dim;
    free(raw);
    gzclose(f);
    return 0;
fail:
    free(raw);
    free(d->v);
    d->v = NULL;
    gzclose(f);
    return -1;
}

/* TEXMEX .fvecs: per vector an int32 dim then dim floats. */
static int load_fvecs(const char *path, data_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ann: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int32_t dim;
    if (fread(&dim, 4, 1, f) != 1 || dim < 2 || (uint32_t)dim > MAX_DIM) {
        fprintf(stderr, "ann: %s: bad dimension\n", path);
        fclose(f);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t row = 4 + (size_t)dim * 4, n = (size_t)size / row;
    if (n > MAX_ROWS || n == 0) {
        fprintf(stderr, "ann: %s: too large or empty\n", path);
        fclose(f);
        return -1;
    }
    d->v = malloc(n * (size_t)dim * sizeof(float));
    if (!d->v) {
        fclose(f);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t dd;
        if (fread(&dd, 4, 1, f) != 1 || dd != dim ||
            fread(d->v + i * dim, 4, (size_t)dim, f) != (size_t)dim) {
            fprintf(stderr, "ann: %s: bad row %zu\n", path, i);
            free(d->v);
            d->v = NULL;
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    d->n = n;
    d->dim = (uint32_t)dim;
    return 0;
}

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static float unit_rand(uint64_t *s)
{
    return (float)((double)rnd(s) / 9007199254740992.0 * 2 - 1);
}

/* n points around `clusters` centres drawn uniformly from [-1, 1)^dim, each point the centre
 * plus uniform noise of half that width: clustered like embeddings, not uniform noise. The
 * centres come from a fixed seed, the points from `seed`, so base and queries share centres. */
static int synthetic(size_t n, uint32_t dim, uint32_t clusters, uint64_t seed, data_t *d)
{
    float *centres = malloc((size_t)clusters * dim * sizeof(float));
    d->v = malloc(n * dim * sizeof(float));
    if (!centres || !d->v) {
        free(centres);
        free(d->v);
        d->v = NULL;
        fprintf(stderr, "ann: out of memory for synthetic data\n");
        return -1;
    }
    uint64_t cs = 0x5eed;
    for (size_t i = 0; i < (size_t)clusters * dim; i++)
        centres[i] = unit_rand(&cs);
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + (rnd(&seed) % clusters) * dim;
        for (uint32_t j = 0; j < dim; j++)
            d->v[i * dim + j] = c[j] + 0.5f * unit_rand(&seed);
    }
    free(centres);
    d->n = n;
    d->dim = dim;
    return 0;
}

/* A random bitmap over ids 0..n-1 where each id passes with probability sel (at least k pass). */
static uint64_t *random_bitmap(size_t n, double sel, uint64_t seed)
{
    uint64_t *bm = calloc((n + 63) / 64, sizeof(uint64_t));
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        if ((double)(rnd(&s) & 0xffffff) / 16777216.0 < sel)
            bm[i / 64] |= 1ull << (i % 64);
    }
    return bm;
}

/* Exact top-k of every query for every filter set, through vindex flat (which the unit tests
 * hold to a brute-force reference). When the base fits under the k cap, each query is ranked
 * against the whole base once and every filter set reads its answer off that ranking. */
static int ground_truth(const opts_t *o, const data_t *base, const data_t *q, unsigned n_sets,
                        uint64_t *const *bitmaps, uint64_t **gt, uint32_t **ngt)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_FLAT, o->metric, base->dim);
    p.capacity = base->n;
    p.threads = o->threads;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    uint64_t *ids = malloc(base->n * sizeof(*ids));
    const size_t chunk = 32;
    int whole = n_sets > 1 && base->n <= 100000;
    size_t want = whole ? base->n : o->k;
    vindex_hit_t *hits = malloc(chunk * want * sizeof(*hits));
    uint32_t *nh = malloc(chunk * sizeof(*nh));
    int rc = -1;
    if (!ix || !ids || !hits || !nh)
        goto fail;
    for (size_t i = 0; i < base->n; i++)
        ids[i] = i;
    if (vindex_add_batch(ix, ids, base->v, base->n, err, sizeof(err)))
        goto fail;
    for (unsigned s = 0; s < n_sets; s++) {
        if (whole && s > 0)
            break;
        vindex_filter_t f = {.bitmap = bitmaps[s], .bitmap_bits = base->n};
        vindex_search_params_t sp = {.k = (uint32_t)want, .filter = whole || !bitmaps[s] ? NULL : &f};
        for (size_t c = 0; c < q->n; c += chunk) {
            size_t m = q->n - c < chunk ? q->n - c : chunk;
            if (vindex_search_batch(ix, q->v + c * q->dim, m, &sp, hits, nh, err, sizeof(err)))
                goto fail;
            for (size_t i = 0; i < m; i++) {
                for (unsigned t = whole ? 0 : s; t < (whole ? n_sets : s + 1); t++) {
                    uint32_t got = 0;
                    for (uint32_t j = 0; j < nh[i] && got < o->k; j++) {
                        uint64_t id = hits[i * want + j].id;
                        if (!bitmaps[t] || ((bitmaps[t][id >> 6] >> (id & 63)) & 1u))
                            gt[t][(c + i) * o->k + got++] = id;
                    }
                    ngt[t][c + i] = got;
                }
            }
        }
    }
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "ann: ground truth: %s\n", err);
    vindex_free(ix);
    free(ids);
    free(hits);
    free(nh);
    return rc;
}

static double recall_of(const uint64_t *gt, const uint32_t *ngt, const uint64_t *got, const uint32_t *ngot,
                        size_t nq, unsigned k)
{
    size_t hit = 0, want = 0;
    for (size_t i = 0; i < nq; i++) {
        for (uint32_t a = 0; a < ngt[i]; a++) {
            for (uint32_t b = 0; b < ngot[i]; b++) {
                if (gt[i * k + a] == got[i * k + b]) {
                    hit++;
                    break;
                }
            }
        }
        want += ngt[i];
    }
    return want ? (double)hit / (double)want : 1.0;
}

static const char *metric_name(vindex_metric_t m)
{
    return m == VINDEX_L2 ? "l2" : m == VINDEX_IP ? "ip" : "cosine";
}

static const char *kind_name(vindex_kind_t k)
{
    return k == VINDEX_FLAT ? "flat" : k == VINDEX_HNSW ? "hnsw" : "ivf_flat";
}

typedef struct {
    double recall, qps, qps_cpu;
} point_t;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A peer library: hnswlib (as packaged, or with its level-0 array on huge pages), or FAISS. */
typedef struct {
    const char *lib;         /* "hnswlib", "hnswlib+thp", "faiss" */
    const char *index;       /* its index kind, named as ours */
    const char *filter_mode; /* "post": asks for more and drops what fails; "inside" */
    hnswlib_peer_t *hnsw;
    faiss_peer_t *faiss;
    double build_s, build_cpu_s;
    size_t mem;
} peer_t;

#define MAX_PEERS 2

/* Sets the peer's knob (ef or nprobe) for a query that fetches `fetch` results. */
static void peer_set_knob(peer_t *p, unsigned knob, size_t fetch)
{
    if (p->hnsw)
        hnswlib_peer_set_ef(p->hnsw, knob > fetch ? knob : fetch);
    else
        faiss_peer_set_nprobe(p->faiss, knob);
}

static size_t peer_query(const opts_t *o, peer_t *p, const float *q, const uint64_t *bitmap, size_t bits,
                         size_t fetch, uint64_t *ids)
{
    if (p->faiss)
        return faiss_peer_search(p->faiss, q, o->k, bitmap, bits, ids);
    return bitmap ? hnswlib_peer_search_postfilter(p->hnsw, q, o->k, fetch, bitmap, ids)
                  : hnswlib_peer_search(p->hnsw, q, o->k, ids);
}

static void print_line(const opts_t *o, const char *lib, const char *index, const char *knob, unsigned knob_v,
                       double sel, const char *filter_mode, point_t pt, double build_s, double build_cpu_s,
                       size_t mem, size_t n, uint32_t dim)
{
    printf("{\"lib\":\"%s\",\"index\":\"%s\",\"metric\":\"%s\",\"n\":%zu,\"dim\":%u,\"nq\":%u,\"k\":%u,", lib,
           index, metric_name(o->metric), n, dim, o->nq, o->k);
    if (!strcmp(index, "hnsw"))
        printf("\"M\":%u,\"ef_construction\":%u,", o->M, o->efc);
    else if (!strcmp(index, "ivf_flat"))
        printf("\"nlist\":%u,\"sq8\":%s,", o->nlist, o->sq8 ? "true" : "false");
    printf("\"threads\":%u,\"%s\":%u,\"selectivity\":%g,\"filter\":\"%s\",\"recall\":%.4f,\"qps\":%.1f,"
           "\"qps_cpu\":%.1f,\"build_s\":%.3f,\"build_cpu_s\":%.3f,\"mem_bytes\":%zu}\n",
           o->threads, knob, knob_v, sel, filter_mode, pt.recall, pt.qps, pt.qps_cpu, build_s, build_cpu_s,
           mem);
    fflush(stdout);
}

/* Query timings of every library, taken in alternating slices of the query set so that a
 * change in machine load hits all alike. */
typedef struct {
    double wall, cpu;
    uint64_t *got;
    uint32_t *ngot;
} timing_t;

static void vindex_slice(const opts_t *o, vindex_t *ix, const data_t *q, size_t from, size_t to,
                         const vindex_search_params_t *sp, timing_t *t)
{
    vindex_hit_t hits[1024];
    char err[256] = "";
    double w0 = now(), c0 = thread_cpu();
    for (size_t i = from; i < to; i++) {
        int n = vindex_search(ix, q->v + i * q->dim, sp, hits, err, sizeof(err));
        t->ngot[i] = n > 0 ? (uint32_t)n : 0;
        for (int j = 0; j < n; j++)
            t->got[i * o->k + (size_t)j] = hits[j].id;
    }
    t->wall += now() - w0;
    t->cpu += thread_cpu() - c0;
}

static void peer_slice(const opts_t *o, peer_t *p, const data_t *q, size_t from, size_t to,
                       const uint64_t *bitmap, size_t bits, size_t fetch, timing_t *t)
{
    uint64_t ids[4096];
    double w0 = now(), c0 = thread_cpu();
    for (size_t i = from; i < to; i++) {
        size_t n = peer_query(o, p, q->v + i * q->dim, bitmap, bits, fetch, ids);
        t->ngot[i] = (uint32_t)n;
        memcpy(t->got + i * o->k, ids, n * sizeof(*ids));
    }
    t->wall += now() - w0;
    t->cpu += thread_cpu() - c0;
}

#define ROUNDS 5

static int timing_alloc(timing_t *t, size_t nq, unsigned k)
{
    *t = (timing_t){0};
    t->got = malloc(nq * k * sizeof(uint64_t));
    t->ngot = malloc(nq * sizeof(uint32_t));
    return t->got && t->ngot ? 0 : -1;
}

/* One setting: warm-up, then ROUNDS alternating slices of single-thread queries. */
static void measure(const opts_t *o, vindex_t *ix, peer_t *peers, unsigned n_peers, const data_t *q,
                    const data_t *pq, unsigned knob, const vindex_filter_t *f, double sel, const uint64_t *gt,
                    const uint32_t *ngt, point_t *ours, point_t *theirs)
{
    int hnsw = o->kind == VINDEX_HNSW;
    vindex_search_params_t sp = {.k = o->k, .ef = hnsw ? knob : 0, .nprobe = hnsw ? 0 : knob, .filter = f};
    timing_t tv, tp[MAX_PEERS];
    int bad = timing_alloc(&tv, q->n, o->k);
    for (unsigned i = 0; i < n_peers; i++)
        bad |= timing_alloc(&tp[i], q->n, o->k);
    if (bad) {
        fprintf(stderr, "ann: out of memory\n");
        exit(1);
    }
    const uint64_t *bitmap = f ? f->bitmap : NULL;
    size_t bits = f ? f->bitmap_bits : 0;
    size_t fetch = f ? (size_t)ceil(o->k / sel) : o->k;
    if (fetch > 4096)
        fetch = 4096;
    for (unsigned i = 0; i < n_peers; i++)
        peer_set_knob(&peers[i], knob, fetch);
    timing_t warm = tv;
    vindex_slice(o, ix, q, 0, q->n / 10, &sp, &warm);
    for (unsigned i = 0; i < n_peers; i++) {
        warm = tp[i];
        peer_slice(o, &peers[i], pq, 0, q->n / 10, bitmap, bits, fetch, &warm);
    }
    for (size_t r = 0; r < ROUNDS; r++) {
        size_t from = q->n * r / ROUNDS, to = q->n * (r + 1) / ROUNDS;
        vindex_slice(o, ix, q, from, to, &sp, &tv);
        for (unsigned i = 0; i < n_peers; i++)
            peer_slice(o, &peers[i], pq, from, to, bitmap, bits, fetch, &tp[i]);
    }
    *ours = (point_t){recall_of(gt, ngt, tv.got, tv.ngot, q->n, o->k), q->n / tv.wall, q->n / tv.cpu};
    for (unsigned i = 0; i < n_peers; i++)
        theirs[i] = (point_t){recall_of(gt, ngt, tp[i].got, tp[i].ngot, q->n, o->k), q->n / tp[i].wall,
                              q->n / tp[i].cpu};
    free(tv.got);
    free(tv.ngot);
    for (unsigned i = 0; i < n_peers; i++) {
        free(tp[i].got);
        free(tp[i].ngot);
    }
}

/* The cheapest measured setting that reaches `target` recall, or -1. */
static int best_at(const point_t *pts, unsigned n, double target)
{
    int best = -1;
    for (unsigned i = 0; i < n; i++) {
        if (pts[i].recall >= target && (best < 0 || pts[i].qps_cpu > pts[best].qps_cpu))
            best = (int)i;
    }
    return best;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: ann (--fashion-mnist DIR | --fvecs BASE QUERIES | --synthetic N:DIM:CLUSTERS) [--k 10]\n"
        "           [--metric l2|ip|cosine] [--index hnsw|ivf_flat|flat] [--M 16] [--ef-construction 200]\n"
        "           [--ef 10,20,...] [--nlist 1024] [--nprobe 1,2,...] [--sq8] [--rerank R]\n"
        "           [--threads 2] [--nq 1000] [--n N] [--filter-selectivity 0.5,0.1,...]\n"
        "           [--filter-ef LIST] [--reopen] [--peer-thp] [--no-peer]\n");
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.k = 10,
                  .M = 16,
                  .efc = 200,
                  .threads = 2,
                  .nq = 1000,
                  .nlist = 1024,
                  .metric = VINDEX_L2,
                  .kind = VINDEX_HNSW,
                  .peer = 1};
    parse_uints("10,20,40,80,120,200,400", o->ef, &o->n_ef);
    parse_uints("1,2,4,8,16,32,64", o->nprobe, &o->n_nprobe);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--no-peer") || !strcmp(a, "--sq8") || !strcmp(a, "--reopen") ||
            !strcmp(a, "--peer-thp")) {
            o->peer = o->peer && strcmp(a, "--no-peer");
            o->sq8 |= !strcmp(a, "--sq8");
            o->reopen |= !strcmp(a, "--reopen");
            o->peer_thp |= !strcmp(a, "--peer-thp");
            continue;
        }
        if (!v) {
            usage();
            return -1;
        }
        i++;
        if (!strcmp(a, "--fashion-mnist"))
            o->fmnist = v;
        else if (!strcmp(a, "--fvecs") && i + 1 < argc) {
            o->fvecs_base = v;
            o->fvecs_query = argv[++i];
        } else if (!strcmp(a, "--synthetic"))
            bad = sscanf(v, "%u:%u:%u", &o->syn_n, &o->syn_dim, &o->syn_clusters) != 3 || !o->syn_n ||
                  o->syn_dim < 2 || o->syn_dim > MAX_DIM || !o->syn_clusters || o->syn_n > MAX_ROWS;
        else if (!strcmp(a, "--k"))
            o->k = (unsigned)atoi(v);
        else if (!strcmp(a, "--M"))
            o->M = (unsigned)atoi(v);
        else if (!strcmp(a, "--ef-construction"))
            o->efc = (unsigned)atoi(v);
        else if (!strcmp(a, "--threads"))
            o->threads = (unsigned)atoi(v);
        else if (!strcmp(a, "--nq"))
            o->nq = (unsigned)atoi(v);
        else if (!strcmp(a, "--n"))
            o->n_limit = (unsigned)atoi(v);
        else if (!strcmp(a, "--nlist"))
            o->nlist = (unsigned)atoi(v);
        else if (!strcmp(a, "--rerank"))
            o->rerank = (unsigned)atoi(v);
        else if (!strcmp(a, "--ef"))
            bad = parse_uints(v, o->ef, &o->n_ef);
        else if (!strcmp(a, "--filter-ef"))
            bad = parse_uints(v, o->fef, &o->n_fef);
        else if (!strcmp(a, "--nprobe"))
            bad = parse_uints(v, o->nprobe, &o->n_nprobe);
        else if (!strcmp(a, "--filter-selectivity"))
            bad = parse_doubles(v, o->sel, &o->n_sel);
        else if (!strcmp(a, "--metric"))
            o->metric = !strcmp(v, "l2") ? VINDEX_L2 : !strcmp(v, "ip") ? VINDEX_IP : VINDEX_COSINE;
        else if (!strcmp(a, "--index"))
            o->kind = !strcmp(v, "hnsw") ? VINDEX_HNSW : !strcmp(v, "flat") ? VINDEX_FLAT : VINDEX_IVF_FLAT;
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "ann: bad option %s %s\n", a, v);
            usage();
            return -1;
        }
    }
    if (!o->n_fef) {
        memcpy(o->fef, o->ef, sizeof(o->ef));
        o->n_fef = o->n_ef;
    }
    if ((!o->fmnist && !o->fvecs_base && !o->syn_n) || o->k < 1 || o->k > 1024 || o->threads < 1 ||
        (o->sq8 && o->kind != VINDEX_IVF_FLAT)) {
        usage();
        return -1;
    }
    return 0;
}

static int load(const opts_t *o, data_t *base, data_t *q)
{
    if (o->fmnist) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte.gz", o->fmnist);
        if (load_idx(path, base))
            return -1;
        snprintf(path, sizeof(path), "%s/t10k-images-idx3-ubyte.gz", o->fmnist);
        if (load_idx(path, q))
            return -1;
    } else if (o->syn_n) {
        if (synthetic(o->syn_n, o->syn_dim, o->syn_clusters, 1, base) ||
            synthetic(o->nq, o->syn_dim, o->syn_clusters, 2, q))
            return -1;
    } else if (load_fvecs(o->fvecs_base, base) || load_fvecs(o->fvecs_query, q)) {
        return -1;
    }
    if (base->dim != q->dim) {
        fprintf(stderr, "ann: base and queries differ in dimension\n");
        return -1;
    }
    if (o->n_limit && o->n_limit < base->n)
        base->n = o->n_limit;
    if (o->nq < q->n)
        q->n = o->nq;
    return 0;
}

/* Cosine for the peers: normalised copies in their inner-product space (what their docs advise). */
static float *normalised_copy(const data_t *d)
{
    float *c = malloc(d->n * d->dim * sizeof(float));
    if (!c) {
        fprintf(stderr, "ann: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < d->n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < d->dim; j++)
            s += (double)d->v[i * d->dim + j] * d->v[i * d->dim + j];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0;
        for (uint32_t j = 0; j < d->dim; j++)
            c[i * d->dim + j] = d->v[i * d->dim + j] * inv;
    }
    return c;
}

/* Saves ix into a fresh directory, frees it and opens it again from there (the restart path:
 * snapshot mapped, sq8 re-ranks from the mapping). Returns the reopened index or NULL. */
static vindex_t *reopen(vindex_t *ix, const vindex_params_t *p, char *dir, size_t dirlen)
{
    char err[512] = "";
    const char *t = getenv("TMPDIR");
    snprintf(dir, dirlen, "%s/ann-reopen-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("ann: mkdtemp");
        return NULL;
    }
    if (vindex_save(ix, dir, err, sizeof(err))) {
        fprintf(stderr, "ann: save: %s\n", err);
        return NULL;
    }
    vindex_free(ix);
    malloc_trim(0);
    ix = vindex_open(dir, p, VINDEX_DURABILITY_NONE, err, sizeof(err));
    if (!ix)
        fprintf(stderr, "ann: reopen: %s\n", err);
    return ix;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"index.snap", "wal.log", "LOCK"};
    char path[4300];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (snprintf(path, sizeof(path), "%s/%s", dir, files[i]) < (int)sizeof(path))
            unlink(path);
    }
    rmdir(dir);
}

/* Builds the peers that match o->kind; returns how many. */
static unsigned build_peers(const opts_t *o, const data_t *base, const float *pv, peer_t *peers)
{
    unsigned n = 0;
    if (!o->peer)
        return 0;
    for (int thp = 0; o->kind == VINDEX_HNSW && thp <= o->peer_thp; thp++) {
        peer_t *p = &peers[n];
        *p = (peer_t){.lib = thp ? "hnswlib+thp" : "hnswlib", .index = "hnsw", .filter_mode = "post"};
        malloc_trim(0);
        size_t rss1 = rss_bytes();
        p->hnsw = hnswlib_peer_new(o->metric != VINDEX_L2, base->dim, base->n, o->M, o->efc, thp);
        double t0 = now(), c0 = process_cpu();
        if (!p->hnsw || hnswlib_peer_add(p->hnsw, pv, base->n, o->threads)) {
            fprintf(stderr, "ann: hnswlib failed\n");
            exit(1);
        }
        p->build_s = now() - t0;
        p->build_cpu_s = process_cpu() - c0;
        p->mem = rss_bytes() - rss1;
        fprintf(stderr, "ann: %s built in %.2fs (cpu %.2fs), rss +%zu\n", p->lib, p->build_s, p->build_cpu_s,
                p->mem);
        n++;
    }
    if (o->kind == VINDEX_IVF_FLAT) {
        peer_t *p = &peers[n];
        *p = (peer_t){.lib = "faiss", .index = "ivf_flat", .filter_mode = "inside"};
        malloc_trim(0);
        size_t rss1 = rss_bytes();
        p->faiss = faiss_peer_new(o->metric != VINDEX_L2, base->dim, o->nlist, o->sq8);
        double t0 = now(), c0 = process_cpu();
        /* The training budget vindex uses (ivf.c): 64 sampled vectors per list, 10 rounds. */
        if (!p->faiss || faiss_peer_train_add(p->faiss, pv, base->n, 64, 10, o->threads)) {
            fprintf(stderr, "ann: faiss failed\n");
            exit(1);
        }
        p->build_s = now() - t0;
        p->build_cpu_s = process_cpu() - c0;
        p->mem = rss_bytes() - rss1;
        fprintf(stderr, "ann: faiss built in %.2fs (cpu %.2fs), rss +%zu\n", p->build_s, p->build_cpu_s,
                p->mem);
        n++;
    }
    return n;
}

static void free_peers(peer_t *peers, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (peers[i].hnsw)
            hnswlib_peer_free(peers[i].hnsw);
        if (peers[i].faiss)
            faiss_peer_free(peers[i].faiss);
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    data_t base = {0}, q = {0};
    if (parse_args(argc, argv, &o) || load(&o, &base, &q))
        return 1;
    o.nq = (unsigned)q.n;
    unsigned n_sets = 1 + o.n_sel;
    double sels[MAX_LIST + 1];
    sels[0] = 1;
    memcpy(sels + 1, o.sel, o.n_sel * sizeof(double));
    uint64_t *bitmaps[MAX_LIST + 1] = {NULL};
    uint64_t *gts[MAX_LIST + 1];
    uint32_t *ngts[MAX_LIST + 1];
    double t0 = now();
    for (unsigned s = 0; s < n_sets; s++) {
        if (s > 0)
            bitmaps[s] = random_bitmap(base.n, sels[s], 1000 + s);
        gts[s] = malloc(q.n * o.k * sizeof(uint64_t));
        ngts[s] = malloc(q.n * sizeof(uint32_t));
    }
    if (ground_truth(&o, &base, &q, n_sets, bitmaps, gts, ngts))
        return 1;
    fprintf(stderr, "ann: %zu x %u base, %zu queries, ground truth in %.1fs\n", base.n, base.dim, q.n,
            now() - t0);

    /* vindex */
    malloc_trim(0);
    size_t rss0 = rss_bytes(), anon0 = status_bytes("RssAnon"), file0 = status_bytes("RssFile");
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, o.kind, o.metric, base.dim);
    p.capacity = base.n;
    p.threads = o.threads;
    p.M = o.M;
    p.ef_construction = o.efc;
    p.nlist = o.nlist;
    p.sq8 = o.sq8;
    p.rerank = o.rerank;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    if (!ix) {
        fprintf(stderr, "ann: vindex: %s\n", err);
        return 1;
    }
    uint64_t *ids = malloc(base.n * sizeof(*ids));
    for (size_t i = 0; i < base.n; i++)
        ids[i] = i;
    t0 = now();
    double c0 = process_cpu();
    if (vindex_add_batch(ix, ids, base.v, base.n, err, sizeof(err))) {
        fprintf(stderr, "ann: vindex add: %s\n", err);
        return 1;
    }
    double build_v = now() - t0, build_v_cpu = process_cpu() - c0;
    size_t mem_v = rss_bytes() - rss0;
    free(ids);
    fprintf(stderr, "ann: vindex built in %.2fs (cpu %.2fs), rss +%zu, own count %zu\n", build_v, build_v_cpu,
            mem_v, vindex_mem_bytes(ix));
    char dir[4200] = "";
    if (o.reopen) {
        double r0 = now();
        if (!(ix = reopen(ix, &p, dir, sizeof(dir))))
            return 1;
        mem_v = status_bytes("RssAnon") - anon0;
        size_t file_rss = status_bytes("RssFile") - file0;
        printf(
            "{\"lib\":\"vindex\",\"index\":\"%s\",\"reopen_s\":%.3f,\"mem_bytes\":%zu,\"file_rss_bytes\":%zu,"
            "\"own_mem_bytes\":%zu,\"bytes_per_vector\":%.1f}\n",
            kind_name(o.kind), now() - r0, mem_v, file_rss, vindex_mem_bytes(ix), (double)mem_v / base.n);
        fflush(stdout);
    }

    /* The peers, on the same vectors (normalised copies for cosine, as their docs advise). */
    float *pv = base.v;
    data_t pq = q;
    if (o.peer && o.metric == VINDEX_COSINE) {
        pv = normalised_copy(&base);
        pq.v = normalised_copy(&q);
    }
    peer_t peers[MAX_PEERS];
    unsigned n_peers = build_peers(&o, &base, pv, peers);

    unsigned n_knob = o.kind == VINDEX_IVF_FLAT ? o.n_nprobe : o.kind == VINDEX_HNSW ? o.n_ef : 1;
    const char *knob = o.kind == VINDEX_IVF_FLAT ? "nprobe" : "ef";
    static point_t ours[MAX_LIST + 1][MAX_LIST], theirs[MAX_PEERS][MAX_LIST + 1][MAX_LIST];
    for (unsigned s = 0; s < n_sets; s++) {
        vindex_filter_t f = {.bitmap = bitmaps[s], .bitmap_bits = base.n};
        const unsigned *knobs = o.kind == VINDEX_IVF_FLAT ? o.nprobe : s ? o.fef : o.ef;
        if (o.kind == VINDEX_HNSW)
            n_knob = s ? o.n_fef : o.n_ef;
        for (unsigned e = 0; e < n_knob; e++) {
            unsigned kv = o.kind == VINDEX_FLAT ? 0 : knobs[e];
            point_t got[MAX_PEERS];
            measure(&o, ix, peers, n_peers, &q, &pq, kv, s ? &f : NULL, sels[s], gts[s], ngts[s], &ours[s][e],
                    got);
            print_line(&o, "vindex", kind_name(o.kind), knob, kv, sels[s], s ? "inside" : "none", ours[s][e],
                       build_v, build_v_cpu, mem_v, base.n, base.dim);
            for (unsigned i = 0; i < n_peers; i++) {
                theirs[i][s][e] = got[i];
                print_line(&o, peers[i].lib, peers[i].index, knob, kv, sels[s],
                           s ? peers[i].filter_mode : "none", got[i], peers[i].build_s, peers[i].build_cpu_s,
                           peers[i].mem, base.n, base.dim);
                printf(
                    "{\"lib\":\"ratio\",\"peer\":\"%s\",\"index\":\"%s\",\"%s\":%u,\"selectivity\":%g,"
                    "\"recall_vindex\":%.4f,\"recall_peer\":%.4f,\"qps_ratio\":%.3f,\"qps_cpu_ratio\":%.3f,"
                    "\"build_ratio\":%.3f,\"build_cpu_ratio\":%.3f,\"mem_ratio\":%.3f}\n",
                    peers[i].lib, peers[i].index, knob, kv, sels[s], ours[s][e].recall, got[i].recall,
                    ours[s][e].qps / got[i].qps, ours[s][e].qps_cpu / got[i].qps_cpu,
                    build_v / peers[i].build_s, build_v_cpu / peers[i].build_cpu_s,
                    (double)mem_v / (double)peers[i].mem);
                fflush(stdout);
            }
        }
        /* Equal recall: each library at its fastest measured setting that reaches the target. */
        static const double targets[] = {0.95, 0.99};
        for (unsigned i = 0; i < n_peers; i++) {
            for (unsigned t = 0; t < 2; t++) {
                int a = best_at(ours[s], n_knob, targets[t]), b = best_at(theirs[i][s], n_knob, targets[t]);
                printf("{\"lib\":\"ratio\",\"peer\":\"%s\",\"index\":\"%s\",\"selectivity\":%g,"
                       "\"target_recall\":%.2f,",
                       peers[i].lib, peers[i].index, sels[s], targets[t]);
                if (a < 0 || b < 0) {
                    printf(
                        "\"vindex_%s\":%d,\"peer_%s\":%d,\"note\":\"target not reached by one library\"}\n",
                        knob, a < 0 ? -1 : (int)knobs[a], knob, b < 0 ? -1 : (int)knobs[b]);
                    continue;
                }
                printf("\"vindex_%s\":%u,\"vindex_recall\":%.4f,\"vindex_qps_cpu\":%.1f,\"peer_%s\":%u,"
                       "\"peer_recall\":%.4f,\"peer_qps_cpu\":%.1f,\"qps_cpu_ratio\":%.3f}\n",
                       knob, knobs[a], ours[s][a].recall, ours[s][a].qps_cpu, knob, knobs[b],
                       theirs[i][s][b].recall, theirs[i][s][b].qps_cpu,
                       ours[s][a].qps_cpu / theirs[i][s][b].qps_cpu);
            }
        }
        fflush(stdout);
    }
    vindex_free(ix);
    if (dir[0])
        remove_dir(dir);
    free_peers(peers, n_peers);
    if (pv != base.v) {
        free(pv);
        free(pq.v);
    }
    for (unsigned s = 0; s < n_sets; s++) {
        free(bitmaps[s]);
        free(gts[s]);
        free(ngts[s]);
    }
    free(base.v);
    free(q.v);
    return 0;
}
