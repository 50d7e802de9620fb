/* Each op on odd shapes, groups, padding and strides: the fast path (oneDNN, fused) and the
 * reference kernels against naive loops written here, independently of the engine. */
#include "embed/model_internal.h"
#include "onnx_build.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

static size_t count_of(const int64_t *d, int r)
{
    size_t n = 1;
    for (int i = 0; i < r; i++)
        n *= (size_t)d[i];
    return n;
}

/* Loads the model bytes and runs `output` on input x (shape xd/xr) on one path: flags are
 * PLAN_* (0 = the fast path with Winograd where oneDNN offers it). */
static float *run_path(const uint8_t *model, size_t len, const float *x, const int64_t *xd, int xr,
                       const char *output, int flags, size_t *n_out)
{
    char err[512];
    int rc;
    embed_model_options opt = {.threads = 2, .reference = flags & PLAN_REFERENCE};
    embed_model *m = embed_model_load_rc(model, len, &opt, err, sizeof(err), &rc);
    cr_assert(m, "load: %s", err);
    const eg_graph *g = embed_model_graph(m);
    plan_input pi = {g->inputs[0], xr, {0}, NULL, ONNX_FLOAT};
    memcpy(pi.dims, xd, (size_t)xr * sizeof(int64_t));
    int out = eg_graph_find(g, output);
    cr_assert(out >= 0);
    plan *p = plan_compile(g, embed_model_engine(m), &pi, 1, out, flags, err, sizeof(err), &rc);
    cr_assert(p, "plan: %s", err);
    *n_out = plan_output_count(p);
    float *y = malloc((*n_out + 1) * sizeof(float));
    exec_ctx c;
    cr_assert_eq(exec_ctx_init(&c, embed_model_engine(m), 2, err, sizeof(err)), 0);
    const void *ins[1] = {x};
    cr_assert_eq(exec_run(&c, p, ins, y, *n_out, err, sizeof(err)), 0, "run: %s", err);
    /* Run twice: a reused context (arena, memory objects) gives the same answer. */
    float *y2 = malloc((*n_out + 1) * sizeof(float));
    cr_assert_eq(exec_run(&c, p, ins, y2, *n_out, err, sizeof(err)), 0);
    cr_assert_eq(memcmp(y, y2, *n_out * sizeof(float)), 0);
    free(y2);
    exec_ctx_release(&c);
    plan_free(p);
    embed_model_free(m);
    return y;
}

/* The fast path, the fast path without Winograd and the reference path against the expected
 * values. */
static void check_paths(const uint8_t *model, size_t len, const float *x, const int64_t *xd, int xr,
                        const char *output, const float *want, size_t n_want, const char *what)
{
    static const int paths[] = {0, PLAN_NO_WINOGRAD, PLAN_REFERENCE};
    static const char *const names[] = {"fast", "direct", "reference"};
    for (int k = 0; k < 3; k++) {
        size_t n;
        float *y = run_path(model, len, x, xd, xr, output, paths[k], &n);
        cr_assert_eq(n, n_want, "%s: %zu outputs, want %zu", what, n, n_want);
        for (size_t i = 0; i < n; i++)
            cr_assert(fabsf(y[i] - want[i]) <= 1e-4f + 1e-4f * fabsf(want[i]), "%s (%s)[%zu]: %g, want %g",
                      what, names[k], i, y[i], want[i]);
        free(y);
    }
}

/* ---- Conv ---- */

typedef struct {
    int n, c, h, w, oc, g, kh, kw, sh, sw, dh, dw;
    int pads[4];
    const char *auto_pad;
    int bias;
} conv_case;

static void same_pads(int in, int k, int s, int d, int upper, int *b, int *e, int *out)
{
    int ek = (k - 1) * d + 1;
    *out = (in + s - 1) / s;
    int total = (*out - 1) * s + ek - in;
    if (total < 0)
        total = 0;
    *b = upper ? total / 2 : total - total / 2;
    *e = total - *b;
}

