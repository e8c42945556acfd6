/* tests/unit/test_consumers.c: aigwd/proxy/consumers.c: the consumer and credential indexes
 * the authentication plugins read (lookups by id, username, jwt key, key-auth key, basic-auth
 * username, oauth2 client id; groups; the jwt count the consumer fallback relies on), dangling
 * credentials skipped, malformed entries refused with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proxy/consumers.h"

#define C1 "11111111-1111-4111-8111-111111111111"
#define C2 "22222222-2222-4222-8222-222222222222"
#define C3 "33333333-3333-4333-8333-333333333333"
#define GONE "99999999-9999-4999-8999-999999999999"
#define ID(n) "aaaaaaaa-aaaa-4aaa-8aaa-00000000000" #n

static const char config[] =
    "{\"consumers\":["
    "{\"id\":\"" C1 "\",\"username\":\"ai-client\",\"custom_id\":\"cust-1\"},"
    "{\"id\":\"" C2 "\",\"username\":\"two-keys\",\"custom_id\":null},"
    "{\"id\":\"" C3 "\",\"custom_id\":\"only-custom\"}],"
    "\"jwt_secrets\":["
    "{\"id\":\"" ID(1) "\",\"consumer\":{\"id\":\"" C1 "\"},\"key\":\"k-one\",\"secret\":\"s1\","
    "\"algorithm\":\"HS256\",\"rsa_public_key\":null},"
    "{\"id\":\"" ID(2) "\",\"consumer\":{\"id\":\"" C2 "\"},\"key\":\"k-two-a\",\"secret\":\"s2\"},"
    "{\"id\":\"" ID(3) "\",\"consumer\":{\"id\":\"" C2 "\"},\"key\":\"k-two-b\",\"secret\":\"s3\","
    "\"algorithm\":\"RS256\",\"rsa_public_key\":\"-----BEGIN PUBLIC KEY-----\"},"
    "{\"id\":\"" ID(4) "\",\"consumer\":{\"id\":\"" GONE "\"},\"key\":\"k-dangling\"}],"
    "\"keyauth_credentials\":["
    "{\"id\":\"" ID(5) "\",\"consumer\":{\"id\":\"" C1 "\"},\"key\":\"secret-api-key\"}],"
    "\"basicauth_credentials\":["
    "{\"id\":\"" ID(6) "\",\"consumer\":{\"id\":\"" C1 "\"},\"username\":\"alice\","
    "\"password\":\"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\"}],"
    "\"acls\":["
    "{\"id\":\"" ID(7) "\",\"consumer\":{\"id\":\"" C1 "\"},\"group\":\"ai-operator\"},"
    "{\"id\":\"" ID(8) "\",\"consumer\":{\"id\":\"" C2 "\"},\"group\":\"ai-admin\"},"
    "{\"id\":\"" ID(9) "\",\"consumer\":{\"id\":\"" C1 "\"},\"group\":\"ai-admin\"}],"
    "\"oauth2_credentials\":["
    "{\"id\":\"" ID(0) "\",\"consumer\":{\"id\":\"" C1 "\"},\"name\":\"app\","
    "\"client_id\":\"cid\",\"client_secret\":\"csecret\",\"hash_secret\":false,"
    "\"redirect_uris\":[\"https://app.example/cb\"]}]}";

static aigw_consumers_t *load(const char *json, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    assert_non_null(root);
    aigw_consumers_t *c = aigw_consumers_build(root, err, errlen);
    json_decref(root);
    return c;
}

static void test_lookups(void **state)
{
    (void)state;
    char err[256] = "";
    aigw_consumers_t *c = load(config, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(aigw_consumers_count(c), 3);

    const aigw_rt_consumer_t *k = aigw_consumer_by_id(c, aigw_str_c(C1));
    assert_non_null(k);
    assert_true(aigw_str_eq(k->username, AIGW_STR("ai-client")));
    assert_true(aigw_str_eq(k->custom_id, AIGW_STR("cust-1")));
    assert_ptr_equal(aigw_consumer_by_username(c, AIGW_STR("ai-client")), k);
    assert_ptr_equal(aigw_consumer_by_ref(c, AIGW_STR(C1)), k);
    assert_ptr_equal(aigw_consumer_by_ref(c, AIGW_STR("ai-client")), k);
    assert_null(aigw_consumer_by_ref(c, AIGW_STR("nobody")));
    assert_null(aigw_consumer_by_id(c, AIGW_STR(GONE)));
    /* a consumer without username has an empty one and is found by id only */
    const aigw_rt_consumer_t *k3 = aigw_consumer_by_id(c, aigw_str_c(C3));
    assert_non_null(k3);
    assert_int_equal(k3->username.n, 0);
    assert_null(aigw_consumer_by_username(c, AIGW_STR("")));

    /* acls, in snapshot order */
    assert_int_equal(k->n_groups, 2);
    assert_true(aigw_str_eq(k->groups[0], AIGW_STR("ai-operator")));
    assert_true(aigw_str_eq(k->groups[1], AIGW_STR("ai-admin")));
    assert_int_equal(k3->n_groups, 0);

    /* jwt: by key; the per-consumer count for the username fallback */
    const aigw_rt_jwt_cred_t *j = aigw_jwt_cred_by_key(c, AIGW_STR("k-one"));
    assert_non_null(j);
    assert_ptr_equal(j->consumer, k);
    assert_true(aigw_str_eq(j->algorithm, AIGW_STR("HS256")));
    assert_int_equal(j->rsa_public_key.n, 0);
    assert_int_equal(k->n_jwt, 1);
    assert_ptr_equal(k->first_jwt, j);
    const aigw_rt_consumer_t *k2 = aigw_consumer_by_username(c, AIGW_STR("two-keys"));
    assert_int_equal(k2->n_jwt, 2);
    const aigw_rt_jwt_cred_t *j2 = aigw_jwt_cred_by_key(c, AIGW_STR("k-two-a"));
    assert_true(aigw_str_eq(j2->algorithm, AIGW_STR("HS256")));   /* the default */
    assert_true(aigw_str_eq(aigw_jwt_cred_by_key(c, AIGW_STR("k-two-b"))->rsa_public_key,
                            AIGW_STR("-----BEGIN PUBLIC KEY-----")));
    /* a credential of a consumer the snapshot lacks is not usable */
    assert_null(aigw_jwt_cred_by_key(c, AIGW_STR("k-dangling")));
    assert_null(aigw_jwt_cred_by_key(c, AIGW_STR("")));

    /* key-auth: exact key only */
    const aigw_rt_keyauth_cred_t *ka = aigw_keyauth_cred_by_key(c, AIGW_STR("secret-api-key"));
    assert_non_null(ka);
    assert_string_equal(ka->id, ID(5));
    assert_ptr_equal(ka->consumer, k);
    assert_null(aigw_keyauth_cred_by_key(c, AIGW_STR("secret-api-ke")));
    assert_null(aigw_keyauth_cred_by_key(c, AIGW_STR("secret-api-key ")));
    assert_null(aigw_keyauth_cred_by_key(c, AIGW_STR("SECRET-API-KEY")));

    const aigw_rt_basicauth_cred_t *b = aigw_basicauth_cred_by_username(c, AIGW_STR("alice"));
    assert_non_null(b);
    assert_int_equal(strncmp(b->password.p, "$argon2id$", 10), 0);
    assert_null(aigw_basicauth_cred_by_username(c, AIGW_STR("Alice")));

    const aigw_rt_oauth2_cred_t *o = aigw_oauth2_cred_by_client_id(c, AIGW_STR("cid"));
    assert_non_null(o);
    assert_true(aigw_str_eq(o->client_type, AIGW_STR("confidential")));
    assert_int_equal(o->n_redirect_uris, 1);
    assert_true(aigw_str_eq(o->redirect_uris[0], AIGW_STR("https://app.example/cb")));
    assert_false(o->hash_secret);

    aigw_consumers_free(c);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    char err[256] = "";
    aigw_consumers_t *c = load("{}", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(aigw_consumers_count(c), 0);
    assert_null(aigw_consumer_by_username(c, AIGW_STR("x")));
    assert_null(aigw_keyauth_cred_by_key(c, AIGW_STR("x")));
    aigw_consumers_free(c);
    assert_null(aigw_consumer_by_id(NULL, AIGW_STR(C1)));
    aigw_consumers_free(NULL);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"consumers\":{}}",
        "{\"consumers\":[{\"username\":\"no-id\"}]}",
        "{\"consumers\":[{\"id\":\"" C1 "\",\"username\":5}]}",
        "{\"consumers\":[{\"id\":\"" C1 "\"},{\"id\":\"" C1 "\"}]}",
        "{\"consumers\":[{\"id\":\"" C1 "\"}],\"acls\":[{\"id\":\"" ID(1) "\","
        "\"consumer\":{\"id\":\"" C1 "\"}}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        aigw_consumers_t *c = load(bad[i], err, sizeof(err));
        if (c)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_many(void **state)
{
    (void)state;
    /* 5,000 consumers with one key each: every key is found, none collides */
    json_t *root = json_object(), *cons = json_array(), *keys = json_array();
    char id[40], key[40];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "aaaaaaaa-bbbb-4ccc-8ddd-%012d", i);
        snprintf(key, sizeof(key), "key-%d", i);
        json_array_append_new(cons, json_pack("{s:s,s:s}", "id", id, "username", key));
        json_array_append_new(keys, json_pack("{s:s,s:{s:s},s:s}", "id", id, "consumer", "id",
                                              id, "key", key));
    }
    json_object_set_new(root, "consumers", cons);
    json_object_set_new(root, "keyauth_credentials", keys);
    char err[256] = "";
    aigw_consumers_t *c = aigw_consumers_build(root, err, sizeof(err));
    json_decref(root);
    assert_non_null(c);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        const aigw_rt_keyauth_cred_t *k = aigw_keyauth_cred_by_key(c, aigw_str_c(key));
        assert_non_null(k);
        assert_true(aigw_str_eq(k->consumer->username, aigw_str_c(key)));
    }
    assert_null(aigw_keyauth_cred_by_key(c, AIGW_STR("key-5000")));
    aigw_consumers_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
