/* In-memory BM25F text index: a term dictionary (hash for lookup, sorted array for prefix
 * ranges), one posting list per term sorted by document slot, a forward list of terms per
 * document so removal touches only that document's postings, and a slot table reused through
 * a free list. A pthread rwlock lets one writer and many readers share it. */
#include "lookalike/lookalike.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY_SLOT UINT32_MAX
#define MAX_QUERY_TERMS LOOKALIKE_BM25_QUERY_WORDS
#define MAX_EXPANSION_CAP 256
/* An expansion that is not the word itself counts for a little less, so "thun" ranks the
 * documents that say "thun" above those that only say "thung". */
#define PREFIX_DISCOUNT 0.8f

typedef struct {
    uint32_t doc;
    uint16_t tf[LOOKALIKE_FIELD_COUNT];
} posting_t;

typedef struct {
    char *s;
    uint32_t len;
    uint32_t df; /* live documents holding the term; the term itself stays once created */
    posting_t *post;
    uint32_t npost, cappost;
} term_t;

typedef struct {
    uint64_t id;
    uint32_t len[LOOKALIKE_FIELD_COUNT];
    uint32_t *terms; /* distinct term ids, to undo the postings on removal */
    uint32_t nterms;
    int alive;
} doc_t;

struct lookalike_bm25 {
    pthread_rwlock_t lock;
    lookalike_bm25_params_t p;

    term_t *terms;
    uint32_t nterms, capterms;
    uint32_t *term_hash; /* open addressing, term ids, EMPTY_SLOT when free */
    uint32_t term_hash_cap;
    uint32_t *sorted; /* term ids in byte order of their strings */

    doc_t *docs;
    uint32_t ndocs_slots, capdocs;
    uint32_t *free_slots;
    uint32_t nfree, capfree;
    uint32_t *id_hash; /* open addressing on document id, slot numbers */
    uint32_t id_hash_cap;
    uint32_t alive;
    uint64_t total_len[LOOKALIKE_FIELD_COUNT];
};

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

void lookalike_bm25_params_default(lookalike_bm25_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->weights[LOOKALIKE_FIELD_TITLE] = 3.0f;
    p->weights[LOOKALIKE_FIELD_DESCRIPTION] = 1.0f;
    p->weights[LOOKALIKE_FIELD_BRAND] = 2.0f;
    p->weights[LOOKALIKE_FIELD_CATEGORY] = 2.0f;
    p->weights[LOOKALIKE_FIELD_ATTRS] = 1.0f;
    p->k1 = 1.2f;
    p->b = 0.75f;
    p->max_expansion = 32;
}

lookalike_bm25_t *lookalike_bm25_new(const lookalike_bm25_params_t *params, char *err, size_t errlen)
{
    lookalike_bm25_params_t p;
    if (params)
        p = *params;
    else
        lookalike_bm25_params_default(&p);
    for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++)
        if (!(p.weights[f] >= 0.0f && p.weights[f] <= 1000.0f)) {
            set_err(err, errlen, "bm25: field weights must be in [0, 1000]");
            return NULL;
        }
    if (!(p.k1 >= 0.0f && p.k1 <= 100.0f) || !(p.b >= 0.0f && p.b <= 1.0f)) {
        set_err(err, errlen, "bm25: k1 must be in [0, 100] and b in [0, 1]");
        return NULL;
    }
    if (p.max_expansion > MAX_EXPANSION_CAP) {
        set_err(err, errlen, "bm25: max_expansion too large (at most 256)");
        return NULL;
    }
    lookalike_bm25_t *ix = calloc(1, sizeof *ix);
    if (!ix)
        goto fail;
    ix->p = p;
    ix->term_hash_cap = 1024;
    ix->term_hash = malloc(ix->term_hash_cap * sizeof *ix->term_hash);
    ix->id_hash_cap = 1024;
    ix->id_hash = malloc(ix->id_hash_cap * sizeof *ix->id_hash);
    if (!ix->term_hash || !ix->id_hash)
        goto fail;
    memset(ix->term_hash, 0xFF, ix->term_hash_cap * sizeof *ix->term_hash);
    memset(ix->id_hash, 0xFF, ix->id_hash_cap * sizeof *ix->id_hash);
    if (pthread_rwlock_init(&ix->lock, NULL) != 0)
        goto fail;
    return ix;
fail:
    if (ix) {
        free(ix->term_hash);
        free(ix->id_hash);
        free(ix);
    }
    set_err(err, errlen, "bm25: out of memory");
    return NULL;
}

