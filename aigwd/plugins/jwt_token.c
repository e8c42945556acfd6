/* aigwd/plugins/jwt_token.c: JSON Web Token parsing and signatures (see jwt_token.h). */
#include "plugins/jwt_token.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The longest signature aigw_jwt_encode handles (RSA 16384). */
#define SIG_MAX 2048

struct aigw_jwt_key {
    EVP_PKEY *pkey;            /* NULL for an HMAC secret */
    size_t secret_len;
    unsigned char secret[];    /* HMAC secret */
};

static const char *const alg_names[AIGW_JWT_ALG_COUNT] = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256",
    "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
};

aigw_jwt_alg_t aigw_jwt_alg_parse(const char *s, size_t n)
{
    if (!s)
        return AIGW_JWT_ALG_NONE;
    for (int i = 0; i < AIGW_JWT_ALG_COUNT; i++)
        if (strlen(alg_names[i]) == n && memcmp(alg_names[i], s, n) == 0)
            return (aigw_jwt_alg_t)i;
    return AIGW_JWT_ALG_NONE;
}

const char *aigw_jwt_alg_name(aigw_jwt_alg_t alg)
{
    return alg >= 0 && alg < AIGW_JWT_ALG_COUNT ? alg_names[alg] : "";
}

int aigw_jwt_alg_is_hmac(aigw_jwt_alg_t alg)
{
    return alg == AIGW_JWT_HS256 || alg == AIGW_JWT_HS384 || alg == AIGW_JWT_HS512;
}

/* The digest of an algorithm ("SHA256", ...), NULL for EdDSA. */
static const char *alg_digest(aigw_jwt_alg_t alg)
{
    switch (alg) {
    case AIGW_JWT_HS256: case AIGW_JWT_RS256: case AIGW_JWT_PS256: case AIGW_JWT_ES256:
        return "SHA256";
    case AIGW_JWT_HS384: case AIGW_JWT_RS384: case AIGW_JWT_PS384: case AIGW_JWT_ES384:
        return "SHA384";
    case AIGW_JWT_HS512: case AIGW_JWT_RS512: case AIGW_JWT_PS512: case AIGW_JWT_ES512:
        return "SHA512";
    default:
        return NULL;
    }
}

/* ---- base64url ---------------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int aigw_jwt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    size_t len = 0;
    for (; len < n; len++) {
        if (in[len] == '=')
            break;
        if (b64url_value((unsigned char)in[len]) < 0)
            return -1;
    }
    if (len % 4 == 1)
        return -1;
    size_t k = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        unsigned v = (unsigned)b64url_value((unsigned char)in[i]) << 18 |
                     (unsigned)b64url_value((unsigned char)in[i + 1]) << 12 |
                     (unsigned)b64url_value((unsigned char)in[i + 2]) << 6 |
                     (unsigned)b64url_value((unsigned char)in[i + 3]);
        out[k++] = (unsigned char)(v >> 16);
        out[k++] = (unsigned char)(v >> 8);
        out[k++] = (unsigned char)v;
    }
    size_t rest = len - i;
    if (rest >= 2) {
        unsigned v = (unsigned)b64url_value((unsigned char)in[i]) << 18 |
                     (unsigned)b64url_value((unsigned char)in[i + 1]) << 12;
        if (rest == 3)
            v |= (unsigned)b64url_value((unsigned char)in[i + 2]) << 6;
        out[k++] = (unsigned char)(v >> 16);
        if (rest == 3)
            out[k++] = (unsigned char)(v >> 8);
    }
    *outlen = k;
    return 0;
}

size_t aigw_jwt_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t k = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[k++] = tab[v >> 18 & 63];
        out[k++] = tab[v >> 12 & 63];
        out[k++] = tab[v >> 6 & 63];
        out[k++] = tab[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[k++] = tab[v >> 18 & 63];
        out[k++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[k++] = tab[v >> 18 & 63];
        out[k++] = tab[v >> 12 & 63];
        out[k++] = tab[v >> 6 & 63];
    }
    out[k] = '\0';
    return k;
}

/* ---- parsing ------------------------------------------------------------------------------ */

