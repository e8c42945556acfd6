/* aigwd/http/errpage.h: the bodies of the errors aigw generates itself, in the format the
 * client asked for, as Kong does (kong/tools/http.lua get_response_type and its templates).
 * Pure; any thread. */
#ifndef AIGW_HTTP_ERRPAGE_H
#define AIGW_HTTP_ERRPAGE_H
#include <stddef.h>
#include "common/str.h"
#include "http/request.h"

typedef enum {
    AIGW_ERRPAGE_JSON = 0,
    AIGW_ERRPAGE_HTML,
    AIGW_ERRPAGE_PLAIN,
    AIGW_ERRPAGE_XML,
} aigw_errpage_format_t;

/* From Accept: the media type with the highest q wins, the first one on a tie; unknown
 * types mean JSON. Without Accept: JSON, or with use_content_type the request's own
 * Content-Type (as Kong's error_handlers.lua does for nginx-level errors; kong.response.error
 * reads Accept only). use_content_type == 2: the same, and text/plain when the request has
 * neither header (Kong's error_default_type, for errors nginx produces: 502, 504). */
aigw_errpage_format_t aigw_errpage_negotiate(const aigw_http_req_t *req, int use_content_type);

/* The Content-Type header value for a format. */
aigw_str_t aigw_errpage_content_type(aigw_errpage_format_t f);

/* Writes the body for message and request_id (32 chars) into out (cap bytes); returns its
 * length, or 0 when it does not fit. */
size_t aigw_errpage_render(aigw_errpage_format_t f, const char *message, const char *request_id,
                           char *out, size_t cap);
/* Enough for any message of mlen bytes. */
#define AIGW_ERRPAGE_MAX(mlen) (320 + (mlen))

#endif
