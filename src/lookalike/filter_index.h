/* The attribute filter index of a collection: what a search's "filters" become, without looking
 * at every product (private to the service; built into the library so unit tests reach it).
 *
 * A filter is an AND of groups: category in a list, brand in a list, any size in a list, any
 * colour in a set, each attribute key = value, a price range. Every (field, folded value) pair
 * has a posting of the doc ids holding it, kept up to date at write time: a sorted array while
 * it is sparse (fewer ids than the doc-id range / 64, so never bigger than a bitmap), a bitmap
 * over the doc-id range once it is not. A search ORs the postings of each group's values into a
 * bitmap and ANDs the groups: time in words of the doc-id range and entries of the postings
 * touched, not in products. Prices are a sorted (price, doc) array, binary searched for the
 * range, plus an unsorted tail of at most PRICE_TAIL_MAX newer entries merged into it when
 * full; an entry counts only while it is its doc's current price (an upsert or delete leaves
 * the old one behind until the next merge drops it). A posting whose last doc went away keeps
 * its key (as BM25 keeps its terms).
 *
 * Threading: none inside. The service calls add and remove under its collection's write lock
 * and eval under its read lock. Ownership: the index copies what it keeps; eval's bitmap is
 * the caller's to free. */
#ifndef LOOKALIKE_FILTER_INDEX_H
#define LOOKALIKE_FILTER_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* Most values in one filter list, and most attribute constraints. */
#define FILTER_VALUES_MAX 32
#define FILTER_ATTRS_MAX 16

typedef struct {
    char *v[FILTER_VALUES_MAX]; /* folded, malloc'd */
    size_t n;
} strlist_t;

/* A parsed "filters" object (search.c parses it); every string folded and malloc'd. */
typedef struct {
    int active; /* any constraint given */
    strlist_t category, brand, size;
    uint32_t colours; /* palette bit mask; 0: no colour constraint */
    double price_min, price_max;
    int has_min, has_max;
    char *akey[FILTER_ATTRS_MAX]; /* as given */
    char *aval[FILTER_ATTRS_MAX]; /* folded text of the value, as svc_fdoc_t's */
    size_t nattrs;
} svc_filter_t;

/* What a product offers to filters; strings folded (attribute keys as given). Borrowed. */
typedef struct {
    uint64_t doc_id;
    const char *category, *brand; /* NULL when absent */
    char *const *sizes;
    size_t nsizes;
    char *const *attr_keys, *const *attr_vals;
    size_t nattrs;
    uint32_t colours; /* palette bit mask */
    double price;
    int has_price;
} svc_fdoc_t;

typedef struct svc_findex svc_findex_t;

/* A new empty index; NULL when out of memory. */
svc_findex_t *svc_findex_new(void);
/* Frees it; NULL is ignored. */
void svc_findex_free(svc_findex_t *x);

/* Adds a document whose doc_id is not in the index. On failure (LOOKALIKE_ENOMEM) the index is
 * as it was. */
int svc_findex_add(svc_findex_t *x, const svc_fdoc_t *d);
/* Puts d in place of old (NULL: none), the version of the product the index holds now, whose
 * doc_id may be d's or another; on failure the index still holds old and not d. */
int svc_findex_replace(svc_findex_t *x, const svc_fdoc_t *old, const svc_fdoc_t *d);
/* Removes a document added with exactly these fields (the same version of it). */
void svc_findex_remove(svc_findex_t *x, const svc_fdoc_t *d);

/* 1 if the document passes the filter (the definition eval follows; used to check it). */
int svc_filter_pass(const svc_filter_t *f, const svc_fdoc_t *d);

/* The doc ids that are in the index, pass f (NULL or inactive: every one) and are not
 * `exclude`, as a new bitmap (bit d of word d/64) of *nbits bits, at least min_bits: the doc-id
 * range rounded up, with one spare word. LOOKALIKE_ENOMEM when it cannot be allocated. */
int svc_findex_eval(const svc_findex_t *x, const svc_filter_t *f, uint64_t exclude, uint64_t min_bits,
                    uint64_t **bits, uint64_t *nbits);

/* Documents in the index. */
uint64_t svc_findex_count(const svc_findex_t *x);

#endif
