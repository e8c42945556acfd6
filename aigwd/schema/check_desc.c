/* aigwd/schema/check_desc.c: Kong 3.9's entity checks as data, for GET /schemas. The checks
 * themselves run as C (entity_checks.c, and each plugin's check in schema/plugins/); these are
 * their declarations as Kong writes them in kong/db/schema/entities/<name>.lua,
 * kong/db/schema/typedefs.lua, kong/plugins/<name>/daos.lua and kong/plugins/<name>/schema.lua,
 * in Kong's order, rendered the way kong/api/api_helpers.lua schema_to_jsonable does (functions
 * such as custom_entity_check's fn and then_match's custom_validator are dropped; null stays
 * null). Routes are those of router_flavor = traditional_compatible, aigw's router.
 * Immutable: any thread may read. */
#include <string.h>

#include "schema/schema.h"

/* One schema's (or one of its records') checks: a JSON array. */
typedef struct check_desc {
    const char *schema; /* entity name, or "plugins/<plugin name>" */
    const char *field;  /* NULL: the schema's own checks; else the top-level field whose record
                         * (itself, or its elements) carries them */
    const char *json;
} check_desc_t;

/* conditional: if protocol is not https or tls, then <field> must be null */
#define SERVICE_TLS_ONLY(field)                                                                \
    "{\"conditional\":{\"if_field\":\"protocol\",\"if_match\":{\"not_one_of\":[\"https\","    \
    "\"tls\"]},\"then_field\":\"" field "\",\"then_match\":{\"eq\":null}}}"

/* conditional: if <if> matches ^<value>$, then <then> is required */
#define UPSTREAM_NEEDS(if_field, value, then_field)                                            \
    "{\"conditional\":{\"if_field\":\"" if_field "\",\"if_match\":{\"match\":\"^" value       \
    "$\"},\"then_field\":\"" then_field "\",\"then_match\":{\"required\":true}}}"

/* conditional: if hash_on matches ^<value>$, then hash_fallback is one of <list> */
#define UPSTREAM_FALLBACK(value, list)                                                         \
    "{\"conditional\":{\"if_field\":\"hash_on\",\"if_match\":{\"match\":\"^" value "$\"},"    \
    "\"then_field\":\"hash_fallback\",\"then_match\":{\"one_of\":[" list "]}}}"

/* conditional on plugin config fields: if <if> eq <v>, then <then> is required */
#define CONFIG_NEEDS(if_field, eq, then_field)                                                 \
    "{\"conditional\":{\"if_field\":\"" if_field "\",\"if_match\":{\"eq\":" eq "},"           \
    "\"then_field\":\"" then_field "\",\"then_match\":{\"required\":true}}}"

