/* aigwd/plugins/request_transformer.c: Kong's request-transformer (priority 801). In
 * Kong's order: replace.uri (the upstream path, escaped as kong.service.request.set_path),
 * http_method (GET/HEAD/TRACE also move a form body's arguments into the query string),
 * headers, body (application/x-www-form-urlencoded, application/json, multipart/form-data),
 * querystring; each with remove, rename, replace, add (only when absent), append. Entries are
 * "name:value" (the value is everything after the first run of colons).
 * aigw differs: values are used literally. Kong renders them as Lua templates ("$(...)"
 * expressions over headers, query_params, uri_captures, shared); aigw runs no Lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/xform_json.h"

typedef struct conf {
    char *method;                 /* NULL: keep the client's */
    char *uri;                    /* replace.uri, NULL: none */
    aigw_xform_ops_t headers, query, body;
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    free(k->method);
    free(k->uri);
    aigw_xform_ops_free(&k->headers);
    aigw_xform_ops_free(&k->query);
    aigw_xform_ops_free(&k->body);
    free(k);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k)
        goto oom;
    const char *m = json_string_value(json_object_get(c, "http_method"));
    const char *u = json_string_value(json_object_get(json_object_get(c, "replace"), "uri"));
    if (m && *m && !(k->method = strdup(m)))
        goto oom;
    if (u && *u && !(k->uri = strdup(u)))   /* "" renders to nil: no change */
        goto oom;
    if (aigw_xform_ops_load(&k->headers, c, "headers") != 0 ||
        aigw_xform_ops_load(&k->query, c, "querystring") != 0 ||
        aigw_xform_ops_load(&k->body, c, "body") != 0)
        goto oom;
    if (aigw_xform_ops_headers_ok(&k->headers, 1, err, errlen) != 0) {
        conf_free(k);
        return NULL;
    }
    return k;
oom:
    conf_free(k);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static aigw_str_t arena_copy(aigw_plugin_run_t *run, const char *p, size_t n)
{
    char *s = aigw_arena_strndup(&run->req->arena, p ? p : "", n);
    return s ? (aigw_str_t){ s, n } : AIGW_STR_NULL;
}

static int is_host(const char *name)
{
    return aigw_str_ieq(aigw_str_c(name), AIGW_STR("host"));
}

/* Message framing stays the proxy's: a plugin-set Content-Length or Transfer-Encoding
 * would travel next to the proxy's own (a smuggling hazard), so edits that would set one
 * are skipped (the proxy sends Content-Length for the body it forwards). */
static int framing(const char *name)
{
    return aigw_str_ieq(aigw_str_c(name), AIGW_STR("content-length")) ||
           aigw_str_ieq(aigw_str_c(name), AIGW_STR("transfer-encoding"));
}

static int present(const aigw_plugin_run_t *run, const char *name)
{
    return aigw_plugin_req_header(run, name).p != NULL;
}

#define MAX_VALUES 64

/* Every value of an upstream request header as the upstream would get it now. */
static size_t header_values(const aigw_plugin_run_t *run, const char *name, aigw_str_t *out)
{
    aigw_str_t nm = aigw_str_c(name);
    size_t n = 0;
    if (!aigw_plugins_header_removed(run, nm))
        for (size_t i = 0; i < run->req->n_headers && n < MAX_VALUES; i++)
            if (aigw_str_ieq(run->req->headers[i].name, nm))
                out[n++] = run->req->headers[i].value;
    for (size_t i = 0; i < run->n_set && n < MAX_VALUES; i++)
        if (aigw_str_ieq(run->set[i].name, nm))
            out[n++] = run->set[i].value;
    return n;
}

enum { CT_NONE, CT_JSON, CT_MULTI, CT_FORM };

static int has_ci(aigw_str_t s, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; s.p && i + nl <= s.n; i++)
        if (aigw_str_ieq((aigw_str_t){ s.p + i, nl }, (aigw_str_t){ needle, nl }))
            return 1;
    return 0;
}

/* get_content_type: substring matches, in Kong's order. */
static int content_type(aigw_str_t ct)
{
    if (!ct.p)
        return CT_NONE;
    if (has_ci(ct, "application/json"))
        return CT_JSON;
    if (has_ci(ct, "multipart/form-data"))
        return CT_MULTI;
    if (has_ci(ct, "application/x-www-form-urlencoded"))
        return CT_FORM;
    return CT_NONE;
}

static aigw_str_t cur_query(const aigw_plugin_run_t *run)
{
    return run->query_set ? run->query : run->req->query;
}

/* 1 when ngx.decode_args(body) gives at least one argument. */
static int form_has_args(aigw_str_t b)
{
    const char *p = b.p, *end = b.p ? b.p + b.n : NULL;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p && *p != '=')
            return 1;
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* Sets run->query from malloc'd text (freed). -1 when out of memory. */
static int take_query(aigw_plugin_run_t *run, char *q, size_t n)
{
    if (!q)
        return -1;
    aigw_str_t s = arena_copy(run, q, n);
    free(q);
    if (!s.p)
        return -1;
    run->query = s;
    run->query_set = 1;
    return 0;
}

/* ---- the phases of execute() ----------------------------------------------------------------- */

