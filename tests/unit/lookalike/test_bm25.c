#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lookalike/lookalike.h"

static lookalike_bm25_t *new_index(void)
{
    char err[128];
    lookalike_bm25_t *ix = lookalike_bm25_new(NULL, err, sizeof err);
    cr_assert_not_null(ix, "%s", err);
    return ix;
}

static void put(lookalike_bm25_t *ix, uint64_t id, const char *title, const char *desc, const char *brand,
                const char *cat, const char *attrs)
{
    const char *f[LOOKALIKE_FIELD_COUNT] = {title, desc, brand, cat, attrs};
    char err[128];
    int rc = lookalike_bm25_put(ix, id, f, err, sizeof err);
    cr_assert_eq(rc, 0, "put %llu: %s", (unsigned long long)id, err);
}

static size_t search(lookalike_bm25_t *ix, const char *q, size_t k, lookalike_hit_t *out)
{
    size_t n = 99;
    char err[128];
    int rc = lookalike_bm25_search(ix, q, k, NULL, out, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "search %s: %s", q, err);
    return n;
}

static void fill_catalogue(lookalike_bm25_t *ix)
{
    put(ix, 1, "Áo thun nam cổ tròn", "Áo thun cotton mềm mại", "Coolmate", "t-shirt", "đỏ M L");
    put(ix, 2, "Quần jean nữ", "Quần jean ống rộng", "Levi's", "pants", "xanh dương 28");
    put(ix, 3, "Áo sơ mi trắng", "Sơ mi công sở", "Việt Tiến", "shirt", "trắng M");
    put(ix, 4, "Giày thể thao", "Giày chạy bộ nhẹ", "Biti's", "shoes", "đen 42");
    put(ix, 5, "Áo khoác gió", "Áo khoác chống nước, thun co giãn", "Coolmate", "outwear", "xám L");
    put(ix, 6, "Thung dựng đồ", "Thùng carton", "NoBrand", "other", "");
}

Test(bm25, accent_insensitive_search)
{
    lookalike_bm25_t *ix = new_index();
    fill_catalogue(ix);
    cr_assert_eq(lookalike_bm25_count(ix), 6);
    lookalike_hit_t a[10], b[10], c[10];
    size_t na = search(ix, "ao thun", 10, a);
    size_t nb = search(ix, "áo thun", 10, b);
    size_t nc = search(ix, "ÁO THUN", 10, c);
    cr_assert_geq(na, 2);
    cr_assert_eq(na, nb);
    cr_assert_eq(na, nc);
    cr_assert_eq(a[0].id, 1, "the t-shirt first, got %llu", (unsigned long long)a[0].id);
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(a[i].id, b[i].id);
        cr_assert_eq(a[i].id, c[i].id);
        cr_assert_float_eq(a[i].score, b[i].score, 1e-6);
        if (i)
            cr_assert_geq(a[i - 1].score, a[i].score);
    }
    lookalike_bm25_free(ix);
}

Test(bm25, field_weights_favour_title)
{
    lookalike_bm25_t *ix = new_index();
    put(ix, 10, "khoác", "something else entirely", NULL, NULL, NULL);
    put(ix, 11, "something else entirely", "khoác", NULL, NULL, NULL);
    lookalike_hit_t h[4];
    cr_assert_eq(search(ix, "khoac", 4, h), 2);
    cr_assert_eq(h[0].id, 10);
    cr_assert_gt(h[0].score, h[1].score);
    lookalike_bm25_free(ix);
}

Test(bm25, prefix_matching_of_last_word)
{
    lookalike_bm25_t *ix = new_index();
    fill_catalogue(ix);
    lookalike_hit_t h[10];
    /* "gi" as the last word reaches "giay" (shoes) and "gio" (wind jacket). */
    size_t n = search(ix, "gi", 10, h);
    cr_assert_eq(n, 2);
    cr_assert(h[0].id == 4 || h[1].id == 4);
    cr_assert(h[0].id == 5 || h[1].id == 5);
    /* A prefix word that is not last must match exactly. */
    cr_assert_eq(search(ix, "gi thao", 10, h), 1);
    cr_assert_eq(h[0].id, 4);
    /* The same field holding the exact word outranks a longer word it prefixes: "thun" in the
     * title of 1 beats "thung" in the (shorter) title of 6. */
    n = search(ix, "thun", 10, h);
    cr_assert_eq(n, 3);
    cr_assert_eq(h[0].id, 1);
    cr_assert(h[1].id == 6 || h[2].id == 6);
    lookalike_bm25_free(ix);
}

