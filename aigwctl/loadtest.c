/* aigwctl/loadtest.c: `loadtest`, an open-loop load generator on one libcurl multi handle,
 * driven on the calling thread. Request i is due at start + i / rate whatever happened to the
 * earlier ones; its latency is measured from that due time (no coordinated omission), so time
 * spent waiting for a free slot under --concurrency counts too. With --rpm the run starts at the
 * next whole minute (--rps: second), because Kong's rate-limiting counts per calendar window. */
#include "ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/sbuf.h"

#define MAX_REQUESTS 10000000L
#define MAX_EXPECT 32
#define MAX_ERRKINDS 16

typedef struct expect {
    char key[16]; /* "200" or "error" */
    long count;
} expect_t;

typedef struct errkind {
    char *reason; /* owned */
    long count;
} errkind_t;

/* The state of one run. */
typedef struct run {
    long n;             /* requests to send */
    double interval;    /* seconds between due times */
    double start;       /* monotonic seconds of request 0's due time */
    long sent, done;
    long inflight;
    double first_send, last_send; /* monotonic, actual */
    double max_lag;     /* worst actual send - due, seconds */
    double *lat_ms;     /* latencies of answered requests */
    long nlat;
    long status[600];   /* counts by HTTP status 100..599 */
    long errors;
    errkind_t errk[MAX_ERRKINDS];
    size_t nerrk;
    long aborted;       /* requests not sent or cut at the deadline */
    struct req *flying; /* in flight, newest first */
} run_t;

/* One request in flight; its easy handle's CURLOPT_PRIVATE. */
typedef struct req {
    struct req *prev, *next; /* the run's in-flight list */
    CURL *h;
    long idx;
    double due;
    double sent_at;
} req_t;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_discard(char *d, size_t sz, size_t nm, void *ud)
{
    (void)d;
    (void)ud;
    return sz * nm;
}

/* ---- argument checks ---- */

/* Is url's host loopback (127.0.0.0/8, ::1, localhost)? 1 yes, 0 no, -1 not an http(s) URL. */
static int url_is_loopback(const char *url, char *host_out, size_t cap)
{
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL;
    int r = -1;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        goto out;
    snprintf(host_out, cap, "%s", host);
    r = 0;
    size_t hl = strlen(host);
    if (hl && host[hl - 1] == '.')
        host[--hl] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0) {
        r = 1;
    } else if (host[0] == '[' && hl > 2) {
        host[hl - 1] = '\0';
        char *pct = strchr(host + 1, '%'); /* a zone id */
        if (pct)
            *pct = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6) == 1) {
            if (IN6_IS_ADDR_LOOPBACK(&a6))
                r = 1;
            else if (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127)
                r = 1;
        }
    } else if (inet_aton(host, &a4) == 1) {
        /* inet_aton reads what the resolver reads (127.1, 0x7f.1). */
        r = (ntohl(a4.s_addr) >> 24) == 127;
    }
out:
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return r;
}

/* "200=60,429=5,error=0" into e. Returns how many, or -1 (message in err). */
static int parse_expect(const char *s, expect_t *e, size_t max, char *err, size_t ecap)
{
    size_t k = 0;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || (size_t)(eq - p) >= sizeof(e[0].key) || k >= max) {
            snprintf(err, ecap, "'%.*s' is not CODE=COUNT", (int)len, p);
            return -1;
        }
        size_t kl = (size_t)(eq - p);
        memcpy(e[k].key, p, kl);
        e[k].key[kl] = '\0';
        int code_ok = kl == 3 && e[k].key[0] >= '1' && e[k].key[0] <= '5' && e[k].key[1] >= '0' &&
                      e[k].key[1] <= '9' && e[k].key[2] >= '0' && e[k].key[2] <= '9';
        if (!code_ok && strcmp(e[k].key, "error") != 0) {
            snprintf(err, ecap, "'%s' is not an HTTP status (100-599) or 'error'", e[k].key);
            return -1;
        }
        char num[24];
        size_t nl = len - kl - 1;
        if (nl == 0 || nl >= sizeof(num)) {
            snprintf(err, ecap, "'%.*s' is not CODE=COUNT", (int)len, p);
            return -1;
        }
        memcpy(num, eq + 1, nl);
        num[nl] = '\0';
        char *ne;
        errno = 0;
        long v = strtol(num, &ne, 10);
        if (*ne || errno || v < 0) {
            snprintf(err, ecap, "'%s' is not a count", num);
            return -1;
        }
        e[k].count = v;
        k++;
        p += len;
        if (*p == ',')
            p++;
    }
    if (k == 0) {
        snprintf(err, ecap, "nothing to expect");
        return -1;
    }
    return (int)k;
}

