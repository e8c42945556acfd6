/* aigwd/store/sqlite.c: the SQLite driver of db.h. One connection per store (NOMUTEX): WAL,
 * synchronous=NORMAL, foreign keys on, a 5 s busy timeout. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/fs.h"
#include "store/db.h"

void aigw_store__rows_free(aigw_store__rows_t *r)
{
    if (!r || !r->cells)
        return;
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
    r->cells = NULL;
    r->nrows = r->ncols = 0;
}

static void set_err(aigw_store__dberr_t *err, aigw_store__ekind_t kind, const char *msg)
{
    err->kind = kind;
    snprintf(err->msg, sizeof(err->msg), "%s", msg);
}

static aigw_store__ekind_t classify(int ext)
{
    switch (ext) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return AIGW_STORE__EUNIQUE;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return AIGW_STORE__EFOREIGN;
    default:
        break;
    }
    switch (ext & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
        return AIGW_STORE__EUNREACHABLE;
    default:
        return AIGW_STORE__EOTHER;
    }
}

static void db_err(sqlite3 *db, int rc, aigw_store__dberr_t *err)
{
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    if ((ext & 0xff) != (rc & 0xff))
        ext = rc;
    set_err(err, classify(ext), db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* The store writes $1..$n (PostgreSQL's form); SQLite takes ?1..?n with the same numbers. */
static char *rewrite_params(const char *sql)
{
    size_t n = strlen(sql);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char quote = 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = sql[i];
        if (quote) {
            if (ch == quote)
                quote = 0;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
        } else if (ch == '$' && sql[i + 1] >= '1' && sql[i + 1] <= '9') {
            ch = '?';
        }
        out[i] = ch;
    }
    return out;
}

static int sq_query(aigw_store_t *s, const char *sql, const char *const *params, size_t nparams,
                    aigw_store__rows_t *out, aigw_store__dberr_t *err)
{
    sqlite3 *db = s->conn;
    if (out)
        memset(out, 0, sizeof(*out));
    char *text = rewrite_params(sql);
    if (!text) {
        set_err(err, AIGW_STORE__EOTHER, "out of memory");
        return -1;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, text, -1, &st, NULL);
    free(text);
    if (rc != SQLITE_OK) {
        db_err(db, rc, err);
        return -1;
    }
    for (size_t i = 0; i < nparams; i++) {
        rc = params[i] ? sqlite3_bind_text(st, (int)i + 1, params[i], -1, SQLITE_TRANSIENT)
                       : sqlite3_bind_null(st, (int)i + 1);
        if (rc != SQLITE_OK) {
            db_err(db, rc, err);
            sqlite3_finalize(st);
            return -1;
        }
    }
    size_t ncols = (size_t)sqlite3_column_count(st), cap = 0;
    char **cells = NULL;
    size_t nrows = 0;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            db_err(db, rc, err);
            goto fail;
        }
        if (!out || ncols == 0)
            continue;
        if ((nrows + 1) * ncols > cap) {
            size_t ncap = cap ? cap * 2 : ncols * 8;
            while (ncap < (nrows + 1) * ncols)
                ncap *= 2;
            char **nc = realloc(cells, ncap * sizeof(*nc));
            if (!nc) {
                set_err(err, AIGW_STORE__EOTHER, "out of memory");
                goto fail;
            }
            cells = nc;
            cap = ncap;
        }
        for (size_t c = 0; c < ncols; c++) {
            const unsigned char *v = sqlite3_column_text(st, (int)c);
            char *copy = NULL;
            if (v) {
                copy = strdup((const char *)v);
                if (!copy) {
                    for (size_t k = 0; k < c; k++)
                        free(cells[nrows * ncols + k]);
                    set_err(err, AIGW_STORE__EOTHER, "out of memory");
                    goto fail;
                }
            }
            cells[nrows * ncols + c] = copy;
        }
        nrows++;
    }
    sqlite3_finalize(st);
    if (out) {
        out->cells = cells;
        out->nrows = nrows;
        out->ncols = ncols;
    }
    return 0;
fail:
    sqlite3_finalize(st);
    for (size_t i = 0; i < nrows * ncols; i++)
        free(cells[i]);
    free(cells);
    return -1;
}

static int sq_script(aigw_store_t *s, const char *sql, aigw_store__dberr_t *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->conn, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int ext = sqlite3_extended_errcode(s->conn);
        set_err(err, classify(ext), msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int sq_ping(aigw_store_t *s)
{
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(s->conn, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
                 SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return ok;
}

static void sq_close(aigw_store_t *s)
{
    if (s->conn)
        sqlite3_close_v2(s->conn);
    s->conn = NULL;
}

const aigw_store__driver_t aigw_store__sqlite_driver = {
    .kind = "sqlite",
    .query = sq_query,
    .script = sq_script,
    .ping = sq_ping,
    .close = sq_close,
};

/* The database holds credentials: create it readable by its owner only. SQLite gives the
 * -wal and -shm files the same mode. The directory is made as the daemon makes its prefix. */
static int precreate(const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        size_t n = (size_t)(slash - path);
        char *dir = malloc(n + 1);
        if (!dir) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(dir, path, n);
        dir[n] = 0;
        int r = aigw_mkdir_p(dir, 0755);
        int e = errno;
        if (r != 0) {
            snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(e));
            free(dir);
            return -1;
        }
        free(dir);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open SQLite database %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int pragma(sqlite3 *db, const char *sql, const char *want, char *err, size_t errlen,
                  const char *path)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(err, errlen, "cannot use SQLite database %s: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    if (want) {
        const unsigned char *v = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (!v || strcmp((const char *)v, want) != 0) {
            snprintf(err, errlen, "cannot use SQLite database %s: `%s` gave %s, not %s", path,
                     sql, v ? (const char *)v : "nothing", want);
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int aigw_store__sqlite_open(aigw_store_t *s, const char *path, char *err, size_t errlen)
{
    if (precreate(path, err, errlen) != 0)
        return -1;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open SQLite database %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    /* mmap_size: reads map the file instead of copying pages through pread into a private
     * cache, which a commit on another connection (every admin write, seen by the snapshot
     * builder's) empties; at 10k routes that was a quarter of a snapshot build. The mapped
     * pages are the OS page cache: resident size about the same as SQLite's own cache. */
    if (pragma(db, "PRAGMA journal_mode=WAL", "wal", err, errlen, path) != 0 ||
        pragma(db, "PRAGMA synchronous=NORMAL", NULL, err, errlen, path) != 0 ||
        pragma(db, "PRAGMA mmap_size=268435456", NULL, err, errlen, path) != 0 ||
        pragma(db, "PRAGMA foreign_keys=ON", NULL, err, errlen, path) != 0 ||
        pragma(db, "PRAGMA foreign_keys", "1", err, errlen, path) != 0) {
        sqlite3_close_v2(db);
        return -1;
    }
    s->conn = db;
    s->drv = &aigw_store__sqlite_driver;
    s->dialect = AIGW_STORE__SQLITE;
    return 0;
}
