/* aigwd/admin/upstream_health.c: see upstream_health.h. Shapes, status codes and messages
 * follow Kong 3.9.3: kong/api/routes/upstreams.lua, kong/db/dao/targets.lua
 * (page_for_upstream_with_health, post_health), kong/runloop/balancer/healthcheckers.lua and
 * kong/tools/ip.lua (how an {address} is read). The targets come from the store, as Kong
 * reads them from its database; their health from the proxy's balancers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <jansson.h>
#include "admin/decode.h"
#include "admin/respond.h"
#include "admin/upstream_health.h"
#include "http/server.h"
#include "proxy/balancer.h"
#include "proxy/loader.h"
#include "schema/schema.h"
#include "store/store.h"

#define MAX_SEGS 7
#define PAGE_SIZE 100          /* Kong's pagination.page_size */
#define MAX_PAGE_SIZE 1000     /* and max_page_size */
#define DEFAULT_PORT 8000      /* kong/db/dao/targets.lua DEFAULT_PORT */
#define RUNTIME_WAIT_MS 1000   /* how long a request waits for the runtime to reach the store */

static const char *const endpoints_all[] = {
    "/upstreams/{upstreams}/health",
    "/upstreams/{upstreams}/targets/all",
    "/upstreams/{upstreams}/targets/{targets}/healthy",
    "/upstreams/{upstreams}/targets/{targets}/unhealthy",
    "/upstreams/{upstreams}/targets/{targets}/{address}/healthy",
    "/upstreams/{upstreams}/targets/{targets}/{address}/unhealthy",
    NULL,
};

static const char *const endpoints_cp[] = {
    "/upstreams/{upstreams}/health",
    "/upstreams/{upstreams}/targets/all",
    NULL,
};

typedef struct hcall {
    aigw_api_t *api;
    aigw_http_req_t *req;
    const char *node_id;
    char *segs[MAX_SEGS];       /* percent-decoded path segments */
    aigw_str_t raw[MAX_SEGS];   /* the same, as sent */
    size_t nsegs;
    json_t *query;              /* decoded URI args */
} hcall_t;

enum { R_NONE = 0, R_HEALTH, R_ALL, R_SET };

/* ---- answers -------------------------------------------------------------------------------- */

static void not_found(hcall_t *c)
{
    aigw_admin_respond_message(c->req, 404, "Not found");
}

static void unexpected(hcall_t *c)
{
    aigw_admin_respond_message(c->req, 500, "An unexpected error occurred");
}

static void db_error(hcall_t *c, aigw_db_error_t *err)
{
    aigw_api_respond_db_error(c->req, err);
    aigw_db_error_clear(err);
}

/* Kong's invalid_size error (code 9). */
static void invalid_size(hcall_t *c, const char *msg)
{
    aigw_db_error_t e = { .code = AIGW_DBE_INVALID_SIZE };
    snprintf(e.message, sizeof(e.message), "%s", msg);
    aigw_api_respond_db_error(c->req, &e);
}

/* Methods a route does not take: OPTIONS lists the ones it does, others are 405. 1 when
 * answered. */
static int other_method(hcall_t *c, int is_get_route)
{
    int m = c->req->method;
    if (is_get_route ? (m == HTTP_GET || m == HTTP_HEAD) : m == HTTP_PUT)
        return 0;
    if (m == HTTP_OPTIONS)
        aigw_admin_respond_options(c->req, is_get_route ? "GET, HEAD, OPTIONS" : "OPTIONS, PUT");
    else
        aigw_admin_respond_message(c->req, 405, "Method not allowed");
    return 1;
}

/* ---- path ----------------------------------------------------------------------------------- */

/* Splits the path as the entity API does (empty segments and a trailing slash ignored).
 * -1 when deeper than any of our routes or out of memory. */
static int split_path(hcall_t *c)
{
    return aigw_decode_path(c->req->path, c->segs, c->raw, MAX_SEGS, &c->nsegs);
}

