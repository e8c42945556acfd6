/* common/str.c: see str.h. */
#include <arpa/inet.h>
#include "str.h"

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

int aigw_str_ieq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i] && lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

unsigned long long aigw_hash_bytes(const void *p, size_t n)
{
    const unsigned char *k = p;
    unsigned long long h = 1469598103934665603ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        unsigned long long w;
        memcpy(&w, k + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 31;
    }
    for (; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 29);
}

void aigw_hex_encode(const void *in, size_t n, char *out)
{
    static const char h[] = "0123456789abcdef";
    const unsigned char *b = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = h[b[i] >> 4];
        out[2 * i + 1] = h[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

aigw_str_t aigw_str_trim(aigw_str_t s)
{
    while (s.n && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

int aigw_str_to_u64(aigw_str_t s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (s.n == 0 || s.n > 20)
        return -1;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d = (unsigned)(s.p[i] - '0');
        if (d > 9)
            return -1;
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

size_t aigw_u64_to_dec(char *buf, unsigned long long v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t aigw_i64_to_dec(char *buf, long long v)
{
    if (v >= 0)
        return aigw_u64_to_dec(buf, (unsigned long long)v);
    buf[0] = '-';
    return 1 + aigw_u64_to_dec(buf + 1, 0ULL - (unsigned long long)v);
}

size_t aigw_ip_to_str(char *buf, int family, const void *a)
{
    if (family != AF_INET) {
        if (!inet_ntop(AF_INET6, a, buf, 46))
            buf[0] = '\0';
        return strlen(buf);
    }
    const unsigned char *o = a;
    size_t w = 0;
    for (int i = 0; i < 4; i++) {
        if (i)
            buf[w++] = '.';
        w += aigw_u64_to_dec(buf + w, o[i]);
    }
    buf[w] = '\0';
    return w;
}

size_t aigw_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap == 0)
        return 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}
