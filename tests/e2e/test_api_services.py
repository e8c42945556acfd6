"""Admin API: /services (Kong 3.9 spec/02-integration/04-admin_api/10-services_routes_spec.lua,
admin-api.md §2-§4, §6). Every test runs on SQLite and on PostgreSQL."""
import urllib.parse
import uuid

import pytest

from apitest import (PROTOCOLS_MSG, assert_json_ct, gw, is_int, q,  # noqa: F401
                     schema_violation, uniq)

SERVICE_FIELDS = {"id", "created_at", "updated_at", "name", "retries", "protocol", "host", "port",
                  "path", "connect_timeout", "write_timeout", "read_timeout", "tags",
                  "client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates",
                  "enabled"}


def _body(kind, fields):
    """kwargs for requests: the same input as JSON, form or multipart."""
    if kind == "json":
        return {"json": fields}
    items = [(k, str(v)) for k, v in fields.items()]
    if kind == "form":
        return {"data": items}
    return {"files": [(k, (None, v)) for k, v in items]}


KINDS = ["form", "multipart", "json"]


@pytest.mark.parametrize("kind", KINDS)
def test_create_service_defaults(gw, kind):
    r = gw.post("/services", **_body(kind, {"protocol": "http", "host": "service.test"}))
    assert r.status_code == 201, r.text
    assert_json_ct(r)
    j = r.json()
    assert set(j) == SERVICE_FIELDS, set(j) ^ SERVICE_FIELDS
    assert isinstance(j["id"], str) and len(j["id"]) == 36
    assert is_int(j["created_at"]) and is_int(j["updated_at"])
    assert j["name"] is None
    assert j["protocol"] == "http"
    assert j["host"] == "service.test"
    assert j["port"] == 80
    assert j["path"] is None
    assert j["retries"] == 5
    assert j["connect_timeout"] == 60000
    assert j["write_timeout"] == 60000
    assert j["read_timeout"] == 60000
    assert j["enabled"] is True
    for k in ("tags", "client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates"):
        assert j[k] is None, k


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("url,proto,host,port,path", [
    ("http://service.test/", "http", "service.test", 80, "/"),
    ("https://service.test/", "https", "service.test", 443, "/"),
    ("http://ai-orchestrator:5000", "http", "ai-orchestrator", 5000, None),
    ("https://example.test:8443/some/path", "https", "example.test", 8443, "/some/path"),
])
def test_create_service_with_url(gw, kind, url, proto, host, port, path):
    r = gw.post("/services", **_body(kind, {"url": url}))
    assert r.status_code == 201, r.text
    j = r.json()
    assert (j["protocol"], j["host"], j["port"], j["path"]) == (proto, host, port, path)
    assert "url" not in j
    assert set(j) == SERVICE_FIELDS


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("url", ["", " "])
def test_create_service_empty_or_blank_url_400(gw, kind, url):
    r = gw.post("/services", **_body(kind, {"url": url}))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_create_service_invalid_url(gw, kind):
    r = gw.post("/services", **_body(kind, {"url": "invalid url"}))
    assert r.status_code == 400, r.text
    assert r.json() == schema_violation(
        {"host": "required field missing", "path": "should start with: /"},
        "2 schema violations (host: required field missing; path: should start with: /)")