static int route_of(const hcall_t *c)
{
    if (c->nsegs < 3 || strcmp(c->segs[0], "upstreams") != 0)
        return R_NONE;
    if (c->nsegs == 3 && strcmp(c->segs[2], "health") == 0)
        return R_HEALTH;
    if (strcmp(c->segs[2], "targets") != 0)
        return R_NONE;
    if (c->nsegs == 4 && strcmp(c->segs[3], "all") == 0)
        return R_ALL;
    if (c->nsegs != 5 && c->nsegs != 6)
        return R_NONE;
    const char *last = c->segs[c->nsegs - 1];
    if (strcmp(last, "healthy") != 0 && strcmp(last, "unhealthy") != 0)
        return R_NONE;
    /* upstream targets' health management is not available in hybrid mode */
    if (c->api->conf && c->api->conf->role == AIGW_ROLE_CONTROL_PLANE)
        return R_NONE;
    return R_SET;
}

/* ---- store ---------------------------------------------------------------------------------- */

/* The upstream by id or name. 0 found (*out a new reference), 1 not found, -1 answered. */
static int find_upstream(hcall_t *c, json_t **out)
{
    const aigw_entity_t *e = aigw_schema_entity("upstreams");
    const char *key = c->segs[1];
    aigw_db_error_t err = { 0 };
    int r;
    if (aigw_schema_is_uuid(key))
        r = aigw_store_get(c->api->store, e, key, out, &err);
    else
        r = aigw_store_find(c->api->store, e, e->endpoint_key, key, out, &err);
    if (r < 0)
        db_error(c, &err);
    return r;
}

/* Every target of upstream uid (*out: a new array, in the store's order). 0, or -1 answered. */
static int all_targets(hcall_t *c, const char *uid, json_t **out)
{
    const aigw_entity_t *e = aigw_schema_entity("targets");
    json_t *all = json_array();
    char *offset = NULL;
    for (;;) {
        aigw_store_query_t q = { .size = MAX_PAGE_SIZE, .offset = offset, .fk_field = "upstream",
                                 .fk_id = uid };
        aigw_store_page_t page = { 0 };
        aigw_db_error_t err = { 0 };
        int r = aigw_store_list(c->api->store, e, &q, &page, &err);
        free(offset);
        offset = NULL;
        if (r != 0) {
            json_decref(all);
            db_error(c, &err);
            return -1;
        }
        json_array_extend(all, page.data);
        json_decref(page.data);
        if (!page.offset)
            break;
        offset = page.offset;
    }
    *out = all;
    return 0;
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* kong/db/dao/targets.lua sort_targets, reversed: newest first, then the greater id. */
static int newest_first(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    double ca = json_number_value(json_object_get(a, "created_at"));
    double cb = json_number_value(json_object_get(b, "created_at"));
    if (ca != cb)
        return ca < cb ? 1 : -1;
    const char *ia = str_of(a, "id"), *ib = str_of(b, "id");
    return -strcmp(ia ? ia : "", ib ? ib : "");
}

/* kong/runloop/balancer/healthcheckers.lua is_upstream_using_healthcheck, on the entity. */
static int using_healthchecks(const json_t *upstream)
{
    const json_t *hc = json_object_get(upstream, "healthchecks");
    const json_t *act = json_object_get(hc, "active");
    const json_t *pun = json_object_get(json_object_get(hc, "passive"), "unhealthy");
    return json_number_value(json_object_get(json_object_get(act, "healthy"), "interval")) != 0 ||
           json_number_value(json_object_get(json_object_get(act, "unhealthy"), "interval")) !=
               0 ||
           json_number_value(json_object_get(pun, "tcp_failures")) != 0 ||
           json_number_value(json_object_get(pun, "timeouts")) != 0 ||
           json_number_value(json_object_get(pun, "http_failures")) != 0;
}

/* ---- runtime -------------------------------------------------------------------------------- */

/* The proxy's current runtime (a reference for the caller, or NULL when the node runs no
 * proxy). A write the client just made reaches the runtime a few milliseconds later (the
 * snapshot builder, then the loader): wait, a bounded time, until the runtime has loaded
 * the store's version, so that a client reads its own writes. */
static aigw_runtime_t *current_runtime(hcall_t *c)
{
    aigw_runtime_t *rt = aigw_runtime_current();
    if (!rt || !c->api->conf || c->api->conf->role != AIGW_ROLE_TRADITIONAL)
        return rt;
    long long version = 0;
    aigw_db_error_t err = { 0 };
    if (aigw_store_version(c->api->store, &version, &err) != 0) {
        aigw_db_error_clear(&err);
        return rt;
    }
    struct timespec step = { 0, 2 * 1000 * 1000 };
    for (int waited = 0; rt && rt->version < version && waited < RUNTIME_WAIT_MS; waited += 2) {
        aigw_runtime_unref(rt);
        nanosleep(&step, NULL);
        rt = aigw_runtime_current();
    }
    return rt;
}

/* Lua's cjson writes an empty table as {}: Kong's empty "addresses" and "hosts" lists. */
static void empty_as_object(json_t *parent, const char *key)
{
    const json_t *v = json_object_get(parent, key);
    if (json_is_array(v) && json_array_size(v) == 0)
        json_object_set_new(parent, key, json_object());
}

/* ---- numbers as Lua reads them -------------------------------------------------------------- */

/* Lua's tonumber() on a query value: decimal (with fraction or exponent) or 0x hex, spaces
 * around allowed. 0 with *out, or -1. */
static int lua_tonumber(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    int hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    for (const char *q = p + (hex ? 2 : 0); *q && *q != ' ' && !(*q >= '\t' && *q <= '\r');
         q++) {
        int ok = hex ? aigw_hex_digit(*q) >= 0
                     : ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' ||
                        *q == '-' || *q == '+');
        if (!ok)
            return -1;
    }
    char *end = NULL;
    double d = hex ? (double)strtoull(p + 2, &end, 16) : strtod(s, &end);
    if (hex && *s == '-')
        d = -d;
    if (!end || end == (hex ? p + 2 : s))
        return -1;
    while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
        end++;
    if (*end)
        return -1;
    *out = d;
    return 0;
}

