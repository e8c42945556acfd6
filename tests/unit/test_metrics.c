/* tests/unit/test_metrics.c: the metrics registry and its Prometheus text exposition
 * (aigwd/proxy/metrics.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/metrics.h"

static char *render(void)
{
    aigw_metrics_scrape_t sc = { "node-1", "3.9.1", 1 };
    aigw_sbuf_t b = { 0 };
    aigw_metrics_render(&b, &sc);
    assert_false(b.oom);
    assert_non_null(b.p);
    return b.p;
}

static char *escaped(const char *s, size_t n)
{
    aigw_sbuf_t b = { 0 };
    aigw_metrics__escape(&b, (aigw_str_t){ s, n });
    aigw_sbuf_addn(&b, "", 0);
    if (!b.p) {
        b.p = malloc(1);
        b.p[0] = '\0';
    }
    return b.p;
}

static void test_escape(void **state)
{
    (void)state;
    char *e = escaped("a\"b\\c\nd", 7);
    assert_string_equal(e, "a\\\"b\\\\c\\nd");
    free(e);
    e = escaped("ab\xff" "cd", 5);              /* invalid UTF-8: cut at the bad byte */
    assert_string_equal(e, "ab");
    free(e);
    e = escaped("caf\xc3\xa9!", 6);             /* valid two-byte sequence kept */
    assert_string_equal(e, "caf\xc3\xa9!");
    free(e);
    e = escaped("a\xc3", 2);                    /* truncated sequence */
    assert_string_equal(e, "a");
    free(e);
    e = escaped("\xe2\x82\xac", 3);             /* euro sign */
    assert_string_equal(e, "\xe2\x82\xac");
    free(e);
    e = escaped("x\xed\xa0\x80", 4);            /* UTF-16 surrogate: invalid */
    assert_string_equal(e, "x");
    free(e);
}

static aigw_metrics_obs_t status_obs(const char *svc, const char *route, int code)
{
    aigw_metrics_obs_t o = { 0 };
    o.service = aigw_str_c(svc);
    o.route = aigw_str_c(route);
    o.consumer = AIGW_STR("");
    o.has_status = 1;
    o.code = code;
    o.from_service = 1;
    return o;
}

static void test_disabled_shows_only_node_metrics(void **state)
{
    (void)state;
    aigw_metrics_obs_t o = status_obs("s", "r", 200);
    aigw_metrics_observe(&o);
    char *t = render();
    assert_null(strstr(t, "kong_http_requests_total"));
    assert_null(strstr(t, "kong_nginx_metric_errors_total"));
    assert_non_null(strstr(t, "# HELP kong_datastore_reachable Datastore reachable from Kong, "
                              "0 is unreachable\n# TYPE kong_datastore_reachable gauge\n"
                              "kong_datastore_reachable 1\n"));
    assert_non_null(strstr(t, "kong_node_info{node_id=\"node-1\",version=\"3.9.1\"} 1\n"));
    assert_non_null(strstr(t, "kong_nginx_connections_total{node_id=\"node-1\",subsystem=\"http\","
                              "state=\"accepted\"} "));
    assert_non_null(strstr(t, "kong_nginx_timers{state=\"running\"} 0\n"));
    assert_null(strstr(t, "kong_upstream_target_health"));
    free(t);
    /* the series recorded meanwhile appear once a plugin is configured */
    aigw_metrics_plugin_ref(1);
    t = render();
    assert_non_null(strstr(t, "kong_http_requests_total{service=\"s\",route=\"r\",code=\"200\","
                              "source=\"service\",workspace=\"default\",consumer=\"\"} 1\n"));
    assert_non_null(strstr(t, "# TYPE kong_nginx_metric_errors_total counter\n"
                              "kong_nginx_metric_errors_total 0\n"));
    free(t);
    aigw_metrics_plugin_ref(-1);
    aigw_metrics_shutdown();
}

#define N_THREADS 4
#define PER_THREAD 5000

static void *observer(void *ud)
{
    (void)ud;
    for (int i = 0; i < PER_THREAD; i++) {
        aigw_metrics_obs_t o = status_obs("svc", "rt", i % 2 ? 200 : 404);
        o.from_service = i % 2;
        aigw_metrics_observe(&o);
    }
    return NULL;
}

