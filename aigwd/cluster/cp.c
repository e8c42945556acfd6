/* aigwd/cluster/cp.c: the control plane's side of hybrid mode (see cluster.h).
 *
 * One cluster thread runs a poll() loop over: an eventfd (new snapshot, stop), the
 * cluster_listen sockets, one non-blocking TLS link per data plane and, with PostgreSQL, a
 * LISTEN aigw_config connection (notify.c). The snapshot builder hands a new snapshot over
 * with a reference (on_snapshot: a pointer swap under a mutex and an eventfd write, never a
 * block); the cluster thread compresses and signs it once, and queues the same encoded frame
 * (reference-counted, cluster thread only) on every link.
 *
 * The table of known data planes (for the admin API) is the only state shared with another
 * thread: it is guarded by `mu`. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <uv.h>
#include "cluster/cluster.h"
#include "cluster/notify.h"
#include "cluster/proto.h"
#include "common/str.h"
#include "core/log.h"
#include "snapshot/snapshot.h"

#define MAX_LINKS 4096
#define MAX_LISTENERS 8
#define HANDSHAKE_MS 10000
#define WRITE_CHUNK (256u * 1024)
#define MAX_RECORDS 65536

/* An encoded frame shared by the links it is queued on (cluster thread only). */
typedef struct blob {
    int refs;
    uint8_t *data;
    size_t len;
} blob_t;

typedef struct qitem {
    blob_t *b;
    size_t off;
    struct qitem *next;
} qitem_t;

typedef struct link {
    int fd;
    SSL *ssl;
    int handshaken, hello, closing, dead, want_write;
    aigw_cf_reader_t rd;
    qitem_t *q, **q_tail;
    uint64_t opened_ms, last_rx_ms, last_push_ms;
    char ip[64];
    char id[40], hostname[256], version[64];
    char hash[65];          /* what the DP says it runs */
    char pushed[65];        /* the snapshot hash last queued to it */
    int deltas;             /* DELTA frames queued since its last SNAPSHOT */
    long long cert_expiry;
} link_t;

/* A row of GET /clustering/data-planes. */
typedef struct record {
    char id[40], ip[64], hostname[256], version[64], sync_status[40];
    char hash[65];
    long long last_seen, updated_at, cert_expiry;
} record_t;

static struct {
    int running;
    pthread_t tid;
    int wake;                          /* eventfd */
    int lfd[MAX_LISTENERS];
    size_t n_lfd;
    SSL_CTX *ctx;
    EVP_PKEY *key;
    uint64_t max_payload;
    int ping_ms, purge_s;
    void (*on_remote_change)(void);
    aigw_notify_t *notify;

    pthread_mutex_t mu;                /* guards: pending, stop, records */
    aigw_snapshot_t *pending;
    int stop;
    record_t *records;
    size_t n_records, cap_records;
    int is_cp;

    /* cluster thread only */
    link_t **links;
    size_t n_links;
    aigw_snapshot_t *cur_snap;         /* the configuration to push */
    blob_t *cur;                       /* its SNAPSHOT frame, encoded on first need */
    int cur_failed;                    /* and that encoding failed (logged once) */
    char cur_hash[65];
    long long cur_version;
    blob_t *delta;                     /* DELTA frame from delta_base to cur_snap, or NULL */
    char delta_base[65];
} cp = { .mu = PTHREAD_MUTEX_INITIALIZER, .wake = -1 };

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void blob_unref(blob_t *b)
{
    if (b && --b->refs == 0) {
        free(b->data);
        free(b);
    }
}

static blob_t *blob_new(uint8_t *data, size_t len)
{
    blob_t *b = malloc(sizeof(*b));
    if (!b) {
        free(data);
        return NULL;
    }
    b->refs = 1;
    b->data = data;
    b->len = len;
    return b;
}

/* ---- the data-plane table --------------------------------------------------------------- */

static record_t *record_find(const char *id)
{
    for (size_t i = 0; i < cp.n_records; i++)
        if (strcmp(cp.records[i].id, id) == 0)
            return &cp.records[i];
    return NULL;
}

