/* Postings per (field, value), a live bitmap and a price index: a filter becomes bitmap ORs
 * and ANDs (design in filter_index.h). */
#include "lookalike/filter_index.h"
#include "lookalike/lookalike.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Newest price entries kept unsorted before they are merged into the sorted array. */
#define PRICE_TAIL_MAX 1024
/* A posting stays an array up to this many ids even in a small doc-id range. */
#define ARRAY_MIN 32

/* Keys are a field byte, then the value's bytes (an attribute: key, NUL, value). */
enum { F_CATEGORY = 'c', F_BRAND = 'b', F_SIZE = 's', F_COLOUR = 'o', F_ATTR = 'a' };

typedef struct {
    char *key;
    size_t len;
    uint64_t n;      /* ids in the posting */
    uint64_t *ids;   /* sorted, while an array (bits NULL) */
    uint64_t cap;    /* room in ids */
    uint64_t *bits;  /* once a bitmap: nwords words */
    uint64_t nwords; /* of bits */
} posting_t;

typedef struct {
    double price;
    uint64_t doc;
} price_ent_t;

struct svc_findex {
    posting_t *tab; /* open addressing by key; key NULL = empty (never removed) */
    size_t tab_cap, tab_used;
    uint64_t *live; /* bitmap of every doc in the index */
    uint64_t live_words;
    uint64_t count;
    uint64_t range; /* largest doc id ever added + 1 */
    double *price;  /* current price per doc id, NaN when none; range entries */
    uint64_t price_cap;
    price_ent_t *sorted; /* by price, then doc */
    size_t nsorted;
    price_ent_t tail[PRICE_TAIL_MAX];
    size_t ntail;
};

static uint64_t key_hash(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
    return h;
}

svc_findex_t *svc_findex_new(void)
{
    return calloc(1, sizeof(svc_findex_t));
}

void svc_findex_free(svc_findex_t *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->tab_cap; i++) {
        free(x->tab[i].key);
        free(x->tab[i].ids);
        free(x->tab[i].bits);
    }
    free(x->tab);
    free(x->live);
    free(x->price);
    free(x->sorted);
    free(x);
}

uint64_t svc_findex_count(const svc_findex_t *x)
{
    return x->count;
}

/* ---- keys ---- */

/* Longest key: the field byte, an attribute key, NUL, an attribute value (the longest values a
 * stored product can hold). A filter's longer key names nothing any product holds. */
#define KEY_MAX (1 + LOOKALIKE_ATTR_KEY_MAX + 1 + LOOKALIKE_ATTR_VALUE_MAX)

/* Builds a key into buf (KEY_MAX bytes), its length into *len; -1 when it would not fit. */
static int make_key(char *buf, int field, const char *a, const char *b, size_t *len)
{
    size_t la = strlen(a), lb = b ? strlen(b) + 1 : 0;
    if (la > KEY_MAX || lb > KEY_MAX || 1 + la + lb > KEY_MAX)
        return -1;
    *len = 1 + la + lb;
    buf[0] = (char)field;
    memcpy(buf + 1, a, la);
    if (b) {
        buf[1 + la] = 0;
        memcpy(buf + 2 + la, b, lb - 1);
    }
    return 0;
}

static posting_t *find(const svc_findex_t *x, const char *key, size_t len)
{
    if (!x->tab_cap)
        return NULL;
    size_t mask = x->tab_cap - 1;
    for (size_t i = key_hash(key, len) & mask;; i = (i + 1) & mask) {
        posting_t *p = &x->tab[i];
        if (!p->key)
            return NULL;
        if (p->len == len && memcmp(p->key, key, len) == 0)
            return p;
    }
}

static int tab_grow(svc_findex_t *x)
{
    size_t cap = x->tab_cap ? x->tab_cap * 2 : 64;
    posting_t *n = calloc(cap, sizeof *n);
    if (!n)
        return LOOKALIKE_ENOMEM;
    for (size_t i = 0; i < x->tab_cap; i++) {
        if (!x->tab[i].key)
            continue;
        size_t j = key_hash(x->tab[i].key, x->tab[i].len) & (cap - 1);
        while (n[j].key)
            j = (j + 1) & (cap - 1);
        n[j] = x->tab[i];
    }
    free(x->tab);
    x->tab = n;
    x->tab_cap = cap;
    return 0;
}

