/* aigwd/proxy/upstream.c: see upstream.h.
 *
 * A connection (upconn_t) is either idle in its pool key's list, or carries one exchange
 * (aigw_upex_t). Both libuv handles of a connection live in the connection, which is freed
 * after both close callbacks; requests libuv still holds (connect, writes) point at the
 * connection, never at the exchange, so an exchange can be freed the moment it is cancelled.
 * Callbacks into the caller happen from libuv callbacks only; `busy` marks the stretches
 * where the exchange is on the stack, so a cancel from inside a callback is deferred to the
 * end of that stretch. */
#include <errno.h>
#include <stdio.h>
#include <llhttp.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "proxy/certs.h"
#include "http/sockio.h"
#include "proxy/upstream.h"

#define MAX_HEAD_BYTES ((size_t)64 * 1024)   /* Kong: proxy_buffer_size 160k; nginx 4k/8k */
#define MAX_HEADERS 256
#define READ_BUF ((size_t)64 * 1024)
#define BODY_HIGH_WATER ((size_t)256 * 1024)   /* request body queued towards the upstream */
#define BODY_LOW_WATER ((size_t)64 * 1024)

typedef struct poolkey poolkey_t;
typedef struct upconn upconn_t;

struct poolkey {
    poolkey_t *next;          /* bucket chain */
    upconn_t *idle;           /* most recently used first */
    size_t n_idle;
    uint32_t hash;
    char key[];
};

struct upconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    aigw_uppool_t *pool;
    poolkey_t *pk;
    aigw_upex_t *x;           /* the exchange it carries, NULL when idle */
    SSL *ssl;
    int tls_done;
    int handles_open;
    int closing;
    int reading;              /* uv_read_start is in effect */
    int deferred_err;         /* an aigw_uperr_t to report from the timer (0: none) */
    int requests;
    aigw_sockq_t wq;          /* writes queued on the socket */
    upconn_t *idle_prev, *idle_next;
};


struct aigw_uppool {
    uv_loop_t *loop;
    aigw_uppool_opts_t o;
    poolkey_t **buckets;
    size_t n_buckets, n_keys;
    size_t n_idle;
    size_t live;              /* connections not yet freed */
    char *rbuf;               /* one read buffer for every connection of the worker */
    int rbuf_busy;
};

enum { X_CONNECTING, X_HANDSHAKE, X_SENDING, X_WAITING, X_TUNNEL };

struct aigw_upex {
    aigw_uppool_t *pool;
    upconn_t *c;
    aigw_upex_params_t prm;
    aigw_upex_cbs_t cbs;
    void *ud;
    int state;
    int reused;
    int got_bytes;
    int busy;
    int cancelled;
    int finished;             /* on_done / on_error delivered */
    int paused;
    int tunnel_full;
    int body_ready_sent;      /* stream_body: on_body_ready delivered */
    int body_ended;           /* stream_body: aigw_upex_body_end called */
    int body_full;            /* stream_body: body_write said 1 */
    int crlf_pending;         /* bytes of the CRLF after chunk data still to check */
    const char *feed_end;
    int head_done;
    int msg_done;
    int keep;                 /* the response allows another request on the connection */
    int status;
    uint64_t first_byte_ns;
    llhttp_t llh;
    /* head accumulation: all bytes in hb, headers addressed by offsets until complete */
    char *hb;
    size_t hb_len, hb_cap;
    size_t *hoff;             /* name_off, name_len, value_off, value_len per header */
    size_t n_hdr;
    int in_value;
    aigw_http_header_t *hdrs;
};

const char *aigw_uperr_text(aigw_uperr_t e)
{
    switch (e) {
    case AIGW_UPERR_CONNECT: return "connect() failed";
    case AIGW_UPERR_CONNECT_TIMEOUT: return "upstream timed out while connecting";
    case AIGW_UPERR_TLS: return "TLS handshake with the upstream failed";
    case AIGW_UPERR_WRITE: return "upstream closed while the request was being sent";
    case AIGW_UPERR_WRITE_TIMEOUT: return "upstream timed out while the request was being sent";
    case AIGW_UPERR_READ_TIMEOUT: return "upstream timed out while reading the response";
    case AIGW_UPERR_CLOSED: return "upstream prematurely closed the connection";
    case AIGW_UPERR_INVALID: return "upstream sent an invalid response";
    }
    return "upstream error";
}

