/* aigwd/declarative/declarative.c: Kong's declarative configuration: parsing and flattening
 * (kong/db/schema/others/declarative_config.lua, kong/db/declarative/init.lua), import into the
 * store (declarative/import.lua load_into_db), DB-less replacement and export
 * (declarative/export.lua).
 *
 * Flattening runs in Kong's phases, each failing with Kong's error tree before the next:
 *   1. structure and schema validation of every entity (nested ones too), with references
 *      already resolved to {"id": ...};
 *   2. duplicate primary and endpoint keys, and references to entities the document lacks;
 *   3. duplicate values of other unique fields.
 * Where Kong's two-pass validation gives a nested entity's unresolvable foreign key the error
 * "value must be null", so does this; a top-level one is an "invalid reference" in phase 2.
 *
 * Error trees are built with positional keys marked "\x01<n>" (n 1-based, as Lua indexes them)
 * so that a collection's errors can mix positions and names the way Kong's Lua tables do; they
 * become JSON arrays (positions only) or objects at the end. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "common/sbuf.h"
#include "declarative/declarative.h"

#define POS_MARK '\x01'
#define NO_ITEM ((size_t)-1)
#define MAX_NEST 16
#define NIL_UUID "00000000-0000-0000-0000-000000000000"
/* Kong's namespace for declarative ids (uuid_generators._entities). */
#define KONG_UUID_NS "fd02801f-0957-4a15-a55a-c8d9606f30b5"

/* ---- small string buffer ---------------------------------------------------------------- */


/* ---- Kong's Lua rendering of error trees (Penlight pretty.write(t, "")) ------------------ */

static int lua_keyword(const char *s)
{
    static const char *const kw[] = { "and", "break", "do", "else", "elseif", "end", "false",
                                      "for", "function", "goto", "if", "in", "local", "nil",
                                      "not", "or", "repeat", "return", "then", "true", "until",
                                      "while", NULL };
    for (size_t i = 0; kw[i]; i++)
        if (strcmp(kw[i], s) == 0)
            return 1;
    return 0;
}

static int lua_ident(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return 0;
    return !lua_keyword(s);
}

/* The most '=' in a "[=*[" or "]=*]" sequence of s, or -1 when s has none. */
static int long_quote_level(const char *s, size_t n)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '[' && s[i] != ']')
            continue;
        size_t j = i + 1;
        while (j < n && s[j] == '=')
            j++;
        if (j < n && s[j] == s[i] && (int)(j - i - 1) > best)
            best = (int)(j - i - 1);
    }
    return best;
}

/* stringx.quote_string: a long bracket string when s has a newline or bracket sequence, else
 * LuaJIT's %q. */
static void lua_quote(aigw_sbuf_t *b, const char *s, size_t n)
{
    int level = long_quote_level(s, n);
    if (memchr(s, '\n', n) || level >= 0) {
        char eq[64];
        int k = level + 1 < 63 ? level + 1 : 63;
        memset(eq, '=', (size_t)k);
        eq[k] = '\0';
        aigw_sbuf_addf(b, "[%s[", eq);
        if (n && s[0] == '\n')
            aigw_sbuf_add(b, "\n");
        aigw_sbuf_addn(b, s, n);
        aigw_sbuf_addf(b, "]%s]", eq);
        return;
    }
    aigw_sbuf_add(b, "\"");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"' || c == '\\') {
            char t[2] = { '\\', c };
            aigw_sbuf_addn(b, t, 2);
        } else if (c == '\r') {
            aigw_sbuf_add(b, "\\r");
        } else if (c == '\0') {
            aigw_sbuf_add(b, i + 1 < n && isdigit((unsigned char)s[i + 1]) ? "\\000" : "\\0");
        } else {
            aigw_sbuf_addn(b, &c, 1);
        }
    }
    aigw_sbuf_add(b, "\"");
}

static int is_pos_key(const char *k) { return k[0] == POS_MARK; }

static size_t pos_of(const char *k) { return (size_t)strtoull(k + 1, NULL, 10); }

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_pos(const void *a, const void *b)
{
    size_t x = pos_of(*(const char *const *)a), y = pos_of(*(const char *const *)b);
    return x < y ? -1 : x > y;
}

static void lua_write(aigw_sbuf_t *b, const json_t *v);

/* A Lua table with integer keys 1..n (value NULL for nil) and string keys: Penlight writes the
 * sequence 1, 2, ... up to the first nil without keys, then the string keys (sorted here; Lua's
 * own order is its hash order), then the remaining integer keys as [n]=. */
static void lua_table(aigw_sbuf_t *b, const json_t *const *seq, size_t nseq, const char **skeys,
                      const json_t *const *svals, size_t ns, const size_t *rpos,
                      const json_t *const *rvals, size_t nr)
{
    int first = 1;
    aigw_sbuf_add(b, "{");
    size_t i = 0;
    for (; i < nseq && seq[i]; i++) {
        if (!first)
            aigw_sbuf_add(b, ",");
        first = 0;
        lua_write(b, seq[i]);
    }
    for (size_t k = 0; k < ns; k++) {
        if (!first)
            aigw_sbuf_add(b, ",");
        first = 0;
        if (lua_ident(skeys[k])) {
            aigw_sbuf_add(b, skeys[k]);
        } else {
            aigw_sbuf_add(b, "[");
            lua_quote(b, skeys[k], strlen(skeys[k]));
            aigw_sbuf_add(b, "]");
        }
        aigw_sbuf_add(b, "=");
        lua_write(b, svals[k]);
    }
    for (; i < nseq; i++) {
        if (!seq[i])
            continue;
        if (!first)
            aigw_sbuf_add(b, ",");
        first = 0;
        aigw_sbuf_addf(b, "[%zu]=", i + 1);
        lua_write(b, seq[i]);
    }
    for (size_t k = 0; k < nr; k++) {
        if (!first)
            aigw_sbuf_add(b, ",");
        first = 0;
        aigw_sbuf_addf(b, "[%zu]=", rpos[k]);
        lua_write(b, rvals[k]);
    }
    aigw_sbuf_add(b, "}");
}

static void lua_write_object(aigw_sbuf_t *b, const json_t *v)
{
    size_t n = json_object_size(v);
    const char **skeys = calloc(n + 1, sizeof(*skeys));
    const char **pkeys = calloc(n + 1, sizeof(*pkeys));
    const json_t **svals = calloc(n + 1, sizeof(*svals));
    const json_t **seq = NULL;
    size_t *rpos = calloc(n + 1, sizeof(*rpos));
    const json_t **rvals = calloc(n + 1, sizeof(*rvals));
    size_t ns = 0, np = 0, nseq = 0, nr = 0;
    if (!skeys || !pkeys || !svals || !rpos || !rvals) {
        b->oom = 1;
        goto out;
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)(uintptr_t)v, k, x) {
        if (is_pos_key(k))
            pkeys[np++] = k;
        else
            skeys[ns++] = k;
    }
    qsort(skeys, ns, sizeof(*skeys), cmp_str);
    qsort(pkeys, np, sizeof(*pkeys), cmp_pos);
    for (size_t i = 0; i < ns; i++)
        svals[i] = json_object_get(v, skeys[i]);
    /* The sequence part: positions 1, 2, ... without a gap. */
    while (nseq < np && pos_of(pkeys[nseq]) == nseq + 1)
        nseq++;
    seq = calloc(nseq + 1, sizeof(*seq));
    if (!seq) {
        b->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < nseq; i++)
        seq[i] = json_object_get(v, pkeys[i]);
    for (size_t i = nseq; i < np; i++) {
        rpos[nr] = pos_of(pkeys[i]);
        rvals[nr++] = json_object_get(v, pkeys[i]);
    }
    lua_table(b, seq, nseq, skeys, svals, ns, rpos, rvals, nr);
out:
    free(skeys);
    free(pkeys);
    free(svals);
    free(seq);
    free(rpos);
    free(rvals);
}

static void lua_write(aigw_sbuf_t *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        lua_write_object(b, v);
        break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        const json_t **seq = calloc(n + 1, sizeof(*seq));
        if (!seq) {
            b->oom = 1;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            seq[i] = json_is_null(e) ? NULL : e;
        }
        lua_table(b, seq, n, NULL, NULL, 0, NULL, NULL, 0);
        free(seq);
        break;
    }
    case JSON_STRING:
        lua_quote(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        aigw_sbuf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e18)
            aigw_sbuf_addf(b, "%lld", (long long)d);
        else
            aigw_sbuf_addf(b, "%.14g", d);
        break;
    }
    case JSON_TRUE:
        aigw_sbuf_add(b, "true");
        break;
    case JSON_FALSE:
        aigw_sbuf_add(b, "false");
        break;
    default:
        aigw_sbuf_add(b, "nil");
        break;
    }
}

