/* tests/unit/test_schema.c: the generic schema engine (validate.c, output.c, util.c) against
 * small tables of its own (group "schema_engine"), then (group "schema_plugins") the real
 * tables of schema/entities.c and schema/plugins/: the plugins entity with rate-limiting and
 * acl, and a route's foreign service. Expected values are Kong 3.9.3's (kong/db/schema/init.lua,
 * kong/db/errors.lua, the admin API specs quoted at each test).
 *
 * Run one group with `test_schema engine` or `test_schema plugins`; no argument runs both. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/schema.h"

/* ---- test tables ------------------------------------------------------------------------------ */

static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const modes[] = {"fast", "slow", NULL};
static const char *const sizes[] = {"1", "2", "4", NULL};

static const aigw_field_t str_el = {.type = AIGW_FT_STRING};
static const aigw_field_t int_el = {.type = AIGW_FT_INTEGER};
static const aigw_field_t color_el = {.type = AIGW_FT_STRING, .one_of = colors};

static const aigw_field_t opts_fields[] = {
    {.name = "level", .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_BETWEEN, .dflt = "1", .min = 1, .max = 9},
    {.name = "mode", .type = AIGW_FT_STRING, .dflt = "\"fast\"", .one_of = modes},
    {.name = "size", .type = AIGW_FT_INTEGER, .one_of = sizes},
    {0},
};

static const aigw_field_t tls_fields[] = {
    {.name = "verify", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "true"},
    {.name = "depth", .type = AIGW_FT_INTEGER},
    {0},
};

static const aigw_field_t backend_fields[] = {
    {.name = "host", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED},
    {.name = "port", .type = AIGW_FT_INTEGER, .flags = AIGW_F_REQUIRED | AIGW_F_HAS_BETWEEN,
     .dflt = "6379", .min = 0, .max = 65535},
    {.name = "timeout", .type = AIGW_FT_INTEGER, .dflt = "2000"},
    {.name = "tls", .type = AIGW_FT_RECORD, .fields = tls_fields},
    {0},
};

static const aigw_field_t pair_fields[] = {
    {.name = "ip", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED},
    {.name = "port", .type = AIGW_FT_INTEGER},
    {0},
};
static const aigw_field_t pair_el = {.type = AIGW_FT_RECORD, .fields = pair_fields};

static int even_length(const json_t *v, char *msg, size_t msglen)
{
    if (json_string_length(v) % 2 == 0)
        return 0;
    snprintf(msg, msglen, "must have an even length");
    return -1;
}

static const aigw_field_t widget_fields[] = {
    {.name = "id", .type = AIGW_FT_STRING, .flags = AIGW_F_UUID | AIGW_F_AUTO | AIGW_F_PK},
    {.name = "created_at", .type = AIGW_FT_INTEGER, .flags = AIGW_F_TIMESTAMP | AIGW_F_AUTO},
    {.name = "updated_at", .type = AIGW_FT_INTEGER, .flags = AIGW_F_TIMESTAMP | AIGW_F_AUTO},
    {.name = "name", .type = AIGW_FT_STRING, .flags = AIGW_F_UNIQUE | AIGW_F_NAME_CHARS},
    {.name = "host", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED},
    {.name = "port", .type = AIGW_FT_INTEGER, .flags = AIGW_F_REQUIRED | AIGW_F_HAS_BETWEEN,
     .dflt = "80", .min = 0, .max = 65535},
    {.name = "weight", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .min = 0},
    {.name = "ratio", .type = AIGW_FT_NUMBER, .dflt = "0.5"},
    {.name = "enabled", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "true"},
    {.name = "path", .type = AIGW_FT_STRING, .starts_with = "/"},
    {.name = "color", .type = AIGW_FT_STRING, .one_of = colors},
    {.name = "tags", .type = AIGW_FT_SET, .elements = &str_el},
    {.name = "codes", .type = AIGW_FT_ARRAY, .elements = &int_el, .flags = AIGW_F_LEN_MIN, .len_min = 1},
    {.name = "colors", .type = AIGW_FT_ARRAY, .elements = &color_el},
    {.name = "levels", .type = AIGW_FT_SET, .elements = &int_el},
    {.name = "headers", .type = AIGW_FT_MAP, .elements = &str_el},
    {.name = "opts", .type = AIGW_FT_RECORD, .fields = opts_fields},
    {.name = "backend", .type = AIGW_FT_RECORD, .fields = backend_fields, .flags = AIGW_F_NULLABLE_REQ},
    {.name = "sources", .type = AIGW_FT_ARRAY, .elements = &pair_el},
    {.name = "parent", .type = AIGW_FT_FOREIGN, .reference = "parents", .flags = AIGW_F_CASCADE},
    {.name = "secret", .type = AIGW_FT_STRING, .flags = AIGW_F_AUTO | AIGW_F_RANDOM},
    {.name = "extra", .type = AIGW_FT_ANY},
    {.name = "code", .type = AIGW_FT_STRING, .check = even_length},
    {.name = "url", .type = AIGW_FT_STRING, .flags = AIGW_F_INPUT_ONLY},
    {.name = "old_color", .type = AIGW_FT_STRING, .alias_of = "color"},
    {.name = "backend_host", .type = AIGW_FT_STRING, .alias_of = "backend.host"},
    {.name = "backend_port", .type = AIGW_FT_INTEGER, .alias_of = "backend.port",
     .flags = AIGW_F_INPUT_ONLY},
    {0},
};

/* url = "http://host:port/path" (just enough for the test) */
static int widget_shorthand(json_t *obj, json_t *field_errors)
{
    json_t *url = json_object_get(obj, "url");
    if (!json_is_string(url))
        return 0;
    const char *s = json_string_value(url);
    if (strncmp(s, "http://", 7) != 0) {
        json_object_set_new(field_errors, "url", json_sprintf("cannot parse '%s'", s));
        return -1;
    }
    s += 7;
    const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
    if (!colon || !slash || slash < colon)
        return 0;
    json_object_set_new(obj, "host", json_stringn(s, (size_t)(colon - s)));
    json_object_set_new(obj, "port", json_integer(strtol(colon + 1, NULL, 10)));
    json_object_set_new(obj, "path", json_string(slash));
    json_object_del(obj, "url");
    return 0;
}

static int widget_check(const aigw_entity_t *e, const json_t *obj, json_t *entity_errors,
                        json_t *field_errors)
{
    (void)e;
    const json_t *color = json_object_get(obj, "color");
    const json_t *weight = json_object_get(obj, "weight");
    if (json_is_string(color) && strcmp(json_string_value(color), "red") == 0 &&
        (!weight || json_is_null(weight))) {
        json_array_append_new(entity_errors,
                              json_string("failed conditional validation given value of field 'color'"));
        json_object_set_new(field_errors, "weight", json_string("required field missing"));
        return -1;
    }
    return 0;
}

static const aigw_entity_t widgets = {
    .name = "widgets",
    .admin_path = "widgets",
    .fields = widget_fields,
    .shorthand = widget_shorthand,
    .check = widget_check,
};

/* ---- helpers ---------------------------------------------------------------------------------- */

static json_t *J(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v)
        fail_msg("bad JSON in test: %s (%s)", text, err.text);
    return v;
}

