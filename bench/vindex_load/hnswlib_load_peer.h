/* C interface to the hnswlib side of bench/vindex_load (hnswlib_load_peer.cc). */
#ifndef VINDEX_LOAD_HNSWLIB_LOAD_PEER_H
#define VINDEX_LOAD_HNSWLIB_LOAD_PEER_H

#include <stddef.h>

/* Builds hnswlib's exact index (BruteforceSearch, hnsw = 0) or its graph (HierarchicalNSW with M
 * and ef_construction, on `threads` threads, hnsw = 1) over n vectors (L2) and saves it to path
 * with its own saveIndex; *build_s and *save_s time the two steps. 0 or -1. */
int hnswlib_load_build_save(int hnsw, const float *v, size_t n, int dim, size_t M, size_t ef_construction,
                            unsigned threads, const char *path, double *build_s, double *save_s);
/* Loads path with hnswlib's loading constructor; *load_s and *load_cpu_s (process CPU) time it,
 * *count is the element count it read. 0 or -1. */
int hnswlib_load(int hnsw, const char *path, int dim, double *load_s, double *load_cpu_s, size_t *count);

#endif
