/* aigwd/proxy/certs.c: see certs.h.
 *
 * Build: every certificate and CA certificate of the snapshot is parsed once (so that a
 * broken PEM fails the load whoever uses it); a server SSL_CTX is made for each certificate
 * an sni names; a client SSL_CTX for each distinct set of upstream TLS settings, found by a
 * canonical key string. The parsed X509/EVP_PKEY objects are dropped at the end of the build:
 * the contexts hold their own references.
 *
 * Lookups are binary searches over sorted arrays (sni names, service ids): no allocation, no
 * lock, no write, so any number of workers may search one object at once. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "core/conf.h"
#include "core/log.h"
#include "proxy/certs.h"

/* ssl_cipher_suite = intermediate: the list aigw_tls_server_ctx() (http/tls.c) uses. */
static const char server_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/* Kong's nginx template: proxy_ssl_conf_command CipherString DEFAULT:@SECLEVEL=0. */
static const char client_ciphers[] = "DEFAULT:@SECLEVEL=0";

static const unsigned char alpn_http11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
static const unsigned char alpn_h2[] = { 2, 'h', '2' };

/* nginx's proxy_ssl_verify_depth default. */
#define DEFAULT_VERIFY_DEPTH 1
/* RFC 6066 / OpenSSL's TLSEXT_MAXLEN_host_name. */
#define MAX_SERVERNAME 255

typedef struct sni_entry {
    char *name;           /* lower-cased, owned */
    SSL_CTX *ctx;         /* borrowed from server[] */
    int lower_spelled;    /* the sni's own name was lower-case already */
    size_t order;         /* position in the snapshot */
} sni_entry_t;

typedef struct svc_entry {
    char *id;             /* owned */
    SSL_CTX *ctx;         /* borrowed from client[] */
    int verify;
} svc_entry_t;

struct aigw_certs {
    _Atomic int refs;
    sni_entry_t *snis;    /* sorted by name, unique */
    size_t n_snis;
    SSL_CTX **server;     /* owned references */
    size_t n_server;
    SSL_CTX **client;     /* owned references; client[0] is the default */
    size_t n_client;
    svc_entry_t *svcs;    /* sorted by id */
    size_t n_svcs;
};

/* ---- build-time state -------------------------------------------------------------------- */

typedef struct pcert {
    const char *id;                 /* borrowed from the snapshot */
    X509 *leaf[2];                  /* [0] cert, [1] cert_alt (NULL when unset) */
    STACK_OF(X509) *chain[2];
    EVP_PKEY *key[2];
    SSL_CTX *server;                /* made on first use by an sni; moved into c->server */
} pcert_t;

typedef struct pca {
    const char *id;                 /* borrowed from the snapshot */
    X509 *x;
} pca_t;

typedef struct upname {
    const char *name;               /* borrowed */
    const char *client_certificate; /* borrowed; NULL when unset */
} upname_t;

typedef struct client_key {
    char *key;                      /* owned */
    SSL_CTX *ctx;                   /* borrowed from c->client */
} client_key_t;

typedef struct build {
    aigw_certs_t *c;
    unsigned protocols;
    pcert_t *certs;
    size_t n_certs;
    pca_t *cas;
    size_t n_cas;
    upname_t *ups;
    size_t n_ups;
    client_key_t *keys;
    size_t n_keys;
    char *err;
    size_t errlen;
} build_t;

/* ---- small helpers ----------------------------------------------------------------------- */

static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown error";
}

