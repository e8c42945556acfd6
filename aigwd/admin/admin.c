/* aigwd/admin/admin.c: see admin.h. Shapes follow kong/api/routes/kong.lua and health.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "admin/admin.h"
#include "admin/respond.h"
#include "core/log.h"
#include "http/server.h"
#include "admin/api.h"
#include "admin/upstream_health.h"
#include "common/sbuf.h"
#include "proxy/metrics.h"
#include "schema/schema.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

/* The Kong Admin API level aigw implements: what decK and Kong Manager read from GET /. */
#define KONG_API_VERSION "3.9.1"

struct aigw_admin {
    const aigw_conf_t *conf;
    char node_id[40];
    char hostname[256];
    aigw_api_t api;              /* api.store: opened lazily, reopened after a failure */
    aigw_db_t store_kind;
};

/* The store, (re)opened on demand: a database that was down may be back. NULL if not. */
static aigw_store_t *store_of(aigw_admin_t *a)
{
    if (a->api.store && a->store_kind != a->conf->database) {
        aigw_store_close(a->api.store);
        a->api.store = NULL;
    }
    if (!a->api.store) {
        char err[512];
        a->api.store = aigw_store_open(a->conf, err, sizeof(err));
        a->store_kind = a->conf->database;
        if (!a->api.store)
            AIGW_LOG(AIGW_LOG_ERR, "database unreachable: %s", err);
    }
    return a->api.store;
}

aigw_admin_t *aigw_admin_new(const aigw_conf_t *conf, const char *node_id, const char *hostname)
{
    aigw_admin_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->conf = conf;
    a->api.conf = conf;
    aigw_strlcpy(a->node_id, node_id, sizeof(a->node_id));
    aigw_strlcpy(a->hostname, hostname, sizeof(a->hostname));
    return a;
}

void aigw_admin_set_conf(aigw_admin_t *a, const aigw_conf_t *conf)
{
    a->conf = conf;
    a->api.conf = conf;
}

void aigw_admin_on_change(aigw_admin_t *a, void (*fn)(void *ud), void *ud)
{
    a->api.on_change = fn;
    a->api.on_change_ud = ud;
}

void aigw_admin_free(aigw_admin_t *a)
{
    if (!a)
        return;
    aigw_store_close(a->api.store);
    free(a);
}

/* ---- query arguments --------------------------------------------------------------------- */

/* Value of query argument name (not decoded: the values used here are plain tokens). */
static int query_arg(const aigw_http_req_t *req, const char *name, aigw_str_t *out)
{
    aigw_str_t q = req->query, want = aigw_str_c(name);
    const char *p = q.p, *end = q.p + q.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *se = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(se - p));
        aigw_str_t k = { p, (size_t)((eq ? eq : se) - p) };
        if (aigw_str_eq(k, want)) {
            *out = eq ? (aigw_str_t){ eq + 1, (size_t)(se - eq - 1) } : AIGW_STR("");
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* ---- GET / ------------------------------------------------------------------------------ */

static void handle_root(aigw_admin_t *a, aigw_http_req_t *req)
{
    aigw_http_stats_total_t st;
    aigw_http_stats_sum(&st);
    json_t *conf = a->conf->effective ? json_deep_copy(a->conf->effective) : json_object();
    json_t *available = json_object();
    for (const aigw_plugin_schema_t *const *p = aigw_plugins; *p; p++)
        json_object_set_new(available, (*p)->name,
                            json_pack("{s:s, s:i}", "version", (*p)->version, "priority",
                                      (*p)->priority));
    json_t *enabled = NULL;
    aigw_store_t *st0 = store_of(a);
    if (st0) {
        aigw_db_error_t err = { 0 };
        enabled = aigw_store_plugin_names(st0, &err);
        aigw_db_error_clear(&err);
    }
    if (!enabled)
        enabled = json_array();
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:I}, s:{s:o, s:o}, s:o, s:{s:i}}",
                          "tagline", "Welcome to aigw",
                          "version", KONG_API_VERSION,
                          "aigw_version", AIGW_VERSION,
                          "edition", "community",
                          "hostname", a->hostname,
                          "timers", "running", 0, "pending", (json_int_t)st.active,
                          "plugins", "available_on_server", available,
                          "enabled_in_cluster", enabled,
                          "configuration", conf,
                          "pids", "master", (int)getpid());
    if (!o) {
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    json_object_set_new(o, "node_id", json_string(a->node_id));
    aigw_admin_respond_json(req, 200, o);
    json_decref(o);
}

