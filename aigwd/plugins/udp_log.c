/* aigwd/plugins/udp_log.c: Kong's udp-log (priority 8): every request's JSON record
 * (plugins/logrec.h) as one UDP datagram (no newline) to host:port; aigw's `custom_fields`
 * (static values) are merged into the record. `custom_fields_by_lua` is accepted but ignored
 * (aigw runs no Lua; warned at configure).
 *
 * No request waits on the socket: the log phase queues the record (plugins/logqueue.h); the
 * queue's thread sends the datagrams on a connected, non-blocking socket (Kong's setpeername
 * + send), so a send never waits either. Kong's udp-log has no queue settings; ours are fixed
 * (QUEUE_OPTS): up to 10000 entries waiting, batches of up to 100 datagrams, no coalescing
 * delay, no retries (UDP gives no delivery guarantee anyway): a datagram the kernel refuses
 * (buffer full, too large, ICMP port unreachable reported on the socket) is dropped and
 * counted, and logged at most once per 10 s with the count. `timeout` has nothing to bound
 * since no send waits. The host name is resolved again every 60 s and after an error. */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/logplugin.h"
#include "plugins/logqueue.h"
#include "plugins/logrec.h"

#define ERR_LOG_INTERVAL_NS (10ull * 1000000000ull)
#define RESOLVE_INTERVAL_NS (60ull * 1000000000ull)

static const aigw_logq_opts_t QUEUE_OPTS = {
    .max_batch_size = 100,
    .max_coalescing_delay = 0,
    .max_entries = 10000,
    .max_bytes = 0,
    .max_retry_time = 0,
    .initial_retry_delay = 0.01,
    .max_retry_delay = 1,
};

typedef struct sink {
    char *host;
    char port[8];
    int fd;                   /* -1: none */
    uint64_t opened_ns;
    uint64_t dropped;         /* since the last error line */
    uint64_t dropped_total;
    uint64_t last_err_ns;
} sink_t;

static void sink_error(sink_t *s, const char *what, const char *reason, size_t dropped)
{
    s->dropped += dropped;
    s->dropped_total += dropped;
    uint64_t now = uv_hrtime();
    if (s->last_err_ns && now - s->last_err_ns < ERR_LOG_INTERVAL_NS)
        return;
    AIGW_LOG(AIGW_LOG_ERR, "udp-log: %s %s:%s: %s; %llu log entries dropped (%llu in all)",
             what, s->host, s->port, reason, (unsigned long long)s->dropped,
             (unsigned long long)s->dropped_total);
    s->last_err_ns = now;
    s->dropped = 0;
}

static void sock_close(sink_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* 0 with s->fd connected, or -1 with *reason set. */
static int sock_open(sink_t *s, const char **reason, char *eb, size_t ebn)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(s->host, s->port, &hints, &res);
    if (rc != 0) {
        *reason = rc == EAI_SYSTEM ? "system error" : gai_strerror(rc);
        return -1;
    }
    int e = 0;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            continue;
        }
        s->fd = fd;
        break;
    }
    freeaddrinfo(res);
    if (s->fd < 0) {
        *reason = strerror_r(e, eb, ebn);
        return -1;
    }
    s->opened_ns = uv_hrtime();
    return 0;
}

static int sink_send(void *ud, const char *const *entries, const size_t *lens, size_t n,
                     char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    sink_t *s = ud;
    char eb[128];
    const char *reason = NULL;
    if (s->fd >= 0 && uv_hrtime() - s->opened_ns > RESOLVE_INTERVAL_NS)
        sock_close(s);
    if (s->fd < 0 && sock_open(s, &reason, eb, sizeof(eb)) != 0) {
        sink_error(s, "could not connect to", reason, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        ssize_t w;
        int tries = 0;
        for (;;) {
            w = send(s->fd, entries[i], lens[i], MSG_DONTWAIT | MSG_NOSIGNAL);
            /* EINTR; ECONNREFUSED is the ICMP answer to an earlier datagram: send again */
            if (w < 0 && (errno == EINTR || errno == ECONNREFUSED) && ++tries < 3)
                continue;
            break;
        }
        if (w < 0) {
            int e = errno;
            sink_error(s, "could not send data to", strerror_r(e, eb, sizeof(eb)), 1);
            if (e != EAGAIN && e != EWOULDBLOCK && e != EMSGSIZE && e != ECONNREFUSED &&
                e != ENOBUFS) {
                sock_close(s);
                if (i + 1 < n)
                    sink_error(s, "could not send data to", "socket closed", n - i - 1);
                return 0;
            }
        }
    }
    return 0;
}

static void sink_free(void *ud)
{
    sink_t *s = ud;
    if (!s)
        return;
    sock_close(s);
    free(s->host);
    free(s);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    const char *host = json_string_value(json_object_get(c, "host"));
    json_int_t port = json_integer_value(json_object_get(c, "port"));
    if (!host || !*host || port < 0 || port > 65535) {
        snprintf(err, errlen, "udp-log: no host or port");
        return NULL;
    }
    sink_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->host = strdup(host))) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    snprintf(s->port, sizeof(s->port), "%d", (int)port);
    s->fd = -1;
    char name[600];
    snprintf(name, sizeof(name), "udp-log %s:%s", s->host, s->port);
    aigw_logq_sink_t sink = { sink_send, sink_free, s };
    return aigw_logplugin_new(c, name, name, &QUEUE_OPTS, sink, err, errlen);
}

const aigw_plugin_def_t aigw_plugin_def_udp_log = {
    .name = "udp-log",
    .priority = 8,
    .configure = configure,
    .free_conf = aigw_logplugin_free,
    .log = aigw_logplugin_log,
};
