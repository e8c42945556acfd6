/* tests/unit/test_router.c: aigwd/proxy/router.c and normalize.c: Kong 3.9's
 * traditional_compatible routing rules (reference/proxy.md §1) and path normalisation.
 * Every match is also checked against the unindexed reference scan, so the index can never
 * answer differently. Prints (does not assert) what a lookup costs with 1 and 10k routes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/router.h"

/* ---- building routes ----------------------------------------------------------------------- */

#define MAXV 6

typedef struct hspec {
    const char *name;
    const char *vals[MAXV];
} hspec_t;

typedef struct rspec {
    const char *name;
    const char *methods[MAXV];
    const char *hosts[MAXV];
    const char *paths[MAXV];
    const char *snis[MAXV];
    hspec_t headers[MAXV];
    int regex_priority;
    unsigned protocols;          /* 0: http + https */
    const aigw_rt_service_t *service;
} rspec_t;

typedef struct rset {
    aigw_rt_route_t *routes;
    size_t n;
    aigw_router_t *r;
} rset_t;

static size_t count(const char *const *v)
{
    size_t n = 0;
    while (n < MAXV && v[n])
        n++;
    return n;
}

static aigw_str_t *strs(const char *const *v, size_t *n)
{
    *n = count(v);
    if (!*n)
        return NULL;
    aigw_str_t *a = calloc(*n, sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < *n; i++)
        a[i] = aigw_str_c(v[i]);
    return a;
}

static void fill_route(aigw_rt_route_t *rt, const rspec_t *s, size_t i)
{
    memset(rt, 0, sizeof *rt);
    snprintf(rt->id, sizeof rt->id, "00000000-0000-0000-0000-%012llu",
             (unsigned long long)(i % 1000000000000ull));
    rt->name = s->name ? aigw_str_c(s->name) : AIGW_STR("");
    rt->protocols = s->protocols ? s->protocols : (AIGW_PROTO_HTTP | AIGW_PROTO_HTTPS);
    rt->methods = strs(s->methods, &rt->n_methods);
    rt->hosts = strs(s->hosts, &rt->n_hosts);
    rt->paths = strs(s->paths, &rt->n_paths);
    rt->snis = strs(s->snis, &rt->n_snis);
    size_t nh = 0;
    while (nh < MAXV && s->headers[nh].name)
        nh++;
    if (nh) {
        rt->headers = calloc(nh, sizeof *rt->headers);
        assert_non_null(rt->headers);
        for (size_t k = 0; k < nh; k++) {
            rt->headers[k].name = aigw_str_c(s->headers[k].name);
            rt->headers[k].values = strs(s->headers[k].vals, &rt->headers[k].n_values);
        }
        rt->n_headers = nh;
    }
    rt->regex_priority = s->regex_priority;
    rt->strip_path = 1;
    rt->https_redirect_status_code = 426;
    rt->service = s->service;
}

static void free_routes(aigw_rt_route_t *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        aigw_rt_route_t *rt = &routes[i];
        free(rt->methods);
        free(rt->hosts);
        free(rt->paths);
        free(rt->snis);
        for (size_t k = 0; k < rt->n_headers; k++)
            free(rt->headers[k].values);
        free(rt->headers);
    }
    free(routes);
}

static rset_t build(const rspec_t *specs, size_t n)
{
    rset_t s = { calloc(n ? n : 1, sizeof(aigw_rt_route_t)), n, NULL };
    assert_non_null(s.routes);
    for (size_t i = 0; i < n; i++)
        fill_route(&s.routes[i], &specs[i], i);
    char err[256];
    s.r = aigw_router_build(s.routes, n, err, sizeof err);
    if (!s.r)
        fail_msg("router build failed: %s", err);
    return s;
}

static void done(rset_t *s)
{
    aigw_router_free(s->r);
    free_routes(s->routes, s->n);
}

#define BUILD(...)                                                      \
    rspec_t specs_[] = { __VA_ARGS__ };                                 \
    rset_t rs = build(specs_, sizeof specs_ / sizeof specs_[0])

/* ---- requests -------------------------------------------------------------------------------- */

typedef struct rq {
    const char *method;
    const char *host;            /* NULL: no Host header */
    const char *path;
    int port;
    int tls;
    const char *sni;
    const char *hdrs[2 * MAXV];  /* name, value, name, value ... */
} rq_t;

