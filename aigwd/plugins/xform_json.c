/* aigwd/plugins/xform_json.c: see xform_json.h. Lua semantics carried over where they show:
 * "truthy" tests (a JSON false counts as absent for replace/add, a JSON null as present),
 * append turning a single value into an array, set_query sorting its arguments. Kong's
 * order of keys in re-encoded bodies is its Lua hash order (unspecified); aigw keeps the
 * body's order and puts new keys last. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugins/xform_json.h"

/* ---- lists ------------------------------------------------------------------------------- */

int aigw_xform_split(const char *s, aigw_str_t *name, aigw_str_t *value)
{
    size_t n = strcspn(s, ":");
    if (n == 0)
        return -1;
    const char *v = s + n;
    while (*v == ':')
        v++;
    *name = (aigw_str_t){ s, n };
    *value = (aigw_str_t){ v, strlen(v) };
    return 0;
}

static void list_free(aigw_xform_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].value);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void aigw_xform_ops_free(aigw_xform_ops_t *o)
{
    list_free(&o->remove);
    list_free(&o->rename);
    list_free(&o->replace);
    list_free(&o->add);
    list_free(&o->append);
}

static int list_load(aigw_xform_list_t *l, const json_t *rec, const char *key, int with_types)
{
    const json_t *arr = json_object_get(rec, key);
    const json_t *types = with_types ? json_object_get(rec, "json_types") : NULL;
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    l->v = calloc(n ? n : 1, sizeof(*l->v));
    l->n = 0;
    if (!l->v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        aigw_str_t nm, val;
        if (!s || aigw_xform_split(s, &nm, &val) != 0)
            continue;   /* the schema refuses these; Lua would skip a nil name too */
        aigw_xform_pair_t *p = &l->v[l->n];
        p->name = strndup(nm.p, nm.n);
        p->value = val.n ? strndup(val.p, val.n) : NULL;
        if (!p->name || (val.n && !p->value)) {
            free(p->name);
            free(p->value);
            return -1;
        }
        const char *t = types ? json_string_value(json_array_get(types, i)) : NULL;
        p->jt = !t ? AIGW_XFORM_JT_STRING
                   : strcmp(t, "number") == 0  ? AIGW_XFORM_JT_NUMBER
                   : strcmp(t, "boolean") == 0 ? AIGW_XFORM_JT_BOOLEAN
                                               : AIGW_XFORM_JT_STRING;
        l->n++;
    }
    return 0;
}

int aigw_xform_ops_load(aigw_xform_ops_t *o, const json_t *config, const char *key)
{
    memset(o, 0, sizeof(*o));
    int jt = strcmp(key, "json") == 0;
    if (list_load(&o->remove, json_object_get(config, "remove"), key, 0) != 0 ||
        list_load(&o->rename, json_object_get(config, "rename"), key, 0) != 0 ||
        list_load(&o->replace, json_object_get(config, "replace"), key, jt) != 0 ||
        list_load(&o->add, json_object_get(config, "add"), key, jt) != 0 ||
        list_load(&o->append, json_object_get(config, "append"), key, jt) != 0) {
        aigw_xform_ops_free(o);
        return -1;
    }
    return 0;
}

static int token_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)))
            return 0;
    }
    return 1;
}

