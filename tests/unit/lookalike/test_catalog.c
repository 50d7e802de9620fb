/* The catalogue contract, run against both backends: every CATALOG_TEST runs once on SQLite
 * in a temporary directory (suite catalog_sqlite) and once on a fresh database of a real
 * PostgreSQL server (suite catalog_pg). Tests of one backend's own behaviour follow. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lookalike/lookalike.h"
#include "pg_fixture.h"

/* The backend under test in this test's process, and where its data is. */
static int use_pg;
static char dir[256];
static char pg_uri[700];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "%s/lookalike-cat-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void setup_sqlite(void)
{
    use_pg = 0;
    make_dir();
}

static void setup_pg(void)
{
    use_pg = 1;
    make_dir();
    pgt_new_db(pgt_shared(), pg_uri, sizeof pg_uri);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char sub[1024];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static void cleanup(void)
{
    remove_tree(dir);
}

TestSuite(catalog, .init = make_dir, .fini = cleanup);
TestSuite(catalog_sqlite, .init = setup_sqlite, .fini = cleanup);
TestSuite(catalog_pg, .init = setup_pg, .fini = cleanup);
TestSuite(pg, .init = setup_pg, .fini = cleanup);

/* A test of the contract, registered for both backends. */
#define CATALOG_TEST(name)                                                                                   \
    static void name##_body(void);                                                                           \
    Test(catalog_sqlite, name)                                                                               \
    {                                                                                                        \
        name##_body();                                                                                       \
    }                                                                                                        \
    Test(catalog_pg, name)                                                                                   \
    {                                                                                                        \
        name##_body();                                                                                       \
    }                                                                                                        \
    static void name##_body(void)

static lookalike_catalog_t *try_open(char *err, size_t errlen)
{
    return use_pg ? lookalike_catalog_open(pg_uri, NULL, err, errlen)
                  : lookalike_catalog_open(NULL, dir, err, errlen);
}

static lookalike_catalog_t *open_cat(void)
{
    char err[256];
    lookalike_catalog_t *c = try_open(err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(lookalike_catalog_backend(c), use_pg ? "postgresql" : "sqlite");
    return c;
}

static void create_col(lookalike_catalog_t *c, const char *name)
{
    lookalike_collection_t col = {0};
    snprintf(col.name, sizeof col.name, "%s", name);
    snprintf(col.model, sizeof col.model, "mobilenet_v1_0.75");
    snprintf(col.metric, sizeof col.metric, "cosine");
    col.dim = 768;
    snprintf(col.index_params, sizeof col.index_params, "{\"type\":\"hnsw\",\"m\":16}");
    char err[256];
    cr_assert_eq(lookalike_catalog_create_collection(c, &col, err, sizeof err), 0, "%s", err);
    cr_assert_gt(col.created_at, 0);
}

static lookalike_product_t make_product(const char *id, const char *title, double price)
{
    lookalike_product_t p;
    char err[256], json[512];
    if (id)
        snprintf(json, sizeof json,
                 "{\"id\":\"%s\",\"title\":\"%s\",\"category\":\"t-shirt\",\"colours\":[\"đỏ\"],\"price\":%g,"
                 "\"currency\":\"VND\",\"attributes\":{\"material\":\"cotton\"}}",
                 id, title, price);
    else
        snprintf(json, sizeof json, "{\"title\":\"%s\",\"price\":%g}", title, price);
    cr_assert_eq(lookalike_product_parse(json, strlen(json), LOOKALIKE_PRODUCT_INPUT, &p, err, sizeof err), 0,
                 "%s", err);
    return p;
}

static uint64_t put(lookalike_catalog_t *c, const char *col, const char *id, const char *title, int mode,
                    const char *image)
{
    lookalike_product_t p = make_product(id, title, 100);
    char err[256];
    int rc =
        lookalike_catalog_put(c, col, &p, mode, image, image ? strlen(image) : 0, NULL, 0, err, sizeof err);
    cr_assert_eq(rc, 0, "put %s: %s", id ? id : "(new)", err);
    uint64_t seq = p.seq;
    lookalike_product_release(&p);
    return seq;
}

Test(catalog, sha256_vectors)
{
    char hex[65];
    lookalike_sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    lookalike_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    lookalike_sha256_hex(m, strlen(m), hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* One million 'a', fed in uneven pieces through the incremental interface. */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    lookalike_sha256_t s;
    lookalike_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < 1000000) {
        size_t n = step < 1000000 - off ? step : 1000000 - off;
        lookalike_sha256_update(&s, a + off, n);
        off += n;
        step = step * 3 % 1000 + 1;
    }
    uint8_t d[32];
    lookalike_sha256_final(&s, d);
    char h2[65];
    for (int i = 0; i < 32; i++)
        snprintf(h2 + 2 * i, 3, "%02x", d[i]);
    cr_assert_str_eq(h2, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    lookalike_sha256_hex(a, 1000000, hex);
    cr_assert_str_eq(hex, h2);
    free(a);
    /* 55, 56 and 64 bytes: the padding edge cases. */
    static const struct {
        size_t n;
        const char *want;
    } edges[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    };
    for (size_t i = 0; i < 3; i++) {
        lookalike_sha256_hex("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", edges[i].n,
                             hex);
        cr_assert_str_eq(hex, edges[i].want, "%zu bytes", edges[i].n);
    }
}

CATALOG_TEST(collections)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    create_col(c, "alt_2");
    lookalike_collection_t col = {0}, got;
    char err[256];
    snprintf(col.name, sizeof col.name, "products");
    snprintf(col.model, sizeof col.model, "m");
    snprintf(col.metric, sizeof col.metric, "l2");
    col.dim = 4;
    cr_assert_eq(lookalike_catalog_create_collection(c, &col, err, sizeof err), LOOKALIKE_EEXIST);
    cr_assert_str_eq(err, "collection products already exists");
    cr_assert_eq(lookalike_catalog_get_collection(c, "products", &got, err, sizeof err), 0);
    cr_assert_str_eq(got.model, "mobilenet_v1_0.75");
    cr_assert_str_eq(got.metric, "cosine");
    cr_assert_eq(got.dim, 768);
    cr_assert_str_eq(got.index_params, "{\"type\":\"hnsw\",\"m\":16}");
    cr_assert_eq(lookalike_catalog_get_collection(c, "nope", &got, err, sizeof err), LOOKALIKE_ENOTFOUND);
    lookalike_collection_t *list;
    size_t n;
    cr_assert_eq(lookalike_catalog_list_collections(c, &list, &n, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(list[0].name, "alt_2");
    cr_assert_str_eq(list[1].name, "products");
    free(list);
    /* Bad settings are refused with the reason. */
    snprintf(col.name, sizeof col.name, "bad name");
    cr_assert_eq(lookalike_catalog_create_collection(c, &col, err, sizeof err), LOOKALIKE_EINVAL);
    snprintf(col.name, sizeof col.name, "x");
    snprintf(col.metric, sizeof col.metric, "hamming");
    cr_assert_eq(lookalike_catalog_create_collection(c, &col, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "metric"), "%s", err);
    snprintf(col.metric, sizeof col.metric, "ip");
    col.dim = 0;
    cr_assert_eq(lookalike_catalog_create_collection(c, &col, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "dim"), "%s", err);
    col.dim = 8;
    snprintf(col.index_params, sizeof col.index_params, "[1]");
    cr_assert_eq(lookalike_catalog_create_collection(c, &col, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "index_params"), "%s", err);
    col.index_params[0] = '\0';
    col.model[0] = '\0';
    cr_assert_eq(lookalike_catalog_create_collection(c, &col, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "model"), "%s", err);
    lookalike_catalog_close(c);
}

CATALOG_TEST(product_round_trip_and_upsert)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256];
    lookalike_product_t p = make_product("sku-1", "Áo thun", 199000);
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "JPEGDATA", 8, NULL, 0, err,
                                       sizeof err),
                 0, "%s", err);
    cr_assert_eq(p.seq, 1);
    cr_assert_eq(p.doc_id, 1);
    cr_assert_gt(p.created_at, 0);
    cr_assert_eq(p.created_at, p.updated_at);
    char want_hash[65];
    lookalike_sha256_hex("JPEGDATA", 8, want_hash);
    cr_assert_str_eq(p.image_sha256, want_hash);
    char *stored = lookalike_product_to_json(&p, LOOKALIKE_PRODUCT_STORED);
    lookalike_product_release(&p);

    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "products", "sku-1", &g, err, sizeof err), 0, "%s", err);
    char *back = lookalike_product_to_json(&g, LOOKALIKE_PRODUCT_STORED);
    cr_assert_str_eq(back, stored, "what was written is what is read");
    cr_assert_eq(g.doc_id, 1);
    cr_assert_str_eq(g.title, "Áo thun");
    cr_assert_str_eq(g.attrs[0].str, "cotton");
    int64_t created = g.created_at;
    free(back);
    free(stored);
    lookalike_product_release(&g);

    /* Insert of an existing id fails and changes nothing. */
    p = make_product("sku-1", "Other", 1);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, err, sizeof err),
        LOOKALIKE_EEXIST);
    cr_assert_str_eq(err, "product sku-1 already exists in collection products");
    cr_assert_eq(p.seq, 0);
    lookalike_product_release(&p);
    uint64_t seq;
    cr_assert_eq(lookalike_catalog_max_seq(c, &seq, err, sizeof err), 0);
    cr_assert_eq(seq, 1);

    /* Upsert replaces the fields, keeps created_at, doc_id and the image. */
    usleep(2000);
    p = make_product("sku-1", "Áo thun mới", 150000);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, NULL, 0, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(p.seq, 2);
    cr_assert_eq(p.doc_id, 1);
    lookalike_product_release(&p);
    cr_assert_eq(lookalike_catalog_get(c, "products", "sku-1", &g, err, sizeof err), 0);
    cr_assert_str_eq(g.title, "Áo thun mới");
    cr_assert_float_eq(g.price, 150000, 0);
    cr_assert_eq(g.created_at, created);
    cr_assert_gt(g.updated_at, created);
    cr_assert_eq(g.seq, 2);
    cr_assert_str_eq(g.image_sha256, want_hash);
    lookalike_product_release(&g);

    /* Upsert of a new id inserts it; get by doc id finds it with its collection. */
    cr_assert_eq(put(c, "products", "sku-2", "Quần", LOOKALIKE_PUT_UPSERT, NULL), 3);
    char colname[LOOKALIKE_COLLECTION_NAME_MAX + 1];
    cr_assert_eq(lookalike_catalog_get_by_doc(c, 3, colname, &g, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(g.id, "sku-2");
    cr_assert_str_eq(colname, "products");
    cr_assert_str_eq(g.image_sha256, "");
    lookalike_product_release(&g);
    cr_assert_eq(lookalike_catalog_get_by_doc(c, 999, colname, &g, err, sizeof err), LOOKALIKE_ENOTFOUND);
    lookalike_catalog_close(c);
}

CATALOG_TEST(generated_ids_and_bad_requests)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256];
    lookalike_product_t p = make_product(NULL, "no id", 5);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, err, sizeof err), 0,
        "%s", err);
    cr_assert_not_null(p.id);
    cr_assert_eq(strlen(p.id), 16);
    cr_assert(lookalike_product_id_valid(p.id));
    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "products", p.id, &g, err, sizeof err), 0);
    lookalike_product_release(&g);
    lookalike_product_release(&p);

    p = make_product(NULL, "no id", 5);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, NULL, 0, err, sizeof err),
        LOOKALIKE_EINVAL);
    cr_assert_str_eq(err, "an upsert needs a product id");
    cr_assert_eq(
        lookalike_catalog_put(c, "missing", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, err, sizeof err),
        LOOKALIKE_ENOTFOUND);
    cr_assert_str_eq(err, "no collection missing");
    cr_assert_null(p.id, "a generated id is taken back when the write fails");
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "", 0, NULL, 0, err, sizeof err),
        LOOKALIKE_EINVAL);
    cr_assert_str_eq(err, "image is empty");
    p.id = strdup("bad/id");
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, NULL, 0, err, sizeof err),
        LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "field \"id\""), "%s", err);
    free(p.id);
    p.id = strdup("ok");
    p.price = -3;
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, NULL, 0, err, sizeof err),
        LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "price"), "%s", err);
    p.price = 3;
    free(p.title);
    p.title = strdup("bad \xff utf8");
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, NULL, 0, err, sizeof err),
        LOOKALIKE_EUTF8);
    cr_assert(strstr(err, "title"), "%s", err);
    lookalike_product_release(&p);
    cr_assert_eq(lookalike_catalog_get(c, "products", "../x", &g, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert_eq(lookalike_catalog_get(c, "products", "absent", &g, err, sizeof err), LOOKALIKE_ENOTFOUND);
    cr_assert_str_eq(err, "no product absent in collection products");
    uint64_t seq;
    cr_assert_eq(lookalike_catalog_max_seq(c, &seq, err, sizeof err), 0);
    cr_assert_eq(seq, 1, "failed writes take no sequence number");
    lookalike_catalog_close(c);
}

CATALOG_TEST(delete_and_change_log)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "a");
    create_col(c, "b");
    char err[256];
    put(c, "a", "p1", "one", LOOKALIKE_PUT_INSERT, NULL);    /* seq 1 */
    put(c, "a", "p2", "two", LOOKALIKE_PUT_INSERT, NULL);    /* seq 2 */
    put(c, "b", "p1", "other", LOOKALIKE_PUT_INSERT, NULL);  /* seq 3: same id, other collection */
    put(c, "a", "p1", "one v2", LOOKALIKE_PUT_UPSERT, NULL); /* seq 4 */
    uint64_t seq = 0;
    cr_assert_eq(lookalike_catalog_delete(c, "a", "p2", &seq, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seq, 5);
    cr_assert_eq(lookalike_catalog_delete(c, "a", "p2", &seq, err, sizeof err), LOOKALIKE_ENOTFOUND);
    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "a", "p2", &g, err, sizeof err), LOOKALIKE_ENOTFOUND);
    cr_assert_eq(lookalike_catalog_get(c, "b", "p1", &g, err, sizeof err), 0);
    cr_assert_str_eq(g.title, "other");
    lookalike_product_release(&g);

    lookalike_change_t ch[10];
    size_t n;
    cr_assert_eq(lookalike_catalog_changes(c, 0, 10, ch, &n, err, sizeof err), 0, "%s", err);
    /* One entry per product, its latest change, in seq order. */
    cr_assert_eq(n, 3);
    cr_assert_eq(ch[0].seq, 3);
    cr_assert_str_eq(ch[0].collection, "b");
    cr_assert_eq(ch[0].deleted, 0);
    cr_assert_eq(ch[1].seq, 4);
    cr_assert_str_eq(ch[1].id, "p1");
    cr_assert_eq(ch[1].doc_id, 1);
    cr_assert_eq(ch[2].seq, 5);
    cr_assert_str_eq(ch[2].id, "p2");
    cr_assert_eq(ch[2].doc_id, 2);
    cr_assert_eq(ch[2].deleted, 1);
    cr_assert_eq(lookalike_catalog_changes(c, 4, 10, ch, &n, err, sizeof err), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(ch[0].seq, 5);
    cr_assert_eq(lookalike_catalog_changes(c, 0, 2, ch, &n, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(lookalike_catalog_changes(c, 0, 0, ch, &n, err, sizeof err), LOOKALIKE_EINVAL);
    /* A re-inserted id is a new document. */
    uint64_t s6 = put(c, "a", "p2", "two again", LOOKALIKE_PUT_INSERT, NULL);
    cr_assert_eq(s6, 6);
    cr_assert_eq(lookalike_catalog_get(c, "a", "p2", &g, err, sizeof err), 0);
    cr_assert_eq(g.doc_id, 6);
    lookalike_product_release(&g);
    lookalike_catalog_close(c);
}

CATALOG_TEST(paging)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    create_col(c, "empty");
    char id[32], err[256];
    for (int i = 0; i < 57; i++) {
        snprintf(id, sizeof id, "id%03d", (i * 37) % 57);
        put(c, "products", id, "x", LOOKALIKE_PUT_INSERT, NULL);
    }
    lookalike_product_t page[10];
    char cursor[LOOKALIKE_ID_MAX + 1] = "", next[LOOKALIKE_ID_MAX + 1];
    size_t n, seen = 0;
    uint64_t total;
    int pages = 0;
    do {
        cr_assert_eq(
            lookalike_catalog_list(c, "products", cursor, 10, page, &n, next, &total, err, sizeof err), 0,
            "%s", err);
        cr_assert_eq(total, 57);
        for (size_t i = 0; i < n; i++) {
            snprintf(id, sizeof id, "id%03zu", seen++);
            cr_assert_str_eq(page[i].id, id);
            lookalike_product_release(&page[i]);
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        pages++;
    } while (cursor[0]);
    cr_assert_eq(seen, 57);
    cr_assert_eq(pages, 6);
    /* A page that ends exactly at the end has no next cursor. */
    cr_assert_eq(lookalike_catalog_list(c, "products", "id046", 10, page, &n, next, NULL, err, sizeof err),
                 0);
    cr_assert_eq(n, 10);
    cr_assert_str_eq(next, "");
    for (size_t i = 0; i < n; i++)
        lookalike_product_release(&page[i]);
    cr_assert_eq(lookalike_catalog_list(c, "empty", NULL, 10, page, &n, next, &total, err, sizeof err), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(total, 0);
    cr_assert_eq(lookalike_catalog_list(c, "nope", NULL, 10, page, &n, next, &total, err, sizeof err),
                 LOOKALIKE_ENOTFOUND);
    cr_assert_eq(lookalike_catalog_list(c, "products", NULL, 0, page, &n, next, &total, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert_eq(lookalike_catalog_list(c, "products", "a b", 5, page, &n, next, &total, err, sizeof err),
                 LOOKALIKE_EINVAL);
    lookalike_catalog_close(c);
}

static int count_files(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    char sub[1024];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_files(sub);
        else
            n++;
    }
    closedir(d);
    return n;
}

CATALOG_TEST(images_are_content_addressed)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256], h1[65], h2[65], h3[65], path[512];
    cr_assert_eq(lookalike_catalog_put_image(c, "same bytes", 10, h1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lookalike_catalog_put_image(c, "same bytes", 10, h2, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(h1, h2);
    put(c, "products", "a", "x", LOOKALIKE_PUT_INSERT, "same bytes");
    put(c, "products", "b", "x", LOOKALIKE_PUT_INSERT, "other bytes");
    cr_assert_eq(lookalike_catalog_put_image(c, "other bytes", 11, h3, err, sizeof err), 0);
    if (use_pg) {
        char count[32];
        pgt_sql(pg_uri, "SELECT count(*) FROM lookalike.images", count, sizeof count);
        cr_assert_str_eq(count, "2", "duplicates cost nothing");
    } else {
        snprintf(path, sizeof path, "%s/images", dir);
        cr_assert_eq(count_files(path), 2, "duplicates cost nothing; no temporary files left");
        snprintf(path, sizeof path, "%s/images/%.2s/%s", dir, h1, h1);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "%s", path);
    }
    void *data;
    size_t len;
    cr_assert_eq(lookalike_catalog_get_image(c, h3, &data, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 11);
    cr_assert(memcmp(data, "other bytes", 11) == 0);
    free(data);
    char absent[65];
    lookalike_sha256_hex("never stored", 12, absent);
    cr_assert_eq(lookalike_catalog_get_image(c, absent, &data, &len, err, sizeof err), LOOKALIKE_ENOTFOUND);
    cr_assert_eq(lookalike_catalog_get_image(c, "../../etc/passwd", &data, &len, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert_eq(lookalike_catalog_get_image(c, "ABCDEF", &data, &len, err, sizeof err), LOOKALIKE_EINVAL);
    lookalike_catalog_close(c);
}

CATALOG_TEST(reopen_keeps_everything)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    put(c, "products", "keep", "kept", LOOKALIKE_PUT_INSERT, "img");
    put(c, "products", "gone", "deleted", LOOKALIKE_PUT_INSERT, NULL);
    char err[256];
    cr_assert_eq(lookalike_catalog_delete(c, "products", "gone", NULL, err, sizeof err), 0);
    lookalike_catalog_close(c);

    c = open_cat();
    lookalike_collection_t col;
    cr_assert_eq(lookalike_catalog_get_collection(c, "products", &col, err, sizeof err), 0);
    cr_assert_eq(col.dim, 768);
    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "products", "keep", &g, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(g.title, "kept");
    void *data;
    size_t len;
    cr_assert_eq(lookalike_catalog_get_image(c, g.image_sha256, &data, &len, err, sizeof err), 0);
    cr_assert_eq(len, 3);
    free(data);
    lookalike_product_release(&g);
    cr_assert_eq(lookalike_catalog_get(c, "products", "gone", &g, err, sizeof err), LOOKALIKE_ENOTFOUND);
    uint64_t seq;
    cr_assert_eq(lookalike_catalog_max_seq(c, &seq, err, sizeof err), 0);
    cr_assert_eq(seq, 3);
    /* Sequence numbers go on from where they were. */
    cr_assert_eq(put(c, "products", "new", "n", LOOKALIKE_PUT_INSERT, NULL), 4);
    lookalike_catalog_close(c);
}

CATALOG_TEST(newer_schema_is_refused)
{
    lookalike_catalog_t *c = open_cat();
    lookalike_catalog_close(c);
    if (use_pg) {
        pgt_sql(pg_uri, "UPDATE lookalike.meta SET value = 99 WHERE key = 'schema_version'", NULL, 0);
    } else {
        char path[512];
        snprintf(path, sizeof path, "%s/catalog.db", dir);
        FILE *f = fopen(path, "r+b");
        cr_assert_not_null(f);
        /* user_version lives at byte offset 60 of the database header, big-endian. */
        fseek(f, 60, SEEK_SET);
        unsigned char v[4] = {0, 0, 0, 99};
        fwrite(v, 1, 4, f);
        fclose(f);
    }
    char err[256];
    cr_assert_null(try_open(err, sizeof err));
    cr_assert(strstr(err, "schema version 99 is newer"), "%s", err);
}

CATALOG_TEST(acknowledged_writes_survive_kill_9)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    lookalike_catalog_close(c);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(pipefd[0]);
        char err[256], id[32];
        lookalike_catalog_t *cc = try_open(err, sizeof err);
        if (!cc)
            _exit(2);
        for (int i = 0;; i++) {
            lookalike_product_t p;
            lookalike_product_init(&p);
            snprintf(id, sizeof id, "k%06d", i);
            p.id = strdup(id);
            p.title = strdup("written before the kill");
            if (lookalike_catalog_put(cc, "products", &p, LOOKALIKE_PUT_INSERT, id, strlen(id), NULL, 0, err,
                                      sizeof err) != 0)
                _exit(3);
            lookalike_product_release(&p);
            /* Acknowledge only after put returned. */
            if (write(pipefd[1], &i, sizeof i) != sizeof i)
                _exit(4);
        }
    }
    close(pipefd[1]);
    int last = -1, v;
    while (last < 40 && read(pipefd[0], &v, sizeof v) == sizeof v)
        last = v;
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "the writer was killed, not exited (status %d)", status);
    close(pipefd[0]);
    cr_assert_geq(last, 40);
    c = open_cat();
    char err[256], id[32];
    for (int i = 0; i <= last; i++) {
        lookalike_product_t g;
        snprintf(id, sizeof id, "k%06d", i);
        cr_assert_eq(lookalike_catalog_get(c, "products", id, &g, err, sizeof err), 0,
                     "acknowledged %s lost: %s", id, err);
        void *data;
        size_t len;
        cr_assert_eq(lookalike_catalog_get_image(c, g.image_sha256, &data, &len, err, sizeof err), 0, "%s",
                     err);
        cr_assert_eq(len, strlen(id));
        free(data);
        lookalike_product_release(&g);
    }
    lookalike_catalog_close(c);
}

static void fill_vec(float *v, uint32_t dim, float base)
{
    for (uint32_t i = 0; i < dim; i++)
        v[i] = base + (float)i / 1000.0f;
}

CATALOG_TEST(vectors_are_stored_with_products)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256];
    enum { DIM = 768 };
    static float v[DIM], got[DIM];
    fill_vec(v, DIM, -0.5f);
    lookalike_product_t p = make_product("v1", "with vector", 1);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "photo-1", 7, v, DIM, err, sizeof err),
        0, "%s", err);
    uint64_t doc = p.doc_id;
    lookalike_product_release(&p);
    cr_assert_eq(lookalike_catalog_get_vector(c, doc, got, DIM, err, sizeof err), 0, "%s", err);
    cr_assert(memcmp(v, got, sizeof v) == 0, "the vector comes back bit for bit");
    cr_assert_eq(lookalike_catalog_get_vector(c, doc, got, DIM - 1, err, sizeof err), LOOKALIKE_EINVAL);

    /* An upsert that keeps the photo keeps the vector. */
    put(c, "products", "v1", "new title", LOOKALIKE_PUT_UPSERT, NULL);
    cr_assert_eq(lookalike_catalog_get_vector(c, doc, got, DIM, err, sizeof err), 0, "%s", err);
    cr_assert(memcmp(v, got, sizeof v) == 0);
    /* A new vector replaces it. */
    fill_vec(v, DIM, 0.25f);
    p = make_product("v1", "newer", 1);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, v, DIM, err, sizeof err), 0,
        "%s", err);
    lookalike_product_release(&p);
    cr_assert_eq(lookalike_catalog_get_vector(c, doc, got, DIM, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(got[0], 0.25f, 0);
    /* A new photo without a vector makes the old vector stale: it is dropped. */
    put(c, "products", "v1", "other photo", LOOKALIKE_PUT_UPSERT, "photo-2");
    cr_assert_eq(lookalike_catalog_get_vector(c, doc, got, DIM, err, sizeof err), LOOKALIKE_ENOTFOUND);

    /* Wrong sizes and values are refused and write nothing. */
    uint64_t before, after;
    cr_assert_eq(lookalike_catalog_max_seq(c, &before, err, sizeof err), 0);
    p = make_product("v2", "bad", 1);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "x", 1, v, 4, err, sizeof err),
        LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "dimension 768"), "%s", err);
    v[3] = NAN;
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "x", 1, v, DIM, err, sizeof err),
        LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "finite"), "%s", err);
    lookalike_product_release(&p);
    cr_assert_eq(lookalike_catalog_max_seq(c, &after, err, sizeof err), 0);
    cr_assert_eq(after, before);
    cr_assert_eq(lookalike_catalog_get(c, "products", "v2", &p, err, sizeof err), LOOKALIKE_ENOTFOUND);

    /* A deleted product has no vector. */
    cr_assert_eq(lookalike_catalog_delete(c, "products", "v1", NULL, err, sizeof err), 0);
    cr_assert_eq(lookalike_catalog_get_vector(c, doc, got, DIM, err, sizeof err), LOOKALIKE_ENOTFOUND);
    lookalike_catalog_close(c);
}