/* Index of the matched route, or -1; the indexed and the linear lookups must agree. */
static int route_of(const rset_t *s, const rq_t *q, aigw_router_match_t *out)
{
    aigw_str_t names[MAXV], values[MAXV];
    size_t nh = 0;
    while (nh < MAXV && q->hdrs[2 * nh]) {
        names[nh] = aigw_str_c(q->hdrs[2 * nh]);
        values[nh] = aigw_str_c(q->hdrs[2 * nh + 1]);
        nh++;
    }
    aigw_router_req_t req = {
        .method = aigw_str_c(q->method ? q->method : "GET"),
        .host = q->host ? aigw_str_c(q->host) : AIGW_STR_NULL,
        .port = q->port ? q->port : 8000,
        .path = aigw_str_c(q->path ? q->path : "/"),
        .tls = q->tls,
        .sni = q->sni ? aigw_str_c(q->sni) : AIGW_STR(""),
        .header_names = names,
        .header_values = values,
        .n_headers = nh,
    };
    aigw_router_match_t a, b;
    memset(&a, 0xA5, sizeof a);
    int rc = aigw_router_match(s->r, &req, &a);
    int rc2 = aigw_router__match_linear(s->r, &req, &b);
    assert_int_equal(rc, rc2);
    if (rc != 0) {
        assert_int_equal(rc, 1);
        assert_null(a.route);
        return -1;
    }
    assert_ptr_equal(a.route, b.route);
    assert_true(aigw_str_eq(a.matched_path, b.matched_path));
    assert_int_equal(a.prefix_len, b.prefix_len);
    assert_int_equal(a.n_captures, b.n_captures);
    if (out)
        *out = a;
    return (int)(a.route - s->routes);
}

#define M(...) route_of(&rs, &(rq_t){ __VA_ARGS__ }, NULL)
#define MO(out, ...) route_of(&rs, &(rq_t){ __VA_ARGS__ }, (out))

static int str_is(aigw_str_t s, const char *c)
{
    return aigw_str_eq(s, aigw_str_c(c));
}

/* ---- normalisation --------------------------------------------------------------------------- */

static int norm(const char *in, char *out, size_t cap)
{
    return aigw_path_normalize(aigw_str_c(in), out, cap);
}

static void expect_norm(const char *in, const char *want)
{
    char out[256];
    int n = norm(in, out, sizeof out);
    if (!want) {
        if (n != -1)
            fail_msg("normalize(%s) = %s, want an error", in, n >= 0 ? out : "?");
        return;
    }
    if (n < 0)
        fail_msg("normalize(%s) failed, want %s", in, want);
    assert_int_equal((size_t)n, strlen(want));
    assert_string_equal(out, want);
    /* Normalising twice changes nothing. */
    char again[256];
    assert_int_equal(norm(out, again, sizeof again), n);
    assert_string_equal(again, want);
}

static void test_normalize(void **state)
{
    (void)state;
    expect_norm("/", "/");
    expect_norm("/foo/bar", "/foo/bar");
    /* dot segments */
    expect_norm("/a/../admin", "/admin");
    expect_norm("/a/b/../../c", "/c");
    expect_norm("/a/./b/.", "/a/b/");
    expect_norm("/a/.", "/a/");
    expect_norm("/a/..", "/");
    expect_norm("/a/b/..", "/a/");
    expect_norm("/./a", "/a");
    expect_norm("/.../x", "/.../x");
    expect_norm("/a/..b/.c", "/a/..b/.c");
    /* "%2e%2e" is decoded, then resolved */
    expect_norm("/a/%2e%2e/admin", "/admin");
    expect_norm("/a/%2E%2e/admin", "/admin");
    expect_norm("/a/.%2e/b", "/b");
    expect_norm("/a/%2e/b", "/a/b");
    /* only escapes of non-reserved characters are decoded; reserved ones are upper-cased */
    expect_norm("/foo%2Fbar", "/foo%2Fbar");
    expect_norm("/foo%2fbar", "/foo%2Fbar");
    expect_norm("/a%2F..%2Fb", "/a%2F..%2Fb");
    expect_norm("/%41%62c%7euser", "/Abc~user");
    expect_norm("/a%20b", "/a b");
    expect_norm("/%25", "/%25");
    expect_norm("/%252e", "/%252e");
    expect_norm("/x%3fy%3Dz%23", "/x%3Fy%3Dz%23");
    expect_norm("/caf%C3%A9", "/caf\xC3\xA9");
    /* repeated slashes merge */
    expect_norm("//a///b//", "/a/b/");
    expect_norm("//", "/");
    expect_norm("/a//../b", "/b");
    expect_norm("/a/.//b", "/a/b");
    /* what nginx answers with 400 */
    expect_norm("/../a", NULL);
    expect_norm("/..", NULL);
    expect_norm("/a/../../b", NULL);
    expect_norm("/%2e%2e/admin", NULL);
    expect_norm("/%zz", NULL);
    expect_norm("/%4", NULL);
    expect_norm("/a%", NULL);
    expect_norm("/%00", NULL);
    expect_norm("a/b", NULL);
    expect_norm("", NULL);
    expect_norm("*", NULL);

    char small[4];
    assert_int_equal(norm("/abcd", small, sizeof small), -1);
    assert_int_equal(norm("/abc", small, sizeof small), -1);   /* cap must be >= n + 1 */
    char fit[5];
    assert_int_equal(norm("/abc", fit, sizeof fit), 4);
    assert_string_equal(fit, "/abc");
    assert_int_equal(aigw_path_normalize(AIGW_STR_NULL, fit, sizeof fit), -1);
}

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(aigw_path_escape(AIGW_STR("/a b"), out, sizeof out), 6);
    assert_string_equal(out, "/a%20b");
    assert_int_equal(aigw_path_escape(AIGW_STR("/caf\xC3\xA9"), out, sizeof out), 10);
    assert_string_equal(out, "/caf%C3%A9");
    const char *keep = "/!#$&'()*+,/:;=?@[]AZaz09-_.~%2F";
    assert_int_equal(aigw_path_escape(aigw_str_c(keep), out, sizeof out), (int)strlen(keep));
    assert_string_equal(out, keep);
    assert_int_equal(aigw_path_escape(AIGW_STR("/\"<>\\^`{|}"), out, sizeof out), 28);
    assert_string_equal(out, "/%22%3C%3E%5C%5E%60%7B%7C%7D");
    assert_int_equal(aigw_path_escape(AIGW_STR("/ "), out, 4), -1);
    assert_int_equal(aigw_path_escape(AIGW_STR("/ "), out, 5), 4);
}

