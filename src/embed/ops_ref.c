/* Shape inference and the plain C reference kernel of every op. These loops define what each
 * op means here; the fast kernels (plan.c) are tested against them. */
#include "embed/graph.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

size_t eg_count(int rank, const int64_t *dims)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    return n;
}

static size_t esize(int dtype)
{
    return dtype == ONNX_INT64 ? 8 : 4;
}

void eg_spatial(const eg_attrs *a, int ih, int iw, int *oh, int *ow, int pads[4])
{
    int in[2] = {ih, iw}, out[2];
    for (int d = 0; d < 2; d++) {
        int ek = (a->kernel[d] - 1) * a->dilation[d] + 1, s = a->stride[d];
        if (a->auto_pad == PAD_SAME_UPPER || a->auto_pad == PAD_SAME_LOWER) {
            out[d] = (in[d] + s - 1) / s;
            int total = (out[d] - 1) * s + ek - in[d];
            if (total < 0)
                total = 0;
            int small = total / 2, big = total - small;
            pads[d] = a->auto_pad == PAD_SAME_UPPER ? small : big;
            pads[d + 2] = total - pads[d];
            continue;
        }
        if (a->auto_pad == PAD_VALID) {
            pads[d] = pads[d + 2] = 0;
        } else {
            pads[d] = a->pads[d];
            pads[d + 2] = a->pads[d + 2];
        }
        int span = in[d] + pads[d] + pads[d + 2] - ek;
        if (span < 0) {
            out[d] = 0;
            continue;
        }
        if (a->ceil_mode) {
            out[d] = (span + s - 1) / s + 1;
            /* A window may not start inside the end padding (ONNX and PyTorch agree). */
            if ((out[d] - 1) * s >= in[d] + pads[d])
                out[d]--;
        } else {
            out[d] = span / s + 1;
        }
    }
    *oh = out[0];
    *ow = out[1];
}

static int norm_axis(int axis, int rank)
{
    return axis < 0 ? axis + rank : axis;
}

/* Numpy broadcasting of two shapes. */
static int broadcast(const eg_view *a, const eg_view *b, eg_view *o)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    o->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return -1;
        o->dims[i] = da == 1 ? db : da;
    }
    return 0;
}

static int need_float(const eg_node *n, const eg_view *v, char *err, size_t errlen)
{
    if (v->dtype != ONNX_FLOAT)
        return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': integer input is not supported",
                    n->op_type, n->name);
    return 0;
}

static int need_const_ints(const eg_node *n, const eg_view *v, char *err, size_t errlen)
{
    if (!v->data || v->dtype != ONNX_INT64 || v->rank > 1)
        return errf(err, errlen, EMBED_EUNSUPPORTED,
                    "%s node '%s': shape/axes input must be a constant 1-D int64", n->op_type, n->name);
    return 0;
}

