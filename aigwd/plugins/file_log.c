/* aigwd/plugins/file_log.c: Kong's file-log (priority 9): one JSON record (the log
 * serializer, plugins/logrec.h) per line appended to `path`; `reopen` closes and opens the
 * file for every write; aigw's `custom_fields` (static values) are merged into the record.
 * `custom_fields_by_lua` is accepted by the schema but ignored (aigw runs no Lua; warned at
 * configure).
 *
 * No request waits on the file: the log phase queues the record (plugins/logqueue.h) and the
 * queue's thread appends whole batches with one writev(). Kong's file-log has no queue
 * settings; ours are fixed (see QUEUE_OPTS): up to 10000 entries waiting, batches of up to
 * 100 lines, no coalescing delay (a batch is whatever is queued when the thread wakes) and no
 * retries: a batch that cannot be written is dropped and counted, and the error is logged
 * (at most once per 10 s per file, with the count dropped since the last such line), as
 * Kong writes a line once and forgets it.
 *
 * Instances writing to the same path (same `reopen`) share one queue, hence one writer and
 * one descriptor: lines of different requests never interleave. The file is opened with
 * O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, mode 0644. SIGUSR1 (logrotate) bumps a generation
 * that every queue thread checks before its next write: it then closes and reopens its file
 * at `path`, so lines after the signal go to the new file and none are lost.
 *
 * A path that cannot be opened when the configuration loads is logged there (path and
 * reason); the instance still loads (traffic is never refused for a log file) and the queue
 * tries again at every batch. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/logplugin.h"
#include "plugins/logqueue.h"
#include "plugins/logrec.h"

#define OPEN_FLAGS (O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC)
#define OPEN_MODE 0644
#define BATCH_MAX 100           /* lines per writev (2 iovecs each, far below IOV_MAX) */
#define ERR_LOG_INTERVAL_NS (10ull * 1000000000ull)

static const aigw_logq_opts_t QUEUE_OPTS = {
    .max_batch_size = BATCH_MAX,
    .max_coalescing_delay = 0,
    .max_entries = 10000,
    .max_bytes = 0,
    .max_retry_time = 0,        /* the sink drops and counts failed batches itself */
    .initial_retry_delay = 0.01,
    .max_retry_delay = 1,
};

/* Bumped by SIGUSR1 (main thread); read by the queue threads. */
static _Atomic unsigned reopen_gen;

typedef struct sink {
    char *path;
    int reopen;            /* close after every batch */
    int fd;                /* -1: not open */
    unsigned gen;          /* reopen_gen when fd was opened */
    uint64_t dropped;      /* entries dropped since the last error line */
    uint64_t dropped_total;
    uint64_t last_err_ns;  /* 0: never */
    int err_pending;       /* an error happened but was not logged (rate limit) */
    int failing;           /* the last attempt failed: note the recovery */
} sink_t;

static const char *errtext(int e, char *buf, size_t n)
{
    return strerror_r(e, buf, n);
}

/* Logs a failure of this sink at most once per ERR_LOG_INTERVAL_NS. */
static void sink_error(sink_t *s, const char *what, int e, size_t dropped)
{
    s->dropped += dropped;
    s->dropped_total += dropped;
    s->failing = 1;
    uint64_t now = uv_hrtime();
    if (s->last_err_ns && now - s->last_err_ns < ERR_LOG_INTERVAL_NS) {
        s->err_pending = 1;
        return;
    }
    char eb[128];
    AIGW_LOG(AIGW_LOG_ERR,
             "file-log: %s \"%s\": %s; %llu log entries dropped (%llu in all)", what, s->path,
             errtext(e, eb, sizeof(eb)), (unsigned long long)s->dropped,
             (unsigned long long)s->dropped_total);
    s->last_err_ns = now;
    s->dropped = 0;
    s->err_pending = 0;
}

