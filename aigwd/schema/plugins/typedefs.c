/* aigwd/schema/plugins/typedefs.c: the typedefs and validators of kong/db/schema/typedefs.lua
 * (and kong/tools/ip.lua, kong/tools/http.lua, socket.url) that the bundled plugin configs
 * use, plus the small helpers their cross-field checks share. Pure functions. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "schema/plugins/plugins.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

const aigw_field_t aigw_plugins__el_string = {.type = AIGW_FT_STRING};
const aigw_field_t aigw_plugins__el_header_name = {
    .type = AIGW_FT_STRING, .check = aigw_plugins__check_header_name};
const aigw_field_t aigw_plugins__el_ip_or_cidr = {
    .type = AIGW_FT_STRING, .check = aigw_plugins__check_ip_or_cidr};

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(char c) { return is_digit(c) || is_alpha(c); }
static int is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- header names (kong/tools/http.lua) ----------------------------------------------------- */

int aigw_plugins__header_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

int aigw_plugins__check_header_name(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0) {
        snprintf(msg, len, "no header name provided");
        return -1;
    }
    if (aigw_plugins__header_name_ok(s, n))
        return 0;
    snprintf(msg, len, "bad header name '%s', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
             s);
    return -1;
}

/* ---- hosts (kong/tools/ip.lua normalize_ip) ------------------------------------------------- */

enum { HT_IPV4, HT_IPV6, HT_NAME };
enum { NIP_OK = 0, NIP_INVALID = -1, NIP_BAD_PORT = -2 };

/* Port digits as Lua's tonumber() > 65535 sees them. */
static int port_too_big(const char *p, size_t n)
{
    while (n > 1 && *p == '0') {
        p++;
        n--;
    }
    if (n > 5)
        return 1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(p[i] - '0');
    return v > 65535;
}

static int hostname_type(const char *s)
{
    size_t colons = 0, other = 0, rem = 0;
    for (const char *p = s; *p; p++) {
        if (*p == ':') {
            colons++;
            continue;
        }
        rem++;
        if (!is_digit(*p) && *p != '.')
            other++;
    }
    if (colons > 1)
        return HT_IPV6;
    if (rem > 0 && other == 0)
        return HT_IPV4;
    return HT_NAME;
}

/* 1-3 digits, "." ... four times; returns the position after the last octet or NULL. */
static const char *scan_ipv4(const char *p)
{
    for (int i = 0; i < 4; i++) {
        unsigned v = 0;
        int nd = 0;
        while (is_digit(*p) && nd < 3) {
            v = v * 10 + (unsigned)(*p - '0');
            p++;
            nd++;
        }
        if (nd == 0 || is_digit(*p) || v > 255)
            return NULL;
        if (i < 3) {
            if (*p != '.')
                return NULL;
            p++;
        }
    }
    return p;
}

static int normalize_ipv4(const char *s, int *has_port)
{
    const char *p = scan_ipv4(s);
    if (!p)
        return NIP_INVALID;
    if (*p == '\0')
        return NIP_OK;
    if (*p != ':')
        return NIP_INVALID;
    p++;
    size_t n = strlen(p);
    if (n == 0)
        return NIP_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return NIP_INVALID;
    if (port_too_big(p, n))
        return NIP_BAD_PORT;
    *has_port = 1;
    return NIP_OK;
}

