/* aigwd/proxy/metrics.c: see metrics.h. Metric names, label names and order, help texts and
 * bucket boundaries are Kong 3.9's (kong/plugins/prometheus/exporter.lua); the output order
 * is the one Kong's prometheus.lua produces by sorting the metric keys. */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "http/server.h"
#include "plugins/logqueue.h"
#include "proxy/balancer.h"
#include "proxy/loader.h"
#include "proxy/metrics.h"
#include "snapshot/snapshot.h"

/* ---- families -------------------------------------------------------------------------- */

/* Series kinds, in the output order of their families. */
enum { K_BW, K_REQ, K_LAT_KONG, K_LAT_REQ, K_LAT_UP, K_COUNT };

static const uint32_t kong_buckets[] = { 1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500,
                                         750, 1000, 3000, 6000 };
static const uint32_t upstream_buckets[] = { 25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000,
                                             10000, 30000, 60000 };
#define NB_KONG (sizeof(kong_buckets) / sizeof(kong_buckets[0]))
#define NB_UP (sizeof(upstream_buckets) / sizeof(upstream_buckets[0]))

typedef struct family {
    const char *name, *help, *type;
    const uint32_t *buckets;      /* histograms */
    size_t nb;
} family_t;

static const family_t families[K_COUNT] = {
    [K_BW] = { "kong_bandwidth_bytes", "Total bandwidth (ingress/egress) throughput in bytes",
               "counter", NULL, 0 },
    [K_REQ] = { "kong_http_requests_total", "HTTP status codes per consumer/service/route in Kong",
                "counter", NULL, 0 },
    [K_LAT_KONG] = { "kong_kong_latency_ms",
                     "Latency added by Kong and enabled plugins for each service/route in Kong",
                     "histogram", kong_buckets, NB_KONG },
    [K_LAT_REQ] = { "kong_request_latency_ms",
                    "Total latency incurred during requests for each service/route in Kong",
                    "histogram", upstream_buckets, NB_UP },
    [K_LAT_UP] = { "kong_upstream_latency_ms",
                   "Latency added by upstream response for each service/route in Kong",
                   "histogram", upstream_buckets, NB_UP },
};

/* Values per series: counters 1; histograms count, sum, then one per bucket (not cumulative;
 * the +Inf bucket is the count). */
static size_t n_values(int kind)
{
    return families[kind].buckets ? 2 + families[kind].nb : 1;
}

/* ---- shards ---------------------------------------------------------------------------- */

typedef struct series {
    uint32_t hash;
    int kind;
    char *labels;                 /* label pairs without braces, NUL-terminated */
    size_t labels_n;
    _Atomic uint64_t v[];
} series_t;

#define CHUNK 256
#define N_CHUNKS (AIGW_METRICS_MAX_SERIES / CHUNK + 1)

typedef struct shard {
    struct shard *next;
    series_t **chunks[N_CHUNKS];  /* append-only; a chunk pointer is set before n covers it */
    _Atomic size_t n;             /* published with release: series [0, n) are complete */
    uint32_t *index;              /* writer-private open addressing: item + 1, 0 empty */
    size_t index_cap;             /* power of two */
    aigw_sbuf_t scratch;          /* writer-private label buffer */
} shard_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static shard_t *g_shards;                 /* under g_lock */
static _Atomic uint64_t g_gen = 1;        /* bumped by shutdown: thread-local shards expire */
static _Atomic size_t g_series;           /* series over all shards */
static _Atomic uint64_t g_bytes;          /* bytes held by the shards */
static _Atomic uint64_t g_dropped;        /* observations lost to the series cap */
static _Atomic uint64_t g_rl_rejected;
static _Atomic int g_plugins;
static _Atomic int g_export_health;

static _Thread_local shard_t *tl_shard;
static _Thread_local uint64_t tl_gen;

static series_t *item_at(shard_t *s, size_t i)
{
    return s->chunks[i / CHUNK][i % CHUNK];
}