char *aigw_declarative_lua_table(const json_t *tree)
{
    aigw_sbuf_t b = { 0 };
    lua_write(&b, tree);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p ? b.p : strdup("");
}

/* ---- error trees ------------------------------------------------------------------------ */

static void pos_key(char *buf, size_t cap, size_t pos)
{
    snprintf(buf, cap, "%c%zu", POS_MARK, pos);
}

/* The object under key in parent, created (or replacing a message) when needed. */
static json_t *child_node(json_t *parent, const char *key)
{
    json_t *c = json_object_get(parent, key);
    if (json_is_object(c))
        return c;
    c = json_object();
    json_object_set_new(parent, key, c);
    return c;
}

static json_t *child_pos(json_t *parent, size_t pos)
{
    char k[32];
    pos_key(k, sizeof(k), pos);
    return child_node(parent, k);
}

static void set_pos(json_t *parent, size_t pos, json_t *msg)
{
    char k[32];
    pos_key(k, sizeof(k), pos);
    json_object_set_new(parent, k, msg);
}

/* Merges the members of src (a validation error object) into dst. */
static void merge_errors(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)src, k, v) {
        json_t *have = json_object_get(dst, k);
        if (json_is_object(have) && json_is_object(v))
            merge_errors(have, v);
        else
            json_object_set(dst, k, v);
    }
}

/* The internal tree as Kong's `fields` JSON: a table with positions only is an array (nulls in
 * the gaps, as cjson writes a sparse Lua array), anything else an object. */
static json_t *finalize(const json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) json_array_append_new(a, finalize(e));
        return a;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    const char *k;
    json_t *e;
    int all_pos = json_object_size(v) > 0;
    size_t maxpos = 0;
    json_object_foreach((json_t *)(uintptr_t)v, k, e) {
        if (!is_pos_key(k))
            all_pos = 0;
        else if (pos_of(k) > maxpos)
            maxpos = pos_of(k);
    }
    if (all_pos) {
        json_t *a = json_array();
        for (size_t i = 1; i <= maxpos; i++) {
            char pk[32];
            pos_key(pk, sizeof(pk), i);
            json_t *x = json_object_get(v, pk);
            json_array_append_new(a, x ? finalize(x) : json_null());
        }
        return a;
    }
    json_t *o = json_object();
    json_object_foreach((json_t *)(uintptr_t)v, k, e) {
        if (is_pos_key(k))
            json_object_set_new(o, k + 1, finalize(e));
        else
            json_object_set_new(o, k, finalize(e));
    }
    return o;
}

/* Fills err from an internal error tree (borrowed). */
static void fail_with_tree(aigw_db_error_t *err, const json_t *tree)
{
    aigw_db_error_clear(err);
    err->code = AIGW_DBE_DECLARATIVE;
    err->fields = finalize(tree);
    char *lua = aigw_declarative_lua_table(tree);
    snprintf(err->message, sizeof(err->message), "declarative config is invalid: %s",
             lua ? lua : "{}");
    free(lua);
}

static void fail_parsing(aigw_db_error_t *err, const char *why)
{
    json_t *tree = json_object();
    json_object_set_new(tree, "error",
                        json_sprintf("failed parsing declarative configuration%s%s",
                                     why ? ": " : "", why ? why : ""));
    fail_with_tree(err, tree);
    json_decref(tree);
}

/* ---- UUID v5 ------------------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 4122 name-based UUID (SHA-1, version 5) of name in namespace ns (canonical text). */
static void uuid_v5(const char *ns, const char *name, size_t name_len, char out[37])
{
    unsigned char bin[16];
    size_t j = 0;
    for (const char *p = ns; *p && j < 16; p++) {
        if (*p == '-')
            continue;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        bin[j++] = (unsigned char)((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo));
        p++;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, bin, sizeof(bin)) != 1 ||
        EVP_DigestUpdate(ctx, name, name_len) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
        memset(md, 0, sizeof(md));
    }
    EVP_MD_CTX_free(ctx);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hx[md[i] >> 4];
        out[o++] = hx[md[i] & 15];
    }
    out[o] = '\0';
}

/* Kong's generate_uuid(entity, key): v5(v5(namespace, entity), key). */
static void entity_uuid(const char *entity, const char *key, size_t key_len, char out[37])
{
    char ns[37];
    uuid_v5(KONG_UUID_NS, entity, strlen(entity), ns);
    uuid_v5(ns, key, key_len, out);
}

/* ---- entity metadata ---------------------------------------------------------------------- */

/* Kong's cache_key per entity (schema.cache_key), which selects how ids are derived. Fields
 * marked '*' are auto-generated in Kong, which then gives up on a stable id; aigw falls back to
 * the endpoint key so that a credential given with its key keeps its id. */
static const struct {
    const char *entity;
    const char *const fields[5];
} kong_cache_keys[] = {
    { "plugins", { "name", "route", "service", "consumer", NULL } },
    { "targets", { "upstream", "target", NULL } },
    { "jwt_secrets", { "*key", NULL } },
    { "keyauth_credentials", { "*key", NULL } },
    { "basicauth_credentials", { "username", NULL } },
    { "acls", { "consumer", "group", NULL } },
    { "oauth2_credentials", { "*client_id", NULL } },
};

static const char *const *cache_key_of(const aigw_entity_t *e)
{
    for (size_t i = 0; i < sizeof(kong_cache_keys) / sizeof(kong_cache_keys[0]); i++)
        if (strcmp(kong_cache_keys[i].entity, e->name) == 0)
            return kong_cache_keys[i].fields;
    return NULL;
}

/* The endpoint key when it is unique (Kong's use_key), else NULL. */
static const char *unique_endpoint_key(const aigw_entity_t *e)
{
    if (!e->endpoint_key)
        return NULL;
    const aigw_field_t *f = aigw_schema_field(e->fields, e->endpoint_key);
    return f && (f->flags & AIGW_F_UNIQUE) ? e->endpoint_key : NULL;
}

static size_t entity_index(const aigw_entity_t *e)
{
    size_t i = 0;
    for (; aigw_entities[i]; i++)
        if (aigw_entities[i] == e)
            return i;
    return i;
}

static size_t n_entities(void)
{
    size_t n = 0;
    while (aigw_entities[n])
        n++;
    return n;
}

/* The first foreign field of child referencing parent, or NULL. */
static const aigw_field_t *fk_to(const aigw_entity_t *child, const aigw_entity_t *parent)
{
    for (const aigw_field_t *f = child->fields; f && f->name; f++)
        if (f->type == AIGW_FT_FOREIGN && f->reference && strcmp(f->reference, parent->name) == 0)
            return f;
    return NULL;
}

/* ---- the flattening ------------------------------------------------------------------------ */

typedef struct item {
    const aigw_entity_t *e;
    json_t *obj;                   /* owned working copy */
    size_t parent;                 /* index of the enclosing item, or NO_ITEM */
    const aigw_field_t *parent_fk; /* this entity's field pointing at the enclosing item */
    size_t depth;                  /* path length in (collection, position) pairs */
    const char *coll[MAX_NEST];    /* the path: collection names (entity names) ... */
    size_t cpos[MAX_NEST];         /* ... and 1-based positions */
    size_t *kids;                  /* nested items, in document order */
    size_t nkids, capkids;
    json_t *refs;                  /* pending reference errors (array of messages) */
    json_t *pre;                   /* errors found while resolving, over validation's */
    int derived;                   /* id derived from the item's keys (Kong's generate_ids) */
} item_t;

typedef struct flat {
    item_t *items;
    size_t n, cap;
    size_t *top;                   /* top-level items */
    size_t ntop, captop;
    json_t *errs;                  /* internal error tree */
    json_t **by_id;                /* per entity: id -> item index */
    json_t **by_key;               /* per entity: endpoint key -> item index */
    size_t nent;
    int oom;
} flat_t;

