/* aigwd/plugins/ratelimit_redis.c: asynchronous Redis counters for rate-limiting (see the
 * header). hiredis 0.14 has no timeouts, so every call carries its own uv_timer_t; and its
 * libuv adapter ignores poll errors (a refused connection would then hang until the
 * timeout), so this file has its own adapter that hands errors to hiredis. */
#include "plugins/ratelimit_redis.h"
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/str.h"
#include "core/log.h"

/* Kong's usage() script, for every period of the request in one atomic step. */
static const char SCRIPT[] =
    "local r = {} "
    "for i = 1, #KEYS do "
    "local v = redis.call('INCR', KEYS[i]) "
    "if v == 1 then redis.call('EXPIRE', KEYS[i], ARGV[i]) end "
    "r[i] = v - 1 "
    "end "
    "return r";

#define MAX_KEYS 6

typedef struct conn conn_t;
typedef struct aigw_rl_redis_call call_t;

struct conn {
    conn_t *next;
    uv_loop_t *loop;
    char *host, *user, *pass;
    int port, db;
    redisAsyncContext *ac;      /* NULL: not connected */
    uv_getaddrinfo_t *gai;      /* a resolution under way */
    call_t *waiting;            /* calls waiting for it */
};

struct aigw_rl_redis_call {
    call_t *prev, *next;        /* the worker's calls */
    call_t *next_wait;
    conn_t *conn;
    aigw_rl_redis_cb cb;
    void *ud;
    size_t n;
    int argc;
    char *argv[3 + 2 * MAX_KEYS];
    size_t argvlen[3 + 2 * MAX_KEYS];
    uv_timer_t timer;
    int has_timer;
    int replied;                /* hiredis owes no callback */
    int timer_closed;
    int done;                   /* cb delivered or cancelled */
};

static _Thread_local conn_t *t_conns;
static _Thread_local call_t *t_calls;

/* ---- libuv adapter (as hiredis/adapters/libuv.h, plus poll errors) ------------------- */

