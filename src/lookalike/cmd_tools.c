/* `lookalike create-collection`, `search` and `stats`: the service's calls from the shell, on a
 * data directory that no server holds open at the time. Each prints JSON on stdout. */
#include "lookalike/api.h"

#include <stdlib.h>
#include <string.h>

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
