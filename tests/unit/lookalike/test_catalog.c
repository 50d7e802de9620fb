#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lookalike/lookalike.h"

static char dir[256];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "%s/lookalike-cat-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
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

static lookalike_catalog_t *open_cat(void)
{
    char err[256];
    lookalike_catalog_t *c = lookalike_catalog_open_sqlite(dir, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
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
    int rc = lookalike_catalog_put(c, col, &p, mode, image, image ? strlen(image) : 0, err, sizeof err);
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

Test(catalog, collections)
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

Test(catalog, product_round_trip_and_upsert)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256];
    lookalike_product_t p = make_product("sku-1", "Áo thun", 199000);
    cr_assert_eq(
        lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "JPEGDATA", 8, err, sizeof err), 0,
        "%s", err);
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
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, err, sizeof err),
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
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, err, sizeof err), 0,
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

Test(catalog, generated_ids_and_bad_requests)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256];
    lookalike_product_t p = make_product(NULL, "no id", 5);
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, err, sizeof err), 0,
                 "%s", err);
    cr_assert_not_null(p.id);
    cr_assert_eq(strlen(p.id), 16);
    cr_assert(lookalike_product_id_valid(p.id));
    lookalike_product_t g;
    cr_assert_eq(lookalike_catalog_get(c, "products", p.id, &g, err, sizeof err), 0);
    lookalike_product_release(&g);
    lookalike_product_release(&p);

    p = make_product(NULL, "no id", 5);
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert_str_eq(err, "an upsert needs a product id");
    cr_assert_eq(lookalike_catalog_put(c, "missing", &p, LOOKALIKE_PUT_INSERT, NULL, 0, err, sizeof err),
                 LOOKALIKE_ENOTFOUND);
    cr_assert_str_eq(err, "no collection missing");
    cr_assert_null(p.id, "a generated id is taken back when the write fails");
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, "", 0, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert_str_eq(err, "image is empty");
    p.id = strdup("bad/id");
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "field \"id\""), "%s", err);
    free(p.id);
    p.id = strdup("ok");
    p.price = -3;
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "price"), "%s", err);
    p.price = 3;
    free(p.title);
    p.title = strdup("bad \xff utf8");
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_UPSERT, NULL, 0, err, sizeof err),
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

Test(catalog, delete_and_change_log)
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

Test(catalog, paging)
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

Test(catalog, images_are_content_addressed)
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
    snprintf(path, sizeof path, "%s/images", dir);
    cr_assert_eq(count_files(path), 2, "duplicates cost nothing; no temporary files left");
    snprintf(path, sizeof path, "%s/images/%.2s/%s", dir, h1, h1);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
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

Test(catalog, reopen_keeps_everything)
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

Test(catalog, newer_schema_is_refused)
{
    lookalike_catalog_t *c = open_cat();
    lookalike_catalog_close(c);
    char path[512];
    snprintf(path, sizeof path, "%s/catalog.db", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    /* user_version lives at byte offset 60 of the database header, big-endian. */
    fseek(f, 60, SEEK_SET);
    unsigned char v[4] = {0, 0, 0, 99};
    fwrite(v, 1, 4, f);
    fclose(f);
    char err[256];
    cr_assert_null(lookalike_catalog_open_sqlite(dir, err, sizeof err));
    cr_assert(strstr(err, "schema version 99 is newer"), "%s", err);
}

Test(catalog, acknowledged_writes_survive_kill_9)
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
        lookalike_catalog_t *cc = lookalike_catalog_open_sqlite(dir, err, sizeof err);
        if (!cc)
            _exit(2);
        for (int i = 0;; i++) {
            lookalike_product_t p;
            lookalike_product_init(&p);
            snprintf(id, sizeof id, "k%06d", i);
            p.id = strdup(id);
            p.title = strdup("written before the kill");
            if (lookalike_catalog_put(cc, "products", &p, LOOKALIKE_PUT_INSERT, id, strlen(id), err,
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

Test(catalog, vectors_are_stored_beside_the_product)
{
    lookalike_catalog_t *c = open_cat();
    create_col(c, "products");
    char err[256];
    lookalike_product_t p = make_product("vec1", "with a vector", 5), got;
    p.vector_dim = 768;
    p.vector = calloc(768, sizeof(float));
    for (int i = 0; i < 768; i++)
        p.vector[i] = (float)i / 7.0f;
    cr_assert_eq(lookalike_catalog_put(c, "products", &p, LOOKALIKE_PUT_INSERT, NULL, 0, err, sizeof err), 0,
                 "%s", err);
    uint64_t doc = p.doc_id;
    lookalike_catalog_close(c);
    c = open_cat();
    cr_assert_eq(lookalike_catalog_get(c, "products", "vec1", &got, err, sizeof err), 0, "%s", err);
    cr_assert_eq(got.vector_dim, 768);
    cr_assert_eq(memcmp(got.vector, p.vector, 768 * sizeof(float)), 0);
    lookalike_product_release(&got);
    char coll[LOOKALIKE_COLLECTION_NAME_MAX + 1];
    cr_assert_eq(lookalike_catalog_get_by_doc(c, doc, coll, &got, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(coll, "products");
    cr_assert_eq(got.vector_dim, 768);
    lookalike_product_release(&got);

    /* A vector of another length than the collection's dim is refused; nothing changes. */
    lookalike_product_t bad = make_product("vec2", "short vector", 5);
    bad.vector_dim = 3;
    bad.vector = calloc(3, sizeof(float));
    bad.vector[0] = 1;
    cr_assert_eq(lookalike_catalog_put(c, "products", &bad, LOOKALIKE_PUT_INSERT, NULL, 0, err, sizeof err),
                 LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "dimension 768"), "%s", err);
    cr_assert_eq(lookalike_catalog_get(c, "products", "vec2", &got, err, sizeof err), LOOKALIKE_ENOTFOUND);
    lookalike_product_release(&bad);

    /* An upsert stores what it is given: no vector means none. */
    lookalike_product_t up = make_product("vec1", "now without", 5);
    cr_assert_eq(lookalike_catalog_put(c, "products", &up, LOOKALIKE_PUT_UPSERT, NULL, 0, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(lookalike_catalog_get(c, "products", "vec1", &got, err, sizeof err), 0, "%s", err);
    cr_assert_null(got.vector);
    lookalike_product_release(&got);
    lookalike_product_release(&up);
    lookalike_product_release(&p);
    lookalike_catalog_close(c);
}