Test(bm25, prefix_expansion_is_bounded)
{
    lookalike_bm25_params_t p;
    lookalike_bm25_params_default(&p);
    p.max_expansion = 5;
    lookalike_bm25_t *ix = lookalike_bm25_new(&p, NULL, 0);
    cr_assert_not_null(ix);
    char word[32];
    for (int i = 0; i < 50; i++) {
        snprintf(word, sizeof word, "pre%03d", i);
        put(ix, (uint64_t)i + 1, word, NULL, NULL, NULL, NULL);
    }
    /* Make pre049 the most common so it is among the kept expansions. */
    put(ix, 100, "pre049", NULL, NULL, NULL, NULL);
    put(ix, 101, "pre049", NULL, NULL, NULL, NULL);
    lookalike_hit_t h[100];
    size_t n = search(ix, "pre", 100, h);
    cr_assert_eq(n, 7, "5 expansions: pre049 (3 docs) and 4 others, got %zu", n);
    int seen49 = 0;
    for (size_t i = 0; i < n; i++)
        seen49 += h[i].id == 50 || h[i].id == 100 || h[i].id == 101;
    cr_assert_eq(seen49, 3);
    lookalike_bm25_free(ix);
}

Test(bm25, update_and_remove)
{
    lookalike_bm25_t *ix = new_index();
    fill_catalogue(ix);
    lookalike_hit_t h[10];
    cr_assert_eq(search(ix, "jean", 10, h), 1);
    put(ix, 2, "Váy dài", "Váy maxi", NULL, "dress", NULL);
    cr_assert_eq(lookalike_bm25_count(ix), 6);
    cr_assert_eq(search(ix, "jean", 10, h), 0);
    cr_assert_eq(search(ix, "vay", 10, h), 1);
    cr_assert_eq(h[0].id, 2);
    cr_assert_eq(lookalike_bm25_remove(ix, 2), 0);
    cr_assert_eq(lookalike_bm25_remove(ix, 2), LOOKALIKE_ENOTFOUND);
    cr_assert_eq(search(ix, "vay", 10, h), 0);
    cr_assert_eq(lookalike_bm25_count(ix), 5);
    /* The freed slot is reused and ids stay right. */
    put(ix, 77, "Váy ngắn", NULL, NULL, NULL, NULL);
    cr_assert_eq(search(ix, "vay", 10, h), 1);
    cr_assert_eq(h[0].id, 77);
    lookalike_bm25_free(ix);
}

static int only_odd(uint64_t id, void *ud)
{
    (void)ud;
    return id % 2 == 1;
}

