/* aigwd/admin/api.c: see api.h. The endpoints are not listed one by one: they come from the
 * entity tables (admin_path, nested_path, parent_field, foreign fields), as Kong generates
 * them from its DAO schemas in kong/api/endpoints.lua. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "admin/api.h"
#include "admin/clustering.h"
#include "admin/decode.h"
#include "admin/respond.h"
#include "admin/upstream_health.h"
#include "core/log.h"
#include "declarative/declarative.h"
#include "snapshot/snapshot.h"
#include "http/server.h"
#include "schema/schema.h"

#define MAX_SEGS 8

typedef struct call {
    aigw_api_t *api;
    aigw_http_req_t *req;
    char *segs[MAX_SEGS];       /* percent-decoded path segments (malloc'd) */
    size_t nsegs;
    json_t *query;              /* decoded URI args */
} call_t;

/* ---- errors ------------------------------------------------------------------------------ */

/* Kong's invalid-options errors (code 11) carry `options` where others carry `fields`. */
static void aigw_api_respond_db_error_as(aigw_http_req_t *req, const aigw_db_error_t *err,
                                        const char *fields_key);

void aigw_api_respond_db_error(aigw_http_req_t *req, const aigw_db_error_t *err)
{
    aigw_api_respond_db_error_as(req, err, "fields");
}

static void aigw_api_respond_db_error_as(aigw_http_req_t *req, const aigw_db_error_t *err,
                                        const char *fields_key)
{
    int status = aigw_db_error_status(err->code);
    if (status >= 500) {
        if (err->code == AIGW_DBE_UNREACHABLE) {
            AIGW_LOG(AIGW_LOG_ERR, "%s", err->message);
            aigw_admin_respond_message(req, 503, err->message);
        } else {
            AIGW_LOG(AIGW_LOG_ERR, "admin API: %s", err->message);
            aigw_admin_respond_message(req, 500, "An unexpected error occurred");
        }
        return;
    }
    json_t *o = json_pack("{s:i, s:s, s:s}", "code", err->code, "name",
                          aigw_db_error_name(err->code), "message", err->message);
    if (err->fields)
        json_object_set(o, fields_key, err->fields);
    aigw_admin_respond_json(req, status, o);
    json_decref(o);
}

static void schema_error(aigw_http_req_t *req, json_t *fields)
{
    aigw_db_error_t e = { .code = AIGW_DBE_SCHEMA, .fields = fields };
    char *msg = aigw_schema_errors_message(fields);
    snprintf(e.message, sizeof(e.message), "%s", msg ? msg : "schema violation");
    free(msg);
    aigw_api_respond_db_error(req, &e);
}

static void db_error(call_t *c, aigw_db_error_t *err)
{
    aigw_api_respond_db_error(c->req, err);
    aigw_db_error_clear(err);
}

static void not_found(call_t *c)
{
    aigw_admin_respond_message(c->req, 404, "Not found");
}

static void method_not_allowed(call_t *c)
{
    aigw_admin_respond_message(c->req, 405, "Method not allowed");
}

/* ---- path ------------------------------------------------------------------------------- */

/* Splits the path into decoded segments; a trailing slash is tolerated. -1 if too deep. */
static int split_path(call_t *c)
{
    return aigw_decode_path(c->req->path, c->segs, NULL, MAX_SEGS, &c->nsegs);
}

static void call_free(call_t *c)
{
    for (size_t i = 0; i < c->nsegs; i++)
        free(c->segs[i]);
    json_decref(c->query);
}

static int is_method(const call_t *c, int m)
{
    return c->req->method == m;
}

/* ---- store helpers ----------------------------------------------------------------------- */

/* Looks an entity up by id or endpoint key. 0 found, 1 not found, -1 error (answered). */
static int lookup(call_t *c, const aigw_entity_t *e, const char *key, json_t **out)
{
    aigw_db_error_t err = { 0 };
    int r;
    if (aigw_schema_is_uuid(key))
        r = aigw_store_get(c->api->store, e, key, out, &err);
    else if (e->endpoint_key)
        r = aigw_store_find(c->api->store, e, e->endpoint_key, key, out, &err);
    else
        r = 1;
    if (r < 0)
        db_error(c, &err);
    return r;
}

static const char *id_of(const json_t *obj)
{
    return json_string_value(json_object_get(obj, "id"));
}

/* The foreign id obj holds in field, or NULL. */
static const char *fk_of(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, field), "id"));
}

static int store_ready(call_t *c)
{
    if (c->api->store)
        return 1;
    aigw_admin_respond_message(c->req, 503, "database unreachable");
    return 0;
}

/* ---- body ------------------------------------------------------------------------------- */

typedef struct coerce_ctx {
    const aigw_entity_t *e;
    const char *plugin;
} coerce_ctx_t;

static const aigw_field_t *coerce_cb(void *ud, const char *const *path, size_t depth)
{
    coerce_ctx_t *cc = ud;
    return aigw_schema_field_path(cc->e, cc->plugin, path, depth);
}

/* Decodes the request body for entity e (plugin: the config schema of plugin_hint or of the
 * body's own `name`). *out is a new object. 0, or -1 when answered (400/415). */
static int read_body(call_t *c, const aigw_entity_t *e, const char *plugin_hint, json_t **out)
{
    aigw_http_req_t *req = c->req;
    const aigw_http_header_t *ct = aigw_http_req_header(req, AIGW_STR("content-type"));
    aigw_body_kind_t kind;
    if (aigw_decode_kind(ct ? ct->value.p : NULL, ct ? ct->value.n : 0, (size_t)req->body_len,
                         0, &kind) != 0) {
        aigw_http_respond(req, 415, NULL, 0, NULL, 0);
        return -1;
    }
    char err[256] = "";
    json_t *body = NULL;
    if (kind == AIGW_BODY_NONE) {
        *out = json_object();
        return 0;
    }
    coerce_ctx_t cc = { e, plugin_hint };
    int dr = aigw_decode_body(kind, ct ? ct->value.p : NULL, ct ? ct->value.n : 0, req->body,
                              (size_t)req->body_len, NULL, NULL, &body, err, sizeof(err));
    if (dr != AIGW_DECODE_OK) {
        if (dr == AIGW_DECODE_EBAD)
            aigw_admin_respond_message(req, 400, err[0] ? err : "Cannot parse JSON body");
        else
            aigw_admin_respond_message(req, 500, "An unexpected error occurred");
        return -1;
    }
    if (kind != AIGW_BODY_JSON && json_is_object(body)) {
        /* Form values take the schema's types; a plugin's config types depend on which
         * plugin the body names. */
        if ((e->flags & AIGW_E_PLUGIN) && !cc.plugin) {
            const char *nm = json_string_value(json_object_get(body, "name"));
            cc.plugin = nm && aigw_schema_plugin(nm) ? aigw_schema_plugin(nm)->name : NULL;
        }
        int cr = aigw_decode_coerce(body, coerce_cb, &cc, err, sizeof(err));
        if (cr != AIGW_DECODE_OK) {
            json_decref(body);
            if (cr == AIGW_DECODE_EBAD)
                aigw_admin_respond_message(req, 400, err);
            else
                aigw_admin_respond_message(req, 500, "An unexpected error occurred");
            return -1;
        }
    }
    if (!json_is_object(body)) {
        json_decref(body);
        aigw_admin_respond_message(req, 400, "Cannot parse JSON body");
        return -1;
    }
    *out = body;
    return 0;
}