static int push_index(size_t **v, size_t *n, size_t *cap, size_t x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        size_t *nv = realloc(*v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

/* The error node of an item: errs[coll0][pos0][coll1][pos1]... */
static json_t *item_err(flat_t *f, const item_t *it)
{
    json_t *node = f->errs;
    for (size_t d = 0; d < it->depth; d++)
        node = child_pos(child_node(node, it->coll[d]), it->cpos[d]);
    return node;
}

/* The error node of a collection inside an item (or at the top level when it is NULL). */
static json_t *coll_err(flat_t *f, const item_t *parent, const char *coll)
{
    return child_node(parent ? item_err(f, parent) : f->errs, coll);
}

static int collect(flat_t *f, const aigw_entity_t *e, json_t *list, size_t parent_idx,
                   const aigw_field_t *parent_fk);

/* Moves the nested collections out of obj into items of their own. */
static int collect_children(flat_t *f, size_t idx)
{
    const aigw_entity_t *e = f->items[idx].e;
    json_t *obj = f->items[idx].obj;
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v) {
        const aigw_entity_t *ce = aigw_schema_entity(k);
        if (!ce)
            continue;
        const aigw_field_t *fk = fk_to(ce, e);
        if (!fk)
            continue;
        /* A field of the parent with the collection's name stays a field, unless it is an
         * input-only shorthand (certificates' snis), as Kong's transient fields. */
        const aigw_field_t *own = aigw_schema_field(e->fields, k);
        if (own && !(own->flags & AIGW_F_INPUT_ONLY))
            continue;
        json_incref(v);
        json_object_del(obj, k);
        int r = 0;
        if (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0)) {
            r = 0; /* an empty list */
        } else if (!json_is_array(v)) {
            json_object_set_new(item_err(f, &f->items[idx]), ce->name,
                                json_string("expected an array"));
        } else {
            /* certificates' snis may be given as names, as the admin API's shorthand. */
            if (own && ce->endpoint_key) {
                size_t i;
                json_t *el;
                json_array_foreach(v, i, el) {
                    if (json_is_string(el)) {
                        json_t *o = json_object();
                        json_object_set(o, ce->endpoint_key, el);
                        json_array_set_new(v, i, o);
                    }
                }
            }
            r = collect(f, ce, v, idx, fk);
        }
        json_decref(v);
        if (r != 0)
            return -1;
    }
    return 0;
}

static int collect(flat_t *f, const aigw_entity_t *e, json_t *list, size_t parent_idx,
                   const aigw_field_t *parent_fk)
{
    size_t i;
    json_t *el;
    json_array_foreach(list, i, el) {
        const item_t *parent = parent_idx == NO_ITEM ? NULL : &f->items[parent_idx];
        if (parent && parent->depth >= MAX_NEST) {
            set_pos(coll_err(f, parent, e->name), i + 1, json_string("nested too deeply"));
            continue;
        }
        if (!json_is_object(el)) {
            set_pos(coll_err(f, parent, e->name), i + 1, json_string("expected a record"));
            continue;
        }
        if (f->n == f->cap) {
            size_t nc = f->cap ? f->cap * 2 : 64;
            item_t *ni = realloc(f->items, nc * sizeof(*ni));
            if (!ni)
                return -1;
            f->items = ni;
            f->cap = nc;
            parent = parent_idx == NO_ITEM ? NULL : &f->items[parent_idx];
        }
        size_t idx = f->n++;
        item_t *it = &f->items[idx];
        memset(it, 0, sizeof(*it));
        it->e = e;
        it->obj = json_deep_copy(el);
        it->parent = parent_idx;
        it->parent_fk = parent_fk;
        if (parent) {
            it->depth = parent->depth;
            memcpy(it->coll, parent->coll, sizeof(it->coll));
            memcpy(it->cpos, parent->cpos, sizeof(it->cpos));
        }
        it->coll[it->depth] = e->name;
        it->cpos[it->depth] = i + 1;
        it->depth++;
        if (!it->obj)
            return -1;
        json_object_del(it->obj, "_comment");
        json_object_del(it->obj, "_ignore");
        if (parent_idx == NO_ITEM) {
            if (push_index(&f->top, &f->ntop, &f->captop, idx) != 0)
                return -1;
        } else {
            item_t *p = &f->items[parent_idx];
            if (push_index(&p->kids, &p->nkids, &p->capkids, idx) != 0)
                return -1;
        }
        if (collect_children(f, idx) != 0)
            return -1;
    }
    return 0;
}

/* The text Kong's cache key uses for a field value: strings as they are; a nested item's
 * parent by its id; absent optional fields empty. 1 with the text in b, 0 when Kong would
 * give up (an auto or missing required field, a parent without id), -1 to skip the value
 * (Kong inserts nothing for records and nulls). */
static int cache_key_part(flat_t *f, const item_t *it, const char *field, aigw_sbuf_t *b)
{
    const aigw_field_t *fd = aigw_schema_field(it->e->fields, field);
    json_t *v = json_object_get(it->obj, field);
    if (json_is_string(v)) {
        aigw_sbuf_add(b, json_string_value(v));
        return 1;
    }
    if (v)
        return -1;
    if (it->parent_fk && strcmp(it->parent_fk->name, field) == 0) {
        const char *pid = json_string_value(json_object_get(f->items[it->parent].obj, "id"));
        if (!pid)
            return 0;
        aigw_sbuf_add(b, pid);
        return 1;
    }
    if (fd && (fd->flags & AIGW_F_REQUIRED))
        return 0;
    return 1;
}

/* Kong's get_key_for_uuid_gen, with aigw's fallbacks where Kong would pick a random id. */
static char *uuid_key(flat_t *f, const item_t *it)
{
    const char *const *ck = cache_key_of(it->e);
    int use_ck = ck != NULL;
    for (size_t i = 0; ck && ck[i]; i++)
        if (ck[i][0] == '*')
            use_ck = 0;
    if (use_ck) {
        aigw_sbuf_t b = { 0 };
        aigw_sbuf_add(&b, it->e->name);
        aigw_sbuf_add(&b, ":*");
        for (size_t i = 0; ck[i]; i++) {
            aigw_sbuf_t part = { 0 };
            int r = cache_key_part(f, it, ck[i], &part);
            if (r == 0) {
                free(part.p);
                free(b.p);
                return NULL;
            }
            if (r == 1) {
                aigw_sbuf_add(&b, ":");
                aigw_sbuf_add(&b, part.p ? part.p : "");
            }
            free(part.p);
        }
        if (b.oom) {
            free(b.p);
            return NULL;
        }
        return b.p;
    }
    if (it->e->endpoint_key) {
        json_t *v = json_object_get(it->obj, it->e->endpoint_key);
        if (json_is_string(v)) {
            const aigw_field_t *fd = aigw_schema_field(it->e->fields, it->e->endpoint_key);
            aigw_sbuf_t b = { 0 };
            aigw_sbuf_add(&b, json_string_value(v));
            if (!fd || !(fd->flags & AIGW_F_UNIQUE)) {
                /* Unique within the parent: compose with the parent's key and workspace. */
                for (const aigw_field_t *x = it->e->fields; x && x->name; x++) {
                    if (x->type != AIGW_FT_FOREIGN || !(x->flags & AIGW_F_CASCADE))
                        continue;
                    if (it->parent_fk == x) {
                        const char *pid =
                            json_string_value(json_object_get(f->items[it->parent].obj, "id"));
                        aigw_sbuf_addf(&b, ":%s", pid ? pid : "");
                    } else if (json_is_string(json_object_get(it->obj, x->name))) {
                        aigw_sbuf_addf(&b, ":%s",
                                json_string_value(json_object_get(it->obj, x->name)));
                    }
                }
                aigw_sbuf_add(&b, ":*");
            }
            if (b.oom) {
                free(b.p);
                return NULL;
            }
            return b.p;
        }
    }
    /* aigw: certificates have no key in Kong (random ids); their PEM text keeps them stable. */
    if (strcmp(it->e->name, "certificates") == 0 || strcmp(it->e->name, "ca_certificates") == 0) {
        json_t *cert = json_object_get(it->obj, "cert");
        if (json_is_string(cert))
            return strdup(json_string_value(cert));
    }
    return NULL;
}

