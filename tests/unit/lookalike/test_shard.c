/* Shards: keys, sets, BM25 statistics summed over shards, the fan-out messages and the node
 * snapshot file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lookalike/lookalike.h"

/* ---- shard keys and sets ---- */

Test(shard, key_names_round_trip)
{
    lookalike_shard_key_t k;
    char err[128];
    cr_assert_eq(lookalike_shard_key_parse("category", &k, err, sizeof err), 0);
    cr_assert_eq(k, LOOKALIKE_SHARD_KEY_CATEGORY);
    cr_assert_str_eq(lookalike_shard_key_name(k), "category");
    cr_assert_eq(lookalike_shard_key_parse("id", &k, err, sizeof err), 0);
    cr_assert_str_eq(lookalike_shard_key_name(k), "id");
    cr_assert_eq(lookalike_shard_key_parse("brand", &k, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "\"category\" or \"id\""), "%s", err);
}

Test(shard, category_key_folds_case_and_accents)
{
    for (uint32_t s = 2; s < 40; s++) {
        uint32_t a = lookalike_shard_of(LOOKALIKE_SHARD_KEY_CATEGORY, s, "x", "Áo Thun");
        cr_assert_eq(a, lookalike_shard_of(LOOKALIKE_SHARD_KEY_CATEGORY, s, "y", "ao thun"));
        cr_assert_lt(a, s);
    }
    /* No category is a category of its own, the same for every product. */
    cr_assert_eq(lookalike_shard_of(LOOKALIKE_SHARD_KEY_CATEGORY, 7, "a", NULL),
                 lookalike_shard_of(LOOKALIKE_SHARD_KEY_CATEGORY, 7, "b", ""));
    cr_assert_eq(lookalike_shard_of(LOOKALIKE_SHARD_KEY_ID, 1, "anything", "dress"), 0);
}

Test(shard, id_key_spreads_products)
{
    unsigned count[4] = {0};
    char id[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(id, sizeof id, "p-%d", i);
        count[lookalike_shard_of(LOOKALIKE_SHARD_KEY_ID, 4, id, "same")]++;
    }
    for (int s = 0; s < 4; s++)
        cr_assert(count[s] > 800 && count[s] < 1200, "shard %d holds %u of 4000", s, count[s]);
}

Test(shard, the_hash_is_fnv1a_so_nodes_of_any_build_agree)
{
    /* FNV-1a-64 of "dress" is 0x9b8d1b1e3b7b4a1b... computed independently: pin the shards. */
    uint64_t h = 1469598103934665603ull;
    for (const char *p = "dress"; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    for (uint32_t s = 1; s < 20; s++)
        cr_assert_eq(lookalike_shard_of(LOOKALIKE_SHARD_KEY_CATEGORY, s, "x", "Dress"), (uint32_t)(h % s));
}

Test(shard, sets_parse_and_format)
{
    lookalike_shard_set_t set;
    char err[128], out[256];
    cr_assert_eq(lookalike_shard_set_parse("all", &set, err, sizeof err), 0);
    cr_assert(set.all && lookalike_shard_set_has(&set, 255));
    lookalike_shard_set_format(&set, out, sizeof out);
    cr_assert_str_eq(out, "all");
    cr_assert_eq(lookalike_shard_set_parse("0,2-4,9", &set, err, sizeof err), 0, "%s", err);
    cr_assert(lookalike_shard_set_has(&set, 0) && !lookalike_shard_set_has(&set, 1));
    cr_assert(lookalike_shard_set_has(&set, 3) && lookalike_shard_set_has(&set, 9));
    cr_assert(!lookalike_shard_set_has(&set, 10) && !lookalike_shard_set_has(&set, 1000));
    lookalike_shard_set_format(&set, out, sizeof out);
    cr_assert_str_eq(out, "0,2-4,9");
    cr_assert_eq(lookalike_shard_set_parse("1,0", &set, err, sizeof err), 0);
    lookalike_shard_set_format(&set, out, sizeof out);
    cr_assert_str_eq(out, "0-1");
    static const char *const bad[] = {"", "x", "1,", ",1", "3-1", "256", "1 2", "-1", "0-", "1,,2", "01x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(lookalike_shard_set_parse(bad[i], &set, err, sizeof err), LOOKALIKE_EINVAL, "\"%s\"",
                     bad[i]);
        cr_assert(strstr(err, "shards"), "%s", err);
    }
}