/* Foreign keys given by a unique field of the parent (service.name=x) become {"id": ...};
 * unresolvable ones are Kong's code 13. 0, or -1 when answered. */
static int resolve_foreigns(call_t *c, const aigw_entity_t *e, json_t *obj)
{
    json_t *unresolved = NULL;
    for (const aigw_field_t *f = e->fields; f->name; f++) {
        if (f->type != AIGW_FT_FOREIGN)
            continue;
        json_t *v = json_object_get(obj, f->name);
        if (!json_is_object(v) || json_object_get(v, "id"))
            continue;
        const aigw_entity_t *pe = aigw_schema_entity(f->reference);
        if (!pe)
            continue;
        const char *key;
        json_t *kv;
        json_object_foreach(v, key, kv)
        {
            const aigw_field_t *pf = aigw_schema_field(pe->fields, key);
            if (!pf || !(pf->flags & AIGW_F_UNIQUE) || !json_is_string(kv))
                continue;
            json_t *parent = NULL;
            aigw_db_error_t err = { 0 };
            int r = aigw_store_find(c->api->store, pe, key, json_string_value(kv), &parent, &err);
            if (r < 0) {
                json_decref(unresolved);
                db_error(c, &err);
                return -1;
            }
            if (r == 0) {
                json_object_set_new(obj, f->name, json_pack("{s:s}", "id", id_of(parent)));
                json_decref(parent);
            } else {
                if (!unresolved)
                    unresolved = json_object();
                char msg[512];
                snprintf(msg, sizeof(msg),
                         "the foreign key cannot be resolved with '{%s=\"%s\"}' for an existing "
                         "'%s' entity",
                         key, json_string_value(kv), pe->name);
                json_object_set_new(unresolved, f->name, json_pack("{s:s}", key, msg));
            }
            break;
        }
    }
    if (!unresolved)
        return 0;
    aigw_db_error_t err = { .code = AIGW_DBE_FOREIGN_UNRESOLVED, .fields = unresolved };
    /* foreign key unresolved (service.name: the foreign key cannot be resolved ...) */
    const char *fname;
    json_t *fv;
    size_t n = json_object_size(unresolved), pos = 0;
    char buf[900] = "";
    json_object_foreach(unresolved, fname, fv)
    {
        const char *sub;
        json_t *sv;
        json_object_foreach(fv, sub, sv)
        {
            size_t used = strlen(buf);
            snprintf(buf + used, sizeof(buf) - used, "%s%s.%s: %s", pos ? "; " : "", fname, sub,
                     json_string_value(sv));
            pos++;
        }
    }
    if (n == 1)
        snprintf(err.message, sizeof(err.message), "foreign key unresolved (%s)", buf);
    else
        snprintf(err.message, sizeof(err.message), "%zu foreign keys unresolved (%s)", n, buf);
    aigw_api_respond_db_error(c->req, &err);
    json_decref(unresolved);
    return -1;
}

/* Checks that only the plugin/entity rules the schema engine does not know: a plugin name
 * that is not bundled, and plugins that cannot be scoped to a consumer. 0, or -1 answered. */
static int plugin_prechecks(call_t *c, const aigw_entity_t *e, json_t *obj)
{
    if (!(e->flags & AIGW_E_PLUGIN))
        return 0;
    const char *name = json_string_value(json_object_get(obj, "name"));
    if (!name)
        return 0;   /* the validator reports it missing */
    const aigw_plugin_schema_t *p = aigw_schema_plugin(name);
    json_t *fields = NULL;
    if (!p) {
        fields = json_object();
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "plugin '%s' not enabled; add it to the 'plugins' configuration property", name);
        json_object_set_new(fields, "name", json_string(msg));
    } else if ((p->flags & AIGW_P_NO_CONSUMER) && json_is_object(json_object_get(obj, "consumer"))) {
        fields = json_pack("{s:s}", "consumer", "value must be null");
    } else {
        fields = aigw_admin_clustering_plugin_fields(c->api->conf, obj);   /* hybrid, DB-less */
    }
    if (!fields)
        return 0;
    schema_error(c->req, fields);
    json_decref(fields);
    return -1;
}

/* Validates (in mode) and answers schema errors. 0 ok, -1 answered. */
static int validate(call_t *c, const aigw_entity_t *e, json_t *obj, aigw_vmode_t mode)
{
    if (plugin_prechecks(c, e, obj) != 0)
        return -1;
    json_t *errors = NULL;
    if (aigw_schema_validate(e, obj, mode, &errors) != 0) {
        schema_error(c->req, errors);
        json_decref(errors);
        return -1;
    }
    if (aigw_schema_protect_secrets(e, obj) != 0) {
        aigw_admin_respond_message(c->req, 500, "An unexpected error occurred");
        return -1;
    }
    return 0;
}

/* Kong's `ttl` option (endpoints.lua extract_options, dao validate_options_value): taken
 * only by entities with `ttl = true`, an integer from 0 to DAO_MAX_TTL, else code 11. 0 is
 * no expiry (null: the store then clears it). 0, or -1 when answered. */
static int ttl_option(call_t *c, const aigw_entity_t *e, json_t *obj)
{
    const aigw_field_t *f = aigw_schema_field(e->fields, "ttl");
    json_t *v = json_object_get(obj, "ttl");
    if (!f || !(f->flags & AIGW_F_TTL) || !v)
        return 0;
    double d = -1;
    if (json_is_null(v)) {
        d = 0;
    } else if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v) && json_string_value(v)[0]) {
        char *end;
        d = strtod(json_string_value(v), &end);
        if (*end)
            d = -1;
    }
    if (!(d >= 0 && d <= 100000000.0 && d == (double)(long long)d)) {
        aigw_db_error_t err = { .code = AIGW_DBE_INVALID_OPTIONS };
        snprintf(err.message, sizeof(err.message),
                 "invalid option (ttl: must be an integer between 0 and 100000000)");
        err.fields = json_pack("{s:s}", "ttl", "must be an integer between 0 and 100000000");
        aigw_api_respond_db_error_as(c->req, &err, "options");
        json_decref(err.fields);
        return -1;
    }
    json_object_set_new(obj, "ttl", d > 0 ? json_integer((json_int_t)d) : json_null());
    return 0;
}

static void changed(call_t *c)
{
    if (c->api->on_change)
        c->api->on_change(c->api->on_change_ud);
}

static int in_tx(call_t *c, aigw_db_error_t *err)
{
    return aigw_store_begin(c->api->store, err);
}

static int commit(call_t *c)
{
    aigw_db_error_t err = { 0 };
    if (aigw_store_commit(c->api->store, &err) != 0) {
        aigw_store_rollback(c->api->store);
        db_error(c, &err);
        return -1;
    }
    changed(c);
    return 0;
}

