/* tests/unit/test_jwt_token.c: JWT parsing, base64url and signatures (aigwd/plugins/jwt_token.c):
 * every algorithm signs and verifies with keys made here by OpenSSL, through the private key
 * and through its public PEM; tampered tokens, wrong algorithms and keys, and malformed
 * tokens fail with Kong's parse errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include "plugins/jwt_token.h"

/* ---- helpers ---- */

static EVP_PKEY *rsa_key;   /* made once: RSA key generation is slow */

static EVP_PKEY *make_key(aigw_jwt_alg_t alg)
{
    switch (alg) {
    case AIGW_JWT_RS256: case AIGW_JWT_RS384: case AIGW_JWT_RS512:
    case AIGW_JWT_PS256: case AIGW_JWT_PS384: case AIGW_JWT_PS512:
        EVP_PKEY_up_ref(rsa_key);
        return rsa_key;
    case AIGW_JWT_ES256: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case AIGW_JWT_ES384: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case AIGW_JWT_ES512: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    case AIGW_JWT_EDDSA: return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    default: return NULL;
    }
}

/* The public half as PEM (malloc'ed, NUL-terminated). */
static char *public_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static char *encode(const char *header_json, const char *claims_json, aigw_jwt_alg_t alg,
                    const aigw_jwt_key_t *key)
{
    json_t *h = json_loads(header_json, 0, NULL), *c = json_loads(claims_json, 0, NULL);
    assert_non_null(h);
    assert_non_null(c);
    char *tok = aigw_jwt_encode(h, c, alg, key);
    json_decref(h);
    json_decref(c);
    return tok;
}

static char *std_header(aigw_jwt_alg_t alg)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", aigw_jwt_alg_name(alg));
    return buf;
}

/* 1 when tok parses and verifies with alg and key. */
static int parse_verify(const char *tok, aigw_jwt_alg_t alg, const aigw_jwt_key_t *key)
{
    aigw_jwt_t t;
    if (aigw_jwt_parse(tok, strlen(tok), &t) != AIGW_JWT_OK)
        return -1;
    int ok = aigw_jwt_verify(alg, key, t.signing_input, t.signing_input_len, t.sig, t.sig_len);
    aigw_jwt_clear(&t);
    return ok;
}

static aigw_jwt_err_t parse_err(const char *tok)
{
    aigw_jwt_t t;
    aigw_jwt_err_t e = aigw_jwt_parse(tok, strlen(tok), &t);
    aigw_jwt_clear(&t);
    return e;
}

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc((n + 2) / 3 * 4 + 1);
    assert_non_null(out);
    aigw_jwt_b64url_encode((const unsigned char *)s, n, out);
    return out;
}

/* "b64(h).b64(c).sig" */
static char *raw_token(const char *h, const char *c, const char *sig)
{
    char *hb = b64(h), *cb = b64(c);
    size_t n = strlen(hb) + strlen(cb) + strlen(sig) + 3;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s.%s.%s", hb, cb, sig);
    free(hb);
    free(cb);
    return out;
}

/* ---- tests ---- */

static void alg_names(void **state)
{
    (void)state;
    for (int a = 0; a < AIGW_JWT_ALG_COUNT; a++) {
        const char *n = aigw_jwt_alg_name((aigw_jwt_alg_t)a);
        assert_int_equal(aigw_jwt_alg_parse(n, strlen(n)), a);
    }
    assert_int_equal(aigw_jwt_alg_parse("none", 4), AIGW_JWT_ALG_NONE);
    assert_int_equal(aigw_jwt_alg_parse("hs256", 5), AIGW_JWT_ALG_NONE);
    assert_int_equal(aigw_jwt_alg_parse("EDDSA", 5), AIGW_JWT_ALG_NONE);
    assert_int_equal(aigw_jwt_alg_parse("HS2560", 6), AIGW_JWT_ALG_NONE);
    assert_int_equal(aigw_jwt_alg_parse("HS25", 4), AIGW_JWT_ALG_NONE);
    assert_int_equal(aigw_jwt_alg_parse(NULL, 0), AIGW_JWT_ALG_NONE);
    assert_string_equal(aigw_jwt_alg_name(AIGW_JWT_ALG_NONE), "");
    assert_true(aigw_jwt_alg_is_hmac(AIGW_JWT_HS384));
    assert_false(aigw_jwt_alg_is_hmac(AIGW_JWT_RS256));
}

