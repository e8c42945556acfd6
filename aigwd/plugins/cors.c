/* aigwd/plugins/cors.c: Kong's cors (priority 2000).
 *
 * Preflight (OPTIONS with Origin and Access-Control-Request-Method): unless
 * `preflight_continue`, answered here with 200 and an empty body carrying
 * Access-Control-Allow-Origin / -Credentials / -Headers / -Methods / -Max-Age /
 * -Allow-Private-Network and Vary: Origin; nothing is added to its response later. Other
 * requests: header_filter adds Access-Control-Allow-Origin, -Credentials and
 * -Expose-Headers to the response (proxied or produced by aigw).
 *
 * The allowed origin, as Kong's configure_origin: no origins or exactly "*" -> "*"; exactly
 * one plain origin (only [A-Za-z0-9.:/-]) -> that value verbatim; otherwise the request's
 * Origin, normalised (aigw_cors_normalize), when it equals a plain entry's normalised form
 * or an entry with other characters, taken as a PCRE regex anchored at both ends, matches
 * its host (entry without ':') or its normalised form; no match removes the header. A "*"
 * inside a longer list allows every request that has an Origin. With `credentials`, "*" is
 * replaced by the request's Origin verbatim. Regexes are compiled once, here. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "plugins/cors.h"
#include "plugins/impl.h"

/* ---- origin normalisation ------------------------------------------------------------------ */

static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_scheme_char(int c)
{
    return is_alnum(c) || c == '+' || c == '-' || c == '.';
}

int aigw_cors_normalize(const char *s, size_t n, char *buf, aigw_str_t *domain,
                        aigw_str_t *host)
{
    if (n == 0)
        return -1;
    /* "#(.*)$": the fragment goes first */
    const char *hash = memchr(s, '#', n);
    size_t end = hash ? (size_t)(hash - s) : n;
    /* "^([%w][%w%+%-%.]*)%:": the scheme */
    size_t i = 0, scheme_n = 0;
    if (end > 0 && is_alnum((unsigned char)s[0])) {
        size_t j = 1;
        while (j < end && is_scheme_char((unsigned char)s[j]))
            j++;
        if (j < end && s[j] == ':') {
            scheme_n = j;
            i = j + 1;
        }
    }
    /* "^//([^/]*)": the authority */
    size_t a0 = 0, a1 = 0;
    int has_authority = 0;
    if (end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        has_authority = 1;
        a0 = i + 2;
        a1 = a0;
        while (a1 < end && s[a1] != '/')
            a1++;
    }
    size_t h0 = 0, h1 = 0, p0 = 0, p1 = 0;
    int has_host = 0, has_port = 0;
    if (has_authority) {
        /* "^([^@]*)@": userinfo */
        const char *at = memchr(s + a0, '@', a1 - a0);
        if (at)
            a0 = (size_t)(at - s) + 1;
        /* ":([^:%]]*)$": the port, after the last ':' unless a ']' follows it */
        size_t colon = a1;
        for (size_t k = a0; k < a1; k++)
            if (s[k] == ':')
                colon = k;
        if (colon < a1 && !memchr(s + colon + 1, ']', a1 - colon - 1)) {
            has_port = 1;
            p0 = colon + 1;
            p1 = a1;
            a1 = colon;
        }
        if (a1 > a0) {
            has_host = 1;
            h0 = a0;
            h1 = a1;
            /* "^%[(.+)%]$": an IPv6 literal loses its brackets */
            if (a1 - a0 >= 3 && s[a0] == '[' && s[a1 - 1] == ']') {
                h0++;
                h1--;
            }
        }
    }
    if (!has_host) {
        *domain = (aigw_str_t){ s, n };
        *host = (aigw_str_t){ s, n };
        return 0;
    }
    aigw_str_t scheme = { s, scheme_n }, port = { s + p0, p1 - p0 };
    if (has_port && ((aigw_str_eq(scheme, AIGW_STR("http")) && aigw_str_eq(port, AIGW_STR("80"))) ||
                     (aigw_str_eq(scheme, AIGW_STR("https")) &&
                      aigw_str_eq(port, AIGW_STR("443")))))
        has_port = 0;
    size_t k = 0;
    if (scheme_n) {
        memcpy(buf, s, scheme_n);
        memcpy(buf + scheme_n, "://", 3);
        k = scheme_n + 3;
    }
    memcpy(buf + k, s + h0, h1 - h0);
    k += h1 - h0;
    if (has_port) {
        buf[k++] = ':';
        memcpy(buf + k, s + p0, p1 - p0);
        k += p1 - p0;
    }
    *domain = (aigw_str_t){ buf, k };
    *host = (aigw_str_t){ s + h0, h1 - h0 };
    return 0;
}