static int cmp_json_str(const void *a, const void *b);

/* Kong returns a certificate with the names of its snis, sorted. */
static void add_cert_snis(call_t *c, const aigw_entity_t *e, json_t *out)
{
    if (e != aigw_schema_entity("certificates") || !c->api->store)
        return;
    aigw_store_query_t q = { .size = 1000, .fk_field = "certificate", .fk_id = id_of(out) };
    aigw_store_page_t page = { 0 };
    aigw_db_error_t err = { 0 };
    json_t *names = json_array();
    if (aigw_store_list(c->api->store, aigw_schema_entity("snis"), &q, &page, &err) == 0) {
        size_t i;
        json_t *v;
        json_array_foreach(page.data, i, v) json_array_append(names, json_object_get(v, "name"));
        json_decref(page.data);
        free(page.offset);
    }
    aigw_db_error_clear(&err);
    size_t n = json_array_size(names);
    json_t **items = calloc(n ? n : 1, sizeof(json_t *));
    for (size_t i = 0; items && i < n; i++)
        items[i] = json_array_get(names, i);
    if (items)
        qsort(items, n, sizeof(json_t *), cmp_json_str);
    json_t *sorted = json_array();
    for (size_t i = 0; items && i < n; i++)
        json_array_append(sorted, items[i]);
    free(items);
    json_decref(names);
    json_object_set_new(out, "snis", sorted);
}

static void respond_entity(call_t *c, int status, const aigw_entity_t *e, const json_t *obj)
{
    json_t *out = aigw_schema_output(e, obj);
    add_cert_snis(c, e, out);
    /* Kong shows `ttl` only on credentials created with one. */
    if (json_is_null(json_object_get(out, "ttl")))
        json_object_del(out, "ttl");
    aigw_admin_respond_json(c->req, status, out);
    json_decref(out);
}

/* ---- certificates' snis shorthand ------------------------------------------------------- */

/* POST/PUT /certificates with snis=[...]: create the sni rows in the same transaction. */
static int certificate_snis(call_t *c, json_t *cert, json_t *snis)
{
    if (!json_is_array(snis))
        return 0;
    const aigw_entity_t *se = aigw_schema_entity("snis");
    size_t i;
    json_t *v;
    json_array_foreach(snis, i, v)
    {
        json_t *sni = json_pack("{s:O, s:{s:s}}", "name", v, "certificate", "id", id_of(cert));
        if (validate(c, se, sni, AIGW_V_INSERT) != 0) {
            json_decref(sni);
            return -1;
        }
        aigw_db_error_t err = { 0 };
        if (aigw_store_insert(c->api->store, se, sni, &err) != 0) {
            json_decref(sni);
            db_error(c, &err);
            return -1;
        }
        json_decref(sni);
    }
    json_object_set(cert, "snis", snis);
    return 0;
}

/* ---- DB-less ---------------------------------------------------------------------------- */

static int dbless(const call_t *c)
{
    return c->api->conf->database == AIGW_DB_OFF;
}

/* kong/db/strategies/off: writes through the entity endpoints are refused (405, code 12). */
static int refuse_write(call_t *c, const aigw_entity_t *e, const char *by_field)
{
    if (!dbless(c))
        return 0;
    const char *op = is_method(c, HTTP_POST)    ? "create"
                     : is_method(c, HTTP_PATCH) ? "update"
                     : is_method(c, HTTP_PUT)   ? "create or update"
                                                : "remove";
    json_t *o = json_object();
    char msg[512];
    if (by_field)
        snprintf(msg, sizeof(msg), "cannot %s '%s' entities by '%s' when not using a database", op,
                 e->name, by_field);
    else
        snprintf(msg, sizeof(msg), "cannot %s '%s' entities when not using a database", op,
                 e->name);
    json_object_set_new(o, "code", json_integer(12));
    json_object_set_new(o, "name", json_string("operation unsupported"));
    json_object_set_new(o, "message", json_string(msg));
    aigw_admin_respond_json(c->req, 405, o);
    json_decref(o);
    return 1;
}

/* kong/api/routes/config.lua truthy(): "true", "1", "on", "yes" in any case, true or 1. */
static int truthy(const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        return strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "on") == 0 ||
               strcasecmp(s, "yes") == 0;
    }
    return json_is_true(v) || (json_is_integer(v) && json_integer_value(v) == 1) ||
           (json_is_real(v) && json_real_value(v) == 1.0);
}

/* check_hash: tostring(value) == "1". */
static int is_one(const json_t *v)
{
    return (json_is_string(v) && strcmp(json_string_value(v), "1") == 0) ||
           (json_is_integer(v) && json_integer_value(v) == 1) ||
           (json_is_real(v) && json_real_value(v) == 1.0);
}

