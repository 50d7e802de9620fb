/* Running a compiled plan in a per-thread context: the arena and oneDNN memory objects are
 * made on a context's first run of a plan and reused afterwards, so runs allocate nothing. */
#include "embed/plan.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int exec_ctx_init(exec_ctx *c, dnnl_engine_t eng, int threads, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->eng = eng;
    c->threads = threads;
    if (dnnl_stream_create(&c->stream, eng, dnnl_stream_default_flags) != dnnl_success)
        return errf(err, errlen, EMBED_EBACKEND, "oneDNN: cannot create a stream");
    return 0;
}

static void ctx_plan_free(ctx_plan *cp)
{
    if (cp->mem)
        for (int i = 0; i < cp->p->n_tensors; i++)
            if (cp->mem[i])
                dnnl_memory_destroy(cp->mem[i]);
    if (cp->out_mem)
        dnnl_memory_destroy(cp->out_mem);
    if (cp->scratch_mem)
        for (int i = 0; i < cp->p->n_steps; i++)
            if (cp->scratch_mem[i])
                dnnl_memory_destroy(cp->scratch_mem[i]);
    if (cp->out_scratch_mem)
        dnnl_memory_destroy(cp->out_scratch_mem);
    free(cp->scratch_mem);
    free(cp->scratch);
    free(cp->mem);
    free(cp->prof);
    free(cp->arena);
    free(cp);
}

void exec_ctx_release(exec_ctx *c)
{
    ctx_plan *cp = c->plans;
    while (cp) {
        ctx_plan *next = cp->next;
        ctx_plan_free(cp);
        cp = next;
    }
    if (c->stream)
        dnnl_stream_destroy(c->stream);
    memset(c, 0, sizeof(*c));
}

static int root(const plan *p, int id)
{
    while (p->tensors[id].alias >= 0)
        id = p->tensors[id].alias;
    return id;
}

static void *tptr(const plan *p, const ctx_plan *cp, const void *const *inputs, int id)
{
    const plan_tensor *t = &p->tensors[root(p, id)];
    if (t->cdata)
        return t->cdata;
    if (t->input >= 0)
        return (void *)inputs[t->input];
    return cp->arena + t->offset;
}

static void tensor_md(const plan_tensor *t, dnnl_memory_desc_t *md)
{
    static const dnnl_format_tag_t tags[] = {dnnl_a,    dnnl_a,     dnnl_ab,     dnnl_abc,
                                             dnnl_abcd, dnnl_abcde, dnnl_abcdef, dnnl_abcdefg};
    if (t->blocked) {
        *md = t->md;
        return;
    }
    dnnl_dims_t dims;
    int rank = t->rank ? t->rank : 1;
    for (int i = 0; i < rank; i++)
        dims[i] = t->rank ? t->dims[i] : 1;
    dnnl_memory_desc_init_by_tag(md, rank, dims, dnnl_f32, tags[rank < 8 ? rank : 7]);
}