typedef struct uvev {
    redisAsyncContext *ac;
    uv_poll_t handle;
    int events;
} uvev_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    uvev_t *p = h->data;
    if (status < 0) {
        /* POLLERR: libuv stopped the watcher. Let hiredis find the socket error (a failed
         * connect or a broken connection) so it fails the pending calls at once. */
        if (!p->ac)
            return;
        if (!(p->ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(p->ac);
        else
            redisAsyncHandleRead(p->ac);
        return;
    }
    if (p->ac && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void ev_update(uvev_t *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, on_poll);
    else
        uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d)
{
    uvev_t *p = d;
    p->events |= UV_READABLE;
    ev_update(p);
}

static void ev_del_read(void *d)
{
    uvev_t *p = d;
    p->events &= ~UV_READABLE;
    ev_update(p);
}

static void ev_add_write(void *d)
{
    uvev_t *p = d;
    p->events |= UV_WRITABLE;
    ev_update(p);
}

static void ev_del_write(void *d)
{
    uvev_t *p = d;
    p->events &= ~UV_WRITABLE;
    ev_update(p);
}

static void on_ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *d)
{
    uvev_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, on_ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return -1;
    uvev_t *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->handle.data = p;
    p->ac = ac;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return 0;
}

/* ---- calls ---------------------------------------------------------------------------- */

static void call_free_maybe(call_t *c)
{
    if (!c->replied || !c->timer_closed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else if (t_calls == c)
        t_calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    call_t *c = h->data;
    c->timer_closed = 1;
    call_free_maybe(c);
}

static void stop_timer(call_t *c)
{
    if (c->has_timer) {
        c->has_timer = 0;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    }
}

static void unwait(call_t *c)
{
    if (!c->conn)
        return;
    for (call_t **pp = &c->conn->waiting; *pp; pp = &(*pp)->next_wait) {
        if (*pp == c) {
            *pp = c->next_wait;
            c->next_wait = NULL;
            c->replied = 1;   /* never sent */
            return;
        }
    }
}

/* Ends the call for its owner (once). */
static void deliver(call_t *c, int ok, const int64_t *usage, const char *err)
{
    if (c->done)
        return;
    c->done = 1;
    stop_timer(c);
    if (c->cb)
        c->cb(c->ud, ok, usage, c->n, err);
}

/* ---- connections -------------------------------------------------------------------- */

static void drop_conn(conn_t *k)
{
    redisAsyncContext *ac = k->ac;
    if (!ac)
        return;
    k->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);   /* pending replies come back as NULL (now, or after a callback) */
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    conn_t *k = ac->data;
    if (status == REDIS_OK)
        return;
    if (k) {
        AIGW_LOG(AIGW_LOG_ERR, "rate-limiting: could not connect to Redis at %s:%d: %s",
                 k->host, k->port, ac->errstr);
        if (k->ac == ac)
            k->ac = NULL;
    }
    /* hiredis frees the context next; the pending calls get NULL replies */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    conn_t *k = ac->data;
    if (!k)
        return;
    if (status != REDIS_OK)
        AIGW_LOG(AIGW_LOG_ERR, "rate-limiting: lost the Redis connection to %s:%d: %s",
                 k->host, k->port, ac->errstr);
    if (k->ac == ac)
        k->ac = NULL;
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    const redisReply *reply = r;
    const char *what = priv;
    conn_t *k = ac->data;
    if (!reply || reply->type != REDIS_REPLY_ERROR || !k)
        return;
    AIGW_LOG(AIGW_LOG_ERR, "rate-limiting: Redis %s at %s:%d failed: %.200s", what, k->host,
             k->port, reply->str ? reply->str : "");
    drop_conn(k);   /* deferred by hiredis while in a callback */
}

/* Connects k to the address ip (a literal). 0, or -1 with err. */
static int connect_now(conn_t *k, const char *ip, char *err, size_t errlen)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, k->port);
    if (!ac) {
        snprintf(err, errlen, "could not connect to Redis at %s:%d: out of memory", k->host,
                 k->port);
        return -1;
    }
    if (ac->err) {
        snprintf(err, errlen, "could not connect to Redis at %s:%d: %s", k->host, k->port,
                 ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    if (ev_attach(ac, k->loop) != 0) {
        snprintf(err, errlen, "could not connect to Redis at %s:%d: cannot watch the socket",
                 k->host, k->port);
        redisAsyncFree(ac);
        return -1;
    }
    ac->data = k;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    k->ac = ac;
    int rc = REDIS_OK;
    if (k->pass && *k->pass) {
        if (k->user && *k->user) {
            const char *argv[] = {"AUTH", k->user, k->pass};
            rc = redisAsyncCommandArgv(ac, on_setup_reply, (void *)(uintptr_t) "AUTH", 3, argv,
                                       NULL);
        } else {
            const char *argv[] = {"AUTH", k->pass};
            rc = redisAsyncCommandArgv(ac, on_setup_reply, (void *)(uintptr_t) "AUTH", 2, argv,
                                       NULL);
        }
    }
    if (rc == REDIS_OK && k->db != 0) {
        char db[24];
        snprintf(db, sizeof(db), "%d", k->db);
        const char *argv[] = {"SELECT", db};
        rc = redisAsyncCommandArgv(ac, on_setup_reply, (void *)(uintptr_t) "SELECT", 2, argv,
                                   NULL);
    }
    if (rc != REDIS_OK) {
        snprintf(err, errlen, "could not set up the Redis connection to %s:%d", k->host,
                 k->port);
        drop_conn(k);
        return -1;
    }
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    call_t *c = priv;
    const redisReply *reply = r;
    c->replied = 1;
    if (!c->done) {
        char err[256];
        int64_t usage[MAX_KEYS] = {0};
        if (!reply) {
            snprintf(err, sizeof(err), "the Redis connection to %s:%d closed",
                     c->conn ? c->conn->host : "?", c->conn ? c->conn->port : 0);
            deliver(c, 0, NULL, err);
        } else if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof(err), "Redis error: %.200s", reply->str ? reply->str : "");
            deliver(c, 0, NULL, err);
        } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != c->n) {
            deliver(c, 0, NULL, "unexpected reply from Redis");
        } else {
            int good = 1;
            for (size_t i = 0; i < c->n; i++) {
                const redisReply *e = reply->element[i];
                if (!e || e->type != REDIS_REPLY_INTEGER)
                    good = 0;
                else
                    usage[i] = (int64_t)e->integer;
            }
            if (good)
                deliver(c, 1, usage, NULL);
            else
                deliver(c, 0, NULL, "unexpected reply from Redis");
        }
    }
    call_free_maybe(c);
}