static int value_ok(const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

int aigw_xform_ops_headers_ok(const aigw_xform_ops_t *o, int rename_values_are_names,
                              char *err, size_t errlen)
{
    const aigw_xform_list_t *ls[] = { &o->remove, &o->rename, &o->replace, &o->add, &o->append };
    for (size_t l = 0; l < sizeof(ls) / sizeof(ls[0]); l++) {
        for (size_t i = 0; i < ls[l]->n; i++) {
            const aigw_xform_pair_t *p = &ls[l]->v[i];
            if (!token_ok(p->name)) {
                snprintf(err, errlen, "'%.100s' is not a valid header name", p->name);
                return -1;
            }
            int as_name = ls[l] == &o->rename && rename_values_are_names;
            if (p->value && (as_name ? !token_ok(p->value) : !value_ok(p->value))) {
                snprintf(err, errlen, "the value for header '%.100s' has a character a "
                                      "header cannot carry", p->name);
                return -1;
            }
        }
    }
    return 0;
}

int aigw_xform_ops_empty(const aigw_xform_ops_t *o)
{
    return !o->remove.n && !o->rename.n && !o->replace.n && !o->add.n && !o->append.n;
}

/* ---- content types ----------------------------------------------------------------------- */

static int ieq_n(const char *a, size_t an, const char *b)
{
    return aigw_str_ieq((aigw_str_t){ a, an }, aigw_str_c(b));
}

int aigw_xform_is_json_type(aigw_str_t ct)
{
    const char *p = ct.p, *end = ct.p ? ct.p + ct.n : NULL;
    while (p && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        aigw_str_t item = aigw_str_trim((aigw_str_t){ p, (size_t)(e - p) });
        const char *semi = item.n ? memchr(item.p, ';', item.n) : NULL;
        aigw_str_t mt = aigw_str_trim((aigw_str_t){ item.p, semi ? (size_t)(semi - item.p)
                                                                 : item.n });
        const char *slash = mt.n ? memchr(mt.p, '/', mt.n) : NULL;
        if (slash) {
            size_t tl = (size_t)(slash - mt.p), sl = mt.n - tl - 1;
            const char *sub = slash + 1;
            if (tl && sl && ieq_n(mt.p, tl, "application")) {
                if (ieq_n(sub, sl, "json"))
                    return 1;
                if (sl > 5 && ieq_n(sub + sl - 5, 5, "+json"))
                    return 1;
            }
        }
        p = comma ? comma + 1 : end;
    }
    return 0;
}

/* ---- JSON helpers -------------------------------------------------------------------------- */

static char *dump(const json_t *v, size_t *out_len)
{
    /* cjson: compact, '/' escaped */
    char *s = json_dumps(v, JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY);
    if (s)
        *out_len = strlen(s);
    return s;
}

/* Lua truthiness of a table field: absent and false are "not". */
static int truthy(const json_t *v)
{
    return v && !json_is_false(v);
}

/* append_value(current, value): a string becomes [current, value]; an array gets value
 * pushed; an object gets it at Lua's next integer key ("1"), or becomes [value] when empty;
 * anything else (absent, number, boolean, null) is replaced by [value]. Steals value. */
static int append_json(json_t *obj, const char *name, json_t *value)
{
    json_t *cur = json_object_get(obj, name);
    if (json_is_array(cur))
        return json_array_append_new(cur, value);
    json_t *arr = json_array();
    if (!arr) {
        json_decref(value);
        return -1;
    }
    if (json_is_object(cur) && json_object_size(cur) > 0) {
        json_decref(arr);
        return json_object_set_new(cur, "1", value);
    }
    if (json_is_string(cur))
        json_array_append(arr, cur);
    json_array_append_new(arr, value);
    return json_object_set_new(obj, name, arr);
}

/* ---- response-transformer json ------------------------------------------------------------ */

/* json_value(value): the text cjson.encode gives for the string, without its quotes, with
 * \" and \/ turned back (Kong's "prevent double encoding"); other escapes stay, so a
 * backslash in the configured value reaches the body doubled, as in Kong. */
static char *kong_json_value(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n * 6 + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\\': o[k++] = '\\'; o[k++] = '\\'; break;
        case '\b': o[k++] = '\\'; o[k++] = 'b'; break;
        case '\f': o[k++] = '\\'; o[k++] = 'f'; break;
        case '\n': o[k++] = '\\'; o[k++] = 'n'; break;
        case '\r': o[k++] = '\\'; o[k++] = 'r'; break;
        case '\t': o[k++] = '\\'; o[k++] = 't'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                k += (size_t)snprintf(o + k, 7, "\\u%04x", c);
            } else {
                o[k++] = (char)c;
            }
        }
    }
    o[k] = '\0';
    return o;
}

/* Lua's tonumber(s) for decimal and hexadecimal numbers; NULL when it gives nil. */
static json_t *lua_tonumber(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    const char *q = s;
    if (*q == '+' || *q == '-')
        q++;
    /* strtod also takes inf, nan and hexadecimal floats with 'p'; Lua takes no inf/nan */
    if (!(isdigit((unsigned char)*q) || (*q == '.' && isdigit((unsigned char)q[1]))))
        return NULL;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s)
        return NULL;
    while (isspace((unsigned char)*end))
        end++;
    if (*end || !isfinite(d))
        return NULL;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

