/* aigwd/admin/decode.h: admin API request decoding, as Kong's kong/api/arguments.lua,
 * arguments_decoder.lua and api_helpers.lua (before_filter, parse_params) do it: the
 * Content-Type check (415), JSON bodies, application/x-www-form-urlencoded and
 * multipart/form-data bodies and URI query strings, into a jansson object.
 *
 * Pure functions (no I/O, no globals): any thread may call them; the admin thread does.
 *
 * Form, multipart and query arguments ("args"):
 *   - `&`-separated `key=value` pairs, percent-decoded with `+` as a space (an invalid `%`
 *     sequence is kept as it is). A pair with an empty key is dropped; a key without `=`
 *     has the value JSON true (as ngx.req.get_uri_args). Multipart parts are args named by
 *     their Content-Disposition `name` (or `name*=utf-8''...`); a file part's value is its
 *     content.
 *   - Keys: `a.b.c` nests objects; `a[]` appends to an array; `a[3]` puts the value at
 *     index 3 (1-based; an array is ordered by index, then by arrival; gaps close up);
 *     `a[k]` with a non-numeric k is the map key k, which may contain dots
 *     (`headers[x-foo]`); forms combine (`sources[1].ip=..&sources[1].port=..`). A
 *     repeated key makes an array. A key that does not follow this syntax (`.a`, `a.`,
 *     `a..b`, `a[b`, `a[b]c`, and `a[k]` with AIGW_DECODE_NO_MAPS) is taken literally. When
 *     two args disagree on the shape of one key (`a=1&a.b=2`), the later one replaces the
 *     earlier one.
 *   - Values are strings (true for a key without `=`) until coerced (below).
 *
 * Coercion (Kong's infer_value), by the schema field a value lands on:
 *   - "" becomes JSON null for any field (so `name=` clears a field); null stays null.
 *   - integer / number: a whole-string decimal number (surrounding blanks allowed, as Lua's
 *     tonumber; no hex, inf or nan) becomes a JSON integer (integer fields also take
 *     "60.0") or real; anything else stays a string and fails validation later.
 *   - boolean: "true" / "false".
 *   - array / set: a single value becomes a one-element array; elements are coerced by the
 *     element field. With AIGW_F_SPLIT_COMMAS (on the array field or its element), each
 *     string element is split on commas, pieces trimmed of blanks, empty pieces dropped.
 *   - map: values coerced by the value field. record: members coerced by their fields.
 *     foreign, and a record without a field table (a plugin's `config`): members coerced by
 *     the callback with the dotted path. any / string: unchanged. Unknown keys: unchanged.
 *
 * Limits: more than AIGW_DECODE_MAX_ARGS args (pairs or parts), or more than that many
 * elements made by comma splitting in all, is "Too many arguments"; a key of more than
 * AIGW_DECODE_MAX_DEPTH segments is rejected; keys and values must be valid UTF-8 without
 * NUL bytes. Memory use is linear in the input (JSON: jansson's, about 20 times the body
 * for an array of small numbers).
 *
 * JSON bodies (aigw decisions where Kong is loose, marked *):
 *   - taken as they are, never coerced; a malformed or empty body is
 *     "Cannot parse JSON body";
 *   - * duplicate keys are rejected ("Cannot parse JSON body"; Kong's cjson keeps the last);
 *   - * invalid UTF-8 and \u0000 are rejected ("Cannot parse JSON body"; cjson passes them);
 *   - * the top level must be an object; `[]` counts as `{}` (cjson cannot tell them apart,
 *     so Kong treats them alike); any other array or scalar is "Cannot parse JSON body"
 *     (Kong answers those with a 500 or an odd schema violation). */
#ifndef AIGW_ADMIN_DECODE_H
#define AIGW_ADMIN_DECODE_H
#include <jansson.h>
#include <stddef.h>
#include "common/str.h"

#include "schema/schema.h"

#define AIGW_DECODE_MAX_ARGS 1000
#define AIGW_DECODE_MAX_DEPTH 32

/* Results. EBAD: the client's fault, answer 400 {"message": err}. ENOMEM: answer 500. */
enum {
    AIGW_DECODE_OK = 0,
    AIGW_DECODE_EBAD = -1,
    AIGW_DECODE_ENOMEM = -2,
};

