/* tests/unit/test_declarative.c: aigwd/declarative/: the YAML layer (lyaml's scalar rules,
 * anchors and merges, limits, errors, the db_export emitter), Kong-format documents (nesting,
 * references, Kong's deterministic ids, format 1.1 path migration) with Kong's error trees and
 * messages (cases from Kong 3.9's spec/02-integration/04-admin_api/15-off_spec.lua and
 * spec/01-unit/01-db/01-schema/11-declarative_config/03-flatten_spec.lua), and import, replace
 * and export against SQLite in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "declarative/declarative.h"
#include "store/store.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static json_t *yaml(const char *text)
{
    json_t *out = NULL;
    char err[512] = "";
    if (aigw_yaml_parse(text, strlen(text), &out, err, sizeof(err)) != 0)
        fail_msg("yaml parse failed: %s\n%s", err, text);
    return out;
}

static void yaml_fails(const char *text, const char *expect)
{
    json_t *out = NULL;
    char err[512] = "";
    assert_int_equal(aigw_yaml_parse(text, strlen(text), &out, err, sizeof(err)), -1);
    assert_null(out);
    assert_string_equal(err, expect);
}

static void assert_json(const json_t *v, const char *expect)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_error_t je;
    json_t *e = json_loads(expect, JSON_DECODE_ANY, &je);
    if (!e)
        fail_msg("bad expected JSON %s: %s", expect, je.text);
    if (!json_equal(v, e))
        fail_msg("got      %s\nexpected %s", s, expect);
    /* json_equal treats 1 and 1.0 as different, which is what these tests want */
    free(s);
    json_decref(e);
}

static json_t *parse_ok(const char *text)
{
    json_t *out = NULL;
    aigw_db_error_t err = { 0 };
    if (aigw_declarative_parse(text, strlen(text), &out, &err) != 0) {
        char *f = err.fields ? json_dumps(err.fields, JSON_COMPACT) : NULL;
        fail_msg("parse failed: %s\n%s", err.message, f ? f : "");
    }
    return out;
}

/* Expects code 14 with exactly this message and these fields (JSON text). */
static void parse_fails(const char *text, const char *message, const char *fields)
{
    json_t *out = NULL;
    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_declarative_parse(text, strlen(text), &out, &err), -1);
    assert_null(out);
    assert_int_equal(err.code, AIGW_DBE_DECLARATIVE);
    assert_string_equal(aigw_db_error_name(err.code), "invalid declarative configuration");
    assert_string_equal(err.message, message);
    assert_non_null(err.fields);
    assert_json(err.fields, fields);
    aigw_db_error_clear(&err);
}

static const json_t *find(const json_t *doc, const char *coll, const char *key, const char *val)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, coll), i, e) {
        const char *s = json_string_value(json_object_get(e, key));
        if (s && strcmp(s, val) == 0)
            return e;
    }
    fail_msg("no %s with %s = %s", coll, key, val);
    return NULL;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s)
        fail_msg("no string %s", k);
    return s;
}

static const char *fk(const json_t *o, const char *k)
{
    return str(json_object_get(o, k), "id");
}

/* ---- YAML ---------------------------------------------------------------------------------- */

static void test_yaml_scalars(void **state)
{
    (void)state;
    json_t *v = yaml("[1, -3, +4, 1_000, 010, 080, 0x1F, 0b101, 0b1, 1:30, 1:30.5, 1.5, 1e3, .5,"
                     " yes, No, ON, off, TRUE, y, n, ~, null, Null, '', \"\", .inf, .nan,"
                     " \"1\", '010', \"yes\", 12.0, 99999999999999999999, 127.0.0.1:80]");
    assert_json(v, "[1, -3, 4, 1000, 8, 80, 31, 5, \"0b1\", 90, 90.5, 1.5, 1000.0, 0.5,"
                   " true, false, true, false, true, \"y\", \"n\", null, null, null, \"\", \"\","
                   " \".inf\", \".nan\", \"1\", \"010\", \"yes\", 12.0, 1e20, \"127.0.0.1:80\"]");
    json_decref(v);

    /* an empty value is null; block scalars are strings */
    v = yaml("a:\nb: |\n  x\n  y\nc: >-\n  folded\n  text\nd: \"tab\\there\"\n");
    assert_json(v, "{\"a\":null,\"b\":\"x\\ny\\n\",\"c\":\"folded text\",\"d\":\"tab\\there\"}");
    json_decref(v);

    /* explicit tags */
    v = yaml("[!!str 123, !!int \"0x10\", !!float 3, !!bool y, !!bool off, !!null x, !!str yes]");
    assert_json(v, "[\"123\", 16, 3.0, true, false, null, \"yes\"]");
    json_decref(v);
    yaml_fails("a: !!int abc\n", "1:4: invalid 'tag:yaml.org,2002:int' value: 'abc'");
}

