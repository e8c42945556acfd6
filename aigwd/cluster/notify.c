/* aigwd/cluster/notify.c: see notify.h. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "cluster/notify.h"
#include "core/log.h"

#define RETRY_MS 5000

struct aigw_notify {
    PGconn *conn;
    char host[256], port[16], user[128], db[128], timeout[16], sslmode[16];
    char *password;
    uint64_t next_try_ms;
    int failing;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

aigw_notify_t *aigw_notify_new(const aigw_conf_t *c)
{
    aigw_notify_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    snprintf(n->host, sizeof(n->host), "%s", c->pg_host);
    snprintf(n->port, sizeof(n->port), "%d", c->pg_port);
    snprintf(n->user, sizeof(n->user), "%s", c->pg_user);
    snprintf(n->db, sizeof(n->db), "%s", c->pg_database);
    int secs = (c->pg_timeout + 999) / 1000;
    snprintf(n->timeout, sizeof(n->timeout), "%d", secs < 2 ? 2 : secs);
    snprintf(n->sslmode, sizeof(n->sslmode), "%s", c->pg_ssl ? "require" : "disable");
    if (c->pg_password && !(n->password = strdup(c->pg_password))) {
        free(n);
        return NULL;
    }
    return n;
}

void aigw_notify_free(aigw_notify_t *n)
{
    if (!n)
        return;
    if (n->conn)
        PQfinish(n->conn);
    if (n->password) {
        memset(n->password, 0, strlen(n->password));
        free(n->password);
    }
    free(n);
}

int aigw_notify_fd(const aigw_notify_t *n)
{
    return n && n->conn ? PQsocket(n->conn) : -1;
}

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int connect_listen(aigw_notify_t *n)
{
    const char *keys[] = { "host", "port", "user", "dbname", "connect_timeout", "sslmode",
                           "application_name", "password", NULL };
    const char *vals[] = { n->host, n->port, n->user, n->db, n->timeout, n->sslmode,
                           "aigw-cluster", n->password, NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        if (!n->failing) {
            const char *m = c ? PQerrorMessage(c) : "out of memory";
            AIGW_LOG(AIGW_LOG_WARN, "cluster: cannot LISTEN for changes by other control "
                     "planes (retrying every %d s): %.*s", RETRY_MS / 1000,
                     (int)strcspn(m, "\n"), m);
        }
        n->failing = 1;
        if (c)
            PQfinish(c);
        return -1;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    PGresult *r = PQexec(c, "LISTEN aigw_config");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok || PQsetnonblocking(c, 1) != 0) {
        PQfinish(c);
        n->failing = 1;
        return -1;
    }
    if (n->failing)
        AIGW_LOG(AIGW_LOG_NOTICE, "cluster: listening for changes by other control planes again");
    n->failing = 0;
    n->conn = c;
    return 0;
}

int aigw_notify_poll(aigw_notify_t *n)
{
    if (!n)
        return 0;
    if (!n->conn) {
        if (now_ms() < n->next_try_ms)
            return 0;
        n->next_try_ms = now_ms() + RETRY_MS;
        return connect_listen(n) == 0 ? 1 : 0;
    }
    int count = 0;
    if (PQconsumeInput(n->conn) != 1) {
        AIGW_LOG(AIGW_LOG_WARN, "cluster: the LISTEN session to PostgreSQL was lost; "
                 "reconnecting");
        PQfinish(n->conn);
        n->conn = NULL;
        n->next_try_ms = 0;
        return 0;
    }
    PGnotify *nt;
    while ((nt = PQnotifies(n->conn)) != NULL) {
        count++;
        PQfreemem(nt);
    }
    return count;
}
