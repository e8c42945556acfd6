/* aigwd/proxy/healthcheck.c: see healthcheck.h.
 *
 * Threads: `mu` guards what other threads hand over (the pending set, the stop flag, whether
 * the thread runs); everything else below belongs to the health-check thread. The only
 * cross-thread libuv call is uv_async_send(&wake), made under `mu` while `running` is set, so
 * it never races with the handle's close.
 *
 * Ownership: each checker (one per upstream with active checks) holds a reference to its set,
 * so the balancers and targets its probes point at stay alive until the checker is freed, in
 * the last close callback of its timers and probes. A probe owns its socket, its uv_poll_t and
 * uv_timer_t (embedded; freed in the last close callback), its SSL and its pending DNS lookup.
 * Probes use non-blocking sockets polled by the loop, so TLS goes through OpenSSL directly on
 * the descriptor. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/log.h"
#include "proxy/dns.h"
#include "proxy/healthcheck.h"

#define LINE_MAX_LEN 512

enum { P_RESOLVING = 0, P_CONNECTING, P_HANDSHAKE, P_SENDING, P_RECEIVING, P_DONE };

typedef struct checker checker_t;

typedef struct probe {
    struct probe *prev, *next;           /* the checker's probes */
    checker_t *c;
    int kind;                            /* 0: healthy round, 1: unhealthy round */
    uint32_t target;
    int state;
    aigw_dns_lookup_t *dl;
    int fd;
    int port;
    uv_poll_t poll;
    uv_timer_t timer;
    int poll_init;
    int closes;                          /* close callbacks still to come */
    SSL *ssl;
    char *req;
    size_t req_len, sent;
    char line[LINE_MAX_LEN];
    size_t line_len;
} probe_t;

struct checker {
    checker_t *next;
    aigw_balancers_t *set;               /* a reference */
    const aigw_balancer_t *b;
    const aigw_balancer_active_t *ac;
    uv_timer_t timer[2];
    int round[2];                        /* a round of that kind is running */
    uint32_t *queue[2];
    size_t qlen[2], qpos[2];
    int inflight[2];
    probe_t *probes;
    int closing;
    int closes;                          /* close callbacks still to come */
};

/* shared with other threads, under mu */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static aigw_balancers_t *pending;
static int pending_set;
static int stopping;
static int running;
static pthread_t thread;
static uv_loop_t loop;
static uv_async_t wake;

/* the health-check thread's own */
static checker_t *checkers;
static aigw_dns_t *dns;
static SSL_CTX *ctx_verify, *ctx_noverify;

static void probe_launch(checker_t *c, int kind);

/* ---- checkers' lifetime --------------------------------------------------------------------- */

static void checker_maybe_free(checker_t *c)
{
    if (!c->closing || c->closes || c->probes)
        return;
    free(c->queue[0]);
    free(c->queue[1]);
    aigw_balancers_unref(c->set);
    free(c);
}

static void on_checker_timer_closed(uv_handle_t *h)
{
    checker_t *c = h->data;
    c->closes--;
    checker_maybe_free(c);
}

static void probe_unlink_free(probe_t *p)
{
    checker_t *c = p->c;
    if (p->prev)
        p->prev->next = p->next;
    else
        c->probes = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p->req);
    free(p);
    checker_maybe_free(c);
}