/* ---- BM25 over shards ---- */

typedef struct {
    const char *title, *desc, *brand, *cat, *attrs;
} doc_t;

static const doc_t docs[] = {
    {"Áo thun nam cổ tròn", "Áo thun cotton mềm mại", "Coolmate", "t-shirt", "đỏ M L"},
    {"Quần jean nữ", "Quần jean ống rộng", "Levi's", "pants", "xanh dương 28"},
    {"Áo sơ mi trắng", "Sơ mi công sở", "Việt Tiến", "shirt", "trắng M"},
    {"Giày thể thao", "Giày chạy bộ nhẹ", "Biti's", "shoes", "đen 42"},
    {"Áo khoác gió", "Áo khoác chống nước, thun co giãn", "Coolmate", "outwear", "xám L"},
    {"Áo thun trẻ em", "thun thung lũng", "Canifa", "t-shirt", "vàng S"},
    {"Thắt lưng da", "Da bò thật", "Việt Tiến", "belt", "nâu"},
    {"Áo thun thể thao", "Thun lạnh thoáng khí", "Coolmate", "t-shirt", "xanh"},
    {"Giày da nam", "Giày tây da bò", "Vascara", "shoes", "đen 41 42"},
    {"Túi xách thun", "thung thùng thun", "Vascara", "bag", "đỏ"},
    {"Quần short thun", "short thun co giãn thung", "Canifa", "pants", "xám"},
    {"Mũ len", "len lông cừu", "Canifa", "hat", "đỏ len"},
};
#define NDOCS (sizeof docs / sizeof *docs)

static void put_doc(lookalike_bm25_t *ix, uint64_t id, const doc_t *d)
{
    const char *f[LOOKALIKE_FIELD_COUNT] = {d->title, d->desc, d->brand, d->cat, d->attrs};
    char err[128];
    cr_assert_eq(lookalike_bm25_put(ix, id, f, err, sizeof err), 0, "%s", err);
}

