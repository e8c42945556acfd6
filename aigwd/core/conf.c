/* aigwd/core/conf.c: aigwd's configuration (see conf.h).
 *
 * Every key is one row of conf_keys[]. Loading first collects one raw text per key, walking
 * the sources from the lowest to the highest (default, file, KONG_ env, AIGW_ env, -p) so
 * that each overwrites the last; then one loop parses the winning texts in table order (so
 * `prefix`, the first row, is known before the paths relative to it), the checks that span
 * several keys run, and the `effective` JSON is built by a last loop over the same table. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include "common/str.h"
#include "core/conf.h"

#define CONF_DEFAULT_PATH "/etc/aigw/aigw.conf"
#define CONF_FILE_MAX (1u << 20)
#define SECRET_TEXT "******"

typedef enum {
    T_PREFIX,   /* directory, absolute against the cwd */
    T_ENUM,     /* one of words[], stored as int */
    T_STR,      /* char * */
    T_HDRNAME,  /* char *, an HTTP header name or proxy_protocol */
    T_INT,      /* int in [min, max] */
    T_BOOL,     /* int 0/1 */
    T_WORKERS,  /* int, `auto` resolved */
    T_SIZE,     /* uint64_t, nginx size syntax */
    T_PATH,     /* char *, absolute against the prefix */
    T_LOG,      /* char *, a T_PATH with `off` and /dev/stdout, /dev/stderr */
    T_LISTEN,   /* aigw_listen_list_t */
    T_TLS,      /* unsigned AIGW_TLS_* bits */
    T_HEADERS,  /* unsigned AIGW_HDR_* bits */
    T_CIDRS,    /* aigw_cidr_t * with n_trusted_ips */
} conf_type_t;

enum {
    F_NONE = 1u << 0,   /* NONE means unset (NULL) */
    F_EMPTY = 1u << 1,  /* the empty string is a valid value */
    F_SECRET = 1u << 2, /* never shown; names containing password or secret are too */
    F_PEM = 1u << 3,    /* T_PATH: or the PEM text itself, or that text base64-encoded (kept
                         * as PEM text: users tell the two apart by "-----BEGIN") */
};

typedef struct conf_word {
    const char *word;
    int value;
} conf_word_t;

typedef struct conf_key {
    const char *name;
    const char *alias;          /* Kong's older nginx_* spelling, or NULL */
    conf_type_t type;
    const char *def;            /* the default, as it would be written in the file */
    size_t off;                 /* offsetof the member in aigw_conf_t */
    const conf_word_t *words;   /* T_ENUM: the allowed words, NULL-terminated */
    long long min, max;         /* T_INT bounds */
    unsigned flags;             /* F_* */
} conf_key_t;

static const conf_word_t role_words[] = {
    { "traditional", AIGW_ROLE_TRADITIONAL },
    { "control_plane", AIGW_ROLE_CONTROL_PLANE },
    { "data_plane", AIGW_ROLE_DATA_PLANE },
    { NULL, 0 },
};

static const conf_word_t database_words[] = {
    { "sqlite", AIGW_DB_SQLITE },
    { "postgres", AIGW_DB_POSTGRES },
    { "off", AIGW_DB_OFF },
    { NULL, 0 },
};

static const conf_word_t mtls_words[] = {
    { "shared", AIGW_MTLS_SHARED },
    { "pki", AIGW_MTLS_PKI },
    { NULL, 0 },
};

static const conf_word_t log_level_words[] = {
    { "debug", AIGW_LOG_DEBUG },
    { "info", AIGW_LOG_INFO },
    { "notice", AIGW_LOG_NOTICE },
    { "warn", AIGW_LOG_WARN },
    { "error", AIGW_LOG_ERR },
    { "crit", AIGW_LOG_CRIT },
    { "alert", AIGW_LOG_ALERT },
    { "emerg", AIGW_LOG_EMERG },
    { NULL, 0 },
};

/* `headers` tokens, compared case-insensitively; `off` is handled apart. */
static const struct {
    const char *name;
    unsigned bits;
} header_tokens[] = {
    { "server_tokens", AIGW_HDR_SERVER | AIGW_HDR_VIA },
    { "latency_tokens", AIGW_HDR_PROXY_LATENCY | AIGW_HDR_RESPONSE_LATENCY |
                        AIGW_HDR_ADMIN_LATENCY | AIGW_HDR_UPSTREAM_LATENCY },
    { "Server", AIGW_HDR_SERVER },
    { "Via", AIGW_HDR_VIA },
    { "X-Kong-Proxy-Latency", AIGW_HDR_PROXY_LATENCY },
    { "X-Kong-Response-Latency", AIGW_HDR_RESPONSE_LATENCY },
    { "X-Kong-Admin-Latency", AIGW_HDR_ADMIN_LATENCY },
    { "X-Kong-Upstream-Latency", AIGW_HDR_UPSTREAM_LATENCY },
    { "X-Kong-Upstream-Status", AIGW_HDR_UPSTREAM_STATUS },
    { "X-Kong-Request-Id", AIGW_HDR_REQUEST_ID },
};

#define OFF(m) offsetof(aigw_conf_t, m)

