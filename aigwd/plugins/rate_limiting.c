/* aigwd/plugins/rate_limiting.c: Kong's rate-limiting (priority 910).
 *
 * Limits per second/minute/hour/day/month/year, windows aligned to UTC calendar periods,
 * counted per identifier (consumer, credential, ip, service, header, path; the client IP
 * when the chosen one is absent). Counters are keyed as Kong's
 *   ratelimit:<route_id>:<service_id>:<identifier>:<period_date ms>:<period>
 * where the ids are those of the instance's own scope (the zero UUID when unscoped).
 *
 * aigw is exact where Kong is not (reference/differences.md):
 *  - local: one atomic step reads every period's counter and, only when all are below their
 *    limits, adds 1 to each (Kong counts admitted requests only, as here, but after
 *    answering);
 *  - cluster: the same decision in the database every node of the cluster uses (table
 *    ratelimiting_counters): one transaction increments every period's row and rolls back
 *    when one exceeds its limit. It runs on the store thread (plugins/store_jobs.h), never
 *    on the worker's loop; a node without a database (data plane) fails as storage does;
 *  - redis: one EVAL INCRs every period's key (Kong's usage(): every request counts, also a
 *    rejected one) and the counts it returns decide, so nodes sharing a Redis admit exactly
 *    the limit. The call is asynchronous on the worker's loop and bounded by redis.timeout.
 * A storage failure lets the request through without headers (fault_tolerant) or answers
 * 500 "An unexpected error occurred". */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/ratelimit_local.h"
#include "plugins/store_jobs.h"
#include "plugins/ratelimit_redis.h"
#include "proxy/metrics.h"
#include "store/store.h"

enum { BY_CONSUMER, BY_CREDENTIAL, BY_IP, BY_SERVICE, BY_HEADER, BY_PATH };
enum { POL_LOCAL, POL_CLUSTER, POL_REDIS };

static const char ZERO_UUID[] = "00000000-0000-0000-0000-000000000000";

typedef struct conf {
    double limit[AIGW_RL_NPERIODS];
    int has[AIGW_RL_NPERIODS];
    int limit_by;
    int policy;
    int fault_tolerant;
    int hide;
    int error_code;
    char *error_message;
    char *header_name;
    char *path;
    char *host;
    char *user;
    char *pass;
    int port;
    int db;
    int timeout_ms;
} conf_t;

static void free_conf(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    free(k->error_message);
    free(k->header_name);
    free(k->path);
    free(k->host);
    free(k->user);
    free(k->pass);
    free(k);
}

