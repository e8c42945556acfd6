/* aigwd/proxy/consumers.c: the consumer and credential indexes (consumers.h).
 *
 * Every table is open addressing over SHA-256 digests of the key (a tag byte per table
 * first), probed by the digest's first bytes and matched with CRYPTO_memcmp. Strings are
 * copied into one pool freed with the index. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/consumers.h"

typedef struct slot {
    unsigned char d[32];
    const void *val;            /* NULL: empty */
} slot_t;

typedef struct table {
    slot_t *slots;
    size_t mask;                /* capacity - 1; capacity 0 when the table is empty */
} table_t;

enum { T_CONS_ID, T_CONS_NAME, T_JWT, T_KEYAUTH, T_BASIC, T_OAUTH2, T_N };

struct aigw_consumers {
    aigw_rt_consumer_t *cons;
    size_t n_cons;
    aigw_rt_jwt_cred_t *jwt;
    size_t n_jwt;
    aigw_rt_keyauth_cred_t *keyauth;
    size_t n_keyauth;
    aigw_rt_basicauth_cred_t *basic;
    size_t n_basic;
    aigw_rt_oauth2_cred_t *oauth2;
    size_t n_oauth2;
    table_t t[T_N];
    /* string pool: a list of blocks */
    char **blocks;
    size_t n_blocks, cap_blocks;
    aigw_str_t *str_arrays;     /* groups and redirect uris */
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* SHA-256 fetched once: OpenSSL 3 looks the implementation up (under a lock) on every
 * init given EVP_sha256(), which lookups on the request path should not pay. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void digest(int tag, aigw_str_t key, unsigned char out[32])
{
    unsigned char t = (unsigned char)tag;
    pthread_once(&sha256_once, sha256_fetch);
    const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, &t, 1) != 1 ||
        EVP_DigestUpdate(ctx, key.p ? key.p : "", key.n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1) {
        /* cannot happen short of memory exhaustion; an all-zero digest matches nothing
         * stored unless the same failure struck the build, which then fails closed below */
        memset(out, 0, 32);
    }
    EVP_MD_CTX_free(ctx);
}

static size_t probe_start(const unsigned char d[32], size_t mask)
{
    size_t h = 0;
    memcpy(&h, d, sizeof(h));
    return h & mask;
}

static int table_init(table_t *t, size_t n)
{
    if (!n) {
        t->slots = NULL;
        t->mask = 0;
        return 0;
    }
    size_t cap = 8;
    while (cap < n * 2)
        cap <<= 1;
    t->slots = calloc(cap, sizeof(*t->slots));
    t->mask = cap - 1;
    return t->slots ? 0 : -1;
}

/* 0 added, 1 the key was there already (kept the first). */
static int table_put(table_t *t, int tag, aigw_str_t key, const void *val)
{
    unsigned char d[32];
    digest(tag, key, d);
    for (size_t i = probe_start(d, t->mask);; i = (i + 1) & t->mask) {
        slot_t *s = &t->slots[i];
        if (!s->val) {
            memcpy(s->d, d, 32);
            s->val = val;
            return 0;
        }
        if (CRYPTO_memcmp(s->d, d, 32) == 0)
            return 1;
    }
}

static const void *table_get(const table_t *t, int tag, aigw_str_t key)
{
    if (!t->slots)
        return NULL;
    unsigned char d[32];
    digest(tag, key, d);
    for (size_t i = probe_start(d, t->mask);; i = (i + 1) & t->mask) {
        const slot_t *s = &t->slots[i];
        if (!s->val)
            return NULL;
        if (CRYPTO_memcmp(s->d, d, 32) == 0)
            return s->val;
    }
}

/* n zeroed bytes (plus a NUL) owned by the index. */
static char *pool_alloc(aigw_consumers_t *c, size_t n)
{
    if (c->n_blocks == c->cap_blocks) {
        size_t nc = c->cap_blocks ? c->cap_blocks * 2 : 64;
        char **nb = realloc(c->blocks, nc * sizeof(*nb));
        if (!nb)
            return NULL;
        c->blocks = nb;
        c->cap_blocks = nc;
    }
    char *p = calloc(1, n + 1);
    if (!p)
        return NULL;
    c->blocks[c->n_blocks++] = p;
    return p;
}

