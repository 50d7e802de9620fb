/* Plan compilation: shapes for the concrete inputs, constant folding, fusion, oneDNN
 * primitives with blocked layouts, and the liveness-based memory plan. */
#include "embed/plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOLD_MAX_ELEMS ((size_t)1 << 16)

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

typedef struct {
    const eg_graph *g;
    dnnl_engine_t eng;
    plan *p;
    int cap_tensors, cap_steps;
    int *consumer; /* per graph tensor: its only consumer node when n_consumers == 1 */
    /* Every run-time primitive uses a caller-provided scratchpad: oneDNN's library-managed one
     * is shared, and the same primitive runs concurrently in several contexts. */
    dnnl_primitive_attr_t user_scratch;
    int winograd; /* try Winograd for eligible 3x3 convolutions */
    char *err;
    size_t errlen;
} builder;

#define DNNL_CHECK(b, call, what)                                                                            \
    do {                                                                                                     \
        dnnl_status_t st_ = (call);                                                                          \
        if (st_ != dnnl_success)                                                                             \
            return errf((b)->err, (b)->errlen, EMBED_EBACKEND, "oneDNN %s failed (status %d) for %s", #call, \
                        (int)st_, what);                                                                     \
    } while (0)

static size_t esize(int dtype)
{
    return dtype == ONNX_INT64 ? 8 : 4;
}

static void *own(plan *p, size_t bytes)
{
    if (p->n_owned == p->cap_owned) {
        int cap = p->cap_owned ? p->cap_owned * 2 : 16;
        void **n = realloc(p->owned, (size_t)cap * sizeof(void *));
        if (!n)
            return NULL;
        p->owned = n;
        p->cap_owned = cap;
    }
    void *m = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (m)
        p->owned[p->n_owned++] = m;
    return m;
}

static int add_tensor(builder *b)
{
    plan *p = b->p;
    if (p->n_tensors == b->cap_tensors) {
        int cap = b->cap_tensors * 2;
        plan_tensor *n = realloc(p->tensors, (size_t)cap * sizeof(plan_tensor));
        if (!n)
            return -1;
        p->tensors = n;
        b->cap_tensors = cap;
    }
    plan_tensor *t = &p->tensors[p->n_tensors];
    memset(t, 0, sizeof(*t));
    t->input = -1;
    t->alias = -1;
    t->first = -1;
    t->last = -1;
    t->used = 1;
    return p->n_tensors++;
}

static plan_step *add_step(builder *b)
{
    plan *p = b->p;
    if (p->n_steps == b->cap_steps) {
        int cap = b->cap_steps ? b->cap_steps * 2 : 64;
        plan_step *n = realloc(p->steps, (size_t)cap * sizeof(plan_step));
        if (!n)
            return NULL;
        p->steps = n;
        b->cap_steps = cap;
    }
    plan_step *s = &p->steps[p->n_steps++];
    memset(s, 0, sizeof(*s));
    s->out = -1;
    return s;
}

static int root(const plan *p, int id)
{
    while (p->tensors[id].alias >= 0)
        id = p->tensors[id].alias;
    return id;
}

static void plain_md(const plan_tensor *t, dnnl_memory_desc_t *md)
{
    static const dnnl_format_tag_t tags[] = {dnnl_a,    dnnl_a,     dnnl_ab,     dnnl_abc,
                                             dnnl_abcd, dnnl_abcde, dnnl_abcdef, dnnl_abcdefg};
    dnnl_dims_t dims;
    int rank = t->rank ? t->rank : 1;
    for (int i = 0; i < rank; i++)
        dims[i] = t->rank ? t->dims[i] : 1;
    dnnl_memory_desc_init_by_tag(md, rank, dims, dnnl_f32, tags[rank < 8 ? rank : 7]);
}

static void get_md(const plan *p, int id, dnnl_memory_desc_t *md)
{
    const plan_tensor *t = &p->tensors[id];
    if (t->blocked)
        *md = t->md;
    else
        plain_md(t, md);
}

/* Sets a tensor's layout to md (plain when md equals the row-major layout). */
static void set_md(plan *p, int id, const dnnl_memory_desc_t *md)
{
    plan_tensor *t = &p->tensors[id];
    dnnl_memory_desc_t pl;
    plain_md(t, &pl);
    t->blocked = !dnnl_memory_desc_equal(md, &pl);
    t->md = *md;
    t->bytes = dnnl_memory_desc_get_size(md);
}

static int finish_prim(builder *b, plan_step *s, dnnl_primitive_desc_t pd, const char *what)
{
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smd && dnnl_memory_desc_get_size(smd) > 0) {
        s->scratch_md = *smd;
        s->scratch_bytes = dnnl_memory_desc_get_size(smd);
        if (s->scratch_bytes > b->p->scratch_bytes)
            b->p->scratch_bytes = s->scratch_bytes;
    }
    dnnl_status_t st = dnnl_primitive_create(&s->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success)
        return errf(b->err, b->errlen, EMBED_EBACKEND, "oneDNN primitive creation failed (%d) for %s",
                    (int)st, what);
    return 0;
}

static void arg(plan_step *s, int kind, int tensor)
{
    s->arg_kind[s->n_args] = kind;
    s->arg_tensor[s->n_args] = tensor;
    s->n_args++;
}

/* A step that reorders tensor src into tensor dst (whose md is set). */
static int reorder_step(builder *b, int src, int dst)
{
    dnnl_memory_desc_t smd, dmd;
    get_md(b->p, src, &smd);
    get_md(b->p, dst, &dmd);
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(b, dnnl_reorder_primitive_desc_create(&pd, &smd, b->eng, &dmd, b->eng, b->user_scratch),
               "reorder");
    plan_step *s = add_step(b);
    if (!s)
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    s->kind = STEP_DNNL;
    s->label = "Reorder";
    s->out = dst;
    arg(s, DNNL_ARG_FROM, src);
    arg(s, DNNL_ARG_TO, dst);
    return finish_prim(b, s, pd, "reorder");
}

