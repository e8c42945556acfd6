/* tests/unit/test_conf.c: aigwd's configuration loader (aigwd/core/conf.c). Every test
 * passes its own environment array and, but for one, its own file, so neither the real
 * environment nor /etc/aigw/aigw.conf changes the results. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"

#define MAX_WARNS 16

typedef struct warns {
    int n;
    char msg[MAX_WARNS][512];
} warns_t;

static void on_warn(void *ud, const char *msg)
{
    warns_t *w = ud;
    if (w->n < MAX_WARNS)
        snprintf(w->msg[w->n], sizeof w->msg[0], "%s", msg);
    w->n++;
}

static char *const no_env[] = { NULL };

/* Writes text to a new file under /tmp; path must hold 64 bytes. */
static void write_tmp(char *path, const char *text)
{
    size_t n = strlen(text), off = 0;
    int fd;

    snprintf(path, 64, "/tmp/aigw-test-conf-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(fd);
}

/* Loads text (as a file) with env; the file is removed again. */
static int load_text(aigw_conf_t *c, const char *text, char *const *env, const char *prefix,
                     warns_t *w, char *err, size_t errlen, char *path_out)
{
    char path[64];
    int rc;

    write_tmp(path, text);
    rc = aigw_conf_load(c, path, prefix, env, w ? on_warn : NULL, w, err, errlen);
    unlink(path);
    if (path_out)
        snprintf(path_out, 64, "%s", path);
    return rc;
}

/* Loads and expects success. */
static void load_ok(aigw_conf_t *c, const char *text, char *const *env, const char *prefix)
{
    char err[512] = "";
    if (load_text(c, text, env, prefix, NULL, err, sizeof err, NULL) != 0)
        fail_msg("load failed: %s", err);
}

/* Loads and expects failure with an error containing want; c must be left empty. */
static void load_fails(const char *text, char *const *env, const char *want)
{
    aigw_conf_t c;
    char err[512] = "";

    if (load_text(&c, text, env, NULL, NULL, err, sizeof err, NULL) == 0) {
        aigw_conf_free(&c);
        fail_msg("loading '%s' succeeded, expected an error with '%s'", text, want);
    }
    if (!strstr(err, want))
        fail_msg("loading '%s': error '%s' does not contain '%s'", text, err, want);
    assert_null(c.prefix);
    assert_null(c.effective);
    assert_null(c.proxy_listen.v);
}

static json_t *eff(const aigw_conf_t *c, const char *key)
{
    json_t *v = json_object_get(c->effective, key);
    if (!v)
        fail_msg("effective has no '%s'", key);
    return v;
}

static void defaults(void **state)
{
    aigw_conf_t c;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    (void)state;
    load_ok(&c, "# nothing but comments\n\n   \t\n# prefix = /elsewhere\n", no_env, NULL);
    assert_string_equal(c.prefix, "/usr/local/aigw");
    assert_int_equal(c.role, AIGW_ROLE_TRADITIONAL);
    assert_int_equal(c.database, AIGW_DB_SQLITE);
    assert_string_equal(c.sqlite_path, "/usr/local/aigw/aigw.db");
    assert_string_equal(c.pg_host, "127.0.0.1");
    assert_int_equal(c.pg_port, 5432);
    assert_string_equal(c.pg_user, "kong");
    assert_null(c.pg_password);
    assert_string_equal(c.pg_database, "kong");
    assert_int_equal(c.pg_ssl, 0);
    assert_int_equal(c.pg_timeout, 5000);

    assert_int_equal(c.proxy_listen.n, 2);
    assert_string_equal(c.proxy_listen.v[0].addr, "0.0.0.0");
    assert_int_equal(c.proxy_listen.v[0].port, 8000);
    assert_int_equal(c.proxy_listen.v[0].backlog, 16384);
    assert_true(c.proxy_listen.v[0].reuseport);
    assert_int_equal(c.proxy_listen.v[1].port, 8443);
    assert_true(c.proxy_listen.v[1].ssl);
    assert_true(c.proxy_listen.v[1].http2);
    assert_int_equal(c.admin_listen.n, 2);
    assert_string_equal(c.admin_listen.v[0].addr, "127.0.0.1");
    assert_int_equal(c.admin_listen.v[0].port, 8001);
    assert_int_equal(c.admin_listen.v[1].port, 8444);
    assert_true(c.admin_listen.v[1].ssl);
    assert_int_equal(c.status_listen.n, 0);
    assert_null(c.status_listen.v);

    assert_null(c.ssl_cert);
    assert_null(c.ssl_cert_key);
    assert_null(c.admin_ssl_cert);
    assert_null(c.admin_ssl_cert_key);
    assert_int_equal(c.ssl_protocols, AIGW_TLS_1_2 | AIGW_TLS_1_3);
    assert_string_equal(c.proxy_access_log, "/usr/local/aigw/logs/access.log");
    assert_string_equal(c.proxy_error_log, "/usr/local/aigw/logs/error.log");
    assert_string_equal(c.admin_access_log, "/usr/local/aigw/logs/admin_access.log");
    assert_string_equal(c.admin_error_log, "/usr/local/aigw/logs/error.log");
    assert_int_equal(c.log_level, AIGW_LOG_NOTICE);
    assert_int_equal(c.worker_processes, ncpu < 1 ? 1 : ncpu);
    assert_int_equal(c.headers, AIGW_HDR_SERVER | AIGW_HDR_VIA | AIGW_HDR_PROXY_LATENCY |
                                    AIGW_HDR_RESPONSE_LATENCY | AIGW_HDR_ADMIN_LATENCY |
                                    AIGW_HDR_UPSTREAM_LATENCY | AIGW_HDR_REQUEST_ID);
    assert_null(c.trusted_ips);
    assert_int_equal(c.n_trusted_ips, 0);
    assert_string_equal(c.real_ip_header, "X-Real-IP");
    assert_int_equal(c.client_max_body_size, 0);
    assert_int_equal(c.client_body_buffer_size, 8192);
    assert_null(c.declarative_config);
    assert_non_null(c.conf_path);
    assert_non_null(c.effective);
    aigw_conf_free(&c);
    assert_null(c.prefix);
    aigw_conf_free(&c); /* twice is fine */
}

static void effective_json(void **state)
{
    static const char *const keys[] = {
        "prefix", "role", "database", "sqlite_path", "pg_host", "pg_port", "pg_user",
        "pg_password", "pg_database", "pg_ssl", "pg_timeout", "proxy_listen", "admin_listen",
        "status_listen", "ssl_cert", "ssl_cert_key", "admin_ssl_cert", "admin_ssl_cert_key",
        "ssl_protocols", "proxy_access_log", "proxy_error_log", "admin_access_log",
        "admin_error_log", "log_level", "worker_processes", "headers", "trusted_ips",
        "real_ip_header", "client_max_body_size", "client_body_buffer_size",
        "upstream_keepalive_pool_size", "upstream_keepalive_max_requests",
        "upstream_keepalive_idle_timeout", "declarative_config", "log_redaction",
        "log_redact_headers", "log_redact_query_args", "log_redact_json_fields",
        "log_redact_patterns", "log_request_bodies", "cluster_listen",
        "cluster_control_plane", "cluster_mtls", "cluster_cert", "cluster_cert_key",
        "cluster_ca_cert", "cluster_server_name", "cluster_data_plane_purge_delay",
        "cluster_max_payload", "cluster_ping_interval", "conf_path",
    };
    aigw_conf_t c;
    json_t *a;
    char path[64], err[512];

    (void)state;
    assert_int_equal(load_text(&c, "", no_env, NULL, NULL, err, sizeof err, path), 0);
    assert_int_equal(json_object_size(c.effective), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        eff(&c, keys[i]);
    assert_string_equal(json_string_value(eff(&c, "prefix")), "/usr/local/aigw");
    assert_string_equal(json_string_value(eff(&c, "conf_path")), path);
    assert_string_equal(json_string_value(eff(&c, "role")), "traditional");
    assert_string_equal(json_string_value(eff(&c, "database")), "sqlite");
    assert_int_equal(json_integer_value(eff(&c, "pg_port")), 5432);
    assert_int_equal(json_integer_value(eff(&c, "pg_timeout")), 5000);
    assert_true(json_is_integer(eff(&c, "worker_processes")));
    assert_true(json_is_false(eff(&c, "pg_ssl")));
    assert_true(json_is_null(eff(&c, "pg_password")));
    assert_true(json_is_null(eff(&c, "ssl_cert")));
    assert_true(json_is_null(eff(&c, "trusted_ips")));
    assert_true(json_is_null(eff(&c, "declarative_config")));
    assert_string_equal(json_string_value(eff(&c, "ssl_protocols")), "TLSv1.2 TLSv1.3");
    assert_string_equal(json_string_value(eff(&c, "log_level")), "notice");
    assert_string_equal(json_string_value(eff(&c, "client_body_buffer_size")), "8k");
    assert_string_equal(json_string_value(eff(&c, "proxy_access_log")),
                        "/usr/local/aigw/logs/access.log");

    a = eff(&c, "proxy_listen");
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)),
                        "0.0.0.0:8000 reuseport backlog=16384");
    assert_string_equal(json_string_value(json_array_get(a, 1)),
                        "0.0.0.0:8443 http2 ssl reuseport backlog=16384");
    a = eff(&c, "admin_listen");
    assert_string_equal(json_string_value(json_array_get(a, 1)),
                        "127.0.0.1:8444 http2 ssl reuseport backlog=16384");
    a = eff(&c, "status_listen");
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "off");
    a = eff(&c, "headers");
    assert_int_equal(json_array_size(a), 3);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "server_tokens");
    assert_string_equal(json_string_value(json_array_get(a, 2)), "x-kong-request-id");
    aigw_conf_free(&c);

    /* Set values: the password is hidden, listen entries normalised, lists as written. */
    load_ok(&c,
            "pg_password = hunter2\n"
            "pg_ssl = on\n"
            "status_listen = [::1]:8007,  127.0.0.1:8100 ssl  backlog=511\n"
            "trusted_ips = 10.0.0.0/8,  ::1\n"
            "proxy_access_log = off\n",
            no_env, NULL);
    assert_string_equal(c.pg_password, "hunter2");
    assert_string_equal(json_string_value(eff(&c, "pg_password")), "******");
    assert_true(json_is_true(eff(&c, "pg_ssl")));
    a = eff(&c, "status_listen");
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "[::1]:8007");
    assert_string_equal(json_string_value(json_array_get(a, 1)), "127.0.0.1:8100 ssl");
    a = eff(&c, "trusted_ips");
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "10.0.0.0/8");
    assert_string_equal(json_string_value(json_array_get(a, 1)), "::1");
    assert_string_equal(json_string_value(eff(&c, "proxy_access_log")), "off");
    {
        char *dump = json_dumps(c.effective, 0);
        assert_non_null(dump);
        assert_null(strstr(dump, "hunter2"));
        free(dump);
    }
    aigw_conf_free(&c);
}

