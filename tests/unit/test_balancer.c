/* tests/unit/test_balancer.c: aigwd/proxy/balancer.c and healthcheck.c: Kong 3.9 upstream
 * balancing (round-robin, consistent-hashing, least-connections), lua-resty-healthcheck's
 * passive and active health state, inheritance across reloads, the admin health views, and
 * active checks against a tiny HTTP server on 127.0.0.1 run by this test's own loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/log.h"
#include "proxy/balancer.h"
#include "proxy/healthcheck.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"

/* ---- snapshot helpers ----------------------------------------------------------------------- */

static int tid_counter;

/* {"id","name",...extra} */
static json_t *upstream(const char *id, const char *name, const char *extra_json)
{
    json_t *u = extra_json ? json_loads(extra_json, 0, NULL) : json_object();
    assert_non_null(u);
    json_object_set_new(u, "id", json_string(id));
    json_object_set_new(u, "name", json_string(name));
    return u;
}

static json_t *target(const char *uid, const char *t, int weight)
{
    char id[37];
    snprintf(id, sizeof(id), "aaaaaaaa-0000-4000-8000-%012d", ++tid_counter);
    return json_pack("{s:s,s:{s:s},s:s,s:i,s:f,s:f,s:n}", "id", id, "upstream", "id", uid,
                     "target", t, "weight", weight, "created_at",
                     1700000000.0 + tid_counter / 1000.0, "updated_at", 1700000000.0, "tags");
}

static json_t *snapshot(json_t *ups, json_t *tgs)
{
    return json_pack("{s:s,s:o,s:o}", "_format_version", "3.0", "upstreams", ups, "targets",
                     tgs);
}

static aigw_balancers_t *build(json_t *root)
{
    char err[256];
    aigw_balancers_t *s = aigw_balancers_build(root, err, sizeof(err));
    if (!s)
        fail_msg("build: %s", err);
    json_decref(root);
    return s;
}

/* One upstream U1 "up.test" with the given extra fields and target strings/weights. */
static aigw_balancers_t *one(const char *extra, const char *const *targets, const int *weights)
{
    json_t *tg = json_array();
    for (size_t i = 0; targets[i]; i++)
        json_array_append_new(tg, target(U1, targets[i], weights ? weights[i] : 100));
    return build(snapshot(json_pack("[o]", upstream(U1, "up.test", extra)), tg));
}

static int pick(const aigw_balancer_t *b, const aigw_balancer_key_t *k)
{
    aigw_balancer_pick_t p;
    if (aigw_balancer_pick(b, k, NULL, 0, &p) != 0)
        return -1;
    return (int)p.target;
}

static const char *host_of(const aigw_balancer_t *b, int i)
{
    static char buf[300];
    const char *h;
    int port, w, fam;
    struct sockaddr_storage ss;
    aigw_balancer__target(b, (uint32_t)i, &h, &port, &w, &fam, &ss);
    snprintf(buf, sizeof(buf), "%s:%d", h, port);
    return buf;
}