void lookalike_bm25_free(lookalike_bm25_t *ix)
{
    if (!ix)
        return;
    for (uint32_t i = 0; i < ix->nterms; i++) {
        free(ix->terms[i].s);
        free(ix->terms[i].post);
    }
    for (uint32_t i = 0; i < ix->ndocs_slots; i++)
        free(ix->docs[i].terms);
    free(ix->terms);
    free(ix->term_hash);
    free(ix->sorted);
    free(ix->docs);
    free(ix->free_slots);
    free(ix->id_hash);
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

/* ---- term dictionary ---- */

static uint32_t term_lookup(const lookalike_bm25_t *ix, const char *s, size_t n)
{
    uint32_t mask = ix->term_hash_cap - 1;
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        uint32_t t = ix->term_hash[i];
        if (t == EMPTY_SLOT)
            return EMPTY_SLOT;
        if (ix->terms[t].len == n && memcmp(ix->terms[t].s, s, n) == 0)
            return t;
    }
}

static void term_hash_place(uint32_t *tab, uint32_t cap, const term_t *terms, uint32_t t)
{
    uint32_t mask = cap - 1;
    uint32_t i = (uint32_t)hash_bytes(terms[t].s, terms[t].len) & mask;
    while (tab[i] != EMPTY_SLOT)
        i = (i + 1) & mask;
    tab[i] = t;
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

/* First position in the sorted dictionary whose term is >= (s, n). */
static uint32_t sorted_lower_bound(const lookalike_bm25_t *ix, const char *s, size_t n)
{
    uint32_t lo = 0, hi = ix->nterms;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const term_t *t = &ix->terms[ix->sorted[mid]];
        if (cmp_bytes(t->s, t->len, s, n) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t term_intern(lookalike_bm25_t *ix, const char *s, size_t n)
{
    uint32_t t = term_lookup(ix, s, n);
    if (t != EMPTY_SLOT)
        return t;
    if (ix->nterms == UINT32_MAX - 1)
        return EMPTY_SLOT;
    if ((uint64_t)(ix->nterms + 1) * 2 > ix->term_hash_cap) {
        uint32_t cap = ix->term_hash_cap * 2;
        uint32_t *tab = malloc(cap * sizeof *tab);
        if (!tab)
            return EMPTY_SLOT;
        memset(tab, 0xFF, cap * sizeof *tab);
        for (uint32_t i = 0; i < ix->nterms; i++)
            term_hash_place(tab, cap, ix->terms, i);
        free(ix->term_hash);
        ix->term_hash = tab;
        ix->term_hash_cap = cap;
    }
    if (ix->nterms == ix->capterms) {
        uint32_t cap = ix->capterms ? ix->capterms * 2 : 256;
        term_t *nt = realloc(ix->terms, cap * sizeof *nt);
        if (!nt)
            return EMPTY_SLOT;
        ix->terms = nt;
        uint32_t *ns = realloc(ix->sorted, cap * sizeof *ns);
        if (!ns)
            return EMPTY_SLOT;
        ix->sorted = ns;
        ix->capterms = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return EMPTY_SLOT;
    memcpy(copy, s, n);
    copy[n] = '\0';
    t = ix->nterms;
    ix->terms[t] = (term_t){.s = copy, .len = (uint32_t)n};
    uint32_t at = sorted_lower_bound(ix, s, n);
    memmove(ix->sorted + at + 1, ix->sorted + at, (ix->nterms - at) * sizeof *ix->sorted);
    ix->sorted[at] = t;
    ix->nterms++;
    term_hash_place(ix->term_hash, ix->term_hash_cap, ix->terms, t);
    return t;
}

/* ---- document id map (linear probing, backward-shift deletion) ---- */

static uint32_t id_find(const lookalike_bm25_t *ix, uint64_t id)
{
    uint32_t mask = ix->id_hash_cap - 1;
    for (uint32_t i = (uint32_t)hash_u64(id) & mask;; i = (i + 1) & mask) {
        uint32_t s = ix->id_hash[i];
        if (s == EMPTY_SLOT)
            return EMPTY_SLOT;
        if (ix->docs[s].id == id)
            return s;
    }
}

static void id_place(uint32_t *tab, uint32_t cap, const doc_t *docs, uint32_t slot)
{
    uint32_t mask = cap - 1;
    uint32_t i = (uint32_t)hash_u64(docs[slot].id) & mask;
    while (tab[i] != EMPTY_SLOT)
        i = (i + 1) & mask;
    tab[i] = slot;
}

/* Grows the id map ahead of an insertion, so that the insertion itself cannot fail. */
static int id_reserve(lookalike_bm25_t *ix)
{
    if ((uint64_t)(ix->alive + 1) * 2 <= ix->id_hash_cap)
        return 0;
    uint32_t cap = ix->id_hash_cap * 2;
    uint32_t *tab = malloc(cap * sizeof *tab);
    if (!tab)
        return -1;
    memset(tab, 0xFF, cap * sizeof *tab);
    for (uint32_t i = 0; i < ix->id_hash_cap; i++)
        if (ix->id_hash[i] != EMPTY_SLOT)
            id_place(tab, cap, ix->docs, ix->id_hash[i]);
    free(ix->id_hash);
    ix->id_hash = tab;
    ix->id_hash_cap = cap;
    return 0;
}

static void id_erase(lookalike_bm25_t *ix, uint64_t id)
{
    uint32_t mask = ix->id_hash_cap - 1;
    uint32_t i = (uint32_t)hash_u64(id) & mask;
    while (ix->id_hash[i] != EMPTY_SLOT && ix->docs[ix->id_hash[i]].id != id)
        i = (i + 1) & mask;
    if (ix->id_hash[i] == EMPTY_SLOT)
        return;
    ix->id_hash[i] = EMPTY_SLOT;
    /* Pull later members of the probe run back so lookups never stop at the new hole. */
    for (uint32_t j = (i + 1) & mask; ix->id_hash[j] != EMPTY_SLOT; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)hash_u64(ix->docs[ix->id_hash[j]].id) & mask;
        int movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            ix->id_hash[i] = ix->id_hash[j];
            ix->id_hash[j] = EMPTY_SLOT;
            i = j;
        }
    }
}

/* ---- postings ---- */

static uint32_t posting_find(const term_t *t, uint32_t doc)
{
    uint32_t lo = 0, hi = t->npost;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->post[mid].doc < doc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void posting_erase(term_t *t, uint32_t slot)
{
    uint32_t at = posting_find(t, slot);
    if (at < t->npost && t->post[at].doc == slot) {
        memmove(t->post + at, t->post + at + 1, (t->npost - at - 1) * sizeof *t->post);
        t->npost--;
        t->df--;
    }
}

static void remove_slot(lookalike_bm25_t *ix, uint32_t slot)
{
    doc_t *d = &ix->docs[slot];
    for (uint32_t i = 0; i < d->nterms; i++)
        posting_erase(&ix->terms[d->terms[i]], slot);
    for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++)
        ix->total_len[f] -= d->len[f];
    id_erase(ix, d->id);
    free(d->terms);
    d->terms = NULL;
    d->nterms = 0;
    d->alive = 0;
    ix->alive--;
    ix->free_slots[ix->nfree++] = slot;
}

typedef struct {
    uint32_t term;
    uint8_t field;
} occ_t;

typedef struct {
    lookalike_bm25_t *ix;
    occ_t *occ;
    uint32_t n, cap;
    uint8_t field;
    int oom;
} collect_t;

static int collect_token(const char *tok, size_t len, uint32_t index, void *ud)
{
    (void)index;
    collect_t *c = ud;
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 64;
        occ_t *n = realloc(c->occ, cap * sizeof *n);
        if (!n) {
            c->oom = 1;
            return -1;
        }
        c->occ = n;
        c->cap = cap;
    }
    uint32_t t = term_intern(c->ix, tok, len);
    if (t == EMPTY_SLOT) {
        c->oom = 1;
        return -1;
    }
    c->occ[c->n++] = (occ_t){.term = t, .field = c->field};
    return 0;
}

static int cmp_occ(const void *a, const void *b)
{
    const occ_t *x = a, *y = b;
    return x->term < y->term ? -1 : x->term > y->term ? 1 : 0;
}

static const char *const field_names[LOOKALIKE_FIELD_COUNT] = {"title", "description", "brand", "category",
                                                               "attributes"};

/* Reserves every allocation the insertion needs so that, once postings start changing, only
 * an out-of-memory in a posting list can fail (and that leaves the index consistent). */
static int ensure_doc_capacity(lookalike_bm25_t *ix)
{
    if (ix->nfree == 0 && ix->ndocs_slots == ix->capdocs) {
        if (ix->capdocs >= UINT32_MAX / 2)
            return -1;
        uint32_t cap = ix->capdocs ? ix->capdocs * 2 : 256;
        doc_t *nd = realloc(ix->docs, cap * sizeof *nd);
        if (!nd)
            return -1;
        ix->docs = nd;
        uint32_t *nf = realloc(ix->free_slots, cap * sizeof *nf);
        if (!nf)
            return -1;
        ix->free_slots = nf;
        ix->capdocs = cap;
    }
    return 0;
}

static int posting_insert(term_t *t, uint32_t slot, const uint16_t tf[LOOKALIKE_FIELD_COUNT])
{
    if (t->npost == t->cappost) {
        uint32_t cap = t->cappost ? t->cappost * 2 : 4;
        posting_t *np = realloc(t->post, cap * sizeof *np);
        if (!np)
            return -1;
        t->post = np;
        t->cappost = cap;
    }
    uint32_t at = posting_find(t, slot);
    memmove(t->post + at + 1, t->post + at, (t->npost - at) * sizeof *t->post);
    t->post[at].doc = slot;
    memcpy(t->post[at].tf, tf, sizeof t->post[at].tf);
    t->npost++;
    t->df++;
    return 0;
}

int lookalike_bm25_put(lookalike_bm25_t *ix, uint64_t id, const char *const fields[LOOKALIKE_FIELD_COUNT],
                       char *err, size_t errlen)
{
    int rc = LOOKALIKE_ENOMEM;
    uint32_t *uterms = NULL;
    collect_t c = {.ix = ix};
    for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++) {
        if (fields[f] && strlen(fields[f]) > LOOKALIKE_BM25_FIELD_MAX) {
            if (err && errlen)
                snprintf(err, errlen, "bm25: field %s too large (over %d bytes)", field_names[f],
                         LOOKALIKE_BM25_FIELD_MAX);
            return LOOKALIKE_ETOOLARGE;
        }
    }
    pthread_rwlock_wrlock(&ix->lock);
    uint32_t len[LOOKALIKE_FIELD_COUNT] = {0};
    for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++) {
        if (!fields[f])
            continue;
        uint32_t before = c.n;
        c.field = (uint8_t)f;
        char msg[96];
        int trc =
            lookalike_text_tokenize(fields[f], strlen(fields[f]), NULL, collect_token, &c, msg, sizeof msg);
        if (trc != 0) {
            if (c.oom) {
                set_err(err, errlen, "bm25: out of memory");
                rc = LOOKALIKE_ENOMEM;
            } else {
                if (err && errlen)
                    snprintf(err, errlen, "bm25: field %s: %s", field_names[f], msg);
                rc = trc;
            }
            goto fail;
        }
        len[f] = c.n - before;
    }
    qsort(c.occ, c.n, sizeof *c.occ, cmp_occ);
    uint32_t nu = 0;
    uterms = malloc((c.n ? c.n : 1) * sizeof *uterms);
    if (!uterms || ensure_doc_capacity(ix) != 0 || id_reserve(ix) != 0)
        goto fail_oom;
    /* The new postings go in under a fresh slot first, so that running out of memory half way
     * leaves the previous version of the document untouched. */
    uint32_t slot = ix->nfree ? ix->free_slots[--ix->nfree] : ix->ndocs_slots++;
    doc_t *d = &ix->docs[slot];
    *d = (doc_t){.id = id};
    memcpy(d->len, len, sizeof len);
    for (uint32_t i = 0; i < c.n;) {
        uint16_t tf[LOOKALIKE_FIELD_COUNT] = {0};
        uint32_t t = c.occ[i].term;
        for (; i < c.n && c.occ[i].term == t; i++)
            if (tf[c.occ[i].field] < UINT16_MAX)
                tf[c.occ[i].field]++;
        if (posting_insert(&ix->terms[t], slot, tf) != 0) {
            for (uint32_t j = 0; j < nu; j++)
                posting_erase(&ix->terms[uterms[j]], slot);
            ix->free_slots[ix->nfree++] = slot;
            goto fail_oom;
        }
        uterms[nu++] = t;
    }
    uint32_t old = id_find(ix, id);
    if (old != EMPTY_SLOT)
        remove_slot(ix, old);
    d->terms = uterms;
    d->nterms = nu;
    d->alive = 1;
    uterms = NULL;
    ix->alive++;
    id_place(ix->id_hash, ix->id_hash_cap, ix->docs, slot);
    for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++)
        ix->total_len[f] += len[f];
    pthread_rwlock_unlock(&ix->lock);
    free(c.occ);
    return 0;