static shard_t *my_shard(void)
{
    uint64_t gen = atomic_load_explicit(&g_gen, memory_order_acquire);
    if (tl_shard && tl_gen == gen)
        return tl_shard;
    shard_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->index_cap = 64;
    s->index = calloc(s->index_cap, sizeof(*s->index));
    if (!s->index) {
        free(s);
        return NULL;
    }
    atomic_fetch_add(&g_bytes, sizeof(*s) + s->index_cap * sizeof(*s->index));
    pthread_mutex_lock(&g_lock);
    s->next = g_shards;
    g_shards = s;
    gen = atomic_load(&g_gen);
    pthread_mutex_unlock(&g_lock);
    tl_shard = s;
    tl_gen = gen;
    return s;
}

static uint32_t hash_of(int kind, const char *p, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

static int index_grow(shard_t *s)
{
    size_t cap = s->index_cap * 2;
    uint32_t *ix = calloc(cap, sizeof(*ix));
    if (!ix)
        return -1;
    size_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        size_t j = item_at(s, i)->hash & (cap - 1);
        while (ix[j])
            j = (j + 1) & (cap - 1);
        ix[j] = (uint32_t)(i + 1);
    }
    atomic_fetch_add(&g_bytes, (cap - s->index_cap) * sizeof(*ix));
    free(s->index);
    s->index = ix;
    s->index_cap = cap;
    return 0;
}

/* The series (kind, labels) of this thread's shard, created if needed; NULL when the cap is
 * reached (counted) or out of memory. */
static series_t *lookup(shard_t *s, int kind, const char *labels, size_t n)
{
    uint32_t h = hash_of(kind, labels, n);
    size_t j = h & (s->index_cap - 1);
    while (s->index[j]) {
        series_t *e = item_at(s, s->index[j] - 1);
        if (e->hash == h && e->kind == kind && e->labels_n == n && memcmp(e->labels, labels, n) == 0)
            return e;
        j = (j + 1) & (s->index_cap - 1);
    }
    size_t total = atomic_fetch_add(&g_series, 1);
    size_t i = atomic_load_explicit(&s->n, memory_order_relaxed);
    if (total >= AIGW_METRICS_MAX_SERIES || i >= (size_t)N_CHUNKS * CHUNK)
        goto drop;
    if ((i + 1) * 2 > s->index_cap) {
        if (index_grow(s) != 0)
            goto drop;
        j = h & (s->index_cap - 1);
        while (s->index[j])
            j = (j + 1) & (s->index_cap - 1);
    }
    if (!s->chunks[i / CHUNK]) {
        s->chunks[i / CHUNK] = calloc(CHUNK, sizeof(series_t *));
        if (!s->chunks[i / CHUNK])
            goto drop;
        atomic_fetch_add(&g_bytes, CHUNK * sizeof(series_t *));
    }
    size_t nv = n_values(kind);
    size_t size = sizeof(series_t) + nv * sizeof(_Atomic uint64_t);
    series_t *e = malloc(size);
    char *lab = malloc(n + 1);
    if (!e || !lab) {
        free(e);
        free(lab);
        goto drop;
    }
    memcpy(lab, labels, n);
    lab[n] = '\0';
    e->hash = h;
    e->kind = kind;
    e->labels = lab;
    e->labels_n = n;
    for (size_t k = 0; k < nv; k++)
        atomic_init(&e->v[k], 0);
    s->chunks[i / CHUNK][i % CHUNK] = e;
    s->index[j] = (uint32_t)(i + 1);
    atomic_fetch_add(&g_bytes, size + n + 1);
    atomic_store_explicit(&s->n, i + 1, memory_order_release);
    return e;
drop:
    atomic_fetch_sub(&g_series, 1);
    atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
    return NULL;
}

static void shard_free(shard_t *s)
{
    size_t n = atomic_load(&s->n);
    for (size_t i = 0; i < n; i++) {
        series_t *e = item_at(s, i);
        free(e->labels);
        free(e);
    }
    for (size_t c = 0; c < N_CHUNKS; c++)
        free(s->chunks[c]);
    free(s->index);
    aigw_sbuf_free(&s->scratch);
    free(s);
}

