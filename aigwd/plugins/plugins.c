/* aigwd/plugins/plugins.c: see plugins.h. The loader half resolves plugin instances into
 * per-route chains; the run half walks them for one request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "http/errpage.h"
#include "http/server.h"
#include "plugins/logqueue.h"
#include "plugins/store_jobs.h"
#include "plugins/logrec.h"
#include "plugins/plugins.h"

typedef struct chain {
    const aigw_rt_plugin_t **by_def;   /* n_defs entries; NULL where no instance applies */
    int blocked;                       /* an instance without implementation applies */
    int reads_body;                    /* an instance reads the request body */
} chain_t;

typedef struct pstate {
    aigw_rt_plugin_t *inst;
    size_t n_inst;
    size_t n_defs;
    const aigw_plugin_def_t *const *defs;
    chain_t global;                    /* for requests before routing / without a route */
    chain_t *chains;                   /* per route of rt->routes; by_def NULL: use global */
    const aigw_rt_plugin_t **cons;     /* consumer-scoped instances */
    size_t n_cons;
    unsigned char *def_has_cons;
    int cons_read_body;                /* a consumer-scoped instance reads the body */
    const aigw_rt_plugin_t **slab;     /* by_def arrays of the chains */
} pstate_t;

/* ---- loading ------------------------------------------------------------------------------ */

static size_t def_index(const pstate_t *s, const aigw_plugin_def_t *d)
{
    for (size_t i = 0; i < s->n_defs; i++)
        if (s->defs[i] == d)
            return i;
    return s->n_defs;
}

static void copy_fk(const json_t *o, const char *key, char out[37])
{
    const json_t *v = json_object_get(o, key);
    const char *id = json_is_object(v) ? json_string_value(json_object_get(v, "id")) : NULL;
    out[0] = '\0';
    if (id)
        aigw_strlcpy(out, id, 37);
}

/* Specificity of an instance without consumer for (route, service): 3 route+service,
 * 2 route, 1 service, 0 global; -1 when it does not apply. */
static int scope_rank(const aigw_rt_plugin_t *p, const char *route_id, const char *service_id)
{
    int has_r = p->route_id[0] != 0, has_s = p->service_id[0] != 0;
    if (has_r && (!route_id || strcmp(p->route_id, route_id) != 0))
        return -1;
    if (has_s && (!service_id || strcmp(p->service_id, service_id) != 0))
        return -1;
    return has_r && has_s ? 3 : has_r ? 2 : has_s ? 1 : 0;
}

static void state_free(pstate_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_inst; i++)
        if (s->inst[i].def && s->inst[i].def->free_conf && s->inst[i].conf)
            s->inst[i].def->free_conf(s->inst[i].conf);
    free(s->inst);
    free(s->chains);
    free(s->cons);
    free(s->def_has_cons);
    free(s->slab);
    free(s->global.by_def);
    free(s);
}

void aigw_plugins_unload(aigw_runtime_t *rt)
{
    state_free(rt->plugins);
    rt->plugins = NULL;
}

/* Fills ch for (route_id, service_id) from the non-consumer instances. */
static void build_chain(pstate_t *s, chain_t *ch, const char *route_id, const char *service_id)
{
    int *best = NULL;
    int best_blocked = -1;
    best = calloc(s->n_defs ? s->n_defs : 1, sizeof(int));
    if (!best)
        return;
    for (size_t d = 0; d < s->n_defs; d++)
        best[d] = -1;
    for (size_t i = 0; i < s->n_inst; i++) {
        const aigw_rt_plugin_t *p = &s->inst[i];
        if (p->consumer_id[0])
            continue;
        int r = scope_rank(p, route_id, service_id);
        if (r < 0)
            continue;
        if (!p->def) {
            if (r > best_blocked)
                best_blocked = r;
            continue;
        }
        size_t d = def_index(s, p->def);
        if (d < s->n_defs && r > best[d]) {
            best[d] = r;
            ch->by_def[d] = p;
        }
    }
    ch->blocked = best_blocked >= 0;
    for (size_t d = 0; d < s->n_defs; d++) {
        const aigw_rt_plugin_t *p = ch->by_def[d];
        if (p && p->def->reads_body && p->def->reads_body(p->conf))
            ch->reads_body = 1;
    }
    free(best);
}

