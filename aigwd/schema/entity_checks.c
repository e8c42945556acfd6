/* aigwd/schema/entity_checks.c: Kong's custom validators, shorthands and entity checks for the
 * core entities (see entity_checks.h). Hosts follow kong/tools/ip.lua, paths
 * kong/db/schema/typedefs.lua and kong/tools/uri.lua, URLs LuaSocket's url.parse; the entity
 * checks reproduce the `conditional`, `at_least_one_of`, `distinct`, `mutually_required` and
 * custom checks of kong/db/schema/entities and the plugins' daos.lua with Kong's messages. */
#include "schema/entity_checks.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "common/str.h"

/* ---- small helpers ------------------------------------------------------------------------ */

static int fail(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (msg && len) {
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* jansson's iterators take a non-const object; the checks only read. */
static json_t *unconst(const json_t *j)
{
    union {
        const json_t *c;
        json_t *m;
    } u = { .c = j };
    return u.m;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(int c) { return is_digit(c) || is_alpha(c); }
static int is_xdigit(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static int is_null(const json_t *v) { return v == NULL || json_is_null(v); }

/* Kong's is_nonempty: null, "", [] and {} are empty. */
static int is_nonempty(const json_t *v)
{
    if (is_null(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    return 1;
}

static const char *str_field(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int in_list(const char *s, const char *const *list)
{
    if (!s)
        return 0;
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static void entity_error(json_t *entity_errors, const char *msg)
{
    if (entity_errors)
        json_array_append_new(entity_errors, json_string(msg));
}

static void field_error(json_t *field_errors, const char *field, const char *msg)
{
    if (field_errors)
        json_object_set_new(field_errors, field, json_string(msg));
}

/* Decimal digits only, saturating above 65535 (Lua's tonumber then `> 65535`). */
static long port_value(const char *p, size_t n)
{
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (p[i] - '0');
        if (v > 65535)
            return 65536;
    }
    return v;
}

/* Kong's validate_utf8 (standard UTF-8 well-formedness); 0 ok, else the 1-based position. */
static size_t utf8_bad_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        } else {
            return i + 1;
        }
        if (i + k >= n)
            return i + 1;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i + 1;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF)
                return i + 1;
        i += k + 1;
    }
    return 0;
}

/* ---- hosts (kong/tools/ip.lua) -------------------------------------------------------------- */

static int hostname_type(const char *s)
{
    size_t colons = 0, rest = 0;
    int digits_dots = 1;
    for (const char *p = s; *p; p++) {
        if (*p == ':') {
            colons++;
        } else {
            rest++;
            if (!is_digit((unsigned char)*p) && *p != '.')
                digits_dots = 0;
        }
    }
    if (colons > 1)
        return 6;
    if (rest > 0 && digits_dots)
        return 4;
    return 0;
}

/* 1 to 3 digits; advances *p. */
static int octet(const char **p, int *out)
{
    int n = 0, v = 0;
    while (n < 3 && is_digit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n > 0 ? 0 : -1;
}

static int normalize_ipv4(const char *addr, aigw_norm_host_t *out, char *err, size_t errlen)
{
    const char *p = addr;
    int o[4];
    long port = -1;
    for (int i = 0; i < 4; i++) {
        if (octet(&p, &o[i]) < 0)
            return fail(err, errlen, "invalid ipv4 address: %s", addr);
        if (i < 3) {
            if (*p != '.')
                return fail(err, errlen, "invalid ipv4 address: %s", addr);
            p++;
        }
    }
    if (strchr(addr, ':')) {
        if (*p != ':' || !is_digit((unsigned char)p[1]))
            return fail(err, errlen, "invalid ipv4 address: %s", addr);
        p++;
        const char *d = p;
        while (is_digit((unsigned char)*p))
            p++;
        if (*p)
            return fail(err, errlen, "invalid ipv4 address: %s", addr);
        port = port_value(d, (size_t)(p - d));
    } else if (*p) {
        return fail(err, errlen, "invalid ipv4 address: %s", addr);
    }
    for (int i = 0; i < 4; i++)
        if (o[i] > 255)
            return fail(err, errlen, "invalid ipv4 address: %s", addr);
    if (port > 65535)
        return fail(err, errlen, "invalid port number");
    out->type = 4;
    out->port = (int)port;
    snprintf(out->host, sizeof(out->host), "%d.%d.%d.%d", o[0], o[1], o[2], o[3]);
    return 0;
}

static int normalize_ipv6(const char *addr, aigw_norm_host_t *out, char *err, size_t errlen)
{
    char check[300];
    size_t alen = strlen(addr);
    long port = -1;
    const char *body = addr;
    size_t blen = alen;

    if (alen > 200)
        return fail(err, errlen, "invalid ipv6 address: %s", addr);
    if (addr[0] == '[') {
        /* Lua's %b[]: the bracket balancing the first one. */
        int depth = 0;
        size_t close = 0;
        for (size_t i = 0; i < alen; i++) {
            if (addr[i] == '[')
                depth++;
            else if (addr[i] == ']' && --depth == 0) {
                close = i;
                break;
            }
        }
        if (close) {
            body = addr + 1;
            blen = close - 1;
            const char *rest = addr + close + 1;
            if (*rest) {
                if (rest[0] != ':')
                    return fail(err, errlen, "invalid ipv6 address");
                const char *d = rest + 1;
                size_t dn = strlen(d);
                if (dn == 0)
                    return fail(err, errlen, "invalid ipv6 address");
                for (size_t i = 0; i < dn; i++)
                    if (!is_digit((unsigned char)d[i]))
                        return fail(err, errlen, "invalid ipv6 address");
                port = port_value(d, dn);
                if (port > 65535)
                    return fail(err, errlen, "invalid port number");
            }
        }
    }

    /* Leading/trailing ':' get a 0; the first "::" expands to the missing groups. */
    size_t n = 0;
    if (blen > 0 && body[0] == ':')
        check[n++] = '0';
    memcpy(check + n, body, blen);
    n += blen;
    if (blen > 0 && body[blen - 1] == ':')
        check[n++] = '0';
    check[n] = '\0';

    char *dc = strstr(check, "::");
    if (dc) {
        int colons = 0;
        for (size_t i = 0; i < n; i++)
            if (check[i] == ':')
                colons++;
        char tmp[300];
        size_t t = 0;
        size_t pre = (size_t)(dc - check);
        memcpy(tmp, check, pre);
        t = pre;
        tmp[t++] = ':';
        for (int i = 0; i < 8 - colons && t < sizeof(tmp) - 4; i++) {
            tmp[t++] = '0';
            tmp[t++] = ':';
        }
        size_t post = n - pre - 2;
        if (t + post >= sizeof(tmp))
            return fail(err, errlen, "invalid ipv6 address: %s", addr);
        memcpy(tmp + t, dc + 2, post);
        t += post;
        tmp[t] = '\0';
        memcpy(check, tmp, t + 1);
        n = t;
    }

    /* Exactly 8 groups of 1 to 4 hex digits. */
    char normal[40];
    size_t w = 0;
    const char *p = check;
    for (int g = 0; g < 8; g++) {
        const char *s = p;
        while (is_xdigit((unsigned char)*p) && p - s < 5)
            p++;
        size_t gl = (size_t)(p - s);
        if (gl < 1 || gl > 4)
            return fail(err, errlen, "invalid ipv6 address: %s", addr);
        for (size_t z = gl; z < 4; z++)
            normal[w++] = '0';
        for (size_t i = 0; i < gl; i++) {
            char c = s[i];
            normal[w++] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
        }
        if (g < 7) {
            if (*p != ':')
                return fail(err, errlen, "invalid ipv6 address: %s", addr);
            p++;
            normal[w++] = ':';
        }
    }
    if (*p)
        return fail(err, errlen, "invalid ipv6 address: %s", addr);
    normal[w] = '\0';
    out->type = 6;
    out->port = (int)port;
    memcpy(out->host, normal, w + 1);
    return 0;
}

static int check_hostname(const char *addr, aigw_norm_host_t *out, char *err, size_t errlen)
{
    size_t len = strlen(addr), nlen = len;
    long port = -1;
    size_t i = len;
    while (i > 0 && is_digit((unsigned char)addr[i - 1]))
        i--;
    if (i < len && i > 0 && addr[i - 1] == ':') {
        port = port_value(addr + i, len - i);
        nlen = i - 1;
        if (port > 65535)
            return fail(err, errlen, "invalid port number");
    }
    if (nlen == 0)
        return fail(err, errlen, "invalid hostname: %s", addr);
    for (size_t k = 0; k < nlen; k++) {
        int c = (unsigned char)addr[k];
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
            return fail(err, errlen, "invalid hostname: %s", addr);
    }
    /* No segment may end in '-'; only the last one may be empty (a trailing dot). */
    size_t seg = 0;
    for (size_t k = 0; k <= nlen; k++) {
        if (k == nlen || addr[k] == '.') {
            size_t sl = k - seg;
            if (sl > 0 && addr[k - 1] == '-')
                return fail(err, errlen, "invalid hostname: %s", addr);
            if (sl == 0 && k != nlen)
                return fail(err, errlen, "invalid hostname: %s", addr);
            seg = k + 1;
        }
    }
    if (nlen >= sizeof(out->host))
        return fail(err, errlen, "invalid hostname: %s", addr);
    out->type = 0;
    out->port = (int)port;
    memcpy(out->host, addr, nlen);
    out->host[nlen] = '\0';
    return 0;
}

int aigw_schema_normalize_host(const char *s, aigw_norm_host_t *out, char *err, size_t errlen)
{
    aigw_norm_host_t tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof(*out));
    out->port = -1;
    switch (hostname_type(s)) {
    case 4:
        return normalize_ipv4(s, out, err, errlen);
    case 6:
        return normalize_ipv6(s, out, err, errlen);
    default:
        return check_hostname(s, out, err, errlen);
    }
}

char *aigw_schema_format_target(const char *s)
{
    aigw_norm_host_t h;
    char err[64];
    if (!s || aigw_schema_normalize_host(s, &h, err, sizeof(err)) < 0)
        return NULL;
    int port = h.port >= 0 ? h.port : 8000;
    size_t cap = strlen(h.host) + 16;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    if (h.type == 6)
        snprintf(out, cap, "[%s]:%d", h.host, port);
    else
        snprintf(out, cap, "%s:%d", h.host, port);
    return out;
}

/* ---- URLs (LuaSocket url.parse) -------------------------------------------------------------- */

int aigw_schema_url_parse(const char *s, aigw_url_parts_t *o)
{
    memset(o, 0, sizeof(*o));
    if (!s || !*s)
        return -1;
    const char *p = s, *end = s + strlen(s);

    /* fragment: "#(.*)$" from the first '#' */
    const char *h = memchr(p, '#', (size_t)(end - p));
    if (h) {
        o->fragment = h + 1;
        o->fragment_n = (size_t)(end - h - 1);
        end = h;
    }
    /* scheme: "^([%w][%w%+%-%.]*)%:" */
    if (p < end && is_alnum((unsigned char)*p)) {
        const char *q = p + 1;
        while (q < end && (is_alnum((unsigned char)*q) || *q == '+' || *q == '-' || *q == '.'))
            q++;
        if (q < end && *q == ':') {
            o->scheme = p;
            o->scheme_n = (size_t)(q - p);
            p = q + 1;
        }
    }
    /* authority: "^//([^/]*)" */
    const char *auth = NULL, *auth_end = NULL;
    if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
        auth = p + 2;
        auth_end = auth;
        while (auth_end < end && *auth_end != '/')
            auth_end++;
        p = auth_end;
    }
    /* query: "%?(.*)" from the first '?'; then params: "%;(.*)" */
    const char *q = memchr(p, '?', (size_t)(end - p));
    if (q) {
        o->query = q + 1;
        o->query_n = (size_t)(end - q - 1);
        end = q;
    }
    const char *sc = memchr(p, ';', (size_t)(end - p));
    if (sc)
        end = sc;
    if (end > p) {
        o->path = p;
        o->path_n = (size_t)(end - p);
    }
    if (!auth)
        return 0;
    /* userinfo "^([^@]*)@", then port ":([^:]*)$", the rest is the host */
    const char *at = memchr(auth, '@', (size_t)(auth_end - auth));
    if (at)
        auth = at + 1;
    const char *colon = NULL;
    for (const char *c = auth; c < auth_end; c++)
        if (*c == ':')
            colon = c;
    if (colon) {
        o->port = colon + 1;
        o->port_n = (size_t)(auth_end - colon - 1);
        auth_end = colon;
    }
    if (auth_end > auth) {
        o->host = auth;
        o->host_n = (size_t)(auth_end - auth);
    }
    return 0;
}

/* ---- paths ----------------------------------------------------------------------------------- */

enum { PATH_OK = 0, PATH_RFC3986, PATH_PERCENT };

/* typedefs.lua validate_path: RFC 3986 characters, then well-formed percent-encoding. */
static int validate_path(const char *path, char *msg, size_t len)
{
    static const char allowed[] = ".-_~/%:@!$&'()*+,;=";
    if (path[0] != '/')
        goto bad_chars;
    for (const char *p = path + 1; *p; p++)
        if (!is_alnum((unsigned char)*p) && !strchr(allowed, *p))
            goto bad_chars;
    {
        size_t n = strlen(path);
        char *raw = malloc(n + 1);
        if (!raw)
            return PATH_OK;
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            if (path[i] == '%' && i + 2 < n && is_xdigit((unsigned char)path[i + 1]) &&
                is_xdigit((unsigned char)path[i + 2])) {
                raw[w++] = '_';
                raw[w++] = '_';
                raw[w++] = '_';
                i += 3;
            } else {
                raw[w++] = path[i++];
            }
        }
        raw[w] = '\0';
        char *pc = strchr(raw, '%');
        if (pc) {
            size_t k = strlen(pc);
            fail(msg, len, "invalid url-encoded value: '%.*s'", (int)(k < 3 ? k : 3), pc);
            free(raw);
            return PATH_PERCENT;
        }
        free(raw);
        return PATH_OK;
    }
bad_chars:
    fail(msg, len, "invalid path: '%s' (characters outside of the reserved list of RFC 3986 found)",
         path);
    return PATH_RFC3986;
}

int aigw_schema_check_path(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (s[0] != '/')
        return fail(msg, len, "should start with: /");
    if (strstr(s, "//"))
        return fail(msg, len, "must not have empty segments");
    return validate_path(s, msg, len) == PATH_OK ? 0 : -1;
}

static int reserved_char(int c)
{
    return c && strchr("!*'();:@&=+$,/?%#[]", c) != NULL;
}

char *aigw_schema_normalize_path(const char *uri)
{
    size_t n = strlen(uri);
    if (n == 0 || (n == 1 && uri[0] == '/'))
        return strdup(uri);

    char *dec = malloc(n + 1);
    if (!dec)
        return NULL;
    size_t dn = 0;
    for (size_t i = 0; i < n;) {
        if (uri[i] == '%' && i + 2 < n && is_xdigit((unsigned char)uri[i + 1]) &&
            is_xdigit((unsigned char)uri[i + 2])) {
            int c = aigw_hex_digit((unsigned char)uri[i + 1]) * 16 +
                    aigw_hex_digit((unsigned char)uri[i + 2]);
            if (c == 0 || reserved_char(c)) {
                dec[dn++] = '%';
                dec[dn++] = (char)(uri[i + 1] >= 'a' ? uri[i + 1] - 32 : uri[i + 1]);
                dec[dn++] = (char)(uri[i + 2] >= 'a' ? uri[i + 2] - 32 : uri[i + 2]);
            } else {
                dec[dn++] = (char)c;
            }
            i += 3;
        } else {
            dec[dn++] = uri[i++];
        }
    }
    dec[dn] = '\0';
    if (!memchr(dec, '.', dn) && !strstr(dec, "//"))
        return dec;

    /* Remove dot segments and merge slashes (kong.tools.uri.normalize). */
    typedef struct {
        const char *p;
        size_t n;
    } seg_t;
    seg_t *out = calloc(dn + 1, sizeof(*out));
    if (!out) {
        free(dec);
        return NULL;
    }
    size_t on = 0;
    const char *u = dec;
    size_t rem = dn;
    while (rem > 0) {
        char c1 = u[0], c2 = rem > 1 ? u[1] : 0, c3 = rem > 2 ? u[2] : 0, c4 = rem > 3 ? u[3] : 0;
        if (rem == 2 && c1 == '/' && c2 == '.') {
            u = "/";
            rem = 1;
        } else if (rem == 3 && c1 == '/' && c2 == '.' && c3 == '.') {
            u = "/";
            rem = 1;
            if (on > 0)
                on--;
        } else if ((rem == 1 && c1 == '.') || (rem == 2 && c1 == '.' && c2 == '.')) {
            rem = 0;
        } else if (c1 == '.' && c2 == '.' && c3 == '/') {
            u += 3;
            rem -= 3;
        } else if (c1 == '.' && c2 == '/') {
            u += 2;
            rem -= 2;
        } else if (c1 == '/' && c2 == '.' && c3 == '/') {
            u += 2;
            rem -= 2;
        } else if (c1 == '/' && c2 == '.' && c3 == '.' && c4 == '/') {
            u += 3;
            rem -= 3;
            if (on > 0)
                on--;
        } else if (c1 == '/' && c2 == '/') {
            u += 1;
            rem -= 1;
        } else {
            const char *sl = rem > 1 ? memchr(u + 1, '/', rem - 1) : NULL;
            size_t sn = sl ? (size_t)(sl - u) : rem;
            out[on].p = u;
            out[on].n = sn;
            on++;
            u += sn;
            rem -= sn;
        }
    }
    size_t total = 0;
    for (size_t i = 0; i < on; i++)
        total += out[i].n;
    char *res = malloc(total + 1);
    if (res) {
        size_t w = 0;
        for (size_t i = 0; i < on; i++) {
            memcpy(res + w, out[i].p, out[i].n);
            w += out[i].n;
        }
        res[w] = '\0';
    }
    free(out);
    free(dec);
    return res;
}

int aigw_schema_check_router_path(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (!(s[0] == '/' || (s[0] == '~' && s[1] == '/')))
        return fail(msg, len, "should start with: / (fixed path) or ~/ (regex path)");
    if (strstr(s, "//"))
        return fail(msg, len, "must not have empty segments");
    /* Only the percent-encoding part of validate_path applies to router paths. */
    char tmp[512];
    if (validate_path(s, tmp, sizeof(tmp)) == PATH_PERCENT)
        return fail(msg, len, "%s", tmp);
    if (s[0] != '~') {
        char *norm = aigw_schema_normalize_path(s);
        int rc = 0;
        if (norm && strcmp(norm, s) != 0)
            rc = fail(msg, len, "non-normalized path, consider use '%s' instead", norm);
        free(norm);
        return rc;
    }
    const char *re = s + 1;
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED,
                                     &errcode, &erroff, NULL);
    if (code) {
        pcre2_code_free(code);
        return 0;
    }
    PCRE2_UCHAR ebuf[256];
    if (pcre2_get_error_message(errcode, ebuf, sizeof(ebuf)) < 0)
        ebuf[0] = '\0';
    if (erroff >= strlen(re))
        return fail(msg, len,
                    "invalid regex: '%s' (PCRE returned: pcre2_compile() failed: %s in \"%s\")",
                    re, (const char *)ebuf, re);
    return fail(msg, len,
                "invalid regex: '%s' (PCRE returned: pcre2_compile() failed: %s in \"%s\" "
                "at \"%s\")",
                re, (const char *)ebuf, re, re + erroff);
}

