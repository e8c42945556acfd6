/* aigwd/core/daemon.c: see daemon.h.
 *
 * Threads: the main thread owns configuration, signals and the pid file; N proxy workers
 * each run a libuv loop with their own SO_REUSEPORT listeners; one admin thread runs the
 * admin and status listeners. The main thread talks to the others only through a command
 * queue and uv_async_send; they answer through a mutex + condition (start-up, reload acks). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "admin/admin.h"
#include "cluster/cluster.h"
#include "common/fs.h"
#include "core/daemon.h"
#include "core/log.h"
#include "plugins/logrec.h"
#include "proxy/metrics.h"
#include "plugins/plugins.h"
#include "http/server.h"
#include "http/tls.h"
#include "proxy/certs.h"
#include "proxy/healthcheck.h"
#include "proxy/loader.h"
#include "proxy/proxy.h"
#include "declarative/declarative.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

#define DRAIN_TIMEOUT_MS 10000   /* in-flight requests get this long after SIGTERM */

extern char **environ;

typedef enum { CMD_RELOAD, CMD_STOP, CMD_REOPEN } cmd_kind_t;

typedef struct cmd {
    cmd_kind_t kind;
    aigw_cfg_t *cfg;             /* RELOAD: one reference for the receiver */
    SSL_CTX *ctx[AIGW_SVC_COUNT];/* RELOAD: one reference each for the receiver, or NULL */
    struct cmd *next;
} cmd_t;

typedef struct thread {
    pthread_t tid;
    int is_admin;
    char name[16];
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t drain_timer;
    aigw_http_worker_t http;
    aigw_cfg_t *cfg;             /* current, one reference */
    aigw_admin_t *admin;         /* admin thread only */
    aigw_proxy_worker_t *proxy;  /* proxy threads only */
    pthread_mutex_t mu;
    cmd_t *cmds, **cmds_tail;
    int stopping;
    struct node *node;
} thread_t;

typedef struct node {
    aigw_start_opts_t opts;
    aigw_cfg_t *cfg;             /* the main thread's reference */
    SSL_CTX *ctx[AIGW_SVC_COUNT];
    thread_t *threads;
    size_t n_threads;
    char node_id[40];
    char hostname[256];
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_quit, sig_hup, sig_usr1;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t started, failed, acks;
    char start_err[512];
    int stopping;
} node_t;

/* ---- configuration references ------------------------------------------------------------ */

void aigw_cfg_release(aigw_cfg_t *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        aigw_conf_free(&c->conf);
        free(c);
    }
}

static void on_conf_warning(void *ud, const char *msg)
{
    (void)ud;
    AIGW_LOG(AIGW_LOG_WARN, "%s", msg);
}

static void on_conf_warning_stderr(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "aigwd: warning: %s\n", msg);
}

static aigw_cfg_t *load_cfg(const aigw_start_opts_t *o, int to_stderr, char *err, size_t errlen)
{
    aigw_cfg_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (aigw_conf_load(&c->conf, o->conf_path, o->prefix, environ,
                       to_stderr ? on_conf_warning_stderr : on_conf_warning, NULL, err,
                       errlen) != 0) {
        free(c);
        return NULL;
    }
    atomic_store(&c->refs, 1);
    return c;
}

/* ---- TLS contexts ----------------------------------------------------------------------- */

static int has_ssl(const aigw_listen_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].ssl)
            return 1;
    return 0;
}

/* Builds the SSL_CTX each kind of listener needs (configured pair, else the default
 * self-signed one in the prefix). 0, or -1 with err. */
static int build_ctxs(const aigw_conf_t *c, SSL_CTX *out[AIGW_SVC_COUNT], char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof(SSL_CTX *) * AIGW_SVC_COUNT);
    struct {
        const aigw_listen_list_t *l;
        const char *cert, *key, *dflt;
    } k[AIGW_SVC_COUNT] = {
        { &c->proxy_listen, c->ssl_cert, c->ssl_cert_key, "aigw-default" },
        { &c->admin_listen, c->admin_ssl_cert, c->admin_ssl_cert_key, "admin-aigw-default" },
        { &c->status_listen, c->admin_ssl_cert, c->admin_ssl_cert_key, "admin-aigw-default" },
    };
    for (int i = 0; i < AIGW_SVC_COUNT; i++) {
        if (!has_ssl(k[i].l))
            continue;
        char cert[4096], key[4096];
        const char *cp = k[i].cert, *kp = k[i].key;
        if (!cp) {
            if (aigw_tls_default_cert(c->prefix, k[i].dflt, cert, key, sizeof(cert), err,
                                      errlen) != 0)
                goto fail;
            cp = cert;
            kp = key;
        }
        out[i] = aigw_tls_server_ctx(cp, kp, c->ssl_protocols, err, errlen);
        if (!out[i])
            goto fail;
        if (i == AIGW_SVC_PROXY) {
            /* certificates and snis entities, chosen by the ClientHello's server name */
            static aigw_certs_source_t src = { aigw_runtime_current_certs, NULL };
            SSL_CTX_set_tlsext_servername_callback(out[i], aigw_certs_on_servername);
            SSL_CTX_set_tlsext_servername_arg(out[i], &src);
        }
    }
    aigw_runtime_set_ssl_protocols(c->ssl_protocols);
    return 0;
fail:
    for (int i = 0; i < AIGW_SVC_COUNT; i++) {
        SSL_CTX_free(out[i]);
        out[i] = NULL;
    }
    return -1;
}

/* ---- per-thread services ------------------------------------------------------------------ */

