/* The public model API: load, plan cache, context pool, runs. */
#include "embed/model_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PLANS 64

struct embed_model {
    eg_graph *g;
    dnnl_engine_t eng;
    int threads, reference, profiling;
    int plan_flags; /* PLAN_* for every plan */
    int input;      /* graph tensor id of the image input, -1 when the graph has none */
    int in_c, in_h, in_w;
    const char *default_output;
    pthread_mutex_t mu; /* guards plans and pool */
    plan *plans;
    int n_plans;
    embed_ctx *pool;
};

/* A batch of two or more samples runs one sample at a time through the single-threaded
 * batch-1 plan, the samples dealt out to the caller and this context's workers as each
 * becomes free (an atomic counter), so a core taken by other work slows only its share and no
 * barrier sits inside the network, where oneDNN's per-layer OpenMP barriers cost most on
 * shared cores. One sample at a time keeps the activations of a layer in cache: measured
 * (CPU time per image, 1 thread) MobileNet 7.3 ms at batch 1 against 8.4 ms at batch 8, the
 * ResNets within 3% either way; and one weight copy serves every batch size. Batch 1 uses
 * OpenMP threads inside each layer. */
typedef struct batch_job {
    const plan *p; /* batch 1, single-threaded */
    const float *input;
    size_t per_in, per_out;
    float *out;
    int batch;
    atomic_int next;   /* next sample to take */
    atomic_int failed; /* set by the first failure: the others stop taking samples */
} batch_job;

typedef struct worker {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    exec_ctx x; /* single-threaded */
    int state;  /* 0 idle, 1 job posted, 2 done, 3 exit */
    batch_job *job;
    int rc;
    char err[256];
} worker;

struct embed_ctx {
    embed_model *m;
    exec_ctx x;    /* the caller's, m->threads threads, for batch 1 */
    exec_ctx x1;   /* the caller's single-threaded one, for its share of a larger batch */
    int n_workers; /* started lazily, m->threads - 1 of them */
    worker *workers;
    embed_ctx *next;
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

static const char *find_default_output(const eg_graph *g)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (strcmp(g->tensors[g->outputs[i]].name, "embedding") == 0)
            return "embedding";
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (g->nodes[i].op == OP_GEMM || g->nodes[i].op == OP_MATMUL) {
            const eg_tensor *t = &g->tensors[g->nodes[i].in[0]];
            return t->data ? NULL : t->name;
        }
    return NULL;
}

/* Compile a reference plan for every graph output at batch 1, so unsupported ops, attributes
 * and shapes fail the load rather than the first run. Only for single-input graphs with a
 * fully known input shape (the others are checked when run). */
static int validate(embed_model *m, char *err, size_t errlen)
{
    const eg_graph *g = m->g;
    if (g->n_inputs != 1)
        return 0;
    const eg_tensor *in = &g->tensors[g->inputs[0]];
    if (in->rank < 0)
        return 0;
    plan_input pi = {g->inputs[0], in->rank, {0}, NULL, in->dtype};
    for (int i = 0; i < in->rank; i++) {
        pi.dims[i] = in->dims[i] < 0 && i == 0 ? 1 : in->dims[i];
        if (pi.dims[i] < 0)
            return 0;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int rc = 0;
        omp_set_num_threads(m->threads);
        plan *p = plan_compile(g, m->eng, &pi, 1, g->outputs[i], PLAN_REFERENCE, err, errlen, &rc);
        if (!p)
            return rc;
        plan_free(p);
    }
    return 0;
}

embed_model *embed_model_load_buffer(const void *data, size_t len, const embed_model_options *opt, char *err,
                                     size_t errlen)
{
    int rc;
    return embed_model_load_rc(data, len, opt, err, errlen, &rc);
}