/* ---- host-like strings ----------------------------------------------------------------------- */

int aigw_schema_check_host(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    aigw_norm_host_t h;
    char err[320];
    if (aigw_schema_normalize_host(s, &h, err, sizeof(err)) < 0) {
        if (strcmp(err, "invalid port number") == 0)
            return fail(msg, len, "must not have a port");
        return fail(msg, len, "invalid value: %s", s);
    }
    if (h.port >= 0)
        return fail(msg, len, "must not have a port");
    return 0;
}

int aigw_schema_check_host_port(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    char err[320];
    if (aigw_schema_normalize_host(json_string_value(v), NULL, err, sizeof(err)) < 0)
        return fail(msg, len, "%s", err);
    return 0;
}

/* validate_sni / the tail of validate_wildcard_host; `shown` is what the message names. */
static int sni_like(const char *host, char *msg, size_t len)
{
    aigw_norm_host_t h;
    char err[320];
    if (aigw_schema_normalize_host(host, &h, err, sizeof(err)) < 0) {
        if (strcmp(err, "invalid port number") == 0)
            return fail(msg, len, "must not have a port");
        return fail(msg, len, "invalid value: %s", host);
    }
    if (h.type != 0)
        return fail(msg, len, "must not be an IP");
    if (h.port >= 0)
        return fail(msg, len, "must not have a port");
    return 0;
}