static int index_of(const aigw_balancer_t *b, const char *hostport)
{
    for (size_t i = 0; i < aigw_balancer_n_targets(b); i++) {
        if (strcmp(host_of(b, (int)i), hostport) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- building and lookups ------------------------------------------------------------------- */

static void test_build_and_find(void **state)
{
    (void)state;
    json_t *ups = json_pack("[o,o]", upstream(U1, "up.test", NULL),
                            upstream(U2, "other", "{\"host_header\":\"h.example\"}"));
    json_t *tgs = json_pack("[o,o,o]", target(U1, "10.0.0.1:80", 100),
                            target(U1, "[::1]:8080", 50), target(U2, "example.test:8000", 10));
    aigw_balancers_t *s = build(snapshot(ups, tgs));
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    assert_non_null(b);
    assert_string_equal(aigw_balancer_id(b), U1);
    assert_string_equal(aigw_balancer_name(b), "up.test");
    assert_int_equal(aigw_balancer_n_targets(b), 2);
    assert_int_equal(aigw_balancer_host_header(b).n, 0);
    /* Kong matches the name exactly */
    assert_null(aigw_balancers_find(s, AIGW_STR("UP.test")));
    assert_null(aigw_balancers_find(s, AIGW_STR("up.tes")));
    assert_null(aigw_balancers_find(s, AIGW_STR("up.test.")));
    assert_ptr_equal(aigw_balancers_find_id_or_name(s, U1), b);
    assert_ptr_equal(aigw_balancers_find_id_or_name(s, "up.test"), b);
    const aigw_balancer_t *o = aigw_balancers_find_id_or_name(s, "other");
    assert_non_null(o);
    assert_string_equal(aigw_balancer_host_header(o).p, "h.example");

    /* IP literal targets come with their address; names do not */
    aigw_balancer_pick_t p;
    uint32_t ex = 0;
    int seen6 = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(aigw_balancer_pick(b, NULL, &ex, 0, &p), 0);
        if (p.family == AF_INET6) {
            seen6 = 1;
            assert_string_equal(p.host.p, "::1");
            assert_int_equal(p.port, 8080);
            assert_string_equal(p.hostname.p, "[::1]");
            assert_int_equal(ntohs(((struct sockaddr_in6 *)&p.addr)->sin6_port), 8080);
        } else {
            assert_int_equal(p.family, AF_INET);
            assert_string_equal(p.host.p, "10.0.0.1");
            assert_int_equal(ntohs(((struct sockaddr_in *)&p.addr)->sin_port), 80);
        }
    }
    assert_true(seen6);
    assert_int_equal(aigw_balancer_pick(o, NULL, NULL, 0, &p), 0);
    assert_int_equal(p.family, 0);
    assert_string_equal(p.host.p, "example.test");
    assert_int_equal(p.port, 8000);
    assert_string_equal(p.hostname.p, "h.example");   /* upstream.host_header */
    aigw_balancers_free(s);

    /* empty snapshot: an empty set */
    json_t *root = json_pack("{s:s}", "_format_version", "3.0");
    s = build(root);
    assert_null(aigw_balancers_find(s, AIGW_STR("up.test")));
    assert_int_equal(aigw_balancers__count(s), 0);
    aigw_balancers_unref(s);

    /* a target of an unknown upstream is a broken snapshot */
    char err[256];
    root = snapshot(json_pack("[o]", upstream(U1, "up.test", NULL)),
                    json_pack("[o]", target(U2, "10.0.0.1:80", 100)));
    assert_null(aigw_balancers_build(root, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown upstream " U2));
    json_decref(root);
    root = snapshot(json_pack("[o]", upstream(U1, "up.test", "{\"algorithm\":\"magic\"}")),
                    json_array());
    assert_null(aigw_balancers_build(root, err, sizeof(err)));
    assert_string_equal(err, "upstream up.test: unknown algorithm 'magic'");
    json_decref(root);
    /* ref/unref */
    s = build(snapshot(json_array(), json_array()));
    assert_ptr_equal(aigw_balancers_ref(s), s);
    aigw_balancers_unref(s);
    aigw_balancers_unref(s);
    aigw_balancers_unref(NULL);
}

/* ---- round-robin ---------------------------------------------------------------------------- */

static void test_round_robin_weights(void **state)
{
    (void)state;
    static const char *const t[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80",
                                     "10.0.0.4:80", NULL };
    static const int w[] = { 100, 50, 25, 0 };
    aigw_balancers_t *s = one(NULL, t, w);
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    /* cycle = 4 + 2 + 1 = 7: every window of 7 picks follows the weights exactly */
    int seq[700];
    for (int i = 0; i < 700; i++)
        seq[i] = pick(b, NULL);
    for (int start = 0; start + 7 <= 700; start++) {
        int cnt[4] = { 0 };
        for (int i = start; i < start + 7; i++)
            cnt[index_of(b, t[0]) == seq[i] ? 0 : index_of(b, t[1]) == seq[i] ? 1
                : index_of(b, t[2]) == seq[i] ? 2 : 3]++;
        assert_int_equal(cnt[0], 4);
        assert_int_equal(cnt[1], 2);
        assert_int_equal(cnt[2], 1);
        assert_int_equal(cnt[3], 0);   /* weight 0: never */
    }
    /* spread: the heavy target never runs 4 times in a row */
    for (int i = 0; i + 3 < 700; i++) {
        int a = seq[i];
        assert_false(a == seq[i + 1] && a == seq[i + 2] && a == seq[i + 3]);
    }
    aigw_balancers_free(s);

    /* a wheel too large for the table (sum/gcd > 65536): smooth WRR, still exact */
    static const char *const t2[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", NULL };
    static const int w2[] = { 65535, 65534, 1 };
    s = one(NULL, t2, w2);
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    int cnt[3] = { 0 };
    for (int i = 0; i < 131070; i++) {
        int k = pick(b, NULL);
        assert_true(k >= 0 && k < 3);
        cnt[k]++;
    }
    assert_int_equal(cnt[index_of(b, t2[0])], 65535);
    assert_int_equal(cnt[index_of(b, t2[1])], 65534);
    assert_int_equal(cnt[index_of(b, t2[2])], 1);
    aigw_balancers_free(s);
}

static void test_exclude_and_no_peer(void **state)
{
    (void)state;
    static const char *const t[] = { "10.0.0.1:80", "10.0.0.2:80", NULL };
    for (int alg = 0; alg < 3; alg++) {
        static const char *const extra[] = {
            "{\"algorithm\":\"round-robin\"}",
            "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"ip\"}",
            "{\"algorithm\":\"least-connections\"}",
        };
        aigw_balancers_t *s = one(extra[alg], t, NULL);
        const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
        aigw_balancer_key_t key = { .client_ip = AIGW_STR("192.0.2.7") };
        aigw_balancer_pick_t p;
        for (uint32_t ex = 0; ex < 2; ex++) {
            for (int i = 0; i < 5; i++) {
                assert_int_equal(aigw_balancer_pick(b, &key, &ex, 1, &p), 0);
                assert_int_equal(p.target, 1 - ex);
                aigw_balancer_release(b, p.target);
            }
        }
        /* everything tried: come back to them, as Kong does */
        uint32_t both[2] = { 0, 1 };
        assert_int_equal(aigw_balancer_pick(b, &key, both, 2, &p), 0);
        aigw_balancer_release(b, p.target);
        /* a name that failed to resolve is skipped (30 s), the other one takes over */
        aigw_balancer_set_addresses(b, 0, NULL, 0, "dns server error: 3 name error");
        /* (IP literal targets keep their address: no effect) */
        assert_int_equal(aigw_balancer_pick(b, &key, NULL, 0, &p), 0);
        aigw_balancers_free(s);
    }

    /* every target weight 0, or no target: no peer */
    static const char *const t0[] = { "10.0.0.1:80", NULL };
    static const int w0[] = { 0 };
    aigw_balancers_t *s = one(NULL, t0, w0);
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    aigw_balancer_pick_t p;
    assert_int_equal(aigw_balancer_pick(b, NULL, NULL, 0, &p), -1);
    aigw_balancers_free(s);
    static const char *const none[] = { NULL };
    s = one("{\"algorithm\":\"consistent-hashing\"}", none, NULL);
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    assert_int_equal(aigw_balancer_pick(b, NULL, NULL, 0, &p), -1);
    assert_string_equal(AIGW_BALANCER_NO_PEER_MESSAGE,
                        "failure to get a peer from the ring-balancer");
    aigw_balancers_free(s);

    /* a name target that does not resolve is skipped */
    static const char *const names[] = { "a.test:80", "b.test:80", NULL };
    s = one(NULL, names, NULL);
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    aigw_balancer_set_addresses(b, 0, NULL, 0, "dns server error: 3 name error");
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick(b, NULL), 1);
    aigw_balancer_set_addresses(b, 1, NULL, 0, "dns server error: 3 name error");
    assert_int_equal(pick(b, NULL), -1);
    struct sockaddr_storage a;
    memset(&a, 0, sizeof(a));
    a.ss_family = AF_INET;
    inet_pton(AF_INET, "10.9.9.9", &((struct sockaddr_in *)&a)->sin_addr);
    aigw_balancer_set_addresses(b, 0, &a, 1, NULL);   /* resolves again */
    assert_int_equal(pick(b, NULL), 0);
    aigw_balancers_free(s);
}

/* ---- consistent hashing --------------------------------------------------------------------- */

static aigw_str_t hdr_get(void *req, aigw_str_t name)
{
    const char *const *kv = req;
    for (; kv[0]; kv += 2) {
        if (strlen(kv[0]) == name.n && strncasecmp(kv[0], name.p, name.n) == 0)
            return aigw_str_c(kv[1]);
    }
    return AIGW_STR_NULL;
}

static void test_xxh32_vectors(void **state)
{
    (void)state;
    assert_int_equal(aigw_balancer__xxh32("", 0), 0x02CC5D05u);
    assert_int_equal(aigw_balancer__xxh32("abc", 3), 0x32D153FFu);
    const char *s = "Nobody inspects the spammish repetition";
    assert_int_equal(aigw_balancer__xxh32(s, strlen(s)), 0xE2293B2Fu);
}

static void test_consistent_hashing_stable(void **state)
{
    (void)state;
    static const char *const four[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80",
                                        "10.0.0.4:80", NULL };
    static const char *const three[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.4:80", NULL };
    const char *extra = "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"header\","
                        "\"hash_on_header\":\"x-user\",\"healthchecks\":{\"passive\":"
                        "{\"unhealthy\":{\"tcp_failures\":1}}}}";
    aigw_balancers_t *s4 = one(extra, four, NULL);
    aigw_balancers_t *s3 = one(extra, three, NULL);
    const aigw_balancer_t *b4 = aigw_balancers_find(s4, AIGW_STR("up.test"));
    const aigw_balancer_t *b3 = aigw_balancers_find(s3, AIGW_STR("up.test"));
    enum { N = 4000 };
    static char before[N][32], after[N][32];
    int per[4] = { 0 };
    for (int i = 0; i < N; i++) {
        char user[32];
        snprintf(user, sizeof(user), "user-%d", i);
        const char *kv[] = { "X-User", user, NULL };
        aigw_balancer_key_t key = { .header = hdr_get, .req = kv };
        int t = pick(b4, &key);
        assert_true(t >= 0);
        aigw_strlcpy(before[i], host_of(b4, t), sizeof(before[i]));
        per[t]++;
        assert_int_equal(pick(b4, &key), t);   /* same key, same target */
        int t3 = pick(b3, &key);
        aigw_strlcpy(after[i], host_of(b3, t3), sizeof(after[i]));
    }
    /* removing 10.0.0.3 moves only its keys */
    int moved = 0;
    for (int i = 0; i < N; i++) {
        if (strcmp(before[i], "10.0.0.3:80") == 0)
            moved++;
        else
            assert_string_equal(before[i], after[i]);
    }
    assert_true(moved > 0);
    for (int t = 0; t < 4; t++)   /* 160 points each: a fair share */
        assert_true(per[t] > N / 10 && per[t] < N / 2);

    /* a failed target (passive tcp_failures 1) loses only its keys, and gets them back */
    int t3 = index_of(b4, "10.0.0.3:80");
    aigw_balancer_report(b4, (uint32_t)t3, AIGW_BAL_TCP_FAILURE, 0);
    for (int i = 0; i < N; i++) {
        char user[32];
        snprintf(user, sizeof(user), "user-%d", i);
        const char *kv[] = { "X-User", user, NULL };
        aigw_balancer_key_t key = { .header = hdr_get, .req = kv };
        int t = pick(b4, &key);
        assert_true(t != t3);
        if (strcmp(before[i], "10.0.0.3:80") != 0)
            assert_string_equal(host_of(b4, t), before[i]);
    }
    char err[128];
    assert_int_equal(aigw_balancers_set_health(s4, "up.test", "10.0.0.3:80", NULL, 1, err,
                                               sizeof(err)), 0);
    for (int i = 0; i < N; i++) {
        char user[32];
        snprintf(user, sizeof(user), "user-%d", i);
        const char *kv[] = { "X-User", user, NULL };
        aigw_balancer_key_t key = { .header = hdr_get, .req = kv };
        assert_string_equal(host_of(b4, pick(b4, &key)), before[i]);
    }
    aigw_balancers_free(s4);
    aigw_balancers_free(s3);
}

static aigw_str_t no_cookie(void *req, aigw_str_t name)
{
    (void)req;
    (void)name;
    return AIGW_STR_NULL;
}

static aigw_str_t cookie_get(void *req, aigw_str_t name)
{
    assert_int_equal(name.n, 3);
    assert_memory_equal(name.p, "sid", 3);
    return aigw_str_c(req);
}

static void test_hash_inputs(void **state)
{
    (void)state;
    static const char *const t[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", NULL };
    /* header first, ip as the fallback */
    aigw_balancers_t *s = one("{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"header\","
                              "\"hash_on_header\":\"x-k\",\"hash_fallback\":\"ip\"}", t, NULL);
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    const char *none[] = { NULL };
    aigw_balancer_key_t k1 = { .client_ip = AIGW_STR("192.0.2.1"), .header = hdr_get,
                               .req = none };
    aigw_balancer_pick_t p;
    assert_int_equal(aigw_balancer_pick(b, &k1, NULL, 0, &p), 0);
    assert_int_equal(p.hash, aigw_balancer__xxh32("192.0.2.1", 9));
    const char *kv[] = { "x-k", "v", NULL };
    aigw_balancer_key_t k2 = { .client_ip = AIGW_STR("192.0.2.1"), .header = hdr_get,
                               .req = kv };
    assert_int_equal(aigw_balancer_pick(b, &k2, NULL, 0, &p), 0);
    assert_int_equal(p.hash, aigw_balancer__xxh32("v", 1));
    /* nothing at all: the empty string is hashed */
    aigw_balancer_key_t k3 = { .header = hdr_get, .req = none };
    assert_int_equal(aigw_balancer_pick(b, &k3, NULL, 0, &p), 0);
    assert_int_equal(p.hash, aigw_balancer__xxh32("", 0));
    /* a retry reuses the hash it is given */
    aigw_balancer_key_t k4 = { .has_hash = 1, .hash = 12345 };
    assert_int_equal(aigw_balancer_pick(b, &k4, NULL, 0, &p), 0);
    assert_int_equal(p.hash, 12345);
    aigw_balancers_free(s);

    /* cookie: absent -> a UUID to set; present -> its value */
    s = one("{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"cookie\","
            "\"hash_on_cookie\":\"sid\",\"hash_on_cookie_path\":\"/app\"}", t, NULL);
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    aigw_balancer_key_t kc = { .cookie = no_cookie };
    assert_int_equal(aigw_balancer_pick(b, &kc, NULL, 0, &p), 0);
    assert_int_equal(p.set_cookie, 1);
    assert_int_equal(strlen(p.cookie_value), 36);
    assert_int_equal(p.cookie_value[14], '4');
    assert_string_equal(p.cookie_name.p, "sid");
    assert_string_equal(p.cookie_path.p, "/app");
    assert_int_equal(p.hash, aigw_balancer__xxh32(p.cookie_value, 36));
    aigw_balancer_key_t kc2 = { .cookie = cookie_get, .req = (void *)"abc" };
    assert_int_equal(aigw_balancer_pick(b, &kc2, NULL, 0, &p), 0);
    assert_int_equal(p.set_cookie, 0);
    assert_int_equal(p.hash, aigw_balancer__xxh32("abc", 3));
    aigw_balancers_free(s);

    /* consumer, path, query_arg, uri_capture */
    static const struct {
        const char *extra;
        const char *expect;
    } cases[] = {
        { "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"consumer\"}", "c-id" },
        { "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"path\"}", "/p/x" },
        { "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"query_arg\","
          "\"hash_on_query_arg\":\"q\"}", "qv" },
        { "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"uri_capture\","
          "\"hash_on_uri_capture\":\"cap\"}", "capv" },
        { "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"header\","
          "\"hash_on_header\":\"x-none\",\"hash_fallback\":\"query_arg\","
          "\"hash_fallback_query_arg\":\"q\"}", "qv" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s = one(cases[i].extra, t, NULL);
        b = aigw_balancers_find(s, AIGW_STR("up.test"));
        const char *req[] = { "q", "qv", "cap", "capv", NULL };
        aigw_balancer_key_t k = { .consumer_id = AIGW_STR("c-id"), .path = AIGW_STR("/p/x"),
                                  .header = hdr_get, .query_arg = hdr_get,
                                  .uri_capture = hdr_get, .req = req };
        assert_int_equal(aigw_balancer_pick(b, &k, NULL, 0, &p), 0);
        assert_int_equal(p.hash, aigw_balancer__xxh32(cases[i].expect,
                                                      strlen(cases[i].expect)));
        aigw_balancers_free(s);
    }
}

/* ---- least-connections ---------------------------------------------------------------------- */

static void test_least_connections(void **state)
{
    (void)state;
    static const char *const t[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", NULL };
    aigw_balancers_t *s = one("{\"algorithm\":\"least-connections\"}", t, NULL);
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    int a = pick(b, NULL), c = pick(b, NULL), d = pick(b, NULL);
    assert_true(a != c && c != d && a != d);   /* one open each */
    aigw_balancer_release(b, (uint32_t)c);
    assert_int_equal(pick(b, NULL), c);        /* the one with fewer open */
    aigw_balancer_release(b, (uint32_t)a);
    aigw_balancer_release(b, (uint32_t)a);     /* extra releases never go below 0 */
    assert_int_equal(pick(b, NULL), a);
    aigw_balancers_free(s);

    /* weights 3:1: open connections follow the weights */
    static const int w[] = { 300, 100, 0 };
    s = one("{\"algorithm\":\"latency\"}", t, w);   /* latency = least-connections here */
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    int cnt[3] = { 0 };
    for (int i = 0; i < 400; i++)
        cnt[pick(b, NULL)]++;
    assert_int_equal(cnt[index_of(b, t[0])], 300);
    assert_int_equal(cnt[index_of(b, t[1])], 100);
    assert_int_equal(cnt[index_of(b, t[2])], 0);
    aigw_balancers_free(s);
}

/* ---- passive health ------------------------------------------------------------------------- */

static void test_passive_thresholds(void **state)
{
    (void)state;
    static const char *const t[] = { "10.0.0.1:80", "10.0.0.2:80", NULL };
    /* Kong's defaults: every threshold 0, reports change nothing */
    aigw_balancers_t *s = one(NULL, t, NULL);
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    for (int i = 0; i < 100; i++) {
        aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 500);
        aigw_balancer_report(b, 0, AIGW_BAL_TCP_FAILURE, 0);
        aigw_balancer_report(b, 0, AIGW_BAL_TIMEOUT, 0);
    }
    assert_true(aigw_balancer__is_healthy(b, 0));
    aigw_balancers_free(s);

    /* http_failures 3, successes 0: successes are ignored (they do not reset failures) */
    s = one("{\"healthchecks\":{\"passive\":{\"unhealthy\":{\"http_failures\":3}}}}", t, NULL);
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 500);
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 200);
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 404);   /* in no list: ignored */
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 503);
    assert_true(aigw_balancer__is_healthy(b, 0));              /* mostly healthy */
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 429);
    assert_false(aigw_balancer__is_healthy(b, 0));
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick(b, NULL), 1);                    /* never picked again */
    /* the last healthy one goes too: no peer */
    aigw_balancer_report(b, 1, AIGW_BAL_HTTP_STATUS, 0);       /* invalid response */
    aigw_balancer_report(b, 1, AIGW_BAL_HTTP_STATUS, 500);
    aigw_balancer_report(b, 1, AIGW_BAL_HTTP_STATUS, 500);
    aigw_balancer_pick_t p;
    assert_int_equal(aigw_balancer_pick(b, NULL, NULL, 0, &p), -1);
    aigw_balancers_free(s);

    /* with successes: a success resets failures; successes do not revive an unhealthy target
     * that is never picked, only PUT .../healthy (or active checks) do */
    s = one("{\"healthchecks\":{\"passive\":{\"healthy\":{\"successes\":2},"
            "\"unhealthy\":{\"http_failures\":2,\"tcp_failures\":2,\"timeouts\":1}}}}", t, NULL);
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 500);
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 200);
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 500);
    assert_true(aigw_balancer__is_healthy(b, 0));
    aigw_balancer_report(b, 0, AIGW_BAL_TCP_FAILURE, 0);
    assert_true(aigw_balancer__is_healthy(b, 0));   /* tcp 1/2, http 1/2 */
    aigw_balancer_report(b, 0, AIGW_BAL_TCP_FAILURE, 0);
    assert_false(aigw_balancer__is_healthy(b, 0));
    char err[128];
    assert_int_equal(aigw_balancers_set_health(s, "up.test", "10.0.0.1:80", NULL, 1, err,
                                               sizeof(err)), 0);
    assert_true(aigw_balancer__is_healthy(b, 0));
    /* a 504 counts as a timeout (timeouts 1) */
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 504);
    assert_false(aigw_balancer__is_healthy(b, 0));
    /* successes 2 bring it back (active checks would report these) */
    aigw_balancer__report_active(b, 0, AIGW_BAL_HTTP_STATUS, 200);
    assert_false(aigw_balancer__is_healthy(b, 0));
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 200);
    aigw_balancer_report(b, 0, AIGW_BAL_HTTP_STATUS, 200);
    assert_true(aigw_balancer__is_healthy(b, 0));
    aigw_balancers_free(s);

    /* healthchecks.threshold: 50% healthy is not above 60% -> the upstream is unhealthy */
    s = one("{\"healthchecks\":{\"threshold\":60,\"passive\":{\"unhealthy\":"
            "{\"tcp_failures\":1}}}}", t, NULL);
    b = aigw_balancers_find(s, AIGW_STR("up.test"));
    assert_true(pick(b, NULL) >= 0);
    aigw_balancer_report(b, 0, AIGW_BAL_TCP_FAILURE, 0);
    assert_int_equal(pick(b, NULL), -1);
    aigw_balancers_free(s);
}

