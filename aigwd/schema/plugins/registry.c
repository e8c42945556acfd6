/* aigwd/schema/plugins/registry.c: every bundled plugin schema, sorted by name, and the
 * lookup by name. */
#include <string.h>
#include "schema/plugins/plugins.h"

/* Sorted by strcmp on the name: aigw_schema_plugin searches it by bisection. */
const aigw_plugin_schema_t *const aigw_plugins[] = {
    &aigw_plugin_acl,
    &aigw_plugin_ai_prompt_guard,
    &aigw_plugin_basic_auth,
    &aigw_plugin_correlation_id,
    &aigw_plugin_cors,
    &aigw_plugin_file_log,
    &aigw_plugin_http_log,
    &aigw_plugin_ip_restriction,
    &aigw_plugin_jwt,
    &aigw_plugin_key_auth,
    &aigw_plugin_oauth2,
    &aigw_plugin_prometheus,
    &aigw_plugin_rate_limiting,
    &aigw_plugin_request_size_limiting,
    &aigw_plugin_request_termination,
    &aigw_plugin_request_transformer,
    &aigw_plugin_response_transformer,
    &aigw_plugin_tcp_log,
    &aigw_plugin_udp_log,
    NULL,
};

const aigw_plugin_schema_t *aigw_schema_plugin(const char *name)
{
    if (!name)
        return NULL;
    size_t lo = 0, hi = sizeof(aigw_plugins) / sizeof(aigw_plugins[0]) - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, aigw_plugins[mid]->name);
        if (c == 0)
            return aigw_plugins[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
