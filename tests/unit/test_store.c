/* tests/unit/test_store.c: the configuration store (aigwd/store/) on SQLite in a temporary
 * directory, with the real schema tables: migrations (and that the committed
 * migrations/<dialect>/001_initial.sql equal the generator's output), CRUD with Kong's error
 * codes and messages, cascades and restrictions, paging, tags, transactions, the version
 * counter, and `aigwd migrations`. The PostgreSQL side runs in tests/e2e/test_store_pg.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "store/db.h"
#include "store/migrate_cli.h"
#include "store/store.h"

#define SVC1 "0b6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001"
#define SVC2 "0b6a3e5e-52d7-4c3a-9a53-0d1e1c1f0002"
#define RTE1 "1c6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001"
#define CON1 "2d6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001"
#define PLG1 "3e6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001"
#define PLG2 "3e6a3e5e-52d7-4c3a-9a53-0d1e1c1f0002"
#define MISSING "9f6a3e5e-52d7-4c3a-9a53-0d1e1c1f0009"

typedef struct fixture {
    char dir[64];
    char path[128];
    aigw_conf_t conf;
    aigw_store_t *s;
} fixture_t;

/* TEST_STORE_PG=host:port:user:database runs the suite a second time on that PostgreSQL
 * database (tests/e2e/test_store_pg.py does, on a throw-away server). Every table the store
 * knows is dropped there first. */
static int g_pg;
static char g_pg_host[128], g_pg_user[64], g_pg_db[64];
static int g_pg_port;

static int parse_pg_env(void)
{
    const char *v = getenv("TEST_STORE_PG");
    if (!v || !v[0])
        return 0;
    char port[16];
    if (sscanf(v, "%127[^:]:%15[^:]:%63[^:]:%63s", g_pg_host, port, g_pg_user, g_pg_db) != 4) {
        fprintf(stderr, "TEST_STORE_PG must be host:port:user:database, not %s\n", v);
        return -1;
    }
    g_pg_port = (int)strtol(port, NULL, 10);
    return 1;
}

static void pg_conf(aigw_conf_t *c, int timeout_ms)
{
    c->database = AIGW_DB_POSTGRES;
    c->pg_host = g_pg_host;
    c->pg_port = g_pg_port;
    c->pg_user = g_pg_user;
    c->pg_database = g_pg_db;
    c->pg_timeout = timeout_ms;
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/aigw-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aigw.db", f->dir);
    f->conf.database = AIGW_DB_SQLITE;
    f->conf.sqlite_path = f->path;
    if (g_pg)
        pg_conf(&f->conf, 5000);
    char err[512] = "";
    f->s = aigw_store_open(&f->conf, err, sizeof(err));
    if (!f->s)
        fail_msg("open: %s", err);
    if (g_pg) {
        aigw_db_error_t e = { 0 };
        if (aigw_store_reset(f->s, &e) != 0)
            fail_msg("reset: %s", e.message);
    }
    *state = f;
    return 0;
}

/* setup + bootstrap */
static int setup_boot(void **state)
{
    setup(state);
    fixture_t *f = *state;
    aigw_db_error_t err = { 0 };
    if (aigw_store_bootstrap(f->s, &err) != 0)
        fail_msg("bootstrap: %s", err.message);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aigw_store_close(f->s);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static const aigw_entity_t *ent(const char *name)
{
    const aigw_entity_t *e = aigw_schema_entity(name);
    if (!e)
        fail_msg("no entity %s in the schema tables", name);
    return e;
}

/* Inserts the JSON text as an entity of `name`; expects success. */
static void put(fixture_t *f, const char *name, const char *json)
{
    json_error_t je;
    json_t *o = json_loads(json, 0, &je);
    if (!o)
        fail_msg("bad test JSON %s: %s", json, je.text);
    aigw_db_error_t err = { 0 };
    if (aigw_store_insert(f->s, ent(name), o, &err) != 0)
        fail_msg("insert %s: %d %s", json, err.code, err.message);
    json_decref(o);
}

/* Inserts (or replaces) and expects the error code, message and fields (JSON text). */
static void put_fails(fixture_t *f, const char *name, const char *json, int replace, int code,
                      const char *message, const char *fields)
{
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    aigw_db_error_t err = { 0 };
    int r = replace ? aigw_store_replace(f->s, ent(name), o, &err)
                    : aigw_store_insert(f->s, ent(name), o, &err);
    json_decref(o);
    assert_int_equal(r, -1);
    assert_int_equal(err.code, code);
    assert_string_equal(err.message, message);
    if (fields) {
        json_t *want = json_loads(fields, 0, NULL);
        assert_non_null(want);
        if (!json_equal(want, err.fields)) {
            char *got = err.fields ? json_dumps(err.fields, JSON_COMPACT) : NULL;
            fail_msg("fields: got %s, want %s", got ? got : "NULL", fields);
        }
        json_decref(want);
    }
    aigw_db_error_clear(&err);
}

static json_t *get(fixture_t *f, const char *name, const char *id)
{
    json_t *o = NULL;
    aigw_db_error_t err = { 0 };
    int r = aigw_store_get(f->s, ent(name), id, &o, &err);
    assert_int_not_equal(r, -1);
    return r == 0 ? o : NULL;
}

static long long version(fixture_t *f)
{
    long long v = -1;
    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_version(f->s, &v, &err), 0);
    return v;
}

/* ---- migrations ---------------------------------------------------------------------------- */

static void source_dir(char *out, size_t cap)
{
    const char *env = getenv("AIGW_SOURCE_DIR");
    if (env && env[0]) {
        snprintf(out, cap, "%s", env);
        return;
    }
    snprintf(out, cap, "%s", __FILE__);
    char *p = strstr(out, "tests/unit/test_store.c");
    assert_non_null(p);
    if (p == out)
        snprintf(out, cap, ".");
    else
        p[-1] = 0;
}

static void check_file(aigw_store__dialect_t d, const char *dname)
{
    char src[512], path[700];
    source_dir(src, sizeof(src));
    snprintf(path, sizeof(path), "%s/migrations/%s/001_initial.sql", src, dname);
    char *want = aigw_store__initial_sql(d);
    assert_non_null(want);
    char *have = NULL;
    size_t n = 0;
    if (aigw_read_file(path, 1u << 20, &have, &n) != 0)
        fail_msg("cannot read %s", path);
    if (strcmp(have, want) != 0) {
        char fresh[128];
        snprintf(fresh, sizeof(fresh), "/tmp/aigw-001_initial-%s.sql", dname);
        FILE *fp = fopen(fresh, "w");
        if (fp) {
            fputs(want, fp);
            fclose(fp);
        }
        fail_msg("%s differs from the schema tables: the generator's output is in %s "
                 "(a released migration must not change: add a new NNN_*.sql instead)",
                 path, fresh);
    }
    free(have);
    free(want);
}

