/* aigwd/plugins/oauth2.c: the oauth2 plugin (kong/plugins/oauth2/access.lua, 3.9.3).
 *
 * On a route carrying the plugin, a POST to a path ending in /oauth2/token or
 * /oauth2/authorize is answered by the plugin (token and authorization endpoints); every
 * other request must carry an access token it issued. Tokens and authorization codes live in
 * the store (oauth2_tokens, oauth2_authorization_codes), never in config snapshots: every
 * read or write of them, and every Argon2id check of a hashed client_secret, runs on the
 * oauth2 store thread (store_jobs.h) and the request resumes when it answers.
 *
 * Thread use: configure/free_conf on the loader thread; the conf is reference-counted so a
 * job still on the store thread keeps what it reads alive after the runtime is gone. */
#include <argon2.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include "common/sbuf.h"
#include "core/log.h"
#include "http/server.h"
#include "plugins/impl.h"
#include "plugins/store_jobs.h"
#include "schema/schema.h"
#include "store/store.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define INVALID_TOKEN_DESC "The access token is invalid or has expired"
#define CODE_TTL 300

enum { PKCE_NONE = 0, PKCE_LAX, PKCE_STRICT };

typedef struct oconf {
    atomic_int refs;
    char **scopes;
    size_t n_scopes;
    int has_scopes;                 /* scopes is set (not null) */
    int mandatory_scope;
    char *provision_key;
    double token_expiration;
    int en_code, en_implicit, en_cc, en_password;
    int hide_credentials;
    int accept_terminated;
    int global_credentials;
    int reuse_refresh;
    long long refresh_token_ttl;
    int pkce;
    char *anonymous;                /* NULL when unset */
    char *auth_header_name;
    char *realm;                    /* NULL when unset */
} oconf_t;

/* ---- small helpers ------------------------------------------------------------------------- */

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *xstrdup(const char *s)
{
    return s ? xstrndup(s, strlen(s)) : NULL;
}

static int streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Equality of secrets without an early exit on the first differing byte. */
static int secret_eq(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    size_t na = strlen(a), nb = strlen(b);
    if (na != nb)
        return 0;
    return CRYPTO_memcmp(a, b, na) == 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Kong's strip(s) ~= "" (NULL counts as empty). */
static int blank(const char *s)
{
    if (!s)
        return 1;
    for (; *s; s++)
        if (!is_space(*s))
            return 0;
    return 1;
}

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Kong's random_string(): 32 characters [A-Za-z0-9]. */
static int random_string(char out[33])
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t k = 0;
    while (k < 32) {
        unsigned char b[48];
        if (RAND_bytes(b, sizeof(b)) != 1)
            return -1;
        for (size_t i = 0; i < sizeof(b) && k < 32; i++)
            if (b[i] < 248)   /* 248 = 4 * 62: no bias */
                out[k++] = al[b[i] % 62];
    }
    out[32] = '\0';
    return 0;
}

static int b64val(int c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Base64 (url: the url alphabet) with or without padding into a new NUL-terminated buffer;
 * NULL when it does not decode. */
static unsigned char *b64_decode(const char *s, size_t n, int url, size_t *outn)
{
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i], url);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out[k] = '\0';
    *outn = k;
    return out;
}

/* Base64url without padding of n bytes into out (at least 4 * ceil(n / 3) + 1). */
static void b64url_encode(const unsigned char *p, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[k++] = al[(v >> 18) & 63];
        out[k++] = al[(v >> 12) & 63];
        if (i + 1 < n)
            out[k++] = al[(v >> 6) & 63];
        if (i + 2 < n)
            out[k++] = al[v & 63];
    }
    out[k] = '\0';
}

/* sha256_base64url(s) */
static int sha256_b64url(const char *s, char out[48])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    if (EVP_Digest(s, strlen(s), md, &mdn, EVP_sha256(), NULL) != 1)
        return -1;
    b64url_encode(md, mdn, out);
    return 0;
}

/* ---- configuration ------------------------------------------------------------------------- */

static void conf_unref(oconf_t *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (size_t i = 0; i < c->n_scopes; i++)
        free(c->scopes[i]);
    free(c->scopes);
    free(c->provision_key);
    free(c->anonymous);
    free(c->auth_header_name);
    free(c->realm);
    free(c);
}

static oconf_t *conf_ref(oconf_t *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

static char *opt_str(const json_t *cfg, const char *k)
{
    const char *s = json_string_value(json_object_get(cfg, k));
    return s ? xstrdup(s) : NULL;
}

static int opt_bool(const json_t *cfg, const char *k)
{
    return json_is_true(json_object_get(cfg, k));
}

static void *configure(const json_t *cfg, char *err, size_t errlen)
{
    oconf_t *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    atomic_init(&c->refs, 1);
    const json_t *sc = json_object_get(cfg, "scopes");
    if (json_is_array(sc)) {
        c->has_scopes = 1;
        size_t n = json_array_size(sc);
        c->scopes = calloc(n ? n : 1, sizeof(char *));
        if (!c->scopes)
            goto oom;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(sc, i));
            if (!s)
                continue;
            if (!(c->scopes[c->n_scopes] = xstrdup(s)))
                goto oom;
            c->n_scopes++;
        }
    }
    c->mandatory_scope = opt_bool(cfg, "mandatory_scope");
    c->provision_key = opt_str(cfg, "provision_key");
    const json_t *te = json_object_get(cfg, "token_expiration");
    c->token_expiration = json_is_number(te) ? json_number_value(te) : 7200;
    c->en_code = opt_bool(cfg, "enable_authorization_code");
    c->en_implicit = opt_bool(cfg, "enable_implicit_grant");
    c->en_cc = opt_bool(cfg, "enable_client_credentials");
    c->en_password = opt_bool(cfg, "enable_password_grant");
    c->hide_credentials = opt_bool(cfg, "hide_credentials");
    c->accept_terminated = opt_bool(cfg, "accept_http_if_already_terminated");
    c->global_credentials = opt_bool(cfg, "global_credentials");
    c->reuse_refresh = opt_bool(cfg, "reuse_refresh_token");
    const json_t *rt = json_object_get(cfg, "refresh_token_ttl");
    c->refresh_token_ttl = json_is_number(rt) ? (long long)json_number_value(rt) : 1209600;
    const char *pk = json_string_value(json_object_get(cfg, "pkce"));
    c->pkce = streq(pk, "none") ? PKCE_NONE : streq(pk, "strict") ? PKCE_STRICT : PKCE_LAX;
    c->anonymous = opt_str(cfg, "anonymous");
    if (c->anonymous && !c->anonymous[0]) {
        free(c->anonymous);
        c->anonymous = NULL;
    }
    c->auth_header_name = opt_str(cfg, "auth_header_name");
    if (!c->auth_header_name)
        c->auth_header_name = xstrdup("authorization");
    c->realm = opt_str(cfg, "realm");
    if (!c->auth_header_name)
        goto oom;
    if (!c->provision_key) {
        snprintf(err, errlen, "oauth2: config.provision_key is missing");
        conf_unref(c);
        return NULL;
    }
    return c;
