/* aigwd/plugins/prometheus.c: Kong's prometheus plugin (priority 13; kong/plugins/prometheus/
 * handler.lua and exporter.lua log). Its log phase records the request into the metrics
 * registry (proxy/metrics.h) as far as the instance's flags allow: status_code_metrics ->
 * kong_http_requests_total, latency_metrics -> the three latency histograms,
 * bandwidth_metrics -> kong_bandwidth_bytes, per_consumer -> the consumer label,
 * upstream_health_metrics -> kong_upstream_target_health at scrape time. Requests without a
 * route are not recorded (as Kong). The metrics are served by GET /metrics on the admin and
 * status listeners (admin/admin.c). ai_metrics is accepted and records nothing: no aigw plugin
 * produces LLM usage data yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <llhttp.h>
#include <uv.h>
#include "plugins/impl.h"
#include "proxy/metrics.h"

typedef struct conf {
    int per_consumer;
    int status_code_metrics;
    int latency_metrics;
    int bandwidth_metrics;
    int upstream_health_metrics;
} conf_t;

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->per_consumer = json_is_true(json_object_get(c, "per_consumer"));
    k->status_code_metrics = json_is_true(json_object_get(c, "status_code_metrics"));
    k->latency_metrics = json_is_true(json_object_get(c, "latency_metrics"));
    k->bandwidth_metrics = json_is_true(json_object_get(c, "bandwidth_metrics"));
    k->upstream_health_metrics = json_is_true(json_object_get(c, "upstream_health_metrics"));
    aigw_metrics_plugin_ref(1);
    return k;
}

static void free_conf(void *conf)
{
    if (!conf)
        return;
    aigw_metrics_plugin_ref(-1);
    free(conf);
}

static long long ms(uint64_t a, uint64_t b)
{
    return b > a ? (long long)((b - a) / 1000000) : 0;
}

/* The request's size as Kong's serializer gives it (request.size: head and body), computed as
 * plugins/logrec.c does for log records. */
static uint64_t request_size(const aigw_http_req_t *req)
{
    uint64_t head = req->method_name.n + req->target.n + 12;
    for (size_t i = 0; i < req->n_headers; i++)
        head += req->headers[i].name.n + req->headers[i].value.n + 4;
    return head + 2 + req->body_len;
}

static uint64_t response_size(const aigw_plugin_run_t *run)
{
    uint64_t head = 0;
    if (run->log.n_resp_headers) {
        const char *reason = llhttp_status_name((llhttp_status_t)run->status);
        head = 15 + (reason ? strlen(reason) : 0);
        for (size_t i = 0; i < run->log.n_resp_headers; i++)
            head += run->log.resp_headers[i].name.n + run->log.resp_headers[i].value.n + 4;
    }
    return head + run->req->bytes_sent;
}

static void log_phase(aigw_plugin_run_t *run, void *conf)
{
    const conf_t *c = conf;
    aigw_metrics_export_upstream_health(c->upstream_health_metrics);
    if (!run->route)
        return;
    const aigw_http_req_t *req = run->req;
    aigw_metrics_obs_t o = { 0 };
    if (run->service)
        o.service = run->service->name.n ? run->service->name : run->service->host;
    else
        o.service = AIGW_STR("");
    o.route = run->route->name.n ? run->route->name : aigw_str_c(run->route->id);
    o.consumer = c->per_consumer && run->consumer ? run->consumer->username : AIGW_STR("");
    if (c->status_code_metrics) {
        o.has_status = 1;
        o.code = run->status ? run->status : req->status;
        o.from_service = run->log.proxied;
    }
    if (c->latency_metrics) {
        uint64_t now = uv_hrtime();
        int proxied = run->log.proxied;
        size_t nt = run->log.n_tries < 4 ? run->log.n_tries : 4;
        uint64_t last_try = nt ? run->log.tries[nt - 1].start_ns : 0;
        o.has_latency = 1;
        o.request_ms = ms(req->start_ns, now);
        o.kong_ms = proxied ? ms(req->start_ns, run->log.upstream_start_ns) : o.request_ms;
        o.upstream_ms = proxied ? ms(last_try, run->log.upstream_head_ns) : -1;
    }
    if (c->bandwidth_metrics) {
        o.has_bandwidth = 1;
        o.ingress = request_size(req);
        o.egress = response_size(run);
    }
    aigw_metrics_observe(&o);
}

const aigw_plugin_def_t aigw_plugin_def_prometheus = {
    .name = "prometheus",
    .priority = 13,
    .configure = configure,
    .free_conf = free_conf,
    .log = log_phase,
};
