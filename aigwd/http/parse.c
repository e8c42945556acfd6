/* aigwd/http/parse.c: see parse.h. */
#include <string.h>
#include <strings.h>
#include "http/parse.h"

const aigw_http_limits_t aigw_http_limits_default = {
    .max_target = 8192,
    .max_header_line = 8192,
    .max_header_block = 32768,
    .max_headers = 256,
    .max_body = 0,
    .buffer_body = 0,
};

const aigw_http_header_t *aigw_http_req_header(const aigw_http_req_t *r, aigw_str_t name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (aigw_str_ieq(r->headers[i].name, name))
            return &r->headers[i];
    return NULL;
}

const char *aigw_http_status_message(int status)
{
    switch (status) {
    case 400: return "Bad request";
    case 404: return "Not found";
    case 405: return "Method not allowed";
    case 408: return "Request timeout";
    case 411: return "Length required";
    case 412: return "Precondition failed";
    case 413: return "Payload too large";
    case 414: return "URI too long";
    case 417: return "Expectation failed";
    case 431: return "Request header fields too large";
    case 494: return "Request header or cookie too large";
    case 500: return "An unexpected error occurred";
    case 501: return "Not implemented";
    case 502: return "An invalid response was received from the upstream server";
    case 503: return "The upstream server is currently unavailable";
    case 504: return "The upstream server is timing out";
    case 505: return "HTTP version not supported";
    default: return "An unexpected error occurred";
    }
}

const char *aigw_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static aigw_http_parser_t *P(llhttp_t *l)
{
    return (aigw_http_parser_t *)l->data;
}

static int fail(aigw_http_parser_t *p, int status)
{
    if (!p->err_status) {
        p->err_status = status;
        p->err_message = aigw_http_status_message(status);
    }
    return -1;
}

/* Appends to the header buffer, growing it in the arena (doubling, so copies stay bounded). */
static int hb_append(aigw_http_parser_t *p, const char *at, size_t n)
{
    if (n == 0)
        return 0;
    if (p->hb_len + n > p->hb_cap) {
        size_t cap = p->hb_cap ? p->hb_cap : 1024;
        while (cap < p->hb_len + n)
            cap *= 2;
        char *nb = aigw_arena_alloc(&p->req->arena, cap);
        if (!nb)
            return fail(p, 500);
        if (p->hb_len)
            memcpy(nb, p->hb, p->hb_len);
        p->hb = nb;
        p->hb_cap = cap;
    }
    memcpy(p->hb + p->hb_len, at, n);
    p->hb_len += n;
    return 0;
}

static int on_message_begin(llhttp_t *l)
{
    P(l)->started = 1;
    return 0;
}

static int on_url(llhttp_t *l, const char *at, size_t n)
{
    aigw_http_parser_t *p = P(l);
    if (p->target_len + n > p->lim->max_target)
        return fail(p, 414);
    if (p->target_len == 0)
        p->target_off = p->hb_len;
    p->target_len += n;
    return hb_append(p, at, n);
}

static int add_header_slot(aigw_http_parser_t *p)
{
    if (p->n_hdr >= p->lim->max_headers)
        return fail(p, 431);
    if (p->n_hdr == p->hdr_cap) {
        size_t cap = p->hdr_cap ? p->hdr_cap * 2 : 16;
        size_t *n = aigw_arena_alloc(&p->req->arena, cap * 4 * sizeof(size_t));
        if (!n)
            return fail(p, 500);
        if (p->n_hdr)
            memcpy(n, p->hoff, p->n_hdr * 4 * sizeof(size_t));
        p->hoff = n;
        p->hdr_cap = cap;
    }
    size_t *h = p->hoff + p->n_hdr * 4;
    h[0] = p->hb_len;
    h[1] = h[2] = h[3] = 0;
    p->n_hdr++;
    p->line_len = 0;
    p->in_value = 0;
    return 0;
}

static int count_line(aigw_http_parser_t *p, size_t n)
{
    p->line_len += n;
    /* nginx: a line above large_client_header_buffers, or more than 4 of them: 494 -> 400 */
    if (p->line_len > p->lim->max_header_line)
        return fail(p, 494);
    if (p->hb_len + n - p->target_len > p->lim->max_header_block)
        return fail(p, 494);
    return 0;
}

static int on_header_field(llhttp_t *l, const char *at, size_t n)
{
    aigw_http_parser_t *p = P(l);
    if (p->n_hdr == 0 || p->in_value) {
        if (add_header_slot(p))
            return -1;
    }
    if (count_line(p, n))
        return -1;
    p->hoff[(p->n_hdr - 1) * 4 + 1] += n;
    return hb_append(p, at, n);
}