static json_t *typed_value(const aigw_xform_pair_t *p)
{
    char *v = kong_json_value(p->value);
    if (!v)
        return NULL;
    json_t *j;
    if (p->jt == AIGW_XFORM_JT_NUMBER)
        j = lua_tonumber(v);
    else if (p->jt == AIGW_XFORM_JT_BOOLEAN)
        j = json_boolean(strcmp(v, "true") == 0);
    else
        j = json_string(v);   /* NULL for invalid UTF-8: Kong's cjson would keep it */
    free(v);
    return j;
}

char *aigw_xform_resp_json(const aigw_xform_ops_t *o, const char *body, size_t len,
                           size_t *out_len)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    for (size_t i = 0; i < o->remove.n; i++)
        json_object_del(root, o->remove.v[i].name);
    for (size_t i = 0; i < o->rename.n; i++) {
        const aigw_xform_pair_t *p = &o->rename.v[i];
        json_t *v = json_object_get(root, p->name);
        if (!v || !p->value)
            continue;
        /* Kong sets the new key, then clears the old one: the same name twice removes it */
        json_incref(v);
        json_object_set_new(root, p->value, v);
        json_object_del(root, p->name);
    }
    for (size_t i = 0; i < o->replace.n; i++) {
        const aigw_xform_pair_t *p = &o->replace.v[i];
        if (!p->value || !truthy(json_object_get(root, p->name)))
            continue;
        json_t *v = typed_value(p);
        if (v)
            json_object_set_new(root, p->name, v);
    }
    for (size_t i = 0; i < o->add.n; i++) {
        const aigw_xform_pair_t *p = &o->add.v[i];
        if (!p->value || truthy(json_object_get(root, p->name)))
            continue;
        json_t *v = typed_value(p);
        if (v)
            json_object_set_new(root, p->name, v);
    }
    for (size_t i = 0; i < o->append.n; i++) {
        const aigw_xform_pair_t *p = &o->append.v[i];
        if (!p->value)
            continue;
        json_t *v = typed_value(p);
        if (v)
            append_json(root, p->name, v);
    }
    char *s = dump(root, out_len);
    json_decref(root);
    return s;
}

/* ---- request-transformer json ------------------------------------------------------------- */

int aigw_xform_req_json(const aigw_xform_ops_t *o, const char *body, size_t len, char **out,
                        size_t *out_len)
{
    int changed = 0;
    json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
    if (!root) {
        if (len > 0)
            return 0;   /* not JSON: Kong leaves the body alone */
        root = json_object();
        if (!root)
            return -1;
    }
    if (!json_is_object(root)) {
        /* Kong edits the decoded Lua value; an array's new keys are lost when it is encoded
         * again and a scalar raises an error. aigw leaves such bodies as they are. */
        json_decref(root);
        return 0;
    }
    if (len > 0) {
        for (size_t i = 0; i < o->remove.n; i++) {
            json_object_del(root, o->remove.v[i].name);
            changed = 1;
        }
        for (size_t i = 0; i < o->rename.n; i++) {
            const aigw_xform_pair_t *p = &o->rename.v[i];
            json_t *v = json_object_get(root, p->name);
            if (!p->value || strcmp(p->name, p->value) == 0 || !truthy(v))
                continue;
            json_incref(v);
            json_object_set_new(root, p->value, v);
            json_object_del(root, p->name);
            changed = 1;
        }
        for (size_t i = 0; i < o->replace.n; i++) {
            const aigw_xform_pair_t *p = &o->replace.v[i];
            if (!p->value || !truthy(json_object_get(root, p->name)))
                continue;
            json_object_set_new(root, p->name, json_string(p->value));
            changed = 1;
        }
    }
    for (size_t i = 0; i < o->add.n; i++) {
        const aigw_xform_pair_t *p = &o->add.v[i];
        if (!p->value || truthy(json_object_get(root, p->name)))
            continue;
        json_object_set_new(root, p->name, json_string(p->value));
        changed = 1;
    }
    for (size_t i = 0; i < o->append.n; i++) {
        const aigw_xform_pair_t *p = &o->append.v[i];
        if (!p->value)
            continue;
        json_t *v = json_string(p->value);
        if (v)
            append_json(root, p->name, v);
        changed = 1;
    }
    if (!changed) {
        json_decref(root);
        return 0;
    }
    *out = dump(root, out_len);
    json_decref(root);
    return *out ? 1 : -1;
}

