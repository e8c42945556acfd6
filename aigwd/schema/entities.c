/* aigwd/schema/entities.c: every core entity and bundled credential of Kong 3.9, as data.
 * Field order, defaults, bounds and flags follow kong/db/schema/entities/<name>.lua,
 * kong/db/schema/typedefs.lua and kong/plugins/<name>/daos.lua; the custom validators,
 * shorthands and entity checks live in entity_checks.c. Immutable: any thread may read. */
#include <string.h>

#include "schema/entity_checks.h"
#include "schema/schema.h"

/* ---- common value lists ------------------------------------------------------------------- */

/* constants.PROTOCOLS, sorted as Kong prints them. */
static const char *const protocols_all[] = {
    "grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp", NULL,
};

/* ---- common fields ------------------------------------------------------------------------ */

#define END_OF_FIELDS { .name = NULL }

/* typedefs.uuid as the primary key */
#define F_ID \
    { .name = "id", .type = AIGW_FT_STRING, .flags = AIGW_F_PK | AIGW_F_UUID | AIGW_F_AUTO }
/* typedefs.auto_timestamp_s */
#define F_CREATED_AT \
    { .name = "created_at", .type = AIGW_FT_INTEGER, .flags = AIGW_F_TIMESTAMP | AIGW_F_AUTO }
#define F_UPDATED_AT \
    { .name = "updated_at", .type = AIGW_FT_INTEGER, .flags = AIGW_F_TIMESTAMP | AIGW_F_AUTO }
/* typedefs.auto_timestamp_ms (targets) */
#define F_CREATED_AT_MS                                                                        \
    { .name = "created_at", .type = AIGW_FT_NUMBER,                                            \
      .flags = AIGW_F_TIMESTAMP | AIGW_F_MS | AIGW_F_AUTO }
#define F_UPDATED_AT_MS                                                                        \
    { .name = "updated_at", .type = AIGW_FT_NUMBER,                                            \
      .flags = AIGW_F_TIMESTAMP | AIGW_F_MS | AIGW_F_AUTO }
/* typedefs.tags: a set of typedefs.tag */
#define F_TAGS { .name = "tags", .type = AIGW_FT_SET, .elements = &e_tag }
/* A foreign key to `ref` ({"id": uuid}); flags REQUIRED and/or CASCADE. */
#define FOREIGN(n, ref, fl) \
    { .name = (n), .type = AIGW_FT_FOREIGN, .reference = (ref), .flags = (fl) }
/* typedefs.utf8_name */
#define F_UTF8_NAME(n) \
    { .name = (n), .type = AIGW_FT_STRING, .flags = AIGW_F_UNIQUE | AIGW_F_NAME_CHARS }
/* A `consumer` of a credential: required, deleted with the consumer. */
#define F_CONSUMER FOREIGN("consumer", "consumers", AIGW_F_REQUIRED | AIGW_F_CASCADE)
/* An integer with `between = { lo, hi }`, default text d (NULL: none). */
#define F_INT_BETWEEN(n, lo, hi, d) \
    { .name = (n), .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_BETWEEN, .dflt = (d), \
      .min = (lo), .max = (hi) }
#define F_NUM_BETWEEN(n, lo, hi, d) \
    { .name = (n), .type = AIGW_FT_NUMBER, .flags = AIGW_F_HAS_BETWEEN, .dflt = (d), \
      .min = (lo), .max = (hi) }
/* Entities with `ttl = true`: the `ttl` option (see AIGW_F_TTL). */
#define F_TTL { .name = "ttl", .type = AIGW_FT_NUMBER, .flags = AIGW_F_TTL }

/* ---- element definitions ------------------------------------------------------------------ */

static const aigw_field_t e_tag = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
                                    .check = aigw_schema_check_tag };
static const aigw_field_t e_string = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED };
static const aigw_field_t e_uuid = { .type = AIGW_FT_STRING,
                                     .flags = AIGW_F_REQUIRED | AIGW_F_UUID };
static const aigw_field_t e_protocol = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
                                         .one_of = protocols_all };