static int cmp_hit(const void *a, const void *b)
{
    const lookalike_hit_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Splits the documents over nshards indexes by id, searches each with the summed figures,
 * merges by score: the result must be exactly the single index's, scores included. */
static void check_split(const char *query, uint32_t nshards, uint32_t max_expansion)
{
    lookalike_bm25_params_t p;
    lookalike_bm25_params_default(&p);
    p.max_expansion = max_expansion;
    char err[128];
    lookalike_bm25_t *one = lookalike_bm25_new(&p, err, sizeof err), *part[4];
    for (uint32_t s = 0; s < nshards; s++)
        part[s] = lookalike_bm25_new(&p, err, sizeof err);
    for (size_t i = 0; i < NDOCS; i++) {
        put_doc(one, i + 1, &docs[i]);
        put_doc(part[(i * 7 + 3) % nshards], i + 1, &docs[i]);
    }
    lookalike_hit_t want[NDOCS], got[NDOCS * 4];
    size_t nwant = 0, ngot = 0, n;
    cr_assert_eq(lookalike_bm25_search(one, query, NDOCS, NULL, want, &nwant, err, sizeof err), 0, "%s", err);
    lookalike_bm25_stats_t g;
    lookalike_bm25_stats_init(&g);
    for (uint32_t s = 0; s < nshards; s++) {
        lookalike_bm25_stats_t st;
        cr_assert_eq(lookalike_bm25_stats(part[s], query, &st, err, sizeof err), 0, "%s", err);
        /* Through the wire format, as a remote shard's figures would come. */
        json_t *j = lookalike_wire_stats_encode(&st);
        char *text = json_dumps(j, JSON_COMPACT);
        json_t *back = json_loads(text, 0, NULL);
        lookalike_bm25_stats_t dec;
        cr_assert_eq(lookalike_wire_stats_decode(back, &dec, err, sizeof err), 0, "%s", err);
        cr_assert_eq(lookalike_bm25_stats_add(&g, &dec, err, sizeof err), 0, "%s", err);
        lookalike_bm25_stats_release(&dec);
        lookalike_bm25_stats_release(&st);
        json_decref(j);
        json_decref(back);
        free(text);
    }
    cr_assert_eq(g.docs, NDOCS);
    for (uint32_t s = 0; s < nshards; s++) {
        cr_assert_eq(
            lookalike_bm25_search_global(part[s], query, &g, NDOCS, NULL, got + ngot, &n, err, sizeof err), 0,
            "%s", err);
        ngot += n;
    }
    qsort(got, ngot, sizeof *got, cmp_hit);
    cr_assert_eq(ngot, nwant, "\"%s\" over %u shards: %zu hits, one index %zu", query, nshards, ngot, nwant);
    for (size_t i = 0; i < nwant; i++) {
        cr_assert_eq(got[i].id, want[i].id, "\"%s\" rank %zu", query, i);
        cr_assert_eq(got[i].score, want[i].score, "\"%s\" rank %zu: %.9g vs %.9g", query, i, got[i].score,
                     want[i].score);
    }
    lookalike_bm25_stats_release(&g);
    lookalike_bm25_free(one);
    for (uint32_t s = 0; s < nshards; s++)
        lookalike_bm25_free(part[s]);
}

Test(shard_bm25, scores_over_shards_equal_one_index)
{
    static const char *const queries[] = {"ao thun",    "giay da",     "thun",          "th",
                                          "da bo that", "coolmate ao", "len do len",    "quan jean",
                                          "xyz t",      "t",           "viet tien thun"};
    for (size_t q = 0; q < sizeof queries / sizeof *queries; q++)
        for (uint32_t s = 1; s <= 4; s++) {
            check_split(queries[q], s, 32);
            check_split(queries[q], s, 1);
        }
}

Test(shard_bm25, each_shard_scoring_alone_would_not_match)
{
    /* Why the figures are summed: with its own N, df and lengths a shard scores differently. */
    lookalike_bm25_t *one = lookalike_bm25_new(NULL, NULL, 0), *part = lookalike_bm25_new(NULL, NULL, 0);
    for (size_t i = 0; i < NDOCS; i++) {
        put_doc(one, i + 1, &docs[i]);
        if (i % 2)
            put_doc(part, i + 1, &docs[i]);
    }
    lookalike_hit_t a[NDOCS], b[NDOCS];
    size_t na, nb;
    cr_assert_eq(lookalike_bm25_search(one, "ao thun", NDOCS, NULL, a, &na, NULL, 0), 0);
    cr_assert_eq(lookalike_bm25_search(part, "ao thun", NDOCS, NULL, b, &nb, NULL, 0), 0);
    int differ = 0;
    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < na; j++)
            differ |= a[j].id == b[i].id && a[j].score != b[i].score;
    cr_assert(nb > 0 && differ, "a shard's own figures give other scores");
    lookalike_bm25_free(one);
    lookalike_bm25_free(part);
}

Test(shard_bm25, own_figures_give_the_plain_search)
{
    lookalike_bm25_t *ix = lookalike_bm25_new(NULL, NULL, 0);
    for (size_t i = 0; i < NDOCS; i++)
        put_doc(ix, i + 1, &docs[i]);
    lookalike_bm25_stats_t st;
    char err[128];
    cr_assert_eq(lookalike_bm25_stats(ix, "ao thu", &st, err, sizeof err), 0);
    cr_assert_eq(st.docs, NDOCS);
    cr_assert_eq(st.nwords, 2);
    cr_assert_gt(st.df[0], 0);
    cr_assert_eq(st.df[1], 0, "\"thu\" is no term, only a prefix");
    cr_assert_geq(st.nprefix, 2);
    for (size_t i = 1; i < st.nprefix; i++)
        cr_assert(st.prefix[i - 1].df > st.prefix[i].df ||
                      (st.prefix[i - 1].df == st.prefix[i].df &&
                       strcmp(st.prefix[i - 1].term, st.prefix[i].term) < 0),
                  "completions best first");
    cr_assert_str_eq(st.prefix[0].term, "thun");
    lookalike_bm25_stats_t other;
    cr_assert_eq(lookalike_bm25_stats(ix, "ao", &other, err, sizeof err), 0);
    cr_assert_eq(lookalike_bm25_stats_add(&st, &other, err, sizeof err), LOOKALIKE_EINVAL);
    lookalike_hit_t hits[4];
    size_t n;
    cr_assert_eq(lookalike_bm25_search_global(ix, "ao", &st, 4, NULL, hits, &n, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "another query"), "%s", err);
    lookalike_bm25_stats_release(&other);
    lookalike_bm25_stats_release(&st);
    lookalike_bm25_free(ix);
}

