/* aigwd/proxy/router.c: see router.h.
 *
 * Model. Each route becomes one matcher per path group (Kong's
 * split_routes_and_services_by_path: all regex paths form one group, prefix paths one group
 * per length; a route without paths is one matcher). Matchers are sorted once by Kong's
 * priority (kong/router/transform.lua get_priority), ties by route position then group: the
 * index in that order is the matcher's rank, lower wins. A linear scan in rank order that
 * returns the first matcher whose conditions all hold is the reference semantics
 * (aigw_router__match_linear); the index below only avoids looking at matchers that cannot
 * match.
 *
 * Index. One open-addressing hash table holds four kinds of keys:
 *   HOST_EXACT "api.example.com", HOST_SUFFIX ".example.com" (from "*.example.com"),
 *   HOST_PREFIX "example." (from "example.*")  -> a bucket;
 *   PATH (bucket, "/foo")                      -> the bucket's matchers with that prefix.
 * Bucket 0 holds the routes without hosts. A bucket also lists its matchers without paths
 * and its regex matchers (each list sorted by rank), and the distinct lengths of its PATH
 * keys, each with the best rank among them and the set of their last bytes. Every list,
 * length and bucket carries the best rank it can offer, so a lookup skips whatever cannot
 * beat the match in hand: the exact Host is looked up once; wildcard keys are tried one
 * configured length at a time, best-offering length first, only where the Host has a dot at
 * the key's edge; in a bucket, prefix lengths are probed longest first and only when the
 * request path's byte at the key's last position can end such a key; within a list the
 * first matcher that passes is the list's best, so a regex runs only when its route could
 * still win. Every candidate is checked in full (the index is only a filter): an index
 * mistake can cost time, never a wrong answer, and aigw_router__match_linear lets the
 * tests and the fuzzer compare the two.
 *
 * Regexes: PCRE2 with JIT, UTF + UCP + DOLLAR_ENDONLY to behave like the Rust regex crate
 * that Kong's ATC router uses, a match limit (toolchain.md), one match data block per
 * thread. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/router.h"

#define HTTP_PROTOS (AIGW_PROTO_HTTP | AIGW_PROTO_HTTPS | AIGW_PROTO_GRPC | AIGW_PROTO_GRPCS)
#define MATCH_LIMIT 100000
#define DEPTH_LIMIT 1000
#define NO_RANK UINT32_MAX

enum { HK_EXACT, HK_SUFFIX, HK_PREFIX };          /* host and sni entry kinds */
enum { PK_NONE, PK_PREFIX, PK_REGEX };            /* a matcher's path group */
enum { KEY_HOST_EXACT = 1, KEY_HOST_SUFFIX, KEY_HOST_PREFIX, KEY_PATH };

typedef struct host_ent {
    int kind;
    long long port;           /* -1: any */
    aigw_str_t s;             /* the exact host, the suffix ("*" dropped) or the prefix;
                                 for hosts a lower-cased copy (own) */
    char *own;
} host_ent_t;

typedef struct hdr_val {
    pcre2_code *re;           /* NULL: equality with s */
    aigw_str_t s;
} hdr_val_t;

typedef struct hdr_match {
    aigw_str_t field;         /* Kong's field name: lower-cased, '-' -> '_' (owned) */
    aigw_str_t dashed;        /* field with '_' -> '-' (owned) */
    hdr_val_t *vals;
    size_t n_vals;
} hdr_match_t;

typedef struct rinfo {        /* per route, shared by its matchers */
    const aigw_rt_route_t *route;
    host_ent_t *hosts;
    size_t n_hosts;
    host_ent_t *snis;
    size_t n_snis;
    hdr_match_t *hdrs;
    size_t n_hdrs;
} rinfo_t;

typedef struct rx {
    pcre2_code *re;
    size_t ncap;              /* min(groups + 1, AIGW_ROUTER_MAX_CAPTURES) */
    aigw_str_t names[AIGW_ROUTER_MAX_CAPTURES];
} rx_t;

typedef struct matcher {
    const rinfo_t *ri;
    uint64_t priority;
    size_t route_idx, group_idx;
    int pkind;
    uint32_t *paths;          /* indexes into route->paths, configured order */
    size_t n_paths;
    rx_t *rx;                 /* n_paths of them for PK_REGEX */
} matcher_t;

typedef struct ulist {
    uint32_t *v;
    uint32_t n, cap;
} ulist_t;

typedef struct bucket {
    ulist_t nopath;           /* matcher ranks, ascending */
    ulist_t regex;
    ulist_t lens;             /* distinct PATH key lengths, ascending */
    uint32_t *lens_min;       /* per length: the best rank of its PATH keys */
    uint32_t *lens_upto;      /* per length: the best rank of its and all shorter keys */
    uint8_t (*lastb)[32];     /* per length: the set of their last bytes (a cheap filter) */
    uint32_t min_rank;        /* the best rank in the bucket */
} bucket_t;

typedef struct hent {
    uint64_t hash;
    uint32_t kind, bucket;    /* bucket: the owning bucket of a PATH key, else 0 */
    aigw_str_t key;           /* a route path (borrowed) or a host entry's lower-cased copy */
    uint32_t val;             /* host keys: the bucket they name */
    ulist_t ms;               /* PATH keys: matcher ranks, ascending */
} hent_t;

typedef struct wild {
    uint32_t kind, len;
    uint32_t min;             /* the best rank among the buckets of such keys */
    int dot;                  /* all such keys start (suffix) or end (prefix) with '.' */
} wild_t;

