/* tests/unit/test_check_desc.c: the entity-check declarations GET /schemas shows
 * (schema/check_desc.c) against the schema tables: each is a JSON array of one-key objects
 * naming a check Kong knows, for an entity or plugin that exists, and every field it names
 * (if_field, then_field, at_least_one_of, ...) is a field of that schema, so that a renamed or
 * removed field cannot leave a stale declaration behind. Then the output of
 * aigw_schema_describe / aigw_schema_describe_plugin against Kong 3.9.3's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

#define MAX_PATH 8

/* The entity and plugin a declaration's schema name denotes. */
static const aigw_entity_t *schema_of(const char *name, const char **plugin)
{
    *plugin = NULL;
    if (strncmp(name, "plugins/", 8) == 0) {
        *plugin = name + 8;
        return aigw_schema_plugin(*plugin) ? aigw_schema_entity("plugins") : NULL;
    }
    return aigw_schema_entity(name);
}

/* Fields Kong lists in routes' custom_entity_check that exist only with router_flavor =
 * expressions. */
static int expressions_only(const char *schema, const char *field)
{
    return strcmp(schema, "routes") == 0 &&
           (strcmp(field, "expression") == 0 || strcmp(field, "priority") == 0);
}

/* A dotted field name relative to the declaration's record resolves in the schema tables. */
static void check_field(const char *schema, const char *record, const char *dotted)
{
    const char *plugin;
    const aigw_entity_t *e = schema_of(schema, &plugin);
    assert_non_null(e);
    if (expressions_only(schema, dotted))
        return;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", dotted);
    const char *path[MAX_PATH];
    size_t n = 0;
    if (record) {
        path[n++] = record;
        const aigw_field_t *rf = aigw_schema_field_path(e, plugin, path, 1);
        assert_non_null(rf);
        if (rf->type == AIGW_FT_SET || rf->type == AIGW_FT_ARRAY)
            path[n++] = "1";
    }
    for (char *tok = buf; tok && n < MAX_PATH;) {
        char *dot = strchr(tok, '.');
        if (dot)
            *dot = '\0';
        path[n++] = tok;
        tok = dot ? dot + 1 : NULL;
    }
    if (!aigw_schema_field_path(e, plugin, path, n))
        fail_msg("%s%s%s: no field '%s'", schema, record ? "." : "", record ? record : "",
                 dotted);
}

static void check_names(const char *schema, const char *record, const json_t *v)
{
    if (json_is_string(v)) {
        check_field(schema, record, json_string_value(v));
        return;
    }
    assert_true(json_is_array(v));
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        assert_true(json_is_string(x));
        check_field(schema, record, json_string_value(x));
    }
}

static void test_declarations_match_tables(void **state)
{
    (void)state;
    static const char *const kinds[] = { "at_least_one_of", "conditional_at_least_one_of",
                                         "only_one_of", "distinct", "conditional",
                                         "custom_entity_check", "mutually_required",
                                         "mutually_exclusive", "mutually_exclusive_sets", NULL };
    size_t n = aigw_schema_entity_checks_count();
    assert_true(n > 10);
    for (size_t i = 0; i < n; i++) {
        const char *schema, *record, *text;
        assert_int_equal(aigw_schema_entity_checks_at(i, &schema, &record, &text), 0);
        json_error_t jerr;
        json_t *a = json_loads(text, 0, &jerr);
        if (!json_is_array(a))
            fail_msg("%s: not a JSON array: %s", schema, jerr.text);
        assert_true(json_array_size(a) > 0);
        size_t k;
        json_t *check;
        json_array_foreach(a, k, check) {
            assert_int_equal(json_object_size(check), 1);
            const char *kind = json_object_iter_key(json_object_iter(check));
            json_t *body = json_object_iter_value(json_object_iter(check));
            int known = 0;
            for (size_t j = 0; kinds[j]; j++)
                known |= strcmp(kinds[j], kind) == 0;
            if (!known)
                fail_msg("%s: unknown check %s", schema, kind);
            if (json_is_array(body)) {
                check_names(schema, record, body);
                continue;
            }
            assert_true(json_is_object(body));
            static const char *const name_keys[] = { "if_field", "then_field", "field_sources",
                                                     NULL };
            for (size_t j = 0; name_keys[j]; j++)
                if (json_object_get(body, name_keys[j]))
                    check_names(schema, record, json_object_get(body, name_keys[j]));
        }
        json_decref(a);
    }
    const char *schema, *record, *text;
    assert_int_equal(aigw_schema_entity_checks_at(n, &schema, &record, &text), -1);
}