Test(shard_bm25, completions_are_capped_to_the_most_frequent)
{
    lookalike_bm25_t *ix = lookalike_bm25_new(NULL, NULL, 0);
    char title[64];
    /* 1100 completions of "w": "w0".."w1099"; w7 is in three documents, the rest in one. */
    for (int i = 0; i < 1100; i++) {
        snprintf(title, sizeof title, "w%d", i);
        const char *f[LOOKALIKE_FIELD_COUNT] = {title, NULL, NULL, NULL, NULL};
        cr_assert_eq(lookalike_bm25_put(ix, (uint64_t)i + 1, f, NULL, 0), 0);
    }
    for (int i = 0; i < 2; i++) {
        const char *f[LOOKALIKE_FIELD_COUNT] = {"w7", NULL, NULL, NULL, NULL};
        cr_assert_eq(lookalike_bm25_put(ix, 5000 + (uint64_t)i, f, NULL, 0), 0);
    }
    lookalike_bm25_stats_t st;
    cr_assert_eq(lookalike_bm25_stats(ix, "w", &st, NULL, 0), 0);
    cr_assert_eq(st.nprefix, LOOKALIKE_BM25_PREFIX_MAX);
    cr_assert_str_eq(st.prefix[0].term, "w7");
    cr_assert_eq(st.prefix[0].df, 3);
    /* Ties at df 1 keep the smallest bytes: "w0", "w1", "w10", "w100", ... */
    cr_assert_str_eq(st.prefix[1].term, "w0");
    cr_assert_str_eq(st.prefix[2].term, "w1");
    cr_assert_str_eq(st.prefix[3].term, "w10");
    lookalike_bm25_stats_release(&st);
    lookalike_bm25_free(ix);
}

/* ---- fan-out messages ---- */

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, JSON_ALLOW_NUL, NULL);
    cr_assert_not_null(j, "%s", text);
    return j;
}

