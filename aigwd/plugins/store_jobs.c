/* aigwd/plugins/store_jobs.c: see store_jobs.h. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "core/log.h"
#include "plugins/store_jobs.h"

#define QUEUE_MAX 4096
#define REOPEN_EVERY_S 2

/* One worker loop that submitted jobs: its async handle and the results waiting for it.
 * Entries live until aigw_store_jobs_stop (the handle's memory must outlive uv_close). */
typedef struct aigw_store_jobs__loop {
    uv_loop_t *loop;
    uv_async_t async;
    int closed;                         /* worker_close ran: deliver nothing more */
    aigw_store_job_t *replies, *replies_tail;
    struct aigw_store_jobs__loop *next;
} loop_ent_t;

static struct {
    pthread_mutex_t mu;                 /* everything below */
    pthread_cond_t cv;
    int running, stopping;
    pthread_t thread;
    aigw_store_job_t *head, *tail;
    size_t n_queued;
    loop_ent_t *loops;
    const aigw_conf_t *conf;
    aigw_store_t *st;                   /* the thread's; set before it starts */
} g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void job_unref(aigw_store_job_t *j)
{
    if (atomic_fetch_sub(&j->_refs, 1) == 1)
        j->destroy(j);
}

/* ---- the store thread ---------------------------------------------------------------------- */

static aigw_store_t *open_store(const aigw_conf_t *conf)
{
    if (conf->role == AIGW_ROLE_DATA_PLANE) {
        AIGW_LOG(AIGW_LOG_ERR, "a data plane node has no database: oauth2 tokens and codes "
                               "and cluster rate-limit counters cannot be used here");
        return NULL;
    }
    char err[512];
    aigw_store_t *st = aigw_store_open(conf, err, sizeof(err));
    if (!st)
        AIGW_LOG(AIGW_LOG_ERR, "plugins: cannot open the store for the store jobs thread: %s", err);
    return st;
}

static void deliver(aigw_store_job_t *j)
{
    loop_ent_t *e = j->_ent;
    pthread_mutex_lock(&g.mu);
    if (e->closed) {
        pthread_mutex_unlock(&g.mu);
        job_unref(j);
        return;
    }
    j->_next = NULL;
    if (e->replies_tail)
        e->replies_tail->_next = j;
    else
        e->replies = j;
    e->replies_tail = j;
    uv_async_send(&e->async);   /* under the lock: worker_close cannot close it meanwhile */
    pthread_mutex_unlock(&g.mu);
}

static void *store_main(void *arg)
{
    (void)arg;
    aigw_store_t *st = g.st;
    time_t last_open = time(NULL);
    int dp = g.conf->role == AIGW_ROLE_DATA_PLANE;
    for (;;) {
        pthread_mutex_lock(&g.mu);
        while (!g.head && !g.stopping)
            pthread_cond_wait(&g.cv, &g.mu);
        if (g.stopping) {
            pthread_mutex_unlock(&g.mu);
            break;
        }
        aigw_store_job_t *j = g.head;
        g.head = j->_next;
        if (!g.head)
            g.tail = NULL;
        g.n_queued--;
        pthread_mutex_unlock(&g.mu);

        if (!st && !dp && time(NULL) - last_open >= REOPEN_EVERY_S) {
            last_open = time(NULL);
            st = open_store(g.conf);
        }
        j->work(j, st);
        deliver(j);
    }
    g.st = st;   /* joined before it is read */
    return NULL;
}

int aigw_store_jobs_start(const aigw_conf_t *conf)
{
    if (g.running)
        return 0;
    g.conf = conf;
    g.st = open_store(conf);
    g.stopping = 0;
    if (pthread_create(&g.thread, NULL, store_main, NULL) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "plugins: cannot start the store jobs thread");
        aigw_store_close(g.st);
        g.st = NULL;
        return -1;
    }
    pthread_mutex_lock(&g.mu);
    g.running = 1;
    pthread_mutex_unlock(&g.mu);
    return 0;
}

