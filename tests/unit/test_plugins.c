/* tests/unit/test_plugins.c: the bundled plugin schemas (aigwd/schema/plugins/). The first
 * group checks the tables, the typedef validators and each plugin's cross-field check against
 * Kong 3.9.3's messages (spec/03-plugins/, the schema_spec.lua files). The second group runs
 * real configs through the generic engine (aigw_schema_validate, schema/validate.c) and is
 * skipped while that file does not exist. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "schema/plugins/plugins.h"

#if defined(__has_include)
#if __has_include("schema/validate.c")
#define HAVE_ENGINE 1
#endif
#endif

static const char *const bundled[] = {
    "jwt", "key-auth", "basic-auth", "oauth2", "acl", "rate-limiting", "http-log", "file-log",
    "tcp-log", "udp-log", "cors", "ip-restriction", "request-size-limiting",
    "request-termination", "correlation-id", "prometheus", "request-transformer",
    "response-transformer", "ai-prompt-guard", NULL,
};

static const aigw_plugin_schema_t *plugin(const char *name)
{
    const aigw_plugin_schema_t *p = aigw_schema_plugin(name);
    if (!p)
        fail_msg("no plugin %s", name);
    return p;
}

static const aigw_field_t *field(const aigw_field_t *fields, const char *name)
{
    for (const aigw_field_t *f = fields; f && f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* A dotted path inside a config ("redis.host"). */
static const aigw_field_t *field_path(const aigw_field_t *fields, const char *path)
{
    const aigw_field_t *f = NULL;
    for (const char *p = path; p;) {
        const char *dot = strchr(p, '.');
        char seg[64];
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(seg))
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        f = field(fields, seg);
        if (!f)
            return NULL;
        fields = f->fields;
        p = dot ? dot + 1 : NULL;
    }
    return f;
}

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (!j)
        fail_msg("bad JSON in test: %s (%s)", text, err.text);
    return j;
}

