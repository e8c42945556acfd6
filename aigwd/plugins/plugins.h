/* aigwd/plugins/plugins.h: the plugin framework of the proxy (reference/plugins.md §1).
 *
 * A plugin implementation (aigw_plugin_def_t) is a name, Kong's priority, a configure
 * function that turns a validated `config` object into a private struct when a runtime is
 * loaded, and one function per phase:
 *   rewrite        global instances only, before routing;
 *   access         in descending priority; the instance that applies is the most specific
 *                  one for (route, service, consumer known so far) as Kong's lookup_cfg;
 *                  may answer the request (exit), set or clear upstream headers, set the
 *                  consumer, or go asynchronous and resume later;
 *   header_filter  the response head (proxied or produced by aigw) before it is sent: may
 *                  add or remove downstream headers, and ask for the body whole;
 *   body_filter    when an instance asked in header_filter: the whole response body,
 *                  which it may replace (the proxy buffers it and sends it with its
 *                  Content-Length once every body_filter ran);
 *   log            after the response, with the final status: must not block (sinks get a
 *                  record through a queue).
 * Instances are resolved at load time into one chain per route (plugins/loader part in
 * plugins.c); a request pays an array walk, no lookup, unless consumer-scoped instances
 * exist for a plugin.
 *
 * Threads: configure/free on the loader's thread; phases on the worker thread of the
 * request; a plugin's conf is shared read-only by all workers (mutable shared state needs
 * atomics or a lock, and belongs to the plugin). Every string a phase is given lives until
 * the request ends (request arena); strings a plugin hands in (headers, bodies) are copied. */
#ifndef AIGW_PLUGINS_PLUGINS_H
#define AIGW_PLUGINS_PLUGINS_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "common/str.h"
#include "core/conf.h"
#include "proxy/consumers.h"
#include "http/request.h"
#include "http/server.h"
#include "proxy/router.h"
#include "proxy/runtime.h"

typedef struct aigw_plugin_run aigw_plugin_run_t;

typedef enum {
    AIGW_PLUGIN_NEXT = 0,     /* go on with the next plugin */
    AIGW_PLUGIN_EXIT,         /* the plugin answered (aigw_plugin_exit*): stop */
    AIGW_PLUGIN_ASYNC,        /* the plugin resumes later with aigw_plugin_resume() */
} aigw_plugin_rc_t;

typedef struct aigw_plugin_def {
    const char *name;
    int priority;
    /* Loader thread. config is the instance's validated config object (defaults filled).
     * Returns the private conf (never NULL on success: return a static if nothing to keep),
     * or NULL with a message in err. */
    void *(*configure)(const json_t *config, char *err, size_t errlen);
    void (*free_conf)(void *conf);                 /* NULL: nothing to free */
    aigw_plugin_rc_t (*rewrite)(aigw_plugin_run_t *run, void *conf);
    aigw_plugin_rc_t (*access)(aigw_plugin_run_t *run, void *conf);
    void (*header_filter)(aigw_plugin_run_t *run, void *conf);
    void (*body_filter)(aigw_plugin_run_t *run, void *conf);   /* run->resp_body */
    void (*log)(aigw_plugin_run_t *run, void *conf);
    /* Optional process-wide hooks (NULL: none).
     * global_init: main thread, once, before the first runtime is loaded; conf lives until
     *   global_shutdown. Non-zero refuses to start the daemon (log why).
     * global_shutdown: main thread, after every worker ended and the last runtime is gone.
     * worker_close: a proxy worker's thread when it shuts down: close (uv_close) every
     *   handle the plugin opened on that loop, so the loop can end. */
    int (*global_init)(const aigw_conf_t *conf);
    void (*global_shutdown)(void);
    void (*worker_close)(uv_loop_t *loop);
    /* Main thread on SIGUSR1 (logrotate): reopen the files the plugin writes. Must not
     * block: signal the thread that owns the files. */
    void (*reopen)(void);
    /* Optional: 1 when an instance with this conf reads the request body (access phase), so
     * a route with request_buffering = false still has its body buffered (NULL: never). */
    int (*reads_body)(const void *conf);
} aigw_plugin_def_t;

/* One plugin entity of the runtime. */
typedef struct aigw_rt_plugin {
    const aigw_plugin_def_t *def;   /* NULL: no implementation in this build (fail closed) */
    char id[37];
    char name[64];
    char route_id[37], service_id[37], consumer_id[37];   /* "" when not scoped */
    void *conf;
} aigw_rt_plugin_t;