/* A number as Lua's tostring writes it ("%.14g"). */
static void lua_tostring(double d, char *buf, size_t len)
{
    snprintf(buf, len, "%.14g", d);
}

/* ---- GET /upstreams/{u}/health -------------------------------------------------------------- */

static void append_escaped(char *buf, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = strlen(buf);
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            buf[o++] = (char)ch;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[ch >> 4];
            buf[o++] = hex[ch & 15];
        }
    }
    buf[o] = '\0';
}

/* The health entry of target string t in the balancer's body, or NULL. */
static json_t *health_of(const json_t *hbody, const char *t)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(hbody, "data"), i, v)
    {
        const char *s = str_of(v, "target");
        if (s && t && strcmp(s, t) == 0)
            return v;
    }
    return NULL;
}

static void balancer_health(hcall_t *c, const json_t *upstream)
{
    aigw_runtime_t *rt = current_runtime(c);
    json_t *body = rt ? aigw_balancers_health_json(rt->balancers, str_of(upstream, "id"), 1,
                                                   c->node_id)
                      : NULL;
    aigw_runtime_unref(rt);
    if (body) {
        json_t *details = json_object_get(json_object_get(body, "data"), "details");
        size_t i;
        json_t *h;
        json_array_foreach(json_object_get(details, "hosts"), i, h)
            empty_as_object(h, "addresses");
        empty_as_object(details, "hosts");
    } else {
        /* no balancer (yet): Kong's data is nil, so the key is absent */
        body = json_pack("{s:n}", "next");
        json_object_set_new(body, "node_id", c->node_id ? json_string(c->node_id) : json_null());
    }
    aigw_admin_respond_json(c->req, 200, body);
    json_decref(body);
}

