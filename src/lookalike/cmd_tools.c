/* `lookalike create-collection`, `search` and `stats`: the service's calls from the shell, on a
 * data directory that no server holds open at the time. Each prints JSON on stdout. `export`
 * reads the catalogue alone, so it also works beside a running server. */
#include "lookalike/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Reads a whole file of at most cap bytes into a malloc'd buffer. */
static int read_file(const char *path, size_t cap, void **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    *data = NULL;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%.300s: cannot read", path);
        goto fail;
    }
    if (n == 0 || (size_t)n > cap) {
        snprintf(err, errlen, "%.300s: empty or too large (at most %zu bytes)", path, cap);
        goto fail;
    }
    if (!(*data = malloc((size_t)n)) || fread(*data, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "%.300s: cannot read", path);
        goto fail;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
fail:
    if (f)
        fclose(f);
    free(*data);
    *data = NULL;
    return -1;
}

static lookalike_svc_t *open_svc(const char *cmd, const char *data, const char *store, const char *model)
{
    char err[1024];
    if (!*data) {
        fprintf(stderr, "lookalike %s: --data (LOOKALIKE_DATA) is required\n", cmd);
        return NULL;
    }
    lookalike_svc_opts_t so = {
        .data_dir = data, .store = store, .model_path = model, .embed_threads = 0, .progress = NULL};
    lookalike_svc_t *s = lookalike_svc_open(&so, err, sizeof err);
    if (!s)
        fprintf(stderr, "lookalike %s: %s\n", cmd, err);
    return s;
}

