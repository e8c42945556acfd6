/* tests/unit/test_certs.c: aigwd/proxy/certs.c. Certificates are made here with OpenSSL (a
 * small CA signing an upstream leaf, self-signed server certificates, one RSA+ECDSA pair),
 * put in a Kong-format snapshot, and checked: sni selection in Kong's order (exact, prefix
 * wildcard, suffix wildcard, "*"), real in-memory handshakes over BIO pairs (the client gets
 * the certificate its SNI names through the servername callback; the RSA or ECDSA half of a
 * dual certificate by signature algorithm; the connection outlives the aigw_certs_t),
 * upstream verification (right CA and host, wrong host, no CA, IP literals), client
 * certificates (the service's and the upstream fallback), contexts shared between services
 * with equal settings, and broken PEMs failing the build with the entity's id. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "proxy/certs.h"

#define CA_ID "aaaaaaaa-0000-4000-8000-000000000001"
#define C_EXACT "cccccccc-0000-4000-8000-000000000001"
#define C_WILD "cccccccc-0000-4000-8000-000000000002"
#define C_SUFFIX "cccccccc-0000-4000-8000-000000000003"
#define C_DUAL "cccccccc-0000-4000-8000-000000000004"
#define C_CLIENT "cccccccc-0000-4000-8000-000000000005"
#define C_CATCHALL "cccccccc-0000-4000-8000-000000000006"
#define S_PLAIN "5e000000-0000-4000-8000-000000000001"
#define S_NOVERIFY "5e000000-0000-4000-8000-000000000002"
#define S_HTTP "5e000000-0000-4000-8000-000000000003"
#define S_CA "5e000000-0000-4000-8000-000000000004"
#define S_CA2 "5e000000-0000-4000-8000-000000000005"
#define S_SYS "5e000000-0000-4000-8000-000000000006"
#define S_CLIENT "5e000000-0000-4000-8000-000000000007"
#define S_UPFALLBACK "5e000000-0000-4000-8000-000000000008"
#define S_GRPCS "5e000000-0000-4000-8000-000000000009"
#define S_MISSING_CA "5e000000-0000-4000-8000-00000000000a"

typedef struct keycert {
    EVP_PKEY *key;
    X509 *x;
    char *cert_pem, *key_pem;
} keycert_t;

static keycert_t ca, upstream, exact, wild, suffix, dual_rsa, dual_ec, client, catchall, dflt;

/* ---- making certificates ------------------------------------------------------------------ */

static char *pem_of(X509 *x, EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    if (x)
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
    else
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for cn (and san when given), signed by signer (self-signed when NULL). */
static void make(keycert_t *kc, const char *type, const char *cn, const char *san,
                 const keycert_t *signer, int is_ca)
{
    static long serial = 1;
    kc->key = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                       : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(kc->key);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, kc->key);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, signer ? X509_get_subject_name(signer->x) : nm);
    X509 *issuer = signer ? signer->x : x;
    if (is_ca) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (san)
        add_ext(x, issuer, NID_subject_alt_name, san);
    assert_true(X509_sign(x, signer ? signer->key : kc->key, EVP_sha256()) > 0);
    kc->x = x;
    kc->cert_pem = pem_of(x, NULL);
    kc->key_pem = pem_of(NULL, kc->key);
}

static void unmake(keycert_t *kc)
{
    X509_free(kc->x);
    EVP_PKEY_free(kc->key);
    free(kc->cert_pem);
    free(kc->key_pem);
    memset(kc, 0, sizeof(*kc));
}

static int setup(void **state)
{
    (void)state;
    make(&ca, "EC", "Test CA", NULL, NULL, 1);
    make(&upstream, "EC", "example.test", "DNS:example.test,IP:127.0.0.1", &ca, 0);
    make(&exact, "EC", "exact", NULL, NULL, 0);
    make(&wild, "EC", "wild", NULL, NULL, 0);
    make(&suffix, "EC", "suffix", NULL, NULL, 0);
    make(&dual_rsa, "RSA", "dual-rsa", NULL, NULL, 0);
    make(&dual_ec, "EC", "dual-ec", NULL, NULL, 0);
    make(&client, "EC", "client", NULL, NULL, 0);
    make(&catchall, "EC", "catchall", NULL, NULL, 0);
    make(&dflt, "EC", "default", NULL, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keycert_t *all[] = { &ca, &upstream, &exact, &wild, &suffix, &dual_rsa, &dual_ec,
                         &client, &catchall, &dflt };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        unmake(all[i]);
    return 0;
}

/* ---- the snapshot ------------------------------------------------------------------------ */

static json_t *cert_entity(const char *id, const keycert_t *kc)
{
    return json_pack("{s:s, s:s, s:s, s:n, s:n}", "id", id, "cert", kc->cert_pem, "key",
                     kc->key_pem, "cert_alt", "key_alt");
}

static json_t *sni_entity(const char *id, const char *name, const char *cert_id)
{
    return json_pack("{s:s, s:s, s:{s:s}}", "id", id, "name", name, "certificate", "id",
                     cert_id);
}

static json_t *service(const char *id, const char *protocol, const char *host)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:n, s:n, s:n, s:n}", "id", id, "protocol",
                     protocol, "host", host, "port", 443, "tls_verify", "tls_verify_depth",
                     "ca_certificates", "client_certificate");
}

