/* aigwd/schema/validate.c: validation and normalisation of an entity against its field table,
 * with Kong 3.9's semantics and messages (kong/db/schema/init.lua: validate_field,
 * process_auto_fields, handle_missing_field, validate).
 *
 * Decisions where Kong's model and ours differ:
 * - Records are required unless AIGW_F_NULLABLE_REQ (or a "null" default): Kong's Entity makes
 *   every record field required, so an absent record is built from its subfields' defaults
 *   and an explicit null is "required field missing".
 * - An alias (alias_of = "x" or a dotted "redis.host" inside the same record) is checked as
 *   its own field, then moved to its target before anything else. Given together with a
 *   non-null target, an equal value is dropped and a different one is an error on the alias
 *   key (Kong's deprecated-shorthand message).
 * - The entity's check runs only when every field passed; the plugin's check (on the config
 *   record) when the config passed. Both get the top-level "@entity" array and errors object
 *   and write Kong's shapes there themselves (schema/plugins/plugins.h).
 * - AIGW_F_IMMUTABLE is not enforced here: UPDATE only sees the merged entity. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/rand.h>

#include "schema/schema.h"

#define MSG_REQUIRED "required field missing"
#define MSG_UNKNOWN "unknown field"

typedef struct vctx {
    aigw_vmode_t mode;
    int have_now;
    struct timespec now;
} vctx_t;

/* typedefs.protocols_http: what a plugin with no protocol list of its own accepts. */
static const char *const http_protocols[] = {"grpc", "grpcs", "http", "https", NULL};

/* A plugin's view of one top-level field of the plugins entity. */
typedef struct pfield {
    aigw_field_t f;
    aigw_field_t el;
    char dflt[512];
    int must_be_null; /* typedefs.no_consumer / no_route / no_service */
} pfield_t;

static json_t *check_value(vctx_t *c, const aigw_field_t *f, json_t *v, json_t **repl);
static void process_fields(vctx_t *c, const aigw_field_t *fields, json_t *obj, json_t *errs,
                           const aigw_plugin_schema_t *p);

/* ---- small helpers ------------------------------------------------------------------------- */

static int is_required(const aigw_field_t *f)
{
    if (f->flags & AIGW_F_REQUIRED)
        return 1;
    if (f->type == AIGW_FT_RECORD && !(f->flags & AIGW_F_NULLABLE_REQ))
        return !(f->dflt && strcmp(f->dflt, "null") == 0);
    return 0;
}

static json_t *parse_default(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    return v ? v : json_null();
}

static void fill_random(unsigned char *buf, size_t n)
{
    if (n <= (size_t)0x7fffffff && RAND_bytes(buf, (int)n) == 1)
        return;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
    }
}

/* 32 characters of [A-Za-z0-9]; bytes >= 248 are rejected so that every character is equally
 * likely (248 = 4 * 62). */
static json_t *random_string(void)
{
    static const char cs[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char out[33];
    size_t got = 0;
    while (got < 32) {
        unsigned char b[48];
        fill_random(b, sizeof b);
        for (size_t i = 0; i < sizeof b && got < 32; i++)
            if (b[i] < 248)
                out[got++] = cs[b[i] % 62];
    }
    out[32] = '\0';
    return json_string(out);
}

static const struct timespec *now(vctx_t *c)
{
    if (!c->have_now) {
        clock_gettime(CLOCK_REALTIME, &c->now);
        c->have_now = 1;
    }
    return &c->now;
}

static json_t *timestamp(vctx_t *c, const aigw_field_t *f)
{
    const struct timespec *t = now(c);
    if (f->flags & AIGW_F_MS || f->type == AIGW_FT_NUMBER)
        return json_real((double)t->tv_sec + (double)(t->tv_nsec / 1000000) / 1000.0);
    return json_integer((json_int_t)t->tv_sec);
}

static int is_timestamp_field(const aigw_field_t *f)
{
    return (f->flags & AIGW_F_AUTO) &&
           (strcmp(f->name, "created_at") == 0 || strcmp(f->name, "updated_at") == 0) &&
           (f->type == AIGW_FT_INTEGER || f->type == AIGW_FT_NUMBER);
}

/* "expected one of: a, b, c" */
static json_t *one_of_message(const char *const *list)
{
    size_t len = sizeof "expected one of: ";
    for (size_t i = 0; list[i]; i++)
        len += strlen(list[i]) + 2;
    char *s = malloc(len);
    if (!s)
        return json_string("expected one of: ");
    size_t o = (size_t)snprintf(s, len, "expected one of: ");
    for (size_t i = 0; list[i]; i++)
        o += (size_t)snprintf(s + o, len - o, "%s%s", i ? ", " : "", list[i]);
    json_t *m = json_string(s);
    free(s);
    return m;
}

/* Byte position (1-based) of the first invalid UTF-8 sequence, as kong.tools.string does; 0 if
 * the string is valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
        } else {
            return i + 1;
        }
        if (i + need >= n)
            return i + 1;
        unsigned char c1 = s[i + 1];
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
            (c == 0xf4 && c1 > 0x8f))
            return i + 1;
        for (size_t k = 1; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i + 1;
        i += need + 1;
    }
    return 0;
}

/* typedefs.utf8_name. NULL or the message. */
static json_t *name_chars(const char *s, size_t n)
{
    size_t bad = utf8_invalid_at((const unsigned char *)s, n);
    if (bad)
        return json_sprintf("invalid utf-8 character sequence detected at position %zu", bad);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == '_' || ch == '~' || (ch >= 128 && ch <= 244);
        if (!ok)
            return json_sprintf("invalid value '%s': the only accepted ascii characters are "
                                "alphanumerics or ., -, _, and ~",
                                s);
    }
    return NULL;
}

