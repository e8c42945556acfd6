/* tests/fuzz/fuzz_http.c: libFuzzer harness for the llhttp glue (aigwd/http/parse.c).
 *
 * The first input byte chooses how the rest is cut into reads and which limits apply; the
 * rest is fed as a connection would receive it: each piece in its own exact-size heap block
 * (so ASan sees any read before or after it), pipelined messages one after another with a
 * fresh arena for each, and EOF at the end. Never crash, never leak, and a few invariants a
 * caller relies on are checked on every complete message.
 *
 * Config byte:
 *   bits 0-2  read size: 1, 2, 3, 7, 16, 100, 1000, or varying 1..64 (a PRNG)
 *   bit  3    small limits (target 64, line 64, block 256, 4 headers) instead of defaults
 *   bit  4    buffer_body
 *   bit  5    a small max_body (64) instead of the default one
 *   bit  6    stop after a message that does not keep the connection (as the server does)
 *
 * buffer_body always comes with a max_body here (10 MiB when not small, as the admin
 * listener has): buffer_body with max_body 0 preallocates Content-Length bytes unchecked,
 * which overflows for Content-Length near 2^64 (a known bug in parse.c, see
 * tests/unit/test_http_parse.c "BUG 3"). Build with -DFUZZ_HTTP_UNLIMITED_BUFFERED_BODY to
 * fuzz that combination too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"
#include "fuzz_common.h"

static const size_t steps[8] = { 1, 2, 3, 7, 16, 100, 1000, 0 };

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static volatile unsigned sink;
static uint64_t sunk;   /* body bytes the AIGW_BODY_SINK callback got for this message */

static void body_sink(void *ud, const char *d, size_t n)
{
    (void)ud;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)d[i];
    sink = sum;
    sunk += n;
}

/* Reads every byte the request points at (ASan checks they are live) and the invariants. */
static void check_message(const aigw_http_parser_t *p, const aigw_http_req_t *r,
                          const aigw_http_limits_t *lim)
{
    unsigned sum = 0;

    CHECK(p->err_status == 0);
    CHECK(r->http_major == 1 && (r->http_minor == 0 || r->http_minor == 1));
    CHECK(r->method_name.p != NULL && r->method_name.n > 0);

    CHECK(r->target.n >= 1 && r->target.n <= lim->max_target);
    if (r->uri_host.n) {
        /* absolute-form: the authority lies inside the target; the path is the origin form
         * after it (or a static "/"), the query after the first '?' */
        CHECK(r->uri_host.p > r->target.p && r->uri_host.p + r->uri_host.n <= r->target.p + r->target.n);
        CHECK(r->path.n >= 1 && r->path.p[0] == '/');
        if (r->path.p != r->uri_host.p + r->uri_host.n)
            CHECK(r->path.n == 1);
        for (size_t i = 0; i < r->uri_host.n; i++)
            sum += (unsigned char)r->uri_host.p[i];
        for (size_t i = 0; i < r->path.n; i++)
            sum += (unsigned char)r->path.p[i];
        for (size_t i = 0; i < r->query.n; i++)
            sum += (unsigned char)r->query.p[i];
    } else {
        CHECK(r->path.p == r->target.p && r->path.n <= r->target.n);
        if (r->path.n < r->target.n) {
            CHECK(r->target.p[r->path.n] == '?');
            CHECK(r->query.p == r->target.p + r->path.n + 1);
            CHECK(r->path.n + 1 + r->query.n == r->target.n);
        } else {
            CHECK(r->query.n == 0);
        }
    }
    for (size_t i = 0; i < r->target.n; i++)
        sum += (unsigned char)r->target.p[i];

    CHECK(r->n_headers <= lim->max_headers);
    CHECK(r->n_headers == 0 || r->headers != NULL);
    int hosts = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        aigw_str_t n = r->headers[i].name, v = r->headers[i].value;
        CHECK(n.n > 0 && n.n <= lim->max_header_line);
        CHECK(!is_ows(n.p[n.n - 1]));
        CHECK(v.n <= lim->max_header_line);
        if (v.n)
            CHECK(!is_ows(v.p[0]) && !is_ows(v.p[v.n - 1]));
        for (size_t j = 0; j < n.n; j++)
            sum += (unsigned char)n.p[j];
        for (size_t j = 0; j < v.n; j++) {
            CHECK(v.p[j] != '\r' && v.p[j] != '\n');
            sum += (unsigned char)v.p[j];
        }
        if (aigw_str_ieq(n, AIGW_STR("host")))
            hosts++;
    }
    CHECK(hosts <= 1);
    CHECK(r->http_minor == 0 || hosts == 1);
    CHECK(aigw_http_req_header(r, AIGW_STR("host")) != NULL || hosts == 0);

    if (lim->max_body)
        CHECK(r->body_len <= lim->max_body);
    if (p->body_mode == AIGW_BODY_SINK) {
        CHECK(r->body == NULL);
        CHECK(sunk == r->body_len);
    } else if (p->body_mode == AIGW_BODY_DISCARD) {
        CHECK(r->body == NULL && r->body_len == 0);
    } else if (lim->buffer_body) {
        if (r->body_len) {
            CHECK(r->body != NULL);
            for (uint64_t i = 0; i < r->body_len; i++)
                sum += (unsigned char)r->body[i];
        }
        if (r->body)
            CHECK(r->body[r->body_len] == '\0');
    } else {
        CHECK(r->body == NULL);
    }
    sink = sum;
}

