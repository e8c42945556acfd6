/* tests/unit/test_decode.c: admin request decoding (aigwd/admin/decode.c): the 415 rules,
 * JSON bodies, form, multipart and query args with schema coercion, and the errors a user
 * sees. Small field tables here stand in for the real schema (aigwd/schema); the callback
 * walks them as aigw_schema_field_path does. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/decode.h"

/* ---- stand-in schema ---------------------------------------------------------------------- */

static const aigw_field_t f_str = { .name = "element", .type = AIGW_FT_STRING };
static const aigw_field_t f_int = { .name = "element", .type = AIGW_FT_INTEGER };
static const aigw_field_t f_str_array = { .name = "element", .type = AIGW_FT_ARRAY,
                                          .elements = &f_str };

static const aigw_field_t services_fields[] = {
    { .name = "id", .type = AIGW_FT_STRING, .flags = AIGW_F_UUID | AIGW_F_PK },
    { .name = "name", .type = AIGW_FT_STRING },
    { .name = "host", .type = AIGW_FT_STRING },
    { .name = "port", .type = AIGW_FT_INTEGER },
    { .name = "retries", .type = AIGW_FT_INTEGER },
    { .name = "url", .type = AIGW_FT_STRING, .flags = AIGW_F_INPUT_ONLY },
    { .name = "enabled", .type = AIGW_FT_BOOLEAN },
    { .name = "tls_verify", .type = AIGW_FT_BOOLEAN },
    { .name = "tags", .type = AIGW_FT_SET, .elements = &f_str },
    { .name = NULL },
};

static const aigw_field_t source_fields[] = {
    { .name = "ip", .type = AIGW_FT_STRING },
    { .name = "port", .type = AIGW_FT_INTEGER },
    { .name = NULL },
};
static const aigw_field_t f_source = { .name = "element", .type = AIGW_FT_RECORD,
                                       .fields = source_fields };

static const aigw_field_t routes_fields[] = {
    { .name = "name", .type = AIGW_FT_STRING },
    { .name = "paths", .type = AIGW_FT_ARRAY, .elements = &f_str },
    { .name = "hosts", .type = AIGW_FT_ARRAY, .elements = &f_str },
    { .name = "methods", .type = AIGW_FT_SET, .elements = &f_str },
    { .name = "headers", .type = AIGW_FT_MAP, .elements = &f_str_array },
    { .name = "sources", .type = AIGW_FT_SET, .elements = &f_source },
    { .name = "strip_path", .type = AIGW_FT_BOOLEAN },
    { .name = "regex_priority", .type = AIGW_FT_INTEGER },
    { .name = "service", .type = AIGW_FT_FOREIGN, .reference = "services" },
    { .name = NULL },
};

static const aigw_field_t consumers_fields[] = {
    { .name = "username", .type = AIGW_FT_STRING },
    { .name = "custom_id", .type = AIGW_FT_STRING },
    { .name = NULL },
};

static const aigw_field_t acls_fields[] = {
    { .name = "group", .type = AIGW_FT_STRING },
    { .name = "consumer", .type = AIGW_FT_FOREIGN, .reference = "consumers" },
    { .name = NULL },
};

static const aigw_field_t plugins_fields[] = {
    { .name = "name", .type = AIGW_FT_STRING },
    { .name = "config", .type = AIGW_FT_RECORD }, /* fields from the plugin named by `name` */
    { .name = "service", .type = AIGW_FT_FOREIGN, .reference = "services" },
    { .name = "enabled", .type = AIGW_FT_BOOLEAN },
    { .name = "protocols", .type = AIGW_FT_SET, .elements = &f_str },
    { .name = NULL },
};

static const aigw_field_t acl_config[] = {
    { .name = "allow", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS, .elements = &f_str },
    { .name = "whitelist", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS,
      .elements = &f_str, .alias_of = "allow" },
    { .name = "hide_groups_header", .type = AIGW_FT_BOOLEAN },
    { .name = NULL },
};

static const aigw_field_t rate_limiting_config[] = {
    { .name = "second", .type = AIGW_FT_NUMBER },
    { .name = "minute", .type = AIGW_FT_INTEGER },
    { .name = "hour", .type = AIGW_FT_NUMBER },
    { .name = "policy", .type = AIGW_FT_STRING },
    { .name = "fault_tolerant", .type = AIGW_FT_BOOLEAN },
    { .name = NULL },
};

static const aigw_field_t oauth2_config[] = {
    { .name = "scopes", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
      .elements = &f_str },
    { .name = "mandatory_scope", .type = AIGW_FT_BOOLEAN },
    { .name = "enable_client_credentials", .type = AIGW_FT_BOOLEAN },
    { .name = "token_expiration", .type = AIGW_FT_NUMBER },
    { .name = NULL },
};

static const aigw_field_t limits_fields[] = {
    { .name = "n", .type = AIGW_FT_INTEGER },
    { .name = NULL },
};
static const aigw_field_t f_int_split = { .name = "element", .type = AIGW_FT_INTEGER,
                                          .flags = AIGW_F_SPLIT_COMMAS };
static const aigw_field_t test_config[] = {
    { .name = "status_codes", .type = AIGW_FT_ARRAY, .elements = &f_int },
    { .name = "codes", .type = AIGW_FT_ARRAY, .elements = &f_int_split },
    { .name = "headers", .type = AIGW_FT_MAP, .elements = &f_str },
    { .name = "limits", .type = AIGW_FT_RECORD, .fields = limits_fields },
    { .name = "anything", .type = AIGW_FT_ANY },
    { .name = NULL },
};

typedef struct tctx {
    const aigw_field_t *fields;   /* the entity's */
    const char *plugin;           /* for `config.*` */
    int calls;
} tctx_t;

static const aigw_field_t *fields_of(const char *entity)
{
    if (strcmp(entity, "services") == 0)
        return services_fields;
    if (strcmp(entity, "consumers") == 0)
        return consumers_fields;
    return NULL;
}

