/* common/yaml.c: YAML <-> JSON over libyaml's event API, with lyaml 6.2's scalar
 * resolution (see yaml.h for the rules and limits). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "common/sbuf.h"
#include "common/yaml.h"

/* ---- scalar resolution ------------------------------------------------------------------- */

/* A number from a token: an integer when it is integral and fits, else a real. NULL for a
 * value JSON cannot hold (inf, nan). */
static json_t *number_value(double d)
{
    if (!isfinite(d))
        return NULL;
    if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

/* Copies s without '_' into buf (cap bytes). -1 if it does not fit. */
static int strip_underscores(const char *s, size_t n, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_')
            continue;
        if (j + 1 >= cap)
            return -1;
        buf[j++] = s[i];
    }
    buf[j] = '\0';
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_odigit(char c) { return c >= '0' && c <= '7'; }
static int is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Digits of base `base` (underscores skipped) into a double, as lyaml does (r = r*b + d). */
static double accumulate(const char *s, size_t n, int base)
{
    double r = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d;
        if (c == '_')
            continue;
        if (is_digit(c))
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            d = c - 'A' + 10;
        r = r * base + d;
    }
    return r;
}

/* ^[+-]?0_*[0-7][0-7_]*$ */
static int match_octal(const char *s, size_t n, json_t **out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i >= n || s[i] != '0')
        return 0;
    i++;
    while (i < n && s[i] == '_')
        i++;
    if (i >= n || !is_odigit(s[i]))
        return 0;
    size_t start = i;
    for (; i < n; i++)
        if (!is_odigit(s[i]) && s[i] != '_')
            return 0;
    double r = accumulate(s + start, n - start, 8);
    *out = number_value(neg ? -r : r);
    return *out != NULL;
}

/* Decimal text (no underscores, optional sign) to an exact integer when it fits. */
static json_t *decimal_value(const char *digits, int neg)
{
    errno = 0;
    char *end;
    long long v = strtoll(digits, &end, 10);
    if (errno == 0 && *end == '\0')
        return json_integer(neg ? -v : v);
    return number_value(neg ? -strtod(digits, NULL) : strtod(digits, NULL));
}

/* ^[+-]?_*[0-9][0-9_]*$, and not a leading 0 followed by more digits (octal's). */
static int match_decimal(const char *s, size_t n, json_t **out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    while (i < n && s[i] == '_')
        i++;
    if (i >= n || !is_digit(s[i]))
        return 0;
    for (size_t j = i; j < n; j++)
        if (!is_digit(s[j]) && s[j] != '_')
            return 0;
    char buf[512];
    if (strip_underscores(s + i, n - i, buf, sizeof(buf)) != 0)
        return 0;
    if (!(strcmp(buf, "0") == 0 || strlen(buf) > 1 || buf[0] != '0'))
        return 0;
    *out = decimal_value(buf, neg);
    return *out != NULL;
}

/* Lua's tonumber on the text without '_', when the text has '.', 'e' or 'E'. */
static int match_float(const char *s, size_t n, json_t **out)
{
    if (!memchr(s, '.', n) && !memchr(s, 'e', n) && !memchr(s, 'E', n))
        return 0;
    char buf[512];
    if (strip_underscores(s, n, buf, sizeof(buf)) != 0 || buf[0] == '\0')
        return 0;
    /* strtod also reads "inf", "nan" and "infinity"; LuaJIT's tonumber reads them too, but
     * neither has a JSON form. Only plain decimal and hex numbers go on. */
    for (const char *p = buf; *p; p++) {
        char c = *p;
        if (!(is_xdigit(c) || c == '.' || c == '+' || c == '-' || c == 'x' || c == 'X' ||
              c == 'p' || c == 'P'))
            return 0;
    }
    errno = 0;
    char *end;
    double d = strtod(buf, &end);
    if (end == buf || *end != '\0')
        return 0;
    json_t *v = isfinite(d) ? json_real(d) : NULL;
    if (!v)
        return 0;
    *out = v;
    return 1;
}

static int match_bool(const char *s, size_t n, json_t **out)
{
    static const char *const t[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
                                     "on", "On", "ON", NULL };
    static const char *const f[] = { "false", "False", "FALSE", "no", "No", "NO",
                                     "off", "Off", "OFF", NULL };
    for (int i = 0; t[i]; i++)
        if (strlen(t[i]) == n && memcmp(t[i], s, n) == 0) {
            *out = json_true();
            return 1;
        }
    for (int i = 0; f[i]; i++)
        if (strlen(f[i]) == n && memcmp(f[i], s, n) == 0) {
            *out = json_false();
            return 1;
        }
    return 0;
}