const char *aigw_jwt_strerror(aigw_jwt_err_t e)
{
    switch (e) {
    case AIGW_JWT_OK: return "ok";
    case AIGW_JWT_E_JSON: return "invalid JSON";
    case AIGW_JWT_E_ALG: return "invalid alg";
    case AIGW_JWT_E_CLAIMS: return "invalid claims";
    case AIGW_JWT_E_SIGNATURE: return "invalid signature";
    case AIGW_JWT_E_NOMEM: return "out of memory";
    }
    return "invalid token";
}

/* Decodes one base64url part to a malloc'ed buffer; NULL on a bad encoding (*nomem set when
 * that is the reason). */
static unsigned char *decode_part(const char *p, size_t n, size_t *len, int *nomem)
{
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    if (!buf) {
        *nomem = 1;
        return NULL;
    }
    if (aigw_jwt_b64url_decode(p, n, buf, len) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static json_t *decode_json(const char *p, size_t n, int *nomem)
{
    size_t len;
    unsigned char *buf = decode_part(p, n, &len, nomem);
    if (!buf)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    free(buf);
    return j;
}

void aigw_jwt_clear(aigw_jwt_t *t)
{
    if (!t)
        return;
    json_decref(t->header);
    json_decref(t->claims);
    free(t->sig);
    memset(t, 0, sizeof(*t));
    t->alg = AIGW_JWT_ALG_NONE;
}

aigw_jwt_err_t aigw_jwt_parse(const char *token, size_t n, aigw_jwt_t *out)
{
    memset(out, 0, sizeof(*out));
    out->alg = AIGW_JWT_ALG_NONE;
    if (!token || n > AIGW_JWT_MAX_TOKEN)
        return AIGW_JWT_E_JSON;
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(token + n - d1 - 1)) : NULL;
    if (!d2)
        return AIGW_JWT_E_JSON;   /* a missing part: Kong decodes nil, which throws */
    const char *c = d1 + 1, *s = d2 + 1;
    size_t hn = (size_t)(d1 - token), cn = (size_t)(d2 - c), sn = (size_t)(token + n - s);
    int nomem = 0;
    aigw_jwt_err_t rc;

    /* Kong decodes header, claims and signature in one pcall: a JSON or base64 failure of the
     * first two is "invalid JSON"; an undecodable signature is only noticed later. */
    out->header = decode_json(token, hn, &nomem);
    if (out->header)
        out->claims = decode_json(c, cn, &nomem);
    if (!out->header || !out->claims) {
        rc = nomem ? AIGW_JWT_E_NOMEM : AIGW_JWT_E_JSON;
        goto fail;
    }
    const json_t *alg = json_is_object(out->header) ? json_object_get(out->header, "alg") : NULL;
    if (!json_is_string(alg) ||
        (out->alg = aigw_jwt_alg_parse(json_string_value(alg), json_string_length(alg))) ==
            AIGW_JWT_ALG_NONE) {
        rc = AIGW_JWT_E_ALG;
        goto fail;
    }
    if (!json_is_object(out->claims)) {
        rc = AIGW_JWT_E_CLAIMS;
        goto fail;
    }
    out->sig = decode_part(s, sn, &out->sig_len, &nomem);
    if (!out->sig) {
        rc = nomem ? AIGW_JWT_E_NOMEM : AIGW_JWT_E_SIGNATURE;
        goto fail;
    }
    out->signing_input = token;
    out->signing_input_len = (size_t)(d2 - token);
    return AIGW_JWT_OK;
fail:
    aigw_jwt_clear(out);
    return rc;
}

/* ---- keys --------------------------------------------------------------------------------- */

aigw_jwt_key_t *aigw_jwt_key_hmac(const unsigned char *secret, size_t n)
{
    aigw_jwt_key_t *k = malloc(sizeof(*k) + n + 1);
    if (!k)
        return NULL;
    k->pkey = NULL;
    k->secret_len = n;
    if (n)
        memcpy(k->secret, secret, n);
    k->secret[n] = 0;
    return k;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

aigw_jwt_key_t *aigw_jwt_key_pem(const char *pem, size_t n)
{
    if (!pem || n == 0 || n > 1024 * 1024)
        return NULL;
    EVP_PKEY *pk = NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    if (b) {
        pk = PEM_read_bio_PUBKEY(b, NULL, no_passphrase, NULL);
        BIO_free(b);
    }
    if (!pk && (b = BIO_new_mem_buf(pem, (int)n)) != NULL) {
        pk = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
        BIO_free(b);
    }
    if (!pk) {
        const unsigned char *p = (const unsigned char *)pem;
        pk = d2i_PUBKEY(NULL, &p, (long)n);
    }
    if (!pk) {
        const unsigned char *p = (const unsigned char *)pem;
        pk = d2i_AutoPrivateKey(NULL, &p, (long)n);
    }
    ERR_clear_error();
    if (!pk)
        return NULL;
    aigw_jwt_key_t *k = malloc(sizeof(*k) + 1);
    if (!k) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    k->pkey = pk;
    k->secret_len = 0;
    k->secret[0] = 0;
    return k;
}

aigw_jwt_key_t *aigw_jwt_key_pkey(void *evp_pkey)
{
    if (!evp_pkey)
        return NULL;
    aigw_jwt_key_t *k = malloc(sizeof(*k) + 1);
    if (!k)
        return NULL;
    if (EVP_PKEY_up_ref((EVP_PKEY *)evp_pkey) != 1) {
        free(k);
        return NULL;
    }
    k->pkey = evp_pkey;
    k->secret_len = 0;
    k->secret[0] = 0;
    return k;
}

void aigw_jwt_key_free(aigw_jwt_key_t *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k->secret, k->secret_len);
    free(k);
}

/* The size in bytes of r (and s) for an ES algorithm whose key is on the right curve, else 0. */
static size_t es_component_size(aigw_jwt_alg_t alg, EVP_PKEY *pk)
{
    const char *want;
    size_t size;
    switch (alg) {
    case AIGW_JWT_ES256: want = "prime256v1"; size = 32; break;
    case AIGW_JWT_ES384: want = "secp384r1"; size = 48; break;
    case AIGW_JWT_ES512: want = "secp521r1"; size = 66; break;
    default: return 0;
    }
    if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC)
        return 0;
    char name[64];
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len) !=
        1)
        return 0;
    /* P-256 may also be reported by its NIST name. */
    if (strcmp(name, want) != 0 &&
        !(alg == AIGW_JWT_ES256 && strcmp(name, "P-256") == 0) &&
        !(alg == AIGW_JWT_ES384 && strcmp(name, "P-384") == 0) &&
        !(alg == AIGW_JWT_ES512 && strcmp(name, "P-521") == 0))
        return 0;
    return size;
}