/* GET /config and POST /config (kong/api/routes/config.lua). */
static void config_endpoint(call_t *c)
{
    if (is_method(c, HTTP_OPTIONS)) {
        aigw_admin_respond_options(c->req, "GET, HEAD, OPTIONS, POST");
        return;
    }
    int get = is_method(c, HTTP_GET) || is_method(c, HTTP_HEAD);
    if (!get && !is_method(c, HTTP_POST)) {
        method_not_allowed(c);
        return;
    }
    if (!dbless(c)) {
        aigw_admin_respond_message(c->req, 400, "this endpoint is only available when Kong is "
                                                "configured to not use a database");
        return;
    }
    aigw_db_error_t err = { 0 };
    if (get) {
        json_t *doc = aigw_declarative_export(c->api->store, &err);
        char *yaml = doc ? aigw_yaml_dump(doc) : NULL;
        json_decref(doc);
        if (!yaml) {
            db_error(c, &err);
            return;
        }
        json_t *o = json_pack("{s:s}", "config", yaml);
        free(yaml);
        aigw_admin_respond_json(c->req, 200, o);
        json_decref(o);
        return;
    }
    /* ?flatten_errors= (Kong's truthy: true, 1, on, yes) and ?check_hash=1 */
    int flatten = truthy(json_object_get(c->query, "flatten_errors"));
    int check = is_one(json_object_get(c->query, "check_hash"));
    /* The document: the body itself (JSON with _format_version, or YAML), or its `config`
     * field (form, multipart or JSON) holding YAML or JSON text. */
    aigw_http_req_t *req = c->req;
    const aigw_http_header_t *ct = aigw_http_req_header(req, AIGW_STR("content-type"));
    aigw_body_kind_t kind;
    if (aigw_decode_kind(ct ? ct->value.p : NULL, ct ? ct->value.n : 0, (size_t)req->body_len, 1,
                         &kind) != 0) {
        aigw_http_respond(req, 415, NULL, 0, NULL, 0);
        return;
    }
    char *owned = NULL;
    const char *text = NULL;
    size_t len = 0;
    json_t *body = NULL;
    char derr[256] = "";
    if (kind == AIGW_BODY_YAML) {
        text = req->body;
        len = (size_t)req->body_len;
    } else if (kind != AIGW_BODY_NONE) {
        if (aigw_decode_body(kind, ct->value.p, ct->value.n, req->body, (size_t)req->body_len,
                             NULL, NULL, &body, derr, sizeof(derr)) != AIGW_DECODE_OK) {
            aigw_admin_respond_message(req, 400, derr[0] ? derr : "Cannot parse JSON body");
            return;
        }
        /* Kong reads its options from the body's arguments too, and drops them. */
        if (json_is_object(body)) {
            flatten |= truthy(json_object_get(body, "flatten_errors"));
            check |= is_one(json_object_get(body, "check_hash"));
            json_object_del(body, "flatten_errors");
            json_object_del(body, "check_hash");
        }
        if (json_object_get(body, "_format_version")) {
            owned = json_dumps(body, JSON_COMPACT);
            text = owned;
        } else if (json_is_string(json_object_get(body, "config"))) {
            text = json_string_value(json_object_get(body, "config"));
        }
        len = text ? strlen(text) : 0;
    }
    if (!text || !len) {
        json_decref(body);
        aigw_admin_respond_message(req, 400, "expected a declarative configuration");
        return;
    }
    json_t *entities = NULL, *flat = NULL;
    if (aigw_declarative_parse_flat(text, len, &entities, &err, flatten ? &flat : NULL) != 0) {
        free(owned);
        json_decref(body);
        if (flat && err.code == AIGW_DBE_DECLARATIVE) {
            /* errors:declarative_config_flattened */
            json_t *fields = err.fields ? json_incref(err.fields) : json_object();
            json_t *o = json_pack("{s:i, s:s, s:s, s:o, s:o}", "code", err.code, "name",
                                  aigw_db_error_name(err.code), "message", err.message,
                                  "fields", fields, "flattened_errors", flat);
            aigw_admin_respond_json(req, 400, o);
            json_decref(o);
            aigw_db_error_clear(&err);
            return;
        }
        json_decref(flat);
        db_error(c, &err);
        return;
    }
    free(owned);
    json_decref(body);
    /* ?check_hash=1: nothing to do when this is the configuration already loaded. */
    char *canon = json_dumps(entities, JSON_COMPACT | JSON_SORT_KEYS);
    char hash[65] = "";
    if (canon) {
        unsigned char md[32];
        unsigned int mdlen = 0;
        EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
            snprintf(hash + 2 * i, 3, "%02x", md[i]);
        free(canon);
    }
    if (check && hash[0] && strcmp(hash, c->api->dbless_hash) == 0) {
        json_decref(entities);
        aigw_http_respond(req, 304, NULL, 0, NULL, 0);
        return;
    }
    if (aigw_declarative_replace(c->api->store, entities, &err) != 0) {
        json_decref(entities);
        db_error(c, &err);
        return;
    }
    memcpy(c->api->dbless_hash, hash, sizeof(hash));
    changed(c);
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(entities, k, v)
    {
        if (k[0] != '_')
            json_object_set(out, k, v);
    }
    aigw_admin_respond_json(req, 201, out);
    json_decref(out);
    json_decref(entities);
}

/* ---- collections ------------------------------------------------------------------------ */

/* size/offset/tags from the query; answers errors. 0 ok. */
static int paging_args(call_t *c, aigw_store_query_t *q, char **tags_store, size_t ntags_max)
{
    q->size = 100;
    json_t *size = json_object_get(c->query, "size");
    if (size) {
        double d;
        if (json_is_integer(size))
            d = (double)json_integer_value(size);
        else if (json_is_real(size))
            d = json_real_value(size);
        else if (json_is_string(size)) {
            char *end;
            d = strtod(json_string_value(size), &end);
            if (end == json_string_value(size) || *end) {
                aigw_db_error_t e = { .code = AIGW_DBE_INVALID_SIZE };
                snprintf(e.message, sizeof(e.message), "size must be a number");
                aigw_api_respond_db_error(c->req, &e);
                return -1;
            }
        } else {
            d = -1;
        }
        if (d < 1 || d > 1000 || d != (double)(long long)d) {
            aigw_db_error_t e = { .code = AIGW_DBE_INVALID_SIZE };
            snprintf(e.message, sizeof(e.message), "size must be an integer between 1 and 1000");
            aigw_api_respond_db_error(c->req, &e);
            return -1;
        }
        q->size = (size_t)d;
    }
    q->offset = json_string_value(json_object_get(c->query, "offset"));
    json_t *tags = json_object_get(c->query, "tags");
    if (tags) {
        const char *t = json_string_value(tags);
        if (json_is_array(tags))
            t = json_string_value(json_array_get(tags, 0));
        aigw_db_error_t e = { .code = AIGW_DBE_INVALID_OPTIONS };
        if (!t || !*t) {
            snprintf(e.message, sizeof(e.message), "invalid option (tags: cannot be null)");
            e.fields = json_pack("{s:s}", "tags", "cannot be null");
            aigw_api_respond_db_error_as(c->req, &e, "options");
            json_decref(e.fields);
            return -1;
        }
        int has_comma = strchr(t, ',') != NULL, has_slash = strchr(t, '/') != NULL;
        int bad = has_comma && has_slash;
        for (const unsigned char *p = (const unsigned char *)t; *p && !bad; p++)
            if (*p < 0x20 || *p == 0x7f || *p > 0xf4)
                bad = 1;
        size_t n = 0;
        const char *s = t;
        char sep = has_slash ? '/' : ',';
        while (!bad && *s) {
            const char *e2 = strchr(s, sep);
            size_t l = e2 ? (size_t)(e2 - s) : strlen(s);
            if (l == 0 || n + 1 >= ntags_max)
                bad = 1;
            else
                tags_store[n++] = strndup(s, l);
            s = e2 ? e2 + 1 : s + l;
            if (e2 && !*s)
                bad = 1;
        }
        tags_store[n] = NULL;
        if (bad) {
            snprintf(e.message, sizeof(e.message), "invalid option (tags: invalid filter syntax)");
            e.fields = json_pack("{s:s}", "tags", "invalid filter syntax");
            aigw_api_respond_db_error_as(c->req, &e, "options");
            json_decref(e.fields);
            return -1;
        }
        q->tags = (const char *const *)tags_store;
        q->tags_any = has_slash;
    }
    return 0;
}

static void append_escaped(char *buf, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(buf);
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            buf[n++] = (char)ch;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[ch >> 4];
            buf[n++] = hex[ch & 15];
        }
    }
    buf[n] = '\0';
}

