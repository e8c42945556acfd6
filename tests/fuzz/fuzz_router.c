/* tests/fuzz/fuzz_router.c: libFuzzer harness for the router (aigwd/proxy/router.c) and path
 * normalisation (aigwd/proxy/normalize.c). The input drives a random route set (fields
 * drawn mostly from a small vocabulary so that routes overlap and match, sometimes raw
 * bytes) and a few random requests. Never crash, never leak, and:
 *  - the indexed lookup answers exactly as the unindexed reference scan (route, matched path,
 *    prefix length, captures);
 *  - a matched route satisfies every field it sets, checked here independently of the
 *    router: methods, hosts (wildcards, ports), snis over TLS, headers (plain values),
 *    paths (the matched path is one of the route's, a prefix of the request path, or a regex
 *    whose match lies in the request path); it has an HTTP protocol and no disabled service;
 *  - a normalised path is a fixed point of normalisation, has no "//", "/./" or "/../" and
 *    no decodable escape left; escaping it fits 3n + 1 bytes.
 *
 * Input: a header byte (number of routes, number of requests), then for each route and
 * request a sequence of choice bytes (see take()); exhausted input reads as zeros. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/router.h"
#include "fuzz_common.h"

#define MAXR 8
#define MAXV 3
#define MAXQ 4
#define MAXH 4

typedef struct in {
    const uint8_t *p;
    size_t n;
} in_t;

static unsigned take(in_t *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/* Raw bytes from the input: up to `max`, length from one byte. Copied into the arena. */
typedef struct arena {
    char buf[8192];
    size_t used;
} arena_t;

static aigw_str_t raw(in_t *in, arena_t *a, size_t max)
{
    size_t n = take(in) % (max + 1);
    if (a->used + n + 1 > sizeof a->buf)
        n = 0;
    char *p = a->buf + a->used;
    for (size_t i = 0; i < n; i++)
        p[i] = (char)take(in);
    p[n] = '\0';
    a->used += n + 1;
    return (aigw_str_t){ p, n };
}

static aigw_str_t pick(in_t *in, arena_t *a, const char *const *vocab, size_t nv, size_t maxraw)
{
    unsigned c = take(in);
    if (c < 224 || maxraw == 0)
        return aigw_str_c(vocab[c % nv]);
    return raw(in, a, maxraw);
}

#define PICK(in, a, v, maxraw) pick((in), (a), (v), sizeof(v) / sizeof((v)[0]), (maxraw))

static const char *const v_methods[] = { "GET", "POST", "PUT", "get" };
static const char *const v_hosts[] = { "a.com", "*.a.com", "a.*", "b.a.com", "a.com:8000",
                                       "*", "*.com:80", "A.COM", "x.a.com", "a.b",
                                       "*a.com", "a.com:" };
static const char *const v_paths[] = { "/", "/a", "/a/b", "/ab", "~/a/(\\d+)",
                                       "~/(?<x>[a-z]+)", "~/a|/b", "/a/", "~/(a)?(b)?",
                                       "/b", "~/x*", "~(" };
static const char *const v_hnames[] = { "x-a", "x_a", "x-b", "X-A" };
static const char *const v_hvals[] = { "1", "v", "~*^v\\d", "~*a", "V1", "" };
static const char *const v_snis[] = { "a.com", "*.a.com", "a.*", "a.com.", "b.a.com" };
static const char *const v_rhosts[] = { "a.com", "b.a.com", "a.com:8000", "a.com:80", "A.Com",
                                        "a.b", "x.a.com:8000", "a.org", "", "a.com:x",
                                        "[::1]:8000", "a.b.c.a.com" };
static const char *const v_rpaths[] = { "/", "/a", "/a/b", "/ab", "/a/12", "/abc", "/b",
                                        "/a/../b", "/%61/b", "//a//b", "/x", "/a/%2Fb" };
static const char *const v_rhnames[] = { "x-a", "X_A", "x_a", "X-B", "other" };
static const char *const v_rhvals[] = { "1", "v", "V7", "xa", "v12", "" };

typedef struct route_store {
    aigw_rt_route_t r[MAXR];
    aigw_str_t methods[MAXR][MAXV], hosts[MAXR][MAXV], paths[MAXR][MAXV], snis[MAXR][MAXV];
    aigw_rt_header_match_t hdrs[MAXR][MAXV];
    aigw_str_t hvals[MAXR][MAXV][MAXV];
    aigw_rt_service_t svc[2];
} route_store_t;

