/* aigwd/core/conf.h: aigwd's configuration, kong.conf style.
 *
 * Sources, highest first: AIGW_<KEY> environment variables, KONG_<KEY> environment variables,
 * the file given with -c (else /etc/aigw/aigw.conf when it exists), built-in defaults.
 * A -p PREFIX on the command line overrides every source for `prefix`.
 *
 * Loaded on the main thread before any other thread starts; immutable afterwards, so any
 * thread may read it. A reload builds a new aigw_conf_t and swaps it on the main thread. */
#ifndef AIGW_CORE_CONF_H
#define AIGW_CORE_CONF_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>

typedef enum {
    AIGW_ROLE_TRADITIONAL = 0,
    AIGW_ROLE_CONTROL_PLANE,
    AIGW_ROLE_DATA_PLANE,
} aigw_role_t;

typedef enum {
    AIGW_DB_SQLITE = 0,
    AIGW_DB_POSTGRES,
    AIGW_DB_OFF,
} aigw_db_t;

/* cluster_mtls */
typedef enum {
    AIGW_MTLS_SHARED = 0,   /* CP and DP present the same certificate */
    AIGW_MTLS_PKI,          /* each node's certificate is signed by cluster_ca_cert */
} aigw_mtls_t;

/* nginx severities, in nginx's order (debug is the most verbose). */
typedef enum {
    AIGW_LOG_EMERG = 0,
    AIGW_LOG_ALERT,
    AIGW_LOG_CRIT,
    AIGW_LOG_ERR,
    AIGW_LOG_WARN,
    AIGW_LOG_NOTICE,
    AIGW_LOG_INFO,
    AIGW_LOG_DEBUG,
} aigw_log_level_t;

/* `headers` tokens, as bits. server_tokens = SERVER|VIA, latency_tokens = the four latencies. */
enum {
    AIGW_HDR_SERVER = 1u << 0,
    AIGW_HDR_VIA = 1u << 1,
    AIGW_HDR_PROXY_LATENCY = 1u << 2,
    AIGW_HDR_RESPONSE_LATENCY = 1u << 3,
    AIGW_HDR_ADMIN_LATENCY = 1u << 4,
    AIGW_HDR_UPSTREAM_LATENCY = 1u << 5,
    AIGW_HDR_UPSTREAM_STATUS = 1u << 6,
    AIGW_HDR_REQUEST_ID = 1u << 7,
};

/* ssl_protocols, as bits. */
enum {
    AIGW_TLS_1_2 = 1u << 0,
    AIGW_TLS_1_3 = 1u << 1,
};

/* One entry of a listen list: `addr:port [ssl] [http2] [reuseport] [backlog=N] [proxy_protocol]
 * [deferred] [bind]`. addr is the literal address without brackets ("0.0.0.0", "::1",
 * "127.0.0.1", or "*" meaning 0.0.0.0). */
typedef struct aigw_listen {
    char addr[64];
    int port;              /* 1..65535 */
    int backlog;           /* 511 unless backlog=N was given */
    unsigned ssl : 1;
    unsigned http2 : 1;
    unsigned reuseport : 1;
    unsigned proxy_protocol : 1;
    unsigned deferred : 1;
    unsigned bind : 1;
} aigw_listen_t;

typedef struct aigw_listen_list {
    aigw_listen_t *v;      /* owned; NULL when n == 0 ("off") */
    size_t n;
} aigw_listen_list_t;

/* One trusted_ips entry: an IPv4 or IPv6 network. */
typedef struct aigw_cidr {
    int family;            /* AF_INET or AF_INET6 */
    uint8_t addr[16];      /* network bytes, masked */
    int bits;              /* prefix length */
} aigw_cidr_t;

