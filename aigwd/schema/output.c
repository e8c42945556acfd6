/* aigwd/schema/output.c: the JSON an entity is shown as (every field present, Kong's select
 * with nulls), and GET /schemas descriptions (kong/api/api_helpers.lua schema_to_jsonable).
 * Pure functions; any thread. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "schema/schema.h"

static const char *const http_protocols[] = {"grpc", "grpcs", "http", "https", NULL};

static int is_required(const aigw_field_t *f)
{
    if (f->flags & AIGW_F_REQUIRED)
        return 1;
    if (f->type == AIGW_FT_RECORD && !(f->flags & AIGW_F_NULLABLE_REQ))
        return !(f->dflt && strcmp(f->dflt, "null") == 0);
    return 0;
}

static int hidden(const aigw_field_t *f)
{
    return f->alias_of || (f->flags & AIGW_F_INPUT_ONLY);
}

static json_t *parse_default(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    return v ? v : json_null();
}

static json_t *string_list(const char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list && list[i]; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

/* ---- output ----------------------------------------------------------------------------------- */

static json_t *out_value(const aigw_field_t *f, const json_t *v);

/* The value at a dotted path below obj (borrowed), or NULL. */
static const json_t *at_path(const json_t *obj, const char *path)
{
    const char *dot;
    while (obj && (dot = strchr(path, '.')) != NULL) {
        char comp[128];
        size_t n = (size_t)(dot - path);
        if (n >= sizeof comp)
            return NULL;
        memcpy(comp, path, n);
        comp[n] = '\0';
        obj = json_object_get(obj, comp);
        path = dot + 1;
    }
    return json_is_object(obj) ? json_object_get(obj, path) : NULL;
}

/* Kong 3.9 shows a deprecated shorthand (an alias not marked input-only, such as
 * rate-limiting's redis_host) with the current value of the field it stands for. */
static void add_aliases(json_t *out, const aigw_field_t *fields)
{
    for (const aigw_field_t *f = fields; f && f->name; f++) {
        if (!f->alias_of || (f->flags & AIGW_F_INPUT_ONLY))
            continue;
        const json_t *v = at_path(out, f->alias_of);
        json_object_set_new(out, f->name, v ? json_deep_copy(v) : json_null());
    }
}

static json_t *out_record(const aigw_field_t *fields, const json_t *obj)
{
    json_t *out = json_object();
    for (const aigw_field_t *f = fields; f && f->name; f++) {
        if (hidden(f))
            continue;
        json_object_set_new(out, f->name, out_value(f, obj ? json_object_get(obj, f->name) : NULL));
    }
    add_aliases(out, fields);
    return out;
}

/* Kong's select fills an absent field from its default (records from their subfields'), so an
 * entity stored before a field existed comes back complete. */
static json_t *out_value(const aigw_field_t *f, const json_t *v)
{
    if (!v) {
        if (f->dflt) {
            json_t *d = parse_default(f->dflt);
            json_t *o = out_value(f, d);
            json_decref(d);
            return o;
        }
        if (f->type == AIGW_FT_RECORD && is_required(f))
            return out_record(f->fields, NULL);
        return json_null();
    }
    if (json_is_null(v))
        return json_null();
    switch (f->type) {
    case AIGW_FT_STRING:
        /* Kong's select shows "" as null unless the field allows empty strings */
        if (json_is_string(v) && json_string_length(v) == 0 &&
            (!(f->flags & AIGW_F_LEN_MIN) || f->len_min > 0))
            return json_null();
        break;
    case AIGW_FT_RECORD:
        if (json_is_object(v))
            return out_record(f->fields, v);
        break;
    case AIGW_FT_ARRAY:
    case AIGW_FT_SET:
        if (json_is_array(v) && f->elements && f->elements->type == AIGW_FT_RECORD) {
            json_t *a = json_array();
            size_t i;
            const json_t *el;
            json_array_foreach(v, i, el)
                json_array_append_new(a, out_value(f->elements, el));
            return a;
        }
        break;
    case AIGW_FT_MAP:
        if (json_is_object(v) && f->elements && f->elements->type == AIGW_FT_RECORD) {
            json_t *m = json_object();
            const char *k;
            const json_t *el;
            json_object_foreach((json_t *)(uintptr_t)v, k, el)
                json_object_set_new(m, k, out_value(f->elements, el));
            return m;
        }
        break;
    default:
        break;
    }
    return json_deep_copy(v);
}

