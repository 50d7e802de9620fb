/* bench/quality: retrieval quality of image search, as JSON lines.
 *
 * 1. The demo catalogue (DATA_DIR/products, 713 photos in 10 categories): for every model in
 *    MODELS_DIR (each *.onnx, or --models A.onnx,B.onnx), every photo is embedded through the
 *    service's own pipeline (src/embed image pipeline + engine, L2-normalised) and searched
 *    against all the others (leave-one-out, exact cosine): precision@10 is the share of the 10
 *    nearest that have the query's category, averaged over all 713 queries. Next to it, the
 *    same figure for raw pixels (the 224x224 network input's pixels averaged down to 28x28 grey,
 *    cosine)
 *    and for chance (what a random top 10 scores given the category sizes).
 * 2. Fashion-MNIST (DATA_DIR/fashion-mnist): the training set (60,000, or --fm-catalogue N, N
 *    per the file order) is the catalogue and test images (--fm-queries N, default 1000; 0 for
 *    all 10,000) are the queries; precision@10 of the same label, with each model's embedding
 *    and with raw-pixel cosine (the baseline). A 28x28 grey image becomes the network's input
 *    the way the pipeline would treat a photo of it: grey to RGB, bilinear resize to 256x256,
 *    centre crop 224, the model's normalisation. Catalogue embeddings take a while (about
 *    60,000 / 30 per second on two loaded cores), so they are cached in --cache
 *    (default build/bench-data/quality), keyed by model file size and modification time.
 *
 * Nearest neighbours come from a vindex `flat` index (exact search, the same kernels the
 * service uses), so no approximation enters the figures. */
#include "embed/embed.h"
#include "vindex/vindex.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#define K 10
#define BATCH 8
#define MODELS_MAX 16
#define FM_SIDE 28
#define FM_PIXELS (FM_SIDE * FM_SIDE)

typedef struct {
    const char *models_dir, *data_dir, *cache;
    char *models[MODELS_MAX];
    int nmodels;
    long fm_catalogue, fm_queries;
    int threads;
    int skip_products, skip_fm;
} opts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- precision@10 with an exact index ---- */

/* Mean over queries of the share of their K nearest catalogue items (skipping the item with
 * the query's own index when leave_one_out) whose label equals the query's. */
static double precision_at_k(const float *cat, const int *cat_labels, size_t ncat, const float *q,
                             const int *q_labels, size_t nq, uint32_t dim, int leave_one_out, int threads)
{
    vindex_params_t p;
    vindex_params_default(&p, VINDEX_FLAT, VINDEX_COSINE, dim);
    p.capacity = ncat + 16;
    p.threads = (uint32_t)threads;
    char err[256];
    vindex_t *ix = vindex_new(&p, err, sizeof err);
    uint64_t *ids = malloc(ncat * sizeof *ids);
    uint32_t k = K + (leave_one_out ? 1 : 0);
    vindex_hit_t *hits = malloc(nq * k * sizeof *hits);
    uint32_t *nhits = malloc(nq * sizeof *nhits);
    double sum = -1;
    if (!ix || !ids || !hits || !nhits) {
        fprintf(stderr, "bench/quality: %s\n", ix ? "out of memory" : err);
        goto out;
    }
    for (size_t i = 0; i < ncat; i++)
        ids[i] = i;
    vindex_search_params_t sp = {.k = k};
    if (vindex_add_batch(ix, ids, cat, ncat, err, sizeof err) != 0 ||
        vindex_search_batch(ix, q, nq, &sp, hits, nhits, err, sizeof err) != 0) {
        fprintf(stderr, "bench/quality: %s\n", err);
        goto out;
    }
    sum = 0;
    for (size_t i = 0; i < nq; i++) {
        int same = 0, taken = 0;
        for (uint32_t h = 0; h < nhits[i] && taken < K; h++) {
            if (leave_one_out && hits[i * k + h].id == i)
                continue;
            taken++;
            same += cat_labels[hits[i * k + h].id] == q_labels[i];
        }
        sum += (double)same / K;
    }
    sum /= (double)nq;
out:
    vindex_free(ix);
    free(ids);
    free(hits);
    free(nhits);
    return sum;
}

