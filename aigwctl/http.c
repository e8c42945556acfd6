/* aigwctl/http.c: the admin API client. One easy handle per session (keep-alive across the
 * calls of a command or a shell session); -v shows each exchange on stderr with secrets masked. */
#include "ctl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sbuf.h"

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
    aigw_sbuf_t *b = ud;
    size_t n = sz * nm;
    aigw_sbuf_addn(b, d, n);
    return b->oom ? 0 : n;
}

char *ctl_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *o = malloc(n * 3 + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            o[k++] = (char)ch;
        } else {
            o[k++] = '%';
            o[k++] = hex[ch >> 4];
            o[k++] = hex[ch & 15];
        }
    }
    o[k] = '\0';
    return o;
}

/* Field names whose values -v never shows. */
static int secret_name(const char *name, size_t n)
{
    static const char *const names[] = { "secret", "password", "key", "token", "authorization",
                                         "cookie", "client_secret", "provision_key", "rsa_public_key",
                                         "private", "cert_key", "apikey" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t l = strlen(names[i]);
        for (size_t j = 0; j + l <= n; j++)
            if (strncasecmp(name + j, names[i], l) == 0)
                return 1;
    }
    return 0;
}

/* Write text to stderr with the values of secret-looking headers, JSON fields and form fields
 * replaced by "***". Line-oriented: good enough for a human reading -v. */
static void write_masked(const char *prefix, const char *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && d[e] != '\n')
            e++;
        const char *line = d + i;
        size_t ll = e - i;
        while (ll && (line[ll - 1] == '\r'))
            ll--;
        aigw_sbuf_t o = { 0 };
        /* A header line "Name: value". */
        const char *colon = memchr(line, ':', ll);
        if (colon && colon > line && !memchr(line, ' ', (size_t)(colon - line)) &&
            !memchr(line, '"', (size_t)(colon - line)) && !memchr(line, '=', ll) &&
            secret_name(line, (size_t)(colon - line))) {
            aigw_sbuf_addn(&o, line, (size_t)(colon - line));
            aigw_sbuf_add(&o, ": ***");
        } else {
            /* JSON "name": "value" and form name=value pairs. */
            size_t k = 0;
            while (k < ll) {
                if (line[k] == '"') {
                    size_t q = k + 1;
                    while (q < ll && line[q] != '"')
                        q++;
                    size_t r = q + 1;
                    while (r < ll && line[r] == ' ')
                        r++;
                    if (q < ll && r < ll && line[r] == ':' && secret_name(line + k + 1, q - k - 1)) {
                        aigw_sbuf_addn(&o, line + k, r + 1 - k);
                        size_t v = r + 1;
                        while (v < ll && line[v] == ' ')
                            v++;
                        if (v < ll && line[v] == '"') {
                            size_t ve = v + 1;
                            while (ve < ll && line[ve] != '"') {
                                if (line[ve] == '\\')
                                    ve++;
                                ve++;
                            }
                            aigw_sbuf_add(&o, " \"***\"");
                            k = ve < ll ? ve + 1 : ll;
                            continue;
                        }
                        k = r + 1;
                        continue;
                    }
                    aigw_sbuf_addn(&o, line + k, (q < ll ? q + 1 : ll) - k);
                    k = q < ll ? q + 1 : ll;
                    continue;
                }
                size_t s = k;
                while (k < ll && line[k] != '=' && line[k] != '&' && line[k] != '"')
                    k++;
                if (k < ll && line[k] == '=' && secret_name(line + s, k - s)) {
                    aigw_sbuf_addn(&o, line + s, k + 1 - s);
                    aigw_sbuf_add(&o, "***");
                    while (k < ll && line[k] != '&')
                        k++;
                    continue;
                }
                if (k == s) {
                    aigw_sbuf_addn(&o, line + k, 1);
                    k++;
                } else {
                    aigw_sbuf_addn(&o, line + s, k - s);
                }
            }
        }
        if (!o.oom && (ll || e < n))
            fprintf(stderr, "%s%s\n", prefix, o.p ? o.p : "");
        aigw_sbuf_free(&o);
        i = e + 1;
    }
}

static int on_debug(CURL *h, curl_infotype t, char *d, size_t n, void *ud)
{
    (void)h;
    (void)ud;
    switch (t) {
    case CURLINFO_HEADER_OUT:
        write_masked("> ", d, n);
        break;
    case CURLINFO_DATA_OUT:
        write_masked("> ", d, n > 4096 ? 4096 : n);
        break;
    case CURLINFO_HEADER_IN:
        write_masked("< ", d, n);
        break;
    case CURLINFO_DATA_IN:
        write_masked("< ", d, n > 4096 ? 4096 : n);
        break;
    case CURLINFO_TEXT:
        fprintf(stderr, "* %.*s", (int)n, d);
        break;
    default:
        break;
    }
    return 0;
}

void ctl_curl_setup(ctl_t *c, CURL *h, int admin)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 5000 ? c->timeout_ms : 5000L);
    if (c->ca_cert)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_cert);
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "aigwctl/" AIGW_VERSION);
    if (c->verbose && admin) {
        curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
        curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    }
}