struct aigw_router {
    matcher_t *m;             /* sorted: the index is the rank */
    size_t n_m;
    rinfo_t *ri;
    size_t n_ri;
    bucket_t *buckets;
    size_t n_buckets;
    hent_t *ents;
    size_t n_ents, cap_ents;
    uint64_t *slots;          /* (hash >> 32) << 32 | entry index + 1; 0 empty */
    size_t mask;
    ulist_t suffix_lens, prefix_lens;   /* distinct wildcard host key lengths (build only) */
    wild_t *wild;             /* each wildcard key kind and length, best rank first */
    size_t n_wild;
    size_t n_exact;           /* HOST_EXACT keys */
    pcre2_match_context *mctx;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static unsigned char lc(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
            return 0;
    return 1;
}

static int ulist_push(ulist_t *l, uint32_t v)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        uint32_t *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

/* Appends v unless it is already the last element (ranks arrive in ascending order). */
static int ulist_push_rank(ulist_t *l, uint32_t v)
{
    if (l->n && l->v[l->n - 1] == v)
        return 0;
    return ulist_push(l, v);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void ulist_sort_unique(ulist_t *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof *l->v, cmp_u32);
    uint32_t w = 1;
    for (uint32_t i = 1; i < l->n; i++)
        if (l->v[i] != l->v[w - 1])
            l->v[w++] = l->v[i];
    l->n = w;
}

/* Key hashing and comparison, 8 bytes at a time, with overlapping loads for the tail (no
 * variable-size memcpy or memcmp call on the lookup path: a byte-wise FNV and libc memcmp
 * were most of a lookup's time). Host keys are lower-case on both sides (configured ones are
 * copied lower-cased at build time, the request's Host is lower-cased into a buffer). */
#define HMUL 0x9E3779B97F4A7C15ull

static uint64_t ld8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static uint32_t ld4(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

static uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t key_hash(uint32_t kind, uint32_t bucket, const char *p, size_t n)
{
    uint64_t h = ((((uint64_t)kind << 32) | bucket) + 1) * HMUL ^ n;
    if (n >= 8) {
        size_t i = 0;
        for (; n - i > 8; i += 8)
            h = (h ^ ld8(p + i)) * HMUL;
        h ^= ld8(p + n - 8);
    } else if (n >= 4) {
        h ^= ld4(p) | ((uint64_t)ld4(p + n - 4) << 32);
    } else if (n > 0) {
        h ^= (uint64_t)(unsigned char)p[0] | ((uint64_t)(unsigned char)p[n / 2] << 8) |
             ((uint64_t)(unsigned char)p[n - 1] << 16);
    }
    return fmix(h);
}

static int same(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        size_t i = 0;
        for (; n - i > 8; i += 8)
            if (ld8(a + i) != ld8(b + i))
                return 0;
        return ld8(a + n - 8) == ld8(b + n - 8);
    }
    if (n >= 4)
        return ld4(a) == ld4(b) && ld4(a + n - 4) == ld4(b + n - 4);
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static size_t h_slot(uint64_t h)
{
    return (size_t)h;
}

static const hent_t *find(const aigw_router_t *r, uint64_t h, uint32_t kind, uint32_t bucket,
                          const char *p, size_t n)
{
    if (!r->slots)
        return NULL;
    /* the slot's high half is the hash's: most non-matching slots are passed over without
     * touching their entry */
    uint64_t tag = h & 0xffffffff00000000ull;
    for (size_t i = h_slot(h) & r->mask;; i = (i + 1) & r->mask) {
        uint64_t s = r->slots[i];
        if (!s)
            return NULL;
        if ((s & 0xffffffff00000000ull) != tag)
            continue;
        const hent_t *e = &r->ents[(uint32_t)s - 1];
        if (e->hash == h && e->kind == kind && e->bucket == bucket && e->key.n == n &&
            same(e->key.p, p, n))
            return e;
    }
}

/* ---- per-thread PCRE2 state ---------------------------------------------------------------- */

typedef struct tls_state {
    pcre2_match_data *md;
    char *buf;                /* lower-cased header values for regexes */
    size_t cap;
    char *hbuf;               /* a lower-cased Host longer than the stack buffer */
    size_t hcap;
} tls_state_t;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static int tls_key_ok;
static _Thread_local tls_state_t *tls_cur;

static void tls_destroy(void *p)
{
    tls_state_t *t = p;
    if (!t)
        return;
    pcre2_match_data_free(t->md);
    free(t->buf);
    free(t->hbuf);
    free(t);
    tls_cur = NULL;
}

static void tls_key_init(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0;
}

static tls_state_t *tls_get(void)
{
    if (tls_cur)
        return tls_cur;
    pthread_once(&tls_once, tls_key_init);
    tls_state_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->md = pcre2_match_data_create(AIGW_ROUTER_MAX_CAPTURES + 1, NULL);
    if (!t->md) {
        free(t);
        return NULL;
    }
    if (tls_key_ok)
        pthread_setspecific(tls_key, t);
    tls_cur = t;
    return t;
}

/* Grows a per-thread buffer to at least n bytes (a malloc only when a longer value than
 * ever before arrives). */
static int tls_reserve(char **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    size_t want = n < 256 ? 256 : n;
    char *nb = realloc(*buf, want);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = want;
    return 0;
}

/* ---- evaluation -------------------------------------------------------------------------- */

typedef struct reqctx {
    const aigw_router_req_t *req;
    int has_host;
    aigw_str_t host;          /* Host without its port, lower-cased (sbuf or a TLS buffer) */
    long long dst_port;       /* the Host's port, else the port the request arrived on */
    char sbuf[256];
} reqctx_t;

/* kong/router/transform.lua split_host_port: split at the first ':' when what follows is a
 * number; otherwise the whole value is the host. */
static int split_port(aigw_str_t v, aigw_str_t *host, long long *port)
{
    *host = v;
    const char *c = v.n ? memchr(v.p, ':', v.n) : NULL;
    if (!c)
        return 0;
    size_t i = (size_t)(c - v.p) + 1;
    if (i == v.n)
        return 0;
    long long n = 0;
    for (size_t k = i; k < v.n; k++) {
        if (v.p[k] < '0' || v.p[k] > '9')
            return 0;
        if (n <= 100000000000ll)      /* saturates: never equal to a real port */
            n = n * 10 + (v.p[k] - '0');
    }
    host->n = i - 1;
    *port = n;
    return 1;
}

/* A host entry against a lower-cased Host (hosts are lower-cased copies), or an sni entry
 * against the SNI (ci: compared ignoring ASCII case). */
static int host_ent_match(const host_ent_t *h, aigw_str_t v, int ci)
{
    const char *p;
    if (h->kind == HK_EXACT) {
        if (v.n != h->s.n)
            return 0;
        p = v.p;
    } else {
        if (v.n < h->s.n)
            return 0;
        p = h->kind == HK_SUFFIX ? v.p + v.n - h->s.n : v.p;
    }
    return ci ? ieq(p, h->s.p, h->s.n) : same(p, h->s.p, h->s.n);
}

static int rx_search(const aigw_router_t *r, pcre2_code *re, const char *s, size_t n,
                     pcre2_match_data *md)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, r->mctx);
    return rc >= 0;
}

