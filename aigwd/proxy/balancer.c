/* aigwd/proxy/balancer.c: see balancer.h.
 *
 * Layout: a set is one array of balancers plus a name index. A balancer's configuration (targets,
 * the round-robin wheel, the hashing continuum, parsed health-check settings) is written once
 * by build (and inherit, before publication) and only read afterwards. Mutable state lives
 * apart: per target a reference-counted tstate_t (atomics for what the hot path reads, a mutex
 * for the counters and the resolved addresses), which inherit shares between the old and the
 * new set; per balancer a bstate_t (round-robin position, the smooth-WRR fallback's current
 * weights under a mutex).
 *
 * Health follows lua-resty-healthcheck 3.1 (the version Kong 3.9 ships): four states (healthy,
 * mostly healthy, mostly unhealthy, unhealthy) and four 8-bit counters (successes, HTTP
 * failures, TCP failures, timeouts); a report of the kind the target already is (fully) is
 * ignored; a success clears the failure counters and a failure the success counter; a counter
 * reaching its threshold flips the target; a threshold of 0 ignores the report entirely. The
 * balancer treats "mostly healthy" as healthy and "mostly unhealthy" as unhealthy, as Kong's
 * balancer only listens to the healthy/unhealthy events. */
#include <arpa/inet.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/sbuf.h"
#include "core/log.h"
#include "proxy/balancer.h"

#define DEFAULT_PORT 8000
#define SERVER_POINTS 160           /* Kong consistent_hashing.lua */
#define MIN_CONTINUUM 1000
#define WHEEL_MAX 65536u
#define MAX_ADDRS 16
#define DNS_REQUERY_MS 30000u       /* Kong balancers.lua REQUERY_INTERVAL */

enum { ALG_RR = 0, ALG_CH, ALG_LC };
enum { HASH_NONE = 0, HASH_CONSUMER, HASH_IP, HASH_HEADER, HASH_COOKIE, HASH_PATH,
       HASH_QUERY_ARG, HASH_URI_CAPTURE };
enum { H_HEALTHY = 0, H_MOSTLY_HEALTHY, H_MOSTLY_UNHEALTHY, H_UNHEALTHY };
enum { C_SUCCESS = 0, C_HTTP, C_TCP, C_TIMEOUT };

static const char *const hash_names[] = { "none", "consumer", "ip", "header", "cookie", "path",
                                          "query_arg", "uri_capture", NULL };

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct tstate {
    _Atomic int refs;
    _Atomic int health;                  /* H_* */
    _Atomic int conns;                   /* least-connections: open tries */
    _Atomic int n_addr;                  /* -1: a name never resolved */
    _Atomic uint64_t dns_fail_until;     /* ms (uv_hrtime clock); 0 = none */
    pthread_mutex_t mu;                  /* everything below */
    unsigned char ctr[4];
    struct sockaddr_storage addrs[MAX_ADDRS];
    size_t naddrs;
    char dns_error[128];
} tstate_t;

typedef struct bstate {
    _Atomic uint64_t rr;
    pthread_mutex_t mu;                  /* cw */
    int64_t *cw;
} bstate_t;

/* ---- configuration -------------------------------------------------------------------------- */

typedef struct target {
    char *target;            /* "host:port" as stored */
    char id[37];
    char *host;              /* no brackets */
    char *hostname;          /* as written: "[::1]" for IPv6 */
    int port, weight;
    int family;              /* AF_INET/AF_INET6 for IP literals, else 0 */
    struct sockaddr_storage addr;
    double created_at;
    char *entity;            /* the target entity, compact JSON, for /health */
    tstate_t *st;
} target_t;

typedef struct checks {
    unsigned char healthy_st[125], unhealthy_st[125];   /* bitmaps of 100..999 */
    int successes, http_failures, tcp_failures, timeouts;
} checks_t;

typedef struct point {
    uint32_t pos;
    uint32_t rank;           /* Kong's sort order of the target (host, port) */
    uint32_t target;
} point_t;

struct aigw_balancer {
    char id[37];
    char *name;
    char *host_header;       /* NULL when unset */
    int algorithm;
    int hash_on[2];
    char *hash_param[2];     /* header / query_arg / uri_capture name per hash_on */
    char *cookie_name, *cookie_path;
    uint32_t slots;
    double threshold;
    int using_hc;
    checks_t passive, active_checks;
    int active_on;
    aigw_balancer_active_t active;
    char *active_path, *active_sni, *active_headers;
    target_t *targets;
    size_t n;
    uint32_t *wheel;         /* round-robin, when sum(weight)/gcd <= WHEEL_MAX */
    uint32_t wheel_n;
    point_t *points;         /* consistent-hashing, sorted by pos asc, rank desc */
    size_t npoints;
    bstate_t *bs;
};

struct aigw_balancers {
    _Atomic int refs;
    aigw_balancer_t *b;
    size_t n;
    size_t *by_name;         /* indexes sorted by name */
    size_t *by_id;           /* indexes sorted by id */
};

/* ---- small helpers -------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

static tstate_t *tstate_new(void)
{
    tstate_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return NULL;
    }
    atomic_init(&st->refs, 1);
    atomic_init(&st->health, H_HEALTHY);
    atomic_init(&st->conns, 0);
    atomic_init(&st->n_addr, -1);
    atomic_init(&st->dns_fail_until, 0);
    return st;
}

static void tstate_unref(tstate_t *st)
{
    if (st && atomic_fetch_sub(&st->refs, 1) == 1) {
        pthread_mutex_destroy(&st->mu);
        free(st);
    }
}

static int status_in(const unsigned char *set, int status)
{
    if (status < 100 || status > 999)
        return 0;
    int i = status - 100;
    return (set[i >> 3] >> (i & 7)) & 1;
}

static void status_add(unsigned char *set, long long status)
{
    if (status < 100 || status > 999)
        return;
    int i = (int)status - 100;
    set[i >> 3] |= (unsigned char)(1u << (i & 7));
}

/* ---- xxhash32 (seed 0), from the published algorithm ---------------------------------------- */

#define P1 0x9E3779B1u
#define P2 0x85EBCA77u
#define P3 0xC2B2AE3Du
#define P4 0x27D4EB2Fu
#define P5 0x165667B1u