static ctx_plan *ctx_plan_get(exec_ctx *c, const plan *p, const void *const *inputs, char *err, size_t errlen)
{
    for (ctx_plan *cp = c->plans; cp; cp = cp->next)
        if (cp->p == p)
            return cp;
    ctx_plan *cp = calloc(1, sizeof(*cp));
    if (!cp) {
        errf(err, errlen, EMBED_ENOMEM, "out of memory");
        return NULL;
    }
    cp->p = p;
    cp->mem = calloc((size_t)p->n_tensors, sizeof(dnnl_memory_t));
    cp->prof = calloc((size_t)p->n_steps + 1, sizeof(double));
    cp->arena = aligned_alloc(64, p->arena_bytes ? p->arena_bytes : 64);
    cp->scratch_mem = calloc((size_t)p->n_steps + 1, sizeof(dnnl_memory_t));
    cp->scratch =
        aligned_alloc(64, (p->scratch_bytes + 63) & ~(size_t)63 ? (p->scratch_bytes + 63) & ~(size_t)63 : 64);
    if (!cp->mem || !cp->prof || !cp->arena || !cp->scratch_mem || !cp->scratch) {
        errf(err, errlen, EMBED_ENOMEM, "out of memory for a %zu-byte arena", p->arena_bytes);
        goto fail;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const plan_step *st = &p->steps[s];
        if (st->scratch_bytes &&
            dnnl_memory_create(&cp->scratch_mem[s], &st->scratch_md, c->eng, cp->scratch) != dnnl_success) {
            errf(err, errlen, EMBED_EBACKEND, "oneDNN: cannot create a scratchpad");
            goto fail;
        }
        for (int i = 0; i < st->n_args; i++) {
            int id = st->arg_tensor[i];
            if (cp->mem[id])
                continue;
            dnnl_memory_desc_t md;
            tensor_md(&p->tensors[id], &md);
            if (dnnl_memory_create(&cp->mem[id], &md, c->eng, tptr(p, cp, inputs, id)) != dnnl_success) {
                errf(err, errlen, EMBED_EBACKEND, "oneDNN: cannot create a memory object");
                goto fail;
            }
        }
    }
    if (p->out_scratch_bytes &&
        dnnl_memory_create(&cp->out_scratch_mem, &p->out_scratch_md, c->eng, cp->scratch) != dnnl_success) {
        errf(err, errlen, EMBED_EBACKEND, "oneDNN: cannot create a scratchpad");
        goto fail;
    }
    if (p->out_reorder) {
        dnnl_memory_desc_t md;
        const plan_tensor *t = &p->tensors[p->output];
        plan_tensor plain = *t;
        plain.blocked = 0;
        tensor_md(&plain, &md);
        if (dnnl_memory_create(&cp->out_mem, &md, c->eng, DNNL_MEMORY_NONE) != dnnl_success ||
            (!cp->mem[p->output] &&
             (tensor_md(t, &md), dnnl_memory_create(&cp->mem[p->output], &md, c->eng,
                                                    tptr(p, cp, inputs, p->output))) != dnnl_success)) {
            errf(err, errlen, EMBED_EBACKEND, "oneDNN: cannot create a memory object");
            goto fail;
        }
    }
    cp->next = c->plans;
    c->plans = cp;
    return cp;
fail:
    ctx_plan_free(cp);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int exec_run(exec_ctx *c, const plan *p, const void *const *inputs, float *out, size_t out_cap, char *err,
             size_t errlen)
{
    size_t count = plan_output_count(p);
    if (out_cap < count)
        return errf(err, errlen, EMBED_ETOOLARGE, "output buffer holds %zu floats, %zu needed", out_cap,
                    count);
    ctx_plan *cp = ctx_plan_get(c, p, inputs, err, errlen);
    if (!cp)
        return EMBED_ENOMEM;
    if (c->threads > 0)
        omp_set_num_threads(c->threads);
    eg_view stack_views[9], *views = stack_views;
    int cap_views = 8;
    for (int s = 0; s < p->n_steps; s++) {
        const plan_step *st = &p->steps[s];
        double t0 = c->profiling ? now() : 0;
        if (st->kind == STEP_DNNL) {
            dnnl_exec_arg_t args[STEP_MAX_ARGS + 1];
            int n_args = st->n_args;
            for (int i = 0; i < st->n_args; i++) {
                int id = st->arg_tensor[i];
                const plan_tensor *t = &p->tensors[root(p, id)];
                if (t->input >= 0)
                    dnnl_memory_set_data_handle(cp->mem[id], (void *)inputs[t->input]);
                args[i].arg = st->arg_kind[i];
                args[i].memory = cp->mem[id];
            }
            if (cp->scratch_mem[s]) {
                args[n_args].arg = DNNL_ARG_SCRATCHPAD;
                args[n_args++].memory = cp->scratch_mem[s];
            }
            if (dnnl_primitive_execute(st->prim, c->stream, n_args, args) != dnnl_success)
                return errf(err, errlen, EMBED_EBACKEND, "oneDNN: step %d (%s) failed", s, st->label);
        } else {
            if (st->n_in > cap_views) {
                if (views != stack_views)
                    free(views);
                /* Only graphs with ops of more than 8 inputs (wide Concat) get here. */
                views = calloc((size_t)st->n_in + 1, sizeof(eg_view));
                if (!views)
                    return errf(err, errlen, EMBED_ENOMEM, "out of memory");
                cap_views = st->n_in;
            }
            for (int i = 0; i < st->n_in; i++) {
                memset(&views[i], 0, sizeof(views[i]));
                if (st->in[i] < 0)
                    continue;
                const plan_tensor *t = &p->tensors[st->in[i]];
                views[i].dtype = t->dtype;
                views[i].rank = t->rank;
                memcpy(views[i].dims, t->dims, sizeof(t->dims));
                views[i].data = tptr(p, cp, inputs, st->in[i]);
            }
            eg_view out;
            const plan_tensor *t = &p->tensors[st->out];
            out.dtype = t->dtype;
            out.rank = t->rank;
            memcpy(out.dims, t->dims, sizeof(t->dims));
            out.data = tptr(p, cp, inputs, st->out);
            int rc = eg_ref_run(st->node, views, &out, err, errlen);
            if (rc) {
                if (views != stack_views)
                    free(views);
                return rc;
            }
        }
        if (c->profiling) {
            dnnl_stream_wait(c->stream);
            cp->prof[s] += now() - t0;
        }
    }
    if (views != stack_views)
        free(views);
    dnnl_stream_wait(c->stream);
    if (p->out_reorder) {
        dnnl_memory_set_data_handle(cp->out_mem, out);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, cp->mem[p->output]},
                                   {DNNL_ARG_TO, cp->out_mem},
                                   {DNNL_ARG_SCRATCHPAD, cp->out_scratch_mem}};
        if (dnnl_primitive_execute(p->out_reorder, c->stream, cp->out_scratch_mem ? 3 : 2, args) !=
            dnnl_success)
            return errf(err, errlen, EMBED_EBACKEND, "oneDNN: output reorder failed");
        dnnl_stream_wait(c->stream);
    } else {
        memcpy(out, tptr(p, cp, inputs, p->output), count * sizeof(float));
    }
    cp->runs++;
    return 0;
}

void exec_profile_print(const exec_ctx *c, FILE *f)
{
    for (const ctx_plan *cp = c->plans; cp; cp = cp->next) {
        const plan *p = cp->p;
        if (!cp->runs)
            continue;
        double total = 0;
        for (int s = 0; s < p->n_steps; s++)
            total += cp->prof[s];
        fprintf(f, "embed profile: batch %d, %d runs, %.3f ms/run, %d steps\n", p->batch, cp->runs,
                total * 1e3 / cp->runs, p->n_steps);
        /* Aggregate by label, in order of first appearance. */
        char *done = calloc((size_t)p->n_steps + 1, 1);
        if (!done)
            return;
        for (int s = 0; s < p->n_steps; s++) {
            if (done[s])
                continue;
            double t = 0;
            int n = 0;
            for (int k = s; k < p->n_steps; k++)
                if (!done[k] && strcmp(p->steps[k].label, p->steps[s].label) == 0) {
                    t += cp->prof[k];
                    n++;
                    done[k] = 1;
                }
            fprintf(f, "  %-18s %4d steps %9.3f ms/run %5.1f%%\n", p->steps[s].label, n, t * 1e3 / cp->runs,
                    total > 0 ? 100.0 * t / total : 0.0);
        }
        free(done);
    }
}