static void naive_conv(const conv_case *cc, const float *x, const float *w, const float *b, float *y,
                       int *oh_out, int *ow_out)
{
    int pt = cc->pads[0], pl = cc->pads[1], pb = cc->pads[2], pr = cc->pads[3], oh, ow;
    if (cc->auto_pad && strncmp(cc->auto_pad, "SAME", 4) == 0) {
        int up = strcmp(cc->auto_pad, "SAME_UPPER") == 0;
        same_pads(cc->h, cc->kh, cc->sh, cc->dh, up, &pt, &pb, &oh);
        same_pads(cc->w, cc->kw, cc->sw, cc->dw, up, &pl, &pr, &ow);
    } else {
        if (cc->auto_pad && strcmp(cc->auto_pad, "VALID") == 0)
            pt = pl = pb = pr = 0;
        oh = (cc->h + pt + pb - ((cc->kh - 1) * cc->dh + 1)) / cc->sh + 1;
        ow = (cc->w + pl + pr - ((cc->kw - 1) * cc->dw + 1)) / cc->sw + 1;
    }
    int icg = cc->c / cc->g, ocg = cc->oc / cc->g;
    for (int n = 0; n < cc->n; n++)
        for (int o = 0; o < cc->oc; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double s = cc->bias ? b[o] : 0;
                    int grp = o / ocg;
                    for (int ic = 0; ic < icg; ic++)
                        for (int ki = 0; ki < cc->kh; ki++)
                            for (int kj = 0; kj < cc->kw; kj++) {
                                int yy = i * cc->sh - pt + ki * cc->dh, xx = j * cc->sw - pl + kj * cc->dw;
                                if (yy < 0 || yy >= cc->h || xx < 0 || xx >= cc->w)
                                    continue;
                                s += (double)x[((n * cc->c + grp * icg + ic) * cc->h + yy) * cc->w + xx] *
                                     w[((o * icg + ic) * cc->kh + ki) * cc->kw + kj];
                            }
                    y[((n * cc->oc + o) * oh + i) * ow + j] = (float)s;
                }
    *oh_out = oh;
    *ow_out = ow;
}

static void conv_check(const conv_case *cc, int act, const char *what)
{
    ob_graph gr = {0};
    int64_t xd[4] = {cc->n, cc->c, cc->h, cc->w}, wd[4] = {cc->oc, cc->c / cc->g, cc->kh, cc->kw},
            bd[1] = {cc->oc};
    size_t nx = count_of(xd, 4), nw = count_of(wd, 4);
    float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float)), *b = malloc((size_t)cc->oc * 4);
    fill(x, nx, 1);
    fill(w, nw, 2);
    fill(b, (size_t)cc->oc, 3);
    ob_init(&gr, "w", 1, wd, 4, w);
    if (cc->bias)
        ob_init(&gr, "b", 1, bd, 1, b);
    const char *ins[3] = {"x", "w", "b"};
    ob_buf node = ob_node("Conv", ins, cc->bias ? 3 : 2, "y");
    int64_t k[2] = {cc->kh, cc->kw}, s[2] = {cc->sh, cc->sw}, d[2] = {cc->dh, cc->dw};
    int64_t p[4] = {cc->pads[0], cc->pads[1], cc->pads[2], cc->pads[3]};
    ob_attr_ints(&node, "kernel_shape", k, 2);
    ob_attr_ints(&node, "strides", s, 2);
    ob_attr_ints(&node, "dilations", d, 2);
    ob_attr_int(&node, "group", cc->g);
    if (cc->auto_pad)
        ob_attr_str(&node, "auto_pad", cc->auto_pad);
    else
        ob_attr_ints(&node, "pads", p, 4);
    ob_node_end(&gr, &node);
    const char *out = "y";
    if (act == 1) {
        const char *ri[1] = {"y"};
        ob_buf r = ob_node("Relu", ri, 1, "z");
        ob_node_end(&gr, &r);
        out = "z";
    } else if (act == 2) {
        const char *ri[1] = {"y"};
        ob_buf r = ob_node("Clip", ri, 1, "z");
        ob_attr_float(&r, "min", 0.0f);
        ob_attr_float(&r, "max", 0.5f);
        ob_node_end(&gr, &r);
        out = "z";
    }
    int64_t in_dims[4] = {-1, cc->c, cc->h, cc->w};
    ob_value(&gr, 11, "x", in_dims, 4);
    ob_value(&gr, 12, out, in_dims, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, act == 2 ? 10 : 13, &len);
    float *want = malloc((size_t)cc->n * (size_t)cc->oc * (size_t)(cc->h * cc->sh + 8) *
                         (size_t)(cc->w * cc->sw + 8) * 4);
    int oh, ow;
    naive_conv(cc, x, w, b, want, &oh, &ow);
    size_t ny = (size_t)cc->n * (size_t)cc->oc * (size_t)oh * (size_t)ow;
    for (size_t i = 0; act && i < ny; i++)
        want[i] = want[i] < 0 ? 0 : act == 2 && want[i] > 0.5f ? 0.5f : want[i];
    check_paths(model, len, x, xd, 4, out, want, ny, what);
    free(model);
    free(x);
    free(w);
    free(b);
    free(want);
}

