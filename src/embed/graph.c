/* From parsed ONNX to the typed graph: op and attribute validation, name resolution, and
 * BatchNormalization folded into the Conv before it. */
#include "embed/graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int op;
} op_name;

static const op_name op_names[] = {
    {"Conv", OP_CONV},
    {"BatchNormalization", OP_BATCHNORM},
    {"Relu", OP_RELU},
    {"Clip", OP_CLIP},
    {"Add", OP_ADD},
    {"Sub", OP_SUB},
    {"Mul", OP_MUL},
    {"Div", OP_DIV},
    {"MaxPool", OP_MAXPOOL},
    {"AveragePool", OP_AVGPOOL},
    {"GlobalAveragePool", OP_GLOBALAVGPOOL},
    {"GlobalMaxPool", OP_GLOBALMAXPOOL},
    {"Flatten", OP_FLATTEN},
    {"Reshape", OP_RESHAPE},
    {"Gemm", OP_GEMM},
    {"MatMul", OP_MATMUL},
    {"Concat", OP_CONCAT},
    {"Identity", OP_IDENTITY},
    {"Dropout", OP_IDENTITY},
    {"Softmax", OP_SOFTMAX},
    {"Constant", OP_CONSTANT},
    {"Shape", OP_SHAPE},
    {"Gather", OP_GATHER},
    {"Unsqueeze", OP_UNSQUEEZE},
    {"Squeeze", OP_SQUEEZE},
    {"Cast", OP_CAST},
};

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

/* ---- name table: open addressing, sized at build time ---- */

typedef struct {
    int *slots;
    size_t mask;
} names;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int names_find(const names *t, const eg_tensor *ts, const char *name)
{
    for (size_t i = hash(name) & t->mask;; i = (i + 1) & t->mask) {
        int id = t->slots[i];
        if (id < 0)
            return -1;
        if (strcmp(ts[id].name, name) == 0)
            return id;
    }
}

static void names_put(names *t, const eg_tensor *ts, int id)
{
    size_t i = hash(ts[id].name) & t->mask;
    while (t->slots[i] >= 0)
        i = (i + 1) & t->mask;
    t->slots[i] = id;
}

