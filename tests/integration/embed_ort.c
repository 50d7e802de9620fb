/* Helper for embed_ort.sh: our side of the comparison with ONNX Runtime.
 *
 *   embed_ort MODEL.onnx OUTDIR THREADS IMAGE...
 *
 * Preprocesses the images with the model's own normalisation (its "preprocessing" metadata,
 * else ImageNet) into OUTDIR/input.f32 (N x 3 x H x W raw float32), the tensor ONNX Runtime
 * is then fed, and runs the engine on it twice: the whole batch at once (split over THREADS
 * threads) and one image at a time (OpenMP inside each layer). For the embedding (the model's
 * default output) and the class scores (graph output "logits", else the first graph output)
 * it writes OUTDIR/{batch,single}_{embedding,logits}.f32, raw, not normalised, and prints one
 * JSON line naming both tensors and their sizes. */
#include "embed/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_f32(const char *dir, const char *name, const float *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(v, sizeof *v, n, f) == n;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "embed_ort: cannot write %s\n", path);
    return ok ? 0 : -1;
}

/* Prints s as a JSON string (tensor names come from the model file). */
static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++)
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    putchar('"');
}

static const char *class_output(const embed_model *m)
{
    for (int i = 0; i < embed_model_output_count(m); i++)
        if (strcmp(embed_model_output_name(m, i), "logits") == 0)
            return "logits";
    return embed_model_output_name(m, 0);
}

int main(int argc, char **argv)
{
    char err[1024];
    if (argc < 5) {
        fprintf(stderr, "usage: embed_ort MODEL.onnx OUTDIR THREADS IMAGE...\n");
        return 2;
    }
    const char *dir = argv[2];
    int n = argc - 4, rc = 1;
    embed_model_options mo = {.threads = atoi(argv[3]), .reference = 0};
    embed_model *m = NULL;
    float *in = NULL, *emb = NULL, *cls = NULL, *one_emb = NULL, *one_cls = NULL;
    if (embed_image_global_init(argv[0], 1, err, sizeof err) != 0 ||
        !(m = embed_model_load(argv[1], &mo, err, sizeof err))) {
        fprintf(stderr, "embed_ort: %s\n", err);
        goto done;
    }
    embed_image_opts_t io;
    embed_image_opts_init(&io);
    const char *pre = embed_model_metadata(m, "preprocessing");
    if (pre && embed_image_opts_parse_preprocessing(&io, pre, err, sizeof err) != 0) {
        fprintf(stderr, "embed_ort: preprocessing metadata: %s\n", err);
        goto done;
    }
    const char *emb_name = embed_model_default_output(m), *cls_name = class_output(m);
    long emb_dim = emb_name ? embed_model_output_dim(m, emb_name, err, sizeof err) : -1;
    long cls_dim = emb_dim > 0 && cls_name ? embed_model_output_dim(m, cls_name, err, sizeof err) : -1;
    if (emb_dim <= 0 || cls_dim <= 0) {
        fprintf(stderr, "embed_ort: outputs: %s\n", err);
        goto done;
    }
    size_t tlen = embed_image_tensor_len(&io);
    in = malloc((size_t)n * tlen * sizeof *in);
    emb = malloc((size_t)n * (size_t)emb_dim * sizeof *emb);
    cls = malloc((size_t)n * (size_t)cls_dim * sizeof *cls);
    one_emb = malloc((size_t)n * (size_t)emb_dim * sizeof *one_emb);
    one_cls = malloc((size_t)n * (size_t)cls_dim * sizeof *one_cls);
    if (!in || !emb || !cls || !one_emb || !one_cls) {
        fprintf(stderr, "embed_ort: out of memory\n");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (embed_image_tensor_file(argv[4 + i], &io, in + (size_t)i * tlen, err, sizeof err) != 0) {
            fprintf(stderr, "embed_ort: %s\n", err);
            goto done;
        }
    if (embed_model_run(m, in, n, emb_name, emb, (size_t)n * (size_t)emb_dim, err, sizeof err) != 0 ||
        embed_model_run(m, in, n, cls_name, cls, (size_t)n * (size_t)cls_dim, err, sizeof err) != 0) {
        fprintf(stderr, "embed_ort: batch of %d: %s\n", n, err);
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (embed_model_run(m, in + (size_t)i * tlen, 1, emb_name, one_emb + (size_t)i * (size_t)emb_dim,
                            (size_t)emb_dim, err, sizeof err) != 0 ||
            embed_model_run(m, in + (size_t)i * tlen, 1, cls_name, one_cls + (size_t)i * (size_t)cls_dim,
                            (size_t)cls_dim, err, sizeof err) != 0) {
            fprintf(stderr, "embed_ort: image %d alone: %s\n", i, err);
            goto done;
        }
    if (write_f32(dir, "input", in, (size_t)n * tlen) ||
        write_f32(dir, "batch_embedding", emb, (size_t)n * (size_t)emb_dim) ||
        write_f32(dir, "batch_logits", cls, (size_t)n * (size_t)cls_dim) ||
        write_f32(dir, "single_embedding", one_emb, (size_t)n * (size_t)emb_dim) ||
        write_f32(dir, "single_logits", one_cls, (size_t)n * (size_t)cls_dim))
        goto done;
    printf("{\"images\":%d,\"crop\":%u,\"embedding_dim\":%ld,\"logits_dim\":%ld,\"embedding\":", n, io.crop,
           emb_dim, cls_dim);
    print_json_string(emb_name);
    fputs(",\"logits\":", stdout);
    print_json_string(cls_name);
    fputs("}\n", stdout);
    rc = 0;
done:
    free(in);
    free(emb);
    free(cls);
    free(one_emb);
    free(one_cls);
    embed_model_free(m);
    return rc;
}