static json_t *snapshot(int with_catchall)
{
    json_t *certs = json_array();
    json_array_append_new(certs, cert_entity(C_EXACT, &exact));
    json_array_append_new(certs, cert_entity(C_WILD, &wild));
    json_array_append_new(certs, cert_entity(C_SUFFIX, &suffix));
    json_t *d = cert_entity(C_DUAL, &dual_rsa);
    json_object_set_new(d, "cert_alt", json_string(dual_ec.cert_pem));
    json_object_set_new(d, "key_alt", json_string(dual_ec.key_pem));
    json_array_append_new(certs, d);
    json_array_append_new(certs, cert_entity(C_CLIENT, &client));
    json_array_append_new(certs, cert_entity(C_CATCHALL, &catchall));

    json_t *snis = json_array();
    json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000001",
                                           "exact.example.com", C_EXACT));
    json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000002",
                                           "*.example.com", C_WILD));
    json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000003",
                                           "www.example.*", C_SUFFIX));
    json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000004",
                                           "dual.test", C_DUAL));
    /* Two spellings of one name: the lower-case one wins whatever the order. */
    json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000005",
                                           "Mixed.Example.NET", C_WILD));
    json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000006",
                                           "mixed.example.net", C_EXACT));
    json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000007",
                                           "Upper.Example.ORG", C_EXACT));
    if (with_catchall)
        json_array_append_new(snis, sni_entity("51000000-0000-4000-8000-000000000008", "*",
                                               C_CATCHALL));

    json_t *svcs = json_array();
    json_array_append_new(svcs, service(S_PLAIN, "https", "example.test"));
    json_t *s = service(S_NOVERIFY, "https", "example.test");
    json_object_set_new(s, "tls_verify", json_false());
    json_array_append_new(svcs, s);
    json_array_append_new(svcs, service(S_HTTP, "http", "example.test"));
    s = service(S_CA, "https", "example.test");
    json_object_set_new(s, "tls_verify", json_true());
    json_object_set_new(s, "tls_verify_depth", json_integer(3));
    json_object_set_new(s, "ca_certificates", json_pack("[s]", CA_ID));
    json_array_append_new(svcs, s);
    s = service(S_CA2, "https", "other.test");
    json_object_set_new(s, "tls_verify", json_true());
    json_object_set_new(s, "tls_verify_depth", json_integer(3));
    json_object_set_new(s, "ca_certificates", json_pack("[s,s]", CA_ID, CA_ID));
    json_array_append_new(svcs, s);
    s = service(S_SYS, "https", "example.test");
    json_object_set_new(s, "tls_verify", json_true());
    json_array_append_new(svcs, s);
    s = service(S_CLIENT, "https", "example.test");
    json_object_set_new(s, "client_certificate", json_pack("{s:s}", "id", C_CLIENT));
    json_array_append_new(svcs, s);
    json_array_append_new(svcs, service(S_UPFALLBACK, "https", "my-upstream"));
    json_array_append_new(svcs, service(S_GRPCS, "grpcs", "example.test"));
    s = service(S_MISSING_CA, "https", "example.test");
    json_object_set_new(s, "tls_verify", json_true());
    json_object_set_new(s, "ca_certificates",
                        json_pack("[s]", "aaaaaaaa-0000-4000-8000-0000000000ff"));
    json_array_append_new(svcs, s);

    return json_pack("{s:s, s:o, s:o, s:o, s:[{s:s, s:s, s:s}], s:[{s:s, s:s, s:{s:s}}], "
                     "s:[], s:[]}",
                     "_format_version", "3.0", "certificates", certs, "snis", snis, "services",
                     svcs, "ca_certificates", "id", CA_ID, "cert", ca.cert_pem, "cert_digest",
                     "x", "upstreams", "id", "0f000000-0000-4000-8000-000000000001", "name",
                     "my-upstream", "client_certificate", "id", C_CLIENT, "routes", "plugins");
}

static aigw_certs_t *build(int with_catchall, unsigned protocols)
{
    json_t *root = snapshot(with_catchall);
    assert_non_null(root);
    char err[256] = "";
    aigw_certs_t *c = aigw_certs_build(root, protocols, err, sizeof(err));
    if (!c)
        fail_msg("build failed: %s", err);
    json_decref(root);
    return c;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static void cn_of(X509 *x, char *out, size_t n)
{
    out[0] = '\0';
    if (x)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)n);
}