static int parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || !(v > 0))
        return -1;
    *out = v;
    return 0;
}

/* ---- recording ---- */

static void record_error(run_t *r, const char *reason)
{
    r->errors++;
    for (size_t i = 0; i < r->nerrk; i++)
        if (strcmp(r->errk[i].reason, reason) == 0) {
            r->errk[i].count++;
            return;
        }
    if (r->nerrk < MAX_ERRKINDS) {
        r->errk[r->nerrk].reason = strdup(reason);
        if (r->errk[r->nerrk].reason) {
            r->errk[r->nerrk].count = 1;
            r->nerrk++;
        }
    }
}

/* Take q off the multi handle and the in-flight list, and free it. */
static void drop(run_t *r, CURLM *m, req_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        r->flying = q->next;
    if (q->next)
        q->next->prev = q->prev;
    curl_multi_remove_handle(m, q->h);
    curl_easy_cleanup(q->h);
    free(q);
    r->inflight--;
}

static void finish(run_t *r, CURLM *m, req_t *q, CURLcode res)
{
    long code = 0;
    curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &code);
    if (res == CURLE_OK && code >= 100 && code < 600) {
        curl_off_t total_us = 0;
        curl_easy_getinfo(q->h, CURLINFO_TOTAL_TIME_T, &total_us);
        double lat = (q->sent_at - q->due) * 1000.0 + (double)total_us / 1000.0;
        r->lat_ms[r->nlat++] = lat;
        r->status[code]++;
    } else {
        char why[CURL_ERROR_SIZE + 32];
        if (res == CURLE_OK)
            snprintf(why, sizeof(why), "invalid HTTP status %ld", code);
        else {
            long oserr = 0;
            curl_easy_getinfo(q->h, CURLINFO_OS_ERRNO, &oserr);
            if (oserr)
                snprintf(why, sizeof(why), "%s: %s", curl_easy_strerror(res), strerror((int)oserr));
            else
                snprintf(why, sizeof(why), "%s", curl_easy_strerror(res));
        }
        record_error(r, why);
    }
    drop(r, m, q);
    r->done++;
}