/* ---- models ---- */

typedef struct {
    embed_model *m;
    const char *out;
    uint32_t dim;
    embed_image_opts_t iopts;
    char name[256];
    struct stat st;
} model_t;

static int model_open(model_t *md, const char *path, int threads)
{
    char err[512];
    embed_model_options mo = {.threads = threads};
    memset(md, 0, sizeof *md);
    if (stat(path, &md->st) != 0 || !(md->m = embed_model_load(path, &mo, err, sizeof err))) {
        fprintf(stderr, "bench/quality: %s: %s\n", path, md->m ? "" : err);
        return -1;
    }
    md->out = embed_model_default_output(md->m);
    long dim = md->out ? embed_model_output_dim(md->m, md->out, err, sizeof err) : -1;
    if (dim < 2 || dim > VINDEX_DIM_MAX) {
        fprintf(stderr, "bench/quality: %s: no usable embedding output\n", path);
        embed_model_free(md->m);
        return -1;
    }
    md->dim = (uint32_t)dim;
    embed_image_opts_init(&md->iopts);
    const char *pre = embed_model_metadata(md->m, "preprocessing");
    if (pre)
        embed_image_opts_parse_preprocessing(&md->iopts, pre, NULL, 0);
    const char *base = strrchr(path, '/');
    snprintf(md->name, sizeof md->name, "%s", base ? base + 1 : path);
    return 0;
}

