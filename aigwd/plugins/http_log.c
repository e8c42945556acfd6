/* aigwd/plugins/http_log.c: Kong's http-log (priority 12): every request's log record (the
 * serializer, plugins/logrec.h, with aigw's static `custom_fields` merged) is sent as JSON to
 * `http_endpoint` by a queue (plugins/logqueue.h): a batch of one entry when
 * queue.max_batch_size is 1 is the record itself, otherwise the batch is a JSON array.
 * A send succeeds when the collector answers a status below 300; anything else (refused,
 * timed out, unresolvable, >= 300) is retried with the queue's exponential backoff until
 * queue.max_retry_time, then dropped with a counted error. No request ever waits on the
 * collector: the log phase only copies the record into the queue.
 *
 * The HTTP client is libcurl, one easy handle per queue, used only on the queue's thread and
 * kept between batches so that the connection is reused (`keepalive` ms of idle time at
 * most). `timeout` (ms) bounds each send. The URL's userinfo becomes
 * "Authorization: Basic base64(userinfo)" and is never part of the URL curl sees nor of any
 * log line. Only http and https are allowed (no redirects followed, no proxy from the
 * environment). HTTPS verifies the collector's certificate against the system CAs (Kong
 * sends with ssl_verify = false; aigw does not ship logs to an unverified peer).
 *
 * Queues are shared as Kong shares them: the queue name is Kong's
 * "endpoint:method:content_type:timeout:keepalive:retry_count", to which aigw adds the
 * `headers` and the effective queue parameters (so that a change of either made through the
 * admin API takes effect at the next reload instead of being shadowed by the existing queue).
 * `custom_fields_by_lua` is accepted by the schema and ignored (aigw runs no Lua), with a
 * warning when an instance is configured. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/logplugin.h"
#include "plugins/logqueue.h"
#include "plugins/logrec.h"

#define SHUTDOWN_DEADLINE_MS 2000
#define RESP_BODY_KEEP 200

/* Process end: sends still running past this monotonic time (ns; 0: none) are aborted. */
static _Atomic uint64_t abort_after_ns;
static atomic_flag shutdown_once = ATOMIC_FLAG_INIT;
static atomic_int curl_ready;

typedef struct sink {
    char *url;                    /* without userinfo */
    char *hostport;               /* host:port, for messages */
    char *method;                 /* NULL: POST */
    struct curl_slist *headers;   /* Content-Type, Authorization, the `headers` map, Expect: */
    long timeout_ms;
    long keepalive_s;
    int array;                    /* max_batch_size > 1: the body is a JSON array */
    CURL *curl;                   /* created on the queue's thread */
    char *body;
    size_t body_cap;
    char resp[RESP_BODY_KEEP + 1];
    size_t resp_n;
} sink_t;

/* ---- the sink (queue thread) ----------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    size_t n = size * nmemb;
    size_t room = RESP_BODY_KEEP - s->resp_n;
    size_t k = n < room ? n : room;
    if (k) {
        memcpy(s->resp + s->resp_n, p, k);
        s->resp_n += k;
    }
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    uint64_t after = atomic_load(&abort_after_ns);
    return after && uv_hrtime() >= after;   /* non-zero aborts the transfer */
}

static int sink_setup(sink_t *s)
{
    if (s->curl)
        return 0;
    s->curl = curl_easy_init();
    if (!s->curl)
        return -1;
    CURL *c = s->curl;
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, s->keepalive_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, s->method);
    return 0;
}

/* Copies printable bytes of the collector's answer for a message. */
static void printable(char *dst, size_t cap, const char *src, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    dst[j] = '\0';
}