static void no_path_and_bad_paths(void **state)
{
    aigw_conf_t c;
    char err[512] = "";
    struct stat st;

    (void)state;
    /* Without -c, /etc/aigw/aigw.conf is read only when it exists. */
    if (stat("/etc/aigw/aigw.conf", &st) != 0) {
        assert_int_equal(aigw_conf_load(&c, NULL, NULL, no_env, NULL, NULL, err, sizeof err), 0);
        assert_null(c.conf_path);
        assert_true(json_is_null(eff(&c, "conf_path")));
        assert_string_equal(c.prefix, "/usr/local/aigw");
        aigw_conf_free(&c);
    }

    /* A file given with -c must exist. */
    assert_int_equal(aigw_conf_load(&c, "/tmp/aigw-test-conf-does-not-exist", NULL, no_env, NULL,
                                    NULL, err, sizeof err), -1);
    assert_string_equal(err, "cannot read configuration file "
                             "'/tmp/aigw-test-conf-does-not-exist': No such file or directory");
    assert_null(c.prefix);
    assert_int_equal(aigw_conf_load(&c, "/tmp", NULL, no_env, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "Is a directory"));
    assert_null(c.prefix);
}

static void precedence(void **state)
{
    static const char file[] = "log_level = info\npg_host = file.example\n";
    char *both[] = { "KONG_LOG_LEVEL=warn", "AIGW_LOG_LEVEL=error", "KONG_PG_HOST=kong.example",
                     NULL };
    char *kong[] = { "KONG_LOG_LEVEL=warn", NULL };
    char *aigw_first[] = { "AIGW_LOG_LEVEL=crit", "KONG_LOG_LEVEL=debug", NULL };
    aigw_conf_t c;

    (void)state;
    load_ok(&c, file, both, NULL);
    assert_int_equal(c.log_level, AIGW_LOG_ERR);
    assert_string_equal(c.pg_host, "kong.example");
    aigw_conf_free(&c);

    load_ok(&c, file, kong, NULL);
    assert_int_equal(c.log_level, AIGW_LOG_WARN);
    assert_string_equal(c.pg_host, "file.example");
    aigw_conf_free(&c);

    load_ok(&c, file, aigw_first, NULL); /* order in the environment does not matter */
    assert_int_equal(c.log_level, AIGW_LOG_CRIT);
    aigw_conf_free(&c);

    load_ok(&c, file, no_env, NULL);
    assert_int_equal(c.log_level, AIGW_LOG_INFO);
    aigw_conf_free(&c);

    load_ok(&c, "", no_env, NULL);
    assert_int_equal(c.log_level, AIGW_LOG_NOTICE);
    aigw_conf_free(&c);

    /* The last line wins within a file; env values are trimmed and not comment-stripped. */
    {
        char *env[] = { "KONG_PG_PASSWORD=  pa#ss  ", NULL };
        load_ok(&c, "log_level = info\nlog_level = debug\n", env, NULL);
        assert_int_equal(c.log_level, AIGW_LOG_DEBUG);
        assert_string_equal(c.pg_password, "pa#ss");
        aigw_conf_free(&c);
    }
}