static void test_yaml_structure(void **state)
{
    (void)state;
    /* keys keep their text; the last duplicate wins (as lyaml) */
    json_t *v = yaml("80: a\nyes: b\n~: c\nk: 1\nk: 2\n");
    assert_json(v, "{\"80\":\"a\",\"yes\":\"b\",\"~\":\"c\",\"k\":2}");
    json_decref(v);

    /* anchors, aliases (copied) and merge keys (explicit keys win, whatever their place) */
    v = yaml("base: &b {x: 1, y: two}\n"
             "c:\n  y: mine\n  <<: *b\n"
             "d:\n  <<: [*b, {z: 3}]\n  x: 9\n"
             "e: *b\n"
             "s: &s str\nt: *s\n");
    assert_json(v, "{\"base\":{\"x\":1,\"y\":\"two\"},\"c\":{\"y\":\"mine\",\"x\":1},"
                   "\"d\":{\"x\":9,\"y\":\"two\",\"z\":3},\"e\":{\"x\":1,\"y\":\"two\"},"
                   "\"s\":\"str\",\"t\":\"str\"}");
    json_decref(v);

    /* only the first document is returned; an empty stream is null; a scalar stays one */
    v = yaml("a: 1\n---\nb: 2\n");
    assert_json(v, "{\"a\":1}");
    json_decref(v);
    v = yaml("");
    assert_true(json_is_null(v));
    json_decref(v);
    v = yaml("# nothing but a comment\n");
    assert_true(json_is_null(v));
    json_decref(v);
    v = yaml("bobby tables");
    assert_json(v, "\"bobby tables\"");
    json_decref(v);

    /* JSON is YAML */
    v = yaml("{\"a\": [1, 2.5, \"x\", true, null], \"b\": {}}");
    assert_json(v, "{\"a\":[1,2.5,\"x\",true,null],\"b\":{}}");
    json_decref(v);
}

