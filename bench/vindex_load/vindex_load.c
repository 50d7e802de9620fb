/*
 * bench/vindex_load: how long vindex_open takes on a saved index of n random vectors (default
 * 1M x 128-d), for each index kind asked for, next to hnswlib's own save/load of its exact
 * index on the same vectors in the same run. Every vindex open maps the snapshot, verifies all
 * section checksums and rebuilds the id map; the page cache is warm (the file was just
 * written), which is the common case for a restart. Prints one JSON line per measurement.
 *
 *   vindex_load [--n 1000000] [--dim 128] [--index flat,ivf_flat] [--nlist 1024] [--threads 2]
 *               [--dir DIR]
 */
#include "hnswlib_bf_peer.h"
#include "vindex/vindex.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static int run_kind(vindex_kind_t kind, const char *kname, const float *v, const uint64_t *ids, size_t n,
                    unsigned dim, unsigned nlist, unsigned threads, const char *root, double peer_open_s)
{
    char dir[4200], err[512], snap[4300];
    snprintf(dir, sizeof(dir), "%s/%s", root, kname);
    snprintf(snap, sizeof(snap), "%s/index.snap", dir);
    vindex_params_t p;
    vindex_params_default(&p, kind, VINDEX_L2, dim);
    p.capacity = n;
    p.threads = threads;
    p.nlist = nlist;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    if (!ix) {
        fprintf(stderr, "vindex_new: %s\n", err);
        return -1;
    }
    double t0 = now_s();
    if (vindex_add_batch(ix, ids, v, n, err, sizeof(err))) {
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
    double best = 1e30;
    uint64_t count = 0;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now_s();
        ix = vindex_open(dir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
        double s = now_s() - t0;
        if (!ix) {
            fprintf(stderr, "open: %s\n", err);
            return -1;
        }
        count = vindex_count(ix);
        vindex_hit_t hit;
        vindex_search_params_t sp = {.k = 1, .nprobe = 4};
        if (vindex_search(ix, v + (n / 2) * dim, &sp, &hit, err, sizeof(err)) != 1 || hit.id != ids[n / 2]) {
            fprintf(stderr, "reopened index does not find its own vector\n");
            return -1;
        }
        vindex_free(ix);
        if (s < best)
            best = s;
    }
    printf("{\"lib\":\"vindex\",\"bench\":\"reload\",\"index\":\"%s\",\"n\":%zu,\"dim\":%u,\"build_s\":%.3f,"
           "\"save_s\":%.3f,\"open_s\":%.3f,\"file_bytes\":%lld,\"count\":%llu,\"checksums\":true,"
           "\"hnswlib_bruteforce_open_s\":%.3f,\"open_ratio_vs_hnswlib\":%.2f}\n",
           kname, n, dim, build_s, save_s, best, (long long)file_size(snap), (unsigned long long)count,
           peer_open_s, peer_open_s > 0 ? best / peer_open_s : 0.0);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    unsigned dim = 128, nlist = 1024, threads = 2;
    const char *kinds = "flat,ivf_flat", *root = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dim"))
            dim = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--index"))
            kinds = argv[i + 1];
        else if (!strcmp(argv[i], "--nlist"))
            nlist = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            root = argv[i + 1];
        else {
            fprintf(stderr, "usage: vindex_load [--n N] [--dim D] [--index flat,ivf_flat] [--nlist L] "
                            "[--threads T] [--dir DIR]\n");
            return 2;
        }
    }
    char tmpl[4096];
    if (!root) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpl, sizeof(tmpl), "%s/vindex-load-XXXXXX", t && *t ? t : P_tmpdir);
        if (!mkdtemp(tmpl)) {
            perror("mkdtemp");
            return 1;
        }
        root = tmpl;
    }
    float *v = malloc(n * dim * sizeof(float));
    uint64_t *ids = malloc(n * sizeof(uint64_t));
    if (!v || !ids) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < n * dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = i;

    /* The peer first, so its file is written and read under the same cache conditions. */
    char peer[4200];
    snprintf(peer, sizeof(peer), "%s/hnswlib_bf.bin", root);
    double peer_save = 0, peer_load = 1e30;
    size_t peer_count = 0;
    if (hnswbf_build_save(v, n, (int)dim, peer, &peer_save) == 0) {
        for (int rep = 0; rep < 3; rep++) {
            double t;
            if (hnswbf_load(peer, (int)dim, &t, &peer_count) != 0)
                break;
            if (t < peer_load)
                peer_load = t;
        }
        printf("{\"lib\":\"hnswlib\",\"bench\":\"reload\",\"index\":\"bruteforce\",\"n\":%zu,\"dim\":%u,"
               "\"save_s\":%.3f,\"open_s\":%.3f,\"file_bytes\":%lld,\"count\":%zu,\"checksums\":false}\n",
               n, dim, peer_save, peer_load, (long long)file_size(peer), peer_count);
        fflush(stdout);
        unlink(peer);
    }
    int rc = 0;
    for (const char *k = kinds; *k;) {
        size_t len = strcspn(k, ",");
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) - 1 ? len : sizeof(name) - 1), k);
        vindex_kind_t kind = !strcmp(name, "ivf_flat") ? VINDEX_IVF_FLAT
                             : !strcmp(name, "hnsw")   ? VINDEX_HNSW
                                                       : VINDEX_FLAT;
        if (run_kind(kind, name, v, ids, n, dim, nlist, threads, root, peer_load < 1e30 ? peer_load : 0) != 0)
            rc = 1;
        k += len;
        if (*k == ',')
            k++;
    }
    if (!getenv("VINDEX_LOAD_KEEP") && root == tmpl) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        if (system(cmd) != 0)
            rc = 1;
    }
    free(v);
    free(ids);
    return rc;
}
