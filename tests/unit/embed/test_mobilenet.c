/* The shared pretrained MobileNet v1 0.75 against the ONNX Runtime outputs recorded in
 * mobilenet_v1_0.75_224.testvec.json (input built from the formula in MODELS.md). */
#include "embed/model_internal.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HW 224
#define N_EMB 768
#define N_LOGITS 1000

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const char *models_dir(void)
{
    const char *d = getenv("MODELS_DIR");
    return d ? d : "../shared/models";
}

/* Parses the array after `"key":[` that follows the case object of sample n. */
static void read_vec(const char *json, int n, const char *key, float *dst, int count)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "{\"n\":%d,", n);
    const char *c = strstr(json, pat);
    cr_assert(c, "case %d missing", n);
    char kp[64];
    snprintf(kp, sizeof(kp), "\"%s\":[", key);
    const char *p = strstr(c, kp);
    cr_assert(p, "key %s missing", key);
    p += strlen(kp);
    for (int i = 0; i < count; i++) {
        char *end;
        dst[i] = strtof(p, &end);
        cr_assert(end != p, "bad number at %d", i);
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    cr_assert_eq(*p, ']');
}

static void fill_input(float *in, int batch)
{
    for (int n = 0; n < batch; n++)
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < HW; h++)
                for (int w = 0; w < HW; w++)
                    in[((n * 3 + c) * HW + h) * HW + w] =
                        (float)((c * 7 + h * 3 + w * 5 + n * 11) % 256) / 127.5f - 1;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static void check_model(int reference, int threads)
{
    char path[1024], err[256];
    size_t len;
    snprintf(path, sizeof(path), "%s/mobilenet_v1_0.75_224.testvec.json", models_dir());
    char *json = slurp(path, &len);
    snprintf(path, sizeof(path), "%s/mobilenet_v1_0.75_224.onnx", models_dir());
    embed_model_options opt = {.threads = threads, .reference = reference};
    embed_model *m = embed_model_load(path, &opt, err, sizeof(err));
    cr_assert(m, "load: %s", err);
    int c, h, w;
    cr_assert_eq(embed_model_input_shape(m, &c, &h, &w), 0);
    cr_assert(c == 3 && h == HW && w == HW);
    cr_assert_str_eq(embed_model_default_output(m), "embedding");
    cr_assert_eq(embed_model_output_dim(m, "embedding", err, sizeof(err)), N_EMB, "%s", err);
    cr_assert_eq(embed_model_output_dim(m, "logits", err, sizeof(err)), N_LOGITS);
    const char *pre = embed_model_metadata(m, "preprocessing");
    cr_assert(pre && strstr(pre, "127.5"), "preprocessing metadata: %s", pre ? pre : "(none)");
    cr_assert_null(embed_model_metadata(m, "no-such-key"));
    cr_assert_eq(embed_model_output_count(m), 3);
    cr_assert_str_eq(embed_model_output_name(m, 0), "embedding");
    cr_assert_str_eq(embed_model_output_name(m, 1), "logits");
    cr_assert_str_eq(embed_model_output_name(m, 2), "probabilities");
    cr_assert_null(embed_model_output_name(m, 3));
    cr_assert_null(embed_model_output_name(m, -1));
    cr_assert_str_eq(embed_model_tensor_op(m, "probabilities"), "Softmax");
    cr_assert_str_eq(embed_model_tensor_op(m, "logits"), "Flatten");
    cr_assert_null(embed_model_tensor_op(m, "input"));
    cr_assert_null(embed_model_tensor_op(m, "no-such-tensor"));

    float *in = malloc(sizeof(float) * 2 * 3 * HW * HW);
    float emb[2 * N_EMB], logits[2 * N_LOGITS], want[N_LOGITS], probs[2 * N_LOGITS];
    fill_input(in, 2);
    cr_assert_eq(embed_model_run(m, in, 2, NULL, emb, 2 * N_EMB, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(embed_model_run(m, in, 2, "logits", logits, 2 * N_LOGITS, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(embed_model_run(m, in, 2, "probabilities", probs, 2 * N_LOGITS, err, sizeof(err)), 0, "%s",
                 err);
    for (int n = 0; n < 2; n++) {
        read_vec(json, n, "embedding", want, N_EMB);
        for (int i = 0; i < N_EMB; i++)
            cr_assert(fabsf(emb[n * N_EMB + i] - want[i]) <= 1e-3f, "n %d embedding[%d] = %g, want %g", n, i,
                      emb[n * N_EMB + i], want[i]);
        read_vec(json, n, "logits", want, N_LOGITS);
        for (int i = 0; i < N_LOGITS; i++)
            cr_assert(fabsf(logits[n * N_LOGITS + i] - want[i]) <= 1e-3f, "n %d logits[%d] = %g, want %g", n,
                      i, logits[n * N_LOGITS + i], want[i]);
        cr_assert_eq(argmax(logits + n * N_LOGITS, N_LOGITS), 905);
        cr_assert_eq(argmax(probs + n * N_LOGITS, N_LOGITS), 905);
        double s = 0;
        for (int i = 0; i < N_LOGITS; i++)
            s += probs[n * N_LOGITS + i];
        cr_assert(fabs(s - 1.0) < 1e-4);
    }
    /* Batch 1 gives sample 0's answer: plans per batch size agree. */
    float one[N_EMB];
    cr_assert_eq(embed_model_run(m, in, 1, "embedding", one, N_EMB, err, sizeof(err)), 0, "%s", err);
    for (int i = 0; i < N_EMB; i++)
        cr_assert(fabsf(one[i] - emb[i]) <= 1e-4f);
    /* Too small an output buffer and unknown names are errors, not overflows. */
    cr_assert_eq(embed_model_run(m, in, 2, "embedding", emb, N_EMB, err, sizeof(err)), EMBED_ETOOLARGE);
    cr_assert_eq(embed_model_run(m, in, 1, "nope", emb, N_EMB, err, sizeof(err)), EMBED_EINVAL);
    cr_assert_eq(embed_model_run(m, in, 0, NULL, emb, N_EMB, err, sizeof(err)), EMBED_EINVAL);
    free(in);
    free(json);
    embed_model_free(m);
}

Test(mobilenet, fast_kernels_match_onnxruntime)
{
    check_model(0, 2);
}

Test(mobilenet, reference_kernels_match_onnxruntime)
{
    check_model(1, 1);
}

Test(mobilenet, l2_normalize)
{
    float v[3] = {3, 0, 4}, z[2] = {0, 0};
    embed_l2_normalize(v, 3);
    cr_assert_float_eq(v[0], 0.6f, 1e-6);
    cr_assert_float_eq(v[2], 0.8f, 1e-6);
    embed_l2_normalize(z, 2);
    cr_assert_eq(z[0], 0.0f);
}

Test(mobilenet, memory_plan_reuses_buffers)
{
    char path[1024], err[256];
    int rc;
    snprintf(path, sizeof(path), "%s/mobilenet_v1_0.75_224.onnx", models_dir());
    embed_model_options opt = {.threads = 1};
    embed_model *m = embed_model_load(path, &opt, err, sizeof(err));
    cr_assert(m, "%s", err);
    const eg_graph *g = embed_model_graph(m);
    plan_input pi = {g->inputs[0], 4, {4, 3, HW, HW}, NULL, ONNX_FLOAT};
    plan *p =
        plan_compile(g, embed_model_engine(m), &pi, 1, eg_graph_find(g, "logits"), 0, err, sizeof(err), &rc);
    cr_assert(p, "%s", err);
    size_t total = 0, largest = 0;
    for (int i = 0; i < p->n_tensors; i++) {
        const plan_tensor *t = &p->tensors[i];
        if (!t->cdata && t->input < 0 && t->alias < 0 && t->first >= 0) {
            total += t->bytes;
            largest = t->bytes > largest ? t->bytes : largest;
        }
    }
    /* A chain network needs about two live activations at a time, not all of them. */
    cr_assert(p->arena_bytes >= largest);
    cr_assert(p->arena_bytes * 3 < total, "arena %zu bytes for %zu bytes of activations", p->arena_bytes,
              total);
    plan_free(p);
    embed_model_free(m);
}