static void on_probe_closed(uv_handle_t *h)
{
    probe_t *p = h->data;
    if (h == (uv_handle_t *)&p->poll && p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    if (--p->closes == 0)
        probe_unlink_free(p);
}

/* Ends a probe: reports (kind >= 0) unless the checker is going away, frees the round's slot
 * and closes the handles. Called once per probe. */
static void probe_finish(probe_t *p, int kind, int status)
{
    if (p->state == P_DONE)
        return;
    p->state = P_DONE;
    checker_t *c = p->c;
    if (p->dl) {
        aigw_dns_cancel(p->dl);
        p->dl = NULL;
    }
    if (kind >= 0 && !c->closing)
        aigw_balancer__report_active(c->b, p->target, kind, status);
    if (p->ssl) {
        SSL_free(p->ssl);
        p->ssl = NULL;
    }
    p->closes = 1;
    uv_close((uv_handle_t *)&p->timer, on_probe_closed);
    if (p->poll_init) {
        p->closes++;
        uv_close((uv_handle_t *)&p->poll, on_probe_closed);
    } else if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    c->inflight[p->kind]--;
    if (!c->closing)
        probe_launch(c, p->kind);
}

static void checker_close(checker_t *c)
{
    c->closing = 1;
    for (int k = 0; k < 2; k++) {
        c->closes++;
        uv_close((uv_handle_t *)&c->timer[k], on_checker_timer_closed);
    }
    for (probe_t *p = c->probes; p; p = p->next)
        probe_finish(p, -1, 0);
    checker_maybe_free(c);
}

/* ---- one probe ------------------------------------------------------------------------------ */

static void on_probe_timeout(uv_timer_t *t)
{
    probe_t *p = t->data;
    /* lua-resty-healthcheck: a timed-out TLS handshake fails the handshake (a TCP failure);
     * a timed-out connect, send or receive is a timeout */
    probe_finish(p, p->state == P_HANDSHAKE ? AIGW_BAL_TCP_FAILURE : AIGW_BAL_TIMEOUT, 0);
}

static void arm(probe_t *p, int events, uv_poll_cb cb, int restart_timer)
{
    uv_poll_start(&p->poll, events, cb);
    if (restart_timer)
        uv_timer_start(&p->timer, on_probe_timeout, p->c->ac->timeout_ms, 0);
}

static void on_poll(uv_poll_t *h, int status, int events);

/* "^HTTP/\d+\.\d+\s+(\d+)", case-insensitive; -1 when the line does not match. */
static int parse_status(const char *s, size_t n)
{
    size_t i = 0;
    if (n < 5 || strncasecmp(s, "HTTP/", 5) != 0)
        return -1;
    i = 5;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d || i >= n || s[i] != '.')
        return -1;
    d = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d)
        return -1;
    d = i;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f' ||
                     s[i] == '\v'))
        i++;
    if (i == d)
        return -1;
    d = i;
    long v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v < 100000)
            v = v * 10 + (s[i] - '0');
        i++;
    }
    return i == d ? -1 : (int)v;
}

static void got_line(probe_t *p)
{
    int st = parse_status(p->line, p->line_len);
    /* a bad status line is reported as status nil, which counts as an HTTP failure */
    probe_finish(p, AIGW_BAL_HTTP_STATUS, st < 0 ? 0 : st);
}

static void do_receive(probe_t *p)
{
    for (;;) {
        if (p->line_len >= sizeof(p->line)) {
            got_line(p);
            return;
        }
        char *dst = p->line + p->line_len;
        size_t room = sizeof(p->line) - p->line_len;
        ssize_t n;
        if (p->ssl) {
            ERR_clear_error();
            int r = SSL_read(p->ssl, dst, (int)room);
            if (r <= 0) {
                int e = SSL_get_error(p->ssl, r);
                if (e == SSL_ERROR_WANT_READ) {
                    arm(p, UV_READABLE, on_poll, 0);
                    return;
                }
                if (e == SSL_ERROR_WANT_WRITE) {
                    arm(p, UV_WRITABLE, on_poll, 0);
                    return;
                }
                probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
                return;
            }
            n = r;
        } else {
            n = recv(p->fd, dst, room, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                arm(p, UV_READABLE, on_poll, 0);
                return;
            }
            if (n <= 0) {   /* closed before a full line: ngx receive() fails */
                probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
                return;
            }
        }
        char *nl = memchr(dst, '\n', (size_t)n);
        p->line_len += (size_t)n;
        if (nl) {
            p->line_len = (size_t)(nl - p->line);
            if (p->line_len && p->line[p->line_len - 1] == '\r')
                p->line_len--;
            got_line(p);
            return;
        }
    }
}

static void do_send(probe_t *p)
{
    while (p->sent < p->req_len) {
        const char *src = p->req + p->sent;
        size_t left = p->req_len - p->sent;
        if (p->ssl) {
            ERR_clear_error();
            int r = SSL_write(p->ssl, src, (int)left);
            if (r <= 0) {
                int e = SSL_get_error(p->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    arm(p, e == SSL_ERROR_WANT_READ ? UV_READABLE : UV_WRITABLE, on_poll, 0);
                    return;
                }
                probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
                return;
            }
            p->sent += (size_t)r;
        } else {
            ssize_t n = send(p->fd, src, left, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                arm(p, UV_WRITABLE, on_poll, 0);
                return;
            }
            if (n <= 0) {
                probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
                return;
            }
            p->sent += (size_t)n;
        }
    }
    p->state = P_RECEIVING;
    arm(p, UV_READABLE, on_poll, 1);
    do_receive(p);
}