static void apply_services(thread_t *t, const aigw_conf_t *c, SSL_CTX *ctx[AIGW_SVC_COUNT])
{
    aigw_http_worker_t *w = &t->http;
    for (int k = 0; k < AIGW_SVC_COUNT; k++) {
        aigw_http_service_t *s = &w->svc[k];
        s->limits = aigw_http_limits_default;
        if (k == AIGW_SVC_PROXY) {
            s->on_request = aigw_proxy_handle;
            s->ud = t->proxy;
            if (t->proxy)
                aigw_proxy_worker_set_conf(t->proxy, c);
            /* The proxy sees the head first and takes the body per route:
             * request_buffering (Kong's default) reads it whole before the upstream request
             * starts; request_buffering = false streams it (proxy.c). */
            s->limits.buffer_body = 1;
            s->limits.head_dispatch = 1;
            s->limits.max_body = c->client_max_body_size;
            s->access_log = AIGW_LOGF_PROXY_ACCESS;
        } else {
            s->on_request = k == AIGW_SVC_ADMIN ? aigw_admin_handle
                                                : aigw_admin_handle_status_listener;
            s->ud = t->admin;
            s->limits.max_body = 10u * 1024 * 1024;   /* Kong's admin client_max_body_size */
            s->limits.buffer_body = 1;
            s->access_log = AIGW_LOGF_ADMIN_ACCESS;
        }
        s->headers = c->headers;
        SSL_CTX_free(s->ssl_ctx);
        s->ssl_ctx = ctx ? ctx[k] : NULL;   /* takes the reference */
    }
}

static const aigw_listen_list_t *list_for(const aigw_conf_t *c, aigw_svc_kind_t k)
{
    return k == AIGW_SVC_PROXY ? &c->proxy_listen
           : k == AIGW_SVC_ADMIN ? &c->admin_listen
                                 : &c->status_listen;
}

static int kinds_of(const thread_t *t, aigw_svc_kind_t *out)
{
    if (!t->is_admin) {
        out[0] = AIGW_SVC_PROXY;
        return 1;
    }
    out[0] = AIGW_SVC_ADMIN;
    out[1] = AIGW_SVC_STATUS;
    return 2;
}

static int keep_listener(const aigw_listen_t *l, aigw_svc_kind_t k, void *ud)
{
    const aigw_conf_t *c = ud;
    const aigw_listen_list_t *ll = list_for(c, k);
    for (size_t i = 0; i < ll->n; i++) {
        const aigw_listen_t *n = &ll->v[i];
        if (n->port == l->port && strcmp(n->addr, l->addr) == 0 && n->ssl == l->ssl &&
            n->backlog == l->backlog && n->deferred == l->deferred)
            return 1;
    }
    return 0;
}

