/* aigwd/store/pg.c: the PostgreSQL driver of db.h. Non-blocking libpq under poll() with a
 * deadline, so that neither a connect nor a query waits longer than pg_timeout, even when the
 * server stops answering (the server's own statement_timeout usually fires first and keeps
 * the connection usable). A lost link is re-established once, outside a transaction. */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/db.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(aigw_store__dberr_t *err, aigw_store__ekind_t kind, const char *msg)
{
    err->kind = kind;
    size_t n = strcspn(msg, "\n");
    while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\r'))
        n--;
    snprintf(err->msg, sizeof(err->msg), "%.*s", (int)n, msg);
}

/* Waits until fd is ready for `events` or the deadline passes: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = fd, .events = events };
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static void drop(aigw_store_t *s)
{
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
}

/* NOTICEs ("table ... does not exist, skipping") are not for the user's terminal or log. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int connect_now(aigw_store_t *s, char *err, size_t errlen)
{
    char port[16], options[96], user_timeout[16];
    snprintf(port, sizeof(port), "%d", s->pg_port);
    /* The server cancels a statement a little before our own deadline, so that a slow query
     * fails cleanly and the connection stays usable. */
    int st = s->pg_timeout - s->pg_timeout / 10;
    snprintf(options, sizeof(options), "-c statement_timeout=%d -c client_min_messages=warning",
             st < 1 ? 1 : st);
    snprintf(user_timeout, sizeof(user_timeout), "%d", s->pg_timeout);
    const char *keys[16], *vals[16];
    size_t n = 0;
#define KV(k, v) (keys[n] = (k), vals[n] = (v), n++)
    KV("host", s->pg_host);
    KV("port", port);
    KV("user", s->pg_user);
    if (s->pg_password)
        KV("password", s->pg_password);
    KV("dbname", s->pg_database);
    KV("sslmode", s->pg_ssl ? "require" : "disable");
    KV("application_name", "aigw");
    KV("client_encoding", "UTF8");
    KV("options", options);
    KV("tcp_user_timeout", user_timeout);
    KV("keepalives", "1");