static json_t *run_check(const aigw_field_t *f, const json_t *v)
{
    if (!f->check)
        return NULL;
    char msg[1024];
    msg[0] = '\0';
    if (f->check(v, msg, sizeof msg) == 0)
        return NULL;
    return json_string(msg[0] ? msg : "failed validating");
}

/* Lua's tostring() of a limit: "%.14g". */
static json_t *gt_message(double min)
{
    return json_sprintf("value must be greater than %.14g", min);
}

/* ---- scalar validators, in Kong's validators_order ---------------------------------------------- */

static json_t *check_number(const aigw_field_t *f, double d)
{
    if (f->one_of) {
        int found = 0;
        for (size_t i = 0; f->one_of[i] && !found; i++)
            found = strtod(f->one_of[i], NULL) == d;
        if (!found)
            return one_of_message(f->one_of);
    }
    if ((f->flags & AIGW_F_HAS_GT) && !(d > f->min))
        return gt_message(f->min);
    if ((f->flags & AIGW_F_TIMESTAMP) && !(d > 0))
        return json_string("expected a valid timestamp");
    if ((f->flags & AIGW_F_HAS_BETWEEN) && (d < f->min || d > f->max))
        return json_sprintf("value should be between %lld and %lld", (long long)f->min,
                            (long long)f->max);
    return NULL;
}

static json_t *check_string(const aigw_field_t *f, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (f->one_of) {
        int found = 0;
        for (size_t i = 0; f->one_of[i] && !found; i++)
            found = strlen(f->one_of[i]) == n && memcmp(f->one_of[i], s, n) == 0;
        if (!found)
            return one_of_message(f->one_of);
    }
    if ((f->flags & AIGW_F_UUID) && (strlen(s) != n || !aigw_schema_is_uuid(s)))
        return json_string("expected a valid UUID");
    /* Kong: strings have len_min 1 unless the field says otherwise. */
    size_t len_min = (f->flags & AIGW_F_LEN_MIN) ? f->len_min : 1;
    if (n < len_min)
        return json_sprintf("length must be at least %zu", len_min);
    if (f->starts_with && strncmp(s, f->starts_with, strlen(f->starts_with)) != 0)
        return json_sprintf("should start with: %s", f->starts_with);
    if (f->flags & AIGW_F_NAME_CHARS) {
        json_t *m = name_chars(s, n);
        if (m)
            return m;
    }
    return NULL;
}

/* ---- aggregates ------------------------------------------------------------------------------ */

/* Kong's make_set: drop later duplicates of scalar elements (records never compare equal).
 * Strings, the common case (tags), are looked up in a hash; other scalars are compared. */
static int same_scalar(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal(a, b);
}

static void dedup_set(json_t *arr)
{
    json_t *seen = json_object();
    size_t i = 0;
    while (i < json_array_size(arr)) {
        json_t *a = json_array_get(arr, i);
        int dup = 0;
        if (json_is_string(a) && seen && strlen(json_string_value(a)) == json_string_length(a)) {
            if (json_object_get(seen, json_string_value(a)))
                dup = 1;
            else
                json_object_set_new(seen, json_string_value(a), json_true());
        } else if (json_is_string(a) || json_is_number(a) || json_is_boolean(a)) {
            for (size_t j = 0; j < i && !dup; j++)
                dup = same_scalar(a, json_array_get(arr, j));
        }
        if (dup)
            json_array_remove(arr, i);
        else
            i++;
    }
    json_decref(seen);
}

