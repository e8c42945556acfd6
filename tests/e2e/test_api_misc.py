"""Admin API: certificates + snis, ca_certificates, upstreams + targets, tags, /tags,
/endpoints, /schemas, /schemas/{entity}/validate, generic transport rules (admin-api.md §1,
§4, §6, §8; Kong 3.9 specs 02-kong_routes, 06-certificates, 07-upstreams, 08-targets, 14-tags,
16-ca_certificates). Every test runs on SQLite and on PostgreSQL."""
import uuid
from pathlib import Path

import pytest

from aigwtest import make_self_signed
from apitest import assert_json_ct, gw, is_int, q, schema_violation, uniq  # noqa: F401


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    d = tmp_path_factory.mktemp("pem")
    c, k = make_self_signed(d / "a", cn="a.test")
    c2, k2 = make_self_signed(d / "b", cn="b.test")
    return {"cert": Path(c).read_text(), "key": Path(k).read_text(),
            "cert2": Path(c2).read_text(), "key2": Path(k2).read_text()}


# ---- certificates / snis

def test_certificates(gw, pem):
    sni = uniq("s") + ".test"
    r = gw.post("/certificates", json={"cert": pem["cert"], "key": pem["key"], "snis": [sni]})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["cert"] == pem["cert"] and c["key"] == pem["key"]
    assert c["snis"] == [sni]
    assert c["cert_alt"] is None and c["key_alt"] is None and c["tags"] is None
    assert is_int(c["created_at"])
    assert gw.get(f"/certificates/{c['id']}").json()["snis"] == [sni]
    r = gw.get(f"/snis/{sni}")
    assert r.status_code == 200
    s = r.json()
    assert s["name"] == sni and s["certificate"] == {"id": c["id"]}
    r = gw.get(f"/certificates/{c['id']}/snis")
    assert [x["name"] for x in r.json()["data"]] == [sni]
    sni2 = uniq("s") + ".test"
    r = gw.post(f"/certificates/{c['id']}/snis", data=[("name", sni2)])
    assert r.status_code == 201, r.text
    assert r.json()["certificate"] == {"id": c["id"]}
    r = gw.post("/snis", json={"name": sni2, "certificate": {"id": c["id"]}})
    assert r.status_code == 409
    assert r.json()["message"] == f"UNIQUE violation detected on '{{name=\"{sni2}\"}}'"
    r = gw.post("/snis", json={"name": uniq("z") + ".test"})
    assert r.status_code == 400
    assert r.json()["fields"] == {"certificate": "required field missing"}
    # mismatched key
    r = gw.post("/certificates", json={"cert": pem["cert"], "key": pem["key2"]})
    assert r.status_code == 400
    assert r.json()["code"] == 2
    r = gw.post("/certificates", json={"cert": "garbage", "key": pem["key"]})
    assert r.status_code == 400
    r = gw.post("/certificates", json={"key": pem["key"]})
    assert r.status_code == 400
    assert r.json()["fields"]["cert"] == "required field missing"
    # deleting the certificate removes its snis
    assert gw.delete(f"/certificates/{c['id']}").status_code == 204
    assert gw.get(f"/snis/{sni}").status_code == 404
    assert gw.delete(f"/certificates/{uuid.uuid4()}").status_code == 204


