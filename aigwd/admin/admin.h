/* aigwd/admin/admin.h: the admin API (GET /, GET /status for now) and the status listener.
 * Runs on the admin thread only; may block there (database pings). */
#ifndef AIGW_ADMIN_ADMIN_H
#define AIGW_ADMIN_ADMIN_H
#include "core/conf.h"
#include "http/request.h"

typedef struct aigw_admin aigw_admin_t;

/* node_id and hostname are copied. conf is borrowed until the next aigw_admin_set_conf. */
aigw_admin_t *aigw_admin_new(const aigw_conf_t *conf, const char *node_id, const char *hostname);
void aigw_admin_set_conf(aigw_admin_t *a, const aigw_conf_t *conf);
void aigw_admin_free(aigw_admin_t *a);
/* fn(ud) runs on the admin thread after every committed write through the admin API. */
void aigw_admin_on_change(aigw_admin_t *a, void (*fn)(void *ud), void *ud);


/* Handlers for aigw_http_service_t (ud = the aigw_admin_t). */
void aigw_admin_handle(aigw_http_req_t *req, void *ud);
void aigw_admin_handle_status_listener(aigw_http_req_t *req, void *ud);

#endif
