/* tests/unit/test_dns.c: aigwd/proxy/dns.c, the per-loop cached resolver. No network: IP
 * literals, "localhost" (from /etc/hosts through getaddrinfo) and "nonexistent.invalid"
 * (RFC 6761: never resolves). The file includes dns.c to feed crafted getaddrinfo answers to
 * its completion callback (address order, rotation, error mapping, stale-on-error). Every
 * loop test ends with uv_loop_close() == 0. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "proxy/dns.c"

#define WAIT_MS 20000   /* bound on any real lookup */

typedef struct rec {
    int calls;
    int status;
    int fresh, stale;
    char error[128];
    char ip[INET6_ADDRSTRLEN];
    int family;
    size_t n_addrs;
    aigw_dns_t *free_me;     /* free the resolver from inside the callback */
} rec_t;

static void on_res(const aigw_dns_result_t *r, void *ud)
{
    rec_t *c = ud;
    c->calls++;
    c->status = r->status;
    c->fresh = r->fresh;
    c->stale = r->stale;
    c->n_addrs = r->n_addrs;
    c->error[0] = '\0';
    c->ip[0] = '\0';
    c->family = 0;
    if (r->status == AIGW_DNS_OK) {
        c->family = r->addr.ss_family;
        if (r->addr.ss_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)&r->addr)->sin_addr, c->ip,
                      sizeof(c->ip));
        else
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&r->addr)->sin6_addr, c->ip,
                      sizeof(c->ip));
        assert_int_equal(((const struct sockaddr_in *)&r->addr)->sin_port, 0);
        assert_non_null(r->addrs);
        assert_true(r->n_addrs >= 1);
    } else {
        assert_non_null(r->error);
        snprintf(c->error, sizeof(c->error), "%s", r->error);
    }
    if (c->free_me) {
        aigw_dns_t *d = c->free_me;
        c->free_me = NULL;
        aigw_dns_free(d);
    }
}

/* ---- loop helpers --------------------------------------------------------------------------- */

typedef struct waiter {
    uv_timer_t t;
    int *done;          /* stop when *done >= want */
    int want;
    uint64_t deadline;
    int expired;
} waiter_t;

static void on_tick(uv_timer_t *t)
{
    waiter_t *w = t->data;
    if (*w->done >= w->want)
        uv_stop(t->loop);
    else if (uv_now(t->loop) >= w->deadline) {
        w->expired = 1;
        uv_stop(t->loop);
    }
}

/* Runs the loop until *done >= want (or WAIT_MS). 0 when reached. */
static int run_until(uv_loop_t *loop, int *done, int want)
{
    waiter_t w = { .done = done, .want = want };
    uv_update_time(loop);
    w.deadline = uv_now(loop) + WAIT_MS;
    uv_timer_init(loop, &w.t);
    w.t.data = &w;
    uv_timer_start(&w.t, on_tick, 1, 1);
    if (*done < want)
        uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *done >= want ? 0 : -1;
}

static void on_sleep(uv_timer_t *t)
{
    (void)t;
}

static void sleep_loop(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_sleep, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);   /* only the timer (and finished lookups) are pending */
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void finish_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_literals(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_t *d = aigw_dns_new(&loop, NULL);
    assert_non_null(d);
    rec_t r = { 0 };
    aigw_dns_lookup_t *h = (aigw_dns_lookup_t *)&r;   /* must be reset to NULL */
    assert_int_equal(aigw_dns_resolve(d, "127.0.0.1", on_res, &r, &h), 0);
    assert_null(h);
    assert_int_equal(r.calls, 1);   /* called before resolve returned */
    assert_int_equal(r.status, AIGW_DNS_OK);
    assert_int_equal(r.family, AF_INET);
    assert_string_equal(r.ip, "127.0.0.1");
    assert_int_equal(r.n_addrs, 1);

    assert_int_equal(aigw_dns_resolve(d, "::1", on_res, &r, NULL), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.family, AF_INET6);
    assert_string_equal(r.ip, "::1");

    assert_int_equal(aigw_dns_resolve(d, "[2001:db8::7]", on_res, &r, NULL), 0);
    assert_int_equal(r.calls, 3);
    assert_string_equal(r.ip, "2001:db8::7");

    /* literals use neither the cache nor the thread pool */
    assert_int_equal(aigw_dns_cache_count(d), 0);
    assert_int_equal(loop.active_reqs.count, 0);

    /* an empty or overlong name is a name error, at once */
    assert_int_equal(aigw_dns_resolve(d, "", on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_NOT_FOUND);
    assert_string_equal(r.error, "dns server error: 3 name error");
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(aigw_dns_resolve(d, longname, on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_NOT_FOUND);
    assert_int_equal(r.calls, 5);
    aigw_dns_free(d);
    finish_loop(&loop);
}

static void test_localhost_cached(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_t *d = aigw_dns_new(&loop, NULL);
    rec_t r = { 0 };
    aigw_dns_lookup_t *h = NULL;
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &r, &h), 1);
    assert_non_null(h);
    assert_int_equal(r.calls, 0);   /* never from inside the call when pending */
    assert_int_equal(run_until(&loop, &r.calls, 1), 0);
    assert_int_equal(r.status, AIGW_DNS_OK);
    assert_int_equal(r.fresh, 1);
    assert_true(strcmp(r.ip, "127.0.0.1") == 0 || strcmp(r.ip, "::1") == 0);

    /* now from the cache, synchronously, case-insensitively, trailing dot ignored */
    assert_int_equal(aigw_dns_resolve(d, "LocalHost.", on_res, &r, &h), 0);
    assert_null(h);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.status, AIGW_DNS_OK);
    assert_int_equal(r.fresh, 0);
    assert_int_equal(r.stale, 0);
    assert_int_equal(aigw_dns_cache_count(d), 1);
    assert_int_equal(loop.active_reqs.count, 0);
    aigw_dns_free(d);
    finish_loop(&loop);
}