oom:
    conf_unref(c);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static void free_conf(void *p)
{
    conf_unref(p);
}

static int scope_allowed(const oconf_t *c, const char *s, size_t n)
{
    for (size_t i = 0; i < c->n_scopes; i++)
        if (strlen(c->scopes[i]) == n && memcmp(c->scopes[i], s, n) == 0)
            return 1;
    return 0;
}

/* ---- parameters (query merged with the body) --------------------------------------------- */

/* Percent-decodes s ('+' is a space) into a new JSON string; NULL when not UTF-8. */
static json_t *pct_json(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n &&
            (h = aigw_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (l = aigw_hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    json_t *j = json_stringn(out, k);
    free(out);
    return j;
}

/* a=b&c=d into obj; the first occurrence of a name wins; a name without '=' is true (as
 * ngx.decode_args). */
static void parse_urlencoded(aigw_str_t s, json_t *obj)
{
    const char *p = s.p, *end = s.p + s.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p) {
            const char *eq = memchr(p, '=', (size_t)(e - p));
            json_t *k = pct_json(p, eq ? (size_t)(eq - p) : (size_t)(e - p));
            const char *ks = json_string_value(k);
            if (ks && ks[0] && !json_object_get(obj, ks)) {
                json_t *v = eq ? pct_json(eq + 1, (size_t)(e - eq - 1)) : json_true();
                if (v)
                    json_object_set_new(obj, ks, v);
            }
            json_decref(k);
        }
        p = amp ? amp + 1 : end;
    }
}

static int ci_contains(aigw_str_t hay, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= hay.n; i++) {
        size_t j = 0;
        while (j < n && ((hay.p[i + j] | 0x20) == (needle[j] | 0x20)))
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

/* Kong's retrieve_parameters(): the query's arguments, and for POST/PUT/PATCH the body's
 * (form or JSON, by Content-Type) over them. New object. */
static json_t *retrieve_parameters(aigw_plugin_run_t *run)
{
    json_t *params = json_object();
    if (!params)
        return NULL;
    parse_urlencoded(run->query_set ? run->query : run->req->query, params);
    aigw_str_t m = run->req->method_name;
    if (!aigw_str_eq(m, AIGW_STR("POST")) && !aigw_str_eq(m, AIGW_STR("PUT")) &&
        !aigw_str_eq(m, AIGW_STR("PATCH")))
        return params;
    aigw_str_t ct = aigw_plugin_req_header(run, "content-type");
    aigw_str_t body = aigw_plugin_body(run);
    if (!ct.n || !body.n)
        return params;
    json_t *b = NULL;
    if (ci_contains(ct, "application/x-www-form-urlencoded")) {
        b = json_object();
        if (b)
            parse_urlencoded(body, b);
    } else if (ci_contains(ct, "application/json")) {
        b = json_loadb(body.p, body.n, JSON_DECODE_ANY, NULL);
        if (b && !json_is_object(b)) {
            json_decref(b);
            b = NULL;
        }
    }
    if (b) {
        json_object_update(params, b);
        json_decref(b);
    }
    return params;
}

static const char *pstr(const json_t *params, const char *k)
{
    return json_string_value(json_object_get(params, k));
}

static int phas(const json_t *params, const char *k)
{
    const json_t *v = json_object_get(params, k);
    return v && !json_is_null(v);
}

/* ---- responses ----------------------------------------------------------------------------- */

static json_t *err_obj(const char *error, const char *desc)
{
    return json_pack("{s:s,s:s}", "error", error, "error_description", desc);
}

/* Replaces *resp with a new error object. */
static void set_err(json_t **resp, const char *error, const char *desc)
{
    json_decref(*resp);
    *resp = err_obj(error, desc);
}

static int has_err(const json_t *resp)
{
    return !resp || json_object_get(resp, "error") != NULL;
}

static void realm_part(const oconf_t *c, char *out, size_t cap)
{
    if (c->realm)
        snprintf(out, cap, " realm=\"%s\"", c->realm);
    else
        out[0] = '\0';
}

/* kong.response.exit(status, body, headers): body is consumed. */
static aigw_plugin_rc_t exit_json(aigw_plugin_run_t *run, int status, json_t *body,
                                  const char *www, int no_store)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (no_store) {
        aigw_plugin_resp_set_header(run, "Cache-Control", AIGW_STR("no-store"));
        aigw_plugin_resp_set_header(run, "Pragma", AIGW_STR("no-cache"));
    }
    if (www)
        aigw_plugin_resp_set_header(run, "WWW-Authenticate", aigw_str_c(www));
    if (!s)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    aigw_plugin_rc_t rc = aigw_plugin_exit(run, status, aigw_str_c(s), AIGW_STR(JSON_TYPE));
    free(s);
    return rc;
}

/* ---- HTTPS --------------------------------------------------------------------------------- */

/* Kong's check_https: 1 https, 0 not, -1 with *msg (several X-Forwarded-Proto values). */
static int check_https(aigw_plugin_run_t *run, const oconf_t *c, const char **msg)
{
    if (aigw_http_req_is_tls(run->req))
        return 1;
    if (!c->accept_terminated || !run->peer_trusted)
        return 0;
    const aigw_http_header_t *h = aigw_http_req_header(run->req, AIGW_STR("x-forwarded-proto"));
    if (!h)
        return 0;
    if (memchr(h->value.p, ',', h->value.n)) {
        *msg = "Only one X-Forwarded-Proto header allowed";
        return -1;
    }
    return aigw_str_ieq(h->value, AIGW_STR("https"));
}

/* ---- scopes, PKCE ------------------------------------------------------------------------- */

/* Kong's retrieve_scope: 0 with *out (malloc'd, NULL when none) or -1 with *err set. */
static int retrieve_scope(const json_t *params, const oconf_t *c, char **out, json_t **err)
{
    *out = NULL;
    const json_t *sv = json_object_get(params, "scope");
    int present = sv && !json_is_null(sv);
    char msg[600];
    if (c->has_scopes && present) {
        if (!json_is_string(sv)) {
            *err = err_obj("invalid_scope", "scope must be a string");
            return -1;
        }
        const char *s = json_string_value(sv);
        size_t sl = strlen(s);
        char *acc = malloc(sl + 1);
        if (!acc)
            return -1;
        size_t k = 0;
        for (size_t i = 0; i < sl;) {
            while (i < sl && is_space(s[i]))
                i++;
            size_t st = i;
            while (i < sl && !is_space(s[i]))
                i++;
            if (i == st)
                break;
            if (!scope_allowed(c, s + st, i - st)) {
                int wl = (int)(i - st > 500 ? 500 : i - st);
                snprintf(msg, sizeof(msg), "\"%.*s\" is an invalid scope", wl, s + st);
                *err = err_obj("invalid_scope", msg);
                free(acc);
                return -1;
            }
            if (k)
                acc[k++] = ' ';
            memcpy(acc + k, s + st, i - st);
            k += i - st;
        }
        acc[k] = '\0';
        if (k)
            *out = acc;
        else
            free(acc);
    } else if (!present && c->mandatory_scope) {
        *err = err_obj("invalid_scope", "You must specify a scope");
        return -1;
    }
    return 0;
}

