"""`aigwd config init | parse | db_import | db_export` as a user runs them (Kong's
`kong config`): a round trip of a Kong-format kong.yml through two fresh databases, Kong's
refusals and messages, and the imported configuration seen through the admin API."""
import uuid
from pathlib import Path

import yaml

from aigwtest import get

KONG_YML = """\
_format_version: "3.0"
_comment: a kong.yml as Kong users write it
services:
- name: ai-orchestrator
  url: http://ai-orchestrator.test:5000
  tags: [ai]
  routes:
  - name: orchestrator
    paths: [/ai]
    strip_path: true
    plugins:
    - name: rate-limiting
      config:
        minute: 60
        policy: local
  plugins:
  - name: cors
    config:
      origins: ["*"]
- name: agent-service
  host: agent.test
  port: 8080
routes:
- name: agent
  service: agent-service
  hosts: [agent.example.test]
consumers:
- username: ai-operator
  custom_id: op-1
  jwt_secrets:
  - key: operator-key
    secret: operator-secret
  basicauth_credentials:
  - username: operator
    password: s3cret
  acls:
  - group: ai-operator
  - group: ai-admin
- username: ai-agent
  keyauth_credentials:
  - key: agent-api-key
upstreams:
- name: agents.upstream
  targets:
  - target: 10.0.0.1:8080
    weight: 100
  - target: 10.0.0.2
plugins:
- name: key-auth
  route: agent
- name: acl
  service: ai-orchestrator
  config:
    allow: [ai-operator, ai-admin]
"""


def _kong_id(entity, key):
    """The id Kong 3.9 gives an entity declared without one (declarative_config.lua)."""
    ns = uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5")
    return str(uuid.uuid5(uuid.uuid5(ns, entity), key))


def _ok(res):
    assert res.rc == 0, f"rc={res.rc}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _bootstrap(aigw_run, prefix):
    _ok(aigw_run(["migrations", "bootstrap", "-p", "{prefix}"], prefix=prefix))


def _without_updated_at(doc):
    """A re-import renews updated_at (as Kong's upsert does); everything else must survive."""
    for key, rows in doc.items():
        if isinstance(rows, list):
            for row in rows:
                row.pop("updated_at", None)
    return doc


def test_round_trip_through_two_databases(aigw_run, tmp_path):
    src = tmp_path / "kong.yml"
    src.write_text(KONG_YML)
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    out1, out2 = tmp_path / "out1.yml", tmp_path / "out2.yml"

    _bootstrap(aigw_run, p1)
    res = _ok(aigw_run(["config", "db_import", str(src), "-p", "{prefix}"], prefix=p1))
    assert res.stdout.splitlines() == ["parse successful, beginning import", "import successful"]
    _ok(aigw_run(["config", "db_export", str(out1), "-p", "{prefix}"], prefix=p1))

    first = yaml.safe_load(out1.read_text())
    assert first["_format_version"] == "3.0"
    assert first["_transform"] is False
    # flat top-level collections, parents first, foreign keys as ids
    collections = [k for k in first if not k.startswith("_")]
    for name in ("services", "routes", "consumers", "upstreams", "targets", "plugins",
                 "jwt_secrets", "keyauth_credentials", "basicauth_credentials", "acls"):
        assert name in collections, (name, collections)
    assert collections.index("services") < collections.index("routes") \
        < collections.index("plugins")
    svc = {s["name"]: s for s in first["services"]}
    routes = {r["name"]: r for r in first["routes"]}
    assert routes["orchestrator"]["service"] == svc["ai-orchestrator"]["id"]
    assert routes["agent"]["service"] == svc["agent-service"]["id"]
    assert svc["ai-orchestrator"]["port"] == 5000 and svc["ai-orchestrator"]["path"] is None
    assert sorted(t["target"] for t in first["targets"]) == ["10.0.0.1:8080", "10.0.0.2:8000"]
    assert sorted(a["group"] for a in first["acls"]) == ["ai-admin", "ai-operator"]
    # Kong's deterministic ids: uuid v5 of the endpoint key in the entity's namespace
    assert svc["ai-orchestrator"]["id"] == _kong_id("services", "ai-orchestrator")
    assert routes["agent"]["id"] == _kong_id("routes", "agent")
    # the clear password was hashed on import; the export carries the hash
    ba = first["basicauth_credentials"][0]
    assert ba["password"].startswith("$argon2id$")

    # into a fresh database, and out again: the same configuration
    _bootstrap(aigw_run, p2)
    res = _ok(aigw_run(["config", "db_import", str(out1), "-p", "{prefix}"], prefix=p2))
    _ok(aigw_run(["config", "db_export", str(out2), "-p", "{prefix}"], prefix=p2))
    second = yaml.safe_load(out2.read_text())
    assert _without_updated_at(first) == _without_updated_at(second)

    # importing the original again keeps ids: nothing is duplicated
    _ok(aigw_run(["config", "db_import", str(src), "-p", "{prefix}"], prefix=p1))
    out3 = tmp_path / "out3.yml"
    _ok(aigw_run(["config", "db_export", str(out3), "-p", "{prefix}"], prefix=p1))
    third = yaml.safe_load(out3.read_text())
    for name in collections:
        assert sorted(r["id"] for r in third[name]) == sorted(r["id"] for r in first[name]), name