static void test_inherit(void **state)
{
    (void)state;
    const char *extra = "{\"algorithm\":\"least-connections\",\"healthchecks\":{\"passive\":"
                        "{\"unhealthy\":{\"tcp_failures\":1}}}}";
    json_t *ta = json_pack("[o,o]", target(U1, "10.0.0.1:80", 100),
                           target(U1, "10.0.0.2:80", 100));
    aigw_balancers_t *old = build(snapshot(json_pack("[o]", upstream(U1, "up.test", extra)),
                                           ta));
    const aigw_balancer_t *ob = aigw_balancers_find(old, AIGW_STR("up.test"));
    int o1 = index_of(ob, "10.0.0.1:80"), o2 = index_of(ob, "10.0.0.2:80");
    aigw_balancer_report(ob, (uint32_t)o1, AIGW_BAL_TCP_FAILURE, 0);
    assert_int_equal(pick(ob, NULL), o2);   /* one open connection on .2 */

    /* the new config: renamed upstream (same id), .1 and .2 kept, .3 added */
    json_t *tb = json_pack("[o,o,o]", target(U1, "10.0.0.3:80", 100),
                           target(U1, "10.0.0.2:80", 100), target(U1, "10.0.0.1:80", 100));
    aigw_balancers_t *nw = build(snapshot(json_pack("[o]", upstream(U1, "up2.test", extra)),
                                          tb));
    /* another upstream id with the same target string shares nothing */
    aigw_balancers_inherit(nw, old);
    aigw_balancers_inherit(nw, NULL);
    const aigw_balancer_t *nb = aigw_balancers_find(nw, AIGW_STR("up2.test"));
    int n1 = index_of(nb, "10.0.0.1:80"), n2 = index_of(nb, "10.0.0.2:80"),
        n3 = index_of(nb, "10.0.0.3:80");
    assert_false(aigw_balancer__is_healthy(nb, (uint32_t)n1));   /* carried */
    assert_true(aigw_balancer__is_healthy(nb, (uint32_t)n2));
    assert_true(aigw_balancer__is_healthy(nb, (uint32_t)n3));
    /* connection counts carried too: .3 (0 open) comes before .2 (1 open) */
    assert_int_equal(pick(nb, NULL), n3);
    /* a report arriving on the old set (a request still running) reaches the new one */
    aigw_balancer_report(ob, (uint32_t)o2, AIGW_BAL_TCP_FAILURE, 0);
    assert_false(aigw_balancer__is_healthy(nb, (uint32_t)n2));
    /* the old set can go; the state lives on */
    aigw_balancers_unref(old);
    assert_false(aigw_balancer__is_healthy(nb, (uint32_t)n1));
    assert_int_equal(pick(nb, NULL), n3);
    aigw_balancers_free(nw);

    /* health checks turned off by the reload: Kong drops the checker, every target is up */
    old = one(extra, (const char *const[]){ "10.0.0.1:80", NULL }, NULL);
    ob = aigw_balancers_find(old, AIGW_STR("up.test"));
    aigw_balancer_report(ob, 0, AIGW_BAL_TCP_FAILURE, 0);
    assert_int_equal(pick(ob, NULL), -1);
    nw = one("{\"algorithm\":\"least-connections\"}",
             (const char *const[]){ "10.0.0.1:80", NULL }, NULL);
    aigw_balancers_inherit(nw, old);
    nb = aigw_balancers_find(nw, AIGW_STR("up.test"));
    assert_int_equal(pick(nb, NULL), 0);
    json_t *body = aigw_balancers_health_json(nw, "up.test", 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(body,
                        "data"), 0), "health")), "HEALTHCHECKS_OFF");
    json_decref(body);
    aigw_balancers_free(old);
    aigw_balancers_free(nw);

    /* different upstream id: nothing inherited */
    old = one(extra, (const char *const[]){ "10.0.0.1:80", NULL }, NULL);
    ob = aigw_balancers_find(old, AIGW_STR("up.test"));
    aigw_balancer_report(ob, 0, AIGW_BAL_TCP_FAILURE, 0);
    nw = build(snapshot(json_pack("[o]", upstream(U2, "up.test", extra)),
                        json_pack("[o]", target(U2, "10.0.0.1:80", 100))));
    aigw_balancers_inherit(nw, old);
    assert_true(aigw_balancer__is_healthy(aigw_balancers_find(nw, AIGW_STR("up.test")), 0));
    aigw_balancers_free(old);
    aigw_balancers_free(nw);
}

