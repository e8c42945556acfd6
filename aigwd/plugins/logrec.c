/* aigwd/plugins/logrec.c: the log record of a request and its redaction (logrec.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <llhttp.h>
#include "common/sbuf.h"
#include "core/log.h"
#include "plugins/logrec.h"

#define REDACTED "REDACTED"
#define BODY_MAX (64 * 1024)   /* request bytes a record keeps with log_request_bodies */

/* Always masked headers and query arguments (aigw; Kong masks the first two headers). */
static const char *const builtin_headers[] = {
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
    "apikey", NULL,
};
static const char *const builtin_query[] = {
    "access_token", "refresh_token", "client_secret", "code", "password", "provision_key",
    "jwt", "apikey", "api_key", NULL,
};
/* Values that look like secrets wherever they appear. */
static const char *const builtin_patterns[] = {
    "(?i)\\bbearer\\s+[A-Za-z0-9._~+/=-]{8,}",
    "(?i)\\bbasic\\s+[A-Za-z0-9+/=]{8,}",
    "\\beyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]*",
    "\\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}",
    "\\bAKIA[0-9A-Z]{16}\\b",
    "\\bgh[pousr]_[A-Za-z0-9]{30,}",
    "\\bxox[abposr]-[A-Za-z0-9-]{10,}",
    "\\bAIza[0-9A-Za-z_-]{35}",
    NULL,
};

typedef struct settings {
    int on;
    int bodies;
    aigw_str_t *hdr, *qry, *jf;
    size_t n_hdr, n_qry, n_jf;
    pcre2_code *re;
    size_t minlen;
    struct settings *older;        /* retired settings, freed at shutdown */
} settings_t;

static _Atomic(settings_t *) cur;
static pthread_mutex_t retire_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- settings ----------------------------------------------------------------------------- */

static void settings_free(settings_t *s)
{
    if (!s)
        return;
    aigw_str_t *lists[3] = { s->hdr, s->qry, s->jf };
    size_t ns[3] = { s->n_hdr, s->n_qry, s->n_jf };
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < ns[l]; i++)
            free((char *)(uintptr_t)lists[l][i].p);
        free(lists[l]);
    }
    pcre2_code_free(s->re);
    free(s);
}

/* Appends the builtins then the comma-separated names of extra (lower-cased). */
static int names(const char *const *builtin, const char *extra, aigw_str_t **out, size_t *n)
{
    size_t cap = 0;
    for (size_t i = 0; builtin && builtin[i]; i++)
        cap++;
    for (const char *p = extra; p && *p; p++)
        cap += *p == ',';
    cap += extra ? 1 : 0;
    *out = calloc(cap ? cap : 1, sizeof(**out));
    *n = 0;
    if (!*out)
        return -1;
    for (size_t i = 0; builtin && builtin[i]; i++) {
        char *d = strdup(builtin[i]);
        if (!d)
            return -1;
        (*out)[(*n)++] = aigw_str_c(d);
    }
    const char *p = extra;
    while (p && *p) {
        const char *c = strchr(p, ',');
        aigw_str_t t = aigw_str_trim((aigw_str_t){ p, c ? (size_t)(c - p) : strlen(p) });
        if (t.n) {
            char *d = malloc(t.n + 1);
            if (!d)
                return -1;
            for (size_t i = 0; i < t.n; i++)
                d[i] = (t.p[i] >= 'A' && t.p[i] <= 'Z') ? (char)(t.p[i] + 32) : t.p[i];
            d[t.n] = '\0';
            (*out)[(*n)++] = (aigw_str_t){ d, t.n };
        }
        p = c ? c + 1 : NULL;
    }
    return 0;
}

