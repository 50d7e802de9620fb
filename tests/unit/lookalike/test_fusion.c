#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static lookalike_signal_t sig(const char *name, const lookalike_hit_t *hits, size_t n, float w)
{
    return (lookalike_signal_t){.name = name, .hits = hits, .n = n, .weight = w};
}

Test(fusion, rrf_scores_and_why)
{
    const lookalike_hit_t image[] = {{1, 0.9f}, {2, 0.8f}, {3, 0.7f}};
    const lookalike_hit_t text[] = {{3, 12.0f}, {4, 9.0f}, {1, 3.0f}};
    lookalike_signal_t s[2] = {sig("image", image, 3, 1.0f), sig("text", text, 3, 1.0f)};
    lookalike_fused_t out[10];
    size_t n, total;
    lookalike_fuse_opts_t o = {.k = 10};
    cr_assert_eq(lookalike_fuse(s, 2, &o, out, &n, &total, NULL, 0), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(total, 4);
    /* 1: 1/61 + 1/63, 3: 1/63 + 1/61 (tie, broken by best rank then id), 2: 1/62, 4: 1/62. */
    cr_assert_eq(out[0].id, 1);
    cr_assert_eq(out[1].id, 3);
    cr_assert_eq(out[2].id, 2);
    cr_assert_eq(out[3].id, 4);
    cr_assert_float_eq(out[0].score, 1.0 / 61 + 1.0 / 63, 1e-12);
    cr_assert_float_eq(out[2].score, 1.0 / 62, 1e-12);
    cr_assert_eq(out[0].rank[0], 1);
    cr_assert_eq(out[0].rank[1], 3);
    cr_assert_float_eq(out[0].signal_score[0], 0.9f, 1e-6);
    cr_assert_float_eq(out[0].signal_score[1], 3.0f, 1e-6);
    cr_assert_eq(out[2].rank[1], 0, "2 is not in the text list");
    cr_assert_float_eq(out[2].signal_score[1], 0.0f, 0);
}

Test(fusion, weights_change_the_order)
{
    const lookalike_hit_t a[] = {{10, 1}, {20, 1}};
    const lookalike_hit_t b[] = {{20, 1}, {10, 1}};
    lookalike_signal_t s[2] = {sig("a", a, 2, 1.0f), sig("b", b, 2, 3.0f)};
    lookalike_fused_t out[2];
    size_t n;
    cr_assert_eq(lookalike_fuse(s, 2, NULL, out, &n, NULL, NULL, 0), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0].id, 20);
    s[0].weight = 3.0f;
    s[1].weight = 1.0f;
    cr_assert_eq(lookalike_fuse(s, 2, NULL, out, &n, NULL, NULL, 0), 0);
    cr_assert_eq(out[0].id, 10);
    /* Weight 0 keeps the breakdown but adds nothing. */
    s[1].weight = 0.0f;
    cr_assert_eq(lookalike_fuse(s, 2, NULL, out, &n, NULL, NULL, 0), 0);
    cr_assert_eq(out[0].id, 10);
    cr_assert_eq(out[0].rank[1], 2);
    cr_assert_float_eq(out[0].score, 3.0 / 61, 1e-12);
}

