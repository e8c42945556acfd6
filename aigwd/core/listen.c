/* aigwd/core/listen.c: the value parsers of conf.h that do not depend on the key table:
 * listen lists (`proxy_listen`, `admin_listen`, `status_listen`) and nginx sizes.
 * Pure functions, any thread; they only allocate the list they return. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/str.h"
#include "core/conf.h"

#define LISTEN_DEFAULT_BACKLOG 511

/* Flags without a value, in the order aigw prints them. */
static const struct {
    const char *name;
    unsigned bit;
} listen_flags[] = {
    { "http2", 1u << 0 },
    { "ssl", 1u << 1 },
    { "proxy_protocol", 1u << 2 },
    { "deferred", 1u << 3 },
    { "bind", 1u << 4 },
    { "reuseport", 1u << 5 },
};

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Splits off the next whitespace-separated word of *s; returns an empty view at the end. */
static aigw_str_t next_word(aigw_str_t *s)
{
    aigw_str_t w;
    while (s->n && is_ws(s->p[0])) {
        s->p++;
        s->n--;
    }
    w.p = s->p;
    w.n = 0;
    while (w.n < s->n && !is_ws(s->p[w.n]))
        w.n++;
    s->p += w.n;
    s->n -= w.n;
    return w;
}

static void set_flag(aigw_listen_t *l, unsigned bit)
{
    switch (bit) {
    case 1u << 0: l->http2 = 1; break;
    case 1u << 1: l->ssl = 1; break;
    case 1u << 2: l->proxy_protocol = 1; break;
    case 1u << 3: l->deferred = 1; break;
    case 1u << 4: l->bind = 1; break;
    case 1u << 5: l->reuseport = 1; break;
    default: break;
    }
}

/* Fills l->addr with the normalised text of host (brackets already removed when v6). */
static int parse_host(aigw_str_t host, int v6, aigw_listen_t *l)
{
    char in[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];

    if (!v6 && aigw_str_eq(host, AIGW_STR("*"))) {
        aigw_strlcpy(l->addr, "0.0.0.0", sizeof l->addr);
        return 0;
    }
    if (!v6 && aigw_str_ieq(host, AIGW_STR("localhost"))) {
        aigw_strlcpy(l->addr, "127.0.0.1", sizeof l->addr);
        return 0;
    }
    if (host.n == 0 || host.n >= sizeof in)
        return -1;
    memcpy(in, host.p, host.n);
    in[host.n] = '\0';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, in, bin) != 1)
        return -1;
    /* Print it back so that "[0::1]" and "[::1]" compare equal in the duplicate check. */
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, bin, l->addr, sizeof l->addr))
        return -1;
    return 0;
}

/* One `addr:port [flags...]` entry (already trimmed, not empty). */
static int parse_entry(aigw_str_t e, aigw_listen_t *l, char *err, size_t errlen)
{
    aigw_str_t rest = e;
    aigw_str_t ap = next_word(&rest);
    aigw_str_t host, port;
    int v6 = 0;
    unsigned long long num;

    memset(l, 0, sizeof *l);
    l->backlog = LISTEN_DEFAULT_BACKLOG;

    if (ap.p[0] == '[') {
        const char *rb = memchr(ap.p, ']', ap.n);
        if (!rb) {
            snprintf(err, errlen, "missing ']' after the IPv6 address in '%.*s'", (int)e.n, e.p);
            return -1;
        }
        v6 = 1;
        host.p = ap.p + 1;
        host.n = (size_t)(rb - host.p);
        if ((size_t)(rb + 1 - ap.p) == ap.n || rb[1] != ':') {
            snprintf(err, errlen, "missing port in '%.*s': expected addr:port", (int)e.n, e.p);
            return -1;
        }
        port.p = rb + 2;
        port.n = ap.n - (size_t)(port.p - ap.p);
    } else {
        const char *colon = NULL;
        size_t ncolons = 0;
        for (size_t i = 0; i < ap.n; i++) {
            if (ap.p[i] == ':') {
                colon = ap.p + i;
                ncolons++;
            }
        }
        if (!colon) {
            snprintf(err, errlen, "missing port in '%.*s': expected addr:port", (int)e.n, e.p);
            return -1;
        }
        if (ncolons > 1) {
            snprintf(err, errlen, "invalid address in '%.*s': write an IPv6 address in brackets, "
                     "as in [::1]:8001", (int)e.n, e.p);
            return -1;
        }
        host.p = ap.p;
        host.n = (size_t)(colon - ap.p);
        port.p = colon + 1;
        port.n = ap.n - host.n - 1;
    }

    if (port.n == 0) {
        snprintf(err, errlen, "missing port in '%.*s': expected addr:port", (int)e.n, e.p);
        return -1;
    }
    if (aigw_str_to_u64(port, 65535, &num) != 0 || num < 1) {
        snprintf(err, errlen, "invalid port '%.*s' in '%.*s': expected 1-65535", (int)port.n,
                 port.p, (int)e.n, e.p);
        return -1;
    }
    l->port = (int)num;

    if (parse_host(host, v6, l) != 0) {
        snprintf(err, errlen, "invalid address '%.*s' in '%.*s': expected an IPv4 address, "
                 "[IPv6 address], * or localhost", (int)host.n, host.p, (int)e.n, e.p);
        return -1;
    }

    for (aigw_str_t f = next_word(&rest); f.n; f = next_word(&rest)) {
        size_t i;
        for (i = 0; i < sizeof listen_flags / sizeof listen_flags[0]; i++)
            if (aigw_str_eq(f, aigw_str_c(listen_flags[i].name)))
                break;
        if (i < sizeof listen_flags / sizeof listen_flags[0]) {
            set_flag(l, listen_flags[i].bit);
            continue;
        }
        if (f.n > 8 && memcmp(f.p, "backlog=", 8) == 0) {
            aigw_str_t v = { f.p + 8, f.n - 8 };
            if (aigw_str_to_u64(v, INT_MAX, &num) != 0 || num < 1) {
                snprintf(err, errlen, "invalid backlog '%.*s' in '%.*s': expected 1-%d",
                         (int)v.n, v.p, (int)e.n, e.p, INT_MAX);
                return -1;
            }
            l->backlog = (int)num;
            continue;
        }
        snprintf(err, errlen, "unknown flag '%.*s' in '%.*s': expected ssl, http2, reuseport, "
                 "proxy_protocol, deferred, bind or backlog=N", (int)f.n, f.p, (int)e.n, e.p);
        return -1;
    }
    return 0;
}