/* ---- arguments (query strings and form bodies) -------------------------------------------- */

typedef struct aval {
    char *p;          /* NULL: a key without '=' (Lua true) */
    size_t n;
} aval_t;

typedef struct arg {
    char *key;
    size_t kn;
    aval_t *v;
    size_t n, cap;
    int table;        /* the Lua value is a table (several values or appended) */
} arg_t;

typedef struct args {
    arg_t *a;
    size_t n, cap;
    int oom;
} args_t;

static void args_free(args_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->a[i].n; j++)
            free(s->a[i].v[j].p);
        free(s->a[i].v);
        free(s->a[i].key);
    }
    free(s->a);
    memset(s, 0, sizeof(*s));
}

static arg_t *args_find(args_t *s, const char *k, size_t kn)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->a[i].kn == kn && memcmp(s->a[i].key, k, kn) == 0)
            return &s->a[i];
    return NULL;
}

static void args_del(args_t *s, arg_t *a)
{
    size_t i = (size_t)(a - s->a);
    for (size_t j = 0; j < a->n; j++)
        free(a->v[j].p);
    free(a->v);
    free(a->key);
    memmove(&s->a[i], &s->a[i + 1], (s->n - i - 1) * sizeof(*a));
    s->n--;
}

static arg_t *args_add(args_t *s, const char *k, size_t kn)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        arg_t *na = realloc(s->a, nc * sizeof(*na));
        if (!na) {
            s->oom = 1;
            return NULL;
        }
        s->a = na;
        s->cap = nc;
    }
    arg_t *a = &s->a[s->n];
    memset(a, 0, sizeof(*a));
    a->key = strndup(k, kn);
    if (!a->key) {
        s->oom = 1;
        return NULL;
    }
    a->kn = kn;
    s->n++;
    return a;
}

/* Pushes a value (p NULL: true; copied). */
static int arg_push(args_t *s, arg_t *a, const char *p, size_t n)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 2;
        aval_t *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv) {
            s->oom = 1;
            return -1;
        }
        a->v = nv;
        a->cap = nc;
    }
    char *c = NULL;
    if (p) {
        c = malloc(n + 1);
        if (!c) {
            s->oom = 1;
            return -1;
        }
        memcpy(c, p, n);
        c[n] = '\0';
    }
    a->v[a->n++] = (aval_t){ c, n };
    if (a->n > 1)
        a->table = 1;
    return 0;
}

static void arg_clear_values(arg_t *a)
{
    for (size_t j = 0; j < a->n; j++)
        free(a->v[j].p);
    a->n = 0;
    a->table = 0;
}