static void comments_and_escapes(void **state)
{
    aigw_conf_t c;

    (void)state;
    load_ok(&c,
            "# a comment line\n"
            "   # an indented comment\n"
            "\n"
            "pg_user   =   bob   # trailing comment\n"
            "pg_password = abc\\#def # comment after an escaped hash\n"
            "pg_database=kong_db#no space before the comment\r\n"
            "\t pg_host\t=\tdb.local \t\n"
            "log_level = debug",   /* no newline at the end */
            no_env, NULL);
    assert_string_equal(c.pg_user, "bob");
    assert_string_equal(c.pg_password, "abc#def");
    assert_string_equal(c.pg_database, "kong_db");
    assert_string_equal(c.pg_host, "db.local");
    assert_int_equal(c.log_level, AIGW_LOG_DEBUG);
    aigw_conf_free(&c);
}

static void prefix_override(void **state)
{
    char *env[] = { "AIGW_PREFIX=/from/aigw/env", "KONG_PREFIX=/from/kong/env", NULL };
    aigw_conf_t c;
    char *cwd, want[4096];

    (void)state;
    load_ok(&c, "prefix = /from/file\n", env, NULL);
    assert_string_equal(c.prefix, "/from/aigw/env");
    assert_string_equal(c.sqlite_path, "/from/aigw/env/aigw.db");
    aigw_conf_free(&c);

    load_ok(&c, "prefix = /from/file\n", env, "/from/cli/");
    assert_string_equal(c.prefix, "/from/cli");
    assert_string_equal(c.sqlite_path, "/from/cli/aigw.db");
    assert_string_equal(c.proxy_error_log, "/from/cli/logs/error.log");
    aigw_conf_free(&c);

    /* A relative prefix is made absolute against the current directory. */
    cwd = getcwd(NULL, 0);
    assert_non_null(cwd);
    snprintf(want, sizeof want, "%s/x", strcmp(cwd, "/") == 0 ? "" : cwd);
    load_ok(&c, "", no_env, "rel/.././x//./");
    assert_string_equal(c.prefix, want);
    aigw_conf_free(&c);
    free(cwd);

    load_ok(&c, "prefix = /srv/aigw///\n", no_env, NULL);
    assert_string_equal(c.prefix, "/srv/aigw");
    aigw_conf_free(&c);
}

