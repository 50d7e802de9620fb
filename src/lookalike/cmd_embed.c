/* `lookalike embed`: photos to vectors (or to ImageNet classes) from the shell, so a person can
 * see what the model makes of an image without a server or a collection.
 *
 * Images go through in batches of --batch: each batch is decoded by --threads threads at once,
 * the images that decoded are run as one batch (the engine deals its samples out to as many
 * threads), and one JSON line per image is printed in argument order. An image that cannot be
 * read is reported on stderr and left out; the others still go through, and the exit status
 * is 1 at the end. Usage errors exit 2, a model that cannot be loaded exits 1 at once. */
#include "embed/embed.h"
#include "lookalike/api.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EMBED_CMD_THREADS_MAX 64
#define EMBED_CMD_TOP_MAX 100
#define LABELS_MAX_BYTES (16u * 1024u * 1024u)
#define LABELS_MAX_LINES 1000000

/* Class names, one per line of the --labels file; lines[] point into text (both owned). */
typedef struct {
    char *text;
    char **lines;
    long n;
} labels_t;

/* One batch being decoded: worker k takes images k, k + stride, ... */
typedef struct {
    char **files;
    int n;
    int stride; /* worker count the images are dealt out to */
    const embed_image_opts_t *iopts;
    float *tensors; /* n x tensor_len */
    size_t tensor_len;
    int *rc;          /* per image: 0 or the pipeline's error */
    char (*err)[512]; /* per image */
} decode_job_t;

typedef struct {
    decode_job_t *job;
    int k;
} decode_arg_t;

static void decode_some(decode_job_t *j, int k)
{
    for (int i = k; i < j->n; i += j->stride)
        j->rc[i] = embed_image_tensor_file(j->files[i], j->iopts, j->tensors + (size_t)i * j->tensor_len,
                                           j->err[i], sizeof j->err[i]);
}

static void *decode_worker(void *arg)
{
    decode_arg_t *a = arg;
    decode_some(a->job, a->k);
    return NULL;
}

/* Decodes the batch on j->stride threads, the caller being one; the share of a thread that
 * cannot be started is decoded by the caller. */
static void decode_batch(decode_job_t *j)
{
    pthread_t tid[EMBED_CMD_THREADS_MAX];
    decode_arg_t args[EMBED_CMD_THREADS_MAX];
    bool started[EMBED_CMD_THREADS_MAX] = {false};
    for (int k = 1; k < j->stride; k++) {
        args[k] = (decode_arg_t){j, k};
        started[k] = pthread_create(&tid[k], NULL, decode_worker, &args[k]) == 0;
    }
    for (int k = 0; k < j->stride; k++)
        if (!started[k])
            decode_some(j, k);
    for (int k = 1; k < j->stride; k++)
        if (started[k])
            pthread_join(tid[k], NULL);
}

static void labels_release(labels_t *l)
{
    free(l->text);
    free(l->lines);
    *l = (labels_t){0};
}

