/* aigwd/proxy/healthcheck.h: active health checks of upstream targets (Kong's
 * healthchecks.active, run by lua-resty-healthcheck 3.1 in Kong 3.9).
 *
 * One dedicated thread with its own libuv loop probes, for every upstream of the current
 * balancer set whose healthchecks.active.healthy.interval or .unhealthy.interval is not 0:
 *  - every healthy.interval seconds, the targets (weight > 0) currently healthy or mostly
 *    healthy; every unhealthy.interval seconds the others; the first round runs one interval
 *    after the set arrives; a round is skipped while the previous one of that kind still runs;
 *  - at most `concurrency` probes at a time per upstream, each limited by `timeout` seconds
 *    per step (connect, TLS handshake, send, receive);
 *  - type "tcp": a connect is a success; "http"/"https": sends
 *    "GET <http_path> HTTP/1.0\r\n<headers>Host: <host>\r\n\r\n" (Host: the upstream's
 *    host_header, else the target's host, without port) and judges the status of the first
 *    response line with healthchecks.active.healthy/unhealthy.http_statuses (a line that is
 *    not "HTTP/x.y <status>" counts as an HTTP failure). https uses SNI https_sni, else the
 *    Host value (not for IP literals), and verifies the certificate chain against the system
 *    store and the name when https_verify_certificate is true. grpc/grpcs probe as
 *    http/https. No client certificate is presented (Kong may send upstream.client_certificate);
 *  - a target that is a name is resolved with proxy/dns.h on this thread (its own cache) and
 *    one of its addresses is probed per round (health is per target, see balancer.h); the
 *    addresses found are recorded for GET /upstreams/{u}/health;
 *  - results update the shared state of balancer.h with the active thresholds.
 * Passive checks need no thread: the proxy reports to the balancer directly.
 *
 * Threads: start, stop and set are called from the main thread (set also from the loader's
 * publishing thread); set never blocks. */
#ifndef AIGW_PROXY_HEALTHCHECK_H
#define AIGW_PROXY_HEALTHCHECK_H
#include "proxy/balancer.h"

/* Main thread, once. Starts the health-check thread. 0, or -1 (thread or loop creation failed;
 * logged). A set given before start is used from the start. */
int aigw_healthcheck_start(void);

/* Main thread, at exit. Stops probing, closes every probe, joins the thread and drops the
 * thread's reference to the current set. Safe when not started; start may be called again
 * afterwards. */
void aigw_healthcheck_stop(void);

/* Any thread; call it after each new runtime is published. The thread switches to probing b
 * (NULL: nothing) as soon as it wakes up: probes of the previous set are abandoned and its
 * reference dropped once they have closed. Takes its own reference to b (aigw_balancers_ref);
 * the caller keeps theirs. */
void aigw_healthcheck_set(aigw_balancers_t *b);

#endif