static void relative_paths(void **state)
{
    aigw_conf_t c;

    (void)state;
    load_ok(&c,
            "prefix = /srv/aigw\n"
            "sqlite_path = data/../db/x.db\n"
            "ssl_cert = certs/proxy.crt\n"
            "ssl_cert_key = /etc/keys/proxy.key\n"
            "admin_ssl_cert = ../shared/admin.crt\n"
            "admin_ssl_cert_key = admin.key\n"
            "declarative_config = kong.yml\n"
            "proxy_access_log = logs/a.log basic\n"
            "proxy_error_log = /dev/stderr\n"
            "admin_access_log = off\n"
            "admin_error_log = /dev/stdout\n",
            no_env, NULL);
    assert_string_equal(c.sqlite_path, "/srv/aigw/db/x.db");
    assert_string_equal(c.ssl_cert, "/srv/aigw/certs/proxy.crt");
    assert_string_equal(c.ssl_cert_key, "/etc/keys/proxy.key");
    assert_string_equal(c.admin_ssl_cert, "/srv/shared/admin.crt");
    assert_string_equal(c.admin_ssl_cert_key, "/srv/aigw/admin.key");
    assert_string_equal(c.declarative_config, "/srv/aigw/kong.yml");
    assert_string_equal(c.proxy_access_log, "/srv/aigw/logs/a.log");
    assert_string_equal(c.proxy_error_log, "/dev/stderr");
    assert_null(c.admin_access_log);
    assert_string_equal(c.admin_error_log, "/dev/stdout");
    assert_string_equal(json_string_value(eff(&c, "ssl_cert_key")), "/etc/keys/proxy.key");
    aigw_conf_free(&c);
}

static void unknown_keys_warn(void **state)
{
    char *env[] = {
        "PATH=/usr/bin", "HOME=/root",
        "KONG_PG_SCHEMA=public", "KONG_PLUGINS=bundled", "AIGW_BOGUS=1",
        "AIGW_ADMIN_URL=http://127.0.0.1:8001", "AIGW_SOURCE_DIR=/src",
        "AIGWD_BIN=/b/aigwd", "AIGWCTL_BIN=/b/aigwctl",
        "KONG_log_level=debug", "AIGW_LOG_LEVEL=info", "KONG_NGINX_WORKER_PROCESSES=2",
        NULL,
    };
    aigw_conf_t c;
    warns_t w = { 0 };
    char path[64], err[512], want[512];

    (void)state;
    assert_int_equal(load_text(&c, "pg_user = a\n\nfoo = 1\nLOG_LEVEL = debug\n", env, NULL, &w,
                               err, sizeof err, path), 0);
    assert_int_equal(c.log_level, AIGW_LOG_INFO);
    assert_int_equal(c.worker_processes, 2);
    assert_int_equal(w.n, 6);
    snprintf(want, sizeof want, "unknown configuration key 'foo' (%s:3), ignored", path);
    assert_string_equal(w.msg[0], want);
    snprintf(want, sizeof want, "unknown configuration key 'LOG_LEVEL' (%s:4), ignored", path);
    assert_string_equal(w.msg[1], want);
    assert_string_equal(w.msg[2], "unknown configuration key 'pg_schema' (env KONG_PG_SCHEMA), "
                                  "ignored");
    assert_string_equal(w.msg[3], "unknown configuration key 'plugins' (env KONG_PLUGINS), "
                                  "ignored");
    assert_string_equal(w.msg[4], "unknown configuration key 'bogus' (env AIGW_BOGUS), ignored");
    assert_string_equal(w.msg[5], "unknown configuration key 'log_level' (env KONG_log_level), "
                                  "ignored");
    aigw_conf_free(&c);

    /* Without a callback the warnings are dropped, not fatal. */
    load_ok(&c, "foo = 1\n", env, NULL);
    aigw_conf_free(&c);
}