/* One header condition: Kong reads ngx.req.get_headers()[field]: a header named exactly
 * `field` (any case) if there is one, else headers named `dashed`; any of their values may
 * match. */
static int header_match(const aigw_router_t *r, const hdr_match_t *hm,
                        const aigw_router_req_t *req)
{
    int any_exact = 0, ok_exact = 0, ok_dashed = 0;
    int one_name = aigw_str_eq(hm->field, hm->dashed);
    for (size_t i = 0; i < req->n_headers; i++) {
        aigw_str_t nm = req->header_names[i];
        int exact = nm.n == hm->field.n && ieq(nm.p, hm->field.p, nm.n);
        int dashed = !one_name && !exact && nm.n == hm->dashed.n && ieq(nm.p, hm->dashed.p, nm.n);
        if (!exact && !dashed)
            continue;
        if (exact)
            any_exact = 1;
        if (exact ? ok_exact : ok_dashed)
            continue;
        aigw_str_t v = req->header_values[i];
        int ok = 0;
        for (size_t k = 0; k < hm->n_vals && !ok; k++) {
            const hdr_val_t *hv = &hm->vals[k];
            if (!hv->re) {
                ok = v.n == hv->s.n && ieq(v.p, hv->s.p, v.n);
                continue;
            }
            tls_state_t *t = tls_get();
            if (!t || tls_reserve(&t->buf, &t->cap, v.n) != 0)
                return 0;
            for (size_t j = 0; j < v.n; j++)
                t->buf[j] = (char)lc((unsigned char)v.p[j]);
            ok = rx_search(r, hv->re, t->buf, v.n, t->md);
        }
        if (ok) {
            if (exact)
                ok_exact = 1;
            else
                ok_dashed = 1;
        }
    }
    return any_exact ? ok_exact : ok_dashed;
}

/* Checks matcher m in full; fills out and returns 1 when it matches. */
static int eval(const aigw_router_t *r, const matcher_t *m, const reqctx_t *c,
                aigw_router_match_t *out)
{
    const rinfo_t *ri = m->ri;
    const aigw_rt_route_t *rt = ri->route;
    const aigw_router_req_t *req = c->req;

    if (rt->n_methods) {
        size_t i = 0;
        while (i < rt->n_methods && !aigw_str_eq(rt->methods[i], req->method))
            i++;
        if (i == rt->n_methods)
            return 0;
    }
    if (ri->n_hosts) {
        if (!c->has_host)
            return 0;
        size_t i = 0;
        for (; i < ri->n_hosts; i++) {
            const host_ent_t *h = &ri->hosts[i];
            if ((h->port < 0 || h->port == c->dst_port) && host_ent_match(h, c->host, 0))
                break;
        }
        if (i == ri->n_hosts)
            return 0;
    }
    if (ri->n_snis && req->tls) {
        if (!req->sni.p || req->sni.n == 0)
            return 0;
        size_t i = 0;
        while (i < ri->n_snis && !host_ent_match(&ri->snis[i], req->sni, 1))
            i++;
        if (i == ri->n_snis)
            return 0;
    }
    aigw_str_t path = req->path;
    size_t pi = 0;
    if (m->pkind == PK_PREFIX) {
        for (; pi < m->n_paths; pi++) {
            aigw_str_t p = rt->paths[m->paths[pi]];
            if (path.n >= p.n && same(path.p, p.p, p.n))
                break;
        }
        if (pi == m->n_paths)
            return 0;
    }
    for (size_t i = 0; i < ri->n_hdrs; i++)
        if (!header_match(r, &ri->hdrs[i], req))
            return 0;

    if (m->pkind == PK_REGEX) {
        tls_state_t *t = tls_get();
        if (!t)
            return 0;
        for (; pi < m->n_paths; pi++)
            if (rx_search(r, m->rx[pi].re, path.p, path.n, t->md))
                break;
        if (pi == m->n_paths)
            return 0;
        const rx_t *x = &m->rx[pi];
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
        uint32_t npairs = pcre2_get_ovector_count(t->md);
        out->route = rt;
        out->matched_path = rt->paths[m->paths[pi]];
        out->prefix_len = ov[1] >= ov[0] ? ov[1] - ov[0] : 0;
        out->n_captures = x->ncap;
        for (size_t i = 0; i < AIGW_ROUTER_MAX_CAPTURES; i++) {
            if (i < x->ncap && i < npairs && ov[2 * i] != PCRE2_UNSET &&
                ov[2 * i + 1] != PCRE2_UNSET && ov[2 * i] <= ov[2 * i + 1])
                out->captures[i] = (aigw_str_t){ path.p + ov[2 * i], ov[2 * i + 1] - ov[2 * i] };
            else
                out->captures[i] = AIGW_STR_NULL;
            out->capture_names[i] = i < x->ncap ? x->names[i] : AIGW_STR_NULL;
        }
        return 1;
    }

    out->route = rt;
    if (m->pkind == PK_PREFIX) {
        out->matched_path = rt->paths[m->paths[pi]];
        out->prefix_len = out->matched_path.n;
    } else {
        out->matched_path = AIGW_STR("");
        out->prefix_len = 0;
    }
    out->n_captures = 0;
    return 1;
}

/* ASCII lower-casing 8 bytes at a time: a byte gets 0x20 when it is in 'A'..'Z' (its high
 * bit clear, x + 0x3f reaches 0x80 and x + 0x25 does not). */
