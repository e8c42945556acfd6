/* aigwd/plugins/basic_auth.c: Kong's basic-auth (priority 1100, reference/plugins.md
 * "basic-auth").
 *
 * Credentials come from `Proxy-Authorization`, then `Authorization` (Kong's order: the second
 * is read only when the first gives no known username), in the form `Basic base64(user:pass)`
 * (the password may contain ':'). Every failure answers 401 error JSON `Unauthorized` with
 * `WWW-Authenticate: Basic realm="<realm>"`, or, with `anonymous`, sets that consumer.
 * hide_credentials removes each header the plugin read.
 *
 * aigw difference: passwords are stored as Argon2id hashes (tens of ms per check). So:
 *  - the check runs on libuv's thread pool (uv_queue_work), never on the worker's loop; the
 *    request waits asynchronously (AIGW_PLUGIN_ASYNC) and a client that leaves meanwhile
 *    only orphans the work item, which its after-work callback then frees;
 *  - requests of one worker bringing the same credential and password while its check is
 *    under way wait for that check instead of hashing again;
 *  - a success is remembered for CACHE_TTL_MS in a small per-worker (thread-local) cache
 *    whose entries are HMAC-SHA256(per-process random key, credential id, stored hash,
 *    password): another password, or the same credential with a new hash, never hits; a
 *    failure is never cached;
 *  - failed checks are counted per credential, process-wide: after FAIL_MAX failures within
 *    FAIL_WINDOW_MS, every attempt for that credential answers 401 without hashing for
 *    LOCK_MS (a password remembered by the success cache still passes, so a lock-out by a
 *    guesser does not cut off a client that is already logged in). */
#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "plugins/impl.h"

#define CACHE_WAYS 4
#define CACHE_SETS 64                 /* 256 entries per worker */
#define CACHE_TTL_MS 60000u
#define FAIL_SLOTS 1024
#define FAIL_PROBE 8
#define FAIL_MAX 10u
#define FAIL_WINDOW_MS 10000u
#define LOCK_MS 5000u

typedef struct conf {
    char *anonymous;       /* NULL when unset */
    int hide;
    char *www;             /* Basic realm="<realm>" */
} conf_t;

static void conf_free(void *p)
{
    conf_t *k = p;
    if (!k)
        return;
    free(k->anonymous);
    free(k->www);
    free(k);
}

static void *configure(const json_t *c, char *err, size_t errlen)
{
    conf_t *k = calloc(1, sizeof(*k));
    if (!k)
        goto oom;
    const char *anon = json_string_value(json_object_get(c, "anonymous"));
    if (anon && !(k->anonymous = strdup(anon)))
        goto oom;
    k->hide = json_is_true(json_object_get(c, "hide_credentials"));
    const char *realm = json_string_value(json_object_get(c, "realm"));
    if (!realm)
        realm = "service";
    size_t len = strlen(realm) + sizeof("Basic realm=\"\"");
    if (!(k->www = malloc(len)))
        goto oom;
    snprintf(k->www, len, "Basic realm=\"%s\"", realm);
    return k;
oom:
    conf_free(k);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* ---- the success cache (per worker) ----------------------------------------------------- */

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static unsigned char mac_key[32];
static int mac_key_ok;

static void mac_key_init(void)
{
    mac_key_ok = RAND_bytes(mac_key, sizeof(mac_key)) == 1;
    if (!mac_key_ok)
        AIGW_LOG(AIGW_LOG_ERR, "basic-auth: no random key for the credential cache; every "
                               "login is checked against its hash");
}

typedef struct centry {
    unsigned char mac[32];
    uint64_t expires;      /* 0: empty */
} centry_t;

static _Thread_local centry_t cache[CACHE_SETS][CACHE_WAYS];

/* HMAC(key, len(id) id len(hash) hash password) into out; 0, or -1 without a key. */
static int cred_mac(const aigw_rt_basicauth_cred_t *cred, aigw_str_t pass, unsigned char out[32])
{
    pthread_once(&key_once, mac_key_init);
    if (!mac_key_ok)
        return -1;
    size_t idl = strlen(cred->id);
    size_t n = 16 + idl + cred->password.n + pass.n;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf)
        return -1;
    size_t k = 0;
    uint64_t l1 = idl, l2 = cred->password.n;
    memcpy(buf + k, &l1, 8);
    k += 8;
    memcpy(buf + k, cred->id, idl);
    k += idl;
    memcpy(buf + k, &l2, 8);
    k += 8;
    if (l2)
        memcpy(buf + k, cred->password.p, l2);
    k += l2;
    if (pass.n)
        memcpy(buf + k, pass.p, pass.n);
    k += pass.n;
    unsigned int outl = 0;
    const unsigned char *r = HMAC(EVP_sha256(), mac_key, sizeof(mac_key), buf, k, out, &outl);
    OPENSSL_cleanse(buf, n);
    free(buf);
    return r && outl == 32 ? 0 : -1;
}

