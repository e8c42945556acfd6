/* aigwd/plugins/logqueue.h: the background shipper of the log plugins (http-log, file-log,
 * tcp-log, udp-log): Kong's queue (kong/tools/queue.lua, queue_schema.lua) as a bounded
 * in-memory queue with its own thread.
 *
 * The log phase (a proxy worker) pushes one serialized record; it never waits on a sink: the
 * push copies the bytes under a short lock and signals the queue's thread. That thread takes
 * up to max_batch_size entries (after waiting at most max_coalescing_delay seconds for a batch
 * to fill), calls the sink's send function, and retries a failed batch with exponential
 * backoff (initial_retry_delay * 2^n, capped at max_retry_delay) until max_retry_time has
 * passed, then drops it with a logged, counted error. A full queue (max_entries, or max_bytes
 * when set) drops its oldest entry, as Kong does ("queue full, dropping old entries until
 * processing is successful again", logged once per episode), and counts it.
 *
 * Queues are shared by name: plugin instances whose sink parameters are equal (Kong: "Queues
 * are shared by plugin instances with equal endpoint parameters") and the same instance across
 * configuration reloads use one queue, so a reload loses nothing. Each configure() acquires,
 * each free_conf releases; the last release lets the thread drain what is queued (bounded by
 * max_retry_time) and end. aigw_logq_shutdown() (process end) gives every queue a short
 * deadline to drain, then drops the rest with a count, and joins every thread.
 *
 * Threads: acquire/release on the loader's thread (any thread, in fact); push from any
 * thread; the sink's functions only on the queue's own thread. */
#ifndef AIGW_PLUGINS_LOGQUEUE_H
#define AIGW_PLUGINS_LOGQUEUE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct aigw_logq aigw_logq_t;

typedef struct aigw_logq_opts {
    size_t max_batch_size;        /* 1.. */
    double max_coalescing_delay;  /* seconds */
    size_t max_entries;           /* 1.. */
    size_t max_bytes;             /* 0: no byte bound */
    double max_retry_time;        /* seconds */
    double initial_retry_delay;   /* seconds */
    double max_retry_delay;       /* seconds */
} aigw_logq_opts_t;

/* Reads a plugin config's `queue` record (Kong's queue_schema; defaults filled by the admin
 * schema) and the deprecated top-level fields Kong still maps (queue_size ->
 * max_batch_size, flush_timeout -> max_coalescing_delay, retry_count ignored) into *o. */
void aigw_logq_opts_from_config(const json_t *config, aigw_logq_opts_t *o);

/* The sink of a queue. All functions run on the queue's thread only.
 * send: delivers entries[0..n) (each one serialized record, without a trailing newline);
 *   0 on success, -1 on failure (then retried as above); err gets a one-line reason
 *   (never a secret: no credential, no record content).
 * free: releases ud when the queue ends. */
typedef struct aigw_logq_sink {
    int (*send)(void *ud, const char *const *entries, const size_t *lens, size_t n,
                char *err, size_t errlen);
    void (*free)(void *ud);
    void *ud;
} aigw_logq_sink_t;

/* The queue named name (e.g. "http-log http://host/path POST ..."): an existing one with
 * that name gets one more reference, and sink is freed at once (sink.free(sink.ud)) since
 * the existing queue keeps its own; otherwise a queue is created with opts and sink and its
 * thread started. label names the queue in log lines ("http-log <plugin id>"), never with
 * secrets (no URL userinfo). Returns NULL with a message in err (sink then freed too). */
aigw_logq_t *aigw_logq_acquire(const char *name, const char *label, const aigw_logq_opts_t *opts,
                               aigw_logq_sink_t sink, char *err, size_t errlen);
void aigw_logq_release(aigw_logq_t *q);

/* Queues a copy of entry[0..n). Never blocks on the sink. 0 queued; 1 queued after dropping
 * the oldest entry (full); -1 not queued (out of memory, or one entry larger than max_bytes). */
int aigw_logq_push(aigw_logq_t *q, const char *entry, size_t n);

/* Counters since start, for metrics and tests: entries dropped (full queue, or batches that
 * ran out of retries), entries sent. */
uint64_t aigw_logq_dropped_total(void);
uint64_t aigw_logq_sent_total(void);

/* Process end (main thread, after the workers and the last runtime): every queue gets up to
 * deadline_ms to deliver what is queued, then the rest is dropped (logged with a count) and
 * every queue thread is joined. Queues still referenced are ended too. */
void aigw_logq_shutdown(int deadline_ms);

#endif
