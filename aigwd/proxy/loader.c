/* aigwd/proxy/loader.c: see loader.h.
 *
 * Memory: a runtime lives in a short list of large chunks (a bump allocator): the runtime
 * struct, the service and route arrays, every string and small array. The first chunk is
 * sized from the entity counts, so a typical configuration takes one malloc; freeing walks
 * the list. Strings are copied NUL-terminated, so the router may hand them to C APIs.
 *
 * Publication: a mutex guards the current pointer and is held across a load and one atomic
 * increment, so a reader can never increment a runtime that a concurrent publish already
 * released (the classic load-then-increment race); the publisher drops the old runtime
 * outside the lock. Measured on the development machine (2 x86-64 cores, -O2, no sanitizer;
 * test_loader prints the figures): current()+unref() costs about 34 ns uncontended, against
 * 15 ns for the bare atomic increment and decrement. With 4 threads doing nothing else in a
 * tight loop it costs about 350 ns per pair per thread (90 ns of wall time per pair), against
 * about 130 ns for the bare refcount: the lock and rt->refs are both shared cache lines. A
 * spinlock was measured too: faster alone (26 ns) but three times slower than the mutex when
 * threads outnumber cores. A request pays this once, next to microseconds of parsing and
 * I/O. */
#include <jansson.h>
#include <malloc.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/log.h"
#include "proxy/loader.h"
#include "proxy/router.h"
#include "plugins/plugins.h"
#include "proxy/balancer.h"
#include "proxy/certs.h"
#include "proxy/consumers.h"
#include "proxy/healthcheck.h"

#define HTTP_PROTOS (AIGW_PROTO_HTTP | AIGW_PROTO_HTTPS | AIGW_PROTO_GRPC | AIGW_PROTO_GRPCS)
#define CHUNK_MIN ((size_t)64 * 1024)
#define CHUNK_MAX ((size_t)1024 * 1024)
#define ALIGN 16

static const struct {
    const char *name;
    unsigned bit;
} protocols[] = {
    { "http", AIGW_PROTO_HTTP },
    { "https", AIGW_PROTO_HTTPS },
    { "grpc", AIGW_PROTO_GRPC },
    { "grpcs", AIGW_PROTO_GRPCS },
    { "tcp", AIGW_PROTO_TCP },
    { "tls", AIGW_PROTO_TLS },
    { "udp", AIGW_PROTO_UDP },
    { "tls_passthrough", AIGW_PROTO_TLS_PASSTHROUGH },
};

/* ---- the runtime's memory ------------------------------------------------------------------ */

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
} chunk_t;

#define CHUNK_HDR ((sizeof(chunk_t) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

typedef struct arena {
    chunk_t *head;      /* every chunk; the first one allocated is last */
    chunk_t *cur;       /* where small allocations go */
    size_t next_cap;
} arena_t;

/* The block rt->mem points at; it lives in the first chunk, next to the runtime itself. */
typedef struct rt_priv {
    aigw_runtime_t rt;
    chunk_t *chunks;
    size_t n_http;
    aigw_snapshot_t *snap;   /* a reference: entity JSON points into its text */
    uint64_t *reuse;         /* services and routes by their JSON, for the next load: see
                              * "reusing entities" below */
    size_t reuse_mask;
    size_t n_reused;         /* entities this load copied from the previous runtime */
    void *heap_svcs, *heap_routes;   /* rt->services / rt->routes when malloc'd (freed) */
} rt_priv_t;

static chunk_t *chunk_new(size_t cap)
{
    if (cap > SIZE_MAX - CHUNK_HDR)
        return NULL;
    chunk_t *c = malloc(CHUNK_HDR + cap);
    if (c) {
        c->next = NULL;
        c->cap = cap;
        c->used = 0;
    }
    return c;
}

static void chunks_free(chunk_t *c)
{
    while (c) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
}

/* n bytes aligned to align (a power of two up to ALIGN), zeroed; NULL when out of memory. */
static void *arena_alloc(arena_t *a, size_t n, size_t align)
{
    chunk_t *c = a->cur;
    size_t off = c ? (c->used + align - 1) & ~(align - 1) : 0;
    if (!c || off > c->cap || c->cap - off < n) {
        size_t cap = n > a->next_cap / 4 ? n : a->next_cap;
        chunk_t *nc = chunk_new(cap);
        if (!nc)
            return NULL;
        nc->next = a->head;
        a->head = nc;
        if (cap == n && a->cur) {
            /* A large block of its own: small allocations stay in the current chunk. */
            nc->used = n;
            void *p = (unsigned char *)nc + CHUNK_HDR;
            memset(p, 0, n);
            return p;
        }
        a->cur = c = nc;
        off = 0;
        if (a->next_cap < CHUNK_MAX)
            a->next_cap *= 2;
    }
    c->used = off + n;
    void *p = (unsigned char *)c + CHUNK_HDR + off;
    memset(p, 0, n);
    return p;
}

/* ---- parsing ------------------------------------------------------------------------------- */

typedef struct ctx {
    arena_t a;
    char *err;
    size_t errlen;
    const char *kind;       /* "service" or "route" */
    const char *id;         /* the entity being read, for messages */
    const rt_priv_t *prev;  /* the runtime in use, whose entities may be reused, or NULL */
} ctx_t;