#undef KV
    keys[n] = vals[n] = NULL;

    long long deadline = now_ms() + s->pg_timeout;
    PGconn *c = PQconnectStartParams(keys, vals, 0);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    if (PQstatus(c) == CONNECTION_BAD)
        ps = PGRES_POLLING_FAILED;
    while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
        int w = wait_fd(PQsocket(c), ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (w <= 0) {
            snprintf(err, errlen, "%s", w == 0 ? "timeout" : strerror(errno));
            PQfinish(c);
            return -1;
        }
        ps = PQconnectPoll(c);
    }
    if (ps == PGRES_POLLING_FAILED || PQstatus(c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(c);
        size_t len = strcspn(m, "\n");
        snprintf(err, errlen, "%.*s", (int)len, m);
        PQfinish(c);
        return -1;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    if (PQsetnonblocking(c, 1) != 0) {
        snprintf(err, errlen, "cannot make the connection non-blocking");
        PQfinish(c);
        return -1;
    }
    s->conn = c;
    return 0;
}

static aigw_store__ekind_t classify(const char *state)
{
    if (!state)
        return AIGW_STORE__EUNREACHABLE;
    if (strcmp(state, "23505") == 0)
        return AIGW_STORE__EUNIQUE;
    if (strcmp(state, "23503") == 0)
        return AIGW_STORE__EFOREIGN;
    /* Connection exceptions, server shutdown, statement timeout: the database cannot be used
     * now; a retry later may work. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strcmp(state, "57014") == 0 || strcmp(state, "53300") == 0)
        return AIGW_STORE__EUNREACHABLE;
    return AIGW_STORE__EOTHER;
}

/* Sends then reads every result. 0, or -1 with err; *lost set when the link is gone. */
static int run(aigw_store_t *s, const char *sql, const char *const *params, size_t nparams,
               int script, aigw_store__rows_t *out, aigw_store__dberr_t *err, int *lost)
{
    PGconn *c = s->conn;
    long long deadline = now_ms() + s->pg_timeout;
    *lost = 0;
    int sent = script ? PQsendQuery(c, sql)
                      : PQsendQueryParams(c, sql, (int)nparams, NULL, params, NULL, NULL, 0);
    if (!sent)
        goto broken;
    for (;;) {
        int f = PQflush(c);
        if (f == 0)
            break;
        if (f < 0)
            goto broken;
        int w = wait_fd(PQsocket(c), POLLIN | POLLOUT, deadline);
        if (w == 0)
            goto timeout;
        if (w < 0 || !PQconsumeInput(c))
            goto broken;
    }
    int failed = 0;
    for (;;) {
        while (PQisBusy(c)) {
            int w = wait_fd(PQsocket(c), POLLIN, deadline);
            if (w == 0)
                goto timeout;
            if (w < 0 || !PQconsumeInput(c))
                goto broken;
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
            if (!failed) {
                const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
                set_err(err, classify(state), m ? m : PQerrorMessage(c));
                if (!state && PQstatus(c) == CONNECTION_BAD)
                    *lost = 1;
                failed = 1;
            }
        } else if (st == PGRES_TUPLES_OK && out && !failed && !out->cells) {
            size_t nr = (size_t)PQntuples(r), nc = (size_t)PQnfields(r);
            if (nr * nc > 0) {
                out->cells = calloc(nr * nc, sizeof(char *));
                if (!out->cells) {
                    set_err(err, AIGW_STORE__EOTHER, "out of memory");
                    failed = 1;
                } else {
                    out->nrows = nr;
                    out->ncols = nc;
                    for (size_t i = 0; i < nr && !failed; i++)
                        for (size_t j = 0; j < nc; j++) {
                            if (PQgetisnull(r, (int)i, (int)j))
                                continue;
                            char *v = strdup(PQgetvalue(r, (int)i, (int)j));
                            if (!v) {
                                set_err(err, AIGW_STORE__EOTHER, "out of memory");
                                failed = 1;
                                break;
                            }
                            out->cells[i * nc + j] = v;
                        }
                }
            } else {
                out->ncols = nc;
            }
        }
        PQclear(r);
    }
    if (PQstatus(c) == CONNECTION_BAD) {
        if (!failed)
            set_err(err, AIGW_STORE__EUNREACHABLE, "connection lost");
        err->kind = AIGW_STORE__EUNREACHABLE;
        *lost = 1;
        failed = 1;
    }
    return failed ? -1 : 0;
timeout:
    set_err(err, AIGW_STORE__EUNREACHABLE, "timeout");
    *lost = 1;
    return -1;
broken:
    set_err(err, AIGW_STORE__EUNREACHABLE, PQerrorMessage(c));
    if (!err->msg[0])
        set_err(err, AIGW_STORE__EUNREACHABLE, "connection lost");
    *lost = 1;
    return -1;
}

static int ensure_conn(aigw_store_t *s, aigw_store__dberr_t *err)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    drop(s);
    if (s->in_tx) {
        set_err(err, AIGW_STORE__EUNREACHABLE, "connection lost during the transaction");
        return -1;
    }
    char why[256];
    if (connect_now(s, why, sizeof(why)) != 0) {
        set_err(err, AIGW_STORE__EUNREACHABLE, why);
        return -1;
    }
    return 0;
}

static int exec_any(aigw_store_t *s, const char *sql, const char *const *params,
                    size_t nparams, int script, aigw_store__rows_t *out,
                    aigw_store__dberr_t *err)
{
    if (out)
        memset(out, 0, sizeof(*out));
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure_conn(s, err) != 0)
            return -1;
        int lost = 0;
        if (run(s, sql, params, nparams, script, out, err, &lost) == 0)
            return 0;
        aigw_store__rows_free(out);
        if (!lost)
            return -1;
        drop(s);
        /* Outside a transaction nothing was half done: a connection that died while idle
         * (server restart) is replaced and the statement sent again, once. A timeout is not
         * retried: the caller has waited long enough. */
        if (s->in_tx || strcmp(err->msg, "timeout") == 0)
            return -1;
    }
    return -1;
}

static int pg_query(aigw_store_t *s, const char *sql, const char *const *params,
                    size_t nparams, aigw_store__rows_t *out, aigw_store__dberr_t *err)
{
    return exec_any(s, sql, params, nparams, 0, out, err);
}

static int pg_script(aigw_store_t *s, const char *sql, aigw_store__dberr_t *err)
{
    return exec_any(s, sql, NULL, 0, 1, NULL, err);
}

static int pg_ping(aigw_store_t *s)
{
    if (s->in_tx)
        return s->conn && PQstatus(s->conn) == CONNECTION_OK;
    aigw_store__dberr_t err;
    aigw_store__rows_t rows;
    int ok = exec_any(s, "SELECT 1", NULL, 0, 0, &rows, &err) == 0;
    aigw_store__rows_free(&rows);
    return ok;
}

static void pg_close(aigw_store_t *s)
{
    drop(s);
}

const aigw_store__driver_t aigw_store__pg_driver = {
    .kind = "postgres",
    .query = pg_query,
    .script = pg_script,
    .ping = pg_ping,
    .close = pg_close,
};

int aigw_store__pg_open(aigw_store_t *s, char *err, size_t errlen)
{
    s->drv = &aigw_store__pg_driver;
    s->dialect = AIGW_STORE__PG;
    char why[512];
    if (connect_now(s, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot connect to PostgreSQL at %s:%d (database %s, user %s): %s",
                 s->pg_host, s->pg_port, s->pg_database, s->pg_user, why);
        return -1;
    }
    return 0;
}