static const aigw_field_t e_wildcard_host = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
                                              .check = aigw_schema_check_wildcard_host };
static const aigw_field_t e_http_method = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
                                            .check = aigw_schema_check_http_method };
static const aigw_field_t e_route_host = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
                                           .check = aigw_schema_check_route_host };
static const aigw_field_t e_router_path = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
                                            .check = aigw_schema_check_router_path };
/* typedefs.headers values: an array of strings */
static const aigw_field_t e_header_values = { .type = AIGW_FT_ARRAY, .flags = AIGW_F_REQUIRED,
                                              .elements = &e_string };
static const aigw_field_t e_redirect_uri = { .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
                                             .check = aigw_schema_check_redirect_uri };

/* typedefs.sources / destinations elements: {ip, port}, at least one of them. */
static const aigw_field_t ip_port_fields[] = {
    { .name = "ip", .type = AIGW_FT_STRING, .check = aigw_schema_check_ip_or_cidr },
    F_INT_BETWEEN("port", 0, 65535, NULL),
    END_OF_FIELDS,
};
static const aigw_field_t e_ip_port = { .type = AIGW_FT_RECORD, .flags = AIGW_F_REQUIRED,
                                        .fields = ip_port_fields,
                                        .check = aigw_schema_check_ip_port_record };

/* ---- services ------------------------------------------------------------------------------ */

#define F_TIMEOUT(n) F_INT_BETWEEN(n, 1, 2147483646, "60000")

static const aigw_field_t service_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_UPDATED_AT,
    F_UTF8_NAME("name"),
    F_INT_BETWEEN("retries", 0, 32767, "5"),
    { .name = "protocol", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED, .dflt = "\"http\"",
      .one_of = protocols_all },
    { .name = "host", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
      .check = aigw_schema_check_host },
    { .name = "port", .type = AIGW_FT_INTEGER, .flags = AIGW_F_REQUIRED | AIGW_F_HAS_BETWEEN,
      .dflt = "80", .min = 0, .max = 65535 },
    { .name = "path", .type = AIGW_FT_STRING, .starts_with = "/", .check = aigw_schema_check_path },
    F_TIMEOUT("connect_timeout"),
    F_TIMEOUT("write_timeout"),
    F_TIMEOUT("read_timeout"),
    F_TAGS,
    FOREIGN("client_certificate", "certificates", 0),
    { .name = "tls_verify", .type = AIGW_FT_BOOLEAN },
    F_INT_BETWEEN("tls_verify_depth", 0, 64, NULL),
    { .name = "ca_certificates", .type = AIGW_FT_ARRAY, .elements = &e_uuid },
    { .name = "enabled", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "true" },
    /* shorthand: parsed into protocol, host, port and path by aigw_schema_shorthand_service */
    { .name = "url", .type = AIGW_FT_STRING, .flags = AIGW_F_INPUT_ONLY },
    END_OF_FIELDS,
};

static const aigw_entity_t services = {
    .name = "services",
    .admin_path = "services",
    .endpoint_key = "name",
    .fields = service_fields,
    .shorthand = aigw_schema_shorthand_service,
    .check = aigw_schema_echeck_service,
};

/* ---- routes -------------------------------------------------------------------------------- */

static const char *const redirect_codes[] = { "426", "301", "302", "307", "308", NULL };
static const char *const path_handlings[] = { "v0", "v1", NULL };