/* Returns a tensor holding id's values in layout md, adding a reorder when needed. */
static int ensure_md(builder *b, int id, const dnnl_memory_desc_t *md)
{
    dnnl_memory_desc_t cur;
    get_md(b->p, id, &cur);
    if (dnnl_memory_desc_equal(&cur, md))
        return id;
    int t = add_tensor(b);
    if (t < 0)
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    plan_tensor *src = &b->p->tensors[id], *dst = &b->p->tensors[t];
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    memcpy(dst->dims, src->dims, sizeof(dst->dims));
    set_md(b->p, t, md);
    int rc = reorder_step(b, id, t);
    return rc ? rc : t;
}

static int ensure_plain(builder *b, int id)
{
    if (!b->p->tensors[id].blocked || b->p->tensors[id].cdata)
        return id;
    dnnl_memory_desc_t md;
    plain_md(&b->p->tensors[id], &md);
    return ensure_md(b, id, &md);
}

/* Reorder a constant into md, once, at compile time. */
static int const_reorder(builder *b, const void *src, const dnnl_memory_desc_t *smd,
                         const dnnl_memory_desc_t *dmd, void **out)
{
    size_t bytes = dnnl_memory_desc_get_size(dmd);
    void *dst = own(b->p, bytes);
    if (!dst)
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory for weights");
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ms = NULL, md = NULL;
    dnnl_stream_t stream = NULL;
    int rc = EMBED_EBACKEND;
    if (dnnl_reorder_primitive_desc_create(&pd, smd, b->eng, dmd, b->eng, NULL) != dnnl_success ||
        dnnl_primitive_create(&prim, pd) != dnnl_success ||
        dnnl_memory_create(&ms, smd, b->eng, (void *)src) != dnnl_success ||
        dnnl_memory_create(&md, dmd, b->eng, dst) != dnnl_success ||
        dnnl_stream_create(&stream, b->eng, dnnl_stream_default_flags) != dnnl_success)
        goto fail;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    if (dnnl_primitive_execute(prim, stream, 2, args) != dnnl_success ||
        dnnl_stream_wait(stream) != dnnl_success)
        goto fail;
    *out = dst;
    rc = 0;
fail:
    if (rc)
        errf(b->err, b->errlen, rc, "oneDNN weight reorder failed");
    if (stream)
        dnnl_stream_destroy(stream);
    if (ms)
        dnnl_memory_destroy(ms);
    if (md)
        dnnl_memory_destroy(md);
    if (prim)
        dnnl_primitive_destroy(prim);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int const_tensor(builder *b, void *data, const dnnl_memory_desc_t *md)
{
    int t = add_tensor(b);
    if (t < 0)
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    plan_tensor *pt = &b->p->tensors[t];
    pt->dtype = ONNX_FLOAT;
    pt->rank = md->ndims;
    for (int i = 0; i < md->ndims; i++)
        pt->dims[i] = md->dims[i];
    pt->cdata = data;
    pt->blocked = 1;
    pt->md = *md;
    return t;
}

/* ---- fusion ---- */

typedef struct {
    int act1_alg, act2_alg; /* 0 = none */
    float act1_a, act1_b, act2_a, act2_b;
    int sum; /* addend tensor or -1 */
    int out; /* tensor the fused step writes */
} conv_fuse;

static int act_of(const eg_node *n, const plan *p, int *alg, float *lo, float *hi)
{
    if (n->op == OP_RELU) {
        *alg = dnnl_eltwise_relu;
        *lo = 0;
        *hi = 0;
        return 1;
    }
    if (n->op == OP_CLIP) {
        *lo = n->a.clip_min;
        *hi = n->a.clip_max;
        if (n->n_in > 1 && n->in[1] >= 0) {
            if (!p->tensors[n->in[1]].cdata)
                return 0;
            *lo = *(const float *)p->tensors[n->in[1]].cdata;
        }
        if (n->n_in > 2 && n->in[2] >= 0) {
            if (!p->tensors[n->in[2]].cdata)
                return 0;
            *hi = *(const float *)p->tensors[n->in[2]].cdata;
        }
        *alg = dnnl_eltwise_clip;
        return 1;
    }
    return 0;
}

/* The node that alone reads tensor t, if t is otherwise invisible (not the requested output). */
static const eg_node *sole_reader(builder *b, int t, const char *skip)
{
    const eg_graph *g = b->g;
    if (t == b->p->output || g->tensors[t].n_consumers != 1 || b->consumer[t] < 0 || skip[b->consumer[t]])
        return NULL;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t)
            return NULL;
    return &g->nodes[b->consumer[t]];
}

static void plan_fusion(builder *b, int ci, const char *skip, char *absorbed, conv_fuse *f)
{
    const eg_graph *g = b->g;
    plan *p = b->p;
    const eg_node *c = &g->nodes[ci];
    f->sum = -1;
    f->out = c->out[0];
    const eg_node *n = sole_reader(b, f->out, skip);
    if (n && act_of(n, p, &f->act1_alg, &f->act1_a, &f->act1_b)) {
        absorbed[n - g->nodes] = 1;
        f->out = n->out[0];
        n = sole_reader(b, f->out, skip);
    }
    if (n && n->op == OP_ADD) {
        int other = n->in[0] == f->out ? n->in[1] : n->in[0];
        const plan_tensor *o = &p->tensors[other], *me = &p->tensors[f->out];
        int prod = g->tensors[other].producer;
        int same = o->rank == me->rank && memcmp(o->dims, me->dims, sizeof(me->dims)) == 0;
        if (n->in[0] != n->in[1] && same && !o->cdata && o->dtype == ONNX_FLOAT && prod < ci) {
            absorbed[n - g->nodes] = 1;
            f->sum = other;
            f->out = n->out[0];
            n = sole_reader(b, f->out, skip);
            if (n && act_of(n, p, &f->act2_alg, &f->act2_a, &f->act2_b)) {
                absorbed[n - g->nodes] = 1;
                f->out = n->out[0];
            }
        }
    }
}

