"""The PostgreSQL fixture works, and aigwd runs on it (database = postgres)."""
from aigwtest import get


def test_psql_create_insert_select(postgres):
    postgres.psql("CREATE TABLE fixture_probe (id serial PRIMARY KEY, name text NOT NULL)")
    postgres.psql("INSERT INTO fixture_probe (name) VALUES ('alpha'), ('beta')")
    out = postgres.psql("SELECT name FROM fixture_probe ORDER BY id")
    assert out.split() == ["alpha", "beta"]
    assert postgres.psql("SELECT count(*) FROM fixture_probe").strip() == "2"
    assert postgres.psql("SELECT current_database()").strip() == "aigw_test"
    assert postgres.psql("SELECT current_user").strip() == "aigw"
    version = postgres.psql("SHOW server_version_num").strip()
    assert version.startswith("15"), version
    postgres.psql("DROP TABLE fixture_probe")


def test_psql_reports_errors(postgres):
    try:
        postgres.psql("SELECT * FROM no_such_table_here")
    except AssertionError as e:
        assert "no_such_table_here" in str(e)
    else:
        raise AssertionError("psql error was not reported")


def test_aigwd_on_postgres_status_reachable(postgres, aigw):
    gw = aigw(env=postgres.env_for_aigw())
    r = get(gw.admin_url + "/status")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["database"]["reachable"] is True
    root = get(gw.admin_url + "/").json()
    assert root["configuration"]["database"] == "postgres"
    assert root["configuration"]["pg_port"] in (postgres.port, str(postgres.port))
