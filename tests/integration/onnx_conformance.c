/* ONNX backend node tests (Debian libonnx-testdata) on the embed engine.
 *
 *   onnx_conformance NODE_TEST_DIR
 *
 * Every test directory whose model uses only ops the engine implements is run: input 0 as the
 * run-time tensor, further inputs bound as constants (the engine wants constant weights and
 * shapes), every output compared with output_N.pb (|ours - want| <= 1e-4 + 1e-3 |want|), on
 * the fast (oneDNN, fused) path and on the reference kernels. A test the engine rejects as
 * unsupported (EMBED_EUNSUPPORTED at load or plan time: 1-D/3-D convolution, integer outputs,
 * training-mode outputs...) is counted as unsupported and listed, not failed. Exits 1 when any
 * test fails.
 */
#include "embed/model_internal.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IO 16

static const char *const ops[] = {
    "Conv",
    "BatchNormalization",
    "Relu",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "Concat",
    "Dropout",
    "Softmax",
    "Identity",
    "Constant",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Cast",
};

/* snprintf into a path buffer; a path that does not fit is reported as unreadable. */
#define PATHF(buf, ...) (snprintf(buf, sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf) ? (buf[0] = 0) : 0)

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int our_op(const char *type)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i], type) == 0)
            return 1;
    return 0;
}

/* 1 when every node of the model is one of our ops (the test is "for a supported op"). */
static int covered(const unsigned char *buf, size_t len)
{
    char err[256];
    int rc;
    onnx_model *om = onnx_model_parse(buf, len, err, sizeof(err), &rc);
    if (!om)
        return 0;
    int ok = om->n_nodes > 0;
    for (int i = 0; i < om->n_nodes && ok; i++)
        ok = our_op(om->nodes[i].op_type) &&
             (!om->nodes[i].domain[0] || !strcmp(om->nodes[i].domain, "ai.onnx"));
    onnx_model_free(om);
    return ok;
}

enum { R_PASS, R_FAIL, R_UNSUPPORTED };

static int load_tensor(onnx_arena *a, const char *path, onnx_tensor *t, char *err, size_t errlen)
{
    size_t len;
    unsigned char *buf = slurp(path, &len);
    if (!buf) {
        snprintf(err, errlen, "cannot read %s", path);
        return EMBED_EIO;
    }
    int rc = onnx_tensor_parse(a, buf, len, t, err, errlen);
    free(buf);
    return rc;
}

/* Runs one data set of one test on one path. */
static int run_set(embed_model *m, const char *set, int reference, char *why, size_t whylen)
{
    const eg_graph *g = embed_model_graph(m);
    onnx_arena *a = onnx_arena_new();
    plan_input pins[MAX_IO];
    char path[4096], err[512];
    int result = R_FAIL, n_in = g->n_inputs;
    const void *runtime[MAX_IO];
    exec_ctx ctx;
    int have_ctx = 0;
    if (!a || n_in > MAX_IO) {
        snprintf(why, whylen, "too many inputs");
        goto done;
    }
    int n_rt = 0;
    for (int i = 0; i < n_in; i++) {
        onnx_tensor t;
        PATHF(path, "%s/input_%d.pb", set, i);
        int rc = load_tensor(a, path, &t, err, sizeof(err));
        if (rc) {
            snprintf(why, whylen, "%s", err);
            result = rc == EMBED_EUNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
            goto done;
        }
        pins[i].tensor = g->inputs[i];
        pins[i].rank = t.rank;
        memcpy(pins[i].dims, t.dims, sizeof(pins[i].dims));
        pins[i].dtype = t.dtype;
        pins[i].cdata = i == 0 && t.dtype == ONNX_FLOAT ? NULL : t.data;
        if (!pins[i].cdata)
            runtime[n_rt++] = t.data;
    }
    if (exec_ctx_init(&ctx, embed_model_engine(m), 1, err, sizeof(err))) {
        snprintf(why, whylen, "%s", err);
        goto done;
    }
    have_ctx = 1;
    result = R_PASS;
    for (int o = 0; o < g->n_outputs && result == R_PASS; o++) {
        onnx_tensor want;
        PATHF(path, "%s/output_%d.pb", set, o);
        int rc = load_tensor(a, path, &want, err, sizeof(err));
        if (rc) {
            snprintf(why, whylen, "%s", err);
            result = rc == EMBED_EUNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
            break;
        }
        plan *p = plan_compile(g, embed_model_engine(m), pins, n_in, g->outputs[o], reference, err,
                               sizeof(err), &rc);
        if (!p) {
            snprintf(why, whylen, "%s", err);
            result = rc == EMBED_EUNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
            break;
        }
        size_t count = plan_output_count(p);
        float *out = malloc((count + 1) * sizeof(float));
        if (!out || want.dtype != ONNX_FLOAT || want.count != count) {
            snprintf(why, whylen, "output %d: %zu values, expected %zu", o, count, want.count);
            result = R_FAIL;
        } else if ((rc = exec_run(&ctx, p, runtime, out, count, err, sizeof(err)))) {
            snprintf(why, whylen, "run: %s", err);
            result = R_FAIL;
        } else {
            const float *w = want.data;
            for (size_t i = 0; i < count; i++) {
                int both_nan = isnan(out[i]) && isnan(w[i]);
                if (!both_nan && !(fabsf(out[i] - w[i]) <= 1e-4f + 1e-3f * fabsf(w[i]))) {
                    snprintf(why, whylen, "output %d[%zu] = %g, expected %g", o, i, out[i], w[i]);
                    result = R_FAIL;
                    break;
                }
            }
        }
        free(out);
        /* A context caches per-plan state keyed by the plan's address: drop it with the plan. */
        exec_ctx_release(&ctx);
        plan_free(p);
        if (exec_ctx_init(&ctx, embed_model_engine(m), 1, err, sizeof(err))) {
            have_ctx = 0;
            break;
        }
    }
done:
    if (have_ctx)
        exec_ctx_release(&ctx);
    onnx_arena_free(a);
    return result;
}