static uint32_t rotl(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

uint32_t aigw_balancer__xxh32(const void *data, size_t n)
{
    const unsigned char *p = data, *end = p + n;
    uint32_t h;
    if (n >= 16) {
        uint32_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = 0u - P1;
        const unsigned char *limit = end - 16;
        do {
            v1 = rotl(v1 + rd32(p) * P2, 13) * P1;
            v2 = rotl(v2 + rd32(p + 4) * P2, 13) * P1;
            v3 = rotl(v3 + rd32(p + 8) * P2, 13) * P1;
            v4 = rotl(v4 + rd32(p + 12) * P2, 13) * P1;
            p += 16;
        } while (p <= limit);
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    } else {
        h = P5;
    }
    h += (uint32_t)n;
    while (p + 4 <= end) {
        h = rotl(h + rd32(p) * P3, 17) * P4;
        p += 4;
    }
    while (p < end) {
        h = rotl(h + (*p) * P5, 11) * P1;
        p++;
    }
    h ^= h >> 15;
    h *= P2;
    h ^= h >> 13;
    h *= P3;
    h ^= h >> 16;
    return h;
}

/* ---- parsing -------------------------------------------------------------------------------- */

typedef struct ctx {
    char *err;
    size_t errlen;
} ctx_t;

static int fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(ctx_t *c, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* o[k1][k2]...: NULL when absent or null. */
static const json_t *jpath(const json_t *o, const char *const *keys)
{
    for (; *keys && o; keys++) {
        if (!json_is_object(o))
            return NULL;
        o = json_object_get(o, *keys);
    }
    return (o && !json_is_null(o)) ? o : NULL;
}

static double jnum(const json_t *o, const char *const *keys, double dflt)
{
    const json_t *v = jpath(o, keys);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int copy_id(const json_t *o, char out[37])
{
    const char *s = jstr(o, "id");
    if (!s || !*s || strlen(s) > 36)
        return -1;
    aigw_strlcpy(out, s, 37);
    return 0;
}

static void statuses(const json_t *hc, const char *const *keys, const int *dflt, size_t ndflt,
                     unsigned char *set)
{
    memset(set, 0, 125);
    const json_t *v = jpath(hc, keys);
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            if (json_is_integer(e))
                status_add(set, json_integer_value(e));
        }
        return;
    }
    for (size_t i = 0; i < ndflt; i++)
        status_add(set, dflt[i]);
}

static const int active_healthy_dflt[] = { 200, 302 };
static const int active_unhealthy_dflt[] = { 429, 404, 500, 501, 502, 503, 504, 505 };
static const int passive_healthy_dflt[] = { 200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                            300, 301, 302, 303, 304, 305, 306, 307, 308 };
static const int passive_unhealthy_dflt[] = { 429, 500, 503 };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define K(...) ((const char *const[]){ __VA_ARGS__, NULL })

static int counter(const json_t *hc, const char *const *keys)
{
    double d = jnum(hc, keys, 0);
    return d < 0 ? 0 : d > 255 ? 255 : (int)d;
}

static uint64_t seconds_ms(double s)
{
    if (!(s > 0))
        return 0;
    if (s > 65535)
        s = 65535;
    uint64_t ms = (uint64_t)llround(s * 1000.0);
    return ms ? ms : 1;
}

static int parse_hash_on(ctx_t *c, const json_t *u, const char *key, int *out)
{
    const char *s = jstr(u, key);
    *out = HASH_NONE;
    if (!s)
        return 0;
    for (int i = 0; hash_names[i]; i++) {
        if (strcmp(hash_names[i], s) == 0) {
            *out = i;
            return 0;
        }
    }
    return fail(c, "upstream %s: unknown %s '%s'", jstr(u, "name"), key, s);
}

static int parse_healthchecks(ctx_t *c, aigw_balancer_t *b, const json_t *u)
{
    const json_t *hc = jpath(u, K("healthchecks"));
    b->threshold = jnum(hc, K("threshold"), 0);

    checks_t *p = &b->passive;
    statuses(hc, K("passive", "healthy", "http_statuses"), passive_healthy_dflt,
             NELEM(passive_healthy_dflt), p->healthy_st);
    statuses(hc, K("passive", "unhealthy", "http_statuses"), passive_unhealthy_dflt,
             NELEM(passive_unhealthy_dflt), p->unhealthy_st);
    p->successes = counter(hc, K("passive", "healthy", "successes"));
    p->http_failures = counter(hc, K("passive", "unhealthy", "http_failures"));
    p->tcp_failures = counter(hc, K("passive", "unhealthy", "tcp_failures"));
    p->timeouts = counter(hc, K("passive", "unhealthy", "timeouts"));

    checks_t *a = &b->active_checks;
    statuses(hc, K("active", "healthy", "http_statuses"), active_healthy_dflt,
             NELEM(active_healthy_dflt), a->healthy_st);
    statuses(hc, K("active", "unhealthy", "http_statuses"), active_unhealthy_dflt,
             NELEM(active_unhealthy_dflt), a->unhealthy_st);
    a->successes = counter(hc, K("active", "healthy", "successes"));
    a->http_failures = counter(hc, K("active", "unhealthy", "http_failures"));
    a->tcp_failures = counter(hc, K("active", "unhealthy", "tcp_failures"));
    a->timeouts = counter(hc, K("active", "unhealthy", "timeouts"));

    aigw_balancer_active_t *ac = &b->active;
    ac->healthy_interval_ms = seconds_ms(jnum(hc, K("active", "healthy", "interval"), 0));
    ac->unhealthy_interval_ms = seconds_ms(jnum(hc, K("active", "unhealthy", "interval"), 0));
    ac->timeout_ms = seconds_ms(jnum(hc, K("active", "timeout"), 1));
    if (!ac->timeout_ms)
        ac->timeout_ms = 1;
    double conc = jnum(hc, K("active", "concurrency"), 10);
    ac->concurrency = conc < 1 ? 1 : conc > 1024 ? 1024 : (int)conc;
    const json_t *v = jpath(hc, K("active", "type"));
    const char *type = json_is_string(v) ? json_string_value(v) : "http";
    if (strcmp(type, "https") == 0 || strcmp(type, "grpcs") == 0)
        ac->type = AIGW_HC_HTTPS;
    else if (strcmp(type, "tcp") == 0)
        ac->type = AIGW_HC_TCP;
    else
        ac->type = AIGW_HC_HTTP;
    v = jpath(hc, K("active", "http_path"));
    b->active_path = dup_str(json_is_string(v) ? json_string_value(v) : "/");
    v = jpath(hc, K("active", "https_sni"));
    b->active_sni = json_is_string(v) ? dup_str(json_string_value(v)) : NULL;
    v = jpath(hc, K("active", "https_verify_certificate"));
    ac->https_verify_certificate = json_is_boolean(v) ? json_is_true(v) : 1;

    aigw_sbuf_t hb = { 0 };
    aigw_sbuf_add(&hb, "");
    v = jpath(hc, K("active", "headers"));
    if (json_is_object(v)) {
        const char *name;
        const json_t *vals;
        json_object_foreach((json_t *)(uintptr_t)v, name, vals) {
            if (json_is_array(vals)) {
                size_t i;
                const json_t *e;
                json_array_foreach(vals, i, e) {
                    if (json_is_string(e))
                        aigw_sbuf_addf(&hb, "%s: %s\r\n", name, json_string_value(e));
                }
            } else if (json_is_string(vals)) {
                aigw_sbuf_addf(&hb, "%s: %s\r\n", name, json_string_value(vals));
            }
        }
    }
    if (hb.oom || !b->active_path) {
        aigw_sbuf_free(&hb);
        return fail(c, "out of memory");
    }
    b->active_headers = hb.p;
    ac->http_path = b->active_path;
    ac->https_sni = b->active_sni;
    ac->headers = b->active_headers;
    b->active_on = ac->healthy_interval_ms > 0 || ac->unhealthy_interval_ms > 0;
    /* kong/runloop/balancer/healthcheckers.lua is_upstream_using_healthcheck */
    b->using_hc = b->active_on || p->tcp_failures || p->timeouts || p->http_failures;
    return 0;
}

/* "host:port" / "[v6]:port" / "host" -> host (no brackets), hostname (as written), port. */
static int split_target(const char *s, char **host, char **hostname, int *port)
{
    const char *hend, *colon = NULL;
    const char *hs = s;
    size_t hn;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb)
            return -1;
        hend = rb + 1;
        if (*hend == ':')
            colon = hend;
        else if (*hend)
            return -1;
    } else {
        colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            colon = NULL;   /* a bare IPv6 literal */
        hend = colon ? colon : s + strlen(s);
    }
    *port = DEFAULT_PORT;
    if (colon) {
        unsigned long long v;
        if (aigw_str_to_u64(aigw_str_c(colon + 1), 65535, &v) != 0)
            return -1;
        *port = (int)v;
    }
    hn = (size_t)(hend - hs);
    if (hn == 0)
        return -1;
    *hostname = malloc(hn + 1);
    *host = malloc(hn + 1);
    if (!*hostname || !*host) {
        free(*hostname);
        free(*host);
        *hostname = *host = NULL;
        return -1;
    }
    memcpy(*hostname, hs, hn);
    (*hostname)[hn] = '\0';
    if (*hs == '[') {
        memcpy(*host, hs + 1, hn - 2);
        (*host)[hn - 2] = '\0';
    } else {
        memcpy(*host, hs, hn);
        (*host)[hn] = '\0';
    }
    return 0;
}