/* ---- oneDNN steps ---- */

static int conv_step(builder *b, const eg_node *n, const conv_fuse *f)
{
    plan *p = b->p;
    const plan_tensor *x = &p->tensors[n->in[0]], *w = &p->tensors[n->in[1]];
    const plan_tensor *y = &p->tensors[n->out[0]];
    int has_bias = n->n_in > 2 && n->in[2] >= 0;
    int G = n->a.group;
    eg_attrs a = n->a;
    a.kernel[0] = (int)w->dims[2];
    a.kernel[1] = (int)w->dims[3];
    a.ceil_mode = 0;
    int oh, ow, pads[4];
    eg_spatial(&a, (int)x->dims[2], (int)x->dims[3], &oh, &ow, pads);
    dnnl_dims_t sd = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
    dnnl_dims_t dd = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
    dnnl_dims_t wd = {G, w->dims[0] / G, w->dims[1], w->dims[2], w->dims[3]};
    dnnl_dims_t bd = {w->dims[0]};
    dnnl_dims_t strides = {a.stride[0], a.stride[1]}, dil = {a.dilation[0] - 1, a.dilation[1] - 1};
    dnnl_dims_t pl = {pads[0], pads[1]}, pr = {pads[2], pads[3]};
    /* ONNX floors the output size; oneDNN wants the right padding that makes the sizes exact. */
    for (int d = 0; d < 2; d++) {
        int64_t ek = (int64_t)(a.kernel[d] - 1) * a.dilation[d] + 1;
        pr[d] = (dd[2 + d] - 1) * strides[d] + ek - sd[2 + d] - pl[d];
    }
    dnnl_memory_desc_t smd, wmd, bmd, dmd, wplain;
    /* With "any", oneDNN 2.6 picks NHWC and a brgemm kernel for few-channel inputs (the RGB
     * stem), which is ~20x slower than its first-layer kernel reading plain NCHW. */
    dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32,
                                 sd[1] <= 4 && G == 1 ? dnnl_abcd : dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_format_tag_any);
    if (G == 1) {
        dnnl_dims_t wd1 = {wd[1], wd[2], wd[3], wd[4]};
        dnnl_memory_desc_init_by_tag(&wmd, 4, wd1, dnnl_f32, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&wplain, 4, wd1, dnnl_f32, dnnl_oihw);
    } else {
        dnnl_memory_desc_init_by_tag(&wmd, 5, wd, dnnl_f32, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&wplain, 5, wd, dnnl_f32, dnnl_goihw);
    }
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    /* Winograd F(4x4, 3x3) does a 3x3 stride-1 convolution in about a third fewer CPU cycles
     * on ResNets (measured, 1 thread: ResNet-18 25-28 ms per image against 34-37 ms direct,
     * ResNet-50 74-84 against 83-88; outputs within 5e-7 of ONNX Runtime's, relative), for
     * weights kept 4x larger. oneDNN has it only on some CPUs (AVX-512) and shapes; where it
     * refuses, the direct convolution is used. */
    int wino = b->winograd && G == 1 && a.kernel[0] == 3 && a.kernel[1] == 3 && strides[0] == 1 &&
               strides[1] == 1 && dil[0] == 0 && dil[1] == 0;
    dnnl_convolution_desc_t cd, cd_wino;
    DNNL_CHECK(b,
               dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                          dnnl_convolution_direct, &smd, &wmd,
                                                          has_bias ? &bmd : NULL, &dmd, strides, dil, pl, pr),
               n->name);
    wino = wino && dnnl_dilated_convolution_forward_desc_init(
                       &cd_wino, dnnl_forward_inference, dnnl_convolution_winograd, &smd, &wmd,
                       has_bias ? &bmd : NULL, &dmd, strides, dil, pl, pr) == dnnl_success;
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    DNNL_CHECK(b, dnnl_primitive_attr_create(&attr), n->name);
    if (dnnl_post_ops_create(&po) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return errf(b->err, b->errlen, EMBED_EBACKEND, "oneDNN post-ops failed for %s", n->name);
    }
    if (f->act1_alg)
        dnnl_post_ops_append_eltwise(po, 1.0f, (dnnl_alg_kind_t)f->act1_alg, f->act1_a, f->act1_b);
    if (f->sum >= 0)
        dnnl_post_ops_append_sum(po, 1.0f);
    if (f->act2_alg)
        dnnl_post_ops_append_eltwise(po, 1.0f, (dnnl_alg_kind_t)f->act2_alg, f->act2_a, f->act2_b);
    dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_unimplemented;
    if (wino)
        wino = (st = dnnl_primitive_desc_create(&pd, &cd_wino, attr, b->eng, NULL)) == dnnl_success;
    if (!wino)
        st = dnnl_primitive_desc_create(&pd, &cd, attr, b->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return errf(b->err, b->errlen, EMBED_EBACKEND, "oneDNN has no convolution for node '%s' (%d)",
                    n->name, (int)st);
    dnnl_memory_desc_t src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    dnnl_memory_desc_t w_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    void *wdata;
    int xin = ensure_md(b, n->in[0], &src_md);
    int rc = xin < 0 ? xin : const_reorder(b, w->cdata, &wplain, &w_md, &wdata);
    int wt = rc ? rc : const_tensor(b, wdata, &w_md);
    if (rc || wt < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc ? rc : wt;
    }
    set_md(p, f->out, &dst_md);
    if (f->sum >= 0) {
        /* The sum post-op adds what dst already holds: run in place on the addend when nothing
         * else reads it and its layout matches, else copy it into dst first. */
        int s = f->sum;
        dnnl_memory_desc_t smd2;
        get_md(p, s, &smd2);
        plan_tensor *st_ = &p->tensors[s];
        int inplace = st_->alias < 0 && st_->input < 0 && !st_->cdata && b->g->tensors[s].n_consumers == 1 &&
                      s != p->output && dnnl_memory_desc_equal(&smd2, &dst_md);
        for (int i = 0; inplace && i < b->g->n_outputs; i++)
            inplace = b->g->outputs[i] != s;
        if (inplace) {
            p->tensors[f->out].alias = s;
        } else if ((rc = reorder_step(b, s, f->out))) {
            dnnl_primitive_desc_destroy(pd);
            return rc;
        }
    }
    plan_step *step = add_step(b);
    if (!step) {
        dnnl_primitive_desc_destroy(pd);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    step->kind = STEP_DNNL;
    step->node = n;
    step->label = f->sum >= 0                ? (wino ? "Conv+Add(winograd)" : "Conv+Add")
                  : wino                     ? "Conv(winograd)"
                  : G > 1 && G == x->dims[1] ? "Conv(depthwise)"
                                             : "Conv";
    step->out = f->out;
    arg(step, DNNL_ARG_SRC, xin);
    arg(step, DNNL_ARG_WEIGHTS, wt);
    if (has_bias)
        arg(step, DNNL_ARG_BIAS, n->in[2]);
    arg(step, DNNL_ARG_DST, f->out);
    return finish_prim(b, step, pd, n->name);
}

static int pool_step(builder *b, const eg_node *n)
{
    plan *p = b->p;
    const plan_tensor *x = &p->tensors[n->in[0]], *y = &p->tensors[n->out[0]];
    int oh, ow, pads[4] = {0, 0, 0, 0};
    eg_attrs a = n->a;
    int global = n->op == OP_GLOBALAVGPOOL || n->op == OP_GLOBALMAXPOOL;
    if (global) {
        memset(&a, 0, sizeof(a));
        a.kernel[0] = (int)x->dims[2];
        a.kernel[1] = (int)x->dims[3];
        a.stride[0] = a.stride[1] = a.dilation[0] = a.dilation[1] = 1;
    }
    eg_spatial(&a, (int)x->dims[2], (int)x->dims[3], &oh, &ow, pads);
    dnnl_dims_t dd = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
    dnnl_dims_t strides = {a.stride[0], a.stride[1]}, kernel = {a.kernel[0], a.kernel[1]};
    dnnl_dims_t dil = {a.dilation[0] - 1, a.dilation[1] - 1}, pl = {pads[0], pads[1]}, pr;
    for (int d = 0; d < 2; d++) {
        int64_t ek = (int64_t)(a.kernel[d] - 1) * a.dilation[d] + 1;
        pr[d] = (dd[2 + d] - 1) * strides[d] + ek - x->dims[2 + d] - pl[d];
    }
    dnnl_alg_kind_t alg = n->op == OP_MAXPOOL || n->op == OP_GLOBALMAXPOOL ? dnnl_pooling_max
                          : a.count_include_pad                            ? dnnl_pooling_avg_include_padding
                                                                           : dnnl_pooling_avg_exclude_padding;
    dnnl_memory_desc_t smd, dmd;
    get_md(p, n->in[0], &smd);
    dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_format_tag_any);
    dnnl_pooling_v2_desc_t pdsc;
    DNNL_CHECK(b,
               dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &smd, &dmd, strides,
                                                 kernel, dil, pl, pr),
               n->name);
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(b, dnnl_primitive_desc_create(&pd, &pdsc, b->user_scratch, b->eng, NULL), n->name);
    set_md(p, n->out[0], dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0));
    plan_step *s = add_step(b);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    s->kind = STEP_DNNL;
    s->node = n;
    s->label = n->op_type;
    s->out = n->out[0];
    arg(s, DNNL_ARG_SRC, n->in[0]);
    arg(s, DNNL_ARG_DST, n->out[0]);
    /* Max pooling for inference needs no workspace; avg never does. */
    return finish_prim(b, s, pd, n->name);
}

