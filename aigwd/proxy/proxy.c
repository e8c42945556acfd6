/* aigwd/proxy/proxy.c: see proxy.h.
 *
 * One request, in order: take the current runtime; normalise the path and route it; refuse
 * plain HTTP on https-only routes (426 or redirect); run the access phase of the plugins;
 * find the upstream address (upstream entity's balancer, else the service host through
 * DNS); build the upstream request once (Kong's upstream URI and headers); run the exchange,
 * retrying the next address on failures before a response head as nginx's
 * `proxy_next_upstream error timeout`; stream the response to the client as it arrives.
 * Everything per request lives in the request's arena (pctx_t), except the exchange and the
 * DNS lookup, which are cancelled if the client goes away first. */
#include <arpa/inet.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/sbuf.h"
#include "core/log.h"
#include "http/server.h"
#include "proxy/balancer.h"
#include "proxy/certs.h"
#include "proxy/dns.h"
#include "proxy/loader.h"
#include "plugins/plugins.h"
#include "proxy/proxy.h"
#include "proxy/router.h"
#include "proxy/upstream.h"

#define VIA_TOKEN "aigw/" AIGW_VERSION

struct aigw_proxy_worker {
    uv_loop_t *loop;
    const aigw_conf_t *conf;
    aigw_uppool_t *pool;
    aigw_dns_t *dns;              /* this worker's resolver and cache */
};

typedef struct pctx {
    aigw_http_req_t *req;
    aigw_proxy_worker_t *pw;
    aigw_runtime_t *rt;
    aigw_router_match_t match;
    const aigw_rt_route_t *route;
    const aigw_rt_service_t *svc;
    aigw_plugin_run_t run;        /* plugins of this request */

    char client_ip[64];           /* after realip */
    int peer_trusted;
    aigw_str_t host;              /* Host without port, lower-cased (nginx $host) */

    uv_buf_t out[2];              /* upstream request: head, body */
    aigw_upex_t *ex;
    aigw_dns_lookup_t *dns;       /* a DNS lookup in flight */
    const aigw_balancer_t *bal;   /* the service's upstream entity, or NULL */
    aigw_balancer_pick_t pick;    /* the current try's target (bal) */
    int picked;                   /* pick holds a target not yet released */
    uint32_t tried[16];
    size_t n_tried;
    const char *target_host;      /* the current try's host: the service's or a target's */
    int target_port;
    int built;                    /* the upstream request bytes exist */
    int upgrade;                  /* the client asked for a WebSocket */
    int tunnel;                   /* switched: bytes flow both ways */
    struct sockaddr_storage addr;
    int tries;
    uint64_t upstream_start_ns;   /* the first try was started */
    uint64_t try_start_ns;
    int head_sent;
    int paused;
    int stream_body;              /* request_buffering = false: the body flows as it comes */
    int body_taken;               /* body bytes left the client: nothing can be retried */
    int body_ended;               /* the client's body is complete */
    /* A plugin's body_filter wants the response body whole: it is collected here and the
     * head waits with it (see up_on_head). */
    int buffering;
    aigw_sbuf_t rbuf;
    const aigw_http_resp_header_t *bhead;
    size_t n_bhead;
    int64_t bclen;                /* the upstream's framing, if the body goes as received */
} pctx_t;

/* The most of a response body kept for body_filter; a longer one goes out as received
 * (logged): memory stays bounded whatever an upstream sends. */
#define RESP_BUFFER_MAX ((size_t)64 << 20)

/* ---- worker ------------------------------------------------------------------------------ */

static aigw_uppool_opts_t pool_opts(const aigw_conf_t *c)
{
    aigw_uppool_opts_t o = {
        .pool_size = c->upstream_keepalive_pool_size,
        .max_requests = c->upstream_keepalive_max_requests,
        .idle_timeout_ms = c->upstream_keepalive_idle_timeout * 1000,
    };
    return o;
}

aigw_proxy_worker_t *aigw_proxy_worker_new(uv_loop_t *loop, const aigw_conf_t *conf)
{
    aigw_proxy_worker_t *pw = calloc(1, sizeof(*pw));
    if (!pw)
        return NULL;
    pw->loop = loop;
    pw->conf = conf;
    aigw_uppool_opts_t o = pool_opts(conf);
    pw->pool = aigw_uppool_new(loop, &o);
    pw->dns = pw->pool ? aigw_dns_new(loop, NULL) : NULL;
    if (!pw->dns) {
        aigw_uppool_free(pw->pool);
        free(pw);
        return NULL;
    }
    return pw;
}

void aigw_proxy_worker_set_conf(aigw_proxy_worker_t *pw, const aigw_conf_t *conf)
{
    pw->conf = conf;
    aigw_uppool_opts_t o = pool_opts(conf);
    aigw_uppool_set_opts(pw->pool, &o);
}

void aigw_proxy_worker_close(aigw_proxy_worker_t *pw)
{
    if (!pw)
        return;
    aigw_uppool_close_idle(pw->pool);
    aigw_plugins_worker_close(pw->loop);
    /* lookups still in the thread pool finish on the loop and free themselves */
    aigw_dns_free(pw->dns);
    pw->dns = NULL;
}

void aigw_proxy_worker_free(aigw_proxy_worker_t *pw)
{
    if (!pw)
        return;
    aigw_uppool_free(pw->pool);
    aigw_dns_free(pw->dns);
    free(pw);
}

/* ---- small helpers ---------------------------------------------------------------------- */

static size_t put(char *p, const char *s, size_t n)
{
    if (n)
        memcpy(p, s, n);
    return n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static size_t put_hdr(char *p, const char *name, size_t nn, const char *v, size_t vn)
{
    size_t n = put(p, name, nn);
    n += PUT_LIT(p + n, ": ");
    n += put(p + n, v, vn);
    n += PUT_LIT(p + n, "\r\n");
    return n;
}

static const aigw_http_header_t *req_header(const aigw_http_req_t *r, const char *name)
{
    return aigw_http_req_header(r, aigw_str_c(name));
}

/* 1 if the comma-separated list v holds token t (case-insensitive). */
static int list_has(aigw_str_t v, aigw_str_t t)
{
    const char *p = v.p, *end = v.p + v.n;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        if (aigw_str_ieq(aigw_str_trim((aigw_str_t){ p, (size_t)(e - p) }), t))
            return 1;
        p = c ? c + 1 : end;
    }
    return 0;
}

static int is_idempotent(int method)
{
    return method != HTTP_POST && method != HTTP_LOCK && method != HTTP_PATCH;
}

static uint64_t ms_between(uint64_t a_ns, uint64_t b_ns)
{
    return b_ns > a_ns ? (b_ns - a_ns) / 1000000 : 0;
}

/* ---- the end of a request ---------------------------------------------------------------- */

static void drop_buffer(pctx_t *x)
{
    x->buffering = 0;
    aigw_sbuf_free(&x->rbuf);
}

