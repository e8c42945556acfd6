/* tests/fuzz/fuzz_decode.c: libFuzzer harness for admin request decoding
 * (aigwd/admin/decode.c): form, multipart and JSON bodies and query strings, coerced with a
 * small fixed schema. Never crash, never leak, and the invariants callers rely on hold.
 *
 * Config byte (the first):
 *   bits 0-1  kind: 0 form, 1 multipart, 2 JSON, 3 query string
 *   bit  2    AIGW_DECODE_NO_MAPS (query)
 *   bit  3    no schema (coerce == NULL)
 *   bit  4    two steps: decode without a schema, then aigw_decode_coerce
 *   bit  5    plugin "b" instead of "a" for `config.*`
 * For multipart, the input up to the first '\n' (at most 256 bytes) is the Content-Type;
 * the rest is the body. Each buffer is its own exact-size heap block (never NUL-terminated),
 * so ASan sees any read past it.
 *
 * Checked on every input: the result codes and messages; a decoded value is an object that
 * jansson can dump; without a schema, form values are strings or true and nesting is at most
 * AIGW_DECODE_MAX_DEPTH; coercing a coerced object again changes nothing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/decode.h"
#include "fuzz_common.h"

/* ---- the schema ----------------------------------------------------------------------------- */

static const aigw_field_t f_str = { .name = "element", .type = AIGW_FT_STRING };
static const aigw_field_t f_int = { .name = "element", .type = AIGW_FT_INTEGER };
static const aigw_field_t f_int_split = { .name = "element", .type = AIGW_FT_INTEGER,
                                          .flags = AIGW_F_SPLIT_COMMAS };
static const aigw_field_t f_num = { .name = "element", .type = AIGW_FT_NUMBER };
static const aigw_field_t f_bool = { .name = "element", .type = AIGW_FT_BOOLEAN };
static const aigw_field_t f_str_array = { .name = "element", .type = AIGW_FT_ARRAY,
                                          .elements = &f_str };
static const aigw_field_t f_int_array = { .name = "element", .type = AIGW_FT_ARRAY,
                                          .elements = &f_int };

static const aigw_field_t rec_fields[] = {
    { .name = "ip", .type = AIGW_FT_STRING },
    { .name = "port", .type = AIGW_FT_INTEGER },
    { .name = "on", .type = AIGW_FT_BOOLEAN },
    { .name = "tags", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS, .elements = &f_str },
    { .name = NULL },
};
static const aigw_field_t f_rec = { .name = "element", .type = AIGW_FT_RECORD,
                                    .fields = rec_fields };
static const aigw_field_t f_map_num = { .name = "element", .type = AIGW_FT_MAP,
                                        .elements = &f_num };

static const aigw_field_t parent_fields[] = {
    { .name = "id", .type = AIGW_FT_STRING },
    { .name = "name", .type = AIGW_FT_STRING },
    { .name = "n", .type = AIGW_FT_INTEGER },
    { .name = NULL },
};

static const aigw_field_t entity_fields[] = {
    { .name = "name", .type = AIGW_FT_STRING },
    { .name = "i", .type = AIGW_FT_INTEGER },
    { .name = "x", .type = AIGW_FT_NUMBER },
    { .name = "b", .type = AIGW_FT_BOOLEAN },
    { .name = "paths", .type = AIGW_FT_ARRAY, .elements = &f_str },
    { .name = "tags", .type = AIGW_FT_SET, .elements = &f_str },
    { .name = "headers", .type = AIGW_FT_MAP, .elements = &f_str_array },
    { .name = "sources", .type = AIGW_FT_SET, .elements = &f_rec },
    { .name = "r", .type = AIGW_FT_RECORD, .fields = rec_fields },
    { .name = "config", .type = AIGW_FT_RECORD },
    { .name = "service", .type = AIGW_FT_FOREIGN, .reference = "parents" },
    { .name = "any", .type = AIGW_FT_ANY },
    { .name = "matrix", .type = AIGW_FT_ARRAY, .elements = &f_int_array },
    { .name = "maps", .type = AIGW_FT_ARRAY, .elements = &f_map_num },
    { .name = NULL },
};

static const aigw_field_t config_a[] = {
    { .name = "minute", .type = AIGW_FT_INTEGER },
    { .name = "ratio", .type = AIGW_FT_NUMBER },
    { .name = "on", .type = AIGW_FT_BOOLEAN },
    { .name = "allow", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS, .elements = &f_str },
    { .name = "codes", .type = AIGW_FT_ARRAY, .elements = &f_int_split },
    { .name = "flags", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
      .elements = &f_bool },
    { .name = "inner", .type = AIGW_FT_RECORD, .fields = rec_fields },
    { .name = "dyn", .type = AIGW_FT_RECORD },
    { .name = "hdrs", .type = AIGW_FT_MAP, .elements = &f_str },
    { .name = NULL },
};

static const aigw_field_t config_b[] = {
    { .name = "minute", .type = AIGW_FT_STRING },
    { .name = "scopes", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
      .elements = &f_str },
    { .name = "nums", .type = AIGW_FT_SET, .elements = &f_num },
    { .name = NULL },
};

/* The callback's ud: which plugin config `config.*` resolves against. */
typedef struct fud {
    const aigw_field_t *config;
} fud_t;

static const aigw_field_t *lookup(const aigw_field_t *fields, const char *name)
{
    for (; fields && fields->name; fields++) {
        if (strcmp(fields->name, name) == 0)
            return fields;
    }
    return NULL;
}

/* As aigw_schema_field_path over the tables above (ud: a fud_t). `config.dyn.*`
 * resolves against rec_fields, as a nested dynamic record would. */