/* Copies what the link knows into its row (creating it). */
static void record_update(const link_t *l, const char *sync_status)
{
    pthread_mutex_lock(&cp.mu);
    record_t *r = record_find(l->id);
    if (!r && cp.n_records < MAX_RECORDS) {
        if (cp.n_records == cp.cap_records) {
            size_t nc = cp.cap_records ? cp.cap_records * 2 : 16;
            record_t *nr = realloc(cp.records, nc * sizeof(*nr));
            if (nr) {
                cp.records = nr;
                cp.cap_records = nc;
            }
        }
        if (cp.n_records < cp.cap_records) {
            r = &cp.records[cp.n_records++];
            memset(r, 0, sizeof(*r));
            aigw_strlcpy(r->id, l->id, sizeof(r->id));
            aigw_strlcpy(r->sync_status, "unknown", sizeof(r->sync_status));
        }
    }
    if (r) {
        aigw_strlcpy(r->ip, l->ip, sizeof(r->ip));
        aigw_strlcpy(r->hostname, l->hostname, sizeof(r->hostname));
        aigw_strlcpy(r->version, l->version, sizeof(r->version));
        aigw_strlcpy(r->hash, l->hash, sizeof(r->hash));
        if (sync_status)
            aigw_strlcpy(r->sync_status, sync_status, sizeof(r->sync_status));
        r->last_seen = (long long)time(NULL);
        r->updated_at = r->last_seen;
        r->cert_expiry = l->cert_expiry;
    }
    pthread_mutex_unlock(&cp.mu);
}

static void records_purge(void)
{
    long long now = (long long)time(NULL);
    pthread_mutex_lock(&cp.mu);
    for (size_t i = 0; i < cp.n_records;) {
        if (now - cp.records[i].last_seen >= cp.purge_s)
            cp.records[i] = cp.records[--cp.n_records];
        else
            i++;
    }
    pthread_mutex_unlock(&cp.mu);
}

static void hash32(const char *h, char out[33])
{
    if (!h[0]) {
        memset(out, '0', 32);
    } else {
        memcpy(out, h, 32);
    }
    out[32] = '\0';
}

json_t *aigw_cluster_data_planes(void)
{
    pthread_mutex_lock(&cp.mu);
    if (!cp.is_cp) {
        pthread_mutex_unlock(&cp.mu);
        return NULL;
    }
    long long now = (long long)time(NULL);
    json_t *arr = json_array();
    for (size_t i = 0; i < cp.n_records; i++) {
        const record_t *r = &cp.records[i];
        char h[33];
        hash32(r->hash, h);
        long long ttl = cp.purge_s - (now - r->last_seen);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:{}, s:[]}",
                              "id", r->id, "ip", r->ip, "hostname", r->hostname,
                              "version", r->version, "sync_status", r->sync_status,
                              "config_hash", h, "last_seen", (json_int_t)r->last_seen,
                              "updated_at", (json_int_t)r->updated_at,
                              "ttl", (json_int_t)(ttl > 0 ? ttl : 0), "labels",
                              "rpc_capabilities");
        if (o && r->cert_expiry)
            json_object_set_new(o, "cert_details",
                                json_pack("{s:I}", "expiry_timestamp",
                                          (json_int_t)r->cert_expiry));
        else if (o)
            json_object_set_new(o, "cert_details", json_object());
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&cp.mu);
    return json_pack("{s:o, s:n}", "data", arr, "next");
}

json_t *aigw_cluster_status(void)
{
    pthread_mutex_lock(&cp.mu);
    if (!cp.is_cp) {
        pthread_mutex_unlock(&cp.mu);
        return NULL;
    }
    json_t *o = json_object();
    for (size_t i = 0; i < cp.n_records; i++) {
        const record_t *r = &cp.records[i];
        char h[33];
        hash32(r->hash, h);
        json_object_set_new(o, r->id,
                            json_pack("{s:s, s:s, s:s, s:I}", "config_hash", h, "hostname",
                                      r->hostname, "ip", r->ip, "last_seen",
                                      (json_int_t)r->last_seen));
    }
    pthread_mutex_unlock(&cp.mu);
    return o;
}

/* ---- links ------------------------------------------------------------------------------- */

static const char *who(const link_t *l, char *buf, size_t cap)
{
    if (l->id[0])
        snprintf(buf, cap, "data plane %s (%s, %s)", l->id, l->hostname, l->ip);
    else
        snprintf(buf, cap, "data plane at %s", l->ip);
    return buf;
}