static int parse_ip(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return AF_INET6;
    }
    return 0;
}

static int parse_target(ctx_t *c, const char *uname, const json_t *t, target_t *out)
{
    const char *ts = jstr(t, "target");
    if (!ts)
        return fail(c, "upstream %s: a target without \"target\"", uname);
    if (copy_id(t, out->id) != 0)
        return fail(c, "upstream %s: target %s without a valid id", uname, ts);
    out->target = dup_str(ts);
    if (!out->target || split_target(ts, &out->host, &out->hostname, &out->port) != 0)
        return fail(c, "upstream %s: invalid target '%s'", uname, ts);
    const json_t *w = json_object_get(t, "weight");
    out->weight = json_is_integer(w) ? (int)json_integer_value(w) : 100;
    if (out->weight < 0 || out->weight > 65535)
        return fail(c, "upstream %s: target %s: weight out of range", uname, ts);
    out->created_at = jnum(t, K("created_at"), 0);
    out->family = parse_ip(out->host, out->port, &out->addr);
    out->entity = json_dumps(t, JSON_COMPACT);
    out->st = tstate_new();
    if (!out->entity || !out->st)
        return fail(c, "out of memory");
    if (out->family) {
        atomic_store(&out->st->n_addr, 1);
        out->st->addrs[0] = out->addr;
        out->st->naddrs = 1;
    }
    return 0;
}

/* ---- round-robin wheel and hashing continuum ------------------------------------------------ */

static uint32_t gcd32(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

typedef struct slot {
    uint32_t k;      /* (k+1)/p is the slot's virtual time */
    uint32_t p;
    uint32_t target;
} slot_t;

static int slot_cmp(const void *x, const void *y)
{
    const slot_t *a = x, *b = y;
    uint64_t l = (uint64_t)(a->k + 1) * b->p, r = (uint64_t)(b->k + 1) * a->p;
    if (l != r)
        return l < r ? -1 : 1;
    return a->target < b->target ? -1 : a->target > b->target;
}

/* The wheel holds each target weight/gcd times, interleaved by virtual finish time (stride
 * scheduling), so any window of wheel_n consecutive picks follows the weights exactly and
 * heavy targets are spread out. Larger wheels fall back to smooth WRR under a mutex. */
static int build_wheel(aigw_balancer_t *b)
{
    uint32_t g = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->targets[i].weight > 0)
            g = gcd32(g, (uint32_t)b->targets[i].weight);
    }
    if (!g)
        return 0;
    for (size_t i = 0; i < b->n; i++)
        total += (uint32_t)b->targets[i].weight / g;
    if (total > WHEEL_MAX) {
        b->bs->cw = calloc(b->n, sizeof(*b->bs->cw));
        return b->bs->cw ? 0 : -1;
    }
    slot_t *s = malloc(total * sizeof(*s));
    b->wheel = malloc(total * sizeof(*b->wheel));
    if (!s || !b->wheel) {
        free(s);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t p = (uint32_t)b->targets[i].weight / g;
        for (uint32_t j = 0; j < p; j++)
            s[k++] = (slot_t){ j, p, (uint32_t)i };
    }
    qsort(s, total, sizeof(*s), slot_cmp);
    for (size_t i = 0; i < total; i++)
        b->wheel[i] = s[i].target;
    b->wheel_n = (uint32_t)total;
    free(s);
    return 0;
}

static int rank_cmp(const void *x, const void *y, void *arg)
{
    const aigw_balancer_t *bal = arg;
    const target_t *a = &bal->targets[*(const uint32_t *)x];
    const target_t *b = &bal->targets[*(const uint32_t *)y];
    int c = strcmp(a->hostname, b->hostname);
    if (c)
        return c;
    return (a->port > b->port) - (a->port < b->port);
}

static int point_cmp(const void *x, const void *y)
{
    const point_t *a = x, *b = y;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    return (a->rank < b->rank) - (a->rank > b->rank);   /* rank descending */
}

/* Kong consistent_hashing.lua afterHostUpdate: targets in (host, port) order, each with
 * floor(weight / total * targets * 160) points (at least 1 when weight > 0), point i at
 * xxhash32("<host>::<port> <i>") % slots. Kong pushes a colliding point to an extra entry;
 * here both points stay at that position and the earlier target owns it, so that removing a
 * target never moves another target's points. */
static int build_continuum(aigw_balancer_t *b)
{
    uint64_t total_w = 0;
    for (size_t i = 0; i < b->n; i++)
        total_w += (uint64_t)b->targets[i].weight;
    if (!total_w || !b->n)
        return 0;
    uint32_t *order = malloc(b->n * sizeof(*order));
    if (!order)
        return -1;
    for (size_t i = 0; i < b->n; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, b->n, sizeof(*order), rank_cmp, b);

    size_t cap = 0;
    uint32_t *entries = malloc(b->n * sizeof(*entries));
    if (!entries) {
        free(order);
        return -1;
    }
    for (size_t r = 0; r < b->n; r++) {
        const target_t *t = &b->targets[order[r]];
        double prop = (double)t->weight / (double)total_w;
        double e = floor(prop * (double)b->n * SERVER_POINTS);
        uint32_t n = e > b->slots ? b->slots : (uint32_t)e;
        if (t->weight > 0 && n == 0)
            n = 1;
        entries[r] = n;
        cap += n;
    }
    b->points = malloc((cap ? cap : 1) * sizeof(*b->points));
    if (!b->points) {
        free(order);
        free(entries);
        return -1;
    }
    char name[320];
    for (size_t r = 0; r < b->n; r++) {
        const target_t *t = &b->targets[order[r]];
        for (uint32_t i = 1; i <= entries[r]; i++) {
            int len = snprintf(name, sizeof(name), "%s::%d %u", t->hostname, t->port, i);
            if (len < 0 || (size_t)len >= sizeof(name))
                len = (int)strnlen(name, sizeof(name) - 1);
            uint32_t h = aigw_balancer__xxh32(name, (size_t)len);
            b->points[b->npoints++] = (point_t){ h % b->slots, (uint32_t)r, order[r] };
        }
    }
    qsort(b->points, b->npoints, sizeof(*b->points), point_cmp);
    free(order);
    free(entries);
    return 0;
}