fail_oom:
    set_err(err, errlen, "bm25: out of memory");
    rc = LOOKALIKE_ENOMEM;
fail:
    pthread_rwlock_unlock(&ix->lock);
    free(uterms);
    free(c.occ);
    return rc;
}

int lookalike_bm25_remove(lookalike_bm25_t *ix, uint64_t id)
{
    pthread_rwlock_wrlock(&ix->lock);
    uint32_t slot = id_find(ix, id);
    if (slot != EMPTY_SLOT)
        remove_slot(ix, slot);
    pthread_rwlock_unlock(&ix->lock);
    return slot == EMPTY_SLOT ? LOOKALIKE_ENOTFOUND : 0;
}

size_t lookalike_bm25_count(lookalike_bm25_t *ix)
{
    pthread_rwlock_rdlock(&ix->lock);
    size_t n = ix->alive;
    pthread_rwlock_unlock(&ix->lock);
    return n;
}

/* ---- search ---- */

typedef struct {
    char tok[MAX_QUERY_TERMS][LOOKALIKE_TOKEN_MAX + 1];
    uint32_t len[MAX_QUERY_TERMS];
    uint32_t n;
} query_t;

static int query_token(const char *tok, size_t len, uint32_t index, void *ud)
{
    (void)index;
    query_t *q = ud;
    if (q->n == MAX_QUERY_TERMS)
        return 1;
    memcpy(q->tok[q->n], tok, len);
    q->tok[q->n][len] = '\0';
    q->len[q->n++] = (uint32_t)len;
    return 0;
}