static void do_handshake(probe_t *p)
{
    ERR_clear_error();
    int r = SSL_do_handshake(p->ssl);
    if (r == 1) {
        p->state = P_SENDING;
        uv_timer_start(&p->timer, on_probe_timeout, p->c->ac->timeout_ms, 0);
        do_send(p);
        return;
    }
    int e = SSL_get_error(p->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        arm(p, e == SSL_ERROR_WANT_READ ? UV_READABLE : UV_WRITABLE, on_poll, 0);
        return;
    }
    AIGW_LOG(AIGW_LOG_ERR, "[healthchecks] failed SSL handshake with upstream %s target %u: %s",
             aigw_balancer_name(p->c->b), p->target,
             ERR_reason_error_string(ERR_peek_last_error())
                 ? ERR_reason_error_string(ERR_peek_last_error())
                 : "handshake failed");
    probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
}

static SSL_CTX *client_ctx(int verify)
{
    SSL_CTX **pc = verify ? &ctx_verify : &ctx_noverify;
    if (!*pc) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
            return NULL;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        if (verify) {
            SSL_CTX_set_default_verify_paths(ctx);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        }
        *pc = ctx;
    }
    return *pc;
}

static int is_ip_literal(const char *s)
{
    struct in6_addr a;
    return inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1;
}

static int start_tls(probe_t *p, char *sni)
{
    const aigw_balancer_active_t *ac = p->c->ac;
    SSL_CTX *ctx = client_ctx(ac->https_verify_certificate);
    if (!ctx || !(p->ssl = SSL_new(ctx)))
        return -1;
    SSL_set_fd(p->ssl, p->fd);
    SSL_set_connect_state(p->ssl);
    int ip = is_ip_literal(sni);
    if (!ip)
        SSL_set_tlsext_host_name(p->ssl, sni);
    if (ac->https_verify_certificate) {
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), sni);
        else
            SSL_set1_host(p->ssl, sni);
    }
    return 0;
}

/* host without brackets for SNI and Host; IPv6 literals get brackets in Host. */
static void build_request(probe_t *p, const char *host)
{
    const aigw_balancer_active_t *ac = p->c->ac;
    aigw_str_t hh = aigw_balancer_host_header(p->c->b);
    char hostbuf[300];
    if (hh.n)
        snprintf(hostbuf, sizeof(hostbuf), "%.*s", (int)hh.n, hh.p);
    else if (strchr(host, ':'))
        snprintf(hostbuf, sizeof(hostbuf), "[%s]", host);
    else
        snprintf(hostbuf, sizeof(hostbuf), "%s", host);
    size_t cap = strlen(ac->http_path) + strlen(ac->headers) + strlen(hostbuf) + 64;
    p->req = malloc(cap);
    if (!p->req)
        return;
    int n = snprintf(p->req, cap, "GET %s HTTP/1.0\r\n%sHost: %s\r\n\r\n", ac->http_path,
                     ac->headers, hostbuf);
    p->req_len = n > 0 ? (size_t)n : 0;
}

static void on_connected(probe_t *p)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
        return;
    }
    const aigw_balancer_active_t *ac = p->c->ac;
    if (ac->type == AIGW_HC_TCP) {
        probe_finish(p, AIGW_BAL__SUCCESS, 0);
        return;
    }
    const char *host;
    int port, weight, family;
    struct sockaddr_storage ss;
    aigw_balancer__target(p->c->b, p->target, &host, &port, &weight, &family, &ss);
    build_request(p, host);
    if (!p->req) {
        probe_finish(p, -1, 0);
        return;
    }
    uv_timer_start(&p->timer, on_probe_timeout, ac->timeout_ms, 0);
    if (ac->type == AIGW_HC_HTTPS) {
        aigw_str_t hh = aigw_balancer_host_header(p->c->b);
        char sni[300];
        if (ac->https_sni)
            snprintf(sni, sizeof(sni), "%s", ac->https_sni);
        else if (hh.n)
            snprintf(sni, sizeof(sni), "%.*s", (int)hh.n, hh.p);
        else
            snprintf(sni, sizeof(sni), "%s", host);
        if (start_tls(p, sni) != 0) {
            probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
            return;
        }
        p->state = P_HANDSHAKE;
        do_handshake(p);
        return;
    }
    p->state = P_SENDING;
    do_send(p);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    probe_t *p = h->data;
    (void)events;
    if (p->state == P_DONE)
        return;
    if (status < 0) {
        probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
        return;
    }
    switch (p->state) {
    case P_CONNECTING:
        on_connected(p);
        break;
    case P_HANDSHAKE:
        do_handshake(p);
        break;
    case P_SENDING:
        do_send(p);
        break;
    case P_RECEIVING:
        do_receive(p);
        break;
    default:
        break;
    }
}

