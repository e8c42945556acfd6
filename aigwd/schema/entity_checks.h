/* aigwd/schema/entity_checks.h: Kong's custom field validators, input shorthands and entity
 * checks for the core entities and credentials (schema/entities.c points at them). Plugin
 * config tables may reuse the field checks (hosts, paths, header names, URLs, IPs).
 *
 * Pure functions of their arguments (they parse with OpenSSL and PCRE2, no I/O): any thread.
 * Every message is Kong 3.9's text (kong/db/schema/typedefs.lua, entities/<name>.lua,
 * kong/tools/ip.lua, plugins' daos.lua), byte for byte where Kong's text does not depend on
 * the TLS library. */
#ifndef AIGW_SCHEMA_ENTITY_CHECKS_H
#define AIGW_SCHEMA_ENTITY_CHECKS_H
#include <jansson.h>
#include <stddef.h>
#include "schema/schema.h"

/* ---- field checks (aigw_field_check_fn) ----------------------------------------------------
 * Each returns 0, or -1 with Kong's message in msg. A value of another JSON type than the check
 * expects passes (the engine reports type errors first). On arrays and sets these sit on the
 * element; on maps (headers) they see the whole map, because Kong reports a bad key as one
 * message for the field. */
int aigw_schema_check_host(const json_t *v, char *msg, size_t len);          /* typedefs.host */
int aigw_schema_check_host_port(const json_t *v, char *msg, size_t len);     /* host[:port] */
int aigw_schema_check_sni(const json_t *v, char *msg, size_t len);           /* typedefs.sni */
int aigw_schema_check_wildcard_host(const json_t *v, char *msg, size_t len); /* snis */
int aigw_schema_check_path(const json_t *v, char *msg, size_t len);          /* typedefs.path */
int aigw_schema_check_router_path(const json_t *v, char *msg, size_t len);   /* routes.paths[] */
int aigw_schema_check_route_host(const json_t *v, char *msg, size_t len);    /* routes.hosts[] */
int aigw_schema_check_http_method(const json_t *v, char *msg, size_t len);   /* ^%u+$ */
int aigw_schema_check_tag(const json_t *v, char *msg, size_t len);           /* tags[] */
int aigw_schema_check_header_name(const json_t *v, char *msg, size_t len);
int aigw_schema_check_headers(const json_t *v, char *msg, size_t len);       /* map keys */
int aigw_schema_check_route_headers(const json_t *v, char *msg, size_t len); /* + no Host */
int aigw_schema_check_cookie_name(const json_t *v, char *msg, size_t len);   /* RFC 2616 token */
int aigw_schema_check_ip(const json_t *v, char *msg, size_t len);
int aigw_schema_check_ip_or_cidr(const json_t *v, char *msg, size_t len);
int aigw_schema_check_ip_or_cidr_v4(const json_t *v, char *msg, size_t len); /* typedefs.cidr */
int aigw_schema_check_url(const json_t *v, char *msg, size_t len);           /* typedefs.url */
int aigw_schema_check_ip_port_record(const json_t *v, char *msg, size_t len);/* sources[] */
int aigw_schema_check_route_protocols(const json_t *v, char *msg, size_t len);/* exclusive sets */
int aigw_schema_check_upstream_name(const json_t *v, char *msg, size_t len);
int aigw_schema_check_target(const json_t *v, char *msg, size_t len);
int aigw_schema_check_certificate(const json_t *v, char *msg, size_t len);   /* PEM/DER X.509 */
int aigw_schema_check_key(const json_t *v, char *msg, size_t len);           /* any key */
int aigw_schema_check_redirect_uri(const json_t *v, char *msg, size_t len);  /* oauth2 */

/* ---- input shorthands (aigw_shorthand_fn): rewrite obj in place before validation --------- */
int aigw_schema_shorthand_service(json_t *obj, json_t *field_errors);   /* url */
int aigw_schema_shorthand_route(json_t *obj, json_t *field_errors);     /* grpc strip_path */
int aigw_schema_shorthand_upstream(json_t *obj, json_t *field_errors);  /* algorithm/hash_on */
int aigw_schema_shorthand_target(json_t *obj, json_t *field_errors);    /* host:8000 */
int aigw_schema_shorthand_ca_certificate(json_t *obj, json_t *field_errors); /* cert_digest */

/* ---- entity checks (aigw_entity_check_fn) --------------------------------------------------- */
int aigw_schema_echeck_service(const aigw_entity_t *e, const json_t *obj, json_t *entity_errors,
                               json_t *field_errors);
int aigw_schema_echeck_route(const aigw_entity_t *e, const json_t *obj, json_t *entity_errors,
                             json_t *field_errors);
int aigw_schema_echeck_consumer(const aigw_entity_t *e, const json_t *obj,
                                json_t *entity_errors, json_t *field_errors);
int aigw_schema_echeck_certificate(const aigw_entity_t *e, const json_t *obj,
                                   json_t *entity_errors, json_t *field_errors);
int aigw_schema_echeck_ca_certificate(const aigw_entity_t *e, const json_t *obj,
                                      json_t *entity_errors, json_t *field_errors);
int aigw_schema_echeck_upstream(const aigw_entity_t *e, const json_t *obj,
                                json_t *entity_errors, json_t *field_errors);
int aigw_schema_echeck_jwt_secret(const aigw_entity_t *e, const json_t *obj,
                                  json_t *entity_errors, json_t *field_errors);

/* ---- helpers shared with the admin layer and plugins ----------------------------------------- */

/* LuaSocket's url.parse (what Kong's `url` shorthand and redirect_uris use): views into s,
 * p == NULL for an absent part. Returns -1 only for an empty string. */
typedef struct aigw_url_parts {
    const char *scheme, *host, *port, *path, *query, *fragment;
    size_t scheme_n, host_n, port_n, path_n, query_n, fragment_n;
} aigw_url_parts_t;
int aigw_schema_url_parse(const char *s, aigw_url_parts_t *out);

/* kong.tools.ip.normalize_ip: ipv4, ipv4:port, ipv6, [ipv6]:port, name, name:port. On success
 * 0, host (NUL-terminated, ipv4 without leading zeros, ipv6 fully expanded lower case, names
 * as given) and *port (-1 when absent). On failure -1 with Kong's reason in err
 * ("invalid hostname: x", "invalid port number", ...). type: 4, 6, or 0 for a name. */
typedef struct aigw_norm_host {
    int type;
    int port;
    char host[256];
} aigw_norm_host_t;
int aigw_schema_normalize_host(const char *s, aigw_norm_host_t *out, char *err, size_t errlen);

/* A target as Kong stores it: "host:port" with port 8000 when absent, ipv6 in brackets.
 * Returns a malloc'd string (caller frees) or NULL when s is not a valid host. */
char *aigw_schema_format_target(const char *s);

/* kong.tools.uri.normalize(path, true): percent-decoding of unreserved bytes, dot segments
 * and duplicate slashes removed. Returns a malloc'd string (caller frees). */
char *aigw_schema_normalize_path(const char *path);

/* Lower-case hex sha256 of a PEM/DER certificate's DER form into out (65 bytes); 0 or -1. */
int aigw_schema_cert_digest(const char *pem, char out[65]);

#endif