static float idf_of(uint64_t n_docs, uint64_t df)
{
    double n = (double)n_docs;
    if (df > n_docs)
        df = n_docs;
    return (float)log(1.0 + (n - (double)df + 0.5) / ((double)df + 0.5));
}

/* Adds every posting of one term to acc; with max_mode the document keeps its best score over
 * the terms of one group (the expansions of the last word) instead of their sum. avg holds the
 * mean field lengths the scores are normalised with. */
static void score_term(const lookalike_bm25_t *ix, uint32_t tid, float idf, float weight,
                       const float avg[LOOKALIKE_FIELD_COUNT], float *acc, uint32_t *touched,
                       uint32_t *ntouched, int max_mode)
{
    const term_t *t = &ix->terms[tid];
    if (t->df == 0)
        return;
    float k1 = ix->p.k1, b = ix->p.b;
    for (uint32_t i = 0; i < t->npost; i++) {
        const posting_t *pp = &t->post[i];
        const doc_t *d = &ix->docs[pp->doc];
        float tfw = 0.0f;
        for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++) {
            if (!pp->tf[f] || avg[f] <= 0.0f)
                continue;
            float norm = 1.0f - b + b * (float)d->len[f] / avg[f];
            tfw += ix->p.weights[f] * (float)pp->tf[f] / norm;
        }
        if (tfw <= 0.0f)
            continue;
        float s = weight * idf * tfw * (k1 + 1.0f) / (k1 + tfw);
        if (acc[pp->doc] == 0.0f)
            touched[(*ntouched)++] = pp->doc;
        if (max_mode) {
            if (s > acc[pp->doc])
                acc[pp->doc] = s;
        } else {
            acc[pp->doc] += s;
        }
    }
}

