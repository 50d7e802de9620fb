/* lookalike: similar-product search (image, text, attributes) for e-commerce catalogues.
 *
 * The service
 * -----------
 * `lookalike serve` answers a JSON API and a web page. A product (id, title, description,
 * category, brand, colours, sizes, price, attributes, one photo) is written to the catalogue
 * store; its photo is embedded into a vector (src/embed) that goes into a vector index
 * (src/vindex); its text goes into a BM25 index; its dominant colours are extracted from the
 * photo and kept as an attribute. A search runs each asked-for signal (image vector, "more like
 * this product", text, filters) and fuses the ranked lists by reciprocal rank fusion, keeping
 * for every result the rank and score it had in each signal ("why").
 *
 * This header holds the self-contained library parts of the service:
 *
 *   text.c     strict UTF-8 decoding, case and accent folding (Vietnamese and Latin), tokens
 *   bm25.c     in-memory BM25F index over product fields, prefix matching of the last word
 *   fusion.c   reciprocal rank fusion of ranked lists, with the per-signal "why" and paging
 *   colour.c   dominant colours of a photo, named from a 13-colour palette (English, Vietnamese)
 *   csv.c      RFC 4180 CSV reader for ingest metadata, streaming, capped, line-numbered errors
 *   product.c  the product record: strict JSON parsing and validation (jansson), serialisation
 *   product_csv.c  a product from a row of an ingest metadata CSV
 *   sha256.c   SHA-256, naming stored images by their content
 *   filter_index.c  per-value postings that turn a search's filters into a doc-id bitmap
 *              (private header filter_index.h; the service keeps one per collection)
 *   catalog.c  the catalogue interface (collections, products, images, change log) and the
 *              checks every backend shares; image_store.c keeps images as files by hash
 *   catalog_sqlite.c  the embedded SQLite backend of that interface
 *   catalog_pg.c  the PostgreSQL backend (libpq), for several nodes sharing one catalogue
 *   shard.c    shard keys, a product's shard, sets of shards a node holds
 *   shard_wire.c  the JSON messages of a search fanned out over shards, checked on decoding
 *   snapshot.c the node snapshot file: records and change-log position, crash-safe
 *
 * Conventions
 * -----------
 * Functions return 0 (or a count, where said) on success and a negative LOOKALIKE_E* code on
 * failure, writing a human-readable message into the caller's `err` buffer (`errlen` bytes,
 * may be NULL/0). Every input that comes from outside has a cap, and exceeding it fails with
 * LOOKALIKE_ETOOLARGE and a message saying "too large". No function keeps a pointer to its
 * arguments after it returns unless it says so.
 *
 * Text analysis
 * -------------
 * Input must be valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF); anything
 * else fails with LOOKALIKE_EUTF8 and the byte offset. Folding lowercases and strips accents:
 * every precomposed Latin letter in U+00C0..U+024F and U+1E00..U+1EFF becomes its base letter
 * (đ/Đ -> d, ư -> u, ơ -> o, ß -> ss, æ -> ae), combining marks (U+0300..U+036F and friends)
 * and zero-width characters vanish, Greek and Cyrillic capitals become small letters. So
 * "Áo Thun", "áo thun" and "ao thun" (also in decomposed form) all fold to "ao thun". A word
 * is a maximal run of letters and digits; everything else (ASCII punctuation, spaces, symbols,
 * emoji) separates words. Words longer than LOOKALIKE_TOKEN_MAX bytes keep their first
 * LOOKALIKE_TOKEN_MAX bytes. Stop words (a short English and Vietnamese list) are kept unless
 * asked otherwise.
 *
 * BM25 index
 * ----------
 * Documents are identified by a 64-bit id and have LOOKALIKE_FIELD_COUNT text fields. Scoring is
 * BM25F: per term, tf' = sum over fields of weight_f * tf_f / (1 - b + b * len_f / avglen_f),
 * score = idf * tf' * (k1 + 1) / (k1 + tf'), idf = ln(1 + (N - df + 0.5) / (df + 0.5)); a
 * document's score is the sum over the distinct query words. The last query word also matches
 * as a prefix: it expands to at most `max_expansion` dictionary terms that start with it (those
 * in the most documents), a term other than the word itself counting 0.8 of its score, and a
 * document takes its best expansion, not their sum. All expansions share one idf (that of the
 * word itself if it is a term, else of the expansions' summed df), so a rare completion does not
 * outrank the word that was typed. Results are ordered by score, then by id.
 * Memory: one posting (4 + 2 * fields bytes) per distinct term per document, plus a forward term
 * list per document; dictionary terms are never freed (a term whose last document went away
 * costs its string only). A search allocates O(documents) scratch.
 *
 * Threading: one writer and many readers. Each index holds a pthread rwlock: put and remove take
 * it for writing, search and count for reading, so any number of threads may call them at
 * once. A filter callback runs under the read lock and must not call back into the index.
 */
#ifndef LOOKALIKE_LOOKALIKE_H
#define LOOKALIKE_LOOKALIKE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "vindex/vindex.h"

/* Error codes: every failing function returns one of these (all negative). */
enum {
    LOOKALIKE_EINVAL = -1,    /* bad argument or malformed input */
    LOOKALIKE_ENOMEM = -2,    /* out of memory */
    LOOKALIKE_ETOOLARGE = -3, /* an input over its documented cap */
    LOOKALIKE_EUTF8 = -4,     /* text is not valid UTF-8 */
    LOOKALIKE_ENOTFOUND = -5, /* no such document, product, collection or image */
    LOOKALIKE_EEXIST = -6,    /* already exists (insert of an existing id, duplicate name) */
    LOOKALIKE_EIO = -7,       /* file system or database failure */
    LOOKALIKE_EAGAIN = -8,    /* the store is unreachable or the connection to it was lost: retry */
};

/* Formats a message into err[errlen], as every function here fills its caller's error buffer;
 * nothing when err is NULL or errlen is 0 (errf.c). */
void lookalike_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 0 when every key of object o is one of allowed[0..n); else LOOKALIKE_EINVAL with "unknown
 * field \"KEY\"" (json_keys.c). */
int lookalike_json_only_keys(json_t *o, const char *const *allowed, size_t n, char *err, size_t errlen);

/* ---- text analysis (text.c) ---- */

/* Longest word kept, in bytes of folded UTF-8; longer words are cut at a code point. */
#define LOOKALIKE_TOKEN_MAX 64

/* Options for tokenisation; a NULL pointer means all defaults (all zero). */
typedef struct {
    int stop_words;      /* nonzero: drop the built-in stop words (off by default) */
    uint32_t max_tokens; /* stop after this many words; 0: no limit */
} lookalike_text_opts_t;

/* Receives one folded word (not NUL-terminated, `len` bytes, valid until it returns) and its
 * 0-based index among the words emitted. Return 0 to go on, > 0 to stop quietly, < 0 to stop
 * and have the tokeniser return that value. */
typedef int (*lookalike_token_fn)(const char *tok, size_t len, uint32_t index, void *ud);

/* Decodes the code point at s[*pos] (strict UTF-8), advancing *pos. Returns 0, or -1 when the
 * bytes there are not valid UTF-8 or *pos == len. */
int lookalike_utf8_decode(const char *s, size_t len, size_t *pos, uint32_t *cp);

/* Encodes cp (<= U+10FFFF, not a surrogate) into out; returns the byte count 1..4. */
size_t lookalike_utf8_encode(uint32_t cp, char out[4]);

/* Folds `len` bytes of UTF-8 (case and accents, see above), keeping separators as they are.
 * `out` must hold len + 1 bytes (folding never lengthens text); it gets a NUL-terminated
 * string and *outlen (may be NULL) its length. LOOKALIKE_EUTF8 on invalid input,
 * LOOKALIKE_EINVAL when outcap < len + 1. */
int lookalike_text_fold(const char *in, size_t len, char *out, size_t outcap, size_t *outlen, char *err,
                        size_t errlen);

/* Splits `len` bytes of UTF-8 into folded words and calls fn for each, in order. Returns 0,
 * LOOKALIKE_EUTF8 (nothing is emitted past the bad byte), or what fn returned when negative. */
int lookalike_text_tokenize(const char *s, size_t len, const lookalike_text_opts_t *opts,
                            lookalike_token_fn fn, void *ud, char *err, size_t errlen);

/* 1 if the folded word (len bytes) is one of the built-in stop words, else 0. */
int lookalike_text_is_stop_word(const char *tok, size_t len);

/* ---- ranked hits (shared by bm25.c and fusion.c) ---- */

/* One ranked result: a document id and its score. It is the vector index's hit type, so
 * vindex_search results go into lookalike_fuse as they are. */
typedef vindex_hit_t lookalike_hit_t;

/* Keeps the best k hits in a heap of capacity k holding *n of them (score, then smaller id). */
void lookalike_hits_push(lookalike_hit_t *heap, size_t *n, size_t k, lookalike_hit_t h);

/* Sorts hits best first: higher score, then smaller id. */
void lookalike_hits_sort(lookalike_hit_t *hits, size_t n);

/* Which documents a search may return: the vector index's filter type (a bitmap over ids or
 * a callback, see vindex.h), so one filter built from the attribute constraints serves the
 * vector and the text signal alike. selectivity_hint is ignored by the text index. */
typedef vindex_filter_t lookalike_filter_t;

/* 1 if document `id` passes filter f (NULL passes everything), else 0. */
int lookalike_filter_pass(const lookalike_filter_t *f, uint64_t id);

/* ---- BM25 text index (bm25.c) ---- */

/* Largest text accepted in one field of a document, in bytes. */
#define LOOKALIKE_BM25_FIELD_MAX (64 * 1024)
/* Largest query text, in bytes; only its first 32 words are used. */
#define LOOKALIKE_QUERY_MAX 4096
/* Largest number of results any search returns. */
#define LOOKALIKE_K_MAX 10000

/* The indexed fields of a product. Attribute values (and colour and size names) go into
 * LOOKALIKE_FIELD_ATTRS, separated by spaces. */
typedef enum {
    LOOKALIKE_FIELD_TITLE,
    LOOKALIKE_FIELD_DESCRIPTION,
    LOOKALIKE_FIELD_BRAND,
    LOOKALIKE_FIELD_CATEGORY,
    LOOKALIKE_FIELD_ATTRS,
    LOOKALIKE_FIELD_COUNT
} lookalike_field_t;

/* Scoring parameters, fixed when the index is created. */
typedef struct {
    float weights[LOOKALIKE_FIELD_COUNT]; /* per-field weight, 0..1000 (defaults 3,1,2,2,1) */
    float k1;                             /* term-frequency saturation, 0..100 (default 1.2) */
    float b;                              /* length normalisation, 0..1 (default 0.75) */
    uint32_t max_expansion;               /* prefix expansions of the last word, 0..256 (32) */
} lookalike_bm25_params_t;