static void invalid_values(void **state)
{
    char *env[] = { "KONG_ADMIN_LISTEN=0.0.0.0:8001 fast", NULL };
    char *aigw_env[] = { "AIGW_PG_PORT=99999", NULL };
    aigw_conf_t c;
    char path[64], err[512], want[512];

    (void)state;
    assert_int_equal(load_text(&c, "# c\n\npg_user = x\nlog_level = loud\n", no_env, NULL, NULL,
                               err, sizeof err, path), -1);
    snprintf(want, sizeof want, "invalid value 'loud' for log_level (from %s:4): expected one "
             "of: debug, info, notice, warn, error, crit, alert, emerg", path);
    assert_string_equal(err, want);
    assert_null(c.pg_user);
    assert_null(c.effective);

    assert_int_equal(load_text(&c, "", env, NULL, NULL, err, sizeof err, NULL), -1);
    assert_string_equal(err, "invalid value '0.0.0.0:8001 fast' for admin_listen (from env "
                             "KONG_ADMIN_LISTEN): unknown flag 'fast' in '0.0.0.0:8001 fast': "
                             "expected ssl, http2, reuseport, proxy_protocol, deferred, bind or "
                             "backlog=N");

    assert_int_equal(load_text(&c, "pg_port = 5433\n", aigw_env, NULL, NULL, err, sizeof err,
                               NULL), -1);
    assert_string_equal(err, "invalid value '99999' for pg_port (from env AIGW_PG_PORT): "
                             "expected an integer from 1 to 65535");

    assert_int_equal(load_text(&c, "", no_env, "", NULL, err, sizeof err, NULL), -1);
    assert_string_equal(err, "invalid value '' for prefix (from -p): expected a directory");

    /* Errors name the spelling that was used. */
    assert_int_equal(load_text(&c, "nginx_worker_processes = lots\n", no_env, NULL, NULL, err,
                               sizeof err, path), -1);
    snprintf(want, sizeof want, "invalid value 'lots' for nginx_worker_processes (from %s:1): "
             "expected auto or an integer from 1 to 1024", path);
    assert_string_equal(err, want);

    load_fails("pg_port = 0\n", no_env, "expected an integer from 1 to 65535");
    load_fails("pg_port = 54x\n", no_env, "invalid value '54x' for pg_port");
    load_fails("pg_timeout = 0\n", no_env, "pg_timeout");
    load_fails("pg_timeout = -5\n", no_env, "pg_timeout");
    load_fails("pg_ssl = maybe\n", no_env, "expected on, off, true or false");
    load_fails("pg_host = \n", no_env, "invalid value '' for pg_host");
    load_fails("pg_user = NONE\n", no_env, "invalid value 'NONE' for pg_user");
    load_fails("role = hybrid\n", no_env, "expected one of: traditional, control_plane, "
                                          "data_plane");
    load_fails("database = cassandra\n", no_env, "expected one of: sqlite, postgres, off");
    load_fails("log_level = DEBUG\n", no_env, "invalid value 'DEBUG' for log_level");
    load_fails("worker_processes = 0\n", no_env, "worker_processes");
    load_fails("worker_processes = 1025\n", no_env, "worker_processes");
    load_fails("client_max_body_size = 8q\n", no_env, "expected a size");
    load_fails("client_body_buffer_size = -1\n", no_env, "client_body_buffer_size");
    load_fails("real_ip_header = X Real\n", no_env, "expected a header name or proxy_protocol");
    load_fails("proxy_listen = \n", no_env, "empty listen value");
    load_fails("proxy_listen = 0.0.0.0:70000\n", no_env, "invalid port '70000'");
    load_fails("status_listen = 127.0.0.1\n", no_env, "missing port");
    load_fails("proxy_error_log = \n", no_env, "expected a path, /dev/stdout, /dev/stderr or off");
    load_fails("sqlite_path = NONE\n", no_env, "expected a path");
    load_fails("ssl_protocols = \n", no_env, "expected TLSv1.2, TLSv1.3 or both");
    load_fails("prefix = NONE\n", no_env, "expected a directory");
}

static void secret_not_echoed(void **state)
{
    /* No pg_password is invalid today; this pins that a secret never reaches err via the
     * syntax path either. */
    aigw_conf_t c;
    char path[64], err[512], want[512];

    (void)state;
    assert_int_equal(load_text(&c, "pg_password = s3cret\npg_password s3cret\n", no_env, NULL,
                               NULL, err, sizeof err, path), -1);
    snprintf(want, sizeof want, "syntax error at %s:2: expected 'key = value'", path);
    assert_string_equal(err, want);
    assert_null(strstr(err, "s3cret"));
}

static void syntax_errors(void **state)
{
    aigw_conf_t c;
    char path[64], err[512], want[512];

    (void)state;
    assert_int_equal(load_text(&c, "# 1\n\nlog_level = info\n\n# 5\npg_user = x\njust words\n",
                               no_env, NULL, NULL, err, sizeof err, path), -1);
    snprintf(want, sizeof want, "syntax error at %s:7: expected 'key = value'", path);
    assert_string_equal(err, want);
    assert_null(c.prefix);

    load_fails("= value\n", no_env, "syntax error");
    load_fails("two words = value\n", no_env, "syntax error");
}

