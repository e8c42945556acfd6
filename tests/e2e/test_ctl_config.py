"""aigwctl config dump / validate / diff / sync against a real aigwd (issue 8, item 3)."""
import json
import os
import subprocess
from pathlib import Path

import requests

from aigwtest import LOCAL, wait_until
from upstreams import Upstream


def _aigwctl():
    b = os.environ.get("AIGWCTL_BIN")
    if not b:
        b = str(Path(os.environ.get("AIGW_SOURCE_DIR", ".")) / "build" / "aigwctl")
    return b


def ctl(gw, *args, timeout=30):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "KONG_"))}
    env["AIGW_ADMIN_URL"] = gw.admin_url
    env["NO_COLOR"] = "1"
    return subprocess.run([_aigwctl(), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def populate(gw, up):
    a = gw.admin_url

    def post(path, **kw):
        r = requests.post(a + path, timeout=10, **kw)
        assert r.status_code == 201, (path, r.text)
        return r.json()

    post("/services", json={"name": "ai-orchestrator", "url": f"http://{LOCAL}:{up.port}/orch"})
    post("/services/ai-orchestrator/routes", json={"name": "workflow", "paths": ["/ai-workflow"]})
    post("/services/ai-orchestrator/routes", json={"name": "secure", "paths": ["/secure"]})
    post("/routes/secure/plugins", json={"name": "key-auth"})
    post("/services/ai-orchestrator/plugins",
         json={"name": "rate-limiting", "config": {"minute": 60, "policy": "local"}})
    post("/services", json={"name": "billing", "url": f"http://{LOCAL}:{up.port}/billing"})
    post("/services/billing/routes", json={"name": "bill", "paths": ["/bill"],
                                           "strip_path": False})
    post("/consumers", json={"username": "ai-client"})
    post("/consumers/ai-client/jwt", json={"key": "ai-client-key", "algorithm": "HS256"})
    post("/consumers/ai-client/key-auth", json={"key": "sekrit-key-1"})
    post("/consumers/ai-client/acls", json={"group": "ai-operator"})
    post("/consumers", json={"username": "other"})
    post("/plugins", json={"name": "cors"})
    post("/upstreams", json={"name": "pool"})
    post("/upstreams/pool/targets", json={"target": f"{LOCAL}:{up.port}", "weight": 50})


def test_dump_loads_dbless_and_diffs_clean(aigw, tmp_path):
    up = Upstream()
    try:
        gw = aigw()
        populate(gw, up)
        out = tmp_path / "kong.yml"
        r = ctl(gw, "config", "dump", "--file", str(out))
        assert r.returncode == 0, r.stderr
        assert "wrote" in r.stderr
        assert (out.stat().st_mode & 0o777) == 0o600
        text = out.read_text()
        assert text.startswith('_format_version: "3.0"')
        # The same node: nothing to do, in both output forms.
        r = ctl(gw, "config", "diff", str(out))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines() == ["0 to create, 0 to update, 0 to delete"]
        r = ctl(gw, "config", "diff", str(out), "-o", "json")
        d = json.loads(r.stdout)
        assert d["changes"] == [] and d["summary"] == {"create": 0, "update": 0, "delete": 0}
        # JSON dump to stdout diffs clean too.
        r = ctl(gw, "config", "dump", "--format", "json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        names = sorted(s["name"] for s in doc["services"])
        assert names == ["ai-orchestrator", "billing"]
        orch = [s for s in doc["services"] if s["name"] == "ai-orchestrator"][0]
        assert sorted(x["name"] for x in orch["routes"]) == ["secure", "workflow"]
        assert [p["name"] for p in orch["plugins"]] == ["rate-limiting"]
        secure = [x for x in orch["routes"] if x["name"] == "secure"][0]
        assert [p["name"] for p in secure["plugins"]] == ["key-auth"]
        client = [c for c in doc["consumers"] if c["username"] == "ai-client"][0]
        assert [j["key"] for j in client["jwt_secrets"]] == ["ai-client-key"]
        assert [k["key"] for k in client["keyauth_credentials"]] == ["sekrit-key-1"]
        assert [g["group"] for g in client["acls"]] == ["ai-operator"]
        assert [p["name"] for p in doc["plugins"]] == ["cors"]
        assert [t["target"] for t in doc["upstreams"][0]["targets"]] == [f"{LOCAL}:{up.port}"]
        jf = tmp_path / "kong.json"
        jf.write_text(r.stdout)
        r = ctl(gw, "config", "diff", str(jf), "-o", "json")
        assert json.loads(r.stdout)["summary"] == {"create": 0, "update": 0, "delete": 0}
        r = ctl(gw, "config", "validate", str(out))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "valid" in r.stdout

        # A fresh DB-less node loads the dump and serves the same routes.
        dbless = aigw(env={"AIGW_DATABASE": "off", "AIGW_DECLARATIVE_CONFIG": str(out)})
        p = dbless.proxy_url
        resp = requests.get(p + "/ai-workflow/x", timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json()["target"] == "/orch/x"
        assert requests.get(p + "/bill/y", timeout=10).json()["target"] == "/billing/bill/y"
        assert requests.get(p + "/secure", timeout=10).status_code == 401
        ok = requests.get(p + "/secure", headers={"apikey": "sekrit-key-1"}, timeout=10)
        assert ok.status_code == 200
        assert "X-RateLimit-Limit-Minute" in ok.headers
        a2 = dbless.admin_url
        assert requests.get(a2 + "/consumers/ai-client/jwt/ai-client-key",
                            timeout=10).status_code == 200
        assert requests.get(a2 + "/consumers/ai-client/acls", timeout=10).json()["data"][0][
            "group"] == "ai-operator"
        tg = requests.get(a2 + "/upstreams/pool/targets", timeout=10).json()["data"]
        assert [t["weight"] for t in tg] == [50]
        # And the DB-less node's own dump diffs clean against the file it loaded.
        r = ctl(dbless, "config", "diff", str(out), "-o", "json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["summary"] == {"create": 0, "update": 0, "delete": 0}
    finally:
        up.close()


def test_diff_then_sync(aigw, tmp_path):
    up = Upstream()
    try:
        gw = aigw()
        populate(gw, up)
        r = ctl(gw, "config", "dump", "--format", "json")
        doc = json.loads(r.stdout)
        orch = [s for s in doc["services"] if s["name"] == "ai-orchestrator"][0]
        wf = [x for x in orch["routes"] if x["name"] == "workflow"][0]
        wf["paths"] = ["/ai-workflow-v2"]                  # update route
        orch["plugins"][0]["config"] = {"minute": 100}     # update plugin, defaults for the rest
        del orch["plugins"][0]["id"]                       # matched by name and scope instead
        doc["plugins"] = []                                # delete the global cors
        doc["consumers"] = [c for c in doc["consumers"] if c["username"] != "other"]
        client = doc["consumers"][0]
        client["acls"].append({"group": "ai-admin"})       # create acl
        doc["services"].append({"name": "new-svc", "url": f"http://{LOCAL}:{up.port}/new",
                                "routes": [{"name": "new-route", "paths": ["/new"]}]})
        f = tmp_path / "changed.yaml"
        # Written as YAML by hand-ish: JSON is valid YAML 1.2 flow, but exercise the parser
        # with block YAML through aigwctl's own dump format instead.
        f.write_text(json.dumps(doc))
        r = ctl(gw, "config", "diff", str(f))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [
            "+ create service new-svc",
            "~ update route workflow (paths: [/ai-workflow] -> [/ai-workflow-v2])",
            "+ create route new-route",
            "~ update plugin rate-limiting (service ai-orchestrator) (config.minute: 60 -> 100)",
            "+ create acl ai-admin (consumer ai-client)",
            "- delete plugin cors (global)",
            "- delete consumer other",
            "3 to create, 2 to update, 2 to delete",
        ]
        r = ctl(gw, "config", "diff", str(f), "-o", "json")
        d = json.loads(r.stdout)
        assert d["summary"] == {"create": 3, "update": 2, "delete": 2}
        upd = [c for c in d["changes"] if c["action"] == "update" and c["kind"] == "route"][0]
        assert upd["fields"] == [{"field": "paths", "from": ["/ai-workflow"],
                                  "to": ["/ai-workflow-v2"]}]
        assert upd["path"] == "services[0].routes[1]" or upd["path"].endswith("routes[1]") or \
            upd["path"].endswith("routes[0]")
        # --dry-run changes nothing.
        r = ctl(gw, "config", "sync", str(f), "--dry-run")
        assert r.returncode == 0 and "3 to create, 2 to update, 2 to delete" in r.stdout
        assert requests.get(gw.admin_url + "/consumers/other", timeout=10).status_code == 200
        # Sync applies exactly that.
        r = ctl(gw, "config", "sync", str(f))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-1] == "3 created, 2 updated, 2 deleted"
        a = gw.admin_url
        assert requests.get(a + "/routes/workflow", timeout=10).json()["paths"] == [
            "/ai-workflow-v2"]
        assert requests.get(a + "/consumers/other", timeout=10).status_code == 404
        assert requests.get(a + "/plugins", timeout=10).json()["data"] and all(
            p["name"] != "cors" for p in requests.get(a + "/plugins", timeout=10).json()["data"])
        rl = [p for p in requests.get(a + "/plugins", timeout=10).json()["data"]
              if p["name"] == "rate-limiting"][0]
        assert rl["config"]["minute"] == 100 and rl["config"]["policy"] == "local"
        groups = sorted(g["group"] for g in requests.get(a + "/consumers/ai-client/acls",
                                                         timeout=10).json()["data"])
        assert groups == ["ai-admin", "ai-operator"]
        wait_until(lambda: requests.get(gw.proxy_url + "/new/z", timeout=5).status_code == 200,
                   10, what="the new route")
        # A second diff shows nothing.
        r = ctl(gw, "config", "diff", str(f))
        assert r.stdout.strip() == "0 to create, 0 to update, 0 to delete", r.stdout
        # The diff never prints a secret.
        doc2 = json.loads(f.read_text())
        doc2["consumers"][0]["keyauth_credentials"][0]["tags"] = ["x"]
        doc2["consumers"][0]["jwt_secrets"][0]["secret"] = "a-new-secret-value"
        f.write_text(json.dumps(doc2))
        r = ctl(gw, "config", "diff", str(f))
        assert "sekrit-key-1" not in r.stdout and "a-new-secret-value" not in r.stdout
        assert "secret: (secret changed)" in r.stdout
        assert "2 to update" in r.stdout
    finally:
        up.close()


def test_sync_stops_at_first_error(aigw, tmp_path):
    gw = aigw()
    f = tmp_path / "k.yaml"
    f.write_text("""_format_version: "3.0"
services:
- name: first
  url: http://127.0.0.1:9/
  retries: 3
- name: second
  url: http://127.0.0.1:9/
  plugins:
  - name: rate-limiting
    config:
      minute: many
consumers:
- username: later
  acls:
  - group: not-reached
""")
    r = ctl(gw, "config", "sync", str(f))
    assert r.returncode == 1
    assert "sync stopped: + create plugin rate-limiting (service second) " \
           "(services[1].plugins[0]) failed" in r.stderr
    assert "config.minute: expected a number" in r.stderr
    # Parents first: services, consumers, then plugins; the acl after the failure is not tried.
    assert "applied 3 of 5 changes; the other 2 were not attempted" in r.stderr
    assert r.stdout.splitlines() == ["+ create service first", "+ create service second",
                                     "+ create consumer later", "3 created, 0 updated, 0 deleted"]
    a = gw.admin_url
    assert requests.get(a + "/services/first", timeout=10).json()["retries"] == 3
    assert requests.get(a + "/consumers/later/acls", timeout=10).json()["data"] == []
    assert requests.get(a + "/plugins", timeout=10).json()["data"] == []


def test_validate(aigw, tmp_path):
    gw = aigw()
    f = tmp_path / "bad.yaml"
    f.write_text("""_format_version: "3.0"
services:
- name: good
  url: http://127.0.0.1:9/
  routes:
  - name: ok
    paths: [/ok]
  - name: no-slash
    paths: [nope]
- name: broken
  url: not-a-url
routes:
- name: dangling
  service: no-such-service
  paths: ["/d"]
plugins:
- name: rate-limiting
  service: good
  config: {minute: 'sixty'}
consumers:
- username: dup
- username: dup
extra: 1
""")
    r = ctl(gw, "config", "validate", str(f), "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["valid"] is False
    got = {(p["path"], p.get("field"), p["message"]) for p in d["problems"]}
    assert ("extra", None, "unknown top-level key 'extra'") in got
    assert ("routes[0]", "service",
            "'no-such-service' does not match any service of the file (by id or name)") in got
    assert any(p == "services[1]" and fld == "url" for p, fld, _ in got)
    assert ("services[1]", "host", "required field missing") in got   # the server's schema
    assert ("services[0].routes[1]", "paths[0]",
            "should start with: / (fixed path) or ~/ (regex path)") in got
    assert ("plugins[0]", "config.minute", "expected a number") in got
    assert any(p == "consumers[1]" and m.startswith("duplicate") for p, _, m in got)
    # Human form: one line per problem with its path, then the count; exit 1.
    r = ctl(gw, "config", "validate", str(f))
    assert r.returncode == 1
    assert "routes[0]: service: 'no-such-service' does not match" in r.stdout
    assert r.stdout.strip().endswith("problems")
    # diff and sync refuse an invalid file.
    r = ctl(gw, "config", "sync", str(f))
    assert r.returncode == 1 and "not valid" in r.stderr
    assert requests.get(gw.admin_url + "/services/good", timeout=10).status_code == 404
    # A valid file.
    ok = tmp_path / "ok.yaml"
    ok.write_text("_format_version: '3.0'\nservices:\n- name: s\n  url: http://127.0.0.1:9\n"
                  "  routes:\n  - name: r\n    paths: [/r]\n    strip_path: no\n")
    r = ctl(gw, "config", "validate", str(ok))
    assert r.returncode == 0 and "valid (2 entities)" in r.stdout
    # Bad input: a missing file, YAML syntax errors, usage.
    r = ctl(gw, "config", "validate", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "cannot open" in r.stderr
    bad = tmp_path / "syntax.yaml"
    bad.write_text("services: [a, b\n")
    r = ctl(gw, "config", "validate", str(bad))
    assert r.returncode == 1 and "line" in r.stderr
    r = ctl(gw, "config", "validate")
    assert r.returncode == 2
