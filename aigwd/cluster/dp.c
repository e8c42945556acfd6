/* aigwd/cluster/dp.c: the data plane's side of hybrid mode (see cluster.h).
 *
 * One cluster thread: connect to cluster_control_plane (non-blocking socket, deadlines with
 * poll), TLS 1.3 with the cluster certificate, HELLO, then read frames and send a PING every
 * cluster_ping_interval. A SNAPSHOT is checked (signature with the key of the certificate the
 * CP presented, bounds, sha256) before anything else, loaded into a new runtime next to the
 * one serving, written to the prefix (temp file + fsync + rename), and only then published:
 * a DP never serves half a snapshot, and a snapshot that fails any step leaves the previous
 * one serving. Lost links are retried with jittered exponential backoff, forever.
 *
 * The cache file: "AIGWDPC1" | length of the CP's public key (4, BE) | that key (DER
 * SubjectPublicKeyInfo) | the SNAPSHOT payload as received. At start it is verified the same
 * way (shared mode: with our own cluster_cert's key; pki: with the key stored beside it). */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <uv.h>
#include "cluster/cluster.h"
#include "cluster/proto.h"
#include "common/fs.h"
#include "common/str.h"
#include "core/log.h"
#include "proxy/healthcheck.h"
#include "proxy/loader.h"
#include "snapshot/snapshot.h"

#define CONNECT_MS 5000
#define IO_MS 10000
#define BACKOFF_MAX_MS 10000
#define CACHE_MAGIC "AIGWDPC1"

static struct {
    int running;
    pthread_t tid;
    int wake;
    SSL_CTX *ctx;
    EVP_PKEY *own_pub;          /* shared mode: our cluster_cert's key, which the CP's is */
    int shared;
    char host[256], port[16], sni[256];
    int check_host;             /* pki: check the CP's name */
    char node_id[40], hostname[256];
    char cache_path[4200];
    uint64_t max_payload;
    int ping_ms;
    _Atomic int stop;
    char running_hash[65];      /* cluster thread only after start */
} dp = { .wake = -1 };

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static int stopping(void)
{
    return atomic_load(&dp.stop);
}

/* ---- applying a snapshot ----------------------------------------------------------------- */

/* Checks, loads and (unless from the cache) persists a SNAPSHOT payload, then makes it the
 * proxy's configuration. pub: the key that must have signed it. 0 applied or already
 * running, -1 rejected (logged). */
static int apply(const uint8_t *p, size_t n, EVP_PKEY *pub, int from_cache)
{
    char err[512];
    long long version = 0;
    char hash[65];
    char *json = NULL;
    size_t jlen = 0;
    const char *src = from_cache ? "cached configuration" : "configuration from the control plane";
    uint64_t t0 = uv_hrtime();
    if (aigw_cf_snapshot_decode(p, n, pub, &version, hash, &json, &jlen, err, sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s rejected: %s; the previous configuration stays "
                 "in use", src, err);
        return -1;
    }
    if (strcmp(hash, dp.running_hash) == 0) {
        free(json);
        return 0;
    }
    uint64_t t1 = uv_hrtime();
    aigw_snapshot_t *snap = calloc(1, sizeof(*snap));
    if (!snap) {
        free(json);
        return -1;
    }
    atomic_store(&snap->refs, 1);
    snap->version = version;
    memcpy(snap->hash, hash, sizeof(snap->hash));
    snap->json = json;
    snap->len = jlen;
    aigw_runtime_t *rt = aigw_runtime_load(snap, err, sizeof(err));
    if (!rt) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s %lld (sha256 %.16s) not loaded: %s; the previous "
                 "configuration stays in use", src, version, hash, err);
        aigw_snapshot_unref(snap);
        malloc_trim(0);
        return -1;
    }
    uint64_t t2 = uv_hrtime();
    if (!from_cache) {
        /* Persist before serving: a restart without the CP comes back to exactly this. */
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY(pub, &der);
        size_t total = 8 + 4 + (dl > 0 ? (size_t)dl : 0) + n;
        uint8_t *buf = dl > 0 ? malloc(total) : NULL;
        if (buf) {
            memcpy(buf, CACHE_MAGIC, 8);
            buf[8] = (uint8_t)((unsigned)dl >> 24);
            buf[9] = (uint8_t)((unsigned)dl >> 16);
            buf[10] = (uint8_t)((unsigned)dl >> 8);
            buf[11] = (uint8_t)dl;
            memcpy(buf + 12, der, (size_t)dl);
            memcpy(buf + 12 + dl, p, n);
            if (aigw_write_file_atomic(dp.cache_path, buf, total, 0600) != 0)
                AIGW_LOG(AIGW_LOG_ERR, "cluster: cannot write %s: %s; a restart without the "
                         "control plane would not find this configuration", dp.cache_path,
                         strerror(errno));
        }
        free(buf);
        OPENSSL_free(der);
    }
    uint64_t t3 = uv_hrtime();
    aigw_runtime_publish(rt);
    aigw_healthcheck_set(rt->balancers);
    AIGW_LOG(AIGW_LOG_NOTICE, "cluster: %s %lld (sha256 %.16s) in use: %zu services, %zu "
             "routes, %.1f ms (verify %.1f, load %.1f, cache %.1f; %zu entities as before)",
             src, version, hash, rt->n_services, rt->n_routes, (double)(t3 - t0) / 1e6,
             (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6,
             aigw_runtime_reused(rt));
    aigw_runtime_unref(rt);
    aigw_snapshot_publish(snap);     /* for /status configuration_hash (no follower on a DP) */
    aigw_snapshot_unref(snap);
    aigw_strlcpy(dp.running_hash, hash, sizeof(dp.running_hash));
    malloc_trim(0);
    return 0;
}