static void lower_copy(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w = ld8(src + i), b = w & 0x7f7f7f7f7f7f7f7full;
        uint64_t up = ((b + 0x3f3f3f3f3f3f3f3full) ^ (b + 0x2525252525252525ull)) & ~w &
                      0x8080808080808080ull;
        w |= up >> 2;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = (char)lc((unsigned char)src[i]);
}

/* 0, or -1 when a lower-cased copy of a very long Host cannot be had (no match then).
 * need_host: some route has hosts (else the Host is not looked at). */
static int prepare(const aigw_router_req_t *req, reqctx_t *c, int need_host)
{
    c->req = req;
    c->has_host = req->host.p != NULL;
    c->dst_port = req->port;
    c->host = AIGW_STR("");
    if (!c->has_host || !need_host)
        return 0;
    aigw_str_t h;
    long long port;
    if (split_port(req->host, &h, &port))
        c->dst_port = port;
    char *lh = c->sbuf;
    if (h.n > sizeof c->sbuf) {
        tls_state_t *t = tls_get();
        if (!t || tls_reserve(&t->hbuf, &t->hcap, h.n) != 0)
            return -1;
        lh = t->hbuf;
    }
    lower_copy(lh, h.p, h.n);
    c->host = (aigw_str_t){ lh, h.n };
    return 0;
}

/* Tries a list of ranks (ascending) while they can beat *best. */
static void try_list(const aigw_router_t *r, const uint32_t *v, uint32_t n, const reqctx_t *c,
                     uint32_t *best, aigw_router_match_t *out)
{
    for (uint32_t i = 0; i < n && v[i] < *best; i++) {
        if (eval(r, &r->m[v[i]], c, out)) {
            *best = v[i];
            return;
        }
    }
}

static void scan_bucket(const aigw_router_t *r, uint32_t b, const reqctx_t *c, uint32_t *best,
                        aigw_router_match_t *out)
{
    const bucket_t *bk = &r->buckets[b];
    if (bk->min_rank >= *best)
        return;
    /* Longest prefixes first: within one class of fields they rank higher, and once a match
     * is found every length whose best matcher ranks below it is skipped unprobed. */
    aigw_str_t path = c->req->path;
    for (uint32_t j = bk->lens.n; j-- > 0;) {
        if (bk->lens_upto[j] >= *best)
            break;                /* no key this long or shorter can win */
        size_t L = bk->lens.v[j];
        if (L > path.n || bk->lens_min[j] >= *best)
            continue;
        if (L) {
            unsigned char ch = (unsigned char)path.p[L - 1];
            if (!(bk->lastb[j][ch >> 3] & (1u << (ch & 7))))
                continue;
        }
        const hent_t *e = find(r, key_hash(KEY_PATH, b, path.p, L), KEY_PATH, b, path.p, L);
        if (e)
            try_list(r, e->ms.v, e->ms.n, c, best, out);
    }
    try_list(r, bk->regex.v, bk->regex.n, c, best, out);
    try_list(r, bk->nopath.v, bk->nopath.n, c, best, out);
}

int aigw_router_match(const aigw_router_t *r, const aigw_router_req_t *req,
                      aigw_router_match_t *out)
{
    if (!r || !req || !out)
        return 1;
    reqctx_t c;
    out->route = NULL;
    out->n_captures = 0;
    if (prepare(req, &c, r->n_buckets > 1) != 0)
        return 1;
    uint32_t best = NO_RANK;
    int nohost_pending = r->n_buckets > 0;

    if (c.has_host && r->n_buckets > 1) {
        const char *lh = c.host.p;
        size_t n = c.host.n;
        if (r->n_exact) {
            const hent_t *e = find(r, key_hash(KEY_HOST_EXACT, 0, lh, n), KEY_HOST_EXACT, 0,
                                   lh, n);
            if (e)
                scan_bucket(r, e->val, &c, &best, out);
        }
        /* Wildcard key lengths, best possible rank first, with the no-host bucket slotted in
         * where its best rank falls; stop when nothing left can beat the match in hand. */
        for (size_t j = 0; j < r->n_wild; j++) {
            const wild_t *w = &r->wild[j];
            if (nohost_pending && r->buckets[0].min_rank <= w->min) {
                scan_bucket(r, 0, &c, &best, out);
                nohost_pending = 0;
            }
            if (w->min >= best)
                break;
            if (w->len > n)
                continue;
            /* every key of this length starts (suffix) or ends (prefix) with a dot: the
             * Host must have one there too */
            if (w->dot && lh[w->kind == KEY_HOST_SUFFIX ? n - w->len : w->len - 1] != '.')
                continue;
            const char *k = w->kind == KEY_HOST_SUFFIX ? lh + n - w->len : lh;
            const hent_t *e = find(r, key_hash(w->kind, 0, k, w->len), w->kind, 0, k, w->len);
            if (e)
                scan_bucket(r, e->val, &c, &best, out);
        }
    }
    if (nohost_pending)
        scan_bucket(r, 0, &c, &best, out);
    return best == NO_RANK ? 1 : 0;
}

int aigw_router__match_linear(const aigw_router_t *r, const aigw_router_req_t *req,
                              aigw_router_match_t *out)
{
    if (!r || !req || !out)
        return 1;
    reqctx_t c;
    out->route = NULL;
    out->n_captures = 0;
    if (prepare(req, &c, r->n_buckets > 1) != 0)
        return 1;
    for (size_t i = 0; i < r->n_m; i++)
        if (eval(r, &r->m[i], &c, out))
            return 0;
    return 1;
}

size_t aigw_router__count(const aigw_router_t *r)
{
    return r ? r->n_m : 0;
}

uint64_t aigw_router__priority(const aigw_router_t *r, size_t i, const aigw_rt_route_t **route)
{
    if (!r || i >= r->n_m)
        return 0;
    if (route)
        *route = r->m[i].ri->route;
    return r->m[i].priority;
}

/* ---- build ------------------------------------------------------------------------------- */