static void health(hcall_t *c)
{
    if (other_method(c, 1))
        return;
    json_t *upstream = NULL;
    int r = find_upstream(c, &upstream);
    if (r != 0) {
        if (r == 1)
            not_found(c);
        return;
    }
    const json_t *bh = json_object_get(c->query, "balancer_health");
    if ((json_is_string(bh) && strcmp(json_string_value(bh), "1") == 0) ||
        (json_is_integer(bh) && json_integer_value(bh) == 1)) {
        balancer_health(c, upstream);
        json_decref(upstream);
        return;
    }

    /* kong/api/endpoints.lua get_page_size, then targets.lua page_for_upstream */
    double size = PAGE_SIZE, offset = 0;
    const json_t *sv = json_object_get(c->query, "size");
    if (sv && lua_tonumber(sv, &size) != 0) {
        invalid_size(c, "size must be a number");
        json_decref(upstream);
        return;
    }
    if (size > MAX_PAGE_SIZE)
        size = MAX_PAGE_SIZE;
    const json_t *ov = json_object_get(c->query, "offset");
    if (ov && lua_tonumber(ov, &offset) != 0) {
        unexpected(c);   /* Kong: arithmetic on a string value */
        json_decref(upstream);
        return;
    }

    const aigw_entity_t *te = aigw_schema_entity("targets");
    json_t *targets = NULL;
    if (all_targets(c, str_of(upstream, "id"), &targets) != 0) {
        json_decref(upstream);
        return;
    }
    size_t n = json_array_size(targets);
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        json_decref(targets);
        json_decref(upstream);
        unexpected(c);
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(targets, i);
    qsort(v, n, sizeof(*v), newest_first);
    /* the newest entry of each target string only */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = str_of(v[i], "target");
        int seen = 0;
        for (size_t k = 0; k < m && !seen; k++) {
            const char *u = str_of(v[k], "target");
            seen = t && u && strcmp(t, u) == 0;
        }
        if (!seen)
            v[m++] = v[i];
    }

    aigw_runtime_t *rt = current_runtime(c);
    json_t *hbody = rt ? aigw_balancers_health_json(rt->balancers, str_of(upstream, "id"), 0,
                                                    c->node_id)
                       : NULL;
    aigw_runtime_unref(rt);

    /* Lua: for i = 1 + offset, size + offset, stopping at the first missing entry */
    json_t *data = json_array();
    for (double i = 1 + offset; i <= size + offset; i++) {
        if (i != floor(i) || i < 1 || i > (double)m)
            break;
        const json_t *t = v[(size_t)i - 1];
        json_t *out = aigw_schema_output(te, t);
        if (json_is_null(json_object_get(out, "ttl")))
            json_object_del(out, "ttl");
        if (hbody) {
            json_t *h = health_of(hbody, str_of(t, "target"));
            json_t *hd = h ? json_object_get(h, "data") : NULL;
            if (h && json_array_size(json_object_get(hd, "addresses")) > 0)
                json_object_set(out, "health", json_object_get(h, "health"));
            else
                json_object_set_new(out, "health", json_string("DNS_ERROR"));
            if (hd) {
                json_t *copy = json_deep_copy(hd);
                empty_as_object(copy, "addresses");
                json_object_set_new(out, "data", copy);
            }
        }
        json_array_append_new(data, out);
    }
    double nxt = size + offset + 1;
    int has_next = nxt == floor(nxt) && nxt >= 1 && nxt <= (double)m;

    json_t *o = json_pack("{s:o}", "data", data);
    if (has_next) {
        char off[64], next[2048];
        lua_tostring(size + offset, off, sizeof(off));
        snprintf(next, sizeof(next), "/upstreams/%.*s/health?offset=", (int)c->raw[1].n,
                 c->raw[1].p);
        append_escaped(next, sizeof(next), off, strlen(off));
        json_object_set_new(o, "offset", json_string(off));
        json_object_set_new(o, "next", json_string(next));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    json_object_set_new(o, "node_id", c->node_id ? json_string(c->node_id) : json_null());
    aigw_admin_respond_json(c->req, 200, o);
    json_decref(o);
    json_decref(hbody);
    free(v);
    json_decref(targets);
    json_decref(upstream);
}

/* ---- GET /upstreams/{u}/targets/all ---------------------------------------------------------- */