/* Encrypted keys must fail, never prompt on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static char *lower_dup(const char *s, int *was_lower)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    int lower = 1;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];
        if (ch >= 'A' && ch <= 'Z') {
            ch = (char)(ch - 'A' + 'a');
            lower = 0;
        }
        d[i] = ch;
    }
    if (was_lower)
        *was_lower = lower;
    return d;
}

static const char *foreign_id(const json_t *o, const char *field)
{
    return json_string_value(json_object_get(json_object_get(o, field), "id"));
}

static const json_t *array_of(const json_t *root, const char *name)
{
    const json_t *a = json_object_get(root, name);
    return json_is_array(a) ? a : NULL;
}

/* Reads a PEM certificate and the chain certificates after it. 0, or -1 with the reason. */
static int parse_cert(const char *pem, X509 **leaf, STACK_OF(X509) **chain, const char **why)
{
    *leaf = NULL;
    *chain = NULL;
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b) {
        *why = ssl_reason();
        return -1;
    }
    ERR_clear_error();
    *leaf = PEM_read_bio_X509_AUX(b, NULL, no_password, NULL);
    if (!*leaf) {
        *why = ssl_reason();
        BIO_free(b);
        return -1;
    }
    *chain = sk_X509_new_null();
    if (!*chain) {
        *why = ssl_reason();
        BIO_free(b);
        return -1;
    }
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, no_password, NULL);
        if (!x)
            break;
        if (!sk_X509_push(*chain, x)) {
            X509_free(x);
            *why = ssl_reason();
            BIO_free(b);
            return -1;
        }
    }
    /* The loop ends at the end of the text (no start line) or at a broken block. */
    unsigned long e = ERR_peek_last_error();
    BIO_free(b);
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        *why = ssl_reason();
        return -1;
    }
    ERR_clear_error();
    return 0;
}

static EVP_PKEY *parse_key(const char *pem, const char **why)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b) {
        *why = ssl_reason();
        return NULL;
    }
    ERR_clear_error();
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    if (!k)
        *why = ssl_reason();
    BIO_free(b);
    return k;
}

static void pcert_clear(pcert_t *p)
{
    for (int i = 0; i < 2; i++) {
        X509_free(p->leaf[i]);
        sk_X509_pop_free(p->chain[i], X509_free);
        EVP_PKEY_free(p->key[i]);
    }
    SSL_CTX_free(p->server);
}

static int cmp_pcert(const void *a, const void *b)
{
    return strcmp(((const pcert_t *)a)->id, ((const pcert_t *)b)->id);
}

static int cmp_pca(const void *a, const void *b)
{
    return strcmp(((const pca_t *)a)->id, ((const pca_t *)b)->id);
}

static int cmp_upname(const void *a, const void *b)
{
    return strcmp(((const upname_t *)a)->name, ((const upname_t *)b)->name);
}

static int cmp_sni(const void *a, const void *b)
{
    const sni_entry_t *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r)
        return r;
    if (x->lower_spelled != y->lower_spelled)
        return y->lower_spelled - x->lower_spelled;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_svc(const void *a, const void *b)
{
    return strcmp(((const svc_entry_t *)a)->id, ((const svc_entry_t *)b)->id);
}

static pcert_t *find_cert(const build_t *b, const char *id)
{
    if (!id)
        return NULL;
    pcert_t key = { .id = id };
    return bsearch(&key, b->certs, b->n_certs, sizeof(*b->certs), cmp_pcert);
}

static const pca_t *find_ca(const build_t *b, const char *id)
{
    pca_t key = { .id = id, .x = NULL };
    return bsearch(&key, b->cas, b->n_cas, sizeof(*b->cas), cmp_pca);
}

/* ---- parsing the entities ---------------------------------------------------------------- */