static char *pool_add(aigw_consumers_t *c, const char *s, size_t n)
{
    char *p = pool_alloc(c, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* obj[key] as a pooled string; empty when absent or null. -1 when present but not a string
 * or out of memory. */
static int get_str(aigw_consumers_t *c, const json_t *obj, const char *key, aigw_str_t *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = (aigw_str_t){ "", 0 };
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    char *p = pool_add(c, json_string_value(v), n);
    if (!p)
        return -1;
    *out = (aigw_str_t){ p, n };
    return 0;
}

static int get_id(const json_t *obj, char out[37])
{
    const char *s = json_string_value(json_object_get(obj, "id"));
    if (!s || strlen(s) != 36)
        return -1;
    memcpy(out, s, 37);
    return 0;
}

/* The consumer a credential row points at ({"consumer":{"id":...}} or "consumer":"id"). */
static const aigw_rt_consumer_t *owner(const aigw_consumers_t *c, const json_t *row)
{
    const json_t *v = json_object_get(row, "consumer");
    if (json_is_object(v))
        v = json_object_get(v, "id");
    const char *s = json_string_value(v);
    return s ? aigw_consumer_by_id(c, aigw_str_c(s)) : NULL;
}

static const json_t *array_of(const json_t *root, const char *key, int *bad)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_array(v)) {
        *bad = 1;
        return NULL;
    }
    return v;
}

static int build_consumers(aigw_consumers_t *c, const json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);
    if (n && !(c->cons = calloc(n, sizeof(*c->cons))))
        return fail(err, errlen, "out of memory");
    if (table_init(&c->t[T_CONS_ID], n) || table_init(&c->t[T_CONS_NAME], n))
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        aigw_rt_consumer_t *k = &c->cons[c->n_cons];
        if (!json_is_object(o) || get_id(o, k->id) != 0 ||
            get_str(c, o, "username", &k->username) != 0 ||
            get_str(c, o, "custom_id", &k->custom_id) != 0)
            return fail(err, errlen, "consumers[%zu]: malformed", i);
        char *d = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *dp = d ? pool_add(c, d, strlen(d)) : NULL;
        if (!dp) {
            free(d);
            return fail(err, errlen, "out of memory");
        }
        k->json = (aigw_str_t){ dp, strlen(d) };
        free(d);
        if (table_put(&c->t[T_CONS_ID], T_CONS_ID, aigw_str_c(k->id), k) != 0)
            return fail(err, errlen, "consumer %s appears twice in the configuration", k->id);
        if (k->username.n)
            table_put(&c->t[T_CONS_NAME], T_CONS_NAME, k->username, k);
        c->n_cons++;
    }
    return 0;
}

static int build_jwt(aigw_consumers_t *c, const json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);
    if (n && !(c->jwt = calloc(n, sizeof(*c->jwt))))
        return fail(err, errlen, "out of memory");
    if (table_init(&c->t[T_JWT], n))
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        aigw_rt_jwt_cred_t *j = &c->jwt[c->n_jwt];
        if (!json_is_object(o) || get_id(o, j->id) != 0 || get_str(c, o, "key", &j->key) != 0 ||
            get_str(c, o, "secret", &j->secret) != 0 ||
            get_str(c, o, "rsa_public_key", &j->rsa_public_key) != 0 ||
            get_str(c, o, "algorithm", &j->algorithm) != 0)
            return fail(err, errlen, "jwt_secrets[%zu]: malformed", i);
        if (!j->algorithm.n)
            j->algorithm = (aigw_str_t){ "HS256", 5 };
        j->consumer = owner(c, o);
        if (!j->consumer || !j->key.n)
            continue;
        if (table_put(&c->t[T_JWT], T_JWT, j->key, j) != 0)
            continue;
        aigw_rt_consumer_t *k = &c->cons[j->consumer - c->cons];
        if (k->n_jwt++ == 0)
            k->first_jwt = j;
        c->n_jwt++;
    }
    return 0;
}