static int send_call(call_t *c)
{
    conn_t *k = c->conn;
    if (!k->ac)
        return -1;
    if (redisAsyncCommandArgv(k->ac, on_reply, c, c->argc, (const char **)(void *)c->argv,
                              c->argvlen) != REDIS_OK)
        return -1;
    c->replied = 0;
    return 0;
}

static void fail_waiting(conn_t *k, const char *err)
{
    while (k->waiting) {
        call_t *c = k->waiting;
        k->waiting = c->next_wait;
        c->next_wait = NULL;
        c->replied = 1;
        deliver(c, 0, NULL, err);
        call_free_maybe(c);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    conn_t *k = req->data;
    free(req);
    if (!k) {
        uv_freeaddrinfo(res);
        return;
    }
    k->gai = NULL;
    char err[300];
    char ip[64] = "";
    if (status != 0 || !res) {
        snprintf(err, sizeof(err), "could not resolve the Redis host %s: %s", k->host,
                 uv_strerror(status));
    } else {
        /* IPv4 first (as Kong's resolver asks for A records before AAAA). */
        const struct addrinfo *pick = res;
        for (const struct addrinfo *a = res; a; a = a->ai_next)
            if (a->ai_family == AF_INET) {
                pick = a;
                break;
            }
        if (pick->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)(const void *)pick->ai_addr, ip,
                        sizeof(ip));
        else
            uv_ip4_name((const struct sockaddr_in *)(const void *)pick->ai_addr, ip,
                        sizeof(ip));
    }
    uv_freeaddrinfo(res);
    if (ip[0] && connect_now(k, ip, err, sizeof(err)) == 0) {
        while (k->waiting) {
            call_t *c = k->waiting;
            k->waiting = c->next_wait;
            c->next_wait = NULL;
            if (send_call(c) != 0) {
                c->replied = 1;
                deliver(c, 0, NULL, "could not send the command to Redis");
                call_free_maybe(c);
            }
        }
        return;
    }
    AIGW_LOG(AIGW_LOG_ERR, "rate-limiting: %s", err);
    fail_waiting(k, err);
}

static int same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static conn_t *conn_get(uv_loop_t *loop, const aigw_rl_redis_target_t *t)
{
    for (conn_t *k = t_conns; k; k = k->next)
        if (k->loop == loop && k->port == t->port && k->db == t->database &&
            strcmp(k->host, t->host) == 0 && same(k->user, t->username) &&
            same(k->pass, t->password))
            return k;
    conn_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->loop = loop;
    k->host = strdup(t->host);
    k->user = dup_or_null(t->username);
    k->pass = dup_or_null(t->password);
    if (!k->host || (t->username && *t->username && !k->user) ||
        (t->password && *t->password && !k->pass)) {
        free(k->host);
        free(k->user);
        free(k->pass);
        free(k);
        return NULL;
    }
    k->port = t->port;
    k->db = t->database;
    k->next = t_conns;
    t_conns = k;
    return k;
}

/* Makes sure k is connected or connecting. 0 or -1 with err. */
static int conn_start(conn_t *k, char *err, size_t errlen)
{
    if (k->ac || k->gai)
        return 0;
    unsigned char buf[16];
    if (uv_inet_pton(AF_INET, k->host, buf) == 0 || uv_inet_pton(AF_INET6, k->host, buf) == 0)
        return connect_now(k, k->host, err, errlen);
    uv_getaddrinfo_t *req = calloc(1, sizeof(*req));
    if (!req) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    req->data = k;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(k->loop, req, on_resolved, k->host, NULL, &hints);
    if (rc != 0) {
        free(req);
        snprintf(err, errlen, "could not resolve the Redis host %s: %s", k->host,
                 uv_strerror(rc));
        return -1;
    }
    k->gai = req;
    return 0;
}

