/* aigwd/admin/clustering.h: GET /clustering/data-planes and GET /clustering/status
 * (kong/api/routes/clustering.lua): the data planes a control plane knows. Admin thread. */
#ifndef AIGW_ADMIN_CLUSTERING_H
#define AIGW_ADMIN_CLUSTERING_H
#include <stddef.h>
#include <jansson.h>
#include "core/conf.h"
#include "http/request.h"

/* Serves /clustering/{seg1} when segs[0] is "clustering": 1 if answered, 0 if not ours. */
int aigw_admin_clustering_handle(const aigw_conf_t *conf, aigw_http_req_t *req,
                                 char *const *segs, size_t nsegs);

/* Plugins whose settings need a database on the node that runs them: Kong narrows
 * rate-limiting's `policy` to local | redis when database = off or role = control_plane
 * (data planes have no database). obj: a plugin entity being written. NULL when fine, else
 * Kong's schema-violation `fields` object (a new reference). */
json_t *aigw_admin_clustering_plugin_fields(const aigw_conf_t *conf, const json_t *obj);

#endif
