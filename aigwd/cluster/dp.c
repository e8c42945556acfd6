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
 * A DELTA (cluster/proto.h) is checked against the configuration in use and rebuilt into
 * the whole configuration before any of that; one that does not apply (another base, a bad
 * signature) makes the DP ask for the whole snapshot (RESYNC).
 *
 * The cache file: "AIGWDPC2" | generation (16 random bytes, new each time the file is
 * written) | length of the CP's public key (4, BE) | that key (DER SubjectPublicKeyInfo) |
 * the SNAPSHOT payload as received ("AIGWDPC1" files, without the generation, are read
 * too). Deltas are not cached whole: each is appended to the journal beside it before it
 * is applied, "AIGWDPJ1" | the cache's generation | records of length (4, BE) + DELTA
 * payload as received, fsync'd. At start the cache is verified the same way as from the CP
 * (shared mode: with our own cluster_cert's key; pki: with the key stored beside it), then
 * the journal's deltas in order, if the journal belongs to that cache file; a torn or
 * unverifiable tail is cut off. The CP sends the whole snapshot again after a quiet second
 * (a checkpoint), which replaces the cache and drops the journal. */
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
#include <sys/uio.h>
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
#define CACHE_MAGIC "AIGWDPC2"
#define CACHE_MAGIC_V1 "AIGWDPC1"
#define JOURNAL_MAGIC "AIGWDPJ1"
#define GEN_LEN 16
#define JOURNAL_MAX_RECORDS 64   /* the CP sends at most 64 deltas in a row (cp.c) */

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
    char journal_path[4220];
    uint64_t max_payload;
    int ping_ms;
    _Atomic int stop;
    /* cluster thread only after start */
    char running_hash[65];
    char cached_hash[65];       /* the configuration in the cache file */
    uint8_t cache_gen[GEN_LEN];
    int journal_ok;             /* cache + journal on disk give the running configuration */
    int journal_exists;         /* a journal of this cache file is on disk */
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

/* A configuration checked and rebuilt from a payload, not yet loaded. */
typedef struct decoded {
    long long version;
    char hash[65];
    char *json;
    size_t len;
} decoded_t;

/* A SNAPSHOT or DELTA payload (type) checked with pub; a DELTA against base (the JSON in use,
 * sha256 hex base_hash; NULL when there is none). 0, or -1 with err. */
static int decode(int type, const uint8_t *p, size_t n, EVP_PKEY *pub, const char *base,
                  size_t base_len, const char *base_hash, decoded_t *d, char *err,
                  size_t errlen)
{
    if (type == AIGW_CF_DELTA)
        return aigw_cf_delta_decode(p, n, pub, base, base_len, base_hash, &d->version, d->hash,
                                    &d->json, &d->len, err, errlen);
    return aigw_cf_snapshot_decode(p, n, pub, &d->version, d->hash, &d->json, &d->len, err,
                                   errlen);
}

/* Writes a SNAPSHOT payload (hash) as the cache, with a new generation; the journal of the
 * previous cache file no longer applies and goes. */
static void persist_snapshot(const uint8_t *p, size_t n, EVP_PKEY *pub, const char *hash)
{
    unsigned char *der = NULL;
    int dl = i2d_PUBKEY(pub, &der);
    size_t head = 8 + GEN_LEN + 4;
    size_t total = head + (dl > 0 ? (size_t)dl : 0) + n;
    uint8_t *buf = dl > 0 ? malloc(total) : NULL;
    uint8_t gen[GEN_LEN];
    int ok = buf && RAND_bytes(gen, GEN_LEN) == 1;
    if (ok) {
        memcpy(buf, CACHE_MAGIC, 8);
        memcpy(buf + 8, gen, GEN_LEN);
        aigw_cf_put32(buf + 8 + GEN_LEN, (uint32_t)dl);
        memcpy(buf + head, der, (size_t)dl);
        memcpy(buf + head + (size_t)dl, p, n);
        ok = aigw_write_file_atomic(dp.cache_path, buf, total, 0600) == 0;
    }
    if (ok) {
        memcpy(dp.cache_gen, gen, GEN_LEN);
        aigw_strlcpy(dp.cached_hash, hash, sizeof(dp.cached_hash));
        if (dp.journal_exists && unlink(dp.journal_path) != 0 && errno != ENOENT)
            AIGW_LOG(AIGW_LOG_WARN, "cluster: cannot remove %s: %s", dp.journal_path,
                     strerror(errno));
        dp.journal_exists = 0;
        dp.journal_ok = 1;
    } else {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: cannot write %s: %s; a restart without the control "
                 "plane would not find this configuration", dp.cache_path, strerror(errno));
        dp.journal_ok = 0;
    }
    free(buf);
    OPENSSL_free(der);
    ERR_clear_error();
}

