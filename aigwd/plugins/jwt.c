/* aigwd/plugins/jwt.c: Kong's jwt plugin (priority 1450), reference/plugins.md "jwt".
 *
 * The token comes from the query arguments in uri_param_names, the cookies in cookie_names and
 * the headers in header_names (`\s*[Bb]earer\s+(.+)`); distinct tokens are counted. It is
 * parsed (jwt_token.c), its key claim (claims first, then the JOSE header) names the jwt
 * secret; the header's alg must be the secret's algorithm; the signature is verified with
 * the secret (HS*) or the credential's public key (others); then exp/nbf and
 * maximum_expiration. Failures answer 401 with Kong's exit JSON and WWW-Authenticate.
 *
 * aigw differences (reference/differences.md): exp/nbf are checked whenever present;
 * consumer_fallback (default true) tries the `kid` header as key and then a consumer whose
 * username is the key claim's value and who has exactly one jwt credential.
 *
 * Public keys are parsed once per distinct PEM and kept in a process-wide cache (a read-write
 * lock, bounded; freed at global_shutdown). Conf: read-only after configure.
 *
 * A token that passed is remembered per worker thread (a small direct-mapped cache keyed by
 * the plugin instance, the runtime's load generation and the whole token, compared in
 * constant time) with the credential it resolved to and its exp/nbf: the next request with
 * the same token skips decoding, JSON and the signature, but exp, nbf and
 * maximum_expiration are checked again against the clock; a token that fails them takes the
 * full path, which gives Kong's messages. A new runtime (any config change) starts afresh,
 * so a deleted credential or consumer never authenticates from the cache. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "plugins/impl.h"
#include "plugins/logrec.h"
#include "plugins/jwt_token.h"

typedef struct names {
    char **v;
    size_t n;
} names_t;

typedef struct conf {
    names_t uri_params, cookies, headers;
    char *key_claim;
    int secret_is_base64;
    int verify[2];               /* claims_to_verify in config order: 0 exp, 1 nbf */
    size_t n_verify;
    char *anonymous;
    int run_on_preflight;
    double maximum_expiration;
    int consumer_fallback;
    char *www_base;              /* WWW-Authenticate without and with error="invalid_token" */
    char *www_error;
} conf_t;

static const char *const claim_names[2] = { "exp", "nbf" };

/* ---- public key cache --------------------------------------------------------------------- */

#define KEY_CACHE_MAX 512

typedef struct key_entry {
    unsigned char digest[32];
    aigw_jwt_key_t *key;
} key_entry_t;

static pthread_rwlock_t key_lock = PTHREAD_RWLOCK_INITIALIZER;
static key_entry_t key_cache[KEY_CACHE_MAX];
static size_t key_count;

/* The parsed key for pem. *owned is set when the caller must free it (the cache was full). */
static aigw_jwt_key_t *public_key(aigw_str_t pem, int *owned)
{
    unsigned char d[32];
    unsigned int dl = 0;
    *owned = 0;
    if (EVP_Digest(pem.p, pem.n, d, &dl, EVP_sha256(), NULL) != 1)
        return NULL;
    aigw_jwt_key_t *k = NULL;
    pthread_rwlock_rdlock(&key_lock);
    for (size_t i = 0; i < key_count; i++)
        if (memcmp(key_cache[i].digest, d, 32) == 0) {
            k = key_cache[i].key;
            break;
        }
    pthread_rwlock_unlock(&key_lock);
    if (k)
        return k;
    aigw_jwt_key_t *fresh = aigw_jwt_key_pem(pem.p, pem.n);
    if (!fresh)
        return NULL;
    pthread_rwlock_wrlock(&key_lock);
    for (size_t i = 0; i < key_count; i++)
        if (memcmp(key_cache[i].digest, d, 32) == 0) {
            k = key_cache[i].key;
            break;
        }
    if (!k && key_count < KEY_CACHE_MAX) {
        memcpy(key_cache[key_count].digest, d, 32);
        key_cache[key_count++].key = fresh;
        k = fresh;
        fresh = NULL;
    }
    pthread_rwlock_unlock(&key_lock);
    if (!k) {
        *owned = 1;
        return fresh;
    }
    aigw_jwt_key_free(fresh);   /* another worker cached it meanwhile, or NULL */
    return k;
}