typedef struct lookalike_bm25 lookalike_bm25_t;

/* Fills *p with the defaults above. */
void lookalike_bm25_params_default(lookalike_bm25_params_t *p);

/* A new empty index (params NULL: defaults); NULL on bad parameters or out of memory. Free with
 * lookalike_bm25_free. */
lookalike_bm25_t *lookalike_bm25_new(const lookalike_bm25_params_t *params, char *err, size_t errlen);

/* Frees the index; no other thread may be using it. NULL is ignored. */
void lookalike_bm25_free(lookalike_bm25_t *ix);

/* Adds document `id`, or replaces it if present. fields[f] is NUL-terminated UTF-8 or NULL (an
 * empty field). Fails with LOOKALIKE_ETOOLARGE (a field over LOOKALIKE_BM25_FIELD_MAX),
 * LOOKALIKE_EUTF8 (naming the field) or LOOKALIKE_ENOMEM; on failure the index is unchanged. */
int lookalike_bm25_put(lookalike_bm25_t *ix, uint64_t id, const char *const fields[LOOKALIKE_FIELD_COUNT],
                       char *err, size_t errlen);

/* Removes document `id`: 0, or LOOKALIKE_ENOTFOUND if it is not there. */
int lookalike_bm25_remove(lookalike_bm25_t *ix, uint64_t id);

/* Number of documents in the index. */
size_t lookalike_bm25_count(lookalike_bm25_t *ix);

/* The best (at most) k documents for `query` (NUL-terminated UTF-8) that pass `filter` (NULL:
 * all; checked only on documents that match the query), written best first to out[0..*nout). out must hold k
 * hits; k <= LOOKALIKE_K_MAX. A query with no words gives no hits. Fails with LOOKALIKE_ETOOLARGE,
 * LOOKALIKE_EINVAL, LOOKALIKE_EUTF8 or LOOKALIKE_ENOMEM. */
int lookalike_bm25_search(lookalike_bm25_t *ix, const char *query, size_t k, const lookalike_filter_t *filter,
                          lookalike_hit_t *out, size_t *nout, char *err, size_t errlen);

/* Document statistics of a BM25 query, so that several indexes holding parts of one collection
 * (its shards) score a query as one index holding all of it would. BM25 scores depend on
 * collection-wide figures (N, each word's df, the mean field lengths, and which completions
 * of the last word are expanded): a shard scoring with its own figures gives scores that
 * cannot be compared with another shard's. So a distributed text search runs in two phases:
 * every shard reports its figures for the query (lookalike_bm25_stats), the figures are
 * summed (lookalike_bm25_stats_add), and every shard scores with the sums
 * (lookalike_bm25_search_global). The expansions of the last word are then picked from the
 * summed document frequencies, best first (df, then byte order), which is also what a single
 * index does, so the scores are bit for bit those of one index holding every shard, as long
 * as no shard has more than LOOKALIKE_BM25_PREFIX_MAX completions of the last word (beyond
 * that each shard reports its most frequent ones only). */

/* Most completions of the last query word one index reports. */
#define LOOKALIKE_BM25_PREFIX_MAX 1024
/* Most query words scored (the rest of a query is ignored). */
#define LOOKALIKE_BM25_QUERY_WORDS 32

/* One completion of the last query word and its document frequency. */
typedef struct {
    char term[LOOKALIKE_TOKEN_MAX + 1];
    uint64_t df;
} lookalike_bm25_term_df_t;

/* Caller-owned (lookalike_bm25_stats_init / _release); prefix is malloc'd. */
typedef struct {
    uint64_t docs;                             /* documents in the index */
    uint64_t total_len[LOOKALIKE_FIELD_COUNT]; /* words in each field, all documents */
    uint32_t nwords;                           /* words of the query, in order */
    uint64_t df[LOOKALIKE_BM25_QUERY_WORDS];   /* documents holding word i as a whole term */
    lookalike_bm25_term_df_t *prefix;          /* completions of the last word (not itself) */
    size_t nprefix;                            /* sorted by df (desc), then term bytes */
} lookalike_bm25_stats_t;

void lookalike_bm25_stats_init(lookalike_bm25_stats_t *st);
void lookalike_bm25_stats_release(lookalike_bm25_stats_t *st);

/* This index's figures for `query` into *out (initialised here). Fails as lookalike_bm25_search. */
int lookalike_bm25_stats(lookalike_bm25_t *ix, const char *query, lookalike_bm25_stats_t *out, char *err,
                         size_t errlen);

/* Adds the figures of `from` (another shard's, for the same query) into `into`: counts are
 * summed, completions merged by term, and kept to the LOOKALIKE_BM25_PREFIX_MAX most frequent.
 * LOOKALIKE_EINVAL when the two are for different numbers of words; LOOKALIKE_ENOMEM. */
int lookalike_bm25_stats_add(lookalike_bm25_stats_t *into, const lookalike_bm25_stats_t *from, char *err,
                             size_t errlen);

/* lookalike_bm25_search scored with the collection-wide figures `g` (summed over every shard,
 * this index's included) instead of this index's own. lookalike_bm25_search(ix, q) is
 * lookalike_bm25_search_global(ix, q, lookalike_bm25_stats(ix, q)). */
int lookalike_bm25_search_global(lookalike_bm25_t *ix, const char *query, const lookalike_bm25_stats_t *g,
                                 size_t k, const lookalike_filter_t *filter, lookalike_hit_t *out,
                                 size_t *nout, char *err, size_t errlen);

/* ---- reciprocal rank fusion (fusion.c) ----
 *
 * fused(d) = sum over signals s holding d of weight_s / (k_rrf + rank_s(d)), rank 1-based in
 * the order the list is given (best first; the scores are only carried along for "why", so
 * lists may use any score scale, distances included). An id twice in one list keeps its first
 * rank. Ties are broken by the best single rank, then by the smaller id, so paging through the
 * same inputs never repeats or skips a result. */

/* The default k of reciprocal rank fusion. */
#define LOOKALIKE_RRF_K 60.0
/* Most signals one fusion takes. */
#define LOOKALIKE_MAX_SIGNALS 8
/* Most hits one fusion takes over all its signals. */
#define LOOKALIKE_FUSION_INPUT_MAX 1000000

/* One ranked list to fuse. The caller owns `hits`. */
typedef struct {
    const char *name;            /* e.g. "image", "text": used in error messages only */
    const lookalike_hit_t *hits; /* best first */
    size_t n;
    float weight; /* 0..1e6; 0 keeps the list's ranks in "why" but adds nothing to the score */
} lookalike_signal_t;

/* One fused result with its breakdown; index s of rank/signal_score is signals[s]. */
typedef struct {
    uint64_t id;
    double score;                              /* fused score */
    uint32_t rank[LOOKALIKE_MAX_SIGNALS];      /* 1-based rank in each signal; 0: absent */
    float signal_score[LOOKALIKE_MAX_SIGNALS]; /* the score the signal gave; 0 when absent */
} lookalike_fused_t;

/* Fusion options; NULL means k_rrf 60, k 10, offset 0. */
typedef struct {
    double k_rrf;  /* > 0, at most 1e6; 0 means LOOKALIKE_RRF_K */
    size_t k;      /* page size, at most LOOKALIKE_K_MAX */
    size_t offset; /* results to skip before the page */
} lookalike_fuse_opts_t;

/* Fuses nsignals (<= LOOKALIKE_MAX_SIGNALS) lists and writes the page [offset, offset + k) of
 * the fused ranking to out (room for k results) and its length to *nout; *total (may be NULL)
 * gets the number of distinct ids over all lists. Fails with LOOKALIKE_EINVAL (bad option or
 * weight, naming it), LOOKALIKE_ETOOLARGE or LOOKALIKE_ENOMEM. */
int lookalike_fuse(const lookalike_signal_t *signals, size_t nsignals, const lookalike_fuse_opts_t *opts,
                   lookalike_fused_t *out, size_t *nout, size_t *total, char *err, size_t errlen);

/* ---- dominant colours (colour.c) ----
 *
 * The image is reduced to a grid of at most 16384 cells, each the mean of its block of pixels
 * in linear light, converted from sRGB (D65) to CIELAB. Background: the border cells whose
 * colour (within CIE76 background_range / 2) covers at least `border_share` of the border seed
 * a flood fill that enters a neighbouring cell when it differs from the cell it comes from by
 * at most `background_delta` and from its seed by at most `background_range`; so an unevenly
 * lit wall or sheet is background, while a subject standing on the edge is no seed and stops
 * the flood at its outline. What the flood does not reach is the foreground (if that is under
 * 2% of the image, e.g. a white shirt filling a white frame, every cell counts). k-means (k-means++ seeding
 * from a fixed seed, so the same photo always gives the same answer) clusters the rest in Lab; each centre
 * takes the name of the nearest palette shade by CIEDE2000; shares (fractions of the foreground pixels) are
 * summed per name and sorted largest first, ties in palette order. */

/* Palette indices, in palette order; lookalike_colour_name gives their names. */
enum {
    LOOKALIKE_COLOUR_BLACK,
    LOOKALIKE_COLOUR_WHITE,
    LOOKALIKE_COLOUR_GREY,
    LOOKALIKE_COLOUR_RED,
    LOOKALIKE_COLOUR_ORANGE,
    LOOKALIKE_COLOUR_YELLOW,
    LOOKALIKE_COLOUR_GREEN,
    LOOKALIKE_COLOUR_BLUE,
    LOOKALIKE_COLOUR_NAVY,
    LOOKALIKE_COLOUR_PURPLE,
    LOOKALIKE_COLOUR_PINK,
    LOOKALIKE_COLOUR_BROWN,
    LOOKALIKE_COLOUR_BEIGE,
    LOOKALIKE_COLOUR_COUNT
};

#define LOOKALIKE_COLOUR_K_MIN 2
#define LOOKALIKE_COLOUR_K_MAX 8
/* Largest image accepted, in pixels. */
#define LOOKALIKE_COLOUR_PIXELS_MAX (100u * 1000u * 1000u)

/* Extraction options; NULL means lookalike_colour_opts_default. */
typedef struct {
    int k;                  /* clusters, LOOKALIKE_COLOUR_K_MIN..K_MAX (default 4) */
    uint64_t seed;          /* k-means++ seed (default 1) */
    float background_delta; /* largest CIE76 step between neighbours inside the background (6) */
    float background_range; /* largest CIE76 distance of background from its seed colour (25) */
    float border_share;     /* border fraction a colour must cover to seed the background (0.25) */
    float min_share;        /* names with a smaller share are left out (default 0.03) */
} lookalike_colour_opts_t;