static void assert_json_eq(const json_t *got, const char *want_text)
{
    json_t *want = parse(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* ---- registry ------------------------------------------------------------------------------- */

static void test_registry_sorted(void **state)
{
    (void)state;
    size_t n = 0;
    while (aigw_plugins[n])
        n++;
    assert_int_equal(n, 19);
    for (size_t i = 0; i + 1 < n; i++)
        assert_true(strcmp(aigw_plugins[i]->name, aigw_plugins[i + 1]->name) < 0);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(aigw_schema_plugin(aigw_plugins[i]->name), aigw_plugins[i]);
    assert_null(aigw_schema_plugin("nope"));
    assert_null(aigw_schema_plugin(""));
    assert_null(aigw_schema_plugin("aaa"));
    assert_null(aigw_schema_plugin("zzz"));
    assert_null(aigw_schema_plugin("rate-limiting-advanced"));
    assert_null(aigw_schema_plugin(NULL));
}

static void test_every_plugin_exists(void **state)
{
    (void)state;
    for (size_t i = 0; bundled[i]; i++) {
        const aigw_plugin_schema_t *p = plugin(bundled[i]);
        assert_string_equal(p->name, bundled[i]);
        assert_non_null(p->config);
        assert_non_null(p->config[0].name);
        assert_string_equal(p->version, "3.9.1");
    }
}

/* handler.lua PRIORITY of each plugin (3.9.3). */
static void test_priorities(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int prio;
    } want[] = {
        {"cors", 2000},
        {"jwt", 1450},
        {"oauth2", 1400},
        {"key-auth", 1250},
        {"basic-auth", 1100},
        {"acl", 950},
        {"rate-limiting", 910},
        {"http-log", 12},
        {"file-log", 9},
        {"correlation-id", 100001},
        {"ip-restriction", 990},
        {"request-size-limiting", 951},
        {"request-transformer", 801},
        {"response-transformer", 800},
        {"ai-prompt-guard", 771},
        {"prometheus", 13},
        {"udp-log", 8},
        {"tcp-log", 7},
        {"request-termination", 2},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(plugin(want[i].name)->priority, want[i].prio);
}

/* ---- tables --------------------------------------------------------------------------------- */

static int in_one_of(const char *const *one_of, const json_t *v)
{
    char buf[64];
    const char *s;
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        s = buf;
    } else {
        return 0;
    }
    for (size_t i = 0; one_of[i]; i++)
        if (strcmp(one_of[i], s) == 0)
            return 1;
    return 0;
}

static int type_ok(aigw_ftype_t t, const json_t *v)
{
    switch (t) {
    case AIGW_FT_STRING:
        return json_is_string(v);
    case AIGW_FT_INTEGER:
        return json_is_integer(v);
    case AIGW_FT_NUMBER:
        return json_is_number(v);
    case AIGW_FT_BOOLEAN:
        return json_is_boolean(v);
    case AIGW_FT_ARRAY:
    case AIGW_FT_SET:
        return json_is_array(v);
    case AIGW_FT_MAP:
    case AIGW_FT_RECORD:
        return json_is_object(v);
    default:
        return 1;
    }
}

static void check_value(const char *where, const aigw_field_t *f, const json_t *v)
{
    if (!type_ok(f->type, v))
        fail_msg("%s: default of the wrong type", where);
    if (f->one_of && !in_one_of(f->one_of, v))
        fail_msg("%s: default not in one_of", where);
    if ((f->flags & AIGW_F_HAS_BETWEEN) &&
        (json_number_value(v) < f->min || json_number_value(v) > f->max))
        fail_msg("%s: default out of bounds", where);
    if ((f->flags & AIGW_F_HAS_GT) && !(json_number_value(v) > f->min))
        fail_msg("%s: default not greater than min", where);
    if ((f->type == AIGW_FT_ARRAY || f->type == AIGW_FT_SET) && f->elements) {
        size_t i;
        const json_t *el;
        json_array_foreach(v, i, el) check_value(where, f->elements, el);
    }
}

static void walk_defaults(const char *plugin_name, const aigw_field_t *fields, size_t *count)
{
    for (const aigw_field_t *f = fields; f->name; f++) {
        char where[160];
        snprintf(where, sizeof(where), "%s.%s", plugin_name, f->name);
        if ((f->type == AIGW_FT_ARRAY || f->type == AIGW_FT_SET || f->type == AIGW_FT_MAP))
            assert_non_null(f->elements);
        if (f->type == AIGW_FT_RECORD) {
            assert_non_null(f->fields);
            assert_null(f->dflt);
            walk_defaults(where, f->fields, count);
        }
        if (f->alias_of)
            assert_null(f->dflt); /* an alias never fills anything by itself */
        if (!f->dflt)
            continue;
        json_error_t err;
        json_t *v = json_loads(f->dflt, JSON_DECODE_ANY, &err);
        if (!v)
            fail_msg("%s: default is not JSON: %s", where, f->dflt);
        check_value(where, f, v);
        json_decref(v);
        (*count)++;
    }
}

static void test_defaults_valid(void **state)
{
    (void)state;
    size_t count = 0;
    for (size_t i = 0; aigw_plugins[i]; i++)
        walk_defaults(aigw_plugins[i]->name, aigw_plugins[i]->config, &count);
    assert_true(count > 80);
    /* A few values users rely on. */
    assert_string_equal(field(plugin("rate-limiting")->config, "policy")->dflt, "\"local\"");
    assert_string_equal(field_path(plugin("rate-limiting")->config, "redis.port")->dflt, "6379");
    assert_string_equal(field(plugin("jwt")->config, "header_names")->dflt,
                        "[\"authorization\"]");
    assert_string_equal(field(plugin("key-auth")->config, "key_names")->dflt, "[\"apikey\"]");
    assert_string_equal(field(plugin("basic-auth")->config, "realm")->dflt, "\"service\"");
    assert_string_equal(field(plugin("jwt")->config, "consumer_fallback")->dflt, "true");
    assert_string_equal(field_path(plugin("http-log")->config, "queue.initial_retry_delay")->dflt,
                        "0.01");
}

/* Every alias resolves inside the config, to a field of the same type. */
static void test_aliases(void **state)
{
    (void)state;
    size_t n = 0;
    for (size_t i = 0; aigw_plugins[i]; i++) {
        const aigw_field_t *cfg = aigw_plugins[i]->config;
        for (const aigw_field_t *f = cfg; f->name; f++) {
            if (!f->alias_of)
                continue;
            const aigw_field_t *t = field_path(cfg, f->alias_of);
            if (!t)
                fail_msg("%s.%s: alias target %s missing", aigw_plugins[i]->name, f->name,
                         f->alias_of);
            assert_int_equal(t->type, f->type);
            assert_null(t->alias_of);
            n++;
        }
    }
    assert_int_equal(n, 11);
    const aigw_field_t *rl = plugin("rate-limiting")->config;
    static const char *const shorthands[][2] = {
        {"redis_host", "redis.host"},         {"redis_port", "redis.port"},
        {"redis_password", "redis.password"}, {"redis_username", "redis.username"},
        {"redis_ssl", "redis.ssl"},           {"redis_ssl_verify", "redis.ssl_verify"},
        {"redis_server_name", "redis.server_name"}, {"redis_timeout", "redis.timeout"},
        {"redis_database", "redis.database"},
    };
    for (size_t i = 0; i < sizeof(shorthands) / sizeof(shorthands[0]); i++) {
        const aigw_field_t *f = field(rl, shorthands[i][0]);
        assert_non_null(f);
        assert_string_equal(f->alias_of, shorthands[i][1]);
        assert_false(f->flags & AIGW_F_INPUT_ONLY); /* shown on output, as Kong 3.9 */
    }
    const aigw_field_t *acl = plugin("acl")->config;
    assert_string_equal(field(acl, "whitelist")->alias_of, "allow");
    assert_string_equal(field(acl, "blacklist")->alias_of, "deny");
    assert_true(field(acl, "whitelist")->flags & AIGW_F_INPUT_ONLY);
    assert_true(field(acl, "blacklist")->flags & AIGW_F_INPUT_ONLY);
}

/* Exactly these fields split "a,b" in form bodies (reference/differences.md). */
static void test_split_commas(void **state)
{
    (void)state;
    static const char *const want[][2] = {
        {"acl", "allow"},
        {"acl", "deny"},
        {"acl", "whitelist"},
        {"acl", "blacklist"},
        {"oauth2", "scopes"},
        {"cors", "origins"},
        {"cors", "methods"},
        {"cors", "headers"},
        {"cors", "exposed_headers"},
        {"key-auth", "key_names"},
        {"jwt", "uri_param_names"},
        {"jwt", "cookie_names"},
        {"jwt", "header_names"},
        {"jwt", "claims_to_verify"},
        {"ip-restriction", "allow"},
        {"ip-restriction", "deny"},
    };
    size_t n = sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; i < n; i++) {
        const aigw_field_t *f = field(plugin(want[i][0])->config, want[i][1]);
        if (!f)
            fail_msg("%s.%s missing", want[i][0], want[i][1]);
        assert_true(f->flags & AIGW_F_SPLIT_COMMAS);
        assert_true(f->type == AIGW_FT_ARRAY || f->type == AIGW_FT_SET);
    }
    size_t total = 0;
    for (size_t i = 0; aigw_plugins[i]; i++)
        for (const aigw_field_t *f = aigw_plugins[i]->config; f->name; f++)
            total += (f->flags & AIGW_F_SPLIT_COMMAS) != 0;
    assert_int_equal(total, n);
}