static void global_shutdown(void)
{
    pthread_rwlock_wrlock(&key_lock);
    for (size_t i = 0; i < key_count; i++)
        aigw_jwt_key_free(key_cache[i].key);
    key_count = 0;
    pthread_rwlock_unlock(&key_lock);
}

/* ---- configure ---------------------------------------------------------------------------- */

static void names_free(names_t *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
}

static void conf_free(void *p)
{
    conf_t *c = p;
    if (!c)
        return;
    names_free(&c->uri_params);
    names_free(&c->cookies);
    names_free(&c->headers);
    free(c->key_claim);
    free(c->anonymous);
    free(c->www_base);
    free(c->www_error);
    free(c);
}

static int names_get(const json_t *cfg, const char *field, names_t *out)
{
    const json_t *a = json_object_get(cfg, field);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (!n)
        return 0;
    if (!(out->v = calloc(n, sizeof(char *))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s)
            continue;
        if (!(out->v[out->n] = strdup(s)))
            return -1;
        out->n++;
    }
    return 0;
}

static char *opt_str(const json_t *cfg, const char *field)
{
    const char *s = json_string_value(json_object_get(cfg, field));
    return s ? strdup(s) : NULL;
}

static char *concat(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static void *configure(const json_t *cfg, char *err, size_t errlen)
{
    conf_t *c = calloc(1, sizeof(*c));
    if (!c)
        goto nomem;
    if (names_get(cfg, "uri_param_names", &c->uri_params) != 0 ||
        names_get(cfg, "cookie_names", &c->cookies) != 0 ||
        names_get(cfg, "header_names", &c->headers) != 0)
        goto nomem;
    const char *kc = json_string_value(json_object_get(cfg, "key_claim_name"));
    if (!(c->key_claim = strdup(kc ? kc : "iss")))
        goto nomem;
    c->secret_is_base64 = json_is_true(json_object_get(cfg, "secret_is_base64"));
    const json_t *ctv = json_object_get(cfg, "claims_to_verify");
    size_t i;
    const json_t *v;
    json_array_foreach(ctv, i, v) {
        const char *s = json_string_value(v);
        for (int k = 0; s && k < 2; k++) {
            int dup = 0;
            for (size_t j = 0; j < c->n_verify; j++)
                dup |= c->verify[j] == k;
            if (!dup && strcmp(s, claim_names[k]) == 0)
                c->verify[c->n_verify++] = k;
        }
    }
    const json_t *anon = json_object_get(cfg, "anonymous");
    if (json_is_string(anon) && !(c->anonymous = strdup(json_string_value(anon))))
        goto nomem;
    const json_t *rop = json_object_get(cfg, "run_on_preflight");
    c->run_on_preflight = rop ? json_is_true(rop) : 1;
    c->maximum_expiration = json_number_value(json_object_get(cfg, "maximum_expiration"));
    const json_t *fb = json_object_get(cfg, "consumer_fallback");
    c->consumer_fallback = fb ? json_is_true(fb) : 1;
    char *realm = opt_str(cfg, "realm");
    if (json_is_string(json_object_get(cfg, "realm")) && !realm)
        goto nomem;
    c->www_base = realm ? concat("Bearer realm=\"", realm, "\"") : strdup("Bearer");
    free(realm);
    if (!c->www_base || !(c->www_error = concat(c->www_base, " error=\"invalid_token\"", "")))
        goto nomem;
    return c;
nomem:
    conf_free(c);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

/* ---- token retrieval ---------------------------------------------------------------------- */

typedef struct tokens {
    aigw_str_t first;
    int n;               /* 0, 1 or 2 (= several distinct) */
    int flag;            /* a query argument without '=' (Kong: the boolean true) */
} tokens_t;

static void add_token(tokens_t *t, aigw_str_t tok)
{
    if (tok.n == 0)
        return;
    if (t->n == 0) {
        t->first = tok;
        t->n = 1;
    } else if (!aigw_str_eq(t->first, tok)) {
        t->n = 2;
    }
}

/* Percent-decoding with '+' as space, as ngx.req.get_uri_args, into the request arena. */
static aigw_str_t arg_decode(aigw_plugin_run_t *run, const char *p, size_t n)
{
    char *out = aigw_arena_alloc(&run->req->arena, n + 1);
    if (!out)
        return AIGW_STR_NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (p[i] == '%' && i + 2 < n && (h = aigw_hex_digit((unsigned char)p[i + 1])) >= 0 &&
            (l = aigw_hex_digit((unsigned char)p[i + 2])) >= 0) {
            out[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[k++] = p[i] == '+' ? ' ' : p[i];
        }
    }
    out[k] = '\0';
    return (aigw_str_t){ out, k };
}

static void from_query(aigw_plugin_run_t *run, const conf_t *c, tokens_t *t)
{
    if (!c->uri_params.n)
        return;
    aigw_str_t q = run->query_set ? run->query : run->req->query;
    const char *p = q.p, *end = q.p + q.n;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p) {
            const char *eq = memchr(p, '=', (size_t)(e - p));
            aigw_str_t key = arg_decode(run, p, (size_t)((eq ? eq : e) - p));
            for (size_t i = 0; key.p && i < c->uri_params.n; i++) {
                if (!aigw_str_eq(key, aigw_str_c(c->uri_params.v[i])))
                    continue;
                if (!eq)
                    t->flag = 1;
                else
                    add_token(t, arg_decode(run, eq + 1, (size_t)(e - eq - 1)));
                break;
            }
        }
        p = amp ? amp + 1 : end;
    }
}