int aigw_plugins_load(aigw_runtime_t *rt, const json_t *plugins, char *err, size_t errlen)
{
    pstate_t *s = calloc(1, sizeof(*s));
    if (!s)
        goto oom;
    s->defs = aigw_plugin_defs(&s->n_defs);
    size_t n = json_is_array(plugins) ? json_array_size(plugins) : 0;
    s->inst = calloc(n ? n : 1, sizeof(*s->inst));
    s->def_has_cons = calloc(s->n_defs ? s->n_defs : 1, 1);
    s->global.by_def = calloc(s->n_defs ? s->n_defs : 1, sizeof(*s->global.by_def));
    if (!s->inst || !s->def_has_cons || !s->global.by_def)
        goto oom;
    int any_scoped = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(plugins, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        const json_t *en = json_object_get(o, "enabled");
        if (!name || (en && json_is_false(en)))
            continue;
        aigw_rt_plugin_t *p = &s->inst[s->n_inst];
        memset(p, 0, sizeof(*p));
        aigw_strlcpy(p->name, name, sizeof(p->name));
        const char *id = json_string_value(json_object_get(o, "id"));
        aigw_strlcpy(p->id, id ? id : "", sizeof(p->id));
        copy_fk(o, "route", p->route_id);
        copy_fk(o, "service", p->service_id);
        copy_fk(o, "consumer", p->consumer_id);
        p->def = aigw_plugin_def_find(name);
        if (p->def && p->def->configure) {
            const json_t *cfg = json_object_get(o, "config");
            json_t *empty = NULL;
            if (!json_is_object(cfg))
                cfg = empty = json_object();
            char why[256] = "";
            p->conf = p->def->configure(cfg, why, sizeof(why));
            json_decref(empty);
            if (!p->conf) {
                /* One unusable instance must not hold back the rest of the configuration:
                 * it fails closed, as one without an implementation does. */
                AIGW_LOG(AIGW_LOG_ERR, "plugin %s (%s) cannot be used: %s; requests it applies "
                                       "to are answered 500", name, p->id,
                         why[0] ? why : "bad config");
                p->def = NULL;
                p->conf = NULL;
            }
        } else if (!p->def) {
            AIGW_LOG(AIGW_LOG_ERR, "plugin %s (%s) is not available in this build: requests it "
                                   "applies to are answered 500", name, p->id);
        }
        if (p->route_id[0] || p->service_id[0])
            any_scoped = 1;
        s->n_inst++;
    }
    /* consumer-scoped instances */
    for (size_t i = 0; i < s->n_inst; i++)
        if (s->inst[i].consumer_id[0])
            s->n_cons++;
    if (s->n_cons) {
        s->cons = calloc(s->n_cons, sizeof(*s->cons));
        if (!s->cons)
            goto oom;
        size_t k = 0;
        for (size_t i = 0; i < s->n_inst; i++) {
            if (!s->inst[i].consumer_id[0])
                continue;
            s->cons[k++] = &s->inst[i];
            size_t d = s->inst[i].def ? def_index(s, s->inst[i].def) : s->n_defs;
            if (d < s->n_defs)
                s->def_has_cons[d] = 1;
            const aigw_rt_plugin_t *p = &s->inst[i];
            if (p->def && p->def->reads_body && p->def->reads_body(p->conf))
                s->cons_read_body = 1;
        }
    }
    build_chain(s, &s->global, NULL, NULL);
    /* Per-route chains only where a route- or service-scoped instance exists. */
    size_t nr = rt->n_routes;
    s->chains = calloc(nr ? nr : 1, sizeof(*s->chains));
    if (!s->chains)
        goto oom;
    if (any_scoped && nr) {
        unsigned char *own = calloc(nr, 1);   /* routes that need a chain of their own */
        if (!own)
            goto oom;
        size_t need = 0;
        for (size_t r = 0; r < nr; r++) {
            const aigw_rt_route_t *route = &rt->routes[r];
            const char *sid = route->service ? route->service->id : NULL;
            for (size_t i = 0; i < s->n_inst && !own[r]; i++) {
                const aigw_rt_plugin_t *p = &s->inst[i];
                if (!p->consumer_id[0] && (p->route_id[0] || p->service_id[0]) &&
                    scope_rank(p, route->id, sid) >= 0)
                    own[r] = 1;
            }
            need += own[r];
        }
        s->slab = calloc(need * (s->n_defs ? s->n_defs : 1) + 1, sizeof(*s->slab));
        if (!s->slab) {
            free(own);
            goto oom;
        }
        size_t used = 0;
        for (size_t r = 0; r < nr; r++) {
            if (!own[r])
                continue;
            const aigw_rt_route_t *route = &rt->routes[r];
            s->chains[r].by_def = s->slab + used++ * s->n_defs;
            build_chain(s, &s->chains[r], route->id, route->service ? route->service->id : NULL);
        }
        free(own);
    }
    rt->plugins = s;
    return 0;
oom:
    state_free(s);
    snprintf(err, errlen, "out of memory loading plugins");
    return -1;
}