/* One named dominant colour. The strings are static. */
typedef struct {
    int index;           /* palette index, LOOKALIKE_COLOUR_* */
    const char *name;    /* English name: "red" */
    const char *name_vi; /* Vietnamese display name: "đỏ" */
    float share;         /* fraction of the foreground pixels, 0..1 */
    float lab[3];        /* CIELAB centre of the largest cluster with this name */
} lookalike_colour_t;

/* Fills *o with the defaults. */
void lookalike_colour_opts_default(lookalike_colour_opts_t *o);

/* Dominant colours of a w x h image of 8-bit RGB pixels (row-major, 3 bytes a pixel, no row
 * padding): at most `cap` of them, largest share first, into out, their count into *nout.
 * Fails with LOOKALIKE_EINVAL (empty image, bad option), LOOKALIKE_ETOOLARGE (over
 * LOOKALIKE_COLOUR_PIXELS_MAX) or LOOKALIKE_ENOMEM. Deterministic for equal inputs. */
int lookalike_colours_extract(const uint8_t *rgb, uint32_t w, uint32_t h, const lookalike_colour_opts_t *opts,
                              lookalike_colour_t *out, size_t cap, size_t *nout, char *err, size_t errlen);

/* Converts an 8-bit sRGB colour to CIELAB (D65 white). */
void lookalike_colour_srgb_to_lab(uint8_t r, uint8_t g, uint8_t b, float lab[3]);

/* The CIEDE2000 colour difference between two CIELAB colours (kL = kC = kH = 1). */
double lookalike_colour_ciede2000(const float lab1[3], const float lab2[3]);

/* Palette index of the name nearest to a CIELAB colour. */
int lookalike_colour_nearest(const float lab[3]);

/* English (vietnamese == 0) or Vietnamese name of a palette index; NULL when out of range. */
const char *lookalike_colour_name(int index, int vietnamese);

/* Palette index for a colour name in English ("grey" or "gray") or Vietnamese, matched after
 * case and accent folding ("Đỏ", "do" -> red); -1 when it is not a palette name. */
int lookalike_colour_lookup(const char *name);

/* ---- CSV reader (csv.c) ----
 *
 * RFC 4180: fields separated by commas, records by CRLF, LF or a lone CR; a field in double
 * quotes may hold commas, line breaks (kept byte for byte) and doubled quotes (read as one).
 * Beyond the RFC: a leading UTF-8 byte order mark is dropped and empty lines are skipped (they
 * are no record). Strict where the RFC is: a quote inside an unquoted field, or anything but a
 * comma or line break after a closing quote, is an error. Every field must be valid UTF-8
 * without NUL bytes. Each error message starts with "line N: " (N counts every line break,
 * including those inside quoted fields) and names the field by its 1-based position. After the
 * header is read, every row must have as many fields as the header has columns.
 *
 * Memory is bounded by the limits: the current row's fields (at most max_row bytes in all,
 * max_field per field, max_fields fields) plus a 64 KiB read buffer for a FILE* source. Field
 * pointers stay valid until the next lookalike_csv_next or lookalike_csv_free. One reader is
 * used by one thread at a time. */

typedef struct lookalike_csv lookalike_csv_t;

/* Caps on what one row may hold; a row over any of them fails with LOOKALIKE_ETOOLARGE. */
typedef struct {
    size_t max_field;  /* bytes in one field (default 64 KiB) */
    size_t max_row;    /* bytes in one row, all fields together (default 1 MiB) */
    size_t max_fields; /* fields in one row (default 256) */
} lookalike_csv_limits_t;

/* Fills *l with the defaults. */
void lookalike_csv_limits_default(lookalike_csv_limits_t *l);

/* A reader over an open file (read from its current position; the caller keeps and closes f).
 * lim NULL: defaults. NULL on out of memory or a zero limit. Free with lookalike_csv_free. */
lookalike_csv_t *lookalike_csv_open_file(FILE *f, const lookalike_csv_limits_t *lim, char *err,
                                         size_t errlen);

/* A reader over len bytes at buf, which must outlive the reader. */
lookalike_csv_t *lookalike_csv_open_buffer(const char *buf, size_t len, const lookalike_csv_limits_t *lim,
                                           char *err, size_t errlen);

/* Frees the reader (not the FILE or buffer). NULL is ignored. */
void lookalike_csv_free(lookalike_csv_t *c);

/* Reads the first row as the header: column names must be non-empty and distinct (compared
 * ignoring ASCII case). Fails on empty input, a bad header, or if a header was already read. */
int lookalike_csv_read_header(lookalike_csv_t *c, char *err, size_t errlen);

/* Number of header columns (0 before lookalike_csv_read_header). */
size_t lookalike_csv_ncols(const lookalike_csv_t *c);

/* Name of header column i, or NULL when i is out of range. */
const char *lookalike_csv_col_name(const lookalike_csv_t *c, size_t i);

/* Index of the header column named `name` (ASCII case ignored), or -1. */
int lookalike_csv_column(const lookalike_csv_t *c, const char *name);

/* Reads the next record: 1 when there is one, 0 at the end of the input, or a negative error
 * (LOOKALIKE_EINVAL malformed, LOOKALIKE_ETOOLARGE over a limit, LOOKALIKE_EUTF8, LOOKALIKE_EIO
 * read failure, LOOKALIKE_ENOMEM). After an error the reader's position is unspecified: stop. */
int lookalike_csv_next(lookalike_csv_t *c, char *err, size_t errlen);

/* Number of fields in the current record. */
size_t lookalike_csv_nfields(const lookalike_csv_t *c);

/* Field i of the current record, NUL-terminated, its length in *len (may be NULL); NULL when i
 * is out of range. */
const char *lookalike_csv_field(const lookalike_csv_t *c, size_t i, size_t *len);

/* Field of the current record under header column `name`, or NULL if there is no such column. */
const char *lookalike_csv_get(const lookalike_csv_t *c, const char *name);

/* Line on which the current record (or the header) starts, 1-based. */
uint64_t lookalike_csv_line(const lookalike_csv_t *c);

/* ---- product record (product.c) ----
 *
 * A product as JSON (every field optional; null counts as absent):
 *
 *   field             type                       rule
 *   id                string                     1..128 bytes of A-Z a-z 0-9 . _ -
 *   title             string                     <= 512 bytes
 *   description       string                     <= 16 KiB
 *   category, brand   string                     <= 128 bytes
 *   colours, sizes    array of strings           <= 32 items of <= 128 bytes
 *   price             number                     0 .. 1e15
 *   currency          string                     3 ASCII letters, stored upper case ("VND")
 *   attributes        object                     <= 64 keys of 1..64 bytes; values are strings
 *                                                (<= 1024 bytes), finite numbers or booleans
 *   vector            array of numbers           1..LOOKALIKE_VECTOR_MAX finite numbers, not all
 *                                                zero: the product's embedding, given by the
 *                                                caller instead of (or besides) a photo
 *
 * The vector is input only: LOOKALIKE_PRODUCT_STORED JSON never holds it (search results
 * would carry thousands of numbers each); the service hands it to the catalogue, which keeps
 * it beside the product (lookalike_catalog_put's vec), and lookalike_product_to_json writes it
 * in INPUT mode, which is what `lookalike export` emits.
 *
 * and, only in LOOKALIKE_PRODUCT_STORED mode (what the catalogue keeps and the API returns;
 * on input they are rejected as "set by the server"):
 *
 *   created_at, updated_at  integer >= 0         milliseconds since the Unix epoch
 *   seq                     integer >= 0         catalogue write sequence number
 *   image_sha256            string               64 lowercase hex digits
 *   dominant_colours        array of strings     palette names, largest share first
 *
 * Any other top-level field is an error naming it; a wrong type is an error naming the field
 * and the type expected; duplicate keys and invalid UTF-8 are rejected (jansson). The whole
 * document is at most LOOKALIKE_PRODUCT_JSON_MAX bytes. */

#define LOOKALIKE_ID_MAX 128
#define LOOKALIKE_TITLE_MAX 512
#define LOOKALIKE_DESCRIPTION_MAX (16 * 1024)
#define LOOKALIKE_NAME_MAX 128
#define LOOKALIKE_LIST_MAX 32
#define LOOKALIKE_ATTRS_MAX 64
#define LOOKALIKE_ATTR_KEY_MAX 64
#define LOOKALIKE_ATTR_VALUE_MAX 1024
#define LOOKALIKE_PRICE_MAX 1e15
#define LOOKALIKE_PRODUCT_JSON_MAX (256 * 1024)
/* Most numbers in a product's vector (the vector index's largest dimension). */
#define LOOKALIKE_VECTOR_MAX 4096
/* lookalike_product_attrs_text stops adding values at this many bytes. */
#define LOOKALIKE_ATTRS_TEXT_MAX LOOKALIKE_BM25_FIELD_MAX

/* Parse modes: what the API accepts from a caller, or what the catalogue stores. */
enum { LOOKALIKE_PRODUCT_INPUT = 0, LOOKALIKE_PRODUCT_STORED = 1 };

/* The type of one attribute value. */
typedef enum { LOOKALIKE_ATTR_STRING, LOOKALIKE_ATTR_NUMBER, LOOKALIKE_ATTR_BOOL } lookalike_attr_type_t;

/* One free-form attribute: key and a string, number or boolean value. */
typedef struct {
    char *key;
    lookalike_attr_type_t type;
    char *str;   /* LOOKALIKE_ATTR_STRING, else NULL */
    double num;  /* LOOKALIKE_ATTR_NUMBER */
    int boolean; /* LOOKALIKE_ATTR_BOOL: 0 or 1 */
} lookalike_attr_t;

/* A product. Caller-owned struct (lookalike_product_init / _release); every pointer in it is
 * malloc'd and freed by lookalike_product_release. A NULL string or list means absent. */
typedef struct {
    char *id;
    char *title;
    char *description;
    char *category;
    char *brand;
    char **colours;
    size_t ncolours;
    char **sizes;
    size_t nsizes;
    double price;
    int has_price;    /* 0: no price */
    char currency[4]; /* "" when absent */
    lookalike_attr_t *attrs;
    size_t nattrs;
    /* Set by the server (LOOKALIKE_PRODUCT_STORED). */
    int64_t created_at; /* ms since the epoch */
    int64_t updated_at;
    uint64_t seq;
    char image_sha256[65]; /* "" when there is no image */
    char **dominant_colours;
    size_t ndominant_colours;
    uint64_t doc_id; /* the catalogue's number for it (see below); not part of the JSON */
    float *vector;   /* a caller's embedding of vector_dim numbers (INPUT JSON), or NULL */
    uint32_t vector_dim;
} lookalike_product_t;

