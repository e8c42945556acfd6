/* aigwd/core/daemon.h: the running node: threads, listeners, signals, reload and shutdown.
 * Main thread only. */
#ifndef AIGW_CORE_DAEMON_H
#define AIGW_CORE_DAEMON_H
#include <stdatomic.h>
#include "core/conf.h"

/* A configuration shared by every thread; the last thread to let go frees it. */
typedef struct aigw_cfg {
    aigw_conf_t conf;
    _Atomic int refs;
} aigw_cfg_t;

void aigw_cfg_release(aigw_cfg_t *c);   /* NULL is fine */

typedef struct aigw_start_opts {
    const char *conf_path;       /* -c, or NULL */
    const char *prefix;          /* -p, or NULL */
    int daemonize;               /* --daemon */
    int ready_fd;                /* set internally for --daemon: where readiness is reported */
} aigw_start_opts_t;

/* Loads the configuration, starts the node and runs until SIGTERM/SIGINT/SIGQUIT.
 * Returns the process exit code: 0 after a clean stop, 1 when it could not start (one line
 * on stderr says why). */
int aigw_daemon_start(const aigw_start_opts_t *opts);

/* <prefix>/pids/aigwd.pid */
void aigw_daemon_pid_path(const char *prefix, char *out, size_t cap);
/* PID from the pid file when that process is alive, else 0. */
long aigw_daemon_running_pid(const char *prefix);
/* 1 while pid runs (a zombie does not). */
int aigw_daemon_pid_alive(long pid);

#endif