static void pctx_release(pctx_t *x)
{
    drop_buffer(x);
    if (x->ex) {
        aigw_upex_cancel(x->ex);
        x->ex = NULL;
    }
    if (x->dns) {
        aigw_dns_cancel(x->dns);
        x->dns = NULL;
    }
    if (x->picked) {
        aigw_balancer_release(x->bal, x->pick.target);
        x->picked = 0;
    }
    aigw_plugins_cancel(&x->run);
    aigw_plugins_log(&x->run);
    aigw_runtime_unref(x->rt);
    x->rt = NULL;
}

static void on_client_abort(aigw_http_req_t *req, void *ud)
{
    (void)req;
    pctx_release(ud);
}

/* Kong's error handler runs header_filter: the collected plugins' response headers (cors)
 * go out with aigw's own error answers. Before pctx_release (confs live in the runtime). */
#define ERR_EXTRA 14
static size_t error_headers(pctx_t *x, aigw_http_resp_header_t **out)
{
    aigw_plugins_header_filter(&x->run);
    *out = NULL;
    if (!x->run.n_resp)
        return 0;
    aigw_http_resp_header_t *h = aigw_arena_alloc(&x->req->arena, ERR_EXTRA * sizeof(*h));
    if (!h)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < x->run.n_resp && k < ERR_EXTRA; i++)
        h[k++] = (aigw_http_resp_header_t){ x->run.resp[i].name, x->run.resp[i].value };
    x->run.log.resp_headers = h;
    x->run.log.n_resp_headers = k;
    *out = h;
    return k;
}

/* Kong's error from the proxy itself (kong.response.error), then the end. */
static void finish_error(pctx_t *x, int status, const char *msg, int nginx_style)
{
    aigw_http_req_t *req = x->req;
    aigw_http_on_abort(req, NULL, NULL);
    x->run.status = status;
    aigw_http_resp_header_t *h;
    size_t nh = error_headers(x, &h);
    pctx_release(x);
    if (nginx_style)
        aigw_http_respond_upstream_error_with(req, status, msg, h, nh);
    else
        aigw_http_respond_error_with(req, status, msg, h, nh);
}

/* ---- upstream request --------------------------------------------------------------------- */

/* Kong's get_upstream_uri_v0 (reference/proxy.md §2): the path sent upstream, unescaped. */
static aigw_str_t upstream_path(aigw_arena_t *a, const aigw_rt_route_t *route,
                                const aigw_rt_service_t *svc, aigw_str_t req_uri,
                                size_t prefix_len)
{
    aigw_str_t base = svc->path.n ? svc->path : AIGW_STR("/");
    size_t cap = base.n + req_uri.n + 2;
    char *o = aigw_arena_alloc(a, cap);
    if (!o)
        return AIGW_STR_NULL;
    size_t n = 0;
    int base_slash = base.p[base.n - 1] == '/';
    if (!route->strip_path || prefix_len == 0) {
        if (base_slash) {
            n += put(o, base.p, base.n);
            n += put(o + n, req_uri.p + 1, req_uri.n - 1);
        } else if (req_uri.n == 1) {
            n += put(o, base.p, base.n);
        } else {
            n += put(o, base.p, base.n);
            n += put(o + n, req_uri.p, req_uri.n);
        }
        return (aigw_str_t){ o, n };
    }
    aigw_str_t post = { req_uri.p + prefix_len, req_uri.n - prefix_len };
    /* sanitise: a postfix of "." or "..", or starting with "./" / "../", loses that part */
    if (aigw_str_eq(post, AIGW_STR(".")) || aigw_str_eq(post, AIGW_STR("..")))
        post.n = 0;
    else if (post.n >= 2 && memcmp(post.p, "./", 2) == 0)
        post = (aigw_str_t){ post.p + 2, post.n - 2 };
    else if (post.n >= 3 && memcmp(post.p, "../", 3) == 0)
        post = (aigw_str_t){ post.p + 3, post.n - 3 };
    int req_slash = req_uri.n && req_uri.p[req_uri.n - 1] == '/';
    if (base_slash) {
        if (post.n == 0) {
            if (base.n == 1 || req_slash)
                n += put(o, base.p, base.n);
            else
                n += put(o, base.p, base.n - 1);
        } else if (post.p[0] == '/') {
            n += put(o, base.p, base.n - 1);
            n += put(o + n, post.p, post.n);
        } else {
            n += put(o, base.p, base.n);
            n += put(o + n, post.p, post.n);
        }
    } else {
        if (post.n == 0) {
            n += put(o, base.p, base.n);
            if (req_uri.n > 1 && req_slash)
                o[n++] = '/';
        } else if (post.p[0] == '/') {
            n += put(o, base.p, base.n);
            n += put(o + n, post.p, post.n);
        } else {
            n += put(o, base.p, base.n);
            o[n++] = '/';
            n += put(o + n, post.p, post.n);
        }
    }
    return (aigw_str_t){ o, n };
}

/* Client headers that never go upstream as sent: hop-by-hop ones and those Kong sets. */
static int drop_request_header(aigw_str_t name, aigw_str_t connection)
{
    static const aigw_str_t drop[] = {
        AIGW_STR("host"), AIGW_STR("connection"), AIGW_STR("keep-alive"),
        AIGW_STR("proxy-connection"), AIGW_STR("proxy"), AIGW_STR("te"),
        AIGW_STR("transfer-encoding"), AIGW_STR("content-length"), AIGW_STR("upgrade"),
        AIGW_STR("x-forwarded-for"), AIGW_STR("x-forwarded-proto"),
        AIGW_STR("x-forwarded-host"), AIGW_STR("x-forwarded-port"),
        AIGW_STR("x-forwarded-path"), AIGW_STR("x-forwarded-prefix"), AIGW_STR("x-real-ip"),
        AIGW_STR("via"), AIGW_STR("x-kong-request-id"), AIGW_STR("expect"),
    };
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (aigw_str_ieq(name, drop[i]))
            return 1;
    return connection.n && list_has(connection, name);
}

/* The client address after nginx's realip (real_ip_header from a trusted peer). */
static void resolve_client(pctx_t *x)
{
    aigw_http_req_t *req = x->req;
    const char *peer = aigw_http_req_client_ip(req);
    aigw_strlcpy(x->client_ip, peer, sizeof(x->client_ip));
    const aigw_conf_t *conf = x->pw->conf;
    if (!conf->n_trusted_ips)
        return;
    uint8_t a[16];
    int fam = strchr(peer, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, peer, a) != 1 || !aigw_conf_ip_trusted(conf, fam, a))
        return;
    x->peer_trusted = 1;
    const aigw_http_header_t *h = req_header(req, conf->real_ip_header);
    if (!h || !h->value.n)
        return;
    aigw_str_t v = h->value;
    const char *comma = NULL;
    for (size_t i = 0; i < v.n; i++)   /* real_ip_recursive off: the last address */
        if (v.p[i] == ',')
            comma = v.p + i;
    if (comma)
        v = aigw_str_trim((aigw_str_t){ comma + 1, (size_t)(v.p + v.n - comma - 1) });
    char tmp[64];
    if (v.n >= sizeof(tmp))
        return;
    memcpy(tmp, v.p, v.n);
    tmp[v.n] = '\0';
    fam = strchr(tmp, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, tmp, a) == 1)
        aigw_strlcpy(x->client_ip, tmp, sizeof(x->client_ip));
}