static void expect_json(const json_t *got, const char *expected)
{
    json_t *want = J(expected);
    if (!json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", g ? g : "(null)", w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static void expect_message(const json_t *errs, const char *expected)
{
    char *m = aigw_schema_errors_message(errs);
    assert_non_null(m);
    if (strcmp(m, expected) != 0)
        print_error("got:  %s\nwant: %s\n", m, expected);
    assert_string_equal(m, expected);
    free(m);
}

/* Validates `input`; expects success; returns the normalised object. */
static json_t *valid(const aigw_entity_t *e, const char *input, aigw_vmode_t mode)
{
    json_t *obj = J(input);
    json_t *errs = NULL;
    int rc = aigw_schema_validate(e, obj, mode, &errs);
    if (rc != 0) {
        char *s = json_dumps(errs, JSON_SORT_KEYS | JSON_COMPACT);
        print_error("unexpected errors for %s: %s\n", input, s);
        free(s);
        json_decref(errs);
        json_decref(obj);
        fail();
    }
    assert_null(errs);
    return obj;
}

/* Validates `input`; expects failure with exactly `fields` and `message`. */
static void invalid(const aigw_entity_t *e, const char *input, aigw_vmode_t mode,
                    const char *fields, const char *message)
{
    json_t *obj = J(input);
    json_t *errs = NULL;
    int rc = aigw_schema_validate(e, obj, mode, &errs);
    if (rc != -1)
        print_error("expected errors for %s\n", input);
    assert_int_equal(rc, -1);
    assert_non_null(errs);
    expect_json(errs, fields);
    if (message)
        expect_message(errs, message);
    json_decref(errs);
    json_decref(obj);
}

static const char *str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* ---- insert, defaults, autos ------------------------------------------------------------------ */

static void test_insert_defaults_full(void **state)
{
    (void)state;
    json_t *o = valid(&widgets, "{\"host\":\"example.com\"}", AIGW_V_INSERT);
    /* autos: compare them separately, then drop them to compare the rest exactly */
    const char *secret = str(o, "secret");
    assert_int_equal(strlen(secret), 32);
    for (const char *c = secret; *c; c++)
        assert_true((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'));
    assert_true(json_equal(json_object_get(o, "created_at"), json_object_get(o, "updated_at")));
    json_object_del(o, "id");
    json_object_del(o, "created_at");
    json_object_del(o, "updated_at");
    json_object_del(o, "secret");
    expect_json(o, "{\"name\":null,\"host\":\"example.com\",\"port\":80,\"weight\":null,"
                   "\"ratio\":0.5,\"enabled\":true,\"path\":null,\"color\":null,\"tags\":null,"
                   "\"codes\":null,\"colors\":null,\"levels\":null,\"headers\":null,"
                   "\"opts\":{\"level\":1,\"mode\":\"fast\",\"size\":null},"
                   "\"backend\":null,\"sources\":null,\"parent\":null,\"extra\":null,\"code\":null}");
    json_decref(o);
}

static void test_insert_keeps_given_autos(void **state)
{
    (void)state;
    json_t *o = valid(&widgets,
                      "{\"host\":\"h\",\"id\":\"0B1E7C4A-3F2D-4E5A-9B8C-7D6E5F4A3B2C\","
                      "\"created_at\":1000,\"updated_at\":1000,\"secret\":\"mine\"}",
                      AIGW_V_INSERT);
    assert_string_equal(str(o, "id"), "0B1E7C4A-3F2D-4E5A-9B8C-7D6E5F4A3B2C");
    assert_int_equal(json_integer_value(json_object_get(o, "created_at")), 1000);
    /* updated_at is always refreshed, as Kong's process_auto_fields does */
    assert_true(json_integer_value(json_object_get(o, "updated_at")) > 1000);
    assert_string_equal(str(o, "secret"), "mine");
    json_decref(o);

    /* a null id on insert is generated, not stored */
    o = valid(&widgets, "{\"host\":\"h\",\"id\":null}", AIGW_V_INSERT);
    assert_true(aigw_schema_is_uuid(str(o, "id")));
    json_decref(o);
}

static void test_check_mode_generates_nothing(void **state)
{
    (void)state;
    json_t *o = valid(&widgets, "{\"host\":\"h\"}", AIGW_V_CHECK);
    assert_true(json_is_null(json_object_get(o, "id")));
    assert_true(json_is_null(json_object_get(o, "created_at")));
    assert_true(json_is_null(json_object_get(o, "updated_at")));
    assert_true(json_is_null(json_object_get(o, "secret")));
    /* defaults are filled all the same */
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 80);
    json_decref(o);
}

static void test_update_mode(void **state)
{
    (void)state;
    json_t *o = valid(&widgets,
                      "{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\",\"created_at\":100,"
                      "\"updated_at\":100,\"host\":\"h\",\"port\":81,\"secret\":null}",
                      AIGW_V_UPDATE);
    assert_int_equal(json_integer_value(json_object_get(o, "created_at")), 100);
    assert_true(json_integer_value(json_object_get(o, "updated_at")) >= time(NULL) - 1);
    assert_true(json_is_null(json_object_get(o, "secret"))); /* nothing generated */
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 81);
    json_decref(o);

    /* an update without id does not invent one */
    o = valid(&widgets, "{\"host\":\"h\"}", AIGW_V_UPDATE);
    assert_true(json_is_null(json_object_get(o, "id")));
    json_decref(o);

    invalid(&widgets, "{\"host\":null}", AIGW_V_UPDATE, "{\"host\":\"required field missing\"}",
            "schema violation (host: required field missing)");
}

static void test_ms_timestamps(void **state)
{
    (void)state;
    static const aigw_field_t fields[] = {
        {.name = "id", .type = AIGW_FT_STRING, .flags = AIGW_F_UUID | AIGW_F_AUTO | AIGW_F_PK},
        {.name = "created_at", .type = AIGW_FT_NUMBER, .flags = AIGW_F_TIMESTAMP | AIGW_F_AUTO | AIGW_F_MS},
        {.name = "updated_at", .type = AIGW_FT_NUMBER, .flags = AIGW_F_TIMESTAMP | AIGW_F_AUTO | AIGW_F_MS},
        {0},
    };
    static const aigw_entity_t targets = {.name = "targets", .fields = fields};
    json_t *o = valid(&targets, "{}", AIGW_V_INSERT);
    const json_t *ca = json_object_get(o, "created_at");
    assert_true(json_is_real(ca));
    double d = json_real_value(ca);
    assert_true(d > (double)time(NULL) - 2 && d < (double)time(NULL) + 2);
    /* millisecond precision: d * 1000 is (nearly) a whole number */
    double ms = d * 1000.0;
    assert_true(ms - (double)(long long)(ms + 0.5) < 0.01 && (double)(long long)(ms + 0.5) - ms < 0.01);
    json_decref(o);

    invalid(&targets, "{\"created_at\":0}", AIGW_V_INSERT,
            "{\"created_at\":\"expected a valid timestamp\"}",
            "schema violation (created_at: expected a valid timestamp)");
}

/* ---- required, null, unknown -------------------------------------------------------------------- */

static void test_required_and_null(void **state)
{
    (void)state;
    invalid(&widgets, "{}", AIGW_V_INSERT, "{\"host\":\"required field missing\"}",
            "schema violation (host: required field missing)");
    /* explicit null is not replaced by the default of a required field */
    invalid(&widgets, "{\"host\":\"h\",\"port\":null,\"enabled\":null}", AIGW_V_INSERT,
            "{\"port\":\"required field missing\",\"enabled\":\"required field missing\"}",
            "2 schema violations (enabled: required field missing; port: required field missing)");
    /* an optional field set to null clears it, even one with a default */
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"name\":null,\"ratio\":null}", AIGW_V_INSERT);
    assert_true(json_is_null(json_object_get(o, "name")));
    assert_true(json_is_null(json_object_get(o, "ratio")));
    json_decref(o);
}

static void test_unknown_fields(void **state)
{
    (void)state;
    invalid(&widgets, "{\"host\":\"h\",\"foo\":1,\"opts\":{\"bar\":2}}", AIGW_V_INSERT,
            "{\"foo\":\"unknown field\",\"opts\":{\"bar\":\"unknown field\"}}",
            "2 schema violations (foo: unknown field; opts.bar: unknown field)");
    /* unknown even when null */
    invalid(&widgets, "{\"host\":\"h\",\"zzz\":null}", AIGW_V_INSERT, "{\"zzz\":\"unknown field\"}",
            "schema violation (zzz: unknown field)");
}

static void test_not_an_object(void **state)
{
    (void)state;
    json_t *arr = J("[]");
    json_t *errs = NULL;
    assert_int_equal(aigw_schema_validate(&widgets, arr, AIGW_V_INSERT, &errs), -1);
    expect_json(errs, "{\"@entity\":[\"expected an input table\"]}");
    json_decref(errs);
    json_decref(arr);
}

/* ---- types ---------------------------------------------------------------------------------------- */

static void test_type_errors(void **state)
{
    (void)state;
    invalid(&widgets,
            "{\"host\":5,\"port\":\"80\",\"weight\":\"x\",\"enabled\":\"yes\",\"tags\":\"a\","
            "\"codes\":{},\"headers\":[],\"opts\":\"x\",\"parent\":5,\"extra\":{\"any\":[1]}}",
            AIGW_V_INSERT,
            "{\"host\":\"expected a string\",\"port\":\"expected an integer\","
            "\"weight\":\"expected a number\",\"enabled\":\"expected a boolean\","
            "\"tags\":\"expected a set\",\"codes\":\"expected an array\",\"headers\":\"expected a map\","
            "\"opts\":\"expected a record\",\"parent\":\"expected a record\"}",
            "9 schema violations (codes: expected an array; enabled: expected a boolean; "
            "headers: expected a map; host: expected a string; opts: expected a record; "
            "parent: expected a record; port: expected an integer; tags: expected a set; "
            "weight: expected a number)");
    /* booleans and numbers are not coerced from strings (JSON bodies) */
    invalid(&widgets, "{\"host\":\"h\",\"enabled\":1}", AIGW_V_INSERT,
            "{\"enabled\":\"expected a boolean\"}", NULL);
    invalid(&widgets, "{\"host\":true}", AIGW_V_INSERT, "{\"host\":\"expected a string\"}", NULL);
}

static void test_integers(void **state)
{
    (void)state;
    /* a real without fraction is an integer (Lua has one number type) and is stored as one */
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"port\":8080.0}", AIGW_V_INSERT);
    assert_true(json_is_integer(json_object_get(o, "port")));
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 8080);
    json_decref(o);
    invalid(&widgets, "{\"host\":\"h\",\"port\":80.5}", AIGW_V_INSERT,
            "{\"port\":\"expected an integer\"}", "schema violation (port: expected an integer)");
    invalid(&widgets, "{\"host\":\"h\",\"port\":70000}", AIGW_V_INSERT,
            "{\"port\":\"value should be between 0 and 65535\"}",
            "schema violation (port: value should be between 0 and 65535)");
    invalid(&widgets, "{\"host\":\"h\",\"port\":-1}", AIGW_V_INSERT,
            "{\"port\":\"value should be between 0 and 65535\"}", NULL);
    o = valid(&widgets, "{\"host\":\"h\",\"port\":0}", AIGW_V_INSERT);
    json_decref(o);
    o = valid(&widgets, "{\"host\":\"h\",\"port\":65535}", AIGW_V_INSERT);
    json_decref(o);
    /* integer one_of */
    o = valid(&widgets, "{\"host\":\"h\",\"opts\":{\"size\":4}}", AIGW_V_INSERT);
    json_decref(o);
    invalid(&widgets, "{\"host\":\"h\",\"opts\":{\"size\":3}}", AIGW_V_INSERT,
            "{\"opts\":{\"size\":\"expected one of: 1, 2, 4\"}}",
            "schema violation (opts.size: expected one of: 1, 2, 4)");
}

