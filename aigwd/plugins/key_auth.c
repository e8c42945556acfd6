/* aigwd/plugins/key_auth.c: Kong's key-auth (priority 1250, reference/plugins.md "key-auth").
 *
 * For each of `key_names` in order, the key is looked up in a request header (key_in_header),
 * then the query string (key_in_query), then the body (key_in_body: form-urlencoded,
 * multipart/form-data or a JSON object); the first name found decides. A name given twice
 * (two headers, two query arguments, two form fields, a JSON array or object) answers 401
 * `Duplicate API key found`; no key (or an empty one) 401 `No API key found in request`; a key
 * no credential has 401 `Unauthorized`. All are Kong's error JSON with
 * `WWW-Authenticate: Key` (`Key realm="<realm>"` when realm is set). With `anonymous` the
 * failures set that consumer instead ("logical OR"), and the plugin does nothing when an
 * earlier auth plugin already set a credential.
 *
 * hide_credentials removes, for the name found, the header, the query argument and (with
 * key_in_body) the body field before proxying; a JSON body is re-serialised without it.
 *
 * Header names are matched case-insensitively, with '_' in a key name standing for '-'
 * (nginx's header table lookup, which Kong uses). Credential lookup goes through
 * aigw_keyauth_cred_by_key (a digest-indexed table: constant time in the key's content). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/logrec.h"

typedef struct conf {
    char **names;          /* key_names as configured */
    char **hdr_names;      /* the same with '_' -> '-' */
    size_t n_names;
    int hide, in_header, in_query, in_body, preflight;
    char *anonymous;       /* NULL when unset */
    char *www;             /* WWW-Authenticate value */
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    for (size_t i = 0; i < k->n_names; i++) {
        free(k->names[i]);
        free(k->hdr_names[i]);
    }
    free(k->names);
    free(k->hdr_names);
    free(k->anonymous);
    free(k->www);
    free(k);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k)
        goto oom;
    const json_t *names = json_object_get(c, "key_names");
    size_t n = json_is_array(names) ? json_array_size(names) : 0;
    k->names = calloc(n ? n : 1, sizeof(char *));
    k->hdr_names = calloc(n ? n : 1, sizeof(char *));
    if (!k->names || !k->hdr_names)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(names, i));
        if (!s)
            continue;
        char *a = strdup(s), *b = strdup(s);
        if (!a || !b) {
            free(a);
            free(b);
            goto oom;
        }
        for (char *q = b; *q; q++)
            if (*q == '_')
                *q = '-';
        k->names[k->n_names] = a;
        k->hdr_names[k->n_names] = b;
        k->n_names++;
    }
    k->hide = json_is_true(json_object_get(c, "hide_credentials"));
    k->in_header = !json_is_false(json_object_get(c, "key_in_header"));
    k->in_query = !json_is_false(json_object_get(c, "key_in_query"));
    k->in_body = json_is_true(json_object_get(c, "key_in_body"));
    k->preflight = !json_is_false(json_object_get(c, "run_on_preflight"));
    const char *anon = json_string_value(json_object_get(c, "anonymous"));
    if (anon && !(k->anonymous = strdup(anon)))
        goto oom;
    const char *realm = json_string_value(json_object_get(c, "realm"));
    if (realm) {
        size_t len = strlen(realm) + sizeof("Key realm=\"\"");
        if (!(k->www = malloc(len)))
            goto oom;
        snprintf(k->www, len, "Key realm=\"%s\"", realm);
    } else if (!(k->www = strdup("Key"))) {
        goto oom;
    }
    return k;
oom:
    conf_free(k);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

/* ---- where a key can be ----------------------------------------------------------------- */

typedef enum { V_ABSENT = 0, V_STRING, V_MULTI, V_OTHER } vkind_t;

typedef enum { B_NONE = 0, B_FORM, B_MULTIPART, B_JSON } btype_t;

/* The parsed body, once per request. */
typedef struct body {
    int parsed;
    btype_t type;
    json_t *json;          /* B_JSON: the object (owned) */
    aigw_str_t boundary;   /* B_MULTIPART */
} body_t;

static int ci_contains(aigw_str_t hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hay.n; i++)
        if (aigw_str_ieq((aigw_str_t){ hay.p + i, nl }, (aigw_str_t){ needle, nl }))
            return 1;
    return 0;
}

