/* aigwd/admin/admin.c: see admin.h. Shapes follow kong/api/routes/kong.lua and health.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "admin/admin.h"
#include "core/log.h"
#include "http/server.h"
#include "store/ping.h"

/* The Kong Admin API level aigw implements: what decK and Kong Manager read from GET /. */
#define KONG_API_VERSION "3.9.1"

struct aigw_admin {
    const aigw_conf_t *conf;
    char node_id[40];
    char hostname[256];
    aigw_store_probe_t *probe;
    aigw_db_t probe_kind;
};

aigw_admin_t *aigw_admin_new(const aigw_conf_t *conf, const char *node_id, const char *hostname)
{
    aigw_admin_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->conf = conf;
    aigw_strlcpy(a->node_id, node_id, sizeof(a->node_id));
    aigw_strlcpy(a->hostname, hostname, sizeof(a->hostname));
    return a;
}

void aigw_admin_set_conf(aigw_admin_t *a, const aigw_conf_t *conf)
{
    a->conf = conf;
}

void aigw_admin_free(aigw_admin_t *a)
{
    if (!a)
        return;
    aigw_store_probe_close(a->probe);
    free(a);
}

/* ---- responses ------------------------------------------------------------------------- */

static void respond_json(aigw_http_req_t *req, int status, json_t *body)
{
    char lat[24];
    uint64_t ms = (uv_hrtime() - req->start_ns) / 1000000;
    size_t ln = aigw_u64_to_dec(lat, ms);
    aigw_http_resp_header_t h[4] = {
        { AIGW_STR("Content-Type"), AIGW_STR("application/json; charset=utf-8") },
        { AIGW_STR("Access-Control-Allow-Origin"), AIGW_STR("*") },
        { AIGW_STR("X-Kong-Admin-Latency"), { lat, ln } },
    };
    size_t nh = (aigw_http_req_headers(req) & AIGW_HDR_ADMIN_LATENCY) ? 3 : 2;
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    if (body && !text) {
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    aigw_http_respond(req, status, h, nh, text, text ? strlen(text) : 0);
    free(text);
}

static void respond_message(aigw_http_req_t *req, int status, const char *msg)
{
    json_t *o = json_pack("{s:s}", "message", msg);
    respond_json(req, status, o);
    json_decref(o);
}

/* OPTIONS on a known path (api_helpers.lua cors + Allow). */
static void respond_options(aigw_http_req_t *req, const char *methods)
{
    const aigw_http_header_t *rh =
        aigw_http_req_header(req, AIGW_STR("access-control-request-headers"));
    aigw_http_resp_header_t h[4] = {
        { AIGW_STR("Allow"), aigw_str_c(methods) },
        { AIGW_STR("Access-Control-Allow-Methods"), aigw_str_c(methods) },
        { AIGW_STR("Access-Control-Allow-Headers"),
          rh ? rh->value : AIGW_STR("Content-Type") },
        { AIGW_STR("Access-Control-Allow-Origin"), AIGW_STR("*") },
    };
    aigw_http_respond(req, 204, h, 4, NULL, 0);
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
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:I}, s:{s:o, s:o}, s:o, s:{s:i}}",
                          "tagline", "Welcome to aigw",
                          "version", KONG_API_VERSION,
                          "aigw_version", AIGW_VERSION,
                          "edition", "community",
                          "hostname", a->hostname,
                          "timers", "running", 0, "pending", (json_int_t)st.active,
                          "plugins", "available_on_server", json_object(),
                          "enabled_in_cluster", json_array(),
                          "configuration", conf,
                          "pids", "master", (int)getpid());
    if (!o) {
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    json_object_set_new(o, "node_id", json_string(a->node_id));
    respond_json(req, 200, o);
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
            respond_message(req, 400, "invalid unit 'unit' (expected 'k/K', 'm/M', or 'g/G')");
            return;
        }
        unit = (char)(v.p[0] | 0x20);
    }
    if (query_arg(req, "scale", &v)) {
        unsigned long long s;
        if (aigw_str_to_u64(v, 20, &s) != 0) {
            respond_message(req, 400, "invalid scale");
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
    if (a->conf->database != AIGW_DB_OFF) {
        /* Reconnect lazily: a database that was down at the last ping may be back. */
        if (!a->probe || a->probe_kind != a->conf->database) {
            char err[512];
            aigw_store_probe_close(a->probe);
            a->probe = aigw_store_probe_open(a->conf, err, sizeof(err));
            a->probe_kind = a->conf->database;
            if (!a->probe)
                AIGW_LOG(AIGW_LOG_ERR, "database unreachable: %s", err);
        }
        int ok = aigw_store_probe_ping(a->probe);
        json_object_set_new(o, "database", json_pack("{s:b}", "reachable", ok));
    }
    respond_json(req, 200, o);
    json_decref(o);
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
        if (status_only && strcmp(r->path, "/status") != 0)
            continue;
        if (!aigw_str_eq(path, aigw_str_c(r->path)))
            continue;
        if (req->method == HTTP_GET || req->method == HTTP_HEAD)
            r->get(a, req);
        else if (req->method == HTTP_OPTIONS)
            respond_options(req, r->allow);
        else
            respond_message(req, 405, "Method not allowed");
        return;
    }
    respond_message(req, 404, "Not found");
}

void aigw_admin_handle(aigw_http_req_t *req, void *ud)
{
    serve(ud, req, 0);
}

void aigw_admin_handle_status_listener(aigw_http_req_t *req, void *ud)
{
    serve(ud, req, 1);
}
