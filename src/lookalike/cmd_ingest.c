/* `lookalike ingest`: adds a folder of photos, with optional CSV or JSON-lines metadata, to a
 * collection. Resumable (a product already in is skipped), a bad file or line is reported and
 * skipped, and two (--threads) workers embed at once. Each worker hands its products to the
 * service in batches (32, or 4 with photos) that are committed together, so a catalogue of
 * vector products costs an fsync per batch, not per product; a product counts as added (and
 * --print-ids prints it) once its batch is durable. Progress: a bar with count, rate and ETA on
 * a terminal, plain lines otherwise.
 *
 * CSV metadata is read whole and attached to the photos it names. JSON lines are streamed
 * (a line is read by the worker that ingests it, so a catalogue of 100,000 products with
 * their vectors never sits in memory): each line is one product, with its photo when it has a
 * "path" and without one when it carries a "vector". Then every photo of the folder that no
 * line or row named is ingested on its own, its id taken from the file name. */
#include "lookalike/api.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Caps on what a walk may collect. */
#define INGEST_FILES_MAX (10u * 1000u * 1000u)
#define INGEST_PATH_MAX 4096
#define INGEST_DEPTH_MAX 32
#define INGEST_THREADS_MAX 16

/* One photo to ingest: its path relative to the folder and, from the metadata, a product. */
typedef struct {
    char *rel;
    char *meta;        /* product JSON from the CSV metadata (INPUT mode), or NULL */
    _Atomic int named; /* a JSON line took this photo: not ingested on its own */
} item_t;

typedef struct {
    item_t *v;
    size_t n, cap;
} items_t;

typedef struct {
    lookalike_svc_t *svc;
    const char *coll;
    const char *root;
    items_t *items;
    FILE *jsonl; /* JSON-lines metadata being streamed, or NULL (read under jsonl_mu) */
    const char *jsonl_name;
    unsigned long jsonl_line;
    pthread_mutex_t jsonl_mu;
    int print_ids; /* print each added product's id on stdout once it is durable */
    _Atomic size_t next;
    _Atomic size_t total, done, added, skipped, failed;
    _Atomic int running; /* workers not yet finished */
    pthread_mutex_t out_mu;
} ingest_t;

static int items_push(items_t *it, char *rel)
{
    if (it->n >= INGEST_FILES_MAX)
        return -1;
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 1024;
        item_t *v = realloc(it->v, cap * sizeof *v);
        if (!v)
            return -1;
        it->v = v;
        it->cap = cap;
    }
    it->v[it->n] = (item_t){.rel = rel};
    it->n++;
    return 0;
}

static int is_image_name(const char *name)
{
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof exts / sizeof *exts; i++)
        if (strcasecmp(dot, exts[i]) == 0)
            return 1;
    return 0;
}

static int walk(const char *root, const char *rel, int depth, items_t *out, char *err, size_t errlen)
{
    char path[INGEST_PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    if (depth > INGEST_DEPTH_MAX) {
        snprintf(err, errlen, "%.900s: folders nested too deep (at most %d)", path, INGEST_DEPTH_MAX);
        return -1;
    }
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errlen, "%.900s: cannot open folder", path);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[INGEST_PATH_MAX], full[INGEST_PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full) {
            snprintf(err, errlen, "%.600s/%.200s: path too large", path, e->d_name);
            rc = -1;
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = walk(root, sub, depth + 1, out, err, errlen);
        else if (S_ISREG(st.st_mode) && is_image_name(e->d_name)) {
            char *r = strdup(sub);
            if (!r || items_push(out, r) != 0) {
                free(r);
                snprintf(err, errlen, "too many files (at most %u)", INGEST_FILES_MAX);
                rc = -1;
            }
        }
    }
    closedir(d);
    return rc;
}

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const item_t *)a)->rel, ((const item_t *)b)->rel);
}

static item_t *item_find(items_t *it, const char *rel)
{
    item_t key = {.rel = (char *)rel};
    return it->n ? bsearch(&key, it->v, it->n, sizeof *it->v, item_cmp) : NULL;
}

/* A product id from a file's relative path: its base name without extension, cleaned. */
static void id_from_path(const char *rel, char *id, size_t cap)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    size_t n = 0;
    for (const char *p = base; *p && *p != '.' && n + 1 < cap && n < LOOKALIKE_ID_MAX; p++)
        id[n++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                                 *p == '-' || *p == '_'
                             ? *p
                             : '_');
    id[n] = 0;
    if (!n)
        snprintf(id, cap, "photo");
}

/* CSV metadata, read by lookalike_product_from_csv (its header comment maps the columns): the
 * image column names the photo relative to FOLDER. A bad row is reported and skipped. */