static void assign_ids(flat_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        item_t *it = &f->items[i];
        json_t *id = json_object_get(it->obj, "id");
        if (id && !json_is_null(id))
            continue;
        char uuid[37];
        char *key = uuid_key(f, it);
        if (key) {
            entity_uuid(it->e->name, key, strlen(key), uuid);
            /* Kong derives no id for certificates: aigw's own stable ids stay out of errors. */
            it->derived = strcmp(it->e->name, "certificates") != 0 &&
                          strcmp(it->e->name, "ca_certificates") != 0;
        } else {
            aigw_schema_uuid(uuid);
        }
        free(key);
        json_object_set_new(it->obj, "id", json_string(uuid));
    }
}

/* Lookup tables for references: by id, and by unique endpoint key (the first one wins). */
static void build_lookup(flat_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        item_t *it = &f->items[i];
        size_t ei = entity_index(it->e);
        if (ei >= f->nent)
            continue;
        const char *id = json_string_value(json_object_get(it->obj, "id"));
        if (id && !json_object_get(f->by_id[ei], id))
            json_object_set_new(f->by_id[ei], id, json_integer((json_int_t)i));
        const char *ek = unique_endpoint_key(it->e);
        const char *kv = ek ? json_string_value(json_object_get(it->obj, ek)) : NULL;
        if (kv && !json_object_get(f->by_key[ei], kv))
            json_object_set_new(f->by_key[ei], kv, json_integer((json_int_t)i));
    }
}

/* Kong's find_entity: by endpoint key, then by id. NO_ITEM when absent. */
static size_t find_entity(flat_t *f, const aigw_entity_t *e, const char *key)
{
    size_t ei = entity_index(e);
    if (ei >= f->nent || !key)
        return NO_ITEM;
    json_t *v = json_object_get(f->by_key[ei], key);
    if (!v)
        v = json_object_get(f->by_id[ei], key);
    return v ? (size_t)json_integer_value(v) : NO_ITEM;
}

static void set_fk(json_t *obj, const char *field, const char *id)
{
    json_t *r = json_object();
    json_object_set_new(r, "id", json_string(id));
    json_object_set_new(obj, field, r);
}

/* How Kong names an entity in its error keys (`at`): the unique endpoint key, else the id. */
static const char *item_at(const item_t *it)
{
    const char *ek = unique_endpoint_key(it->e);
    const char *kv = ek ? json_string_value(json_object_get(it->obj, ek)) : NULL;
    return kv ? kv : json_string_value(json_object_get(it->obj, "id"));
}

static void pre_error(item_t *it, const char *field, const char *msg)
{
    if (!it->pre)
        it->pre = json_object();
    json_object_set_new(it->pre, field, json_string(msg));
}

/* Resolves every foreign key of every item to {"id": ...}. Unresolvable ones: a validation
 * error on nested items, a pending reference error (phase 2) on top-level ones. */
static void resolve_refs(flat_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        item_t *it = &f->items[i];
        int nested = it->parent != NO_ITEM;
        for (const aigw_field_t *fd = it->e->fields; fd && fd->name; fd++) {
            if (fd->type != AIGW_FT_FOREIGN || !fd->reference)
                continue;
            const aigw_entity_t *ref = aigw_schema_entity(fd->reference);
            json_t *v = json_object_get(it->obj, fd->name);
            int is_parent = it->parent_fk == fd;
            if (!ref || ((!v || json_is_null(v)) && !is_parent))
                continue;
            size_t found = NO_ITEM;
            int given = v && !json_is_null(v);
            if (given) {
                const char *key = NULL;
                if (json_is_string(v))
                    key = json_string_value(v);
                else if (json_is_object(v) && json_is_string(json_object_get(v, "id")))
                    key = json_string_value(json_object_get(v, "id"));
                if (!json_is_string(v) && !json_is_object(v)) {
                    pre_error(it, fd->name, nested ? "value must be null" : "expected a string");
                    continue;
                }
                found = find_entity(f, ref, key);
                if (found == NO_ITEM) {
                    if (nested) {
                        pre_error(it, fd->name, "value must be null");
                        continue;
                    }
                    char *shown = json_is_string(v)
                                      ? strdup(json_string_value(v))
                                      : json_dumps(v, JSON_COMPACT | JSON_ESCAPE_SLASH);
                    if (!it->refs)
                        it->refs = json_array();
                    json_array_append_new(it->refs,
                                          json_sprintf("invalid reference '%s: %s' (no such "
                                                       "entry in '%s')",
                                                       fd->name, shown ? shown : "", ref->name));
                    free(shown);
                    /* The error is recorded above; the nil UUID keeps the reference
                     * well-formed so the rest of the entity is still validated and every
                     * error is reported in one answer. */
                    set_fk(it->obj, fd->name, NIL_UUID);
                    continue;
                }
            }
            if (is_parent)
                found = it->parent; /* the enclosing entity wins over what the item says */
            const char *id = json_string_value(json_object_get(f->items[found].obj, "id"));
            set_fk(it->obj, fd->name, id ? id : NIL_UUID);
        }
    }
}

static void validate_items(flat_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        item_t *it = &f->items[i];
        json_t *errors = NULL;
        if (aigw_schema_validate(it->e, it->obj, AIGW_V_INSERT, &errors) != 0) {
            if (errors)
                merge_errors(item_err(f, it), errors);
            else
                json_object_set_new(item_err(f, it), "@entity",
                                    json_pack("[s]", "entity check failed"));
        }
        json_decref(errors);
        /* As Kong merges its first pass's "value must be null" over the second's errors. */
        if (it->pre)
            merge_errors(item_err(f, it), it->pre);
    }
}

static int uniqueness_msg(json_t *node_parent, size_t pos, const char *entity,
                          const char *what, const char *value)
{
    set_pos(node_parent, pos,
            json_sprintf("uniqueness violation: '%s' entity with %s set to '%s' already declared",
                         entity, what, value));
    return 1;
}

/* Kong's populate_references, in its order: each collection in entity order, an item's nested
 * collections before the item itself. Records visit order in f->order. */
typedef struct visit {
    flat_t *f;
    json_t **seen_id;   /* per entity */
    json_t **seen_key;  /* per entity */
    size_t *order;
    size_t norder;
} visit_t;

static void register_item(visit_t *vs, size_t idx)
{
    flat_t *f = vs->f;
    item_t *it = &f->items[idx];
    size_t ei = entity_index(it->e);
    vs->order[vs->norder++] = idx;
    if (ei >= f->nent)
        return;
    size_t pos = it->cpos[it->depth - 1];
    int failed = 0;
    const char *ek = unique_endpoint_key(it->e);
    const char *kv = ek ? json_string_value(json_object_get(it->obj, ek)) : NULL;
    if (kv) {
        if (json_object_get(vs->seen_key[ei], kv)) {
            /* Kong files these under the top-level collection, at the item's own position. */
            failed = uniqueness_msg(child_node(f->errs, it->e->name), pos, it->e->name, ek, kv);
        } else {
            json_object_set_new(vs->seen_key[ei], kv, json_true());
        }
    }
    const char *id = json_string_value(json_object_get(it->obj, "id"));
    if (id) {
        if (!failed && json_object_get(vs->seen_id[ei], id)) {
            json_t *node;
            if (it->parent != NO_ITEM) {
                const item_t *p = &f->items[it->parent];
                node = child_node(child_pos(child_node(f->errs, p->e->name),
                                            p->cpos[p->depth - 1]),
                                  it->e->name);
            } else {
                node = child_node(f->errs, it->e->name);
            }
            uniqueness_msg(node, pos, it->e->name, "primary key", id);
        } else {
            json_object_set_new(vs->seen_id[ei], id, json_true());
        }
    }
    if (it->refs) {
        json_t *coll = child_node(f->errs, it->e->name);
        const char *at = item_at(it);
        json_t *list = json_object_get(coll, at ? at : "");
        if (!json_is_array(list)) {
            list = json_array();
            json_object_set_new(coll, at ? at : "", list);
        }
        json_array_extend(list, it->refs);
    }
}

static void visit_item(visit_t *vs, size_t idx)
{
    flat_t *f = vs->f;
    for (size_t e = 0; aigw_entities[e]; e++) {
        for (size_t k = 0; k < f->items[idx].nkids; k++) {
            size_t c = f->items[idx].kids[k];
            if (f->items[c].e == aigw_entities[e])
                visit_item(vs, c);
        }
    }
    register_item(vs, idx);
}

/* Other unique fields (Kong's flatten loop): the later duplicate is reported, keyed by the
 * entity's endpoint key or id. */
