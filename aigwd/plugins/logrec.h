/* aigwd/plugins/logrec.h: the one log record of a request (Kong's serializer,
 * kong/pdk/log.lua serialize; reference/plugins.md "Log serializer") and its redaction.
 *
 * The record is built once per request, in the log phase, on the request's worker, as compact
 * JSON in the request arena; every log plugin of the request shares it and queues a copy
 * (aigwd/plugins/logqueue.h). Shape:
 *   {"request":{"id","uri","url","querystring":{},"method","headers":{},"size","tls"?},
 *    "upstream_uri","upstream_status","response":{"status","headers":{},"size"},
 *    "latencies":{"kong","proxy","request","receive"},"tries":[{"ip","port",...}],
 *    "authenticated_entity":{"id","consumer_id"}?,"route":{..}?,"service":{..}?,
 *    "consumer":{..}?,"client_ip","started_at","source","workspace","workspace_name", ...}
 *
 * Redaction is on by default (aigw; Kong only masks Authorization and Proxy-Authorization):
 * header values of Authorization, Proxy-Authorization, Cookie, Set-Cookie and of the headers a
 * plugin declared as carrying a credential (key-auth's key_names, ...) become "REDACTED";
 * query arguments with a credential name (plugin-declared, built-in: access_token,
 * refresh_token, client_secret, code, password, provision_key, jwt, apikey, api_key) are
 * masked in querystring, uri, url and upstream_uri; any remaining header or argument value
 * matching a secret pattern (bearer tokens, JWTs, provider API keys; configurable) has the
 * match replaced. Global settings in aigw.conf add names:
 *   log_redaction = on|off, log_redact_headers, log_redact_query_args,
 *   log_redact_json_fields (masked in JSON bodies that reach a record), log_redact_patterns
 *   (PCRE2, added to the built-in ones). */
#ifndef AIGW_PLUGINS_LOGREC_H
#define AIGW_PLUGINS_LOGREC_H
#include <jansson.h>
#include <stddef.h>
#include "common/str.h"
#include "core/conf.h"
#include "plugins/plugins.h"

/* Main thread, before the first runtime and on reload: the process-wide redaction settings
 * from conf. 0, or -1 with a message in err (a pattern that does not compile). */
int aigw_logrec_configure(const aigw_conf_t *conf, char *err, size_t errlen);
/* Any thread: 1 when log_request_bodies is on (request bodies are then always buffered). */
int aigw_logrec_wants_bodies(void);
void aigw_logrec_shutdown(void);

/* The request's record (built on the first call, then cached in run): compact JSON, in the
 * request arena; {NULL,0} when out of memory. Log phase only. */
aigw_str_t aigw_plugin_log_record(aigw_plugin_run_t *run);

/* The record with `custom_fields` (a JSON object of static values; NULL or empty: none)
 * merged at the top level (a key already in the record is replaced), as a malloc'd string of
 * *len bytes (caller frees), or NULL when out of memory. */
char *aigw_plugin_log_record_with(aigw_plugin_run_t *run, const json_t *custom_fields,
                                  size_t *len);

/* For plugins (access phase): this request carries a credential in that header / query
 * argument / form or JSON body field: mask it in every log record. name is kept, not copied:
 * pass a string of the plugin's conf (it lives as long as the request's runtime). */
void aigw_plugin_log_mask_header(aigw_plugin_run_t *run, const char *name);
void aigw_plugin_log_mask_query(aigw_plugin_run_t *run, const char *name);

/* Adds a top-level value to the record (kong.log.set_serialize_value; correlation-id's
 * correlation_id). value is compact JSON, copied. Before the log phase. */
void aigw_plugin_log_set(aigw_plugin_run_t *run, const char *key, aigw_str_t json_value);

/* Masks, in a JSON text, every value of an object member whose name is in the configured
 * log_redact_json_fields (at any depth) and the secret patterns in string values. Returns a
 * malloc'd copy (*out_len bytes), or NULL when text is not JSON (the caller then logs it as
 * text through aigw_logrec_mask_text) or out of memory. */
char *aigw_logrec_mask_json(const char *text, size_t n, size_t *out_len);
/* Replaces every secret-pattern match in text: malloc'd copy. */
char *aigw_logrec_mask_text(const char *text, size_t n, size_t *out_len);

#endif
