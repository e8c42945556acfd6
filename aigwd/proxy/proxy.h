/* aigwd/proxy/proxy.h: the proxy's request entry point. Until routing exists every request
 * is answered as Kong answers one that matches no route. Worker threads. */
#ifndef AIGW_PROXY_PROXY_H
#define AIGW_PROXY_PROXY_H
#include "http/request.h"

void aigw_proxy_handle(aigw_http_req_t *req, void *ud);

#endif
