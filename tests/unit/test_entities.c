/* tests/unit/test_entities.c: the entity tables (aigwd/schema/entities.c) and their validators,
 * shorthands and entity checks (aigwd/schema/entity_checks.c), against Kong 3.9's messages.
 *
 * Three groups: the checks called directly; the tables' sanity (keys, references, defaults,
 * paths); and whole entities through aigw_schema_validate, i.e. what a user of the admin API
 * sees in `fields` and `message`. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "schema/entity_checks.h"
#include "schema/schema.h"

/* A uuid for foreign keys in the JSON texts below. */
#define U1 "7b4c9f9a-7d39-4d19-9c2b-4fb6f6a1f3a5"

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *J(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, err.text);
    return v;
}

/* Compact, key-sorted JSON text of v (static buffer, valid until the next call). */
static const char *dump(const json_t *v)
{
    static char buf[8192];
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
    free(s);
    return buf;
}

static void assert_json(const json_t *v, const char *expected)
{
    json_t *e = J(expected);
    char *a = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *b = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(e);
}

typedef int (*check_fn)(const json_t *, char *, size_t);

/* Runs a field check on a string: NULL when it passes, else its message (static buffer). */
static const char *chk(check_fn fn, const char *s)
{
    static char msg[1024];
    json_t *v = json_string(s);
    assert_non_null(v);
    msg[0] = '\0';
    int rc = fn(v, msg, sizeof(msg));
    json_decref(v);
    return rc == 0 ? NULL : msg;
}

static const char *chk_json(check_fn fn, const char *text)
{
    static char msg[1024];
    json_t *v = J(text);
    msg[0] = '\0';
    int rc = fn(v, msg, sizeof(msg));
    json_decref(v);
    return rc == 0 ? NULL : msg;
}

#define assert_ok(expr) assert_null(expr)
#define assert_msg(expr, m)                   \
    do {                                      \
        const char *got_ = (expr);            \
        assert_non_null(got_);                \
        assert_string_equal(got_, (m));       \
    } while (0)

static const aigw_entity_t *E(const char *name)
{
    const aigw_entity_t *e = aigw_schema_entity(name);
    assert_non_null(e);
    return e;
}

/* Runs an entity check on obj; returns {"@entity":[...], field errors...} or NULL. */
static json_t *echeck(const char *entity, const char *text)
{
    const aigw_entity_t *e = E(entity);
    assert_non_null(e->check);
    json_t *obj = J(text);
    json_t *ent = json_array(), *fields = json_object();
    int rc = e->check(e, obj, ent, fields);
    json_decref(obj);
    if (json_array_size(ent) > 0)
        json_object_set(fields, "@entity", ent);
    json_decref(ent);
    if (rc == 0) {
        assert_int_equal(json_object_size(fields), 0);
        json_decref(fields);
        return NULL;
    }
    assert_true(json_object_size(fields) > 0);
    return fields;
}

static void assert_echeck(const char *entity, const char *obj, const char *expected)
{
    json_t *errs = echeck(entity, obj);
    if (!expected) {
        assert_null(errs);
        return;
    }
    assert_non_null(errs);
    assert_json(errs, expected);
    json_decref(errs);
}

/* ---- certificates made on the fly ---------------------------------------------------------- */

typedef struct {
    char *cert, *key, *pub;
} pem_t;

static char *bio_string(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

enum { K_EC = 0, K_ED25519 = 1 };

static pem_t make_cert(int kind, int ca, long valid_for)
{
    static long serial = 1;
    pem_t out;
    EVP_PKEY *pk = kind == K_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                     : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(pk);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3 * 86400L);
    X509_gmtime_adj(X509_getm_notAfter(x), valid_for);
    X509_set_pubkey(x, pk);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"aigw-test", -1, -1, 0);
    X509_set_issuer_name(x, nm);
    if (ca) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, pk, kind == K_ED25519 ? NULL : EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    out.cert = bio_string(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
    out.key = bio_string(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, pk);
    out.pub = bio_string(b);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(pk);
    return out;
}

static void pem_free(pem_t *p)
{
    free(p->cert);
    free(p->key);
    free(p->pub);
}

/* {"cert": ..., "key": ...} as a JSON object (owned). */
static json_t *cert_obj(const char *cert, const char *key, const char *cert_alt,
                        const char *key_alt)
{
    json_t *o = json_object();
    json_object_set_new(o, "cert", json_string(cert));
    json_object_set_new(o, "key", json_string(key));
    json_object_set_new(o, "cert_alt", cert_alt ? json_string(cert_alt) : json_null());
    json_object_set_new(o, "key_alt", key_alt ? json_string(key_alt) : json_null());
    return o;
}

static json_t *run_echeck_obj(const char *entity, json_t *obj)
{
    const aigw_entity_t *e = E(entity);
    json_t *ent = json_array(), *fields = json_object();
    int rc = e->check(e, obj, ent, fields);
    if (json_array_size(ent) > 0)
        json_object_set(fields, "@entity", ent);
    json_decref(ent);
    if (rc == 0) {
        json_decref(fields);
        return NULL;
    }
    return fields;
}

/* ================================================================================================
 * Group 1: the checks and shorthands, called directly
 * ============================================================================================== */

