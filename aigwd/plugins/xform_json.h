/* aigwd/plugins/xform_json.h: the edit lists and pure body/query transformations shared by
 * request-transformer and response-transformer (Kong 3.9 access.lua, body_transformer.lua).
 * Lists are built on the loader thread and read-only afterwards; the transformations are
 * pure functions (any thread) returning malloc'd text the caller frees. */
#ifndef AIGW_PLUGINS_XFORM_JSON_H
#define AIGW_PLUGINS_XFORM_JSON_H
#include <jansson.h>
#include <stddef.h>
#include "common/str.h"

enum { AIGW_XFORM_JT_STRING = 0, AIGW_XFORM_JT_NUMBER, AIGW_XFORM_JT_BOOLEAN };

/* One "name:value" entry, split as Lua's pair:match("^([^:]+):*(.-)$"). */
typedef struct aigw_xform_pair {
    char *name;           /* NUL-terminated, never empty */
    char *value;          /* NULL when the entry has no value ("name" or "name:") */
    int jt;               /* json_types entry of the same index (response json only) */
} aigw_xform_pair_t;

typedef struct aigw_xform_list {
    aigw_xform_pair_t *v;
    size_t n;
} aigw_xform_list_t;

/* The five operations of one target (headers, querystring, body, json), in Kong's order. */
typedef struct aigw_xform_ops {
    aigw_xform_list_t remove, rename, replace, add, append;
} aigw_xform_ops_t;

/* Splits s (Lua pattern above). 0, or -1 when s has no name (starts with ':' or is empty). */
int aigw_xform_split(const char *s, aigw_str_t *name, aigw_str_t *value);

/* Loads config.remove[key] ... config.append[key] (and json_types when key is "json").
 * 0, or -1 (out of memory; *o is then freed). */
int aigw_xform_ops_load(aigw_xform_ops_t *o, const json_t *config, const char *key);
void aigw_xform_ops_free(aigw_xform_ops_t *o);
/* Header lists only: 0 when every name is an HTTP token and every value (the new name for
 * rename) is free of control characters other than HTAB; else -1 with a message in err.
 * The plugins refuse such configs rather than send a header line a value could split. */
int aigw_xform_ops_headers_ok(const aigw_xform_ops_t *o, int rename_values_are_names,
                              char *err, size_t errlen);
/* 1 when no operation is configured. */
int aigw_xform_ops_empty(const aigw_xform_ops_t *o);

/* Kong's is_json_body: one of the comma-separated media types is application/json (or a
 * +json suffix type, as kong.tools.mime_type.includes accepts "application/json"). */
int aigw_xform_is_json_type(aigw_str_t content_type);

/* response-transformer's transform_json_body: the JSON object body edited (remove, rename,
 * replace, add, append with json_types) and encoded compact as cjson does. Returns malloc'd
 * text (*out_len set), or NULL when the body is not a JSON object (Kong: "failed parsing
 * json body", the body goes out unchanged) or out of memory. */
char *aigw_xform_resp_json(const aigw_xform_ops_t *o, const char *body, size_t len,
                           size_t *out_len);

/* request-transformer's body transformations. Each returns 1 with *out (malloc'd) when the
 * body changed, 0 when it is left as is, -1 when out of memory. */
int aigw_xform_req_json(const aigw_xform_ops_t *o, const char *body, size_t len, char **out,
                        size_t *out_len);
int aigw_xform_req_form(const aigw_xform_ops_t *o, const char *body, size_t len, char **out,
                        size_t *out_len);
int aigw_xform_req_multipart(const aigw_xform_ops_t *o, aigw_str_t content_type,
                             const char *body, size_t len, char **out, size_t *out_len);

/* request-transformer's query string: query parsed as kong.request.get_query, then (when
 * form.p) the arguments of a form body merged in (http_method GET/HEAD/TRACE), then o's
 * operations (o may be NULL), encoded as kong.service.request.set_query (arguments sorted).
 * Returns malloc'd text (may be empty) or NULL when out of memory. */
char *aigw_xform_req_query(const aigw_xform_ops_t *o, aigw_str_t query, aigw_str_t form,
                           size_t *out_len);

/* kong.tools.uri.escape for kong.service.request.set_path: malloc'd, NULL when out of memory. */
char *aigw_xform_escape_path(aigw_str_t path, size_t *out_len);

#endif
