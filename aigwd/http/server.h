/* aigwd/http/server.h: the HTTP/1.1 server core. One aigw_http_worker_t per libuv loop (a proxy
 * worker thread, or the admin thread); each has its own SO_REUSEPORT listeners, connections,
 * buffer and arena pools. Everything here runs on the worker's own thread, except
 * aigw_http_stats_sum(), which any thread may call. */
#ifndef AIGW_HTTP_SERVER_H
#define AIGW_HTTP_SERVER_H
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>
#include "core/arena.h"
#include "core/conf.h"
#include "core/log.h"
#include "http/parse.h"
#include "http/request.h"

/* nginx semantics: active = open client connections; reading = reading a request head;
 * writing = between a complete head and the end of the response; waiting = idle keep-alive.
 * Each worker writes its own (relaxed atomics, one writer); readers sum them. */
typedef struct aigw_http_stats {
    _Atomic uint64_t accepted, handled, total_requests;
    _Atomic int64_t active, reading, writing, waiting;
    _Atomic uint64_t arena_bytes;     /* bytes held by this worker's pools */
} aigw_http_stats_t;

typedef struct aigw_http_stats_total {
    uint64_t accepted, handled, total_requests;
    int64_t active, reading, writing, waiting;
    uint64_t arena_bytes;
    size_t workers;
} aigw_http_stats_total_t;

void aigw_http_stats_sum(aigw_http_stats_total_t *out);

typedef enum {
    AIGW_SVC_PROXY = 0,
    AIGW_SVC_ADMIN,
    AIGW_SVC_STATUS,
    AIGW_SVC_COUNT
} aigw_svc_kind_t;

/* Called with a complete request (head, and body when limits.buffer_body). The handler must
 * answer with aigw_http_respond*() exactly once, now or later on this thread. */
typedef void (*aigw_http_handler_fn)(aigw_http_req_t *req, void *ud);

/* What one kind of listener serves. Owned by the worker, updated in place on reload. */
typedef struct aigw_http_service {
    aigw_http_handler_fn on_request;
    void *ud;
    aigw_http_limits_t limits;
    aigw_log_file_t access_log;
    unsigned headers;                 /* AIGW_HDR_* for the responses of this service */
    SSL_CTX *ssl_ctx;                 /* one reference owned; NULL if no ssl listener */
} aigw_http_service_t;

typedef struct aigw_http_conn aigw_http_conn_t;
typedef struct aigw_http_listener aigw_http_listener_t;

typedef struct aigw_http_worker {
    uv_loop_t *loop;
    const char *name;                 /* "w0", "admin": for logs */
    aigw_http_service_t svc[AIGW_SVC_COUNT];
    aigw_arena_pool_t arena_pool;
    char **buf_free;                  /* read buffers of AIGW_HTTP_RBUF bytes */
    size_t n_buf_free;
    char *tls_scratch;                /* ciphertext read buffer, one per worker */
    aigw_http_listener_t *listeners;  /* list */
    aigw_http_conn_t *conns;          /* list */
    size_t n_conns;
    int draining;
    void (*on_drained)(struct aigw_http_worker *w);   /* last connection gone while draining */
    aigw_http_stats_t *stats;         /* registered for aigw_http_stats_sum */
    uint64_t rid_s[2];                /* request id generator state */
    uint64_t conn_serial;             /* connections accepted so far (nginx $connection) */
    time_t date_sec;
    char date[40];                    /* "Date: ...\r\n" for date_sec */
    size_t date_len;
} aigw_http_worker_t;

#define AIGW_HTTP_RBUF 16384

/* Loop thread. 0 or -1 (out of memory). */
int aigw_http_worker_init(aigw_http_worker_t *w, uv_loop_t *loop, const char *name);
/* Loop thread, after every handle has closed (the loop ran to completion). */
void aigw_http_worker_free(aigw_http_worker_t *w);

/* Opens one listener for l (SO_REUSEPORT, so every worker has its own) serving svc kind.
 * 0, or -1 with "cannot listen on ADDR:PORT: reason" in err. */
int aigw_http_listen(aigw_http_worker_t *w, const aigw_listen_t *l, aigw_svc_kind_t kind,
                     char *err, size_t errlen);