static void test_yaml_errors_and_limits(void **state)
{
    (void)state;
    /* lyaml's shape: "<line>:<column>: <libyaml's problem>" */
    yaml_fails("a: b: c\n", "1:4: mapping values are not allowed in this context");
    yaml_fails("a: *nope\n", "1:4: invalid reference: nope");
    yaml_fails("? [1, 2]\n: x\n", "1:8: unsupported mapping key (a sequence)");
    yaml_fails("a: [1, 2\n", "1:8: did not find expected ',' or ']'");
    yaml_fails("a: 1\n---\nb: [\n", "3:4: did not find expected node content");

    /* billion laughs: alias expansion is capped */
    char doc[2048];
    size_t o = (size_t)snprintf(doc, sizeof(doc), "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (char c = 'b'; c <= 'i'; c++)
        o += (size_t)snprintf(doc + o, sizeof(doc) - o,
                              "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c,
                              c, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1,
                              c - 1);
    json_t *out = NULL;
    char err[512];
    assert_int_equal(aigw_yaml_parse(doc, o, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too many alias expansions (more than 1000000 nodes)"));

    /* nesting depth */
    size_t depth = AIGW_YAML_MAX_DEPTH + 10;
    char *deep = malloc(depth * 2 + 1);
    for (size_t i = 0; i < depth; i++) {
        deep[i] = '[';
        deep[depth * 2 - 1 - i] = ']';
    }
    deep[depth * 2] = '\0';
    assert_int_equal(aigw_yaml_parse(deep, depth * 2, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "document nested more than 256 levels deep"));
    free(deep);

    /* NUL bytes and invalid UTF-8 are refused by libyaml */
    assert_int_equal(aigw_yaml_parse("a: b\0c", 6, &out, err, sizeof(err)), -1);
    assert_int_equal(aigw_yaml_parse("a: \xff\xfe", 5, &out, err, sizeof(err)), -1);
}

static void test_yaml_dump(void **state)
{
    (void)state;
    json_t *doc = json_loads(
        "{\"_format_version\":\"3.0\",\"_transform\":false,"
        "\"services\":[{\"name\":\"svc\",\"port\":80,\"path\":null,\"tags\":[],"
        "\"timeout\":1.5,\"whole\":2.0,\"cfg\":{},\"yes\":\"yes\",\"num\":\"010\","
        "\"colon\":\"a: b\",\"lead\":\" x\",\"empty\":\"\",\"inf\":\".inf\","
        "\"pem\":\"-----BEGIN-----\\nabc\\n-----END-----\\n\","
        "\"list\":[\"a\",{\"k\":true}],\"utf8\":\"\xc3\xa9t\xc3\xa9\"}]}",
        0, NULL);
    assert_non_null(doc);
    char *y = aigw_yaml_dump(doc);
    assert_non_null(y);
    assert_string_equal(y, "_format_version: '3.0'\n"
                           "_transform: false\n"
                           "services:\n"
                           "- name: svc\n"
                           "  port: 80\n"
                           "  path: ~\n"
                           "  tags: []\n"
                           "  timeout: 1.5\n"
                           "  whole: 2.0\n"
                           "  cfg: {}\n"
                           "  'yes': 'yes'\n"
                           "  num: '010'\n"
                           "  colon: 'a: b'\n"
                           "  lead: ' x'\n"
                           "  empty: ''\n"
                           "  inf: '.inf'\n"
                           "  pem: |\n"
                           "    -----BEGIN-----\n"
                           "    abc\n"
                           "    -----END-----\n"
                           "  list:\n"
                           "  - a\n"
                           "  - k: true\n"
                           "  utf8: \xc3\xa9t\xc3\xa9\n");
    /* and it reads back as the same document */
    json_t *back = yaml(y);
    assert_true(json_equal(doc, back));
    json_decref(back);
    free(y);
    json_decref(doc);
}

/* ---- Kong documents -------------------------------------------------------------------------- */

static void test_parse_kong_ids_and_nesting(void **state)
{
    (void)state;
    /* The ids Kong 3.9 derives for this document (15-off_spec.lua "hides workspace related
     * fields from /config response" gives them explicitly). */
    json_t *d = parse_ok("_format_version: \"1.1\"\n"
                         "_comment: top\n"
                         "_ignore: [1, 2]\n"
                         "services:\n"
                         "- name: my-service\n"
                         "  url: https://example.com\n"
                         "  _comment: a comment\n"
                         "  plugins:\n"
                         "  - name: file-log\n"
                         "    config:\n"
                         "      path: /tmp/file.log\n"
                         "  - name: key-auth\n"
                         "  routes:\n"
                         "  - name: my-route\n"
                         "    paths:\n"
                         "    - /\n"
                         "consumers:\n"
                         "- username: my-user\n"
                         "  keyauth_credentials:\n"
                         "  - key: my-key\n");
    /* 1.1 documents come out as 3.0 */
    assert_string_equal(str(d, "_format_version"), "3.0");
    assert_true(json_is_true(json_object_get(d, "_transform")));
    const json_t *svc = find(d, "services", "name", "my-service");
    assert_string_equal(str(svc, "id"), "0855b320-0dd2-547d-891d-601e9b38647f");
    assert_string_equal(str(svc, "protocol"), "https");
    assert_int_equal(json_integer_value(json_object_get(svc, "port")), 443);
    assert_null(json_object_get(svc, "_comment"));
    assert_null(json_object_get(svc, "plugins"));
    assert_null(json_object_get(svc, "routes"));
    const json_t *rt = find(d, "routes", "name", "my-route");
    assert_string_equal(str(rt, "id"), "481a9539-f49c-51b6-b2e2-fe99ee68866c");
    assert_string_equal(fk(rt, "service"), "0855b320-0dd2-547d-891d-601e9b38647f");
    const json_t *con = find(d, "consumers", "username", "my-user");
    assert_string_equal(str(con, "id"), "4b1b701d-de2b-5588-9aa2-3b97061d9f52");
    const json_t *ka = find(d, "keyauth_credentials", "key", "my-key");
    assert_string_equal(fk(ka, "consumer"), "4b1b701d-de2b-5588-9aa2-3b97061d9f52");
    /* Kong's cache-key ids for plugins: "plugins:*:<name>:<route>:<service>:<consumer>" */
    const json_t *fl = find(d, "plugins", "name", "file-log");
    assert_string_equal(str(fl, "id"), "ff5af6e2-7c22-5b6c-834e-594211031e23");
    assert_string_equal(fk(fl, "service"), "0855b320-0dd2-547d-891d-601e9b38647f");
    assert_true(json_is_null(json_object_get(fl, "route")));
    /* defaults are filled: a validated entity */
    assert_true(json_is_false(json_object_get(json_object_get(fl, "config"), "reopen")));
    /* collections in dependency order, nothing else */
    const char *order[] = { "_format_version", "_transform", "services", "routes", "consumers",
                            "plugins", "keyauth_credentials" };
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v) {
        assert_true(i < sizeof(order) / sizeof(order[0]));
        assert_string_equal(k, order[i++]);
    }
    json_decref(d);

    /* the same document parsed again gives the same ids (random-free) */
    const char *doc = "_format_version: \"3.0\"\n"
                      "services: [{name: a, host: a.test, routes: [{name: ra, paths: [/a]}]}]\n"
                      "routes: [{name: rb, hosts: [b.test], service: a}]\n"
                      "plugins: [{name: cors, route: rb}]\n"
                      "consumers: [{username: u, acls: [{group: g}], jwt_secrets: [{key: k}]}]\n"
                      "upstreams: [{name: up.test, targets: [{target: 10.0.0.1:80}]}]\n";
    json_t *a = parse_ok(doc), *b = parse_ok(doc);
    const char *colls[] = { "services", "routes", "plugins", "consumers", "acls", "jwt_secrets",
                            "upstreams", "targets" };
    for (i = 0; i < sizeof(colls) / sizeof(colls[0]); i++) {
        json_t *x = json_object_get(a, colls[i]), *y = json_object_get(b, colls[i]);
        assert_int_equal(json_array_size(x), json_array_size(y));
        for (size_t j = 0; j < json_array_size(x); j++)
            assert_string_equal(str(json_array_get(x, j), "id"), str(json_array_get(y, j), "id"));
    }
    /* a top-level reference by name resolves to the id */
    const json_t *rb = find(a, "routes", "name", "rb");
    assert_string_equal(fk(rb, "service"), str(find(a, "services", "name", "a"), "id"));
    assert_string_equal(fk(find(a, "plugins", "name", "cors"), "route"), str(rb, "id"));
    /* targets get the port default from the schema */
    assert_string_equal(str(json_array_get(json_object_get(a, "targets"), 0), "target"),
                        "10.0.0.1:80");
    json_decref(a);
    json_decref(b);
}

static void test_parse_references(void **state)
{
    (void)state;
    /* by id, by name, as {id = ...}; a nested child naming its own parent is fine */
    json_t *d = parse_ok("_format_version: \"3.0\"\n"
                         "consumers:\n"
                         "- id: 0fe87b4a-ce29-515a-88ec-8547e66550b9\n"
                         "  username: consumer\n"
                         "  basicauth_credentials:\n"
                         "  - username: nested\n"
                         "    password: pw\n"
                         "    consumer: consumer\n"
                         "basicauth_credentials:\n"
                         "- consumer: 0fe87b4a-ce29-515a-88ec-8547e66550b9\n"
                         "  username: by-id\n"
                         "  password: pw\n"
                         "- consumer: {id: 0fe87b4a-ce29-515a-88ec-8547e66550b9}\n"
                         "  username: by-record\n"
                         "  password: pw\n");
    const char *names[] = { "nested", "by-id", "by-record" };
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(fk(find(d, "basicauth_credentials", "username", names[i]), "consumer"),
                            "0fe87b4a-ce29-515a-88ec-8547e66550b9");
    json_decref(d);

    /* flatten_spec "fails with missing foreign relationships": keyed by the plugin's id */
    parse_fails("_format_version: \"1.1\"\n"
                "plugins:\n"
                "  - name: http-log\n"
                "    service: svc1\n"
                "    consumer: my-consumer\n"
                "    config:\n"
                "      http_endpoint: https://example.com\n",
                "declarative config is invalid: "
                "{plugins={[\"9f56fc65-eed9-517f-9ab8-2829aeeb79f8\"]={"
                "\"invalid reference 'service: svc1' (no such entry in 'services')\","
                "\"invalid reference 'consumer: my-consumer' (no such entry in 'consumers')\"}}}",
                "{\"plugins\":{\"9f56fc65-eed9-517f-9ab8-2829aeeb79f8\":["
                "\"invalid reference 'service: svc1' (no such entry in 'services')\","
                "\"invalid reference 'consumer: my-consumer' (no such entry in 'consumers')\"]}}");

    /* flatten_spec "fixes #7696": a record reference is shown as JSON, keyed by the name */
    parse_fails("_format_version: \"1.1\"\n"
                "routes:\n"
                "- name: my-route-1\n"
                "  paths: [/]\n"
                "  service:\n"
                "    id: \"769bdf51-16df-5476-9830-ef26800b5448\"\n",
                "declarative config is invalid: {routes={[\"my-route-1\"]={\"invalid reference "
                "'service: {\\\"id\\\":\\\"769bdf51-16df-5476-9830-ef26800b5448\\\"}' (no such "
                "entry in 'services')\"}}}",
                "{\"routes\":{\"my-route-1\":[\"invalid reference 'service: "
                "{\\\"id\\\":\\\"769bdf51-16df-5476-9830-ef26800b5448\\\"}' (no such entry in "
                "'services')\"]}}");

    /* flatten_spec "fails as a nested entity by incorrect username" (without Kong's
     * basic-auth entity check, which aigw's table does not have) */
    parse_fails("_format_version: \"1.1\"\n"
                "consumers:\n"
                "- username: consumer\n"
                "  basicauth_credentials:\n"
                "  - username: username\n"
                "    password: password\n"
                "    consumer: incorrect\n",
                "declarative config is invalid: "
                "{consumers={{basicauth_credentials={{consumer=\"value must be null\"}}}}}",
                "{\"consumers\":[{\"basicauth_credentials\":[{\"consumer\":"
                "\"value must be null\"}]}]}");
}

static void test_parse_errors(void **state)
{
    (void)state;
    /* 15-off_spec.lua "returns 400 on an invalid config string" */
    parse_fails("bobby tables",
                "declarative config is invalid: "
                "{error=\"failed parsing declarative configuration: expected an object\"}",
                "{\"error\":\"failed parsing declarative configuration: expected an object\"}");
    parse_fails("", "declarative config is invalid: "
                    "{error=\"failed parsing declarative configuration: expected an object\"}",
                "{\"error\":\"failed parsing declarative configuration: expected an object\"}");
    parse_fails("a: b: c",
                "declarative config is invalid: {error=\"failed parsing declarative "
                "configuration: 1:4: mapping values are not allowed in this context\"}",
                "{\"error\":\"failed parsing declarative configuration: 1:4: mapping values "
                "are not allowed in this context\"}");

    /* "returns 400 on a validation error" */
    parse_fails("_format_version: \"1.1\"\nservices:\n- port: -12\n",
                "declarative config is invalid: {services={{host=\"required field missing\","
                "port=\"value should be between 0 and 65535\"}}}",
                "{\"services\":[{\"host\":\"required field missing\","
                "\"port\":\"value should be between 0 and 65535\"}]}");

    /* "returns 400 on an primary key uniqueness error" */
    parse_fails("_format_version: \"1.1\"\n"
                "services:\n"
                "- id: 0855b320-0dd2-547d-891d-601e9b38647f\n"
                "  name: foo\n"
                "  host: example.com\n"
                "  protocol: https\n"
                "  routes:\n"
                "  - name: foo\n"
                "    methods: [\"GET\"]\n"
                "    plugins:\n"
                "      - name: key-auth\n"
                "      - name: http-log\n"
                "        config:\n"
                "          http_endpoint: https://example.com\n"
                "- id: 0855b320-0dd2-547d-891d-601e9b38647f\n"
                "  name: bar\n"
                "  host: example.test\n"
                "  port: 3000\n"
                "  routes:\n"
                "  - name: bar\n"
                "    paths:\n"
                "    - /\n"
                "    plugins:\n"
                "    - name: basic-auth\n"
                "    - name: tcp-log\n"
                "      config:\n"
                "        host: 127.0.0.1\n"
                "        port: 10000\n",
                "declarative config is invalid: {services={[2]=\"uniqueness violation: "
                "'services' entity with primary key set to "
                "'0855b320-0dd2-547d-891d-601e9b38647f' already declared\"}}",
                "{\"services\":[null,\"uniqueness violation: 'services' entity with primary "
                "key set to '0855b320-0dd2-547d-891d-601e9b38647f' already declared\"]}");

    /* "returns 400 on an endpoint key uniqueness error" */
    parse_fails("_format_version: \"1.1\"\n"
                "services:\n"
                "- name: foo\n"
                "  host: example.com\n"
                "- name: foo\n"
                "  host: example.test\n",
                "declarative config is invalid: {services={[2]=\"uniqueness violation: "
                "'services' entity with name set to 'foo' already declared\"}}",
                "{\"services\":[null,\"uniqueness violation: 'services' entity with name set "
                "to 'foo' already declared\"]}");

    /* "returns 400 on a regular key uniqueness error" */
    parse_fails("_format_version: \"1.1\"\n"
                "consumers:\n"
                "- username: foo\n"
                "  custom_id: conflict\n"
                "- username: bar\n"
                "  custom_id: conflict\n",
                "declarative config is invalid: {consumers={bar=\"uniqueness violation: "
                "'consumers' entity with custom_id set to 'conflict' already declared\"}}",
                "{\"consumers\":{\"bar\":\"uniqueness violation: 'consumers' entity with "
                "custom_id set to 'conflict' already declared\"}}");

    /* the document's own fields */
    parse_fails("services: 3\nfoo: 1\n_transform: maybe\n",
                "declarative config is invalid: {_format_version=\"required field missing\","
                "_transform=\"expected a boolean\",foo=\"unknown field\","
                "services=\"expected an array\"}",
                "{\"_format_version\":\"required field missing\",\"_transform\":\"expected a "
                "boolean\",\"foo\":\"unknown field\",\"services\":\"expected an array\"}");
    parse_fails("_format_version: \"4.0\"\n",
                "declarative config is invalid: "
                "{_format_version=\"expected one of: 1.1, 2.1, 3.0\"}",
                "{\"_format_version\":\"expected one of: 1.1, 2.1, 3.0\"}");
    parse_fails("_format_version: 3.0\n",
                "declarative config is invalid: {_format_version=\"expected a string\"}",
                "{\"_format_version\":\"expected a string\"}");

    /* errors of nested entities sit under their parent's entry; valid entries are null */
    parse_fails("_format_version: \"3.0\"\n"
                "services:\n"
                "- name: s1\n"
                "  host: example.com\n"
                "  routes:\n"
                "  - name: ok\n"
                "    paths: [/ok]\n"
                "  - name: bad\n"
                "    protocols: [http]\n"
                "    plugins:\n"
                "    - name: nope\n"
                "- name: s2\n"
                "  host: 1.2.3.4\n"
                "  retries: \"x\"\n"
                "- 42\n",
                "declarative config is invalid: {services={{routes={[2]={[\"@entity\"]={"
                "\"must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is "
                "'http'\"},plugins={{name=\"plugin 'nope' not enabled; add it to the 'plugins' "
                "configuration property\"}}}}},{retries=\"expected an integer\"},"
                "\"expected a record\"}}",
                "{\"services\":[{\"routes\":[null,{\"@entity\":[\"must set one of 'methods', "
                "'hosts', 'headers', 'paths' when 'protocols' is 'http'\"],\"plugins\":[{"
                "\"name\":\"plugin 'nope' not enabled; add it to the 'plugins' configuration "
                "property\"}]}]},{\"retries\":\"expected an integer\"},\"expected a record\"]}");

    /* a nested duplicate id is filed under its parent's collection and position */
    parse_fails("_format_version: \"3.0\"\n"
                "consumers:\n"
                "- username: bob\n"
                "  acls:\n"
                "  - group: admin\n"
                "  - group: admin\n",
                "declarative config is invalid: {consumers={{acls={[2]=\"uniqueness violation: "
                "'acls' entity with primary key set to 'a3076062-d040-5769-8a42-ad44682b143b' "
                "already declared\"}}}}",
                "{\"consumers\":[{\"acls\":[null,\"uniqueness violation: 'acls' entity with "
                "primary key set to 'a3076062-d040-5769-8a42-ad44682b143b' already "
                "declared\"]}]}");
}

static void test_parse_misc(void **state)
{
    (void)state;
    /* empty collections, JSON input, certificates' snis as names */
    json_t *d = parse_ok("{\"_format_version\": \"3.0\", \"services\": null, \"routes\": {},"
                         " \"consumers\": [], \"upstreams\": [{\"name\": \"u.test\","
                         " \"slots\": 100.0}]}");
    assert_null(json_object_get(d, "services"));
    assert_null(json_object_get(d, "routes"));
    /* an integral float is an integer for an integer field, as in Lua */
    assert_true(json_is_integer(json_object_get(json_array_get(json_object_get(d, "upstreams"), 0),
                                                "slots")));
    json_decref(d);

    /* ... in any field, as Lua numbers are: 60.0 is 60, 1.5 stays 1.5 */
    d = parse_ok("_format_version: \"3.0\"\n"
                 "plugins: [{name: rate-limiting, config: {minute: 60.0, hour: 1e3}},"
                 " {name: http-log, config: {http_endpoint: \"http://a.test\","
                 " queue: {max_retry_delay: 1.5}}}]\n");
    const json_t *rl = json_object_get(find(d, "plugins", "name", "rate-limiting"), "config");
    assert_json(json_object_get(rl, "minute"), "60");
    assert_json(json_object_get(rl, "hour"), "1000");
    assert_json(json_object_get(json_object_get(json_object_get(
                    find(d, "plugins", "name", "http-log"), "config"), "queue"),
                                "max_retry_delay"),
                "1.5");
    json_decref(d);

    /* _transform: false is kept for the import */
    d = parse_ok("_format_version: \"3.0\"\n_transform: false\n");
    assert_true(json_is_false(json_object_get(d, "_transform")));
    json_decref(d);

    /* format 1.1/2.1: route paths are migrated (regexes get "~", plain ones normalised) */
    d = parse_ok("_format_version: \"2.1\"\n"
                 "services:\n"
                 "- name: s\n"
                 "  host: x.test\n"
                 "  routes:\n"
                 "  - name: r\n"
                 "    paths: [\"/a/./b//c\", \"/foo%2Fbar\", \"/v1/(a|b)\", \"/x%41\"]\n"
                 "routes:\n"
                 "- name: t\n"
                 "  paths: [\"/api/v\\\\d+\"]\n");
    assert_json(json_object_get(find(d, "routes", "name", "r"), "paths"),
                "[\"/a/b/c\", \"/foo%2Fbar\", \"~/v1/(a|b)\", \"/xA\"]");
    assert_json(json_object_get(find(d, "routes", "name", "t"), "paths"), "[\"~/api/v\\\\d+\"]");
    json_decref(d);
    /* ... but not in 3.0 documents, where the route schema wants normalised paths */
    parse_fails("_format_version: \"3.0\"\nroutes: [{name: r, paths: [\"/a/./b\"]}]\n",
                "declarative config is invalid: {routes={{paths={\"non-normalized path, "
                "consider use '/a/b' instead\"}}}}",
                "{\"routes\":[{\"paths\":[\"non-normalized path, consider use '/a/b' "
                "instead\"]}]}");
}

static void test_lua_table(void **state)
{
    (void)state;
    json_t *t = json_loads("{\"a\":[null,\"x\",null,\"y\"],\"@entity\":[\"m\"],\"b c\":\"q\\\"\","
                           "\"n\":\"line1\\nline2\",\"br\":\"a]]b\",\"end\":1}",
                           0, NULL);
    char *s = aigw_declarative_lua_table(t);
    assert_string_equal(s, "{[\"@entity\"]={\"m\"},a={[2]=\"x\",[4]=\"y\"},[\"b c\"]=\"q\\\"\","
                           "br=[=[a]]b]=],[\"end\"]=1,n=[[line1\nline2]]}");
    free(s);
    json_decref(t);
    t = json_loads("[\"a\",\"b\",null,\"c\"]", 0, NULL);
    s = aigw_declarative_lua_table(t);
    assert_string_equal(s, "{\"a\",\"b\",[4]=\"c\"}");
    free(s);
    json_decref(t);
}

/* ---- store ------------------------------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    char path[128];
    aigw_conf_t conf;
    aigw_store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/aigw-test-decl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aigw.db", f->dir);
    f->conf.database = AIGW_DB_SQLITE;
    f->conf.sqlite_path = f->path;
    char err[512] = "";
    f->s = aigw_store_open(&f->conf, err, sizeof(err));
    if (!f->s)
        fail_msg("open: %s", err);
    aigw_db_error_t e = { 0 };
    if (aigw_store_bootstrap(f->s, &e) != 0)
        fail_msg("bootstrap: %s", e.message);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aigw_store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const char *full_doc = "_format_version: \"3.0\"\n"
                              "services:\n"
                              "- name: svc\n"
                              "  url: http://upstream.test:8080/api\n"
                              "  routes:\n"
                              "  - name: r1\n"
                              "    paths: [/r1]\n"
                              "    plugins:\n"
                              "    - name: rate-limiting\n"
                              "      config: {minute: 10, policy: local}\n"
                              "  plugins:\n"
                              "  - name: cors\n"
                              "consumers:\n"
                              "- username: alice\n"
                              "  custom_id: A1\n"
                              "  jwt_secrets:\n"
                              "  - key: alice-key\n"
                              "    secret: s3cr3t\n"
                              "  basicauth_credentials:\n"
                              "  - username: alice\n"
                              "    password: pw\n"
                              "  acls:\n"
                              "  - group: admins\n"
                              "- username: bob\n"
                              "keyauth_credentials:\n"
                              "- key: bob-key\n"
                              "  consumer: bob\n"
                              "upstreams:\n"
                              "- name: up.test\n"
                              "  targets:\n"
                              "  - target: 10.0.0.1:80\n"
                              "  - target: 10.0.0.2\n"
                              "    weight: 50\n"
                              "plugins:\n"
                              "- name: key-auth\n"
                              "  route: r1\n";

static size_t count_rows(fixture_t *f, const char *entity)
{
    aigw_store_query_t q = { .size = 1000 };
    aigw_store_page_t page = { 0 };
    aigw_db_error_t err = { 0 };
    if (aigw_store_list(f->s, aigw_schema_entity(entity), &q, &page, &err) != 0)
        fail_msg("list %s: %s", entity, err.message);
    size_t n = json_array_size(page.data);
    json_decref(page.data);
    free(page.offset);
    return n;
}

/* Export without the timestamps that a later write renews. */
static json_t *export_stable(fixture_t *f)
{
    aigw_db_error_t err = { 0 };
    json_t *doc = aigw_declarative_export(f->s, &err);
    if (!doc)
        fail_msg("export: %s", err.message);
    const char *k;
    json_t *list;
    json_object_foreach(doc, k, list) {
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) json_object_del(e, "updated_at");
    }
    return doc;
}

static void test_import_export_round_trip(void **state)
{
    fixture_t *f = *state;
    json_t *parsed = parse_ok(full_doc);
    aigw_db_error_t err = { 0 };
    if (aigw_declarative_import(f->s, parsed, &err) != 0)
        fail_msg("import: %s", err.message);
    assert_int_equal(count_rows(f, "services"), 1);
    assert_int_equal(count_rows(f, "routes"), 1);
    assert_int_equal(count_rows(f, "plugins"), 3);
    assert_int_equal(count_rows(f, "consumers"), 2);
    assert_int_equal(count_rows(f, "targets"), 2);
    assert_int_equal(count_rows(f, "basicauth_credentials"), 1);

    /* importing the same file again updates in place (stable ids): no duplicates */
    if (aigw_declarative_import(f->s, parsed, &err) != 0)
        fail_msg("re-import: %s", err.message);
    assert_int_equal(count_rows(f, "plugins"), 3);
    assert_int_equal(count_rows(f, "targets"), 2);
    json_decref(parsed);

    json_t *exp = export_stable(f);
    assert_string_equal(str(exp, "_format_version"), "3.0");
    assert_true(json_is_false(json_object_get(exp, "_transform")));
    /* foreign keys are written as ids; unset fields are present as null */
    const json_t *rt = find(exp, "routes", "name", "r1");
    const json_t *svc = find(exp, "services", "name", "svc");
    assert_string_equal(str(rt, "service"), str(svc, "id"));
    assert_true(json_is_null(json_object_get(svc, "tags")));
    /* the password was hashed on the way in (_transform defaults to true) */
    const json_t *ba = find(exp, "basicauth_credentials", "username", "alice");
    assert_int_equal(strncmp(str(ba, "password"), "$argon2id$", 10), 0);
    /* collections in dependency order */
    const char *prev = NULL;
    size_t prev_rank = 0;
    const char *k;
    json_t *v;
    json_object_foreach(exp, k, v) {
        if (k[0] == '_')
            continue;
        size_t rank = 0;
        while (aigw_entities[rank] && strcmp(aigw_entities[rank]->name, k) != 0)
            rank++;
        assert_non_null(aigw_entities[rank]);
        if (prev)
            assert_true(rank > prev_rank);
        prev = k;
        prev_rank = rank;
    }

    /* the export as YAML, parsed and imported into a fresh database, exports the same */
    char *yml = aigw_yaml_dump(exp);
    assert_non_null(yml);
    json_t *again = parse_ok(yml);
    free(yml);
    fixture_t *g = NULL;
    setup((void **)&g);
    if (aigw_declarative_import(g->s, again, &err) != 0)
        fail_msg("import of the export: %s", err.message);
    json_decref(again);
    json_t *exp2 = export_stable(g);
    if (!json_equal(exp, exp2)) {
        char *a = json_dumps(exp, JSON_COMPACT), *b = json_dumps(exp2, JSON_COMPACT);
        fail_msg("exports differ:\n%s\n%s", a, b);
    }
    json_decref(exp2);
    teardown((void **)&g);
    json_decref(exp);
}

static void test_import_is_one_transaction(void **state)
{
    fixture_t *f = *state;
    aigw_db_error_t err = { 0 };
    /* a service already in the database holds the name the document gives another id */
    json_t *pre = parse_ok("_format_version: \"3.0\"\n"
                           "services: [{id: 5e1a2b3c-0000-4000-8000-000000000001, name: taken,"
                           " host: a.test}]\n");
    assert_int_equal(aigw_declarative_import(f->s, pre, &err), 0);
    json_decref(pre);
    json_t *doc = parse_ok("_format_version: \"3.0\"\n"
                           "consumers: [{username: first}]\n"
                           "services: [{name: fine, host: b.test}, {name: taken, host: c.test}]\n");
    assert_int_equal(aigw_declarative_import(f->s, doc, &err), -1);
    assert_int_equal(err.code, AIGW_DBE_UNIQUE);
    assert_string_equal(err.message, "UNIQUE violation detected on '{name=\"taken\"}'");
    aigw_db_error_clear(&err);
    json_decref(doc);
    /* nothing of the failed import stayed */
    assert_int_equal(count_rows(f, "services"), 1);
    assert_int_equal(count_rows(f, "consumers"), 0);
}

static void test_replace(void **state)
{
    fixture_t *f = *state;
    aigw_db_error_t err = { 0 };
    json_t *a = parse_ok(full_doc);
    assert_int_equal(aigw_declarative_replace(f->s, a, &err), 0);
    json_decref(a);
    assert_int_equal(count_rows(f, "plugins"), 3);
    json_t *b = parse_ok("_format_version: \"3.0\"\n"
                         "services: [{name: only, host: only.test, routes: [{name: r, hosts: "
                         "[x.test]}]}]\n");
    if (aigw_declarative_replace(f->s, b, &err) != 0)
        fail_msg("replace: %s", err.message);
    json_decref(b);
    assert_int_equal(count_rows(f, "services"), 1);
    assert_int_equal(count_rows(f, "routes"), 1);
    assert_int_equal(count_rows(f, "plugins"), 0);
    assert_int_equal(count_rows(f, "consumers"), 0);
    assert_int_equal(count_rows(f, "targets"), 0);
    assert_int_equal(count_rows(f, "upstreams"), 0);
    assert_int_equal(count_rows(f, "basicauth_credentials"), 0);

    /* an empty configuration empties the store */
    json_t *c = parse_ok("_format_version: \"3.0\"\n");
    assert_int_equal(aigw_declarative_replace(f->s, c, &err), 0);
    json_decref(c);
    assert_int_equal(count_rows(f, "services"), 0);
    json_t *exp = export_stable(f);
    assert_json(exp, "{\"_format_version\":\"3.0\",\"_transform\":false}");
    json_decref(exp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_scalars),
        cmocka_unit_test(test_yaml_structure),
        cmocka_unit_test(test_yaml_errors_and_limits),
        cmocka_unit_test(test_yaml_dump),
        cmocka_unit_test(test_parse_kong_ids_and_nesting),
        cmocka_unit_test(test_parse_references),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_misc),
        cmocka_unit_test(test_lua_table),
        cmocka_unit_test_setup_teardown(test_import_export_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_is_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
    };
    return cmocka_run_group_tests_name("declarative", tests, NULL, NULL);
}