static size_t cache_set(const unsigned char mac[32])
{
    return (size_t)mac[0] % CACHE_SETS;
}

static int cache_hit(const unsigned char mac[32])
{
    uint64_t now = now_ms();
    centry_t *set = cache[cache_set(mac)];
    for (size_t i = 0; i < CACHE_WAYS; i++)
        if (set[i].expires > now && CRYPTO_memcmp(set[i].mac, mac, 32) == 0)
            return 1;
    return 0;
}

static void cache_put(const unsigned char mac[32])
{
    uint64_t now = now_ms();
    centry_t *set = cache[cache_set(mac)];
    size_t victim = 0;
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        if (set[i].expires > now && CRYPTO_memcmp(set[i].mac, mac, 32) == 0) {
            victim = i;
            break;
        }
        if (set[i].expires < set[victim].expires)
            victim = i;
    }
    memcpy(set[victim].mac, mac, 32);
    set[victim].expires = now + CACHE_TTL_MS;
}

/* ---- failed attempts (process-wide) ----------------------------------------------------- */

typedef struct fentry {
    char id[37];           /* "" when free */
    uint64_t window_start;
    unsigned count;
    uint64_t locked_until;
} fentry_t;

static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static fentry_t fails[FAIL_SLOTS];

static size_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211u;
    return (size_t)(h % FAIL_SLOTS);
}