/* ---- running ------------------------------------------------------------------------------ */

void aigw_plugins_run_init(aigw_plugin_run_t *run, aigw_runtime_t *rt, aigw_http_req_t *req)
{
    memset(run, 0, sizeof(*run));
    run->rt = rt;
    run->req = req;
}

static const chain_t *chain_of(const aigw_plugin_run_t *run)
{
    const pstate_t *s = run->rt ? run->rt->plugins : NULL;
    if (!s)
        return NULL;
    if (run->route) {
        size_t r = (size_t)(run->route - run->rt->routes);
        if (r < run->rt->n_routes && s->chains[r].by_def)
            return &s->chains[r];
    }
    return &s->global;
}

/* Kong's lookup_cfg with a consumer: route+service+consumer, route+consumer,
 * service+consumer, consumer; NULL when none applies. */
static const aigw_rt_plugin_t *consumer_instance(const pstate_t *s, size_t d,
                                                 const aigw_plugin_run_t *run)
{
    const char *rid = run->route ? run->route->id : NULL;
    const char *sid = run->service ? run->service->id : NULL;
    const aigw_rt_plugin_t *best = NULL;
    int best_rank = -1;
    for (size_t i = 0; i < s->n_cons; i++) {
        const aigw_rt_plugin_t *p = s->cons[i];
        if (p->def != s->defs[d] || strcmp(p->consumer_id, run->consumer_id) != 0)
            continue;
        int r = scope_rank(p, rid, sid);
        if (r > best_rank) {
            best_rank = r;
            best = p;
        }
    }
    return best;
}

static void collect(aigw_plugin_run_t *run, const aigw_rt_plugin_t *p)
{
    for (size_t i = 0; i < run->n_active; i++)
        if (run->active[i] == p)
            return;
    if (run->n_active < AIGW_PLUGIN_MAX_ACTIVE)
        run->active[run->n_active++] = p;
}

void aigw_plugins_collect_global(aigw_plugin_run_t *run)
{
    const pstate_t *s = run->rt ? run->rt->plugins : NULL;
    if (!s)
        return;
    for (size_t d = 0; d < s->n_defs; d++) {
        const aigw_rt_plugin_t *p = s->global.by_def[d];
        if (p && p->def && (p->def->header_filter || p->def->log))
            collect(run, p);
    }
}

int aigw_plugins_rewrite(aigw_plugin_run_t *run)
{
    const pstate_t *s = run->rt ? run->rt->plugins : NULL;
    if (!s)
        return 0;
    for (size_t d = 0; d < s->n_defs; d++) {
        const aigw_rt_plugin_t *p = s->global.by_def[d];
        if (!p || !p->def->rewrite)
            continue;
        if (p->def->rewrite(run, p->conf) == AIGW_PLUGIN_EXIT) {
            collect(run, p);
            return 1;
        }
    }
    return 0;
}

/* Kong's collecting iterator goes on after a plugin answered (ctx.delayed_response): the
 * plugins after it run no access handler but are collected, so their header_filter and log
 * phases still run for the answer (prometheus, http-log, ... count a 401 or a 429). */
static void collect_rest(aigw_plugin_run_t *run)
{
    const pstate_t *s = run->rt ? run->rt->plugins : NULL;
    const chain_t *ch = s ? chain_of(run) : NULL;
    while (s && ch && run->next_def < s->n_defs) {
        size_t d = run->next_def++;
        const aigw_rt_plugin_t *p = NULL;
        if (run->consumer_id && s->def_has_cons[d])
            p = consumer_instance(s, d, run);
        if (!p)
            p = ch->by_def[d];
        if (p)
            collect(run, p);
    }
}

static void access_finish(aigw_plugin_run_t *run)
{
    if (run->exited)
        collect_rest(run);
    void (*done)(aigw_plugin_run_t *, void *) = run->done;
    run->done = NULL;
    if (done)
        done(run, run->done_ud);
}