static void enqueue(link_t *l, blob_t *b)
{
    qitem_t *q = malloc(sizeof(*q));
    if (!q) {
        l->dead = 1;
        return;
    }
    b->refs++;
    q->b = b;
    q->off = 0;
    q->next = NULL;
    *l->q_tail = q;
    l->q_tail = &q->next;
}

static void enqueue_small(link_t *l, int type, const void *payload, size_t len)
{
    size_t flen;
    uint8_t *f = aigw_cf_frame(type, payload, len, &flen);
    blob_t *b = f ? blob_new(f, flen) : NULL;
    if (!b) {
        l->dead = 1;
        return;
    }
    enqueue(l, b);
    blob_unref(b);
}

/* The SNAPSHOT frame of cp.cur_snap, encoded when first needed: while every DP runs the
 * previous configuration, a change goes out as a DELTA and this waits for a DP that
 * connects, fails a delta, or is due a checkpoint. 0, or -1 (logged once per snapshot). */
static int ensure_full(void)
{
    aigw_snapshot_t *s = cp.cur_snap;
    if (cp.cur)
        return 0;
    if (!s || cp.cur_failed)
        return -1;
    uint64_t t0 = uv_hrtime();
    uint8_t *f = NULL;
    size_t flen = 0;
    char err[256];
    cp.cur_failed = 1;
    if (aigw_cf_snapshot_encode(s->json, s->len, s->version, s->hash, cp.key, &f, &flen, err,
                                sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: configuration %lld not pushed: %s", s->version, err);
        return -1;
    }
    if (flen - AIGW_CF_HDR > cp.max_payload) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: configuration %lld not pushed: its compressed size "
                 "%zu bytes exceeds cluster_max_payload (%llu); data planes keep the previous "
                 "one", s->version, flen - AIGW_CF_HDR, (unsigned long long)cp.max_payload);
        free(f);
        return -1;
    }
    if (!(cp.cur = blob_new(f, flen)))
        return -1;
    cp.cur_failed = 0;
    AIGW_LOG(AIGW_LOG_INFO, "cluster: configuration %lld (%zu bytes, %zu compressed, %.1f ms) "
             "encoded", s->version, s->len, flen, (double)(uv_hrtime() - t0) / 1e6);
    return 0;
}

/* A DP gets at most this many deltas in a row; the next change goes whole (its cache
 * replays its deltas at start: a bounded journal). */
#define MAX_DELTAS 64
/* A DP that received deltas is sent the whole snapshot it runs after this much quiet, so
 * that its cache holds one snapshot again (see dp.c). */
#define CHECKPOINT_MS 1000

/* Queues the current configuration unless the DP runs it or has it queued already: as a
 * DELTA when the DP has (or will have, frames being in order) the delta's base, else
 * whole. */
static int takes_delta(const link_t *l)
{
    return cp.delta && l->deltas < MAX_DELTAS && strcmp(l->pushed, cp.delta_base) == 0;
}

static void push(link_t *l)
{
    if (!cp.cur_snap || !l->hello || l->closing || strcmp(l->pushed, cp.cur_hash) == 0)
        return;
    if (takes_delta(l)) {
        enqueue(l, cp.delta);
        l->deltas++;
    } else {
        if (ensure_full() != 0)
            return;
        enqueue(l, cp.cur);
        l->deltas = 0;
    }
    aigw_strlcpy(l->pushed, cp.cur_hash, sizeof(l->pushed));
    l->last_push_ms = now_ms();
}

static void link_free(link_t *l)
{
    if (l->ssl) {
        if (l->handshaken && !l->dead) {
            ERR_clear_error();
            SSL_shutdown(l->ssl);
        }
        SSL_free(l->ssl);
    }
    if (l->fd >= 0)
        close(l->fd);
    while (l->q) {
        qitem_t *n = l->q->next;
        blob_unref(l->q->b);
        free(l->q);
        l->q = n;
    }
    aigw_cf_reader_free(&l->rd);
    free(l);
}

static int valid_token(const char *s, size_t max, int uuidish)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (uuidish ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                        (c >= 'A' && c <= 'F') || c == '-')
                    : (c < 0x20 || c == 0x7f))
            return 0;
    }
    return 1;
}