static const char *ctx_cn(SSL_CTX *ctx)
{
    static char buf[64];
    if (!ctx)
        return "(none)";
    cn_of(SSL_CTX_get0_certificate(ctx), buf, sizeof(buf));
    return buf;
}

static const char *select_cn(const aigw_certs_t *c, const char *name)
{
    return ctx_cn(aigw_certs_select(c, name));
}

/* Drives both ends over a BIO pair until both finished or one failed: 0 or -1. */
static int handshake(SSL *cli, SSL *srv)
{
    BIO *b1 = NULL, *b2 = NULL;
    assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
    SSL_set_bio(cli, b1, b1);
    SSL_set_bio(srv, b2, b2);
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 64 && !(cdone && sdone); i++) {
        SSL *both[2] = { cli, srv };
        int *done[2] = { &cdone, &sdone };
        for (int k = 0; k < 2; k++) {
            if (*done[k])
                continue;
            ERR_clear_error();
            int r = SSL_do_handshake(both[k]);
            if (r == 1) {
                *done[k] = 1;
                continue;
            }
            int e = SSL_get_error(both[k], r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                return -1;
            }
        }
    }
    return cdone && sdone ? 0 : -1;
}

static int g_client_max_version;   /* 0: OpenSSL's highest */

static SSL_CTX *test_client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_max_proto_version(ctx, g_client_max_version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

/* The server's default context, as http/tls.c would make it from ssl_cert. */
static SSL_CTX *default_server_ctx(aigw_certs_source_t *src)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_use_certificate(ctx, dflt.x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, dflt.key), 1);
    SSL_CTX_set_tlsext_servername_callback(ctx, aigw_certs_on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, src);
    return ctx;
}

static aigw_certs_t *g_current;
static int g_gets;

static aigw_certs_t *get_current(void *ud)
{
    assert_ptr_equal(ud, &g_gets);
    g_gets++;
    return aigw_certs_ref(g_current);
}

/* Connects a client sending sni (NULL: none) to a server on server_ctx; the CN the client
 * received, or "(failed)". Frees both ends unless keep is given. */