int eg_infer(const eg_graph *g, const eg_node *n, const eg_view *ins, eg_view *outs, char *err, size_t errlen)
{
    (void)g;
    const eg_attrs *a = &n->a;
    eg_view *o = &outs[0];
    const eg_view *x = &ins[0];
    o->dtype = ONNX_FLOAT;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] >= 0 && ins[i].rank < 0)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': input %d has an unknown shape",
                        n->op_type, n->name, i);
    switch (n->op) {
    case OP_CONV: {
        const eg_view *w = &ins[1];
        if (need_float(n, x, err, errlen) || need_float(n, w, err, errlen))
            return EMBED_EUNSUPPORTED;
        if (x->rank != 4 || w->rank != 4)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "Conv node '%s': only 2-D convolution is supported",
                        n->name);
        if (!w->data)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "Conv node '%s': weights must be constant", n->name);
        int64_t c = x->dims[1], oc = w->dims[0];
        if (c % a->group || oc % a->group || w->dims[1] != c / a->group)
            return errf(err, errlen, EMBED_EFORMAT,
                        "Conv node '%s': weight shape does not match input channels", n->name);
        if ((a->kernel[0] && a->kernel[0] != w->dims[2]) || (a->kernel[1] && a->kernel[1] != w->dims[3]))
            return errf(err, errlen, EMBED_EFORMAT, "Conv node '%s': kernel_shape differs from weights",
                        n->name);
        if (n->n_in > 2 && n->in[2] >= 0 && (ins[2].rank != 1 || ins[2].dims[0] != oc || !ins[2].data))
            return errf(err, errlen, EMBED_EUNSUPPORTED,
                        "Conv node '%s': bias must be a constant of %lld values", n->name, (long long)oc);
        eg_attrs b = *a;
        b.kernel[0] = (int)w->dims[2];
        b.kernel[1] = (int)w->dims[3];
        b.ceil_mode = 0;
        int oh, ow, pads[4];
        eg_spatial(&b, (int)x->dims[2], (int)x->dims[3], &oh, &ow, pads);
        if (oh <= 0 || ow <= 0)
            return errf(err, errlen, EMBED_EFORMAT, "Conv node '%s': empty output", n->name);
        o->rank = 4;
        o->dims[0] = x->dims[0];
        o->dims[1] = oc;
        o->dims[2] = oh;
        o->dims[3] = ow;
        return 0;
    }
    case OP_MAXPOOL:
    case OP_AVGPOOL: {
        if (need_float(n, x, err, errlen))
            return EMBED_EUNSUPPORTED;
        if (x->rank != 4 || a->kernel[0] <= 0 || a->kernel[1] <= 0)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': only 2-D pooling is supported",
                        n->op_type, n->name);
        if (a->stride[0] <= 0 || a->stride[1] <= 0)
            return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': bad strides", n->op_type, n->name);
        int oh, ow, pads[4];
        eg_spatial(a, (int)x->dims[2], (int)x->dims[3], &oh, &ow, pads);
        if (oh <= 0 || ow <= 0 || pads[0] >= a->kernel[0] || pads[1] >= a->kernel[1])
            return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': bad output size or padding",
                        n->op_type, n->name);
        o->rank = 4;
        o->dims[0] = x->dims[0];
        o->dims[1] = x->dims[1];
        o->dims[2] = oh;
        o->dims[3] = ow;
        return 0;
    }
    case OP_GLOBALAVGPOOL:
    case OP_GLOBALMAXPOOL:
        if (need_float(n, x, err, errlen))
            return EMBED_EUNSUPPORTED;
        if (x->rank < 3)
            return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': input rank < 3", n->op_type, n->name);
        *o = *x;
        for (int i = 2; i < x->rank; i++)
            o->dims[i] = 1;
        return 0;
    case OP_BATCHNORM:
        if (need_float(n, x, err, errlen))
            return EMBED_EUNSUPPORTED;
        if (x->rank < 2)
            return errf(err, errlen, EMBED_EFORMAT, "BatchNormalization node '%s': rank < 2", n->name);
        for (int i = 1; i < 5; i++)
            if (!ins[i].data || ins[i].dtype != ONNX_FLOAT ||
                eg_count(ins[i].rank, ins[i].dims) != (size_t)x->dims[1])
                return errf(err, errlen, EMBED_EUNSUPPORTED,
                            "BatchNormalization node '%s': parameters must be constants of C values",
                            n->name);
        *o = *x;
        return 0;
    case OP_RELU:
    case OP_SOFTMAX:
        if (need_float(n, x, err, errlen))
            return EMBED_EUNSUPPORTED;
        *o = *x;
        if (n->op == OP_SOFTMAX &&
            (norm_axis(a->axis, x->rank) < 0 || norm_axis(a->axis, x->rank) >= x->rank))
            return errf(err, errlen, EMBED_EFORMAT, "Softmax node '%s': bad axis", n->name);
        return 0;
    case OP_CLIP:
        if (need_float(n, x, err, errlen))
            return EMBED_EUNSUPPORTED;
        for (int i = 1; i < n->n_in; i++)
            if (n->in[i] >= 0 &&
                (!ins[i].data || ins[i].dtype != ONNX_FLOAT || eg_count(ins[i].rank, ins[i].dims) != 1))
                return errf(err, errlen, EMBED_EUNSUPPORTED, "Clip node '%s': min/max must be float scalars",
                            n->name);
        *o = *x;
        return 0;
    case OP_IDENTITY:
        *o = *x;
        o->data = NULL;
        return 0;
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        if (x->dtype != ins[1].dtype)
            return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': input types differ", n->op_type, n->name);
        if (broadcast(x, &ins[1], o))
            return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': shapes do not broadcast", n->op_type,
                        n->name);
        o->dtype = x->dtype;
        return 0;
    case OP_FLATTEN: {
        int ax = norm_axis(a->axis, x->rank);
        if (ax < 0 || ax > x->rank)
            return errf(err, errlen, EMBED_EFORMAT, "Flatten node '%s': bad axis", n->name);
        o->dtype = x->dtype;
        o->rank = 2;
        o->dims[0] = (int64_t)eg_count(ax, x->dims);
        o->dims[1] = (int64_t)eg_count(x->rank - ax, x->dims + ax);
        return 0;
    }
    case OP_RESHAPE: {
        const eg_view *s = &ins[1];
        if (need_const_ints(n, s, err, errlen))
            return EMBED_EUNSUPPORTED;
        size_t k = eg_count(s->rank, s->dims), total = eg_count(x->rank, x->dims), known = 1;
        const int64_t *sd = s->data;
        int infer = -1;
        if (k > EG_MAX_RANK)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "Reshape node '%s': rank too large", n->name);
        o->dtype = x->dtype;
        o->rank = (int)k;
        for (size_t i = 0; i < k; i++) {
            int64_t d = sd[i];
            if (d == 0 && !a->allowzero) {
                if ((int)i >= x->rank)
                    return errf(err, errlen, EMBED_EFORMAT, "Reshape node '%s': 0 past input rank", n->name);
                d = x->dims[i];
            }
            if (d == -1) {
                if (infer >= 0)
                    return errf(err, errlen, EMBED_EFORMAT, "Reshape node '%s': two -1 dims", n->name);
                infer = (int)i;
                continue;
            }
            if (d < 0)
                return errf(err, errlen, EMBED_EFORMAT, "Reshape node '%s': bad dim", n->name);
            o->dims[i] = d;
            known *= (size_t)d;
        }
        if (infer >= 0) {
            if (known == 0 || total % known)
                return errf(err, errlen, EMBED_EFORMAT, "Reshape node '%s': cannot infer -1", n->name);
            o->dims[infer] = (int64_t)(total / known);
            known = total;
        }
        if (known != total)
            return errf(err, errlen, EMBED_EFORMAT, "Reshape node '%s': %zu elements into %zu", n->name,
                        total, known);
        return 0;
    }
    case OP_GEMM: {
        const eg_view *b = &ins[1];
        if (need_float(n, x, err, errlen) || need_float(n, b, err, errlen))
            return EMBED_EUNSUPPORTED;
        if (x->rank != 2 || b->rank != 2)
            return errf(err, errlen, EMBED_EFORMAT, "Gemm node '%s': inputs must be 2-D", n->name);
        int64_t m = a->trans_a ? x->dims[1] : x->dims[0], k = a->trans_a ? x->dims[0] : x->dims[1];
        int64_t kb = a->trans_b ? b->dims[1] : b->dims[0], nn = a->trans_b ? b->dims[0] : b->dims[1];
        if (k != kb)
            return errf(err, errlen, EMBED_EFORMAT, "Gemm node '%s': inner dimensions differ", n->name);
        o->rank = 2;
        o->dims[0] = m;
        o->dims[1] = nn;
        if (n->n_in > 2 && n->in[2] >= 0) {
            eg_view bc;
            if (need_float(n, &ins[2], err, errlen))
                return EMBED_EUNSUPPORTED;
            if (broadcast(o, &ins[2], &bc) || bc.rank != 2 || bc.dims[0] != m || bc.dims[1] != nn)
                return errf(err, errlen, EMBED_EFORMAT, "Gemm node '%s': C does not broadcast", n->name);
        }
        return 0;
    }
    case OP_MATMUL: {
        const eg_view *b = &ins[1];
        if (need_float(n, x, err, errlen) || need_float(n, b, err, errlen))
            return EMBED_EUNSUPPORTED;
        if (x->rank < 1 || b->rank < 1)
            return errf(err, errlen, EMBED_EFORMAT, "MatMul node '%s': scalar input", n->name);
        eg_view xa = *x, xb = *b, batch;
        if (xa.rank == 1) {
            xa.rank = 2;
            xa.dims[1] = xa.dims[0];
            xa.dims[0] = 1;
        }
        if (xb.rank == 1) {
            xb.rank = 2;
            xb.dims[1] = 1;
        }
        if (xa.dims[xa.rank - 1] != xb.dims[xb.rank - 2])
            return errf(err, errlen, EMBED_EFORMAT, "MatMul node '%s': inner dimensions differ", n->name);
        eg_view ba = xa, bb = xb;
        ba.rank -= 2;
        bb.rank -= 2;
        if (broadcast(&ba, &bb, &batch))
            return errf(err, errlen, EMBED_EFORMAT, "MatMul node '%s': batch dims do not broadcast", n->name);
        o->rank = 0;
        for (int i = 0; i < batch.rank; i++)
            o->dims[o->rank++] = batch.dims[i];
        if (x->rank > 1)
            o->dims[o->rank++] = xa.dims[xa.rank - 2];
        if (b->rank > 1)
            o->dims[o->rank++] = xb.dims[xb.rank - 1];
        return 0;
    }
    case OP_CONCAT: {
        int ax = norm_axis(a->axis, x->rank);
        if (ax < 0 || ax >= x->rank)
            return errf(err, errlen, EMBED_EFORMAT, "Concat node '%s': bad axis", n->name);
        *o = *x;
        o->data = NULL;
        o->dims[ax] = 0;
        for (int i = 0; i < n->n_in; i++) {
            const eg_view *v = &ins[i];
            if (n->in[i] < 0 || v->rank != x->rank || v->dtype != x->dtype)
                return errf(err, errlen, EMBED_EFORMAT, "Concat node '%s': inputs differ in rank or type",
                            n->name);
            for (int d = 0; d < x->rank; d++)
                if (d != ax && v->dims[d] != x->dims[d])
                    return errf(err, errlen, EMBED_EFORMAT, "Concat node '%s': shapes differ", n->name);
            o->dims[ax] += v->dims[ax];
        }
        return 0;
    }
    case OP_SHAPE: {
        int64_t s = a->start < 0 ? a->start + x->rank : a->start;
        int64_t e = a->has_end ? (a->end < 0 ? a->end + x->rank : a->end) : x->rank;
        if (s < 0)
            s = 0;
        if (e > x->rank)
            e = x->rank;
        o->dtype = ONNX_INT64;
        o->rank = 1;
        o->dims[0] = e > s ? e - s : 0;
        return 0;
    }
    case OP_GATHER: {
        const eg_view *idx = &ins[1];
        int ax = norm_axis(a->axis, x->rank);
        if (!idx->data || idx->dtype != ONNX_INT64 || ax < 0 || ax >= x->rank ||
            x->rank - 1 + idx->rank > EG_MAX_RANK)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "Gather node '%s': needs constant int64 indices",
                        n->name);
        o->dtype = x->dtype;
        o->rank = 0;
        for (int i = 0; i < ax; i++)
            o->dims[o->rank++] = x->dims[i];
        for (int i = 0; i < idx->rank; i++)
            o->dims[o->rank++] = idx->dims[i];
        for (int i = ax + 1; i < x->rank; i++)
            o->dims[o->rank++] = x->dims[i];
        return 0;
    }
    case OP_UNSQUEEZE:
    case OP_SQUEEZE: {
        int64_t axes[EG_MAX_RANK];
        int na = a->n_axes;
        memcpy(axes, a->axes, sizeof(axes));
        if (n->n_in > 1 && n->in[1] >= 0) {
            if (need_const_ints(n, &ins[1], err, errlen))
                return EMBED_EUNSUPPORTED;
            size_t k = eg_count(ins[1].rank, ins[1].dims);
            if (k > EG_MAX_RANK)
                return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': too many axes", n->op_type, n->name);
            na = (int)k;
            memcpy(axes, ins[1].data, k * 8);
        }
        o->dtype = x->dtype;
        if (n->op == OP_UNSQUEEZE) {
            int r = x->rank + na, used[EG_MAX_RANK] = {0};
            if (r > EG_MAX_RANK)
                return errf(err, errlen, EMBED_EUNSUPPORTED, "Unsqueeze node '%s': rank too large", n->name);
            for (int i = 0; i < na; i++) {
                int64_t ax = axes[i] < 0 ? axes[i] + r : axes[i];
                if (ax < 0 || ax >= r || used[ax])
                    return errf(err, errlen, EMBED_EFORMAT, "Unsqueeze node '%s': bad axes", n->name);
                used[ax] = 1;
            }
            o->rank = r;
            for (int i = 0, j = 0; i < r; i++)
                o->dims[i] = used[i] ? 1 : x->dims[j++];
            return 0;
        }
        int drop[EG_MAX_RANK] = {0};
        for (int i = 0; i < na; i++) {
            int64_t ax = axes[i] < 0 ? axes[i] + x->rank : axes[i];
            if (ax < 0 || ax >= x->rank || x->dims[ax] != 1)
                return errf(err, errlen, EMBED_EFORMAT, "Squeeze node '%s': bad axes", n->name);
            drop[ax] = 1;
        }
        o->rank = 0;
        for (int i = 0; i < x->rank; i++)
            if (!(na ? drop[i] : x->dims[i] == 1))
                o->dims[o->rank++] = x->dims[i];
        return 0;
    }
    case OP_CAST:
        if (a->to != ONNX_FLOAT && a->to != ONNX_INT64 && a->to != ONNX_INT32)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "Cast node '%s': to type %d is not supported",
                        n->name, a->to);
        *o = *x;
        o->data = NULL;
        o->dtype = a->to == ONNX_FLOAT ? ONNX_FLOAT : ONNX_INT64;
        return 0;
    default:
        return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': op has no kernel", n->op_type, n->name);
    }
}