static void test_numbers(void **state)
{
    (void)state;
    invalid(&widgets, "{\"host\":\"h\",\"weight\":0}", AIGW_V_INSERT,
            "{\"weight\":\"value must be greater than 0\"}",
            "schema violation (weight: value must be greater than 0)");
    invalid(&widgets, "{\"host\":\"h\",\"weight\":-2.5}", AIGW_V_INSERT,
            "{\"weight\":\"value must be greater than 0\"}", NULL);
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"weight\":0.25,\"ratio\":3}", AIGW_V_INSERT);
    assert_true(json_is_integer(json_object_get(o, "ratio"))); /* numbers stay as given */
    json_decref(o);
}

static void test_strings(void **state)
{
    (void)state;
    invalid(&widgets, "{\"host\":\"\"}", AIGW_V_INSERT, "{\"host\":\"length must be at least 1\"}",
            "schema violation (host: length must be at least 1)");
    invalid(&widgets, "{\"host\":\"h\",\"path\":\"abc\"}", AIGW_V_INSERT,
            "{\"path\":\"should start with: /\"}", "schema violation (path: should start with: /)");
    invalid(&widgets, "{\"host\":\"h\",\"color\":\"pink\"}", AIGW_V_INSERT,
            "{\"color\":\"expected one of: red, green, blue\"}",
            "schema violation (color: expected one of: red, green, blue)");
    /* one_of is checked before the length */
    invalid(&widgets, "{\"host\":\"h\",\"color\":\"\"}", AIGW_V_INSERT,
            "{\"color\":\"expected one of: red, green, blue\"}", NULL);
    invalid(&widgets, "{\"host\":\"h\",\"code\":\"abc\"}", AIGW_V_INSERT,
            "{\"code\":\"must have an even length\"}", "schema violation (code: must have an even length)");
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"code\":\"ab\",\"path\":\"/x\",\"color\":\"blue\"}",
                      AIGW_V_INSERT);
    json_decref(o);
}

static void test_name_chars(void **state)
{
    (void)state;
    invalid(&widgets, "{\"host\":\"h\",\"name\":\"a b\"}", AIGW_V_INSERT,
            "{\"name\":\"invalid value 'a b': the only accepted ascii characters are alphanumerics or ., -, _, and ~\"}",
            "schema violation (name: invalid value 'a b': the only accepted ascii characters are "
            "alphanumerics or ., -, _, and ~)");
    invalid(&widgets, "{\"host\":\"h\",\"name\":\"a/b\"}", AIGW_V_INSERT,
            "{\"name\":\"invalid value 'a/b': the only accepted ascii characters are alphanumerics or ., -, _, and ~\"}",
            NULL);
    invalid(&widgets, "{\"host\":\"h\",\"name\":\"\"}", AIGW_V_INSERT,
            "{\"name\":\"length must be at least 1\"}", NULL);
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"name\":\"caf\\u00e9-svc_1.v~2\"}", AIGW_V_INSERT);
    assert_string_equal(str(o, "name"), "caf\xc3\xa9-svc_1.v~2");
    json_decref(o);
}

static void test_uuid_field(void **state)
{
    (void)state;
    invalid(&widgets, "{\"host\":\"h\",\"id\":\"nope\"}", AIGW_V_INSERT,
            "{\"id\":\"expected a valid UUID\"}", "schema violation (id: expected a valid UUID)");
    /* the uuid validator runs before the length check */
    invalid(&widgets, "{\"host\":\"h\",\"id\":\"\"}", AIGW_V_INSERT, "{\"id\":\"expected a valid UUID\"}",
            NULL);
    invalid(&widgets, "{\"host\":\"h\",\"id\":5}", AIGW_V_INSERT, "{\"id\":\"expected a string\"}", NULL);
}

/* ---- arrays, sets, maps -------------------------------------------------------------------------- */