/* One alternation of the builtin patterns and the whitespace-separated extra ones. */
static pcre2_code *compile_patterns(const char *extra, size_t *minlen, char *err, size_t errlen)
{
    aigw_sbuf_t b = { 0 };
    for (size_t i = 0; builtin_patterns[i]; i++)
        aigw_sbuf_addf(&b, "%s(?:%s)", i ? "|" : "", builtin_patterns[i]);
    const char *p = extra;
    while (p && *p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t')
            e++;
        if (e > p) {
            /* each extra pattern on its own first, for a message naming it */
            int ec;
            PCRE2_SIZE off;
            pcre2_code *one = pcre2_compile((PCRE2_SPTR)p, (size_t)(e - p), PCRE2_UTF, &ec,
                                            &off, NULL);
            if (!one) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(ec, msg, sizeof(msg));
                snprintf(err, errlen, "log_redact_patterns: '%.*s' does not compile: %s at "
                         "offset %zu", (int)(e - p), p, (const char *)msg, (size_t)off);
                aigw_sbuf_free(&b);
                return NULL;
            }
            pcre2_code_free(one);
            aigw_sbuf_add(&b, "|(?:");
            aigw_sbuf_addn(&b, p, (size_t)(e - p));
            aigw_sbuf_add(&b, ")");
        }
        p = e;
    }
    if (b.oom) {
        snprintf(err, errlen, "out of memory");
        aigw_sbuf_free(&b);
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)b.p, b.n, PCRE2_UTF | PCRE2_NO_UTF_CHECK, &ec,
                                   &off, NULL);
    aigw_sbuf_free(&b);
    if (!re) {
        snprintf(err, errlen, "log_redact_patterns: the patterns do not compile together");
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* interpreted when JIT is unavailable */
    uint32_t ml = 0;
    pcre2_pattern_info(re, PCRE2_INFO_MINLENGTH, &ml);
    *minlen = ml ? ml : 1;
    return re;
}

int aigw_logrec_configure(const aigw_conf_t *conf, char *err, size_t errlen)
{
    settings_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->on = conf->log_redaction;
    s->bodies = conf->log_request_bodies;
    static const char *const kong_headers[] = { "authorization", "proxy-authorization", NULL };
    int rc = s->on ? names(builtin_headers, conf->log_redact_headers, &s->hdr, &s->n_hdr)
                   : names(kong_headers, NULL, &s->hdr, &s->n_hdr);
    if (rc == 0 && s->on)
        rc = names(builtin_query, conf->log_redact_query_args, &s->qry, &s->n_qry);
    if (rc == 0 && s->on)
        rc = names(NULL, conf->log_redact_json_fields, &s->jf, &s->n_jf);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        settings_free(s);
        return -1;
    }
    if (s->on && !(s->re = compile_patterns(conf->log_redact_patterns, &s->minlen, err,
                                            errlen))) {
        settings_free(s);
        return -1;
    }
    /* requests in flight may still read the previous settings: retire, free at shutdown */
    pthread_mutex_lock(&retire_lock);
    s->older = atomic_load(&cur);
    atomic_store(&cur, s);
    pthread_mutex_unlock(&retire_lock);
    return 0;
}

void aigw_logrec_shutdown(void)
{
    pthread_mutex_lock(&retire_lock);
    settings_t *s = atomic_exchange(&cur, NULL);
    pthread_mutex_unlock(&retire_lock);
    while (s) {
        settings_t *o = s->older;
        settings_free(s);
        s = o;
    }
}

/* Kong's defaults when nothing was configured (unit tests, tools). */
static const settings_t *settings(void)
{
    const settings_t *s = atomic_load(&cur);
    if (s)
        return s;
    static aigw_str_t kong_hdr[2] = { { "authorization", 13 }, { "proxy-authorization", 19 } };
    static const settings_t kong = { .hdr = kong_hdr, .n_hdr = 2 };
    return &kong;
}

int aigw_logrec_wants_bodies(void)
{
    return settings()->bodies;
}

static int in_list(const aigw_str_t *v, size_t n, aigw_str_t name)
{
    for (size_t i = 0; i < n; i++)
        if (aigw_str_ieq(v[i], name))
            return 1;
    return 0;
}

/* ---- JSON output -------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (!len || len > n || (len == 2 && c < 0xc2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        return 0;
    if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || c > 0xf4 || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return len;
}

/* The characters of a JSON string (no quotes): escapes, and bytes that are not UTF-8 as
 * \u00XX (their Latin-1 reading), so every record is valid JSON. */
static void esc(aigw_sbuf_t *b, const char *s, size_t n, int lower)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && !(lower && c >= 'A' && c <= 'Z')) {
            i++;
            run++;
            continue;
        }
        if (run)
            aigw_sbuf_addn(b, s + i - run, run);
        run = 0;
        if (c >= 0x80) {
            size_t l = utf8_len((const unsigned char *)s + i, n - i);
            if (l) {
                aigw_sbuf_addn(b, s + i, l);
                i += l;
                continue;
            }
        }
        char e[7];
        size_t en = 2;
        e[0] = '\\';
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default:
            if (c >= 'A' && c <= 'Z') {
                e[0] = (char)(c + 32);
                en = 1;
            } else {
                e[1] = 'u';
                e[2] = '0';
                e[3] = '0';
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
                en = 6;
            }
        }
        aigw_sbuf_addn(b, e, en);
        i++;
    }
    if (run)
        aigw_sbuf_addn(b, s + n - run, run);
}