int eg_graph_find(const eg_graph *g, const char *name)
{
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name[0] && strcmp(g->tensors[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- attributes ---- */

static int ints2(const onnx_attr *at, int *dst, int n, const eg_node *nd, char *err, size_t errlen)
{
    if (at->type != ONNX_ATTR_INTS || at->n != (size_t)n)
        return errf(err, errlen, EMBED_EUNSUPPORTED,
                    "%s node '%s': attribute %s must have %d values (only 2-D spatial ops are supported)",
                    nd->op_type, nd->name, at->name, n);
    for (int i = 0; i < n; i++) {
        if (at->ints[i] < 0 || at->ints[i] > 65536)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': attribute %s value %lld out of range",
                        nd->op_type, nd->name, at->name, (long long)at->ints[i]);
        dst[i] = (int)at->ints[i];
    }
    return 0;
}

static int want_type(const onnx_attr *at, int type, const eg_node *nd, char *err, size_t errlen)
{
    if (at->type != type)
        return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': attribute %s has type %d, expected %d",
                    nd->op_type, nd->name, at->name, at->type, type);
    return 0;
}

static int parse_attr(eg_graph *g, eg_node *nd, const onnx_attr *at, char *err, size_t errlen)
{
    eg_attrs *a = &nd->a;
    const char *k = at->name;
    int op = nd->op;
    int spatial = op == OP_CONV || op == OP_MAXPOOL || op == OP_AVGPOOL;
    if (spatial && strcmp(k, "kernel_shape") == 0)
        return ints2(at, a->kernel, 2, nd, err, errlen);
    if (spatial && strcmp(k, "strides") == 0)
        return ints2(at, a->stride, 2, nd, err, errlen);
    if ((op == OP_CONV || op == OP_MAXPOOL) && strcmp(k, "dilations") == 0)
        return ints2(at, a->dilation, 2, nd, err, errlen);
    if (spatial && strcmp(k, "pads") == 0) {
        int p[4];
        if (ints2(at, p, 4, nd, err, errlen))
            return EMBED_EUNSUPPORTED;
        /* ONNX order is [h_begin, w_begin, h_end, w_end], the same as ours. */
        memcpy(a->pads, p, sizeof(p));
        return 0;
    }
    if (spatial && strcmp(k, "auto_pad") == 0) {
        if (want_type(at, ONNX_ATTR_STRING, nd, err, errlen))
            return EMBED_EFORMAT;
        if (strcmp(at->s, "NOTSET") == 0)
            a->auto_pad = PAD_NOTSET;
        else if (strcmp(at->s, "VALID") == 0)
            a->auto_pad = PAD_VALID;
        else if (strcmp(at->s, "SAME_UPPER") == 0)
            a->auto_pad = PAD_SAME_UPPER;
        else if (strcmp(at->s, "SAME_LOWER") == 0)
            a->auto_pad = PAD_SAME_LOWER;
        else
            return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': auto_pad '%s' is not supported",
                        nd->op_type, nd->name, at->s);
        return 0;
    }
    if (op == OP_CONV && strcmp(k, "group") == 0) {
        if (want_type(at, ONNX_ATTR_INT, nd, err, errlen))
            return EMBED_EFORMAT;
        if (at->i < 1 || at->i > 1 << 20)
            return errf(err, errlen, EMBED_EFORMAT, "Conv node '%s': bad group %lld", nd->name,
                        (long long)at->i);
        a->group = (int)at->i;
        return 0;
    }
    if ((op == OP_MAXPOOL || op == OP_AVGPOOL) && strcmp(k, "ceil_mode") == 0) {
        a->ceil_mode = at->i != 0;
        return 0;
    }
    if (op == OP_AVGPOOL && strcmp(k, "count_include_pad") == 0) {
        a->count_include_pad = at->i != 0;
        return 0;
    }
    if (op == OP_MAXPOOL && strcmp(k, "storage_order") == 0 && at->i == 0)
        return 0;
    if ((op == OP_FLATTEN || op == OP_CONCAT || op == OP_SOFTMAX || op == OP_GATHER) &&
        strcmp(k, "axis") == 0) {
        if (want_type(at, ONNX_ATTR_INT, nd, err, errlen))
            return EMBED_EFORMAT;
        if (at->i < -EG_MAX_RANK || at->i > EG_MAX_RANK)
            return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': axis %lld out of range", nd->op_type,
                        nd->name, (long long)at->i);
        a->axis = (int)at->i;
        return 0;
    }
    if (op == OP_GEMM) {
        if (strcmp(k, "alpha") == 0 || strcmp(k, "beta") == 0) {
            if (want_type(at, ONNX_ATTR_FLOAT, nd, err, errlen))
                return EMBED_EFORMAT;
            *(k[0] == 'a' ? &a->alpha : &a->beta) = at->f;
            return 0;
        }
        if (strcmp(k, "transA") == 0 || strcmp(k, "transB") == 0) {
            *(k[5] == 'A' ? &a->trans_a : &a->trans_b) = at->i != 0;
            return 0;
        }
    }
    if (op == OP_CLIP && (strcmp(k, "min") == 0 || strcmp(k, "max") == 0)) {
        if (want_type(at, ONNX_ATTR_FLOAT, nd, err, errlen))
            return EMBED_EFORMAT;
        *(k[1] == 'i' ? &a->clip_min : &a->clip_max) = at->f;
        return 0;
    }
    if (op == OP_BATCHNORM) {
        if (strcmp(k, "epsilon") == 0) {
            if (want_type(at, ONNX_ATTR_FLOAT, nd, err, errlen))
                return EMBED_EFORMAT;
            a->epsilon = at->f;
            return 0;
        }
        if (strcmp(k, "momentum") == 0 || (strcmp(k, "spatial") == 0 && at->i == 1) ||
            (strcmp(k, "training_mode") == 0 && at->i == 0) || strcmp(k, "is_test") == 0)
            return 0;
    }
    if (op == OP_IDENTITY && (strcmp(k, "ratio") == 0 || strcmp(k, "seed") == 0 || strcmp(k, "is_test") == 0))
        return 0;
    if ((op == OP_SQUEEZE || op == OP_UNSQUEEZE) && strcmp(k, "axes") == 0) {
        if (at->type != ONNX_ATTR_INTS || at->n > EG_MAX_RANK)
            return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': bad axes", nd->op_type, nd->name);
        a->n_axes = (int)at->n;
        memcpy(a->axes, at->ints, at->n * sizeof(int64_t));
        return 0;
    }
    if (op == OP_CAST && strcmp(k, "to") == 0) {
        a->to = (int)at->i;
        return 0;
    }
    if (op == OP_RESHAPE && strcmp(k, "allowzero") == 0) {
        a->allowzero = at->i != 0;
        return 0;
    }
    if (op == OP_SHAPE && (strcmp(k, "start") == 0 || strcmp(k, "end") == 0)) {
        if (k[0] == 's') {
            a->start = at->i;
        } else {
            a->end = at->i;
            a->has_end = 1;
        }
        return 0;
    }
    if (op == OP_CONSTANT) {
        onnx_tensor *t = onnx_arena_alloc(g->arena, sizeof(*t));
        if (!t)
            return errf(err, errlen, EMBED_ENOMEM, "out of memory");
        if (strcmp(k, "value") == 0 && at->type == ONNX_ATTR_TENSOR && at->t) {
            *t = *at->t;
        } else if (strcmp(k, "value_float") == 0 || strcmp(k, "value_int") == 0) {
            int fl = k[6] == 'f';
            t->dtype = fl ? ONNX_FLOAT : ONNX_INT64;
            t->rank = 0;
            t->count = 1;
            t->data = onnx_arena_alloc(g->arena, 8);
            if (!t->data)
                return errf(err, errlen, EMBED_ENOMEM, "out of memory");
            if (fl)
                *(float *)t->data = at->f;
            else
                *(int64_t *)t->data = at->i;
        } else if ((strcmp(k, "value_floats") == 0 && at->type == ONNX_ATTR_FLOATS) ||
                   (strcmp(k, "value_ints") == 0 && at->type == ONNX_ATTR_INTS)) {
            int fl = k[6] == 'f';
            t->dtype = fl ? ONNX_FLOAT : ONNX_INT64;
            t->rank = 1;
            t->dims[0] = (int64_t)at->n;
            t->count = at->n;
            t->data = onnx_arena_alloc(g->arena, at->n * 8);
            if (!t->data)
                return errf(err, errlen, EMBED_ENOMEM, "out of memory");
            memcpy(t->data, fl ? (const void *)at->floats : (const void *)at->ints, at->n * (fl ? 4 : 8));
        } else {
            return errf(err, errlen, EMBED_EUNSUPPORTED, "Constant node '%s': attribute %s is not supported",
                        nd->name, k);
        }
        eg_tensor *out = &g->tensors[nd->out[0]];
        out->dtype = t->dtype;
        out->rank = t->rank;
        memcpy(out->dims, t->dims, sizeof(out->dims));
        out->count = t->count;
        out->data = t->data;
        return 0;
    }
    return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': attribute '%s' is not supported", nd->op_type,
                nd->name, k);
}