static void test_set_dedup(void **state)
{
    (void)state;
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"tags\":[\"a\",\"b\",\"a\",\"c\",\"b\"]}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "tags"), "[\"a\",\"b\",\"c\"]");
    json_decref(o);
    /* arrays keep duplicates */
    o = valid(&widgets, "{\"host\":\"h\",\"codes\":[1,1,2.0]}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "codes"), "[1,1,2]");
    assert_true(json_is_integer(json_array_get(json_object_get(o, "codes"), 2)));
    json_decref(o);
    o = valid(&widgets, "{\"host\":\"h\",\"tags\":[]}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "tags"), "[]");
    json_decref(o);
    /* numbers compare as Lua numbers: 2 and 2.0 are one element (then stored as integer) */
    o = valid(&widgets, "{\"host\":\"h\",\"levels\":[3,2,3,2.0,1]}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "levels"), "[3,2,1]");
    json_decref(o);
    /* a large set stays cheap and keeps first occurrences in order */
    json_t *big = J("{\"host\":\"h\"}");
    json_t *tags = json_array();
    for (int i = 0; i < 20000; i++) {
        char t[16];
        snprintf(t, sizeof t, "t%d", i % 5000);
        json_array_append_new(tags, json_string(t));
    }
    json_object_set_new(big, "tags", tags);
    json_t *errs = NULL;
    assert_int_equal(aigw_schema_validate(&widgets, big, AIGW_V_INSERT, &errs), 0);
    tags = json_object_get(big, "tags");
    assert_int_equal(json_array_size(tags), 5000);
    assert_string_equal(json_string_value(json_array_get(tags, 0)), "t0");
    assert_string_equal(json_string_value(json_array_get(tags, 4999)), "t4999");
    json_decref(big);
}

static void test_array_element_errors(void **state)
{
    (void)state;
    /* aligned to the elements, null for valid ones, ending at the last failing one */
    invalid(&widgets, "{\"host\":\"h\",\"colors\":[\"red\",\"pink\",\"blue\",\"mauve\",\"green\"]}",
            AIGW_V_INSERT,
            "{\"colors\":[null,\"expected one of: red, green, blue\",null,\"expected one of: red, green, blue\"]}",
            "2 schema violations (colors.2: expected one of: red, green, blue; "
            "colors.4: expected one of: red, green, blue)");
    invalid(&widgets, "{\"host\":\"h\",\"tags\":[\"a\",null]}", AIGW_V_INSERT,
            "{\"tags\":[null,\"required field missing\"]}",
            "schema violation (tags.2: required field missing)");
    invalid(&widgets, "{\"host\":\"h\",\"tags\":[1]}", AIGW_V_INSERT, "{\"tags\":[\"expected a string\"]}",
            "schema violation (tags.1: expected a string)");
    invalid(&widgets, "{\"host\":\"h\",\"tags\":[\"\"]}", AIGW_V_INSERT,
            "{\"tags\":[\"length must be at least 1\"]}", NULL);
    /* len_min on the array, after its elements */
    invalid(&widgets, "{\"host\":\"h\",\"codes\":[]}", AIGW_V_INSERT,
            "{\"codes\":\"length must be at least 1\"}", "schema violation (codes: length must be at least 1)");
    invalid(&widgets, "{\"host\":\"h\",\"codes\":[\"x\"]}", AIGW_V_INSERT,
            "{\"codes\":[\"expected an integer\"]}", NULL);
}

static void test_array_of_records(void **state)
{
    (void)state;
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"sources\":[{\"ip\":\"1.2.3.4\"},{\"ip\":\"::1\",\"port\":5}]}",
                      AIGW_V_INSERT);
    expect_json(json_object_get(o, "sources"), "[{\"ip\":\"1.2.3.4\",\"port\":null},{\"ip\":\"::1\",\"port\":5}]");
    json_decref(o);
    invalid(&widgets, "{\"host\":\"h\",\"sources\":[{\"ip\":\"1.2.3.4\"},{\"port\":\"x\"}]}", AIGW_V_INSERT,
            "{\"sources\":[null,{\"ip\":\"required field missing\",\"port\":\"expected an integer\"}]}",
            "schema violation (sources.2: {\n  ip = \"required field missing\",\n"
            "  port = \"expected an integer\"\n})");
    invalid(&widgets, "{\"host\":\"h\",\"sources\":[\"x\"]}", AIGW_V_INSERT,
            "{\"sources\":[\"expected a record\"]}", NULL);
}

static void test_maps(void **state)
{
    (void)state;
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"headers\":{\"x-a\":\"1\",\"x-b\":\"2\"}}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "headers"), "{\"x-a\":\"1\",\"x-b\":\"2\"}");
    json_decref(o);
    /* Kong reports the failing value's message itself, not nested under its key */
    invalid(&widgets, "{\"host\":\"h\",\"headers\":{\"x-a\":\"1\",\"x-b\":5}}", AIGW_V_INSERT,
            "{\"headers\":\"expected a string\"}", "schema violation (headers: expected a string)");
    invalid(&widgets, "{\"host\":\"h\",\"headers\":{\"\":\"1\"}}", AIGW_V_INSERT,
            "{\"headers\":\"length must be at least 1\"}", NULL);
    invalid(&widgets, "{\"host\":\"h\",\"headers\":{\"x\":null}}", AIGW_V_INSERT,
            "{\"headers\":\"required field missing\"}", NULL);
}

/* ---- records ---------------------------------------------------------------------------------- */

static void test_records(void **state)
{
    (void)state;
    /* partial record: the rest filled from defaults */
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"opts\":{\"level\":5}}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "opts"), "{\"level\":5,\"mode\":\"fast\",\"size\":null}");
    json_decref(o);
    invalid(&widgets, "{\"host\":\"h\",\"opts\":{\"level\":12,\"mode\":\"x\"}}", AIGW_V_INSERT,
            "{\"opts\":{\"level\":\"value should be between 1 and 9\",\"mode\":\"expected one of: fast, slow\"}}",
            "2 schema violations (opts.level: value should be between 1 and 9; "
            "opts.mode: expected one of: fast, slow)");
    /* a record is required (Kong entities): null is an error, absent is built from defaults */
    invalid(&widgets, "{\"host\":\"h\",\"opts\":null}", AIGW_V_INSERT, "{\"opts\":\"required field missing\"}",
            "schema violation (opts: required field missing)");
    /* AIGW_F_NULLABLE_REQ: null and absent are fine */
    o = valid(&widgets, "{\"host\":\"h\",\"backend\":null}", AIGW_V_INSERT);
    assert_true(json_is_null(json_object_get(o, "backend")));
    json_decref(o);
    /* given: nested required fields and nested records */
    invalid(&widgets, "{\"host\":\"h\",\"backend\":{}}", AIGW_V_INSERT,
            "{\"backend\":{\"host\":\"required field missing\"}}",
            "schema violation (backend.host: required field missing)");
    o = valid(&widgets, "{\"host\":\"h\",\"backend\":{\"host\":\"r\"}}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "backend"),
                "{\"host\":\"r\",\"port\":6379,\"timeout\":2000,\"tls\":{\"verify\":true,\"depth\":null}}");
    json_decref(o);
}

static void test_deep_record_errors(void **state)
{
    (void)state;
    /* deeper than one level: errors.lua pretty-prints the nested table */
    invalid(&widgets, "{\"host\":\"h\",\"backend\":{\"host\":\"r\",\"tls\":{\"verify\":\"no\",\"depth\":\"x\"}}}",
            AIGW_V_INSERT,
            "{\"backend\":{\"tls\":{\"verify\":\"expected a boolean\",\"depth\":\"expected an integer\"}}}",
            "schema violation (backend.tls: {\n  depth = \"expected an integer\",\n"
            "  verify = \"expected a boolean\"\n})");
    invalid(&widgets, "{\"host\":\"h\",\"backend\":{\"host\":\"r\",\"port\":\"p\",\"tls\":{\"verify\":1}}}",
            AIGW_V_INSERT,
            "{\"backend\":{\"port\":\"expected an integer\",\"tls\":{\"verify\":\"expected a boolean\"}}}",
            "2 schema violations (backend.port: expected an integer; "
            "backend.tls: {\n  verify = \"expected a boolean\"\n})");
}

/* ---- foreign keys ------------------------------------------------------------------------------ */

static void test_foreign(void **state)
{
    (void)state;
    json_t *o = valid(&widgets,
                      "{\"host\":\"h\",\"parent\":{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\",\"name\":\"p\"}}",
                      AIGW_V_INSERT);
    /* only the primary key is kept */
    expect_json(json_object_get(o, "parent"), "{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"}");
    json_decref(o);
    invalid(&widgets, "{\"host\":\"h\",\"parent\":{}}", AIGW_V_INSERT,
            "{\"parent\":{\"id\":\"missing primary key\"}}", "schema violation (parent.id: missing primary key)");
    /* a string is indexed for an id like Kong does (name resolution is the admin layer's) */
    invalid(&widgets, "{\"host\":\"h\",\"parent\":\"abc\"}", AIGW_V_INSERT,
            "{\"parent\":{\"id\":\"missing primary key\"}}", "schema violation (parent.id: missing primary key)");
    invalid(&widgets, "{\"host\":\"h\",\"parent\":{\"id\":\"bad\"}}", AIGW_V_INSERT,
            "{\"parent\":{\"id\":\"expected a valid UUID\"}}", "schema violation (parent.id: expected a valid UUID)");
    invalid(&widgets, "{\"host\":\"h\",\"parent\":{\"id\":null}}", AIGW_V_INSERT,
            "{\"parent\":{\"id\":\"required field missing\"}}", NULL);
    invalid(&widgets, "{\"host\":\"h\",\"parent\":true}", AIGW_V_INSERT, "{\"parent\":\"expected a record\"}",
            "schema violation (parent: expected a record)");
    o = valid(&widgets, "{\"host\":\"h\",\"parent\":null}", AIGW_V_INSERT);
    assert_true(json_is_null(json_object_get(o, "parent")));
    json_decref(o);
}

/* ---- aliases, shorthands, input-only ---------------------------------------------------------- */

static void test_aliases(void **state)
{
    (void)state;
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"old_color\":\"red\",\"weight\":1}", AIGW_V_INSERT);
    assert_string_equal(str(o, "color"), "red");
    assert_null(json_object_get(o, "old_color"));
    json_decref(o);
    /* both, equal: fine */
    o = valid(&widgets, "{\"host\":\"h\",\"old_color\":\"blue\",\"color\":\"blue\"}", AIGW_V_INSERT);
    assert_string_equal(str(o, "color"), "blue");
    assert_null(json_object_get(o, "old_color"));
    json_decref(o);
    /* both, different: an error on the alias */
    invalid(&widgets, "{\"host\":\"h\",\"old_color\":\"red\",\"color\":\"blue\"}", AIGW_V_INSERT,
            "{\"old_color\":\"both deprecated and new field are used but their values mismatch: "
            "old_color = red vs color = blue\"}",
            NULL);
    /* the moved value is validated at its target */
    invalid(&widgets, "{\"host\":\"h\",\"old_color\":\"pink\"}", AIGW_V_INSERT,
            "{\"color\":\"expected one of: red, green, blue\"}", NULL);
    /* a dotted target builds the record, whose defaults then fill in */
    o = valid(&widgets, "{\"host\":\"h\",\"backend_host\":\"redis.local\"}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "backend"),
                "{\"host\":\"redis.local\",\"port\":6379,\"timeout\":2000,\"tls\":{\"verify\":true,\"depth\":null}}");
    assert_null(json_object_get(o, "backend_host"));
    json_decref(o);
    /* the alias's own type is checked first, the error reported on the alias */
    invalid(&widgets, "{\"host\":\"h\",\"backend_port\":\"x\",\"backend\":{\"host\":\"r\"}}", AIGW_V_INSERT,
            "{\"backend_port\":\"expected an integer\"}", "schema violation (backend_port: expected an integer)");
    o = valid(&widgets, "{\"host\":\"h\",\"backend_port\":7.0,\"backend\":{\"host\":\"r\"}}", AIGW_V_INSERT);
    assert_true(json_is_integer(json_object_get(json_object_get(o, "backend"), "port")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "backend"), "port")), 7);
    assert_null(json_object_get(o, "backend_port"));
    json_decref(o);
    o = valid(&widgets, "{\"host\":\"h\",\"backend_host\":\"a\",\"backend\":{\"port\":1}}", AIGW_V_INSERT);
    expect_json(json_object_get(o, "backend"),
                "{\"host\":\"a\",\"port\":1,\"timeout\":2000,\"tls\":{\"verify\":true,\"depth\":null}}");
    json_decref(o);
}