static char *opt_dup(const json_t *v)
{
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* config.redis.<name>, or the deprecated flat config.redis_<name> when the record lacks it. */
static const json_t *redis_field(const json_t *c, const char *name)
{
    const json_t *v = json_object_get(json_object_get(c, "redis"), name);
    if (v && !json_is_null(v))
        return v;
    char flat[64];
    snprintf(flat, sizeof(flat), "redis_%s", name);
    v = json_object_get(c, flat);
    return v && !json_is_null(v) ? v : NULL;
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int any = 0;
    for (size_t i = 0; i < AIGW_RL_NPERIODS; i++) {
        const json_t *v = json_object_get(c, aigw_rl_period_names[i]);
        if (json_is_number(v)) {
            k->has[i] = 1;
            k->limit[i] = json_number_value(v);
            any = 1;
        }
    }
    static const char *const by[] = {"consumer", "credential", "ip", "service", "header",
                                     "path"};
    const char *lb = json_string_value(json_object_get(c, "limit_by"));
    k->limit_by = BY_CONSUMER;
    for (size_t i = 0; lb && i < sizeof(by) / sizeof(by[0]); i++)
        if (strcmp(lb, by[i]) == 0)
            k->limit_by = (int)i;
    const char *pol = json_string_value(json_object_get(c, "policy"));
    k->policy = pol && strcmp(pol, "redis") == 0     ? POL_REDIS
                : pol && strcmp(pol, "cluster") == 0 ? POL_CLUSTER
                                                     : POL_LOCAL;
    k->fault_tolerant = !json_is_false(json_object_get(c, "fault_tolerant"));
    k->hide = json_is_true(json_object_get(c, "hide_client_headers"));
    const json_t *ec = json_object_get(c, "error_code");
    k->error_code = json_is_number(ec) ? (int)json_number_value(ec) : 429;
    const json_t *em = json_object_get(c, "error_message");
    k->error_message = strdup(json_is_string(em) ? json_string_value(em)
                                                 : "API rate limit exceeded");
    k->header_name = opt_dup(json_object_get(c, "header_name"));
    k->path = opt_dup(json_object_get(c, "path"));
    if (!k->error_message) {
        free_conf(k);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!any) {
        free_conf(k);
        snprintf(err, errlen, "at least one of these fields must be non-empty: 'config.second', "
                              "'config.minute', 'config.hour', 'config.day', 'config.month', "
                              "'config.year'");
        return NULL;
    }
    if (k->policy == POL_REDIS) {
        k->host = opt_dup(redis_field(c, "host"));
        k->user = opt_dup(redis_field(c, "username"));
        k->pass = opt_dup(redis_field(c, "password"));
        const json_t *v = redis_field(c, "port");
        k->port = json_is_integer(v) ? (int)json_integer_value(v) : 6379;
        v = redis_field(c, "database");
        k->db = json_is_integer(v) ? (int)json_integer_value(v) : 0;
        v = redis_field(c, "timeout");
        k->timeout_ms = json_is_integer(v) ? (int)json_integer_value(v) : 2000;
        if (k->timeout_ms <= 0)
            k->timeout_ms = 60000;   /* 0: the cosocket default (60 s), still a bound */
        if (!k->host) {
            free_conf(k);
            snprintf(err, errlen, "rate-limiting: the redis policy needs config.redis.host");
            return NULL;
        }
        if (json_is_true(redis_field(c, "ssl"))) {
            free_conf(k);
            snprintf(err, errlen, "rate-limiting: config.redis.ssl = true is not supported by "
                                  "this build (its hiredis 0.14 has no TLS)");
            return NULL;
        }
    }
    return k;
}

/* ---- identity and keys ------------------------------------------------------------------ */

static aigw_str_t identifier(const aigw_plugin_run_t *run, const conf_t *k)
{
    aigw_str_t id = AIGW_STR_NULL;
    switch (k->limit_by) {
    case BY_SERVICE:
        if (run->service)
            id = aigw_str_c(run->service->id);
        break;
    case BY_CONSUMER:
        if (run->consumer_id)
            id = aigw_str_c(run->consumer_id);
        else if (run->credential_id)
            id = aigw_str_c(run->credential_id);
        break;
    case BY_CREDENTIAL:
        if (run->credential_id)
            id = aigw_str_c(run->credential_id);
        break;
    case BY_HEADER:
        if (k->header_name)
            id = aigw_plugin_req_header(run, k->header_name);
        break;
    case BY_PATH:
        if (k->path && aigw_str_eq(run->norm_path, aigw_str_c(k->path)))
            id = run->norm_path;
        break;
    default:
        break;
    }
    if (!id.p)
        id = aigw_str_c(run->client_ip ? run->client_ip : "");
    return id;
}

/* The route and service ids of the instance whose conf this is (Kong's conf.route_id and
 * conf.service_id), the zero UUID for an unscoped side. */
static void scope_ids(const aigw_plugin_run_t *run, const void *conf, const char **route,
                      const char **service)
{
    *route = ZERO_UUID;
    *service = ZERO_UUID;
    for (size_t i = run->n_active; i-- > 0;) {
        const aigw_rt_plugin_t *p = run->active[i];
        if (p->conf == conf) {
            if (p->route_id[0])
                *route = p->route_id;
            if (p->service_id[0])
                *service = p->service_id;
            return;
        }
    }
}

/* ---- the decision ------------------------------------------------------------------------ */

typedef struct pending {
    aigw_plugin_run_t *run;
    const conf_t *conf;
    aigw_rl_redis_call_t *call;
    int64_t now;
    size_t n;
    int period[AIGW_RL_NPERIODS];
} pending_t;

static const char *const limit_hdr[AIGW_RL_NPERIODS] = {
    "X-RateLimit-Limit-Second", "X-RateLimit-Limit-Minute", "X-RateLimit-Limit-Hour",
    "X-RateLimit-Limit-Day", "X-RateLimit-Limit-Month", "X-RateLimit-Limit-Year",
};
static const char *const remaining_hdr[AIGW_RL_NPERIODS] = {
    "X-RateLimit-Remaining-Second", "X-RateLimit-Remaining-Minute",
    "X-RateLimit-Remaining-Hour", "X-RateLimit-Remaining-Day",
    "X-RateLimit-Remaining-Month", "X-RateLimit-Remaining-Year",
};

static void set_num(aigw_plugin_run_t *run, const char *name, double v)
{
    char buf[48];
    size_t n;
    /* whole numbers (every count, and limits as users write them) without printf's float
     * path, which costs more than the rest of this plugin on the hot path */
    if (v >= 0 && v < 9007199254740992.0 && v == (double)(unsigned long long)v) {
        n = aigw_u64_to_dec(buf, (unsigned long long)v);
    } else {
        int k = snprintf(buf, sizeof(buf), "%.14g", v);
        n = k > 0 ? (size_t)k : 0;
    }
    aigw_plugin_resp_set_header(run, name, (aigw_str_t){buf, n});
}

/* Kong's access() after get_usage: headers, then 429 when a period is used up. */
static aigw_plugin_rc_t decide(aigw_plugin_run_t *run, const conf_t *k, int64_t now,
                               const int *period, const int64_t *usage, size_t n)
{
    int stop = -1;
    for (size_t i = 0; i < n; i++)
        if (k->limit[period[i]] - (double)usage[i] <= 0)
            stop = period[i];
    double reset = 0;
    if (!k->hide) {
        int64_t start[AIGW_RL_NPERIODS], end[AIGW_RL_NPERIODS];
        aigw_rl_windows(now, start, end);
        int have = 0;
        double limit = 0, remaining = 0;
        int64_t window = 0;
        for (size_t i = 0; i < n; i++) {
            int p = period[i];
            double cur_limit = k->limit[p];
            int64_t cur_window = aigw_rl_expiration[p];
            double cur_rem = cur_limit - (double)usage[i];
            if (stop < 0 || stop == p)
                cur_rem -= 1;
            if (cur_rem < 0)
                cur_rem = 0;
            if (!have || cur_rem < remaining || (cur_rem == remaining && cur_window > window)) {
                have = 1;
                limit = cur_limit;
                window = cur_window;
                remaining = cur_rem;
                int64_t r = cur_window - (now - start[p]);
                reset = (double)(r < 1 ? 1 : r);
            }
            set_num(run, limit_hdr[p], cur_limit);
            set_num(run, remaining_hdr[p], cur_rem);
        }
        set_num(run, "RateLimit-Limit", limit);
        set_num(run, "RateLimit-Remaining", remaining);
        set_num(run, "RateLimit-Reset", reset);
    }
    if (stop >= 0) {
        aigw_metrics_ratelimit_rejected();
        if (!k->hide)
            set_num(run, "Retry-After", reset);
        return aigw_plugin_error(run, k->error_code, k->error_message);
    }
    return AIGW_PLUGIN_NEXT;
}

static aigw_plugin_rc_t storage_failed(aigw_plugin_run_t *run, const conf_t *k, const char *err)
{
    AIGW_LOG(AIGW_LOG_ERR, "rate-limiting: failed to get usage: %s", err);
    if (k->fault_tolerant)
        return AIGW_PLUGIN_NEXT;
    return aigw_plugin_error(run, 500, "An unexpected error occurred");
}

static void on_redis(void *ud, int ok, const int64_t *usage, size_t n, const char *err)
{
    pending_t *p = ud;
    aigw_plugin_run_t *run = p->run;
    const conf_t *k = p->conf;
    aigw_plugin_rc_t rc;
    if (!ok || n != p->n)
        rc = storage_failed(run, k, err ? err : "unexpected reply from Redis");
    else
        rc = decide(run, k, p->now, p->period, usage, n);
    free(p);
    aigw_plugin_resume(run, rc);
}

static void on_cancel(void *ud)
{
    pending_t *p = ud;
    aigw_rl_redis_cancel(p->call);
    free(p);
}

/* ---- cluster: the store thread ------------------------------------------------------------ */

typedef struct cjob {
    aigw_store_job_t job;         /* first: the store side sees this */
    aigw_plugin_run_t *run;
    const conf_t *conf;
    int64_t now;
    size_t n;
    int period[AIGW_RL_NPERIODS];
    char *keys[AIGW_RL_NPERIODS];
    double limits[AIGW_RL_NPERIODS];
    long long expire_at[AIGW_RL_NPERIODS];
    long long usage[AIGW_RL_NPERIODS];
    int ok;
    char err[300];
} cjob_t;

static void cjob_work(aigw_store_job_t *job, aigw_store_t *st)
{
    cjob_t *j = (cjob_t *)(void *)job;
    if (!st) {
        snprintf(j->err, sizeof(j->err), "no database connection for the cluster policy");
        return;
    }
    aigw_db_error_t e = { 0 };
    int admitted;
    if (aigw_store_ratelimit_take(st, (const char *const *)(void *)j->keys, j->limits,
                                  j->expire_at, j->n, (long long)j->now, j->usage, &admitted,
                                  &e) != 0) {
        snprintf(j->err, sizeof(j->err), "%s", e.message[0] ? e.message : "database error");
        aigw_db_error_clear(&e);
        return;
    }
    j->ok = 1;
}

static void cjob_done(aigw_store_job_t *job)
{
    cjob_t *j = (cjob_t *)(void *)job;
    aigw_plugin_run_t *run = j->run;
    aigw_plugin_rc_t rc;
    if (!j->ok) {
        rc = storage_failed(run, j->conf, j->err);
    } else {
        int64_t usage[AIGW_RL_NPERIODS];
        for (size_t i = 0; i < j->n; i++)
            usage[i] = (int64_t)j->usage[i];
        rc = decide(run, j->conf, j->now, j->period, usage, j->n);
    }
    aigw_plugin_resume(run, rc);
}

static void cjob_destroy(aigw_store_job_t *job)
{
    cjob_t *j = (cjob_t *)(void *)job;
    for (size_t i = 0; i < j->n; i++)
        free(j->keys[i]);
    free(j);
}

static void cjob_cancel(void *ud)
{
    aigw_store_jobs_cancel(ud);
}

static aigw_plugin_rc_t cluster_take(aigw_plugin_run_t *run, const conf_t *k, int64_t now,
                                     char *const *keys, const double *limits,
                                     const int64_t *expire_at, const int *period, size_t n)
{
    cjob_t *j = calloc(1, sizeof(*j));
    if (!j)
        return storage_failed(run, k, "out of memory");
    j->job.work = cjob_work;
    j->job.done = cjob_done;
    j->job.destroy = cjob_destroy;
    j->run = run;
    j->conf = k;
    j->now = now;
    for (size_t i = 0; i < n; i++) {
        if (!(j->keys[i] = strdup(keys[i]))) {
            cjob_destroy(&j->job);
            return storage_failed(run, k, "out of memory");
        }
        j->n = i + 1;
        j->limits[i] = limits[i];
        j->expire_at[i] = (long long)expire_at[i];
        j->period[i] = period[i];
    }
    if (aigw_store_jobs_submit(run->loop, &j->job) != 0) {
        cjob_destroy(&j->job);
        return storage_failed(run, k, "the store thread is not running or its queue is full");
    }
    aigw_plugin_on_cancel(run, cjob_cancel, &j->job);
    return AIGW_PLUGIN_ASYNC;
}

/* "ratelimit:<route>:<service>:<identifier>:<window start ms>:<period>", Kong's cache key,
 * in the request's arena (built by hand: printf costs more than the counting). */
static char *counter_key(aigw_plugin_run_t *run, const char *route_id, const char *service_id,
                         aigw_str_t id, int64_t start_ms, int p)
{
    size_t rn = strlen(route_id), sn = strlen(service_id),
           pn = strlen(aigw_rl_period_names[p]);
    char num[24];
    size_t nn = aigw_i64_to_dec(num, start_ms);
    size_t len = 10 + rn + 1 + sn + 1 + id.n + 1 + nn + 1 + pn;
    char *key = aigw_arena_alloc(&run->req->arena, len + 1), *w = key;
    if (!key)
        return NULL;
    memcpy(w, "ratelimit:", 10), w += 10;
    memcpy(w, route_id, rn), w += rn, *w++ = ':';
    memcpy(w, service_id, sn), w += sn, *w++ = ':';
    if (id.n)
        memcpy(w, id.p, id.n), w += id.n;
    *w++ = ':';
    memcpy(w, num, nn), w += nn, *w++ = ':';
    memcpy(w, aigw_rl_period_names[p], pn), w += pn;
    *w = '\0';
    return key;
}

static aigw_plugin_rc_t access_phase(aigw_plugin_run_t *run, void *conf)
{
    const conf_t *k = conf;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec;

    aigw_str_t id = identifier(run, k);
    const char *route_id, *service_id;
    scope_ids(run, conf, &route_id, &service_id);
    int64_t start[AIGW_RL_NPERIODS], end[AIGW_RL_NPERIODS];
    aigw_rl_windows(now, start, end);

    char *keys[AIGW_RL_NPERIODS];
    double limits[AIGW_RL_NPERIODS];
    int64_t expire_at[AIGW_RL_NPERIODS], ttl[AIGW_RL_NPERIODS];
    int period[AIGW_RL_NPERIODS];
    size_t n = 0;
    for (int p = 0; p < AIGW_RL_NPERIODS; p++) {
        if (!k->has[p])
            continue;
        char *key = counter_key(run, route_id, service_id, id, start[p] * 1000, p);
        if (!key)
            return storage_failed(run, k, "out of memory");
        keys[n] = key;
        limits[n] = k->limit[p];
        expire_at[n] = end[p];
        ttl[n] = aigw_rl_expiration[p];
        period[n] = p;
        n++;
    }

    if (k->policy == POL_CLUSTER)
        return cluster_take(run, k, now, keys, limits, expire_at, period, n);
    if (k->policy != POL_REDIS) {
        int64_t usage[AIGW_RL_NPERIODS];
        int rc = aigw_rl_local_take((const char *const *)(void *)keys, limits, expire_at, n,
                                    now, usage);
        if (rc < 0)
            return storage_failed(run, k, "could not count in the local store (full or out "
                                          "of memory)");
        return decide(run, k, now, period, usage, n);
    }

    pending_t *p = calloc(1, sizeof(*p));
    if (!p)
        return storage_failed(run, k, "out of memory");
    p->run = run;
    p->conf = k;
    p->now = now;
    p->n = n;
    memcpy(p->period, period, sizeof(period));
    aigw_rl_redis_target_t t = {
        .host = k->host,
        .port = k->port,
        .database = k->db,
        .username = k->user,
        .password = k->pass,
        .timeout_ms = k->timeout_ms,
    };
    char err[300];
    p->call = aigw_rl_redis_incr(run->loop, &t, (const char *const *)(void *)keys, ttl, n,
                                 on_redis, p, err, sizeof(err));
    if (!p->call) {
        free(p);
        return storage_failed(run, k, err);
    }
    aigw_plugin_on_cancel(run, on_cancel, p);
    return AIGW_PLUGIN_ASYNC;
}

/* ---- process and worker hooks ------------------------------------------------------------ */

static int global_init(const aigw_conf_t *conf)
{
    (void)conf;
    if (aigw_rl_local_init(0) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "rate-limiting: cannot create the counter store");
        return -1;
    }
    return 0;
}

static void global_shutdown(void)
{
    aigw_rl_local_shutdown();
}

static void worker_close(uv_loop_t *loop)
{
    aigw_rl_redis_worker_close(loop);
}

const aigw_plugin_def_t aigw_plugin_def_rate_limiting = {
    .name = "rate-limiting",
    .priority = 910,
    .configure = configure,
    .free_conf = free_conf,
    .access = access_phase,
    .global_init = global_init,
    .global_shutdown = global_shutdown,
    .worker_close = worker_close,
};