static int requires_pkce(const oconf_t *c, const char *client_type, int used_pkce)
{
    if (!client_type)
        return 0;
    return used_pkce || (streq(client_type, "public") && c->pkce != PKCE_NONE) ||
           (streq(client_type, "confidential") && c->pkce == PKCE_STRICT);
}

/* Kong's retrieve_code_challenge: 0 with *challenge (malloc'd or NULL) and *method, or -1
 * with *msg. */
static int retrieve_code_challenge(const json_t *params, char **challenge, const char **method,
                                   const char **msg)
{
    *challenge = NULL;
    const char *ch = pstr(params, "code_challenge");
    const char *cm = pstr(params, "code_challenge_method");
    int has_ch = phas(params, "code_challenge"), has_cm = phas(params, "code_challenge_method");
    if (has_cm && !has_ch) {
        *msg = "code_challenge is required when code_method is present";
        return -1;
    }
    *method = "S256";
    if (has_ch) {
        if (!ch)
            ch = "";
        size_t dn = 0;
        unsigned char *d = b64_decode(ch, strlen(ch), 1, &dn);
        if (d) {
            char *enc = malloc(dn / 3 * 4 + 8);
            if (enc)
                b64url_encode(d, dn, enc);
            free(d);
            *challenge = enc;
        } else {
            *challenge = xstrdup(ch);
        }
        if (has_cm && !streq(cm, "S256")) {
            if (!streq(cm, "s256")) {
                free(*challenge);
                *challenge = NULL;
                *msg = "code_challenge_method is not supported, must be S256";
                return -1;
            }
        }
    }
    return 0;
}

/* ---- the jobs ------------------------------------------------------------------------------ */

enum { J_TOKEN = 1, J_CODE, J_IMPLICIT, J_LOOKUP };

typedef struct job {
    aigw_store_job_t base;
    int kind;
    aigw_plugin_run_t *run;
    oconf_t *conf;

    /* token / authorize */
    json_t *params;
    json_t *resp;                   /* the response parameters so far */
    int err_status;                 /* 400, or 401 for a client sent in Authorization */
    int from_header;
    int verify_hash;
    char *hash, *secret;
    char cred_id[37];
    char *client_type;
    char service_id[37];            /* "" when none (global credentials) */
    char plugin_id[37];
    char *userid, *scope, *challenge;
    const char *challenge_method;
    char *redirect_uri;             /* authorize: where to send the answer */
    int internal_error;

    /* lookup */
    char *access_token;
    int found;                      /* 1 found, 0 not, -1 store failure */
    char tok_service[37];
    char tok_cred[37];
    char *tok_client_id;
    long long expires_in;
    double created_at;
    char *tok_scope, *tok_userid;
} job_t;

static void job_destroy(aigw_store_job_t *b)
{
    job_t *j = (job_t *)b;
    conf_unref(j->conf);
    json_decref(j->params);
    json_decref(j->resp);
    free(j->hash);
    free(j->secret);
    free(j->client_type);
    free(j->userid);
    free(j->scope);
    free(j->challenge);
    free(j->redirect_uri);
    free(j->access_token);
    free(j->tok_client_id);
    free(j->tok_scope);
    free(j->tok_userid);
    free(j);
}

static job_t *job_new(aigw_plugin_run_t *run, oconf_t *c, int kind)
{
    job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->kind = kind;
    j->run = run;
    j->conf = conf_ref(c);
    j->err_status = 400;
    j->base.destroy = job_destroy;
    return j;
}

static void on_cancel(void *ud)
{
    aigw_store_jobs_cancel(ud);
}

