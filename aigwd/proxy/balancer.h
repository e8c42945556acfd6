/* aigwd/proxy/balancer.h: Kong's upstream load balancers (Kong 3.9 kong/runloop/balancer/,
 * lua-resty-healthcheck 3.1 health state), one per upstream of a config snapshot.
 *
 * A balancer set is built by the loader from the snapshot's "upstreams" and "targets" arrays.
 * Its configuration (targets, weights, algorithm, hash and health-check settings) is immutable
 * once built; its state (health, failure/success counters, connection counts, round-robin
 * position, the addresses last resolved for each target) is shared by every worker thread and
 * the health-check thread and is updated with atomics or a small mutex per target (per
 * balancer for the weighted round-robin fallback), so every function below except build,
 * inherit and free may be called from any thread at any time.
 *
 * Lifetime: the set is reference-counted. build returns one reference; the runtime that holds
 * the set keeps it, a request that picked a target keeps its runtime (hence the set) until it
 * has reported and released; the health-check thread takes its own reference
 * (aigw_healthcheck_set). The last unref frees, on whichever thread.
 *
 * Health is tracked per target (Kong tracks each resolved address of a target; aigw resolves a
 * target's name in the proxy, so every address of a name shares the target's health). State is
 * keyed by (upstream id, target string) and carried across reloads by aigw_balancers_inherit.
 *
 * How the loader uses a set (on each new snapshot):
 *   s = aigw_balancers_build(root, err, sizeof(err));      NULL: keep the old runtime
 *   aigw_balancers_inherit(s, old_runtime_set);             before anyone else sees s
 *   (store s in the runtime, publish it)
 *   aigw_healthcheck_set(s);                                proxy/healthcheck.h
 *   and the runtime's free drops its reference with aigw_balancers_unref(s).
 *
 * How the proxy uses a balancer (Kong's kong/runloop/balancer/init.lua execute + kong/init.lua
 * balancer phase + the log phase):
 *   1. b = aigw_balancers_find(set, service->host); NULL: the host is resolved by DNS.
 *   2. aigw_balancer_pick(b, &key, tried, n_tried, &pick). -1: answer 503
 *      "failure to get a peer from the ring-balancer" (kong.response.error, see proxy.md §4).
 *   3. pick.host is an IP literal (pick.addr is filled, port set) or a name to resolve with
 *      proxy/dns.h (then set the port: pick.port). On a DNS failure call
 *      aigw_balancer_set_addresses(b, pick.target, NULL, 0, res->error): the target is then
 *      skipped for 30 s (Kong's requery interval; Kong drops a target whose name does not
 *      resolve from the ring), and pick again excluding it; a -1 then is the 503 above. After a
 *      fresh successful resolution (res->fresh) call aigw_balancer_set_addresses with the
 *      addresses so GET /upstreams/{u}/health can show them.
 *   4. Send the request. Report every try: a connect error / reset before a response:
 *      AIGW_BAL_TCP_FAILURE; a timeout: AIGW_BAL_TIMEOUT; a response: AIGW_BAL_HTTP_STATUS with
 *      its status (504 counts as a timeout, as Kong's log phase does).
 *   5. aigw_balancer_release(b, pick.target) once per successful pick, when the try ends
 *      (least-connections counts open tries; harmless for the other algorithms). On a retry,
 *      release the previous try first, then pick again with every tried target excluded.
 *   6. When pick.set_cookie is 1 (hash_on/hash_fallback = cookie and the request had none),
 *      add "Set-Cookie: <cookie_name>=<cookie_value>; Path=<cookie_path>; Same-Site=Lax;
 *      HttpOnly" to the response (Kong's set_cookie in kong/runloop/balancer/init.lua), and
 *      pass pick.hash back in the key on retries so the cookie value is not generated twice. */
#ifndef AIGW_PROXY_BALANCER_H
#define AIGW_PROXY_BALANCER_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "common/str.h"

typedef struct aigw_balancers aigw_balancers_t;    /* every balancer of one snapshot */
typedef struct aigw_balancer aigw_balancer_t;      /* one upstream */

/* The 503 message the proxy answers with when aigw_balancer_pick returns -1. */
#define AIGW_BALANCER_NO_PEER_MESSAGE "failure to get a peer from the ring-balancer"

/* ---- building ------------------------------------------------------------------------------- */

/* Loader thread (never a worker: parses JSON). One balancer per element of
 * snapshot_root["upstreams"], with the targets of snapshot_root["targets"] whose
 * "upstream":{"id"} names it; absent fields take the defaults of Kong's upstreams and targets
 * schemas. Returns the set holding one reference, or NULL with a one-line reason in err (a
 * broken snapshot). snapshot_root is borrowed. An empty or absent "upstreams" gives an empty
 * set (never NULL for that). */