/* Appends a DELTA payload to the journal (creating it for the cache file's generation),
 * fsync'd. When the cache does not hold its base, or on a write error, nothing on disk gives
 * the new configuration until the next checkpoint: logged. */
static void persist_delta(const uint8_t *p, size_t n)
{
    if (!dp.journal_ok) {
        AIGW_LOG(AIGW_LOG_WARN, "cluster: a delta was not cached: %s does not hold the "
                 "configuration it applies to (the control plane sends the whole one after a "
                 "quiet second)", dp.cache_path);
        return;
    }
    uint8_t len[4];
    aigw_cf_put32(len, (uint32_t)n);
    int ok;
    if (!dp.journal_exists) {
        size_t total = 8 + GEN_LEN + 4 + n;
        uint8_t *buf = malloc(total);
        ok = buf != NULL;
        if (ok) {
            memcpy(buf, JOURNAL_MAGIC, 8);
            memcpy(buf + 8, dp.cache_gen, GEN_LEN);
            memcpy(buf + 8 + GEN_LEN, len, 4);
            memcpy(buf + 8 + GEN_LEN + 4, p, n);
            ok = aigw_write_file_atomic(dp.journal_path, buf, total, 0600) == 0;
        }
        free(buf);
        dp.journal_exists = ok;
    } else {
        int fd = open(dp.journal_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        struct iovec iov[2] = { { len, 4 }, { (void *)(uintptr_t)p, n } };
        ok = fd >= 0 && writev(fd, iov, 2) == (ssize_t)(n + 4) && fdatasync(fd) == 0;
        if (fd >= 0)
            close(fd);
    }
    if (!ok) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: cannot write %s: %s; a restart without the control "
                 "plane would come back to an older configuration", dp.journal_path,
                 strerror(errno));
        dp.journal_ok = 0;
    }
}

/* Loads d (its JSON is taken) next to the runtime serving; from the CP, persists the payload
 * it came in (p, n: type SNAPSHOT or DELTA) first; then publishes it. t0: when its check
 * began. 0, or -1 (logged; the previous configuration stays in use). */