static void jstr(aigw_sbuf_t *b, const char *s, size_t n)
{
    aigw_sbuf_addn(b, "\"", 1);
    esc(b, s, n, 0);
    aigw_sbuf_addn(b, "\"", 1);
}

static void jkey(aigw_sbuf_t *b, int *first, const char *k)
{
    if (!*first)
        aigw_sbuf_addn(b, ",", 1);
    *first = 0;
    aigw_sbuf_addn(b, "\"", 1);
    aigw_sbuf_add(b, k);
    aigw_sbuf_addn(b, "\":", 2);
}

static void jnum(aigw_sbuf_t *b, long long v)
{
    char t[24];
    aigw_sbuf_addn(b, t, aigw_i64_to_dec(t, v));
}

/* The characters of s with every secret-pattern match replaced (not quoted). */
static void esc_masked(aigw_sbuf_t *b, const settings_t *st, pcre2_match_data *md,
                       const char *s, size_t n)
{
    size_t at = 0;
    if (st->re && md && n >= st->minlen) {
        while (at < n) {
            int rc = pcre2_match(st->re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] <= ov[0]) {   /* an empty match: step over one byte */
                esc(b, s + at, ov[0] + 1 - at, 0);
                at = ov[0] + 1;
                continue;
            }
            esc(b, s + at, ov[0] - at, 0);
            aigw_sbuf_add(b, REDACTED);
            at = ov[1];
        }
    }
    if (at < n)
        esc(b, s + at, n - at, 0);
}

static void jstr_masked(aigw_sbuf_t *b, const settings_t *st, pcre2_match_data *md,
                        const char *s, size_t n)
{
    aigw_sbuf_addn(b, "\"", 1);
    esc_masked(b, st, md, s, n);
    aigw_sbuf_addn(b, "\"", 1);
}

/* ---- query strings ------------------------------------------------------------------------ */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes (and '+' as space) into out (cap bytes); returns the length. */
static size_t decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n + 0 && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            out[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    return k;
}

static int query_masked(const aigw_plugin_run_t *run, const settings_t *st, const char *name,
                        size_t n)
{
    char d[128];
    size_t dn = decode(name, n, d, sizeof(d));
    aigw_str_t nm = { d, dn };
    return in_list(st->qry, st->n_qry, nm) || in_list(run->mask_query, run->n_mask_query, nm);
}

/* Writes the characters of a URI (path?query) with credential arguments' values replaced
 * and secret patterns masked. */
static void esc_uri(aigw_sbuf_t *b, const aigw_plugin_run_t *run, const settings_t *st,
                    pcre2_match_data *md, aigw_str_t uri)
{
    const char *q = memchr(uri.p, '?', uri.n);
    if (!q || (!st->n_qry && !run->n_mask_query)) {
        esc_masked(b, st, md, uri.p, uri.n);
        return;
    }
    esc_masked(b, st, md, uri.p, (size_t)(q - uri.p) + 1);
    const char *p = q + 1, *end = uri.p + uri.n;
    while (p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq && query_masked(run, st, p, (size_t)(eq - p))) {
            esc(b, p, (size_t)(eq - p) + 1, 0);
            aigw_sbuf_add(b, REDACTED);
        } else {
            esc_masked(b, st, md, p, (size_t)(e - p));
        }
        if (!amp)
            break;
        aigw_sbuf_addn(b, "&", 1);
        p = amp + 1;
    }
}

typedef struct arg {
    const char *k, *v;
    size_t kn, vn;
    int has_v, done;
} arg_t;