/* Zeroes *p (an empty product). */
void lookalike_product_init(lookalike_product_t *p);

/* Frees what *p holds and zeroes it; *p itself is the caller's. */
void lookalike_product_release(lookalike_product_t *p);

/* 1 if id is 1..LOOKALIKE_ID_MAX bytes of A-Z a-z 0-9 . _ -, else 0. */
int lookalike_product_id_valid(const char *id);

/* Parses and validates `len` bytes of JSON into *p (initialised here; release it after a
 * success, nothing to release after a failure). mode is LOOKALIKE_PRODUCT_INPUT or _STORED.
 * Fails with LOOKALIKE_EINVAL or LOOKALIKE_ETOOLARGE and a message naming the field, or with
 * "invalid JSON at line L, column C: ...". */
int lookalike_product_parse(const char *json, size_t len, int mode, lookalike_product_t *p, char *err,
                            size_t errlen);

/* Checks a product built in code against the same rules as lookalike_product_parse in
 * LOOKALIKE_PRODUCT_INPUT mode (plus valid UTF-8 in every string, no NUL inside). 0 or
 * LOOKALIKE_EINVAL / LOOKALIKE_ETOOLARGE / LOOKALIKE_EUTF8 naming the field. */
int lookalike_product_validate(const lookalike_product_t *p, char *err, size_t errlen);

/* Compact JSON for *p, fields in the order of the table above (server fields only in STORED
 * mode). malloc'd NUL-terminated string, caller frees; NULL when out of memory. */
char *lookalike_product_to_json(const lookalike_product_t *p, int mode);

/* Builds *p (initialised here; release it after a success) from the current row of a CSV
 * reader whose header was read. Columns are matched by name, ASCII case ignored:
 *
 *   id, product_id       -> id          image_id -> id, unless an id column is there too
 *   title, name          -> title       description, category, brand -> the same fields
 *   price                -> price (a decimal number)      currency -> currency
 *   colours, colors, colour, color -> colours    sizes, size -> sizes
 *                           (list items separated by ';', '|' or ',', trimmed)
 *   image, path, image_path, file -> *image: the photo's path as written in the cell
 *   any other column     -> an attribute of that name: a number when the cell is a plain
 *                           decimal ("400", "-1.5"; not "007" or "1e3"), else a string
 *
 * Empty cells are absent; *image is NULL when there is no image column or it is empty, and
 * otherwise points into the reader's row (valid until its next lookalike_csv_next). The
 * product is then validated as lookalike_product_validate does. Errors start "line N: " and
 * name the column. */
int lookalike_product_from_csv(const lookalike_csv_t *c, lookalike_product_t *p, const char **image,
                               char *err, size_t errlen);

/* The text the BM25 attributes field indexes: colours, dominant colours (English and
 * Vietnamese names), sizes, and the string and number attribute values, separated by spaces,
 * cut at LOOKALIKE_ATTRS_TEXT_MAX bytes. malloc'd, caller frees; NULL when out of memory. */
char *lookalike_product_attrs_text(const lookalike_product_t *p);

/* ---- SHA-256 (sha256.c) ---- */

/* Incremental SHA-256 state; caller-owned, no release needed. */
typedef struct {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} lookalike_sha256_t;