static int valid_hash(const char *s)
{
    size_t n = strlen(s);
    if (n != 0 && n != 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void on_hello(link_t *l, const uint8_t *p, size_t n)
{
    char w[400];
    json_error_t je;
    json_t *o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
    const char *id = json_string_value(json_object_get(o, "node_id"));
    const char *host = json_string_value(json_object_get(o, "hostname"));
    const char *ver = json_string_value(json_object_get(o, "version"));
    const char *hash = json_string_value(json_object_get(o, "config_hash"));
    if (!id || !host || !ver || !valid_token(id, sizeof(l->id), 1) ||
        !valid_token(host, sizeof(l->hostname), 0) || !valid_token(ver, sizeof(l->version), 0) ||
        (hash && !valid_hash(hash))) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s sent a malformed hello; closing the link",
                 who(l, w, sizeof(w)));
        json_decref(o);
        l->dead = 1;
        return;
    }
    aigw_strlcpy(l->id, id, sizeof(l->id));
    aigw_strlcpy(l->hostname, host, sizeof(l->hostname));
    aigw_strlcpy(l->version, ver, sizeof(l->version));
    aigw_strlcpy(l->hash, hash ? hash : "", sizeof(l->hash));
    json_decref(o);
    l->hello = 1;
    char why[300];
    if (!aigw_cf_version_compatible(AIGW_VERSION, l->version, why, sizeof(why))) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s refused: %s", who(l, w, sizeof(w)), why);
        record_update(l, "kong_version_incompatible");
        enqueue_small(l, AIGW_CF_REFUSE, why, strlen(why));
        l->closing = 1;
        return;
    }
    AIGW_LOG(AIGW_LOG_NOTICE, "cluster: %s connected, version %s, running %.16s",
             who(l, w, sizeof(w)), l->version, l->hash[0] ? l->hash : "nothing");
    record_update(l, "normal");
    /* what it runs: ours already (nothing to send), the base of our delta, or other */
    aigw_strlcpy(l->pushed, l->hash, sizeof(l->pushed));
    push(l);
}

static int queued(const link_t *l, const blob_t *b)
{
    for (const qitem_t *q = l->q; q; q = q->next)
        if (q->b == b)
            return 1;
    return 0;
}

static void on_frame(link_t *l, int type, const uint8_t *p, size_t n)
{
    char w[400];
    if (!l->hello && type != AIGW_CF_HELLO) {
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s spoke before its hello; closing the link",
                 who(l, w, sizeof(w)));
        l->dead = 1;
        return;
    }
    switch (type) {
    case AIGW_CF_HELLO:
        if (l->hello) {
            l->dead = 1;
            return;
        }
        on_hello(l, p, n);
        return;
    case AIGW_CF_PING: {
        char h[65];
        if (n != 0 && n != 64) {
            l->dead = 1;
            return;
        }
        memcpy(h, p, n);
        h[n] = '\0';
        if (!valid_hash(h)) {
            l->dead = 1;
            return;
        }
        int changed = strcmp(h, l->hash) != 0;
        aigw_strlcpy(l->hash, h, sizeof(l->hash));
        record_update(l, NULL);
        if (l->closing)
            return;
        enqueue_small(l, AIGW_CF_PONG, NULL, 0);
        if (changed && cp.cur_snap && strcmp(h, cp.cur_hash) == 0)
            AIGW_LOG(AIGW_LOG_INFO, "cluster: %s runs configuration %.16s",
                     who(l, w, sizeof(w)), h);
        /* A DP that still runs something else after an interval: push again (it may have
         * failed to apply; the push is cheap, the frame is shared). */
        if (cp.cur_snap && strcmp(h, cp.cur_hash) != 0 && !queued(l, cp.cur) &&
            !queued(l, cp.delta) && now_ms() - l->last_push_ms > (uint64_t)cp.ping_ms) {
            l->pushed[0] = '\0';
            push(l);
        }
        return;
    }
    case AIGW_CF_RESYNC:
        /* A delta did not apply (the DP logged why): the whole snapshot, unless queued. */
        if (n != 0) {
            l->dead = 1;
            return;
        }
        AIGW_LOG(AIGW_LOG_NOTICE, "cluster: %s asks for the whole configuration",
                 who(l, w, sizeof(w)));
        if (!l->closing && !queued(l, cp.cur)) {
            l->pushed[0] = '\0';
            l->deltas = 0;
            push(l);
        }
        return;
    default:
        AIGW_LOG(AIGW_LOG_ERR, "cluster: %s sent an unexpected frame (type %d); closing the "
                 "link", who(l, w, sizeof(w)), type);
        l->dead = 1;
        return;
    }
}

