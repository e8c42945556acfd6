/* aigwd/schema/plugins/rate_limiting.c: the rate-limiting plugin's config, as
 * kong/plugins/rate-limiting/schema.lua and kong/tools/redis/schema.lua (3.9.3), with the
 * deprecated redis_* shorthands that 3.9 still accepts (removal in 4.0) as dotted aliases. */
#include <stdio.h>
#include <string.h>
#include "schema/plugins/plugins.h"

static const char *const limit_by[] = {"consumer", "credential", "ip", "service", "header",
                                       "path", NULL};
/* Kong offers only local and redis when database = off or role = control_plane; the
 * admin/declarative side must narrow this list there ("expected one of: local, redis"). */
static const char *const policies[] = {"local", "cluster", "redis", NULL};

/* kong/tools/redis/schema.lua config_schema. */
static const aigw_field_t redis_fields[] = {
    {.name = "host", .type = AIGW_FT_STRING, .check = aigw_plugins__check_host},
    {.name = "port", .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_BETWEEN, .dflt = "6379",
     .min = 0, .max = 65535},
    {.name = "timeout", .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_BETWEEN, .dflt = "2000",
     .min = 0, .max = 2147483646},
    {.name = "username", .type = AIGW_FT_STRING},
    {.name = "password", .type = AIGW_FT_STRING, .flags = AIGW_F_LEN_MIN | AIGW_F_SECRET,
     .len_min = 0},
    {.name = "database", .type = AIGW_FT_INTEGER, .dflt = "0"},
    {.name = "ssl", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = "ssl_verify", .type = AIGW_FT_BOOLEAN, .dflt = "false"},
    {.name = "server_name", .type = AIGW_FT_STRING, .check = aigw_plugins__check_sni},
    {.name = NULL},
};

static const aigw_field_t config[] = {
    {.name = "second", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .min = 0},
    {.name = "minute", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .min = 0},
    {.name = "hour", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .min = 0},
    {.name = "day", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .min = 0},
    {.name = "month", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .min = 0},
    {.name = "year", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .min = 0},
    {.name = "limit_by", .type = AIGW_FT_STRING, .dflt = "\"consumer\"", .one_of = limit_by},
    {.name = "header_name", .type = AIGW_FT_STRING, .check = aigw_plugins__check_header_name},
    {.name = "path", .type = AIGW_FT_STRING, .starts_with = "/",
     .check = aigw_plugins__check_path},
    {.name = "policy", .type = AIGW_FT_STRING, .flags = AIGW_F_LEN_MIN, .len_min = 0,
     .dflt = "\"local\"", .one_of = policies},
    {.name = "fault_tolerant", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "true"},
    {.name = "redis", .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED, .fields = redis_fields},
    {.name = "hide_client_headers", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
     .dflt = "false"},
    {.name = "error_code", .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_GT, .dflt = "429",
     .min = 0},
    {.name = "error_message", .type = AIGW_FT_STRING, .dflt = "\"API rate limit exceeded\""},
    {.name = "sync_rate", .type = AIGW_FT_NUMBER, .flags = AIGW_F_REQUIRED, .dflt = "-1"},
    /* Deprecated shorthands (shorthand_fields), each with Kong's own type. Not input-only:
     * Kong 3.9 shows them on output with the value of their target. */
    {.name = "redis_host", .type = AIGW_FT_STRING, .alias_of = "redis.host"},
    {.name = "redis_port", .type = AIGW_FT_INTEGER, .alias_of = "redis.port"},
    {.name = "redis_password", .type = AIGW_FT_STRING, .flags = AIGW_F_LEN_MIN | AIGW_F_SECRET,
     .len_min = 0, .alias_of = "redis.password"},
    {.name = "redis_username", .type = AIGW_FT_STRING, .alias_of = "redis.username"},
    {.name = "redis_ssl", .type = AIGW_FT_BOOLEAN, .alias_of = "redis.ssl"},
    {.name = "redis_ssl_verify", .type = AIGW_FT_BOOLEAN, .alias_of = "redis.ssl_verify"},
    {.name = "redis_server_name", .type = AIGW_FT_STRING, .alias_of = "redis.server_name"},
    {.name = "redis_timeout", .type = AIGW_FT_INTEGER, .alias_of = "redis.timeout"},
    {.name = "redis_database", .type = AIGW_FT_INTEGER, .alias_of = "redis.database"},
    {.name = NULL},
};