static void check_error(const aigw_http_parser_t *p)
{
    switch (p->err_status) {
    case 400: case 413: case 414: case 431: case 494: case 500: case 501: case 505:
        break;
    default:
        CHECK(0);
    }
    CHECK(p->err_message != NULL);
    CHECK(strcmp(p->err_message, aigw_http_status_message(p->err_status)) == 0);
}

/* As the server's begin_request: keep the (reset) arena, clear the rest. */
static void next_message(aigw_http_parser_t *p, aigw_http_req_t *r)
{
    aigw_arena_reset(&r->arena);
    memset(r, 0, sizeof(*r));
    aigw_arena_init(&r->arena, NULL);
    aigw_http_parser_begin(p, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t cfg = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    aigw_http_limits_t lim = aigw_http_limits_default;
    if (cfg & 0x08) {
        lim.max_target = 64;
        lim.max_header_line = 64;
        lim.max_header_block = 256;
        lim.max_headers = 4;
    }
    lim.buffer_body = (cfg & 0x10) != 0;
    if (cfg & 0x20)
        lim.max_body = 64;
#ifndef FUZZ_HTTP_UNLIMITED_BUFFERED_BODY
    else if (lim.buffer_body)
        lim.max_body = 10u * 1024 * 1024;
#endif
    int stop_on_close = (cfg & 0x40) != 0;
    lim.head_dispatch = (cfg & 0x80) != 0;   /* the proxy's mode: a body choice per message */
    size_t step = steps[cfg & 7];
    uint32_t rng = 0x9e3779b9u ^ (uint32_t)len;

    aigw_http_parser_t p;
    aigw_http_req_t req;
    memset(&req, 0, sizeof(req));
    aigw_arena_init(&req.arena, NULL);
    aigw_http_parser_init(&p, &lim);
    aigw_http_parser_begin(&p, &req);

    int failed = 0, closed = 0, zero_done = 0;
    size_t off = 0;
    while (off < len && !failed && !closed) {
        size_t n = step;
        if (n == 0) {
            rng = rng * 1664525u + 1013904223u;
            n = 1 + (rng >> 26);   /* 1..64 */
        }
        if (n > len - off)
            n = len - off;
        char *piece = malloc(n);
        CHECK(piece != NULL);
        memcpy(piece, in + off, n);
        off += n;

        size_t pos = 0;
        while (pos < n) {
            size_t used = (size_t)-1;
            aigw_http_parse_result_t r = aigw_http_parser_feed(&p, piece + pos, n - pos, &used);
            CHECK(used <= n - pos);
            pos += used;
            if (r == AIGW_HTTP_PARSE_AGAIN) {
                CHECK(pos == n);
                break;
            }
            if (r == AIGW_HTTP_PARSE_ERROR) {
                check_error(&p);
                failed = 1;
                break;
            }
            if (r == AIGW_HTTP_PARSE_HEAD) {
                /* As the server after a head dispatch: buffer, stream or drop the body. */
                CHECK(lim.head_dispatch && p.headers_done);
                rng = rng * 1664525u + 1013904223u;
                unsigned mode = (rng >> 24) % 3;
                sunk = 0;
                if (mode == 0) {
                    p.body_mode = AIGW_BODY_BUFFER;
                    CHECK(aigw_http_parser_buffer_body(&p) == 0);
                } else if (mode == 1) {
                    p.body_mode = AIGW_BODY_SINK;
                    p.sink = body_sink;
                    p.sink_ud = NULL;
                } else {
                    p.body_mode = AIGW_BODY_DISCARD;
                }
                zero_done = 0;
                continue;
            }
            CHECK(r == AIGW_HTTP_PARSE_DONE);
            /* A message needs bytes: two empty DONEs in a row would spin the server. */
            zero_done = used == 0 ? zero_done + 1 : 0;
            CHECK(zero_done < 2);
            check_message(&p, &req, &lim);
            /* The server closes after an Upgrade/CONNECT or a non-keep-alive answer. */
            int last = p.upgrade || (stop_on_close && !req.keep_alive);
            next_message(&p, &req);
            if (last) {
                closed = 1;
                break;
            }
        }
        free(piece);
    }

    if (!failed && !closed) {
        aigw_http_parse_result_t e = aigw_http_parser_eof(&p);
        CHECK(e == AIGW_HTTP_PARSE_AGAIN || e == AIGW_HTTP_PARSE_ERROR);
        if (e == AIGW_HTTP_PARSE_ERROR && p.err_status)
            check_error(&p);
        /* eof keeps its verdict. */
        CHECK(aigw_http_parser_eof(&p) == e);
    }
    aigw_arena_reset(&req.arena);
    return 0;
}