static void targets_all(hcall_t *c)
{
    if (other_method(c, 1))
        return;
    /* the DAO's page_for_upstream: an integer size in 1..1000 */
    aigw_store_query_t q = { .size = PAGE_SIZE, .fk_field = "upstream" };
    const json_t *sv = json_object_get(c->query, "size");
    if (sv) {
        double d;
        if (lua_tonumber(sv, &d) != 0) {
            invalid_size(c, "size must be a number");
            return;
        }
        if (d < 1 || d > MAX_PAGE_SIZE || d != floor(d)) {
            invalid_size(c, "size must be an integer between 1 and 1000");
            return;
        }
        q.size = (size_t)d;
    }
    q.offset = json_string_value(json_object_get(c->query, "offset"));
    json_t *upstream = NULL;
    int r = find_upstream(c, &upstream);
    if (r != 0) {
        if (r == 1)
            not_found(c);
        return;
    }
    q.fk_id = str_of(upstream, "id");
    const aigw_entity_t *te = aigw_schema_entity("targets");
    aigw_store_page_t page = { 0 };
    aigw_db_error_t err = { 0 };
    if (aigw_store_list(c->api->store, te, &q, &page, &err) != 0) {
        json_decref(upstream);
        db_error(c, &err);
        return;
    }
    json_t *data = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(page.data, i, t)
    {
        json_t *out = aigw_schema_output(te, t);
        if (json_is_null(json_object_get(out, "ttl")))
            json_object_del(out, "ttl");
        json_array_append_new(data, out);
    }
    json_t *o = json_pack("{s:o}", "data", data);
    if (page.offset) {
        char next[2048];
        snprintf(next, sizeof(next), "/upstreams/%.*s/targets/all?offset=", (int)c->raw[1].n,
                 c->raw[1].p);
        append_escaped(next, sizeof(next), page.offset, strlen(page.offset));
        json_object_set_new(o, "offset", json_string(page.offset));
        json_object_set_new(o, "next", json_string(next));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    aigw_admin_respond_json(c->req, 200, o);
    json_decref(o);
    json_decref(page.data);
    free(page.offset);
    json_decref(upstream);
}

/* ---- PUT /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy ---------------------------- */

typedef struct addr {
    int is_name;               /* a host name: every address of the target */
    int port;                  /* the address's port, DEFAULT_PORT when absent */
    char text[INET6_ADDRSTRLEN + 16];   /* "ip:port" / "[ip6]:port" for the balancer */
} addr_t;

static int parse_port(const char *s, int *port)
{
    if (!*s)
        return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v < 100000)
            v = v * 10 + (*s - '0');
    }
    if (v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* kong/tools/ip.lua normalize_ip: how Kong reads {address}. 0, or -1 where Kong fails (its
 * handler then raises an error: 500). */
static int parse_address(const char *a, addr_t *out)
{
    memset(out, 0, sizeof(*out));
    out->port = DEFAULT_PORT;
    size_t colons = 0, len = strlen(a);
    int digits_dots = len > 0;
    for (const char *p = a; *p; p++) {
        if (*p == ':')
            colons++;
        else if (!((*p >= '0' && *p <= '9') || *p == '.'))
            digits_dots = 0;
    }
    if (colons > 1) {   /* ipv6, bracketed when it has a port */
        char host[64];
        const char *port = NULL;
        if (a[0] == '[') {
            const char *rb = strchr(a, ']');
            if (!rb || (size_t)(rb - a - 1) >= sizeof(host))
                return -1;
            memcpy(host, a + 1, (size_t)(rb - a - 1));
            host[rb - a - 1] = '\0';
            if (rb[1]) {
                if (rb[1] != ':')
                    return -1;
                port = rb + 2;
            }
        } else {
            if (len >= sizeof(host))
                return -1;
            memcpy(host, a, len + 1);
        }
        struct in6_addr in6;
        if (inet_pton(AF_INET6, host, &in6) != 1)
            return -1;
        if (port && *port && parse_port(port, &out->port) != 0)
            return -1;
        char txt[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6, txt, sizeof(txt));
        snprintf(out->text, sizeof(out->text), "[%s]:%d", txt, out->port);
        return 0;
    }
    if (digits_dots) {   /* ipv4: four parts of 1-3 digits up to 255, optional :port */
        unsigned part[4] = { 0 };
        const char *p = a;
        for (int k = 0; k < 4; k++) {
            int nd = 0;
            while (*p >= '0' && *p <= '9' && nd < 4) {
                part[k] = part[k] * 10 + (unsigned)(*p++ - '0');
                nd++;
            }
            if (nd == 0 || nd > 3 || part[k] > 255)
                return -1;
            if (k < 3 && *p++ != '.')
                return -1;
        }
        if (*p == ':') {
            if (parse_port(p + 1, &out->port) != 0)
                return -1;
        } else if (*p) {
            return -1;
        }
        snprintf(out->text, sizeof(out->text), "%u.%u.%u.%u:%d", part[0], part[1], part[2],
                 part[3], out->port);
        return 0;
    }
    /* a name: [%d%a%-%.%_]+ with an optional :port; no segment ends with '-', no empty
     * segment but a trailing one */
    out->is_name = 1;
    const char *colon = strrchr(a, ':');
    size_t nlen = len;
    if (colon) {
        int port;
        if (parse_port(colon + 1, &port) == 0) {
            out->port = port;
            nlen = (size_t)(colon - a);
        }
    }
    if (nlen == 0)
        return -1;
    for (size_t i = 0; i < nlen; i++) {
        char ch = a[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '-' || ch == '.' || ch == '_'))
            return -1;
        if (ch == '-' && (i + 1 == nlen || a[i + 1] == '.'))
            return -1;
        if (ch == '.' && i + 1 < nlen && (i == 0 || a[i - 1] == '.'))
            return -1;
    }
    if (a[0] == '.' && nlen == 1)
        return -1;
    return 0;
}