static void test_coalesce_and_cancel(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_t *d = aigw_dns_new(&loop, NULL);
    rec_t a = { 0 }, b = { 0 }, c = { 0 };
    aigw_dns_lookup_t *ha, *hb, *hc;
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &a, &ha), 1);
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &b, &hb), 1);
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &c, &hc), 1);
    /* one getaddrinfo for the three */
    assert_int_equal(loop.active_reqs.count, 1);
    /* b's request went away */
    aigw_dns_cancel(hb);
    assert_int_equal(run_until(&loop, &c.calls, 1), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(a.status, AIGW_DNS_OK);
    assert_int_equal(c.status, AIGW_DNS_OK);
    /* cancelling the only waiter still fills the cache */
    rec_t e = { 0 };
    aigw_dns_lookup_t *he;
    assert_int_equal(aigw_dns_resolve(d, "ip6-localhost-not-here.invalid", on_res, &e, &he), 1);
    aigw_dns_cancel(he);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(e.calls, 0);
    assert_int_equal(aigw_dns_cache_count(d), 2);
    aigw_dns_free(d);
    finish_loop(&loop);
}

static void test_not_found_negative_cache(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_opts_t o;
    aigw_dns_opts_default(&o);
    assert_int_equal(o.valid_ttl_ms, 30000);
    assert_int_equal(o.stale_ttl_ms, 3600000);
    assert_int_equal(o.not_found_ttl_ms, 30000);
    assert_int_equal(o.error_ttl_ms, 1000);
    assert_int_equal(o.cache_size, 10000);
    o.not_found_ttl_ms = 50;
    o.error_ttl_ms = 50;
    aigw_dns_t *d = aigw_dns_new(&loop, &o);
    rec_t r = { 0 };
    assert_int_equal(aigw_dns_resolve(d, "nonexistent.invalid", on_res, &r, NULL), 1);
    assert_int_equal(run_until(&loop, &r.calls, 1), 0);
    assert_int_not_equal(r.status, AIGW_DNS_OK);
    assert_int_equal(r.fresh, 1);
    /* Kong's texts: NXDOMAIN (or, without a resolver, a server failure) */
    if (r.status == AIGW_DNS_NOT_FOUND)
        assert_string_equal(r.error, "dns server error: 3 name error");
    else
        print_message("no resolver answered: %s\n", r.error);
    int first = r.status;

    /* cached negatively: answered at once */
    assert_int_equal(aigw_dns_resolve(d, "nonexistent.invalid", on_res, &r, NULL), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.status, first);
    assert_int_equal(r.fresh, 0);

    /* after the negative TTL, a new lookup */
    sleep_loop(&loop, 80);
    assert_int_equal(aigw_dns_resolve(d, "nonexistent.invalid", on_res, &r, NULL), 1);
    assert_int_equal(run_until(&loop, &r.calls, 3), 0);
    aigw_dns_free(d);
    finish_loop(&loop);
}