/* Orders hits best first: higher score, then smaller id, so equal scores rank stably. */
static int hit_better(const lookalike_hit_t *a, const lookalike_hit_t *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return a->id < b->id;
}

void lookalike_hits_push(lookalike_hit_t *heap, size_t *n, size_t k, lookalike_hit_t h)
{
    /* A min-heap on "better", so the worst kept hit sits at the root. */
    if (*n < k) {
        size_t i = (*n)++;
        heap[i] = h;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!hit_better(&heap[p], &heap[i]))
                break;
            lookalike_hit_t tmp = heap[p];
            heap[p] = heap[i];
            heap[i] = tmp;
            i = p;
        }
        return;
    }
    if (k == 0 || !hit_better(&h, &heap[0]))
        return;
    heap[0] = h;
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && hit_better(&heap[m], &heap[l]))
            m = l;
        if (r < *n && hit_better(&heap[m], &heap[r]))
            m = r;
        if (m == i)
            break;
        lookalike_hit_t tmp = heap[m];
        heap[m] = heap[i];
        heap[i] = tmp;
        i = m;
    }
}

static int cmp_hits(const void *a, const void *b)
{
    const lookalike_hit_t *x = a, *y = b;
    if (hit_better(x, y))
        return -1;
    if (hit_better(y, x))
        return 1;
    return 0;
}

void lookalike_hits_sort(lookalike_hit_t *hits, size_t n)
{
    qsort(hits, n, sizeof *hits, cmp_hits);
}

int lookalike_filter_pass(const lookalike_filter_t *f, uint64_t id)
{
    if (!f)
        return 1;
    if (f->bitmap)
        return id < f->bitmap_bits && (f->bitmap[id / 64] >> (id % 64) & 1);
    return f->fn ? f->fn(id, f->ctx) != 0 : 1;
}

/* ---- collection-wide statistics and search ---- */

void lookalike_bm25_stats_init(lookalike_bm25_stats_t *st)
{
    memset(st, 0, sizeof *st);
}

void lookalike_bm25_stats_release(lookalike_bm25_stats_t *st)
{
    free(st->prefix);
    memset(st, 0, sizeof *st);
}

/* Orders completions best first: higher df, then smaller bytes. */
static int cmp_term_df(const void *a, const void *b)
{
    const lookalike_bm25_term_df_t *x = a, *y = b;
    if (x->df != y->df)
        return x->df > y->df ? -1 : 1;
    return strcmp(x->term, y->term);
}

