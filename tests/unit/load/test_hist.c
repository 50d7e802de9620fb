#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "load/load.h"

Test(hist, exact_below_64_and_bounded_error_above)
{
    static load_hist_t h;
    load_hist_init(&h);
    for (uint64_t v = 0; v < 64; v++) {
        load_hist_init(&h);
        load_hist_add(&h, v);
        cr_assert_eq(load_hist_quantile(&h, 0.5), v);
    }
    /* One value: the quantile is capped at the maximum seen, so it is exact. Two values far
     * apart: the lower one's bucket edge is within 1/64 of it. */
    for (uint64_t v = 64; v < (1ull << 36); v = v * 3 / 2 + 1) {
        load_hist_init(&h);
        load_hist_add(&h, v);
        load_hist_add(&h, v * 1000);
        uint64_t q = load_hist_quantile(&h, 0.5);
        cr_assert_geq(q, v, "v %llu q %llu", (unsigned long long)v, (unsigned long long)q);
        cr_assert_leq((double)(q - v), v / 64.0 + 1, "v %llu q %llu", (unsigned long long)v,
                      (unsigned long long)q);
    }
}

Test(hist, percentiles_of_a_uniform_run)
{
    static load_hist_t h;
    load_hist_init(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        load_hist_add(&h, v);
    cr_assert_eq(h.n, 100000);
    cr_assert_eq(h.max_us, 100000);
    struct {
        double q;
        double want;
    } cases[] = {{0.5, 50000}, {0.9, 90000}, {0.99, 99000}, {1.0, 100000}, {0.0, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double got = (double)load_hist_quantile(&h, cases[i].q);
        cr_assert(fabs(got - cases[i].want) <= cases[i].want / 64.0 + 1, "q %g: got %g want %g", cases[i].q,
                  got, cases[i].want);
    }
    cr_assert_float_eq(h.sum_us / h.n, 50000.5, 1e-6);
}

Test(hist, merge_equals_adding_everything_once)
{
    static load_hist_t a, b, all;
    load_hist_init(&a);
    load_hist_init(&b);
    load_hist_init(&all);
    srand(7);
    for (int i = 0; i < 10000; i++) {
        uint64_t v = (uint64_t)rand() % 5000000;
        load_hist_add(i % 3 ? &a : &b, v);
        load_hist_add(&all, v);
    }
    load_hist_merge(&a, &b);
    cr_assert_eq(a.n, all.n);
    cr_assert_eq(a.max_us, all.max_us);
    for (double q = 0; q <= 1.0; q += 0.01)
        cr_assert_eq(load_hist_quantile(&a, q), load_hist_quantile(&all, q));
    load_hist_init(&b);
    cr_assert_eq(load_hist_quantile(&b, 0.5), 0, "an empty histogram answers 0");
}