/* ---- paths ----------------------------------------------------------------------------------- */

static void test_prefix(void **state)
{
    (void)state;
    BUILD({ .paths = { "/foo" } }, { .paths = { "/" } });
    assert_int_equal(M(.path = "/foo"), 0);
    assert_int_equal(M(.path = "/foo/"), 0);
    assert_int_equal(M(.path = "/foobar"), 0);
    assert_int_equal(M(.path = "/foo/bar"), 0);
    assert_int_equal(M(.path = "/fo"), 1);
    assert_int_equal(M(.path = "/Foo"), 1);          /* paths are case-sensitive */
    aigw_router_match_t mt;
    assert_int_equal(MO(&mt, .path = "/foo/bar"), 0);
    assert_true(str_is(mt.matched_path, "/foo"));
    assert_int_equal(mt.prefix_len, 4);
    assert_int_equal(mt.n_captures, 0);
    done(&rs);
}

static void test_no_route(void **state)
{
    (void)state;
    BUILD({ .paths = { "/foo" } });
    assert_int_equal(M(.path = "/bar"), -1);
    assert_int_equal(M(.path = "/"), -1);
    done(&rs);

    rset_t empty = build(NULL, 0);
    aigw_router_req_t req = { .method = AIGW_STR("GET"), .path = AIGW_STR("/") };
    aigw_router_match_t mt;
    assert_int_equal(aigw_router_match(empty.r, &req, &mt), 1);
    done(&empty);
}

static void test_longest_prefix(void **state)
{
    (void)state;
    BUILD({ .paths = { "/a" } }, { .paths = { "/a/b/c" } }, { .paths = { "/a/b" } });
    assert_int_equal(M(.path = "/a/b/c/d"), 1);
    assert_int_equal(M(.path = "/a/b/x"), 2);
    assert_int_equal(M(.path = "/a/x"), 0);
    assert_int_equal(M(.path = "/x"), -1);
    done(&rs);
}

static void test_regex_anchored_at_start(void **state)
{
    (void)state;
    BUILD({ .paths = { "~/v[0-9]+/users" } });
    aigw_router_match_t mt;
    assert_int_equal(MO(&mt, .path = "/v1/users"), 0);
    assert_int_equal(mt.prefix_len, 9);
    assert_true(str_is(mt.matched_path, "~/v[0-9]+/users"));
    assert_int_equal(M(.path = "/v12/users/7/x"), 0);     /* not anchored at the end */
    assert_int_equal(M(.path = "/api/v1/users"), -1);     /* anchored at the start */
    assert_int_equal(M(.path = "/vx/users"), -1);
    done(&rs);
}

static void test_regex_beats_prefix(void **state)
{
    (void)state;
    /* Kong spec: "matches a [uri regex] even if a [uri] got an exact match" */
    BUILD({ .paths = { "/route/fixture" } }, { .paths = { "~/route/(fixture)" } },
          { .paths = { "/route/persons" } }, { .paths = { "~/route/persons/\\d+/profile" } });
    assert_int_equal(M(.path = "/route/fixture"), 1);
    assert_int_equal(M(.path = "/route/persons/123/profile"), 3);
    assert_int_equal(M(.path = "/route/persons/abc/profile"), 2);
    done(&rs);
}

static void test_regex_host_vs_prefix(void **state)
{
    (void)state;
    /* Kong spec: "matches a [uri regex + host] even if a [prefix uri] got a match" */
    BUILD({ .hosts = { "route.com" }, .paths = { "/pat" } },
          { .hosts = { "route.com" }, .paths = { "/path" }, .methods = { "POST" } },
          { .hosts = { "route.com" }, .paths = { "~/(path)" } });
    assert_int_equal(M(.path = "/path", .host = "route.com"), 2);
    assert_int_equal(M(.method = "POST", .path = "/path", .host = "route.com"), 1);
    assert_int_equal(M(.path = "/pat", .host = "route.com"), 0);
    done(&rs);
}