embed_model *embed_model_load_rc(const void *data, size_t len, const embed_model_options *opt, char *err,
                                 size_t errlen, int *rcp)
{
    int rc = EMBED_ENOMEM;
    embed_model *m = calloc(1, sizeof(*m));
    if (!m) {
        *rcp = errf(err, errlen, EMBED_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->input = -1;
    m->threads = opt && opt->threads > 0 ? opt->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (m->threads < 1)
        m->threads = 1;
    m->reference = opt ? opt->reference : 0;
    m->plan_flags = (m->reference ? PLAN_REFERENCE : 0) | (opt && opt->direct_only ? PLAN_NO_WINOGRAD : 0);
    const char *prof = getenv("EMBED_PROFILE");
    m->profiling = prof && prof[0] && strcmp(prof, "0") != 0;
    onnx_model *om = onnx_model_parse(data, len, err, errlen, &rc);
    if (!om)
        goto fail;
    if (!(m->g = eg_graph_new(om, err, errlen, &rc)))
        goto fail;
    if (dnnl_engine_create(&m->eng, dnnl_cpu, 0) != dnnl_success) {
        rc = errf(err, errlen, EMBED_EBACKEND, "oneDNN: cannot create a CPU engine");
        goto fail;
    }
    const eg_graph *g = m->g;
    m->in_c = m->in_h = m->in_w = -1;
    if (g->n_inputs >= 1) {
        m->input = g->inputs[0];
        const eg_tensor *t = &g->tensors[m->input];
        if (t->rank == 4 && t->dtype == ONNX_FLOAT) {
            m->in_c = (int)t->dims[1];
            m->in_h = (int)t->dims[2];
            m->in_w = (int)t->dims[3];
        }
    }
    m->default_output = find_default_output(g);
    if ((rc = validate(m, err, errlen)))
        goto fail;
    *rcp = 0;
    return m;
fail:
    embed_model_free(m);
    *rcp = rc;
    return NULL;
}

embed_model *embed_model_load(const char *path, const embed_model_options *opt, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    embed_model *m = NULL;
    if (!f) {
        errf(err, errlen, EMBED_EIO, "cannot open %s", path);
        return NULL;
    }
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        errf(err, errlen, EMBED_EIO, "cannot read %s", path);
        goto done;
    }
    if ((size_t)len > EMBED_MAX_MODEL_BYTES) {
        errf(err, errlen, EMBED_ETOOLARGE, "%s: model file too large (%ld bytes)", path, len);
        goto done;
    }
    buf = malloc((size_t)len + 1);
    if (!buf) {
        errf(err, errlen, EMBED_ENOMEM, "out of memory reading %s", path);
        goto done;
    }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        errf(err, errlen, EMBED_EIO, "cannot read %s", path);
        goto done;
    }
    m = embed_model_load_buffer(buf, (size_t)len, opt, err, errlen);
done:
    free(buf);
    fclose(f);
    return m;
}

