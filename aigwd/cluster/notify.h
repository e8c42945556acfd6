/* aigwd/cluster/notify.h: a control plane's LISTEN aigw_config session on PostgreSQL, so that
 * a write committed through another control plane (the store NOTIFYs at commit) makes this
 * one rebuild its snapshot at once instead of at its next poll. Cluster thread only. */
#ifndef AIGW_CLUSTER_NOTIFY_H
#define AIGW_CLUSTER_NOTIFY_H
#include "core/conf.h"

typedef struct aigw_notify aigw_notify_t;

/* Copies the connection settings; connects lazily (from aigw_notify_poll). NULL when out of
 * memory. */
aigw_notify_t *aigw_notify_new(const aigw_conf_t *c);
void aigw_notify_free(aigw_notify_t *n);     /* NULL is fine */
/* The socket to poll for reading, or -1 while not connected (NULL is fine). */
int aigw_notify_fd(const aigw_notify_t *n);
/* Reads what arrived; (re)connects when the session is down and its retry delay passed
 * (the connect may block up to pg_timeout). The number of notifications, 0 if none; a
 * reconnect counts as one (writes may have been missed meanwhile). NULL gives 0. */
int aigw_notify_poll(aigw_notify_t *n);

#endif
