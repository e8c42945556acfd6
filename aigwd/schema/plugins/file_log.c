/* aigwd/schema/plugins/file_log.c: the file-log plugin's config, as
 * kong/plugins/file-log/schema.lua (3.9.3). */
#include <stdio.h>
#include <string.h>
#include "schema/plugins/plugins.h"

/* match = [[^[^*&%%\`]+$]] with err = "not a valid filename". */
static int check_path(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (s[0] != '\0' && strpbrk(s, "*&%\\`") == NULL)
        return 0;
    snprintf(msg, len, "not a valid filename");
    return -1;
}

/* aigw: `custom_fields`, static values (any JSON) merged at the top level of every record;
 * the Lua-free counterpart of custom_fields_by_lua. */
static const aigw_field_t el_any = {.type = AIGW_FT_ANY};

static const aigw_field_t config[] = {
    {.name = "path", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED, .check = check_path},
    {.name = "reopen", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "false"},
    {.name = "custom_fields", .type = AIGW_FT_MAP, .elements = &el_any,
     .check = aigw_plugins__check_lua_code},
    {.name = "custom_fields_by_lua", .type = AIGW_FT_MAP, .elements = &aigw_plugins__el_string,
     .check = aigw_plugins__check_lua_code},
    {.name = NULL},
};

const aigw_plugin_schema_t aigw_plugin_file_log = {
    .name = "file-log",
    .priority = 9,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
};