int aigw_listen_parse(const char *s, aigw_listen_list_t *out, char *err, size_t errlen)
{
    aigw_str_t all = aigw_str_trim(aigw_str_c(s));
    aigw_listen_t *v = NULL;
    size_t cap = 1, n = 0;

    out->v = NULL;
    out->n = 0;
    if (all.n == 0) {
        snprintf(err, errlen, "empty listen value: expected addr:port [flags], ... or off");
        return -1;
    }
    if (aigw_str_eq(all, AIGW_STR("off")))
        return 0;

    for (size_t i = 0; i < all.n; i++)
        cap += all.p[i] == ',';
    v = calloc(cap, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (aigw_str_t rest = all;;) {
        const char *comma = memchr(rest.p, ',', rest.n);
        size_t len = comma ? (size_t)(comma - rest.p) : rest.n;
        aigw_str_t e = aigw_str_trim((aigw_str_t){ rest.p, len });

        if (e.n == 0) {
            snprintf(err, errlen, "empty entry in listen list '%.*s'", (int)all.n, all.p);
            goto fail;
        }
        if (aigw_str_eq(e, AIGW_STR("off"))) {
            snprintf(err, errlen, "'off' cannot be combined with other listen entries");
            goto fail;
        }
        if (parse_entry(e, &v[n], err, errlen) != 0)
            goto fail;
        for (size_t j = 0; j < n; j++) {
            if (v[j].port == v[n].port && strcmp(v[j].addr, v[n].addr) == 0) {
                snprintf(err, errlen, "duplicate listen address %s%s%s:%d",
                         strchr(v[n].addr, ':') ? "[" : "", v[n].addr,
                         strchr(v[n].addr, ':') ? "]" : "", v[n].port);
                goto fail;
            }
        }
        n++;
        if (!comma)
            break;
        rest.p = comma + 1;
        rest.n -= len + 1;
    }
    out->v = v;
    out->n = n;
    return 0;

fail:
    free(v);
    return -1;
}

void aigw_listen_list_free(aigw_listen_list_t *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int aigw_listen_sockaddr(const aigw_listen_t *l, struct sockaddr_storage *ss, socklen_t *sl,
                         int *v6)
{
    const char *addr = strcmp(l->addr, "*") == 0 ? "0.0.0.0" : l->addr;
    *v6 = strchr(addr, ':') != NULL;
    memset(ss, 0, sizeof(*ss));
    if (*v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)l->port);
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
            return -1;
        *sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)l->port);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
            return -1;
        *sl = sizeof(*s4);
    }
    return 0;
}

int aigw_size_parse(const char *s, uint64_t *out)
{
    aigw_str_t v = aigw_str_trim(aigw_str_c(s));
    unsigned long long mult = 1, num;

    if (v.n == 0)
        return -1;
    switch (v.p[v.n - 1]) {
    case 'k': case 'K': mult = 1ull << 10; break;
    case 'm': case 'M': mult = 1ull << 20; break;
    case 'g': case 'G': mult = 1ull << 30; break;
    default: break;
    }
    if (mult != 1)
        v.n--;
    if (aigw_str_to_u64(v, UINT64_MAX / mult, &num) != 0)
        return -1;
    *out = (uint64_t)(num * mult);
    return 0;
}