static void list(call_t *c, const aigw_entity_t *e, const char *fk_field, const char *fk_id,
                 const char *base_path, int top_level)
{
    aigw_store_query_t q = { 0 };
    char *tags[64] = { 0 };
    if (paging_args(c, &q, tags, 64) != 0)
        goto out;
    if (!top_level)
        q.tags = NULL;   /* Kong ignores tags on nested collections */
    q.fk_field = fk_field;
    q.fk_id = fk_id;
    /* Kong's exact lookup GET /consumers?custom_id=x (and, as the issue asks, ?username=x
     * the same way): {"data":[consumer],"next":null} or an empty list. */
    if (top_level && e == aigw_schema_entity("consumers")) {
        static const char *const filters[] = { "custom_id", "username" };
        for (size_t k = 0; k < 2; k++) {
            const json_t *v = json_object_get(c->query, filters[k]);
            if (!v)
                continue;
            if (!json_is_string(v) || !*json_string_value(v)) {
                char msg[64];
                snprintf(msg, sizeof(msg), "%s must be an unempty string", filters[k]);
                aigw_admin_respond_message(c->req, 400, msg);
                goto out;
            }
            q.eq_field = filters[k];
            q.eq_value = json_string_value(v);
            break;
        }
    }
    aigw_store_page_t page = { 0 };
    aigw_db_error_t err = { 0 };
    if (aigw_store_list(c->api->store, e, &q, &page, &err) != 0) {
        db_error(c, &err);
        goto out;
    }
    json_t *data = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(page.data, i, v)
    {
        json_t *out = aigw_schema_output(e, v);
        add_cert_snis(c, e, out);
        if (json_is_null(json_object_get(out, "ttl")))
            json_object_del(out, "ttl");
        json_array_append_new(data, out);
    }
    json_t *o = json_pack("{s:o}", "data", data);
    if (page.offset && !q.eq_field) {
        char next[2048];
        snprintf(next, sizeof(next), "%s?offset=", base_path);
        append_escaped(next, sizeof(next), page.offset);
        if (top_level) {
            json_t *t = json_object_get(c->query, "tags");
            if (json_is_string(t)) {
                size_t l = strlen(next);
                snprintf(next + l, sizeof(next) - l, "&tags=");
                append_escaped(next, sizeof(next), json_string_value(t));
            }
            if (json_object_get(c->query, "size")) {
                size_t l = strlen(next);
                snprintf(next + l, sizeof(next) - l, "&size=%zu", q.size);
            }
        }
        json_object_set_new(o, "offset", json_string(page.offset));
        json_object_set_new(o, "next", json_string(next));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    aigw_admin_respond_json(c->req, 200, o);
    json_decref(o);
    json_decref(page.data);
    free(page.offset);
out:
    for (size_t k = 0; k < 64 && tags[k]; k++)
        free(tags[k]);
}

/* POST to a collection; parent_field/parent_id set when nested. */
static void create(call_t *c, const aigw_entity_t *e, const char *parent_field,
                   const char *parent_id)
{
    if (refuse_write(c, e, NULL))
        return;
    json_t *obj = NULL;
    if (read_body(c, e, NULL, &obj) != 0)
        return;
    if (ttl_option(c, e, obj) != 0) {
        json_decref(obj);
        return;
    }
    if (parent_field)
        json_object_set_new(obj, parent_field, json_pack("{s:s}", "id", parent_id));
    json_t *snis = NULL;
    if (e == aigw_schema_entity("certificates")) {
        snis = json_object_get(obj, "snis");
        if (snis)
            json_incref(snis);
        json_object_del(obj, "snis");
    }
    aigw_db_error_t err = { 0 };
    if (resolve_foreigns(c, e, obj) != 0 || validate(c, e, obj, AIGW_V_INSERT) != 0)
        goto out;
    if (in_tx(c, &err) != 0) {
        db_error(c, &err);
        goto out;
    }
    if (aigw_store_insert(c->api->store, e, obj, &err) != 0) {
        aigw_store_rollback(c->api->store);
        db_error(c, &err);
        goto out;
    }
    if (snis && certificate_snis(c, obj, snis) != 0) {
        aigw_store_rollback(c->api->store);
        goto out;
    }
    if (commit(c) != 0)
        goto out;
    respond_entity(c, 201, e, obj);
out:
    json_decref(snis);
    json_decref(obj);
}

/* ---- single entities --------------------------------------------------------------------- */

/* Deep merge for PATCH: objects merge recursively (records, config), everything else is
 * replaced; null clears. */
static void merge(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)src, k, v)
    {
        json_t *d = json_object_get(dst, k);
        if (json_is_object(v) && json_is_object(d) && json_object_size(v) &&
            !json_object_get(v, "id"))
            merge(d, v);
        else
            json_object_set(dst, k, v);
    }
}

static void patch(call_t *c, const aigw_entity_t *e, json_t *old, const char *parent_field,
                  const char *parent_id)
{
    if (refuse_write(c, e, NULL))
        return;
    const char *pname = (e->flags & AIGW_E_PLUGIN)
                            ? json_string_value(json_object_get(old, "name"))
                            : NULL;
    json_t *body = NULL;
    if (read_body(c, e, pname, &body) != 0)
        return;
    if (ttl_option(c, e, body) != 0) {
        json_decref(body);
        return;
    }
    json_t *obj = json_deep_copy(old);
    /* Nested PATCH keeps the parent unless the body changes it (null detaches). */
    if (parent_field && !json_object_get(body, parent_field))
        json_object_set_new(body, parent_field, json_pack("{s:s}", "id", parent_id));
    aigw_db_error_t err = { 0 };
    if (resolve_foreigns(c, e, body) != 0)
        goto out;
    if (json_object_get(body, "id") && !json_equal(json_object_get(body, "id"),
                                                   json_object_get(old, "id"))) {
        json_t *f = json_pack("{s:s}", "id", "immutable field cannot be updated");
        schema_error(c->req, f);
        json_decref(f);
        goto out;
    }
    merge(obj, body);
    if (validate(c, e, obj, AIGW_V_UPDATE) != 0)
        goto out;
    if (in_tx(c, &err) != 0) {
        db_error(c, &err);
        goto out;
    }
    if (aigw_store_replace(c->api->store, e, obj, &err) != 0) {
        aigw_store_rollback(c->api->store);
        db_error(c, &err);
        goto out;
    }
    if (commit(c) == 0)
        respond_entity(c, 200, e, obj);
out:
    json_decref(body);
    json_decref(obj);
}

/* PUT: create or replace. key is the URL segment (id or endpoint key); old may be NULL. */
static void put(call_t *c, const aigw_entity_t *e, const char *key, json_t *old,
                const char *parent_field, const char *parent_id)
{
    if (refuse_write(c, e, NULL))
        return;
    json_t *obj = NULL;
    const char *pname = NULL;
    if (read_body(c, e, NULL, &obj) != 0)
        return;
    (void)pname;
    if (ttl_option(c, e, obj) != 0) {
        json_decref(obj);
        return;
    }
    if (parent_field)
        json_object_set_new(obj, parent_field, json_pack("{s:s}", "id", parent_id));
    if (old) {
        json_object_set(obj, "id", json_object_get(old, "id"));
        if (json_object_get(old, "created_at"))
            json_object_set(obj, "created_at", json_object_get(old, "created_at"));
    } else if (aigw_schema_is_uuid(key)) {
        json_object_set_new(obj, "id", json_string(key));
    }
    if (!aigw_schema_is_uuid(key) && e->endpoint_key)
        json_object_set_new(obj, e->endpoint_key, json_string(key));
    aigw_db_error_t err = { 0 };
    if (resolve_foreigns(c, e, obj) != 0 || validate(c, e, obj, AIGW_V_INSERT) != 0)
        goto out;
    if (in_tx(c, &err) != 0) {
        db_error(c, &err);
        goto out;
    }
    int r = old ? aigw_store_replace(c->api->store, e, obj, &err)
                : aigw_store_insert(c->api->store, e, obj, &err);
    if (r != 0) {
        aigw_store_rollback(c->api->store);
        db_error(c, &err);
        goto out;
    }
    if (commit(c) == 0)
        respond_entity(c, 200, e, obj);
out:
    json_decref(obj);
}