static void probe_connect(probe_t *p, const struct sockaddr_storage *addr)
{
    socklen_t alen = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
    struct sockaddr_storage ss = *addr;
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)p->port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)p->port);
    p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
        return;
    }
    if (connect(p->fd, (struct sockaddr *)&ss, alen) != 0 && errno != EINPROGRESS) {
        probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
        return;
    }
    if (uv_poll_init_socket(&loop, &p->poll, p->fd) != 0) {
        probe_finish(p, AIGW_BAL_TCP_FAILURE, 0);
        return;
    }
    p->poll.data = p;
    p->poll_init = 1;
    p->state = P_CONNECTING;
    arm(p, UV_WRITABLE, on_poll, 1);
}

static void on_resolved(const aigw_dns_result_t *res, void *ud)
{
    probe_t *p = ud;
    p->dl = NULL;
    if (p->state == P_DONE)
        return;
    if (res->status != AIGW_DNS_OK) {
        /* Kong: a target whose name does not resolve has no address to probe */
        aigw_balancer_set_addresses(p->c->b, p->target, NULL, 0, res->error);
        probe_finish(p, -1, 0);
        return;
    }
    aigw_balancer_set_addresses(p->c->b, p->target, res->addrs, res->n_addrs, NULL);
    probe_connect(p, &res->addr);
}

static void probe_start(checker_t *c, int kind, uint32_t target)
{
    probe_t *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->c = c;
    p->kind = kind;
    p->target = target;
    p->fd = -1;
    p->state = P_RESOLVING;
    uv_timer_init(&loop, &p->timer);
    p->timer.data = p;
    p->next = c->probes;
    if (c->probes)
        c->probes->prev = p;
    c->probes = p;
    c->inflight[kind]++;

    const char *host;
    int weight, family;
    struct sockaddr_storage addr;
    aigw_balancer__target(c->b, target, &host, &p->port, &weight, &family, &addr);
    if (family) {
        probe_connect(p, &addr);
        return;
    }
    int rc = aigw_dns_resolve(dns, host, on_resolved, p, &p->dl);
    if (rc < 0)
        probe_finish(p, -1, 0);
}

/* Starts queued probes of a round up to the concurrency; ends the round when all are done. */
static void probe_launch(checker_t *c, int kind)
{
    while (!c->closing && c->qpos[kind] < c->qlen[kind] &&
           c->inflight[kind] < c->ac->concurrency) {
        uint32_t t = c->queue[kind][c->qpos[kind]++];
        probe_start(c, kind, t);
    }
    if (c->qpos[kind] >= c->qlen[kind] && c->inflight[kind] == 0)
        c->round[kind] = 0;
}

static void on_round(uv_timer_t *t)
{
    checker_t *c = t->data;
    int kind = t == &c->timer[0] ? 0 : 1;
    if (c->closing || c->round[kind])
        return;   /* the previous round of this kind is still running */
    size_t n = aigw_balancer_n_targets(c->b);
    free(c->queue[kind]);
    c->queue[kind] = n ? malloc(n * sizeof(uint32_t)) : NULL;
    c->qlen[kind] = c->qpos[kind] = 0;
    if (!c->queue[kind])
        return;
    for (uint32_t i = 0; i < n; i++) {
        const char *host;
        int port, weight, family;
        struct sockaddr_storage ss;
        aigw_balancer__target(c->b, i, &host, &port, &weight, &family, &ss);
        if (weight <= 0)
            continue;
        if (aigw_balancer__is_healthy(c->b, i) == (kind == 0))
            c->queue[kind][c->qlen[kind]++] = i;
    }
    if (!c->qlen[kind])
        return;
    c->round[kind] = 1;
    probe_launch(c, kind);
}