void aigw_metrics_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    shard_t *s = g_shards;
    g_shards = NULL;
    atomic_fetch_add(&g_gen, 1);
    atomic_store(&g_series, 0);
    atomic_store(&g_bytes, 0);
    atomic_store(&g_dropped, 0);
    atomic_store(&g_rl_rejected, 0);
    atomic_store(&g_export_health, 0);
    pthread_mutex_unlock(&g_lock);
    while (s) {
        shard_t *next = s->next;
        shard_free(s);
        s = next;
    }
}

/* ---- label text ------------------------------------------------------------------------- */

/* Length of the longest valid UTF-8 prefix of v (prometheus.lua validate_utf8_string). */
static size_t utf8_prefix(aigw_str_t v)
{
    const unsigned char *p = (const unsigned char *)v.p;
    size_t i = 0;
    while (i < v.n) {
        unsigned char c = p[i];
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return i;
        }
        if (i + len >= v.n)       /* the continuation bytes are i+1 .. i+len */
            return i;
        for (size_t k = 1; k <= len; k++) {
            unsigned char b = p[i + k];
            if (b < lo || b > hi)
                return i;
            lo = 0x80;
            hi = 0xbf;
        }
        i += len + 1;
    }
    return i;
}

void aigw_metrics__escape(aigw_sbuf_t *out, aigw_str_t v)
{
    size_t n = v.p ? utf8_prefix(v) : 0;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (v.p[i]) {
        case '\\': rep = "\\\\"; break;
        case '"': rep = "\\\""; break;
        case '\n': rep = "\\n"; break;
        default: break;
        }
        if (!rep)
            continue;
        aigw_sbuf_addn(out, v.p + run, i - run);
        aigw_sbuf_add(out, rep);
        run = i + 1;
    }
    aigw_sbuf_addn(out, v.p + run, n - run);
}

static void label(aigw_sbuf_t *b, const char *name, aigw_str_t v, int first)
{
    if (!first)
        aigw_sbuf_addn(b, ",", 1);
    aigw_sbuf_add(b, name);
    aigw_sbuf_addn(b, "=\"", 2);
    aigw_metrics__escape(b, v);
    aigw_sbuf_addn(b, "\"", 1);
}

/* ---- recording -------------------------------------------------------------------------- */

static series_t *series_for(shard_t *s, int kind)
{
    if (s->scratch.oom) {
        aigw_sbuf_free(&s->scratch);
        return NULL;
    }
    return lookup(s, kind, s->scratch.p ? s->scratch.p : "", s->scratch.n);
}

static void observe_hist(shard_t *s, int kind, long long v)
{
    if (v < 0)
        return;
    series_t *e = series_for(s, kind);
    if (!e)
        return;
    const family_t *f = &families[kind];
    atomic_fetch_add_explicit(&e->v[0], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->v[1], (uint64_t)v, memory_order_relaxed);
    for (size_t i = 0; i < f->nb; i++) {
        if ((uint64_t)v <= f->buckets[i]) {
            atomic_fetch_add_explicit(&e->v[2 + i], 1, memory_order_relaxed);
            break;
        }
    }
}

static void bandwidth(shard_t *s, const aigw_metrics_obs_t *o, const char *dir, uint64_t n)
{
    if (n == 0)
        return;
    s->scratch.n = 0;
    label(&s->scratch, "service", o->service, 1);
    label(&s->scratch, "route", o->route, 0);
    label(&s->scratch, "direction", aigw_str_c(dir), 0);
    label(&s->scratch, "workspace", AIGW_STR("default"), 0);
    label(&s->scratch, "consumer", o->consumer, 0);
    series_t *e = series_for(s, K_BW);
    if (e)
        atomic_fetch_add_explicit(&e->v[0], n, memory_order_relaxed);
}