/* The keys, in the order of the man page and of `effective`. prefix must stay first. */
static const conf_key_t conf_keys[] = {
    { .name = "prefix", .type = T_PREFIX, .def = "/usr/local/aigw", .off = OFF(prefix) },
    { .name = "role", .type = T_ENUM, .def = "traditional", .off = OFF(role),
      .words = role_words },
    { .name = "database", .type = T_ENUM, .def = "sqlite", .off = OFF(database),
      .words = database_words },
    { .name = "sqlite_path", .type = T_PATH, .def = "aigw.db", .off = OFF(sqlite_path) },
    { .name = "pg_host", .type = T_STR, .def = "127.0.0.1", .off = OFF(pg_host) },
    { .name = "pg_port", .type = T_INT, .def = "5432", .off = OFF(pg_port),
      .min = 1, .max = 65535 },
    { .name = "pg_user", .type = T_STR, .def = "kong", .off = OFF(pg_user) },
    { .name = "pg_password", .type = T_STR, .def = "NONE", .off = OFF(pg_password),
      .flags = F_NONE | F_EMPTY | F_SECRET },
    { .name = "pg_database", .type = T_STR, .def = "kong", .off = OFF(pg_database) },
    { .name = "pg_ssl", .type = T_BOOL, .def = "off", .off = OFF(pg_ssl) },
    { .name = "pg_timeout", .type = T_INT, .def = "5000", .off = OFF(pg_timeout),
      .min = 1, .max = INT_MAX },
    { .name = "proxy_listen", .type = T_LISTEN, .off = OFF(proxy_listen),
      .def = "0.0.0.0:8000 reuseport backlog=16384, "
             "0.0.0.0:8443 http2 ssl reuseport backlog=16384" },
    { .name = "admin_listen", .type = T_LISTEN, .off = OFF(admin_listen),
      .def = "127.0.0.1:8001 reuseport backlog=16384, "
             "127.0.0.1:8444 http2 ssl reuseport backlog=16384" },
    { .name = "status_listen", .type = T_LISTEN, .def = "off", .off = OFF(status_listen) },
    { .name = "ssl_cert", .type = T_PATH, .def = "NONE", .off = OFF(ssl_cert), .flags = F_NONE },
    { .name = "ssl_cert_key", .type = T_PATH, .def = "NONE", .off = OFF(ssl_cert_key),
      .flags = F_NONE },
    { .name = "admin_ssl_cert", .type = T_PATH, .def = "NONE", .off = OFF(admin_ssl_cert),
      .flags = F_NONE },
    { .name = "admin_ssl_cert_key", .type = T_PATH, .def = "NONE",
      .off = OFF(admin_ssl_cert_key), .flags = F_NONE },
    { .name = "ssl_protocols", .type = T_TLS, .def = "TLSv1.2 TLSv1.3", .off = OFF(ssl_protocols) },
    { .name = "proxy_access_log", .type = T_LOG, .def = "logs/access.log",
      .off = OFF(proxy_access_log) },
    { .name = "proxy_error_log", .type = T_LOG, .def = "logs/error.log",
      .off = OFF(proxy_error_log) },
    { .name = "admin_access_log", .type = T_LOG, .def = "logs/admin_access.log",
      .off = OFF(admin_access_log) },
    { .name = "admin_error_log", .type = T_LOG, .def = "logs/error.log",
      .off = OFF(admin_error_log) },
    { .name = "log_level", .type = T_ENUM, .def = "notice", .off = OFF(log_level),
      .words = log_level_words },
    { .name = "worker_processes", .alias = "nginx_worker_processes", .type = T_WORKERS,
      .def = "auto", .off = OFF(worker_processes), .min = 1, .max = 1024 },
    { .name = "headers", .type = T_HEADERS, .off = OFF(headers),
      .def = "server_tokens, latency_tokens, x-kong-request-id" },
    { .name = "trusted_ips", .type = T_CIDRS, .def = "NONE", .off = OFF(trusted_ips),
      .flags = F_NONE },
    { .name = "real_ip_header", .alias = "nginx_proxy_real_ip_header", .type = T_HDRNAME,
      .def = "X-Real-IP", .off = OFF(real_ip_header) },
    { .name = "client_max_body_size", .alias = "nginx_http_client_max_body_size",
      .type = T_SIZE, .def = "0", .off = OFF(client_max_body_size) },
    { .name = "client_body_buffer_size", .alias = "nginx_http_client_body_buffer_size",
      .type = T_SIZE, .def = "8k", .off = OFF(client_body_buffer_size) },
    { .name = "upstream_keepalive_pool_size", .type = T_INT, .def = "512",
      .off = OFF(upstream_keepalive_pool_size), .min = 0, .max = 1000000 },
    { .name = "upstream_keepalive_max_requests", .type = T_INT, .def = "10000",
      .off = OFF(upstream_keepalive_max_requests), .min = 0, .max = INT_MAX },
    { .name = "upstream_keepalive_idle_timeout", .type = T_INT, .def = "60",
      .off = OFF(upstream_keepalive_idle_timeout), .min = 0, .max = 86400 },
    { .name = "declarative_config", .type = T_PATH, .def = "NONE",
      .off = OFF(declarative_config), .flags = F_NONE },
    { .name = "log_redaction", .type = T_BOOL, .def = "on", .off = OFF(log_redaction) },
    { .name = "log_redact_headers", .type = T_STR, .def = "NONE",
      .off = OFF(log_redact_headers), .flags = F_NONE | F_EMPTY },
    { .name = "log_redact_query_args", .type = T_STR, .def = "NONE",
      .off = OFF(log_redact_query_args), .flags = F_NONE | F_EMPTY },
    { .name = "log_redact_json_fields", .type = T_STR, .def = "NONE",
      .off = OFF(log_redact_json_fields), .flags = F_NONE | F_EMPTY },
    { .name = "log_redact_patterns", .type = T_STR, .def = "NONE",
      .off = OFF(log_redact_patterns), .flags = F_NONE | F_EMPTY },
    { .name = "log_request_bodies", .type = T_BOOL, .def = "off",
      .off = OFF(log_request_bodies) },
    { .name = "cluster_listen", .type = T_LISTEN, .def = "0.0.0.0:8005",
      .off = OFF(cluster_listen) },
    { .name = "cluster_control_plane", .type = T_STR, .def = "127.0.0.1:8005",
      .off = OFF(cluster_control_plane) },
    { .name = "cluster_mtls", .type = T_ENUM, .def = "shared", .off = OFF(cluster_mtls),
      .words = mtls_words },
    { .name = "cluster_cert", .type = T_PATH, .def = "NONE", .off = OFF(cluster_cert),
      .flags = F_NONE | F_PEM },
    { .name = "cluster_cert_key", .type = T_PATH, .def = "NONE", .off = OFF(cluster_cert_key),
      .flags = F_NONE | F_PEM },
    { .name = "cluster_ca_cert", .type = T_PATH, .def = "NONE", .off = OFF(cluster_ca_cert),
      .flags = F_NONE | F_PEM },
    { .name = "cluster_server_name", .type = T_STR, .def = "NONE",
      .off = OFF(cluster_server_name), .flags = F_NONE },
    { .name = "cluster_data_plane_purge_delay", .type = T_INT, .def = "1209600",
      .off = OFF(cluster_data_plane_purge_delay), .min = 60, .max = INT_MAX },
    { .name = "cluster_max_payload", .type = T_SIZE, .def = "16777216",
      .off = OFF(cluster_max_payload) },
    { .name = "cluster_ping_interval", .type = T_INT, .def = "30",
      .off = OFF(cluster_ping_interval), .min = 1, .max = 3600 },
};

