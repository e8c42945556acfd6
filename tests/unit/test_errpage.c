/* tests/unit/test_errpage.c: error body negotiation and templates (aigwd/http/errpage.c),
 * against Kong's get_response_type and ERROR_TEMPLATES. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include "http/errpage.h"

static aigw_errpage_format_t with(const char *accept, const char *ctype, int fallback)
{
    aigw_http_header_t h[2];
    size_t n = 0;
    if (accept)
        h[n++] = (aigw_http_header_t){ AIGW_STR("Accept"), aigw_str_c(accept) };
    if (ctype)
        h[n++] = (aigw_http_header_t){ AIGW_STR("Content-Type"), aigw_str_c(ctype) };
    aigw_http_req_t r;
    memset(&r, 0, sizeof(r));
    r.headers = h;
    r.n_headers = n;
    return aigw_errpage_negotiate(&r, fallback);
}

static void negotiate(void **state)
{
    (void)state;
    assert_int_equal(with(NULL, NULL, 0), AIGW_ERRPAGE_JSON);
    assert_int_equal(with("*/*", NULL, 0), AIGW_ERRPAGE_JSON);
    assert_int_equal(with("text/html", NULL, 0), AIGW_ERRPAGE_HTML);
    assert_int_equal(with("text/plain", NULL, 0), AIGW_ERRPAGE_PLAIN);
    assert_int_equal(with("text/*", NULL, 0), AIGW_ERRPAGE_PLAIN);
    assert_int_equal(with("application/xml", NULL, 0), AIGW_ERRPAGE_XML);
    assert_int_equal(with("image/png", NULL, 0), AIGW_ERRPAGE_JSON);
    /* A browser: the first of the q=1 types wins. */
    assert_int_equal(with("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                          NULL, 0),
                     AIGW_ERRPAGE_HTML);
    /* Higher q later wins; equal q does not replace. */
    assert_int_equal(with("text/html;q=0.5, application/xml;q=0.8", NULL, 0), AIGW_ERRPAGE_XML);
    assert_int_equal(with("text/plain, text/html", NULL, 0), AIGW_ERRPAGE_PLAIN);
    assert_int_equal(with("text/html; charset=utf-8; q=0.2, text/plain;q=0.1", NULL, 0),
                     AIGW_ERRPAGE_HTML);
    /* Content-Type only counts for nginx-level errors. */
    assert_int_equal(with(NULL, "text/plain", 0), AIGW_ERRPAGE_JSON);
    assert_int_equal(with(NULL, "text/plain", 1), AIGW_ERRPAGE_PLAIN);
    assert_int_equal(with("application/json", "text/plain", 1), AIGW_ERRPAGE_JSON);
    /* Garbage never crashes and means JSON. */
    assert_int_equal(with(",,;;/", NULL, 0), AIGW_ERRPAGE_JSON);
    assert_int_equal(with("text/html;q=2", NULL, 0), AIGW_ERRPAGE_JSON);
}

static void render(void **state)
{
    (void)state;
    char out[AIGW_ERRPAGE_MAX(64)];
    const char *rid = "0123456789abcdef0123456789abcdef";
    size_t n = aigw_errpage_render(AIGW_ERRPAGE_JSON, "Not found", rid, out, sizeof(out));
    assert_int_equal(n, strlen("{\n  \"message\":\"Not found\",\n  \"request_id\":\"\"\n}") + 32);
    assert_memory_equal(out, "{\n  \"message\":\"Not found\",\n  \"request_id\":\"0123", 47);
    n = aigw_errpage_render(AIGW_ERRPAGE_PLAIN, "Bad request", rid, out, sizeof(out));
    assert_int_equal(n, strlen("Bad request\nrequest_id: \n") + 32);
    n = aigw_errpage_render(AIGW_ERRPAGE_HTML, "Bad request", rid, out, sizeof(out));
    out[n] = '\0';
    assert_non_null(strstr(out, "<p>Bad request.</p>"));
    n = aigw_errpage_render(AIGW_ERRPAGE_XML, "Bad request", rid, out, sizeof(out));
    out[n] = '\0';
    assert_non_null(strstr(out, "<message>Bad request</message>"));
    assert_int_equal(aigw_errpage_render(AIGW_ERRPAGE_JSON, "x", rid, out, 10), 0);
    assert_string_equal(aigw_errpage_content_type(AIGW_ERRPAGE_HTML).p,
                        "text/html; charset=utf-8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(negotiate),
        cmocka_unit_test(render),
    };
    return cmocka_run_group_tests_name("errpage", tests, NULL, NULL);
}