static json_t *check_array(vctx_t *c, const aigw_field_t *f, json_t *v)
{
    if (!json_is_array(v))
        return json_string(f->type == AIGW_FT_SET ? "expected a set" : "expected an array");
    if (f->type == AIGW_FT_SET)
        dedup_set(v);
    json_t *errs = NULL;
    if (f->elements) {
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            json_t *el = json_array_get(v, i);
            json_t *e, *repl = NULL;
            if (json_is_null(el))
                e = json_string(MSG_REQUIRED); /* elements are always required */
            else
                e = check_value(c, f->elements, el, &repl);
            if (repl)
                json_array_set_new(v, i, repl);
            if (!e)
                continue;
            if (!errs)
                errs = json_array();
            while (json_array_size(errs) < i)
                json_array_append_new(errs, json_null());
            json_array_append_new(errs, e);
        }
    }
    /* The error array ends at the last failing element, as cjson encodes Kong's sparse table. */
    if (errs)
        return errs;
    if ((f->flags & AIGW_F_LEN_MIN) && json_array_size(v) < f->len_min)
        return json_sprintf("length must be at least %zu", f->len_min);
    return run_check(f, v);
}

static json_t *check_map(vctx_t *c, const aigw_field_t *f, json_t *v)
{
    if (!json_is_object(v))
        return json_string("expected a map");
    const char *k;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, val) {
        /* keys are strings with Kong's default len_min 1 */
        if (k[0] == '\0')
            return json_string("length must be at least 1");
        if (json_is_null(val))
            return json_string(MSG_REQUIRED);
        if (!f->elements)
            continue;
        json_t *repl = NULL;
        json_t *e = check_value(c, f->elements, val, &repl);
        if (repl)
            json_object_set_new(v, k, repl);
        if (e)
            return e; /* Kong reports the first failing entry, unnested */
    }
    if ((f->flags & AIGW_F_LEN_MIN) && json_object_size(v) < f->len_min)
        return json_sprintf("length must be at least %zu", f->len_min);
    return run_check(f, v);
}

static json_t *check_record(vctx_t *c, const aigw_field_t *f, json_t *v)
{
    if (!json_is_object(v))
        return json_string("expected a record");
    json_t *errs = json_object();
    process_fields(c, f->fields, v, errs, NULL);
    if (json_object_size(errs) > 0)
        return errs;
    json_decref(errs);
    return run_check(f, v);
}

/* Fields of the referenced entity given without a usable id: Kong validates them partially
 * (unknown fields, types, explicit nulls) and reports those errors in place of the id's. */
static json_t *check_partial(vctx_t *c, const aigw_field_t *fields, const json_t *v)
{
    json_t *copy = json_deep_copy(v);
    json_t *errs = json_object();
    const char *k;
    json_t *val;
    json_object_foreach(copy, k, val) {
        const aigw_field_t *f = aigw_schema_field(fields, k);
        /* shorthands are not expanded here: Kong does not know them as fields */
        if (!f || f->alias_of || (f->flags & AIGW_F_INPUT_ONLY)) {
            json_object_set_new(errs, k, json_string(MSG_UNKNOWN));
            continue;
        }
        json_t *e = NULL, *repl = NULL;
        if (json_is_null(val))
            e = is_required(f) ? json_string(MSG_REQUIRED) : NULL;
        else
            e = check_value(c, f, val, &repl);
        json_decref(repl);
        if (e)
            json_object_set_new(errs, k, e);
    }
    json_decref(copy);
    if (json_object_size(errs) > 0)
        return errs;
    json_decref(errs);
    return NULL;
}