/* Percent-decodes in place ('+' is a space); returns the new length. */
static size_t unescape(char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n &&
            (h = aigw_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (l = aigw_hex_digit((unsigned char)s[i + 2])) >= 0) {
            s[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            s[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    return k;
}

/* ngx.decode_args: key=value pairs split on '&', both percent-decoded, a key without '='
 * is true, a repeated key collects its values in order. */
static void args_parse(args_t *s, aigw_str_t in)
{
    const char *p = in.p, *end = in.p ? in.p + in.n : NULL;
    while (p && p < end && !s->oom) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t kl = (size_t)((eq ? eq : e) - p);
        char *k = strndup(p, kl);
        char *v = eq ? strndup(eq + 1, (size_t)(e - eq - 1)) : NULL;
        if (!k || (eq && !v)) {
            free(k);
            free(v);
            s->oom = 1;
            return;
        }
        kl = unescape(k, kl);
        size_t vl = v ? unescape(v, (size_t)(e - eq - 1)) : 0;
        if (kl) {
            arg_t *a = args_find(s, k, kl);
            if (!a)
                a = args_add(s, k, kl);
            if (a)
                arg_push(s, a, v, vl);
        }
        free(k);
        free(v);
        p = amp ? amp + 1 : end;
    }
}

/* append_value(current, value) for argument tables. */
static void arg_append(args_t *s, const char *name, const char *val)
{
    arg_t *a = args_find(s, name, strlen(name));
    if (!a) {
        a = args_add(s, name, strlen(name));
        if (!a)
            return;
    } else if (!a->table && !(a->n == 1 && a->v[0].p)) {
        arg_clear_values(a);   /* a true flag is replaced by { value } */
    }
    if (arg_push(s, a, val, strlen(val)) == 0)
        a->table = 1;
}

/* Sets name to one string value (replacing what it had); appended when absent. */
static void arg_set(args_t *s, const char *name, const char *val)
{
    arg_t *a = args_find(s, name, strlen(name));
    if (!a)
        a = args_add(s, name, strlen(name));
    if (!a)
        return;
    arg_clear_values(a);
    arg_push(s, a, val, strlen(val));
}

static int rename_arg(args_t *s, const char *old, const char *nw)
{
    if (strcmp(old, nw) == 0)
        return 0;
    arg_t *a = args_find(s, old, strlen(old));
    if (!a)
        return 0;
    arg_t *b = args_find(s, nw, strlen(nw));
    if (b) {
        /* the new name takes the old one's values, in the new name's place */
        arg_clear_values(b);
        free(b->v);
        b->v = a->v;
        b->n = a->n;
        b->cap = a->cap;
        b->table = a->table;
        a->v = NULL;
        a->n = a->cap = 0;
        args_del(s, a);
        return 1;
    }
    char *k = strdup(nw);
    if (!k) {
        s->oom = 1;
        return 0;
    }
    free(a->key);
    a->key = k;
    a->kn = strlen(nw);
    /* a renamed key is a new table key: it goes last */
    arg_t tmp = *a;
    size_t i = (size_t)(a - s->a);
    memmove(&s->a[i], &s->a[i + 1], (s->n - i - 1) * sizeof(tmp));
    s->a[s->n - 1] = tmp;
    return 1;
}

/* Kong's remove/rename/replace/add/append on an argument table. gated: the first three
 * only when the body is not empty (content_length > 0). Returns 1 if any op applied. */
static int args_apply(args_t *s, const aigw_xform_ops_t *o, int gated_ok)
{
    int changed = 0;
    if (gated_ok) {
        for (size_t i = 0; i < o->remove.n; i++) {
            arg_t *a = args_find(s, o->remove.v[i].name, strlen(o->remove.v[i].name));
            if (a)
                args_del(s, a);
            changed = 1;
        }
        for (size_t i = 0; i < o->rename.n; i++)
            if (o->rename.v[i].value && rename_arg(s, o->rename.v[i].name, o->rename.v[i].value))
                changed = 1;
        for (size_t i = 0; i < o->replace.n; i++) {
            const aigw_xform_pair_t *p = &o->replace.v[i];
            if (p->value && args_find(s, p->name, strlen(p->name))) {
                arg_set(s, p->name, p->value);
                changed = 1;
            }
        }
    }
    for (size_t i = 0; i < o->add.n; i++) {
        const aigw_xform_pair_t *p = &o->add.v[i];
        if (p->value && !args_find(s, p->name, strlen(p->name))) {
            arg_set(s, p->name, p->value);
            changed = 1;
        }
    }
    for (size_t i = 0; i < o->append.n; i++) {
        const aigw_xform_pair_t *p = &o->append.v[i];
        if (p->value) {
            arg_append(s, p->name, p->value);
            changed = 1;
        }
    }
    return changed;
}

/* ngx.escape_uri(s, component): all but ALPHA DIGIT - . _ ~ ! * ' ( ) as %XX. */
static size_t esc_component(char *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || (c && strchr("-._~!*'()", c))) {
            o[k++] = (char)c;
        } else {
            o[k++] = '%';
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        }
    }
    return k;
}

/* ngx.encode_args({ [key] = value }) for one argument, into a fresh buffer. */
static char *encode_arg(const arg_t *a, size_t *len)
{
    size_t cap = 1;
    for (size_t j = 0; j < a->n; j++)
        cap += a->kn * 3 + (a->v[j].p ? a->v[j].n * 3 + 1 : 0) + 1;
    char *o = malloc(cap);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t j = 0; j < a->n; j++) {
        if (j)
            o[k++] = '&';
        k += esc_component(o + k, a->key, a->kn);
        if (a->v[j].p) {
            o[k++] = '=';
            k += esc_component(o + k, a->v[j].p, a->v[j].n);
        }
    }
    o[k] = '\0';
    *len = k;
    return o;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Encodes s: sorted like make_ordered_args when sorted, else in order. */