static int on_header_field_complete(llhttp_t *l)
{
    aigw_http_parser_t *p = P(l);
    size_t *h = p->hoff + (p->n_hdr - 1) * 4;
    /* llhttp accepts "Host : a" with the name "Host ": a gateway must not (smuggling). */
    if (h[1] == 0)
        return fail(p, 400);
    char last = p->hb[h[0] + h[1] - 1];
    if (last == ' ' || last == '\t')
        return fail(p, 400);
    h[2] = p->hb_len;
    p->in_value = 1;
    return 0;
}

/* The last byte before `at` that is not SP or HTAB (llhttp skips the whitespace of a fold
 * before an empty first value), which may have come in an earlier feed. */
static char byte_before(const aigw_http_parser_t *p, const char *at)
{
    while (at > p->feed_start && (at[-1] == ' ' || at[-1] == '\t'))
        at--;
    return at > p->feed_start ? at[-1] : p->prev_last;
}

static int on_header_value(llhttp_t *l, const char *at, size_t n)
{
    aigw_http_parser_t *p = P(l);
    size_t *h = p->hoff + (p->n_hdr - 1) * 4;
    /* A value piece that starts with whitespace right after a line end is obs-fold: joining
     * it is allowed by the RFC, rejecting it is simpler and what nginx does. */
    if (n && h[3] == 0 && byte_before(p, at) == '\n')
        return fail(p, 400);
    if (n && (at[0] == ' ' || at[0] == '\t') && byte_before(p, at) == '\n')
        return fail(p, 400);
    if (count_line(p, n))
        return -1;
    h[3] += n;
    return hb_append(p, at, n);
}

static aigw_str_t trim_ows(aigw_str_t s)
{
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    return s;
}

static int on_headers_complete(llhttp_t *l)
{
    aigw_http_parser_t *p = P(l);
    aigw_http_req_t *r = p->req;
    p->headers_done = 1;

    r->http_major = l->http_major;
    r->http_minor = l->http_minor;
    if (r->http_major != 1 || r->http_minor > 1)
        return fail(p, 505);
    r->method = l->method;
    r->method_name = aigw_str_c(llhttp_method_name((llhttp_method_t)l->method));
    r->keep_alive = llhttp_should_keep_alive(l);
    r->chunked = (l->flags & F_CHUNKED) != 0;

    r->target = (aigw_str_t){ p->hb + p->target_off, p->target_len };
    if (r->target.n == 0)
        return fail(p, 400);
    aigw_str_t t = r->target;
    r->uri_host = AIGW_STR_NULL;
    if (t.n > 7 && (strncasecmp(t.p, "http://", 7) == 0 ||
                    (t.n > 8 && strncasecmp(t.p, "https://", 8) == 0))) {
        /* absolute-form: the authority is the host; the rest is the origin form */
        size_t skip = t.p[4] == ':' ? 7 : 8;
        const char *a = t.p + skip, *end = t.p + t.n, *e = a;
        while (e < end && *e != '/' && *e != '?')
            e++;
        if (e == a || memchr(a, '@', (size_t)(e - a)))
            return fail(p, 400);
        r->uri_host = (aigw_str_t){ a, (size_t)(e - a) };
        if (e == end || *e == '?') {
            /* no path: "/" (the query, if any, stays after it) */
            static const char slash[] = "/";
            r->path = (aigw_str_t){ slash, 1 };
            r->query = e < end ? (aigw_str_t){ e + 1, (size_t)(end - e - 1) }
                               : (aigw_str_t){ end, 0 };
            goto target_done;
        }
        t = (aigw_str_t){ e, (size_t)(end - e) };
    }
    const char *q = memchr(t.p, '?', t.n);
    if (q) {
        r->path = (aigw_str_t){ t.p, (size_t)(q - t.p) };
        r->query = (aigw_str_t){ q + 1, t.n - r->path.n - 1 };
    } else {
        r->path = t;
        r->query = (aigw_str_t){ t.p + t.n, 0 };
    }
target_done:

    r->headers = aigw_arena_alloc(&r->arena, (p->n_hdr ? p->n_hdr : 1) * sizeof(*r->headers));
    if (!r->headers)
        return fail(p, 500);
    int hosts = 0;
    for (size_t i = 0; i < p->n_hdr; i++) {
        const size_t *h = p->hoff + i * 4;
        aigw_http_header_t *hd = &r->headers[i];
        hd->name = (aigw_str_t){ p->hb + h[0], h[1] };
        hd->value = trim_ows((aigw_str_t){ p->hb + h[2], h[3] });
        if (aigw_str_ieq(hd->name, AIGW_STR("host")))
            hosts++;
        else if (aigw_str_ieq(hd->name, AIGW_STR("transfer-encoding"))) {
            /* nginx: HTTP/1.0 with Transfer-Encoding is faulty framing (400); a coding other
             * than exactly "chunked" is answered 501 Not Implemented, as nginx answers it. */
            if (r->http_minor == 0)
                return fail(p, 400);
            if (!aigw_str_ieq(hd->value, AIGW_STR("chunked")))
                return fail(p, 501);
        } else if (aigw_str_ieq(hd->name, AIGW_STR("expect")) &&
                 aigw_str_ieq(hd->value, AIGW_STR("100-continue")) && r->http_minor == 1)
            p->want_continue = 1;
    }
    r->n_headers = p->n_hdr;
    /* As nginx: HTTP/1.1 needs exactly one Host; a second Host is never ambiguous-safe. */
    if (hosts > 1 || (hosts == 0 && r->http_minor == 1))
        return fail(p, 400);

    if ((l->flags & F_CONTENT_LENGTH) && p->lim->max_body && l->content_length > p->lim->max_body)
        return fail(p, 413);
    if (!(l->flags & (F_CONTENT_LENGTH | F_CHUNKED)))
        p->want_continue = 0;
    p->body_mode = AIGW_BODY_BUFFER;
    if (p->lim->head_dispatch && !l->upgrade &&
        ((l->flags & F_CHUNKED) || ((l->flags & F_CONTENT_LENGTH) && l->content_length))) {
        p->head_paused = 1;
        return HPE_PAUSED;
    }
    if (aigw_http_parser_buffer_body(p) != 0)
        return fail(p, 500);
    return 0;
}