Test(bm25, filter_and_topk)
{
    lookalike_bm25_t *ix = new_index();
    for (uint64_t id = 1; id <= 200; id++) {
        char title[64];
        /* Repeat "ao" more in higher ids so scores differ. */
        snprintf(title, sizeof title, "ao %s", id % 3 == 0 ? "ao ao" : "thun");
        put(ix, id * 1000, title, NULL, NULL, NULL, NULL);
    }
    lookalike_hit_t h[200];
    size_t n = 0;
    cr_assert_eq(lookalike_bm25_search(ix, "ao", 7, NULL, h, &n, NULL, 0), 0);
    cr_assert_eq(n, 7);
    for (size_t i = 1; i < n; i++)
        cr_assert(h[i - 1].score > h[i].score || (h[i - 1].score == h[i].score && h[i - 1].id < h[i].id));
    /* Equal scores come in id order: the best are the id%3==0 documents, smallest first. */
    cr_assert_eq(h[0].id, 3000);
    cr_assert_eq(h[1].id, 6000);
    lookalike_filter_t odd = {.fn = only_odd};
    cr_assert_eq(lookalike_bm25_search(ix, "ao", 200, &odd, h, &n, NULL, 0), 0);
    cr_assert_eq(n, 0, "every id is a multiple of 1000, so even");
    /* A bitmap passing ids 3000 and 9000 (and nothing past its end). */
    uint64_t bits[200000 / 64 + 1] = {0};
    bits[3000 / 64] |= 1ull << (3000 % 64);
    bits[9000 / 64] |= 1ull << (9000 % 64);
    lookalike_filter_t bm = {.bitmap = bits, .bitmap_bits = 9001};
    cr_assert_eq(lookalike_bm25_search(ix, "ao", 200, &bm, h, &n, NULL, 0), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(h[0].id, 3000);
    cr_assert_eq(h[1].id, 9000);
    bm.bitmap_bits = 9000;
    cr_assert_eq(lookalike_bm25_search(ix, "ao", 200, &bm, h, &n, NULL, 0), 0);
    cr_assert_eq(n, 1, "ids at or past bitmap_bits fail");
    cr_assert_eq(lookalike_bm25_search(ix, "ao", 0, NULL, h, &n, NULL, 0), 0);
    cr_assert_eq(n, 0);
    lookalike_bm25_free(ix);
}

Test(bm25, errors_and_caps)
{
    lookalike_bm25_t *ix = new_index();
    char err[160];
    const char *bad[LOOKALIKE_FIELD_COUNT] = {"ok", "bad \xff here", NULL, NULL, NULL};
    cr_assert_eq(lookalike_bm25_put(ix, 1, bad, err, sizeof err), LOOKALIKE_EUTF8);
    cr_assert(strstr(err, "description"), "%s", err);
    cr_assert_eq(lookalike_bm25_count(ix), 0);
    static char big[LOOKALIKE_BM25_FIELD_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    const char *huge[LOOKALIKE_FIELD_COUNT] = {big, NULL, NULL, NULL, NULL};
    cr_assert_eq(lookalike_bm25_put(ix, 1, huge, err, sizeof err), LOOKALIKE_ETOOLARGE);
    cr_assert(strstr(err, "too large") && strstr(err, "title"), "%s", err);
    lookalike_hit_t h[4];
    size_t n;
    static char bigq[LOOKALIKE_QUERY_MAX + 2];
    memset(bigq, 'q', sizeof bigq - 1);
    cr_assert_eq(lookalike_bm25_search(ix, bigq, 4, NULL, h, &n, err, sizeof err), LOOKALIKE_ETOOLARGE);
    cr_assert_eq(lookalike_bm25_search(ix, "x", LOOKALIKE_K_MAX + 1, NULL, h, &n, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert_eq(lookalike_bm25_search(ix, "\xc3", 4, NULL, h, &n, err, sizeof err), LOOKALIKE_EUTF8);
    cr_assert_eq(lookalike_bm25_search(ix, " ,.; ", 4, NULL, h, &n, err, sizeof err), 0);
    cr_assert_eq(n, 0);
    lookalike_bm25_params_t p;
    lookalike_bm25_params_default(&p);
    p.b = 2.0f;
    cr_assert_null(lookalike_bm25_new(&p, err, sizeof err));
    lookalike_bm25_free(ix);
}

Test(bm25, many_documents_and_ids_survive_churn)
{
    lookalike_bm25_t *ix = new_index();
    char title[64];
    for (uint64_t id = 0; id < 3000; id++) {
        snprintf(title, sizeof title, "item w%llu common", (unsigned long long)(id % 97));
        put(ix, id * 0x9E3779B97F4A7C15ull, title, NULL, NULL, NULL, NULL);
    }
    for (uint64_t id = 0; id < 3000; id += 2)
        cr_assert_eq(lookalike_bm25_remove(ix, id * 0x9E3779B97F4A7C15ull), 0);
    cr_assert_eq(lookalike_bm25_count(ix), 1500);
    for (uint64_t id = 1; id < 3000; id += 2)
        put(ix, id * 0x9E3779B97F4A7C15ull, "replaced", NULL, NULL, NULL, NULL);
    cr_assert_eq(lookalike_bm25_count(ix), 1500);
    static lookalike_hit_t h[LOOKALIKE_K_MAX];
    cr_assert_eq(search(ix, "common", LOOKALIKE_K_MAX, h), 0);
    cr_assert_eq(search(ix, "replaced", LOOKALIKE_K_MAX, h), 1500);
    for (size_t i = 0; i < 1500; i++)
        cr_assert_eq(lookalike_bm25_remove(ix, h[i].id), 0);
    cr_assert_eq(lookalike_bm25_count(ix), 0);
    lookalike_bm25_free(ix);
}

typedef struct {
    lookalike_bm25_t *ix;
    int errors;
} race_t;

static void *reader(void *arg)
{
    race_t *r = arg;
    lookalike_hit_t h[20];
    for (int i = 0; i < 300; i++) {
        size_t n;
        if (lookalike_bm25_search(r->ix, "ao th", 20, NULL, h, &n, NULL, 0) != 0)
            r->errors++;
        for (size_t j = 0; j < n; j++)
            if (h[j].id >= 1000 || !(h[j].score > 0.0f))
                r->errors++;
    }
    return NULL;
}

Test(bm25, readers_and_a_writer)
{
    lookalike_bm25_t *ix = new_index();
    race_t r[3] = {{ix, 0}, {ix, 0}, {ix, 0}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, reader, &r[i]);
    for (int i = 0; i < 600; i++) {
        put(ix, (uint64_t)(i % 1000), i % 2 ? "áo thun" : "áo khoác thời trang", NULL, NULL, NULL, NULL);
        if (i % 5 == 0)
            lookalike_bm25_remove(ix, (uint64_t)(i % 7));
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(r[i].errors, 0);
    }
    lookalike_bm25_free(ix);
}