static void test_shorthand_and_input_only(void **state)
{
    (void)state;
    json_t *o = valid(&widgets, "{\"url\":\"http://example.com:8080/x\"}", AIGW_V_INSERT);
    assert_string_equal(str(o, "host"), "example.com");
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 8080);
    assert_string_equal(str(o, "path"), "/x");
    assert_null(json_object_get(o, "url"));
    json_decref(o);
    /* errors from the shorthand stop validation there */
    invalid(&widgets, "{\"url\":\"ftp:x\",\"port\":\"bad\"}", AIGW_V_INSERT,
            "{\"url\":\"cannot parse 'ftp:x'\"}", "schema violation (url: cannot parse 'ftp:x')");
    /* an input-only field the shorthand left is type-checked, then dropped */
    invalid(&widgets, "{\"host\":\"h\",\"url\":5}", AIGW_V_INSERT, "{\"url\":\"expected a string\"}", NULL);
    o = valid(&widgets, "{\"host\":\"h\",\"url\":null}", AIGW_V_INSERT);
    assert_null(json_object_get(o, "url"));
    json_decref(o);
}

/* ---- entity checks ------------------------------------------------------------------------------ */

static void test_entity_check(void **state)
{
    (void)state;
    invalid(&widgets, "{\"host\":\"h\",\"color\":\"red\"}", AIGW_V_INSERT,
            "{\"@entity\":[\"failed conditional validation given value of field 'color'\"],"
            "\"weight\":\"required field missing\"}",
            "2 schema violations (failed conditional validation given value of field 'color'; "
            "weight: required field missing)");
    /* skipped while a field fails */
    invalid(&widgets, "{\"host\":\"h\",\"color\":\"red\",\"port\":\"x\"}", AIGW_V_INSERT,
            "{\"port\":\"expected an integer\"}", NULL);
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"color\":\"red\",\"weight\":2}", AIGW_V_INSERT);
    json_decref(o);
}

/* ---- messages -------------------------------------------------------------------------------- */

static void test_errors_message(void **state)
{
    (void)state;
    json_t *e = J("{\"b\":\"x\",\"a\":{\"z\":\"1\",\"c\":\"2\"},\"@entity\":[\"e1\",\"e2\"],"
                  "\"arr\":[null,\"q\"],\"B\":\"upper\"}");
    /* entity messages first, then byte-order sorted keys (upper case first) */
    expect_message(e, "7 schema violations (e1; e2; B: upper; a.c: 2; a.z: 1; arr.2: q; b: x)");
    json_decref(e);

    e = J("{\"config\":{\"@entity\":[\"m\"]}}");
    expect_message(e, "schema violation (config.@entity: {\n  \"m\"\n})");
    json_decref(e);

    e = J("{\"a\":{\"b\":[null,\"x\",\"y\"]}}");
    expect_message(e, "schema violation (a.b: {\n  [2] = \"x\",\n  [3] = \"y\"\n})");
    json_decref(e);

    e = J("{\"a\":{\"b\":[\"x\",null,\"z\"]}}");
    expect_message(e, "schema violation (a.b: {\n  \"x\",\n  [3] = \"z\"\n})");
    json_decref(e);

    e = J("{\"a\":{\"b\":{\"x-y\":\"m\",\"end\":\"k\",\"ok_1\":{\"q\":\"say \\\"hi\\\"\"}}}}");
    expect_message(e, "schema violation (a.b: {\n  [\"end\"] = \"k\",\n  ok_1 = {\n"
                      "    q = \"say \\\"hi\\\"\"\n  },\n  [\"x-y\"] = \"m\"\n})");
    json_decref(e);

    e = J("{\"@entity\":[\"only this\"]}");
    expect_message(e, "schema violation (only this)");
    json_decref(e);
}