@pytest.mark.parametrize("ctype", ["application/json", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=xYzZY", None])
def test_create_service_missing_host(gw, ctype):
    if ctype == "application/json":
        r = gw.post("/services", json={})
    elif ctype is None:
        r = gw.raw("POST", "/services")  # no Content-Type, no body: empty input
    elif ctype.startswith("multipart"):
        r = gw.raw("POST", "/services", headers={"Content-Type": ctype},
                   body=b"--xYzZY--\r\n")
    else:
        r = gw.raw("POST", "/services", headers={"Content-Type": ctype, "Content-Length": "0"})
    assert r.status_code == 400, r.text
    assert_json_ct(r)
    assert r.json() == schema_violation({"host": "required field missing"},
                                        "schema violation (host: required field missing)")


@pytest.mark.parametrize("kind", KINDS)
def test_create_service_bad_protocol(gw, kind):
    r = gw.post("/services", **_body(kind, {"host": "example.test", "protocol": "foo"}))
    assert r.status_code == 400
    assert r.json() == schema_violation({"protocol": PROTOCOLS_MSG},
                                        f"schema violation (protocol: {PROTOCOLS_MSG})")


def test_json_is_not_coerced(gw):
    r = gw.post("/services", json={"host": "example.test", "retries": "5"})
    assert r.status_code == 400
    assert r.json() == schema_violation({"retries": "expected an integer"},
                                        "schema violation (retries: expected an integer)")


def test_form_is_coerced(gw):
    r = gw.post("/services", data=[("host", "example.test"), ("retries", "7"),
                                   ("connect_timeout", "1234")])
    assert r.status_code == 201, r.text
    assert r.json()["retries"] == 7
    assert r.json()["connect_timeout"] == 1234


def test_form_non_numeric_integer(gw):
    r = gw.post("/services", data=[("host", "example.test"), ("connect_timeout", "abc")])
    assert r.status_code == 400
    assert r.json() == schema_violation(
        {"connect_timeout": "expected an integer"},
        "schema violation (connect_timeout: expected an integer)")


def test_unknown_field(gw):
    r = gw.post("/services", json={"host": "example.test", "foo": "bar"})
    assert r.status_code == 400
    assert r.json() == schema_violation({"foo": "unknown field"},
                                        "schema violation (foo: unknown field)")


def test_wrong_types(gw):
    r = gw.post("/services", json={"host": 42, "port": "x", "enabled": "yes"})
    assert r.status_code == 400
    j = r.json()
    assert j["code"] == 2 and j["name"] == "schema violation"
    assert j["fields"] == {"host": "expected a string", "port": "expected an integer",
                           "enabled": "expected a boolean"}
    assert j["message"] == ("3 schema violations (enabled: expected a boolean; "
                            "host: expected a string; port: expected an integer)")


def test_port_out_of_range(gw):
    r = gw.post("/services", json={"host": "example.test", "port": 65536})
    assert r.status_code == 400
    assert r.json()["fields"] == {"port": "value should be between 0 and 65535"}


def test_path_must_start_with_slash(gw):
    r = gw.post("/services", json={"host": "example.test", "path": "abc"})
    assert r.status_code == 400
    assert r.json()["fields"] == {"path": "should start with: /"}


def test_malformed_json(gw):
    r = gw.post("/services", data='{"hello": "world"',
                headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert_json_ct(r)
    assert r.text == '{"message":"Cannot parse JSON body"}' or r.json() == {
        "message": "Cannot parse JSON body"}


def test_unique_name_409(gw):
    name = uniq("svc")
    gw.create("/services", {"name": name, "host": "a.test"})
    r = gw.post("/services", json={"name": name, "host": "b.test"})
    assert r.status_code == 409
    assert r.json() == {"code": 5, "name": "unique constraint violation",
                        "message": f"UNIQUE violation detected on '{{name=\"{name}\"}}'",
                        "fields": {"name": name}}


def test_invalid_name(gw):
    r = gw.post("/services", json={"name": "has space", "host": "a.test"})
    assert r.status_code == 400
    j = r.json()
    assert j["code"] == 2
    assert j["fields"] == {"name": "invalid value 'has space': the only accepted ascii "
                                   "characters are alphanumerics or ., -, _, and ~"}


def test_get_by_id_and_name(gw):
    name = uniq("svc")
    s = gw.create("/services", {"name": name, "host": "a.test"})
    for key in (s["id"], name):
        r = gw.get(f"/services/{key}")
        assert r.status_code == 200
        assert_json_ct(r)
        assert r.json() == s


def test_get_utf8_name(gw):
    s = gw.create("/services", {"name": "円" + uuid.uuid4().hex[:6], "host": "a.test"})
    r = gw.get("/services/" + q(s["name"]))
    assert r.status_code == 200, r.text
    assert r.json() == s


def test_get_missing_404(gw):
    for key in (str(uuid.uuid4()), "not-found-" + uuid.uuid4().hex[:6]):
        r = gw.get(f"/services/{key}")
        assert r.status_code == 404
        assert_json_ct(r)
        assert r.json() == {"message": "Not found"}


def test_get_ignores_invalid_body(gw):
    s = gw.create("/services", {"host": "a.test"})
    r = gw.get(f"/services/{s['id']}", data="this fails if decoded as json",
               headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    r = gw.get("/services", data="this fails if decoded as json",
               headers={"Content-Type": "application/json"})
    assert r.status_code == 200


def test_trailing_slash(gw):
    name = uniq("svc")
    s = gw.create("/services", {"name": name, "host": "a.test"})
    assert gw.get("/services/").status_code == 200
    r = gw.get(f"/services/{name}/")
    assert r.status_code == 200
    assert r.json()["id"] == s["id"]


@pytest.mark.parametrize("kind", ["form", "json"])
def test_patch_by_id(gw, kind):
    s = gw.create("/services", {"name": uniq("svc"), "host": "a.test", "retries": 3})
    if kind == "json":
        r = gw.patch(f"/services/{s['id']}", json={"name": None, "protocol": "https"})
    else:
        r = gw.patch(f"/services/{s['id']}", data=[("name", ""), ("protocol", "https")])
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["name"] is None
    assert j["protocol"] == "https"
    assert j["id"] == s["id"]
    assert j["retries"] == 3 and j["host"] == "a.test"  # untouched fields kept
    assert j["created_at"] == s["created_at"]
    assert gw.get(f"/services/{s['id']}").json() == j


def test_patch_by_name(gw):
    name = uniq("svc")
    s = gw.create("/services", {"name": name, "host": "a.test"})
    r = gw.patch(f"/services/{name}", data=[("protocol", "https")])
    assert r.status_code == 200
    j = r.json()
    assert (j["protocol"], j["id"], j["name"]) == ("https", s["id"], name)


def test_patch_with_url(gw):
    s = gw.create("/services", {"host": "a.test", "path": "/x"})
    r = gw.patch(f"/services/{s['id']}", json={"url": "http://example.test:443"})
    j = r.json()
    assert r.status_code == 200
    assert (j["protocol"], j["host"], j["port"], j["path"]) == ("http", "example.test", 443, None)
    r = gw.patch(f"/services/{s['id']}", json={"url": "https://example2.test:80/"})
    j = r.json()
    assert (j["protocol"], j["host"], j["port"], j["path"]) == ("https", "example2.test", 80, "/")
    r = gw.patch(f"/services/{s['id']}", json={"url": "http://example2.test"})
    j = r.json()
    assert (j["protocol"], j["host"], j["port"], j["path"]) == ("http", "example2.test", 80, None)


def test_patch_missing_404(gw):
    u = str(uuid.uuid4())
    r = gw.patch(f"/services/{u}", json={"host": "x.test"})
    assert r.status_code == 404
    assert r.json() == {"code": 6, "name": "not found",
                        "message": f"could not find the entity with primary key '{{id=\"{u}\"}}'",
                        "fields": {"id": u}}
    r = gw.patch("/services/no-such-svc-zz", json={"host": "x.test"})
    assert r.status_code == 404
    assert r.json() == {"code": 6, "name": "not found",
                        "message": "could not find the entity with '{name=\"no-such-svc-zz\"}'",
                        "fields": {"name": "no-such-svc-zz"}}


def test_patch_invalid_keeps_entity(gw):
    s = gw.create("/services", {"host": "a.test"})
    r = gw.patch(f"/services/{s['id']}", json={"retries": "x"})
    assert r.status_code == 400
    assert r.json()["fields"] == {"retries": "expected an integer"}
    assert gw.get(f"/services/{s['id']}").json() == s


def test_put_creates_by_id_and_replaces(gw):
    u = str(uuid.uuid4())
    r = gw.put(f"/services/{u}", json={"host": "a.test", "retries": 2, "path": "/p"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["id"] == u and j["retries"] == 2 and j["path"] == "/p"
    assert gw.get(f"/services/{u}").status_code == 200
    # replace: omitted fields go back to defaults / null
    r = gw.put(f"/services/{u}", json={"host": "b.test"})
    assert r.status_code == 200
    j = r.json()
    assert j["id"] == u and j["host"] == "b.test"
    assert j["retries"] == 5 and j["path"] is None


def test_put_by_name(gw):
    name = uniq("svc")
    r = gw.put(f"/services/{name}", data=[("host", "a.test")])
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["name"] == name and j["host"] == "a.test"
    sid = j["id"]
    r = gw.put(f"/services/{name}", json={"host": "b.test", "port": 8080})
    assert r.status_code == 200
    j = r.json()
    assert j["id"] == sid and j["name"] == name and (j["host"], j["port"]) == ("b.test", 8080)


def test_put_invalid(gw):
    r = gw.put(f"/services/{uuid.uuid4()}", json={})
    assert r.status_code == 400
    assert r.json() == schema_violation({"host": "required field missing"},
                                        "schema violation (host: required field missing)")


def test_delete(gw):
    name = uniq("svc")
    s = gw.create("/services", {"name": name, "host": "a.test"})
    r = gw.delete(f"/services/{s['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert gw.get(f"/services/{s['id']}").status_code == 404
    s = gw.create("/services", {"name": name, "host": "a.test"})
    assert gw.delete(f"/services/{name}").status_code == 204
    assert gw.get(f"/services/{name}").status_code == 404


def test_delete_missing_204(gw):
    assert gw.delete(f"/services/{uuid.uuid4()}").status_code == 204
    assert gw.delete("/services/not-found-xyz").status_code == 204


def test_delete_service_with_routes_400(gw):
    name = uniq("svc")
    s = gw.create("/services", {"name": name, "host": "a.test"})
    gw.create(f"/services/{name}/routes", {"paths": ["/" + name]})
    r = gw.delete(f"/services/{name}")
    assert r.status_code == 400
    assert r.json() == {"code": 4, "name": "foreign key violation",
                        "message": "an existing 'routes' entity references this 'services' entity",
                        "fields": {"@referenced_by": "routes"}}
    assert gw.get(f"/services/{s['id']}").status_code == 200


def test_delete_service_cascades_plugins(gw):
    name = uniq("svc")
    gw.create("/services", {"name": name, "host": "a.test"})
    p = gw.create(f"/services/{name}/plugins", {"name": "key-auth"})
    assert gw.delete(f"/services/{name}").status_code == 204
    assert gw.get(f"/plugins/{p['id']}").status_code == 404


def test_collection_405(gw):
    for m in ("DELETE", "PUT", "PATCH"):
        r = gw.request(m, "/services", json={})
        assert r.status_code == 405, m
        assert r.json() == {"message": "Method not allowed"}


def test_paging(gw):
    tag = uniq("pg")
    ids = set()
    for i in range(10):
        ids.add(gw.create("/services", {"host": f"h{i}.test", "tags": [tag]})["id"])
    seen = []
    offset = None
    for i in range(4):
        params = {"size": 3, "tags": tag}
        if offset:
            params["offset"] = offset
        r = gw.get("/services", params=params)
        assert r.status_code == 200, r.text
        j = r.json()
        assert len(j["data"]) == (3 if i < 3 else 1)
        seen += [d["id"] for d in j["data"]]
        if i < 3:
            assert isinstance(j["offset"], str) and j["offset"]
            nxt = j["next"]
            assert nxt.startswith("/services?offset="), nxt
            assert nxt.endswith(f"&tags={tag}&size=3"), nxt
            off = nxt[len("/services?offset="):-len(f"&tags={tag}&size=3")]
            assert urllib.parse.unquote(off) == j["offset"]
            offset = j["offset"]
        else:
            assert "offset" not in j
            assert j["next"] is None
    assert len(seen) == 10 and set(seen) == ids


def test_paging_follow_next(gw):
    tag = uniq("pg")
    for i in range(5):
        gw.create("/services", {"host": f"h{i}.test", "tags": [tag]})
    url = f"/services?tags={tag}&size=2"
    n = 0
    rows = []
    while url:
        j = gw.get(url).json()
        rows += j["data"]
        url = j["next"]
        n += 1
    assert n == 3 and len(rows) == 5


def test_paging_errors(gw):
    r = gw.get("/services?size=0")
    assert r.status_code == 400
    assert r.json() == {"code": 9, "name": "invalid size",
                        "message": "size must be an integer between 1 and 1000"}
    r = gw.get("/services?size=1001")
    assert r.status_code == 400
    assert r.json() == {"code": 9, "name": "invalid size",
                        "message": "size must be an integer between 1 and 1000"}
    r = gw.get("/services?size=x")
    assert r.status_code == 400
    assert r.json() == {"code": 9, "name": "invalid size", "message": "size must be a number"}
    assert gw.get("/services?size=1000").status_code == 200
    r = gw.get("/services?offset=x")
    assert r.status_code == 400
    assert r.json() == {"code": 7, "name": "invalid offset",
                        "message": "'x' is not a valid offset: bad base64 encoding"}
    r = gw.get("/services", params={"offset": "|potato|"})
    assert r.status_code == 400
    j = r.json()
    assert (j["code"], j["name"]) == (7, "invalid offset")


def test_empty_list_shape(gw):
    r = gw.get("/services?tags=" + uniq("none"))
    assert r.status_code == 200
    assert '"data":[]' in r.text.replace(" ", "")
    assert r.json() == {"data": [], "next": None}


def test_nested_routes_and_reverse_service(gw):
    name = uniq("svc")
    s = gw.create("/services", {"name": name, "host": "a.test"})
    other = gw.create("/routes", {"hosts": ["other.test"]})
    rt = gw.create(f"/services/{name}/routes", {"paths": ["/n"]})
    assert rt["service"] == {"id": s["id"]}
    r = gw.get(f"/services/{s['id']}/routes")
    assert r.status_code == 200
    assert r.json() == {"data": [rt], "next": None}
    assert gw.get(f"/services/{name}/routes/{rt['id']}").json() == rt
    # the other route does not belong to this service
    assert gw.get(f"/services/{name}/routes/{other['id']}").status_code == 404
    # /routes/{r}/service
    r = gw.get(f"/routes/{rt['id']}/service")
    assert r.status_code == 200 and r.json() == s
    r = gw.patch(f"/routes/{rt['id']}/service", json={"retries": 9})
    assert r.status_code == 200 and r.json()["retries"] == 9
    r = gw.delete(f"/routes/{rt['id']}/service")
    assert r.status_code == 405
    assert r.json() == {"message": "Method not allowed"}
    assert gw.delete(f"/routes/{uuid.uuid4()}/service").status_code == 404
    assert gw.delete("/routes/in-existent-route/service").status_code == 404
    assert gw.get(f"/routes/{other['id']}/service").status_code == 404


def test_nested_unknown_parent_404(gw):
    r = gw.get(f"/services/{uuid.uuid4()}/routes")
    assert r.status_code == 404 and r.json() == {"message": "Not found"}
    r = gw.post("/services/no-such-service-q/routes", json={"paths": ["/x"]})
    assert r.status_code == 404 and r.json() == {"message": "Not found"}


def test_nested_delete_missing_child_404(gw):
    name = uniq("svc")
    gw.create("/services", {"name": name, "host": "a.test"})
    r = gw.delete(f"/services/{name}/routes/{uuid.uuid4()}")
    assert r.status_code == 404


def test_tls_fields_only_with_https(gw):
    r = gw.post("/services", json={"host": "a.test", "protocol": "http", "tls_verify": True})
    assert r.status_code == 400
    r = gw.post("/services", json={"host": "a.test", "protocol": "https", "tls_verify": True,
                                   "tls_verify_depth": 3})
    assert r.status_code == 201, r.text
    assert r.json()["tls_verify"] is True and r.json()["tls_verify_depth"] == 3


def test_headers(gw):
    r = gw.get("/services")
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    assert r.headers.get("Server", "").lower().startswith(("kong/", "aigw"))
    assert "X-Kong-Admin-Latency" in r.headers