static int install(decoded_t *d, const char *src, int type, const uint8_t *p, size_t n,
                   EVP_PKEY *pub, int from_cache, uint64_t t0)
{
    char err[512];
    uint64_t t1 = uv_hrtime();
    aigw_snapshot_t *snap = calloc(1, sizeof(*snap));
    if (!snap) {
        free(d->json);
        return -1;
    }
    atomic_store(&snap->refs, 1);
    snap->version = d->version;
    memcpy(snap->hash, d->hash, sizeof(snap->hash));
    snap->json = d->json;
    snap->len = d->len;
    aigw_runtime_t *rt = aigw_runtime_load(snap, err, sizeof(err));
    if (!rt) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s %lld (sha256 %.16s) not loaded: %s; the previous "
                 "configuration stays in use", src, d->version, d->hash, err);
        aigw_snapshot_unref(snap);
        malloc_trim(0);
        return -1;
    }
    uint64_t t2 = uv_hrtime();
    /* Persist before serving: a restart without the CP comes back to exactly this. */
    if (!from_cache && type == AIGW_CF_SNAPSHOT)
        persist_snapshot(p, n, pub, d->hash);
    else if (!from_cache)
        persist_delta(p, n);
    uint64_t t3 = uv_hrtime();
    aigw_runtime_publish(rt);
    aigw_healthcheck_set(rt->balancers);
    AIGW_LOG(AIGW_LOG_NOTICE, "cluster: %s %lld (sha256 %.16s) in use: %zu services, %zu "
             "routes, %.1f ms (verify %.1f, load %.1f, cache %.1f; %zu entities as before)",
             src, d->version, d->hash, rt->n_services, rt->n_routes, (double)(t3 - t0) / 1e6,
             (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6,
             aigw_runtime_reused(rt));
    aigw_runtime_unref(rt);
    aigw_snapshot_publish(snap);     /* the base of the next delta; /status configuration_hash */
    aigw_snapshot_unref(snap);
    aigw_strlcpy(dp.running_hash, d->hash, sizeof(dp.running_hash));
    malloc_trim(0);
    return 0;
}

/* A SNAPSHOT or DELTA payload from the CP. pub: the key that must have signed it. 0 applied
 * or already running, -1 rejected (logged), -2 a delta that does not apply (ask for the
 * whole snapshot). */
static int apply(int type, const uint8_t *p, size_t n, EVP_PKEY *pub)
{
    char err[512];
    const char *src = type == AIGW_CF_DELTA ? "configuration delta from the control plane"
                                            : "configuration from the control plane";
    uint64_t t0 = uv_hrtime();
    decoded_t d = { 0 };
    aigw_snapshot_t *base = aigw_snapshot_current();
    int rc = decode(type, p, n, pub, base ? base->json : NULL, base ? base->len : 0,
                    base ? base->hash : "", &d, err, sizeof(err));
    aigw_snapshot_unref(base);
    if (rc != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s rejected: %s; the previous configuration stays "
                 "in use", src, err);
        return type == AIGW_CF_DELTA ? -2 : -1;
    }
    if (strcmp(d.hash, dp.running_hash) == 0) {
        free(d.json);
        /* the whole snapshot of what we run (a checkpoint after deltas): only cache it */
        if (type == AIGW_CF_SNAPSHOT && (strcmp(dp.cached_hash, d.hash) != 0 ||
                                         dp.journal_exists || !dp.journal_ok)) {
            persist_snapshot(p, n, pub, d.hash);
            AIGW_LOG(AIGW_LOG_INFO, "cluster: configuration %lld (sha256 %.16s) cached whole",
                     d.version, d.hash);
        }
        return 0;
    }
    return install(&d, src, type, p, n, pub, 0, t0);
}

