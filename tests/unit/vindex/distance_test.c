/* Every SIMD kernel against the portable one, for every length 0..130 and odd alignments. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "vindex/distance.h"

static uint64_t rng_state = 42;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static float frand(void)
{
    return (float)rnd() / 2147483648.0f - 0.5f;
}

static void compare_tables(const vindex_kernels_t *k)
{
    const vindex_kernels_t *ref = vindex_kernels_scalar();
    /* One spare element in front lets every length also run misaligned by one float/byte. */
    float a[140], b[140], scale[140], bias[140];
    int8_t ia[140], ib[140];
    uint8_t code[140];
    for (size_t n = 0; n <= 130; n++) {
        for (size_t off = 0; off <= 1; off++) {
            for (size_t i = 0; i < n + off; i++) {
                a[i] = frand() * 4;
                b[i] = frand() * 4;
                scale[i] = frand() + 1;
                bias[i] = frand();
                ia[i] = (int8_t)(rnd() & 0xff);
                ib[i] = (int8_t)(rnd() & 0xff);
                code[i] = (uint8_t)rnd();
            }
            const float *pa = a + off, *pb = b + off, *ps = scale + off, *pbias = bias + off;
            float tol = 1e-4f * (float)(n + 1);
            cr_assert(fabsf(k->l2sq(pa, pb, n) - ref->l2sq(pa, pb, n)) <= tol, "%s l2sq n=%zu", k->isa, n);
            cr_assert(fabsf(k->dot(pa, pb, n) - ref->dot(pa, pb, n)) <= tol, "%s dot n=%zu", k->isa, n);
            float full = ref->l2sq(pa, pb, n);
            cr_assert(fabsf(k->l2sq_bounded(pa, pb, n, INFINITY) - full) <= tol, "%s bounded n=%zu", k->isa,
                      n);
            cr_assert(fabsf(k->l2sq_bounded(pa, pb, n, full + 1) - full) <= tol, "%s bounded n=%zu", k->isa,
                      n);
            if (n > 0 && full > 0)
                cr_assert_gt(k->l2sq_bounded(pa, pb, n, full * 0.25f), full * 0.25f, "%s bounded n=%zu",
                             k->isa, n);
            cr_assert_eq(k->l2sq_i8(ia + off, ib + off, n), ref->l2sq_i8(ia + off, ib + off, n),
                         "%s l2sq_i8 n=%zu", k->isa, n);
            cr_assert_eq(k->dot_i8(ia + off, ib + off, n), ref->dot_i8(ia + off, ib + off, n),
                         "%s dot_i8 n=%zu", k->isa, n);
            float u1 = k->l2sq_u8(pa, code + off, ps, pbias, n),
                  u2 = ref->l2sq_u8(pa, code + off, ps, pbias, n);
            cr_assert(fabsf(u1 - u2) <= 1e-3f * (float)(n + 1) * 256, "%s l2sq_u8 n=%zu %g %g", k->isa, n, u1,
                      u2);
            float d1 = k->dot_u8(pa, code + off, ps, pbias, n),
                  d2 = ref->dot_u8(pa, code + off, ps, pbias, n);
            cr_assert(fabsf(d1 - d2) <= 1e-3f * (float)(n + 1) * 16, "%s dot_u8 n=%zu %g %g", k->isa, n, d1,
                      d2);
        }
    }
}

Test(distance, scalar_matches_definition)
{
    const vindex_kernels_t *k = vindex_kernels_scalar();
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {5, 4, 3, 2, 1};
    cr_assert_float_eq(k->l2sq(a, b, 5), 16 + 4 + 0 + 4 + 16, 1e-6);
    cr_assert_float_eq(k->dot(a, b, 5), 5 + 8 + 9 + 8 + 5, 1e-6);
    int8_t x[3] = {-128, 127, 3}, y[3] = {127, -128, 3};
    cr_assert_eq(k->l2sq_i8(x, y, 3), 255 * 255 * 2);
    cr_assert_eq(k->dot_i8(x, y, 3), -128 * 127 * 2 + 9);
    float q[2] = {1, 2}, sc[2] = {0.5f, 2}, bi[2] = {1, -1};
    uint8_t c[2] = {2, 1};
    cr_assert_float_eq(k->l2sq_u8(q, c, sc, bi, 2), 1 + 1, 1e-6);
    cr_assert_float_eq(k->dot_u8(q, c, sc, bi, 2), 2 + 2, 1e-6);
}

Test(distance, avx2_matches_scalar)
{
    const vindex_kernels_t *k = vindex_kernels_avx2();
    if (!k)
        cr_skip_test("CPU has no AVX2+FMA");
    compare_tables(k);
}

Test(distance, avx512_matches_scalar)
{
    const vindex_kernels_t *k = vindex_kernels_avx512();
    if (!k)
        cr_skip_test("CPU has no AVX-512");
    compare_tables(k);
}

Test(distance, dispatch_picks_best_available)
{
    const vindex_kernels_t *k = vindex_kernels();
    cr_assert_not_null(k);
    if (vindex_kernels_avx512())
        cr_assert_str_eq(k->isa, "avx512");
    else if (vindex_kernels_avx2())
        cr_assert_str_eq(k->isa, "avx2");
    else
        cr_assert_str_eq(k->isa, "scalar");
}

Test(distance, long_vectors_agree)
{
    const vindex_kernels_t *k = vindex_kernels(), *ref = vindex_kernels_scalar();
    static float a[4096], b[4096];
    for (size_t i = 0; i < 4096; i++) {
        a[i] = frand();
        b[i] = frand();
    }
    for (size_t n = 1000; n <= 4096; n += 517) {
        float x = k->l2sq(a, b, n), y = ref->l2sq(a, b, n);
        cr_assert(fabsf(x - y) <= 1e-4f * y, "l2sq n=%zu %g %g", n, x, y);
        /* A bound above the sum gives the sum; one far below it stops early, still above it. */
        x = k->l2sq_bounded(a, b, n, y * 2);
        cr_assert(fabsf(x - y) <= 1e-4f * y, "l2sq_bounded n=%zu %g %g", n, x, y);
        x = k->l2sq_bounded(a, b, n, y * 0.1f);
        cr_assert(x > y * 0.1f && x <= y * 1.0001f, "l2sq_bounded early n=%zu %g %g", n, x, y);
        x = k->dot(a, b, n);
        y = ref->dot(a, b, n);
        cr_assert(fabsf(x - y) <= 1e-3f, "dot n=%zu %g %g", n, x, y);
    }
}

Test(distance, ndot_is_negated_dot)
{
    const vindex_kernels_t *tables[3] = {vindex_kernels_scalar(), vindex_kernels_avx2(),
                                         vindex_kernels_avx512()};
    float a[19], b[19];
    for (int i = 0; i < 19; i++) {
        a[i] = frand();
        b[i] = frand();
    }
    for (int t = 0; t < 3; t++) {
        if (tables[t])
            cr_assert_float_eq(tables[t]->ndot(a, b, 19), -tables[t]->dot(a, b, 19), 1e-6, "%s",
                               tables[t]->isa);
    }
}