static int print_json(json_t *j)
{
    int rc = json_dumpf(j, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
    fputc('\n', stdout);
    json_decref(j);
    return rc;
}

static int parse(core_flag *flags, size_t n, int argc, char **argv, const char *usage, const char *cmd)
{
    char err[1024];
    int rc = core_flags_parse(flags, n, "LOOKALIKE", argc, argv, usage, stdout, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "lookalike %s: %s\n", cmd, err);
    return rc;
}

int lookalike_cmd_create_collection(int argc, char **argv)
{
    const char *data = NULL, *store = NULL, *model = NULL, *name = NULL, *metric = NULL, *index = NULL,
               *shard_key = NULL;
    int shards = 1;
    core_flag flags[] = {
        {"data", CORE_FLAG_STR, &data, "", 0, 0, "data directory"},
        {"store", CORE_FLAG_STR, &store, "", 0, 0,
         "catalogue store (as for serve): empty for SQLite in --data"},
        {"model", CORE_FLAG_STR, &model, LOOKALIKE_DEFAULT_MODEL, 0, 0, "ONNX image model"},
        {"name", CORE_FLAG_STR, &name, "", 0, 0, "collection name (1..64 of A-Z a-z 0-9 _ -)"},
        {"metric", CORE_FLAG_STR, &metric, "cosine", 0, 0, "cosine, l2 or ip"},
        {"index", CORE_FLAG_STR, &index, "flat", 0, 0, "flat (exact) or hnsw"},
        {"shards", CORE_FLAG_INT, &shards, "1", 1, LOOKALIKE_SHARDS_MAX,
         "shards the collection is split into"},
        {"shard-key", CORE_FLAG_STR, &shard_key, "category", 0, 0,
         "what decides a product's shard: category or id"},
    };
    int rc =
        parse(flags, sizeof flags / sizeof *flags, argc, argv,
              "lookalike create-collection: create a collection (settings fixed from then on)\n"
              "usage: lookalike create-collection --data DIR --name NAME [--metric cosine] [--index flat] "
              "[--shards 1] [--shard-key category]",
              "create-collection");
    if (rc)
        return rc == 1 ? 0 : 2;
    lookalike_svc_t *s = open_svc("create-collection", data, store, model);
    if (!s)
        return 1;
    json_t *spec = json_pack("{s:s,s:s,s:s,s:i,s:s}", "name", name, "metric", metric, "index", index,
                             "shards", shards, "shard_key", shard_key),
           *out = NULL;
    char err[1024];
    rc = lookalike_svc_create_collection(s, spec, &out, err, sizeof err);
    json_decref(spec);
    lookalike_svc_close(s);
    if (rc != 0) {
        fprintf(stderr, "lookalike create-collection: %s\n", err);
        return 1;
    }
    return print_json(out);
}

int lookalike_cmd_search(int argc, char **argv)
{
    const char *data = NULL, *store = NULL, *model = NULL, *coll = NULL, *image = NULL, *text = NULL,
               *product = NULL, *filters = NULL;
    int k = 10;
    core_flag flags[] = {
        {"data", CORE_FLAG_STR, &data, "", 0, 0, "data directory"},
        {"store", CORE_FLAG_STR, &store, "", 0, 0,
         "catalogue store (as for serve): empty for SQLite in --data"},
        {"model", CORE_FLAG_STR, &model, LOOKALIKE_DEFAULT_MODEL, 0, 0, "ONNX image model"},
        {"collection", CORE_FLAG_STR, &coll, LOOKALIKE_DEFAULT_COLLECTION, 0, 0, "collection to search"},
        {"image", CORE_FLAG_STR, &image, "", 0, 0, "search by this photo"},
        {"text", CORE_FLAG_STR, &text, "", 0, 0, "search by these words"},
        {"product", CORE_FLAG_STR, &product, "", 0, 0, "more like this product id"},
        {"filters", CORE_FLAG_STR, &filters, "", 0, 0, "filters as JSON, e.g. '{\"category\":\"dress\"}'"},
        {"k", CORE_FLAG_INT, &k, "10", 1, LOOKALIKE_SVC_K_MAX, "results"},
    };
    int rc = parse(flags, sizeof flags / sizeof *flags, argc, argv,
                   "lookalike search: search a collection from the shell (JSON on stdout)\n"
                   "usage: lookalike search --data DIR [--image FILE] [--text WORDS] [--product ID] "
                   "[--filters JSON] [--k 10]",
                   "search");
    if (rc)
        return rc == 1 ? 0 : 2;
    char err[1024];
    void *img = NULL;
    size_t img_len = 0;
    json_t *q = json_pack("{s:i}", "k", k), *out = NULL;
    lookalike_svc_t *s = NULL;
    int exit_code = 1;
    if (*text)
        json_object_set_new(q, "text", json_string(text));
    if (*product)
        json_object_set_new(q, "product_id", json_string(product));
    if (*filters) {
        json_error_t je;
        json_t *f = json_loads(filters, JSON_REJECT_DUPLICATES, &je);
        if (!f) {
            snprintf(err, sizeof err, "--filters: %s", je.text);
            goto fail;
        }
        json_object_set_new(q, "filters", f);
    }
    if (*image && read_file(image, LOOKALIKE_IMAGE_MAX, &img, &img_len, err, sizeof err) != 0)
        goto fail;
    if (!(s = open_svc("search", data, store, model)))
        goto done;
    if (lookalike_svc_search(s, coll, q, img, img_len, &out, err, sizeof err) != 0)
        goto fail;
    exit_code = print_json(out);
    goto done;
fail:
    fprintf(stderr, "lookalike search: %s\n", err);
done:
    lookalike_svc_close(s);
    json_decref(q);
    free(img);
    return exit_code;
}

int lookalike_cmd_stats(int argc, char **argv)
{
    const char *data = NULL, *store = NULL, *model = NULL;
    core_flag flags[] = {
        {"data", CORE_FLAG_STR, &data, "", 0, 0, "data directory"},
        {"store", CORE_FLAG_STR, &store, "", 0, 0,
         "catalogue store (as for serve): empty for SQLite in --data"},
        {"model", CORE_FLAG_STR, &model, LOOKALIKE_DEFAULT_MODEL, 0, 0, "ONNX image model"},
    };
    int rc = parse(flags, sizeof flags / sizeof *flags, argc, argv,
                   "lookalike stats: collections and product counts of a data directory (JSON on stdout)\n"
                   "usage: lookalike stats --data DIR",
                   "stats");
    if (rc)
        return rc == 1 ? 0 : 2;
    lookalike_svc_t *s = open_svc("stats", data, store, model);
    if (!s)
        return 1;
    json_t *out = json_pack("{s:o,s:I}", "collections", lookalike_svc_list_collections(s), "seq",
                            (json_int_t)lookalike_svc_applied_seq(s));
    lookalike_svc_close(s);
    return print_json(out);
}

/* File name extension for stored image bytes (the store keeps no type). */
static const char *image_ext(const unsigned char *b, size_t n)
{
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return "webp";
    if (n >= 4 && memcmp(b, "GIF8", 4) == 0)
        return "gif";
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return "tif";
    return "jpg";
}

/* Writes a product's photo as DIR/<sha256>.<ext> (once: products may share a photo) and puts
 * that name into rel. */
static int export_image(lookalike_catalog_t *cat, const char *dir, const char *sha, char *rel, size_t relcap,
                        size_t *written, char *err, size_t errlen)
{
    void *data = NULL;
    size_t len = 0;
    char path[4096];
    int rc = lookalike_catalog_get_image(cat, sha, &data, &len, err, errlen);
    if (rc != 0)
        return rc;
    snprintf(rel, relcap, "%s.%s", sha, image_ext(data, len));
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    struct stat st;
    if (stat(path, &st) != 0 || (size_t)st.st_size != len) {
        FILE *f = fopen(path, "wb");
        int ok = f && fwrite(data, 1, len, f) == len;
        if (f && fclose(f) != 0)
            ok = 0;
        if (!ok) {
            snprintf(err, errlen, "%.300s: cannot write", path);
            rc = LOOKALIKE_EIO;
        } else {
            (*written)++;
        }
    }
    free(data);
    return rc;
}

int lookalike_cmd_export(int argc, char **argv)
{
    const char *data = NULL, *store = NULL, *coll = NULL, *out = NULL, *images = NULL, *vectors = NULL;
    core_flag flags[] = {
        {"data", CORE_FLAG_STR, &data, "", 0, 0, "data directory"},
        {"store", CORE_FLAG_STR, &store, "", 0, 0,
         "catalogue store (as for serve): empty for SQLite in --data"},
        {"collection", CORE_FLAG_STR, &coll, LOOKALIKE_DEFAULT_COLLECTION, 0, 0, "collection to export"},
        {"out", CORE_FLAG_STR, &out, "-", 0, 0, "JSON-lines file to write (- for stdout)"},
        {"images", CORE_FLAG_STR, &images, "", 0, 0,
         "folder to write the photos into (created if missing); each line then names its photo in \"path\""},
        {"vectors", CORE_FLAG_STR, &vectors, "auto", 0, 0,
         "which stored vectors to write: auto (of products without a photo, whose vector was given), all "
         "(re-ingest then skips embedding, for the same model only), none"},
    };
    int rc = parse(flags, sizeof flags / sizeof *flags, argc, argv,
                   "lookalike export: dump a collection as JSON lines (one product per line, with its vector "
                   "when it has one), and its photos into a folder, so that `lookalike ingest --metadata "
                   "FILE.jsonl FOLDER` reads it back. Reads the catalogue only, so a running server may keep "
                   "the data directory.\n"
                   "usage: lookalike export --data DIR [--collection C] [--out FILE.jsonl] [--images FOLDER] "
                   "[--vectors auto|all|none]",
                   "export");
    if (rc)
        return rc == 1 ? 0 : 2;
    char err[1024], cursor[LOOKALIKE_ID_MAX + 1] = "", next[LOOKALIKE_ID_MAX + 1];
    lookalike_catalog_t *cat = NULL;
    lookalike_product_t *page = NULL;
    FILE *f = NULL;
    size_t n = 0, count = 0, photos = 0;
    int exit_code = 1;
    lookalike_collection_t col;
    if (!*data && !lookalike_store_is_pg(store)) {
        fprintf(stderr, "lookalike export: --data (LOOKALIKE_DATA) is required\n");
        return 2;
    }
    int all_vectors = strcmp(vectors, "all") == 0, no_vectors = strcmp(vectors, "none") == 0;
    if (!all_vectors && !no_vectors && strcmp(vectors, "auto") != 0) {
        fprintf(stderr, "lookalike export: --vectors: expected auto, all or none\n");
        return 2;
    }
    if (!(cat = lookalike_catalog_open(store, data, err, sizeof err)) ||
        lookalike_catalog_get_collection(cat, coll, &col, err, sizeof err) != 0)
        goto fail;
    if (*images && mkdir(images, 0755) != 0 && errno != EEXIST) {
        snprintf(err, sizeof err, "%.300s: %s", images, strerror(errno));
        goto fail;
    }
    if (!(f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w"))) {
        snprintf(err, sizeof err, "%.300s: cannot create", out);
        goto fail;
    }
    if (!(page = calloc(LOOKALIKE_PAGE_MAX, sizeof *page))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    do {
        if (lookalike_catalog_list(cat, coll, cursor, LOOKALIKE_PAGE_MAX, page, &n, next, NULL, err,
                                   sizeof err) != 0)
            goto fail;
        for (size_t i = 0; i < n; i++) {
            char rel[160] = "";
            if (!no_vectors && (all_vectors || !page[i].image_sha256[0])) {
                if (!(page[i].vector = malloc(col.dim * sizeof *page[i].vector))) {
                    snprintf(err, sizeof err, "out of memory");
                    goto fail;
                }
                rc = lookalike_catalog_get_vector(cat, page[i].doc_id, page[i].vector, col.dim, err,
                                                  sizeof err);
                if (rc == LOOKALIKE_ENOTFOUND) {
                    free(page[i].vector);
                    page[i].vector = NULL;
                } else if (rc != 0) {
                    goto fail;
                } else {
                    page[i].vector_dim = col.dim;
                }
            }
            if (*images && page[i].image_sha256[0] &&
                export_image(cat, images, page[i].image_sha256, rel, sizeof rel, &photos, err, sizeof err) !=
                    0)
                goto fail;
            char *line = lookalike_product_to_json(&page[i], LOOKALIKE_PRODUCT_INPUT);
            if (!line) {
                snprintf(err, sizeof err, "out of memory");
                goto fail;
            }
            /* "path" goes first; the object is never empty, since every product has an id. */
            if (*rel)
                fprintf(f, "{\"path\":\"%s\",%s\n", rel, line + 1);
            else
                fprintf(f, "%s\n", line);
            free(line);
            count++;
        }
        for (size_t i = 0; i < n; i++)
            lookalike_product_release(&page[i]);
        n = 0;
        snprintf(cursor, sizeof cursor, "%s", next);
    } while (*cursor);
    if (fflush(f) != 0 || ferror(f)) {
        snprintf(err, sizeof err, "%.300s: write failed", out);
        goto fail;
    }
    fprintf(stderr, "export: %zu products of %s (%zu photos written)\n", count, coll, photos);
    exit_code = 0;
    goto done;
fail:
    fprintf(stderr, "lookalike export: %s\n", err);
done:
    for (size_t i = 0; i < n; i++)
        lookalike_product_release(&page[i]);
    free(page);
    if (f && f != stdout && fclose(f) != 0 && exit_code == 0) {
        fprintf(stderr, "lookalike export: %s: write failed\n", out);
        exit_code = 1;
    }
    lookalike_catalog_close(cat);
    return exit_code;
}