/* The posting of key, created empty when missing; NULL on ENOMEM. */
static posting_t *find_or_add(svc_findex_t *x, const char *key, size_t len)
{
    posting_t *p = find(x, key, len);
    if (p)
        return p;
    if ((x->tab_used + 1) * 2 > x->tab_cap && tab_grow(x) != 0)
        return NULL;
    char *k = malloc(len);
    if (!k)
        return NULL;
    memcpy(k, key, len);
    size_t mask = x->tab_cap - 1, i = key_hash(key, len) & mask;
    while (x->tab[i].key)
        i = (i + 1) & mask;
    x->tab[i] = (posting_t){.key = k, .len = len};
    x->tab_used++;
    return &x->tab[i];
}

/* ---- postings ---- */

static int words_grow(uint64_t **w, uint64_t *nwords, uint64_t doc)
{
    if (doc / 64 < *nwords)
        return 0;
    uint64_t n = *nwords ? *nwords : 16;
    while (n <= doc / 64)
        n *= 2;
    uint64_t *m = realloc(*w, n * sizeof *m);
    if (!m)
        return LOOKALIKE_ENOMEM;
    memset(m + *nwords, 0, (n - *nwords) * sizeof *m);
    *w = m;
    *nwords = n;
    return 0;
}

/* First index of ids[0..n) holding a value >= doc. */
static uint64_t lower_bound(const uint64_t *ids, uint64_t n, uint64_t doc)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < doc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Turns an array posting into a bitmap over doc ids up to `range`. */
static int to_bitmap(posting_t *p, uint64_t range)
{
    uint64_t *w = NULL, nw = 0;
    if (words_grow(&w, &nw, range ? range - 1 : 0) != 0)
        return LOOKALIKE_ENOMEM;
    for (uint64_t i = 0; i < p->n; i++)
        w[p->ids[i] / 64] |= 1ull << (p->ids[i] % 64);
    free(p->ids);
    p->ids = NULL;
    p->cap = 0;
    p->bits = w;
    p->nwords = nw;
    return 0;
}

/* Adds doc to the posting; a doc already in it stays once. */
static int posting_add(posting_t *p, uint64_t doc, uint64_t range)
{
    if (!p->bits) {
        uint64_t at = lower_bound(p->ids, p->n, doc);
        if (at < p->n && p->ids[at] == doc)
            return 0;
        uint64_t limit = range / 64 > ARRAY_MIN ? range / 64 : ARRAY_MIN;
        if (p->n + 1 > limit) {
            if (to_bitmap(p, range) != 0)
                return LOOKALIKE_ENOMEM;
        } else {
            if (p->n == p->cap) {
                uint64_t cap = p->cap ? p->cap * 2 : 4;
                uint64_t *ids = realloc(p->ids, cap * sizeof *ids);
                if (!ids)
                    return LOOKALIKE_ENOMEM;
                p->ids = ids;
                p->cap = cap;
            }
            memmove(p->ids + at + 1, p->ids + at, (p->n - at) * sizeof *p->ids);
            p->ids[at] = doc;
            p->n++;
            return 0;
        }
    }
    if (words_grow(&p->bits, &p->nwords, doc) != 0)
        return LOOKALIKE_ENOMEM;
    if (!((p->bits[doc / 64] >> (doc % 64)) & 1)) {
        p->bits[doc / 64] |= 1ull << (doc % 64);
        p->n++;
    }
    return 0;
}

static void posting_remove(posting_t *p, uint64_t doc)
{
    if (p->bits) {
        if (doc / 64 < p->nwords && (p->bits[doc / 64] >> (doc % 64)) & 1) {
            p->bits[doc / 64] &= ~(1ull << (doc % 64));
            p->n--;
        }
        return;
    }
    uint64_t at = lower_bound(p->ids, p->n, doc);
    if (at < p->n && p->ids[at] == doc) {
        memmove(p->ids + at, p->ids + at + 1, (p->n - at - 1) * sizeof *p->ids);
        p->n--;
    }
}

/* ORs a posting into the bitmap w of nwords words. */
static void posting_or(const posting_t *p, uint64_t *w, uint64_t nwords)
{
    if (p->bits) {
        uint64_t n = p->nwords < nwords ? p->nwords : nwords;
        for (uint64_t i = 0; i < n; i++)
            w[i] |= p->bits[i];
        return;
    }
    for (uint64_t i = 0; i < p->n; i++)
        if (p->ids[i] / 64 < nwords)
            w[p->ids[i] / 64] |= 1ull << (p->ids[i] % 64);
}