/* The target's port: the digits after its last ':'. */
static int target_port(const char *target)
{
    const char *colon = target ? strrchr(target, ':') : NULL;
    int port = DEFAULT_PORT;
    if (colon && parse_port(colon + 1, &port) != 0)
        port = DEFAULT_PORT;
    return port;
}

/* The {address} of the request: the path's, else an "address" argument of the body or
 * query (Kong reads self.params). *out NULL when none. 0, or -1 answered. */
static int address_param(hcall_t *c, json_t **body, const json_t **out)
{
    *out = NULL;
    aigw_http_req_t *req = c->req;
    const aigw_http_header_t *ct = aigw_http_req_header(req, AIGW_STR("content-type"));
    aigw_body_kind_t kind;
    if (aigw_decode_kind(ct ? ct->value.p : NULL, ct ? ct->value.n : 0, (size_t)req->body_len, 0,
                         &kind) != 0) {
        aigw_http_respond(req, 415, NULL, 0, NULL, 0);
        return -1;
    }
    if (kind != AIGW_BODY_NONE) {
        char err[256] = "";
        int dr = aigw_decode_body(kind, ct ? ct->value.p : NULL, ct ? ct->value.n : 0, req->body,
                                  (size_t)req->body_len, NULL, NULL, body, err, sizeof(err));
        if (dr != AIGW_DECODE_OK) {
            if (dr == AIGW_DECODE_EBAD)
                aigw_admin_respond_message(req, 400, err[0] ? err : "Cannot parse JSON body");
            else
                unexpected(c);
            return -1;
        }
    }
    if (c->nsegs == 6)
        return 0;
    const json_t *v = json_is_object(*body) ? json_object_get(*body, "address") : NULL;
    if (!v)
        v = json_object_get(c->query, "address");
    *out = v;
    return 0;
}