/* ---- admin views ---------------------------------------------------------------------------- */

static json_t *by_target(json_t *data, const char *t)
{
    size_t i;
    json_t *e;
    json_array_foreach(data, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "target")), t) == 0)
            return e;
    }
    fail_msg("no target %s", t);
    return NULL;
}

static void test_health_json(void **state)
{
    (void)state;
    /* no health checks: HEALTHCHECKS_OFF; names resolved on demand; DNS_ERROR */
    json_t *tg = json_array();   /* in this order: created_at rises */
    json_array_append_new(tg, target(U1, "10.0.0.1:80", 100));
    json_array_append_new(tg, target(U1, "localhost:81", 10));
    json_array_append_new(tg, target(U1, "nonexistent.invalid:82", 5));
    json_array_append_new(tg, target(U1, "[::1]:83", 0));
    aigw_balancers_t *s = build(snapshot(json_pack("[o]", upstream(U1, "up.test", NULL)), tg));
    assert_null(aigw_balancers_health_json(s, "nope", 0, NULL));
    json_t *body = aigw_balancers_health_json(s, "up.test", 0, "node-1");
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "node_id")), "node-1");
    assert_true(json_is_null(json_object_get(body, "next")));
    json_t *data = json_object_get(body, "data");
    assert_int_equal(json_array_size(data), 4);
    /* newest first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "target")),
                        "[::1]:83");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 3), "target")),
                        "10.0.0.1:80");
    json_t *t1 = by_target(data, "10.0.0.1:80");
    assert_string_equal(json_string_value(json_object_get(t1, "health")), "HEALTHCHECKS_OFF");
    assert_int_equal(json_integer_value(json_object_get(t1, "weight")), 100);
    assert_string_equal(json_string_value(json_object_get(json_object_get(t1, "upstream"),
                                                          "id")), U1);
    assert_non_null(json_object_get(t1, "created_at"));
    json_t *d1 = json_object_get(t1, "data");
    assert_string_equal(json_string_value(json_object_get(d1, "host")), "10.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(d1, "port")), 80);
    assert_string_equal(json_string_value(json_object_get(d1, "dns")), "A");
    assert_int_equal(json_integer_value(json_object_get(d1, "nodeWeight")), 100);
    json_t *w1 = json_object_get(d1, "weight");
    assert_int_equal(json_integer_value(json_object_get(w1, "total")), 100);
    assert_int_equal(json_integer_value(json_object_get(w1, "available")), 100);
    assert_int_equal(json_integer_value(json_object_get(w1, "unavailable")), 0);
    json_t *a1 = json_array_get(json_object_get(d1, "addresses"), 0);
    assert_string_equal(json_string_value(json_object_get(a1, "ip")), "10.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(a1, "port")), 80);
    assert_int_equal(json_integer_value(json_object_get(a1, "weight")), 100);
    assert_string_equal(json_string_value(json_object_get(a1, "health")), "HEALTHCHECKS_OFF");

    json_t *tl = by_target(data, "localhost:81");
    assert_string_equal(json_string_value(json_object_get(tl, "health")), "HEALTHCHECKS_OFF");
    json_t *al = json_object_get(json_object_get(tl, "data"), "addresses");
    assert_true(json_array_size(al) >= 1);
    const char *lip = json_string_value(json_object_get(json_array_get(al, 0), "ip"));
    assert_true(strcmp(lip, "127.0.0.1") == 0 || strcmp(lip, "[::1]") == 0);

    json_t *tn = by_target(data, "nonexistent.invalid:82");
    assert_string_equal(json_string_value(json_object_get(tn, "health")), "DNS_ERROR");
    json_t *dn = json_object_get(tn, "data");
    assert_int_equal(json_array_size(json_object_get(dn, "addresses")), 0);
    print_message("dns field of a name that does not resolve: %s\n",
                  json_string_value(json_object_get(dn, "dns")));
    json_t *t6 = by_target(data, "[::1]:83");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t6, "data"), "host")),
                        "[::1]");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t6, "data"), "dns")),
                        "AAAA");
    json_decref(body);

    body = aigw_balancers_health_json(s, U1, 1, NULL);
    assert_true(json_is_null(json_object_get(body, "node_id")));
    data = json_object_get(body, "data");
    assert_string_equal(json_string_value(json_object_get(data, "health")), "HEALTHCHECKS_OFF");
    assert_string_equal(json_string_value(json_object_get(data, "balancer_health")), "HEALTHY");
    assert_string_equal(json_string_value(json_object_get(data, "id")), U1);
    json_t *det = json_object_get(data, "details");
    assert_true(json_is_true(json_object_get(det, "healthy")));
    assert_int_equal(json_array_size(json_object_get(det, "hosts")), 4);
    json_t *h0 = json_array_get(json_object_get(det, "hosts"), 0);
    assert_string_equal(json_string_value(json_object_get(h0, "host")), "10.0.0.1");
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(h0, "addresses"),
                                                            0), "healthy")));
    json_decref(body);

    /* manual health needs a health checker, as in Kong */
    char err[128];
    assert_int_equal(aigw_balancers_set_health(s, "up.test", "10.0.0.1:80", NULL, 0, err,
                                               sizeof(err)), -2);
    assert_string_equal(err, "no healthchecker found for up.test");
    assert_int_equal(aigw_balancers_set_health(s, "nope", "10.0.0.1:80", NULL, 0, err,
                                               sizeof(err)), -1);
    assert_int_equal(aigw_balancers_set_health(s, "up.test", "10.0.0.1", NULL, 0, err,
                                               sizeof(err)), -1);   /* exact target string */
    aigw_balancers_free(s);

    /* with health checks: HEALTHY / UNHEALTHY, weight 0 stays HEALTHCHECKS_OFF */
    tg = json_pack("[o,o,o]", target(U1, "10.0.0.1:80", 100), target(U1, "10.0.0.2:80", 100),
                   target(U1, "10.0.0.3:80", 0));
    s = build(snapshot(json_pack("[o]", upstream(U1, "up.test", "{\"healthchecks\":{"
                                 "\"passive\":{\"unhealthy\":{\"timeouts\":1}}}}")), tg));
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    const char *tid2 = NULL;
    body = aigw_balancers_health_json(s, "up.test", 0, NULL);
    tid2 = json_string_value(json_object_get(by_target(json_object_get(body, "data"),
                                                       "10.0.0.2:80"), "id"));
    char id2[37];
    snprintf(id2, sizeof(id2), "%s", tid2);
    json_decref(body);
    assert_int_equal(aigw_balancers_set_health(s, U1, id2, NULL, 0, err, sizeof(err)), 0);
    /* an address that is not the target's: nothing changes (Kong: 204 all the same) */
    assert_int_equal(aigw_balancers_set_health(s, U1, "10.0.0.1:80", "10.0.0.9", 0, err,
                                               sizeof(err)), 0);
    assert_true(aigw_balancer__is_healthy(b, (uint32_t)index_of(b, "10.0.0.1:80")));
    assert_int_equal(aigw_balancers_set_health(s, U1, "10.0.0.1:80", "10.0.0.1:8000", 0, err,
                                               sizeof(err)), 0);   /* wrong port */
    assert_true(aigw_balancer__is_healthy(b, (uint32_t)index_of(b, "10.0.0.1:80")));
    body = aigw_balancers_health_json(s, "up.test", 0, NULL);
    data = json_object_get(body, "data");
    assert_string_equal(json_string_value(json_object_get(by_target(data, "10.0.0.1:80"),
                                                          "health")), "HEALTHY");
    json_t *u2 = by_target(data, "10.0.0.2:80");
    assert_string_equal(json_string_value(json_object_get(u2, "health")), "UNHEALTHY");
    json_t *w2 = json_object_get(json_object_get(u2, "data"), "weight");
    assert_int_equal(json_integer_value(json_object_get(w2, "unavailable")), 100);
    assert_int_equal(json_integer_value(json_object_get(w2, "available")), 0);
    assert_string_equal(json_string_value(json_object_get(by_target(data, "10.0.0.3:80"),
                                                          "health")), "HEALTHCHECKS_OFF");
    json_decref(body);
    body = aigw_balancers_health_json(s, "up.test", 1, NULL);
    data = json_object_get(body, "data");
    assert_string_equal(json_string_value(json_object_get(data, "health")), "HEALTHY");
    json_t *wt = json_object_get(json_object_get(data, "details"), "weight");
    assert_int_equal(json_integer_value(json_object_get(wt, "total")), 200);
    assert_int_equal(json_integer_value(json_object_get(wt, "unavailable")), 100);
    json_decref(body);
    /* all unhealthy: the balancer is UNHEALTHY */
    assert_int_equal(aigw_balancers_set_health(s, U1, "10.0.0.1:80", "10.0.0.1:80", 0, err,
                                               sizeof(err)), 0);
    body = aigw_balancers_health_json(s, "up.test", 1, NULL);
    data = json_object_get(body, "data");
    assert_string_equal(json_string_value(json_object_get(data, "health")), "UNHEALTHY");
    assert_string_equal(json_string_value(json_object_get(data, "balancer_health")),
                        "UNHEALTHY");
    assert_true(json_is_false(json_object_get(json_object_get(data, "details"), "healthy")));
    json_decref(body);
    aigw_balancers_free(s);
}