#define N_KEYS (sizeof conf_keys / sizeof conf_keys[0])

/* AIGW_* / KONG_* variables that are not configuration: aigwctl's and the test suite's. */
static const char *const env_ignore[] = {
    "AIGW_ADMIN_URL", "AIGW_SOURCE_DIR", "AIGWD_BIN", "AIGWCTL_BIN", NULL,
};

/* Cert/key pairs that must be set together. */
static const struct {
    const char *cert, *key;
} cert_pairs[] = {
    { "ssl_cert", "ssl_cert_key" },
    { "admin_ssl_cert", "admin_ssl_cert_key" },
    { "cluster_cert", "cluster_cert_key" },
};

_Static_assert(sizeof(aigw_role_t) == sizeof(int) && sizeof(aigw_db_t) == sizeof(int) &&
               sizeof(aigw_log_level_t) == sizeof(int), "T_ENUM members are stored as int");

/* Sources, lowest first. */
enum { SRC_DEFAULT, SRC_FILE, SRC_KONG_ENV, SRC_AIGW_ENV, SRC_CLI };

typedef struct raw {
    const char *val;    /* the winning text: borrowed from conf_keys, the file or `owned` */
    char *owned;        /* a trimmed copy of an environment value */
    int src;            /* SRC_* */
    int line;           /* SRC_FILE: 1-based line */
    int via_alias;      /* set through conf_keys[i].alias */
} raw_t;

typedef struct load {
    raw_t raw[N_KEYS];
    const char *file;   /* the file's path as given, for messages; NULL when none */
    char *buf;          /* the file's text, NUL-terminated, edited in place */
    size_t len;
} load_t;

/* Parsers fill the member of one key from its text: 0, -1 with the reason in why (the
 * caller adds key, value and source), or -2 when out of memory. */
typedef int (*parse_fn)(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                        size_t whylen);
/* Renders one key's effective value; raw is the text it was parsed from. New reference. */
typedef json_t *(*json_fn)(const conf_key_t *k, const aigw_conf_t *c, const char *raw);

/* --- small helpers ---------------------------------------------------------------------- */

static void *member(aigw_conf_t *c, const conf_key_t *k)
{
    return (char *)c + k->off;
}

static const void *cmember(const aigw_conf_t *c, const conf_key_t *k)
{
    return (const char *)c + k->off;
}

static char upper(char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
}

static char lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
}

static int is_secret(const conf_key_t *k)
{
    return (k->flags & F_SECRET) || strstr(k->name, "password") || strstr(k->name, "secret");
}

static int holds_string(conf_type_t t)
{
    return t == T_PREFIX || t == T_STR || t == T_HDRNAME || t == T_PATH || t == T_LOG;
}

/* Joins base and p (when p is relative) and drops ".", "..", repeated and trailing
 * slashes. Malloc'd, NULL when out of memory. */
