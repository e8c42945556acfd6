/* aigwd/proxy/proxy.c: see proxy.h. */
#include "http/server.h"
#include "proxy/proxy.h"

void aigw_proxy_handle(aigw_http_req_t *req, void *ud)
{
    (void)ud;
    /* kong/runloop/handler.lua: kong.response.error(404, "no Route matched with those values") */
    aigw_http_respond_error(req, 404, "no Route matched with those values");
}