/* Submits j; on failure answers 500 and frees it. */
static aigw_plugin_rc_t submit(aigw_plugin_run_t *run, job_t *j,
                               void (*work)(aigw_store_job_t *, aigw_store_t *),
                               void (*done)(aigw_store_job_t *))
{
    j->base.work = work;
    j->base.done = done;
    if (aigw_store_jobs_submit(run->loop, &j->base) != 0) {
        job_destroy(&j->base);
        AIGW_LOG(AIGW_LOG_ERR, "oauth2: the token store is not available");
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    aigw_plugin_on_cancel(run, on_cancel, j);
    return AIGW_PLUGIN_ASYNC;
}

static const char *fk_id(const json_t *obj, const char *field)
{
    const json_t *v = json_object_get(obj, field);
    return json_is_object(v) ? json_string_value(json_object_get(v, "id")) : NULL;
}

static void log_db(const char *what, const aigw_db_error_t *e)
{
    AIGW_LOG(AIGW_LOG_ERR, "oauth2: %s: %s", what, e->message);
}

/* Kong's generate_token, on the store thread: fills j->resp, or sets internal_error. */
static void generate_token(job_t *j, aigw_store_t *st, const char *userid, const char *scope,
                           int disable_refresh, json_t *existing)
{
    const oconf_t *c = j->conf;
    long long te = c->token_expiration > 0 ? (long long)ceil(c->token_expiration) : 0;
    long long ttl = c->refresh_token_ttl > 0 && te > 0 ? c->refresh_token_ttl : 0;
    const aigw_entity_t *ent = aigw_schema_entity("oauth2_tokens");
    aigw_db_error_t e = { 0 };
    json_t *tok = NULL;
    char refresh[33] = "", access[33];
    if (existing && c->reuse_refresh) {
        tok = json_deep_copy(existing);
        if (!tok || random_string(access) != 0)
            goto fail;
        json_object_set_new(tok, "access_token", json_string(access));
        json_object_set_new(tok, "expires_in", json_integer(te));
        json_object_set_new(tok, "created_at", json_integer((json_int_t)time(NULL)));
        if (ttl)
            json_object_set_new(tok, "ttl", json_integer(ttl));
        else
            json_object_del(tok, "ttl");
        if (aigw_store_replace(st, ent, tok, &e) != 0) {
            log_db("cannot update a token", &e);
            goto fail;
        }
        const char *rt = json_string_value(json_object_get(tok, "refresh_token"));
        if (rt)
            aigw_strlcpy(refresh, rt, sizeof(refresh));
    } else {
        if (!disable_refresh && te > 0 && random_string(refresh) != 0)
            goto fail;
        tok = json_object();
        if (!tok)
            goto fail;
        if (j->service_id[0])
            json_object_set_new(tok, "service", json_pack("{s:s}", "id", j->service_id));
        json_object_set_new(tok, "credential", json_pack("{s:s}", "id", j->cred_id));
        json_object_set_new(tok, "expires_in", json_integer(te));
        if (refresh[0])
            json_object_set_new(tok, "refresh_token", json_string(refresh));
        if (userid)
            json_object_set_new(tok, "authenticated_userid", json_string(userid));
        if (scope)
            json_object_set_new(tok, "scope", json_string(scope));
        if (ttl)
            json_object_set_new(tok, "ttl", json_integer(ttl));
        json_t *verr = NULL;
        if (aigw_schema_validate(ent, tok, AIGW_V_INSERT, &verr) != 0) {
            char *m = verr ? aigw_schema_errors_message(verr) : NULL;
            AIGW_LOG(AIGW_LOG_ERR, "oauth2: a new token is invalid: %s", m ? m : "?");
            free(m);
            json_decref(verr);
            goto fail;
        }
        if (aigw_store_insert(st, ent, tok, &e) != 0) {
            log_db("cannot store a token", &e);
            goto fail;
        }
    }
    json_t *r = json_object();
    const char *at = json_string_value(json_object_get(tok, "access_token"));
    if (!r || !at) {
        json_decref(r);
        goto fail;
    }
    json_object_set_new(r, "access_token", json_string(at));
    json_object_set_new(r, "token_type", json_string("bearer"));
    if (te > 0)
        json_object_set_new(r, "expires_in",
                            json_integer(json_integer_value(json_object_get(tok, "expires_in"))));
    if (refresh[0])
        json_object_set_new(r, "refresh_token", json_string(refresh));
    json_decref(j->resp);
    j->resp = r;
    json_decref(tok);
    aigw_db_error_clear(&e);
    return;
fail:
    json_decref(tok);
    aigw_db_error_clear(&e);
    j->internal_error = 1;
}

static int store_ok(job_t *j, aigw_store_t *st)
{
    if (st)
        return 1;
    j->internal_error = 1;
    return 0;
}

/* The authorization_code grant (store thread). */
static void grant_code(job_t *j, aigw_store_t *st)
{
    const oconf_t *c = j->conf;
    const aigw_entity_t *ent = aigw_schema_entity("oauth2_authorization_codes");
    const char *code = pstr(j->params, "code");
    json_t *ac = NULL;
    aigw_db_error_t e = { 0 };
    if (code) {
        int r = aigw_store_find(st, ent, "code", code, &ac, &e);
        if (r < 0) {
            log_db("cannot read an authorization code", &e);
            aigw_db_error_clear(&e);
            j->internal_error = 1;
            return;
        }
    }
    const char *ac_svc = ac ? fk_id(ac, "service") : NULL;
    if (!ac || (j->service_id[0] && !streq(ac_svc, j->service_id)) ||
        !streq(fk_id(ac, "credential"), j->cred_id)) {
        set_err(&j->resp, "invalid_request", "Invalid code");
    } else {
        const char *method = pstr(ac, "challenge_method");
        if (requires_pkce(c, j->client_type, method != NULL)) {
            const char *verifier = pstr(j->params, "code_verifier");
            const char *challenge = pstr(ac, "challenge");
            char computed[48];
            if (!phas(j->params, "code_verifier")) {
                set_err(&j->resp, "invalid_request",
                        "code_verifier is required for PKCE authorization requests");
            } else if (!verifier) {
                set_err(&j->resp, "invalid_request", "code_verifier is not a string");
            } else if (strlen(verifier) < 43 || strlen(verifier) > 128) {
                set_err(&j->resp, "invalid_request",
                        "code_verifier must be between 43 and 128 characters");
            } else if (sha256_b64url(verifier, computed) != 0 || !challenge ||
                       strcmp(computed, challenge) != 0) {
                set_err(&j->resp, "invalid_grant", "Invalid code");
            }
        }
        if (!has_err(j->resp) && c->global_credentials) {
            const char *pid = fk_id(ac, "plugin");
            if (pid && !streq(pid, j->plugin_id))
                set_err(&j->resp, "invalid_request", "Invalid code");
        }
        if (!has_err(j->resp)) {
            generate_token(j, st, pstr(ac, "authenticated_userid"), pstr(ac, "scope"), 0, NULL);
            const char *id = pstr(ac, "id");
            if (!j->internal_error && id && aigw_store_delete(st, ent, id, &e) < 0)
                log_db("cannot delete a used authorization code", &e);
        }
    }
    aigw_db_error_clear(&e);
    json_decref(ac);
}

/* The refresh_token grant (store thread). */
static void grant_refresh(job_t *j, aigw_store_t *st)
{
    const oconf_t *c = j->conf;
    const aigw_entity_t *ent = aigw_schema_entity("oauth2_tokens");
    const char *rt = pstr(j->params, "refresh_token");
    json_t *tok = NULL;
    aigw_db_error_t e = { 0 };
    if (rt) {
        if (aigw_store_find(st, ent, "refresh_token", rt, &tok, &e) < 0) {
            log_db("cannot read a token", &e);
            aigw_db_error_clear(&e);
            j->internal_error = 1;
            return;
        }
    }
    if (!tok || (j->service_id[0] && !streq(fk_id(tok, "service"), j->service_id))) {
        set_err(&j->resp, "invalid_request", "Invalid refresh_token");
    } else if (!streq(fk_id(tok, "credential"), j->cred_id)) {
        set_err(&j->resp, "invalid_client", "Invalid client authentication");
    } else {
        const char *sc = pstr(tok, "scope");
        for (size_t i = 0; sc && sc[i];) {
            while (sc[i] && is_space(sc[i]))
                i++;
            size_t s0 = i;
            while (sc[i] && !is_space(sc[i]))
                i++;
            if (i > s0 && !scope_allowed(c, sc + s0, i - s0)) {
                set_err(&j->resp, "invalid_scope", "Scope mismatch");
                break;
            }
        }
        if (!has_err(j->resp)) {
            generate_token(j, st, pstr(tok, "authenticated_userid"), sc, 0, tok);
            const char *id = pstr(tok, "id");
            if (!j->internal_error && !c->reuse_refresh && id &&
                aigw_store_delete(st, ent, id, &e) < 0)
                log_db("cannot delete a refreshed token", &e);
        }
    }
    aigw_db_error_clear(&e);
    json_decref(tok);
}

static int provision_ok(const oconf_t *c, const json_t *params)
{
    return secret_eq(c->provision_key, pstr(params, "provision_key"));
}

/* The token endpoint after the checks the worker made (store thread). */
static void work_token(aigw_store_job_t *b, aigw_store_t *st)
{
    job_t *j = (job_t *)b;
    const oconf_t *c = j->conf;
    if (j->verify_hash) {
        int ok = j->secret && j->hash &&
                 argon2id_verify(j->hash, j->secret, strlen(j->secret)) == ARGON2_OK;
        if (!ok) {
            set_err(&j->resp, "invalid_client", "Invalid client authentication");
            if (j->from_header)
                j->err_status = 401;
        }
    }
    if (has_err(j->resp))
        return;
    const char *gt = pstr(j->params, "grant_type");
    if (streq(gt, "authorization_code")) {
        if (store_ok(j, st))
            grant_code(j, st);
    } else if (streq(gt, "client_credentials")) {
        json_t *serr = NULL;
        char *scope = NULL;
        if (phas(j->params, "authenticated_userid") && !provision_ok(c, j->params)) {
            set_err(&j->resp, "invalid_provision_key", "Invalid provision_key");
        } else if (!j->cred_id[0]) {
            set_err(&j->resp, "invalid_client", "Invalid client authentication");
        } else if (retrieve_scope(j->params, c, &scope, &serr) != 0) {
            json_decref(j->resp);
            j->resp = serr;
            if (!serr)
                j->internal_error = 1;
        } else if (store_ok(j, st)) {
            generate_token(j, st, pstr(j->params, "authenticated_userid"), scope, 1, NULL);
        }
        free(scope);
    } else if (streq(gt, "password")) {
        json_t *serr = NULL;
        char *scope = NULL;
        if (!provision_ok(c, j->params)) {
            set_err(&j->resp, "invalid_provision_key", "Invalid provision_key");
        } else if (blank(pstr(j->params, "authenticated_userid"))) {
            set_err(&j->resp, "invalid_authenticated_userid",
                    "Missing authenticated_userid parameter");
        } else if (retrieve_scope(j->params, c, &scope, &serr) != 0) {
            json_decref(j->resp);
            j->resp = serr;
            if (!serr)
                j->internal_error = 1;
        } else if (store_ok(j, st)) {
            generate_token(j, st, pstr(j->params, "authenticated_userid"), scope, 0, NULL);
        }
        free(scope);
    } else if (streq(gt, "refresh_token")) {
        if (store_ok(j, st))
            grant_refresh(j, st);
    }
}

/* Adds state to the response parameters (Kong: response_params.state = state). */
static void add_state(job_t *j)
{
    json_t *state = json_object_get(j->params, "state");
    if (j->resp && state && !json_is_null(state))
        json_object_set(j->resp, "state", state);
}

static aigw_plugin_rc_t token_respond(aigw_plugin_run_t *run, job_t *j)
{
    if (j->internal_error || !j->resp)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    add_state(j);
    int err = has_err(j->resp);
    json_t *body = j->resp;
    j->resp = NULL;
    return exit_json(run, err ? j->err_status : 200, body,
                     err && j->err_status == 401 ? "Basic realm=\"OAuth2.0\"" : NULL, 1);
}

static void done_token(aigw_store_job_t *b)
{
    job_t *j = (job_t *)b;
    aigw_plugin_run_t *run = j->run;
    aigw_plugin_rc_t rc = token_respond(run, j);
    aigw_plugin_resume(run, rc);
}

/* Kong's retrieve_client_credentials. id and secret are malloc'd (or NULL). */
static void client_credentials(aigw_plugin_run_t *run, const oconf_t *c, const json_t *params,
                               char **id, char **secret, int *from_header)
{
    *id = *secret = NULL;
    *from_header = 0;
    aigw_str_t h = aigw_plugin_req_header(run, c->auth_header_name);
    const char *pid = pstr(params, "client_id"), *psec = pstr(params, "client_secret");
    if (phas(params, "client_id") && phas(params, "client_secret")) {
        *id = xstrdup(pid);
        *secret = xstrdup(psec);
    } else if (h.p) {
        *from_header = 1;
        /* \s*[Bb]asic\s*(.+) anywhere in the value */
        for (size_t i = 0; i + 5 <= h.n; i++) {
            if ((h.p[i] != 'B' && h.p[i] != 'b') || memcmp(h.p + i + 1, "asic", 4) != 0)
                continue;
            size_t k = i + 5;
            while (k < h.n && is_space(h.p[k]))
                k++;
            if (k >= h.n)
                break;
            size_t dn = 0;
            unsigned char *d = b64_decode(h.p + k, h.n - k, 0, &dn);
            if (d) {
                /* split(decoded, ":"): the first two parts */
                const char *s = (const char *)d;
                const char *c1 = memchr(s, ':', dn);
                if (c1) {
                    const char *c2 = memchr(c1 + 1, ':', dn - (size_t)(c1 + 1 - s));
                    *id = xstrndup(s, (size_t)(c1 - s));
                    *secret = xstrndup(c1 + 1, (size_t)((c2 ? c2 : s + dn) - (c1 + 1)));
                } else {
                    *id = xstrndup(s, dn);
                }
                free(d);
            }
            break;
        }
    } else if (phas(params, "client_id")) {
        *id = xstrdup(pid);
    }
}

static int uri_allowed(const aigw_rt_oauth2_cred_t *cl, const char *uri)
{
    if (!uri)
        return 0;
    for (size_t i = 0; i < cl->n_redirect_uris; i++)
        if (aigw_str_eq(cl->redirect_uris[i], aigw_str_c(uri)))
            return 1;
    return 0;
}

static char *first_uri(const aigw_rt_oauth2_cred_t *cl)
{
    return cl->n_redirect_uris ? xstrndup(cl->redirect_uris[0].p, cl->redirect_uris[0].n)
                               : NULL;
}

static const char *my_plugin_id(const aigw_plugin_run_t *run, const void *conf)
{
    for (size_t i = run->n_active; i-- > 0;)
        if (run->active[i]->def == &aigw_plugin_def_oauth2 && run->active[i]->conf == conf)
            return run->active[i]->id;
    return "";
}

static void job_context(job_t *j, aigw_plugin_run_t *run, const oconf_t *c)
{
    if (!c->global_credentials && run->service)
        aigw_strlcpy(j->service_id, run->service->id, sizeof(j->service_id));
    aigw_strlcpy(j->plugin_id, my_plugin_id(run, c), sizeof(j->plugin_id));
}

static aigw_plugin_rc_t token_endpoint(aigw_plugin_run_t *run, oconf_t *c)
{
    job_t *j = job_new(run, c, J_TOKEN);
    if (!j || !(j->params = retrieve_parameters(run)) || !(j->resp = json_object())) {
        if (j)
            job_destroy(&j->base);
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    job_context(j, run, c);
    const char *hmsg = NULL;
    int https = check_https(run, c, &hmsg);
    if (https != 1) {
        set_err(&j->resp, "access_denied", hmsg ? hmsg : "You must use HTTPS");
        aigw_plugin_rc_t rc = token_respond(run, j);
        job_destroy(&j->base);
        return rc;
    }
    const char *gt = pstr(j->params, "grant_type");
    if (!(streq(gt, "authorization_code") || streq(gt, "refresh_token") ||
          (c->en_cc && streq(gt, "client_credentials")) ||
          (c->en_password && streq(gt, "password"))))
        set_err(&j->resp, "unsupported_grant_type", "Invalid grant_type");

    char *cid = NULL, *csec = NULL;
    client_credentials(run, c, j->params, &cid, &csec, &j->from_header);
    const aigw_rt_oauth2_cred_t *cl =
        cid && cid[0] ? aigw_oauth2_cred_by_client_id(run->rt->consumers, aigw_str_c(cid))
                      : NULL;
    if (!streq(gt, "client_credentials")) {
        if (cl && cl->n_redirect_uris) {
            int ok;
            if (phas(j->params, "redirect_uri"))
                ok = uri_allowed(cl, pstr(j->params, "redirect_uri"));
            else
                ok = 1;   /* the first registered one */
            if (!ok)
                set_err(&j->resp, "invalid_request",
                        "Invalid redirect_uri that does not match with any redirect_uri "
                        "created with the application");
        } else {
            set_err(&j->resp, "invalid_client", "Invalid client authentication");
            if (j->from_header)
                j->err_status = 401;
        }
    }
    if (cl) {
        aigw_strlcpy(j->cred_id, cl->id, sizeof(j->cred_id));
        j->client_type = xstrndup(cl->client_type.p, cl->client_type.n);
        if (aigw_str_eq(cl->client_type, AIGW_STR("confidential"))) {
            if (cl->hash_secret) {
                j->verify_hash = 1;
                j->hash = xstrndup(cl->client_secret.p, cl->client_secret.n);
                j->secret = csec;
                csec = NULL;
            } else {
                char *stored = xstrndup(cl->client_secret.p, cl->client_secret.n);
                int ok = cl->client_secret.p && secret_eq(stored, csec);
                free(stored);
                if (!ok) {
                    set_err(&j->resp, "invalid_client", "Invalid client authentication");
                    if (j->from_header)
                        j->err_status = 401;
                }
            }
        } else if (aigw_str_eq(cl->client_type, AIGW_STR("public")) && !blank(csec)) {
            set_err(&j->resp, "invalid_request", "client_secret is disallowed for public clients");
        }
    }
    free(cid);
    free(csec);
    if (has_err(j->resp) && !j->verify_hash) {
        aigw_plugin_rc_t rc = token_respond(run, j);
        job_destroy(&j->base);
        return rc;
    }
    return submit(run, j, work_token, done_token);
}

/* ---- the authorization endpoint ------------------------------------------------------------ */

/* socket.url's escape: everything but [A-Za-z0-9_] as %xx (lower-case hex). */
static void url_escape(aigw_sbuf_t *b, const char *s)
{
    static const char hx[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '_') {
            aigw_sbuf_addn(b, (const char *)&ch, 1);
        } else {
            char e[3] = { '%', hx[ch >> 4], hx[ch & 15] };
            aigw_sbuf_addn(b, e, 3);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Kong's encode_args for flat arguments: sorted by name, "name=value", "name" alone for an
 * empty value. */
static void encode_args(aigw_sbuf_t *b, const json_t *args)
{
    size_t n = json_object_size(args), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof(char *));
    if (!keys) {
        b->oom = 1;
        return;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)(uintptr_t)args, key, v)
        keys[k++] = key;
    qsort(keys, k, sizeof(char *), cmp_str);
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        v = json_object_get(args, keys[i]);
        char num[64];
        const char *val = NULL;
        if (json_is_string(v))
            val = json_string_value(v);
        else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            val = num;
        }
        else if (json_is_true(v))
            val = "true";
        else if (json_is_false(v))
            val = "false";
        else if (json_is_null(v))
            val = "";
        else
            continue;
        if (out++)
            aigw_sbuf_add(b, "&");
        url_escape(b, keys[i]);
        if (val[0]) {
            aigw_sbuf_add(b, "=");
            url_escape(b, val);
        }
    }
    free(keys);
}

