/* aigwd/schema/plugins/response_transformer.c: the response-transformer plugin's config, as
 * kong/plugins/response-transformer/schema.lua (3.9.3). */
#include <stdio.h>
#include <string.h>
#include "schema/plugins/plugins.h"

static const char *const json_types[] = {"boolean", "number", "string", NULL};

/* match = "^[^:]+:.*$" ("invalid value: %s"). */
static int check_colon(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (s[0] != ':' && strchr(s, ':'))
        return 0;
    snprintf(msg, len, "invalid value: %s", s);
    return -1;
}

/* The match, then validate_colon_headers: both sides of "old:new" are header names. */
static int check_colon_headers(const json_t *v, char *msg, size_t len)
{
    if (check_colon(v, msg, len) != 0)
        return -1;
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = strcspn(s, ":");
    const char *value = s + n;
    while (*value == ':')
        value++;
    if (!aigw_plugins__header_name_ok(s, n)) {
        snprintf(msg, len, "'%.*s' is not a valid header", (int)n, s);
        return -1;
    }
    if (!aigw_plugins__header_name_ok(value, strlen(value))) {
        snprintf(msg, len, "'%s' is not a valid header", value);
        return -1;
    }
    return 0;
}

static const aigw_field_t el_colon = {.type = AIGW_FT_STRING, .check = check_colon};
static const aigw_field_t el_colon_headers = {.type = AIGW_FT_STRING,
                                              .check = check_colon_headers};
static const aigw_field_t el_json_type = {.type = AIGW_FT_STRING, .one_of = json_types};

#define LIST(n, el)                                                                            \
    {                                                                                          \
        .name = n, .type = AIGW_FT_ARRAY, .flags = AIGW_F_REQUIRED, .dflt = "[]",             \
        .elements = &(el)                                                                      \
    }

/* string_record */
static const aigw_field_t remove_fields[] = {
    LIST("json", aigw_plugins__el_string),
    LIST("headers", aigw_plugins__el_string),
    {.name = NULL},
};

/* colon_rename_strings_array_record */
static const aigw_field_t rename_fields[] = {
    LIST("json", el_colon),
    LIST("headers", el_colon_headers),
    {.name = NULL},
};

/* colon_string_record (replace, add, append) */
static const aigw_field_t colon_fields[] = {
    LIST("json", el_colon),
    LIST("json_types", el_json_type),
    LIST("headers", el_colon),
    {.name = NULL},
};

static const aigw_field_t config[] = {
    {.name = "remove", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = remove_fields},
    {.name = "rename", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = rename_fields},
    {.name = "replace", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = colon_fields},
    {.name = "add", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = colon_fields},
    {.name = "append", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = colon_fields},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_response_transformer = {
    .name = "response-transformer",
    .priority = 800,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .flags = AIGW_P_PROTOCOLS_HTTP,
};