/* ^[+-]?0x_*[0-9a-fA-F][0-9a-fA-F_]*$ */
static int match_hex(const char *s, size_t n, json_t **out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i + 1 >= n || s[i] != '0' || s[i + 1] != 'x')
        return 0;
    i += 2;
    while (i < n && s[i] == '_')
        i++;
    if (i >= n || !is_xdigit(s[i]))
        return 0;
    size_t start = i;
    for (; i < n; i++)
        if (!is_xdigit(s[i]) && s[i] != '_')
            return 0;
    double r = accumulate(s + start, n - start, 16);
    *out = number_value(neg ? -r : r);
    return *out != NULL;
}

/* ^[+-]?0b_*[01][01_]+$ */
static int match_binary(const char *s, size_t n, json_t **out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i + 1 >= n || s[i] != '0' || s[i + 1] != 'b')
        return 0;
    i += 2;
    while (i < n && s[i] == '_')
        i++;
    if (i >= n || (s[i] != '0' && s[i] != '1'))
        return 0;
    size_t start = i;
    if (n - start < 2)
        return 0;
    for (; i < n; i++)
        if (s[i] != '0' && s[i] != '1' && s[i] != '_')
            return 0;
    double r = accumulate(s + start, n - start, 2);
    *out = number_value(neg ? -r : r);
    return *out != NULL;
}

/* ^[+-]?[0-9]+:[0-5]?[0-9][:0-9]*(\.[0-9]+)?$: base-60 groups, with an optional fraction
 * (sexfloat) when want_frac. */
static int match_sexagesimal(const char *s, size_t n, int want_frac, json_t **out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t body = i;
    size_t end = n;
    const char *dot = memchr(s + body, '.', n - body);
    if (want_frac) {
        if (!dot)
            return 0;
        end = (size_t)(dot - s);
        if (end + 1 >= n)
            return 0;
        for (size_t j = end + 1; j < n; j++)
            if (!is_digit(s[j]))
                return 0;
    } else if (dot) {
        return 0;
    }
    /* [0-9]+ */
    size_t j = body;
    while (j < end && is_digit(s[j]))
        j++;
    if (j == body || j >= end || s[j] != ':')
        return 0;
    j++;
    /* [0-5]?[0-9] */
    if (j < end && s[j] >= '0' && s[j] <= '5' && j + 1 < end && is_digit(s[j + 1]))
        j += 2;
    else if (j < end && is_digit(s[j]))
        j += 1;
    else
        return 0;
    for (; j < end; j++)
        if (!is_digit(s[j]) && s[j] != ':')
            return 0;
    double r = 0;
    for (j = body; j < end;) {
        if (!is_digit(s[j])) {
            j++;
            continue;
        }
        double g = 0;
        while (j < end && is_digit(s[j]))
            g = g * 10 + (s[j++] - '0');
        r = r * 60 + g;
    }
    if (want_frac) {
        char buf[512];
        size_t fl = n - end;
        if (fl + 2 > sizeof(buf))
            return 0;
        buf[0] = '0';
        memcpy(buf + 1, s + end, fl);
        buf[fl + 1] = '\0';
        r += strtod(buf, NULL);
        *out = json_real(neg ? -r : r);
    } else {
        *out = number_value(neg ? -r : r);
    }
    return *out != NULL;
}

/* The value of a plain scalar, lyaml's implicit order: null, octal, decimal, float, bool,
 * (inf, nan: kept as strings), hex, binary, sexagesimal, sexfloat, else the string. */
static json_t *resolve_plain(const char *s, size_t n)
{
    json_t *v = NULL;
    if (n == 0 || (n == 1 && s[0] == '~') ||
        (n == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 ||
                    memcmp(s, "NULL", 4) == 0)))
        return json_null();
    if (match_octal(s, n, &v) || match_decimal(s, n, &v) || match_float(s, n, &v) ||
        match_bool(s, n, &v) || match_hex(s, n, &v) || match_binary(s, n, &v) ||
        match_sexagesimal(s, n, 0, &v) || match_sexagesimal(s, n, 1, &v))
        return v;
    return json_stringn(s, n);
}