int ctl_call(ctl_t *c, const char *method, const char *path, json_t *json, char *const *form,
             size_t nform, ctl_resp_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!c->curl)
        c->curl = curl_easy_init();
    CURL *h = c->curl;
    if (!h) {
        fprintf(stderr, "aigwctl: out of memory\n");
        return CTL_ECONN;
    }
    curl_easy_reset(h);
    ctl_curl_setup(c, h, 1);
    aigw_sbuf_t url = { 0 };
    size_t bl = strlen(c->admin_url);
    while (bl && c->admin_url[bl - 1] == '/')
        bl--;
    aigw_sbuf_addn(&url, c->admin_url, bl);
    aigw_sbuf_add(&url, path);
    aigw_sbuf_t body = { 0 };
    struct curl_slist *hdrs = NULL;
    for (size_t i = 0; i < c->nheaders; i++)
        hdrs = curl_slist_append(hdrs, c->headers[i]);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    char *jtext = NULL;
    if (json) {
        jtext = json_dumps(json, JSON_COMPACT);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, jtext ? jtext : "");
    } else if (form) {
        for (size_t i = 0; i < nform; i++) {
            const char *eq = strchr(form[i], '=');
            char *k = strndup(form[i], eq ? (size_t)(eq - form[i]) : strlen(form[i]));
            char *ek = k ? ctl_escape(k) : NULL;
            char *ev = ctl_escape(eq ? eq + 1 : "");
            if (i)
                aigw_sbuf_add(&body, "&");
            aigw_sbuf_add(&body, ek ? ek : "");
            aigw_sbuf_add(&body, "=");
            aigw_sbuf_add(&body, ev ? ev : "");
            free(k);
            free(ek);
            free(ev);
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.p ? body.p : "");
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0 || strcmp(method, "HEAD") == 0) {
        if (!json && !form)
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_URL, url.p ? url.p : "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    aigw_sbuf_t resp = { 0 };
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    char errbuf[CURL_ERROR_SIZE] = { 0 };
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode r = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    free(jtext);
    aigw_sbuf_free(&body);
    int rc;
    if (r != CURLE_OK) {
        fprintf(stderr, "aigwctl: cannot reach the admin API at %s: %s\n", url.p ? url.p : "",
                errbuf[0] ? errbuf : curl_easy_strerror(r));
        aigw_sbuf_free(&resp);
        rc = CTL_ECONN;
    } else {
        out->body = resp.p;
        out->len = resp.n;
        if (resp.p && resp.n) {
            json_error_t je;
            out->json = json_loadb(resp.p, resp.n, 0, &je);
        }
        rc = out->status >= 400 ? CTL_EAPI : CTL_OK;
    }
    aigw_sbuf_free(&url);
    return rc;
}

void ctl_resp_free(ctl_resp_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Field errors: {"fields": {"name": "msg", "config": {"minute": "msg"}, "paths": ["msg"]}}. */
static void print_fields(const char *prefix, json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            char p[256];
            snprintf(p, sizeof(p), "%s%s%s", prefix, *prefix ? "." : "", k);
            print_fields(p, x);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            if (json_is_null(x))
                continue;
            char p[256];
            snprintf(p, sizeof(p), "%s[%zu]", prefix, i + 1);
            print_fields(json_is_string(x) ? prefix : p, x);
        }
    } else if (json_is_string(v)) {
        fprintf(stderr, "  %s: %s\n", *prefix ? prefix : "(entity)", json_string_value(v));
    }
}

int ctl_report_error(ctl_t *c, const ctl_resp_t *r)
{
    const char *msg = NULL;
    json_t *fields = NULL;
    if (r->json && json_is_object(r->json)) {
        msg = json_string_value(json_object_get(r->json, "message"));
        fields = json_object_get(r->json, "fields");
    }
    fprintf(stderr, "%saigwctl: the admin API answered %ld%s: %s\n", ctl_red(c), r->status,
            ctl_reset(c), msg ? msg : (r->body && r->len < 512 ? r->body : "(no message)"));
    if (fields && json_object_size(fields)) {
        fprintf(stderr, "field errors:\n");
        print_fields("", fields);
    }
    return CTL_EAPI;
}

int ctl_list_all(ctl_t *c, const char *path, json_t *out)
{
    char *next = NULL;
    int rc = CTL_OK;
    const char *cur = path;
    for (int pages = 0; pages < 100000; pages++) {
        ctl_resp_t r;
        aigw_sbuf_t p = { 0 };
        aigw_sbuf_add(&p, cur);
        if (!strstr(cur, "size="))
            aigw_sbuf_add(&p, strchr(cur, '?') ? "&size=1000" : "?size=1000");
        rc = ctl_call(c, "GET", p.p ? p.p : path, NULL, NULL, 0, &r);
        aigw_sbuf_free(&p);
        if (rc != CTL_OK) {
            if (rc == CTL_EAPI)
                ctl_report_error(c, &r);
            ctl_resp_free(&r);
            break;
        }
        json_t *data = r.json ? json_object_get(r.json, "data") : NULL;
        if (json_is_array(data))
            json_array_extend(out, data);
        const char *nx = r.json ? json_string_value(json_object_get(r.json, "next")) : NULL;
        free(next);
        next = nx ? strdup(nx) : NULL;
        ctl_resp_free(&r);
        if (!next)
            break;
        cur = next;
    }
    free(next);
    return rc;
}
