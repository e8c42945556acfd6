/* tests/unit/test_logqueue.c: the log plugins' shipper queue (aigwd/plugins/logqueue.c). */
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
#include <time.h>
#include "plugins/logqueue.h"

typedef struct tsink {
    pthread_mutex_t mu;
    int fail_first;          /* fail this many sends, then succeed */
    int fail_always;
    int block;               /* sends wait while set */
    int sends;               /* calls to send */
    int batches;             /* successful batches */
    size_t entries;          /* entries in successful batches */
    size_t sizes[64];        /* batch sizes of successful batches */
    char got[4096];          /* entries of successful batches, joined with '|' */
    size_t got_n;
    _Atomic int *freed;      /* incremented by free */
} tsink_t;

static int ts_send(void *ud, const char *const *e, const size_t *l, size_t n, char *err,
                   size_t errlen)
{
    tsink_t *s = ud;
    pthread_mutex_lock(&s->mu);
    s->sends++;
    for (int i = 0; i < 500 && s->block; i++) {   /* bounded: 5 s */
        pthread_mutex_unlock(&s->mu);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->mu);
    }
    if (s->fail_always || s->fail_first > 0) {
        if (s->fail_first > 0)
            s->fail_first--;
        pthread_mutex_unlock(&s->mu);
        snprintf(err, errlen, "test failure");
        return -1;
    }
    if (s->batches < 64)
        s->sizes[s->batches] = n;
    s->batches++;
    s->entries += n;
    for (size_t i = 0; i < n; i++) {
        if (s->got_n + l[i] + 2 < sizeof(s->got)) {
            memcpy(s->got + s->got_n, e[i], l[i]);
            s->got_n += l[i];
            s->got[s->got_n++] = '|';
            s->got[s->got_n] = '\0';
        }
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void ts_free(void *ud)
{
    tsink_t *s = ud;
    atomic_fetch_add(s->freed, 1);
}

static tsink_t *ts_new(_Atomic int *freed)
{
    tsink_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->freed = freed;
    return s;
}

static void ts_del(tsink_t *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int ts_get(tsink_t *s, size_t off)
{
    pthread_mutex_lock(&s->mu);
    int v = *(int *)((char *)s + off);
    pthread_mutex_unlock(&s->mu);
    return v;
}

static size_t ts_entries(tsink_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t v = s->entries;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void ts_set(tsink_t *s, int *field, int v)
{
    pthread_mutex_lock(&s->mu);
    *field = v;
    pthread_mutex_unlock(&s->mu);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (bounded) until entries reach n. */
static int wait_entries(tsink_t *s, size_t n, double timeout)
{
    double end = now_s() + timeout;
    while (now_s() < end) {
        if (ts_entries(s) >= n)
            return 1;
        sleep_ms(5);
    }
    return ts_entries(s) >= n;
}

static aigw_logq_opts_t opts(size_t batch, double delay)
{
    aigw_logq_opts_t o = {
        .max_batch_size = batch, .max_coalescing_delay = delay, .max_entries = 10000,
        .max_bytes = 0, .max_retry_time = 60, .initial_retry_delay = 0.01,
        .max_retry_delay = 60,
    };
    return o;
}

static aigw_logq_t *acq(const char *name, const aigw_logq_opts_t *o, tsink_t *s)
{
    char err[256] = "";
    aigw_logq_sink_t sink = {ts_send, ts_free, s};
    aigw_logq_t *q = aigw_logq_acquire(name, name, o, sink, err, sizeof(err));
    assert_non_null(q);
    return q;
}

#define SENDS offsetof(tsink_t, sends)
#define BATCHES offsetof(tsink_t, batches)

static void test_opts_from_config(void **state)
{
    (void)state;
    json_t *c = json_loads("{\"queue\":{\"max_batch_size\":5,\"max_coalescing_delay\":0.5,"
                           "\"max_entries\":100,\"max_bytes\":null,\"max_retry_time\":2,"
                           "\"initial_retry_delay\":0.02,\"max_retry_delay\":1,"
                           "\"concurrency_limit\":1},\"queue_size\":null,"
                           "\"flush_timeout\":null}", 0, NULL);
    assert_non_null(c);
    aigw_logq_opts_t o;
    aigw_logq_opts_from_config(c, &o);
    assert_int_equal(o.max_batch_size, 5);
    assert_true(o.max_coalescing_delay == 0.5);
    assert_int_equal(o.max_entries, 100);
    assert_int_equal(o.max_bytes, 0);
    assert_true(o.max_retry_time == 2);
    assert_true(o.initial_retry_delay == 0.02);
    assert_true(o.max_retry_delay == 1);
    json_decref(c);
    /* Deprecated fields win when not at their old defaults; retry_count is ignored. */
    c = json_loads("{\"queue\":{\"max_batch_size\":1,\"max_coalescing_delay\":1},"
                   "\"queue_size\":7,\"flush_timeout\":3,\"retry_count\":4}", 0, NULL);
    aigw_logq_opts_from_config(c, &o);
    assert_int_equal(o.max_batch_size, 7);
    assert_true(o.max_coalescing_delay == 3);
    json_decref(c);
    c = json_loads("{\"queue\":{\"max_batch_size\":3},\"queue_size\":1,\"flush_timeout\":2}",
                   0, NULL);
    aigw_logq_opts_from_config(c, &o);
    assert_int_equal(o.max_batch_size, 3);
    assert_true(o.max_coalescing_delay == 1);
    assert_int_equal(o.max_entries, 10000);
    json_decref(c);
}

static void test_single_entries(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    aigw_logq_opts_t o = opts(1, 1);
    uint64_t sent0 = aigw_logq_sent_total();
    aigw_logq_t *q = acq("t single", &o, s);
    double t0 = now_s();
    assert_int_equal(aigw_logq_push(q, "a", 1), 0);
    assert_int_equal(aigw_logq_push(q, "bb", 2), 0);
    assert_true(wait_entries(s, 2, 5));
    assert_true(now_s() - t0 < 0.5);   /* batch size 1: no coalescing wait */
    assert_string_equal(s->got, "a|bb|");
    assert_true(aigw_logq_sent_total() - sent0 >= 2);
    aigw_logq_release(q);
    aigw_logq_shutdown(1000);
    assert_int_equal(atomic_load(&freed), 1);
    ts_del(s);
}

static void test_batching(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    aigw_logq_opts_t o = opts(5, 2);
    aigw_logq_t *q = acq("t batch", &o, s);
    double t0 = now_s();
    for (int i = 0; i < 5; i++) {
        char b[8];
        int n = snprintf(b, sizeof(b), "e%d", i);
        assert_int_equal(aigw_logq_push(q, b, (size_t)n), 0);
    }
    assert_true(wait_entries(s, 5, 5));
    assert_true(now_s() - t0 < 1.5);   /* a full batch goes before the coalescing delay */
    assert_int_equal(ts_get(s, BATCHES), 1);
    assert_int_equal(s->sizes[0], 5);
    assert_string_equal(s->got, "e0|e1|e2|e3|e4|");
    /* A partial batch goes after the coalescing delay. */
    t0 = now_s();
    assert_int_equal(aigw_logq_push(q, "x", 1), 0);
    assert_true(wait_entries(s, 6, 5));
    double dt = now_s() - t0;
    assert_true(dt >= 1.8 && dt < 3.5);
    assert_int_equal(s->sizes[1], 1);
    aigw_logq_release(q);
    aigw_logq_shutdown(1000);
    ts_del(s);
}

static void test_retry_then_success(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    s->fail_first = 3;
    aigw_logq_opts_t o = opts(1, 0);
    uint64_t drop0 = aigw_logq_dropped_total();
    aigw_logq_t *q = acq("t retry", &o, s);
    assert_int_equal(aigw_logq_push(q, "r", 1), 0);
    assert_true(wait_entries(s, 1, 5));
    assert_int_equal(ts_get(s, SENDS), 4);
    assert_int_equal(aigw_logq_dropped_total(), drop0);
    aigw_logq_release(q);
    aigw_logq_shutdown(1000);
    ts_del(s);
}

static void test_max_retry_time(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    s->fail_always = 1;
    aigw_logq_opts_t o = opts(1, 0);
    o.max_retry_time = 0.3;
    o.initial_retry_delay = 0.02;
    o.max_retry_delay = 0.1;
    uint64_t drop0 = aigw_logq_dropped_total();
    aigw_logq_t *q = acq("t maxretry", &o, s);
    double t0 = now_s();
    assert_int_equal(aigw_logq_push(q, "x", 1), 0);
    while (aigw_logq_dropped_total() == drop0 && now_s() - t0 < 5)
        sleep_ms(5);
    double dt = now_s() - t0;
    assert_int_equal(aigw_logq_dropped_total() - drop0, 1);
    assert_true(dt >= 0.3 && dt < 1.5);
    int sends = ts_get(s, SENDS);
    /* 0, .02, .06, .14, .24, .34 (capped delays of .1): about six tries */
    assert_true(sends >= 4 && sends <= 8);
    aigw_logq_release(q);
    aigw_logq_shutdown(1000);
    ts_del(s);
}

static void test_full_drops_oldest(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    s->block = 1;
    aigw_logq_opts_t o = opts(1, 0);
    o.max_entries = 3;
    uint64_t drop0 = aigw_logq_dropped_total();
    aigw_logq_t *q = acq("t full", &o, s);
    assert_int_equal(aigw_logq_push(q, "0", 1), 0);
    /* wait until the thread holds "0" in a (blocked) send */
    double t0 = now_s();
    while (ts_get(s, SENDS) == 0 && now_s() - t0 < 5)
        sleep_ms(2);
    assert_int_equal(ts_get(s, SENDS), 1);
    assert_int_equal(aigw_logq_push(q, "1", 1), 0);
    assert_int_equal(aigw_logq_push(q, "2", 1), 0);
    assert_int_equal(aigw_logq_push(q, "3", 1), 0);
    assert_int_equal(aigw_logq_push(q, "4", 1), 1);   /* drops "1" */
    assert_int_equal(aigw_logq_push(q, "5", 1), 1);   /* drops "2" */
    assert_int_equal(aigw_logq_dropped_total() - drop0, 2);
    ts_set(s, &s->block, 0);
    assert_true(wait_entries(s, 4, 5));
    assert_string_equal(s->got, "0|3|4|5|");
    aigw_logq_release(q);
    aigw_logq_shutdown(1000);
    ts_del(s);
}

static void test_max_bytes(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    s->block = 1;
    aigw_logq_opts_t o = opts(1, 0);
    o.max_bytes = 10;
    uint64_t drop0 = aigw_logq_dropped_total();
    aigw_logq_t *q = acq("t bytes", &o, s);
    assert_int_equal(aigw_logq_push(q, "12345678901", 11), -1);   /* larger than max_bytes */
    assert_int_equal(aigw_logq_push(q, "aaaa", 4), 0);
    double t0 = now_s();
    while (ts_get(s, SENDS) == 0 && now_s() - t0 < 5)
        sleep_ms(2);
    assert_int_equal(aigw_logq_push(q, "bbbb", 4), 0);
    assert_int_equal(aigw_logq_push(q, "cccc", 4), 0);
    assert_int_equal(aigw_logq_push(q, "ddd", 3), 1);   /* 4+4+3 > 10: drops "bbbb" */
    assert_int_equal(aigw_logq_dropped_total() - drop0, 1);
    ts_set(s, &s->block, 0);
    assert_true(wait_entries(s, 3, 5));
    assert_string_equal(s->got, "aaaa|cccc|ddd|");
    aigw_logq_release(q);
    aigw_logq_shutdown(1000);
    ts_del(s);
}

static void test_shared_by_name(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s1 = ts_new(&freed), *s2 = ts_new(&freed), *s3 = ts_new(&freed);
    aigw_logq_opts_t o = opts(1, 0);
    aigw_logq_t *q1 = acq("t shared", &o, s1);
    aigw_logq_t *q2 = acq("t shared", &o, s2);
    assert_ptr_equal(q1, q2);
    assert_int_equal(atomic_load(&freed), 1);   /* s2 freed at once */
    aigw_logq_t *q3 = acq("t other", &o, s3);
    assert_ptr_not_equal(q1, q3);
    assert_int_equal(aigw_logq_push(q2, "via2", 4), 0);
    assert_true(wait_entries(s1, 1, 5));
    aigw_logq_release(q1);
    /* still referenced by q2: keeps working */
    assert_int_equal(aigw_logq_push(q2, "again", 5), 0);
    assert_true(wait_entries(s1, 2, 5));
    assert_int_equal(atomic_load(&freed), 1);
    aigw_logq_release(q2);   /* last: drains then ends (sink freed on its thread) */
    aigw_logq_release(q3);
    double t0 = now_s();
    while (atomic_load(&freed) < 3 && now_s() - t0 < 5)
        sleep_ms(5);
    assert_int_equal(atomic_load(&freed), 3);
    aigw_logq_shutdown(1000);
    ts_del(s1);
    ts_del(s2);
    ts_del(s3);
}

static void test_release_drains(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    s->fail_first = 2;
    aigw_logq_opts_t o = opts(2, 5);
    aigw_logq_t *q = acq("t drain", &o, s);
    for (int i = 0; i < 5; i++)
        assert_int_equal(aigw_logq_push(q, "d", 1), 0);
    aigw_logq_release(q);   /* no coalescing wait once released */
    double t0 = now_s();
    assert_true(wait_entries(s, 5, 5));
    assert_true(now_s() - t0 < 2);
    while (atomic_load(&freed) < 1 && now_s() - t0 < 5)
        sleep_ms(5);
    assert_int_equal(atomic_load(&freed), 1);
    aigw_logq_shutdown(1000);
    ts_del(s);
}

static void test_revive_after_release(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s1 = ts_new(&freed), *s2 = ts_new(&freed);
    s1->block = 1;
    aigw_logq_opts_t o = opts(1, 0);
    aigw_logq_t *q = acq("t revive", &o, s1);
    assert_int_equal(aigw_logq_push(q, "a", 1), 0);
    assert_int_equal(aigw_logq_push(q, "b", 1), 0);
    double t0 = now_s();
    while (ts_get(s1, SENDS) == 0 && now_s() - t0 < 5)
        sleep_ms(2);
    aigw_logq_release(q);           /* old runtime freed first */
    aigw_logq_t *q2 = acq("t revive", &o, s2);   /* new runtime: the same queue */
    assert_ptr_equal(q, q2);
    assert_int_equal(atomic_load(&freed), 1);   /* s2 */
    assert_int_equal(aigw_logq_push(q2, "c", 1), 0);
    ts_set(s1, &s1->block, 0);
    assert_true(wait_entries(s1, 3, 5));
    assert_string_equal(s1->got, "a|b|c|");
    aigw_logq_release(q2);
    aigw_logq_shutdown(1000);
    assert_int_equal(atomic_load(&freed), 2);
    ts_del(s1);
    ts_del(s2);
}

static void test_shutdown_deadline(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    s->fail_always = 1;
    aigw_logq_opts_t o = opts(1, 0);
    o.initial_retry_delay = 0.05;
    o.max_retry_delay = 10;
    uint64_t drop0 = aigw_logq_dropped_total();
    aigw_logq_t *q = acq("t shutdown", &o, s);
    for (int i = 0; i < 4; i++)
        assert_int_equal(aigw_logq_push(q, "s", 1), 0);
    sleep_ms(100);
    double t0 = now_s();
    aigw_logq_shutdown(300);   /* still referenced: ended too */
    double dt = now_s() - t0;
    assert_true(dt >= 0.25 && dt < 2);
    assert_int_equal(aigw_logq_dropped_total() - drop0, 4);
    assert_int_equal(atomic_load(&freed), 1);
    /* pushes after the end are refused; the release frees the queue */
    assert_int_equal(aigw_logq_push(q, "late", 4), -1);
    aigw_logq_release(q);
    aigw_logq_shutdown(100);   /* idempotent */
    ts_del(s);
}

static void test_shutdown_delivers_queued(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    aigw_logq_opts_t o = opts(10, 30);   /* a long coalescing delay */
    aigw_logq_t *q = acq("t shutdown ok", &o, s);
    for (int i = 0; i < 3; i++)
        assert_int_equal(aigw_logq_push(q, "k", 1), 0);
    aigw_logq_release(q);
    double t0 = now_s();
    aigw_logq_shutdown(2000);
    assert_true(now_s() - t0 < 1);
    assert_int_equal(ts_entries(s), 3);
    ts_del(s);
}

typedef struct pusher {
    aigw_logq_t *q;
    int n;
} pusher_t;

static void *push_thread(void *arg)
{
    pusher_t *p = arg;
    for (int i = 0; i < p->n; i++)
        aigw_logq_push(p->q, "{\"x\":1}", 7);
    return NULL;
}

static void test_concurrent_pushes(void **state)
{
    (void)state;
    _Atomic int freed = 0;
    tsink_t *s = ts_new(&freed);
    aigw_logq_opts_t o = opts(50, 0.01);
    aigw_logq_t *q = acq("t concurrent", &o, s);
    pthread_t th[4];
    pusher_t p = {q, 500};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, push_thread, &p), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(wait_entries(s, 2000, 10));
    assert_int_equal(ts_entries(s), 2000);
    aigw_logq_release(q);
    aigw_logq_shutdown(1000);
    ts_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_from_config),
        cmocka_unit_test(test_single_entries),
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_retry_then_success),
        cmocka_unit_test(test_max_retry_time),
        cmocka_unit_test(test_full_drops_oldest),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_shared_by_name),
        cmocka_unit_test(test_release_drains),
        cmocka_unit_test(test_revive_after_release),
        cmocka_unit_test(test_shutdown_deadline),
        cmocka_unit_test(test_shutdown_delivers_queued),
        cmocka_unit_test(test_concurrent_pushes),
    };
    return cmocka_run_group_tests_name("logqueue", tests, NULL, NULL);
}