/* A trusted peer's X-Forwarded-<name>, else dflt. */
static aigw_str_t forwarded(pctx_t *x, const char *name, aigw_str_t dflt)
{
    if (!x->peer_trusted)
        return dflt;
    const aigw_http_header_t *h = req_header(x->req, name);
    return h ? h->value : dflt;
}

/* Builds the request bytes for the upstream into x->out. 0, or -1 when out of memory. */
static int build_upstream_request(pctx_t *x, aigw_str_t norm_path, aigw_str_t host_hdr,
                                  int upstream_port)
{
    aigw_http_req_t *req = x->req;
    aigw_arena_t *a = &req->arena;
    const aigw_rt_service_t *svc = x->svc;
    const aigw_rt_route_t *route = x->route;

    char *esc;
    int en;
    if (x->run.upstream_path.n) {
        /* a plugin's replaced path goes out as given */
        esc = (char *)(uintptr_t)x->run.upstream_path.p;
        en = (int)x->run.upstream_path.n;
    } else {
        aigw_str_t up = upstream_path(a, route, svc, norm_path, x->match.prefix_len);
        if (!up.p)
            return -1;
        esc = aigw_arena_alloc(a, up.n * 3 + 1);
        if (!esc)
            return -1;
        en = aigw_path_escape(up, esc, up.n * 3 + 1);
        if (en < 0)
            return -1;
    }
    aigw_str_t method = x->run.method.n ? x->run.method : req->method_name;
    int has_q = x->run.query_set ? x->run.query.n > 0
                                 : memchr(req->target.p, '?', req->target.n) != NULL;

    const aigw_http_header_t *connh = req_header(req, "connection");
    aigw_str_t connection = connh ? connh->value : AIGW_STR_NULL;
    const aigw_http_header_t *xff = req_header(req, "x-forwarded-for");
    const aigw_http_header_t *via = req_header(req, "via");
    const aigw_http_header_t *te = req_header(req, "te");

    char portbuf[24];
    int lport = aigw_http_req_local_port(req);
    size_t pn = aigw_u64_to_dec(portbuf, (unsigned long long)(lport > 0 ? lport : 0));
    aigw_str_t scheme = aigw_http_req_is_tls(req) ? AIGW_STR("https") : AIGW_STR("http");
    aigw_str_t f_proto = forwarded(x, "x-forwarded-proto", scheme);
    aigw_str_t f_host = forwarded(x, "x-forwarded-host", x->host);
    aigw_str_t f_port = forwarded(x, "x-forwarded-port", (aigw_str_t){ portbuf, pn });
    aigw_str_t f_path = forwarded(x, "x-forwarded-path", req->path);
    aigw_str_t prefix = AIGW_STR_NULL;
    if (route->strip_path && x->match.prefix_len && !(x->match.prefix_len == 1))
        prefix = (aigw_str_t){ norm_path.p, x->match.prefix_len };
    aigw_str_t f_prefix = forwarded(x, "x-forwarded-prefix", prefix);

    char hostbuf[300];
    aigw_str_t host;
    if (route->preserve_host && host_hdr.p) {
        host = host_hdr;
    } else {
        int def = (svc->protocol == AIGW_PROTO_HTTPS || svc->protocol == AIGW_PROTO_GRPCS)
                      ? 443 : 80;
        const char *hn_host = x->bal ? x->pick.hostname.p : svc->host.p;
        /* host[:port] without printf (hot path); a name too long for the buffer gives an
         * empty Host, as the truncated snprintf did */
        size_t hl = strlen(hn_host), hn = 0;
        if (hl + 1 + 24 <= sizeof(hostbuf)) {
            memcpy(hostbuf, hn_host, hl);
            hn = hl;
            if (upstream_port != def) {
                hostbuf[hn++] = ':';
                hn += aigw_u64_to_dec(hostbuf + hn,
                                      (unsigned long long)(upstream_port > 0 ? upstream_port : 0));
            }
        }
        host = (aigw_str_t){ hostbuf, hn };
    }
    /* a Host set by a plugin (request-transformer replace) replaces it, never doubles it */
    for (size_t i = 0; i < x->run.n_set; i++)
        if (aigw_str_ieq(x->run.set[i].name, AIGW_STR("host")))
            host = x->run.set[i].value;

    aigw_str_t query = x->run.query_set ? x->run.query : req->query;
    size_t cap = 512 + method.n + (size_t)en + query.n + host.n +
                 (xff ? xff->value.n : 0) + (via ? via->value.n : 0) + f_proto.n + f_host.n +
                 f_port.n + f_path.n + f_prefix.n + 2 * sizeof(x->client_ip);
    for (size_t i = 0; i < req->n_headers; i++)
        cap += req->headers[i].name.n + req->headers[i].value.n + 4;
    for (size_t i = 0; i < x->run.n_set; i++)
        cap += x->run.set[i].name.n + x->run.set[i].value.n + 4;
    char *o = aigw_arena_alloc(a, cap);
    if (!o)
        return -1;
    size_t n = put(o, method.p, method.n);
    o[n++] = ' ';
    n += put(o + n, esc, (size_t)en);
    if (has_q) {
        o[n++] = '?';
        n += put(o + n, query.p, query.n);
    }
    x->run.log.upstream_uri = (aigw_str_t){ o + method.n + 1, n - method.n - 1 };
    n += PUT_LIT(o + n, " HTTP/1.1\r\n");
    n += put_hdr(o + n, "Host", 4, host.p, host.n);
    if (x->upgrade)
        n += PUT_LIT(o + n, "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n");
    else
        n += PUT_LIT(o + n, "Connection: keep-alive\r\n");
    if (xff) {
        n += PUT_LIT(o + n, "X-Forwarded-For: ");
        n += put(o + n, xff->value.p, xff->value.n);
        n += PUT_LIT(o + n, ", ");
        const char *peer = aigw_http_req_client_ip(req);
        n += put(o + n, peer, strlen(peer));
        n += PUT_LIT(o + n, "\r\n");
    } else {
        n += put_hdr(o + n, "X-Forwarded-For", 15, x->client_ip, strlen(x->client_ip));
    }
    n += put_hdr(o + n, "X-Forwarded-Proto", 17, f_proto.p, f_proto.n);
    n += put_hdr(o + n, "X-Forwarded-Host", 16, f_host.p, f_host.n);
    n += put_hdr(o + n, "X-Forwarded-Port", 16, f_port.p, f_port.n);
    n += put_hdr(o + n, "X-Forwarded-Path", 16, f_path.p, f_path.n);
    if (f_prefix.n)
        n += put_hdr(o + n, "X-Forwarded-Prefix", 18, f_prefix.p, f_prefix.n);
    n += put_hdr(o + n, "X-Real-IP", 9, x->client_ip, strlen(x->client_ip));
    n += PUT_LIT(o + n, "Via: ");
    if (via) {
        n += put(o + n, via->value.p, via->value.n);
        n += PUT_LIT(o + n, ", ");
    }
    n += req->http_minor == 0 ? PUT_LIT(o + n, "1.0 ") : PUT_LIT(o + n, "1.1 ");
    n += PUT_LIT(o + n, VIA_TOKEN "\r\n");
    n += put_hdr(o + n, "X-Kong-Request-Id", 17, req->request_id, 32);
    if (te && list_has(te->value, AIGW_STR("trailers")))
        n += PUT_LIT(o + n, "TE: trailers\r\n");
    for (size_t i = 0; i < req->n_headers; i++) {
        const aigw_http_header_t *h = &req->headers[i];
        if (drop_request_header(h->name, connection) || aigw_plugins_header_removed(&x->run, h->name))
            continue;
        n += put_hdr(o + n, h->name.p, h->name.n, h->value.p, h->value.n);
    }
    for (size_t i = 0; i < x->run.n_set; i++)
        if (!aigw_str_ieq(x->run.set[i].name, AIGW_STR("host")))
            n += put_hdr(o + n, x->run.set[i].name.p, x->run.set[i].name.n,
                         x->run.set[i].value.p, x->run.set[i].value.n);
    aigw_str_t body = aigw_plugin_body(&x->run);
    int has_body = body.n > 0 || req_header(req, "content-length") || req->chunked;
    if (x->stream_body) {
        /* The body follows as the client sends it: its length as announced, or chunked. */
        const aigw_http_header_t *cl = req_header(req, "content-length");
        if (req->chunked || !cl) {
            n += PUT_LIT(o + n, "Transfer-Encoding: chunked\r\n");
        } else {
            n += PUT_LIT(o + n, "Content-Length: ");
            n += put(o + n, cl->value.p, cl->value.n < 20 ? cl->value.n : 20);
            n += PUT_LIT(o + n, "\r\n");
        }
        body = AIGW_STR_NULL;
    } else if (has_body) {
        n += PUT_LIT(o + n, "Content-Length: ");
        n += aigw_u64_to_dec(o + n, body.n);
        n += PUT_LIT(o + n, "\r\n");
    }
    n += PUT_LIT(o + n, "\r\n");
    x->out[0] = uv_buf_init(o, (unsigned)n);
    x->out[1] = uv_buf_init((char *)(uintptr_t)body.p, (unsigned)body.n);
    return 0;
}