static void base64url(void **state)
{
    (void)state;
    unsigned char out[64];
    size_t n;
    char enc[64];
    /* Round trips of every tail length. */
    const char *in = "\xff\xfe\xfd\x00\x01xyz";
    for (size_t len = 0; len <= 8; len++) {
        size_t k = aigw_jwt_b64url_encode((const unsigned char *)in, len, enc);
        assert_int_equal(strlen(enc), k);
        assert_null(strchr(enc, '='));
        assert_int_equal(aigw_jwt_b64url_decode(enc, k, out, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(out, in, len);
    }
    aigw_jwt_b64url_encode((const unsigned char *)"\xfb\xff", 2, enc);
    assert_string_equal(enc, "-_8");
    /* The standard alphabet's + and / are not base64url. */
    assert_int_equal(aigw_jwt_b64url_decode("+_8", 3, out, &n), -1);
    assert_int_equal(aigw_jwt_b64url_decode("-/8", 3, out, &n), -1);
    assert_int_equal(aigw_jwt_b64url_decode("ab c", 4, out, &n), -1);
    assert_int_equal(aigw_jwt_b64url_decode("ab.c", 4, out, &n), -1);
    assert_int_equal(aigw_jwt_b64url_decode("ab\0c", 4, out, &n), -1);
    /* 4k+1 characters cannot be base64. */
    assert_int_equal(aigw_jwt_b64url_decode("abcde", 5, out, &n), -1);
    assert_int_equal(aigw_jwt_b64url_decode("a", 1, out, &n), -1);
    /* Empty is empty; input stops at the first '=' (nginx). */
    assert_int_equal(aigw_jwt_b64url_decode("", 0, out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(aigw_jwt_b64url_decode("YWI=", 4, out, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(aigw_jwt_b64url_decode("YWI=!!", 6, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(aigw_jwt_b64url_decode("YQ==", 4, out, &n), 0);
    assert_int_equal(n, 1);
}

static void sign_verify_one(aigw_jwt_alg_t alg)
{
    aigw_jwt_key_t *priv, *pub;
    char *pem = NULL;
    EVP_PKEY *pk = NULL;
    if (aigw_jwt_alg_is_hmac(alg)) {
        priv = aigw_jwt_key_hmac((const unsigned char *)"s3cr3t", 6);
        pub = aigw_jwt_key_hmac((const unsigned char *)"s3cr3t", 6);
    } else {
        pk = make_key(alg);
        assert_non_null(pk);
        priv = aigw_jwt_key_pkey(pk);
        pem = public_pem(pk);
        pub = aigw_jwt_key_pem(pem, strlen(pem));
    }
    assert_non_null(priv);
    assert_non_null(pub);
    char *tok = encode(std_header(alg), "{\"iss\":\"k1\",\"exp\":4102444800}", alg, priv);
    assert_non_null(tok);
    assert_int_equal(parse_verify(tok, alg, pub), 1);
    assert_int_equal(parse_verify(tok, alg, priv), 1);

    aigw_jwt_t t;
    assert_int_equal(aigw_jwt_parse(tok, strlen(tok), &t), AIGW_JWT_OK);
    assert_int_equal(t.alg, alg);
    assert_string_equal(json_string_value(json_object_get(t.claims, "iss")), "k1");
    assert_string_equal(json_string_value(json_object_get(t.header, "typ")), "JWT");
    if (alg == AIGW_JWT_ES256)
        assert_int_equal(t.sig_len, 64);
    if (alg == AIGW_JWT_ES384)
        assert_int_equal(t.sig_len, 96);
    if (alg == AIGW_JWT_ES512)
        assert_int_equal(t.sig_len, 132);
    if (alg == AIGW_JWT_EDDSA)
        assert_int_equal(t.sig_len, 64);
    /* A flipped bit anywhere in the signature, or a different signing input, fails. */
    for (size_t i = 0; i < t.sig_len; i += (t.sig_len / 7) + 1) {
        t.sig[i] ^= 0x01;
        assert_int_equal(aigw_jwt_verify(alg, pub, t.signing_input, t.signing_input_len, t.sig,
                                         t.sig_len), 0);
        t.sig[i] ^= 0x01;
    }
    assert_int_equal(aigw_jwt_verify(alg, pub, t.signing_input, t.signing_input_len - 1, t.sig,
                                     t.sig_len), 0);
    assert_int_equal(aigw_jwt_verify(alg, pub, t.signing_input, t.signing_input_len, t.sig,
                                     t.sig_len - 1), 0);
    assert_int_equal(aigw_jwt_verify(alg, pub, t.signing_input, t.signing_input_len, t.sig, 0), 0);
    /* Another algorithm with the same key fails: a different hash, padding or key kind. */
    for (int other = 0; other < AIGW_JWT_ALG_COUNT; other++) {
        if (other == (int)alg)
            continue;
        assert_int_equal(aigw_jwt_verify((aigw_jwt_alg_t)other, pub, t.signing_input,
                                         t.signing_input_len, t.sig, t.sig_len), 0);
    }
    /* NULL key, bad alg. */
    assert_int_equal(aigw_jwt_verify(alg, NULL, t.signing_input, t.signing_input_len, t.sig,
                                     t.sig_len), 0);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_ALG_NONE, pub, t.signing_input,
                                     t.signing_input_len, t.sig, t.sig_len), 0);
    aigw_jwt_clear(&t);

    /* A modified claims part keeps the signature but no longer verifies. */
    char *dot = strchr(tok, '.');
    dot[2] = dot[2] == 'A' ? 'B' : 'A';
    assert_int_not_equal(parse_verify(tok, alg, pub), 1);

    free(tok);
    free(pem);
    aigw_jwt_key_free(priv);
    aigw_jwt_key_free(pub);
    EVP_PKEY_free(pk);
}

static void sign_verify_all(void **state)
{
    (void)state;
    for (int a = 0; a < AIGW_JWT_ALG_COUNT; a++)
        sign_verify_one((aigw_jwt_alg_t)a);
}

/* A signature made elsewhere: HS256 of "abc.def" with "secret" (RFC 2104, checked with
 * python hmac). */
static void hs256_known_vector(void **state)
{
    (void)state;
    aigw_jwt_key_t *k = aigw_jwt_key_hmac((const unsigned char *)"secret", 6);
    unsigned char *sig;
    size_t n;
    assert_int_equal(aigw_jwt_sign(AIGW_JWT_HS256, k, "abc.def", 7, &sig, &n), 0);
    char enc[64];
    aigw_jwt_b64url_encode(sig, n, enc);
    assert_string_equal(enc, "bw6MfpI6W0A40NkeJEdmGA2Kgk83mtWOBZyYtoLzRuA");
    free(sig);
    /* An empty HMAC secret is a key like any other. */
    aigw_jwt_key_t *e = aigw_jwt_key_hmac((const unsigned char *)"", 0);
    assert_int_equal(aigw_jwt_sign(AIGW_JWT_HS256, e, "abc", 3, &sig, &n), 0);
    assert_int_equal(n, 32);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_HS256, e, "abc", 3, sig, n), 1);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_HS256, k, "abc", 3, sig, n), 0);
    free(sig);
    aigw_jwt_key_free(k);
    aigw_jwt_key_free(e);
}

/* The classic confusion: an HS256 token whose HMAC key is the RSA public PEM never verifies
 * against the RSA credential, whatever alg the caller asks. */
static void hs_rs_confusion(void **state)
{
    (void)state;
    char *pem = public_pem(rsa_key);
    aigw_jwt_key_t *as_secret = aigw_jwt_key_hmac((const unsigned char *)pem, strlen(pem));
    aigw_jwt_key_t *pub = aigw_jwt_key_pem(pem, strlen(pem));
    assert_non_null(pub);
    char *tok = encode(std_header(AIGW_JWT_HS256), "{\"iss\":\"k\"}", AIGW_JWT_HS256, as_secret);
    assert_non_null(tok);
    assert_int_equal(parse_verify(tok, AIGW_JWT_HS256, as_secret), 1);
    assert_int_equal(parse_verify(tok, AIGW_JWT_HS256, pub), 0);
    assert_int_equal(parse_verify(tok, AIGW_JWT_RS256, pub), 0);
    /* And an RSA key never signs HMAC. */
    unsigned char *sig;
    size_t n;
    assert_int_equal(aigw_jwt_sign(AIGW_JWT_HS256, pub, "x", 1, &sig, &n), -1);
    assert_null(sig);
    free(tok);
    free(pem);
    aigw_jwt_key_free(as_secret);
    aigw_jwt_key_free(pub);
}

/* An EC key on another curve never verifies an ES algorithm, even with a well-formed
 * signature of the right length. */
static void es_curve_mismatch(void **state)
{
    (void)state;
    EVP_PKEY *p384 = make_key(AIGW_JWT_ES384);
    aigw_jwt_key_t *k = aigw_jwt_key_pkey(p384);
    unsigned char *sig;
    size_t n;
    assert_int_equal(aigw_jwt_sign(AIGW_JWT_ES256, k, "x", 1, &sig, &n), -1);
    assert_int_equal(aigw_jwt_sign(AIGW_JWT_ES384, k, "x", 1, &sig, &n), 0);
    assert_int_equal(n, 96);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_ES384, k, "x", 1, sig, n), 1);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_ES512, k, "x", 1, sig, n), 0);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_ES256, k, "x", 1, sig, 64), 0);
    /* All-zero r and s: not a valid signature. */
    memset(sig, 0, n);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_ES384, k, "x", 1, sig, n), 0);
    free(sig);
    aigw_jwt_key_free(k);
    EVP_PKEY_free(p384);
}