CATALOG_TEST(insert_retry_is_idempotent)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256];
    lookalike_product_t p = make_product("r1", "retried", 5);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "img", 3, NULL, 0, err, sizeof err), 0,
        "%s", err);
    uint64_t seq = p.seq, doc = p.doc_id;
    int64_t created = p.created_at;
    lookalike_product_release(&p);
    put(c, "products", "other", "x", LOOKALIKE_PUT_INSERT, NULL);

    /* The same insert again (a client that lost the answer) gets what is stored. */
    p = make_product("r1", "retried", 5);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "img", 3, NULL, 0, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(p.seq, seq);
    cr_assert_eq(p.doc_id, doc);
    cr_assert_eq(p.created_at, created);
    lookalike_product_release(&p);
    uint64_t max;
    cr_assert_eq(lookalike_catalog_max_seq(c, &max, err, sizeof err), 0);
    cr_assert_eq(max, 2, "the retry wrote nothing");

    /* Another photo or another field is another product: a conflict. */
    p = make_product("r1", "retried", 5);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "img2", 4, NULL, 0, err, sizeof err),
        LOOKALIKE_EEXIST);
    lookalike_product_release(&p);
    p = make_product("r1", "retried", 6);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "img", 3, NULL, 0, err, sizeof err),
        LOOKALIKE_EEXIST);
    lookalike_product_release(&p);
    lookalike_change_t ch[4];
    size_t n;
    cr_assert_eq(lookalike_catalog_changes(c, 0, 4, ch, &n, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    lookalike_catalog_close(c);
}

/* A catalogue written before vectors were stored (schema version 1) opens and gains them. */
Test(catalog_sqlite, version_1_catalogue_is_migrated)
{
    char path[512];
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO meta(key, value) VALUES('seq', 1);"
        "CREATE TABLE collections(name TEXT PRIMARY KEY, model TEXT NOT NULL, metric TEXT NOT NULL,"
        " dim INTEGER NOT NULL, index_params TEXT NOT NULL, created_at INTEGER NOT NULL);"
        "CREATE TABLE products(collection TEXT NOT NULL REFERENCES collections(name), id TEXT NOT NULL,"
        " doc_id INTEGER NOT NULL UNIQUE, seq INTEGER NOT NULL, created_at INTEGER NOT NULL,"
        " updated_at INTEGER NOT NULL, image_sha256 TEXT, body TEXT NOT NULL,"
        " PRIMARY KEY(collection, id)) WITHOUT ROWID;"
        "CREATE TABLE changes(seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL,"
        " doc_id INTEGER NOT NULL, deleted INTEGER NOT NULL);"
        "CREATE UNIQUE INDEX changes_product ON changes(collection, id);"
        "INSERT INTO collections VALUES('products', 'm', 'cosine', 2, '{}', 1);"
        "INSERT INTO products VALUES('products', 'old', 1, 1, 1, 1, NULL,"
        " '{\"id\":\"old\",\"title\":\"from v1\",\"created_at\":1,\"updated_at\":1,\"seq\":1}');"
        "INSERT INTO changes VALUES(1, 'products', 'old', 1, 0);"
        "PRAGMA user_version = 1;";
    cr_assert_eq(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    lookalike_catalog_t *c = open_cat();
    char err[256];
    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "products", "old", &g, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(g.title, "from v1");
    lookalike_product_release(&g);
    float v[2] = {1, 2}, got[2];
    cr_assert_eq(lookalike_catalog_get_vector(c, 1, got, 2, err, sizeof err), LOOKALIKE_ENOTFOUND);
    lookalike_product_t p = make_product("new", "with vector", 1);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, v, 2, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(p.seq, 2);
    cr_assert_eq(lookalike_catalog_get_vector(c, p.doc_id, got, 2, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(got[1], 2.0f, 0);
    lookalike_product_release(&p);
    lookalike_catalog_close(c);
}

/* ---- PostgreSQL only ---- */

Test(pg, connection_strings)
{
    char err[512], desc[256];
    cr_assert_null(lookalike_catalog_open("postgresql://%zz", NULL, err, sizeof err));
    cr_assert(strstr(err, "bad PostgreSQL connection string"), "%s", err);
    cr_assert_null(lookalike_catalog_open("mysql://x", "/nonexistent", err, sizeof err));
    cr_assert(strstr(err, "unknown store"), "%s", err);
    /* Nothing listens on port 1: a clear error, quickly (no retry loop at open). */
    cr_assert_null(lookalike_catalog_open("postgresql://u@127.0.0.1:1/db", NULL, err, sizeof err));
    cr_assert(strstr(err, "cannot reach a writable PostgreSQL server"), "%s", err);
    lookalike_store_describe("postgresql://app:s3cret@h1:5432,h2:5433/shop?sslmode=disable", desc,
                             sizeof desc);
    cr_assert_str_eq(desc, "postgresql (host h1,h2, port 5432,5433, database shop, user app)");
    cr_assert_null(strstr(desc, "s3cret"));
    lookalike_store_describe("host=db password=pw dbname=x", desc, sizeof desc);
    cr_assert_null(strstr(desc, "pw"), "%s", desc);
    lookalike_store_describe(NULL, desc, sizeof desc);
    cr_assert_str_eq(desc, "sqlite");
    /* A key=value string works as well as a URI. */
    char kv[800];
    const char *port = strrchr(pg_uri, ':') + 1;
    snprintf(kv, sizeof kv, "host=127.0.0.1 port=%.*s user=postgres dbname=%s", (int)strcspn(port, "/"), port,
             strrchr(pg_uri, '/') + 1);
    lookalike_catalog_t *c = lookalike_catalog_open(kv, NULL, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    lookalike_catalog_close(c);
}

/* Every pooled connection goes stale when the server restarts; calls go on without an error. */
Test(pg, reconnects_after_server_restart)
{
    char sdir[256], base[256];
    pgt_start(sdir, sizeof sdir, base, sizeof base);
    pgt_new_db(base, pg_uri, sizeof pg_uri);
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    put(c, "products", "before", "before the restart", LOOKALIKE_PUT_INSERT, "img");
    pgt_ctl("restart", sdir);
    char err[256];
    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "products", "before", &g, err, sizeof err), 0, "%s", err);
    lookalike_product_release(&g);
    cr_assert_eq(put(c, "products", "after", "after the restart", LOOKALIKE_PUT_INSERT, NULL), 2);
    /* Down, a call fails with "retry"; up again, the same handle works. */
    pgt_ctl("crash", sdir);
    lookalike_product_t p = make_product("down", "while down", 1);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, err, sizeof err),
        LOOKALIKE_EAGAIN);
    cr_assert(strstr(err, "cannot reach"), "%s", err);
    cr_assert_eq(lookalike_catalog_get(c, "products", "before", &g, err, sizeof err), LOOKALIKE_EAGAIN);
    pgt_ctl("restart", sdir);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(p.seq, 3, "the failed write took no number");
    lookalike_product_release(&p);
    lookalike_catalog_close(c);
    pgt_ctl("stop", sdir);
}

/* ---- concurrent writers and a tailer: four writer threads on two catalogue handles, so
 * writes come from several connections and each handle's pool is shared by two threads ---- */

enum { WRITERS = 4, PER_WRITER = 150 };

typedef struct {
    int writer;
    lookalike_catalog_t *c; /* shared by two writers: its connection pool serves both */
    int failures;
    char err[256];
} writer_t;

typedef struct {
    int stop;
    uint64_t last; /* the highest seq applied */
    uint64_t seen; /* changes applied */
    int broken;    /* a batch that was not last+1, last+2, ... */
    char why[300];
    pthread_mutex_t mu;
} tailer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < PER_WRITER; i++) {
        char id[32];
        snprintf(id, sizeof id, "w%d-%04d", w->writer, i);
        lookalike_product_t p;
        lookalike_product_init(&p);
        p.id = strdup(id);
        p.title = strdup("concurrent");
        if (lookalike_catalog_put(w->c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, w->err,
                                  sizeof w->err) != 0)
            w->failures++;
        lookalike_product_release(&p);
    }
    return NULL;
}