/* ---- prices ---- */

static int price_cmp(const void *a, const void *b)
{
    const price_ent_t *x = a, *y = b;
    if (x->price != y->price)
        return x->price < y->price ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

static int price_current(const svc_findex_t *x, const price_ent_t *e)
{
    return e->doc < x->price_cap && x->price[e->doc] == e->price;
}

/* Sorts the tail into the array, dropping entries that are no doc's current price. */
static int price_merge(svc_findex_t *x)
{
    price_ent_t *m = malloc((x->nsorted + x->ntail) * sizeof *m);
    if (!m)
        return LOOKALIKE_ENOMEM;
    qsort(x->tail, x->ntail, sizeof *x->tail, price_cmp);
    size_t i = 0, j = 0, n = 0;
    while (i < x->nsorted || j < x->ntail) {
        const price_ent_t *e = j == x->ntail ? &x->sorted[i++]
                               : i == x->nsorted || price_cmp(&x->tail[j], &x->sorted[i]) < 0
                                   ? &x->tail[j++]
                                   : &x->sorted[i++];
        if (price_current(x, e) && (!n || price_cmp(&m[n - 1], e) != 0))
            m[n++] = *e;
    }
    free(x->sorted);
    x->sorted = m;
    x->nsorted = n;
    x->ntail = 0;
    return 0;
}

static int price_reserve(svc_findex_t *x, uint64_t doc)
{
    if (doc < x->price_cap)
        return 0;
    uint64_t cap = x->price_cap ? x->price_cap : 1024;
    while (cap <= doc)
        cap *= 2;
    double *p = realloc(x->price, cap * sizeof *p);
    if (!p)
        return LOOKALIKE_ENOMEM;
    for (uint64_t i = x->price_cap; i < cap; i++)
        p[i] = NAN;
    x->price = p;
    x->price_cap = cap;
    return 0;
}

/* ---- add, replace, remove ---- */

/* Called with each key of a document and its doc id; non-zero stops the walk. */
typedef int (*key_fn)(svc_findex_t *x, const char *k, size_t len, uint64_t doc, void *ctx);

/* Calls fn on each key of d; returns the first non-zero return, else 0. */
static int each_key(svc_findex_t *x, const svc_fdoc_t *d, key_fn fn, void *ctx)
{
    char k[KEY_MAX];
    size_t len;
    int rc;
    /* Stored products are validated, so their keys always fit. */
#define KEY(field, a, b)                                                                                     \
    do {                                                                                                     \
        if (make_key(k, field, a, b, &len) != 0)                                                             \
            return LOOKALIKE_ETOOLARGE;                                                                      \
        if ((rc = fn(x, k, len, d->doc_id, ctx)) != 0)                                                       \
            return rc;                                                                                       \
    } while (0)
    if (d->category)
        KEY(F_CATEGORY, d->category, NULL);
    if (d->brand)
        KEY(F_BRAND, d->brand, NULL);
    for (size_t i = 0; i < d->nsizes; i++)
        KEY(F_SIZE, d->sizes[i], NULL);
    for (size_t i = 0; i < d->nattrs; i++)
        KEY(F_ATTR, d->attr_keys[i], d->attr_vals[i]);
    for (int c = 0; c < LOOKALIKE_COLOUR_COUNT; c++) {
        if (d->colours & (1u << c)) {
            char name[2] = {(char)('A' + c), 0};
            KEY(F_COLOUR, name, NULL);
        }
    }
#undef KEY
    return 0;
}

typedef struct {
    const char *k;
    size_t len;
} key_ref_t;

static int key_equal(svc_findex_t *x, const char *k, size_t len, uint64_t doc, void *ctx)
{
    (void)x;
    (void)doc;
    const key_ref_t *want = ctx;
    return len == want->len && memcmp(k, want->k, len) == 0;
}

/* 1 if d (may be NULL) holds key k. */
static int doc_has_key(svc_findex_t *x, const svc_fdoc_t *d, const char *k, size_t len)
{
    key_ref_t want = {k, len};
    return d && each_key(x, d, key_equal, &want) == 1;
}

static int key_add(svc_findex_t *x, const char *k, size_t len, uint64_t doc, void *ctx)
{
    (void)ctx;
    posting_t *p = find_or_add(x, k, len);
    return p ? posting_add(p, doc, x->range) : LOOKALIKE_ENOMEM;
}

/* Takes doc out of k's posting unless ctx, the same doc's other version (or NULL), holds k. */
static int key_remove(svc_findex_t *x, const char *k, size_t len, uint64_t doc, void *ctx)
{
    posting_t *p = find(x, k, len);
    if (p && !doc_has_key(x, ctx, k, len))
        posting_remove(p, doc);
    return 0;
}

static int is_live(const svc_findex_t *x, uint64_t doc)
{
    return doc / 64 < x->live_words && ((x->live[doc / 64] >> (doc % 64)) & 1);
}

int svc_findex_replace(svc_findex_t *x, const svc_fdoc_t *old, const svc_fdoc_t *d)
{
    uint64_t doc = d->doc_id, old_range = x->range;
    /* Room first, so that what follows fails only while adding keys, which is undone. */
    if (words_grow(&x->live, &x->live_words, doc) != 0 || (d->has_price && price_reserve(x, doc) != 0) ||
        (d->has_price && x->ntail == PRICE_TAIL_MAX && price_merge(x) != 0))
        return LOOKALIKE_ENOMEM;
    /* The same doc's other version: postings both hold keep it, the rest change hands. */
    const svc_fdoc_t *same = old && old->doc_id == doc ? old : NULL;
    if (doc >= x->range)
        x->range = doc + 1;
    int rc = each_key(x, d, key_add, NULL);
    if (rc != 0) {
        each_key(x, d, key_remove, (void *)same);
        x->range = old_range;
        return rc;
    }
    if (old)
        each_key(x, old, key_remove, (void *)(same ? d : NULL));
    if (old && !same) {
        x->live[old->doc_id / 64] &= ~(1ull << (old->doc_id % 64));
        x->count--;
        if (old->doc_id < x->price_cap)
            x->price[old->doc_id] = NAN;
    }
    if (!is_live(x, doc)) {
        x->live[doc / 64] |= 1ull << (doc % 64);
        x->count++;
    }
    if (doc < x->price_cap)
        x->price[doc] = d->has_price ? d->price : NAN;
    if (d->has_price)
        x->tail[x->ntail++] = (price_ent_t){d->price, doc};
    return 0;
}

int svc_findex_add(svc_findex_t *x, const svc_fdoc_t *d)
{
    return svc_findex_replace(x, NULL, d);
}

void svc_findex_remove(svc_findex_t *x, const svc_fdoc_t *d)
{
    uint64_t doc = d->doc_id;
    if (!is_live(x, doc))
        return;
    each_key(x, d, key_remove, NULL);
    x->live[doc / 64] &= ~(1ull << (doc % 64));
    x->count--;
    if (doc < x->price_cap)
        x->price[doc] = NAN;
}

/* ---- evaluation ---- */

static int in_list(const strlist_t *l, const char *v)
{
    for (size_t i = 0; v && i < l->n; i++)
        if (strcmp(l->v[i], v) == 0)
            return 1;
    return 0;
}

int svc_filter_pass(const svc_filter_t *f, const svc_fdoc_t *d)
{
    if (f->category.n && !in_list(&f->category, d->category))
        return 0;
    if (f->brand.n && !in_list(&f->brand, d->brand))
        return 0;
    if (f->size.n) {
        size_t i = 0;
        while (i < d->nsizes && !in_list(&f->size, d->sizes[i]))
            i++;
        if (i == d->nsizes)
            return 0;
    }
    if (f->colours && !(d->colours & f->colours))
        return 0;
    if ((f->has_min || f->has_max) &&
        (!d->has_price || (f->has_min && d->price < f->price_min) || (f->has_max && d->price > f->price_max)))
        return 0;
    for (size_t a = 0; a < f->nattrs; a++) {
        size_t i = 0;
        while (i < d->nattrs &&
               !(strcmp(d->attr_keys[i], f->akey[a]) == 0 && strcmp(d->attr_vals[i], f->aval[a]) == 0))
            i++;
        if (i == d->nattrs)
            return 0;
    }
    return 1;
}

/* The posting of (field, a[, b]), or NULL when no product holds it. */
static const posting_t *lookup(const svc_findex_t *x, int field, const char *a, const char *b)
{
    char k[KEY_MAX];
    size_t len;
    return make_key(k, field, a, b, &len) == 0 ? find(x, k, len) : NULL;
}

/* One group into g (nwords words, cleared here): the OR of the postings of its values. */
static void group_list(const svc_findex_t *x, int field, const strlist_t *l, uint64_t *g, uint64_t nwords)
{
    memset(g, 0, nwords * sizeof *g);
    for (size_t i = 0; i < l->n; i++) {
        const posting_t *p = lookup(x, field, l->v[i], NULL);
        if (p)
            posting_or(p, g, nwords);
    }
}

static void group_attr(const svc_findex_t *x, const char *key, const char *val, uint64_t *g, uint64_t nwords)
{
    memset(g, 0, nwords * sizeof *g);
    const posting_t *p = lookup(x, F_ATTR, key, val);
    if (p)
        posting_or(p, g, nwords);
}

static void group_price(const svc_findex_t *x, const svc_filter_t *f, uint64_t *g, uint64_t nwords)
{
    memset(g, 0, nwords * sizeof *g);
    double lo = f->has_min ? f->price_min : -INFINITY, hi = f->has_max ? f->price_max : INFINITY;
    size_t a = 0, b = x->nsorted;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (x->sorted[mid].price < lo)
            a = mid + 1;
        else
            b = mid;
    }
    for (size_t i = a; i < x->nsorted && x->sorted[i].price <= hi; i++)
        if (price_current(x, &x->sorted[i]))
            g[x->sorted[i].doc / 64] |= 1ull << (x->sorted[i].doc % 64);
    for (size_t i = 0; i < x->ntail; i++) {
        const price_ent_t *e = &x->tail[i];
        if (e->price >= lo && e->price <= hi && price_current(x, e))
            g[e->doc / 64] |= 1ull << (e->doc % 64);
    }
}

