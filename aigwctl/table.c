/* aigwctl/table.c: the one command table, assembled from the modules' arrays once. Help, the
 * man page, the completions and the shell all read it. */
#include "ctl.h"

#include <stdlib.h>

const ctl_flag_t ctl_global_flags[] = {
    { "admin-url", 0, "URL", "admin API to talk to (env AIGW_ADMIN_URL, default http://127.0.0.1:8001)", NULL, 0 },
    { "context", 0, "NAME", "use this context of ~/.config/aigw/aigwctl.conf (env AIGW_CONTEXT)", "context", 0 },
    { "ca-cert", 0, "FILE", "trust this CA bundle for an https admin API", "file", 0 },
    { "insecure", 0, NULL, "do not verify the admin API's TLS certificate", NULL, 0 },
    { "timeout", 0, "SECONDS", "give up on an admin request after this long (default 10)", NULL, 0 },
    { "header", 0, "'NAME: VALUE'", "add a header to every admin request (repeatable)", NULL, 1 },
    { "output", 'o', "FORMAT", "output format: table (default on a terminal), json, yaml or ids", "table|json|yaml|ids", 0 },
    { "verbose", 'v', NULL, "show each HTTP exchange on stderr (secrets masked)", NULL, 0 },
    { "no-color", 0, NULL, "no colour (also when NO_COLOR is set or stdout is not a terminal)", NULL, 0 },
    { "help", 'h', NULL, "show help", NULL, 0 },
    { NULL, 0, NULL, NULL, NULL, 0 },
};

typedef const ctl_cmd_t *(*module_fn)(size_t *n);

static const module_fn modules[] = {
    ctl_cmds_entity, ctl_cmds_basic, ctl_cmds_jwt, ctl_cmds_config,
    ctl_cmds_loadtest, ctl_cmds_shell, ctl_cmds_gen,
};

static const ctl_cmd_t **all;
static size_t nall;

void ctl_commands_free(void)
{
    free(all);
    all = NULL;
    nall = 0;
}

const ctl_cmd_t *const *ctl_commands(size_t *n)
{
    if (!all) {
        size_t total = 0;
        for (size_t m = 0; m < sizeof(modules) / sizeof(modules[0]); m++) {
            size_t k = 0;
            modules[m](&k);
            total += k;
        }
        all = calloc(total ? total : 1, sizeof(*all));
        if (!all) {
            *n = 0;
            return NULL;
        }
        for (size_t m = 0; m < sizeof(modules) / sizeof(modules[0]); m++) {
            size_t k = 0;
            const ctl_cmd_t *arr = modules[m](&k);
            for (size_t i = 0; i < k; i++)
                all[nall++] = &arr[i];
        }
    }
    *n = nall;
    return all;
}