#define TAG_PREFIX "tag:yaml.org,2002:"

/* An explicitly tagged scalar. 0 with *out, 1 when the tag is not one of lyaml's (the caller
 * resolves as untagged), -1 when the value does not fit the tag. */
static int resolve_tagged(const char *tag, const char *s, size_t n, json_t **out)
{
    size_t pl = strlen(TAG_PREFIX);
    if (strncmp(tag, TAG_PREFIX, pl) != 0)
        return 1;
    const char *t = tag + pl;
    json_t *v = NULL;
    if (strcmp(t, "str") == 0) {
        v = json_stringn(s, n);
    } else if (strcmp(t, "null") == 0) {
        v = json_null();
    } else if (strcmp(t, "bool") == 0) {
        if (!match_bool(s, n, &v)) {
            if (n == 1 && (s[0] == 'y' || s[0] == 'Y'))
                v = json_true();
            else if (n == 1 && (s[0] == 'n' || s[0] == 'N'))
                v = json_false();
        }
    } else if (strcmp(t, "int") == 0) {
        if (!(match_octal(s, n, &v) || match_decimal(s, n, &v) || match_hex(s, n, &v) ||
              match_binary(s, n, &v) || match_sexagesimal(s, n, 0, &v)))
            v = NULL;
    } else if (strcmp(t, "float") == 0) {
        if (match_float(s, n, &v) || match_octal(s, n, &v) || match_decimal(s, n, &v) ||
            match_hex(s, n, &v) || match_binary(s, n, &v) || match_sexagesimal(s, n, 1, &v)) {
            if (json_is_integer(v)) {
                json_t *r = json_real((double)json_integer_value(v));
                json_decref(v);
                v = r;
            }
        } else {
            v = NULL;
        }
    } else {
        return 1;
    }
    if (!v)
        return -1;
    *out = v;
    return 0;
}

/* ---- parser -------------------------------------------------------------------------------- */

typedef struct anchor {
    char *name;
    json_t *value;
    size_t nodes;          /* nodes in value, charged per alias expansion */
} anchor_t;

typedef struct loader {
    yaml_parser_t p;
    yaml_event_t ev;
    int have_ev;
    size_t line, col;       /* start mark of the last event read (1-based), as lyaml reports */
    anchor_t *anchors;
    size_t n_anchors, cap_anchors;
    size_t alias_nodes;     /* nodes copied by alias expansion so far */
    char *err;
    size_t errlen;
    int failed;
} loader_t;

/* Node results besides 0 (a value) and -1 (error): the end of the enclosing collection. */
#define NODE_END 1

static void fail(loader_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(loader_t *l, const char *fmt, ...)
{
    if (l->failed)
        return;
    l->failed = 1;
    if (!l->err || !l->errlen)
        return;
    int n = snprintf(l->err, l->errlen, "%zu:%zu: ", l->line, l->col);
    if (n < 0 || (size_t)n >= l->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int next_event(loader_t *l)
{
    if (l->have_ev) {
        yaml_event_delete(&l->ev);
        l->have_ev = 0;
    }
    if (!yaml_parser_parse(&l->p, &l->ev)) {
        fail(l, "%s", l->p.problem ? l->p.problem : "A problem");
        return -1;
    }
    l->have_ev = 1;
    l->line = l->ev.start_mark.line + 1;
    l->col = l->ev.start_mark.column + 1;
    return 0;
}

static size_t count_nodes(const json_t *v)
{
    size_t n = 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)(uintptr_t)v, k, c) n += count_nodes(c);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) n += count_nodes(c);
    }
    return n;
}

static int add_anchor(loader_t *l, const char *name, json_t *value)
{
    if (!name)
        return 0;
    /* A later anchor with the same name replaces the earlier one from here on. */
    for (size_t i = 0; i < l->n_anchors; i++) {
        if (strcmp(l->anchors[i].name, name) == 0) {
            json_decref(l->anchors[i].value);
            l->anchors[i].value = json_incref(value);
            l->anchors[i].nodes = count_nodes(value);
            return 0;
        }
    }
    if (l->n_anchors == l->cap_anchors) {
        size_t nc = l->cap_anchors ? l->cap_anchors * 2 : 8;
        anchor_t *na = realloc(l->anchors, nc * sizeof(*na));
        if (!na) {
            fail(l, "out of memory");
            return -1;
        }
        l->anchors = na;
        l->cap_anchors = nc;
    }
    char *dup = strdup(name);
    if (!dup) {
        fail(l, "out of memory");
        return -1;
    }
    l->anchors[l->n_anchors].name = dup;
    l->anchors[l->n_anchors].value = json_incref(value);
    l->anchors[l->n_anchors].nodes = count_nodes(value);
    l->n_anchors++;
    return 0;
}