static void test_initial_migration_matches_schema(void **state)
{
    (void)state;
    check_file(AIGW_STORE__SQLITE, "sqlite");
    check_file(AIGW_STORE__PG, "postgres");
}

/* What is embedded is what is in migrations/: the first is 001_initial in both dialects. */
static void test_embedded_migrations(void **state)
{
    (void)state;
    assert_non_null(aigw_store__migrations_sqlite[0].name);
    assert_string_equal(aigw_store__migrations_sqlite[0].name, "001_initial");
    assert_string_equal(aigw_store__migrations_postgres[0].name, "001_initial");
    char *want = aigw_store__initial_sql(AIGW_STORE__SQLITE);
    assert_string_equal(aigw_store__migrations_sqlite[0].sql, want);
    free(want);
    want = aigw_store__initial_sql(AIGW_STORE__PG);
    assert_string_equal(aigw_store__migrations_postgres[0].sql, want);
    free(want);
}

static void test_ddl_shape(void **state)
{
    (void)state;
    aigw_store__buf_t b = { 0 };
    assert_int_equal(aigw_store__entity_ddl(ent("plugins"), AIGW_STORE__SQLITE, &b), 0);
    assert_non_null(strstr(b.p, "CREATE TABLE plugins (\n  id TEXT PRIMARY KEY,\n"
                                "  data TEXT NOT NULL,\n  created_at INTEGER NOT NULL"));
    assert_non_null(strstr(b.p, "service_id TEXT REFERENCES services (id) ON DELETE CASCADE"));
    assert_non_null(strstr(b.p, "u_instance_name TEXT UNIQUE"));
    assert_non_null(strstr(b.p, "cache_key TEXT UNIQUE"));
    assert_non_null(strstr(b.p, "CREATE INDEX plugins_service_id_idx ON plugins (service_id);"));
    aigw_store__buf_free(&b);
    assert_int_equal(aigw_store__entity_ddl(ent("routes"), AIGW_STORE__PG, &b), 0);
    assert_non_null(strstr(b.p, "  id text COLLATE \"C\" PRIMARY KEY,\n  data jsonb NOT NULL,\n"
                                "  created_at bigint NOT NULL"));
    /* routes.service restricts: no cascade */
    assert_non_null(strstr(b.p, "service_id text COLLATE \"C\" REFERENCES services (id)\n"));
    aigw_store__buf_free(&b);
}

static void test_bootstrap_up_reset(void **state)
{
    fixture_t *f = *state;
    aigw_migration_state_t m;
    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_migrations(f->s, &m, &err), 0);
    assert_int_equal(m.bootstrapped, 0);
    assert_true(m.total >= 1);
    assert_int_equal(m.applied, 0);
    assert_string_equal(m.names[0], "001_initial");
    aigw_migration_state_free(&m);

    /* up before bootstrap refuses */
    assert_int_equal(aigw_store_migrate_up(f->s, &err), -1);
    assert_string_equal(err.message,
                        "database needs bootstrapping; run 'aigwd migrations bootstrap'");
    aigw_db_error_clear(&err);

    assert_int_equal(aigw_store_bootstrap(f->s, &err), 0);
    assert_int_equal(aigw_store_migrations(f->s, &m, &err), 0);
    assert_int_equal(m.bootstrapped, 1);
    assert_int_equal(m.applied, m.total);
    assert_int_equal(m.done[0], 1);
    aigw_migration_state_free(&m);
    assert_int_equal(version(f), 0);

    assert_int_equal(aigw_store_bootstrap(f->s, &err), -1);
    assert_string_equal(err.message, "database already bootstrapped");
    aigw_db_error_clear(&err);
    assert_int_equal(aigw_store_migrate_up(f->s, &err), 0);   /* nothing to do */

    put(f, "services", "{\"id\":\"" SVC1 "\",\"name\":\"s1\",\"host\":\"h\",\"created_at\":1}");
    assert_int_equal(version(f), 1);

    assert_int_equal(aigw_store_reset(f->s, &err), 0);
    assert_int_equal(aigw_store_migrations(f->s, &m, &err), 0);
    assert_int_equal(m.bootstrapped, 0);
    aigw_migration_state_free(&m);
    /* every table is gone */
    aigw_store__rows_t rows;
    aigw_store__dberr_t dbe;
    assert_int_equal(aigw_store__query(f->s,
                                       g_pg ? "SELECT tablename FROM pg_tables WHERE schemaname "
                                              "= current_schema()"
                                            : "SELECT name FROM sqlite_master WHERE type = "
                                              "'table'",
                                       NULL, 0, &rows, &dbe),
                     0);
    assert_int_equal(rows.nrows, 0);
    aigw_store__rows_free(&rows);
    /* and it bootstraps again, empty */
    assert_int_equal(aigw_store_bootstrap(f->s, &err), 0);
    assert_null(get(f, "services", SVC1));
}

/* Two connections: the second bootstrap, after the first, refuses. */
static void test_bootstrap_two_nodes(void **state)
{
    fixture_t *f = *state;
    char e2[256];
    aigw_store_t *s2 = aigw_store_open(&f->conf, e2, sizeof(e2));
    assert_non_null(s2);
    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_bootstrap(f->s, &err), 0);
    assert_int_equal(aigw_store_bootstrap(s2, &err), -1);
    assert_string_equal(err.message, "database already bootstrapped");
    aigw_db_error_clear(&err);
    aigw_store_close(s2);
}

/* ---- CRUD -------------------------------------------------------------------------------- */

#define SVC(id, name) "{\"id\":\"" id "\",\"name\":\"" name "\",\"host\":\"example.com\"," \
                      "\"port\":80,\"tags\":null,\"created_at\":1700000000}"