Test(ops, conv_shapes_groups_padding_strides)
{
    static const conv_case cases[] = {
        /* n  c  h   w  oc g kh kw sh sw dh dw  pads          auto_pad      bias */
        {1, 3, 9, 7, 5, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1},
        {2, 3, 11, 10, 4, 1, 3, 3, 2, 2, 1, 1, {0, 0, 1, 1}, NULL, 0},  /* TF "same" stride 2 */
        {1, 8, 7, 9, 8, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1},    /* depthwise */
        {2, 6, 8, 8, 6, 6, 3, 3, 2, 2, 1, 1, {0, 0, 1, 1}, NULL, 0},    /* depthwise, stride 2 */
        {1, 6, 9, 9, 4, 2, 3, 3, 1, 1, 1, 1, {0, 1, 2, 0}, NULL, 1},    /* grouped, odd pads */
        {1, 4, 12, 11, 5, 1, 3, 2, 3, 2, 2, 2, {2, 1, 2, 1}, NULL, 1},  /* dilation, strides */
        {3, 5, 6, 6, 7, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1},    /* pointwise */
        {1, 3, 13, 13, 16, 1, 7, 7, 2, 2, 1, 1, {3, 3, 3, 3}, NULL, 0}, /* ResNet stem */
        {1, 4, 10, 7, 3, 1, 3, 3, 2, 2, 1, 1, {0}, "SAME_UPPER", 1},
        {1, 4, 10, 7, 3, 1, 4, 4, 2, 2, 1, 1, {0}, "SAME_LOWER", 1},
        {2, 4, 9, 8, 3, 1, 3, 3, 2, 1, 1, 1, {0}, "VALID", 0},
        {1, 16, 5, 5, 32, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1},
        {2, 64, 13, 11, 64, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1}, /* ResNet 3x3: Winograd */
    };
    char what[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (int act = 0; act <= 2; act++) {
            snprintf(what, sizeof(what), "conv case %zu act %d", i, act);
            conv_check(&cases[i], act, what);
        }
}

/* ---- pooling ---- */

typedef struct {
    const char *op;
    int n, c, h, w, kh, kw, sh, sw, dh, dw;
    int pads[4];
    int ceil, include_pad;
} pool_case;

static void pool_check(const pool_case *pc, const char *what)
{
    ob_graph gr = {0};
    int64_t xd[4] = {pc->n, pc->c, pc->h, pc->w};
    size_t nx = count_of(xd, 4);
    float *x = malloc(nx * sizeof(float));
    fill(x, nx, 5);
    const char *ins[1] = {"x"};
    ob_buf node = ob_node(pc->op, ins, 1, "y");
    int is_max = strcmp(pc->op, "MaxPool") == 0;
    int64_t k[2] = {pc->kh, pc->kw}, s[2] = {pc->sh, pc->sw}, d[2] = {pc->dh, pc->dw};
    int64_t p[4] = {pc->pads[0], pc->pads[1], pc->pads[2], pc->pads[3]};
    ob_attr_ints(&node, "kernel_shape", k, 2);
    ob_attr_ints(&node, "strides", s, 2);
    ob_attr_ints(&node, "pads", p, 4);
    if (is_max)
        ob_attr_ints(&node, "dilations", d, 2);
    else
        ob_attr_int(&node, "count_include_pad", pc->include_pad);
    ob_attr_int(&node, "ceil_mode", pc->ceil);
    ob_node_end(&gr, &node);
    int64_t in_dims[4] = {-1, pc->c, pc->h, pc->w};
    ob_value(&gr, 11, "x", in_dims, 4);
    ob_value(&gr, 12, "y", in_dims, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, 12, &len);
    int ek_h = (pc->kh - 1) * pc->dh + 1, ek_w = (pc->kw - 1) * pc->dw + 1;
    int span_h = pc->h + pc->pads[0] + pc->pads[2] - ek_h, span_w = pc->w + pc->pads[1] + pc->pads[3] - ek_w;
    int oh = (pc->ceil ? (span_h + pc->sh - 1) / pc->sh : span_h / pc->sh) + 1;
    int ow = (pc->ceil ? (span_w + pc->sw - 1) / pc->sw : span_w / pc->sw) + 1;
    if (pc->ceil && (oh - 1) * pc->sh >= pc->h + pc->pads[0])
        oh--;
    if (pc->ceil && (ow - 1) * pc->sw >= pc->w + pc->pads[1])
        ow--;
    size_t ny = (size_t)(pc->n * pc->c * oh * ow);
    float *want = malloc(ny * sizeof(float));
    for (int nc = 0; nc < pc->n * pc->c; nc++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                double acc = is_max ? -1e30 : 0;
                int cnt = 0, y0 = i * pc->sh - pc->pads[0], x0 = j * pc->sw - pc->pads[1];
                for (int a = 0; a < pc->kh; a++)
                    for (int b = 0; b < pc->kw; b++) {
                        int yy = y0 + a * pc->dh, xx = x0 + b * pc->dw;
                        if (yy < 0 || yy >= pc->h || xx < 0 || xx >= pc->w)
                            continue;
                        float v = x[(nc * pc->h + yy) * pc->w + xx];
                        acc = is_max ? (v > acc ? v : acc) : acc + v;
                        cnt++;
                    }
                if (!is_max && pc->include_pad) {
                    int ye = y0 + pc->kh, xe = x0 + pc->kw;
                    ye = ye > pc->h + pc->pads[2] ? pc->h + pc->pads[2] : ye;
                    xe = xe > pc->w + pc->pads[3] ? pc->w + pc->pads[3] : xe;
                    cnt = (ye - y0) * (xe - x0);
                }
                want[(nc * oh + i) * ow + j] = (float)(is_max ? acc : acc / cnt);
            }
    check_paths(model, len, x, xd, 4, "y", want, ny, what);
    free(model);
    free(x);
    free(want);
}

Test(ops, pooling)
{
    static const pool_case cases[] = {
        {"MaxPool", 2, 3, 9, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 0},   /* ResNet stem pool, odd size */
        {"MaxPool", 1, 5, 8, 7, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 0},   /* ceil mode */
        {"MaxPool", 1, 4, 10, 10, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, 0, 0}, /* dilation */
        {"MaxPool", 1, 3, 7, 6, 3, 2, 2, 3, 1, 1, {0, 1, 1, 0}, 0, 0},   /* asymmetric pads */
        {"AveragePool", 2, 3, 9, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 0},
        {"AveragePool", 2, 3, 9, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 1}, /* count_include_pad */
        {"AveragePool", 1, 4, 8, 7, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 0}, /* ceil, exclude pad */
        {"AveragePool", 1, 4, 8, 7, 3, 3, 2, 2, 1, 1, {1, 0, 1, 0}, 1, 1}, /* ceil, include pad */
    };
    char what[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(what, sizeof(what), "pool case %zu (%s)", i, cases[i].op);
        pool_check(&cases[i], what);
    }
}

/* ---- Gemm / MatMul ---- */

static void gemm_check(int m, int k, int n, int trans_a, int trans_b, float alpha, float beta, int c_kind)
{
    ob_graph gr = {0};
    int64_t ad[2] = {trans_a ? k : m, trans_a ? m : k}, bd[2] = {trans_b ? n : k, trans_b ? k : n};
    int64_t cd[2] = {c_kind == 2 ? m : 1, n};
    float *a = malloc((size_t)(m * k) * 4), *b = malloc((size_t)(k * n) * 4),
          *c = malloc((size_t)(m * n) * 4);
    fill(a, (size_t)(m * k), 7);
    fill(b, (size_t)(k * n), 8);
    fill(c, (size_t)(m * n), 9);
    ob_init(&gr, "b", 1, bd, 2, b);
    /* c_kind: 0 none, 1 a row [n] broadcast over rows, 2 a full [m, n] matrix */
    if (c_kind == 1)
        ob_init(&gr, "c", 1, cd + 1, 1, c);
    else if (c_kind == 2)
        ob_init(&gr, "c", 1, cd, 2, c);
    const char *ins[3] = {"a", "b", "c"};
    ob_buf node = ob_node("Gemm", ins, c_kind ? 3 : 2, "y");
    ob_attr_int(&node, "transA", trans_a);
    ob_attr_int(&node, "transB", trans_b);
    ob_attr_float(&node, "alpha", alpha);
    ob_attr_float(&node, "beta", beta);
    ob_node_end(&gr, &node);
    ob_value(&gr, 11, "a", ad, 2);
    ob_value(&gr, 12, "y", ad, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, 13, &len);
    float *want = malloc((size_t)(m * n) * 4);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int q = 0; q < k; q++)
                s +=
                    (double)(trans_a ? a[q * m + i] : a[i * k + q]) * (trans_b ? b[j * k + q] : b[q * n + j]);
            s *= alpha;
            if (c_kind)
                s += beta * c[(c_kind == 2 ? i * n : 0) + j];
            want[i * n + j] = (float)s;
        }
    char what[96];
    snprintf(what, sizeof(what), "gemm %dx%dx%d tA %d tB %d alpha %g beta %g C %d", m, k, n, trans_a, trans_b,
             (double)alpha, (double)beta, c_kind);
    check_paths(model, len, a, ad, 2, "y", want, (size_t)(m * n), what);
    free(model);
    free(a);
    free(b);
    free(c);
    free(want);
}