/* Opens every listener of conf that this thread does not have yet. */
static int open_listeners(thread_t *t, const aigw_conf_t *c, char *err, size_t errlen)
{
    aigw_svc_kind_t kinds[2];
    int nk = kinds_of(t, kinds);
    for (int i = 0; i < nk; i++) {
        const aigw_listen_list_t *ll = list_for(c, kinds[i]);
        for (size_t j = 0; j < ll->n; j++) {
            if (aigw_http_has_listener(&t->http, &ll->v[j], kinds[i]))
                continue;
            if (aigw_http_listen(&t->http, &ll->v[j], kinds[i], err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- thread commands ------------------------------------------------------------------- */

static void post(thread_t *t, cmd_t *c)
{
    pthread_mutex_lock(&t->mu);
    c->next = NULL;
    *t->cmds_tail = c;
    t->cmds_tail = &c->next;
    pthread_mutex_unlock(&t->mu);
    uv_async_send(&t->async);
}

static void on_drain_timeout(uv_timer_t *tm)
{
    thread_t *t = tm->data;
    if (t->http.n_conns)
        AIGW_LOG(AIGW_LOG_WARN, "closing %zu connections still open %d ms after the stop signal",
                 t->http.n_conns, DRAIN_TIMEOUT_MS);
    aigw_http_worker_close_all(&t->http);
}

static void on_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_drained(aigw_http_worker_t *w)
{
    thread_t *t = (thread_t *)((char *)w - offsetof(thread_t, http));
    /* Nothing is left to serve: close our own handles so the loop ends. */
    aigw_proxy_worker_close(t->proxy);
    uv_walk(&t->loop, on_close_walk, NULL);
}

static void node_ack(node_t *n)
{
    pthread_mutex_lock(&n->mu);
    n->acks++;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void handle_cmd(thread_t *t, cmd_t *c)
{
    switch (c->kind) {
    case CMD_RELOAD: {
        char err[512];
        aigw_http_close_listeners(&t->http, keep_listener, &c->cfg->conf);
        apply_services(t, &c->cfg->conf, c->ctx);
        if (t->admin)
            aigw_admin_set_conf(t->admin, &c->cfg->conf);
        aigw_cfg_release(t->cfg);
        t->cfg = c->cfg;
        if (open_listeners(t, &t->cfg->conf, err, sizeof(err)) != 0)
            AIGW_LOG(AIGW_LOG_ERR, "reload: %s", err);
        node_ack(t->node);
        break;
    }
    case CMD_STOP:
        if (t->stopping)
            break;
        t->stopping = 1;
        t->http.on_drained = on_drained;
        uv_timer_start(&t->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
        aigw_http_worker_drain(&t->http);
        break;
    case CMD_REOPEN:
        break;
    }
}

static void on_async(uv_async_t *a)
{
    thread_t *t = a->data;
    pthread_mutex_lock(&t->mu);
    cmd_t *c = t->cmds;
    t->cmds = NULL;
    t->cmds_tail = &t->cmds;
    pthread_mutex_unlock(&t->mu);
    while (c) {
        cmd_t *next = c->next;
        handle_cmd(t, c);
        free(c);
        c = next;
    }
}

/* ---- snapshot builder ------------------------------------------------------------------
 * Its own thread with its own store connection (SQLite WAL readers and PostgreSQL sessions
 * do not block writers), so rebuilding a large configuration never stalls the admin API. It
 * rebuilds right after a committed admin write, and polls the store's version every second
 * to notice writes by other nodes or by `aigwd config db_import`. */

#define SNAPSHOT_POLL_MS 1000

typedef struct builder {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running, dirty, stop;
    aigw_cfg_t *cfg;             /* one reference; replaced on reload */
} builder_t;

static builder_t builder = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *builder_main(void *arg)
{
    builder_t *b = arg;
    aigw_log_thread_name = "snapshot";
    aigw_log_thread_file = AIGW_LOGF_ADMIN_ERROR;
    aigw_store_t *store = NULL;
    aigw_cfg_t *store_cfg = NULL;
    int failing = 0, skip = 0;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (!b->dirty && !b->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += SNAPSHOT_POLL_MS / 1000;
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        }
        if (b->stop)
            break;
        int dirty = b->dirty;
        b->dirty = 0;
        aigw_cfg_t *cfg = b->cfg;
        atomic_fetch_add(&cfg->refs, 1);
        pthread_mutex_unlock(&b->mu);

        /* While the database is down each try may block up to pg_timeout: poll slower. */
        if (!dirty && skip > 0) {
            skip--;
        } else {
            if (store && store_cfg != cfg) {
                aigw_store_close(store);
                store = NULL;
            }
            aigw_db_error_t err = { 0 };
            char why[512] = "";
            if (!store) {
                store = aigw_store_open(&cfg->conf, why, sizeof(why));
                aigw_cfg_release(store_cfg);
                store_cfg = store ? cfg : NULL;
                if (store)
                    atomic_fetch_add(&cfg->refs, 1);
            }
            int r = store ? aigw_snapshot_refresh(store, &err) : -1;
            if (r < 0) {
                if (!failing)
                    AIGW_LOG(AIGW_LOG_ERR, "snapshot: %s; the last configuration stays in use",
                             store ? err.message : why);
                failing = 1;
                skip = 4;
            } else if (failing) {
                AIGW_LOG(AIGW_LOG_NOTICE, "snapshot: the database is back");
                failing = 0;
            }
            aigw_db_error_clear(&err);
        }
        aigw_cfg_release(cfg);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    aigw_store_close(store);
    aigw_cfg_release(store_cfg);
    return NULL;
}

/* A committed admin write: rebuild now (the builder coalesces bursts of writes). */
static void on_config_change(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&builder.mu);
    builder.dirty = 1;
    pthread_cond_signal(&builder.cv);
    pthread_mutex_unlock(&builder.mu);
}

/* Control plane: another node committed a change (PostgreSQL NOTIFY). */
static void on_remote_change(void)
{
    on_config_change(NULL);
}

static void builder_start(aigw_cfg_t *cfg)
{
    atomic_fetch_add(&cfg->refs, 1);
    builder.cfg = cfg;
    builder.dirty = 1;
    builder.stop = 0;
    if (pthread_create(&builder.tid, NULL, builder_main, &builder) == 0)
        builder.running = 1;
}

static void builder_set_cfg(aigw_cfg_t *cfg)
{
    if (!builder.running)
        return;
    atomic_fetch_add(&cfg->refs, 1);
    pthread_mutex_lock(&builder.mu);
    aigw_cfg_t *old = builder.cfg;
    builder.cfg = cfg;
    builder.dirty = 1;
    pthread_cond_signal(&builder.cv);
    pthread_mutex_unlock(&builder.mu);
    aigw_cfg_release(old);
}

static void builder_stop(void)
{
    if (!builder.running)
        return;
    pthread_mutex_lock(&builder.mu);
    builder.stop = 1;
    pthread_cond_signal(&builder.cv);
    pthread_mutex_unlock(&builder.mu);
    pthread_join(builder.tid, NULL);
    builder.running = 0;
    aigw_cfg_release(builder.cfg);
    builder.cfg = NULL;
}

static void *thread_main(void *arg)
{
    thread_t *t = arg;
    node_t *n = t->node;
    char err[512] = "";
    aigw_log_thread_name = t->name;
    aigw_log_thread_file = t->is_admin ? AIGW_LOGF_ADMIN_ERROR : AIGW_LOGF_PROXY_ERROR;
    int ok = open_listeners(t, &t->cfg->conf, err, sizeof(err)) == 0;
    pthread_mutex_lock(&n->mu);
    if (ok)
        n->started++;
    else {
        n->failed++;
        if (!n->start_err[0])
            aigw_strlcpy(n->start_err, err, sizeof(n->start_err));
    }
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int thread_init(node_t *n, thread_t *t, int is_admin, size_t idx)
{
    t->node = n;
    t->is_admin = is_admin;
    if (is_admin)
        snprintf(t->name, sizeof(t->name), "admin");
    else
        snprintf(t->name, sizeof(t->name), "w%zu", idx);
    if (uv_loop_init(&t->loop) != 0)
        return -1;
    pthread_mutex_init(&t->mu, NULL);
    t->cmds = NULL;
    t->cmds_tail = &t->cmds;
    uv_async_init(&t->loop, &t->async, on_async);
    t->async.data = t;
    uv_timer_init(&t->loop, &t->drain_timer);
    t->drain_timer.data = t;

    if (aigw_http_worker_init(&t->http, &t->loop, t->name) != 0)
        return -1;
    atomic_fetch_add(&n->cfg->refs, 1);
    t->cfg = n->cfg;
    if (is_admin) {
        t->admin = aigw_admin_new(&t->cfg->conf, n->node_id, n->hostname);
        if (!t->admin)
            return -1;
        aigw_admin_on_change(t->admin, on_config_change, t);
    } else {
        t->proxy = aigw_proxy_worker_new(&t->loop, &t->cfg->conf);
        if (!t->proxy)
            return -1;
    }
    SSL_CTX *ctx[AIGW_SVC_COUNT];
    for (int k = 0; k < AIGW_SVC_COUNT; k++) {
        ctx[k] = n->ctx[k];
        if (ctx[k])
            SSL_CTX_up_ref(ctx[k]);
    }
    apply_services(t, &t->cfg->conf, ctx);
    return 0;
}

static void thread_fini(thread_t *t)
{
    /* The loop has returned: every handle is closed. */
    if (uv_loop_close(&t->loop) != 0) {
        uv_walk(&t->loop, on_close_walk, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
    }
    aigw_http_worker_free(&t->http);
    aigw_proxy_worker_free(t->proxy);
    aigw_admin_free(t->admin);
    aigw_cfg_release(t->cfg);
    cmd_t *c = t->cmds;
    while (c) {
        cmd_t *next = c->next;
        aigw_cfg_release(c->cfg);
        for (int k = 0; k < AIGW_SVC_COUNT; k++)
            SSL_CTX_free(c->ctx[k]);
        free(c);
        c = next;
    }
    pthread_mutex_destroy(&t->mu);
}

/* ---- prefix files ------------------------------------------------------------------------- */

void aigw_daemon_pid_path(const char *prefix, char *out, size_t cap)
{
    snprintf(out, cap, "%s/pids/aigwd.pid", prefix);
}

long aigw_daemon_running_pid(const char *prefix)
{
    char path[4200], *text = NULL;
    aigw_daemon_pid_path(prefix, path, sizeof(path));
    if (aigw_read_file(path, 64, &text, NULL) != 0)
        return 0;
    char *end;
    long pid = strtol(text, &end, 10);
    int junk = *end && *end != '\n';
    free(text);
    if (pid <= 0 || junk)
        return 0;
    return aigw_daemon_pid_alive(pid) ? pid : 0;
}

int aigw_daemon_pid_alive(long pid)
{
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return 0;
    /* A zombie whose parent has not reaped it yet has exited all the same. */
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

/* <prefix>/node.id keeps node_id across restarts, as Kong's kong.id does. */
static int node_id_load(const char *prefix, char out[40], char *err, size_t errlen)
{
    char path[4200], *text = NULL;
    snprintf(path, sizeof(path), "%s/node.id", prefix);
    if (aigw_read_file(path, 128, &text, NULL) == 0) {
        size_t n = strcspn(text, "\r\n");
        if (n == 36) {
            memcpy(out, text, 36);
            out[36] = '\0';
            free(text);
            return 0;
        }
        free(text);
    }
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        snprintf(err, errlen, "cannot generate a node id");
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    char line[48];
    int len = snprintf(line, sizeof(line), "%s\n", out);
    if (aigw_write_file_atomic(path, line, (size_t)len, 0644) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int prepare_prefix(const aigw_conf_t *c, char *err, size_t errlen)
{
    const char *subs[] = { "", "/logs", "/pids" };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s%s", c->prefix, subs[i]);
        if (aigw_mkdir_p(path, 0755) != 0) {
            snprintf(err, errlen, "cannot create prefix directory %s: %s", path,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Binds each listen address once without SO_REUSEPORT, so that a port held by anyone else
 * (another aigwd included, which would otherwise share it silently) is reported now. */
static int probe_listen(const aigw_listen_list_t *ll, char *err, size_t errlen)
{
    for (size_t i = 0; i < ll->n; i++) {
        const aigw_listen_t *l = &ll->v[i];
        const char *addr = strcmp(l->addr, "*") == 0 ? "0.0.0.0" : l->addr;
        int v6;
        struct sockaddr_storage ss;
        socklen_t sl;
        if (aigw_listen_sockaddr(l, &ss, &sl, &v6) != 0)
            goto bad;
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        if (fd < 0)
            goto sys;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (v6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        int r = bind(fd, (struct sockaddr *)&ss, sl);
        int e = errno;
        if (r == 0)
            r = listen(fd, 1), e = errno;
        close(fd);
        if (r != 0) {
            errno = e;
            goto sys;
        }
        continue;
    bad:
        snprintf(err, errlen, "cannot listen on %s:%d: invalid address", l->addr, l->port);
        return -1;
    sys:
        snprintf(err, errlen, "cannot listen on %s%s%s:%d: %s", v6 ? "[" : "", addr,
                 v6 ? "]" : "", l->port,
                 errno == EADDRINUSE ? "address already in use" : strerror(errno));
        return -1;
    }
    return 0;
}

/* Two listeners on one port would both succeed with SO_REUSEPORT and share its connections:
 * refuse it, as nginx refuses a duplicate listen. Wildcard addresses overlap every address. */
static int check_listeners(const aigw_conf_t *c, char *err, size_t errlen)
{
    const aigw_listen_list_t *ls[3] = { &c->proxy_listen, &c->admin_listen, &c->status_listen };
    const char *names[3] = { "proxy_listen", "admin_listen", "status_listen" };
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < ls[a]->n; i++)
            if (ls[a]->v[i].proxy_protocol) {
                /* Refused rather than ignored: a PROXY header would be read as a bad request. */
                snprintf(err, errlen, "cannot listen on %s:%d (%s): the proxy_protocol flag is "
                         "not supported yet", ls[a]->v[i].addr, ls[a]->v[i].port, names[a]);
                return -1;
            }
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < ls[a]->n; i++)
            for (int b = a; b < 3; b++)
                for (size_t j = (a == b ? i + 1 : 0); j < ls[b]->n; j++) {
                    const aigw_listen_t *x = &ls[a]->v[i], *y = &ls[b]->v[j];
                    if (x->port != y->port)
                        continue;
                    int wx = !strcmp(x->addr, "0.0.0.0") || !strcmp(x->addr, "*") ||
                             !strcmp(x->addr, "::");
                    int wy = !strcmp(y->addr, "0.0.0.0") || !strcmp(y->addr, "*") ||
                             !strcmp(y->addr, "::");
                    int v6x = strchr(x->addr, ':') != NULL, v6y = strchr(y->addr, ':') != NULL;
                    if (v6x != v6y || (!wx && !wy && strcmp(x->addr, y->addr) != 0))
                        continue;
                    snprintf(err, errlen, "cannot listen on %s:%d: given twice (%s and %s)",
                             x->addr, x->port, names[a], names[b]);
                    return -1;
                }
    return 0;
}

/* DB-less: declarative_config (if set) replaces the store's content in one transaction. */
static int load_declarative(const aigw_conf_t *c, aigw_store_t *st, char *err, size_t errlen)
{
    if (!c->declarative_config)
        return 0;
    char *text = NULL;
    size_t len = 0;
    json_t *entities = NULL;
    aigw_db_error_t e = { 0 };
    int rc = -1;
    if (aigw_read_file(c->declarative_config, 64u << 20, &text, &len) != 0) {
        snprintf(err, errlen, "cannot read declarative_config %s: %s", c->declarative_config,
                 strerror(errno));
    } else if (aigw_declarative_parse(text, len, &entities, &e) != 0 ||
               aigw_declarative_replace(st, entities, &e) != 0) {
        snprintf(err, errlen, "failed loading declarative_config %s: %s",
                 c->declarative_config, e.message);
    } else {
        rc = 0;
    }
    free(text);
    json_decref(entities);
    aigw_db_error_clear(&e);
    return rc;
}

/* DB-less: a fresh store in the prefix, loaded from declarative_config (if set), as Kong
 * loads its declarative file at start. A file that does not parse stops the start. */
static int prepare_dbless(const aigw_conf_t *c, char *err, size_t errlen)
{
    char path[4200], side[4300];
    aigw_store_dbless_path(c, path, sizeof(path));
    unlink(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
    aigw_store_t *st = aigw_store_open(c, err, errlen);
    if (!st)
        return -1;
    aigw_db_error_t e = { 0 };
    int rc = -1;
    if (aigw_store_bootstrap(st, &e) != 0) {
        snprintf(err, errlen, "%s", e.message);
        goto out;
    }
    rc = load_declarative(c, st, err, errlen);
out:
    aigw_db_error_clear(&e);
    aigw_store_close(st);
    return rc;
}

/* As `kong start`: the database must be reachable and its migrations complete. */
static int check_store(const aigw_conf_t *c, char *err, size_t errlen)
{
    aigw_store_t *st = aigw_store_open(c, err, errlen);
    if (!st)
        return -1;
    aigw_migration_state_t m = { 0 };
    aigw_db_error_t e = { 0 };
    int rc = 0;
    if (aigw_store_migrations(st, &m, &e) != 0) {
        snprintf(err, errlen, "%s", e.message);
        rc = -1;
    } else if (!m.bootstrapped) {
        snprintf(err, errlen, "the %s database needs bootstrapping: run 'aigwd migrations "
                 "bootstrap' first", aigw_store_kind(st));
        rc = -1;
    } else if (m.applied < m.total) {
        snprintf(err, errlen, "%zu new migration(s) available for the %s database: run "
                 "'aigwd migrations up' first", m.total - m.applied, aigw_store_kind(st));
        rc = -1;
    }
    aigw_db_error_clear(&e);
    aigw_migration_state_free(&m);
    aigw_store_close(st);
    return rc;
}

/* ---- signals ---------------------------------------------------------------------------- */

static void stop_all(node_t *n)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    AIGW_LOG(AIGW_LOG_NOTICE, "stopping: finishing in-flight requests (at most %d ms)",
             DRAIN_TIMEOUT_MS);
    for (size_t i = 0; i < n->n_threads; i++) {
        cmd_t *c = calloc(1, sizeof(*c));
        if (!c)
            continue;
        c->kind = CMD_STOP;
        post(&n->threads[i], c);
    }
    uv_signal_stop(&n->sig_term);
    uv_signal_stop(&n->sig_int);
    uv_signal_stop(&n->sig_quit);
    uv_signal_stop(&n->sig_hup);
    uv_signal_stop(&n->sig_usr1);
    uv_close((uv_handle_t *)&n->sig_term, NULL);
    uv_close((uv_handle_t *)&n->sig_int, NULL);
    uv_close((uv_handle_t *)&n->sig_quit, NULL);
    uv_close((uv_handle_t *)&n->sig_hup, NULL);
    uv_close((uv_handle_t *)&n->sig_usr1, NULL);
}

static int listen_lists_equal(const aigw_listen_list_t *a, const aigw_listen_list_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].port != b->v[i].port || strcmp(a->v[i].addr, b->v[i].addr) != 0)
            return 0;
    return 1;
}

static void reload(node_t *n)
{
    char err[1024];
    AIGW_LOG(AIGW_LOG_NOTICE, "reload: re-reading the configuration");
    aigw_cfg_t *nc = load_cfg(&n->opts, 0, err, sizeof(err));
    if (!nc) {
        AIGW_LOG(AIGW_LOG_ERR, "reload failed, still running the previous configuration: %s",
                 err);
        return;
    }
    SSL_CTX *ctx[AIGW_SVC_COUNT];
    if (nc->conf.database != n->cfg->conf.database) {
        AIGW_LOG(AIGW_LOG_ERR, "reload failed, still running the previous configuration: "
                 "`database` cannot change on reload; restart aigwd");
        aigw_cfg_release(nc);
        return;
    }
    if (nc->conf.database == AIGW_DB_OFF && nc->conf.role != AIGW_ROLE_DATA_PLANE) {
        /* DB-less: the declarative file is re-read too, all or nothing. */
        aigw_store_t *st = aigw_store_open(&nc->conf, err, sizeof(err));
        int ok = st && load_declarative(&nc->conf, st, err, sizeof(err)) == 0;
        aigw_store_close(st);
        if (!ok) {
            AIGW_LOG(AIGW_LOG_ERR,
                     "reload failed, still running the previous configuration: %s", err);
            aigw_cfg_release(nc);
            return;
        }
    }
    if (check_listeners(&nc->conf, err, sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "reload failed, still running the previous configuration: %s",
                 err);
        aigw_cfg_release(nc);
        return;
    }
    if (aigw_logrec_configure(&nc->conf, err, sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "reload failed, still running the previous configuration: %s",
                 err);
        aigw_cfg_release(nc);
        return;
    }
    if (prepare_prefix(&nc->conf, err, sizeof(err)) != 0 ||
        build_ctxs(&nc->conf, ctx, err, sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "reload failed, still running the previous configuration: %s",
                 err);
        aigw_cfg_release(nc);
        return;
    }
    /* New addresses must be free; ones we already hold are ours. */
    const aigw_conf_t *oc = &n->cfg->conf;
    const aigw_listen_list_t *newl[3] = { &nc->conf.proxy_listen, &nc->conf.admin_listen,
                                          &nc->conf.status_listen };
    const aigw_listen_list_t *oldl[3] = { &oc->proxy_listen, &oc->admin_listen,
                                          &oc->status_listen };
    for (int k = 0; k < 3; k++) {
        if (listen_lists_equal(newl[k], oldl[k]))
            continue;
        for (size_t i = 0; i < newl[k]->n; i++) {
            int held = 0;
            for (int kk = 0; kk < 3 && !held; kk++)
                for (size_t j = 0; j < oldl[kk]->n && !held; j++)
                    held = oldl[kk]->v[j].port == newl[k]->v[i].port &&
                           strcmp(oldl[kk]->v[j].addr, newl[k]->v[i].addr) == 0;
            aigw_listen_list_t one = { &((aigw_listen_t *)newl[k]->v)[i], 1 };
            if (!held && probe_listen(&one, err, sizeof(err)) != 0) {
                AIGW_LOG(AIGW_LOG_ERR,
                         "reload failed, still running the previous configuration: %s", err);
                for (int kk = 0; kk < AIGW_SVC_COUNT; kk++)
                    SSL_CTX_free(ctx[kk]);
                aigw_cfg_release(nc);
                return;
            }
        }
    }
    if (aigw_log_configure(&nc->conf, err, sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "reload failed, still running the previous configuration: %s",
                 err);
        for (int k = 0; k < AIGW_SVC_COUNT; k++)
            SSL_CTX_free(ctx[k]);
        aigw_cfg_release(nc);
        return;
    }
    pthread_mutex_lock(&n->mu);
    n->acks = 0;
    pthread_mutex_unlock(&n->mu);
    for (size_t i = 0; i < n->n_threads; i++) {
        cmd_t *c = calloc(1, sizeof(*c));
        if (!c)
            continue;
        c->kind = CMD_RELOAD;
        atomic_fetch_add(&nc->refs, 1);
        c->cfg = nc;
        for (int k = 0; k < AIGW_SVC_COUNT; k++) {
            c->ctx[k] = ctx[k];
            if (ctx[k])
                SSL_CTX_up_ref(ctx[k]);
        }
        post(&n->threads[i], c);
    }
    for (int k = 0; k < AIGW_SVC_COUNT; k++) {
        SSL_CTX_free(n->ctx[k]);
        n->ctx[k] = ctx[k];
    }
    aigw_cfg_release(n->cfg);
    n->cfg = nc;
    builder_set_cfg(nc);
    AIGW_LOG(AIGW_LOG_NOTICE, "reload: configuration applied");
}

static void on_signal(uv_signal_t *s, int signum)
{
    node_t *n = s->data;
    switch (signum) {
    case SIGHUP:
        reload(n);
        break;
    case SIGUSR1:
        AIGW_LOG(AIGW_LOG_NOTICE, "reopening log files");
        aigw_log_reopen();
        aigw_plugins_reopen();
        break;
    default:
        stop_all(n);
        break;
    }
}

/* ---- start ------------------------------------------------------------------------------ */

static void describe(const char *what, const aigw_listen_list_t *l, char *out, size_t cap,
                     size_t *pos)
{
    if (!l->n)
        return;
    int w = snprintf(out + *pos, cap - *pos, "%s%s ", *pos ? "; " : "", what);
    if (w > 0 && (size_t)w < cap - *pos)
        *pos += (size_t)w;
    for (size_t i = 0; i < l->n; i++) {
        w = snprintf(out + *pos, cap - *pos, "%s%s:%d%s", i ? ", " : "", l->v[i].addr,
                     l->v[i].port, l->v[i].ssl ? " ssl" : "");
        if (w > 0 && (size_t)w < cap - *pos)
            *pos += (size_t)w;
    }
}

static void report_ready(int fd, const char *msg)
{
    if (fd < 0)
        return;
    size_t n = strlen(msg);
    ssize_t w = write(fd, msg, n);
    (void)w;
    close(fd);
}

static int is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strcmp(addr, "localhost") == 0;
}

/* Fork for --daemon: the parent waits for the child's verdict and exits with it. */
static int daemonize(int *ready_fd)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        char buf[1024];
        size_t n = 0;
        for (;;) {
            ssize_t r = read(p[0], buf + n, sizeof(buf) - 1 - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            n += (size_t)r;
            if (n == sizeof(buf) - 1)
                break;
        }
        buf[n] = '\0';
        close(p[0]);
        if (strncmp(buf, "ok", 2) == 0)
            _exit(0);
        fprintf(stderr, "aigwd: %s\n", n ? buf : "failed to start (see the error log)");
        _exit(1);
    }
    close(p[0]);
    setsid();
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        if (nul > 2)
            close(nul);
    }
    *ready_fd = p[1];
    return 0;
}

int aigw_daemon_start(const aigw_start_opts_t *opts)
{
    static node_t node;
    node_t *n = &node;
    memset(n, 0, sizeof(*n));
    n->opts = *opts;
    int ready_fd = -1, rc = 1;
    char err[1024];

    json_object_seed(0);
    signal(SIGPIPE, SIG_IGN);

    n->cfg = load_cfg(opts, 1, err, sizeof(err));
    if (!n->cfg) {
        fprintf(stderr, "aigwd: %s\n", err);
        return 1;
    }
    const aigw_conf_t *c = &n->cfg->conf;
    long other = aigw_daemon_running_pid(c->prefix);
    if (other && other != (long)getpid()) {
        snprintf(err, sizeof(err), "aigwd is already running in %s (pid %ld)", c->prefix,
                 other);
        goto early_fail;
    }
    if (prepare_prefix(c, err, sizeof(err)) != 0 ||
        node_id_load(c->prefix, n->node_id, err, sizeof(err)) != 0 ||
        check_listeners(c, err, sizeof(err)) != 0 ||
        build_ctxs(c, n->ctx, err, sizeof(err)) != 0 ||
        probe_listen(&c->proxy_listen, err, sizeof(err)) != 0 ||
        probe_listen(&c->admin_listen, err, sizeof(err)) != 0 ||
        probe_listen(&c->status_listen, err, sizeof(err)) != 0)
        goto early_fail;
    if (c->database != AIGW_DB_OFF && check_store(c, err, sizeof(err)) != 0)
        goto early_fail;
    if (c->database == AIGW_DB_OFF && c->role != AIGW_ROLE_DATA_PLANE &&
        prepare_dbless(c, err, sizeof(err)) != 0)
        goto early_fail;
    if (gethostname(n->hostname, sizeof(n->hostname) - 1) != 0)
        aigw_strlcpy(n->hostname, "localhost", sizeof(n->hostname));
    if (aigw_log_configure(c, err, sizeof(err)) != 0)
        goto early_fail;

    if (opts->daemonize) {
        fflush(stderr);
        if (daemonize(&ready_fd) != 0) {
            snprintf(err, sizeof(err), "cannot daemonize: %s", strerror(errno));
            goto early_fail;
        }
    }

    /* Hybrid mode: the control plane's cluster thread starts after the fork (threads do not
     * survive it); a data plane's settings are checked now, its link starts once the
     * plugins are initialised (its cached configuration is loaded before "ready"). */
    if (c->role == AIGW_ROLE_CONTROL_PLANE &&
        aigw_cluster_cp_start(c, on_remote_change, err, sizeof(err)) != 0) {
        report_ready(ready_fd, err);
        goto early_fail;
    }
    if (c->role == AIGW_ROLE_DATA_PLANE && aigw_cluster_dp_check(c, err, sizeof(err)) != 0) {
        report_ready(ready_fd, err);
        goto early_fail;
    }

    for (size_t i = 0; i < c->admin_listen.n; i++)
        if (!is_loopback(c->admin_listen.v[i].addr))
            AIGW_LOG(AIGW_LOG_WARN,
                     "the admin API listens on %s:%d, reachable from the network without "
                     "authentication: anyone who can reach it can change the gateway; restrict "
                     "it with a firewall or bind it to 127.0.0.1",
                     c->admin_listen.v[i].addr, c->admin_listen.v[i].port);

    uv_loop_init(&n->loop);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    size_t nworkers = (c->role == AIGW_ROLE_CONTROL_PLANE || c->proxy_listen.n == 0)
                          ? 0
                          : (size_t)c->worker_processes;
    int want_admin = c->role != AIGW_ROLE_DATA_PLANE &&
                     (c->admin_listen.n > 0 || c->status_listen.n > 0);
    if (c->role == AIGW_ROLE_DATA_PLANE && c->status_listen.n > 0)
        want_admin = 1;
    n->n_threads = nworkers + (want_admin ? 1 : 0);
    n->threads = calloc(n->n_threads ? n->n_threads : 1, sizeof(thread_t));
    if (!n->threads) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail_loop;
    }
    size_t made = 0;
    for (; made < n->n_threads; made++) {
        int is_admin = want_admin && made == nworkers;
        if (thread_init(n, &n->threads[made], is_admin, made) != 0) {
            snprintf(err, sizeof(err), "cannot start thread %zu: out of memory", made);
            made++;
            goto fail_threads_init;
        }
    }
    for (size_t i = 0; i < n->n_threads; i++)
        pthread_create(&n->threads[i].tid, NULL, thread_main, &n->threads[i]);

    pthread_mutex_lock(&n->mu);
    while (n->started + n->failed < n->n_threads)
        pthread_cond_wait(&n->cv, &n->mu);
    int failed = n->failed > 0;
    if (failed)
        aigw_strlcpy(err, n->start_err, sizeof(err));
    pthread_mutex_unlock(&n->mu);

    uv_signal_init(&n->loop, &n->sig_term);
    uv_signal_init(&n->loop, &n->sig_int);
    uv_signal_init(&n->loop, &n->sig_quit);
    uv_signal_init(&n->loop, &n->sig_hup);
    uv_signal_init(&n->loop, &n->sig_usr1);
    n->sig_term.data = n->sig_int.data = n->sig_quit.data = n->sig_hup.data =
        n->sig_usr1.data = n;

    if (failed) {
        fprintf(stderr, "aigwd: %s\n", err);
        AIGW_LOG(AIGW_LOG_ERR, "%s", err);
        report_ready(ready_fd, err);
        ready_fd = -1;
        stop_all(n);
    } else {
        char pidpath[4200], pidline[32];
        aigw_daemon_pid_path(c->prefix, pidpath, sizeof(pidpath));
        int pl = snprintf(pidline, sizeof(pidline), "%ld\n", (long)getpid());
        if (aigw_write_file_atomic(pidpath, pidline, (size_t)pl, 0644) != 0)
            AIGW_LOG(AIGW_LOG_ERR, "cannot write %s: %s", pidpath, strerror(errno));
        uv_signal_start(&n->sig_term, on_signal, SIGTERM);
        uv_signal_start(&n->sig_int, on_signal, SIGINT);
        uv_signal_start(&n->sig_quit, on_signal, SIGQUIT);
        uv_signal_start(&n->sig_hup, on_signal, SIGHUP);
        uv_signal_start(&n->sig_usr1, on_signal, SIGUSR1);
        char where[2048];
        size_t pos = 0;
        where[0] = '\0';
        describe("proxy", &c->proxy_listen, where, sizeof(where), &pos);
        describe("admin", &c->admin_listen, where, sizeof(where), &pos);
        describe("status", &c->status_listen, where, sizeof(where), &pos);
        AIGW_LOG(AIGW_LOG_NOTICE, "aigwd %s started (pid %ld, %zu workers, prefix %s): %s",
                 AIGW_VERSION, (long)getpid(), nworkers, c->prefix, where);
        aigw_healthcheck_start();
        if (aigw_plugins_global_init(c) != 0)
            AIGW_LOG(AIGW_LOG_ERR, "a plugin could not start; requests that use it fail");
        /* A control plane proxies nothing; a data plane's runtime comes from the cluster
         * link (cluster/dp.c). */
        if (c->role == AIGW_ROLE_TRADITIONAL)
            aigw_runtime_follow_snapshots();
        if (c->role != AIGW_ROLE_DATA_PLANE)
            builder_start(n->cfg);
        if (c->role == AIGW_ROLE_DATA_PLANE &&
            aigw_cluster_dp_start(c, n->node_id, n->hostname, err, sizeof(err)) != 0)
            AIGW_LOG(AIGW_LOG_ERR, "%s; this data plane serves nothing", err);
        report_ready(ready_fd, "ok");
        ready_fd = -1;
        rc = 0;
    }

    uv_run(&n->loop, UV_RUN_DEFAULT);

    for (size_t i = 0; i < n->n_threads; i++)
        pthread_join(n->threads[i].tid, NULL);
    builder_stop();
    aigw_cluster_cp_stop();
    aigw_cluster_dp_stop();
    aigw_healthcheck_stop();
    aigw_runtime_shutdown();
    aigw_plugins_global_shutdown();
    aigw_metrics_shutdown();
    made = n->n_threads;
fail_threads_init:
    for (size_t i = 0; i < made; i++)
        thread_fini(&n->threads[i]);
    free(n->threads);
fail_loop:
    aigw_cluster_cp_stop();
    aigw_cluster_dp_stop();
    if (!uv_is_closing((uv_handle_t *)&n->sig_term) && n->sig_term.loop) {
        /* Started signals are closed by stop_all; handles never started need no close. */
    }
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
    if (rc == 0) {
        char pidpath[4200];
        aigw_daemon_pid_path(n->cfg->conf.prefix, pidpath, sizeof(pidpath));
        if (aigw_daemon_running_pid(n->cfg->conf.prefix) == (long)getpid())
            unlink(pidpath);
        AIGW_LOG(AIGW_LOG_NOTICE, "aigwd stopped");
    } else if (ready_fd >= 0) {
        report_ready(ready_fd, err);
    }
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    for (int k = 0; k < AIGW_SVC_COUNT; k++)
        SSL_CTX_free(n->ctx[k]);
    aigw_cfg_release(n->cfg);
    aigw_snapshot_shutdown();
    aigw_log_shutdown();
    return rc;

early_fail:
    fprintf(stderr, "aigwd: %s\n", err);
    aigw_cluster_cp_stop();
    aigw_cluster_dp_stop();
    for (int k = 0; k < AIGW_SVC_COUNT; k++)
        SSL_CTX_free(n->ctx[k]);
    aigw_cfg_release(n->cfg);
    return 1;
}