void aigw_metrics_observe(const aigw_metrics_obs_t *o)
{
    shard_t *s = my_shard();
    if (!s) {
        atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
        return;
    }
    if (o->has_bandwidth) {
        bandwidth(s, o, "ingress", o->ingress);
        bandwidth(s, o, "egress", o->egress);
    }
    if (o->has_status) {
        char code[16];
        int cn = snprintf(code, sizeof(code), "%d", o->code);
        s->scratch.n = 0;
        label(&s->scratch, "service", o->service, 1);
        label(&s->scratch, "route", o->route, 0);
        label(&s->scratch, "code", (aigw_str_t){ code, (size_t)cn }, 0);
        label(&s->scratch, "source", o->from_service ? AIGW_STR("service") : AIGW_STR("kong"), 0);
        label(&s->scratch, "workspace", AIGW_STR("default"), 0);
        label(&s->scratch, "consumer", o->consumer, 0);
        series_t *e = series_for(s, K_REQ);
        if (e)
            atomic_fetch_add_explicit(&e->v[0], 1, memory_order_relaxed);
    }
    if (o->has_latency) {
        s->scratch.n = 0;
        label(&s->scratch, "service", o->service, 1);
        label(&s->scratch, "route", o->route, 0);
        label(&s->scratch, "workspace", AIGW_STR("default"), 0);
        observe_hist(s, K_LAT_REQ, o->request_ms);
        observe_hist(s, K_LAT_UP, o->upstream_ms);
        observe_hist(s, K_LAT_KONG, o->kong_ms);
    }
}

void aigw_metrics_plugin_ref(int delta)
{
    atomic_fetch_add(&g_plugins, delta);
}

void aigw_metrics_export_upstream_health(int on)
{
    /* a plain store every request would make the cache line bounce between workers */
    if (atomic_load_explicit(&g_export_health, memory_order_relaxed) != !!on)
        atomic_store_explicit(&g_export_health, !!on, memory_order_relaxed);
}

void aigw_metrics_ratelimit_rejected(void)
{
    atomic_fetch_add_explicit(&g_rl_rejected, 1, memory_order_relaxed);
}

/* ---- rendering -------------------------------------------------------------------------- */

typedef struct group {
    int kind;
    const char *labels;
    uint64_t *v;                  /* n_values(kind) sums */
} group_t;

static int cmp_series(const void *a, const void *b)
{
    const series_t *x = *(const series_t *const *)a, *y = *(const series_t *const *)b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->labels, y->labels);
}

