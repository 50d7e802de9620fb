/* C interface to FAISS IVF indexes (the ivf_flat peer of bench/ann), so the driver stays in C. */
#ifndef BENCH_ANN_FAISS_PEER_H
#define BENCH_ANN_FAISS_PEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct faiss_peer faiss_peer_t;

/* IndexIVFFlat (sq8 = 0) or IndexIVFScalarQuantizer with 8-bit codes (sq8 = 1) over an
 * IndexFlat coarse quantiser; ip = 0: L2, ip = 1: inner product (cosine: pass normalised
 * vectors). NULL on error. */
faiss_peer_t *faiss_peer_new(int ip, size_t dim, size_t nlist, int sq8);
/* Trains k-means on `train_per_list` * nlist sampled vectors for `iters` rounds (FAISS's own
 * sampling), then adds vecs[i] with id i; uses `threads` OpenMP threads. 0 or -1. */
int faiss_peer_train_add(faiss_peer_t *p, const float *vecs, size_t n, size_t train_per_list, int iters,
                         unsigned threads);
void faiss_peer_set_nprobe(faiss_peer_t *p, size_t nprobe);
/* One query on the calling thread; best first into ids; returns how many. With a bitmap (bit i
 * of word i/64 = id i passes), FAISS's IDSelectorBitmap filters inside the list scan. */
size_t faiss_peer_search(faiss_peer_t *p, const float *q, size_t k, const uint64_t *bitmap,
                         size_t bitmap_bits, uint64_t *ids);
void faiss_peer_free(faiss_peer_t *p);

#ifdef __cplusplus
}
#endif

#endif
