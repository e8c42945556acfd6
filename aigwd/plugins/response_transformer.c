/* aigwd/plugins/response_transformer.c: Kong's response-transformer (priority 800). In
 * header_filter, on the response headers in Kong's order: remove, rename (when the old one
 * is present), replace (only when present), add (only when absent), append (one more line).
 * As in Kong, the presence tests look at the headers as they were when the plugin started
 * (so "remove X" then "replace X:v" sets X again).
 * The json operations (remove/rename/replace/add/append of JSON body keys with json_types)
 * are implemented (aigw_xform_resp_json) but need a response body filter the proxy does
 * not have yet: an instance that configures any of them is refused at load (fail closed:
 * its requests are answered 500 and the error log says why) rather than letting the body
 * through untransformed. */
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
    if (!aigw_xform_ops_empty(&k->json)) {
        conf_free(k);
        snprintf(err, errlen, "the json operations of response-transformer need a response "
                              "body filter, which this build does not have yet");
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

static void rst_header_filter(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    const aigw_xform_ops_t *o = &k->headers;
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
};