static char *args_encode(const args_t *s, int sorted, size_t *out_len)
{
    char **parts = calloc(s->n ? s->n : 1, sizeof(*parts));
    size_t *lens = calloc(s->n ? s->n : 1, sizeof(*lens));
    char *out = NULL;
    size_t np = 0, total = 1;
    if (!parts || !lens)
        goto done;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->a[i].n)
            continue;
        parts[np] = encode_arg(&s->a[i], &lens[np]);
        if (!parts[np])
            goto done;
        total += lens[np] + 1;
        np++;
    }
    if (sorted && np > 1) {
        qsort(parts, np, sizeof(*parts), cmp_str);
        for (size_t i = 0; i < np; i++)
            lens[i] = strlen(parts[i]);
    }
    out = malloc(total);
    if (!out)
        goto done;
    size_t k = 0;
    for (size_t i = 0; i < np; i++) {
        if (i)
            out[k++] = '&';
        memcpy(out + k, parts[i], lens[i]);
        k += lens[i];
    }
    out[k] = '\0';
    *out_len = k;
done:
    for (size_t i = 0; parts && i < np; i++)
        free(parts[i]);
    free(parts);
    free(lens);
    return out;
}

int aigw_xform_req_form(const aigw_xform_ops_t *o, const char *body, size_t len, char **out,
                        size_t *out_len)
{
    args_t s = { 0 };
    args_parse(&s, (aigw_str_t){ body, len });
    int changed = s.oom ? 0 : args_apply(&s, o, len > 0);
    int rc = 0;
    if (s.oom) {
        rc = -1;
    } else if (changed) {
        *out = args_encode(&s, 0, out_len);
        rc = *out ? 1 : -1;
    }
    args_free(&s);
    return rc;
}

char *aigw_xform_req_query(const aigw_xform_ops_t *o, aigw_str_t query, aigw_str_t form,
                           size_t *out_len)
{
    args_t s = { 0 };
    args_parse(&s, query);
    if (form.p) {
        args_t f = { 0 };
        args_parse(&f, form);
        for (size_t i = 0; i < f.n && !f.oom && !s.oom; i++) {
            arg_t *fa = &f.a[i];
            arg_t *qa = args_find(&s, fa->key, fa->kn);
            if (!qa)
                qa = args_add(&s, fa->key, fa->kn);
            else
                qa->table = 1;
            for (size_t j = 0; qa && j < fa->n; j++)
                arg_push(&s, qa, fa->v[j].p, fa->v[j].n);
        }
        if (f.oom)
            s.oom = 1;
        args_free(&f);
    }
    if (o && !s.oom)
        args_apply(&s, o, 1);
    char *r = s.oom ? NULL : args_encode(&s, 1, out_len);
    args_free(&s);
    return r;
}

/* ---- multipart ----------------------------------------------------------------------------- */

typedef struct part {
    char *name;
    char *headers;     /* header lines, each followed by CRLF */
    size_t hn;
    char *value;
    size_t vn;
} part_t;

typedef struct parts {
    part_t *p;
    size_t n, cap;
    int oom;
} parts_t;

static void parts_free(parts_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->p[i].name);
        free(s->p[i].headers);
        free(s->p[i].value);
    }
    free(s->p);
    memset(s, 0, sizeof(*s));
}

static const char *memmem_s(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0 || hn < nn)
        return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && memcmp(h + i, n, nn) == 0)
            return h + i;
    return NULL;
}

/* The boundary of a multipart Content-Type (lua-multipart: ";%s*boundary=(%S+)", quotes
 * stripped), copied into buf; 0 or -1 when none. */
static int boundary_of(aigw_str_t ct, char *buf, size_t cap)
{
    for (size_t i = 0; i < ct.n; i++) {
        if (ct.p[i] != ';')
            continue;
        size_t j = i + 1;
        while (j < ct.n && isspace((unsigned char)ct.p[j]))
            j++;
        if (ct.n - j < 9 || memcmp(ct.p + j, "boundary=", 9) != 0)
            continue;
        j += 9;
        size_t st = j;
        while (j < ct.n && !isspace((unsigned char)ct.p[j]))
            j++;
        size_t n = j - st;
        const char *b = ct.p + st;
        if (n >= 2 && ((b[0] == '"' && b[n - 1] == '"') || (b[0] == '\'' && b[n - 1] == '\''))) {
            b++;
            n -= 2;
        }
        if (n == 0 || n + 1 > cap)
            return -1;
        memcpy(buf, b, n);
        buf[n] = '\0';
        return 0;
    }
    return -1;
}

