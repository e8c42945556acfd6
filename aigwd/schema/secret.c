/* aigwd/schema/secret.c: secrets at rest (aigw_schema_protect_secrets in schema.h). */
#include <argon2.h>
#include <openssl/rand.h>
#include <string.h>
#include "schema/schema.h"

/* Replaces obj[field] by its Argon2id hash (t=2, m=19 MiB, p=1); a value already in that
 * form stays, so re-saving an entity never hashes a hash. */
static int hash_field(json_t *obj, const char *field)
{
    const char *pw = json_string_value(json_object_get(obj, field));
    if (!pw || strncmp(pw, "$argon2id$", 10) == 0)
        return 0;
    unsigned char salt[16];
    char enc[160];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -1;
    if (argon2id_hash_encoded(2, 19456, 1, pw, strlen(pw), salt, sizeof(salt), 32, enc,
                              sizeof(enc)) != ARGON2_OK)
        return -1;
    json_object_set_new(obj, field, json_string(enc));
    return 0;
}

int aigw_schema_protect_secrets(const aigw_entity_t *e, json_t *obj)
{
    if (strcmp(e->name, "basicauth_credentials") == 0)
        return hash_field(obj, "password");
    if (strcmp(e->name, "oauth2_credentials") == 0 &&
        json_is_true(json_object_get(obj, "hash_secret")))
        return hash_field(obj, "client_secret");
    return 0;
}
