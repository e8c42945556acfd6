/* aigwd/schema/util.c: UUIDs, field lookup by name and by dotted path, and Kong's one-line
 * message for a schema violation (kong/db/errors.lua schema_violation). Pure functions; any
 * thread. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "common/sbuf.h"
#include "schema/schema.h"

/* ---- random bytes and UUIDs ----------------------------------------------------------------- */

/* OpenSSL's CSPRNG; the kernel's if OpenSSL ever fails (it seeds from the kernel anyway). */
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

void aigw_schema_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    fill_random(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Kong's uuid validator: 36 characters, 8-4-4-4-12 hex digits, case-insensitive, any version. */
int aigw_schema_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* ---- field lookup ----------------------------------------------------------------------------- */

const aigw_field_t *aigw_schema_field(const aigw_field_t *fields, const char *name)
{
    if (!fields || !name)
        return NULL;
    for (const aigw_field_t *f = fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static int is_index(const char *s)
{
    if (*s == '\0')
        return 1; /* "paths[]" */
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* The id of any foreign reference, when the referenced entity is not known. */
static const aigw_field_t foreign_id = {.name = "id", .type = AIGW_FT_STRING, .flags = AIGW_F_UUID};

const aigw_field_t *aigw_schema_field_path(const aigw_entity_t *e, const char *plugin_name,
                                           const char *const *path, size_t depth)
{
    if (!e || !path || depth == 0)
        return NULL;
    const aigw_field_t *fields = e->fields;
    const aigw_field_t *f = NULL;
    size_t i = 0;
    while (i < depth) {
        f = aigw_schema_field(fields, path[i]);
        if (!f)
            return NULL;
        /* A plugin's config is the named plugin's own record. */
        if (i == 0 && (e->flags & AIGW_E_PLUGIN) && strcmp(f->name, "config") == 0 && i + 1 < depth) {
            const aigw_plugin_schema_t *p = plugin_name ? aigw_schema_plugin(plugin_name) : NULL;
            if (!p)
                return NULL;
            fields = p->config;
            i++;
            continue;
        }
        i++;
        if (i == depth)
            return f;
        switch (f->type) {
        case AIGW_FT_RECORD:
            fields = f->fields;
            break;
        case AIGW_FT_ARRAY:
        case AIGW_FT_SET:
            /* paths.1 / paths[] lands on the array; sources.1.ip goes into the element. */
            if (is_index(path[i]))
                i++;
            if (i == depth)
                return f;
            if (!f->elements || f->elements->type != AIGW_FT_RECORD)
                return NULL;
            fields = f->elements->fields;
            break;
        case AIGW_FT_MAP:
            /* headers.x-foo: the next component is a key; the value field follows. */
            i++;
            if (!f->elements)
                return NULL;
            if (i == depth)
                return f->elements;
            if (f->elements->type != AIGW_FT_RECORD)
                return NULL;
            fields = f->elements->fields;
            break;
        case AIGW_FT_FOREIGN: {
            const aigw_entity_t *ref = f->reference ? aigw_schema_entity(f->reference) : NULL;
            if (ref) {
                fields = ref->fields;
                break;
            }
            if (i + 1 == depth && strcmp(path[i], "id") == 0)
                return &foreign_id;
            return NULL;
        }
        default:
            return NULL;
        }
    }
    return f;
}

/* ---- messages --------------------------------------------------------------------------------- */


/* Lua's tostring() of a number, as penlight prints it: integers plainly, else %.14g. */
static void sb_number(aigw_sbuf_t *b, const json_t *v)
{
    if (json_is_integer(v)) {
        aigw_sbuf_addf(b, "%lld", (long long)json_integer_value(v));
        return;
    }
    double d = json_real_value(v);
    if (d >= -9.2e18 && d <= 9.2e18 && d == (double)(long long)d)
        aigw_sbuf_addf(b, "%lld", (long long)d);
    else
        aigw_sbuf_addf(b, "%.14g", d);
}

/* A Lua string literal as Lua's %q writes it. */
static void sb_quoted(aigw_sbuf_t *b, const char *s)
{
    aigw_sbuf_add(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            aigw_sbuf_addn(b, "\\", 1);
        if (*s == '\n') {
            aigw_sbuf_add(b, "\\\n");
            continue;
        }
        if (*s == '\r') {
            aigw_sbuf_add(b, "\\r");
            continue;
        }
        aigw_sbuf_addn(b, s, 1);
    }
    aigw_sbuf_add(b, "\"");
}

/* ---- penlight's pretty.write, for errors nested deeper than one level ---- */

typedef struct pretty {
    aigw_sbuf_t out;    /* finished lines joined with "\n" */
    aigw_sbuf_t line;   /* the line being built */
    int nlines;
} pretty_t;

static void pr_put(pretty_t *pr, const char *s)
{
    aigw_sbuf_add(&pr->line, s);
}

static void pr_push(pretty_t *pr, const char *s, size_t n)
{
    if (pr->nlines++ > 0)
        aigw_sbuf_add(&pr->out, "\n");
    aigw_sbuf_addn(&pr->out, s, n);
}

static void pr_putln(pretty_t *pr, const char *s)
{
    if (pr->line.n > 0) {
        aigw_sbuf_add(&pr->line, s);
        pr_push(pr, pr->line.p, pr->line.n);
        pr->line.n = 0;
        pr->line.p[0] = '\0';
    } else {
        pr_push(pr, s, strlen(s));
    }
}

static void pr_eat_last_comma(pretty_t *pr)
{
    if (pr->nlines > 0 && pr->out.n > 0 && pr->out.p[pr->out.n - 1] == ',') {
        pr->out.n--;
        pr->out.p[pr->out.n] = '\0';
    }
}

static int is_lua_keyword(const char *s)
{
    static const char *const kw[] = {"and",   "break", "do",     "else", "elseif", "end",
                                     "false", "for",   "function", "goto", "if",   "in",
                                     "local", "nil",   "not",    "or",   "repeat", "return",
                                     "then",  "true",  "until",  "while", NULL};
    for (size_t i = 0; kw[i]; i++)
        if (strcmp(kw[i], s) == 0)
            return 1;
    return 0;
}

static int is_lua_identifier(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return 0;
    return !is_lua_keyword(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of an object (Lua's table.sort on strings: byte order). Caller frees the array. */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    size_t cnt = json_object_size(obj);
    *n = 0;
    const char **keys = malloc((cnt ? cnt : 1) * sizeof *keys);
    if (!keys)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)obj, k, v) {
        (void)v;
        keys[(*n)++] = k;
    }
    qsort(keys, *n, sizeof *keys, cmp_str);
    return keys;
}

static void pr_write(pretty_t *pr, const json_t *t, const char *oldindent, const char *indent);

static void pr_scalar_line(pretty_t *pr, const json_t *t)
{
    aigw_sbuf_t s = {0};
    if (json_is_string(t))
        sb_quoted(&s, json_string_value(t));
    else if (json_is_number(t))
        sb_number(&s, t);
    else if (json_is_true(t))
        aigw_sbuf_add(&s, "true");
    else if (json_is_false(t))
        aigw_sbuf_add(&s, "false");
    else
        aigw_sbuf_add(&s, "nil");
    aigw_sbuf_add(&s, ",");
    pr_putln(pr, s.p ? s.p : ",");
    free(s.p);
}

static void pr_write(pretty_t *pr, const json_t *t, const char *oldindent, const char *indent)
{
    if (!json_is_object(t) && !json_is_array(t)) {
        pr_scalar_line(pr, t);
        return;
    }
    aigw_sbuf_t newindent = {0};
    aigw_sbuf_add(&newindent, indent);
    aigw_sbuf_add(&newindent, "  ");
    pr_putln(pr, "{");
    if (json_is_array(t)) {
        /* The array part: elements up to the first hole (null), then [i] = v for the rest. */
        size_t n = json_array_size(t), i = 0;
        for (; i < n && !json_is_null(json_array_get(t, i)); i++) {
            pr_put(pr, indent);
            pr_write(pr, json_array_get(t, i), indent, newindent.p);
        }
        for (; i < n; i++) {
            const json_t *v = json_array_get(t, i);
            if (json_is_null(v))
                continue;
            aigw_sbuf_t k = {0};
            aigw_sbuf_addf(&k, "%s[%zu] = ", indent, i + 1);
            pr_put(pr, k.p ? k.p : "");
            free(k.p);
            pr_write(pr, v, indent, newindent.p);
        }
    } else {
        size_t n;
        const char **keys = sorted_keys(t, &n);
        for (size_t i = 0; keys && i < n; i++) {
            aigw_sbuf_t k = {0};
            aigw_sbuf_add(&k, indent);
            if (is_lua_identifier(keys[i])) {
                aigw_sbuf_add(&k, keys[i]);
            } else {
                aigw_sbuf_add(&k, "[");
                sb_quoted(&k, keys[i]);
                aigw_sbuf_add(&k, "]");
            }
            aigw_sbuf_add(&k, " = ");
            pr_put(pr, k.p ? k.p : "");
            free(k.p);
            pr_write(pr, json_object_get(t, keys[i]), indent, newindent.p);
        }
        free(keys);
    }
    pr_eat_last_comma(pr);
    aigw_sbuf_t close = {0};
    aigw_sbuf_add(&close, oldindent);
    aigw_sbuf_add(&close, "},");
    pr_putln(pr, close.p ? close.p : "},");
    free(close.p);
    free(newindent.p);
}

static void sb_pretty(aigw_sbuf_t *b, const json_t *v)
{
    pretty_t pr = {0};
    pr_write(&pr, v, "", "  ");
    pr_eat_last_comma(&pr);
    if (pr.out.p)
        aigw_sbuf_add(b, pr.out.p);
    if (pr.out.oom || pr.line.oom)
        b->oom = 1;
    free(pr.out.p);
    free(pr.line.p);
}

/* "<parent>.<sub>: <msg>" with a nested table pretty-printed, as errors.lua does. */
static void add_sub(aigw_sbuf_t *parts, size_t *count, const char *parent, const char *sub,
                    const json_t *v)
{
    if (*count > 0)
        aigw_sbuf_add(parts, "; ");
    (*count)++;
    aigw_sbuf_addf(parts, "%s.%s: ", parent, sub);
    if (json_is_string(v))
        aigw_sbuf_add(parts, json_string_value(v));
    else if (json_is_object(v) || json_is_array(v))
        sb_pretty(parts, v);
    else if (json_is_number(v))
        sb_number(parts, v);
    else
        aigw_sbuf_add(parts, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "nil");
}

char *aigw_schema_errors_message(const json_t *errors)
{
    aigw_sbuf_t parts = {0};
    size_t count = 0;
    if (!json_is_object(errors))
        goto done;

    const json_t *ent = json_object_get(errors, "@entity");
    if (json_is_array(ent)) {
        size_t i;
        const json_t *m;
        json_array_foreach(ent, i, m) {
            if (!json_is_string(m))
                continue;
            if (count++ > 0)
                aigw_sbuf_add(&parts, "; ");
            aigw_sbuf_add(&parts, json_string_value(m));
        }
    } else if (json_is_string(ent)) {
        count++;
        aigw_sbuf_add(&parts, json_string_value(ent));
    }

    size_t n;
    const char **keys = sorted_keys(errors, &n);
    for (size_t i = 0; keys && i < n; i++) {
        const char *k = keys[i];
        if (strcmp(k, "@entity") == 0)
            continue;
        const json_t *v = json_object_get(errors, k);
        if (json_is_object(v)) {
            size_t m;
            const char **sub = sorted_keys(v, &m);
            for (size_t j = 0; sub && j < m; j++)
                add_sub(&parts, &count, k, sub[j], json_object_get(v, sub[j]));
            free(sub);
        } else if (json_is_array(v)) {
            /* Element errors: 1-based positions of the failing elements. */
            size_t j;
            const json_t *ev;
            json_array_foreach(v, j, ev) {
                if (json_is_null(ev))
                    continue;
                char idx[32];
                snprintf(idx, sizeof idx, "%zu", j + 1);
                add_sub(&parts, &count, k, idx, ev);
            }
        } else {
            if (count++ > 0)
                aigw_sbuf_add(&parts, "; ");
            aigw_sbuf_addf(&parts, "%s: %s", k, json_is_string(v) ? json_string_value(v) : "");
        }
    }
    free(keys);

done:;
    aigw_sbuf_t msg = {0};
    if (count == 1)
        aigw_sbuf_addf(&msg, "schema violation (%s)", parts.p ? parts.p : "");
    else
        aigw_sbuf_addf(&msg, "%zu schema violations (%s)", count, parts.p ? parts.p : "");
    int oom = parts.oom || msg.oom;
    free(parts.p);
    if (oom) {
        free(msg.p);
        return NULL;
    }
    return msg.p;
}