static int parse_certificates(build_t *b, const json_t *root)
{
    const json_t *arr = array_of(root, "certificates");
    size_t n = arr ? json_array_size(arr) : 0;
    b->certs = calloc(n ? n : 1, sizeof(*b->certs));
    if (!b->certs) {
        snprintf(b->err, b->errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (!id) {
            snprintf(b->err, b->errlen, "certificates[%zu]: no id", i);
            return -1;
        }
        pcert_t *p = &b->certs[b->n_certs++];
        p->id = id;
        const char *why = NULL;
        const char *cert = json_string_value(json_object_get(o, "cert"));
        const char *key = json_string_value(json_object_get(o, "key"));
        const char *cert_alt = json_string_value(json_object_get(o, "cert_alt"));
        const char *key_alt = json_string_value(json_object_get(o, "key_alt"));
        if (!cert || parse_cert(cert, &p->leaf[0], &p->chain[0], &why) != 0) {
            snprintf(b->err, b->errlen, "certificate %s: could not parse PEM certificate: %s",
                     id, cert ? why : "missing");
            return -1;
        }
        if (!key || !(p->key[0] = parse_key(key, &why))) {
            snprintf(b->err, b->errlen, "certificate %s: could not parse PEM private key: %s",
                     id, key ? why : "missing");
            return -1;
        }
        if (X509_check_private_key(p->leaf[0], p->key[0]) != 1) {
            snprintf(b->err, b->errlen, "certificate %s: certificate does not match key", id);
            return -1;
        }
        /* As Kong's runtime: the alternative pair is used only when both halves are set. */
        if (cert_alt && key_alt) {
            if (parse_cert(cert_alt, &p->leaf[1], &p->chain[1], &why) != 0) {
                snprintf(b->err, b->errlen,
                         "certificate %s: could not parse PEM certificate (cert_alt): %s", id,
                         why);
                return -1;
            }
            if (!(p->key[1] = parse_key(key_alt, &why))) {
                snprintf(b->err, b->errlen,
                         "certificate %s: could not parse PEM private key (key_alt): %s", id,
                         why);
                return -1;
            }
            if (X509_check_private_key(p->leaf[1], p->key[1]) != 1) {
                snprintf(b->err, b->errlen,
                         "certificate %s: alternative certificate does not match key", id);
                return -1;
            }
            if (EVP_PKEY_get_base_id(p->key[0]) == EVP_PKEY_get_base_id(p->key[1])) {
                snprintf(b->err, b->errlen,
                         "certificate %s: certificate and alternative certificate need to have "
                         "different type (e.g. RSA and ECDSA), the provided certificates were "
                         "both of the same type", id);
                return -1;
            }
        }
        ERR_clear_error();
    }
    qsort(b->certs, b->n_certs, sizeof(*b->certs), cmp_pcert);
    return 0;
}

static int parse_ca_certificates(build_t *b, const json_t *root)
{
    const json_t *arr = array_of(root, "ca_certificates");
    size_t n = arr ? json_array_size(arr) : 0;
    b->cas = calloc(n ? n : 1, sizeof(*b->cas));
    if (!b->cas) {
        snprintf(b->err, b->errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *cert = json_string_value(json_object_get(o, "cert"));
        if (!id) {
            snprintf(b->err, b->errlen, "ca_certificates[%zu]: no id", i);
            return -1;
        }
        pca_t *p = &b->cas[b->n_cas++];
        p->id = id;
        const char *why = "missing";
        BIO *bio = cert ? BIO_new_mem_buf(cert, -1) : NULL;
        ERR_clear_error();
        if (bio) {
            p->x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
            if (!p->x)
                why = ssl_reason();
            BIO_free(bio);
        }
        if (!p->x) {
            snprintf(b->err, b->errlen, "ca_certificate %s: could not parse PEM certificate: %s",
                     id, why);
            return -1;
        }
        ERR_clear_error();
    }
    qsort(b->cas, b->n_cas, sizeof(*b->cas), cmp_pca);
    return 0;
}

static int parse_upstreams(build_t *b, const json_t *root)
{
    const json_t *arr = array_of(root, "upstreams");
    size_t n = arr ? json_array_size(arr) : 0;
    b->ups = calloc(n ? n : 1, sizeof(*b->ups));
    if (!b->ups) {
        snprintf(b->err, b->errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!name)
            continue;
        b->ups[b->n_ups].name = name;
        b->ups[b->n_ups].client_certificate = foreign_id(o, "client_certificate");
        b->n_ups++;
    }
    qsort(b->ups, b->n_ups, sizeof(*b->ups), cmp_upname);
    return 0;
}

/* ---- server side ------------------------------------------------------------------------- */

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *sel;
    unsigned char sellen;
    if (SSL_select_next_proto(&sel, &sellen, alpn_http11, sizeof(alpn_http11), in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        *outlen = sellen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* The policy of aigw_tls_server_ctx() (http/tls.c), with the certificates from memory. */
static SSL_CTX *server_ctx(build_t *b, const pcert_t *p)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(b->err, b->errlen, "certificate %s: cannot create a TLS context: %s", p->id,
                 ssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, (b->protocols & AIGW_TLS_1_2) ? TLS1_2_VERSION
                                                                     : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, (b->protocols & AIGW_TLS_1_3) ? TLS1_3_VERSION
                                                                     : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE); /* prefer_server_ciphers off */
    SSL_CTX_set_cipher_list(ctx, server_ciphers);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, 86400);
    /* OpenSSL takes the ALPN callback from the context switched to. */
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    for (int i = 0; i < 2; i++) {
        if (!p->leaf[i])
            continue;
        if (SSL_CTX_use_cert_and_key(ctx, p->leaf[i], p->key[i], p->chain[i], 1) != 1) {
            snprintf(b->err, b->errlen, "certificate %s: cannot use the %s: %s", p->id,
                     i ? "alternative certificate" : "certificate", ssl_reason());
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    ERR_clear_error();
    return ctx;
}

static int build_snis(build_t *b, const json_t *root)
{
    aigw_certs_t *c = b->c;
    const json_t *arr = array_of(root, "snis");
    size_t n = arr ? json_array_size(arr) : 0;
    c->snis = calloc(n ? n : 1, sizeof(*c->snis));
    c->server = calloc(b->n_certs ? b->n_certs : 1, sizeof(*c->server));
    if (!c->snis || !c->server) {
        snprintf(b->err, b->errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *cid = foreign_id(o, "certificate");
        if (!name || !*name)
            continue;
        pcert_t *p = find_cert(b, cid);
        if (!p) {
            /* Kong fails such a handshake ("no SSL certificate configured for sni"); the
             * store's foreign keys make it impossible, so log it and serve the default. */
            AIGW_LOG(AIGW_LOG_ERR, "sni %s: certificate %s not found", name,
                     cid ? cid : "(none)");
            continue;
        }
        if (!p->server) {
            p->server = server_ctx(b, p);
            if (!p->server)
                return -1;
        }
        sni_entry_t *e = &c->snis[c->n_snis];
        e->name = lower_dup(name, &e->lower_spelled);
        if (!e->name) {
            snprintf(b->err, b->errlen, "out of memory");
            return -1;
        }
        e->ctx = p->server;
        e->order = i;
        c->n_snis++;
    }
    qsort(c->snis, c->n_snis, sizeof(*c->snis), cmp_sni);
    /* Keep the first of equal names (the lower-case spelling, else the first listed). */
    size_t w = 0;
    for (size_t r = 0; r < c->n_snis; r++) {
        if (w && strcmp(c->snis[w - 1].name, c->snis[r].name) == 0) {
            free(c->snis[r].name);
            continue;
        }
        c->snis[w++] = c->snis[r];
    }
    c->n_snis = w;
    /* The server contexts move to the object. */
    for (size_t i = 0; i < b->n_certs; i++) {
        if (b->certs[i].server) {
            c->server[c->n_server++] = b->certs[i].server;
            b->certs[i].server = NULL;
        }
    }
    return 0;
}

/* ---- client side ------------------------------------------------------------------------- */

typedef struct client_spec {
    int h2;
    int verify;
    int depth;
    int system_store;               /* trust the system store (no ca_certificates) */
    const pca_t **cas;              /* the CA certificates found, sorted by id */
    size_t n_cas;
    const pcert_t *client_cert;
} client_spec_t;

static pthread_once_t system_once = PTHREAD_ONCE_INIT;
static X509_STORE *system_x509;   /* never freed: one per process */

static void load_system_store(void)
{
    X509_STORE *st = X509_STORE_new();
    if (st && X509_STORE_set_default_paths(st) != 1) {
        X509_STORE_free(st);
        st = NULL;
    }
    system_x509 = st;
}

static X509_STORE *system_store(void)
{
    pthread_once(&system_once, load_system_store);
    return system_x509;
}

static SSL_CTX *client_ctx_new(build_t *b, const client_spec_t *s, const char *service_id)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, client_ciphers) != 1)
        goto fail;
    if (s->h2 && SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0)
        goto fail;
    if (s->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_verify_depth(ctx, s->depth);
        if (s->system_store) {
            /* The system store is parsed once per process and shared by reference. */
            X509_STORE *sys = system_store();
            if (!sys)
                goto fail;
            SSL_CTX_set1_cert_store(ctx, sys);
        } else {
            X509_STORE *st = SSL_CTX_get_cert_store(ctx);
            for (size_t i = 0; i < s->n_cas; i++)
                if (X509_STORE_add_cert(st, s->cas[i]->x) != 1)
                    goto fail;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (s->client_cert) {
        const pcert_t *p = s->client_cert;
        if (SSL_CTX_use_cert_and_key(ctx, p->leaf[0], p->key[0], p->chain[0], 1) != 1) {
            snprintf(b->err, b->errlen,
                     "service %s: cannot use client certificate %s: %s", service_id, p->id,
                     ssl_reason());
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    ERR_clear_error();
    return ctx;
fail:
    snprintf(b->err, b->errlen, "service %s: cannot create a TLS client context: %s",
             service_id ? service_id : "(default)", ssl_reason());
    SSL_CTX_free(ctx);
    return NULL;
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static SSL_CTX *default_client;   /* never freed: one per process */

static void make_default_client(void)
{
    char err[256];
    build_t tmp = { .err = err, .errlen = sizeof(err) };
    client_spec_t dflt = { .depth = DEFAULT_VERIFY_DEPTH, .system_store = 1 };
    default_client = client_ctx_new(&tmp, &dflt, NULL);
}

/* The context for spec: an existing one with the same canonical key, or a new one. */
static SSL_CTX *client_ctx_for(build_t *b, const client_spec_t *s, const char *service_id)
{
    aigw_sbuf_t k = { 0 };
    aigw_sbuf_addf(&k, "alpn=%s;", s->h2 ? "h2" : "");
    if (s->verify) {
        aigw_sbuf_addf(&k, "verify=%d;", s->depth);
        if (s->system_store) {
            aigw_sbuf_add(&k, "ca=system;");
        } else {
            aigw_sbuf_add(&k, "ca=");
            for (size_t i = 0; i < s->n_cas; i++) {
                aigw_sbuf_add(&k, s->cas[i]->id);
                aigw_sbuf_add(&k, ",");
            }
            aigw_sbuf_add(&k, ";");
        }
    }
    if (s->client_cert)
        aigw_sbuf_addf(&k, "cc=%s;", s->client_cert->id);
    if (k.oom) {
        aigw_sbuf_free(&k);
        snprintf(b->err, b->errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < b->n_keys; i++) {
        if (strcmp(b->keys[i].key, k.p) == 0) {
            aigw_sbuf_free(&k);
            return b->keys[i].ctx;
        }
    }
    SSL_CTX *ctx;
    if (!s->h2 && !s->verify && !s->client_cert) {
        /* The plain default is the same in every snapshot: made once per process (an
         * SSL_CTX costs a few hundred microseconds), shared by reference. */
        pthread_once(&default_once, make_default_client);
        ctx = default_client;
        if (!ctx || SSL_CTX_up_ref(ctx) != 1) {
            aigw_sbuf_free(&k);
            snprintf(b->err, b->errlen, "cannot create the default TLS client context");
            return NULL;
        }
    } else {
        ctx = client_ctx_new(b, s, service_id);
    }
    if (!ctx) {
        aigw_sbuf_free(&k);
        return NULL;
    }
    /* keys[] and c->client[] have room for one entry per service plus the default. */
    b->c->client[b->c->n_client++] = ctx;
    b->keys[b->n_keys].key = k.p;
    b->keys[b->n_keys].ctx = ctx;
    b->n_keys++;
    return ctx;
}

static int cmp_pca_ptr(const void *a, const void *b)
{
    return strcmp((*(const pca_t *const *)a)->id, (*(const pca_t *const *)b)->id);
}

static int build_service(build_t *b, const json_t *o, const pca_t **cabuf)
{
    aigw_certs_t *c = b->c;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *proto = json_string_value(json_object_get(o, "protocol"));
    if (!id || !proto)
        return 0;
    int h2 = strcmp(proto, "grpcs") == 0;
    if (!h2 && strcmp(proto, "https") != 0 && strcmp(proto, "tls") != 0)
        return 0;
    client_spec_t s = { .h2 = h2, .depth = DEFAULT_VERIFY_DEPTH, .system_store = 1 };
    s.verify = json_is_true(json_object_get(o, "tls_verify"));
    const json_t *depth = json_object_get(o, "tls_verify_depth");
    if (json_is_integer(depth) && json_integer_value(depth) >= 0 &&
        json_integer_value(depth) <= 64)
        s.depth = (int)json_integer_value(depth);
    const json_t *cas = json_object_get(o, "ca_certificates");
    if (json_is_array(cas) && json_array_size(cas) > 0) {
        s.system_store = 0;
        s.cas = cabuf;
        for (size_t i = 0; i < json_array_size(cas); i++) {
            const char *caid = json_string_value(json_array_get(cas, i));
            const pca_t *ca = caid ? find_ca(b, caid) : NULL;
            if (!ca) {
                AIGW_LOG(AIGW_LOG_CRIT,
                         "unable to get upstream TLS CA store of service %s, err: CA "
                         "Certificate '%s' does not exist", id, caid ? caid : "(not a string)");
                continue;
            }
            int dup = 0;
            for (size_t j = 0; j < s.n_cas; j++)
                dup |= cabuf[j] == ca;
            if (!dup)
                cabuf[s.n_cas++] = ca;
        }
        qsort(cabuf, s.n_cas, sizeof(*cabuf), cmp_pca_ptr);
    }
    const char *ccid = foreign_id(o, "client_certificate");
    if (!ccid) {
        /* Kong's fallback_upstream_client_cert: the upstream the service's host names. */
        const char *host = json_string_value(json_object_get(o, "host"));
        upname_t key = { .name = host, .client_certificate = NULL };
        const upname_t *up =
            host ? bsearch(&key, b->ups, b->n_ups, sizeof(*b->ups), cmp_upname) : NULL;
        if (up)
            ccid = up->client_certificate;
    }
    if (ccid) {
        s.client_cert = find_cert(b, ccid);
        if (!s.client_cert)
            AIGW_LOG(AIGW_LOG_ERR,
                     "unable to fetch upstream client TLS certificate %s: certificate %s not "
                     "found", ccid, ccid);
    }
    SSL_CTX *ctx = client_ctx_for(b, &s, id);
    if (!ctx)
        return -1;
    svc_entry_t *e = &c->svcs[c->n_svcs];
    e->id = strdup(id);
    if (!e->id) {
        snprintf(b->err, b->errlen, "out of memory");
        return -1;
    }
    e->ctx = ctx;
    e->verify = s.verify;
    c->n_svcs++;
    return 0;
}

static int build_clients(build_t *b, const json_t *root)
{
    aigw_certs_t *c = b->c;
    const json_t *arr = array_of(root, "services");
    size_t n = arr ? json_array_size(arr) : 0;
    size_t max_cas = 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = json_array_size(json_object_get(json_array_get(arr, i), "ca_certificates"));
        if (k > max_cas)
            max_cas = k;
    }
    c->client = calloc(n + 1, sizeof(*c->client));
    c->svcs = calloc(n ? n : 1, sizeof(*c->svcs));
    b->keys = calloc(n + 1, sizeof(*b->keys));
    const pca_t **cabuf = calloc(max_cas, sizeof(*cabuf));
    int rc = -1;
    if (!c->client || !c->svcs || !b->keys || !cabuf) {
        snprintf(b->err, b->errlen, "out of memory");
        goto out;
    }
    client_spec_t dflt = { .depth = DEFAULT_VERIFY_DEPTH, .system_store = 1 };
    if (!client_ctx_for(b, &dflt, NULL))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (build_service(b, json_array_get(arr, i), cabuf) != 0)
            goto out;
    qsort(c->svcs, c->n_svcs, sizeof(*c->svcs), cmp_svc);
    rc = 0;
out:
    free(cabuf);
    return rc;
}

/* ---- public API -------------------------------------------------------------------------- */

static void certs_destroy(aigw_certs_t *c)
{
    for (size_t i = 0; i < c->n_snis; i++)
        free(c->snis[i].name);
    free(c->snis);
    for (size_t i = 0; i < c->n_server; i++)
        SSL_CTX_free(c->server[i]);
    free(c->server);
    for (size_t i = 0; i < c->n_client; i++)
        SSL_CTX_free(c->client[i]);
    free(c->client);
    for (size_t i = 0; i < c->n_svcs; i++)
        free(c->svcs[i].id);
    free(c->svcs);
    free(c);
}

aigw_certs_t *aigw_certs_build(const json_t *snapshot_root, unsigned ssl_protocols, char *err,
                               size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    build_t b = { .protocols = ssl_protocols ? ssl_protocols : AIGW_TLS_1_2 | AIGW_TLS_1_3,
                  .err = err,
                  .errlen = errlen };
    if (!json_is_object(snapshot_root)) {
        snprintf(err, errlen, "the configuration is not an object");
        return NULL;
    }
    b.c = calloc(1, sizeof(*b.c));
    if (!b.c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&b.c->refs, 1);
    int ok = parse_certificates(&b, snapshot_root) == 0 &&
             parse_ca_certificates(&b, snapshot_root) == 0 &&
             parse_upstreams(&b, snapshot_root) == 0 && build_snis(&b, snapshot_root) == 0 &&
             build_clients(&b, snapshot_root) == 0;
    for (size_t i = 0; i < b.n_certs; i++)
        pcert_clear(&b.certs[i]);
    free(b.certs);
    for (size_t i = 0; i < b.n_cas; i++)
        X509_free(b.cas[i].x);
    free(b.cas);
    free(b.ups);
    for (size_t i = 0; i < b.n_keys; i++)
        free(b.keys[i].key);
    free(b.keys);
    ERR_clear_error();
    if (!ok) {
        certs_destroy(b.c);
        return NULL;
    }
    return b.c;
}

aigw_certs_t *aigw_certs_ref(aigw_certs_t *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void aigw_certs_unref(aigw_certs_t *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        certs_destroy(c);
}

void aigw_certs_free(aigw_certs_t *c)
{
    aigw_certs_unref(c);
}

static int cmp_key_sni(const void *key, const void *elem)
{
    return strcmp(key, ((const sni_entry_t *)elem)->name);
}

static int cmp_key_svc(const void *key, const void *elem)
{
    return strcmp(key, ((const svc_entry_t *)elem)->id);
}

static SSL_CTX *lookup(const aigw_certs_t *c, const char *name)
{
    const sni_entry_t *e = bsearch(name, c->snis, c->n_snis, sizeof(*c->snis), cmp_key_sni);
    return e ? e->ctx : NULL;
}

static const svc_entry_t *find_svc(const aigw_certs_t *c, const char *id)
{
    return bsearch(id, c->svcs, c->n_svcs, sizeof(*c->svcs), cmp_key_svc);
}

SSL_CTX *aigw_certs_select(const aigw_certs_t *c, const char *servername)
{
    if (!c || !servername || !*servername || c->n_snis == 0)
        return NULL;
    size_t n = strlen(servername);
    if (n > MAX_SERVERNAME)
        return NULL;
    char name[MAX_SERVERNAME + 1];
    for (size_t i = 0; i <= n; i++) {
        char ch = servername[i];
        name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    /* 1. exact */
    SSL_CTX *ctx = lookup(c, name);
    if (ctx)
        return ctx;
    /* A name holding '*' has no wildcard forms in Kong but itself (when the '*' leads or
     * ends it), which step 1 looked up already. */
    const char *star = memchr(name, '*', n);
    char wild[MAX_SERVERNAME + 3];
    /* 2. prefix wildcard: Kong's re_sub(sni, [[([^.]+)(\.[^.]+\.\S+)]], "*$2", "ajo"). */
    if (!star) {
        const char *d1 = memchr(name, '.', n);
        const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - name)) : NULL;
        if (d1 && d1 > name && d2 && d2 > d1 + 1 && d2[1] != '\0' &&
            !strchr(" \t\n\r\f\v", d2[1])) {
            /* \S+ runs to the first white space, which a server name does not hold; the
             * rest of the name is kept by re_sub either way. */
            snprintf(wild, sizeof(wild), "*%s", d1);
            if ((ctx = lookup(c, wild)))
                return ctx;
        }
    }
    /* 3. suffix wildcard: re_sub(sni, [[([^.]+\.)([^.]+)$]], "$1*", "jo"). */
    if (!star) {
        const char *dl = memrchr(name, '.', n);
        if (dl && dl > name && dl[-1] != '.' && dl[1] != '\0') {
            size_t keep = (size_t)(dl + 1 - name);
            memcpy(wild, name, keep);
            wild[keep] = '*';
            wild[keep + 1] = '\0';
            if ((ctx = lookup(c, wild)))
                return ctx;
        }
    }
    /* 4. the catch-all sni "*" */
    return lookup(c, "*");
}

int aigw_certs_on_servername(SSL *ssl, int *al, void *arg)
{
    const aigw_certs_source_t *src = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!src || !src->get || !name || !*name)
        return SSL_TLSEXT_ERR_OK;
    aigw_certs_t *c = src->get(src->ud);
    if (!c)
        return SSL_TLSEXT_ERR_OK;
    int rc = SSL_TLSEXT_ERR_OK;
    SSL_CTX *ctx = aigw_certs_select(c, name);
    if (ctx && SSL_get_SSL_CTX(ssl) != ctx) {
        /* SSL_set_SSL_CTX takes its own reference on ctx: c may go once we return. */
        if (SSL_set_SSL_CTX(ssl, ctx) != ctx) {
            *al = SSL_AD_INTERNAL_ERROR;
            rc = SSL_TLSEXT_ERR_ALERT_FATAL;
        } else {
            /* As nginx's ngx_http_ssl_servername: the verify settings and the options of
             * the new context replace those the SSL got from the default one. */
            SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
            SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
            SSL_clear_options(ssl, SSL_get_options(ssl) & ~SSL_CTX_get_options(ctx));
            SSL_set_options(ssl, SSL_CTX_get_options(ctx));
        }
    }
    aigw_certs_unref(c);
    return rc;
}

SSL_CTX *aigw_certs_client_ctx(const aigw_certs_t *c, const char *service_id)
{
    if (!c)
        return NULL;
    const svc_entry_t *e = service_id ? find_svc(c, service_id) : NULL;
    return e ? e->ctx : c->client[0];
}

int aigw_certs_client_verifies(const aigw_certs_t *c, const char *service_id)
{
    if (!c || !service_id)
        return 0;
    const svc_entry_t *e = find_svc(c, service_id);
    return e ? e->verify : 0;
}

/* An IP literal (brackets allowed around IPv6) copied bare into out; 1, else 0. */
static int ip_literal(const char *host, char *out, size_t cap)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= cap)
        return 0;
    memcpy(out, host, n);
    out[n] = '\0';
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, out, buf) == 1 || inet_pton(AF_INET6, out, buf) == 1;
}

int aigw_certs_client_prepare(SSL *ssl, const char *sni_host, int verify)
{
    if (!ssl)
        return -1;
    if (verify < 0)
        verify = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
    if (!sni_host || !*sni_host)
        return 0;
    char ip[INET6_ADDRSTRLEN + 1];
    int is_ip = ip_literal(sni_host, ip, sizeof(ip));
    ERR_clear_error();
    if (!is_ip && SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                          (void *)(uintptr_t)sni_host) != 1)
        goto fail;
    if (verify) {
        X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
        if (is_ip) {
            if (X509_VERIFY_PARAM_set1_ip_asc(p, ip) != 1)
                goto fail;
        } else {
            X509_VERIFY_PARAM_set_hostflags(p, 0);   /* nginx: X509_check_host(.., 0, ..) */
            if (X509_VERIFY_PARAM_set1_host(p, sni_host, 0) != 1)
                goto fail;
        }
    }
    return 0;
fail:
    ERR_clear_error();
    return -1;
}

void aigw_certs_verify_error(const SSL *ssl, char *buf, size_t n)
{
    if (!buf || !n)
        return;
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    snprintf(buf, n, "(%ld:%s)", v, X509_verify_cert_error_string(v));
}
