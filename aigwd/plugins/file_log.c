/* aigwd/plugins/file_log.c: placeholder (being written): refuses every request it applies to. */
#include "plugins/impl.h"

static void *configure(const json_t *c, char *err, size_t errlen)
{
    (void)c;
    (void)err;
    (void)errlen;
    static int dummy;
    return &dummy;
}

static aigw_plugin_rc_t placeholder_access(aigw_plugin_run_t *run, void *conf)
{
    (void)conf;
    return aigw_plugin_error(run, 500, "An unexpected error occurred");
}

const aigw_plugin_def_t aigw_plugin_def_file_log = {
    .name = "file-log",
    .priority = 9,
    .configure = configure,
    .access = placeholder_access,
};
