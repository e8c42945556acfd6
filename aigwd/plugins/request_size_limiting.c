/* aigwd/plugins/request_size_limiting.c: Kong's request-size-limiting (priority 951). A
 * request whose Content-Length, or else whose body, is above allowed_payload_size *
 * size_unit (1024-based) is answered 413 "Request size limit exceeded" (417 when it sent
 * Expect: 100-continue), error JSON. With require_content_length, a request without a
 * numeric Content-Length that is not "Transfer-Encoding: chunked" gets 411 "A valid
 * Content-Length header is required". The server buffered the body before access runs (and
 * its own client_max_body_size applies first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugins/impl.h"

typedef struct conf {
    unsigned long long allowed;   /* bytes */
    int require_cl;
} conf_t;

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_int_t size = json_integer_value(json_object_get(c, "allowed_payload_size"));
    if (!json_is_integer(json_object_get(c, "allowed_payload_size")))
        size = 128;
    const char *unit = json_string_value(json_object_get(c, "size_unit"));
    unsigned long long f = 1048576;
    if (unit && strcmp(unit, "kilobytes") == 0)
        f = 1024;
    else if (unit && strcmp(unit, "bytes") == 0)
        f = 1;
    if (size < 0)
        size = 0;
    /* saturate rather than wrap for absurd sizes */
    k->allowed = (unsigned long long)size > ~0ULL / f ? ~0ULL : (unsigned long long)size * f;
    k->require_cl = json_is_true(json_object_get(c, "require_content_length"));
    return k;
}

static void conf_free(void *p)
{
    free(p);
}

static aigw_plugin_rc_t check_size(aigw_plugin_run_t *run, const conf_t *k,
                                   unsigned long long length)
{
    if (length <= k->allowed)
        return AIGW_PLUGIN_NEXT;
    const aigw_http_header_t *ex = aigw_http_req_header(run->req, AIGW_STR("expect"));
    if (ex && aigw_str_ieq(aigw_str_trim(ex->value), AIGW_STR("100-continue")))
        return aigw_plugin_error(run, 417, "Request size limit exceeded");
    return aigw_plugin_error(run, 413, "Request size limit exceeded");
}

static aigw_plugin_rc_t rsl_access(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    aigw_http_req_t *req = run->req;
    const aigw_http_header_t *cl = aigw_http_req_header(req, AIGW_STR("content-length"));
    unsigned long long n;
    if (cl && aigw_str_to_u64(aigw_str_trim(cl->value), ~0ULL, &n) == 0)
        return check_size(run, k, n);
    if (k->require_cl) {
        const aigw_http_header_t *te = aigw_http_req_header(req, AIGW_STR("transfer-encoding"));
        if (!te || !aigw_str_eq(te->value, AIGW_STR("chunked")))
            return aigw_plugin_error(run, 411, "A valid Content-Length header is required");
    }
    if (req->body || req->body_len)
        return check_size(run, k, req->body_len);
    /* Kong logs "missing request body" and lets the request through */
    return AIGW_PLUGIN_NEXT;
}

static int always_reads_body(const void *conf)
{
    (void)conf;
    return 1;   /* a chunked body is measured by reading it */
}

const aigw_plugin_def_t aigw_plugin_def_request_size_limiting = {
    .reads_body = always_reads_body,
    .name = "request-size-limiting",
    .priority = 951,
    .configure = configure,
    .free_conf = conf_free,
    .access = rsl_access,
};