static json_t *check_foreign(vctx_t *c, const aigw_field_t *f, json_t *v)
{
    if (json_is_string(v) || json_is_array(v)) {
        /* Kong indexes the value for its id and finds none. */
        json_t *errs = json_object();
        json_object_set_new(errs, "id", json_string("missing primary key"));
        return errs;
    }
    if (!json_is_object(v))
        return json_string("expected a record");
    json_t *id = json_object_get(v, "id");
    json_t *ide = NULL;
    if (!id)
        ide = json_string("missing primary key");
    else if (json_is_null(id))
        ide = json_string(MSG_REQUIRED);
    else if (!json_is_string(id))
        ide = json_string("expected a string");
    else if (!aigw_schema_is_uuid(json_string_value(id)))
        ide = json_string("expected a valid UUID");
    if (!ide) {
        /* Only the primary key is kept: {"id": "..."} */
        json_incref(id);
        json_object_clear(v);
        json_object_set_new(v, "id", id);
        return NULL;
    }
    const aigw_entity_t *ref = f->reference ? aigw_schema_entity(f->reference) : NULL;
    if (ref) {
        json_t *pe = check_partial(c, ref->fields, v);
        if (pe) {
            json_decref(ide);
            return pe;
        }
    }
    json_t *errs = json_object();
    json_object_set_new(errs, "id", ide);
    return errs;
}

/* Validates a non-null value against f, normalising it in place. When the value itself must be
 * replaced (5.0 for an integer), *repl gets a new reference for the caller to store. Returns a
 * new error (string, object or array) or NULL. */
static json_t *check_value(vctx_t *c, const aigw_field_t *f, json_t *v, json_t **repl)
{
    *repl = NULL;
    json_t *e = NULL;
    switch (f->type) {
    case AIGW_FT_STRING:
        if (!json_is_string(v))
            return json_string("expected a string");
        e = check_string(f, v);
        break;
    case AIGW_FT_INTEGER: {
        double d;
        if (json_is_integer(v)) {
            d = (double)json_integer_value(v);
        } else if (json_is_real(v) && isfinite(json_real_value(v)) &&
                   json_real_value(v) == floor(json_real_value(v))) {
            d = json_real_value(v);
            if (d >= -9.2e18 && d <= 9.2e18)
                *repl = json_integer((json_int_t)d);
        } else {
            return json_string("expected an integer");
        }
        e = check_number(f, d);
        break;
    }
    case AIGW_FT_NUMBER:
        if (!json_is_number(v))
            return json_string("expected a number");
        e = check_number(f, json_number_value(v));
        break;
    case AIGW_FT_BOOLEAN:
        if (!json_is_boolean(v))
            return json_string("expected a boolean");
        break;
    case AIGW_FT_ARRAY:
    case AIGW_FT_SET:
        return check_array(c, f, v);
    case AIGW_FT_MAP:
        return check_map(c, f, v);
    case AIGW_FT_RECORD:
        return check_record(c, f, v);
    case AIGW_FT_FOREIGN:
        e = check_foreign(c, f, v);
        break;
    case AIGW_FT_ANY:
        break;
    }
    if (!e)
        e = run_check(f, *repl ? *repl : v);
    return e;
}

/* ---- plugins --------------------------------------------------------------------------------- */

static const aigw_field_t *plugin_field(const aigw_field_t *f, const aigw_plugin_schema_t *p,
                                        pfield_t *tmp)
{
    tmp->must_be_null = 0;
    if (!p)
        return f;
    if (strcmp(f->name, "config") == 0) {
        tmp->f = *f;
        tmp->f.type = AIGW_FT_RECORD;
        tmp->f.fields = p->config;
        tmp->f.flags &= ~(unsigned)AIGW_F_NULLABLE_REQ;
        tmp->f.dflt = NULL;
        return &tmp->f;
    }
    if (strcmp(f->name, "protocols") == 0) {
        tmp->f = *f;
        /* typedefs.protocols_http restricts the elements; typedefs.protocols keeps the
         * entity's list. The default is the plugin's own, else the HTTP protocols. */
        if (p->flags & AIGW_P_PROTOCOLS_HTTP) {
            if (f->elements)
                tmp->el = *f->elements;
            else
                tmp->el = (aigw_field_t){.type = AIGW_FT_STRING};
            tmp->el.one_of = http_protocols;
            tmp->f.elements = &tmp->el;
        }
        const char *const *list = p->protocols ? p->protocols : http_protocols;
        size_t o = (size_t)snprintf(tmp->dflt, sizeof tmp->dflt, "[");
        for (size_t i = 0; list[i] && o < sizeof tmp->dflt; i++)
            o += (size_t)snprintf(tmp->dflt + o, sizeof tmp->dflt - o, "%s\"%s\"", i ? "," : "",
                                  list[i]);
        if (o < sizeof tmp->dflt)
            snprintf(tmp->dflt + o, sizeof tmp->dflt - o, "]");
        tmp->f.dflt = tmp->dflt;
        return &tmp->f;
    }
    if ((strcmp(f->name, "consumer") == 0 && (p->flags & AIGW_P_NO_CONSUMER)) ||
        (strcmp(f->name, "route") == 0 && (p->flags & AIGW_P_NO_ROUTE)) ||
        (strcmp(f->name, "service") == 0 && (p->flags & AIGW_P_NO_SERVICE)))
        tmp->must_be_null = 1;
    return f;
}