static const aigw_field_t route_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_UPDATED_AT,
    F_UTF8_NAME("name"),
    { .name = "protocols", .type = AIGW_FT_SET, .flags = AIGW_F_REQUIRED | AIGW_F_LEN_MIN,
      .len_min = 1, .dflt = "[\"http\",\"https\"]", .elements = &e_protocol,
      .check = aigw_schema_check_route_protocols },
    { .name = "https_redirect_status_code", .type = AIGW_FT_INTEGER, .flags = AIGW_F_REQUIRED,
      .dflt = "426", .one_of = redirect_codes },
    { .name = "strip_path", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "true" },
    { .name = "preserve_host", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "false" },
    { .name = "request_buffering", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
      .dflt = "true" },
    { .name = "response_buffering", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
      .dflt = "true" },
    F_TAGS,
    /* not cascading: deleting a service that still has routes is refused */
    FOREIGN("service", "services", 0),
    { .name = "snis", .type = AIGW_FT_SET, .elements = &e_wildcard_host },
    { .name = "sources", .type = AIGW_FT_SET, .elements = &e_ip_port },
    { .name = "destinations", .type = AIGW_FT_SET, .elements = &e_ip_port },
    { .name = "methods", .type = AIGW_FT_SET, .elements = &e_http_method },
    { .name = "hosts", .type = AIGW_FT_ARRAY, .elements = &e_route_host },
    { .name = "paths", .type = AIGW_FT_ARRAY, .elements = &e_router_path },
    { .name = "headers", .type = AIGW_FT_MAP, .elements = &e_header_values,
      .check = aigw_schema_check_route_headers },
    { .name = "regex_priority", .type = AIGW_FT_INTEGER, .dflt = "0" },
    { .name = "path_handling", .type = AIGW_FT_STRING, .dflt = "\"v0\"", .one_of = path_handlings },
    END_OF_FIELDS,
};

static const aigw_entity_t routes = {
    .name = "routes",
    .admin_path = "routes",
    .nested_path = "routes",
    .parent_field = "service",
    .endpoint_key = "name",
    .fields = route_fields,
    .shorthand = aigw_schema_shorthand_route,
    .check = aigw_schema_echeck_route,
};

/* ---- consumers ----------------------------------------------------------------------------- */

static const aigw_field_t consumer_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_UPDATED_AT,
    { .name = "username", .type = AIGW_FT_STRING, .flags = AIGW_F_UNIQUE },
    { .name = "custom_id", .type = AIGW_FT_STRING, .flags = AIGW_F_UNIQUE },
    F_TAGS,
    END_OF_FIELDS,
};

static const aigw_entity_t consumers = {
    .name = "consumers",
    .admin_path = "consumers",
    .endpoint_key = "username",
    .fields = consumer_fields,
    .check = aigw_schema_echeck_consumer,
};

/* ---- plugins ------------------------------------------------------------------------------- */

static const aigw_field_t plugin_fields[] = {
    F_ID,
    { .name = "name", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED },
    F_UTF8_NAME("instance_name"),
    F_CREATED_AT,
    F_UPDATED_AT,
    FOREIGN("route", "routes", AIGW_F_CASCADE),
    FOREIGN("service", "services", AIGW_F_CASCADE),
    FOREIGN("consumer", "consumers", AIGW_F_CASCADE),
    /* validated against the plugin's own config table (aigw_plugin_schema_t.config) */
    { .name = "config", .type = AIGW_FT_RECORD },
    /* typedefs.protocols; a plugin may declare other defaults */
    { .name = "protocols", .type = AIGW_FT_SET, .flags = AIGW_F_REQUIRED,
      .dflt = "[\"grpc\",\"grpcs\",\"http\",\"https\"]", .elements = &e_protocol },
    { .name = "enabled", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "true" },
    F_TAGS,
    END_OF_FIELDS,
};

static const char *const plugin_cache_key[] = { "name", "route", "service", "consumer", NULL };

/* Nested under services, routes and consumers alike: parent_field is NULL and the admin layer
 * knows the three parents (route, service, consumer). */
static const aigw_entity_t plugins = {
    .name = "plugins",
    .admin_path = "plugins",
    .nested_path = "plugins",
    .endpoint_key = "instance_name",
    .fields = plugin_fields,
    .cache_key = plugin_cache_key,
    .flags = AIGW_E_PLUGIN,
};

/* ---- certificates, snis, ca_certificates ---------------------------------------------------- */

