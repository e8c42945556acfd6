/* aigwd/store/ping.h: is the configured database reachable? Used at start (refuse to start
 * without it, as Kong does) and by GET /status. Blocking: main or admin thread only. */
#ifndef AIGW_STORE_PING_H
#define AIGW_STORE_PING_H
#include <stddef.h>
#include "core/conf.h"

typedef struct aigw_store_probe aigw_store_probe_t;

/* Connects as conf says. NULL with a reason in err when it cannot (database = off: never
 * NULL, and every ping succeeds). */
aigw_store_probe_t *aigw_store_probe_open(const aigw_conf_t *conf, char *err, size_t errlen);
/* 1 when a trivial query succeeds now (reconnecting once if the link was lost), else 0. */
int aigw_store_probe_ping(aigw_store_probe_t *p);
void aigw_store_probe_close(aigw_store_probe_t *p);   /* NULL is fine */

#endif