static void free_rinfo(rinfo_t *ri)
{
    for (size_t i = 0; i < ri->n_hosts; i++)
        free(ri->hosts[i].own);
    free(ri->hosts);
    free(ri->snis);
    for (size_t i = 0; i < ri->n_hdrs; i++) {
        hdr_match_t *hm = &ri->hdrs[i];
        free((void *)(uintptr_t)hm->field.p);
        free((void *)(uintptr_t)hm->dashed.p);
        for (size_t k = 0; k < hm->n_vals; k++)
            pcre2_code_free(hm->vals[k].re);
        free(hm->vals);
    }
    free(ri->hdrs);
}

static void free_matcher(matcher_t *m)
{
    if (m->rx)
        for (size_t i = 0; i < m->n_paths; i++)
            pcre2_code_free(m->rx[i].re);
    free(m->rx);
    free(m->paths);
}

void aigw_router_free(aigw_router_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_m; i++)
        free_matcher(&r->m[i]);
    free(r->m);
    for (size_t i = 0; i < r->n_ri; i++)
        free_rinfo(&r->ri[i]);
    free(r->ri);
    for (size_t i = 0; i < r->n_buckets; i++) {
        free(r->buckets[i].nopath.v);
        free(r->buckets[i].regex.v);
        free(r->buckets[i].lens.v);
        free(r->buckets[i].lens_min);
        free(r->buckets[i].lens_upto);
        free(r->buckets[i].lastb);
    }
    free(r->buckets);
    for (size_t i = 0; i < r->n_ents; i++)
        free(r->ents[i].ms.v);
    free(r->ents);
    free(r->slots);
    free(r->suffix_lens.v);
    free(r->prefix_lens.v);
    free(r->wild);
    pcre2_match_context_free(r->mctx);
    free(r);
}

typedef struct build {
    aigw_router_t *r;
    char *err;
    size_t errlen;
    size_t cap_m, cap_buckets;
} build_t;

static aigw_str_t route_label(const aigw_rt_route_t *rt)
{
    return rt->name.n ? rt->name : aigw_str_c(rt->id);
}

static int oom(build_t *b)
{
    if (b->err && b->errlen)
        snprintf(b->err, b->errlen, "out of memory building the router");
    return -1;
}

static int fail_regex(build_t *b, const aigw_rt_route_t *rt, const char *what, aigw_str_t src,
                      int code, size_t off)
{
    if (b->err && b->errlen) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        aigw_str_t label = route_label(rt);
        int ln = label.n > 200 ? 200 : (int)label.n, sn = src.n > 200 ? 200 : (int)src.n;
        snprintf(b->err, b->errlen,
                 "route %.*s: invalid regex in %s: '%.*s' (PCRE2 returned: %s at offset %zu)",
                 ln, label.p, what, sn, src.p ? src.p : "", (const char *)msg, off);
    }
    return -1;
}

/* Compiles a pattern of n bytes at p. */
static pcre2_code *compile(const char *p, size_t n, int *code, size_t *off)
{
    PCRE2_SIZE eo = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, n,
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_UCP |
                                       PCRE2_DOLLAR_ENDONLY,
                                   code, &eo, NULL);
    *off = eo;
    if (re)
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* the interpreter if no JIT */
    return re;
}

/* Kong: the '~' dropped, '^' put in front, compiled as is (PCRE2 takes (?<name> too). */
static int compile_path(build_t *b, const aigw_rt_route_t *rt, aigw_str_t path, rx_t *x)
{
    size_t n = path.n;            /* "^" + path minus "~" */
    char *pat = malloc(n + 1);
    if (!pat)
        return oom(b);
    pat[0] = '^';
    memcpy(pat + 1, path.p + 1, n - 1);
    pat[n] = '\0';
    int code = 0;
    size_t off = 0;
    x->re = compile(pat, n, &code, &off);
    free(pat);
    if (!x->re)
        return fail_regex(b, rt, "paths", path, code, off ? off - 1 : 0);

    uint32_t groups = 0, namecount = 0, entsize = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(x->re, PCRE2_INFO_CAPTURECOUNT, &groups);
    x->ncap = groups + 1 < AIGW_ROUTER_MAX_CAPTURES ? groups + 1 : AIGW_ROUTER_MAX_CAPTURES;
    for (size_t i = 0; i < AIGW_ROUTER_MAX_CAPTURES; i++)
        x->names[i] = AIGW_STR("");
    pcre2_pattern_info(x->re, PCRE2_INFO_NAMECOUNT, &namecount);
    if (namecount) {
        pcre2_pattern_info(x->re, PCRE2_INFO_NAMEENTRYSIZE, &entsize);
        pcre2_pattern_info(x->re, PCRE2_INFO_NAMETABLE, &table);
        for (uint32_t i = 0; table && i < namecount; i++) {
            PCRE2_SPTR e = table + (size_t)i * entsize;
            unsigned g = ((unsigned)e[0] << 8) | e[1];
            if (g < x->ncap)
                x->names[g] = aigw_str_c((const char *)(e + 2));
        }
    }
    return 0;
}

/* A host or sni entry. Hosts: kong/router/transform.lua (port split first, then a leading
 * '*' is a suffix match on the rest, a trailing '*' a prefix match). SNIs: sni_op_transform
 * and sni_val_transform (a trailing dot is dropped unless the entry is "x.*"). */
static void parse_host(aigw_str_t v, int sni, host_ent_t *h)
{
    h->port = -1;
    h->s = v;
    if (!sni) {
        long long port;
        if (split_port(v, &h->s, &port))
            h->port = port;
    }
    aigw_str_t s = h->s;
    if (s.n && s.p[0] == '*') {
        h->kind = HK_SUFFIX;
    } else if (s.n && s.p[s.n - 1] == '*') {
        h->kind = HK_PREFIX;
        s.n--;
    } else {
        h->kind = HK_EXACT;
    }
    if (sni && h->kind != HK_PREFIX && s.n > 1 && s.p[s.n - 1] == '.')
        s.n--;
    if (h->kind == HK_SUFFIX) {
        s.p++;
        s.n--;
    }
    h->s = s;
}

static char *dup_fold(aigw_str_t s, char from, char to)
{
    char *p = malloc(s.n + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < s.n; i++) {
        char c = (char)lc((unsigned char)s.p[i]);
        p[i] = c == from ? to : c;
    }
    p[s.n] = '\0';
    return p;
}

