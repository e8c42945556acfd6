/* aigwd/proxy/metrics.h: the process-wide metrics registry behind the prometheus plugin and
 * GET /metrics (Kong 3.9 kong/plugins/prometheus/exporter.lua, prometheus.lua), and its
 * Prometheus text exposition (format 0.0.4).
 *
 * Recording: the plugin's log phase hands one observation per request to
 * aigw_metrics_observe() on the request's worker thread. Each thread records into its own
 * shard (created on the thread's first observation): a writer-private hash index over an
 * append-only array of series whose values are relaxed atomics, so recording takes no lock
 * and the render side only reads. The number of series over all shards is capped
 * (AIGW_METRICS_MAX_SERIES); an observation that would need a new series past the cap is not
 * recorded and counted in aigw_metrics_series_dropped_total.
 *
 * Rendering (aigw_metrics_render, any thread; the admin thread in practice, as it may block
 * briefly on the upstream-health read) sums the shards and writes, in Kong's order (metric
 * keys sorted), HELP/TYPE lines and samples:
 *   always     kong_datastore_reachable, kong_memory_lua_shared_dict_bytes,
 *              kong_memory_lua_shared_dict_total_bytes, kong_memory_workers_lua_vms_bytes,
 *              kong_nginx_connections_total, kong_nginx_requests_total, kong_nginx_timers,
 *              kong_node_info, kong_upstream_target_health (once a request logged by a
 *              prometheus instance with upstream_health_metrics = true, until one logged by
 *              an instance without it, as Kong), and aigw's own aigw_* metrics;
 *   only while a prometheus plugin is configured (enabled) in a loaded runtime:
 *              kong_nginx_metric_errors_total and the request metrics recorded so far
 *              (kong_http_requests_total, kong_bandwidth_bytes, kong_kong_latency_ms,
 *              kong_upstream_latency_ms, kong_request_latency_ms).
 * Memory: every shard lives until aigw_metrics_shutdown(). */
#ifndef AIGW_PROXY_METRICS_H
#define AIGW_PROXY_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include "common/sbuf.h"
#include "common/str.h"

#define AIGW_METRICS_MAX_SERIES 20000

/* One request as the prometheus plugin saw it (kong/plugins/prometheus/exporter.lua log).
 * Strings are borrowed for the call. */
typedef struct aigw_metrics_obs {
    aigw_str_t service;       /* service name, else its host; empty without a service */
    aigw_str_t route;         /* route name, else its id */
    aigw_str_t consumer;      /* per_consumer: the consumer's username; else empty */
    int has_status;           /* status_code_metrics */
    int code;                 /* the response status */
    int from_service;         /* source="service" (the upstream answered), else "kong" */
    int has_latency;          /* latency_metrics */
    long long kong_ms;        /* < 0: not observed */
    long long upstream_ms;    /* < 0: not observed (no upstream answer) */
    long long request_ms;     /* < 0: not observed */
    int has_bandwidth;        /* bandwidth_metrics */
    uint64_t ingress, egress; /* request / response size in bytes (0: not counted) */
} aigw_metrics_obs_t;

/* Any thread (a worker's log phase). Never blocks; allocates only for a new series. */
void aigw_metrics_observe(const aigw_metrics_obs_t *o);

/* Any thread. A prometheus plugin instance was configured (+1) or freed (-1): while the count
 * is positive the request metrics are exposed (Kong's IS_PROMETHEUS_ENABLED). */
void aigw_metrics_plugin_ref(int delta);
/* Any thread. Kong's set_export_upstream_health_metrics, called by every log phase. */
void aigw_metrics_export_upstream_health(int on);

/* Any thread. aigw's own counters, fed by other modules. */
void aigw_metrics_ratelimit_rejected(void);     /* a rate-limiting plugin answered 429 */

/* What the caller of render knows at scrape time. */
typedef struct aigw_metrics_scrape {
    const char *node_id;      /* kong_node_info / node_id labels; NULL: "" */
    const char *version;      /* kong_node_info's version label; NULL: "" */
    int datastore_reachable;  /* 1, or 0 (Kong: connector:connect() at scrape time) */
} aigw_metrics_scrape_t;

/* Any thread (may block briefly: reads the upstream health of the current runtime, which
 * resolves target names never resolved before). Appends the exposition to out (check
 * out->oom). The Content-Type to answer with is AIGW_METRICS_CONTENT_TYPE. */
void aigw_metrics_render(aigw_sbuf_t *out, const aigw_metrics_scrape_t *s);
#define AIGW_METRICS_CONTENT_TYPE "text/plain; charset=UTF-8"

/* Main thread at exit, after every worker ended: frees every shard. Also resets every
 * counter (unit tests use it between cases); threads that recorded before get a new shard. */
void aigw_metrics_shutdown(void);

/* Appends a label value escaped as the exposition format and Kong require: invalid UTF-8
 * cuts the value at the first bad byte (Kong), '\\' '"' and newline are escaped. */
void aigw_metrics__escape(aigw_sbuf_t *out, aigw_str_t v);

#endif