/* ---- the report ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double q)
{
    long k = (long)ceil(q * (double)n);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static const double hist_le[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000 };
#define NHIST (sizeof(hist_le) / sizeof(hist_le[0]) + 1)

static long status_or_error(const run_t *r, const char *key)
{
    if (strcmp(key, "error") == 0)
        return r->errors + r->aborted;
    long code = strtol(key, NULL, 10);
    return code >= 100 && code < 600 ? r->status[code] : 0;
}

static double round3(double v)
{
    return round(v * 1000.0) / 1000.0;
}

static json_t *report_json(const run_t *r, const char *method, const char *url, double rate,
                           double elapsed, const long *hist)
{
    json_t *o = json_object();
    json_object_set_new(o, "url", json_string(url));
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "requests", json_integer(r->n));
    json_object_set_new(o, "sent", json_integer(r->sent));
    json_object_set_new(o, "completed", json_integer(r->done));
    json_object_set_new(o, "elapsed_s", json_real(round3(elapsed)));
    json_object_set_new(o, "target_rps", json_real(round3(rate)));
    json_object_set_new(o, "target_rpm", json_real(round3(rate * 60)));
    double span = r->last_send - r->first_send;
    if (r->sent > 1 && span > 0) {
        json_object_set_new(o, "achieved_rps", json_real(round3((double)(r->sent - 1) / span)));
        json_object_set_new(o, "achieved_rpm", json_real(round3((double)(r->sent - 1) / span * 60)));
    } else {
        json_object_set_new(o, "achieved_rps", json_null());
        json_object_set_new(o, "achieved_rpm", json_null());
    }
    json_object_set_new(o, "max_send_lag_ms", json_real(round3(r->max_lag * 1000)));
    json_t *st = json_object();
    for (int code = 100; code < 600; code++)
        if (r->status[code]) {
            char k[8];
            snprintf(k, sizeof(k), "%d", code);
            json_object_set_new(st, k, json_integer(r->status[code]));
        }
    if (r->errors + r->aborted)
        json_object_set_new(st, "error", json_integer(r->errors + r->aborted));
    json_object_set_new(o, "status", st);
    json_t *er = json_object();
    for (size_t i = 0; i < r->nerrk; i++)
        json_object_set_new(er, r->errk[i].reason, json_integer(r->errk[i].count));
    if (r->aborted)
        json_object_set_new(er, "not answered by the deadline", json_integer(r->aborted));
    json_object_set_new(o, "errors", er);
    json_t *lat = json_object();
    if (r->nlat) {
        double sum = 0;
        for (long i = 0; i < r->nlat; i++)
            sum += r->lat_ms[i];
        json_object_set_new(lat, "min", json_real(round3(r->lat_ms[0])));
        json_object_set_new(lat, "mean", json_real(round3(sum / (double)r->nlat)));
        json_object_set_new(lat, "p50", json_real(round3(pct(r->lat_ms, r->nlat, 0.50))));
        json_object_set_new(lat, "p90", json_real(round3(pct(r->lat_ms, r->nlat, 0.90))));
        json_object_set_new(lat, "p99", json_real(round3(pct(r->lat_ms, r->nlat, 0.99))));
        json_object_set_new(lat, "max", json_real(round3(r->lat_ms[r->nlat - 1])));
    } else {
        const char *ks[] = { "min", "mean", "p50", "p90", "p99", "max" };
        for (size_t i = 0; i < 6; i++)
            json_object_set_new(lat, ks[i], json_null());
    }
    json_object_set_new(o, "latency_ms", lat);
    json_t *h = json_array();
    for (size_t i = 0; i < NHIST; i++) {
        if (!hist[i])
            continue;
        json_t *b = json_object();
        json_object_set_new(b, "le_ms", i < NHIST - 1 ? json_real(hist_le[i]) : json_null());
        json_object_set_new(b, "count", json_integer(hist[i]));
        json_array_append_new(h, b);
    }
    json_object_set_new(o, "histogram", h);
    return o;
}

static void fmt_ms(char *b, size_t cap, double ms)
{
    if (ms >= 1000)
        snprintf(b, cap, "%.2f s", ms / 1000);
    else if (ms >= 10)
        snprintf(b, cap, "%.0f ms", ms);
    else
        snprintf(b, cap, "%.2f ms", ms);
}

static void report_human(ctl_t *c, const run_t *r, const char *method, const char *url, double rate,
                         double elapsed, const long *hist)
{
    printf("%sloadtest%s %s %s: %ld requests at %.4g/min (%.4g/s)\n", ctl_bold(c), ctl_reset(c),
           method, url, r->n, rate * 60, rate);
    double span = r->last_send - r->first_send;
    printf("  sent %ld, completed %ld in %.1f s", r->sent, r->done, elapsed);
    if (r->sent > 1 && span > 0)
        printf("; achieved %.4g/min (%.4g/s)", (double)(r->sent - 1) / span * 60,
               (double)(r->sent - 1) / span);
    printf("; max send lag %.1f ms\n", r->max_lag * 1000);
    printf("  %-8s %8s\n", "status", "count");
    for (int code = 100; code < 600; code++)
        if (r->status[code])
            printf("  %-8d %8ld\n", code, r->status[code]);
    if (r->errors + r->aborted) {
        printf("  %s%-8s %8ld%s\n", ctl_red(c), "error", r->errors + r->aborted, ctl_reset(c));
        for (size_t i = 0; i < r->nerrk; i++)
            printf("    %ld x %s\n", r->errk[i].count, r->errk[i].reason);
        if (r->aborted)
            printf("    %ld x not answered by the deadline\n", r->aborted);
    }
    if (r->nlat) {
        char a[32], b[32], d[32], e[32];
        fmt_ms(a, sizeof(a), pct(r->lat_ms, r->nlat, 0.50));
        fmt_ms(b, sizeof(b), pct(r->lat_ms, r->nlat, 0.90));
        fmt_ms(d, sizeof(d), pct(r->lat_ms, r->nlat, 0.99));
        fmt_ms(e, sizeof(e), r->lat_ms[r->nlat - 1]);
        printf("  latency from the scheduled send: p50 %s  p90 %s  p99 %s  max %s\n", a, b, d, e);
        printf("  histogram (latency, count):\n");
        long top = 0;
        size_t lo = NHIST, hi = 0;
        for (size_t i = 0; i < NHIST; i++)
            if (hist[i]) {
                if (hist[i] > top)
                    top = hist[i];
                if (lo == NHIST)
                    lo = i;
                hi = i;
            }
        for (size_t i = lo; i <= hi && lo < NHIST; i++) {
            char label[32];
            if (i == NHIST - 1)
                snprintf(label, sizeof(label), "> 30 s");
            else if (hist_le[i] >= 1000)
                snprintf(label, sizeof(label), "<= %g s", hist_le[i] / 1000);
            else
                snprintf(label, sizeof(label), "<= %g ms", hist_le[i]);
            int bar = top ? (int)((hist[i] * 40 + top - 1) / top) : 0;
            char bars[41];
            memset(bars, '#', (size_t)bar);
            bars[bar] = '\0';
            printf("    %-10s %-40s %ld\n", label, bars, hist[i]);
        }
    } else {
        printf("  no answers: no latencies\n");
    }
}

/* ---- the run ---- */