static char *path_abs(const char *base, const char *p)
{
    size_t bn = (p[0] == '/' || !base) ? 0 : strlen(base);
    size_t pn = strlen(p);
    char *in = malloc(bn + pn + 2);
    char *out = malloc(bn + pn + 3);
    size_t i = 0, o = 0;

    if (!in || !out) {
        free(in);
        free(out);
        return NULL;
    }
    memcpy(in, base ? base : "", bn);
    in[bn] = '/';
    memcpy(in + bn + 1, p, pn + 1);

    while (in[i]) {
        size_t s, len;
        while (in[i] == '/')
            i++;
        s = i;
        while (in[i] && in[i] != '/')
            i++;
        len = i - s;
        if (len == 0 || (len == 1 && in[s] == '.'))
            continue;
        if (len == 2 && in[s] == '.' && in[s + 1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        out[o++] = '/';
        memcpy(out + o, in + s, len);
        o += len;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(in);
    return out;
}

/* A JSON string of s; bytes that are not UTF-8 (a path may hold any) become '?'. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *q = copy; *q; q++)
        if ((unsigned char)*q >= 0x80)
            *q = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

/* An array of the trimmed comma-separated items of raw. */
static json_t *jlist(const char *raw)
{
    json_t *a = json_array();
    aigw_str_t rest = aigw_str_c(raw);

    while (a) {
        const char *comma = memchr(rest.p, ',', rest.n);
        size_t len = comma ? (size_t)(comma - rest.p) : rest.n;
        aigw_str_t item = aigw_str_trim((aigw_str_t){ rest.p, len });
        char *t = strndup(item.p, item.n);
        json_t *s = t ? jstr(t) : NULL;

        free(t);
        if (!s || json_array_append_new(a, s) != 0) {
            json_decref(a);
            return NULL;
        }
        if (!comma)
            break;
        rest.p = comma + 1;
        rest.n -= len + 1;
    }
    return a;
}

/* --- parsers ---------------------------------------------------------------------------- */

static int parse_prefix(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                        size_t whylen)
{
    char *cwd = NULL;
    char **m = member(c, k);

    if (!*v || strcmp(v, "NONE") == 0) {
        snprintf(why, whylen, "expected a directory");
        return -1;
    }
    if (v[0] != '/') {
        cwd = getcwd(NULL, 0);
        if (!cwd) {
            snprintf(why, whylen, "cannot resolve it against the current directory: %s",
                     strerror(errno));
            return -1;
        }
    }
    *m = path_abs(cwd, v);
    free(cwd);
    return *m ? 0 : -2;
}

static int parse_enum(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                      size_t whylen)
{
    size_t o;

    for (const conf_word_t *w = k->words; w->word; w++) {
        if (strcmp(v, w->word) == 0) {
            memcpy(member(c, k), &w->value, sizeof w->value);
            return 0;
        }
    }
    o = (size_t)snprintf(why, whylen, "expected one of: ");
    for (const conf_word_t *w = k->words; w->word && o < whylen; w++)
        o += (size_t)snprintf(why + o, whylen - o, "%s%s", w == k->words ? "" : ", ", w->word);
    return -1;
}

static int parse_str(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                     size_t whylen)
{
    char **m = member(c, k);

    if ((k->flags & F_NONE) && strcmp(v, "NONE") == 0)
        return 0;
    if ((!*v && !(k->flags & F_EMPTY)) || strcmp(v, "NONE") == 0) {
        snprintf(why, whylen, "expected a non-empty string (this key cannot be NONE)");
        return -1;
    }
    *m = strdup(v);
    return *m ? 0 : -2;
}

static int is_tchar(unsigned char ch)
{
    /* RFC 9110 token characters. */
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int parse_hdrname(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                         size_t whylen)
{
    char **m = member(c, k);

    for (const char *q = v; *q; q++) {
        if (!is_tchar((unsigned char)*q)) {
            snprintf(why, whylen, "expected a header name or proxy_protocol");
            return -1;
        }
    }
    if (!*v || strcmp(v, "NONE") == 0) {
        snprintf(why, whylen, "expected a header name or proxy_protocol");
        return -1;
    }
    *m = strdup(v);
    return *m ? 0 : -2;
}

static int parse_int(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                     size_t whylen)
{
    unsigned long long x;
    int *m = member(c, k);

    if (aigw_str_to_u64(aigw_str_c(v), (unsigned long long)k->max, &x) != 0 ||
        x < (unsigned long long)k->min) {
        snprintf(why, whylen, "expected an integer from %lld to %lld", k->min, k->max);
        return -1;
    }
    *m = (int)x;
    return 0;
}

static int parse_bool(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                      size_t whylen)
{
    int *m = member(c, k);
    aigw_str_t s = aigw_str_c(v);

    if (aigw_str_ieq(s, AIGW_STR("on")) || aigw_str_ieq(s, AIGW_STR("true"))) {
        *m = 1;
    } else if (aigw_str_ieq(s, AIGW_STR("off")) || aigw_str_ieq(s, AIGW_STR("false"))) {
        *m = 0;
    } else {
        snprintf(why, whylen, "expected on, off, true or false");
        return -1;
    }
    return 0;
}

static int parse_workers(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                         size_t whylen)
{
    int *m = member(c, k);
    unsigned long long x;

    if (strcmp(v, "auto") == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        *m = n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
        return 0;
    }
    if (aigw_str_to_u64(aigw_str_c(v), (unsigned long long)k->max, &x) != 0 ||
        x < (unsigned long long)k->min) {
        snprintf(why, whylen, "expected auto or an integer from %lld to %lld", k->min, k->max);
        return -1;
    }
    *m = (int)x;
    return 0;
}

static int parse_size(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                      size_t whylen)
{
    uint64_t *m = member(c, k);

    if (aigw_size_parse(v, m) != 0) {
        snprintf(why, whylen, "expected a size such as 0, 8192, 8k, 10m or 1g");
        return -1;
    }
    return 0;
}

/* v decoded as base64 when it is base64 of PEM text (Kong accepts certificates and keys
 * that way), malloc'd and NUL-terminated; else NULL. A path never decodes to "-----BEGIN". */
static char *pem_from_base64(const char *v)
{
    size_t n = strlen(v);
    if (n < 16 || n % 4 != 0 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789+/=") != n)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    int len = out ? EVP_DecodeBlock(out, (const unsigned char *)v, (int)n) : -1;
    if (len < 10 || memcmp(out, "-----BEGIN", 10) != 0) {
        free(out);
        return NULL;
    }
    while (len > 0 && out[len - 1] == '\0')   /* EVP_DecodeBlock counts the padding */
        len--;
    out[len] = '\0';
    if (strlen((char *)out) != (size_t)len) {   /* a NUL inside: not PEM text */
        free(out);
        return NULL;
    }
    return (char *)out;
}

static int parse_path(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                      size_t whylen)
{
    char **m = member(c, k);

    if ((k->flags & F_NONE) && strcmp(v, "NONE") == 0)
        return 0;
    if (!*v || strcmp(v, "NONE") == 0) {
        snprintf(why, whylen, "expected a path");
        return -1;
    }
    if (k->flags & F_PEM) {
        if (strncmp(v, "-----BEGIN", 10) == 0)
            return (*m = strdup(v)) ? 0 : -2;
        char *pem = pem_from_base64(v);
        if (pem) {
            *m = pem;
            return 0;
        }
    }
    *m = path_abs(c->prefix, v);
    return *m ? 0 : -2;
}

static int parse_log(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                     size_t whylen)
{
    char **m = member(c, k);
    size_t n = strcspn(v, " \t");
    char *word;

    /* Kong allows a log format name after the path ("logs/access.log basic"): ignored. */
    if (n == 0 || (n == 4 && memcmp(v, "NONE", 4) == 0)) {
        snprintf(why, whylen, "expected a path, /dev/stdout, /dev/stderr or off");
        return -1;
    }
    if (n == 3 && memcmp(v, "off", 3) == 0)
        return 0;
    word = strndup(v, n);
    if (!word)
        return -2;
    if (strcmp(word, "/dev/stdout") == 0 || strcmp(word, "/dev/stderr") == 0) {
        *m = word;
        return 0;
    }
    *m = path_abs(c->prefix, word);
    free(word);
    return *m ? 0 : -2;
}

static int parse_listen(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                        size_t whylen)
{
    return aigw_listen_parse(v, member(c, k), why, whylen);
}

static int parse_tls(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                     size_t whylen)
{
    unsigned *m = member(c, k), bits = 0;
    aigw_str_t rest = aigw_str_c(v);

    for (;;) {
        aigw_str_t w;
        while (rest.n && (rest.p[0] == ' ' || rest.p[0] == '\t')) {
            rest.p++;
            rest.n--;
        }
        if (!rest.n)
            break;
        w.p = rest.p;
        w.n = strcspn(rest.p, " \t");
        rest.p += w.n;
        rest.n -= w.n;
        if (aigw_str_eq(w, AIGW_STR("TLSv1.2"))) {
            bits |= AIGW_TLS_1_2;
        } else if (aigw_str_eq(w, AIGW_STR("TLSv1.3"))) {
            bits |= AIGW_TLS_1_3;
        } else if (aigw_str_eq(w, AIGW_STR("TLSv1")) || aigw_str_eq(w, AIGW_STR("TLSv1.1"))) {
            snprintf(why, whylen, "%.*s is not supported: aigw accepts only TLSv1.2 and TLSv1.3",
                     (int)w.n, w.p);
            return -1;
        } else {
            snprintf(why, whylen, "unknown protocol '%.*s': aigw accepts only TLSv1.2 and "
                     "TLSv1.3", (int)w.n, w.p);
            return -1;
        }
    }
    if (!bits) {
        snprintf(why, whylen, "expected TLSv1.2, TLSv1.3 or both");
        return -1;
    }
    *m = bits;
    return 0;
}

static int parse_headers(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                         size_t whylen)
{
    unsigned *m = member(c, k), bits = 0;
    int off = 0, n = 0;
    aigw_str_t rest = aigw_str_c(v);

    for (;;) {
        const char *comma = memchr(rest.p, ',', rest.n);
        size_t len = comma ? (size_t)(comma - rest.p) : rest.n;
        aigw_str_t t = aigw_str_trim((aigw_str_t){ rest.p, len });
        size_t i;

        n++;
        if (aigw_str_ieq(t, AIGW_STR("off"))) {
            off = 1;
        } else {
            for (i = 0; i < sizeof header_tokens / sizeof header_tokens[0]; i++)
                if (aigw_str_ieq(t, aigw_str_c(header_tokens[i].name)))
                    break;
            if (i == sizeof header_tokens / sizeof header_tokens[0]) {
                size_t o = (size_t)snprintf(why, whylen, "unknown token '%.*s': expected off",
                                            (int)t.n, t.p);
                for (i = 0; i < sizeof header_tokens / sizeof header_tokens[0] && o < whylen; i++)
                    o += (size_t)snprintf(why + o, whylen - o, ", %s", header_tokens[i].name);
                return -1;
            }
            bits |= header_tokens[i].bits;
        }
        if (!comma)
            break;
        rest.p = comma + 1;
        rest.n -= len + 1;
    }
    if (off && n > 1) {
        snprintf(why, whylen, "'off' cannot be combined with other tokens");
        return -1;
    }
    *m = bits;
    return 0;
}

/* "10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "::1". */
static int cidr_parse(aigw_str_t s, aigw_cidr_t *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    char *slash;
    unsigned long long bits = 0;
    int maxbits;

    if (s.n == 0 || s.n >= sizeof buf)
        return -1;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    slash = strchr(buf, '/');
    if (slash) {
        *slash = '\0';
        if (aigw_str_to_u64(aigw_str_c(slash + 1), 128, &bits) != 0)
            return -1;
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        maxbits = 128;
    } else {
        return -1;
    }
    if (!slash)
        bits = (unsigned long long)maxbits;
    else if (bits > (unsigned long long)maxbits)
        return -1;
    out->bits = (int)bits;
    for (int i = 0; i < 16; i++) {
        int keep = out->bits - i * 8;
        if (keep <= 0)
            out->addr[i] = 0;
        else if (keep < 8)
            out->addr[i] &= (uint8_t)(0xffu << (8 - keep));
    }
    return 0;
}

static int parse_cidrs(const conf_key_t *k, const char *v, aigw_conf_t *c, char *why,
                       size_t whylen)
{
    aigw_cidr_t *list;
    size_t cap = 1, n = 0;
    aigw_str_t rest = aigw_str_c(v);

    (void)k;
    if (strcmp(v, "NONE") == 0)
        return 0;
    for (const char *q = v; *q; q++)
        cap += *q == ',';
    list = calloc(cap, sizeof *list);
    if (!list)
        return -2;
    for (;;) {
        const char *comma = memchr(rest.p, ',', rest.n);
        size_t len = comma ? (size_t)(comma - rest.p) : rest.n;
        aigw_str_t t = aigw_str_trim((aigw_str_t){ rest.p, len });

        if (cidr_parse(t, &list[n]) != 0) {
            snprintf(why, whylen, "invalid address '%.*s': expected IPv4 or IPv6 addresses or "
                     "CIDRs, comma-separated, or NONE", (int)t.n, t.p);
            free(list);
            return -1;
        }
        n++;
        if (!comma)
            break;
        rest.p = comma + 1;
        rest.n -= len + 1;
    }
    c->trusted_ips = list;
    c->n_trusted_ips = n;
    return 0;
}

/* --- effective values ------------------------------------------------------------------- */

static json_t *json_str(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    const char *s = *(char *const *)cmember(c, k);

    (void)raw;
    return s ? jstr(s) : json_null();
}

static json_t *json_log(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    const char *s = *(char *const *)cmember(c, k);

    (void)raw;
    return jstr(s ? s : "off");
}

static json_t *json_enum(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    int v;

    (void)raw;
    memcpy(&v, cmember(c, k), sizeof v);
    for (const conf_word_t *w = k->words; w->word; w++)
        if (w->value == v)
            return json_string(w->word);
    return json_null();
}

static json_t *json_int(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    (void)raw;
    return json_integer(*(const int *)cmember(c, k));
}

static json_t *json_bool(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    (void)raw;
    return json_boolean(*(const int *)cmember(c, k));
}

/* Sizes and lists are shown as written, as Kong's GET / does. */
static json_t *json_raw(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    (void)k;
    (void)c;
    return jstr(raw);
}

static json_t *json_rawlist(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    (void)c;
    if ((k->flags & F_NONE) && strcmp(raw, "NONE") == 0)
        return json_null();
    return jlist(raw);
}

static json_t *json_tls(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    unsigned bits = *(const unsigned *)cmember(c, k);

    (void)raw;
    if ((bits & AIGW_TLS_1_2) && (bits & AIGW_TLS_1_3))
        return json_string("TLSv1.2 TLSv1.3");
    return json_string((bits & AIGW_TLS_1_2) ? "TLSv1.2" : "TLSv1.3");
}

/* "0.0.0.0:8443 http2 ssl reuseport backlog=16384": Kong's own spelling of its defaults. */
static void listen_format(const aigw_listen_t *l, char *buf, size_t cap)
{
    int v6 = strchr(l->addr, ':') != NULL;
    int o = snprintf(buf, cap, "%s%s%s:%d", v6 ? "[" : "", l->addr, v6 ? "]" : "", l->port);
    const struct {
        int on;
        const char *text;
    } flags[] = {
        { l->http2, " http2" },
        { l->ssl, " ssl" },
        { l->proxy_protocol, " proxy_protocol" },
        { l->deferred, " deferred" },
        { l->bind, " bind" },
        { l->reuseport, " reuseport" },
    };

    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].on && o >= 0 && (size_t)o < cap)
            o += snprintf(buf + o, cap - (size_t)o, "%s", flags[i].text);
    if (l->backlog != 511 && o >= 0 && (size_t)o < cap)
        snprintf(buf + o, cap - (size_t)o, " backlog=%d", l->backlog);
}

static json_t *json_listen(const conf_key_t *k, const aigw_conf_t *c, const char *raw)
{
    const aigw_listen_list_t *l = cmember(c, k);
    json_t *a = json_array();
    char buf[256];

    (void)raw;
    if (a && l->n == 0 && json_array_append_new(a, json_string("off")) != 0)
        goto fail;
    for (size_t i = 0; a && i < l->n; i++) {
        listen_format(&l->v[i], buf, sizeof buf);
        if (json_array_append_new(a, json_string(buf)) != 0)
            goto fail;
    }
    return a;
fail:
    json_decref(a);
    return NULL;
}

static const struct {
    parse_fn parse;
    json_fn json;
} type_ops[] = {
    [T_PREFIX] = { parse_prefix, json_str },
    [T_ENUM] = { parse_enum, json_enum },
    [T_STR] = { parse_str, json_str },
    [T_HDRNAME] = { parse_hdrname, json_str },
    [T_INT] = { parse_int, json_int },
    [T_BOOL] = { parse_bool, json_bool },
    [T_WORKERS] = { parse_workers, json_int },
    [T_SIZE] = { parse_size, json_raw },
    [T_PATH] = { parse_path, json_str },
    [T_LOG] = { parse_log, json_log },
    [T_LISTEN] = { parse_listen, json_listen },
    [T_TLS] = { parse_tls, json_tls },
    [T_HEADERS] = { parse_headers, json_rawlist },
    [T_CIDRS] = { parse_cidrs, json_rawlist },
};

/* --- sources ---------------------------------------------------------------------------- */

static size_t key_index(const char *name)
{
    size_t i;
    for (i = 0; i < N_KEYS; i++)
        if (strcmp(conf_keys[i].name, name) == 0)
            break;
    return i;
}

/* Finds the key called s (or whose alias is s); N_KEYS if none. */
static size_t key_lookup(aigw_str_t s, int *via_alias)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (aigw_str_eq(s, aigw_str_c(conf_keys[i].name))) {
            *via_alias = 0;
            return i;
        }
        if (conf_keys[i].alias && aigw_str_eq(s, aigw_str_c(conf_keys[i].alias))) {
            *via_alias = 1;
            return i;
        }
    }
    return N_KEYS;
}

/* Where a key's value came from: "/etc/aigw/aigw.conf:12", "env KONG_LOG_LEVEL", ... */
static void src_text(const load_t *L, size_t i, char *out, size_t cap)
{
    const raw_t *r = &L->raw[i];
    const char *name = r->via_alias ? conf_keys[i].alias : conf_keys[i].name;
    size_t o;

    switch (r->src) {
    case SRC_FILE:
        snprintf(out, cap, "%s:%d", L->file, r->line);
        break;
    case SRC_KONG_ENV:
    case SRC_AIGW_ENV:
        o = (size_t)snprintf(out, cap, "env %s", r->src == SRC_KONG_ENV ? "KONG_" : "AIGW_");
        for (; *name && o + 1 < cap; name++)
            out[o++] = upper(*name);
        if (o < cap)
            out[o] = '\0';
        break;
    case SRC_CLI:
        snprintf(out, cap, "-p");
        break;
    default:
        snprintf(out, cap, "default");
        break;
    }
}

/* The value of <pfx><KEY> in envp (first one wins, as getenv), or NULL. */
static const char *env_get(char *const *envp, const char *pfx, const char *key)
{
    size_t pn = strlen(pfx);

    for (; envp && *envp; envp++) {
        const char *e = *envp;
        size_t j;
        if (strncmp(e, pfx, pn) != 0)
            continue;
        e += pn;
        for (j = 0; key[j] && e[j] == upper(key[j]); j++)
            ;
        if (!key[j] && e[j] == '=')
            return e + j + 1;
    }
    return NULL;
}

static void warn_unknown_env(char *const *envp, aigw_conf_warn_fn warn, void *ud)
{
    for (; warn && envp && *envp; envp++) {
        const char *e = *envp;
        size_t n = strcspn(e, "="), i;
        char key[128], msg[384];
        int known = 0, ignored = 0, via_alias;

        if (e[n] != '=' || (strncmp(e, "AIGW_", 5) != 0 && strncmp(e, "KONG_", 5) != 0))
            continue;
        for (const char *const *ig = env_ignore; *ig; ig++)
            ignored |= strlen(*ig) == n && memcmp(*ig, e, n) == 0;
        if (ignored)
            continue;
        /* Only the upper-case spelling is read, so KONG_log_level is unknown too. */
        for (i = 0; i + 5 < n && i + 1 < sizeof key; i++)
            key[i] = lower(e[5 + i]);
        key[i] = '\0';
        if (i + 5 == n) {
            known = key_lookup(aigw_str_c(key), &via_alias) < N_KEYS;
            for (size_t j = 0; known && j < i; j++)
                known = e[5 + j] == upper(key[j]);
        }
        if (known)
            continue;
        snprintf(msg, sizeof msg, "unknown configuration key '%s' (env %.*s), ignored", key,
                 (int)n, e);
        warn(ud, msg);
    }
}

static void raw_set(raw_t *r, const char *val, int src, int line, int via_alias)
{
    free(r->owned);
    r->owned = NULL;
    r->val = val;
    r->src = src;
    r->line = line;
    r->via_alias = via_alias;
}

static int read_file(load_t *L, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096;
    struct stat st;

    if (fd < 0 || fstat(fd, &st) != 0)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    L->buf = malloc(cap);
    if (!L->buf)
        goto fail;
    for (;;) {
        ssize_t r;
        if (L->len + 1 == cap) {
            char *nb;
            if (cap >= CONF_FILE_MAX) {
                close(fd);
                snprintf(err, errlen, "cannot read configuration file '%s': larger than %u "
                         "bytes", path, CONF_FILE_MAX);
                return -1;
            }
            nb = realloc(L->buf, cap * 2);
            if (!nb)
                goto fail;
            L->buf = nb;
            cap *= 2;
        }
        r = read(fd, L->buf + L->len, cap - 1 - L->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        L->len += (size_t)r;
    }
    L->buf[L->len] = '\0';
    close(fd);
    return 0;

fail:
    snprintf(err, errlen, "cannot read configuration file '%s': %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static int key_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

/* Collects `key = value` lines of L->buf into L->raw. Values point into the buffer, which
 * is edited in place (comments cut, `\#` unescaped, values NUL-terminated). */
static int parse_file(load_t *L, aigw_conf_warn_fn warn, void *ud, char *err, size_t errlen)
{
    char *p = L->buf, *end = L->buf + L->len;
    int line = 0;

    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p), o = 0, i, ks, kn, vs;
        aigw_str_t s, k, v;
        const char *eq;
        int via_alias;

        line++;
        if (memchr(p, '\0', n))
            goto syntax;
        /* Kong: a '#' starts a comment unless written `\#`, which stands for '#'. */
        for (i = 0; i < n; i++) {
            if (p[i] == '#' && (i == 0 || p[i - 1] != '\\'))
                break;
        }
        n = i;
        for (i = 0; i < n; i++) {
            if (p[i] == '\\' && i + 1 < n && p[i + 1] == '#')
                continue;
            p[o++] = p[i];
        }
        n = o;
        s = aigw_str_trim((aigw_str_t){ p, n });
        if (s.n == 0)
            goto next;
        eq = memchr(s.p, '=', s.n);
        if (!eq)
            goto syntax;
        k = aigw_str_trim((aigw_str_t){ s.p, (size_t)(eq - s.p) });
        v = aigw_str_trim((aigw_str_t){ eq + 1, (size_t)(s.p + s.n - eq - 1) });
        if (k.n == 0)
            goto syntax;
        for (i = 0; i < k.n; i++)
            if (!key_char(k.p[i]))
                goto syntax;
        ks = (size_t)(k.p - p);
        kn = k.n;
        vs = (size_t)(v.p - p);
        p[vs + v.n] = '\0';
        i = key_lookup(k, &via_alias);
        if (i == N_KEYS) {
            char msg[384];
            p[ks + kn] = '\0';
            snprintf(msg, sizeof msg, "unknown configuration key '%s' (%s:%d), ignored", p + ks,
                     L->file, line);
            if (warn)
                warn(ud, msg);
        } else if (!via_alias || L->raw[i].src != SRC_FILE || L->raw[i].via_alias) {
            /* The canonical name wins over its alias in one file, whatever the order. */
            raw_set(&L->raw[i], p + vs, SRC_FILE, line, via_alias);
        }
    next:
        p = nl ? nl + 1 : end;
        continue;
    syntax:
        snprintf(err, errlen, "syntax error at %s:%d: expected 'key = value'", L->file, line);
        return -1;
    }
    return 0;
}

static int env_set(raw_t *r, const char *val, int src, int via_alias)
{
    aigw_str_t t = aigw_str_trim(aigw_str_c(val));
    char *copy = strndup(t.p, t.n);

    if (!copy)
        return -1;
    raw_set(r, copy, src, 0, via_alias);
    r->owned = copy;
    return 0;
}

static int collect_env(load_t *L, char *const *envp)
{
    static const struct {
        const char *pfx;
        int src;
    } levels[] = { { "KONG_", SRC_KONG_ENV }, { "AIGW_", SRC_AIGW_ENV } };

    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        for (size_t i = 0; i < N_KEYS; i++) {
            const char *v = env_get(envp, levels[l].pfx, conf_keys[i].name);
            int via_alias = 0;
            if (!v && conf_keys[i].alias) {
                v = env_get(envp, levels[l].pfx, conf_keys[i].alias);
                via_alias = 1;
            }
            if (v && env_set(&L->raw[i], v, levels[l].src, via_alias) != 0)
                return -1;
        }
    }
    return 0;
}

/* --- checks across keys ----------------------------------------------------------------- */

static int check_conf(const load_t *L, const aigw_conf_t *c, char *err, size_t errlen)
{
    char s1[320], s2[320];

    for (size_t p = 0; p < sizeof cert_pairs / sizeof cert_pairs[0]; p++) {
        size_t ic = key_index(cert_pairs[p].cert), ik = key_index(cert_pairs[p].key);
        const char *cert = *(char *const *)cmember(c, &conf_keys[ic]);
        const char *key = *(char *const *)cmember(c, &conf_keys[ik]);
        size_t set = cert ? ic : ik, unset = cert ? ik : ic;

        if (!cert == !key)
            continue;
        src_text(L, set, s1, sizeof s1);
        src_text(L, unset, s2, sizeof s2);
        snprintf(err, errlen, "%s is set (from %s) but %s is not (from %s): %s and %s must be "
                 "set together", conf_keys[set].name, s1, conf_keys[unset].name, s2,
                 cert_pairs[p].cert, cert_pairs[p].key);
        return -1;
    }

    src_text(L, key_index("role"), s1, sizeof s1);
    src_text(L, key_index("database"), s2, sizeof s2);
    if (c->role == AIGW_ROLE_DATA_PLANE && c->database != AIGW_DB_OFF) {
        snprintf(err, errlen, "role = data_plane (from %s) keeps its configuration in memory: "
                 "set database = off (database = %s from %s)", s1,
                 L->raw[key_index("database")].val, s2);
        return -1;
    }
    if (c->role == AIGW_ROLE_CONTROL_PLANE && c->database == AIGW_DB_OFF) {
        snprintf(err, errlen, "role = control_plane (from %s) needs a database: database = off "
                 "(from %s) is not allowed", s1, s2);
        return -1;
    }
    if (c->role != AIGW_ROLE_TRADITIONAL && (!c->cluster_cert || !c->cluster_cert_key)) {
        snprintf(err, errlen, "cluster certificate and key must be provided to use Hybrid mode: "
                 "set cluster_cert and cluster_cert_key (role = %s from %s); "
                 "`aigwd hybrid gen_cert` makes a pair",
                 c->role == AIGW_ROLE_CONTROL_PLANE ? "control_plane" : "data_plane", s1);
        return -1;
    }
    if (c->role != AIGW_ROLE_TRADITIONAL && c->cluster_mtls == AIGW_MTLS_PKI &&
        !c->cluster_ca_cert) {
        snprintf(err, errlen, "cluster_ca_cert must be specified when cluster_mtls = \"pki\"");
        return -1;
    }
    if (c->role == AIGW_ROLE_CONTROL_PLANE && c->cluster_listen.n == 0) {
        snprintf(err, errlen, "cluster_listen must be specified when role = \"control_plane\"");
        return -1;
    }
    if (c->role == AIGW_ROLE_DATA_PLANE && c->proxy_listen.n == 0) {
        snprintf(err, errlen, "proxy_listen must be specified when role = \"data_plane\"");
        return -1;
    }
    if (c->cluster_max_payload < 4194304) {
        snprintf(err, errlen, "cluster_max_payload must be 4194304 (4MB) or greater");
        return -1;
    }
    return 0;
}

static int build_effective(const load_t *L, aigw_conf_t *c)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < N_KEYS; i++) {
        const conf_key_t *k = &conf_keys[i];
        json_t *v;

        const char *pem = (k->flags & F_PEM) ? *(char *const *)cmember(c, k) : NULL;
        if (is_secret(k) || (pem && strncmp(pem, "-----BEGIN", 10) == 0))   /* inline keys */
            v = *(char *const *)cmember(c, k) ? json_string(SECRET_TEXT) : json_null();
        else
            v = type_ops[k->type].json(k, c, L->raw[i].val);
        if (json_object_set_new(o, k->name, v) != 0)
            goto fail;
    }
    if (!o || json_object_set_new(o, "conf_path", c->conf_path ? jstr(c->conf_path)
                                                               : json_null()) != 0)
        goto fail;
    c->effective = o;
    return 0;