def test_export_to_stdout_and_default_file(aigw_run, tmp_path):
    p = tmp_path / "p"
    _bootstrap(aigw_run, p)
    src = tmp_path / "kong.yml"
    src.write_text(KONG_YML)
    _ok(aigw_run(["config", "db_import", str(src), "-p", "{prefix}"], prefix=p))
    res = _ok(aigw_run(["config", "db_export", "-", "-p", "{prefix}"], prefix=p))
    doc = yaml.safe_load(res.stdout)
    assert {s["name"] for s in doc["services"]} == {"ai-orchestrator", "agent-service"}
    # without FILE: ./kong.yml in the working directory
    res = _ok(aigw_run(["config", "db_export", "-p", "{prefix}"], prefix=p))
    cwd_file = Path(res.conf_path).parent / "kong.yml"
    assert cwd_file.exists()
    assert yaml.safe_load(cwd_file.read_text())["_format_version"] == "3.0"


def test_export_refuses_to_overwrite(aigw_run, tmp_path):
    p = tmp_path / "p"
    _bootstrap(aigw_run, p)
    out = tmp_path / "exists.yml"
    out.write_text("keep me\n")
    res = aigw_run(["config", "db_export", str(out), "-p", "{prefix}"], prefix=p)
    assert res.rc == 1
    assert res.stderr.strip() == f"Error: {out} already exists. Will not overwrite it."
    assert out.read_text() == "keep me\n"


def test_parse_reports_kong_errors(aigw_run, tmp_path):
    good = tmp_path / "good.yml"
    good.write_text(KONG_YML)
    res = _ok(aigw_run(["config", "parse", str(good)]))
    assert res.stdout.strip() == "parse successful"

    bad = tmp_path / "bad.yml"
    bad.write_text('_format_version: "1.1"\nservices:\n- port: -12\n')
    res = aigw_run(["config", "parse", str(bad)])
    assert res.rc == 1
    assert res.stderr.splitlines() == [
        "Error: Failed parsing:",
        "in 'services':",
        "  - in entry 1 of 'services':",
        "    in 'host': required field missing",
        "    in 'port': value should be between 0 and 65535",
    ]

    dangling = tmp_path / "dangling.yml"
    dangling.write_text('_format_version: "3.0"\nroutes:\n- name: r\n  paths: [/]\n'
                        '  service: nowhere\n')
    res = aigw_run(["config", "parse", str(dangling)])
    assert res.rc == 1
    assert res.stderr.splitlines() == [
        "Error: Failed parsing:",
        "in 'routes':",
        "  in 'r':",
        "    - in entry 1 of 'r': invalid reference 'service: nowhere' (no such entry in "
        "'services')",
    ]

    notyaml = tmp_path / "broken.yml"
    notyaml.write_text("a: b: c\n")
    res = aigw_run(["config", "parse", str(notyaml)])
    assert res.rc == 1
    assert res.stderr.splitlines() == [
        "Error: Failed parsing:",
        "failed parsing declarative configuration: 1:4: mapping values are not allowed in "
        "this context",
    ]

    other = tmp_path / "kong.txt"
    other.write_text(KONG_YML)
    res = aigw_run(["config", "parse", str(other)])
    assert res.rc == 1
    assert res.stderr.splitlines() == [
        "Error: Failed parsing:",
        f"failed parsing declarative configuration: unknown file type: {other}. "
        "(Accepted types: json, yaml)",
    ]

    res = aigw_run(["config", "parse"])
    assert res.rc == 1
    assert res.stderr.strip() == ("Error: expected a declarative configuration file; see "
                                  "`aigwd config --help`")


def test_import_is_all_or_nothing(aigw_run, tmp_path):
    p = tmp_path / "p"
    _bootstrap(aigw_run, p)
    first = tmp_path / "first.yml"
    first.write_text('_format_version: "3.0"\nservices:\n'
                     '- id: 5e1a2b3c-0000-4000-8000-000000000001\n  name: taken\n'
                     '  host: a.test\n')
    _ok(aigw_run(["config", "db_import", str(first), "-p", "{prefix}"], prefix=p))
    second = tmp_path / "second.yml"
    second.write_text('_format_version: "3.0"\nconsumers:\n- username: newcomer\n'
                      'services:\n- name: taken\n  host: b.test\n')
    res = aigw_run(["config", "db_import", str(second), "-p", "{prefix}"], prefix=p)
    assert res.rc == 1
    assert res.stdout.strip() == "parse successful, beginning import"
    assert res.stderr.splitlines() == [
        "Error: Failed importing:",
        "UNIQUE violation detected on '{name=\"taken\"}'",
    ]
    res = _ok(aigw_run(["config", "db_export", "-", "-p", "{prefix}"], prefix=p))
    doc = yaml.safe_load(res.stdout)
    assert "consumers" not in doc
    assert [s["host"] for s in doc["services"]] == ["a.test"]


