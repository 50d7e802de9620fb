/* C interface to hnswlib (the peer), so the benchmark driver stays in C. */
#ifndef BENCH_ANN_HNSWLIB_PEER_H
#define BENCH_ANN_HNSWLIB_PEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hnswlib_peer hnswlib_peer_t;

/* ip = 0: L2 space; ip = 1: inner-product space (cosine: pass normalised vectors). huge_pages:
 * madvise(MADV_HUGEPAGE) its level-0 array, as vindex does with its own (for a like-for-like
 * line next to hnswlib as packaged). */
hnswlib_peer_t *hnswlib_peer_new(int ip, size_t dim, size_t max_elements, size_t M, size_t ef_construction,
                                 int huge_pages);
/* Adds vecs[i] with label i, on `threads` threads (hnswlib's addPoint is thread-safe). */
int hnswlib_peer_add(hnswlib_peer_t *p, const float *vecs, size_t n, unsigned threads);
void hnswlib_peer_set_ef(hnswlib_peer_t *p, size_t ef);
/* Best first into ids; returns how many. */
size_t hnswlib_peer_search(hnswlib_peer_t *p, const float *q, size_t k, uint64_t *ids);
/* hnswlib 0.6 has no filter inside the search: asks for `fetch` results and keeps the first k
 * that pass the bitmap (how its users filter). */
size_t hnswlib_peer_search_postfilter(hnswlib_peer_t *p, const float *q, size_t k, size_t fetch,
                                      const uint64_t *bitmap, uint64_t *ids);
void hnswlib_peer_free(hnswlib_peer_t *p);

#ifdef __cplusplus
}
#endif

#endif
