/* Scalar quantisation to 8 bits per dimension, for ivf_flat with params.sq8 set.
 *
 * Each dimension d keeps bias[d] (the training minimum) and scale[d] ((max - min) / 255); a
 * value x is stored as the byte round((x - bias) / scale), clamped to 0..255, and decodes as
 * bias + scale * code. Distances between a float query and a code use the kernels' u8 paths
 * (kern->l2sq_u8 / dot_u8), which decode on the fly with SIMD. Codes are 4x smaller than floats;
 * the float vectors are kept only to re-rank the best candidates exactly (see vindex.h for
 * where they live). */
#ifndef VINDEX_SQ8_H
#define VINDEX_SQ8_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t dim;
    float *bias;  /* dim floats: per-dimension minimum seen in training */
    float *scale; /* dim floats: step between codes, > 0 */
} vindex_sq8_t;

/* Learns the per-dimension ranges from n vectors (rows `stride` floats apart). */
int vindex_sq8_train(vindex_sq8_t *q, uint32_t dim, const float *vecs, size_t n, size_t stride, char *err,
                     size_t errlen);
/* Sets ranges read from a file (copies them); rejects non-finite or non-positive steps. */
int vindex_sq8_init_from(vindex_sq8_t *q, uint32_t dim, const float *bias, const float *scale, char *err,
                         size_t errlen);
/* dim bytes; values outside the trained range clamp to its ends (re-ranking repairs the order). */
void vindex_sq8_encode(const vindex_sq8_t *q, const float *x, uint8_t *code);
void vindex_sq8_release(vindex_sq8_t *q);

#endif