static void url_shorthand(void **state)
{
    (void)state;
    json_t *o, *errs = json_object();

    /* admin-api.md: http://ai-orchestrator:5000 -> http, ai-orchestrator, 5000, null */
    o = J("{\"name\":\"x\",\"url\":\"http://ai-orchestrator:5000\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"name\":\"x\",\"protocol\":\"http\",\"host\":\"ai-orchestrator\","
                   "\"port\":5000,\"path\":null}");
    json_decref(o);

    /* https://x.test/ -> https, x.test, 443, "/" */
    o = J("{\"url\":\"https://x.test/\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"protocol\":\"https\",\"host\":\"x.test\",\"port\":443,\"path\":\"/\"}");
    json_decref(o);

    /* url overrides explicit fields; query, fragment, userinfo and params are dropped */
    o = J("{\"host\":\"other\",\"port\":1,\"url\":\"http://u:p@h.test:8080/a/b;x?q=1#f\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"protocol\":\"http\",\"host\":\"h.test\",\"port\":8080,\"path\":\"/a/b\"}");
    json_decref(o);

    /* "invalid url": no scheme, no host, the whole text is the path */
    o = J("{\"url\":\"invalid url\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"protocol\":\"http\",\"host\":null,\"port\":80,\"path\":\"invalid url\"}");
    json_decref(o);

    /* a port of 443 without a scheme means https; a non-numeric port stays a string */
    o = J("{\"url\":\"//h.test:443\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"protocol\":\"https\",\"host\":\"h.test\",\"port\":443,\"path\":null}");
    json_decref(o);
    o = J("{\"url\":\"http://h.test:abc\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"protocol\":\"http\",\"host\":\"h.test\",\"port\":\"abc\",\"path\":null}");
    json_decref(o);
    /* other schemes default to port 80 */
    o = J("{\"url\":\"grpcs://h.test\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"protocol\":\"grpcs\",\"host\":\"h.test\",\"port\":80,\"path\":null}");
    json_decref(o);

    /* no url: untouched */
    o = J("{\"host\":\"a\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), 0);
    assert_json(o, "{\"host\":\"a\"}");
    json_decref(o);
    assert_int_equal(json_object_size(errs), 0);

    /* a url that is not a string */
    o = J("{\"url\":5}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), -1);
    assert_json(errs, "{\"url\":\"expected a string\"}");
    json_decref(o);
    json_object_clear(errs);
    o = J("{\"url\":\"\"}");
    assert_int_equal(aigw_schema_shorthand_service(o, errs), -1);
    assert_json(errs, "{\"url\":\"length must be at least 1\"}");
    json_decref(o);
    json_decref(errs);
}

static void url_parse(void **state)
{
    (void)state;
    aigw_url_parts_t u;
    assert_int_equal(aigw_schema_url_parse("", &u), -1);
    assert_int_equal(aigw_schema_url_parse("https://user@h.test:8443/p?q#frag", &u), 0);
    assert_int_equal(u.scheme_n, 5);
    assert_memory_equal(u.scheme, "https", 5);
    assert_int_equal(u.host_n, 6);
    assert_memory_equal(u.host, "h.test", 6);
    assert_int_equal(u.port_n, 4);
    assert_memory_equal(u.port, "8443", 4);
    assert_int_equal(u.path_n, 2);
    assert_memory_equal(u.path, "/p", 2);
    assert_int_equal(u.fragment_n, 4);
    assert_memory_equal(u.fragment, "frag", 4);
    assert_int_equal(aigw_schema_url_parse("not-valid", &u), 0);
    assert_null(u.scheme);
    assert_null(u.host);
    assert_int_equal(u.path_n, 9);
    /* an empty fragment still counts as a fragment */
    assert_int_equal(aigw_schema_url_parse("https://h/#", &u), 0);
    assert_non_null(u.fragment);
    assert_int_equal(u.fragment_n, 0);
}

static void hosts(void **state)
{
    (void)state;
    /* typedefs.host */
    assert_ok(chk(aigw_schema_check_host, "example.com"));
    assert_ok(chk(aigw_schema_check_host, "ai-orchestrator"));
    assert_ok(chk(aigw_schema_check_host, "10.0.0.1"));
    assert_ok(chk(aigw_schema_check_host, "::1"));
    assert_ok(chk(aigw_schema_check_host, "example.com."));
    assert_msg(chk(aigw_schema_check_host, "example.com:80"), "must not have a port");
    assert_msg(chk(aigw_schema_check_host, "[::1]:80"), "must not have a port");
    assert_msg(chk(aigw_schema_check_host, "example.com:99999"), "must not have a port");
    assert_msg(chk(aigw_schema_check_host, "exa mple"), "invalid value: exa mple");
    assert_msg(chk(aigw_schema_check_host, "a..b"), "invalid value: a..b");
    assert_msg(chk(aigw_schema_check_host, "a-.b"), "invalid value: a-.b");
    assert_msg(chk(aigw_schema_check_host, "300.1.1.1"), "invalid value: 300.1.1.1");
    /* host_with_optional_port reports kong.tools.ip's reason */
    assert_ok(chk(aigw_schema_check_host_port, "example.com:8080"));
    assert_msg(chk(aigw_schema_check_host_port, "a b"), "invalid hostname: a b");
    assert_msg(chk(aigw_schema_check_host_port, "1.2.3.4:70000"), "invalid port number");
    /* typedefs.sni */
    assert_ok(chk(aigw_schema_check_sni, "example.com"));
    assert_msg(chk(aigw_schema_check_sni, "1.2.3.4"), "must not be an IP");
    assert_msg(chk(aigw_schema_check_sni, "example.com:443"), "must not have a port");
    /* typedefs.wildcard_host */
    assert_ok(chk(aigw_schema_check_wildcard_host, "*.example.com"));
    assert_ok(chk(aigw_schema_check_wildcard_host, "example.*"));
    assert_msg(chk(aigw_schema_check_wildcard_host, "a.*.com"),
               "wildcard must be leftmost or rightmost character");
    assert_msg(chk(aigw_schema_check_wildcard_host, "*.example.*"), "only one wildcard must be specified");
    assert_msg(chk(aigw_schema_check_wildcard_host, "*.x y"), "invalid value: wildcard.x y");
    assert_msg(chk(aigw_schema_check_wildcard_host, "1.2.3.4"), "must not be an IP");
    /* routes.hosts elements */
    assert_ok(chk(aigw_schema_check_route_host, "*.example.com"));
    assert_ok(chk(aigw_schema_check_route_host, "example.*"));
    assert_ok(chk(aigw_schema_check_route_host, "example.com:8000"));
    assert_msg(chk(aigw_schema_check_route_host, "*.*.com"),
               "invalid wildcard: must have at most one wildcard");
    assert_msg(chk(aigw_schema_check_route_host, "ex*ample.com"),
               "invalid wildcard: must be placed at leftmost or rightmost label");
    assert_msg(chk(aigw_schema_check_route_host, "*.ex ample"), "invalid hostname: abc.ex ample");
    /* upstream names */
    assert_ok(chk(aigw_schema_check_upstream_name, "my-upstream"));
    assert_msg(chk(aigw_schema_check_upstream_name, "1.2.3.4"),
               "Invalid name ('1.2.3.4'); no ip addresses allowed");
    assert_msg(chk(aigw_schema_check_upstream_name, "up:80"), "Invalid name ('up:80'); no port allowed");
    assert_msg(chk(aigw_schema_check_upstream_name, "a b"), "Invalid name ('a b'); must be a valid hostname");
}

static void normalize_host(void **state)
{
    (void)state;
    aigw_norm_host_t h;
    char err[128];
    assert_int_equal(aigw_schema_normalize_host("001.002.003.004:123", &h, err, sizeof(err)), 0);
    assert_int_equal(h.type, 4);
    assert_string_equal(h.host, "1.2.3.4");
    assert_int_equal(h.port, 123);
    assert_int_equal(aigw_schema_normalize_host("::1", &h, err, sizeof(err)), 0);
    assert_int_equal(h.type, 6);
    assert_string_equal(h.host, "0000:0000:0000:0000:0000:0000:0000:0001");
    assert_int_equal(h.port, -1);
    assert_int_equal(aigw_schema_normalize_host("[FE80::A:1]:8080", &h, err, sizeof(err)), 0);
    assert_string_equal(h.host, "fe80:0000:0000:0000:0000:0000:000a:0001");
    assert_int_equal(h.port, 8080);
    assert_int_equal(aigw_schema_normalize_host("some::thing", &h, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid ipv6 address: some::thing");
    assert_int_equal(aigw_schema_normalize_host("1.2.3", &h, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid ipv4 address: 1.2.3");
    assert_int_equal(aigw_schema_normalize_host("name_x.test:80", &h, err, sizeof(err)), 0);
    assert_int_equal(h.type, 0);
    assert_string_equal(h.host, "name_x.test");
}

static void targets_format(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "1.2.3.4", "1.2.3.4:8000" },
        { "001.002.003.004:81", "1.2.3.4:81" },
        { "example.com", "example.com:8000" },
        { "example.com:9000", "example.com:9000" },
        { "::1", "[0000:0000:0000:0000:0000:0000:0000:0001]:8000" },
        { "[::1]:9000", "[0000:0000:0000:0000:0000:0000:0000:0001]:9000" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *f = aigw_schema_format_target(cases[i][0]);
        assert_non_null(f);
        assert_string_equal(f, cases[i][1]);
        free(f);
    }
    assert_null(aigw_schema_format_target("not a host"));
    assert_msg(chk(aigw_schema_check_target, "not a host"),
               "Invalid target; not a valid hostname or ip address");
    assert_ok(chk(aigw_schema_check_target, "example.com:1"));

    json_t *o = J("{\"target\":\"10.0.0.1\",\"weight\":5}"), *errs = json_object();
    assert_int_equal(aigw_schema_shorthand_target(o, errs), 0);
    assert_json(o, "{\"target\":\"10.0.0.1:8000\",\"weight\":5}");
    json_decref(o);
    o = J("{\"target\":\"bad host\"}");
    assert_int_equal(aigw_schema_shorthand_target(o, errs), 0);
    assert_json(o, "{\"target\":\"bad host\"}");
    json_decref(o);
    assert_int_equal(json_object_size(errs), 0);
    json_decref(errs);
}

/* The host lists of Kong's spec/01-unit/01-db/01-schema/05-services_spec.lua and 06-routes. */
static void kong_host_lists(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "/example", ".example", "example:", "mock;bin", "example.com/org", "example-.org",
        "example.org-", "hello..example.com", "hello-.example.com", NULL,
    };
    static const char *const invalid_service_only[] = { "*example.com", "www.example*",
                                                        "mock*bin.com", NULL };
    static const char *const valid[] = {
        "hello.com", "hello.fr", "test.hello.com", "1991.io", "hello.COM", "HELLO.com",
        "123helloWORLD.com", "example.123", "example-api.com", "hello.abcd", "example_api.com",
        "localhost", "example.test.", "3B-ww4c5e180e575a65lsy2b",
        "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n", "Hello-Another-Way--fc4qua05auwb3674vfr0b",
        "2-u9tlzr9756bt3uc0v", "MajiKoi5-783gue6qz075azm5e", "de-jg4avhby1noc0d",
        "d9juau41awczczp", NULL,
    };
    char want[256];
    for (const char *const *h = invalid; *h; h++) {
        snprintf(want, sizeof(want), "invalid value: %s", *h);
        assert_msg(chk(aigw_schema_check_host, *h), want);
        snprintf(want, sizeof(want), "invalid hostname: %s", *h);
        assert_msg(chk(aigw_schema_check_route_host, *h), want);
        /* upstreams.healthchecks.active.https_sni is typedefs.sni */
        snprintf(want, sizeof(want), "invalid value: %s", *h);
        assert_msg(chk(aigw_schema_check_sni, *h), want);
    }
    for (const char *const *h = invalid_service_only; *h; h++) {
        snprintf(want, sizeof(want), "invalid value: %s", *h);
        assert_msg(chk(aigw_schema_check_host, *h), want);
        assert_msg(chk(aigw_schema_check_route_host, *h),
                   "invalid wildcard: must be placed at leftmost or rightmost label");
    }
    for (const char *const *h = valid; *h; h++) {
        assert_ok(chk(aigw_schema_check_host, *h));
        assert_ok(chk(aigw_schema_check_route_host, *h));
    }
    assert_msg(chk(aigw_schema_check_route_host, "example.com:1000000"), "invalid port number");
    assert_msg(chk(aigw_schema_check_host, "example.com:1000000"), "must not have a port");
    static const char *const stars[] = { "*.example.*", "**.example.com", "*.example*.*", NULL };
    for (const char *const *h = stars; *h; h++)
        assert_msg(chk(aigw_schema_check_route_host, *h),
                   "invalid wildcard: must have at most one wildcard");
    assert_msg(chk(aigw_schema_check_sni, "127.0.0.1:8080"), "must not be an IP");
    assert_msg(chk(aigw_schema_check_sni, "example.com:1234"), "must not have a port");
    assert_msg(chk(aigw_schema_check_host_port, "http://ahostname.test"),
               "invalid hostname: http://ahostname.test");
    assert_msg(chk(aigw_schema_check_host_port, "ahostname-"), "invalid hostname: ahostname-");
    assert_msg(chk(aigw_schema_check_upstream_name, "\\\\bad\\\\////name////"),
               "Invalid name ('\\\\bad\\\\////name////'); must be a valid hostname");
    assert_msg(chk(aigw_schema_check_upstream_name, "123.123.123.123"),
               "Invalid name ('123.123.123.123'); no ip addresses allowed");
    assert_msg(chk(aigw_schema_check_upstream_name, "name:80"), "Invalid name ('name:80'); no port allowed");
}

/* The path lists of 05-services_spec.lua. */
static void kong_path_lists(void **state)
{
    (void)state;
    static const char *const pct[][2] = {
        { "/some%2words", "%2w" },   { "/some%0Xwords", "%0X" },    { "/some%2Gwords", "%2G" },
        { "/some%20words%", "%" },   { "/some%20words%a", "%a" },   { "/some%20words%ax", "%ax" },
    };
    char want[128];
    for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++) {
        snprintf(want, sizeof(want), "invalid url-encoded value: '%s'", pct[i][1]);
        assert_msg(chk(aigw_schema_check_path, pct[i][0]), want);
        assert_msg(chk(aigw_schema_check_router_path, pct[i][0]), want);
    }
    static const char *const empty_seg[] = { "/foo//bar", "/foo/bar//", "//foo/bar", NULL };
    for (const char *const *p = empty_seg; *p; p++) {
        assert_msg(chk(aigw_schema_check_path, *p), "must not have empty segments");
        assert_msg(chk(aigw_schema_check_router_path, *p), "must not have empty segments");
    }
    assert_msg(chk(aigw_schema_check_path, "/users/|foo/profile"),
               "invalid path: '/users/|foo/profile' (characters outside of the reserved list of "
               "RFC 3986 found)");
    assert_ok(chk(aigw_schema_check_path, "/hello/path$with$!&'()*+,;=stuff"));
    assert_ok(chk(aigw_schema_check_path, "/abcd~user~2"));
    assert_ok(chk(aigw_schema_check_path, "/abcd%aa%10%ff%AA%FF"));
    assert_ok(chk(aigw_schema_check_path, "/ovo/"));
    assert_msg(chk(aigw_schema_check_router_path, "~/users/(foo/profile"),
               "invalid regex: '/users/(foo/profile' (PCRE returned: pcre2_compile() failed: "
               "missing closing parenthesis in \"/users/(foo/profile\")");
}

static void paths(void **state)
{
    (void)state;
    /* typedefs.path (services.path) */
    assert_ok(chk(aigw_schema_check_path, "/"));
    assert_ok(chk(aigw_schema_check_path, "/api/v1/a%2Fb;x=1"));
    assert_msg(chk(aigw_schema_check_path, "api"), "should start with: /");
    assert_msg(chk(aigw_schema_check_path, "/a//b"), "must not have empty segments");
    assert_msg(chk(aigw_schema_check_path, "/a b"),
               "invalid path: '/a b' (characters outside of the reserved list of RFC 3986 found)");
    assert_msg(chk(aigw_schema_check_path, "/a%zz"), "invalid url-encoded value: '%zz'");
    assert_msg(chk(aigw_schema_check_path, "/a%4"), "invalid url-encoded value: '%4'");

    /* typedefs.router_path (routes.paths) */
    assert_ok(chk(aigw_schema_check_router_path, "/a"));
    assert_ok(chk(aigw_schema_check_router_path, "/ai/v1/"));
    assert_ok(chk(aigw_schema_check_router_path, "~/v1/(?<version>[a-z]+)$"));
    assert_msg(chk(aigw_schema_check_router_path, "a"),
               "should start with: / (fixed path) or ~/ (regex path)");
    assert_msg(chk(aigw_schema_check_router_path, "/a//b"), "must not have empty segments");
    assert_msg(chk(aigw_schema_check_router_path, "/a/../b"),
               "non-normalized path, consider use '/b' instead");
    assert_msg(chk(aigw_schema_check_router_path, "/%41bc"),
               "non-normalized path, consider use '/Abc' instead");
    assert_msg(chk(aigw_schema_check_router_path, "/a%zz"), "invalid url-encoded value: '%zz'");
    /* only percent errors of typedefs.path apply to routes */
    assert_ok(chk(aigw_schema_check_router_path, "/a b"));
    const char *m = chk(aigw_schema_check_router_path, "~/a(");
    assert_non_null(m);
    assert_true(strncmp(m, "invalid regex: '/a(' (PCRE returned: ", 37) == 0);

    static const char *const norm[][2] = {
        { "/", "/" },
        { "/a/./b", "/a/b" },
        { "/a/b/../c", "/a/c" },
        { "/a//b", "/a/b" },
        { "/%7euser/%2f", "/~user/%2F" },
        { "/a/..", "/" },
        { "/..", "/" },
    };
    for (size_t i = 0; i < sizeof(norm) / sizeof(norm[0]); i++) {
        char *n = aigw_schema_normalize_path(norm[i][0]);
        assert_non_null(n);
        assert_string_equal(n, norm[i][1]);
        free(n);
    }
}

static void names_tags_headers(void **state)
{
    (void)state;
    assert_ok(chk(aigw_schema_check_tag, "team a"));
    assert_ok(chk(aigw_schema_check_tag, "équipe"));
    assert_msg(chk(aigw_schema_check_tag, "a,b"),
               "invalid tag 'a,b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences");
    assert_msg(chk(aigw_schema_check_tag, "a/b"),
               "invalid tag 'a/b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences");

    assert_ok(chk(aigw_schema_check_http_method, "GET"));
    assert_msg(chk(aigw_schema_check_http_method, "get"), "invalid value: get");

    assert_ok(chk(aigw_schema_check_header_name, "X-Foo_1"));
    assert_msg(chk(aigw_schema_check_header_name, "X Foo"),
               "bad header name 'X Foo', allowed characters are A-Z, a-z, 0-9, '_', and '-'");
    assert_ok(chk_json(aigw_schema_check_route_headers, "{\"x-version\":[\"1\"]}"));
    assert_msg(chk_json(aigw_schema_check_route_headers, "{\"Host\":[\"a\"]}"),
               "cannot contain 'host' header, which must be specified in the 'hosts' attribute");
    assert_ok(chk_json(aigw_schema_check_headers, "{\"Host\":[\"a\"]}"));
    assert_msg(chk_json(aigw_schema_check_headers, "{\"a:b\":[\"a\"]}"),
               "bad header name 'a:b', allowed characters are A-Z, a-z, 0-9, '_', and '-'");

    assert_ok(chk(aigw_schema_check_cookie_name, "session_id"));
    assert_msg(chk(aigw_schema_check_cookie_name, "a=b"),
               "contains one or more invalid characters. ASCII control characters (0-31;127), "
               "space, tab and the characters ()<>@,;:\\\"/?={}[] are not allowed.");

    assert_ok(chk(aigw_schema_check_ip, "10.1.2.3"));
    assert_ok(chk(aigw_schema_check_ip, "::1"));
    assert_msg(chk(aigw_schema_check_ip, "10.1.2"), "not an ip address: 10.1.2");
    assert_ok(chk(aigw_schema_check_ip_or_cidr, "10.0.0.0/8"));
    assert_ok(chk(aigw_schema_check_ip_or_cidr, "fe80::/10"));
    assert_msg(chk(aigw_schema_check_ip_or_cidr, "10.0.0.0/33"), "invalid ip or cidr range: '10.0.0.0/33'");
    assert_msg(chk(aigw_schema_check_ip_or_cidr, "10.0.0.0/08"), "invalid ip or cidr range: '10.0.0.0/08'");
    assert_ok(chk(aigw_schema_check_ip_or_cidr_v4, "10.0.0.0/8"));
    assert_msg(chk(aigw_schema_check_ip_or_cidr_v4, "::1"), "invalid ipv4 cidr range: '::1'");
    assert_ok(chk_json(aigw_schema_check_ip_port_record, "{\"ip\":null,\"port\":80}"));
    assert_msg(chk_json(aigw_schema_check_ip_port_record, "{\"ip\":null,\"port\":null}"),
               "at least one of these fields must be non-empty: 'ip', 'port'");

    assert_ok(chk(aigw_schema_check_url, "http://logs.test:9000/x"));
    assert_msg(chk(aigw_schema_check_url, "logs.test"), "missing host in url");
    assert_msg(chk(aigw_schema_check_url, "//logs.test"), "missing scheme in url");

    assert_ok(chk(aigw_schema_check_redirect_uri, "https://app.test/cb"));
    assert_msg(chk(aigw_schema_check_redirect_uri, "not-valid"), "cannot parse 'not-valid'");
    assert_msg(chk(aigw_schema_check_redirect_uri, "https://app.test/cb#x"),
               "fragment not allowed in 'https://app.test/cb#x'");

    /* bytes jansson would refuse on input, as a form decoder might still produce them */
    json_t *bad = json_stringn_nocheck("ab\xff", 3);
    char bm[256];
    assert_int_equal(aigw_schema_check_tag(bad, bm, sizeof(bm)), -1);
    assert_string_equal(bm, "invalid utf-8 character sequence detected at position 3");
    assert_int_equal(aigw_schema_check_upstream_name(bad, bm, sizeof(bm)), -1);
    assert_string_equal(bm, "Invalid name; must be a valid hostname");
    json_decref(bad);

    /* a value of another type is the engine's business */
    assert_ok(chk_json(aigw_schema_check_host, "5"));
    assert_ok(chk_json(aigw_schema_check_tag, "null"));
}

static void route_protocols(void **state)
{
    (void)state;
    assert_ok(chk_json(aigw_schema_check_route_protocols, "[\"http\",\"https\"]"));
    assert_ok(chk_json(aigw_schema_check_route_protocols, "[\"tcp\",\"udp\"]"));
    assert_msg(chk_json(aigw_schema_check_route_protocols, "[\"http\",\"tcp\",\"https\"]"),
               "these sets are mutually exclusive: ('http', 'https'), ('tcp', 'tls', 'udp')");
    assert_msg(chk_json(aigw_schema_check_route_protocols, "[\"grpc\",\"tls_passthrough\"]"),
               "these sets are mutually exclusive: ('grpc', 'grpcs'), ('tls_passthrough')");

    json_t *o = J("{\"protocols\":[\"grpc\"]}"), *errs = json_object();
    assert_int_equal(aigw_schema_shorthand_route(o, errs), 0);
    assert_json(o, "{\"protocols\":[\"grpc\"],\"strip_path\":false}");
    json_decref(o);
    o = J("{\"protocols\":[\"grpcs\"],\"strip_path\":true}");
    assert_int_equal(aigw_schema_shorthand_route(o, errs), 0);
    assert_json(o, "{\"protocols\":[\"grpcs\"],\"strip_path\":true}");
    json_decref(o);
    o = J("{\"protocols\":[\"http\"]}");
    assert_int_equal(aigw_schema_shorthand_route(o, errs), 0);
    assert_json(o, "{\"protocols\":[\"http\"]}");
    json_decref(o);
    json_decref(errs);
}

static void upstream_shorthand(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "{\"algorithm\":\"least-connections\"}",
          "{\"algorithm\":\"least-connections\",\"hash_on\":\"none\"}" },
        { "{\"algorithm\":\"latency\",\"hash_on\":\"ip\"}",
          "{\"algorithm\":\"latency\",\"hash_on\":\"none\"}" },
        { "{\"hash_on\":\"ip\"}", "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"ip\"}" },
        { "{\"algorithm\":\"consistent-hashing\",\"hash_on\":\"none\"}",
          "{\"algorithm\":\"round-robin\",\"hash_on\":\"none\"}" },
        { "{\"algorithm\":\"round-robin\"}", "{\"algorithm\":\"round-robin\"}" },
        { "{\"hash_on\":null}", "{\"hash_on\":\"none\"}" },
        { "{\"name\":\"u\"}", "{\"name\":\"u\"}" },
    };
    json_t *errs = json_object();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = J(cases[i][0]);
        assert_int_equal(aigw_schema_shorthand_upstream(o, errs), 0);
        assert_json(o, cases[i][1]);
        json_decref(o);
    }
    json_t *o = J("{\"hash_on\":1}");
    assert_int_equal(aigw_schema_shorthand_upstream(o, errs), -1);
    assert_json(errs, "{\"hash_on\":\"expected a string\"}");
    json_decref(o);
    json_decref(errs);
}

