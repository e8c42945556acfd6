/* aigwd/admin/respond.h: how the admin API answers (JSON, Kong's headers). Admin thread. */
#ifndef AIGW_ADMIN_RESPOND_H
#define AIGW_ADMIN_RESPOND_H
#include <jansson.h>
#include "http/request.h"

/* Answers with body as compact JSON (NULL: no body). body is borrowed. */
void aigw_admin_respond_json(aigw_http_req_t *req, int status, const json_t *body);
/* {"message": msg} */
void aigw_admin_respond_message(aigw_http_req_t *req, int status, const char *msg);
/* OPTIONS on a known path: 204 with Allow and the CORS headers. */
void aigw_admin_respond_options(aigw_http_req_t *req, const char *methods);

#endif
