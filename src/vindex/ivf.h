/* ivf_flat internals shared with the core (vindex.c, batch.c) and persistence (store.c). */
#ifndef VINDEX_IVF_H
#define VINDEX_IVF_H

#include "vindex/index.h"
#include "vindex/sq8.h"

extern const vindex_kind_ops_t vindex_ivf_ops;

/* Trains the coarse quantiser (and the sq8 ranges) on n vectors; the caller holds
 * ix->write_lock. VINDEX_ESTATE when already trained, VINDEX_EINVAL when n < nlist. */
int vindex_ivf_train_locked(vindex_t *ix, const float *vecs, size_t n, char *err, size_t errlen);
/* 1 once the quantiser is trained. Lock-free. */
int vindex_ivf_trained(const vindex_t *ix);

/* Persistence access (store.c). Centroids are nlist rows of dim floats. */
uint32_t vindex_ivf_nlist(const vindex_t *ix);
const float *vindex_ivf_centroid(const vindex_t *ix, uint32_t list);
/* List a stored slot belongs to. */
uint32_t vindex_ivf_list_of(const vindex_t *ix, uint32_t slot);
/* The sq8 quantiser, or NULL when the index stores floats. */
const vindex_sq8_t *vindex_ivf_sq8(const vindex_t *ix);
/* Installs trained state read from a file: centroids (nlist * dim floats) and, for sq8, the
 * ranges. `vecs`, when not NULL, holds the float vectors of slots [0, n_vecs) (dim floats each)
 * and must outlive the index: sq8 re-ranks from it instead of keeping a copy in memory. */
int vindex_ivf_load_trained(vindex_t *ix, const float *centroids, const float *sq_bias, const float *sq_scale,
                            const float *vecs, uint32_t n_vecs, char *err, size_t errlen);
/* Stores slot's vector in a known list (no centroid search): the fast path of a reload. */
int vindex_ivf_insert_into(vindex_t *ix, uint32_t slot, const float *vec, uint32_t list, char *err,
                           size_t errlen);

#endif
