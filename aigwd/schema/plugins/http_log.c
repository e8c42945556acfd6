/* aigwd/schema/plugins/http_log.c: the http-log plugin's config, as
 * kong/plugins/http-log/schema.lua and kong/tools/queue_schema.lua (3.9.3). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "schema/plugins/plugins.h"

static const char *const methods[] = {"POST", "PUT", "PATCH", NULL};
static const char *const content_types[] = {"application/json",
                                            "application/json; charset=utf-8", NULL};
static const char *const concurrency[] = {"-1", "1", NULL};

/* typedefs.queue (kong/tools/queue_schema.lua). */
static const aigw_field_t queue[] = {
    {.name = "max_batch_size", .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_BETWEEN,
     .dflt = "1", .min = 1, .max = 1000000},
    {.name = "max_coalescing_delay", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_BETWEEN,
     .dflt = "1", .min = 0, .max = 3600},
    {.name = "max_entries", .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_BETWEEN,
     .dflt = "10000", .min = 1, .max = 1000000},
    {.name = "max_bytes", .type = AIGW_FT_INTEGER},
    {.name = "max_retry_time", .type = AIGW_FT_NUMBER, .dflt = "60"},
    {.name = "initial_retry_delay", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_BETWEEN,
     .dflt = "0.01", .min = 0.001, .max = 1000000},
    {.name = "max_retry_delay", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_BETWEEN,
     .dflt = "60", .min = 0.001, .max = 1000000},
    {.name = "concurrency_limit", .type = AIGW_FT_INTEGER, .dflt = "1", .one_of = concurrency},
    {.name = NULL},
};

/* Lua pattern test: does s equal `word` letter by letter, where each letter may be either
 * case, except positions listed in `lower_only` (Kong's pattern has "[nn]" there). */
static int pattern_eq(const char *s, const char *word, const char *lower_only)
{
    size_t n = strlen(word);
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (lower_only && lower_only[i] == 'x') {
            if (s[i] != word[i])
                return 0;
        } else if (tolower((unsigned char)s[i]) != word[i]) {
            return 0;
        }
    }
    return 1;
}

/* `headers` keys: typedefs.header_name with Kong's match_none list. Kong's Content-Length
 * pattern reads "[Ll][Ee][nn][Gg]...", so only a lowercase 'n' is refused there; kept as is. */
static int check_headers(const json_t *v, char *msg, size_t len)
{
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return 0;
    json_object_foreach((json_t *)(uintptr_t)v, key, val) {
        (void)val;
        if (key[0] == '\0') {
            snprintf(msg, len, "length must be at least 1");
            return -1;
        }
        if (pattern_eq(key, "host", NULL)) {
            snprintf(msg, len, "cannot contain 'Host' header");
            return -1;
        }
        if (pattern_eq(key, "content-length", "          x   ")) {
            snprintf(msg, len, "cannot contain 'Content-Length' header");
            return -1;
        }
        if (pattern_eq(key, "content-type", NULL)) {
            snprintf(msg, len, "cannot contain 'Content-Type' header");
            return -1;
        }
        json_t *k = json_string(key);
        int rc = aigw_plugins__check_header_name(k, msg, len);
        json_decref(k);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* aigw: `custom_fields`, static values (any JSON) merged at the top level of every record;
 * the Lua-free counterpart of custom_fields_by_lua. */
static const aigw_field_t el_any = {.type = AIGW_FT_ANY};

static const aigw_field_t config[] = {
    {.name = "http_endpoint", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
     .check = aigw_plugins__check_url},
    {.name = "method", .type = AIGW_FT_STRING, .dflt = "\"POST\"", .one_of = methods},
    {.name = "content_type", .type = AIGW_FT_STRING, .dflt = "\"application/json\"",
     .one_of = content_types},
    {.name = "timeout", .type = AIGW_FT_NUMBER, .dflt = "10000"},
    {.name = "keepalive", .type = AIGW_FT_NUMBER, .dflt = "60000"},
    /* Deprecated (removal in 4.0) but still plain, stored fields in 3.9. */
    {.name = "retry_count", .type = AIGW_FT_INTEGER},
    {.name = "queue_size", .type = AIGW_FT_INTEGER},
    {.name = "flush_timeout", .type = AIGW_FT_NUMBER},
    {.name = "headers", .type = AIGW_FT_MAP, .elements = &aigw_plugins__el_string,
     .check = check_headers},
    {.name = "queue", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = queue},
    {.name = "custom_fields", .type = AIGW_FT_MAP, .elements = &el_any,
     .check = aigw_plugins__check_lua_code},
    {.name = "custom_fields_by_lua", .type = AIGW_FT_MAP, .elements = &aigw_plugins__el_string,
     .check = aigw_plugins__check_lua_code},
    {.name = NULL},
};

/* The config record's custom_validator: a string for "config". */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    (void)entity_errors;
    const json_t *url = json_object_get(cfg, "http_endpoint");
    const json_t *headers = json_object_get(cfg, "headers");
    if (!json_is_string(url) || !json_is_object(headers) ||
        !aigw_plugins__url_has_userinfo(json_string_value(url)))
        return 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)(uintptr_t)headers, key, val) {
        (void)val;
        if (strcasecmp(key, "authorization") == 0) {
            aigw_plugins__field_error(field_errors, "config",
                                      "specifying both an 'Authorization' header and user info "
                                      "in 'http_endpoint' is not allowed");
            return -1;
        }
    }
    return 0;
}

const aigw_plugin_schema_t aigw_plugin_http_log = {
    .name = "http-log",
    .priority = 12,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .check = check,
};
