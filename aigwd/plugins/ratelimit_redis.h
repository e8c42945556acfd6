/* aigwd/plugins/ratelimit_redis.h: the rate-limiting plugin's asynchronous Redis counters.
 *
 * Worker thread only. Each worker keeps one hiredis connection per (host, port, database,
 * username, password) on its own libuv loop, opened lazily, authenticated (AUTH) and
 * switched (SELECT) once, reopened by the next call after Redis went away. A call runs one
 * EVAL that INCRs every key of the request (and sets Kong's EXPIRE on a new key) atomically
 * and hands back the counts before this request; nothing ever blocks: a call that gets no
 * reply within its timeout fails (and the connection is dropped: a Redis that stopped
 * answering is not trusted with later calls). Host names other than IP literals are
 * resolved with uv_getaddrinfo (thread pool) on each new connection. */
#ifndef AIGW_PLUGINS_RATELIMIT_REDIS_H
#define AIGW_PLUGINS_RATELIMIT_REDIS_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct aigw_rl_redis_target {
    const char *host;
    int port;
    int database;
    const char *username;     /* NULL or "" for none */
    const char *password;     /* NULL or "" for none (never logged) */
    int timeout_ms;           /* 0: no deadline of our own (not recommended) */
} aigw_rl_redis_target_t;

typedef struct aigw_rl_redis_call aigw_rl_redis_call_t;

/* ok = 1 with usage[i] = the count of keys[i] before this request, or ok = 0 on any
 * failure (err: a message without secrets). Runs once on the loop's thread, never from
 * inside aigw_rl_redis_incr. */
typedef void (*aigw_rl_redis_cb)(void *ud, int ok, const int64_t *usage, size_t n,
                                 const char *err);

/* Starts the counting of n keys (n <= 6; ttl[i]: EXPIRE seconds for a new key). Returns the
 * call (cb later), or NULL with err filled when it could not even be started (cb never runs).
 * Strings are copied. */
aigw_rl_redis_call_t *aigw_rl_redis_incr(uv_loop_t *loop, const aigw_rl_redis_target_t *t,
                                         const char *const *keys, const int64_t *ttl, size_t n,
                                         aigw_rl_redis_cb cb, void *ud, char *err,
                                         size_t errlen);
/* The caller no longer wants the answer: cb will not run. */
void aigw_rl_redis_cancel(aigw_rl_redis_call_t *c);

/* The worker's thread at its shutdown: closes its connections and handles. */
void aigw_rl_redis_worker_close(uv_loop_t *loop);

#endif