/* The name="..." parameter of a Content-Disposition line. */
static char *disposition_name(const char *line, size_t n)
{
    if (n < 19 || !ieq_n(line, 19, "content-disposition"))
        return NULL;
    size_t i = 19;
    while (i < n) {
        const char *semi = memchr(line + i, ';', n - i);
        if (!semi)
            break;
        i = (size_t)(semi - line) + 1;
        while (i < n && isspace((unsigned char)line[i]))
            i++;
        if (n - i >= 5 && ieq_n(line + i, 5, "name=")) {
            i += 5;
            size_t st = i;
            while (i < n && line[i] != ';')
                i++;
            size_t e = i;
            while (e > st && isspace((unsigned char)line[e - 1]))
                e--;
            if (e - st >= 2 && line[st] == '"' && line[e - 1] == '"') {
                st++;
                e--;
            }
            return strndup(line + st, e - st);
        }
    }
    return NULL;
}

static void parts_parse(parts_t *s, const char *body, size_t len, const char *boundary)
{
    char delim[300];
    int dn = snprintf(delim, sizeof(delim), "--%s", boundary);
    if (dn <= 0 || (size_t)dn >= sizeof(delim))
        return;
    const char *p = memmem_s(body, len, delim, (size_t)dn);
    const char *end = body + len;
    while (p) {
        p += dn;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return;   /* closing delimiter */
        const char *eol = memmem_s(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            return;
        const char *hs = eol + 2;
        const char *he = memmem_s(hs, (size_t)(end - hs), "\r\n\r\n", 4);
        char nd[304];
        int nn = snprintf(nd, sizeof(nd), "\r\n%s", delim);
        const char *next;
        const char *vs;
        if (he && hs[0] == '\r' && hs[1] == '\n') {
            he = hs - 2;   /* no headers */
        }
        if (!he)
            return;
        vs = he + 4;
        next = memmem_s(vs - 2, (size_t)(end - (vs - 2)), nd, (size_t)nn);
        if (!next)
            return;
        /* the part */
        char *name = NULL;
        const char *l = hs;
        while (l < he + 2) {
            const char *le = memmem_s(l, (size_t)(he + 2 - l), "\r\n", 2);
            if (!le)
                break;
            if (!name)
                name = disposition_name(l, (size_t)(le - l));
            l = le + 2;
        }
        if (name) {
            if (s->n == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 4;
                part_t *np = realloc(s->p, nc * sizeof(*np));
                if (!np) {
                    free(name);
                    s->oom = 1;
                    return;
                }
                s->p = np;
                s->cap = nc;
            }
            part_t *pt = &s->p[s->n];
            size_t hn = he > hs ? (size_t)(he - hs) + 2 : 0;
            size_t vn = next >= vs ? (size_t)(next - vs) : 0;
            pt->name = name;
            pt->headers = strndup(hs, hn);
            pt->hn = hn;
            pt->value = strndup(vs, vn);
            pt->vn = vn;
            s->n++;
            if (!pt->headers || !pt->value) {
                s->oom = 1;
                return;
            }
        }
        p = next + 2;
    }
}

/* lua-multipart's get: the last part of that name. */
static part_t *parts_get(parts_t *s, const char *name)
{
    for (size_t i = s->n; i-- > 0;)
        if (strcmp(s->p[i].name, name) == 0)
            return &s->p[i];
    return NULL;
}

static void parts_delete(parts_t *s, const char *name)
{
    part_t *pt = parts_get(s, name);
    if (!pt)
        return;
    size_t i = (size_t)(pt - s->p);
    free(pt->name);
    free(pt->headers);
    free(pt->value);
    memmove(&s->p[i], &s->p[i + 1], (s->n - i - 1) * sizeof(*pt));
    s->n--;
}

/* set_simple: replaces the part (with a plain Content-Disposition) or appends one. */
static void parts_set_simple(parts_t *s, const char *name, const char *value, size_t vn)
{
    part_t *pt = parts_get(s, name);
    if (!pt) {
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 4;
            part_t *np = realloc(s->p, nc * sizeof(*np));
            if (!np) {
                s->oom = 1;
                return;
            }
            s->p = np;
            s->cap = nc;
        }
        pt = &s->p[s->n++];
        memset(pt, 0, sizeof(*pt));
        pt->name = strdup(name);
    }
    free(pt->headers);
    free(pt->value);
    size_t hn = strlen(name) + 48;
    pt->headers = malloc(hn);
    pt->value = malloc(vn + 1);
    if (!pt->name || !pt->headers || !pt->value) {
        s->oom = 1;
        return;
    }
    int n = snprintf(pt->headers, hn, "Content-Disposition: form-data; name=\"%s\"\r\n", name);
    pt->hn = n > 0 ? (size_t)n : 0;
    memcpy(pt->value, value, vn);
    pt->value[vn] = '\0';
    pt->vn = vn;
}

