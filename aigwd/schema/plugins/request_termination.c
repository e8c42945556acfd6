/* aigwd/schema/plugins/request_termination.c: the request-termination plugin's config, as
 * kong/plugins/request-termination/schema.lua (3.9.3). */
#include <stddef.h>
#include "schema/plugins/plugins.h"

static const aigw_field_t config[] = {
    {.name = "status_code", .type = AIGW_FT_INTEGER,
     .flags = AIGW_F_REQUIRED | AIGW_F_HAS_BETWEEN, .dflt = "503", .min = 100, .max = 599},
    {.name = "message", .type = AIGW_FT_STRING},
    {.name = "content_type", .type = AIGW_FT_STRING},
    {.name = "body", .type = AIGW_FT_STRING},
    {.name = "echo", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "false"},
    {.name = "trigger", .type = AIGW_FT_STRING, .check = aigw_plugins__check_header_name},
    {.name = NULL},
};

static int present(const json_t *cfg, const char *name)
{
    const json_t *v = json_object_get(cfg, name);
    return json_is_string(v) && json_string_length(v) > 0;
}

/* The config record's custom_validator: a string for "config". */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    (void)entity_errors;
    const char *err = NULL;
    int message = present(cfg, "message");
    int content_type = present(cfg, "content_type");
    int body = present(cfg, "body");
    if (message && (content_type || body))
        err = "message cannot be used with content_type or body";
    else if (content_type && !body)
        err = "content_type requires a body";
    else if (json_is_true(json_object_get(cfg, "echo")) && (content_type || body))
        err = "echo cannot be used with content_type and body";
    if (!err)
        return 0;
    aigw_plugins__field_error(field_errors, "config", err);
    return -1;
}

const aigw_plugin_schema_t aigw_plugin_request_termination = {
    .name = "request-termination",
    .priority = 2,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .check = check,
    .flags = AIGW_P_PROTOCOLS_HTTP,
};