static void test_insert_get_find_replace(void **state)
{
    fixture_t *f = *state;
    put(f, "services", SVC(SVC1, "s1"));
    json_t *o = get(f, "services", SVC1);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "host")), "example.com");
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 80);
    assert_true(json_is_null(json_object_get(o, "tags")));
    json_decref(o);
    assert_null(get(f, "services", MISSING));

    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_find(f->s, ent("services"), "name", "s1", &o, &err), 0);
    assert_string_equal(json_string_value(json_object_get(o, "id")), SVC1);
    json_decref(o);
    assert_int_equal(aigw_store_find(f->s, ent("services"), "name", "nope", &o, &err), 1);
    assert_null(o);

    /* primary key taken */
    put_fails(f, "services", SVC(SVC1, "other"), 0, AIGW_DBE_PK,
              "primary key violation on key '{id=\"" SVC1 "\"}'", "{\"id\":\"" SVC1 "\"}");
    /* unique name taken */
    put_fails(f, "services", SVC(SVC2, "s1"), 0, AIGW_DBE_UNIQUE,
              "UNIQUE violation detected on '{name=\"s1\"}'", "{\"name\":\"s1\"}");

    /* replace: itself does not conflict; the old name is free afterwards */
    json_t *r = json_loads(SVC(SVC1, "s1-renamed"), 0, NULL);
    assert_int_equal(aigw_store_replace(f->s, ent("services"), r, &err), 0);
    json_decref(r);
    assert_int_equal(aigw_store_find(f->s, ent("services"), "name", "s1", &o, &err), 1);
    assert_int_equal(aigw_store_find(f->s, ent("services"), "name", "s1-renamed", &o, &err), 0);
    json_decref(o);
    r = json_loads(SVC(SVC1, "s1-renamed"), 0, NULL);
    assert_int_equal(aigw_store_replace(f->s, ent("services"), r, &err), 0);
    json_decref(r);
    put(f, "services", SVC(SVC2, "s1"));
    /* replace onto another's name */
    put_fails(f, "services", SVC(SVC2, "s1-renamed"), 1, AIGW_DBE_UNIQUE,
              "UNIQUE violation detected on '{name=\"s1-renamed\"}'",
              "{\"name\":\"s1-renamed\"}");
    /* replace of a missing row */
    put_fails(f, "services", SVC(MISSING, "zz"), 1, AIGW_DBE_NOT_FOUND,
              "could not find the entity with primary key '{id=\"" MISSING "\"}'",
              "{\"id\":\"" MISSING "\"}");
    /* a null unique value is not a conflict (two services without a name) */
    put(f, "services", "{\"id\":\"0b6a3e5e-52d7-4c3a-9a53-0d1e1c1f0003\",\"name\":null,"
                       "\"host\":\"a\",\"created_at\":1}");
    put(f, "services", "{\"id\":\"0b6a3e5e-52d7-4c3a-9a53-0d1e1c1f0004\",\"host\":\"b\","
                       "\"created_at\":1}");
}

static void test_foreign_keys_restrict_cascade(void **state)
{
    fixture_t *f = *state;
    put(f, "services", SVC(SVC1, "s1"));
    /* a route to a missing service */
    put_fails(f, "routes",
              "{\"id\":\"" RTE1 "\",\"name\":\"r1\",\"service\":{\"id\":\"" MISSING "\"}}", 0,
              AIGW_DBE_FOREIGN_KEY,
              "the foreign key '{id=\"" MISSING "\"}' does not reference an existing "
              "'services' entity.",
              "{\"service\":{\"id\":\"" MISSING "\"}}");
    put(f, "routes", "{\"id\":\"" RTE1 "\",\"name\":\"r1\",\"paths\":[\"/a\"],"
                     "\"service\":{\"id\":\"" SVC1 "\"},\"created_at\":1}");
    put(f, "plugins", "{\"id\":\"" PLG1 "\",\"name\":\"key-auth\",\"service\":{\"id\":\"" SVC1
                      "\"},\"route\":null,\"consumer\":null,\"created_at\":1}");
    put(f, "plugins", "{\"id\":\"" PLG2 "\",\"name\":\"cors\",\"route\":{\"id\":\"" RTE1
                      "\"},\"service\":null,\"consumer\":null,\"created_at\":1}");

    /* the service is referenced by a route: refused, nothing deleted */
    aigw_db_error_t err = { 0 };
    long long v = version(f);
    assert_int_equal(aigw_store_delete(f->s, ent("services"), SVC1, &err), -1);
    assert_int_equal(err.code, AIGW_DBE_FOREIGN_KEY);
    assert_string_equal(err.message, "an existing 'routes' entity references this 'services' entity");
    json_t *want = json_pack("{s:s}", "@referenced_by", "routes");
    assert_true(json_equal(want, err.fields));
    json_decref(want);
    aigw_db_error_clear(&err);
    assert_int_equal(version(f), v);
    json_t *o = get(f, "plugins", PLG1);
    assert_non_null(o);
    json_decref(o);

    /* deleting the route cascades to its plugin */
    assert_int_equal(aigw_store_delete(f->s, ent("routes"), RTE1, &err), 0);
    assert_null(get(f, "plugins", PLG2));
    assert_int_equal(version(f), v + 1);
    /* now the service goes, with its plugin */
    assert_int_equal(aigw_store_delete(f->s, ent("services"), SVC1, &err), 0);
    assert_null(get(f, "services", SVC1));
    assert_null(get(f, "plugins", PLG1));
    /* deleting what is not there: 1, no version bump */
    v = version(f);
    assert_int_equal(aigw_store_delete(f->s, ent("services"), SVC1, &err), 1);
    assert_int_equal(version(f), v);
}

/* A consumer goes with its credentials and plugins. */
static void test_consumer_cascade(void **state)
{
    fixture_t *f = *state;
    put(f, "consumers", "{\"id\":\"" CON1 "\",\"username\":\"bob\",\"custom_id\":null,"
                        "\"created_at\":1}");
    put(f, "keyauth_credentials",
        "{\"id\":\"4f6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001\",\"key\":\"secret-key\","
        "\"consumer\":{\"id\":\"" CON1 "\"},\"created_at\":1}");
    put(f, "acls", "{\"id\":\"5f6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001\",\"group\":\"admins\","
                   "\"consumer\":{\"id\":\"" CON1 "\"},\"created_at\":1}");
    put_fails(f, "consumers",
              "{\"id\":\"2d6a3e5e-52d7-4c3a-9a53-0d1e1c1f0002\",\"username\":\"bob\"}", 0,
              AIGW_DBE_UNIQUE, "UNIQUE violation detected on '{username=\"bob\"}'",
              "{\"username\":\"bob\"}");
    /* the acl cache key: one group per consumer */
    put_fails(f, "acls",
              "{\"id\":\"5f6a3e5e-52d7-4c3a-9a53-0d1e1c1f0002\",\"group\":\"admins\","
              "\"consumer\":{\"id\":\"" CON1 "\"},\"created_at\":1}",
              0, AIGW_DBE_UNIQUE,
              "UNIQUE violation detected on '{consumer={id=\"" CON1 "\"},group=\"admins\"}'",
              "{\"consumer\":{\"id\":\"" CON1 "\"},\"group\":\"admins\"}");
    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_delete(f->s, ent("consumers"), CON1, &err), 0);
    assert_null(get(f, "keyauth_credentials", "4f6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001"));
    assert_null(get(f, "acls", "5f6a3e5e-52d7-4c3a-9a53-0d1e1c1f0001"));
}