/* Embeds n input tensors (n x tensor_len floats) into out (n x dim), batch by batch. */
static int embed_all(model_t *md, const float *tensors, size_t n, float *out)
{
    size_t tl = embed_image_tensor_len(&md->iopts);
    char err[512];
    for (size_t i = 0; i < n; i += BATCH) {
        int b = (int)(n - i < BATCH ? n - i : BATCH);
        if (embed_model_run(md->m, tensors + i * tl, b, md->out, out + i * md->dim, (size_t)b * md->dim, err,
                            sizeof err) != 0) {
            fprintf(stderr, "bench/quality: %s: %s\n", md->name, err);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        embed_l2_normalize(out + i * md->dim, md->dim);
    return 0;
}

/* ---- the demo catalogue ---- */

typedef struct {
    char **paths;
    int *labels;
    size_t n;
    char *names[64];
    int nnames;
} photos_t;

static int label_of(photos_t *ph, const char *cat)
{
    for (int i = 0; i < ph->nnames; i++)
        if (strcmp(ph->names[i], cat) == 0)
            return i;
    if (ph->nnames == 64)
        return 63;
    ph->names[ph->nnames] = strdup(cat);
    return ph->nnames++;
}

/* metadata.csv: path,split,category,... (the data set's own columns, no quoting). */
static int read_photos(const char *dir, photos_t *ph)
{
    char path[PATH_MAX + 4096 + 16], line[4096];
    snprintf(path, sizeof path, "%s/metadata.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench/quality: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = 0;
            continue;
        }
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL,
             *c3 = c2 ? strchr(c2 + 1, ',') : NULL;
        if (!c3)
            continue;
        *c1 = *c3 = 0;
        if (ph->n == cap) {
            cap = cap ? cap * 2 : 1024;
            ph->paths = realloc(ph->paths, cap * sizeof *ph->paths);
            ph->labels = realloc(ph->labels, cap * sizeof *ph->labels);
            if (!ph->paths || !ph->labels) {
                fclose(f);
                return -1;
            }
        }
        snprintf(path, sizeof path, "%s/%s", dir, line);
        ph->paths[ph->n] = strdup(path);
        ph->labels[ph->n] = label_of(ph, c2 + 1);
        ph->n++;
    }
    fclose(f);
    return ph->n ? 0 : -1;
}

/* Raw-pixel baseline of a network input tensor: the pixels (0..255, normalisation undone), grey,
 * averaged down to 28x28, plus 1 (as for Fashion-MNIST below). */
static void tensor_pixels(const float *t, const embed_image_opts_t *io, float out[FM_PIXELS])
{
    uint32_t side = io->crop;
    for (int y = 0; y < FM_SIDE; y++)
        for (int x = 0; x < FM_SIDE; x++) {
            uint32_t y0 = y * side / FM_SIDE, y1 = (y + 1) * side / FM_SIDE, x0 = x * side / FM_SIDE,
                     x1 = (x + 1) * side / FM_SIDE;
            double s = 0;
            for (int c = 0; c < 3; c++)
                for (uint32_t yy = y0; yy < y1; yy++)
                    for (uint32_t xx = x0; xx < x1; xx++)
                        s += t[(size_t)c * side * side + yy * side + xx] * io->std[c] + io->mean[c];
            out[y * FM_SIDE + x] = (float)(255.0 * s / (3.0 * (y1 - y0) * (x1 - x0))) + 1.0f;
        }
}

static void print_line(const char *dataset, const char *method, size_t catalogue, size_t queries, double p,
                       double secs)
{
    printf("{\"bench\":\"quality\",\"dataset\":\"%s\",\"method\":\"%s\",\"catalogue\":%zu,\"queries\":%zu,"
           "\"precision_at_10\":%.4f,\"seconds\":%.1f}\n",
           dataset, method, catalogue, queries, p, secs);
    fflush(stdout);
}

static int bench_products(const opts_t *o)
{
    char dir[PATH_MAX], err[512];
    snprintf(dir, sizeof dir, "%s/products", o->data_dir);
    photos_t ph = {0};
    if (read_photos(dir, &ph) != 0) {
        fprintf(stderr, "bench/quality: no photos in %s\n", dir);
        return -1;
    }
    /* Chance: a random top 10 from the other photos. */
    double chance = 0;
    for (size_t i = 0; i < ph.n; i++) {
        size_t same = 0;
        for (size_t j = 0; j < ph.n; j++)
            same += j != i && ph.labels[j] == ph.labels[i];
        chance += (double)same / (double)(ph.n - 1);
    }
    print_line("products", "chance", ph.n, ph.n, chance / (double)ph.n, 0);
    int rc = 0;
    for (int mi = 0; mi < o->nmodels && rc == 0; mi++) {
        model_t md;
        if (model_open(&md, o->models[mi], o->threads) != 0)
            return -1;
        double t0 = now_s();
        size_t tl = embed_image_tensor_len(&md.iopts);
        float *tensors = malloc(ph.n * tl * sizeof *tensors), *vecs = malloc(ph.n * md.dim * sizeof *vecs),
              *pix = malloc(ph.n * FM_PIXELS * sizeof *pix);
        if (!tensors || !vecs || !pix) {
            rc = -1;
        } else {
            for (size_t i = 0; i < ph.n && rc == 0; i++) {
                if (embed_image_tensor_file(ph.paths[i], &md.iopts, tensors + i * tl, err, sizeof err) != 0) {
                    fprintf(stderr, "bench/quality: %s\n", err);
                    rc = -1;
                } else {
                    tensor_pixels(tensors + i * tl, &md.iopts, pix + i * FM_PIXELS);
                }
            }
            if (rc == 0 && (rc = embed_all(&md, tensors, ph.n, vecs)) == 0) {
                double p =
                    precision_at_k(vecs, ph.labels, ph.n, vecs, ph.labels, ph.n, md.dim, 1, o->threads);
                print_line("products", md.name, ph.n, ph.n, p, now_s() - t0);
                if (mi == 0) {
                    t0 = now_s();
                    p = precision_at_k(pix, ph.labels, ph.n, pix, ph.labels, ph.n, FM_PIXELS, 1, o->threads);
                    print_line("products", "raw_pixels", ph.n, ph.n, p, now_s() - t0);
                }
            }
        }
        free(tensors);
        free(vecs);
        free(pix);
        embed_model_free(md.m);
    }
    for (size_t i = 0; i < ph.n; i++)
        free(ph.paths[i]);
    for (int i = 0; i < ph.nnames; i++)
        free(ph.names[i]);
    free(ph.paths);
    free(ph.labels);
    return rc;
}

/* ---- Fashion-MNIST ---- */

/* Reads a gzip'd IDX file: magic, count, then (images) rows and cols. *data gets the bytes. */
static int read_idx(const char *path, int images, uint8_t **data, size_t *count)
{
    gzFile f = gzopen(path, "rb");
    uint8_t hdr[16];
    int hl = images ? 16 : 8;
    *data = NULL;
    if (!f || gzread(f, hdr, (unsigned)hl) != hl) {
        fprintf(stderr, "bench/quality: %s: cannot read\n", path);
        if (f)
            gzclose(f);
        return -1;
    }
    uint32_t magic = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
    uint32_t n = (uint32_t)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7];
    size_t each = images ? FM_PIXELS : 1;
    if (magic != (images ? 2051u : 2049u) || n > 1000000 ||
        (images && (hdr[11] != FM_SIDE || hdr[15] != FM_SIDE))) {
        fprintf(stderr, "bench/quality: %s: not a Fashion-MNIST IDX file\n", path);
        gzclose(f);
        return -1;
    }
    if (!(*data = malloc((size_t)n * each)) || gzread(f, *data, (unsigned)(n * each)) != (int)(n * each)) {
        fprintf(stderr, "bench/quality: %s: truncated\n", path);
        free(*data);
        *data = NULL;
        gzclose(f);
        return -1;
    }
    gzclose(f);
    *count = n;
    return 0;
}