static int fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the first failure's message, on one line (it quotes snapshot text); returns -1. */
static int fail(ctx_t *c, const char *fmt, ...)
{
    if (c->errlen && !c->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
        for (char *p = c->err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return -1;
}

static int oom(ctx_t *c)
{
    return fail(c, "out of memory loading the configuration");
}

static int bad_field(ctx_t *c, const char *field, const char *what)
{
    return fail(c, "%s %s: '%s' is not %s", c->kind, c->id, field, what);
}

enum { CASE_KEEP, CASE_LOWER, CASE_UPPER };

static int copy_str(ctx_t *c, const char *s, size_t n, int fold, aigw_str_t *out)
{
    if (n == 0) {
        *out = AIGW_STR("");
        return 0;
    }
    if (n == SIZE_MAX)
        return oom(c);
    char *p = arena_alloc(&c->a, n + 1, 1);
    if (!p)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (fold == CASE_LOWER && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        else if (fold == CASE_UPPER && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        p[i] = ch;
    }
    p[n] = '\0';
    *out = (aigw_str_t){ p, n };
    return 0;
}

static int copy_json_str(ctx_t *c, const json_t *v, int fold, aigw_str_t *out)
{
    return copy_str(c, json_string_value(v), json_string_length(v), fold, out);
}

/* An optional string: absent or null gives "" (or a copy of dflt). */
static int get_str(ctx_t *c, const json_t *o, const char *key, const char *dflt, int fold,
                   aigw_str_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return copy_str(c, dflt ? dflt : "", dflt ? strlen(dflt) : 0, fold, out);
    if (!json_is_string(v))
        return bad_field(c, key, "a string");
    return copy_json_str(c, v, fold, out);
}

static int get_bool(ctx_t *c, const json_t *o, const char *key, int dflt, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        *out = dflt;
    else if (json_is_boolean(v))
        *out = json_is_true(v);
    else
        return bad_field(c, key, "a boolean");
    return 0;
}

/* An integer in [lo, hi]; clamp: values outside are clamped instead of refused. */
static int get_int(ctx_t *c, const json_t *o, const char *key, int dflt, int lo, int hi,
                   int clamp, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return bad_field(c, key, "an integer");
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi) {
        if (!clamp)
            return fail(c, "%s %s: '%s' is out of range (%lld)", c->kind, c->id, key,
                        (long long)i);
        i = i < lo ? lo : hi;
    }
    *out = (int)i;
    return 0;
}

static int protocol_bit(const json_t *v, unsigned *bit)
{
    const char *s = json_string_value(v);
    for (size_t i = 0; s && i < sizeof(protocols) / sizeof(protocols[0]); i++) {
        if (strcmp(s, protocols[i].name) == 0) {
            *bit = protocols[i].bit;
            return 0;
        }
    }
    return -1;
}

/* An optional array of strings copied into the arena; absent or null gives none. */
static int get_str_array(ctx_t *c, const json_t *o, const char *key, int fold,
                         aigw_str_t **out, size_t *n)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return bad_field(c, key, "an array");
    size_t len = json_array_size(v);
    if (len == 0)
        return 0;
    aigw_str_t *arr = arena_alloc(&c->a, len * sizeof(*arr), _Alignof(aigw_str_t));
    if (!arr)
        return oom(c);
    for (size_t i = 0; i < len; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return bad_field(c, key, "an array of strings");
        if (copy_json_str(c, e, fold, &arr[i]) != 0)
            return -1;
    }
    *out = arr;
    *n = len;
    return 0;
}

/* The entity as compact JSON, kept for log records (Kong's serializer copies it). */
static int get_json(ctx_t *c, const json_t *o, aigw_str_t *out)
{
    char *d = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!d)
        return oom(c);
    int rc = copy_str(c, d, strlen(d), CASE_KEEP, out);
    free(d);
    return rc;
}

/* The entity's JSON for log records: its bytes in the snapshot when known (compact, as
 * the snapshot builder printed them; the runtime keeps the snapshot), else printed. */
static int entity_json(ctx_t *c, const json_t *o, aigw_str_t text, aigw_str_t *out)
{
    if (text.p) {
        *out = text;
        return 0;
    }
    return get_json(c, o, out);
}

/* The entity's id into out[37]; *id_out names it in later messages. */
static int get_id(ctx_t *c, const json_t *o, size_t index, char out[37])
{
    const json_t *v = json_object_get(o, "id");
    size_t n = json_string_length(v);
    if (!json_is_string(v) || n == 0 || n > 36)
        return fail(c, "%s #%zu has no valid 'id'", c->kind, index + 1);
    memcpy(out, json_string_value(v), n);
    out[n] = '\0';
    c->id = out;
    return 0;
}

/* text: the entity's bytes in the snapshot (kept by the runtime), or NULL to print them. */
static int load_service(ctx_t *c, const json_t *o, aigw_str_t text, size_t index,
                        aigw_rt_service_t *s)
{
    c->kind = "service";
    if (!json_is_object(o))
        return fail(c, "service #%zu is not an object", index + 1);
    if (get_id(c, o, index, s->id) != 0)
        return -1;
    const json_t *proto = json_object_get(o, "protocol");
    if (!proto || json_is_null(proto)) {
        s->protocol = AIGW_PROTO_HTTP;
    } else if (!json_is_string(proto) || protocol_bit(proto, &s->protocol) != 0) {
        return bad_field(c, "protocol", "a known protocol");
    }
    const json_t *host = json_object_get(o, "host");
    if (!json_is_string(host) || json_string_length(host) == 0)
        return bad_field(c, "host", "a host name");
    int tls_verify = -1;
    const json_t *tv = json_object_get(o, "tls_verify");
    if (tv && !json_is_null(tv)) {
        if (!json_is_boolean(tv))
            return bad_field(c, "tls_verify", "a boolean");
        tls_verify = json_is_true(tv);
    }
    s->tls_verify = tls_verify;
    if (get_str(c, o, "name", NULL, CASE_KEEP, &s->name) != 0 ||
        copy_json_str(c, host, CASE_KEEP, &s->host) != 0 ||
        get_int(c, o, "port", 80, 0, 65535, 0, &s->port) != 0 ||
        get_str(c, o, "path", NULL, CASE_KEEP, &s->path) != 0 ||
        get_int(c, o, "retries", 5, 0, 32767, 0, &s->retries) != 0 ||
        get_int(c, o, "connect_timeout", 60000, 1, INT_MAX, 0, &s->connect_timeout) != 0 ||
        get_int(c, o, "write_timeout", 60000, 1, INT_MAX, 0, &s->write_timeout) != 0 ||
        get_int(c, o, "read_timeout", 60000, 1, INT_MAX, 0, &s->read_timeout) != 0 ||
        get_bool(c, o, "enabled", 1, &s->enabled) != 0 ||
        get_int(c, o, "tls_verify_depth", -1, 0, 64, 0, &s->tls_verify_depth) != 0 ||
        entity_json(c, o, text, &s->json) != 0)
        return -1;
    return 0;
}