/* The entry of id (mu held); with create, takes a free or the stalest slot of its probe. */
static fentry_t *fail_slot(const char *id, int create)
{
    size_t h = id_hash(id);
    fentry_t *victim = NULL;
    for (size_t i = 0; i < FAIL_PROBE; i++) {
        fentry_t *e = &fails[(h + i) % FAIL_SLOTS];
        if (strcmp(e->id, id) == 0)
            return e;
        if (!victim || (victim->id[0] && (!e->id[0] || e->window_start < victim->window_start)))
            victim = e;
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    aigw_strlcpy(victim->id, id, sizeof(victim->id));
    return victim;
}

static int fail_locked(const char *id)
{
    pthread_mutex_lock(&fail_mu);
    fentry_t *e = fail_slot(id, 0);
    int locked = e && e->locked_until > now_ms();
    pthread_mutex_unlock(&fail_mu);
    return locked;
}

static void fail_record(const char *id)
{
    uint64_t now = now_ms();
    int locked = 0;
    pthread_mutex_lock(&fail_mu);
    fentry_t *e = fail_slot(id, 1);
    if (now - e->window_start > FAIL_WINDOW_MS) {
        e->window_start = now;
        e->count = 0;
    }
    if (++e->count >= FAIL_MAX) {
        e->locked_until = now + LOCK_MS;
        e->window_start = now;
        e->count = 0;
        locked = 1;
    }
    pthread_mutex_unlock(&fail_mu);
    if (locked)
        AIGW_LOG(AIGW_LOG_WARN, "basic-auth: %u failed logins for credential %s within %u s: "
                                "its logins are refused without a check for %u s",
                 FAIL_MAX, id, FAIL_WINDOW_MS / 1000, LOCK_MS / 1000);
}

static void fail_clear(const char *id)
{
    pthread_mutex_lock(&fail_mu);
    fentry_t *e = fail_slot(id, 0);
    if (e)
        memset(e, 0, sizeof(*e));
    pthread_mutex_unlock(&fail_mu);
}

/* ---- reading the header ----------------------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* nginx's base64 decoding: the text up to the first '=' (padding optional, anything after
 * it ignored), standard alphabet only, not 4k+1 characters long. Into the arena, NUL
 * terminated; {NULL,0} when invalid. */
static aigw_str_t b64_decode(aigw_plugin_run_t *run, aigw_str_t in)
{
    size_t len = 0;
    while (len < in.n && in.p[len] != '=') {
        if (b64_val((unsigned char)in.p[len]) < 0)
            return AIGW_STR_NULL;
        len++;
    }
    if (len % 4 == 1)
        return AIGW_STR_NULL;
    size_t padded = (len + 3) / 4 * 4;
    char *src = aigw_arena_alloc(&run->req->arena, padded + 1);
    unsigned char *out = aigw_arena_alloc(&run->req->arena, padded / 4 * 3 + 1);
    if (!src || !out || padded > 0x7fffffff)
        return AIGW_STR_NULL;
    memcpy(src, in.p, len);
    memset(src + len, '=', padded - len);
    src[padded] = '\0';
    size_t outn = 0;
    if (padded) {
        int r = EVP_DecodeBlock(out, (const unsigned char *)src, (int)padded);
        if (r < 0)
            return AIGW_STR_NULL;
        /* EVP_DecodeBlock counts the padding as zero bytes */
        outn = len / 4 * 3 + (len % 4 == 2 ? 1 : len % 4 == 3 ? 2 : 0);
    }
    out[outn] = '\0';
    return (aigw_str_t){ (const char *)out, outn };
}

/* Kong's `\s*[Bb]asic\s*(.+)` (unanchored) then `([^:]+):(.*)` on the decoded text. Clears
 * the header with hide_credentials. 1 with user and pass set, else 0. */
static int retrieve(aigw_plugin_run_t *run, const conf_t *k, const char *hname, aigw_str_t *user,
                    aigw_str_t *pass)
{
    aigw_str_t h = aigw_plugin_req_header(run, hname);
    int ok = 0;
    if (h.p) {
        aigw_str_t cap = AIGW_STR_NULL;
        for (size_t i = 0; i + 5 <= h.n && !cap.p; i++) {
            if ((h.p[i] != 'B' && h.p[i] != 'b') || memcmp(h.p + i + 1, "asic", 4) != 0)
                continue;
            size_t j = i + 5, e;
            while (j < h.n && is_space(h.p[j]))
                j++;
            if (j == h.n && j > i + 5 && h.p[j - 1] != '\n')
                j--;                                    /* (.+) takes the last blank back */
            for (e = j; e < h.n && h.p[e] != '\n'; e++)
                ;
            if (e > j)
                cap = (aigw_str_t){ h.p + j, e - j };
        }
        aigw_str_t dec = cap.p ? b64_decode(run, cap) : AIGW_STR_NULL;
        if (dec.p) {
            size_t p = 0;
            while (p < dec.n && dec.p[p] == ':')
                p++;
            const char *colon = p < dec.n ? memchr(dec.p + p, ':', dec.n - p) : NULL;
            if (colon) {
                const char *ps = colon + 1, *end = dec.p + dec.n;
                const char *nl = memchr(ps, '\n', (size_t)(end - ps));
                *user = (aigw_str_t){ dec.p + p, (size_t)(colon - dec.p - p) };
                *pass = (aigw_str_t){ ps, (size_t)((nl ? nl : end) - ps) };
                ok = 1;
            } else {
                AIGW_LOG(AIGW_LOG_DEBUG, "basic-auth: header has unrecognized format");
            }
        }
    }
    if (k->hide)
        aigw_plugin_clear_header(run, hname);
    return ok;
}

/* ---- verification ----------------------------------------------------------------------- */

/* A request waiting for a check. */
typedef struct waiter {
    struct waiter *next;
    aigw_plugin_run_t *run;                 /* NULL once the request went away */
    const conf_t *conf;                     /* valid only while run is */
    const aigw_rt_basicauth_cred_t *cred;   /* valid only while run is */
} waiter_t;

/* One Argon2id check on the thread pool; requests of this worker that bring the same
 * credential and password meanwhile wait for it instead of hashing again. */
typedef struct job {
    uv_work_t w;
    struct job *next;                       /* this worker's checks under way */
    waiter_t *waiters;
    char cred_id[37];
    unsigned char mac[32];
    int have_mac;
    int ok;
    char *encoded;
    char *password;
    size_t pwlen;
} job_t;

static _Thread_local job_t *jobs;

static void job_free(job_t *j)
{
    if (!j)
        return;
    while (j->waiters) {
        waiter_t *x = j->waiters;
        j->waiters = x->next;
        free(x);
    }
    if (j->password) {
        OPENSSL_cleanse(j->password, j->pwlen);
        free(j->password);
    }
    free(j->encoded);
    free(j);
}

static aigw_plugin_rc_t fail(aigw_plugin_run_t *run, const conf_t *k)
{
    if (k->anonymous)
        return aigw_plugin_authenticate_anonymous(run, k->anonymous);
    aigw_plugin_resp_set_header(run, "WWW-Authenticate", aigw_str_c(k->www));
    return aigw_plugin_error(run, 401, "Unauthorized");
}

static aigw_plugin_rc_t succeed(aigw_plugin_run_t *run, const aigw_rt_basicauth_cred_t *cred)
{
    aigw_plugin_authenticate(run, cred->consumer, cred->id, cred->username);
    return AIGW_PLUGIN_NEXT;
}

static void on_work(uv_work_t *w)
{
    job_t *j = w->data;
    j->ok = argon2id_verify(j->encoded, j->password, j->pwlen) == ARGON2_OK;
    OPENSSL_cleanse(j->password, j->pwlen);
}

static void on_cancel(void *ud)
{
    waiter_t *x = ud;
    x->run = NULL;
}

static void on_after_work(uv_work_t *w, int status)
{
    job_t *j = w->data;
    for (job_t **pp = &jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    int ok = status == 0 && j->ok;
    if (ok) {
        if (j->have_mac)
            cache_put(j->mac);
        fail_clear(j->cred_id);
    } else {
        fail_record(j->cred_id);
    }
    /* resuming may end requests and start new checks: detach the waiters first */
    waiter_t *x = j->waiters;
    j->waiters = NULL;
    job_free(j);
    while (x) {
        waiter_t *next = x->next;
        aigw_plugin_run_t *run = x->run;
        const conf_t *k = x->conf;
        const aigw_rt_basicauth_cred_t *cred = x->cred;
        free(x);
        if (run)
            aigw_plugin_resume(run, ok ? succeed(run, cred) : fail(run, k));
        x = next;
    }
}

static aigw_plugin_rc_t wait_for(aigw_plugin_run_t *run, job_t *j, const conf_t *k,
                                 const aigw_rt_basicauth_cred_t *cred)
{
    waiter_t *x = calloc(1, sizeof(*x));
    if (!x)
        return AIGW_PLUGIN_EXIT;
    x->run = run;
    x->conf = k;
    x->cred = cred;
    x->next = j->waiters;
    j->waiters = x;
    aigw_plugin_on_cancel(run, on_cancel, x);
    return AIGW_PLUGIN_ASYNC;
}

static aigw_plugin_rc_t verify(aigw_plugin_run_t *run, const conf_t *k,
                               const aigw_rt_basicauth_cred_t *cred, aigw_str_t pass)
{
    unsigned char mac[32];
    int have_mac = cred_mac(cred, pass, mac) == 0;
    if (have_mac && cache_hit(mac))
        return succeed(run, cred);
    if (fail_locked(cred->id))
        return fail(run, k);
    if (cred->password.n < 10 || memcmp(cred->password.p, "$argon2id$", 10) != 0) {
        AIGW_LOG(AIGW_LOG_WARN, "basic-auth: the credential %s has no Argon2id hash; "
                                "refusing the login", cred->id);
        return fail(run, k);
    }
    if (have_mac)
        for (job_t *j = jobs; j; j = j->next)
            if (j->have_mac && CRYPTO_memcmp(j->mac, mac, 32) == 0) {
                if (wait_for(run, j, k, cred) == AIGW_PLUGIN_ASYNC)
                    return AIGW_PLUGIN_ASYNC;
                return aigw_plugin_error(run, 500, "An unexpected error occurred");
            }
    job_t *j = calloc(1, sizeof(*j));
    waiter_t *x = calloc(1, sizeof(*x));
    if (!j || !x) {
        free(j);
        free(x);
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    x->run = run;
    x->conf = k;
    x->cred = cred;
    j->waiters = x;
    aigw_strlcpy(j->cred_id, cred->id, sizeof(j->cred_id));
    j->have_mac = have_mac;
    memcpy(j->mac, mac, sizeof(mac));
    j->encoded = strndup(cred->password.p, cred->password.n);
    j->password = malloc(pass.n ? pass.n : 1);
    j->pwlen = pass.n;
    if (!j->encoded || !j->password) {
        job_free(j);
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    if (pass.n)
        memcpy(j->password, pass.p, pass.n);
    j->w.data = j;
    int rc = uv_queue_work(run->loop, &j->w, on_work, on_after_work);
    if (rc != 0) {
        AIGW_LOG(AIGW_LOG_ERR, "basic-auth: uv_queue_work: %s", uv_strerror(rc));
        job_free(j);
        return aigw_plugin_error(run, 500, "An unexpected error occurred");
    }
    j->next = jobs;
    jobs = j;
    aigw_plugin_on_cancel(run, on_cancel, x);
    return AIGW_PLUGIN_ASYNC;
}

static aigw_plugin_rc_t access_phase(aigw_plugin_run_t *run, void *conf)
{
    const conf_t *k = conf;
    if (k->anonymous && aigw_plugin_has_credential(run))
        return AIGW_PLUGIN_NEXT;
    if (!aigw_plugin_req_header(run, "authorization").p &&
        !aigw_plugin_req_header(run, "proxy-authorization").p)
        return fail(run, k);
    const aigw_consumers_t *cs = run->rt->consumers;
    const aigw_rt_basicauth_cred_t *cred = NULL;
    aigw_str_t user = AIGW_STR_NULL, pass = AIGW_STR_NULL;
    if (retrieve(run, k, "proxy-authorization", &user, &pass))
        cred = aigw_basicauth_cred_by_username(cs, user);
    if (!cred) {
        if (!retrieve(run, k, "authorization", &user, &pass))
            return fail(run, k);
        cred = aigw_basicauth_cred_by_username(cs, user);
    }
    if (!cred || !cred->consumer)
        return fail(run, k);
    return verify(run, k, cred, pass);
}

const aigw_plugin_def_t aigw_plugin_def_basic_auth = {
    .name = "basic-auth",
    .priority = 1100,
    .configure = configure,
    .free_conf = conf_free,
    .access = access_phase,
};