static void sink_close(sink_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Writes every iovec fully (O_APPEND: each writev appends at the end). 0, or an errno. */
static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0 && left) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static int sink_send(void *ud, const char *const *entries, const size_t *lens, size_t n,
                     char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    sink_t *s = ud;
    static const char nl = '\n';
    unsigned gen = atomic_load_explicit(&reopen_gen, memory_order_acquire);
    if (s->fd >= 0 && gen != s->gen)
        sink_close(s);
    size_t done = 0;
    while (done < n) {
        if (s->fd < 0) {
            int fd = open(s->path, OPEN_FLAGS, OPEN_MODE);
            if (fd < 0) {
                sink_error(s, "cannot open", errno, n - done);
                return 0;
            }
            s->fd = fd;
            s->gen = gen;
        }
        struct iovec iov[2 * BATCH_MAX];
        size_t k = 0;
        while (done + k < n && k < BATCH_MAX) {
            iov[2 * k] = (struct iovec){ (void *)(uintptr_t)entries[done + k], lens[done + k] };
            iov[2 * k + 1] = (struct iovec){ (void *)(uintptr_t)&nl, 1 };
            k++;
        }
        int e = write_all(s->fd, iov, (int)(2 * k));
        if (e) {
            /* a partial batch may be on disk; the rest of it and of this call is dropped */
            sink_error(s, "cannot write to", e, n - done);
            sink_close(s);
            return 0;
        }
        done += k;
        if (s->failing) {
            /* recovered: say so once, with what was lost since the last error line */
            AIGW_LOG(AIGW_LOG_NOTICE,
                     "file-log: writing to \"%s\" again; %llu more log entries were dropped "
                     "(%llu in all)", s->path, (unsigned long long)s->dropped,
                     (unsigned long long)s->dropped_total);
            s->dropped = 0;
            s->err_pending = 0;
            s->failing = 0;
        }
    }
    if (s->reopen)
        sink_close(s);
    return 0;
}

static void sink_free(void *ud)
{
    sink_t *s = ud;
    if (!s)
        return;
    sink_close(s);
    if (s->dropped)
        AIGW_LOG(AIGW_LOG_ERR, "file-log: \"%s\": %llu log entries dropped (%llu in all)",
                 s->path, (unsigned long long)s->dropped, (unsigned long long)s->dropped_total);
    free(s->path);
    free(s);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    const char *path = json_string_value(json_object_get(c, "path"));
    if (!path || !*path) {
        snprintf(err, errlen, "file-log: no path");
        return NULL;
    }
    int reopen = json_is_true(json_object_get(c, "reopen"));

    /* Kong opens at the first request; aigw tries now so that a bad path is reported when
     * the configuration loads. The queue opens its own descriptor. */
    int fd = open(path, OPEN_FLAGS, OPEN_MODE);
    if (fd < 0) {
        char eb[128];
        AIGW_LOG(AIGW_LOG_ERR,
                 "file-log: cannot open \"%s\": %s (requests are served; their log lines are "
                 "dropped until the file can be opened)", path, errtext(errno, eb, sizeof(eb)));
    } else {
        close(fd);
    }

    sink_t *s = calloc(1, sizeof(*s));
    size_t pl = strlen(path);
    char *name = malloc(pl + 32), *label = malloc(pl + 32);
    if (!s || !name || !label || !(s->path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        if (s)
            free(s->path);
        free(s);
        free(name);
        free(label);
        return NULL;
    }
    s->fd = -1;
    s->reopen = reopen;
    snprintf(name, pl + 32, "file-log %s%s", reopen ? "reopen " : "", path);
    snprintf(label, pl + 32, "file-log %s", path);
    aigw_logq_sink_t sink = { sink_send, sink_free, s };
    aigw_logplugin_t *lp = aigw_logplugin_new(c, name, label, &QUEUE_OPTS, sink, err, errlen);
    free(name);
    free(label);
    return lp;
}

static void fl_reopen(void)
{
    atomic_fetch_add_explicit(&reopen_gen, 1, memory_order_acq_rel);
}

const aigw_plugin_def_t aigw_plugin_def_file_log = {
    .name = "file-log",
    .priority = 9,
    .configure = configure,
    .free_conf = aigw_logplugin_free,
    .log = aigw_logplugin_log,
    .reopen = fl_reopen,
};