/* ---- build ---------------------------------------------------------------------------------- */

static void balancer_fini(aigw_balancer_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        target_t *t = &b->targets[i];
        free(t->target);
        free(t->host);
        free(t->hostname);
        free(t->entity);
        tstate_unref(t->st);
    }
    free(b->targets);
    free(b->name);
    free(b->host_header);
    free(b->hash_param[0]);
    free(b->hash_param[1]);
    free(b->cookie_name);
    free(b->cookie_path);
    free(b->active_path);
    free(b->active_sni);
    free(b->active_headers);
    free(b->wheel);
    free(b->points);
    if (b->bs) {
        pthread_mutex_destroy(&b->bs->mu);
        free(b->bs->cw);
        free(b->bs);
    }
}

static void set_free(aigw_balancers_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        balancer_fini(&s->b[i]);
    free(s->b);
    free(s->by_name);
    free(s->by_id);
    free(s);
}

static int parse_upstream(ctx_t *c, aigw_balancer_t *b, const json_t *u, size_t index)
{
    const char *name = jstr(u, "name");
    if (!name || !*name)
        return fail(c, "upstreams[%zu]: missing name", index);
    if (copy_id(u, b->id) != 0)
        return fail(c, "upstream %s: missing or invalid id", name);
    b->name = dup_str(name);
    if (!b->name || !(b->bs = calloc(1, sizeof(*b->bs))))
        return fail(c, "out of memory");
    if (pthread_mutex_init(&b->bs->mu, NULL) != 0) {
        free(b->bs);
        b->bs = NULL;
        return fail(c, "out of memory");
    }
    atomic_init(&b->bs->rr, 0);
    const char *hh = jstr(u, "host_header");
    if (hh && !(b->host_header = dup_str(hh)))
        return fail(c, "out of memory");
    const char *alg = jstr(u, "algorithm");
    if (!alg || strcmp(alg, "round-robin") == 0)
        b->algorithm = ALG_RR;
    else if (strcmp(alg, "consistent-hashing") == 0)
        b->algorithm = ALG_CH;
    else if (strcmp(alg, "least-connections") == 0 || strcmp(alg, "latency") == 0)
        b->algorithm = ALG_LC;
    else
        return fail(c, "upstream %s: unknown algorithm '%s'", name, alg);
    if (parse_hash_on(c, u, "hash_on", &b->hash_on[0]) != 0 ||
        parse_hash_on(c, u, "hash_fallback", &b->hash_on[1]) != 0)
        return -1;
    static const char *const pfx[2] = { "hash_on", "hash_fallback" };
    for (int k = 0; k < 2; k++) {
        const char *suffix = NULL;
        if (b->hash_on[k] == HASH_HEADER)
            suffix = "_header";
        else if (b->hash_on[k] == HASH_QUERY_ARG)
            suffix = "_query_arg";
        else if (b->hash_on[k] == HASH_URI_CAPTURE)
            suffix = "_uri_capture";
        if (!suffix)
            continue;
        char key[64];
        snprintf(key, sizeof(key), "%s%s", pfx[k], suffix);
        const char *v = jstr(u, key);
        b->hash_param[k] = dup_str(v ? v : "");
        if (!b->hash_param[k])
            return fail(c, "out of memory");
    }
    const char *ck = jstr(u, "hash_on_cookie"), *cp = jstr(u, "hash_on_cookie_path");
    b->cookie_name = dup_str(ck ? ck : "");
    b->cookie_path = dup_str(cp ? cp : "/");
    if (!b->cookie_name || !b->cookie_path)
        return fail(c, "out of memory");
    double slots = jnum(u, K("slots"), 10000);
    /* Kong: the continuum has `slots` points when 1000 <= slots <= 2^32, else 1000 */
    b->slots = (slots >= MIN_CONTINUUM && slots <= 4294967295.0) ? (uint32_t)slots
                                                                 : MIN_CONTINUUM;
    return parse_healthchecks(c, b, u);
}

static int name_cmp(const void *x, const void *y, void *arg)
{
    const aigw_balancers_t *s = arg;
    return strcmp(s->b[*(const size_t *)x].name, s->b[*(const size_t *)y].name);
}

static int id_cmp(const void *x, const void *y, void *arg)
{
    const aigw_balancers_t *s = arg;
    return strcmp(s->b[*(const size_t *)x].id, s->b[*(const size_t *)y].id);
}

static int created_cmp(const void *x, const void *y)
{
    const target_t *a = x, *b = y;
    if (a->created_at != b->created_at)
        return a->created_at < b->created_at ? -1 : 1;
    return strcmp(a->id, b->id);
}