static void key_formats(void **state)
{
    (void)state;
    assert_null(aigw_jwt_key_pem("", 0));
    assert_null(aigw_jwt_key_pem("not a key", 9));
    const char *junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert_null(aigw_jwt_key_pem(junk, strlen(junk)));
    /* A private key PEM is accepted (its public half verifies), as Kong's pkey.new. */
    EVP_PKEY *ed = make_key(AIGW_JWT_EDDSA);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, ed, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    aigw_jwt_key_t *k = aigw_jwt_key_pem(data, (size_t)n);
    assert_non_null(k);
    aigw_jwt_key_t *signer = aigw_jwt_key_pkey(ed);
    unsigned char *sig;
    size_t sn;
    assert_int_equal(aigw_jwt_sign(AIGW_JWT_EDDSA, signer, "hello", 5, &sig, &sn), 0);
    assert_int_equal(aigw_jwt_verify(AIGW_JWT_EDDSA, k, "hello", 5, sig, sn), 1);
    free(sig);
    aigw_jwt_key_free(signer);
    aigw_jwt_key_free(k);
    BIO_free(b);
    EVP_PKEY_free(ed);
    assert_null(aigw_jwt_key_pkey(NULL));
    aigw_jwt_key_free(NULL);
}

static void malformed(void **state)
{
    (void)state;
    char *t;
    /* Missing parts. */
    assert_int_equal(parse_err(""), AIGW_JWT_E_JSON);
    assert_int_equal(parse_err("abc"), AIGW_JWT_E_JSON);
    assert_int_equal(parse_err("a.b"), AIGW_JWT_E_JSON);
    assert_int_equal(parse_err(".."), AIGW_JWT_E_JSON);
    /* Not base64url / not JSON. */
    assert_int_equal(parse_err("!!!.e30.sig"), AIGW_JWT_E_JSON);
    assert_int_equal(parse_err("e30.!!!.sig"), AIGW_JWT_E_JSON);
    t = raw_token("{\"alg\":\"HS256\"", "{}", "");
    assert_int_equal(parse_err(t), AIGW_JWT_E_JSON);
    free(t);
    t = raw_token("{\"alg\":\"HS256\"}", "{\"iss\":", "");
    assert_int_equal(parse_err(t), AIGW_JWT_E_JSON);
    free(t);
    /* A JSON error in the claims wins over a bad alg (Kong decodes both first). */
    t = raw_token("{\"alg\":\"none\"}", "nope", "");
    assert_int_equal(parse_err(t), AIGW_JWT_E_JSON);
    free(t);
    /* alg: none, missing, wrong case, not a string; header not an object. */
    const char *bad_alg[] = { "{\"alg\":\"none\"}", "{\"typ\":\"JWT\"}", "{\"alg\":\"hs256\"}",
                              "{\"alg\":256}", "{\"alg\":null}", "[\"HS256\"]", "\"HS256\"",
                              "{\"alg\":\"\"}", NULL };
    for (int i = 0; bad_alg[i]; i++) {
        t = raw_token(bad_alg[i], "{\"iss\":\"a\"}", "c2ln");
        assert_int_equal(parse_err(t), AIGW_JWT_E_ALG);
        free(t);
    }
    /* Claims that are not an object. */
    const char *bad_claims[] = { "false", "123", "\"iss\"", "[1]", "null", NULL };
    for (int i = 0; bad_claims[i]; i++) {
        t = raw_token("{\"alg\":\"HS256\"}", bad_claims[i], "c2ln");
        assert_int_equal(parse_err(t), AIGW_JWT_E_CLAIMS);
        free(t);
    }
    /* A signature that is not base64url (a fourth part, a bad character, 4k+1 long). */
    const char *bad_sig[] = { "c2ln.eA", "c2l+", "abcde", "a b", NULL };
    for (int i = 0; bad_sig[i]; i++) {
        t = raw_token("{\"alg\":\"HS256\"}", "{}", bad_sig[i]);
        assert_int_equal(parse_err(t), AIGW_JWT_E_SIGNATURE);
        free(t);
    }
    /* Empty signature: parses (and then never verifies). */
    t = raw_token("{\"alg\":\"HS256\"}", "{}", "");
    aigw_jwt_t j;
    assert_int_equal(aigw_jwt_parse(t, strlen(t), &j), AIGW_JWT_OK);
    assert_int_equal(j.sig_len, 0);
    aigw_jwt_key_t *k = aigw_jwt_key_hmac((const unsigned char *)"x", 1);
    assert_int_equal(aigw_jwt_verify(j.alg, k, j.signing_input, j.signing_input_len, j.sig,
                                     j.sig_len), 0);
    aigw_jwt_key_free(k);
    aigw_jwt_clear(&j);
    free(t);
    /* Too long: refused before any decoding. */
    size_t big = AIGW_JWT_MAX_TOKEN + 1;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[10] = '.';
    huge[20] = '.';
    huge[big] = '\0';
    assert_int_equal(parse_err(huge), AIGW_JWT_E_JSON);
    free(huge);
    /* Not NUL-terminated input: only n bytes are read. */
    t = raw_token("{\"alg\":\"HS256\"}", "{\"a\":1}", "c2ln");
    size_t tn = strlen(t);
    char *exact = malloc(tn);
    memcpy(exact, t, tn);
    assert_int_equal(aigw_jwt_parse(exact, tn, &j), AIGW_JWT_OK);
    assert_int_equal(j.sig_len, 3);
    assert_memory_equal(j.sig, "sig", 3);
    aigw_jwt_clear(&j);
    free(exact);
    free(t);
    assert_string_equal(aigw_jwt_strerror(AIGW_JWT_E_JSON), "invalid JSON");
    assert_string_equal(aigw_jwt_strerror(AIGW_JWT_E_ALG), "invalid alg");
    assert_string_equal(aigw_jwt_strerror(AIGW_JWT_E_CLAIMS), "invalid claims");
    assert_string_equal(aigw_jwt_strerror(AIGW_JWT_E_SIGNATURE), "invalid signature");
    aigw_jwt_clear(NULL);
}