/* ---- response ------------------------------------------------------------------------------- */

static int drop_response_header(aigw_str_t name, aigw_str_t connection, int keep_length)
{
    static const aigw_str_t drop[] = {
        AIGW_STR("connection"), AIGW_STR("keep-alive"), AIGW_STR("proxy-connection"),
        AIGW_STR("transfer-encoding"), AIGW_STR("te"), AIGW_STR("trailer"),
        AIGW_STR("upgrade"),
    };
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (aigw_str_ieq(name, drop[i]))
            return 1;
    if (!keep_length && aigw_str_ieq(name, AIGW_STR("content-length")))
        return 1;
    return connection.n && !aigw_str_ieq(connection, AIGW_STR("close")) &&
           !aigw_str_ieq(connection, AIGW_STR("keep-alive")) && list_has(connection, name);
}

static void start_try(pctx_t *x);
static void try_address(pctx_t *x);

static void on_drain(aigw_http_req_t *req, void *ud)
{
    (void)req;
    pctx_t *x = ud;
    if (x->paused && x->ex) {
        x->paused = 0;
        if (x->tunnel)
            aigw_upex_tunnel_pause(x->ex, 0);
        else
            aigw_upex_resume(x->ex);
    }
}

/* ---- WebSocket -------------------------------------------------------------------------- */

static void client_tunnel_data(void *ud, const char *p, size_t n)
{
    pctx_t *x = ud;
    if (!x->ex)
        return;
    if (aigw_upex_tunnel_write(x->ex, p, n) == 1)
        aigw_http_tunnel_pause(x->req, 1);   /* on_tunnel_drain resumes */
}

static void up_on_tunnel(void *ud, const char *p, size_t n)
{
    pctx_t *x = ud;
    int r = aigw_http_tunnel_write(x->req, p, n);
    if (r < 0) {
        aigw_http_req_t *req = x->req;
        aigw_http_on_abort(req, NULL, NULL);
        pctx_release(x);
        aigw_http_stream_abort(req);
        return;
    }
    if (r == 1 && !x->paused) {
        x->paused = 1;
        aigw_upex_tunnel_pause(x->ex, 1);
        aigw_http_stream_on_drain(x->req, on_drain, x);
    }
}

static void up_on_tunnel_drain(void *ud)
{
    pctx_t *x = ud;
    aigw_http_tunnel_pause(x->req, 0);
}

/* The upstream accepted the WebSocket: its 101 goes to the client, then bytes flow. */
static int switch_protocols(pctx_t *x, const aigw_http_header_t *h, size_t nh)
{
    aigw_http_req_t *req = x->req;
    x->run.status = 101;
    aigw_http_resp_header_t *out = aigw_arena_alloc(&req->arena, (nh + 2) * sizeof(*out));
    if (!out)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < nh; i++) {
        if (aigw_str_ieq(h[i].name, AIGW_STR("keep-alive")) ||
            aigw_str_ieq(h[i].name, AIGW_STR("transfer-encoding")) ||
            aigw_str_ieq(h[i].name, AIGW_STR("content-length")))
            continue;
        out[k++] = (aigw_http_resp_header_t){ h[i].name, h[i].value };
    }
    if (aigw_http_req_headers(req) & AIGW_HDR_REQUEST_ID)
        out[k++] = (aigw_http_resp_header_t){ AIGW_STR("X-Kong-Request-Id"),
                                               { req->request_id, 32 } };
    x->head_sent = 1;
    x->tunnel = 1;
    return aigw_http_tunnel_begin(req, out, k, client_tunnel_data, x) == 0 ? 0 : -1;
}

/* A header the proxy adds itself that a plugin (response-transformer) removed or replaced:
 * Kong adds these before header_filter runs, so plugins can change them. */
static int removed(const pctx_t *x, const char *name)
{
    return x->run.n_resp_removed && aigw_plugins_resp_header_removed(&x->run, aigw_str_c(name));
}

static int send_head(pctx_t *x, const aigw_http_resp_header_t *out, size_t k, int64_t clen);

