/* The filter index against a brute-force filter over the same documents, through inserts,
 * upserts (same and new doc id), deletes and failures to fit, plus the filter's meaning. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/filter_index.h"
#include "lookalike/lookalike.h"

static char *const categories[] = {"ao thun", "dam", "giay", "tui xach", "mu"};
static char *const brands[] = {"an phuoc", "viet tien", "owen", "nem"};
static char *const sizes[] = {"s", "m", "l", "xl", "38", "39"};
static char *const akeys[] = {"material", "sleeve", "waterproof"};
static char *const avals[] = {"cotton", "long", "true", "false", "42"};

#define NDOCS 4000
#define NSIZES 3
#define NATTRS 3

/* A document the test owns; its fdoc points into its arrays. */
typedef struct {
    int live;
    svc_fdoc_t fd;
    char *sz[NSIZES];
    char *ak[NATTRS], *av[NATTRS];
} doc_t;

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t pick(size_t n)
{
    return (size_t)(next() % n);
}

static void random_doc(doc_t *d, uint64_t doc_id)
{
    memset(d, 0, sizeof *d);
    d->fd.doc_id = doc_id;
    d->fd.category = pick(8) ? categories[pick(5)] : NULL;
    d->fd.brand = pick(3) ? brands[pick(4)] : NULL;
    size_t ns = pick(NSIZES + 1);
    for (size_t i = 0; i < ns; i++)
        d->sz[i] = sizes[pick(6)];
    size_t na = 0;
    for (size_t k = 0; k < NATTRS; k++)
        if (pick(2)) {
            d->ak[na] = akeys[k];
            d->av[na++] = avals[pick(5)];
        }
    d->fd.sizes = d->sz;
    d->fd.nsizes = ns;
    d->fd.attr_keys = d->ak;
    d->fd.attr_vals = d->av;
    d->fd.nattrs = na;
    d->fd.colours = (uint32_t)(next() & ((1u << LOOKALIKE_COLOUR_COUNT) - 1)) & (uint32_t)next();
    d->fd.has_price = pick(5) != 0;
    d->fd.price = d->fd.has_price ? (double)pick(1000) / 4 : 0;
}

/* Re-points fd's arrays after the doc_t moved (a struct copy). */
static void fix(doc_t *d)
{
    d->fd.sizes = d->sz;
    d->fd.attr_keys = d->ak;
    d->fd.attr_vals = d->av;
}

static void random_filter(svc_filter_t *f)
{
    memset(f, 0, sizeof *f);
    f->active = 1;
    if (pick(2))
        for (size_t i = 0, n = 1 + pick(2); i < n; i++)
            f->category.v[f->category.n++] = categories[pick(5)];
    if (!pick(3))
        f->brand.v[f->brand.n++] = brands[pick(4)];
    if (!pick(3))
        for (size_t i = 0, n = 1 + pick(3); i < n; i++)
            f->size.v[f->size.n++] = sizes[pick(6)];
    if (!pick(3))
        f->colours = 1u << pick(LOOKALIKE_COLOUR_COUNT) | (pick(2) ? 1u << pick(LOOKALIKE_COLOUR_COUNT) : 0);
    if (!pick(3)) {
        f->akey[f->nattrs] = akeys[pick(3)];
        f->aval[f->nattrs++] = avals[pick(5)];
    }
    if (!pick(3)) {
        f->has_min = pick(2);
        f->has_max = !f->has_min || pick(2);
        f->price_min = (double)pick(1000) / 4;
        f->price_max = f->price_min + (double)pick(400) / 4;
    }
}

