/* aigwd/store/store.h: the configuration store, one behaviour over SQLite (default) and
 * PostgreSQL. Entities are the validated jansson objects of schema/schema.h; the store keeps
 * each as JSON plus the columns that enforce keys: unique fields (u_<field>), foreign keys
 * (<field>_id, ON DELETE CASCADE or restricted), and a cache_key for fields unique together.
 *
 * Blocking. One aigw_store_t per thread (the admin thread, a CLI command); never a proxy
 * worker. Every write a caller makes between aigw_store_begin and aigw_store_commit is one
 * transaction: a failed request rolls back and changes nothing. */
#ifndef AIGW_STORE_STORE_H
#define AIGW_STORE_STORE_H
#include <jansson.h>
#include <stddef.h>
#include "core/conf.h"
#include "schema/schema.h"

/* Kong's DB error codes (kong/db/errors.lua). */
enum {
    AIGW_DBE_INVALID_PK = 1,
    AIGW_DBE_SCHEMA = 2,
    AIGW_DBE_PK = 3,
    AIGW_DBE_FOREIGN_KEY = 4,
    AIGW_DBE_UNIQUE = 5,
    AIGW_DBE_NOT_FOUND = 6,
    AIGW_DBE_INVALID_OFFSET = 7,
    AIGW_DBE_DATABASE = 8,
    AIGW_DBE_INVALID_SIZE = 9,
    AIGW_DBE_INVALID_OPTIONS = 11,
    AIGW_DBE_FOREIGN_UNRESOLVED = 13,
    AIGW_DBE_DECLARATIVE = 14,
    AIGW_DBE_REFERENCED = 19,
    AIGW_DBE_UNREACHABLE = 1000,   /* aigw: the database cannot be reached (503) */
};

/* A failure a user reads. message is Kong's text; fields (owned, may be NULL) is Kong's
 * `fields` object. Free with aigw_db_error_clear. */
typedef struct aigw_db_error {
    int code;
    char message[1024];
    json_t *fields;
} aigw_db_error_t;

void aigw_db_error_clear(aigw_db_error_t *e);
/* Kong's name for a code ("unique constraint violation"). */
const char *aigw_db_error_name(int code);
/* The HTTP status of a code (endpoints.lua): 400, 404, 409, 500, 503. */
int aigw_db_error_status(int code);

typedef struct aigw_store aigw_store_t;

/* Connects (SQLite: opens/creates the file, WAL, foreign keys on). NULL with a one-line
 * reason in err. Does not migrate. With database = off (DB-less) it opens the node's own
 * SQLite file that holds the declarative configuration (aigw_store_dbless_path). */
aigw_store_t *aigw_store_open(const aigw_conf_t *c, char *err, size_t errlen);
void aigw_store_close(aigw_store_t *s);          /* NULL is fine */
/* <prefix>/dbless.db: rebuilt from declarative_config at every start in DB-less mode. */
void aigw_store_dbless_path(const aigw_conf_t *c, char *out, size_t cap);
/* 1 when a trivial query succeeds now (reconnecting once when the link was lost). */
int aigw_store_ping(aigw_store_t *s);
const char *aigw_store_kind(const aigw_store_t *s);   /* "sqlite" or "postgres" */

/* ---- migrations ------------------------------------------------------------------------ */

typedef struct aigw_migration_state {
    size_t total;        /* migrations aigw knows */
    size_t applied;      /* recorded as done in this database */
    int bootstrapped;    /* the bookkeeping table exists */
    char **names;        /* every known migration name, in order (owned) */
    int *done;           /* per name: 1 applied */
} aigw_migration_state_t;

void aigw_migration_state_free(aigw_migration_state_t *m);
int aigw_store_migrations(aigw_store_t *s, aigw_migration_state_t *out, aigw_db_error_t *err);
/* Each runs under a database-wide lock (PostgreSQL advisory lock, SQLite exclusive
 * transaction) so two nodes cannot migrate at once. 0 or -1. */
int aigw_store_bootstrap(aigw_store_t *s, aigw_db_error_t *err);  /* refuses if bootstrapped */
int aigw_store_migrate_up(aigw_store_t *s, aigw_db_error_t *err);
int aigw_store_reset(aigw_store_t *s, aigw_db_error_t *err);      /* drops everything */

/* ---- transactions ------------------------------------------------------------------------ */

int aigw_store_begin(aigw_store_t *s, aigw_db_error_t *err);
int aigw_store_commit(aigw_store_t *s, aigw_db_error_t *err);
void aigw_store_rollback(aigw_store_t *s);
/* A read-only transaction: every read until aigw_store_rollback sees one consistent state of
 * the database (a commit by another connection in between is not seen). 0 or -1. */
int aigw_store_begin_read(aigw_store_t *s, aigw_db_error_t *err);

/* ---- entities -------------------------------------------------------------------------- */

/* Entities with a field flagged AIGW_F_TTL (Kong's `ttl = true`: key-auth credentials,
 * oauth2 codes and tokens) may carry "ttl": seconds to live from the write (insert or
 * replace); absent, null or 0: no expiry. The expiry time is kept in the row's `ttl` column,
 * not in the entity. Reads (get, find, list, each) never return a row past it and give "ttl"
 * as the whole seconds left; writes first purge such rows of that table. */

