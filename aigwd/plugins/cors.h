/* aigwd/plugins/cors.h: the origin normalisation of the cors plugin, exposed for its unit
 * test. Pure: any thread. */
#ifndef AIGW_PLUGINS_CORS_H
#define AIGW_PLUGINS_CORS_H
#include <stddef.h>
#include "common/str.h"

/* Kong's normalize_origin (LuaSocket 3.0-rc1 url.parse): the URL's host (IPv6 brackets
 * removed) and "scheme://host:port" without userinfo, path, query or fragment, and without
 * the port when it is http's 80 or https's 443 (case-sensitive: nothing is lowercased). When
 * the value has no host (no "//authority" part, e.g. "null"), domain and host are the value
 * itself. buf (at least n bytes) receives domain; host points into s or at s. 0, or -1 for
 * an empty value (Kong fails the request there). */
int aigw_cors_normalize(const char *s, size_t n, char *buf, aigw_str_t *domain,
                        aigw_str_t *host);

#endif
