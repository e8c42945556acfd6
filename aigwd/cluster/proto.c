/* aigwd/cluster/proto.c: see proto.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <zlib.h>
#include "cluster/proto.h"
#include "common/str.h"

/* Level 1: a 5 MB configuration compresses in ~20 ms instead of ~100 ms at level 6, for a
 * payload about 1.3x larger; propagation time matters more than bytes on the link. */
#define ZLEVEL 1

/* ---- frames ----------------------------------------------------------------------------- */

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)aigw_cf_get32(p) << 32 | aigw_cf_get32(p + 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    aigw_cf_put32(p, (uint32_t)(v >> 32));
    aigw_cf_put32(p + 4, (uint32_t)v);
}

void aigw_cf_header(uint8_t out[AIGW_CF_HDR], int type, uint32_t len)
{
    out[0] = (uint8_t)type;
    aigw_cf_put32(out + 1, len);
}

uint8_t *aigw_cf_frame(int type, const void *payload, size_t len, size_t *out_len)
{
    uint8_t *f = malloc(AIGW_CF_HDR + len);
    if (!f)
        return NULL;
    aigw_cf_header(f, type, (uint32_t)len);
    if (len)
        memcpy(f + AIGW_CF_HDR, payload, len);
    *out_len = AIGW_CF_HDR + len;
    return f;
}

int aigw_cf_feed(aigw_cf_reader_t *r, const uint8_t *p, size_t n, size_t *used, char *err,
                 size_t errlen)
{
    size_t i = 0;
    while (r->hdr_n < AIGW_CF_HDR) {
        if (i == n) {
            *used = i;
            return 0;
        }
        r->hdr[r->hdr_n++] = p[i++];
        if (r->hdr_n == AIGW_CF_HDR) {
            r->type = r->hdr[0];
            r->len = aigw_cf_get32(r->hdr + 1);
            r->got = 0;
            int big = r->type == AIGW_CF_SNAPSHOT || r->type == AIGW_CF_DELTA;
            uint64_t max = big ? r->max_snapshot : AIGW_CF_SMALL_MAX;
            if (r->type < AIGW_CF_HELLO || r->type > AIGW_CF_RESYNC) {
                snprintf(err, errlen, "unknown frame type %u", r->type);
                *used = i;
                return -1;
            }
            if (r->len > max) {
                snprintf(err, errlen, "frame of %u bytes exceeds the limit of %llu bytes%s",
                         r->len, (unsigned long long)max,
                         big ? " (cluster_max_payload)" : "");
                *used = i;
                return -1;
            }
            if (r->len) {
                r->payload = malloc(r->len);
                if (!r->payload) {
                    snprintf(err, errlen, "out of memory for a %u-byte frame", r->len);
                    *used = i;
                    return -1;
                }
            }
        }
    }
    size_t want = r->len - r->got, take = n - i < want ? n - i : want;
    if (take)
        memcpy(r->payload + r->got, p + i, take);
    r->got += take;
    i += take;
    *used = i;
    return r->got == r->len ? 1 : 0;
}

void aigw_cf_reader_next(aigw_cf_reader_t *r)
{
    free(r->payload);
    r->payload = NULL;
    r->hdr_n = 0;
    r->got = 0;
    r->len = 0;
}

void aigw_cf_reader_free(aigw_cf_reader_t *r)
{
    aigw_cf_reader_next(r);
}

/* ---- snapshots -------------------------------------------------------------------------- */