static void progress(const run_t *r, double now, double total)
{
    long ok = 0;
    for (int code = 200; code < 300; code++)
        ok += r->status[code];
    long other = r->done - ok - r->errors;
    fprintf(stderr, "\r\033[K  %ld/%ld sent, %ld done: %ld 2xx, %ld other, %ld errors; in flight %ld; %.1f/%.1f s",
            r->sent, r->n, r->done, ok, other, r->errors, r->inflight, now - r->start,
            total > 0 ? total : 0);
    fflush(stderr);
}

static req_t *start_one(ctl_t *c, CURLM *m, run_t *r, const char *url, const char *method,
                        const char *data, size_t dlen, struct curl_slist *hdrs)
{
    req_t *q = calloc(1, sizeof(*q));
    CURL *h = q ? curl_easy_init() : NULL;
    if (!h) {
        free(q);
        return NULL;
    }
    q->h = h;
    q->idx = r->sent;
    q->due = r->start + (double)r->sent * r->interval;
    ctl_curl_setup(c, h, 0);
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_discard);
    curl_easy_setopt(h, CURLOPT_PRIVATE, q);
    if (data) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)dlen);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 || data)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (curl_multi_add_handle(m, h) != CURLM_OK) {
        curl_easy_cleanup(h);
        free(q);
        return NULL;
    }
    q->next = r->flying;
    if (r->flying)
        r->flying->prev = q;
    r->flying = q;
    double now = mono_now();
    q->sent_at = now;
    if (r->sent == 0)
        r->first_send = now;
    r->last_send = now;
    if (now - q->due > r->max_lag)
        r->max_lag = now - q->due;
    r->sent++;
    r->inflight++;
    return q;
}

