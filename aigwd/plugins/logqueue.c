/* aigwd/plugins/logqueue.c: the log plugins' shipper queue (plugins/logqueue.h), Kong's
 * kong/tools/queue.lua on a thread per queue.
 *
 * Each queue: a singly linked list of malloc'd entries (oldest first) under a mutex, a
 * condition variable on CLOCK_MONOTONIC (every wait of the thread is a timed wait, and every
 * state change a waiter cares about signals it), and one thread that takes batches and hands
 * them to the sink. Queues live in a process-wide list under a mutex; a queue is found by
 * name while it is not ended. States:
 *   live      refs > 0;
 *   closing   refs == 0 (last release): the thread sends what is queued, until
 *             max_retry_time after the release at most, then drops the rest and ends; an
 *             acquire of the same name before the thread ended revives it (a reload that
 *             freed the old runtime before configuring the new one loses nothing);
 *   ended     the thread has returned (sink freed); joined and freed by the next acquire,
 *             release or shutdown (a queue still referenced stays allocated until released).
 * aigw_logq_shutdown sets a deadline on every queue: no more coalescing waits, retry sleeps
 * end at the deadline, and past it whatever is left is dropped with a count. */
#include "plugins/logqueue.h"
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"

#define COALESCE_MIN_TIME 0.05      /* Kong: send at once when less than this is left */
#define IDLE_WAIT_S 1.0             /* waits are timed: a push signals only a first entry
                                     * or a full batch */
#define CAPACITY_WARNING_THRESHOLD 0.8

#define SPARE_MAX_BYTES (4u << 20)  /* sent entries kept for reuse, per queue */

typedef struct entry {
    struct entry *next;
    size_t n;
    size_t cap;                     /* bytes of data[] */
    char data[];
} entry_t;

struct aigw_logq {
    struct aigw_logq *next;         /* registry list (reg_mu) */
    char *name;
    char *label;
    aigw_logq_opts_t o;
    aigw_logq_sink_t sink;          /* the thread's own once started */
    pthread_t thr;
    int refs;                       /* reg_mu */
    int joined;                     /* reg_mu */