/* ---- output ---------------------------------------------------------------------------------- */

static void test_output(void **state)
{
    (void)state;
    json_t *stored = J("{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\",\"host\":\"h\",\"port\":81,"
                       "\"url\":\"http://x:1/\",\"old_color\":\"red\",\"junk\":1,"
                       "\"opts\":{\"level\":3},\"sources\":[{\"ip\":\"a\"}],"
                       "\"tags\":[\"t\"],\"parent\":{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"}}");
    json_t *out = aigw_schema_output(&widgets, stored);
    expect_json(out, "{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\",\"created_at\":null,"
                     "\"updated_at\":null,\"name\":null,\"host\":\"h\",\"port\":81,\"weight\":null,"
                     "\"ratio\":0.5,\"enabled\":true,\"path\":null,\"color\":null,\"tags\":[\"t\"],"
                     "\"codes\":null,\"colors\":null,\"levels\":null,\"headers\":null,"
                     "\"opts\":{\"level\":3,\"mode\":\"fast\",\"size\":null},\"backend\":null,"
                     "\"sources\":[{\"ip\":\"a\",\"port\":null}],"
                     "\"parent\":{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"},\"secret\":null,"
                     "\"extra\":null,\"code\":null,\"old_color\":null,\"backend_host\":null}");
    /* the input is untouched */
    assert_non_null(json_object_get(stored, "junk"));
    json_decref(out);
    json_decref(stored);

    /* what validate produced round-trips unchanged, plus the aliases (deprecated shorthands,
     * not input-only) shown with their targets' values, as Kong 3.9's select does */
    json_t *o = valid(&widgets, "{\"host\":\"h\",\"backend\":{\"host\":\"r\"},\"color\":\"green\"}",
                      AIGW_V_INSERT);
    out = aigw_schema_output(&widgets, o);
    assert_string_equal(str(out, "old_color"), "green");
    assert_string_equal(str(out, "backend_host"), "r");
    json_object_del(out, "old_color");
    json_object_del(out, "backend_host");
    assert_true(json_equal(out, o));
    json_decref(out);
    json_decref(o);

    /* Kong's select shows "" as null for strings that may not be empty */
    stored = J("{\"host\":\"\",\"name\":\"\"}");
    out = aigw_schema_output(&widgets, stored);
    assert_true(json_is_null(json_object_get(out, "host")));
    assert_true(json_is_null(json_object_get(out, "name")));
    json_decref(out);
    json_decref(stored);
}

/* ---- describe ------------------------------------------------------------------------------- */

static const json_t *described(const json_t *doc, const char *name)
{
    const json_t *fields = json_object_get(doc, "fields");
    size_t i;
    const json_t *one;
    json_array_foreach(fields, i, one) {
        const json_t *d = json_object_get(one, name);
        if (d) {
            assert_int_equal(json_object_size(one), 1);
            return d;
        }
    }
    return NULL;
}

static void test_describe(void **state)
{
    (void)state;
    json_t *doc = aigw_schema_describe(&widgets);
    expect_json(json_object_get(doc, "entity_checks"), "[]");
    /* in table order, hidden ones left out */
    const json_t *fields = json_object_get(doc, "fields");
    assert_int_equal(json_array_size(fields), 23);
    assert_non_null(json_object_get(json_array_get(fields, 0), "id"));
    assert_non_null(json_object_get(json_array_get(fields, 22), "code"));
    assert_null(described(doc, "url"));
    assert_null(described(doc, "old_color"));

    expect_json(described(doc, "id"), "{\"type\":\"string\",\"uuid\":true,\"auto\":true}");
    expect_json(described(doc, "created_at"), "{\"type\":\"integer\",\"timestamp\":true,\"auto\":true}");
    expect_json(described(doc, "name"), "{\"type\":\"string\",\"unique\":true}");
    expect_json(described(doc, "port"),
                "{\"type\":\"integer\",\"required\":true,\"default\":80,\"between\":[0,65535]}");
    expect_json(described(doc, "weight"), "{\"type\":\"number\",\"gt\":0}");
    expect_json(described(doc, "ratio"), "{\"type\":\"number\",\"default\":0.5}");
    expect_json(described(doc, "path"), "{\"type\":\"string\",\"starts_with\":\"/\"}");
    expect_json(described(doc, "color"), "{\"type\":\"string\",\"one_of\":[\"red\",\"green\",\"blue\"]}");
    expect_json(described(doc, "tags"), "{\"type\":\"set\",\"elements\":{\"type\":\"string\"}}");
    expect_json(described(doc, "codes"),
                "{\"type\":\"array\",\"len_min\":1,\"elements\":{\"type\":\"integer\"}}");
    expect_json(described(doc, "headers"),
                "{\"type\":\"map\",\"keys\":{\"type\":\"string\"},\"values\":{\"type\":\"string\"}}");
    expect_json(described(doc, "opts"),
                "{\"type\":\"record\",\"required\":true,\"fields\":["
                "{\"level\":{\"type\":\"integer\",\"default\":1,\"between\":[1,9]}},"
                "{\"mode\":{\"type\":\"string\",\"default\":\"fast\",\"one_of\":[\"fast\",\"slow\"]}},"
                "{\"size\":{\"type\":\"integer\",\"one_of\":[1,2,4]}}]}");
    expect_json(described(doc, "backend"),
                "{\"type\":\"record\",\"required\":false,\"fields\":["
                "{\"host\":{\"type\":\"string\",\"required\":true}},"
                "{\"port\":{\"type\":\"integer\",\"required\":true,\"default\":6379,\"between\":[0,65535]}},"
                "{\"timeout\":{\"type\":\"integer\",\"default\":2000}},"
                "{\"tls\":{\"type\":\"record\",\"required\":true,\"fields\":["
                "{\"verify\":{\"type\":\"boolean\",\"required\":true,\"default\":true}},"
                "{\"depth\":{\"type\":\"integer\"}}]}}]}");
    expect_json(described(doc, "parent"),
                "{\"type\":\"foreign\",\"reference\":\"parents\",\"on_delete\":\"cascade\"}");
    expect_json(described(doc, "extra"), "{\"type\":\"json\"}");
    json_decref(doc);
}

/* ---- field paths --------------------------------------------------------------------------------- */

static void test_field_path(void **state)
{
    (void)state;
    const char *p1[] = {"opts", "level"};
    const aigw_field_t *f = aigw_schema_field_path(&widgets, NULL, p1, 2);
    assert_non_null(f);
    assert_string_equal(f->name, "level");
    assert_int_equal(f->type, AIGW_FT_INTEGER);

    const char *p2[] = {"tags"};
    f = aigw_schema_field_path(&widgets, NULL, p2, 1);
    assert_non_null(f);
    assert_int_equal(f->type, AIGW_FT_SET);
    const char *p3[] = {"tags", "1"};
    assert_ptr_equal(aigw_schema_field_path(&widgets, NULL, p3, 2), f);
    const char *p3b[] = {"tags", ""};
    assert_ptr_equal(aigw_schema_field_path(&widgets, NULL, p3b, 2), f);

    const char *p4[] = {"sources", "1", "port"};
    f = aigw_schema_field_path(&widgets, NULL, p4, 3);
    assert_non_null(f);
    assert_ptr_equal(f, &pair_fields[1]);

    const char *p5[] = {"headers", "x-foo"};
    assert_ptr_equal(aigw_schema_field_path(&widgets, NULL, p5, 2), &str_el);

    const char *p6[] = {"backend", "tls", "verify"};
    assert_ptr_equal(aigw_schema_field_path(&widgets, NULL, p6, 3), &tls_fields[0]);

    const char *p7[] = {"old_color"};
    f = aigw_schema_field_path(&widgets, NULL, p7, 1);
    assert_non_null(f);
    assert_string_equal(f->alias_of, "color");

    const char *bad1[] = {"nope"};
    assert_null(aigw_schema_field_path(&widgets, NULL, bad1, 1));
    const char *bad2[] = {"opts", "nope"};
    assert_null(aigw_schema_field_path(&widgets, NULL, bad2, 2));
    const char *bad3[] = {"host", "x"};
    assert_null(aigw_schema_field_path(&widgets, NULL, bad3, 2));
    assert_null(aigw_schema_field_path(&widgets, NULL, p1, 0));
}