Test(ops, gemm_and_matmul)
{
    gemm_check(3, 17, 5, 0, 1, 1.0f, 1.0f, 1); /* the classifier shape: inner product */
    gemm_check(2, 8, 6, 0, 0, 1.0f, 1.0f, 0);
    gemm_check(4, 5, 3, 1, 0, 0.5f, 2.0f, 2);
    gemm_check(1, 9, 7, 1, 1, 2.0f, 0.25f, 1);
    gemm_check(5, 3, 4, 0, 1, 1.0f, 0.5f, 2);

    /* MatMul [2,3,4] x [4,5] (batched, constant B) */
    ob_graph gr = {0};
    int64_t ad[3] = {2, 3, 4}, bd[2] = {4, 5};
    float a[24], b[20], want[30];
    fill(a, 24, 11);
    fill(b, 20, 12);
    ob_init(&gr, "b", 1, bd, 2, b);
    const char *ins[2] = {"a", "b"};
    ob_buf node = ob_node("MatMul", ins, 2, "y");
    ob_node_end(&gr, &node);
    ob_value(&gr, 11, "a", ad, 3);
    ob_value(&gr, 12, "y", ad, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, 13, &len);
    for (int z = 0; z < 2; z++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) {
                double s = 0;
                for (int q = 0; q < 4; q++)
                    s += (double)a[(z * 3 + i) * 4 + q] * b[q * 5 + j];
                want[(z * 3 + i) * 5 + j] = (float)s;
            }
    check_paths(model, len, a, ad, 3, "y", want, 30, "matmul 3-D");
    free(model);
}