int aigw_http_parser_buffer_body(aigw_http_parser_t *p)
{
    llhttp_t *l = &p->llh;
    aigw_http_req_t *r = p->req;
    if (p->lim->buffer_body && (l->flags & F_CONTENT_LENGTH) && l->content_length && !r->body) {
        /* Size the buffer for the announced body, but trust no more than 64 KB of it up
         * front: the rest grows as bytes actually arrive. */
        p->body_cap = l->content_length < 65536 ? (size_t)l->content_length : 65536;
        r->body = aigw_arena_alloc(&r->arena, p->body_cap + 1);
        if (!r->body)
            return -1;
    }
    return 0;
}

/* llhttp 8 skips the two bytes after chunk data without looking at them, so
 * "3\r\nabc\n50\r\n..." desynchronises it from any strict parser (request smuggling).
 * When a chunk's data ends, the next two bytes must be CR LF; those beyond this buffer are
 * checked at the start of the next feed. */
static int check_chunk_end(aigw_http_parser_t *p, const char *q)
{
    static const char crlf[] = "\r\n";
    size_t avail = p->feed_end > q ? (size_t)(p->feed_end - q) : 0;
    for (size_t i = 0; i < 2 && i < avail; i++)
        if (q[i] != crlf[i])
            return fail(p, 400);
    p->crlf_pending = avail >= 2 ? 0 : 2 - (int)avail;
    return 0;
}

static int on_body(llhttp_t *l, const char *at, size_t n)
{
    aigw_http_parser_t *p = P(l);
    aigw_http_req_t *r = p->req;
    if ((l->flags & F_CHUNKED) && l->content_length == 0 && check_chunk_end(p, at + n) != 0)
        return -1;
    p->want_continue = 0;   /* the client did not wait */
    if (p->body_mode == AIGW_BODY_DISCARD) {
        p->discarded += n;
        return 0;
    }
    if (p->lim->max_body && r->body_len + n > p->lim->max_body)
        return fail(p, 413);
    if (p->body_mode == AIGW_BODY_SINK) {
        r->body_len += n;
        p->sink(p->sink_ud, at, n);
        return 0;
    }
    if (p->lim->buffer_body) {
        if (r->body_len + n > p->body_cap) {
            size_t need = (size_t)r->body_len + n;
            if (need < n || need > SIZE_MAX / 4)
                return fail(p, 413);
            size_t cap = p->body_cap ? p->body_cap * 2 : 4096;
            while (cap < need)
                cap *= 2;
            char *nb = aigw_arena_alloc(&r->arena, cap + 1);
            if (!nb)
                return fail(p, 500);
            if (r->body_len)
                memcpy(nb, r->body, (size_t)r->body_len);
            r->body = nb;
            p->body_cap = cap;
        }
        memcpy(r->body + r->body_len, at, n);
    }
    r->body_len += n;
    return 0;
}