static void *scraper(void *ud)
{
    (void)ud;
    for (int i = 0; i < 20; i++) {
        char *t = render();
        free(t);
    }
    return NULL;
}

static void test_threads_sum_exactly(void **state)
{
    (void)state;
    aigw_metrics_plugin_ref(1);
    pthread_t th[N_THREADS + 1];
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, observer, NULL), 0);
    assert_int_equal(pthread_create(&th[N_THREADS], NULL, scraper, NULL), 0);
    for (int i = 0; i <= N_THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render();
    char want[256];
    snprintf(want, sizeof(want),
             "kong_http_requests_total{service=\"svc\",route=\"rt\",code=\"200\",source=\"service\","
             "workspace=\"default\",consumer=\"\"} %d\n", N_THREADS * PER_THREAD / 2);
    assert_non_null(strstr(t, want));
    snprintf(want, sizeof(want),
             "kong_http_requests_total{service=\"svc\",route=\"rt\",code=\"404\",source=\"kong\","
             "workspace=\"default\",consumer=\"\"} %d\n", N_THREADS * PER_THREAD / 2);
    assert_non_null(strstr(t, want));
    /* one HELP/TYPE pair, series sorted by labels (code 200 before 404) */
    const char *h = strstr(t, "# HELP kong_http_requests_total HTTP status codes per "
                              "consumer/service/route in Kong\n# TYPE kong_http_requests_total "
                              "counter\n");
    assert_non_null(h);
    assert_null(strstr(h + 1, "# HELP kong_http_requests_total"));
    assert_true(strstr(t, "code=\"200\"") < strstr(t, "code=\"404\""));
    free(t);
    aigw_metrics_plugin_ref(-1);
    aigw_metrics_shutdown();
}

static void test_histograms(void **state)
{
    (void)state;
    aigw_metrics_plugin_ref(1);
    aigw_metrics_obs_t o = { 0 };
    o.service = AIGW_STR("s");
    o.route = AIGW_STR("r");
    o.has_latency = 1;
    o.kong_ms = 3;
    o.request_ms = 30;
    o.upstream_ms = -1;
    aigw_metrics_observe(&o);
    o.kong_ms = 7000;      /* above the last bound: only +Inf */
    o.request_ms = 26;
    aigw_metrics_observe(&o);
    char *t = render();
    const char *lb = "service=\"s\",route=\"r\",workspace=\"default\"";
    char want[512];
    snprintf(want, sizeof(want),
             "# HELP kong_kong_latency_ms Latency added by Kong and enabled plugins for each "
             "service/route in Kong\n# TYPE kong_kong_latency_ms histogram\n"
             "kong_kong_latency_ms_bucket{%s,le=\"5\"} 1\n", lb);
    assert_non_null(strstr(t, want));
    snprintf(want, sizeof(want), "kong_kong_latency_ms_bucket{%s,le=\"6000\"} 1\n"
             "kong_kong_latency_ms_bucket{%s,le=\"+Inf\"} 2\n"
             "kong_kong_latency_ms_count{%s} 2\nkong_kong_latency_ms_sum{%s} 7003\n",
             lb, lb, lb, lb);
    assert_non_null(strstr(t, want));
    snprintf(want, sizeof(want), "kong_kong_latency_ms_bucket{%s,le=\"2\"}", lb);
    assert_null(strstr(t, want));
    snprintf(want, sizeof(want), "kong_request_latency_ms_bucket{%s,le=\"50\"} 2\n", lb);
    assert_non_null(strstr(t, want));
    snprintf(want, sizeof(want), "kong_request_latency_ms_bucket{%s,le=\"25\"}", lb);
    assert_null(strstr(t, want));
    assert_null(strstr(t, "kong_upstream_latency_ms"));
    assert_null(strstr(t, "kong_http_requests_total"));
    /* Kong's key order: kong_latency < memory < nginx < node_info < request_latency */
    assert_true(strstr(t, "kong_kong_latency_ms") < strstr(t, "kong_memory_"));
    assert_true(strstr(t, "kong_node_info") < strstr(t, "kong_request_latency_ms"));
    free(t);
    aigw_metrics_plugin_ref(-1);
    aigw_metrics_shutdown();
}

