/* aigwd/schema/plugins/tcp_log.c: the tcp-log plugin's config, as
 * kong/plugins/tcp-log/schema.lua (3.9.3). */
#include <stddef.h>
#include "schema/plugins/plugins.h"

/* aigw: `custom_fields`, static values (any JSON) merged at the top level of every record;
 * the Lua-free counterpart of custom_fields_by_lua. */
static const aigw_field_t el_any = {.type = AIGW_FT_ANY};

static const aigw_field_t config[] = {
    {.name = "host", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
     .check = aigw_plugins__check_host},
    {.name = "port", .type = AIGW_FT_INTEGER, .flags = AIGW_F_REQUIRED | AIGW_F_HAS_BETWEEN,
     .min = 0, .max = 65535},
    {.name = "timeout", .type = AIGW_FT_NUMBER, .dflt = "10000"},
    {.name = "keepalive", .type = AIGW_FT_NUMBER, .dflt = "60000"},
    {.name = "tls", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "false"},
    {.name = "tls_sni", .type = AIGW_FT_STRING},
    {.name = "custom_fields", .type = AIGW_FT_MAP, .elements = &el_any,
     .check = aigw_plugins__check_lua_code},
    {.name = "custom_fields_by_lua", .type = AIGW_FT_MAP, .elements = &aigw_plugins__el_string,
     .check = aigw_plugins__check_lua_code},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_tcp_log = {
    .name = "tcp-log",
    .priority = 7,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
};