static void test_plugin_cache_key(void **state)
{
    fixture_t *f = *state;
    put(f, "services", SVC(SVC1, "s1"));
    put(f, "plugins", "{\"id\":\"" PLG1 "\",\"name\":\"basic-auth\",\"service\":{\"id\":\"" SVC1
                      "\"},\"route\":null,\"consumer\":null,\"created_at\":1}");
    put_fails(f, "plugins",
              "{\"id\":\"" PLG2 "\",\"name\":\"basic-auth\",\"service\":{\"id\":\"" SVC1
              "\"},\"route\":null,\"consumer\":null,\"created_at\":1}",
              0, AIGW_DBE_UNIQUE,
              "UNIQUE violation detected on '{consumer=null,name=\"basic-auth\",route=null,"
              "service={id=\"" SVC1 "\"}}'",
              "{\"consumer\":null,\"name\":\"basic-auth\",\"route\":null,\"service\":{\"id\":\"" SVC1
              "\"}}");
    /* the same plugin globally is another key */
    put(f, "plugins", "{\"id\":\"" PLG2 "\",\"name\":\"basic-auth\",\"service\":null,"
                      "\"route\":null,\"consumer\":null,\"created_at\":1}");
    /* the stored cache key is Kong's string */
    aigw_store__rows_t rows;
    aigw_store__dberr_t dbe;
    const char *p[] = { PLG1 };
    assert_int_equal(aigw_store__query(f->s, "SELECT cache_key FROM plugins WHERE id = $1", p, 1,
                                       &rows, &dbe),
                     0);
    assert_int_equal(rows.nrows, 1);
    assert_string_equal(aigw_store__cell(&rows, 0, 0), "plugins:basic-auth::" SVC1 ":::");
    aigw_store__rows_free(&rows);

    json_t *names = aigw_store_plugin_names(f->s, &(aigw_db_error_t){ 0 });
    assert_non_null(names);
    assert_int_equal(json_array_size(names), 1);
    assert_string_equal(json_string_value(json_array_get(names, 0)), "basic-auth");
    json_decref(names);
}

/* Kong's key rendering for values that are not plain names. */
static void test_unique_message_quoting(void **state)
{
    fixture_t *f = *state;
    put(f, "services", "{\"id\":\"" SVC1 "\",\"name\":\"a\\\"b\\\\c\",\"created_at\":1}");
    put_fails(f, "services", "{\"id\":\"" SVC2 "\",\"name\":\"a\\\"b\\\\c\",\"created_at\":1}", 0,
              AIGW_DBE_UNIQUE, "UNIQUE violation detected on '{name=\"a\\\"b\\\\c\"}'", NULL);
}

/* ---- list, tags, each -------------------------------------------------------------------- */

static void make_consumers(fixture_t *f, int n)
{
    for (int i = 0; i < n; i++) {
        char js[512];
        snprintf(js, sizeof(js),
                 "{\"id\":\"2d6a3e5e-52d7-4c3a-9a53-0d1e1c1f%04d\",\"username\":\"user%02d\","
                 "\"custom_id\":\"c%02d\",\"tags\":%s,\"created_at\":1}",
                 i, i, i,
                 i % 2 == 0 ? (i % 3 == 0 ? "[\"even\",\"three\"]" : "[\"even\"]")
                            : (i % 3 == 0 ? "[\"odd\",\"three\"]" : "[\"odd\"]"));
        put(f, "consumers", js);
    }
}

/* Every page in turn; returns the number of rows seen and checks the order. */
static size_t walk(fixture_t *f, aigw_store_query_t q, size_t *pages)
{
    size_t total = 0;
    char *off = NULL, last[64] = "";
    *pages = 0;
    for (;;) {
        aigw_store_page_t page;
        aigw_db_error_t err = { 0 };
        q.offset = off;
        if (aigw_store_list(f->s, ent("consumers"), &q, &page, &err) != 0)
            fail_msg("list: %s", err.message);
        free(off);
        (*pages)++;
        for (size_t i = 0; i < json_array_size(page.data); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(page.data, i), "id"));
            assert_true(strcmp(id, last) > 0);
            snprintf(last, sizeof(last), "%s", id);
            total++;
        }
        json_decref(page.data);
        off = page.offset;
        if (!off)
            break;
        assert_null(strpbrk(off, "+/="));   /* safe in a URL as it is */
    }
    return total;
}

static void test_list_paging(void **state)
{
    fixture_t *f = *state;
    make_consumers(f, 25);
    size_t pages;
    assert_int_equal(walk(f, (aigw_store_query_t){ .size = 10 }, &pages), 25);
    assert_int_equal(pages, 3);
    assert_int_equal(walk(f, (aigw_store_query_t){ .size = 25 }, &pages), 25);
    assert_int_equal(pages, 1);
    assert_int_equal(walk(f, (aigw_store_query_t){ .size = 5 }, &pages), 25);
    assert_int_equal(pages, 5);
    assert_int_equal(walk(f, (aigw_store_query_t){ .size = 1000 }, &pages), 25);

    aigw_store_page_t page;
    aigw_db_error_t err = { 0 };
    aigw_store_query_t q = { .size = 10, .offset = "!!not-base64" };
    assert_int_equal(aigw_store_list(f->s, ent("consumers"), &q, &page, &err), -1);
    assert_int_equal(err.code, AIGW_DBE_INVALID_OFFSET);
    assert_string_equal(err.message, "'!!not-base64' is not a valid offset: bad base64 encoding");
    assert_int_equal(aigw_db_error_status(err.code), 400);
    q = (aigw_store_query_t){ .size = 0 };
    assert_int_equal(aigw_store_list(f->s, ent("consumers"), &q, &page, &err), -1);
    assert_int_equal(err.code, AIGW_DBE_INVALID_SIZE);
    assert_string_equal(err.message, "size must be an integer between 1 and 1000");
    q.size = 1001;
    assert_int_equal(aigw_store_list(f->s, ent("consumers"), &q, &page, &err), -1);

    /* eq filter on a unique field */
    q = (aigw_store_query_t){ .size = 100, .eq_field = "custom_id", .eq_value = "c07" };
    assert_int_equal(aigw_store_list(f->s, ent("consumers"), &q, &page, &err), 0);
    assert_int_equal(json_array_size(page.data), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page.data, 0),
                                                          "username")),
                        "user07");
    assert_null(page.offset);
    json_decref(page.data);
    q.eq_value = "nobody";
    assert_int_equal(aigw_store_list(f->s, ent("consumers"), &q, &page, &err), 0);
    assert_int_equal(json_array_size(page.data), 0);
    json_decref(page.data);

    /* empty table */
    q = (aigw_store_query_t){ .size = 100 };
    assert_int_equal(aigw_store_list(f->s, ent("services"), &q, &page, &err), 0);
    assert_true(json_is_array(page.data));
    assert_int_equal(json_array_size(page.data), 0);
    assert_null(page.offset);
    json_decref(page.data);
}

