/* aigwd/http/server.c: see server.h.
 *
 * A connection is a small state machine:
 *
 *   WAITING --first byte--> READING --message complete--> HANDLING --response--> WAITING
 *        \                      \--error--> answer with Connection: close, LINGERING
 *         \--idle timeout / drain--> closed
 *
 * Reads land in a buffer borrowed from the worker's pool only while there are unparsed bytes,
 * so an idle keep-alive connection holds no buffer. Writes try the socket first and queue only
 * what it did not take. TLS runs through memory BIOs between OpenSSL and libuv. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "http/errpage.h"
#include "http/server.h"
#include "http/sockio.h"

#define HEADER_TIMEOUT_MS 60000    /* nginx client_header_timeout */
#define BODY_TIMEOUT_MS 60000      /* nginx client_body_timeout */
#define KEEPALIVE_TIMEOUT_MS 60000 /* Kong's keepalive_timeout */
#define SEND_TIMEOUT_MS 60000      /* nginx send_timeout */
#define LINGER_TIMEOUT_MS 2000     /* how long unread input is drained before a close */
#define MAX_PENDING_WRITE (1u << 20)
#define MAX_FREE_BUFS 64
#define MAX_DISCARD ((uint64_t)1 << 20) /* body bytes read and dropped after an answer */
#define MAX_WORKERS 1100

typedef enum {
    CONN_WAITING = 0,
    CONN_READING,
    CONN_HANDLING,
    CONN_LINGERING,
    CONN_CLOSED,
} conn_state_t;

struct aigw_http_listener {
    uv_tcp_t tcp;
    aigw_http_worker_t *w;
    aigw_listen_t conf;
    aigw_svc_kind_t kind;
    aigw_http_listener_t *next;
};

struct aigw_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    aigw_http_worker_t *w;
    aigw_svc_kind_t kind;
    conn_state_t state;
    int handles_open;
    int closing;
    int close_after;             /* close once the current response is written */
    int reading_stopped;
    int continue_sent;
    aigw_sockq_t wq;             /* writes queued on the socket */
    uint64_t last_activity;      /* uv_now of the last read or write progress */
    uint64_t timer_due;          /* when the armed timer fires (uv_now clock) */
    uint64_t state_since;        /* uv_now when the current state began */

    SSL *ssl;
    int tls_ready;
    int plain_on_tls;            /* an HTTP request arrived on a TLS listener */

    char *rbuf;                  /* from the worker pool, or NULL */
    size_t rlen, rpos;

    aigw_http_parser_t parser;
    aigw_http_req_t req;
    int in_request;              /* a message was handed to the handler and not answered */
    int dispatching;             /* the handler is on the stack */

    char peer_ip[INET6_ADDRSTRLEN];
    int local_port;              /* the listener's port */
    uint64_t serial;             /* nginx $connection */
    uint64_t requests;           /* requests dispatched on this connection */
    int is_tls;                  /* accepted on an ssl listener */

    /* Streaming responses (aigw_http_stream_*). */
    int streaming;               /* head written, end not yet */
    int chunked_out;             /* the body goes out in chunked encoding */
    int write_failed;            /* a write to the client failed during the stream */
    char *held_head;             /* a response head not written yet (request arena) */
    aigw_http_tunnel_fn tunnel_fn;   /* after a 101: raw client bytes go here */
    void *tunnel_ud;
    size_t held_len;
    aigw_http_abort_fn abort_fn; /* the client went away while a request was in flight */
    void *abort_ud;
    aigw_http_drain_fn drain_fn; /* writes fell below the low-water mark */
    void *drain_ud;

    /* The request body after a head dispatch (limits.head_dispatch). */
    int body_state;              /* BODY_* */
    int body_paused;             /* the handler holds the body back (aigw_http_body_pause) */
    int body_sync;               /* inside aigw_http_body_read: complete without a callback */
    int discarding;              /* answered; the rest of the body is read and dropped */
    aigw_http_body_done_fn body_done;
    void *body_ud;

    aigw_http_conn_t *prev, *next;
};


enum { BODY_NONE = 0, BODY_WAIT, BODY_READ, BODY_STREAM, BODY_DONE };

/* ---- stats registry ---------------------------------------------------------------- */

static aigw_http_stats_t stats_slots[MAX_WORKERS];
static _Atomic size_t stats_used;

void aigw_http_stats_sum(aigw_http_stats_total_t *t)
{
    memset(t, 0, sizeof(*t));
    size_t n = atomic_load(&stats_used);
    for (size_t i = 0; i < n && i < MAX_WORKERS; i++) {
        aigw_http_stats_t *s = &stats_slots[i];
        t->accepted += atomic_load_explicit(&s->accepted, memory_order_relaxed);
        t->handled += atomic_load_explicit(&s->handled, memory_order_relaxed);
        t->total_requests += atomic_load_explicit(&s->total_requests, memory_order_relaxed);
        t->active += atomic_load_explicit(&s->active, memory_order_relaxed);
        t->reading += atomic_load_explicit(&s->reading, memory_order_relaxed);
        t->writing += atomic_load_explicit(&s->writing, memory_order_relaxed);
        t->waiting += atomic_load_explicit(&s->waiting, memory_order_relaxed);
        t->arena_bytes += atomic_load_explicit(&s->arena_bytes, memory_order_relaxed);
    }
    t->workers = n;
}

/* One writer per counter (its worker): a relaxed load and store, no locked instruction. */
#define STAT_ADD(w, f, v)                                                                      \
    atomic_store_explicit(&(w)->stats->f,                                                      \
                          atomic_load_explicit(&(w)->stats->f, memory_order_relaxed) + (v),    \
                          memory_order_relaxed)

/* Moves c to state s, keeping the reading/writing/waiting gauges in step. */
static void set_state(aigw_http_conn_t *c, conn_state_t s)
{
    if (c->state == s)
        return;
    switch (c->state) {
    case CONN_WAITING: STAT_ADD(c->w, waiting, -1); break;
    case CONN_READING: STAT_ADD(c->w, reading, -1); break;
    case CONN_HANDLING: STAT_ADD(c->w, writing, -1); break;
    default: break;
    }
    switch (s) {
    case CONN_WAITING: STAT_ADD(c->w, waiting, 1); break;
    case CONN_READING: STAT_ADD(c->w, reading, 1); break;
    case CONN_HANDLING: STAT_ADD(c->w, writing, 1); break;
    default: break;
    }
    c->state = s;
    c->state_since = uv_now(c->w->loop);
}

/* "HTTP/1.1 404 Not Found\r\n", from a table built once for 100..599. */
static struct status_line {
    unsigned char len;
    char text[64];
} status_lines[500];
static pthread_once_t status_once = PTHREAD_ONCE_INIT;

static void build_status_lines(void)
{
    for (int s = 100; s < 600; s++) {
        struct status_line *l = &status_lines[s - 100];
        int n = snprintf(l->text, sizeof(l->text), "HTTP/1.1 %d %s\r\n", s, aigw_http_reason(s));
        l->len = (unsigned char)(n > 0 && (size_t)n < sizeof(l->text) ? n : 0);
    }
}

static size_t put_status_line(char *buf, int status)
{
    if (status < 100 || status > 599)
        status = 500;
    const struct status_line *l = &status_lines[status - 100];
    memcpy(buf, l->text, l->len);
    return l->len;
}

