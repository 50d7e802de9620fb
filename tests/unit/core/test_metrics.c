#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

Test(metrics, renders_prometheus_text)
{
    char err[256];
    core_metrics *m = core_metrics_new();
    core_metric *c = core_metrics_counter(m, "jobs_total", "Jobs done");
    core_metric *g = core_metrics_gauge(m, "queue_depth", "Waiting jobs");
    static const double b[] = {0.1, 1};
    core_metric *h = core_metrics_histogram(m, "latency_seconds", "Latency", b, 2);
    static const char *const ln[] = {"route", "status", NULL};
    core_metric_family *f =
        core_metrics_family(m, CORE_METRIC_COUNTER, "req_total", "Requests", ln, NULL, 0, err, sizeof err);
    cr_assert(c && g && h && f, "%s", err);
    core_metric_inc(c);
    core_metric_add(c, 2);
    core_metric_add(c, -5); /* counters never go down */
    core_metric_set(g, 7);
    core_metric_add(g, -2.5);
    core_metric_observe(h, 0.05);
    core_metric_observe(h, 0.5);
    core_metric_observe(h, 3);
    const char *v1[] = {"/a/{id}", "200"};
    const char *v2[] = {"we\"ird\\\n", "500"};
    core_metric_inc(core_metric_family_get(f, v1));
    core_metric_inc(core_metric_family_get(f, v1));
    core_metric_inc(core_metric_family_get(f, v2));
    cr_assert_eq(core_metric_family_get(f, v1), core_metric_family_get(f, v1));
    size_t len;
    char *text = core_metrics_render(m, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    const char *want = "# HELP jobs_total Jobs done\n"
                       "# TYPE jobs_total counter\n"
                       "jobs_total 3\n"
                       "# HELP queue_depth Waiting jobs\n"
                       "# TYPE queue_depth gauge\n"
                       "queue_depth 4.5\n"
                       "# HELP latency_seconds Latency\n"
                       "# TYPE latency_seconds histogram\n"
                       "latency_seconds_bucket{le=\"0.1\"} 1\n"
                       "latency_seconds_bucket{le=\"1\"} 2\n"
                       "latency_seconds_bucket{le=\"+Inf\"} 3\n"
                       "latency_seconds_sum 3.55\n"
                       "latency_seconds_count 3\n"
                       "# HELP req_total Requests\n"
                       "# TYPE req_total counter\n"
                       "req_total{route=\"/a/{id}\",status=\"200\"} 2\n"
                       "req_total{route=\"we\\\"ird\\\\\\n\",status=\"500\"} 1\n";
    cr_assert_str_eq(text, want);
    free(text);
    core_metrics_free(m);
}

Test(metrics, name_clashes_and_bad_names)
{
    char err[256];
    core_metrics *m = core_metrics_new();
    cr_assert_not_null(core_metrics_counter(m, "x_total", "x"));
    cr_assert_null(core_metrics_gauge(m, "x_total", "x"), "same name, other type");
    cr_assert_eq(core_metrics_counter(m, "x_total", "x"), core_metrics_counter(m, "x_total", "x"));
    cr_assert_null(core_metrics_family(m, CORE_METRIC_GAUGE, "9bad", "", NULL, NULL, 0, err, sizeof err));
    static const char *const le[] = {"le", NULL};
    cr_assert_null(core_metrics_family(m, CORE_METRIC_HISTOGRAM, "h", "", le, NULL, 0, err, sizeof err));
    static const double desc[] = {1, 0.5};
    cr_assert_null(core_metrics_family(m, CORE_METRIC_HISTOGRAM, "h2", "", NULL, desc, 2, err, sizeof err));
    cr_assert(strstr(err, "ascend"), "%s", err);
    core_metrics_free(m);
}

Test(metrics, label_cardinality_is_capped)
{
    char err[256];
    core_metrics *m = core_metrics_new();
    static const char *const ln[] = {"k", NULL};
    core_metric_family *f =
        core_metrics_family(m, CORE_METRIC_COUNTER, "c_total", "", ln, NULL, 0, err, sizeof err);
    core_metric *last = NULL;
    for (int i = 0; i < CORE_METRICS_MAX_SERIES + 10; i++) {
        char v[32];
        snprintf(v, sizeof v, "v%d", i);
        const char *vals[] = {v};
        last = core_metric_family_get(f, vals);
        core_metric_inc(last);
    }
    cr_assert_eq(core_metric_value(last), 10.0, "the overflow series took the extra 10");
    char *text = core_metrics_render(m, NULL);
    cr_assert(strstr(text, "c_total{k=\"_overflow\"} 10\n"));
    free(text);
    core_metrics_free(m);
}

static void hook(void *ud, core_metrics *m)
{
    (void)m;
    core_metric_set(ud, 42);
}

Test(metrics, render_hooks_refresh_gauges)
{
    core_metrics *m = core_metrics_new();
    core_metric *g = core_metrics_gauge(m, "sampled", "sampled at render");
    cr_assert_eq(core_metrics_on_render(m, hook, g), 0);
    char *text = core_metrics_render(m, NULL);
    cr_assert(strstr(text, "sampled 42\n"), "%s", text);
    free(text);
    core_metrics_free(m);
}