/* A token minted by PyJWT 2.6 (jwt.encode({"iss":"a"}, "secret", algorithm="HS256")). */
static void pyjwt_interop(void **state)
{
    (void)state;
    const char *tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhIn0."
                      "2oqaeCU0GBqu7D8s1pID4rrB41S8nd1_Uf9y68Fg_Vo";
    aigw_jwt_key_t *k = aigw_jwt_key_hmac((const unsigned char *)"secret", 6);
    aigw_jwt_key_t *wrong = aigw_jwt_key_hmac((const unsigned char *)"secreT", 6);
    assert_int_equal(parse_verify(tok, AIGW_JWT_HS256, k), 1);
    assert_int_equal(parse_verify(tok, AIGW_JWT_HS256, wrong), 0);
    aigw_jwt_key_free(k);
    aigw_jwt_key_free(wrong);
}

static int setup(void **state)
{
    (void)state;
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return rsa_key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alg_names),
        cmocka_unit_test(base64url),
        cmocka_unit_test(sign_verify_all),
        cmocka_unit_test(hs256_known_vector),
        cmocka_unit_test(hs_rs_confusion),
        cmocka_unit_test(es_curve_mismatch),
        cmocka_unit_test(key_formats),
        cmocka_unit_test(malformed),
        cmocka_unit_test(pyjwt_interop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