static int build_rinfo(build_t *b, const aigw_rt_route_t *rt, rinfo_t *ri)
{
    ri->route = rt;
    if (rt->n_hosts) {
        ri->hosts = calloc(rt->n_hosts, sizeof *ri->hosts);
        if (!ri->hosts)
            return oom(b);
        ri->n_hosts = rt->n_hosts;
        for (size_t i = 0; i < rt->n_hosts; i++) {
            host_ent_t *h = &ri->hosts[i];
            parse_host(rt->hosts[i], 0, h);
            h->own = dup_fold(h->s, 0, 0);
            if (!h->own)
                return oom(b);
            h->s.p = h->own;
        }
    }
    if (rt->n_snis) {
        ri->snis = calloc(rt->n_snis, sizeof *ri->snis);
        if (!ri->snis)
            return oom(b);
        for (size_t i = 0; i < rt->n_snis; i++)
            parse_host(rt->snis[i], 1, &ri->snis[i]);
        ri->n_snis = rt->n_snis;
    }
    if (rt->n_headers) {
        ri->hdrs = calloc(rt->n_headers, sizeof *ri->hdrs);
        if (!ri->hdrs)
            return oom(b);
        ri->n_hdrs = rt->n_headers;
        for (size_t i = 0; i < rt->n_headers; i++) {
            const aigw_rt_header_match_t *src = &rt->headers[i];
            hdr_match_t *hm = &ri->hdrs[i];
            char *f = dup_fold(src->name, '-', '_'), *d = dup_fold(src->name, '_', '-');
            hm->field = (aigw_str_t){ f, src->name.n };
            hm->dashed = (aigw_str_t){ d, src->name.n };
            if (!f || !d)
                return oom(b);
            if (src->n_values) {
                hm->vals = calloc(src->n_values, sizeof *hm->vals);
                if (!hm->vals)
                    return oom(b);
                hm->n_vals = src->n_values;
            }
            for (size_t k = 0; k < src->n_values; k++) {
                aigw_str_t v = src->values[k];
                hm->vals[k].s = v;
                if (v.n < 2 || v.p[0] != '~' || v.p[1] != '*')
                    continue;
                /* Kong lower-cases the whole value, regex included. */
                aigw_str_t body = { v.p + 2, v.n - 2 };
                char *pat = dup_fold(body, 0, 0);
                if (!pat)
                    return oom(b);
                int code = 0;
                size_t off = 0;
                hm->vals[k].re = compile(pat, body.n, &code, &off);
                free(pat);
                if (!hm->vals[k].re)
                    return fail_regex(b, rt, "headers", v, code, off);
            }
        }
    }
    return 0;
}

/* kong/router/transform.lua get_priority, the layout documented there and in proxy.md §1.3:
 * bits 61-63 the number of kinds of fields set, bit 60 hosts without any '*', bits 52-59
 * the number of header names (at most 255), bit 51 a regex path, bits 19-50 regex_priority
 * (regex paths only; offset so that negative values order below zero), bits 0-18 the prefix
 * length. */
static uint64_t priority(const aigw_rt_route_t *rt, int pkind, size_t plen)
{
    uint64_t w = (rt->n_methods != 0) + (rt->n_hosts != 0) + (rt->n_headers != 0) +
                 (rt->n_snis != 0) + (pkind != PK_NONE);
    int plain = rt->n_hosts != 0;
    for (size_t i = 0; i < rt->n_hosts && plain; i++)
        if (memchr(rt->hosts[i].p, '*', rt->hosts[i].n))
            plain = 0;
    uint64_t hc = rt->n_headers > 255 ? 255 : rt->n_headers;
    uint64_t p = (w << 61) | ((uint64_t)plain << 60) | (hc << 52);
    if (pkind == PK_REGEX)
        p |= (1ull << 51) | ((uint64_t)((int64_t)rt->regex_priority + 2147483648ll) << 19);
    else if (pkind == PK_PREFIX)
        p |= (uint64_t)plen & 0x7FFFF;
    return p;
}

static int add_matcher(build_t *b, const rinfo_t *ri, size_t route_idx, size_t group_idx,
                       int pkind, const uint32_t *paths, size_t n_paths)
{
    aigw_router_t *r = b->r;
    if (r->n_m == b->cap_m) {
        size_t cap = b->cap_m ? b->cap_m * 2 : 16;
        matcher_t *nm = realloc(r->m, cap * sizeof *nm);
        if (!nm)
            return oom(b);
        r->m = nm;
        b->cap_m = cap;
    }
    matcher_t *m = &r->m[r->n_m];
    memset(m, 0, sizeof *m);
    m->ri = ri;
    m->route_idx = route_idx;
    m->group_idx = group_idx;
    m->pkind = pkind;
    if (n_paths) {
        m->paths = malloc(n_paths * sizeof *m->paths);
        if (!m->paths)
            return oom(b);
        memcpy(m->paths, paths, n_paths * sizeof *paths);
        m->n_paths = n_paths;
    }
    r->n_m++;      /* counted now so that a failure below frees what it holds */
    const aigw_rt_route_t *rt = ri->route;
    m->priority = priority(rt, pkind, pkind == PK_PREFIX ? rt->paths[paths[0]].n : 0);
    if (pkind == PK_REGEX) {
        m->rx = calloc(n_paths, sizeof *m->rx);
        if (!m->rx)
            return oom(b);
        for (size_t i = 0; i < n_paths; i++)
            if (compile_path(b, rt, rt->paths[paths[i]], &m->rx[i]) != 0)
                return -1;
    }
    return 0;
}

static int is_regex(aigw_str_t p)
{
    return p.n && p.p[0] == '~';
}