static const aigw_field_t certificate_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_UPDATED_AT,
    { .name = "cert", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
      .check = aigw_schema_check_certificate },
    { .name = "key", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED | AIGW_F_SECRET,
      .check = aigw_schema_check_key },
    { .name = "cert_alt", .type = AIGW_FT_STRING, .check = aigw_schema_check_certificate },
    { .name = "key_alt", .type = AIGW_FT_STRING, .flags = AIGW_F_SECRET,
      .check = aigw_schema_check_key },
    F_TAGS,
    /* Kong's transient `snis`: validated here, turned into sni rows by the admin layer (which
     * also returns the certificate's sni names, sorted, in this field). */
    { .name = "snis", .type = AIGW_FT_ARRAY, .flags = AIGW_F_INPUT_ONLY,
      .elements = &e_wildcard_host },
    END_OF_FIELDS,
};

static const aigw_entity_t certificates = {
    .name = "certificates",
    .admin_path = "certificates",
    .fields = certificate_fields,
    .check = aigw_schema_echeck_certificate,
};

static const aigw_field_t sni_fields[] = {
    F_ID,
    { .name = "name", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED | AIGW_F_UNIQUE,
      .check = aigw_schema_check_wildcard_host },
    F_CREATED_AT,
    F_UPDATED_AT,
    F_TAGS,
    /* Kong's certificates DAO deletes a certificate's snis with it */
    FOREIGN("certificate", "certificates", AIGW_F_REQUIRED | AIGW_F_CASCADE),
    END_OF_FIELDS,
};

static const aigw_entity_t snis = {
    .name = "snis",
    .admin_path = "snis",
    .nested_path = "snis",
    .parent_field = "certificate",
    .endpoint_key = "name",
    .fields = sni_fields,
};

static const aigw_field_t ca_certificate_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_UPDATED_AT,
    { .name = "cert", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
      .check = aigw_schema_check_certificate },
    /* sha256 of the DER, lower-case hex; always recomputed from cert by the shorthand */
    { .name = "cert_digest", .type = AIGW_FT_STRING, .flags = AIGW_F_UNIQUE },
    F_TAGS,
    END_OF_FIELDS,
};

static const aigw_entity_t ca_certificates = {
    .name = "ca_certificates",
    .admin_path = "ca_certificates",
    .fields = ca_certificate_fields,
    .shorthand = aigw_schema_shorthand_ca_certificate,
    .check = aigw_schema_echeck_ca_certificate,
};

/* ---- upstreams ----------------------------------------------------------------------------- */

static const char *const algorithms[] = { "consistent-hashing", "least-connections", "round-robin",
                                          "latency", NULL };
static const char *const hash_ons[] = { "none", "consumer", "ip", "header", "cookie", "path",
                                        "query_arg", "uri_capture", NULL };
static const char *const check_types[] = { "tcp", "http", "https", "grpc", "grpcs", NULL };

static const aigw_field_t e_http_status = { .type = AIGW_FT_INTEGER,
                                            .flags = AIGW_F_REQUIRED | AIGW_F_HAS_BETWEEN,
                                            .min = 100, .max = 999 };

#define HC_STATUSES(d) \
    { .name = "http_statuses", .type = AIGW_FT_ARRAY, .dflt = (d), .elements = &e_http_status }
#define HC_SECONDS(n, d) F_NUM_BETWEEN(n, 0, 65535, d)
#define HC_COUNTER(n) F_INT_BETWEEN(n, 0, 255, "0")
#define HC_TYPE \
    { .name = "type", .type = AIGW_FT_STRING, .dflt = "\"http\"", .one_of = check_types }

#define ACTIVE_HEALTHY_DEFAULT "{\"interval\":0,\"http_statuses\":[200,302],\"successes\":0}"
#define ACTIVE_UNHEALTHY_DEFAULT                                                                \
    "{\"interval\":0,\"http_statuses\":[429,404,500,501,502,503,504,505],"                     \
    "\"tcp_failures\":0,\"timeouts\":0,\"http_failures\":0}"
#define PASSIVE_HEALTHY_DEFAULT                                                                 \
    "{\"http_statuses\":[200,201,202,203,204,205,206,207,208,226,300,301,302,303,304,305,306," \
    "307,308],\"successes\":0}"
#define PASSIVE_UNHEALTHY_DEFAULT                                                               \
    "{\"http_statuses\":[429,500,503],\"tcp_failures\":0,\"timeouts\":0,\"http_failures\":0}"
