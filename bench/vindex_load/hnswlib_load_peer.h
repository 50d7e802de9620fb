/* C interface to the hnswlib side of bench/vindex_load (hnswlib_bf_peer.cc). */
#ifndef VINDEX_LOAD_HNSWLIB_BF_PEER_H
#define VINDEX_LOAD_HNSWLIB_BF_PEER_H

#include <stddef.h>

/* Builds a BruteforceSearch over n vectors (L2) and saves it to path; *save_s times the save. */
int hnswbf_build_save(const float *v, size_t n, int dim, const char *path, double *save_s);
/* Loads path; *load_s times the load, *count is the element count it read. */
int hnswbf_load(const char *path, int dim, double *load_s, size_t *count);

#endif