aigw_balancers_t *aigw_balancers_build(const json_t *snapshot_root, char *err, size_t errlen);

/* Loader thread, after build and BEFORE new_ is published to any other thread. For each target
 * of new_ whose (upstream id, target string) exists in old, new_ shares old's state from now on
 * (health, counters, connection count, resolved addresses), so a reload neither resets health
 * nor loses reports that arrive on old from requests still running. old is borrowed (may be
 * NULL) and may be in use by other threads. */
void aigw_balancers_inherit(aigw_balancers_t *new_, const aigw_balancers_t *old);

/* Any thread. Adds a reference and returns s (NULL is fine). */
aigw_balancers_t *aigw_balancers_ref(aigw_balancers_t *s);
/* Any thread. Drops a reference; the last one frees. NULL is fine. */
void aigw_balancers_unref(aigw_balancers_t *s);
/* Same as aigw_balancers_unref (drops the reference build returned). */
void aigw_balancers_free(aigw_balancers_t *s);

/* ---- lookups -------------------------------------------------------------------------------- */

/* Any thread; s is borrowed. The balancer of the upstream whose name equals host exactly (a
 * service whose host is an upstream's name uses it; Kong compares the name as is), or NULL. */
const aigw_balancer_t *aigw_balancers_find(const aigw_balancers_t *s, aigw_str_t host);
/* Any thread. The balancer of the upstream with that id (36 characters) or name, or NULL. */
const aigw_balancer_t *aigw_balancers_find_id_or_name(const aigw_balancers_t *s,
                                                      const char *id_or_name);

const char *aigw_balancer_id(const aigw_balancer_t *b);     /* upstream id, NUL-terminated */
const char *aigw_balancer_name(const aigw_balancer_t *b);   /* upstream name */
/* upstream.host_header, or an empty view when null. */
aigw_str_t aigw_balancer_host_header(const aigw_balancer_t *b);
size_t aigw_balancer_n_targets(const aigw_balancer_t *b);

/* ---- picking a target ----------------------------------------------------------------------- */

/* What the caller knows about the request, for consistent-hashing (ignored by the other
 * algorithms). Kong computes the value once per request from hash_on, then hash_fallback when
 * the first yields nothing (kong/runloop/balancer/init.lua get_value_to_hash):
 *   consumer     the authenticated consumer's id, else the credential's id
 *   ip           the client address ($remote_addr, after trusted_ips/realip)
 *   header       the named request header (nginx $http_<name>: case-insensitive, '-' and '_'
 *                alike; several headers of that name joined by ", ")
 *   cookie       the named cookie; when absent, a new UUID is hashed and returned in the pick to
 *                be set as a cookie
 *   path         the normalised request path (nginx $uri, no query string)
 *   query_arg    the named query argument; several values sorted and joined by ","; an argument
 *                without value is "true"
 *   uri_capture  the named (or numbered) capture of the route's regex path
 * A getter returns a view with p == NULL when the value is absent (an empty value counts as
 * present, as in Kong). Getters may be NULL when the caller has no such data; they run on the
 * calling thread during aigw_balancer_pick only; names are borrowed from the balancer. When no
 * value is found the empty string is hashed, as Kong does. */
typedef struct aigw_balancer_key {
    aigw_str_t client_ip;
    aigw_str_t consumer_id;   /* consumer id, else credential id; p == NULL when anonymous */
    aigw_str_t path;
    aigw_str_t (*header)(void *req, aigw_str_t name);
    aigw_str_t (*cookie)(void *req, aigw_str_t name);
    aigw_str_t (*query_arg)(void *req, aigw_str_t name);
    aigw_str_t (*uri_capture)(void *req, aigw_str_t name);
    void *req;
    /* Retries: set has_hash = 1 and hash = the first pick's out->hash so the same value is
     * reused (Kong keeps balancer_data.hash_value across tries). */
    int has_hash;
    uint32_t hash;
} aigw_balancer_key_t;

typedef struct aigw_balancer_pick {
    uint32_t target;          /* index of the target in b: report, release, exclude */
    aigw_str_t host;          /* the target host without brackets: an IP literal or a name;
                               * borrowed from b (NUL-terminated) */
    int port;
    int family;               /* AF_INET or AF_INET6 when host is an IP literal, else 0 */
    struct sockaddr_storage addr;   /* family != 0: the address with port set */
    /* What Kong uses for the upstream Host header (before preserve_host and the ":port"
     * rule): upstream.host_header when set, else the target host as written in the target
     * ("[::1]" for IPv6). Borrowed from b. */
    aigw_str_t hostname;
    uint32_t hash;            /* consistent-hashing: the hash used (pass back on retries) */
    int set_cookie;           /* 1: add the Set-Cookie described at the top of this file */
    aigw_str_t cookie_name, cookie_path;   /* borrowed from b */
    char cookie_value[37];    /* a UUID, NUL-terminated, when set_cookie */
} aigw_balancer_pick_t;

