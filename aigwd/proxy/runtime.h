/* aigwd/proxy/runtime.h: the immutable runtime configuration the proxy serves from, built by
 * the loader from one config snapshot (snapshot/snapshot.h) and shared read-only by every
 * worker. Everything a request needs is a C struct here: the proxy path never reads json_t
 * trees or the store. A request holds a reference for its whole life; the last user frees
 * an old runtime (never the loader). */
#ifndef AIGW_PROXY_RUNTIME_H
#define AIGW_PROXY_RUNTIME_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "common/str.h"

typedef struct aigw_router aigw_router_t;   /* proxy/router.h */
typedef struct aigw_certs aigw_certs_t;     /* proxy/certs.h */
typedef struct aigw_balancers aigw_balancers_t;   /* proxy/balancer.h */
typedef struct aigw_consumers aigw_consumers_t;   /* proxy/consumers.h */

/* Protocol bits (routes.protocols, services.protocol). */
enum {
    AIGW_PROTO_HTTP = 1u << 0,
    AIGW_PROTO_HTTPS = 1u << 1,
    AIGW_PROTO_GRPC = 1u << 2,
    AIGW_PROTO_GRPCS = 1u << 3,
    AIGW_PROTO_TCP = 1u << 4,
    AIGW_PROTO_TLS = 1u << 5,
    AIGW_PROTO_UDP = 1u << 6,
    AIGW_PROTO_TLS_PASSTHROUGH = 1u << 7,
};

typedef struct aigw_rt_service {
    char id[37];
    aigw_str_t name;              /* empty when unnamed */
    unsigned protocol;            /* one AIGW_PROTO_* bit */
    aigw_str_t host;
    int port;
    aigw_str_t path;              /* empty when null */
    int retries;
    int connect_timeout, write_timeout, read_timeout;   /* ms */
    int enabled;
    int tls_verify;               /* -1 unset, 0, 1 */
    int tls_verify_depth;         /* -1 unset */
    aigw_str_t json;              /* the entity as compact JSON (log records); often its
                                   * bytes in the snapshot: not NUL-terminated */
    uint64_t json_hash;           /* the loader's: aigw_hash_bytes(json), for the next load */
} aigw_rt_service_t;

typedef struct aigw_rt_header_match {
    aigw_str_t name;              /* lower-cased */
    aigw_str_t *values;           /* lower-cased; a value starting with "~*" is a regex */
    size_t n_values;
} aigw_rt_header_match_t;

typedef struct aigw_rt_route {
    char id[37];
    aigw_str_t name;
    unsigned protocols;           /* AIGW_PROTO_* bits */
    aigw_str_t *methods;          /* upper-case */
    size_t n_methods;
    aigw_str_t *hosts;            /* as configured, lower-cased ("*.example.com", "a.b:8000") */
    size_t n_hosts;
    aigw_str_t *paths;            /* as configured ("/foo", "~/v[0-9]+") */
    size_t n_paths;
    aigw_rt_header_match_t *headers;
    size_t n_headers;
    aigw_str_t *snis;
    size_t n_snis;
    int https_redirect_status_code;
    int regex_priority;
    int strip_path, preserve_host;
    int path_handling_v1;         /* 0: v0 (default), 1: v1 */
    int request_buffering, response_buffering;
    const aigw_rt_service_t *service;   /* NULL when the route has none */
    aigw_str_t json;              /* the entity as compact JSON (log records); often its
                                   * bytes in the snapshot: not NUL-terminated */
    uint64_t json_hash;           /* the loader's: aigw_hash_bytes(json), for the next load */
} aigw_rt_route_t;

typedef struct aigw_runtime {
    _Atomic int refs;
    long long version;            /* the snapshot's */
    uint64_t gen;                 /* unique per load in this process (per-worker caches key
                                   * on it: an address can be reused, a gen is not) */
    char hash[65];
    aigw_rt_service_t *services;
    size_t n_services;
    aigw_rt_route_t *routes;
    size_t n_routes;
    aigw_router_t *router;
    void *plugins;                /* plugins/plugins.c state: instances and per-route chains */
    aigw_certs_t *certs;          /* server contexts by SNI, upstream client contexts */
    aigw_balancers_t *balancers;  /* one per upstream entity, with shared health state */
    aigw_consumers_t *consumers;  /* consumers and credentials, indexed for auth plugins */
    void *mem;                    /* the loader's allocation block(s); private */
} aigw_runtime_t;

#endif