/* request.querystring: {name: value | true | [values]} as Kong's get_query, decoded. */
static void querystring(aigw_sbuf_t *b, const aigw_plugin_run_t *run, const settings_t *st,
                        pcre2_match_data *md, aigw_str_t q)
{
    aigw_sbuf_addn(b, "{", 1);
    size_t cnt = 1;
    for (size_t i = 0; i < q.n; i++)
        cnt += q.p[i] == '&';
    arg_t *a = q.n ? calloc(cnt, sizeof(*a)) : NULL;
    char *dec = q.n ? malloc(q.n * 2 + 2) : NULL;
    size_t na = 0, dn = 0;
    const char *p = q.p, *end = q.p + q.n;
    while (a && dec && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t kl = (size_t)((eq ? eq : e) - p);
        if (kl) {
            arg_t *x = &a[na++];
            x->k = dec + dn;
            x->kn = decode(p, kl, dec + dn, q.n * 2 + 2 - dn);
            dn += x->kn;
            if (eq) {
                x->has_v = 1;
                x->v = dec + dn;
                x->vn = decode(eq + 1, (size_t)(e - eq - 1), dec + dn, q.n * 2 + 2 - dn);
                dn += x->vn;
            }
        }
        p = amp ? amp + 1 : end;
    }
    int first = 1;
    for (size_t i = 0; i < na; i++) {
        if (a[i].done)
            continue;
        size_t same = 0;
        for (size_t j = i; j < na; j++)
            same += a[j].kn == a[i].kn && memcmp(a[j].k, a[i].k, a[i].kn) == 0;
        if (!first)
            aigw_sbuf_addn(b, ",", 1);
        first = 0;
        jstr(b, a[i].k, a[i].kn);
        aigw_sbuf_addn(b, ":", 1);
        aigw_str_t kn = { a[i].k, a[i].kn };
        int masked = in_list(st->qry, st->n_qry, kn) ||
                     in_list(run->mask_query, run->n_mask_query, kn);
        if (same > 1)
            aigw_sbuf_addn(b, "[", 1);
        int f2 = 1;
        for (size_t j = i; j < na; j++) {
            if (a[j].kn != a[i].kn || memcmp(a[j].k, a[i].k, a[i].kn) != 0)
                continue;
            a[j].done = 1;
            if (!f2)
                aigw_sbuf_addn(b, ",", 1);
            f2 = 0;
            if (!a[j].has_v)
                aigw_sbuf_add(b, "true");
            else if (masked)
                aigw_sbuf_add(b, "\"" REDACTED "\"");
            else
                jstr_masked(b, st, md, a[j].v, a[j].vn);
        }
        if (same > 1)
            aigw_sbuf_addn(b, "]", 1);
    }
    free(a);
    free(dec);
    aigw_sbuf_addn(b, "}", 1);
}

/* ---- headers ------------------------------------------------------------------------------ */

typedef struct hv {
    aigw_str_t name, value;
} hv_t;

/* {lower-case name: value | [values]} with credential headers masked. */
static void headers_obj(aigw_sbuf_t *b, const aigw_plugin_run_t *run, const settings_t *st,
                        pcre2_match_data *md, const hv_t *h, size_t n)
{
    aigw_sbuf_addn(b, "{", 1);
    unsigned char done_small[64] = { 0 };
    unsigned char *done = n <= sizeof(done_small) ? done_small : calloc(n, 1);
    int first = 1;
    for (size_t i = 0; done && i < n; i++) {
        if (done[i])
            continue;
        size_t same = 0;
        for (size_t j = i; j < n; j++)
            same += aigw_str_ieq(h[j].name, h[i].name);
        if (!first)
            aigw_sbuf_addn(b, ",", 1);
        first = 0;
        aigw_sbuf_addn(b, "\"", 1);
        esc(b, h[i].name.p, h[i].name.n, 1);
        aigw_sbuf_addn(b, "\":", 2);
        int masked = in_list(st->hdr, st->n_hdr, h[i].name) ||
                     in_list(run->mask_headers, run->n_mask_headers, h[i].name);
        if (same > 1)
            aigw_sbuf_addn(b, "[", 1);
        int f2 = 1;
        for (size_t j = i; j < n; j++) {
            if (!aigw_str_ieq(h[j].name, h[i].name))
                continue;
            done[j] = 1;
            if (!f2)
                aigw_sbuf_addn(b, ",", 1);
            f2 = 0;
            if (masked)
                aigw_sbuf_add(b, "\"" REDACTED "\"");
            else
                jstr_masked(b, st, md, h[j].value.p, h[j].value.n);
        }
        if (same > 1)
            aigw_sbuf_addn(b, "]", 1);
    }
    if (done != done_small)
        free(done);
    aigw_sbuf_addn(b, "}", 1);
}