/* One 28x28 grey image as the network input: bilinear to 256x256 (pixel centres aligned, as
 * PIL and libvips resize), centre crop, normalised per channel. */
static void fm_tensor(const uint8_t *img, const embed_image_opts_t *io, float *out)
{
    uint32_t big = io->resize_short, crop = io->crop, off = (big - crop + 1) / 2;
    float scale = (float)FM_SIDE / (float)big;
    for (uint32_t y = 0; y < crop; y++) {
        float sy = ((float)(y + off) + 0.5f) * scale - 0.5f;
        int y0 = sy < 0 ? 0 : (int)sy, y1 = y0 + 1 < FM_SIDE ? y0 + 1 : FM_SIDE - 1;
        float fy = sy < 0 ? 0 : sy - (float)y0;
        for (uint32_t x = 0; x < crop; x++) {
            float sx = ((float)(x + off) + 0.5f) * scale - 0.5f;
            int x0 = sx < 0 ? 0 : (int)sx, x1 = x0 + 1 < FM_SIDE ? x0 + 1 : FM_SIDE - 1;
            float fx = sx < 0 ? 0 : sx - (float)x0;
            float v = (1 - fy) * ((1 - fx) * img[y0 * FM_SIDE + x0] + fx * img[y0 * FM_SIDE + x1]) +
                      fy * ((1 - fx) * img[y1 * FM_SIDE + x0] + fx * img[y1 * FM_SIDE + x1]);
            for (int c = 0; c < 3; c++)
                out[(size_t)c * crop * crop + y * crop + x] = (v / 255.0f - io->mean[c]) / io->std[c];
        }
    }
}

