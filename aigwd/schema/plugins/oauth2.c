/* aigwd/schema/plugins/oauth2.c: the oauth2 plugin's config, as kong/plugins/oauth2/schema.lua
 * (3.9.3). */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const char *const pkce_modes[] = {"none", "lax", "strict", NULL};

static const aigw_field_t config[] = {
    {.name = "scopes", .type = AIGW_FT_ARRAY, .flags = AIGW_F_SPLIT_COMMAS,
     .elements = &aigw_plugins__el_string},
    {.name = "mandatory_scope", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    /* Kong also says unique = true, which its DAO never enforces inside a plugin config, and
     * encrypted = true (Enterprise only). Returned in clear by the admin API, never logged. */
    {.name = "provision_key", .type = AIGW_FT_STRING,
     .flags = AIGW_F_REQUIRED | AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_SECRET},
    {.name = "token_expiration", .type = AIGW_FT_NUMBER, .flags = AIGW_F_REQUIRED,
     .dflt = "7200"},
    {.name = "enable_authorization_code", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "enable_implicit_grant", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "enable_client_credentials", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "enable_password_grant", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "hide_credentials", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "accept_http_if_already_terminated", .type = AIGW_FT_BOOLEAN,
     .flags = AIGW_F_REQUIRED, .dflt = "false"},
    {.name = "anonymous", .type = AIGW_FT_STRING},
    {.name = "global_credentials", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "auth_header_name", .type = AIGW_FT_STRING, .dflt = "\"authorization\""},
    /* typedefs.ttl: between 0 and DAO_MAX_TTL (1e8). */
    {.name = "refresh_token_ttl", .type = AIGW_FT_NUMBER,
     .flags = AIGW_F_REQUIRED | AIGW_F_HAS_BETWEEN, .dflt = "1209600", .min = 0, .max = 1e8},
    {.name = "reuse_refresh_token", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "pkce", .type = AIGW_FT_STRING, .dflt = "\"lax\"", .one_of = pkce_modes},
    {.name = "realm", .type = AIGW_FT_STRING},
    {.name = NULL},
};

static int truthy(const json_t *cfg, const char *name)
{
    return json_is_true(json_object_get(cfg, name));
}

/* The config record's own entity_checks (errors inside "config"), then its custom_validator
 * (a string for "config"), which Kong runs only when the record validated. */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    (void)entity_errors;
    const json_t *scopes = json_object_get(cfg, "scopes");
    if (truthy(cfg, "mandatory_scope") && (!scopes || json_is_null(scopes))) {
        aigw_plugins__field_error(field_errors, "config.scopes", "required field missing");
        aigw_plugins__record_entity_error(
            field_errors, "config",
            "failed conditional validation given value of field 'mandatory_scope'");
        return -1;
    }
    if (truthy(cfg, "enable_authorization_code") || truthy(cfg, "enable_implicit_grant") ||
        truthy(cfg, "enable_client_credentials") || truthy(cfg, "enable_password_grant"))
        return 0;
    aigw_plugins__field_error(field_errors, "config",
                              "at least one of these fields must be true: "
                              "enable_authorization_code, enable_implicit_grant, "
                              "enable_client_credentials, enable_password_grant");
    return -1;
}

const aigw_plugin_schema_t aigw_plugin_oauth2 = {
    .name = "oauth2",
    .priority = 1400,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .check = check,
    .flags = AIGW_P_NO_CONSUMER | AIGW_P_PROTOCOLS_HTTP,
};
