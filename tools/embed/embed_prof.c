/* embed-prof: time one ONNX model on the embed engine, for development and profiling.
 *
 *   build/embed-prof MODEL.onnx [--batch B] [--threads T] [--seconds S] [--output NAME]
 *                    [--input FILE.f32] [--save OUT.f32]
 *
 * Runs batch B (default 1) on T threads (default 1) for about S seconds (default 3) after a
 * warm-up, and prints one JSON line: latency per run, images per second and CPU time per image
 * (the process's user + system time, steadier than wall time on a shared machine). The input
 * is the MODELS.md test-vector formula unless --input gives raw float32 NCHW data; --save
 * writes the output tensor as raw float32. Set EMBED_PROFILE=1 to get the per-op time table
 * on stderr when the model is freed.
 */
#include "embed/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s MODEL.onnx [--batch B] [--threads T] [--seconds S] [--output NAME] "
                "[--input FILE.f32]\n",
                argv[0]);
        return 2;
    }
    int batch = 1, threads = 1;
    double seconds = 3;
    const char *output = NULL, *input_file = NULL, *save = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--output") == 0)
            output = argv[i + 1];
        else if (strcmp(argv[i], "--input") == 0)
            input_file = argv[i + 1];
        else if (strcmp(argv[i], "--save") == 0)
            save = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char err[512];
    embed_model_options opt = {.threads = threads};
    double t0 = now();
    embed_model *m = embed_model_load(argv[1], &opt, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "embed-prof: %s\n", err);
        return 1;
    }
    double load_s = now() - t0;
    int c, h, w;
    if (embed_model_input_shape(m, &c, &h, &w)) {
        fprintf(stderr, "embed-prof: model input is not N x C x H x W\n");
        embed_model_free(m);
        return 1;
    }
    long dim = embed_model_output_dim(m, output, err, sizeof(err));
    if (dim < 0) {
        fprintf(stderr, "embed-prof: %s\n", err);
        embed_model_free(m);
        return 1;
    }
    size_t in_n = (size_t)batch * (size_t)(c * h * w);
    float *in = malloc(in_n * sizeof(float)), *out = malloc((size_t)batch * (size_t)dim * sizeof(float));
    int rc = 1;
    if (!in || !out)
        goto done;
    if (input_file) {
        FILE *f = fopen(input_file, "rb");
        if (!f || fread(in, sizeof(float), in_n, f) != in_n) {
            fprintf(stderr, "embed-prof: cannot read %zu floats from %s\n", in_n, input_file);
            if (f)
                fclose(f);
            goto done;
        }
        fclose(f);
    } else {
        for (int n = 0; n < batch; n++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        in[((size_t)(n * c + ch) * h + y) * w + x] =
                            (float)((ch * 7 + y * 3 + x * 5 + n * 11) % 256) / 127.5f - 1;
    }
    embed_ctx *ctx = embed_ctx_new(m, err, sizeof(err));
    if (!ctx) {
        fprintf(stderr, "embed-prof: %s\n", err);
        goto done;
    }
    t0 = now();
    for (int i = 0; i < 3; i++)
        if (embed_ctx_run(ctx, in, batch, output, out, (size_t)batch * (size_t)dim, err, sizeof(err))) {
            fprintf(stderr, "embed-prof: %s\n", err);
            embed_ctx_free(ctx);
            goto done;
        }
    double warm_s = now() - t0;
    if (save) {
        FILE *f = fopen(save, "wb");
        size_t n_out = (size_t)batch * (size_t)dim;
        if (!f || fwrite(out, sizeof(float), n_out, f) != n_out) {
            fprintf(stderr, "embed-prof: cannot write %s\n", save);
            if (f)
                fclose(f);
            embed_ctx_free(ctx);
            goto done;
        }
        fclose(f);
    }
    int cap = 100000, n = 0;
    double *lat = malloc((size_t)cap * sizeof(double));
    double start = now(), cpu_start = cpu_now();
    while (lat && n < cap && (now() - start < seconds || n < 3)) {
        double s = now();
        embed_ctx_run(ctx, in, batch, output, out, (size_t)batch * (size_t)dim, err, sizeof(err));
        lat[n++] = now() - s;
    }
    double total = now() - start, cpu = cpu_now() - cpu_start;
    embed_ctx_free(ctx);
    if (!lat)
        goto done;
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("{\"model\":\"%s\",\"threads\":%d,\"batch\":%d,\"runs\":%d,\"load_s\":%.3f,\"warmup_s\":%.3f,"
           "\"latency_ms_median\":%.3f,\"latency_ms_min\":%.3f,\"images_per_s\":%.2f,\"cpu_ms_per_image\":%."
           "3f,\"out0\":%g}\n",
           argv[1], threads, batch, n, load_s, warm_s, lat[n / 2] * 1e3, lat[0] * 1e3, n * batch / total,
           cpu * 1e3 / (n * batch), (double)out[0]);
    free(lat);
    rc = 0;
done:
    free(in);
    free(out);
    embed_model_free(m);
    return rc;
}