int aigw_schema_check_sni(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    return sni_like(json_string_value(v), msg, len);
}

int aigw_schema_check_wildcard_host(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    const char *star = strchr(s, '*');
    if (!star)
        return sni_like(s, msg, len);
    if (star != s && star != s + n - 1)
        return fail(msg, len, "wildcard must be leftmost or rightmost character");
    size_t stars = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '*')
            stars++;
    if (stars > 1)
        return fail(msg, len, "only one wildcard must be specified");
    char mock[300];
    if (n + 8 >= sizeof(mock))
        return fail(msg, len, "invalid value: %s", s);
    size_t pre = (size_t)(star - s);
    memcpy(mock, s, pre);
    memcpy(mock + pre, "wildcard", 8);
    memcpy(mock + pre + 8, star + 1, n - pre - 1);
    mock[n + 7] = '\0';
    return sni_like(mock, msg, len);
}

int aigw_schema_check_route_host(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = strlen(s), stars = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '*')
            stars++;
    if (stars > 1)
        return fail(msg, len, "invalid wildcard: must have at most one wildcard");
    if (stars == 1 && !(n >= 2 && s[0] == '*' && s[1] == '.') &&
        !(n >= 2 && s[n - 2] == '.' && s[n - 1] == '*'))
        return fail(msg, len, "invalid wildcard: must be placed at leftmost or rightmost label");
    /* validate_host_with_wildcards: '*' becomes "abc", then host[:port]. */
    char mock[300];
    if (n + 3 >= sizeof(mock))
        return fail(msg, len, "invalid hostname: %s", s);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '*') {
            memcpy(mock + w, "abc", 3);
            w += 3;
        } else {
            mock[w++] = s[i];
        }
    }
    mock[w] = '\0';
    char err[320];
    if (aigw_schema_normalize_host(mock, NULL, err, sizeof(err)) < 0)
        return fail(msg, len, "%s", err);
    return 0;
}