/* Splits a route's paths into groups, in the order each group first appears. */
static int add_route(build_t *b, const rinfo_t *ri, size_t route_idx)
{
    const aigw_rt_route_t *rt = ri->route;
    if (rt->n_paths == 0)
        return add_matcher(b, ri, route_idx, 0, PK_NONE, NULL, 0);
    uint32_t *idx = malloc(rt->n_paths * sizeof *idx);
    char *done = calloc(rt->n_paths, 1);
    if (!idx || !done) {
        free(idx);
        free(done);
        return oom(b);
    }
    size_t group = 0;
    int rc = 0;
    for (size_t i = 0; i < rt->n_paths && rc == 0; i++) {
        if (done[i])
            continue;
        int rx = is_regex(rt->paths[i]);
        size_t n = 0;
        for (size_t k = i; k < rt->n_paths; k++) {
            if (done[k] || is_regex(rt->paths[k]) != rx ||
                (!rx && rt->paths[k].n != rt->paths[i].n))
                continue;
            done[k] = 1;
            idx[n++] = (uint32_t)k;
        }
        rc = add_matcher(b, ri, route_idx, group++, rx ? PK_REGEX : PK_PREFIX, idx, n);
    }
    free(idx);
    free(done);
    return rc;
}

static int cmp_matcher(const void *a, const void *b)
{
    const matcher_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->route_idx != y->route_idx)
        return x->route_idx < y->route_idx ? -1 : 1;
    return x->group_idx < y->group_idx ? -1 : x->group_idx > y->group_idx;
}

static void put_slot(aigw_router_t *r, uint64_t h, uint32_t idx)
{
    size_t k = h_slot(h) & r->mask;
    while (r->slots[k])
        k = (k + 1) & r->mask;
    r->slots[k] = (h & 0xffffffff00000000ull) | (uint64_t)(idx + 1);
}

static int grow_slots(aigw_router_t *r, size_t want)
{
    size_t n = 16;
    while (n < want * 2)
        n *= 2;
    uint64_t *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    free(r->slots);
    r->slots = s;
    r->mask = n - 1;
    for (size_t i = 0; i < r->n_ents; i++)
        put_slot(r, r->ents[i].hash, (uint32_t)i);
    return 0;
}

/* The entry for (kind, bucket, key), created if absent; NULL when out of memory. */
static hent_t *get_ent(build_t *b, uint32_t kind, uint32_t bucket, aigw_str_t key)
{
    aigw_router_t *r = b->r;
    uint64_t h = key_hash(kind, bucket, key.p, key.n);
    hent_t *e = (hent_t *)(uintptr_t)find(r, h, kind, bucket, key.p, key.n);
    if (e)
        return e;
    if (r->n_ents == r->cap_ents) {
        size_t cap = r->cap_ents ? r->cap_ents * 2 : 64;
        hent_t *ne = realloc(r->ents, cap * sizeof *ne);
        if (!ne)
            return NULL;
        r->ents = ne;
        r->cap_ents = cap;
    }
    e = &r->ents[r->n_ents++];
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->kind = kind;
    e->bucket = bucket;
    e->key = key;
    if (!r->slots || r->n_ents * 2 > r->mask + 1) {
        if (grow_slots(r, r->n_ents) != 0) {
            r->n_ents--;
            return NULL;
        }
    } else {
        put_slot(r, h, (uint32_t)(r->n_ents - 1));
    }
    return e;
}

static int new_bucket(build_t *b, uint32_t *id)
{
    aigw_router_t *r = b->r;
    if (r->n_buckets == b->cap_buckets) {
        size_t cap = b->cap_buckets ? b->cap_buckets * 2 : 16;
        bucket_t *nb = realloc(r->buckets, cap * sizeof *nb);
        if (!nb)
            return -1;
        r->buckets = nb;
        b->cap_buckets = cap;
    }
    memset(&r->buckets[r->n_buckets], 0, sizeof *r->buckets);
    *id = (uint32_t)r->n_buckets++;
    return 0;
}

/* Files matcher `rank` under bucket bid. */
static int index_in_bucket(build_t *b, uint32_t bid, uint32_t rank)
{
    aigw_router_t *r = b->r;
    const matcher_t *m = &r->m[rank];
    if (m->pkind == PK_NONE)
        return ulist_push_rank(&r->buckets[bid].nopath, rank) ? oom(b) : 0;
    if (m->pkind == PK_REGEX)
        return ulist_push_rank(&r->buckets[bid].regex, rank) ? oom(b) : 0;
    for (size_t i = 0; i < m->n_paths; i++) {
        aigw_str_t p = m->ri->route->paths[m->paths[i]];
        hent_t *e = get_ent(b, KEY_PATH, bid, p);
        if (!e || ulist_push_rank(&e->ms, rank) != 0 ||
            ulist_push(&r->buckets[bid].lens, (uint32_t)p.n) != 0)
            return oom(b);
    }
    return 0;
}

static int index_matcher(build_t *b, uint32_t rank)
{
    aigw_router_t *r = b->r;
    const rinfo_t *ri = r->m[rank].ri;
    if (ri->n_hosts == 0)
        return index_in_bucket(b, 0, rank);
    for (size_t i = 0; i < ri->n_hosts; i++) {
        const host_ent_t *h = &ri->hosts[i];
        uint32_t kind = h->kind == HK_EXACT ? KEY_HOST_EXACT
                      : h->kind == HK_SUFFIX ? KEY_HOST_SUFFIX : KEY_HOST_PREFIX;
        size_t before = r->n_ents;
        hent_t *e = get_ent(b, kind, 0, h->s);
        if (!e)
            return oom(b);
        if (r->n_ents != before) {
            uint32_t bid;
            if (new_bucket(b, &bid) != 0)
                return oom(b);
            e = &r->ents[r->n_ents - 1];
            e->val = bid;
            ulist_t *lens = kind == KEY_HOST_SUFFIX ? &r->suffix_lens
                          : kind == KEY_HOST_PREFIX ? &r->prefix_lens : NULL;
            if (lens && ulist_push(lens, (uint32_t)h->s.n) != 0)
                return oom(b);
        }
        if (index_in_bucket(b, e->val, rank) != 0)
            return -1;
    }
    return 0;
}

