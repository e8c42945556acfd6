/* aigwd/schema/plugins/ip_restriction.c: the ip-restriction plugin's config, as
 * kong/plugins/ip-restriction/schema.lua (3.9.3). Its protocols are typedefs.protocols with
 * a default of its own, stream protocols included. */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const char *const protocols[] = {"http", "https", "tcp", "tls", "grpc", "grpcs", NULL};

static const aigw_field_t config[] = {
    {.name = "allow", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &aigw_plugins__el_ip_or_cidr},
    {.name = "deny", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &aigw_plugins__el_ip_or_cidr},
    {.name = "status", .type = AIGW_FT_NUMBER},
    {.name = "message", .type = AIGW_FT_STRING},
    {.name = NULL},
};

/* entity_checks: at_least_one_of { config.allow, config.deny }. */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    (void)field_errors;
    static const char *const names[] = {"allow", "deny", NULL};
    return aigw_plugins__at_least_one_of(cfg, names, entity_errors);
}

const aigw_plugin_schema_t aigw_plugin_ip_restriction = {
    .name = "ip-restriction",
    .priority = 990,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .protocols = protocols,
    .check = check,
};