static int eltwise_step(builder *b, const eg_node *n)
{
    plan *p = b->p;
    int alg;
    float lo, hi;
    act_of(n, p, &alg, &lo, &hi);
    dnnl_memory_desc_t md;
    get_md(p, n->in[0], &md);
    dnnl_eltwise_desc_t ed;
    DNNL_CHECK(b,
               dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, (dnnl_alg_kind_t)alg, &md, lo, hi),
               n->name);
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(b, dnnl_primitive_desc_create(&pd, &ed, b->user_scratch, b->eng, NULL), n->name);
    set_md(p, n->out[0], &md);
    plan_step *s = add_step(b);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    s->kind = STEP_DNNL;
    s->node = n;
    s->label = n->op_type;
    s->out = n->out[0];
    arg(s, DNNL_ARG_SRC, n->in[0]);
    arg(s, DNNL_ARG_DST, n->out[0]);
    return finish_prim(b, s, pd, n->name);
}

static int binary_step(builder *b, const eg_node *n)
{
    plan *p = b->p;
    dnnl_memory_desc_t md;
    get_md(p, n->in[0], &md);
    int b_in = ensure_md(b, n->in[1], &md);
    if (b_in < 0)
        return b_in;
    dnnl_binary_desc_t bd;
    DNNL_CHECK(b,
               dnnl_binary_desc_init(&bd, n->op == OP_ADD ? dnnl_binary_add : dnnl_binary_mul, &md, &md, &md),
               n->name);
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(b, dnnl_primitive_desc_create(&pd, &bd, b->user_scratch, b->eng, NULL), n->name);
    set_md(p, n->out[0], &md);
    plan_step *s = add_step(b);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    s->kind = STEP_DNNL;
    s->node = n;
    s->label = n->op_type;
    s->out = n->out[0];
    arg(s, DNNL_ARG_SRC_0, n->in[0]);
    arg(s, DNNL_ARG_SRC_1, b_in);
    arg(s, DNNL_ARG_DST, n->out[0]);
    return finish_prim(b, s, pd, n->name);
}

