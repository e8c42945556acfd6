/* aigwd/schema/plugins/request_transformer.c: the request-transformer plugin's config, as
 * kong/plugins/request-transformer/schema.lua (3.9.3). Kong also compiles each value as a
 * Penlight template (Lua expressions in $(...)); aigw runs no Lua and skips that step. */
#include <stdio.h>
#include <string.h>
#include "schema/plugins/plugins.h"

/* Lua's pair:match("^([^:]+):*(.-)$"): name up to the first ':', value after the colons.
 * Returns 0 when the pair starts with ':' (no name). */
static int split_pair(const char *s, size_t *name_len, const char **value)
{
    size_t n = strcspn(s, ":");
    if (n == 0)
        return 0;
    const char *v = s + n;
    while (*v == ':')
        v++;
    *name_len = n;
    *value = v;
    return 1;
}

/* validate_headers(pair, validate_value). */
static int headers_check(const json_t *v, char *msg, size_t len, int validate_value)
{
    if (!json_is_string(v))
        return 0;
    size_t n;
    const char *value;
    if (!split_pair(json_string_value(v), &n, &value)) {
        snprintf(msg, len, "'nil' is not a valid header");
        return -1;
    }
    if (!aigw_plugins__header_name_ok(json_string_value(v), n)) {
        snprintf(msg, len, "'%.*s' is not a valid header", (int)n, json_string_value(v));
        return -1;
    }
    if (validate_value && !aigw_plugins__header_name_ok(value, strlen(value))) {
        snprintf(msg, len, "'%s' is not a valid header", value);
        return -1;
    }
    return 0;
}

/* match = "^[^:]+:.*$" ("invalid value: %s"), checked before the custom validator. */
static int colon_match(const json_t *v, char *msg, size_t len)
{
    const char *s = json_string_value(v);
    if (s[0] != ':' && strchr(s, ':'))
        return 0;
    snprintf(msg, len, "invalid value: %s", s);
    return -1;
}

static int check_header(const json_t *v, char *msg, size_t len)
{
    return headers_check(v, msg, len, 0);
}

static int check_colon_header_value(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    if (colon_match(v, msg, len) != 0)
        return -1;
    return headers_check(v, msg, len, 0);
}

static int check_colon_headers(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    if (colon_match(v, msg, len) != 0)
        return -1;
    return headers_check(v, msg, len, 1);
}

/* check_for_value: "name:value" with a non-empty value. */
static int check_for_value(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    size_t n;
    const char *value;
    const char *s = json_string_value(v);
    if (!split_pair(s, &n, &value)) {
        /* Kong raises a Lua error here (it concatenates a nil name). */
        snprintf(msg, len, "key '' has no value");
        return -1;
    }
    if (value[0] == '\0') {
        snprintf(msg, len, "key '%.*s' has no value", (int)n, s);
        return -1;
    }
    return 0;
}

static const aigw_field_t el_header = {.type = AIGW_FT_STRING, .check = check_header};
static const aigw_field_t el_colon_string = {.type = AIGW_FT_STRING, .check = check_for_value};
static const aigw_field_t el_colon_header_value = {.type = AIGW_FT_STRING,
                                                   .check = check_colon_header_value};
static const aigw_field_t el_colon_headers = {.type = AIGW_FT_STRING,
                                              .check = check_colon_headers};

#define LIST(n, el)                                                                            \
    {                                                                                          \
        .name = n, .type = AIGW_FT_ARRAY, .flags = AIGW_F_REQUIRED, .dflt = "[]",             \
        .elements = &(el)                                                                      \
    }

/* strings_array_record */
static const aigw_field_t remove_fields[] = {
    LIST("body", aigw_plugins__el_string),
    LIST("headers", el_header),
    LIST("querystring", aigw_plugins__el_string),
    {.name = NULL},
};

/* colon_rename_strings_array_record */
static const aigw_field_t rename_fields[] = {
    LIST("body", el_colon_string),
    LIST("headers", el_colon_headers),
    LIST("querystring", el_colon_string),
    {.name = NULL},
};

/* colon_strings_array_record_plus_uri */
static const aigw_field_t replace_fields[] = {
    LIST("body", el_colon_string),
    LIST("headers", el_colon_header_value),
    LIST("querystring", el_colon_string),
    {.name = "uri", .type = AIGW_FT_STRING},
    {.name = NULL},
};

/* colon_strings_array_record (add, append) */
static const aigw_field_t add_fields[] = {
    LIST("body", el_colon_string),
    LIST("headers", el_colon_header_value),
    LIST("querystring", el_colon_string),
    {.name = NULL},
};

static const aigw_field_t config[] = {
    {.name = "http_method", .type = AIGW_FT_STRING, .check = aigw_plugins__check_http_method},
    {.name = "remove", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = remove_fields},
    {.name = "rename", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = rename_fields},
    {.name = "replace", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED,
     .fields = replace_fields},
    {.name = "add", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = add_fields},
    {.name = "append", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = add_fields},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_request_transformer = {
    .name = "request-transformer",
    .priority = 801,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
};