/* ---- worker -------------------------------------------------------------------------- */

static uint64_t rid_next(aigw_http_worker_t *w)
{
    /* xorshift128+: request ids need to be unique, not secret. */
    uint64_t s1 = w->rid_s[0];
    const uint64_t s0 = w->rid_s[1];
    w->rid_s[0] = s0;
    s1 ^= s1 << 23;
    w->rid_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return w->rid_s[1] + s0;
}

static void put_hex64(char *o, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        unsigned byte = (unsigned)(v >> (i * 8)) & 0xff;
        o[2 * i] = hex[byte >> 4];
        o[2 * i + 1] = hex[byte & 15];
    }
}

static void make_request_id(aigw_http_worker_t *w, char out[33])
{
    put_hex64(out, rid_next(w));
    put_hex64(out + 16, rid_next(w));
    out[32] = '\0';
}

int aigw_http_worker_init(aigw_http_worker_t *w, uv_loop_t *loop, const char *name)
{
    pthread_once(&status_once, build_status_lines);
    memset(w, 0, sizeof(*w));
    w->loop = loop;
    w->name = name;
    aigw_arena_pool_init(&w->arena_pool, 8192, 256);
    w->buf_free = calloc(MAX_FREE_BUFS, sizeof(char *));
    w->tls_scratch = malloc(AIGW_HTTP_RBUF);
    size_t slot = atomic_fetch_add(&stats_used, 1);
    if (!w->buf_free || !w->tls_scratch || slot >= MAX_WORKERS) {
        free(w->buf_free);
        free(w->tls_scratch);
        return -1;
    }
    w->stats = &stats_slots[slot];
    if (RAND_bytes((unsigned char *)w->rid_s, sizeof(w->rid_s)) != 1) {
        w->rid_s[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)w;
        w->rid_s[1] = uv_hrtime() | 1;
    }
    if (!w->rid_s[0] && !w->rid_s[1])
        w->rid_s[1] = 1;
    return 0;
}

void aigw_http_worker_free(aigw_http_worker_t *w)
{
    for (size_t i = 0; i < w->n_buf_free; i++)
        free(w->buf_free[i]);
    free(w->buf_free);
    free(w->tls_scratch);
    aigw_arena_pool_free(&w->arena_pool);
    for (int k = 0; k < AIGW_SVC_COUNT; k++) {
        SSL_CTX_free(w->svc[k].ssl_ctx);
        w->svc[k].ssl_ctx = NULL;
    }
    w->buf_free = NULL;
    w->tls_scratch = NULL;
}

static char *buf_get(aigw_http_worker_t *w)
{
    if (w->n_buf_free)
        return w->buf_free[--w->n_buf_free];
    return malloc(AIGW_HTTP_RBUF);
}

static void buf_put(aigw_http_worker_t *w, char *b)
{
    if (!b)
        return;
    if (w->n_buf_free < MAX_FREE_BUFS)
        w->buf_free[w->n_buf_free++] = b;
    else
        free(b);
}

static void update_date(aigw_http_worker_t *w)
{
    time_t now = time(NULL);
    if (now == w->date_sec)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    w->date_len = strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    w->date_sec = now;
}

static void access_log(aigw_http_conn_t *c);

/* ---- closing --------------------------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h)
{
    aigw_http_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    aigw_http_worker_t *w = c->w;
    free(c);
    if (w->draining && w->n_conns == 0 && w->on_drained)
        w->on_drained(w);
}

static void conn_close(aigw_http_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    aigw_http_worker_t *w = c->w;
    if (c->in_request && c->abort_fn) {
        /* The handler still holds req: tell it to let go before the arena goes. */
        aigw_http_abort_fn fn = c->abort_fn;
        c->abort_fn = NULL;
        c->drain_fn = NULL;
        if (!c->req.status)
            c->req.status = 499;
        fn(&c->req, c->abort_ud);
        access_log(c);
    }
    set_state(c, CONN_CLOSED);
    STAT_ADD(w, active, -1);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    aigw_arena_reset(&c->req.arena);
    buf_put(w, c->rbuf);
    c->rbuf = NULL;
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void start_linger(aigw_http_conn_t *c);
static void resume_input(aigw_http_conn_t *c);

#define STREAM_HIGH_WATER ((size_t)256 * 1024)
#define STREAM_LOW_WATER ((size_t)64 * 1024)

static void on_write_done(uv_write_t *wr, int status)
{
    aigw_http_conn_t *c = aigw_sock_write_done(wr);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->last_activity = uv_now(c->w->loop);
    if (c->in_request && c->drain_fn && c->wq.bytes <= STREAM_LOW_WATER) {
        aigw_http_drain_fn fn = c->drain_fn;
        c->drain_fn = NULL;
        fn(&c->req, c->drain_ud);
        return;
    }
    if (c->wq.writes == 0 && c->close_after && !c->in_request)
        start_linger(c);
    else if (c->reading_stopped && !c->in_request && c->wq.bytes <= MAX_PENDING_WRITE / 2)
        resume_input(c);
}

static int sock_write(aigw_http_conn_t *c, const uv_buf_t *bufs, unsigned nbufs)
{
    return aigw_sock_write((uv_stream_t *)&c->tcp, &c->wq, bufs, nbufs, on_write_done, c);
}

/* Sends what OpenSSL has put in the write BIO. */
static int tls_flush(aigw_http_conn_t *c)
{
    return aigw_sock_tls_flush(c->ssl, (uv_stream_t *)&c->tcp, &c->wq, on_write_done, c);
}

/* Writes plaintext, through TLS when the connection has it. */
static int conn_write(aigw_http_conn_t *c, const uv_buf_t *bufs, unsigned nbufs)
{
    if (!c->ssl)
        return sock_write(c, bufs, nbufs);
    for (unsigned i = 0; i < nbufs; i++) {
        if (bufs[i].len == 0)
            continue;
        ERR_clear_error();
        int r = SSL_write(c->ssl, bufs[i].base, (int)bufs[i].len);
        if (r <= 0)
            return -1;
    }
    return tls_flush(c);
}

/* ---- timers -------------------------------------------------------------------------- */

static uint64_t deadline_of(const aigw_http_conn_t *c)
{
    if (c->wq.writes)
        return c->last_activity + SEND_TIMEOUT_MS;
    switch (c->state) {
    case CONN_WAITING: return c->state_since + KEEPALIVE_TIMEOUT_MS;
    case CONN_READING:
        return c->parser.headers_done ? c->last_activity + BODY_TIMEOUT_MS
                                      : c->state_since + HEADER_TIMEOUT_MS;
    case CONN_LINGERING: return c->state_since + LINGER_TIMEOUT_MS;
    case CONN_HANDLING:
        /* A body being taken: the client must keep sending; the handler bounds the rest. */
        if ((c->body_state == BODY_READ || c->body_state == BODY_STREAM) && !c->body_paused)
            return c->last_activity + BODY_TIMEOUT_MS;
        return UINT64_MAX;
    default: return UINT64_MAX;
    }
}

static void respond_error_and_close(aigw_http_conn_t *c, int status, const char *message);