static int sink_send(void *ud, const char *const *entries, const size_t *lens, size_t n,
                     char *err, size_t errlen)
{
    sink_t *s = ud;
    if (sink_setup(s) != 0) {
        snprintf(err, errlen, "failed request to %s: cannot create an HTTP client",
                 s->hostport);
        return -1;
    }
    const char *body;
    size_t blen;
    if (!s->array && n == 1) {
        body = entries[0];
        blen = lens[0];
    } else {
        size_t need = 2 + (n ? n - 1 : 0);
        for (size_t i = 0; i < n; i++)
            need += lens[i];
        if (need > s->body_cap) {
            char *nb = realloc(s->body, need);
            if (!nb) {
                snprintf(err, errlen, "failed request to %s: out of memory", s->hostport);
                return -1;
            }
            s->body = nb;
            s->body_cap = need;
        }
        size_t k = 0;
        s->body[k++] = '[';
        for (size_t i = 0; i < n; i++) {
            if (i)
                s->body[k++] = ',';
            memcpy(s->body + k, entries[i], lens[i]);
            k += lens[i];
        }
        s->body[k++] = ']';
        body = s->body;
        blen = k;
    }
    char ebuf[CURL_ERROR_SIZE];
    ebuf[0] = '\0';
    s->resp_n = 0;
    curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(s->curl);
    curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "failed request to %s: %s", s->hostport,
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    AIGW_LOG(AIGW_LOG_DEBUG, "http-log sent data log server, %s HTTP status %ld", s->hostport,
             status);
    if (status < 300)
        return 0;
    char rb[RESP_BODY_KEEP + 1];
    printable(rb, sizeof(rb), s->resp, s->resp_n);
    snprintf(err, errlen, "request to %s returned status code %ld and body %s", s->hostport,
             status, rb);
    return -1;
}

static void sink_free(void *ud)
{
    sink_t *s = ud;
    if (!s)
        return;
    if (s->curl)
        curl_easy_cleanup(s->curl);
    curl_slist_free_all(s->headers);
    free(s->url);
    free(s->hostport);
    free(s->method);
    free(s->body);
    free(s);
}

/* ---- configure (loader thread) ----------------------------------------------------------- */

/* Appends one header line; 0 or -1 (out of memory). */
static int add_header(sink_t *s, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 4;
    char *line = malloc(n);
    if (!line)
        return -1;
    if (value[0])
        snprintf(line, n, "%s: %s", name, value);
    else
        snprintf(line, n, "%s;", name);   /* curl's way to send an empty value */
    struct curl_slist *l = curl_slist_append(s->headers, line);
    free(line);
    if (!l)
        return -1;
    s->headers = l;
    return 0;
}

/* Lua's tostring of a number as Kong's queue name shows it ("nil" when absent). */
static void lua_num(char *buf, size_t n, const json_t *v)
{
    if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%.14g", json_real_value(v));
    else
        snprintf(buf, n, "nil");
}

/* Splits http_endpoint: the URL without userinfo (and fragment), host:port, the raw
 * userinfo (NULL when none). -1 when the URL cannot be parsed or out of memory. */
static int split_url(const char *endpoint, char **url, char **hostport, char **userinfo,
                     char **label)
{
    *url = *hostport = *userinfo = *label = NULL;
    const char *p = strstr(endpoint, "://");
    if (!p)
        return -1;
    size_t sl = (size_t)(p - endpoint);
    const char *auth = p + 3;
    size_t al = strcspn(auth, "/?#");
    const char *rest = auth + al;
    size_t rl = strcspn(rest, "#");
    /* socket.url: userinfo ends at the first '@'. */
    const char *at = memchr(auth, '@', al);
    const char *host = auth;
    size_t hl = al;
    if (at) {
        host = at + 1;
        hl = al - (size_t)(host - auth);
        *userinfo = strndup(auth, (size_t)(at - auth));
        if (!*userinfo)
            return -1;
    }
    if (hl == 0)
        return -1;
    /* Default port as Kong's parse_url does. */
    const char *portp = NULL;
    if (host[0] == '[') {
        const char *rb = memchr(host, ']', hl);
        if (rb && (size_t)(rb - host) + 1 < hl && rb[1] == ':')
            portp = rb + 1;
    } else {
        portp = memchr(host, ':', hl);
    }
    size_t hn = portp ? (size_t)(portp - host) : hl;
    const char *dflt = (sl == 5 && strncasecmp(endpoint, "https", 5) == 0) ? "443" : "80";
    size_t pl = rl ? rl : 1;
    size_t cap = sl + 3 + hl + 8 + pl + 1;
    *url = malloc(cap);
    *hostport = malloc(hl + 8);
    *label = malloc(cap + 16);
    if (!*url || !*hostport || !*label) {
        free(*url);
        free(*hostport);
        free(*label);
        free(*userinfo);
        *url = *hostport = *userinfo = *label = NULL;
        return -1;
    }
    if (rl)
        snprintf(*url, cap, "%.*s://%.*s%.*s", (int)sl, endpoint, (int)hl, host, (int)rl, rest);
    else
        snprintf(*url, cap, "%.*s://%.*s/", (int)sl, endpoint, (int)hl, host);
    if (portp)
        snprintf(*hostport, hl + 8, "%.*s", (int)hl, host);
    else
        snprintf(*hostport, hl + 8, "%.*s:%s", (int)hn, host, dflt);
    size_t pathl = strcspn(rest, "?#");
    snprintf(*label, cap + 16, "http-log %.*s://%s%.*s", (int)sl, endpoint, *hostport,
             (int)pathl, pathl ? rest : "/");
    return 0;
}

