/* Metrics registry. Values are doubles kept as bit patterns in 64-bit atomics, so updates
 * never take a lock; only creating or finding a labelled series does (per family). */
#include "core/core.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_HOOKS 8
#define FAMILY_HASH 64

struct core_metric {
    core_metric_family *fam;
    core_metric *next_hash;  /* chain in the family's hash */
    core_metric *next_order; /* creation order, for stable rendering */
    char *labels[CORE_METRICS_MAX_LABELS];
    _Atomic uint64_t value; /* double bits: counter/gauge value, histogram sum */
    _Atomic uint64_t count; /* histogram observation count */
    _Atomic uint64_t buckets[CORE_METRICS_MAX_BUCKETS + 1];
};

struct core_metric_family {
    core_metric_family *next;
    core_metric_type type;
    char *name, *help;
    size_t nlabels;
    char *label_names[CORE_METRICS_MAX_LABELS];
    size_t nbuckets;
    double bounds[CORE_METRICS_MAX_BUCKETS];
    pthread_mutex_t mu;
    core_metric *hash[FAMILY_HASH];
    core_metric *first, *last;
    size_t nseries;
    core_metric *overflow;
};

typedef struct metrics_hook {
    void (*fn)(void *ud, core_metrics *m);
    void *ud;
} metrics_hook;

struct core_metrics {
    pthread_mutex_t mu; /* guards the family list and hooks */
    core_metric_family *first, *last;
    metrics_hook hooks[METRICS_MAX_HOOKS];
    size_t nhooks;
};

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