def test_refused_without_database(aigw_run, tmp_path):
    src = tmp_path / "kong.yml"
    src.write_text(KONG_YML)
    env = {"AIGW_DATABASE": "off"}
    res = aigw_run(["config", "db_import", str(src), "-p", "{prefix}"], env=env)
    assert res.rc == 1
    assert res.stderr.splitlines() == [
        "Error: 'aigwd config db_import' only works with a database.",
        "When using database=off, reload your declarative configuration",
        "using the /config endpoint.",
    ]
    res = aigw_run(["config", "db_export", str(tmp_path / "x.yml"), "-p", "{prefix}"], env=env)
    assert res.rc == 1
    assert res.stderr.strip() == "Error: 'aigwd config db_export' only works with a database."
    # parse needs no database
    _ok(aigw_run(["config", "parse", str(src)], env=env))


def test_init_writes_a_parsable_example(aigw_run, tmp_path):
    target = tmp_path / "new.yml"
    _ok(aigw_run(["config", "init", str(target)]))
    doc = yaml.safe_load(target.read_text())
    assert doc["_format_version"] == "3.0"
    _ok(aigw_run(["config", "parse", str(target)]))
    res = aigw_run(["config", "init", str(target)])
    assert res.rc == 1
    assert res.stderr.splitlines() == [f"Error: {target} already exists.",
                                       "Will not overwrite it."]


def test_imported_configuration_served_by_admin_api(aigw_run, aigw, tmp_path):
    p = tmp_path / "p"
    _bootstrap(aigw_run, p)
    src = tmp_path / "kong.yml"
    src.write_text(KONG_YML)
    _ok(aigw_run(["config", "db_import", str(src), "-p", "{prefix}"], prefix=p))
    gw = aigw(prefix=p)
    r = get(gw.admin_url + "/services/ai-orchestrator")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["host"] == "ai-orchestrator.test" and body["port"] == 5000
    r = get(gw.admin_url + "/services/ai-orchestrator/routes")
    assert [x["name"] for x in r.json()["data"]] == ["orchestrator"]
    r = get(gw.admin_url + "/consumers/ai-agent/key-auth")
    assert [x["key"] for x in r.json()["data"]] == ["agent-api-key"]
    r = get(gw.admin_url + "/consumers/ai-operator/acls")
    assert sorted(x["group"] for x in r.json()["data"]) == ["ai-admin", "ai-operator"]


def test_needs_a_bootstrapped_database(aigw_run, tmp_path):
    src = tmp_path / "kong.yml"
    src.write_text(KONG_YML)
    p = tmp_path / "fresh"
    res = aigw_run(["config", "db_import", str(src), "-p", "{prefix}"], prefix=p)
    assert res.rc == 1
    assert res.stderr.strip() == ("Error: database needs bootstrapping; run 'aigwd migrations "
                                  "bootstrap'")
    res = aigw_run(["config", "db_export", "-", "-p", "{prefix}"], prefix=p)
    assert res.rc == 1 and res.stdout == ""


def test_postgres_to_sqlite(postgres, aigw_run, tmp_path):
    """A configuration imported into PostgreSQL, exported, and imported into SQLite exports
    the same."""
    env = postgres.env_for_aigw()
    aigw_run(["migrations", "reset", "--yes"], env=env)  # whatever ran before
    _ok(aigw_run(["migrations", "bootstrap"], env=env))
    src = tmp_path / "kong.yml"
    src.write_text(KONG_YML)
    _ok(aigw_run(["config", "db_import", str(src)], env=env))
    out_pg = tmp_path / "pg.yml"
    _ok(aigw_run(["config", "db_export", str(out_pg)], env=env))
    from_pg = yaml.safe_load(out_pg.read_text())
    assert {s["name"] for s in from_pg["services"]} == {"ai-orchestrator", "agent-service"}

    p = tmp_path / "lite"
    _bootstrap(aigw_run, p)
    _ok(aigw_run(["config", "db_import", str(out_pg), "-p", "{prefix}"], prefix=p))
    out_lite = tmp_path / "lite.yml"
    _ok(aigw_run(["config", "db_export", str(out_lite), "-p", "{prefix}"], prefix=p))
    assert _without_updated_at(from_pg) == _without_updated_at(
        yaml.safe_load(out_lite.read_text()))
    aigw_run(["migrations", "reset", "--yes"], env=env)