static void clear_anchors(loader_t *l)
{
    for (size_t i = 0; i < l->n_anchors; i++) {
        free(l->anchors[i].name);
        json_decref(l->anchors[i].value);
    }
    l->n_anchors = 0;
}

static int load_node(loader_t *l, json_t **out, int depth, int *kind, int as_key);

/* Copies src's members into map where map lacks them (a merge key's semantics). */
static int merge_into(json_t *map, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)src, k, v) {
        if (!json_object_get(map, k) && json_object_set(map, k, v) != 0)
            return -1;
    }
    return 0;
}

static int load_mapping(loader_t *l, json_t **out, int depth)
{
    char *anchor = l->ev.data.mapping_start.anchor
                       ? strdup((const char *)l->ev.data.mapping_start.anchor)
                       : NULL;
    json_t *map = json_object();
    if (!map || (l->ev.data.mapping_start.anchor && !anchor)) {
        fail(l, "out of memory");
        goto err;
    }
    for (;;) {
        json_t *key = NULL;
        int kind = 0;
        int r = load_node(l, &key, depth + 1, &kind, 1);
        if (r < 0)
            goto err;
        if (r == NODE_END)
            break;
        /* Keys are strings in JSON: a scalar key keeps its text (load_node with as_key); an
         * alias to a non-string scalar gives that scalar's JSON text; a collection cannot be
         * a key. */
        char *kalloc = NULL;
        const char *ks;
        if (json_is_string(key)) {
            ks = json_string_value(key);
        } else if (json_is_array(key) || json_is_object(key)) {
            fail(l, "unsupported mapping key (a %s)", json_is_array(key) ? "sequence" : "mapping");
            json_decref(key);
            goto err;
        } else {
            kalloc = json_dumps(key, JSON_ENCODE_ANY);
            if (!kalloc) {
                json_decref(key);
                fail(l, "out of memory");
                goto err;
            }
            ks = kalloc;
        }
        int is_merge = strcmp(ks, "<<") == 0;
        json_t *val = NULL;
        int vkind = 0;
        r = load_node(l, &val, depth + 1, &vkind, 0);
        if (r != 0) {
            if (r == NODE_END)
                fail(l, "unexpected %s event", "MAPPING_END");
            json_decref(key);
            free(kalloc);
            goto err;
        }
        if (is_merge) {
            int bad = 0;
            if (json_is_object(val)) {
                bad = merge_into(map, val);
            } else if (json_is_array(val)) {
                size_t i;
                json_t *m;
                json_array_foreach(val, i, m) {
                    if (!json_is_object(m)) {
                        fail(l, "invalid '<<' sequence element %zu", i + 1);
                        bad = 1;
                        break;
                    }
                    if (merge_into(map, m) != 0) {
                        bad = 1;
                        break;
                    }
                }
            } else {
                fail(l, "invalid '<<' merge event: %s",
                     vkind == YAML_SCALAR_EVENT ? "SCALAR" : "ALIAS");
                bad = 1;
            }
            json_decref(val);
            json_decref(key);
            free(kalloc);
            if (bad) {
                fail(l, "out of memory");
                goto err;
            }
            continue;
        }
        if (json_object_set_new(map, ks, val) != 0) {
            json_decref(key);
            free(kalloc);
            fail(l, "out of memory");
            goto err;
        }
        json_decref(key);
        free(kalloc);
    }
    if (anchor && add_anchor(l, anchor, map) != 0)
        goto err;
    free(anchor);
    *out = map;
    return 0;
err:
    free(anchor);
    json_decref(map);
    return -1;
}

