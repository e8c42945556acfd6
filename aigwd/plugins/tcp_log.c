/* aigwd/plugins/tcp_log.c: Kong's tcp-log (priority 7): every request's JSON record
 * (plugins/logrec.h) followed by "\n" over a TCP connection to host:port, optionally TLS
 * (`tls`, with `tls_sni` as the server name); aigw's `custom_fields` (static values) are
 * merged into the record. `custom_fields_by_lua` is accepted but ignored (aigw runs no Lua;
 * warned at configure).
 *
 * No request waits on the socket: the log phase queues the record (plugins/logqueue.h); the
 * queue's thread writes batches over one persistent connection. Kong's tcp-log has no queue
 * settings (it sends each record from a timer); ours are fixed (QUEUE_OPTS): up to 10000
 * entries waiting, batches of up to 100 records written at once, no coalescing delay, and a
 * batch that fails (connect, handshake, write) is retried with backoff (0.01 s doubling up to
 * 60 s) for up to 60 s, then dropped and counted by the queue. A retried batch is sent whole
 * again, so a receiver may see a record twice after a connection broke mid-batch.
 *
 * Connection: `timeout` (ms) bounds connect, TLS handshake and each write; a connection idle
 * for longer than `keepalive` (ms) is closed and a new one opened before the next batch, as is
 * one the peer closed. TLS verifies the server's certificate against the system's trust store
 * (OpenSSL's default paths; SSL_CERT_FILE / SSL_CERT_DIR apply) and its name against tls_sni,
 * or host when tls_sni is not set (aigw; Kong 3.9 does not verify). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/logplugin.h"
#include "plugins/logqueue.h"
#include "plugins/logrec.h"

static const aigw_logq_opts_t QUEUE_OPTS = {
    .max_batch_size = 100,
    .max_coalescing_delay = 0,
    .max_entries = 10000,
    .max_bytes = 0,
    .max_retry_time = 60,
    .initial_retry_delay = 0.01,
    .max_retry_delay = 60,
};

typedef struct sink {
    char *host;
    char port[8];
    int timeout_ms;
    uint64_t keepalive_ns;
    int tls;
    char *sni;              /* NULL: none */
    int fd;                 /* -1: not connected */
    SSL_CTX *ctx;
    SSL *ssl;
    uint64_t last_used_ns;
} sink_t;

static int is_ip_literal(const char *s)
{
    struct in6_addr a;
    return inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1;
}

static void conn_close(sink_t *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* One address, non-blocking connect bounded by timeout; then blocking with send/receive
 * timeouts. The fd, or -1 with errno set. */
static int connect_addr(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int r;
        do
            r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (r < 0)
            goto fail;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            goto fail;
        if (soerr) {
            errno = soerr;
            goto fail;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        goto fail;
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static const char *ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return "handshake failed";
    ERR_error_string_n(e, buf, n);
    return buf;
}

static int tls_start(sink_t *s, char *err, size_t errlen)
{
    char eb[256];
    if (!s->ctx) {
        s->ctx = SSL_CTX_new(TLS_client_method());
        if (!s->ctx) {
            snprintf(err, errlen, "failed to perform TLS handshake to %s:%s: %s", s->host,
                     s->port, ssl_reason(eb, sizeof(eb)));
            return -1;
        }
        SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
        SSL_CTX_set_default_verify_paths(s->ctx);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
    }
    s->ssl = SSL_new(s->ctx);
    if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1) {
        snprintf(err, errlen, "failed to perform TLS handshake to %s:%s: %s", s->host, s->port,
                 ssl_reason(eb, sizeof(eb)));
        return -1;
    }
    const char *name = s->sni ? s->sni : s->host;
    if (!is_ip_literal(name))
        SSL_ctrl(s->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 (void *)(uintptr_t)name);
    X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
    if (is_ip_literal(name))
        X509_VERIFY_PARAM_set1_ip_asc(vp, name);
    else
        SSL_set1_host(s->ssl, name);
    ERR_clear_error();
    if (SSL_connect(s->ssl) != 1) {
        long vr = SSL_get_verify_result(s->ssl);
        if (vr != X509_V_OK)
            snprintf(err, errlen, "failed to perform TLS handshake to %s:%s: certificate "
                     "verify failed: %s", s->host, s->port, X509_verify_cert_error_string(vr));
        else
            snprintf(err, errlen, "failed to perform TLS handshake to %s:%s: %s", s->host,
                     s->port, ssl_reason(eb, sizeof(eb)));
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static int conn_open(sink_t *s, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(s->host, s->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "failed to connect to %s:%s: %s", s->host, s->port,
                 rc == EAI_SYSTEM ? "system error" : gai_strerror(rc));
        return -1;
    }
    int e = 0;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        s->fd = connect_addr(ai, s->timeout_ms);
        if (s->fd >= 0)
            break;
        e = errno;
    }
    freeaddrinfo(res);
    if (s->fd < 0) {
        char eb[128];
        snprintf(err, errlen, "failed to connect to %s:%s: %s", s->host, s->port,
                 e == ETIMEDOUT ? "timeout" : strerror_r(e, eb, sizeof(eb)));
        return -1;
    }
    if (s->tls && tls_start(s, err, errlen) != 0) {
        conn_close(s);
        return -1;
    }
    return 0;
}

/* 1 if the open connection is still usable: not idle past keepalive, not closed by the
 * peer. */
static int conn_usable(sink_t *s, uint64_t now)
{
    if (s->fd < 0)
        return 0;
    if (now - s->last_used_ns > s->keepalive_ns)
        return 0;
    struct pollfd p = { .fd = s->fd, .events = POLLIN };
    if (poll(&p, 1, 0) <= 0)
        return 1;
    if (p.revents & (POLLERR | POLLNVAL))
        return 0;
    if (s->ssl) {
        /* read what the server sent (TLS 1.3 session tickets; a close_notify) without
         * waiting: the connection is usable unless it ended */
        int fl = fcntl(s->fd, F_GETFL);
        if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return 0;
        char buf[4096];
        int ok;
        for (;;) {
            ERR_clear_error();
            int r = SSL_read(s->ssl, buf, sizeof(buf));
            if (r > 0)
                continue;   /* a log receiver has nothing to say: discard */
            ok = SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ;
            break;
        }
        ERR_clear_error();
        if (fcntl(s->fd, F_SETFL, fl) < 0)
            return 0;
        return ok;
    }
    char c;
    ssize_t r = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    /* bytes waiting (a TLS 1.3 session ticket, say) are fine; EOF or an error is not */
    return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

static int write_all(sink_t *s, const char *buf, size_t n, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < n) {
        size_t chunk = n - off > (1u << 30) ? (1u << 30) : n - off;
        if (s->ssl) {
            ERR_clear_error();
            int w = SSL_write(s->ssl, buf + off, (int)chunk);
            if (w <= 0) {
                char eb[256];
                int se = SSL_get_error(s->ssl, w);
                snprintf(err, errlen, "failed to send data to %s:%s: %s", s->host, s->port,
                         se == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)
                             ? "timeout"
                             : ssl_reason(eb, sizeof(eb)));
                return -1;
            }
            off += (size_t)w;
        } else {
            ssize_t w = send(s->fd, buf + off, chunk, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                char eb[128];
                snprintf(err, errlen, "failed to send data to %s:%s: %s", s->host, s->port,
                         errno == EAGAIN || errno == EWOULDBLOCK
                             ? "timeout"
                             : strerror_r(errno, eb, sizeof(eb)));
                return -1;
            }
            off += (size_t)w;
        }
    }
    return 0;
}