static int tokenize_query(const char *query, query_t *q, char *err, size_t errlen)
{
    size_t qlen = strlen(query);
    if (qlen > LOOKALIKE_QUERY_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "bm25: query too large (over %d bytes)", LOOKALIKE_QUERY_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    memset(q, 0, sizeof *q);
    return lookalike_text_tokenize(query, qlen, NULL, query_token, q, err, errlen);
}

/* 1 if term a ranks below term b as a completion: lower df, or the same df and later bytes. */
static int term_worse(const lookalike_bm25_t *ix, uint32_t a, uint32_t b)
{
    const term_t *x = &ix->terms[a], *y = &ix->terms[b];
    if (x->df != y->df)
        return x->df < y->df;
    return cmp_bytes(x->s, x->len, y->s, y->len) > 0;
}

/* Restores the heap (worst completion at the root) below position at. */
static void heap_sift_down(const lookalike_bm25_t *ix, uint32_t *heap, size_t n, size_t at)
{
    for (;;) {
        size_t l = 2 * at + 1, r = l + 1, m = at;
        if (l < n && term_worse(ix, heap[l], heap[m]))
            m = l;
        if (r < n && term_worse(ix, heap[r], heap[m]))
            m = r;
        if (m == at)
            return;
        uint32_t tmp = heap[m];
        heap[m] = heap[at];
        heap[at] = tmp;
        at = m;
    }
}

/* The completions of (s, n) other than itself, at most LOOKALIKE_BM25_PREFIX_MAX, best first
 * (higher df, then smaller bytes). Caller holds the read lock. */
static int collect_prefix(const lookalike_bm25_t *ix, const char *s, size_t n, lookalike_bm25_stats_t *out)
{
    uint32_t *heap = malloc(LOOKALIKE_BM25_PREFIX_MAX * sizeof *heap);
    size_t nh = 0;
    if (!heap)
        return LOOKALIKE_ENOMEM;
    for (uint32_t i = sorted_lower_bound(ix, s, n); i < ix->nterms; i++) {
        uint32_t tid = ix->sorted[i];
        const term_t *t = &ix->terms[tid];
        if (t->len < n || memcmp(t->s, s, n) != 0)
            break;
        if (t->len == n || t->df == 0)
            continue;
        if (nh < LOOKALIKE_BM25_PREFIX_MAX) {
            size_t at = nh++;
            heap[at] = tid;
            while (at > 0 && term_worse(ix, heap[at], heap[(at - 1) / 2])) {
                uint32_t tmp = heap[at];
                heap[at] = heap[(at - 1) / 2];
                heap[(at - 1) / 2] = tmp;
                at = (at - 1) / 2;
            }
        } else if (term_worse(ix, heap[0], tid)) {
            heap[0] = tid;
            heap_sift_down(ix, heap, nh, 0);
        }
    }
    if (nh && !(out->prefix = calloc(nh, sizeof *out->prefix))) {
        free(heap);
        return LOOKALIKE_ENOMEM;
    }
    for (size_t i = 0; i < nh; i++) {
        const term_t *t = &ix->terms[heap[i]];
        memcpy(out->prefix[i].term, t->s, t->len);
        out->prefix[i].df = t->df;
    }
    out->nprefix = nh;
    free(heap);
    if (out->nprefix > 1)
        qsort(out->prefix, out->nprefix, sizeof *out->prefix, cmp_term_df);
    return 0;
}

int lookalike_bm25_stats(lookalike_bm25_t *ix, const char *query, lookalike_bm25_stats_t *out, char *err,
                         size_t errlen)
{
    lookalike_bm25_stats_init(out);
    query_t *q = malloc(sizeof *q);
    if (!q) {
        set_err(err, errlen, "bm25: out of memory");
        return LOOKALIKE_ENOMEM;
    }
    int rc = tokenize_query(query, q, err, errlen);
    if (rc != 0) {
        free(q);
        return rc;
    }
    pthread_rwlock_rdlock(&ix->lock);
    out->docs = ix->alive;
    memcpy(out->total_len, ix->total_len, sizeof out->total_len);
    out->nwords = q->n;
    for (uint32_t i = 0; i < q->n; i++) {
        uint32_t tid = term_lookup(ix, q->tok[i], q->len[i]);
        out->df[i] = tid == EMPTY_SLOT ? 0 : ix->terms[tid].df;
    }
    if (q->n)
        rc = collect_prefix(ix, q->tok[q->n - 1], q->len[q->n - 1], out);
    pthread_rwlock_unlock(&ix->lock);
    free(q);
    if (rc != 0) {
        lookalike_bm25_stats_release(out);
        set_err(err, errlen, "bm25: out of memory");
    }
    return rc;
}

static int cmp_term_bytes(const void *a, const void *b)
{
    const lookalike_bm25_term_df_t *x = a, *y = b;
    return strcmp(x->term, y->term);
}

int lookalike_bm25_stats_add(lookalike_bm25_stats_t *into, const lookalike_bm25_stats_t *from, char *err,
                             size_t errlen)
{
    if (into->nwords == 0)
        into->nwords = from->nwords;
    if (into->nwords != from->nwords || from->nwords > LOOKALIKE_BM25_QUERY_WORDS) {
        set_err(err, errlen, "bm25: statistics of different queries");
        return LOOKALIKE_EINVAL;
    }
    size_t n = into->nprefix + from->nprefix;
    lookalike_bm25_term_df_t *all = n ? malloc(n * sizeof *all) : NULL;
    if (n && !all) {
        set_err(err, errlen, "bm25: out of memory");
        return LOOKALIKE_ENOMEM;
    }
    if (into->nprefix)
        memcpy(all, into->prefix, into->nprefix * sizeof *all);
    if (from->nprefix)
        memcpy(all + into->nprefix, from->prefix, from->nprefix * sizeof *all);
    size_t m = 0;
    if (n) {
        qsort(all, n, sizeof *all, cmp_term_bytes);
        for (size_t i = 0; i < n; i++) {
            if (m && strcmp(all[m - 1].term, all[i].term) == 0)
                all[m - 1].df += all[i].df;
            else
                all[m++] = all[i];
        }
        qsort(all, m, sizeof *all, cmp_term_df);
    }
    free(into->prefix);
    into->prefix = all;
    into->nprefix = m < LOOKALIKE_BM25_PREFIX_MAX ? m : LOOKALIKE_BM25_PREFIX_MAX;
    into->docs += from->docs;
    for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++)
        into->total_len[f] += from->total_len[f];
    for (uint32_t i = 0; i < into->nwords; i++)
        into->df[i] += from->df[i];
    return 0;
}