#define ACTIVE_DEFAULT                                                                          \
    "{\"type\":\"http\",\"timeout\":1,\"concurrency\":10,\"http_path\":\"/\","                 \
    "\"https_verify_certificate\":true,\"healthy\":" ACTIVE_HEALTHY_DEFAULT                    \
    ",\"unhealthy\":" ACTIVE_UNHEALTHY_DEFAULT "}"
#define PASSIVE_DEFAULT                                                                         \
    "{\"type\":\"http\",\"healthy\":" PASSIVE_HEALTHY_DEFAULT ",\"unhealthy\":"                \
    PASSIVE_UNHEALTHY_DEFAULT "}"
#define HEALTHCHECKS_DEFAULT "{\"active\":" ACTIVE_DEFAULT ",\"passive\":" PASSIVE_DEFAULT "}"

static const aigw_field_t hc_active_healthy[] = {
    HC_SECONDS("interval", "0"),
    HC_STATUSES("[200,302]"),
    HC_COUNTER("successes"),
    END_OF_FIELDS,
};

static const aigw_field_t hc_active_unhealthy[] = {
    HC_SECONDS("interval", "0"),
    HC_STATUSES("[429,404,500,501,502,503,504,505]"),
    HC_COUNTER("tcp_failures"),
    HC_COUNTER("timeouts"),
    HC_COUNTER("http_failures"),
    END_OF_FIELDS,
};

static const aigw_field_t hc_passive_healthy[] = {
    HC_STATUSES("[200,201,202,203,204,205,206,207,208,226,300,301,302,303,304,305,306,307,308]"),
    HC_COUNTER("successes"),
    END_OF_FIELDS,
};

static const aigw_field_t hc_passive_unhealthy[] = {
    HC_STATUSES("[429,500,503]"),
    HC_COUNTER("tcp_failures"),
    HC_COUNTER("timeouts"),
    HC_COUNTER("http_failures"),
    END_OF_FIELDS,
};

static const aigw_field_t hc_active[] = {
    HC_TYPE,
    HC_SECONDS("timeout", "1"),
    { .name = "concurrency", .type = AIGW_FT_INTEGER, .flags = AIGW_F_HAS_BETWEEN, .dflt = "10",
      .min = 1, .max = 2147483648.0 },
    { .name = "http_path", .type = AIGW_FT_STRING, .dflt = "\"/\"", .starts_with = "/",
      .check = aigw_schema_check_path },
    { .name = "https_sni", .type = AIGW_FT_STRING, .check = aigw_schema_check_sni },
    { .name = "https_verify_certificate", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED,
      .dflt = "true" },
    { .name = "headers", .type = AIGW_FT_MAP, .elements = &e_header_values,
      .check = aigw_schema_check_headers },
    { .name = "healthy", .type = AIGW_FT_RECORD, .dflt = ACTIVE_HEALTHY_DEFAULT,
      .fields = hc_active_healthy },
    { .name = "unhealthy", .type = AIGW_FT_RECORD, .dflt = ACTIVE_UNHEALTHY_DEFAULT,
      .fields = hc_active_unhealthy },
    END_OF_FIELDS,
};

static const aigw_field_t hc_passive[] = {
    HC_TYPE,
    { .name = "healthy", .type = AIGW_FT_RECORD, .dflt = PASSIVE_HEALTHY_DEFAULT,
      .fields = hc_passive_healthy },
    { .name = "unhealthy", .type = AIGW_FT_RECORD, .dflt = PASSIVE_UNHEALTHY_DEFAULT,
      .fields = hc_passive_unhealthy },
    END_OF_FIELDS,
};

static const aigw_field_t healthchecks_fields[] = {
    { .name = "active", .type = AIGW_FT_RECORD, .dflt = ACTIVE_DEFAULT, .fields = hc_active },
    { .name = "passive", .type = AIGW_FT_RECORD, .dflt = PASSIVE_DEFAULT, .fields = hc_passive },
    F_NUM_BETWEEN("threshold", 0, 100, "0"),
    END_OF_FIELDS,
};

