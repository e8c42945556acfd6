/* aigwd/schema/plugins/ai_prompt_guard.c: the ai-prompt-guard plugin's config, as
 * kong/plugins/ai-prompt-guard/schema.lua (3.9.3). The patterns are compiled when the
 * snapshot is loaded (a bad regex makes the instance answer 500, as in Kong), not here.
 * aigw extensions: `preset` (a set of built-in deny lists: "injection", the common
 * prompt-injection phrasings; it also satisfies at_least_one_of) and `allow_plain_body`
 * (check non-JSON bodies as one prompt instead of refusing them). */
#include <stdio.h>
#include "schema/plugins/plugins.h"

static const char *const llm_formats[] = {"openai", "bedrock", "gemini", NULL};
static const char *const presets[] = {"injection", NULL};

/* len_max = 500 on each pattern (bytes, as Lua's #). */
static int check_pattern(const json_t *v, char *msg, size_t len)
{
    if (json_is_string(v) && json_string_length(v) > 500) {
        snprintf(msg, len, "length must be at most 500");
        return -1;
    }
    return 0;
}

/* len_max = 10 on each list. */
static int check_patterns(const json_t *v, char *msg, size_t len)
{
    if (json_is_array(v) && json_array_size(v) > 10) {
        snprintf(msg, len, "length must be at most 10");
        return -1;
    }
    return 0;
}

static const aigw_field_t el_pattern = {.type = AIGW_FT_STRING, .flags = AIGW_F_LEN_MIN,
                                        .len_min = 1, .check = check_pattern};

static const aigw_field_t el_preset = {.type = AIGW_FT_STRING, .one_of = presets};

static const aigw_field_t config[] = {
    {.name = "allow_patterns", .type = AIGW_FT_ARRAY, .elements = &el_pattern,
     .check = check_patterns},
    {.name = "deny_patterns", .type = AIGW_FT_ARRAY, .elements = &el_pattern,
     .check = check_patterns},
    {.name = "allow_all_conversation_history", .type = AIGW_FT_BOOLEAN,
     .flags = AIGW_F_REQUIRED, .dflt = "false"},
    {.name = "max_request_body_size", .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_GT,
     .dflt = "8192", .min = 0},
    {.name = "match_all_roles", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "llm_format", .type = AIGW_FT_STRING, .dflt = "\"openai\"", .one_of = llm_formats},
    {.name = "preset", .type = AIGW_FT_SET, .elements = &el_preset},
    {.name = "allow_plain_body", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = NULL},
};

/* entity_checks: at_least_one_of { allow_patterns, deny_patterns }, then conditional
 * { if match_all_roles eq true, then allow_all_conversation_history eq false }. */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    static const char *const names[] = {"allow_patterns", "deny_patterns", NULL};
    int rc = aigw_plugins__nonempty(json_object_get(cfg, "preset"))
                 ? 0 : aigw_plugins__at_least_one_of(cfg, names, entity_errors);
    if (json_is_true(json_object_get(cfg, "match_all_roles")) &&
        json_is_true(json_object_get(cfg, "allow_all_conversation_history")))
        rc = aigw_plugins__conditional_failed(
            entity_errors, field_errors, "config.match_all_roles",
            "config.allow_all_conversation_history", "value must be false");
    return rc;
}

const aigw_plugin_schema_t aigw_plugin_ai_prompt_guard = {
    .name = "ai-prompt-guard",
    .priority = 771,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .check = check,
    .flags = AIGW_P_PROTOCOLS_HTTP,
};
