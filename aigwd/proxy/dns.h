/* aigwd/proxy/dns.h: a per-loop asynchronous name resolver with a cache, for upstream hosts
 * (services whose host is not an upstream, and the targets of upstreams).
 *
 * One resolver per libuv loop (each proxy worker, the health-check thread); every function
 * runs on that loop's thread only. Lookups run getaddrinfo() in libuv's thread pool
 * (uv_getaddrinfo), so /etc/hosts and the system resolver configuration apply; IP literals
 * ("10.0.0.1", "::1", "[::1]") are answered at once without the pool or the cache.
 *
 * Cache (per resolver, keyed by the lower-cased name), approximating Kong's DNS client
 * (kong/resty/dns/client.lua with kong_defaults.lua):
 *  - a positive answer is fresh for valid_ttl_ms (default 30 s: getaddrinfo gives no record
 *    TTL, so this plays Kong's dns_valid_ttl), then served stale for up to stale_ttl_ms more
 *    (dns_stale_ttl, default 3600 s) while one background lookup refreshes it;
 *  - "not found" (NXDOMAIN, or a name without addresses) is cached for not_found_ttl_ms
 *    (dns_not_found_ttl, default 30 s); any other failure for error_ttl_ms (dns_error_ttl,
 *    default 1 s). A refresh that fails with anything but NXDOMAIN keeps serving the stale
 *    addresses (as Kong keeps a stale record on server errors) and is retried after
 *    error_ttl_ms;
 *  - concurrent lookups of one name share one getaddrinfo call;
 *  - at most cache_size names (dns_cache_size, default 10000); the least recently used entry
 *    is dropped first.
 * Addresses: IPv4 first, then IPv6, duplicates removed. Each answer hands out the next address
 * in turn (round-robin) among the IPv4 ones, or among the IPv6 ones when there is no IPv4
 * address: Kong's dns_order (LAST,SRV,A,CNAME) asks for A records and only uses AAAA when
 * told to.
 *
 * Errors, and what the proxy answers (kong/runloop/balancer/init.lua execute): a name that does
 * not exist ("dns server error: 3 name error") or has no address ("dns client error: 101 empty
 * record received") is AIGW_DNS_NOT_FOUND, and Kong answers 503 with the message
 * AIGW_DNS_FAILED_MESSAGE ("name resolution failed"); any other failure is AIGW_DNS_ERROR and
 * Kong answers 500 with the resolver's text as the message (ours: "dns server error: 2 server
 * failure" for a temporary failure, else "dns client error: <reason>"). */
#ifndef AIGW_PROXY_DNS_H
#define AIGW_PROXY_DNS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define AIGW_DNS_FAILED_MESSAGE "name resolution failed"

typedef struct aigw_dns aigw_dns_t;
typedef struct aigw_dns_lookup aigw_dns_lookup_t;

typedef struct aigw_dns_opts {
    uint64_t valid_ttl_ms;       /* default 30000 */
    uint64_t stale_ttl_ms;       /* default 3600000; 0: never serve stale */
    uint64_t not_found_ttl_ms;   /* default 30000 */
    uint64_t error_ttl_ms;       /* default 1000 */
    size_t cache_size;           /* default 10000 */
} aigw_dns_opts_t;

/* Fills o with the defaults above. */
void aigw_dns_opts_default(aigw_dns_opts_t *o);

enum {
    AIGW_DNS_OK = 0,
    AIGW_DNS_NOT_FOUND = 1,      /* 503 AIGW_DNS_FAILED_MESSAGE */
    AIGW_DNS_ERROR = 2,          /* 500 with res->error */
};

typedef struct aigw_dns_result {
    int status;                          /* AIGW_DNS_* */
    struct sockaddr_storage addr;        /* OK: this answer's address; port 0 (set it) */
    const struct sockaddr_storage *addrs;   /* OK: every address, borrowed for the callback */
    size_t n_addrs;
    int fresh;                           /* 1: a lookup just completed (not the cache) */
    int stale;                           /* 1: served stale while a refresh runs */
    const char *error;                   /* not OK: Kong-style text, borrowed for the callback */
} aigw_dns_result_t;

/* Called on the loop's thread with a result borrowed for the duration of the call. */
typedef void (*aigw_dns_cb)(const aigw_dns_result_t *res, void *ud);

/* Loop thread. o may be NULL (defaults); it is copied. NULL when out of memory. */
aigw_dns_t *aigw_dns_new(uv_loop_t *loop, const aigw_dns_opts_t *o);

/* Loop thread. Frees the resolver and its cache. Pending lookups are dropped: their callbacks
 * never run. getaddrinfo calls already in the thread pool finish later on the loop and free
 * what they own, so keep running the loop until it has nothing left before uv_loop_close().
 * Safe inside an aigw_dns callback (the free then completes when the callback returns).
 * NULL is fine. */
void aigw_dns_free(aigw_dns_t *d);

/* Loop thread. Resolves host (a name, or an IP literal, bracketed or not; host is copied).
 * Returns
 *   0  answered now: cb has ALREADY been called, before this returns (an IP literal, or a
 *      fresh / stale / negative cache entry); *handle is set to NULL;
 *   1  pending: cb will be called later from the loop, exactly once, unless
 *      aigw_dns_cancel(*handle) is called first;
 *  <0  a UV_E* error (out of memory, or getaddrinfo could not be queued); cb is not called.
 * handle may be NULL when the caller never cancels. */
int aigw_dns_resolve(aigw_dns_t *d, const char *host, aigw_dns_cb cb, void *ud,
                     aigw_dns_lookup_t **handle);

/* Loop thread. The request that asked went away: its callback will not be called. The lookup
 * itself goes on and fills the cache for others. h must be a handle from a pending resolve
 * whose callback has not run yet; NULL is fine. */
void aigw_dns_cancel(aigw_dns_lookup_t *h);

/* Loop thread. How many names the cache holds (tests, /status). */
size_t aigw_dns_cache_count(const aigw_dns_t *d);

#endif