/* eval must set exactly the live docs that pass (and not `exclude`). */
static void check_agrees(svc_findex_t *x, doc_t *docs, uint64_t ndocs, const svc_filter_t *f,
                         uint64_t exclude)
{
    uint64_t *bits, nbits, want = 0, got = 0;
    cr_assert_eq(svc_findex_eval(x, f, exclude, 0, &bits, &nbits), 0);
    for (uint64_t d = 0; d < ndocs; d++) {
        int pass = docs[d].live && d != exclude && (!f || !f->active || svc_filter_pass(f, &docs[d].fd));
        int set = d < nbits && (bits[d / 64] >> (d % 64)) & 1;
        cr_assert_eq(set, pass, "doc %llu: bitmap %d, brute force %d", (unsigned long long)d, set, pass);
        want += (uint64_t)pass;
    }
    for (uint64_t w = 0; w < (nbits + 63) / 64; w++)
        got += (uint64_t)__builtin_popcountll(bits[w]);
    cr_assert_eq(got, want, "bits set beyond the documents");
    free(bits);
}

static void check_many(svc_findex_t *x, doc_t *docs, uint64_t ndocs)
{
    for (int i = 0; i < 300; i++) {
        svc_filter_t f;
        random_filter(&f);
        check_agrees(x, docs, ndocs, &f, pick(4) ? ndocs + 7 : pick(ndocs));
    }
    check_agrees(x, docs, ndocs, NULL, 3);
    uint64_t live = 0;
    for (uint64_t d = 0; d < ndocs; d++)
        live += (uint64_t)docs[d].live;
    cr_assert_eq(svc_findex_count(x), live);
}

Test(filter_index, agrees_with_brute_force_through_writes)
{
    /* docs[d] is the current version of doc id d; doc ids past NDOCS / 2 come from upserts
     * that moved a product to a new doc id. */
    doc_t *docs = calloc(NDOCS, sizeof *docs);
    svc_findex_t *x = svc_findex_new();
    cr_assert_not_null(x);
    uint64_t half = NDOCS / 2;
    for (uint64_t d = 0; d < half; d++) {
        random_doc(&docs[d], d);
        cr_assert_eq(svc_findex_add(x, &docs[d].fd), 0);
        docs[d].live = 1;
    }
    check_many(x, docs, NDOCS);
    /* Upserts in place: fields change, the doc id stays. */
    for (int i = 0; i < 1500; i++) {
        uint64_t d = pick(half);
        if (!docs[d].live)
            continue;
        doc_t nd;
        random_doc(&nd, d);
        cr_assert_eq(svc_findex_replace(x, &docs[d].fd, &nd.fd), 0);
        docs[d] = nd;
        docs[d].live = 1;
        fix(&docs[d]);
    }
    check_many(x, docs, NDOCS);
    /* Upserts to a new doc id, and deletes. */
    uint64_t next_doc = half;
    for (int i = 0; i < 1500 && next_doc < NDOCS; i++) {
        uint64_t d = pick(half);
        if (!docs[d].live)
            continue;
        if (pick(2)) {
            random_doc(&docs[next_doc], next_doc);
            cr_assert_eq(svc_findex_replace(x, &docs[d].fd, &docs[next_doc].fd), 0);
            docs[next_doc++].live = 1;
        } else {
            svc_findex_remove(x, &docs[d].fd);
        }
        docs[d].live = 0;
    }
    check_many(x, docs, NDOCS);
    /* Everything gone: every filter is empty; back again: the same answers as before. */
    for (uint64_t d = 0; d < NDOCS; d++)
        if (docs[d].live)
            svc_findex_remove(x, &docs[d].fd);
    for (uint64_t d = 0; d < NDOCS; d++)
        docs[d].live = 0;
    check_many(x, docs, NDOCS);
    for (uint64_t d = 0; d < next_doc; d += 3) {
        cr_assert_eq(svc_findex_add(x, &docs[d].fd), 0);
        docs[d].live = 1;
    }
    check_many(x, docs, NDOCS);
    svc_findex_free(x);
    free(docs);
}

