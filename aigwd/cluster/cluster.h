/* aigwd/cluster/cluster.h: hybrid mode. A control plane (role = control_plane) runs a cluster
 * thread that accepts data planes on cluster_listen and pushes every configuration snapshot
 * to them; a data plane (role = data_plane) runs a cluster thread that connects out to
 * cluster_control_plane, verifies each snapshot, caches it in its prefix and makes it the
 * proxy's runtime. Wire format and keys: cluster/proto.h.
 *
 * Start and stop on the main thread (start before the snapshot builder and the workers,
 * stop after them). One CP or one DP per process. Cluster settings are read at start: a
 * reload does not change them. */
#ifndef AIGW_CLUSTER_CLUSTER_H
#define AIGW_CLUSTER_CLUSTER_H
#include <jansson.h>
#include "core/conf.h"

/* CP. Opens cluster_listen, loads the signing key and starts the cluster thread, which
 * subscribes to configuration snapshots. on_remote_change() runs on the cluster thread when
 * PostgreSQL tells that another node committed a change (LISTEN aigw_config); it must not
 * block. 0, or -1 with err (nothing started). */
int aigw_cluster_cp_start(const aigw_conf_t *c, void (*on_remote_change)(void), char *err,
                          size_t errlen);
void aigw_cluster_cp_stop(void);    /* closes every link; fine when not started */

/* CP, any thread (the admin API). GET /clustering/data-planes: Kong's paged shape
 * {"data":[...],"next":null}. GET /clustering/status: {node_id: {...}}. New references;
 * NULL when this process is not a control plane. */
json_t *aigw_cluster_data_planes(void);
json_t *aigw_cluster_status(void);

/* DP. Serves the snapshot cached in the prefix at once when there is one (published before
 * this returns), then starts the cluster thread. node_id and hostname are copied.
 * 0, or -1 with err. */
int aigw_cluster_dp_start(const aigw_conf_t *c, const char *node_id, const char *hostname,
                          char *err, size_t errlen);
void aigw_cluster_dp_stop(void);    /* fine when not started */
/* DP, before starting: checks cluster_control_plane, the certificate and key (what
 * aigw_cluster_dp_start would fail on). 0, or -1 with err. */
int aigw_cluster_dp_check(const aigw_conf_t *c, char *err, size_t errlen);

/* The file in the prefix where a DP keeps its last good snapshot. */
#define AIGW_CLUSTER_CACHE_FILE "cluster_config.cache"

#endif
