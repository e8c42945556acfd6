/* tests/unit/test_ratelimit.c: the rate-limiting plugin's calendar windows, its node-wide
 * counter store (exactness under concurrent threads, expiry, bounds) and the Redis client's
 * failure paths (refused connection, a server that never answers, cancel, worker close). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "plugins/ratelimit_local.h"
#include "plugins/ratelimit_redis.h"

/* ---- windows ------------------------------------------------------------------------------ */

static void test_windows_aligned_utc(void **state)
{
    (void)state;
    int64_t s[AIGW_RL_NPERIODS], e[AIGW_RL_NPERIODS];
    /* 2024-02-29T13:45:30Z (leap day) */
    int64_t now = 1709214330;
    aigw_rl_windows(now, s, e);
    assert_int_equal(s[AIGW_RL_SECOND], now);
    assert_int_equal(e[AIGW_RL_SECOND], now + 1);
    assert_int_equal(s[AIGW_RL_MINUTE], 1709214300);          /* 13:45:00 */
    assert_int_equal(e[AIGW_RL_MINUTE], 1709214360);
    assert_int_equal(s[AIGW_RL_HOUR], 1709211600);            /* 13:00:00 */
    assert_int_equal(e[AIGW_RL_HOUR], 1709215200);
    assert_int_equal(s[AIGW_RL_DAY], 1709164800);             /* 2024-02-29 */
    assert_int_equal(e[AIGW_RL_DAY], 1709251200);
    assert_int_equal(s[AIGW_RL_MONTH], 1706745600);           /* 2024-02-01 */
    assert_int_equal(e[AIGW_RL_MONTH], 1709251200);           /* 2024-03-01 */
    assert_int_equal(s[AIGW_RL_YEAR], 1704067200);            /* 2024-01-01 */
    assert_int_equal(e[AIGW_RL_YEAR], 1735689600);            /* 2025-01-01 */

    /* December rolls into the next year; the last second of a year. */
    aigw_rl_windows(1735689599, s, e);                        /* 2024-12-31T23:59:59Z */
    assert_int_equal(s[AIGW_RL_MONTH], 1733011200);           /* 2024-12-01 */
    assert_int_equal(e[AIGW_RL_MONTH], 1735689600);
    assert_int_equal(s[AIGW_RL_YEAR], 1704067200);
    aigw_rl_windows(1735689600, s, e);
    assert_int_equal(s[AIGW_RL_YEAR], 1735689600);
    assert_int_equal(s[AIGW_RL_MONTH], 1735689600);
    assert_int_equal(s[AIGW_RL_MINUTE], 1735689600);
    /* Epoch. */
    aigw_rl_windows(0, s, e);
    for (int p = 0; p < AIGW_RL_NPERIODS; p++)
        assert_int_equal(s[p], 0);
    assert_int_equal(e[AIGW_RL_MONTH], 31 * 86400);
    assert_int_equal(e[AIGW_RL_YEAR], 365 * 86400);
    assert_string_equal(aigw_rl_period_names[AIGW_RL_MONTH], "month");
    assert_string_equal(aigw_rl_period_titles[AIGW_RL_HOUR], "Hour");
    assert_int_equal(aigw_rl_expiration[AIGW_RL_MONTH], 2592000);
}

/* ---- local store -------------------------------------------------------------------------- */

static int setup_store(void **state)
{
    (void)state;
    return aigw_rl_local_init(0);
}

static int teardown_store(void **state)
{
    (void)state;
    aigw_rl_local_shutdown();
    return 0;
}

static void test_local_sequential(void **state)
{
    (void)state;
    const char *keys[] = {"ratelimit:a:b:1.2.3.4:1000:second", "ratelimit:a:b:1.2.3.4:0:minute"};
    double limits[] = {3, 5};
    int64_t exp[] = {101, 160};
    int64_t usage[2];
    /* 3 per second: the 4th in the same second is refused and not counted. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(aigw_rl_local_take(keys, limits, exp, 2, 100, usage), 1);
        assert_int_equal(usage[0], i);
        assert_int_equal(usage[1], i);
    }
    assert_int_equal(aigw_rl_local_take(keys, limits, exp, 2, 100, usage), 0);
    assert_int_equal(usage[0], 3);
    assert_int_equal(usage[1], 3);
    /* Next second: the second counter expired (same key reused after expiry starts at 0). */
    int64_t exp2[] = {102, 160};
    assert_int_equal(aigw_rl_local_take(keys, limits, exp2, 2, 101, usage), 1);
    assert_int_equal(usage[0], 0);
    assert_int_equal(usage[1], 3);
    assert_int_equal(aigw_rl_local_take(keys, limits, exp2, 2, 101, usage), 1);
    assert_int_equal(usage[1], 4);
    /* The minute is used up now: refused while the second still has room. */
    assert_int_equal(aigw_rl_local_take(keys, limits, exp2, 2, 101, usage), 0);
    assert_int_equal(usage[0], 2);
    assert_int_equal(usage[1], 5);
    /* Fractional limits: 1.5 admits 2. */
    const char *k1[] = {"frac"};
    double l1[] = {1.5};
    int64_t e1[] = {1000};
    assert_int_equal(aigw_rl_local_take(k1, l1, e1, 1, 100, usage), 1);
    assert_int_equal(aigw_rl_local_take(k1, l1, e1, 1, 100, usage), 1);
    assert_int_equal(aigw_rl_local_take(k1, l1, e1, 1, 100, usage), 0);
    /* Sweep drops what expired. */
    assert_int_equal(aigw_rl_local_count(), 3);
    aigw_rl_local_sweep(160);
    assert_int_equal(aigw_rl_local_count(), 1);
    aigw_rl_local_sweep(1000);
    assert_int_equal(aigw_rl_local_count(), 0);
}