/* The redirect_uri with the response parameters merged into its query (or, for an implicit
 * grant, its fragment). malloc'd, NULL when out of memory. */
static char *build_redirect(const char *uri, const json_t *resp, int implicit)
{
    const char *hash = strchr(uri, '#');
    size_t before_hash = hash ? (size_t)(hash - uri) : strlen(uri);
    const char *q = memchr(uri, '?', before_hash);
    size_t base_n = q ? (size_t)(q - uri) : before_hash;
    aigw_str_t query = q ? (aigw_str_t){ q + 1, before_hash - base_n - 1 } : AIGW_STR_NULL;
    aigw_str_t frag = hash ? aigw_str_c(hash + 1) : AIGW_STR_NULL;
    json_t *args = json_object();
    if (!args)
        return NULL;
    parse_urlencoded(implicit ? frag : query, args);
    json_object_update(args, (json_t *)(uintptr_t)resp);
    aigw_sbuf_t b = { 0 };
    aigw_sbuf_addn(&b, uri, base_n);
    if (implicit) {
        if (q) {
            aigw_sbuf_add(&b, "?");
            aigw_sbuf_addn(&b, query.p, query.n);
        }
        aigw_sbuf_add(&b, "#");
        encode_args(&b, args);
    } else {
        aigw_sbuf_add(&b, "?");
        encode_args(&b, args);
        if (hash) {
            aigw_sbuf_add(&b, "#");
            aigw_sbuf_addn(&b, frag.p, frag.n);
        }
    }
    json_decref(args);
    if (b.oom) {
        aigw_sbuf_free(&b);
        return NULL;
    }
    return b.p ? b.p : xstrdup("");
}