/* ---- JSON bodies -------------------------------------------------------------------------- */

static void mask_tree(json_t *v, const settings_t *st)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            if (in_list(st->jf, st->n_jf, aigw_str_c(k)))
                json_object_set_new(v, k, json_string(REDACTED));
            else
                mask_tree(m, st);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            mask_tree(json_array_get(v, i), st);
    } else if (json_is_string(v) && st->re) {
        size_t ln;
        char *plain = aigw_logrec_mask_text(json_string_value(v), json_string_length(v), &ln);
        if (plain && (ln != json_string_length(v) ||
                      memcmp(plain, json_string_value(v), ln) != 0))
            json_string_setn(v, plain, ln);
        free(plain);
    }
}

char *aigw_logrec_mask_text(const char *text, size_t n, size_t *out_len)
{
    const settings_t *st = settings();
    aigw_sbuf_t b = { 0 };
    size_t at = 0;
    pcre2_match_data *md = st->re ? pcre2_match_data_create(1, NULL) : NULL;
    if (md && n >= st->minlen) {
        while (at < n) {
            int rc = pcre2_match(st->re, (PCRE2_SPTR)text, n, at, 0, md, NULL);
            if (rc < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[1] <= ov[0]) {
                aigw_sbuf_addn(&b, text + at, ov[0] + 1 - at);
                at = ov[0] + 1;
                continue;
            }
            aigw_sbuf_addn(&b, text + at, ov[0] - at);
            aigw_sbuf_add(&b, REDACTED);
            at = ov[1];
        }
    }
    pcre2_match_data_free(md);
    if (at < n)
        aigw_sbuf_addn(&b, text + at, n - at);
    if (b.oom || !b.p) {
        aigw_sbuf_free(&b);
        if (b.oom)
            return NULL;
        char *e = strdup("");
        *out_len = 0;
        return e;
    }
    *out_len = b.n;
    return b.p;
}

char *aigw_logrec_mask_json(const char *text, size_t n, size_t *out_len)
{
    const settings_t *st = settings();
    json_t *root = json_loadb(text, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!root)
        return NULL;
    mask_tree(root, st);
    char *d = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(root);
    if (d)
        *out_len = strlen(d);
    return d;
}

/* ---- the record --------------------------------------------------------------------------- */

static long long ms(uint64_t a, uint64_t b)
{
    return b > a ? (long long)((b - a) / 1000000) : 0;
}

static void push_name(aigw_plugin_run_t *run, aigw_str_t **v, size_t *n, size_t *cap,
                      const char *name)
{
    if (!name || !*name)
        return;
    for (size_t i = 0; i < *n; i++)
        if (aigw_str_ieq((*v)[i], aigw_str_c(name)))
            return;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        aigw_str_t *nv = aigw_arena_alloc(&run->req->arena, nc * sizeof(*nv));
        if (!nv)
            return;
        if (*n)
            memcpy(nv, *v, *n * sizeof(*nv));
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = aigw_str_c(name);   /* a conf string: outlives the request */
}

void aigw_plugin_log_mask_header(aigw_plugin_run_t *run, const char *name)
{
    push_name(run, &run->mask_headers, &run->n_mask_headers, &run->cap_mask_headers, name);
}

void aigw_plugin_log_mask_query(aigw_plugin_run_t *run, const char *name)
{
    push_name(run, &run->mask_query, &run->n_mask_query, &run->cap_mask_query, name);
}

void aigw_plugin_log_set(aigw_plugin_run_t *run, const char *key, aigw_str_t json_value)
{
    for (size_t i = 0; i < run->n_log_extra; i++)
        if (aigw_str_eq(run->log_extra[i].name, aigw_str_c(key))) {
            char *d = aigw_arena_alloc(&run->req->arena, json_value.n + 1);
            if (d) {
                memcpy(d, json_value.p, json_value.n);
                run->log_extra[i].value = (aigw_str_t){ d, json_value.n };
            }
            return;
        }
    if (run->n_log_extra == run->cap_log_extra) {
        size_t nc = run->cap_log_extra ? run->cap_log_extra * 2 : 4;
        aigw_plugin_hdr_t *nv = aigw_arena_alloc(&run->req->arena, nc * sizeof(*nv));
        if (!nv)
            return;
        if (run->n_log_extra)
            memcpy(nv, run->log_extra, run->n_log_extra * sizeof(*nv));
        run->log_extra = nv;
        run->cap_log_extra = nc;
    }
    size_t kn = strlen(key);
    char *k = aigw_arena_alloc(&run->req->arena, kn + 1);
    char *d = aigw_arena_alloc(&run->req->arena, json_value.n + 1);
    if (!k || !d)
        return;
    memcpy(k, key, kn + 1);
    memcpy(d, json_value.p, json_value.n);
    run->log_extra[run->n_log_extra++] =
        (aigw_plugin_hdr_t){ { k, kn }, { d, json_value.n } };
}