/* Gemm (transA=0, alpha=1, constant B, C absent or a constant row with beta=1) and 2-D MatMul
 * with a constant B become a oneDNN inner product. */
static int ip_ok(const plan *p, const eg_node *n)
{
    const plan_tensor *x = &p->tensors[n->in[0]], *w = &p->tensors[n->in[1]];
    if (x->rank != 2 || w->rank != 2 || !w->cdata || x->cdata || x->dtype != ONNX_FLOAT)
        return 0;
    if (n->op == OP_MATMUL)
        return 1;
    if (n->a.trans_a || n->a.alpha != 1.0f)
        return 0;
    if (n->n_in > 2 && n->in[2] >= 0) {
        const plan_tensor *c = &p->tensors[n->in[2]];
        int64_t nn = n->a.trans_b ? w->dims[0] : w->dims[1];
        if (!c->cdata || n->a.beta != 1.0f || eg_count(c->rank, c->dims) != (size_t)nn ||
            (c->rank == 2 && c->dims[0] != 1))
            return 0;
    }
    return 1;
}

static int ip_step(builder *b, const eg_node *n)
{
    plan *p = b->p;
    int xin = ensure_plain(b, n->in[0]);
    if (xin < 0)
        return xin;
    const plan_tensor *x = &p->tensors[xin], *w = &p->tensors[n->in[1]];
    int trans_b = n->op == OP_GEMM && n->a.trans_b;
    int64_t K = x->dims[1], N = trans_b ? w->dims[0] : w->dims[1];
    int has_bias = n->op == OP_GEMM && n->n_in > 2 && n->in[2] >= 0;
    dnnl_dims_t sd = {x->dims[0], K}, wd = {N, K}, dd = {x->dims[0], N}, bd = {N};
    dnnl_memory_desc_t smd, wmd, wplain, bmd, dmd;
    dnnl_memory_desc_init_by_tag(&smd, 2, sd, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&wmd, 2, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wplain, 2, wd, dnnl_f32, trans_b ? dnnl_ab : dnnl_ba);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_inner_product_desc_t ipd;
    DNNL_CHECK(b,
               dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, &smd, &wmd,
                                                    has_bias ? &bmd : NULL, &dmd),
               n->name);
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(b, dnnl_primitive_desc_create(&pd, &ipd, b->user_scratch, b->eng, NULL), n->name);
    dnnl_memory_desc_t w_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    void *wdata;
    int rc = const_reorder(b, w->cdata, &wplain, &w_md, &wdata);
    int wt = rc ? rc : const_tensor(b, wdata, &w_md);
    if (rc || wt < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc ? rc : wt;
    }
    int bias = -1;
    if (has_bias) {
        bias = add_tensor(b);
        if (bias < 0) {
            dnnl_primitive_desc_destroy(pd);
            return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
        }
        plan_tensor *bt = &p->tensors[bias];
        bt->dtype = ONNX_FLOAT;
        bt->rank = 1;
        bt->dims[0] = N;
        bt->cdata = p->tensors[n->in[2]].cdata;
    }
    set_md(p, n->out[0], &dmd);
    plan_step *s = add_step(b);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    s->kind = STEP_DNNL;
    s->node = n;
    s->label = n->op_type;
    s->out = n->out[0];
    arg(s, DNNL_ARG_SRC, xin);
    arg(s, DNNL_ARG_WEIGHTS, wt);
    if (bias >= 0)
        arg(s, DNNL_ARG_BIAS, bias);
    arg(s, DNNL_ARG_DST, n->out[0]);
    return finish_prim(b, s, pd, n->name);
}

static int is_view_op(int op)
{
    return op == OP_IDENTITY || op == OP_FLATTEN || op == OP_RESHAPE || op == OP_SQUEEZE ||
           op == OP_UNSQUEEZE;
}