int aigw_schema_check_upstream_name(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    char shown[300];
    if (utf8_bad_at((const unsigned char *)s, strlen(s)))
        snprintf(shown, sizeof(shown), "Invalid name");
    else
        snprintf(shown, sizeof(shown), "Invalid name ('%s')", s);
    aigw_norm_host_t h;
    char err[320];
    if (aigw_schema_normalize_host(s, &h, err, sizeof(err)) < 0)
        return fail(msg, len, "%s; must be a valid hostname", shown);
    if (h.type != 0)
        return fail(msg, len, "%s; no ip addresses allowed", shown);
    if (h.port >= 0)
        return fail(msg, len, "%s; no port allowed", shown);
    return 0;
}

/* Kong's targets DAO formats the target before validating and reports this text on POST/PUT. */
int aigw_schema_check_target(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    char err[320];
    if (aigw_schema_normalize_host(json_string_value(v), NULL, err, sizeof(err)) < 0)
        return fail(msg, len, "Invalid target; not a valid hostname or ip address");
    return 0;
}

/* ---- IPs ------------------------------------------------------------------------------------- */

static int valid_ipv4(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1;
}

static int valid_ipv6(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET6, s, buf) == 1;
}

/* kong.tools.ip split_cidr: the '/' from the 3rd character on; the prefix must be the exact
 * decimal text of 0..max. */
static int valid_cidr(const char *s, int v6)
{
    const char *sl = strlen(s) > 2 ? strchr(s + 2, '/') : NULL;
    if (!sl)
        return 0;
    const char *pfx = sl + 1;
    size_t pn = strlen(pfx);
    if (pn == 0 || pn > 3 || (pn > 1 && pfx[0] == '0'))
        return 0;
    int val = 0;
    for (size_t i = 0; i < pn; i++) {
        if (!is_digit((unsigned char)pfx[i]))
            return 0;
        val = val * 10 + (pfx[i] - '0');
    }
    if (val > (v6 ? 128 : 32))
        return 0;
    char ip[64];
    size_t in = (size_t)(sl - s);
    if (in >= sizeof(ip))
        return 0;
    memcpy(ip, s, in);
    ip[in] = '\0';
    return v6 ? valid_ipv6(ip) : valid_ipv4(ip);
}

int aigw_schema_check_ip(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (valid_ipv4(s) || valid_ipv6(s))
        return 0;
    return fail(msg, len, "not an ip address: %s", s);
}

int aigw_schema_check_ip_or_cidr(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (valid_ipv4(s) || valid_ipv6(s) || valid_cidr(s, 0) || valid_cidr(s, 1))
        return 0;
    return fail(msg, len, "invalid ip or cidr range: '%s'", s);
}

int aigw_schema_check_ip_or_cidr_v4(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (valid_ipv4(s) || valid_cidr(s, 0))
        return 0;
    return fail(msg, len, "invalid ipv4 cidr range: '%s'", s);
}

int aigw_schema_check_ip_port_record(const json_t *v, char *msg, size_t len)
{
    if (!json_is_object(v))
        return 0;
    if (is_nonempty(json_object_get(v, "ip")) || is_nonempty(json_object_get(v, "port")))
        return 0;
    return fail(msg, len, "at least one of these fields must be non-empty: 'ip', 'port'");
}

/* ---- names, tags, headers, methods ----------------------------------------------------------- */

int aigw_schema_check_tag(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    size_t bad = utf8_bad_at((const unsigned char *)s, n);
    if (bad)
        return fail(msg, len, "invalid utf-8 character sequence detected at position %zu", bad);
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c == ' ' || (c >= 33 && c <= 43) || c == 45 || c == 46 || (c >= 48 && c <= 126) ||
            (c >= 128 && c <= 244))
            continue;
        return fail(msg, len,
                    "invalid tag '%s': expected printable ascii (except `,` and `/`) or valid "
                    "utf-8 sequences",
                    s);
    }
    return 0;
}

static int header_name_ok(const char *name, char *msg, size_t len)
{
    if (!*name)
        return fail(msg, len, "no header name provided");
    for (const char *p = name; *p; p++)
        if (!is_alnum((unsigned char)*p) && *p != '-' && *p != '_')
            return fail(msg, len,
                        "bad header name '%s', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
                        name);
    return 0;
}

int aigw_schema_check_header_name(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    return header_name_ok(json_string_value(v), msg, len);
}

static int headers_map(const json_t *v, int forbid_host, char *msg, size_t len)
{
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return 0;
    json_object_foreach(unconst(v), key, val) {
        (void)val;
        if (forbid_host && strcasecmp(key, "host") == 0)
            return fail(msg, len,
                        "cannot contain 'host' header, which must be specified in the 'hosts' "
                        "attribute");
        if (header_name_ok(key, msg, len) < 0)
            return -1;
    }
    return 0;
}

int aigw_schema_check_headers(const json_t *v, char *msg, size_t len)
{
    return headers_map(v, 0, msg, len);
}

int aigw_schema_check_route_headers(const json_t *v, char *msg, size_t len)
{
    return headers_map(v, 1, msg, len);
}

int aigw_schema_check_cookie_name(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (!*s)
        return fail(msg, len, "no token provided");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 32 || *p >= 127 || strchr(" \t()<>@,;:\\\"/?={}[]", *p))
            return fail(msg, len,
                        "contains one or more invalid characters. ASCII control characters "
                        "(0-31;127), space, tab and the characters ()<>@,;:\\\"/?={}[] are not "
                        "allowed.");
    }
    return 0;
}