static int run_loadtest(ctl_t *c, const ctl_cmd_t *cmd, ctl_args_t *a)
{
    if (a->npos)
        return ctl_usage_error(cmd, "unexpected argument '%s' (the target is given with --url)",
                               a->pos[0]);
    const char *rpm_s = ctl_opt(a, "rpm"), *rps_s = ctl_opt(a, "rps");
    if (!!rpm_s == !!rps_s)
        return ctl_usage_error(cmd, "give the arrival rate with --rpm N or --rps N (one of them)");
    double rate;
    if (parse_rate(rpm_s ? rpm_s : rps_s, &rate) != 0)
        return ctl_usage_error(cmd, "--%s: '%s' is not a positive number", rpm_s ? "rpm" : "rps",
                               rpm_s ? rpm_s : rps_s);
    if (rpm_s)
        rate /= 60.0;
    if (rate > 100000)
        return ctl_usage_error(cmd, "the rate is above 100000 requests per second");
    const char *dur_s = ctl_opt(a, "duration"), *req_s = ctl_opt(a, "requests");
    if (dur_s && req_s)
        return ctl_usage_error(cmd, "give --duration or --requests, not both");
    long n;
    if (req_s) {
        char *end;
        errno = 0;
        n = strtol(req_s, &end, 10);
        if (*end || errno || n < 1 || n > MAX_REQUESTS)
            return ctl_usage_error(cmd, "--requests: '%s' is not a count from 1 to %ld", req_s,
                                   MAX_REQUESTS);
    } else {
        double d = rpm_s ? 60 : 10;
        if (dur_s && (ctl_parse_duration(dur_s, &d) != 0 || !(d > 0)))
            return ctl_usage_error(cmd, "--duration: '%s' is not a duration (30s, 2m, or seconds)", dur_s);
        double nn = floor(d * rate + 1e-9);
        if (nn > (double)MAX_REQUESTS)
            return ctl_usage_error(cmd, "that is more than %ld requests", MAX_REQUESTS);
        n = nn < 1 ? 1 : (long)nn;
    }
    long cap = 256;
    const char *cc = ctl_opt(a, "concurrency");
    if (cc) {
        char *end;
        errno = 0;
        cap = strtol(cc, &end, 10);
        if (*end || errno || cap < 1 || cap > 100000)
            return ctl_usage_error(cmd, "--concurrency: '%s' is not a number from 1 to 100000", cc);
    }
    long tolerance = 0;
    const char *tol = ctl_opt(a, "tolerance");
    if (tol) {
        char *end;
        errno = 0;
        tolerance = strtol(tol, &end, 10);
        if (*end || errno || tolerance < 0)
            return ctl_usage_error(cmd, "--tolerance: '%s' is not a count", tol);
    }
    expect_t exp[MAX_EXPECT];
    int nexp = 0;
    const char *exp_s = ctl_opt(a, "expect");
    if (exp_s) {
        char err[128];
        nexp = parse_expect(exp_s, exp, MAX_EXPECT, err, sizeof(err));
        if (nexp < 0)
            return ctl_usage_error(cmd, "--expect: %s (example: --expect 200=60,429=5)", err);
    }
    const char *hv[64];
    size_t nh = ctl_opt_all(a, "header", hv, 64);
    for (size_t i = 0; i < nh; i++) {
        const char *colon = strchr(hv[i], ':');
        if (!colon || colon == hv[i])
            return ctl_usage_error(cmd, "--header: '%s' is not 'Name: value'", hv[i]);
    }
    const char *data = ctl_opt(a, "data");
    const char *method = ctl_opt(a, "method");
    char mbuf[16];
    if (method) {
        size_t ml = strlen(method);
        if (ml == 0 || ml >= sizeof(mbuf))
            return ctl_usage_error(cmd, "--method: '%s' is not an HTTP method", method);
        for (size_t i = 0; i <= ml; i++) {
            char ch = method[i];
            if (ch && !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
                return ctl_usage_error(cmd, "--method: '%s' is not an HTTP method", method);
            mbuf[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
        }
        method = mbuf;
    } else {
        method = data ? "POST" : "GET";
    }
    /* The target. */
    aigw_sbuf_t url = { 0 };
    const char *u = ctl_opt(a, "url");
    if (u) {
        aigw_sbuf_add(&url, u);
    } else {
        const char *path = ctl_opt(a, "path");
        if (!path)
            path = "/";
        size_t bl = strlen(c->proxy_url);
        while (bl && c->proxy_url[bl - 1] == '/')
            bl--;
        aigw_sbuf_addn(&url, c->proxy_url, bl);
        if (path[0] != '/')
            aigw_sbuf_add(&url, "/");
        aigw_sbuf_add(&url, path);
    }
    if (url.oom || !url.p) {
        aigw_sbuf_free(&url);
        return ctl_usage_error(cmd, "out of memory");
    }
    char host[256] = "";
    int lb = url_is_loopback(url.p, host, sizeof(host));
    if (lb < 0) {
        int rc = ctl_usage_error(cmd, "--url: '%s' is not an http:// or https:// URL", url.p);
        aigw_sbuf_free(&url);
        return rc;
    }
    if (!lb && !ctl_opt_on(a, "allow-remote")) {
        int rc = ctl_usage_error(cmd,
                                 "refusing to load-test %s: it is not a loopback address (127.0.0.0/8, "
                                 "::1, localhost); add --allow-remote if you own it",
                                 host);
        aigw_sbuf_free(&url);
        return rc;
    }
    char *body = NULL;
    size_t blen = 0;
    if (data && data[0] == '@') {
        if (aigw_read_file(data + 1, 64u << 20, &body, &blen) != 0) {
            fprintf(stderr, "aigwctl: cannot read %s: %s\n", data + 1, strerror(errno));
            aigw_sbuf_free(&url);
            return CTL_EUSAGE;
        }
    } else if (data) {
        body = strdup(data);
        blen = strlen(data);
    }
    double timeout_s = (double)c->timeout_ms / 1000.0;
    double interval = 1.0 / rate;
    double span = (double)(n - 1) * interval;
    int align = !ctl_opt_on(a, "no-align");
    double period = rpm_s ? 60.0 : 1.0;

    /* The headers, and the token of --jwt-consumer (minted now, valid past the end). */
    struct curl_slist *hdrs = NULL;
    char *authz = NULL;
    int rc = CTL_OK;
    const char *jc = ctl_opt(a, "jwt-consumer");
    if (jc) {
        char *tok = NULL;
        long ttl = (long)(period + span + timeout_s) + 300;
        rc = ctl_jwt_mint(c, jc, ctl_opt(a, "jwt-key"), ctl_opt(a, "jwt-private-key"), ttl, &tok);
        if (rc == CTL_OK) {
            aigw_sbuf_t b = { 0 };
            aigw_sbuf_addf(&b, "Authorization: Bearer %s", tok);
            authz = b.p;
            hdrs = curl_slist_append(hdrs, authz ? authz : "");
        }
        free(tok);
    }
    for (size_t i = 0; i < nh && rc == CTL_OK; i++)
        hdrs = curl_slist_append(hdrs, hv[i]);

    run_t r = { 0 };
    CURLM *m = NULL;
    if (rc != CTL_OK)
        goto out;
    r.n = n;
    r.interval = interval;
    r.lat_ms = malloc((size_t)n * sizeof(double));
    m = curl_multi_init();
    if (!r.lat_ms || !m) {
        fprintf(stderr, "aigwctl: out of memory\n");
        rc = CTL_EAPI;
        goto out;
    }
    int progress_on = isatty(STDERR_FILENO);

    /* Wait for the next calendar window (and a little into it, so that the first request is
     * not counted in the window before when the clocks are a hair apart). */
    if (align) {
        double now = real_now();
        double target = ceil(now / period) * period;
        double guard = interval / 4 < 0.05 ? interval / 4 : 0.05;
        if (target - now < 0.001)
            target = now;
        target += guard;
        double wait = target - now;
        if (wait > 0.2)
            fprintf(stderr, "aigwctl: waiting %.0fs for the next %s window (--no-align starts at once)\n",
                    ceil(wait), rpm_s ? "minute" : "second");
        struct timespec ts;
        ts.tv_sec = (time_t)floor(target);
        ts.tv_nsec = (long)((target - floor(target)) * 1e9);
        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    r.start = mono_now();
    double t0 = r.start;
    /* Nothing may run past the last due time + the per-request timeout (+ a little). */
    double deadline = r.start + span + timeout_s + 1.0;
    double next_progress = 0;
    long limit = r.n;
    while (r.done + r.aborted < r.n) {
        double now = mono_now();
        while (r.sent < limit && r.inflight < cap && r.start + (double)r.sent * interval <= now) {
            if (!start_one(c, m, &r, url.p, method, body, blen, hdrs)) {
                fprintf(stderr, "aigwctl: cannot start a request (out of memory)\n");
                r.aborted += r.n - r.sent;
                limit = r.sent;
                break;
            }
        }
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            req_t *q = NULL;
            CURL *eh = msg->easy_handle;
            CURLcode res = msg->data.result;
            curl_easy_getinfo(eh, CURLINFO_PRIVATE, (char **)&q);
            finish(&r, m, q, res);
        }
        now = mono_now();
        if (now >= deadline && r.done + r.aborted < r.n) {
            /* Cut what is still in flight or not sent. */
            while (r.flying) {
                drop(&r, m, r.flying);
                r.aborted++;
            }
            r.aborted += limit - r.sent;
            break;
        }
        if (progress_on && now >= next_progress) {
            progress(&r, now, span);
            next_progress = now + 0.25;
        }
        if (r.done + r.aborted >= r.n)
            break;
        double wait = 0.1;
        if (r.sent < limit && r.inflight < cap) {
            double due = r.start + (double)r.sent * interval;
            wait = due - now;
        }
        if (wait > 0.1)
            wait = 0.1;
        if (wait > 0) {
            long cm = -1;
            curl_multi_timeout(m, &cm);
            int ms = (int)ceil(wait * 1000);
            if (cm >= 0 && cm < ms)
                ms = (int)cm;
            curl_multi_poll(m, NULL, 0, ms, NULL);
        }
    }
    double elapsed = mono_now() - t0;
    if (progress_on)
        fputs("\r\033[K", stderr);

    qsort(r.lat_ms, (size_t)r.nlat, sizeof(double), cmp_double);
    long hist[NHIST] = { 0 };
    for (long i = 0; i < r.nlat; i++) {
        size_t b = 0;
        while (b < NHIST - 1 && r.lat_ms[i] > hist_le[b])
            b++;
        hist[b]++;
    }
    json_t *rep = NULL;
    if (c->output == CTL_OUT_HUMAN && (c->tty || c->output_set))
        report_human(c, &r, method, url.p, rate, elapsed, hist);
    else
        rep = report_json(&r, method, url.p, rate, elapsed, hist);
    /* Expectations. */
    int missed = 0;
    json_t *misses = json_array();
    for (int i = 0; i < nexp; i++) {
        long got = status_or_error(&r, exp[i].key);
        if (labs(got - exp[i].count) > tolerance) {
            char line[160];
            snprintf(line, sizeof(line), "%s: expected %ld (tolerance %ld), got %ld", exp[i].key,
                     exp[i].count, tolerance, got);
            fprintf(stderr, "aigwctl: expectation not met: %s\n", line);
            json_array_append_new(misses, json_string(line));
            missed++;
        }
    }
    if (rep) {
        if (nexp) {
            json_t *e = json_object();
            json_object_set_new(e, "met", json_boolean(!missed));
            json_object_set_new(e, "tolerance", json_integer(tolerance));
            json_object_set(e, "misses", misses);
            json_object_set_new(rep, "expect", e);
        }
        if (c->output == CTL_OUT_YAML)
            ctl_print_yaml(stdout, rep);
        else
            ctl_print_json(stdout, rep);
        json_decref(rep);
    } else if (nexp && !missed) {
        printf("  expectations met: %s (tolerance %ld)\n", exp_s, tolerance);
    }
    json_decref(misses);
    long answered = r.n - r.errors - r.aborted;
    if (answered == 0)
        fprintf(stderr, "aigwctl: no request to %s was answered%s%s\n", url.p,
                r.nerrk ? ": " : "", r.nerrk ? r.errk[0].reason : "");
    if (nexp)
        rc = missed ? CTL_EEXPECT : CTL_OK;
    else
        rc = answered == 0 ? CTL_EAPI : CTL_OK;
    fflush(stdout);
out:
    while (r.flying)
        drop(&r, m, r.flying);
    if (m)
        curl_multi_cleanup(m);
    for (size_t i = 0; i < r.nerrk; i++)
        free(r.errk[i].reason);
    free(r.lat_ms);
    curl_slist_free_all(hdrs);
    if (authz)
        memset(authz, 0, strlen(authz));
    free(authz);
    free(body);
    aigw_sbuf_free(&url);
    return rc;
}

static const ctl_flag_t flags[] = {
    { "rpm", 0, "N", "arrival rate in requests per minute (may be fractional)", NULL, 0 },
    { "rps", 0, "N", "arrival rate in requests per second (may be fractional)", NULL, 0 },
    { "duration", 'd', "DURATION", "how long to send (30s, 2m; default 60s with --rpm, 10s with --rps)",
      NULL, 0 },
    { "requests", 'n', "N", "send exactly N requests (instead of --duration)", NULL, 0 },
    { "url", 'u', "URL", "the target (default: the context's proxy URL + --path)", NULL, 0 },
    { "path", 0, "PATH", "path on the proxy when --url is not given (default /)", NULL, 0 },
    { "header", 'H', "'NAME: VALUE'", "add a header to every request (repeatable)", NULL, 1 },
    { "method", 'X', "METHOD", "HTTP method (default GET, or POST with --data)", NULL, 0 },
    { "data", 0, "BODY|@FILE", "request body, or @FILE to read it from a file", NULL, 0 },
    { "jwt-consumer", 0, "NAME", "mint a token for this consumer (as jwt mint) and send it as Bearer",
      "consumer", 0 },
    { "jwt-key", 0, "KEY", "with --jwt-consumer: the credential's key, when there are several", NULL, 0 },
    { "jwt-private-key", 0, "FILE", "with --jwt-consumer: PEM private key for RS*/ES* credentials", "file",
      0 },
    { "concurrency", 'c', "N", "at most N requests in flight (default 256); later ones wait", NULL, 0 },
    { "no-align", 0, NULL, "start at once instead of at the next whole minute (--rpm) or second (--rps)",
      NULL, 0 },
    { "expect", 'e', "CODE=N,...", "expected counts by status ('error' for failures): exit 4 when missed",
      NULL, 0 },
    { "tolerance", 0, "N", "allowed difference for each --expect count (default 0)", NULL, 0 },
    { "allow-remote", 0, NULL, "allow a target that is not a loopback address", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

static const ctl_cmd_t cmds[] = {
    { "loadtest", "", "Send requests at a constant rate and report status counts and latencies",
      "An open-loop load generator: request i is sent at start + i/rate whether or not earlier ones\n"
      "have been answered, and its latency is measured from that scheduled time (no coordinated\n"
      "omission); with --concurrency N requests in flight, a due request waits and the wait counts.\n"
      "N requests are spread so that all fall inside the run: 65 requests at --rpm 65 take 59.1 s.\n"
      "Kong's rate-limiting counts per calendar second/minute, so with --rpm the run starts at the\n"
      "next whole minute (with --rps at the next second); --no-align starts at once.\n"
      "The per-request timeout is the global --timeout (seconds, default 10); the run never lasts\n"
      "longer than the last scheduled send plus that timeout.\n"
      "The report gives the counts by status code ('error' for connection failures, with the\n"
      "reason), the achieved rate, latency p50/p90/p99/max and a histogram; -o json for scripts\n"
      "(also when stdout is not a terminal). Example, to check a 60/minute limit:\n"
      "  aigwctl loadtest --rpm 65 --path /ai-workflow --expect 200=60,429=5\n"
      "Exit codes: 0 done (and --expect met), 4 an --expect count missed, 1 no request was answered\n"
      "(without --expect), 2 bad flags or a non-loopback target without --allow-remote.",
      flags, NULL, run_loadtest, NULL, 0 },
};

const ctl_cmd_t *ctl_cmds_loadtest(size_t *n)
{
    *n = sizeof(cmds) / sizeof(cmds[0]);
    return cmds;
}