/* What a search scores with: the collection's figures and the expansions of the last word. */
typedef struct {
    uint64_t docs;
    float avg[LOOKALIKE_FIELD_COUNT]; /* mean field lengths */
    const uint64_t *df;               /* per query word */
    uint32_t exp[MAX_EXPANSION_CAP + 1];
    float exp_weight[MAX_EXPANSION_CAP + 1];
    uint32_t nexp;     /* expansions found in this index (EMPTY_SLOT ones left out) */
    uint64_t group_df; /* the df every expansion's idf is computed from */
} figures_t;

static void figures_avg(figures_t *f, uint64_t docs, const uint64_t total_len[LOOKALIKE_FIELD_COUNT])
{
    f->docs = docs;
    for (int i = 0; i < LOOKALIKE_FIELD_COUNT; i++)
        f->avg[i] = docs ? (float)((double)total_len[i] / (double)docs) : 0.0f;
}

/* Scores query q with figures f into out (caller holds the read lock). */
static int score_query(lookalike_bm25_t *ix, const query_t *q, const figures_t *f, size_t k,
                       const lookalike_filter_t *filter, lookalike_hit_t *out, size_t *nout)
{
    int rc = LOOKALIKE_ENOMEM;
    uint32_t nslots = ix->ndocs_slots ? ix->ndocs_slots : 1;
    float *acc = calloc(nslots, sizeof *acc), *last = calloc(nslots, sizeof *last);
    uint32_t *touched = malloc(nslots * sizeof *touched),
             *touched_last = malloc(nslots * sizeof *touched_last);
    lookalike_hit_t *heap = malloc(k * sizeof *heap);
    if (!acc || !last || !touched || !touched_last || !heap)
        goto out;
    uint32_t ntouched = 0, nlast = 0;
    for (uint32_t i = 0; i + 1 < q->n; i++) {
        int dup = 0;
        for (uint32_t j = 0; j < i && !dup; j++)
            dup = q->len[j] == q->len[i] && memcmp(q->tok[j], q->tok[i], q->len[i]) == 0;
        uint32_t tid = dup ? EMPTY_SLOT : term_lookup(ix, q->tok[i], q->len[i]);
        if (tid != EMPTY_SLOT)
            score_term(ix, tid, idf_of(f->docs, f->df[i]), 1.0f, f->avg, acc, touched, &ntouched, 0);
    }
    /* Every expansion shares one idf, that of the word itself or, when it is only a prefix, of
     * all its expansions together: a rare completion must not outrank the word typed. A
     * document takes its best expansion, not their sum. */
    float group_idf = idf_of(f->docs, f->group_df);
    for (uint32_t i = 0; i < f->nexp; i++)
        score_term(ix, f->exp[i], group_idf, f->exp_weight[i], f->avg, last, touched_last, &nlast, 1);
    for (uint32_t i = 0; i < nlast; i++) {
        uint32_t d = touched_last[i];
        if (acc[d] == 0.0f)
            touched[ntouched++] = d;
        acc[d] += last[d];
    }
    size_t nheap = 0;
    for (uint32_t i = 0; i < ntouched; i++) {
        uint32_t d = touched[i];
        const doc_t *doc = &ix->docs[d];
        if (!doc->alive || !lookalike_filter_pass(filter, doc->id))
            continue;
        lookalike_hits_push(heap, &nheap, k, (lookalike_hit_t){.id = doc->id, .score = acc[d]});
    }
    lookalike_hits_sort(heap, nheap);
    memcpy(out, heap, nheap * sizeof *out);
    *nout = nheap;
    rc = 0;
out:
    free(acc);
    free(last);
    free(touched);
    free(touched_last);
    free(heap);
    return rc;
}

/* Checks k and tokenizes; 1 when there is nothing to score (no words, k 0). */
static int search_prepare(const char *query, size_t k, query_t **q, char *err, size_t errlen)
{
    if (k > LOOKALIKE_K_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "bm25: k too large (at most %d)", LOOKALIKE_K_MAX);
        return LOOKALIKE_EINVAL;
    }
    if (!(*q = malloc(sizeof **q))) {
        set_err(err, errlen, "bm25: out of memory");
        return LOOKALIKE_ENOMEM;
    }
    int rc = tokenize_query(query, *q, err, errlen);
    if (rc == 0 && ((*q)->n == 0 || k == 0))
        rc = 1;
    if (rc != 0) {
        free(*q);
        *q = NULL;
    }
    return rc;
}