typedef struct aigw_plugin_hdr {
    aigw_str_t name, value;
} aigw_plugin_hdr_t;

#define AIGW_PLUGIN_MAX_ACTIVE 48

/* The per-request plugin context; lives in the request's arena. Fields marked (in) are set
 * by the proxy; plugins read them and use the functions below for everything else. */
struct aigw_plugin_run {
    aigw_runtime_t *rt;                  /* (in) */
    aigw_http_req_t *req;                /* (in) */
    const aigw_rt_route_t *route;        /* (in) NULL before routing or without a match */
    const aigw_rt_service_t *service;    /* (in) */
    const aigw_router_match_t *match;    /* (in) regex captures */
    aigw_str_t norm_path;                /* (in) normalised request path */
    const char *client_ip;               /* (in) after trusted_ips / real_ip_header */
    int peer_trusted;                    /* (in) the connection's peer is in trusted_ips, so
                                            its X-Forwarded-* headers count */
    int status;                          /* the response status, for header_filter and log */
    /* (in) header_filter of a proxied response: the upstream's response headers as received
     * (before the proxy drops hop-by-hop ones); none for answers aigw produced itself. */
    const aigw_http_header_t *up_headers;
    size_t n_up_headers;

    uv_loop_t *loop;                     /* (in) the worker's loop */

    /* The authenticated consumer and credential, set with aigw_plugin_authenticate*. */
    const aigw_rt_consumer_t *consumer;
    const char *consumer_id;             /* consumer->id, or NULL */
    const char *credential_id;           /* NULL when none (also for the anonymous consumer) */
    int anonymous;                       /* the consumer is a plugin's `anonymous` one */
    aigw_str_t authenticated_scope;      /* oauth2 */
    aigw_str_t authenticated_userid;     /* oauth2 */

    /* Upstream request rewrites by plugins (hide_credentials): a replaced query string
     * (without '?'; empty drops it) and a replaced body. */
    int query_set;
    aigw_str_t query;
    int body_set;
    aigw_str_t body;
    /* request-transformer: a replaced method ("" keeps the client's) and a replaced upstream
     * path (raw, sent as given, must start with '/'; "" keeps the path Kong would send). */
    aigw_str_t method;
    aigw_str_t upstream_path;

    /* Upstream request header edits: set (replace) and removed names. */
    aigw_plugin_hdr_t *set;
    size_t n_set, cap_set;
    aigw_str_t *removed;
    size_t n_removed, cap_removed;
    /* Response header edits. */
    aigw_plugin_hdr_t *resp;
    size_t n_resp, cap_resp;
    aigw_str_t *resp_removed;
    size_t n_resp_removed, cap_resp_removed;

    /* body_filter: a header_filter asked for the body (aigw_plugin_buffer_response), and the
     * body (replace it with aigw_plugin_set_resp_body). */
    int buffer_resp;
    aigw_str_t resp_body;

    /* An answer produced by a plugin. */
    int exited;
    int exit_status;
    aigw_str_t exit_body;
    aigw_str_t exit_type;                /* Content-Type, empty for none */

    /* What the log record needs from the proxy (plugins/logrec.c); set by the proxy. */
    struct {
        const aigw_http_resp_header_t *resp_headers;   /* the response head sent downstream */
        size_t n_resp_headers;
        aigw_str_t upstream_uri;                 /* path?query sent upstream; empty if none */
        int upstream_status;                     /* 0 when no upstream answered */
        int proxied;                             /* the response came from the upstream */
        uint64_t upstream_start_ns;              /* first try started; 0 if none */
        uint64_t upstream_head_ns;               /* response head from the upstream */
        struct aigw_plugin_try {
            int family;                          /* AF_INET, AF_INET6 */
            uint8_t addr[16];
            int port;
            uint64_t start_ns;
        } tries[4];                              /* the first four tries */
        size_t n_tries;                          /* every try, also past four */
    } log;
    /* Set by plugins for the record (plugins/logrec.h). */
    aigw_str_t *mask_headers;
    size_t n_mask_headers, cap_mask_headers;
    aigw_str_t *mask_query;
    size_t n_mask_query, cap_mask_query;
    aigw_plugin_hdr_t *log_extra;                /* name: key, value: compact JSON */
    size_t n_log_extra, cap_log_extra;
    aigw_str_t log_record;                       /* the built record (cache) */