/* ---- threads -------------------------------------------------------------------------------- */

typedef struct hammer {
    const aigw_balancer_t *b;
    int iterations;
} hammer_t;

static void *hammer_main(void *arg)
{
    hammer_t *h = arg;
    for (int i = 0; i < h->iterations; i++) {
        aigw_balancer_pick_t p;
        char ip[32];
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i % 7, i % 13);
        aigw_balancer_key_t k = { .client_ip = aigw_str_c(ip) };
        if (aigw_balancer_pick(h->b, &k, NULL, 0, &p) == 0) {
            aigw_balancer_report(h->b, p.target, AIGW_BAL_HTTP_STATUS, (i % 5) ? 200 : 500);
            if (i % 97 == 0)
                aigw_balancer_report(h->b, p.target, AIGW_BAL_TCP_FAILURE, 0);
            aigw_balancer_release(h->b, p.target);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    static const char *const t[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", NULL };
    static const char *const algs[] = {
        "{\"algorithm\":\"least-connections\",",
        "{\"algorithm\":\"round-robin\",",
        "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"ip\",",
    };
    const char *hc = "\"healthchecks\":{\"passive\":{\"healthy\":{\"successes\":3},"
                     "\"unhealthy\":{\"http_failures\":2,\"tcp_failures\":1}}}";
    for (size_t a = 0; a < 3; a++) {
        char extra[512];
        snprintf(extra, sizeof(extra), "%s%s}", algs[a], hc);
        aigw_balancers_t *s = one(extra, t, NULL);
        hammer_t h = { aigw_balancers_find(s, AIGW_STR("up.test")), 20000 };
        pthread_t th[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&th[i], NULL, hammer_main, &h);
        char err[64];
        for (int i = 0; i < 200; i++)
            aigw_balancers_set_health(s, "up.test", t[i % 3], NULL, 1, err, sizeof(err));
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        aigw_balancers_free(s);
    }
}

/* ---- active checks against a tiny upstream -------------------------------------------------- */

typedef struct server {
    uv_tcp_t tcp;
    int port;
    _Atomic int status;       /* what to answer */
    _Atomic int requests;
    char last_request[512];   /* written and read on this thread only */
} server_t;

typedef struct conn {
    uv_tcp_t tcp;
    server_t *srv;
    char buf[1024];
    size_t n;
    uv_write_t w;
    char resp[128];
} conn_t;

static void on_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_t *c = w->data;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)sz;
    *buf = uv_buf_init(c->buf + c->n, (unsigned)(sizeof(c->buf) - c->n - 1));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    (void)buf;
    if (nread < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    c->n += (size_t)nread;
    c->buf[c->n] = '\0';
    if (!strstr(c->buf, "\r\n\r\n") && c->n < sizeof(c->buf) - 1)
        return;
    uv_read_stop(s);
    aigw_strlcpy(c->srv->last_request, c->buf, sizeof(c->srv->last_request));
    atomic_fetch_add(&c->srv->requests, 1);
    int st = atomic_load(&c->srv->status);
    int n = snprintf(c->resp, sizeof(c->resp), "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
                     st);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)n);
    c->w.data = c;
    uv_write(&c->w, s, &b, 1, on_written);
}