static void access_continue(aigw_plugin_run_t *run)
{
    const pstate_t *s = run->rt->plugins;
    const chain_t *ch = chain_of(run);
    while (s && ch && run->next_def < s->n_defs) {
        size_t d = run->next_def++;
        const aigw_rt_plugin_t *p = NULL;
        if (run->consumer_id && s->def_has_cons[d])
            p = consumer_instance(s, d, run);
        if (!p)
            p = ch->by_def[d];
        if (!p)
            continue;
        collect(run, p);
        if (!p->def->access)
            continue;
        run->in_access = 1;
        run->async_resumed = 0;
        aigw_plugin_rc_t rc = p->def->access(run, p->conf);
        run->in_access = 0;
        if (rc == AIGW_PLUGIN_EXIT || run->exited)
            break;
        if (rc == AIGW_PLUGIN_ASYNC && !run->async_resumed)
            return;   /* aigw_plugin_resume() continues */
        if (run->exited)
            break;
    }
    access_finish(run);
}

int aigw_plugins_need_body(const aigw_plugin_run_t *run)
{
    const pstate_t *s = run->rt ? run->rt->plugins : NULL;
    const chain_t *ch = chain_of(run);
    return (ch && ch->reads_body) || (s && s->cons_read_body) || aigw_logrec_wants_bodies();
}

void aigw_plugins_access(aigw_plugin_run_t *run, void (*done)(aigw_plugin_run_t *, void *),
                         void *ud)
{
    run->done = done;
    run->done_ud = ud;
    run->next_def = 0;
    const chain_t *ch = chain_of(run);
    if (ch && ch->blocked) {
        AIGW_LOG(AIGW_LOG_ERR, "refusing a request: a plugin configured for it is not "
                               "available in this build or its configuration cannot be used");
        aigw_plugin_exit_message(run, 500, "An unexpected error occurred");
        access_finish(run);
        return;
    }
    access_continue(run);
}

void aigw_plugin_resume(aigw_plugin_run_t *run, aigw_plugin_rc_t rc)
{
    (void)rc;   /* an exit was recorded by aigw_plugin_exit* already */
    run->cancel = NULL;
    run->cancel_ud = NULL;
    if (run->in_access) {
        run->async_resumed = 1;
        return;
    }
    if (run->exited) {
        access_finish(run);
        return;
    }
    access_continue(run);
}

void aigw_plugins_header_filter(aigw_plugin_run_t *run)
{
    if (run->filtered)
        return;
    run->filtered = 1;
    for (size_t i = 0; i < run->n_active; i++) {
        const aigw_rt_plugin_t *p = run->active[i];
        if (p->def && p->def->header_filter)
            p->def->header_filter(run, p->conf);
    }
}

void aigw_plugins_body_filter(aigw_plugin_run_t *run)
{
    if (!run->buffer_resp)
        return;
    for (size_t i = 0; i < run->n_active; i++) {
        const aigw_rt_plugin_t *p = run->active[i];
        if (p->def && p->def->body_filter)
            p->def->body_filter(run, p->conf);
    }
}

void aigw_plugin_buffer_response(aigw_plugin_run_t *run)
{
    run->buffer_resp = 1;
}

int aigw_plugin_set_resp_body(aigw_plugin_run_t *run, aigw_str_t body)
{
    char *p = aigw_arena_alloc(&run->req->arena, body.n ? body.n : 1);
    if (!p)
        return -1;
    if (body.n)
        memcpy(p, body.p, body.n);
    run->resp_body = (aigw_str_t){ p, body.n };
    return 0;
}

void aigw_plugins_log(aigw_plugin_run_t *run)
{
    if (run->logged)
        return;
    run->logged = 1;
    for (size_t i = 0; i < run->n_active; i++) {
        const aigw_rt_plugin_t *p = run->active[i];
        if (p->def && p->def->log)
            p->def->log(run, p->conf);
    }
}

/* ---- header edits ------------------------------------------------------------------------- */

static aigw_str_t sdup(aigw_plugin_run_t *run, aigw_str_t s)
{
    char *p = aigw_arena_strndup(&run->req->arena, s.p ? s.p : "", s.n);
    return p ? (aigw_str_t){ p, s.n } : AIGW_STR_NULL;
}

static int grow(aigw_plugin_run_t *run, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    void *na = aigw_arena_alloc(&run->req->arena, nc * elem);
    if (!na)
        return -1;
    if (n)
        memcpy(na, *arr, n * elem);
    *arr = na;
    *cap = nc;
    return 0;
}

