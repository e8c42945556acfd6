/* aigwd/proxy/upstream.h: HTTP/1.1 exchanges with upstream servers, over a per-worker pool
 * of keep-alive connections (plain TCP or TLS through memory BIOs). Everything here runs on
 * one worker thread: a pool belongs to the worker loop it was made on.
 *
 * One exchange = one request written to one connection and its response parsed with llhttp
 * and handed to the caller piece by piece (head, body pieces, end) so that it can stream
 * them to the client as they arrive. The caller owns the request bytes until the exchange
 * ends or is cancelled. Pool semantics follow Kong's nginx template: a pool per
 * `ip:port` (plus `|sni|client context` for TLS), at most upstream_keepalive_pool_size idle
 * connections per pool, upstream_keepalive_max_requests requests per connection,
 * upstream_keepalive_idle_timeout seconds of idleness; an idle connection the server closes
 * (or writes to) is dropped at once. */
#ifndef AIGW_PROXY_UPSTREAM_H
#define AIGW_PROXY_UPSTREAM_H
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>
#include "http/request.h"

typedef struct aigw_uppool aigw_uppool_t;
typedef struct aigw_upex aigw_upex_t;

typedef struct aigw_uppool_opts {
    int pool_size;          /* idle connections per pool key; 0: no keep-alive */
    int max_requests;       /* per connection; 0: no cap */
    int idle_timeout_ms;    /* 0: none */
} aigw_uppool_opts_t;

aigw_uppool_t *aigw_uppool_new(uv_loop_t *loop, const aigw_uppool_opts_t *o);
void aigw_uppool_set_opts(aigw_uppool_t *p, const aigw_uppool_opts_t *o);
/* Closes every idle connection (exchanges in flight keep theirs). */
void aigw_uppool_close_idle(aigw_uppool_t *p);
/* After the loop has run every close callback; no exchange may be in flight. */
void aigw_uppool_free(aigw_uppool_t *p);
/* Idle connections held (tests). */
size_t aigw_uppool_idle(const aigw_uppool_t *p);

/* Why an exchange failed. The proxy maps these to Kong's answers: timeouts to 504, the
 * rest to 502. */
typedef enum {
    AIGW_UPERR_CONNECT = 1,      /* refused, unreachable, reset while connecting */
    AIGW_UPERR_CONNECT_TIMEOUT,
    AIGW_UPERR_TLS,              /* handshake failed or certificate rejected */
    AIGW_UPERR_WRITE,            /* reset or closed while sending the request */
    AIGW_UPERR_WRITE_TIMEOUT,
    AIGW_UPERR_READ_TIMEOUT,
    AIGW_UPERR_CLOSED,           /* closed or reset before the response was complete */
    AIGW_UPERR_INVALID,          /* not HTTP, or a head beyond the header limits */
} aigw_uperr_t;

const char *aigw_uperr_text(aigw_uperr_t e);

/* What one exchange needs. Strings and buffers are borrowed until the exchange ends. */
typedef struct aigw_upex_params {
    struct sockaddr_storage addr;  /* port set */
    SSL_CTX *ssl_ctx;              /* non-NULL: TLS */
    const char *sni;               /* TLS server name (NULL or an IP literal: none) */
    int tls_verify;                /* check the certificate against sni */
    int connect_timeout, write_timeout, read_timeout;   /* ms */
    const uv_buf_t *bufs;          /* the whole request: head and body */
    unsigned nbufs;
    int head_request;              /* the request is a HEAD: the response has no body */
    int upgrade;                   /* the request asks for a protocol switch (WebSocket) */
    /* bufs is only the head: the body follows with aigw_upex_body_write/_end (chunk-framed
     * when body_chunked). Always a new connection: a pooled one the server has closed would
     * fail after body bytes were taken from the client, when nothing can be retried. */
    int stream_body;
    int body_chunked;
} aigw_upex_params_t;

typedef struct aigw_upex_cbs {
    /* The response head: status, headers in arrival order (views valid until the exchange
     * ends), content_length (-1 unknown/chunked/close-delimited; 0 with no body). Return 0
     * to go on, -1 to stop (the caller then cancels). 1xx heads other than 101 are skipped. */
    int (*on_head)(void *ud, int status, const aigw_http_header_t *h, size_t nh,
                   int64_t content_length);
    /* A piece of the decoded body. Return 0 to go on, 1 to pause reading until
     * aigw_upex_resume(), -1 to stop (the caller then cancels). */
    int (*on_body)(void *ud, const char *p, size_t n);
    /* The response is complete; the connection went back to the pool or was closed. The
     * exchange is gone. */
    void (*on_done)(void *ud);
    /* The exchange failed; the connection is closed and the exchange is gone. reused: the
     * connection came from the pool; got_bytes: some response bytes had arrived. */
    void (*on_error)(void *ud, aigw_uperr_t e, int reused, int got_bytes);
    /* Every byte read so far is delivered and the response is not complete yet (after the
     * head): a moment to flush what was held back. May cancel. */
    void (*on_idle)(void *ud);
    /* After a 101 (on_head saw it, with params.upgrade): raw bytes from the upstream. The
     * tunnel ends with on_done (upstream closed) or on_error. May cancel. */
    void (*on_tunnel)(void *ud, const char *p, size_t n);
    /* Tunnel writes queued towards the upstream have drained (after tunnel_write said 1). */
    void (*on_tunnel_drain)(void *ud);
    /* stream_body: the head is written; body bytes may follow. Once. May cancel. */
    void (*on_body_ready)(void *ud);
    /* stream_body: body writes have drained below the low-water mark (after body_write
     * said 1). May cancel. */
    void (*on_body_drain)(void *ud);
} aigw_upex_cbs_t;

/* Starts an exchange; callbacks come later, never from inside this call. NULL when out of
 * memory. */
aigw_upex_t *aigw_upex_start(aigw_uppool_t *p, const aigw_upex_params_t *prm,
                             const aigw_upex_cbs_t *cbs, void *ud);
/* Abandons an exchange (client gone, plugin stop): its connection is closed, no callback
 * runs afterwards. Safe from inside a callback of the same exchange. */
void aigw_upex_cancel(aigw_upex_t *x);
/* Tunnel: bytes from the client to the upstream. 0, 1 (queue is long: pause the client until
 * on_tunnel_drain), -1 (the exchange failed; on_error follows on the next turn). */
int aigw_upex_tunnel_write(aigw_upex_t *x, const char *p, size_t n);
/* Tunnel: stop / resume reading the upstream (the client is slow). */
void aigw_upex_tunnel_pause(aigw_upex_t *x, int pause);

/* stream_body: request body bytes (copied when the socket does not take them at once).
 * 0, 1 (the queue is long: hold the client back until on_body_drain), -1 (the exchange
 * failed; on_error follows on the next turn). After a complete response the bytes are
 * dropped. */
int aigw_upex_body_write(aigw_upex_t *x, const char *p, size_t n);
/* stream_body: the body is complete (the last chunk goes out when chunked); the response
 * timeout starts when it has been sent. 0 or -1. */
int aigw_upex_body_end(aigw_upex_t *x);

/* Reading resumes after on_body returned 1. */
void aigw_upex_resume(aigw_upex_t *x);
/* The moment (uv_hrtime) the first response byte arrived, 0 before. */
uint64_t aigw_upex_first_byte_ns(const aigw_upex_t *x);

#endif