static void handshake_done(link_t *l)
{
    X509 *peer = SSL_get1_peer_certificate(l->ssl);
    if (peer) {
        const ASN1_TIME *na = X509_get0_notAfter(peer);
        struct tm tm;
        if (na && ASN1_TIME_to_tm(na, &tm) == 1)
            l->cert_expiry = (long long)timegm(&tm);
        X509_free(peer);
    }
}

static void link_flush(link_t *l)
{
    while (l->q && !l->dead) {
        qitem_t *q = l->q;
        size_t left = q->b->len - q->off, chunk = left < WRITE_CHUNK ? left : WRITE_CHUNK;
        ERR_clear_error();
        int r = SSL_write(l->ssl, q->b->data + q->off, (int)chunk);
        if (r > 0) {
            q->off += (size_t)r;
            if (q->off == q->b->len) {
                l->q = q->next;
                if (!l->q)
                    l->q_tail = &l->q;
                blob_unref(q->b);
                free(q);
            }
            continue;
        }
        int e = SSL_get_error(l->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            l->want_write = 1;
            return;
        }
        if (e == SSL_ERROR_WANT_READ)
            return;
        l->dead = 1;
        return;
    }
    l->want_write = 0;
    if (!l->q && l->closing)
        l->dead = 1;
}

static void link_pump(link_t *l)
{
    char w[400];
    if (!l->handshaken) {
        ERR_clear_error();
        int r = SSL_do_handshake(l->ssl);
        if (r != 1) {
            int e = SSL_get_error(l->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                l->want_write = 0;
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                l->want_write = 1;
                return;
            }
            long vr = SSL_get_verify_result(l->ssl);
            unsigned long ec = ERR_peek_error();
            char ebuf[256] = "";
            if (ec)
                ERR_error_string_n(ec, ebuf, sizeof(ebuf));
            ERR_clear_error();
            if (vr != X509_V_OK)
                AIGW_LOG(AIGW_LOG_ERR, "cluster: %s rejected: its certificate is not accepted "
                         "(%s)%s", who(l, w, sizeof(w)),
                         vr == X509_V_ERR_CERT_REJECTED
                             ? "cluster_mtls = shared: it is not the same certificate as "
                               "cluster_cert"
                             : X509_verify_cert_error_string(vr),
                         "");
            else
                AIGW_LOG(AIGW_LOG_ERR, "cluster: TLS handshake with %s failed: %s",
                         who(l, w, sizeof(w)), ebuf[0] ? ebuf : "connection closed");
            l->dead = 1;
            return;
        }
        l->handshaken = 1;
        handshake_done(l);
    }
    uint8_t buf[16384];
    while (!l->dead) {
        ERR_clear_error();
        int r = SSL_read(l->ssl, buf, sizeof(buf));
        if (r > 0) {
            l->last_rx_ms = now_ms();
            size_t off = 0;
            while (off < (size_t)r && !l->dead) {
                size_t used = 0;
                char err[256];
                int fr = aigw_cf_feed(&l->rd, buf + off, (size_t)r - off, &used, err,
                                      sizeof(err));
                off += used;
                if (fr < 0) {
                    AIGW_LOG(AIGW_LOG_ERR, "cluster: %s: %s; closing the link",
                             who(l, w, sizeof(w)), err);
                    l->dead = 1;
                } else if (fr == 1) {
                    on_frame(l, l->rd.type, l->rd.payload, l->rd.len);
                    aigw_cf_reader_next(&l->rd);
                }
            }
            continue;
        }
        int e = SSL_get_error(l->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) {
            l->want_write = 1;
            break;
        }
        if (l->hello)
            AIGW_LOG(AIGW_LOG_NOTICE, "cluster: %s disconnected", who(l, w, sizeof(w)));
        ERR_clear_error();
        l->dead = 1;
    }
    link_flush(l);
}