/* Splits a request path into percent-decoded segments (malloc'd, NUL-terminated, the
 * caller frees each); empty segments and a trailing slash are ignored. raw (may be NULL)
 * gets each segment as sent. 0, or -1 when there are more than max segments or memory ran
 * out (the *n segments made so far are still the caller's to free). */
int aigw_decode_path(aigw_str_t path, char **segs, aigw_str_t *raw, size_t max, size_t *n);

/* Flags for aigw_decode_query. */
enum {
    /* `a[k]` with a non-numeric k is a literal key, not a map key: Kong reads map brackets
     * only on POST, PUT and PATCH. Pass this for the URI args of GET, HEAD and DELETE. */
    AIGW_DECODE_NO_MAPS = 1u << 0,
};

typedef enum {
    AIGW_BODY_NONE = 0,   /* no Content-Type and an empty body: empty input */
    AIGW_BODY_JSON,
    AIGW_BODY_FORM,
    AIGW_BODY_MULTIPART,
    AIGW_BODY_YAML,       /* only with allow_yaml (/config); not decoded here */
} aigw_body_kind_t;

/* Which decoder a POST/PUT/PATCH body needs, from its Content-Type value (NULL when the
 * header is absent) and length. Like Kong's before_filter, the media type is a
 * case-sensitive prefix match ("application/json; charset=utf-8" is JSON,
 * "Application/JSON" is not): application/json, application/x-www-form-urlencoded,
 * multipart/form-data, and with allow_yaml application/yaml and text/yaml. Returns 0, or -1
 * for a 415 (another type, or a non-empty body without Content-Type). */
int aigw_decode_kind(const char *content_type, size_t content_type_len, size_t body_len,
                     int allow_yaml, aigw_body_kind_t *out);

/* The schema field the arg at `path` (depth keys, each a NUL-terminated string, borrowed for
 * the call) lands on, or NULL if none (the value is then not coerced). The admin layer
 * passes a closure over aigw_schema_field_path. Called only where the field tables cannot
 * tell (top-level keys, members of foreign fields and of records without a field table); the
 * path never goes through an array element. */
typedef const aigw_field_t *(*aigw_decode_coerce_fn)(void *ud, const char *const *path,
                                                     size_t depth);

/* Decodes body (len bytes, borrowed) of the given kind into a new object *out (caller
 * decrefs). content_type (ct_len bytes) is needed for the multipart boundary. coerce may be
 * NULL: then form and multipart values stay strings and arrays come only from the key
 * syntax. JSON is never coerced. AIGW_BODY_NONE gives {}; an empty form or multipart body
 * gives {}. AIGW_BODY_YAML is not handled here (EBAD): the /config handler gives YAML to the
 * declarative parser. Returns AIGW_DECODE_OK, or EBAD with Kong's message in err
 * ("Cannot parse JSON body", "Too many arguments", "Cannot parse multipart body", ...), or
 * ENOMEM; *out is NULL on failure. */
int aigw_decode_body(aigw_body_kind_t kind, const char *content_type, size_t ct_len,
                     const char *body, size_t len, aigw_decode_coerce_fn coerce, void *ud,
                     json_t **out, char *err, size_t errlen);

/* Decodes a URI query string (without the '?'; query may be NULL when len is 0) into a new
 * object *out, as a form body. flags: AIGW_DECODE_NO_MAPS. Returns as aigw_decode_body. */
int aigw_decode_query(const char *query, size_t len, unsigned flags,
                      aigw_decode_coerce_fn coerce, void *ud, json_t **out, char *err,
                      size_t errlen);

/* Coerces, in place, an object decoded from a form, multipart body or query with coerce ==
 * NULL. For a two-step decode when the schema depends on the input: decode, read `name`
 * (the plugin), then coerce with that plugin's `config` fields. Applying it to an already
 * coerced object changes nothing. Never apply it to a JSON body. Returns AIGW_DECODE_OK,
 * EBAD "Too many arguments" when comma splitting would make more than AIGW_DECODE_MAX_ARGS
 * elements in all, or ENOMEM (on failure obj is partly coerced: drop it). */
int aigw_decode_coerce(json_t *obj, aigw_decode_coerce_fn coerce, void *ud, char *err,
                       size_t errlen);

#endif
