/* aigwd/admin/api.h: the entity endpoints of the admin API, generated from the schema tables
 * (kong/api/endpoints.lua's CRUD, nested collections, reverse foreign endpoints), plus
 * /schemas, /tags, /endpoints and /plugins/enabled. Admin thread only; blocks on the store. */
#ifndef AIGW_ADMIN_API_H
#define AIGW_ADMIN_API_H
#include "core/conf.h"
#include "http/request.h"
#include "store/store.h"

typedef struct aigw_api {
    const aigw_conf_t *conf;     /* borrowed */
    aigw_store_t *store;         /* owned by the admin; NULL when it cannot be opened */
    void (*on_change)(void *ud); /* called after every committed write */
    void *on_change_ud;
    char dbless_hash[65];        /* DB-less: sha256 of the configuration POSTed last */
} aigw_api_t;

/* Serves req when its path belongs to the entity API: 1 if answered, 0 if the path is not
 * one of ours (the caller answers 404). */
int aigw_api_handle(aigw_api_t *api, aigw_http_req_t *req);

/* Writes a Kong DB error as the admin API answers it (status from the code). */
void aigw_api_respond_db_error(aigw_http_req_t *req, const aigw_db_error_t *err);

#endif