int aigw_schema_check_http_method(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    if (!*s)
        return fail(msg, len, "invalid value: %s", s);
    for (const char *p = s; *p; p++)
        if (!is_upper((unsigned char)*p))
            return fail(msg, len, "invalid value: %s", s);
    return 0;
}

int aigw_schema_check_url(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    aigw_url_parts_t u;
    if (aigw_schema_url_parse(json_string_value(v), &u) < 0)
        return fail(msg, len, "could not parse url. invalid url");
    if (!u.host)
        return fail(msg, len, "missing host in url");
    if (!u.scheme)
        return fail(msg, len, "missing scheme in url");
    return 0;
}

int aigw_schema_check_redirect_uri(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    aigw_url_parts_t u;
    if (aigw_schema_url_parse(s, &u) < 0 || !u.host || !u.scheme)
        return fail(msg, len, "cannot parse '%s'", s);
    if (u.fragment)
        return fail(msg, len, "fragment not allowed in '%s'", s);
    return 0;
}

/* ---- route protocols ------------------------------------------------------------------------- */

static const char *const proto_subsets[][4] = {
    { "http", "https", NULL, NULL },
    { "tcp", "tls", "udp", NULL },
    { "tls_passthrough", NULL, NULL, NULL },
    { "grpc", "grpcs", NULL, NULL },
};
#define N_SUBSETS (sizeof(proto_subsets) / sizeof(proto_subsets[0]))

static int subset_of(const char *p)
{
    for (size_t i = 0; i < N_SUBSETS; i++)
        for (size_t j = 0; proto_subsets[i][j]; j++)
            if (strcmp(p, proto_subsets[i][j]) == 0)
                return (int)i;
    return -1;
}

int aigw_schema_check_route_protocols(const json_t *v, char *msg, size_t len)
{
    if (!json_is_array(v))
        return 0;
    int order[N_SUBSETS];
    size_t n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(unconst(v), i, e) {
        if (!json_is_string(e))
            continue;
        int s = subset_of(json_string_value(e));
        if (s < 0)
            continue;
        int seen = 0;
        for (size_t k = 0; k < n; k++)
            if (order[k] == s)
                seen = 1;
        if (!seen)
            order[n++] = s;
    }
    if (n <= 1)
        return 0;
    char buf[256];
    size_t w = 0;
    for (size_t k = 0; k < n; k++) {
        w += (size_t)snprintf(buf + w, sizeof(buf) - w, "%s(", k ? ", " : "");
        for (size_t j = 0; proto_subsets[order[k]][j] && w < sizeof(buf); j++)
            w += (size_t)snprintf(buf + w, sizeof(buf) - w, "%s'%s'", j ? ", " : "",
                                  proto_subsets[order[k]][j]);
        if (w < sizeof(buf))
            w += (size_t)snprintf(buf + w, sizeof(buf) - w, ")");
        if (w >= sizeof(buf))
            break;
    }
    return fail(msg, len, "these sets are mutually exclusive: %s", buf);
}

/* ---- OpenSSL --------------------------------------------------------------------------------- */

/* Never prompt for a passphrase (OpenSSL's default callback reads the terminal). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* lua-resty-openssl's error text: "<ctx>: <openssl error>:<file>:<line>:". */
static void ssl_error(char *msg, size_t len, const char *prefix, const char *ctx)
{
    const char *file = NULL;
    int line = 0;
    unsigned long code = ERR_peek_last_error_all(&file, &line, NULL, NULL, NULL);
    if (!code) {
        fail(msg, len, "%s%s failed", prefix, ctx);
    } else {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof(buf));
        const char *f = file ? strchr(file, '/') : NULL;
        f = f ? f + 1 : (file ? file : "");
        fail(msg, len, "%s%s: %s:%s:%d:", prefix, ctx, buf, f, line);
    }
    ERR_clear_error();
}

static X509 *load_cert(const char *s, size_t n)
{
    X509 *x = NULL;
    BIO *b = BIO_new_mem_buf(s, (int)n);
    if (b) {
        x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        BIO_free(b);
    }
    if (!x) {
        const unsigned char *p = (const unsigned char *)s;
        x = d2i_X509(NULL, &p, (long)n);
    }
    return x;
}

static EVP_PKEY *load_key(const char *s, size_t n)
{
    EVP_PKEY *k = NULL;
    BIO *b = BIO_new_mem_buf(s, (int)n);
    if (b) {
        k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
        BIO_free(b);
    }
    if (!k && (b = BIO_new_mem_buf(s, (int)n)) != NULL) {
        k = PEM_read_bio_PUBKEY(b, NULL, no_passphrase, NULL);
        BIO_free(b);
    }
    if (!k) {
        const unsigned char *p = (const unsigned char *)s;
        k = d2i_AutoPrivateKey(NULL, &p, (long)n);
    }
    if (!k) {
        const unsigned char *p = (const unsigned char *)s;
        k = d2i_PUBKEY(NULL, &p, (long)n);
    }
    return k;
}

int aigw_schema_check_certificate(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    ERR_clear_error();
    X509 *x = load_cert(json_string_value(v), json_string_length(v));
    if (!x) {
        ssl_error(msg, len, "invalid certificate: ", "x509.new");
        return -1;
    }
    X509_free(x);
    ERR_clear_error();
    return 0;
}

int aigw_schema_check_key(const json_t *v, char *msg, size_t len)
{
    if (!json_is_string(v))
        return 0;
    ERR_clear_error();
    EVP_PKEY *k = load_key(json_string_value(v), json_string_length(v));
    if (!k) {
        ssl_error(msg, len, "invalid key: ", "pkey.new:load_key");
        return -1;
    }
    EVP_PKEY_free(k);
    ERR_clear_error();
    return 0;
}

int aigw_schema_cert_digest(const char *pem, char out[65])
{
    out[0] = '\0';
    if (!pem)
        return -1;
    X509 *x = load_cert(pem, strlen(pem));
    ERR_clear_error();
    if (!x)
        return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = X509_digest(x, EVP_sha256(), md, &mdlen);
    X509_free(x);
    if (!ok || mdlen != 32)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* 1 match, 0 mismatch, -1 when either does not parse (the field checks report that). */
static int cert_matches_key(const char *cert, const char *key)
{
    X509 *x = load_cert(cert, strlen(cert));
    EVP_PKEY *k = load_key(key, strlen(key));
    int rc = -1;
    if (x && k) {
        EVP_PKEY *pub = X509_get0_pubkey(x);
        rc = pub && EVP_PKEY_eq(pub, k) == 1;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return rc;
}

/* ---- shorthands ------------------------------------------------------------------------------ */

/* A shorthand's own value must be a non-empty string (Kong validates it as {type="string"}). */
static int shorthand_string(json_t *obj, const char *name, json_t *field_errors)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_string(v) && json_string_length(v) == 0) {
        field_error(field_errors, name, "length must be at least 1");
        return -1;
    }
    if (v && !json_is_string(v) && !json_is_null(v)) {
        field_error(field_errors, name, "expected a string");
        return -1;
    }
    return 0;
}