/* ---- switching sets ------------------------------------------------------------------------- */

static void use_set(aigw_balancers_t *s)
{
    checker_t *c = checkers;
    checkers = NULL;
    while (c) {
        checker_t *next = c->next;
        checker_close(c);
        c = next;
    }
    for (size_t i = 0; i < aigw_balancers__count(s); i++) {
        const aigw_balancer_t *b = aigw_balancers__at(s, i);
        const aigw_balancer_active_t *ac = aigw_balancer__active(b);
        if (!ac)
            continue;
        checker_t *nc = calloc(1, sizeof(*nc));
        if (!nc) {
            AIGW_LOG(AIGW_LOG_ERR, "[healthchecks] out of memory for upstream %s",
                     aigw_balancer_name(b));
            continue;
        }
        nc->set = aigw_balancers_ref(s);
        nc->b = b;
        nc->ac = ac;
        uint64_t iv[2] = { ac->healthy_interval_ms, ac->unhealthy_interval_ms };
        for (int k = 0; k < 2; k++) {
            uv_timer_init(&loop, &nc->timer[k]);
            nc->timer[k].data = nc;
            if (iv[k])
                uv_timer_start(&nc->timer[k], on_round, iv[k], iv[k]);
        }
        nc->next = checkers;
        checkers = nc;
    }
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&mu);
    aigw_balancers_t *s = pending;
    int have = pending_set, stop = stopping;
    pending = NULL;
    pending_set = 0;
    pthread_mutex_unlock(&mu);
    if (have || stop) {
        use_set(stop ? NULL : s);
        aigw_balancers_unref(s);   /* the checkers took their own references */
    }
    if (stop) {
        aigw_dns_free(dns);
        dns = NULL;
        uv_close((uv_handle_t *)&wake, NULL);
    }
}

static void *thread_main(void *arg)
{
    (void)arg;
    aigw_log_thread_name = "healthcheck";
    on_wake(&wake);   /* a set given before start, or a stop that came first */
    uv_run(&loop, UV_RUN_DEFAULT);
    SSL_CTX_free(ctx_verify);
    SSL_CTX_free(ctx_noverify);
    ctx_verify = ctx_noverify = NULL;
    return NULL;
}

int aigw_healthcheck_start(void)
{
    pthread_mutex_lock(&mu);
    if (running) {
        pthread_mutex_unlock(&mu);
        return 0;
    }
    stopping = 0;
    int rc = uv_loop_init(&loop);
    if (rc == 0 && (rc = uv_async_init(&loop, &wake, on_wake)) != 0)
        uv_loop_close(&loop);
    if (rc == 0 && !(dns = aigw_dns_new(&loop, NULL))) {
        rc = UV_ENOMEM;
        uv_close((uv_handle_t *)&wake, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    if (rc == 0 && pthread_create(&thread, NULL, thread_main, NULL) != 0) {
        rc = UV_EAGAIN;
        aigw_dns_free(dns);
        dns = NULL;
        uv_close((uv_handle_t *)&wake, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    if (rc == 0)
        running = 1;
    pthread_mutex_unlock(&mu);
    if (rc != 0)
        AIGW_LOG(AIGW_LOG_ERR, "[healthchecks] cannot start the health-check thread: %s",
                 uv_strerror(rc));
    return rc == 0 ? 0 : -1;
}

void aigw_healthcheck_stop(void)
{
    pthread_mutex_lock(&mu);
    if (!running) {
        aigw_balancers_t *s = pending;
        pending = NULL;
        pending_set = 0;
        pthread_mutex_unlock(&mu);
        aigw_balancers_unref(s);
        return;
    }
    stopping = 1;
    running = 0;
    uv_async_send(&wake);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    int rc = uv_loop_close(&loop);
    if (rc != 0)
        AIGW_LOG(AIGW_LOG_ERR, "[healthchecks] loop close: %s", uv_strerror(rc));
    pthread_mutex_lock(&mu);
    stopping = 0;
    pthread_mutex_unlock(&mu);
}

void aigw_healthcheck_set(aigw_balancers_t *b)
{
    aigw_balancers_ref(b);
    pthread_mutex_lock(&mu);
    aigw_balancers_t *old = pending;
    pending = b;
    pending_set = 1;
    if (running)
        uv_async_send(&wake);
    pthread_mutex_unlock(&mu);
    aigw_balancers_unref(old);
}