static int load_csv(const char *file, items_t *items, char *err, size_t errlen)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "%.300s: cannot open", file);
        return -1;
    }
    int rc = -1, r;
    lookalike_csv_t *c = lookalike_csv_open_file(f, NULL, err, errlen);
    if (!c || lookalike_csv_read_header(c, err, errlen) != 0)
        goto done;
    while ((r = lookalike_csv_next(c, err, errlen)) == 1) {
        lookalike_product_t p;
        const char *image = NULL;
        char rerr[512];
        if (lookalike_product_from_csv(c, &p, &image, rerr, sizeof rerr) != 0) {
            fprintf(stderr, "%.300s: %s (row skipped)\n", file, rerr);
            continue;
        }
        item_t *it = image ? item_find(items, image) : NULL;
        if (it && !p.title && p.category && p.id) {
            /* The demo set has no titles: "Dress 06a00c" reads well and is searchable. */
            char title[160];
            snprintf(title, sizeof title, "%c%.100s %.6s",
                     (p.category[0] >= 'a' && p.category[0] <= 'z') ? p.category[0] - 32 : p.category[0],
                     p.category + 1, p.id);
            p.title = strdup(title);
        }
        if (it) {
            free(it->meta);
            it->meta = lookalike_product_to_json(&p, LOOKALIKE_PRODUCT_INPUT);
        }
        lookalike_product_release(&p);
    }
    if (r == 0)
        rc = 0;
    else {
        char line[512];
        snprintf(line, sizeof line, "%.200s: %.300s", file, err);
        snprintf(err, errlen, "%s", line);
    }
done:
    lookalike_csv_free(c);
    fclose(f);
    return rc;
}

static void report(ingest_t *g, const char *rel, const char *msg)
{
    pthread_mutex_lock(&g->out_mu);
    fprintf(stderr, "%sskipped %s: %s\n", isatty(2) ? "\r\033[K" : "", rel, msg);
    pthread_mutex_unlock(&g->out_mu);
}

/* Products a worker hands to the service at once: their commits share one transaction (vector
 * products are ingested hundreds a second, and each would otherwise wait for its own fsync).
 * Photos take tens of milliseconds each to embed, which a few of them amortise already, so a
 * batch with photos is written sooner and its products are acknowledged sooner. */
#define INGEST_BATCH 32
#define INGEST_PHOTO_BATCH 4

/* A product read and parsed, waiting to be written with the rest of its worker's batch. */
typedef struct {
    char what[INGEST_PATH_MAX + 64]; /* names it in messages */
    lookalike_product_t p;
    void *buf; /* the photo's bytes, or NULL */
    size_t len;
} pending_t;

typedef struct {
    pending_t v[INGEST_BATCH];
    size_t n, photos;
} batch_t;

/* Writes the batch; counts and reports each product once it is durable. */
static void flush(ingest_t *g, batch_t *b)
{
    lookalike_svc_write_t w[INGEST_BATCH];
    for (size_t i = 0; i < b->n; i++)
        w[i] = (lookalike_svc_write_t){
            .p = &b->v[i].p, .mode = LOOKALIKE_PUT_INSERT, .image = b->v[i].buf, .image_len = b->v[i].len};
    if (b->n)
        lookalike_svc_put_many(g->svc, g->coll, w, b->n);
    for (size_t i = 0; i < b->n; i++) {
        if (w[i].rc == 0) {
            atomic_fetch_add(&g->added, 1);
            if (g->print_ids) {
                pthread_mutex_lock(&g->out_mu);
                printf("%s\n", b->v[i].p.id);
                fflush(stdout);
                pthread_mutex_unlock(&g->out_mu);
            }
        } else if (w[i].rc == LOOKALIKE_EEXIST) {
            atomic_fetch_add(&g->skipped, 1);
        } else {
            report(g, b->v[i].what, w[i].err);
            atomic_fetch_add(&g->failed, 1);
        }
        atomic_fetch_add(&g->done, 1);
        free(b->v[i].buf);
        lookalike_product_release(&b->v[i].p);
    }
    b->n = 0;
    b->photos = 0;
}

/* Reads one product into the batch (writing the batch when it is full): its metadata JSON (may
 * be NULL) and its photo at rel (may be NULL when the metadata holds a vector). `what` names it
 * in messages. One that is skipped or fails here is counted done at once. */
