/* Execution plans and per-thread contexts (plan.c builds, exec.c runs, model.c caches).
 *
 * A plan is compiled for concrete input shapes and one requested tensor. Plan tensor i mirrors
 * graph tensor i for i < graph n_tensors; temporaries (layout reorders, reordered weights)
 * follow. Every run-time tensor gets a slot, and slots share arena bytes by liveness: slot
 * offsets are fixed at compile time, so a context allocates its arena once and a run
 * allocates nothing. A plan is immutable once compiled and shared by all contexts.
 */
#ifndef EMBED_PLAN_H
#define EMBED_PLAN_H

#include "embed/graph.h"

#include <dnnl.h>
#include <stdio.h>

typedef struct plan_tensor {
    int dtype, rank;
    int64_t dims[EG_MAX_RANK];
    void *cdata;     /* constant payload (graph's or plan-owned), else NULL */
    int input;       /* index into the run's input pointers, or -1 */
    int alias;       /* tensor whose storage this one shares, or -1 */
    int blocked;     /* laid out as md (a oneDNN blocked format), not plain row-major */
    int used;        /* part of the plan */
    int first, last; /* liveness: step that writes it, last step that reads it */
    size_t bytes;
    size_t offset; /* in the context arena (roots of run-time tensors only) */
    dnnl_memory_desc_t md;
} plan_tensor;

enum { STEP_REF, STEP_DNNL };

#define STEP_MAX_ARGS 6

typedef struct plan_step {
    int kind;
    const eg_node *node; /* STEP_REF: the node to run; STEP_DNNL: for profiles (NULL for reorders) */
    const char *label;   /* op name for profiles */
    int n_in;
    int *in; /* plan tensor ids (STEP_REF) */
    int out;
    dnnl_primitive_t prim;
    int n_args;
    int arg_kind[STEP_MAX_ARGS];
    int arg_tensor[STEP_MAX_ARGS];
    dnnl_memory_desc_t scratch_md; /* the primitive's scratchpad, in the context's scratch buffer */
    size_t scratch_bytes;
} plan_step;

typedef struct plan {
    int batch;
    int threads; /* OpenMP threads the primitives were created for (plan cache key) */
    int output;  /* requested tensor (plan/graph id) */
    int reference;
    int n_tensors, n_steps;
    plan_tensor *tensors;
    plan_step *steps;
    size_t arena_bytes;
    int n_inputs;
    int *inputs;  /* graph input tensor ids, in run order */
    void **owned; /* plan-owned buffers (folded constants), freed with the plan */
    int n_owned, cap_owned;
    dnnl_primitive_t out_reorder; /* blocked output to plain, or NULL */
    dnnl_memory_desc_t out_scratch_md;
    size_t out_scratch_bytes;
    size_t scratch_bytes; /* largest scratchpad of any step: one buffer per context serves all */
    struct plan *next;    /* model's plan cache list */
} plan;

typedef struct plan_input {
    int tensor; /* graph tensor id */
    int rank;
    int64_t dims[EG_MAX_RANK];
    const void *cdata; /* bind as a constant (integer inputs of conformance tests), or NULL */
    int dtype;
} plan_input;

/* plan_compile() flags. */
enum {
    PLAN_REFERENCE = 1,   /* plain C kernels only */
    PLAN_NO_WINOGRAD = 2, /* direct convolution only (see conv_step in plan.c) */
};

/* Compile a plan. `inputs` gives every graph input's concrete shape; flags is a set of PLAN_*.
 * NULL on error. */
plan *plan_compile(const eg_graph *g, dnnl_engine_t eng, const plan_input *inputs, int n_inputs, int output,
                   int flags, char *err, size_t errlen, int *rc);
void plan_free(plan *p);

/* Per-context state for one plan: its arena and oneDNN memory objects. */
typedef struct ctx_plan {
    const plan *p;
    unsigned char *arena;
    dnnl_memory_t *mem; /* per plan tensor, NULL where no oneDNN step touches it */
    dnnl_memory_t out_mem;
    unsigned char *scratch;
    dnnl_memory_t *scratch_mem; /* per step, NULL where the step needs none */
    dnnl_memory_t out_scratch_mem;
    double *prof; /* seconds per step, summed over runs, when profiling */
    int runs;
    struct ctx_plan *next;
} ctx_plan;

typedef struct exec_ctx {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int threads;
    ctx_plan *plans;
    int profiling; /* time every step (EMBED_PROFILE=1) */
} exec_ctx;

int exec_ctx_init(exec_ctx *c, dnnl_engine_t eng, int threads, char *err, size_t errlen);
void exec_ctx_release(exec_ctx *c);
/* Run plan p with one pointer per plan input; copy the output (plain, row-major) to out. */
int exec_run(exec_ctx *c, const plan *p, const void *const *inputs, float *out, size_t out_cap, char *err,
             size_t errlen);
/* Per-op time summary of every plan this context ran (profiling only). */
void exec_profile_print(const exec_ctx *c, FILE *f);
/* Output element count of a plan. */
size_t plan_output_count(const plan *p);

#endif
