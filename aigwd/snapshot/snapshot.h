/* aigwd/snapshot/snapshot.h: the one seam between control and data plane. After every
 * committed change the store's whole configuration is rendered as Kong-format declarative
 * JSON with a rising version and a sha256 hash, and published: subscribers (the proxy loader
 * in traditional mode, the cluster listener on a control plane) get it in-process.
 *
 * A snapshot is immutable and reference-counted; any thread may hold one. Building blocks on
 * the store (admin thread); publishing and reading the current one are thread-safe. */
#ifndef AIGW_SNAPSHOT_SNAPSHOT_H
#define AIGW_SNAPSHOT_SNAPSHOT_H
#include <stdatomic.h>
#include <stddef.h>
#include "store/store.h"

typedef struct aigw_snapshot {
    _Atomic int refs;
    long long version;      /* rises with every build */
    char hash[65];          /* sha256 of json, lower-case hex */
    char *json;             /* {"_format_version":"3.0","services":[...],...}, compact */
    size_t len;
    size_t entities;        /* how many entities it holds */
} aigw_snapshot_t;

/* Renders the store. NULL with err on a store error. The new snapshot holds one reference. */
aigw_snapshot_t *aigw_snapshot_build(aigw_store_t *s, long long version, aigw_db_error_t *err);
/* Builds and publishes a new snapshot when the store's version moved since the current one.
 * 1 published, 0 nothing to do, -1 error (err). Blocks on the store. */
int aigw_snapshot_refresh(aigw_store_t *s, aigw_db_error_t *err);
aigw_snapshot_t *aigw_snapshot_ref(aigw_snapshot_t *s);
void aigw_snapshot_unref(aigw_snapshot_t *s);        /* NULL is fine */

/* Makes snap the current snapshot (takes a reference) and calls every subscriber with it on
 * this thread. */
void aigw_snapshot_publish(aigw_snapshot_t *snap);
/* The current snapshot with a new reference, or NULL before the first publish. */
aigw_snapshot_t *aigw_snapshot_current(void);

/* fn(snap, ud) runs on the publishing thread for each new snapshot; it must not block, and
 * takes its own reference if it keeps snap. 0, or -1 when the table is full. */
typedef void (*aigw_snapshot_fn)(aigw_snapshot_t *snap, void *ud);
int aigw_snapshot_subscribe(aigw_snapshot_fn fn, void *ud);

/* Drops the current snapshot and every subscriber (at exit, after the threads ended). */
void aigw_snapshot_shutdown(void);

/* Kong's configuration_hash shape (32 hex digits; zeros before any snapshot). */
void aigw_snapshot_config_hash(char out[33]);

#endif
