/* aigwd/cluster/proto.h: the wire format of the cluster link between a control plane (CP)
 * and its data planes (DP), and the TLS and key helpers both sides use. Pure functions: any
 * thread; nothing here touches a socket.
 *
 * The link is TLS 1.3 with a client certificate on both ends (cluster_mtls = shared | pki).
 * On it, frames:
 *
 *     type (1 byte) | length (4 bytes, big-endian) | payload (length bytes)
 *
 *  HELLO    DP -> CP  JSON {"node_id","hostname","version","config_hash"}; first DP frame
 *  SNAPSHOT CP -> DP  a signed, compressed configuration snapshot (below)
 *  PING     DP -> CP  the sha256 hex of the configuration the DP runs (64 bytes, or empty)
 *  PONG     CP -> DP  empty
 *  REFUSE   CP -> DP  a UTF-8 reason; the CP closes the link after it
 *  DELTA    CP -> DP  a signed change from the snapshot the DP runs to the next (below)
 *  RESYNC   DP -> CP  empty: a DELTA did not apply; send the whole snapshot
 *
 * A SNAPSHOT payload:
 *
 *     "AIGWSNP1" | version (8, BE) | sha256 of the JSON (32) | JSON length (8, BE)
 *     | zlib stream of the JSON | signature (siglen bytes) | siglen (2, BE)
 *
 * The signature covers every byte before it (magic to the end of the zlib stream). The CP
 * signs with cluster_cert_key: Ed25519 when the key is Ed25519 (what `aigwd hybrid gen_cert`
 * makes), else the key's own algorithm over SHA-256. The DP verifies with the public key of
 * the certificate the CP presented in the TLS handshake (shared: identical to its own
 * cluster_cert; pki: chain-verified against cluster_ca_cert and name-checked), before it
 * decompresses or parses anything.
 *
 * A DELTA payload, sent instead of a SNAPSHOT when the DP is known to run the previous
 * snapshot and most bytes did not change (one admin write in a 10k-route configuration):
 *
 *     "AIGWDLT1" | version (8, BE) | sha256 of the new JSON (32) | its length (8, BE)
 *     | sha256 of the base JSON (32) | prefix (8, BE) | suffix (8, BE)
 *     | zlib stream of the new JSON's middle | signature | siglen (2, BE)
 *
 * The new JSON is the base's first `prefix` bytes, the middle, then the base's last
 * `suffix` bytes; the DP checks the signature, that it runs the base, the bounds, and the
 * result's sha256, so a delta applies whole or not at all. */
#ifndef AIGW_CLUSTER_PROTO_H
#define AIGW_CLUSTER_PROTO_H
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "core/conf.h"

enum {
    AIGW_CF_HELLO = 1,
    AIGW_CF_SNAPSHOT = 2,
    AIGW_CF_PING = 3,
    AIGW_CF_PONG = 4,
    AIGW_CF_REFUSE = 5,
    AIGW_CF_DELTA = 6,
    AIGW_CF_RESYNC = 7,
};

#define AIGW_CF_HDR 5
#define AIGW_CF_SMALL_MAX 65536u          /* any frame but SNAPSHOT */
#define AIGW_CF_JSON_MAX (1024u << 20)    /* uncompressed snapshot bound (1 GiB) */
#define AIGW_CF_SNAP_MAGIC "AIGWSNP1"
#define AIGW_CF_SNAP_FIXED 56             /* magic + version + sha256 + length */
#define AIGW_CF_DELTA_MAGIC "AIGWDLT1"
#define AIGW_CF_DELTA_FIXED 104           /* the above + base sha256 + prefix + suffix */

/* Big-endian 32-bit fields of frames and of the DP's cache files. */
static inline uint32_t aigw_cf_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void aigw_cf_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A resumable frame reader: feed it bytes as they come. Owns the payload it collects. */
typedef struct aigw_cf_reader {
    uint8_t hdr[AIGW_CF_HDR];
    size_t hdr_n;
    uint8_t type;
    uint32_t len;
    uint8_t *payload;          /* malloc'd when len > 0 */
    size_t got;
    uint64_t max_snapshot;     /* bound of a SNAPSHOT payload (cluster_max_payload) */
} aigw_cf_reader_t;

/* Consumes bytes from p[0..n): *used says how many. 1: a frame is complete (read r->type,
 * r->payload, r->len, then call aigw_cf_reader_next), 0: needs more, -1: a frame type or
 * length that is not allowed (reason in err). Allocates at most one bounded payload. */