fail:
    json_decref(o);
    return -1;
}

/* --- public ----------------------------------------------------------------------------- */

int aigw_conf_load(aigw_conf_t *c, const char *path, const char *prefix_override,
                   char *const *envp, aigw_conf_warn_fn warn, void *warn_ud,
                   char *err, size_t errlen)
{
    load_t L;
    struct stat st;
    char why[512], src[320];
    int rc = -1;

    memset(c, 0, sizeof *c);
    memset(&L, 0, sizeof L);
    if (errlen)
        err[0] = '\0';
    for (size_t i = 0; i < N_KEYS; i++)
        L.raw[i].val = conf_keys[i].def;

    if (!path && stat(CONF_DEFAULT_PATH, &st) == 0)
        path = CONF_DEFAULT_PATH;
    else if (!path && errno != ENOENT && errno != ENOTDIR) {
        snprintf(err, errlen, "cannot read configuration file '%s': %s", CONF_DEFAULT_PATH,
                 strerror(errno));
        goto out;
    }
    if (path) {
        L.file = path;
        if (read_file(&L, path, err, errlen) != 0)
            goto out;
        if (parse_file(&L, warn, warn_ud, err, errlen) != 0)
            goto out;
    }
    warn_unknown_env(envp, warn, warn_ud);
    if (collect_env(&L, envp) != 0)
        goto oom;
    if (prefix_override)
        raw_set(&L.raw[0], prefix_override, SRC_CLI, 0, 0);

    for (size_t i = 0; i < N_KEYS; i++) {
        const conf_key_t *k = &conf_keys[i];
        int r;

        why[0] = '\0';
        r = type_ops[k->type].parse(k, L.raw[i].val, c, why, sizeof why);
        if (r == -2)
            goto oom;
        if (r != 0) {
            const char *name = L.raw[i].via_alias ? k->alias : k->name;
            src_text(&L, i, src, sizeof src);
            if (is_secret(k))
                snprintf(err, errlen, "invalid value for %s (from %s): %s", name, src, why);
            else
                snprintf(err, errlen, "invalid value '%s' for %s (from %s): %s", L.raw[i].val,
                         name, src, why);
            goto out;
        }
    }
    if (check_conf(&L, c, err, errlen) != 0)
        goto out;
    if (path) {
        char *cwd = path[0] == '/' ? NULL : getcwd(NULL, 0);
        /* Without a cwd (deleted directory) keep the path as given. */
        c->conf_path = (path[0] == '/' || cwd) ? path_abs(cwd, path) : strdup(path);
        free(cwd);
        if (!c->conf_path)
            goto oom;
    }
    if (build_effective(&L, c) != 0)
        goto oom;
    rc = 0;
    goto out;

oom:
    snprintf(err, errlen, "out of memory while loading the configuration");
out:
    for (size_t i = 0; i < N_KEYS; i++)
        free(L.raw[i].owned);
    free(L.buf);
    if (rc != 0)
        aigw_conf_free(c);
    return rc;
}