/* Embeds n Fashion-MNIST images into out (n x dim), from the cache file when it matches. */
static int fm_embed(model_t *md, const uint8_t *imgs, size_t n, const char *cache_path, float *out)
{
    char key[512];
    snprintf(key, sizeof key, "lookalike-quality-cache 1 %s %lld %lld %zu %u\n", md->name,
             (long long)md->st.st_size, (long long)md->st.st_mtime, n, md->dim);
    FILE *f = cache_path ? fopen(cache_path, "rb") : NULL;
    if (f) {
        char got[512] = "";
        int hit = fgets(got, sizeof got, f) && strcmp(got, key) == 0 &&
                  fread(out, sizeof *out, n * md->dim, f) == n * md->dim;
        fclose(f);
        if (hit)
            return 0;
    }
    size_t tl = embed_image_tensor_len(&md->iopts);
    float *t = malloc(BATCH * tl * sizeof *t);
    if (!t)
        return -1;
    double t0 = now_s(), last = t0;
    for (size_t i = 0; i < n; i += BATCH) {
        size_t b = n - i < BATCH ? n - i : BATCH;
        for (size_t j = 0; j < b; j++)
            fm_tensor(imgs + (i + j) * FM_PIXELS, &md->iopts, t + j * tl);
        if (embed_all(md, t, b, out + i * md->dim) != 0) {
            free(t);
            return -1;
        }
        if (now_s() - last > 30) {
            last = now_s();
            fprintf(stderr, "bench/quality: %s: %zu/%zu Fashion-MNIST images embedded (%.0f/s)\n", md->name,
                    i + b, n, (i + b) / (last - t0));
        }
    }
    free(t);
    if (cache_path && (f = fopen(cache_path, "wb"))) {
        fputs(key, f);
        fwrite(out, sizeof *out, n * md->dim, f);
        fclose(f);
    }
    return 0;
}

static int bench_fm(const opts_t *o)
{
    char p[PATH_MAX];
    uint8_t *train = NULL, *test = NULL, *ltrain = NULL, *ltest = NULL;
    size_t ntrain = 0, ntest = 0, nl1 = 0, nl2 = 0;
    int rc = -1;
    float *ctr = NULL, *cq = NULL, *vtr = NULL, *vq = NULL;
    int *labtr = NULL, *labq = NULL;
#define FM(name) (snprintf(p, sizeof p, "%s/fashion-mnist/%s", o->data_dir, name), p)
    if (read_idx(FM("train-images-idx3-ubyte.gz"), 1, &train, &ntrain) != 0 ||
        read_idx(FM("train-labels-idx1-ubyte.gz"), 0, &ltrain, &nl1) != 0 ||
        read_idx(FM("t10k-images-idx3-ubyte.gz"), 1, &test, &ntest) != 0 ||
        read_idx(FM("t10k-labels-idx1-ubyte.gz"), 0, &ltest, &nl2) != 0 || nl1 != ntrain || nl2 != ntest)
        goto out;
#undef FM
    size_t nc = o->fm_catalogue && (size_t)o->fm_catalogue < ntrain ? (size_t)o->fm_catalogue : ntrain;
    size_t nq = o->fm_queries && (size_t)o->fm_queries < ntest ? (size_t)o->fm_queries : ntest;
    if (!(ctr = malloc(nc * FM_PIXELS * sizeof *ctr)) || !(cq = malloc(nq * FM_PIXELS * sizeof *cq)) ||
        !(labtr = malloc(nc * sizeof *labtr)) || !(labq = malloc(nq * sizeof *labq)))
        goto out;
    for (size_t i = 0; i < nc * FM_PIXELS; i++)
        ctr[i] = train[i] + 1.0f; /* + 1: an all-black image still has a direction */
    for (size_t i = 0; i < nq * FM_PIXELS; i++)
        cq[i] = test[i] + 1.0f;
    for (size_t i = 0; i < nc; i++)
        labtr[i] = ltrain[i];
    for (size_t i = 0; i < nq; i++)
        labq[i] = ltest[i];
    double t0 = now_s();
    double pr = precision_at_k(ctr, labtr, nc, cq, labq, nq, FM_PIXELS, 0, o->threads);
    print_line("fashion-mnist", "raw_pixels", nc, nq, pr, now_s() - t0);
    for (int mi = 0; mi < o->nmodels; mi++) {
        model_t md;
        if (model_open(&md, o->models[mi], o->threads) != 0)
            goto out;
        t0 = now_s();
        char cache[PATH_MAX];
        snprintf(cache, sizeof cache, "%s/%s.fmnist-train-%zu.f32", o->cache, md.name, nc);
        mkdir(o->cache, 0755);
        free(vtr);
        free(vq);
        vtr = malloc(nc * md.dim * sizeof *vtr);
        vq = malloc(nq * md.dim * sizeof *vq);
        int ok =
            vtr && vq && fm_embed(&md, train, nc, cache, vtr) == 0 && fm_embed(&md, test, nq, NULL, vq) == 0;
        uint32_t dim = md.dim;
        char name[256];
        snprintf(name, sizeof name, "%s", md.name);
        embed_model_free(md.m);
        if (!ok)
            goto out;
        double pm = precision_at_k(vtr, labtr, nc, vq, labq, nq, dim, 0, o->threads);
        print_line("fashion-mnist", name, nc, nq, pm, now_s() - t0);
    }
    rc = 0;
out:
    free(train);
    free(test);
    free(ltrain);
    free(ltest);
    free(ctr);
    free(cq);
    free(vtr);
    free(vq);
    free(labtr);
    free(labq);
    return rc;
}

