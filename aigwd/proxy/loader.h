/* aigwd/proxy/loader.h: builds the proxy's runtime (proxy/runtime.h) from a configuration
 * snapshot and publishes the current one to the workers.
 *
 * Loading parses JSON and compiles the router's regexes: any thread but a proxy worker.
 * Publication is thread-safe; workers call aigw_runtime_current() once per request and drop
 * the reference when the request ends. The last holder frees a runtime, on its own thread.
 *
 * What a loaded runtime holds:
 *  - services: every service of the snapshot (enabled or not), sorted by id (see
 *    aigw_runtime_service());
 *  - routes: every route whose service is enabled or absent (Kong skips the routes of a
 *    disabled service), in snapshot order, partitioned: first the HTTP routes (protocols
 *    among http, https, grpc, grpcs), then the stream routes (tcp, tls, udp,
 *    tls_passthrough); aigw_runtime_http_routes() says how many HTTP routes lead;
 *  - router: built by aigw_router_build() over the HTTP routes only (never NULL);
 *  - every string copied into the runtime's own memory (a few large blocks), except each
 *    entity's JSON, often a slice of the snapshot's text: the runtime keeps a reference to
 *    its snapshot.
 * A load reuses what it can of the runtime in use (aigw_runtime_current()): a service or
 * route whose JSON is byte for byte one of that runtime's is copied from it, not parsed
 * again (most of a load's time at 10k routes); the result is the same. */
#ifndef AIGW_PROXY_LOADER_H
#define AIGW_PROXY_LOADER_H
#include <stddef.h>
#include "proxy/runtime.h"
#include "snapshot/snapshot.h"

/* Not on a worker. A new runtime holding one reference (refs == 1), or NULL with a one-line
 * reason in err (a broken snapshot: the caller keeps serving the previous runtime). snap is
 * borrowed. */
aigw_runtime_t *aigw_runtime_load(const aigw_snapshot_t *snap, char *err, size_t errlen);

/* Any thread. Adds a reference and returns rt (NULL is fine). */
aigw_runtime_t *aigw_runtime_ref(aigw_runtime_t *rt);
/* Any thread. Drops a reference; the last one frees the router, the arrays and the strings.
 * NULL is fine. */
void aigw_runtime_unref(aigw_runtime_t *rt);

/* Any thread. Makes rt the current runtime (takes its own reference; the caller keeps
 * theirs) and drops the publication's reference to the previous one. NULL unpublishes. */
void aigw_runtime_publish(aigw_runtime_t *rt);
/* Any thread, once per request. The current runtime with a new reference for the caller to
 * unref, or NULL before the first publish. Cost: a mutex held across one pointer load and
 * one atomic increment (see loader.c for measured figures). */
aigw_runtime_t *aigw_runtime_current(void);
/* Main thread, at exit: unpublishes the current runtime (holders keep theirs). */
void aigw_runtime_shutdown(void);

/* Main thread, once at start. Subscribes to configuration snapshots: each new one is loaded
 * and published on the publishing thread (the snapshot builder); a snapshot that fails to
 * load is logged with AIGW_LOG and the previous runtime keeps serving. Loads the current
 * snapshot at once when one was already published. 0, or -1 when the subscriber table is
 * full. */
int aigw_runtime_follow_snapshots(void);

/* Any thread. The TLS protocol bits (core/conf.h AIGW_TLS_*) for certificate contexts of
 * runtimes loaded from now on (0: TLS 1.2 and 1.3). */
void aigw_runtime_set_ssl_protocols(unsigned bits);
/* Any thread. The current runtime's certificates with a reference for the caller (an
 * aigw_certs_source_t getter for the SNI callback), or NULL. */
aigw_certs_t *aigw_runtime_current_certs(void *ud);

/* Any thread; rt is borrowed. The service with that id (36 characters), or NULL. */
const aigw_rt_service_t *aigw_runtime_service(const aigw_runtime_t *rt, const char *id);
/* Any thread; rt is borrowed. How many HTTP routes lead rt->routes. */
size_t aigw_runtime_http_routes(const aigw_runtime_t *rt);
/* Any thread; rt is borrowed. How many of rt's services and routes its load copied from the
 * runtime then in use instead of parsing them. */
size_t aigw_runtime_reused(const aigw_runtime_t *rt);

#endif
