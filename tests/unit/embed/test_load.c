/* Loader behaviour on the fuzz seed models: valid ones load and give the same answers on the
 * fast (oneDNN, fused) and reference paths; hostile ones fail with the right error. */
#include "embed/embed.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEEDS "fuzz/onnx_load/corpus/"

static embed_model *load(const char *name, int reference, char *err, size_t errlen)
{
    embed_model_options opt = {.threads = 2, .reference = reference};
    return embed_model_load(name, &opt, err, errlen);
}

static void fill(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* The fast path, with and without Winograd (options.direct_only), gives the reference path's
 * answers. */
static void same_answers(const char *file, const char *output, int batch, int in_size, int out_dim)
{
    char err[256];
    embed_model *ref = load(file, 1, err, sizeof(err));
    cr_assert(ref, "%s: %s", file, err);
    float *in = malloc(sizeof(float) * (size_t)(batch * in_size));
    float *a = malloc(sizeof(float) * (size_t)(batch * out_dim)),
          *b = malloc(sizeof(float) * (size_t)(batch * out_dim));
    fill(in, (size_t)(batch * in_size), 7);
    cr_assert_eq(embed_model_run(ref, in, batch, output, b, (size_t)(batch * out_dim), err, sizeof(err)), 0,
                 "%s", err);
    for (int direct = 0; direct <= 1; direct++) {
        embed_model_options opt = {.threads = 2, .direct_only = direct};
        embed_model *fast = embed_model_load(file, &opt, err, sizeof(err));
        cr_assert(fast, "%s: %s", file, err);
        cr_assert_eq(embed_model_output_dim(fast, output, err, sizeof(err)), out_dim, "%s", err);
        cr_assert_eq(embed_model_run(fast, in, batch, output, a, (size_t)(batch * out_dim), err, sizeof(err)),
                     0, "%s", err);
        for (int i = 0; i < batch * out_dim; i++)
            cr_assert(fabsf(a[i] - b[i]) <= 1e-4f * (1 + fabsf(b[i])),
                      "%s %s[%d]: fast (direct %d) %g ref %g", file, output, i, direct, a[i], b[i]);
        embed_model_free(fast);
    }
    free(in);
    free(a);
    free(b);
    embed_model_free(ref);
}

Test(load, small_cnn_fast_equals_reference)
{
    same_answers(SEEDS "cnn.onnx", "embedding", 3, 3 * 16 * 16, 4);
    same_answers(SEEDS "cnn.onnx", "probabilities", 2, 3 * 16 * 16, 5);
    /* Intermediate tensors can be asked for too, which turns off the fusions that hide them. */
    same_answers(SEEDS "cnn.onnx", "c2", 1, 3 * 16 * 16, 4 * 8 * 8);
    same_answers(SEEDS "cnn.onnx", "r2", 2, 3 * 16 * 16, 4 * 8 * 8);
    same_answers(SEEDS "cnn.onnx", "a", 2, 3 * 16 * 16, 4 * 8 * 8);
}

Test(load, shape_chain_is_folded)
{
    same_answers(SEEDS "shape_chain.onnx", "out", 2, 3 * 8 * 8, 2);
    same_answers(SEEDS "shape_chain.onnx", "out", 5, 3 * 8 * 8, 2);
}

Test(load, metadata_and_defaults)
{
    char err[256];
    embed_model *m = load(SEEDS "cnn.onnx", 0, err, sizeof(err));
    cr_assert(m, "%s", err);
    cr_assert_str_eq(embed_model_default_output(m), "embedding");
    cr_assert_str_eq(embed_model_metadata(m, "preprocessing"), "value = pixel/127.5 - 1");
    cr_assert_str_eq(embed_model_input_name(m), "x");
    /* The Conv output consumed only by BatchNormalization is folded away. */
    cr_assert_eq(embed_model_output_dim(m, "c1", err, sizeof(err)), EMBED_EINVAL);
    cr_assert(strstr(err, "folded"), "%s", err);
    embed_model_free(m);
    m = load(SEEDS "shape_chain.onnx", 0, err, sizeof(err));
    cr_assert(m, "%s", err);
    /* No "embedding" output: the input of the final MatMul. */
    cr_assert_str_eq(embed_model_default_output(m), "y");
    embed_model_free(m);
}

static void rejected(const char *file, int rc, const char *needle)
{
    char err[256] = "";
    embed_model_options opt = {.threads = 1};
    embed_model *m = embed_model_load(file, &opt, err, sizeof(err));
    cr_assert_null(m, "%s loaded", file);
    cr_assert(strstr(err, needle), "%s: error '%s' lacks '%s'", file, err, needle);
    (void)rc;
}

Test(load, hostile_files_are_rejected)
{
    rejected(SEEDS "unsupported_op.onnx", EMBED_EUNSUPPORTED, "op LSTM is not supported");
    rejected(SEEDS "external_data.onnx", EMBED_EUNSUPPORTED, "external data");
    rejected(SEEDS "huge_length.onnx", EMBED_EFORMAT, "past the end");
    rejected(SEEDS "dims_overflow.onnx", EMBED_ETOOLARGE, "too large");
    rejected(SEEDS "cnn_truncated_758.onnx", EMBED_EFORMAT, "onnx:");
    rejected(SEEDS "cnn_truncated_1.onnx", EMBED_EFORMAT, "onnx:");
    rejected("no/such/file.onnx", EMBED_EIO, "cannot open");
}

Test(load, context_reuse_and_threads)
{
    char err[256];
    embed_model *m = load(SEEDS "cnn.onnx", 0, err, sizeof(err));
    cr_assert(m, "%s", err);
    embed_ctx *c = embed_ctx_new(m, err, sizeof(err));
    cr_assert(c, "%s", err);
    float in[2 * 3 * 16 * 16], a[8], b[8];
    fill(in, sizeof(in) / sizeof(in[0]), 3);
    cr_assert_eq(embed_ctx_run(c, in, 2, NULL, a, 8, err, sizeof(err)), 0, "%s", err);
    for (int r = 0; r < 3; r++) {
        cr_assert_eq(embed_ctx_run(c, in, 2, NULL, b, 8, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
    }
    embed_ctx_free(c);
    embed_model_free(m);
}

typedef struct {
    embed_model *m;
    const float *in;
    const float *want1, *want3;
    int bad;
} conc_arg;

static void *conc_main(void *p)
{
    conc_arg *a = p;
    char err[256];
    float o1[4], o3[12];
    for (int r = 0; r < 20; r++) {
        if (embed_model_run(a->m, a->in, 1, NULL, o1, 4, err, sizeof(err)) ||
            embed_model_run(a->m, a->in, 3, NULL, o3, 12, err, sizeof(err)) ||
            memcmp(o1, a->want1, sizeof(o1)) || memcmp(o3, a->want3, sizeof(o3)))
            a->bad++;
    }
    return NULL;
}

Test(load, concurrent_runs_on_one_model)
{
    char err[256];
    embed_model *m = load(SEEDS "cnn.onnx", 0, err, sizeof(err));
    cr_assert(m, "%s", err);
    static float in[3 * 3 * 16 * 16];
    float want1[4], want3[12];
    fill(in, sizeof(in) / sizeof(in[0]), 9);
    cr_assert_eq(embed_model_run(m, in, 1, NULL, want1, 4, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(embed_model_run(m, in, 3, NULL, want3, 12, err, sizeof(err)), 0, "%s", err);
    /* Split batches and single samples agree with each other. */
    for (int i = 0; i < 4; i++)
        cr_assert(fabsf(want1[i] - want3[i]) <= 1e-5f);
    pthread_t t[4];
    conc_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (conc_arg){m, in, want1, want3, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, conc_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(args[i].bad, 0, "thread %d saw %d wrong results", i, args[i].bad);
    }
    embed_model_free(m);
}