json_t *aigw_schema_output(const aigw_entity_t *e, const json_t *obj)
{
    const aigw_plugin_schema_t *p = NULL;
    if (e->flags & AIGW_E_PLUGIN) {
        const json_t *name = json_object_get(obj, "name");
        if (json_is_string(name))
            p = aigw_schema_plugin(json_string_value(name));
    }
    json_t *out = json_object();
    for (const aigw_field_t *f = e->fields; f && f->name; f++) {
        if (hidden(f))
            continue;
        const json_t *v = obj ? json_object_get(obj, f->name) : NULL;
        json_t *o;
        if (p && strcmp(f->name, "config") == 0) {
            if (!v)
                o = out_record(p->config, NULL);
            else if (json_is_object(v))
                o = out_record(p->config, v);
            else
                o = json_deep_copy(v);
        } else if (p && strcmp(f->name, "protocols") == 0 && !v) {
            o = string_list(p->protocols ? p->protocols : http_protocols);
        } else {
            o = out_value(f, v);
        }
        json_object_set_new(out, f->name, o);
    }
    add_aliases(out, e->fields);
    return out;
}

/* ---- describe --------------------------------------------------------------------------------- */

static const char *type_name(aigw_ftype_t t)
{
    switch (t) {
    case AIGW_FT_STRING: return "string";
    case AIGW_FT_INTEGER: return "integer";
    case AIGW_FT_NUMBER: return "number";
    case AIGW_FT_BOOLEAN: return "boolean";
    case AIGW_FT_ARRAY: return "array";
    case AIGW_FT_SET: return "set";
    case AIGW_FT_MAP: return "map";
    case AIGW_FT_RECORD: return "record";
    case AIGW_FT_FOREIGN: return "foreign";
    case AIGW_FT_ANY: return "json";
    }
    return "json";
}

static json_t *number(double d)
{
    if (d >= -9.2e18 && d <= 9.2e18 && d == (double)(json_int_t)d)
        return json_integer((json_int_t)d);
    return json_real(d);
}

static json_t *desc_fields(const aigw_field_t *fields);

static json_t *desc_field(const aigw_field_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type_name(f->type)));
    if (f->flags & AIGW_F_REQUIRED || (f->type == AIGW_FT_RECORD && is_required(f)))
        json_object_set_new(o, "required", json_true());
    else if (f->type == AIGW_FT_RECORD)
        json_object_set_new(o, "required", json_false());
    if (f->flags & AIGW_F_UNIQUE)
        json_object_set_new(o, "unique", json_true());
    if (f->flags & AIGW_F_AUTO)
        json_object_set_new(o, "auto", json_true());
    if (f->flags & AIGW_F_UUID)
        json_object_set_new(o, "uuid", json_true());
    if (f->flags & AIGW_F_TIMESTAMP)
        json_object_set_new(o, "timestamp", json_true());
    if (f->flags & AIGW_F_IMMUTABLE)
        json_object_set_new(o, "immutable", json_true());
    if (f->dflt)
        json_object_set_new(o, "default", parse_default(f->dflt));
    if (f->one_of) {
        json_t *a = json_array();
        int numeric = f->type == AIGW_FT_INTEGER || f->type == AIGW_FT_NUMBER;
        for (size_t i = 0; f->one_of[i]; i++) {
            if (numeric) {
                json_error_t jerr;
                json_t *n = json_loads(f->one_of[i], JSON_DECODE_ANY, &jerr);
                json_array_append_new(a, n ? n : json_string(f->one_of[i]));
            } else {
                json_array_append_new(a, json_string(f->one_of[i]));
            }
        }
        json_object_set_new(o, "one_of", a);
    }
    if (f->flags & AIGW_F_HAS_BETWEEN) {
        json_t *a = json_array();
        json_array_append_new(a, number(f->min));
        json_array_append_new(a, number(f->max));
        json_object_set_new(o, "between", a);
    }
    if (f->flags & AIGW_F_HAS_GT)
        json_object_set_new(o, "gt", number(f->min));
    if (f->flags & AIGW_F_LEN_MIN)
        json_object_set_new(o, "len_min", json_integer((json_int_t)f->len_min));
    if (f->starts_with)
        json_object_set_new(o, "starts_with", json_string(f->starts_with));
    if (f->type == AIGW_FT_FOREIGN && f->reference)
        json_object_set_new(o, "reference", json_string(f->reference));
    if (f->flags & AIGW_F_CASCADE)
        json_object_set_new(o, "on_delete", json_string("cascade"));
    if ((f->type == AIGW_FT_ARRAY || f->type == AIGW_FT_SET) && f->elements)
        json_object_set_new(o, "elements", desc_field(f->elements));
    if (f->type == AIGW_FT_MAP) {
        json_t *keys = json_object();
        json_object_set_new(keys, "type", json_string("string"));
        json_object_set_new(o, "keys", keys);
        if (f->elements)
            json_object_set_new(o, "values", desc_field(f->elements));
    }
    if (f->type == AIGW_FT_RECORD)
        json_object_set_new(o, "fields", desc_fields(f->fields));
    return o;
}