/* ---- records and entities -------------------------------------------------------------------- */

/* Renders a value the way Kong's tostring() shows it in the shorthand mismatch message. */
static char *show_value(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Moves an alias's value to its (possibly dotted) target within obj, once it passed the alias
 * field's own checks (Kong validates a shorthand's value before expanding it). */
static void apply_alias(vctx_t *c, json_t *obj, const aigw_field_t *f, json_t *errs)
{
    json_t *v = json_object_get(obj, f->name);
    if (!json_is_null(v)) {
        json_t *repl = NULL;
        json_t *e = check_value(c, f, v, &repl);
        if (repl) {
            json_object_set_new(obj, f->name, repl);
            v = repl;
        }
        if (e) {
            json_object_set_new(errs, f->name, e);
            json_object_del(obj, f->name);
            return;
        }
    }
    json_t *parent = obj;
    const char *t = f->alias_of;
    const char *dot;
    while ((dot = strchr(t, '.')) != NULL) {
        char comp[128];
        size_t n = (size_t)(dot - t);
        if (n >= sizeof comp)
            return;
        memcpy(comp, t, n);
        comp[n] = '\0';
        json_t *child = json_object_get(parent, comp);
        if (!child || json_is_null(child)) {
            child = json_object();
            json_object_set_new(parent, comp, child);
        } else if (!json_is_object(child)) {
            /* the parent's own error ("expected a record") says what is wrong */
            json_object_del(obj, f->name);
            return;
        }
        parent = child;
        t = dot + 1;
    }
    json_t *cur = json_object_get(parent, t);
    if (cur && !json_is_null(cur)) {
        if (!json_is_null(v) && !json_equal(cur, v)) {
            char *a = show_value(v), *b = show_value(cur);
            json_object_set_new(errs, f->name,
                                json_sprintf("both deprecated and new field are used but their "
                                             "values mismatch: %s = %s vs %s = %s",
                                             f->name, a ? a : "", f->alias_of, b ? b : ""));
            free(a);
            free(b);
        }
        json_object_del(obj, f->name);
        return;
    }
    json_object_set(parent, t, v);
    json_object_del(obj, f->name);
}

/* An absent field: autos (INSERT), then its default, then a record built from its subfields'
 * defaults, else null. Returns the value now in obj (borrowed). */
static json_t *fill_missing(vctx_t *c, const aigw_field_t *f, json_t *obj)
{
    json_t *v = NULL;
    if (f->flags & AIGW_F_AUTO) {
        if (c->mode == AIGW_V_INSERT && (f->flags & AIGW_F_UUID) && f->type == AIGW_FT_STRING) {
            char id[37];
            aigw_schema_uuid(id);
            v = json_string(id);
        } else if (c->mode == AIGW_V_INSERT && (f->flags & AIGW_F_RANDOM) &&
                   f->type == AIGW_FT_STRING) {
            v = random_string();
        } else if (is_timestamp_field(f) &&
                   (c->mode == AIGW_V_INSERT ||
                    (c->mode == AIGW_V_UPDATE && strcmp(f->name, "updated_at") == 0))) {
            v = timestamp(c, f);
        }
    }
    if (!v && f->dflt)
        v = parse_default(f->dflt);
    if (!v && f->type == AIGW_FT_RECORD && is_required(f))
        v = json_object();
    if (!v)
        v = json_null();
    json_object_set_new(obj, f->name, v);
    return v;
}