static int normalize_ipv6(const char *s, int *has_port)
{
    char buf[128];
    const char *check = s;
    size_t clen = strlen(s);

    if (s[0] == '[') {
        /* Lua's %b[]: the balanced bracket run at the start. */
        int depth = 0;
        size_t end = 0;
        for (size_t i = 0; s[i]; i++) {
            if (s[i] == '[')
                depth++;
            else if (s[i] == ']' && --depth == 0) {
                end = i;
                break;
            }
        }
        if (end > 0) {
            const char *rest = s + end + 1;
            if (*rest) {
                if (*rest != ':' || rest[1] == '\0')
                    return NIP_INVALID;
                for (const char *q = rest + 1; *q; q++)
                    if (!is_digit(*q))
                        return NIP_INVALID;
                if (port_too_big(rest + 1, strlen(rest + 1)))
                    return NIP_BAD_PORT;
                *has_port = 1;
            }
            check = s + 1;
            clen = end - 1;
        }
    }
    if (clen == 0 || clen > 64)
        return NIP_INVALID;

    size_t n = 0;
    if (check[0] == ':')
        buf[n++] = '0';
    memcpy(buf + n, check, clen);
    n += clen;
    if (check[clen - 1] == ':')
        buf[n++] = '0';
    buf[n] = '\0';

    char *dc = strstr(buf, "::");
    if (dc) {
        size_t colons = 0;
        for (size_t i = 0; i < n; i++)
            colons += buf[i] == ':';
        char out[128];
        size_t o = (size_t)(dc - buf);
        memcpy(out, buf, o);
        out[o++] = ':';
        for (size_t i = colons; i < 8; i++) {
            out[o++] = '0';
            out[o++] = ':';
        }
        size_t tail = strlen(dc + 2);
        if (o + tail >= sizeof(out))
            return NIP_INVALID;
        memcpy(out + o, dc + 2, tail + 1);
        memcpy(buf, out, o + tail + 1);
    }

    /* Exactly eight groups of 1 to 4 hex digits. */
    const char *p = buf;
    for (int g = 0; g < 8; g++) {
        int nd = 0;
        while (is_xdigit(*p) && nd < 5) {
            p++;
            nd++;
        }
        if (nd == 0 || nd > 4)
            return NIP_INVALID;
        if (g < 7) {
            if (*p != ':')
                return NIP_INVALID;
            p++;
        }
    }
    return *p == '\0' ? NIP_OK : NIP_INVALID;
}

static int check_hostname(const char *s, int *has_port)
{
    size_t n = strlen(s);
    size_t d = n;
    while (d > 0 && is_digit(s[d - 1]))
        d--;
    if (d < n && d > 0 && s[d - 1] == ':') {
        if (port_too_big(s + d, n - d))
            return NIP_BAD_PORT;
        *has_port = 1;
        n = d - 1;
    }
    if (n == 0)
        return NIP_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
            return NIP_INVALID;
    /* Segments: none may end in '-', and only the last may be empty. */
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        int last = i == n;
        if (i == start && !last)
            return NIP_INVALID;
        if (i > start && s[i - 1] == '-')
            return NIP_INVALID;
        start = i + 1;
    }
    return NIP_OK;
}

static int normalize_ip(const char *s, int *type, int *has_port)
{
    *has_port = 0;
    *type = hostname_type(s);
    switch (*type) {
    case HT_IPV4:
        return normalize_ipv4(s, has_port);
    case HT_IPV6:
        return normalize_ipv6(s, has_port);
    default:
        return check_hostname(s, has_port);
    }
}

int aigw_plugins__check_host(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    int type, has_port;
    int r = normalize_ip(s, &type, &has_port);
    if (r == NIP_INVALID) {
        snprintf(msg, len, "invalid value: %s", s);
        return -1;
    }
    if (r == NIP_BAD_PORT || has_port) {
        snprintf(msg, len, "must not have a port");
        return -1;
    }
    return 0;
}

int aigw_plugins__check_sni(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    int type, has_port;
    int r = normalize_ip(s, &type, &has_port);
    if (r == NIP_INVALID) {
        snprintf(msg, len, "invalid value: %s", s);
        return -1;
    }
    if (r == NIP_OK && type != HT_NAME) {
        snprintf(msg, len, "must not be an IP");
        return -1;
    }
    if (r == NIP_BAD_PORT || has_port) {
        snprintf(msg, len, "must not have a port");
        return -1;
    }
    return 0;
}

/* ---- urls (socket.url 3.0-rc1 parse, as typedefs.url uses it) ------------------------------- */