static int names_has(const aigw_str_t *v, size_t n, aigw_str_t name)
{
    for (size_t i = 0; i < n; i++)
        if (aigw_str_ieq(v[i], name))
            return 1;
    return 0;
}

/* Removes name from a set list (replace semantics). */
static void hdrs_drop(aigw_plugin_hdr_t *v, size_t *n, aigw_str_t name)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!aigw_str_ieq(v[i].name, name))
            v[k++] = v[i];
    *n = k;
}

static int set_in(aigw_plugin_run_t *run, aigw_plugin_hdr_t **set, size_t *n_set,
                  size_t *cap_set, aigw_str_t **rem, size_t *n_rem, size_t *cap_rem,
                  const char *name, aigw_str_t value, int clear)
{
    aigw_str_t nm = aigw_str_c(name);
    hdrs_drop(*set, n_set, nm);
    if (!names_has(*rem, *n_rem, nm)) {
        if (grow(run, (void **)rem, cap_rem, *n_rem, sizeof(**rem)) != 0)
            return -1;
        (*rem)[(*n_rem)++] = sdup(run, nm);
    }
    if (clear)
        return 0;
    if (grow(run, (void **)set, cap_set, *n_set, sizeof(**set)) != 0)
        return -1;
    (*set)[*n_set] = (aigw_plugin_hdr_t){ sdup(run, nm), sdup(run, value) };
    (*n_set)++;
    return 0;
}

int aigw_plugin_set_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value)
{
    return set_in(run, &run->set, &run->n_set, &run->cap_set, &run->removed, &run->n_removed,
                  &run->cap_removed, name, value, 0);
}

static int add_in(aigw_plugin_run_t *run, aigw_plugin_hdr_t **set, size_t *n_set,
                  size_t *cap_set, const char *name, aigw_str_t value)
{
    if (grow(run, (void **)set, cap_set, *n_set, sizeof(**set)) != 0)
        return -1;
    (*set)[*n_set] = (aigw_plugin_hdr_t){ sdup(run, aigw_str_c(name)), sdup(run, value) };
    (*n_set)++;
    return 0;
}

int aigw_plugin_add_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value)
{
    return add_in(run, &run->set, &run->n_set, &run->cap_set, name, value);
}

int aigw_plugin_resp_add_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value)
{
    return add_in(run, &run->resp, &run->n_resp, &run->cap_resp, name, value);
}

int aigw_plugin_clear_header(aigw_plugin_run_t *run, const char *name)
{
    return set_in(run, &run->set, &run->n_set, &run->cap_set, &run->removed, &run->n_removed,
                  &run->cap_removed, name, AIGW_STR_NULL, 1);
}

int aigw_plugin_resp_set_header(aigw_plugin_run_t *run, const char *name, aigw_str_t value)
{
    return set_in(run, &run->resp, &run->n_resp, &run->cap_resp, &run->resp_removed,
                  &run->n_resp_removed, &run->cap_resp_removed, name, value, 0);
}

int aigw_plugin_resp_clear_header(aigw_plugin_run_t *run, const char *name)
{
    return set_in(run, &run->resp, &run->n_resp, &run->cap_resp, &run->resp_removed,
                  &run->n_resp_removed, &run->cap_resp_removed, name, AIGW_STR_NULL, 1);
}

int aigw_plugins_header_removed(const aigw_plugin_run_t *run, aigw_str_t name)
{
    return names_has(run->removed, run->n_removed, name);
}

int aigw_plugins_resp_header_removed(const aigw_plugin_run_t *run, aigw_str_t name)
{
    return names_has(run->resp_removed, run->n_resp_removed, name);
}

aigw_str_t aigw_plugin_resp_header(const aigw_plugin_run_t *run, const char *name)
{
    aigw_str_t nm = aigw_str_c(name);
    if (!names_has(run->resp_removed, run->n_resp_removed, nm)) {
        if (run->exited && run->exit_type.n && aigw_str_ieq(nm, AIGW_STR("content-type")))
            return run->exit_type;
        for (size_t i = 0; i < run->n_up_headers; i++)
            if (aigw_str_ieq(run->up_headers[i].name, nm))
                return run->up_headers[i].value;
    }
    for (size_t i = 0; i < run->n_resp; i++)
        if (aigw_str_ieq(run->resp[i].name, nm))
            return run->resp[i].value;
    return AIGW_STR_NULL;
}