/* ---- pool ------------------------------------------------------------------------------- */

aigw_uppool_t *aigw_uppool_new(uv_loop_t *loop, const aigw_uppool_opts_t *o)
{
    aigw_uppool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->loop = loop;
    p->o = *o;
    p->n_buckets = 64;
    p->buckets = calloc(p->n_buckets, sizeof(*p->buckets));
    p->rbuf = malloc(READ_BUF);
    if (!p->buckets || !p->rbuf) {
        free(p->buckets);
        free(p->rbuf);
        free(p);
        return NULL;
    }
    return p;
}

void aigw_uppool_set_opts(aigw_uppool_t *p, const aigw_uppool_opts_t *o)
{
    p->o = *o;
}

size_t aigw_uppool_idle(const aigw_uppool_t *p)
{
    return p->n_idle;
}

static uint32_t hash_str(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static poolkey_t *poolkey_get(aigw_uppool_t *p, const char *key, size_t n)
{
    uint32_t h = hash_str(key, n);
    for (poolkey_t *k = p->buckets[h & (p->n_buckets - 1)]; k; k = k->next)
        if (k->hash == h && strcmp(k->key, key) == 0)
            return k;
    if (p->n_keys >= p->n_buckets) {
        size_t nb = p->n_buckets * 2;
        poolkey_t **b = calloc(nb, sizeof(*b));
        if (b) {
            for (size_t i = 0; i < p->n_buckets; i++) {
                poolkey_t *k = p->buckets[i];
                while (k) {
                    poolkey_t *next = k->next;
                    k->next = b[k->hash & (nb - 1)];
                    b[k->hash & (nb - 1)] = k;
                    k = next;
                }
            }
            free(p->buckets);
            p->buckets = b;
            p->n_buckets = nb;
        }
    }
    poolkey_t *k = calloc(1, sizeof(*k) + n + 1);
    if (!k)
        return NULL;
    memcpy(k->key, key, n);
    k->hash = h;
    k->next = p->buckets[h & (p->n_buckets - 1)];
    p->buckets[h & (p->n_buckets - 1)] = k;
    p->n_keys++;
    return k;
}

static void idle_unlink(upconn_t *c)
{
    poolkey_t *k = c->pk;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        k->idle = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    k->n_idle--;
    c->pool->n_idle--;
}

/* ---- connections ------------------------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
    upconn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    c->pool->live--;
    free(c);
}

static void conn_close(upconn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (!c->x && c->pk && (c->idle_prev || c->pk->idle == c))
        idle_unlink(c);
    c->x = NULL;
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

void aigw_uppool_close_idle(aigw_uppool_t *p)
{
    for (size_t i = 0; i < p->n_buckets; i++)
        for (poolkey_t *k = p->buckets[i]; k; k = k->next)
            while (k->idle)
                conn_close(k->idle);
}

void aigw_uppool_free(aigw_uppool_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_buckets; i++) {
        poolkey_t *k = p->buckets[i];
        while (k) {
            poolkey_t *next = k->next;
            free(k);
            k = next;
        }
    }
    free(p->buckets);
    free(p->rbuf);
    free(p);
}

/* ---- exchanges: ending -------------------------------------------------------------------- */

static void ex_free(aigw_upex_t *x)
{
    free(x->hb);
    free(x->hoff);
    free(x->hdrs);
    free(x);
}

/* Ends x with an error: closes its connection, tells the caller (unless cancelled), frees x
 * when it is not on the stack. */
static void ex_fail(aigw_upex_t *x, aigw_uperr_t e)
{
    if (x->finished)
        return;
    x->finished = 1;
    if (x->c) {
        x->c->x = NULL;
        conn_close(x->c);
        x->c = NULL;
    }
    if (!x->cancelled)
        x->cbs.on_error(x->ud, e, x->reused, x->got_bytes);
    x->cancelled = 1;
    if (!x->busy)
        ex_free(x);
}

static void idle_timer_cb(uv_timer_t *t);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* The response is complete: the connection goes back to the pool when it may. */
static void ex_done(aigw_upex_t *x, int reusable)
{
    if (x->finished)
        return;
    x->finished = 1;
    upconn_t *c = x->c;
    x->c = NULL;
    aigw_uppool_t *p = x->pool;
    /* A response that came before the whole body was sent leaves the connection unusable. */
    if (x->prm.stream_body && (!x->body_ended || x->state == X_SENDING))
        reusable = 0;
    if (c) {
        c->x = NULL;
        c->requests++;
        poolkey_t *k = c->pk;
        if (reusable && !c->closing && p->o.pool_size > 0 && k &&
            k->n_idle < (size_t)p->o.pool_size &&
            (p->o.max_requests == 0 || c->requests < p->o.max_requests) &&
            c->wq.writes == 0) {
            c->idle_next = k->idle;
            c->idle_prev = NULL;
            if (k->idle)
                k->idle->idle_prev = c;
            k->idle = c;
            k->n_idle++;
            p->n_idle++;
            if (p->o.idle_timeout_ms > 0)
                uv_timer_start(&c->timer, idle_timer_cb, (uint64_t)p->o.idle_timeout_ms, 0);
            else
                uv_timer_stop(&c->timer);
            /* Keep reading: a close or stray bytes from the server retire it at once. */
            if (!c->reading) {
                if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
                    conn_close(c);
                else
                    c->reading = 1;
            }
        } else {
            conn_close(c);
        }
    }
    if (!x->cancelled)
        x->cbs.on_done(x->ud);
    x->cancelled = 1;
    if (!x->busy)
        ex_free(x);
}

void aigw_upex_cancel(aigw_upex_t *x)
{
    if (!x || x->cancelled)
        return;
    x->cancelled = 1;
    if (!x->finished) {
        x->finished = 1;
        if (x->c) {
            x->c->x = NULL;
            conn_close(x->c);
            x->c = NULL;
        }
    }
    if (!x->busy)
        ex_free(x);
}

uint64_t aigw_upex_first_byte_ns(const aigw_upex_t *x)
{
    return x ? x->first_byte_ns : 0;
}

/* ---- timers ------------------------------------------------------------------------------ */

static void idle_timer_cb(uv_timer_t *t)
{
    upconn_t *c = t->data;
    if (!c->x)
        conn_close(c);
}

static void ex_timer_cb(uv_timer_t *t)
{
    upconn_t *c = t->data;
    aigw_upex_t *x = c->x;
    if (!x)
        return;
    if (c->deferred_err) {
        ex_fail(x, (aigw_uperr_t)c->deferred_err);
        return;
    }
    aigw_uperr_t e = x->state == X_CONNECTING || x->state == X_HANDSHAKE
                         ? AIGW_UPERR_CONNECT_TIMEOUT
                     : x->state == X_SENDING ? AIGW_UPERR_WRITE_TIMEOUT
                                             : AIGW_UPERR_READ_TIMEOUT;
    ex_fail(x, e);
}

static void arm(upconn_t *c, int ms)
{
    uv_timer_start(&c->timer, ex_timer_cb, ms > 0 ? (uint64_t)ms : 60000, 0);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void after_sent(aigw_upex_t *x);

static void on_write_done(uv_write_t *w, int status)
{
    upconn_t *c = aigw_sock_write_done(w);
    if (c->closing || !c->x)
        return;
    if (status < 0) {
        ex_fail(c->x, AIGW_UPERR_WRITE);
        return;
    }
    if (c->x->state == X_TUNNEL) {
        aigw_upex_t *x = c->x;
        if (c->wq.writes == 0 && x->tunnel_full && x->cbs.on_tunnel_drain) {
            x->tunnel_full = 0;
            x->busy++;
            x->cbs.on_tunnel_drain(x->ud);
            x->busy--;
            if (x->cancelled && !x->busy)
                ex_free(x);
        }
        return;
    }
    aigw_upex_t *x = c->x;
    if (x->state == X_SENDING && x->body_full && c->wq.bytes <= BODY_LOW_WATER &&
        x->cbs.on_body_drain) {
        x->body_full = 0;
        x->busy++;
        x->cbs.on_body_drain(x->ud);
        x->busy--;
        if (x->cancelled) {
            if (!x->busy)
                ex_free(x);
            return;
        }
        if (c->closing || c->x != x)
            return;
    }
    if (c->wq.writes == 0 && x->state == X_SENDING)
        after_sent(x);
    else if (x->state == X_SENDING)
        arm(c, x->prm.write_timeout);
}

static int sock_write(upconn_t *c, const uv_buf_t *bufs, unsigned nbufs)
{
    return aigw_sock_write((uv_stream_t *)&c->tcp, &c->wq, bufs, nbufs, on_write_done, c);
}

static int tls_flush(upconn_t *c)
{
    return aigw_sock_tls_flush(c->ssl, (uv_stream_t *)&c->tcp, &c->wq, on_write_done, c);
}

/* Writes the request and arms the right timer; no callback runs. 0, or -1 when the
 * connection refused the bytes. */
static int send_bytes(aigw_upex_t *x)
{
    upconn_t *c = x->c;
    x->state = X_SENDING;
    int r = 0;
    if (c->ssl) {
        for (unsigned i = 0; i < x->prm.nbufs && r == 0; i++) {
            if (x->prm.bufs[i].len == 0)
                continue;
            ERR_clear_error();
            if (SSL_write(c->ssl, x->prm.bufs[i].base, (int)x->prm.bufs[i].len) <= 0)
                r = -1;
        }
        if (r == 0)
            r = tls_flush(c);
    } else {
        r = sock_write(c, x->prm.bufs, x->prm.nbufs);
    }
    if (r != 0)
        return -1;
    if (c->wq.writes == 0)
        after_sent(x);
    else
        arm(c, x->prm.write_timeout);
    return 0;
}

static void send_request(aigw_upex_t *x)
{
    if (send_bytes(x) != 0)
        ex_fail(x, AIGW_UPERR_WRITE);
}

static void after_sent(aigw_upex_t *x)
{
    if (x->msg_done)
        return;
    if (x->prm.stream_body && !x->body_ended) {
        /* Everything so far is out; the client's next body bytes are awaited (its own
         * timeout bounds that), so no timer here. */
        uv_timer_stop(&x->c->timer);
        if (!x->body_ready_sent) {
            x->body_ready_sent = 1;
            x->busy++;
            if (x->cbs.on_body_ready)
                x->cbs.on_body_ready(x->ud);
            x->busy--;
            if (x->cancelled && !x->busy)
                ex_free(x);
        }
        return;
    }
    x->state = X_WAITING;
    arm(x->c, x->prm.read_timeout);
}

int aigw_upex_body_write(aigw_upex_t *x, const char *p, size_t n)
{
    if (!x || x->cancelled || x->finished || !x->c || x->body_ended)
        return -1;
    if (x->msg_done || x->state != X_SENDING || n == 0)
        return 0;
    upconn_t *c = x->c;
    char hdr[24];
    uv_buf_t b[3];
    unsigned nb = 0;
    if (x->prm.body_chunked) {
        int k = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
        b[nb++] = uv_buf_init(hdr, (unsigned)k);
    }
    b[nb++] = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    if (x->prm.body_chunked)
        b[nb++] = uv_buf_init((char *)(uintptr_t)"\r\n", 2);
    int r = 0;
    if (c->ssl) {
        for (unsigned i = 0; i < nb && r == 0; i++) {
            ERR_clear_error();
            if (SSL_write(c->ssl, b[i].base, (int)b[i].len) <= 0)
                r = -1;
        }
        if (r == 0)
            r = tls_flush(c);
    } else {
        r = sock_write(c, b, nb);
    }
    if (r != 0) {
        c->deferred_err = AIGW_UPERR_WRITE;
        uv_timer_start(&c->timer, ex_timer_cb, 0, 0);
        return -1;
    }
    if (c->wq.writes)
        arm(c, x->prm.write_timeout);
    if (c->wq.bytes > BODY_HIGH_WATER) {
        x->body_full = 1;
        return 1;
    }
    return 0;
}

int aigw_upex_body_end(aigw_upex_t *x)
{
    if (!x || x->cancelled || x->finished || !x->c || x->body_ended)
        return -1;
    x->body_ended = 1;
    if (x->msg_done || x->state != X_SENDING)
        return 0;
    upconn_t *c = x->c;
    if (x->prm.body_chunked) {
        int r;
        if (c->ssl) {
            ERR_clear_error();
            r = SSL_write(c->ssl, "0\r\n\r\n", 5) <= 0 ? -1 : tls_flush(c);
        } else {
            uv_buf_t b = uv_buf_init((char *)(uintptr_t)"0\r\n\r\n", 5);
            r = sock_write(c, &b, 1);
        }
        if (r != 0) {
            c->deferred_err = AIGW_UPERR_WRITE;
            uv_timer_start(&c->timer, ex_timer_cb, 0, 0);
            return -1;
        }
    }
    if (c->wq.writes == 0)
        after_sent(x);
    else
        arm(c, x->prm.write_timeout);
    return 0;
}

/* ---- response parsing ------------------------------------------------------------------ */

static int hb_add(aigw_upex_t *x, const char *at, size_t n)
{
    if (x->hb_len + n > MAX_HEAD_BYTES)
        return -1;
    if (x->hb_len + n > x->hb_cap) {
        size_t cap = x->hb_cap ? x->hb_cap * 2 : 2048;
        while (cap < x->hb_len + n)
            cap *= 2;
        char *nb = realloc(x->hb, cap);
        if (!nb)
            return -1;
        x->hb = nb;
        x->hb_cap = cap;
    }
    memcpy(x->hb + x->hb_len, at, n);
    x->hb_len += n;
    return 0;
}

static int on_header_field(llhttp_t *l, const char *at, size_t n)
{
    aigw_upex_t *x = l->data;
    if (x->in_value || x->n_hdr == 0) {
        if (x->n_hdr >= MAX_HEADERS)
            return -1;
        if (!x->hoff) {
            x->hoff = malloc(sizeof(size_t) * 4 * MAX_HEADERS);
            if (!x->hoff)
                return -1;
        }
        size_t *o = &x->hoff[4 * x->n_hdr++];
        o[0] = x->hb_len;
        o[1] = o[2] = o[3] = 0;
        x->in_value = 0;
    }
    x->hoff[4 * (x->n_hdr - 1) + 1] += n;
    return hb_add(x, at, n);
}

static int on_header_value(llhttp_t *l, const char *at, size_t n)
{
    aigw_upex_t *x = l->data;
    if (x->n_hdr == 0)
        return -1;
    size_t *o = &x->hoff[4 * (x->n_hdr - 1)];
    if (!x->in_value) {
        x->in_value = 1;
        o[2] = x->hb_len;
    }
    o[3] += n;
    return hb_add(x, at, n);
}

static int on_status(llhttp_t *l, const char *at, size_t n)
{
    aigw_upex_t *x = l->data;
    return hb_add(x, at, n) == 0 ? 0 : -1;   /* counted against the head limit */
}

static int on_message_begin(llhttp_t *l)
{
    aigw_upex_t *x = l->data;
    x->hb_len = 0;
    x->n_hdr = 0;
    x->in_value = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *l)
{
    aigw_upex_t *x = l->data;
    int status = l->status_code;
    if (status >= 100 && status < 200 && status != 101)
        return 0;   /* 100 Continue and friends: skipped, the real head follows */
    if (status == 101 && !x->prm.upgrade)
        return -1;  /* a switch nobody asked for */
    x->status = status;
    free(x->hdrs);
    x->hdrs = calloc(x->n_hdr ? x->n_hdr : 1, sizeof(*x->hdrs));
    if (!x->hdrs)
        return -1;
    for (size_t i = 0; i < x->n_hdr; i++) {
        const size_t *o = &x->hoff[4 * i];
        aigw_str_t v = aigw_str_trim((aigw_str_t){ x->hb + o[2], o[3] });
        x->hdrs[i].name = (aigw_str_t){ x->hb + o[0], o[1] };
        x->hdrs[i].value = v;
    }
    int no_body = x->prm.head_request || status == 204 || status == 304 || status == 101;
    int64_t clen = -1;
    if (no_body)
        clen = 0;
    else if ((l->flags & F_CONTENT_LENGTH) && !(l->flags & F_CHUNKED))
        clen = (int64_t)l->content_length;
    x->head_done = 1;
    if (x->cancelled)
        return -1;
    if (x->cbs.on_head(x->ud, status, x->hdrs, x->n_hdr, clen) != 0 || x->cancelled)
        return -1;
    return no_body ? 1 : 0;
}

static int on_body(llhttp_t *l, const char *at, size_t n)
{
    aigw_upex_t *x = l->data;
    if (x->cancelled)
        return -1;
    if ((l->flags & F_CHUNKED) && l->content_length == 0) {
        /* llhttp 8 skips the two bytes after chunk data unchecked: check them here (see
         * http/parse.c), the ones beyond this buffer at the next feed */
        const char *q = at + n;
        size_t avail = x->feed_end > q ? (size_t)(x->feed_end - q) : 0;
        for (size_t i = 0; i < 2 && i < avail; i++)
            if (q[i] != "\r\n"[i])
                return -1;
        x->crlf_pending = avail >= 2 ? 0 : 2 - (int)avail;
    }
    int r = x->cbs.on_body(x->ud, at, n);
    if (r < 0 || x->cancelled)
        return -1;
    if (r == 1)
        x->paused = 1;
    return 0;
}

static int on_message_complete(llhttp_t *l)
{
    aigw_upex_t *x = l->data;
    if (!x->head_done)
        return 0;   /* the end of a skipped 1xx */
    if (x->status == 101)
        return 0;   /* llhttp stops with HPE_PAUSED_UPGRADE: the tunnel starts */
    x->msg_done = 1;
    x->keep = llhttp_should_keep_alive(l);
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Feeds response bytes. 0 to go on, -1 when x ended (done or failed). */
static int feed(aigw_upex_t *x, const char *data, size_t n)
{
    if (x->state == X_TUNNEL) {
        x->cbs.on_tunnel(x->ud, data, n);
        return x->cancelled ? -1 : 0;
    }
    if (!x->got_bytes) {
        x->got_bytes = 1;
        x->first_byte_ns = uv_hrtime();
    }
    if (x->crlf_pending && n) {
        const char *want = x->crlf_pending == 2 ? "\r\n" : "\n";
        size_t k = (size_t)x->crlf_pending < n ? (size_t)x->crlf_pending : n;
        if (memcmp(data, want, k) != 0) {
            ex_fail(x, AIGW_UPERR_INVALID);
            return -1;
        }
        x->crlf_pending -= (int)k;
    }
    x->feed_end = data + n;
    llhttp_errno_t e = llhttp_execute(&x->llh, data, n);
    if (x->cancelled)
        return -1;
    if (e == HPE_PAUSED_UPGRADE && x->head_done && x->status == 101) {
        /* The switch happened: the rest is the other protocol's, both ways. */
        x->state = X_TUNNEL;
        arm(x->c, x->prm.read_timeout);
        const char *pos = llhttp_get_error_pos(&x->llh);
        if (pos && pos < data + n)
            x->cbs.on_tunnel(x->ud, pos, (size_t)(data + n - pos));
        return x->cancelled ? -1 : 0;
    }
    if (e == HPE_PAUSED && x->msg_done) {
        /* Anything after the response on a connection we did not ask for more: not reusable. */
        const char *pos = llhttp_get_error_pos(&x->llh);
        int rest = pos && pos + 1 < data + n;
        ex_done(x, !rest && x->keep);
        return -1;
    }
    if (e != HPE_OK) {
        ex_fail(x, AIGW_UPERR_INVALID);
        return -1;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    upconn_t *c = h->data;
    *buf = uv_buf_init(c->pool->rbuf, READ_BUF);
}

static void handshake(aigw_upex_t *x);

/* Decrypts what is buffered and feeds it, until OpenSSL wants more or x pauses or ends. */
static void tls_pump(aigw_upex_t *x)
{
    upconn_t *c = x->c;
    char buf[16384];
    while (x->c && !x->paused && !x->cancelled) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, buf, sizeof(buf));
        if (r > 0) {
            if (feed(x, buf, (size_t)r) != 0)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (tls_flush(c) != 0) {
            ex_fail(x, AIGW_UPERR_CLOSED);
            return;
        }
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return;
        /* close_notify or an error: the end of a close-delimited body, or a failure. */
        llhttp_finish(&x->llh);
        if (x->msg_done) {
            ex_done(x, 0);
            return;
        }
        ex_fail(x, AIGW_UPERR_CLOSED);
        return;
    }
}

static void on_eof(aigw_upex_t *x)
{
    if (x->state == X_TUNNEL) {
        ex_done(x, 0);
        return;
    }
    llhttp_errno_t e = x->head_done ? llhttp_finish(&x->llh) : HPE_INTERNAL;
    if (x->head_done && (e == HPE_OK || (e == HPE_PAUSED && x->msg_done))) {
        /* A close-delimited body ended (on_message_complete ran inside finish). */
        ex_done(x, 0);
        return;
    }
    ex_fail(x, x->state == X_SENDING ? AIGW_UPERR_WRITE : AIGW_UPERR_CLOSED);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    upconn_t *c = s->data;
    (void)buf;
    if (c->closing || nread == 0)
        return;
    aigw_upex_t *x = c->x;
    if (!x) {
        /* Idle in the pool: the server closed it or sent something unasked. */
        conn_close(c);
        return;
    }
    x->busy++;
    if (nread < 0) {
        if (c->ssl && x->state != X_HANDSHAKE && nread == UV_EOF)
            tls_pump(x);   /* deliver what is decrypted, then the close */
        if (!x->cancelled)
            on_eof(x);
    } else if (c->ssl) {
        BIO_write(SSL_get_rbio(c->ssl), c->pool->rbuf, (int)nread);
        if (!c->tls_done)
            handshake(x);
        else
            tls_pump(x);
    } else {
        if (x->state == X_WAITING || x->state == X_TUNNEL)
            arm(c, x->prm.read_timeout);
        feed(x, c->pool->rbuf, (size_t)nread);
    }
    if (!x->cancelled && x->c && x->state == X_WAITING && c->ssl)
        arm(c, x->prm.read_timeout);
    if (!x->cancelled && x->c && x->head_done && !x->finished && x->cbs.on_idle &&
        x->state != X_TUNNEL)
        x->cbs.on_idle(x->ud);
    if (!x->cancelled && x->paused && x->c) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    x->busy--;
    if (x->cancelled && !x->busy)
        ex_free(x);
}

int aigw_upex_tunnel_write(aigw_upex_t *x, const char *p, size_t n)
{
    if (!x || x->cancelled || x->finished || !x->c || x->state != X_TUNNEL)
        return -1;
    upconn_t *c = x->c;
    int r = 0;
    if (c->ssl) {
        ERR_clear_error();
        if (SSL_write(c->ssl, p, (int)n) <= 0)
            r = -1;
        else
            r = tls_flush(c);
    } else {
        uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
        r = sock_write(c, &b, 1);
    }
    if (r != 0) {
        c->deferred_err = AIGW_UPERR_WRITE;
        uv_timer_start(&c->timer, ex_timer_cb, 0, 0);
        return -1;
    }
    arm(c, x->prm.read_timeout);   /* activity either way keeps an idle tunnel open */
    if (c->wq.bytes > (size_t)256 * 1024) {
        x->tunnel_full = 1;
        return 1;
    }
    return 0;
}

void aigw_upex_tunnel_pause(aigw_upex_t *x, int pause)
{
    if (!x || x->cancelled || !x->c || x->state != X_TUNNEL)
        return;
    upconn_t *c = x->c;
    if (pause && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (!pause && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        if (c->ssl) {
            x->busy++;
            tls_pump(x);
            x->busy--;
            if (x->cancelled && !x->busy)
                ex_free(x);
        }
    }
}

void aigw_upex_resume(aigw_upex_t *x)
{
    if (!x || x->cancelled || !x->paused || !x->c)
        return;
    x->paused = 0;
    upconn_t *c = x->c;
    x->busy++;
    if (c->ssl)
        tls_pump(x);
    if (!x->cancelled && x->c && !x->paused && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            ex_fail(x, AIGW_UPERR_CLOSED);
        else
            c->reading = 1;
    }
    x->busy--;
    if (x->cancelled && !x->busy)
        ex_free(x);
}

/* ---- connecting ------------------------------------------------------------------------- */


static void handshake(aigw_upex_t *x)
{
    upconn_t *c = x->c;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (tls_flush(c) != 0) {
        ex_fail(x, AIGW_UPERR_TLS);
        return;
    }
    if (r == 1) {
        c->tls_done = 1;
        send_request(x);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return;
    char why[256] = "";
    if (SSL_get_verify_result(c->ssl) != X509_V_OK)
        aigw_certs_verify_error(c->ssl, why, sizeof(why));
    else
        aigw_strlcpy(why, ERR_reason_error_string(ERR_peek_last_error())
                              ? ERR_reason_error_string(ERR_peek_last_error())
                              : "connection closed", sizeof(why));
    AIGW_LOG(AIGW_LOG_ERR, "TLS handshake with upstream %s failed: %s",
             x->prm.sni ? x->prm.sni : "(no SNI)", why);
    ex_fail(x, AIGW_UPERR_TLS);
}

static void start_tls(aigw_upex_t *x)
{
    upconn_t *c = x->c;
    x->state = X_HANDSHAKE;
    c->ssl = SSL_new(x->prm.ssl_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    if (!c->ssl || !rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        ex_fail(x, AIGW_UPERR_TLS);
        return;
    }
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(c->ssl, rb, wb);
    SSL_set_connect_state(c->ssl);
    if (aigw_certs_client_prepare(c->ssl, x->prm.sni, x->prm.tls_verify) != 0) {
        ex_fail(x, AIGW_UPERR_TLS);
        return;
    }
    handshake(x);
}

static void on_connect(uv_connect_t *req, int status)
{
    upconn_t *c = req->data;
    if (c->closing || !c->x)
        return;
    aigw_upex_t *x = c->x;
    x->busy++;
    if (status < 0) {
        ex_fail(x, AIGW_UPERR_CONNECT);
    } else {
        uv_tcp_nodelay(&c->tcp, 1);
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            ex_fail(x, AIGW_UPERR_CONNECT);
        } else {
            c->reading = 1;
            if (x->prm.ssl_ctx)
                start_tls(x);
            else
                send_request(x);
        }
    }
    x->busy--;
    if (x->cancelled && !x->busy)
        ex_free(x);
}

/* The pool key: "ip|port", plus the TLS parameters for a TLS connection. cap >= 128. */
static void make_key(const aigw_upex_params_t *prm, char *out, size_t cap, size_t *n)
{
    int v6 = prm->addr.ss_family == AF_INET6;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&prm->addr;
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&prm->addr;
    char ip[64];
    int port = ntohs(v6 ? a6->sin6_port : a4->sin_port);
    aigw_ip_to_str(ip, v6 ? AF_INET6 : AF_INET,
                   v6 ? (const void *)&a6->sin6_addr : (const void *)&a4->sin_addr);
    if (prm->ssl_ctx) {
        int k = snprintf(out, cap, "%s|%d|%s|%d|%p", ip, port, prm->sni ? prm->sni : "",
                         prm->tls_verify, (void *)prm->ssl_ctx);
        *n = k > 0 && (size_t)k < cap ? (size_t)k : cap - 1;
        return;
    }
    size_t il = strlen(ip);   /* the hot case without printf */
    memcpy(out, ip, il);
    out[il] = '|';
    *n = il + 1 + aigw_u64_to_dec(out + il + 1, (unsigned long long)port);
    out[*n] = '\0';
}

aigw_upex_t *aigw_upex_start(aigw_uppool_t *p, const aigw_upex_params_t *prm,
                             const aigw_upex_cbs_t *cbs, void *ud)
{
    aigw_upex_t *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->pool = p;
    x->prm = *prm;
    x->cbs = *cbs;
    x->ud = ud;
    llhttp_init(&x->llh, HTTP_RESPONSE, &settings);
    x->llh.data = x;

    char key[512];
    size_t kn;
    make_key(prm, key, sizeof(key), &kn);
    poolkey_t *k = poolkey_get(p, key, kn);
    if (!k) {
        free(x);
        return NULL;
    }
    if (k->idle && !prm->stream_body) {
        upconn_t *c = k->idle;
        idle_unlink(c);
        c->x = x;
        x->c = c;
        x->reused = 1;
        /* Write now (no callback can run from here); a failure is reported on the next
         * loop turn, as callbacks never run inside start. */
        if (send_bytes(x) != 0) {
            c->deferred_err = AIGW_UPERR_WRITE;
            uv_timer_start(&c->timer, ex_timer_cb, 0, 0);
        }
        return x;
    }
    upconn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        free(x);
        return NULL;
    }
    c->pool = p;
    c->pk = k;
    uv_tcp_init(p->loop, &c->tcp);
    uv_timer_init(p->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->connect.data = c;
    c->handles_open = 2;
    p->live++;
    c->x = x;
    x->c = c;
    x->state = X_CONNECTING;
    int r = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&prm->addr,
                           on_connect);
    if (r != 0) {
        /* Report on the next turn, like any other failure. */
        c->deferred_err = AIGW_UPERR_CONNECT;
        uv_timer_start(&c->timer, ex_timer_cb, 0, 0);
        return x;
    }
    arm(c, prm->connect_timeout);
    return x;
}