typedef struct {
    int scheme, host, userinfo;
} url_parts_t;

static void parse_url(const char *url, url_parts_t *u)
{
    memset(u, 0, sizeof(*u));
    const char *end = strchr(url, '#');
    if (!end)
        end = url + strlen(url);
    const char *p = url;
    if (p < end && is_alnum(*p)) {
        const char *q = p + 1;
        while (q < end && (is_alnum(*q) || *q == '+' || *q == '-' || *q == '.'))
            q++;
        if (q < end && *q == ':') {
            u->scheme = 1;
            p = q + 1;
        }
    }
    if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
        const char *a = p + 2;
        const char *ae = a;
        while (ae < end && *ae != '/')
            ae++;
        const char *at = memchr(a, '@', (size_t)(ae - a));
        if (at) {
            u->userinfo = 1;
            a = at + 1;
        }
        /* Drop a trailing ":port" (the last ':' with no ':' or ']' after it). */
        const char *he = ae;
        for (const char *c = ae; c > a; c--) {
            if (c[-1] == ']')
                break;
            if (c[-1] == ':') {
                he = c - 1;
                break;
            }
        }
        u->host = he > a;
    }
}

int aigw_plugins__url_has_userinfo(const char *url)
{
    url_parts_t u;
    parse_url(url, &u);
    return u.userinfo;
}

int aigw_plugins__check_url(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    url_parts_t u;
    parse_url(json_string_value(v), &u);
    if (!u.host) {
        snprintf(msg, len, "missing host in url");
        return -1;
    }
    if (!u.scheme) {
        snprintf(msg, len, "missing scheme in url");
        return -1;
    }
    return 0;
}

/* ---- paths (typedefs.path) ------------------------------------------------------------------ */

int aigw_plugins__check_path(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (strstr(s, "//")) {
        snprintf(msg, len, "must not have empty segments");
        return -1;
    }
    static const char allowed[] = "._-~/%:@!$&'()*+,;=";
    int ok = s[0] == '/';
    for (const char *p = s; ok && *p; p++)
        if (!is_alnum(*p) && !strchr(allowed, *p))
            ok = 0;
    if (!ok) {
        snprintf(msg, len,
                 "invalid path: '%s' (characters outside of the reserved list of RFC 3986 found)",
                 s);
        return -1;
    }
    /* Kong replaces every %XX escape by "___" and reports the first '%' left, with up to
     * two bytes after it. The replacement keeps the length. */
    size_t n = strlen(s);
    char *raw = malloc(n + 1);
    if (!raw)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (s[i] == '%' && is_xdigit(s[i + 1]) && is_xdigit(s[i + 2])) {
            memcpy(raw + i, "___", 3);
            i += 2;
        } else {
            raw[i] = s[i];
        }
    }
    const char *pct = strchr(raw, '%');
    if (pct) {
        snprintf(msg, len, "invalid url-encoded value: '%.3s'", pct);
        free(raw);
        return -1;
    }
    free(raw);
    return 0;
}

/* ---- ip addresses (kong/tools/ip.lua is_valid_ip_or_cidr) ----------------------------------- */

static int valid_ip(const char *s, int family)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(family, s, buf) == 1;
}

static int valid_cidr(const char *s, int family)
{
    size_t n = strlen(s);
    const char *slash = n >= 2 ? strchr(s + 2, '/') : NULL;
    if (!slash)
        return 0;
    const char *pre = slash + 1;
    size_t pn = strlen(pre);
    unsigned max = family == AF_INET ? 32 : 128;
    if (pn == 0 || pn > 3 || (pn > 1 && pre[0] == '0'))
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < pn; i++) {
        if (!is_digit(pre[i]))
            return 0;
        v = v * 10 + (unsigned)(pre[i] - '0');
    }
    if (v > max)
        return 0;
    char ip[64];
    size_t iplen = (size_t)(slash - s);
    if (iplen >= sizeof(ip))
        return 0;
    memcpy(ip, s, iplen);
    ip[iplen] = '\0';
    return valid_ip(ip, family);
}

