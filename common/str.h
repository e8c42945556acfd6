/* common/str.h: borrowed string views and small string helpers shared by aigwd and aigwctl.
 * Pure functions, any thread. A view never owns its bytes. */
#ifndef AIGW_COMMON_STR_H
#define AIGW_COMMON_STR_H
#include <stddef.h>
#include <string.h>

typedef struct aigw_str {
    const char *p;
    size_t n;
} aigw_str_t;

#define AIGW_STR(lit) ((aigw_str_t){ (lit), sizeof(lit) - 1 })
#define AIGW_STR_NULL ((aigw_str_t){ NULL, 0 })

static inline aigw_str_t aigw_str_c(const char *s) { return (aigw_str_t){ s, s ? strlen(s) : 0 }; }

/* Exact byte comparison. */
static inline int aigw_str_eq(aigw_str_t a, aigw_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* ASCII case-insensitive comparison (header names, config words). */
int aigw_str_ieq_n(const char *a, const char *b, size_t n);
static inline int aigw_str_ieq(aigw_str_t a, aigw_str_t b)
{
    return a.n == b.n && aigw_str_ieq_n(a.p, b.p, a.n);   /* lengths first, inline: hot */
}

/* Strip leading and trailing SP, HTAB, CR and LF. */
aigw_str_t aigw_str_trim(aigw_str_t s);

/* Parse a non-negative decimal integer that fills all of s; 0 ok, -1 on any other input or
 * a value above max. */
int aigw_str_to_u64(aigw_str_t s, unsigned long long max, unsigned long long *out);

/* Writes the decimal form of v at buf (at least 21 bytes), returns the length. No NUL. */
size_t aigw_u64_to_dec(char *buf, unsigned long long v);

/* Writes v in decimal with a '-' when negative (at least 21 bytes), returns the length. */
size_t aigw_i64_to_dec(char *buf, long long v);

/* The text of the address at a (network order; AF_INET: 4 bytes, else AF_INET6: 16) and a
 * NUL at buf (at least 46 bytes); returns the length. inet_ntop's result; IPv4 is written
 * by hand (glibc's and libuv's print it with printf, a cost on the request path). */
size_t aigw_ip_to_str(char *buf, int family, const void *a);

/* A 64-bit hash of n bytes, eight a step (multiply-xorshift with a final mix); not
 * cryptographic: for in-process tables whose entries are compared in full on a match. */
unsigned long long aigw_hash_bytes(const void *p, size_t n);

/* Writes the n bytes at in as 2n lower-case hex digits and a NUL at out (2n + 1 bytes). */
void aigw_hex_encode(const void *in, size_t n, char *out);

/* The value of one hex digit (0-9, a-f, A-F), or -1. */
static inline int aigw_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copy at most cap-1 bytes and NUL-terminate; returns the bytes copied. */
size_t aigw_strlcpy(char *dst, const char *src, size_t cap);

#endif