Test(fusion, custom_k_and_duplicates)
{
    const lookalike_hit_t a[] = {{5, 1}, {5, 0.5f}, {6, 0.4f}};
    lookalike_signal_t s = sig("a", a, 3, 1.0f);
    lookalike_fuse_opts_t o = {.k_rrf = 1.0, .k = 5};
    lookalike_fused_t out[5];
    size_t n, total;
    cr_assert_eq(lookalike_fuse(&s, 1, &o, out, &n, &total, NULL, 0), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(total, 2);
    cr_assert_eq(out[0].id, 5);
    cr_assert_eq(out[0].rank[0], 1);
    cr_assert_float_eq(out[0].score, 0.5, 1e-12);
    cr_assert_eq(out[1].rank[0], 3, "ranks are positions in the list as given");
    cr_assert_float_eq(out[1].score, 0.25, 1e-12);
}

Test(fusion, paging_is_stable_and_complete)
{
    enum { N = 250 };
    lookalike_hit_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (int i = 0; i < N; i++) {
        a[i] = (lookalike_hit_t){.id = (uint64_t)i, .score = (float)(N - i)};
        /* The same ids reversed: every id gets 1/(60+i+1) + 1/(60+N-i), many ties. */
        b[i] = (lookalike_hit_t){.id = (uint64_t)(N - 1 - i), .score = (float)(N - i)};
    }
    lookalike_signal_t s[2] = {sig("a", a, N, 1.0f), sig("b", b, N, 1.0f)};
    lookalike_fused_t all[N], page[7];
    size_t n, total;
    lookalike_fuse_opts_t o = {.k = N};
    cr_assert_eq(lookalike_fuse(s, 2, &o, all, &n, &total, NULL, 0), 0);
    cr_assert_eq(n, N);
    int seen[N] = {0};
    size_t got = 0;
    for (size_t off = 0; off < N + 7; off += 7) {
        lookalike_fuse_opts_t po = {.k = 7, .offset = off};
        cr_assert_eq(lookalike_fuse(s, 2, &po, page, &n, &total, NULL, 0), 0);
        cr_assert_eq(total, N);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(page[i].id, all[off + i].id);
            seen[page[i].id]++;
            got++;
        }
    }
    cr_assert_eq(got, N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(seen[i], 1);
    for (int i = 1; i < N; i++)
        cr_assert(all[i - 1].score >= all[i].score);
    free(a);
    free(b);
}

Test(fusion, empty_and_errors)
{
    lookalike_fused_t out[4];
    size_t n = 9, total = 9;
    cr_assert_eq(lookalike_fuse(NULL, 0, NULL, out, &n, &total, NULL, 0), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(total, 0);
    const lookalike_hit_t a[] = {{1, 1}};
    lookalike_signal_t s[LOOKALIKE_MAX_SIGNALS + 1];
    for (int i = 0; i <= LOOKALIKE_MAX_SIGNALS; i++)
        s[i] = sig("x", a, 1, 1.0f);
    char err[128];
    cr_assert_eq(lookalike_fuse(s, LOOKALIKE_MAX_SIGNALS + 1, NULL, out, &n, NULL, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "too many signals"), "%s", err);
    s[1].weight = -1.0f;
    s[1].name = "text";
    cr_assert_eq(lookalike_fuse(s, 2, NULL, out, &n, NULL, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "text"), "%s", err);
    s[1].weight = NAN;
    cr_assert_eq(lookalike_fuse(s, 2, NULL, out, &n, NULL, err, sizeof err), LOOKALIKE_EINVAL);
    s[1].weight = 1.0f;
    lookalike_fuse_opts_t o = {.k = LOOKALIKE_K_MAX + 1};
    cr_assert_eq(lookalike_fuse(s, 2, &o, out, &n, NULL, err, sizeof err), LOOKALIKE_EINVAL);
    o = (lookalike_fuse_opts_t){.k = 4, .k_rrf = INFINITY};
    cr_assert_eq(lookalike_fuse(s, 2, &o, out, &n, NULL, err, sizeof err), LOOKALIKE_EINVAL);
    s[0].n = LOOKALIKE_FUSION_INPUT_MAX + 1;
    cr_assert_eq(lookalike_fuse(s, 1, NULL, out, &n, NULL, err, sizeof err), LOOKALIKE_ETOOLARGE);
    cr_assert(strstr(err, "too large"), "%s", err);
    /* An offset past the end gives an empty page, not an error. */
    s[0].n = 1;
    o = (lookalike_fuse_opts_t){.k = 4, .offset = 100};
    cr_assert_eq(lookalike_fuse(s, 2, &o, out, &n, &total, NULL, 0), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(total, 1);
}
