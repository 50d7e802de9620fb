/*
 * Portable kernels and the run-time choice of kernel table. The portable code is also the
 * reference the unit tests hold the SIMD builds to.
 */
#include "vindex/distance.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Four partial sums: the same association order on every CPU, and twice as fast as one. */
static float l2sq_scalar(const float *a, const float *b, size_t n)
{
    float s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (size_t j = 0; j < 4; j++) {
            float d = a[i + j] - b[i + j];
            s[j] += d * d;
        }
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s[0] += d * d;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float l2sq_bounded_scalar(const float *a, const float *b, size_t n, float bound)
{
    float s = 0;
    for (size_t i = 0; i < n; i += 64) {
        size_t e = i + 64 < n ? i + 64 : n;
        s += l2sq_scalar(a + i, b + i, e - i);
        if (s > bound)
            break;
    }
    return s;
}

static float dot_scalar(const float *a, const float *b, size_t n)
{
    float s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (size_t j = 0; j < 4; j++)
            s[j] += a[i + j] * b[i + j];
    }
    for (; i < n; i++)
        s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static float ndot_scalar(const float *a, const float *b, size_t n)
{
    return -dot_scalar(a, b, n);
}

static int32_t l2sq_i8_scalar(const int8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        s += d * d;
    }
    return s;
}

static int32_t dot_i8_scalar(const int8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

static float l2sq_u8_scalar(const float *q, const uint8_t *c, const float *scale, const float *bias, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++) {
        float d = q[i] - (bias[i] + scale[i] * (float)c[i]);
        s += d * d;
    }
    return s;
}

static float dot_u8_scalar(const float *q, const uint8_t *c, const float *scale, const float *bias, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += q[i] * (bias[i] + scale[i] * (float)c[i]);
    return s;
}

static const vindex_kernels_t scalar_kernels = {
    .isa = "scalar",
    .l2sq = l2sq_scalar,
    .l2sq_bounded = l2sq_bounded_scalar,
    .dot = dot_scalar,
    .ndot = ndot_scalar,
    .l2sq_i8 = l2sq_i8_scalar,
    .dot_i8 = dot_i8_scalar,
    .l2sq_u8 = l2sq_u8_scalar,
    .dot_u8 = dot_u8_scalar,
};

const vindex_kernels_t *vindex_kernels_scalar(void)
{
    return &scalar_kernels;
}

/* Set once by pick_kernels under pthread_once, read-only afterwards. */
static const vindex_kernels_t *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void pick_kernels(void)
{
    const char *cap = getenv("VINDEX_ISA");
    const vindex_kernels_t *k = NULL;
    if (!cap || strcmp(cap, "avx512") == 0)
        k = vindex_kernels_avx512();
    if (!k && (!cap || strcmp(cap, "avx512") == 0 || strcmp(cap, "avx2") == 0))
        k = vindex_kernels_avx2();
    chosen = k ? k : &scalar_kernels;
}

const vindex_kernels_t *vindex_kernels(void)
{
    pthread_once(&chosen_once, pick_kernels);
    return chosen;
}