void lookalike_sha256_init(lookalike_sha256_t *s);
void lookalike_sha256_update(lookalike_sha256_t *s, const void *data, size_t len);
/* Writes the 32-byte digest; the state must be initialised again before reuse. */
void lookalike_sha256_final(lookalike_sha256_t *s, uint8_t out[32]);
/* The digest of len bytes as 64 lowercase hex digits and a NUL. */
void lookalike_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- catalogue (catalog.c, image_store.c, catalog_sqlite.c, catalog_pg.c) ----
 *
 * The catalogue is the durable truth; the in-memory indexes (BM25, vectors) are rebuilt from
 * it. It holds collections, products, their vectors and images, behind lookalike_catalog_ops_t,
 * implemented by an embedded SQLite backend and a PostgreSQL one (for several nodes sharing one
 * catalogue). Both keep the same contract, checked by the same conformance tests:
 *
 * - Every write (insert, upsert, delete) takes the next catalogue-wide sequence number `seq`
 *   (1, 2, 3, ...). When a write returns 0 it is durable: it survives a crash or kill -9 of the
 *   process, and every later read sees it. A failed write takes no number.
 * - The change log is gap-free in commit order: a reader that sees the change with seq N
 *   also sees every change with a smaller seq that will ever exist. So a tailer that has
 *   applied everything up to N and asks for seq > N never misses a change, even with many
 *   writers committing at once (see catalog_pg.c for how PostgreSQL keeps this).
 * - A product is keyed by (collection, id). Insert fails with LOOKALIKE_EEXIST if the id holds
 *   a different product; an insert of exactly the product already stored (same fields and
 *   image) succeeds without writing and gives back the stored seq and doc_id, so a client may
 *   retry an insert whose answer it lost. Upsert replaces the whole product but keeps
 *   created_at, doc_id and (when the new version brings no image) the stored image. An insert
 *   without id gets a random 16-hex-digit id. updated_at is the write time; created_at the
 *   first insert's (ms since the epoch).
 * - doc_id is a 64-bit number, unique in the catalogue and never reused, that the in-memory
 *   indexes use for the product; it stays the same across upserts and is the seq of the
 *   product's first insert.
 * - A product may carry its image's vector (the collection's dim floats, stored as
 *   little-endian IEEE 754 float32), written in the same transaction as the product, so a node
 *   rebuilds its vector index without embedding photos again. The stored vector belongs to the
 *   stored image: an upsert that keeps the image and brings no vector keeps it; one that
 *   changes the image without a vector drops it.
 * - The change log holds, for each product ever written, its latest change: seq, doc_id and
 *   whether it is now deleted. lookalike_catalog_changes(since = N) lists those with seq > N in
 *   seq order, which is what an index that is up to date to N must apply to catch up.
 * - Images are stored by content, named by the SHA-256 of their bytes; the same bytes stored
 *   twice are kept once. Images are never deleted (products may share them).
 * - Product lists are ordered by id; the cursor is the last id of the previous page.
 *
 * SQLite backend: `<dir>/catalog.db`, WAL journal with synchronous=FULL (a commit is on disk
 * when it returns), a 5 s busy timeout, prepared statements, and a schema version in
 * PRAGMA user_version with migrations applied in order at open (a newer schema than this
 * program knows is refused). Images are files `<dir>/images/ab/abcdef...` (first two hex
 * digits as a directory), written to a temporary name, fsync'd, renamed into place, and
 * their directory fsync'd, so a crash never leaves a torn image under a hash name. Tables:
 *
 *   meta(key PRIMARY KEY, value)              'seq': the last sequence number handed out
 *   collections(name PRIMARY KEY, model, metric, dim, index_params, created_at)
 *   products(collection, id, doc_id UNIQUE, seq, created_at, updated_at, image_sha256, body,
 *            vector) PRIMARY KEY (collection, id); body is the product as STORED JSON,
 *            vector its float32 bytes or NULL (added in schema version 2)
 *   changes(seq PRIMARY KEY, collection, id, doc_id, deleted)  UNIQUE (collection, id)
 *
 * PostgreSQL backend: the same tables in schema `lookalike`, plus images(sha256 PRIMARY KEY,
 * data bytea); docs/storage.md has the DDL. The connection string is libpq's (a URI or
 * key=value; several hosts for failover); the backend adds target_session_attrs=read-write
 * (unless the string sets it), so it always writes to the primary, and short TCP timeouts.
 * It keeps a small pool of connections. A connection that drops (a server restart or
 * failover) is replaced on the next call: reads are retried once on a new connection; a write
 * that meets a dropped connection fails with LOOKALIKE_EAGAIN and says whether it was applied
 * ("not applied") or may have been (the connection dropped during commit); retrying it is safe
 * (see the insert rule above). Every committed write also sends NOTIFY lookalike_changes with
 * its seq, so tailers need not poll.
 *
 * Threading: a catalogue handle may be used from any number of threads; the SQLite backend
 * serialises calls on one connection with a mutex, the PostgreSQL one runs up to its pool size
 * at once. Two processes may open the same catalogue (SQLite locking, or PostgreSQL's). */

#define LOOKALIKE_COLLECTION_NAME_MAX 64
#define LOOKALIKE_MODEL_MAX 255
#define LOOKALIKE_INDEX_PARAMS_MAX 4096
#define LOOKALIKE_DIM_MAX 65536
/* Largest image stored, in bytes. */
#define LOOKALIKE_IMAGE_MAX (32 * 1024 * 1024)
/* Largest page of a product list or change list. */
#define LOOKALIKE_PAGE_MAX 1000

/* A collection: its settings are fixed at creation. Caller-owned, no pointers inside. */
typedef struct {
    char name[LOOKALIKE_COLLECTION_NAME_MAX + 1];      /* 1..64 of A-Z a-z 0-9 _ - */
    char model[LOOKALIKE_MODEL_MAX + 1];               /* embedding model name or path, non-empty */
    char metric[8];                                    /* "cosine", "l2" or "ip" */
    uint32_t dim;                                      /* vector dimension, 1..LOOKALIKE_DIM_MAX */
    char index_params[LOOKALIKE_INDEX_PARAMS_MAX + 1]; /* a JSON object, "{}" if empty */
    int64_t created_at;                                /* set by the catalogue */
} lookalike_collection_t;

/* Write modes of lookalike_catalog_put. */
enum { LOOKALIKE_PUT_INSERT = 0, LOOKALIKE_PUT_UPSERT = 1 };

/* One write of lookalike_catalog_put_batch: the arguments of a lookalike_catalog_put (no
 * image bytes) and, after the call, its outcome. */
typedef struct {
    const char *collection;
    lookalike_product_t *p; /* gets what the catalogue set, as with lookalike_catalog_put */
    int mode;
    const float *vec; /* dim floats, or NULL */
    uint32_t dim;
    int rc;        /* in: 0, or non-zero to leave the write out; out: 0 or the error
                      lookalike_catalog_put would have returned */
    char err[256]; /* out: its message when rc != 0 */
} lookalike_catalog_write_t;

/* The latest change of one product (see the change log above). */
typedef struct {
    uint64_t seq;
    uint64_t doc_id;
    char collection[LOOKALIKE_COLLECTION_NAME_MAX + 1];
    char id[LOOKALIKE_ID_MAX + 1];
    int deleted; /* 1: the product is gone; 0: get it for its current state */
} lookalike_change_t;

typedef struct lookalike_catalog lookalike_catalog_t;

/* What a backend implements. Arguments reach it already checked by the lookalike_catalog_*
 * wrappers below (names, ids, limits), and it writes err as they do. Vectors cross this
 * boundary already encoded (dim little-endian float32, 4 * dim bytes). */
typedef struct {
    const char *backend; /* "sqlite", "postgresql" */
    void (*close)(lookalike_catalog_t *c);
    int (*collection_create)(lookalike_catalog_t *c, lookalike_collection_t *col, char *err, size_t errlen);
    int (*collection_get)(lookalike_catalog_t *c, const char *name, lookalike_collection_t *out, char *err,
                          size_t errlen);
    int (*collection_list)(lookalike_catalog_t *c, lookalike_collection_t **out, size_t *n, char *err,
                           size_t errlen);
    /* vec NULL: no new vector (see the vector rule above); else dim must be the collection's. */
    int (*product_put)(lookalike_catalog_t *c, const char *collection, lookalike_product_t *p, int mode,
                       const uint8_t *vec, uint32_t dim, char *err, size_t errlen);
    /* Optional: the writes whose rc is 0 (enc[i] their encoded vector or NULL) in one commit;
     * each sets its rc; returns non-zero when none is stored (then all of them say so). NULL:
     * the wrapper calls product_put once per write. */
    int (*product_put_batch)(lookalike_catalog_t *c, lookalike_catalog_write_t *w, const uint8_t *const *enc,
                             size_t n, char *err, size_t errlen);
    int (*product_get)(lookalike_catalog_t *c, const char *collection, const char *id,
                       lookalike_product_t *out, char *err, size_t errlen);
    int (*product_get_by_doc)(lookalike_catalog_t *c, uint64_t doc_id,
                              char collection[LOOKALIKE_COLLECTION_NAME_MAX + 1], lookalike_product_t *out,
                              char *err, size_t errlen);
    int (*product_delete)(lookalike_catalog_t *c, const char *collection, const char *id, uint64_t *seq,
                          char *err, size_t errlen);
    int (*product_list)(lookalike_catalog_t *c, const char *collection, const char *after, size_t limit,
                        lookalike_product_t *out, size_t *n, int *more, uint64_t *total, char *err,
                        size_t errlen);
    int (*changes)(lookalike_catalog_t *c, uint64_t since, size_t limit, lookalike_change_t *out, size_t *n,
                   char *err, size_t errlen);
    int (*max_seq)(lookalike_catalog_t *c, uint64_t *seq, char *err, size_t errlen);
    int (*changes_wait)(lookalike_catalog_t *c, uint64_t since, int timeout_ms, char *err, size_t errlen);
    int (*image_put)(lookalike_catalog_t *c, const void *data, size_t len, char sha256[65], char *err,
                     size_t errlen);
    int (*image_get)(lookalike_catalog_t *c, const char *sha256, void **data, size_t *len, char *err,
                     size_t errlen);
    /* The 4 * dim bytes of doc_id's vector into out; LOOKALIKE_ENOTFOUND when it has none. */
    int (*vector_get)(lookalike_catalog_t *c, uint64_t doc_id, uint8_t *out, uint32_t dim, char *err,
                      size_t errlen);
} lookalike_catalog_ops_t;

/* Every backend's handle starts with this. */
struct lookalike_catalog {
    const lookalike_catalog_ops_t *ops;
};

/* Opens (creating if needed) the SQLite catalogue in directory dir (created if missing, with
 * images/ under it), migrating its schema. NULL with a message on failure. Close with
 * lookalike_catalog_close. */
lookalike_catalog_t *lookalike_catalog_open_sqlite(const char *dir, char *err, size_t errlen);

/* Connects to PostgreSQL with a libpq connection string (see above), creating or migrating
 * the schema (under an advisory lock, so nodes starting together do not race). The server
 * must be reachable now. NULL with a message on failure. */
lookalike_catalog_t *lookalike_catalog_open_pg(const char *conninfo, char *err, size_t errlen);

/* 1 if `store` names a PostgreSQL catalogue: it starts with "postgresql://" or "postgres://",
 * or is a key=value connection string (holds '='). */
int lookalike_store_is_pg(const char *store);

/* Opens the catalogue `store` names: NULL or "" is SQLite in data_dir, a PostgreSQL
 * connection string is PostgreSQL (see lookalike_store_is_pg); anything else is refused. */
lookalike_catalog_t *lookalike_catalog_open(const char *store, const char *data_dir, char *err,
                                            size_t errlen);

/* A description of `store` safe to log: the backend, and for PostgreSQL the hosts, database
 * and user, never the password ("sqlite" for the default). Always NUL-terminates out. */
void lookalike_store_describe(const char *store, char *out, size_t outlen);

/* The backend's name: "sqlite" or "postgresql". */
const char *lookalike_catalog_backend(const lookalike_catalog_t *c);

/* Closes the catalogue; no call may be running. NULL is ignored. */
void lookalike_catalog_close(lookalike_catalog_t *c);

/* 1 if name is a valid collection name, else 0. */
int lookalike_collection_name_valid(const char *name);

/* Creates a collection from *col (name, model, metric, dim, index_params; created_at is set).
 * LOOKALIKE_EEXIST if the name is taken, LOOKALIKE_EINVAL naming a bad setting. */
int lookalike_catalog_create_collection(lookalike_catalog_t *c, lookalike_collection_t *col, char *err,
                                        size_t errlen);

/* The collection named `name` into *out; LOOKALIKE_ENOTFOUND if there is none. */
int lookalike_catalog_get_collection(lookalike_catalog_t *c, const char *name, lookalike_collection_t *out,
                                     char *err, size_t errlen);

/* Every collection, by name, into a malloc'd array *out (caller frees) of *n. */
int lookalike_catalog_list_collections(lookalike_catalog_t *c, lookalike_collection_t **out, size_t *n,
                                       char *err, size_t errlen);

/* Writes product *p into a collection (mode LOOKALIKE_PUT_INSERT or _UPSERT), with the image
 * bytes if image is not NULL (at most LOOKALIKE_IMAGE_MAX; stored first, so a product never
 * names a missing image) and its vector if vec is not NULL (dim floats, dim the collection's).
 * On success *p gets what the catalogue set: id (when generated), seq, doc_id, created_at,
 * updated_at, image_sha256. The product's own fields are validated as lookalike_product_parse
 * would. Errors: LOOKALIKE_ENOTFOUND (no such collection), LOOKALIKE_EEXIST (insert of an
 * existing id holding another product), LOOKALIKE_EINVAL (upsert without id, bad field, wrong
 * dim), LOOKALIKE_ETOOLARGE, LOOKALIKE_EIO, LOOKALIKE_EAGAIN (connection lost: retry). */
int lookalike_catalog_put(lookalike_catalog_t *c, const char *collection, lookalike_product_t *p, int mode,
                          const void *image, size_t image_len, const float *vec, uint32_t dim, char *err,
                          size_t errlen);

/* Writes n products as lookalike_catalog_put would (without image bytes: store them first with
 * lookalike_catalog_put_image and set image_sha256), each succeeding or failing on its own
 * (w[i].rc, w[i].err), but durably together: SQLite commits them in one transaction, so a
 * batch costs one fsync instead of n; PostgreSQL writes them one by one. Returns 0 when every
 * write has its own outcome, or an error (EIO, EAGAIN, ENOMEM) when the batch as a whole failed
 * and none of the writes not failed on its own is stored (their rc say so too). */
int lookalike_catalog_put_batch(lookalike_catalog_t *c, lookalike_catalog_write_t *w, size_t n, char *err,
                                size_t errlen);

/* The stored vector of product doc_id (dim floats) into out. LOOKALIKE_ENOTFOUND when the
 * product is gone or has none, LOOKALIKE_EINVAL when dim is not what was stored. */
int lookalike_catalog_get_vector(lookalike_catalog_t *c, uint64_t doc_id, float *out, uint32_t dim, char *err,
                                 size_t errlen);

/* Product `id` of a collection into *out (initialised here; release it after a success).
 * LOOKALIKE_ENOTFOUND if absent. */
int lookalike_catalog_get(lookalike_catalog_t *c, const char *collection, const char *id,
                          lookalike_product_t *out, char *err, size_t errlen);

/* The product with this doc_id, and its collection's name; LOOKALIKE_ENOTFOUND if absent. */
int lookalike_catalog_get_by_doc(lookalike_catalog_t *c, uint64_t doc_id,
                                 char collection[LOOKALIKE_COLLECTION_NAME_MAX + 1], lookalike_product_t *out,
                                 char *err, size_t errlen);

/* Deletes product `id`; *seq (may be NULL) gets the delete's sequence number.
 * LOOKALIKE_ENOTFOUND if absent. */
int lookalike_catalog_delete(lookalike_catalog_t *c, const char *collection, const char *id, uint64_t *seq,
                             char *err, size_t errlen);

/* One page of a collection's products in id order: those after `cursor` (NULL or "" for the
 * first page), at most `limit` (1..LOOKALIKE_PAGE_MAX), into out (room for limit products,
 * each initialised here; release each). next_cursor gets the cursor of the next page, "" when
 * this page is the last; *total (may be NULL) the collection's product count. */
int lookalike_catalog_list(lookalike_catalog_t *c, const char *collection, const char *cursor, size_t limit,
                           lookalike_product_t *out, size_t *n, char next_cursor[LOOKALIKE_ID_MAX + 1],
                           uint64_t *total, char *err, size_t errlen);

/* Latest changes with seq > since, in seq order, at most limit (1..LOOKALIKE_PAGE_MAX), into
 * out; fewer than limit means there are no more. */
int lookalike_catalog_changes(lookalike_catalog_t *c, uint64_t since, size_t limit, lookalike_change_t *out,
                              size_t *n, char *err, size_t errlen);

/* The last sequence number handed out (0 for a new catalogue). */
int lookalike_catalog_max_seq(lookalike_catalog_t *c, uint64_t *seq, char *err, size_t errlen);

/* Waits up to timeout_ms (0..60000) for a change with seq > since to be committed, by any
 * process: 1 when there is one (or may be: a wake-up is a hint, read the changes to know), 0
 * when the time ran out. PostgreSQL wakes on NOTIFY lookalike_changes (one extra connection,
 * kept LISTENing); SQLite polls the counter every 50 ms. */
int lookalike_catalog_changes_wait(lookalike_catalog_t *c, uint64_t since, int timeout_ms, char *err,
                                   size_t errlen);

/* Stores image bytes (1..LOOKALIKE_IMAGE_MAX) by content; sha256 gets their hex hash. */
int lookalike_catalog_put_image(lookalike_catalog_t *c, const void *data, size_t len, char sha256[65],
                                char *err, size_t errlen);

/* The bytes of the image with this hex hash into a malloc'd *data (caller frees) of *len.
 * LOOKALIKE_ENOTFOUND if there is none, LOOKALIKE_EINVAL if sha256 is not 64 lowercase hex. */
int lookalike_catalog_get_image(lookalike_catalog_t *c, const char *sha256, void **data, size_t *len,
                                char *err, size_t errlen);

/* ---- shards (shard.c) ----
 *
 * A collection is split into `nshards` shards (1..LOOKALIKE_SHARDS_MAX, fixed when it is
 * created) by a shard key, also fixed: "category" (the seed's choice: all products of one
 * category live together, so a category filter touches one shard, but a big category makes a
 * big shard) or "id" (a hash of the product id: even shards, every query touches all). A
 * product's shard is FNV-1a-64 of the key's bytes modulo nshards: for "category" the category
 * folded as the text index folds it (case and accents; no category hashes as ""), for "id" the
 * id as given. A node holds a set of shard numbers ("all", or a list such as "0,1" or "0-3,7");
 * the set applies to every collection, and numbers at or past a collection's nshards are
 * simply not in it. */

#define LOOKALIKE_SHARDS_MAX 256

typedef enum { LOOKALIKE_SHARD_KEY_CATEGORY = 0, LOOKALIKE_SHARD_KEY_ID = 1 } lookalike_shard_key_t;

/* "category" or "id" into *out; LOOKALIKE_EINVAL naming the choices otherwise. */
int lookalike_shard_key_parse(const char *name, lookalike_shard_key_t *out, char *err, size_t errlen);
/* "category" or "id". */
const char *lookalike_shard_key_name(lookalike_shard_key_t key);

/* The shard (0..nshards-1) of a product with this id and category (raw, may be NULL). */
uint32_t lookalike_shard_of(lookalike_shard_key_t key, uint32_t nshards, const char *id,
                            const char *category);

/* A set of shard numbers. Caller-owned, no pointers inside. */
typedef struct {
    int all; /* every shard of every collection */
    uint64_t bits[LOOKALIKE_SHARDS_MAX / 64];
} lookalike_shard_set_t;

/* Parses "all" or a comma-separated list of numbers and ranges ("0,1", "0-3,7"), each
 * 0..LOOKALIKE_SHARDS_MAX-1. LOOKALIKE_EINVAL naming the bad part; an empty list is refused. */
int lookalike_shard_set_parse(const char *spec, lookalike_shard_set_t *out, char *err, size_t errlen);
/* 1 if the set holds shard `shard`. */
int lookalike_shard_set_has(const lookalike_shard_set_t *set, uint32_t shard);
/* "all" or the numbers, ranges collapsed ("0-3,7"); always NUL-terminates out. */
void lookalike_shard_set_format(const lookalike_shard_set_t *set, char *out, size_t outlen);

/* ---- fan-out messages (shard_wire.c) ----
 *
 * A search on a node that does not hold every shard asks a replica of each missing shard for
 * its part, over HTTP with JSON bodies (POST /api/collections/{c}/shards/{op}; the operations
 * and their fields are in docs/cluster.md). Replies come from other machines, so each is
 * decoded by a function below that checks every field's type and bound and is fuzzed
 * (fuzz/shard_wire). What crosses the wire per signal is a list of hits: the product's
 * doc_id (catalogue-wide, so hits of different shards never collide), its shard and its score
 * in that signal, as JSON numbers: a float32 printed with 17 significant digits reads back to
 * the same float, so merged lists order exactly as one index would. */

/* One hit of one signal from a shard. */
typedef struct {
    uint64_t doc;
    float score;
    uint32_t shard;
} lookalike_shard_hit_t;

/* [[doc, score, shard], ...] of at most cap hits with shard < nshards, into a malloc'd *out
 * (caller frees; NULL when empty) of *n. LOOKALIKE_EINVAL or LOOKALIKE_ETOOLARGE naming the
 * problem. */
int lookalike_wire_hits_decode(json_t *arr, uint32_t nshards, size_t cap, lookalike_shard_hit_t **out,
                               size_t *n, char *err, size_t errlen);
/* The JSON array for n hits (new reference; NULL when out of memory). */
json_t *lookalike_wire_hits_encode(const lookalike_shard_hit_t *hits, size_t n);

/* {"docs", "total_len": [5], "df": [...], "prefix": [["term", df], ...]} into *out
 * (initialised here; release it after a success). */
int lookalike_wire_stats_decode(json_t *o, lookalike_bm25_stats_t *out, char *err, size_t errlen);
json_t *lookalike_wire_stats_encode(const lookalike_bm25_stats_t *st);

/* A vector as a JSON array of exactly dim numbers, each finite, into out. */
int lookalike_wire_vector_decode(json_t *arr, float *out, uint32_t dim, char *err, size_t errlen);
json_t *lookalike_wire_vector_encode(const float *v, uint32_t dim);

/* Adds a facets answer ({"total", "category", "brand", "colour", "size": {name: count},
 * "price": {"min", "max"} or null}) into `into` (same shape; counts summed, price range
 * widened). `from` is checked whole before `into` changes. */
int lookalike_wire_facets_add(json_t *into, json_t *from, char *err, size_t errlen);

/* What a node says about itself at GET /api/cluster (the "self" object). */
#define LOOKALIKE_NODE_NAME_MAX 64
#define LOOKALIKE_NODE_URL_MAX 256
typedef struct {
    char name[LOOKALIKE_NODE_NAME_MAX + 1];
    char url[LOOKALIKE_NODE_URL_MAX + 1];
    lookalike_shard_set_t shards;
    uint64_t applied_seq; /* last change it applied */
    uint64_t catalog_seq; /* last change it knows the catalogue has */
    int ready;            /* 1: its /readyz says ready */
    double requests_per_s;
    double p50_ms, p99_ms; /* request latency, -1 when unknown */
} lookalike_node_info_t;

/* 1..64 of A-Z a-z 0-9 . _ - */
int lookalike_node_name_valid(const char *name);
int lookalike_wire_node_decode(json_t *o, lookalike_node_info_t *out, char *err, size_t errlen);
json_t *lookalike_wire_node_encode(const lookalike_node_info_t *n);

/* ---- node snapshot (snapshot.c) ----
 *
 * A node keeps, in <data>/node.snap, the records its in-memory tables and text indexes are
 * built from, as of one applied change-log position; at start it loads them and applies only
 * the changes after that position, instead of reading every product from the catalogue. (The
 * vector indexes persist themselves in <data>/vindex/, and are made durable before a snapshot
 * is written, so they are never behind it.) The file is written to node.snap.tmp, fsync'd,
 * renamed over node.snap and the directory fsync'd, so a crash leaves the old or the new
 * snapshot, never a mix; a file that fails any check below is ignored (the node then rebuilds
 * from the catalogue) and never half-loaded. Little-endian:
 *
 *   off  size  field
 *   0    8     magic "LKNSNAP1"
 *   8    4     format version (1)
 *   12   4     C: collections (0..256)
 *   16   8     applied_seq: every change up to it, and none after, is in the records
 *   24   4     L: length of the node's shard set text (1..1024)
 *   28   L     the shard set ("all", "0,1"): a node started with another set rebuilds
 *   then C collection blocks:
 *        1     n: name length (1..64)
 *        n     name
 *        4     nshards (1..256)
 *        4     shard key (0 category, 1 id)
 *        8     R: records
 *        R records: u64 doc_id, u32 J (1..LOOKALIKE_SNAP_RECORD_MAX), J bytes of the product
 *                   as STORED JSON
 *   last 32    SHA-256 of every byte before it
 */

#define LOOKALIKE_SNAP_RECORD_MAX (2 * LOOKALIKE_PRODUCT_JSON_MAX)

typedef struct lookalike_snap_writer lookalike_snap_writer_t;

/* Starts writing the snapshot `path` (into path.tmp). NULL with a message on failure. */
lookalike_snap_writer_t *lookalike_snap_begin(const char *path, uint64_t applied_seq, const char *shards,
                                              uint32_t ncollections, char *err, size_t errlen);
/* Starts a collection block of exactly nrecords records. */
int lookalike_snap_collection(lookalike_snap_writer_t *w, const char *name, uint32_t nshards,
                              uint32_t shard_key, uint64_t nrecords, char *err, size_t errlen);
int lookalike_snap_record(lookalike_snap_writer_t *w, uint64_t doc_id, const char *json, size_t len,
                          char *err, size_t errlen);
/* Checks that every announced block and record was written, writes the checksum, and puts the
 * file in place durably. Frees w either way; on failure the old snapshot stays. */
int lookalike_snap_commit(lookalike_snap_writer_t *w, char *err, size_t errlen);
/* Drops an unfinished snapshot (the old one stays). NULL is ignored. */
void lookalike_snap_abort(lookalike_snap_writer_t *w);

/* What a reader is told, in file order, once the whole file has passed every check. Strings
 * and JSON bytes are borrowed for the call; a non-zero return stops the walk and is returned. */
typedef struct {
    int (*header)(void *ud, uint64_t applied_seq, const char *shards, uint32_t ncollections);
    int (*collection)(void *ud, const char *name, uint32_t nshards, uint32_t shard_key, uint64_t nrecords);
    int (*record)(void *ud, uint64_t doc_id, const char *json, size_t len);
} lookalike_snap_visitor_t;

/* Checks len bytes of a snapshot (checksum, then structure), then walks it. LOOKALIKE_EINVAL
 * ("corrupt": naming the offset or the check) when it fails a check. */
int lookalike_snap_parse(const uint8_t *buf, size_t len, const lookalike_snap_visitor_t *v, void *ud,
                         char *err, size_t errlen);
/* Reads the file and parses it; LOOKALIKE_ENOTFOUND when there is none. */
int lookalike_snap_load(const char *path, const lookalike_snap_visitor_t *v, void *ud, char *err,
                        size_t errlen);

/* ---- Service ----
 *
 * The running service (service.c, search.c, api.c; built into the `lookalike` program, not
 * the library, since it needs src/embed and src/vindex).
 *
 * Data directory:
 *   <data>/catalog.db, <data>/images/   the catalogue (durable truth, see above), unless the
 *                                       service is given a PostgreSQL store
 *   <data>/vindex/<collection>/         the vector index (vindex data dir) of a collection of
 *                                       one shard; <collection>.shard<N>/ for shard N of more
 *   <data>/node.snap                    the node snapshot (see "node snapshot" above)
 *
 * Shards. A collection has nshards shards and a shard key, both fixed at creation and kept
 * with its index settings (index_params: {"shards": N, "shard_key": "category" | "id"}). A
 * node holds the shards of its set (lookalike_svc_opts_t.shards) and keeps in memory, per
 * collection, only products of those shards: one vindex and one BM25 index per shard held,
 * and one attribute table over all of them: one record per live product indexed by doc_id
 * (folded category, brand, sizes and attribute values, a palette bit mask of its colours and
 * dominant colours, price, its shard, and its STORED JSON, so search results never touch the
 * database), plus a hash from product id to record. Every node still reads the whole change
 * log (a product's shard is only known from the product itself when the key is "category"),
 * but reads vectors only for its own shards.
 *
 * Start-up: from the node snapshot and the changes after it, or, without a usable snapshot,
 * from the whole change log; then the vindexes are reconciled with what the records say: a
 * live product missing from its shard's vindex (a crash between the catalogue commit and the
 * vector write, a new node with an empty data directory, a shard newly given to this node)
 * gets the vector stored with it in the catalogue, or, if there is none, its stored image is
 * embedded again; a deleted one, or one of a shard no longer held, is removed.
 *
 * Write path: decode and embed the photo, extract its dominant colours and store its bytes
 * (each writer on its own thread, no lock), then queue the write for group commit: the first
 * queued writer that finds no commit running becomes the leader, takes every write queued for
 * the same collection (at most 256) and, under the service-wide write mutex, commits them to
 * the catalogue in one transaction with their vectors (durable: one fsync for the group on
 * SQLite), writes each vector (vindex log, written before return so it survives kill -9), and
 * swaps each record into the attribute table, filter index and BM25, in seq order; writes that
 * arrive meanwhile queue for the next group. Only then is each write acknowledged, so the very
 * next search sees it (read-your-writes). A lone writer commits at once (no added wait); the
 * more writers at once, the bigger the groups. A write of a product whose shard is held
 * elsewhere only goes to the catalogue: the nodes holding the shard apply it from the change
 * log, and a search passing the write's seq as min_seq makes them catch up first. The search
 * path takes the collection's read lock while it builds the filter bitmap and reads records.
 *
 * Filters (category, brand, colour, size, price range, attribute values) become a bitmap
 * over doc ids that is passed INTO the vector search and the text search; it is computed from
 * the collection's filter index (filter_index.h: a posting per value and a sorted price list,
 * updated with the attribute table), never by visiting every product. Signals: "image" (an
 * uploaded photo), "product" (more like this: the product's vector as the vindex holds it, or
 * for a product it lacks, the catalogue's or its stored photo embedded again), "text" (BM25),
 * and "filters" alone (newest first) when there is no other signal; they are fused by
 * reciprocal rank fusion (k = 60, weights per signal).
 *
 * Searching several shards: each shard returns, per signal, its best candidates with their
 * scores; the lists are merged per signal (vector scores are comparable across shards as
 * they are: the same vectors, the same metric; text scores are made comparable by scoring
 * every shard with the collection-wide BM25 statistics, gathered first; "filters alone" is
 * ordered by doc_id), cut to the candidate count, and only then fused. Fusing per shard and
 * merging fused scores would be wrong: a rank in one shard is not a rank in the collection.
 * So a collection of S shards answers exactly what one index holding all of it answers (with
 * an exact vector index; an HNSW graph per shard may order approximate near-ties otherwise).
 *
 * Threading: every function may be called from any thread. Ownership: strings and JSON
 * returned are new (caller frees / json_decref). */

typedef struct lookalike_svc lookalike_svc_t;

/* Most candidates any one signal contributes to a fusion. */
#define LOOKALIKE_SVC_CANDIDATES_MAX 2000
/* Largest k (page size) and offset of a search. */
#define LOOKALIKE_SVC_K_MAX 1000
#define LOOKALIKE_SVC_OFFSET_MAX 10000
/* The collection every data directory has. */
#define LOOKALIKE_DEFAULT_COLLECTION "products"

typedef struct {
    const char *data_dir;    /* created if missing */
    const char *store;       /* the catalogue (lookalike_catalog_open); NULL or "": SQLite in data_dir */
    const char *model_path;  /* ONNX image model */
    int embed_threads;       /* OpenMP threads per inference; 0 = every core */
    FILE *progress;          /* start-up messages (NULL: none) */
    const char *shards;      /* the shards this node holds (lookalike_shard_set_parse); NULL: "all" */
    uint32_t default_shards; /* shards of the default collection if this creates it (0: 1) */
    const char *default_shard_key; /* its shard key, "category" or "id" (NULL: "category") */
    int snapshot_ms; /* with a shared store, write <data>/node.snap this often (0: only at close) */
    /* With a shared store: leave the changes after a loaded snapshot to lookalike_svc_follow,
     * so that a server can listen (and say it is not ready) while it catches up. Otherwise
     * open applies them before it returns. */
    int follow_later;
} lookalike_svc_opts_t;

/* Opens the data directory, loads the model, creates the default collection if missing and
 * builds the in-memory indexes: from <data>/node.snap and the changes after it when the
 * snapshot fits (same shard set and collections), else from the whole catalogue. NULL with a
 * message on failure. */
lookalike_svc_t *lookalike_svc_open(const lookalike_svc_opts_t *opts, char *err, size_t errlen);
/* With a shared store, starts the thread that follows the change log (first applying what a
 * loaded snapshot lacks) and writes snapshots; nothing otherwise. 0 or -1 with a message. */
int lookalike_svc_follow(lookalike_svc_t *s, char *err, size_t errlen);
/* Makes the vector logs durable (a log over 4 MiB is checkpointed into a vindex snapshot, so the
 * next open need not replay it), writes a node snapshot when anything was applied since the last
 * one, and frees everything; no call may be running. NULL ignored. */
void lookalike_svc_close(lookalike_svc_t *s);

/* ---- reaching shards held elsewhere ----
 * A node serves every collection whole: what it does not hold it asks of other nodes through
 * this interface, which `serve` fills from its peers (lookalike_cluster_*); without it those
 * shards are reported missing. A fan-out sends one operation to one replica of each shard. */

/* One replica's answer, covering the shards listed. */
typedef struct {
    json_t *reply; /* its JSON answer; owned here */
    char node[LOOKALIKE_NODE_NAME_MAX + 1];
    uint32_t *shards; /* malloc'd; owned here */
    size_t nshards;
} lookalike_fanout_answer_t;

typedef struct {
    lookalike_fanout_answer_t *answers; /* malloc'd; owned here */
    size_t nanswers;
    uint32_t *missing; /* shards no replica answered for (malloc'd) */
    size_t nmissing;
    /* A replica refused the request itself (a 4xx other than "I do not hold that shard"):
     * its status, code and message, to be passed on to the client; 0 when none did. */
    int status;
    char code[32];
    char message[512];
} lookalike_fanout_t;

/* Frees what a fan-out result holds; NULL ignored. */
void lookalike_fanout_release(lookalike_fanout_t *f);

typedef struct {
    /* POSTs `body` plus "shards": [the shards it answers for] to /api/collections/{coll}/
     * shards/{op} on one replica of each of shards[0..n), in parallel; a replica that fails
     * is skipped for a while and another one is asked. `token` picks among equally good
     * replicas (the same token, the same replicas). Fills *out (zeroed first). */
    void (*fanout)(void *ud, const char *coll, const char *op, json_t *body, const uint32_t *shards, size_t n,
                   uint64_t token, lookalike_fanout_t *out);
    void *ud;
} lookalike_svc_remote_t;

/* Sets how this node reaches other shards (before serving; r is copied). */
void lookalike_svc_set_remote(lookalike_svc_t *s, const lookalike_svc_remote_t *r);

/* Runs one fan-out operation for the shards listed in req["shards"] (all held here): "stats",
 * "search", "fetch", "facets" or "get" (fields in docs/cluster.md). LOOKALIKE_ENOTFOUND for an
 * unknown collection, LOOKALIKE_SVC_ENOTHELD (naming the shard) for a shard not held here. */
#define LOOKALIKE_SVC_ENOTHELD (-21)
int lookalike_svc_shard_op(lookalike_svc_t *s, const char *coll, const char *op, json_t *req, json_t **out,
                           char *err, size_t errlen);

/* What this node is and holds, for /api/cluster and /readyz. */
typedef struct {
    uint64_t applied_seq;  /* last change applied to memory */
    uint64_t catalog_seq;  /* last change the catalogue had when last asked */
    uint64_t snapshot_seq; /* position of the last snapshot written or loaded (0: none) */
    int catching_up;       /* the tail after a snapshot is being applied */
    lookalike_shard_set_t held;
} lookalike_svc_state_t;
void lookalike_svc_state(lookalike_svc_t *s, lookalike_svc_state_t *out);
/* A collection's sharding: 0, or LOOKALIKE_ENOTFOUND. */
int lookalike_svc_sharding(lookalike_svc_t *s, const char *coll, uint32_t *nshards,
                           lookalike_shard_key_t *key);

/* Creates a collection from a JSON spec {"name", "metric", "index", "M", "ef_construction",
 * "ef_search"}; *out gets its description. LOOKALIKE_EEXIST when the name is taken. */
int lookalike_svc_create_collection(lookalike_svc_t *s, json_t *spec, json_t **out, char *err, size_t errlen);
/* [{"name", "metric", "index", "dim", "model", "count", "created_at"}...] */
json_t *lookalike_svc_list_collections(lookalike_svc_t *s);
/* 1 if the collection exists. */
int lookalike_svc_has_collection(lookalike_svc_t *s, const char *name);

/* Writes a product (mode LOOKALIKE_PUT_INSERT or _UPSERT) with its photo (image NULL: an
 * upsert keeps the stored photo; an insert requires a photo or p->vector). p->vector, when set
 * (the collection's dim numbers), is indexed instead of the photo's embedding; without one an
 * upsert that keeps the photo keeps the stored vector. On success p holds what the catalogue
 * set (id, seq, ...). Errors as lookalike_catalog_put, plus LOOKALIKE_EINVAL for a missing
 * photo or a vector of the wrong length and LOOKALIKE_SVC_EIMAGE for bytes that are not a
 * readable image. */
#define LOOKALIKE_SVC_EIMAGE (-20)
int lookalike_svc_put(lookalike_svc_t *s, const char *coll, lookalike_product_t *p, int mode,
                      const void *image, size_t image_len, char *err, size_t errlen);
/* One write of lookalike_svc_put_many: lookalike_svc_put's arguments, then its outcome. */
typedef struct {
    lookalike_product_t *p; /* gets what the catalogue set (id, seq, ...) */
    int mode;
    const void *image; /* NULL: none */
    size_t image_len;
    int rc;        /* out: 0 or what lookalike_svc_put would have returned */
    char err[512]; /* out: its message when rc != 0 */
} lookalike_svc_write_t;
/* Writes n products of one collection, each as lookalike_svc_put would and failing on its own,
 * committed in groups: writes made at the same time (these, and other threads' puts) share one
 * catalogue transaction and fsync. Returns when every one is durable and searchable, or has
 * failed: 0, or the first write's error. */
int lookalike_svc_put_many(lookalike_svc_t *s, const char *coll, lookalike_svc_write_t *w, size_t n);
/* Deletes a product; *seq gets the delete's sequence number. */
int lookalike_svc_delete(lookalike_svc_t *s, const char *coll, const char *id, uint64_t *seq, char *err,
                         size_t errlen);
/* 1 if the collection holds a product with this id (from memory). */
int lookalike_svc_contains(lookalike_svc_t *s, const char *coll, const char *id);
/* The product as STORED JSON (new reference), or NULL when absent (from this node's memory). */
json_t *lookalike_svc_get(lookalike_svc_t *s, const char *coll, const char *id);
/* The product as STORED JSON into *out, from memory or, for a shard held elsewhere, from a
 * replica of it (with shard key "id" the product's own shard, with "category" every shard not
 * held here). LOOKALIKE_ENOTFOUND when absent, LOOKALIKE_EAGAIN when it may be in a shard no
 * replica answered for, or a replica's refusal (as LOOKALIKE_EINVAL). */
int lookalike_svc_find(lookalike_svc_t *s, const char *coll, const char *id, json_t **out, char *err,
                       size_t errlen);
/* The photo bytes of a product (malloc'd, caller frees), found as lookalike_svc_find does. */
int lookalike_svc_image(lookalike_svc_t *s, const char *coll, const char *id, void **data, size_t *len,
                        char *err, size_t errlen);
/* {"items", "total", "next_cursor"} for one page of a collection. */
int lookalike_svc_list(lookalike_svc_t *s, const char *coll, const char *cursor, size_t limit, json_t **out,
                       char *err, size_t errlen);

/* Runs a search over every shard of the collection (those held elsewhere through the
 * remote interface). query is the JSON request (text, product_id, filters, k, offset,
 * weights, min_seq; unknown fields are refused); image, when not NULL, is an uploaded photo.
 * *out gets {"results": [{"id", "score", "why", "product"}], "total", "took_ms"}, plus
 * "partial": true and "missing_shards": [...] when some shard could not be asked. A replica's
 * refusal comes back as LOOKALIKE_EINVAL (or LOOKALIKE_EEXIST for min_seq) with its message. */
int lookalike_svc_search(lookalike_svc_t *s, const char *coll, json_t *query, const void *image,
                         size_t image_len, json_t **out, char *err, size_t errlen);
/* Counts of live products per category, brand, colour (including dominant colours) and size,
 * over every shard: {"total", "category": {...}, "brand": {...}, "colour": {...}, "size":
 * {...}, "price": {min,max}}, plus "partial" and "missing_shards" as for a search. */
int lookalike_svc_facets(lookalike_svc_t *s, const char *coll, json_t **out, char *err, size_t errlen);
/* Live products of a collection that this node holds. */
uint64_t lookalike_svc_count(lookalike_svc_t *s, const char *coll);
/* The last catalogue sequence number applied to the in-memory indexes. */
uint64_t lookalike_svc_applied_seq(lookalike_svc_t *s);

/* ---- Cluster (membership.c, cluster.c, api_cluster.c; in the `lookalike` program) ----
 *
 * The nodes of a cluster share one PostgreSQL catalogue; each holds some shards (above). A
 * node learns who the other nodes are from a membership source, asks each of them what it is
 * (GET /api/cluster: its name, URL, shards, applied and catalogue seq, readiness, request
 * rate and latency) every probe interval, and keeps that view. A fan-out (the remote
 * interface of the service) picks for each shard one replica among the peers that hold it:
 * up (no failure in the last backoff_ms) and ready first, then up and not ready, then one
 * marked down as a last resort, spread over equals by the query's token; sends each replica one request for
 * all the shards it was picked for, all in parallel over kept-alive connections (libcurl); a replica that
 * fails (no connection, timeout, a 5xx, an answer that does not parse, "I do not hold that shard") is marked
 * down for backoff_ms and its shards go to the next replica, until every shard is answered or has no replica
 * left (then it is reported missing). A replica's 4xx about the request itself is passed on to the client,
 * not retried.
 *
 * Membership sources sit behind lookalike_membership_t, so that another one plugs in without
 * touching the rest: the static one (lookalike_membership_static, `--peers`) lists fixed
 * names and URLs; the etcd one (lookalike_membership_etcd, `--etcd`; membership_etcd.c) lists
 * the /lookalike/nodes/NAME keys that nodes hold under leases (src/cluster), so that a dead
 * node drops out of the list by itself and a new one is found within a probe interval. A
 * source that cannot reach its store answers its last list: nodes keep working on the last
 * known membership.
 *
 * Threading: the probe thread is the only writer of the view (under a mutex); fan-outs read
 * it and mark failures from any thread. */

/* From src/core (core.h), which the program links. */
typedef struct core_http_server core_http_server;
typedef struct core_log core_log;

typedef struct {
    char name[LOOKALIKE_NODE_NAME_MAX + 1];
    char url[LOOKALIKE_NODE_URL_MAX + 1]; /* http://host:port, no trailing slash */
} lookalike_member_t;

typedef struct lookalike_membership lookalike_membership_t;
struct lookalike_membership {
    const char *kind; /* "static", "etcd", ... */
    /* The members other than this node into a malloc'd *out (caller frees) of *n. */
    int (*list)(lookalike_membership_t *m, lookalike_member_t **out, size_t *n, char *err, size_t errlen);
    void (*free)(lookalike_membership_t *m);
};

/* Most members one source lists. */
#define LOOKALIKE_MEMBERS_MAX 256

/* Checks a node URL, "http://host:port" (host: letters, digits, '.', '-', or an IPv6 literal in
 * brackets; port 1..65535), of n bytes, and copies it into out without a trailing slash. 1 when
 * valid, else 0. */
int lookalike_node_url_parse(const char *u, size_t n, char out[LOOKALIKE_NODE_URL_MAX + 1]);

/* A fixed list "name=http://host:port,name2=http://host2:port" (at most
 * LOOKALIKE_MEMBERS_MAX; names as lookalike_node_name_valid, distinct); the entry named `self`
 * is left out, so every node may be given the same list. NULL with a message naming the bad
 * entry. Free with m->free(m). */
lookalike_membership_t *lookalike_membership_static(const char *spec, const char *self, char *err,
                                                    size_t errlen);

/* Where nodes register in etcd: LOOKALIKE_ETCD_PREFIX NAME = {"name", "url", "shards",
 * "started_at"}. */
#define LOOKALIKE_ETCD_PREFIX "/lookalike/nodes/"

/* The members registered in etcd under LOOKALIKE_ETCD_PREFIX (endpoints as for --etcd), this
 * node (`self`) left out, read at every list. Entries with an invalid name or URL are passed
 * over. When etcd cannot be read: the last list read from it (logged once per outage, to log);
 * before etcd ever answered, the fallback's list (taken: freed with the source; NULL for none),
 * so that a node started during an outage with --peers still finds its peers. In the lookalike
 * program (membership_etcd.c). Free with m->free(m). */
lookalike_membership_t *lookalike_membership_etcd(const char *endpoints, const char *self,
                                                  lookalike_membership_t *fallback, core_log *log, char *err,
                                                  size_t errlen);

typedef struct lookalike_cluster lookalike_cluster_t;

typedef struct {
    const char *name;                   /* this node's name */
    const char *url;                    /* how the others reach it */
    lookalike_svc_t *svc;               /* borrowed */
    lookalike_membership_t *membership; /* taken: freed by lookalike_cluster_free */
    core_http_server *server;           /* borrowed: this node's request figures */
    core_log *log;                      /* borrowed */
    int probe_ms;                       /* peers are asked what they are this often (default 1000) */
    int timeout_ms;                     /* one fan-out request, connection included (default 5000) */
    int backoff_ms;                     /* a replica that failed is skipped this long (default 2000) */
    uint64_t max_lag;                   /* behind the change log by more: not ready (0: no bound) */
} lookalike_cluster_opts_t;

/* Starts the probe thread. Call once, from the main thread before others start (it sets up
 * libcurl). NULL with a message on failure. */
lookalike_cluster_t *lookalike_cluster_new(const lookalike_cluster_opts_t *o, char *err, size_t errlen);
/* Stops the probe thread and frees everything; no fan-out may be running. NULL ignored. */
void lookalike_cluster_free(lookalike_cluster_t *c);
/* The remote interface for lookalike_svc_set_remote. */
void lookalike_cluster_remote(lookalike_cluster_t *c, lookalike_svc_remote_t *out);
/* 0 when this node is ready (within max_lag of the change log), else 1 with why in msg. Reads
 * atomics only: safe on an event-loop thread. */
int lookalike_cluster_ready(lookalike_cluster_t *c, char *msg, size_t msglen);
/* This node as lookalike_node_info_t (its figures as of the last probe round). */
void lookalike_cluster_self(lookalike_cluster_t *c, lookalike_node_info_t *out);
/* The node's view: {"self", "peers": [...], "membership", "collections": [...]}
 * (docs/cluster.md); with self_only, {"self"} alone (what peers probe). */
json_t *lookalike_cluster_view(lookalike_cluster_t *c, int self_only);
/* Where a server finds its cluster object, which can only be made once the server listens
 * (its port names it). Until it is set, /api/cluster and /status answer 503, the node is not
 * ready, and searches report the shards held elsewhere missing. */
typedef struct {
    _Atomic(lookalike_cluster_t *) cluster;
} lookalike_cluster_slot_t;

/* Adds GET /api/cluster and GET /status (a small HTML page of the same view) to srv. */
int lookalike_cluster_routes(lookalike_cluster_slot_t *slot, core_http_server *srv, char *err, size_t errlen);
/* A remote interface that goes through the slot (for lookalike_svc_set_remote before start). */
void lookalike_cluster_slot_remote(lookalike_cluster_slot_t *slot, lookalike_svc_remote_t *out);
/* A /readyz check (core_http_ready_fn) on the slot's cluster: lookalike_cluster_ready. */
int lookalike_cluster_slot_ready(void *slot, char *msg, size_t msglen);

/* ---- end Service ---- */

#endif