/* ---- configuration --------------------------------------------------------------------------- */

typedef struct origin {
    pcre2_code *re;          /* regex entries (NULL if it does not compile: never matches) */
    int regex;
    int by_host;             /* the entry has no ':': match the request's host */
    char *domain;            /* plain entries: the normalised form */
    size_t domain_n;
} origin_t;

typedef struct conf {
    int allow_all;           /* no origins, or exactly "*" */
    char *single;            /* exactly one plain origin: sent verbatim */
    int star;                /* "*" in a longer list */
    origin_t *origins;
    size_t n_origins;
    char *methods;           /* joined with ',' */
    char *headers;           /* NULL: echo Access-Control-Request-Headers */
    char *exposed;           /* NULL: none */
    char *max_age;           /* NULL: none */
    int credentials, private_network, preflight_continue;
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    for (size_t i = 0; i < k->n_origins; i++) {
        pcre2_code_free(k->origins[i].re);
        free(k->origins[i].domain);
    }
    free(k->origins);
    free(k->single);
    free(k->methods);
    free(k->headers);
    free(k->exposed);
    free(k->max_age);
    free(k);
}

/* 1 if s only has [A-Za-z0-9.:/-] (Kong's test for "this is not a regex"). */
static int plain_chars(const char *s)
{
    for (; *s; s++)
        if (!is_alnum((unsigned char)*s) && *s != '.' && *s != ':' && *s != '/' && *s != '-')
            return 0;
    return 1;
}

/* The array's strings joined with ',' (malloc'd; "" for an empty array), or NULL with
 * *oom set when out of memory. */
static char *join(const json_t *a, int *oom)
{
    size_t len = 1, i;
    const json_t *v;
    json_array_foreach(a, i, v)
        len += json_string_length(v) + 1;
    char *out = malloc(len);
    if (!out) {
        *oom = 1;
        return NULL;
    }
    size_t k = 0;
    json_array_foreach(a, i, v) {
        if (i)
            out[k++] = ',';
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (s)
            memcpy(out + k, s, n);
        k += s ? n : 0;
    }
    out[k] = '\0';
    return out;
}

/* A non-empty array of key joined, else NULL. */
static char *join_nonempty(const json_t *c, const char *key, int *oom)
{
    const json_t *a = json_object_get(c, key);
    return json_is_array(a) && json_array_size(a) ? join(a, oom) : NULL;
}