static void aliases(void **state)
{
    char *kong_alias[] = { "KONG_NGINX_WORKER_PROCESSES=4", NULL };
    char *both_env[] = { "KONG_NGINX_WORKER_PROCESSES=4", "KONG_WORKER_PROCESSES=6", NULL };
    aigw_conf_t c;

    (void)state;
    load_ok(&c, "nginx_worker_processes = 3\n"
                "nginx_http_client_max_body_size = 10m\n"
                "nginx_http_client_body_buffer_size = 16k\n"
                "nginx_proxy_real_ip_header = proxy_protocol\n", no_env, NULL);
    assert_int_equal(c.worker_processes, 3);
    assert_int_equal(c.client_max_body_size, 10u << 20);
    assert_int_equal(c.client_body_buffer_size, 16u << 10);
    assert_string_equal(c.real_ip_header, "proxy_protocol");
    assert_string_equal(json_string_value(eff(&c, "client_max_body_size")), "10m");
    assert_null(json_object_get(c.effective, "nginx_worker_processes"));
    aigw_conf_free(&c);

    /* In one source the canonical name wins, before or after the alias. */
    load_ok(&c, "worker_processes = 2\nnginx_worker_processes = 5\n", no_env, NULL);
    assert_int_equal(c.worker_processes, 2);
    aigw_conf_free(&c);
    load_ok(&c, "nginx_worker_processes = 5\nworker_processes = 2\n", no_env, NULL);
    assert_int_equal(c.worker_processes, 2);
    aigw_conf_free(&c);
    load_ok(&c, "", both_env, NULL);
    assert_int_equal(c.worker_processes, 6);
    aigw_conf_free(&c);

    /* A higher source beats a lower one whatever the spelling. */
    load_ok(&c, "worker_processes = 2\n", kong_alias, NULL);
    assert_int_equal(c.worker_processes, 4);
    aigw_conf_free(&c);
}

static void headers(void **state)
{
    aigw_conf_t c;

    (void)state;
    load_ok(&c, "headers = off\n", no_env, NULL);
    assert_int_equal(c.headers, 0);
    aigw_conf_free(&c);

    load_ok(&c, "headers = Server, x-kong-upstream-status,VIA\n", no_env, NULL);
    assert_int_equal(c.headers, AIGW_HDR_SERVER | AIGW_HDR_UPSTREAM_STATUS | AIGW_HDR_VIA);
    aigw_conf_free(&c);

    load_ok(&c, "headers = latency_tokens\n", no_env, NULL);
    assert_int_equal(c.headers, AIGW_HDR_PROXY_LATENCY | AIGW_HDR_RESPONSE_LATENCY |
                                    AIGW_HDR_ADMIN_LATENCY | AIGW_HDR_UPSTREAM_LATENCY);
    aigw_conf_free(&c);

    load_ok(&c, "headers = server_tokens, X-Kong-Request-Id, X-Kong-Proxy-Latency\n", no_env,
            NULL);
    assert_int_equal(c.headers, AIGW_HDR_SERVER | AIGW_HDR_VIA | AIGW_HDR_REQUEST_ID |
                                    AIGW_HDR_PROXY_LATENCY);
    aigw_conf_free(&c);

    load_fails("headers = off, server\n", no_env, "'off' cannot be combined");
    load_fails("headers = Server, X-Powered-By\n", no_env, "unknown token 'X-Powered-By'");
    load_fails("headers = \n", no_env, "unknown token ''");
}