static int op_of(const char *type)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (strcmp(op_names[i].name, type) == 0)
            return op_names[i].op;
    return OP_NONE;
}

/* ---- BatchNormalization folding ---- */

static const float *const_floats(const eg_graph *g, int id, size_t count)
{
    if (id < 0)
        return NULL;
    const eg_tensor *t = &g->tensors[id];
    if (!t->data || t->dtype != ONNX_FLOAT || t->count != count)
        return NULL;
    return t->data;
}

static int fold_bn(eg_graph *g, eg_node *bn, char *err, size_t errlen)
{
    int x = bn->in[0];
    eg_tensor *xt = &g->tensors[x];
    if (xt->producer < 0 || xt->n_consumers != 1)
        return 0;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == x)
            return 0;
    eg_node *conv = &g->nodes[xt->producer];
    if (conv->op != OP_CONV || conv->n_in < 2)
        return 0;
    const eg_tensor *w = &g->tensors[conv->in[1]];
    if (!w->data || w->dtype != ONNX_FLOAT || w->rank != 4)
        return 0;
    size_t oc = (size_t)w->dims[0], per = w->count / (oc ? oc : 1);
    const float *gamma = const_floats(g, bn->in[1], oc), *beta = const_floats(g, bn->in[2], oc);
    const float *mean = const_floats(g, bn->in[3], oc), *var = const_floats(g, bn->in[4], oc);
    const float *bias = conv->n_in > 2 ? const_floats(g, conv->in[2], oc) : NULL;
    if (!gamma || !beta || !mean || !var || (conv->n_in > 2 && conv->in[2] >= 0 && !bias))
        return 0;
    float *nw = onnx_arena_alloc(g->arena, w->count * sizeof(float));
    float *nb = onnx_arena_alloc(g->arena, oc * sizeof(float));
    int *nin = onnx_arena_alloc(g->arena, 3 * sizeof(int));
    if (!nw || !nb || !nin)
        return errf(err, errlen, EMBED_ENOMEM, "out of memory folding BatchNormalization");
    const float *ow = w->data;
    for (size_t o = 0; o < oc; o++) {
        double s = gamma[o] / sqrt((double)var[o] + bn->a.epsilon);
        for (size_t i = 0; i < per; i++)
            nw[o * per + i] = (float)(ow[o * per + i] * s);
        nb[o] = (float)(((bias ? bias[o] : 0.0) - mean[o]) * s + beta[o]);
    }
    /* Two new constant tensors; the arrays were sized for them at build time. */
    int wid = g->n_tensors++, bid = g->n_tensors++;
    eg_tensor *wt = &g->tensors[wid], *bt = &g->tensors[bid];
    *wt = *w;
    wt->name = "";
    wt->data = nw;
    wt->n_consumers = 1;
    memset(bt, 0, sizeof(*bt));
    bt->name = "";
    bt->dtype = ONNX_FLOAT;
    bt->rank = 1;
    bt->dims[0] = (int64_t)oc;
    bt->count = oc;
    bt->data = nb;
    bt->producer = -1;
    bt->n_consumers = 1;
    nin[0] = conv->in[0];
    nin[1] = wid;
    nin[2] = bid;
    conv->in = nin;
    conv->n_in = 3;
    conv->out[0] = bn->out[0];
    g->tensors[bn->out[0]].producer = xt->producer;
    xt->folded = 1;
    xt->producer = -1;
    xt->n_consumers = 0;
    bn->op = OP_NONE;
    return 0;
}

