/* aigwd/plugins/store_jobs.h: plugins' access to the store, off the proxy loops (oauth2
 * tokens and authorization codes, rate-limiting's cluster counters).
 *
 * One dedicated thread owns its own store connection (opened by aigw_store_jobs_start,
 * from the plugin framework's global init) and runs jobs from a bounded queue, one at a time. A job's
 * result goes back to the worker loop that submitted it through a uv_async_t made lazily on
 * that loop (closed by aigw_store_jobs_worker_close), where its done() runs. A request that
 * ends first cancels its job: done() is then never called, and the job is destroyed by
 * whichever side lets go of it last. */
#ifndef AIGW_PLUGINS_STORE_JOBS_H
#define AIGW_PLUGINS_STORE_JOBS_H
#include <stdatomic.h>
#include <uv.h>
#include "core/conf.h"
#include "store/store.h"

typedef struct aigw_store_job aigw_store_job_t;

struct aigw_store_job {
    /* The store thread: st is NULL when no store connection is available (work must then
     * record a failure). */
    void (*work)(aigw_store_job_t *job, aigw_store_t *st);
    /* The worker thread that submitted the job, unless it was canceled. */
    void (*done)(aigw_store_job_t *job);
    /* Any thread, once, when neither side needs the job any more: frees it. */
    void (*destroy)(aigw_store_job_t *job);

    /* Private to store_jobs.c. */
    struct aigw_store_jobs__loop *_ent;
    aigw_store_job_t *_next;
    atomic_int _refs;
    int _canceled;
};

/* Main thread (global_init): starts the thread and opens its connection (a failure to open
 * is logged and retried when jobs arrive). 0, or -1 when the thread cannot start. */
int aigw_store_jobs_start(const aigw_conf_t *conf);
/* Main thread (global_shutdown), after the workers ended: stops and joins the thread,
 * closes the connection, frees what is left. Safe when never started. */
void aigw_store_jobs_stop(void);

/* The worker thread of loop. Queues job (work, done and destroy set). 0: the job now
 * belongs to the store side until done() runs or aigw_store_jobs_cancel; -1 (not running,
 * queue full, out of memory): nothing happened, the caller still owns the job. */
int aigw_store_jobs_submit(uv_loop_t *loop, aigw_store_job_t *job);
/* The worker thread, for a submitted job whose done() has not run: done() will not run. */
void aigw_store_jobs_cancel(aigw_store_job_t *job);
/* A worker's thread at shutdown: closes the async handle made on loop. */
void aigw_store_jobs_worker_close(uv_loop_t *loop);

#endif