static void del(call_t *c, const aigw_entity_t *e, const char *id)
{
    aigw_db_error_t err = { 0 };
    if (in_tx(c, &err) != 0) {
        db_error(c, &err);
        return;
    }
    int r = aigw_store_delete(c->api->store, e, id, &err);
    if (r < 0) {
        aigw_store_rollback(c->api->store);
        db_error(c, &err);
        return;
    }
    if (commit(c) == 0)
        aigw_http_respond(c->req, 204, NULL, 0, NULL, 0);
}

/* Kong's not-found on update: code 6 with the key used. */
static void not_found_update(call_t *c, const aigw_entity_t *e, const char *key)
{
    aigw_db_error_t err = { .code = AIGW_DBE_NOT_FOUND };
    if (aigw_schema_is_uuid(key) || !e->endpoint_key) {
        snprintf(err.message, sizeof(err.message),
                 "could not find the entity with primary key '{id=\"%s\"}'", key);
        err.fields = json_pack("{s:s}", "id", key);
    } else {
        snprintf(err.message, sizeof(err.message), "could not find the entity with '{%s=\"%s\"}'",
                 e->endpoint_key, key);
        err.fields = json_pack("{s:s}", e->endpoint_key, key);
    }
    aigw_api_respond_db_error(c->req, &err);
    json_decref(err.fields);
}

/* /X/{key} (and nested /P/{p}/X/{key} when parent_field is set). */
static void entity_endpoint(call_t *c, const aigw_entity_t *e, const char *key,
                            const char *parent_field, const char *parent_id)
{
    json_t *obj = NULL;
    int r;
    if (parent_field && !aigw_schema_is_uuid(key) && e->cache_key &&
        e->endpoint_key && strcmp(e->endpoint_key, "group") == 0) {
        /* acls: the group is unique only within its consumer. */
        aigw_store_query_t q = { .size = 1000, .fk_field = parent_field, .fk_id = parent_id };
        aigw_store_page_t page = { 0 };
        aigw_db_error_t err = { 0 };
        if (aigw_store_list(c->api->store, e, &q, &page, &err) != 0) {
            db_error(c, &err);
            return;
        }
        r = 1;
        size_t i;
        json_t *v;
        json_array_foreach(page.data, i, v)
        {
            const char *g = json_string_value(json_object_get(v, "group"));
            if (g && strcmp(g, key) == 0) {
                obj = json_incref(v);
                r = 0;
                break;
            }
        }
        json_decref(page.data);
        free(page.offset);
    } else {
        r = lookup(c, e, key, &obj);
        if (r < 0)
            return;
    }
    /* Nested: the child must belong to that parent. */
    if (r == 0 && parent_field) {
        const char *fk = fk_of(obj, parent_field);
        if (!fk || strcmp(fk, parent_id) != 0) {
            json_decref(obj);
            obj = NULL;
            r = 1;
        }
    }
    if (is_method(c, HTTP_GET) || is_method(c, HTTP_HEAD)) {
        if (r == 0)
            respond_entity(c, 200, e, obj);
        else
            not_found(c);
    } else if ((is_method(c, HTTP_PATCH) || is_method(c, HTTP_PUT) ||
                is_method(c, HTTP_DELETE)) &&
               refuse_write(c, e, aigw_schema_is_uuid(key) ? NULL : e->endpoint_key)) {
        /* DB-less: answered */
    } else if (is_method(c, HTTP_PATCH)) {
        if (r == 0)
            patch(c, e, obj, parent_field, parent_id);
        else
            not_found_update(c, e, key);
    } else if (is_method(c, HTTP_PUT)) {
        put(c, e, key, r == 0 ? obj : NULL, parent_field, parent_id);
    } else if (is_method(c, HTTP_DELETE)) {
        if (r == 0)
            del(c, e, id_of(obj));
        else if (parent_field)
            not_found(c);   /* nested DELETE of a missing child: 404 */
        else
            aigw_http_respond(c->req, 204, NULL, 0, NULL, 0);
    } else if (is_method(c, HTTP_OPTIONS)) {
        aigw_admin_respond_options(c->req, "DELETE, GET, HEAD, OPTIONS, PATCH, PUT");
    } else {
        method_not_allowed(c);
    }
    json_decref(obj);
}

/* /routes/{r}/service: the entity a foreign field points to. */
static void foreign_endpoint(call_t *c, const aigw_entity_t *e, const aigw_field_t *f,
                             const char *key)
{
    json_t *child = NULL;
    int found = lookup(c, e, key, &child);
    if (found != 0) {
        if (found == 1)
            not_found(c);
        return;
    }
    const aigw_entity_t *pe = aigw_schema_entity(f->reference);
    const char *pid = fk_of(child, f->name);
    json_t *parent = NULL;
    int r = 1;
    if (pid) {
        aigw_db_error_t err = { 0 };
        r = aigw_store_get(c->api->store, pe, pid, &parent, &err);
        if (r < 0) {
            json_decref(child);
            db_error(c, &err);
            return;
        }
    }
    if (is_method(c, HTTP_GET) || is_method(c, HTTP_HEAD)) {
        if (r == 0)
            respond_entity(c, 200, pe, parent);
        else
            not_found(c);
    } else if (is_method(c, HTTP_PATCH)) {
        if (r == 0)
            patch(c, pe, parent, NULL, NULL);
        else
            not_found(c);
    } else if (is_method(c, HTTP_PUT)) {
        if (r == 0)
            put(c, pe, id_of(parent), parent, NULL, NULL);
        else
            not_found(c);
    } else if (is_method(c, HTTP_DELETE)) {
        if (r == 0)
            method_not_allowed(c);
        else
            not_found(c);
    } else if (is_method(c, HTTP_OPTIONS)) {
        aigw_admin_respond_options(c->req, "DELETE, GET, HEAD, OPTIONS, PATCH, PUT");
    } else {
        method_not_allowed(c);
    }
    json_decref(parent);
    json_decref(child);
}

static void collection_endpoint(call_t *c, const aigw_entity_t *e, const char *parent_field,
                                const char *parent_id, const char *base_path, int top_level)
{
    if (is_method(c, HTTP_GET) || is_method(c, HTTP_HEAD))
        list(c, e, parent_field, parent_id, base_path, top_level);
    else if (is_method(c, HTTP_POST))
        create(c, e, parent_field, parent_id);
    else if (is_method(c, HTTP_OPTIONS))
        aigw_admin_respond_options(c->req, "GET, HEAD, OPTIONS, POST");
    else
        method_not_allowed(c);
}