static int load_sequence(loader_t *l, json_t **out, int depth)
{
    char *anchor = l->ev.data.sequence_start.anchor
                       ? strdup((const char *)l->ev.data.sequence_start.anchor)
                       : NULL;
    json_t *seq = json_array();
    if (!seq || (l->ev.data.sequence_start.anchor && !anchor)) {
        fail(l, "out of memory");
        goto err;
    }
    for (;;) {
        json_t *v = NULL;
        int kind = 0;
        int r = load_node(l, &v, depth + 1, &kind, 0);
        if (r < 0)
            goto err;
        if (r == NODE_END)
            break;
        if (json_array_append_new(seq, v) != 0) {
            fail(l, "out of memory");
            goto err;
        }
    }
    if (anchor && add_anchor(l, anchor, seq) != 0)
        goto err;
    free(anchor);
    *out = seq;
    return 0;
err:
    free(anchor);
    json_decref(seq);
    return -1;
}

static int load_scalar(loader_t *l, json_t **out, int as_key)
{
    const yaml_event_t *e = &l->ev;
    const char *s = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    json_t *v = NULL;
    int r = 1;
    if (as_key) {
        r = 0;
        v = json_stringn(s, n);
    } else if (e->data.scalar.tag) {
        r = resolve_tagged((const char *)e->data.scalar.tag, s, n, &v);
        if (r < 0) {
            fail(l, "invalid '%s' value: '%.*s'", (const char *)e->data.scalar.tag,
                 (int)(n > 200 ? 200 : n), s);
            return -1;
        }
    }
    if (r == 1)
        v = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? resolve_plain(s, n)
                                                            : json_stringn(s, n);
    if (!v) {
        fail(l, "out of memory");
        return -1;
    }
    if (e->data.scalar.anchor && add_anchor(l, (const char *)e->data.scalar.anchor, v) != 0) {
        json_decref(v);
        return -1;
    }
    *out = v;
    return 0;
}

static int load_alias(loader_t *l, json_t **out)
{
    const char *name = (const char *)l->ev.data.alias.anchor;
    for (size_t i = l->n_anchors; i-- > 0;) {
        if (strcmp(l->anchors[i].name, name) != 0)
            continue;
        if (l->anchors[i].nodes > AIGW_YAML_MAX_ALIAS_NODES - l->alias_nodes) {
            fail(l, "too many alias expansions (more than %d nodes)", AIGW_YAML_MAX_ALIAS_NODES);
            return -1;
        }
        l->alias_nodes += l->anchors[i].nodes;
        /* A copy, not a shared reference: later in-place normalisation of one occurrence
         * must not change the others. */
        json_t *v = json_deep_copy(l->anchors[i].value);
        if (!v) {
            fail(l, "out of memory");
            return -1;
        }
        *out = v;
        return 0;
    }
    fail(l, "invalid reference: %s", name);
    return -1;
}

/* Reads the next node. 0 with *out (and *kind its first event's type), NODE_END at the end of
 * a collection or document, -1 on error. */
static int load_node(loader_t *l, json_t **out, int depth, int *kind, int as_key)
{
    if (depth > AIGW_YAML_MAX_DEPTH) {
        fail(l, "document nested more than %d levels deep", AIGW_YAML_MAX_DEPTH);
        return -1;
    }
    if (next_event(l) != 0)
        return -1;
    *kind = (int)l->ev.type;
    switch (l->ev.type) {
    case YAML_SCALAR_EVENT:
        return load_scalar(l, out, as_key);
    case YAML_ALIAS_EVENT:
        return load_alias(l, out);
    case YAML_MAPPING_START_EVENT:
        return load_mapping(l, out, depth);
    case YAML_SEQUENCE_START_EVENT:
        return load_sequence(l, out, depth);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return NODE_END;
    default:
        fail(l, "invalid event: %d", (int)l->ev.type);
        return -1;
    }
}