static void on_timeout(uv_timer_t *tm)
{
    call_t *c = tm->data;
    if (c->done)
        return;
    conn_t *k = c->conn;
    char err[300];
    snprintf(err, sizeof(err), "timeout waiting for Redis at %s:%d", k->host, k->port);
    int waiting = 0;
    for (call_t *w = k->waiting; w; w = w->next_wait)
        if (w == c)
            waiting = 1;
    if (waiting) {
        unwait(c);
        deliver(c, 0, NULL, err);
        call_free_maybe(c);
        return;
    }
    deliver(c, 0, NULL, err);
    /* A Redis that does not answer in time is not trusted with the next calls: drop the
     * connection (its other pending calls fail now) and let the next call reconnect. */
    AIGW_LOG(AIGW_LOG_ERR, "rate-limiting: %s: dropping the connection", err);
    drop_conn(k);
}

aigw_rl_redis_call_t *aigw_rl_redis_incr(uv_loop_t *loop, const aigw_rl_redis_target_t *t,
                                         const char *const *keys, const int64_t *ttl, size_t n,
                                         aigw_rl_redis_cb cb, void *ud, char *err,
                                         size_t errlen)
{
    if (n == 0 || n > MAX_KEYS || !t->host) {
        snprintf(err, errlen, "bad Redis call");
        return NULL;
    }
    conn_t *k = conn_get(loop, t);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (conn_start(k, err, errlen) != 0)
        return NULL;
    call_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->conn = k;
    c->cb = cb;
    c->ud = ud;
    c->n = n;
    c->replied = 1;
    c->timer_closed = 1;
    char num[24];
    int ok = 1;
    c->argv[c->argc++] = strdup("EVAL");
    c->argv[c->argc++] = strdup(SCRIPT);
    snprintf(num, sizeof(num), "%zu", n);
    c->argv[c->argc++] = strdup(num);
    for (size_t i = 0; i < n; i++)
        c->argv[c->argc++] = strdup(keys[i]);
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof(num), "%lld", (long long)ttl[i]);
        c->argv[c->argc++] = strdup(num);
    }
    for (int i = 0; i < c->argc; i++) {
        if (!c->argv[i])
            ok = 0;
        else
            c->argvlen[i] = strlen(c->argv[i]);
    }
    if (!ok) {
        call_free_maybe(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (t->timeout_ms > 0) {
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        c->has_timer = 1;
        c->timer_closed = 0;
        uv_timer_start(&c->timer, on_timeout, (uint64_t)t->timeout_ms, 0);
    }
    c->next = t_calls;
    if (t_calls)
        t_calls->prev = c;
    t_calls = c;
    if (k->ac) {
        if (send_call(c) != 0) {
            c->done = 1;
            stop_timer(c);
            call_free_maybe(c);
            snprintf(err, errlen, "could not send the command to Redis at %s:%d", k->host,
                     k->port);
            return NULL;
        }
    } else {
        c->replied = 0;
        c->next_wait = k->waiting;
        k->waiting = c;
    }
    return c;
}

void aigw_rl_redis_cancel(aigw_rl_redis_call_t *c)
{
    if (!c || c->done)
        return;
    c->done = 1;
    c->cb = NULL;
    stop_timer(c);
    int waiting = 0;
    if (c->conn)
        for (call_t *w = c->conn->waiting; w; w = w->next_wait)
            if (w == c)
                waiting = 1;
    if (waiting)
        unwait(c);
    call_free_maybe(c);
}

void aigw_rl_redis_worker_close(uv_loop_t *loop)
{
    /* No owner hears about anything from now on. */
    for (call_t *c = t_calls; c; c = c->next) {
        c->done = 1;
        c->cb = NULL;
    }
    conn_t **pp = &t_conns;
    while (*pp) {
        conn_t *k = *pp;
        if (k->loop != loop) {
            pp = &k->next;
            continue;
        }
        *pp = k->next;
        drop_conn(k);
        if (k->gai)
            k->gai->data = NULL;
        for (call_t *c = k->waiting; c; c = c->next_wait)
            c->replied = 1;
        k->waiting = NULL;
        for (call_t *c = t_calls; c; c = c->next)
            if (c->conn == k)
                c->conn = NULL;
        free(k->host);
        free(k->user);
        free(k->pass);
        free(k);
    }
    for (call_t *c = t_calls, *nx; c; c = nx) {
        nx = c->next;
        c->done = 1;
        c->cb = NULL;
        if (!c->conn)
            c->replied = 1;
        stop_timer(c);
        call_free_maybe(c);
    }
}