static void service_checks(void **state)
{
    (void)state;
    assert_echeck("services", "{\"protocol\":\"http\",\"path\":\"/a\",\"tls_verify\":null}", NULL);
    assert_echeck("services", "{\"protocol\":\"https\",\"tls_verify\":true,\"tls_verify_depth\":3}",
                  NULL);
    assert_echeck("services", "{\"protocol\":\"tcp\",\"path\":\"/a\"}",
                  "{\"path\":\"value must be null\",\"@entity\":[\"failed conditional validation "
                  "given value of field 'protocol'\"]}");
    /* one message per failed conditional, as Kong */
    assert_echeck("services",
                  "{\"protocol\":\"http\",\"tls_verify\":false,\"client_certificate\":"
                  "{\"id\":\"" U1 "\"}}",
                  "{\"tls_verify\":\"value must be null\",\"client_certificate\":\"value must be "
                  "null\",\"@entity\":[\"failed conditional validation given value of field "
                  "'protocol'\",\"failed conditional validation given value of field "
                  "'protocol'\"]}");
    assert_echeck("services", "{\"protocol\":\"tls\",\"ca_certificates\":[]}", NULL);
}

static void route_checks(void **state)
{
    (void)state;
    static const char https_msg[] =
        "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'";
    char buf[512];

    snprintf(buf, sizeof(buf), "{\"@entity\":[\"%s\"]}", https_msg);
    assert_echeck("routes", "{\"protocols\":[\"http\",\"https\"],\"paths\":null}", buf);
    assert_echeck("routes", "{\"protocols\":[\"http\",\"https\"],\"paths\":[],\"headers\":{}}", buf);
    assert_echeck("routes", "{\"protocols\":[\"http\",\"https\"],\"paths\":[\"/a\"]}", NULL);
    assert_echeck("routes", "{\"protocols\":[\"https\"],\"snis\":[\"a.test\"]}", NULL);
    assert_echeck("routes", "{\"protocols\":[\"http\"]}",
                  "{\"@entity\":[\"must set one of 'methods', 'hosts', 'headers', 'paths' when "
                  "'protocols' is 'http'\"]}");
    /* snis need a TLS protocol */
    assert_echeck("routes", "{\"protocols\":[\"http\"],\"hosts\":[\"a\"],\"snis\":[\"a.test\"]}",
                  "{\"snis\":\"length must be 0\",\"@entity\":[\"'snis' can only be set when "
                  "'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'\"]}");
    /* the http subschema forbids sources/destinations */
    assert_echeck("routes",
                  "{\"protocols\":[\"http\"],\"paths\":[\"/\"],\"sources\":[{\"ip\":\"1.2.3.4\"}]}",
                  "{\"sources\":\"cannot set 'sources' when 'protocols' is 'http' or 'https'\"}");
    /* stream */
    assert_echeck("routes", "{\"protocols\":[\"tcp\"]}",
                  "{\"@entity\":[\"must set one of 'sources', 'destinations', 'snis' when "
                  "'protocols' is 'tcp', 'tls' or 'udp'\"]}");
    assert_echeck("routes", "{\"protocols\":[\"tcp\"],\"destinations\":[{\"port\":5432}]}", NULL);
    assert_echeck("routes",
                  "{\"protocols\":[\"tcp\"],\"destinations\":[{\"port\":1}],\"paths\":[\"/a\"]}",
                  "{\"paths\":\"cannot set 'paths' when 'protocols' is 'tcp', 'tls', "
                  "'tls_passthrough' or 'udp'\"}");
    assert_echeck("routes", "{\"protocols\":[\"tls_passthrough\"]}",
                  "{\"@entity\":[\"must set snis when 'protocols' is 'tls_passthrough'\"]}");
    /* grpc */
    assert_echeck("routes", "{\"protocols\":[\"grpc\"],\"strip_path\":false,\"paths\":[\"/a\"]}",
                  NULL);
    assert_echeck("routes", "{\"protocols\":[\"grpc\"],\"strip_path\":true,\"paths\":[\"/a\"]}",
                  "{\"strip_path\":\"cannot set 'strip_path' when 'protocols' is 'grpc' or "
                  "'grpcs'\"}");
    assert_echeck("routes", "{\"protocols\":[\"grpcs\"],\"strip_path\":false}",
                  "{\"@entity\":[\"must set one of 'hosts', 'headers', 'paths', 'snis' when "
                  "'protocols' is 'grpcs'\"]}");
    assert_echeck("routes", "{\"protocols\":[\"grpc\"],\"strip_path\":false,\"methods\":[\"GET\"]}",
                  "{\"methods\":\"cannot set 'methods' when 'protocols' is 'grpc' or 'grpcs'\","
                  "\"@entity\":[\"must set one of 'hosts', 'headers', 'paths' when 'protocols' is "
                  "'grpc'\"]}");
}