static void add_named(json_t *list, const char *name, json_t *desc)
{
    json_t *one = json_object();
    json_object_set_new(one, name, desc);
    json_array_append_new(list, one);
}

static json_t *desc_fields(const aigw_field_t *fields)
{
    json_t *list = json_array();
    for (const aigw_field_t *f = fields; f && f->name; f++)
        if (!hidden(f) && !(f->flags & AIGW_F_TTL))
            add_named(list, f->name, desc_field(f));
    return list;
}

/* Kong's shape: {"entity_checks":[...],"fields":[...]}; each top-level field's record (the
 * field itself, or its elements) gets the checks declared for it. */
static json_t *schema_doc(json_t *fields, const char *schema)
{
    size_t i;
    json_t *one;
    json_array_foreach(fields, i, one) {
        const char *name;
        json_t *d;
        json_object_foreach(one, name, d) {
            json_t *rec = json_object_get(d, "elements");
            if (!json_is_object(rec))
                rec = d;
            const char *type = json_string_value(json_object_get(rec, "type"));
            if (!type || strcmp(type, "record") != 0)
                continue;
            json_t *c = aigw_schema_entity_checks_json(schema, name);
            if (json_array_size(c) > 0)
                json_object_set_new(rec, "entity_checks", c);
            else
                json_decref(c);
        }
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "entity_checks", aigw_schema_entity_checks_json(schema, NULL));
    json_object_set_new(doc, "fields", fields);
    return doc;
}

json_t *aigw_schema_describe(const aigw_entity_t *e)
{
    json_t *list = json_array();
    for (const aigw_field_t *f = e->fields; f && f->name; f++) {
        if (hidden(f) || (f->flags & AIGW_F_TTL))
            continue; /* Kong's ttl is an option, not a field */
        if ((e->flags & AIGW_E_PLUGIN) && strcmp(f->name, "config") == 0) {
            /* Kong: the abstract field each plugin specialises */
            json_t *d = json_object();
            json_object_set_new(d, "type", json_string("record"));
            json_object_set_new(d, "abstract", json_true());
            add_named(list, f->name, d);
            continue;
        }
        add_named(list, f->name, desc_field(f));
    }
    return schema_doc(list, e->name);
}

static json_t *no_parent(const char *reference)
{
    json_t *d = json_object();
    json_object_set_new(d, "type", json_string("foreign"));
    json_object_set_new(d, "reference", json_string(reference));
    json_object_set_new(d, "eq", json_null());
    return d;
}

json_t *aigw_schema_describe_plugin(const aigw_plugin_schema_t *p)
{
    json_t *list = json_array();
    if (p->flags & AIGW_P_NO_CONSUMER)
        add_named(list, "consumer", no_parent("consumers"));
    if (p->flags & AIGW_P_NO_ROUTE)
        add_named(list, "route", no_parent("routes"));
    if (p->flags & AIGW_P_NO_SERVICE)
        add_named(list, "service", no_parent("services"));

    /* protocols: typedefs.protocols_http, or the entity's protocol set; the plugin's default */
    json_t *proto = json_object();
    json_object_set_new(proto, "type", json_string("set"));
    json_object_set_new(proto, "required", json_true());
    json_object_set_new(proto, "default", string_list(p->protocols ? p->protocols : http_protocols));
    json_t *el = NULL;
    if (!(p->flags & AIGW_P_PROTOCOLS_HTTP)) {
        const aigw_entity_t *pe = aigw_schema_entity("plugins");
        const aigw_field_t *pf = pe ? aigw_schema_field(pe->fields, "protocols") : NULL;
        if (pf && pf->elements)
            el = desc_field(pf->elements);
    }
    if (!el) {
        el = json_object();
        json_object_set_new(el, "type", json_string("string"));
        if (p->flags & AIGW_P_PROTOCOLS_HTTP)
            json_object_set_new(el, "one_of", string_list(http_protocols));
    }
    json_object_set_new(proto, "elements", el);
    add_named(list, "protocols", proto);

    json_t *cfg = json_object();
    json_object_set_new(cfg, "type", json_string("record"));
    json_object_set_new(cfg, "required", json_true());
    json_object_set_new(cfg, "fields", desc_fields(p->config));
    add_named(list, "config", cfg);
    char name[128];
    snprintf(name, sizeof(name), "plugins/%s", p->name);
    return schema_doc(list, name);
}