typedef struct aigw_conf {
    char *prefix;               /* absolute, no trailing slash */
    char *conf_path;            /* the file read, or NULL */
    aigw_role_t role;
    aigw_db_t database;
    char *sqlite_path;          /* absolute; default <prefix>/aigw.db */

    char *pg_host;
    int pg_port;
    char *pg_user;
    char *pg_password;          /* NULL when unset; secret */
    char *pg_database;
    int pg_ssl;
    int pg_timeout;             /* ms */

    aigw_listen_list_t proxy_listen;
    aigw_listen_list_t admin_listen;
    aigw_listen_list_t status_listen;

    char *ssl_cert, *ssl_cert_key;             /* absolute or NULL */
    char *admin_ssl_cert, *admin_ssl_cert_key; /* absolute or NULL */
    unsigned ssl_protocols;                    /* AIGW_TLS_* bits, never 0 */

    /* Absolute paths, "/dev/stdout", "/dev/stderr", or NULL for `off`. */
    char *proxy_access_log, *proxy_error_log;
    char *admin_access_log, *admin_error_log;

    aigw_log_level_t log_level;
    int worker_processes;       /* resolved: `auto` = number of online cores, at least 1 */
    unsigned headers;           /* AIGW_HDR_* bits; 0 for `off` */
    aigw_cidr_t *trusted_ips;   /* owned */
    size_t n_trusted_ips;
    char *real_ip_header;       /* default X-Real-IP */
    uint64_t client_max_body_size;   /* bytes; 0 = no limit */
    uint64_t client_body_buffer_size;/* bytes */
    int upstream_keepalive_pool_size;      /* idle connections per upstream pool; 0 = off */
    int upstream_keepalive_max_requests;   /* requests per upstream connection; 0 = no cap */
    int upstream_keepalive_idle_timeout;   /* seconds; 0 = no timeout */
    char *declarative_config;   /* absolute or NULL */

    /* Log records (plugins/logrec.h): redaction on by default; lists as written (comma-
     * separated names; patterns separated by whitespace), NULL when unset. */
    int log_redaction;
    char *log_redact_headers, *log_redact_query_args, *log_redact_json_fields;
    char *log_redact_patterns;
    int log_request_bodies;

    /* Hybrid mode (cluster/cluster.h). Paths absolute or NULL. */
    aigw_listen_list_t cluster_listen;       /* CP: default 0.0.0.0:8005 */
    char *cluster_control_plane;             /* DP: host:port, default 127.0.0.1:8005 */
    aigw_mtls_t cluster_mtls;
    char *cluster_cert, *cluster_cert_key;   /* the key is never logged */
    char *cluster_ca_cert;                   /* pki */
    char *cluster_server_name;               /* pki: the CP's name the DP checks; or NULL */
    int cluster_data_plane_purge_delay;      /* seconds, >= 60 */
    uint64_t cluster_max_payload;            /* bytes of a compressed snapshot, >= 4 MiB */
    int cluster_ping_interval;               /* seconds between DP heartbeats (aigw's) */

    /* Every known key with its effective value as text, in table order, for GET / and
     * `aigwd check`: secrets already replaced by "******". Owned. */
    json_t *effective;
} aigw_conf_t;

/* How a warning (unknown key) reaches the user. */
typedef void (*aigw_conf_warn_fn)(void *ud, const char *msg);

/* Fills *c from the sources above. path: -c FILE or NULL. prefix_override: -p PREFIX or NULL.
 * envp: the environment to read (environ in aigwd; a fixed array in tests).
 * Returns 0, or -1 with a one-line message in err (key, value, source such as
 * "/etc/aigw/aigw.conf:12" or "env AIGW_LOG_LEVEL", and what is allowed). On -1, *c holds
 * nothing to free. Warnings (unknown keys) go to warn (may be NULL). Blocks (reads files). */
int aigw_conf_load(aigw_conf_t *c, const char *path, const char *prefix_override,
                   char *const *envp, aigw_conf_warn_fn warn, void *warn_ud,
                   char *err, size_t errlen);
void aigw_conf_free(aigw_conf_t *c);   /* frees the members; c itself is the caller's */

/* Parses one listen value ("off" gives n == 0). 0, or -1 with a message in err naming what is
 * wrong (no key or source: the caller adds those). */
int aigw_listen_parse(const char *s, aigw_listen_list_t *out, char *err, size_t errlen);
void aigw_listen_list_free(aigw_listen_list_t *l);
/* The socket address of l ("*" is 0.0.0.0), and whether it is IPv6. 0, or -1 when the address
 * does not parse. */
int aigw_listen_sockaddr(const aigw_listen_t *l, struct sockaddr_storage *ss, socklen_t *sl,
                         int *v6);

/* nginx size syntax: "0", "8192", "8k", "10m", "1g" (case-insensitive). 0 or -1. */
int aigw_size_parse(const char *s, uint64_t *out);

/* 1 if addr (AF_INET: 4 bytes, AF_INET6: 16 bytes) is inside one of the c's trusted_ips. */
int aigw_conf_ip_trusted(const aigw_conf_t *c, int family, const uint8_t *addr);

const char *aigw_log_level_name(aigw_log_level_t l);

#endif