static void warn_deprecated(const json_t *c, const char *label)
{
    const json_t *v = json_object_get(c, "retry_count");
    if (json_is_number(v) && json_number_value(v) != 10)
        AIGW_LOG(AIGW_LOG_WARN, "%s: the retry_count parameter no longer works, please update "
                 "your configuration to use initial_retry_delay and max_retry_time instead",
                 label);
    v = json_object_get(c, "queue_size");
    if (json_is_number(v) && json_number_value(v) != 1)
        AIGW_LOG(AIGW_LOG_WARN, "%s: the queue_size parameter is deprecated, please update "
                 "your configuration to use queue.max_batch_size instead", label);
    v = json_object_get(c, "flush_timeout");
    if (json_is_number(v) && json_number_value(v) != 2)
        AIGW_LOG(AIGW_LOG_WARN, "%s: the flush_timeout parameter is deprecated, please update "
                 "your configuration to use queue.max_coalescing_delay instead", label);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    const char *endpoint = json_string_value(json_object_get(c, "http_endpoint"));
    if (!endpoint || !*endpoint) {
        snprintf(err, errlen, "http-log: no http_endpoint");
        return NULL;
    }
    const char *method = json_string_value(json_object_get(c, "method"));
    const char *ctype = json_string_value(json_object_get(c, "content_type"));
    if (!method)
        method = "POST";
    if (!ctype)
        ctype = "application/json";
    const json_t *jt = json_object_get(c, "timeout");
    const json_t *jk = json_object_get(c, "keepalive");
    double timeout = json_is_number(jt) ? json_number_value(jt) : 10000;
    double keepalive = json_is_number(jk) ? json_number_value(jk) : 60000;

    char *url, *hostport, *userinfo, *label;
    if (split_url(endpoint, &url, &hostport, &userinfo, &label) != 0) {
        snprintf(err, errlen, "http-log: cannot parse http_endpoint");
        return NULL;
    }
    warn_deprecated(c, label);

    aigw_logq_opts_t opts;
    aigw_logq_opts_from_config(c, &opts);

    sink_t *s = calloc(1, sizeof(*s));
    char *name = NULL;
    if (!s)
        goto oom;
    s->url = url;
    s->hostport = hostport;
    url = hostport = NULL;
    if (strcmp(method, "POST") != 0 && !(s->method = strdup(method)))
        goto oom;
    s->timeout_ms = timeout > 0 ? (long)timeout : 0;
    if (s->timeout_ms == 0 && timeout > 0)
        s->timeout_ms = 1;
    s->keepalive_s = keepalive > 0 ? (long)(keepalive / 1000) : 100L * 365 * 86400;
    if (s->keepalive_s < 1)
        s->keepalive_s = 1;
    s->array = opts.max_batch_size > 1;
    if (add_header(s, "Content-Type", ctype) != 0)
        goto oom;
    int has_auth = 0;
    if (userinfo) {
        size_t ul = strlen(userinfo);
        size_t bl = 4 * ((ul + 2) / 3) + 1;
        char *b64 = malloc(bl);
        char *v = malloc(bl + 8);
        if (!b64 || !v) {
            free(b64);
            free(v);
            goto oom;
        }
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)userinfo, (int)ul);
        snprintf(v, bl + 8, "Basic %s", b64);
        OPENSSL_cleanse(b64, bl);
        free(b64);
        int rc = add_header(s, "Authorization", v);
        OPENSSL_cleanse(v, strlen(v));
        free(v);
        if (rc != 0)
            goto oom;
        has_auth = 1;
    }
    const json_t *hdrs = json_object_get(c, "headers");
    if (json_is_object(hdrs)) {
        const char *hk;
        json_t *hv;
        json_object_foreach((json_t *)(uintptr_t)hdrs, hk, hv) {
            /* Kong: never overrides Host, Content-Type, Content-Length, Authorization. */
            if (!json_is_string(hv) || strcasecmp(hk, "host") == 0 ||
                strcasecmp(hk, "content-type") == 0 || strcasecmp(hk, "content-length") == 0 ||
                (has_auth && strcasecmp(hk, "authorization") == 0))
                continue;
            if (add_header(s, hk, json_string_value(hv)) != 0)
                goto oom;
        }
    }
    {
        /* "Expect:" removes curl's Expect: 100-continue (no extra round trip). */
        struct curl_slist *l = curl_slist_append(s->headers, "Expect:");
        if (!l)
            goto oom;
        s->headers = l;
    }

    /* Kong's make_queue_name, then aigw's additions (see the top of this file). */
    {
        char t[64], ka[64], rc[64];
        lua_num(t, sizeof(t), jt);
        lua_num(ka, sizeof(ka), jk);
        lua_num(rc, sizeof(rc), json_object_get(c, "retry_count"));
        char *hj = json_is_object(hdrs) ? json_dumps(hdrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        size_t nl = strlen(endpoint) + strlen(method) + strlen(ctype) + strlen(t) +
                    strlen(ka) + strlen(rc) + (hj ? strlen(hj) : 4) + 256;
        name = malloc(nl);
        if (!name) {
            free(hj);
            goto oom;
        }
        snprintf(name, nl, "%s:%s:%s:%s:%s:%s headers=%s queue=%zu/%.17g/%zu/%zu/%.17g/%.17g/"
                 "%.17g", endpoint, method, ctype, t, ka, rc, hj ? hj : "null",
                 opts.max_batch_size, opts.max_coalescing_delay, opts.max_entries,
                 opts.max_bytes, opts.max_retry_time, opts.initial_retry_delay,
                 opts.max_retry_delay);
        free(hj);
    }
    if (userinfo) {
        OPENSSL_cleanse(userinfo, strlen(userinfo));
        free(userinfo);
        userinfo = NULL;
    }
    aigw_logq_sink_t sink = { sink_send, sink_free, s };
    s = NULL;   /* the queue owns it now (freed by acquire on failure or sharing) */
    aigw_logplugin_t *lp = aigw_logplugin_new(c, name, label, &opts, sink, err, errlen);
    if (name) {
        OPENSSL_cleanse(name, strlen(name));   /* it holds the endpoint's userinfo */
        free(name);
    }
    free(label);
    return lp;

oom:
    snprintf(err, errlen, "out of memory");
    if (userinfo) {
        OPENSSL_cleanse(userinfo, strlen(userinfo));
        free(userinfo);
    }
    free(url);
    free(hostport);
    free(label);
    free(name);
    sink_free(s);
    return NULL;
}