/* nginx's $cookie_<name>: the first `name=value` pair (name compared case-insensitively) of
 * the Cookie headers, pairs separated by ';' or ','. */
static aigw_str_t cookie_value(const aigw_plugin_run_t *run, const char *name)
{
    size_t nl = strlen(name);
    for (size_t h = 0; h < run->req->n_headers; h++) {
        const aigw_http_header_t *hd = &run->req->headers[h];
        if (!aigw_str_ieq(hd->name, AIGW_STR("cookie")))
            continue;
        const char *s = hd->value.p, *end = hd->value.p + hd->value.n;
        while (s < end) {
            if ((size_t)(end - s) >= nl && aigw_str_ieq((aigw_str_t){ s, nl },
                                                        (aigw_str_t){ name, nl })) {
                const char *v = s + nl;
                while (v < end && *v == ' ')
                    v++;
                if (v < end && *v == '=') {
                    v++;
                    while (v < end && *v == ' ')
                        v++;
                    const char *last = v;
                    while (last < end && *last != ';')
                        last++;
                    return (aigw_str_t){ v, (size_t)(last - v) };
                }
            }
            while (s < end) {
                char ch = *s++;
                if (ch == ';' || ch == ',')
                    break;
            }
            while (s < end && *s == ' ')
                s++;
        }
    }
    return AIGW_STR_NULL;
}

static int pcre_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* The capture of `\s*[Bb]earer\s+(.+)` (unanchored, first match), or {NULL,0}. */
static aigw_str_t bearer(aigw_str_t v)
{
    for (size_t j = 0; j + 6 <= v.n; j++) {
        if ((v.p[j] != 'B' && v.p[j] != 'b') || memcmp(v.p + j + 1, "earer", 5) != 0)
            continue;
        size_t k = j + 6, ws = 0;
        while (k < v.n && pcre_space(v.p[k]))
            k++, ws++;
        if (!ws)
            continue;
        size_t from = k < v.n ? k : (ws >= 2 ? v.n - 1 : v.n);
        if (from == v.n)
            continue;
        size_t to = from;
        while (to < v.n && v.p[to] != '\n')   /* '.' stops at a newline */
            to++;
        if (to == from)
            continue;
        return (aigw_str_t){ v.p + from, to - from };
    }
    return AIGW_STR_NULL;
}