/* A small catalogue whose answers are written out by hand. */
Test(filter_index, meaning_of_each_constraint)
{
    char *s1[] = {"m", "l"}, *s2[] = {"xl"};
    char *k1[] = {"material", "waterproof"}, *v1[] = {"cotton", "true"};
    char *k2[] = {"material"}, *v2[] = {"wool"};
    svc_fdoc_t d[] = {
        {.doc_id = 1,
         .category = "dam",
         .brand = "nem",
         .sizes = s1,
         .nsizes = 2,
         .attr_keys = k1,
         .attr_vals = v1,
         .nattrs = 2,
         .colours = 1u << LOOKALIKE_COLOUR_RED,
         .price = 100,
         .has_price = 1},
        {.doc_id = 2,
         .category = "dam",
         .sizes = s2,
         .nsizes = 1,
         .attr_keys = k2,
         .attr_vals = v2,
         .nattrs = 1,
         .colours = 1u << LOOKALIKE_COLOUR_BLUE,
         .price = 250,
         .has_price = 1},
        {.doc_id = 5, .category = "giay", .brand = "owen", .colours = 1u << LOOKALIKE_COLOUR_RED},
    };
    svc_findex_t *x = svc_findex_new();
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(svc_findex_add(x, &d[i]), 0);
    struct {
        svc_filter_t f;
        uint64_t want; /* bit mask over doc ids */
    } cases[] = {
        {{.active = 1, .category = {{"dam"}, 1}}, 1u << 1 | 1u << 2},
        {{.active = 1, .category = {{"dam", "giay"}, 2}}, 1u << 1 | 1u << 2 | 1u << 5},
        {{.active = 1, .category = {{"dam"}, 1}, .brand = {{"nem"}, 1}}, 1u << 1},
        {{.active = 1, .size = {{"l", "xl"}, 2}}, 1u << 1 | 1u << 2},
        {{.active = 1, .colours = 1u << LOOKALIKE_COLOUR_RED}, 1u << 1 | 1u << 5},
        {{.active = 1, .has_min = 1, .price_min = 100}, 1u << 1 | 1u << 2},
        {{.active = 1, .has_max = 1, .price_max = 100}, 1u << 1},
        {{.active = 1, .has_min = 1, .price_min = 101, .has_max = 1, .price_max = 250}, 1u << 2},
        {{.active = 1, .akey = {"material"}, .aval = {"cotton"}, .nattrs = 1}, 1u << 1},
        {{.active = 1, .akey = {"material", "waterproof"}, .aval = {"cotton", "false"}, .nattrs = 2}, 0},
        {{.active = 1, .category = {{"khan"}, 1}}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t *bits, nbits;
        cr_assert_eq(svc_findex_eval(x, &cases[i].f, UINT64_MAX, 0, &bits, &nbits), 0);
        cr_assert_eq(bits[0], cases[i].want, "case %zu: %#llx", i, (unsigned long long)bits[0]);
        for (size_t j = 0; j < 3; j++)
            cr_assert_eq(svc_filter_pass(&cases[i].f, &d[j]), (int)((cases[i].want >> d[j].doc_id) & 1),
                         "case %zu doc %llu", i, (unsigned long long)d[j].doc_id);
        free(bits);
    }
    /* No constraint: every doc but the excluded one, in a bitmap at least min_bits long. */
    uint64_t *bits, nbits;
    cr_assert_eq(svc_findex_eval(x, NULL, 2, 1000, &bits, &nbits), 0);
    cr_assert_geq(nbits, 1000);
    cr_assert_eq(bits[0], 1u << 1 | 1u << 5);
    free(bits);
    /* A value too long for any product matches nothing. */
    char *huge = calloc(4000, 1);
    memset(huge, 'a', 3999);
    svc_filter_t f = {.active = 1, .akey = {huge}, .aval = {"x"}, .nattrs = 1};
    cr_assert_eq(svc_findex_eval(x, &f, UINT64_MAX, 0, &bits, &nbits), 0);
    cr_assert_eq(bits[0], 0);
    free(bits);
    free(huge);
    svc_findex_free(x);
}
