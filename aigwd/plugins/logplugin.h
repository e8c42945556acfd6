/* aigwd/plugins/logplugin.h: what the log plugins (http-log, file-log, tcp-log, udp-log)
 * share. An instance is a queue (plugins/logqueue.h) with its sink, plus aigw's static
 * `custom_fields`; its log phase queues the request's record (plugins/logrec.h). */
#ifndef AIGW_PLUGINS_LOGPLUGIN_H
#define AIGW_PLUGINS_LOGPLUGIN_H
#include <jansson.h>
#include "plugins/logqueue.h"
#include "plugins/plugins.h"

typedef struct aigw_logplugin {
    aigw_logq_t *q;
    json_t *custom_fields;        /* NULL when none; read-only once configured */
} aigw_logplugin_t;

/* Loader thread, from a plugin's configure: copies `custom_fields`, warns (naming label)
 * that `custom_fields_by_lua` is ignored, and acquires the queue qname with opts and sink
 * (aigw_logq_acquire: the sink is the queue's, or freed, from here on). NULL with a message
 * in err. */
aigw_logplugin_t *aigw_logplugin_new(const json_t *config, const char *qname,
                                     const char *label, const aigw_logq_opts_t *opts,
                                     aigw_logq_sink_t sink, char *err, size_t errlen);
/* The plugin's free_conf and log phase (conf is an aigw_logplugin_t). */
void aigw_logplugin_free(void *conf);
void aigw_logplugin_log(aigw_plugin_run_t *run, void *conf);

#endif
