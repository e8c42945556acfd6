/* aigwd/schema/plugins/acl.c: the acl plugin's config, as kong/plugins/acl/schema.lua (3.9.3),
 * plus aigw's input aliases `whitelist` / `blacklist` for `allow` / `deny` (removed from Kong
 * in 3.0; seed 000 still posts config.whitelist=a,b; reference/differences.md). */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const aigw_field_t config[] = {
    {.name = "allow", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &aigw_plugins__el_string},
    {.name = "deny", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &aigw_plugins__el_string},
    {.name = "hide_groups_header", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "always_use_authenticated_groups", .type = AIGW_FT_BOOLEAN,
     .flags = AIGW_F_REQUIRED, .dflt = "false"},
    /* aigw extension: accepted on input, stored and returned as allow / deny. */
    {.name = "whitelist", .type = AIGW_FT_ARRAY,
     .flags = AIGW_F_SPLIT_COMMAS | AIGW_F_INPUT_ONLY, .elements = &aigw_plugins__el_string,
     .alias_of = "allow"},
    {.name = "blacklist", .type = AIGW_FT_ARRAY,
     .flags = AIGW_F_SPLIT_COMMAS | AIGW_F_INPUT_ONLY, .elements = &aigw_plugins__el_string,
     .alias_of = "deny"},
    {.name = NULL},
};

/* entity_checks: only_one_of then at_least_one_of { config.allow, config.deny }; an empty
 * config fails both. */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    (void)field_errors;
    static const char *const names[] = {"allow", "deny", NULL};
    int allow = aigw_plugins__nonempty(json_object_get(cfg, "allow"));
    int deny = aigw_plugins__nonempty(json_object_get(cfg, "deny"));
    int rc = 0;
    if (allow + deny != 1) {
        aigw_plugins__entity_error(entity_errors, "exactly one of these fields must be "
                                                  "non-empty: 'config.allow', 'config.deny'");
        rc = -1;
    }
    if (aigw_plugins__at_least_one_of(cfg, names, entity_errors) != 0)
        rc = -1;
    return rc;
}

const aigw_plugin_schema_t aigw_plugin_acl = {
    .name = "acl",
    .priority = 950,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .check = check,
    .flags = AIGW_P_NO_CONSUMER | AIGW_P_PROTOCOLS_HTTP,
};