static void on_timer(uv_timer_t *t)
{
    aigw_http_conn_t *c = t->data;
    if (c->closing)
        return;
    uint64_t now = uv_now(c->w->loop), dl = deadline_of(c);
    if (dl == UINT64_MAX)
        return;
    if (now < dl) {
        c->timer_due = dl;
        uv_timer_start(&c->timer, on_timer, dl - now, 0);
        return;
    }
    if (c->wq.writes || c->state == CONN_WAITING || c->state == CONN_LINGERING ||
        c->state == CONN_HANDLING) {
        conn_close(c);
        return;
    }
    /* A client too slow to send its request: 408, as nginx logs it. */
    respond_error_and_close(c, 408, NULL);
}

/* Deadlines mostly move later, so the timer is restarted only when the new one is earlier
 * than the armed one; a timer that fires early just re-arms for what is left. */
static void arm_timer(aigw_http_conn_t *c)
{
    uint64_t now = uv_now(c->w->loop), dl = deadline_of(c);
    if (dl == UINT64_MAX)
        return;   /* an armed timer fires early and finds nothing to do */
    if (uv_is_active((uv_handle_t *)&c->timer) && c->timer_due <= dl)
        return;
    c->timer_due = dl > now ? dl : now;
    uv_timer_start(&c->timer, on_timer, dl > now ? dl - now : 0, 0);
}

/* ---- responses ------------------------------------------------------------------------ */

static size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static void finish_request(aigw_http_conn_t *c);

static void access_log(aigw_http_conn_t *c);


/* Framing of a response body for build_head. */
enum { FRAME_NONE = -1, FRAME_CHUNKED = -2, FRAME_CLOSE = -3 };

/* Writes the status line and headers of req's response into its arena. clen >= 0 is a
 * Content-Length; FRAME_* otherwise. raw: the caller's headers carry Date and Server (a
 * proxied response); the server adds only framing, Connection and the request id. Sets
 * c->close_after when the connection cannot be kept. NULL when out of memory. */
static char *build_head(aigw_http_conn_t *c, aigw_http_req_t *req, int status,
                        const aigw_http_resp_header_t *h, size_t nh, int64_t clen, int raw,
                        size_t *outn)
{
    aigw_http_worker_t *w = c->w;
    const aigw_http_service_t *svc = &w->svc[c->kind];
    int keep = req->keep_alive && !c->close_after && !w->draining && !c->parser.upgrade &&
               !c->parser.err_status && clen != FRAME_CLOSE;
    if (!keep)
        c->close_after = 1;
    size_t cap = 256 + w->date_len;
    for (size_t i = 0; i < nh; i++)
        cap += h[i].name.n + h[i].value.n + 4;
    char *buf = aigw_arena_alloc(&req->arena, cap);
    if (!buf)
        return NULL;
    size_t n = put_status_line(buf, status);
    if (!raw) {
        update_date(w);
        n += put(buf + n, w->date, w->date_len);
    }
    for (size_t i = 0; i < nh; i++) {
        n += put(buf + n, h[i].name.p, h[i].name.n);
        n += PUT_LIT(buf + n, ": ");
        n += put(buf + n, h[i].value.p, h[i].value.n);
        n += PUT_LIT(buf + n, "\r\n");
    }
    if (clen >= 0) {
        n += PUT_LIT(buf + n, "Content-Length: ");
        n += aigw_u64_to_dec(buf + n, (unsigned long long)clen);
        n += PUT_LIT(buf + n, "\r\n");
    } else if (clen == FRAME_CHUNKED) {
        n += PUT_LIT(buf + n, "Transfer-Encoding: chunked\r\n");
    }
    if (!keep)
        n += PUT_LIT(buf + n, "Connection: close\r\n");
    else if (req->http_minor == 0)
        n += PUT_LIT(buf + n, "Connection: keep-alive\r\n");
    if (!raw && (svc->headers & AIGW_HDR_SERVER))
        n += PUT_LIT(buf + n, "Server: aigw/" AIGW_VERSION "\r\n");
    if (c->kind == AIGW_SVC_PROXY && (svc->headers & AIGW_HDR_REQUEST_ID)) {
        n += PUT_LIT(buf + n, "X-Kong-Request-Id: ");
        n += put(buf + n, req->request_id, 32);
        n += PUT_LIT(buf + n, "\r\n");
    }
    n += PUT_LIT(buf + n, "\r\n");
    *outn = n;
    return buf;
}

static int status_has_body(int status)
{
    return !(status == 204 || status == 304 || (status >= 100 && status < 200));
}

void aigw_http_respond(aigw_http_req_t *req, int status, const aigw_http_resp_header_t *h,
                       size_t nh, const char *body, size_t len)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing)
        return;
    req->status = status;
    int with_body = status_has_body(status);
    int head = req->method == HTTP_HEAD;
    size_t n;
    char *buf = build_head(c, req, status, h, nh, with_body ? (int64_t)len : FRAME_NONE, 0, &n);
    if (!buf) {
        conn_close(c);
        return;
    }
    uv_buf_t bufs[2] = { uv_buf_init(buf, (unsigned)n), uv_buf_init((char *)(uintptr_t)body, 0) };
    unsigned nb = 1;
    if (with_body && !head && len) {
        bufs[1].len = len;
        nb = 2;
        req->bytes_sent = len;
    }
    c->last_activity = uv_now(c->w->loop);
    if (conn_write(c, bufs, nb) != 0) {
        c->close_after = 1;
        c->parser.err_status = c->parser.err_status ? c->parser.err_status : 499;
    }
    finish_request(c);
}

/* ---- streaming responses ------------------------------------------------------------------ */

void aigw_http_on_abort(aigw_http_req_t *req, aigw_http_abort_fn fn, void *ud)
{
    aigw_http_conn_t *c = req->conn;
    c->abort_fn = fn;
    c->abort_ud = ud;
}

int aigw_http_stream_begin(aigw_http_req_t *req, int status, const aigw_http_resp_header_t *h,
                           size_t nh, int64_t content_length)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing || c->write_failed)
        return -1;
    req->status = status;
    int with_body = status_has_body(status) && req->method != HTTP_HEAD;
    int64_t frame;
    if (!status_has_body(status))
        frame = FRAME_NONE;
    else if (content_length >= 0)
        frame = content_length;
    else if (req->method == HTTP_HEAD)
        frame = FRAME_NONE;
    else
        frame = req->http_minor >= 1 ? FRAME_CHUNKED : FRAME_CLOSE;
    size_t n;
    char *buf = build_head(c, req, status, h, nh, frame, 1, &n);
    if (!buf) {
        c->write_failed = 1;
        return -1;
    }
    c->streaming = with_body ? 1 : 2;   /* 2: nothing may follow the head */
    c->chunked_out = with_body && frame == FRAME_CHUNKED;
    /* Held until the first body bytes, the end or a flush: one write for head and body. */
    c->held_head = buf;
    c->held_len = n;
    return 0;
}

int aigw_http_stream_flush(aigw_http_req_t *req)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing || c->write_failed)
        return -1;
    if (!c->held_head)
        return c->wq.bytes > STREAM_HIGH_WATER ? 1 : 0;
    uv_buf_t b = uv_buf_init(c->held_head, (unsigned)c->held_len);
    c->held_head = NULL;
    c->last_activity = uv_now(c->w->loop);
    if (conn_write(c, &b, 1) != 0) {
        c->write_failed = 1;
        return -1;
    }
    arm_timer(c);
    return c->wq.bytes > STREAM_HIGH_WATER ? 1 : 0;
}