/* Lua's tonumber for a URL port: digits give a number, anything else stays a string. */
static json_t *url_port_value(const char *p, size_t n)
{
    if (n > 0 && n <= 15) {
        size_t i = 0;
        while (i < n && is_digit((unsigned char)p[i]))
            i++;
        if (i == n) {
            long long v = 0;
            for (i = 0; i < n; i++)
                v = v * 10 + (p[i] - '0');
            return json_integer(v);
        }
    }
    return json_stringn(p, n);
}

int aigw_schema_shorthand_service(json_t *obj, json_t *field_errors)
{
    json_t *url = json_object_get(obj, "url");
    if (!url)
        return 0;
    if (shorthand_string(obj, "url", field_errors) < 0) {
        json_object_del(obj, "url");
        return -1;
    }
    if (json_is_null(url)) {
        json_object_del(obj, "url");
        return 0;
    }
    aigw_url_parts_t u;
    if (aigw_schema_url_parse(json_string_value(url), &u) < 0) {
        json_object_del(obj, "url");
        return 0;
    }
    json_t *port = u.port ? url_port_value(u.port, u.port_n) : NULL;
    const char *prot = NULL;
    if (json_is_integer(port) && json_integer_value(port) == 80)
        prot = "http";
    else if (json_is_integer(port) && json_integer_value(port) == 443)
        prot = "https";
    json_t *protocol = u.scheme ? json_stringn(u.scheme, u.scheme_n)
                                : json_string(prot ? prot : "http");
    if (!port) {
        const char *ps = json_string_value(protocol);
        port = json_integer(strcmp(ps, "https") == 0 ? 443 : 80);
    }
    json_object_set_new(obj, "protocol", protocol);
    json_object_set_new(obj, "host", u.host ? json_stringn(u.host, u.host_n) : json_null());
    json_object_set_new(obj, "port", port);
    json_object_set_new(obj, "path", u.path ? json_stringn(u.path, u.path_n) : json_null());
    json_object_del(obj, "url");
    return 0;
}

/* The subschema Kong picks for a route: its first protocol that names one. */
enum { SUB_NONE = -1, SUB_HTTP = 0, SUB_STREAM, SUB_GRPC };

static int route_subschema(const json_t *protocols)
{
    size_t i;
    json_t *e;
    if (!json_is_array(protocols))
        return SUB_HTTP; /* the default ["http","https"] */
    json_array_foreach(unconst(protocols), i, e) {
        const char *p = json_string_value(e);
        if (!p)
            continue;
        if (!strcmp(p, "http") || !strcmp(p, "https"))
            return SUB_HTTP;
        if (!strcmp(p, "grpc") || !strcmp(p, "grpcs"))
            return SUB_GRPC;
        if (!strcmp(p, "tcp") || !strcmp(p, "tls") || !strcmp(p, "udp") ||
            !strcmp(p, "tls_passthrough"))
            return SUB_STREAM;
    }
    return SUB_NONE;
}

int aigw_schema_shorthand_route(json_t *obj, json_t *field_errors)
{
    (void)field_errors;
    /* The grpc subschema's strip_path defaults to false. */
    json_t *protocols = json_object_get(obj, "protocols");
    if (protocols && route_subschema(protocols) == SUB_GRPC && !json_object_get(obj, "strip_path"))
        json_object_set_new(obj, "strip_path", json_false());
    return 0;
}

int aigw_schema_shorthand_upstream(json_t *obj, json_t *field_errors)
{
    int rc = 0;
    /* algorithm: least-connections and latency do not hash. */
    json_t *alg = json_object_get(obj, "algorithm");
    if (alg) {
        if (shorthand_string(obj, "algorithm", field_errors) < 0) {
            rc = -1;
        } else if (json_is_string(alg) && (!strcmp(json_string_value(alg), "least-connections") ||
                                           !strcmp(json_string_value(alg), "latency"))) {
            json_object_set_new(obj, "hash_on", json_null());
        }
    }
    /* hash_on: null means none; none means round-robin; anything else consistent-hashing. */
    json_t *hash_on = json_object_get(obj, "hash_on");
    if (hash_on) {
        if (shorthand_string(obj, "hash_on", field_errors) < 0) {
            rc = -1;
        } else if (json_is_null(hash_on)) {
            json_object_set_new(obj, "hash_on", json_string("none"));
        } else if (!strcmp(json_string_value(hash_on), "none")) {
            json_object_set_new(obj, "algorithm", json_string("round-robin"));
        } else {
            json_object_set_new(obj, "algorithm", json_string("consistent-hashing"));
        }
    }
    return rc;
}

int aigw_schema_shorthand_target(json_t *obj, json_t *field_errors)
{
    (void)field_errors;
    json_t *t = json_object_get(obj, "target");
    if (!json_is_string(t))
        return 0;
    char *f = aigw_schema_format_target(json_string_value(t));
    if (f) {
        json_object_set_new(obj, "target", json_string(f));
        free(f);
    }
    return 0;
}

int aigw_schema_shorthand_ca_certificate(json_t *obj, json_t *field_errors)
{
    (void)field_errors;
    const char *cert = str_field(obj, "cert");
    char digest[65];
    if (cert && aigw_schema_cert_digest(cert, digest) == 0)
        json_object_set_new(obj, "cert_digest", json_string(digest));
    return 0;
}

/* ---- entity checks --------------------------------------------------------------------------- */

static const char *const no_path_protocols[] = { "tcp", "tls", "udp", "grpc", "grpcs", NULL };
static const char *const tls_protocols[] = { "https", "tls", NULL };

int aigw_schema_echeck_service(const aigw_entity_t *e, const json_t *obj, json_t *entity_errors,
                               json_t *field_errors)
{
    static const char *const tls_only[] = { "client_certificate", "tls_verify", "tls_verify_depth",
                                            "ca_certificates", NULL };
    static const char cond[] = "failed conditional validation given value of field 'protocol'";
    (void)e;
    const char *proto = str_field(obj, "protocol");
    int rc = 0;
    if (!proto)
        return 0;
    if (in_list(proto, no_path_protocols) && !is_null(json_object_get(obj, "path"))) {
        field_error(field_errors, "path", "value must be null");
        entity_error(entity_errors, cond);
        rc = -1;
    }
    if (!in_list(proto, tls_protocols)) {
        for (const char *const *f = tls_only; *f; f++) {
            if (!is_null(json_object_get(obj, *f))) {
                field_error(field_errors, *f, "value must be null");
                entity_error(entity_errors, cond);
                rc = -1;
            }
        }
    }
    return rc;
}

static int array_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *e;
    json_array_foreach(unconst(arr), i, e)
        if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
            return 1;
    return 0;
}

/* Every element is one of list (and there is at least one). */
static int array_all_in(const json_t *arr, const char *const *list)
{
    size_t i;
    json_t *e;
    if (json_array_size(arr) == 0)
        return 0;
    json_array_foreach(unconst(arr), i, e)
        if (!json_is_string(e) || !in_list(json_string_value(e), list))
            return 0;
    return 1;
}