void embed_model_free(embed_model *m)
{
    if (!m)
        return;
    while (m->pool) {
        embed_ctx *c = m->pool;
        m->pool = c->next;
        embed_ctx_free(c);
    }
    while (m->plans) {
        plan *p = m->plans;
        m->plans = p->next;
        plan_free(p);
    }
    if (m->eng)
        dnnl_engine_destroy(m->eng);
    eg_graph_free(m->g);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const char *embed_model_input_name(const embed_model *m)
{
    return m->input >= 0 ? m->g->tensors[m->input].name : NULL;
}

int embed_model_input_shape(const embed_model *m, int *c, int *h, int *w)
{
    if (m->in_c <= 0 || m->in_h <= 0 || m->in_w <= 0 || m->g->n_inputs != 1)
        return EMBED_EUNSUPPORTED;
    *c = m->in_c;
    *h = m->in_h;
    *w = m->in_w;
    return 0;
}

const char *embed_model_default_output(const embed_model *m)
{
    return m->default_output;
}

int embed_model_output_count(const embed_model *m)
{
    return m->g->n_outputs;
}

const char *embed_model_output_name(const embed_model *m, int i)
{
    return i >= 0 && i < m->g->n_outputs ? m->g->tensors[m->g->outputs[i]].name : NULL;
}

const char *embed_model_tensor_op(const embed_model *m, const char *name)
{
    int t = eg_graph_find(m->g, name);
    if (t < 0 || m->g->tensors[t].producer < 0)
        return NULL;
    return m->g->nodes[m->g->tensors[t].producer].op_type;
}

const char *embed_model_metadata(const embed_model *m, const char *key)
{
    const onnx_model *o = m->g->onnx;
    for (int i = 0; i < o->n_meta; i++)
        if (strcmp(o->meta_keys[i], key) == 0)
            return o->meta_values[i];
    return NULL;
}

/* The cached plan for (batch, output), compiled on first use. */
static const plan *get_plan(embed_model *m, int batch, int output, int threads, char *err, size_t errlen,
                            int *rc)
{
    pthread_mutex_lock(&m->mu);
    plan *p;
    for (p = m->plans; p; p = p->next)
        if (p->batch == batch && p->output == output && p->threads == threads)
            goto done;
    if (m->n_plans >= MAX_PLANS) {
        *rc =
            errf(err, errlen, EMBED_ETOOLARGE, "too many distinct (batch, output) plans (max %d)", MAX_PLANS);
        goto done;
    }
    plan_input pi = {m->input, 4, {batch, m->in_c, m->in_h, m->in_w}, NULL, ONNX_FLOAT};
    /* oneDNN sizes its work split by the thread count at primitive creation; a mismatch with
     * the run's count leaves threads waiting at barriers. */
    omp_set_num_threads(threads);
    p = plan_compile(m->g, m->eng, &pi, 1, output, m->plan_flags, err, errlen, rc);
    if (p) {
        p->batch = batch;
        p->threads = threads;
        p->next = m->plans;
        m->plans = p;
        m->n_plans++;
    }
done:
    pthread_mutex_unlock(&m->mu);
    return p;
}

static int resolve(embed_model *m, int batch, const char *name, int *output, char *err, size_t errlen)
{
    if (embed_model_input_shape(m, &(int){0}, &(int){0}, &(int){0}))
        return errf(err, errlen, EMBED_EUNSUPPORTED,
                    "model input is not a single N x C x H x W float tensor");
    if (batch < 1 || batch > EMBED_MAX_BATCH)
        return errf(err, errlen, EMBED_EINVAL, "batch %d out of range 1..%d", batch, EMBED_MAX_BATCH);
    if (!name)
        name = m->default_output;
    if (!name)
        return errf(err, errlen, EMBED_EINVAL, "model has no default embedding tensor; name one");
    *output = eg_graph_find(m->g, name);
    if (*output < 0)
        return errf(err, errlen, EMBED_EINVAL, "no tensor named '%s' in the model", name);
    return 0;
}

long embed_model_output_dim(embed_model *m, const char *name, char *err, size_t errlen)
{
    int output, rc = resolve(m, 1, name, &output, err, errlen);
    if (rc)
        return rc;
    const plan *p = get_plan(m, 1, output, m->threads, err, errlen, &rc);
    return p ? (long)plan_output_count(p) : rc;
}

embed_ctx *embed_ctx_new(embed_model *m, char *err, size_t errlen)
{
    embed_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        errf(err, errlen, EMBED_ENOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    if (exec_ctx_init(&c->x, m->eng, m->threads, err, errlen)) {
        free(c);
        return NULL;
    }
    if (exec_ctx_init(&c->x1, m->eng, 1, err, errlen)) {
        exec_ctx_release(&c->x);
        free(c);
        return NULL;
    }
    c->x.profiling = c->x1.profiling = m->profiling;
    return c;
}

/* Runs samples of job on x until none is left; 0 or the first error. */
static int take_samples(exec_ctx *x, batch_job *job, char *err, size_t errlen)
{
    int i;
    while (!atomic_load(&job->failed) && (i = atomic_fetch_add(&job->next, 1)) < job->batch) {
        const void *inputs[1] = {job->input + (size_t)i * job->per_in};
        int rc = exec_run(x, job->p, inputs, job->out + (size_t)i * job->per_out, job->per_out, err, errlen);
        if (rc) {
            atomic_store(&job->failed, 1);
            return rc;
        }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->state != 1 && w->state != 3)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->state == 3)
            break;
        pthread_mutex_unlock(&w->mu);
        int rc = take_samples(&w->x, w->job, w->err, sizeof(w->err));
        pthread_mutex_lock(&w->mu);
        w->rc = rc;
        w->state = 2;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void stop_workers(embed_ctx *c)
{
    for (int i = 0; i < c->n_workers; i++) {
        worker *w = &c->workers[i];
        pthread_mutex_lock(&w->mu);
        w->state = 3;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->tid, NULL);
        if (c->m->profiling)
            exec_profile_print(&w->x, stderr);
        exec_ctx_release(&w->x);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
    }
    free(c->workers);
    c->workers = NULL;
    c->n_workers = 0;
}

static int start_workers(embed_ctx *c, int n, char *err, size_t errlen)
{
    c->workers = calloc((size_t)n, sizeof(worker));
    if (!c->workers)
        return errf(err, errlen, EMBED_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        worker *w = &c->workers[i];
        if (exec_ctx_init(&w->x, c->m->eng, 1, err, errlen))
            goto fail;
        w->x.profiling = c->m->profiling;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            pthread_mutex_destroy(&w->mu);
            exec_ctx_release(&w->x);
            errf(err, errlen, EMBED_ENOMEM, "cannot start a worker thread");
            goto fail;
        }
        c->n_workers++;
    }
    return 0;
fail:
    stop_workers(c);
    return EMBED_ENOMEM;
}