static void trusted_ips(void **state)
{
    aigw_conf_t c;
    uint8_t a4[4], a6[16];

    (void)state;
    load_ok(&c, "trusted_ips = 10.1.2.3/8, 192.168.1.1, 2001:db8::/32, 172.16.0.0/12\n", no_env,
            NULL);
    assert_int_equal(c.n_trusted_ips, 4);
    assert_int_equal(c.trusted_ips[0].family, AF_INET);
    assert_int_equal(c.trusted_ips[0].bits, 8);
    assert_int_equal(c.trusted_ips[0].addr[0], 10);
    assert_int_equal(c.trusted_ips[0].addr[1], 0); /* masked */
    assert_int_equal(c.trusted_ips[1].bits, 32);
    assert_int_equal(c.trusted_ips[2].family, AF_INET6);

    inet_pton(AF_INET, "10.200.0.1", a4);
    assert_true(aigw_conf_ip_trusted(&c, AF_INET, a4));
    inet_pton(AF_INET, "11.0.0.1", a4);
    assert_false(aigw_conf_ip_trusted(&c, AF_INET, a4));
    inet_pton(AF_INET, "192.168.1.1", a4);
    assert_true(aigw_conf_ip_trusted(&c, AF_INET, a4));
    inet_pton(AF_INET, "192.168.1.2", a4);
    assert_false(aigw_conf_ip_trusted(&c, AF_INET, a4));
    inet_pton(AF_INET, "172.31.255.255", a4);
    assert_true(aigw_conf_ip_trusted(&c, AF_INET, a4));
    inet_pton(AF_INET, "172.32.0.0", a4);
    assert_false(aigw_conf_ip_trusted(&c, AF_INET, a4));
    inet_pton(AF_INET6, "2001:db8:ffff::1", a6);
    assert_true(aigw_conf_ip_trusted(&c, AF_INET6, a6));
    inet_pton(AF_INET6, "2001:db9::1", a6);
    assert_false(aigw_conf_ip_trusted(&c, AF_INET6, a6));
    inet_pton(AF_INET6, "::ffff:10.9.9.9", a6); /* IPv4 client on a dual-stack socket */
    assert_true(aigw_conf_ip_trusted(&c, AF_INET6, a6));
    aigw_conf_free(&c);

    load_ok(&c, "trusted_ips = 0.0.0.0/0,::/0\n", no_env, NULL);
    inet_pton(AF_INET, "203.0.113.9", a4);
    assert_true(aigw_conf_ip_trusted(&c, AF_INET, a4));
    inet_pton(AF_INET6, "fe80::1", a6);
    assert_true(aigw_conf_ip_trusted(&c, AF_INET6, a6));
    aigw_conf_free(&c);

    load_ok(&c, "trusted_ips = ::1\n", no_env, NULL);
    inet_pton(AF_INET6, "::1", a6);
    assert_true(aigw_conf_ip_trusted(&c, AF_INET6, a6));
    inet_pton(AF_INET, "127.0.0.1", a4);
    assert_false(aigw_conf_ip_trusted(&c, AF_INET, a4));
    aigw_conf_free(&c);

    load_ok(&c, "trusted_ips = NONE\n", no_env, NULL);
    inet_pton(AF_INET, "127.0.0.1", a4);
    assert_false(aigw_conf_ip_trusted(&c, AF_INET, a4));
    aigw_conf_free(&c);

    load_fails("trusted_ips = 10.0.0.0/33\n", no_env, "invalid address '10.0.0.0/33'");
    load_fails("trusted_ips = ::/129\n", no_env, "invalid address '::/129'");
    load_fails("trusted_ips = 10.0.0.0/8,,\n", no_env, "invalid address ''");
    load_fails("trusted_ips = example.com\n", no_env, "invalid address 'example.com'");
}

static void certs_and_protocols(void **state)
{
    char *env[] = { "KONG_SSL_CERT=/c/proxy.crt", NULL };
    aigw_conf_t c;
    char path[64], err[512], want[512];

    (void)state;
    assert_int_equal(load_text(&c, "", env, NULL, NULL, err, sizeof err, NULL), -1);
    assert_string_equal(err, "ssl_cert is set (from env KONG_SSL_CERT) but ssl_cert_key is not "
                             "(from default): ssl_cert and ssl_cert_key must be set together");

    assert_int_equal(load_text(&c, "admin_ssl_cert_key = a.key\n", no_env, NULL, NULL, err,
                               sizeof err, path), -1);
    snprintf(want, sizeof want, "admin_ssl_cert_key is set (from %s:1) but admin_ssl_cert is "
             "not (from default): admin_ssl_cert and admin_ssl_cert_key must be set together",
             path);
    assert_string_equal(err, want);

    load_ok(&c, "ssl_cert = a.crt\nssl_cert_key = a.key\n", no_env, "/p");
    assert_string_equal(c.ssl_cert, "/p/a.crt");
    assert_string_equal(c.ssl_cert_key, "/p/a.key");
    aigw_conf_free(&c);

    load_ok(&c, "ssl_protocols = TLSv1.3\n", no_env, NULL);
    assert_int_equal(c.ssl_protocols, AIGW_TLS_1_3);
    assert_string_equal(json_string_value(eff(&c, "ssl_protocols")), "TLSv1.3");
    aigw_conf_free(&c);

    load_fails("ssl_protocols = TLSv1.1 TLSv1.2\n", no_env,
               "TLSv1.1 is not supported: aigw accepts only TLSv1.2 and TLSv1.3");
    load_fails("ssl_protocols = TLSv1 TLSv1.2 TLSv1.3\n", no_env,
               "aigw accepts only TLSv1.2 and TLSv1.3");
    load_fails("ssl_protocols = SSLv3\n", no_env, "unknown protocol 'SSLv3'");
}