/* ---- kernels ---- */

static void conv_ref(const eg_node *n, const eg_view *x, const eg_view *w, const float *bias, eg_view *y)
{
    eg_attrs a = n->a;
    a.kernel[0] = (int)w->dims[2];
    a.kernel[1] = (int)w->dims[3];
    a.ceil_mode = 0;
    int oh, ow, pads[4];
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    eg_spatial(&a, (int)H, (int)W, &oh, &ow, pads);
    int64_t OC = w->dims[0], G = a.group, icg = C / G, ocg = OC / G, KH = w->dims[2], KW = w->dims[3];
    const float *xd = x->data, *wd = w->data;
    float *yd = y->data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t oc = 0; oc < OC; oc++) {
            int64_t g = oc / ocg;
            const float *wo = wd + oc * icg * KH * KW;
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = bias ? bias[oc] : 0.0;
                    for (int64_t ic = 0; ic < icg; ic++) {
                        const float *xc = xd + ((b * C) + g * icg + ic) * H * W;
                        for (int64_t ki = 0; ki < KH; ki++) {
                            int64_t ih = i * a.stride[0] - pads[0] + ki * a.dilation[0];
                            if (ih < 0 || ih >= H)
                                continue;
                            for (int64_t kj = 0; kj < KW; kj++) {
                                int64_t iw = j * a.stride[1] - pads[1] + kj * a.dilation[1];
                                if (iw < 0 || iw >= W)
                                    continue;
                                s += (double)xc[ih * W + iw] * wo[(ic * KH + ki) * KW + kj];
                            }
                        }
                    }
                    yd[((b * OC + oc) * oh + i) * ow + j] = (float)s;
                }
        }
}