int aigw_http_stream_write(aigw_http_req_t *req, const char *data, size_t len)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing || c->write_failed)
        return -1;
    if (c->streaming != 1 || len == 0)
        return aigw_http_stream_flush(req);
    char hdr[24];
    uv_buf_t bufs[4];
    unsigned nb = 0;
    if (c->held_head) {
        bufs[nb++] = uv_buf_init(c->held_head, (unsigned)c->held_len);
        c->held_head = NULL;
    }
    if (c->chunked_out) {
        static const char hex[] = "0123456789abcdef";
        char tmp[20];
        size_t t = 0;
        for (size_t v = len; v; v >>= 4)
            tmp[t++] = hex[v & 15];
        size_t k = 0;
        while (t)
            hdr[k++] = tmp[--t];
        hdr[k++] = '\r';
        hdr[k++] = '\n';
        bufs[nb++] = uv_buf_init(hdr, (unsigned)k);
    }
    bufs[nb++] = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    if (c->chunked_out)
        bufs[nb++] = uv_buf_init((char *)(uintptr_t)"\r\n", 2);
    req->bytes_sent += len;
    c->last_activity = uv_now(c->w->loop);
    if (conn_write(c, bufs, nb) != 0) {
        c->write_failed = 1;
        return -1;
    }
    arm_timer(c);
    return c->wq.bytes > STREAM_HIGH_WATER ? 1 : 0;
}

void aigw_http_stream_on_drain(aigw_http_req_t *req, aigw_http_drain_fn fn, void *ud)
{
    aigw_http_conn_t *c = req->conn;
    c->drain_fn = fn;
    c->drain_ud = ud;
}

static void stream_reset(aigw_http_conn_t *c)
{
    c->held_head = NULL;
    c->tunnel_fn = NULL;
    c->streaming = 0;
    c->chunked_out = 0;
    c->abort_fn = NULL;
    c->drain_fn = NULL;
}

void aigw_http_stream_end(aigw_http_req_t *req)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing)
        return;
    if (c->write_failed) {
        aigw_http_stream_abort(req);
        return;
    }
    uv_buf_t b[2];
    unsigned nb = 0;
    if (c->held_head) {
        b[nb++] = uv_buf_init(c->held_head, (unsigned)c->held_len);
        c->held_head = NULL;
    }
    if (c->chunked_out)
        b[nb++] = uv_buf_init((char *)(uintptr_t)"0\r\n\r\n", 5);
    if (nb && conn_write(c, b, nb) != 0)
        c->close_after = 1;
    stream_reset(c);
    finish_request(c);
}

void aigw_http_stream_abort(aigw_http_req_t *req)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing)
        return;
    stream_reset(c);
    c->close_after = 1;
    /* The response is cut short: no last chunk, no linger; the client sees the close. */
    c->in_request = 0;
    access_log(c);
    conn_close(c);
}

static void process_input(aigw_http_conn_t *c);
static void tls_pump(aigw_http_conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

int aigw_http_tunnel_begin(aigw_http_req_t *req, const aigw_http_resp_header_t *h, size_t nh,
                           aigw_http_tunnel_fn fn, void *ud)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing || c->write_failed)
        return -1;
    req->status = 101;
    size_t n, cap = 128;
    for (size_t i = 0; i < nh; i++)
        cap += h[i].name.n + h[i].value.n + 4;
    char *buf = aigw_arena_alloc(&req->arena, cap);
    if (!buf)
        return -1;
    n = put_status_line(buf, 101);
    for (size_t i = 0; i < nh; i++) {
        n += put(buf + n, h[i].name.p, h[i].name.n);
        n += PUT_LIT(buf + n, ": ");
        n += put(buf + n, h[i].value.p, h[i].value.n);
        n += PUT_LIT(buf + n, "\r\n");
    }
    n += PUT_LIT(buf + n, "\r\n");
    c->close_after = 1;           /* the connection ends with the tunnel */
    c->tunnel_fn = fn;
    c->tunnel_ud = ud;
    uv_buf_t b = uv_buf_init(buf, (unsigned)n);
    c->last_activity = uv_now(c->w->loop);
    if (conn_write(c, &b, 1) != 0) {
        c->write_failed = 1;
        return -1;
    }
    /* What the client sent after its request head already belongs to the tunnel. */
    if (c->rbuf && c->rpos < c->rlen)
        process_input(c);
    if (c->reading_stopped && !c->closing) {
        c->reading_stopped = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            return -1;
    }
    if (c->ssl && !c->closing)
        tls_pump(c);
    return 0;
}

int aigw_http_tunnel_write(aigw_http_req_t *req, const char *p, size_t n)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing || c->write_failed)
        return -1;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    c->last_activity = uv_now(c->w->loop);
    if (conn_write(c, &b, 1) != 0) {
        c->write_failed = 1;
        return -1;
    }
    arm_timer(c);
    return c->wq.bytes > STREAM_HIGH_WATER ? 1 : 0;
}

void aigw_http_tunnel_pause(aigw_http_req_t *req, int pause)
{
    aigw_http_conn_t *c = req->conn;
    if (c->closing)
        return;
    if (pause && !c->reading_stopped) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading_stopped = 1;
    } else if (!pause && c->reading_stopped) {
        c->reading_stopped = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            conn_close(c);
        else if (c->ssl)
            tls_pump(c);
    }
}

uint64_t aigw_http_req_conn_serial(const aigw_http_req_t *req)
{
    return req->conn ? req->conn->serial : 0;
}

uint64_t aigw_http_req_conn_requests(const aigw_http_req_t *req)
{
    return req->conn ? req->conn->requests : 0;
}

void aigw_http_req_local_addr(const aigw_http_req_t *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    aigw_strlcpy(out, "-", cap);
    if (!req->conn || uv_tcp_getsockname(&req->conn->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, out, cap);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, out, cap);
}

int aigw_http_req_local_port(const aigw_http_req_t *req)
{
    return req->conn ? req->conn->local_port : 0;
}

int aigw_http_req_is_tls(const aigw_http_req_t *req)
{
    return req->conn ? req->conn->is_tls : 0;
}

void aigw_http_req_tls_info(const aigw_http_req_t *req, const char **version,
                            const char **cipher)
{
    *version = *cipher = NULL;
    if (!req->conn || !req->conn->ssl)
        return;
    *version = SSL_get_version(req->conn->ssl);
    *cipher = SSL_get_cipher_name(req->conn->ssl);
}

const char *aigw_http_req_sni(const aigw_http_req_t *req)
{
    if (!req->conn || !req->conn->ssl)
        return NULL;
    return SSL_get_servername(req->conn->ssl, TLSEXT_NAMETYPE_host_name);
}

static void respond_error_h(aigw_http_req_t *req, int status, const char *message,
                            int use_content_type, const aigw_http_resp_header_t *extra,
                            size_t n_extra);

static void respond_error(aigw_http_req_t *req, int status, const char *message,
                          int use_content_type)
{
    respond_error_h(req, status, message, use_content_type, NULL, 0);
}

void aigw_http_respond_error_with(aigw_http_req_t *req, int status, const char *message,
                                  const aigw_http_resp_header_t *h, size_t nh)
{
    respond_error_h(req, status, message, 0, h, nh);
}