int svc_findex_eval(const svc_findex_t *x, const svc_filter_t *f, uint64_t exclude, uint64_t min_bits,
                    uint64_t **bits, uint64_t *nbits)
{
    uint64_t range = x->range > min_bits ? x->range : min_bits;
    uint64_t nwords = (range + 63) / 64 + 1;
    uint64_t *out = calloc(nwords, sizeof *out), *g = NULL;
    if (!out)
        return LOOKALIKE_ENOMEM;
    int groups = 0;
    /* Each group ORs into g, then ANDs into out (the first one is copied). */
#define GROUP(fill)                                                                                          \
    do {                                                                                                     \
        if (!g && !(g = malloc(nwords * sizeof *g))) {                                                       \
            free(out);                                                                                       \
            return LOOKALIKE_ENOMEM;                                                                         \
        }                                                                                                    \
        fill;                                                                                                \
        for (uint64_t w = 0; w < nwords; w++)                                                                \
            out[w] = groups ? out[w] & g[w] : g[w];                                                          \
        groups++;                                                                                            \
    } while (0)
    if (f && f->active) {
        if (f->category.n)
            GROUP(group_list(x, F_CATEGORY, &f->category, g, nwords));
        if (f->brand.n)
            GROUP(group_list(x, F_BRAND, &f->brand, g, nwords));
        if (f->size.n)
            GROUP(group_list(x, F_SIZE, &f->size, g, nwords));
        if (f->colours) {
            strlist_t l = {.n = 0};
            char names[LOOKALIKE_COLOUR_COUNT][2];
            for (int c = 0; c < LOOKALIKE_COLOUR_COUNT; c++) {
                if (!(f->colours & (1u << c)))
                    continue;
                names[c][0] = (char)('A' + c);
                names[c][1] = 0;
                l.v[l.n++] = names[c];
            }
            GROUP(group_list(x, F_COLOUR, &l, g, nwords));
        }
        for (size_t a = 0; a < f->nattrs; a++)
            GROUP(group_attr(x, f->akey[a], f->aval[a], g, nwords));
        if (f->has_min || f->has_max)
            GROUP(group_price(x, f, g, nwords));
    }
#undef GROUP
    free(g);
    /* x->live is NULL while the index has held nothing (a node whose shards are empty). */
    if (!groups && x->live)
        memcpy(out, x->live, (x->live_words < nwords ? x->live_words : nwords) * sizeof *out);
    if (exclude / 64 < nwords)
        out[exclude / 64] &= ~(1ull << (exclude % 64));
    *bits = out;
    *nbits = range;
    return 0;
}