static void set_health(hcall_t *c)
{
    if (other_method(c, 0))
        return;
    int healthy = strcmp(c->segs[c->nsegs - 1], "healthy") == 0;
    json_t *body = NULL, *upstream = NULL, *target = NULL, *targets = NULL;
    const json_t *addr_v = NULL;
    if (address_param(c, &body, &addr_v) != 0)
        goto out;
    int r = find_upstream(c, &upstream);
    if (r != 0) {
        if (r == 1)
            not_found(c);
        goto out;
    }
    const char *uid = str_of(upstream, "id");
    const char *key = c->segs[3];
    if (aigw_schema_is_uuid(key)) {
        aigw_db_error_t err = { 0 };
        r = aigw_store_get(c->api->store, aigw_schema_entity("targets"), key, &target, &err);
        if (r < 0) {
            db_error(c, &err);
            goto out;
        }
    } else {
        if (all_targets(c, uid, &targets) != 0)
            goto out;
        size_t i;
        json_t *t;
        json_array_foreach(targets, i, t)
        {
            const char *s = str_of(t, "target");
            if (s && strcmp(s, key) == 0) {
                target = json_incref(t);
                break;
            }
        }
    }
    const char *tu = target ? json_string_value(json_object_get(json_object_get(target,
                                                                                "upstream"),
                                                                "id"))
                            : NULL;
    if (!target || !tu || strcmp(tu, uid) != 0) {
        not_found(c);
        goto out;
    }

    /* targets.lua post_health: the address first (an unreadable one raises an error) */
    const char *address = NULL;
    int whole = 1;
    addr_t a;
    if (c->nsegs == 6 || addr_v) {
        const char *s = c->nsegs == 6 ? c->segs[4] : json_string_value(addr_v);
        if (!s || parse_address(s, &a) != 0) {
            unexpected(c);
            goto out;
        }
        if (a.is_name) {
            /* every address of the target's host name on that port */
            whole = a.port == target_port(str_of(target, "target"));
        } else {
            address = a.text;
        }
    }

    aigw_runtime_t *rt = current_runtime(c);
    char err[300] = "";
    int rc = -1;
    if (rt && whole)
        rc = aigw_balancers_set_health(rt->balancers, uid, str_of(target, "target"), address,
                                       healthy, err, sizeof(err));
    int has_balancer = rt && aigw_balancers_find_id_or_name(rt->balancers, uid) != NULL;
    aigw_runtime_unref(rt);
    if (rc == -2) {
        aigw_admin_respond_message(c->req, 400, err);
    } else if (rc == 0) {
        aigw_http_respond(c->req, 204, NULL, 0, NULL, 0);
    } else if (!has_balancer) {
        char msg[600];
        snprintf(msg, sizeof(msg), "Upstream %s has no balancer", str_of(upstream, "name"));
        aigw_admin_respond_message(c->req, 400, msg);
    } else if (!using_healthchecks(upstream)) {
        char msg[600];
        snprintf(msg, sizeof(msg), "no healthchecker found for %s", str_of(upstream, "name"));
        aigw_admin_respond_message(c->req, 400, msg);
    } else {
        /* the healthchecker does not know that target (yet): Kong warns and succeeds */
        aigw_http_respond(c->req, 204, NULL, 0, NULL, 0);
    }
out:
    json_decref(targets);
    json_decref(target);
    json_decref(upstream);
    json_decref(body);
}

/* ---- entry ---------------------------------------------------------------------------------- */

int aigw_upstream_health_handle(aigw_api_t *api, aigw_http_req_t *req, const char *node_id)
{
    hcall_t c = { .api = api, .req = req, .node_id = node_id };
    int route = R_NONE;
    if (split_path(&c) == 0)
        route = route_of(&c);
    if (route != R_NONE) {
        char err[256];
        unsigned qflags = (req->method == HTTP_GET || req->method == HTTP_HEAD ||
                           req->method == HTTP_DELETE)
                              ? AIGW_DECODE_NO_MAPS
                              : 0;
        if (!api->store) {
            aigw_admin_respond_message(req, 503, "database unreachable");
        } else if (aigw_decode_query(req->query.p, req->query.n, qflags, NULL, NULL, &c.query,
                                     err, sizeof(err)) != 0) {
            aigw_admin_respond_message(req, 400, err);
        } else if (route == R_HEALTH) {
            health(&c);
        } else if (route == R_ALL) {
            targets_all(&c);
        } else {
            set_health(&c);
        }
    }
    for (size_t i = 0; i < c.nsegs; i++)
        free(c.segs[i]);
    json_decref(c.query);
    return route != R_NONE;
}

const char *const *aigw_upstream_health_endpoints(const aigw_conf_t *conf)
{
    return conf && conf->role == AIGW_ROLE_CONTROL_PLANE ? endpoints_cp : endpoints_all;
}