Test(shard_wire, hits_round_trip_exactly)
{
    lookalike_shard_hit_t h[3] = {{7, 0.123456789f, 1}, {1ull << 40, -3.5e-7f, 0}, {9, 1.0f / 3.0f, 2}};
    json_t *j = lookalike_wire_hits_encode(h, 3);
    char *text = json_dumps(j, JSON_COMPACT);
    json_t *back = parse(text);
    lookalike_shard_hit_t *got;
    size_t n;
    char err[128];
    cr_assert_eq(lookalike_wire_hits_decode(back, 3, 10, &got, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(got[i].doc, h[i].doc);
        cr_assert_eq(got[i].score, h[i].score, "a float survives JSON bit for bit");
        cr_assert_eq(got[i].shard, h[i].shard);
    }
    free(got);
    lookalike_shard_hit_t *none;
    cr_assert_eq(lookalike_wire_hits_decode(back, 2, 10, &none, &n, err, sizeof err), LOOKALIKE_EINVAL,
                 "shard 2 of a 2-shard collection");
    free(text);
    cr_assert_eq(lookalike_wire_hits_decode(back, 3, 2, &none, &n, err, sizeof err), LOOKALIKE_ETOOLARGE);
    cr_assert(strstr(err, "too large"), "%s", err);
    static const char *const bad[] = {
        "{}",          "[[1,2]]",    "[[-1,0.5,0]]", "[[1,\"x\",0]]", "[[1,1e300,0]]",
        "[[1.5,1,0]]", "[[1,1,-1]]", "[7]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b = parse(bad[i]);
        cr_assert_eq(lookalike_wire_hits_decode(b, 3, 10, &none, &n, err, sizeof err), LOOKALIKE_EINVAL, "%s",
                     bad[i]);
        cr_assert_null(none);
        json_decref(b);
    }
    json_decref(j);
    json_decref(back);
}

Test(shard_wire, stats_and_vectors_are_checked)
{
    lookalike_bm25_stats_t st;
    char err[160];
    static const char *const bad[] = {
        "{\"docs\":1,\"total_len\":[1,1,1,1],\"df\":[],\"prefix\":[]}",
        "{\"docs\":1,\"total_len\":[1,1,1,1,1],\"df\":[2],\"prefix\":[]}",
        "{\"docs\":3,\"total_len\":[1,1,1,1,1],\"df\":[1],\"prefix\":[[\"\",1]]}",
        "{\"docs\":3,\"total_len\":[1,1,1,1,1],\"df\":[1],\"prefix\":[[\"ab\"]]}",
        "{\"docs\":3,\"total_len\":[1,1,1,1,-1],\"df\":[1],\"prefix\":[]}",
        "{\"docs\":3,\"total_len\":[1,1,1,1,1],\"df\":[1],\"prefix\":[[\"a\\u0000b\",1]]}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b = parse(bad[i]);
        cr_assert_eq(lookalike_wire_stats_decode(b, &st, err, sizeof err), LOOKALIKE_EINVAL, "%s", bad[i]);
        json_decref(b);
    }
    json_t *ok = parse("{\"docs\":3,\"total_len\":[1,2,3,4,5],\"df\":[1,0],\"prefix\":[[\"abc\",2]]}");
    cr_assert_eq(lookalike_wire_stats_decode(ok, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.nwords, 2);
    cr_assert_eq(st.total_len[4], 5);
    cr_assert_str_eq(st.prefix[0].term, "abc");
    lookalike_bm25_stats_release(&st);
    json_decref(ok);

    float v[4] = {0.1f, -0.25f, 1e-20f, 0.7071067811865476f}, w[4];
    json_t *j = lookalike_wire_vector_encode(v, 4);
    char *text = json_dumps(j, JSON_COMPACT);
    json_t *back = parse(text);
    cr_assert_eq(lookalike_wire_vector_decode(back, w, 4, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(v, w, sizeof v), 0);
    cr_assert_eq(lookalike_wire_vector_decode(back, w, 5, err, sizeof err), LOOKALIKE_EINVAL);
    free(text);
    json_decref(j);
    json_decref(back);
}

Test(shard_wire, facets_add_up)
{
    json_t *a = parse("{\"total\":3,\"category\":{\"dress\":2,\"hat\":1},\"brand\":{},\"colour\":{\"red\":1},"
                      "\"size\":{},\"price\":{\"min\":10,\"max\":20}}");
    json_t *b = parse("{\"total\":2,\"category\":{\"dress\":1,\"shoes\":1},\"brand\":{\"x\":2},\"colour\":{},"
                      "\"size\":{\"m\":1},\"price\":{\"min\":5,\"max\":15}}");
    json_t *c = parse("{\"total\":0,\"category\":{},\"brand\":{},\"colour\":{},\"size\":{},\"price\":null}");
    char err[128];
    cr_assert_eq(lookalike_wire_facets_add(a, b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lookalike_wire_facets_add(a, c, err, sizeof err), 0, "%s", err);
    char *text = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(
        text, "{\"brand\":{\"x\":2},\"category\":{\"dress\":3,\"hat\":1,\"shoes\":1},\"colour\":{\"red\":1},"
              "\"price\":{\"max\":20.0,\"min\":5.0},\"size\":{\"m\":1},\"total\":5}");
    free(text);
    json_t *bad =
        parse("{\"total\":1,\"category\":{\"x\":-1},\"brand\":{},\"colour\":{},\"size\":{},\"price\":null}");
    cr_assert_eq(lookalike_wire_facets_add(a, bad, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "facets.category"), "%s", err);
    cr_assert_eq(json_integer_value(json_object_get(a, "total")), 5, "a bad answer changes nothing");
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(bad);
}

Test(shard_wire, node_info_round_trip)
{
    lookalike_node_info_t n = {.name = "node-2",
                               .url = "http://127.0.0.1:8082",
                               .applied_seq = 41,
                               .catalog_seq = 42,
                               .ready = 1,
                               .requests_per_s = 12.5,
                               .p50_ms = 1.5,
                               .p99_ms = -1};
    char err[160];
    lookalike_shard_set_parse("0,1", &n.shards, NULL, 0);
    json_t *j = lookalike_wire_node_encode(&n);
    lookalike_node_info_t back;
    cr_assert_eq(lookalike_wire_node_decode(j, &back, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(back.name, "node-2");
    cr_assert_str_eq(back.url, "http://127.0.0.1:8082");
    cr_assert(lookalike_shard_set_has(&back.shards, 1) && !lookalike_shard_set_has(&back.shards, 2));
    cr_assert_eq(back.applied_seq, 41);
    cr_assert_eq(back.ready, 1);
    cr_assert_eq(back.p50_ms, 1.5);
    cr_assert_eq(back.p99_ms, -1);
    json_object_set_new(j, "name", json_string("bad name"));
    cr_assert_eq(lookalike_wire_node_decode(j, &back, err, sizeof err), LOOKALIKE_EINVAL);
    json_object_set_new(j, "name", json_string("n"));
    json_object_set_new(j, "url", json_string("ftp://x"));
    cr_assert_eq(lookalike_wire_node_decode(j, &back, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "http://"), "%s", err);
    json_decref(j);
}

/* ---- node snapshot ---- */

typedef struct {
    uint64_t seq;
    char shards[64];
    int colls, recs;
    char last_json[128];
    uint64_t last_doc;
} seen_t;

static int on_header(void *ud, uint64_t seq, const char *shards, uint32_t n)
{
    seen_t *s = ud;
    (void)n;
    s->seq = seq;
    snprintf(s->shards, sizeof s->shards, "%s", shards);
    return 0;
}

static int on_coll(void *ud, const char *name, uint32_t nshards, uint32_t key, uint64_t nrec)
{
    (void)name;
    (void)nshards;
    (void)key;
    (void)nrec;
    ((seen_t *)ud)->colls++;
    return 0;
}

static int on_rec(void *ud, uint64_t doc, const char *json, size_t len)
{
    seen_t *s = ud;
    s->recs++;
    s->last_doc = doc;
    snprintf(s->last_json, sizeof s->last_json, "%.*s", (int)len, json);
    return 0;
}

static const lookalike_snap_visitor_t visitor = {on_header, on_coll, on_rec};

static char *tmp_path(void)
{
    char *dir = strdup("/tmp/lk-snap-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char *path;
    cr_assert_geq(asprintf(&path, "%s/node.snap", dir), 0);
    free(dir);
    return path;
}

static void write_sample(const char *path, uint64_t seq)
{
    char err[256];
    lookalike_snap_writer_t *w = lookalike_snap_begin(path, seq, "0,1", 2, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(lookalike_snap_collection(w, "products", 2, 0, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lookalike_snap_record(w, 3, "{\"id\":\"a\"}", 10, err, sizeof err), 0);
    cr_assert_eq(lookalike_snap_record(w, 5, "{\"id\":\"b\"}", 10, err, sizeof err), 0);
    cr_assert_eq(lookalike_snap_collection(w, "empty", 1, 1, 0, err, sizeof err), 0);
    cr_assert_eq(lookalike_snap_commit(w, err, sizeof err), 0, "%s", err);
}

static void cleanup(char *path)
{
    unlink(path);
    *strrchr(path, '/') = '\0';
    rmdir(path);
    free(path);
}

Test(snapshot, written_and_read_back)
{
    char *path = tmp_path(), err[256];
    seen_t s = {0};
    cr_assert_eq(lookalike_snap_load(path, &visitor, &s, err, sizeof err), LOOKALIKE_ENOTFOUND);
    write_sample(path, 42);
    cr_assert_eq(lookalike_snap_load(path, &visitor, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.seq, 42);
    cr_assert_str_eq(s.shards, "0,1");
    cr_assert_eq(s.colls, 2);
    cr_assert_eq(s.recs, 2);
    cr_assert_eq(s.last_doc, 5);
    cr_assert_str_eq(s.last_json, "{\"id\":\"b\"}");
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_neq(access(tmp, F_OK), 0, "no temporary file is left");
    cleanup(path);
}

Test(snapshot, a_damaged_file_is_refused_whole)
{
    char *path = tmp_path(), err[256];
    write_sample(path, 7);
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i < len; i++) {
        seen_t s = {0};
        buf[i] ^= 0x20;
        cr_assert_eq(lookalike_snap_parse(buf, len, &visitor, &s, err, sizeof err), LOOKALIKE_EINVAL,
                     "byte %zu", i);
        cr_assert(strstr(err, "corrupt"), "%s", err);
        cr_assert_eq(s.recs + s.colls, 0, "nothing is visited in a damaged file");
        buf[i] ^= 0x20;
    }
    for (size_t cut = 0; cut < len; cut++) {
        seen_t s = {0};
        cr_assert_eq(lookalike_snap_parse(buf, cut, &visitor, &s, err, sizeof err), LOOKALIKE_EINVAL,
                     "cut at %zu", cut);
    }
    seen_t s = {0};
    cr_assert_eq(lookalike_snap_parse(buf, len, &visitor, &s, err, sizeof err), 0, "%s", err);
    cleanup(path);
}

Test(snapshot, an_unfinished_write_keeps_the_old_file)
{
    char *path = tmp_path(), err[256];
    write_sample(path, 1);
    lookalike_snap_writer_t *w = lookalike_snap_begin(path, 99, "all", 1, err, sizeof err);
    cr_assert_eq(lookalike_snap_collection(w, "products", 1, 0, 3, err, sizeof err), 0);
    cr_assert_eq(lookalike_snap_record(w, 1, "{}", 2, err, sizeof err), 0);
    cr_assert_eq(lookalike_snap_commit(w, err, sizeof err), LOOKALIKE_EINVAL, "two records missing");
    cr_assert(strstr(err, "announced"), "%s", err);
    w = lookalike_snap_begin(path, 100, "all", 0, err, sizeof err);
    lookalike_snap_abort(w);
    seen_t s = {0};
    cr_assert_eq(lookalike_snap_load(path, &visitor, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.seq, 1, "the old snapshot is still there");
    cleanup(path);
}

/* ---- membership ---- */

Test(membership, a_static_list_leaves_this_node_out)
{
    char err[256];
    lookalike_membership_t *m = lookalike_membership_static(
        "n1=http://127.0.0.1:8081,n2=http://10.0.0.2:8082/,n3=http://[::1]:8083", "n2", err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_assert_str_eq(m->kind, "static");
    lookalike_member_t *l;
    size_t n;
    cr_assert_eq(m->list(m, &l, &n, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(l[0].name, "n1");
    cr_assert_str_eq(l[0].url, "http://127.0.0.1:8081");
    cr_assert_str_eq(l[1].name, "n3");
    cr_assert_str_eq(l[1].url, "http://[::1]:8083");
    free(l);
    m->free(m);
    m = lookalike_membership_static("", "n1", err, sizeof err);
    cr_assert_not_null(m);
    cr_assert_eq(m->list(m, &l, &n, err, sizeof err), 0);
    cr_assert_eq(n, 0);
    m->free(m);
}

Test(membership, bad_entries_are_named)
{
    static const char *const bad[] = {"n1",
                                      "n1=",
                                      "=http://h:1",
                                      "n 1=http://h:1",
                                      "n1=https://h:1",
                                      "n1=http://h",
                                      "n1=http://h:0",
                                      "n1=http://h:65536",
                                      "n1=http://h:80/path",
                                      "n1=http://h:1,n1=http://g:2",
                                      "n1=http://[::1:8080"};
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_null(lookalike_membership_static(bad[i], "self", err, sizeof err), "%s", bad[i]);
        cr_assert(strstr(err, "peers"), "%s: %s", bad[i], err);
    }
}