static void consumer_check(void **state)
{
    (void)state;
    static const char msg[] = "{\"@entity\":[\"at least one of these fields must be non-empty: "
                              "'custom_id', 'username'\"]}";
    assert_echeck("consumers", "{\"username\":null,\"custom_id\":null}", msg);
    assert_echeck("consumers", "{}", msg);
    assert_echeck("consumers", "{\"username\":\"bob\"}", NULL);
    assert_echeck("consumers", "{\"custom_id\":\"42\",\"username\":null}", NULL);
}

static void upstream_checks(void **state)
{
    (void)state;
    assert_echeck("upstreams", "{\"hash_on\":\"none\",\"hash_fallback\":\"none\"}", NULL);
    assert_echeck("upstreams", "{\"hash_on\":\"header\",\"hash_fallback\":\"none\"}",
                  "{\"hash_on_header\":\"required field missing\",\"@entity\":[\"failed "
                  "conditional validation given value of field 'hash_on'\"]}");
    assert_echeck("upstreams", "{\"hash_on\":\"none\",\"hash_fallback\":\"ip\"}",
                  "{\"hash_fallback\":\"expected one of: none\",\"@entity\":[\"failed "
                  "conditional validation given value of field 'hash_on'\"]}");
    assert_echeck("upstreams", "{\"hash_on\":\"ip\",\"hash_fallback\":\"ip\"}",
                  "{\"hash_fallback\":\"expected one of: none, consumer, header, cookie, path, "
                  "query_arg, uri_capture\",\"@entity\":[\"failed conditional validation given "
                  "value of field 'hash_on'\"]}");
    assert_echeck("upstreams",
                  "{\"hash_on\":\"header\",\"hash_fallback\":\"header\",\"hash_on_header\":"
                  "\"X-A\",\"hash_fallback_header\":\"X-A\"}",
                  "{\"@entity\":[\"values of these fields must be distinct: 'hash_on_header', "
                  "'hash_fallback_header'\"]}");
    assert_echeck("upstreams",
                  "{\"hash_on\":\"cookie\",\"hash_fallback\":\"none\",\"hash_on_cookie\":\"c\"}",
                  NULL);
    assert_echeck("upstreams", "{\"hash_on\":\"query_arg\",\"hash_fallback\":\"none\"}",
                  "{\"hash_on_query_arg\":\"required field missing\",\"@entity\":[\"failed "
                  "conditional validation given value of field 'hash_on'\"]}");
}

static void jwt_check(void **state)
{
    (void)state;
    static const char missing[] =
        "{\"rsa_public_key\":\"required field missing\",\"@entity\":[\"failed conditional "
        "validation given value of field 'algorithm'\"]}";
    assert_echeck("jwt_secrets", "{\"algorithm\":\"HS256\"}", NULL);
    assert_echeck("jwt_secrets", "{\"algorithm\":\"RS256\",\"rsa_public_key\":null}", missing);
    assert_echeck("jwt_secrets", "{\"algorithm\":\"EdDSA\"}", missing);
    assert_echeck("jwt_secrets", "{\"algorithm\":\"PS512\"}", missing);
    /* Kong's conditional does not list ES* */
    assert_echeck("jwt_secrets", "{\"algorithm\":\"ES256\"}", NULL);
    assert_echeck("jwt_secrets", "{\"algorithm\":\"RS256\",\"rsa_public_key\":\"nope\"}",
                  "{\"rsa_public_key\":\"invalid key\",\"@entity\":[\"failed conditional "
                  "validation given value of field 'algorithm'\"]}");
    pem_t p = make_cert(K_EC, 0, 86400L);
    json_t *o = json_pack("{s:s, s:s}", "algorithm", "RS256", "rsa_public_key", p.pub);
    json_t *errs = run_echeck_obj("jwt_secrets", o);
    assert_null(errs);
    json_decref(o);
    pem_free(&p);
}