#define THREADS 8
#define PER_THREAD 500
#define LIMIT 1234

static atomic_int admitted, refused;

static void *hammer(void *arg)
{
    (void)arg;
    const char *keys[] = {"ratelimit:r:s:10.0.0.1:0:minute", "ratelimit:r:s:10.0.0.1:0:hour"};
    double limits[] = {LIMIT, LIMIT * 10};
    int64_t exp[] = {1000, 5000};
    int64_t usage[2];
    for (int i = 0; i < PER_THREAD; i++) {
        /* Plus traffic on other keys, so several stripes are in play. */
        char other[64];
        snprintf(other, sizeof(other), "other:%d", i % 97);
        const char *ok[] = {other};
        double ol[] = {1e9};
        int64_t oe[] = {1000};
        assert_int_equal(aigw_rl_local_take(ok, ol, oe, 1, 10, usage), 1);
        int rc = aigw_rl_local_take(keys, limits, exp, 2, 10, usage);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1)
            atomic_fetch_add(&admitted, 1);
        else
            atomic_fetch_add(&refused, 1);
    }
    return NULL;
}

static void test_local_concurrent_exact(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    atomic_store(&admitted, 0);
    atomic_store(&refused, 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&admitted), LIMIT);
    assert_int_equal(atomic_load(&refused), THREADS * PER_THREAD - LIMIT);
    const char *keys[] = {"ratelimit:r:s:10.0.0.1:0:minute", "ratelimit:r:s:10.0.0.1:0:hour"};
    double limits[] = {1e9, 1e9};
    int64_t exp[] = {1000, 5000};
    int64_t usage[2];
    assert_int_equal(aigw_rl_local_take(keys, limits, exp, 2, 10, usage), 1);
    assert_int_equal(usage[0], LIMIT);   /* refused requests were not counted */
    assert_int_equal(usage[1], LIMIT);
}

static void test_local_bounded(void **state)
{
    (void)state;
    aigw_rl_local_shutdown();
    assert_int_equal(aigw_rl_local_init(64), 0);   /* one entry per stripe */
    int64_t usage[1];
    double lim[] = {10};
    int full = 0;
    for (int i = 0; i < 1000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "k%d", i);
        const char *keys[] = {k};
        int64_t exp[] = {50};
        if (aigw_rl_local_take(keys, lim, exp, 1, 10, usage) < 0)
            full++;
    }
    assert_true(full > 0);
    assert_true(aigw_rl_local_count() <= 64);
    /* Once they expired, new keys fit again (swept on demand). */
    const char *keys[] = {"late"};
    int64_t exp[] = {200};
    assert_int_equal(aigw_rl_local_take(keys, lim, exp, 1, 60, usage), 1);
    aigw_rl_local_sweep(60);
    assert_int_equal(aigw_rl_local_count(), 1);
}

static void test_local_no_store(void **state)
{
    (void)state;
    aigw_rl_local_shutdown();
    const char *keys[] = {"x"};
    double lim[] = {10};
    int64_t exp[] = {50}, usage[1];
    assert_int_equal(aigw_rl_local_take(keys, lim, exp, 1, 10, usage), -1);
    assert_int_equal(aigw_rl_local_init(0), 0);
}

/* ---- redis client failure paths ------------------------------------------------------------ */

typedef struct result {
    int calls, ok;
    uv_loop_t *loop;
    char err[300];
    uint64_t at;
} result_t;

static void on_result(void *ud, int ok, const int64_t *usage, size_t n, const char *err)
{
    (void)usage;
    (void)n;
    result_t *r = ud;
    r->calls++;
    r->ok = ok;
    r->at = r->loop ? uv_now(r->loop) : 0;
    snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
}

static uv_tcp_t server;
static uv_tcp_t *accepted[4];
static int n_accepted;

static void on_accepted_close(uv_handle_t *h)
{
    free(h);
}