/* 1 when the key is of the kind alg needs. */
static int key_fits(aigw_jwt_alg_t alg, const aigw_jwt_key_t *key)
{
    if (aigw_jwt_alg_is_hmac(alg))
        return key->pkey == NULL;
    if (!key->pkey)
        return 0;
    int id = EVP_PKEY_get_base_id(key->pkey);
    switch (alg) {
    case AIGW_JWT_RS256: case AIGW_JWT_RS384: case AIGW_JWT_RS512:
        return id == EVP_PKEY_RSA;
    case AIGW_JWT_PS256: case AIGW_JWT_PS384: case AIGW_JWT_PS512:
        return id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS;
    case AIGW_JWT_ES256: case AIGW_JWT_ES384: case AIGW_JWT_ES512:
        return es_component_size(alg, key->pkey) != 0;
    case AIGW_JWT_EDDSA:
        return id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448;
    default:
        return 0;
    }
}

/* HMAC on the hot path: EVP_Q_mac fetches the MAC and the digest by name at every call,
 * which costs more than the hashing. Instead the MAC is fetched once per process and each
 * thread keeps one context per digest (digest set once), re-keyed for every signature; a
 * thread's contexts are freed when it ends. */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_mac;
static pthread_key_t mac_tls;
static int mac_tls_ok;

typedef struct mac_cache {
    EVP_MAC_CTX *ctx[3];       /* HS256, HS384, HS512 */
} mac_cache_t;

