/* aigwd/schema/plugins/jwt.c: the jwt plugin's config, as kong/plugins/jwt/schema.lua (3.9.3),
 * plus aigw's `consumer_fallback` (reference/differences.md: the lookup by `kid` and by
 * consumer username when no credential has the key claim's value as key). */
#include <stddef.h>
#include <string.h>
#include "schema/plugins/plugins.h"

static const char *const claims[] = {"exp", "nbf", NULL};
static const aigw_field_t el_claim = {.type = AIGW_FT_STRING, .one_of = claims};

static const aigw_field_t config[] = {
    {.name = "uri_param_names", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS,
     .dflt = "[\"jwt\"]", .elements = &aigw_plugins__el_string},
    {.name = "cookie_names", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS, .dflt = "[]",
     .elements = &aigw_plugins__el_string},
    {.name = "key_claim_name", .type = AIGW_FT_STRING, .dflt = "\"iss\""},
    {.name = "secret_is_base64", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "claims_to_verify", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &el_claim},
    {.name = "anonymous", .type = AIGW_FT_STRING},
    {.name = "run_on_preflight", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "true"},
    {.name = "maximum_expiration", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_BETWEEN,
     .dflt = "0", .min = 0, .max = 31536000},
    {.name = "header_names", .type = AIGW_FT_SET, .flags = AIGW_F_SPLIT_COMMAS,
     .dflt = "[\"authorization\"]", .elements = &aigw_plugins__el_string},
    {.name = "realm", .type = AIGW_FT_STRING},
    /* aigw extension. */
    {.name = "consumer_fallback", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "true"},
    {.name = NULL},
};

/* entity_checks: conditional { if config.maximum_expiration gt 0, then config.claims_to_verify
 * contains "exp" }. As in Kong, a null maximum_expiration also satisfies the `if` (a null
 * passes a validator without `eq`), and a null claims_to_verify satisfies the `then`. */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    const json_t *maxexp = json_object_get(cfg, "maximum_expiration");
    const json_t *claims_v = json_object_get(cfg, "claims_to_verify");
    if (!maxexp || (json_is_number(maxexp) && json_number_value(maxexp) <= 0))
        return 0;
    if (!json_is_array(claims_v))
        return 0;
    size_t i;
    const json_t *c;
    json_array_foreach(claims_v, i, c) {
        if (json_is_string(c) && strcmp(json_string_value(c), "exp") == 0)
            return 0;
    }
    return aigw_plugins__conditional_failed(entity_errors, field_errors,
                                            "config.maximum_expiration",
                                            "config.claims_to_verify", "expected to contain: exp");
}

const aigw_plugin_schema_t aigw_plugin_jwt = {
    .name = "jwt",
    .priority = 1450,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .check = check,
    .flags = AIGW_P_NO_CONSUMER | AIGW_P_PROTOCOLS_HTTP,
};