static void test_bandwidth_and_consumer(void **state)
{
    (void)state;
    aigw_metrics_plugin_ref(1);
    aigw_metrics_obs_t o = { 0 };
    o.service = AIGW_STR("s");
    o.route = AIGW_STR("r");
    o.consumer = AIGW_STR("al\"ice");
    o.has_bandwidth = 1;
    o.ingress = 100;
    o.egress = 0;
    aigw_metrics_observe(&o);
    o.ingress = 50;
    o.egress = 7;
    aigw_metrics_observe(&o);
    char *t = render();
    assert_non_null(strstr(t, "# TYPE kong_bandwidth_bytes counter\n"
                              "kong_bandwidth_bytes{service=\"s\",route=\"r\",direction=\"egress\","
                              "workspace=\"default\",consumer=\"al\\\"ice\"} 7\n"
                              "kong_bandwidth_bytes{service=\"s\",route=\"r\",direction=\"ingress\","
                              "workspace=\"default\",consumer=\"al\\\"ice\"} 150\n"));
    assert_true(strstr(t, "kong_bandwidth_bytes") < strstr(t, "kong_datastore_reachable"));
    free(t);
    aigw_metrics_plugin_ref(-1);
    aigw_metrics_shutdown();
}

static void test_series_cap(void **state)
{
    (void)state;
    aigw_metrics_plugin_ref(1);
    char route[32];
    for (int i = 0; i < AIGW_METRICS_MAX_SERIES + 10; i++) {
        snprintf(route, sizeof(route), "r%d", i);
        aigw_metrics_obs_t o = status_obs("s", route, 200);
        aigw_metrics_observe(&o);
    }
    /* existing series still count */
    aigw_metrics_obs_t o = status_obs("s", "r0", 200);
    aigw_metrics_observe(&o);
    char *t = render();
    assert_non_null(strstr(t, "aigw_metrics_series_dropped_total 10\n"));
    assert_non_null(strstr(t, "route=\"r0\",code=\"200\",source=\"service\",workspace=\"default\","
                              "consumer=\"\"} 2\n"));
    free(t);
    aigw_metrics_ratelimit_rejected();
    aigw_metrics_ratelimit_rejected();
    t = render();
    assert_non_null(strstr(t, "# TYPE aigw_ratelimit_rejections_total counter\n"
                              "aigw_ratelimit_rejections_total 2\n"));
    free(t);
    aigw_metrics_plugin_ref(-1);
    aigw_metrics_shutdown();
    t = render();
    assert_non_null(strstr(t, "aigw_metrics_series_dropped_total 0\n"));
    free(t);
}

/* Every non-comment line is `name{labels} value` or `name value`; every family has one HELP
 * and one TYPE line before its samples. */
static void test_format(void **state)
{
    (void)state;
    aigw_metrics_plugin_ref(1);
    aigw_metrics_export_upstream_health(1);
    aigw_metrics_obs_t o = status_obs("s", "r", 500);
    o.has_latency = 1;
    o.kong_ms = 1;
    o.request_ms = 1;
    o.upstream_ms = 0;
    o.has_bandwidth = 1;
    o.ingress = 1;
    o.egress = 1;
    aigw_metrics_observe(&o);
    char *t = render();
    assert_true(strlen(t) > 0 && t[strlen(t) - 1] == '\n');
    char last_family[128] = "";
    for (char *line = t, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *sp = strchr(line + 7, ' ');
            assert_non_null(sp);
            snprintf(last_family, sizeof(last_family), "%.*s", (int)(sp - line - 7), line + 7);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(strncmp(line + 7, last_family, strlen(last_family)), 0);
            continue;
        }
        assert_true(line[0] != '#');
        assert_int_equal(strncmp(line, last_family, strlen(last_family)), 0);
        const char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        char *end;
        strtoull(sp + 1, &end, 10);
        assert_true(*end == '\0' && end > sp + 1);
    }
    free(t);
    aigw_metrics_plugin_ref(-1);
    aigw_metrics_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_disabled_shows_only_node_metrics),
        cmocka_unit_test(test_threads_sum_exactly),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_bandwidth_and_consumer),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_format),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    aigw_metrics_shutdown();
    return rc;
}