/* Any thread. Chooses a target of b by its algorithm among the targets that have weight > 0,
 * are healthy (passive/active checks, manual health) and whose name did not just fail to
 * resolve. exclude_targets (n_exclude entries, may be NULL) lists targets already tried by
 * this request: they are avoided while another candidate exists (when every candidate was
 * tried, the exclusions are ignored, as Kong's rotating pointer comes back to them).
 *   round-robin        smooth weighted round-robin (nginx's), node-wide: over any window of
 *                      sum(weight)/gcd(weights) picks each healthy target gets exactly
 *                      weight/gcd picks
 *   consistent-hashing Ketama continuum of `slots` points (1000 when slots < 1000, as Kong),
 *                      160 * targets * weight/total points per target, xxhash32 of
 *                      "<host>::<port> <i>" as Kong; a key goes to the point at or before
 *                      xxhash32(value) % slots, walking back over unavailable targets, so
 *                      removing or failing a target moves only the keys it had
 *   least-connections  the target with the lowest (connections + 1) / weight (Kong's score);
 *                      connections are counted node-wide between pick and release
 *   latency            treated as least-connections (Kong's EWMA of response times is not
 *                      kept)
 * Also fails when the upstream's healthy weight is not above healthchecks.threshold percent of
 * its total weight (Kong: "Balancer is unhealthy"). 0 with *out filled; -1 when no target can
 * be used: the proxy answers 503 AIGW_BALANCER_NO_PEER_MESSAGE. Never blocks on I/O; takes a
 * mutex only for round-robin upstreams whose sum(weight)/gcd exceeds 65536. */
int aigw_balancer_pick(const aigw_balancer_t *b, const aigw_balancer_key_t *key,
                       const uint32_t *exclude_targets, size_t n_exclude,
                       aigw_balancer_pick_t *out);

/* Any thread. Ends one successful pick of target (least-connections bookkeeping). */
void aigw_balancer_release(const aigw_balancer_t *b, uint32_t target);

/* Passive health reports (healthchecks.passive; Kong's report_http_status / report_tcp_failure
 * / report_timeout). Thresholds of 0 disable a counter; with Kong's defaults every threshold is
 * 0 and reports change nothing. A status in passive.healthy.http_statuses counts a success, one
 * in passive.unhealthy.http_statuses (or 0: no valid response) an HTTP failure, others are
 * ignored; AIGW_BAL_HTTP_STATUS with 504 counts as a timeout. A success resets the failure
 * counters, a failure resets the success counter; reaching a threshold flips the target.
 * Without active checks an unhealthy target stays unhealthy (it is no longer picked, so no
 * successes come) until PUT .../healthy or a reload that drops it. Any thread; lock-free when
 * the report cannot change anything (the common case), else a per-target mutex. */
enum {
    AIGW_BAL_HTTP_STATUS = 0,   /* http_status: the response status */
    AIGW_BAL_TCP_FAILURE = 1,   /* connect refused/reset/closed before a response */
    AIGW_BAL_TIMEOUT = 2,       /* connect/send/read timeout */
};
void aigw_balancer_report(const aigw_balancer_t *b, uint32_t target, int kind, int http_status);

/* Any thread. Records what resolving a target's name gave: n addresses (port ignored; at most
 * 16 kept) for the health endpoint, or, when n == 0, the resolver's error text (dns_error,
 * e.g. "dns server error: 3 name error"): the target then shows "DNS_ERROR" and is not
 * picked for 30 s. addrs is copied. Takes the target's mutex: call it after a fresh lookup,
 * not on every request. */
void aigw_balancer_set_addresses(const aigw_balancer_t *b, uint32_t target,
                                 const struct sockaddr_storage *addrs, size_t n,
                                 const char *dns_error);

/* ---- admin API ------------------------------------------------------------------------------ */

