/* aigwd/http/request.h: one HTTP/1.x request as the server parsed it. Lives in its own arena
 * (req->arena) and is valid until the response has been handed to the connection and the
 * server resets the arena. Owned by the worker thread that parsed it. */
#ifndef AIGW_HTTP_REQUEST_H
#define AIGW_HTTP_REQUEST_H
#include <stdint.h>
#include "common/str.h"
#include "core/arena.h"

typedef struct aigw_http_header {
    aigw_str_t name;                /* as received (case kept) */
    aigw_str_t value;               /* trimmed; obs-fold is rejected, never joined */
} aigw_http_header_t;

typedef struct aigw_http_conn aigw_http_conn_t;

typedef struct aigw_http_req {
    aigw_arena_t arena;
    aigw_http_conn_t *conn;         /* NULL in parser-only use (tests, fuzzing) */

    int method;                     /* llhttp_method_t */
    aigw_str_t method_name;         /* static string */
    aigw_str_t target;              /* request-target as sent: path?query */
    aigw_str_t path;                /* part of target before '?' */
    aigw_str_t query;               /* after '?', without it; empty if none */
    aigw_str_t uri_host;            /* absolute-form target (http://h:p/x): "h:p"; else empty.
                                       RFC 9112 3.2.2: it replaces the Host header */
    int http_major, http_minor;
    int keep_alive;                 /* llhttp's verdict at headers complete */

    aigw_http_header_t *headers;    /* in arrival order */
    size_t n_headers;

    char *body;                     /* buffered body (buffer_body listeners), NUL-terminated */
    uint64_t body_len;              /* bytes received, also when discarded */
    int chunked;

    char request_id[33];            /* 32 hex digits + NUL */
    uint64_t start_ns;              /* uv_hrtime when the first byte arrived */

    /* Filled by the responder, read by the access log. */
    int status;
    uint64_t bytes_sent;            /* body bytes */
} aigw_http_req_t;

/* First header with that name (case-insensitive), or NULL. */
const aigw_http_header_t *aigw_http_req_header(const aigw_http_req_t *r, aigw_str_t name);

#endif
