/* aigwd/proxy/normalize.c: request path normalisation and escaping, as Kong does them
 * (kong/tools/uri.lua normalize and escape; kong/router/utils.lua strip_uri_args), with the
 * request-line checks nginx makes before Kong ever sees the path (a bad escape, "%00" or a
 * ".." above the root is a 400 there). See router.h. */
#include <string.h>

#include "proxy/router.h"
#include "common/str.h"

/* RFC 3986 reserved characters plus '%': their escapes are never decoded (kong/tools/uri.lua
 * RESERVED_CHARS). Every other escape is decoded. */
static int is_reserved(unsigned c)
{
    switch (c) {
    case '!': case '*': case '\'': case '(': case ')': case ';': case ':': case '@': case '&':
    case '=': case '+': case '$': case ',': case '/': case '?': case '%': case '#': case '[':
    case ']':
        return 1;
    default:
        return 0;
    }
}

static const char HEX[] = "0123456789ABCDEF";

/* Moves the write cursor back to the start of the last segment written (each segment
 * written starts with its '/' and holds no other). */
static size_t pop_segment(const char *out, size_t o)
{
    while (o > 0) {
        o--;
        if (out[o] == '/')
            break;
    }
    return o;
}

int aigw_path_normalize(aigw_str_t in, char *out, size_t cap)
{
    if (!in.p || in.n == 0 || in.p[0] != '/' || !out || cap < in.n + 1)
        return -1;

    /* Pass 1: percent escapes. The output never grows. */
    size_t n = 0;
    for (size_t i = 0; i < in.n; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c == '\0')
            return -1;
        if (c != '%') {
            out[n++] = (char)c;
            continue;
        }
        if (in.n - i < 3)
            return -1;
        int hi = aigw_hex_digit((unsigned char)in.p[i + 1]), lo = aigw_hex_digit((unsigned char)in.p[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        unsigned v = (unsigned)(hi * 16 + lo);
        if (v == 0)
            return -1;
        if (is_reserved(v)) {
            out[n++] = '%';
            out[n++] = HEX[hi];
            out[n++] = HEX[lo];
        } else {
            out[n++] = (char)v;
        }
        i += 2;
    }

    /* Pass 2, in place: dot segments and repeated slashes (RFC 3986 5.2.4 as uri.lua does
     * it). The unread rest always starts with '/'; the write cursor o never passes the read
     * cursor r, so rewriting a byte ahead of r is safe. */
    size_t r = 0, o = 0, nseg = 0;
    while (r < n) {
        const char *s = out + r;
        size_t rem = n - r;
        if (rem == 2 && s[1] == '.') {                      /* "/." at the end -> "/" */
            out[r + 1] = '/';
            r += 1;
        } else if (rem == 3 && s[1] == '.' && s[2] == '.') { /* "/.." at the end -> "/" */
            if (nseg == 0)
                return -1;
            o = pop_segment(out, o);
            nseg--;
            out[r + 2] = '/';
            r += 2;
        } else if (rem >= 3 && s[1] == '.' && s[2] == '/') { /* "/./" -> "/" */
            r += 2;
        } else if (rem >= 4 && s[1] == '.' && s[2] == '.' && s[3] == '/') { /* "/../" */
            if (nseg == 0)
                return -1;
            o = pop_segment(out, o);
            nseg--;
            r += 3;
        } else if (rem >= 2 && s[1] == '/') {               /* "//" -> "/" */
            r += 1;
        } else {                                             /* a segment: "/" + non-'/' */
            size_t e = r + 1;
            while (e < n && out[e] != '/')
                e++;
            if (o != r)
                memmove(out + o, out + r, e - r);
            o += e - r;
            nseg++;
            r = e;
        }
    }
    out[o] = '\0';
    return (int)o;
}

int aigw_path_escape(aigw_str_t in, char *out, size_t cap)
{
    if (!out || cap == 0 || (in.n && !in.p))
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < in.n; i++) {
        unsigned char c = (unsigned char)in.p[i];
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_' || c == '.' || c == '~' || c == '%' ||
                   (c != '%' && is_reserved(c));
        if (keep) {
            if (cap - o < 2)
                return -1;
            out[o++] = (char)c;
        } else {
            if (cap - o < 4)
                return -1;
            out[o++] = '%';
            out[o++] = HEX[c >> 4];
            out[o++] = HEX[c & 15];
        }
    }
    out[o] = '\0';
    return (int)o;
}