static void pool_ref(const eg_node *n, const eg_view *x, eg_view *y)
{
    const eg_attrs *a = &n->a;
    int oh, ow, pads[4];
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    eg_spatial(a, (int)H, (int)W, &oh, &ow, pads);
    const float *xd = x->data;
    float *yd = y->data;
    int is_max = n->op == OP_MAXPOOL;
    for (int64_t bc = 0; bc < N * C; bc++) {
        const float *xc = xd + bc * H * W;
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                int64_t h0 = i * a->stride[0] - pads[0], w0 = j * a->stride[1] - pads[1];
                double acc = is_max ? -INFINITY : 0.0;
                int64_t cnt = 0;
                for (int64_t ki = 0; ki < a->kernel[0]; ki++) {
                    int64_t ih = h0 + ki * a->dilation[0];
                    if (ih < 0 || ih >= H)
                        continue;
                    for (int64_t kj = 0; kj < a->kernel[1]; kj++) {
                        int64_t iw = w0 + kj * a->dilation[1];
                        if (iw < 0 || iw >= W)
                            continue;
                        float v = xc[ih * W + iw];
                        if (is_max)
                            acc = v > acc ? v : acc;
                        else
                            acc += v;
                        cnt++;
                    }
                }
                if (!is_max) {
                    if (a->count_include_pad) {
                        /* The window clipped to the padded input, not to the ceil-mode overhang. */
                        int64_t he = h0 + a->kernel[0], we = w0 + a->kernel[1];
                        if (he > H + pads[2])
                            he = H + pads[2];
                        if (we > W + pads[3])
                            we = W + pads[3];
                        cnt = (he - h0) * (we - w0);
                    }
                    acc = cnt ? acc / (double)cnt : 0.0;
                }
                yd[(bc * oh + i) * ow + j] = (float)acc;
            }
    }
}