/* The field description named name in a /schemas document. */
static json_t *field_desc(json_t *doc, const char *name)
{
    size_t i;
    json_t *one;
    json_array_foreach(json_object_get(doc, "fields"), i, one) {
        if (json_object_get(one, name))
            return json_object_get(one, name);
    }
    return NULL;
}

static void assert_json(const json_t *got, const char *want_text)
{
    json_error_t jerr;
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, &jerr);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("got %s\nwant %s", g ? g : "?", want_text);
    }
    json_decref(want);
}

/* Kong 3.9.3: GET /schemas/consumers, /schemas/routes, /schemas/keyauth_credentials. */
static void test_describe_entities(void **state)
{
    (void)state;
    json_t *d = aigw_schema_describe(aigw_schema_entity("consumers"));
    assert_json(json_object_get(d, "entity_checks"),
                "[{\"at_least_one_of\":[\"custom_id\",\"username\"]}]");
    json_decref(d);

    d = aigw_schema_describe(aigw_schema_entity("routes"));
    json_t *checks = json_object_get(d, "entity_checks");
    assert_int_equal(json_array_size(checks), 3);
    assert_json(json_object_get(json_object_get(json_array_get(checks, 0), "conditional"),
                                "then_match"),
                "{\"len_eq\":0}");
    assert_json(json_object_get(json_object_get(field_desc(d, "sources"), "elements"),
                                "entity_checks"),
                "[{\"at_least_one_of\":[\"ip\",\"port\"]}]");
    json_decref(d);

    d = aigw_schema_describe(aigw_schema_entity("services"));
    assert_json(json_object_get(json_object_get(json_array_get(json_object_get(d,
                                "entity_checks"), 4), "conditional"), "then_match"),
                "{\"eq\":null}");
    json_decref(d);

    /* keyauth_credentials: `ttl` is an option, not a field; no checks. */
    d = aigw_schema_describe(aigw_schema_entity("keyauth_credentials"));
    assert_null(field_desc(d, "ttl"));
    assert_non_null(field_desc(d, "key"));
    assert_json(json_object_get(d, "entity_checks"), "[]");
    json_decref(d);
}

/* Kong 3.9.3: GET /schemas/plugins/acl, /schemas/plugins/oauth2, /schemas/plugins/cors. */
static void test_describe_plugins(void **state)
{
    (void)state;
    json_t *d = aigw_schema_describe_plugin(aigw_schema_plugin("acl"));
    assert_json(json_object_get(d, "entity_checks"),
                "[{\"only_one_of\":[\"config.allow\",\"config.deny\"]},"
                "{\"at_least_one_of\":[\"config.allow\",\"config.deny\"]}]");
    json_decref(d);
    d = aigw_schema_describe_plugin(aigw_schema_plugin("oauth2"));
    assert_json(json_object_get(d, "entity_checks"), "[]");
    assert_json(json_object_get(field_desc(d, "config"), "entity_checks"),
                "[{\"conditional\":{\"if_field\":\"mandatory_scope\",\"if_match\":{\"eq\":true},"
                "\"then_field\":\"scopes\",\"then_match\":{\"required\":true}}}]");
    json_decref(d);
    d = aigw_schema_describe_plugin(aigw_schema_plugin("cors"));
    assert_json(json_object_get(d, "entity_checks"), "[]");
    assert_null(json_object_get(field_desc(d, "config"), "entity_checks"));
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declarations_match_tables),
        cmocka_unit_test(test_describe_entities),
        cmocka_unit_test(test_describe_plugins),
    };
    return cmocka_run_group_tests_name("check_desc", tests, NULL, NULL);
}
