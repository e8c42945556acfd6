/* tests/unit/test_cors.c: the pure helpers of the cors and ip-restriction plugins: Kong's
 * origin normalisation (LuaSocket url.parse rules) and the IPv4 / IPv6 range matcher. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include "plugins/cors.h"
#include "plugins/iprange.h"

static void norm(const char *in, const char *want_domain, const char *want_host)
{
    char buf[256];
    aigw_str_t d, h;
    assert_int_equal(aigw_cors_normalize(in, strlen(in), buf, &d, &h), 0);
    char got_d[256], got_h[256];
    memcpy(got_d, d.p, d.n);
    got_d[d.n] = '\0';
    memcpy(got_h, h.p, h.n);
    got_h[h.n] = '\0';
    assert_string_equal(got_d, want_domain);
    assert_string_equal(got_h, want_host);
}

static void test_normalize(void **state)
{
    (void)state;
    norm("http://example.com", "http://example.com", "example.com");
    norm("http://example.com:80", "http://example.com", "example.com");
    norm("https://example.com:443", "https://example.com", "example.com");
    norm("http://example.com:443", "http://example.com:443", "example.com");
    norm("https://example.com:80", "https://example.com:80", "example.com");
    norm("http://example.com:8080/", "http://example.com:8080", "example.com");
    norm("http://u:p@example.com:81/x?y#z", "http://example.com:81", "example.com");
    /* case is kept: the port rule compares the scheme exactly */
    norm("HTTP://Example.COM:80", "HTTP://Example.COM:80", "Example.COM");
    /* no authority: the value itself */
    norm("null", "null", "null");
    norm("example.com", "example.com", "example.com");
    norm("localhost:8080", "localhost:8080", "localhost:8080");
    norm("http:", "http:", "http:");
    norm("http://", "http://", "http://");
    /* IPv6 literals lose their brackets */
    norm("http://[::1]:8000", "http://::1:8000", "::1");
    norm("http://[::1]", "http://::1", "::1");
    /* empty port is kept as such */
    norm("http://a:", "http://a:", "a");
    /* an authority without scheme */
    norm("//host:9", "host:9", "host");
    /* a fragment before the authority ends the value */
    norm("http://a#b/c", "http://a", "a");
    char buf[4];
    aigw_str_t d, h;
    assert_int_equal(aigw_cors_normalize("", 0, buf, &d, &h), -1);
}

static int in(const char *const *list, size_t n, const char *ip)
{
    aigw_iprange_t r[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(aigw_iprange_parse(list[i], &r[i]), 0);
    int fam;
    uint8_t a[16];
    assert_int_equal(aigw_ipaddr_parse(ip, &fam, a), 0);
    return aigw_iprange_match(r, n, fam, a);
}

static void test_iprange(void **state)
{
    (void)state;
    static const char *const v4[] = {"10.0.0.0/8", "192.168.1.7", "172.16.0.0/12"};
    assert_true(in(v4, 3, "10.255.1.2"));
    assert_true(in(v4, 3, "192.168.1.7"));
    assert_false(in(v4, 3, "192.168.1.8"));
    assert_true(in(v4, 3, "172.31.255.255"));
    assert_false(in(v4, 3, "172.32.0.0"));
    assert_false(in(v4, 3, "11.0.0.1"));
    assert_false(in(v4, 3, "::1"));
    static const char *const hostbits[] = {"127.0.0.1/24"};
    assert_true(in(hostbits, 1, "127.0.0.200"));
    assert_false(in(hostbits, 1, "127.0.1.1"));
    static const char *const all4[] = {"0.0.0.0/0"};
    assert_true(in(all4, 1, "1.2.3.4"));
    assert_false(in(all4, 1, "::1"));
    static const char *const odd[] = {"10.1.2.3/31"};
    assert_true(in(odd, 1, "10.1.2.2"));
    assert_false(in(odd, 1, "10.1.2.4"));

    static const char *const v6[] = {"2001:db8::/32", "::1", "fe80::/10", "2001:db9:0:1::/65"};
    assert_true(in(v6, 4, "2001:db8:ffff::1"));
    assert_false(in(v6, 4, "2001:db9::1"));
    assert_true(in(v6, 4, "::1"));
    assert_false(in(v6, 4, "::2"));
    assert_true(in(v6, 4, "febf::1"));
    assert_false(in(v6, 4, "fec0::1"));
    assert_true(in(v6, 4, "2001:db9:0:1:7fff::1"));
    assert_false(in(v6, 4, "2001:db9:0:1:8000::1"));
    assert_false(in(v6, 4, "127.0.0.1"));
    static const char *const all6[] = {"::/0"};
    assert_true(in(all6, 1, "2001:db8::1"));
    assert_false(in(all6, 1, "127.0.0.1"));
    /* an IPv4-mapped entry does not match an IPv4 client (different families) */
    static const char *const mapped[] = {"::ffff:127.0.0.1"};
    assert_false(in(mapped, 1, "127.0.0.1"));
    assert_true(in(mapped, 1, "::ffff:127.0.0.1"));

    aigw_iprange_t r;
    assert_int_equal(aigw_iprange_parse("10.0.0.0/33", &r), -1);
    assert_int_equal(aigw_iprange_parse("::/129", &r), -1);
    assert_int_equal(aigw_iprange_parse("10.0.0.0/", &r), -1);
    assert_int_equal(aigw_iprange_parse("nope", &r), -1);
    assert_int_equal(aigw_iprange_parse("::/128", &r), 0);
    assert_int_equal(r.family, AF_INET6);
    assert_int_equal(r.bits, 128);
    int fam;
    uint8_t a[16];
    assert_int_equal(aigw_ipaddr_parse("unix:", &fam, a), -1);
    assert_int_equal(aigw_ipaddr_parse(NULL, &fam, a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_iprange),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