/* ---- phases ------------------------------------------------------------------------------- */

static int hl_global_init(const aigw_conf_t *conf)
{
    (void)conf;
    if (atomic_exchange(&curl_ready, 1) == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        atomic_store(&curl_ready, 0);
        AIGW_LOG(AIGW_LOG_ERR, "http-log: curl_global_init failed");
        return -1;
    }
    return 0;
}

/* Ends every log queue (file-log, tcp-log and udp-log use the same queues): each gets
 * SHUTDOWN_DEADLINE_MS to deliver; an HTTP send still running then is aborted. Once. */
static void hl_global_shutdown(void)
{
    if (atomic_flag_test_and_set(&shutdown_once))
        return;
    atomic_store(&abort_after_ns, uv_hrtime() + (uint64_t)SHUTDOWN_DEADLINE_MS * 1000000ull);
    aigw_logq_shutdown(SHUTDOWN_DEADLINE_MS);
    if (atomic_exchange(&curl_ready, 0) == 1)
        curl_global_cleanup();
}

const aigw_plugin_def_t aigw_plugin_def_http_log = {
    .name = "http-log",
    .priority = 12,
    .configure = configure,
    .free_conf = aigw_logplugin_free,
    .log = aigw_logplugin_log,
    .global_init = hl_global_init,
    .global_shutdown = hl_global_shutdown,
};