static const char *connect_cn(SSL_CTX *server_ctx, const char *sni, const char *sigalgs,
                              SSL **keep_cli, SSL **keep_srv)
{
    static char buf[64];
    SSL_CTX *cctx = test_client_ctx();
    SSL *cli = SSL_new(cctx);
    SSL *srv = SSL_new(server_ctx);
    assert_non_null(cli);
    assert_non_null(srv);
    SSL_CTX_free(cctx);
    if (sni)
        assert_int_equal(SSL_ctrl(cli, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                  (void *)(uintptr_t)sni), 1);
    if (sigalgs)
        assert_int_equal(SSL_ctrl(cli, SSL_CTRL_SET_SIGALGS_LIST, 0, (void *)(uintptr_t)sigalgs),
                         1);
    unsigned char alpn[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
    assert_int_equal(SSL_set_alpn_protos(cli, alpn, sizeof(alpn)), 0);
    if (handshake(cli, srv) != 0) {
        snprintf(buf, sizeof(buf), "(failed)");
    } else {
        X509 *peer = SSL_get1_peer_certificate(cli);
        cn_of(peer, buf, sizeof(buf));
        X509_free(peer);
    }
    if (keep_cli && keep_srv) {
        *keep_cli = cli;
        *keep_srv = srv;
    } else {
        SSL_free(cli);
        SSL_free(srv);
    }
    return buf;
}

/* ---- server side ------------------------------------------------------------------------- */

static void test_select_order(void **state)
{
    (void)state;
    aigw_certs_t *c = build(0, AIGW_TLS_1_2 | AIGW_TLS_1_3);
    /* 1. exact */
    assert_string_equal(select_cn(c, "exact.example.com"), "exact");
    assert_string_equal(select_cn(c, "EXACT.Example.com"), "exact");
    /* 2. prefix wildcard: one label deep, 3+ labels */
    assert_string_equal(select_cn(c, "foo.example.com"), "wild");
    assert_string_equal(select_cn(c, "www.example.com"), "wild");   /* before www.example.* */
    assert_string_equal(select_cn(c, "a.foo.example.com"), "(none)");
    assert_string_equal(select_cn(c, "example.com"), "(none)");
    assert_string_equal(select_cn(c, ".example.com"), "(none)");
    /* 3. suffix wildcard: the last label */
    assert_string_equal(select_cn(c, "www.example.org"), "suffix");
    assert_string_equal(select_cn(c, "www.example.co"), "suffix");
    assert_string_equal(select_cn(c, "www.example.co.uk"), "(none)");
    assert_string_equal(select_cn(c, "www.example."), "(none)");
    /* case: the lower-case spelling wins; upper-case snis match lower-case names */
    assert_string_equal(select_cn(c, "mixed.example.net"), "exact");
    assert_string_equal(select_cn(c, "MIXED.example.net"), "exact");
    assert_string_equal(select_cn(c, "upper.example.org"), "exact");
    /* the pattern itself, as Kong (a lookup of the same name) */
    assert_string_equal(select_cn(c, "*.example.com"), "wild");
    assert_non_null(aigw_certs_select(c, "dual.test"));   /* which half: see the handshakes */
    /* 5. nothing: the caller's default */
    assert_null(aigw_certs_select(c, "nomatch.test"));
    assert_null(aigw_certs_select(c, "localhost"));
    assert_null(aigw_certs_select(c, ""));
    assert_null(aigw_certs_select(c, NULL));
    assert_null(aigw_certs_select(NULL, "exact.example.com"));
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(aigw_certs_select(c, big));
    /* one context per certificate: two snis of one certificate share it */
    assert_ptr_equal(aigw_certs_select(c, "exact.example.com"),
                     aigw_certs_select(c, "upper.example.org"));
    aigw_certs_unref(c);

    /* 4. the catch-all "*" */
    c = build(1, 0);
    assert_string_equal(select_cn(c, "nomatch.test"), "catchall");
    assert_string_equal(select_cn(c, "localhost"), "catchall");
    assert_string_equal(select_cn(c, "a.foo.example.com"), "catchall");
    assert_string_equal(select_cn(c, "foo.example.com"), "wild");
    assert_null(aigw_certs_select(c, NULL));
    aigw_certs_free(c);
}

static void test_server_ctx_policy(void **state)
{
    (void)state;
    aigw_certs_t *c = build(0, AIGW_TLS_1_3);
    SSL_CTX *ctx = aigw_certs_select(c, "exact.example.com");
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
    assert_false(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
    aigw_certs_unref(c);
    c = build(0, AIGW_TLS_1_2 | AIGW_TLS_1_3);
    ctx = aigw_certs_select(c, "exact.example.com");
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    aigw_certs_unref(c);
}

static void test_handshake_sni(void **state)
{
    (void)state;
    g_current = build(0, AIGW_TLS_1_2 | AIGW_TLS_1_3);
    aigw_certs_source_t src = { get_current, &g_gets };
    SSL_CTX *def = default_server_ctx(&src);
    g_gets = 0;
    assert_string_equal(connect_cn(def, "exact.example.com", NULL, NULL, NULL), "exact");
    assert_string_equal(connect_cn(def, "Foo.Example.com", NULL, NULL, NULL), "wild");
    assert_string_equal(connect_cn(def, "www.example.org", NULL, NULL, NULL), "suffix");
    assert_int_equal(g_gets, 3);
    /* no SNI, or a name no sni matches: the default certificate */
    assert_string_equal(connect_cn(def, NULL, NULL, NULL, NULL), "default");
    assert_int_equal(g_gets, 3);   /* not even asked */
    assert_string_equal(connect_cn(def, "nomatch.test", NULL, NULL, NULL), "default");
    /* the RSA or the ECDSA half of one certificate entity, by what the client accepts */
    assert_string_equal(connect_cn(def, "dual.test", "rsa_pss_rsae_sha256", NULL, NULL),
                        "dual-rsa");
    assert_string_equal(connect_cn(def, "dual.test", "ecdsa_secp256r1_sha256", NULL, NULL),
                        "dual-ec");
    assert_string_equal(connect_cn(def, "dual.test", "RSA+SHA256:RSA-PSS+SHA256", NULL, NULL),
                        "dual-rsa");
    /* TLS 1.2 switches the same way */
    g_client_max_version = TLS1_2_VERSION;
    assert_string_equal(connect_cn(def, "exact.example.com", NULL, NULL, NULL), "exact");
    assert_string_equal(connect_cn(def, "dual.test", "RSA+SHA256", NULL, NULL), "dual-rsa");
    assert_string_equal(connect_cn(def, "dual.test", "ECDSA+SHA256", NULL, NULL), "dual-ec");
    assert_string_equal(connect_cn(def, NULL, NULL, NULL, NULL), "default");
    g_client_max_version = 0;
    /* a "*" sni is not used without SNI (Kong) */
    aigw_certs_unref(g_current);
    g_current = build(1, 0);
    assert_string_equal(connect_cn(def, NULL, NULL, NULL, NULL), "default");
    assert_string_equal(connect_cn(def, "nomatch.test", NULL, NULL, NULL), "catchall");
    /* before any configuration: the default */
    aigw_certs_unref(g_current);
    g_current = NULL;
    assert_string_equal(connect_cn(def, "exact.example.com", NULL, NULL, NULL), "default");
    SSL_CTX_free(def);
}

/* The switched connection keeps ALPN, and it outlives the aigw_certs_t that made its
 * context (ASan would see a use after free). */
static void test_switch_and_reload(void **state)
{
    (void)state;
    g_current = build(0, AIGW_TLS_1_2 | AIGW_TLS_1_3);
    aigw_certs_source_t src = { get_current, &g_gets };
    SSL_CTX *def = default_server_ctx(&src);
    SSL *cli = NULL, *srv = NULL;
    SSL_CTX *want = aigw_certs_select(g_current, "exact.example.com");
    assert_string_equal(connect_cn(def, "exact.example.com", NULL, &cli, &srv), "exact");
    assert_ptr_equal(SSL_get_SSL_CTX(srv), want);
    assert_string_equal(SSL_get_servername(srv, TLSEXT_NAMETYPE_host_name),
                        "exact.example.com");
    const unsigned char *proto = NULL;
    unsigned int plen = 0;
    SSL_get0_alpn_selected(cli, &proto, &plen);
    assert_int_equal(plen, 8);
    assert_memory_equal(proto, "http/1.1", 8);
    assert_int_equal(SSL_get_verify_mode(srv), SSL_VERIFY_NONE);
    /* a reload drops the last reference */
    aigw_certs_unref(g_current);
    g_current = NULL;
    char buf[16];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(SSL_write(cli, "ping", 4), 4);
        assert_int_equal(SSL_read(srv, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "ping", 4);
        assert_int_equal(SSL_write(srv, "pong", 4), 4);
        assert_int_equal(SSL_read(cli, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "pong", 4);
    }
    SSL_free(cli);
    SSL_free(srv);
    SSL_CTX_free(def);
}

/* Workers handshaking while the configuration is replaced under them: the getter takes a
 * reference under a lock, the publisher swaps and drops the old one outside it (as the
 * loader does). Run under ASan/TSan: no use after free, no leak. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static aigw_certs_t *g_shared;
static _Atomic int g_stop;

static aigw_certs_t *get_shared(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&g_mu);
    aigw_certs_t *c = aigw_certs_ref(g_shared);
    pthread_mutex_unlock(&g_mu);
    return c;
}

static void *worker(void *arg)
{
    SSL_CTX *def = arg;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    long bad = 0, n = 0;
    while (!atomic_load(&g_stop) || n < 5) {
        SSL *cli = SSL_new(cctx);
        SSL *srv = SSL_new(def);
        SSL_set_tlsext_host_name(cli, (n % 2 ? "exact.example.com" : "foo.example.com"));
        BIO *b1 = NULL, *b2 = NULL;
        BIO_new_bio_pair(&b1, 0, &b2, 0);
        SSL_set_bio(cli, b1, b1);
        SSL_set_bio(srv, b2, b2);
        SSL_set_connect_state(cli);
        SSL_set_accept_state(srv);
        int cd = 0, sd = 0;
        for (int i = 0; i < 64 && !(cd && sd); i++) {
            if (!cd && SSL_do_handshake(cli) == 1)
                cd = 1;
            if (!sd && SSL_do_handshake(srv) == 1)
                sd = 1;
        }
        char cn[64] = "";
        X509 *peer = cd && sd ? SSL_get1_peer_certificate(cli) : NULL;
        cn_of(peer, cn, sizeof(cn));
        X509_free(peer);
        bad += strcmp(cn, n % 2 ? "exact" : "wild") != 0;
        n++;
        SSL_free(cli);
        SSL_free(srv);
        ERR_clear_error();
    }
    SSL_CTX_free(cctx);
    return (void *)(intptr_t)bad;
}

static void test_threads_and_reloads(void **state)
{
    (void)state;
    aigw_certs_source_t src = { get_shared, NULL };
    SSL_CTX *def = default_server_ctx(&src);
    g_shared = build(0, 0);
    atomic_store(&g_stop, 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, def), 0);
    for (int k = 0; k < 6; k++) {
        aigw_certs_t *next = build(0, 0);
        pthread_mutex_lock(&g_mu);
        aigw_certs_t *old = g_shared;
        g_shared = next;
        pthread_mutex_unlock(&g_mu);
        aigw_certs_unref(old);
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 3; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        assert_int_equal((intptr_t)bad, 0);
    }
    aigw_certs_unref(g_shared);
    g_shared = NULL;
    SSL_CTX_free(def);
}

/* ---- client side ------------------------------------------------------------------------- */

static int accept_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static int on_upstream_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                            const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h2[] = { 2, 'h', '2' };
    unsigned char *sel;
    unsigned char sellen;
    if (SSL_select_next_proto(&sel, &sellen, h2, sizeof(h2), in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        *outlen = sellen;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* The upstream: the CA-signed leaf for example.test; asks for (and accepts any) client
 * certificate; speaks h2 when offered. */
static SSL_CTX *upstream_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, upstream.x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, upstream.key), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
    SSL_CTX_set_alpn_select_cb(ctx, on_upstream_alpn, NULL);
    return ctx;
}

typedef struct upres {
    int ok;
    long verify;
    char sni[64];          /* what the upstream received; "" for none */
    char client_cn[64];    /* the client certificate the upstream received */
    char alpn[8];
    char why[96];
} upres_t;

static upres_t connect_upstream(const aigw_certs_t *c, const char *service_id,
                                const char *host, int verify)
{
    upres_t r = { 0 };
    SSL_CTX *uctx = upstream_ctx();
    SSL *srv = SSL_new(uctx);
    SSL *cli = SSL_new(aigw_certs_client_ctx(c, service_id));
    assert_non_null(srv);
    assert_non_null(cli);
    assert_int_equal(aigw_certs_client_prepare(cli, host, verify), 0);
    r.ok = handshake(cli, srv) == 0;
    r.verify = SSL_get_verify_result(cli);
    aigw_certs_verify_error(cli, r.why, sizeof(r.why));
    const char *sn = SSL_get_servername(srv, TLSEXT_NAMETYPE_host_name);
    snprintf(r.sni, sizeof(r.sni), "%s", sn ? sn : "");
    X509 *peer = SSL_get1_peer_certificate(srv);
    cn_of(peer, r.client_cn, sizeof(r.client_cn));
    X509_free(peer);
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(cli, &p, &n);
    if (p && n < sizeof(r.alpn)) {
        memcpy(r.alpn, p, n);
        r.alpn[n] = '\0';
    }
    SSL_free(cli);
    SSL_free(srv);
    SSL_CTX_free(uctx);
    return r;
}

static void test_client_verify(void **state)
{
    (void)state;
    aigw_certs_t *c = build(0, 0);
    /* tls_verify with the right CA and host */
    assert_int_equal(aigw_certs_client_verifies(c, S_CA), 1);
    upres_t r = connect_upstream(c, S_CA, "example.test", -1);
    assert_true(r.ok);
    assert_int_equal(r.verify, X509_V_OK);
    assert_string_equal(r.sni, "example.test");
    assert_string_equal(r.client_cn, "");
    /* a wrong host */
    r = connect_upstream(c, S_CA, "other.test", 1);
    assert_false(r.ok);
    assert_int_equal(r.verify, X509_V_ERR_HOSTNAME_MISMATCH);
    assert_string_equal(r.why, "(62:hostname mismatch)");
    assert_string_equal(r.sni, "other.test");
    /* IP literals: no SNI; checked against IP subjectAltNames */
    r = connect_upstream(c, S_CA, "127.0.0.1", -1);
    assert_true(r.ok);
    assert_string_equal(r.sni, "");
    r = connect_upstream(c, S_CA, "10.0.0.1", -1);
    assert_false(r.ok);
    assert_int_equal(r.verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
    r = connect_upstream(c, S_CA, "[::1]", -1);
    assert_false(r.ok);
    assert_string_equal(r.sni, "");
    /* without the CA: the system store does not know it */
    assert_int_equal(aigw_certs_client_verifies(c, S_SYS), 1);
    r = connect_upstream(c, S_SYS, "example.test", -1);
    assert_false(r.ok);
    assert_int_equal(r.verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_string_equal(r.why, "(20:unable to get local issuer certificate)");
    /* a CA id that does not exist: left out, so nothing is trusted */
    r = connect_upstream(c, S_MISSING_CA, "example.test", -1);
    assert_false(r.ok);
    assert_int_equal(r.verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    /* tls_verify null or false: Kong's default, no verification */
    assert_int_equal(aigw_certs_client_verifies(c, S_PLAIN), 0);
    assert_int_equal(aigw_certs_client_verifies(c, S_NOVERIFY), 0);
    r = connect_upstream(c, S_PLAIN, "other.test", -1);
    assert_true(r.ok);
    assert_string_equal(r.sni, "other.test");
    assert_string_equal(r.alpn, "");
    r = connect_upstream(c, S_NOVERIFY, "example.test", -1);
    assert_true(r.ok);
    /* a host check asked for on a non-verifying context does not fail the handshake
     * (verify mode none); the result still records a failure */
    r = connect_upstream(c, S_PLAIN, "other.test", 1);
    assert_true(r.ok);
    assert_int_not_equal(r.verify, X509_V_OK);
    aigw_certs_unref(c);
}

static void test_client_ctx_sharing(void **state)
{
    (void)state;
    aigw_certs_t *c = build(0, 0);
    SSL_CTX *def = aigw_certs_client_ctx(c, NULL);
    assert_non_null(def);
    assert_ptr_equal(aigw_certs_client_ctx(c, S_PLAIN), def);
    assert_ptr_equal(aigw_certs_client_ctx(c, S_NOVERIFY), def);
    assert_ptr_equal(aigw_certs_client_ctx(c, S_HTTP), def);
    assert_ptr_equal(aigw_certs_client_ctx(c, "no-such-service"), def);
    assert_int_equal(SSL_CTX_get_verify_mode(def), SSL_VERIFY_NONE);
    assert_int_equal(SSL_CTX_get_min_proto_version(def), TLS1_2_VERSION);
    SSL_CTX *ca1 = aigw_certs_client_ctx(c, S_CA);
    assert_ptr_not_equal(ca1, def);
    assert_ptr_equal(aigw_certs_client_ctx(c, S_CA2), ca1);   /* same CA set (duplicate id) */
    assert_int_equal(SSL_CTX_get_verify_mode(ca1), SSL_VERIFY_PEER);
    assert_int_equal(SSL_CTX_get_verify_depth(ca1), 3);
    SSL_CTX *sys = aigw_certs_client_ctx(c, S_SYS);
    assert_ptr_not_equal(sys, ca1);
    assert_int_equal(SSL_CTX_get_verify_depth(sys), 1);   /* nginx's default */
    SSL_CTX *cc = aigw_certs_client_ctx(c, S_CLIENT);
    assert_ptr_not_equal(cc, def);
    assert_ptr_equal(aigw_certs_client_ctx(c, S_UPFALLBACK), cc);
    assert_ptr_not_equal(aigw_certs_client_ctx(c, S_GRPCS), def);
    assert_null(aigw_certs_client_ctx(NULL, S_PLAIN));
    aigw_certs_unref(c);
}

static void test_client_certificate_and_alpn(void **state)
{
    (void)state;
    aigw_certs_t *c = build(0, 0);
    upres_t r = connect_upstream(c, S_CLIENT, "example.test", -1);
    assert_true(r.ok);
    assert_string_equal(r.client_cn, "client");
    /* the upstream entity named as the service's host lends its client_certificate */
    r = connect_upstream(c, S_UPFALLBACK, "my-upstream", -1);
    assert_true(r.ok);
    assert_string_equal(r.client_cn, "client");
    r = connect_upstream(c, S_PLAIN, "example.test", -1);
    assert_string_equal(r.client_cn, "");
    /* grpcs offers h2 */
    r = connect_upstream(c, S_GRPCS, "example.test", -1);
    assert_true(r.ok);
    assert_string_equal(r.alpn, "h2");
    /* the contexts outlive the object for connections made from them */
    SSL *cli = SSL_new(aigw_certs_client_ctx(c, S_CA));
    aigw_certs_unref(c);
    SSL_CTX *uctx = upstream_ctx();
    SSL *srv = SSL_new(uctx);
    assert_int_equal(aigw_certs_client_prepare(cli, "example.test", -1), 0);
    assert_int_equal(handshake(cli, srv), 0);
    assert_int_equal(SSL_get_verify_result(cli), X509_V_OK);
    SSL_free(cli);
    SSL_free(srv);
    SSL_CTX_free(uctx);
}

static void test_prepare_edges(void **state)
{
    (void)state;
    aigw_certs_t *c = build(0, 0);
    SSL *ssl = SSL_new(aigw_certs_client_ctx(c, S_PLAIN));
    assert_int_equal(aigw_certs_client_prepare(ssl, NULL, 1), 0);
    assert_int_equal(aigw_certs_client_prepare(ssl, "", 1), 0);
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(aigw_certs_client_prepare(ssl, big, 0), -1);
    assert_int_equal(aigw_certs_client_prepare(NULL, "example.test", 0), -1);
    assert_int_equal(ERR_peek_error(), 0);
    SSL_free(ssl);
    aigw_certs_unref(c);
}

/* ---- broken input ------------------------------------------------------------------------ */

static void expect_error(json_t *root, const char *want)
{
    char err[512] = "";
    aigw_certs_t *c = aigw_certs_build(root, 0, err, sizeof(err));
    if (c || !strstr(err, want))
        fail_msg("want an error containing \"%s\", got \"%s\"", want, c ? "(built)" : err);
    json_decref(root);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_broken(void **state)
{
    (void)state;
    static const char garbage[] =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    json_t *root = snapshot(0);
    json_object_set_new(json_array_get(json_object_get(root, "certificates"), 2), "cert",
                        json_string(garbage));
    expect_error(root, "certificate " C_SUFFIX ": could not parse PEM certificate: ");

    root = snapshot(0);
    json_object_set_new(json_array_get(json_object_get(root, "certificates"), 0), "cert",
                        json_string("hello"));
    expect_error(root, "certificate " C_EXACT ": could not parse PEM certificate: no start line");

    root = snapshot(0);
    json_object_set_new(json_array_get(json_object_get(root, "certificates"), 1), "key",
                        json_string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"));
    expect_error(root, "certificate " C_WILD ": could not parse PEM private key: ");

    root = snapshot(0);
    json_object_set_new(json_array_get(json_object_get(root, "certificates"), 1), "key",
                        json_string(exact.key_pem));
    expect_error(root, "certificate " C_WILD ": certificate does not match key");

    root = snapshot(0);
    json_t *d = json_array_get(json_object_get(root, "certificates"), 3);
    json_object_set_new(d, "key_alt", json_string(client.key_pem));
    expect_error(root, "certificate " C_DUAL ": alternative certificate does not match key");

    root = snapshot(0);
    d = json_array_get(json_object_get(root, "certificates"), 3);
    json_object_set_new(d, "cert", json_string(client.cert_pem));
    json_object_set_new(d, "key", json_string(client.key_pem));
    expect_error(root, "certificate " C_DUAL ": certificate and alternative certificate need "
                       "to have different type (e.g. RSA and ECDSA)");

    /* a broken chain certificate after a good leaf */
    root = snapshot(0);
    size_t n = strlen(exact.cert_pem) + sizeof(garbage);
    char *chain = malloc(n);
    assert_non_null(chain);
    snprintf(chain, n, "%s%s", exact.cert_pem, garbage);
    json_object_set_new(json_array_get(json_object_get(root, "certificates"), 0), "cert",
                        json_string(chain));
    free(chain);
    expect_error(root, "certificate " C_EXACT ": could not parse PEM certificate: ");

    root = snapshot(0);
    json_object_set_new(json_array_get(json_object_get(root, "ca_certificates"), 0), "cert",
                        json_string("nope"));
    expect_error(root, "ca_certificate " CA_ID ": could not parse PEM certificate: ");

    /* an unusable certificate fails even when no sni names it (it may be a client one) */
    root = snapshot(0);
    json_object_set_new(json_array_get(json_object_get(root, "certificates"), 4), "cert",
                        json_string("nope"));
    expect_error(root, "certificate " C_CLIENT ": could not parse PEM certificate");

    expect_error(json_array(), "not an object");
}

/* A chain in `cert` is sent after the leaf; an empty snapshot builds. */
static void test_chain_and_empty(void **state)
{
    (void)state;
    size_t n = strlen(upstream.cert_pem) + strlen(ca.cert_pem) + 1;
    char *chain = malloc(n);
    assert_non_null(chain);
    snprintf(chain, n, "%s%s", upstream.cert_pem, ca.cert_pem);
    json_t *root = json_pack("{s:[{s:s, s:s, s:s}], s:[{s:s, s:s, s:{s:s}}]}", "certificates",
                             "id", C_EXACT, "cert", chain, "key", upstream.key_pem, "snis",
                             "id", "51000000-0000-4000-8000-000000000001", "name",
                             "example.test", "certificate", "id", C_EXACT);
    free(chain);
    char err[256] = "";
    aigw_certs_t *c = aigw_certs_build(root, 0, err, sizeof(err));
    json_decref(root);
    assert_non_null(c);
    SSL_CTX *ctx = aigw_certs_select(c, "example.test");
    assert_non_null(ctx);
    STACK_OF(X509) *extra = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &extra), 1);
    assert_int_equal(sk_X509_num(extra), 1);
    assert_int_equal(X509_cmp(sk_X509_value(extra, 0), ca.x), 0);
    aigw_certs_unref(c);

    root = json_object();
    c = aigw_certs_build(root, 0, err, sizeof(err));
    json_decref(root);
    assert_non_null(c);
    assert_null(aigw_certs_select(c, "example.test"));
    assert_non_null(aigw_certs_client_ctx(c, S_PLAIN));
    assert_ptr_equal(aigw_certs_ref(c), c);
    aigw_certs_unref(c);
    aigw_certs_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_order),
        cmocka_unit_test(test_server_ctx_policy),
        cmocka_unit_test(test_handshake_sni),
        cmocka_unit_test(test_switch_and_reload),
        cmocka_unit_test(test_threads_and_reloads),
        cmocka_unit_test(test_client_verify),
        cmocka_unit_test(test_client_ctx_sharing),
        cmocka_unit_test(test_client_certificate_and_alpn),
        cmocka_unit_test(test_prepare_edges),
        cmocka_unit_test(test_broken),
        cmocka_unit_test(test_chain_and_empty),
    };
    return cmocka_run_group_tests_name("certs", tests, setup, teardown);
}