/* ---- UUIDs and random strings ---------------------------------------------------------------- */

static void test_uuid(void **state)
{
    (void)state;
    char seen[64][37];
    for (int i = 0; i < 64; i++) {
        aigw_schema_uuid(seen[i]);
        assert_int_equal(strlen(seen[i]), 36);
        assert_true(aigw_schema_is_uuid(seen[i]));
        assert_int_equal(seen[i][14], '4');
        assert_non_null(strchr("89ab", seen[i][19]));
        for (const char *c = seen[i]; *c; c++)
            assert_true(*c == '-' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
    assert_true(aigw_schema_is_uuid("00000000-0000-0000-0000-000000000000"));
    assert_true(aigw_schema_is_uuid("ABCDEF01-2345-6789-ABCD-EF0123456789"));
    assert_false(aigw_schema_is_uuid("abcdef01-2345-6789-abcd-ef012345678"));
    assert_false(aigw_schema_is_uuid("abcdef01-2345-6789-abcd-ef01234567890"));
    assert_false(aigw_schema_is_uuid("abcdef0102345-6789-abcd-ef0123456789"));
    assert_false(aigw_schema_is_uuid("abcdef01-2345-6789-abcd-ef012345678g"));
    assert_false(aigw_schema_is_uuid("{bcdef01-2345-6789-abcd-ef012345678}"));
    assert_false(aigw_schema_is_uuid(""));
    assert_false(aigw_schema_is_uuid(NULL));
}

static void test_random_strings(void **state)
{
    (void)state;
    static const char cs[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    long counts[62] = {0};
    char prev[33] = "";
    for (int i = 0; i < 400; i++) {
        json_t *o = valid(&widgets, "{\"host\":\"h\"}", AIGW_V_INSERT);
        const char *s = str(o, "secret");
        assert_int_equal(strlen(s), 32);
        assert_string_not_equal(s, prev);
        for (const char *c = s; *c; c++) {
            const char *at = strchr(cs, *c);
            assert_non_null(at);
            counts[at - cs]++;
        }
        snprintf(prev, sizeof prev, "%s", s);
        json_decref(o);
    }
    /* 12800 characters: about 206 each; a modulo bias or a missing class would show */
    for (int i = 0; i < 62; i++) {
        if (counts[i] < 120 || counts[i] > 300)
            print_error("character %c appeared %ld times\n", cs[i], counts[i]);
        assert_true(counts[i] >= 120 && counts[i] <= 300);
    }
}

/* ---- the real plugins entity: rate-limiting and acl (group "schema_plugins") --------------- */

static const aigw_entity_t *plugins_entity(void)
{
    const aigw_entity_t *e = aigw_schema_entity("plugins");
    if (!e)
        fail_msg("no 'plugins' entity in aigw_entities");
    assert_true(e->flags & AIGW_E_PLUGIN);
    if (!aigw_schema_plugin("rate-limiting") || !aigw_schema_plugin("acl"))
        fail_msg("rate-limiting or acl missing from aigw_plugins");
    return e;
}

static void test_plugin_rate_limiting_defaults(void **state)
{
    (void)state;
    const aigw_entity_t *e = plugins_entity();
    json_t *o = valid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":60}}", AIGW_V_INSERT);
    assert_true(aigw_schema_is_uuid(str(o, "id")));
    expect_json(json_object_get(o, "protocols"), "[\"grpc\",\"grpcs\",\"http\",\"https\"]");
    expect_json(json_object_get(o, "enabled"), "true");
    const json_t *cfg = json_object_get(o, "config");
    assert_true(json_is_object(cfg));
    expect_json(json_object_get(cfg, "minute"), "60");
    expect_json(json_object_get(cfg, "second"), "null");
    expect_json(json_object_get(cfg, "hour"), "null");
    expect_json(json_object_get(cfg, "day"), "null");
    expect_json(json_object_get(cfg, "month"), "null");
    expect_json(json_object_get(cfg, "year"), "null");
    expect_json(json_object_get(cfg, "policy"), "\"local\"");
    expect_json(json_object_get(cfg, "limit_by"), "\"consumer\"");
    /* redis is a record: present, filled from its defaults */
    assert_true(json_is_object(json_object_get(cfg, "redis")));
    /* output: the same config, plus Kong 3.9's deprecated redis_* shorthands showing the
     * values they stand for */
    json_t *out = aigw_schema_output(e, o);
    json_t *ocfg = json_object_get(out, "config");
    expect_json(json_object_get(ocfg, "redis_port"), "6379");
    expect_json(json_object_get(ocfg, "redis_host"), "null");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(ocfg, tmp, k, v) {
        (void)v;
        if (strncmp(k, "redis_", 6) == 0)
            json_object_del(ocfg, k);
    }
    assert_true(json_equal(ocfg, cfg));
    json_decref(out);
    json_decref(o);

    /* a deprecated shorthand lands in its record */
    o = valid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":60,\"policy\":\"redis\","
                 "\"redis_host\":\"redis.local\",\"redis_port\":6380}}",
              AIGW_V_INSERT);
    cfg = json_object_get(o, "config");
    expect_json(json_object_get(json_object_get(cfg, "redis"), "host"), "\"redis.local\"");
    expect_json(json_object_get(json_object_get(cfg, "redis"), "port"), "6380");
    assert_null(json_object_get(cfg, "redis_host"));
    json_decref(o);
    invalid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":60,\"redis_port\":\"x\"}}",
            AIGW_V_INSERT, "{\"config\":{\"redis_port\":\"expected an integer\"}}",
            "schema violation (config.redis_port: expected an integer)");
}

static void test_plugin_rate_limiting_errors(void **state)
{
    (void)state;
    const aigw_entity_t *e = plugins_entity();
    invalid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":\"x\"}}", AIGW_V_INSERT,
            "{\"config\":{\"minute\":\"expected a number\"}}",
            "schema violation (config.minute: expected a number)");
    invalid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":5,\"policy\":\"foo\"}}", AIGW_V_INSERT,
            "{\"config\":{\"policy\":\"expected one of: local, cluster, redis\"}}",
            "schema violation (config.policy: expected one of: local, cluster, redis)");
    invalid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":0}}", AIGW_V_INSERT,
            "{\"config\":{\"minute\":\"value must be greater than 0\"}}",
            "schema violation (config.minute: value must be greater than 0)");
    invalid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":5,\"foo\":1}}", AIGW_V_INSERT,
            "{\"config\":{\"foo\":\"unknown field\"}}", "schema violation (config.foo: unknown field)");
    invalid(e, "{\"name\":\"rate-limiting\",\"config\":\"bar\"}", AIGW_V_INSERT,
            "{\"config\":\"expected a record\"}", "schema violation (config: expected a record)");
    invalid(e, "{\"name\":\"rate-limiting\",\"config\":{\"minute\":5},\"protocols\":[\"tcp\"]}", AIGW_V_INSERT,
            "{\"protocols\":[\"expected one of: grpc, grpcs, http, https\"]}",
            "schema violation (protocols.1: expected one of: grpc, grpcs, http, https)");
    /* spec/03-plugins/23-rate-limiting/03-api_spec.lua "should not save with empty config" */
    invalid(e, "{\"name\":\"rate-limiting\"}", AIGW_V_INSERT,
            "{\"@entity\":[\"at least one of these fields must be non-empty: 'config.second', "
            "'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'\"]}",
            "schema violation (at least one of these fields must be non-empty: 'config.second', "
            "'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year')");
}