static void test_plugin_flags(void **state)
{
    (void)state;
    static const char *const no_consumer[] = {"jwt", "key-auth", "basic-auth", "oauth2",
                                              "acl", "cors", NULL};
    static const char *const http_only[] = {
        "jwt", "key-auth", "basic-auth", "oauth2", "acl", "rate-limiting", "cors",
        "request-size-limiting", "request-termination", "correlation-id",
        "response-transformer", "ai-prompt-guard", NULL};
    for (size_t i = 0; aigw_plugins[i]; i++) {
        const aigw_plugin_schema_t *p = aigw_plugins[i];
        int nc = 0, ho = 0;
        for (size_t j = 0; no_consumer[j]; j++)
            nc |= strcmp(no_consumer[j], p->name) == 0;
        for (size_t j = 0; http_only[j]; j++)
            ho |= strcmp(http_only[j], p->name) == 0;
        if (!!(p->flags & AIGW_P_NO_CONSUMER) != nc)
            fail_msg("%s: no_consumer", p->name);
        if (!!(p->flags & AIGW_P_PROTOCOLS_HTTP) != ho)
            fail_msg("%s: protocols_http", p->name);
        assert_false(p->flags & (AIGW_P_NO_ROUTE | AIGW_P_NO_SERVICE));
        if (strcmp(p->name, "ip-restriction") != 0)
            assert_null(p->protocols);
    }
    const char *const *ipr = plugin("ip-restriction")->protocols;
    static const char *const want[] = {"http", "https", "tcp", "tls", "grpc", "grpcs"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(ipr[i], want[i]);
    assert_null(ipr[6]);
}

/* ---- typedef validators --------------------------------------------------------------------- */

/* Runs check on a JSON string value; NULL expected means it must pass. */
static void check_str(aigw_field_check_fn check, const char *value, const char *want)
{
    char msg[256] = "";
    json_t *v = json_string(value);
    int rc = check(v, msg, sizeof(msg));
    json_decref(v);
    if (!want) {
        if (rc != 0)
            fail_msg("'%s' rejected: %s", value, msg);
        return;
    }
    if (rc == 0)
        fail_msg("'%s' accepted, want '%s'", value, want);
    assert_string_equal(msg, want);
}

static void test_validators(void **state)
{
    (void)state;
    /* typedefs.host */
    check_str(aigw_plugins__check_host, "example.com", NULL);
    check_str(aigw_plugins__check_host, "redis", NULL);
    check_str(aigw_plugins__check_host, "127.0.0.1", NULL);
    check_str(aigw_plugins__check_host, "::1", NULL);
    check_str(aigw_plugins__check_host, "fe80::1:2", NULL);
    check_str(aigw_plugins__check_host, "example.com.", NULL);
    check_str(aigw_plugins__check_host, "example.com:6379", "must not have a port");
    check_str(aigw_plugins__check_host, "127.0.0.1:6379", "must not have a port");
    check_str(aigw_plugins__check_host, "[::1]:6379", "must not have a port");
    check_str(aigw_plugins__check_host, "example.com:99999", "must not have a port");
    check_str(aigw_plugins__check_host, "bad host", "invalid value: bad host");
    check_str(aigw_plugins__check_host, "300.1.1.1", "invalid value: 300.1.1.1");
    check_str(aigw_plugins__check_host, "a..b", "invalid value: a..b");
    check_str(aigw_plugins__check_host, "a-.b", "invalid value: a-.b");
    check_str(aigw_plugins__check_host, "1:2:3:4:5:6:7:8:9", "invalid value: 1:2:3:4:5:6:7:8:9");
    /* typedefs.sni */
    check_str(aigw_plugins__check_sni, "redis.example.test", NULL);
    check_str(aigw_plugins__check_sni, "10.0.0.1", "must not be an IP");
    check_str(aigw_plugins__check_sni, "x.test:443", "must not have a port");
    /* typedefs.url */
    check_str(aigw_plugins__check_url, "http://myservice.test/path", NULL);
    check_str(aigw_plugins__check_url, "http://bob:password@myservice.test/path", NULL);
    check_str(aigw_plugins__check_url, "https://[::1]:8443/x", NULL);
    check_str(aigw_plugins__check_url, "myservice.test/path", "missing host in url");
    check_str(aigw_plugins__check_url, "http://", "missing host in url");
    check_str(aigw_plugins__check_url, "http://bob@:80/", "missing host in url");
    check_str(aigw_plugins__check_url, "//myservice.test/path", "missing scheme in url");
    assert_true(aigw_plugins__url_has_userinfo("http://hi:there@myservice.test/path"));
    assert_false(aigw_plugins__url_has_userinfo("http://myservice.test/p@th"));
    /* typedefs.path (after starts_with) */
    check_str(aigw_plugins__check_path, "/request", NULL);
    check_str(aigw_plugins__check_path, "/a%20b", NULL);
    check_str(aigw_plugins__check_path, "/a//b", "must not have empty segments");
    check_str(aigw_plugins__check_path, "/a b",
           "invalid path: '/a b' (characters outside of the reserved list of RFC 3986 found)");
    check_str(aigw_plugins__check_path, "/a%zz", "invalid url-encoded value: '%zz'");
    check_str(aigw_plugins__check_path, "/a%2", "invalid url-encoded value: '%2'");
    check_str(aigw_plugins__check_path, "/a%%41", "invalid url-encoded value: '%__'");
    /* typedefs.ip_or_cidr (spec/03-plugins/17-ip-restriction/01-schema_spec.lua) */
    check_str(aigw_plugins__check_ip_or_cidr, "127.0.0.1/8", NULL);
    check_str(aigw_plugins__check_ip_or_cidr, "127.0.0.2/32", NULL);
    check_str(aigw_plugins__check_ip_or_cidr, "10.0.0.1", NULL);
    check_str(aigw_plugins__check_ip_or_cidr, "::/0", NULL);
    check_str(aigw_plugins__check_ip_or_cidr, "::/128", NULL);
    check_str(aigw_plugins__check_ip_or_cidr, "hello", "invalid ip or cidr range: 'hello'");
    static const char *const bad[] = {"0.0.0.0/a", "0.0.0.0/-1", "0.0.0.0/33", "::/a",
                                      "::/-1",     "::/129",     "::1/a",      "::1/-1",
                                      "::1/129",   "1.2.3.4/08", NULL};
    for (size_t i = 0; bad[i]; i++) {
        char want[96];
        snprintf(want, sizeof(want), "invalid ip or cidr range: '%s'", bad[i]);
        check_str(aigw_plugins__check_ip_or_cidr, bad[i], want);
    }
    /* header names (kong/tools/http.lua) */
    check_str(aigw_plugins__check_header_name, "X-App-Version", NULL);
    check_str(aigw_plugins__check_header_name, "api_key", NULL);
    check_str(aigw_plugins__check_header_name, "api key",
           "bad header name 'api key', allowed characters are A-Z, a-z, 0-9, '_', and '-'");
    check_str(aigw_plugins__check_http_method, "POST", NULL);
    check_str(aigw_plugins__check_http_method, "post", "invalid value: post");
}

/* Element and field checks that live in the plugin tables. */
static void test_plugin_field_checks(void **state)
{
    (void)state;
    /* cors origins (spec/03-plugins/13-cors/02-schema_spec.lua) */
    const aigw_field_t *origins = field(plugin("cors")->config, "origins");
    check_str(origins->elements->check, "*", NULL);
    check_str(origins->elements->check, "example.com", NULL);
    check_str(origins->elements->check, ".*\\.example(?:-foo)?\\.com", NULL);
    check_str(origins->elements->check, "invalid_**regex", "'invalid_**regex' is not a valid regex");
    /* file-log path */
    const aigw_field_t *path = field(plugin("file-log")->config, "path");
    check_str(path->check, "/tmp/file.log", NULL);
    check_str(path->check, "/tmp/f*le.log", "not a valid filename");
    check_str(path->check, "/tmp/`x`", "not a valid filename");
    /* request-transformer */
    const aigw_field_t *rt = plugin("request-transformer")->config;
    const aigw_field_t *add_body = field_path(rt, "add.body");
    check_str(add_body->elements->check, "name:value", NULL);
    check_str(add_body->elements->check, "name", "key 'name' has no value");
    check_str(add_body->elements->check, "name::", "key 'name' has no value");
    const aigw_field_t *rename_headers = field_path(rt, "rename.headers");
    check_str(rename_headers->elements->check, "x-old:x-new", NULL);
    check_str(rename_headers->elements->check, "x-old", "invalid value: x-old");
    check_str(rename_headers->elements->check, "x old:x-new", "'x old' is not a valid header");
    check_str(rename_headers->elements->check, "x-old:x new", "'x new' is not a valid header");
    check_str(field_path(rt, "remove.headers")->elements->check, "bad header",
           "'bad header' is not a valid header");
    check_str(field_path(rt, "add.headers")->elements->check, "x-foo:any value at all", NULL);
    assert_non_null(field_path(rt, "replace.uri"));
    /* response-transformer */
    const aigw_field_t *rs = plugin("response-transformer")->config;
    check_str(field_path(rs, "add.json")->elements->check, "k:v", NULL);
    check_str(field_path(rs, "add.json")->elements->check, "k", "invalid value: k");
    check_str(field_path(rs, "rename.headers")->elements->check, "a:b c", "'b c' is not a valid header");
    /* ai-prompt-guard lengths */
    const aigw_field_t *allow = field(plugin("ai-prompt-guard")->config, "allow_patterns");
    char big[502];
    memset(big, 'a', 501);
    big[501] = '\0';
    check_str(allow->elements->check, big, "length must be at most 500");
    big[500] = '\0';
    check_str(allow->elements->check, big, NULL);
    json_t *eleven = parse("[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\"]");
    char msg[128];
    assert_int_equal(allow->check(eleven, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "length must be at most 10");
    json_array_remove(eleven, 0);
    assert_int_equal(allow->check(eleven, msg, sizeof(msg)), 0);
    json_decref(eleven);
}

/* http-log header keys (spec/03-plugins/03-http-log/02-schema_spec.lua). */
static void expect_headers(const char *headers, const char *want)
{
    const aigw_field_t *f = field(plugin("http-log")->config, "headers");
    json_t *v = parse(headers);
    char msg[256] = "";
    int rc = f->check(v, msg, sizeof(msg));
    json_decref(v);
    if (!want) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, -1);
    assert_string_equal(msg, want);
}

static void test_http_log_headers(void **state)
{
    (void)state;
    expect_headers("{\"X-My-Header\":\"123\",\"X-Your-Header\":\"abc\"}", NULL);
    expect_headers("{\"X-My-Header\":\"123\",\"Host\":\"MyHost\"}", "cannot contain 'Host' header");
    expect_headers("{\"coNTEnt-Length\":\"123\"}", "cannot contain 'Content-Length' header");
    expect_headers("{\"coNTEnt-Type\":\"bad\"}", "cannot contain 'Content-Type' header");
    expect_headers("{\"bad header\":\"x\"}",
                   "bad header name 'bad header', allowed characters are A-Z, a-z, 0-9, '_', "
                   "and '-'");
}

/* ---- cross-field checks, called directly on a complete config ------------------------------- */

/* The config Kong validates: user values over the defaults, null where there is none, records
 * expanded; aliases are the engine's business and are not filled. */
static json_t *complete(const aigw_field_t *fields, const json_t *user)
{
    json_t *out = json_object();
    for (const aigw_field_t *f = fields; f->name; f++) {
        if (f->alias_of)
            continue;
        json_t *u = user ? json_object_get(user, f->name) : NULL;
        json_t *v;
        if (f->type == AIGW_FT_RECORD && (!u || json_is_object(u)))
            v = complete(f->fields, u);
        else if (u)
            v = json_incref(u);
        else if (f->dflt)
            v = parse(f->dflt);
        else
            v = json_null();
        json_object_set_new(out, f->name, v);
    }
    return out;
}

/* Runs the plugin's check on `config` (user JSON); compares the errors object (with
 * "@entity" folded in) to want, or expects success when want is NULL. */
static void cross_check(const char *name, const char *config, const char *want)
{
    const aigw_plugin_schema_t *p = plugin(name);
    json_t *user = parse(config);
    json_t *cfg = complete(p->config, user);
    json_t *entity_errors = json_array();
    json_t *field_errors = json_object();
    int rc = p->check ? p->check(NULL, cfg, entity_errors, field_errors) : 0;
    if (json_array_size(entity_errors))
        json_object_set(field_errors, "@entity", entity_errors);
    if (!want) {
        assert_json_eq(field_errors, "{}");
        assert_int_equal(rc, 0);
    } else {
        assert_json_eq(field_errors, want);
        assert_int_equal(rc, -1);
    }
    json_decref(entity_errors);
    json_decref(field_errors);
    json_decref(cfg);
    json_decref(user);
}

static void test_check_rate_limiting(void **state)
{
    (void)state;
    cross_check("rate-limiting", "{\"second\":10}", NULL);
    cross_check("rate-limiting", "{\"minute\":60,\"policy\":\"local\"}", NULL);
    cross_check("rate-limiting",
                 "{\"second\":10,\"minute\":20,\"hour\":30,\"day\":40,\"month\":50,\"year\":60}",
                 NULL);
    cross_check("rate-limiting",
                 "{\"second\":10,\"limit_by\":\"header\",\"header_name\":\"X-App-Version\"}",
                 NULL);
    cross_check("rate-limiting", "{}",
                 "{\"@entity\":[\"at least one of these fields must be non-empty: "
                 "'config.second', 'config.minute', 'config.hour', 'config.day', "
                 "'config.month', 'config.year'\"]}");
    cross_check("rate-limiting", "{\"second\":20,\"hour\":10}",
                 "{\"config\":\"The limit for hour(10.0) cannot be lower than the limit for "
                 "second(20.0)\"}");
    cross_check("rate-limiting",
                 "{\"second\":10,\"minute\":20,\"hour\":30,\"day\":40,\"month\":60,\"year\":50}",
                 "{\"config\":\"The limit for year(50.0) cannot be lower than the limit for "
                 "month(60.0)\"}");
    cross_check("rate-limiting", "{\"second\":10,\"limit_by\":\"header\"}",
                 "{\"config\":{\"header_name\":\"required field missing\"},"
                 "\"@entity\":[\"failed conditional validation given value of field "
                 "'config.limit_by'\"]}");
    cross_check("rate-limiting", "{\"second\":10,\"limit_by\":\"path\"}",
                 "{\"config\":{\"path\":\"required field missing\"},"
                 "\"@entity\":[\"failed conditional validation given value of field "
                 "'config.limit_by'\"]}");
    cross_check("rate-limiting", "{\"second\":10,\"policy\":\"redis\",\"redis\":{\"port\":6379}}",
                 "{\"config\":{\"redis\":{\"host\":\"required field missing\"}},"
                 "\"@entity\":[\"failed conditional validation given value of field "
                 "'config.policy'\"]}");
    cross_check("rate-limiting",
                 "{\"second\":10,\"policy\":\"redis\",\"redis\":{\"host\":\"localhost\"}}", NULL);
    cross_check("rate-limiting", "{\"second\":10,\"sync_rate\":1}",
                 "{\"config\":\"sync_rate can only be used with the redis policy\"}");
    cross_check("rate-limiting",
                 "{\"second\":10,\"sync_rate\":0.01,\"policy\":\"redis\","
                 "\"redis\":{\"host\":\"localhost\"}}",
                 "{\"config\":\"sync_rate must be greater than 0.02, or -1 to disable\"}");
}

static void test_check_acl(void **state)
{
    (void)state;
    cross_check("acl", "{\"allow\":[\"a\"]}", NULL);
    cross_check("acl", "{\"deny\":[\"a\"]}", NULL);
    cross_check("acl", "{\"allow\":[\"a\"],\"deny\":[\"b\"]}",
                 "{\"@entity\":[\"exactly one of these fields must be non-empty: "
                 "'config.allow', 'config.deny'\"]}");
    cross_check("acl", "{}",
                 "{\"@entity\":[\"exactly one of these fields must be non-empty: "
                 "'config.allow', 'config.deny'\",\"at least one of these fields must be "
                 "non-empty: 'config.allow', 'config.deny'\"]}");
    cross_check("acl", "{\"allow\":[],\"deny\":[]}",
                 "{\"@entity\":[\"exactly one of these fields must be non-empty: "
                 "'config.allow', 'config.deny'\",\"at least one of these fields must be "
                 "non-empty: 'config.allow', 'config.deny'\"]}");
}

static void test_check_auth(void **state)
{
    (void)state;
    /* oauth2 (spec/03-plugins/25-oauth2/01-schema_spec.lua) */
    cross_check("oauth2", "{\"enable_authorization_code\":true,\"mandatory_scope\":false}", NULL);
    cross_check("oauth2",
                 "{\"enable_authorization_code\":true,\"mandatory_scope\":true,"
                 "\"scopes\":[\"email\",\"info\"]}",
                 NULL);
    cross_check("oauth2", "{}",
                 "{\"config\":\"at least one of these fields must be true: "
                 "enable_authorization_code, enable_implicit_grant, enable_client_credentials, "
                 "enable_password_grant\"}");
    cross_check("oauth2", "{\"enable_authorization_code\":true,\"mandatory_scope\":true}",
                 "{\"config\":{\"scopes\":\"required field missing\",\"@entity\":[\"failed "
                 "conditional validation given value of field 'mandatory_scope'\"]}}");
    /* jwt (spec/03-plugins/16-jwt/06-schema_spec.lua) */
    cross_check("jwt", "{}", NULL);
    cross_check("jwt", "{\"maximum_expiration\":60,\"claims_to_verify\":[\"exp\",\"nbf\"]}",
                 NULL);
    cross_check("jwt", "{\"maximum_expiration\":60,\"claims_to_verify\":[\"nbf\"]}",
                 "{\"config\":{\"claims_to_verify\":\"expected to contain: exp\"},"
                 "\"@entity\":[\"failed conditional validation given value of field "
                 "'config.maximum_expiration'\"]}");
    cross_check("jwt", "{\"claims_to_verify\":[\"nbf\"]}", NULL);
    cross_check("key-auth", "{}", NULL);
    cross_check("basic-auth", "{}", NULL);
}

static void test_check_others(void **state)
{
    (void)state;
    cross_check("ip-restriction", "{\"allow\":[\"127.0.0.1/32\"]}", NULL);
    cross_check("ip-restriction", "{\"deny\":[\"127.0.0.2/32\"],\"allow\":[\"127.0.0.1/32\"]}",
                 NULL);
    cross_check("ip-restriction", "{\"deny\":[],\"allow\":[]}",
                 "{\"@entity\":[\"at least one of these fields must be non-empty: "
                 "'config.allow', 'config.deny'\"]}");
    /* request-termination (spec/03-plugins/14-request-termination/01-schema_spec.lua) */
    cross_check("request-termination", "{}", NULL);
    cross_check("request-termination", "{\"message\":\"error\",\"body\":\"test\"}",
                 "{\"config\":\"message cannot be used with content_type or body\"}");
    cross_check("request-termination", "{\"message\":\"error\",\"content_type\":\"text/html\"}",
                 "{\"config\":\"message cannot be used with content_type or body\"}");
    cross_check("request-termination", "{\"content_type\":\"text/html\"}",
                 "{\"config\":\"content_type requires a body\"}");
    cross_check("request-termination",
                 "{\"echo\":true,\"content_type\":\"text/html\",\"body\":\"<h1>x</h1>\"}",
                 "{\"config\":\"echo cannot be used with content_type and body\"}");
    cross_check("request-termination", "{\"content_type\":\"text/html\",\"body\":\"x\"}", NULL);
    /* http-log */
    cross_check("http-log", "{\"http_endpoint\":\"http://bob:password@myservice.test/path\"}",
                 NULL);
    cross_check("http-log",
                 "{\"http_endpoint\":\"http://hi:there@myservice.test/path\","
                 "\"headers\":{\"AuthoRIZATion\":\"bad\"}}",
                 "{\"config\":\"specifying both an 'Authorization' header and user info in "
                 "'http_endpoint' is not allowed\"}");
    cross_check("http-log",
                 "{\"http_endpoint\":\"http://myservice.test/path\","
                 "\"headers\":{\"Authorization\":\"ok\"}}",
                 NULL);
    /* ai-prompt-guard */
    cross_check("ai-prompt-guard", "{\"deny_patterns\":[\".*password.*\"]}", NULL);
    cross_check("ai-prompt-guard", "{}",
                 "{\"@entity\":[\"at least one of these fields must be non-empty: "
                 "'config.allow_patterns', 'config.deny_patterns'\"]}");
    cross_check("ai-prompt-guard",
                 "{\"allow_patterns\":[\"a\"],\"match_all_roles\":true,"
                 "\"allow_all_conversation_history\":true}",
                 "{\"config\":{\"allow_all_conversation_history\":\"value must be false\"},"
                 "\"@entity\":[\"failed conditional validation given value of field "
                 "'config.match_all_roles'\"]}");
    for (size_t i = 0; bundled[i]; i++) {
        const aigw_plugin_schema_t *p = plugin(bundled[i]);
        if (!p->check)
            cross_check(bundled[i], "{}", NULL);
    }
}

/* ---- through the engine --------------------------------------------------------------------- */

#ifdef HAVE_ENGINE
/* Validates {"name":name,"config":config} as POST /plugins would; returns the entity, or NULL
 * with *errors set. */
static json_t *validate_plugin(const char *name, const char *config, json_t **errors)
{
    const aigw_entity_t *e = aigw_schema_entity("plugins");
    assert_non_null(e);
    json_t *obj = json_pack("{s:s, s:o}", "name", name, "config", parse(config));
    *errors = NULL;
    if (aigw_schema_validate(e, obj, AIGW_V_INSERT, errors) != 0) {
        json_decref(obj);
        assert_non_null(*errors);
        return NULL;
    }
    assert_null(*errors);
    return obj;
}

static void test_engine_rate_limiting(void **state)
{
    (void)state;
    json_t *errors;
    json_t *obj = validate_plugin("rate-limiting", "{\"minute\":60,\"policy\":\"local\"}", &errors);
    assert_non_null(obj);
    assert_json_eq(json_object_get(obj, "config"),
                   "{\"second\":null,\"minute\":60,\"hour\":null,\"day\":null,\"month\":null,"
                   "\"year\":null,\"limit_by\":\"consumer\",\"header_name\":null,\"path\":null,"
                   "\"policy\":\"local\",\"fault_tolerant\":true,"
                   "\"redis\":{\"host\":null,\"port\":6379,\"timeout\":2000,\"username\":null,"
                   "\"password\":null,\"database\":0,\"ssl\":false,\"ssl_verify\":false,"
                   "\"server_name\":null},"
                   "\"hide_client_headers\":false,\"error_code\":429,"
                   "\"error_message\":\"API rate limit exceeded\",\"sync_rate\":-1}");
    /* GET shows the deprecated shorthands with their targets' values (Kong 3.9). */
    json_t *out = aigw_schema_output(aigw_schema_entity("plugins"), obj);
    json_t *cfg = json_object_get(out, "config");
    assert_json_eq(json_object_get(cfg, "redis_port"), "6379");
    assert_json_eq(json_object_get(cfg, "redis_timeout"), "2000");
    assert_json_eq(json_object_get(cfg, "redis_host"), "null");
    json_decref(out);
    json_decref(obj);

    obj = validate_plugin("rate-limiting", "{}", &errors);
    assert_null(obj);
    assert_json_eq(errors, "{\"@entity\":[\"at least one of these fields must be non-empty: "
                           "'config.second', 'config.minute', 'config.hour', 'config.day', "
                           "'config.month', 'config.year'\"]}");
    json_decref(errors);

    /* The deprecated shorthands land in redis.* and are not stored themselves. */
    obj = validate_plugin("rate-limiting",
                          "{\"second\":5,\"policy\":\"redis\",\"redis_host\":\"localhost\","
                          "\"redis_port\":6380,\"redis_timeout\":1100}",
                          &errors);
    assert_non_null(obj);
    cfg = json_object_get(obj, "config");
    assert_json_eq(json_object_get(json_object_get(cfg, "redis"), "host"), "\"localhost\"");
    assert_json_eq(json_object_get(json_object_get(cfg, "redis"), "port"), "6380");
    assert_json_eq(json_object_get(json_object_get(cfg, "redis"), "timeout"), "1100");
    assert_null(json_object_get(cfg, "redis_host"));
    json_decref(obj);
}

static void test_engine_acl_whitelist(void **state)
{
    (void)state;
    json_t *errors;
    json_t *obj = validate_plugin("acl", "{\"whitelist\":[\"a\",\"b\"]}", &errors);
    assert_non_null(obj);
    assert_json_eq(json_object_get(obj, "config"),
                   "{\"allow\":[\"a\",\"b\"],\"deny\":null,\"hide_groups_header\":false,"
                   "\"always_use_authenticated_groups\":false}");
    json_t *out = aigw_schema_output(aigw_schema_entity("plugins"), obj);
    assert_null(json_object_get(json_object_get(out, "config"), "whitelist"));
    json_decref(out);
    json_decref(obj);
}

static void test_engine_jwt_defaults(void **state)
{
    (void)state;
    json_t *errors;
    json_t *obj = validate_plugin("jwt", "{}", &errors);
    assert_non_null(obj);
    assert_json_eq(json_object_get(obj, "config"),
                   "{\"uri_param_names\":[\"jwt\"],\"cookie_names\":[],\"key_claim_name\":\"iss\","
                   "\"secret_is_base64\":false,\"claims_to_verify\":null,\"anonymous\":null,"
                   "\"run_on_preflight\":true,\"maximum_expiration\":0,"
                   "\"header_names\":[\"authorization\"],\"realm\":null,"
                   "\"consumer_fallback\":true}");
    json_decref(obj);
}
#else
static void test_engine_missing(void **state)
{
    (void)state;
    print_message("schema/validate.c not present yet: engine tests skipped\n");
    skip();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_sorted),
        cmocka_unit_test(test_every_plugin_exists),
        cmocka_unit_test(test_priorities),
        cmocka_unit_test(test_defaults_valid),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_split_commas),
        cmocka_unit_test(test_plugin_flags),
        cmocka_unit_test(test_validators),
        cmocka_unit_test(test_plugin_field_checks),
        cmocka_unit_test(test_http_log_headers),
        cmocka_unit_test(test_check_rate_limiting),
        cmocka_unit_test(test_check_acl),
        cmocka_unit_test(test_check_auth),
        cmocka_unit_test(test_check_others),
    };
    int failed = cmocka_run_group_tests_name("plugin schemas", tests, NULL, NULL);
#ifdef HAVE_ENGINE
    const struct CMUnitTest engine[] = {
        cmocka_unit_test(test_engine_rate_limiting),
        cmocka_unit_test(test_engine_acl_whitelist),
        cmocka_unit_test(test_engine_jwt_defaults),
    };
#else
    const struct CMUnitTest engine[] = {
        cmocka_unit_test(test_engine_missing),
    };
#endif
    failed += cmocka_run_group_tests_name("plugin configs through the engine", engine, NULL, NULL);
    return failed;
}