static size_t count(fixture_t *f, const char *name, aigw_store_query_t q)
{
    aigw_store_page_t page;
    aigw_db_error_t err = { 0 };
    if (aigw_store_list(f->s, ent(name), &q, &page, &err) != 0)
        fail_msg("list: %s", err.message);
    size_t n = json_array_size(page.data);
    json_decref(page.data);
    free(page.offset);
    return n;
}

static void test_list_tags_and_foreign(void **state)
{
    fixture_t *f = *state;
    make_consumers(f, 12);   /* even: 0 2 4 6 8 10; odd: 1 3 5 7 9 11; three: 0 3 6 9 */
    const char *even[] = { "even", NULL }, *even3[] = { "even", "three", NULL },
               *odd3[] = { "odd", "three", NULL }, *none[] = { "none", NULL };
    assert_int_equal(count(f, "consumers", (aigw_store_query_t){ .size = 100, .tags = even }), 6);
    assert_int_equal(count(f, "consumers", (aigw_store_query_t){ .size = 100, .tags = even3 }),
                     2);
    assert_int_equal(count(f, "consumers",
                           (aigw_store_query_t){ .size = 100, .tags = even3, .tags_any = 1 }),
                     8);
    assert_int_equal(count(f, "consumers", (aigw_store_query_t){ .size = 100, .tags = odd3 }), 2);
    assert_int_equal(count(f, "consumers",
                           (aigw_store_query_t){ .size = 100, .tags = odd3, .tags_any = 1 }),
                     8);
    assert_int_equal(count(f, "consumers", (aigw_store_query_t){ .size = 100, .tags = none }), 0);
    /* an entity whose tags are null never matches */
    put(f, "services", SVC(SVC1, "s1"));
    assert_int_equal(count(f, "services", (aigw_store_query_t){ .size = 100, .tags = none }), 0);
    assert_int_equal(count(f, "services",
                           (aigw_store_query_t){ .size = 100, .tags = none, .tags_any = 1 }),
                     0);
    /* paging with a tag filter */
    size_t pages;
    assert_int_equal(walk(f, (aigw_store_query_t){ .size = 4, .tags = even }, &pages), 6);
    assert_int_equal(pages, 2);

    /* by foreign key */
    put(f, "services", SVC(SVC2, "s2"));
    for (int i = 0; i < 3; i++) {
        char js[256];
        snprintf(js, sizeof(js),
                 "{\"id\":\"1c6a3e5e-52d7-4c3a-9a53-0d1e1c1f%04d\",\"name\":\"r%d\","
                 "\"service\":{\"id\":\"%s\"},\"created_at\":1}",
                 i, i, i == 2 ? SVC2 : SVC1);
        put(f, "routes", js);
    }
    assert_int_equal(count(f, "routes",
                           (aigw_store_query_t){ .size = 100, .fk_field = "service", .fk_id = SVC1 }),
                     2);
    assert_int_equal(count(f, "routes",
                           (aigw_store_query_t){ .size = 100, .fk_field = "service", .fk_id = SVC2 }),
                     1);
    assert_int_equal(count(f, "routes", (aigw_store_query_t){ .size = 100, .fk_field = "service",
                                                             .fk_id = MISSING }),
                     0);
}

static void test_tags_listing(void **state)
{
    fixture_t *f = *state;
    make_consumers(f, 4);   /* 0: even three; 1: odd; 2: even; 3: odd three */
    put(f, "services", "{\"id\":\"" SVC1 "\",\"name\":\"s\",\"tags\":[\"even\",\"svc\"],"
                       "\"created_at\":1}");
    aigw_store_page_t page;
    aigw_db_error_t err = { 0 };
    /* all: 2+1+1+2 consumer rows + 2 service rows, by entity id then position */
    assert_int_equal(aigw_store_tags(f->s, NULL, 100, NULL, &page, &err), 0);
    assert_int_equal(json_array_size(page.data), 8);
    json_t *first = json_array_get(page.data, 0);
    assert_string_equal(json_string_value(json_object_get(first, "entity_name")), "services");
    assert_string_equal(json_string_value(json_object_get(first, "entity_id")), SVC1);
    assert_string_equal(json_string_value(json_object_get(first, "tag")), "even");
    assert_string_equal(json_string_value(json_object_get(json_array_get(page.data, 1), "tag")),
                        "svc");
    assert_string_equal(json_string_value(json_object_get(json_array_get(page.data, 2),
                                                          "entity_name")),
                        "consumers");
    assert_null(page.offset);
    json_decref(page.data);

    /* one tag */
    assert_int_equal(aigw_store_tags(f->s, "even", 100, NULL, &page, &err), 0);
    assert_int_equal(json_array_size(page.data), 3);
    json_decref(page.data);

    /* paging, 3 at a time, sees every row once */
    char *off = NULL;
    size_t total = 0, pages = 0;
    do {
        assert_int_equal(aigw_store_tags(f->s, NULL, 3, off, &page, &err), 0);
        free(off);
        total += json_array_size(page.data);
        pages++;
        json_decref(page.data);
        off = page.offset;
    } while (off);
    assert_int_equal(total, 8);
    assert_int_equal(pages, 3);

    assert_int_equal(aigw_store_tags(f->s, NULL, 3, "%%%", &page, &err), -1);
    assert_int_equal(err.code, AIGW_DBE_INVALID_OFFSET);
    assert_string_equal(err.message, "'%%%' is not a valid offset: bad base64 encoding");
}

typedef struct each_ctx {
    size_t n;
    char last[64];
    size_t stop_at;
} each_ctx_t;