def test_certificate_sni_ip_rejected(gw, pem):
    r = gw.post("/schemas/certificates/validate",
                json={"cert": pem["cert"], "key": pem["key"], "snis": ["120.0.9.32:90"]})
    assert r.status_code == 400
    assert r.json() == schema_violation({"snis": ["must not be an IP"]},
                                        "schema violation (snis.1: must not be an IP)")
    r = gw.post("/schemas/certificates/validate",
                json={"cert": pem["cert"], "key": pem["key"], "snis": ["a", "b", "c"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "schema validation successful"}


def test_ca_certificates(gw, pem):
    r = gw.post("/ca_certificates", json={"cert": pem["cert"]})
    assert r.status_code == 201, r.text
    ca = r.json()
    assert ca["cert"] == pem["cert"]
    assert isinstance(ca["cert_digest"], str) and len(ca["cert_digest"]) == 64
    r = gw.post("/ca_certificates", json={"cert": pem["cert"]})
    assert r.status_code == 409
    assert gw.get(f"/ca_certificates/{ca['id']}").json() == ca
    r = gw.post("/ca_certificates", json={})
    assert r.status_code == 400
    assert r.json()["fields"] == {"cert": "required field missing"}
    # a service can reference it
    r = gw.post("/services", json={"url": "https://x.test", "ca_certificates": [ca["id"]]})
    assert r.status_code == 201, r.text
    assert r.json()["ca_certificates"] == [ca["id"]]
    assert gw.delete(f"/services/{r.json()['id']}").status_code == 204
    assert gw.delete(f"/ca_certificates/{ca['id']}").status_code == 204


# ---- upstreams / targets

def test_upstreams_defaults(gw):
    name = uniq("up") + ".test"
    r = gw.post("/upstreams", data=[("name", name)])
    assert r.status_code == 201, r.text
    u = r.json()
    assert u["name"] == name
    assert u["algorithm"] == "round-robin"
    assert u["hash_on"] == "none" and u["hash_fallback"] == "none"
    assert u["hash_on_cookie_path"] == "/"
    assert u["slots"] == 10000
    assert u["use_srv_name"] is False
    hc = u["healthchecks"]
    assert hc["threshold"] == 0
    a = hc["active"]
    assert a["type"] == "http" and a["timeout"] == 1 and a["concurrency"] == 10
    assert a["http_path"] == "/" and a["https_verify_certificate"] is True
    assert a["healthy"] == {"interval": 0, "http_statuses": [200, 302], "successes": 0}
    assert a["unhealthy"]["http_statuses"] == [429, 404, 500, 501, 502, 503, 504, 505]
    assert a["unhealthy"]["interval"] == 0 and a["unhealthy"]["tcp_failures"] == 0
    p = hc["passive"]
    assert p["type"] == "http"
    assert p["unhealthy"]["http_statuses"] == [429, 500, 503]
    assert p["healthy"]["http_statuses"] == [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                             300, 301, 302, 303, 304, 305, 306, 307, 308]
    r = gw.post("/upstreams", json={"name": name})
    assert r.status_code == 409
    r = gw.post("/upstreams", json={"name": name + "x", "slots": 5})
    assert r.status_code == 400
    assert r.json()["fields"] == {"slots": "value should be between 10 and 65536"}
    r = gw.post("/upstreams", json={})
    assert r.status_code == 400
    assert r.json()["fields"] == {"name": "required field missing"}
    assert gw.get(f"/upstreams/{name}").json()["id"] == u["id"]
    r = gw.patch(f"/upstreams/{name}", json={"algorithm": "least-connections"})
    assert r.status_code == 200 and r.json()["algorithm"] == "least-connections"


def test_targets(gw):
    name = uniq("up")
    u = gw.create("/upstreams", {"name": name})
    r = gw.post(f"/upstreams/{name}/targets", data=[("target", "10.0.0.1")])
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["target"] == "10.0.0.1:8000"
    assert t["weight"] == 100
    assert t["upstream"] == {"id": u["id"]}
    assert isinstance(t["created_at"], (int, float))
    t2 = gw.create(f"/upstreams/{u['id']}/targets", {"target": "10.0.0.2:9000", "weight": 5})
    assert t2["weight"] == 5
    r = gw.post(f"/upstreams/{name}/targets", json={"target": "10.0.0.3", "weight": 70000})
    assert r.status_code == 400
    assert r.json()["fields"] == {"weight": "value should be between 0 and 65535"}
    ids = sorted(x["id"] for x in gw.get(f"/upstreams/{name}/targets").json()["data"])
    assert ids == sorted([t["id"], t2["id"]])
    r = gw.get(f"/upstreams/{name}/targets/{t['id']}")
    assert r.status_code == 200 and r.json()["id"] == t["id"]
    r = gw.patch(f"/upstreams/{name}/targets/{t['id']}", json={"weight": 1})
    assert r.status_code == 200 and r.json()["weight"] == 1
    # top-level /targets is not exposed
    assert gw.get("/targets").status_code in (404, 405)
    assert gw.delete(f"/upstreams/{name}/targets/{t2['id']}").status_code == 204
    assert gw.delete(f"/upstreams/{name}/targets/{uuid.uuid4()}").status_code == 404
    # deleting the upstream removes its targets
    assert gw.delete(f"/upstreams/{name}").status_code == 204
    assert gw.get(f"/upstreams/{name}").status_code == 404


# ---- tags

@pytest.fixture(scope="module")
def tagged(gw):
    base = uniq("tg")
    a, b, both = f"{base}-a", f"{base}-b", f"{base}-corp"
    c1 = gw.create("/consumers", {"username": base + "-1", "tags": [both, a, "🦍"]})
    c2 = gw.create("/consumers", {"username": base + "-2", "tags": [both, b, "🦍"]})
    p1 = gw.create(f"/consumers/{c1['id']}/plugins",
                   {"name": "file-log", "config": {"path": "/tmp/x.log"}, "tags": [both, a]})
    p2 = gw.create(f"/consumers/{c2['id']}/plugins",
                   {"name": "file-log", "config": {"path": "/tmp/y.log"}, "tags": [both, b]})
    return {"a": a, "b": b, "both": both, "c1": c1, "c2": c2, "p1": p1, "p2": p2}


def test_tags_filter(gw, tagged):
    t = tagged
    ids = lambda r: sorted(x["id"] for x in r.json()["data"])  # noqa: E731
    r = gw.get(f"/consumers?tags={t['both']}")
    assert r.status_code == 200
    assert ids(r) == sorted([t["c1"]["id"], t["c2"]["id"]])
    assert gw.get(f"/consumers?tags={t['both']},{t['a']}").json()["data"] == [t["c1"]]
    r = gw.get(f"/consumers?tags={t['a']}/{t['b']}")
    assert ids(r) == sorted([t["c1"]["id"], t["c2"]["id"]])
    assert gw.get(f"/plugins?tags={t['b']}").json()["data"] == [t["p2"]]
    # tags on a nested collection are ignored
    r = gw.get(f"/consumers/{t['c1']['id']}/plugins?tags={t['b']}")
    assert r.status_code == 200 and ids(r) == [t["p1"]["id"]]
    r = gw.get("/consumers", params={"tags": "🦍"})
    assert r.status_code == 200
    assert {t["c1"]["id"], t["c2"]["id"]} <= {x["id"] for x in r.json()["data"]}
    assert gw.get("/consumers?tags=''").json()["data"] == []


def test_tags_filter_errors(gw):
    for path in (f"/consumers?tags=a,b/c", "/consumers?tags=a/b,c", "/services?tags=%FF"):
        r = gw.get(path)
        assert r.status_code == 400, path
        assert r.json() == {"code": 11, "name": "invalid options",
                            "message": "invalid option (tags: invalid filter syntax)",
                            "options": {"tags": "invalid filter syntax"}}, path
    r = gw.get("/services?tags=")
    assert r.status_code == 400
    assert r.json()["message"] == "invalid option (tags: cannot be null)"


def test_tags_next_carries_tags(gw, tagged):
    r = gw.get(f"/consumers?tags={tagged['both']}&size=1")
    j = r.json()
    assert len(j["data"]) == 1
    assert f"&tags={tagged['both']}" in j["next"] and j["next"].endswith("&size=1")


def test_invalid_tag_values(gw):
    r = gw.post("/services", json={"host": "a.test", "tags": ["a,b"]})
    assert r.status_code == 400
    assert r.json()["fields"] == {"tags": ["invalid tag 'a,b': expected printable ascii "
                                           "(except `,` and `/`) or valid utf-8 sequences"]}
    r = gw.post("/services", json={"host": "a.test", "tags": "x"})
    assert r.status_code == 400
    assert r.json()["fields"] == {"tags": "expected a set"}


def test_tags_endpoint(gw, tagged):
    t = tagged
    r = gw.get("/tags?size=1000")
    assert r.status_code == 200
    rows = r.json()["data"]
    for row in rows:
        assert set(row) == {"tag", "entity_name", "entity_id"}
    r = gw.get(f"/tags/{t['both']}")
    assert r.status_code == 200
    rows = r.json()["data"]
    got = sorted((x["entity_name"], x["entity_id"]) for x in rows)
    want = sorted([("consumers", t["c1"]["id"]), ("consumers", t["c2"]["id"]),
                   ("plugins", t["p1"]["id"]), ("plugins", t["p2"]["id"])])
    assert got == want
    assert all(x["tag"] == t["both"] for x in rows)
    # ?tags= is ignored on /tags/{tag}
    assert len(gw.get(f"/tags/{t['both']}?tags=not_a_tag").json()["data"]) == 4
    r = gw.get("/tags/does-not-exist-" + uuid.uuid4().hex[:6])
    assert r.status_code == 200 and r.json() == {"data": [], "next": None}
    r = gw.get("/tags/%FF")
    assert r.status_code == 400
    assert "invalid utf-8" in r.json()["message"]
    r = gw.get(f"/tags/{t['both']}?size=1")
    j = r.json()
    assert len(j["data"]) == 1 and j["next"].startswith(f"/tags/{t['both']}?offset=")


# ---- /endpoints, /schemas

def test_endpoints(gw):
    r = gw.get("/endpoints")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data == sorted(data)
    for ep in ("/plugins", "/services", "/services/{services}/routes",
               "/consumers/{consumers}/jwt", "/basic-auths/{basicauth_credentials}",
               "/routes/{routes}", "/consumers/{consumers}/acls", "/upstreams/{upstreams}/targets",
               "/certificates/{certificates}/snis", "/tags", "/plugins/enabled",
               "/metrics"):
        assert ep in data, ep


@pytest.mark.parametrize("entity", ["services", "routes", "consumers", "plugins", "upstreams",
                                    "targets", "certificates", "snis", "ca_certificates",
                                    "jwt_secrets", "keyauth_credentials",
                                    "basicauth_credentials", "acls", "oauth2_credentials"])
def test_schemas_entity(gw, entity):
    r = gw.get(f"/schemas/{entity}")
    assert r.status_code == 200, r.text
    j = r.json()
    assert isinstance(j["fields"], list)
    assert isinstance(j.get("entity_checks", []), list)
    for f in j["fields"]:
        assert isinstance(f, dict) and len(f) == 1


def test_schemas_services_content(gw):
    j = gw.get("/schemas/services").json()
    fields = {list(f)[0]: list(f.values())[0] for f in j["fields"]}
    assert fields["retries"]["default"] == 5 and fields["retries"]["type"] == "integer"
    assert fields["host"]["required"] is True
    assert fields["port"]["default"] == 80
    assert fields["protocol"]["default"] == "http"
    j = gw.get("/schemas/routes").json()
    for f in j["fields"]:
        if "service" in f:
            assert "schema" not in f["service"]


def test_schemas_unknown(gw):
    r = gw.get("/schemas/not-present")
    assert r.status_code == 404
    assert r.json() == {"message": "No entity named 'not-present'"}


def test_schemas_validate(gw):
    r = gw.post("/schemas/services/validate", json={"host": "example.com"})
    assert r.status_code == 200
    assert r.json() == {"message": "schema validation successful"}
    r = gw.post("/schemas/services/validate", json={})
    assert r.status_code == 400
    assert r.json() == schema_violation({"host": "required field missing"},
                                        "schema violation (host: required field missing)")
    r = gw.post("/schemas/consumers/validate", data=[("username", "x")])
    assert r.status_code == 200
    # nothing is stored
    assert gw.get("/consumers/x").status_code == 404


# ---- transport rules

def test_unknown_path_and_method(gw):
    r = gw.get("/no-such-collection")
    assert r.status_code == 404 and r.json() == {"message": "Not found"}
    r = gw.request("PATCH", "/plugins/enabled")
    assert r.status_code == 405 and r.json() == {"message": "Method not allowed"}
    for path in ("/services/x", "/consumers/x"):
        r = gw.request("POST", path, json={})
        assert r.status_code == 405, path
        assert r.json() == {"message": "Method not allowed"}


def test_head_and_options(gw):
    r = gw.request("HEAD", "/services")
    assert r.status_code == 200 and r.content == b""
    r = gw.options("/services/x")
    assert r.status_code == 204
    assert r.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    r = gw.options("/")
    assert r.status_code == 204 and r.headers["Allow"] == "GET, HEAD, OPTIONS"
    r = gw.options("/consumers", headers={"Access-Control-Request-Headers": "X-Foo"})
    assert r.headers["Access-Control-Allow-Headers"] == "X-Foo"


def test_415_and_json_errors(gw):
    r = gw.raw("POST", "/upstreams", headers={"Content-Type": "text/plain"}, body=b"name=x")
    assert r.status_code == 415
    r = gw.raw("PUT", "/upstreams/x", headers={"Content-Type": "application/xml"}, body=b"<a/>")
    assert r.status_code == 415
    r = gw.raw("POST", "/upstreams", headers={"Content-Type": "application/json"}, body=b"[1,")
    assert r.status_code == 400 and r.json() == {"message": "Cannot parse JSON body"}


def test_too_many_arguments(gw):
    body = "&".join(f"a{i}=1" for i in range(1001))
    r = gw.post("/consumers", data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert r.json() == {"message": "Too many arguments"}