/* Applies what the change log offers, as a query node would; every batch must continue the
 * previous one exactly, since inserts of distinct ids are never superseded. */
static int tail_once(lookalike_catalog_t *c, tailer_t *t)
{
    lookalike_change_t ch[64];
    size_t n = 0;
    char err[256];
    if (lookalike_catalog_changes(c, t->last, 64, ch, &n, err, sizeof err) != 0) {
        snprintf(t->why, sizeof t->why, "changes: %s", err);
        t->broken = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (ch[i].seq != t->last + 1 && !t->broken) {
            snprintf(t->why, sizeof t->why, "after seq %llu came %llu", (unsigned long long)t->last,
                     (unsigned long long)ch[i].seq);
            t->broken = 1;
        }
        t->last = ch[i].seq;
        t->seen++;
    }
    return (int)n;
}

static void *tailer_main(void *arg)
{
    tailer_t *t = arg;
    char err[256];
    lookalike_catalog_t *c = lookalike_catalog_open(pg_uri, NULL, err, sizeof err);
    if (!c) {
        snprintf(t->why, sizeof t->why, "open: %s", err);
        t->broken = 1;
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&t->mu);
        int stop = t->stop;
        pthread_mutex_unlock(&t->mu);
        if (tail_once(c, t) == 0 && stop)
            break;
    }
    lookalike_catalog_close(c);
    return NULL;
}