static aigw_plugin_rc_t authorize_respond(aigw_plugin_run_t *run, job_t *j)
{
    if (j->internal_error || !j->resp)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    add_state(j);
    int err = has_err(j->resp);
    json_t *body;
    if (j->redirect_uri) {
        char *u = build_redirect(j->redirect_uri, j->resp, j->kind == J_IMPLICIT && !err);
        if (!u)
            return aigw_plugin_error(run, 500, "An unexpected error occurred");
        body = json_pack("{s:s}", "redirect_uri", u);
        free(u);
    } else {
        body = json_incref(j->resp);
    }
    return exit_json(run, err ? 400 : 200, body, NULL, 1);
}

static void work_code(aigw_store_job_t *b, aigw_store_t *st)
{
    job_t *j = (job_t *)b;
    if (!store_ok(j, st))
        return;
    if (j->kind == J_IMPLICIT) {
        generate_token(j, st, j->userid, j->scope, 1, NULL);
        return;
    }
    const aigw_entity_t *ent = aigw_schema_entity("oauth2_authorization_codes");
    json_t *o = json_object(), *verr = NULL;
    aigw_db_error_t e = { 0 };
    if (!o) {
        j->internal_error = 1;
        return;
    }
    if (j->service_id[0])
        json_object_set_new(o, "service", json_pack("{s:s}", "id", j->service_id));
    json_object_set_new(o, "credential", json_pack("{s:s}", "id", j->cred_id));
    if (j->userid)
        json_object_set_new(o, "authenticated_userid", json_string(j->userid));
    if (j->scope)
        json_object_set_new(o, "scope", json_string(j->scope));
    if (j->challenge) {
        json_object_set_new(o, "challenge", json_string(j->challenge));
        json_object_set_new(o, "challenge_method", json_string(j->challenge_method));
    }
    if (j->plugin_id[0])
        json_object_set_new(o, "plugin", json_pack("{s:s}", "id", j->plugin_id));
    json_object_set_new(o, "ttl", json_integer(CODE_TTL));
    if (aigw_schema_validate(ent, o, AIGW_V_INSERT, &verr) != 0) {
        char *m = verr ? aigw_schema_errors_message(verr) : NULL;
        AIGW_LOG(AIGW_LOG_ERR, "oauth2: a new authorization code is invalid: %s", m ? m : "?");
        free(m);
        json_decref(verr);
        j->internal_error = 1;
    } else if (aigw_store_insert(st, ent, o, &e) != 0) {
        log_db("cannot store an authorization code", &e);
        j->internal_error = 1;
    } else {
        json_decref(j->resp);
        j->resp = json_pack("{s:s}", "code", json_string_value(json_object_get(o, "code")));
    }
    aigw_db_error_clear(&e);
    json_decref(o);
}