int aigw_cf_feed(aigw_cf_reader_t *r, const uint8_t *p, size_t n, size_t *used, char *err,
                 size_t errlen);
/* Forgets the complete frame (frees its payload) to read the next one. */
void aigw_cf_reader_next(aigw_cf_reader_t *r);
/* Frees what the reader holds (also fine mid-frame). */
void aigw_cf_reader_free(aigw_cf_reader_t *r);

/* Writes a frame header. */
void aigw_cf_header(uint8_t out[AIGW_CF_HDR], int type, uint32_t len);
/* A whole frame (header + copy of payload), malloc'd; NULL when out of memory. */
uint8_t *aigw_cf_frame(int type, const void *payload, size_t len, size_t *out_len);

/* CP: compresses json (zlib, once per snapshot), signs it with key and returns a whole
 * SNAPSHOT frame in *frame (malloc'd, caller frees). 0, or -1 with err. */
int aigw_cf_snapshot_encode(const char *json, size_t len, long long version,
                            const char hash_hex[65], EVP_PKEY *key, uint8_t **frame,
                            size_t *frame_len, char *err, size_t errlen);

/* DP: checks a SNAPSHOT payload: the signature with pub first, then the bounds, then
 * decompresses and checks the JSON's sha256. On success *json (malloc'd, NUL-terminated,
 * caller frees), *json_len, *version and hash (hex) are set. 0, or -1 with err. */
int aigw_cf_snapshot_decode(const uint8_t *p, size_t n, EVP_PKEY *pub, long long *version,
                            char hash[65], char **json, size_t *json_len, char *err,
                            size_t errlen);

/* CP: a whole DELTA frame in *frame (malloc'd) that turns base (the snapshot a DP runs,
 * sha256 base_hash) into json: the bytes both share at their start and end are referenced,
 * the middle is compressed, the whole signed with key. 0; 1 when more than half of json
 * changed (send the snapshot instead); -1 with err. */
int aigw_cf_delta_encode(const char *base, size_t base_len, const char base_hash[65],
                         const char *json, size_t len, long long version,
                         const char hash_hex[65], EVP_PKEY *key, uint8_t **frame,
                         size_t *frame_len, char *err, size_t errlen);

/* DP: checks a DELTA payload (signature with pub first, then that it applies to base, the
 * JSON in use whose sha256 hex is base_hash, then the bounds), rebuilds the new JSON and
 * checks its sha256. Outputs as aigw_cf_snapshot_decode. 0, or -1 with err. */
int aigw_cf_delta_decode(const uint8_t *p, size_t n, EVP_PKEY *pub, const char *base,
                         size_t base_len, const char base_hash[65], long long *version,
                         char hash[65], char **json, size_t *json_len, char *err,
                         size_t errlen);

/* Reads only the version and hash of a SNAPSHOT payload (no verification). 0 or -1. */
int aigw_cf_snapshot_peek(const uint8_t *p, size_t n, long long *version, char hash[65]);

/* ---- TLS --------------------------------------------------------------------------------- */

/* A TLS 1.3-only context with cluster_cert/cluster_cert_key, verifying the peer as
 * cluster_mtls says (shared: the peer's certificate must equal ours; pki: chain to
 * cluster_ca_cert). server: 1 for the CP's listener, 0 for a DP. NULL with err. */
SSL_CTX *aigw_cf_ssl_ctx(const aigw_conf_t *c, int server, char *err, size_t errlen);

/* The private key of cluster_cert_key (the CP signs with it). NULL with err. */
EVP_PKEY *aigw_cf_load_key(const char *path, char *err, size_t errlen);
/* The public key of the certificate in path. NULL with err. */
EVP_PKEY *aigw_cf_load_cert_pubkey(const char *path, char *err, size_t errlen);

/* `aigwd hybrid gen_cert`: writes a self-signed Ed25519 certificate (CN kong_clustering,
 * `days` days) to cert_path (0644) and its key to key_path (0600). Refuses to overwrite.
 * 0, or -1 with err. */
int aigw_cf_gen_cert(const char *cert_path, const char *key_path, int days, char *err,
                     size_t errlen);

/* Major.minor of a version string ("3.9.1" -> 3, 9). 0, or -1 when it is not one. */
int aigw_cf_version_parse(const char *v, int *major, int *minor);
/* Whether a CP of version cp serves a DP of version dp (Kong's rule: same major, DP minor
 * not newer). 1 yes; 0 no, with the reason in why. */
int aigw_cf_version_compatible(const char *cp, const char *dp, char *why, size_t whylen);

#endif
