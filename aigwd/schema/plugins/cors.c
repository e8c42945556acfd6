/* aigwd/schema/plugins/cors.c: the cors plugin's config, as kong/plugins/cors/schema.lua
 * (3.9.3). */
#include <stdio.h>
#include <string.h>
#include "schema/plugins/plugins.h"

static const char *const methods[] = {"GET",     "HEAD",  "PUT",     "PATCH", "POST",
                                      "DELETE",  "OPTIONS", "TRACE", "CONNECT", NULL};

/* validate_asterisk_or_regex. */
static int check_origin(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (strcmp(s, "*") == 0 || aigw_plugins__is_regex(s, json_string_length(v)))
        return 0;
    snprintf(msg, len, "'%s' is not a valid regex", s);
    return -1;
}

static const aigw_field_t el_origin = {.type = AIGW_FT_STRING, .check = check_origin};
static const aigw_field_t el_method = {.type = AIGW_FT_STRING, .one_of = methods};

static const aigw_field_t config[] = {
    {.name = "origins", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &el_origin},
    {.name = "headers", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &aigw_plugins__el_string},
    {.name = "exposed_headers", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &aigw_plugins__el_string},
    {.name = "methods", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .dflt = "[\"GET\",\"HEAD\",\"PUT\",\"PATCH\",\"POST\",\"DELETE\",\"OPTIONS\",\"TRACE\","
             "\"CONNECT\"]",
     .elements = &el_method},
    {.name = "max_age", .type = AIGW_FT_NUMBER},
    {.name = "credentials", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "false"},
    {.name = "private_network", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "preflight_continue", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_cors = {
    .name = "cors",
    .priority = 2000,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .flags = AIGW_P_NO_CONSUMER | AIGW_P_PROTOCOLS_HTTP,
};