/* The boundary parameter of a multipart Content-Type, or {NULL,0}. */
static aigw_str_t mp_boundary(aigw_str_t ct)
{
    for (size_t i = 0; i + 9 <= ct.n; i++) {
        if (!aigw_str_ieq((aigw_str_t){ ct.p + i, 9 }, AIGW_STR("boundary=")))
            continue;
        if (i > 0 && ct.p[i - 1] != ';' && ct.p[i - 1] != ' ' && ct.p[i - 1] != '\t')
            continue;
        const char *p = ct.p + i + 9, *end = ct.p + ct.n;
        if (p < end && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
            return q ? (aigw_str_t){ p + 1, (size_t)(q - p - 1) } : AIGW_STR_NULL;
        }
        const char *e = p;
        while (e < end && *e != ';' && *e != ' ' && *e != '\t')
            e++;
        return (aigw_str_t){ p, (size_t)(e - p) };
    }
    return AIGW_STR_NULL;
}

static void body_parse(aigw_plugin_run_t *run, body_t *b)
{
    if (b->parsed)
        return;
    b->parsed = 1;
    aigw_str_t ct = aigw_plugin_req_header(run, "content-type");
    if (!ct.p)
        return;
    /* kong.request.get_body's order */
    if (ci_contains(ct, "application/x-www-form-urlencoded")) {
        b->type = B_FORM;
    } else if (ci_contains(ct, "multipart/form-data")) {
        b->boundary = mp_boundary(ct);
        if (b->boundary.n && b->boundary.n <= 200)
            b->type = B_MULTIPART;
    } else if (ci_contains(ct, "application/json")) {
        aigw_str_t body = aigw_plugin_body(run);
        json_t *j = body.n ? json_loadb(body.p, body.n, JSON_DECODE_ANY, NULL) : NULL;
        if (json_is_object(j)) {
            b->type = B_JSON;
            b->json = j;
        } else {
            json_decref(j);
        }
    }
}

/* One part of a multipart body: its name and value. */
typedef struct mp_part {
    aigw_str_t whole;      /* from the delimiter line up to (not including) the next one */
    aigw_str_t name, value;
} mp_part_t;

static const char *find_mem(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0 || hn < nn)
        return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && memcmp(h + i, n, nn) == 0)
            return h + i;
    return NULL;
}

/* The name="..." of a part's Content-Disposition header within head. */
static aigw_str_t mp_name(aigw_str_t head)
{
    const char *p = head.p, *end = head.p + head.n;
    while (p < end) {
        const char *eol = find_mem(p, (size_t)(end - p), "\r\n", 2);
        const char *le = eol ? eol : end;
        aigw_str_t line = { p, (size_t)(le - p) };
        if (line.n > 20 && aigw_str_ieq((aigw_str_t){ line.p, 20 },
                                        AIGW_STR("content-disposition:"))) {
            for (size_t i = 20; i + 5 <= line.n; i++) {
                if (memcmp(line.p + i, "name=", 5) != 0)
                    continue;
                if (line.p[i - 1] != ' ' && line.p[i - 1] != ';' && line.p[i - 1] != '\t')
                    continue;
                const char *v = line.p + i + 5, *ve = line.p + line.n;
                if (v < ve && *v == '"') {
                    const char *q = memchr(v + 1, '"', (size_t)(ve - v - 1));
                    return q ? (aigw_str_t){ v + 1, (size_t)(q - v - 1) } : AIGW_STR_NULL;
                }
                const char *e = v;
                while (e < ve && *e != ';')
                    e++;
                return aigw_str_trim((aigw_str_t){ v, (size_t)(e - v) });
            }
        }
        p = eol ? eol + 2 : end;
    }
    return AIGW_STR_NULL;
}

/* Walks the parts: fn returns 1 to stop. Returns -1 on a malformed body. */
typedef int (*mp_fn)(const mp_part_t *part, void *ud);

static int mp_each(aigw_str_t body, aigw_str_t boundary, mp_fn fn, void *ud)
{
    char delim[256];
    int dl = snprintf(delim, sizeof(delim), "--%.*s", (int)boundary.n, boundary.p);
    if (dl <= 2 || (size_t)dl >= sizeof(delim))
        return -1;
    const char *end = body.p + body.n;
    const char *p = find_mem(body.p, body.n, delim, (size_t)dl);
    while (p) {
        const char *after = p + dl;
        if (end - after >= 2 && after[0] == '-' && after[1] == '-')
            return 0;                                   /* closing delimiter */
        const char *hs = find_mem(after, (size_t)(end - after), "\r\n", 2);
        if (!hs)
            return -1;
        hs += 2;
        const char *he = find_mem(hs, (size_t)(end - hs), "\r\n\r\n", 4);
        if (!he)
            return -1;
        const char *vs = he + 4;
        char nd[260];
        int ndl = snprintf(nd, sizeof(nd), "\r\n%s", delim);
        const char *next = find_mem(vs, (size_t)(end - vs), nd, (size_t)ndl);
        if (!next)
            return -1;
        mp_part_t part = {
            .whole = { p, (size_t)(next + 2 - p) },
            .name = mp_name((aigw_str_t){ hs, (size_t)(he - hs) }),
            .value = { vs, (size_t)(next - vs) },
        };
        if (fn(&part, ud))
            return 0;
        p = next + 2;
    }
    return 0;
}

