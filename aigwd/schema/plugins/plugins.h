/* aigwd/schema/plugins/plugins.h: internal to the bundled plugin schemas (one .c each).
 * Each plugin file describes the `config` record of one bundled plugin as Kong 3.9.3's
 * kong/plugins/<name>/schema.lua does; registry.c lists them for aigw_plugins[].
 *
 * Everything here is static const data or a pure function: any thread may use it.
 *
 * Conventions the validation engine (schema/validate.c) relies on:
 *
 * - Records inside a plugin config carry AIGW_F_REQUIRED, as Kong's Entity.new_subschema
 *   makes every nested record required: a missing record is expanded with its defaults, an
 *   explicit null is "required field missing".
 * - A string field without AIGW_F_LEN_MIN has Kong's implicit len_min 1; AIGW_F_LEN_MIN with
 *   len_min 0 (rate-limiting's policy, redis.password) lets "" through. On input Kong turns ""
 *   into null for string fields whose len_min is not 0.
 * - alias_of names the field an input key is stored as, relative to the config record, and may
 *   be dotted ("redis.host"). The alias field has its own type (form inference and the type
 *   check use it). The engine validates the alias value against the alias field, then:
 *   if the target is absent or null it is set from the alias (creating intermediate records),
 *   if both are set and equal the alias is dropped, and if they differ the alias field gets
 *   "both deprecated and new field are used but their values mismatch: redis_host = a vs
 *   redis.host = b". The alias is never stored. On output (GET) an alias WITHOUT
 *   AIGW_F_INPUT_ONLY is shown with its target's current value (Kong 3.9 shows the deprecated
 *   rate-limiting redis_* fields that way); one WITH AIGW_F_INPUT_ONLY (acl whitelist /
 *   blacklist, an aigw extension) is never shown. On PATCH the aliases of the request body
 *   must be expanded before it is merged with the stored entity (Kong runs its shorthands on
 *   the partial input), otherwise a stored redis.port would always "mismatch" a new
 *   redis_port.
 * - A plugin's `check` is Kong's cross-field validation, called with obj = the config record
 *   after every config field passed its own checks (defaults already filled). It receives
 *   the PLUGIN ENTITY's error containers: entity_errors is the top-level "@entity" array and
 *   field_errors the top-level errors object. It writes Kong's shapes itself:
 *     plugin-level entity_checks  -> "@entity": [...] and e.g. {"config":{"redis":{"host":..}}}
 *     config record entity_checks -> {"config":{"scopes":..., "@entity":[...]}}
 *     config custom_validator     -> {"config":"<message>"} (a string, as Kong)
 *   It returns -1 if it added anything.
 * - Maps (http-log headers, custom_fields_by_lua): Kong reports the first bad key or value as
 *   ONE string on the map field ({"config":{"headers":"length must be at least 1"}}); the
 *   map's own check here validates the keys.
 * - Numeric bounds: Kong formats `between` with %d, so the engine prints min/max truncated to
 *   integers ("value should be between 0 and 1000000" for queue.initial_retry_delay).
 */
#ifndef AIGW_SCHEMA_PLUGINS_PLUGINS_H
#define AIGW_SCHEMA_PLUGINS_PLUGINS_H
#include <jansson.h>
#include <stddef.h>
#include "schema/schema.h"

#define AIGW_PLUGINS_VERSION "3.9.1"   /* what Kong's bundled plugins report (kong_meta) */

extern const aigw_plugin_schema_t aigw_plugin_acl;
extern const aigw_plugin_schema_t aigw_plugin_ai_prompt_guard;
extern const aigw_plugin_schema_t aigw_plugin_basic_auth;
extern const aigw_plugin_schema_t aigw_plugin_correlation_id;
extern const aigw_plugin_schema_t aigw_plugin_cors;
extern const aigw_plugin_schema_t aigw_plugin_file_log;
extern const aigw_plugin_schema_t aigw_plugin_http_log;
extern const aigw_plugin_schema_t aigw_plugin_ip_restriction;
extern const aigw_plugin_schema_t aigw_plugin_jwt;
extern const aigw_plugin_schema_t aigw_plugin_key_auth;
extern const aigw_plugin_schema_t aigw_plugin_oauth2;
extern const aigw_plugin_schema_t aigw_plugin_prometheus;
extern const aigw_plugin_schema_t aigw_plugin_rate_limiting;
extern const aigw_plugin_schema_t aigw_plugin_request_size_limiting;
extern const aigw_plugin_schema_t aigw_plugin_request_termination;
extern const aigw_plugin_schema_t aigw_plugin_request_transformer;
extern const aigw_plugin_schema_t aigw_plugin_response_transformer;
extern const aigw_plugin_schema_t aigw_plugin_tcp_log;
extern const aigw_plugin_schema_t aigw_plugin_udp_log;

