/* tests/unit/test_listen.c: listen lists and nginx sizes (aigwd/core/listen.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/conf.h"

static void expect_entry(const aigw_listen_t *l, const char *addr, int port, int backlog)
{
    assert_string_equal(l->addr, addr);
    assert_int_equal(l->port, port);
    assert_int_equal(l->backlog, backlog);
}

/* Parses s, expects failure, an empty list and a message containing want. */
static void expect_error(const char *s, const char *want)
{
    aigw_listen_list_t l = { (aigw_listen_t *)1, 99 };
    char err[256] = "";

    assert_int_equal(aigw_listen_parse(s, &l, err, sizeof err), -1);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    if (!strstr(err, want))
        fail_msg("parsing '%s': error '%s' does not contain '%s'", s, err, want);
}

static void kong_default_proxy_listen(void **state)
{
    aigw_listen_list_t l;
    char err[256];

    (void)state;
    assert_int_equal(aigw_listen_parse("0.0.0.0:8000 reuseport backlog=16384, "
                                       "0.0.0.0:8443 http2 ssl reuseport backlog=16384",
                                       &l, err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    expect_entry(&l.v[0], "0.0.0.0", 8000, 16384);
    assert_true(l.v[0].reuseport);
    assert_false(l.v[0].ssl);
    assert_false(l.v[0].http2);
    expect_entry(&l.v[1], "0.0.0.0", 8443, 16384);
    assert_true(l.v[1].ssl);
    assert_true(l.v[1].http2);
    assert_true(l.v[1].reuseport);
    assert_false(l.v[1].proxy_protocol);
    assert_false(l.v[1].deferred);
    assert_false(l.v[1].bind);
    aigw_listen_list_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
}

static void kong_default_admin_listen(void **state)
{
    aigw_listen_list_t l;
    char err[256];

    (void)state;
    assert_int_equal(aigw_listen_parse("127.0.0.1:8001 reuseport backlog=16384, "
                                       "127.0.0.1:8444 http2 ssl reuseport backlog=16384",
                                       &l, err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    expect_entry(&l.v[0], "127.0.0.1", 8001, 16384);
    expect_entry(&l.v[1], "127.0.0.1", 8444, 16384);
    assert_true(l.v[1].ssl);
    aigw_listen_list_free(&l);
}

static void two_entries_default_backlog(void **state)
{
    aigw_listen_list_t l;
    char err[256];

    (void)state;
    assert_int_equal(aigw_listen_parse("0.0.0.0:8001, 0.0.0.0:8444 ssl", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    expect_entry(&l.v[0], "0.0.0.0", 8001, 511);
    assert_false(l.v[0].ssl);
    assert_false(l.v[0].reuseport);
    expect_entry(&l.v[1], "0.0.0.0", 8444, 511);
    assert_true(l.v[1].ssl);
    assert_false(l.v[1].http2);
    aigw_listen_list_free(&l);
}

static void off_gives_empty_list(void **state)
{
    aigw_listen_list_t l = { (aigw_listen_t *)1, 99 };
    char err[256];

    (void)state;
    assert_int_equal(aigw_listen_parse("off", &l, err, sizeof err), 0);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    assert_int_equal(aigw_listen_parse("  off ", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 0);
    aigw_listen_list_free(&l);
    aigw_listen_list_free(NULL);
}

static void ipv6_star_and_localhost(void **state)
{
    aigw_listen_list_t l;
    char err[256];

    (void)state;
    assert_int_equal(aigw_listen_parse("[::1]:8001", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    expect_entry(&l.v[0], "::1", 8001, 511);
    aigw_listen_list_free(&l);

    assert_int_equal(aigw_listen_parse("[::]:8000 ssl, *:9000, localhost:9001 http2, "
                                       "[2001:DB8:0::1]:443 proxy_protocol deferred bind",
                                       &l, err, sizeof err), 0);
    assert_int_equal(l.n, 4);
    expect_entry(&l.v[0], "::", 8000, 511);
    assert_true(l.v[0].ssl);
    expect_entry(&l.v[1], "0.0.0.0", 9000, 511);
    expect_entry(&l.v[2], "127.0.0.1", 9001, 511);
    assert_true(l.v[2].http2);
    expect_entry(&l.v[3], "2001:db8::1", 443, 511);
    assert_true(l.v[3].proxy_protocol);
    assert_true(l.v[3].deferred);
    assert_true(l.v[3].bind);
    aigw_listen_list_free(&l);
}

static void whitespace_tolerant(void **state)
{
    aigw_listen_list_t l;
    char err[256];

    (void)state;
    assert_int_equal(aigw_listen_parse("  0.0.0.0:8000\t ssl   backlog=1 ,\t127.0.0.1:9000  ",
                                       &l, err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    expect_entry(&l.v[0], "0.0.0.0", 8000, 1);
    assert_true(l.v[0].ssl);
    expect_entry(&l.v[1], "127.0.0.1", 9000, 511);
    aigw_listen_list_free(&l);

    assert_int_equal(aigw_listen_parse("1.2.3.4:65535 backlog=2147483647", &l, err, sizeof err), 0);
    expect_entry(&l.v[0], "1.2.3.4", 65535, 2147483647);
    aigw_listen_list_free(&l);
}

static void errors(void **state)
{
    (void)state;
    expect_error("", "empty");
    expect_error("   ", "empty");
    expect_error("0.0.0.0", "missing port");
    expect_error("0.0.0.0:", "missing port");
    expect_error("[::1]", "missing port");
    expect_error("[::1]8001", "missing port");
    expect_error("0.0.0.0:0", "invalid port '0'");
    expect_error("0.0.0.0:65536", "invalid port '65536'");
    expect_error("0.0.0.0:-1", "invalid port");
    expect_error("0.0.0.0:80x", "invalid port");
    expect_error("0.0.0.0:8000 fast", "unknown flag 'fast'");
    expect_error("0.0.0.0:8000 SSL", "unknown flag 'SSL'");
    expect_error("0.0.0.0:8000 backlog=0", "invalid backlog '0'");
    expect_error("0.0.0.0:8000 backlog=2147483648", "invalid backlog");
    expect_error("0.0.0.0:8000 backlog=", "unknown flag 'backlog='");
    expect_error("0.0.0.0:8000, 0.0.0.0:8000 ssl", "duplicate listen address 0.0.0.0:8000");
    expect_error("*:8000, 0.0.0.0:8000", "duplicate");
    expect_error("[::1]:80, [0:0::1]:80", "duplicate listen address [::1]:80");
    expect_error("off, 0.0.0.0:8000", "'off' cannot be combined");
    expect_error("0.0.0.0:8000,", "empty entry");
    expect_error("0.0.0.0:8000,,0.0.0.0:8001", "empty entry");
    expect_error("::1:8000", "brackets");
    expect_error("example.com:80", "invalid address 'example.com'");
    expect_error("1.2.3:80", "invalid address '1.2.3'");
    expect_error("[zz::]:80", "invalid address 'zz::'");
    expect_error(":8000", "invalid address ''");
}

static void sizes(void **state)
{
    static const struct {
        const char *in;
        uint64_t want;
    } ok[] = {
        { "0", 0 },
        { "8192", 8192 },
        { "8k", 8192 },
        { "8K", 8192 },
        { "10m", 10u << 20 },
        { "10M", 10u << 20 },
        { "1g", 1u << 30 },
        { "1G", 1u << 30 },
        { "18446744073709551615", UINT64_MAX },
        { "17179869183g", 17179869183ull << 30 },
    };
    static const char *const bad[] = {
        "", "k", "8x", "-1", "1.5m", "8 k", "8kb", "18446744073709551616", "17179869184g", " ",
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        v = 7;
        if (aigw_size_parse(ok[i].in, &v) != 0)
            fail_msg("size '%s' rejected", ok[i].in);
        assert_int_equal(v, ok[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        if (aigw_size_parse(bad[i], &v) != -1)
            fail_msg("size '%s' accepted", bad[i]);
        assert_int_equal(v, 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kong_default_proxy_listen),
        cmocka_unit_test(kong_default_admin_listen),
        cmocka_unit_test(two_entries_default_backlog),
        cmocka_unit_test(off_gives_empty_list),
        cmocka_unit_test(ipv6_star_and_localhost),
        cmocka_unit_test(whitespace_tolerant),
        cmocka_unit_test(errors),
        cmocka_unit_test(sizes),
    };
    return cmocka_run_group_tests_name("listen", tests, NULL, NULL);
}