static int unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = h[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

static const EVP_MD *md_for(EVP_PKEY *k)
{
    /* Ed25519 and Ed448 sign the message itself (no digest); others sign a SHA-256. */
    int id = EVP_PKEY_get_base_id(k);
    return (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
}

static void ssl_err(const char *what, char *err, size_t errlen)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* Signs p[0..signed_len) with key, writes the signature and its length (2, BE) after it;
 * the payload's total length in *plen. p has room for EVP_PKEY_get_size(key) (at least 64)
 * + 2 more bytes. 0, or -1 with err. */
static int sign_payload(EVP_PKEY *key, uint8_t *p, size_t signed_len, size_t sigmax,
                        size_t *plen, const char *what, char *err, size_t errlen)
{
    size_t siglen = sigmax;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit_ex(md, NULL, md_for(key) ? "SHA256" : NULL, NULL, NULL,
                                         key, NULL) == 1 &&
             EVP_DigestSign(md, p + signed_len, &siglen, p, signed_len) == 1 && siglen <= 65535;
    EVP_MD_CTX_free(md);
    if (!ok) {
        char w[64];
        snprintf(w, sizeof(w), "cannot sign the %s", what);
        ssl_err(w, err, errlen);
        return -1;
    }
    p[signed_len + siglen] = (uint8_t)(siglen >> 8);
    p[signed_len + siglen + 1] = (uint8_t)siglen;
    *plen = signed_len + siglen + 2;
    if (*plen > UINT32_MAX) {
        snprintf(err, errlen, "%s too large", what);
        return -1;
    }
    return 0;
}

static size_t sig_room(EVP_PKEY *key)
{
    size_t n = (size_t)EVP_PKEY_get_size(key);
    return n < 64 ? 64 : n;
}

/* Checks the signature that ends a payload of n bytes (fixed: the bytes that must precede
 * it); *signed_len: the bytes it covers. 0, or -1 with err: nothing of an unauthenticated
 * payload is interpreted. */
static int verify_payload(EVP_PKEY *pub, const uint8_t *p, size_t n, size_t fixed,
                          size_t *signed_len, const char *what, char *err, size_t errlen)
{
    if (n < fixed + 2) {
        snprintf(err, errlen, "truncated %s (%zu bytes)", what, n);
        return -1;
    }
    size_t siglen = (size_t)p[n - 2] << 8 | p[n - 1];
    if (siglen == 0 || siglen > n - 2 - fixed) {
        snprintf(err, errlen, "truncated %s (signature length %zu of %zu bytes)", what, siglen,
                 n);
        return -1;
    }
    *signed_len = n - 2 - siglen;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit_ex(md, NULL, md_for(pub) ? "SHA256" : NULL, NULL, NULL,
                                           pub, NULL) == 1 &&
             EVP_DigestVerify(md, p + *signed_len, siglen, p, *signed_len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    if (!ok) {
        snprintf(err, errlen, "bad signature: the %s was not signed by the control plane's "
                 "key or was altered on the way", what);
        return -1;
    }
    return 0;
}

/* The JSON's declared length, checked against the bound; a buffer for it (+ NUL). */
static char *json_buffer(uint64_t ulen, const char *what, char *err, size_t errlen)
{
    if (ulen > AIGW_CF_JSON_MAX) {
        snprintf(err, errlen, "%s declares %llu bytes of JSON, over the %u-byte bound", what,
                 (unsigned long long)ulen, AIGW_CF_JSON_MAX);
        return NULL;
    }
    char *out = malloc((size_t)ulen + 1);
    if (!out)
        snprintf(err, errlen, "out of memory for a %llu-byte snapshot", (unsigned long long)ulen);
    return out;
}

/* The JSON's sha256 against the one at want (32 bytes); hex into hash. 0 or -1 with err. */
static int check_sha(const char *json, size_t len, const uint8_t *want, char hash[65],
                     const char *what, char *err, size_t errlen)
{
    uint8_t sha[32];
    unsigned int shalen = 0;
    EVP_Digest(json, len, sha, &shalen, EVP_sha256(), NULL);
    if (CRYPTO_memcmp(sha, want, 32) != 0) {
        snprintf(err, errlen, "%s sha256 mismatch", what);
        return -1;
    }
    aigw_hex_encode(sha, 32, hash);
    return 0;
}

int aigw_cf_snapshot_encode(const char *json, size_t len, long long version,
                            const char hash_hex[65], EVP_PKEY *key, uint8_t **frame,
                            size_t *frame_len, char *err, size_t errlen)
{
    uLong zb = compressBound((uLong)len);
    size_t sigmax = sig_room(key);
    size_t cap = AIGW_CF_HDR + AIGW_CF_SNAP_FIXED + zb + sigmax + 2;
    uint8_t *f = malloc(cap);
    if (!f) {
        snprintf(err, errlen, "out of memory compressing a %zu-byte snapshot", len);
        return -1;
    }
    uint8_t *p = f + AIGW_CF_HDR;
    memcpy(p, AIGW_CF_SNAP_MAGIC, 8);
    put64(p + 8, (uint64_t)version);
    if (unhex(hash_hex, p + 16, 32) != 0) {
        snprintf(err, errlen, "bad snapshot hash");
        goto fail;
    }
    put64(p + 48, (uint64_t)len);
    uLongf zlen = zb;
    int zr = compress2(p + AIGW_CF_SNAP_FIXED, &zlen, (const Bytef *)json, (uLong)len, ZLEVEL);
    if (zr != Z_OK) {
        snprintf(err, errlen, "zlib compress failed (%d)", zr);
        goto fail;
    }
    size_t plen;
    if (sign_payload(key, p, AIGW_CF_SNAP_FIXED + zlen, sigmax, &plen, "snapshot", err,
                     errlen) != 0)
        goto fail;
    aigw_cf_header(f, AIGW_CF_SNAPSHOT, (uint32_t)plen);
    *frame = f;
    *frame_len = AIGW_CF_HDR + plen;
    return 0;
fail:
    free(f);
    return -1;
}

int aigw_cf_snapshot_peek(const uint8_t *p, size_t n, long long *version, char hash[65])
{
    if (n < AIGW_CF_SNAP_FIXED + 2 || memcmp(p, AIGW_CF_SNAP_MAGIC, 8) != 0)
        return -1;
    *version = (long long)get64(p + 8);
    aigw_hex_encode(p + 16, 32, hash);
    return 0;
}

int aigw_cf_snapshot_decode(const uint8_t *p, size_t n, EVP_PKEY *pub, long long *version,
                            char hash[65], char **json, size_t *json_len, char *err,
                            size_t errlen)
{
    size_t signed_len;
    if (verify_payload(pub, p, n, AIGW_CF_SNAP_FIXED, &signed_len, "snapshot", err,
                       errlen) != 0)
        return -1;
    if (memcmp(p, AIGW_CF_SNAP_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a snapshot (bad magic)");
        return -1;
    }
    uint64_t ulen = get64(p + 48);
    char *out = json_buffer(ulen, "snapshot", err, errlen);
    if (!out)
        return -1;
    uLongf dlen = (uLongf)ulen;
    int zr = uncompress((Bytef *)out, &dlen, p + AIGW_CF_SNAP_FIXED,
                        (uLong)(signed_len - AIGW_CF_SNAP_FIXED));
    if (zr != Z_OK || dlen != ulen) {
        snprintf(err, errlen, "snapshot does not decompress to its declared size (zlib %d)",
                 zr);
        free(out);
        return -1;
    }
    out[ulen] = '\0';
    if (check_sha(out, (size_t)ulen, p + 16, hash, "snapshot", err, errlen) != 0) {
        free(out);
        return -1;
    }
    *version = (long long)get64(p + 8);
    *json = out;
    *json_len = (size_t)ulen;
    return 0;
}

/* ---- deltas ------------------------------------------------------------------------------ */

static size_t common_prefix(const char *a, const char *b, size_t n)
{
    size_t i = 0;
    while (n - i >= 4096 && memcmp(a + i, b + i, 4096) == 0)
        i += 4096;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* The bytes a[..an) and b[..bn) share at their ends, at most max. */
static size_t common_suffix(const char *a, size_t an, const char *b, size_t bn, size_t max)
{
    size_t i = 0;
    while (max - i >= 4096 && memcmp(a + an - i - 4096, b + bn - i - 4096, 4096) == 0)
        i += 4096;
    while (i < max && a[an - 1 - i] == b[bn - 1 - i])
        i++;
    return i;
}

int aigw_cf_delta_encode(const char *base, size_t base_len, const char base_hash[65],
                         const char *json, size_t len, long long version,
                         const char hash_hex[65], EVP_PKEY *key, uint8_t **frame,
                         size_t *frame_len, char *err, size_t errlen)
{
    size_t both = base_len < len ? base_len : len;
    size_t pre = common_prefix(base, json, both);
    size_t suf = common_suffix(base, base_len, json, len, both - pre);
    size_t mid = len - pre - suf;
    if (mid > len / 2)
        return 1;   /* most of it changed: the snapshot itself is the cheaper message */
    uLong zb = compressBound((uLong)mid);
    size_t sigmax = sig_room(key);
    uint8_t *f = malloc(AIGW_CF_HDR + AIGW_CF_DELTA_FIXED + zb + sigmax + 2);
    if (!f) {
        snprintf(err, errlen, "out of memory encoding a delta");
        return -1;
    }
    uint8_t *p = f + AIGW_CF_HDR;
    memcpy(p, AIGW_CF_DELTA_MAGIC, 8);
    put64(p + 8, (uint64_t)version);
    if (unhex(hash_hex, p + 16, 32) != 0 || unhex(base_hash, p + 56, 32) != 0) {
        snprintf(err, errlen, "bad snapshot hash");
        free(f);
        return -1;
    }
    put64(p + 48, (uint64_t)len);
    put64(p + 88, (uint64_t)pre);
    put64(p + 96, (uint64_t)suf);
    uLongf zlen = zb;
    int zr = compress2(p + AIGW_CF_DELTA_FIXED, &zlen, (const Bytef *)json + pre, (uLong)mid,
                       ZLEVEL);
    size_t plen;
    if (zr != Z_OK) {
        snprintf(err, errlen, "zlib compress failed (%d)", zr);
        free(f);
        return -1;
    }
    if (sign_payload(key, p, AIGW_CF_DELTA_FIXED + zlen, sigmax, &plen, "delta", err,
                     errlen) != 0) {
        free(f);
        return -1;
    }
    aigw_cf_header(f, AIGW_CF_DELTA, (uint32_t)plen);
    *frame = f;
    *frame_len = AIGW_CF_HDR + plen;
    return 0;
}

int aigw_cf_delta_decode(const uint8_t *p, size_t n, EVP_PKEY *pub, const char *base,
                         size_t base_len, const char base_hash[65], long long *version,
                         char hash[65], char **json, size_t *json_len, char *err,
                         size_t errlen)
{
    size_t signed_len;
    if (verify_payload(pub, p, n, AIGW_CF_DELTA_FIXED, &signed_len, "delta", err, errlen) != 0)
        return -1;
    if (memcmp(p, AIGW_CF_DELTA_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a delta (bad magic)");
        return -1;
    }
    char want[65];
    aigw_hex_encode(p + 56, 32, want);
    if (!base || strcmp(want, base_hash) != 0) {
        snprintf(err, errlen, "the delta applies to configuration %.16s, not to the one in use "
                 "(%.16s)", want, base && base_hash[0] ? base_hash : "none");
        return -1;
    }
    uint64_t ulen = get64(p + 48), pre = get64(p + 88), suf = get64(p + 96);
    if (pre > base_len || suf > base_len - pre || pre > ulen || suf > ulen - pre) {
        snprintf(err, errlen, "the delta's bounds do not fit the configuration in use");
        return -1;
    }
    char *out = json_buffer(ulen, "delta", err, errlen);
    if (!out)
        return -1;
    uLongf mid = (uLongf)(ulen - pre - suf);
    uLongf dlen = mid;
    int zr = uncompress((Bytef *)out + pre, &dlen, p + AIGW_CF_DELTA_FIXED,
                        (uLong)(signed_len - AIGW_CF_DELTA_FIXED));
    if ((zr != Z_OK && !(zr == Z_BUF_ERROR && mid == 0)) || dlen != mid) {
        snprintf(err, errlen, "delta does not decompress to its declared size (zlib %d)", zr);
        free(out);
        return -1;
    }
    memcpy(out, base, (size_t)pre);
    memcpy(out + ulen - suf, base + base_len - suf, (size_t)suf);
    out[ulen] = '\0';
    if (check_sha(out, (size_t)ulen, p + 16, hash, "delta's result", err, errlen) != 0) {
        free(out);
        return -1;
    }
    *version = (long long)get64(p + 8);
    *json = out;
    *json_len = (size_t)ulen;
    return 0;
}

/* ---- keys and certificates -------------------------------------------------------------- */

/* The PEM text of a cluster_* setting: the value itself when it is PEM (core/conf.c keeps
 * PEM and base64 PEM values as PEM text), else the file it names. NULL with err. */
static BIO *pem_source(const char *v, const char *what, char *err, size_t errlen)
{
    if (strncmp(v, "-----BEGIN", 10) == 0) {
        BIO *b = BIO_new_mem_buf(v, -1);
        if (!b)
            snprintf(err, errlen, "%s: out of memory", what);
        return b;
    }
    BIO *b = BIO_new_file(v, "r");
    if (!b) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, v, strerror(errno));
        ERR_clear_error();
    }
    return b;
}

EVP_PKEY *aigw_cf_load_key(const char *path, char *err, size_t errlen)
{
    BIO *b = pem_source(path, "cluster_cert_key", err, errlen);
    if (!b)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!k)
        ssl_err("cluster_cert_key: failed loading key", err, errlen);
    return k;
}

static X509 *load_cert(const char *path, char *err, size_t errlen)
{
    BIO *b = pem_source(path, "cluster_cert", err, errlen);
    if (!b)
        return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!x)
        ssl_err("cluster_cert: failed loading certificate", err, errlen);
    return x;
}

/* cluster_cert (and the chain after it) and cluster_cert_key into ctx. 0, or -1 with err. */
static int use_cert_and_key(SSL_CTX *ctx, const aigw_conf_t *c, char *err, size_t errlen)
{
    BIO *b = pem_source(c->cluster_cert, "cluster_cert", err, errlen);
    if (!b)
        return -1;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
    X509_free(x);
    X509 *ca;
    while (ok && (ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            ok = 0;
        }
    BIO_free(b);
    if (!ok) {
        ssl_err("cluster_cert: failed loading certificate", err, errlen);
        return -1;
    }
    ERR_clear_error();   /* the end of the chain reads as an error */
    EVP_PKEY *k = aigw_cf_load_key(c->cluster_cert_key, err, errlen);
    if (!k)
        return -1;
    ok = SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(k);
    if (!ok) {
        ssl_err("cluster_cert_key: failed loading key (or it does not match cluster_cert)", err,
                errlen);
        return -1;
    }
    return 0;
}

/* Every certificate of cluster_ca_cert into ctx's trust store. 0, or -1 with err. */
static int trust_ca(SSL_CTX *ctx, const char *v, char *err, size_t errlen)
{
    BIO *b = pem_source(v, "cluster_ca_cert", err, errlen);
    if (!b)
        return -1;
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    size_t n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(st, x) == 1;
        X509_free(x);
        if (!ok) {
            BIO_free(b);
            ssl_err("cluster_ca_cert: failed loading certificate", err, errlen);
            return -1;
        }
        n++;
    }
    BIO_free(b);
    if (!n) {
        ssl_err("cluster_ca_cert: failed loading certificate", err, errlen);
        return -1;
    }
    ERR_clear_error();
    return 0;
}

EVP_PKEY *aigw_cf_load_cert_pubkey(const char *path, char *err, size_t errlen)
{
    X509 *x = load_cert(path, err, errlen);
    if (!x)
        return NULL;
    EVP_PKEY *k = X509_get_pubkey(x);
    X509_free(x);
    if (!k)
        ssl_err("cluster_cert: no public key", err, errlen);
    return k;
}

/* Shared mode: the SHA-256 of our own certificate, which the peer's must equal. */
typedef struct shared_id {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len;
} shared_id_t;

static int shared_idx = -1;

static void free_shared(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                        void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static int on_verify_shared(int preverify_ok, X509_STORE_CTX *xs)
{
    (void)preverify_ok;
    if (X509_STORE_CTX_get_error_depth(xs) != 0)
        return 1;      /* only the leaf matters: it must be our very certificate */
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    const shared_id_t *id = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), shared_idx) : NULL;
    X509 *peer = X509_STORE_CTX_get_current_cert(xs);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (!id || !peer || X509_digest(peer, EVP_sha256(), d, &dl) != 1 || dl != id->len ||
        CRYPTO_memcmp(d, id->digest, dl) != 0) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    /* Shared certificates are self-signed on purpose; an expired one is still refused. */
    int e = X509_STORE_CTX_get_error(xs);
    if (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID)
        return 0;
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    return 1;
}

SSL_CTX *aigw_cf_ssl_ctx(const aigw_conf_t *c, int server, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    X509 *own = NULL;
    if (!ctx) {
        ssl_err("cannot create a TLS context", err, errlen);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (use_cert_and_key(ctx, c, err, errlen) != 0)
        goto fail;
    if (c->cluster_mtls == AIGW_MTLS_SHARED) {
        if (shared_idx < 0)
            shared_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_shared);
        shared_id_t *id = calloc(1, sizeof(*id));
        own = load_cert(c->cluster_cert, err, errlen);
        if (!id || !own || X509_digest(own, EVP_sha256(), id->digest, &id->len) != 1 ||
            SSL_CTX_set_ex_data(ctx, shared_idx, id) != 1) {
            free(id);
            if (own)
                snprintf(err, errlen, "cannot hash cluster_cert");
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           on_verify_shared);
    } else {
        if (trust_ca(ctx, c->cluster_ca_cert, err, errlen) != 0)
            goto fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
    }
    X509_free(own);
    return ctx;
fail:
    X509_free(own);
    SSL_CTX_free(ctx);
    return NULL;
}

int aigw_cf_gen_cert(const char *cert_path, const char *key_path, int days, char *err,
                     size_t errlen)
{
    struct stat st;
    if (stat(cert_path, &st) == 0) {
        snprintf(err, errlen, "%s already exists.\nWill not overwrite it.", cert_path);
        return -1;
    }
    if (stat(key_path, &st) == 0) {
        snprintf(err, errlen, "%s already exists.\nWill not overwrite it.", key_path);
        return -1;
    }
    int rc = -1, kfd = -1;
    FILE *kf = NULL, *cf = NULL;
    X509 *x = NULL;
    X509_NAME *name = NULL;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!k) {
        ssl_err("cannot generate an Ed25519 key", err, errlen);
        goto out;
    }
    x = X509_new();
    name = X509_NAME_new();
    if (!x || !name || RAND_bytes(serial, sizeof(serial)) != 1)
        goto ssl;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) || !X509_set_pubkey(x, k) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"kong_clustering", -1, -1, 0) ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !X509_sign(x, k, NULL))
        goto ssl;
    kfd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (kfd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", key_path, strerror(errno));
        goto out;
    }
    fchmod(kfd, 0600);
    kf = fdopen(kfd, "w");
    if (!kf) {
        close(kfd);
        snprintf(err, errlen, "cannot write %s: %s", key_path, strerror(errno));
        goto out;
    }
    if (PEM_write_PrivateKey(kf, k, NULL, NULL, 0, NULL, NULL) != 1 || fflush(kf) != 0) {
        snprintf(err, errlen, "cannot write %s", key_path);
        goto out;
    }
    int cfd = open(cert_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (cfd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", cert_path, strerror(errno));
        goto out;
    }
    fchmod(cfd, 0644);
    cf = fdopen(cfd, "w");
    if (!cf) {
        close(cfd);
        snprintf(err, errlen, "cannot write %s: %s", cert_path, strerror(errno));
        goto out;
    }
    if (PEM_write_X509(cf, x) != 1 || fflush(cf) != 0) {
        snprintf(err, errlen, "cannot write %s", cert_path);
        goto out;
    }
    rc = 0;
    goto out;
ssl:
    ssl_err("cannot make the certificate", err, errlen);
out:
    if (kf)
        fclose(kf);
    if (cf)
        fclose(cf);
    BN_free(bn);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* ---- versions ---------------------------------------------------------------------------- */

int aigw_cf_version_parse(const char *v, int *major, int *minor)
{
    char *end;
    errno = 0;
    long ma = strtol(v, &end, 10);
    if (end == v || *end != '.' || ma < 0 || ma > 100000 || errno)
        return -1;
    const char *m = end + 1;
    long mi = strtol(m, &end, 10);
    if (end == m || mi < 0 || mi > 100000 || errno)
        return -1;
    *major = (int)ma;
    *minor = (int)mi;
    return 0;
}

int aigw_cf_version_compatible(const char *cp, const char *dp, char *why, size_t whylen)
{
    int cma, cmi, dma, dmi;
    if (aigw_cf_version_parse(cp, &cma, &cmi) != 0 || aigw_cf_version_parse(dp, &dma, &dmi) != 0) {
        snprintf(why, whylen, "data plane version '%s' is not a version this control plane "
                 "(%s) understands", dp, cp);
        return 0;
    }
    if (cma != dma) {
        snprintf(why, whylen, "data plane version %s is incompatible with control plane "
                 "version %s (%d.x): major versions differ", dp, cp, cma);
        return 0;
    }
    if (dmi > cmi) {
        snprintf(why, whylen, "data plane version %s is incompatible with older control plane "
                 "version %s", dp, cp);
        return 0;
    }
    return 1;
}