static void certificate_checks(void **state)
{
    (void)state;
    pem_t a = make_cert(K_EC, 0, 86400L * 30), b = make_cert(K_EC, 0, 86400L * 30);
    pem_t ed = make_cert(K_ED25519, 0, 86400L * 30);

    assert_ok(chk(aigw_schema_check_certificate, a.cert));
    assert_ok(chk(aigw_schema_check_key, a.key));
    assert_ok(chk(aigw_schema_check_key, a.pub));
    const char *m = chk(aigw_schema_check_certificate, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert_non_null(m);
    assert_true(strncmp(m, "invalid certificate: x509.new: ", 31) == 0);
    m = chk(aigw_schema_check_certificate, "garbage");
    assert_non_null(m);
    assert_true(strncmp(m, "invalid certificate: x509.new: ", 31) == 0);
    m = chk(aigw_schema_check_key, "garbage");
    assert_non_null(m);
    assert_true(strncmp(m, "invalid key: ", 13) == 0);

    json_t *o, *errs;
    o = cert_obj(a.cert, a.key, NULL, NULL);
    assert_null(run_echeck_obj("certificates", o));
    json_decref(o);

    o = cert_obj(a.cert, b.key, NULL, NULL);
    errs = run_echeck_obj("certificates", o);
    assert_non_null(errs);
    assert_json(errs, "{\"@entity\":[\"certificate does not match key\"]}");
    json_decref(errs);
    json_decref(o);

    o = cert_obj(a.cert, a.key, ed.cert, NULL);
    errs = run_echeck_obj("certificates", o);
    assert_non_null(errs);
    assert_json(errs, "{\"@entity\":[\"all or none of these fields must be set: 'cert_alt', 'key_alt'\"]}");
    json_decref(errs);
    json_decref(o);

    o = cert_obj(a.cert, a.key, ed.cert, ed.key);
    assert_null(run_echeck_obj("certificates", o));
    json_decref(o);

    o = cert_obj(a.cert, a.key, ed.cert, a.key);
    errs = run_echeck_obj("certificates", o);
    assert_non_null(errs);
    assert_json(errs, "{\"@entity\":[\"alternative certificate does not match key\"]}");
    json_decref(errs);
    json_decref(o);

    o = cert_obj(a.cert, a.key, b.cert, b.key);
    errs = run_echeck_obj("certificates", o);
    assert_non_null(errs);
    assert_json(errs, "{\"@entity\":[\"certificate and alternative certificate need to have "
                      "different type (e.g. RSA and ECDSA), the provided certificates were both "
                      "of the same type\"]}");
    json_decref(errs);
    json_decref(o);

    pem_free(&a);
    pem_free(&b);
    pem_free(&ed);
}

static void ca_certificate_checks(void **state)
{
    (void)state;
    pem_t ca = make_cert(K_EC, 1, 86400L * 30), leaf = make_cert(K_EC, 0, 86400L * 30);
    pem_t old = make_cert(K_EC, 1, -86400L);
    json_t *o, *errs;

    o = json_pack("{s:s}", "cert", ca.cert);
    assert_null(run_echeck_obj("ca_certificates", o));
    json_decref(o);

    o = json_pack("{s:s}", "cert", leaf.cert);
    errs = run_echeck_obj("ca_certificates", o);
    assert_non_null(errs);
    assert_json(errs, "{\"@entity\":[\"certificate does not appear to be a CA because it is "
                      "missing the \\\"CA\\\" basic constraint\"]}");
    json_decref(errs);
    json_decref(o);

    o = json_pack("{s:s}", "cert", old.cert);
    errs = run_echeck_obj("ca_certificates", o);
    assert_non_null(errs);
    assert_json(errs, "{\"@entity\":[\"certificate expired, \\\"Not After\\\" time is in the past\"]}");
    json_decref(errs);
    json_decref(o);

    size_t n = strlen(ca.cert) + strlen(leaf.cert) + 1;
    char *two = malloc(n);
    snprintf(two, n, "%s%s", ca.cert, leaf.cert);
    o = json_pack("{s:s}", "cert", two);
    errs = run_echeck_obj("ca_certificates", o);
    assert_non_null(errs);
    assert_json(errs, "{\"@entity\":[\"please submit only one certificate at a time\"]}");
    json_decref(errs);
    json_decref(o);
    free(two);

    /* cert_digest: sha256 of the DER, lower-case hex, recomputed from cert */
    BIO *b = BIO_new_mem_buf(ca.cert, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    unsigned char md[32];
    unsigned int mdlen = 0;
    X509_digest(x, EVP_sha256(), md, &mdlen);
    X509_free(x);
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    o = json_pack("{s:s, s:s}", "cert", ca.cert, "cert_digest", "user-given");
    errs = json_object();
    assert_int_equal(aigw_schema_shorthand_ca_certificate(o, errs), 0);
    assert_string_equal(json_string_value(json_object_get(o, "cert_digest")), hex);
    assert_int_equal(json_object_size(errs), 0);
    json_decref(errs);
    json_decref(o);

    pem_free(&ca);
    pem_free(&leaf);
    pem_free(&old);
}

/* ================================================================================================
 * Group 2: table sanity
 * ============================================================================================== */

static size_t entity_index(const char *name)
{
    for (size_t i = 0; aigw_entities[i]; i++)
        if (strcmp(aigw_entities[i]->name, name) == 0)
            return i;
    return (size_t)-1;
}

static const aigw_field_t *field_of(const aigw_entity_t *e, const char *name)
{
    for (const aigw_field_t *f = e->fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static void check_field_table(const char *where, const aigw_field_t *fields)
{
    for (const aigw_field_t *f = fields; f->name; f++) {
        for (const aigw_field_t *g = f + 1; g->name; g++)
            if (strcmp(f->name, g->name) == 0)
                fail_msg("%s: duplicate field %s", where, f->name);
        if (f->dflt) {
            json_error_t err;
            json_t *d = json_loads(f->dflt, JSON_DECODE_ANY, &err);
            if (!d)
                fail_msg("%s.%s: default %s does not parse", where, f->name, f->dflt);
            if (f->one_of && json_is_string(d)) {
                int found = 0;
                for (const char *const *o = f->one_of; *o; o++)
                    found |= strcmp(*o, json_string_value(d)) == 0;
                if (!found)
                    fail_msg("%s.%s: default not in one_of", where, f->name);
            }
            if ((f->flags & AIGW_F_HAS_BETWEEN) && json_is_number(d) &&
                (json_number_value(d) < f->min || json_number_value(d) > f->max))
                fail_msg("%s.%s: default out of bounds", where, f->name);
            json_decref(d);
        }
        if (f->one_of && !f->one_of[0])
            fail_msg("%s.%s: empty one_of", where, f->name);
        if ((f->type == AIGW_FT_ARRAY || f->type == AIGW_FT_SET || f->type == AIGW_FT_MAP) &&
            !f->elements)
            fail_msg("%s.%s: aggregate without elements", where, f->name);
        if (f->type == AIGW_FT_FOREIGN && !f->reference)
            fail_msg("%s.%s: foreign without reference", where, f->name);
        if (f->type == AIGW_FT_RECORD && f->fields)
            check_field_table(f->name, f->fields);
        if (f->elements && f->elements->type == AIGW_FT_RECORD && f->elements->fields)
            check_field_table(f->name, f->elements->fields);
    }
}

static void table_sanity(void **state)
{
    (void)state;
    size_t n = 0;
    for (const aigw_entity_t *const *ep = aigw_entities; *ep; ep++, n++) {
        const aigw_entity_t *e = *ep;
        assert_non_null(e->name);
        assert_non_null(e->fields);
        check_field_table(e->name, e->fields);
        assert_ptr_equal(aigw_schema_entity(e->name), e);

        /* id: a generated uuid primary key, first */
        const aigw_field_t *id = &e->fields[0];
        assert_string_equal(id->name, "id");
        assert_int_equal(id->type, AIGW_FT_STRING);
        assert_true((id->flags & (AIGW_F_PK | AIGW_F_UUID | AIGW_F_AUTO)) ==
                    (AIGW_F_PK | AIGW_F_UUID | AIGW_F_AUTO));
        for (const aigw_field_t *f = e->fields + 1; f->name; f++)
            assert_false(f->flags & AIGW_F_PK);

        /* timestamps */
        int ms = strcmp(e->name, "targets") == 0;
        const aigw_field_t *c = field_of(e, "created_at"), *u = field_of(e, "updated_at");
        assert_non_null(c);
        assert_true(c->flags & AIGW_F_TIMESTAMP);
        assert_true(c->flags & AIGW_F_AUTO);
        assert_int_equal(c->type, ms ? AIGW_FT_NUMBER : AIGW_FT_INTEGER);
        assert_int_equal(!!(c->flags & AIGW_F_MS), ms);
        if (e->flags & AIGW_E_NO_UPDATED_AT) {
            assert_null(u);
        } else {
            assert_non_null(u);
            assert_true(u->flags & AIGW_F_TIMESTAMP);
            assert_int_equal(u->type, c->type);
        }

        /* tags everywhere but on oauth2 tokens and codes (Kong has none there) */
        const aigw_field_t *tags = field_of(e, "tags");
        if (strncmp(e->name, "oauth2_", 7) == 0 && strcmp(e->name, "oauth2_credentials") != 0) {
            assert_null(tags);
        } else {
            assert_non_null(tags);
            assert_int_equal(tags->type, AIGW_FT_SET);
            assert_ptr_equal(tags->elements->check, aigw_schema_check_tag);
        }

        /* endpoint keys are unique fields (acls: unique with its consumer) */
        if (e->endpoint_key) {
            const aigw_field_t *k = field_of(e, e->endpoint_key);
            assert_non_null(k);
            assert_int_equal(k->type, AIGW_FT_STRING);
            int in_cache_key = 0;
            for (const char *const *ck = e->cache_key; ck && *ck; ck++)
                in_cache_key |= strcmp(*ck, e->endpoint_key) == 0;
            if (!(k->flags & AIGW_F_UNIQUE))
                assert_true(in_cache_key && e->parent_field);
        }
        for (const char *const *ck = e->cache_key; ck && *ck; ck++)
            assert_non_null(field_of(e, *ck));

        /* foreign references name entities listed before this one */
        for (const aigw_field_t *f = e->fields; f->name; f++) {
            if (f->type != AIGW_FT_FOREIGN)
                continue;
            assert_non_null(aigw_schema_entity(f->reference));
            if (entity_index(f->reference) >= n)
                fail_msg("%s.%s references %s, listed later", e->name, f->name, f->reference);
        }

        /* nesting */
        if (e->parent_field) {
            const aigw_field_t *p = field_of(e, e->parent_field);
            assert_non_null(p);
            assert_int_equal(p->type, AIGW_FT_FOREIGN);
            assert_non_null(e->nested_path);
        }
        if (e->flags & AIGW_E_CREDENTIAL) {
            assert_string_equal(e->parent_field, "consumer");
            const aigw_field_t *p = field_of(e, "consumer");
            assert_true(p->flags & AIGW_F_REQUIRED);
            assert_true(p->flags & AIGW_F_CASCADE);
            assert_true(e->flags & AIGW_E_NO_UPDATED_AT);
            assert_non_null(e->admin_path);
        }
        if (e->flags & AIGW_E_NO_TOP_LEVEL)
            assert_non_null(e->nested_path);

        /* admin paths are unique and resolve */
        if (e->admin_path) {
            assert_ptr_equal(aigw_schema_entity_by_path(e->admin_path), e);
            for (const aigw_entity_t *const *o = ep + 1; *o; o++)
                if ((*o)->admin_path)
                    assert_string_not_equal((*o)->admin_path, e->admin_path);
        }
    }
    assert_int_equal(n, 16);
    assert_null(aigw_schema_entity("nope"));
    assert_null(aigw_schema_entity(NULL));
    assert_null(aigw_schema_entity_by_path("nope"));
    assert_null(aigw_schema_entity_by_path(NULL));
}

static void table_facts(void **state)
{
    (void)state;
    /* the admin paths and nesting of admin-api.md sections 4, 6 and 7 */
    static const char *const paths[][5] = {
        /* name, admin_path, nested_path, parent_field, endpoint_key */
        { "services", "services", NULL, NULL, "name" },
        { "routes", "routes", "routes", "service", "name" },
        { "consumers", "consumers", NULL, NULL, "username" },
        { "plugins", "plugins", "plugins", NULL, "instance_name" },
        { "certificates", "certificates", NULL, NULL, NULL },
        { "snis", "snis", "snis", "certificate", "name" },
        { "ca_certificates", "ca_certificates", NULL, NULL, NULL },
        { "upstreams", "upstreams", NULL, NULL, "name" },
        { "targets", "targets", "targets", "upstream", "target" },
        { "jwt_secrets", "jwts", "jwt", "consumer", "key" },
        { "keyauth_credentials", "key-auths", "key-auth", "consumer", "key" },
        { "basicauth_credentials", "basic-auths", "basic-auth", "consumer", "username" },
        { "acls", "acls", "acls", "consumer", "group" },
        { "oauth2_credentials", "oauth2", "oauth2", "consumer", "client_id" },
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const aigw_entity_t *e = E(paths[i][0]);
        const char *got[4] = { e->admin_path, e->nested_path, e->parent_field, e->endpoint_key };
        for (int k = 0; k < 4; k++) {
            if (paths[i][k + 1])
                assert_string_equal(got[k], paths[i][k + 1]);
            else
                assert_null(got[k]);
        }
    }
    assert_true(E("targets")->flags & AIGW_E_NO_TOP_LEVEL);
    assert_true(E("plugins")->flags & AIGW_E_PLUGIN);
    assert_null(E("oauth2_authorization_codes")->admin_path);

    /* cascades: routes do not go with their service; plugins, snis, targets, credentials do */
    assert_false(field_of(E("routes"), "service")->flags & AIGW_F_CASCADE);
    assert_true(field_of(E("plugins"), "service")->flags & AIGW_F_CASCADE);
    assert_true(field_of(E("plugins"), "route")->flags & AIGW_F_CASCADE);
    assert_true(field_of(E("plugins"), "consumer")->flags & AIGW_F_CASCADE);
    assert_true(field_of(E("snis"), "certificate")->flags & AIGW_F_CASCADE);
    assert_true(field_of(E("targets"), "upstream")->flags & AIGW_F_CASCADE);

    /* field order of services, as Kong lists it in /schemas/services */
    static const char *const svc[] = { "id", "created_at", "updated_at", "name", "retries",
                                       "protocol", "host", "port", "path", "connect_timeout",
                                       "write_timeout", "read_timeout", "tags",
                                       "client_certificate", "tls_verify", "tls_verify_depth",
                                       "ca_certificates", "enabled", "url", NULL };
    const aigw_field_t *f = E("services")->fields;
    for (size_t i = 0; svc[i]; i++, f++)
        assert_string_equal(f->name, svc[i]);
    assert_null(f->name);
    assert_true(field_of(E("services"), "url")->flags & AIGW_F_INPUT_ONLY);
    assert_true(field_of(E("certificates"), "snis")->flags & AIGW_F_INPUT_ONLY);

    /* secrets */
    assert_true(field_of(E("certificates"), "key")->flags & AIGW_F_SECRET);
    assert_true(field_of(E("basicauth_credentials"), "password")->flags & AIGW_F_SECRET);
    assert_true(field_of(E("keyauth_credentials"), "key")->flags & AIGW_F_SECRET);
    assert_true(field_of(E("oauth2_credentials"), "client_secret")->flags & AIGW_F_SECRET);

    /* auto random strings */
    const aigw_field_t *k = field_of(E("jwt_secrets"), "key");
    assert_true((k->flags & (AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_UNIQUE)) ==
                (AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_UNIQUE));

    /* plugin and acl uniqueness */
    const char *const *ck = E("plugins")->cache_key;
    assert_string_equal(ck[0], "name");
    assert_string_equal(ck[1], "route");
    assert_string_equal(ck[2], "service");
    assert_string_equal(ck[3], "consumer");
    assert_null(ck[4]);
    ck = E("acls")->cache_key;
    assert_string_equal(ck[0], "consumer");
    assert_string_equal(ck[1], "group");
    assert_null(ck[2]);
}

/* ================================================================================================
 * Group 3: whole entities through aigw_schema_validate (what the admin API answers)
 * ============================================================================================== */

static const char uuid1[] = U1;

/* Validates text as an INSERT; returns the normalised object (owned). */
static json_t *valid(const char *entity, const char *text)
{
    json_t *obj = J(text), *errs = NULL;
    int rc = aigw_schema_validate(E(entity), obj, AIGW_V_INSERT, &errs);
    if (rc != 0)
        fail_msg("%s %s: unexpected errors %s", entity, text, dump(errs));
    assert_null(errs);
    return obj;
}

/* Validates text as an INSERT, expecting failure: checks `fields` and Kong's message. */
static void invalid(const char *entity, const char *text, const char *fields, const char *message)
{
    json_t *obj = J(text), *errs = NULL;
    int rc = aigw_schema_validate(E(entity), obj, AIGW_V_INSERT, &errs);
    if (rc == 0)
        fail_msg("%s %s: expected errors, got %s", entity, text, dump(obj));
    assert_non_null(errs);
    assert_json(errs, fields);
    if (message) {
        char *m = aigw_schema_errors_message(errs);
        assert_non_null(m);
        assert_string_equal(m, message);
        free(m);
    }
    json_decref(errs);
    json_decref(obj);
}

static void v_services(void **state)
{
    (void)state;
    invalid("services", "{}", "{\"host\":\"required field missing\"}",
            "schema violation (host: required field missing)");
    invalid("services", "{\"url\":\"invalid url\"}",
            "{\"host\":\"required field missing\",\"path\":\"should start with: /\"}",
            "2 schema violations (host: required field missing; path: should start with: /)");

    json_t *o = valid("services", "{\"name\":\"agent-service\",\"url\":\"http://ai-orchestrator:5000\"}");
    assert_null(json_object_get(o, "url"));
    assert_string_equal(json_string_value(json_object_get(o, "protocol")), "http");
    assert_string_equal(json_string_value(json_object_get(o, "host")), "ai-orchestrator");
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 5000);
    assert_true(json_is_null(json_object_get(o, "path")));
    assert_int_equal(json_integer_value(json_object_get(o, "retries")), 5);
    assert_int_equal(json_integer_value(json_object_get(o, "connect_timeout")), 60000);
    assert_int_equal(json_integer_value(json_object_get(o, "read_timeout")), 60000);
    assert_int_equal(json_integer_value(json_object_get(o, "write_timeout")), 60000);
    assert_true(json_is_true(json_object_get(o, "enabled")));
    assert_true(json_is_null(json_object_get(o, "tls_verify")));
    assert_true(aigw_schema_is_uuid(json_string_value(json_object_get(o, "id"))));
    assert_true(json_is_integer(json_object_get(o, "created_at")));
    json_decref(o);

    invalid("services", "{\"host\":\"h\",\"protocol\":\"tcp\",\"path\":\"/a\"}",
            "{\"path\":\"value must be null\",\"@entity\":[\"failed conditional validation given "
            "value of field 'protocol'\"]}",
            "2 schema violations (failed conditional validation given value of field "
            "'protocol'; path: value must be null)");
    invalid("services", "{\"host\":\"h:80\"}", "{\"host\":\"must not have a port\"}", NULL);
    invalid("services", "{\"host\":\"h\",\"path\":\"/a//b\"}",
            "{\"path\":\"must not have empty segments\"}", NULL);
    invalid("services", "{\"host\":\"h\",\"name\":\"a b\"}",
            "{\"name\":\"invalid value 'a b': the only accepted ascii characters are "
            "alphanumerics or ., -, _, and ~\"}",
            NULL);
    invalid("services", "{\"host\":\"h\",\"tags\":[\"ok\",\"a,b\"]}",
            "{\"tags\":[null,\"invalid tag 'a,b': expected printable ascii (except `,` and `/`) "
            "or valid utf-8 sequences\"]}",
            NULL);
    invalid("services", "{\"host\":\"h\",\"protocol\":\"ftp\"}",
            "{\"protocol\":\"expected one of: grpc, grpcs, http, https, tcp, tls, "
            "tls_passthrough, udp\"}",
            NULL);
}

static void v_routes(void **state)
{
    (void)state;
    json_t *o = valid("routes", "{\"paths\":[\"/ai\"],\"service\":{\"id\":\"" U1 "\"}}");
    assert_json(json_object_get(o, "protocols"), "[\"http\",\"https\"]");
    assert_int_equal(json_integer_value(json_object_get(o, "https_redirect_status_code")), 426);
    assert_true(json_is_true(json_object_get(o, "strip_path")));
    assert_true(json_is_false(json_object_get(o, "preserve_host")));
    assert_true(json_is_true(json_object_get(o, "request_buffering")));
    assert_true(json_is_true(json_object_get(o, "response_buffering")));
    assert_int_equal(json_integer_value(json_object_get(o, "regex_priority")), 0);
    assert_string_equal(json_string_value(json_object_get(o, "path_handling")), "v0");
    assert_true(json_is_null(json_object_get(o, "hosts")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "service"), "id")), uuid1);
    json_decref(o);

    invalid("routes", "{}",
            "{\"@entity\":[\"must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when "
            "'protocols' is 'https'\"]}",
            "schema violation (must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' "
            "when 'protocols' is 'https')");
    invalid("routes", "{\"protocols\":[\"http\"]}",
            "{\"@entity\":[\"must set one of 'methods', 'hosts', 'headers', 'paths' when "
            "'protocols' is 'http'\"]}",
            NULL);
    invalid("routes", "{\"paths\":[\"/a\"],\"headers\":{\"Host\":[\"x\"]}}",
            "{\"headers\":\"cannot contain 'host' header, which must be specified in the 'hosts' "
            "attribute\"}",
            NULL);
    invalid("routes", "{\"paths\":[\"/a\",\"b\"]}",
            "{\"paths\":[null,\"should start with: / (fixed path) or ~/ (regex path)\"]}",
            "schema violation (paths.2: should start with: / (fixed path) or ~/ (regex path))");
    invalid("routes", "{\"paths\":[\"/a\"],\"protocols\":[\"http\",\"tcp\"]}",
            "{\"protocols\":\"these sets are mutually exclusive: ('http', 'https'), ('tcp', "
            "'tls', 'udp')\"}",
            NULL);
    invalid("routes", "{\"paths\":[\"/a\"],\"https_redirect_status_code\":300}",
            "{\"https_redirect_status_code\":\"expected one of: 426, 301, 302, 307, 308\"}", NULL);

    o = valid("routes", "{\"protocols\":[\"grpc\"],\"paths\":[\"/svc\"]}");
    assert_true(json_is_false(json_object_get(o, "strip_path")));
    json_decref(o);

    o = valid("routes", "{\"protocols\":[\"tcp\"],\"destinations\":[{\"ip\":\"10.0.0.0/8\"}]}");
    assert_json(json_object_get(o, "destinations"), "[{\"ip\":\"10.0.0.0/8\",\"port\":null}]");
    json_decref(o);
}

static void v_consumers_and_credentials(void **state)
{
    (void)state;
    invalid("consumers", "{}",
            "{\"@entity\":[\"at least one of these fields must be non-empty: 'custom_id', "
            "'username'\"]}",
            "schema violation (at least one of these fields must be non-empty: 'custom_id', "
            "'username')");
    json_t *o = valid("consumers", "{\"username\":\"bob\"}");
    assert_true(json_is_null(json_object_get(o, "custom_id")));
    json_decref(o);

    /* jwt: POST with no body but the consumer is valid; key and secret are made */
    o = valid("jwt_secrets", "{\"consumer\":{\"id\":\"" U1 "\"}}");
    assert_int_equal(strlen(json_string_value(json_object_get(o, "key"))), 32);
    assert_int_equal(strlen(json_string_value(json_object_get(o, "secret"))), 32);
    assert_string_equal(json_string_value(json_object_get(o, "algorithm")), "HS256");
    assert_null(json_object_get(o, "updated_at"));
    json_decref(o);
    invalid("jwt_secrets", "{}", "{\"consumer\":\"required field missing\"}",
            "schema violation (consumer: required field missing)");
    invalid("jwt_secrets",
            "{\"consumer\":{\"id\":\"" U1 "\"},\"algorithm\":\"RS256\"}",
            "{\"rsa_public_key\":\"required field missing\",\"@entity\":[\"failed conditional "
            "validation given value of field 'algorithm'\"]}",
            NULL);

    o = valid("keyauth_credentials", "{\"consumer\":{\"id\":\"" U1 "\"}}");
    assert_int_equal(strlen(json_string_value(json_object_get(o, "key"))), 32);
    json_decref(o);

    invalid("basicauth_credentials",
            "{\"consumer\":{\"id\":\"" U1 "\"},\"username\":\"u\"}",
            "{\"password\":\"required field missing\"}", NULL);
    invalid("acls", "{\"consumer\":{\"id\":\"" U1 "\"}}",
            "{\"group\":\"required field missing\"}", NULL);

    o = valid("oauth2_credentials",
              "{\"consumer\":{\"id\":\"" U1 "\"},\"name\":\"app\","
              "\"redirect_uris\":[\"https://app.test/cb\"]}");
    assert_string_equal(json_string_value(json_object_get(o, "client_type")), "confidential");
    assert_true(json_is_false(json_object_get(o, "hash_secret")));
    assert_int_equal(strlen(json_string_value(json_object_get(o, "client_id"))), 32);
    json_decref(o);
    invalid("oauth2_credentials",
            "{\"consumer\":{\"id\":\"" U1 "\"},\"name\":\"app\","
            "\"redirect_uris\":[\"not-valid\"]}",
            "{\"redirect_uris\":[\"cannot parse 'not-valid'\"]}", NULL);
}

static void v_upstreams_targets(void **state)
{
    (void)state;
    json_t *o = valid("upstreams", "{\"name\":\"ai-backend\"}");
    assert_string_equal(json_string_value(json_object_get(o, "algorithm")), "round-robin");
    assert_string_equal(json_string_value(json_object_get(o, "hash_on")), "none");
    assert_string_equal(json_string_value(json_object_get(o, "hash_fallback")), "none");
    assert_string_equal(json_string_value(json_object_get(o, "hash_on_cookie_path")), "/");
    assert_int_equal(json_integer_value(json_object_get(o, "slots")), 10000);
    assert_true(json_is_false(json_object_get(o, "use_srv_name")));
    json_t *hc = json_object_get(o, "healthchecks");
    assert_non_null(hc);
    json_t *active = json_object_get(hc, "active");
    assert_string_equal(json_string_value(json_object_get(active, "type")), "http");
    assert_int_equal((int)json_number_value(json_object_get(active, "timeout")), 1);
    assert_int_equal(json_integer_value(json_object_get(active, "concurrency")), 10);
    assert_string_equal(json_string_value(json_object_get(active, "http_path")), "/");
    assert_true(json_is_true(json_object_get(active, "https_verify_certificate")));
    assert_true(json_is_null(json_object_get(active, "https_sni")));
    assert_true(json_is_null(json_object_get(active, "headers")));
    assert_json(json_object_get(json_object_get(active, "healthy"), "http_statuses"), "[200,302]");
    assert_json(json_object_get(json_object_get(active, "unhealthy"), "http_statuses"),
                "[429,404,500,501,502,503,504,505]");
    json_t *passive = json_object_get(hc, "passive");
    assert_json(json_object_get(json_object_get(passive, "unhealthy"), "http_statuses"),
                "[429,500,503]");
    assert_int_equal((int)json_number_value(json_object_get(hc, "threshold")), 0);
    json_decref(o);

    /* a partial healthchecks record keeps the other defaults */
    o = valid("upstreams", "{\"name\":\"u2\",\"healthchecks\":{\"active\":{\"timeout\":5}}}");
    active = json_object_get(json_object_get(o, "healthchecks"), "active");
    assert_int_equal((int)json_number_value(json_object_get(active, "timeout")), 5);
    assert_int_equal(json_integer_value(json_object_get(active, "concurrency")), 10);
    assert_json(json_object_get(json_object_get(active, "healthy"), "http_statuses"), "[200,302]");
    json_decref(o);

    o = valid("upstreams", "{\"name\":\"u3\",\"hash_on\":\"ip\"}");
    assert_string_equal(json_string_value(json_object_get(o, "algorithm")), "consistent-hashing");
    json_decref(o);
    invalid("upstreams", "{\"name\":\"u4\",\"hash_on\":\"header\"}",
            "{\"hash_on_header\":\"required field missing\",\"@entity\":[\"failed conditional "
            "validation given value of field 'hash_on'\"]}",
            NULL);
    invalid("upstreams", "{\"name\":\"1.2.3.4\"}",
            "{\"name\":\"Invalid name ('1.2.3.4'); no ip addresses allowed\"}", NULL);
    invalid("upstreams", "{\"name\":\"u5\",\"slots\":5}",
            "{\"slots\":\"value should be between 10 and 65536\"}", NULL);

    o = valid("targets", "{\"target\":\"10.0.0.7\",\"upstream\":{\"id\":\"" U1 "\"}}");
    assert_string_equal(json_string_value(json_object_get(o, "target")), "10.0.0.7:8000");
    assert_int_equal(json_integer_value(json_object_get(o, "weight")), 100);
    assert_true(json_is_real(json_object_get(o, "created_at")));
    json_decref(o);
    invalid("targets", "{\"target\":\"bad host\",\"upstream\":{\"id\":\"" U1 "\"}}",
            "{\"target\":\"Invalid target; not a valid hostname or ip address\"}", NULL);
}

static void v_healthchecks_errors(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "{\"active\":{\"timeout\":-1}}",
          "{\"active\":{\"timeout\":\"value should be between 0 and 65535\"}}" },
        { "{\"active\":{\"concurrency\":0}}",
          "{\"active\":{\"concurrency\":\"value should be between 1 and 2147483648\"}}" },
        { "{\"active\":{\"concurrency\":0.5}}",
          "{\"active\":{\"concurrency\":\"expected an integer\"}}" },
        { "{\"active\":{\"http_path\":\"ovo\"}}",
          "{\"active\":{\"http_path\":\"should start with: /\"}}" },
        { "{\"active\":{\"https_sni\":\"127.0.0.1\"}}",
          "{\"active\":{\"https_sni\":\"must not be an IP\"}}" },
        { "{\"active\":{\"https_sni\":\"example.com:1234\"}}",
          "{\"active\":{\"https_sni\":\"must not have a port\"}}" },
        { "{\"active\":{\"headers\":{\"x-header\":123}}}",
          "{\"active\":{\"headers\":\"expected an array\"}}" },
        { "{\"active\":{\"healthy\":{\"http_statuses\":[99]}}}",
          "{\"active\":{\"healthy\":{\"http_statuses\":[\"value should be between 100 and 999\"]}}}" },
        { "{\"active\":{\"unhealthy\":{\"tcp_failures\":256}}}",
          "{\"active\":{\"unhealthy\":{\"tcp_failures\":\"value should be between 0 and 255\"}}}" },
        { "{\"passive\":{\"healthy\":{\"successes\":-1}}}",
          "{\"passive\":{\"healthy\":{\"successes\":\"value should be between 0 and 255\"}}}" },
        { "{\"threshold\":101}",
          "{\"threshold\":\"value should be between 0 and 100\"}" },
        { "{\"threshold\":\"50\"}",
          "{\"threshold\":\"expected a number\"}" },
    };
    char body[512], want[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{\"name\":\"u\",\"healthchecks\":%s}", cases[i][0]);
        snprintf(want, sizeof(want), "{\"healthchecks\":%s}", cases[i][1]);
        invalid("upstreams", body, want, NULL);
    }
    invalid("upstreams", "{\"name\":\"u\",\"hash_on_cookie\":\"a cookie\",\"hash_on\":\"cookie\"}",
            "{\"hash_on_cookie\":\"contains one or more invalid characters. ASCII control "
            "characters (0-31;127), space, tab and the characters ()<>@,;:\\\\\\\"/?={}[] are "
            "not allowed.\"}",
            NULL);
    invalid("upstreams",
            "{\"name\":\"u\",\"hash_on\":\"query_arg\",\"hash_on_query_arg\":\"same\","
            "\"hash_fallback\":\"query_arg\",\"hash_fallback_query_arg\":\"same\"}",
            "{\"@entity\":[\"values of these fields must be distinct: 'hash_on_query_arg', "
            "'hash_fallback_query_arg'\"]}",
            NULL);
    invalid("upstreams", "{\"name\":\"u\",\"hash_on\":\"query_arg\",\"hash_on_query_arg\":\"\"}",
            "{\"hash_on_query_arg\":\"length must be at least 1\"}", NULL);
    invalid("upstreams", "{\"name\":\"u\",\"host_header\":\"a hostname\"}",
            "{\"host_header\":\"invalid hostname: a hostname\"}", NULL);
}

