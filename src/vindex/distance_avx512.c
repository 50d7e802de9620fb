/* AVX-512 (F+BW+VL) kernels, compiled for that target only (see distance.h). */
#include "vindex/distance.h"

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

TARGET static inline __mmask16 tail16(size_t r)
{
    return (__mmask16)((1u << r) - 1u);
}

TARGET static float l2sq_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    if (i + 16 <= n) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail16(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* Checks the bound every 128 floats: a horizontal sum costs about as much as 8 FMAs. */
TARGET static float l2sq_bounded_avx512(const float *a, const float *b, size_t n, float bound)
{
    float s = 0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (size_t j = i; j < i + 128; j += 32) {
            __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j));
            __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + j + 16), _mm512_loadu_ps(b + j + 16));
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
        }
        s += _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
        if (s > bound)
            return s;
    }
    return s + l2sq_avx512(a + i, b + i, n - i);
}

TARGET static float dot_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = tail16(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

TARGET static float ndot_avx512(const float *a, const float *b, size_t n)
{
    return -dot_avx512(a, b, n);
}

TARGET static int32_t l2sq_i8_avx512(const int8_t *a, const int8_t *b, size_t n)
{
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i y = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        __m512i d = _mm512_sub_epi16(x, y);
        s = _mm512_add_epi32(s, _mm512_madd_epi16(d, d));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1u);
        __m512i x = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i y = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        __m512i d = _mm512_sub_epi16(x, y);
        s = _mm512_add_epi32(s, _mm512_madd_epi16(d, d));
    }
    return _mm512_reduce_add_epi32(s);
}

TARGET static int32_t dot_i8_avx512(const int8_t *a, const int8_t *b, size_t n)
{
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i y = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(x, y));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1u);
        __m512i x = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i y = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        s = _mm512_add_epi32(s, _mm512_madd_epi16(x, y));
    }
    return _mm512_reduce_add_epi32(s);
}

TARGET static inline __m512 decode16(__mmask16 m, const uint8_t *c, const float *scale, const float *bias)
{
    __m512 x = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c)));
    return _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, scale), x, _mm512_maskz_loadu_ps(m, bias));
}

TARGET static float l2sq_u8_avx512(const float *q, const uint8_t *c, const float *scale, const float *bias,
                                   size_t n)
{
    __m512 s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail16(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), decode16(m, c + i, scale + i, bias + i));
        s = _mm512_fmadd_ps(d, d, s);
    }
    return _mm512_reduce_add_ps(s);
}

TARGET static float dot_u8_avx512(const float *q, const uint8_t *c, const float *scale, const float *bias,
                                  size_t n)
{
    __m512 s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail16(n - i);
        s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), decode16(m, c + i, scale + i, bias + i), s);
    }
    return _mm512_reduce_add_ps(s);
}

static const vindex_kernels_t avx512_kernels = {
    .isa = "avx512",
    .l2sq = l2sq_avx512,
    .l2sq_bounded = l2sq_bounded_avx512,
    .dot = dot_avx512,
    .ndot = ndot_avx512,
    .l2sq_i8 = l2sq_i8_avx512,
    .dot_i8 = dot_i8_avx512,
    .l2sq_u8 = l2sq_u8_avx512,
    .dot_u8 = dot_u8_avx512,
};

const vindex_kernels_t *vindex_kernels_avx512(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &avx512_kernels;
    return NULL;
}
