/* aigwd/plugins/iprange.h: IPv4 / IPv6 addresses and CIDR ranges as the ip-restriction
 * plugin matches them (resty.ipmatcher semantics: an address matches a range of its own
 * family whose first `bits` bits it shares; /0 matches every address of that family; an
 * IPv4 client never matches an IPv6 entry, IPv4-mapped ones included). Pure functions: any
 * thread; ranges are parsed on the loader thread and read by every worker. */
#ifndef AIGW_PLUGINS_IPRANGE_H
#define AIGW_PLUGINS_IPRANGE_H
#include <stddef.h>
#include <stdint.h>

typedef struct aigw_iprange {
    int family;          /* AF_INET or AF_INET6 */
    unsigned bits;       /* prefix length: 0..32 or 0..128 */
    uint8_t addr[16];    /* network order; only the first 4 bytes for AF_INET */
} aigw_iprange_t;

/* Parses an address ("10.0.0.1", "::1") into *family and addr. 0, or -1 if it is neither. */
int aigw_ipaddr_parse(const char *s, int *family, uint8_t addr[16]);
/* Parses "addr" or "addr/bits" (bits as digits, at most the family's width). 0 or -1. */
int aigw_iprange_parse(const char *s, aigw_iprange_t *out);
/* 1 if the address (family, addr) is in one of the n ranges, else 0. */
int aigw_iprange_match(const aigw_iprange_t *r, size_t n, int family, const uint8_t *addr);

#endif
