/* aigwd/proxy/router.h: maps a request to a route of one runtime (Kong 3.9's default
 * `traditional_compatible` router: reference/proxy.md §1). Built by the loader, immutable
 * afterwards, shared read-only by every worker thread.
 *
 * Matching rules, in short: every field a route sets must match (values of one field are
 * alternatives). methods: exact. hosts: exact, `*.suffix` (ends with), `prefix.*` (starts
 * with), ASCII case-insensitive; `host:port` adds a port condition, checked against the port
 * of the request's Host header when it has one, else the port the request arrived on. paths:
 * prefix (case-sensitive), or `~regex` anchored at the start only (PCRE2, JIT). headers: name
 * case-insensitive, value lower-cased equality, or `~*regex` (lower-cased, unanchored). snis:
 * only when the request came over TLS. A route whose paths differ in length or mix regex and
 * prefix is split into one matcher per group; the highest priority wins (Kong's 64-bit
 * number), ties go to the earlier route. Routes with no HTTP protocol, or whose service is
 * disabled, are left out. */
#ifndef AIGW_PROXY_ROUTER_H
#define AIGW_PROXY_ROUTER_H
#include <stddef.h>
#include <stdint.h>
#include "common/str.h"
#include "proxy/runtime.h"   /* aigw_rt_route_t, aigw_router_t */

#define AIGW_ROUTER_MAX_CAPTURES 16

/* Loader thread: compiles the routes (borrowed: they must outlive the router) into a matcher.
 * NULL with a message in err (e.g. a regex that does not compile; the route is named). */
aigw_router_t *aigw_router_build(const aigw_rt_route_t *routes, size_t n, char *err,
                                 size_t errlen);
void aigw_router_free(aigw_router_t *r);            /* NULL is fine */

typedef struct aigw_router_req {          /* what a request shows the router (all borrowed) */
    aigw_str_t method;                    /* "GET" */
    aigw_str_t host;                      /* Host header value as sent (may carry :port);
                                             p == NULL when the request has no Host */
    int port;                             /* the port the request arrived on (net.dst.port) */
    aigw_str_t path;                      /* the normalised path (aigw_path_normalize) */
    int tls;                              /* arrived over TLS */
    aigw_str_t sni;                       /* TLS SNI or empty */
    const aigw_str_t *header_names;       /* request headers: names (any case) ... */
    const aigw_str_t *header_values;      /* ... and values */
    size_t n_headers;
} aigw_router_req_t;

typedef struct aigw_router_match {
    const aigw_rt_route_t *route;         /* borrowed from the runtime */
    aigw_str_t matched_path;              /* the configured path that matched, as configured
                                             ("/foo", or "~/v(\d+)" for a regex); empty when
                                             the route has no paths */
    size_t prefix_len;                    /* bytes of the request path the match consumed:
                                             the prefix's length, or the regex match's length
                                             (Kong strips that many bytes); 0 without paths */
    /* Regex captures, views into req->path: [0] is the whole match, [i] group i; a group
     * that did not take part is {NULL, 0}; capture_names[i] is group i's name or empty.
     * n_captures is 0 for a prefix match, else min(groups + 1, 16). */
    aigw_str_t captures[AIGW_ROUTER_MAX_CAPTURES];
    aigw_str_t capture_names[AIGW_ROUTER_MAX_CAPTURES];
    size_t n_captures;
} aigw_router_match_t;

/* Any worker thread, concurrently: 0 on a match (out filled), 1 when no route matches.
 * Allocates nothing per call (each thread keeps one PCRE2 match data block, freed when the
 * thread exits). Cost does not grow with the number of plain host and prefix routes. */
int aigw_router_match(const aigw_router_t *r, const aigw_router_req_t *req,
                      aigw_router_match_t *out);

/* Normalises a request path as Kong does before routing (kong/tools/uri.lua normalize with
 * merge_slashes): percent-escapes of characters outside RFC 3986's reserved set are decoded
 * ("%41" -> "A", "%2e" -> "."), escapes of reserved characters stay encoded with upper-case
 * hex ("%2f" -> "%2F"), dot segments are resolved ("/a/../b" -> "/b") and repeated slashes
 * merged. out receives the result, NUL-terminated; cap >= in.n + 1. Returns its length, or
 * -1 when nginx would answer 400: not starting with '/', a bad escape, a NUL byte ("%00"),
 * or a ".." that climbs above the root. The query string is NOT part of in. Any thread. */
int aigw_path_normalize(aigw_str_t in, char *out, size_t cap);

/* Escapes a normalised path for the upstream request line as Kong does (kong/tools/uri.lua
 * escape): every byte outside A-Z a-z 0-9 - _ . ~ % and the reserved set
 * ! # $ & ' ( ) * + , / : ; = ? @ [ ] becomes %XX. cap >= 3 * in.n + 1. Returns the length
 * (out NUL-terminated) or -1 when cap is too small. Any thread. */
int aigw_path_escape(aigw_str_t in, char *out, size_t cap);

/* For tests and the fuzz harness only: the same answer as aigw_router_match, found by trying
 * every matcher in priority order (no index). */
int aigw_router__match_linear(const aigw_router_t *r, const aigw_router_req_t *req,
                              aigw_router_match_t *out);

/* For tests: the 64-bit priority of matcher i in match order (i < aigw_router__count()), and
 * the route it came from. */
size_t aigw_router__count(const aigw_router_t *r);
uint64_t aigw_router__priority(const aigw_router_t *r, size_t i,
                               const aigw_rt_route_t **route);

#endif