static const aigw_field_t *plugin_config(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "acl") == 0)
        return acl_config;
    if (strcmp(name, "rate-limiting") == 0)
        return rate_limiting_config;
    if (strcmp(name, "oauth2") == 0)
        return oauth2_config;
    if (strcmp(name, "test") == 0)
        return test_config;
    return NULL;
}

static const aigw_field_t *lookup(const aigw_field_t *fields, const char *name)
{
    for (; fields && fields->name; fields++) {
        if (strcmp(fields->name, name) == 0)
            return fields;
    }
    return NULL;
}

/* As aigw_schema_field_path over the tables above. */
static const aigw_field_t *test_coerce(void *ud, const char *const *path, size_t depth)
{
    tctx_t *t = ud;
    const aigw_field_t *fields = t->fields, *f = NULL;
    size_t i;

    t->calls++;
    for (i = 0; i < depth; i++) {
        f = lookup(fields, path[i]);
        if (!f)
            return NULL;
        if (f->type == AIGW_FT_RECORD)
            fields = f->fields ? f->fields
                               : (strcmp(f->name, "config") == 0 ? plugin_config(t->plugin)
                                                                 : NULL);
        else if (f->type == AIGW_FT_FOREIGN)
            fields = fields_of(f->reference);
        else
            fields = NULL;
    }
    return f;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* Fails unless got equals the JSON text want (types included: 60 is not 60.0 or "60"). */
static void expect_json(json_t *got, const char *want)
{
    json_error_t je;
    json_t *w = json_loads(want, JSON_DECODE_ANY, &je);

    if (!w)
        fail_msg("bad expectation %s: %s", want, je.text);
    if (!got || !json_equal(got, w)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        char *e = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", g ? g : "(null)", e);
        free(g);
        free(e);
        json_decref(w);
        fail();
    }
    json_decref(w);
}

static const char *const CT_FORM = "application/x-www-form-urlencoded";
static const char *const CT_JSON = "application/json";

/* Decodes a form body (coerced with entity fields and plugin) and checks the result. */
static void form_is(const aigw_field_t *fields, const char *plugin, const char *body,
                    const char *want)
{
    tctx_t t = { .fields = fields, .plugin = plugin };
    char err[128] = "";
    json_t *out = NULL;
    int rc = aigw_decode_body(AIGW_BODY_FORM, CT_FORM, strlen(CT_FORM), body, strlen(body),
                              fields ? test_coerce : NULL, &t, &out, err, sizeof err);

    if (rc != AIGW_DECODE_OK)
        fail_msg("form %s: rc %d: %s", body, rc, err);
    expect_json(out, want);
    json_decref(out);
}

static void form_fails(const char *body, const char *msg)
{
    tctx_t t = { .fields = routes_fields };
    char err[128] = "";
    json_t *out = (json_t *)1;
    int rc = aigw_decode_body(AIGW_BODY_FORM, CT_FORM, strlen(CT_FORM), body, strlen(body),
                              test_coerce, &t, &out, err, sizeof err);

    assert_int_equal(rc, AIGW_DECODE_EBAD);
    assert_null(out);
    assert_string_equal(err, msg);
}

static void query_is(unsigned flags, const aigw_field_t *fields, const char *q,
                     const char *want)
{
    tctx_t t = { .fields = fields };
    char err[128] = "";
    json_t *out = NULL;
    int rc = aigw_decode_query(q, strlen(q), flags, fields ? test_coerce : NULL, &t, &out,
                               err, sizeof err);

    if (rc != AIGW_DECODE_OK)
        fail_msg("query %s: rc %d: %s", q, rc, err);
    expect_json(out, want);
    json_decref(out);
}

static int json_rc(const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
    return aigw_decode_body(AIGW_BODY_JSON, CT_JSON, strlen(CT_JSON), body, len, NULL, NULL,
                            out, err, errlen);
}

static void json_fails(const char *body, size_t len)
{
    char err[128] = "";
    json_t *out = (json_t *)1;

    assert_int_equal(json_rc(body, len, &out, err, sizeof err), AIGW_DECODE_EBAD);
    assert_null(out);
    assert_string_equal(err, "Cannot parse JSON body");
}

#define JSON_FAILS(lit) json_fails(lit, sizeof(lit) - 1)

/* ---- Content-Type (415) ------------------------------------------------------------------- */

static int kind_of(const char *ct, size_t body_len, int yaml, aigw_body_kind_t *k)
{
    return aigw_decode_kind(ct, ct ? strlen(ct) : 0, body_len, yaml, k);
}

static void test_kind(void **state)
{
    aigw_body_kind_t k = (aigw_body_kind_t)99;
    (void)state;

    assert_int_equal(kind_of(NULL, 0, 0, &k), 0);
    assert_int_equal(k, AIGW_BODY_NONE);
    assert_int_equal(kind_of(NULL, 5, 0, &k), -1); /* a body without Content-Type: 415 */
    assert_int_equal(kind_of("application/json", 2, 0, &k), 0);
    assert_int_equal(k, AIGW_BODY_JSON);
    assert_int_equal(kind_of("application/json; charset=utf-8", 0, 0, &k), 0);
    assert_int_equal(k, AIGW_BODY_JSON);
    assert_int_equal(kind_of("application/x-www-form-urlencoded", 10, 0, &k), 0);
    assert_int_equal(k, AIGW_BODY_FORM);
    assert_int_equal(kind_of("application/x-www-form-urlencoded; charset=UTF-8", 10, 0, &k), 0);
    assert_int_equal(k, AIGW_BODY_FORM);
    assert_int_equal(kind_of("multipart/form-data; boundary=------x", 10, 0, &k), 0);
    assert_int_equal(k, AIGW_BODY_MULTIPART);
    /* Anything else is a 415, even without a body; the match is case-sensitive (Kong). */
    assert_int_equal(kind_of("text/plain", 10, 0, &k), -1);
    assert_int_equal(kind_of("text/plain", 0, 0, &k), -1);
    assert_int_equal(kind_of("", 0, 0, &k), -1);
    assert_int_equal(kind_of("Application/JSON", 2, 0, &k), -1);
    assert_int_equal(kind_of("application/xml", 2, 0, &k), -1);
    assert_int_equal(kind_of("application/js", 2, 0, &k), -1);
    /* YAML only where allowed (/config). */
    assert_int_equal(kind_of("application/yaml", 2, 0, &k), -1);
    assert_int_equal(kind_of("text/yaml", 2, 0, &k), -1);
    assert_int_equal(kind_of("application/yaml", 2, 1, &k), 0);
    assert_int_equal(k, AIGW_BODY_YAML);
    assert_int_equal(kind_of("text/yaml; charset=utf-8", 2, 1, &k), 0);
    assert_int_equal(k, AIGW_BODY_YAML);
    assert_int_equal(kind_of("application/json", 2, 1, &k), 0);
    assert_int_equal(k, AIGW_BODY_JSON);
    /* The length given is respected (the value need not be NUL-terminated). */
    assert_int_equal(aigw_decode_kind("application/jsonXX", 11, 2, 0, &k), -1);
}

/* ---- JSON --------------------------------------------------------------------------------- */

static void test_json(void **state)
{
    const char *b = "{\"name\":\"ai-orchestrator\",\"retries\":\"5\",\"port\":5000,"
                    "\"config\":{\"minute\":\"60\"},\"paths\":\"/x\",\"x\":\"\"}";
    char err[128] = "";
    json_t *out = NULL;
    (void)state;

    /* As is: no coercion even with a callback. */
    assert_int_equal(aigw_decode_body(AIGW_BODY_JSON, CT_JSON, strlen(CT_JSON), b, strlen(b),
                                      test_coerce, &(tctx_t){ .fields = services_fields },
                                      &out, err, sizeof err),
                     AIGW_DECODE_OK);
    expect_json(out, b);
    json_decref(out);

    /* [] is {} (cjson cannot tell them apart). */
    assert_int_equal(json_rc("[]", 2, &out, err, sizeof err), AIGW_DECODE_OK);
    expect_json(out, "{}");
    json_decref(out);
    assert_int_equal(json_rc(" { } \n", 6, &out, err, sizeof err), AIGW_DECODE_OK);
    expect_json(out, "{}");
    json_decref(out);
    /* UTF-8 passes. */
    assert_int_equal(json_rc("{\"name\":\"caf\xc3\xa9\"}", 16, &out, err, sizeof err),
                     AIGW_DECODE_OK);
    expect_json(out, "{\"name\":\"caf\\u00e9\"}");
    json_decref(out);

    JSON_FAILS("");
    JSON_FAILS("   ");
    JSON_FAILS("{");
    JSON_FAILS("{\"name\":}");
    JSON_FAILS("name=x");
    JSON_FAILS("{\"a\":1} x");
    JSON_FAILS("{\"a\":1,\"a\":2}");       /* duplicate keys */
    JSON_FAILS("{\"a\":\"\xff\"}");          /* invalid UTF-8 */
    JSON_FAILS("{\"a\":\"\\u0000\"}");      /* NUL */
    JSON_FAILS("{\"a\":\"x\0\"}");           /* raw NUL */
    JSON_FAILS("[1]");                       /* not an object */
    JSON_FAILS("[{\"name\":\"x\"}]");
    JSON_FAILS("5");
    JSON_FAILS("\"x\"");
    JSON_FAILS("null");
    JSON_FAILS("true");
    json_fails(NULL, 0);
}

/* ---- the seed tutorials' bodies (curl -d) ------------------------------------------------- */

static void test_seed_bodies(void **state)
{
    (void)state;

    form_is(services_fields, NULL, "name=ai-orchestrator&url=http%3A%2F%2Fai-orchestrator%3A5000",
            "{\"name\":\"ai-orchestrator\",\"url\":\"http://ai-orchestrator:5000\"}");
    form_is(routes_fields, NULL, "paths[]=/ai-workflow", "{\"paths\":[\"/ai-workflow\"]}");
    form_is(plugins_fields, "jwt", "name=jwt", "{\"name\":\"jwt\"}");
    form_is(consumers_fields, NULL, "username=ai-client-app", "{\"username\":\"ai-client-app\"}");
    form_is(acls_fields, NULL, "group=ai-operator", "{\"group\":\"ai-operator\"}");
    form_is(plugins_fields, "acl", "name=acl&config.whitelist=ai-operator,ai-admin",
            "{\"name\":\"acl\",\"config\":{\"whitelist\":[\"ai-operator\",\"ai-admin\"]}}");
    form_is(plugins_fields, "rate-limiting",
            "name=rate-limiting&config.minute=60&config.policy=local",
            "{\"name\":\"rate-limiting\",\"config\":{\"minute\":60,\"policy\":\"local\"}}");
    form_is(plugins_fields, "oauth2",
            "name=oauth2&config.scopes=ai:read,ai:write&config.mandatory_scope=true"
            "&config.enable_client_credentials=true",
            "{\"name\":\"oauth2\",\"config\":{\"scopes\":[\"ai:read\",\"ai:write\"],"
            "\"mandatory_scope\":true,\"enable_client_credentials\":true}}");
    form_is(routes_fields, NULL, "service.name=agent-service&paths[]=/agent",
            "{\"service\":{\"name\":\"agent-service\"},\"paths\":[\"/agent\"]}");
    /* curl -d joins several -d with '&'; `--data-urlencode` encodes ':' and ','. */
    form_is(plugins_fields, "oauth2", "name=oauth2&config.scopes=ai%3Aread%2Cai%3Awrite",
            "{\"name\":\"oauth2\",\"config\":{\"scopes\":[\"ai:read\",\"ai:write\"]}}");
}

/* Without a schema: strings, and arrays only from the key syntax. */
static void test_no_schema(void **state)
{
    (void)state;

    form_is(NULL, NULL, "name=rate-limiting&config.minute=60&config.policy=local",
            "{\"name\":\"rate-limiting\",\"config\":{\"minute\":\"60\",\"policy\":\"local\"}}");
    form_is(NULL, NULL, "paths=/a&name=&enabled", "{\"paths\":\"/a\",\"name\":\"\",\"enabled\":true}");
    form_is(NULL, NULL, "paths[]=/a", "{\"paths\":[\"/a\"]}");
    form_is(NULL, NULL, "config.whitelist=a,b", "{\"config\":{\"whitelist\":\"a,b\"}}");
    form_is(NULL, NULL, "", "{}");
}

/* The plugin's config schema depends on `name`: decode, read it, then coerce. */
static void test_two_step(void **state)
{
    const char *b = "config.minute=60&name=rate-limiting&config.second=1.5&config.hour=2";
    tctx_t t = { .fields = plugins_fields };
    char err[128] = "";
    json_t *out = NULL, *copy;
    const char *want = "{\"name\":\"rate-limiting\",\"config\":{\"minute\":60,\"second\":1.5,"
                       "\"hour\":2}}";
    (void)state;

    assert_int_equal(aigw_decode_body(AIGW_BODY_FORM, CT_FORM, strlen(CT_FORM), b, strlen(b),
                                      NULL, NULL, &out, err, sizeof err),
                     AIGW_DECODE_OK);
    expect_json(out, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":\"60\",\"second\":"
                     "\"1.5\",\"hour\":\"2\"}}");
    t.plugin = json_string_value(json_object_get(out, "name"));
    assert_int_equal(aigw_decode_coerce(out, test_coerce, &t, err, sizeof err), AIGW_DECODE_OK);
    expect_json(out, want);
    /* Coercing again changes nothing. */
    copy = json_deep_copy(out);
    assert_int_equal(aigw_decode_coerce(out, test_coerce, &t, err, sizeof err), AIGW_DECODE_OK);
    assert_true(json_equal(out, copy));
    json_decref(copy);
    json_decref(out);

    /* Unknown plugin: config stays strings. */
    form_is(plugins_fields, "nope", "name=nope&config.minute=60",
            "{\"name\":\"nope\",\"config\":{\"minute\":\"60\"}}");
}

/* ---- arrays, maps, nesting ---------------------------------------------------------------- */

static void test_arrays(void **state)
{
    (void)state;

    form_is(routes_fields, NULL, "paths=/a&paths=/b", "{\"paths\":[\"/a\",\"/b\"]}");
    form_is(routes_fields, NULL, "paths[]=/a&paths[]=/b", "{\"paths\":[\"/a\",\"/b\"]}");
    form_is(routes_fields, NULL, "paths[1]=/a&paths[2]=/b", "{\"paths\":[\"/a\",\"/b\"]}");
    form_is(routes_fields, NULL, "paths[2]=/b&paths[1]=/a", "{\"paths\":[\"/a\",\"/b\"]}");
    form_is(routes_fields, NULL, "paths[10]=/c&paths[2]=/b&paths[1]=/a",
            "{\"paths\":[\"/a\",\"/b\",\"/c\"]}");
    form_is(routes_fields, NULL, "paths=/x", "{\"paths\":[\"/x\"]}");
    form_is(routes_fields, NULL, "methods=GET", "{\"methods\":[\"GET\"]}");
    form_is(routes_fields, NULL, "paths=/a&paths[]=/b", "{\"paths\":[\"/a\",\"/b\"]}");
    form_is(routes_fields, NULL, "paths[]=/a&paths=/b", "{\"paths\":[\"/a\",\"/b\"]}");
    form_is(routes_fields, NULL, "paths%5B%5D=/a&paths%5B%5D=/b", "{\"paths\":[\"/a\",\"/b\"]}");
    /* Entity lists are never split on commas. */
    form_is(routes_fields, NULL, "paths=/a,/b&hosts=a.test,b.test",
            "{\"paths\":[\"/a,/b\"],\"hosts\":[\"a.test,b.test\"]}");
    /* Empty: clears (null), also as an element. */
    form_is(routes_fields, NULL, "paths=", "{\"paths\":null}");
    form_is(routes_fields, NULL, "paths[]=", "{\"paths\":[null]}");
    /* A repeated scalar becomes an array, which validation rejects. */
    form_is(routes_fields, NULL, "name=a&name=b", "{\"name\":[\"a\",\"b\"]}");
    /* Elements are coerced: arrays of integers. */
    form_is(plugins_fields, "test", "config.status_codes[]=200&config.status_codes[]=404",
            "{\"config\":{\"status_codes\":[200,404]}}");
    form_is(plugins_fields, "test", "config.status_codes=200",
            "{\"config\":{\"status_codes\":[200]}}");
    form_is(plugins_fields, "test", "config.status_codes[2]=404&config.status_codes[1]=x",
            "{\"config\":{\"status_codes\":[\"x\",404]}}");
    /* Records inside arrays: by index, members coerced by the element's fields. */
    form_is(routes_fields, NULL,
            "sources[1].ip=10.0.0.1&sources[1].port=80&sources[2].ip=10.0.0.2",
            "{\"sources\":[{\"ip\":\"10.0.0.1\",\"port\":80},{\"ip\":\"10.0.0.2\"}]}");
    form_is(routes_fields, NULL, "sources[2].port=81&sources[1].port=80",
            "{\"sources\":[{\"port\":80},{\"port\":81}]}");
    form_is(routes_fields, NULL, "sources[].ip=10.0.0.1&sources[].port=80",
            "{\"sources\":[{\"ip\":\"10.0.0.1\",\"port\":80}]}");
    /* Huge indexes only order. */
    form_is(routes_fields, NULL, "paths[99999999999999999999]=/b&paths[4294967293]=/a",
            "{\"paths\":[\"/a\",\"/b\"]}");
    /* Both saturate: arrival order. */
    form_is(routes_fields, NULL, "paths[99999999999999999999]=/b&paths[4294967295]=/a",
            "{\"paths\":[\"/b\",\"/a\"]}");
}

static void test_split_commas(void **state)
{
    (void)state;

    form_is(plugins_fields, "acl", "config.allow=a,b&config.allow=c",
            "{\"config\":{\"allow\":[\"a\",\"b\",\"c\"]}}");
    form_is(plugins_fields, "acl", "config.allow=+a+,+b+,,c,",
            "{\"config\":{\"allow\":[\"a\",\"b\",\"c\"]}}");
    form_is(plugins_fields, "acl", "config.allow[]=a,b&config.allow[]=c",
            "{\"config\":{\"allow\":[\"a\",\"b\",\"c\"]}}");
    form_is(plugins_fields, "acl", "config.allow=solo", "{\"config\":{\"allow\":[\"solo\"]}}");
    form_is(plugins_fields, "acl", "config.allow=", "{\"config\":{\"allow\":null}}");
    form_is(plugins_fields, "acl", "config.allow=,", "{\"config\":{\"allow\":[]}}");
    /* The flag on the element field works too, and pieces are coerced. */
    form_is(plugins_fields, "test", "config.codes=200,+404", "{\"config\":{\"codes\":[200,404]}}");

    /* At most 1000 elements from splitting, in all: one arg cannot make millions. */
    {
        char *b = malloc(64 + 2 * 1001);
        size_t o, i;
        tctx_t t = { .fields = plugins_fields, .plugin = "acl" };
        char err[128] = "";
        json_t *out = (json_t *)1;

        assert_non_null(b);
        o = (size_t)snprintf(b, 64, "config.allow=");
        for (i = 0; i < 1000; i++) {
            memcpy(b + o, "a,", 2);
            o += 2;
        }
        b[o] = '\0';
        assert_int_equal(aigw_decode_body(AIGW_BODY_FORM, CT_FORM, strlen(CT_FORM), b, o,
                                          test_coerce, &t, &out, err, sizeof err),
                         AIGW_DECODE_OK);
        assert_int_equal(json_array_size(json_object_get(json_object_get(out, "config"),
                                                         "allow")),
                         1000);
        json_decref(out);
        memcpy(b + o, "a", 2);
        assert_int_equal(aigw_decode_body(AIGW_BODY_FORM, CT_FORM, strlen(CT_FORM), b, o + 1,
                                          test_coerce, &t, &out, err, sizeof err),
                         AIGW_DECODE_EBAD);
        assert_null(out);
        assert_string_equal(err, "Too many arguments");
        free(b);
    }
}

static void test_maps(void **state)
{
    (void)state;

    form_is(routes_fields, NULL, "headers[x-foo]=bar", "{\"headers\":{\"x-foo\":[\"bar\"]}}");
    form_is(routes_fields, NULL, "headers.x-foo=bar", "{\"headers\":{\"x-foo\":[\"bar\"]}}");
    form_is(routes_fields, NULL, "headers[x-foo]=a&headers[x-foo]=b&headers[x-bar]=c",
            "{\"headers\":{\"x-foo\":[\"a\",\"b\"],\"x-bar\":[\"c\"]}}");
    form_is(routes_fields, NULL, "headers[x-foo][]=a&headers[x-foo][]=b",
            "{\"headers\":{\"x-foo\":[\"a\",\"b\"]}}");
    /* A bracketed map key keeps its dots. */
    form_is(routes_fields, NULL, "headers[x.y]=1", "{\"headers\":{\"x.y\":[\"1\"]}}");
    form_is(plugins_fields, "test", "config.headers.X-Foo=1&config.headers[X-Bar]=",
            "{\"config\":{\"headers\":{\"X-Foo\":\"1\",\"X-Bar\":null}}}");
    form_is(plugins_fields, "test", "config.limits.n=5&config.limits.zzz=5",
            "{\"config\":{\"limits\":{\"n\":5,\"zzz\":\"5\"}}}");
    form_is(plugins_fields, "test", "config.anything.a=1&config.anything.b=",
            "{\"config\":{\"anything\":{\"a\":\"1\",\"b\":\"\"}}}");
    form_is(services_fields, NULL, "a.b.c.d=1", "{\"a\":{\"b\":{\"c\":{\"d\":\"1\"}}}}");
    form_is(routes_fields, NULL, "service.id=7b7e2b1c-0000-4000-8000-000000000001",
            "{\"service\":{\"id\":\"7b7e2b1c-0000-4000-8000-000000000001\"}}");
    /* `paths[x]` is an object, not an array: left for validation. */
    form_is(routes_fields, NULL, "paths[x]=1", "{\"paths\":{\"x\":\"1\"}}");
}

static void test_coercion(void **state)
{
    (void)state;

    form_is(services_fields, NULL, "retries=5&port=8080", "{\"retries\":5,\"port\":8080}");
    form_is(services_fields, NULL, "retries=abc", "{\"retries\":\"abc\"}");
    form_is(services_fields, NULL, "retries=60.5", "{\"retries\":60.5}");
    form_is(services_fields, NULL, "retries=60.0", "{\"retries\":60}");
    form_is(services_fields, NULL, "retries=1e3", "{\"retries\":1000}");
    form_is(services_fields, NULL, "retries=+42+", "{\"retries\":42}");   /* " 42 " */
    form_is(services_fields, NULL, "retries=-7", "{\"retries\":-7}");
    form_is(services_fields, NULL, "retries=0x10", "{\"retries\":\"0x10\"}");
    form_is(services_fields, NULL, "retries=inf", "{\"retries\":\"inf\"}");
    form_is(services_fields, NULL, "retries=nan", "{\"retries\":\"nan\"}");
    form_is(services_fields, NULL, "retries=1e400", "{\"retries\":\"1e400\"}");
    form_is(services_fields, NULL, "retries=5x", "{\"retries\":\"5x\"}");
    form_is(services_fields, NULL, "retries=.", "{\"retries\":\".\"}");
    form_is(services_fields, NULL, "retries=1e", "{\"retries\":\"1e\"}");
    form_is(services_fields, NULL, "retries=99999999999999999999",
            "{\"retries\":1e20}");
    form_is(services_fields, NULL, "retries=", "{\"retries\":null}");
    form_is(services_fields, NULL, "retries", "{\"retries\":true}");
    form_is(plugins_fields, "rate-limiting", "config.second=.5&config.hour=3.",
            "{\"config\":{\"second\":0.5,\"hour\":3.0}}");
    form_is(plugins_fields, "oauth2", "config.token_expiration=7200",
            "{\"config\":{\"token_expiration\":7200}}");
    form_is(services_fields, NULL, "enabled=true&tls_verify=false",
            "{\"enabled\":true,\"tls_verify\":false}");
    form_is(services_fields, NULL, "enabled=TRUE&tls_verify=1",
            "{\"enabled\":\"TRUE\",\"tls_verify\":\"1\"}");
    form_is(services_fields, NULL, "enabled", "{\"enabled\":true}");
    form_is(services_fields, NULL, "enabled=", "{\"enabled\":null}");
    /* Empty clears any field; unknown fields are left alone. */
    form_is(services_fields, NULL, "name=&host=", "{\"name\":null,\"host\":null}");
    form_is(services_fields, NULL, "nosuch=&other=5", "{\"nosuch\":\"\",\"other\":\"5\"}");
    form_is(services_fields, NULL, "tags=a&tags=b", "{\"tags\":[\"a\",\"b\"]}");
    form_is(services_fields, NULL, "tags=a,b", "{\"tags\":[\"a,b\"]}");
}

static void test_keys_and_encoding(void **state)
{
    (void)state;

    form_is(NULL, NULL, "a=x+y&b=%2B&c=%zz&d=%4&e=100%", "{\"a\":\"x y\",\"b\":\"+\",\"c\":\"%zz\","
                                                      "\"d\":\"%4\",\"e\":\"100%\"}");
    form_is(NULL, NULL, "name=caf%C3%A9&k%C3%A9y=1", "{\"name\":\"caf\\u00e9\",\"k\\u00e9y\":\"1\"}");
    form_is(NULL, NULL, "=x&&a=1&", "{\"a\":\"1\"}");
    form_is(NULL, NULL, "a=1=2", "{\"a\":\"1=2\"}");
    /* Keys outside the syntax are literal. */
    form_is(NULL, NULL, ".a=1&b.=2&c..d=3&e[f=4&g[h]i=5&[x]=6",
            "{\".a\":\"1\",\"b.\":\"2\",\"c..d\":\"3\",\"e[f\":\"4\",\"g[h]i\":\"5\",\"[x]\":\"6\"}");
    form_is(NULL, NULL, "a]b=1", "{\"a]b\":\"1\"}");
    /* Shape conflicts: the later arg wins. */
    form_is(NULL, NULL, "a=1&a.b=2", "{\"a\":{\"b\":\"2\"}}");
    form_is(NULL, NULL, "a.b=2&a=1", "{\"a\":\"1\"}");
    form_is(NULL, NULL, "a[]=1&a.b=2", "{\"a\":{\"b\":\"2\"}}");
    form_is(NULL, NULL, "a.b=1&a[]=2", "{\"a\":[\"2\"]}");
    /* 32 segments is the most. */
    {
        char key[80], want[300];
        size_t k, o = 0, w = 0;
        for (k = 0; k < 31; k++) {
            memcpy(key + o, "a.", 2);
            o += 2;
            memcpy(want + w, "{\"a\":", 5);
            w += 5;
        }
        memcpy(key + o, "b=1", 4);
        memcpy(want + w, "{\"b\":\"1\"}", 9);
        w += 9;
        for (k = 0; k < 31; k++)
            want[w++] = '}';
        want[w] = '\0';
        form_is(NULL, NULL, key, want);
    }
}

static void test_errors(void **state)
{
    char *big = malloc(1001 * 4 + 1);
    size_t i, o = 0;
    (void)state;

    assert_non_null(big);
    for (i = 0; i < 1001; i++) {
        memcpy(big + o, i ? "&a=1" : "a=1", i ? 4 : 3);
        o += i ? 4 : 3;
    }
    big[o] = '\0';
    form_fails(big, "Too many arguments");
    /* 1000 is fine (and a repeated key makes an array of 1000). */
    big[o - 4] = '\0';
    {
        json_t *out = NULL;
        char err[128];
        assert_int_equal(aigw_decode_body(AIGW_BODY_FORM, CT_FORM, strlen(CT_FORM), big,
                                          strlen(big), NULL, NULL, &out, err, sizeof err),
                         AIGW_DECODE_OK);
        assert_int_equal(json_array_size(json_object_get(out, "a")), 1000);
        json_decref(out);
    }
    /* The count comes first, as in Kong. */
    memcpy(big, "a=\xff", 3);
    big[o - 4] = '&';
    form_fails(big, "Too many arguments");
    free(big);

    form_fails("name=%FF", "Cannot parse arguments: invalid UTF-8");
    form_fails("name=\xff", "Cannot parse arguments: invalid UTF-8");
    form_fails("name=%C0%AF", "Cannot parse arguments: invalid UTF-8");  /* overlong */
    form_fails("name=%ED%A0%80", "Cannot parse arguments: invalid UTF-8"); /* surrogate */
    form_fails("name=%F4%90%80%80", "Cannot parse arguments: invalid UTF-8");
    form_fails("name=%E2%82", "Cannot parse arguments: invalid UTF-8");  /* truncated */
    form_fails("name=a%00b", "Cannot parse arguments: invalid UTF-8");
    form_fails("na%FFme=x", "Cannot parse arguments: invalid UTF-8");
    form_fails("n%00=x", "Cannot parse arguments: invalid UTF-8");
    form_fails("a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.b=1",
               "Cannot parse arguments: keys nested too deeply");
    form_fails("a[][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][]=1",
               "Cannot parse arguments: keys nested too deeply");

    {
        json_t *out = (json_t *)1;
        char err[128] = "";
        assert_int_equal(aigw_decode_body(AIGW_BODY_YAML, "text/yaml", 9, "a: 1", 4, NULL, NULL,
                                          &out, err, sizeof err),
                         AIGW_DECODE_EBAD);
        assert_null(out);
        assert_int_equal(aigw_decode_body(AIGW_BODY_NONE, NULL, 0, NULL, 0, NULL, NULL, &out,
                                          err, sizeof err),
                         AIGW_DECODE_OK);
        expect_json(out, "{}");
        json_decref(out);
    }
}

/* ---- multipart ---------------------------------------------------------------------------- */

static int mp(const char *ct, const char *body, size_t len, const aigw_field_t *fields,
              const char *plugin, json_t **out, char *err, size_t errlen)
{
    tctx_t t = { .fields = fields, .plugin = plugin };
    *out = (json_t *)1;
    return aigw_decode_body(AIGW_BODY_MULTIPART, ct, strlen(ct), body, len,
                            fields ? test_coerce : NULL, &t, out, err, errlen);
}

static void mp_is(const char *ct, const char *body, const aigw_field_t *fields,
                  const char *plugin, const char *want)
{
    char err[128] = "";
    json_t *out;
    int rc = mp(ct, body, strlen(body), fields, plugin, &out, err, sizeof err);

    if (rc != AIGW_DECODE_OK)
        fail_msg("multipart: rc %d: %s", rc, err);
    expect_json(out, want);
    json_decref(out);
}

static void mp_fails(const char *ct, const char *body, size_t len, const char *msg)
{
    char err[128] = "";
    json_t *out;

    assert_int_equal(mp(ct, body, len, routes_fields, NULL, &out, err, sizeof err),
                     AIGW_DECODE_EBAD);
    assert_null(out);
    assert_string_equal(err, msg);
}

#define MP_FAILS(ct, lit, msg) mp_fails(ct, lit, sizeof(lit) - 1, msg)
#define CT_MP "multipart/form-data; boundary=------------------------d74496d66958873e"
#define B "--------------------------d74496d66958873e"

static void test_multipart(void **state)
{
    /* As curl -F sends it. */
    const char *seed = B "\r\n"
                       "Content-Disposition: form-data; name=\"service.name\"\r\n"
                       "\r\n"
                       "agent-service\r\n" B "\r\n"
                       "Content-Disposition: form-data; name=\"paths[]\"\r\n"
                       "\r\n"
                       "/agent\r\n" B "--\r\n";
    const char *plugin = B "\r\n"
                         "Content-Disposition: form-data; name=\"name\"\r\n\r\n"
                         "rate-limiting\r\n" B "\r\n"
                         "content-disposition: form-data; name=\"config.minute\"\r\n"
                         "Content-Type: text/plain\r\n\r\n"
                         "60\r\n" B "\r\n"
                         "Content-Disposition: form-data; name=config.policy\r\n\r\n"
                         "local\r\n" B "\r\n"
                         "Content-Disposition: form-data; name=\"config.fault_tolerant\"\r\n\r\n"
                         "\r\n" B "--";
    const char *file = "preamble\r\n--xyz\r\n"
                       "Content-Disposition: form-data; name=\"cert\"; filename=\"c.pem\"\r\n"
                       "Content-Type: application/x-x509-ca-cert\r\n\r\n"
                       "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\n"
                       "\r\n--xyz\r\n"
                       "Content-Disposition: form-data; filename=\"x\"; name=\"key\"\r\n\r\n"
                       "k\r\n--xyz\r\n"
                       "Content-Disposition: form-data; name=\"tags\"\r\n\r\na\r\n--xyz\r\n"
                       "Content-Disposition: form-data; name=\"tags\"\r\n\r\nb\r\n--xyz\r\n"
                       "Content-Disposition: form-data\r\n\r\nno name\r\n--xyz\r\n"
                       "Content-Disposition: form-data; name*=UTF-8''k%C3%A9y; name=\"x\"\r\n"
                       "\r\nv\r\n--xyz\r\n"
                       "Content-Disposition: form-data; name=\"q\\\"uote\"\r\n\r\n"
                       "line1\r\nline2\r\n--xyz--\r\nepilogue";
    (void)state;

    mp_is(CT_MP, seed, routes_fields, NULL,
          "{\"service\":{\"name\":\"agent-service\"},\"paths\":[\"/agent\"]}");
    mp_is(CT_MP, plugin, plugins_fields, "rate-limiting",
          "{\"name\":\"rate-limiting\",\"config\":{\"minute\":60,\"policy\":\"local\","
          "\"fault_tolerant\":null}}");
    mp_is("multipart/form-data; charset=utf-8; boundary=\"xyz\"", file, services_fields, NULL,
          "{\"cert\":\"-----BEGIN CERTIFICATE-----\\r\\nMIIB\\r\\n-----END CERTIFICATE-----\\n\","
          "\"key\":\"k\",\"tags\":[\"a\",\"b\"],\"k\\u00e9y\":\"v\",\"q\\\"uote\":\"line1\\r\\nline2\"}");
    mp_is("multipart/form-data;boundary=xyz", "--xyz--", NULL, NULL, "{}");
    mp_is("multipart/form-data; BOUNDARY='xyz' ; x=y", "--xyz\r\n\r\nnameless\r\n--xyz--",
          NULL, NULL, "{}");
    mp_is("multipart/form-data", "", NULL, NULL, "{}");
    mp_is(CT_MP, B "\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\n\r\n" B "--", NULL,
          NULL, "{\"acl\":\"\"}");
    mp_is("multipart/form-data; boundary=xyz",
          "--xyz  \r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--",
          NULL, NULL, "{\"a\":\"1\"}");
    mp_is("multipart/form-data; boundary=xyz",
          "--xyz\r\nContent-Disposition: form-data; name=\"config.whitelist\"\r\n\r\n"
          "ai-operator,ai-admin\r\n--xyz\r\nContent-Disposition: form-data; name=name\r\n\r\n"
          "acl\r\n--xyz--",
          plugins_fields, "acl",
          "{\"name\":\"acl\",\"config\":{\"whitelist\":[\"ai-operator\",\"ai-admin\"]}}");

    MP_FAILS("multipart/form-data", "--xyz\r\n\r\nx\r\n--xyz--", "Cannot parse multipart body");
    MP_FAILS("multipart/form-data; boundary=", "--\r\n\r\nx\r\n----", "Cannot parse multipart body");
    MP_FAILS("multipart/form-data; boundary=abc", "--xyz\r\n\r\nx\r\n--xyz--", "Cannot parse multipart body");
    MP_FAILS("multipart/form-data; boundary=xyz", "--xyz\r\n\r\nunterminated", "Cannot parse multipart body");
    MP_FAILS("multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: x", "Cannot parse multipart body");
    MP_FAILS("multipart/form-data; boundary=xyz", "--xyzjunk\r\n\r\nx\r\n--xyz--", "Cannot parse multipart body");
    MP_FAILS("multipart/form-data; boundary=xyz",
             "--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--xyz--",
             "Cannot parse arguments: invalid UTF-8");
    MP_FAILS("multipart/form-data; boundary=xyz",
             "--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\0y\r\n--xyz--",
             "Cannot parse arguments: invalid UTF-8");
}

static void test_multipart_too_many(void **state)
{
    const char *part = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
    size_t pl = strlen(part), i, o = 0;
    char *body = malloc(pl * 1001 + 8);
    (void)state;

    assert_non_null(body);
    for (i = 0; i < 1001; i++) {
        memcpy(body + o, part, pl);
        o += pl;
    }
    memcpy(body + o, "--b--", 5);
    o += 5;
    mp_fails("multipart/form-data; boundary=b", body, o, "Too many arguments");
    {
        json_t *out;
        char err[128];
        assert_int_equal(mp("multipart/form-data; boundary=b", body + pl, o - pl, NULL, NULL,
                            &out, err, sizeof err),
                         AIGW_DECODE_OK);
        assert_int_equal(json_array_size(json_object_get(out, "a")), 1000);
        json_decref(out);
    }
    free(body);
}

/* ---- query strings ------------------------------------------------------------------------ */

static void test_query(void **state)
{
    char err[128];
    json_t *out;
    (void)state;

    query_is(0, NULL, "size=10&offset=abc%3D&tags=a,b",
             "{\"size\":\"10\",\"offset\":\"abc=\",\"tags\":\"a,b\"}");
    query_is(0, consumers_fields, "custom_id=", "{\"custom_id\":null}");
    query_is(0, NULL, "custom_id=", "{\"custom_id\":\"\"}");
    query_is(0, routes_fields, "name=x&paths[]=/a", "{\"name\":\"x\",\"paths\":[\"/a\"]}");
    /* Map brackets only on POST/PUT/PATCH; arrays always. */
    query_is(0, NULL, "headers[x]=1", "{\"headers\":{\"x\":\"1\"}}");
    query_is(AIGW_DECODE_NO_MAPS, NULL, "headers[x]=1&a[]=2&b[3]=4&c.d=5",
             "{\"headers[x]\":\"1\",\"a\":[\"2\"],\"b\":[\"4\"],\"c\":{\"d\":\"5\"}}");
    query_is(0, NULL, "", "{}");
    query_is(0, NULL, "flag", "{\"flag\":true}");
    assert_int_equal(aigw_decode_query(NULL, 0, 0, NULL, NULL, &out, err, sizeof err),
                     AIGW_DECODE_OK);
    expect_json(out, "{}");
    json_decref(out);
    out = (json_t *)1;
    assert_int_equal(aigw_decode_query("a=%ff", 5, 0, NULL, NULL, &out, err, sizeof err),
                     AIGW_DECODE_EBAD);
    assert_null(out);
    assert_string_equal(err, "Cannot parse arguments: invalid UTF-8");
    /* Only len bytes are read. */
    assert_int_equal(aigw_decode_query("a=1&b=2", 3, 0, NULL, NULL, &out, err, sizeof err),
                     AIGW_DECODE_OK);
    expect_json(out, "{\"a\":\"1\"}");
    json_decref(out);
}

/* The callback is asked only where the tables cannot tell, and never with an index path. */
static void test_callback_paths(void **state)
{
    tctx_t t = { .fields = routes_fields };
    char err[128];
    json_t *out;
    const char *b = "paths[]=/a&sources[1].port=1&headers[a]=b&service.name=s";
    (void)state;

    assert_int_equal(aigw_decode_body(AIGW_BODY_FORM, CT_FORM, strlen(CT_FORM), b, strlen(b),
                                      test_coerce, &t, &out, err, sizeof err),
                     AIGW_DECODE_OK);
    /* paths, sources, headers, service, service.name */
    assert_int_equal(t.calls, 5);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_seed_bodies),
        cmocka_unit_test(test_no_schema),
        cmocka_unit_test(test_two_step),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_split_commas),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_coercion),
        cmocka_unit_test(test_keys_and_encoding),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_multipart_too_many),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_callback_paths),
    };
    return cmocka_run_group_tests_name("decode", tests, NULL, NULL);
}