static void accept_on(int lfd)
{
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (cp.n_links >= MAX_LINKS) {
            AIGW_LOG(AIGW_LOG_ERR, "cluster: %d data plane links open already; refusing one",
                     MAX_LINKS);
            close(fd);
            continue;
        }
        link_t *l = calloc(1, sizeof(*l));
        SSL *ssl = l ? SSL_new(cp.ctx) : NULL;
        if (!ssl) {
            free(l);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->fd = fd;
        l->ssl = ssl;
        SSL_set_fd(ssl, fd);
        SSL_set_accept_state(ssl);
        l->q_tail = &l->q;
        l->rd.max_snapshot = 0;        /* a DP never sends one */
        l->opened_ms = l->last_rx_ms = now_ms();
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, l->ip, sizeof(l->ip));
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, l->ip, sizeof(l->ip));
        cp.links[cp.n_links++] = l;
        link_pump(l);
    }
}

/* A new snapshot from the builder: a delta from the previous one (cheap: most bytes are
 * shared), queued on every link that has the previous one; the others get it whole. */
static void take_pending(void)
{
    pthread_mutex_lock(&cp.mu);
    aigw_snapshot_t *s = cp.pending;
    cp.pending = NULL;
    pthread_mutex_unlock(&cp.mu);
    if (!s)
        return;
    if (cp.cur_snap && strcmp(s->hash, cp.cur_hash) == 0) {
        aigw_snapshot_unref(s);
        return;
    }
    uint64_t t0 = uv_hrtime();
    blob_t *delta = NULL;
    if (cp.cur_snap) {
        uint8_t *f = NULL;
        size_t flen = 0;
        char err[256];
        int r = aigw_cf_delta_encode(cp.cur_snap->json, cp.cur_snap->len, cp.cur_snap->hash,
                                     s->json, s->len, s->version, s->hash, cp.key, &f, &flen,
                                     err, sizeof(err));
        if (r == 0)
            delta = blob_new(f, flen);
        else if (r < 0)
            AIGW_LOG(AIGW_LOG_WARN, "cluster: configuration %lld goes whole: %s", s->version,
                     err);
    }
    blob_unref(cp.delta);
    cp.delta = delta;
    aigw_strlcpy(cp.delta_base, cp.cur_hash, sizeof(cp.delta_base));
    blob_unref(cp.cur);
    cp.cur = NULL;
    cp.cur_failed = 0;
    aigw_snapshot_unref(cp.cur_snap);
    cp.cur_snap = s;
    aigw_strlcpy(cp.cur_hash, s->hash, sizeof(cp.cur_hash));
    cp.cur_version = s->version;
    double enc_ms = (double)(uv_hrtime() - t0) / 1e6;
    size_t pushed = 0, as_delta = 0;
    /* the links that take the delta first: encoding the whole snapshot for the others (tens
     * of ms at 10k routes) must not hold their change back */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < cp.n_links; i++) {
            link_t *l = cp.links[i];
            int d = takes_delta(l);
            if (!l->hello || l->closing || strcmp(l->pushed, cp.cur_hash) == 0 ||
                d != (pass == 0))
                continue;
            push(l);
            link_flush(l);
            pushed++;
            as_delta += d;
        }
    }
    if (delta)
        AIGW_LOG(AIGW_LOG_INFO, "cluster: configuration %lld (%zu bytes; delta %zu bytes, "
                 "%.1f ms) pushed to %zu data plane(s), %zu as a delta", s->version, s->len,
                 delta->len, enc_ms, pushed, as_delta);
    else
        AIGW_LOG(AIGW_LOG_INFO, "cluster: configuration %lld (%zu bytes) pushed to %zu data "
                 "plane(s)", s->version, s->len, pushed);
}

/* Links that took deltas and have been quiet get the whole snapshot they run: the DP
 * stores it as its cache and drops its journal of deltas (it loads nothing). */
static void checkpoint(uint64_t now)
{
    for (size_t i = 0; i < cp.n_links; i++) {
        link_t *l = cp.links[i];
        if (l->deltas > 0 && l->hello && !l->closing && !l->q &&
            now - l->last_push_ms >= CHECKPOINT_MS && strcmp(l->hash, cp.cur_hash) == 0 &&
            strcmp(l->pushed, cp.cur_hash) == 0 && ensure_full() == 0) {
            enqueue(l, cp.cur);
            l->deltas = 0;
            link_flush(l);
        }
    }
}

