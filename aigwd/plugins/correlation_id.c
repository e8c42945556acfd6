/* aigwd/plugins/correlation_id.c: Kong's correlation-id (priority 100001): an id per
 * request in `header_name` (default Kong-Request-ID) towards the upstream when the client
 * sent none or an empty one, optionally echoed downstream. Generators: `uuid` (random v4),
 * `uuid#counter` (a per-worker uuid, '#', a per-worker counter), `tracker`
 * (server address-port-pid-connection-requests-time, as Kong's nginx variables). */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "http/server.h"
#include "plugins/impl.h"
#include "plugins/logrec.h"

enum { GEN_UUID, GEN_UUID_COUNTER, GEN_TRACKER };

typedef struct conf {
    char header[256];
    int gen;
    int echo;
} conf_t;

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *h = json_string_value(json_object_get(c, "header_name"));
    const char *g = json_string_value(json_object_get(c, "generator"));
    aigw_strlcpy(k->header, h && *h ? h : "Kong-Request-ID", sizeof(k->header));
    k->gen = !g || strcmp(g, "uuid#counter") == 0 ? GEN_UUID_COUNTER
             : strcmp(g, "uuid") == 0             ? GEN_UUID
                                                  : GEN_TRACKER;
    k->echo = json_is_true(json_object_get(c, "echo_downstream"));
    return k;
}

static void uuid4(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        uint64_t t = uv_hrtime();
        memcpy(b, &t, 8);
        memcpy(b + 8, &t, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static _Thread_local char worker_uuid[37];
static _Thread_local unsigned long long worker_counter;

static aigw_str_t generate(aigw_plugin_run_t *run, const conf_t *k)
{
    char buf[160];
    int n;
    if (k->gen == GEN_UUID) {
        uuid4(buf);
        n = 36;
    } else if (k->gen == GEN_UUID_COUNTER) {
        if (!worker_uuid[0])
            uuid4(worker_uuid);
        n = snprintf(buf, sizeof(buf), "%s#%llu", worker_uuid, ++worker_counter);
    } else {
        /* Kong: server_addr-server_port-worker_pid-connection-connection_requests-now */
        char addr[64];
        aigw_http_req_local_addr(run->req, addr, sizeof(addr));
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        n = snprintf(buf, sizeof(buf), "%s-%d-%d-%llu-%llu-%lld.%03ld", addr,
                     aigw_http_req_local_port(run->req), (int)getpid(),
                     (unsigned long long)aigw_http_req_conn_serial(run->req),
                     (unsigned long long)aigw_http_req_conn_requests(run->req),
                     (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    }
    if (n < 0)
        n = 0;
    char *p = aigw_arena_strndup(&run->req->arena, buf, (size_t)n);
    return p ? (aigw_str_t){ p, (size_t)n } : AIGW_STR_NULL;
}

static aigw_plugin_rc_t cid_access(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    aigw_str_t v = aigw_plugin_req_header(run, k->header);
    if (!v.n) {
        v = generate(run, k);
        if (v.n)
            aigw_plugin_set_header(run, k->header, v);
    }
    return AIGW_PLUGIN_NEXT;
}

static void header_filter(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    if (!k->echo)
        return;
    aigw_str_t v = aigw_plugin_req_header(run, k->header);
    if (!v.n)
        v = generate(run, k);
    aigw_plugin_resp_set_header(run, k->header, v);
}

/* Kong's kong.log.set_serialize_value("correlation_id", ...): runs before the log plugins
 * (higher priority), so their records carry it. */
static void cid_log(aigw_plugin_run_t *run, void *c)
{
    const conf_t *k = c;
    aigw_str_t v = aigw_plugin_req_header(run, k->header);
    if (!v.n)
        return;
    json_t *s = json_stringn(v.p, v.n);
    char *d = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    if (d)
        aigw_plugin_log_set(run, "correlation_id", aigw_str_c(d));
    free(d);
    json_decref(s);
}

const aigw_plugin_def_t aigw_plugin_def_correlation_id = {
    .name = "correlation-id",
    .priority = 100001,
    .configure = configure,
    .free_conf = free,
    .access = cid_access,
    .header_filter = header_filter,
    .log = cid_log,
};