static void tls_obj(aigw_sbuf_t *b, const aigw_http_req_t *req, int *first)
{
    const char *ver, *cipher;
    aigw_http_req_tls_info(req, &ver, &cipher);
    if (!ver)
        return;
    jkey(b, first, "tls");
    aigw_sbuf_add(b, "{\"version\":");
    jstr(b, ver, strlen(ver));
    aigw_sbuf_add(b, ",\"cipher\":");
    jstr(b, cipher ? cipher : "", cipher ? strlen(cipher) : 0);
    aigw_sbuf_add(b, ",\"client_verify\":\"NONE\"}");
}

static void build(aigw_sbuf_t *b, aigw_plugin_run_t *run)
{
    const settings_t *st = settings();
    aigw_http_req_t *req = run->req;
    pcre2_match_data *md = st->re ? pcre2_match_data_create(1, NULL) : NULL;
    uint64_t now = uv_hrtime();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    long long wall_ms = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    long long started_ms = wall_ms - ms(req->start_ns, now);
    int first = 1;

    aigw_sbuf_add(b, "{\"request\":{");
    jkey(b, &first, "id");
    jstr(b, req->request_id, strlen(req->request_id));
    jkey(b, &first, "uri");
    aigw_sbuf_addn(b, "\"", 1);
    esc_uri(b, run, st, md, req->target);
    aigw_sbuf_addn(b, "\"", 1);
    jkey(b, &first, "url");
    aigw_sbuf_add(b, aigw_http_req_is_tls(req) ? "\"https://" : "\"http://");
    const aigw_http_header_t *hh = aigw_http_req_header(req, AIGW_STR("host"));
    aigw_str_t host = hh ? hh->value : AIGW_STR("");
    const char *colon = host.n && host.p[0] != '[' ? memchr(host.p, ':', host.n) : NULL;
    if (colon)
        host.n = (size_t)(colon - host.p);
    esc(b, host.p, host.n, 1);
    aigw_sbuf_addn(b, ":", 1);
    jnum(b, aigw_http_req_local_port(req));
    esc_uri(b, run, st, md, req->target);
    aigw_sbuf_addn(b, "\"", 1);
    jkey(b, &first, "querystring");
    querystring(b, run, st, md, req->query);
    jkey(b, &first, "method");
    jstr(b, req->method_name.p, req->method_name.n);
    jkey(b, &first, "headers");
    size_t head = req->method_name.n + req->target.n + 12;
    for (size_t i = 0; i < req->n_headers; i++)
        head += req->headers[i].name.n + req->headers[i].value.n + 4;
    headers_obj(b, run, st, md, (const hv_t *)(const void *)req->headers, req->n_headers);
    jkey(b, &first, "size");
    jnum(b, (long long)(head + 2 + req->body_len));
    if (aigw_http_req_is_tls(req))
        tls_obj(b, req, &first);
    if (st->bodies && req->body && req->body_len) {
        size_t bn = req->body_len > BODY_MAX ? BODY_MAX : (size_t)req->body_len;
        size_t mn = 0;
        char *m = bn == req->body_len ? aigw_logrec_mask_json(req->body, bn, &mn) : NULL;
        if (!m)
            m = aigw_logrec_mask_text(req->body, bn, &mn);
        jkey(b, &first, "body");
        jstr(b, m ? m : "", m ? mn : 0);
        free(m);
    }
    aigw_sbuf_addn(b, "}", 1);

    aigw_sbuf_add(b, ",\"upstream_uri\":\"");
    if (run->log.upstream_uri.n)
        esc_uri(b, run, st, md, run->log.upstream_uri);
    aigw_sbuf_add(b, "\",\"upstream_status\":\"");
    if (run->log.upstream_status)
        jnum(b, run->log.upstream_status);
    aigw_sbuf_add(b, "\",\"response\":{\"status\":");
    jnum(b, run->status ? run->status : req->status);
    aigw_sbuf_add(b, ",\"headers\":");
    size_t rhead = 0;
    if (run->log.n_resp_headers) {
        const char *reason = llhttp_status_name((llhttp_status_t)run->status);
        rhead = 15 + (reason ? strlen(reason) : 0);
        for (size_t i = 0; i < run->log.n_resp_headers; i++)
            rhead += run->log.resp_headers[i].name.n + run->log.resp_headers[i].value.n + 4;
    }
    headers_obj(b, run, st, md, (const hv_t *)(const void *)run->log.resp_headers,
                run->log.n_resp_headers);
    aigw_sbuf_add(b, ",\"size\":");
    jnum(b, (long long)(rhead + req->bytes_sent));
    aigw_sbuf_addn(b, "}", 1);

    int proxied = run->log.proxied;
    uint64_t last_try = run->log.n_tries ? run->log.tries[(run->log.n_tries <= 4 ? run->log.n_tries : 4) - 1].start_ns : 0;
    aigw_sbuf_add(b, ",\"latencies\":{\"kong\":");
    jnum(b, proxied ? ms(req->start_ns, run->log.upstream_start_ns) : ms(req->start_ns, now));
    aigw_sbuf_add(b, ",\"proxy\":");
    jnum(b, proxied ? ms(last_try, run->log.upstream_head_ns) : -1);
    aigw_sbuf_add(b, ",\"request\":");
    jnum(b, ms(req->start_ns, now));
    aigw_sbuf_add(b, ",\"receive\":");
    jnum(b, proxied ? ms(run->log.upstream_head_ns, now) : 0);
    aigw_sbuf_add(b, "},\"tries\":[");
    size_t nt = run->log.n_tries < 4 ? run->log.n_tries : 4;
    for (size_t i = 0; i < nt; i++) {
        const struct aigw_plugin_try *t = &run->log.tries[i];
        char ip[INET6_ADDRSTRLEN] = "";
        aigw_ip_to_str(ip, t->family == AF_INET6 ? AF_INET6 : AF_INET, t->addr);
        aigw_sbuf_add(b, i ? ",{\"ip\":\"" : "{\"ip\":\"");
        aigw_sbuf_add(b, ip);
        aigw_sbuf_add(b, "\",\"port\":");
        jnum(b, t->port);
        aigw_sbuf_add(b, ",\"balancer_start\":");
        jnum(b, wall_ms - ms(t->start_ns, now));
        aigw_sbuf_add(b, ",\"balancer_latency\":0}");
    }
    aigw_sbuf_addn(b, "]", 1);
    if (run->credential_id && run->consumer_id) {
        aigw_sbuf_add(b, ",\"authenticated_entity\":{\"id\":");
        jstr(b, run->credential_id, strlen(run->credential_id));
        aigw_sbuf_add(b, ",\"consumer_id\":");
        jstr(b, run->consumer_id, strlen(run->consumer_id));
        aigw_sbuf_addn(b, "}", 1);
    }
    if (run->route && run->route->json.n) {
        aigw_sbuf_add(b, ",\"route\":");
        aigw_sbuf_addn(b, run->route->json.p, run->route->json.n);
    }
    if (run->service && run->service->json.n) {
        aigw_sbuf_add(b, ",\"service\":");
        aigw_sbuf_addn(b, run->service->json.p, run->service->json.n);
    }
    if (run->consumer && run->consumer->json.n) {
        aigw_sbuf_add(b, ",\"consumer\":");
        aigw_sbuf_addn(b, run->consumer->json.p, run->consumer->json.n);
    }
    const char *cip = run->client_ip ? run->client_ip : aigw_http_req_client_ip(req);
    aigw_sbuf_add(b, ",\"client_ip\":");
    jstr(b, cip, strlen(cip));
    aigw_sbuf_add(b, ",\"started_at\":");
    jnum(b, started_ms);
    aigw_sbuf_add(b, proxied ? ",\"source\":\"upstream\"" : ",\"source\":\"kong\"");
    aigw_sbuf_add(b, ",\"workspace_name\":\"default\"");
    for (size_t i = 0; i < run->n_log_extra; i++) {
        aigw_sbuf_addn(b, ",", 1);
        jstr(b, run->log_extra[i].name.p, run->log_extra[i].name.n);
        aigw_sbuf_addn(b, ":", 1);
        aigw_sbuf_addn(b, run->log_extra[i].value.p, run->log_extra[i].value.n);
    }
    aigw_sbuf_addn(b, "}", 1);
    pcre2_match_data_free(md);
}