/* ---- build ---- */

static int check_inputs(const eg_node *nd, int lo, int hi, char *err, size_t errlen)
{
    if (nd->n_in < lo || nd->n_in > hi)
        return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': %d inputs (expected %d to %d)",
                    nd->op_type, nd->name, nd->n_in, lo, hi);
    for (int i = 0; i < lo; i++)
        if (nd->in[i] < 0)
            return errf(err, errlen, EMBED_EFORMAT, "%s node '%s': required input %d is missing", nd->op_type,
                        nd->name, i);
    return 0;
}

static int validate(eg_graph *g, eg_node *nd, char *err, size_t errlen)
{
    static const int arity[][2] = {
        [OP_CONV] = {2, 3},    [OP_BATCHNORM] = {5, 5},     [OP_RELU] = {1, 1},
        [OP_CLIP] = {1, 3},    [OP_ADD] = {2, 2},           [OP_SUB] = {2, 2},
        [OP_MUL] = {2, 2},     [OP_DIV] = {2, 2},           [OP_MAXPOOL] = {1, 1},
        [OP_AVGPOOL] = {1, 1}, [OP_GLOBALAVGPOOL] = {1, 1}, [OP_GLOBALMAXPOOL] = {1, 1},
        [OP_FLATTEN] = {1, 1}, [OP_RESHAPE] = {2, 2},       [OP_GEMM] = {2, 3},
        [OP_MATMUL] = {2, 2},  [OP_CONCAT] = {1, 4096},     [OP_IDENTITY] = {1, 3},
        [OP_SOFTMAX] = {1, 1}, [OP_CONSTANT] = {0, 0},      [OP_SHAPE] = {1, 1},
        [OP_GATHER] = {2, 2},  [OP_UNSQUEEZE] = {1, 2},     [OP_SQUEEZE] = {1, 2},
        [OP_CAST] = {1, 1},
    };
    if (check_inputs(nd, arity[nd->op][0], arity[nd->op][1], err, errlen))
        return EMBED_EUNSUPPORTED;
    int max_out = nd->op == OP_IDENTITY ? 2 : 1;
    if (nd->n_out < 1 || nd->n_out > max_out)
        return errf(err, errlen, EMBED_EUNSUPPORTED, "%s node '%s': %d outputs are not supported",
                    nd->op_type, nd->name, nd->n_out);
    if (nd->op == OP_IDENTITY && nd->n_in == 3) {
        /* Dropout's training_mode input: only a constant false is an inference no-op. */
        const eg_tensor *t = nd->in[2] >= 0 ? &g->tensors[nd->in[2]] : NULL;
        if (t && (!t->data || t->count != 1 || (t->dtype == ONNX_INT64 && *(int64_t *)t->data != 0) ||
                  (t->dtype == ONNX_FLOAT && *(float *)t->data != 0)))
            return errf(err, errlen, EMBED_EUNSUPPORTED, "Dropout node '%s': training mode is not supported",
                        nd->name);
    }
    if (nd->op == OP_IDENTITY && nd->n_out == 2 && nd->out[1] >= 0)
        g->tensors[nd->out[1]].folded = 2;
    if (nd->op == OP_CLIP && g->opset >= 11)
        for (int i = 1; i < nd->n_in; i++)
            if (nd->in[i] >= 0 && g->tensors[nd->in[i]].producer >= 0 &&
                g->nodes[g->tensors[nd->in[i]].producer].op != OP_CONSTANT)
                return errf(err, errlen, EMBED_EUNSUPPORTED, "Clip node '%s': min/max must be constants",
                            nd->name);
    return 0;
}

