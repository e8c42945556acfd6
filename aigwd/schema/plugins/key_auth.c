/* aigwd/schema/plugins/key_auth.c: the key-auth plugin's config, as
 * kong/plugins/key-auth/schema.lua (3.9.3). */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const aigw_field_t config[] = {
    {.name = "key_names", .type = AIGW_FT_ARRAY, .flags = AIGW_F_REQUIRED | AIGW_F_SPLIT_COMMAS,
     .dflt = "[\"apikey\"]", .elements = &aigw_plugins__el_header_name},
    {.name = "hide_credentials", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "anonymous", .type = AIGW_FT_STRING},
    {.name = "key_in_header", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "true"},
    {.name = "key_in_query", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "true"},
    {.name = "key_in_body", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "false"},
    {.name = "run_on_preflight", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "true"},
    {.name = "realm", .type = AIGW_FT_STRING},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_key_auth = {
    .name = "key-auth",
    .priority = 1250,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .flags = AIGW_P_NO_CONSUMER | AIGW_P_PROTOCOLS_HTTP,
};
