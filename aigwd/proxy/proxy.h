/* aigwd/proxy/proxy.h: the proxy's request entry point and its per-worker state. A request
 * is routed against the current runtime (proxy/loader.h), run through the plugins, sent to
 * the service's upstream over a pooled connection (proxy/upstream.h) and the response
 * streamed back as it arrives. Kong's rules: reference/proxy.md. Worker threads; one
 * aigw_proxy_worker_t per worker loop, passed as the handler's ud. */
#ifndef AIGW_PROXY_PROXY_H
#define AIGW_PROXY_PROXY_H
#include <uv.h>
#include "core/conf.h"
#include "http/request.h"

typedef struct aigw_proxy_worker aigw_proxy_worker_t;

/* Worker thread, at start. conf is borrowed: the caller keeps it alive until the next
 * aigw_proxy_worker_set_conf or the free. NULL when out of memory. */
aigw_proxy_worker_t *aigw_proxy_worker_new(uv_loop_t *loop, const aigw_conf_t *conf);
/* Worker thread, on reload. */
void aigw_proxy_worker_set_conf(aigw_proxy_worker_t *pw, const aigw_conf_t *conf);
/* Worker thread, when the last client connection is gone: closes pooled upstream
 * connections so the loop can end. */
void aigw_proxy_worker_close(aigw_proxy_worker_t *pw);
/* Worker thread, after the loop ended. NULL is fine. */
void aigw_proxy_worker_free(aigw_proxy_worker_t *pw);

/* The http server's handler for proxy listeners; ud is the worker's aigw_proxy_worker_t
 * (NULL: every request is answered 404, as before any configuration). */
void aigw_proxy_handle(aigw_http_req_t *req, void *ud);

#endif
