/* aigwd/admin/respond.c: see respond.h. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "admin/respond.h"
#include "http/server.h"

void aigw_admin_respond_json(aigw_http_req_t *req, int status, const json_t *body)
{
    char lat[24];
    size_t ln = aigw_u64_to_dec(lat, (uv_hrtime() - req->start_ns) / 1000000);
    aigw_http_resp_header_t h[4] = {
        { AIGW_STR("Content-Type"), AIGW_STR("application/json; charset=utf-8") },
        { AIGW_STR("Access-Control-Allow-Origin"), AIGW_STR("*") },
        { AIGW_STR("X-Kong-Admin-Latency"), { lat, ln } },
    };
    size_t nh = (aigw_http_req_headers(req) & AIGW_HDR_ADMIN_LATENCY) ? 3 : 2;
    if (!body) {
        aigw_http_respond(req, status, h + 1, nh - 1, NULL, 0);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    if (!text) {
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    aigw_http_respond(req, status, h, nh, text, strlen(text));
    free(text);
}

void aigw_admin_respond_message(aigw_http_req_t *req, int status, const char *msg)
{
    json_t *o = json_pack("{s:s}", "message", msg);
    aigw_admin_respond_json(req, status, o);
    json_decref(o);
}

void aigw_admin_respond_options(aigw_http_req_t *req, const char *methods)
{
    const aigw_http_header_t *rh =
        aigw_http_req_header(req, AIGW_STR("access-control-request-headers"));
    aigw_http_resp_header_t h[4] = {
        { AIGW_STR("Allow"), aigw_str_c(methods) },
        { AIGW_STR("Access-Control-Allow-Methods"), aigw_str_c(methods) },
        { AIGW_STR("Access-Control-Allow-Headers"),
          rh ? rh->value : AIGW_STR("Content-Type") },
        { AIGW_STR("Access-Control-Allow-Origin"), AIGW_STR("*") },
    };
    aigw_http_respond(req, 204, h, 4, NULL, 0);
}