static void on_conn(uv_stream_t *s, int status)
{
    assert_int_equal(status, 0);
    uv_tcp_t *c = calloc(1, sizeof(*c));
    uv_tcp_init(s->loop, c);
    assert_int_equal(uv_accept(s, (uv_stream_t *)c), 0);
    if (n_accepted < 4)
        accepted[n_accepted++] = c;
    else
        uv_close((uv_handle_t *)c, on_accepted_close);
}

static void on_stop_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_stop_timer, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_redis_silent_server_times_out(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &server);
    assert_int_equal(uv_tcp_bind(&server, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&server, 16, on_conn), 0);
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    int port = ntohs(bound.sin_port);

    aigw_rl_redis_target_t t = {.host = "127.0.0.1", .port = port, .password = "sekret",
                                .timeout_ms = 200};
    const char *keys[] = {"k1", "k2"};
    int64_t ttl[] = {1, 60};
    result_t r1 = {.loop = loop}, r2 = {.loop = loop}, r3 = {.loop = loop};
    char err[300];
    uv_update_time(loop);
    uint64_t t0 = uv_now(loop);
    aigw_rl_redis_call_t *c1 = aigw_rl_redis_incr(loop, &t, keys, ttl, 2, on_result, &r1, err,
                                                  sizeof(err));
    assert_non_null(c1);
    aigw_rl_redis_call_t *c2 = aigw_rl_redis_incr(loop, &t, keys, ttl, 2, on_result, &r2, err,
                                                  sizeof(err));
    assert_non_null(c2);
    aigw_rl_redis_call_t *c3 = aigw_rl_redis_incr(loop, &t, keys, ttl, 1, on_result, &r3, err,
                                                  sizeof(err));
    assert_non_null(c3);
    assert_int_equal(r1.calls, 0);     /* never synchronously */
    aigw_rl_redis_cancel(c2);          /* the owner went away: no callback */
    run_for(loop, 600);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.ok, 0);
    assert_non_null(strstr(r1.err, "timeout"));
    assert_null(strstr(r1.err, "sekret"));
    assert_true(r1.at - t0 >= 190 && r1.at - t0 < 550);
    assert_int_equal(r2.calls, 0);
    assert_int_equal(r3.calls, 1);
    assert_int_equal(r3.ok, 0);

    /* A new call reconnects after the drop (a second accepted connection). */
    result_t r4 = {0};
    assert_non_null(aigw_rl_redis_incr(loop, &t, keys, ttl, 1, on_result, &r4, err,
                                       sizeof(err)));
    run_for(loop, 100);
    assert_true(n_accepted >= 2);
    /* Worker close: pending calls are dropped silently and every handle closes. */
    aigw_rl_redis_worker_close(loop);
    for (int i = 0; i < n_accepted; i++)
        uv_close((uv_handle_t *)accepted[i], on_accepted_close);
    uv_close((uv_handle_t *)&server, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(r4.calls, 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_redis_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* A port nobody listens on: find one by binding and closing. */
    uv_tcp_t tmp;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &tmp);
    uv_tcp_bind(&tmp, (const struct sockaddr *)&a, 0);
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&tmp, (struct sockaddr *)&bound, &len);
    int port = ntohs(bound.sin_port);
    uv_close((uv_handle_t *)&tmp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);

    aigw_rl_redis_target_t t = {.host = "127.0.0.1", .port = port, .timeout_ms = 300};
    const char *keys[] = {"k"};
    int64_t ttl[] = {60};
    result_t r = {.loop = &loop};
    char err[300] = "";
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    aigw_rl_redis_call_t *c = aigw_rl_redis_incr(&loop, &t, keys, ttl, 1, on_result, &r, err,
                                                 sizeof(err));
    if (c) {   /* refused later rather than at connect() */
        uv_timer_t tm;
        uv_timer_init(&loop, &tm);
        uv_timer_start(&tm, on_stop_timer, 1000, 0);
        while (r.calls == 0 && uv_run(&loop, UV_RUN_ONCE))
            ;
        uv_close((uv_handle_t *)&tm, NULL);
        assert_int_equal(r.calls, 1);
        assert_int_equal(r.ok, 0);
        assert_true(r.at - t0 < 250);   /* the refusal, not the 300 ms deadline */
        assert_non_null(strstr(r.err, "closed"));
    } else {
        assert_non_null(strstr(err, "could not connect to Redis"));
    }
    aigw_rl_redis_worker_close(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows_aligned_utc),
        cmocka_unit_test_setup_teardown(test_local_sequential, setup_store, teardown_store),
        cmocka_unit_test_setup_teardown(test_local_concurrent_exact, setup_store,
                                        teardown_store),
        cmocka_unit_test_setup_teardown(test_local_bounded, setup_store, teardown_store),
        cmocka_unit_test_setup_teardown(test_local_no_store, setup_store, teardown_store),
        cmocka_unit_test(test_redis_silent_server_times_out),
        cmocka_unit_test(test_redis_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