static void on_connection(uv_stream_t *srv, int status)
{
    server_t *s = srv->data;
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    c->srv = s;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void server_start(uv_loop_t *loop, server_t *s, int status)
{
    memset(s, 0, sizeof(*s));
    atomic_init(&s->status, status);
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&s->tcp, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->tcp, 64, on_connection), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

typedef struct watch {
    uv_timer_t t;
    const aigw_balancer_t *b;
    uint32_t target;
    int want_healthy;
    uint64_t deadline;
    int ok;
} watch_t;

static void on_watch(uv_timer_t *t)
{
    watch_t *w = t->data;
    if (aigw_balancer__is_healthy(w->b, w->target) == w->want_healthy) {
        w->ok = 1;
        uv_stop(t->loop);
    } else if (uv_now(t->loop) > w->deadline) {
        uv_stop(t->loop);
    }
}

/* Runs the test loop (the server) until target's health is want_healthy or 5 s pass. */
static int wait_health(uv_loop_t *loop, const aigw_balancer_t *b, uint32_t target, int want)
{
    watch_t w = { .b = b, .target = target, .want_healthy = want };
    uv_update_time(loop);
    w.deadline = uv_now(loop) + 5000;
    uv_timer_init(loop, &w.t);
    w.t.data = &w;
    uv_timer_start(&w.t, on_watch, 5, 5);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return w.ok;
}

static void test_active_checks(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t srv, srv2;
    server_start(&loop, &srv, 500);
    server_start(&loop, &srv2, 200);
    /* a port with nobody listening */
    uv_tcp_t closed;
    uv_tcp_init(&loop, &closed);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&closed, (struct sockaddr *)&a, 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&closed, (struct sockaddr *)&ss, &len);
    int dead_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&closed, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);

    char t1[64], t2[64], t3[64];
    snprintf(t1, sizeof(t1), "127.0.0.1:%d", srv.port);
    snprintf(t2, sizeof(t2), "localhost:%d", srv2.port);
    snprintf(t3, sizeof(t3), "127.0.0.1:%d", dead_port);
    const char *extra = "{\"healthchecks\":{\"active\":{\"http_path\":\"/status\","
                        "\"timeout\":0.5,\"headers\":{\"x-probe\":[\"a\",\"b\"]},"
                        "\"healthy\":{\"interval\":0.05,\"successes\":1},"
                        "\"unhealthy\":{\"interval\":0.05,\"http_failures\":2,"
                        "\"tcp_failures\":1}}}}";
    json_t *tg = json_pack("[o,o,o]", target(U1, t1, 100), target(U1, t2, 100),
                           target(U1, t3, 100));
    aigw_balancers_t *s = build(snapshot(json_pack("[o]", upstream(U1, "up.test", extra)), tg));
    const aigw_balancer_t *b = aigw_balancers_find(s, AIGW_STR("up.test"));
    assert_non_null(aigw_balancer__active(b));
    uint32_t i1 = (uint32_t)index_of(b, t1), i2 = (uint32_t)index_of(b, t2),
             i3 = (uint32_t)index_of(b, t3);

    aigw_healthcheck_set(s);   /* before start: used from the start */
    assert_int_equal(aigw_healthcheck_start(), 0);
    /* 500 twice -> unhealthy; the closed port -> unhealthy at the first failure */
    assert_true(wait_health(&loop, b, i1, 0));
    assert_true(wait_health(&loop, b, i3, 0));
    assert_true(aigw_balancer__is_healthy(b, i2));
    assert_non_null(strstr(srv.last_request, "GET /status HTTP/1.0\r\n"));
    assert_non_null(strstr(srv.last_request, "x-probe: a\r\nx-probe: b\r\n"));
    assert_non_null(strstr(srv.last_request, "Host: 127.0.0.1\r\n"));
    assert_non_null(strstr(srv2.last_request, "Host: localhost\r\n"));
    /* the health view got localhost's address from the checker */
    json_t *body = aigw_balancers_health_json(s, "up.test", 0, NULL);
    json_t *tl = by_target(json_object_get(body, "data"), t2);
    assert_string_equal(json_string_value(json_object_get(tl, "health")), "HEALTHY");
    json_t *tu = by_target(json_object_get(body, "data"), t1);
    assert_string_equal(json_string_value(json_object_get(tu, "health")), "UNHEALTHY");
    json_decref(body);

    /* the upstream recovers: unhealthy-interval probes bring it back (successes 1) */
    atomic_store(&srv.status, 200);
    assert_true(wait_health(&loop, b, i1, 1));
    /* and fails again */
    atomic_store(&srv.status, 503);
    assert_true(wait_health(&loop, b, i1, 0));

    /* a reload: the new set inherits, the checker moves over; then checks off */
    json_t *tg2 = json_pack("[o]", target(U1, t1, 100));
    aigw_balancers_t *s2 = build(snapshot(json_pack("[o]", upstream(U1, "up.test", extra)),
                                          tg2));
    aigw_balancers_inherit(s2, s);
    const aigw_balancer_t *b2 = aigw_balancers_find(s2, AIGW_STR("up.test"));
    assert_false(aigw_balancer__is_healthy(b2, 0));
    aigw_healthcheck_set(s2);
    aigw_balancers_unref(s);      /* the checker thread keeps what it still needs */
    atomic_store(&srv.status, 200);
    assert_true(wait_health(&loop, b2, 0, 1));

    /* tcp checks: a connect is enough */
    const char *tcp = "{\"healthchecks\":{\"active\":{\"type\":\"tcp\","
                      "\"healthy\":{\"interval\":0.05,\"successes\":1},"
                      "\"unhealthy\":{\"interval\":0.05,\"tcp_failures\":1}}}}";
    atomic_store(&srv.status, 500);
    aigw_balancers_t *s3 = build(snapshot(json_pack("[o]", upstream(U2, "tcp.test", tcp)),
                                          json_pack("[o,o]", target(U2, t1, 100),
                                                    target(U2, t3, 100))));
    const aigw_balancer_t *b3 = aigw_balancers_find(s3, AIGW_STR("tcp.test"));
    aigw_healthcheck_set(s3);
    assert_true(wait_health(&loop, b3, (uint32_t)index_of(b3, t3), 0));
    int before = atomic_load(&srv.requests);
    assert_true(wait_health(&loop, b3, (uint32_t)index_of(b3, t1), 1));
    (void)before;

    aigw_healthcheck_set(NULL);
    aigw_healthcheck_stop();
    aigw_healthcheck_stop();   /* twice is fine */
    aigw_balancers_unref(s2);
    aigw_balancers_unref(s3);

    /* start again, stop at once */
    assert_int_equal(aigw_healthcheck_start(), 0);
    aigw_healthcheck_stop();

    uv_close((uv_handle_t *)&srv.tcp, NULL);
    uv_close((uv_handle_t *)&srv2.tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}