static int on_message_complete(llhttp_t *l)
{
    aigw_http_parser_t *p = P(l);
    if (p->req->body && p->body_mode == AIGW_BODY_BUFFER)
        p->req->body[p->req->body_len] = '\0';
    /* Upgrade and CONNECT: the bytes after this message are another protocol, so the
     * connection closes after the answer. */
    if (l->upgrade)
        p->upgrade = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void aigw_http_parser_init(aigw_http_parser_t *p, const aigw_http_limits_t *lim)
{
    memset(p, 0, sizeof(*p));
    p->lim = lim;
    llhttp_init(&p->llh, HTTP_REQUEST, &settings);
    p->llh.data = p;
}

void aigw_http_parser_begin(aigw_http_parser_t *p, aigw_http_req_t *req)
{
    p->req = req;
    p->hb = NULL;
    p->hb_len = p->hb_cap = 0;
    p->target_off = p->target_len = 0;
    p->hoff = NULL;
    p->n_hdr = p->hdr_cap = 0;
    p->in_value = 0;
    p->line_len = 0;
    p->body_cap = 0;
    p->crlf_pending = 0;
    p->started = 0;
    p->headers_done = 0;
    p->want_continue = 0;
    p->upgrade = 0;
    p->head_paused = 0;
    p->body_mode = AIGW_BODY_BUFFER;
    p->sink = NULL;
    p->sink_ud = NULL;
    p->discarded = 0;
    p->err_status = 0;
    p->err_message = NULL;
}

aigw_http_parse_result_t aigw_http_parser_feed(aigw_http_parser_t *p, const char *data,
                                               size_t len, size_t *consumed)
{
    if (p->err_status) {
        *consumed = 0;
        return AIGW_HTTP_PARSE_ERROR;
    }
    if (len && !p->started)
        p->started = 1;
    p->feed_start = data;
    p->feed_end = data + len;
    if (p->crlf_pending && len) {
        const char *want = p->crlf_pending == 2 ? "\r\n" : "\n";
        size_t k = (size_t)p->crlf_pending < len ? (size_t)p->crlf_pending : len;
        if (memcmp(data, want, k) != 0) {
            fail(p, 400);
            *consumed = 0;
            return AIGW_HTTP_PARSE_ERROR;
        }
        p->crlf_pending -= (int)k;
    }
    llhttp_errno_t e = llhttp_execute(&p->llh, data, len);
    for (size_t i = len; i > 0; i--) {
        if (data[i - 1] != ' ' && data[i - 1] != '\t') {
            p->prev_last = data[i - 1];
            break;
        }
    }
    switch (e) {
    case HPE_OK:
        *consumed = len;
        return AIGW_HTTP_PARSE_AGAIN;
    case HPE_PAUSED:
        *consumed = (size_t)(llhttp_get_error_pos(&p->llh) - data);
        llhttp_resume(&p->llh);
        if (p->head_paused) {
            p->head_paused = 0;
            return AIGW_HTTP_PARSE_HEAD;
        }
        return AIGW_HTTP_PARSE_DONE;
    case HPE_PAUSED_UPGRADE:
        /* An Upgrade or CONNECT request: answered, then the connection closes (the bytes
         * after it belong to another protocol). */
        *consumed = (size_t)(llhttp_get_error_pos(&p->llh) - data);
        p->upgrade = 1;
        if (!p->headers_done) {
            fail(p, 400);
            return AIGW_HTTP_PARSE_ERROR;
        }
        return AIGW_HTTP_PARSE_DONE;
    default:
        *consumed = 0;
        if (!p->err_status) {
            /* llhttp's own verdict: an unsupported version is 505, everything else 400. */
            const char *why = llhttp_get_error_reason(&p->llh);
            fail(p, e == HPE_INVALID_VERSION && why && strcmp(why, "Invalid HTTP version") == 0
                        ? 505
                        : 400);
        }
        return AIGW_HTTP_PARSE_ERROR;
    }
}

aigw_http_parse_result_t aigw_http_parser_eof(aigw_http_parser_t *p)
{
    if (!p->started || p->err_status)
        return p->err_status ? AIGW_HTTP_PARSE_ERROR : AIGW_HTTP_PARSE_AGAIN;
    /* A request never ends at EOF: a started one was cut short. No answer is owed. */
    p->err_status = 0;
    return AIGW_HTTP_PARSE_ERROR;
}
