/* tests/fuzz/fuzz_cluster.c: libFuzzer harness for the cluster wire format
 * (aigwd/cluster/proto.c): the frame reader, and SNAPSHOT and DELTA payloads past their
 * signature. A fuzzer cannot forge a signature, so the input here is the part a control
 * plane signs, and the harness signs it with its own Ed25519 key: this checks what a data
 * plane does with a payload that is authentic but malformed (a buggy or hostile control
 * plane): bounds, zlib streams, a delta's prefix and suffix against the base in use.
 *
 * Config byte (the first):
 *   bit  0    0: frames; 1: payloads
 *   frames:   the rest is fed to aigw_cf_feed in pieces whose sizes come from bits 1-7 and
 *             the bytes themselves; a complete SNAPSHOT/DELTA frame is decoded too
 *   payloads: bit 1 SNAPSHOT (0) or DELTA (1); bit 2 writes the right magic over the first
 *             8 bytes; bit 3 (DELTA) writes the base's sha256 at its place, so the bounds
 *             and the zlib stream are reached
 *
 * Checked on every input: no crash, no leak, no read past a buffer; the reader takes what
 * it is given until a frame is complete; a payload that decodes gives NUL-terminated JSON
 * of the declared length whose sha256 is the hash it reports; one that does not says why. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "cluster/proto.h"
#include "common/str.h"
#include "fuzz_common.h"

static const char base[] = "{\"_format_version\":\"3.0\",\"services\":[{\"id\":\"s1\","
                           "\"host\":\"example.test\"}],\"routes\":[]}";
static char base_hash[65];
static EVP_PKEY *key;

static void init(void)
{
    if (key)
        return;
    key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    CHECK(key);
    unsigned char md[32];
    unsigned int l = 0;
    EVP_Digest(base, strlen(base), md, &l, EVP_sha256(), NULL);
    aigw_hex_encode(md, 32, base_hash);
}

/* A decoded payload: the JSON's sha256 is the hash reported, its length the declared one. */
static void check_decoded(const uint8_t *p, size_t n, const char *json, size_t len,
                          const char hash[65])
{
    CHECK(n >= 56);
    uint64_t declared = 0;
    for (int i = 0; i < 8; i++)
        declared = declared << 8 | p[48 + i];
    CHECK(declared == len);
    CHECK(json[len] == '\0');
    unsigned char md[32];
    unsigned int l = 0;
    char h[65];
    EVP_Digest(json, len, md, &l, EVP_sha256(), NULL);
    aigw_hex_encode(md, 32, h);
    CHECK(strcmp(h, hash) == 0);
}

static void decode(int type, const uint8_t *p, size_t n)
{
    long long version;
    char hash[65], err[256];
    char *json = NULL;
    size_t len = 0;
    int r = type == AIGW_CF_DELTA
                ? aigw_cf_delta_decode(p, n, key, base, strlen(base), base_hash, &version,
                                       hash, &json, &len, err, sizeof(err))
                : aigw_cf_snapshot_decode(p, n, key, &version, hash, &json, &len, err,
                                          sizeof(err));
    if (r == 0) {
        check_decoded(p, n, json, len, hash);
        free(json);
    } else {
        CHECK(json == NULL && err[0]);
    }
}

static void frames(uint8_t cfg, const uint8_t *data, size_t size)
{
    aigw_cf_reader_t rd = { .max_snapshot = 1u << 20 };
    size_t off = 0, step = (size_t)(cfg >> 1) + 1;
    while (off < size) {
        size_t take = size - off < step ? size - off : step;
        size_t pos = 0;
        while (pos < take) {
            size_t used = 0;
            char err[256];
            int r = aigw_cf_feed(&rd, data + off + pos, take - pos, &used, err, sizeof(err));
            CHECK(used <= take - pos);
            pos += used;
            if (r < 0) {
                aigw_cf_reader_free(&rd);
                return;
            }
            if (r == 1) {
                CHECK(rd.got == rd.len);
                if (rd.type == AIGW_CF_SNAPSHOT || rd.type == AIGW_CF_DELTA)
                    decode(rd.type, rd.payload, rd.len);
                aigw_cf_reader_next(&rd);
            } else {
                CHECK(pos == take);   /* needs more: everything was taken */
            }
        }
        off += take;
        step = (step * 7 + data[off - 1]) % 97 + 1;
    }
    aigw_cf_reader_free(&rd);
}

static void payloads(uint8_t cfg, const uint8_t *data, size_t size)
{
    int type = (cfg & 2) ? AIGW_CF_DELTA : AIGW_CF_SNAPSHOT;
    size_t siglen = 64;
    uint8_t *p = malloc(size + siglen + 2 + 1);
    CHECK(p);
    memcpy(p, data, size);
    if ((cfg & 4) && size >= 8)
        memcpy(p, type == AIGW_CF_DELTA ? AIGW_CF_DELTA_MAGIC : AIGW_CF_SNAP_MAGIC, 8);
    if (type == AIGW_CF_DELTA && (cfg & 8) && size >= 88) {
        for (int i = 0; i < 32; i++) {
            unsigned v;
            sscanf(base_hash + 2 * i, "%2x", &v);
            p[56 + i] = (uint8_t)v;
        }
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(md && EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, key, NULL) == 1 &&
          EVP_DigestSign(md, p + size, &siglen, p, size) == 1 && siglen == 64);
    EVP_MD_CTX_free(md);
    p[size + 64] = 0;
    p[size + 65] = 64;
    /* an exact-size copy: ASan sees any read past the payload */
    size_t n = size + 66;
    uint8_t *q = malloc(n);
    CHECK(q);
    memcpy(q, p, n);
    free(p);
    decode(type, q, n);
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1 || size > (1u << 16))
        return 0;
    uint8_t cfg = data[0];
    if (cfg & 1)
        payloads(cfg, data + 1, size - 1);
    else
        frames(cfg, data + 1, size - 1);
    return 0;
}