/* ---- typedefs.lua, shared by several plugins (typedefs.c) ---------------------------------- */

/* Element fields: { type = "string" }, typedefs.header_name, typedefs.ip_or_cidr. */
extern const aigw_field_t aigw_plugins__el_string;
extern const aigw_field_t aigw_plugins__el_header_name;
extern const aigw_field_t aigw_plugins__el_ip_or_cidr;

/* Field checks (aigw_field_check_fn): 0, or -1 with Kong's message in msg. A value of an
 * unexpected JSON type passes (the engine's type check reports it). */
int aigw_plugins__check_header_name(const json_t *v, char *msg, size_t len); /* header_name */
int aigw_plugins__check_host(const json_t *v, char *msg, size_t len);        /* typedefs.host */
int aigw_plugins__check_sni(const json_t *v, char *msg, size_t len);         /* typedefs.sni */
int aigw_plugins__check_url(const json_t *v, char *msg, size_t len);         /* typedefs.url */
/* typedefs.path after its starts_with "/" (set .starts_with too): "//" and RFC 3986. */
int aigw_plugins__check_path(const json_t *v, char *msg, size_t len);
int aigw_plugins__check_ip_or_cidr(const json_t *v, char *msg, size_t len);
int aigw_plugins__check_http_method(const json_t *v, char *msg, size_t len); /* ^%u+$ */
/* typedefs.lua_code (custom_fields_by_lua): keys of length >= 1. aigw runs no Lua, so the
 * snippets are kept but not compiled. */
int aigw_plugins__check_lua_code(const json_t *v, char *msg, size_t len);

/* Kong's tools/http validate_header_name on a byte range: 1 if [A-Za-z0-9_-]+. */
int aigw_plugins__header_name_ok(const char *s, size_t n);
/* 1 if PCRE2 compiles the pattern, as ngx.re.match would (schema validators.is_regex). */
int aigw_plugins__is_regex(const char *s, size_t n);
/* 1 if socket.url.parse(url) finds userinfo (an '@' in the authority). */
int aigw_plugins__url_has_userinfo(const char *url);

/* ---- helpers for the config-level checks ---------------------------------------------------- */

/* Kong's is_nonempty: not absent, not null, not "", not an empty array or object. */
int aigw_plugins__nonempty(const json_t *v);
/* Appends msg to the "@entity" array. */
void aigw_plugins__entity_error(json_t *entity_errors, const char *msg);
/* Kong's set_field(errors, path, msg) for a dotted path ("config.redis.host"), creating the
 * intermediate objects; does nothing if a step already holds a string error. */
void aigw_plugins__field_error(json_t *field_errors, const char *path, const char *msg);
/* Appends msg to errors[record]["@entity"] (entity_checks of a record field, e.g. oauth2's
 * config); does nothing if errors[record] already is a string. */
void aigw_plugins__record_entity_error(json_t *field_errors, const char *record,
                                       const char *msg);
/* at_least_one_of over config fields: 0 if one of names (NULL-ended) is non-empty in cfg,
 * else appends "at least one of these fields must be non-empty: 'config.a', 'config.b'" and
 * returns -1. */
int aigw_plugins__at_least_one_of(const json_t *cfg, const char *const *names,
                                  json_t *entity_errors);
/* The failure of a `conditional` entity check declared at plugin level: sets then_path's
 * error (a path below the entity, "config.redis.host") and appends "failed conditional
 * validation given value of field '<if_path>'". Returns -1. */
int aigw_plugins__conditional_failed(json_t *entity_errors, json_t *field_errors,
                                     const char *if_path, const char *then_path,
                                     const char *then_msg);

#endif