static void respond_error_h(aigw_http_req_t *req, int status, const char *message,
                            int use_content_type, const aigw_http_resp_header_t *extra,
                            size_t n_extra)
{
    if (!message)
        message = aigw_http_status_message(status);
    aigw_errpage_format_t f = aigw_errpage_negotiate(req, use_content_type);
    size_t cap = AIGW_ERRPAGE_MAX(strlen(message));
    char *body = aigw_arena_alloc(&req->arena, cap);
    if (!body) {
        conn_close(req->conn);
        return;
    }
    size_t n = aigw_errpage_render(f, message, req->request_id, body, cap);
    char lat[24];
    size_t ln = aigw_u64_to_dec(lat, (uv_hrtime() - req->start_ns) / 1000000);
    aigw_http_resp_header_t h[16] = {
        { AIGW_STR("Content-Type"), aigw_errpage_content_type(f) },
    };
    size_t nh = 1;
    for (size_t i = 0; i < n_extra && nh < 15; i++)
        h[nh++] = extra[i];
    /* Kong adds X-Kong-Response-Latency to the responses it generates itself. */
    if (req->conn && req->conn->kind == AIGW_SVC_PROXY &&
        (aigw_http_req_headers(req) & AIGW_HDR_RESPONSE_LATENCY))
        h[nh++] = (aigw_http_resp_header_t){ AIGW_STR("X-Kong-Response-Latency"), { lat, ln } };
    aigw_http_respond(req, status == 494 ? 400 : status, h, nh, body, n);
}

void aigw_http_respond_error(aigw_http_req_t *req, int status, const char *message)
{
    respond_error(req, status, message, 0);   /* kong.response.error */
}

void aigw_http_respond_upstream_error(aigw_http_req_t *req, int status, const char *message)
{
    respond_error(req, status, message, 2);   /* error_handlers.lua, error_default_type */
}

void aigw_http_respond_upstream_error_with(aigw_http_req_t *req, int status,
                                           const char *message,
                                           const aigw_http_resp_header_t *h, size_t nh)
{
    respond_error_h(req, status, message, 2, h, nh);
}

unsigned aigw_http_req_headers(const aigw_http_req_t *req)
{
    return req->conn ? req->conn->w->svc[req->conn->kind].headers : 0;
}

const char *aigw_http_req_client_ip(const aigw_http_req_t *req)
{
    return req->conn ? req->conn->peer_ip : "-";
}

/* ---- request lifecycle ------------------------------------------------------------------ */

static void begin_request(aigw_http_conn_t *c)
{
    aigw_http_req_t *r = &c->req;
    aigw_arena_t a = r->arena;
    memset(r, 0, sizeof(*r));
    r->arena = a;
    r->conn = c;
    aigw_http_parser_begin(&c->parser, r);
    c->continue_sent = 0;
    c->body_state = BODY_NONE;
    c->body_paused = 0;
    c->body_done = NULL;
}

static void process_input(aigw_http_conn_t *c);
static void tls_pump(aigw_http_conn_t *c);

static void start_linger(aigw_http_conn_t *c)
{
    /* Half-close, then drain what the client still sends so it sees our answer rather than a
     * reset; close on its EOF or after LINGER_TIMEOUT_MS. */
    set_state(c, CONN_LINGERING);
    if (c->ssl) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        tls_flush(c);
    }
    if (c->wq.writes)
        return;   /* on_write_done comes back here */
    int fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        shutdown(fd, SHUT_WR);
    if (c->reading_stopped) {
        conn_close(c);
        return;
    }
    arm_timer(c);
}

static void finish_request(aigw_http_conn_t *c)
{
    if (!c->in_request && c->state != CONN_READING)
        return;
    c->in_request = 0;
    c->abort_fn = NULL;
    c->drain_fn = NULL;
    access_log(c);
    int body_left = c->body_state != BODY_NONE && c->body_state != BODY_DONE;
    c->body_state = BODY_NONE;
    c->body_done = NULL;
    c->body_paused = 0;
    aigw_arena_reset(&c->req.arena);
    atomic_store_explicit(&c->w->stats->arena_bytes,
                          c->w->arena_pool.nfree * c->w->arena_pool.chunk_size,
                          memory_order_relaxed);
    if (body_left) {
        /* Answered before the body was taken (an early error, a plugin exit, an upstream
         * that did not wait): read the rest and drop it, as nginx discards it, so the
         * connection can carry the next request; the parser is still inside this message
         * (llhttp may be on the stack), so the next one begins when the body ends. */
        c->parser.body_mode = AIGW_BODY_DISCARD;
        if (!c->close_after)
            c->discarding = 1;
    } else {
        begin_request(c);
    }
    if (c->close_after) {
        c->rlen = c->rpos = 0;
        if (c->wq.writes == 0)
            start_linger(c);
        else
            set_state(c, CONN_LINGERING);
        return;
    }
    set_state(c, CONN_WAITING);
    if (!c->dispatching)
        resume_input(c);   /* an asynchronous answer: go on with what we already hold */
}

static void respond_error_and_close(aigw_http_conn_t *c, int status, const char *message)
{
    aigw_http_req_t *r = &c->req;
    if (!r->request_id[0])
        make_request_id(c->w, r->request_id);
    if (r->start_ns == 0)
        r->start_ns = uv_hrtime();
    c->close_after = 1;
    c->in_request = 1;
    if (c->state != CONN_HANDLING)
        set_state(c, CONN_HANDLING);
    STAT_ADD(c->w, total_requests, 1);
    respond_error(r, status, message, 1);   /* error_handlers.lua */
}

static void dispatch(aigw_http_conn_t *c)
{
    if (c->plain_on_tls) {
        /* nginx's answer to plain HTTP on a TLS port (497), as a Kong-shaped 400. */
        respond_error_and_close(c, 400, "The plain HTTP request was sent to HTTPS port");
        return;
    }
    aigw_http_service_t *svc = &c->w->svc[c->kind];
    set_state(c, CONN_HANDLING);
    c->in_request = 1;
    c->requests++;
    STAT_ADD(c->w, total_requests, 1);
    c->dispatching = 1;
    svc->on_request(&c->req, svc->ud);
    c->dispatching = 0;
}

static void send_continue(aigw_http_conn_t *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)cont, sizeof(cont) - 1);
    c->continue_sent = 1;
    if (conn_write(c, &b, 1) != 0)
        conn_close(c);
}

/* ---- request bodies after a head dispatch ------------------------------------------------ */

static int body_flowing(const aigw_http_conn_t *c)
{
    return c->in_request && !c->closing && !c->body_paused &&
           (c->body_state == BODY_READ || c->body_state == BODY_STREAM);
}

int aigw_http_body_pending(const aigw_http_req_t *req)
{
    const aigw_http_conn_t *c = req->conn;
    return c && c->body_state != BODY_NONE && c->body_state != BODY_DONE;
}

/* The body broke the limits or the framing while the handler waited for it: the handler
 * lets go (its abort callback), then the client gets the parser's answer if nothing of a
 * response was sent yet. */