static void retrieve(aigw_plugin_run_t *run, const conf_t *c, tokens_t *t)
{
    from_query(run, c, t);
    for (size_t i = 0; i < c->cookies.n; i++)
        add_token(t, cookie_value(run, c->cookies.v[i]));
    for (size_t i = 0; i < c->headers.n; i++) {
        aigw_str_t h = aigw_plugin_req_header(run, c->headers.v[i]);
        if (h.p)
            add_token(t, bearer(h));
    }
}

/* ---- verified-token cache (per worker thread) --------------------------------------------- */

#define TC_SLOTS 512              /* power of two */
#define TC_MAX_TOKEN 4096         /* longer tokens are verified every time */

typedef struct verified {
    const aigw_rt_jwt_cred_t *cred;
    double exp, nbf;
    unsigned char has_exp, has_nbf;
} verified_t;

typedef struct tc_slot {
    const void *conf;
    uint64_t gen;
    char *token;                  /* malloc'ed; NULL: empty slot */
    size_t n;
    verified_t v;
} tc_slot_t;

typedef struct tcache {
    uint64_t seed;
    tc_slot_t slot[TC_SLOTS];
} tcache_t;

static _Thread_local tcache_t *t_cache;

/* The slot: a seeded hash of the instance, the length and the token's last 32 bytes (the
 * signature's, random for real tokens). A crafted collision only evicts. */