static void test_regex_priority(void **state)
{
    (void)state;
    BUILD({ .paths = { "~/a/.*" }, .regex_priority = 0 },
          { .paths = { "~/a/b.*" }, .regex_priority = 5 },
          { .paths = { "~/a/bc" }, .regex_priority = -3 },
          { .paths = { "/a/bcdefghijklmnop" }, .regex_priority = 100 });
    assert_int_equal(M(.path = "/a/bc"), 1);          /* 5 > 0 > -3 */
    assert_int_equal(M(.path = "/a/x"), 0);
    /* a prefix route's regex_priority counts for nothing: every regex beats it */
    assert_int_equal(M(.path = "/a/bcdefghijklmnop"), 1);
    done(&rs);

}

static void test_regex_tie(void **state)
{
    (void)state;
    /* with equal regex_priority, the earlier route wins the tie */
    BUILD({ .paths = { "~/x" } }, { .paths = { "~/x/y" } });
    assert_int_equal(M(.path = "/x/y"), 0);
    done(&rs);
}

static void test_regex_captures(void **state)
{
    (void)state;
    BUILD({ .paths = { "~/users/(?<id>\\d+)/(\\w+)(/x)?" } }, { .paths = { "~/plain" } });
    aigw_router_match_t mt;
    assert_int_equal(MO(&mt, .path = "/users/42/profile/more"), 0);
    assert_int_equal(mt.n_captures, 4);
    assert_true(str_is(mt.captures[0], "/users/42/profile"));
    assert_true(str_is(mt.captures[1], "42"));
    assert_true(str_is(mt.capture_names[1], "id"));
    assert_true(str_is(mt.captures[2], "profile"));
    assert_int_equal(mt.capture_names[2].n, 0);
    assert_null(mt.captures[3].p);                    /* the group did not take part */
    assert_int_equal(mt.prefix_len, 17);
    assert_int_equal(MO(&mt, .path = "/plain/x"), 1);
    assert_int_equal(mt.n_captures, 1);
    assert_true(str_is(mt.captures[0], "/plain"));
    done(&rs);
}

static void test_regex_alternation(void **state)
{
    (void)state;
    /* Kong puts "^" in front of the source as is: only the first alternative is anchored */
    BUILD({ .paths = { "~/a|/b" } });
    assert_int_equal(M(.path = "/a"), 0);
    assert_int_equal(M(.path = "/x/b"), 0);
    done(&rs);
}

static void test_regex_invalid(void **state)
{
    (void)state;
    rspec_t specs[] = { { .paths = { "/ok" } }, { .name = "bad-one", .paths = { "~/(x" } } };
    aigw_rt_route_t routes[2];
    fill_route(&routes[0], &specs[0], 0);
    fill_route(&routes[1], &specs[1], 1);
    char err[256];
    assert_null(aigw_router_build(routes, 2, err, sizeof err));
    assert_non_null(strstr(err, "route bad-one: invalid regex in paths: '~/(x'"));
    for (size_t i = 0; i < 2; i++)
        free(routes[i].paths);

    rspec_t hs = { .headers = { { "x-a", { "~*(" } } } };
    fill_route(&routes[0], &hs, 7);
    assert_null(aigw_router_build(routes, 1, err, sizeof err));
    assert_non_null(strstr(err, "route 00000000-0000-0000-0000-000000000007: invalid regex in "
                                "headers"));
    free(routes[0].headers[0].values);
    free(routes[0].headers);
}

static void test_regex_match_limit(void **state)
{
    (void)state;
    BUILD({ .paths = { "~/(a+)+$" } }, { .paths = { "/" } });
    char path[64] = "/";
    memset(path + 1, 'a', 30);
    path[31] = 'b';
    path[32] = '\0';
    /* catastrophic backtracking stops at the match limit: no match, not a hang */
    assert_int_equal(M(.path = path), 1);
    path[31] = '\0';
    assert_int_equal(M(.path = path), 0);
    done(&rs);
}

static void test_route_splitting(void **state)
{
    (void)state;
    /* one matcher per (length | regex) group, each with its own priority */
    BUILD({ .paths = { "/a", "/abc/def" } }, { .paths = { "/abc" } },
          { .paths = { "/y", "~/x/\\d+" } }, { .paths = { "/x/1" } });
    assert_int_equal(M(.path = "/abc/def/x"), 0);     /* via "/abc/def" (8) over "/abc" (4) */
    assert_int_equal(M(.path = "/abc/x"), 1);         /* "/abc" (4) over "/a" (2) */
    assert_int_equal(M(.path = "/a"), 0);
    assert_int_equal(M(.path = "/x/12"), 2);          /* the regex group beats "/x/1" */
    assert_int_equal(M(.path = "/x/a"), -1);
    assert_int_equal(M(.path = "/y/z"), 2);
    aigw_router_match_t mt;
    assert_int_equal(MO(&mt, .path = "/abc/def/x"), 0);
    assert_true(str_is(mt.matched_path, "/abc/def"));
    assert_int_equal(mt.prefix_len, 8);
    assert_int_equal(MO(&mt, .path = "/ab"), 0);
    assert_true(str_is(mt.matched_path, "/a"));
    assert_int_equal(mt.prefix_len, 2);
    /* 2 + 1 + 2 + 1 matchers */
    assert_int_equal(aigw_router__count(rs.r), 6);
    done(&rs);
}

/* ---- hosts ----------------------------------------------------------------------------------- */

