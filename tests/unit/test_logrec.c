/* tests/unit/test_logrec.c: the log record's shape and its redaction. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "plugins/logrec.h"

typedef struct fx {
    aigw_arena_pool_t pool;
    aigw_http_req_t req;
    aigw_plugin_run_t run;
    aigw_http_header_t h[8];
} fx_t;

static fx_t *fx_new(const char *target, size_t nh, const char *const *hdrs)
{
    fx_t *f = calloc(1, sizeof(*f));
    aigw_arena_pool_init(&f->pool, 4096, 4);
    aigw_arena_init(&f->req.arena, &f->pool);
    f->req.method = 1;
    f->req.method_name = AIGW_STR("GET");
    f->req.target = aigw_str_c(target);
    const char *q = strchr(target, '?');
    f->req.path = (aigw_str_t){ target, q ? (size_t)(q - target) : strlen(target) };
    f->req.query = q ? aigw_str_c(q + 1) : AIGW_STR("");
    for (size_t i = 0; i < nh; i++)
        f->h[i] = (aigw_http_header_t){ aigw_str_c(hdrs[2 * i]), aigw_str_c(hdrs[2 * i + 1]) };
    f->req.headers = f->h;
    f->req.n_headers = nh;
    memcpy(f->req.request_id, "0123456789abcdef0123456789abcdef", 33);
    f->req.start_ns = uv_hrtime();
    aigw_plugins_run_init(&f->run, NULL, &f->req);
    f->run.client_ip = "10.0.0.7";
    f->run.status = 200;
    return f;
}

static void fx_free(fx_t *f)
{
    aigw_arena_reset(&f->req.arena);
    aigw_arena_pool_free(&f->pool);
    free(f);
}

static json_t *record(fx_t *f)
{
    aigw_str_t r = aigw_plugin_log_record(&f->run);
    assert_non_null(r.p);
    json_error_t e;
    json_t *j = json_loadb(r.p, r.n, 0, &e);
    if (!j)
        fail_msg("record is not JSON: %s: %.*s", e.text, (int)r.n, r.p);
    return j;
}

static const char *sget(json_t *j, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *o = j;
    char *p = buf;
    while (p && o) {
        char *dot = strchr(p, '.');
        if (dot)
            *dot = '\0';
        o = json_object_get(o, p);
        p = dot ? dot + 1 : NULL;
    }
    return json_string_value(o);
}

static void configure(const char *hdrs, const char *qry, const char *json, const char *pats)
{
    aigw_conf_t c;
    memset(&c, 0, sizeof(c));
    c.log_redaction = 1;
    c.log_redact_headers = (char *)(uintptr_t)hdrs;
    c.log_redact_query_args = (char *)(uintptr_t)qry;
    c.log_redact_json_fields = (char *)(uintptr_t)json;
    c.log_redact_patterns = (char *)(uintptr_t)pats;
    char err[256];
    assert_int_equal(aigw_logrec_configure(&c, err, sizeof(err)), 0);
}

static void t_shape_and_default_masks(void **state)
{
    (void)state;
    configure(NULL, NULL, NULL, NULL);
    const char *h[] = { "Host", "api.example:8000", "Authorization", "Bearer abc.def.ghi",
                        "Cookie", "sid=42", "X-Trace", "one", "x-trace", "two",
                        "User-Agent", "curl/8" };
    fx_t *f = fx_new("/v1/chat?apikey=SECRET123&model=gpt&flag&model=x%20y", 6, h);
    json_t *j = record(f);
    assert_string_equal(sget(j, "request.method"), "GET");
    assert_string_equal(sget(j, "request.id"), "0123456789abcdef0123456789abcdef");
    assert_string_equal(sget(j, "request.uri"), "/v1/chat?apikey=REDACTED&model=gpt&flag&model=x%20y");
    assert_string_equal(sget(j, "request.headers.authorization"), "REDACTED");
    assert_string_equal(sget(j, "request.headers.cookie"), "REDACTED");
    assert_string_equal(sget(j, "request.headers.user-agent"), "curl/8");
    json_t *xt = json_object_get(json_object_get(json_object_get(j, "request"), "headers"),
                                 "x-trace");
    assert_true(json_is_array(xt) && json_array_size(xt) == 2);
    json_t *qs = json_object_get(json_object_get(j, "request"), "querystring");
    assert_string_equal(json_string_value(json_object_get(qs, "apikey")), "REDACTED");
    assert_true(json_is_true(json_object_get(qs, "flag")));
    json_t *model = json_object_get(qs, "model");
    assert_true(json_is_array(model));
    assert_string_equal(json_string_value(json_array_get(model, 1)), "x y");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "response"), "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "latencies"), "proxy")), -1);
    assert_string_equal(sget(j, "source"), "kong");
    assert_string_equal(sget(j, "client_ip"), "10.0.0.7");
    assert_true(json_is_integer(json_object_get(j, "started_at")));
    aigw_str_t r = aigw_plugin_log_record(&f->run);
    assert_null(memmem(r.p, r.n, "SECRET123", 9));
    assert_null(memmem(r.p, r.n, "abc.def", 7));
    json_decref(j);
    fx_free(f);
}

static void t_patterns_plugin_masks_custom(void **state)
{
    (void)state;
    configure("X-Email", "session", "ssn", "\\d{3}-\\d{2}-\\d{4}");
    const char *h[] = { "X-Email", "a@b.c", "X-Note", "key sk-abcdefghijklmnopqrstuvwx end",
                        "X-My-Key", "k-123", "X-Id", "ssn 123-45-6789" };
    fx_t *f = fx_new("/p?session=s1&tok=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig&mykey=zz", 4, h);
    aigw_plugin_log_mask_header(&f->run, "x-my-key");
    aigw_plugin_log_mask_query(&f->run, "mykey");
    aigw_plugin_log_set(&f->run, "correlation_id", AIGW_STR("\"c-1\""));
    json_t *j = record(f);
    assert_string_equal(sget(j, "request.headers.x-email"), "REDACTED");
    assert_string_equal(sget(j, "request.headers.x-note"), "key REDACTED end");
    assert_string_equal(sget(j, "request.headers.x-my-key"), "REDACTED");
    assert_string_equal(sget(j, "request.headers.x-id"), "ssn REDACTED");
    assert_string_equal(sget(j, "request.uri"), "/p?session=REDACTED&tok=REDACTED&mykey=REDACTED");
    assert_string_equal(sget(j, "correlation_id"), "c-1");
    json_decref(j);

    json_t *cf = json_pack("{s:s,s:i}", "env", "prod", "request.extra", 5);
    size_t n;
    char *with = aigw_plugin_log_record_with(&f->run, cf, &n);
    json_t *w = json_loadb(with, n, 0, NULL);
    assert_non_null(w);
    assert_string_equal(sget(w, "env"), "prod");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(w, "request"), "extra")), 5);
    assert_string_equal(sget(w, "request.method"), "GET");
    json_decref(w);
    free(with);
    json_decref(cf);

    size_t mn;
    const char *body = "{\"user\":{\"ssn\":\"1\",\"name\":\"n\"},\"k\":\"sk-abcdefghijklmnopqrstu\"}";
    char *m = aigw_logrec_mask_json(body, strlen(body), &mn);
    assert_non_null(m);
    assert_string_equal(m, "{\"user\":{\"ssn\":\"REDACTED\",\"name\":\"n\"},\"k\":\"REDACTED\"}");
    free(m);
    assert_null(aigw_logrec_mask_json("not json", 8, &mn));
    fx_free(f);
}

static void t_invalid_utf8_and_bad_pattern(void **state)
{
    (void)state;
    configure(NULL, NULL, NULL, NULL);
    const char *h[] = { "X-Bin", "a\xff\x01\"b" };
    fx_t *f = fx_new("/", 1, h);
    json_t *j = record(f);
    assert_string_equal(sget(j, "request.headers.x-bin"), "a\xc3\xbf\x01\"b");
    json_decref(j);
    fx_free(f);
    aigw_conf_t c;
    memset(&c, 0, sizeof(c));
    c.log_redaction = 1;
    c.log_redact_patterns = (char *)(uintptr_t)"ok (unclosed";
    char err[256];
    assert_int_equal(aigw_logrec_configure(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "(unclosed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_shape_and_default_masks),
        cmocka_unit_test(t_patterns_plugin_masks_custom),
        cmocka_unit_test(t_invalid_utf8_and_bad_pattern),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    aigw_logrec_shutdown();
    return rc;
}