static void body_fail(aigw_http_conn_t *c)
{
    int status = c->parser.err_status;
    c->body_state = BODY_NONE;
    c->body_done = NULL;
    if (c->abort_fn) {
        aigw_http_abort_fn fn = c->abort_fn;
        c->abort_fn = NULL;
        c->drain_fn = NULL;
        fn(&c->req, c->abort_ud);
    }
    if (status && !c->streaming && !c->held_head && !c->write_failed) {
        c->close_after = 1;
        int d = c->dispatching;
        c->dispatching = 1;
        respond_error(&c->req, status, NULL, 1);   /* error_handlers.lua */
        c->dispatching = d;
        return;
    }
    c->req.status = c->req.status ? c->req.status : 400;
    c->in_request = 0;
    access_log(c);
    conn_close(c);
}

/* The body is complete: tell the handler (unless aigw_http_body_read is on the stack). */
static void body_complete(aigw_http_conn_t *c)
{
    c->body_state = BODY_DONE;
    aigw_http_body_done_fn fn = c->body_done;
    c->body_done = NULL;
    if (c->body_sync || !fn)
        return;
    int d = c->dispatching;
    c->dispatching = 1;
    fn(&c->req, c->body_ud);
    c->dispatching = d;
}

/* Feeds what is buffered to the body being taken. */
static void feed_body(aigw_http_conn_t *c)
{
    while (body_flowing(c) && c->rpos < c->rlen) {
        size_t used = 0;
        int d = c->dispatching;
        c->dispatching = 1;   /* a sink that answers must not re-enter the input loop */
        aigw_http_parse_result_t r =
            aigw_http_parser_feed(&c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
        c->dispatching = d;
        if (c->closing)
            return;
        c->rpos += used;
        if (r == AIGW_HTTP_PARSE_AGAIN)
            break;
        if (r == AIGW_HTTP_PARSE_ERROR) {
            if (c->in_request && (c->body_state == BODY_READ || c->body_state == BODY_STREAM))
                body_fail(c);
            return;
        }
        if (c->body_state == BODY_READ || c->body_state == BODY_STREAM)
            body_complete(c);
        break;
    }
    if (body_flowing(c) && c->parser.want_continue && !c->continue_sent)
        send_continue(c);
}

/* Picks up the body after the handler chose how to take it, or let it flow again. */
static void body_kick(aigw_http_conn_t *c)
{
    if (c->closing)
        return;
    if (c->reading_stopped && c->wq.bytes <= MAX_PENDING_WRITE / 2) {
        c->reading_stopped = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
    }
    if (c->dispatching)
        return;   /* the input loop on the stack goes on with it */
    process_input(c);
    if (c->ssl && !c->closing && c->tls_ready && body_flowing(c))
        tls_pump(c);
}

int aigw_http_body_read(aigw_http_req_t *req, aigw_http_body_done_fn done, void *ud)
{
    aigw_http_conn_t *c = req->conn;
    if (c->body_state != BODY_WAIT)
        return c->body_state == BODY_DONE || c->body_state == BODY_NONE ? 1 : 0;
    c->parser.body_mode = AIGW_BODY_BUFFER;
    if (aigw_http_parser_buffer_body(&c->parser) != 0)
        c->parser.err_status = 500;
    c->body_state = BODY_READ;
    c->body_done = done;
    c->body_ud = ud;
    /* What is buffered already may hold the whole body (the usual case): no callback. */
    c->body_sync = 1;
    if (!c->parser.err_status)
        feed_body(c);
    c->body_sync = 0;
    if (c->body_state == BODY_DONE) {
        c->body_done = NULL;
        return 1;
    }
    body_kick(c);
    return 0;
}

void aigw_http_body_stream(aigw_http_req_t *req, aigw_http_body_data_fn data,
                           aigw_http_body_done_fn done, void *ud)
{
    aigw_http_conn_t *c = req->conn;
    if (c->body_state != BODY_WAIT)
        return;
    c->parser.body_mode = AIGW_BODY_SINK;
    c->parser.sink = data;
    c->parser.sink_ud = ud;
    c->body_state = BODY_STREAM;
    c->body_done = done;
    c->body_ud = ud;
    body_kick(c);
}

void aigw_http_body_pause(aigw_http_req_t *req, int pause)
{
    aigw_http_conn_t *c = req->conn;
    if (c->body_paused == !!pause)
        return;
    c->body_paused = !!pause;
    if (!pause)
        body_kick(c);
    if (!c->closing)
        arm_timer(c);
}

static void process_input(aigw_http_conn_t *c)
{
    if (c->tunnel_fn) {
        /* A switched protocol: the bytes are not HTTP; hand them over as they are. */
        if (c->rpos < c->rlen && !c->closing) {
            size_t n = c->rlen - c->rpos;
            const char *p = c->rbuf + c->rpos;
            c->rpos = c->rlen = 0;
            c->tunnel_fn(c->tunnel_ud, p, n);
        } else {
            c->rpos = c->rlen = 0;
        }
        return;
    }
    if (body_flowing(c))
        feed_body(c);
    while (!c->closing && !c->in_request && !c->close_after && c->rpos < c->rlen) {
        if (c->discarding) {
            size_t used = 0;
            aigw_http_parse_result_t r =
                aigw_http_parser_feed(&c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
            c->rpos += used;
            if (r == AIGW_HTTP_PARSE_ERROR || c->parser.discarded > MAX_DISCARD) {
                conn_close(c);
                return;
            }
            if (r == AIGW_HTTP_PARSE_AGAIN)
                break;
            c->discarding = 0;
            begin_request(c);
            continue;
        }
        if (c->state == CONN_WAITING) {
            set_state(c, CONN_READING);
            c->req.start_ns = uv_hrtime();
            make_request_id(c->w, c->req.request_id);
        }
        size_t used = 0;
        aigw_http_parse_result_t r =
            aigw_http_parser_feed(&c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
        c->rpos += used;
        if (r == AIGW_HTTP_PARSE_AGAIN) {
            if (c->parser.want_continue && !c->continue_sent)
                send_continue(c);
            break;
        }
        if (r == AIGW_HTTP_PARSE_ERROR) {
            c->rpos = c->rlen;
            if (c->parser.err_status)
                respond_error_and_close(c, c->parser.err_status, NULL);
            else
                conn_close(c);
            return;
        }
        if (r == AIGW_HTTP_PARSE_HEAD) {
            /* A body follows: the handler decides how to take it (aigw_http_body_*). */
            c->body_state = BODY_WAIT;
            dispatch(c);
            if (body_flowing(c))
                feed_body(c);
            continue;
        }
        dispatch(c);
    }
    if (c->closing)
        return;
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
        if (!c->in_request && c->rbuf) {
            buf_put(c->w, c->rbuf);
            c->rbuf = NULL;
        }
    } else if (c->rpos > 0 && c->rlen == AIGW_HTTP_RBUF) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    /* Back-pressure: a full buffer behind an unanswered request, or a slow reader. */
    int stop = (c->rbuf && c->rlen == AIGW_HTTP_RBUF) || c->wq.bytes > MAX_PENDING_WRITE;
    if (stop && !c->reading_stopped) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading_stopped = 1;
    }
    if (!c->closing && c->state != CONN_LINGERING)
        arm_timer(c);
}

/* ---- reading --------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Picks up input held back while a request was being answered or writes were backed up. */
static void resume_input(aigw_http_conn_t *c)
{
    if (c->closing || c->in_request)
        return;
    if (c->reading_stopped) {
        if (c->wq.bytes > MAX_PENDING_WRITE / 2)
            return;
        c->reading_stopped = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
    }
    process_input(c);
    if (c->ssl && !c->closing && !c->in_request && c->tls_ready)
        tls_pump(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    aigw_http_conn_t *c = h->data;
    if (c->ssl || c->state == CONN_LINGERING) {
        *buf = uv_buf_init(c->w->tls_scratch, AIGW_HTTP_RBUF);
        return;
    }
    if (!c->rbuf) {
        c->rbuf = buf_get(c->w);
        c->rlen = c->rpos = 0;
        if (!c->rbuf) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(AIGW_HTTP_RBUF - c->rlen));
}

static void tls_pump(aigw_http_conn_t *c)
{
    if (!c->tls_ready) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (tls_flush(c) != 0) {
            conn_close(c);
            return;
        }
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                const char *why = ERR_reason_error_string(ERR_peek_last_error());
                AIGW_LOG(AIGW_LOG_INFO, "TLS handshake with %s failed: %s", c->peer_ip,
                         why ? why : "peer closed");
                /* Let the alert OpenSSL wrote reach the client, then close. */
                SSL_free(c->ssl);
                c->ssl = NULL;
                if (c->wq.writes) {
                    c->close_after = 1;
                    set_state(c, CONN_LINGERING);
                    arm_timer(c);
                } else {
                    conn_close(c);
                }
            }
            return;
        }
        c->tls_ready = 1;
    }
    for (;;) {
        if (c->closing || (c->in_request && !c->tunnel_fn && !body_flowing(c)) ||
            (c->close_after && !c->tunnel_fn))
            return;
        if (!c->rbuf) {
            c->rbuf = buf_get(c->w);
            c->rlen = c->rpos = 0;
            if (!c->rbuf) {
                conn_close(c);
                return;
            }
        }
        if (c->rlen == AIGW_HTTP_RBUF)
            return;
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(AIGW_HTTP_RBUF - c->rlen));
        if (r > 0) {
            c->rlen += (size_t)r;
            process_input(c);
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (tls_flush(c) != 0) {
            conn_close(c);
            return;
        }
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (c->rbuf && c->rlen == 0 && !c->in_request) {
                buf_put(c->w, c->rbuf);
                c->rbuf = NULL;
            }
            return;
        }
        /* close_notify or a TLS error: the peer is gone. */
        if (c->state == CONN_READING && c->parser.started && !c->parser.err_status)
            AIGW_LOG(AIGW_LOG_INFO, "client %s closed the TLS connection mid-request",
                     c->peer_ip);
        conn_close(c);
        return;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    aigw_http_conn_t *c = s->data;
    (void)buf;
    if (c->closing)
        return;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error. A half-sent request gets no answer; pipelined requests already
         * complete were answered. */
        conn_close(c);
        return;
    }
    c->last_activity = uv_now(c->w->loop);
    if (c->state == CONN_LINGERING)
        return;   /* discarded */
    if (c->ssl && !c->tls_ready && !c->plain_on_tls && c->rlen == 0 &&
        BIO_ctrl_pending(SSL_get_rbio(c->ssl)) == 0 && buf->base[0] >= 'A' &&
        buf->base[0] <= 'Z') {
        /* A TLS record starts with 0x16; a request line with a method: plain HTTP. Parse
         * it as such so the client gets a readable answer. */
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->plain_on_tls = 1;
        c->rbuf = buf_get(c->w);
        if (!c->rbuf) {
            conn_close(c);
            return;
        }
        c->rpos = 0;
        c->rlen = (size_t)nread < AIGW_HTTP_RBUF ? (size_t)nread : AIGW_HTTP_RBUF;
        memcpy(c->rbuf, buf->base, c->rlen);
        process_input(c);
        return;
    }
    if (c->ssl) {
        BIO_write(SSL_get_rbio(c->ssl), buf->base, (int)nread);
        tls_pump(c);
        return;
    }
    c->rlen += (size_t)nread;
    process_input(c);
}