/* ---- https checks against a TLS server thread ----------------------------------------------- */

typedef struct tls_server {
    int fd, port;
    SSL_CTX *ctx;
    pthread_t th;
    _Atomic int stop;
    _Atomic int status;
    _Atomic int handshakes;
    pthread_mutex_t mu;
    char sni[128];   /* under mu */
} tls_server_t;

static SSL_CTX *self_signed_ctx(void)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    assert_non_null(pk);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, pk, EVP_sha256());
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pk), 1);
    X509_free(x);
    EVP_PKEY_free(pk);
    return ctx;
}

static void *tls_server_main(void *arg)
{
    tls_server_t *t = arg;
    while (!atomic_load(&t->stop)) {
        struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int c = accept(t->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = { 1, 0 };
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        SSL *ssl = SSL_new(t->ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            atomic_fetch_add(&t->handshakes, 1);
            const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
            pthread_mutex_lock(&t->mu);
            snprintf(t->sni, sizeof(t->sni), "%s", sni ? sni : "");
            pthread_mutex_unlock(&t->mu);
            char buf[1024];
            size_t n = 0;
            while (n < sizeof(buf) - 1) {
                int r = SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n));
                if (r <= 0)
                    break;
                n += (size_t)r;
                buf[n] = '\0';
                if (strstr(buf, "\r\n\r\n"))
                    break;
            }
            char resp[128];
            int len = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
                               atomic_load(&t->status));
            SSL_write(ssl, resp, len);
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(c);
    }
    return NULL;
}

