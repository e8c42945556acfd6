/* tests/unit/test_xform.c: the pure transformations of request-transformer and
 * response-transformer (aigwd/plugins/xform_json.c), against Kong 3.9.3's semantics
 * (request-transformer/access.lua, response-transformer/body_transformer.lua). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugins/xform_json.h"

/* Loads ops of key from a config given as JSON text. */
static void load(aigw_xform_ops_t *o, const char *cfg, const char *key)
{
    json_error_t e;
    json_t *c = json_loads(cfg, 0, &e);
    if (!c)
        fail_msg("bad test config: %s", e.text);
    assert_int_equal(aigw_xform_ops_load(o, c, key), 0);
    json_decref(c);
}

static void check_resp(const char *cfg, const char *body, const char *want)
{
    aigw_xform_ops_t o;
    load(&o, cfg, "json");
    size_t n = 0;
    char *out = aigw_xform_resp_json(&o, body, strlen(body), &n);
    if (!want) {
        assert_null(out);
    } else {
        assert_non_null(out);
        assert_string_equal(out, want);
        assert_int_equal(n, strlen(want));
    }
    free(out);
    aigw_xform_ops_free(&o);
}

static void test_split(void **state)
{
    (void)state;
    aigw_str_t n, v;
    assert_int_equal(aigw_xform_split("x-a:b:c", &n, &v), 0);
    assert_true(aigw_str_eq(n, AIGW_STR("x-a")));
    assert_true(aigw_str_eq(v, AIGW_STR("b:c")));
    assert_int_equal(aigw_xform_split("url:::http://x", &n, &v), 0);
    assert_true(aigw_str_eq(v, AIGW_STR("http://x")));
    assert_int_equal(aigw_xform_split("name", &n, &v), 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(aigw_xform_split(":v", &n, &v), -1);
    assert_int_equal(aigw_xform_split("", &n, &v), -1);
}

static void test_ops_load(void **state)
{
    (void)state;
    aigw_xform_ops_t o;
    load(&o, "{\"remove\":{\"json\":[\"a\"]},\"rename\":{\"json\":[]},"
             "\"replace\":{\"json\":[\"n:1\",\"b:true\"],\"json_types\":[\"number\",\"boolean\"]},"
             "\"add\":{\"json\":[]},\"append\":{\"json\":[\"e:\"]}}", "json");
    assert_false(aigw_xform_ops_empty(&o));
    assert_int_equal(o.remove.n, 1);
    assert_null(o.remove.v[0].value);
    assert_int_equal(o.replace.n, 2);
    assert_int_equal(o.replace.v[0].jt, AIGW_XFORM_JT_NUMBER);
    assert_int_equal(o.replace.v[1].jt, AIGW_XFORM_JT_BOOLEAN);
    assert_int_equal(o.append.n, 1);
    assert_null(o.append.v[0].value);
    aigw_xform_ops_free(&o);
    load(&o, "{\"remove\":{\"headers\":[]}}", "json");
    assert_true(aigw_xform_ops_empty(&o));
    aigw_xform_ops_free(&o);
}

static void test_headers_ok(void **state)
{
    (void)state;
    char err[200];
    aigw_xform_ops_t o;
    load(&o, "{\"add\":{\"headers\":[\"x-a:v w\\tx:y\"]},\"rename\":{\"headers\":[\"a:b\"]}}",
         "headers");
    assert_int_equal(aigw_xform_ops_headers_ok(&o, 1, err, sizeof(err)), 0);
    aigw_xform_ops_free(&o);
    load(&o, "{\"add\":{\"headers\":[\"x-a:v\\r\\nx-b: 1\"]}}", "headers");
    assert_int_equal(aigw_xform_ops_headers_ok(&o, 1, err, sizeof(err)), -1);
    aigw_xform_ops_free(&o);
    load(&o, "{\"append\":{\"headers\":[\"x a:v\"]}}", "headers");
    assert_int_equal(aigw_xform_ops_headers_ok(&o, 1, err, sizeof(err)), -1);
    assert_string_equal(err, "'x a' is not a valid header name");
    aigw_xform_ops_free(&o);
    load(&o, "{\"rename\":{\"headers\":[\"a:b c\"]}}", "headers");
    assert_int_equal(aigw_xform_ops_headers_ok(&o, 1, err, sizeof(err)), -1);
    aigw_xform_ops_free(&o);
}

static void test_json_type(void **state)
{
    (void)state;
    assert_true(aigw_xform_is_json_type(AIGW_STR("application/json")));
    assert_true(aigw_xform_is_json_type(AIGW_STR("Application/JSON; charset=utf-8")));
    assert_true(aigw_xform_is_json_type(AIGW_STR("application/vnd.api+json")));
    assert_true(aigw_xform_is_json_type(AIGW_STR("text/plain, application/json")));
    assert_false(aigw_xform_is_json_type(AIGW_STR("text/json")));
    assert_false(aigw_xform_is_json_type(AIGW_STR("application/jsonp")));
    assert_false(aigw_xform_is_json_type(AIGW_STR_NULL));
}

static void test_resp_json_ops(void **state)
{
    (void)state;
    /* remove */
    check_resp("{\"remove\":{\"json\":[\"b\",\"zz\"]}}", "{\"a\":1,\"b\":2}", "{\"a\":1}");
    /* rename: present (null counts), absent, same name twice removes (Kong sets then clears) */
    check_resp("{\"rename\":{\"json\":[\"a:x\",\"q:r\",\"n:m\"]}}",
               "{\"a\":1,\"n\":null}", "{\"x\":1,\"m\":null}");
    check_resp("{\"rename\":{\"json\":[\"a:a\"]}}", "{\"a\":1,\"b\":2}", "{\"b\":2}");
    /* replace only when truthy (false is not, null is), typed */
    check_resp("{\"replace\":{\"json\":[\"a:2\",\"f:x\",\"n:y\",\"z:1\"],"
               "\"json_types\":[\"number\"]}}",
               "{\"a\":1,\"f\":false,\"n\":null}", "{\"a\":2,\"f\":false,\"n\":\"y\"}");
    /* add when absent or false */
    check_resp("{\"add\":{\"json\":[\"a:9\",\"f:true\",\"new:v\"],"
               "\"json_types\":[\"number\",\"boolean\",\"string\"]}}",
               "{\"a\":1,\"f\":false}", "{\"a\":1,\"f\":true,\"new\":\"v\"}");
    /* append: string -> array, array push, number replaced, absent -> [v] */
    check_resp("{\"append\":{\"json\":[\"s:b\",\"arr:c\",\"num:d\",\"new:e\"]}}",
               "{\"s\":\"a\",\"arr\":[1],\"num\":5}",
               "{\"s\":[\"a\",\"b\"],\"arr\":[1,\"c\"],\"num\":[\"d\"],\"new\":[\"e\"]}");
    /* json_types: number casts (Lua tonumber), bad number skipped, boolean "true" only */
    check_resp("{\"add\":{\"json\":[\"i:42\",\"r:1.5\",\"h:0x10\",\"bad:abc\",\"b1:true\","
               "\"b2:yes\"],\"json_types\":[\"number\",\"number\",\"number\",\"number\","
               "\"boolean\",\"boolean\"]}}",
               "{}", "{\"i\":42,\"r\":1.5,\"h\":16,\"b1\":true,\"b2\":false}");
    /* values: '/' escaped as cjson does, a backslash doubled (Kong's json_value) */
    check_resp("{\"add\":{\"json\":[\"u:http://x/y\",\"q:a\\\"b\",\"bs:a\\\\b\"]}}", "{}",
               "{\"u\":\"http:\\/\\/x\\/y\",\"q\":\"a\\\"b\",\"bs\":\"a\\\\\\\\b\"}");
    /* entries without a value do nothing for replace/add/append */
    check_resp("{\"add\":{\"json\":[\"x:\"]},\"append\":{\"json\":[\"y\"]}}", "{\"a\":1}",
               "{\"a\":1}");
    /* order remove, rename, replace, add, append */
    check_resp("{\"remove\":{\"json\":[\"a\"]},\"rename\":{\"json\":[\"b:a\"]},"
               "\"replace\":{\"json\":[\"a:r\"]},\"add\":{\"json\":[\"a:ad\",\"c:ad\"]},"
               "\"append\":{\"json\":[\"c:ap\"]}}",
               "{\"a\":1,\"b\":2}", "{\"a\":\"r\",\"c\":[\"ad\",\"ap\"]}");
}

static void test_resp_json_not_object(void **state)
{
    (void)state;
    check_resp("{\"remove\":{\"json\":[\"a\"]}}", "not json", NULL);
    check_resp("{\"remove\":{\"json\":[\"a\"]}}", "[1,2]", NULL);
    check_resp("{\"remove\":{\"json\":[\"a\"]}}", "", NULL);
}

static void check_req(int kind, const char *cfg, const char *ct, const char *body,
                      int want_rc, const char *want)
{
    aigw_xform_ops_t o;
    load(&o, cfg, "body");
    char *out = NULL;
    size_t n = 0;
    int rc;
    if (kind == 'j')
        rc = aigw_xform_req_json(&o, body, strlen(body), &out, &n);
    else if (kind == 'f')
        rc = aigw_xform_req_form(&o, body, strlen(body), &out, &n);
    else
        rc = aigw_xform_req_multipart(&o, aigw_str_c(ct), body, strlen(body), &out, &n);
    assert_int_equal(rc, want_rc);
    if (want_rc == 1) {
        assert_non_null(out);
        assert_string_equal(out, want);
        assert_int_equal(n, strlen(want));
    }
    free(out);
    aigw_xform_ops_free(&o);
}

static void test_req_json(void **state)
{
    (void)state;
    check_req('j', "{\"remove\":{\"body\":[\"p\"]}}", NULL, "{\"p\":1,\"q\":2}", 1, "{\"q\":2}");
    /* remove re-encodes even when nothing is removed */
    check_req('j', "{\"remove\":{\"body\":[\"zz\"]}}", NULL, "{\"q\": 2}", 1, "{\"q\":2}");
    /* rename skips false values */
    check_req('j', "{\"rename\":{\"body\":[\"f:g\",\"a:b\"]}}", NULL, "{\"f\":false,\"a\":1}", 1,
              "{\"f\":false,\"b\":1}");
    check_req('j', "{\"rename\":{\"body\":[\"f:g\"]}}", NULL, "{\"f\":false}", 0, NULL);
    /* replace and add values are strings */
    check_req('j', "{\"replace\":{\"body\":[\"a:2\"]},\"add\":{\"body\":[\"a:3\",\"b:x:y\"]}}",
              NULL, "{\"a\":1}", 1, "{\"a\":\"2\",\"b\":\"x:y\"}");
    /* an empty body: add and append apply to {} ; remove does not */
    check_req('j', "{\"remove\":{\"body\":[\"a\"]},\"add\":{\"body\":[\"a:1\"]}}", NULL, "", 1,
              "{\"a\":\"1\"}");
    check_req('j', "{\"remove\":{\"body\":[\"a\"]}}", NULL, "", 0, NULL);
    check_req('j', "{\"append\":{\"body\":[\"a:1\",\"a:2\",\"n:x\"]}}", NULL, "{\"n\":3}", 1,
              "{\"n\":[\"x\"],\"a\":[\"1\",\"2\"]}");
    /* not JSON: left alone */
    check_req('j', "{\"add\":{\"body\":[\"a:1\"]}}", NULL, "{bad", 0, NULL);
    check_req('j', "{\"add\":{\"body\":[\"a:1\"]}}", NULL, "[1]", 0, NULL);
}

static void test_req_form(void **state)
{
    (void)state;
    check_req('f', "{\"remove\":{\"body\":[\"a\"]}}", NULL, "a=1&b=2", 1, "b=2");
    check_req('f', "{\"rename\":{\"body\":[\"a:c\"]}}", NULL, "a=1&b=2", 1, "b=2&c=1");
    check_req('f', "{\"rename\":{\"body\":[\"x:c\"]}}", NULL, "a=1", 0, NULL);
    /* values decoded then encoded again as ngx.encode_args does (space as %20) */
    check_req('f', "{\"replace\":{\"body\":[\"a:hello world\"]}}", NULL, "a=x+y&b=c%2Fd", 1,
              "a=hello%20world&b=c%2Fd");
    check_req('f', "{\"add\":{\"body\":[\"a:9\",\"n:v&w\"]}}", NULL, "a=1", 1, "a=1&n=v%26w");
    /* append: string -> two values; a bare flag is replaced */
    check_req('f', "{\"append\":{\"body\":[\"a:2\",\"f:v\",\"z:1\"]}}", NULL, "a=1&f", 1,
              "a=1&a=2&f=v&z=1");
    /* remove/rename/replace need a body, add does not */
    check_req('f', "{\"remove\":{\"body\":[\"a\"]},\"add\":{\"body\":[\"k:v\"]}}", NULL, "", 1,
              "k=v");
}

static void test_req_multipart(void **state)
{
    (void)state;
    const char *ct = "multipart/form-data; boundary=XyZ";
    const char *body = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n"
                       "Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n"
                       "--XyZ--\r\n";
    check_req('m', "{\"remove\":{\"body\":[\"a\"]}}", ct, body, 1,
              "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n"
              "Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n");
    check_req('m', "{\"add\":{\"body\":[\"a:no\",\"b:2\"]}}", ct, body, 1,
              "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
              "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n"
              "Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n"
              "--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--XyZ--\r\n");
    /* replace deletes then sets again: the part moves last; rename likewise */
    check_req('m', "{\"replace\":{\"body\":[\"a:r\"]},\"rename\":{\"body\":[\"f:g\"]}}",
              "multipart/form-data; boundary=\"XyZ\"", body, 1,
              "--XyZ\r\nContent-Disposition: form-data; name=\"g\"\r\n\r\nline1\r\nline2\r\n"
              "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nr\r\n--XyZ--\r\n");
    check_req('m', "{\"add\":{\"body\":[\"a:no\"]}}", ct, body, 0, NULL);
    check_req('m', "{\"add\":{\"body\":[\"a:1\"]}}", "multipart/form-data", body, 0, NULL);
}

static void check_query(const char *cfg, const char *q, const char *form, const char *want)
{
    aigw_xform_ops_t o;
    if (cfg)
        load(&o, cfg, "querystring");
    size_t n = 0;
    char *out = aigw_xform_req_query(cfg ? &o : NULL, aigw_str_c(q),
                                     form ? aigw_str_c(form) : AIGW_STR_NULL, &n);
    assert_non_null(out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    free(out);
    if (cfg)
        aigw_xform_ops_free(&o);
}

static void test_query(void **state)
{
    (void)state;
    /* set_query sorts the encoded arguments */
    check_query("{\"add\":{\"querystring\":[\"b:2\"]}}", "z=1&a=x%20y", NULL, "a=x%20y&b=2&z=1");
    check_query("{\"remove\":{\"querystring\":[\"z\"]}}", "z=1&a=1&z=2", NULL, "a=1");
    check_query("{\"rename\":{\"querystring\":[\"a:c\"]}}", "a=1&a=2&b", NULL, "b&c=1&c=2");
    check_query("{\"replace\":{\"querystring\":[\"a:v:w\",\"q:x\"]}}", "a=1", NULL, "a=v%3Aw");
    check_query("{\"append\":{\"querystring\":[\"a:3\",\"flag:x\"]}}", "a=1&flag", NULL,
                "a=1&a=3&flag=x");
    check_query("{\"add\":{\"querystring\":[\"e:\"]}}", "", NULL, "");
    /* http_method GET: the form's arguments join the query */
    check_query(NULL, "a=1&c=3", "a=2&b=x+y", "a=1&a=2&b=x%20y&c=3");
    check_query(NULL, "", "k=v", "k=v");
}

static void test_escape_path(void **state)
{
    (void)state;
    size_t n = 0;
    char *p = aigw_xform_escape_path(AIGW_STR("/a b/ü/%41/x?y=[1]"), &n);
    assert_non_null(p);
    assert_string_equal(p, "/a%20b/%C3%BC/%41/x?y=[1]");
    assert_int_equal(n, strlen(p));
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_ops_load),
        cmocka_unit_test(test_headers_ok),
        cmocka_unit_test(test_json_type),
        cmocka_unit_test(test_resp_json_ops),
        cmocka_unit_test(test_resp_json_not_object),
        cmocka_unit_test(test_req_json),
        cmocka_unit_test(test_req_form),
        cmocka_unit_test(test_req_multipart),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_escape_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