Test(pg, change_log_is_gap_free_under_concurrent_writers)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    pthread_t wt[WRITERS], tt;
    writer_t w[WRITERS];
    tailer_t t = {0};
    pthread_mutex_init(&t.mu, NULL);
    cr_assert_eq(pthread_create(&tt, NULL, tailer_main, &t), 0);
    lookalike_catalog_t *handles[2] = {open_cat(), open_cat()};
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer_t){.writer = i, .c = handles[i % 2]};
        cr_assert_eq(pthread_create(&wt[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(wt[i], NULL);
        cr_assert_eq(w[i].failures, 0, "writer %d: %s", i, w[i].err);
    }
    pthread_mutex_lock(&t.mu);
    t.stop = 1;
    pthread_mutex_unlock(&t.mu);
    pthread_join(tt, NULL);
    cr_assert_not(t.broken, "%s", t.why);
    cr_assert_eq(t.seen, WRITERS * PER_WRITER, "the tailer applied every write once");
    uint64_t max;
    char err[256];
    cr_assert_eq(lookalike_catalog_max_seq(c, &max, err, sizeof err), 0);
    cr_assert_eq(max, WRITERS * PER_WRITER);
    cr_assert_eq(t.last, max);
    pthread_mutex_destroy(&t.mu);
    lookalike_catalog_close(handles[0]);
    lookalike_catalog_close(handles[1]);
    lookalike_catalog_close(c);
}

/* ---- a connection that drops in the middle of a write ---- */

typedef struct {
    lookalike_catalog_t *c;
    int rc;
    char err[512];
} blocked_put_t;

static void *blocked_put_main(void *arg)
{
    blocked_put_t *b = arg;
    lookalike_product_t p = make_product("cut", "cut off", 1);
    b->rc = lookalike_catalog_put(b->c, "products", &p, LOOKALIKE_PUT_INSERT, "photo", 5, NULL, 0, b->err,
                                  sizeof b->err);
    lookalike_product_release(&p);
    return NULL;
}

Test(pg, dropped_connection_mid_write_is_retryable)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    put(c, "products", "first", "x", LOOKALIKE_PUT_INSERT, NULL);
    /* Another session holds the counter row, so the write stops in the middle of its
     * transaction (after BEGIN and its first statements); then its connection is cut. */
    PGconn *holder = PQconnectdb(pg_uri);
    cr_assert_eq(PQstatus(holder), CONNECTION_OK);
    PQclear(PQexec(holder, "BEGIN"));
    PGresult *r = PQexec(holder, "UPDATE lookalike.meta SET value = value WHERE key = 'seq'");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    blocked_put_t b = {.c = c};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, blocked_put_main, &b), 0);
    char killed[16] = "";
    for (int i = 0; i < 1000 && strcmp(killed, "t") != 0; i++) {
        usleep(10000);
        pgt_sql(pg_uri,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lookalike'"
                " AND wait_event_type = 'Lock' AND datname = current_database()",
                killed, sizeof killed);
    }
    cr_assert_str_eq(killed, "t", "the write never waited on the counter");
    pthread_join(th, NULL);
    cr_assert_eq(b.rc, LOOKALIKE_EAGAIN, "%s", b.err);
    cr_assert(strstr(b.err, "lost the connection"), "%s", b.err);
    cr_assert(strstr(b.err, "not applied"), "%s", b.err);
    PQclear(PQexec(holder, "ROLLBACK"));
    PQfinish(holder);

    /* Nothing of it was written; the next call reconnects and the retry succeeds. */
    char err[256];
    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "products", "cut", &g, err, sizeof err), LOOKALIKE_ENOTFOUND);
    uint64_t max;
    cr_assert_eq(lookalike_catalog_max_seq(c, &max, err, sizeof err), 0);
    cr_assert_eq(max, 1);
    blocked_put_main(&b);
    cr_assert_eq(b.rc, 0, "%s", b.err);
    cr_assert_eq(lookalike_catalog_get(c, "products", "cut", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.seq, 2);
    lookalike_product_release(&g);
    lookalike_catalog_close(c);
}