static const aigw_field_t *on_coerce(void *ud, const char *const *path, size_t depth)
{
    const aigw_field_t *fields = entity_fields, *f = NULL;
    size_t i;

    CHECK(depth >= 1 && depth <= AIGW_DECODE_MAX_DEPTH);
    for (i = 0; i < depth; i++) {
        CHECK(path[i] != NULL);
        f = lookup(fields, path[i]);
        if (!f)
            return NULL;
        if (f->type == AIGW_FT_RECORD) {
            if (f->fields)
                fields = f->fields;
            else if (strcmp(f->name, "config") == 0)
                fields = ((const fud_t *)ud)->config;
            else
                fields = rec_fields;
        } else if (f->type == AIGW_FT_FOREIGN) {
            fields = parent_fields;
        } else {
            fields = NULL;
        }
    }
    return f;
}

/* ---- checks ------------------------------------------------------------------------------- */

static int known_error(const char *err)
{
    static const char *const msgs[] = {
        "Cannot parse JSON body",
        "Too many arguments",
        "Cannot parse multipart body",
        "Cannot parse arguments: invalid UTF-8",
        "Cannot parse arguments: keys nested too deeply",
    };
    size_t i;

    for (i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        if (strcmp(err, msgs[i]) == 0)
            return 1;
    }
    return 0;
}

/* Uncoerced form trees: strings or true at the leaves, depth bounded. */
static void check_raw(json_t *v, size_t depth)
{
    const char *key;
    json_t *m;
    size_t i;

    CHECK(depth <= AIGW_DECODE_MAX_DEPTH + 1);
    if (json_is_object(v)) {
        json_object_foreach(v, key, m) check_raw(m, depth + 1);
    } else if (json_is_array(v)) {
        CHECK(json_array_size(v) > 0);
        json_array_foreach(v, i, m) check_raw(m, depth + 1);
    } else {
        CHECK(json_is_string(v) || json_is_true(v));
        if (json_is_string(v))
            CHECK(strlen(json_string_value(v)) == json_string_length(v));
    }
}

static void check_ok(json_t *out, int raw, int coerced, fud_t *u)
{
    char *dump;

    CHECK(out != NULL && json_is_object(out));
    CHECK(out->refcount == 1);
    dump = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK(dump != NULL);
    free(dump);
    if (raw)
        check_raw(out, 0);
    if (coerced) {
        json_t *copy = json_deep_copy(out);
        char err[128] = "";
        CHECK(copy != NULL);
        CHECK(aigw_decode_coerce(out, on_coerce, u, err, sizeof err) ==
              AIGW_DECODE_OK);
        CHECK(json_equal(out, copy));
        json_decref(copy);
    }
}

/* An exact-size heap copy (len may be 0: then a 1-byte block that is never read). */
static char *dup_exact(const uint8_t *p, size_t len)
{
    char *b = malloc(len ? len : 1);
    CHECK(b != NULL);
    if (len)
        memcpy(b, p, len);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t cfg;
    const uint8_t *in;
    size_t len, ctlen = 0;
    int kind, no_schema, two_step;
    fud_t fud, *u = &fud;
    aigw_decode_coerce_fn fn;
    char *ct = NULL, *body;
    char err[128];
    json_t *out = (json_t *)1;
    int rc;

    if (size < 1)
        return 0;
    cfg = data[0];
    in = data + 1;
    len = size - 1;
    kind = cfg & 3;
    no_schema = (cfg & 0x08) != 0;
    two_step = (cfg & 0x10) != 0 && !no_schema;
    fud.config = (cfg & 0x20) ? config_b : config_a;
    fn = (no_schema || two_step) ? NULL : on_coerce;

    if (kind == 1) {
        const uint8_t *nl = memchr(in, '\n', len < 256 ? len : 256);
        if (!nl)
            return 0;
        ctlen = (size_t)(nl - in);
        ct = dup_exact(in, ctlen);
        in = nl + 1;
        len -= ctlen + 1;
        {
            aigw_body_kind_t k;
            if (aigw_decode_kind(ct, ctlen, len, cfg & 0x40, &k) == 0)
                CHECK(k <= AIGW_BODY_YAML);
        }
    }
    body = dup_exact(in, len);
    err[0] = '\0';

    switch (kind) {
    case 0:
        rc = aigw_decode_body(AIGW_BODY_FORM, "application/x-www-form-urlencoded", 33, body,
                              len, fn, u, &out, err, sizeof err);
        break;
    case 1:
        rc = aigw_decode_body(AIGW_BODY_MULTIPART, ct, ctlen, body, len, fn, u,
                              &out, err, sizeof err);
        break;
    case 2:
        rc = aigw_decode_body(AIGW_BODY_JSON, "application/json", 16, body, len, fn,
                              u, &out, err, sizeof err);
        break;
    default:
        rc = aigw_decode_query(body, len, (cfg & 0x04) ? AIGW_DECODE_NO_MAPS : 0, fn,
                               u, &out, err, sizeof err);
        break;
    }

    if (rc == AIGW_DECODE_OK) {
        int args = kind != 2;
        check_ok(out, args && fn == NULL, 0, u);
        if (args && two_step) {
            CHECK(aigw_decode_coerce(out, on_coerce, u, err, sizeof err) ==
                  AIGW_DECODE_OK);
        }
        if (args && !no_schema)
            check_ok(out, 0, 1, u);
        json_decref(out);
    } else {
        CHECK(rc == AIGW_DECODE_EBAD || rc == AIGW_DECODE_ENOMEM);
        CHECK(out == NULL);
        CHECK(rc == AIGW_DECODE_ENOMEM || known_error(err));
        CHECK(kind != 2 || strcmp(err, "Cannot parse JSON body") == 0);
    }
    free(body);
    free(ct);
    return 0;
}