static void test_hosts(void **state)
{
    (void)state;
    /* the fallback has the same priority as the wildcard routes (one field, no plain host)
     * and comes after them; a "/" path would outrank them (its prefix length counts) */
    BUILD({ .hosts = { "api.example.com" } },
          { .hosts = { "*.example.com" } },
          { .hosts = { "example.*" } },
          { .methods = { "GET" } });
    assert_int_equal(M(.host = "api.example.com"), 0);
    assert_int_equal(M(.host = "API.Example.COM"), 0);
    assert_int_equal(M(.host = "api.example.com:8443"), 0);   /* the Host's port is dropped */
    assert_int_equal(M(.host = "www.example.com"), 1);
    assert_int_equal(M(.host = "a.b.example.com"), 1);        /* "*" may be several labels */
    assert_int_equal(M(.host = "example.com"), 2);            /* not "*.example.com" */
    assert_int_equal(M(.host = "example.co.uk"), 2);
    assert_int_equal(M(.host = "www.example.org"), 3);
    assert_int_equal(M(.host = NULL), 3);
    assert_int_equal(M(.host = ""), 3);
    done(&rs);
}

static void test_plain_host_beats_wildcard(void **state)
{
    (void)state;
    BUILD({ .hosts = { "*.route.com" } }, { .hosts = { "route.*" } },
          { .hosts = { "plain.route.com" } });
    assert_int_equal(M(.host = "plain.route.com"), 2);
    assert_int_equal(M(.host = "foo.route.com"), 0);
    assert_int_equal(M(.host = "route.org"), 1);
    done(&rs);
}

static void test_mixed_hosts_not_plain(void **state)
{
    (void)state;
    /* a route with one wildcard among plain hosts is not "plain" */
    BUILD({ .hosts = { "a.com", "*.b.com" }, .paths = { "/" } },
          { .hosts = { "a.com" }, .paths = { "/" } });
    assert_int_equal(M(.host = "a.com"), 1);
    assert_int_equal(M(.host = "x.b.com"), 0);
    done(&rs);
}

static void test_host_ports(void **state)
{
    (void)state;
    /* Kong spec "[host] matches specific port" and friends */
    /* (equal priorities: the port-specific route comes first to win the tie) */
    BUILD({ .hosts = { "domain-1.org:321", "domain-2.org" } },
          { .hosts = { "domain-1.org" } },
          { .hosts = { "domain-3.org:321" } },
          { .hosts = { "*.route.net:123" } });
    assert_int_equal(M(.host = "domain-1.org"), 1);
    assert_int_equal(M(.host = "domain-1.org:80"), 1);
    assert_int_equal(M(.host = "domain-1.org:321"), 0);
    assert_int_equal(M(.host = "domain-2.org:5"), 0);
    assert_int_equal(M(.host = "domain-3.org:321"), 2);
    assert_int_equal(M(.host = "domain-3.org:123"), -1);
    /* without a port in Host, the port the request arrived on counts */
    assert_int_equal(M(.host = "domain-3.org", .port = 321), 2);
    assert_int_equal(M(.host = "domain-3.org", .port = 8000), -1);
    assert_int_equal(M(.host = "foo.route.net:123"), 3);
    assert_int_equal(M(.host = "foo.route.net:456"), -1);
    /* a Host whose ':' is not followed by a number is a host name as a whole */
    assert_int_equal(M(.host = "domain-1.org:x"), -1);
    assert_int_equal(M(.host = "domain-1.org:"), -1);
    done(&rs);
}

/* ---- methods, priorities --------------------------------------------------------------------- */

static void test_methods(void **state)
{
    (void)state;
    BUILD({ .methods = { "GET", "HEAD" }, .paths = { "/m" } }, { .paths = { "/" } });
    assert_int_equal(M(.method = "GET", .path = "/m"), 0);
    assert_int_equal(M(.method = "HEAD", .path = "/m"), 0);
    assert_int_equal(M(.method = "POST", .path = "/m"), 1);
    assert_int_equal(M(.method = "get", .path = "/m"), 1);    /* exact */
    done(&rs);
}

static void test_more_fields_win(void **state)
{
    (void)state;
    /* Kong spec "[host] and [uri] have higher priority than [method]" and "[method] does not
     * supersede [uri prefix]" */
    BUILD({ .methods = { "GET" } },
          { .paths = { "/example" } },
          { .hosts = { "domain.org" }, .paths = { "/" } },
          { .hosts = { "domain.org" }, .paths = { "/example" }, .methods = { "GET" } });
    assert_int_equal(M(.path = "/example"), 1);
    assert_int_equal(M(.path = "/other"), 0);
    assert_int_equal(M(.path = "/example", .host = "domain.org"), 3);
    assert_int_equal(M(.method = "POST", .path = "/example", .host = "domain.org"), 2);
    done(&rs);
}