static void housekeeping(void)
{
    uint64_t now = now_ms();
    for (size_t i = 0; i < cp.n_links; i++) {
        link_t *l = cp.links[i];
        char w[400];
        if (!l->handshaken && now - l->opened_ms > HANDSHAKE_MS) {
            AIGW_LOG(AIGW_LOG_ERR, "cluster: TLS handshake with %s timed out",
                     who(l, w, sizeof(w)));
            l->dead = 1;
        } else if (l->handshaken && now - l->last_rx_ms > (uint64_t)cp.ping_ms * 3 / 2 &&
                   !l->q) {
            AIGW_LOG(AIGW_LOG_WARN, "cluster: %s silent for %.1f s; closing the link",
                     who(l, w, sizeof(w)), (double)(now - l->last_rx_ms) / 1000.0);
            l->dead = 1;
        }
    }
    checkpoint(now);
    records_purge();
}

static void reap(void)
{
    size_t j = 0;
    for (size_t i = 0; i < cp.n_links; i++) {
        if (cp.links[i]->dead)
            link_free(cp.links[i]);
        else
            cp.links[j++] = cp.links[i];
    }
    cp.n_links = j;
}

static void *cp_main(void *arg)
{
    (void)arg;
    aigw_log_thread_name = "cluster";
    aigw_log_thread_file = AIGW_LOGF_ADMIN_ERROR;
    struct pollfd *pf = calloc(MAX_LINKS + MAX_LISTENERS + 2, sizeof(*pf));
    if (!pf)
        return NULL;
    uint64_t last_house = now_ms();
    for (;;) {
        size_t n = 0;
        pf[n++] = (struct pollfd){ .fd = cp.wake, .events = POLLIN };
        for (size_t i = 0; i < cp.n_lfd; i++)
            pf[n++] = (struct pollfd){ .fd = cp.lfd[i], .events = POLLIN };
        int nfd = aigw_notify_fd(cp.notify);
        size_t notify_at = n;
        pf[n++] = (struct pollfd){ .fd = nfd, .events = POLLIN };   /* -1 is ignored */
        size_t links_at = n;
        for (size_t i = 0; i < cp.n_links; i++)
            pf[n++] = (struct pollfd){ .fd = cp.links[i]->fd,
                                       .events = (short)(POLLIN |
                                                         (cp.links[i]->want_write ? POLLOUT : 0)) };
        int r = poll(pf, n, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (pf[0].revents) {
            uint64_t v;
            ssize_t rr = read(cp.wake, &v, sizeof(v));
            (void)rr;
        }
        pthread_mutex_lock(&cp.mu);
        int stop = cp.stop;
        pthread_mutex_unlock(&cp.mu);
        if (stop)
            break;
        take_pending();
        size_t nl = cp.n_links;
        for (size_t i = 0; i < nl; i++)
            if (pf[links_at + i].revents)
                link_pump(cp.links[i]);
        for (size_t i = 0; i < cp.n_lfd; i++)
            if (pf[1 + i].revents)
                accept_on(cp.lfd[i]);
        if (pf[notify_at].revents || nfd < 0) {
            if (aigw_notify_poll(cp.notify) > 0 && cp.on_remote_change)
                cp.on_remote_change();
        }
        if (now_ms() - last_house >= 1000) {
            housekeeping();
            last_house = now_ms();
        }
        reap();
    }
    free(pf);
    for (size_t i = 0; i < cp.n_links; i++)
        link_free(cp.links[i]);
    cp.n_links = 0;
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------ */

static void on_snapshot(aigw_snapshot_t *snap, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&cp.mu);
    aigw_snapshot_t *old = cp.pending;
    cp.pending = aigw_snapshot_ref(snap);
    pthread_mutex_unlock(&cp.mu);
    aigw_snapshot_unref(old);
    uint64_t one = 1;
    ssize_t w = write(cp.wake, &one, sizeof(one));
    (void)w;
}

static int open_listener(const aigw_listen_t *l, char *err, size_t errlen)
{
    int v6;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (aigw_listen_sockaddr(l, &ss, &sl, &v6) != 0)
        goto bad;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        goto sys;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, l->backlog) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        goto sys;
    }
    cp.lfd[cp.n_lfd++] = fd;
    return 0;
bad:
    snprintf(err, errlen, "cannot listen on %s:%d (cluster_listen): invalid address", l->addr,
             l->port);
    return -1;
sys:
    snprintf(err, errlen, "cannot listen on %s:%d (cluster_listen): %s", l->addr, l->port,
             errno == EADDRINUSE ? "address already in use" : strerror(errno));
    return -1;
}