static void ingest_one(ingest_t *g, batch_t *b, const char *what, const char *rel, const char *meta,
                       size_t meta_len)
{
    char err[1024], id[LOOKALIKE_ID_MAX + 1];
    lookalike_product_t p;
    int rc;
    if (meta) {
        if ((rc = lookalike_product_parse(meta, meta_len, LOOKALIKE_PRODUCT_INPUT, &p, err, sizeof err))) {
            report(g, what, err);
            atomic_fetch_add(&g->failed, 1);
            atomic_fetch_add(&g->done, 1);
            return;
        }
    } else {
        lookalike_product_init(&p);
    }
    if (!rel && !p.vector) {
        report(g, what, "neither a \"path\" to a photo nor a \"vector\"");
        atomic_fetch_add(&g->failed, 1);
        atomic_fetch_add(&g->done, 1);
        lookalike_product_release(&p);
        return;
    }
    if (!p.id && rel) {
        id_from_path(rel, id, sizeof id);
        p.id = strdup(id);
    }
    if (p.id && lookalike_svc_contains(g->svc, g->coll, p.id)) {
        atomic_fetch_add(&g->skipped, 1);
        atomic_fetch_add(&g->done, 1);
        lookalike_product_release(&p);
        return;
    }
    void *buf = NULL;
    long len = 0;
    if (rel) {
        char path[INGEST_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", g->root, rel);
        FILE *f = fopen(path, "rb");
        len = -1;
        if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            if (len == 0 || len > LOOKALIKE_IMAGE_MAX)
                len = -2;
            else if (!(buf = malloc((size_t)len)) || fread(buf, 1, (size_t)len, f) != (size_t)len)
                len = -1;
        }
        if (f)
            fclose(f);
    }
    if (len < 0) {
        report(g, what, len == -2 ? "empty or too large (at most 32 MiB)" : "cannot read the file");
        atomic_fetch_add(&g->failed, 1);
        atomic_fetch_add(&g->done, 1);
        free(buf);
        lookalike_product_release(&p);
        return;
    }
    pending_t *e = &b->v[b->n++];
    snprintf(e->what, sizeof e->what, "%s", what);
    e->p = p;
    e->buf = buf;
    e->len = (size_t)len;
    b->photos += buf != NULL;
    if (b->n == INGEST_BATCH || b->photos == INGEST_PHOTO_BATCH)
        flush(g, b);
}

/* Takes the next JSON line: 1 with the line in *line (length *n, its number in *lineno), 0 at
 * the end. Blank lines are skipped; a line over the cap is reported and skipped. */
static int next_line(ingest_t *g, char **line, size_t *cap, size_t *n, unsigned long *lineno)
{
    pthread_mutex_lock(&g->jsonl_mu);
    ssize_t got = -1;
    while (g->jsonl && (got = getline(line, cap, g->jsonl)) >= 0) {
        *lineno = ++g->jsonl_line;
        if (!(*line)[strspn(*line, " \t\r\n")])
            continue;
        if (got > LOOKALIKE_PRODUCT_JSON_MAX + 2) {
            char what[64];
            snprintf(what, sizeof what, "line %lu", *lineno);
            report(g, what, "too large");
            atomic_fetch_add(&g->failed, 1);
            atomic_fetch_add(&g->done, 1);
            continue;
        }
        break;
    }
    pthread_mutex_unlock(&g->jsonl_mu);
    *n = got > 0 ? (size_t)got : 0;
    return got >= 0;
}

/* One JSON line: a product plus an optional "path" naming its photo under the folder. */
static void ingest_line(ingest_t *g, batch_t *b, const char *line, size_t n, unsigned long lineno)
{
    char what[INGEST_PATH_MAX + 64];
    json_error_t je;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
    json_t *pv = json_is_object(o) ? json_object_get(o, "path") : NULL;
    snprintf(what, sizeof what, "%s line %lu", g->jsonl_name, lineno);
    if (!json_is_object(o) || (pv && !json_is_string(pv))) {
        report(g, what, !o ? je.text : !json_is_object(o) ? "not a JSON object" : "\"path\" is not a string");
        atomic_fetch_add(&g->failed, 1);
        atomic_fetch_add(&g->done, 1);
        json_decref(o);
        return;
    }
    char *rel = pv ? strdup(json_string_value(pv)) : NULL;
    item_t *it = rel ? item_find(g->items, rel) : NULL;
    if (it && atomic_exchange(&it->named, 1) == 0)
        atomic_fetch_sub(&g->total, 1);
    json_object_del(o, "path");
    char *meta = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (rel)
        snprintf(what, sizeof what, "%s", rel);
    if (!meta || (pv && !rel)) {
        report(g, what, "out of memory");
        atomic_fetch_add(&g->failed, 1);
        atomic_fetch_add(&g->done, 1);
    } else {
        ingest_one(g, b, what, rel, meta, strlen(meta));
    }
    free(meta);
    free(rel);
}