static void check_unique(flat_t *f, const size_t *order, size_t n)
{
    json_t *seen = json_object();
    for (size_t o = 0; o < n; o++) {
        const item_t *it = &f->items[order[o]];
        for (const aigw_field_t *fd = it->e->fields; fd && fd->name; fd++) {
            if (!(fd->flags & AIGW_F_UNIQUE) || (fd->flags & AIGW_F_PK) ||
                fd->type == AIGW_FT_FOREIGN)
                continue;
            json_t *v = json_object_get(it->obj, fd->name);
            if (!v || json_is_null(v) || json_is_object(v) || json_is_array(v))
                continue;
            char *text = json_is_string(v) ? strdup(json_string_value(v))
                                           : json_dumps(v, JSON_ENCODE_ANY);
            if (!text)
                continue;
            aigw_sbuf_t k = { 0 };
            aigw_sbuf_addf(&k, "%s\x1f%s\x1f%s", it->e->name, fd->name, text);
            if (k.p && json_object_get(seen, k.p)) {
                const char *ek = it->e->endpoint_key;
                const char *at = ek ? json_string_value(json_object_get(it->obj, ek)) : NULL;
                if (!at)
                    at = json_string_value(json_object_get(it->obj, "id"));
                json_object_set_new(
                    child_node(f->errs, it->e->name), at ? at : "",
                    json_sprintf("uniqueness violation: '%s' entity with %s set to '%s' already "
                                 "declared",
                                 it->e->name, fd->name, text));
            } else if (k.p) {
                json_object_set_new(seen, k.p, json_true());
            }
            free(k.p);
            free(text);
        }
    }
    json_decref(seen);
}

static void flat_free(flat_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        json_decref(f->items[i].obj);
        json_decref(f->items[i].refs);
        json_decref(f->items[i].pre);
        free(f->items[i].kids);
    }
    free(f->items);
    free(f->top);
    json_decref(f->errs);
    for (size_t i = 0; i < f->nent; i++) {
        if (f->by_id)
            json_decref(f->by_id[i]);
        if (f->by_key)
            json_decref(f->by_key[i]);
    }
    free(f->by_id);
    free(f->by_key);
}

/* ---- flattened errors (errors:declarative_config_flattened, POST /config?flatten_errors=1) -
 *
 * Kong walks the error tree next to the document the user sent: every entity's errors become
 * one entry {entity_type, entity_id, entity_name, entity_tags, entity, errors}, nested children
 * and one-to-one foreign entities get entries of their own, and what belongs to no entity stays
 * in `fields`. Kong visits keys in descending sorted order (it pops them from a sorted list),
 * so the entries come out in that order too. Where Kong 3.9 drops an error it cannot place
 * (a reference error keyed by name), aigw keeps it in `fields`. */

/* A key's sort class: positions (Lua integers) before names; -1 for a JSON array index. */
static int cmp_keys(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int px = is_pos_key(x), py = is_pos_key(y);
    if (px != py)
        return px ? -1 : 1;
    return px ? cmp_pos(a, b) : strcmp(x, y);
}

/* The keys of an object, sorted as above (borrowed strings; caller frees the array). */
static const char **sorted_keys(const json_t *o, size_t *n)
{
    *n = json_object_size(o);
    const char **keys = calloc(*n + 1, sizeof(*keys));
    if (!keys) {
        *n = 0;
        return NULL;
    }
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)o, k, v) keys[i++] = k;
    qsort(keys, *n, sizeof(*keys), cmp_keys);
    return keys;
}

static int is_table(const json_t *v)
{
    return json_is_object(v) || json_is_array(v);
}

/* A key as Lua's tostring prints it: positions as their number. */
static const char *key_text(const char *k)
{
    return is_pos_key(k) ? k + 1 : k;
}