static void cp_cleanup(void)
{
    for (size_t i = 0; i < cp.n_lfd; i++)
        close(cp.lfd[i]);
    cp.n_lfd = 0;
    if (cp.wake >= 0)
        close(cp.wake);
    cp.wake = -1;
    SSL_CTX_free(cp.ctx);
    cp.ctx = NULL;
    EVP_PKEY_free(cp.key);
    cp.key = NULL;
    aigw_notify_free(cp.notify);
    cp.notify = NULL;
    free(cp.links);
    cp.links = NULL;
    blob_unref(cp.cur);
    cp.cur = NULL;
    blob_unref(cp.delta);
    cp.delta = NULL;
    aigw_snapshot_unref(cp.cur_snap);
    cp.cur_snap = NULL;
    cp.cur_failed = 0;
    cp.cur_hash[0] = cp.delta_base[0] = '\0';
    pthread_mutex_lock(&cp.mu);
    aigw_snapshot_unref(cp.pending);
    cp.pending = NULL;
    free(cp.records);
    cp.records = NULL;
    cp.n_records = cp.cap_records = 0;
    cp.is_cp = 0;
    pthread_mutex_unlock(&cp.mu);
}

int aigw_cluster_cp_start(const aigw_conf_t *c, void (*on_remote_change)(void), char *err,
                          size_t errlen)
{
    if (c->cluster_listen.n > MAX_LISTENERS) {
        snprintf(err, errlen, "cluster_listen: at most %d addresses", MAX_LISTENERS);
        return -1;
    }
    cp.max_payload = c->cluster_max_payload > UINT32_MAX ? UINT32_MAX : c->cluster_max_payload;
    cp.ping_ms = c->cluster_ping_interval * 1000;
    cp.purge_s = c->cluster_data_plane_purge_delay;
    cp.on_remote_change = on_remote_change;
    cp.stop = 0;
    cp.links = calloc(MAX_LINKS, sizeof(link_t *));
    cp.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!cp.links || cp.wake < 0) {
        snprintf(err, errlen, "cluster: cannot start: %s", strerror(errno));
        goto fail;
    }
    cp.ctx = aigw_cf_ssl_ctx(c, 1, err, errlen);
    if (!cp.ctx)
        goto fail;
    cp.key = aigw_cf_load_key(c->cluster_cert_key, err, errlen);
    if (!cp.key)
        goto fail;
    for (size_t i = 0; i < c->cluster_listen.n; i++)
        if (open_listener(&c->cluster_listen.v[i], err, errlen) != 0)
            goto fail;
    if (c->database == AIGW_DB_POSTGRES)
        cp.notify = aigw_notify_new(c);
    pthread_mutex_lock(&cp.mu);
    cp.is_cp = 1;
    pthread_mutex_unlock(&cp.mu);
    if (aigw_snapshot_subscribe(on_snapshot, NULL) != 0) {
        snprintf(err, errlen, "cluster: cannot subscribe to configuration snapshots");
        goto fail;
    }
    aigw_snapshot_t *cur = aigw_snapshot_current();
    if (cur) {
        on_snapshot(cur, NULL);
        aigw_snapshot_unref(cur);
    }
    if (pthread_create(&cp.tid, NULL, cp_main, NULL) != 0) {
        snprintf(err, errlen, "cluster: cannot start its thread");
        goto fail;
    }
    cp.running = 1;
    for (size_t i = 0; i < c->cluster_listen.n; i++)
        AIGW_LOG(AIGW_LOG_NOTICE, "cluster: control plane listening for data planes on %s:%d "
                 "(TLS 1.3, cluster_mtls = %s)", c->cluster_listen.v[i].addr,
                 c->cluster_listen.v[i].port,
                 c->cluster_mtls == AIGW_MTLS_SHARED ? "shared" : "pki");
    return 0;
fail:
    cp_cleanup();
    return -1;
}

void aigw_cluster_cp_stop(void)
{
    if (!cp.running)
        return;
    pthread_mutex_lock(&cp.mu);
    cp.stop = 1;
    pthread_mutex_unlock(&cp.mu);
    uint64_t one = 1;
    ssize_t w = write(cp.wake, &one, sizeof(one));
    (void)w;
    pthread_join(cp.tid, NULL);
    cp.running = 0;
    cp_cleanup();
}