/* The child entity reachable as /{parent}/{p}/{segment}, and the field that links them. */
static const aigw_entity_t *nested_child(const aigw_entity_t *parent, const char *segment,
                                         const char **link_field)
{
    for (const aigw_entity_t *const *pe = aigw_entities; *pe; pe++) {
        const aigw_entity_t *ch = *pe;
        if (!ch->nested_path || strcmp(ch->nested_path, segment) != 0)
            continue;
        if (ch->flags & AIGW_E_PLUGIN) {
            /* plugins nest under services, routes and consumers */
            const char *f = strcmp(parent->name, "services") == 0   ? "service"
                            : strcmp(parent->name, "routes") == 0    ? "route"
                            : strcmp(parent->name, "consumers") == 0 ? "consumer"
                                                                     : NULL;
            if (f) {
                *link_field = f;
                return ch;
            }
            continue;
        }
        const aigw_field_t *lf = ch->parent_field ? aigw_schema_field(ch->fields, ch->parent_field)
                                                  : NULL;
        if (lf && lf->reference && strcmp(lf->reference, parent->name) == 0) {
            *link_field = ch->parent_field;
            return ch;
        }
    }
    return NULL;
}

/* ---- /schemas, /tags, /endpoints, /plugins/enabled ---------------------------------------- */

static void schemas(call_t *c)
{
    if (c->nsegs == 2 && (is_method(c, HTTP_GET) || is_method(c, HTTP_HEAD))) {
        const aigw_entity_t *e = aigw_schema_entity(c->segs[1]);
        if (!e) {
            char msg[300];
            snprintf(msg, sizeof(msg), "No entity named '%s'", c->segs[1]);
            aigw_admin_respond_message(c->req, 404, msg);
            return;
        }
        json_t *d = aigw_schema_describe(e);
        aigw_admin_respond_json(c->req, 200, d);
        json_decref(d);
        return;
    }
    if (c->nsegs == 3 && strcmp(c->segs[1], "plugins") == 0 &&
        strcmp(c->segs[2], "validate") != 0) {
        const aigw_plugin_schema_t *p = aigw_schema_plugin(c->segs[2]);
        if (!p) {
            char msg[300];
            snprintf(msg, sizeof(msg), "No plugin named '%s'", c->segs[2]);
            aigw_admin_respond_message(c->req, 404, msg);
            return;
        }
        json_t *d = aigw_schema_describe_plugin(p);
        aigw_admin_respond_json(c->req, 200, d);
        json_decref(d);
        return;
    }
    if (c->nsegs == 3 && strcmp(c->segs[2], "validate") == 0) {
        if (!is_method(c, HTTP_POST)) {
            method_not_allowed(c);
            return;
        }
        const aigw_entity_t *e = aigw_schema_entity(c->segs[1]);
        if (!e) {
            not_found(c);
            return;
        }
        json_t *obj = NULL;
        if (read_body(c, e, NULL, &obj) != 0)
            return;
        if (validate(c, e, obj, AIGW_V_CHECK) == 0)
            aigw_admin_respond_message(c->req, 200, "schema validation successful");
        json_decref(obj);
        return;
    }
    not_found(c);
}