static int up_on_head(void *ud, int status, const aigw_http_header_t *h, size_t nh,
                      int64_t clen)
{
    pctx_t *x = ud;
    aigw_http_req_t *req = x->req;
    if (status == 101)
        return switch_protocols(x, h, nh);
    uint64_t now = uv_hrtime();
    unsigned hdrs = aigw_http_req_headers(req);
    const aigw_http_header_t *connh = NULL;
    int has_date = 0, has_server = 0;
    const aigw_http_header_t *via = NULL;
    for (size_t i = 0; i < nh; i++) {
        if (aigw_str_ieq(h[i].name, AIGW_STR("connection")))
            connh = &h[i];
        else if (aigw_str_ieq(h[i].name, AIGW_STR("date")))
            has_date = 1;
        else if (aigw_str_ieq(h[i].name, AIGW_STR("server")))
            has_server = 1;
        else if (aigw_str_ieq(h[i].name, AIGW_STR("via")))
            via = &h[i];
    }
    aigw_str_t connection = connh ? connh->value : AIGW_STR_NULL;
    int keep_length = clen == 0 && (status == 204 || status == 304 || req->method == HTTP_HEAD);

    x->run.status = status;
    if (x->bal)
        aigw_balancer_report(x->bal, x->pick.target, AIGW_BAL_HTTP_STATUS, status);
    x->run.up_headers = h;
    x->run.n_up_headers = nh;
    aigw_plugins_header_filter(&x->run);

    aigw_http_resp_header_t *out = aigw_arena_alloc(&req->arena, (nh + 8 + x->run.n_resp) *
                                                                     sizeof(*out));
    char *num = aigw_arena_alloc(&req->arena, 160);
    if (!out || !num)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < nh; i++) {
        if (drop_response_header(h[i].name, connection, keep_length) ||
            (via && &h[i] == via && (hdrs & AIGW_HDR_VIA)) ||
            aigw_plugins_resp_header_removed(&x->run, h[i].name))
            continue;
        out[k++] = (aigw_http_resp_header_t){ h[i].name, h[i].value };
    }
    for (size_t i = 0; i < x->run.n_resp; i++)
        out[k++] = (aigw_http_resp_header_t){ x->run.resp[i].name, x->run.resp[i].value };
    size_t nn = 0;
    if (!has_date) {
        char *d = num + nn;
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t dn = strftime(d, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        out[k++] = (aigw_http_resp_header_t){ AIGW_STR("Date"), { d, dn } };
        nn += dn;
    }
    if ((hdrs & AIGW_HDR_UPSTREAM_LATENCY) && !removed(x, "X-Kong-Upstream-Latency")) {
        char *d = num + nn;
        size_t dn = aigw_u64_to_dec(d, ms_between(x->try_start_ns, now));
        out[k++] = (aigw_http_resp_header_t){ AIGW_STR("X-Kong-Upstream-Latency"), { d, dn } };
        nn += dn;
    }
    if ((hdrs & AIGW_HDR_PROXY_LATENCY) && !removed(x, "X-Kong-Proxy-Latency")) {
        char *d = num + nn;
        size_t dn = aigw_u64_to_dec(d, ms_between(req->start_ns, x->upstream_start_ns));
        out[k++] = (aigw_http_resp_header_t){ AIGW_STR("X-Kong-Proxy-Latency"), { d, dn } };
        nn += dn;
    }
    if ((hdrs & AIGW_HDR_UPSTREAM_STATUS) && !removed(x, "X-Kong-Upstream-Status")) {
        char *d = num + nn;
        size_t dn = aigw_u64_to_dec(d, (unsigned)status);
        out[k++] = (aigw_http_resp_header_t){ AIGW_STR("X-Kong-Upstream-Status"), { d, dn } };
        nn += dn;
    }
    if ((hdrs & AIGW_HDR_VIA) && !removed(x, "Via")) {
        size_t vn = (via ? via->value.n + 2 : 0) + sizeof("1.1 " VIA_TOKEN);
        char *v = aigw_arena_alloc(&req->arena, vn);
        if (!v)
            return -1;
        size_t m = 0;
        if (via) {
            m += put(v, via->value.p, via->value.n);
            m += PUT_LIT(v + m, ", ");
        }
        m += PUT_LIT(v + m, "1.1 " VIA_TOKEN);
        out[k++] = (aigw_http_resp_header_t){ AIGW_STR("Via"), { v, m } };
    }
    if (!has_server && (hdrs & AIGW_HDR_SERVER) && !removed(x, "Server"))
        out[k++] = (aigw_http_resp_header_t){ AIGW_STR("Server"), AIGW_STR(VIA_TOKEN) };

    x->run.log.resp_headers = out;
    x->run.log.n_resp_headers = k;
    x->run.log.upstream_status = status;
    x->run.log.upstream_head_ns = now;
    x->run.log.proxied = 1;
    int64_t framing = keep_length ? -1 : clen;
    if (x->run.buffer_resp && !keep_length && status >= 200 && status != 204 &&
        status != 304 && req->method != HTTP_HEAD) {
        x->buffering = 1;   /* the head leaves with the filtered body (up_on_done) */
        x->bhead = out;
        x->n_bhead = k;
        x->bclen = framing;
        return 0;
    }
    return send_head(x, out, k, framing);
}

/* The head (status in x->run.status) with that framing. 0, or -1 (write failed). */
static int send_head(pctx_t *x, const aigw_http_resp_header_t *out, size_t k, int64_t clen)
{
    x->head_sent = 1;
    int r = aigw_http_stream_begin(x->req, x->run.status, out, k, clen);
    if (r < 0)
        return -1;
    if (r == 1 && !x->paused) {
        x->paused = 1;
        aigw_http_stream_on_drain(x->req, on_drain, x);
    }
    return 0;
}

static int write_body(pctx_t *x, const char *p, size_t n)
{
    int r = aigw_http_stream_write(x->req, p, n);
    if (r < 0)
        return -1;
    if (r == 1 && !x->paused) {
        x->paused = 1;
        aigw_http_stream_on_drain(x->req, on_drain, x);
    }
    return 0;
}

/* Gives up buffering (the body is too long): the head as received and what was collected
 * go now, the rest streams. */
static int stop_buffering(pctx_t *x)
{
    AIGW_LOG(AIGW_LOG_WARN, "response body over %zu bytes: sent as received, without "
             "body_filter, upstream: %s:%d", RESP_BUFFER_MAX, x->target_host, x->target_port);
    int rc = send_head(x, x->bhead, x->n_bhead, x->bclen) != 0 ||
             (x->rbuf.n && write_body(x, x->rbuf.p, x->rbuf.n) != 0) ? -1 : 0;
    drop_buffer(x);
    return rc;
}

static int up_on_body(void *ud, const char *p, size_t n)
{
    pctx_t *x = ud;
    if (x->buffering) {
        if (n > RESP_BUFFER_MAX - x->rbuf.n)
            return stop_buffering(x) != 0 || write_body(x, p, n) != 0 ? -1
                   : x->paused ? 1 : 0;
        aigw_sbuf_addn(&x->rbuf, p, n);
        return x->rbuf.oom ? -1 : 0;
    }
    if (write_body(x, p, n) != 0)
        return -1;
    return x->paused ? 1 : 0;
}