#define F_HASH_ON(n) { .name = (n), .type = AIGW_FT_STRING, .dflt = "\"none\"", .one_of = hash_ons }
#define F_SIMPLE_PARAM(n) \
    { .name = (n), .type = AIGW_FT_STRING, .flags = AIGW_F_LEN_MIN, .len_min = 1 }

static const aigw_field_t upstream_fields[] = {
    F_ID,
    F_CREATED_AT,
    { .name = "name", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED | AIGW_F_UNIQUE,
      .check = aigw_schema_check_upstream_name },
    F_UPDATED_AT,
    { .name = "algorithm", .type = AIGW_FT_STRING, .dflt = "\"round-robin\"",
      .one_of = algorithms },
    F_HASH_ON("hash_on"),
    F_HASH_ON("hash_fallback"),
    { .name = "hash_on_header", .type = AIGW_FT_STRING, .check = aigw_schema_check_header_name },
    { .name = "hash_fallback_header", .type = AIGW_FT_STRING,
      .check = aigw_schema_check_header_name },
    { .name = "hash_on_cookie", .type = AIGW_FT_STRING, .check = aigw_schema_check_cookie_name },
    { .name = "hash_on_cookie_path", .type = AIGW_FT_STRING, .dflt = "\"/\"", .starts_with = "/",
      .check = aigw_schema_check_path },
    F_SIMPLE_PARAM("hash_on_query_arg"),
    F_SIMPLE_PARAM("hash_fallback_query_arg"),
    F_SIMPLE_PARAM("hash_on_uri_capture"),
    F_SIMPLE_PARAM("hash_fallback_uri_capture"),
    F_INT_BETWEEN("slots", 10, 65536, "10000"),
    { .name = "healthchecks", .type = AIGW_FT_RECORD, .dflt = HEALTHCHECKS_DEFAULT,
      .fields = healthchecks_fields },
    F_TAGS,
    { .name = "host_header", .type = AIGW_FT_STRING, .check = aigw_schema_check_host_port },
    FOREIGN("client_certificate", "certificates", 0),
    { .name = "use_srv_name", .type = AIGW_FT_BOOLEAN, .dflt = "false" },
    END_OF_FIELDS,
};

static const aigw_entity_t upstreams = {
    .name = "upstreams",
    .admin_path = "upstreams",
    .endpoint_key = "name",
    .fields = upstream_fields,
    .shorthand = aigw_schema_shorthand_upstream,
    .check = aigw_schema_echeck_upstream,
};

/* ---- targets ------------------------------------------------------------------------------- */

static const aigw_field_t target_fields[] = {
    F_ID,
    F_CREATED_AT_MS,
    F_UPDATED_AT_MS,
    FOREIGN("upstream", "upstreams", AIGW_F_REQUIRED | AIGW_F_CASCADE),
    /* normalised to host:port (port 8000 when absent) by aigw_schema_shorthand_target */
    { .name = "target", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
      .check = aigw_schema_check_target },
    F_INT_BETWEEN("weight", 0, 65535, "100"),
    F_TAGS,
    END_OF_FIELDS,
};

static const char *const target_cache_key[] = { "upstream", "target", NULL };

static const aigw_entity_t targets = {
    .name = "targets",
    .admin_path = "targets",
    .nested_path = "targets",
    .parent_field = "upstream",
    .endpoint_key = "target",
    .fields = target_fields,
    .shorthand = aigw_schema_shorthand_target,
    .cache_key = target_cache_key,
    .flags = AIGW_E_NO_TOP_LEVEL,
};

/* ---- credentials of the bundled auth plugins (kong/plugins/<name>/daos.lua) ------------------ */

#define CREDENTIAL (AIGW_E_CREDENTIAL | AIGW_E_NO_UPDATED_AT)

static const char *const jwt_algorithms[] = { "HS256", "HS384", "HS512", "RS256", "RS384",
                                              "RS512", "ES256", "ES384", "ES512", "PS256",
                                              "PS384", "PS512", "EdDSA", NULL };