static int run_test(const char *dir, char *why, size_t whylen)
{
    char path[4096], err[512];
    PATHF(path, "%s/model.onnx", dir);
    size_t len;
    unsigned char *buf = slurp(path, &len);
    if (!buf) {
        snprintf(why, whylen, "cannot read model");
        return R_FAIL;
    }
    int result = R_PASS;
    for (int reference = 0; reference <= 1 && result == R_PASS; reference++) {
        embed_model_options opt = {.threads = 1, .reference = reference};
        int rc;
        embed_model *m = embed_model_load_rc(buf, len, &opt, err, sizeof(err), &rc);
        if (!m) {
            snprintf(why, whylen, "load: %s", err);
            result = rc == EMBED_EUNSUPPORTED ? R_UNSUPPORTED : R_FAIL;
            break;
        }
        for (int s = 0; result == R_PASS; s++) {
            PATHF(path, "%s/test_data_set_%d", dir, s);
            DIR *d = opendir(path);
            if (!d)
                break;
            closedir(d);
            char w[600];
            result = run_set(m, path, reference, w, sizeof(w));
            if (result != R_PASS)
                snprintf(why, whylen, "%s: %s", reference ? "reference" : "fast", w);
        }
        embed_model_free(m);
    }
    free(buf);
    return result;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s NODE_TEST_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 2;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nn = realloc(names, cap * sizeof(char *));
            if (!nn)
                return 2;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmp_str);
    int pass = 0, fail = 0, unsupported = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[4096], model[4200], why[1024] = "";
        PATHF(dir, "%s/%s", argv[1], names[i]);
        PATHF(model, "%s/model.onnx", dir);
        size_t len;
        unsigned char *buf = slurp(model, &len);
        int ours = buf && covered(buf, len);
        free(buf);
        if (!ours) {
            skipped++;
            continue;
        }
        int r = run_test(dir, why, sizeof(why));
        if (r == R_PASS) {
            pass++;
            printf("PASS %s\n", names[i]);
        } else if (r == R_UNSUPPORTED) {
            unsupported++;
            printf("UNSUPPORTED %s: %s\n", names[i], why);
        } else {
            fail++;
            printf("FAIL %s: %s\n", names[i], why);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    printf("onnx conformance: %d tests use only supported ops: %d passed, %d failed, %d unsupported "
           "(rejected at load/plan); %d tests of other ops not run\n",
           pass + fail + unsupported, pass, fail, unsupported, skipped);
    return fail ? 1 : 0;
}