static void values_of_each_kind(void **state)
{
    aigw_conf_t c;

    (void)state;
    load_ok(&c,
            "role = control_plane\n"
            "cluster_cert = /c/cluster.crt\n"
            "cluster_cert_key = /c/cluster.key\n"
            "database = postgres\n"
            "pg_host = db\n"
            "pg_port = 6432\n"
            "pg_user = u\n"
            "pg_password =\n"
            "pg_database = d\n"
            "pg_ssl = true\n"
            "pg_timeout = 60000\n"
            "status_listen = 127.0.0.1:8007\n"
            "log_level = emerg\n"
            "worker_processes = 1024\n"
            "real_ip_header = X-Forwarded-For\n"
            "client_max_body_size = 1G\n"
            "client_body_buffer_size = 1m\n",
            no_env, NULL);
    assert_int_equal(c.role, AIGW_ROLE_CONTROL_PLANE);
    assert_int_equal(c.database, AIGW_DB_POSTGRES);
    assert_string_equal(c.pg_host, "db");
    assert_int_equal(c.pg_port, 6432);
    assert_string_equal(c.pg_user, "u");
    assert_string_equal(c.pg_password, ""); /* set, but empty */
    assert_string_equal(json_string_value(eff(&c, "pg_password")), "******");
    assert_string_equal(c.pg_database, "d");
    assert_int_equal(c.pg_ssl, 1);
    assert_int_equal(c.pg_timeout, 60000);
    assert_int_equal(c.status_listen.n, 1);
    assert_int_equal(c.status_listen.v[0].port, 8007);
    assert_int_equal(c.log_level, AIGW_LOG_EMERG);
    assert_int_equal(c.worker_processes, 1024);
    assert_string_equal(c.real_ip_header, "X-Forwarded-For");
    assert_int_equal(c.client_max_body_size, 1ull << 30);
    assert_int_equal(c.client_body_buffer_size, 1u << 20);
    assert_string_equal(json_string_value(eff(&c, "role")), "control_plane");
    assert_string_equal(json_string_value(eff(&c, "log_level")), "emerg");
    assert_int_equal(json_integer_value(eff(&c, "worker_processes")), 1024);
    aigw_conf_free(&c);

    load_ok(&c, "pg_ssl = off\nrole = data_plane\ndatabase = off\nlog_level = error\n"
                "cluster_cert = c.crt\ncluster_cert_key = c.key\ncluster_mtls = pki\n"
                "cluster_ca_cert = ca.crt\ncluster_control_plane = cp.example:9005\n"
                "cluster_ping_interval = 2\n", no_env, NULL);
    assert_int_equal(c.cluster_mtls, AIGW_MTLS_PKI);
    assert_string_equal(c.cluster_control_plane, "cp.example:9005");
    assert_int_equal(c.cluster_ping_interval, 2);
    assert_int_equal(c.cluster_data_plane_purge_delay, 1209600);
    assert_int_equal(c.cluster_max_payload, 16777216);
    assert_true(c.cluster_cert[0] == '/');
    assert_int_equal(c.pg_ssl, 0);
    assert_int_equal(c.role, AIGW_ROLE_DATA_PLANE);
    assert_int_equal(c.database, AIGW_DB_OFF);
    assert_int_equal(c.log_level, AIGW_LOG_ERR);
    aigw_conf_free(&c);

    load_fails("role = data_plane\n", no_env, "set database = off");
    load_fails("role = control_plane\ndatabase = off\n", no_env, "needs a database");
    load_fails("role = control_plane\n", no_env, "cluster certificate and key must be provided");
    load_fails("role = control_plane\ncluster_cert = a\ncluster_cert_key = b\n"
               "cluster_mtls = pki\n", no_env, "cluster_ca_cert must be specified");
    load_fails("role = control_plane\ncluster_cert = a\ncluster_cert_key = b\n"
               "cluster_listen = off\n", no_env, "cluster_listen must be specified");
    load_fails("cluster_cert = a\n", no_env, "must be set together");
    load_fails("cluster_data_plane_purge_delay = 59\n", no_env, "cluster_data_plane_purge_delay");
    load_fails("cluster_max_payload = 4194303\n", no_env, "4194304 (4MB) or greater");
}

/* aigw.conf.example sets every key, to its default. Found next to tests/ via __FILE__. */
static void example_file_matches_defaults(void **state)
{
    const char *me = __FILE__, *tail = strstr(me, "tests/unit/test_conf.c");
    char path[4096], err[512] = "";
    aigw_conf_t ex, def;
    warns_t w = { 0 };
    const char *key;
    json_t *v;
    FILE *f;
    char *text;
    long n;

    (void)state;
    assert_non_null(tail);
    snprintf(path, sizeof path, "%.*saigw.conf.example", (int)(tail - me), me);
    if (aigw_conf_load(&ex, path, NULL, no_env, on_warn, &w, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(w.n, 0);
    load_ok(&def, "", no_env, NULL);
    json_object_del(ex.effective, "conf_path");
    json_object_del(def.effective, "conf_path");
    assert_true(json_equal(ex.effective, def.effective));

    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    text = calloc(1, (size_t)n + 2);
    assert_non_null(text);
    text[0] = '\n';
    assert_int_equal(fread(text + 1, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    json_object_foreach(def.effective, key, v) {
        char needle[128];
        snprintf(needle, sizeof needle, "\n%s = ", key);
        if (!strstr(text, needle))
            fail_msg("aigw.conf.example does not set %s", key);
    }
    free(text);
    aigw_conf_free(&ex);
    aigw_conf_free(&def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(effective_json),
        cmocka_unit_test(no_path_and_bad_paths),
        cmocka_unit_test(precedence),
        cmocka_unit_test(comments_and_escapes),
        cmocka_unit_test(prefix_override),
        cmocka_unit_test(relative_paths),
        cmocka_unit_test(unknown_keys_warn),
        cmocka_unit_test(invalid_values),
        cmocka_unit_test(secret_not_echoed),
        cmocka_unit_test(syntax_errors),
        cmocka_unit_test(aliases),
        cmocka_unit_test(headers),
        cmocka_unit_test(trusted_ips),
        cmocka_unit_test(certs_and_protocols),
        cmocka_unit_test(values_of_each_kind),
        cmocka_unit_test(example_file_matches_defaults),
    };
    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