static void done_code(aigw_store_job_t *b)
{
    job_t *j = (job_t *)b;
    aigw_plugin_run_t *run = j->run;
    aigw_plugin_rc_t rc = authorize_respond(run, j);
    aigw_plugin_resume(run, rc);
}

static aigw_plugin_rc_t authorize_endpoint(aigw_plugin_run_t *run, oconf_t *c)
{
    job_t *j = job_new(run, c, J_CODE);
    if (!j || !(j->params = retrieve_parameters(run)) || !(j->resp = json_object())) {
        if (j)
            job_destroy(&j->base);
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    job_context(j, run, c);
    const json_t *p = j->params;
    const char *hmsg = NULL;
    const char *rtype = pstr(p, "response_type");
    if (check_https(run, c, &hmsg) != 1) {
        set_err(&j->resp, "access_denied", hmsg ? hmsg : "You must use HTTPS");
    } else if (!provision_ok(c, p)) {
        set_err(&j->resp, "invalid_provision_key", "Invalid provision_key");
    } else if (blank(pstr(p, "authenticated_userid"))) {
        set_err(&j->resp, "invalid_authenticated_userid",
                "Missing authenticated_userid parameter");
    } else {
        if (!((streq(rtype, "code") && c->en_code) || (c->en_implicit && streq(rtype, "token"))))
            set_err(&j->resp, "unsupported_response_type", "Invalid response_type");
        json_t *serr = NULL;
        if (retrieve_scope(p, c, &j->scope, &serr) != 0) {
            if (!serr) {
                job_destroy(&j->base);
                return aigw_plugin_error(run, 500, "An unexpected error occurred");
            }
            json_decref(j->resp);
            j->resp = serr;
        }
        const char *cid = pstr(p, "client_id");
        const aigw_rt_oauth2_cred_t *cl =
            cid && cid[0] ? aigw_oauth2_cred_by_client_id(run->rt->consumers, aigw_str_c(cid))
                          : NULL;
        if (cl)
            j->client_type = xstrndup(cl->client_type.p, cl->client_type.n);
        if (!cl || !cl->n_redirect_uris) {
            set_err(&j->resp, "invalid_client", "Invalid client authentication");
        } else {
            if (phas(p, "redirect_uri")) {
                const char *ru = pstr(p, "redirect_uri");
                if (uri_allowed(cl, ru)) {
                    j->redirect_uri = xstrdup(ru);
                } else {
                    set_err(&j->resp, "invalid_request",
                            "Invalid redirect_uri that does not match with any redirect_uri "
                            "created with the application");
                    j->redirect_uri = first_uri(cl);
                }
            } else {
                j->redirect_uri = first_uri(cl);
            }
            aigw_strlcpy(j->cred_id, cl->id, sizeof(j->cred_id));
        }
        const char *cmsg = NULL;
        if (retrieve_code_challenge(p, &j->challenge, &j->challenge_method, &cmsg) != 0) {
            set_err(&j->resp, "invalid_request", cmsg);
        } else if (cl && !j->challenge && requires_pkce(c, j->client_type, 0)) {
            char m[128];
            snprintf(m, sizeof(m), "code_challenge is required for %s clients", j->client_type);
            set_err(&j->resp, "invalid_request", m);
        }
        if (!has_err(j->resp)) {
            j->userid = xstrdup(pstr(p, "authenticated_userid"));
            j->kind = streq(rtype, "code") ? J_CODE : J_IMPLICIT;
            return submit(run, j, work_code, done_code);
        }
    }
    aigw_plugin_rc_t rc = authorize_respond(run, j);
    job_destroy(&j->base);
    return rc;
}

/* ---- resource access ----------------------------------------------------------------------- */

static void work_lookup(aigw_store_job_t *b, aigw_store_t *st)
{
    job_t *j = (job_t *)b;
    j->found = -1;
    if (!st)
        return;
    json_t *tok = NULL, *cred = NULL;
    aigw_db_error_t e = { 0 };
    int r = aigw_store_find(st, aigw_schema_entity("oauth2_tokens"), "access_token",
                            j->access_token, &tok, &e);
    if (r < 0) {
        log_db("cannot read a token", &e);
        goto out;
    }
    if (r == 1) {
        j->found = 0;
        goto out;
    }
    const char *svc = fk_id(tok, "service"), *cid = fk_id(tok, "credential");
    if (svc)
        aigw_strlcpy(j->tok_service, svc, sizeof(j->tok_service));
    if (cid)
        aigw_strlcpy(j->tok_cred, cid, sizeof(j->tok_cred));
    j->expires_in = json_integer_value(json_object_get(tok, "expires_in"));
    j->created_at = json_number_value(json_object_get(tok, "created_at"));
    j->tok_scope = xstrdup(pstr(tok, "scope"));
    j->tok_userid = xstrdup(pstr(tok, "authenticated_userid"));
    /* The credential's client_id finds it in the runtime (which indexes them by client_id). */
    r = cid ? aigw_store_get(st, aigw_schema_entity("oauth2_credentials"), cid, &cred, &e) : 1;
    if (r < 0) {
        log_db("cannot read an oauth2 credential", &e);
        goto out;
    }
    if (r == 0)
        j->tok_client_id = xstrdup(pstr(cred, "client_id"));
    j->found = 1;
out:
    aigw_db_error_clear(&e);
    json_decref(tok);
    json_decref(cred);
}

typedef enum { F_MISSING, F_INVALID } fail_t;

/* A failed authentication: the anonymous consumer, or 401 as Kong. */
static aigw_plugin_rc_t auth_fail(aigw_plugin_run_t *run, const oconf_t *c, fail_t why)
{
    if (c->anonymous) {
        aigw_plugin_rc_t rc = aigw_plugin_authenticate_anonymous(run, c->anonymous);
        if (rc == AIGW_PLUGIN_NEXT) {
            aigw_plugin_clear_header(run, "X-Authenticated-Scope");
            aigw_plugin_clear_header(run, "X-Authenticated-UserId");
        }
        return rc;
    }
    char realm[300], www[600];
    realm_part(c, realm, sizeof(realm));
    if (why == F_MISSING) {
        snprintf(www, sizeof(www), "Bearer%s", realm);
        return exit_json(run, 401, err_obj("invalid_request", "The access token is missing"),
                         www, 0);
    }
    snprintf(www, sizeof(www),
             "Bearer%s error=\"invalid_token\" error_description=\"" INVALID_TOKEN_DESC "\"",
             realm);
    return exit_json(run, 401, err_obj("invalid_token", INVALID_TOKEN_DESC), www, 0);
}

static aigw_plugin_rc_t lookup_result(aigw_plugin_run_t *run, job_t *j)
{
    const oconf_t *c = j->conf;
    if (j->found < 0)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    if (!j->found)
        return auth_fail(run, c, F_INVALID);
    const char *cur = run->service ? run->service->id : "";
    if (!c->global_credentials) {
        if (!j->tok_service[0]) {
            char realm[300], www[600];
            realm_part(c, realm, sizeof(realm));
            snprintf(www, sizeof(www),
                     "Bearer%s error=\"invalid_token\" error_description=\"" INVALID_TOKEN_DESC
                     "\"",
                     realm);
            return exit_json(run, 401,
                             err_obj("invalid_token",
                                     "The access token is global, but the current plugin is "
                                     "configured without 'global_credentials'"),
                             www, 0);
        }
        if (strcmp(j->tok_service, cur) != 0)
            return auth_fail(run, c, F_INVALID);
    }
    if (j->tok_service[0] && strcmp(j->tok_service, cur) != 0)
        return auth_fail(run, c, F_INVALID);
    if (j->expires_in > 0 && now_s() - j->created_at > (double)j->expires_in)
        return auth_fail(run, c, F_INVALID);
    const aigw_rt_oauth2_cred_t *cl =
        j->tok_client_id ? aigw_oauth2_cred_by_client_id(run->rt->consumers,
                                                         aigw_str_c(j->tok_client_id))
                         : NULL;
    if (!cl || strcmp(cl->id, j->tok_cred) != 0 || !cl->consumer)
        return auth_fail(run, c, F_INVALID);
    aigw_plugin_authenticate(run, cl->consumer, cl->id, cl->client_id);
    if (j->tok_scope) {
        aigw_plugin_set_header(run, "X-Authenticated-Scope", aigw_str_c(j->tok_scope));
        char *s = aigw_arena_strndup(&run->req->arena, j->tok_scope, strlen(j->tok_scope));
        run->authenticated_scope = s ? aigw_str_c(s) : AIGW_STR_NULL;
    } else {
        aigw_plugin_clear_header(run, "X-Authenticated-Scope");
    }
    if (j->tok_userid) {
        aigw_plugin_set_header(run, "X-Authenticated-UserId", aigw_str_c(j->tok_userid));
        char *s = aigw_arena_strndup(&run->req->arena, j->tok_userid, strlen(j->tok_userid));
        run->authenticated_userid = s ? aigw_str_c(s) : AIGW_STR_NULL;
    } else {
        aigw_plugin_clear_header(run, "X-Authenticated-UserId");
    }
    return AIGW_PLUGIN_NEXT;
}

static void done_lookup(aigw_store_job_t *b)
{
    job_t *j = (job_t *)b;
    aigw_plugin_run_t *run = j->run;
    aigw_plugin_rc_t rc = lookup_result(run, j);
    aigw_plugin_resume(run, rc);
}

/* Kong's parse_access_token: the token (malloc'd) or NULL; applies hide_credentials. */
static char *parse_access_token(aigw_plugin_run_t *run, const oconf_t *c)
{
    aigw_str_t h = aigw_plugin_req_header(run, c->auth_header_name);
    char *tok = NULL;
    if (h.p) {
        /* split by whitespace: exactly two parts, the first token or bearer */
        aigw_str_t parts[3];
        size_t np = 0;
        for (size_t i = 0; i < h.n && np < 3;) {
            while (i < h.n && is_space(h.p[i]))
                i++;
            size_t s = i;
            while (i < h.n && !is_space(h.p[i]))
                i++;
            if (i > s)
                parts[np++] = (aigw_str_t){ h.p + s, i - s };
        }
        if (np == 2 && (aigw_str_ieq(parts[0], AIGW_STR("token")) ||
                        aigw_str_ieq(parts[0], AIGW_STR("bearer")))) {
            tok = xstrndup(parts[1].p, parts[1].n);
            if (c->hide_credentials)
                aigw_plugin_clear_header(run, c->auth_header_name);
            return tok;
        }
        tok = xstrndup(h.p, h.n);
    } else {
        json_t *params = retrieve_parameters(run);
        tok = xstrdup(pstr(params, "access_token"));
        json_decref(params);
        if (!tok)
            return NULL;
    }
    if (c->hide_credentials) {
        aigw_plugin_drop_query_arg(run, "access_token");
        aigw_str_t ct = aigw_plugin_req_header(run, "content-type");
        if (!aigw_str_eq(run->req->method_name, AIGW_STR("GET")) && ct.n &&
            ci_contains(ct, "application/x-www-form-urlencoded"))
            aigw_plugin_drop_form_field(run, "access_token");
    }
    return tok;
}

static aigw_plugin_rc_t authenticate(aigw_plugin_run_t *run, oconf_t *c)
{
    if (c->anonymous && aigw_plugin_has_credential(run)) {
        aigw_plugin_clear_header(run, "X-Authenticated-Scope");
        aigw_plugin_clear_header(run, "X-Authenticated-UserId");
        return AIGW_PLUGIN_NEXT;
    }
    char *tok = parse_access_token(run, c);
    if (!tok || !tok[0]) {
        free(tok);
        return auth_fail(run, c, F_MISSING);
    }
    job_t *j = job_new(run, c, J_LOOKUP);
    if (!j) {
        free(tok);
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    j->access_token = tok;
    return submit(run, j, work_lookup, done_lookup);
}

/* ---- the phase ----------------------------------------------------------------------------- */

/* The path ends in suffix, or in suffix and one slash. */
static int path_ends(aigw_str_t path, const char *suffix)
{
    size_t n = strlen(suffix);
    if (path.n && path.p[path.n - 1] == '/')
        path.n--;
    return path.n >= n && memcmp(path.p + path.n - n, suffix, n) == 0;
}

static aigw_plugin_rc_t invalid_method(aigw_plugin_run_t *run, const oconf_t *c,
                                       const char *endpoint)
{
    char desc[200], realm[300], www[800];
    aigw_str_t m = run->req->method_name;
    snprintf(desc, sizeof(desc), "The HTTP method %.*s is invalid for the %s endpoint",
             (int)m.n, m.p ? m.p : "", endpoint);
    realm_part(c, realm, sizeof(realm));
    snprintf(www, sizeof(www), "Bearer%s error=\"invalid_method\" error_description=\"%s\"",
             realm, desc);
    return exit_json(run, 405, err_obj("invalid_method", desc), www, 0);
}

static aigw_plugin_rc_t access_phase(aigw_plugin_run_t *run, void *conf)
{
    oconf_t *c = conf;
    aigw_str_t path = run->req->path;
    int post = aigw_str_eq(run->req->method_name, AIGW_STR("POST"));
    if (path_ends(path, "/oauth2/token"))
        return post ? token_endpoint(run, c) : invalid_method(run, c, "token");
    if (path_ends(path, "/oauth2/authorize"))
        return post ? authorize_endpoint(run, c) : invalid_method(run, c, "authorization");
    return authenticate(run, c);
}

static int always_reads_body(const void *conf)
{
    (void)conf;
    return 1;   /* the token endpoint and access_token in a form body */
}

const aigw_plugin_def_t aigw_plugin_def_oauth2 = {
    .reads_body = always_reads_body,
    .name = "oauth2",
    .priority = 1400,
    .configure = configure,
    .free_conf = free_conf,
    .access = access_phase,
};
