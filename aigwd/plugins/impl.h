/* aigwd/plugins/impl.h: the implementations registry.c lists. */
#ifndef AIGW_PLUGINS_IMPL_H
#define AIGW_PLUGINS_IMPL_H
#include "plugins/plugins.h"

extern const aigw_plugin_def_t aigw_plugin_def_correlation_id;
extern const aigw_plugin_def_t aigw_plugin_def_jwt;
extern const aigw_plugin_def_t aigw_plugin_def_oauth2;
extern const aigw_plugin_def_t aigw_plugin_def_key_auth;
extern const aigw_plugin_def_t aigw_plugin_def_basic_auth;
extern const aigw_plugin_def_t aigw_plugin_def_acl;
extern const aigw_plugin_def_t aigw_plugin_def_rate_limiting;
extern const aigw_plugin_def_t aigw_plugin_def_request_termination;

#endif