/* The whole body is in: body_filter, then the head with its length and the body. */
static int finish_buffered(pctx_t *x)
{
    x->buffering = 0;
    x->run.resp_body = (aigw_str_t){ x->rbuf.p ? x->rbuf.p : "", x->rbuf.n };
    aigw_plugins_body_filter(&x->run);
    aigw_str_t b = x->run.resp_body;
    int rc = send_head(x, x->bhead, x->n_bhead, (int64_t)b.n) != 0 ||
             (b.n && write_body(x, b.p, b.n) != 0) ? -1 : 0;
    drop_buffer(x);
    return rc;
}

static void up_on_done(void *ud)
{
    pctx_t *x = ud;
    aigw_http_req_t *req = x->req;
    x->ex = NULL;
    if (x->buffering && finish_buffered(x) != 0) {
        aigw_http_on_abort(req, NULL, NULL);
        pctx_release(x);
        aigw_http_stream_abort(req);
        return;
    }
    aigw_http_on_abort(req, NULL, NULL);
    pctx_release(x);
    aigw_http_stream_end(req);
}

static void up_on_error(void *ud, aigw_uperr_t e, int reused, int got_bytes)
{
    pctx_t *x = ud;
    aigw_http_req_t *req = x->req;
    x->ex = NULL;
    drop_buffer(x);   /* a body being collected for body_filter: nothing was sent yet */
    if (x->head_sent) {
        /* Mid-body: nothing to retry, nothing to say; the client sees the cut. */
        AIGW_LOG(AIGW_LOG_ERR, "%s while sending the response to the client, upstream: %s:%d",
                 aigw_uperr_text(e), x->target_host, x->target_port);
        aigw_http_on_abort(req, NULL, NULL);
        pctx_release(x);
        aigw_http_stream_abort(req);
        return;
    }
    int timeout = e == AIGW_UPERR_CONNECT_TIMEOUT || e == AIGW_UPERR_WRITE_TIMEOUT ||
                  e == AIGW_UPERR_READ_TIMEOUT;
    /* A pooled connection the server had closed: try again on a new one, not counted. */
    if (reused && !got_bytes && !timeout && is_idempotent(req->method) && !x->body_taken) {
        start_try(x);
        return;
    }
    if (x->bal)
        aigw_balancer_report(x->bal, x->pick.target,
                             timeout ? AIGW_BAL_TIMEOUT : AIGW_BAL_TCP_FAILURE, 0);
    int sent = e != AIGW_UPERR_CONNECT && e != AIGW_UPERR_CONNECT_TIMEOUT &&
               e != AIGW_UPERR_TLS;
    /* A streamed body cannot be sent twice: once bytes of it left the client, no retry. */
    int retry = x->tries <= x->svc->retries && e != AIGW_UPERR_INVALID &&
                (!sent || is_idempotent(req->method)) && !x->body_taken;
    AIGW_LOG(retry ? AIGW_LOG_WARN : AIGW_LOG_ERR, "%s, upstream: %s:%d, try %d", aigw_uperr_text(e),
             x->target_host, x->target_port, x->tries);
    if (retry) {
        x->tries++;
        try_address(x);
        return;
    }
    if (timeout)
        finish_error(x, 504, "The upstream server is timing out", 1);
    else
        finish_error(x, 502, "An invalid response was received from the upstream server", 1);
}

static void up_on_idle(void *ud)
{
    pctx_t *x = ud;
    if (x->buffering)
        return;   /* nothing to flush: the head waits for the whole body */
    int r = aigw_http_stream_flush(x->req);
    if (r < 0) {
        aigw_upex_cancel(x->ex);
        x->ex = NULL;
        aigw_http_on_abort(x->req, NULL, NULL);
        aigw_http_req_t *req = x->req;
        pctx_release(x);
        aigw_http_stream_abort(req);
        return;
    }
    if (r == 1 && !x->paused) {
        x->paused = 1;
        aigw_http_stream_on_drain(x->req, on_drain, x);
    }
}

/* ---- request body streaming (request_buffering = false) ---------------------------------- */

static void client_body_data(void *ud, const char *p, size_t n)
{
    pctx_t *x = ud;
    int r = aigw_upex_body_write(x->ex, p, n);
    if (r != 0)
        aigw_http_body_pause(x->req, 1);   /* 1: the upstream is slow; -1: on_error follows */
}

static void client_body_done(aigw_http_req_t *req, void *ud)
{
    pctx_t *x = ud;
    (void)req;
    x->body_ended = 1;
    if (x->ex)
        aigw_upex_body_end(x->ex);
}

static void up_on_body_ready(void *ud)
{
    pctx_t *x = ud;
    if (x->body_taken)
        return;
    x->body_taken = 1;
    aigw_http_body_stream(x->req, client_body_data, client_body_done, x);
}

static void up_on_body_drain(void *ud)
{
    pctx_t *x = ud;
    aigw_http_body_pause(x->req, 0);
}

static const aigw_upex_cbs_t up_cbs = {
    .on_body_ready = up_on_body_ready,
    .on_body_drain = up_on_body_drain,
    .on_tunnel = up_on_tunnel,
    .on_tunnel_drain = up_on_tunnel_drain,
    .on_idle = up_on_idle,
    .on_head = up_on_head,
    .on_body = up_on_body,
    .on_done = up_on_done,
    .on_error = up_on_error,
};

static void start_try(pctx_t *x)
{
    const aigw_rt_service_t *svc = x->svc;
    aigw_upex_params_t prm = {
        .addr = x->addr,
        .connect_timeout = svc->connect_timeout,
        .write_timeout = svc->write_timeout,
        .read_timeout = svc->read_timeout,
        .bufs = x->out,
        .nbufs = x->out[1].len ? 2 : 1,
        .head_request = x->req->method == HTTP_HEAD,
        .upgrade = x->upgrade,
        .stream_body = x->stream_body,
        .body_chunked = x->stream_body && (x->req->chunked || !req_header(x->req, "content-length")),
    };
    if (svc->protocol == AIGW_PROTO_HTTPS || svc->protocol == AIGW_PROTO_GRPCS) {
        /* the service's own context (tls_verify, ca_certificates, client_certificate); a
         * loaded runtime always has its certs, and they a context for every service */
        prm.ssl_ctx = aigw_certs_client_ctx(x->rt->certs, svc->id);
        prm.tls_verify = aigw_certs_client_verifies(x->rt->certs, svc->id);
        prm.sni = svc->host.p;
    }
    x->try_start_ns = uv_hrtime();
    if (x->run.log.n_tries < sizeof(x->run.log.tries) / sizeof(x->run.log.tries[0])) {
        struct aigw_plugin_try *t = &x->run.log.tries[x->run.log.n_tries];
        t->family = x->addr.ss_family;
        if (t->family == AF_INET)
            memcpy(t->addr, &((const struct sockaddr_in *)&x->addr)->sin_addr, 4);
        else
            memcpy(t->addr, &((const struct sockaddr_in6 *)&x->addr)->sin6_addr, 16);
        t->port = x->target_port;
        t->start_ns = x->try_start_ns;
    }
    x->run.log.n_tries++;
    x->ex = aigw_upex_start(x->pw->pool, &prm, &up_cbs, x);
    if (!x->ex)
        finish_error(x, 500, NULL, 0);
}