static void test_priority_values(void **state)
{
    (void)state;
    BUILD({ .hosts = { "a.com" }, .paths = { "/foo" } },
          { .hosts = { "*.a.com" }, .methods = { "GET" }, .paths = { "~/x" },
            .regex_priority = 3, .headers = { { "x-a", { "1" } }, { "x-b", { "2" } } } },
          { .paths = { "~/y" }, .regex_priority = -1 });
    const aigw_rt_route_t *rt;
    uint64_t p0 = (2ull << 61) | (1ull << 60) | 4;
    uint64_t p1 = (4ull << 61) | (2ull << 52) | (1ull << 51) | ((2147483648ull + 3) << 19);
    uint64_t p2 = (1ull << 61) | (1ull << 51) | ((2147483648ull - 1) << 19);
    assert_int_equal(aigw_router__count(rs.r), 3);
    assert_true(aigw_router__priority(rs.r, 0, &rt) == p1);
    assert_ptr_equal(rt, &rs.routes[1]);
    assert_true(aigw_router__priority(rs.r, 1, &rt) == p0);
    assert_ptr_equal(rt, &rs.routes[0]);
    assert_true(aigw_router__priority(rs.r, 2, &rt) == p2);
    done(&rs);
}

/* ---- headers --------------------------------------------------------------------------------- */

static void test_headers(void **state)
{
    (void)state;
    BUILD({ .headers = { { "version", { "v1", "v2" } } } },
          { .headers = { { "version", { "v1" } }, { "location", { "us-east" } } } },
          { .headers = { { "user-agent", { "~*windows|linux|os\\s+x\\s*[\\d\\._]+|solaris|bsd" } } } },
          { .headers = { { "x-ver", { "~*^V\\d$" } } } },
          { .paths = { "/" } });
    assert_int_equal(M(.hdrs = { "Version", "V2" }), 0);
    assert_int_equal(M(.hdrs = { "VERSION", "v1" }), 0);
    assert_int_equal(M(.hdrs = { "version", "v3" }), 4);
    assert_int_equal(M(.hdrs = { "version", "v1", "Location", "US-East" }), 1);
    /* a repeated header: any value may match */
    assert_int_equal(M(.hdrs = { "version", "v9", "version", "v2" }), 0);
    assert_int_equal(M(.hdrs = { "User-Agent", "Mozilla/5.0 (Windows NT 10.0)" }), 2);
    assert_int_equal(M(.hdrs = { "User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15)" }),
                     2);
    assert_int_equal(M(.hdrs = { "User-Agent", "curl/8.0" }), 4);
    /* Kong lower-cases the regex too: "~*^V\d$" is "^v\d$" */
    assert_int_equal(M(.hdrs = { "x-ver", "V7" }), 3);
    assert_int_equal(M(.hdrs = { "x-ver", "v7x" }), 4);
    done(&rs);
}

static void test_header_underscores(void **state)
{
    (void)state;
    /* ngx.req.get_headers()["x_foo"]: a header named x_foo if any, else x-foo */
    BUILD({ .headers = { { "x-foo", { "a" } } } }, { .paths = { "/" } });
    assert_int_equal(M(.hdrs = { "X-Foo", "a" }), 0);
    assert_int_equal(M(.hdrs = { "X_Foo", "a" }), 0);
    assert_int_equal(M(.hdrs = { "X_Foo", "b", "X-Foo", "a" }), 1);
    assert_int_equal(M(.hdrs = { "X-Foo", "b", "X_Foo", "a" }), 0);
    assert_int_equal(M(.hdrs = { "X-Fo", "a" }), 1);
    done(&rs);
}

static void test_more_headers_beat_longer_paths(void **state)
{
    (void)state;
    BUILD({ .headers = { { "version", { "v1" } } }, .paths = { "/my-route/hello" } },
          { .headers = { { "version", { "v1" } }, { "location", { "us-east" } } },
            .paths = { "/my-route" } });
    assert_int_equal(M(.path = "/my-route/hello", .hdrs = { "version", "v1", "location",
                                                             "us-east" }),
                     1);
    assert_int_equal(M(.path = "/my-route/hello", .hdrs = { "version", "v1" }), 0);
    done(&rs);
}

/* ---- snis, protocols, services --------------------------------------------------------------- */

static void test_snis(void **state)
{
    (void)state;
    BUILD({ .snis = { "api.example.com" }, .paths = { "/s" }, .protocols = AIGW_PROTO_HTTPS },
          { .snis = { "*.wild.com", "pre.*" }, .paths = { "/w" },
            .protocols = AIGW_PROTO_HTTPS },
          { .paths = { "/" } });
    assert_int_equal(M(.path = "/s", .tls = 1, .sni = "api.example.com"), 0);
    assert_int_equal(M(.path = "/s", .tls = 1, .sni = "other.com"), 2);
    assert_int_equal(M(.path = "/s", .tls = 1), 2);               /* TLS without SNI */
    assert_int_equal(M(.path = "/s"), 0);                         /* snis only over TLS */
    assert_int_equal(M(.path = "/s", .sni = "other.com"), 0);
    assert_int_equal(M(.path = "/w", .tls = 1, .sni = "x.wild.com"), 1);
    assert_int_equal(M(.path = "/w", .tls = 1, .sni = "pre.net"), 1);
    assert_int_equal(M(.path = "/w", .tls = 1, .sni = "wild.com"), 2);
    done(&rs);
}