static size_t tc_index(const tcache_t *tc, const void *conf, aigw_str_t tok)
{
    uint64_t h = tc->seed ^ (uint64_t)(uintptr_t)conf ^ ((uint64_t)tok.n << 48);
    size_t from = tok.n > 32 ? tok.n - 32 : 0;
    for (size_t i = from; i < tok.n; i++) {
        h ^= (unsigned char)tok.p[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 32;
    return (size_t)h & (TC_SLOTS - 1);
}

/* Claims that are time-dependent, checked as authenticate() does. 0: still valid. */
static int tc_expired(const conf_t *c, const verified_t *v, double now)
{
    if (v->has_exp && v->exp <= now)
        return 1;
    if (v->has_nbf && v->nbf > now)
        return 1;
    return c->maximum_expiration > 0 && v->exp - now > c->maximum_expiration;
}

static const aigw_rt_jwt_cred_t *tc_lookup(const aigw_plugin_run_t *run, const conf_t *c,
                                           aigw_str_t tok)
{
    tcache_t *tc = t_cache;
    if (!tc || !run->rt || tok.n > TC_MAX_TOKEN)
        return NULL;
    const tc_slot_t *e = &tc->slot[tc_index(tc, c, tok)];
    if (!e->token || e->conf != (const void *)c || e->gen != run->rt->gen || e->n != tok.n ||
        CRYPTO_memcmp(e->token, tok.p, tok.n) != 0)
        return NULL;
    if (tc_expired(c, &e->v, (double)time(NULL)))
        return NULL;
    return e->v.cred;
}

static void tc_store(const aigw_plugin_run_t *run, const conf_t *c, aigw_str_t tok,
                     const verified_t *v)
{
    if (!run->rt || tok.n > TC_MAX_TOKEN)
        return;
    tcache_t *tc = t_cache;
    if (!tc) {
        if (!(tc = calloc(1, sizeof(*tc))))
            return;
        if (RAND_bytes((unsigned char *)&tc->seed, sizeof(tc->seed)) != 1)
            tc->seed = (uint64_t)(uintptr_t)tc ^ 0x9e3779b97f4a7c15ULL;
        t_cache = tc;
    }
    tc_slot_t *e = &tc->slot[tc_index(tc, c, tok)];
    char *copy = e->token && e->n >= tok.n ? e->token : realloc(e->token, tok.n ? tok.n : 1);
    if (!copy)
        return;   /* the old entry (if any) stays as it was */
    memcpy(copy, tok.p, tok.n);
    e->token = copy;
    e->n = tok.n;
    e->conf = c;
    e->gen = run->rt->gen;
    e->v = *v;
}

static void worker_close(uv_loop_t *loop)
{
    (void)loop;
    tcache_t *tc = t_cache;
    if (!tc)
        return;
    t_cache = NULL;
    for (size_t i = 0; i < TC_SLOTS; i++) {
        if (tc->slot[i].token)
            OPENSSL_cleanse(tc->slot[i].token, tc->slot[i].n);
        free(tc->slot[i].token);
    }
    free(tc);
}

/* ---- authentication ----------------------------------------------------------------------- */

typedef enum { AUTH_OK, AUTH_FAIL, AUTH_ERROR } auth_rc_t;

typedef struct failure {
    const char *www;      /* WWW-Authenticate */
    char message[160];    /* exit JSON {"message":...} unless errors or long */
    char *long_message;   /* malloc'ed when the message does not fit */
    json_t *errors;       /* owned: the claim errors map */
    int claim_failed;     /* set with the first claim error (even if errors could not be built) */
} failure_t;

/* The message is a, b and c joined. */
static auth_rc_t fail_msg(failure_t *f, const char *www, const char *a, const char *b,
                          const char *c)
{
    f->www = www;
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *m = f->message;
    if (n > sizeof(f->message) && (f->long_message = malloc(n)) != NULL)
        m = f->long_message;
    snprintf(m, m == f->message ? sizeof(f->message) : n, "%s%s%s", a, b, c);
    return AUTH_FAIL;
}

static void add_error(failure_t *f, const char *claim, const char *msg)
{
    f->claim_failed = 1;
    if (!f->errors)
        f->errors = json_object();
    if (f->errors && !json_object_get(f->errors, claim))
        json_object_set_new(f->errors, claim, json_string(msg));
}

static void check_claim(const aigw_jwt_t *t, int which, double now, failure_t *f)
{
    const char *name = claim_names[which];
    const json_t *v = json_object_get(t->claims, name);
    if (!json_is_number(v)) {
        add_error(f, name, "must be a number");
        return;
    }
    double x = json_number_value(v);
    if (which == 0 && x <= now)
        add_error(f, name, "token expired");
    else if (which == 1 && x > now)
        add_error(f, name, "token not valid yet");
}

static const aigw_rt_jwt_cred_t *find_credential(const aigw_plugin_run_t *run, const conf_t *c,
                                                 const aigw_jwt_t *t, aigw_str_t key)
{
    const aigw_consumers_t *cs = run->rt ? run->rt->consumers : NULL;
    const aigw_rt_jwt_cred_t *cred = aigw_jwt_cred_by_key(cs, key);
    if (cred || !c->consumer_fallback)
        return cred;
    const json_t *kid = json_object_get(t->header, "kid");
    if (json_is_string(kid) && json_string_length(kid) > 0 &&
        (cred = aigw_jwt_cred_by_key(cs, (aigw_str_t){ json_string_value(kid),
                                                       json_string_length(kid) })) != NULL)
        return cred;
    const aigw_rt_consumer_t *cons = aigw_consumer_by_username(cs, key);
    if (cons && cons->n_jwt == 1)
        return cons->first_jwt;
    return NULL;
}

/* On AUTH_OK, *ok holds what tc_store keeps. */
static auth_rc_t authenticate(aigw_plugin_run_t *run, const conf_t *c, aigw_str_t token,
                              failure_t *f, verified_t *ok)
{
    aigw_jwt_t t;
    aigw_jwt_key_t *key = NULL;
    int key_owned = 0;
    auth_rc_t rc = AUTH_FAIL;
    aigw_jwt_err_t perr = aigw_jwt_parse(token.p, token.n, &t);
    if (perr == AIGW_JWT_E_NOMEM)
        return AUTH_ERROR;
    if (perr != AIGW_JWT_OK)
        return fail_msg(f, c->www_error, "Bad token; ", aigw_jwt_strerror(perr), "");

    const json_t *kv = json_object_get(t.claims, c->key_claim);
    if (!kv || json_is_false(kv))
        kv = json_object_get(t.header, c->key_claim);
    if (!kv || json_is_false(kv)) {
        fail_msg(f, c->www_error, "No mandatory '", c->key_claim, "' in claims");
        goto out;
    }
    if (json_is_string(kv) && json_string_length(kv) == 0) {
        fail_msg(f, c->www_error, "Invalid '", c->key_claim, "' in claims");
        goto out;
    }
    aigw_str_t keyv = json_is_string(kv)
                          ? (aigw_str_t){ json_string_value(kv), json_string_length(kv) }
                          : AIGW_STR_NULL;
    const aigw_rt_jwt_cred_t *cred = keyv.p ? find_credential(run, c, &t, keyv) : NULL;
    if (!cred || !cred->consumer) {
        fail_msg(f, c->www_error, "No credentials found for given '", c->key_claim, "'");
        goto out;
    }
    aigw_jwt_alg_t alg = aigw_jwt_alg_parse(cred->algorithm.p, cred->algorithm.n);
    if (alg == AIGW_JWT_ALG_NONE || t.alg != alg) {
        fail_msg(f, c->www_error, "Invalid algorithm", "", "");
        goto out;
    }
    if (aigw_jwt_alg_is_hmac(alg)) {
        if (!cred->secret.p) {
            fail_msg(f, c->www_error, "Invalid key/secret", "", "");
            goto out;
        }
        if (c->secret_is_base64) {
            unsigned char *buf = malloc(cred->secret.n / 4 * 3 + 4);
            size_t len = 0;
            if (!buf) {
                rc = AUTH_ERROR;
                goto out;
            }
            if (aigw_jwt_b64url_decode(cred->secret.p, cred->secret.n, buf, &len) != 0) {
                free(buf);
                fail_msg(f, c->www_error, "Invalid key/secret", "", "");
                goto out;
            }
            key = aigw_jwt_key_hmac(buf, len);
            OPENSSL_cleanse(buf, len);
            free(buf);
        } else {
            key = aigw_jwt_key_hmac((const unsigned char *)cred->secret.p, cred->secret.n);
        }
        key_owned = 1;
        if (!key) {
            rc = AUTH_ERROR;
            goto out;
        }
    } else {
        if (!cred->rsa_public_key.n) {
            fail_msg(f, c->www_error, "Invalid key/secret", "", "");
            goto out;
        }
        key = public_key(cred->rsa_public_key, &key_owned);
        if (!key) {
            /* Kong: assert(pkey, "Consumer Public Key is Invalid"), a 500. */
            AIGW_LOG(AIGW_LOG_ERR, "jwt: the public key of jwt credential %s does not parse",
                     cred->id);
            rc = AUTH_ERROR;
            goto out;
        }
    }
    if (!aigw_jwt_verify(alg, key, t.signing_input, t.signing_input_len, t.sig, t.sig_len)) {
        fail_msg(f, c->www_error, "Invalid signature", "", "");
        goto out;
    }

    /* Registered claims: the listed ones are mandatory (Kong); aigw checks exp and nbf
     * whenever present. */
    double now = (double)time(NULL);
    int listed[2] = { 0, 0 };
    for (size_t i = 0; i < c->n_verify; i++) {
        listed[c->verify[i]] = 1;
        check_claim(&t, c->verify[i], now, f);
    }
    for (int k = 0; k < 2; k++)
        if (!listed[k] && json_object_get(t.claims, claim_names[k]))
            check_claim(&t, k, now, f);
    if (!f->claim_failed && c->maximum_expiration > 0) {
        const json_t *exp = json_object_get(t.claims, "exp");
        if (!json_is_number(exp) || json_number_value(exp) - now > c->maximum_expiration)
            add_error(f, "exp", "exceeds maximum allowed expiration");
    }
    if (f->claim_failed) {
        f->www = c->www_error;
        rc = f->errors ? AUTH_FAIL : AUTH_ERROR;
        goto out;
    }

    aigw_plugin_authenticate(run, cred->consumer, cred->id, cred->key);
    *ok = (verified_t){ .cred = cred };
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(t.claims, claim_names[k]);
        if (!v)
            continue;
        /* present means checked above, so a number */
        double x = json_number_value(v);
        if (k == 0)
            ok->has_exp = 1, ok->exp = x;
        else
            ok->has_nbf = 1, ok->nbf = x;
    }
    rc = AUTH_OK;
out:
    if (key_owned)
        aigw_jwt_key_free(key);
    aigw_jwt_clear(&t);
    return rc;
}

static aigw_plugin_rc_t access_phase(aigw_plugin_run_t *run, void *pconf)
{
    const conf_t *c = pconf;
    if (!c->run_on_preflight && aigw_str_eq(run->req->method_name, AIGW_STR("OPTIONS")))
        return AIGW_PLUGIN_NEXT;
    if (c->anonymous && aigw_plugin_has_credential(run))
        return AIGW_PLUGIN_NEXT;

    failure_t f = { 0 };
    tokens_t t = { 0 };
    auth_rc_t rc;
    retrieve(run, c, &t);
    if (t.n + t.flag) {
        /* where tokens come from never reaches a log record */
        for (size_t i = 0; i < c->uri_params.n; i++)
            aigw_plugin_log_mask_query(run, c->uri_params.v[i]);
        for (size_t i = 0; i < c->headers.n; i++)
            aigw_plugin_log_mask_header(run, c->headers.v[i]);
    }
    int n = t.n + t.flag;
    if (n == 0)
        rc = fail_msg(&f, c->www_base, "Unauthorized", "", "");
    else if (n > 1)
        rc = fail_msg(&f, c->www_error, "Multiple tokens provided", "", "");
    else if (t.flag)
        rc = fail_msg(&f, c->www_error, "Unrecognizable token", "", "");
    else {
        const aigw_rt_jwt_cred_t *cred = tc_lookup(run, c, t.first);
        if (cred) {
            aigw_plugin_authenticate(run, cred->consumer, cred->id, cred->key);
            return AIGW_PLUGIN_NEXT;
        }
        verified_t ok;
        rc = authenticate(run, c, t.first, &f, &ok);
        if (rc == AUTH_OK)
            tc_store(run, c, t.first, &ok);
    }

    if (rc == AUTH_OK)
        return AIGW_PLUGIN_NEXT;
    if (rc == AUTH_ERROR) {
        free(f.long_message);
        json_decref(f.errors);
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    if (c->anonymous) {
        free(f.long_message);
        json_decref(f.errors);
        return aigw_plugin_authenticate_anonymous(run, c->anonymous);
    }
    aigw_plugin_resp_set_header(run, "WWW-Authenticate", aigw_str_c(f.www));
    if (!f.errors) {
        aigw_plugin_rc_t mrc =
            aigw_plugin_exit_message(run, 401, f.long_message ? f.long_message : f.message);
        free(f.long_message);
        return mrc;
    }
    free(f.long_message);
    char *body = json_dumps(f.errors, JSON_COMPACT);
    json_decref(f.errors);
    if (!body)
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    aigw_plugin_rc_t prc = aigw_plugin_exit(run, 401, aigw_str_c(body),
                                            AIGW_STR("application/json; charset=utf-8"));
    free(body);
    return prc;
}

const aigw_plugin_def_t aigw_plugin_def_jwt = {
    .name = "jwt",
    .priority = 1450,
    .configure = configure,
    .free_conf = conf_free,
    .access = access_phase,
    .global_shutdown = global_shutdown,
    .worker_close = worker_close,
};