static int sink_send(void *ud, const char *const *entries, const size_t *lens, size_t n,
                     char *err, size_t errlen)
{
    sink_t *s = ud;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lens[i] + 1;
    char *buf = malloc(total ? total : 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + off, entries[i], lens[i]);
        off += lens[i];
        buf[off++] = '\n';
    }
    uint64_t now = uv_hrtime();
    if (!conn_usable(s, now))
        conn_close(s);
    int rc = 0;
    if (s->fd < 0 && conn_open(s, err, errlen) != 0)
        rc = -1;
    if (rc == 0 && write_all(s, buf, total, err, errlen) != 0) {
        conn_close(s);
        rc = -1;
    }
    if (rc == 0)
        s->last_used_ns = uv_hrtime();
    free(buf);
    return rc;
}

static void sink_free(void *ud)
{
    sink_t *s = ud;
    if (!s)
        return;
    conn_close(s);
    if (s->ctx)
        SSL_CTX_free(s->ctx);
    free(s->host);
    free(s->sni);
    free(s);
}

static int ms_value(const json_t *v, int dflt)
{
    if (!json_is_number(v))
        return dflt;
    double d = json_number_value(v);
    if (d < 1)
        return 1;
    if (d > 24.0 * 3600 * 1000)
        return 24 * 3600 * 1000;
    return (int)d;
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    const char *host = json_string_value(json_object_get(c, "host"));
    json_int_t port = json_integer_value(json_object_get(c, "port"));
    if (!host || !*host || port < 0 || port > 65535) {
        snprintf(err, errlen, "tcp-log: no host or port");
        return NULL;
    }
    const char *sni = json_string_value(json_object_get(c, "tls_sni"));
    sink_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->host = strdup(host)) || (sni && *sni && !(s->sni = strdup(sni)))) {
        snprintf(err, errlen, "out of memory");
        if (s) {
            free(s->host);
            free(s->sni);
        }
        free(s);
        return NULL;
    }
    snprintf(s->port, sizeof(s->port), "%d", (int)port);
    s->timeout_ms = ms_value(json_object_get(c, "timeout"), 10000);
    s->keepalive_ns = (uint64_t)ms_value(json_object_get(c, "keepalive"), 60000) * 1000000ull;
    s->tls = json_is_true(json_object_get(c, "tls"));
    s->fd = -1;
    char name[1024], label[600];
    snprintf(name, sizeof(name), "tcp-log %s:%s tls=%d sni=%s timeout=%d keepalive=%llu",
             s->host, s->port, s->tls, s->sni ? s->sni : "", s->timeout_ms,
             (unsigned long long)(s->keepalive_ns / 1000000ull));
    snprintf(label, sizeof(label), "tcp-log %s:%s", s->host, s->port);
    aigw_logq_sink_t sink = { sink_send, sink_free, s };
    return aigw_logplugin_new(c, name, label, &QUEUE_OPTS, sink, err, errlen);
}

const aigw_plugin_def_t aigw_plugin_def_tcp_log = {
    .name = "tcp-log",
    .priority = 7,
    .configure = configure,
    .free_conf = aigw_logplugin_free,
    .log = aigw_logplugin_log,
};