static int any_nonempty(const json_t *obj, const char *const *names)
{
    for (; *names; names++)
        if (is_nonempty(json_object_get(obj, *names)))
            return 1;
    return 0;
}

int aigw_schema_echeck_route(const aigw_entity_t *e, const json_t *obj, json_t *entity_errors,
                             json_t *field_errors)
{
    static const char *const http_must_null[] = { "sources", "destinations", NULL };
    static const char *const stream_must_null[] = { "methods", "hosts", "paths", "headers", NULL };
    static const char *const grpc_must_null[] = { "methods", "sources", "destinations", NULL };
    static const char *const sni_protocols[] = { "grpcs", "https", "tls", "tls_passthrough", NULL };
    static const char *const stream_l4[] = { "tcp", "tls", "udp", NULL };
    static const char *const passthrough[] = { "tls_passthrough", NULL };
    static const char *const https_any[] = { "methods", "hosts", "headers", "paths", "snis", NULL };
    static const char *const http_any[] = { "methods", "hosts", "headers", "paths", NULL };
    static const char *const stream_any[] = { "sources", "destinations", "snis", NULL };
    static const char *const snis_only[] = { "snis", NULL };
    static const char *const grpcs_any[] = { "hosts", "headers", "paths", "snis", NULL };
    static const char *const grpc_any[] = { "hosts", "headers", "paths", NULL };
    char buf[160];
    int rc = 0;
    (void)e;

    const json_t *protocols = json_object_get(obj, "protocols");
    if (!json_is_array(protocols))
        return 0;
    int sub = route_subschema(protocols);

    /* The subschema's field rules (Kong reports these as field errors). */
    if (sub == SUB_HTTP) {
        for (const char *const *f = http_must_null; *f; f++)
            if (!is_null(json_object_get(obj, *f))) {
                snprintf(buf, sizeof(buf),
                         "cannot set '%s' when 'protocols' is 'http' or 'https'", *f);
                field_error(field_errors, *f, buf);
                rc = -1;
            }
    } else if (sub == SUB_STREAM) {
        for (const char *const *f = stream_must_null; *f; f++)
            if (!is_null(json_object_get(obj, *f))) {
                snprintf(buf, sizeof(buf),
                         "cannot set '%s' when 'protocols' is 'tcp', 'tls', "
                         "'tls_passthrough' or 'udp'",
                         *f);
                field_error(field_errors, *f, buf);
                rc = -1;
            }
    } else if (sub == SUB_GRPC) {
        if (json_is_true(json_object_get(obj, "strip_path"))) {
            field_error(field_errors, "strip_path",
                        "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'");
            rc = -1;
        }
        for (const char *const *f = grpc_must_null; *f; f++)
            if (!is_null(json_object_get(obj, *f))) {
                snprintf(buf, sizeof(buf),
                         "cannot set '%s' when 'protocols' is 'grpc' or 'grpcs'", *f);
                field_error(field_errors, *f, buf);
                rc = -1;
            }
    }

    /* snis only with a TLS protocol. */
    int tls_free = 1;
    size_t i;
    json_t *p;
    json_array_foreach(unconst(protocols), i, p)
        if (!json_is_string(p) || in_list(json_string_value(p), sni_protocols))
            tls_free = 0;
    const json_t *snis = json_object_get(obj, "snis");
    if (tls_free && json_array_size(protocols) > 0 && json_is_array(snis) &&
        json_array_size(snis) != 0) {
        field_error(field_errors, "snis", "length must be 0");
        entity_error(entity_errors,
                     "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or "
                     "'tls_passthrough'");
        rc = -1;
    }

    /* The subschema's matching-criteria rules. */
    if (sub == SUB_HTTP) {
        if (array_has(protocols, "https")) {
            if (!any_nonempty(obj, https_any)) {
                entity_error(entity_errors, "must set one of 'methods', 'hosts', 'headers', "
                                            "'paths', 'snis' when 'protocols' is 'https'");
                rc = -1;
            }
        } else if (array_has(protocols, "http") && !any_nonempty(obj, http_any)) {
            entity_error(entity_errors,
                         "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' "
                         "is 'http'");
            rc = -1;
        }
    } else if (sub == SUB_STREAM) {
        if (array_all_in(protocols, stream_l4) && !any_nonempty(obj, stream_any)) {
            entity_error(entity_errors, "must set one of 'sources', 'destinations', 'snis' when "
                                        "'protocols' is 'tcp', 'tls' or 'udp'");
            rc = -1;
        }
        if (array_all_in(protocols, passthrough) && !any_nonempty(obj, snis_only)) {
            entity_error(entity_errors, "must set snis when 'protocols' is 'tls_passthrough'");
            rc = -1;
        }
    } else if (sub == SUB_GRPC) {
        if (array_has(protocols, "grpcs")) {
            if (!any_nonempty(obj, grpcs_any)) {
                entity_error(entity_errors, "must set one of 'hosts', 'headers', 'paths', 'snis' "
                                            "when 'protocols' is 'grpcs'");
                rc = -1;
            }
        } else if (array_has(protocols, "grpc") && !any_nonempty(obj, grpc_any)) {
            entity_error(entity_errors,
                         "must set one of 'hosts', 'headers', 'paths' when 'protocols' is 'grpc'");
            rc = -1;
        }
    }
    return rc;
}

int aigw_schema_echeck_consumer(const aigw_entity_t *e, const json_t *obj,
                                json_t *entity_errors, json_t *field_errors)
{
    (void)e;
    (void)field_errors;
    if (is_nonempty(json_object_get(obj, "custom_id")) ||
        is_nonempty(json_object_get(obj, "username")))
        return 0;
    entity_error(entity_errors,
                 "at least one of these fields must be non-empty: 'custom_id', 'username'");
    return -1;
}

int aigw_schema_echeck_certificate(const aigw_entity_t *e, const json_t *obj,
                                   json_t *entity_errors, json_t *field_errors)
{
    (void)e;
    (void)field_errors;
    int rc = 0;
    const char *cert = str_field(obj, "cert"), *key = str_field(obj, "key");
    const char *cert_alt = str_field(obj, "cert_alt"), *key_alt = str_field(obj, "key_alt");

    if (is_nonempty(json_object_get(obj, "cert_alt")) !=
        is_nonempty(json_object_get(obj, "key_alt"))) {
        entity_error(entity_errors,
                     "all or none of these fields must be set: 'cert_alt', 'key_alt'");
        rc = -1;
    }
    if (cert && key && cert_matches_key(cert, key) == 0) {
        entity_error(entity_errors, "certificate does not match key");
        rc = -1;
    }
    if (cert_alt && key_alt && cert_matches_key(cert_alt, key_alt) == 0) {
        entity_error(entity_errors, "alternative certificate does not match key");
        rc = -1;
    }
    if (cert && cert_alt) {
        X509 *a = load_cert(cert, strlen(cert)), *b = load_cert(cert_alt, strlen(cert_alt));
        EVP_PKEY *ka = a ? X509_get0_pubkey(a) : NULL, *kb = b ? X509_get0_pubkey(b) : NULL;
        if (ka && kb && EVP_PKEY_get_base_id(ka) == EVP_PKEY_get_base_id(kb)) {
            entity_error(entity_errors,
                         "certificate and alternative certificate need to have different type "
                         "(e.g. RSA and ECDSA), the provided certificates were both of the same "
                         "type");
            rc = -1;
        }
        X509_free(a);
        X509_free(b);
        ERR_clear_error();
    }
    return rc;
}

