/* tests/unit/test_cluster_proto.c: the cluster wire format (aigwd/cluster/proto.c): frames
 * read byte by byte, bounds, snapshot and delta encode/decode, and every way a snapshot or
 * a delta can be altered being refused before it is interpreted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "cluster/proto.h"

static const char doc[] = "{\"_format_version\":\"3.0\",\"services\":[],\"routes\":[]}";

static void sha_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int l = 0;
    EVP_Digest(s, n, md, &l, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static uint8_t *encode(EVP_PKEY *k, size_t *flen)
{
    char h[65], err[256];
    uint8_t *f = NULL;
    sha_hex(doc, strlen(doc), h);
    assert_int_equal(aigw_cf_snapshot_encode(doc, strlen(doc), 42, h, k, &f, flen, err,
                                             sizeof(err)), 0);
    return f;
}

static int decode(const uint8_t *p, size_t n, EVP_PKEY *k, char *err, size_t errlen)
{
    long long v;
    char h[65];
    char *json = NULL;
    size_t jl;
    int r = aigw_cf_snapshot_decode(p, n, k, &v, h, &json, &jl, err, errlen);
    if (r == 0) {
        assert_int_equal(v, 42);
        assert_int_equal(jl, strlen(doc));
        assert_memory_equal(json, doc, jl);
    }
    free(json);
    return r;
}

static void roundtrip_and_tamper(void **state)
{
    (void)state;
    const char *types[] = { "ED25519", "EC" };
    for (int t = 0; t < 2; t++) {
        EVP_PKEY *k = t == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                             : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(k);
        size_t flen;
        uint8_t *f = encode(k, &flen);
        uint8_t *p = f + AIGW_CF_HDR;
        size_t n = flen - AIGW_CF_HDR;
        char err[256];
        assert_int_equal(f[0], AIGW_CF_SNAPSHOT);
        assert_int_equal(decode(p, n, k, err, sizeof(err)), 0);
        long long v;
        char h[65];
        assert_int_equal(aigw_cf_snapshot_peek(p, n, &v, h), 0);
        assert_int_equal(v, 42);
        /* every single flipped bit of the payload is refused */
        for (size_t i = 0; i < n; i++) {
            p[i] ^= 0x10;
            if (decode(p, n, k, err, sizeof(err)) == 0)
                fail_msg("%s: flipping byte %zu of %zu went unnoticed", types[t], i, n);
            p[i] ^= 0x10;
        }
        /* every truncation is refused */
        for (size_t i = 0; i < n; i++)
            assert_int_equal(decode(p, i, k, err, sizeof(err)), -1);
        /* another key's signature is refused, and said so */
        assert_int_equal(decode(p, n, other, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "bad signature"));
        assert_int_equal(decode(p, n, k, err, sizeof(err)), 0);
        free(f);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
    }
}

/* A delta rebuilds exactly the new text from the base, for changes at the start, middle and
 * end, growth and shrinkage; it applies to its base only; every flipped bit and every
 * truncation is refused; a mostly-changed text is not worth a delta. */
static void deltas(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    static char base[4096];
    for (size_t i = 0; i < sizeof(base) - 1; i++)
        base[i] = (char)('a' + (i * 7 + i / 13) % 26);
    size_t bl = sizeof(base) - 1;
    char bh[65];
    sha_hex(base, bl, bh);
    struct { size_t at, del; const char *ins; } edits[] = {
        { 0, 0, "X" }, { 0, 5, "" }, { 2000, 1, "inserted" }, { 2000, 30, "" },
        { bl, 0, "tail" }, { bl - 3, 3, "" }, { 100, 0, "" },
    };
    for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
        char next[8192];
        size_t il = strlen(edits[e].ins);
        memcpy(next, base, edits[e].at);
        memcpy(next + edits[e].at, edits[e].ins, il);
        size_t rest = bl - edits[e].at - edits[e].del;
        memcpy(next + edits[e].at + il, base + edits[e].at + edits[e].del, rest);
        size_t nl = edits[e].at + il + rest;
        char nh[65], err[256], h[65];
        sha_hex(next, nl, nh);
        uint8_t *f = NULL;
        size_t flen = 0;
        assert_int_equal(aigw_cf_delta_encode(base, bl, bh, next, nl, 7, nh, k, &f, &flen, err,
                                              sizeof(err)), 0);
        assert_int_equal(f[0], AIGW_CF_DELTA);
        assert_true(flen < 300);   /* the shared bytes are not sent */
        uint8_t *p = f + AIGW_CF_HDR;
        size_t n = flen - AIGW_CF_HDR;
        long long v = 0;
        char *json = NULL;
        size_t jl = 0;
        assert_int_equal(aigw_cf_delta_decode(p, n, k, base, bl, bh, &v, h, &json, &jl, err,
                                              sizeof(err)), 0);
        assert_int_equal(v, 7);
        assert_int_equal(jl, nl);
        assert_memory_equal(json, next, nl);
        assert_string_equal(h, nh);
        free(json);
        if (e == 0) {
            /* not the base in use: refused, and said so */
            assert_int_equal(aigw_cf_delta_decode(p, n, k, next, nl, nh, &v, h, &json, &jl,
                                                  err, sizeof(err)), -1);
            assert_non_null(strstr(err, "applies to configuration"));
            for (size_t i = 0; i < n; i++) {
                p[i] ^= 0x10;
                if (aigw_cf_delta_decode(p, n, k, base, bl, bh, &v, h, &json, &jl, err,
                                         sizeof(err)) == 0)
                    fail_msg("flipping byte %zu of %zu went unnoticed", i, n);
                p[i] ^= 0x10;
            }
            for (size_t i = 0; i < n; i++)
                assert_int_equal(aigw_cf_delta_decode(p, i, k, base, bl, bh, &v, h, &json, &jl,
                                                      err, sizeof(err)), -1);
        }
        free(f);
    }
    /* more than half changed: send the snapshot */
    char other[4096];
    memset(other, 'z', sizeof(other));
    char oh[65], err[256];
    sha_hex(other, sizeof(other), oh);
    uint8_t *f = NULL;
    size_t flen = 0;
    assert_int_equal(aigw_cf_delta_encode(base, bl, bh, other, sizeof(other), 8, oh, k, &f,
                                          &flen, err, sizeof(err)), 1);
    assert_null(f);
    EVP_PKEY_free(k);
}