static void test_stale_while_revalidate(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_opts_t o;
    aigw_dns_opts_default(&o);
    o.valid_ttl_ms = 40;
    aigw_dns_t *d = aigw_dns_new(&loop, &o);
    rec_t r = { 0 };
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &r, NULL), 1);
    assert_int_equal(run_until(&loop, &r.calls, 1), 0);
    sleep_loop(&loop, 80);
    /* expired but within dns_stale_ttl: the stale answer now, a refresh in the background */
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &r, NULL), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.stale, 1);
    assert_int_equal(r.status, AIGW_DNS_OK);
    assert_int_equal(loop.active_reqs.count, 1);
    /* a second stale read does not start another lookup */
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &r, NULL), 0);
    assert_int_equal(loop.active_reqs.count, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_update_time(&loop);
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &r, NULL), 0);
    assert_int_equal(r.stale, 0);
    assert_int_equal(r.calls, 4);
    aigw_dns_free(d);
    finish_loop(&loop);

    /* stale_ttl 0: an expired entry is looked up again before answering */
    uv_loop_init(&loop);
    o.stale_ttl_ms = 0;
    d = aigw_dns_new(&loop, &o);
    memset(&r, 0, sizeof(r));
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &r, NULL), 1);
    assert_int_equal(run_until(&loop, &r.calls, 1), 0);
    sleep_loop(&loop, 80);
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &r, NULL), 1);
    assert_int_equal(run_until(&loop, &r.calls, 2), 0);
    assert_int_equal(r.fresh, 1);
    aigw_dns_free(d);
    finish_loop(&loop);
}

static void test_free_with_lookups_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_t *d = aigw_dns_new(&loop, NULL);
    rec_t a = { 0 }, b = { 0 }, c = { 0 };
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &a, NULL), 1);
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &b, NULL), 1);
    assert_int_equal(aigw_dns_resolve(d, "nonexistent.invalid", on_res, &c, NULL), 1);
    aigw_dns_free(d);
    /* the lookups finish into nothing; the loop then closes cleanly (ASan: no leak) */
    finish_loop(&loop);
    assert_int_equal(a.calls + b.calls + c.calls, 0);
}

static void test_free_inside_callback(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_t *d = aigw_dns_new(&loop, NULL);
    rec_t a = { 0 }, b = { 0 };
    a.free_me = d;
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &a, NULL), 1);
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &b, NULL), 1);
    finish_loop(&loop);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);   /* dropped with the resolver */

    /* and from a synchronous (cached) answer */
    uv_loop_init(&loop);
    d = aigw_dns_new(&loop, NULL);
    memset(&a, 0, sizeof(a));
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &a, NULL), 1);
    assert_int_equal(run_until(&loop, &a.calls, 1), 0);
    a.free_me = d;
    assert_int_equal(aigw_dns_resolve(d, "localhost", on_res, &a, NULL), 0);
    assert_int_equal(a.calls, 2);
    finish_loop(&loop);
}

/* Chains getaddrinfo() results of numeric hosts into one list (glibc frees node by node). */
static struct addrinfo *fake_answer(const char *const *ips)
{
    struct addrinfo *head = NULL, **tail = &head;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_STREAM;
    for (; *ips; ips++) {
        struct addrinfo *r = NULL;
        assert_int_equal(getaddrinfo(*ips, NULL, &hints, &r), 0);
        *tail = r;
        while (*tail)
            tail = &(*tail)->ai_next;
    }
    return head;
}

/* Starts a real lookup for name, then completes it with a crafted answer instead. */
static void complete_fake(aigw_dns_t *d, const char *name, int status, struct addrinfo *res)
{
    uint32_t h = fnv1a(name, strlen(name));
    entry_t *e = find(d, name, strlen(name), h);
    if (!e)
        e = add_entry(d, name, strlen(name), h);
    assert_non_null(e);
    assert_null(e->inflight);
    gai_t *g = malloc(sizeof(*g));
    assert_non_null(g);
    g->d = d;
    g->e = e;
    g->req.data = g;
    e->inflight = g;
    on_gai(&g->req, status, res);
}

