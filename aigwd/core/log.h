/* aigwd/core/log.h: the error logs (nginx-like lines with time, level, pid#thread) and the
 * access logs. Any thread may write; the main thread opens, reopens (SIGUSR1) and retargets
 * (reload) the files. Each of the four logs owns one file descriptor for the process's life:
 * a reopen dup2()s the new file onto it, so writers never see a closed descriptor. */
#ifndef AIGW_CORE_LOG_H
#define AIGW_CORE_LOG_H
#include <stdatomic.h>
#include <stddef.h>
#include "core/conf.h"

typedef enum {
    AIGW_LOGF_PROXY_ERROR = 0,
    AIGW_LOGF_ADMIN_ERROR,
    AIGW_LOGF_PROXY_ACCESS,
    AIGW_LOGF_ADMIN_ACCESS,
    AIGW_LOGF_COUNT
} aigw_log_file_t;

extern _Atomic int aigw_log_level;
/* Which error log this thread writes to (proxy workers: PROXY_ERROR; admin: ADMIN_ERROR). */
extern _Thread_local aigw_log_file_t aigw_log_thread_file;
/* A short name for this thread, shown as pid#name in error lines ("main", "w0", "admin"). */
extern _Thread_local const char *aigw_log_thread_name;

#define AIGW_LOG(level, ...)                                                                   \
    do {                                                                                       \
        if ((int)(level) <= atomic_load_explicit(&aigw_log_level, memory_order_relaxed))       \
            aigw_log_error((level), __VA_ARGS__);                                              \
    } while (0)

void aigw_log_error(aigw_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Main thread. Opens (first call) or retargets (later calls) the four logs from c and sets
 * the level. 0, or -1 with "cannot open <path>: <reason>" in err; on -1 nothing changed. */
int aigw_log_configure(const aigw_conf_t *c, char *err, size_t errlen);
/* Main thread (SIGUSR1): reopen every file at its configured path. */
void aigw_log_reopen(void);
/* Any thread: append one complete line (must end with '\n') to an access log. */
void aigw_log_access(aigw_log_file_t f, const char *line, size_t n);
/* 1 when that log is enabled (not `off`). */
int aigw_log_enabled(aigw_log_file_t f);
void aigw_log_shutdown(void);   /* main thread, after every other thread ended */

#endif