static void load_cache(void)
{
    char *text = NULL;
    size_t len = 0;
    if (aigw_read_file(dp.cache_path, (size_t)dp.max_payload + 65536, &text, &len) != 0) {
        if (errno != ENOENT)
            AIGW_LOG(AIGW_LOG_ERR, "cluster: cannot read %s: %s", dp.cache_path,
                     strerror(errno));
        else
            AIGW_LOG(AIGW_LOG_NOTICE, "cluster: no cached configuration in %s; serving nothing "
                     "until the control plane sends one", dp.cache_path);
        return;
    }
    const uint8_t *p = (const uint8_t *)text;
    EVP_PKEY *stored = NULL;
    if (len < 12 || memcmp(p, CACHE_MAGIC, 8) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s is not a configuration cache; ignoring it",
                 dp.cache_path);
        goto out;
    }
    size_t kl = (size_t)p[8] << 24 | (size_t)p[9] << 16 | (size_t)p[10] << 8 | p[11];
    if (kl > len - 12) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s is truncated; ignoring it", dp.cache_path);
        goto out;
    }
    const unsigned char *kp = p + 12;
    stored = d2i_PUBKEY(NULL, &kp, (long)kl);
    EVP_PKEY *pub = dp.shared ? dp.own_pub : stored;
    if (!pub) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s holds no usable key; ignoring it", dp.cache_path);
        goto out;
    }
    AIGW_LOG(AIGW_LOG_NOTICE, "cluster: found a cached configuration in %s, loading it",
             dp.cache_path);
    apply(p + 12 + kl, len - 12 - kl, pub, 1);
out:
    ERR_clear_error();
    EVP_PKEY_free(stored);
    free(text);
}

/* ---- the link ---------------------------------------------------------------------------- */

/* Waits for fd to be ready (or the stop eventfd): 1 ready, 0 timeout, -1 stop/error. */
static int wait_fd(int fd, short ev, int ms)
{
    struct pollfd pf[2] = { { .fd = fd, .events = ev }, { .fd = dp.wake, .events = POLLIN } };
    int r;
    do
        r = poll(pf, 2, ms);
    while (r < 0 && errno == EINTR);
    if (r < 0 || stopping())
        return -1;
    if (pf[1].revents && stopping())
        return -1;
    return pf[0].revents ? 1 : 0;
}