static char *join_ns(const char *ns, const char *field)
{
    aigw_sbuf_t b = { 0 };
    if (ns && ns[0])
        aigw_sbuf_addf(&b, "%s.%s", ns, field);
    else
        aigw_sbuf_add(&b, field);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static void add_entity_error(const json_t *err, json_t *out)
{
    if (json_is_array(err)) {
        size_t i;
        json_t *m;
        json_array_foreach(err, i, m) add_entity_error(m, out);
    } else if (json_is_string(err)) {
        json_array_append_new(out, json_pack("{s:s, s:O}", "type", "entity", "message", err));
    }
}

static void add_field_error(const char *field, const json_t *err, json_t *out)
{
    if (json_is_array(err)) {
        size_t i;
        json_t *m;
        json_array_foreach(err, i, m) add_field_error(field, m, out);
    } else if (json_is_string(err)) {
        json_array_append_new(out, json_pack("{s:s, s:s, s:O}", "type", "field", "field", field,
                                             "message", err));
    }
}

static void categorize(const json_t *errs, const char *ns, json_t *out);

static void categorize_one(const char *key, const json_t *err, const char *ns, json_t *out)
{
    if (strcmp(key, "@entity") == 0) {
        add_entity_error(err, out);
        return;
    }
    char *field = join_ns(ns, key);
    if (!field)
        return;
    if (json_is_string(err))
        add_field_error(field, err, out);
    else if (is_table(err))
        categorize(err, field, out);
    free(field);
}

/* Kong's categorize_errors: "@entity" messages, field messages with dotted paths (array
 * elements by their 1-based position), records recursed into. */
static void categorize(const json_t *errs, const char *ns, json_t *out)
{
    if (json_is_array(errs)) {
        for (size_t i = json_array_size(errs); i-- > 0;) {
            const json_t *e = json_array_get(errs, i);
            if (json_is_null(e))
                continue; /* a hole in a Lua array */
            char k[32];
            snprintf(k, sizeof(k), "%zu", i + 1);
            categorize_one(k, e, ns, out);
        }
        return;
    }
    size_t n;
    const char **keys = sorted_keys(errs, &n);
    for (size_t i = n; keys && i-- > 0;)
        categorize_one(key_text(keys[i]), json_object_get(errs, keys[i]), ns, out);
    free(keys);
}

/* {"id": ...} for an entity whose id is a UUID, else NULL. */
static json_t *make_pk(const json_t *entity)
{
    const char *id = json_string_value(json_object_get(entity, "id"));
    return id && aigw_schema_is_uuid(id) ? json_pack("{s:s}", "id", id) : NULL;
}

/* The error node of position pos (1-based) in a collection's node, borrowed or NULL. */
static json_t *pos_err(const json_t *coll, size_t pos)
{
    if (!json_is_object(coll))
        return NULL;
    char k[32];
    pos_key(k, sizeof(k), pos);
    return json_object_get(coll, k);
}

static void add_entity_errors(const char *type, json_t *entity, json_t *err, json_t *flat,
                              int depth);

/* Kong's add_entity_errors. entity (the user's input, mutated: nested collections are taken
 * out, one-to-one foreign entities become {"id": ...}) and err (stolen) describe one entity. */
static void add_entity_errors(const char *type, json_t *entity, json_t *err, json_t *flat,
                              int depth)
{
    if (json_is_string(err)) {
        json_t *o = json_object();
        json_object_set_new(o, "@entity", err);
        err = o;
    } else if (!is_table(err) || (json_is_object(err) && json_object_size(err) == 0) ||
               (json_is_array(err) && json_array_size(err) == 0)) {
        json_decref(err);
        return;
    }
    if (!is_table(entity) || depth > MAX_NEST || !json_is_object(err)) {
        json_decref(err);
        return;
    }
    const aigw_entity_t *e = aigw_schema_entity(type);
    json_t *pk = make_pk(entity);
    /* Own foreign keys: an entity written inline becomes an entry of its own type. */
    for (const aigw_field_t *fd = e ? e->fields : NULL; fd && fd->name; fd++) {
        if (fd->type != AIGW_FT_FOREIGN || !fd->reference)
            continue;
        json_t *v = json_object_get(entity, fd->name);
        if (!is_table(v))
            continue;
        json_incref(v);
        json_t *vpk = make_pk(v);
        if (vpk)
            json_object_set_new(entity, fd->name, vpk);
        else
            json_object_del(entity, fd->name);
        json_t *ferr = json_incref(json_object_get(err, fd->name));
        json_object_del(err, fd->name);
        add_entity_errors(fd->reference, v, ferr, flat, depth + 1);
        json_decref(v);
    }
    /* Children nested under this entity: each gets the parent's key, then its own entry. */
    for (size_t ci = 0; e && aigw_entities[ci]; ci++) {
        const aigw_entity_t *ce = aigw_entities[ci];
        for (const aigw_field_t *fd = ce->fields; fd && fd->name; fd++) {
            if (fd->type != AIGW_FT_FOREIGN || !fd->reference ||
                strcmp(fd->reference, e->name) != 0)
                continue;
            json_t *v = json_object_get(entity, ce->name);
            if (!is_table(v))
                continue;
            json_incref(v);
            json_object_del(entity, ce->name);
            json_t *ferr = json_incref(json_object_get(err, ce->name));
            json_object_del(err, ce->name);
            /* aigw: an element that is no entity at all ("expected a record") stays an error
             * of the parent, at its position; Kong 3.9 drops it. */
            json_t *keep = json_object();
            if (ferr && json_is_array(v)) {
                size_t i;
                json_t *item;
                json_array_foreach(v, i, item) {
                    json_t *ierr = pos_err(ferr, i + 1);
                    if (!is_table(item)) {
                        if (ierr) {
                            char k[32];
                            pos_key(k, sizeof(k), i + 1);
                            json_object_set(keep, k, ierr);
                        }
                        continue;
                    }
                    if (json_is_object(item) && !json_object_get(item, fd->name) && pk)
                        json_object_set_new(item, fd->name, json_deep_copy(pk));
                    add_entity_errors(ce->name, item, json_incref(ierr), flat, depth + 1);
                }
            }
            if (json_object_size(keep) > 0)
                json_object_set_new(err, ce->name, keep);
            else
                json_decref(keep);
            json_decref(ferr);
            json_decref(v);
        }
    }
    json_decref(pk);
    if (json_object_size(err) == 0) {
        json_decref(err);
        return;
    }
    json_t *errors = json_array();
    categorize(err, NULL, errors);
    json_decref(err);
    if (json_array_size(errors) == 0) {
        json_decref(errors);
        return;
    }
    json_t *entry = json_object();
    size_t tl = strlen(type);
    json_object_set_new(entry, "entity_type",
                        json_stringn(type, tl && type[tl - 1] == 's' ? tl - 1 : tl));
    const char *id = json_string_value(json_object_get(entity, "id"));
    if (id && aigw_schema_is_uuid(id))
        json_object_set_new(entry, "entity_id", json_string(id));
    const char *name = json_string_value(json_object_get(entity, "name"));
    if (name && name[0])
        json_object_set_new(entry, "entity_name", json_string(name));
    json_t *tags = json_object_get(entity, "tags");
    if (json_is_array(tags)) {
        int ok = 1;
        size_t i;
        json_t *t;
        json_array_foreach(tags, i, t) ok &= json_is_string(t);
        if (ok)
            json_object_set_new(entry, "entity_tags", json_deep_copy(tags));
    }
    json_object_set(entry, "entity", entity);
    json_object_set_new(entry, "errors", errors);
    json_array_append_new(flat, entry);
}

/* The user's document as Kong holds it when reporting: phase 2 and 3 errors come after Kong
 * assigned the ids it derives, so those entities carry them. */
static json_t *flatten_input(const flat_t *f, const json_t *doc, int with_ids)
{
    json_t *in = json_deep_copy(doc);
    for (size_t i = 0; with_ids && in && i < f->n; i++) {
        const item_t *it = &f->items[i];
        if (!it->derived)
            continue;
        json_t *node = in;
        for (size_t d = 0; node && d < it->depth; d++)
            node = json_array_get(json_object_get(node, it->coll[d]), it->cpos[d] - 1);
        if (json_is_object(node) && !json_object_get(node, "id"))
            json_object_set(node, "id", json_object_get(it->obj, "id"));
    }
    return in;
}

/* Kong's flatten_errors: moves what can be attributed to an entity of the document (input,
 * mutated) from errs (the internal tree) into a new array of entries. */
static json_t *flatten_errors(json_t *input, json_t *errs)
{
    json_t *flat = json_array();
    size_t n;
    const char **keys = sorted_keys(errs, &n);
    /* Copies: a key's text goes away with its member. */
    char **types = calloc(n + 1, sizeof(*types));
    for (size_t i = 0; keys && types && i < n; i++)
        types[i] = strdup(keys[i]);
    free(keys);
    for (size_t i = n; types && i-- > 0;) {
        const char *type = types[i];
        json_t *section = type ? json_object_get(errs, type) : NULL;
        json_t *list = type ? json_object_get(input, type) : NULL;
        if (!json_is_object(section) || !json_is_array(list))
            continue;
        json_incref(section);
        json_object_del(errs, type);
        json_t *rest = json_object();
        size_t m;
        const char **ikeys = sorted_keys(section, &m);
        for (size_t j = m; ikeys && j-- > 0;) {
            json_t *ierr = json_object_get(section, ikeys[j]);
            json_t *entity =
                is_pos_key(ikeys[j]) ? json_array_get(list, pos_of(ikeys[j]) - 1) : NULL;
            if (is_table(entity))
                add_entity_errors(type, entity, json_incref(ierr), flat, 0);
            else
                json_object_set(rest, ikeys[j], ierr);
        }
        free(ikeys);
        if (json_object_size(rest) > 0)
            json_object_set_new(errs, type, rest);
        else
            json_decref(rest);
        json_decref(section);
    }
    for (size_t i = 0; types && i < n; i++)
        free(types[i]);
    free(types);
    return flat;
}

/* ---- format 1.1 / 2.1: route paths (kong/db/migrations/migrate_path_280_300.lua) ---------- */

static int is_reserved(int c)
{
    return c && strchr("!*'();:@&=+$,/?%#[]", c) != NULL;
}

/* kong.tools.uri.normalize(path, true). */
static char *normalize_path(const char *in)
{
    size_t n = strlen(in);
    if (n == 0 || strcmp(in, "/") == 0)
        return strdup(in);
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '%' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            int c = hexval(in[i + 1]) * 16 + hexval(in[i + 2]);
            if (!is_reserved(c) && c != 0) {
                s[o++] = (char)c;
            } else {
                s[o++] = '%';
                s[o++] = (char)toupper((unsigned char)in[i + 1]);
                s[o++] = (char)toupper((unsigned char)in[i + 2]);
            }
            i += 2;
        } else {
            s[o++] = in[i];
        }
    }
    s[o] = '\0';
    if (!strchr(s, '.') && !strstr(s, "//"))
        return s;
    /* Remove dot segments and merge slashes over the segments kept so far. */
    char **segs = calloc(o + 1, sizeof(*segs));
    size_t ns = 0;
    const char *u = s;
    char *outp = NULL;
    if (!segs)
        goto out;
    while (*u) {
        if (strcmp(u, "/.") == 0) {
            u = "/";
        } else if (strcmp(u, "/..") == 0) {
            u = "/";
            if (ns > 0)
                free(segs[--ns]);
        } else if (strcmp(u, ".") == 0 || strcmp(u, "..") == 0) {
            u = "";
        } else if (strncmp(u, "../", 3) == 0) {
            u += 3;
        } else if (strncmp(u, "./", 2) == 0) {
            u += 2;
        } else if (strncmp(u, "/./", 3) == 0) {
            u += 2;
        } else if (strncmp(u, "/../", 4) == 0) {
            u += 3;
            if (ns > 0)
                free(segs[--ns]);
        } else if (strncmp(u, "//", 2) == 0) {
            u += 1;
        } else {
            const char *slash = strchr(u + 1, '/');
            size_t len = slash ? (size_t)(slash - u) : strlen(u);
            segs[ns] = strndup(u, len);
            if (!segs[ns])
                goto out;
            ns++;
            u += len;
        }
    }
    {
        aigw_sbuf_t b = { 0 };
        aigw_sbuf_add(&b, "");
        for (size_t i = 0; i < ns; i++)
            aigw_sbuf_add(&b, segs[i]);
        outp = b.oom ? (free(b.p), NULL) : b.p;
    }
out:
    for (size_t i = 0; segs && i < ns; i++)
        free(segs[i]);
    free(segs);
    free(s);
    return outp;
}

/* normalize_regex: percent-decode, keeping reserved characters encoded and escaping regex
 * metacharacters. */