/* ---- elementwise, residuals, softmax, concat, reshape ---- */

Test(ops, broadcast_add_mul_and_residual_fusion)
{
    /* y = Relu(Conv1x1(x) + x) * s[c] + t: Conv+Add+Relu fuses on the fast path; Mul and Add by
     * per-channel constants broadcast. */
    ob_graph gr = {0};
    int64_t xd[4] = {2, 4, 5, 3}, wd[4] = {4, 4, 1, 1}, sd[3] = {4, 1, 1};
    float x[120], w[16], s[4], t[4];
    fill(x, 120, 21);
    fill(w, 16, 22);
    fill(s, 4, 23);
    fill(t, 4, 24);
    ob_init(&gr, "w", 1, wd, 4, w);
    ob_init(&gr, "s", 1, sd, 3, s);
    ob_init(&gr, "t", 1, sd, 3, t);
    const char *c_in[2] = {"x", "w"}, *a_in[2] = {"c", "x"}, *r_in[1] = {"a"}, *m_in[2] = {"r", "s"},
               *p_in[2] = {"m", "t"};
    ob_buf n1 = ob_node("Conv", c_in, 2, "c");
    ob_node_end(&gr, &n1);
    ob_buf n2 = ob_node("Add", a_in, 2, "a");
    ob_node_end(&gr, &n2);
    ob_buf n3 = ob_node("Relu", r_in, 1, "r");
    ob_node_end(&gr, &n3);
    ob_buf n4 = ob_node("Mul", m_in, 2, "m");
    ob_node_end(&gr, &n4);
    ob_buf n5 = ob_node("Add", p_in, 2, "y");
    ob_node_end(&gr, &n5);
    int64_t in_dims[4] = {-1, 4, 5, 3};
    ob_value(&gr, 11, "x", in_dims, 4);
    ob_value(&gr, 12, "y", in_dims, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, 13, &len);
    float want[120], rel[120];
    for (int n = 0; n < 2; n++)
        for (int o = 0; o < 4; o++)
            for (int p = 0; p < 15; p++) {
                double acc = 0;
                for (int i = 0; i < 4; i++)
                    acc += (double)w[o * 4 + i] * x[(n * 4 + i) * 15 + p];
                float a = (float)acc + x[(n * 4 + o) * 15 + p];
                rel[(n * 4 + o) * 15 + p] = a > 0 ? a : 0;
                want[(n * 4 + o) * 15 + p] = rel[(n * 4 + o) * 15 + p] * s[o] + t[o];
            }
    check_paths(model, len, x, xd, 4, "y", want, 120, "residual+broadcast");
    check_paths(model, len, x, xd, 4, "r", rel, 120, "residual output");
    free(model);
}

