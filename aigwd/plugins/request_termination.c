/* aigwd/plugins/request_termination.c: Kong's request-termination (priority 2): answers
 * every request it applies to with `status_code` (default 503) and either `body` with
 * `content_type`, or {"message": message or Kong's default for the status}; with `trigger`
 * only requests carrying that header or query argument; with `echo` the answer describes
 * the request (Kong's shape: message, kong, request, matched_route, matched_service). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "http/server.h"
#include "plugins/impl.h"

typedef struct conf {
    int status;
    char *message, *content_type, *body, *trigger;
    int echo;
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    free(k->message);
    free(k->content_type);
    free(k->body);
    free(k->trigger);
    free(k);
}

static char *opt(const json_t *c, const char *key)
{
    const char *s = json_string_value(json_object_get(c, key));
    return s ? strdup(s) : NULL;
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_int_t st = json_integer_value(json_object_get(c, "status_code"));
    k->status = st >= 100 && st <= 599 ? (int)st : 503;
    k->message = opt(c, "message");
    k->content_type = opt(c, "content_type");
    k->body = opt(c, "body");
    k->trigger = opt(c, "trigger");
    k->echo = json_is_true(json_object_get(c, "echo"));
    return k;
}

static const char *default_message(int status)
{
    switch (status) {
    case 401: return "Unauthorized";
    case 404: return "Not found";
    case 405: return "Method not allowed";
    case 500: return "An unexpected error occurred";
    case 502: return "Bad Gateway";
    case 503: return "Service unavailable";
    default: return NULL;
    }
}

/* 1 if the query string has an argument named name. */
static int query_has(aigw_str_t q, const char *name)
{
    size_t nl = strlen(name);
    const char *p = q.p, *end = q.p + q.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t kl = (size_t)((eq ? eq : e) - p);
        if (kl == nl && memcmp(p, name, nl) == 0)
            return 1;
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static json_t *echo_body(aigw_plugin_run_t *run, const conf_t *k)
{
    aigw_http_req_t *req = run->req;
    json_t *headers = json_object(), *query = json_object();
    for (size_t i = 0; i < req->n_headers; i++) {
        char name[256];
        size_t n = req->headers[i].name.n < sizeof(name) - 1 ? req->headers[i].name.n
                                                               : sizeof(name) - 1;
        for (size_t j = 0; j < n; j++) {
            char ch = req->headers[i].name.p[j];
            name[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        name[n] = '\0';
        json_object_set_new(headers, name, json_stringn(req->headers[i].value.p,
                                                        req->headers[i].value.n));
    }
    const char *p = req->query.p, *end = req->query.p + req->query.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        char key[256];
        size_t kl = (size_t)((eq ? eq : e) - p);
        if (kl && kl < sizeof(key)) {
            memcpy(key, p, kl);
            key[kl] = '\0';
            json_object_set_new(query, key, eq ? json_stringn(eq + 1, (size_t)(e - eq - 1))
                                               : json_true());
        }
        p = amp ? amp + 1 : NULL;
    }
    const aigw_http_header_t *hh = aigw_http_req_header(req, AIGW_STR("host"));
    char host[256] = "";
    if (hh) {
        size_t n = hh->value.n < sizeof(host) - 1 ? hh->value.n : sizeof(host) - 1;
        memcpy(host, hh->value.p, n);
        host[n] = '\0';
        char *colon = strchr(host, ':');
        if (colon)
            *colon = '\0';
    }
    char hostname[256] = "";
    gethostname(hostname, sizeof(hostname) - 1);
    const char *msg = k->message ? k->message : default_message(k->status);
    json_t *o = json_object();
    if (msg)
        json_object_set_new(o, "message", json_string(msg));
    json_object_set_new(o, "kong", json_pack("{s:i,s:s}", "worker_pid", (int)getpid(),
                                             "hostname", hostname));
    json_t *r = json_object();
    json_object_set_new(r, "scheme", json_string(aigw_http_req_is_tls(req) ? "https" : "http"));
    json_object_set_new(r, "host", json_string(host));
    json_object_set_new(r, "port", json_integer(aigw_http_req_local_port(req)));
    json_object_set_new(r, "headers", headers);
    json_object_set_new(r, "query", query);
    json_object_set_new(r, "raw_body", json_stringn(req->body ? req->body : "",
                                                    req->body ? req->body_len : 0));
    json_object_set_new(r, "method", json_stringn(req->method_name.p, req->method_name.n));
    json_object_set_new(r, "path", json_stringn(req->path.p, req->path.n));
    json_object_set_new(o, "request", r);
    if (run->route)
        json_object_set_new(o, "matched_route",
                            json_pack("{s:s}", "id", run->route->id));
    if (run->service)
        json_object_set_new(o, "matched_service",
                            json_pack("{s:s}", "id", run->service->id));
    return o;
}

static aigw_plugin_rc_t rt_access(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    if (k->trigger && !aigw_http_req_header(run->req, aigw_str_c(k->trigger)) &&
        !query_has(run->req->query, k->trigger))
        return AIGW_PLUGIN_NEXT;
    if (k->echo) {
        json_t *o = echo_body(run, k);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        aigw_plugin_rc_t rc = aigw_plugin_exit(run, k->status, aigw_str_c(s ? s : "{}"),
                                               AIGW_STR("application/json; charset=utf-8"));
        free(s);
        return rc;
    }
    if (k->body)
        return aigw_plugin_exit(run, k->status, aigw_str_c(k->body),
                                aigw_str_c(k->content_type));
    const char *msg = k->message ? k->message : default_message(k->status);
    if (!msg)
        return aigw_plugin_exit(run, k->status, AIGW_STR_NULL, AIGW_STR_NULL);
    return aigw_plugin_exit_message(run, k->status, msg);
}

const aigw_plugin_def_t aigw_plugin_def_request_termination = {
    .name = "request-termination",
    .priority = 2,
    .configure = configure,
    .free_conf = conf_free,
    .access = rt_access,
};