aigw_str_t aigw_plugin_req_header(const aigw_plugin_run_t *run, const char *name)
{
    aigw_str_t nm = aigw_str_c(name);
    /* the client's header comes first unless a plugin replaced or removed it; then lines
     * added by plugins */
    if (!names_has(run->removed, run->n_removed, nm)) {
        const aigw_http_header_t *h = aigw_http_req_header(run->req, nm);
        if (h)
            return h->value;
    }
    for (size_t i = 0; i < run->n_set; i++)
        if (aigw_str_ieq(run->set[i].name, nm))
            return run->set[i].value;
    return AIGW_STR_NULL;
}

/* ---- exits -------------------------------------------------------------------------------- */

aigw_plugin_rc_t aigw_plugin_exit(aigw_plugin_run_t *run, int status, aigw_str_t body,
                                  aigw_str_t type)
{
    run->exited = 1;
    run->exit_status = status;
    run->exit_body = body.n ? sdup(run, body) : AIGW_STR_NULL;
    run->exit_type = type.n ? sdup(run, type) : AIGW_STR_NULL;
    return AIGW_PLUGIN_EXIT;
}

aigw_plugin_rc_t aigw_plugin_exit_message(aigw_plugin_run_t *run, int status, const char *msg)
{
    json_t *o = json_pack("{s:s}", "message", msg ? msg : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    aigw_plugin_rc_t rc = aigw_plugin_exit(run, status, aigw_str_c(s ? s : "{}"),
                                           AIGW_STR("application/json; charset=utf-8"));
    free(s);
    return rc;
}

void aigw_plugins_respond_exit(aigw_plugin_run_t *run, aigw_http_req_t *req)
{
    run->status = run->exit_status;
    aigw_plugins_header_filter(run);
    if (run->buffer_resp) {
        run->resp_body = run->exit_body;
        aigw_plugins_body_filter(run);
        run->exit_body = run->resp_body;
    }
    size_t cap = run->n_resp + 3;
    aigw_http_resp_header_t *h = aigw_arena_alloc(&req->arena, cap * sizeof(*h));
    char *lat = aigw_arena_alloc(&req->arena, 24);
    if (!h || !lat) {
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    size_t k = 0;
    if (run->exit_type.n && !aigw_plugins_resp_header_removed(run, AIGW_STR("content-type")))
        h[k++] = (aigw_http_resp_header_t){ AIGW_STR("Content-Type"), run->exit_type };
    for (size_t i = 0; i < run->n_resp; i++)
        h[k++] = (aigw_http_resp_header_t){ run->resp[i].name, run->resp[i].value };
    if (aigw_http_req_headers(req) & AIGW_HDR_RESPONSE_LATENCY) {
        uint64_t now = uv_hrtime();
        size_t ln = aigw_u64_to_dec(lat, now > req->start_ns ? (now - req->start_ns) / 1000000 : 0);
        h[k++] = (aigw_http_resp_header_t){ AIGW_STR("X-Kong-Response-Latency"), { lat, ln } };
    }
    run->log.resp_headers = h;
    run->log.n_resp_headers = k;
    req->bytes_sent = run->exit_body.n;
    aigw_plugins_log(run);
    aigw_http_respond(req, run->exit_status, h, k, run->exit_body.p, run->exit_body.n);
}

/* ---- process-wide hooks ------------------------------------------------------------------- */

int aigw_plugins_global_init(const aigw_conf_t *conf)
{
    char err[512];
    if (aigw_logrec_configure(conf, err, sizeof(err)) != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "%s", err);
        return -1;
    }
    if (aigw_store_jobs_start(conf) != 0)
        AIGW_LOG(AIGW_LOG_ERR, "oauth2 token endpoints and checks and cluster rate limits "
                               "will fail");
    size_t n;
    const aigw_plugin_def_t *const *defs = aigw_plugin_defs(&n);
    for (size_t i = 0; i < n; i++)
        if (defs[i]->global_init && defs[i]->global_init(conf) != 0)
            return -1;
    return 0;
}

void aigw_plugins_global_shutdown(void)
{
    size_t n;
    const aigw_plugin_def_t *const *defs = aigw_plugin_defs(&n);
    for (size_t i = 0; i < n; i++)
        if (defs[i]->global_shutdown)
            defs[i]->global_shutdown();
    aigw_logq_shutdown(2000);   /* after http-log's own, which also cleans up curl */
    aigw_store_jobs_stop();
    aigw_logrec_shutdown();
}

void aigw_plugins_reopen(void)
{
    size_t n;
    const aigw_plugin_def_t *const *defs = aigw_plugin_defs(&n);
    for (size_t i = 0; i < n; i++)
        if (defs[i]->reopen)
            defs[i]->reopen();
}

void aigw_plugins_worker_close(uv_loop_t *loop)
{
    size_t n;
    const aigw_plugin_def_t *const *defs = aigw_plugin_defs(&n);
    for (size_t i = 0; i < n; i++)
        if (defs[i]->worker_close)
            defs[i]->worker_close(loop);
    aigw_store_jobs_worker_close(loop);
}

/* ---- cancellation ------------------------------------------------------------------------- */

void aigw_plugin_on_cancel(aigw_plugin_run_t *run, void (*fn)(void *ud), void *ud)
{
    run->cancel = fn;
    run->cancel_ud = ud;
}

void aigw_plugins_cancel(aigw_plugin_run_t *run)
{
    void (*fn)(void *) = run->cancel;
    void *ud = run->cancel_ud;
    run->cancel = NULL;
    run->cancel_ud = NULL;
    run->done = NULL;
    if (fn)
        fn(ud);
}

aigw_plugin_rc_t aigw_plugin_error(aigw_plugin_run_t *run, int status, const char *msg)
{
    aigw_errpage_format_t f = aigw_errpage_negotiate(run->req, 0);
    size_t ml = msg ? strlen(msg) : 0, cap = AIGW_ERRPAGE_MAX(ml);
    char *buf = aigw_arena_alloc(&run->req->arena, cap);
    size_t n = buf ? aigw_errpage_render(f, msg ? msg : "", run->req->request_id, buf, cap) : 0;
    return aigw_plugin_exit(run, status, (aigw_str_t){ buf, n }, aigw_errpage_content_type(f));
}

/* ---- consumer identity -------------------------------------------------------------------- */

static void set_or_clear(aigw_plugin_run_t *run, const char *name, aigw_str_t v)
{
    if (v.n)
        aigw_plugin_set_header(run, name, v);
    else
        aigw_plugin_clear_header(run, name);
}

void aigw_plugin_authenticate(aigw_plugin_run_t *run, const aigw_rt_consumer_t *consumer,
                              const char *credential_id, aigw_str_t identifier)
{
    run->consumer = consumer;
    run->consumer_id = consumer ? consumer->id : NULL;
    run->credential_id =
        credential_id ? aigw_arena_strndup(&run->req->arena, credential_id,
                                           strlen(credential_id))
                      : NULL;
    run->anonymous = 0;
    set_or_clear(run, "X-Consumer-ID", consumer ? aigw_str_c(consumer->id) : AIGW_STR_NULL);
    set_or_clear(run, "X-Consumer-Custom-ID", consumer ? consumer->custom_id : AIGW_STR_NULL);
    set_or_clear(run, "X-Consumer-Username", consumer ? consumer->username : AIGW_STR_NULL);
    set_or_clear(run, "X-Credential-Identifier", identifier);
    aigw_plugin_clear_header(run, "X-Anonymous-Consumer");
}

int aigw_plugin_has_credential(const aigw_plugin_run_t *run)
{
    return run->credential_id != NULL;
}

aigw_plugin_rc_t aigw_plugin_authenticate_anonymous(aigw_plugin_run_t *run, const char *ref)
{
    const aigw_rt_consumer_t *c =
        aigw_consumer_by_ref(run->rt ? run->rt->consumers : NULL, aigw_str_c(ref));
    if (!c) {
        /* Kong: set_consumer(nil) raises, which answers the generic 500 */
        AIGW_LOG(AIGW_LOG_ERR, "anonymous consumer %.200s is configured but doesn't exist",
                 ref ? ref : "");
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    aigw_plugin_authenticate(run, c, NULL, AIGW_STR_NULL);
    run->anonymous = 1;
    aigw_plugin_set_header(run, "X-Anonymous-Consumer", AIGW_STR("true"));
    return AIGW_PLUGIN_NEXT;
}

/* ---- query strings and form bodies -------------------------------------------------------- */

/* Percent-decodes s ('+' is a space when plus) into the arena. */
static aigw_str_t pct_decode(aigw_plugin_run_t *run, aigw_str_t s, int plus)
{
    char *out = aigw_arena_alloc(&run->req->arena, s.n + 1);
    if (!out)
        return AIGW_STR_NULL;
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.p[i];
        int h, l;
        if (ch == '%' && i + 2 < s.n && (h = aigw_hex_digit((unsigned char)s.p[i + 1])) >= 0 &&
            (l = aigw_hex_digit((unsigned char)s.p[i + 2])) >= 0) {
            out[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[k++] = plus && ch == '+' ? ' ' : ch;
        }
    }
    out[k] = '\0';
    return (aigw_str_t){ out, k };
}

/* Walks a=b&c=d: for each pair calls fn; fn returns 1 to stop. */
typedef int (*pair_fn)(aigw_plugin_run_t *run, aigw_str_t pair, aigw_str_t key, aigw_str_t val,
                       void *ud);

static void each_pair(aigw_plugin_run_t *run, aigw_str_t s, int plus, pair_fn fn, void *ud)
{
    const char *p = s.p, *end = s.p + s.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        aigw_str_t pair = { p, (size_t)(e - p) };
        if (pair.n) {
            const char *eq = memchr(p, '=', pair.n);
            aigw_str_t k = { p, eq ? (size_t)(eq - p) : pair.n };
            aigw_str_t v = eq ? (aigw_str_t){ eq + 1, (size_t)(e - eq - 1) } : AIGW_STR_NULL;
            if (fn(run, pair, pct_decode(run, k, plus), v, ud))
                return;
        }
        p = amp ? amp + 1 : end;
    }
}

typedef struct find {
    const char *name;
    int plus;
    aigw_str_t first;
    size_t count;
} find_t;

static int find_pair(aigw_plugin_run_t *run, aigw_str_t pair, aigw_str_t key, aigw_str_t val,
                     void *ud)
{
    (void)pair;
    find_t *f = ud;
    if (!aigw_str_eq(key, aigw_str_c(f->name)))
        return 0;
    if (f->count++ == 0) {
        f->first = pct_decode(run, val, f->plus);
        if (!f->first.p)
            f->first = (aigw_str_t){ "", 0 };
    }
    return 0;
}

typedef struct drop {
    const char *name;
    char *out;
    size_t n;
} drop_t;

static int drop_pair(aigw_plugin_run_t *run, aigw_str_t pair, aigw_str_t key, aigw_str_t val,
                     void *ud)
{
    (void)run;
    (void)val;
    drop_t *d = ud;
    if (aigw_str_eq(key, aigw_str_c(d->name)))
        return 0;
    if (d->n)
        d->out[d->n++] = '&';
    memcpy(d->out + d->n, pair.p, pair.n);
    d->n += pair.n;
    return 0;
}

static aigw_str_t cur_query(const aigw_plugin_run_t *run)
{
    return run->query_set ? run->query : run->req->query;
}

aigw_str_t aigw_plugin_body(const aigw_plugin_run_t *run)
{
    if (run->body_set)
        return run->body;
    return run->req->body ? (aigw_str_t){ run->req->body, (size_t)run->req->body_len }
                          : AIGW_STR_NULL;
}

aigw_str_t aigw_plugin_query_arg(aigw_plugin_run_t *run, const char *name, size_t *count)
{
    find_t f = { .name = name, .plus = 1 };
    each_pair(run, cur_query(run), 1, find_pair, &f);
    if (count)
        *count = f.count;
    return f.first;
}

aigw_str_t aigw_plugin_form_field(aigw_plugin_run_t *run, const char *name, size_t *count)
{
    find_t f = { .name = name, .plus = 1 };
    each_pair(run, aigw_plugin_body(run), 1, find_pair, &f);
    if (count)
        *count = f.count;
    return f.first;
}

static int drop_in(aigw_plugin_run_t *run, aigw_str_t src, const char *name, aigw_str_t *out)
{
    drop_t d = { .name = name };
    d.out = aigw_arena_alloc(&run->req->arena, src.n + 1);
    if (!d.out)
        return -1;
    each_pair(run, src, 1, drop_pair, &d);
    d.out[d.n] = '\0';
    *out = (aigw_str_t){ d.out, d.n };
    return 0;
}

int aigw_plugin_drop_query_arg(aigw_plugin_run_t *run, const char *name)
{
    aigw_str_t q;
    if (drop_in(run, cur_query(run), name, &q) != 0)
        return -1;
    run->query = q;
    run->query_set = 1;
    return 0;
}

int aigw_plugin_drop_form_field(aigw_plugin_run_t *run, const char *name)
{
    aigw_str_t b;
    if (drop_in(run, aigw_plugin_body(run), name, &b) != 0)
        return -1;
    run->body = b;
    run->body_set = 1;
    return 0;
}