static int on_row(const json_t *obj, void *ud)
{
    each_ctx_t *c = ud;
    const char *id = json_string_value(json_object_get(obj, "id"));
    assert_true(strcmp(id, c->last) > 0);
    snprintf(c->last, sizeof(c->last), "%s", id);
    c->n++;
    return c->stop_at && c->n == c->stop_at ? 7 : 0;
}

static void test_each(void **state)
{
    fixture_t *f = *state;
    /* more than one internal page (500) */
    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_begin(f->s, &err), 0);
    for (int i = 0; i < 1203; i++) {
        char js[256];
        snprintf(js, sizeof(js),
                 "{\"id\":\"2d6a3e5e-52d7-4c3a-9a53-%012d\",\"username\":\"u%d\",\"created_at\":1}",
                 i, i);
        put(f, "consumers", js);
    }
    assert_int_equal(aigw_store_commit(f->s, &err), 0);
    assert_int_equal(version(f), 1);   /* one transaction, one bump */
    each_ctx_t c = { 0 };
    assert_int_equal(aigw_store_each(f->s, ent("consumers"), on_row, &c, &err), 0);
    assert_int_equal(c.n, 1203);
    each_ctx_t stop = { .stop_at = 10 };
    assert_int_equal(aigw_store_each(f->s, ent("consumers"), on_row, &stop, &err), -1);
    assert_int_equal(stop.n, 10);
    aigw_db_error_clear(&err);
}

/* ---- transactions and the version ----------------------------------------------------------- */

static void test_transactions(void **state)
{
    fixture_t *f = *state;
    aigw_db_error_t err = { 0 };
    assert_int_equal(version(f), 0);
    assert_int_equal(aigw_store_begin(f->s, &err), 0);
    put(f, "services", SVC(SVC1, "s1"));
    aigw_store_rollback(f->s);
    assert_null(get(f, "services", SVC1));
    assert_int_equal(version(f), 0);

    /* a failed operation inside a transaction leaves the rest of it intact */
    assert_int_equal(aigw_store_begin(f->s, &err), 0);
    assert_int_equal(aigw_store_begin(f->s, &err), -1);   /* no nesting */
    aigw_db_error_clear(&err);
    put(f, "services", SVC(SVC1, "s1"));
    put_fails(f, "services", SVC(SVC2, "s1"), 0, AIGW_DBE_UNIQUE,
              "UNIQUE violation detected on '{name=\"s1\"}'", NULL);
    put(f, "services", SVC(SVC2, "s2"));
    assert_int_equal(aigw_store_commit(f->s, &err), 0);
    assert_int_equal(version(f), 1);
    json_t *o = get(f, "services", SVC2);
    assert_non_null(o);
    json_decref(o);

    /* a read-only transaction does not bump */
    assert_int_equal(aigw_store_begin(f->s, &err), 0);
    o = get(f, "services", SVC1);
    json_decref(o);
    assert_int_equal(aigw_store_commit(f->s, &err), 0);
    assert_int_equal(version(f), 1);

    /* every write outside a transaction is its own */
    assert_int_equal(aigw_store_delete(f->s, ent("services"), SVC2, &err), 0);
    assert_int_equal(version(f), 2);
    assert_int_equal(aigw_store_ping(f->s), 1);
    assert_string_equal(aigw_store_kind(f->s), g_pg ? "postgres" : "sqlite");

    /* another connection sees the committed version */
    char e2[256];
    aigw_store_t *s2 = aigw_store_open(&f->conf, e2, sizeof(e2));
    assert_non_null(s2);
    long long v2 = 0;
    assert_int_equal(aigw_store_version(s2, &v2, &err), 0);
    assert_int_equal(v2, 2);
    aigw_store_close(s2);
}

static void test_errors_and_status(void **state)
{
    (void)state;
    assert_string_equal(aigw_db_error_name(5), "unique constraint violation");
    assert_string_equal(aigw_db_error_name(4), "foreign key violation");
    assert_string_equal(aigw_db_error_name(3), "primary key violation");
    assert_string_equal(aigw_db_error_name(7), "invalid offset");
    assert_int_equal(aigw_db_error_status(AIGW_DBE_UNIQUE), 409);
    assert_int_equal(aigw_db_error_status(AIGW_DBE_NOT_FOUND), 404);
    assert_int_equal(aigw_db_error_status(AIGW_DBE_FOREIGN_KEY), 400);
    assert_int_equal(aigw_db_error_status(AIGW_DBE_PK), 400);
    assert_int_equal(aigw_db_error_status(AIGW_DBE_DATABASE), 500);
    assert_int_equal(aigw_db_error_status(AIGW_DBE_UNREACHABLE), 503);
    assert_int_equal(aigw_db_error_status(12), 405);
}

/* Writes before bootstrap: a database error, not a crash. Unusable path: open fails. */
static void test_unbootstrapped_and_bad_path(void **state)
{
    fixture_t *f = *state;
    json_t *o = json_loads(SVC(SVC1, "s1"), 0, NULL);
    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_insert(f->s, ent("services"), o, &err), -1);
    assert_int_equal(err.code, AIGW_DBE_DATABASE);
    assert_non_null(strstr(err.message, g_pg ? "does not exist" : "no such table"));
    json_decref(o);
    aigw_db_error_clear(&err);
    if (g_pg)
        return;

    aigw_conf_t bad = { .database = AIGW_DB_SQLITE, .sqlite_path = "/proc/aigw-no/x.db" };
    char e[256] = "";
    assert_null(aigw_store_open(&bad, e, sizeof(e)));
    assert_non_null(strstr(e, "/proc/aigw-no"));
    /* DB-less: the node's own file in the prefix. */
    aigw_conf_t off = { .database = AIGW_DB_OFF, .prefix = "/proc/aigw-no" };
    assert_null(aigw_store_open(&off, e, sizeof(e)));
    assert_non_null(strstr(e, "/proc/aigw-no"));
}

/* The database file is created for its owner only. */
static void test_file_mode(void **state)
{
    fixture_t *f = *state;
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* ---- aigwd migrations ----------------------------------------------------------------------- */

typedef struct cli_out {
    int rc;
    char out[4096], err[4096];
} cli_out_t;

static void slurp(int fd, char *buf, size_t cap)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = 0;
}