    /* Plugins collected by access for the later phases, in priority order. */
    const aigw_rt_plugin_t *active[AIGW_PLUGIN_MAX_ACTIVE];
    size_t n_active;

    /* Private to the framework. */
    size_t next_def;
    void (*done)(aigw_plugin_run_t *run, void *ud);
    void *done_ud;
    int logged;
    int filtered;
    int in_access;
    int async_resumed;
    void (*cancel)(void *ud);
    void *cancel_ud;
};

/* ---- the implementations ---- */

/* Every implementation, by descending priority. */
const aigw_plugin_def_t *const *aigw_plugin_defs(size_t *n);
const aigw_plugin_def_t *aigw_plugin_def_find(const char *name);

/* ---- loader side (plugins.c) ---- */

/* Builds the plugin instances and per-route chains of rt from the snapshot's "plugins"
 * array (may be NULL). Stores its state in rt->plugins. Disabled instances are left out. An
 * instance whose configure fails, or without an implementation, is logged and makes every
 * request it applies to answer 500 (fail closed); the rest of the configuration loads. */
int aigw_plugins_load(aigw_runtime_t *rt, const json_t *plugins, char *err, size_t errlen);
void aigw_plugins_unload(aigw_runtime_t *rt);

/* Main thread: every implementation's global_init (before the first runtime) and
 * global_shutdown (after the workers and the last runtime). */
int aigw_plugins_global_init(const aigw_conf_t *conf);
void aigw_plugins_global_shutdown(void);
/* Main thread, SIGUSR1: every implementation's reopen. */
void aigw_plugins_reopen(void);
/* A proxy worker's thread at its shutdown: every implementation's worker_close. */
void aigw_plugins_worker_close(uv_loop_t *loop);

/* ---- proxy side ---- */

void aigw_plugins_run_init(aigw_plugin_run_t *run, aigw_runtime_t *rt, aigw_http_req_t *req);
/* Rewrite phase (global instances). 0 to go on, 1 when a plugin answered. */
int aigw_plugins_rewrite(aigw_plugin_run_t *run);
/* Access phase; done(run, ud) runs when it completes (now or later; run->exited tells
 * whether a plugin answered). */
/* 1 when a plugin that may apply to run's route (its chain, or any consumer-scoped instance)
 * reads the request body: the body must then be buffered before the access phase. */
int aigw_plugins_need_body(const aigw_plugin_run_t *run);
void aigw_plugins_access(aigw_plugin_run_t *run, void (*done)(aigw_plugin_run_t *, void *),
                         void *ud);
/* The request ends before the access phase (no route, HTTPS required, no service): the
 * global instances' header_filter and log run for it, as Kong's. */
void aigw_plugins_collect_global(aigw_plugin_run_t *run);
/* header_filter of the collected plugins (once). */
void aigw_plugins_header_filter(aigw_plugin_run_t *run);
/* body_filter of the collected plugins, on run->resp_body (the whole body), when
 * run->buffer_resp says one asked for it. */
void aigw_plugins_body_filter(aigw_plugin_run_t *run);
/* log of the collected plugins (once; later calls do nothing). */
void aigw_plugins_log(aigw_plugin_run_t *run);
/* Sends the answer a plugin produced (header_filter and log run here). */
void aigw_plugins_respond_exit(aigw_plugin_run_t *run, aigw_http_req_t *req);
/* 1 if a plugin removed or replaced that upstream / downstream header. */
int aigw_plugins_header_removed(const aigw_plugin_run_t *run, aigw_str_t name);
int aigw_plugins_resp_header_removed(const aigw_plugin_run_t *run, aigw_str_t name);

/* ---- for plugins ---- */

/* The request header with that name as the upstream will see it (after plugin edits), or
 * an empty view {NULL,0} when absent. */
aigw_str_t aigw_plugin_req_header(const aigw_plugin_run_t *run, const char *name);
/* Sets (replaces) / clears an upstream request header. 0 or -1 (out of memory). */
int aigw_plugin_set_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value);
int aigw_plugin_clear_header(aigw_plugin_run_t *run, const char *name);
/* Adds one more upstream request / response header line with that name, keeping the
 * client's / upstream's and earlier ones (Kong's add_header, used by `append`). */
int aigw_plugin_add_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value);
int aigw_plugin_resp_add_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value);
/* The response header with that name as the client will get it so far (the upstream's or
 * the exit's Content-Type unless removed, then those plugins set), or {NULL,0}. */