/* Odometer over an output shape with per-input strides (0 on broadcast dims). */
static void binary_ref(int op, const eg_view *a, const eg_view *b, eg_view *o)
{
    int r = o->rank;
    int64_t sa[EG_MAX_RANK], sb[EG_MAX_RANK], idx[EG_MAX_RANK] = {0};
    int64_t st = 1;
    for (int i = a->rank - 1, k = r - 1; k >= 0; k--, i--) {
        sa[k] = (i >= 0 && a->dims[i] != 1) ? st : 0;
        st *= i >= 0 ? a->dims[i] : 1;
    }
    st = 1;
    for (int i = b->rank - 1, k = r - 1; k >= 0; k--, i--) {
        sb[k] = (i >= 0 && b->dims[i] != 1) ? st : 0;
        st *= i >= 0 ? b->dims[i] : 1;
    }
    size_t total = eg_count(r, o->dims);
    int64_t oa = 0, ob = 0;
    for (size_t e = 0; e < total; e++) {
        if (o->dtype == ONNX_FLOAT) {
            float x = ((const float *)a->data)[oa], y = ((const float *)b->data)[ob], z;
            z = op == OP_ADD ? x + y : op == OP_SUB ? x - y : op == OP_MUL ? x * y : x / y;
            ((float *)o->data)[e] = z;
        } else {
            int64_t x = ((const int64_t *)a->data)[oa], y = ((const int64_t *)b->data)[ob], z;
            z = op == OP_ADD ? x + y : op == OP_SUB ? x - y : op == OP_MUL ? x * y : (y ? x / y : 0);
            ((int64_t *)o->data)[e] = z;
        }
        for (int k = r - 1; k >= 0; k--) {
            idx[k]++;
            oa += sa[k];
            ob += sb[k];
            if (idx[k] < o->dims[k])
                break;
            oa -= sa[k] * idx[k];
            ob -= sb[k] * idx[k];
            idx[k] = 0;
        }
    }
}

