/* aigwd/store/migrate.c: migrations. The SQL of each is embedded at build time from
 * migrations/<dialect>/NNN_*.sql (cmake/migrations.cmake); aigw_migrations records which ran.
 * Each command runs in one transaction under a database-wide lock: PostgreSQL's
 * pg_try_advisory_xact_lock (a second node gives up at once instead of waiting), SQLite's
 * BEGIN EXCLUSIVE (a second process waits up to the 5 s busy timeout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/db.h"

/* "aigw" as a number: the advisory lock key of migrations. */
#define MIGRATION_LOCK_KEY "1634297719"

static const aigw_store__migration_t *known(const aigw_store_t *s)
{
    return s->dialect == AIGW_STORE__PG ? aigw_store__migrations_postgres
                                        : aigw_store__migrations_sqlite;
}

static void fail(aigw_db_error_t *err, int code, const char *msg)
{
    json_decref(err->fields);
    err->fields = NULL;
    err->code = code;
    snprintf(err->message, sizeof(err->message), "%s", msg);
}

static int run(aigw_store_t *s, const char *sql, const char *const *params, size_t n,
               aigw_store__rows_t *out, aigw_db_error_t *err)
{
    aigw_store__dberr_t dbe;
    if (aigw_store__query(s, sql, params, n, out, &dbe) != 0) {
        aigw_store__fail(err, &dbe);
        return -1;
    }
    return 0;
}

static int script(aigw_store_t *s, const char *name, const char *sql, aigw_db_error_t *err)
{
    aigw_store__dberr_t dbe;
    if (s->drv->script(s, sql, &dbe) != 0) {
        aigw_store__fail(err, &dbe);
        if (name && err->code != AIGW_DBE_UNREACHABLE) {
            char msg[sizeof(err->message)];
            snprintf(msg, sizeof(msg), "migration %s failed: %s", name, dbe.msg);
            fail(err, AIGW_DBE_DATABASE, msg);
        }
        return -1;
    }
    return 0;
}

static int bootstrapped(aigw_store_t *s, aigw_db_error_t *err)
{
    const char *sql = s->dialect == AIGW_STORE__PG
                          ? "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = "
                            "current_schema() AND tablename = $1"
                          : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1";
    const char *p[] = { AIGW_STORE__MIGRATIONS_TABLE };
    aigw_store__rows_t r;
    if (run(s, sql, p, 1, &r, err) != 0)
        return -1;
    int found = r.nrows > 0;
    aigw_store__rows_free(&r);
    return found;
}

void aigw_migration_state_free(aigw_migration_state_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; m->names && i < m->total; i++)
        free(m->names[i]);
    free(m->names);
    free(m->done);
    memset(m, 0, sizeof(*m));
}

static int state(aigw_store_t *s, aigw_migration_state_t *out, aigw_db_error_t *err)
{
    memset(out, 0, sizeof(*out));
    const aigw_store__migration_t *m = known(s);
    size_t n = 0;
    while (m[n].name)
        n++;
    out->names = calloc(n ? n : 1, sizeof(*out->names));
    out->done = calloc(n ? n : 1, sizeof(*out->done));
    if (!out->names || !out->done)
        goto nomem;
    out->total = n;
    for (size_t i = 0; i < n; i++)
        if (!(out->names[i] = strdup(m[i].name)))
            goto nomem;
    int b = bootstrapped(s, err);
    if (b < 0)
        goto fail;
    out->bootstrapped = b;
    if (!b)
        return 0;
    aigw_store__rows_t r;
    if (run(s, "SELECT name FROM " AIGW_STORE__MIGRATIONS_TABLE, NULL, 0, &r, err) != 0)
        goto fail;
    for (size_t i = 0; i < r.nrows; i++)
        for (size_t k = 0; k < n; k++)
            if (aigw_store__cell(&r, i, 0) && strcmp(aigw_store__cell(&r, i, 0), m[k].name) == 0 &&
                !out->done[k]) {
                out->done[k] = 1;
                out->applied++;
            }
    aigw_store__rows_free(&r);
    return 0;
nomem:
    fail(err, AIGW_DBE_DATABASE, "out of memory");
fail:
    aigw_migration_state_free(out);
    return -1;
}

int aigw_store_migrations(aigw_store_t *s, aigw_migration_state_t *out, aigw_db_error_t *err)
{
    return state(s, out, err);
}