static int ref_step(builder *b, const eg_node *n)
{
    plan *p = b->p;
    int *ins = calloc((size_t)n->n_in + 1, sizeof(int));
    if (!ins)
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    for (int i = 0; i < n->n_in; i++) {
        ins[i] = n->in[i] < 0 ? -1 : ensure_plain(b, n->in[i]);
        if (n->in[i] >= 0 && ins[i] < 0) {
            int rc = ins[i];
            free(ins);
            return rc;
        }
    }
    plan_tensor *y = &p->tensors[n->out[0]];
    y->bytes = eg_count(y->rank, y->dims) * esize(y->dtype);
    if (is_view_op(n->op)) {
        plan_tensor *x = &p->tensors[ins[0]];
        if (x->cdata)
            y->cdata = x->cdata;
        else if (x->input >= 0)
            y->input = x->input;
        else
            y->alias = ins[0];
        free(ins);
        return 0;
    }
    plan_step *s = add_step(b);
    if (!s) {
        free(ins);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    s->kind = STEP_REF;
    s->node = n;
    s->label = n->op_type;
    s->n_in = n->n_in;
    s->in = ins;
    s->out = n->out[0];
    return 0;
}

static int fast_op(const plan *p, const eg_node *n)
{
    const plan_tensor *x = &p->tensors[n->in[0]];
    if (x->dtype != ONNX_FLOAT || x->cdata)
        return 0;
    switch (n->op) {
    case OP_CONV:
        return 1;
    case OP_MAXPOOL:
    case OP_AVGPOOL: {
        if (n->op == OP_AVGPOOL && n->a.count_include_pad && n->a.ceil_mode)
            return 0;
        return 1;
    }
    case OP_GLOBALAVGPOOL:
    case OP_GLOBALMAXPOOL:
        return x->rank == 4;
    case OP_RELU:
    case OP_CLIP: {
        int alg;
        float lo, hi;
        return act_of(n, p, &alg, &lo, &hi);
    }
    case OP_ADD:
    case OP_MUL: {
        const plan_tensor *y = &p->tensors[n->in[1]];
        return x->rank == 4 && y->rank == 4 && !y->cdata && y->dtype == ONNX_FLOAT &&
               memcmp(x->dims, y->dims, sizeof(x->dims)) == 0;
    }
    case OP_GEMM:
    case OP_MATMUL:
        return ip_ok(p, n);
    default:
        return 0;
    }
}

/* ---- shapes and folding ---- */

static int foldable(int op)
{
    switch (op) {
    case OP_SHAPE:
    case OP_GATHER:
    case OP_UNSQUEEZE:
    case OP_SQUEEZE:
    case OP_CONCAT:
    case OP_CAST:
    case OP_RESHAPE:
    case OP_FLATTEN:
    case OP_IDENTITY:
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        return 1;
    default:
        return 0;
    }
}

static int view_of(const plan *p, int id, eg_view *v)
{
    const plan_tensor *t = &p->tensors[id];
    v->dtype = t->dtype;
    v->rank = t->rank;
    memcpy(v->dims, t->dims, sizeof(v->dims));
    v->data = t->cdata;
    return 0;
}

static int infer_node(builder *b, const eg_node *n, int *folded)
{
    plan *p = b->p;
    eg_view stack_ins[8], *ins = stack_ins, outs[2];
    int rc = 0;
    if (n->n_in > 8 && !(ins = calloc((size_t)n->n_in, sizeof(eg_view))))
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    int all_const = 1;
    for (int i = 0; i < n->n_in; i++) {
        memset(&ins[i], 0, sizeof(ins[i]));
        if (n->in[i] < 0)
            continue;
        view_of(p, n->in[i], &ins[i]);
        if (!ins[i].data)
            all_const = 0;
    }
    memset(outs, 0, sizeof(outs));
    if ((rc = eg_infer(b->g, n, ins, outs, b->err, b->errlen)))
        goto done;
    size_t count = 1;
    for (int i = 0; i < outs[0].rank; i++) {
        if (outs[0].dims[i] < 0 ||
            (outs[0].dims[i] > 0 && count > EMBED_MAX_TENSOR_BYTES / 8 / (size_t)outs[0].dims[i])) {
            rc = errf(b->err, b->errlen, EMBED_ETOOLARGE, "%s node '%s': output too large", n->op_type,
                      n->name);
            goto done;
        }
        count *= (size_t)outs[0].dims[i];
    }
    plan_tensor *y = &p->tensors[n->out[0]];
    y->dtype = outs[0].dtype;
    y->rank = outs[0].rank;
    memcpy(y->dims, outs[0].dims, sizeof(y->dims));
    y->bytes = count * esize(y->dtype);
    *folded = 0;
    if ((all_const || n->op == OP_SHAPE) && foldable(n->op) &&
        (count <= FOLD_MAX_ELEMS || n->op == OP_SHAPE)) {
        void *d = own(p, y->bytes ? y->bytes : 8);
        if (!d) {
            rc = errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
            goto done;
        }
        outs[0].data = d;
        if ((rc = eg_ref_run(n, ins, outs, b->err, b->errlen)))
            goto done;
        y->cdata = d;
        *folded = 1;
    }
done:
    if (ins != stack_ins)
        free(ins);
    return rc;
}

/* ---- memory plan ---- */

static int memory_plan(builder *b)
{
    plan *p = b->p;
    for (int i = 0; i < p->n_tensors; i++) {
        p->tensors[i].first = -1;
        p->tensors[i].last = -1;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const plan_step *st = &p->steps[s];
        int ids[4097], k = 0;
        if (st->kind == STEP_REF) {
            for (int i = 0; i < st->n_in && k < 4096; i++)
                if (st->in[i] >= 0)
                    ids[k++] = st->in[i];
        } else {
            for (int i = 0; i < st->n_args; i++)
                if (st->arg_tensor[i] != st->out)
                    ids[k++] = st->arg_tensor[i];
        }
        for (int i = 0; i < k; i++) {
            plan_tensor *r = &p->tensors[root(p, ids[i])];
            if (r->last < s)
                r->last = s;
        }
        plan_tensor *r = &p->tensors[root(p, st->out)];
        if (r->first < 0 || r->first > s)
            r->first = s;
        if (r->last < s)
            r->last = s;
    }
    p->tensors[root(p, p->output)].last = p->n_steps;
    /* Roots share bytes with their aliases: size each root for the largest view. */
    for (int i = 0; i < p->n_tensors; i++) {
        int r = root(p, i);
        if (r != i && p->tensors[r].bytes < p->tensors[i].bytes)
            p->tensors[r].bytes = p->tensors[i].bytes;
    }
    int n_slots = 0, *slot_of = malloc((size_t)p->n_tensors * sizeof(int));
    size_t *slot_size = calloc((size_t)p->n_tensors + 1, sizeof(size_t));
    char *slot_busy = calloc((size_t)p->n_tensors + 1, 1);
    if (!slot_of || !slot_size || !slot_busy) {
        free(slot_of);
        free(slot_size);
        free(slot_busy);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    /* Tensors bucketed by the step that writes them and the step that last reads them, so the
     * walk is linear in steps plus tensors. */
    int *by_first = malloc(((size_t)p->n_tensors + 1) * sizeof(int)),
        *by_last = malloc(((size_t)p->n_tensors + 1) * sizeof(int));
    int *start_f = calloc((size_t)p->n_steps + 2, sizeof(int)),
        *start_l = calloc((size_t)p->n_steps + 2, sizeof(int));
    if (!by_first || !by_last || !start_f || !start_l) {
        free(by_first);
        free(by_last);
        free(start_f);
        free(start_l);
        free(slot_of);
        free(slot_size);
        free(slot_busy);
        return errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    }
    for (int i = 0; i < p->n_tensors; i++) {
        const plan_tensor *t = &p->tensors[i];
        slot_of[i] = -1;
        if (t->alias >= 0 || t->cdata || t->input >= 0 || t->first < 0 || t->first >= p->n_steps)
            continue;
        start_f[t->first + 1]++;
        start_l[(t->last < p->n_steps ? t->last : p->n_steps) + 1]++;
    }
    for (int s = 0; s <= p->n_steps; s++) {
        start_f[s + 1] += start_f[s];
        start_l[s + 1] += start_l[s];
    }
    for (int i = 0; i < p->n_tensors; i++) {
        const plan_tensor *t = &p->tensors[i];
        if (t->alias >= 0 || t->cdata || t->input >= 0 || t->first < 0 || t->first >= p->n_steps)
            continue;
        by_first[start_f[t->first]++] = i;
        by_last[start_l[t->last < p->n_steps ? t->last : p->n_steps]++] = i;
    }
    /* start_x[s] now points past bucket s; bucket s begins where bucket s-1 ended. */
    for (int s = 0, fi = 0, li = 0; s < p->n_steps; s++) {
        for (; fi < start_f[s]; fi++) {
            int i = by_first[fi];
            size_t need = (p->tensors[i].bytes + 63) & ~(size_t)63;
            int best = -1;
            for (int k = 0; k < n_slots; k++) {
                if (slot_busy[k])
                    continue;
                /* Best fit among slots big enough, else the biggest free slot (it grows). */
                if (best < 0 ||
                    (slot_size[k] >= need && (slot_size[best] < need || slot_size[k] < slot_size[best])) ||
                    (slot_size[best] < need && slot_size[k] > slot_size[best]))
                    best = k;
            }
            if (best < 0)
                best = n_slots++;
            if (slot_size[best] < need)
                slot_size[best] = need;
            slot_busy[best] = 1;
            slot_of[i] = best;
        }
        for (; li < start_l[s]; li++)
            slot_busy[slot_of[by_last[li]]] = 0;
    }
    free(by_first);
    free(by_last);
    free(start_f);
    free(start_l);
    size_t off = 0, *slot_off = calloc((size_t)n_slots + 1, sizeof(size_t));
    int rc = 0;
    if (!slot_off) {
        rc = errf(b->err, b->errlen, EMBED_ENOMEM, "out of memory");
    } else {
        for (int k = 0; k < n_slots; k++) {
            slot_off[k] = off;
            if (slot_size[k] > EMBED_MAX_TENSOR_BYTES || off > (size_t)1 << 36) {
                rc = errf(b->err, b->errlen, EMBED_ETOOLARGE, "plan: arena too large");
                break;
            }
            off += slot_size[k];
        }
        for (int i = 0; i < p->n_tensors; i++)
            if (slot_of[i] >= 0)
                p->tensors[i].offset = slot_off[slot_of[i]];
        p->arena_bytes = off;
    }
    free(slot_off);
    free(slot_of);
    free(slot_size);
    free(slot_busy);
    return rc;
}

/* ---- compile ---- */

plan *plan_compile(const eg_graph *g, dnnl_engine_t eng, const plan_input *inputs, int n_inputs, int output,
                   int flags, char *err, size_t errlen, int *rcp)
{
    int reference = flags & PLAN_REFERENCE;
    builder b = {g, eng, NULL, 0, 0, NULL, NULL, !(flags & PLAN_NO_WINOGRAD), err, errlen};
    char *need = NULL, *folded = NULL, *absorbed = NULL;
    conv_fuse *fuse = NULL;
    int rc = EMBED_ENOMEM;
    plan *p = calloc(1, sizeof(*p));
    if (!p)
        goto oom;
    b.p = p;
    p->output = output;
    p->reference = reference;
    b.cap_tensors = g->n_tensors + 64;
    p->tensors = calloc((size_t)b.cap_tensors, sizeof(plan_tensor));
    p->inputs = calloc((size_t)n_inputs + 1, sizeof(int));
    b.consumer = malloc((size_t)g->n_tensors * sizeof(int));
    need = calloc((size_t)g->n_nodes + 1, 1);
    folded = calloc((size_t)g->n_nodes + 1, 1);
    absorbed = calloc((size_t)g->n_nodes + 1, 1);
    fuse = calloc((size_t)g->n_nodes + 1, sizeof(conv_fuse));
    if (!p->tensors || !p->inputs || !b.consumer || !need || !folded || !absorbed || !fuse)
        goto oom;
    if (dnnl_primitive_attr_create(&b.user_scratch) != dnnl_success)
        goto oom;
    dnnl_primitive_attr_set_scratchpad_mode(b.user_scratch, dnnl_scratchpad_mode_user);
    p->n_tensors = g->n_tensors;
    for (int i = 0; i < g->n_tensors; i++) {
        const eg_tensor *gt = &g->tensors[i];
        plan_tensor *t = &p->tensors[i];
        t->dtype = gt->dtype;
        t->rank = gt->data ? gt->rank : -1;
        memcpy(t->dims, gt->dims, sizeof(t->dims));
        t->cdata = gt->data;
        t->input = -1;
        t->alias = -1;
        b.consumer[i] = -1;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0 && g->nodes[i].op != OP_NONE)
                b.consumer[g->nodes[i].in[k]] = i;
    for (int k = 0; k < n_inputs; k++) {
        plan_tensor *t = &p->tensors[inputs[k].tensor];
        t->rank = inputs[k].rank;
        memcpy(t->dims, inputs[k].dims, sizeof(t->dims));
        t->dtype = inputs[k].dtype;
        if (inputs[k].cdata) {
            t->cdata = (void *)inputs[k].cdata;
        } else {
            t->input = p->n_inputs;
            p->inputs[p->n_inputs++] = inputs[k].tensor;
        }
        t->bytes = eg_count(t->rank, t->dims) * esize(t->dtype);
    }
    if (g->tensors[output].folded) {
        rc = errf(err, errlen, g->tensors[output].folded == 1 ? EMBED_EINVAL : EMBED_EUNSUPPORTED,
                  g->tensors[output].folded == 1
                      ? "tensor '%s' was folded away at load (ask for the BatchNormalization output instead)"
                      : "tensor '%s' is a Dropout mask; masks are not supported",
                  g->tensors[output].name);
        goto fail;
    }
    /* Only the nodes the requested tensor depends on. */
    char *tneed = calloc((size_t)g->n_tensors, 1);
    if (!tneed)
        goto oom;
    tneed[output] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const eg_node *n = &g->nodes[i];
        if (n->op == OP_NONE || n->op == OP_CONSTANT)
            continue;
        int any = 0;
        for (int k = 0; k < n->n_out; k++)
            any |= n->out[k] >= 0 && tneed[n->out[k]];
        if (!any)
            continue;
        need[i] = 1;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                tneed[n->in[k]] = 1;
    }
    for (int i = 0; i < g->n_tensors; i++)
        if (tneed[i] && g->tensors[i].producer < 0 && p->tensors[i].rank < 0 && !p->tensors[i].cdata) {
            rc = errf(err, errlen, EMBED_EINVAL, "input '%s' has no shape bound", g->tensors[i].name);
            free(tneed);
            goto fail;
        }
    free(tneed);
    for (int i = 0; i < g->n_nodes; i++) {
        if (!need[i])
            continue;
        int f = 0;
        if ((rc = infer_node(&b, &g->nodes[i], &f)))
            goto fail;
        folded[i] = (char)f;
    }
    const plan_tensor *ot = &p->tensors[output];
    if (ot->dtype != ONNX_FLOAT) {
        rc = errf(err, errlen, EMBED_EUNSUPPORTED,
                  "tensor '%s' is not float (integer outputs are not supported)", g->tensors[output].name);
        goto fail;
    }
    if (!reference)
        for (int i = 0; i < g->n_nodes; i++)
            if (need[i] && !folded[i] && !absorbed[i] && g->nodes[i].op == OP_CONV)
                plan_fusion(&b, i, folded, absorbed, &fuse[i]);
    for (int i = 0; i < g->n_nodes; i++) {
        const eg_node *n = &g->nodes[i];
        if (!need[i] || folded[i] || absorbed[i])
            continue;
        if (reference || !fast_op(p, n))
            rc = ref_step(&b, n);
        else if (n->op == OP_CONV)
            rc = conv_step(&b, n, &fuse[i]);
        else if (n->op == OP_MAXPOOL || n->op == OP_AVGPOOL || n->op == OP_GLOBALAVGPOOL ||
                 n->op == OP_GLOBALMAXPOOL)
            rc = pool_step(&b, n);
        else if (n->op == OP_RELU || n->op == OP_CLIP)
            rc = eltwise_step(&b, n);
        else if (n->op == OP_ADD || n->op == OP_MUL)
            rc = binary_step(&b, n);
        else
            rc = ip_step(&b, n);
        if (rc < 0)
            goto fail;
        rc = 0;
    }
    if ((rc = memory_plan(&b)))
        goto fail;
    ot = &p->tensors[output];
    if (ot->blocked && !ot->cdata) {
        dnnl_memory_desc_t pl;
        plain_md(ot, &pl);
        dnnl_primitive_desc_t pd;
        if (dnnl_reorder_primitive_desc_create(&pd, &ot->md, eng, &pl, eng, b.user_scratch) != dnnl_success) {
            rc = errf(err, errlen, EMBED_EBACKEND, "oneDNN: no reorder for the output");
            goto fail;
        }
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (smd && dnnl_memory_desc_get_size(smd) > 0) {
            p->out_scratch_md = *smd;
            p->out_scratch_bytes = dnnl_memory_desc_get_size(smd);
            if (p->out_scratch_bytes > p->scratch_bytes)
                p->scratch_bytes = p->out_scratch_bytes;
        }
        dnnl_status_t st = dnnl_primitive_create(&p->out_reorder, pd);
        dnnl_primitive_desc_destroy(pd);
        if (st != dnnl_success) {
            rc = errf(err, errlen, EMBED_EBACKEND, "oneDNN: no reorder for the output");
            goto fail;
        }
    }
    p->batch = n_inputs > 0 && inputs[0].rank > 0 ? (int)inputs[0].dims[0] : 1;
    dnnl_primitive_attr_destroy(b.user_scratch);
    free(b.consumer);
    free(need);
    free(folded);
    free(absorbed);
    free(fuse);
    return p;
oom:
    rc = errf(err, errlen, EMBED_ENOMEM, "out of memory");
fail:
    if (b.user_scratch)
        dnnl_primitive_attr_destroy(b.user_scratch);
    free(b.consumer);
    free(need);
    free(folded);
    free(absorbed);
    free(fuse);
    plan_free(p);
    *rcp = rc;
    return NULL;
}

void plan_free(plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_steps; i++) {
        if (p->steps[i].prim)
            dnnl_primitive_destroy(p->steps[i].prim);
        free(p->steps[i].in);
    }
    if (p->out_reorder)
        dnnl_primitive_destroy(p->out_reorder);
    for (int i = 0; i < p->n_owned; i++)
        free(p->owned[i]);
    free(p->owned);
    free(p->steps);
    free(p->tensors);
    free(p->inputs);
    free(p);
}

size_t plan_output_count(const plan *p)
{
    const plan_tensor *t = &p->tensors[p->output];
    return eg_count(t->rank, t->dims);
}