static void mac_cache_free(void *p)
{
    mac_cache_t *c = p;
    for (int i = 0; i < 3; i++)
        EVP_MAC_CTX_free(c->ctx[i]);
    free(c);
}

static void mac_init_once(void)
{
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    mac_tls_ok = pthread_key_create(&mac_tls, mac_cache_free) == 0;
}

static EVP_MAC_CTX *thread_mac(aigw_jwt_alg_t alg)
{
    pthread_once(&mac_once, mac_init_once);
    if (!hmac_mac || !mac_tls_ok)
        return NULL;
    mac_cache_t *c = pthread_getspecific(mac_tls);
    if (!c) {
        if (!(c = calloc(1, sizeof(*c))))
            return NULL;
        if (pthread_setspecific(mac_tls, c) != 0) {
            free(c);
            return NULL;
        }
    }
    int i = alg == AIGW_JWT_HS256 ? 0 : alg == AIGW_JWT_HS384 ? 1 : 2;
    if (!c->ctx[i]) {
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_mac);
        OSSL_PARAM prm[2] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                             (char *)(uintptr_t)alg_digest(alg), 0),
            OSSL_PARAM_construct_end(),
        };
        if (!ctx || EVP_MAC_CTX_set_params(ctx, prm) != 1) {
            EVP_MAC_CTX_free(ctx);
            return NULL;
        }
        c->ctx[i] = ctx;
    }
    return c->ctx[i];
}

static int hmac(aigw_jwt_alg_t alg, const aigw_jwt_key_t *key, const void *data, size_t n,
                unsigned char *out, size_t *outlen)
{
    /* A zero-length key still needs a valid pointer (NULL would keep the previous key):
     * secret[] always has one byte. */
    EVP_MAC_CTX *ctx = thread_mac(alg);
    if (ctx && EVP_MAC_init(ctx, key->secret, key->secret_len, NULL) == 1 &&
        EVP_MAC_update(ctx, data, n) == 1 &&
        EVP_MAC_final(ctx, out, outlen, EVP_MAX_MD_SIZE) == 1)
        return 0;
    return EVP_Q_mac(NULL, "HMAC", NULL, alg_digest(alg), NULL, key->secret, key->secret_len,
                     data, n, out, EVP_MAX_MD_SIZE, outlen) != NULL
               ? 0
               : -1;
}

/* r||s (2 * size bytes) to a DER ECDSA-Sig-Value (malloc'ed). */
static unsigned char *es_raw_to_der(const unsigned char *sig, size_t size, size_t *der_len)
{
    unsigned char *der = NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)size, NULL), *s = BN_bin2bn(sig + size, (int)size, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    int len = i2d_ECDSA_SIG(es, NULL);
    if (len > 0 && (der = malloc((size_t)len)) != NULL) {
        unsigned char *p = der;
        *der_len = (size_t)i2d_ECDSA_SIG(es, &p);
    }
    ECDSA_SIG_free(es);
    return der;
}

/* Sets the padding of an RS/PS operation; 0 or -1. */
static int set_padding(aigw_jwt_alg_t alg, EVP_PKEY_CTX *pctx, int signing)
{
    if (alg != AIGW_JWT_PS256 && alg != AIGW_JWT_PS384 && alg != AIGW_JWT_PS512)
        return 0;
    if (EVP_PKEY_get_base_id(EVP_PKEY_CTX_get0_pkey(pctx)) == EVP_PKEY_RSA &&
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0)
        return -1;
    /* RFC 7518 3.5: the salt is as long as the hash; verification accepts any length, as
     * Kong's (OpenSSL's default). */
    return EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, signing ? RSA_PSS_SALTLEN_DIGEST
                                                          : RSA_PSS_SALTLEN_AUTO) > 0
               ? 0
               : -1;
}