static char *parts_encode(const parts_t *s, const char *boundary, size_t *out_len)
{
    size_t bl = strlen(boundary), total = 1;
    for (size_t i = 0; i < s->n; i++)
        total += bl + 4 + s->p[i].hn + 2 + s->p[i].vn + 2;
    total += bl + 6;
    char *o = malloc(total);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        o[k++] = '-';
        o[k++] = '-';
        memcpy(o + k, boundary, bl);
        k += bl;
        memcpy(o + k, "\r\n", 2);
        k += 2;
        memcpy(o + k, s->p[i].headers, s->p[i].hn);
        k += s->p[i].hn;
        memcpy(o + k, "\r\n", 2);
        k += 2;
        memcpy(o + k, s->p[i].value, s->p[i].vn);
        k += s->p[i].vn;
        memcpy(o + k, "\r\n", 2);
        k += 2;
    }
    if (s->n) {
        o[k++] = '-';
        o[k++] = '-';
        memcpy(o + k, boundary, bl);
        k += bl;
        memcpy(o + k, "--\r\n", 4);
        k += 4;
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

int aigw_xform_req_multipart(const aigw_xform_ops_t *o, aigw_str_t content_type,
                             const char *body, size_t len, char **out, size_t *out_len)
{
    char boundary[256];
    if (boundary_of(content_type, boundary, sizeof(boundary)) != 0)
        return 0;   /* aigw: without a boundary the body cannot be rebuilt; left as is */
    parts_t s = { 0 };
    if (len)
        parts_parse(&s, body, len, boundary);
    int changed = 0;
    if (len > 0) {
        for (size_t i = 0; i < o->rename.n; i++) {
            const aigw_xform_pair_t *p = &o->rename.v[i];
            part_t *pt = p->value ? parts_get(&s, p->name) : NULL;
            if (!pt || strcmp(p->name, p->value) == 0)
                continue;
            char *v = strndup(pt->value, pt->vn);
            size_t vn = pt->vn;
            if (!v) {
                s.oom = 1;
                break;
            }
            parts_set_simple(&s, p->value, v, vn);
            free(v);
            parts_delete(&s, p->name);
            changed = 1;
        }
        for (size_t i = 0; i < o->remove.n; i++) {
            parts_delete(&s, o->remove.v[i].name);
            changed = 1;
        }
        for (size_t i = 0; i < o->replace.n; i++) {
            const aigw_xform_pair_t *p = &o->replace.v[i];
            if (!p->value || !parts_get(&s, p->name))
                continue;
            parts_delete(&s, p->name);
            parts_set_simple(&s, p->name, p->value, strlen(p->value));
            changed = 1;
        }
    }
    for (size_t i = 0; i < o->add.n; i++) {
        const aigw_xform_pair_t *p = &o->add.v[i];
        if (!p->value || parts_get(&s, p->name))
            continue;
        parts_set_simple(&s, p->name, p->value, strlen(p->value));
        changed = 1;
    }
    int rc = 0;
    if (s.oom) {
        rc = -1;
    } else if (changed) {
        *out = parts_encode(&s, boundary, out_len);
        rc = *out ? 1 : -1;
    }
    parts_free(&s);
    return rc;
}

/* ---- paths --------------------------------------------------------------------------------- */

char *aigw_xform_escape_path(aigw_str_t path, size_t *out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = malloc(path.n * 3 + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < path.n; i++) {
        unsigned char c = (unsigned char)path.p[i];
        if (isalnum(c) || (c && strchr("!#$&'()*+,/:;=?@[]-_.~%", c))) {
            o[k++] = (char)c;
        } else {
            o[k++] = '%';
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        }
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}