static const aigw_field_t jwt_secret_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_CONSUMER,
    { .name = "key", .type = AIGW_FT_STRING,
      .flags = AIGW_F_UNIQUE | AIGW_F_AUTO | AIGW_F_RANDOM },
    { .name = "secret", .type = AIGW_FT_STRING,
      .flags = AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_SECRET },
    { .name = "rsa_public_key", .type = AIGW_FT_STRING },
    { .name = "algorithm", .type = AIGW_FT_STRING, .dflt = "\"HS256\"", .one_of = jwt_algorithms },
    F_TAGS,
    END_OF_FIELDS,
};

static const aigw_entity_t jwt_secrets = {
    .name = "jwt_secrets",
    .admin_path = "jwts",
    .nested_path = "jwt",
    .parent_field = "consumer",
    .endpoint_key = "key",
    .fields = jwt_secret_fields,
    .check = aigw_schema_echeck_jwt_secret,
    .flags = CREDENTIAL,
};

static const aigw_field_t keyauth_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_CONSUMER,
    { .name = "key", .type = AIGW_FT_STRING,
      .flags = AIGW_F_UNIQUE | AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_SECRET },
    F_TAGS,
    F_TTL,
    END_OF_FIELDS,
};

static const aigw_entity_t keyauth_credentials = {
    .name = "keyauth_credentials",
    .admin_path = "key-auths",
    .nested_path = "key-auth",
    .parent_field = "consumer",
    .endpoint_key = "key",
    .fields = keyauth_fields,
    .flags = CREDENTIAL,
};

static const aigw_field_t basicauth_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_CONSUMER,
    { .name = "username", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED | AIGW_F_UNIQUE },
    /* hashed by the admin layer before it is stored */
    { .name = "password", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED | AIGW_F_SECRET },
    F_TAGS,
    END_OF_FIELDS,
};

static const aigw_entity_t basicauth_credentials = {
    .name = "basicauth_credentials",
    .admin_path = "basic-auths",
    .nested_path = "basic-auth",
    .parent_field = "consumer",
    .endpoint_key = "username",
    .fields = basicauth_fields,
    .flags = CREDENTIAL,
};

static const aigw_field_t acl_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_CONSUMER,
    { .name = "group", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED },
    F_TAGS,
    END_OF_FIELDS,
};

static const char *const acl_cache_key[] = { "consumer", "group", NULL };

/* `group` is an endpoint key within its consumer only (kong/plugins/acl/api.lua). */
static const aigw_entity_t acls = {
    .name = "acls",
    .admin_path = "acls",
    .nested_path = "acls",
    .parent_field = "consumer",
    .endpoint_key = "group",
    .fields = acl_fields,
    .cache_key = acl_cache_key,
    .flags = CREDENTIAL,
};

static const char *const client_types[] = { "confidential", "public", NULL };

static const aigw_field_t oauth2_credential_fields[] = {
    F_ID,
    F_CREATED_AT,
    F_CONSUMER,
    { .name = "name", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED },
    { .name = "client_id", .type = AIGW_FT_STRING,
      .flags = AIGW_F_UNIQUE | AIGW_F_AUTO | AIGW_F_RANDOM },
    /* hashed by the admin layer when hash_secret is true */
    { .name = "client_secret", .type = AIGW_FT_STRING,
      .flags = AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_SECRET },
    { .name = "hash_secret", .type = AIGW_FT_BOOLEAN, .flags = AIGW_F_REQUIRED, .dflt = "false" },
    { .name = "redirect_uris", .type = AIGW_FT_ARRAY, .elements = &e_redirect_uri },
    F_TAGS,
    { .name = "client_type", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED,
      .dflt = "\"confidential\"", .one_of = client_types },
    END_OF_FIELDS,
};

static const aigw_entity_t oauth2_credentials = {
    .name = "oauth2_credentials",
    .admin_path = "oauth2",
    .nested_path = "oauth2",
    .parent_field = "consumer",
    .endpoint_key = "client_id",
    .fields = oauth2_credential_fields,
    .flags = CREDENTIAL,
};

static const char *const challenge_methods[] = { "S256", NULL };