/* Inserts a validated entity (obj has id and timestamps). Checks, in Kong's order and with
 * Kong's messages: primary key taken (3), foreign keys exist (4), unique fields and the
 * cache key free (5). 0 or -1. */
int aigw_store_insert(aigw_store_t *s, const aigw_entity_t *e, const json_t *obj,
                      aigw_db_error_t *err);
/* Replaces the row with obj's id (which must exist) with obj; same checks as insert,
 * ignoring the row itself for uniqueness. 0 or -1. */
int aigw_store_replace(aigw_store_t *s, const aigw_entity_t *e, const json_t *obj,
                       aigw_db_error_t *err);
/* Deletes by id, cascading to children whose foreign field has AIGW_F_CASCADE; refuses
 * (code 4, "an existing 'routes' entity references this 'services' entity") while a
 * non-cascading child refers to it. 0 deleted, 1 not found, -1 error. */
int aigw_store_delete(aigw_store_t *s, const aigw_entity_t *e, const char *id,
                      aigw_db_error_t *err);
/* 0 found (*out a new reference), 1 not found, -1 error. */
int aigw_store_get(aigw_store_t *s, const aigw_entity_t *e, const char *id, json_t **out,
                   aigw_db_error_t *err);
/* By a unique field (endpoint key): same results. */
int aigw_store_find(aigw_store_t *s, const aigw_entity_t *e, const char *field,
                    const char *value, json_t **out, aigw_db_error_t *err);

typedef struct aigw_store_query {
    size_t size;                 /* 1..1000 */
    const char *offset;          /* opaque, from a previous page; NULL for the first */
    const char *fk_field;        /* only rows whose foreign field fk_field ... */
    const char *fk_id;           /* ... references this id */
    const char *const *tags;     /* NULL-terminated; NULL: no tag filter */
    int tags_any;                /* 1: any of tags ("a/b"), 0: all ("a,b") */
    const char *eq_field;        /* an exact filter on a unique field (custom_id=), or NULL */
    const char *eq_value;
} aigw_store_query_t;

typedef struct aigw_store_page {
    json_t *data;                /* new array of entities */
    char *offset;                /* malloc'd opaque offset of the next page, NULL on the last */
} aigw_store_page_t;

/* Ordered by id. A bad offset is code 7 ("'x' is not a valid offset: bad base64 encoding").
 * 0 or -1; on 0 the caller frees page->data (json_decref) and page->offset (free). */
int aigw_store_list(aigw_store_t *s, const aigw_entity_t *e, const aigw_store_query_t *q,
                    aigw_store_page_t *page, aigw_db_error_t *err);

/* Calls fn for every row of e in id order (export, snapshot). fn returns 0 to go on.
 * 0, or -1 (err, or fn's non-zero). */
int aigw_store_each(aigw_store_t *s, const aigw_entity_t *e,
                    int (*fn)(const json_t *obj, void *ud), void *ud, aigw_db_error_t *err);

/* As aigw_store_each, with each row's stored JSON text (a validated entity; absent optional
 * fields mean null) instead of a parsed object: for the snapshot, which only copies it. */
int aigw_store_each_raw(aigw_store_t *s, const aigw_entity_t *e,
                        int (*fn)(const char *json, void *ud), void *ud, aigw_db_error_t *err);

/* GET /tags: rows {"tag","entity_name","entity_id"} of every entity, optionally one tag,
 * paged like aigw_store_list (offset opaque). */
int aigw_store_tags(aigw_store_t *s, const char *tag, size_t size, const char *offset,
                    aigw_store_page_t *page, aigw_db_error_t *err);

/* Distinct plugin names in the plugins table (GET / enabled_in_cluster). New array. */
json_t *aigw_store_plugin_names(aigw_store_t *s, aigw_db_error_t *err);

/* Deletes every row past its ttl (Kong's cleanup of expired rows), in one transaction that
 * raises the config version when it deletes configuration (expired oauth2 tokens and codes
 * alone leave it). 1 deleted some, 0 none, -1 error. */
int aigw_store_expire(aigw_store_t *s, aigw_db_error_t *err);

/* The rate-limiting plugin's `cluster` policy: one atomic check-and-increment over n
 * counters (keys[i] with limits[i], expiring at expire_at[i] epoch seconds). In one
 * transaction every counter is incremented; if any then exceeds its limit the transaction is
 * rolled back and *admitted is 0, else it commits and *admitted is 1. usage[i] gets each
 * counter's value before this request. Rows past their expiry are purged now and then.
 * 0, or -1 with err (nothing counted). Not inside an open transaction. */
int aigw_store_ratelimit_take(aigw_store_t *s, const char *const *keys, const double *limits,
                              const long long *expire_at, size_t n, long long now,
                              long long *usage, int *admitted, aigw_db_error_t *err);

/* ---- change notification -------------------------------------------------------------- */

/* A number that rises with every committed write by any node (PostgreSQL: a sequence bumped
 * in the same transaction, and NOTIFY aigw_config; SQLite: a row in the same file). Used by
 * the snapshot builder to know when to rebuild. 0 or -1. */
int aigw_store_version(aigw_store_t *s, long long *out, aigw_db_error_t *err);

#endif