int aigw_plugins__check_ip_or_cidr(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (valid_ip(s, AF_INET) || valid_ip(s, AF_INET6) || valid_cidr(s, AF_INET) ||
        valid_cidr(s, AF_INET6))
        return 0;
    snprintf(msg, len, "invalid ip or cidr range: '%s'", s);
    return -1;
}

/* ---- misc ----------------------------------------------------------------------------------- */

int aigw_plugins__check_http_method(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    int ok = s[0] != '\0';
    for (const char *p = s; *p; p++)
        if (*p < 'A' || *p > 'Z')
            ok = 0;
    if (ok)
        return 0;
    snprintf(msg, len, "invalid value: %s", s);
    return -1;
}

int aigw_plugins__check_lua_code(const json_t *v, char *msg, size_t len)
{
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return 0;
    json_object_foreach((json_t *)(uintptr_t)v, key, val) {
        (void)val;
        if (key[0] == '\0') {
            snprintf(msg, len, "length must be at least 1");
            return -1;
        }
    }
    return 0;
}

/* ---- helpers for config checks -------------------------------------------------------------- */

int aigw_plugins__nonempty(const json_t *v)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    return 1;
}

void aigw_plugins__entity_error(json_t *entity_errors, const char *msg)
{
    if (entity_errors)
        json_array_append_new(entity_errors, json_string(msg));
}

void aigw_plugins__field_error(json_t *field_errors, const char *path, const char *msg)
{
    json_t *obj = field_errors;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!dot) {
            json_object_set_new(obj, p, json_string(msg));
            return;
        }
        char seg[128];
        size_t n = (size_t)(dot - p);
        if (n >= sizeof(seg))
            return;
        memcpy(seg, p, n);
        seg[n] = '\0';
        json_t *next = json_object_get(obj, seg);
        if (!next) {
            next = json_object();
            if (json_object_set_new(obj, seg, next) != 0)
                return;
        } else if (!json_is_object(next)) {
            return; /* already a string error for the whole record */
        }
        obj = next;
        p = dot + 1;
    }
}

void aigw_plugins__record_entity_error(json_t *field_errors, const char *record, const char *msg)
{
    json_t *rec = json_object_get(field_errors, record);
    if (!rec) {
        rec = json_object();
        if (json_object_set_new(field_errors, record, rec) != 0)
            return;
    } else if (!json_is_object(rec)) {
        return;
    }
    json_t *list = json_object_get(rec, "@entity");
    if (!list) {
        list = json_array();
        if (json_object_set_new(rec, "@entity", list) != 0)
            return;
    }
    json_array_append_new(list, json_string(msg));
}

int aigw_plugins__at_least_one_of(const json_t *cfg, const char *const *names,
                                  json_t *entity_errors)
{
    for (size_t i = 0; names[i]; i++)
        if (aigw_plugins__nonempty(json_object_get(cfg, names[i])))
            return 0;
    char buf[512];
    size_t n = (size_t)snprintf(buf, sizeof(buf),
                                "at least one of these fields must be non-empty: ");
    for (size_t i = 0; names[i] && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s'config.%s'", i ? ", " : "",
                              names[i]);
    aigw_plugins__entity_error(entity_errors, buf);
    return -1;
}

int aigw_plugins__conditional_failed(json_t *entity_errors, json_t *field_errors,
                                     const char *if_path, const char *then_path,
                                     const char *then_msg)
{
    char buf[256];
    aigw_plugins__field_error(field_errors, then_path, then_msg);
    snprintf(buf, sizeof(buf), "failed conditional validation given value of field '%s'",
             if_path);
    aigw_plugins__entity_error(entity_errors, buf);
    return -1;
}

int aigw_plugins__is_regex(const char *s, size_t n)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)s, n, 0, &err, &off, NULL);
    if (!re)
        return 0;
    pcre2_code_free(re);
    return 1;
}