static void tls_server_start(tls_server_t *t, int status)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    atomic_init(&t->status, status);
    t->ctx = self_signed_ctx();
    t->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(t->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(t->fd, 16), 0);
    socklen_t len = sizeof(a);
    getsockname(t->fd, (struct sockaddr *)&a, &len);
    t->port = ntohs(a.sin_port);
    pthread_create(&t->th, NULL, tls_server_main, t);
}

static void tls_server_stop(tls_server_t *t)
{
    atomic_store(&t->stop, 1);
    pthread_join(t->th, NULL);
    close(t->fd);
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->mu);
}

static int wait_health_poll(const aigw_balancer_t *b, uint32_t target, int want)
{
    for (int i = 0; i < 500; i++) {
        if (aigw_balancer__is_healthy(b, target) == want)
            return 1;
        usleep(10000);
    }
    return 0;
}

static void test_active_https(void **state)
{
    (void)state;
    tls_server_t ts;
    tls_server_start(&ts, 500);
    char t1[64];
    snprintf(t1, sizeof(t1), "127.0.0.1:%d", ts.port);
    const char *noverify = "{\"healthchecks\":{\"active\":{\"type\":\"https\","
                           "\"https_sni\":\"sni.example\",\"https_verify_certificate\":false,"
                           "\"healthy\":{\"interval\":0.05,\"successes\":1},"
                           "\"unhealthy\":{\"interval\":0.05,\"http_failures\":1,"
                           "\"tcp_failures\":1}}}}";
    const char *verify = "{\"healthchecks\":{\"active\":{\"type\":\"https\","
                         "\"healthy\":{\"interval\":0.05,\"successes\":1},"
                         "\"unhealthy\":{\"interval\":0.05,\"http_failures\":1,"
                         "\"tcp_failures\":1}}}}";
    json_t *ups = json_pack("[o,o]", upstream(U1, "tls.test", noverify),
                            upstream(U2, "verify.test", verify));
    json_t *tgs = json_pack("[o,o]", target(U1, t1, 100), target(U2, t1, 100));
    aigw_balancers_t *s = build(snapshot(ups, tgs));
    const aigw_balancer_t *b1 = aigw_balancers_find(s, AIGW_STR("tls.test"));
    const aigw_balancer_t *b2 = aigw_balancers_find(s, AIGW_STR("verify.test"));
    assert_int_equal(aigw_healthcheck_start(), 0);
    aigw_healthcheck_set(s);
    /* 500 over TLS: an HTTP failure */
    assert_true(wait_health_poll(b1, 0, 0));
    /* a self-signed certificate with verification on: the handshake fails */
    assert_true(wait_health_poll(b2, 0, 0));
    atomic_store(&ts.status, 200);
    assert_true(wait_health_poll(b1, 0, 1));
    assert_true(atomic_load(&ts.handshakes) > 0);
    pthread_mutex_lock(&ts.mu);
    assert_string_equal(ts.sni, "sni.example");
    pthread_mutex_unlock(&ts.mu);
    /* the verifying one stays down */
    usleep(200000);
    assert_false(aigw_balancer__is_healthy(b2, 0));
    aigw_healthcheck_stop();
    aigw_balancers_unref(s);
    tls_server_stop(&ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_find),
        cmocka_unit_test(test_round_robin_weights),
        cmocka_unit_test(test_exclude_and_no_peer),
        cmocka_unit_test(test_xxh32_vectors),
        cmocka_unit_test(test_consistent_hashing_stable),
        cmocka_unit_test(test_hash_inputs),
        cmocka_unit_test(test_least_connections),
        cmocka_unit_test(test_passive_thresholds),
        cmocka_unit_test(test_inherit),
        cmocka_unit_test(test_health_json),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_active_checks),
        cmocka_unit_test(test_active_https),
    };
    /* health flips are logged at warn; keep the test output readable */
    atomic_store(&aigw_log_level, AIGW_LOG_CRIT);
    signal(SIGPIPE, SIG_IGN);   /* as aigwd does */
    return cmocka_run_group_tests_name("balancer", tests, NULL, NULL);
}