/* A primary, a streaming standby, both in one multi-host connection string: the catalogue
 * writes to the primary, and after the primary dies and the standby is promoted the same handle
 * writes to the new primary, which has every write acknowledged before. */
Test(pg, follows_a_failover_to_the_promoted_standby)
{
    char pdir[256], pbase[256], sdir[256], sbase[256];
    pgt_start(pdir, sizeof pdir, pbase, sizeof pbase);
    char admin[600], created[8];
    snprintf(admin, sizeof admin, "%s/postgres", pbase);
    pgt_sql(admin, "CREATE DATABASE shop", NULL, 0);
    pgt_standby(pdir, sdir, sizeof sdir, sbase, sizeof sbase);
    /* The standby first: the read-write check must skip it. */
    snprintf(pg_uri, sizeof pg_uri, "postgresql://postgres@%s,%s/shop?connect_timeout=2",
             strstr(sbase, "@") + 1, strstr(pbase, "@") + 1);
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%02d", i);
        put(c, "products", id, "before failover", LOOKALIKE_PUT_INSERT, "img");
    }
    /* Wait until the standby has replayed everything the primary wrote. */
    char lsn[64], caught[8] = "";
    pgt_sql(admin, "SELECT pg_current_wal_lsn()", lsn, sizeof lsn);
    char sadmin[600], q[200];
    snprintf(sadmin, sizeof sadmin, "%s/postgres", sbase);
    snprintf(q, sizeof q, "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", lsn);
    for (int i = 0; i < 500 && strcmp(caught, "t") != 0; i++) {
        pgt_sql(sadmin, q, caught, sizeof caught);
        usleep(10000);
    }
    cr_assert_str_eq(caught, "t", "the standby never caught up");
    pgt_ctl("crash", pdir);
    pgt_ctl("promote", sdir);
    char err[512];
    lookalike_product_t p = make_product("after", "after failover", 1);
    int rc =
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, err, sizeof err);
    if (rc == LOOKALIKE_EAGAIN)
        rc =
            lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, NULL, 0, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(p.seq, 21, "numbers go on from the old primary's");
    lookalike_product_release(&p);
    pgt_sql(sadmin, "SELECT pg_is_in_recovery()", created, sizeof created);
    cr_assert_str_eq(created, "f");
    lookalike_change_t ch[32];
    size_t n;
    cr_assert_eq(lookalike_catalog_changes(c, 0, 32, ch, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 21);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ch[i].seq, i + 1);
    lookalike_catalog_close(c);
    pgt_ctl("stop", pdir);
    pgt_ctl("stop", sdir);
}