static void test_rotation_ipv4_first(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_t *d = aigw_dns_new(&loop, NULL);
    static const char *const ips[] = { "2001:db8::1", "10.0.0.2", "10.0.0.1", "10.0.0.2",
                                       NULL };
    complete_fake(d, "multi.test", 0, fake_answer(ips));
    rec_t r = { 0 };
    char seen[6][INET6_ADDRSTRLEN];
    for (int i = 0; i < 6; i++) {
        assert_int_equal(aigw_dns_resolve(d, "multi.test", on_res, &r, NULL), 0);
        assert_int_equal(r.n_addrs, 3);   /* duplicates removed */
        snprintf(seen[i], sizeof(seen[i]), "%s", r.ip);
        assert_int_equal(r.family, AF_INET);   /* IPv6 only when there is no IPv4 */
    }
    for (int i = 0; i < 6; i++)
        assert_string_equal(seen[i], (i % 2) ? "10.0.0.1" : "10.0.0.2");

    static const char *const v6[] = { "2001:db8::1", "2001:db8::2", NULL };
    complete_fake(d, "six.test", 0, fake_answer(v6));
    assert_int_equal(aigw_dns_resolve(d, "six.test", on_res, &r, NULL), 0);
    assert_string_equal(r.ip, "2001:db8::1");
    assert_int_equal(aigw_dns_resolve(d, "six.test", on_res, &r, NULL), 0);
    assert_string_equal(r.ip, "2001:db8::2");
    aigw_dns_free(d);
    finish_loop(&loop);
}

static void test_error_mapping(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_t *d = aigw_dns_new(&loop, NULL);
    rec_t r = { 0 };
    complete_fake(d, "again.test", UV_EAI_AGAIN, NULL);
    assert_int_equal(aigw_dns_resolve(d, "again.test", on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_ERROR);
    assert_string_equal(r.error, "dns server error: 2 server failure");
    complete_fake(d, "nodata.test", UV_EAI_NODATA, NULL);
    assert_int_equal(aigw_dns_resolve(d, "nodata.test", on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_NOT_FOUND);
    assert_string_equal(r.error, "dns client error: 101 empty record received");
    complete_fake(d, "nx.test", UV_EAI_NONAME, NULL);
    assert_int_equal(aigw_dns_resolve(d, "nx.test", on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_NOT_FOUND);
    assert_string_equal(r.error, "dns server error: 3 name error");
    complete_fake(d, "fail.test", UV_EAI_FAIL, NULL);
    assert_int_equal(aigw_dns_resolve(d, "fail.test", on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_ERROR);
    assert_memory_equal(r.error, "dns client error: ", 18);

    /* a failed refresh keeps serving the stale addresses; a name error does not */
    static const char *const one[] = { "10.1.1.1", NULL };
    complete_fake(d, "keep.test", 0, fake_answer(one));
    complete_fake(d, "keep.test", UV_EAI_AGAIN, NULL);
    assert_int_equal(aigw_dns_resolve(d, "keep.test", on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_OK);
    assert_string_equal(r.ip, "10.1.1.1");
    complete_fake(d, "keep.test", UV_EAI_NONAME, NULL);
    assert_int_equal(aigw_dns_resolve(d, "keep.test", on_res, &r, NULL), 0);
    assert_int_equal(r.status, AIGW_DNS_NOT_FOUND);
    aigw_dns_free(d);
    finish_loop(&loop);
}

static void test_cache_size_evicts_lru(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    aigw_dns_opts_t o;
    aigw_dns_opts_default(&o);
    o.cache_size = 2;
    aigw_dns_t *d = aigw_dns_new(&loop, &o);
    static const char *const one[] = { "10.1.1.1", NULL };
    complete_fake(d, "a.test", 0, fake_answer(one));
    complete_fake(d, "b.test", 0, fake_answer(one));
    rec_t r = { 0 };
    assert_int_equal(aigw_dns_resolve(d, "a.test", on_res, &r, NULL), 0);   /* a is recent */
    complete_fake(d, "c.test", 0, fake_answer(one));   /* evicts b */
    assert_int_equal(aigw_dns_cache_count(d), 2);
    assert_int_equal(aigw_dns_resolve(d, "a.test", on_res, &r, NULL), 0);
    assert_int_equal(aigw_dns_resolve(d, "c.test", on_res, &r, NULL), 0);
    assert_non_null(find(d, "a.test", 6, fnv1a("a.test", 6)));
    assert_null(find(d, "b.test", 6, fnv1a("b.test", 6)));
    /* many names: the table grows and stays consistent */
    aigw_dns_free(d);
    o.cache_size = 1000;
    d = aigw_dns_new(&loop, &o);
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        complete_fake(d, name, 0, fake_answer(one));
    }
    assert_int_equal(aigw_dns_cache_count(d), 500);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        assert_int_equal(aigw_dns_resolve(d, name, on_res, &r, NULL), 0);
    }
    aigw_dns_free(d);
    finish_loop(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_localhost_cached),
        cmocka_unit_test(test_coalesce_and_cancel),
        cmocka_unit_test(test_not_found_negative_cache),
        cmocka_unit_test(test_stale_while_revalidate),
        cmocka_unit_test(test_free_with_lookups_in_flight),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_rotation_ipv4_first),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_cache_size_evicts_lru),
    };
    return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