/* PATCH: the admin layer validates the merged entity in UPDATE mode. */
static void v_update(void **state)
{
    (void)state;
    json_t *o = valid("services", "{\"host\":\"a.test\"}");
    json_t *errs = NULL;
    json_object_set_new(o, "url", json_string("https://b.test:8443/v2"));
    assert_int_equal(aigw_schema_validate(E("services"), o, AIGW_V_UPDATE, &errs), 0);
    assert_string_equal(json_string_value(json_object_get(o, "protocol")), "https");
    assert_string_equal(json_string_value(json_object_get(o, "host")), "b.test");
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 8443);
    assert_string_equal(json_string_value(json_object_get(o, "path")), "/v2");
    assert_null(json_object_get(o, "url"));
    /* switching to tcp with a path left over is refused as Kong does */
    json_object_set_new(o, "protocol", json_string("tcp"));
    assert_int_equal(aigw_schema_validate(E("services"), o, AIGW_V_UPDATE, &errs), -1);
    assert_json(errs, "{\"path\":\"value must be null\",\"@entity\":[\"failed conditional "
                      "validation given value of field 'protocol'\"]}");
    json_decref(errs);
    json_decref(o);

    o = valid("targets", "{\"target\":\"h.test\",\"upstream\":{\"id\":\"" U1 "\"}}");
    assert_string_equal(json_string_value(json_object_get(o, "target")), "h.test:8000");
    json_object_set_new(o, "target", json_string("h2.test"));
    assert_int_equal(aigw_schema_validate(E("targets"), o, AIGW_V_UPDATE, &errs), 0);
    assert_string_equal(json_string_value(json_object_get(o, "target")), "h2.test:8000");
    json_decref(o);
}