static const check_desc_t checks[] = {
    { "certificates", NULL,
      "[{\"mutually_required\":[\"cert_alt\",\"key_alt\"]},"
      "{\"custom_entity_check\":{\"field_sources\":[\"cert\",\"key\"]}},"
      "{\"custom_entity_check\":{\"field_sources\":[\"cert_alt\",\"key_alt\"]}},"
      "{\"custom_entity_check\":{\"field_sources\":[\"cert\",\"cert_alt\"]}}]" },
    { "ca_certificates", NULL, "[{\"custom_entity_check\":{\"field_sources\":[\"cert\"]}}]" },
    { "services", NULL,
      "[{\"conditional\":{\"if_field\":\"protocol\",\"if_match\":{\"one_of\":[\"tcp\",\"tls\","
      "\"udp\",\"grpc\",\"grpcs\"]},\"then_field\":\"path\",\"then_match\":{\"eq\":null}}},"
      SERVICE_TLS_ONLY("client_certificate") ","
      SERVICE_TLS_ONLY("tls_verify") ","
      SERVICE_TLS_ONLY("tls_verify_depth") ","
      SERVICE_TLS_ONLY("ca_certificates") "]" },
    { "routes", NULL,
      "[{\"conditional\":{\"if_field\":\"protocols\",\"if_match\":{\"elements\":{\"type\":"
      "\"string\",\"not_one_of\":[\"grpcs\",\"https\",\"tls\",\"tls_passthrough\"]}},"
      "\"then_field\":\"snis\",\"then_match\":{\"len_eq\":0},\"then_err\":\"'snis' can only be "
      "set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'\"}},"
      "{\"custom_entity_check\":{\"field_sources\":[\"path_handling\"]}},"
      "{\"custom_entity_check\":{\"field_sources\":[\"id\",\"protocols\",\"snis\",\"sources\","
      "\"destinations\",\"methods\",\"hosts\",\"paths\",\"headers\",\"expression\","
      "\"regex_priority\",\"priority\"],\"run_with_missing_fields\":true}}]" },
    /* typedefs.sources / typedefs.destinations: records of ip and port */
    { "routes", "sources", "[{\"at_least_one_of\":[\"ip\",\"port\"]}]" },
    { "routes", "destinations", "[{\"at_least_one_of\":[\"ip\",\"port\"]}]" },
    { "consumers", NULL, "[{\"at_least_one_of\":[\"custom_id\",\"username\"]}]" },
    { "upstreams", NULL,
      "[" UPSTREAM_NEEDS("hash_on", "header", "hash_on_header") ","
      UPSTREAM_NEEDS("hash_fallback", "header", "hash_fallback_header") ","
      UPSTREAM_NEEDS("hash_on", "cookie", "hash_on_cookie") ","
      UPSTREAM_NEEDS("hash_fallback", "cookie", "hash_on_cookie") ","
      UPSTREAM_FALLBACK("none", "\"none\"") ","
      UPSTREAM_FALLBACK("cookie", "\"none\"") ","
      UPSTREAM_FALLBACK("consumer", "\"none\",\"ip\",\"header\",\"cookie\",\"path\","
                                    "\"query_arg\",\"uri_capture\"") ","
      UPSTREAM_FALLBACK("ip", "\"none\",\"consumer\",\"header\",\"cookie\",\"path\","
                              "\"query_arg\",\"uri_capture\"") ","
      UPSTREAM_FALLBACK("path", "\"none\",\"consumer\",\"header\",\"cookie\",\"query_arg\","
                                "\"ip\",\"uri_capture\"") ","
      "{\"distinct\":[\"hash_on_header\",\"hash_fallback_header\"]},"
      UPSTREAM_NEEDS("hash_on", "query_arg", "hash_on_query_arg") ","
      UPSTREAM_NEEDS("hash_fallback", "query_arg", "hash_fallback_query_arg") ","
      "{\"distinct\":[\"hash_on_query_arg\",\"hash_fallback_query_arg\"]},"
      UPSTREAM_NEEDS("hash_on", "uri_capture", "hash_on_uri_capture") ","
      UPSTREAM_NEEDS("hash_fallback", "uri_capture", "hash_fallback_uri_capture") ","
      "{\"distinct\":[\"hash_on_uri_capture\",\"hash_fallback_uri_capture\"]}]" },
    { "jwt_secrets", NULL,
      "[{\"conditional\":{\"if_field\":\"algorithm\",\"if_match\":{\"match_any\":{\"patterns\":"
      "[\"^RS256$\",\"^RS384$\",\"^RS512$\",\"^PS256$\",\"^PS384$\",\"^PS512$\",\"^EdDSA$\"]}},"
      "\"then_field\":\"rsa_public_key\",\"then_match\":{\"required\":true}}}]" },

    { "plugins/acl", NULL,
      "[{\"only_one_of\":[\"config.allow\",\"config.deny\"]},"
      "{\"at_least_one_of\":[\"config.allow\",\"config.deny\"]}]" },
    { "plugins/ai-prompt-guard", NULL,
      "[{\"at_least_one_of\":[\"config.allow_patterns\",\"config.deny_patterns\"]},"
      "{\"conditional\":{\"if_field\":\"config.match_all_roles\",\"if_match\":{\"eq\":true},"
      "\"then_field\":\"config.allow_all_conversation_history\",\"then_match\":{\"eq\":false}}}"
      "]" },
    { "plugins/ip-restriction", NULL,
      "[{\"at_least_one_of\":[\"config.allow\",\"config.deny\"]}]" },
    { "plugins/jwt", NULL,
      "[{\"conditional\":{\"if_field\":\"config.maximum_expiration\",\"if_match\":{\"gt\":0},"
      "\"then_field\":\"config.claims_to_verify\",\"then_match\":{\"contains\":\"exp\"}}}]" },
    { "plugins/oauth2", "config", "[" CONFIG_NEEDS("mandatory_scope", "true", "scopes") "]" },
    { "plugins/rate-limiting", NULL,
      "[{\"at_least_one_of\":[\"config.second\",\"config.minute\",\"config.hour\","
      "\"config.day\",\"config.month\",\"config.year\"]},"
      CONFIG_NEEDS("config.policy", "\"redis\"", "config.redis.host") ","
      CONFIG_NEEDS("config.policy", "\"redis\"", "config.redis.port") ","
      CONFIG_NEEDS("config.policy", "\"redis\"", "config.redis.timeout") ","
      CONFIG_NEEDS("config.limit_by", "\"header\"", "config.header_name") ","
      CONFIG_NEEDS("config.limit_by", "\"path\"", "config.path") "]" },
};

static int same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

json_t *aigw_schema_entity_checks_json(const char *schema, const char *field)
{
    for (size_t i = 0; schema && i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (strcmp(checks[i].schema, schema) != 0 || !same(checks[i].field, field))
            continue;
        json_error_t jerr;
        json_t *a = json_loads(checks[i].json, 0, &jerr);
        if (json_is_array(a))
            return a;
        json_decref(a);
        break; /* a table error: the unit test catches it */
    }
    return json_array();
}

size_t aigw_schema_entity_checks_count(void)
{
    return sizeof(checks) / sizeof(checks[0]);
}

int aigw_schema_entity_checks_at(size_t i, const char **schema, const char **field,
                                 const char **json)
{
    if (i >= sizeof(checks) / sizeof(checks[0]))
        return -1;
    *schema = checks[i].schema;
    *field = checks[i].field;
    *json = checks[i].json;
    return 0;
}