/* Reads a labels file: one class name per line, line i naming class i. */
static int labels_load(const char *path, labels_t *l, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    long size = -1;
    *l = (labels_t){0};
    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%.300s: cannot read", path);
        goto fail;
    }
    if (size == 0 || (size_t)size > LABELS_MAX_BYTES) {
        snprintf(err, errlen, "%.300s: empty or too large (at most %u bytes)", path, LABELS_MAX_BYTES);
        goto fail;
    }
    if (!(l->text = malloc((size_t)size + 1)) || fread(l->text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errlen, "%.300s: cannot read", path);
        goto fail;
    }
    l->text[size] = 0;
    if (strlen(l->text) != (size_t)size) {
        snprintf(err, errlen, "%.300s: not a text file (NUL byte)", path);
        goto fail;
    }
    long lines = 0;
    for (long i = 0; i < size; i++)
        lines += l->text[i] == '\n' || (i == size - 1);
    if (lines > LABELS_MAX_LINES) {
        snprintf(err, errlen, "%.300s: more than %d lines", path, LABELS_MAX_LINES);
        goto fail;
    }
    if (!(l->lines = malloc((size_t)lines * sizeof *l->lines))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    char *p = l->text;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r')
            p[len - 1] = 0;
        l->lines[l->n++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    fclose(f);
    return 0;
fail:
    if (f)
        fclose(f);
    labels_release(l);
    return -1;
}

/* Writes s as a JSON string. */
static void print_json_string(const char *s)
{
    json_t *j = json_string(s);
    char *txt = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    /* json_string refuses invalid UTF-8; such a name is shown with the bad bytes replaced. */
    if (!txt) {
        putchar('"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
            if (*p == '"' || *p == '\\')
                printf("\\%c", *p);
            else if (*p < 0x20 || *p >= 0x80)
                fputs("\\ufffd", stdout);
            else
                putchar(*p);
        putchar('"');
    } else
        fputs(txt, stdout);
    free(txt);
    json_decref(j);
}

static void print_vector(const char *file, const float *v, long dim)
{
    fputs("{\"file\":", stdout);
    print_json_string(file);
    fputs(",\"vector\":[", stdout);
    for (long i = 0; i < dim; i++)
        printf(i ? ",%.7g" : "%.7g", (double)v[i]);
    fputs("]}\n", stdout);
}

/* Prints the top `top` classes of one image's scores; probabilities says whether the scores
 * already sum to one (a Softmax output) or are logits to be put through a softmax first. */
static void print_classes(const char *file, const float *scores, long dim, bool probabilities,
                          const labels_t *labels, int top)
{
    int best[EMBED_CMD_TOP_MAX];
    int nbest = 0;
    double maxv = -INFINITY, sum = 0;
    for (long i = 0; i < dim; i++)
        maxv = scores[i] > maxv ? scores[i] : maxv;
    if (!probabilities)
        for (long i = 0; i < dim; i++)
            sum += exp((double)scores[i] - maxv);
    for (long i = 0; i < dim; i++) {
        int pos;
        if (nbest < top)
            pos = nbest++;
        else if (scores[i] > scores[best[top - 1]])
            pos = top - 1;
        else
            continue;
        while (pos > 0 && scores[best[pos - 1]] < scores[i]) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos] = (int)i;
    }
    fputs("{\"file\":", stdout);
    print_json_string(file);
    fputs(",\"classes\":[", stdout);
    for (int k = 0; k < nbest; k++) {
        double s = scores[best[k]];
        printf("%s{\"id\":%d,", k ? "," : "", best[k]);
        if (labels->n) {
            fputs("\"label\":", stdout);
            print_json_string(labels->lines[best[k]]);
            fputs(",", stdout);
        }
        printf("\"score\":%.6g}", probabilities ? s : exp(s - maxv) / sum);
    }
    fputs("]}\n", stdout);
}

/* Moves command-line words that are not flags (the image paths) into images[], leaving the
 * flags in argv for core_flags_parse. A flag takes the next word as its value unless it is
 * written --name=value or is a boolean; "--" ends the flags. Returns the new argc. */
static int split_args(const core_flag *flags, size_t nflags, int argc, char **argv, char **images,
                      int *nimages)
{
    int out = 1;
    bool only_images = false;
    *nimages = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_images || a[0] != '-' || a[1] == 0) {
            images[(*nimages)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_images = true;
            continue;
        }
        argv[out++] = argv[i];
        if (strncmp(a, "--", 2) != 0 || strchr(a, '='))
            continue;
        for (size_t k = 0; k < nflags; k++)
            if (strcmp(a + 2, flags[k].name) == 0 && flags[k].type != CORE_FLAG_BOOL && i + 1 < argc) {
                argv[out++] = argv[++i];
                break;
            }
    }
    return out;
}

/* The tensor --classify reads by default: the graph output "logits" when there is one (the
 * shared MobileNet also outputs the embedding and the probabilities), else the first output
 * (the classifier Gemm of a torchvision export). */