core_metrics *core_metrics_new(void)
{
    core_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void series_free(core_metric *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(s->labels[i]);
    free(s);
}

static void family_free(core_metric_family *f)
{
    for (core_metric *s = f->first; s;) {
        core_metric *next = s->next_order;
        series_free(s, f->nlabels);
        s = next;
    }
    if (f->overflow)
        series_free(f->overflow, f->nlabels);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void core_metrics_free(core_metrics *m)
{
    if (!m)
        return;
    for (core_metric_family *f = m->first; f;) {
        core_metric_family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static bool valid_metric_name(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == ':'))
            return false;
    return true;
}

static bool same_labels(const core_metric_family *f, const char *const *names, size_t n)
{
    if (f->nlabels != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->label_names[i], names[i]) != 0)
            return false;
    return true;
}

core_metric_family *core_metrics_family(core_metrics *m, core_metric_type type, const char *name,
                                        const char *help, const char *const *label_names,
                                        const double *buckets, size_t nbuckets, char *err, size_t errlen)
{
    size_t nl = 0;
    while (label_names && label_names[nl])
        nl++;
    if (!valid_metric_name(name)) {
        snprintf(err, errlen, "bad metric name \"%s\"", name ? name : "(null)");
        return NULL;
    }
    if (nl > CORE_METRICS_MAX_LABELS) {
        snprintf(err, errlen, "metric %s: more than %d labels", name, CORE_METRICS_MAX_LABELS);
        return NULL;
    }
    for (size_t i = 0; i < nl; i++) {
        if (!valid_metric_name(label_names[i]) || strcmp(label_names[i], "le") == 0) {
            snprintf(err, errlen, "metric %s: bad label name \"%s\"", name, label_names[i]);
            return NULL;
        }
    }
    if (type == CORE_METRIC_HISTOGRAM) {
        if (!buckets) {
            buckets = default_buckets;
            nbuckets = sizeof default_buckets / sizeof default_buckets[0];
        }
        if (nbuckets == 0 || nbuckets > CORE_METRICS_MAX_BUCKETS) {
            snprintf(err, errlen, "metric %s: 1 to %d buckets", name, CORE_METRICS_MAX_BUCKETS);
            return NULL;
        }
        for (size_t i = 1; i < nbuckets; i++) {
            if (!(buckets[i] > buckets[i - 1])) {
                snprintf(err, errlen, "metric %s: bucket bounds must ascend", name);
                return NULL;
            }
        }
    } else {
        nbuckets = 0;
    }

    pthread_mutex_lock(&m->mu);
    core_metric_family *f;
    for (f = m->first; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            if (f->type != type || !same_labels(f, label_names, nl)) {
                snprintf(err, errlen, "metric %s registered twice with different type or labels", name);
                f = NULL;
            }
            pthread_mutex_unlock(&m->mu);
            return f;
        }
    }
    f = calloc(1, sizeof *f);
    if (!f)
        goto fail;
    pthread_mutex_init(&f->mu, NULL);
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto fail;
    for (size_t i = 0; i < nl; i++) {
        f->label_names[i] = strdup(label_names[i]);
        if (!f->label_names[i])
            goto fail;
        f->nlabels++;
    }
    f->nbuckets = nbuckets;
    if (nbuckets)
        memcpy(f->bounds, buckets, nbuckets * sizeof *buckets);
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    pthread_mutex_unlock(&m->mu);
    return f;
fail:
    pthread_mutex_unlock(&m->mu);
    if (f)
        family_free(f);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static uint64_t hash_labels(const core_metric_family *f, const char *const *values)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < f->nlabels; i++) {
        for (const char *p = values[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

static core_metric *series_new(core_metric_family *f, const char *const *values)
{
    core_metric *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fam = f;
    for (size_t i = 0; i < f->nlabels; i++) {
        s->labels[i] = strdup(values[i]);
        if (!s->labels[i]) {
            series_free(s, i);
            return NULL;
        }
    }
    return s;
}

core_metric *core_metric_family_get(core_metric_family *f, const char *const *label_values)
{
    static const char *const overflow_values[CORE_METRICS_MAX_LABELS] = {"_overflow", "_overflow",
                                                                         "_overflow", "_overflow"};
    uint64_t h = f->nlabels ? hash_labels(f, label_values) : 0;
    size_t slot = h % FAMILY_HASH;
    pthread_mutex_lock(&f->mu);
    core_metric *s;
    for (s = f->hash[slot]; s; s = s->next_hash) {
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->labels[i], label_values[i]) == 0)
            i++;
        if (i == f->nlabels)
            goto done;
    }
    if (f->nseries >= CORE_METRICS_MAX_SERIES) {
        if (!f->overflow)
            f->overflow = series_new(f, overflow_values);
        s = f->overflow;
        goto done;
    }
    s = series_new(f, label_values);
    if (!s)
        goto done;
    s->next_hash = f->hash[slot];
    f->hash[slot] = s;
    if (f->last)
        f->last->next_order = s;
    else
        f->first = s;
    f->last = s;
    f->nseries++;
done:
    pthread_mutex_unlock(&f->mu);
    return s;
}

static core_metric *unlabelled(core_metrics *m, core_metric_type type, const char *name, const char *help,
                               const double *buckets, size_t nbuckets)
{
    char err[128];
    core_metric_family *f =
        core_metrics_family(m, type, name, help, NULL, buckets, nbuckets, err, sizeof err);
    return f ? core_metric_family_get(f, NULL) : NULL;
}

core_metric *core_metrics_counter(core_metrics *m, const char *name, const char *help)
{
    return unlabelled(m, CORE_METRIC_COUNTER, name, help, NULL, 0);
}

core_metric *core_metrics_gauge(core_metrics *m, const char *name, const char *help)
{
    return unlabelled(m, CORE_METRIC_GAUGE, name, help, NULL, 0);
}

core_metric *core_metrics_histogram(core_metrics *m, const char *name, const char *help,
                                    const double *buckets, size_t nbuckets)
{
    return unlabelled(m, CORE_METRIC_HISTOGRAM, name, help, buckets, nbuckets);
}

void core_metric_inc(core_metric *c)
{
    core_metric_add(c, 1.0);
}

void core_metric_add(core_metric *c, double v)
{
    if (!c || c->fam->type == CORE_METRIC_HISTOGRAM)
        return;
    if (c->fam->type == CORE_METRIC_COUNTER && !(v >= 0))
        return;
    atomic_add_double(&c->value, v);
}

void core_metric_set(core_metric *g, double v)
{
    if (!g || g->fam->type != CORE_METRIC_GAUGE)
        return;
    atomic_store_explicit(&g->value, d2u(v), memory_order_relaxed);
}

void core_metric_observe(core_metric *h, double v)
{
    if (!h || h->fam->type != CORE_METRIC_HISTOGRAM || isnan(v))
        return;
    size_t i = 0;
    while (i < h->fam->nbuckets && v > h->fam->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_add_double(&h->value, v);
}

double core_metric_value(const core_metric *c)
{
    if (!c)
        return 0;
    if (c->fam->type == CORE_METRIC_HISTOGRAM)
        return (double)atomic_load_explicit(&((core_metric *)c)->count, memory_order_relaxed);
    return u2d(atomic_load_explicit(&((core_metric *)c)->value, memory_order_relaxed));
}

int core_metrics_on_render(core_metrics *m, void (*fn)(void *ud, core_metrics *m), void *ud)
{
    pthread_mutex_lock(&m->mu);
    int rc = CORE_EFULL;
    if (m->nhooks < METRICS_MAX_HOOKS) {
        m->hooks[m->nhooks++] = (metrics_hook){fn, ud};
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Rendering buffer: plain malloc growth; the content is bounded by the series caps. */
typedef struct outbuf {
    char *p;
    size_t len, cap;
    bool failed;
} outbuf;

static void out_printf(outbuf *o, const char *fmt, ...) CORE_PRINTF(2, 3);
static void out_printf(outbuf *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = true;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

static void out_escaped(outbuf *o, const char *s, bool quote_too)
{
    for (; *s; s++) {
        if (*s == '\\')
            out_printf(o, "\\\\");
        else if (*s == '\n')
            out_printf(o, "\\n");
        else if (*s == '"' && quote_too)
            out_printf(o, "\\\"");
        else
            out_printf(o, "%c", *s);
    }
}

/* Shortest of %.15g / %.17g that reads back as the same double (0.005, not 0.0050000000000000001). */
static void format_double(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, len, "%.17g", v);
}

static void out_number(outbuf *o, double v)
{
    if (isnan(v))
        out_printf(o, "NaN");
    else if (isinf(v))
        out_printf(o, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(long long)v && fabs(v) < 1e15)
        out_printf(o, "%lld", (long long)v);
    else {
        char buf[40];
        format_double(buf, sizeof buf, v);
        out_printf(o, "%s", buf);
    }
}

/* {a="x",b="y"[,le="0.5"]} or nothing when there are no labels at all. */
static void out_labels(outbuf *o, const core_metric *s, const char *le)
{
    const core_metric_family *f = s->fam;
    if (f->nlabels == 0 && !le)
        return;
    out_printf(o, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        out_printf(o, "%s%s=\"", i ? "," : "", f->label_names[i]);
        out_escaped(o, s->labels[i], true);
        out_printf(o, "\"");
    }
    if (le)
        out_printf(o, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    out_printf(o, "}");
}

static void render_series(outbuf *o, core_metric *s)
{
    const core_metric_family *f = s->fam;
    if (f->type != CORE_METRIC_HISTOGRAM) {
        out_printf(o, "%s", f->name);
        out_labels(o, s, NULL);
        out_printf(o, " ");
        out_number(o, u2d(atomic_load_explicit(&s->value, memory_order_relaxed)));
        out_printf(o, "\n");
        return;
    }
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbuckets; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        char le[40];
        if (i < f->nbuckets)
            format_double(le, sizeof le, f->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        out_printf(o, "%s_bucket", f->name);
        out_labels(o, s, le);
        out_printf(o, " %llu\n", (unsigned long long)cum);
    }
    out_printf(o, "%s_sum", f->name);
    out_labels(o, s, NULL);
    out_printf(o, " ");
    out_number(o, u2d(atomic_load_explicit(&s->value, memory_order_relaxed)));
    out_printf(o, "\n%s_count", f->name);
    out_labels(o, s, NULL);
    /* The +Inf bucket and _count are read separately; report the bucket total so the two
     * always agree within one scrape. */
    out_printf(o, " %llu\n", (unsigned long long)cum);
}

char *core_metrics_render(core_metrics *m, size_t *len_out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->mu);
    size_t nhooks = m->nhooks;
    metrics_hook hooks[METRICS_MAX_HOOKS];
    memcpy(hooks, m->hooks, sizeof hooks);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < nhooks; i++)
        hooks[i].fn(hooks[i].ud, m);

    outbuf o = {.cap = 4096};
    o.p = malloc(o.cap);
    if (!o.p)
        return NULL;
    pthread_mutex_lock(&m->mu);
    for (core_metric_family *f = m->first; f; f = f->next) {
        pthread_mutex_lock(&f->mu);
        if (f->first || f->overflow) {
            out_printf(&o, "# HELP %s ", f->name);
            out_escaped(&o, f->help, false);
            out_printf(&o, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
            for (core_metric *s = f->first; s; s = s->next_order)
                render_series(&o, s);
            if (f->overflow)
                render_series(&o, f->overflow);
        }
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&m->mu);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    if (len_out)
        *len_out = o.len;
    return o.p;
}