/* Every *.onnx directly in dir, sorted. */
static int find_models(opts_t *o)
{
    DIR *d = opendir(o->models_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && o->nmodels < MODELS_MAX) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".onnx") == 0) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", o->models_dir, e->d_name);
            o->models[o->nmodels++] = strdup(path);
        }
    }
    if (d)
        closedir(d);
    for (int i = 1; i < o->nmodels; i++)
        for (int j = i; j > 0 && strcmp(o->models[j - 1], o->models[j]) > 0; j--) {
            char *t = o->models[j];
            o->models[j] = o->models[j - 1];
            o->models[j - 1] = t;
        }
    return o->nmodels ? 0 : -1;
}

int main(int argc, char **argv)
{
    opts_t o = {.models_dir = getenv("MODELS_DIR") ? getenv("MODELS_DIR") : "../shared/models",
                .data_dir = getenv("DATA_DIR") ? getenv("DATA_DIR") : "../shared/data",
                .cache = "build/bench-data/quality",
                .fm_catalogue = 0,
                .fm_queries = 1000,
                .threads = 2};
    const char *models = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--only-products"))
            o.skip_fm = 1;
        else if (!strcmp(a, "--only-fashion-mnist"))
            o.skip_products = 1;
        else if (v && !strcmp(a, "--models"))
            models = argv[++i];
        else if (v && !strcmp(a, "--fm-catalogue"))
            o.fm_catalogue = atol(argv[++i]);
        else if (v && !strcmp(a, "--fm-queries"))
            o.fm_queries = atol(argv[++i]);
        else if (v && !strcmp(a, "--threads"))
            o.threads = atoi(argv[++i]);
        else if (v && !strcmp(a, "--cache"))
            o.cache = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--models A.onnx,B.onnx] [--fm-catalogue N (0: all 60000)] [--fm-queries N "
                    "(0: all "
                    "10000; default 1000)] [--threads 2] [--cache DIR] [--only-products | "
                    "--only-fashion-mnist]\n",
                    argv[0]);
            return 2;
        }
    }
    if (models) {
        char *copy = strdup(models), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t && o.nmodels < MODELS_MAX;
             t = strtok_r(NULL, ",", &save))
            o.models[o.nmodels++] = strdup(t);
        free(copy);
    } else if (find_models(&o) != 0) {
        fprintf(stderr, "bench/quality: no .onnx model in %s\n", o.models_dir);
        return 1;
    }
    char err[512];
    if (embed_image_global_init(argv[0], 1, err, sizeof err) != 0) {
        fprintf(stderr, "bench/quality: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (!o.skip_products && bench_products(&o) != 0)
        rc = 1;
    if (!o.skip_fm && bench_fm(&o) != 0)
        rc = 1;
    for (int i = 0; i < o.nmodels; i++)
        free(o.models[i]);
    return rc;
}
