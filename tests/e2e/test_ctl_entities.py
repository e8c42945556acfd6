"""aigwctl's entity commands (issue 8 items 2 and 4) against a real aigwd: every verb of every
entity and credential kind, the issue's example lines exactly as typed, a proxied request through
what they created, output formats, and the bad-input exit codes."""
import json
import os
import subprocess
import time

import jwt as pyjwt
import pytest
import yaml

from aigwtest import LOCAL, aigwctl_bin, free_ports, get, make_self_signed, wait_until
from upstreams import Upstream


class Ctl:
    """Runs aigwctl against one gateway, with a private (empty) config directory."""

    def __init__(self, admin_url, home):
        self.admin_url = admin_url
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("AIGW_") or k in ("AIGW_SOURCE_DIR",)}
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
                        AIGW_ADMIN_URL=admin_url, NO_COLOR="1")

    def run(self, *args, expect=0, env=None):
        e = dict(self.env)
        e.update(env or {})
        r = subprocess.run([aigwctl_bin(), *args], env=e, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert "Sanitizer" not in r.stderr, r.stderr
        if expect is not None:
            assert r.returncode == expect, (
                f"aigwctl {' '.join(args)} -> {r.returncode} (want {expect})\n"
                f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def json(self, *args, expect=0):
        r = self.run(*args, "-o", "json", expect=expect)
        return json.loads(r.stdout)


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


@pytest.fixture(scope="module")
def ctl(gw, tmp_path_factory):
    return Ctl(gw.admin_url, tmp_path_factory.mktemp("ctlhome"))


def admin(gw, path):
    r = get(gw.admin_url + path)
    return r.status_code, (r.json() if r.content else None)


def hs256_token(key, secret, ttl=300):
    return pyjwt.encode({"iss": key, "exp": int(time.time()) + ttl}, secret, algorithm="HS256")


# ---- the issue's examples, exactly as typed, then traffic through them ----

def test_issue_examples_as_typed_and_proxy(gw, ctl):
    try:
        up = Upstream(port=5000)
    except OSError:
        up = Upstream()
    try:
        url = f"http://127.0.0.1:{up.port}"
        # Not a terminal and no -o: JSON on stdout, which we parse.
        svc = json.loads(ctl.run("service", "create", "ai-orchestrator", "--url", url).stdout)
        assert svc["name"] == "ai-orchestrator" and svc["host"] == "127.0.0.1"
        assert svc["port"] == up.port and svc["protocol"] == "http"
        route = json.loads(ctl.run("route", "create", "--service", "ai-orchestrator", "--paths",
                                   "/ai-workflow").stdout)
        assert route["paths"] == ["/ai-workflow"] and route["service"]["id"] == svc["id"]
        rl = json.loads(ctl.run("plugin", "enable", "rate-limiting", "--service", "ai-orchestrator",
                                "config.minute=60", "config.policy=local").stdout)
        assert rl["name"] == "rate-limiting" and rl["service"]["id"] == svc["id"]
        assert rl["config"]["minute"] == 60 and rl["config"]["policy"] == "local"
        cons = json.loads(ctl.run("consumer", "create", "ai-client").stdout)
        assert cons["username"] == "ai-client"
        cred = json.loads(ctl.run("jwt", "create", "--consumer", "ai-client", "--algorithm",
                                  "HS256").stdout)
        assert cred["algorithm"] == "HS256" and cred["consumer"]["id"] == cons["id"]
        assert cred["key"] and cred["secret"]
        acl = json.loads(ctl.run("acl", "add", "--consumer", "ai-client", "--group",
                                 "ai-operator").stdout)
        assert acl["group"] == "ai-operator" and acl["consumer"]["id"] == cons["id"]

        # The admin API agrees.
        st, body = admin(gw, "/services/ai-orchestrator/plugins")
        assert st == 200 and [p["name"] for p in body["data"]] == ["rate-limiting"]

        proxy = gw.proxy_url
        def routed():
            return get(proxy + "/ai-workflow/hello").status_code == 200
        wait_until(routed, 10, what="the route to reach the proxy")
        r = get(proxy + "/ai-workflow/hello")
        echo = r.json()
        assert echo["target"].endswith("/hello")
        assert r.headers.get("X-RateLimit-Limit-Minute") == "60"

        jp = json.loads(ctl.run("plugin", "enable", "jwt", "--service", "ai-orchestrator").stdout)
        assert jp["name"] == "jwt"
        wait_until(lambda: get(proxy + "/ai-workflow/x").status_code == 401, 10,
                   what="the jwt plugin to apply")
        tok = hs256_token(cred["key"], cred["secret"])
        r = get(proxy + "/ai-workflow/x", headers={"Authorization": "Bearer " + tok})
        assert r.status_code == 200, r.text
        assert r.json()["method"] == "GET"

        # The acl plugin (the seed's allow list, comma-separated as typed) lets ai-operator in...
        auth = {"Authorization": "Bearer " + tok}
        ap = json.loads(ctl.run("plugin", "enable", "acl", "--service", "ai-orchestrator",
                                "config.allow=ai-operator,ai-admin").stdout)
        assert ap["config"]["allow"] == ["ai-operator", "ai-admin"]
        assert get(proxy + "/ai-workflow/x", headers=auth).status_code == 200
        # ...and `acl remove` takes the consumer out of the group.
        assert ctl.run("acl", "remove", "ai-operator", "--consumer", "ai-client").stdout.strip() \
            == "deleted acl ai-operator"
        wait_until(lambda: get(proxy + "/ai-workflow/x", headers=auth).status_code == 403, 10,
                   interval=0.2, what="the acl change to apply")
        ctl.run("plugin", "disable", ap["id"])

        # plugin disable by name within the service's scope removes it.
        out = ctl.run("plugin", "disable", "jwt", "--service", "ai-orchestrator").stdout
        assert out.strip() == "deleted plugin jwt"
        wait_until(lambda: get(proxy + "/ai-workflow/x").status_code == 200, 10,
                   what="the jwt plugin to go away")
        st, body = admin(gw, "/services/ai-orchestrator/plugins")
        assert [p["name"] for p in body["data"]] == ["rate-limiting"]
    finally:
        up.close()


# ---- every verb, every kind ----

def test_service_verbs(ctl):
    s = ctl.json("service", "create", "svc-a", "--url", "http://127.0.0.1:9/base", "--tags",
                 "t1,t2", "--tags", "t3", "retries=3")
    assert s["path"] == "/base" and s["retries"] == 3 and s["tags"] == ["t1", "t2", "t3"]
    assert ctl.json("service", "get", "svc-a")["id"] == s["id"]
    assert ctl.json("service", "get", s["id"])["name"] == "svc-a"
    u = ctl.json("service", "update", "svc-a", "--port", "81", "connect_timeout=5000")
    assert u["port"] == 81 and u["connect_timeout"] == 5000 and u["retries"] == 3
    # upsert replaces: fields not given go back to defaults.
    p = ctl.json("service", "upsert", "svc-a", "--host", "example.test")
    assert p["id"] == s["id"] and p["host"] == "example.test" and p["retries"] == 5
    p2 = ctl.json("service", "upsert", "svc-b", "--url", "http://127.0.0.1:10")
    assert p2["name"] == "svc-b"
    names = {x["name"] for x in ctl.json("service", "list")}
    assert {"svc-a", "svc-b"} <= names
    tagged = ctl.json("service", "list", "--tags", "t1")
    assert tagged == []  # the upsert dropped the tags
    ctl.json("service", "update", "svc-b", "--tags", "blue")
    assert [x["name"] for x in ctl.json("service", "list", "--tags", "blue")] == ["svc-b"]
    r = ctl.run("service", "delete", "svc-b")
    assert r.stdout.strip() == "deleted service svc-b"
    ctl.run("service", "get", "svc-b", expect=1)
    # Deleting what is not there is an error, unless --ignore-missing.
    r = ctl.run("service", "delete", "svc-b", expect=1)
    assert "Not found" in r.stderr
    ctl.run("service", "delete", "svc-b", "--ignore-missing")
    assert ctl.run("service", "delete", "svc-a", "-o", "json").stdout == ""


def test_route_verbs(ctl):
    ctl.json("service", "create", "rsvc", "--url", "http://127.0.0.1:9")
    r = ctl.json("route", "create", "r1", "--service", "rsvc", "--paths", "/a,/b", "--paths", "/c",
                 "--methods", "GET", "--hosts", "x.test", "strip_path=false")
    assert r["paths"] == ["/a", "/b", "/c"] and r["methods"] == ["GET"] and r["hosts"] == ["x.test"]
    assert r["strip_path"] is False and r["name"] == "r1"
    # key=value pairs in the admin API's syntax mix with flags in one form.
    r2 = ctl.json("route", "create", "--name", "r2", "paths[]=/x", "paths[]=/y",
                  "service.name=rsvc", "--protocols", "http")
    assert r2["paths"] == ["/x", "/y"] and r2["protocols"] == ["http"]
    assert ctl.json("route", "get", "r1")["id"] == r["id"]
    assert ctl.json("route", "get", "r1", "--service", "rsvc")["id"] == r["id"]
    under = ctl.json("route", "list", "--service", "rsvc")
    assert sorted(x["name"] for x in under) == ["r1", "r2"]
    u = ctl.json("route", "update", "r1", "--methods", "POST,PUT")
    assert u["methods"] == ["POST", "PUT"] and u["paths"] == ["/a", "/b", "/c"]
    up = ctl.json("route", "upsert", "r3", "--paths", "/z")
    assert up["name"] == "r3" and up["service"] is None
    assert {"r1", "r2", "r3"} <= {x["name"] for x in ctl.json("route", "list")}
    for n in ("r1", "r2", "r3"):
        ctl.run("route", "delete", n)
    assert ctl.json("route", "list", "--service", "rsvc") == []
    ctl.run("service", "delete", "rsvc")


def test_consumer_verbs(ctl):
    c = ctl.json("consumer", "create", "bob", "--custom-id", "b-1", "--tags", "x")
    assert c["username"] == "bob" and c["custom_id"] == "b-1"
    assert ctl.json("consumer", "get", "bob")["id"] == c["id"]
    assert ctl.json("consumer", "update", "bob", "custom_id=b-2")["custom_id"] == "b-2"
    p = ctl.json("consumer", "upsert", "carol", "--custom-id", "c-1")
    assert p["username"] == "carol"
    assert {"bob", "carol"} <= {x["username"] for x in ctl.json("consumer", "list")}
    ctl.run("consumer", "delete", "bob")
    ctl.run("consumer", "delete", p["id"])
    names = {x["username"] for x in ctl.json("consumer", "list")}
    assert "bob" not in names and "carol" not in names


def test_plugin_verbs(ctl):
    ctl.json("service", "create", "psvc", "--url", "http://127.0.0.1:9")
    ctl.json("consumer", "create", "pcons")
    g = ctl.json("plugin", "create", "correlation-id")
    assert g["service"] is None and g["name"] == "correlation-id"
    s = ctl.json("plugin", "create", "--name", "rate-limiting", "--service", "psvc",
                 "config.hour=100")
    assert s["config"]["hour"] == 100
    # Two scopes: nested under the service, the consumer as a foreign key.
    sc = ctl.json("plugin", "create", "rate-limiting", "--service", "psvc", "--consumer", "pcons",
                  "config.minute=5")
    assert sc["consumer"] is not None and sc["service"] is not None
    assert ctl.json("plugin", "get", g["id"])["name"] == "correlation-id"
    assert ctl.json("plugin", "get", "correlation-id")["id"] == g["id"]
    # Two rate-limiting plugins on psvc: the name alone is ambiguous.
    r = ctl.run("plugin", "get", "rate-limiting", "--service", "psvc", expect=1)
    assert "2 plugins are named" in r.stderr
    got = ctl.json("plugin", "get", "rate-limiting", "--service", "psvc", "--consumer", "pcons")
    assert got["id"] == sc["id"]
    lst = ctl.json("plugin", "list", "--service", "psvc")
    assert sorted(p["id"] for p in lst) == sorted([s["id"], sc["id"]])
    both = ctl.json("plugin", "list", "--service", "psvc", "--consumer", "pcons")
    assert [p["id"] for p in both] == [sc["id"]]
    u = ctl.json("plugin", "update", s["id"], "config.hour=200", "enabled=false")
    assert u["config"]["hour"] == 200 and u["enabled"] is False
    up = ctl.json("plugin", "upsert", g["id"], "name=correlation-id", "config.header_name=X-Req")
    assert up["id"] == g["id"] and up["config"]["header_name"] == "X-Req"
    assert {g["id"], s["id"], sc["id"]} <= {p["id"] for p in ctl.json("plugin", "list")}
    ctl.run("plugin", "delete", s["id"])
    ctl.run("plugin", "delete", "rate-limiting", "--service", "psvc")
    ctl.run("plugin", "disable", "correlation-id")
    assert ctl.json("plugin", "list", "--service", "psvc") == []
    r = ctl.run("plugin", "get", "correlation-id", expect=1)
    assert "no plugin 'correlation-id'" in r.stderr
    ctl.run("plugin", "disable", "correlation-id", "--ignore-missing")
    ctl.run("service", "delete", "psvc")
    ctl.run("consumer", "delete", "pcons")


def test_certificate_sni_ca_verbs(ctl, tmp_path):
    cert, key = make_self_signed(tmp_path / "one", cn="one.test")
    c = ctl.json("certificate", "create", "--cert", cert, "--key", key, "--snis", "one.test")
    assert c["snis"] == ["one.test"] and "BEGIN CERTIFICATE" in c["cert"]
    assert ctl.json("certificate", "get", c["id"])["id"] == c["id"]
    u = ctl.json("certificate", "update", c["id"], "--tags", "edge")
    assert u["tags"] == ["edge"]
    assert c["id"] in {x["id"] for x in ctl.json("certificate", "list")}
    s = ctl.json("sni", "create", "two.test", "--certificate", c["id"])
    assert s["name"] == "two.test" and s["certificate"]["id"] == c["id"]
    assert ctl.json("sni", "get", "two.test")["id"] == s["id"]
    assert ctl.json("sni", "update", "two.test", "--tags", "t")["tags"] == ["t"]
    up = ctl.json("sni", "upsert", "three.test", "--certificate", c["id"])
    assert up["name"] == "three.test"
    assert {"one.test", "two.test", "three.test"} <= {x["name"] for x in ctl.json("sni", "list")}
    assert {"one.test", "two.test", "three.test"} == {
        x["name"] for x in ctl.json("sni", "list", "--certificate", c["id"])}
    ctl.run("sni", "delete", "three.test")
    r = ctl.run("sni", "create", "four.test", expect=2)
    assert "--certificate" in r.stderr
    cu = ctl.json("certificate", "upsert", c["id"], "--cert", cert, "--key", key)
    assert cu["id"] == c["id"]
    ctl.run("certificate", "delete", c["id"])
    ca = ctl.json("ca-certificate", "create", "--cert", cert)
    assert ca["cert_digest"]
    assert ctl.json("ca-certificate", "get", ca["id"])["id"] == ca["id"]
    assert ctl.json("ca-certificate", "update", ca["id"], "--tags", "ca")["tags"] == ["ca"]
    assert ca["id"] in {x["id"] for x in ctl.json("ca-certificate", "list")}
    assert ctl.json("ca-certificate", "upsert", ca["id"], "--cert", cert)["id"] == ca["id"]
    ctl.run("ca-certificate", "delete", ca["id"])
    assert ca["id"] not in {x["id"] for x in ctl.json("ca-certificate", "list")}


def test_upstream_target_verbs(ctl):
    u = ctl.json("upstream", "create", "ups-a", "--algorithm", "least-connections")
    assert u["algorithm"] == "least-connections"
    assert ctl.json("upstream", "get", "ups-a")["id"] == u["id"]
    assert ctl.json("upstream", "update", "ups-a", "slots=100")["slots"] == 100
    assert ctl.json("upstream", "upsert", "ups-b")["name"] == "ups-b"
    assert {"ups-a", "ups-b"} <= {x["name"] for x in ctl.json("upstream", "list")}
    t = ctl.json("target", "create", "127.0.0.1:7001", "--upstream", "ups-a", "--weight", "50")
    assert t["target"] == "127.0.0.1:7001" and t["weight"] == 50
    t2 = ctl.json("target", "create", "--target", "127.0.0.1:7002", "--upstream", "ups-a")
    assert t2["weight"] == 100
    assert ctl.json("target", "get", "127.0.0.1:7001", "--upstream", "ups-a")["id"] == t["id"]
    assert ctl.json("target", "update", t["id"], "--upstream", "ups-a", "--weight", "7")["weight"] == 7
    assert ctl.json("target", "upsert", "127.0.0.1:7002", "--upstream", "ups-a",
                    "weight=3")["weight"] == 3
    lst = ctl.json("target", "list", "--upstream", "ups-a")
    assert sorted(x["target"] for x in lst) == ["127.0.0.1:7001", "127.0.0.1:7002"]
    r = ctl.run("target", "list", expect=2)
    assert "needs --upstream" in r.stderr
    ctl.run("target", "delete", "127.0.0.1:7001", "--upstream", "ups-a")
    assert [x["target"] for x in ctl.json("target", "list", "--upstream", "ups-a")] == ["127.0.0.1:7002"]
    ctl.run("upstream", "delete", "ups-a")
    ctl.run("upstream", "delete", "ups-b")


def test_credential_verbs(ctl, tmp_path):
    ctl.json("consumer", "create", "cred-user")
    # jwt
    j = ctl.json("jwt", "create", "--consumer", "cred-user", "--key", "k-1", "--secret", "s-1")
    assert j["key"] == "k-1" and j["secret"] == "s-1" and j["algorithm"] == "HS256"
    assert ctl.json("jwt", "get", "k-1", "--consumer", "cred-user")["id"] == j["id"]
    assert ctl.json("jwt", "get", j["id"])["key"] == "k-1"
    assert ctl.json("jwt", "update", "k-1", "--consumer", "cred-user", "--algorithm",
                    "HS512")["algorithm"] == "HS512"
    assert ctl.json("jwt", "upsert", "k-2", "--consumer", "cred-user")["key"] == "k-2"
    assert sorted(x["key"] for x in ctl.json("jwt", "list", "--consumer", "cred-user")) == ["k-1", "k-2"]
    assert {"k-1", "k-2"} <= {x["key"] for x in ctl.json("jwt", "list")}
    ctl.run("jwt", "delete", "k-2", "--consumer", "cred-user")
    r = ctl.run("jwt", "create", "--algorithm", "HS256", expect=2)
    assert "needs --consumer" in r.stderr
    # an RS256 credential with its public key from a file
    pem = tmp_path / "pub.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(tmp_path / "priv.pem"), "2048"],
                   check=True, capture_output=True, timeout=60)
    subprocess.run(["openssl", "rsa", "-in", str(tmp_path / "priv.pem"), "-pubout", "-out",
                    str(pem)], check=True, capture_output=True, timeout=60)
    rs = ctl.json("jwt", "create", "--consumer", "cred-user", "--algorithm", "RS256",
                  "--rsa-public-key", str(pem))
    assert rs["algorithm"] == "RS256" and "PUBLIC KEY" in rs["rsa_public_key"]
    # key-auth
    k = ctl.json("key-auth", "create", "--consumer", "cred-user", "--key", "apikey-1")
    assert k["key"] == "apikey-1"
    assert ctl.json("key-auth", "get", "apikey-1", "--consumer", "cred-user")["id"] == k["id"]
    assert ctl.json("key-auth", "update", k["id"], "--consumer", "cred-user", "--tags",
                    "a")["tags"] == ["a"]
    assert ctl.json("key-auth", "upsert", "apikey-2", "--consumer", "cred-user")["key"] == "apikey-2"
    assert len(ctl.json("key-auth", "list", "--consumer", "cred-user")) == 2
    ctl.run("key-auth", "delete", "apikey-2", "--consumer", "cred-user")
    # basic-auth
    b = ctl.json("basic-auth", "create", "alice", "--consumer", "cred-user", "--password", "pw")
    assert b["username"] == "alice" and b["password"] != "pw"
    assert ctl.json("basic-auth", "get", "alice", "--consumer", "cred-user")["id"] == b["id"]
    assert ctl.json("basic-auth", "update", "alice", "--consumer", "cred-user", "--password",
                    "pw2")["id"] == b["id"]
    assert ctl.json("basic-auth", "upsert", "alice2", "--consumer", "cred-user",
                    "password=x")["username"] == "alice2"
    assert sorted(x["username"] for x in ctl.json("basic-auth", "list", "--consumer",
                                                   "cred-user")) == ["alice", "alice2"]
    ctl.run("basic-auth", "delete", "alice2", "--consumer", "cred-user")
    # acl
    a = ctl.json("acl", "create", "--consumer", "cred-user", "--group", "g1")
    assert a["group"] == "g1"
    ctl.json("acl", "add", "g2", "--consumer", "cred-user")
    assert ctl.json("acl", "get", "g1", "--consumer", "cred-user")["id"] == a["id"]
    assert ctl.json("acl", "update", "g1", "--consumer", "cred-user", "--tags", "t")["tags"] == ["t"]
    assert ctl.json("acl", "upsert", "g3", "--consumer", "cred-user")["group"] == "g3"
    assert sorted(x["group"] for x in ctl.json("acl", "list", "--consumer", "cred-user")) == [
        "g1", "g2", "g3"]
    ctl.run("acl", "remove", "g2", "--consumer", "cred-user")
    ctl.run("acl", "delete", "g3", "--consumer", "cred-user")
    assert [x["group"] for x in ctl.json("acl", "list", "--consumer", "cred-user")] == ["g1"]
    # oauth2
    o = ctl.json("oauth2", "create", "app", "--consumer", "cred-user", "--redirect-uris",
                 "https://a.test/cb,https://b.test/cb")
    assert o["name"] == "app" and o["redirect_uris"] == ["https://a.test/cb", "https://b.test/cb"]
    assert o["client_id"] and o["client_secret"]
    assert ctl.json("oauth2", "get", o["client_id"], "--consumer", "cred-user")["id"] == o["id"]
    assert ctl.json("oauth2", "update", o["client_id"], "--consumer", "cred-user", "--name",
                    "app2")["name"] == "app2"
    up = ctl.json("oauth2", "upsert", "cid-2", "--consumer", "cred-user", "--name", "app3")
    assert up["client_id"] == "cid-2"
    assert len(ctl.json("oauth2", "list", "--consumer", "cred-user")) == 2
    ctl.run("oauth2", "delete", "cid-2", "--consumer", "cred-user")
    assert len(ctl.json("oauth2", "list", "--consumer", "cred-user")) == 1
    ctl.run("consumer", "delete", "cred-user")


# ---- output ----

def test_output_formats(ctl):
    ctl.json("service", "create", "out-svc", "--url", "http://127.0.0.1:9/p", "--tags", "out")
    ctl.json("service", "create", "out-svc2", "--url", "http://127.0.0.1:9/q", "--tags", "out")
    table = ctl.run("service", "list", "--tags", "out", "-o", "table").stdout.splitlines()
    head = table[0].split()
    assert head[:6] == ["NAME", "ID", "PROTOCOL", "HOST", "PORT", "PATH"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"out-svc", "out-svc2"}
    assert rows["out-svc"][2:6] == ["http", "127.0.0.1", "9", "/p"]
    ids = ctl.run("service", "list", "--tags", "out", "-o", "ids").stdout.split()
    assert sorted(ids) == sorted(x["id"] for x in ctl.json("service", "list", "--tags", "out"))
    y = yaml.safe_load(ctl.run("service", "get", "out-svc", "-o", "yaml").stdout)
    assert y["name"] == "out-svc" and y["path"] == "/p"
    one = ctl.run("service", "get", "out-svc", "-o", "table").stdout
    fields = dict(line.split(None, 1) for line in one.splitlines() if len(line.split(None, 1)) == 2)
    assert fields["name"] == "out-svc" and fields["port"] == "9"
    # Credentials' secrets are not columns of a table.
    ctl.json("consumer", "create", "out-cons")
    ctl.json("key-auth", "create", "--consumer", "out-cons", "--key", "very-secret-key")
    t = ctl.run("key-auth", "list", "--consumer", "out-cons", "-o", "table").stdout
    assert "very-secret-key" not in t and "ID" in t
    assert ctl.run("service", "list", "--tags", "none-such", "-o", "table").stdout.strip() == "(none)"


# ---- errors ----

def test_field_errors_and_not_found(ctl):
    r = ctl.run("service", "create", "bad-url", "--url", "not a url", expect=1)
    assert "answered 400" in r.stderr and "field errors:" in r.stderr
    assert "  host: required field missing" in r.stderr.splitlines()
    r = ctl.run("service", "create", "bad-port", "--host", "127.0.0.1", "port=99999", expect=1)
    assert "port:" in r.stderr and "field errors" in r.stderr
    r = ctl.run("plugin", "enable", "rate-limiting", "config.minute=lots", expect=1)
    assert "config.minute" in r.stderr
    r = ctl.run("service", "get", "no-such-service", expect=1)
    assert "404" in r.stderr and "Not found" in r.stderr
    r = ctl.run("route", "create", "--service", "no-such-service", "--paths", "/x", expect=1)
    assert "404" in r.stderr
    r = ctl.run("jwt", "list", "--consumer", "nobody-here", expect=1)
    assert "404" in r.stderr


def test_usage_errors(ctl):
    r = ctl.run("servce", "list", expect=2)
    assert "did you mean 'service'" in r.stderr
    r = ctl.run("service", "lst", expect=2)
    assert "did you mean 'service list'" in r.stderr
    r = ctl.run("route", "create", "--pathz", "/x", expect=2)
    assert "did you mean --paths" in r.stderr
    r = ctl.run("service", "create", "x", "=v", expect=2)
    assert "not a key=value pair" in r.stderr
    r = ctl.run("service", "create", "a", "b", expect=2)
    assert "unexpected argument 'b'" in r.stderr
    r = ctl.run("service", "get", expect=2)
    assert "name the service" in r.stderr
    r = ctl.run("service", "update", "x", expect=2)
    assert "nothing to change" in r.stderr
    r = ctl.run("service", "create", "x", "--url", "http://a", "url=http://b", expect=2)
    assert "both as a flag" in r.stderr
    r = ctl.run("certificate", "create", "--cert", "/nonexistent.pem", expect=2)
    assert "cannot read '/nonexistent.pem'" in r.stderr
    r = ctl.run("key-auth", "create", expect=2)
    assert "needs --consumer" in r.stderr
    h = ctl.run("route", "create", "--help").stdout
    assert "--paths PATH[,PATH]" in h and "Example: aigwctl route create" in h


def test_admin_down_exits_3(ctl):
    (port,) = free_ports(1)
    r = ctl.run("--admin-url", f"http://{LOCAL}:{port}", "service", "list", expect=3)
    assert "cannot reach the admin API" in r.stderr
    r = ctl.run("service", "create", "x", env={"AIGW_ADMIN_URL": f"http://{LOCAL}:{port}"},
                expect=3)
    assert "cannot reach" in r.stderr


def _run_on_tty(ctl, *args, env=None):
    """Runs aigwctl with stdout on a pseudo-terminal; returns (exit code, what it printed)."""
    import pty
    import select
    master, slave = pty.openpty()
    e = dict(ctl.env)
    e.update(env or {})
    p = subprocess.Popen([aigwctl_bin(), *args], env=e, stdout=slave, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                d = os.read(master, 65536)
            except OSError:
                break
            if not d:
                break
            out += d
        elif p.poll() is not None:
            break
    os.close(master)
    rc = p.wait(timeout=10)
    err = p.stderr.read().decode()
    p.stderr.close()
    assert "Sanitizer" not in err, err
    return rc, out.decode().replace("\r\n", "\n")


def test_table_on_a_terminal(ctl):
    ctl.json("consumer", "create", "tty-cons", "--tags", "tty")
    ctl.json("acl", "add", "--consumer", "tty-cons", "--group", "g-tty")
    rc, out = _run_on_tty(ctl, "consumer", "list", "--tags", "tty")
    assert rc == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["USERNAME", "ID", "CUSTOM_ID", "TAGS"]
    assert lines[1].split()[0] == "tty-cons" and "\x1b[" not in out  # NO_COLOR
    rc, out = _run_on_tty(ctl, "acl", "list", "--consumer", "tty-cons", env={"NO_COLOR": ""})
    assert rc == 0 and "\x1b[1m" in out  # bold header on a terminal
    plain = out.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert plain.strip().splitlines()[0].split() == ["GROUP", "ID", "CONSUMER", "TAGS"]
    rc, out = _run_on_tty(ctl, "acl", "remove", "g-tty", "--consumer", "tty-cons")
    assert rc == 0 and out.strip() == "deleted acl g-tty"
    ctl.run("consumer", "delete", "tty-cons")


def test_list_follows_every_page(gw, ctl):
    from aigwtest import session
    with session() as s:
        for i in range(1003):
            r = s.post(gw.admin_url + "/consumers", data={"username": f"page-{i:04d}",
                                                         "tags[]": "paged"}, timeout=10)
            assert r.status_code == 201, r.text
    got = ctl.json("consumer", "list", "--tags", "paged")
    assert sorted(x["username"] for x in got) == [f"page-{i:04d}" for i in range(1003)]
    ids = ctl.run("consumer", "list", "--tags", "paged", "-o", "ids").stdout.split()
    assert len(set(ids)) == 1003