static int tcp_connect(char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int gr = getaddrinfo(dp.host, dp.port, &hints, &res);
    if (gr != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", dp.host, gai_strerror(gr));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            r = wait_fd(fd, POLLOUT, CONNECT_MS) == 1 ? 0 : -1;
            if (r == 0) {
                int so = 0;
                socklen_t sl = sizeof(so);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
                if (so) {
                    errno = so;
                    r = -1;
                }
            } else {
                errno = ETIMEDOUT;
            }
        }
        if (r != 0) {
            snprintf(err, errlen, "cannot connect to %s:%s: %s", dp.host, dp.port,
                     strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static void ssl_why(SSL *ssl, const char *what, char *err, size_t errlen)
{
    long vr = SSL_get_verify_result(ssl);
    unsigned long e = ERR_peek_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    if (vr != X509_V_OK)
        snprintf(err, errlen, "%s: the control plane's certificate is not accepted (%s)", what,
                 vr == X509_V_ERR_CERT_REJECTED
                     ? "cluster_mtls = shared: it is not the same certificate as cluster_cert"
                     : X509_verify_cert_error_string(vr));
    else
        snprintf(err, errlen, "%s: %s", what, buf[0] ? buf : "connection closed");
}

/* Runs an SSL call to completion within ms. 1 done (r holds its result), -1 failed. */
static int ssl_wait(SSL *ssl, int fd, int r, uint64_t deadline)
{
    int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return -1;
    uint64_t now = now_ms();
    if (now >= deadline)
        return -1;
    return wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, (int)(deadline - now)) == 1
               ? 0
               : -1;
}

static int write_all(SSL *ssl, int fd, const uint8_t *p, size_t n)
{
    uint64_t deadline = now_ms() + IO_MS;
    while (n) {
        ERR_clear_error();
        int r = SSL_write(ssl, p, (int)n);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (ssl_wait(ssl, fd, r, deadline) != 0)
            return -1;
    }
    return 0;
}

static int send_frame(SSL *ssl, int fd, int type, const void *payload, size_t len)
{
    size_t flen;
    uint8_t *f = aigw_cf_frame(type, payload, len, &flen);
    if (!f)
        return -1;
    int r = write_all(ssl, fd, f, flen);
    free(f);
    return r;
}

/* One session: 0 when the link ended after working (retry soon), -1 when it never worked,
 * -2 when the CP refused us (retry slowly). */
static int session(void)
{
    char err[512];
    int fd = tcp_connect(err, sizeof(err));
    if (fd < 0) {
        AIGW_LOG(AIGW_LOG_WARN, "cluster: %s; the last configuration stays in use", err);
        return -1;
    }
    int rc = -1, worked = 0;
    EVP_PKEY *cp_pub = NULL;
    aigw_cf_reader_t rd = { .max_snapshot = dp.max_payload };
    SSL *ssl = SSL_new(dp.ctx);
    if (!ssl)
        goto out;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, dp.sni);
    if (dp.check_host)
        SSL_set1_host(ssl, dp.sni);
    uint64_t deadline = now_ms() + IO_MS;
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        if (ssl_wait(ssl, fd, r, deadline) != 0) {
            ssl_why(ssl, "TLS handshake with the control plane failed", err, sizeof(err));
            AIGW_LOG(AIGW_LOG_ERR, "cluster: %s", err);
            goto out;
        }
    }
    X509 *peer = SSL_get1_peer_certificate(ssl);
    cp_pub = peer ? X509_get_pubkey(peer) : NULL;
    X509_free(peer);
    if (!cp_pub) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: the control plane presented no usable certificate");
        goto out;
    }
    json_t *hello = json_pack("{s:s, s:s, s:s, s:s}", "node_id", dp.node_id, "hostname",
                              dp.hostname, "version", AIGW_VERSION, "config_hash",
                              dp.running_hash);
    char *hs = hello ? json_dumps(hello, JSON_COMPACT) : NULL;
    json_decref(hello);
    int sr = hs ? send_frame(ssl, fd, AIGW_CF_HELLO, hs, strlen(hs)) : -1;
    free(hs);
    if (sr != 0) {
        ssl_why(ssl, "cannot greet the control plane", err, sizeof(err));
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s", err);
        goto out;
    }
    uint64_t next_ping = now_ms() + (uint64_t)dp.ping_ms, last_rx = now_ms();
    int announced = 0;
    uint8_t buf[16384];
    for (;;) {
        uint64_t now = now_ms();
        if (now >= next_ping) {
            if (send_frame(ssl, fd, AIGW_CF_PING, dp.running_hash, strlen(dp.running_hash)) != 0) {
                ssl_why(ssl, "lost the control plane", err, sizeof(err));
                AIGW_LOG(AIGW_LOG_WARN, "cluster: %s; the last configuration stays in use", err);
                rc = worked ? 0 : -1;
                goto out;
            }
            next_ping = now + (uint64_t)dp.ping_ms;
        }
        if (now - last_rx > (uint64_t)dp.ping_ms * 3 / 2) {
            AIGW_LOG(AIGW_LOG_WARN, "cluster: no word from the control plane for %.1f s; "
                     "reconnecting (the last configuration stays in use)",
                     (double)(now - last_rx) / 1000.0);
            rc = 0;
            goto out;
        }
        int w = SSL_pending(ssl) > 0 ? 1 : wait_fd(fd, POLLIN, (int)(next_ping - now));
        if (w < 0) {
            rc = 0;
            goto out;
        }
        if (w == 0)
            continue;
        for (;;) {
            ERR_clear_error();
            int r = SSL_read(ssl, buf, sizeof(buf));
            if (r <= 0) {
                int e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    break;
                ssl_why(ssl, "lost the control plane", err, sizeof(err));
                AIGW_LOG(worked ? AIGW_LOG_WARN : AIGW_LOG_ERR,
                         "cluster: %s; the last configuration stays in use", err);
                rc = worked ? 0 : -1;
                goto out;
            }
            last_rx = now_ms();
            if (!announced) {
                AIGW_LOG(AIGW_LOG_NOTICE, "cluster: connected to the control plane at %s:%s",
                         dp.host, dp.port);
                announced = 1;
            }
            worked = 1;
            size_t off = 0;
            while (off < (size_t)r) {
                size_t used = 0;
                int fr = aigw_cf_feed(&rd, buf + off, (size_t)r - off, &used, err, sizeof(err));
                off += used;
                if (fr < 0) {
                    AIGW_LOG(AIGW_LOG_ERR, "cluster: from the control plane: %s; the last "
                             "configuration stays in use", err);
                    rc = 0;
                    goto out;
                }
                if (fr == 0)
                    continue;
                if (rd.type == AIGW_CF_SNAPSHOT) {
                    apply(rd.payload, rd.len, cp_pub, 0);
                    last_rx = now_ms();
                    /* Tell the CP at once what we run now. */
                    next_ping = 0;
                } else if (rd.type == AIGW_CF_REFUSE) {
                    AIGW_LOG(AIGW_LOG_ERR, "cluster: the control plane refused this data plane: "
                             "%.*s", (int)(rd.len > 400 ? 400 : rd.len),
                             rd.payload ? (const char *)rd.payload : "");
                    aigw_cf_reader_next(&rd);
                    rc = -2;
                    goto out;
                } else if (rd.type != AIGW_CF_PONG) {
                    AIGW_LOG(AIGW_LOG_ERR, "cluster: unexpected frame type %d from the control "
                             "plane", rd.type);
                    aigw_cf_reader_next(&rd);
                    rc = 0;
                    goto out;
                }
                aigw_cf_reader_next(&rd);
            }
        }
    }
