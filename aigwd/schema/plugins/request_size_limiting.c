/* aigwd/schema/plugins/request_size_limiting.c: the request-size-limiting plugin's config, as
 * kong/plugins/request-size-limiting/schema.lua (3.9.3); size units from its handler.lua. */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const char *const size_units[] = {"megabytes", "kilobytes", "bytes", NULL};

static const aigw_field_t config[] = {
    {.name = "allowed_payload_size", .type = AIGW_FT_INTEGER, .dflt = "128"},
    {.name = "size_unit", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
     .dflt = "\"megabytes\"", .one_of = size_units},
    {.name = "require_content_length", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_request_size_limiting = {
    .name = "request-size-limiting",
    .priority = 951,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .flags = AIGW_P_PROTOCOLS_HTTP,
};