/* ---- addresses ------------------------------------------------------------------------------ */

static void set_port(struct sockaddr_storage *a, int port)
{
    if (a->ss_family == AF_INET)
        ((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}

/* The address of this try is known: build the request once, then connect. */
static void go(pctx_t *x)
{
    set_port(&x->addr, x->target_port);
    if (!x->built) {
        const aigw_http_header_t *hh = req_header(x->req, "host");
        if (build_upstream_request(x, x->run.norm_path, hh ? hh->value : AIGW_STR_NULL,
                                   x->target_port) != 0) {
            finish_error(x, 500, NULL, 0);
            return;
        }
        x->built = 1;
    }
    start_try(x);
}

static void on_dns(const aigw_dns_result_t *res, void *ud)
{
    pctx_t *x = ud;
    x->dns = NULL;
    if (res->status == AIGW_DNS_OK) {
        if (x->bal && res->fresh)
            aigw_balancer_set_addresses(x->bal, x->pick.target, res->addrs, res->n_addrs, NULL);
        x->addr = res->addr;
        go(x);
        return;
    }
    AIGW_LOG(AIGW_LOG_ERR, "DNS resolution failed for %s: %s", x->target_host,
             res->error ? res->error : "no address");
    if (x->bal) {
        /* a target whose name does not resolve is skipped; pick another */
        aigw_balancer_set_addresses(x->bal, x->pick.target, NULL, 0,
                                    res->error ? res->error : "name resolution failed");
        try_address(x);
        return;
    }
    if (res->status == AIGW_DNS_NOT_FOUND)
        finish_error(x, 503, AIGW_DNS_FAILED_MESSAGE, 0);
    else
        finish_error(x, 500, NULL, 0);
}

static aigw_str_t key_header(void *req, aigw_str_t name)
{
    const aigw_http_header_t *h = aigw_http_req_header(req, name);
    return h ? h->value : AIGW_STR_NULL;
}

static aigw_str_t key_cookie(void *req, aigw_str_t name)
{
    const aigw_http_req_t *r = req;
    for (size_t i = 0; i < r->n_headers; i++) {
        if (!aigw_str_ieq(r->headers[i].name, AIGW_STR("cookie")))
            continue;
        const char *p = r->headers[i].value.p, *end = p + r->headers[i].value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq && (size_t)(eq - p) == name.n && memcmp(p, name.p, name.n) == 0)
                return (aigw_str_t){ eq + 1, (size_t)(e - eq - 1) };
            p = e;
        }
    }
    return AIGW_STR_NULL;
}

static aigw_str_t key_query(void *req, aigw_str_t name)
{
    const aigw_http_req_t *r = req;
    const char *p = r->query.p, *end = r->query.p + r->query.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t kl = (size_t)((eq ? eq : e) - p);
        if (kl == name.n && memcmp(p, name.p, kl) == 0)
            return eq ? (aigw_str_t){ eq + 1, (size_t)(e - eq - 1) } : AIGW_STR("true");
        p = amp ? amp + 1 : NULL;
    }
    return AIGW_STR_NULL;
}

/* Picks the next target (upstream entity) or takes the service host, then resolves it. */
static void try_address(pctx_t *x)
{
    const aigw_rt_service_t *svc = x->svc;
    memset(&x->addr, 0, sizeof(x->addr));
    if (x->bal) {
        if (x->picked) {
            aigw_balancer_release(x->bal, x->pick.target);
            x->picked = 0;
        }
        aigw_balancer_key_t key = {
            .client_ip = aigw_str_c(x->client_ip),
            .consumer_id = x->run.consumer_id ? aigw_str_c(x->run.consumer_id) : AIGW_STR_NULL,
            .path = x->run.norm_path,
            .header = key_header,
            .cookie = key_cookie,
            .query_arg = key_query,
            .req = x->req,
            .has_hash = x->n_tried > 0,
            .hash = x->pick.hash,
        };
        if (aigw_balancer_pick(x->bal, &key, x->tried, x->n_tried, &x->pick) != 0) {
            finish_error(x, 503, AIGW_BALANCER_NO_PEER_MESSAGE, 0);
            return;
        }
        x->picked = 1;
        if (x->n_tried < sizeof(x->tried) / sizeof(x->tried[0]))
            x->tried[x->n_tried++] = x->pick.target;
        x->target_host = x->pick.host.p;
        x->target_port = x->pick.port;
        if (x->pick.family) {
            x->addr = x->pick.addr;
            go(x);
            return;
        }
    } else {
        x->target_host = svc->host.p;
        x->target_port = svc->port;
    }
    aigw_dns_lookup_t *h = NULL;
    int r = aigw_dns_resolve(x->pw->dns, x->target_host, on_dns, x, &h);
    if (r == 1)
        x->dns = h;   /* only now: r == 0 may have ended the request already */
    else if (r < 0)
        finish_error(x, 500, NULL, 0);
}

static void resolve_and_go(pctx_t *x)
{
    x->upstream_start_ns = uv_hrtime();
    x->run.log.upstream_start_ns = x->upstream_start_ns;
    x->tries = 1;
    x->bal = x->rt->balancers ? aigw_balancers_find(x->rt->balancers, x->svc->host) : NULL;
    try_address(x);
}

/* ---- entry -------------------------------------------------------------------------------- */

/* nginx $host: the Host header without port, lower-cased. */
static aigw_str_t host_of(aigw_arena_t *a, const aigw_http_header_t *h)
{
    if (!h)
        return AIGW_STR_NULL;
    aigw_str_t v = h->value;
    size_t end = v.n;
    if (v.n && v.p[0] == '[') {
        const char *rb = memchr(v.p, ']', v.n);
        end = rb ? (size_t)(rb - v.p) + 1 : v.n;
    } else {
        const char *colon = memchr(v.p, ':', v.n);
        if (colon)
            end = (size_t)(colon - v.p);
    }
    char *o = aigw_arena_alloc(a, end + 1);
    if (!o)
        return AIGW_STR_NULL;
    for (size_t i = 0; i < end; i++)
        o[i] = (v.p[i] >= 'A' && v.p[i] <= 'Z') ? (char)(v.p[i] + 32) : v.p[i];
    o[end] = '\0';
    return (aigw_str_t){ o, end };
}