/* At start: the cache file, then the deltas of its journal (one load, of the last). */
static void load_cache(void)
{
    char *text = NULL, *jtext = NULL;
    size_t len = 0, jlen = 0;
    decoded_t d = { 0 };
    char err[512];
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
    int v1 = len >= 8 && memcmp(p, CACHE_MAGIC_V1, 8) == 0;
    size_t head = v1 ? 12 : 8 + GEN_LEN + 4;
    if (len < head || (!v1 && memcmp(p, CACHE_MAGIC, 8) != 0)) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s is not a configuration cache; ignoring it",
                 dp.cache_path);
        goto out;
    }
    size_t kl = aigw_cf_get32(p + head - 4);
    if (kl > len - head) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s is truncated; ignoring it", dp.cache_path);
        goto out;
    }
    const unsigned char *kp = p + head;
    stored = d2i_PUBKEY(NULL, &kp, (long)kl);
    EVP_PKEY *pub = dp.shared ? dp.own_pub : stored;
    if (!pub) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s holds no usable key; ignoring it", dp.cache_path);
        goto out;
    }
    AIGW_LOG(AIGW_LOG_NOTICE, "cluster: found a cached configuration in %s, loading it",
             dp.cache_path);
    uint64_t t0 = uv_hrtime();
    if (decode(AIGW_CF_SNAPSHOT, p + head + kl, len - head - kl, pub, NULL, 0, "", &d, err,
               sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: cached configuration rejected: %s", err);
        goto out;
    }
    memset(dp.cache_gen, 0, GEN_LEN);
    if (!v1)
        memcpy(dp.cache_gen, p + 8, GEN_LEN);
    aigw_strlcpy(dp.cached_hash, d.hash, sizeof(dp.cached_hash));

    /* the journal: deltas since that file was written, if it is this file's */
    size_t jmax = ((size_t)dp.max_payload + 4) * JOURNAL_MAX_RECORDS + 8 + GEN_LEN;
    if (aigw_read_file(dp.journal_path, jmax, &jtext, &jlen) == 0) {
        const uint8_t *j = (const uint8_t *)jtext;
        size_t off = 8 + GEN_LEN, used = 0, records = 0;
        if (jlen < off || memcmp(j, JOURNAL_MAGIC, 8) != 0 ||
            memcmp(j + 8, dp.cache_gen, GEN_LEN) != 0) {
            AIGW_LOG(AIGW_LOG_NOTICE, "cluster: %s does not follow %s; ignoring it",
                     dp.journal_path, dp.cache_path);
            unlink(dp.journal_path);
        } else {
            used = off;
            while (jlen - off >= 4) {
                size_t rl = aigw_cf_get32(j + off);
                decoded_t nd = { 0 };
                if (rl > jlen - off - 4)
                    break;   /* torn by a crash while it was appended */
                if (decode(AIGW_CF_DELTA, j + off + 4, rl, pub, d.json, d.len, d.hash, &nd, err,
                           sizeof(err)) != 0) {
                    AIGW_LOG(AIGW_LOG_ERR, "cluster: %s: delta %zu rejected: %s",
                             dp.journal_path, records + 1, err);
                    break;
                }
                free(d.json);
                d = nd;
                off += 4 + rl;
                used = off;
                records++;
            }
            if (used != jlen) {
                AIGW_LOG(AIGW_LOG_WARN, "cluster: %s: %zu bytes after delta %zu cut off",
                         dp.journal_path, jlen - used, records);
                if (truncate(dp.journal_path, (off_t)used) != 0)
                    AIGW_LOG(AIGW_LOG_ERR, "cluster: cannot truncate %s: %s", dp.journal_path,
                             strerror(errno));
            }
            dp.journal_exists = 1;
            if (records)
                AIGW_LOG(AIGW_LOG_NOTICE, "cluster: %zu cached delta(s) applied from %s",
                         records, dp.journal_path);
        }
    } else if (errno != ENOENT) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: cannot read %s: %s", dp.journal_path, strerror(errno));
    }
    dp.journal_ok = install(&d, "cached configuration", AIGW_CF_SNAPSHOT, NULL, 0, pub, 1,
                            t0) == 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(stored);
    free(text);
    free(jtext);
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
                if (rd.type == AIGW_CF_SNAPSHOT || rd.type == AIGW_CF_DELTA) {
                    if (apply(rd.type, rd.payload, rd.len, cp_pub) == -2 &&
                        send_frame(ssl, fd, AIGW_CF_RESYNC, NULL, 0) != 0) {
                        aigw_cf_reader_next(&rd);
                        rc = 0;
                        goto out;
                    }
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
    snprintf(dp.journal_path, sizeof(dp.journal_path), "%s.journal", dp.cache_path);
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
    dp.running_hash[0] = dp.cached_hash[0] = '\0';
    dp.journal_ok = dp.journal_exists = 0;
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