static void frames_byte_by_byte(void **state)
{
    (void)state;
    aigw_cf_reader_t r = { .max_snapshot = 1u << 20 };
    uint8_t buf[64];
    size_t n1, n2;
    uint8_t *a = aigw_cf_frame(AIGW_CF_PING, "abc", 3, &n1);
    uint8_t *b = aigw_cf_frame(AIGW_CF_PONG, NULL, 0, &n2);
    memcpy(buf, a, n1);
    memcpy(buf + n1, b, n2);
    int frames = 0;
    char err[128];
    for (size_t i = 0; i < n1 + n2; i++) {
        size_t used = 0;
        int fr = aigw_cf_feed(&r, buf + i, 1, &used, err, sizeof(err));
        assert_int_equal(used, 1);
        assert_true(fr >= 0);
        if (fr == 1) {
            if (frames == 0) {
                assert_int_equal(r.type, AIGW_CF_PING);
                assert_int_equal(r.len, 3);
                assert_memory_equal(r.payload, "abc", 3);
            } else {
                assert_int_equal(r.type, AIGW_CF_PONG);
                assert_int_equal(r.len, 0);
            }
            frames++;
            aigw_cf_reader_next(&r);
        }
    }
    assert_int_equal(frames, 2);
    free(a);
    free(b);

    /* too large, unknown type: refused from the header alone */
    uint8_t hdr[AIGW_CF_HDR];
    size_t used;
    aigw_cf_header(hdr, AIGW_CF_SNAPSHOT, (1u << 20) + 1);
    assert_int_equal(aigw_cf_feed(&r, hdr, sizeof(hdr), &used, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cluster_max_payload"));
    aigw_cf_reader_free(&r);
    aigw_cf_header(hdr, AIGW_CF_HELLO, AIGW_CF_SMALL_MAX + 1);
    assert_int_equal(aigw_cf_feed(&r, hdr, sizeof(hdr), &used, err, sizeof(err)), -1);
    aigw_cf_reader_free(&r);
    aigw_cf_header(hdr, 99, 1);
    assert_int_equal(aigw_cf_feed(&r, hdr, sizeof(hdr), &used, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown frame type"));
    aigw_cf_reader_free(&r);
    /* a half-read frame is freed */
    aigw_cf_header(hdr, AIGW_CF_HELLO, 100);
    assert_int_equal(aigw_cf_feed(&r, hdr, sizeof(hdr), &used, err, sizeof(err)), 0);
    aigw_cf_reader_free(&r);
}

static void versions(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(aigw_cf_version_compatible("3.9.1", "3.9.0", why, sizeof(why)), 1);
    assert_int_equal(aigw_cf_version_compatible("3.9.1", "3.4.2", why, sizeof(why)), 1);
    assert_int_equal(aigw_cf_version_compatible("3.9.1", "3.10.0", why, sizeof(why)), 0);
    assert_non_null(strstr(why, "older control plane"));
    assert_int_equal(aigw_cf_version_compatible("3.9.1", "4.0.0", why, sizeof(why)), 0);
    assert_non_null(strstr(why, "major versions differ"));
    assert_int_equal(aigw_cf_version_compatible("3.9.1", "x", why, sizeof(why)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_and_tamper),
        cmocka_unit_test(deltas),
        cmocka_unit_test(frames_byte_by_byte),
        cmocka_unit_test(versions),
    };
    return cmocka_run_group_tests_name("cluster_proto", tests, NULL, NULL);
}