    pthread_mutex_t mu;             /* everything below */
    pthread_cond_t cv;
    entry_t *head, *tail;
    size_t count, bytes;
    entry_t *spare;                 /* sent entries for reuse: a malloc and a cross-thread
                                     * free per request cost more than the record */
    size_t spare_bytes;
    int closing;                    /* refs reached 0 */
    double close_deadline;          /* monotonic seconds: drain bound after the last release */
    int shutdown;                   /* aigw_logq_shutdown */
    double shutdown_deadline;
    int ended;                      /* the thread returned (or is returning) */
    int abandon;                    /* a batch hit the close/shutdown deadline: drop the rest */
    int dropping;                   /* a full-queue episode is under way */
    int warned;                     /* capacity warning given (Kong's `warned`) */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct aigw_logq *reg_head;

static _Atomic uint64_t dropped_total;
static _Atomic uint64_t sent_total;

/* ---- time ---------------------------------------------------------------------------------- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits on q->cv (q->mu held) until the monotonic time `until` or a signal. */
static void wait_until(aigw_logq_t *q, double until)
{
    double s = floor(until);
    struct timespec ts;
    if (until > 9e15) {
        s = 9e15;
        until = s;
    }
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((until - s) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    if (ts.tv_nsec < 0)
        ts.tv_nsec = 0;
    (void)pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

/* ---- options --------------------------------------------------------------------------------- */

static double num(const json_t *v, double dflt)
{
    if (json_is_number(v))
        return json_number_value(v);
    return dflt;
}

void aigw_logq_opts_from_config(const json_t *config, aigw_logq_opts_t *o)
{
    const json_t *q = json_object_get(config, "queue");
    o->max_batch_size = 1;
    o->max_coalescing_delay = 1;
    o->max_entries = 10000;
    o->max_bytes = 0;
    o->max_retry_time = 60;
    o->initial_retry_delay = 0.01;
    o->max_retry_delay = 60;
    if (json_is_object(q)) {
        double v = num(json_object_get(q, "max_batch_size"), 1);
        o->max_batch_size = v >= 1 ? (size_t)v : 1;
        v = num(json_object_get(q, "max_coalescing_delay"), 1);
        o->max_coalescing_delay = v >= 0 ? v : 0;
        v = num(json_object_get(q, "max_entries"), 10000);
        o->max_entries = v >= 1 ? (size_t)v : 1;
        v = num(json_object_get(q, "max_bytes"), 0);
        o->max_bytes = v >= 1 ? (size_t)v : 0;
        o->max_retry_time = num(json_object_get(q, "max_retry_time"), 60);
        o->initial_retry_delay = num(json_object_get(q, "initial_retry_delay"), 0.01);
        o->max_retry_delay = num(json_object_get(q, "max_retry_delay"), 60);
    }
    /* Kong's Queue.get_plugin_params: the deprecated fields win when set to a value other
     * than their old default (retry_count no longer works at all). */
    const json_t *qs = json_object_get(config, "queue_size");
    if (json_is_number(qs) && json_number_value(qs) != 1 && json_number_value(qs) >= 1)
        o->max_batch_size = (size_t)json_number_value(qs);
    const json_t *ft = json_object_get(config, "flush_timeout");
    if (json_is_number(ft) && json_number_value(ft) != 2 && json_number_value(ft) >= 0)
        o->max_coalescing_delay = json_number_value(ft);
    if (o->initial_retry_delay <= 0)
        o->initial_retry_delay = 0.001;
    if (o->max_retry_delay <= 0)
        o->max_retry_delay = 0.001;
    if (o->max_retry_time < 0)
        o->max_retry_time = 0;
}

/* ---- the thread ------------------------------------------------------------------------------ */

static void free_entries(entry_t *e)
{
    while (e) {
        entry_t *n = e->next;
        free(e);
        e = n;
    }
}

/* Keeps sent entries for reuse up to SPARE_MAX_BYTES, frees the rest. q->mu NOT held. */
static void recycle(aigw_logq_t *q, entry_t *e)
{
    pthread_mutex_lock(&q->mu);
    while (e && q->spare_bytes + e->cap <= SPARE_MAX_BYTES) {
        entry_t *n = e->next;
        e->next = q->spare;
        q->spare = e;
        q->spare_bytes += e->cap;
        e = n;
    }
    pthread_mutex_unlock(&q->mu);
    free_entries(e);
}

/* Detaches all queued entries (q->mu held); returns how many. */
static size_t take_all(aigw_logq_t *q, entry_t **out)
{
    size_t n = q->count;
    *out = q->head;
    q->head = q->tail = NULL;
    q->count = 0;
    q->bytes = 0;
    return n;
}

/* The time past which the thread gives up (q->mu held): 0 when none. */
static double give_up_at(const aigw_logq_t *q)
{
    double t = 0;
    if (q->shutdown)
        t = q->shutdown_deadline;
    if (q->closing && (t == 0 || q->close_deadline < t))
        t = q->close_deadline;
    return t;
}

/* Sends one batch, retrying as Kong's handle(); q->mu NOT held. Returns 1 when the queue must
 * stop retrying and drop everything (shutdown/close deadline passed), else 0. */
static int handle(aigw_logq_t *q, entry_t *batch, size_t n)
{
    const char **ents = malloc(n * sizeof(*ents));
    size_t *lens = malloc(n * sizeof(*lens));
    if (!ents || !lens) {
        free(ents);
        free(lens);
        AIGW_LOG(AIGW_LOG_ERR, "[%s] queue: out of memory sending a batch. %zu queue entries "
                               "were lost", q->label, n);
        atomic_fetch_add(&dropped_total, n);
        return 0;
    }
    size_t i = 0;
    for (entry_t *e = batch; e && i < n; e = e->next, i++) {
        ents[i] = e->data;
        lens[i] = e->n;
    }
    double start = mono_now();
    unsigned retry = 0;
    int stop = 0;
    for (;;) {
        char err[512] = "";
        if (q->sink.send(q->sink.ud, ents, lens, n, err, sizeof(err)) == 0) {
            atomic_fetch_add(&sent_total, n);
            break;
        }
        AIGW_LOG(AIGW_LOG_WARN, "[%s] queue: handler could not process entries: %s", q->label,
                 err[0] ? err : "no error details returned by handler");
        double now = mono_now();
        if (now - start > q->o.max_retry_time) {
            AIGW_LOG(AIGW_LOG_ERR, "[%s] queue: could not send entries due to max_retry_time "
                                   "exceeded. %zu queue entries were lost", q->label, n);
            atomic_fetch_add(&dropped_total, n);
            break;
        }
        double delay = ldexp(q->o.initial_retry_delay, retry > 60 ? 60 : (int)retry);
        if (delay > q->o.max_retry_delay)
            delay = q->o.max_retry_delay;
        retry++;
        double until = now + delay;
        pthread_mutex_lock(&q->mu);
        for (;;) {
            double gu = give_up_at(q);
            now = mono_now();
            if (gu > 0 && now >= gu) {
                stop = 1;
                break;
            }
            if (now >= until)
                break;
            wait_until(q, gu > 0 && gu < until ? gu : until);
        }
        pthread_mutex_unlock(&q->mu);
        if (stop) {
            AIGW_LOG(AIGW_LOG_ERR, "[%s] queue: could not send entries before the queue "
                                   "ended. %zu queue entries were lost", q->label, n);
            atomic_fetch_add(&dropped_total, n);
            break;
        }
    }
    free(ents);
    free(lens);
    return stop;
}

static void *queue_main(void *arg)
{
    aigw_logq_t *q = arg;
    aigw_log_thread_name = "logq";
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->count == 0 && !q->closing && !q->shutdown)
            wait_until(q, mono_now() + IDLE_WAIT_S);
        int past = q->abandon || (q->shutdown && mono_now() >= q->shutdown_deadline);
        if (q->count == 0 || past) {
            if (q->count == 0 && !q->closing && !q->shutdown)
                continue;
            /* Ending: what is left when the deadline has passed is lost. */
            entry_t *rest;
            size_t n = take_all(q, &rest);
            q->ended = 1;
            pthread_mutex_unlock(&q->mu);
            if (n) {
                AIGW_LOG(AIGW_LOG_ERR, "[%s] queue: could not send entries before the queue "
                                       "ended. %zu queue entries were lost", q->label, n);
                atomic_fetch_add(&dropped_total, n);
            }
            free_entries(rest);
            break;
        }
        /* Coalesce: up to max_coalescing_delay for a full batch, not when ending. */
        double started = mono_now();
        while (q->count < q->o.max_batch_size && !q->closing && !q->shutdown) {
            double left = q->o.max_coalescing_delay - (mono_now() - started);
            if (left < COALESCE_MIN_TIME)
                break;
            wait_until(q, mono_now() + (left < IDLE_WAIT_S ? left : IDLE_WAIT_S));
        }
        if (q->count == 0)
            continue;   /* cannot happen (only this thread takes), kept for safety */
        size_t n = q->count < q->o.max_batch_size ? q->count : q->o.max_batch_size;
        entry_t *batch = q->head, *last = q->head;
        size_t bytes = last->n;
        for (size_t i = 1; i < n; i++) {
            last = last->next;
            bytes += last->n;
        }
        q->head = last->next;
        if (!q->head)
            q->tail = NULL;
        last->next = NULL;
        q->count -= n;
        q->bytes -= bytes;
        int resumed = q->dropping;
        q->dropping = 0;
        pthread_mutex_unlock(&q->mu);
        if (resumed)
            AIGW_LOG(AIGW_LOG_INFO, "[%s] queue: queue resumed processing", q->label);
        int stop = handle(q, batch, n);
        recycle(q, batch);
        pthread_mutex_lock(&q->mu);
        if (stop)
            q->abandon = 1;   /* past the deadline: the loop head drops the rest and ends */
    }
    if (q->sink.free)
        q->sink.free(q->sink.ud);
    q->sink.ud = NULL;
    return NULL;
}

/* ---- registry -------------------------------------------------------------------------------- */

static void queue_free(aigw_logq_t *q)
{
    free_entries(q->head);
    free_entries(q->spare);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q->name);
    free(q->label);
    free(q);
}

