/* aigwd/proxy/consumers.h: the consumers and credentials of a runtime, indexed for the
 * authentication plugins (issue 6). Built by the loader from a snapshot's `consumers`,
 * `jwt_secrets`, `keyauth_credentials`, `basicauth_credentials`, `acls` and
 * `oauth2_credentials` arrays; immutable afterwards and shared read-only by every worker.
 *
 * Lookups by secret (key-auth keys, oauth2 client ids) go through a SHA-256 of the secret:
 * the hash table is probed with a digest, and the digests compared with CRYPTO_memcmp, so
 * the time a lookup takes does not depend on how much of a guessed key matches a real one.
 * Lookups by public name (jwt key, basic-auth username, consumer username) are plain. */
#ifndef AIGW_PROXY_CONSUMERS_H
#define AIGW_PROXY_CONSUMERS_H
#include <jansson.h>
#include <stddef.h>
#include "common/str.h"

typedef struct aigw_consumers aigw_consumers_t;

typedef struct aigw_rt_consumer {
    char id[37];
    aigw_str_t username;          /* empty when null */
    aigw_str_t custom_id;         /* empty when null */
    aigw_str_t *groups;           /* acls of the consumer, in snapshot order */
    size_t n_groups;
    size_t n_jwt;                 /* how many jwt credentials it has */
    const struct aigw_rt_jwt_cred *first_jwt;   /* one of them (the only one when n_jwt == 1) */
    aigw_str_t json;              /* the entity as compact JSON (log records) */
} aigw_rt_consumer_t;

typedef struct aigw_rt_jwt_cred {
    char id[37];
    aigw_str_t key;
    aigw_str_t secret;            /* HS*: the secret as stored (base64 when secret_is_base64) */
    aigw_str_t rsa_public_key;    /* RS/ES/PS/EdDSA: PEM; empty when null */
    aigw_str_t algorithm;         /* "HS256", ... */
    const aigw_rt_consumer_t *consumer;
} aigw_rt_jwt_cred_t;

typedef struct aigw_rt_keyauth_cred {
    char id[37];
    const aigw_rt_consumer_t *consumer;
} aigw_rt_keyauth_cred_t;

typedef struct aigw_rt_basicauth_cred {
    char id[37];
    aigw_str_t username;
    aigw_str_t password;          /* Argon2id encoded hash ("$argon2id$..."), as stored */
    const aigw_rt_consumer_t *consumer;
} aigw_rt_basicauth_cred_t;

typedef struct aigw_rt_oauth2_cred {
    char id[37];
    aigw_str_t name;
    aigw_str_t client_id;
    aigw_str_t client_secret;     /* plain, or an Argon2id hash when hash_secret */
    int hash_secret;
    aigw_str_t *redirect_uris;
    size_t n_redirect_uris;
    aigw_str_t client_type;       /* "confidential" or "public" */
    const aigw_rt_consumer_t *consumer;
} aigw_rt_oauth2_cred_t;

/* Loader thread. root is the snapshot's top-level object. NULL with a message in err on a
 * malformed entry (a credential naming a consumer the snapshot lacks is skipped, as a
 * dangling row would be). */
aigw_consumers_t *aigw_consumers_build(const json_t *root, char *err, size_t errlen);
void aigw_consumers_free(aigw_consumers_t *c);       /* NULL is fine */

/* Every lookup: any thread, c may be NULL (then NULL). Results live as long as the runtime. */
const aigw_rt_consumer_t *aigw_consumer_by_id(const aigw_consumers_t *c, aigw_str_t id);
const aigw_rt_consumer_t *aigw_consumer_by_username(const aigw_consumers_t *c, aigw_str_t name);
/* Kong's `anonymous` and ACL-style references: an id when it parses as a UUID and one has
 * it, else a username. */
const aigw_rt_consumer_t *aigw_consumer_by_ref(const aigw_consumers_t *c, aigw_str_t ref);
size_t aigw_consumers_count(const aigw_consumers_t *c);

const aigw_rt_jwt_cred_t *aigw_jwt_cred_by_key(const aigw_consumers_t *c, aigw_str_t key);
const aigw_rt_keyauth_cred_t *aigw_keyauth_cred_by_key(const aigw_consumers_t *c,
                                                       aigw_str_t key);
const aigw_rt_basicauth_cred_t *aigw_basicauth_cred_by_username(const aigw_consumers_t *c,
                                                                aigw_str_t username);
const aigw_rt_oauth2_cred_t *aigw_oauth2_cred_by_client_id(const aigw_consumers_t *c,
                                                           aigw_str_t client_id);

#endif