Test(ops, softmax_concat_flatten_reshape)
{
    /* x [2,3,2,2] -> Concat(x, Relu(x), axis 1) [2,6,2,2] -> Flatten(axis 2) [12, 4]... then
     * Reshape to [2, 24] via a constant shape and Softmax over axis 1. */
    ob_graph gr = {0};
    int64_t xd[4] = {2, 3, 2, 2}, shp[1] = {2}, shape_v[2] = {2, -1};
    float x[24];
    fill(x, 24, 31);
    ob_init(&gr, "shape", 7, shp, 1, shape_v);
    const char *r_in[1] = {"x"}, *c_in[2] = {"x", "r"}, *f_in[1] = {"c"}, *rs_in[2] = {"f", "shape"},
               *s_in[1] = {"z"};
    ob_buf n1 = ob_node("Relu", r_in, 1, "r");
    ob_node_end(&gr, &n1);
    ob_buf n2 = ob_node("Concat", c_in, 2, "c");
    ob_attr_int(&n2, "axis", 1);
    ob_node_end(&gr, &n2);
    ob_buf n3 = ob_node("Flatten", f_in, 1, "f");
    ob_attr_int(&n3, "axis", 2);
    ob_node_end(&gr, &n3);
    ob_buf n4 = ob_node("Reshape", rs_in, 2, "z");
    ob_node_end(&gr, &n4);
    ob_buf n5 = ob_node("Softmax", s_in, 1, "y");
    ob_attr_int(&n5, "axis", 1);
    ob_node_end(&gr, &n5);
    int64_t in_dims[4] = {2, 3, 2, 2};
    ob_value(&gr, 11, "x", in_dims, 4);
    ob_value(&gr, 12, "y", in_dims, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, 13, &len);
    float cat[48], want[48];
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 6; c++)
            for (int p = 0; p < 4; p++) {
                float v = x[(n * 3 + c % 3) * 4 + p];
                cat[(n * 6 + c) * 4 + p] = c < 3 ? v : (v > 0 ? v : 0);
            }
    for (int n = 0; n < 2; n++) {
        double sum = 0, mx = -1e30;
        for (int i = 0; i < 24; i++)
            mx = cat[n * 24 + i] > mx ? cat[n * 24 + i] : mx;
        for (int i = 0; i < 24; i++)
            sum += exp(cat[n * 24 + i] - mx);
        for (int i = 0; i < 24; i++)
            want[n * 24 + i] = (float)(exp(cat[n * 24 + i] - mx) / sum);
    }
    check_paths(model, len, x, xd, 4, "y", want, 48, "softmax(reshape(flatten(concat)))");
    check_paths(model, len, x, xd, 4, "c", cat, 48, "concat");
    free(model);
}

