/* aigwd/core/log.c: see log.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "common/fs.h"
#include "core/log.h"

_Atomic int aigw_log_level = AIGW_LOG_NOTICE;
_Thread_local aigw_log_file_t aigw_log_thread_file = AIGW_LOGF_PROXY_ERROR;
_Thread_local const char *aigw_log_thread_name = "main";

typedef struct log_slot {
    int fd;                 /* stable for the process's life once opened; -1 before */
    _Atomic int enabled;
    char *path;             /* current target; NULL = off */
} log_slot_t;

static log_slot_t slots[AIGW_LOGF_COUNT] = {
    { -1, 0, NULL }, { -1, 0, NULL }, { -1, 0, NULL }, { -1, 0, NULL },
};

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

const char *aigw_log_level_name(aigw_log_level_t l)
{
    return (unsigned)l < sizeof(level_names) / sizeof(level_names[0]) ? level_names[l] : "?";
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void aigw_log_error(aigw_log_level_t level, const char *fmt, ...)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d/%02d/%02d %02d:%02d:%02d [%s] %ld#%s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, aigw_log_level_name(level), (long)getpid(),
                     aigw_log_thread_name ? aigw_log_thread_name : "?");
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* One line per record: a message never splits the log. */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    log_slot_t *s = &slots[aigw_log_thread_file];
    if (s->fd < 0) {
        write_all(2, line, len);
        return;
    }
    if (atomic_load_explicit(&s->enabled, memory_order_relaxed))
        write_all(s->fd, line, len);
}

static int open_target(const char *path)
{
    if (!path)
        return open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (strcmp(path, "/dev/stdout") == 0)
        return fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (strcmp(path, "/dev/stderr") == 0)
        return fcntl(2, F_DUPFD_CLOEXEC, 3);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* Makes the parent directory of a log path (prefix/logs) when missing. */
static void make_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return;
    char dir[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof(dir))
        return;
    memcpy(dir, path, n);
    dir[n] = '\0';
    (void)aigw_mkdir_p(dir, 0755);
}

static const char *conf_path_of(const aigw_conf_t *c, aigw_log_file_t f)
{
    switch (f) {
    case AIGW_LOGF_PROXY_ERROR: return c->proxy_error_log;
    case AIGW_LOGF_ADMIN_ERROR: return c->admin_error_log;
    case AIGW_LOGF_PROXY_ACCESS: return c->proxy_access_log;
    default: return c->admin_access_log;
    }
}

int aigw_log_configure(const aigw_conf_t *c, char *err, size_t errlen)
{
    int fds[AIGW_LOGF_COUNT];
    for (int i = 0; i < AIGW_LOGF_COUNT; i++) {
        const char *path = conf_path_of(c, (aigw_log_file_t)i);
        if (path)
            make_parent(path);
        fds[i] = open_target(path);
        if (fds[i] < 0) {
            snprintf(err, errlen, "cannot open log file %s: %s", path ? path : "/dev/null",
                     strerror(errno));
            for (int j = 0; j < i; j++)
                close(fds[j]);
            return -1;
        }
    }
    for (int i = 0; i < AIGW_LOGF_COUNT; i++) {
        log_slot_t *s = &slots[i];
        const char *path = conf_path_of(c, (aigw_log_file_t)i);
        if (s->fd < 0) {
            s->fd = fds[i];
        } else {
            dup2(fds[i], s->fd);
            close(fds[i]);
        }
        free(s->path);
        s->path = path ? strdup(path) : NULL;
        atomic_store(&s->enabled, path != NULL);
    }
    atomic_store(&aigw_log_level, (int)c->log_level);
    return 0;
}

void aigw_log_reopen(void)
{
    for (int i = 0; i < AIGW_LOGF_COUNT; i++) {
        log_slot_t *s = &slots[i];
        if (s->fd < 0 || !s->path || strncmp(s->path, "/dev/", 5) == 0)
            continue;
        make_parent(s->path);
        int fd = open_target(s->path);
        if (fd < 0) {
            AIGW_LOG(AIGW_LOG_ERR, "cannot reopen %s: %s", s->path, strerror(errno));
            continue;
        }
        dup2(fd, s->fd);
        close(fd);
    }
}

void aigw_log_access(aigw_log_file_t f, const char *line, size_t n)
{
    log_slot_t *s = &slots[f];
    if (s->fd >= 0 && atomic_load_explicit(&s->enabled, memory_order_relaxed))
        write_all(s->fd, line, n);
}

int aigw_log_enabled(aigw_log_file_t f)
{
    return slots[f].fd >= 0 && atomic_load_explicit(&slots[f].enabled, memory_order_relaxed);
}

void aigw_log_shutdown(void)
{
    for (int i = 0; i < AIGW_LOGF_COUNT; i++) {
        if (slots[i].fd >= 0)
            close(slots[i].fd);
        slots[i].fd = -1;
        free(slots[i].path);
        slots[i].path = NULL;
        atomic_store(&slots[i].enabled, 0);
    }
}