static void https_required(pctx_t *x)
{
    aigw_http_req_t *req = x->req;
    int code = x->route->https_redirect_status_code;
    if (code == 301 || code == 302 || code == 307 || code == 308) {
        aigw_str_t host = forwarded(x, "x-forwarded-host", x->host);
        size_t cap = 16 + host.n + req->target.n;
        char *loc = aigw_arena_alloc(&req->arena, cap);
        if (!loc) {
            finish_error(x, 500, NULL, 0);
            return;
        }
        size_t n = PUT_LIT(loc, "https://");
        n += put(loc + n, host.p, host.n);
        n += put(loc + n, req->target.p, req->target.n);
        aigw_http_resp_header_t h[1] = { { AIGW_STR("Location"), { loc, n } } };
        aigw_http_on_abort(req, NULL, NULL);
        x->run.status = code;
        pctx_release(x);
        aigw_http_respond(req, code, h, 1, NULL, 0);
        return;
    }
    aigw_http_on_abort(req, NULL, NULL);
    x->run.status = 426;
    pctx_release(x);
    /* kong.response.error(426, ...) with Connection: Upgrade, Upgrade: TLS/1.2, HTTP/1.1 */
    aigw_http_respond_error_with(req, 426, "Please use HTTPS protocol",
                                 (aigw_http_resp_header_t[]){
                                     { AIGW_STR("Upgrade"), AIGW_STR("TLS/1.2, HTTP/1.1") } },
                                 1);
}

/* Plugins finished the access phase (now or later): proxy, unless one answered. */
static void after_access(aigw_plugin_run_t *run, void *ud)
{
    pctx_t *x = ud;
    (void)run;
    if (x->run.exited) {
        aigw_http_req_t *req = x->req;
        aigw_http_on_abort(req, NULL, NULL);
        aigw_plugins_respond_exit(&x->run, req);   /* header_filter + log run in there */
        aigw_runtime_unref(x->rt);
        x->rt = NULL;
        return;
    }
    resolve_and_go(x);
}

/* The buffered body is complete: the access phase. */
static void body_read_done(aigw_http_req_t *req, void *ud)
{
    pctx_t *x = ud;
    (void)req;
    aigw_plugins_access(&x->run, after_access, x);
}

void aigw_proxy_handle(aigw_http_req_t *req, void *ud)
{
    aigw_proxy_worker_t *pw = ud;
    aigw_runtime_t *rt = pw ? aigw_runtime_current() : NULL;
    if (!rt) {
        aigw_http_respond_error(req, 404, "no Route matched with those values");
        return;
    }
    aigw_arena_t *a = &req->arena;
    pctx_t *x = aigw_arena_alloc(a, sizeof(*x));
    char *norm = aigw_arena_alloc(a, req->path.n + 1);
    aigw_str_t *names = aigw_arena_alloc(a, (req->n_headers + 1) * 2 * sizeof(aigw_str_t));
    if (!x || !norm || !names) {
        aigw_runtime_unref(rt);
        aigw_http_respond_error(req, 500, NULL);
        return;
    }
    memset(x, 0, sizeof(*x));
    x->req = req;
    x->pw = pw;
    x->rt = rt;
    aigw_plugins_run_init(&x->run, rt, req);
    x->run.loop = pw->loop;

    int nn = aigw_path_normalize(req->path, norm, req->path.n + 1);
    if (nn < 0) {
        x->run.status = 400;
        pctx_release(x);
        aigw_http_respond_upstream_error(req, 400, "Bad request");
        return;
    }
    x->run.norm_path = (aigw_str_t){ norm, (size_t)nn };
    const aigw_http_header_t *hh = req_header(req, "host");
    /* an absolute-form target's host replaces the Host header (RFC 9112 3.2.2, nginx $host) */
    aigw_http_header_t abs_host = { AIGW_STR("Host"), req->uri_host };
    const aigw_http_header_t *rh = req->uri_host.n ? &abs_host : hh;
    x->host = host_of(a, rh);
    const aigw_http_header_t *uh = req_header(req, "upgrade");
    x->upgrade = uh && aigw_str_ieq(aigw_str_trim(uh->value), AIGW_STR("websocket"));
    resolve_client(x);
    x->run.client_ip = x->client_ip;
    x->run.peer_trusted = x->peer_trusted;

    aigw_str_t *values = names + req->n_headers + 1;
    for (size_t i = 0; i < req->n_headers; i++) {
        names[i] = req->headers[i].name;
        values[i] = req->headers[i].value;
    }
    const char *sni = aigw_http_req_sni(req);
    aigw_router_req_t rr = {
        .method = req->method_name,
        .host = rh ? rh->value : AIGW_STR_NULL,
        .port = aigw_http_req_local_port(req),
        .path = x->run.norm_path,
        .tls = aigw_http_req_is_tls(req),
        .sni = sni ? aigw_str_c(sni) : AIGW_STR_NULL,
        .header_names = names,
        .header_values = values,
        .n_headers = req->n_headers,
    };
    aigw_http_on_abort(req, on_client_abort, x);

    /* rewrite: global plugins only */
    if (aigw_plugins_rewrite(&x->run) != 0) {
        after_access(&x->run, x);
        return;
    }
    if (aigw_router_match(rt->router, &rr, &x->match) != 0) {
        x->run.status = 404;
        aigw_plugins_collect_global(&x->run);
        aigw_http_on_abort(req, NULL, NULL);
        aigw_http_resp_header_t *h;
        size_t nh = error_headers(x, &h);
        pctx_release(x);
        aigw_http_respond_error_with(req, 404, "no Route matched with those values", h, nh);
        return;
    }
    x->route = x->match.route;
    x->svc = x->route->service;
    x->run.route = x->route;
    x->run.service = x->svc;
    x->run.match = &x->match;

    unsigned p = x->route->protocols;
    aigw_str_t proto = forwarded(x, "x-forwarded-proto",
                                 aigw_http_req_is_tls(req) ? AIGW_STR("https") : AIGW_STR("http"));
    if ((p & AIGW_PROTO_HTTPS) && !(p & AIGW_PROTO_HTTP) &&
        !aigw_str_eq(proto, AIGW_STR("https"))) {
        aigw_plugins_collect_global(&x->run);
        https_required(x);
        return;
    }
    if (!x->svc) {
        aigw_plugins_collect_global(&x->run);
        finish_error(x, 503, "no Service found with those values", 0);
        return;
    }
    if (aigw_http_body_pending(req)) {
        /* request_buffering = false streams the body to the upstream as it arrives, unless
         * a plugin of the route reads it (then it is buffered, as nginx reads it for Kong's
         * get_raw_body); a WebSocket upgrade has no body to stream. */
        if (!x->route->request_buffering && !x->upgrade && !aigw_plugins_need_body(&x->run)) {
            x->stream_body = 1;
        } else if (aigw_http_body_read(req, body_read_done, x) == 0) {
            return;   /* body_read_done goes on */
        }
    }
    aigw_plugins_access(&x->run, after_access, x);
}
