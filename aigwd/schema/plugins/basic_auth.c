/* aigwd/schema/plugins/basic_auth.c: the basic-auth plugin's config, as
 * kong/plugins/basic-auth/schema.lua (3.9.3). */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const aigw_field_t config[] = {
    {.name = "anonymous", .type = AIGW_FT_STRING},
    {.name = "hide_credentials", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "realm", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED, .dflt = "\"service\""},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_basic_auth = {
    .name = "basic-auth",
    .priority = 1100,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .flags = AIGW_P_NO_CONSUMER | AIGW_P_PROTOCOLS_HTTP,
};