int lookalike_bm25_search_global(lookalike_bm25_t *ix, const char *query, const lookalike_bm25_stats_t *g,
                                 size_t k, const lookalike_filter_t *filter, lookalike_hit_t *out,
                                 size_t *nout, char *err, size_t errlen)
{
    query_t *q;
    *nout = 0;
    int rc = search_prepare(query, k, &q, err, errlen);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    if (q->n != g->nwords) {
        free(q);
        set_err(err, errlen, "bm25: the statistics are for another query");
        return LOOKALIKE_EINVAL;
    }
    figures_t *f = calloc(1, sizeof *f);
    if (!f) {
        free(q);
        set_err(err, errlen, "bm25: out of memory");
        return LOOKALIKE_ENOMEM;
    }
    figures_avg(f, g->docs, g->total_len);
    f->df = g->df;
    uint32_t lw = q->n - 1;
    size_t nsel = g->nprefix < ix->p.max_expansion ? g->nprefix : ix->p.max_expansion;
    pthread_rwlock_rdlock(&ix->lock);
    /* The last word as itself and its most frequent completions over every shard (g->prefix is
     * best first); those this index lacks score nothing here. */
    if (g->df[lw] > 0) {
        f->group_df = g->df[lw];
        uint32_t tid = term_lookup(ix, q->tok[lw], q->len[lw]);
        if (tid != EMPTY_SLOT) {
            f->exp[f->nexp] = tid;
            f->exp_weight[f->nexp++] = 1.0f;
        }
    }
    for (size_t i = 0; i < nsel; i++) {
        if (g->df[lw] == 0)
            f->group_df += g->prefix[i].df;
        uint32_t tid = term_lookup(ix, g->prefix[i].term, strlen(g->prefix[i].term));
        if (tid != EMPTY_SLOT) {
            f->exp[f->nexp] = tid;
            f->exp_weight[f->nexp++] = PREFIX_DISCOUNT;
        }
    }
    rc = score_query(ix, q, f, k, filter, out, nout);
    pthread_rwlock_unlock(&ix->lock);
    if (rc != 0)
        set_err(err, errlen, "bm25: out of memory");
    free(f);
    free(q);
    return rc;
}

int lookalike_bm25_search(lookalike_bm25_t *ix, const char *query, size_t k, const lookalike_filter_t *filter,
                          lookalike_hit_t *out, size_t *nout, char *err, size_t errlen)
{
    query_t *q;
    *nout = 0;
    int rc = search_prepare(query, k, &q, err, errlen);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    figures_t *f = calloc(1, sizeof *f);
    uint32_t *heap = malloc((ix->p.max_expansion ? ix->p.max_expansion : 1) * sizeof *heap);
    uint64_t df[LOOKALIKE_BM25_QUERY_WORDS];
    if (!f || !heap) {
        free(f);
        free(heap);
        free(q);
        set_err(err, errlen, "bm25: out of memory");
        return LOOKALIKE_ENOMEM;
    }
    pthread_rwlock_rdlock(&ix->lock);
    /* This index's own figures: the same as lookalike_bm25_stats would give, the expansions
     * chosen by the same rule, without materialising the completions. */
    figures_avg(f, ix->alive, ix->total_len);
    for (uint32_t i = 0; i < q->n; i++) {
        uint32_t tid = term_lookup(ix, q->tok[i], q->len[i]);
        df[i] = tid == EMPTY_SLOT ? 0 : ix->terms[tid].df;
    }
    f->df = df;
    uint32_t lw = q->n - 1;
    const char *s = q->tok[lw];
    size_t n = q->len[lw], nh = 0;
    for (uint32_t i = sorted_lower_bound(ix, s, n); ix->p.max_expansion && i < ix->nterms; i++) {
        uint32_t tid = ix->sorted[i];
        const term_t *t = &ix->terms[tid];
        if (t->len < n || memcmp(t->s, s, n) != 0)
            break;
        if (t->len == n || t->df == 0)
            continue;
        if (nh < ix->p.max_expansion) {
            size_t at = nh++;
            heap[at] = tid;
            while (at > 0 && term_worse(ix, heap[at], heap[(at - 1) / 2])) {
                uint32_t tmp = heap[at];
                heap[at] = heap[(at - 1) / 2];
                heap[(at - 1) / 2] = tmp;
                at = (at - 1) / 2;
            }
        } else if (term_worse(ix, heap[0], tid)) {
            heap[0] = tid;
            heap_sift_down(ix, heap, nh, 0);
        }
    }
    if (df[lw] > 0) {
        f->group_df = df[lw];
        f->exp[f->nexp] = term_lookup(ix, s, n);
        f->exp_weight[f->nexp++] = 1.0f;
    }
    for (size_t i = 0; i < nh; i++) {
        if (df[lw] == 0)
            f->group_df += ix->terms[heap[i]].df;
        f->exp[f->nexp] = heap[i];
        f->exp_weight[f->nexp++] = PREFIX_DISCOUNT;
    }
    rc = score_query(ix, q, f, k, filter, out, nout);
    pthread_rwlock_unlock(&ix->lock);
    if (rc != 0)
        set_err(err, errlen, "bm25: out of memory");
    free(heap);
    free(f);
    free(q);
    return rc;
}
