/* tests/fuzz/fuzz_jwt.c: libFuzzer harness for JWT parsing and verification
 * (aigwd/plugins/jwt_token.c), the code the jwt plugin runs on every token a client sends.
 *
 * The input is a token, copied into an exact-size heap block (no NUL: ASan sees any read
 * past it). Never crash, never leak; checked on every input:
 *   - base64url: decoding any input either fails or gives at most n * 3 / 4 + 2 bytes, and
 *     encode then decode of those bytes gives them back;
 *   - a parsed token has object header and claims, a supported alg, and a signing input that
 *     is the token up to its second dot;
 *   - verification with every algorithm and kind of key (HMAC, RSA, P-256, Ed25519) runs
 *     without error on any signature; for HS* the HMAC of the signing input verifies and the
 *     fuzzed signature verifies only if it equals it. */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/jwt_token.h"
#include "fuzz_common.h"

static aigw_jwt_key_t *keys[4];   /* HMAC, RSA, EC P-256, Ed25519: made once */

static void init_keys(void)
{
    if (keys[0])
        return;
    keys[0] = aigw_jwt_key_hmac((const unsigned char *)"fuzz-secret", 11);
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    keys[1] = aigw_jwt_key_pkey(rsa);
    keys[2] = aigw_jwt_key_pkey(ec);
    keys[3] = aigw_jwt_key_pkey(ed);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    for (int i = 0; i < 4; i++)
        CHECK(keys[i] != NULL);
}

static void check_b64(const char *in, size_t n)
{
    unsigned char *out = malloc(n / 4 * 3 + 4);
    CHECK(out != NULL);
    size_t len = 0;
    if (aigw_jwt_b64url_decode(in, n, out, &len) == 0) {
        CHECK(len <= n / 4 * 3 + 2);
        char *enc = malloc((len + 2) / 3 * 4 + 1);
        CHECK(enc != NULL);
        size_t en = aigw_jwt_b64url_encode(out, len, enc);
        CHECK(en == strlen(enc));
        unsigned char *back = malloc(en / 4 * 3 + 4);
        CHECK(back != NULL);
        size_t bn = 0;
        CHECK(aigw_jwt_b64url_decode(enc, en, back, &bn) == 0);
        CHECK(bn == len && memcmp(back, out, len) == 0);
        free(back);
        free(enc);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_keys();
    char *tok = malloc(size ? size : 1);
    CHECK(tok != NULL);
    if (size)
        memcpy(tok, data, size);

    check_b64(tok, size);

    aigw_jwt_t t;
    aigw_jwt_err_t e = aigw_jwt_parse(tok, size, &t);
    if (e == AIGW_JWT_OK) {
        CHECK(json_is_object(t.header) && json_is_object(t.claims));
        CHECK(t.alg >= 0 && t.alg < AIGW_JWT_ALG_COUNT);
        const char *alg = json_string_value(json_object_get(t.header, "alg"));
        CHECK(alg && strcmp(alg, aigw_jwt_alg_name(t.alg)) == 0);
        CHECK(t.signing_input == tok && t.signing_input_len < size);
        CHECK(tok[t.signing_input_len] == '.');
        CHECK(memchr(tok, '.', t.signing_input_len) != NULL);
        CHECK(t.sig != NULL);
        for (int a = 0; a < AIGW_JWT_ALG_COUNT; a++)
            for (int k = 0; k < 4; k++) {
                int v = aigw_jwt_verify((aigw_jwt_alg_t)a, keys[k], t.signing_input,
                                        t.signing_input_len, t.sig, t.sig_len);
                CHECK(v == 0 || v == 1);
                /* Only an HMAC key verifies HS*, and only HS* with an HMAC key; a random
                 * signature never verifies an asymmetric algorithm. */
                if (v)
                    CHECK(aigw_jwt_alg_is_hmac((aigw_jwt_alg_t)a) == (k == 0));
            }
        if (aigw_jwt_alg_is_hmac(t.alg)) {
            unsigned char *mac;
            size_t mn;
            CHECK(aigw_jwt_sign(t.alg, keys[0], t.signing_input, t.signing_input_len, &mac,
                                &mn) == 0);
            CHECK(aigw_jwt_verify(t.alg, keys[0], t.signing_input, t.signing_input_len, mac,
                                  mn) == 1);
            int same = mn == t.sig_len && memcmp(mac, t.sig, mn) == 0;
            CHECK(aigw_jwt_verify(t.alg, keys[0], t.signing_input, t.signing_input_len, t.sig,
                                  t.sig_len) == same);
            free(mac);
        }
    } else {
        CHECK(t.header == NULL && t.claims == NULL && t.sig == NULL);
        CHECK(e == AIGW_JWT_E_JSON || e == AIGW_JWT_E_ALG || e == AIGW_JWT_E_CLAIMS ||
              e == AIGW_JWT_E_SIGNATURE || e == AIGW_JWT_E_NOMEM);
    }
    aigw_jwt_clear(&t);
    free(tok);
    return 0;
}
