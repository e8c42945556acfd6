/* aigwd/plugins/response_transformer.c: Kong's response-transformer (priority 800). In
 * header_filter, on the response headers in Kong's order: remove, rename (when the old one
 * is present), replace (only when present), add (only when absent), append (one more line).
 * As in Kong, the presence tests look at the headers as they were when the plugin started
 * (so "remove X" then "replace X:v" sets X again).
 * The json operations (remove/rename/replace/add/append of JSON body keys, with json_types)
 * run in body_filter on the whole body, when the response's Content-Type is JSON (Kong's
 * is_json_body): header_filter asks the proxy to buffer it. A body that is not a JSON
 * object goes out unchanged with a warning, as Kong's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/xform_json.h"

typedef struct conf {
    aigw_xform_ops_t headers, json;
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    aigw_xform_ops_free(&k->headers);
    aigw_xform_ops_free(&k->json);
    free(k);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k || aigw_xform_ops_load(&k->headers, c, "headers") != 0 ||
        aigw_xform_ops_load(&k->json, c, "json") != 0) {
        conf_free(k);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (aigw_xform_ops_headers_ok(&k->headers, 1, err, errlen) != 0) {
        conf_free(k);
        return NULL;
    }
    return k;
}

/* The response headers as kong.response.get_headers() gives them when the plugin starts:
 * the upstream's (less those removed or replaced by earlier plugins) and the ones earlier
 * plugins set. Views; the bytes live in the request. */
typedef struct snap {
    aigw_str_t *name, *value;
    size_t n;
} snap_t;

static int snapshot(aigw_plugin_run_t *run, snap_t *s)
{
    size_t cap = run->n_up_headers + run->n_resp;
    s->n = 0;
    s->name = aigw_arena_alloc(&run->req->arena, (cap ? cap : 1) * sizeof(aigw_str_t));
    s->value = aigw_arena_alloc(&run->req->arena, (cap ? cap : 1) * sizeof(aigw_str_t));
    if (!s->name || !s->value)
        return -1;
    for (size_t i = 0; i < run->n_up_headers; i++) {
        if (aigw_plugins_resp_header_removed(run, run->up_headers[i].name))
            continue;
        s->name[s->n] = run->up_headers[i].name;
        s->value[s->n++] = run->up_headers[i].value;
    }
    for (size_t i = 0; i < run->n_resp; i++) {
        s->name[s->n] = run->resp[i].name;
        s->value[s->n++] = run->resp[i].value;
    }
    return 0;
}

static int snap_has(const snap_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (aigw_str_ieq(s->name[i], aigw_str_c(name)))
            return 1;
    return 0;
}

static void transform_headers(aigw_plugin_run_t *run, const aigw_xform_ops_t *o);

static int transforms_body(aigw_plugin_run_t *run, const conf_t *k)
{
    return !aigw_xform_ops_empty(&k->json) &&
           aigw_xform_is_json_type(aigw_plugin_resp_header(run, "Content-Type"));
}

static void rst_header_filter(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    transform_headers(run, &k->headers);
    if (transforms_body(run, k))
        aigw_plugin_buffer_response(run);   /* the proxy sends the new Content-Length */
}

static void rst_body_filter(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    if (!transforms_body(run, k))
        return;
    size_t n = 0;
    char *out = aigw_xform_resp_json(&k->json, run->resp_body.p, run->resp_body.n, &n);
    if (!out) {
        AIGW_LOG(AIGW_LOG_WARN, "response-transformer: body transform failed: the body is not "
                 "a JSON object; sent as received");
        return;
    }
    if (aigw_plugin_set_resp_body(run, (aigw_str_t){ out, n }) != 0)
        AIGW_LOG(AIGW_LOG_ERR, "response-transformer: out of memory; body sent as received");
    free(out);
}

static void transform_headers(aigw_plugin_run_t *run, const aigw_xform_ops_t *o)
{
    if (aigw_xform_ops_empty(o))
        return;
    snap_t s;
    if (snapshot(run, &s) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "response-transformer: out of memory");
        return;
    }
    for (size_t i = 0; i < o->remove.n; i++)
        aigw_plugin_resp_clear_header(run, o->remove.v[i].name);
    for (size_t i = 0; i < o->rename.n; i++) {
        const aigw_xform_pair_t *p = &o->rename.v[i];
        if (!p->value || !snap_has(&s, p->name))
            continue;
        /* set_header(new, every value of old), then clear_header(old) */
        int first = 1;
        for (size_t j = 0; j < s.n; j++) {
            if (!aigw_str_ieq(s.name[j], aigw_str_c(p->name)))
                continue;
            if (first)
                aigw_plugin_resp_set_header(run, p->value, s.value[j]);
            else
                aigw_plugin_resp_add_header(run, p->value, s.value[j]);
            first = 0;
        }
        aigw_plugin_resp_clear_header(run, p->name);
    }
    for (size_t i = 0; i < o->replace.n; i++) {
        const aigw_xform_pair_t *p = &o->replace.v[i];
        if (p->value && snap_has(&s, p->name))
            aigw_plugin_resp_set_header(run, p->name, aigw_str_c(p->value));
    }
    for (size_t i = 0; i < o->add.n; i++) {
        const aigw_xform_pair_t *p = &o->add.v[i];
        if (p->value && !snap_has(&s, p->name))
            aigw_plugin_resp_set_header(run, p->name, aigw_str_c(p->value));
    }
    for (size_t i = 0; i < o->append.n; i++) {
        const aigw_xform_pair_t *p = &o->append.v[i];
        if (p->value)
            aigw_plugin_resp_add_header(run, p->name, aigw_str_c(p->value));
    }
}

const aigw_plugin_def_t aigw_plugin_def_response_transformer = {
    .name = "response-transformer",
    .priority = 800,
    .configure = configure,
    .free_conf = conf_free,
    .header_filter = rst_header_filter,
    .body_filter = rst_body_filter,
};