static int build_keyauth(aigw_consumers_t *c, const json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);
    if (n && !(c->keyauth = calloc(n, sizeof(*c->keyauth))))
        return fail(err, errlen, "out of memory");
    if (table_init(&c->t[T_KEYAUTH], n))
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        aigw_rt_keyauth_cred_t *k = &c->keyauth[c->n_keyauth];
        const char *key = json_string_value(json_object_get(o, "key"));
        if (!json_is_object(o) || get_id(o, k->id) != 0 || !key)
            return fail(err, errlen, "keyauth_credentials[%zu]: malformed", i);
        k->consumer = owner(c, o);
        /* the key itself is not kept: only its digest, in the table */
        if (!k->consumer || !key[0] ||
            table_put(&c->t[T_KEYAUTH], T_KEYAUTH, aigw_str_c(key), k) != 0)
            continue;
        c->n_keyauth++;
    }
    return 0;
}

static int build_basic(aigw_consumers_t *c, const json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);
    if (n && !(c->basic = calloc(n, sizeof(*c->basic))))
        return fail(err, errlen, "out of memory");
    if (table_init(&c->t[T_BASIC], n))
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        aigw_rt_basicauth_cred_t *b = &c->basic[c->n_basic];
        if (!json_is_object(o) || get_id(o, b->id) != 0 ||
            get_str(c, o, "username", &b->username) != 0 ||
            get_str(c, o, "password", &b->password) != 0)
            return fail(err, errlen, "basicauth_credentials[%zu]: malformed", i);
        b->consumer = owner(c, o);
        if (!b->consumer || !b->username.n ||
            table_put(&c->t[T_BASIC], T_BASIC, b->username, b) != 0)
            continue;
        c->n_basic++;
    }
    return 0;
}

/* A string array field into pooled views. */
static int get_str_array(aigw_consumers_t *c, const json_t *o, const char *key,
                         aigw_str_t **out, size_t *n_out)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    *n_out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return -1;
    size_t n = json_array_size(v);
    if (!n)
        return 0;
    aigw_str_t *arr = (aigw_str_t *)(void *)pool_alloc(c, n * sizeof(aigw_str_t));
    if (!arr)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return -1;
        size_t len = json_string_length(e);
        char *p = pool_add(c, json_string_value(e), len);
        if (!p)
            return -1;
        arr[i] = (aigw_str_t){ p, len };
    }
    *out = arr;
    *n_out = n;
    return 0;
}

static int build_oauth2(aigw_consumers_t *c, const json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);
    if (n && !(c->oauth2 = calloc(n, sizeof(*c->oauth2))))
        return fail(err, errlen, "out of memory");
    if (table_init(&c->t[T_OAUTH2], n))
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        aigw_rt_oauth2_cred_t *k = &c->oauth2[c->n_oauth2];
        if (!json_is_object(o) || get_id(o, k->id) != 0 || get_str(c, o, "name", &k->name) ||
            get_str(c, o, "client_id", &k->client_id) ||
            get_str(c, o, "client_secret", &k->client_secret) ||
            get_str(c, o, "client_type", &k->client_type) ||
            get_str_array(c, o, "redirect_uris", &k->redirect_uris, &k->n_redirect_uris))
            return fail(err, errlen, "oauth2_credentials[%zu]: malformed", i);
        k->hash_secret = json_is_true(json_object_get(o, "hash_secret"));
        if (!k->client_type.n)
            k->client_type = (aigw_str_t){ "confidential", 12 };
        k->consumer = owner(c, o);
        if (!k->consumer || !k->client_id.n ||
            table_put(&c->t[T_OAUTH2], T_OAUTH2, k->client_id, k) != 0)
            continue;
        c->n_oauth2++;
    }
    return 0;
}

/* acls: groups per consumer, counted first so each consumer gets one array. */
static int build_acls(aigw_consumers_t *c, const json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);
    if (!n)
        return 0;
    size_t *count = calloc(c->n_cons ? c->n_cons : 1, sizeof(*count));
    if (!count)
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const aigw_rt_consumer_t *k = json_is_object(o) ? owner(c, o) : NULL;
        if (!json_is_object(o) || !json_is_string(json_object_get(o, "group"))) {
            free(count);
            return fail(err, errlen, "acls[%zu]: malformed", i);
        }
        if (k)
            count[k - c->cons]++;
    }
    size_t total = 0;
    for (size_t i = 0; i < c->n_cons; i++)
        total += count[i];
    c->str_arrays = total ? calloc(total, sizeof(*c->str_arrays)) : NULL;
    if (total && !c->str_arrays) {
        free(count);
        return fail(err, errlen, "out of memory");
    }
    size_t off = 0;
    for (size_t i = 0; i < c->n_cons; i++) {
        c->cons[i].groups = count[i] ? c->str_arrays + off : NULL;
        off += count[i];
    }
    free(count);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const aigw_rt_consumer_t *ko = owner(c, o);
        if (!ko)
            continue;
        aigw_rt_consumer_t *k = &c->cons[ko - c->cons];
        aigw_str_t g;
        if (get_str(c, o, "group", &g) != 0)
            return fail(err, errlen, "out of memory");
        k->groups[k->n_groups++] = g;
    }
    return 0;
}