void aigw_conf_free(aigw_conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < N_KEYS; i++) {
        const conf_key_t *k = &conf_keys[i];
        if (holds_string(k->type))
            free(*(char **)member(c, k));
        else if (k->type == T_LISTEN)
            aigw_listen_list_free(member(c, k));
    }
    free(c->trusted_ips);
    free(c->conf_path);
    json_decref(c->effective);
    memset(c, 0, sizeof *c);
}

/* aigw_log_level_name() is defined in core/log.c. */

static int cidr_match(const aigw_cidr_t *net, const uint8_t *a)
{
    int full = net->bits / 8, rem = net->bits % 8;

    if (memcmp(net->addr, a, (size_t)full) != 0)
        return 0;
    return rem == 0 || (a[full] & (uint8_t)(0xffu << (8 - rem))) == net->addr[full];
}

int aigw_conf_ip_trusted(const aigw_conf_t *c, int family, const uint8_t *addr)
{
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    /* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: match IPv4 entries too. */
    const uint8_t *v4 = family == AF_INET ? addr
                      : (family == AF_INET6 && memcmp(addr, v4mapped, 12) == 0) ? addr + 12
                      : NULL;

    for (size_t i = 0; i < c->n_trusted_ips; i++) {
        const aigw_cidr_t *net = &c->trusted_ips[i];
        if (net->family == AF_INET6 && family == AF_INET6 && cidr_match(net, addr))
            return 1;
        if (net->family == AF_INET && v4 && cidr_match(net, v4))
            return 1;
    }
    return 0;
}
