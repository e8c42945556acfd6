/* aigwd/http/parse.h: the glue between llhttp and aigw: accumulates a request's pieces into
 * its arena, enforces the limits (request-target, header line, header block, header count,
 * body), rejects what llhttp lets through but a gateway must not (field names ending in
 * whitespace, obs-fold, HTTP versions other than 1.0 and 1.1), and stops after each message
 * so pipelined requests are handled one at a time. No I/O: the server and the fuzzer feed it.
 * One thread; one parser per connection. */
#ifndef AIGW_HTTP_PARSE_H
#define AIGW_HTTP_PARSE_H
#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include "http/request.h"

typedef struct aigw_http_limits {
    size_t max_target;          /* request-target bytes: 8192 (414 beyond) */
    size_t max_header_line;     /* one `name: value` line: 8192 (400 beyond) */
    size_t max_header_block;    /* all header lines: 32768 (400 beyond) */
    size_t max_headers;         /* header count: 256 (431 beyond) */
    uint64_t max_body;          /* 0 = no limit (413 beyond) */
    int buffer_body;            /* keep the body in req->body, else only count it */
    int head_dispatch;          /* stop after a head that a body follows (PARSE_HEAD): the
                                   caller then picks how the body is taken */
} aigw_http_limits_t;

extern const aigw_http_limits_t aigw_http_limits_default;

typedef enum {
    AIGW_HTTP_PARSE_AGAIN = 0,  /* all input consumed, message not complete */
    AIGW_HTTP_PARSE_DONE,       /* one message complete; *consumed says where it ended */
    AIGW_HTTP_PARSE_ERROR,      /* p->err_status / p->err_message tell the answer; close after */
    AIGW_HTTP_PARSE_HEAD,       /* (head_dispatch) the head is complete and a body follows;
                                   set body_mode, then feed on */
} aigw_http_parse_result_t;

/* How the body of the current message is taken after PARSE_HEAD (before it: as the limits
 * say). */
typedef enum {
    AIGW_BODY_BUFFER = 0,       /* into req->body (limits.buffer_body) or only counted */
    AIGW_BODY_SINK,             /* each decoded piece goes to sink(sink_ud, p, n) */
    AIGW_BODY_DISCARD,          /* counted against nothing, dropped (the answer is out) */
} aigw_http_body_mode_t;

typedef struct aigw_http_parser {
    llhttp_t llh;
    const aigw_http_limits_t *lim;
    aigw_http_req_t *req;       /* the request being filled; set by aigw_http_parser_begin */

    /* Accumulation: all header bytes go to one growing arena buffer, addressed by offsets
     * until the header block is complete. */
    char *hb;
    size_t hb_len, hb_cap;
    size_t target_off, target_len;
    size_t *hoff;               /* pairs of (name_off, name_len, value_off, value_len) */
    size_t n_hdr, hdr_cap;
    int in_value;               /* last piece was a value */
    size_t line_len;            /* bytes of the current header line */
    size_t body_cap;

    const char *feed_start;     /* the buffer being fed, to look one byte back */
    const char *feed_end;
    int crlf_pending;           /* bytes of the CRLF after chunk data still to check: 0-2 */
    char prev_last;             /* last byte of the previous feed */
    int started;                /* a byte of this message has been seen */
    int headers_done;
    int want_continue;          /* client sent Expect: 100-continue */
    int upgrade;                /* message ended in HPE_PAUSED_UPGRADE: close after answering */
    int head_paused;            /* on_headers_complete paused for PARSE_HEAD */
    aigw_http_body_mode_t body_mode;
    void (*sink)(void *ud, const char *p, size_t n);
    void *sink_ud;
    uint64_t discarded;         /* bytes dropped in AIGW_BODY_DISCARD */
    int err_status;             /* on AIGW_HTTP_PARSE_ERROR */
    const char *err_message;    /* Kong's body text for err_status */
} aigw_http_parser_t;

void aigw_http_parser_init(aigw_http_parser_t *p, const aigw_http_limits_t *lim);
/* Starts a new message into req (whose arena must be initialised). */
void aigw_http_parser_begin(aigw_http_parser_t *p, aigw_http_req_t *req);
/* Feeds data. *consumed: bytes used (all of them unless DONE, where the rest belongs to the
 * next message). */
aigw_http_parse_result_t aigw_http_parser_feed(aigw_http_parser_t *p, const char *data,
                                               size_t len, size_t *consumed);
/* After PARSE_HEAD with AIGW_BODY_BUFFER: size req->body for the announced length. 0 or -1
 * (out of memory). */
int aigw_http_parser_buffer_body(aigw_http_parser_t *p);

/* The peer closed: completes a message that ends at EOF, or reports a truncated one. */
aigw_http_parse_result_t aigw_http_parser_eof(aigw_http_parser_t *p);

/* Kong's body text for an error status (error_handlers.lua). */
const char *aigw_http_status_message(int status);
/* "Not Found" etc. */
const char *aigw_http_reason(int status);

#endif
