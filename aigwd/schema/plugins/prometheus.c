/* aigwd/schema/plugins/prometheus.c: the prometheus plugin's config, as
 * kong/plugins/prometheus/schema.lua (3.9.3). Kong's custom_validator only checks that
 * nginx's shared dict exists, which has no aigw counterpart. */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const aigw_field_t config[] = {
    {.name = "per_consumer", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = "status_code_metrics", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = "ai_metrics", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = "latency_metrics", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = "bandwidth_metrics", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = "upstream_health_metrics", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_prometheus = {
    .name = "prometheus",
    .priority = 13,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
};