aigw_str_t aigw_plugin_resp_header(const aigw_plugin_run_t *run, const char *name);
/* header_filter: this response's body goes whole to the body_filter phase. */
void aigw_plugin_buffer_response(aigw_plugin_run_t *run);
/* body_filter: replaces the response body (copied). 0 or -1 (out of memory). */
int aigw_plugin_set_resp_body(aigw_plugin_run_t *run, aigw_str_t body);
/* Sets (replaces) / clears a response header. */
int aigw_plugin_resp_set_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value);
int aigw_plugin_resp_clear_header(aigw_plugin_run_t *run, const char *name);
/* kong.response.exit(status, body, {Content-Type = type}): body and type are copied; type
 * may be empty. Returns AIGW_PLUGIN_EXIT for `return aigw_plugin_exit(...)`. */
aigw_plugin_rc_t aigw_plugin_exit(aigw_plugin_run_t *run, int status, aigw_str_t body,
                                  aigw_str_t type);
/* kong.response.exit(status, {message = msg}): compact JSON, no request_id. */
aigw_plugin_rc_t aigw_plugin_exit_message(aigw_plugin_run_t *run, int status, const char *msg);
/* An asynchronous access handler is done: rc NEXT or EXIT. Worker thread of the request. */
void aigw_plugin_resume(aigw_plugin_run_t *run, aigw_plugin_rc_t rc);
/* A plugin that returned AIGW_PLUGIN_ASYNC registers fn: when the request ends before it
 * resumed (the client went away), fn(ud) runs once instead, on the worker thread, and the
 * plugin must then never touch run again (nor call aigw_plugin_resume). Resuming clears it. */
void aigw_plugin_on_cancel(aigw_plugin_run_t *run, void (*fn)(void *ud), void *ud);
/* Proxy side: the request ends; runs a pending cancel callback. */
void aigw_plugins_cancel(aigw_plugin_run_t *run);

/* kong.response.error(status, msg): Kong's error body with request_id, in the format the
 * Accept header asks for (JSON by default). Response headers set before (WWW-Authenticate)
 * go out with it. */
aigw_plugin_rc_t aigw_plugin_error(aigw_plugin_run_t *run, int status, const char *msg);

/* ---- consumer identity (reference/plugins.md 1.4) ---- */

/* Kong's set_consumer for an authenticated request: sets run->consumer/consumer_id/
 * credential_id and the upstream headers X-Consumer-ID, X-Consumer-Custom-ID,
 * X-Consumer-Username (cleared when unset), X-Credential-Identifier (cleared when
 * identifier is empty), and clears X-Anonymous-Consumer. credential_id may be NULL. */
void aigw_plugin_authenticate(aigw_plugin_run_t *run, const aigw_rt_consumer_t *consumer,
                              const char *credential_id, aigw_str_t identifier);
/* 1 when an earlier auth plugin set a credential: a plugin with `anonymous` configured then
 * does nothing (Kong's "logical OR"). */
int aigw_plugin_has_credential(const aigw_plugin_run_t *run);
/* The failure path of an auth plugin with `anonymous` set (ref = id or username): sets that
 * consumer (X-Anonymous-Consumer: true, no credential) and returns NEXT; when no such
 * consumer exists answers 500 "An unexpected error occurred" as Kong does (error JSON; the
 * log says which consumer is missing) and returns EXIT. */
aigw_plugin_rc_t aigw_plugin_authenticate_anonymous(aigw_plugin_run_t *run, const char *ref);

/* hide_credentials helpers: the request's query with every argument named name removed
 * (name compared after percent-decoding), and the same for an
 * application/x-www-form-urlencoded body. They set run->query / run->body. */
int aigw_plugin_drop_query_arg(aigw_plugin_run_t *run, const char *name);
int aigw_plugin_drop_form_field(aigw_plugin_run_t *run, const char *name);
/* The first value of a query argument / form field (percent-decoded into the request
 * arena), or {NULL,0} when absent; *count gets how many times it occurs (may be NULL). */
aigw_str_t aigw_plugin_query_arg(aigw_plugin_run_t *run, const char *name, size_t *count);
aigw_str_t aigw_plugin_form_field(aigw_plugin_run_t *run, const char *name, size_t *count);
/* The request's body as the upstream will see it (after a plugin's replacement), or {NULL,0}. */
aigw_str_t aigw_plugin_body(const aigw_plugin_run_t *run);

#endif