out:
    aigw_cf_reader_free(&rd);
    EVP_PKEY_free(cp_pub);
    if (ssl) {
        ERR_clear_error();
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    ERR_clear_error();
    close(fd);
    return rc;
}

static void *dp_main(void *arg)
{
    (void)arg;
    aigw_log_thread_name = "cluster";
    aigw_log_thread_file = AIGW_LOGF_PROXY_ERROR;
    int attempt = 0;
    while (!stopping()) {
        int r = session();
        if (stopping())
            break;
        attempt = r == 0 ? 0 : attempt + 1;
        uint64_t cap = 1000u << (attempt > 4 ? 4 : attempt);
        if (r == -2)
            cap = 60000;
        if (cap > BACKOFF_MAX_MS && r != -2)
            cap = BACKOFF_MAX_MS;
        unsigned rnd = 0;
        RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
        int delay = (int)(cap / 2 + rnd % (cap / 2 + 1));
        struct pollfd pf = { .fd = dp.wake, .events = POLLIN };
        poll(&pf, 1, delay);
    }
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------ */

static void dp_cleanup(void)
{
    SSL_CTX_free(dp.ctx);
    dp.ctx = NULL;
    EVP_PKEY_free(dp.own_pub);
    dp.own_pub = NULL;
    if (dp.wake >= 0)
        close(dp.wake);
    dp.wake = -1;
}

/* Reads the settings and builds the TLS context and key. 0, or -1 with err. */
static int configure(const aigw_conf_t *c, char *err, size_t errlen)
{
    const char *cpa = c->cluster_control_plane;
    const char *colon = strrchr(cpa, ':');
    const char *h = cpa;
    size_t hl = colon ? (size_t)(colon - cpa) : 0;
    if (hl >= 2 && cpa[0] == '[' && cpa[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || hl == 0 || hl >= sizeof(dp.host) || !end || *end || port < 1 || port > 65535) {
        snprintf(err, errlen, "invalid value '%s' for cluster_control_plane: expected host:port",
                 cpa);
        return -1;
    }
    memcpy(dp.host, h, hl);
    dp.host[hl] = '\0';
    snprintf(dp.port, sizeof(dp.port), "%ld", port);
    dp.shared = c->cluster_mtls == AIGW_MTLS_SHARED;
    if (dp.shared) {
        aigw_strlcpy(dp.sni, "kong_clustering", sizeof(dp.sni));
        dp.check_host = 0;
    } else {
        aigw_strlcpy(dp.sni, c->cluster_server_name ? c->cluster_server_name : dp.host,
                     sizeof(dp.sni));
        dp.check_host = 1;
    }
    snprintf(dp.cache_path, sizeof(dp.cache_path), "%s/%s", c->prefix, AIGW_CLUSTER_CACHE_FILE);
    dp.max_payload = c->cluster_max_payload > UINT32_MAX ? UINT32_MAX : c->cluster_max_payload;
    dp.ping_ms = c->cluster_ping_interval * 1000;
    dp.ctx = aigw_cf_ssl_ctx(c, 0, err, errlen);
    if (!dp.ctx)
        return -1;
    dp.own_pub = aigw_cf_load_cert_pubkey(c->cluster_cert, err, errlen);
    if (!dp.own_pub) {
        SSL_CTX_free(dp.ctx);
        dp.ctx = NULL;
        return -1;
    }
    return 0;
}

int aigw_cluster_dp_check(const aigw_conf_t *c, char *err, size_t errlen)
{
    if (configure(c, err, errlen) != 0)
        return -1;
    dp_cleanup();
    return 0;
}

int aigw_cluster_dp_start(const aigw_conf_t *c, const char *node_id, const char *hostname,
                          char *err, size_t errlen)
{
    aigw_strlcpy(dp.node_id, node_id, sizeof(dp.node_id));
    aigw_strlcpy(dp.hostname, hostname, sizeof(dp.hostname));
    dp.running_hash[0] = '\0';
    atomic_store(&dp.stop, 0);
    if (configure(c, err, errlen) != 0)
        return -1;
    dp.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (dp.wake < 0) {
        snprintf(err, errlen, "cluster: cannot start: %s", strerror(errno));
        goto fail;
    }
    load_cache();
    if (pthread_create(&dp.tid, NULL, dp_main, NULL) != 0) {
        snprintf(err, errlen, "cluster: cannot start its thread");
        goto fail;
    }
    dp.running = 1;
    AIGW_LOG(AIGW_LOG_NOTICE, "cluster: data plane %s connecting to the control plane at %s:%s "
             "(TLS 1.3, cluster_mtls = %s)", dp.node_id, dp.host, dp.port,
             dp.shared ? "shared" : "pki");
    return 0;
fail:
    dp_cleanup();
    return -1;
}

void aigw_cluster_dp_stop(void)
{
    if (!dp.running)
        return;
    atomic_store(&dp.stop, 1);
    uint64_t one = 1;
    ssize_t w = write(dp.wake, &one, sizeof(one));
    (void)w;
    pthread_join(dp.tid, NULL);
    dp.running = 0;
    dp_cleanup();
}