/* reg_mu held: joins and frees every ended queue nobody references. */
static void reap_locked(void)
{
    aigw_logq_t **pp = &reg_head;
    while (*pp) {
        aigw_logq_t *q = *pp;
        pthread_mutex_lock(&q->mu);
        int ended = q->ended;
        pthread_mutex_unlock(&q->mu);
        if (ended && !q->joined) {
            pthread_join(q->thr, NULL);
            q->joined = 1;
        }
        if (q->joined && q->refs == 0) {
            *pp = q->next;
            queue_free(q);
            continue;
        }
        pp = &q->next;
    }
}

aigw_logq_t *aigw_logq_acquire(const char *name, const char *label, const aigw_logq_opts_t *opts,
                               aigw_logq_sink_t sink, char *err, size_t errlen)
{
    if (!name || !opts || !sink.send) {
        snprintf(err, errlen, "log queue: bad arguments");
        if (sink.free)
            sink.free(sink.ud);
        return NULL;
    }
    pthread_mutex_lock(&reg_mu);
    reap_locked();
    for (aigw_logq_t *q = reg_head; q; q = q->next) {
        if (q->joined || strcmp(q->name, name) != 0)
            continue;
        pthread_mutex_lock(&q->mu);
        int alive = !q->ended && !q->shutdown;
        if (alive) {
            q->closing = 0;          /* revived (a reload released it first) */
            q->abandon = 0;
            q->refs++;
        }
        pthread_mutex_unlock(&q->mu);
        if (alive) {
            pthread_mutex_unlock(&reg_mu);
            if (sink.free)
                sink.free(sink.ud);
            return q;
        }
    }
    aigw_logq_t *q = calloc(1, sizeof(*q));
    if (!q || !(q->name = strdup(name)) || !(q->label = strdup(label ? label : name))) {
        pthread_mutex_unlock(&reg_mu);
        if (q) {
            free(q->name);
            free(q);
        }
        snprintf(err, errlen, "out of memory");
        if (sink.free)
            sink.free(sink.ud);
        return NULL;
    }
    q->o = *opts;
    if (q->o.max_batch_size < 1)
        q->o.max_batch_size = 1;
    if (q->o.max_entries < 1)
        q->o.max_entries = 1;
    if (q->o.max_coalescing_delay < 0)
        q->o.max_coalescing_delay = 0;
    if (q->o.max_retry_time < 0)
        q->o.max_retry_time = 0;
    q->sink = sink;
    q->refs = 1;
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    if (ok) {
        ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&q->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (ok && pthread_mutex_init(&q->mu, NULL) != 0) {
        pthread_cond_destroy(&q->cv);
        ok = 0;
    }
    if (!ok) {
        pthread_mutex_unlock(&reg_mu);
        free(q->name);
        free(q->label);
        free(q);
        snprintf(err, errlen, "log queue: cannot create its lock");
        if (sink.free)
            sink.free(sink.ud);
        return NULL;
    }
    int rc = pthread_create(&q->thr, NULL, queue_main, q);
    if (rc != 0) {
        pthread_mutex_unlock(&reg_mu);
        snprintf(err, errlen, "log queue: cannot start its thread: %s", strerror(rc));
        q->sink.ud = NULL;
        queue_free(q);
        if (sink.free)
            sink.free(sink.ud);
        return NULL;
    }
    q->next = reg_head;
    reg_head = q;
    pthread_mutex_unlock(&reg_mu);
    return q;
}

void aigw_logq_release(aigw_logq_t *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&reg_mu);
    if (q->refs > 0 && --q->refs == 0) {
        pthread_mutex_lock(&q->mu);
        if (!q->closing) {
            q->closing = 1;
            q->close_deadline = mono_now() + q->o.max_retry_time;
        }
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
    }
    reap_locked();
    pthread_mutex_unlock(&reg_mu);
}