int aigw_jwt_verify(aigw_jwt_alg_t alg, const aigw_jwt_key_t *key, const void *data, size_t n,
                    const unsigned char *sig, size_t sig_len)
{
    if (!key || !sig || alg < 0 || alg >= AIGW_JWT_ALG_COUNT || !key_fits(alg, key))
        return 0;
    if (aigw_jwt_alg_is_hmac(alg)) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t len = 0;
        if (hmac(alg, key, data, n, mac, &len) != 0)
            return 0;
        int ok = len == sig_len && CRYPTO_memcmp(mac, sig, len) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        return ok;
    }
    unsigned char *der = NULL;
    if (alg == AIGW_JWT_ES256 || alg == AIGW_JWT_ES384 || alg == AIGW_JWT_ES512) {
        size_t size = es_component_size(alg, key->pkey);
        if (sig_len != 2 * size)
            return 0;
        if (!(der = es_raw_to_der(sig, size, &sig_len)))
            return 0;
        sig = der;
    }
    int ok = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (md && EVP_DigestVerifyInit_ex(md, &pctx, alg_digest(alg), NULL, NULL, key->pkey, NULL) ==
                  1 &&
        set_padding(alg, pctx, 0) == 0)
        ok = EVP_DigestVerify(md, sig, sig_len, data, n) == 1;
    EVP_MD_CTX_free(md);
    free(der);
    ERR_clear_error();
    return ok;
}

int aigw_jwt_sign(aigw_jwt_alg_t alg, const aigw_jwt_key_t *key, const void *data, size_t n,
                  unsigned char **sig, size_t *sig_len)
{
    *sig = NULL;
    *sig_len = 0;
    if (!key || alg < 0 || alg >= AIGW_JWT_ALG_COUNT || !key_fits(alg, key))
        return -1;
    if (aigw_jwt_alg_is_hmac(alg)) {
        unsigned char *out = malloc(EVP_MAX_MD_SIZE);
        if (!out || hmac(alg, key, data, n, out, sig_len) != 0) {
            free(out);
            return -1;
        }
        *sig = out;
        return 0;
    }
    int rc = -1;
    unsigned char *out = NULL;
    size_t len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (!md ||
        EVP_DigestSignInit_ex(md, &pctx, alg_digest(alg), NULL, NULL, key->pkey, NULL) != 1 ||
        set_padding(alg, pctx, 1) != 0 || EVP_DigestSign(md, NULL, &len, data, n) != 1 ||
        !(out = malloc(len)) || EVP_DigestSign(md, out, &len, data, n) != 1)
        goto out;
    if (alg == AIGW_JWT_ES256 || alg == AIGW_JWT_ES384 || alg == AIGW_JWT_ES512) {
        size_t size = es_component_size(alg, key->pkey);
        const unsigned char *p = out;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
        unsigned char *raw = es ? malloc(2 * size) : NULL;
        if (!raw || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)size) < 0 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + size, (int)size) < 0) {
            free(raw);
            ECDSA_SIG_free(es);
            goto out;
        }
        ECDSA_SIG_free(es);
        free(out);
        out = raw;
        len = 2 * size;
    }
    *sig = out;
    *sig_len = len;
    out = NULL;
    rc = 0;
out:
    free(out);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

static char *b64_json(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (out)
        *len = aigw_jwt_b64url_encode((const unsigned char *)s, n, out);
    free(s);
    return out;
}

char *aigw_jwt_encode(const json_t *header, const json_t *claims, aigw_jwt_alg_t alg,
                      const aigw_jwt_key_t *key)
{
    size_t hn = 0, cn = 0, sn = 0;
    char *h = b64_json(header, &hn), *c = b64_json(claims, &cn), *tok = NULL;
    unsigned char *sig = NULL;
    if (!h || !c)
        goto out;
    size_t in_len = hn + 1 + cn;
    if (!(tok = malloc(in_len + 1 + (SIG_MAX + 2) / 3 * 4 + 1)))
        goto out;
    memcpy(tok, h, hn);
    tok[hn] = '.';
    memcpy(tok + hn + 1, c, cn);
    if (aigw_jwt_sign(alg, key, tok, in_len, &sig, &sn) != 0 || sn > SIG_MAX) {
        free(tok);
        tok = NULL;
        goto out;
    }
    tok[in_len] = '.';
    aigw_jwt_b64url_encode(sig, sn, tok + in_len + 1);
out:
    free(h);
    free(c);
    free(sig);
    return tok;
}
