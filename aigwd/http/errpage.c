/* aigwd/http/errpage.c: see errpage.h. */
#include <string.h>
#include "http/errpage.h"

static aigw_str_t next_item(aigw_str_t *s, char sep)
{
    const char *p = memchr(s->p, sep, s->n);
    aigw_str_t item = { s->p, p ? (size_t)(p - s->p) : s->n };
    if (p) {
        s->n -= item.n + 1;
        s->p = p + 1;
    } else {
        s->p += s->n;
        s->n = 0;
    }
    return aigw_str_trim(item);
}

/* q-value as thousandths ("1", "0.5", "0.250"); -1 when malformed. */
static int parse_q(aigw_str_t v)
{
    if (v.n == 0 || v.n > 5 || (v.p[0] != '0' && v.p[0] != '1'))
        return -1;
    int q = (v.p[0] - '0') * 1000, scale = 100;
    if (v.n > 1) {
        if (v.p[1] != '.')
            return -1;
        for (size_t i = 2; i < v.n; i++) {
            if (v.p[i] < '0' || v.p[i] > '9')
                return -1;
            q += (v.p[i] - '0') * scale;
            scale /= 10;
        }
    }
    return q > 1000 ? -1 : q;
}

static aigw_errpage_format_t mime_of(aigw_str_t type, aigw_str_t sub)
{
    if (aigw_str_eq(sub, AIGW_STR("*"))) {
        if (aigw_str_eq(type, AIGW_STR("text")))
            return AIGW_ERRPAGE_PLAIN;
        return AIGW_ERRPAGE_JSON;   /* "*" and "application" and anything else */
    }
    if (aigw_str_eq(type, AIGW_STR("text"))) {
        if (aigw_str_eq(sub, AIGW_STR("html")))
            return AIGW_ERRPAGE_HTML;
        if (aigw_str_eq(sub, AIGW_STR("plain")))
            return AIGW_ERRPAGE_PLAIN;
    } else if (aigw_str_eq(type, AIGW_STR("application")) && aigw_str_eq(sub, AIGW_STR("xml"))) {
        return AIGW_ERRPAGE_XML;
    }
    return AIGW_ERRPAGE_JSON;
}

aigw_errpage_format_t aigw_errpage_negotiate(const aigw_http_req_t *req, int use_content_type)
{
    const aigw_http_header_t *h = aigw_http_req_header(req, AIGW_STR("accept"));
    if (!h && use_content_type)
        h = aigw_http_req_header(req, AIGW_STR("content-type"));
    if (!h)
        return use_content_type == 2 ? AIGW_ERRPAGE_PLAIN : AIGW_ERRPAGE_JSON;
    aigw_str_t rest = h->value;
    aigw_errpage_format_t best = AIGW_ERRPAGE_JSON;
    int best_q = 0;
    while (rest.n) {
        aigw_str_t item = next_item(&rest, ',');
        aigw_str_t media = next_item(&item, ';');
        const char *slash = memchr(media.p, '/', media.n);
        if (!slash || slash == media.p || slash == media.p + media.n - 1)
            continue;
        aigw_str_t type = { media.p, (size_t)(slash - media.p) };
        aigw_str_t sub = aigw_str_trim((aigw_str_t){ slash + 1, media.n - type.n - 1 });
        type = aigw_str_trim(type);
        int q = 1000;
        while (item.n) {
            aigw_str_t param = next_item(&item, ';');
            if (param.n > 2 && (param.p[0] == 'q' || param.p[0] == 'Q')) {
                aigw_str_t v = aigw_str_trim((aigw_str_t){ param.p + 1, param.n - 1 });
                if (v.n && v.p[0] == '=') {
                    q = parse_q(aigw_str_trim((aigw_str_t){ v.p + 1, v.n - 1 }));
                    if (q < 0)
                        break;
                }
            }
        }
        if (q > best_q) {
            best_q = q;
            best = mime_of(type, sub);
        }
    }
    return best;
}

aigw_str_t aigw_errpage_content_type(aigw_errpage_format_t f)
{
    switch (f) {
    case AIGW_ERRPAGE_HTML: return AIGW_STR("text/html; charset=utf-8");
    case AIGW_ERRPAGE_PLAIN: return AIGW_STR("text/plain; charset=utf-8");
    case AIGW_ERRPAGE_XML: return AIGW_STR("application/xml; charset=utf-8");
    default: return AIGW_STR("application/json; charset=utf-8");
    }
}

typedef struct tmpl {
    const char *before, *between, *after;
} tmpl_t;

/* Kong's ERROR_TEMPLATES: message first, then the request id. */
static const tmpl_t templates[] = {
    [AIGW_ERRPAGE_JSON] = { "{\n  \"message\":\"", "\",\n  \"request_id\":\"", "\"\n}" },
    [AIGW_ERRPAGE_HTML] = { "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n"
                            "    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n"
                            "    <p>",
                            ".</p>\n    <p>request_id: ", "</p>\n  </body>\n</html>\n" },
    [AIGW_ERRPAGE_PLAIN] = { "", "\nrequest_id: ", "\n" },
    [AIGW_ERRPAGE_XML] = { "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>",
                           "</message>\n  <requestid>", "</requestid>\n</error>\n" },
};

size_t aigw_errpage_render(aigw_errpage_format_t f, const char *message, const char *request_id,
                           char *out, size_t cap)
{
    const tmpl_t *t = &templates[f];
    const char *parts[5] = { t->before, message, t->between, request_id, t->after };
    size_t n = 0;
    for (int i = 0; i < 5; i++) {
        size_t l = i == 3 ? strnlen(parts[i], 32) : strlen(parts[i]);
        if (n + l > cap)
            return 0;
        memcpy(out + n, parts[i], l);
        n += l;
    }
    return n;
}
