/* aigwd/store/ping.c: see ping.h. */
#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/fs.h"
#include "store/ping.h"

struct aigw_store_probe {
    aigw_db_t kind;
    sqlite3 *db;
    PGconn *pg;
};

static PGconn *pg_connect(const aigw_conf_t *c)
{
    char port[16], timeout[16], options[64];
    snprintf(port, sizeof(port), "%d", c->pg_port);
    int secs = (c->pg_timeout + 999) / 1000;
    snprintf(timeout, sizeof(timeout), "%d", secs < 1 ? 1 : secs);
    /* pg_timeout bounds statements too: a hung server must not hang the admin thread. */
    snprintf(options, sizeof(options), "-c statement_timeout=%d", c->pg_timeout);
    const char *keys[] = { "host", "port", "user", "password", "dbname", "sslmode",
                           "connect_timeout", "application_name", "options", NULL };
    const char *vals[] = { c->pg_host, port, c->pg_user, c->pg_password ? c->pg_password : "",
                           c->pg_database, c->pg_ssl ? "require" : "disable", timeout, "aigw",
                           options, NULL };
    return PQconnectdbParams(keys, vals, 0);
}

aigw_store_probe_t *aigw_store_probe_open(const aigw_conf_t *c, char *err, size_t errlen)
{
    aigw_store_probe_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->kind = c->database;
    if (c->database == AIGW_DB_SQLITE) {
        int r = sqlite3_open_v2(c->sqlite_path, &p->db,
                                SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                NULL);
        if (r != SQLITE_OK) {
            snprintf(err, errlen, "cannot open SQLite database %s: %s", c->sqlite_path,
                     p->db ? sqlite3_errmsg(p->db) : sqlite3_errstr(r));
            aigw_store_probe_close(p);
            return NULL;
        }
        sqlite3_busy_timeout(p->db, 5000);
        if (!aigw_store_probe_ping(p)) {
            snprintf(err, errlen, "cannot use SQLite database %s: %s", c->sqlite_path,
                     sqlite3_errmsg(p->db));
            aigw_store_probe_close(p);
            return NULL;
        }
    } else if (c->database == AIGW_DB_POSTGRES) {
        p->pg = pg_connect(c);
        if (!p->pg || PQstatus(p->pg) != CONNECTION_OK) {
            const char *m = p->pg ? PQerrorMessage(p->pg) : "out of memory";
            size_t n = strcspn(m, "\n");
            snprintf(err, errlen, "cannot connect to PostgreSQL at %s:%d (database %s, user %s): %.*s",
                     c->pg_host, c->pg_port, c->pg_database, c->pg_user, (int)n, m);
            aigw_store_probe_close(p);
            return NULL;
        }
    }
    return p;
}

int aigw_store_probe_ping(aigw_store_probe_t *p)
{
    if (!p)
        return 0;
    if (p->kind == AIGW_DB_SQLITE) {
        sqlite3_stmt *st = NULL;
        int ok = sqlite3_prepare_v2(p->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
                     SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        return ok;
    }
    if (p->kind == AIGW_DB_POSTGRES) {
        for (int attempt = 0; attempt < 2; attempt++) {
            if (PQstatus(p->pg) != CONNECTION_OK)
                PQreset(p->pg);
            if (PQstatus(p->pg) != CONNECTION_OK)
                return 0;
            PGresult *r = PQexec(p->pg, "SELECT 1");
            int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
            PQclear(r);
            if (ok)
                return 1;
        }
        return 0;
    }
    return 1;
}

void aigw_store_probe_close(aigw_store_probe_t *p)
{
    if (!p)
        return;
    if (p->db)
        sqlite3_close(p->db);
    if (p->pg)
        PQfinish(p->pg);
    free(p);
}