static void run_cli(cli_out_t *r, const char *a1, const char *a2, const char *a3,
                    const char *a4, const char *a5, const char *a6)
{
    char *argv[8] = { (char *)"migrations" };
    int argc = 1;
    const char *a[] = { a1, a2, a3, a4, a5, a6 };
    for (int i = 0; i < 6 && a[i]; i++)
        argv[argc++] = (char *)(uintptr_t)a[i];
    char o[] = "/tmp/aigw-test-cli-out-XXXXXX", e[] = "/tmp/aigw-test-cli-err-XXXXXX";
    int fo = mkstemp(o), fe = mkstemp(e);
    assert_true(fo >= 0 && fe >= 0);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    r->rc = aigw_migrations_cli(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(fo, r->out, sizeof(r->out));
    slurp(fe, r->err, sizeof(r->err));
    close(fo);
    close(fe);
    unlink(o);
    unlink(e);
}

static void test_cli(void **state)
{
    fixture_t *f = *state;
    char conf[256], text[512];
    snprintf(conf, sizeof(conf), "%s/aigw.conf", f->dir);
    if (g_pg)
        snprintf(text, sizeof(text),
                 "prefix = %s/prefix\ndatabase = postgres\npg_host = %s\npg_port = %d\n"
                 "pg_user = %s\npg_database = %s\n",
                 f->dir, g_pg_host, g_pg_port, g_pg_user, g_pg_db);
    else
        snprintf(text, sizeof(text),
                 "prefix = %s/prefix\ndatabase = sqlite\nsqlite_path = %s/cli.db\n", f->dir,
                 f->dir);
    FILE *fp = fopen(conf, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    /* the environment must not choose another database */
    unsetenv("AIGW_DATABASE");
    unsetenv("KONG_DATABASE");
    unsetenv("AIGW_SQLITE_PATH");
    unsetenv("KONG_SQLITE_PATH");
    static const char *const pgvars[] = { "HOST", "PORT", "USER", "PASSWORD", "DATABASE", "SSL",
                                          "TIMEOUT", NULL };
    for (size_t i = 0; pgvars[i]; i++) {
        char name[64];
        snprintf(name, sizeof(name), "AIGW_PG_%s", pgvars[i]);
        unsetenv(name);
        snprintf(name, sizeof(name), "KONG_PG_%s", pgvars[i]);
        unsetenv(name);
    }

    cli_out_t r;
    run_cli(&r, "list", "-c", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "Database needs bootstrapping; run 'aigwd migrations bootstrap'\n");

    run_cli(&r, "up", "-c", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "aigwd migrations: database needs bootstrapping; run 'aigwd "
                               "migrations bootstrap'\n");

    run_cli(&r, "-c", conf, "bootstrap", NULL, NULL, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "Bootstrapping database...\n"));
    assert_non_null(strstr(r.out, "migrated up to: 001_initial (executed)\n"));
    assert_non_null(strstr(r.out, "Database is up-to-date\n"));

    run_cli(&r, "bootstrap", "--conf", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "Database already bootstrapped\n");

    run_cli(&r, "up", "-c", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "Database is already up-to-date\n");

    run_cli(&r, "list", "-c", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "Executed migrations:\n  001_initial\n"));

    run_cli(&r, "reset", "-c", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "--yes"));
    run_cli(&r, "list", "-c", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 0);   /* still there */

    run_cli(&r, "reset", "--yes", "-c", conf, NULL, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "Resetting database...\nDatabase successfully reset\n");
    run_cli(&r, "reset", "-y", "-c", conf, NULL, NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "aigwd migrations: database not bootstrapped, nothing to reset\n");

    run_cli(&r, "sideways", "-c", conf, NULL, NULL, NULL);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "unknown command 'sideways'"));
    run_cli(&r, NULL, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(r.rc, 1);
    run_cli(&r, "--help", NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "Usage: aigwd migrations"));
    run_cli(&r, "list", "-c", "/nonexistent/aigw.conf", NULL, NULL, NULL);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "aigwd: "));
}

/* ---- PostgreSQL: reachability, timeouts, lost links, NOTIFY, the migration lock ------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A server that accepts TCP connections and never says a word: connecting gives up after
 * pg_timeout, not later. Needs no PostgreSQL. */
static void test_pg_silent_server_times_out(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls, 16), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    aigw_conf_t c = { .database = AIGW_DB_POSTGRES, .pg_host = (char *)"127.0.0.1",
                      .pg_port = ntohs(a.sin_port), .pg_user = (char *)"kong",
                      .pg_database = (char *)"kong", .pg_timeout = 600 };
    char err[512] = "";
    long long t0 = now_ms();
    aigw_store_t *s = aigw_store_open(&c, err, sizeof(err));
    long long took = now_ms() - t0;
    assert_null(s);
    assert_true(took >= 550 && took < 1500);
    char want[256];
    snprintf(want, sizeof(want),
             "cannot connect to PostgreSQL at 127.0.0.1:%d (database kong, user kong): timeout",
             c.pg_port);
    assert_string_equal(err, want);
    close(ls);
}

/* Nothing listening: a clear reason, at once. */
static void test_pg_refused(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    close(ls);   /* the port is now (very likely) closed */
    aigw_conf_t c = { .database = AIGW_DB_POSTGRES, .pg_host = (char *)"127.0.0.1",
                      .pg_port = ntohs(a.sin_port), .pg_user = (char *)"kong",
                      .pg_database = (char *)"kong", .pg_timeout = 5000 };
    char err[512] = "";
    long long t0 = now_ms();
    assert_null(aigw_store_open(&c, err, sizeof(err)));
    assert_true(now_ms() - t0 < 2000);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL at 127.0.0.1:"));
    assert_non_null(strstr(err, "Connection refused"));
}

static char *backend_pid(aigw_store_t *s)
{
    aigw_store__rows_t r;
    aigw_store__dberr_t dbe;
    assert_int_equal(aigw_store__query(s, "SELECT pg_backend_pid()", NULL, 0, &r, &dbe), 0);
    char *pid = strdup(aigw_store__cell(&r, 0, 0));
    aigw_store__rows_free(&r);
    return pid;
}

static void kill_backend(fixture_t *f, const char *pid)
{
    char e2[256];
    aigw_store_t *s2 = aigw_store_open(&f->conf, e2, sizeof(e2));
    assert_non_null(s2);
    aigw_store__dberr_t dbe;
    const char *p[] = { pid };
    assert_int_equal(aigw_store__query(s2, "SELECT pg_terminate_backend($1::int)", p, 1, NULL,
                                       &dbe),
                     0);
    aigw_store_close(s2);
    usleep(100 * 1000);
}

/* The server ends our session: outside a transaction the next call reconnects unseen; inside
 * one, the operation fails with code 1000 and the transaction is gone (nothing of it was
 * kept), and the store works again after the rollback. */