/* Opens the migration transaction and takes the lock. */
static int lock_begin(aigw_store_t *s, aigw_db_error_t *err)
{
    if (s->in_tx) {
        fail(err, AIGW_DBE_DATABASE, "a transaction is already open");
        return -1;
    }
    if (run(s, s->dialect == AIGW_STORE__PG ? "BEGIN" : "BEGIN EXCLUSIVE", NULL, 0, NULL,
            err) != 0)
        return -1;
    s->in_tx = 1;
    if (s->dialect == AIGW_STORE__SQLITE) {
        /* Foreign keys are checked at commit: reset drops parents and children alike. */
        if (run(s, "PRAGMA defer_foreign_keys = ON", NULL, 0, NULL, err) != 0)
            goto fail;
        return 0;
    }
    aigw_store__rows_t r;
    if (run(s, "SELECT pg_try_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", NULL, 0, &r, err) !=
        0)
        goto fail;
    int got = r.nrows == 1 && aigw_store__cell(&r, 0, 0) &&
              strcmp(aigw_store__cell(&r, 0, 0), "t") == 0;
    aigw_store__rows_free(&r);
    if (!got) {
        fail(err, AIGW_DBE_DATABASE, "aborted: another node is performing database changes");
        goto fail;
    }
    return 0;
fail:
    aigw_store_rollback(s);
    return -1;
}

static int finish(aigw_store_t *s, aigw_db_error_t *err)
{
    if (run(s, "COMMIT", NULL, 0, NULL, err) != 0) {
        aigw_store_rollback(s);
        return -1;
    }
    s->in_tx = 0;
    s->dirty = 0;
    return 0;
}

/* Runs the migrations not yet done (done may be NULL: all), recording each. */
static int apply(aigw_store_t *s, const int *done, aigw_db_error_t *err)
{
    const aigw_store__migration_t *m = known(s);
    for (size_t i = 0; m[i].name; i++) {
        if (done && done[i])
            continue;
        if (script(s, m[i].name, m[i].sql, err) != 0)
            return -1;
        char when[32];
        snprintf(when, sizeof(when), "%lld", (long long)time(NULL));
        const char *p[] = { m[i].name, when };
        if (run(s, "INSERT INTO " AIGW_STORE__MIGRATIONS_TABLE " (name, executed_at) "
                   "VALUES ($1, $2)",
                p, 2, NULL, err) != 0)
            return -1;
    }
    return 0;
}

int aigw_store_bootstrap(aigw_store_t *s, aigw_db_error_t *err)
{
    if (lock_begin(s, err) != 0)
        return -1;
    int b = bootstrapped(s, err);
    if (b != 0) {
        if (b > 0)
            fail(err, AIGW_DBE_DATABASE, "database already bootstrapped");
        goto fail;
    }
    const char *ddl = s->dialect == AIGW_STORE__PG
                          ? "CREATE TABLE " AIGW_STORE__MIGRATIONS_TABLE
                            " (name text COLLATE \"C\" PRIMARY KEY, executed_at bigint NOT NULL)"
                          : "CREATE TABLE " AIGW_STORE__MIGRATIONS_TABLE
                            " (name TEXT PRIMARY KEY, executed_at INTEGER NOT NULL)";
    if (script(s, NULL, ddl, err) != 0 || apply(s, NULL, err) != 0)
        goto fail;
    return finish(s, err);
fail:
    aigw_store_rollback(s);
    return -1;
}

int aigw_store_migrate_up(aigw_store_t *s, aigw_db_error_t *err)
{
    if (lock_begin(s, err) != 0)
        return -1;
    aigw_migration_state_t st;
    if (state(s, &st, err) != 0)
        goto fail;
    if (!st.bootstrapped) {
        aigw_migration_state_free(&st);
        fail(err, AIGW_DBE_DATABASE,
             "database needs bootstrapping; run 'aigwd migrations bootstrap'");
        goto fail;
    }
    int r = apply(s, st.done, err);
    aigw_migration_state_free(&st);
    if (r != 0)
        goto fail;
    return finish(s, err);
fail:
    aigw_store_rollback(s);
    return -1;
}

int aigw_store_reset(aigw_store_t *s, aigw_db_error_t *err)
{
    if (lock_begin(s, err) != 0)
        return -1;
    size_t n = 0;
    while (aigw_entities[n])
        n++;
    const char *cascade = s->dialect == AIGW_STORE__PG ? " CASCADE" : "";
    /* Children before parents; then the bookkeeping. */
    for (size_t i = n; i-- > 0;) {
        if (!aigw_store__ident_ok(aigw_entities[i]->name))
            continue;
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s%s", aigw_entities[i]->name, cascade);
        if (run(s, sql, NULL, 0, NULL, err) != 0)
            goto fail;
    }
    /* tables that are not entities: runtime counters, then the bookkeeping */
    static const char *const books[] = { "ratelimiting_counters", AIGW_STORE__VERSION_TABLE,
                                         AIGW_STORE__MIGRATIONS_TABLE, NULL };
    for (size_t i = 0; books[i]; i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s%s", books[i], cascade);
        if (run(s, sql, NULL, 0, NULL, err) != 0)
            goto fail;
    }
    return finish(s, err);
fail:
    aigw_store_rollback(s);
    return -1;
}
