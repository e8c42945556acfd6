/* tests/unit/test_str.c: the number and address writers the request path uses instead of
 * printf give printf's and inet_ntop's text. */
#include <arpa/inet.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/str.h"

static void test_decimal(void **state)
{
    (void)state;
    const long long v[] = { 0, 7, -7, 10, 65535, 1700000000000LL, LLONG_MAX, LLONG_MIN };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char got[24], want[24];
        size_t n = aigw_i64_to_dec(got, v[i]);
        got[n] = '\0';
        snprintf(want, sizeof(want), "%lld", v[i]);
        assert_string_equal(got, want);
    }
    char got[24];
    size_t n = aigw_u64_to_dec(got, ULLONG_MAX);
    got[n] = '\0';
    assert_string_equal(got, "18446744073709551615");
}

static void test_hex_encode(void **state)
{
    (void)state;
    const unsigned char in[] = { 0x00, 0x0f, 0xa5, 0xff };
    char out[9];
    memset(out, 'x', sizeof(out));
    aigw_hex_encode(in, sizeof(in), out);
    assert_string_equal(out, "000fa5ff");
    aigw_hex_encode(in, 0, out);
    assert_string_equal(out, "");
}

static void test_ip_to_str(void **state)
{
    (void)state;
    const char *v4[] = { "0.0.0.0", "127.0.0.1", "10.200.3.45", "255.255.255.255" };
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
        unsigned char a[4];
        char buf[64];
        assert_int_equal(inet_pton(AF_INET, v4[i], a), 1);
        assert_int_equal(aigw_ip_to_str(buf, AF_INET, a), strlen(v4[i]));
        assert_string_equal(buf, v4[i]);
    }
    const char *v6[] = { "::1", "2001:db8::8a2e:370:7334", "::ffff:10.0.0.1" };
    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
        unsigned char a[16];
        char buf[64];
        assert_int_equal(inet_pton(AF_INET6, v6[i], a), 1);
        assert_int_equal(aigw_ip_to_str(buf, AF_INET6, a), strlen(v6[i]));
        assert_string_equal(buf, v6[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_ip_to_str),
        cmocka_unit_test(test_hex_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
