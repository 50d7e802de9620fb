/*
 * bench/vindex_load: how long vindex_open takes on a saved index of n random vectors (default
 * 1M x 128-d), for each index kind asked for, next to hnswlib's own save and load of the same
 * vectors in the same run: its exact index (BruteforceSearch) for flat and ivf_flat, its graph
 * (HierarchicalNSW, same M and ef_construction) for hnsw. Every vindex open maps the snapshot,
 * verifies all section checksums and every value's bounds, copies the vectors (and the graph
 * or the list assignment) into the index's arrays and rebuilds the id map; the page cache is
 * warm (the file was just written), which is the common case for a restart. The best of three
 * opens is reported, with the memory the open added. One JSON line per measurement.
 *
 *   vindex_load [--n 1000000] [--dim 128] [--index flat,ivf_flat,hnsw] [--nlist 1024]
 *               [--M 16] [--ef-construction 100] [--threads 2] [--dir DIR]
 */
#include "hnswlib_load_peer.h"
#include "vindex/vindex.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    size_t n;
    unsigned dim, nlist, M, efc, threads;
    const char *root;
} opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
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

/* hnswlib's save and best-of-three load for the peer of `hnsw`; *open_s stays 0 on failure. */
static void run_peer(const opts_t *o, int hnsw, const float *v, double *open_s)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/hnswlib_%s.bin", o->root, hnsw ? "hnsw" : "bruteforce");
    double build_s = 0, save_s = 0, best = 1e30, best_cpu = 1e30;
    size_t count = 0;
    *open_s = 0;
    if (hnswlib_load_build_save(hnsw, v, o->n, (int)o->dim, o->M, o->efc, o->threads, path, &build_s,
                                &save_s))
        return;
    for (int rep = 0; rep < 3; rep++) {
        double t, c;
        if (hnswlib_load(hnsw, path, (int)o->dim, &t, &c, &count))
            return;
        if (t < best)
            best = t;
        if (c < best_cpu)
            best_cpu = c;
    }
    printf("{\"lib\":\"hnswlib\",\"bench\":\"reload\",\"index\":\"%s\",\"n\":%zu,\"dim\":%u,\"build_s\":%.3f,"
           "\"save_s\":%.3f,\"open_s\":%.3f,\"open_cpu_s\":%.3f,\"file_bytes\":%lld,\"count\":%zu,"
           "\"checksums\":false}\n",
           hnsw ? "hnsw" : "bruteforce", o->n, o->dim, build_s, save_s, best, best_cpu,
           (long long)file_size(path), count);
    fflush(stdout);
    unlink(path);
    *open_s = best;
}