/* Admin thread (may block: resolves names that were never resolved, with getaddrinfo). The
 * body of GET /upstreams/{id_or_name}/health as Kong 3.9 renders it (kong/api/routes/upstreams.lua,
 * kong/db/dao/targets.lua page_for_upstream_with_health, kong/runloop/balancer/healthcheckers.lua):
 *   balancer_health == 0:
 *     {"data":[<target entity> + "health": "HEALTHY"|"UNHEALTHY"|"DNS_ERROR"|"HEALTHCHECKS_OFF",
 *              "data": {"host","port","dns","nodeWeight","weight":{"total","unavailable",
 *              "available"},"addresses":[{"ip","port","weight","health"}]}], "next":null,
 *      "node_id": node_id}
 *     targets newest first (created_at, then id, descending), all of them (no paging). An
 *     address shows HEALTHCHECKS_OFF when the upstream uses no health checks (both active
 *     intervals and every passive unhealthy threshold 0) or the target's weight is 0; a target
 *     is HEALTHY if an address is, else UNHEALTHY if one is, else HEALTHCHECKS_OFF, and
 *     DNS_ERROR when it has no address.
 *   balancer_health == 1:
 *     {"data":{"health": "HEALTHY"|"UNHEALTHY"|"HEALTHCHECKS_OFF", "balancer_health":
 *      "HEALTHY"|"UNHEALTHY", "id": <upstream id>, "details": {"healthy": bool, "weight":
 *      {...}, "hosts": [{"host","port","dns","nodeWeight","weight":{...},"addresses":[{"ip",
 *      "port","weight","healthy": bool}]}]}}, "next": null, "node_id": node_id}
 * node_id may be NULL (rendered as null). Returns a new reference, or NULL when this set has no
 * such upstream (the admin API checks that the upstream exists in the store first and answers
 * 404 {"message":"Not found"} itself). */
json_t *aigw_balancers_health_json(const aigw_balancers_t *s, const char *id_or_name,
                                   int balancer_health, const char *node_id);

/* Any thread. PUT /upstreams/{u}/targets/{t}/healthy|unhealthy and
 * PUT /upstreams/{u}/targets/{t}/{address}/healthy|unhealthy (Kong 3.9 uses PUT): sets the
 * target's health at once and clears its counters, until checks change it again. upstream is
 * an id or name; target is a target id or its exact "host:port" string (as Kong, no
 * normalisation); address (may be NULL): "ip" or "ip:port" (port 8000 when absent, as Kong);
 * when it is not one of the target's addresses nothing changes and 0 is returned (Kong answers
 * 204 all the same); as aigw keeps health per target, the whole target changes. Returns
 *    0  done (the admin API answers 204)
 *   -1  no such upstream or target in this set (404 {"message":"Not found"})
 *   -2  the upstream uses no health checks: Kong answers 400 with
 *       {"message":"no healthchecker found for <upstream name>"}, which is written to err. */
int aigw_balancers_set_health(aigw_balancers_t *s, const char *upstream, const char *target,
                              const char *address, int healthy, char *err, size_t errlen);

/* ---- for proxy/healthcheck.c only ----------------------------------------------------------- */

enum { AIGW_HC_HTTP = 0, AIGW_HC_HTTPS = 1, AIGW_HC_TCP = 2 };

/* healthchecks.active of one upstream (grpc probes as http and grpcs as https). */
typedef struct aigw_balancer_active {
    int type;                 /* AIGW_HC_* */
    uint64_t timeout_ms;
    int concurrency;
    const char *http_path;
    const char *https_sni;    /* NULL when unset */
    int https_verify_certificate;
    const char *headers;      /* "Name: value\r\n" lines, "" when none */
    uint64_t healthy_interval_ms, unhealthy_interval_ms;   /* 0 = off */
} aigw_balancer_active_t;

size_t aigw_balancers__count(const aigw_balancers_t *s);
const aigw_balancer_t *aigw_balancers__at(const aigw_balancers_t *s, size_t i);
/* NULL when both active intervals are 0. */
const aigw_balancer_active_t *aigw_balancer__active(const aigw_balancer_t *b);
/* Target i: host (no brackets), port, weight; *family as in the pick (addr filled when an IP
 * literal, port set). */
void aigw_balancer__target(const aigw_balancer_t *b, uint32_t i, const char **host, int *port,
                           int *weight, int *family, struct sockaddr_storage *addr);
/* 1 when target i counts as healthy for active checks (healthy or mostly healthy). */
int aigw_balancer__is_healthy(const aigw_balancer_t *b, uint32_t i);
/* An active probe's result: kind as aigw_balancer_report, or AIGW_BAL__SUCCESS (a tcp probe
 * connected), judged with healthchecks.active (no 504 rule). */
enum { AIGW_BAL__SUCCESS = 3 };
void aigw_balancer__report_active(const aigw_balancer_t *b, uint32_t target, int kind,
                                  int http_status);

/* xxhash32 with seed 0 (what Kong's luaxxhash computes); exposed for tests. */
uint32_t aigw_balancer__xxh32(const void *p, size_t n);

#endif