static const aigw_field_t oauth2_code_fields[] = {
    F_ID,
    F_CREATED_AT,
    FOREIGN("service", "services", AIGW_F_CASCADE),
    FOREIGN("credential", "oauth2_credentials", AIGW_F_REQUIRED | AIGW_F_CASCADE),
    { .name = "code", .type = AIGW_FT_STRING,
      .flags = AIGW_F_UNIQUE | AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_SECRET },
    { .name = "authenticated_userid", .type = AIGW_FT_STRING },
    { .name = "scope", .type = AIGW_FT_STRING },
    { .name = "challenge", .type = AIGW_FT_STRING },
    { .name = "challenge_method", .type = AIGW_FT_STRING, .one_of = challenge_methods },
    FOREIGN("plugin", "plugins", AIGW_F_CASCADE),
    F_TTL,
    END_OF_FIELDS,
};

/* Kong generates no admin API for codes (generate_admin_api = false). */
static const aigw_entity_t oauth2_authorization_codes = {
    .name = "oauth2_authorization_codes",
    .fields = oauth2_code_fields,
    .flags = AIGW_E_NO_UPDATED_AT | AIGW_E_RUNTIME_DATA,
};

static const char *const token_types[] = { "bearer", NULL };

static const aigw_field_t oauth2_token_fields[] = {
    F_ID,
    F_CREATED_AT,
    FOREIGN("service", "services", AIGW_F_CASCADE),
    FOREIGN("credential", "oauth2_credentials", AIGW_F_REQUIRED | AIGW_F_CASCADE),
    { .name = "token_type", .type = AIGW_FT_STRING, .flags = AIGW_F_REQUIRED, .dflt = "\"bearer\"",
      .one_of = token_types },
    { .name = "expires_in", .type = AIGW_FT_INTEGER, .flags = AIGW_F_REQUIRED },
    { .name = "access_token", .type = AIGW_FT_STRING,
      .flags = AIGW_F_UNIQUE | AIGW_F_AUTO | AIGW_F_RANDOM | AIGW_F_SECRET },
    { .name = "refresh_token", .type = AIGW_FT_STRING, .flags = AIGW_F_UNIQUE | AIGW_F_SECRET },
    { .name = "authenticated_userid", .type = AIGW_FT_STRING },
    { .name = "scope", .type = AIGW_FT_STRING },
    F_TTL,
    END_OF_FIELDS,
};

static const aigw_entity_t oauth2_tokens = {
    .name = "oauth2_tokens",
    .admin_path = "oauth2_tokens",
    .nested_path = "oauth2_tokens",
    .parent_field = "credential",
    .endpoint_key = "access_token",
    .fields = oauth2_token_fields,
    .flags = AIGW_E_NO_UPDATED_AT | AIGW_E_RUNTIME_DATA,
};

/* ---- the list and lookups -------------------------------------------------------------------- */

/* Parents before children: every foreign reference names an entity earlier in the list. */
const aigw_entity_t *const aigw_entities[] = {
    &certificates,
    &snis,
    &ca_certificates,
    &services,
    &routes,
    &consumers,
    &upstreams,
    &targets,
    &plugins,
    &jwt_secrets,
    &keyauth_credentials,
    &basicauth_credentials,
    &acls,
    &oauth2_credentials,
    &oauth2_authorization_codes,
    &oauth2_tokens,
    NULL,
};

const aigw_entity_t *aigw_schema_entity(const char *name)
{
    if (!name)
        return NULL;
    for (const aigw_entity_t *const *e = aigw_entities; *e; e++)
        if (strcmp((*e)->name, name) == 0)
            return *e;
    return NULL;
}

/* Matches admin_path whatever the flags: the admin layer refuses AIGW_E_NO_TOP_LEVEL itself. */
const aigw_entity_t *aigw_schema_entity_by_path(const char *segment)
{
    if (!segment)
        return NULL;
    for (const aigw_entity_t *const *e = aigw_entities; *e; e++)
        if ((*e)->admin_path && strcmp((*e)->admin_path, segment) == 0)
            return *e;
    return NULL;
}
