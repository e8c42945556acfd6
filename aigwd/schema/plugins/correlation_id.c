/* aigwd/schema/plugins/correlation_id.c: the correlation-id plugin's config, as
 * kong/plugins/correlation-id/schema.lua (3.9.3). */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const char *const generators[] = {"uuid", "uuid#counter", "tracker", NULL};

static const aigw_field_t config[] = {
    {.name = "header_name", .type = AIGW_FT_STRING, .dflt = "\"Kong-Request-ID\""},
    {.name = "generator", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
     .dflt = "\"uuid#counter\"", .one_of = generators},
    {.name = "echo_downstream", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_correlation_id = {
    .name = "correlation-id",
    .priority = 100001,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .flags = AIGW_P_PROTOCOLS_HTTP,
};