static char *normalize_regex(const char *in)
{
    aigw_sbuf_t b = { 0 };
    aigw_sbuf_add(&b, "~");
    size_t n = strlen(in);
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '%' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            int c = hexval(in[i + 1]) * 16 + hexval(in[i + 2]);
            if (is_reserved(c)) {
                char t[4] = { '%', (char)toupper((unsigned char)in[i + 1]),
                              (char)toupper((unsigned char)in[i + 2]), 0 };
                aigw_sbuf_add(&b, t);
            } else if (c && strchr(".^-{}\\|", c)) {
                char t[3] = { '\\', (char)c, 0 };
                aigw_sbuf_add(&b, t);
            } else {
                char t = (char)c;
                aigw_sbuf_addn(&b, &t, 1);
            }
            i += 2;
        } else {
            aigw_sbuf_addn(&b, in + i, 1);
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static void migrate_routes(json_t *routes)
{
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r) {
        json_t *paths = json_object_get(r, "paths");
        if (!json_is_array(paths))
            continue;
        size_t j;
        json_t *p;
        json_array_foreach(paths, j, p) {
            if (!json_is_string(p))
                continue;
            const char *s = json_string_value(p);
            int plain = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789.-_~/%") == strlen(s);
            char *np = plain ? normalize_path(s) : normalize_regex(s);
            if (np)
                json_array_set_new(paths, j, json_string(np));
            free(np);
        }
    }
}

/* declarative/migrations/route_path.lua: 1.1 and 2.1 documents become 3.0. */
static void migrate_format(json_t *doc)
{
    const char *v = json_string_value(json_object_get(doc, "_format_version"));
    if (!v || (strcmp(v, "1.1") != 0 && strcmp(v, "2.1") != 0))
        return;
    json_t *routes = json_object_get(doc, "routes");
    if (json_is_array(routes))
        migrate_routes(routes);
    json_t *services = json_object_get(doc, "services");
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s) {
        json_t *nr = json_object_get(s, "routes");
        if (json_is_array(nr))
            migrate_routes(nr);
    }
    json_object_set_new(doc, "_format_version", json_string("3.0"));
}

/* ---- parse ---------------------------------------------------------------------------------- */

static json_t *load_text(const char *text, size_t len, aigw_db_error_t *err)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    /* Kong tries JSON first, then YAML. */
    if (i < len && (text[i] == '{' || text[i] == '[')) {
        json_error_t jerr;
        json_t *doc = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
        if (doc)
            return doc;
    }
    json_t *doc = NULL;
    char why[512];
    if (aigw_yaml_parse(text, len, &doc, why, sizeof(why)) != 0) {
        fail_parsing(err, why);
        return NULL;
    }
    return doc;
}

/* Lua has one number type: 60.0 in a document is 60 to Kong (and cjson writes it so). Integral
 * floats become integers, everywhere in the document. */
static void normalize_numbers(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (json_is_real(x)) {
                double d = json_real_value(x);
                if (d == floor(d) && fabs(d) < 9007199254740992.0)
                    json_object_set_new(v, k, json_integer((json_int_t)d));
            } else {
                normalize_numbers(x);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (json_is_real(x)) {
                double d = json_real_value(x);
                if (d == floor(d) && fabs(d) < 9007199254740992.0)
                    json_array_set_new(v, i, json_integer((json_int_t)d));
            } else {
                normalize_numbers(x);
            }
        }
    }
}

static void check_meta(json_t *doc, json_t *errs)
{
    static const char *const versions[] = { "1.1", "2.1", "3.0", NULL };
    json_t *fv = json_object_get(doc, "_format_version");
    if (!fv || json_is_null(fv)) {
        json_object_set_new(errs, "_format_version", json_string("required field missing"));
    } else if (!json_is_string(fv)) {
        json_object_set_new(errs, "_format_version", json_string("expected a string"));
    } else {
        int ok = 0;
        for (size_t i = 0; versions[i]; i++)
            ok |= strcmp(versions[i], json_string_value(fv)) == 0;
        if (!ok)
            json_object_set_new(errs, "_format_version",
                                json_string("expected one of: 1.1, 2.1, 3.0"));
    }
    json_t *tr = json_object_get(doc, "_transform");
    if (tr && !json_is_null(tr) && !json_is_boolean(tr))
        json_object_set_new(errs, "_transform", json_string("expected a boolean"));
    json_t *c = json_object_get(doc, "_comment");
    if (c && !json_is_null(c) && !json_is_string(c))
        json_object_set_new(errs, "_comment", json_string("expected a string"));
    json_t *ig = json_object_get(doc, "_ignore");
    if (ig && !json_is_null(ig) && !json_is_array(ig))
        json_object_set_new(errs, "_ignore", json_string("expected an array"));
    json_t *ws = json_object_get(doc, "_workspace");
    if (ws && !json_is_null(ws) && !json_is_string(ws))
        json_object_set_new(errs, "_workspace", json_string("expected a string"));
}

static int is_meta_key(const char *k)
{
    return strcmp(k, "_format_version") == 0 || strcmp(k, "_transform") == 0 ||
           strcmp(k, "_comment") == 0 || strcmp(k, "_ignore") == 0 ||
           strcmp(k, "_workspace") == 0;
}

/* Fails with the error tree of f; with flat, Kong's flattened form too (phase: 1 validation,
 * 2 and 3 after Kong derived ids). */
static void fail_doc(aigw_db_error_t *err, flat_t *f, const json_t *doc, json_t **flat,
                     int phase)
{
    if (flat) {
        json_t *input = flatten_input(f, doc, phase > 1);
        *flat = input ? flatten_errors(input, f->errs) : NULL;
        json_decref(input);
    }
    fail_with_tree(err, f->errs);
}

static int parse_doc(const char *text, size_t len, json_t **out, aigw_db_error_t *err,
                     json_t **flat)
{
    *out = NULL;
    if (flat)
        *flat = NULL;
    json_t *doc = load_text(text, len, err);
    if (!doc)
        return -1;
    if (!json_is_object(doc)) {
        json_decref(doc);
        fail_parsing(err, "expected an object");
        return -1;
    }
    migrate_format(doc);
    normalize_numbers(doc);

    flat_t f;
    memset(&f, 0, sizeof(f));
    int rc = -1;
    size_t *order = NULL;
    visit_t vs;
    memset(&vs, 0, sizeof(vs));
    f.nent = n_entities();
    f.errs = json_object();
    f.by_id = calloc(f.nent + 1, sizeof(*f.by_id));
    f.by_key = calloc(f.nent + 1, sizeof(*f.by_key));
    if (!f.errs || !f.by_id || !f.by_key)
        goto oom;
    for (size_t i = 0; i < f.nent; i++) {
        f.by_id[i] = json_object();
        f.by_key[i] = json_object();
        if (!f.by_id[i] || !f.by_key[i])
            goto oom;
    }

    /* 1. the document's own fields and collections */
    check_meta(doc, f.errs);
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) {
        if (is_meta_key(k))
            continue;
        const aigw_entity_t *e = aigw_schema_entity(k);
        if (!e)
            json_object_set_new(f.errs, k, json_string("unknown field"));
        else if (!json_is_null(v) && !json_is_array(v) &&
                 !(json_is_object(v) && json_object_size(v) == 0))
            json_object_set_new(f.errs, k, json_string("expected an array"));
    }
    for (size_t e = 0; e < f.nent; e++) {
        json_t *list = json_object_get(doc, aigw_entities[e]->name);
        if (json_is_array(list) && collect(&f, aigw_entities[e], list, NO_ITEM, NULL) != 0)
            goto oom;
    }
    assign_ids(&f);
    build_lookup(&f);
    resolve_refs(&f);
    validate_items(&f);
    if (json_object_size(f.errs) > 0) {
        fail_doc(err, &f, doc, flat, 1);
        goto out;
    }

    /* 2. duplicate keys and dangling references, in Kong's visiting order */
    vs.f = &f;
    vs.order = order = calloc(f.n + 1, sizeof(*order));
    vs.seen_id = calloc(f.nent + 1, sizeof(*vs.seen_id));
    vs.seen_key = calloc(f.nent + 1, sizeof(*vs.seen_key));
    if (!order || !vs.seen_id || !vs.seen_key)
        goto oom;
    for (size_t i = 0; i < f.nent; i++) {
        vs.seen_id[i] = json_object();
        vs.seen_key[i] = json_object();
    }
    for (size_t e = 0; aigw_entities[e]; e++)
        for (size_t t = 0; t < f.ntop; t++)
            if (f.items[f.top[t]].e == aigw_entities[e])
                visit_item(&vs, f.top[t]);
    if (json_object_size(f.errs) > 0) {
        fail_doc(err, &f, doc, flat, 2);
        goto out;
    }

    /* 3. other unique fields */
    check_unique(&f, order, vs.norder);
    if (json_object_size(f.errs) > 0) {
        fail_doc(err, &f, doc, flat, 3);
        goto out;
    }

    /* The flat result, parents first. */
    json_t *res = json_object();
    json_t *fv = json_object_get(doc, "_format_version");
    json_object_set(res, "_format_version", fv);
    json_t *tr = json_object_get(doc, "_transform");
    json_object_set_new(res, "_transform", json_boolean(!json_is_false(tr)));
    for (size_t e = 0; aigw_entities[e]; e++) {
        json_t *list = NULL;
        for (size_t i = 0; i < f.n; i++) {
            if (f.items[i].e != aigw_entities[e])
                continue;
            if (!list)
                list = json_array();
            json_array_append(list, f.items[i].obj);
        }
        if (list)
            json_object_set_new(res, aigw_entities[e]->name, list);
    }
    *out = res;
    rc = 0;
    goto out;