int aigw_schema_echeck_ca_certificate(const aigw_entity_t *e, const json_t *obj,
                                      json_t *entity_errors, json_t *field_errors)
{
    static const char tag[] = "-----BEGIN CERTIFICATE-----";
    (void)e;
    (void)field_errors;
    const char *cert = str_field(obj, "cert");
    if (!cert)
        return 0;
    const char *seen = strstr(cert, tag);
    size_t n = strlen(cert);
    if (seen && (size_t)(seen - cert) + sizeof(tag) < n && strstr(seen + sizeof(tag), tag)) {
        entity_error(entity_errors, "please submit only one certificate at a time");
        return -1;
    }
    X509 *x = load_cert(cert, n);
    ERR_clear_error();
    if (!x)
        return 0;
    int rc = 0;
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        entity_error(entity_errors, "certificate expired, \"Not After\" time is in the past");
        rc = -1;
    } else {
        BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
        if (!bc || !bc->ca) {
            entity_error(entity_errors, "certificate does not appear to be a CA because it is "
                                        "missing the \"CA\" basic constraint");
            rc = -1;
        }
        BASIC_CONSTRAINTS_free(bc);
    }
    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* One `conditional` of upstreams.lua: when if_field equals if_value, then_field is required
 * (one_of NULL) or must be one of one_of. */
typedef struct {
    const char *if_field, *if_value, *then_field;
    const char *const *one_of;
} conditional_t;

static int run_conditional(const json_t *obj, const conditional_t *c, json_t *entity_errors,
                           json_t *field_errors)
{
    const char *iv = str_field(obj, c->if_field);
    if (!iv || strcmp(iv, c->if_value) != 0)
        return 0;
    const json_t *tv = json_object_get(obj, c->then_field);
    char msg[256];
    if (!c->one_of) {
        if (!is_null(tv))
            return 0;
        snprintf(msg, sizeof(msg), "required field missing");
    } else {
        if (is_null(tv) || (json_is_string(tv) && in_list(json_string_value(tv), c->one_of)))
            return 0;
        size_t w = (size_t)snprintf(msg, sizeof(msg), "expected one of: ");
        for (const char *const *o = c->one_of; *o && w < sizeof(msg); o++)
            w += (size_t)snprintf(msg + w, sizeof(msg) - w, "%s%s", o == c->one_of ? "" : ", ", *o);
    }
    field_error(field_errors, c->then_field, msg);
    snprintf(msg, sizeof(msg), "failed conditional validation given value of field '%s'",
             c->if_field);
    entity_error(entity_errors, msg);
    return -1;
}

static int run_distinct(const json_t *obj, const char *a, const char *b, json_t *entity_errors)
{
    const json_t *va = json_object_get(obj, a), *vb = json_object_get(obj, b);
    if (!is_nonempty(va) || !is_nonempty(vb) || !json_equal(unconst(va), unconst(vb)))
        return 0;
    char msg[160];
    snprintf(msg, sizeof(msg), "values of these fields must be distinct: '%s', '%s'", a, b);
    entity_error(entity_errors, msg);
    return -1;
}

int aigw_schema_echeck_upstream(const aigw_entity_t *e, const json_t *obj,
                                json_t *entity_errors, json_t *field_errors)
{
    static const char *const only_none[] = { "none", NULL };
    static const char *const not_consumer[] = { "none", "ip", "header", "cookie", "path",
                                                "query_arg", "uri_capture", NULL };
    static const char *const not_ip[] = { "none", "consumer", "header", "cookie", "path",
                                          "query_arg", "uri_capture", NULL };
    static const char *const not_path[] = { "none", "consumer", "header", "cookie", "query_arg",
                                            "ip", "uri_capture", NULL };
    static const conditional_t header_checks[] = {
        { "hash_on", "header", "hash_on_header", NULL },
        { "hash_fallback", "header", "hash_fallback_header", NULL },
        { "hash_on", "cookie", "hash_on_cookie", NULL },
        { "hash_fallback", "cookie", "hash_on_cookie", NULL },
        { "hash_on", "none", "hash_fallback", only_none },
        { "hash_on", "cookie", "hash_fallback", only_none },
        { "hash_on", "consumer", "hash_fallback", not_consumer },
        { "hash_on", "ip", "hash_fallback", not_ip },
        { "hash_on", "path", "hash_fallback", not_path },
    };
    static const conditional_t query_checks[] = {
        { "hash_on", "query_arg", "hash_on_query_arg", NULL },
        { "hash_fallback", "query_arg", "hash_fallback_query_arg", NULL },
    };
    static const conditional_t capture_checks[] = {
        { "hash_on", "uri_capture", "hash_on_uri_capture", NULL },
        { "hash_fallback", "uri_capture", "hash_fallback_uri_capture", NULL },
    };
    (void)e;
    int rc = 0;
    for (size_t i = 0; i < sizeof(header_checks) / sizeof(header_checks[0]); i++)
        rc |= run_conditional(obj, &header_checks[i], entity_errors, field_errors);
    rc |= run_distinct(obj, "hash_on_header", "hash_fallback_header", entity_errors);
    for (size_t i = 0; i < sizeof(query_checks) / sizeof(query_checks[0]); i++)
        rc |= run_conditional(obj, &query_checks[i], entity_errors, field_errors);
    rc |= run_distinct(obj, "hash_on_query_arg", "hash_fallback_query_arg", entity_errors);
    for (size_t i = 0; i < sizeof(capture_checks) / sizeof(capture_checks[0]); i++)
        rc |= run_conditional(obj, &capture_checks[i], entity_errors, field_errors);
    rc |= run_distinct(obj, "hash_on_uri_capture", "hash_fallback_uri_capture", entity_errors);
    return rc ? -1 : 0;
}

int aigw_schema_echeck_jwt_secret(const aigw_entity_t *e, const json_t *obj,
                                  json_t *entity_errors, json_t *field_errors)
{
    /* Kong's list: RS* PS* EdDSA (not ES*). */
    static const char *const need_key[] = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                            "EdDSA", NULL };
    (void)e;
    const char *alg = str_field(obj, "algorithm");
    if (!in_list(alg, need_key))
        return 0;
    const json_t *key = json_object_get(obj, "rsa_public_key");
    if (is_null(key)) {
        field_error(field_errors, "rsa_public_key", "required field missing");
    } else if (json_is_string(key)) {
        EVP_PKEY *k = load_key(json_string_value(key), json_string_length(key));
        ERR_clear_error();
        if (k) {
            EVP_PKEY_free(k);
            return 0;
        }
        field_error(field_errors, "rsa_public_key", "invalid key");
    } else {
        return 0;
    }
    entity_error(entity_errors, "failed conditional validation given value of field 'algorithm'");
    return -1;
}