/* ---- GET /status ------------------------------------------------------------------------- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* health.lua: ?unit=b|k|m|g and ?scale=N; unit b gives a number, others "12.34 MiB". */
static json_t *mem_value(uint64_t bytes, char unit, int scale)
{
    if (unit == 'b')
        return json_integer((json_int_t)bytes);
    double v = (double)bytes;
    const char *suffix = " MiB";
    switch (unit) {
    case 'k': v /= 1024.0; suffix = " KiB"; break;
    case 'g': v /= 1024.0 * 1024.0 * 1024.0; suffix = " GiB"; break;
    default: v /= 1024.0 * 1024.0; break;
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f%s", scale, v, suffix);
    return json_string(buf);
}

static void handle_status(aigw_admin_t *a, aigw_http_req_t *req)
{
    char unit = 'm';
    int scale = 2;
    aigw_str_t v;
    if (query_arg(req, "unit", &v)) {
        if (v.n != 1 || !strchr("bkmgBKMG", v.p[0])) {
            aigw_admin_respond_message(req, 400, "invalid unit 'unit' (expected 'k/K', 'm/M', or 'g/G')");
            return;
        }
        unit = (char)(v.p[0] | 0x20);
    }
    if (query_arg(req, "scale", &v)) {
        unsigned long long s;
        if (aigw_str_to_u64(v, 20, &s) != 0) {
            aigw_admin_respond_message(req, 400, "invalid scale");
            return;
        }
        scale = (int)s;
    }
    aigw_http_stats_total_t st;
    aigw_http_stats_sum(&st);
    json_t *server = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                               "connections_accepted", (json_int_t)st.accepted,
                               "connections_active", (json_int_t)st.active,
                               "connections_handled", (json_int_t)st.handled,
                               "connections_reading", (json_int_t)st.reading,
                               "connections_writing", (json_int_t)st.writing,
                               "connections_waiting", (json_int_t)st.waiting,
                               "total_requests", (json_int_t)st.total_requests);
    json_t *memory = json_pack("{s:o, s:o, s:I}",
                               "rss", mem_value((uint64_t)rss_bytes(), unit, scale),
                               "request_arenas", mem_value(st.arena_bytes, unit, scale),
                               "workers", (json_int_t)st.workers);
    json_t *o = json_pack("{s:o, s:o}", "server", server, "memory", memory);
    char chash[33];
    aigw_snapshot_config_hash(chash);
    json_object_set_new(o, "configuration_hash", json_string(chash));
    if (a->conf->database != AIGW_DB_OFF) {
        aigw_store_t *store = store_of(a);
        int ok = store && aigw_store_ping(store);
        json_object_set_new(o, "database", json_pack("{s:b}", "reachable", ok));
    }
    aigw_admin_respond_json(req, 200, o);
    json_decref(o);
}

/* ---- GET /metrics (prometheus plugin; kong/plugins/prometheus/api.lua, status_api.lua) ---- */

static void handle_metrics(aigw_admin_t *a, aigw_http_req_t *req)
{
    int reachable = 1;     /* Kong: kong.db.connector:connect() at scrape time */
    if (a->conf->database != AIGW_DB_OFF) {
        aigw_store_t *store = store_of(a);
        reachable = store && aigw_store_ping(store);
    }
    aigw_metrics_scrape_t sc = { a->node_id, KONG_API_VERSION, reachable };
    aigw_sbuf_t b = { 0 };
    aigw_metrics_render(&b, &sc);
    if (b.oom) {
        aigw_sbuf_free(&b);
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    aigw_http_resp_header_t h[1] = {
        { AIGW_STR("Content-Type"), AIGW_STR(AIGW_METRICS_CONTENT_TYPE) },
    };
    aigw_http_respond(req, 200, h, 1, b.p ? b.p : "", b.n);
    aigw_sbuf_free(&b);
}

/* ---- routing ------------------------------------------------------------------------------ */

typedef struct route {
    const char *path;
    const char *allow;     /* for OPTIONS and 405 */
    void (*get)(aigw_admin_t *a, aigw_http_req_t *req);
} route_t;

static const route_t routes[] = {
    { "/", "GET, HEAD, OPTIONS", handle_root },
    { "/status", "GET, HEAD, OPTIONS", handle_status },
    { "/metrics", "GET, HEAD, OPTIONS", handle_metrics },
};

static aigw_str_t strip_trailing_slash(aigw_str_t p)
{
    while (p.n > 1 && p.p[p.n - 1] == '/')
        p.n--;
    return p;
}

static void serve(aigw_admin_t *a, aigw_http_req_t *req, int status_only)
{
    aigw_str_t path = strip_trailing_slash(req->path);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const route_t *r = &routes[i];
        if (status_only && strcmp(r->path, "/status") != 0 && strcmp(r->path, "/metrics") != 0)
            continue;
        if (!aigw_str_eq(path, aigw_str_c(r->path)))
            continue;
        if (req->method == HTTP_GET || req->method == HTTP_HEAD)
            r->get(a, req);
        else if (req->method == HTTP_OPTIONS)
            aigw_admin_respond_options(req, r->allow);
        else
            aigw_admin_respond_message(req, 405, "Method not allowed");
        return;
    }
    if (!status_only) {
        store_of(a);
        /* /upstreams/{u}/health, /targets/all, .../healthy|unhealthy (upstream_health.h) */
        if (aigw_upstream_health_handle(&a->api, req, a->node_id))
            return;
        if (aigw_api_handle(&a->api, req))
            return;
    }
    aigw_admin_respond_message(req, 404, "Not found");
}

void aigw_admin_handle(aigw_http_req_t *req, void *ud)
{
    serve(ud, req, 0);
}

void aigw_admin_handle_status_listener(aigw_http_req_t *req, void *ud)
{
    serve(ud, req, 1);
}

