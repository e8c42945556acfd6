/* aigwd/admin/upstream_health.h: the upstream health endpoints of Kong 3.9's admin API
 * (kong/api/routes/upstreams.lua), answered from the store and the proxy's live balancers:
 *   GET  /upstreams/{upstreams}/health[?balancer_health=1]
 *   GET  /upstreams/{upstreams}/targets/all
 *   PUT  /upstreams/{upstreams}/targets/{targets}/healthy|unhealthy
 *   PUT  /upstreams/{upstreams}/targets/{targets}/{address}/healthy|unhealthy
 * The PUT routes do not exist on a control plane (role = control_plane), as in Kong.
 * Admin thread only; blocks on the store, and may wait up to a second for the proxy runtime
 * to catch up with the store after a write. This module reads the proxy's runtime
 * (proxy/loader.h, proxy/balancer.h): the one place the admin API does. */
#ifndef AIGW_ADMIN_UPSTREAM_HEALTH_H
#define AIGW_ADMIN_UPSTREAM_HEALTH_H
#include "admin/api.h"
#include "core/conf.h"
#include "http/request.h"

/* Serves req when its path is one of the routes above: 1 if answered, 0 if the path is not
 * one of ours (the caller goes on with the entity API). api is borrowed (its store may be
 * NULL: 503); node_id (may be NULL) is the node's id for the bodies' "node_id". */
int aigw_upstream_health_handle(aigw_api_t *api, aigw_http_req_t *req, const char *node_id);

/* For GET /endpoints: the routes above in Kong's "{name}" form, NULL-terminated, static;
 * without the PUT routes when conf's role is control_plane. */
const char *const *aigw_upstream_health_endpoints(const aigw_conf_t *conf);

#endif