typedef struct mp_find {
    const char *name;
    size_t count;
    aigw_str_t first;
} mp_find_t;

static int mp_find_cb(const mp_part_t *part, void *ud)
{
    mp_find_t *f = ud;
    if (part->name.p && aigw_str_eq(part->name, aigw_str_c(f->name)) && f->count++ == 0)
        f->first = part->value;
    return 0;
}

typedef struct mp_drop {
    const char *name;
    char *out;
    size_t n;
} mp_drop_t;

static int mp_drop_cb(const mp_part_t *part, void *ud)
{
    mp_drop_t *d = ud;
    if (part->name.p && aigw_str_eq(part->name, aigw_str_c(d->name)))
        return 0;
    memcpy(d->out + d->n, part->whole.p, part->whole.n);
    d->n += part->whole.n;
    return 0;
}

/* The value of name in the body. */
static vkind_t body_value(aigw_plugin_run_t *run, body_t *b, const char *name, aigw_str_t *out)
{
    body_parse(run, b);
    size_t count = 0;
    switch (b->type) {
    case B_FORM:
        *out = aigw_plugin_form_field(run, name, &count);
        return count == 0 ? V_ABSENT : count == 1 ? V_STRING : V_MULTI;
    case B_MULTIPART: {
        mp_find_t f = { .name = name };
        if (mp_each(aigw_plugin_body(run), b->boundary, mp_find_cb, &f) != 0)
            return V_ABSENT;
        *out = f.first;
        return f.count == 0 ? V_ABSENT : f.count == 1 ? V_STRING : V_MULTI;
    }
    case B_JSON: {
        const json_t *v = json_object_get(b->json, name);
        if (!v)
            return V_ABSENT;
        if (json_is_string(v)) {
            *out = (aigw_str_t){ json_string_value(v), json_string_length(v) };
            return V_STRING;
        }
        return json_is_array(v) || json_is_object(v) ? V_MULTI : V_OTHER;
    }
    default:
        return V_ABSENT;
    }
}