static void test_protocols_and_services(void **state)
{
    (void)state;
    aigw_rt_service_t on = { .enabled = 1 }, off = { .enabled = 0 };
    BUILD({ .paths = { "/tcp" }, .protocols = AIGW_PROTO_TCP },
          { .paths = { "/https" }, .protocols = AIGW_PROTO_HTTPS },
          { .paths = { "/grpc" }, .protocols = AIGW_PROTO_GRPC | AIGW_PROTO_TCP },
          { .paths = { "/off" }, .service = &off },
          { .paths = { "/on" }, .service = &on },
          { .paths = { "/" } });
    assert_int_equal(M(.path = "/tcp"), 5);           /* a stream route is not routed here */
    assert_int_equal(M(.path = "/https"), 1);         /* the runloop answers 426, not us */
    assert_int_equal(M(.path = "/https", .tls = 1), 1);
    assert_int_equal(M(.path = "/grpc"), 2);
    assert_int_equal(M(.path = "/off"), 5);           /* disabled service: left out */
    assert_int_equal(M(.path = "/on"), 4);
    done(&rs);
}

/* ---- many routes, threads, timing ------------------------------------------------------------ */

typedef struct big {
    rspec_t *specs;
    char (*bufs)[2][48];
    size_t n;
} big_t;

enum { SHAPE_MIXED = -1, SHAPE_HOST_PATH, SHAPE_PATH, SHAPE_WILDCARD };

/* Route number `id` of a shape: an exact host plus a path, a path alone, or a wildcard host
 * alone (SHAPE_MIXED: the three in turn). */
static void big_route(rspec_t *s, char (*buf)[48], size_t id, int shape)
{
    switch (shape == SHAPE_MIXED ? (int)(id % 3) : shape) {
    case SHAPE_HOST_PATH:
        snprintf(buf[0], 48, "svc%zu.example.com", id);
        snprintf(buf[1], 48, "/svc%zu/api", id);
        s->hosts[0] = buf[0];
        s->paths[0] = buf[1];
        break;
    case SHAPE_PATH:
        snprintf(buf[1], 48, "/p%zu/v%zu", id, id % 7);
        s->paths[0] = buf[1];
        break;
    default:
        snprintf(buf[0], 48, "*.t%zu.example.net", id);
        s->hosts[0] = buf[0];
        break;
    }
}

/* n routes numbered 0..n-1, or (n == 1) the single route numbered `only`. */
static rset_t build_big(size_t n, int shape, size_t only, big_t *bg)
{
    bg->n = n;
    bg->specs = calloc(n, sizeof *bg->specs);
    bg->bufs = calloc(n, sizeof *bg->bufs);
    assert_non_null(bg->specs);
    assert_non_null(bg->bufs);
    for (size_t i = 0; i < n; i++)
        big_route(&bg->specs[i], bg->bufs[i], n == 1 ? only : i, shape);
    return build(bg->specs, n);
}

static void free_big(rset_t *rs, big_t *bg)
{
    done(rs);
    free(bg->specs);
    free(bg->bufs);
}

static void test_many_routes(void **state)
{
    (void)state;
    big_t bg;
    rset_t rs = build_big(3000, SHAPE_MIXED, 0, &bg);
    char host[64], path[64];
    for (size_t i = 0; i < 3000; i += 7) {
        switch (i % 3) {
        case 0:
            snprintf(host, sizeof host, "svc%zu.example.com", i);
            snprintf(path, sizeof path, "/svc%zu/api/x", i);
            assert_int_equal(M(.host = host, .path = path), (int)i);
            snprintf(path, sizeof path, "/svc%zu/ap", i);
            assert_int_equal(M(.host = host, .path = path), -1);
            break;
        case 1:
            snprintf(path, sizeof path, "/p%zu/v%zu/x", i, i % 7);
            assert_int_equal(M(.host = "nowhere", .path = path), (int)i);
            break;
        default:
            snprintf(host, sizeof host, "a.b.t%zu.example.net", i);
            assert_int_equal(M(.host = host, .path = "/anything"), (int)i);
            break;
        }
    }
    free_big(&rs, &bg);
}

typedef struct thr {
    const rset_t *rs;
    int ok;
} thr_t;

static void *thread_main(void *arg)
{
    thr_t *t = arg;
    t->ok = 1;
    aigw_str_t hn = AIGW_STR("x-v"), hv = AIGW_STR("ABC");
    for (int i = 0; i < 2000; i++) {
        aigw_router_req_t req = { .method = AIGW_STR("GET"), .host = AIGW_STR("h.com"),
                                  .port = 80, .path = AIGW_STR("/r/123/x"),
                                  .header_names = &hn, .header_values = &hv, .n_headers = 1 };
        aigw_router_match_t mt;
        if (aigw_router_match(t->rs->r, &req, &mt) != 0 || mt.route != &t->rs->routes[1] ||
            !str_is(mt.captures[1], "123"))
            t->ok = 0;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    BUILD({ .paths = { "/r" } }, { .paths = { "~/r/(\\d+)" }, .headers = { { "x-v", { "~*^a" } } } });
    pthread_t th[4];
    thr_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i].rs = &rs;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(t[i].ok);
    }
    done(&rs);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A request for route number `id` of a shape. */