static int add_origin(conf_t *k, const char *entry, char *err, size_t errlen)
{
    origin_t *o = &k->origins[k->n_origins++];
    o->by_host = strchr(entry, ':') == NULL;
    if (plain_chars(entry)) {
        size_t n = strlen(entry);
        o->domain = malloc(n + 1);
        if (!o->domain) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        aigw_str_t d, h;
        if (aigw_cors_normalize(entry, n, o->domain, &d, &h) != 0) {
            o->domain_n = (size_t)-1;   /* "": never equal to a request's origin */
            return 0;
        }
        if (d.p != o->domain)
            memcpy(o->domain, d.p, d.n);
        o->domain_n = d.n;
        return 0;
    }
    /* Kong anchors the regex: '$' appended unless it ends with one, a leading '^' dropped,
     * and matched with the anchored flag. */
    o->regex = 1;
    size_t n = strlen(entry);
    const char *p = entry;
    if (n && p[0] == '^') {
        p++;
        n--;
    }
    int dollar = n && p[n - 1] == '$';
    char *pat = malloc(n + 2);
    if (!pat) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(pat, p, n);
    if (!dollar)
        pat[n++] = '$';
    pat[n] = '\0';
    int code;
    PCRE2_SIZE off;
    o->re = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_ANCHORED, &code, &off, NULL);
    if (!o->re) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            msg[0] = '\0';
        AIGW_LOG(AIGW_LOG_ERR, "[cors] could not compile origin regex '%s': %s", pat,
                 (const char *)msg);
    } else {
        (void)pcre2_jit_compile(o->re, PCRE2_JIT_COMPLETE);
    }
    free(pat);
    return 0;
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int oom = 0;
    const json_t *origins = json_object_get(c, "origins");
    size_t n = json_is_array(origins) ? json_array_size(origins) : 0;
    const char *first = n ? json_string_value(json_array_get(origins, 0)) : NULL;
    if (n == 0 || (n == 1 && first && strcmp(first, "*") == 0)) {
        k->allow_all = 1;
    } else if (n == 1 && first && plain_chars(first) && *first) {
        if (!(k->single = strdup(first)))
            oom = 1;
    } else {
        k->origins = calloc(n, sizeof(*k->origins));
        if (!k->origins)
            oom = 1;
        for (size_t i = 0; i < n && !oom; i++) {
            const char *e = json_string_value(json_array_get(origins, i));
            if (!e)
                continue;
            if (strcmp(e, "*") == 0) {
                /* Kong stops at "*": with an Origin every request gets "*" */
                k->star = 1;
                break;
            }
            if (add_origin(k, e, err, errlen) != 0) {
                conf_free(k);
                return NULL;
            }
        }
    }
    const json_t *m = json_object_get(c, "methods");
    k->methods = json_is_array(m) ? join(m, &oom)
                                  : strdup("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
    if (!k->methods)
        oom = 1;
    k->headers = join_nonempty(c, "headers", &oom);
    k->exposed = join_nonempty(c, "exposed_headers", &oom);
    const json_t *ma = json_object_get(c, "max_age");
    if (json_is_number(ma)) {
        /* Lua's tostring of a number ("%.14g") */
        char tmp[64];
        snprintf(tmp, sizeof(tmp), "%.14g", json_number_value(ma));
        if (!(k->max_age = strdup(tmp)))
            oom = 1;
    }
    k->credentials = json_is_true(json_object_get(c, "credentials"));
    k->private_network = json_is_true(json_object_get(c, "private_network"));
    k->preflight_continue = json_is_true(json_object_get(c, "preflight_continue"));
    if (oom) {
        snprintf(err, errlen, "out of memory");
        conf_free(k);
        return NULL;
    }
    return k;
}

/* ---- phases ---------------------------------------------------------------------------------- */

static const char ACAO[] = "Access-Control-Allow-Origin";
static const char ACAC[] = "Access-Control-Allow-Credentials";

/* Kong's add_vary_header: appended in header_filter (the upstream's Vary stays), replaced
 * when answering a preflight. */
static void add_vary(aigw_plugin_run_t *run, int header_filter)
{
    if (header_filter)
        aigw_plugin_resp_add_header(run, "Vary", AIGW_STR("Origin"));
    else
        aigw_plugin_resp_set_header(run, "Vary", AIGW_STR("Origin"));
}

static int regex_found(const pcre2_code *re, aigw_str_t subject)
{
    if (!re)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)(subject.p ? subject.p : ""), subject.n, 0, 0, md,
                         NULL);
    pcre2_match_data_free(md);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
        AIGW_LOG(AIGW_LOG_ERR, "[cors] could not search for domain: error %d", rc);
    return rc >= 0;
}

/* Kong's configure_origin: 1 when every origin is allowed ("*"), 0 otherwise; -1 when the
 * request's Origin is empty (Kong's normalisation fails the request there). */