static void process_fields(vctx_t *c, const aigw_field_t *fields, json_t *obj, json_t *errs,
                           const aigw_plugin_schema_t *p)
{
    /* 1. aliases move to their targets */
    for (const aigw_field_t *f = fields; f && f->name; f++)
        if (f->alias_of && json_object_get(obj, f->name))
            apply_alias(c, obj, f, errs);

    /* 2. unknown keys; input-only fields left over by the shorthand are checked, then dropped */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v) {
        const aigw_field_t *f = aigw_schema_field(fields, k);
        if (!f) {
            json_object_set_new(errs, k, json_string(MSG_UNKNOWN));
        } else if (f->flags & AIGW_F_INPUT_ONLY) {
            if (!json_is_null(v)) {
                json_t *repl = NULL;
                json_t *e = check_value(c, f, v, &repl);
                json_decref(repl);
                if (e)
                    json_object_set_new(errs, k, e);
            }
            json_object_del(obj, k);
        }
    }

    /* 3. every field of the table */
    for (const aigw_field_t *field = fields; field && field->name; field++) {
        if (field->alias_of || (field->flags & AIGW_F_INPUT_ONLY))
            continue;
        pfield_t pf;
        const aigw_field_t *f = plugin_field(field, p, &pf);
        v = json_object_get(obj, f->name);
        if (!v) {
            v = fill_missing(c, f, obj);
        } else if (is_timestamp_field(f) && strcmp(f->name, "updated_at") == 0 &&
                   c->mode != AIGW_V_CHECK) {
            v = timestamp(c, f);
            json_object_set_new(obj, f->name, v);
        } else if (json_is_null(v) && c->mode == AIGW_V_INSERT && (f->flags & AIGW_F_AUTO) &&
                   ((f->flags & AIGW_F_PK) || is_timestamp_field(f))) {
            /* a null id or created_at on insert is generated rather than stored as null */
            json_object_del(obj, f->name);
            v = fill_missing(c, f, obj);
        }
        if (json_is_null(v)) {
            if (is_required(f))
                json_object_set_new(errs, f->name, json_string(MSG_REQUIRED));
            continue;
        }
        if (pf.must_be_null) {
            json_object_set_new(errs, f->name, json_string("value must be null"));
            continue;
        }
        json_t *repl = NULL;
        json_t *e = check_value(c, f, v, &repl);
        if (repl)
            json_object_set_new(obj, f->name, repl);
        if (e)
            json_object_set_new(errs, f->name, e);
    }
}

int aigw_schema_validate(const aigw_entity_t *e, json_t *obj, aigw_vmode_t mode, json_t **errors)
{
    *errors = NULL;
    vctx_t c = {.mode = mode};
    json_t *errs = json_object();
    if (!errs)
        return -1;
    if (!json_is_object(obj)) {
        json_t *ent = json_array();
        json_array_append_new(ent, json_string("expected an input table"));
        json_object_set_new(errs, "@entity", ent);
        *errors = errs;
        return -1;
    }

    const aigw_plugin_schema_t *p = NULL;
    if (e->flags & AIGW_E_PLUGIN) {
        /* The plugin named by `name` selects the config schema; nothing else is checked
         * without it (Kong's subschema_key). */
        json_t *name = json_object_get(obj, "name");
        if (!name || json_is_null(name)) {
            json_object_set_new(errs, "name", json_string(MSG_REQUIRED));
        } else if (!json_is_string(name)) {
            json_object_set_new(errs, "name", json_string("expected a string"));
        } else {
            p = aigw_schema_plugin(json_string_value(name));
            if (!p)
                json_object_set_new(errs, "name",
                                    json_sprintf("plugin '%s' not enabled; add it to the "
                                                 "'plugins' configuration property",
                                                 json_string_value(name)));
        }
        if (!p)
            goto out;
    }

    if (e->shorthand) {
        int rc = e->shorthand(obj, errs);
        if (rc != 0 || json_object_size(errs) > 0) {
            if (json_object_size(errs) == 0) {
                json_t *ent = json_array();
                json_array_append_new(ent, json_string("entity check failed"));
                json_object_set_new(errs, "@entity", ent);
            }
            goto out;
        }
    }

    process_fields(&c, e->fields, obj, errs, p);

    /* Entity checks run once the fields they read passed: the entity's own when every field
     * did, the plugin's (config-level) when its config did. Both write Kong's shapes into the
     * top-level containers themselves. */
    json_t *ent = json_object_get(errs, "@entity");
    int own_ent = 0;
    if (!json_is_array(ent)) {
        ent = json_array();
        own_ent = 1;
    }
    if (e->check && json_object_size(errs) == 0)
        e->check(e, obj, ent, errs);
    if (p && p->check && !json_object_get(errs, "config")) {
        json_t *cfg = json_object_get(obj, "config");
        if (json_is_object(cfg))
            p->check(e, cfg, ent, errs);
    }
    if (own_ent) {
        if (json_array_size(ent) > 0)
            json_object_set_new(errs, "@entity", ent);
        else
            json_decref(ent);
    }

out:
    if (json_object_size(errs) == 0) {
        json_decref(errs);
        return 0;
    }
    *errors = errs;
    return -1;
}