static const char *class_output(const embed_model *m)
{
    for (int i = 0; i < embed_model_output_count(m); i++)
        if (strcmp(embed_model_output_name(m, i), "logits") == 0)
            return "logits";
    return embed_model_output_name(m, 0);
}

int lookalike_cmd_embed(int argc, char **argv)
{
    const char *model_path = NULL, *output = NULL, *labels_path = NULL, *pre = NULL;
    bool classify = false;
    int threads = 0, batch = 0, top = 0;
    core_flag flags[] = {
        {"model", CORE_FLAG_STR, &model_path, LOOKALIKE_DEFAULT_MODEL, 0, 0, "ONNX image model"},
        {"output", CORE_FLAG_STR, &output, "", 0, 0,
         "tensor to print (default: the model's embedding; with --classify its logits)"},
        {"classify", CORE_FLAG_BOOL, &classify, "false", 0, 0, "print the top classes instead of the vector"},
        {"labels", CORE_FLAG_STR, &labels_path, "", 0, 0, "class names, one per line (with --classify)"},
        {"top", CORE_FLAG_INT, &top, "5", 1, EMBED_CMD_TOP_MAX, "how many classes --classify prints"},
        {"threads", CORE_FLAG_INT, &threads, "0", 0, EMBED_CMD_THREADS_MAX,
         "threads for decoding and inference (0 = every core)"},
        {"batch", CORE_FLAG_INT, &batch, "8", 1, EMBED_MAX_BATCH, "images run through the model at once"},
        {"preprocessing", CORE_FLAG_STR, &pre, "", 0, 0,
         "normalisation: \"imagenet\", \"pixel/127.5 - 1\" or \"mean=R,G,B; std=R,G,B\" (default: the "
         "model's metadata, else imagenet)"},
    };
    const size_t nflags = sizeof flags / sizeof *flags;
    char err[1024];
    char **images = malloc((size_t)argc * sizeof *images);
    embed_model *m = NULL;
    labels_t labels = {0};
    float *tensors = NULL, *out = NULL;
    int *rcs = NULL;
    char(*errs)[512] = NULL;
    int nimages, exit_code = 1;
    if (!images) {
        fprintf(stderr, "lookalike embed: out of memory\n");
        return 1;
    }
    argc = split_args(flags, nflags, argc, argv, images, &nimages);
    int rc =
        core_flags_parse(flags, nflags, "LOOKALIKE", argc, argv,
                         "lookalike embed: print the embedding (or the top classes) of each image\n"
                         "usage: lookalike embed [--model PATH] [--output NAME] [--classify [--labels "
                         "FILE]] IMAGE...\n"
                         "One JSON line per image: {\"file\", \"vector\"} (L2-normalised), or with "
                         "--classify {\"file\", \"classes\": [{\"id\", \"label\", \"score\"}]}.\n"
                         "An image that cannot be read is reported on stderr; the exit status is then 1.",
                         stdout, err, sizeof err);
    if (rc == 1) {
        exit_code = 0;
        goto done;
    }
    if (rc < 0 || nimages == 0) {
        fprintf(stderr, "lookalike embed: %s (see --help)\n", rc < 0 ? err : "no image given");
        exit_code = 2;
        goto done;
    }
    if (*labels_path && !classify) {
        fprintf(stderr, "lookalike embed: --labels needs --classify (see --help)\n");
        exit_code = 2;
        goto done;
    }
    if (embed_image_global_init("lookalike", 1, err, sizeof err) != 0) {
        fprintf(stderr, "lookalike embed: image pipeline: %s\n", err);
        goto done;
    }
    embed_model_options mo = {.threads = threads, .reference = 0};
    if (!(m = embed_model_load(model_path, &mo, err, sizeof err))) {
        fprintf(stderr, "lookalike embed: model %s: %s\n", model_path, err);
        goto done;
    }
    const char *tensor = *output ? output : classify ? class_output(m) : embed_model_default_output(m);
    if (!tensor) {
        fprintf(stderr, "lookalike embed: model %s has no embedding tensor; name one with --output\n",
                model_path);
        goto done;
    }
    long dim = embed_model_output_dim(m, tensor, err, sizeof err);
    if (dim < 0) {
        fprintf(stderr, "lookalike embed: model %s: %s\n", model_path, err);
        goto done;
    }
    const char *op = embed_model_tensor_op(m, tensor);
    bool probabilities = op && strcmp(op, "Softmax") == 0;
    if (*labels_path) {
        if (labels_load(labels_path, &labels, err, sizeof err) != 0) {
            fprintf(stderr, "lookalike embed: --labels %s\n", err);
            goto done;
        }
        if (labels.n != dim) {
            fprintf(stderr, "lookalike embed: --labels %s has %ld lines, but '%s' has %ld classes\n",
                    labels_path, labels.n, tensor, dim);
            goto done;
        }
    }
    embed_image_opts_t iopts;
    embed_image_opts_init(&iopts);
    const char *model_pre = embed_model_metadata(m, "preprocessing");
    if (*pre) {
        if (embed_image_opts_parse_preprocessing(&iopts, pre, err, sizeof err) != 0) {
            fprintf(stderr, "lookalike embed: --preprocessing: %s\n", err);
            exit_code = 2;
            goto done;
        }
    } else if (model_pre && embed_image_opts_parse_preprocessing(&iopts, model_pre, err, sizeof err) != 0) {
        fprintf(stderr,
                "lookalike embed: model %s: its preprocessing metadata is not understood (%s); give "
                "--preprocessing\n",
                model_path, err);
        goto done;
    }
    int c, h, w;
    if (embed_model_input_shape(m, &c, &h, &w) != 0 || c != 3 || h != (int)iopts.crop ||
        w != (int)iopts.crop) {
        fprintf(stderr, "lookalike embed: model %s does not take 3 x %u x %u images\n", model_path,
                iopts.crop, iopts.crop);
        goto done;
    }
    size_t tlen = embed_image_tensor_len(&iopts);
    tensors = malloc((size_t)batch * tlen * sizeof *tensors);
    out = malloc((size_t)batch * (size_t)dim * sizeof *out);
    rcs = malloc((size_t)batch * sizeof *rcs);
    errs = malloc((size_t)batch * sizeof *errs);
    if (!tensors || !out || !rcs || !errs) {
        fprintf(stderr, "lookalike embed: out of memory\n");
        goto done;
    }
    int nthreads = threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    exit_code = 0;
    for (int first = 0; first < nimages; first += batch) {
        int n = nimages - first < batch ? nimages - first : batch;
        int stride = nthreads < 1 ? 1 : nthreads > n ? n : nthreads;
        decode_job_t job = {images + first, n, stride, &iopts, tensors, tlen, rcs, errs};
        decode_batch(&job);
        /* The images that decoded move together, in order, into one contiguous batch. */
        int ok = 0;
        for (int i = 0; i < n; i++)
            if (rcs[i] == 0) {
                if (ok != i)
                    memcpy(tensors + (size_t)ok * tlen, tensors + (size_t)i * tlen, tlen * sizeof *tensors);
                ok++;
            }
        if (ok &&
            embed_model_run(m, tensors, ok, tensor, out, (size_t)ok * (size_t)dim, err, sizeof err) != 0) {
            fprintf(stderr, "lookalike embed: model %s: %s\n", model_path, err);
            exit_code = 1;
            goto done;
        }
        for (int i = 0, k = 0; i < n; i++) {
            if (rcs[i] != 0) {
                fprintf(stderr, "lookalike embed: %s\n", errs[i]);
                exit_code = 1;
                continue;
            }
            float *v = out + (size_t)k++ * (size_t)dim;
            if (classify)
                print_classes(images[first + i], v, dim, probabilities, &labels, top);
            else {
                embed_l2_normalize(v, (size_t)dim);
                print_vector(images[first + i], v, dim);
            }
        }
        fflush(stdout);
    }
done:
    free(tensors);
    free(out);
    free(rcs);
    free(errs);
    labels_release(&labels);
    embed_model_free(m);
    free(images);
    return exit_code;
}