/* Each thread builds records in one buffer it keeps (a pthread key frees it when the thread
 * ends): a malloc and free of a few KiB per request costs more than building the record. */
#define KEEP_MAX (64 * 1024)

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void buf_free(void *p)
{
    aigw_sbuf_t *b = p;
    aigw_sbuf_free(b);
    free(b);
}

static void buf_key_init(void)
{
    (void)pthread_key_create(&buf_key, buf_free);
}

aigw_str_t aigw_plugin_log_record(aigw_plugin_run_t *run)
{
    if (run->log_record.p)
        return run->log_record;
    pthread_once(&buf_once, buf_key_init);
    aigw_sbuf_t local = { 0 }, *b = pthread_getspecific(buf_key);
    if (!b && (b = calloc(1, sizeof(*b))) != NULL && pthread_setspecific(buf_key, b) != 0) {
        free(b);
        b = NULL;
    }
    if (!b)
        b = &local;
    b->n = 0;
    b->oom = 0;
    /* one allocation for most records: the entities' JSON plus the usual rest */
    aigw_sbuf_reserve(b, 2048 + (run->route ? run->route->json.n : 0) +
                             (run->service ? run->service->json.n : 0) +
                             (run->consumer ? run->consumer->json.n : 0));
    build(b, run);
    if (!b->oom && b->p) {
        char *d = aigw_arena_alloc(&run->req->arena, b->n + 1);
        if (d) {
            memcpy(d, b->p, b->n + 1);
            run->log_record = (aigw_str_t){ d, b->n };
        }
    }
    if (b->oom || b->cap > KEEP_MAX || b == &local)
        aigw_sbuf_free(b);
    return run->log_record;
}

