/*
 * Distance kernels, chosen once per process from the CPU's features.
 *
 * Three builds of every kernel exist: portable C (the reference the tests compare against),
 * AVX2+FMA and AVX-512 (F+BW+VL), each compiled with __attribute__((target)) so the rest of the
 * library needs no -m flags. vindex_kernels() runs the CPU check on its first call
 * (pthread_once) and returns the table for the best ISA; the table is constant afterwards.
 *
 * All kernels accept any n >= 0 and any alignment (rows the index stores are 64-byte aligned,
 * queries need not be). Float kernels sum in float with several accumulators, so results
 * differ from the scalar ones by rounding only.
 */
#ifndef VINDEX_DISTANCE_H
#define VINDEX_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

typedef float (*vindex_dist_f32_fn)(const float *a, const float *b, size_t n);
typedef int32_t (*vindex_dist_i8_fn)(const int8_t *a, const int8_t *b, size_t n);
/* Asymmetric: float query q against a u8 code c that decodes as x[i] = bias[i] + scale[i]*c[i]. */
typedef float (*vindex_dist_f32_u8_fn)(const float *q, const uint8_t *c, const float *scale,
                                       const float *bias, size_t n);

/* L2 with early abandon: the exact sum when it is <= bound, else some partial sum > bound. */
typedef float (*vindex_dist_bounded_fn)(const float *a, const float *b, size_t n, float bound);

typedef struct {
    const char *isa;                     /* "avx512", "avx2", "scalar" */
    vindex_dist_f32_fn l2sq;             /* sum (a-b)^2 */
    vindex_dist_f32_fn dot;              /* sum a*b */
    vindex_dist_bounded_fn l2sq_bounded; /* stops once the partial sum passes bound */
    vindex_dist_f32_fn ndot;             /* -(sum a*b): inner product as a smaller-is-better distance */
    vindex_dist_i8_fn l2sq_i8;           /* sum (a-b)^2 in int32 (exact: 255^2 * 4096 < 2^31) */
    vindex_dist_i8_fn dot_i8;            /* sum a*b in int32 */
    vindex_dist_f32_u8_fn l2sq_u8;       /* sum (q - decode(c))^2 */
    vindex_dist_f32_u8_fn dot_u8;        /* sum q * decode(c) */
} vindex_kernels_t;

/* The kernels for this CPU. VINDEX_ISA=scalar|avx2|avx512 in the environment caps the choice
 * (for benchmarks and tests); it cannot select an ISA the CPU lacks. */
const vindex_kernels_t *vindex_kernels(void);
/* Each ISA's table, or NULL when the CPU (or compiler) lacks it: for tests. */
const vindex_kernels_t *vindex_kernels_scalar(void);
const vindex_kernels_t *vindex_kernels_avx2(void);
const vindex_kernels_t *vindex_kernels_avx512(void);

#endif