static void v_certificates(void **state)
{
    (void)state;
    pem_t a = make_cert(K_EC, 0, 86400L * 30), b = make_cert(K_EC, 0, 86400L * 30);
    pem_t ca = make_cert(K_EC, 1, 86400L * 30);
    json_t *o, *errs;

    o = json_pack("{s:s, s:s, s:[s]}", "cert", a.cert, "key", a.key, "snis", "*.a.test");
    assert_int_equal(aigw_schema_validate(E("certificates"), o, AIGW_V_INSERT, &errs), 0);
    assert_true(json_is_null(json_object_get(o, "cert_alt")));
    json_decref(o);

    o = json_pack("{s:s, s:s}", "cert", a.cert, "key", b.key);
    assert_int_equal(aigw_schema_validate(E("certificates"), o, AIGW_V_INSERT, &errs), -1);
    assert_json(errs, "{\"@entity\":[\"certificate does not match key\"]}");
    char *m = aigw_schema_errors_message(errs);
    assert_string_equal(m, "schema violation (certificate does not match key)");
    free(m);
    json_decref(errs);
    json_decref(o);

    o = json_pack("{s:s, s:s, s:[s]}", "cert", a.cert, "key", a.key, "snis", "a.*.test");
    assert_int_equal(aigw_schema_validate(E("certificates"), o, AIGW_V_INSERT, &errs), -1);
    assert_json(errs, "{\"snis\":[\"wildcard must be leftmost or rightmost character\"]}");
    json_decref(errs);
    json_decref(o);

    o = json_pack("{s:s}", "cert", ca.cert);
    assert_int_equal(aigw_schema_validate(E("ca_certificates"), o, AIGW_V_INSERT, &errs), 0);
    assert_int_equal(json_string_length(json_object_get(o, "cert_digest")), 64);
    json_decref(o);

    o = json_pack("{s:s}", "cert", a.cert);
    assert_int_equal(aigw_schema_validate(E("ca_certificates"), o, AIGW_V_INSERT, &errs), -1);
    m = aigw_schema_errors_message(errs);
    assert_string_equal(m, "schema violation (certificate does not appear to be a CA because it "
                           "is missing the \"CA\" basic constraint)");
    free(m);
    json_decref(errs);
    json_decref(o);

    invalid("snis", "{\"name\":\"1.2.3.4\",\"certificate\":{\"id\":\"" U1 "\"}}",
            "{\"name\":\"must not be an IP\"}", NULL);

    pem_free(&a);
    pem_free(&b);
    pem_free(&ca);
}