/* Closes the listeners for which keep(l, ud) returns 0 (keep NULL: all). Connections stay. */
void aigw_http_close_listeners(aigw_http_worker_t *w,
                               int (*keep)(const aigw_listen_t *l, aigw_svc_kind_t k, void *ud),
                               void *ud);
/* 1 if this worker already listens on l for kind. */
int aigw_http_has_listener(const aigw_http_worker_t *w, const aigw_listen_t *l,
                           aigw_svc_kind_t kind);

/* Graceful stop: listeners closed, idle connections closed, busy ones closed after their
 * current response. on_drained runs when none is left. */
void aigw_http_worker_drain(aigw_http_worker_t *w);
/* Hard stop: every connection closed now. */
void aigw_http_worker_close_all(aigw_http_worker_t *w);

typedef struct aigw_http_resp_header {
    aigw_str_t name, value;
} aigw_http_resp_header_t;

/* Answers req. Adds Date, Content-Length, Connection, and Server / X-Kong-Request-Id as the
 * service's `headers` say. body is copied or written before returning: the caller keeps it. */
void aigw_http_respond(aigw_http_req_t *req, int status, const aigw_http_resp_header_t *h,
                       size_t nh, const char *body, size_t len);
/* Kong's error body for status (error_handlers.lua's JSON template, with request_id). */
void aigw_http_respond_error(aigw_http_req_t *req, int status, const char *message);
/* The same with extra headers (at most 6), e.g. 426's Upgrade. */
void aigw_http_respond_error_with(aigw_http_req_t *req, int status, const char *message,
                                  const aigw_http_resp_header_t *h, size_t nh);

/* ---- streaming responses (the proxy) ----
 * A handler that answers later registers an abort callback first: it runs when the client
 * connection closes while the request is in flight (client gone, drain timeout); after it
 * returns req and its arena are gone, and the handler must not touch them again. The server
 * never calls it from inside one of the calls below: those report a failed write with -1,
 * after which the handler calls aigw_http_stream_abort(). */
typedef void (*aigw_http_abort_fn)(aigw_http_req_t *req, void *ud);
typedef void (*aigw_http_drain_fn)(aigw_http_req_t *req, void *ud);

void aigw_http_on_abort(aigw_http_req_t *req, aigw_http_abort_fn fn, void *ud);

/* Writes the status line and h as given (the caller supplies Date, Server, Via: a proxied
 * response keeps the upstream's), plus framing, Connection and X-Kong-Request-Id.
 * content_length >= 0 is sent as Content-Length; -1 means unknown: chunked to an HTTP/1.1
 * client, close-delimited to HTTP/1.0. 204/304/1xx and HEAD get no body framing.
 * 0, 1 (the client is slow: stop producing until the drain callback), or -1 (write failed). */
int aigw_http_stream_begin(aigw_http_req_t *req, int status, const aigw_http_resp_header_t *h,
                           size_t nh, int64_t content_length);
/* The head is held back so that it leaves with the first body bytes (one write); flush
 * sends it now (call it when no body bytes are at hand, e.g. at the end of a read). 0, 1
 * or -1 as above. */
int aigw_http_stream_flush(aigw_http_req_t *req);
/* Sends len body bytes (chunk-encoded when the framing says so). 0, 1 or -1 as above. */
int aigw_http_stream_write(aigw_http_req_t *req, const char *data, size_t len);
/* fn runs once, when the bytes queued for the client fall below the low-water mark. */
void aigw_http_stream_on_drain(aigw_http_req_t *req, aigw_http_drain_fn fn, void *ud);
/* The body is complete: last chunk, keep-alive bookkeeping, access log. req is gone after. */
void aigw_http_stream_end(aigw_http_req_t *req);
/* The body cannot be completed (upstream died mid-body, write failed): the connection is
 * closed without a terminating chunk so the client sees the truncation. req is gone after. */
void aigw_http_stream_abort(aigw_http_req_t *req);