static int transform_method(aigw_plugin_run_t *run, const conf_t *k)
{
    run->method = arena_copy(run, k->method, strlen(k->method));
    if (!run->method.p)
        return -1;
    if (strcmp(k->method, "GET") != 0 && strcmp(k->method, "HEAD") != 0 &&
        strcmp(k->method, "TRACE") != 0)
        return 0;
    if (content_type(aigw_plugin_req_header(run, "content-type")) != CT_FORM)
        return 0;
    aigw_str_t body = aigw_plugin_body(run);
    if (!form_has_args(body))
        return 0;
    size_t n = 0;
    char *q = aigw_xform_req_query(NULL, cur_query(run), body, &n);
    return take_query(run, q, n);
}

static int transform_headers(aigw_plugin_run_t *run, const aigw_xform_ops_t *o)
{
    int rc = 0;
    for (size_t i = 0; i < o->remove.n; i++) {
        const char *name = o->remove.v[i].name;
        if (!is_host(name) && present(run, name))
            rc |= aigw_plugin_clear_header(run, name);
    }
    for (size_t i = 0; i < o->rename.n; i++) {
        const char *old = o->rename.v[i].name, *nw = o->rename.v[i].value;
        if (!nw || strcmp(old, nw) == 0 || is_host(old) || framing(nw) || !present(run, old))
            continue;
        aigw_str_t vals[MAX_VALUES];
        size_t nv = header_values(run, old, vals);
        rc |= aigw_plugin_clear_header(run, old);
        for (size_t j = 0; j < nv; j++)
            rc |= j == 0 ? aigw_plugin_set_header(run, nw, vals[j])
                         : aigw_plugin_add_header(run, nw, vals[j]);
    }
    for (size_t i = 0; i < o->replace.n; i++) {
        const aigw_xform_pair_t *p = &o->replace.v[i];
        if (p->value && !framing(p->name) && (is_host(p->name) || present(run, p->name)))
            rc |= aigw_plugin_set_header(run, p->name, aigw_str_c(p->value));
    }
    for (size_t i = 0; i < o->add.n; i++) {
        const aigw_xform_pair_t *p = &o->add.v[i];
        if (p->value && !is_host(p->name) && !framing(p->name) && !present(run, p->name))
            rc |= aigw_plugin_set_header(run, p->name, aigw_str_c(p->value));
    }
    for (size_t i = 0; i < o->append.n; i++) {
        const aigw_xform_pair_t *p = &o->append.v[i];
        /* Kong turns the Host value into a table here, which its set_headers cannot send */
        if (p->value && !is_host(p->name) && !framing(p->name))
            rc |= aigw_plugin_add_header(run, p->name, aigw_str_c(p->value));
    }
    return rc ? -1 : 0;
}

static int transform_body(aigw_plugin_run_t *run, const aigw_xform_ops_t *o)
{
    aigw_str_t ctv = aigw_plugin_req_header(run, "content-type");
    int ct = content_type(ctv);
    if (ct == CT_NONE || aigw_xform_ops_empty(o))
        return 0;
    aigw_str_t body = aigw_plugin_body(run);
    char *out = NULL;
    size_t n = 0;
    int r;
    if (ct == CT_FORM)
        r = aigw_xform_req_form(o, body.p, body.n, &out, &n);
    else if (ct == CT_MULTI)
        r = aigw_xform_req_multipart(o, ctv, body.p, body.n, &out, &n);
    else
        r = aigw_xform_req_json(o, body.p, body.n, &out, &n);
    if (r <= 0)
        return r;
    aigw_str_t b = arena_copy(run, out, n);
    free(out);
    if (!b.p)
        return -1;
    run->body = b;          /* the proxy sends Content-Length for it */
    run->body_set = 1;
    return 0;
}

static aigw_plugin_rc_t rqt_access(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    if (k->uri) {
        if (k->uri[0] != '/') {
            /* Kong: set_path raises "path must start with /" */
            AIGW_LOG(AIGW_LOG_ERR, "request-transformer: replace.uri %.200s: path must start "
                                   "with /", k->uri);
            return aigw_plugin_error(run, 500, "An unexpected error occurred");
        }
        size_t n = 0;
        char *e = aigw_xform_escape_path(aigw_str_c(k->uri), &n);
        run->upstream_path = e ? arena_copy(run, e, n) : AIGW_STR_NULL;
        free(e);
        if (!run->upstream_path.p)
            goto oom;
    }
    if (k->method && transform_method(run, k) != 0)
        goto oom;
    if (transform_headers(run, &k->headers) != 0)
        goto oom;
    if (transform_body(run, &k->body) != 0)
        goto oom;
    if (!aigw_xform_ops_empty(&k->query)) {
        size_t n = 0;
        char *q = aigw_xform_req_query(&k->query, cur_query(run), AIGW_STR_NULL, &n);
        if (take_query(run, q, n) != 0)
            goto oom;
    }
    return AIGW_PLUGIN_NEXT;
oom:
    AIGW_LOG(AIGW_LOG_ERR, "request-transformer: out of memory");
    return aigw_plugin_error(run, 500, "An unexpected error occurred");
}

static int ops_any(const aigw_xform_ops_t *o)
{
    return o->remove.n || o->rename.n || o->replace.n || o->add.n || o->append.n;
}

/* Body operations, and a method change (GET moves form arguments to the query). */
static int rqt_reads_body(const void *conf)
{
    const conf_t *k = conf;
    return k->method != NULL || ops_any(&k->body);
}

const aigw_plugin_def_t aigw_plugin_def_request_transformer = {
    .reads_body = rqt_reads_body,
    .name = "request-transformer",
    .priority = 801,
    .configure = configure,
    .free_conf = conf_free,
    .access = rqt_access,
};
