/* aigwd/admin/clustering.c: see clustering.h. The rows live in the control plane's cluster
 * thread (cluster/cp.c), not in the database: each control plane lists the data planes
 * connected to it. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "admin/clustering.h"
#include "admin/respond.h"
#include "cluster/cluster.h"
#include "http/server.h"

#define NOT_CP "this endpoint is only available when Kong is configured to run as Control " \
               "Plane for the cluster"

static void respond_deprecated(aigw_http_req_t *req, const json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    aigw_http_resp_header_t h[3] = {
        { AIGW_STR("Content-Type"), AIGW_STR("application/json; charset=utf-8") },
        { AIGW_STR("Access-Control-Allow-Origin"), AIGW_STR("*") },
        { AIGW_STR("Deprecation"), AIGW_STR("true") },
    };
    aigw_http_respond(req, 200, h, 3, text, strlen(text));
    free(text);
}

int aigw_admin_clustering_handle(const aigw_conf_t *conf, aigw_http_req_t *req,
                                 char *const *segs, size_t nsegs)
{
    if (nsegs != 2 || strcmp(segs[0], "clustering") != 0)
        return 0;
    int dps = strcmp(segs[1], "data-planes") == 0, status = strcmp(segs[1], "status") == 0;
    if (!dps && !status)
        return 0;
    if (req->method == HTTP_OPTIONS) {
        aigw_admin_respond_options(req, "GET, HEAD, OPTIONS");
        return 1;
    }
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        aigw_admin_respond_message(req, 405, "Method not allowed");
        return 1;
    }
    json_t *body = conf->role == AIGW_ROLE_CONTROL_PLANE
                       ? (dps ? aigw_cluster_data_planes() : aigw_cluster_status())
                       : NULL;
    if (!body) {
        aigw_admin_respond_message(req, 400, NOT_CP);
        return 1;
    }
    if (dps)
        aigw_admin_respond_json(req, 200, body);
    else
        respond_deprecated(req, body);
    json_decref(body);
    return 1;
}

json_t *aigw_admin_clustering_plugin_fields(const aigw_conf_t *conf, const json_t *obj)
{
    if (conf->database != AIGW_DB_OFF && conf->role != AIGW_ROLE_CONTROL_PLANE)
        return NULL;
    const char *name = json_string_value(json_object_get(obj, "name"));
    const char *policy =
        json_string_value(json_object_get(json_object_get(obj, "config"), "policy"));
    if (!name || !policy || strcmp(name, "rate-limiting") != 0 || strcmp(policy, "cluster") != 0)
        return NULL;
    return json_pack("{s:{s:s}}", "config", "policy", "expected one of: local, redis");
}
