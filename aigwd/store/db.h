/* aigwd/store/db.h: what the store's files share (not for other modules). A tiny driver
 * interface over SQLite (sqlite.c) and PostgreSQL (pg.c): parameterised queries only, every
 * parameter and every result cell as text. The SQL generator (sql.c) and the migration table
 * (generated at build time from migrations/<dialect>/NNN_*.sql by cmake/migrations.cmake).
 *
 * Blocking; one aigw_store_t per thread, as store.h says. */
#ifndef AIGW_STORE_DB_H
#define AIGW_STORE_DB_H
#include <stddef.h>
#include "store/store.h"

typedef enum {
    AIGW_STORE__SQLITE = 0,
    AIGW_STORE__PG,
} aigw_store__dialect_t;

/* How a statement failed, as far as the store's callers care. */
typedef enum {
    AIGW_STORE__OK = 0,
    AIGW_STORE__EUNIQUE,      /* a UNIQUE or PRIMARY KEY constraint */
    AIGW_STORE__EFOREIGN,     /* a FOREIGN KEY constraint */
    AIGW_STORE__EUNREACHABLE, /* the link is gone, a timeout, the file cannot be used */
    AIGW_STORE__EOTHER,       /* any other database error */
} aigw_store__ekind_t;

typedef struct aigw_store__dberr {
    aigw_store__ekind_t kind;
    char msg[512];            /* the database's message, one line */
} aigw_store__dberr_t;

/* A result: nrows x ncols cells, row-major; a cell is NULL for SQL NULL. Owned. */
typedef struct aigw_store__rows {
    size_t nrows, ncols;
    char **cells;
} aigw_store__rows_t;

static inline const char *aigw_store__cell(const aigw_store__rows_t *r, size_t row, size_t col)
{
    return r->cells[row * r->ncols + col];
}
void aigw_store__rows_free(aigw_store__rows_t *r);   /* frees the cells; r is the caller's */

typedef struct aigw_store__driver {
    const char *kind;   /* "sqlite", "postgres" */
    /* One statement. Placeholders are $1..$n in the text (sqlite.c rewrites them). out may be
     * NULL when no rows are wanted. 0, or -1 with err filled. */
    int (*query)(aigw_store_t *s, const char *sql, const char *const *params, size_t nparams,
                 aigw_store__rows_t *out, aigw_store__dberr_t *err);
    /* Several statements without parameters (migrations). 0 or -1. */
    int (*script)(aigw_store_t *s, const char *sql, aigw_store__dberr_t *err);
    /* 1 when a trivial query succeeds (PostgreSQL: reconnecting once, outside a
     * transaction, when the link was lost). */
    int (*ping)(aigw_store_t *s);
    void (*close)(aigw_store_t *s);
} aigw_store__driver_t;

struct aigw_store {
    const aigw_store__driver_t *drv;
    aigw_store__dialect_t dialect;
    void *conn;              /* sqlite3 * or PGconn * */
    /* PostgreSQL connection settings, copied at open (the configuration may be reloaded). */
    char *pg_host, *pg_user, *pg_password, *pg_database;
    int pg_port, pg_ssl, pg_timeout;
    int in_tx;               /* between aigw_store_begin and commit/rollback */
    int dirty;               /* a write happened in this transaction */
};

extern const aigw_store__driver_t aigw_store__sqlite_driver;
extern const aigw_store__driver_t aigw_store__pg_driver;

/* Drivers' open: fill s->conn. 0, or -1 with a one-line reason. */
int aigw_store__sqlite_open(aigw_store_t *s, const char *path, char *err, size_t errlen);
int aigw_store__pg_open(aigw_store_t *s, char *err, size_t errlen);

/* Convenience over s->drv->query. */
int aigw_store__query(aigw_store_t *s, const char *sql, const char *const *params,
                      size_t nparams, aigw_store__rows_t *out, aigw_store__dberr_t *err);

/* Fills a user-facing error from a driver error: unreachable -> code 1000
 * ("database unreachable: <reason>"), anything else -> code 8 with the message. */
void aigw_store__fail(aigw_db_error_t *out, const aigw_store__dberr_t *dbe);

/* ---- SQL generation (sql.c) ----------------------------------------------------------- */

/* A growable string; on allocation failure `oom` is set and further appends do nothing. */
typedef struct aigw_store__buf {
    char *p;
    size_t n, cap;
    int oom;
} aigw_store__buf_t;

void aigw_store__buf_add(aigw_store__buf_t *b, const char *s);
void aigw_store__buf_addf(aigw_store__buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void aigw_store__buf_free(aigw_store__buf_t *b);

/* 1 when name is a safe SQL identifier: [a-z_][a-z0-9_]*, at most 48 bytes. Every table and
 * column name the store writes into SQL comes from the schema tables and passes this. */
int aigw_store__ident_ok(const char *name);

/* The stored form of a field: 1 when it has a column of its own. */
int aigw_store__field_stored(const aigw_field_t *f);

/* The DDL of one entity's table and its indexes, for a dialect. 0, or -1 (bad name, OOM). */
int aigw_store__entity_ddl(const aigw_entity_t *e, aigw_store__dialect_t d,
                           aigw_store__buf_t *out);
/* The whole text of migration 001_initial for a dialect, as committed under
 * migrations/<dialect>/001_initial.sql. malloc'd, NULL on failure. */
char *aigw_store__initial_sql(aigw_store__dialect_t d);

/* ---- migrations embedded at build time (cmake/migrations.cmake) ------------------------- */

typedef struct aigw_store__migration {
    const char *name;   /* "001_initial"; NULL ends the list */
    const char *sql;
} aigw_store__migration_t;

extern const aigw_store__migration_t aigw_store__migrations_sqlite[];
extern const aigw_store__migration_t aigw_store__migrations_postgres[];

/* The bookkeeping tables every write touches or every migration records into. */
#define AIGW_STORE__MIGRATIONS_TABLE "aigw_migrations"
#define AIGW_STORE__VERSION_TABLE "aigw_config_version"

#endif