static size_t fill(in_t *in, arena_t *a, aigw_str_t *dst, const char *const *v, size_t nv,
                   size_t maxraw)
{
    size_t n = take(in) % (MAXV + 1);
    if (n == 3 && (take(in) & 1))
        n = 0;                    /* empty fields are the most common */
    for (size_t i = 0; i < n; i++)
        dst[i] = pick(in, a, v, nv, maxraw);
    return n;
}

static void make_routes(in_t *in, arena_t *a, route_store_t *s, size_t n)
{
    s->svc[0] = (aigw_rt_service_t){ .enabled = 1 };
    s->svc[1] = (aigw_rt_service_t){ .enabled = 0 };
    for (size_t i = 0; i < n; i++) {
        aigw_rt_route_t *r = &s->r[i];
        memset(r, 0, sizeof *r);
        snprintf(r->id, sizeof r->id, "route-%zu", i);
        unsigned proto = take(in);
        r->protocols = proto < 200 ? (AIGW_PROTO_HTTP | AIGW_PROTO_HTTPS) : (proto & 0xff);
        r->methods = s->methods[i];
        r->n_methods = fill(in, a, s->methods[i], v_methods, 4, 0);
        r->hosts = s->hosts[i];
        r->n_hosts = fill(in, a, s->hosts[i], v_hosts, sizeof v_hosts / sizeof *v_hosts, 12);
        r->paths = s->paths[i];
        r->n_paths = fill(in, a, s->paths[i], v_paths, sizeof v_paths / sizeof *v_paths, 12);
        r->snis = s->snis[i];
        r->n_snis = fill(in, a, s->snis[i], v_snis, sizeof v_snis / sizeof *v_snis, 0);
        size_t nh = take(in) % 4 == 3 ? 1 + take(in) % MAXV : 0;
        r->headers = s->hdrs[i];
        r->n_headers = nh;
        for (size_t k = 0; k < nh; k++) {
            s->hdrs[i][k].name = PICK(in, a, v_hnames, 0);
            s->hdrs[i][k].values = s->hvals[i][k];
            s->hdrs[i][k].n_values = 1 + take(in) % MAXV;
            for (size_t j = 0; j < s->hdrs[i][k].n_values; j++)
                s->hvals[i][k][j] = PICK(in, a, v_hvals, 8);
        }
        r->regex_priority = (int)(int8_t)take(in);
        unsigned sv = take(in) % 4;
        r->service = sv == 1 ? &s->svc[0] : sv == 2 ? &s->svc[1] : NULL;
    }
}

/* ---- the independent field check ------------------------------------------------------------ */

static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

