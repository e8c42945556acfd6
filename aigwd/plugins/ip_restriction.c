/* aigwd/plugins/ip_restriction.c: Kong's ip-restriction (priority 990): the client address
 * (after trusted_ips / real_ip_header, as nginx's $remote_addr) is checked against `deny`
 * first, then against `allow`; a refused request gets Kong's error JSON with `status`
 * (default 403) and `message` (default "IP address not allowed: <address>"). The lists are
 * parsed once when the runtime is loaded (aigwd/plugins/iprange.h). */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/iprange.h"

/* ---- address ranges (iprange.h) ------------------------------------------------------------ */

int aigw_ipaddr_parse(const char *s, int *family, uint8_t addr[16])
{
    if (!s)
        return -1;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

int aigw_iprange_parse(const char *s, aigw_iprange_t *out)
{
    char ip[64];
    const char *slash = strchr(s, '/');
    size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
    if (iplen == 0 || iplen >= sizeof(ip))
        return -1;
    memcpy(ip, s, iplen);
    ip[iplen] = '\0';
    memset(out, 0, sizeof(*out));
    if (aigw_ipaddr_parse(ip, &out->family, out->addr) != 0)
        return -1;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strlen(p);
        if (n == 0 || n > 3)
            return -1;
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            v = v * 10 + (unsigned)(p[i] - '0');
        }
        if (v > max)
            return -1;
        out->bits = v;
    }
    return 0;
}

/* 1 if a and b share their first bits bits. */
static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (full && memcmp(a, b, full) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int aigw_iprange_match(const aigw_iprange_t *r, size_t n, int family, const uint8_t *addr)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].family == family && prefix_eq(r[i].addr, addr, r[i].bits))
            return 1;
    return 0;
}

/* ---- the plugin ------------------------------------------------------------------------------ */

typedef struct conf {
    aigw_iprange_t *allow, *deny;
    size_t n_allow, n_deny;
    int has_status;
    double status;
    char *message;          /* NULL: Kong's default with the client address */
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    free(k->allow);
    free(k->deny);
    free(k->message);
    free(k);
}

/* Parses the array at key into *out / *n. 0, or -1 with a message in err. */
static int parse_list(const json_t *c, const char *key, aigw_iprange_t **out, size_t *n,
                      char *err, size_t errlen)
{
    const json_t *a = json_object_get(c, key);
    *out = NULL;
    *n = 0;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return 0;
    *out = calloc(json_array_size(a), sizeof(**out));
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) {
        const char *s = json_string_value(v);
        if (!s || aigw_iprange_parse(s, &(*out)[*n]) != 0) {
            snprintf(err, errlen, "invalid ip or cidr range: '%s'", s ? s : "");
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_list(c, "allow", &k->allow, &k->n_allow, err, errlen) != 0 ||
        parse_list(c, "deny", &k->deny, &k->n_deny, err, errlen) != 0) {
        conf_free(k);
        return NULL;
    }
    const json_t *st = json_object_get(c, "status");
    if (json_is_number(st)) {
        k->has_status = 1;
        k->status = json_number_value(st);
    }
    const char *m = json_string_value(json_object_get(c, "message"));
    if (m && !(k->message = strdup(m))) {
        snprintf(err, errlen, "out of memory");
        conf_free(k);
        return NULL;
    }
    return k;
}

/* Kong's do_exit: kong.response.error(status or 403, message or the default). A status
 * kong.response.error refuses (outside 400..599) is a Lua error there: 500. */
static aigw_plugin_rc_t refuse(aigw_plugin_run_t *run, const conf_t *k)
{
    int status = 403;
    if (k->has_status) {
        double s = k->status;
        if (!(s >= 400 && s <= 599)) {
            AIGW_LOG(AIGW_LOG_ERR, "[ip-restriction] code must be a number between 400 and 599");
            return aigw_plugin_error(run, 500, "An unexpected error occurred");
        }
        status = (int)floor(s);
    }
    char dflt[128];
    const char *msg = k->message;
    if (!msg) {
        snprintf(dflt, sizeof(dflt), "IP address not allowed: %s",
                 run->client_ip ? run->client_ip : "");
        msg = dflt;
    }
    AIGW_LOG(AIGW_LOG_WARN, "[ip-restriction] %s", msg);
    return aigw_plugin_error(run, status, msg);
}

static aigw_plugin_rc_t ipr_access(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    int family;
    uint8_t addr[16];
    if (aigw_ipaddr_parse(run->client_ip, &family, addr) != 0) {
        const char *msg = "Cannot identify the client IP address, unix domain sockets are "
                          "not supported.";
        AIGW_LOG(AIGW_LOG_WARN, "[ip-restriction] %s", msg);
        return aigw_plugin_error(run, 403, msg);
    }
    if (k->n_deny && aigw_iprange_match(k->deny, k->n_deny, family, addr))
        return refuse(run, k);
    if (k->n_allow && !aigw_iprange_match(k->allow, k->n_allow, family, addr))
        return refuse(run, k);
    return AIGW_PLUGIN_NEXT;
}

const aigw_plugin_def_t aigw_plugin_def_ip_restriction = {
    .name = "ip-restriction",
    .priority = 990,
    .configure = configure,
    .free_conf = conf_free,
    .access = ipr_access,
};
