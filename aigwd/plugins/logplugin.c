/* aigwd/plugins/logplugin.c: the log plugins' shared instance (logplugin.h). */
#include <stdio.h>
#include <stdlib.h>
#include "core/log.h"
#include "plugins/logplugin.h"
#include "plugins/logrec.h"

aigw_logplugin_t *aigw_logplugin_new(const json_t *config, const char *qname,
                                     const char *label, const aigw_logq_opts_t *opts,
                                     aigw_logq_sink_t sink, char *err, size_t errlen)
{
    const json_t *lua = json_object_get(config, "custom_fields_by_lua");
    if (json_is_object(lua) && json_object_size(lua))
        AIGW_LOG(AIGW_LOG_WARN, "%s: custom_fields_by_lua is ignored (aigw runs no Lua; use "
                 "custom_fields for static values)", label);
    aigw_logplugin_t *lp = calloc(1, sizeof(*lp));
    const json_t *cf = json_object_get(config, "custom_fields");
    if (!lp || (json_is_object(cf) && json_object_size(cf) &&
                !(lp->custom_fields = json_deep_copy(cf)))) {
        snprintf(err, errlen, "out of memory");
        if (sink.free)
            sink.free(sink.ud);
        aigw_logplugin_free(lp);
        return NULL;
    }
    lp->q = aigw_logq_acquire(qname, label, opts, sink, err, errlen);
    if (!lp->q) {
        aigw_logplugin_free(lp);
        return NULL;
    }
    return lp;
}

void aigw_logplugin_free(void *conf)
{
    aigw_logplugin_t *lp = conf;
    if (!lp)
        return;
    if (lp->q)
        aigw_logq_release(lp->q);
    json_decref(lp->custom_fields);
    free(lp);
}

void aigw_logplugin_log(aigw_plugin_run_t *run, void *conf)
{
    aigw_logplugin_t *lp = conf;
    int rc;
    if (!lp->custom_fields) {
        /* the shared record, straight from the request arena: the queue copies it */
        aigw_str_t rec = aigw_plugin_log_record(run);
        if (!rec.p) {
            AIGW_LOG(AIGW_LOG_ERR, "out of memory building the log record");
            return;
        }
        rc = aigw_logq_push(lp->q, rec.p, rec.n);
    } else {
        size_t len = 0;
        char *rec = aigw_plugin_log_record_with(run, lp->custom_fields, &len);
        if (!rec) {
            AIGW_LOG(AIGW_LOG_ERR, "out of memory building the log record");
            return;
        }
        rc = aigw_logq_push(lp->q, rec, len);
        free(rec);
    }
    if (rc < 0)
        AIGW_LOG(AIGW_LOG_ERR, "Failed to enqueue log entry to log server");
}