/* Top-level keys of every record: a custom field with one of these names (or a dotted
 * path) replaces a value and takes the slow path. */
static int needs_merge(const char *k)
{
    static const char *const keys[] = {
        "request", "upstream_uri", "upstream_status", "response", "latencies", "tries",
        "authenticated_entity", "route", "service", "consumer", "client_ip", "started_at",
        "source", "workspace_name", NULL,
    };
    if (strchr(k, '.'))
        return 1;
    for (size_t i = 0; keys[i]; i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

/* kong.log.set_serialize_value: "a.b.c" sets a nested value, creating objects. */
static void set_path(json_t *root, const char *path, json_t *v)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *o = root;
    char *p = buf;
    for (;;) {
        char *dot = strchr(p, '.');
        if (!dot) {
            json_object_set(o, p, v);
            return;
        }
        *dot = '\0';
        json_t *next = json_object_get(o, p);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(o, p, next);
        }
        o = next;
        p = dot + 1;
    }
}

char *aigw_plugin_log_record_with(aigw_plugin_run_t *run, const json_t *custom_fields,
                                  size_t *len)
{
    aigw_str_t rec = aigw_plugin_log_record(run);
    if (!rec.p)
        return NULL;
    int slow = 0;
    const char *k;
    json_t *v;
    if (json_is_object(custom_fields))
        json_object_foreach((json_t *)(uintptr_t)custom_fields, k, v)
            slow |= needs_merge(k);
    if (slow) {
        json_t *root = json_loadb(rec.p, rec.n, 0, NULL);
        if (!root)
            return NULL;
        json_object_foreach((json_t *)(uintptr_t)custom_fields, k, v)
            set_path(root, k, v);
        char *d = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (d)
            *len = strlen(d);
        return d;
    }
    aigw_sbuf_t b = { 0 };
    aigw_sbuf_addn(&b, rec.p, rec.n - 1);   /* without the closing brace */
    if (json_is_object(custom_fields))
        json_object_foreach((json_t *)(uintptr_t)custom_fields, k, v) {
            char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!d) {
                b.oom = 1;
                break;
            }
            aigw_sbuf_addn(&b, ",", 1);
            jstr(&b, k, strlen(k));
            aigw_sbuf_addn(&b, ":", 1);
            aigw_sbuf_add(&b, d);
            free(d);
        }
    aigw_sbuf_addn(&b, "}", 1);
    if (b.oom) {
        aigw_sbuf_free(&b);
        return NULL;
    }
    *len = b.n;
    return b.p;
}