static void v_plugins(void **state)
{
    (void)state;
    invalid("plugins", "{\"name\":\"no-such-plugin\"}",
            "{\"name\":\"plugin 'no-such-plugin' not enabled; add it to the 'plugins' "
            "configuration property\"}",
            NULL);
    invalid("plugins", "{}", "{\"name\":\"required field missing\"}", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* group 1: checks and shorthands */
        cmocka_unit_test(url_shorthand),
        cmocka_unit_test(url_parse),
        cmocka_unit_test(hosts),
        cmocka_unit_test(normalize_host),
        cmocka_unit_test(targets_format),
        cmocka_unit_test(kong_host_lists),
        cmocka_unit_test(kong_path_lists),
        cmocka_unit_test(paths),
        cmocka_unit_test(names_tags_headers),
        cmocka_unit_test(route_protocols),
        cmocka_unit_test(upstream_shorthand),
        cmocka_unit_test(service_checks),
        cmocka_unit_test(route_checks),
        cmocka_unit_test(consumer_check),
        cmocka_unit_test(upstream_checks),
        cmocka_unit_test(jwt_check),
        cmocka_unit_test(certificate_checks),
        cmocka_unit_test(ca_certificate_checks),
        /* group 2: tables */
        cmocka_unit_test(table_sanity),
        cmocka_unit_test(table_facts),
        /* group 3: through aigw_schema_validate */
        cmocka_unit_test(v_services),
        cmocka_unit_test(v_routes),
        cmocka_unit_test(v_consumers_and_credentials),
        cmocka_unit_test(v_upstreams_targets),
        cmocka_unit_test(v_healthchecks_errors),
        cmocka_unit_test(v_update),
        cmocka_unit_test(v_certificates),
        cmocka_unit_test(v_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
