/* aigwd/plugins/impl.h: the implementations registry.c lists. */
#ifndef AIGW_PLUGINS_IMPL_H
#define AIGW_PLUGINS_IMPL_H
#include "plugins/plugins.h"

extern const aigw_plugin_def_t aigw_plugin_def_correlation_id;
extern const aigw_plugin_def_t aigw_plugin_def_request_termination;

#endif