static int cmp_service(const void *a, const void *b)
{
    return strcmp(((const aigw_rt_service_t *)a)->id, ((const aigw_rt_service_t *)b)->id);
}

static const aigw_rt_service_t *find_service(const aigw_rt_service_t *s, size_t n,
                                             const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(id, s[mid].id);
        if (r == 0)
            return &s[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int load_headers(ctx_t *c, const json_t *o, aigw_rt_route_t *r)
{
    const json_t *h = json_object_get(o, "headers");
    if (!h || json_is_null(h))
        return 0;
    if (!json_is_object(h))
        return bad_field(c, "headers", "an object");
    size_t n = json_object_size(h);
    if (n == 0)
        return 0;
    aigw_rt_header_match_t *hm = arena_alloc(&c->a, n * sizeof(*hm), _Alignof(aigw_rt_header_match_t));
    if (!hm)
        return oom(c);
    size_t i = 0;
    const char *name;
    const json_t *values;
    json_object_foreach((json_t *)(uintptr_t)h, name, values) {
        if (!json_is_array(values))
            return bad_field(c, "headers", "an object of arrays");
        if (copy_str(c, name, strlen(name), CASE_LOWER, &hm[i].name) != 0)
            return -1;
        size_t nv = json_array_size(values);
        hm[i].n_values = nv;
        if (nv) {
            hm[i].values = arena_alloc(&c->a, nv * sizeof(aigw_str_t), _Alignof(aigw_str_t));
            if (!hm[i].values)
                return oom(c);
        }
        for (size_t k = 0; k < nv; k++) {
            const json_t *v = json_array_get(values, k);
            if (!json_is_string(v))
                return bad_field(c, "headers", "an object of arrays of strings");
            /* Lower-cased, a "~*" regex too: Kong 3.9's default router (traditional_compatible,
             * kong/router/transform.lua) lower-cases every value, patterns included. */
            if (copy_json_str(c, v, CASE_LOWER, &hm[i].values[k]) != 0)
                return -1;
        }
        i++;
    }
    r->headers = hm;
    r->n_headers = i;
    return 0;
}

/* 1 loaded, 0 skipped (its service is disabled), -1 error. */
static int load_route(ctx_t *c, const json_t *o, aigw_str_t text, size_t index,
                      const aigw_rt_service_t *svcs, size_t n_svcs, aigw_rt_route_t *r)
{
    c->kind = "route";
    if (!json_is_object(o))
        return fail(c, "route #%zu is not an object", index + 1);
    if (get_id(c, o, index, r->id) != 0)
        return -1;

    const json_t *svc = json_object_get(o, "service");
    r->service = NULL;
    if (svc && !json_is_null(svc)) {
        const json_t *sid = json_is_object(svc) ? json_object_get(svc, "id") : NULL;
        if (!json_is_string(sid))
            return bad_field(c, "service", "a reference to a service ({\"id\": ...})");
        r->service = find_service(svcs, n_svcs, json_string_value(sid));
        if (!r->service)
            return fail(c, "route %s: service %s is not in the configuration", r->id,
                        json_string_value(sid));
        if (!r->service->enabled)
            return 0;
    }

    const json_t *protos = json_object_get(o, "protocols");
    if (!protos || json_is_null(protos)) {
        r->protocols = AIGW_PROTO_HTTP | AIGW_PROTO_HTTPS;
    } else {
        if (!json_is_array(protos) || json_array_size(protos) == 0)
            return bad_field(c, "protocols", "a non-empty array");
        r->protocols = 0;
        for (size_t i = 0; i < json_array_size(protos); i++) {
            unsigned bit;
            if (protocol_bit(json_array_get(protos, i), &bit) != 0)
                return bad_field(c, "protocols", "an array of known protocols");
            r->protocols |= bit;
        }
    }

    const json_t *ph = json_object_get(o, "path_handling");
    if (!ph || json_is_null(ph))
        r->path_handling_v1 = 0;
    else if (json_is_string(ph) && strcmp(json_string_value(ph), "v0") == 0)
        r->path_handling_v1 = 0;
    else if (json_is_string(ph) && strcmp(json_string_value(ph), "v1") == 0)
        r->path_handling_v1 = 1;
    else
        return bad_field(c, "path_handling", "\"v0\" or \"v1\"");

    if (get_str(c, o, "name", NULL, CASE_KEEP, &r->name) != 0 ||
        entity_json(c, o, text, &r->json) != 0 ||
        get_str_array(c, o, "methods", CASE_UPPER, &r->methods, &r->n_methods) != 0 ||
        get_str_array(c, o, "hosts", CASE_LOWER, &r->hosts, &r->n_hosts) != 0 ||
        get_str_array(c, o, "paths", CASE_KEEP, &r->paths, &r->n_paths) != 0 ||
        get_str_array(c, o, "snis", CASE_LOWER, &r->snis, &r->n_snis) != 0 ||
        load_headers(c, o, r) != 0 ||
        get_int(c, o, "https_redirect_status_code", 426, 100, 599, 0,
                &r->https_redirect_status_code) != 0 ||
        get_int(c, o, "regex_priority", 0, INT_MIN, INT_MAX, 1, &r->regex_priority) != 0 ||
        get_bool(c, o, "strip_path", 1, &r->strip_path) != 0 ||
        get_bool(c, o, "preserve_host", 0, &r->preserve_host) != 0 ||
        get_bool(c, o, "request_buffering", 1, &r->request_buffering) != 0 ||
        get_bool(c, o, "response_buffering", 1, &r->response_buffering) != 0)
        return -1;
    return 1;
}

/* ---- reusing entities ----------------------------------------------------------------------
 * A new snapshot mostly repeats the one in use: an admin write changes one entity of
 * thousands, and parsing is most of a load (jansson reads ~50 MB/s). So a service or route
 * whose text is, byte for byte, the text of one in the runtime in use is copied from it
 * instead of parsed: the text is delimited by value_span (which follows only strings and
 * brackets), hashed, and compared in full with the old entity's JSON (the old runtime keeps
 * its snapshot). Equal bytes are the same JSON, so the copy is what parsing would give; what
 * an entity takes from others (a route's service) is resolved again. Every load indexes its
 * entities for the next one: a slot is the hash's high half and the index (+1, a bit for
 * routes), 8 bytes, the table at most 5/8 full. */

#define REUSE_ROUTE (1u << 31)

/* The length of the JSON object at p, for valid JSON (strings are skipped with memchr and
 * their escapes honoured, brackets counted), or 0 when p holds no '{' or the object does not
 * end before end. Anything it delimits is trusted only when equal to a text jansson parsed. */
static size_t value_span(const char *p, const char *end)
{
    if (p >= end || *p != '{')
        return 0;
    size_t depth = 0;
    for (const char *q = p; q < end; q++) {
        char ch = *q;
        if (ch == '"') {
            for (;;) {
                const char *e = memchr(q + 1, '"', (size_t)(end - q - 1));
                if (!e)
                    return 0;
                const char *b = e;
                while (b > q + 1 && b[-1] == '\\')
                    b--;
                q = e;
                if (((size_t)(e - b) & 1) == 0)
                    break;   /* an even run of backslashes: this quote ends the string */
            }
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (--depth == 0)
                return (size_t)(q - p) + 1;
        }
    }
    return 0;
}

/* The entity of the runtime in use whose JSON is text[0..n) (hash h), or NULL. */
static const void *reuse_find(const ctx_t *c, int route, uint64_t h, const char *text,
                              size_t n)
{
    const rt_priv_t *p = c->prev;
    if (!p || !p->reuse)
        return NULL;
    for (size_t i = (size_t)h & p->reuse_mask;; i = (i + 1) & p->reuse_mask) {
        uint64_t slot = p->reuse[i];
        if (!slot)
            return NULL;
        uint32_t v = (uint32_t)slot;
        if ((uint32_t)(slot >> 32) != (uint32_t)(h >> 32) || !(v & REUSE_ROUTE) != !route)
            continue;
        size_t idx = (v & ~REUSE_ROUTE) - 1;
        const aigw_rt_route_t *r = route ? &p->rt.routes[idx] : NULL;
        const aigw_rt_service_t *s = route ? NULL : &p->rt.services[idx];
        aigw_str_t j = r ? r->json : s->json;
        if ((r ? r->json_hash : s->json_hash) == h && j.n == n && memcmp(j.p, text, n) == 0)
            return r ? (const void *)r : (const void *)s;
    }
}

static void reuse_put(rt_priv_t *p, uint64_t h, uint32_t v)
{
    size_t i = (size_t)h & p->reuse_mask;
    while (p->reuse[i])
        i = (i + 1) & p->reuse_mask;
    p->reuse[i] = (h >> 32) << 32 | v;
}

/* Indexes p's services and routes for the next load; too many to index is not an error (the
 * next load parses everything). */
static int reuse_index(ctx_t *c, rt_priv_t *p)
{
    size_t n = p->rt.n_services + p->rt.n_routes;
    if (n == 0 || p->rt.n_services >= REUSE_ROUTE - 1 || p->rt.n_routes >= REUSE_ROUTE - 1)
        return 0;
    size_t cap = 64;
    while (cap / 8 * 5 < n)
        cap *= 2;
    p->reuse = arena_alloc(&c->a, cap * sizeof(*p->reuse), _Alignof(uint64_t));
    if (!p->reuse)
        return oom(c);
    p->reuse_mask = cap - 1;
    for (size_t i = 0; i < p->rt.n_services; i++)
        reuse_put(p, p->rt.services[i].json_hash, (uint32_t)(i + 1));
    for (size_t i = 0; i < p->rt.n_routes; i++)
        reuse_put(p, p->rt.routes[i].json_hash, (uint32_t)(i + 1) | REUSE_ROUTE);
    return 0;
}

static int copy_strs(ctx_t *c, const aigw_str_t *src, size_t n, aigw_str_t **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    aigw_str_t *arr = arena_alloc(&c->a, n * sizeof(*arr), _Alignof(aigw_str_t));
    if (!arr)
        return oom(c);
    for (size_t i = 0; i < n; i++)
        if (copy_str(c, src[i].p, src[i].n, CASE_KEEP, &arr[i]) != 0)
            return -1;
    *out = arr;
    return 0;
}

/* load_service's result for the same text, from old. */
static int reuse_service(ctx_t *c, const aigw_rt_service_t *old, aigw_str_t text,
                         aigw_rt_service_t *s)
{
    *s = *old;
    c->kind = "service";
    c->id = s->id;
    s->json = text;
    if (copy_str(c, old->name.p, old->name.n, CASE_KEEP, &s->name) != 0 ||
        copy_str(c, old->host.p, old->host.n, CASE_KEEP, &s->host) != 0 ||
        copy_str(c, old->path.p, old->path.n, CASE_KEEP, &s->path) != 0)
        return -1;
    return 0;
}

/* load_route's result for the same text, from old: 1 loaded, 0 skipped (its service is
 * disabled), -1 error. */
static int reuse_route(ctx_t *c, const aigw_rt_route_t *old, aigw_str_t text,
                       const aigw_rt_service_t *svcs, size_t n_svcs, aigw_rt_route_t *r)
{
    *r = *old;
    c->kind = "route";
    c->id = r->id;
    r->json = text;
    r->service = NULL;
    r->headers = NULL;
    r->n_headers = 0;
    if (old->service) {
        /* where the old service was, if the services did not move (one write changes one
         * entity), else looked up */
        size_t at = (size_t)(old->service - c->prev->rt.services);
        r->service = at < n_svcs && strcmp(svcs[at].id, old->service->id) == 0
                         ? &svcs[at]
                         : find_service(svcs, n_svcs, old->service->id);
        if (!r->service)
            return fail(c, "route %s: service %s is not in the configuration", r->id,
                        old->service->id);
        if (!r->service->enabled)
            return 0;
    }
    if (copy_str(c, old->name.p, old->name.n, CASE_KEEP, &r->name) != 0 ||
        copy_strs(c, old->methods, old->n_methods, &r->methods) != 0 ||
        copy_strs(c, old->hosts, old->n_hosts, &r->hosts) != 0 ||
        copy_strs(c, old->paths, old->n_paths, &r->paths) != 0 ||
        copy_strs(c, old->snis, old->n_snis, &r->snis) != 0)
        return -1;
    if (old->n_headers) {
        r->headers = arena_alloc(&c->a, old->n_headers * sizeof(*r->headers),
                                 _Alignof(aigw_rt_header_match_t));
        if (!r->headers)
            return oom(c);
        for (size_t i = 0; i < old->n_headers; i++) {
            const aigw_rt_header_match_t *o = &old->headers[i];
            aigw_rt_header_match_t *hm = &r->headers[i];
            if (copy_str(c, o->name.p, o->name.n, CASE_KEEP, &hm->name) != 0 ||
                copy_strs(c, o->values, o->n_values, &hm->values) != 0)
                return -1;
            hm->n_values = o->n_values;
        }
        r->n_headers = old->n_headers;
    }
    return 1;
}

/* An optional top-level array of entities; absent or null gives none. */
static int entity_array(ctx_t *c, const json_t *root, const char *key, const json_t **out)
{
    const json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return fail(c, "the configuration's '%s' is not an array", key);
    *out = v;
    return 0;
}

static _Atomic unsigned ssl_protocols;

void aigw_runtime_set_ssl_protocols(unsigned bits)
{
    atomic_store(&ssl_protocols, bits);
}

aigw_certs_t *aigw_runtime_current_certs(void *ud)
{
    (void)ud;
    aigw_runtime_t *rt = aigw_runtime_current();
    aigw_certs_t *c = rt ? aigw_certs_ref(rt->certs) : NULL;
    aigw_runtime_unref(rt);
    return c;
}

static void runtime_free(aigw_runtime_t *rt)
{
    rt_priv_t *p = rt->mem;
    aigw_plugins_unload(rt);
    aigw_certs_unref(rt->certs);
    aigw_balancers_unref(rt->balancers);
    aigw_consumers_free(rt->consumers);
    aigw_router_free(rt->router);
    aigw_snapshot_t *snap = p->snap;
    free(p->heap_svcs);
    free(p->heap_routes);
    chunks_free(p->chunks);
    aigw_snapshot_unref(snap);
}

/* ---- reading the snapshot ------------------------------------------------------------------ */

/* Services and routes as they are read, before they move into the runtime's arena. */
typedef struct ents {
    size_t n_reused;
    aigw_rt_service_t *svcs;
    size_t ns, cap_s;
    int svcs_done;                 /* sorted and checked: routes may refer to them */
    aigw_rt_route_t *routes;
    size_t nr, cap_r, n_http;
    aigw_rt_service_t *final_svcs; /* sorted, once svcs_done (svcs itself) */
} ents_t;

static void *grow_vec(void *v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : 64;
    if (nc > SIZE_MAX / 2 / elem)
        return NULL;
    void *nv = realloc(v, nc * elem);
    if (nv)
        *cap = nc;
    return nv;
}

/* Either o (parsed) or old (its text is text's, hash h) gives the service. text: its bytes
 * in the snapshot, or AIGW_STR_NULL. tls_into: an object whose "services" array gets the
 * services that speak TLS to their upstream (what the certificate builder reads), or NULL. */
static int add_service(ctx_t *c, ents_t *e, json_t *o, const aigw_rt_service_t *old,
                       aigw_str_t text, uint64_t h, json_t *tls_into)
{
    aigw_rt_service_t *v = grow_vec(e->svcs, &e->cap_s, e->ns, sizeof(*v));
    if (!v)
        return oom(c);
    e->svcs = v;
    v = &v[e->ns];
    memset(v, 0, sizeof(*v));
    if ((old ? reuse_service(c, old, text, v) : load_service(c, o, text, e->ns, v)) != 0)
        return -1;
    e->n_reused += old != NULL;
    v->json_hash = text.p ? h : aigw_hash_bytes(v->json.p, v->json.n);
    e->ns++;
    if (!tls_into || !(v->protocol & (AIGW_PROTO_HTTPS | AIGW_PROTO_GRPCS | AIGW_PROTO_TLS)))
        return 0;
    json_t *arr = json_object_get(tls_into, "services");
    if (!arr) {
        if (json_object_set_new(tls_into, "services", arr = json_array()) != 0 || !arr)
            return oom(c);
    }
    int rc = o ? json_array_append(arr, o)
               : json_array_append_new(arr, json_loadb(text.p, text.n, 0, NULL));
    return rc != 0 ? oom(c) : 0;
}

/* After the last service: into the arena, sorted by id for routes, duplicates refused. */
static int end_services(ctx_t *c, ents_t *e)
{
    e->svcs_done = 1;
    if (!e->ns)
        return 0;
    size_t k = 1;
    while (k < e->ns && cmp_service(&e->svcs[k - 1], &e->svcs[k]) < 0)
        k++;
    if (k < e->ns)   /* the snapshot builder writes them sorted: usually nothing to do */
        qsort(e->svcs, e->ns, sizeof(*e->svcs), cmp_service);
    for (size_t i = 1; i < e->ns; i++)
        if (strcmp(e->svcs[i - 1].id, e->svcs[i].id) == 0)
            return fail(c, "service %s appears twice in the configuration", e->svcs[i].id);
    /* the array itself becomes the runtime's (no copy: at 10k services a copy is 1.5 MB
     * more at the peak of a swap) */
    aigw_rt_service_t *fit = realloc(e->svcs, e->ns * sizeof(*e->svcs));
    e->final_svcs = e->svcs = fit ? fit : e->svcs;
    return 0;
}

/* As add_service: o parsed, or old reused. */
static int add_route(ctx_t *c, ents_t *e, const json_t *o, const aigw_rt_route_t *old,
                     aigw_str_t text, uint64_t h, size_t index)
{
    aigw_rt_route_t *v = grow_vec(e->routes, &e->cap_r, e->nr, sizeof(*v));
    if (!v)
        return oom(c);
    e->routes = v;
    v = &v[e->nr];
    memset(v, 0, sizeof(*v));
    int r = old ? reuse_route(c, old, text, e->final_svcs, e->ns, v)
                : load_route(c, o, text, index, e->final_svcs, e->ns, v);
    if (r < 0)
        return -1;
    if (r == 0) {   /* skipped (its service is disabled) */
        memset(v, 0, sizeof(*v));
        return 0;
    }
    v->json_hash = text.p ? h : aigw_hash_bytes(v->json.p, v->json.n);
    e->n_reused += old != NULL;
    if (v->protocols & HTTP_PROTOS)
        e->n_http++;
    e->nr++;
    return 0;
}

/* The snapshot's text, read one entity at a time: jansson parses each service and route on
 * its own (JSON_DISABLE_EOF_CHECK reports the bytes it took, so the entity's text is known
 * and kept for log records), the loader takes what it needs and frees it at once; every
 * other top-level value goes whole into root. The whole configuration never exists as one
 * tree: at 10k routes, building and freeing that tree was most of the load time and of the
 * memory peak during a swap. Returns 0 when read, -1 on an entity error (reported), 1 when
 * the text is not shaped as the snapshot builder writes it (not an object, a non-array
 * entity list, routes before services, a syntax error): the caller then parses it whole,
 * which reports any JSON error exactly as jansson words it. */
typedef struct reader {
    const char *p, *end;
} reader_t;

static void skip_ws(reader_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int punct(reader_t *r, char ch)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == ch) {
        r->p++;
        return 1;
    }
    return 0;
}

static json_t *next_value(reader_t *r, aigw_str_t *text)
{
    skip_ws(r);
    json_error_t jerr;
    json_t *v = json_loadb(r->p, (size_t)(r->end - r->p), JSON_DISABLE_EOF_CHECK |
                           JSON_DECODE_ANY, &jerr);
    if (!v)
        return NULL;
    *text = (aigw_str_t){ r->p, (size_t)jerr.position };
    r->p += jerr.position;
    return v;
}

static int stream_entities(ctx_t *c, ents_t *e, reader_t *r, int routes, json_t *root)
{
    if (punct(r, ']'))
        return 0;
    for (size_t i = 0;; i++) {
        skip_ws(r);
        aigw_str_t text = { r->p, value_span(r->p, r->end) };
        uint64_t h = text.n ? aigw_hash_bytes(text.p, text.n) : 0;
        const void *old = text.n ? reuse_find(c, routes, h, text.p, text.n) : NULL;
        int rc;
        if (old) {
            r->p += text.n;
            rc = routes ? add_route(c, e, NULL, old, text, h, i)
                        : add_service(c, e, NULL, old, text, h, root);
        } else {
            size_t n = text.n;
            json_t *o = next_value(r, &text);
            if (!o)
                return 1;
            if (text.n != n)
                h = aigw_hash_bytes(text.p, text.n);
            rc = routes ? add_route(c, e, o, NULL, text, h, i)
                        : add_service(c, e, o, NULL, text, h, root);
            json_decref(o);
        }
        if (rc != 0)
            return -1;
        if (punct(r, ']'))
            return 0;
        if (!punct(r, ','))
            return 1;
    }
}

static int read_streamed(ctx_t *c, ents_t *e, const aigw_snapshot_t *snap, json_t *root)
{
    reader_t r = { snap->json, snap->json + snap->len };
    int seen_s = 0, seen_r = 0;
    if (!punct(&r, '{'))
        return 1;
    if (!punct(&r, '}')) {
        for (;;) {
            aigw_str_t text;
            json_t *k = next_value(&r, &text);
            if (!json_is_string(k) || !punct(&r, ':')) {
                json_decref(k);
                return 1;
            }
            const char *key = json_string_value(k);
            int is_s = strcmp(key, "services") == 0, is_r = strcmp(key, "routes") == 0;
            int rc = 0;
            if ((is_s || is_r) && punct(&r, '[')) {
                if ((is_s && seen_s) || (is_r && (seen_r || !seen_s))) {
                    json_decref(k);
                    return 1;   /* twice, or routes first: the whole-tree path decides */
                }
                rc = stream_entities(c, e, &r, is_r, root);
                if (is_s && rc == 0)
                    rc = end_services(c, e);
                seen_s |= is_s;
                seen_r |= is_r;
            } else if (is_s || is_r) {
                rc = 1;   /* null or not an array */
            } else {
                json_t *v = next_value(&r, &text);
                rc = !v || json_object_set_new(root, key, v) != 0 ? 1 : 0;
            }
            json_decref(k);
            if (rc != 0)
                return rc;
            if (punct(&r, '}'))
                break;
            if (!punct(&r, ','))
                return 1;
        }
    }
    skip_ws(&r);
    if (r.p != r.end)
        return 1;   /* something after the object */
    if (!seen_s && end_services(c, e) != 0)
        return -1;
    return 0;
}

/* The slow path: the text parsed whole (any shape; jansson's messages for bad JSON). */
static int read_whole(ctx_t *c, ents_t *e, const aigw_snapshot_t *snap, json_t **rootp)
{
    json_error_t jerr;
    json_t *root = json_loadb(snap->json, snap->len, 0, &jerr);
    if (!root)
        return fail(c, "invalid configuration JSON at line %d, column %d: %s", jerr.line,
                    jerr.column, jerr.text);
    json_decref(*rootp);
    *rootp = root;
    if (!json_is_object(root))
        return fail(c, "the configuration is not a JSON object");
    const json_t *jsvcs, *jroutes;
    if (entity_array(c, root, "services", &jsvcs) != 0 ||
        entity_array(c, root, "routes", &jroutes) != 0)
        return -1;
    /* root keeps every service: the certificate builder finds the TLS ones there */
    for (size_t i = 0; i < json_array_size(jsvcs); i++)
        if (add_service(c, e, json_array_get(jsvcs, i), NULL, AIGW_STR_NULL, 0, NULL) != 0)
            return -1;
    if (end_services(c, e) != 0)
        return -1;
    for (size_t i = 0; i < json_array_size(jroutes); i++)
        if (add_route(c, e, json_array_get(jroutes, i), NULL, AIGW_STR_NULL, 0, i) != 0)
            return -1;
    return 0;
}

aigw_runtime_t *aigw_runtime_load(const aigw_snapshot_t *snap, char *err, size_t errlen)
{
    ctx_t c = { .err = err, .errlen = errlen, .kind = "", .id = "" };
    json_t *root = NULL;
    aigw_runtime_t *prev = NULL;
    ents_t e = { 0 };
    aigw_runtime_t *rt = NULL;
    if (errlen)
        err[0] = '\0';
    if (!snap || !snap->json) {
        fail(&c, "no configuration snapshot");
        return NULL;
    }

    /* The first chunk: the fixed part plus a guess from the snapshot's size (entity JSON
     * stays in the snapshot); more chunks if needed. */
    size_t first = sizeof(rt_priv_t) + snap->len / 4 + 4 * ALIGN + 4096;
    c.a.next_cap = CHUNK_MIN;
    c.a.head = c.a.cur = chunk_new(first);
    rt_priv_t *priv = c.a.head ? arena_alloc(&c.a, sizeof(*priv), ALIGN) : NULL;
    root = json_object();
    if (!priv || !root) {
        oom(&c);
        goto out;
    }
    /* the runtime in use: its entities may be reused, its health state carries over */
    prev = aigw_runtime_current();
    c.prev = prev ? prev->mem : NULL;
    int rc = read_streamed(&c, &e, snap, root);
    if (rc > 0) {   /* start again from the whole tree */
        free(e.svcs);
        free(e.routes);
        e = (ents_t){ 0 };
        rc = read_whole(&c, &e, snap, &root);
    }
    if (rc != 0)
        goto out;

    /* Routes in snapshot order, then stably partitioned: the HTTP ones lead (usually all of
     * them: the array is the runtime's as it is). */
    size_t n = e.nr, n_http = e.n_http;
    aigw_rt_route_t *routes = e.routes;
    if (n_http < n) {
        routes = arena_alloc(&c.a, n * sizeof(*routes), ALIGN);
        if (!routes) {
            oom(&c);
            goto out;
        }
        size_t h = 0, o2 = n_http;
        for (size_t i = 0; i < n; i++)
            routes[(e.routes[i].protocols & HTTP_PROTOS) ? h++ : o2++] = e.routes[i];
        free(e.routes);
    } else {
        priv->heap_routes = routes;
    }
    e.routes = NULL;
    aigw_rt_service_t *svcs = e.final_svcs;
    priv->heap_svcs = e.svcs;
    e.svcs = NULL;
    size_t ns = e.ns;
    rt = &priv->rt;

    atomic_init(&rt->refs, 1);
    rt->version = snap->version;
    static _Atomic uint64_t load_gen;
    rt->gen = atomic_fetch_add(&load_gen, 1) + 1;
    memcpy(rt->hash, snap->hash, sizeof(rt->hash));
    rt->hash[sizeof(rt->hash) - 1] = '\0';
    rt->services = svcs;
    rt->n_services = ns;
    rt->routes = n ? routes : NULL;
    rt->n_routes = n;
    rt->mem = priv;
    priv->n_http = n_http;
    priv->n_reused = e.n_reused;
    if (reuse_index(&c, priv) != 0)
        goto out;

    char rerr[256] = "";
    rt->router = aigw_router_build(rt->routes, n_http, rerr, sizeof(rerr));
    if (!rt->router) {
        fail(&c, "cannot build the router: %s", rerr[0] ? rerr : "unknown error");
        goto out;
    }
    rt->certs = aigw_certs_build(root, atomic_load(&ssl_protocols), rerr, sizeof(rerr));
    if (!rt->certs) {
        fail(&c, "%s", rerr);
        aigw_router_free(rt->router);
        goto out;
    }
    rt->balancers = aigw_balancers_build(root, rerr, sizeof(rerr));
    if (!rt->balancers) {
        fail(&c, "%s", rerr);
        aigw_certs_unref(rt->certs);
        aigw_router_free(rt->router);
        goto out;
    }
    rt->consumers = aigw_consumers_build(root, rerr, sizeof(rerr));
    if (!rt->consumers) {
        fail(&c, "%s", rerr);
        aigw_balancers_unref(rt->balancers);
        aigw_certs_unref(rt->certs);
        aigw_router_free(rt->router);
        goto out;
    }
    if (aigw_plugins_load(rt, json_object_get(root, "plugins"), rerr, sizeof(rerr)) != 0) {
        fail(&c, "%s", rerr);
        aigw_consumers_free(rt->consumers);
        aigw_balancers_unref(rt->balancers);
        aigw_certs_unref(rt->certs);
        aigw_router_free(rt->router);
        goto out;
    }
    /* health state and counters carry over from the configuration in use */
    aigw_balancers_inherit(rt->balancers, prev ? prev->balancers : NULL);
    aigw_runtime_unref(prev);
    priv->chunks = c.a.head;
    c.a.head = NULL;
    /* entity JSON points into the snapshot's text (the runtime only reads it) */
    priv->snap = aigw_snapshot_ref((aigw_snapshot_t *)(uintptr_t)snap);
    json_decref(root);
    return rt;

out:
    free(e.svcs);
    free(e.routes);
    json_decref(root);
    if (priv) {
        free(priv->heap_svcs);
        free(priv->heap_routes);
    }
    chunks_free(c.a.head);
    aigw_runtime_unref(prev);
    if (errlen && !err[0])
        fail(&c, "cannot load the configuration");
    return NULL;
}

aigw_runtime_t *aigw_runtime_ref(aigw_runtime_t *rt)
{
    if (rt)
        atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

void aigw_runtime_unref(aigw_runtime_t *rt)
{
    /* acq_rel: every holder's reads happen before the last one frees. */
    if (rt && atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) == 1)
        runtime_free(rt);
}

const aigw_rt_service_t *aigw_runtime_service(const aigw_runtime_t *rt, const char *id)
{
    return rt && id ? find_service(rt->services, rt->n_services, id) : NULL;
}

size_t aigw_runtime_http_routes(const aigw_runtime_t *rt)
{
    return rt ? ((const rt_priv_t *)rt->mem)->n_http : 0;
}

size_t aigw_runtime_reused(const aigw_runtime_t *rt)
{
    return rt ? ((const rt_priv_t *)rt->mem)->n_reused : 0;
}

/* ---- publication --------------------------------------------------------------------------- */

static pthread_mutex_t pub_mu = PTHREAD_MUTEX_INITIALIZER;
static aigw_runtime_t *pub_current;

void aigw_runtime_publish(aigw_runtime_t *rt)
{
    aigw_runtime_ref(rt);
    pthread_mutex_lock(&pub_mu);
    aigw_runtime_t *old = pub_current;
    pub_current = rt;
    pthread_mutex_unlock(&pub_mu);
    aigw_runtime_unref(old);   /* outside the lock: it may free a large runtime */
}

aigw_runtime_t *aigw_runtime_current(void)
{
    pthread_mutex_lock(&pub_mu);
    aigw_runtime_t *rt = aigw_runtime_ref(pub_current);
    pthread_mutex_unlock(&pub_mu);
    return rt;
}

/* ---- following snapshots ------------------------------------------------------------------- */

/* follow_mu serializes snapshot loads so that an older snapshot never replaces a newer one;
 * follow_version and follow_hash name the last snapshot tried, loaded (and a failure logged)
 * once. */
static pthread_mutex_t follow_mu = PTHREAD_MUTEX_INITIALIZER;
static long long follow_version = -1;
static char follow_hash[65];

/* Also forgets the last snapshot followed, so a later follow loads the current one again. */
void aigw_runtime_shutdown(void)
{
    aigw_runtime_publish(NULL);
    pthread_mutex_lock(&follow_mu);
    follow_version = -1;
    follow_hash[0] = '\0';
    pthread_mutex_unlock(&follow_mu);
}

static void load_current(void)
{
    pthread_mutex_lock(&follow_mu);
    /* The newest snapshot, not necessarily the one that woke us: two threads may race here
     * (follow at start and the builder), and whichever loads last must load the newest. */
    aigw_snapshot_t *snap = aigw_snapshot_current();
    if (!snap || (snap->version == follow_version && strcmp(snap->hash, follow_hash) == 0))
        goto out;
    follow_version = snap->version;
    memcpy(follow_hash, snap->hash, sizeof(follow_hash));
    follow_hash[sizeof(follow_hash) - 1] = '\0';

    char err[512];
    uint64_t t0 = uv_hrtime();
    aigw_runtime_t *rt = aigw_runtime_load(snap, err, sizeof(err));
    if (!rt) {
        AIGW_LOG(AIGW_LOG_ERR, "proxy: configuration %lld not loaded: %s; the previous "
                 "configuration stays in use", snap->version, err);
        goto out;
    }
    aigw_runtime_publish(rt);
    aigw_healthcheck_set(rt->balancers);
    AIGW_LOG(AIGW_LOG_INFO, "proxy: configuration %lld in use: %zu services, %zu routes "
             "(%zu http, %zu entities as before), %.1f ms", rt->version, rt->n_services,
             rt->n_routes, aigw_runtime_http_routes(rt), aigw_runtime_reused(rt),
             (double)(uv_hrtime() - t0) / 1e6);
    aigw_runtime_unref(rt);
out:
    aigw_snapshot_unref(snap);
    pthread_mutex_unlock(&follow_mu);
    /* Building and loading a large snapshot parses megabytes of JSON into short-lived
     * trees; give the freed pages back rather than keep the peak as resident memory. */
    malloc_trim(0);
}

static void on_snapshot(aigw_snapshot_t *snap, void *ud)
{
    (void)snap;
    (void)ud;
    load_current();
}

int aigw_runtime_follow_snapshots(void)
{
    if (aigw_snapshot_subscribe(on_snapshot, NULL) != 0)
        return -1;
    load_current();
    return 0;
}