aigw_balancers_t *aigw_balancers_build(const json_t *root, char *err, size_t errlen)
{
    ctx_t c = { err, errlen };
    if (err && errlen)
        err[0] = '\0';
    aigw_balancers_t *s = calloc(1, sizeof(*s));
    if (!s) {
        fail(&c, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    const json_t *ups = json_object_get(root, "upstreams");
    const json_t *tgs = json_object_get(root, "targets");
    if (ups && !json_is_null(ups) && !json_is_array(ups)) {
        fail(&c, "\"upstreams\" is not an array");
        goto bad;
    }
    if (tgs && !json_is_null(tgs) && !json_is_array(tgs)) {
        fail(&c, "\"targets\" is not an array");
        goto bad;
    }
    size_t nu = json_array_size(ups), nt = json_array_size(tgs);
    if (nu) {
        s->b = calloc(nu, sizeof(*s->b));
        s->by_name = malloc(nu * sizeof(*s->by_name));
        s->by_id = malloc(nu * sizeof(*s->by_id));
        if (!s->b || !s->by_name || !s->by_id) {
            fail(&c, "out of memory");
            goto bad;
        }
    }
    for (size_t i = 0; i < nu; i++) {
        const json_t *u = json_array_get(ups, i);
        s->n = i + 1;
        if (!json_is_object(u)) {
            fail(&c, "upstreams[%zu] is not an object", i);
            goto bad;
        }
        if (parse_upstream(&c, &s->b[i], u, i) != 0)
            goto bad;
        s->by_name[i] = s->by_id[i] = i;
    }
    if (s->n > 1) {
        qsort_r(s->by_name, s->n, sizeof(*s->by_name), name_cmp, s);
        qsort_r(s->by_id, s->n, sizeof(*s->by_id), id_cmp, s);
    }

    /* targets: count per upstream, then fill */
    size_t *counts = nu ? calloc(nu, sizeof(*counts)) : NULL;
    size_t *owner = nt ? malloc(nt * sizeof(*owner)) : NULL;
    if ((nu && !counts) || (nt && !owner)) {
        free(counts);
        free(owner);
        fail(&c, "out of memory");
        goto bad;
    }
    for (size_t i = 0; i < nt; i++) {
        const json_t *t = json_array_get(tgs, i);
        const char *uid = json_is_object(t) ? jstr(json_object_get(t, "upstream"), "id") : NULL;
        const aigw_balancer_t *b = uid ? aigw_balancers_find_id_or_name(s, uid) : NULL;
        if (!b || strcmp(b->id, uid) != 0) {
            fail(&c, "targets[%zu]: unknown upstream %s", i, uid ? uid : "(none)");
            free(counts);
            free(owner);
            goto bad;
        }
        owner[i] = (size_t)(b - s->b);
        counts[owner[i]]++;
    }
    for (size_t i = 0; i < nu; i++) {
        if (counts[i] && !(s->b[i].targets = calloc(counts[i], sizeof(target_t)))) {
            free(counts);
            free(owner);
            fail(&c, "out of memory");
            goto bad;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        aigw_balancer_t *b = &s->b[owner[i]];
        target_t *t = &b->targets[b->n++];
        if (parse_target(&c, b->name, json_array_get(tgs, i), t) != 0) {
            free(counts);
            free(owner);
            goto bad;
        }
    }
    free(counts);
    free(owner);
    for (size_t i = 0; i < nu; i++) {
        aigw_balancer_t *b = &s->b[i];
        /* Kong loads targets ordered by created_at, then id */
        if (b->n > 1)
            qsort(b->targets, b->n, sizeof(*b->targets), created_cmp);
        int rc = 0;
        if (b->algorithm == ALG_RR)
            rc = build_wheel(b);
        else if (b->algorithm == ALG_CH)
            rc = build_continuum(b);
        if (rc != 0) {
            fail(&c, "out of memory");
            goto bad;
        }
    }
    return s;
bad:
    set_free(s);
    return NULL;
}

aigw_balancers_t *aigw_balancers_ref(aigw_balancers_t *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void aigw_balancers_unref(aigw_balancers_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        set_free(s);
}

void aigw_balancers_free(aigw_balancers_t *s)
{
    aigw_balancers_unref(s);
}

static const aigw_balancer_t *find_by_id(const aigw_balancers_t *s, const char *id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->b[s->by_id[mid]].id, id);
        if (c == 0)
            return &s->b[s->by_id[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void aigw_balancers_inherit(aigw_balancers_t *new_, const aigw_balancers_t *old)
{
    if (!new_ || !old)
        return;
    for (size_t i = 0; i < new_->n; i++) {
        aigw_balancer_t *nb = &new_->b[i];
        const aigw_balancer_t *ob = find_by_id(old, nb->id);
        if (!ob)
            continue;
        for (size_t j = 0; j < nb->n; j++) {
            for (size_t k = 0; k < ob->n; k++) {
                if (strcmp(nb->targets[j].target, ob->targets[k].target) == 0) {
                    tstate_t *st = ob->targets[k].st;
                    atomic_fetch_add(&st->refs, 1);
                    tstate_unref(nb->targets[j].st);
                    nb->targets[j].st = st;
                    break;
                }
            }
        }
    }
}

/* ---- lookups -------------------------------------------------------------------------------- */

const aigw_balancer_t *aigw_balancers_find(const aigw_balancers_t *s, aigw_str_t host)
{
    if (!s || !host.p)
        return NULL;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *name = s->b[s->by_name[mid]].name;
        size_t nn = strlen(name);
        size_t m = nn < host.n ? nn : host.n;
        int c = memcmp(name, host.p, m);
        if (c == 0)
            c = (nn > host.n) - (nn < host.n);
        if (c == 0)
            return &s->b[s->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const aigw_balancer_t *aigw_balancers_find_id_or_name(const aigw_balancers_t *s,
                                                      const char *id_or_name)
{
    if (!s || !id_or_name)
        return NULL;
    const aigw_balancer_t *b = find_by_id(s, id_or_name);
    return b ? b : aigw_balancers_find(s, aigw_str_c(id_or_name));
}

const char *aigw_balancer_id(const aigw_balancer_t *b)
{
    return b->id;
}

const char *aigw_balancer_name(const aigw_balancer_t *b)
{
    return b->name;
}

aigw_str_t aigw_balancer_host_header(const aigw_balancer_t *b)
{
    return b->host_header ? aigw_str_c(b->host_header) : (aigw_str_t){ "", 0 };
}

size_t aigw_balancer_n_targets(const aigw_balancer_t *b)
{
    return b->n;
}

size_t aigw_balancers__count(const aigw_balancers_t *s)
{
    return s ? s->n : 0;
}

const aigw_balancer_t *aigw_balancers__at(const aigw_balancers_t *s, size_t i)
{
    return &s->b[i];
}

const aigw_balancer_active_t *aigw_balancer__active(const aigw_balancer_t *b)
{
    return b->active_on ? &b->active : NULL;
}

void aigw_balancer__target(const aigw_balancer_t *b, uint32_t i, const char **host, int *port,
                           int *weight, int *family, struct sockaddr_storage *addr)
{
    const target_t *t = &b->targets[i];
    *host = t->host;
    *port = t->port;
    *weight = t->weight;
    *family = t->family;
    if (t->family)
        *addr = t->addr;
}

static int is_up(const tstate_t *st)
{
    int h = atomic_load_explicit(&st->health, memory_order_relaxed);
    return h == H_HEALTHY || h == H_MOSTLY_HEALTHY;
}

int aigw_balancer__is_healthy(const aigw_balancer_t *b, uint32_t i)
{
    return i < b->n && is_up(b->targets[i].st);
}

/* Kong creates no health checker for an upstream that uses no checks, so every address is
 * available there, whatever state an earlier configuration left behind. */
static int target_up(const aigw_balancer_t *b, const target_t *t)
{
    return !b->using_hc || is_up(t->st);
}

/* ---- picking -------------------------------------------------------------------------------- */

typedef struct pick_ctx {
    const aigw_balancer_t *b;
    const uint32_t *ex;
    size_t nex;
    uint64_t now;           /* lazily read */
} pick_ctx_t;

static int usable(pick_ctx_t *pc, uint32_t i)
{
    const target_t *t = &pc->b->targets[i];
    if (t->weight <= 0 || !target_up(pc->b, t))
        return 0;
    uint64_t until = atomic_load_explicit(&t->st->dns_fail_until, memory_order_relaxed);
    if (until) {
        if (!pc->now)
            pc->now = now_ms();
        if (pc->now < until)
            return 0;
    }
    return 1;
}

static int excluded(const pick_ctx_t *pc, uint32_t i)
{
    for (size_t k = 0; k < pc->nex; k++) {
        if (pc->ex[k] == i)
            return 1;
    }
    return 0;
}

static int candidate(pick_ctx_t *pc, uint32_t i)
{
    return usable(pc, i) && !excluded(pc, i);
}

/* Kong balancers.lua updateStatus: healthy when the available weight is more than threshold
 * percent of the total (addresses of DNS-failed targets weigh nothing). */
static int balancer_healthy(pick_ctx_t *pc)
{
    const aigw_balancer_t *b = pc->b;
    uint64_t total = 0, avail = 0;
    for (size_t i = 0; i < b->n; i++) {
        const target_t *t = &b->targets[i];
        int na = atomic_load_explicit(&t->st->n_addr, memory_order_relaxed);
        uint64_t until = atomic_load_explicit(&t->st->dns_fail_until, memory_order_relaxed);
        if (until) {
            if (!pc->now)
                pc->now = now_ms();
            if (pc->now < until)
                na = 0;
        }
        uint64_t w = (uint64_t)t->weight * (uint64_t)(na < 0 ? 1 : na);
        total += w;
        if (target_up(b, t))
            avail += w;
    }
    if (!total)
        return 0;
    return (double)avail / (double)total * 100.0 > b->threshold;
}

static long pick_rr(pick_ctx_t *pc)
{
    const aigw_balancer_t *b = pc->b;
    if (b->wheel_n) {
        int any = 0;
        for (uint32_t i = 0; i < b->n && !any; i++)
            any = candidate(pc, i);
        if (!any)
            return -1;
        uint64_t c = atomic_fetch_add_explicit(&b->bs->rr, 1, memory_order_relaxed);
        for (uint32_t k = 0; k < b->wheel_n; k++) {
            uint32_t i = b->wheel[(c + k) % b->wheel_n];
            if (candidate(pc, i))
                return i;
        }
        return -1;
    }
    if (!b->bs->cw)
        return -1;
    /* nginx ngx_http_upstream_get_peer: smooth weighted round-robin */
    long best = -1;
    int64_t total = 0;
    pthread_mutex_lock(&b->bs->mu);
    for (uint32_t i = 0; i < b->n; i++) {
        if (!candidate(pc, i))
            continue;
        int64_t w = b->targets[i].weight;
        b->bs->cw[i] += w;
        total += w;
        if (best < 0 || b->bs->cw[i] > b->bs->cw[best])
            best = i;
    }
    if (best >= 0)
        b->bs->cw[best] -= total;
    pthread_mutex_unlock(&b->bs->mu);
    return best;
}

static long pick_lc(pick_ctx_t *pc)
{
    const aigw_balancer_t *b = pc->b;
    long best = -1;
    int64_t bc = 0, bw = 1;
    for (uint32_t i = 0; i < b->n; i++) {
        if (!candidate(pc, i))
            continue;
        int64_t c = atomic_load_explicit(&b->targets[i].st->conns, memory_order_relaxed) + 1;
        int64_t w = b->targets[i].weight;
        if (best < 0 || c * bw < bc * w) {
            best = i;
            bc = c;
            bw = w;
        }
    }
    return best;
}

static long pick_ch(pick_ctx_t *pc, uint32_t hash)
{
    const aigw_balancer_t *b = pc->b;
    if (!b->npoints)
        return -1;
    uint32_t pos = hash % b->slots;
    /* the last point with pos <= key pos; none: wrap to the last point */
    size_t lo = 0, hi = b->npoints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->points[mid].pos <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t start = lo ? lo - 1 : b->npoints - 1;
    for (size_t k = 0; k < b->npoints; k++) {
        size_t idx = (start + b->npoints - k) % b->npoints;
        uint32_t i = b->points[idx].target;
        if (candidate(pc, i))
            return i;
    }
    return -1;
}

static void make_uuid(char out[37])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        uint64_t a = uv_hrtime();
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)((a >> ((i % 8) * 8)) ^ (i * 131u) ^ (uintptr_t)out);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hx[r[i] >> 4];
        out[o++] = hx[r[i] & 15];
    }
    out[o] = '\0';
}

/* kong/runloop/balancer/init.lua get_value_to_hash */
static uint32_t key_hash(const aigw_balancer_t *b, const aigw_balancer_key_t *key,
                         aigw_balancer_pick_t *out)
{
    aigw_str_t v = AIGW_STR_NULL;
    for (int k = 0; k < 2 && !v.p; k++) {
        int on = b->hash_on[k];
        aigw_str_t param = b->hash_param[k] ? aigw_str_c(b->hash_param[k]) : AIGW_STR_NULL;
        if (on == HASH_NONE)
            break;
        if (!key)
            continue;
        switch (on) {
        case HASH_CONSUMER:
            v = key->consumer_id;
            break;
        case HASH_IP:
            v = key->client_ip;
            break;
        case HASH_HEADER:
            if (key->header)
                v = key->header(key->req, param);
            break;
        case HASH_COOKIE:
            if (key->cookie)
                v = key->cookie(key->req, aigw_str_c(b->cookie_name));
            if (!v.p) {
                make_uuid(out->cookie_value);
                out->set_cookie = 1;
                v = aigw_str_c(out->cookie_value);
            }
            break;
        case HASH_PATH:
            v = key->path;
            break;
        case HASH_QUERY_ARG:
            if (key->query_arg)
                v = key->query_arg(key->req, param);
            break;
        case HASH_URI_CAPTURE:
            if (key->uri_capture)
                v = key->uri_capture(key->req, param);
            break;
        default:
            break;
        }
    }
    if (!v.p)
        v = (aigw_str_t){ "", 0 };
    return aigw_balancer__xxh32(v.p, v.n);
}

int aigw_balancer_pick(const aigw_balancer_t *b, const aigw_balancer_key_t *key,
                       const uint32_t *exclude_targets, size_t n_exclude,
                       aigw_balancer_pick_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!b || !b->n)
        return -1;
    pick_ctx_t pc = { b, exclude_targets, exclude_targets ? n_exclude : 0, 0 };
    if (b->threshold > 0 && !balancer_healthy(&pc))
        return -1;
    uint32_t hash = 0;
    if (b->algorithm == ALG_CH) {
        if (key && key->has_hash)
            hash = key->hash;
        else
            hash = key_hash(b, key, out);
        out->hash = hash;
    }
    long i = -1;
    for (int pass = 0; pass < 2 && i < 0; pass++) {
        if (pass == 1) {
            if (!pc.nex)
                break;
            pc.nex = 0;   /* every candidate was tried: come back to them */
        }
        if (b->algorithm == ALG_RR)
            i = pick_rr(&pc);
        else if (b->algorithm == ALG_CH)
            i = pick_ch(&pc, hash);
        else
            i = pick_lc(&pc);
    }
    if (i < 0) {
        out->set_cookie = 0;
        return -1;
    }
    const target_t *t = &b->targets[i];
    if (b->algorithm == ALG_LC)
        atomic_fetch_add_explicit(&t->st->conns, 1, memory_order_relaxed);
    out->target = (uint32_t)i;
    out->host = aigw_str_c(t->host);
    out->port = t->port;
    out->family = t->family;
    if (t->family)
        out->addr = t->addr;
    out->hostname = b->host_header ? aigw_str_c(b->host_header) : aigw_str_c(t->hostname);
    out->cookie_name = aigw_str_c(b->cookie_name);
    out->cookie_path = aigw_str_c(b->cookie_path);
    return 0;
}

void aigw_balancer_release(const aigw_balancer_t *b, uint32_t target)
{
    if (!b || target >= b->n || b->algorithm != ALG_LC)
        return;
    _Atomic int *c = &b->targets[target].st->conns;
    int v = atomic_load_explicit(c, memory_order_relaxed);
    while (v > 0 &&
           !atomic_compare_exchange_weak_explicit(c, &v, v - 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* ---- health --------------------------------------------------------------------------------- */

static const char *const health_names[] = { "healthy", "mostly_healthy", "mostly_unhealthy",
                                            "unhealthy" };
static const char *const counter_names[] = { "SUCCESS", "HTTP", "TCP", "TIMEOUT" };

/* lua-resty-healthcheck incr_counter */
static void incr(const aigw_balancer_t *b, const target_t *t, int report, int limit, int ctr)
{
    if (limit == 0)
        return;
    tstate_t *st = t->st;
    if (atomic_load_explicit(&st->health, memory_order_relaxed) == report)
        return;
    pthread_mutex_lock(&st->mu);
    int cur = atomic_load_explicit(&st->health, memory_order_relaxed);
    if (cur == report) {
        pthread_mutex_unlock(&st->mu);
        return;
    }
    if (st->ctr[ctr] < 255)
        st->ctr[ctr]++;
    int n = st->ctr[ctr];
    if (ctr == C_SUCCESS)
        st->ctr[C_HTTP] = st->ctr[C_TCP] = st->ctr[C_TIMEOUT] = 0;
    else
        st->ctr[C_SUCCESS] = 0;
    int next = -1;
    if (n >= limit)
        next = report;
    else if (cur == H_HEALTHY && (st->ctr[C_HTTP] || st->ctr[C_TCP] || st->ctr[C_TIMEOUT]))
        next = H_MOSTLY_HEALTHY;
    else if (cur == H_UNHEALTHY && st->ctr[C_SUCCESS])
        next = H_MOSTLY_UNHEALTHY;
    if (next >= 0 && next != cur)
        atomic_store_explicit(&st->health, next, memory_order_relaxed);
    pthread_mutex_unlock(&st->mu);
    if (next >= 0 && next != cur && (next == H_HEALTHY || next == H_UNHEALTHY))
        AIGW_LOG(AIGW_LOG_WARN, "[healthchecks] upstream %s target %s is now %s (%s %d/%d)",
                 b->name, t->target, health_names[next], counter_names[ctr], n, limit);
}

static void report(const aigw_balancer_t *b, uint32_t target, int kind, int status,
                   const checks_t *ck)
{
    if (!b || target >= b->n)
        return;
    const target_t *t = &b->targets[target];
    switch (kind) {
    case AIGW_BAL_HTTP_STATUS:
        if (status_in(ck->healthy_st, status))
            incr(b, t, H_HEALTHY, ck->successes, C_SUCCESS);
        else if (status == 0 || status_in(ck->unhealthy_st, status))
            incr(b, t, H_UNHEALTHY, ck->http_failures, C_HTTP);
        break;
    case AIGW_BAL_TCP_FAILURE:
        incr(b, t, H_UNHEALTHY, ck->tcp_failures, C_TCP);
        break;
    case AIGW_BAL_TIMEOUT:
        incr(b, t, H_UNHEALTHY, ck->timeouts, C_TIMEOUT);
        break;
    case AIGW_BAL__SUCCESS:
        incr(b, t, H_HEALTHY, ck->successes, C_SUCCESS);
        break;
    default:
        break;
    }
}

void aigw_balancer_report(const aigw_balancer_t *b, uint32_t target, int kind, int http_status)
{
    if (!b)
        return;
    /* kong/runloop/handler.lua log phase: a 504 is reported as a timeout */
    if (kind == AIGW_BAL_HTTP_STATUS && http_status == 504)
        kind = AIGW_BAL_TIMEOUT;
    if (kind == AIGW_BAL__SUCCESS)
        return;
    report(b, target, kind, http_status, &b->passive);
}

void aigw_balancer__report_active(const aigw_balancer_t *b, uint32_t target, int kind,
                                  int http_status)
{
    if (b)
        report(b, target, kind, http_status, &b->active_checks);
}

void aigw_balancer_set_addresses(const aigw_balancer_t *b, uint32_t target,
                                 const struct sockaddr_storage *addrs, size_t n,
                                 const char *dns_error)
{
    if (!b || target >= b->n || b->targets[target].family)
        return;
    tstate_t *st = b->targets[target].st;
    if (n > MAX_ADDRS)
        n = MAX_ADDRS;
    pthread_mutex_lock(&st->mu);
    if (n == 0) {
        aigw_strlcpy(st->dns_error, dns_error ? dns_error : "dns resolution failed",
                     sizeof(st->dns_error));
        st->naddrs = 0;
        atomic_store(&st->n_addr, 0);
        atomic_store(&st->dns_fail_until, now_ms() + DNS_REQUERY_MS);
    } else {
        st->dns_error[0] = '\0';
        for (size_t i = 0; i < n; i++)
            st->addrs[i] = addrs[i];
        st->naddrs = n;
        atomic_store(&st->n_addr, (int)n);
        atomic_store(&st->dns_fail_until, 0);
    }
    pthread_mutex_unlock(&st->mu);
}

/* ---- admin: health view --------------------------------------------------------------------- */

typedef struct tview {
    const target_t *t;
    int up;
    size_t naddrs;
    struct sockaddr_storage addrs[MAX_ADDRS];
    char dns[128];
} tview_t;

/* The admin thread resolves a name nobody resolved yet, so that the view has addresses. */
static void resolve_now(const aigw_balancer_t *b, uint32_t i)
{
    const target_t *t = &b->targets[i];
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(t->host, NULL, &hints, &res);
    struct sockaddr_storage addrs[MAX_ADDRS];
    size_t n = 0;
    for (int fam = 0; fam < 2; fam++) {   /* IPv4 first, as Kong's dns_order prefers A */
        for (const struct addrinfo *ai = rc == 0 ? res : NULL; ai && n < MAX_ADDRS;
             ai = ai->ai_next) {
            if (ai->ai_family != (fam == 0 ? AF_INET : AF_INET6) ||
                ai->ai_addrlen > sizeof(addrs[0]))
                continue;
            int dup = 0;
            for (size_t k = 0; k < n && !dup; k++)
                dup = memcmp(&addrs[k], ai->ai_addr, ai->ai_addrlen) == 0;
            if (dup)
                continue;
            memset(&addrs[n], 0, sizeof(addrs[n]));
            memcpy(&addrs[n++], ai->ai_addr, ai->ai_addrlen);
        }
    }
    if (res)
        freeaddrinfo(res);
    if (n)
        aigw_balancer_set_addresses(b, i, addrs, n, NULL);
    else if (rc == EAI_NONAME)
        aigw_balancer_set_addresses(b, i, NULL, 0, "dns server error: 3 name error");
    else
        aigw_balancer_set_addresses(b, i, NULL, 0,
                                    "dns client error: 101 empty record received");
}

static void view(const aigw_balancer_t *b, uint32_t i, tview_t *v)
{
    const target_t *t = &b->targets[i];
    if (!t->family && atomic_load(&t->st->n_addr) < 0)
        resolve_now(b, i);
    memset(v, 0, sizeof(*v));
    v->t = t;
    v->up = target_up(b, t);
    pthread_mutex_lock(&t->st->mu);
    v->naddrs = t->st->naddrs;
    memcpy(v->addrs, t->st->addrs, v->naddrs * sizeof(v->addrs[0]));
    if (t->st->dns_error[0])
        aigw_strlcpy(v->dns, t->st->dns_error, sizeof(v->dns));
    pthread_mutex_unlock(&t->st->mu);
    if (!v->dns[0]) {
        int v4 = 0;
        for (size_t k = 0; k < v->naddrs; k++)
            v4 |= v->addrs[k].ss_family == AF_INET;
        aigw_strlcpy(v->dns, v->naddrs ? (v4 ? "A" : "AAAA") : "unknown", sizeof(v->dns));
    }
}

static json_t *weight_json(long long total, long long unavailable)
{
    return json_pack("{s:I,s:I,s:I}", "total", (json_int_t)total, "unavailable",
                     (json_int_t)unavailable, "available", (json_int_t)(total - unavailable));
}

static void ip_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char tmp[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, tmp, sizeof(tmp));
        snprintf(buf, len, "[%s]", tmp);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, tmp, sizeof(tmp));
        snprintf(buf, len, "%s", tmp);
    }
}

/* kong balancers.lua getTargetStatus; healthy_bool: "healthy": bool (getStatus) instead of
 * "health" (get_upstream_health). */
static json_t *target_status(const aigw_balancer_t *b, const tview_t *v, int healthy_bool)
{
    const target_t *t = v->t;
    long long w = t->weight, n = (long long)v->naddrs;
    json_t *addrs = json_array();
    for (size_t k = 0; k < v->naddrs; k++) {
        char ip[INET6_ADDRSTRLEN + 2];
        ip_text(&v->addrs[k], ip, sizeof(ip));
        json_t *a = json_pack("{s:s,s:i,s:I}", "ip", ip, "port", t->port, "weight",
                              (json_int_t)w);
        if (healthy_bool)
            json_object_set_new(a, "healthy", json_boolean(v->up));
        else
            json_object_set_new(a, "health",
                                json_string(b->using_hc && t->weight > 0
                                                ? (v->up ? "HEALTHY" : "UNHEALTHY")
                                                : "HEALTHCHECKS_OFF"));
        json_array_append_new(addrs, a);
    }
    return json_pack("{s:s,s:i,s:s,s:I,s:o,s:o}", "host", t->hostname, "port", t->port, "dns",
                     v->dns, "nodeWeight", (json_int_t)w, "weight",
                     weight_json(w * n, v->up ? 0 : w * n), "addresses", addrs);
}

static int newest_first(const void *x, const void *y)
{
    const tview_t *a = x, *b = y;
    if (a->t->created_at != b->t->created_at)
        return a->t->created_at < b->t->created_at ? 1 : -1;
    return -strcmp(a->t->id, b->t->id);
}

json_t *aigw_balancers_health_json(const aigw_balancers_t *s, const char *id_or_name,
                                   int balancer_health, const char *node_id)
{
    const aigw_balancer_t *b = aigw_balancers_find_id_or_name(s, id_or_name);
    if (!b)
        return NULL;
    tview_t *vs = b->n ? calloc(b->n, sizeof(*vs)) : NULL;
    if (b->n && !vs)
        return NULL;
    for (uint32_t i = 0; i < b->n; i++)
        view(b, i, &vs[i]);
    json_t *body = NULL;
    if (balancer_health) {
        long long total = 0, unavail = 0;
        json_t *hosts = json_array();
        for (size_t i = 0; i < b->n; i++) {
            long long w = (long long)vs[i].t->weight * (long long)vs[i].naddrs;
            total += w;
            if (!vs[i].up)
                unavail += w;
            json_array_append_new(hosts, target_status(b, &vs[i], 1));
        }
        int healthy = total > 0 && (double)(total - unavail) / (double)total * 100.0 >
                                       b->threshold;
        const char *bh = healthy ? "HEALTHY" : "UNHEALTHY";
        json_t *details = json_pack("{s:b,s:o,s:o}", "healthy", healthy, "weight",
                                    weight_json(total, unavail), "hosts", hosts);
        json_t *data = json_pack("{s:s,s:s,s:s,s:o}", "health",
                                 b->using_hc ? bh : "HEALTHCHECKS_OFF", "balancer_health", bh,
                                 "id", b->id, "details", details);
        body = json_pack("{s:o,s:n}", "data", data, "next");
    } else {
        if (b->n > 1)
            qsort(vs, b->n, sizeof(*vs), newest_first);
        json_t *data = json_array();
        for (size_t i = 0; i < b->n; i++) {
            json_t *e = json_loads(vs[i].t->entity, JSON_DECODE_ANY, NULL);
            if (!json_is_object(e)) {
                json_decref(e);
                e = json_pack("{s:s,s:s,s:i}", "id", vs[i].t->id, "target", vs[i].t->target,
                              "weight", vs[i].t->weight);
            }
            json_t *st = target_status(b, &vs[i], 0);
            const char *health = "DNS_ERROR";
            if (vs[i].naddrs) {
                health = "HEALTHCHECKS_OFF";
                size_t k;
                json_t *a;
                json_array_foreach(json_object_get(st, "addresses"), k, a) {
                    const char *h = json_string_value(json_object_get(a, "health"));
                    if (strcmp(h, "HEALTHY") == 0) {
                        health = "HEALTHY";
                        break;
                    }
                    if (strcmp(h, "UNHEALTHY") == 0)
                        health = "UNHEALTHY";
                }
            }
            json_object_set_new(e, "health", json_string(health));
            json_object_set_new(e, "data", st);
            json_array_append_new(data, e);
        }
        body = json_pack("{s:o,s:n}", "data", data, "next");
    }
    free(vs);
    if (body)
        json_object_set_new(body, "node_id", node_id ? json_string(node_id) : json_null());
    return body;
}

/* ---- admin: manual health ------------------------------------------------------------------- */

static int address_matches(const target_t *t, const tstate_t *st, const char *address)
{
    char *host = NULL, *hostname = NULL;
    int port = 0, rc = 0;
    if (split_target(address, &host, &hostname, &port) != 0)
        return 0;
    struct sockaddr_storage want;
    if (parse_ip(host, port, &want) && port == t->port) {
        for (size_t k = 0; k < st->naddrs && !rc; k++) {
            const struct sockaddr_storage *a = &st->addrs[k];
            if (a->ss_family != want.ss_family)
                continue;
            if (a->ss_family == AF_INET)
                rc = memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                            &((const struct sockaddr_in *)&want)->sin_addr, 4) == 0;
            else
                rc = memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                            &((const struct sockaddr_in6 *)&want)->sin6_addr, 16) == 0;
        }
    }
    free(host);
    free(hostname);
    return rc;
}

int aigw_balancers_set_health(aigw_balancers_t *s, const char *upstream, const char *target,
                              const char *address, int healthy, char *err, size_t errlen)
{
    const aigw_balancer_t *b = aigw_balancers_find_id_or_name(s, upstream);
    if (!b || !target)
        return -1;
    const target_t *t = NULL;
    for (size_t i = 0; i < b->n && !t; i++) {
        if (strcmp(b->targets[i].id, target) == 0 || strcmp(b->targets[i].target, target) == 0)
            t = &b->targets[i];
    }
    if (!t)
        return -1;
    if (!b->using_hc) {
        if (err && errlen)
            snprintf(err, errlen, "no healthchecker found for %s", b->name);
        return -2;
    }
    tstate_t *st = t->st;
    pthread_mutex_lock(&st->mu);
    /* Kong: an address that is not one of the target's is ignored (204 all the same) */
    if (!address || address_matches(t, st, address)) {
        memset(st->ctr, 0, sizeof(st->ctr));
        atomic_store(&st->health, healthy ? H_HEALTHY : H_UNHEALTHY);
    }
    pthread_mutex_unlock(&st->mu);
    AIGW_LOG(AIGW_LOG_WARN, "[healthchecks] upstream %s target %s: %s forced", b->name,
             t->target, healthy ? "healthy" : "unhealthy");
    return 0;
}