static int configure_origin(aigw_plugin_run_t *run, const conf_t *k, int header_filter)
{
    if (k->allow_all) {
        aigw_plugin_resp_set_header(run, ACAO, AIGW_STR("*"));
        return 1;
    }
    add_vary(run, header_filter);
    if (k->single) {
        aigw_plugin_resp_set_header(run, ACAO, aigw_str_c(k->single));
        return 0;
    }
    aigw_str_t origin = aigw_plugin_req_header(run, "Origin");
    if (origin.p) {
        if (k->star) {
            aigw_plugin_resp_set_header(run, ACAO, AIGW_STR("*"));
            return 1;
        }
        char *buf = aigw_arena_alloc(&run->req->arena, origin.n + 1);
        aigw_str_t domain, host;
        if (!buf || aigw_cors_normalize(origin.p, origin.n, buf, &domain, &host) != 0) {
            aigw_plugin_resp_clear_header(run, ACAO);
            return -1;
        }
        for (size_t i = 0; i < k->n_origins; i++) {
            const origin_t *o = &k->origins[i];
            int found = o->regex ? regex_found(o->re, o->by_host ? host : domain)
                                 : o->domain_n == domain.n &&
                                       memcmp(o->domain, domain.p, domain.n) == 0;
            if (found) {
                aigw_plugin_resp_set_header(run, ACAO, domain);
                return 0;
            }
        }
    }
    aigw_plugin_resp_clear_header(run, ACAO);
    return 0;
}

/* Kong's configure_credentials. */
static void configure_credentials(aigw_plugin_run_t *run, const conf_t *k, int allow_all,
                                  int header_filter)
{
    if (!k->credentials)
        return;
    if (!allow_all) {
        aigw_plugin_resp_set_header(run, ACAC, AIGW_STR("true"));
        return;
    }
    /* ACAC cannot be true with ACAO "*": the request's Origin instead */
    aigw_str_t origin = aigw_plugin_req_header(run, "Origin");
    if (origin.p) {
        add_vary(run, header_filter);
        aigw_plugin_resp_set_header(run, ACAO, origin);
        aigw_plugin_resp_set_header(run, ACAC, AIGW_STR("true"));
    }
}

static int is_preflight(const aigw_plugin_run_t *run)
{
    return run->req->method == HTTP_OPTIONS && aigw_plugin_req_header(run, "Origin").p &&
           aigw_plugin_req_header(run, "Access-Control-Request-Method").p;
}

static aigw_plugin_rc_t cors_access(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    if (!is_preflight(run) || k->preflight_continue)
        return AIGW_PLUGIN_NEXT;
    int allow_all = configure_origin(run, k, 0);
    if (allow_all < 0) {
        AIGW_LOG(AIGW_LOG_ERR, "[cors] cannot parse an empty Origin header");
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    configure_credentials(run, k, allow_all, 0);
    if (k->headers) {
        aigw_plugin_resp_set_header(run, "Access-Control-Allow-Headers", aigw_str_c(k->headers));
    } else {
        aigw_str_t acrh = aigw_plugin_req_header(run, "Access-Control-Request-Headers");
        if (acrh.p)
            aigw_plugin_resp_set_header(run, "Access-Control-Allow-Headers", acrh);
        else
            aigw_plugin_resp_clear_header(run, "Access-Control-Allow-Headers");
    }
    aigw_plugin_resp_set_header(run, "Access-Control-Allow-Methods", aigw_str_c(k->methods));
    if (k->max_age)
        aigw_plugin_resp_set_header(run, "Access-Control-Max-Age", aigw_str_c(k->max_age));
    if (k->private_network &&
        aigw_str_eq(aigw_plugin_req_header(run, "Access-Control-Request-Private-Network"),
                    AIGW_STR("true")))
        aigw_plugin_resp_set_header(run, "Access-Control-Allow-Private-Network",
                                    AIGW_STR("true"));
    return aigw_plugin_exit(run, 200, AIGW_STR_NULL, AIGW_STR_NULL);
}

static void cors_header_filter(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    /* Kong skips a preflight its access phase saw (answered, or passed on with
     * preflight_continue); access runs once a route matched. */
    if (run->route && is_preflight(run))
        return;
    int allow_all = configure_origin(run, k, 1);
    if (allow_all < 0)
        return;
    configure_credentials(run, k, allow_all, 1);
    if (k->exposed)
        aigw_plugin_resp_set_header(run, "Access-Control-Expose-Headers",
                                    aigw_str_c(k->exposed));
}

const aigw_plugin_def_t aigw_plugin_def_cors = {
    .name = "cors",
    .priority = 2000,
    .configure = configure,
    .free_conf = conf_free,
    .access = cors_access,
    .header_filter = cors_header_filter,
};
