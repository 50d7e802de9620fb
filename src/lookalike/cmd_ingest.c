/* `lookalike ingest`: adds a folder of photos, with optional CSV or JSON-lines metadata, to a
 * collection. Resumable (a product already in is skipped), a bad file is reported and
 * skipped, and two (--threads) workers embed at once. Progress: a bar with count, rate and
 * ETA on a terminal, plain lines otherwise. */
#include "lookalike/api.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
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
    char *meta; /* product JSON from the metadata (INPUT mode), or NULL */
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
    _Atomic size_t next;
    _Atomic size_t done, added, skipped, failed;
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
    it->v[it->n++] = (item_t){rel, NULL};
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
    item_t key = {(char *)rel, NULL};
    return bsearch(&key, it->v, it->n, sizeof *it->v, item_cmp);
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

/* JSON lines: one product per line with a "path" field naming the photo. */
static int load_jsonl(const char *file, items_t *items, char *err, size_t errlen)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", file);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n > LOOKALIKE_PRODUCT_JSON_MAX) {
            snprintf(err, errlen, "%s: line %lu: too large", file, lineno);
            rc = -1;
            break;
        }
        if (!line[strspn(line, " \t\r\n")])
            continue;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &je);
        const char *path = o ? json_string_value(json_object_get(o, "path")) : NULL;
        if (!path) {
            snprintf(err, errlen, "%s: line %lu: %s", file, lineno, o ? "no \"path\" string" : je.text);
            rc = -1;
        } else {
            item_t *it = item_find(items, path);
            if (it) {
                json_object_del(o, "path");
                free(it->meta);
                it->meta = json_dumps(o, JSON_COMPACT);
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return rc;
}

static void report(ingest_t *g, const char *rel, const char *msg)
{
    pthread_mutex_lock(&g->out_mu);
    fprintf(stderr, "%sskipped %s: %s\n", isatty(2) ? "\r\033[K" : "", rel, msg);
    pthread_mutex_unlock(&g->out_mu);
}

static void ingest_one(ingest_t *g, item_t *it)
{
    char err[1024], id[LOOKALIKE_ID_MAX + 1];
    lookalike_product_t p;
    int rc;
    if (it->meta) {
        if ((rc = lookalike_product_parse(it->meta, strlen(it->meta), LOOKALIKE_PRODUCT_INPUT, &p, err,
                                          sizeof err))) {
            report(g, it->rel, err);
            atomic_fetch_add(&g->failed, 1);
            return;
        }
    } else {
        lookalike_product_init(&p);
    }
    if (!p.id) {
        id_from_path(it->rel, id, sizeof id);
        p.id = strdup(id);
    }
    if (!p.id || lookalike_svc_contains(g->svc, g->coll, p.id)) {
        atomic_fetch_add(p.id ? &g->skipped : &g->failed, 1);
        lookalike_product_release(&p);
        return;
    }
    char path[INGEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", g->root, it->rel);
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        if (len == 0 || len > LOOKALIKE_IMAGE_MAX)
            len = -2;
        else if (!(buf = malloc((size_t)len)) || fread(buf, 1, (size_t)len, f) != (size_t)len)
            len = -1;
    }
    if (f)
        fclose(f);
    if (len < 0) {
        report(g, it->rel, len == -2 ? "empty or too large (at most 32 MiB)" : "cannot read the file");
        atomic_fetch_add(&g->failed, 1);
    } else if ((rc = lookalike_svc_put(g->svc, g->coll, &p, LOOKALIKE_PUT_INSERT, buf, (size_t)len, err,
                                       sizeof err)) == 0) {
        atomic_fetch_add(&g->added, 1);
    } else if (rc == LOOKALIKE_EEXIST) {
        atomic_fetch_add(&g->skipped, 1);
    } else {
        report(g, it->rel, err);
        atomic_fetch_add(&g->failed, 1);
    }
    free(buf);
    lookalike_product_release(&p);
}

static void *worker(void *ud)
{
    ingest_t *g = ud;
    size_t i;
    while ((i = atomic_fetch_add(&g->next, 1)) < g->items->n) {
        ingest_one(g, &g->items->v[i]);
        atomic_fetch_add(&g->done, 1);
    }
    return NULL;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(ingest_t *g, double t0, int tty, int final)
{
    size_t done = atomic_load(&g->done), n = g->items->n;
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
        fprintf(stderr, "ingest: %zu/%zu (%.0f%%) %.1f photos/s ETA %.0fs\n", done, n,
                n ? 100.0 * done / n : 100.0, rate, eta);
    }
    fflush(stderr);
    pthread_mutex_unlock(&g->out_mu);
}

/* core_flags_parse refuses positional arguments: pull the folder out first. */
static int split_folder(int argc, char **argv, const char **folder, char **rest, int *nrest)
{
    int n = 0;
    rest[n++] = argv[0];
    *folder = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            rest[n++] = argv[i];
            if (!strchr(argv[i], '=') && strcmp(argv[i], "--help") && i + 1 < argc)
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
    int threads = 2;
    core_flag flags[] = {
        {"data", CORE_FLAG_STR, &data, "", 0, 0, "data directory (as for serve); created if missing"},
        {"store", CORE_FLAG_STR, &store, "", 0, 0,
         "catalogue store (as for serve): empty for SQLite in --data"},
        {"collection", CORE_FLAG_STR, &coll, LOOKALIKE_DEFAULT_COLLECTION, 0, 0, "collection to add to"},
        {"metadata", CORE_FLAG_STR, &meta, "", 0, 0,
         "CSV (a \"path\" column relative to FOLDER, plus id or image_id, title, category, brand, price...) "
         "or JSON lines (.jsonl: a product per line with a \"path\" field)"},
        {"model", CORE_FLAG_STR, &model, LOOKALIKE_DEFAULT_MODEL, 0, 0, "ONNX image model"},
        {"threads", CORE_FLAG_INT, &threads, "2", 1, INGEST_THREADS_MAX, "photos embedded at once"},
    };
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    if (!rest)
        return 1;
    if (split_folder(argc, argv, &folder, rest, &nrest) != 0) {
        fprintf(stderr, "lookalike ingest: give one FOLDER\n");
        free(rest);
        return 2;
    }
    char err[1024];
    int rc =
        core_flags_parse(flags, sizeof flags / sizeof *flags, "LOOKALIKE", nrest, rest,
                         "lookalike ingest: add a folder of photos (searched recursively) to a collection\n"
                         "usage: lookalike ingest --data DIR [--collection C] [--metadata FILE.csv|.jsonl] "
                         "FOLDER",
                         stdout, err, sizeof err);
    free(rest);
    if (rc == 1)
        return 0;
    if (rc != 0 || !*data || !folder) {
        fprintf(stderr, "lookalike ingest: %s\n",
                rc       ? err
                : !*data ? "--data (LOOKALIKE_DATA) is required"
                         : "give the FOLDER of photos");
        return 2;
    }
    items_t items = {0};
    lookalike_svc_t *svc = NULL;
    int exit_code = 1;
    if (walk(folder, "", 0, &items, err, sizeof err) != 0)
        goto fail;
    qsort(items.v, items.n, sizeof *items.v, item_cmp);
    if (*meta) {
        size_t ml = strlen(meta);
        int jsonl = ml > 6 && (strcmp(meta + ml - 6, ".jsonl") == 0 || strcmp(meta + ml - 5, ".json") == 0);
        if ((jsonl ? load_jsonl(meta, &items, err, sizeof err) : load_csv(meta, &items, err, sizeof err)) !=
            0)
            goto fail;
    }
    lookalike_svc_opts_t so = {.data_dir = data,
                               .store = store,
                               .model_path = model,
                               .embed_threads = threads > 1 ? 1 : 0,
                               .progress = stderr};
    if (!(svc = lookalike_svc_open(&so, err, sizeof err)))
        goto fail;
    if (!lookalike_svc_has_collection(svc, coll)) {
        snprintf(err, sizeof err, "no collection named \"%s\"", coll);
        goto fail;
    }
    ingest_t g = {.svc = svc, .coll = coll, .root = folder, .items = &items};
    pthread_mutex_init(&g.out_mu, NULL);
    int tty = isatty(2);
    double t0 = mono_s(), last = t0;
    pthread_t th[INGEST_THREADS_MAX];
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&th[started], NULL, worker, &g) != 0)
            break;
    if (!started)
        worker(&g);
    while (atomic_load(&g.done) < items.n && started) {
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
    fprintf(stderr, "ingest: %zu added, %zu already in, %zu failed, in %.1f s (%.1f photos/s added)\n",
            atomic_load(&g.added), atomic_load(&g.skipped), atomic_load(&g.failed), el,
            el > 0 ? atomic_load(&g.added) / el : 0.0);
    pthread_mutex_destroy(&g.out_mu);
    exit_code = 0;
    goto done;
fail:
    fprintf(stderr, "lookalike ingest: %s\n", err);
done:
    lookalike_svc_close(svc);
    for (size_t i = 0; i < items.n; i++) {
        free(items.v[i].rel);
        free(items.v[i].meta);
    }
    free(items.v);
    return exit_code;
}