static void *worker(void *ud)
{
    ingest_t *g = ud;
    char *line = NULL;
    size_t cap = 0, n, i;
    unsigned long lineno;
    batch_t *b = calloc(1, sizeof *b);
    if (!b) {
        atomic_fetch_sub(&g->running, 1);
        return NULL;
    }
    while (next_line(g, &line, &cap, &n, &lineno))
        ingest_line(g, b, line, n, lineno);
    free(line);
    while ((i = atomic_fetch_add(&g->next, 1)) < g->items->n) {
        item_t *it = &g->items->v[i];
        if (atomic_load(&it->named))
            continue;
        ingest_one(g, b, it->rel, it->rel, it->meta, it->meta ? strlen(it->meta) : 0);
    }
    flush(g, b);
    free(b);
    atomic_fetch_sub(&g->running, 1);
    return NULL;
}

/* Non-blank lines of a file, for the progress total. */
static size_t count_lines(FILE *f)
{
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (getline(&line, &cap, f) >= 0)
        n += line[strspn(line, " \t\r\n")] != 0;
    free(line);
    rewind(f);
    return n;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(ingest_t *g, double t0, int tty, int final)
{
    size_t done = atomic_load(&g->done), n = atomic_load(&g->total);
    double el = mono_s() - t0, rate = el > 0 ? done / el : 0;
    double eta = rate > 0 ? (n - done) / rate : 0;
    pthread_mutex_lock(&g->out_mu);
    if (tty) {
        char bar[31];
        size_t fill = n ? done * 30 / n : 30;
        for (size_t i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r\033[K[%s] %zu/%zu %.1f/s ETA %dm%02ds", bar, done, n, rate, (int)eta / 60,
                (int)eta % 60);
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "ingest: %zu/%zu (%.0f%%) %.1f products/s ETA %.0fs\n", done, n,
                n ? 100.0 * done / n : 100.0, rate, eta);
    }
    fflush(stderr);
    pthread_mutex_unlock(&g->out_mu);
}

/* core_flags_parse refuses positional arguments: pull the folder out first. A flag takes the
 * next argument as its value unless it has "=value" or is a boolean. */
static int split_folder(const core_flag *flags, size_t nflags, int argc, char **argv, const char **folder,
                        char **rest, int *nrest)
{
    int n = 0;
    rest[n++] = argv[0];
    *folder = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            int takes_value = !strchr(argv[i], '=') && strcmp(argv[i], "--help") != 0;
            for (size_t f = 0; takes_value && f < nflags; f++)
                if (flags[f].type == CORE_FLAG_BOOL && strcmp(argv[i] + 2, flags[f].name) == 0)
                    takes_value = 0;
            rest[n++] = argv[i];
            if (takes_value && i + 1 < argc)
                rest[n++] = argv[++i];
        } else if (!*folder) {
            *folder = argv[i];
        } else {
            return -1;
        }
    }
    *nrest = n;
    return 0;
}