oom:
    aigw_db_error_clear(err);
    err->code = AIGW_DBE_DATABASE;
    snprintf(err->message, sizeof(err->message), "out of memory");
out:
    if (vs.seen_id)
        for (size_t i = 0; i < f.nent; i++)
            json_decref(vs.seen_id[i]);
    if (vs.seen_key)
        for (size_t i = 0; i < f.nent; i++)
            json_decref(vs.seen_key[i]);
    free(vs.seen_id);
    free(vs.seen_key);
    free(order);
    flat_free(&f);
    json_decref(doc);
    return rc;
}

int aigw_declarative_parse(const char *text, size_t len, json_t **out, aigw_db_error_t *err)
{
    return parse_doc(text, len, out, err, NULL);
}

int aigw_declarative_parse_flat(const char *text, size_t len, json_t **out,
                                aigw_db_error_t *err, json_t **flat)
{
    return parse_doc(text, len, out, err, flat);
}

/* ---- import / replace ---------------------------------------------------------------------- */

/* Kong's `ttl = true` entities (schema.h AIGW_F_TTL). */
static int has_ttl_field(const aigw_entity_t *e)
{
    const aigw_field_t *f = aigw_schema_field(e->fields, "ttl");
    return f && (f->flags & AIGW_F_TTL);
}

static int write_all(aigw_store_t *s, const json_t *entities, int upsert, aigw_db_error_t *err)
{
    int transform = !json_is_false(json_object_get(entities, "_transform"));
    for (size_t e = 0; aigw_entities[e]; e++) {
        const aigw_entity_t *ent = aigw_entities[e];
        json_t *list = json_object_get(entities, ent->name);
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) {
            json_t *obj = json_deep_copy(item);
            if (!obj || (transform && aigw_schema_protect_secrets(ent, obj) != 0)) {
                json_decref(obj);
                aigw_db_error_clear(err);
                err->code = AIGW_DBE_DATABASE;
                snprintf(err->message, sizeof(err->message), "out of memory");
                return -1;
            }
            /* A declarative `ttl` is an expiry time (what db_export writes, what Kong's DB-less
             * strategy reads); the store takes seconds to live. Expired rows are left out, as
             * Kong never returns them. */
            json_t *ttl = json_object_get(obj, "ttl");
            if (json_is_number(ttl) && has_ttl_field(ent)) {
                double left = json_number_value(ttl) - (double)time(NULL);
                if (left < 1) {
                    json_decref(obj);
                    continue;
                }
                json_object_set_new(obj, "ttl", json_integer((json_int_t)left));
            }
            const char *id = json_string_value(json_object_get(obj, "id"));
            int r;
            json_t *have = NULL;
            int g = upsert && id ? aigw_store_get(s, ent, id, &have, err) : 1;
            json_decref(have);
            if (g < 0)
                r = -1;
            else if (g == 0)
                r = aigw_store_replace(s, ent, obj, err);
            else
                r = aigw_store_insert(s, ent, obj, err);
            json_decref(obj);
            if (r != 0)
                return -1;
        }
    }
    return 0;
}

int aigw_declarative_import(aigw_store_t *s, const json_t *entities, aigw_db_error_t *err)
{
    if (aigw_store_begin(s, err) != 0)
        return -1;
    if (write_all(s, entities, 1, err) != 0) {
        aigw_store_rollback(s);
        return -1;
    }
    return aigw_store_commit(s, err);
}

static int collect_id(const json_t *obj, void *ud)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    return id ? json_array_append_new((json_t *)ud, json_string(id)) : 0;
}

int aigw_declarative_replace(aigw_store_t *s, const json_t *entities, aigw_db_error_t *err)
{
    size_t n = n_entities();
    if (aigw_store_begin(s, err) != 0)
        return -1;
    /* Children first, so that no restricted reference stands in the way. */
    for (size_t e = n; e-- > 0;) {
        json_t *ids = json_array();
        if (!ids || aigw_store_each(s, aigw_entities[e], collect_id, ids, err) != 0) {
            json_decref(ids);
            goto fail;
        }
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id) {
            if (aigw_store_delete(s, aigw_entities[e], json_string_value(id), err) < 0) {
                json_decref(ids);
                goto fail;
            }
        }
        json_decref(ids);
    }
    if (write_all(s, entities, 0, err) != 0)
        goto fail;
    return aigw_store_commit(s, err);
fail:
    aigw_store_rollback(s);
    return -1;
}

/* ---- export -------------------------------------------------------------------------------- */

typedef struct export_ctx {
    const aigw_entity_t *e;
    json_t *list;
} export_ctx_t;

/* A copy of obj with its keys sorted (objects inside too), as a stable export. */
static json_t *sorted_copy(const json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, sorted_copy(x));
        return a;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    size_t n = json_object_size(v), i = 0;
    const char **keys = calloc(n + 1, sizeof(*keys));
    if (!keys)
        return NULL;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)(uintptr_t)v, k, x) keys[i++] = k;
    qsort(keys, n, sizeof(*keys), cmp_str);
    json_t *o = json_object();
    for (i = 0; i < n; i++)
        json_object_set_new(o, keys[i], sorted_copy(json_object_get(v, keys[i])));
    free(keys);
    return o;
}

static int export_row(const json_t *obj, void *ud)
{
    export_ctx_t *x = ud;
    json_t *row = aigw_schema_output(x->e, obj);
    if (!row)
        return -1;
    /* The store gives the seconds left; a document holds the expiry time (Kong's export). */
    json_t *ttl = json_object_get(row, "ttl");
    if (json_is_integer(ttl) && has_ttl_field(x->e))
        json_object_set_new(row, "ttl",
                            json_integer((json_int_t)time(NULL) + json_integer_value(ttl)));
    /* Foreign keys as the parent's id (export.lua: row[fk] = row[fk].id). */
    for (const aigw_field_t *f = x->e->fields; f && f->name; f++) {
        if (f->type != AIGW_FT_FOREIGN)
            continue;
        json_t *v = json_object_get(row, f->name);
        json_t *id = json_is_object(v) ? json_object_get(v, "id") : NULL;
        if (id)
            json_object_set(row, f->name, id);
    }
    json_t *sorted = sorted_copy(row);
    json_decref(row);
    if (!sorted)
        return -1;
    return json_array_append_new(x->list, sorted);
}

json_t *aigw_declarative_export(aigw_store_t *s, aigw_db_error_t *err)
{
    json_t *doc = json_object();
    if (!doc)
        return NULL;
    json_object_set_new(doc, "_format_version", json_string("3.0"));
    json_object_set_new(doc, "_transform", json_false());
    for (size_t e = 0; aigw_entities[e]; e++) {
        export_ctx_t x = { aigw_entities[e], json_array() };
        if (!x.list || aigw_store_each(s, aigw_entities[e], export_row, &x, err) != 0) {
            if (err->code == 0) {
                err->code = AIGW_DBE_DATABASE;
                snprintf(err->message, sizeof(err->message), "out of memory");
            }
            json_decref(x.list);
            json_decref(doc);
            return NULL;
        }
        if (json_array_size(x.list) > 0)
            json_object_set_new(doc, aigw_entities[e]->name, x.list);
        else
            json_decref(x.list);
    }
    return doc;
}