void embed_ctx_free(embed_ctx *c)
{
    if (!c)
        return;
    stop_workers(c);
    if (c->x.profiling) {
        exec_profile_print(&c->x, stderr);
        exec_profile_print(&c->x1, stderr);
    }
    exec_ctx_release(&c->x);
    exec_ctx_release(&c->x1);
    free(c);
}

static int run_samples(embed_ctx *c, const float *input, int batch, int output, float *out, size_t out_cap,
                       char *err, size_t errlen)
{
    embed_model *m = c->m;
    int k = m->threads < batch ? m->threads : batch, rc = 0;
    const plan *p = get_plan(m, 1, output, 1, err, errlen, &rc);
    if (!p)
        return rc;
    batch_job job = {
        p, input, (size_t)m->in_c * (size_t)m->in_h * (size_t)m->in_w, plan_output_count(p), out, batch,
        0, 0};
    if ((size_t)batch * job.per_out > out_cap)
        return errf(err, errlen, EMBED_ETOOLARGE, "output buffer holds %zu floats, %zu needed", out_cap,
                    (size_t)batch * job.per_out);
    if (c->n_workers < k - 1) {
        stop_workers(c);
        if ((rc = start_workers(c, k - 1, err, errlen)))
            return rc;
    }
    for (int i = 1; i < k; i++) {
        worker *w = &c->workers[i - 1];
        pthread_mutex_lock(&w->mu);
        w->job = &job;
        w->state = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    rc = take_samples(&c->x1, &job, err, errlen);
    for (int i = 1; i < k; i++) {
        worker *w = &c->workers[i - 1];
        pthread_mutex_lock(&w->mu);
        while (w->state != 2)
            pthread_cond_wait(&w->cv, &w->mu);
        w->state = 0;
        if (w->rc && !rc) {
            rc = w->rc;
            snprintf(err, errlen, "%s", w->err);
        }
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

int embed_ctx_run(embed_ctx *c, const float *input, int batch, const char *output_name, float *out,
                  size_t out_cap, char *err, size_t errlen)
{
    int output, rc = resolve(c->m, batch, output_name, &output, err, errlen);
    if (rc)
        return rc;
    if (batch >= 2 && !c->m->reference)
        return run_samples(c, input, batch, output, out, out_cap, err, errlen);
    const plan *p = get_plan(c->m, batch, output, c->m->threads, err, errlen, &rc);
    if (!p)
        return rc;
    const void *inputs[1] = {input};
    return exec_run(&c->x, p, inputs, out, out_cap, err, errlen);
}

int embed_model_run(embed_model *m, const float *input, int batch, const char *output_name, float *out,
                    size_t out_cap, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->mu);
    embed_ctx *c = m->pool;
    if (c)
        m->pool = c->next;
    pthread_mutex_unlock(&m->mu);
    if (!c && !(c = embed_ctx_new(m, err, errlen)))
        return EMBED_ENOMEM;
    int rc = embed_ctx_run(c, input, batch, output_name, out, out_cap, err, errlen);
    pthread_mutex_lock(&m->mu);
    c->next = m->pool;
    m->pool = c;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void embed_l2_normalize(float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    if (s <= 0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < n; i++)
        v[i] *= inv;
}

const eg_graph *embed_model_graph(const embed_model *m)
{
    return m->g;
}

dnnl_engine_t embed_model_engine(const embed_model *m)
{
    return m->eng;
}

int embed_model_threads(const embed_model *m)
{
    return m->threads;
}