int lookalike_cmd_ingest(int argc, char **argv)
{
    const char *data = NULL, *store = NULL, *coll = NULL, *meta = NULL, *model = NULL, *folder = NULL;
    int threads = 2, default_shards = 1;
    const char *default_key = NULL;
    bool print_ids = false;
    core_flag flags[] = {
        {"data", CORE_FLAG_STR, &data, "", 0, 0, "data directory (as for serve); created if missing"},
        {"store", CORE_FLAG_STR, &store, "", 0, 0,
         "catalogue store (as for serve): empty for SQLite in --data"},
        {"collection", CORE_FLAG_STR, &coll, LOOKALIKE_DEFAULT_COLLECTION, 0, 0, "collection to add to"},
        {"metadata", CORE_FLAG_STR, &meta, "", 0, 0,
         "CSV (a \"path\" column relative to FOLDER, plus id or image_id, title, category, brand, price...) "
         "or JSON lines (.jsonl: a product per line, with a \"path\" to its photo under FOLDER or a "
         "\"vector\"; FOLDER may then be left out)"},
        {"model", CORE_FLAG_STR, &model, LOOKALIKE_DEFAULT_MODEL, 0, 0, "ONNX image model"},
        {"threads", CORE_FLAG_INT, &threads, "2", 1, INGEST_THREADS_MAX, "photos embedded at once"},
        {"default-shards", CORE_FLAG_INT, &default_shards, "1", 1, LOOKALIKE_SHARDS_MAX,
         "shards of the default collection \"products\" when this creates it (as for serve)"},
        {"default-shard-key", CORE_FLAG_STR, &default_key, "category", 0, 0,
         "its shard key when this creates it: category or id"},
        {"print-ids", CORE_FLAG_BOOL, &print_ids, "false", 0, 0,
         "print the id of each product added, on stdout, as soon as it is durable"},
    };
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    if (!rest)
        return 1;
    if (split_folder(flags, sizeof flags / sizeof *flags, argc, argv, &folder, rest, &nrest) != 0) {
        fprintf(stderr, "lookalike ingest: give one FOLDER\n");
        free(rest);
        return 2;
    }
    char err[1024];
    int rc =
        core_flags_parse(flags, sizeof flags / sizeof *flags, "LOOKALIKE", nrest, rest,
                         "lookalike ingest: add a folder of photos (searched recursively) to a collection\n"
                         "usage: lookalike ingest --data DIR [--collection C] [--metadata FILE.csv|.jsonl] "
                         "[FOLDER]",
                         stdout, err, sizeof err);
    free(rest);
    if (rc == 1)
        return 0;
    size_t ml = strlen(meta);
    int jsonl = ml > 5 && (strcmp(meta + ml - 6, ".jsonl") == 0 || strcmp(meta + ml - 5, ".json") == 0);
    if (rc != 0 || !*data || (!folder && !jsonl)) {
        fprintf(stderr, "lookalike ingest: %s\n",
                rc       ? err
                : !*data ? "--data (LOOKALIKE_DATA) is required"
                         : "give the FOLDER of photos (or JSON-lines --metadata)");
        return 2;
    }
    items_t items = {0};
    lookalike_svc_t *svc = NULL;
    FILE *jf = NULL;
    int exit_code = 1;
    if (folder && walk(folder, "", 0, &items, err, sizeof err) != 0)
        goto fail;
    if (items.n)
        qsort(items.v, items.n, sizeof *items.v, item_cmp);
    if (jsonl && !(jf = fopen(meta, "rb"))) {
        snprintf(err, sizeof err, "%.300s: cannot open", meta);
        goto fail;
    }
    if (*meta && !jsonl && load_csv(meta, &items, err, sizeof err) != 0)
        goto fail;
    lookalike_svc_opts_t so = {.data_dir = data,
                               .store = store,
                               .model_path = model,
                               .embed_threads = threads > 1 ? 1 : 0,
                               .progress = stderr,
                               .default_shards = (uint32_t)default_shards,
                               .default_shard_key = default_key};
    if (!(svc = lookalike_svc_open(&so, err, sizeof err)))
        goto fail;
    if (!lookalike_svc_has_collection(svc, coll)) {
        snprintf(err, sizeof err, "no collection named \"%s\"", coll);
        goto fail;
    }
    ingest_t g = {.svc = svc,
                  .coll = coll,
                  .root = folder ? folder : ".",
                  .items = &items,
                  .jsonl = jf,
                  .jsonl_name = meta,
                  .print_ids = print_ids,
                  .total = items.n + (jf ? count_lines(jf) : 0),
                  .running = threads};
    pthread_mutex_init(&g.out_mu, NULL);
    pthread_mutex_init(&g.jsonl_mu, NULL);
    int tty = isatty(2);
    double t0 = mono_s(), last = t0;
    pthread_t th[INGEST_THREADS_MAX];
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&th[started], NULL, worker, &g) != 0)
            break;
    atomic_fetch_sub(&g.running, threads - started);
    if (!started) {
        atomic_store(&g.running, 1);
        worker(&g);
    }
    while (atomic_load(&g.running) > 0) {
        usleep(200 * 1000);
        double now = mono_s();
        if (tty || now - last >= 5) {
            progress(&g, t0, tty, 0);
            last = now;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    progress(&g, t0, tty, 1);
    double el = mono_s() - t0;
    fprintf(stderr, "ingest: %zu added, %zu already in, %zu failed, in %.1f s (%.1f products/s added)\n",
            atomic_load(&g.added), atomic_load(&g.skipped), atomic_load(&g.failed), el,
            el > 0 ? atomic_load(&g.added) / el : 0.0);
    pthread_mutex_destroy(&g.out_mu);
    pthread_mutex_destroy(&g.jsonl_mu);
    exit_code = 0;
    goto done;
fail:
    fprintf(stderr, "lookalike ingest: %s\n", err);
done:
    if (jf)
        fclose(jf);
    lookalike_svc_close(svc);
    for (size_t i = 0; i < items.n; i++) {
        free(items.v[i].rel);
        free(items.v[i].meta);
    }
    free(items.v);
    return exit_code;
}