static void test_pg_lost_connection(void **state)
{
    fixture_t *f = *state;
    char *pid = backend_pid(f->s);
    kill_backend(f, pid);
    free(pid);
    assert_int_equal(version(f), 0);   /* reconnected */
    assert_int_equal(aigw_store_ping(f->s), 1);

    aigw_db_error_t err = { 0 };
    assert_int_equal(aigw_store_begin(f->s, &err), 0);
    put(f, "services", SVC(SVC1, "s1"));
    pid = backend_pid(f->s);
    kill_backend(f, pid);
    free(pid);
    json_t *o = json_loads(SVC(SVC2, "s2"), 0, NULL);
    assert_int_equal(aigw_store_insert(f->s, ent("services"), o, &err), -1);
    json_decref(o);
    assert_int_equal(err.code, AIGW_DBE_UNREACHABLE);
    assert_int_equal(aigw_db_error_status(err.code), 503);
    assert_non_null(strstr(err.message, "database unreachable: "));
    aigw_db_error_clear(&err);
    assert_int_equal(aigw_store_commit(f->s, &err), -1);
    assert_int_equal(err.code, AIGW_DBE_UNREACHABLE);
    aigw_store_rollback(f->s);
    assert_null(get(f, "services", SVC1));
    assert_int_equal(version(f), 0);
    put(f, "services", SVC(SVC1, "s1"));
    assert_int_equal(version(f), 1);
}

/* A statement slower than pg_timeout is cut off by the server: code 1000, in time. */
static void test_pg_statement_timeout(void **state)
{
    fixture_t *f = *state;
    aigw_conf_t c = f->conf;
    c.pg_timeout = 800;
    char e2[256];
    aigw_store_t *s = aigw_store_open(&c, e2, sizeof(e2));
    assert_non_null(s);
    aigw_store__dberr_t dbe;
    long long t0 = now_ms();
    assert_int_equal(aigw_store__query(s, "SELECT pg_sleep(5)", NULL, 0, NULL, &dbe), -1);
    long long took = now_ms() - t0;
    assert_true(took < 1200);
    assert_int_equal(dbe.kind, AIGW_STORE__EUNREACHABLE);
    aigw_db_error_t err = { 0 };
    aigw_store__fail(&err, &dbe);
    assert_string_equal(err.message,
                        "database unreachable: canceling statement due to statement timeout");
    assert_int_equal(aigw_store_ping(s), 1);   /* the connection is still good */
    aigw_store_close(s);
}

/* Every committed write bumps the version and notifies aigw_config with it. */
static void test_pg_notify(void **state)
{
    fixture_t *f = *state;
    char port[16];
    snprintf(port, sizeof(port), "%d", g_pg_port);
    const char *keys[] = { "host", "port", "user", "dbname", NULL };
    const char *vals[] = { g_pg_host, port, g_pg_user, g_pg_db, NULL };
    PGconn *l = PQconnectdbParams(keys, vals, 0);
    assert_int_equal(PQstatus(l), CONNECTION_OK);
    PQclear(PQexec(l, "LISTEN aigw_config"));
    put(f, "services", SVC(SVC1, "s1"));
    put(f, "services", SVC(SVC2, "s2"));
    char seen[2][32] = { "", "" };
    int n = 0;
    long long deadline = now_ms() + 3000;
    while (n < 2 && now_ms() < deadline) {
        struct pollfd p = { .fd = PQsocket(l), .events = POLLIN };
        poll(&p, 1, 100);
        PQconsumeInput(l);
        PGnotify *nt;
        while ((nt = PQnotifies(l))) {
            if (n < 2 && strcmp(nt->relname, "aigw_config") == 0)
                snprintf(seen[n++], sizeof(seen[0]), "%s", nt->extra);
            PQfreemem(nt);
        }
    }
    PQfinish(l);
    assert_int_equal(n, 2);
    assert_string_equal(seen[0], "1");
    assert_string_equal(seen[1], "2");
}

/* While another node holds the migration lock, bootstrap gives up at once. */
static void test_pg_migration_lock(void **state)
{
    fixture_t *f = *state;
    char e2[256];
    aigw_store_t *other = aigw_store_open(&f->conf, e2, sizeof(e2));
    assert_non_null(other);
    aigw_store__dberr_t dbe;
    assert_int_equal(aigw_store__query(other, "BEGIN", NULL, 0, NULL, &dbe), 0);
    assert_int_equal(aigw_store__query(other, "SELECT pg_advisory_xact_lock(1634297719)", NULL, 0,
                                       NULL, &dbe),
                     0);
    aigw_db_error_t err = { 0 };
    long long t0 = now_ms();
    assert_int_equal(aigw_store_bootstrap(f->s, &err), -1);
    assert_true(now_ms() - t0 < 1000);
    assert_string_equal(err.message, "aborted: another node is performing database changes");
    aigw_db_error_clear(&err);
    assert_int_equal(aigw_store__query(other, "ROLLBACK", NULL, 0, NULL, &dbe), 0);
    aigw_store_close(other);
    assert_int_equal(aigw_store_bootstrap(f->s, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_migration_matches_schema),
        cmocka_unit_test(test_embedded_migrations),
        cmocka_unit_test(test_ddl_shape),
        cmocka_unit_test(test_errors_and_status),
        cmocka_unit_test(test_pg_silent_server_times_out),
        cmocka_unit_test(test_pg_refused),
        cmocka_unit_test_setup_teardown(test_bootstrap_up_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbootstrapped_and_bad_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_get_find_replace, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_keys_restrict_cascade, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_cascade, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_cache_key, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_unique_message_quoting, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_list_tags_and_foreign, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_tags_listing, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_each, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
    };
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test_setup_teardown(test_bootstrap_up_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbootstrapped_and_bad_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_get_find_replace, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_keys_restrict_cascade, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_cascade, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_cache_key, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_unique_message_quoting, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_list_tags_and_foreign, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_tags_listing, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_each, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_pg_lost_connection, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_pg_statement_timeout, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_pg_notify, setup_boot, teardown),
        cmocka_unit_test_setup_teardown(test_pg_migration_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
    };
    int pg = parse_pg_env();
    if (pg < 0)
        return 1;
    int failed = cmocka_run_group_tests_name("store", tests, NULL, NULL);
    if (pg) {
        g_pg = 1;
        failed += cmocka_run_group_tests_name("store_pg", pg_tests, NULL, NULL);
    }
    return failed;
}