/* Length of the longest valid UTF-8 prefix of s. */
static size_t valid_utf8_prefix(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (p[i]) {
        unsigned char ch = p[i];
        size_t n = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 ? 4 : 0;
        if (n == 0 || (n > 1 && ch < 0xc2) || ch > 0xf4)
            return i;
        for (size_t k = 1; k < n; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return i;
        i += n;
    }
    return i;
}

static void tags(call_t *c)
{
    if (!is_method(c, HTTP_GET) && !is_method(c, HTTP_HEAD)) {
        method_not_allowed(c);
        return;
    }
    aigw_store_query_t q = { 0 };
    char *unused[2] = { 0 };
    json_t *saved = json_object_get(c->query, "tags");
    if (saved)
        json_object_del(c->query, "tags");
    if (paging_args(c, &q, unused, 2) != 0)
        return;
    if (c->nsegs == 2) {
        size_t bad = valid_utf8_prefix(c->segs[1]);
        if (c->segs[1][bad]) {
            json_t *f = json_object();
            char msg[128];
            snprintf(msg, sizeof(msg), "invalid utf-8 character sequence detected at position %zu",
                     bad + 1);
            json_object_set_new(f, "tag", json_string(msg));
            schema_error(c->req, f);
            json_decref(f);
            return;
        }
    }
    aigw_store_page_t page = { 0 };
    aigw_db_error_t err = { 0 };
    if (aigw_store_tags(c->api->store, c->nsegs == 2 ? c->segs[1] : NULL, q.size, q.offset,
                        &page, &err) != 0) {
        db_error(c, &err);
        return;
    }
    json_t *o = json_pack("{s:O}", "data", page.data);
    if (page.offset) {
        char next[1024];
        snprintf(next, sizeof(next), "/tags%s%s?offset=", c->nsegs == 2 ? "/" : "",
                 c->nsegs == 2 ? c->segs[1] : "");
        append_escaped(next, sizeof(next), page.offset);
        json_object_set_new(o, "offset", json_string(page.offset));
        json_object_set_new(o, "next", json_string(next));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    aigw_admin_respond_json(c->req, 200, o);
    json_decref(o);
    json_decref(page.data);
    free(page.offset);
}

static int cmp_json_str(const void *a, const void *b)
{
    const char *x = json_string_value(*(json_t *const *)a), *y = json_string_value(*(json_t *const *)b);
    return strcmp(x ? x : "", y ? y : "");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static void endpoints(call_t *c)
{
    json_t *arr = json_array();
    static const char *const fixed[] = { "/", "/status", "/endpoints", "/schemas/{db_entity_name}",
                                         "/schemas/{db_entity_name}/validate",
                                         "/schemas/plugins/{name}", "/schemas/plugins/validate",
                                         "/plugins/enabled", "/tags", "/tags/{tags}", "/config",
                                         "/metrics", "/clustering/data-planes",
                                         "/clustering/status",
                                         NULL };
    for (size_t i = 0; fixed[i]; i++)
        json_array_append_new(arr, json_string(fixed[i]));
    /* the upstream health routes (upstream_health.h) */
    for (const char *const *p = aigw_upstream_health_endpoints(c->api->conf); *p; p++)
        json_array_append_new(arr, json_string(*p));
    for (const aigw_entity_t *const *pe = aigw_entities; *pe; pe++) {
        const aigw_entity_t *e = *pe;
        if (!e->admin_path)
            continue;
        char b[256];
        if (!(e->flags & AIGW_E_NO_TOP_LEVEL)) {
            snprintf(b, sizeof(b), "/%s", e->admin_path);
            json_array_append_new(arr, json_string(b));
            snprintf(b, sizeof(b), "/%s/{%s}", e->admin_path, e->name);
            json_array_append_new(arr, json_string(b));
        }
        for (const aigw_field_t *f = e->fields; f->name; f++) {
            if (f->type != AIGW_FT_FOREIGN || !f->reference)
                continue;
            const aigw_entity_t *pe2 = aigw_schema_entity(f->reference);
            if (!pe2 || !pe2->admin_path)
                continue;
            if (!(e->flags & AIGW_E_NO_TOP_LEVEL)) {
                snprintf(b, sizeof(b), "/%s/{%s}/%s", e->admin_path, e->name, f->name);
                json_array_append_new(arr, json_string(b));
            }
            /* Only the nested collections dispatch() really serves. */
            const char *link = NULL;
            const char *seg = e->nested_path;
            if (!seg || nested_child(pe2, seg, &link) != e || strcmp(link, f->name) != 0)
                continue;
            snprintf(b, sizeof(b), "/%s/{%s}/%s", pe2->admin_path, pe2->name, seg);
            json_array_append_new(arr, json_string(b));
            snprintf(b, sizeof(b), "/%s/{%s}/%s/{%s}", pe2->admin_path, pe2->name, seg, e->name);
            json_array_append_new(arr, json_string(b));
        }
    }
    size_t n = json_array_size(arr);
    json_t **items = calloc(n ? n : 1, sizeof(json_t *));
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort(items, n, sizeof(json_t *), cmp_str);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(json_string_value(items[i]), json_string_value(items[i - 1])) == 0) {
            json_decref(items[i]);
            continue;
        }
        json_array_append_new(sorted, items[i]);
    }
    free(items);
    json_decref(arr);
    json_t *o = json_pack("{s:o}", "data", sorted);
    aigw_admin_respond_json(c->req, 200, o);
    json_decref(o);
}

static void plugins_enabled(call_t *c)
{
    if (is_method(c, HTTP_OPTIONS)) {
        aigw_admin_respond_options(c->req, "GET, HEAD, OPTIONS");
        return;
    }
    if (!is_method(c, HTTP_GET) && !is_method(c, HTTP_HEAD)) {
        method_not_allowed(c);
        return;
    }
    json_t *arr = json_array();
    for (const aigw_plugin_schema_t *const *p = aigw_plugins; *p; p++)
        json_array_append_new(arr, json_string((*p)->name));
    json_t *o = json_pack("{s:o}", "enabled_plugins", arr);
    aigw_admin_respond_json(c->req, 200, o);
    json_decref(o);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static int dispatch(call_t *c)
{
    const char *s0 = c->segs[0];
    if (strcmp(s0, "schemas") == 0) {
        schemas(c);
        return 1;
    }
    if (strcmp(s0, "endpoints") == 0 && c->nsegs == 1) {
        endpoints(c);
        return 1;
    }
    if (aigw_admin_clustering_handle(c->api->conf, c->req, c->segs, c->nsegs))
        return 1;
    if (strcmp(s0, "plugins") == 0 && c->nsegs == 2 && strcmp(c->segs[1], "enabled") == 0) {
        plugins_enabled(c);
        return 1;
    }
    if (strcmp(s0, "plugins") == 0 && c->nsegs == 3 && strcmp(c->segs[1], "schema") == 0) {
        const aigw_plugin_schema_t *p = aigw_schema_plugin(c->segs[2]);
        if (!p) {
            char msg[300];
            snprintf(msg, sizeof(msg), "No plugin named '%s'", c->segs[2]);
            aigw_admin_respond_message(c->req, 404, msg);
        } else {
            json_t *d = aigw_schema_describe_plugin(p);
            json_t *cfg = NULL;
            size_t i;
            json_t *f;
            json_array_foreach(json_object_get(d, "fields"), i, f)
            {
                json_t *v = json_object_get(f, "config");
                if (v)
                    cfg = v;
            }
            aigw_admin_respond_json(c->req, 200, cfg ? cfg : d);
            json_decref(d);
        }
        return 1;
    }
    if (!store_ready(c))
        return 1;
    if (strcmp(s0, "tags") == 0 && c->nsegs <= 2) {
        tags(c);
        return 1;
    }
    if (strcmp(s0, "config") == 0 && c->nsegs == 1) {
        config_endpoint(c);
        return 1;
    }

    const aigw_entity_t *e = aigw_schema_entity_by_path(s0);
    if (!e)
        return 0;
    char base[600];
    if (c->nsegs == 1) {
        if (e->flags & AIGW_E_NO_TOP_LEVEL)
            return 0;
        snprintf(base, sizeof(base), "/%s", e->admin_path);
        collection_endpoint(c, e, NULL, NULL, base, 1);
        return 1;
    }
    if (e->flags & AIGW_E_NO_TOP_LEVEL)
        return 0;
    if (c->nsegs == 2) {
        entity_endpoint(c, e, c->segs[1], NULL, NULL);
        return 1;
    }
    /* /{e}/{key}/{segment}[/{child}] */
    const char *link = NULL;
    const aigw_entity_t *child = nested_child(e, c->segs[2], &link);
    if (!child) {
        const aigw_field_t *f = aigw_schema_field(e->fields, c->segs[2]);
        if (c->nsegs == 3 && f && f->type == AIGW_FT_FOREIGN) {
            foreign_endpoint(c, e, f, c->segs[1]);
            return 1;
        }
        return 0;
    }
    if (c->nsegs > 4)
        return 0;
    json_t *parent = NULL;
    int r = lookup(c, e, c->segs[1], &parent);
    if (r < 0)
        return 1;
    if (r == 1) {
        not_found(c);
        return 1;
    }
    const char *pid = id_of(parent);
    if (c->nsegs == 3) {
        snprintf(base, sizeof(base), "/%s/%s/%s", e->admin_path, c->segs[1], c->segs[2]);
        collection_endpoint(c, child, link, pid, base, 0);
    } else {
        entity_endpoint(c, child, c->segs[3], link, pid);
    }
    json_decref(parent);
    return 1;
}

int aigw_api_handle(aigw_api_t *api, aigw_http_req_t *req)
{
    call_t c = { .api = api, .req = req };
    if (split_path(&c) != 0 || c.nsegs == 0) {
        call_free(&c);
        return 0;
    }
    char err[256];
    unsigned qflags = (req->method == HTTP_GET || req->method == HTTP_HEAD ||
                       req->method == HTTP_DELETE)
                          ? AIGW_DECODE_NO_MAPS
                          : 0;
    if (aigw_decode_query(req->query.p, req->query.n, qflags, NULL, NULL, &c.query, err,
                          sizeof(err)) != 0) {
        /* Bytes that are not UTF-8 in a tags filter are Kong's invalid filter syntax. */
        const char *t = req->query.n ? memmem(req->query.p, req->query.n, "tags=", 5) : NULL;
        if (t && (t == req->query.p || t[-1] == '&') && strstr(err, "UTF-8")) {
            aigw_db_error_t e = { .code = AIGW_DBE_INVALID_OPTIONS };
            snprintf(e.message, sizeof(e.message), "invalid option (tags: invalid filter syntax)");
            e.fields = json_pack("{s:s}", "tags", "invalid filter syntax");
            aigw_api_respond_db_error_as(req, &e, "options");
            json_decref(e.fields);
            call_free(&c);
            return 1;
        }
        aigw_admin_respond_message(req, 400, err);
        call_free(&c);
        return 1;
    }
    int handled = dispatch(&c);
    call_free(&c);
    return handled;
}
