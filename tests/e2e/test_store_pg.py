"""The configuration store on PostgreSQL: the store's unit suite run against a throw-away
server, `aigwd migrations` on it, and what an admin API user sees when PostgreSQL holds the
configuration (Kong's 201/409/400 answers, cascades)."""
import subprocess
from pathlib import Path

import pytest

from aigwtest import aigwd_bin, clean_env, find_sanitizer_report, free_port, http

TABLES_SQL = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"


def _tables(postgres):
    return postgres.psql(TABLES_SQL).split()


def test_store_unit_suite_on_postgres(postgres):
    """tests/unit/test_store.c, built next to aigwd, runs its PostgreSQL group when
    TEST_STORE_PG names a database: CRUD, Kong's messages, paging, tags, transactions,
    a lost connection, the statement timeout, NOTIFY and the migration lock."""
    exe = Path(aigwd_bin()).parent / "test_store"
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: build the unit tests (AIGW_TESTS=ON)", pytrace=False)
    env = clean_env({"TEST_STORE_PG":
                     f"{postgres.host}:{postgres.port}:{postgres.user}:{postgres.database}"})
    env = {k: v for k, v in env.items() if not k.startswith("PG")}
    r = subprocess.run([str(exe)], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=300)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    rep = find_sanitizer_report(out)
    assert rep is None, rep
    assert r.returncode == 0, out[-6000:]
    # two groups ran (SQLite, then PostgreSQL), and nothing failed
    assert out.count("test(s) run.") == 2 and "FAILED" not in out, out[-6000:]


def test_migrations_cli_on_postgres(postgres, aigw_run):
    env = postgres.env_for_aigw()
    # start from nothing, whatever ran before
    r = aigw_run(["migrations", "list"], env=env)
    if r.rc == 0 or "Executed migrations" in r.stdout:
        assert aigw_run(["migrations", "reset", "--yes"], env=env).rc == 0
    assert "services" not in _tables(postgres)

    r = aigw_run(["migrations", "list"], env=env)
    assert r.rc == 1, r
    assert r.stdout == "Database needs bootstrapping; run 'aigwd migrations bootstrap'\n"

    r = aigw_run(["migrations", "up"], env=env)
    assert r.rc == 1, r
    assert "database needs bootstrapping" in r.stderr

    r = aigw_run(["migrations", "bootstrap"], env=env)
    assert r.rc == 0, r
    assert "migrated up to: 001_initial (executed)" in r.stdout
    assert r.stdout.endswith("Database is up-to-date\n")
    tables = _tables(postgres)
    for t in ("aigw_migrations", "aigw_config_version", "services", "routes", "consumers",
              "plugins", "certificates", "snis", "upstreams", "targets", "jwt_secrets",
              "keyauth_credentials", "basicauth_credentials", "acls", "oauth2_credentials"):
        assert t in tables, (t, tables)
    assert postgres.psql("SELECT name FROM aigw_migrations").split() == ["001_initial", "002_ttl", "003_ratelimiting"]
    assert postgres.psql("SELECT version FROM aigw_config_version").strip() == "0"
    # the JSON lives in jsonb; ids sort bytewise
    assert postgres.psql("SELECT data_type FROM information_schema.columns WHERE "
                         "table_name = 'services' AND column_name = 'data'").strip() == "jsonb"

    r = aigw_run(["migrations", "bootstrap"], env=env)
    assert r.rc == 0 and r.stdout == "Database already bootstrapped\n", r
    r = aigw_run(["migrations", "up"], env=env)
    assert r.rc == 0 and r.stdout == "Database is already up-to-date\n", r
    r = aigw_run(["migrations", "list"], env=env)
    assert r.rc == 0, r
    assert "Executed migrations:\n  001_initial\n" in r.stdout

    r = aigw_run(["migrations", "reset"], env=env)
    assert r.rc == 1, r
    assert "--yes" in r.stderr
    assert "services" in _tables(postgres)

    r = aigw_run(["migrations", "reset", "--yes"], env=env)
    assert r.rc == 0, r
    assert r.stdout == "Resetting database...\nDatabase successfully reset\n"
    assert _tables(postgres) == []

    r = aigw_run(["migrations", "bootstrap"], env=env)
    assert r.rc == 0, r


def test_migrations_cli_unreachable(aigw_run):
    port = free_port()
    env = {"AIGW_DATABASE": "postgres", "AIGW_PG_HOST": "127.0.0.1", "AIGW_PG_PORT": str(port),
           "AIGW_PG_USER": "aigw", "AIGW_PG_DATABASE": "aigw_test", "AIGW_PG_TIMEOUT": "2000"}
    r = aigw_run(["migrations", "list"], env=env, timeout=10)
    assert r.rc == 1, r
    assert r.stderr.startswith(
        f"aigwd migrations: cannot connect to PostgreSQL at 127.0.0.1:{port} "
        f"(database aigw_test, user aigw): "), r.stderr
    assert "\n" not in r.stderr.rstrip("\n")


def test_admin_api_on_postgres(postgres, aigw_run, aigw):
    env = postgres.env_for_aigw()
    if aigw_run(["migrations", "list"], env=env).rc != 0:
        assert aigw_run(["migrations", "bootstrap"], env=env).rc == 0
    gw = aigw(env=env)
    base = gw.admin_url
    r = http("POST", base + "/services", json={"name": "pg-svc", "url": "http://upstream.test:81"})
    assert r.status_code == 201, r.text
    svc = r.json()
    r = http("POST", base + "/services", json={"name": "pg-svc", "host": "other.test"})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == 5
    assert body["name"] == "unique constraint violation"
    assert body["message"] == "UNIQUE violation detected on '{name=\"pg-svc\"}'"
    assert body["fields"] == {"name": "pg-svc"}

    r = http("POST", base + "/services/pg-svc/routes", json={"name": "pg-route", "paths": ["/pg"]})
    assert r.status_code == 201, r.text
    r = http("POST", base + "/services/pg-svc/plugins", json={"name": "key-auth"})
    assert r.status_code == 201, r.text
    plugin = r.json()
    r = http("POST", base + "/services/pg-svc/plugins", json={"name": "key-auth"})
    assert r.status_code == 409, r.text
    assert r.json()["message"] == (
        "UNIQUE violation detected on '{consumer=null,name=\"key-auth\",route=null,"
        f"service={{id=\"{svc['id']}\"}}}}'")

    r = http("DELETE", base + "/services/pg-svc")
    assert r.status_code == 400, r.text
    assert r.json() == {
        "code": 4, "name": "foreign key violation",
        "message": "an existing 'routes' entity references this 'services' entity",
        "fields": {"@referenced_by": "routes"}}
    assert http("DELETE", base + "/routes/pg-route").status_code == 204
    assert http("DELETE", base + "/services/pg-svc").status_code == 204
    # the plugin went with its service
    assert http("GET", base + "/plugins/" + plugin["id"]).status_code == 404

    # paging over PostgreSQL
    for i in range(7):
        r = http("POST", base + "/consumers", json={"username": f"pg-user-{i}", "tags": ["pg"]})
        assert r.status_code == 201, r.text
    seen, url, pages = [], base + "/consumers?size=3&tags=pg", 0
    while url:
        r = http("GET", url)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [c["username"] for c in body["data"]]
        pages += 1
        url = base + body["next"] if body["next"] else None
    assert sorted(seen) == [f"pg-user-{i}" for i in range(7)]
    assert pages == 3
    version = int(postgres.psql("SELECT version FROM aigw_config_version").strip())
    assert version >= 7 + 4