/* ---- accepting ------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status)
{
    aigw_http_listener_t *l = server->data;
    aigw_http_worker_t *w = l->w;
    if (status < 0 || w->draining)
        return;
    aigw_http_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->w = w;
    c->kind = l->kind;
    c->local_port = l->conf.port;
    c->serial = ++w->conn_serial;
    c->is_tls = l->conf.ssl;
    uv_tcp_init(w->loop, &c->tcp);
    uv_timer_init(w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->state = CONN_CLOSED;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
        return;
    }
    STAT_ADD(w, accepted, 1);
    STAT_ADD(w, handled, 1);
    STAT_ADD(w, active, 1);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    uv_tcp_nodelay(&c->tcp, 1);

    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer_ip, sizeof(c->peer_ip));
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_ip, sizeof(c->peer_ip));
    } else {
        memcpy(c->peer_ip, "-", 2);
    }

    const aigw_http_service_t *svc = &w->svc[c->kind];
    aigw_http_parser_init(&c->parser, &svc->limits);
    aigw_arena_init(&c->req.arena, &w->arena_pool);
    begin_request(c);
    set_state(c, CONN_WAITING);
    c->last_activity = uv_now(w->loop);

    if (l->conf.ssl) {
        if (!svc->ssl_ctx) {
            conn_close(c);
            return;
        }
        c->ssl = SSL_new(svc->ssl_ctx);
        BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
        if (!c->ssl || !rb || !wb) {
            BIO_free(rb);
            BIO_free(wb);
            conn_close(c);
            return;
        }
        BIO_set_mem_eof_return(rb, -1);
        SSL_set_bio(c->ssl, rb, wb);
        SSL_set_accept_state(c->ssl);
    }
    /* A new connection has the header timeout from its first moment, as nginx. */
    c->state_since = uv_now(w->loop);
    c->timer_due = c->state_since + HEADER_TIMEOUT_MS;
    uv_timer_start(&c->timer, on_timer, HEADER_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_listener_closed(uv_handle_t *h)
{
    free(h->data);
}

int aigw_http_listen(aigw_http_worker_t *w, const aigw_listen_t *lc, aigw_svc_kind_t kind,
                     char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    const char *addr = strcmp(lc->addr, "*") == 0 ? "0.0.0.0" : lc->addr;
    int v6 = strchr(addr, ':') != NULL;
    int r = v6 ? uv_ip6_addr(addr, lc->port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(addr, lc->port, (struct sockaddr_in *)&ss);
    const char *lb = v6 ? "[" : "", *rb = v6 ? "]" : "";
    if (r != 0) {
        snprintf(err, errlen, "cannot listen on %s%s%s:%d: invalid address", lb, addr, rb,
                 lc->port);
        return -1;
    }
    aigw_http_listener_t *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->w = w;
    l->conf = *lc;
    l->kind = kind;
    r = uv_tcp_init_ex(w->loop, &l->tcp, v6 ? AF_INET6 : AF_INET);
    if (r != 0) {
        free(l);
        snprintf(err, errlen, "cannot listen on %s%s%s:%d: %s", lb, addr, rb, lc->port,
                 uv_strerror(r));
        return -1;
    }
    l->tcp.data = l;
    int fd = -1, one = 1;
    uv_fileno((uv_handle_t *)&l->tcp, &fd);
    /* Every worker has its own accept queue on the port (libuv 1.44 has no flag for it). */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (lc->deferred)
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
    r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, v6 ? UV_TCP_IPV6ONLY : 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, lc->backlog > 0 ? lc->backlog : 511,
                      on_connection);
    if (r != 0) {
        snprintf(err, errlen, "cannot listen on %s%s%s:%d: %s", lb, addr, rb, lc->port,
                 r == UV_EADDRINUSE ? "address already in use" : uv_strerror(r));
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return -1;
    }
    l->next = w->listeners;
    w->listeners = l;
    return 0;
}

static int same_listen(const aigw_listen_t *a, const aigw_listen_t *b)
{
    return a->port == b->port && strcmp(a->addr, b->addr) == 0 && a->ssl == b->ssl &&
           a->backlog == b->backlog && a->deferred == b->deferred;
}

int aigw_http_has_listener(const aigw_http_worker_t *w, const aigw_listen_t *lc,
                           aigw_svc_kind_t kind)
{
    for (const aigw_http_listener_t *l = w->listeners; l; l = l->next)
        if (l->kind == kind && same_listen(&l->conf, lc))
            return 1;
    return 0;
}

void aigw_http_close_listeners(aigw_http_worker_t *w,
                               int (*keep)(const aigw_listen_t *l, aigw_svc_kind_t k, void *ud),
                               void *ud)
{
    aigw_http_listener_t **pp = &w->listeners;
    while (*pp) {
        aigw_http_listener_t *l = *pp;
        if (keep && keep(&l->conf, l->kind, ud)) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
}

void aigw_http_worker_drain(aigw_http_worker_t *w)
{
    w->draining = 1;
    aigw_http_close_listeners(w, NULL, NULL);
    aigw_http_conn_t *c = w->conns;
    while (c) {
        aigw_http_conn_t *next = c->next;
        /* Busy ones answer with Connection: close (respond sees draining) and go then. */
        if (c->state == CONN_WAITING && c->wq.writes == 0)
            conn_close(c);
        c = next;
    }
    if (w->n_conns == 0 && w->on_drained)
        w->on_drained(w);
}

void aigw_http_worker_close_all(aigw_http_worker_t *w)
{
    w->draining = 1;
    aigw_http_close_listeners(w, NULL, NULL);
    while (w->conns)
        conn_close(w->conns);
}

/* ---- access log ------------------------------------------------------------------------- */

/* Query argument names whose values never reach a log line. */
static const aigw_str_t secret_args[] = {
    AIGW_STR("apikey"),   AIGW_STR("api_key"),       AIGW_STR("api-key"),
    AIGW_STR("key"),      AIGW_STR("access_token"),  AIGW_STR("refresh_token"),
    AIGW_STR("id_token"), AIGW_STR("token"),         AIGW_STR("jwt"),
    AIGW_STR("password"), AIGW_STR("passwd"),        AIGW_STR("secret"),
    AIGW_STR("client_secret"), AIGW_STR("code"),     AIGW_STR("signature"),
    AIGW_STR("sig"),      AIGW_STR("auth"),          AIGW_STR("authorization"),
};

static int is_secret_arg(aigw_str_t name)
{
    for (size_t i = 0; i < sizeof(secret_args) / sizeof(secret_args[0]); i++)
        if (aigw_str_ieq(name, secret_args[i]))
            return 1;
    return 0;
}

/* Appends s, escaping '"', '\\' and non-printable bytes as nginx does (\xHH). */
static size_t put_escaped(char *o, size_t cap, aigw_str_t s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < s.n && n + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            o[n++] = '\\';
            o[n++] = 'x';
            o[n++] = hex[ch >> 4];
            o[n++] = hex[ch & 15];
        } else {
            o[n++] = (char)ch;
        }
    }
    return n;
}