static void gemm_ref(const eg_node *n, const eg_view *A, const eg_view *B, const eg_view *Cv, eg_view *Y)
{
    const eg_attrs *a = &n->a;
    int64_t M = Y->dims[0], N = Y->dims[1], K = a->trans_a ? A->dims[0] : A->dims[1];
    const float *ad = A->data, *bd = B->data;
    float *yd = Y->data;
    int64_t sc0 = 0, sc1 = 0;
    if (Cv) {
        int64_t r0 = Cv->rank >= 2 ? Cv->dims[Cv->rank - 2] : 1,
                r1 = Cv->rank >= 1 ? Cv->dims[Cv->rank - 1] : 1;
        sc0 = r0 == 1 ? 0 : r1;
        sc1 = r1 == 1 ? 0 : 1;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                float av = a->trans_a ? ad[k * M + i] : ad[i * K + k];
                float bv = a->trans_b ? bd[j * K + k] : bd[k * N + j];
                s += (double)av * bv;
            }
            s *= a->alpha;
            if (Cv)
                s += (double)a->beta * ((const float *)Cv->data)[i * sc0 + j * sc1];
            yd[i * N + j] = (float)s;
        }
}

static void matmul_ref(const eg_view *A, const eg_view *B, eg_view *Y)
{
    eg_view xa = *A, xb = *B;
    if (xa.rank == 1) {
        xa.rank = 2;
        xa.dims[1] = xa.dims[0];
        xa.dims[0] = 1;
    }
    if (xb.rank == 1) {
        xb.rank = 2;
        xb.dims[1] = 1;
    }
    int64_t M = xa.dims[xa.rank - 2], K = xa.dims[xa.rank - 1], N = xb.dims[xb.rank - 1];
    /* Batch dims broadcast like binary ops; walk the output batch index. */
    int br = xa.rank - 2 > xb.rank - 2 ? xa.rank - 2 : xb.rank - 2;
    int64_t bdims[EG_MAX_RANK], nb = 1;
    for (int i = 0; i < br; i++) {
        int ia = i - (br - (xa.rank - 2)), ib = i - (br - (xb.rank - 2));
        int64_t da = ia >= 0 ? xa.dims[ia] : 1, db = ib >= 0 ? xb.dims[ib] : 1;
        bdims[i] = da > db ? da : db;
        nb *= bdims[i];
    }
    const float *ad = A->data, *bd = B->data;
    float *yd = Y->data;
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t rem = bi, offa = 0, offb = 0, mula = 1, mulb = 1;
        for (int i = br - 1; i >= 0; i--) {
            int64_t id = rem % bdims[i];
            rem /= bdims[i];
            int ia = i - (br - (xa.rank - 2)), ib = i - (br - (xb.rank - 2));
            if (ia >= 0) {
                offa += (xa.dims[ia] == 1 ? 0 : id) * mula;
                mula *= xa.dims[ia];
            }
            if (ib >= 0) {
                offb += (xb.dims[ib] == 1 ? 0 : id) * mulb;
                mulb *= xb.dims[ib];
            }
        }
        const float *pa = ad + offa * M * K, *pb = bd + offb * K * N;
        float *py = yd + bi * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)pa[i * K + k] * pb[k * N + j];
                py[i * N + j] = (float)s;
            }
    }
}