eg_graph *eg_graph_new(onnx_model *onnx, char *err, size_t errlen, int *rcp)
{
    int rc = EMBED_ENOMEM;
    eg_graph *g = calloc(1, sizeof(*g));
    names tab = {0};
    if (!g) {
        *rcp = errf(err, errlen, EMBED_ENOMEM, "out of memory");
        onnx_model_free(onnx);
        return NULL;
    }
    g->onnx = onnx;
    g->arena = onnx_arena_new();
    g->opset = onnx->opset;
    if (onnx->opset < 1 || onnx->opset > 18) {
        rc = errf(err, errlen, EMBED_EUNSUPPORTED, "onnx: opset %lld is not supported (1 to 18)",
                  (long long)onnx->opset);
        goto fail;
    }
    size_t max_t = (size_t)onnx->n_inits + (size_t)onnx->n_inputs + 1;
    for (int i = 0; i < onnx->n_nodes; i++) {
        max_t += (size_t)onnx->nodes[i].n_outputs;
        if (strcmp(onnx->nodes[i].op_type, "BatchNormalization") == 0)
            max_t += 2;
    }
    if (max_t > 4 * (size_t)ONNX_MAX_ITEMS) {
        rc = errf(err, errlen, EMBED_ETOOLARGE, "onnx: too large (%zu tensors)", max_t);
        goto fail;
    }
    size_t cap = 16;
    while (cap < 2 * max_t)
        cap *= 2;
    tab.mask = cap - 1;
    tab.slots = malloc(cap * sizeof(int));
    g->tensors = calloc(max_t, sizeof(eg_tensor));
    g->nodes = calloc((size_t)onnx->n_nodes + 1, sizeof(eg_node));
    g->inputs = calloc((size_t)onnx->n_inputs + 1, sizeof(int));
    g->outputs = calloc((size_t)onnx->n_outputs + 1, sizeof(int));
    if (!g->arena || !tab.slots || !g->tensors || !g->nodes || !g->inputs || !g->outputs) {
        rc = errf(err, errlen, EMBED_ENOMEM, "out of memory");
        goto fail;
    }
    memset(tab.slots, 0xff, cap * sizeof(int));

    for (int i = 0; i < onnx->n_inits; i++) {
        const onnx_tensor *it = &onnx->inits[i];
        if (names_find(&tab, g->tensors, it->name) >= 0) {
            rc = errf(err, errlen, EMBED_EFORMAT, "onnx: initializer '%s' defined twice", it->name);
            goto fail;
        }
        eg_tensor *t = &g->tensors[g->n_tensors];
        t->name = it->name;
        t->dtype = it->dtype;
        t->rank = it->rank;
        memcpy(t->dims, it->dims, sizeof(t->dims));
        t->count = it->count;
        t->data = it->data;
        t->producer = -1;
        names_put(&tab, g->tensors, g->n_tensors++);
    }
    for (int i = 0; i < onnx->n_inputs; i++) {
        const onnx_value_info *v = &onnx->inputs[i];
        if (names_find(&tab, g->tensors, v->name) >= 0)
            continue; /* an initializer listed as input (IR < 4 style): a constant */
        int et = v->elem_type;
        if (et != ONNX_FLOAT && et != ONNX_INT64 && et != ONNX_INT32) {
            rc = errf(err, errlen, EMBED_EUNSUPPORTED, "onnx: input '%s': element type %d is not supported",
                      v->name, et);
            goto fail;
        }
        eg_tensor *t = &g->tensors[g->n_tensors];
        t->name = v->name;
        t->dtype = et == ONNX_FLOAT ? ONNX_FLOAT : ONNX_INT64;
        t->rank = v->rank;
        memcpy(t->dims, v->dims, sizeof(t->dims));
        t->producer = -1;
        g->inputs[g->n_inputs++] = g->n_tensors;
        names_put(&tab, g->tensors, g->n_tensors++);
    }
    for (int i = 0; i < onnx->n_nodes; i++) {
        const onnx_node *on = &onnx->nodes[i];
        eg_node *nd = &g->nodes[g->n_nodes];
        nd->op_type = on->op_type;
        nd->name = on->name[0] ? on->name : on->n_outputs > 0 ? on->outputs[0] : "";
        if (on->domain[0] && strcmp(on->domain, "ai.onnx") != 0) {
            rc = errf(err, errlen, EMBED_EUNSUPPORTED, "node '%s': op %s from domain '%s' is not supported",
                      nd->name, on->op_type, on->domain);
            goto fail;
        }
        nd->op = op_of(on->op_type);
        if (nd->op == OP_NONE) {
            rc = errf(err, errlen, EMBED_EUNSUPPORTED, "node '%s': op %s is not supported", nd->name,
                      on->op_type);
            goto fail;
        }
        nd->n_in = on->n_inputs;
        nd->n_out = on->n_outputs;
        nd->in = onnx_arena_alloc(g->arena, ((size_t)on->n_inputs + 1) * sizeof(int));
        nd->out = onnx_arena_alloc(g->arena, ((size_t)on->n_outputs + 1) * sizeof(int));
        if (!nd->in || !nd->out) {
            rc = errf(err, errlen, EMBED_ENOMEM, "out of memory");
            goto fail;
        }
        for (int k = 0; k < on->n_inputs; k++) {
            if (!on->inputs[k][0]) {
                nd->in[k] = -1;
                continue;
            }
            int id = names_find(&tab, g->tensors, on->inputs[k]);
            if (id < 0) {
                rc = errf(err, errlen, EMBED_EFORMAT, "%s node '%s': input '%s' is not defined before use",
                          on->op_type, nd->name, on->inputs[k]);
                goto fail;
            }
            if (g->tensors[id].folded == 2) {
                rc = errf(err, errlen, EMBED_EUNSUPPORTED,
                          "%s node '%s': reads Dropout mask '%s', not supported", on->op_type, nd->name,
                          on->inputs[k]);
                goto fail;
            }
            nd->in[k] = id;
            g->tensors[id].n_consumers++;
        }
        for (int k = 0; k < on->n_outputs; k++) {
            if (!on->outputs[k][0]) {
                nd->out[k] = -1;
                continue;
            }
            if (names_find(&tab, g->tensors, on->outputs[k]) >= 0) {
                rc = errf(err, errlen, EMBED_EFORMAT, "%s node '%s': output '%s' is defined twice",
                          on->op_type, nd->name, on->outputs[k]);
                goto fail;
            }
            eg_tensor *t = &g->tensors[g->n_tensors];
            t->name = on->outputs[k];
            t->dtype = ONNX_FLOAT;
            t->rank = -1;
            t->producer = g->n_nodes;
            nd->out[k] = g->n_tensors;
            names_put(&tab, g->tensors, g->n_tensors++);
        }
        if (nd->n_out < 1 || nd->out[0] < 0) {
            rc = errf(err, errlen, EMBED_EFORMAT, "%s node '%s' has no output", on->op_type, nd->name);
            goto fail;
        }
        nd->a.group = 1;
        nd->a.stride[0] = nd->a.stride[1] = 1;
        nd->a.dilation[0] = nd->a.dilation[1] = 1;
        nd->a.axis = nd->op == OP_SOFTMAX ? (g->opset >= 13 ? -1 : 1) : nd->op == OP_GATHER ? 0 : 1;
        nd->a.legacy_softmax = nd->op == OP_SOFTMAX && g->opset < 13;
        nd->a.alpha = nd->a.beta = 1.0f;
        nd->a.clip_min = -INFINITY;
        nd->a.clip_max = INFINITY;
        nd->a.epsilon = 1e-5f;
        nd->a.to = ONNX_FLOAT;
        int has_axis = 0;
        for (int k = 0; k < on->n_attrs; k++) {
            if ((rc = parse_attr(g, nd, &on->attrs[k], err, errlen)))
                goto fail;
            has_axis |= strcmp(on->attrs[k].name, "axis") == 0;
        }
        if (nd->op == OP_CONCAT && !has_axis) {
            rc = errf(err, errlen, EMBED_EFORMAT, "Concat node '%s': attribute axis is required", nd->name);
            goto fail;
        }
        if (nd->op == OP_CONSTANT && !g->tensors[nd->out[0]].data) {
            rc = errf(err, errlen, EMBED_EFORMAT, "Constant node '%s' has no value", nd->name);
            goto fail;
        }
        if (nd->op == OP_CONSTANT)
            g->tensors[nd->out[0]].producer = -1;
        g->n_nodes++;
        if ((rc = validate(g, nd, err, errlen)))
            goto fail;
    }
    for (int i = 0; i < onnx->n_outputs; i++) {
        int id = names_find(&tab, g->tensors, onnx->outputs[i].name);
        if (id < 0) {
            rc = errf(err, errlen, EMBED_EFORMAT, "onnx: graph output '%s' is never produced",
                      onnx->outputs[i].name);
            goto fail;
        }
        g->outputs[g->n_outputs++] = id;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == OP_BATCHNORM && (rc = fold_bn(g, &g->nodes[i], err, errlen)))
            goto fail;
    free(tab.slots);
    return g;
fail:
    free(tab.slots);
    eg_graph_free(g);
    *rcp = rc;
    return NULL;
}

void eg_graph_free(eg_graph *g)
{
    if (!g)
        return;
    onnx_model_free(g->onnx);
    onnx_arena_free(g->arena);
    free(g->tensors);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g);
}