int aigw_logq_push(aigw_logq_t *q, const char *entry, size_t n)
{
    if (!q)
        return -1;
    if (q->o.max_bytes && n > q->o.max_bytes) {
        AIGW_LOG(AIGW_LOG_ERR, "[%s] queue: string to be queued is longer (%zu bytes) than the "
                               "queue's max_bytes (%zu bytes)", q->label, n, q->o.max_bytes);
        return -1;
    }
    size_t dropped = 0, dropped_bytes_episode = 0;
    int first_full = 0, warn = 0;
    /* One critical section when a sent entry can be reused (the copy of a record is
     * cheaper than a second lock round trip); malloc outside the lock otherwise. */
    pthread_mutex_lock(&q->mu);
    entry_t *e = q->spare;
    if (e && e->cap >= n + 1) {
        q->spare = e->next;
        q->spare_bytes -= e->cap;
    } else {
        pthread_mutex_unlock(&q->mu);
        size_t cap = (n + 1 + 511) & ~(size_t)511;   /* rounded: records vary a little */
        if (!(e = malloc(sizeof(*e) + cap)))
            return -1;
        e->cap = cap;
        pthread_mutex_lock(&q->mu);
    }
    e->next = NULL;
    e->n = n;
    if (n)
        memcpy(e->data, entry, n);
    e->data[n] = '\0';
    if (q->ended) {
        pthread_mutex_unlock(&q->mu);
        free(e);
        atomic_fetch_add(&dropped_total, 1);
        return -1;
    }
    if ((double)q->count >= (double)q->o.max_entries * CAPACITY_WARNING_THRESHOLD) {
        if (!q->warned)
            warn = q->warned = 1;
    } else {
        q->warned = 0;
    }
    size_t bytes_dropped_n = 0;
    while (q->head && (q->count >= q->o.max_entries ||
                       (q->o.max_bytes && q->bytes + n > q->o.max_bytes))) {
        entry_t *old = q->head;
        int by_count = q->count >= q->o.max_entries;
        q->head = old->next;
        if (!q->head)
            q->tail = NULL;
        q->count--;
        q->bytes -= old->n;
        free(old);
        dropped++;
        if (!by_count)
            bytes_dropped_n++;
    }
    if (dropped && !q->dropping) {
        q->dropping = 1;
        first_full = 1;
        dropped_bytes_episode = bytes_dropped_n;
    }
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->count++;
    q->bytes += n;
    /* Wake the sender only when it has something new to do: the first entry (it waits for
     * one), or a full batch (it stops coalescing). A wake per entry would cost a context
     * switch per request when the sender shares the worker's CPU. */
    if (q->count == 1 || q->count >= q->o.max_batch_size)
        pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);

    if (warn)
        AIGW_LOG(AIGW_LOG_WARN, "[%s] queue: queue at 80%% capacity", q->label);
    if (dropped) {
        atomic_fetch_add(&dropped_total, dropped);
        if (first_full) {
            if (dropped_bytes_episode)
                AIGW_LOG(AIGW_LOG_ERR, "[%s] queue: byte capacity exceeded, %zu queue entries "
                                       "were dropped", q->label, dropped_bytes_episode);
            else
                AIGW_LOG(AIGW_LOG_ERR, "[%s] queue: queue full, dropping old entries until "
                                       "processing is successful again", q->label);
        }
        return 1;
    }
    return 0;
}

uint64_t aigw_logq_dropped_total(void)
{
    return atomic_load(&dropped_total);
}

uint64_t aigw_logq_sent_total(void)
{
    return atomic_load(&sent_total);
}

void aigw_logq_shutdown(int deadline_ms)
{
    if (deadline_ms < 0)
        deadline_ms = 0;
    pthread_mutex_lock(&reg_mu);
    double deadline = mono_now() + deadline_ms / 1000.0;
    for (aigw_logq_t *q = reg_head; q; q = q->next) {
        pthread_mutex_lock(&q->mu);
        if (!q->shutdown) {
            q->shutdown = 1;
            q->shutdown_deadline = deadline;
        }
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
    }
    /* Join every thread: each one ends by the deadline (or when the send in flight returns,
     * bounded by its sink's own timeout). */
    for (aigw_logq_t *q = reg_head; q; q = q->next) {
        if (!q->joined) {
            pthread_join(q->thr, NULL);
            q->joined = 1;
        }
    }
    reap_locked();
    pthread_mutex_unlock(&reg_mu);
}
