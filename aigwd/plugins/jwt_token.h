/* aigwd/plugins/jwt_token.h: JSON Web Token parsing, signing and signature verification
 * (RFC 7515/7519/7518/8037), as Kong's jwt plugin reads tokens (kong/plugins/jwt/jwt_parser.lua).
 *
 * Pure: no daemon state, only OpenSSL 3 and jansson, so a fuzzer and aigwctl can use it. Every
 * function may be called from any thread; a key (aigw_jwt_key_t) is immutable once built and
 * may be shared by threads for verification.
 *
 * Decoding follows nginx's base64url decoder as Kong uses it: the alphabet A-Z a-z 0-9 - _,
 * input stops at the first '=', anything else is an error, and a length of 4k+1 characters is
 * an error. */
#ifndef AIGW_PLUGINS_JWT_TOKEN_H
#define AIGW_PLUGINS_JWT_TOKEN_H
#include <jansson.h>
#include <stddef.h>

/* Tokens longer than this are refused by aigw_jwt_parse (AIGW_JWT_E_JSON). */
#define AIGW_JWT_MAX_TOKEN (64 * 1024)

typedef enum {
    AIGW_JWT_ALG_NONE = -1,          /* not a supported algorithm */
    AIGW_JWT_HS256 = 0,
    AIGW_JWT_HS384,
    AIGW_JWT_HS512,
    AIGW_JWT_RS256,
    AIGW_JWT_RS384,
    AIGW_JWT_RS512,
    AIGW_JWT_PS256,
    AIGW_JWT_PS384,
    AIGW_JWT_PS512,
    AIGW_JWT_ES256,
    AIGW_JWT_ES384,
    AIGW_JWT_ES512,
    AIGW_JWT_EDDSA,
    AIGW_JWT_ALG_COUNT
} aigw_jwt_alg_t;

/* The algorithm named exactly s (case-sensitive: "HS256", ..., "EdDSA"), or AIGW_JWT_ALG_NONE. */
aigw_jwt_alg_t aigw_jwt_alg_parse(const char *s, size_t n);
/* Its JOSE name ("HS256"), or "" for AIGW_JWT_ALG_NONE. Static string. */
const char *aigw_jwt_alg_name(aigw_jwt_alg_t alg);
/* 1 for HS256/384/512. */
int aigw_jwt_alg_is_hmac(aigw_jwt_alg_t alg);

/* ---- base64url ---- */

/* Decodes n characters of in into out (room for at least n * 3 / 4 + 3 bytes); *outlen gets
 * the length. 0, or -1 on an invalid character or length (nginx semantics, see above). */
int aigw_jwt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen);
/* Encodes without padding into out (room for (n + 2) / 3 * 4 + 1 bytes, NUL-terminated);
 * returns the length. */
size_t aigw_jwt_b64url_encode(const unsigned char *in, size_t n, char *out);

/* ---- parsing ---- */

typedef enum {
    AIGW_JWT_OK = 0,
    AIGW_JWT_E_JSON,         /* "invalid JSON": a part missing, not base64url, or not JSON */
    AIGW_JWT_E_ALG,          /* "invalid alg": header without a supported string `alg` */
    AIGW_JWT_E_CLAIMS,       /* "invalid claims": the claims are not a JSON object */
    AIGW_JWT_E_SIGNATURE,    /* "invalid signature": the signature part is not base64url */
    AIGW_JWT_E_NOMEM,        /* out of memory */
} aigw_jwt_err_t;

/* Kong's text for a parse error ("invalid JSON", ...): the 401 says "Bad token; <text>". */
const char *aigw_jwt_strerror(aigw_jwt_err_t e);

typedef struct aigw_jwt {
    json_t *header;               /* owned: the JOSE header (an object) */
    json_t *claims;               /* owned: the claims (an object) */
    aigw_jwt_alg_t alg;           /* header.alg */
    const char *signing_input;    /* borrowed view into the token: header_64 "." claims_64 */
    size_t signing_input_len;
    unsigned char *sig;           /* owned (malloc), the decoded signature */
    size_t sig_len;
} aigw_jwt_t;

/* Splits token (n bytes, need not be NUL-terminated) at its first two dots (the third part
 * is the rest, dots included, as Kong does) and decodes the parts. On success fills *out
 * (free with aigw_jwt_clear); the token must outlive *out (signing_input points into it). On
 * error *out is cleared. The checks run in Kong's order: header and claims JSON, alg, claims
 * type, signature encoding. */
aigw_jwt_err_t aigw_jwt_parse(const char *token, size_t n, aigw_jwt_t *out);
void aigw_jwt_clear(aigw_jwt_t *t);   /* frees what parse allocated; NULL is fine */

/* ---- keys and signatures ---- */

typedef struct aigw_jwt_key aigw_jwt_key_t;

/* An HMAC secret (copied; may be empty). NULL when out of memory. */
aigw_jwt_key_t *aigw_jwt_key_hmac(const unsigned char *secret, size_t n);
/* A public or private key in PEM (SubjectPublicKeyInfo, PKCS#1, PKCS#8, SEC1) or DER, as
 * Kong's pkey.new accepts. NULL when it does not parse. */
aigw_jwt_key_t *aigw_jwt_key_pem(const char *pem, size_t n);
/* Takes a reference to an OpenSSL key (EVP_PKEY *, passed as void * so that this header needs
 * no OpenSSL include). NULL on failure. */
aigw_jwt_key_t *aigw_jwt_key_pkey(void *evp_pkey);
void aigw_jwt_key_free(aigw_jwt_key_t *k);     /* NULL is fine */

/* Verifies sig over data with alg and key. 1 when the signature is good, 0 otherwise (also
 * when the key is not of the kind alg needs: an RSA key for HS256 is never an HMAC secret,
 * an EC key must be on the curve of its ES algorithm). HMAC compares in constant time;
 * ES* take the JOSE form r||s. */
int aigw_jwt_verify(aigw_jwt_alg_t alg, const aigw_jwt_key_t *key, const void *data, size_t n,
                    const unsigned char *sig, size_t sig_len);

/* Signs data with alg and key (a private key for RS/PS/ES/EdDSA); *sig is malloc'ed (free()),
 * in JOSE form (ES*: r||s). 0 or -1. For tests and aigwctl. */
int aigw_jwt_sign(aigw_jwt_alg_t alg, const aigw_jwt_key_t *key, const void *data, size_t n,
                  unsigned char **sig, size_t *sig_len);

/* A complete token "b64(header).b64(claims).b64(sig)" for header and claims (compact JSON, in
 * their key order), malloc'ed and NUL-terminated, or NULL. */
char *aigw_jwt_encode(const json_t *header, const json_t *claims, aigw_jwt_alg_t alg,
                      const aigw_jwt_key_t *key);

#endif