/* Removes name from the body (hide_credentials). */
static int body_drop(aigw_plugin_run_t *run, body_t *b, const char *name)
{
    body_parse(run, b);
    switch (b->type) {
    case B_FORM: {
        size_t count = 0;
        aigw_plugin_form_field(run, name, &count);
        return count ? aigw_plugin_drop_form_field(run, name) : 0;
    }
    case B_MULTIPART: {
        aigw_str_t body = aigw_plugin_body(run);
        mp_drop_t d = { .name = name };
        d.out = aigw_arena_alloc(&run->req->arena, body.n + 1);
        if (!d.out)
            return -1;
        const char *first = find_mem(body.p, body.n, "--", 2);
        mp_find_t f = { .name = name };
        if (!first || mp_each(body, b->boundary, mp_find_cb, &f) != 0 || f.count == 0)
            return 0;
        if (mp_each(body, b->boundary, mp_drop_cb, &d) != 0)
            return 0;
        /* the closing delimiter and whatever follows it */
        char cl[260];
        int cll = snprintf(cl, sizeof(cl), "--%.*s--", (int)b->boundary.n, b->boundary.p);
        const char *tail = find_mem(body.p, body.n, cl, (size_t)cll);
        if (tail) {
            memcpy(d.out + d.n, tail, (size_t)(body.p + body.n - tail));
            d.n += (size_t)(body.p + body.n - tail);
        }
        d.out[d.n] = '\0';
        run->body = (aigw_str_t){ d.out, d.n };
        run->body_set = 1;
        return 0;
    }
    case B_JSON: {
        if (!json_object_get(b->json, name))
            return 0;
        json_object_del(b->json, name);
        char *s = json_dumps(b->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
            return -1;
        size_t n = strlen(s);
        char *p = aigw_arena_strndup(&run->req->arena, s, n);
        free(s);
        if (!p)
            return -1;
        run->body = (aigw_str_t){ p, n };
        run->body_set = 1;
        return 0;
    }
    default:
        return 0;
    }
}

/* The request header name (as the upstream would see it) and how many times it occurs. */
static aigw_str_t header_value(aigw_plugin_run_t *run, const char *name, size_t *count)
{
    aigw_str_t nm = aigw_str_c(name);
    if (aigw_plugins_header_removed(run, nm)) {
        aigw_str_t v = aigw_plugin_req_header(run, name);
        *count = v.p ? 1 : 0;
        return v;
    }
    aigw_str_t first = AIGW_STR_NULL;
    *count = 0;
    for (size_t i = 0; i < run->req->n_headers; i++) {
        if (!aigw_str_ieq(run->req->headers[i].name, nm))
            continue;
        if ((*count)++ == 0)
            first = run->req->headers[i].value;
    }
    if (*count && !first.p)
        first = (aigw_str_t){ "", 0 };
    return first;
}

/* ---- access ----------------------------------------------------------------------------- */

typedef enum { KA_OK = 0, KA_DUPLICATE, KA_NO_KEY, KA_UNKNOWN, KA_NOMEM } result_t;

static result_t authenticate(aigw_plugin_run_t *run, const conf_t *k)
{
    body_t body = { 0 };
    aigw_str_t key = AIGW_STR_NULL;
    int found = 0;
    result_t rc = KA_OK;
    for (size_t i = 0; i < k->n_names && !found; i++) {
        vkind_t kind = V_ABSENT;
        aigw_str_t v = AIGW_STR_NULL;
        size_t count = 0;
        if (k->in_header) {
            v = header_value(run, k->hdr_names[i], &count);
            kind = count == 0 ? V_ABSENT : count == 1 ? V_STRING : V_MULTI;
        }
        if (kind == V_ABSENT && k->in_query) {
            v = aigw_plugin_query_arg(run, k->names[i], &count);
            kind = count == 0 ? V_ABSENT : count == 1 ? V_STRING : V_MULTI;
        }
        if (kind == V_ABSENT && k->in_body)
            kind = body_value(run, &body, k->names[i], &v);
        if (kind != V_ABSENT) {
            /* the key never reaches a log record, valid or not */
            aigw_plugin_log_mask_header(run, k->hdr_names[i]);
            aigw_plugin_log_mask_query(run, k->names[i]);
        }
        if (kind == V_MULTI) {
            rc = KA_DUPLICATE;
            goto out;
        }
        if (kind != V_STRING)
            continue;
        found = 1;
        /* copy: hiding may rewrite what v points into (the JSON body) */
        char *kc = aigw_arena_strndup(&run->req->arena, v.p ? v.p : "", v.n);
        if (!kc) {
            rc = KA_NOMEM;
            goto out;
        }
        key = (aigw_str_t){ kc, v.n };
        if (k->hide) {
            size_t qc = 0;
            aigw_plugin_query_arg(run, k->names[i], &qc);
            if ((qc && aigw_plugin_drop_query_arg(run, k->names[i]) != 0) ||
                aigw_plugin_clear_header(run, k->hdr_names[i]) != 0 ||
                (k->in_body && body_drop(run, &body, k->names[i]) != 0)) {
                rc = KA_NOMEM;
                goto out;
            }
        }
    }
    if (!found || key.n == 0) {
        rc = KA_NO_KEY;
        goto out;
    }
    const aigw_rt_keyauth_cred_t *cred = aigw_keyauth_cred_by_key(run->rt->consumers, key);
    if (!cred || !cred->consumer) {
        rc = KA_UNKNOWN;
        goto out;
    }
    aigw_plugin_authenticate(run, cred->consumer, cred->id, aigw_str_c(cred->id));
out:
    json_decref(body.json);
    return rc;
}

static aigw_plugin_rc_t access_phase(aigw_plugin_run_t *run, void *conf)
{
    const conf_t *k = conf;
    if (!k->preflight && aigw_str_eq(run->req->method_name, AIGW_STR("OPTIONS")))
        return AIGW_PLUGIN_NEXT;
    if (k->anonymous && aigw_plugin_has_credential(run))
        return AIGW_PLUGIN_NEXT;
    result_t rc = authenticate(run, k);
    if (rc == KA_OK)
        return AIGW_PLUGIN_NEXT;
    if (rc == KA_NOMEM)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    if (k->anonymous)
        return aigw_plugin_authenticate_anonymous(run, k->anonymous);
    aigw_plugin_resp_set_header(run, "WWW-Authenticate", aigw_str_c(k->www));
    return aigw_plugin_error(run, 401,
                             rc == KA_DUPLICATE ? "Duplicate API key found"
                             : rc == KA_NO_KEY  ? "No API key found in request"
                                               : "Unauthorized");
}

static int ka_reads_body(const void *conf)
{
    const conf_t *k = conf;
    return k->in_body;
}

const aigw_plugin_def_t aigw_plugin_def_key_auth = {
    .reads_body = ka_reads_body,
    .name = "key-auth",
    .priority = 1250,
    .configure = configure,
    .free_conf = conf_free,
    .access = access_phase,
};
