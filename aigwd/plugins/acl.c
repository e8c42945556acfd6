/* aigwd/plugins/acl.c: Kong's acl (priority 950, reference/plugins.md "acl").
 *
 * Exactly one of `allow` / `deny` is set (the schema maps aigw's input aliases `whitelist` /
 * `blacklist` onto them). The groups checked are the authenticated consumer's (its acls, in
 * snapshot order):
 *   - no consumer: 403 `You cannot consume this service` when a credential was set (does not
 *     happen in aigw: every credential has a consumer), else 401 `Unauthorized`;
 *   - a consumer without groups: passes a deny list; for an allow list 403 when
 *     authenticated with a credential, 401 for the anonymous consumer;
 *   - allow list: passes when one of its groups is the consumer's; deny list: passes when
 *     none is; else 403 `You cannot consume this service`.
 * All answers are Kong's error JSON. A request that passes gets the upstream header
 * `X-Consumer-Groups: g1, g2` (the consumer's groups), unless hide_groups_header.
 *
 * aigw has no source of "authenticated groups" (ldap / openid-connect), so
 * always_use_authenticated_groups is accepted and has no effect, and X-Authenticated-Groups
 * is never set. aigw difference: a client-sent X-Consumer-Groups is always removed when the
 * consumer's groups are not sent (hide_groups_header, or no groups), where Kong would leave
 * it in place under hide_groups_header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "plugins/impl.h"

typedef struct conf {
    int deny;              /* 1: `deny` list, 0: `allow` list */
    char **groups;
    size_t n_groups;
    int hide_groups_header;
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    for (size_t i = 0; i < k->n_groups; i++)
        free(k->groups[i]);
    free(k->groups);
    free(k);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k)
        goto oom;
    const json_t *deny = json_object_get(c, "deny");
    const json_t *allow = json_object_get(c, "allow");
    /* Kong: the deny list when it has a first element, else the allow list */
    k->deny = json_is_array(deny) && json_array_size(deny) > 0;
    const json_t *list = k->deny ? deny : allow;
    size_t n = json_is_array(list) ? json_array_size(list) : 0;
    k->groups = calloc(n ? n : 1, sizeof(char *));
    if (!k->groups)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(list, i));
        if (!s)
            continue;
        if (!(k->groups[k->n_groups] = strdup(s)))
            goto oom;
        k->n_groups++;
    }
    k->hide_groups_header = json_is_true(json_object_get(c, "hide_groups_header"));
    return k;
oom:
    conf_free(k);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static int in_groups(const conf_t *k, const aigw_rt_consumer_t *c)
{
    for (size_t i = 0; i < k->n_groups; i++)
        for (size_t j = 0; j < c->n_groups; j++)
            if (aigw_str_eq(aigw_str_c(k->groups[i]), c->groups[j]))
                return 1;
    return 0;
}

/* "g1, g2" in the request arena. */
static aigw_str_t joined(aigw_plugin_run_t *run, const aigw_rt_consumer_t *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_groups; i++)
        n += c->groups[i].n + 2;
    char *p = aigw_arena_alloc(&run->req->arena, n + 1);
    if (!p)
        return AIGW_STR_NULL;
    size_t k = 0;
    for (size_t i = 0; i < c->n_groups; i++) {
        if (i) {
            p[k++] = ',';
            p[k++] = ' ';
        }
        if (c->groups[i].n)
            memcpy(p + k, c->groups[i].p, c->groups[i].n);
        k += c->groups[i].n;
    }
    p[k] = '\0';
    return (aigw_str_t){ p, k };
}

static aigw_plugin_rc_t access_phase(aigw_plugin_run_t *run, void *conf)
{
    const conf_t *k = conf;
    const aigw_rt_consumer_t *c = run->consumer;
    if (!c) {
        if (aigw_plugin_has_credential(run))
            return aigw_plugin_error(run, 403, "You cannot consume this service");
        return aigw_plugin_error(run, 401, "Unauthorized");
    }
    if (c->n_groups == 0 && !k->deny) {
        if (aigw_plugin_has_credential(run))
            return aigw_plugin_error(run, 403, "You cannot consume this service");
        return aigw_plugin_error(run, 401, "Unauthorized");
    }
    int hit = in_groups(k, c);
    if (k->deny ? hit : !hit)
        return aigw_plugin_error(run, 403, "You cannot consume this service");
    if (k->hide_groups_header || c->n_groups == 0) {
        aigw_plugin_clear_header(run, "X-Consumer-Groups");
        return AIGW_PLUGIN_NEXT;
    }
    aigw_str_t v = joined(run, c);
    if (!v.p || aigw_plugin_set_header(run, "X-Consumer-Groups", v) != 0)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    return AIGW_PLUGIN_NEXT;
}

const aigw_plugin_def_t aigw_plugin_def_acl = {
    .name = "acl",
    .priority = 950,
    .configure = configure,
    .free_conf = conf_free,
    .access = access_phase,
};