/* ---- request bodies (services with limits.head_dispatch) ----
 * Such a service's handler is called as soon as a request head is complete. When a body
 * follows (aigw_http_body_pending), the handler takes it in one of two ways, at once or
 * later (until then the client is held back):
 *  - aigw_http_body_read: buffered into req->body (limits.max_body, buffer_body). Returns 1
 *    when the body is complete already (done is not called), else 0 and done(req, ud) runs
 *    when it is. A body that breaks the limits or the framing is answered by the server
 *    (413/400), after the abort callback told the handler to let go.
 *  - aigw_http_body_stream: each decoded piece goes to data(ud, p, n) as it arrives (copy
 *    what you keep), then done(req, ud); aigw_http_body_pause(req, 1) holds the client back
 *    until aigw_http_body_pause(req, 0). data and done may run inside this call.
 * A response that ends while the body is still coming: the rest is read and dropped (up to
 * 1 MiB, else the connection closes), so the connection can carry the next request. */
typedef void (*aigw_http_body_done_fn)(aigw_http_req_t *req, void *ud);
typedef void (*aigw_http_body_data_fn)(void *ud, const char *p, size_t n);
int aigw_http_body_pending(const aigw_http_req_t *req);
int aigw_http_body_read(aigw_http_req_t *req, aigw_http_body_done_fn done, void *ud);
void aigw_http_body_stream(aigw_http_req_t *req, aigw_http_body_data_fn data,
                           aigw_http_body_done_fn done, void *ud);
void aigw_http_body_pause(aigw_http_req_t *req, int pause);

/* ---- protocol switch (WebSocket) ----
 * After the upstream's 101: writes the 101 head with h as given, then every byte the client
 * sends (including what followed its request head) goes to fn as it arrives; the connection
 * closes when the tunnel ends (aigw_http_stream_abort) or the client leaves (the abort
 * callback runs). 0 or -1. */
typedef void (*aigw_http_tunnel_fn)(void *ud, const char *p, size_t n);
int aigw_http_tunnel_begin(aigw_http_req_t *req, const aigw_http_resp_header_t *h, size_t nh,
                           aigw_http_tunnel_fn fn, void *ud);
/* Bytes from the upstream to the client. 0, 1 (slow client: pause the upstream until the
 * drain callback), -1. */
int aigw_http_tunnel_write(aigw_http_req_t *req, const char *p, size_t n);
/* Stops / resumes reading the client (the upstream is slow). */
void aigw_http_tunnel_pause(aigw_http_req_t *req, int pause);

/* nginx's $connection (the connection's serial number in its worker) and
 * $connection_requests (requests on it so far, this one included). */
uint64_t aigw_http_req_conn_serial(const aigw_http_req_t *req);
uint64_t aigw_http_req_conn_requests(const aigw_http_req_t *req);
/* The local address req arrived on, as text ("127.0.0.1"); "-" when unknown. Asks the
 * kernel (one getsockname): not for every request. */
void aigw_http_req_local_addr(const aigw_http_req_t *req, char *out, size_t cap);

/* The port of the listener req arrived on; 1 if that listener is TLS; the TLS SNI or NULL. */
int aigw_http_req_local_port(const aigw_http_req_t *req);
int aigw_http_req_is_tls(const aigw_http_req_t *req);
const char *aigw_http_req_sni(const aigw_http_req_t *req);
/* The TLS connection's protocol ("TLSv1.3") and cipher (OpenSSL names), or NULLs. */
void aigw_http_req_tls_info(const aigw_http_req_t *req, const char **version,
                            const char **cipher);

/* An error nginx would produce (upstream 502/503/504): Kong's error_handlers.lua body, in
 * the format of Accept, else Content-Type, else text/plain. */
void aigw_http_respond_upstream_error(aigw_http_req_t *req, int status, const char *message);
/* The same with extra response headers (at most 14 are sent). */
void aigw_http_respond_upstream_error_with(aigw_http_req_t *req, int status,
                                           const char *message,
                                           const aigw_http_resp_header_t *h, size_t nh);

/* The `headers` setting (AIGW_HDR_* bits) of the service req arrived on. */
unsigned aigw_http_req_headers(const aigw_http_req_t *req);

/* Client address of req as text ("127.0.0.1"). */
const char *aigw_http_req_client_ip(const aigw_http_req_t *req);

#endif