static int run_kind(const opts_t *o, vindex_kind_t kind, const char *kname, const float *v,
                    const uint64_t *ids, double peer_open_s)
{
    char dir[4200], err[512], snap[4300];
    snprintf(dir, sizeof(dir), "%s/%s", o->root, kname);
    snprintf(snap, sizeof(snap), "%s/index.snap", dir);
    vindex_params_t p;
    vindex_params_default(&p, kind, VINDEX_L2, o->dim);
    p.capacity = o->n;
    p.threads = o->threads;
    p.nlist = o->nlist;
    p.M = o->M;
    p.ef_construction = o->efc;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    if (!ix) {
        fprintf(stderr, "vindex_new: %s\n", err);
        return -1;
    }
    double t0 = now_s();
    if (vindex_add_batch(ix, ids, v, o->n, err, sizeof(err))) {
        fprintf(stderr, "add_batch: %s\n", err);
        return -1;
    }
    double build_s = now_s() - t0;
    t0 = now_s();
    if (vindex_save(ix, dir, err, sizeof(err))) {
        fprintf(stderr, "save: %s\n", err);
        return -1;
    }
    double save_s = now_s() - t0;
    vindex_free(ix);
    double best = 1e30, best_cpu = 1e30;
    uint64_t count = 0;
    size_t anon = 0, file = 0;
    for (int rep = 0; rep < 3; rep++) {
        malloc_trim(0);
        size_t anon0 = status_bytes("RssAnon"), file0 = status_bytes("RssFile");
        t0 = now_s();
        double c0 = cpu_s();
        ix = vindex_open(dir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
        double s = now_s() - t0, c = cpu_s() - c0;
        if (!ix) {
            fprintf(stderr, "open: %s\n", err);
            return -1;
        }
        anon = status_bytes("RssAnon") - anon0;
        file = status_bytes("RssFile") - file0;
        count = vindex_count(ix);
        vindex_hit_t hit;
        vindex_search_params_t sp = {.k = 1, .nprobe = 4, .ef = 64};
        size_t probe = o->n / 2;
        if (vindex_search(ix, v + probe * o->dim, &sp, &hit, err, sizeof(err)) != 1 || hit.id != ids[probe]) {
            fprintf(stderr, "reopened index does not find its own vector\n");
            return -1;
        }
        vindex_free(ix);
        if (s < best)
            best = s;
        if (c < best_cpu)
            best_cpu = c;
    }
    printf("{\"lib\":\"vindex\",\"bench\":\"reload\",\"index\":\"%s\",\"n\":%zu,\"dim\":%u,\"build_s\":%.3f,"
           "\"save_s\":%.3f,\"open_s\":%.3f,\"open_cpu_s\":%.3f,\"file_bytes\":%lld,\"count\":%llu,"
           "\"checksums\":true,"
           "\"open_anon_bytes\":%zu,\"open_file_rss_bytes\":%zu,\"hnswlib_open_s\":%.3f,"
           "\"open_ratio_vs_hnswlib\":%.2f}\n",
           kname, o->n, o->dim, build_s, save_s, best, best_cpu, (long long)file_size(snap),
           (unsigned long long)count, anon, file, peer_open_s, peer_open_s > 0 ? best / peer_open_s : 0.0);
    fflush(stdout);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: vindex_load [--n N] [--dim D] [--index flat,ivf_flat,hnsw] [--nlist L] [--M M]\n"
                    "                   [--ef-construction E] [--threads T] [--dir DIR]\n");
}

int main(int argc, char **argv)
{
    opts_t o = {.n = 1000000, .dim = 128, .nlist = 1024, .M = 16, .efc = 100, .threads = 2};
    const char *kinds = "flat,ivf_flat";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            o.n = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dim"))
            o.dim = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--index"))
            kinds = argv[i + 1];
        else if (!strcmp(argv[i], "--nlist"))
            o.nlist = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--M"))
            o.M = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ef-construction"))
            o.efc = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            o.threads = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            o.root = argv[i + 1];
        else {
            usage();
            return 2;
        }
    }
    if (argc % 2 == 0 || o.n < 2 || o.dim < 2 || o.dim > 4096) {
        usage();
        return 2;
    }
    char tmpl[4096];
    if (!o.root) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpl, sizeof(tmpl), "%s/vindex-load-XXXXXX", t && *t ? t : P_tmpdir);
        if (!mkdtemp(tmpl)) {
            perror("mkdtemp");
            return 1;
        }
        o.root = tmpl;
    }
    float *v = malloc(o.n * o.dim * sizeof(float));
    uint64_t *ids = malloc(o.n * sizeof(uint64_t));
    if (!v || !ids) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < o.n * o.dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    for (size_t i = 0; i < o.n; i++)
        ids[i] = i;

    int rc = 0;
    double bf_open = -1;
    for (const char *k = kinds; *k;) {
        size_t len = strcspn(k, ",");
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) - 1 ? len : sizeof(name) - 1), k);
        vindex_kind_t kind = !strcmp(name, "ivf_flat") ? VINDEX_IVF_FLAT
                             : !strcmp(name, "hnsw")   ? VINDEX_HNSW
                                                       : VINDEX_FLAT;
        /* The peer first, so its file is written and read under the same cache conditions;
         * flat and ivf_flat share hnswlib's exact index. */
        double peer_open = 0;
        if (kind == VINDEX_HNSW) {
            run_peer(&o, 1, v, &peer_open);
        } else {
            if (bf_open < 0)
                run_peer(&o, 0, v, &bf_open);
            peer_open = bf_open;
        }
        if (run_kind(&o, kind, name, v, ids, peer_open) != 0)
            rc = 1;
        k += len;
        if (*k == ',')
            k++;
    }
    if (!getenv("VINDEX_LOAD_KEEP") && o.root == tmpl) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", o.root);
        if (system(cmd) != 0)
            rc = 1;
    }
    free(v);
    free(ids);
    return rc;
}