static int all_digits(const char *p, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* Splits "h:port" (port all digits) as Kong does; port -1 when none. */
static aigw_str_t split(aigw_str_t v, long long *port)
{
    *port = -1;
    const char *c = v.n ? memchr(v.p, ':', v.n) : NULL;
    size_t rest = c ? v.n - (size_t)(c + 1 - v.p) : 0;
    if (c && all_digits(c + 1, rest)) {
        long long n = 0;
        for (size_t i = 0; i < rest; i++)
            n = n > 100000000000ll ? n : n * 10 + (c[1 + i] - '0');
        *port = n;
        return (aigw_str_t){ v.p, (size_t)(c - v.p) };
    }
    return v;
}

static int wild_match(aigw_str_t pat, aigw_str_t v)
{
    if (pat.n && pat.p[0] == '*')
        return v.n >= pat.n - 1 && ieq(v.p + v.n - (pat.n - 1), pat.p + 1, pat.n - 1);
    if (pat.n && pat.p[pat.n - 1] == '*')
        return v.n >= pat.n - 1 && ieq(v.p, pat.p, pat.n - 1);
    return v.n == pat.n && ieq(v.p, pat.p, v.n);
}

static int satisfies(const aigw_rt_route_t *rt, const aigw_router_req_t *q,
                     const aigw_router_match_t *m)
{
    if (rt->protocols && !(rt->protocols & (AIGW_PROTO_HTTP | AIGW_PROTO_HTTPS |
                                            AIGW_PROTO_GRPC | AIGW_PROTO_GRPCS)))
        return 0;
    if (rt->service && !rt->service->enabled)
        return 0;
    if (rt->n_methods) {
        int ok = 0;
        for (size_t i = 0; i < rt->n_methods; i++)
            ok |= aigw_str_eq(rt->methods[i], q->method);
        if (!ok)
            return 0;
    }
    if (rt->n_hosts) {
        if (!q->host.p)
            return 0;
        long long rport;
        aigw_str_t h = split(q->host, &rport);
        long long dst = rport >= 0 ? rport : q->port;
        int ok = 0;
        for (size_t i = 0; i < rt->n_hosts && !ok; i++) {
            long long p;
            aigw_str_t e = split(rt->hosts[i], &p);
            ok = (p < 0 || p == dst) && wild_match(e, h);
        }
        if (!ok)
            return 0;
    }
    if (rt->n_snis && q->tls) {
        if (!q->sni.n)
            return 0;
        int ok = 0;
        for (size_t i = 0; i < rt->n_snis && !ok; i++) {
            aigw_str_t e = rt->snis[i];
            int prefix = e.n && e.p[0] != '*' && e.p[e.n - 1] == '*';
            if (!prefix && e.n > 1 && e.p[e.n - 1] == '.') {
                e.n--;
                if (e.n == 1 && e.p[0] == '*') {
                    ok = 1;               /* "*." -> suffix "" */
                    continue;
                }
                if (e.p[0] != '*') {      /* exact now, whatever its last byte */
                    ok = e.n == q->sni.n && ieq(e.p, q->sni.p, e.n);
                    continue;
                }
            }
            ok = wild_match(e, q->sni);
        }
        if (!ok)
            return 0;
    }
    for (size_t i = 0; i < rt->n_headers; i++) {
        const aigw_rt_header_match_t *hm = &rt->headers[i];
        int has_regex = 0, ok = 0;
        for (size_t k = 0; k < hm->n_values; k++)
            if (hm->values[k].n >= 2 && hm->values[k].p[0] == '~' && hm->values[k].p[1] == '*')
                has_regex = 1;
        /* some request header whose name is the route's, '-' and '_' alike */
        for (size_t j = 0; j < q->n_headers; j++) {
            aigw_str_t nm = q->header_names[j];
            if (nm.n != hm->name.n)
                continue;
            int same = 1;
            for (size_t c = 0; c < nm.n && same; c++) {
                unsigned char x = (unsigned char)nm.p[c], y = (unsigned char)hm->name.p[c];
                x = x == '_' ? '-' : (x >= 'A' && x <= 'Z') ? (unsigned char)(x + 32) : x;
                y = y == '_' ? '-' : (y >= 'A' && y <= 'Z') ? (unsigned char)(y + 32) : y;
                same = x == y;
            }
            if (!same)
                continue;
            for (size_t k = 0; k < hm->n_values && !ok; k++)
                ok = has_regex || (q->header_values[j].n == hm->values[k].n &&
                                   ieq(q->header_values[j].p, hm->values[k].p, hm->values[k].n));
        }
        if (!ok)
            return 0;
    }
    if (rt->n_paths) {
        int found = 0;
        for (size_t i = 0; i < rt->n_paths; i++)
            found |= aigw_str_eq(rt->paths[i], m->matched_path) &&
                     rt->paths[i].p == m->matched_path.p;
        if (!found)
            return 0;
        if (m->matched_path.n && m->matched_path.p[0] == '~') {
            if (m->prefix_len > q->path.n || m->n_captures < 1 ||
                m->n_captures > AIGW_ROUTER_MAX_CAPTURES)
                return 0;
            for (size_t i = 0; i < m->n_captures; i++) {
                aigw_str_t c = m->captures[i];
                if (c.p && (c.p < q->path.p || c.p + c.n > q->path.p + q->path.n))
                    return 0;
            }
            if (!m->captures[0].p || m->captures[0].n != m->prefix_len)
                return 0;
        } else {
            if (m->prefix_len != m->matched_path.n || q->path.n < m->prefix_len ||
                (m->prefix_len && memcmp(q->path.p, m->matched_path.p, m->prefix_len) != 0) ||
                m->n_captures != 0)
                return 0;
        }
    } else if (m->prefix_len != 0 || m->matched_path.n != 0) {
        return 0;
    }
    return 1;
}

/* ---- normalisation checks ------------------------------------------------------------------- */

static int reserved(unsigned c)
{
    return c && strchr("!*'();:@&=+$,/?%#[]", (int)c) != NULL;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void check_normalized(const char *p, int n)
{
    char again[600];
    CHECK(n >= 1 && n < (int)sizeof again && p[0] == '/' && p[n] == '\0');
    CHECK(aigw_path_normalize((aigw_str_t){ p, (size_t)n }, again, sizeof again) == n);
    CHECK(memcmp(again, p, (size_t)n) == 0);
    for (int i = 0; i < n; i++) {
        if (p[i] == '/') {
            CHECK(!(i + 1 < n && p[i + 1] == '/'));
            int e = i + 1;
            while (e < n && p[e] != '/')
                e++;
            int len = e - i - 1;
            CHECK(!(len == 1 && p[i + 1] == '.'));
            CHECK(!(len == 2 && p[i + 1] == '.' && p[i + 2] == '.'));
        }
        if (p[i] == '%') {
            CHECK(i + 2 < n);
            int hi = hexv(p[i + 1]), lo = hexv(p[i + 2]);
            CHECK(hi >= 0 && lo >= 0);
            CHECK(reserved((unsigned)(hi * 16 + lo)));
            CHECK(!(p[i + 1] >= 'a' && p[i + 1] <= 'f') && !(p[i + 2] >= 'a' && p[i + 2] <= 'f'));
        }
    }
    char esc[3 * 600 + 1];
    int en = aigw_path_escape((aigw_str_t){ p, (size_t)n }, esc, 3 * (size_t)n + 1);
    CHECK(en >= n && en <= 3 * n);
}

/* ---- the harness ---------------------------------------------------------------------------- */

static void run_request(in_t *in, arena_t *a, const aigw_router_t *r)
{
    aigw_router_req_t q;
    memset(&q, 0, sizeof q);
    q.method = PICK(in, a, v_methods, 0);
    unsigned hc = take(in);
    q.host = hc < 20 ? AIGW_STR_NULL : PICK(in, a, v_rhosts, 24);
    q.port = (take(in) & 1) ? 8000 : 80;
    q.tls = take(in) & 1;
    q.sni = (take(in) & 1) ? PICK(in, a, v_snis, 12) : AIGW_STR("");

    /* a path: from the vocabulary or raw bytes, normalised when that succeeds */
    aigw_str_t path = PICK(in, a, v_rpaths, 40);
    char norm[600];
    int nn = aigw_path_normalize(path, norm, sizeof norm);
    if (nn >= 0) {
        check_normalized(norm, nn);
        q.path = (aigw_str_t){ norm, (size_t)nn };
    } else {
        q.path = path;            /* the router must cope with anything */
    }

    aigw_str_t names[MAXH], values[MAXH];
    q.n_headers = take(in) % (MAXH + 1);
    for (size_t i = 0; i < q.n_headers; i++) {
        names[i] = PICK(in, a, v_rhnames, 8);
        values[i] = PICK(in, a, v_rhvals, 8);
    }
    q.header_names = names;
    q.header_values = values;

    aigw_router_match_t m1, m2;
    int rc1 = aigw_router_match(r, &q, &m1);
    int rc2 = aigw_router__match_linear(r, &q, &m2);
    CHECK(rc1 == rc2);
    CHECK(rc1 == 0 || rc1 == 1);
    if (rc1 != 0) {
        CHECK(m1.route == NULL);
        return;
    }
    CHECK(m1.route == m2.route);
    CHECK(m1.matched_path.p == m2.matched_path.p && m1.matched_path.n == m2.matched_path.n);
    CHECK(m1.prefix_len == m2.prefix_len && m1.n_captures == m2.n_captures);
    for (size_t i = 0; i < m1.n_captures; i++)
        CHECK(m1.captures[i].p == m2.captures[i].p && m1.captures[i].n == m2.captures[i].n);
    CHECK(satisfies(m1.route, &q, &m1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_t in = { data, size };
    static arena_t a;
    static route_store_t s;
    a.used = 0;
    unsigned h = take(&in);
    size_t nr = h % (MAXR + 1), nq = 1 + (h >> 4) % MAXQ;
    make_routes(&in, &a, &s, nr);

    char err[256];
    err[0] = '\0';
    aigw_router_t *r = aigw_router_build(s.r, nr, err, sizeof err);
    if (!r) {
        CHECK(err[0] != '\0');    /* a regex that does not compile, named */
        CHECK(strncmp(err, "route ", 6) == 0 || strstr(err, "memory"));
        return 0;
    }
    for (size_t i = 0; i < nq; i++)
        run_request(&in, &a, r);
    aigw_router_free(r);
    return 0;
}