/* The request target with secret-looking query values replaced by "******". */
static size_t put_target(char *o, size_t cap, aigw_str_t path, aigw_str_t query)
{
    size_t n = put_escaped(o, cap, path);
    if (!query.n || n + 2 >= cap)
        return n;
    o[n++] = '?';
    const char *p = query.p, *end = query.p + query.n;
    while (p < end && n + 8 < cap) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        if (eq && is_secret_arg((aigw_str_t){ p, (size_t)(eq - p) })) {
            n += put_escaped(o + n, cap - n, (aigw_str_t){ p, (size_t)(eq - p) + 1 });
            n += put_escaped(o + n, cap - n, AIGW_STR("******"));
        } else {
            n += put_escaped(o + n, cap - n, (aigw_str_t){ p, (size_t)(seg_end - p) });
        }
        if (amp && n + 1 < cap)
            o[n++] = '&';
        p = amp ? amp + 1 : end;
    }
    return n;
}

static void access_log(aigw_http_conn_t *c)
{
    const aigw_http_service_t *svc = &c->w->svc[c->kind];
    if (!aigw_log_enabled(svc->access_log))
        return;
    aigw_http_req_t *r = &c->req;
    if (!r->start_ns)
        return;
    /* nginx's combined format plus Kong's request id, one write per line. Never an
     * Authorization, Cookie or secret query value. */
    char line[4096];
    size_t cap = sizeof(line) - 2, n = 0;
    n += put_escaped(line + n, cap - n, aigw_str_c(c->peer_ip));
    n += put(line + n, " - - [", 6);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    n += strftime(line + n, cap - n, "%d/%b/%Y:%H:%M:%S %z", &tm);
    n += put(line + n, "] \"", 3);
    if (r->method_name.n) {
        n += put_escaped(line + n, cap - n, r->method_name);
        line[n++] = ' ';
        n += put_target(line + n, cap - n - 600, r->path, r->query);
        n += put(line + n, " HTTP/1.", 8);
        line[n++] = (char)('0' + (r->http_minor & 1));
    } else {
        line[n++] = '-';
    }
    n += put(line + n, "\" ", 2);
    n += aigw_u64_to_dec(line + n, (unsigned)(r->status ? r->status : 0));
    line[n++] = ' ';
    n += aigw_u64_to_dec(line + n, r->bytes_sent);
    const aigw_http_header_t *ref = aigw_http_req_header(r, AIGW_STR("referer"));
    const aigw_http_header_t *ua = aigw_http_req_header(r, AIGW_STR("user-agent"));
    n += put(line + n, " \"", 2);
    if (ref) {
        const char *q = memchr(ref->value.p, '?', ref->value.n);
        aigw_str_t rp = q ? (aigw_str_t){ ref->value.p, (size_t)(q - ref->value.p) } : ref->value;
        aigw_str_t rq = q ? (aigw_str_t){ q + 1, ref->value.n - rp.n - 1 } : AIGW_STR_NULL;
        n += put_target(line + n, cap - n - 400, rp, rq);
    } else {
        line[n++] = '-';
    }
    n += put(line + n, "\" \"", 3);
    if (ua)
        n += put_escaped(line + n, cap - n - 100, (aigw_str_t){ ua->value.p,
                                                                  ua->value.n > 256 ? 256 : ua->value.n });
    else
        line[n++] = '-';
    n += put(line + n, "\" kong_request_id: \"", 20);
    n += put(line + n, r->request_id, strnlen(r->request_id, 32));
    n += put(line + n, "\"\n", 2);
    aigw_log_access(svc->access_log, line, n);
}