void aigw_store_jobs_stop(void)
{
    pthread_mutex_lock(&g.mu);
    int was = g.running;
    g.stopping = 1;
    g.running = 0;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    if (was)
        pthread_join(g.thread, NULL);
    aigw_store_close(g.st);
    g.st = NULL;
    pthread_mutex_lock(&g.mu);
    aigw_store_job_t *q = g.head;
    g.head = g.tail = NULL;
    g.n_queued = 0;
    loop_ent_t *loops = g.loops;
    g.loops = NULL;
    pthread_mutex_unlock(&g.mu);
    while (q) {
        aigw_store_job_t *n = q->_next;
        job_unref(q);
        q = n;
    }
    while (loops) {
        loop_ent_t *n = loops->next;
        for (aigw_store_job_t *r = loops->replies; r;) {
            aigw_store_job_t *rn = r->_next;
            job_unref(r);
            r = rn;
        }
        free(loops);
        loops = n;
    }
}

/* ---- the worker side ----------------------------------------------------------------------- */

static void on_replies(uv_async_t *h)
{
    loop_ent_t *e = h->data;
    pthread_mutex_lock(&g.mu);
    aigw_store_job_t *r = e->replies;
    e->replies = e->replies_tail = NULL;
    pthread_mutex_unlock(&g.mu);
    while (r) {
        aigw_store_job_t *n = r->_next;
        if (!r->_canceled) {
            r->done(r);
            job_unref(r);   /* the request's reference */
        }
        job_unref(r);       /* the store side's */
        r = n;
    }
}

/* The entry of loop, made on its first use (worker thread of loop). Under g.mu. */
static loop_ent_t *loop_entry(uv_loop_t *loop)
{
    for (loop_ent_t *e = g.loops; e; e = e->next)
        if (e->loop == loop && !e->closed)
            return e;
    loop_ent_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    if (uv_async_init(loop, &e->async, on_replies) != 0) {
        free(e);
        return NULL;
    }
    e->async.data = e;
    uv_unref((uv_handle_t *)&e->async);
    e->loop = loop;
    e->next = g.loops;
    g.loops = e;
    return e;
}

int aigw_store_jobs_submit(uv_loop_t *loop, aigw_store_job_t *job)
{
    pthread_mutex_lock(&g.mu);
    if (!g.running || g.stopping || g.n_queued >= QUEUE_MAX) {
        int full = g.running && g.n_queued >= QUEUE_MAX;
        pthread_mutex_unlock(&g.mu);
        if (full)
            AIGW_LOG(AIGW_LOG_ERR, "plugins: the store jobs queue is full (%d jobs)", QUEUE_MAX);
        return -1;
    }
    loop_ent_t *e = loop_entry(loop);
    if (!e) {
        pthread_mutex_unlock(&g.mu);
        return -1;
    }
    job->_ent = e;
    job->_next = NULL;
    job->_canceled = 0;
    atomic_store(&job->_refs, 2);
    if (g.tail)
        g.tail->_next = job;
    else
        g.head = job;
    g.tail = job;
    g.n_queued++;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    return 0;
}

void aigw_store_jobs_cancel(aigw_store_job_t *job)
{
    job->_canceled = 1;   /* only the worker thread reads it */
    job_unref(job);
}

void aigw_store_jobs_worker_close(uv_loop_t *loop)
{
    pthread_mutex_lock(&g.mu);
    aigw_store_job_t *pending = NULL;
    for (loop_ent_t *e = g.loops; e; e = e->next) {
        if (e->loop != loop || e->closed)
            continue;
        e->closed = 1;
        /* Results nobody will read: only the store side's reference goes here; a request
         * still waiting lets go of its own when it is canceled. */
        if (e->replies_tail) {
            e->replies_tail->_next = pending;
            pending = e->replies;
        }
        e->replies = e->replies_tail = NULL;
        uv_close((uv_handle_t *)&e->async, NULL);
    }
    pthread_mutex_unlock(&g.mu);
    while (pending) {
        aigw_store_job_t *n = pending->_next;
        job_unref(pending);
        pending = n;
    }
}
