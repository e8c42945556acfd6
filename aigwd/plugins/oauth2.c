/* aigwd/plugins/oauth2.c: the oauth2 plugin (placeholder until its implementation lands: every
 * request it applies to is refused with 500, as for a plugin this build lacks). */
#include "core/log.h"
#include "plugins/impl.h"

static void *configure(const json_t *config, char *err, size_t errlen)
{
    static int none;
    (void)config;
    (void)err;
    (void)errlen;
    return &none;
}

static aigw_plugin_rc_t access_phase(aigw_plugin_run_t *run, void *conf)
{
    (void)conf;
    AIGW_LOG(AIGW_LOG_ERR, "refusing a request: the oauth2 plugin is not implemented yet");
    return aigw_plugin_exit_message(run, 500, "An unexpected error occurred");
}

const aigw_plugin_def_t aigw_plugin_def_oauth2 = {
    .name = "oauth2",
    .priority = 1400,
    .configure = configure,
    .access = access_phase,
};