static void test_plugin_name(void **state)
{
    (void)state;
    const aigw_entity_t *e = plugins_entity();
    invalid(e, "{\"config\":{}}", AIGW_V_INSERT, "{\"name\":\"required field missing\"}",
            "schema violation (name: required field missing)");
    invalid(e, "{\"name\":\"nope\",\"foo\":1}", AIGW_V_INSERT,
            "{\"name\":\"plugin 'nope' not enabled; add it to the 'plugins' configuration property\"}",
            "schema violation (name: plugin 'nope' not enabled; add it to the 'plugins' configuration property)");
}

static void test_plugin_acl(void **state)
{
    (void)state;
    const aigw_entity_t *e = plugins_entity();
    json_t *o = valid(e, "{\"name\":\"acl\",\"config\":{\"whitelist\":[\"ai-operator\",\"ai-admin\"]}}",
                      AIGW_V_INSERT);
    const json_t *cfg = json_object_get(o, "config");
    expect_json(json_object_get(cfg, "allow"), "[\"ai-operator\",\"ai-admin\"]");
    expect_json(json_object_get(cfg, "deny"), "null");
    assert_null(json_object_get(cfg, "whitelist"));
    expect_json(json_object_get(cfg, "hide_groups_header"), "false");
    json_t *out = aigw_schema_output(e, o);
    assert_null(json_object_get(json_object_get(out, "config"), "whitelist"));
    assert_null(json_object_get(json_object_get(out, "config"), "blacklist"));
    json_decref(out);
    json_decref(o);

    o = valid(e, "{\"name\":\"acl\",\"config\":{\"blacklist\":[\"bad\"]}}", AIGW_V_INSERT);
    expect_json(json_object_get(json_object_get(o, "config"), "deny"), "[\"bad\"]");
    json_decref(o);

    /* typedefs.no_consumer */
    invalid(e, "{\"name\":\"acl\",\"config\":{\"allow\":[\"a\"]},"
               "\"consumer\":{\"id\":\"5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"}}",
            AIGW_V_INSERT, "{\"consumer\":\"value must be null\"}",
            "schema violation (consumer: value must be null)");
}

static void test_plugin_field_path_and_describe(void **state)
{
    (void)state;
    const aigw_entity_t *e = plugins_entity();
    const char *p1[] = {"config", "minute"};
    const aigw_field_t *f = aigw_schema_field_path(e, "rate-limiting", p1, 2);
    assert_non_null(f);
    assert_int_equal(f->type, AIGW_FT_NUMBER);
    assert_null(aigw_schema_field_path(e, NULL, p1, 2));
    assert_null(aigw_schema_field_path(e, "nope", p1, 2));
    const char *p2[] = {"config", "allow"};
    f = aigw_schema_field_path(e, "acl", p2, 2);
    assert_non_null(f);
    assert_int_equal(f->type, AIGW_FT_ARRAY);
    assert_true(f->flags & AIGW_F_SPLIT_COMMAS);
    const char *p3[] = {"config", "whitelist"};
    f = aigw_schema_field_path(e, "acl", p3, 2);
    assert_non_null(f);
    assert_string_equal(f->alias_of, "allow");
    assert_true(f->flags & AIGW_F_SPLIT_COMMAS);

    json_t *doc = aigw_schema_describe_plugin(aigw_schema_plugin("rate-limiting"));
    const json_t *cfg = described(doc, "config");
    assert_non_null(cfg);
    expect_json(json_object_get(cfg, "type"), "\"record\"");
    expect_json(json_object_get(cfg, "required"), "true");
    const json_t *proto = described(doc, "protocols");
    assert_non_null(proto);
    expect_json(json_object_get(proto, "default"), "[\"grpc\",\"grpcs\",\"http\",\"https\"]");
    json_t *sub = json_pack("{s:O}", "fields", json_object_get(cfg, "fields"));
    expect_json(described(sub, "minute"), "{\"type\":\"number\",\"gt\":0}");
    json_decref(sub);
    json_decref(doc);

    doc = aigw_schema_describe(e);
    expect_json(described(doc, "config"), "{\"type\":\"record\",\"abstract\":true}");
    json_decref(doc);
}

static void test_routes_foreign_partial(void **state)
{
    (void)state;
    /* spec/02-integration/04-admin_api/09-routes_routes_spec.lua "Invalid foreign entity" */
    const aigw_entity_t *routes = aigw_schema_entity("routes");
    if (!routes)
        fail_msg("no 'routes' entity in aigw_entities");
    json_t *obj = J("{\"protocols\":[\"foo\",\"http\"],\"methods\":[\"GET\"],\"service\":{\"protocol\":\"foo\"}}");
    json_t *errs = NULL;
    assert_int_equal(aigw_schema_validate(routes, obj, AIGW_V_INSERT, &errs), -1);
    expect_json(json_object_get(errs, "service"),
                "{\"protocol\":\"expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp\"}");
    expect_json(json_object_get(errs, "protocols"),
                "[\"expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp\"]");
    expect_message(errs, "2 schema violations (protocols.1: expected one of: grpc, grpcs, http, https, tcp, "
                         "tls, tls_passthrough, udp; service.protocol: expected one of: grpc, grpcs, "
                         "http, https, tcp, tls, tls_passthrough, udp)");
    json_decref(errs);
    json_decref(obj);

    obj = J("{\"methods\":[\"GET\"],\"service\":{\"name\":null}}");
    assert_int_equal(aigw_schema_validate(routes, obj, AIGW_V_INSERT, &errs), -1);
    expect_json(errs, "{\"service\":{\"id\":\"missing primary key\"}}");
    json_decref(errs);
    json_decref(obj);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest engine[] = {
        cmocka_unit_test(test_insert_defaults_full),
        cmocka_unit_test(test_insert_keeps_given_autos),
        cmocka_unit_test(test_check_mode_generates_nothing),
        cmocka_unit_test(test_update_mode),
        cmocka_unit_test(test_ms_timestamps),
        cmocka_unit_test(test_required_and_null),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_name_chars),
        cmocka_unit_test(test_uuid_field),
        cmocka_unit_test(test_set_dedup),
        cmocka_unit_test(test_array_element_errors),
        cmocka_unit_test(test_array_of_records),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_deep_record_errors),
        cmocka_unit_test(test_foreign),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_shorthand_and_input_only),
        cmocka_unit_test(test_entity_check),
        cmocka_unit_test(test_errors_message),
        cmocka_unit_test(test_output),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_field_path),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_random_strings),
    };
    const struct CMUnitTest plugins[] = {
        cmocka_unit_test(test_plugin_rate_limiting_defaults),
        cmocka_unit_test(test_plugin_rate_limiting_errors),
        cmocka_unit_test(test_plugin_name),
        cmocka_unit_test(test_plugin_acl),
        cmocka_unit_test(test_plugin_field_path_and_describe),
        cmocka_unit_test(test_routes_foreign_partial),
    };
    const char *only = argc > 1 ? argv[1] : NULL;
    int failed = 0;
    if (!only || strcmp(only, "engine") == 0)
        failed += cmocka_run_group_tests_name("schema_engine", engine, NULL, NULL);
    if (!only || strcmp(only, "plugins") == 0)
        failed += cmocka_run_group_tests_name("schema_plugins", plugins, NULL, NULL);
    return failed;
}