static const char *const periods[] = {"second", "minute", "hour", "day", "month", "year",
                                      NULL};

static int is_null(const json_t *v) { return !v || json_is_null(v); }

/* The config record's custom_validator (validate_periods_order): a string for "config". */
static int check_config(const json_t *cfg, json_t *field_errors)
{
    char msg[256];
    for (size_t i = 0; periods[i]; i++) {
        const json_t *v1 = json_object_get(cfg, periods[i]);
        if (!json_is_number(v1))
            continue;
        for (size_t j = i + 1; periods[j]; j++) {
            const json_t *v2 = json_object_get(cfg, periods[j]);
            if (json_is_number(v2) && json_number_value(v2) < json_number_value(v1)) {
                snprintf(msg, sizeof(msg),
                         "The limit for %s(%.1f) cannot be lower than the limit for %s(%.1f)",
                         periods[j], json_number_value(v2), periods[i],
                         json_number_value(v1));
                aigw_plugins__field_error(field_errors, "config", msg);
                return -1;
            }
        }
    }
    const json_t *policy = json_object_get(cfg, "policy");
    const json_t *sync = json_object_get(cfg, "sync_rate");
    int is_redis = json_is_string(policy) && strcmp(json_string_value(policy), "redis") == 0;
    int realtime = json_is_number(sync) && json_number_value(sync) == -1;
    if (!is_redis && !realtime) {
        aigw_plugins__field_error(field_errors, "config",
                                  "sync_rate can only be used with the redis policy");
        return -1;
    }
    if (is_redis && !realtime && json_is_number(sync) && json_number_value(sync) < 0.02) {
        aigw_plugins__field_error(field_errors, "config",
                                  "sync_rate must be greater than 0.02, or -1 to disable");
        return -1;
    }
    return 0;
}

static int str_is(const json_t *cfg, const char *name, const char *want)
{
    const json_t *v = json_object_get(cfg, name);
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* custom_validator, then the plugin's entity_checks in Kong's order. */
static int check(const aigw_entity_t *e, const json_t *cfg, json_t *entity_errors,
                 json_t *field_errors)
{
    (void)e;
    int rc = check_config(cfg, field_errors);
    if (aigw_plugins__at_least_one_of(cfg, periods, entity_errors) != 0)
        rc = -1;
    if (str_is(cfg, "policy", "redis")) {
        static const char *const needed[] = {"host", "port", "timeout", NULL};
        const json_t *r = json_object_get(cfg, "redis");
        for (size_t i = 0; needed[i]; i++) {
            if (!is_null(json_object_get(r, needed[i])))
                continue;
            char path[64];
            snprintf(path, sizeof(path), "config.redis.%s", needed[i]);
            rc = aigw_plugins__conditional_failed(entity_errors, field_errors, "config.policy",
                                                  path, "required field missing");
        }
    }
    if (str_is(cfg, "limit_by", "header") && is_null(json_object_get(cfg, "header_name")))
        rc = aigw_plugins__conditional_failed(entity_errors, field_errors, "config.limit_by",
                                              "config.header_name", "required field missing");
    if (str_is(cfg, "limit_by", "path") && is_null(json_object_get(cfg, "path")))
        rc = aigw_plugins__conditional_failed(entity_errors, field_errors, "config.limit_by",
                                              "config.path", "required field missing");
    return rc;
}

const aigw_plugin_schema_t aigw_plugin_rate_limiting = {
    .name = "rate-limiting",
    .priority = 910,
    .version = AIGW_PLUGINS_VERSION,
    .config = config,
    .check = check,
    .flags = AIGW_P_PROTOCOLS_HTTP,
};