static int cmp_wild(const void *a, const void *b)
{
    const wild_t *x = a, *y = b;
    if (x->min != y->min)
        return x->min < y->min ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

static uint32_t *min_array(uint32_t n)
{
    uint32_t *v = malloc((n ? n : 1) * sizeof *v);
    if (v)
        for (uint32_t i = 0; i < n; i++)
            v[i] = NO_RANK;
    return v;
}

static uint32_t len_index(const ulist_t *l, size_t len)
{
    uint32_t lo = 0, hi = l->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->v[mid] < len)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Sorts the length lists and computes the best ranks that let a lookup skip keys, lengths
 * and buckets that cannot beat what it already found. */
static int finish_index(aigw_router_t *r)
{
    for (size_t i = 0; i < r->n_buckets; i++) {
        bucket_t *bk = &r->buckets[i];
        ulist_sort_unique(&bk->lens);
        bk->lens_min = min_array(bk->lens.n);
        bk->lastb = calloc(bk->lens.n ? bk->lens.n : 1, sizeof *bk->lastb);
        if (!bk->lens_min || !bk->lastb)
            return -1;
        bk->min_rank = NO_RANK;
        if (bk->nopath.n && bk->nopath.v[0] < bk->min_rank)
            bk->min_rank = bk->nopath.v[0];
        if (bk->regex.n && bk->regex.v[0] < bk->min_rank)
            bk->min_rank = bk->regex.v[0];
    }
    for (size_t i = 0; i < r->n_ents; i++) {
        const hent_t *e = &r->ents[i];
        if (e->kind != KEY_PATH || !e->ms.n)
            continue;
        bucket_t *bk = &r->buckets[e->bucket];
        uint32_t j = len_index(&bk->lens, e->key.n);
        if (e->key.n) {
            unsigned char c = (unsigned char)e->key.p[e->key.n - 1];
            bk->lastb[j][c >> 3] |= (uint8_t)(1u << (c & 7));
        } else {
            memset(bk->lastb[j], 0xff, sizeof bk->lastb[j]);
        }
        if (e->ms.v[0] < bk->lens_min[j])
            bk->lens_min[j] = e->ms.v[0];
        if (e->ms.v[0] < bk->min_rank)
            bk->min_rank = e->ms.v[0];
    }
    for (size_t i = 0; i < r->n_buckets; i++) {
        bucket_t *bk = &r->buckets[i];
        bk->lens_upto = min_array(bk->lens.n);
        if (!bk->lens_upto)
            return -1;
        for (uint32_t j = 0; j < bk->lens.n; j++) {
            uint32_t prev = j ? bk->lens_upto[j - 1] : NO_RANK;
            bk->lens_upto[j] = bk->lens_min[j] < prev ? bk->lens_min[j] : prev;
        }
    }
    ulist_sort_unique(&r->suffix_lens);
    ulist_sort_unique(&r->prefix_lens);
    r->n_wild = (size_t)r->suffix_lens.n + r->prefix_lens.n;
    r->wild = calloc(r->n_wild ? r->n_wild : 1, sizeof *r->wild);
    if (!r->wild)
        return -1;
    for (uint32_t i = 0; i < r->suffix_lens.n; i++)
        r->wild[i] = (wild_t){ KEY_HOST_SUFFIX, r->suffix_lens.v[i], NO_RANK, 1 };
    for (uint32_t i = 0; i < r->prefix_lens.n; i++)
        r->wild[r->suffix_lens.n + i] =
            (wild_t){ KEY_HOST_PREFIX, r->prefix_lens.v[i], NO_RANK, 1 };
    for (size_t i = 0; i < r->n_ents; i++) {
        const hent_t *e = &r->ents[i];
        if (e->kind == KEY_HOST_EXACT)
            r->n_exact++;
        if (e->kind != KEY_HOST_SUFFIX && e->kind != KEY_HOST_PREFIX)
            continue;
        uint32_t base = e->kind == KEY_HOST_SUFFIX ? 0 : r->suffix_lens.n;
        const ulist_t *l = e->kind == KEY_HOST_SUFFIX ? &r->suffix_lens : &r->prefix_lens;
        wild_t *w = &r->wild[base + len_index(l, e->key.n)];
        uint32_t mr = r->buckets[e->val].min_rank;
        if (mr < w->min)
            w->min = mr;
        if (e->key.n == 0 ||
            e->key.p[e->kind == KEY_HOST_SUFFIX ? 0 : e->key.n - 1] != '.')
            w->dot = 0;
    }
    qsort(r->wild, r->n_wild, sizeof *r->wild, cmp_wild);
    return 0;
}

aigw_router_t *aigw_router_build(const aigw_rt_route_t *routes, size_t n, char *err,
                                 size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    build_t b = { .err = err, .errlen = errlen };
    aigw_router_t *r = calloc(1, sizeof *r);
    if (!r) {
        oom(&b);
        return NULL;
    }
    b.r = r;
    if (n && !routes)
        n = 0;
    if (n >= UINT32_MAX / 4)
        goto nomem;
    r->mctx = pcre2_match_context_create(NULL);
    if (!r->mctx)
        goto nomem;
    pcre2_set_match_limit(r->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, DEPTH_LIMIT);
    if (n) {
        r->ri = calloc(n, sizeof *r->ri);
        if (!r->ri)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        const aigw_rt_route_t *rt = &routes[i];
        if (rt->protocols && !(rt->protocols & HTTP_PROTOS))
            continue;                      /* a stream route */
        if (rt->service && !rt->service->enabled)
            continue;                      /* Kong leaves these out of the router */
        rinfo_t *ri = &r->ri[r->n_ri++];
        if (build_rinfo(&b, rt, ri) != 0 || add_route(&b, ri, i) != 0)
            goto fail;
    }
    if (r->n_m >= UINT32_MAX / 2)
        goto nomem;
    if (r->n_m)
        qsort(r->m, r->n_m, sizeof *r->m, cmp_matcher);

    uint32_t nohost;
    if (new_bucket(&b, &nohost) != 0)
        goto nomem;
    for (size_t i = 0; i < r->n_m; i++)
        if (index_matcher(&b, (uint32_t)i) != 0)
            goto fail;
    if (finish_index(r) != 0)
        goto nomem;
    return r;

nomem:
    oom(&b);
fail:
    aigw_router_free(r);
    return NULL;
}