static void softmax_ref(const eg_node *n, const eg_view *x, eg_view *y)
{
    int ax = norm_axis(n->a.axis, x->rank);
    size_t outer = eg_count(ax, x->dims), len, inner;
    if (n->a.legacy_softmax) {
        len = eg_count(x->rank - ax, x->dims + ax);
        inner = 1;
    } else {
        len = (size_t)x->dims[ax];
        inner = eg_count(x->rank - ax - 1, x->dims + ax + 1);
    }
    const float *xd = x->data;
    float *yd = y->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            const float *xp = xd + o * len * inner + in;
            float *yp = yd + o * len * inner + in;
            float mx = -INFINITY;
            for (size_t i = 0; i < len; i++)
                mx = xp[i * inner] > mx ? xp[i * inner] : mx;
            double sum = 0;
            for (size_t i = 0; i < len; i++) {
                float e = expf(xp[i * inner] - mx);
                yp[i * inner] = e;
                sum += e;
            }
            for (size_t i = 0; i < len; i++)
                yp[i * inner] = (float)(yp[i * inner] / sum);
        }
}

int eg_ref_run(const eg_node *n, const eg_view *ins, eg_view *outs, char *err, size_t errlen)
{
    const eg_view *x = &ins[0];
    eg_view *y = &outs[0];
    size_t count = eg_count(y->rank, y->dims);
    float *yd = y->data;
    const float *xd = x->data;
    switch (n->op) {
    case OP_CONV:
        conv_ref(n, x, &ins[1], n->n_in > 2 && n->in[2] >= 0 ? ins[2].data : NULL, y);
        return 0;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
        pool_ref(n, x, y);
        return 0;
    case OP_GLOBALAVGPOOL:
    case OP_GLOBALMAXPOOL: {
        size_t sp = eg_count(x->rank - 2, x->dims + 2);
        for (size_t c = 0; c < count; c++) {
            const float *p = xd + c * sp;
            double acc = n->op == OP_GLOBALMAXPOOL ? -INFINITY : 0.0;
            for (size_t i = 0; i < sp; i++)
                acc = n->op == OP_GLOBALMAXPOOL ? (p[i] > acc ? p[i] : acc) : acc + p[i];
            yd[c] = (float)(n->op == OP_GLOBALMAXPOOL ? acc : acc / (double)sp);
        }
        return 0;
    }
    case OP_BATCHNORM: {
        const float *gm = ins[1].data, *bt = ins[2].data, *mn = ins[3].data, *vr = ins[4].data;
        size_t C = (size_t)x->dims[1], sp = eg_count(x->rank - 2, x->dims + 2);
        for (size_t i = 0; i < count; i++) {
            size_t c = (i / sp) % C;
            yd[i] = (float)((xd[i] - mn[c]) / sqrt((double)vr[c] + n->a.epsilon) * gm[c] + bt[c]);
        }
        return 0;
    }
    case OP_RELU:
        for (size_t i = 0; i < count; i++)
            yd[i] = xd[i] > 0 ? xd[i] : 0;
        return 0;
    case OP_CLIP: {
        float lo = n->a.clip_min, hi = n->a.clip_max;
        if (n->n_in > 1 && n->in[1] >= 0)
            lo = *(const float *)ins[1].data;
        if (n->n_in > 2 && n->in[2] >= 0)
            hi = *(const float *)ins[2].data;
        for (size_t i = 0; i < count; i++)
            yd[i] = xd[i] < lo ? lo : xd[i] > hi ? hi : xd[i];
        return 0;
    }
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        binary_ref(n->op, x, &ins[1], y);
        return 0;
    case OP_GEMM:
        gemm_ref(n, x, &ins[1], n->n_in > 2 && n->in[2] >= 0 ? &ins[2] : NULL, y);
        return 0;
    case OP_MATMUL:
        matmul_ref(x, &ins[1], y);
        return 0;
    case OP_SOFTMAX:
        softmax_ref(n, x, y);
        return 0;
    case OP_IDENTITY:
    case OP_FLATTEN:
    case OP_RESHAPE:
    case OP_SQUEEZE:
    case OP_UNSQUEEZE:
        if (y->data != x->data)
            memmove(y->data, x->data, count * esize(x->dtype));
        return 0;
    case OP_CONCAT: {
        int ax = norm_axis(n->a.axis, x->rank);
        size_t outer = eg_count(ax, x->dims), es = esize(x->dtype),
               inner = eg_count(x->rank - ax - 1, x->dims + ax + 1);
        size_t off = 0, orow = (size_t)y->dims[ax] * inner * es;
        for (int i = 0; i < n->n_in; i++) {
            size_t row = (size_t)ins[i].dims[ax] * inner * es;
            for (size_t o = 0; o < outer; o++)
                memcpy((char *)y->data + o * orow + off, (const char *)ins[i].data + o * row, row);
            off += row;
        }
        return 0;
    }
    case OP_SHAPE: {
        int64_t s = n->a.start < 0 ? n->a.start + x->rank : n->a.start;
        if (s < 0)
            s = 0;
        for (size_t i = 0; i < count; i++)
            ((int64_t *)y->data)[i] = x->dims[s + (int64_t)i];
        return 0;
    }
    case OP_GATHER: {
        int ax = norm_axis(n->a.axis, x->rank);
        const eg_view *idx = &ins[1];
        size_t outer = eg_count(ax, x->dims), inner = eg_count(x->rank - ax - 1, x->dims + ax + 1);
        size_t ni = eg_count(idx->rank, idx->dims), es = esize(x->dtype);
        int64_t dim = x->dims[ax];
        for (size_t o = 0; o < outer; o++)
            for (size_t k = 0; k < ni; k++) {
                int64_t j = ((const int64_t *)idx->data)[k];
                if (j < 0)
                    j += dim;
                if (j < 0 || j >= dim)
                    return errf(err, errlen, EMBED_EFORMAT, "Gather node '%s': index out of range", n->name);
                memcpy((char *)y->data + (o * ni + k) * inner * es,
                       (const char *)x->data + (o * (size_t)dim + (size_t)j) * inner * es, inner * es);
            }
        return 0;
    }
    case OP_CAST:
        for (size_t i = 0; i < count; i++) {
            if (x->dtype == y->dtype)
                memcpy((char *)y->data + i * esize(x->dtype), (const char *)x->data + i * esize(x->dtype),
                       esize(x->dtype));
            else if (y->dtype == ONNX_FLOAT)
                ((float *)y->data)[i] = (float)((const int64_t *)x->data)[i];
            else {
                float v = ((const float *)x->data)[i];
                /* Out-of-range float to integer is undefined in C; saturate instead. */
                ((int64_t *)y->data)[i] = v != v          ? 0
                                          : v >= 9.2e18f  ? INT64_MAX
                                          : v <= -9.2e18f ? INT64_MIN
                                                          : (int64_t)v;
            }
        }
        return 0;
    default:
        return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': no reference kernel", n->op_type,
                    n->name);
    }
}