static void big_request(size_t id, int shape, char *host, char *path, aigw_router_req_t *req)
{
    switch (shape) {
    case SHAPE_HOST_PATH:
        snprintf(host, 64, "svc%zu.example.com", id);
        snprintf(path, 64, "/svc%zu/api/users/42", id);
        break;
    case SHAPE_PATH:
        snprintf(host, 64, "unknown.example.org");
        snprintf(path, 64, "/p%zu/v%zu/items", id, id % 7);
        break;
    default:
        snprintf(host, 64, "www.t%zu.example.net", id);
        snprintf(path, 64, "/x/y");
        break;
    }
    *req = (aigw_router_req_t){ .method = AIGW_STR("GET"), .host = aigw_str_c(host),
                                .port = 8000, .path = aigw_str_c(path) };
}

static double time_once(const rset_t *rs, const aigw_router_req_t *req, int iters)
{
    aigw_router_match_t mt;
    volatile size_t hits = 0;
    double t0 = now_ns();
    for (int i = 0; i < iters; i++)
        hits += aigw_router_match(rs->r, req, &mt) == 0;
    (void)hits;
    return (now_ns() - t0) / iters;
}

/* The best of 7 rounds (the machine is shared), the two routers taking turns so that a
 * busy moment hits both alike. want_b < 0: no second router. */
static void time_lookups(const rset_t *a, size_t want_a, const rset_t *b, size_t want_b,
                         const aigw_router_req_t *req, double *ta, double *tb)
{
    aigw_router_match_t mt;
    assert_int_equal(aigw_router_match(a->r, req, &mt), 0);
    assert_ptr_equal(mt.route, &a->routes[want_a]);
    if (b) {
        assert_int_equal(aigw_router_match(b->r, req, &mt), 0);
        assert_ptr_equal(mt.route, &b->routes[want_b]);
    }
    (void)time_once(a, req, 20000);
    for (int round = 0; round < 7; round++) {
        double t = time_once(a, req, 50000);
        if (round == 0 || t < *ta)
            *ta = t;
        if (!b)
            continue;
        t = time_once(b, req, 50000);
        if (round == 0 || t < *tb)
            *tb = t;
    }
}

static void test_timing(void **state)
{
    (void)state;
    static const char *const names[] = { "exact host + prefix", "prefix only", "wildcard host" };
    const size_t n = 10000, id = 5003;      /* the same route, alone and among 10k */
    for (int shape = SHAPE_HOST_PATH; shape <= SHAPE_WILDCARD; shape++) {
        big_t b1, b2;
        rset_t one = build_big(1, shape, id, &b1);
        rset_t many = build_big(n, shape, 0, &b2);
        char host[64], path[64];
        aigw_router_req_t req;
        big_request(id, shape, host, path, &req);
        double t1 = 0, tn = 0;
        time_lookups(&one, 0, &many, id, &req, &t1, &tn);
        printf("router lookup, %-20s: %6.1f ns with 1 route, %6.1f ns with %zu (%+.0f%%)\n",
               names[shape], t1, tn, n, (tn / t1 - 1) * 100);
        free_big(&many, &b2);
        free_big(&one, &b1);
    }
    big_t bm;
    rset_t mixed = build_big(30000, SHAPE_MIXED, 0, &bm);
    for (int shape = SHAPE_HOST_PATH; shape <= SHAPE_WILDCARD; shape++) {
        char host[64], path[64];
        aigw_router_req_t req;
        size_t want = 15000 + (size_t)shape;
        big_request(want, shape, host, path, &req);
        double t = 0;
        time_lookups(&mixed, want, NULL, 0, &req, &t, NULL);
        printf("router lookup, %-20s: %6.1f ns among 30000 mixed routes\n", names[shape], t);
    }
    free_big(&mixed, &bm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_no_route),
        cmocka_unit_test(test_longest_prefix),
        cmocka_unit_test(test_regex_anchored_at_start),
        cmocka_unit_test(test_regex_beats_prefix),
        cmocka_unit_test(test_regex_host_vs_prefix),
        cmocka_unit_test(test_regex_priority),
        cmocka_unit_test(test_regex_tie),
        cmocka_unit_test(test_regex_captures),
        cmocka_unit_test(test_regex_alternation),
        cmocka_unit_test(test_regex_invalid),
        cmocka_unit_test(test_regex_match_limit),
        cmocka_unit_test(test_route_splitting),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_plain_host_beats_wildcard),
        cmocka_unit_test(test_mixed_hosts_not_plain),
        cmocka_unit_test(test_host_ports),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_more_fields_win),
        cmocka_unit_test(test_priority_values),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_header_underscores),
        cmocka_unit_test(test_more_headers_beat_longer_paths),
        cmocka_unit_test(test_snis),
        cmocka_unit_test(test_protocols_and_services),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