static void head(aigw_sbuf_t *out, const char *name, const char *help, const char *type)
{
    aigw_sbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(aigw_sbuf_t *out, const char *name, const char *suffix, const char *labels,
                   const char *extra, uint64_t v)
{
    aigw_sbuf_add(out, name);
    aigw_sbuf_add(out, suffix);
    if ((labels && *labels) || extra) {
        aigw_sbuf_addn(out, "{", 1);
        if (labels)
            aigw_sbuf_add(out, labels);
        if (extra) {
            if (labels && *labels)
                aigw_sbuf_addn(out, ",", 1);
            aigw_sbuf_add(out, extra);
        }
        aigw_sbuf_addn(out, "}", 1);
    }
    aigw_sbuf_addf(out, " %" PRIu64 "\n", v);
}

/* Every sample of the series of one kind: groups[lo, hi). */
static void render_family(aigw_sbuf_t *out, const group_t *g, size_t n)
{
    if (n == 0)
        return;
    const family_t *f = &families[g[0].kind];
    head(out, f->name, f->help, f->type);
    if (!f->buckets) {
        for (size_t i = 0; i < n; i++)
            sample(out, f->name, "", g[i].labels, NULL, g[i].v[0]);
        return;
    }
    /* Kong's sorted keys: every _bucket line, then _count, then _sum; a bucket appears once
     * an observation reached it (its cumulative count is not 0). */
    for (size_t i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (size_t k = 0; k < f->nb; k++) {
            cum += g[i].v[2 + k];
            if (!cum)
                continue;
            char le[32];
            snprintf(le, sizeof(le), "le=\"%" PRIu32 "\"", f->buckets[k]);
            sample(out, f->name, "_bucket", g[i].labels, le, cum);
        }
        sample(out, f->name, "_bucket", g[i].labels, "le=\"+Inf\"", g[i].v[0]);
    }
    for (size_t i = 0; i < n; i++)
        sample(out, f->name, "_count", g[i].labels, NULL, g[i].v[0]);
    for (size_t i = 0; i < n; i++)
        sample(out, f->name, "_sum", g[i].labels, NULL, g[i].v[1]);
}

/* The summed series, sorted by kind then labels. *n_out groups; NULL with 0 when none.
 * Holds g_lock while reading the shards. */
static group_t *collect(size_t *n_out, uint64_t **vals_out)
{
    *n_out = 0;
    *vals_out = NULL;
    pthread_mutex_lock(&g_lock);
    size_t total = 0;
    for (shard_t *s = g_shards; s; s = s->next)
        total += atomic_load_explicit(&s->n, memory_order_acquire);
    series_t **all = total ? malloc(total * sizeof(*all)) : NULL;
    group_t *groups = total ? malloc(total * sizeof(*groups)) : NULL;
    uint64_t *vals = total ? calloc(total * (2 + NB_KONG), sizeof(*vals)) : NULL;
    size_t k = 0, ng = 0;
    if (!all || !groups || !vals)
        goto out;
    for (shard_t *s = g_shards; s && k < total; s = s->next) {
        size_t n = atomic_load_explicit(&s->n, memory_order_acquire);
        for (size_t i = 0; i < n && k < total; i++)
            all[k++] = item_at(s, i);
    }
    qsort(all, k, sizeof(*all), cmp_series);
    for (size_t i = 0; i < k; i++) {
        const series_t *e = all[i];
        if (!ng || groups[ng - 1].kind != e->kind || strcmp(groups[ng - 1].labels, e->labels)) {
            groups[ng].kind = e->kind;
            groups[ng].labels = e->labels;      /* lives until shutdown */
            groups[ng].v = vals + ng * (2 + NB_KONG);
            ng++;
        }
        size_t nv = n_values(e->kind);
        for (size_t j = 0; j < nv; j++)
            groups[ng - 1].v[j] += atomic_load_explicit(&e->v[j], memory_order_relaxed);
    }
out:
    pthread_mutex_unlock(&g_lock);
    free(all);
    if (!ng) {
        free(groups);
        free(vals);
        return NULL;
    }
    *n_out = ng;
    *vals_out = vals;
    return groups;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

typedef struct hline {
    char *labels;
    int value;
} hline_t;

static int cmp_hline(const void *a, const void *b)
{
    return strcmp(((const hline_t *)a)->labels, ((const hline_t *)b)->labels);
}

/* kong_upstream_target_health of the current runtime's balancers (exporter.lua
 * metric_data): four series per target address, value 1 for its state. */
static void render_upstream_health(aigw_sbuf_t *out, aigw_runtime_t *rt)
{
    static const char *const states[] = { "healthchecks_off", "healthy", "unhealthy",
                                          "dns_error" };
    hline_t *lines = NULL;
    size_t n = 0, cap = 0;
    size_t nb = rt && rt->balancers ? aigw_balancers__count(rt->balancers) : 0;
    for (size_t i = 0; i < nb; i++) {
        const aigw_balancer_t *b = aigw_balancers__at(rt->balancers, i);
        json_t *body = aigw_balancers_health_json(rt->balancers, aigw_balancer_id(b), 0, NULL);
        size_t ti;
        json_t *t;
        json_array_foreach(json_object_get(body, "data"), ti, t) {
            const char *target = json_string_value(json_object_get(t, "target"));
            json_t *addrs = json_object_get(json_object_get(t, "data"), "addresses");
            size_t na = json_array_size(addrs);
            for (size_t a = 0; a < (na ? na : 1); a++) {
                char addr[128] = "";
                char status[32] = "dns_error";
                if (na) {
                    json_t *ad = json_array_get(addrs, a);
                    const char *ip = json_string_value(json_object_get(ad, "ip"));
                    const char *h = json_string_value(json_object_get(ad, "health"));
                    snprintf(addr, sizeof(addr), "%s:%lld", ip ? ip : "",
                             (long long)json_integer_value(json_object_get(ad, "port")));
                    size_t k = 0;
                    for (; h && h[k] && k + 1 < sizeof(status); k++)
                        status[k] = (char)(h[k] >= 'A' && h[k] <= 'Z' ? h[k] + 32 : h[k]);
                    status[k] = '\0';
                }
                for (size_t s = 0; s < 4; s++) {
                    if (n == cap) {
                        size_t nc = cap ? cap * 2 : 16;
                        hline_t *nl = realloc(lines, nc * sizeof(*nl));
                        if (!nl)
                            goto done;
                        lines = nl;
                        cap = nc;
                    }
                    aigw_sbuf_t lb = { 0 };
                    label(&lb, "upstream", aigw_str_c(aigw_balancer_name(b)), 1);
                    label(&lb, "target", aigw_str_c(target ? target : ""), 0);
                    label(&lb, "address", aigw_str_c(addr), 0);
                    label(&lb, "state", aigw_str_c(states[s]), 0);
                    label(&lb, "subsystem", AIGW_STR("http"), 0);
                    if (lb.oom || !lb.p) {
                        aigw_sbuf_free(&lb);
                        goto done;
                    }
                    lines[n].labels = lb.p;
                    lines[n].value = strcmp(status, states[s]) == 0;
                    n++;
                }
            }
        }
    done:
        json_decref(body);
    }
    head(out, "kong_upstream_target_health",
         "Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|"
         "dns_error, value is 1 when state is populated.",
         "gauge");
    if (n)
        qsort(lines, n, sizeof(*lines), cmp_hline);
    for (size_t i = 0; i < n; i++) {
        sample(out, "kong_upstream_target_health", "", lines[i].labels, NULL,
               (uint64_t)lines[i].value);
        free(lines[i].labels);
    }
    free(lines);
}

static void labelled(aigw_sbuf_t *out, const char *name, aigw_str_t node, const char *l2,
                     const char *v2, const char *l3, const char *v3, uint64_t v)
{
    aigw_sbuf_t lb = { 0 };
    label(&lb, "node_id", node, 1);
    if (l2)
        label(&lb, l2, aigw_str_c(v2), 0);
    if (l3)
        label(&lb, l3, aigw_str_c(v3), 0);
    if (!lb.oom)
        sample(out, name, "", lb.p ? lb.p : "", NULL, v);
    else
        out->oom = 1;
    aigw_sbuf_free(&lb);
}

static void render_kind(aigw_sbuf_t *out, const group_t *g, size_t n, int kind)
{
    size_t lo = 0;
    while (lo < n && g[lo].kind < kind)
        lo++;
    size_t hi = lo;
    while (hi < n && g[hi].kind == kind)
        hi++;
    render_family(out, g + lo, hi - lo);
}

void aigw_metrics_render(aigw_sbuf_t *out, const aigw_metrics_scrape_t *sc)
{
    aigw_str_t node = aigw_str_c(sc && sc->node_id ? sc->node_id : "");
    int enabled = atomic_load(&g_plugins) > 0;
    size_t ng = 0;
    uint64_t *vals = NULL;
    group_t *g = enabled ? collect(&ng, &vals) : NULL;
    aigw_http_stats_total_t st;
    aigw_http_stats_sum(&st);
    char pid[24];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    uint64_t reg_bytes = atomic_load(&g_bytes);

    render_kind(out, g, ng, K_BW);
    head(out, "kong_datastore_reachable", "Datastore reachable from Kong, 0 is unreachable",
         "gauge");
    sample(out, "kong_datastore_reachable", "", NULL, NULL,
           sc && sc->datastore_reachable ? 1 : 0);
    render_kind(out, g, ng, K_REQ);
    render_kind(out, g, ng, K_LAT_KONG);

    head(out, "kong_memory_lua_shared_dict_bytes", "Allocated slabs in bytes in a shared_dict",
         "gauge");
    labelled(out, "kong_memory_lua_shared_dict_bytes", node, "shared_dict", "prometheus_metrics",
             "kong_subsystem", "http", reg_bytes);
    head(out, "kong_memory_lua_shared_dict_total_bytes", "Total capacity in bytes of a shared_dict",
         "gauge");
    labelled(out, "kong_memory_lua_shared_dict_total_bytes", node, "shared_dict",
             "prometheus_metrics", "kong_subsystem", "http",
             (uint64_t)AIGW_METRICS_MAX_SERIES * (sizeof(series_t) + 20 * sizeof(uint64_t) + 160));
    head(out, "kong_memory_workers_lua_vms_bytes", "Allocated bytes in worker Lua VM", "gauge");
    labelled(out, "kong_memory_workers_lua_vms_bytes", node, "pid", pid, "kong_subsystem", "http",
             (uint64_t)rss_bytes());

    head(out, "kong_nginx_connections_total", "Number of connections by subsystem", "gauge");
    static const char *const states[] = { "accepted", "active", "handled", "reading", "total",
                                          "waiting", "writing" };
    uint64_t cv[] = { st.accepted, (uint64_t)(st.active > 0 ? st.active : 0), st.handled,
                      (uint64_t)(st.reading > 0 ? st.reading : 0), st.total_requests,
                      (uint64_t)(st.waiting > 0 ? st.waiting : 0),
                      (uint64_t)(st.writing > 0 ? st.writing : 0) };
    for (size_t i = 0; i < 7; i++)
        labelled(out, "kong_nginx_connections_total", node, "subsystem", "http", "state",
                 states[i], cv[i]);
    if (enabled) {
        head(out, "kong_nginx_metric_errors_total", "Number of nginx-lua-prometheus errors",
             "counter");
        sample(out, "kong_nginx_metric_errors_total", "", NULL, NULL, 0);
    }
    head(out, "kong_nginx_requests_total", "Number of requests total", "gauge");
    labelled(out, "kong_nginx_requests_total", node, "subsystem", "http", NULL, NULL,
             st.total_requests);
    head(out, "kong_nginx_timers", "Number of nginx timers", "gauge");
    sample(out, "kong_nginx_timers", "", "state=\"pending\"", NULL, 0);
    sample(out, "kong_nginx_timers", "", "state=\"running\"", NULL, 0);
    head(out, "kong_node_info", "Kong Node metadata information", "gauge");
    labelled(out, "kong_node_info", node, "version", sc && sc->version ? sc->version : "", NULL,
             NULL, 1);

    render_kind(out, g, ng, K_LAT_REQ);
    render_kind(out, g, ng, K_LAT_UP);

    aigw_runtime_t *rt = aigw_runtime_current();
    if (atomic_load_explicit(&g_export_health, memory_order_relaxed))
        render_upstream_health(out, rt);

    /* aigw's own */
    head(out, "aigw_config_version", "Version of the configuration snapshot being served",
         "gauge");
    sample(out, "aigw_config_version", "", NULL, NULL,
           rt && rt->version > 0 ? (uint64_t)rt->version : 0);
    char hash[33];
    aigw_snapshot_config_hash(hash);
    head(out, "aigw_config_hash_info", "Hash of the configuration being served (as GET /status)",
         "gauge");
    aigw_sbuf_t lb = { 0 };
    label(&lb, "hash", aigw_str_c(hash), 1);
    sample(out, "aigw_config_hash_info", "", lb.p ? lb.p : "", NULL, 1);
    aigw_sbuf_free(&lb);
    head(out, "aigw_log_queue_dropped_total",
         "Log entries dropped by the log plugins' queues (full queue or retries exhausted)",
         "counter");
    sample(out, "aigw_log_queue_dropped_total", "", NULL, NULL, aigw_logq_dropped_total());
    head(out, "aigw_log_queue_sent_total", "Log entries delivered by the log plugins' queues",
         "counter");
    sample(out, "aigw_log_queue_sent_total", "", NULL, NULL, aigw_logq_sent_total());
    head(out, "aigw_metrics_series_dropped_total",
         "Observations not recorded because the metrics series limit was reached", "counter");
    sample(out, "aigw_metrics_series_dropped_total", "", NULL, NULL, atomic_load(&g_dropped));
    head(out, "aigw_ratelimit_rejections_total",
         "Requests rejected by rate-limiting plugins (429)", "counter");
    sample(out, "aigw_ratelimit_rejections_total", "", NULL, NULL, atomic_load(&g_rl_rejected));
    aigw_runtime_unref(rt);

    free(g);
    free(vals);
}