int aigw_yaml_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
    loader_t l;
    memset(&l, 0, sizeof(l));
    l.err = err;
    l.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    *out = NULL;
    if (!yaml_parser_initialize(&l.p)) {
        snprintf(err, errlen, "cannot initialize the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&l.p, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&l.p, YAML_UTF8_ENCODING);

    json_t *first = NULL;
    int ndocs = 0;
    if (next_event(&l) != 0)
        goto fail;
    if (l.ev.type != YAML_STREAM_START_EVENT) {
        fail(&l, "expecting STREAM_START event");
        goto fail;
    }
    for (;;) {
        if (next_event(&l) != 0)
            goto fail;
        if (l.ev.type == YAML_STREAM_END_EVENT)
            break;
        if (l.ev.type != YAML_DOCUMENT_START_EVENT) {
            fail(&l, "invalid event: %d", (int)l.ev.type);
            goto fail;
        }
        json_t *doc = NULL;
        int kind = 0;
        int r = load_node(&l, &doc, 1, &kind, 0);
        if (r < 0)
            goto fail;
        if (r == NODE_END) {
            fail(&l, "unexpected DOCUMENT_END event");
            goto fail;
        }
        if (next_event(&l) != 0 || l.ev.type != YAML_DOCUMENT_END_EVENT) {
            json_decref(doc);
            fail(&l, "expecting DOCUMENT_END event");
            goto fail;
        }
        if (ndocs++ == 0)
            first = doc;
        else
            json_decref(doc);
        clear_anchors(&l);
    }
    if (l.have_ev)
        yaml_event_delete(&l.ev);
    clear_anchors(&l);
    free(l.anchors);
    yaml_parser_delete(&l.p);
    *out = first ? first : json_null();
    return 0;
fail:
    if (l.have_ev)
        yaml_event_delete(&l.ev);
    clear_anchors(&l);
    free(l.anchors);
    yaml_parser_delete(&l.p);
    json_decref(first);
    return -1;
}

/* ---- emitter ------------------------------------------------------------------------------- */

static int on_write(void *data, unsigned char *buffer, size_t size)
{
    aigw_sbuf_t *b = data;
    aigw_sbuf_addn(b, (const char *)buffer, size);
    return !b->oom;
}

/* The shortest text of d that reads back as the same float (and as a float: it keeps a '.',
 * an 'e' or an exponent). */
static void format_real(double d, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEn")) {
        size_t n = strlen(buf);
        if (n + 3 <= cap)
            memcpy(buf + n, ".0", 3);
    }
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t n, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)s, (int)n, 1, 1,
                                      style))
        return -1;
    return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

/* A string: single-quoted when reading it back plain would give another value (lyaml's rule),
 * a literal block when it spans lines, else plain (libyaml falls back to a quoted style when
 * plain is not allowed). */
static int emit_string(yaml_emitter_t *em, const char *s, size_t n)
{
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    json_t *v = resolve_plain(s, n);
    if (!v)
        return -1;
    /* .inf and .nan stay strings here but are floats to lyaml: quote them for Kong too. */
    if (!json_is_string(v) || (n >= 4 && n <= 5 && (s[n - 4] == '.') &&
                               (strncasecmp(s + n - 3, "inf", 3) == 0 ||
                                (n == 4 && strncasecmp(s + 1, "nan", 3) == 0))))
        style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
    else if (memchr(s, '\n', n))
        style = YAML_LITERAL_SCALAR_STYLE;
    json_decref(v);
    return emit_scalar(em, s, n, style);
}

static int emit_node(yaml_emitter_t *em, const json_t *v, int depth)
{
    yaml_event_t ev;
    char buf[64];
    if (depth > AIGW_YAML_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)(uintptr_t)v, k, c) {
            if (emit_string(em, k, strlen(k)) != 0 || emit_node(em, c, depth + 1) != 0)
                return -1;
        }
        if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -1;
        return 0;
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                  YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            if (emit_node(em, c, depth + 1) != 0)
                return -1;
        }
        if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -1;
        return 0;
    }
    case JSON_STRING:
        return emit_string(em, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, buf, strlen(buf), YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        format_real(json_real_value(v), buf, sizeof(buf));
        return emit_scalar(em, buf, strlen(buf), YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return emit_scalar(em, "true", 4, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return emit_scalar(em, "false", 5, YAML_PLAIN_SCALAR_STYLE);
    case JSON_NULL:
    default:
        return emit_scalar(em, "~", 1, YAML_PLAIN_SCALAR_STYLE);
    }
}

char *aigw_yaml_dump(const json_t *doc)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    aigw_sbuf_t b = { 0 };
    if (!doc || !yaml_emitter_initialize(&em))
        return NULL;
    yaml_emitter_set_output(&em, on_write, &b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
             yaml_emitter_emit(&em, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
             yaml_emitter_emit(&em, &ev) && emit_node(&em, doc, 1) == 0 &&
             yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
             yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
             yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    if (!ok || b.oom) {
        free(b.p);
        return NULL;
    }
    if (!b.p)
        return strdup("");
    return b.p;
}