aigw_consumers_t *aigw_consumers_build(const json_t *root, char *err, size_t errlen)
{
    aigw_consumers_t *c = calloc(1, sizeof(*c));
    if (!c) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    int bad = 0;
    const json_t *cons = array_of(root, "consumers", &bad);
    const json_t *jwt = array_of(root, "jwt_secrets", &bad);
    const json_t *ka = array_of(root, "keyauth_credentials", &bad);
    const json_t *ba = array_of(root, "basicauth_credentials", &bad);
    const json_t *acl = array_of(root, "acls", &bad);
    const json_t *oa = array_of(root, "oauth2_credentials", &bad);
    if (bad) {
        fail(err, errlen, "consumers and credentials must be arrays");
        goto fail;
    }
    if (build_consumers(c, cons, err, errlen) || build_jwt(c, jwt, err, errlen) ||
        build_keyauth(c, ka, err, errlen) || build_basic(c, ba, err, errlen) ||
        build_oauth2(c, oa, err, errlen) || build_acls(c, acl, err, errlen))
        goto fail;
    return c;
fail:
    aigw_consumers_free(c);
    return NULL;
}

void aigw_consumers_free(aigw_consumers_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < T_N; i++)
        free(c->t[i].slots);
    for (size_t i = 0; i < c->n_blocks; i++)
        free(c->blocks[i]);
    free(c->blocks);
    free(c->str_arrays);
    free(c->cons);
    free(c->jwt);
    free(c->keyauth);
    free(c->basic);
    free(c->oauth2);
    free(c);
}

const aigw_rt_consumer_t *aigw_consumer_by_id(const aigw_consumers_t *c, aigw_str_t id)
{
    return c && id.n == 36 ? table_get(&c->t[T_CONS_ID], T_CONS_ID, id) : NULL;
}

const aigw_rt_consumer_t *aigw_consumer_by_username(const aigw_consumers_t *c, aigw_str_t name)
{
    return c && name.n ? table_get(&c->t[T_CONS_NAME], T_CONS_NAME, name) : NULL;
}

const aigw_rt_consumer_t *aigw_consumer_by_ref(const aigw_consumers_t *c, aigw_str_t ref)
{
    const aigw_rt_consumer_t *k = aigw_consumer_by_id(c, ref);
    return k ? k : aigw_consumer_by_username(c, ref);
}

size_t aigw_consumers_count(const aigw_consumers_t *c)
{
    return c ? c->n_cons : 0;
}

const aigw_rt_jwt_cred_t *aigw_jwt_cred_by_key(const aigw_consumers_t *c, aigw_str_t key)
{
    return c && key.n ? table_get(&c->t[T_JWT], T_JWT, key) : NULL;
}

const aigw_rt_keyauth_cred_t *aigw_keyauth_cred_by_key(const aigw_consumers_t *c,
                                                       aigw_str_t key)
{
    return c && key.n ? table_get(&c->t[T_KEYAUTH], T_KEYAUTH, key) : NULL;
}

const aigw_rt_basicauth_cred_t *aigw_basicauth_cred_by_username(const aigw_consumers_t *c,
                                                                aigw_str_t username)
{
    return c && username.n ? table_get(&c->t[T_BASIC], T_BASIC, username) : NULL;
}

const aigw_rt_oauth2_cred_t *aigw_oauth2_cred_by_client_id(const aigw_consumers_t *c,
                                                           aigw_str_t client_id)
{
    return c && client_id.n ? table_get(&c->t[T_OAUTH2], T_OAUTH2, client_id) : NULL;
}