Test(ops, standalone_batchnorm_and_global_pools)
{
    /* BatchNormalization after Relu cannot fold into a Conv: it runs on its own. */
    ob_graph gr = {0};
    int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3};
    float x[120], g[3] = {1.5f, 0.5f, -1.0f}, be[3] = {0.1f, -0.2f, 0.3f}, mu[3] = {0.2f, 0.0f, -0.1f},
                  var[3] = {0.5f, 2.0f, 1.0f};
    fill(x, 120, 41);
    ob_init(&gr, "g", 1, cd, 1, g);
    ob_init(&gr, "be", 1, cd, 1, be);
    ob_init(&gr, "mu", 1, cd, 1, mu);
    ob_init(&gr, "var", 1, cd, 1, var);
    const char *r_in[1] = {"x"}, *b_in[5] = {"r", "g", "be", "mu", "var"}, *p_in[1] = {"bn"},
               *q_in[1] = {"bn"};
    ob_buf n1 = ob_node("Relu", r_in, 1, "r");
    ob_node_end(&gr, &n1);
    ob_buf n2 = ob_node("BatchNormalization", b_in, 5, "bn");
    ob_attr_float(&n2, "epsilon", 1e-3f);
    ob_node_end(&gr, &n2);
    ob_buf n3 = ob_node("GlobalAveragePool", p_in, 1, "gap");
    ob_node_end(&gr, &n3);
    ob_buf n4 = ob_node("GlobalMaxPool", q_in, 1, "gmp");
    ob_node_end(&gr, &n4);
    int64_t in_dims[4] = {-1, 3, 4, 5};
    ob_value(&gr, 11, "x", in_dims, 4);
    ob_value(&gr, 12, "gap", in_dims, 0);
    ob_value(&gr, 12, "gmp", in_dims, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, 13, &len);
    float bn[120], gap[6], gmp[6];
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++) {
            double s = 0, mx = -1e30;
            for (int p = 0; p < 20; p++) {
                float r = x[(n * 3 + c) * 20 + p];
                r = r > 0 ? r : 0;
                float v = (float)((r - mu[c]) / sqrt(var[c] + 1e-3) * g[c] + be[c]);
                bn[(n * 3 + c) * 20 + p] = v;
                s += v;
                mx = v > mx ? v : mx;
            }
            gap[n * 3 + c] = (float)(s / 20);
            gmp[n * 3 + c] = (float)mx;
        }
    check_paths(model, len, x, xd, 4, "bn", bn, 120, "batchnorm");
    check_paths(model, len, x, xd, 4, "gap", gap, 6, "global average pool");
    check_paths(model, len, x, xd, 4, "gmp", gmp, 6, "global max pool");
    free(model);
}

Test(ops, unsupported_attribute_is_a_load_error)
{
    ob_graph gr = {0};
    const char *ins[1] = {"x"};
    ob_buf node = ob_node("Relu", ins, 1, "y");
    ob_attr_int(&node, "frobnicate", 1);
    ob_node_end(&gr, &node);
    int64_t d[4] = {1, 1, 2, 2};
    ob_value(&gr, 11, "x", d, 4);
    ob_value(&gr, 12, "y", d, 0);
    size_t len;
    uint8_t *model = ob_model(&gr, 13, &len);
    char err[256];
    int rc;
    embed_model *m = embed_model_load_rc(model, len, NULL, err, sizeof(err), &rc);
    cr_assert_null(m);
    cr_assert_eq(rc, EMBED_EUNSUPPORTED);
    cr_assert(strstr(err, "Relu node 'y'") && strstr(err, "frobnicate"), "%s", err);
    free(model);
}
