/* aigwd/plugins/registry.c: the plugin implementations this build has, by descending
 * priority (Kong's order; equal priorities by name). */
#include <string.h>
#include "plugins/plugins.h"
#include "plugins/impl.h"

static const aigw_plugin_def_t *const defs[] = {
    &aigw_plugin_def_correlation_id,         /* 100001 */
    &aigw_plugin_def_cors,                   /* 2000 */
    &aigw_plugin_def_jwt,                    /* 1450 */
    &aigw_plugin_def_oauth2,                 /* 1400 */
    &aigw_plugin_def_key_auth,               /* 1250 */
    &aigw_plugin_def_basic_auth,             /* 1100 */
    &aigw_plugin_def_ip_restriction,         /* 990 */
    &aigw_plugin_def_request_size_limiting,  /* 951 */
    &aigw_plugin_def_acl,                    /* 950 */
    &aigw_plugin_def_rate_limiting,          /* 910 */
    &aigw_plugin_def_request_transformer,    /* 801 */
    &aigw_plugin_def_response_transformer,   /* 800 */
    &aigw_plugin_def_ai_prompt_guard,        /* 771 */
    &aigw_plugin_def_prometheus,             /* 13 */
    &aigw_plugin_def_http_log,               /* 12 */
    &aigw_plugin_def_file_log,               /* 9 */
    &aigw_plugin_def_udp_log,                /* 8 */
    &aigw_plugin_def_tcp_log,                /* 7 */
    &aigw_plugin_def_request_termination,    /* 2 */
};

const aigw_plugin_def_t *const *aigw_plugin_defs(size_t *n)
{
    *n = sizeof(defs) / sizeof(defs[0]);
    return defs;
}

const aigw_plugin_def_t *aigw_plugin_def_find(const char *name)
{
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
        if (strcmp(defs[i]->name, name) == 0)
            return defs[i];
    return NULL;
}
