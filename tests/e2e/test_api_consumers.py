"""Admin API: /consumers (Kong 3.9 spec/02-integration/04-admin_api/03-consumers_routes_spec.lua,
admin-api.md §4, §6). Every test runs on SQLite and on PostgreSQL."""
import uuid

import pytest

from apitest import assert_json_ct, gw, is_int, q, schema_violation, uniq  # noqa: F401

AT_LEAST = "at least one of these fields must be non-empty: 'custom_id', 'username'"
CONSUMER_FIELDS = {"id", "created_at", "updated_at", "username", "custom_id", "tags"}


@pytest.mark.parametrize("kind", ["form", "multipart", "json"])
def test_create(gw, kind):
    name = uniq("user")
    if kind == "json":
        r = gw.post("/consumers", json={"username": name})
    elif kind == "form":
        r = gw.post("/consumers", data=[("username", name)])
    else:
        r = gw.post("/consumers", files=[("username", (None, name))])
    assert r.status_code == 201, r.text
    assert_json_ct(r)
    j = r.json()
    assert set(j) == CONSUMER_FIELDS
    assert j["username"] == name and j["custom_id"] is None and j["tags"] is None
    assert is_int(j["created_at"]) and isinstance(j["id"], str)


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=b0", None, "json"])
def test_invalid_input(gw, ctype):
    if ctype == "json":
        r = gw.post("/consumers", json={})
    elif ctype is None:
        r = gw.raw("POST", "/consumers")
    elif ctype.startswith("multipart"):
        r = gw.raw("POST", "/consumers", headers={"Content-Type": ctype}, body=b"--b0--\r\n")
    else:
        r = gw.raw("POST", "/consumers", headers={"Content-Type": ctype, "Content-Length": "0"})
    assert r.status_code == 400, r.text
    assert r.json() == {"code": 2, "name": "schema violation",
                        "message": f"schema violation ({AT_LEAST})",
                        "fields": {"@entity": [AT_LEAST]}}


def test_conflicts_409(gw):
    name, cid = uniq("user"), uniq("cid")
    gw.create("/consumers", {"username": name, "custom_id": cid})
    r = gw.post("/consumers", data=[("username", name)])
    assert r.status_code == 409
    assert r.json() == {"code": 5, "name": "unique constraint violation",
                        "message": f"UNIQUE violation detected on '{{username=\"{name}\"}}'",
                        "fields": {"username": name}}
    r = gw.post("/consumers", json={"username": uniq("tom"), "custom_id": cid})
    assert r.status_code == 409
    assert r.json() == {"code": 5, "name": "unique constraint violation",
                        "message": f"UNIQUE violation detected on '{{custom_id=\"{cid}\"}}'",
                        "fields": {"custom_id": cid}}


def test_id_conflict(gw):
    c = gw.create("/consumers", {"username": uniq("user")})
    r = gw.post("/consumers", json={"id": c["id"], "username": uniq("user")})
    # Kong (postgres strategy): a duplicate primary key is code 3, HTTP 400
    assert r.status_code == 400, r.text
    assert r.json() == {"code": 3, "name": "primary key violation",
                        "message": f"primary key violation on key '{{id=\"{c['id']}\"}}'",
                        "fields": {"id": c["id"]}}


def test_content_type_errors(gw):
    r = gw.raw("POST", "/consumers", headers={"Content-Type": "invalid"},
               body=b'{"hello": "world"}')
    assert r.status_code == 415
    r = gw.raw("POST", "/consumers", body=b"invalid")
    assert r.status_code == 415
    r = gw.raw("POST", "/consumers", headers={"Content-Type": "text/plain"}, body=b"username=x")
    assert r.status_code == 415
    r = gw.raw("POST", "/consumers", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"message": "Cannot parse JSON body"}
    r = gw.post("/consumers", data="username=charset-" + uuid.uuid4().hex[:6],
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert r.status_code == 201, r.text
    r = gw.post("/consumers", data='{"username":"cs-%s"}' % uuid.uuid4().hex[:6],
                headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


def test_collection_405(gw):
    for m in ("DELETE", "PATCH", "PUT"):
        r = gw.request(m, "/consumers", json={})
        assert r.status_code == 405
        assert r.json() == {"message": "Method not allowed"}


def test_custom_id_lookup(gw):
    cid = uniq("cid")
    c = gw.create("/consumers", {"custom_id": cid})
    r = gw.get("/consumers?custom_id=" + cid)
    assert r.status_code == 200
    assert r.json() == {"data": [c], "next": None}
    ucid = str(uuid.uuid4())
    c2 = gw.create("/consumers", {"custom_id": ucid})
    assert gw.get("/consumers?custom_id=" + ucid).json() == {"data": [c2], "next": None}
    r = gw.get("/consumers?custom_id=does-not-exist")
    assert r.status_code == 200
    assert '"data":[]' in r.text.replace(" ", "")
    assert r.json() == {"data": [], "next": None}
    for path in ("/consumers?custom_id=", "/consumers?custom_id"):
        r = gw.get(path)
        assert r.status_code == 400, path
        assert r.json() == {"message": "custom_id must be an unempty string"}


def test_empty_tags_filter(gw):
    r = gw.get("/consumers?tags=")
    assert r.status_code == 400
    assert r.json()["message"] == "invalid option (tags: cannot be null)"
    assert r.json()["code"] == 11


def test_get(gw):
    c = gw.create("/consumers", {"username": uniq("user"), "custom_id": uniq("c")})
    for key in (c["id"], c["username"], q(c["username"])):
        r = gw.get("/consumers/" + key)
        assert r.status_code == 200
        assert r.json() == c
    u = gw.create("/consumers", {"username": "円" + uuid.uuid4().hex[:4]})
    assert gw.get("/consumers/" + q(u["username"])).json() == u
    sp = gw.create("/consumers", {"username": "with space " + uuid.uuid4().hex[:4]})
    assert gw.get("/consumers/" + q(sp["username"])).json() == sp
    r = gw.get("/consumers/_inexistent_")
    assert r.status_code == 404 and r.json() == {"message": "Not found"}


@pytest.mark.parametrize("kind", ["form", "json"])
def test_patch(gw, kind):
    c = gw.create("/consumers", {"username": uniq("user"), "custom_id": uniq("c")})
    new = uniq("new")
    kw = {"json": {"username": new}} if kind == "json" else {"data": [("username", new)]}
    r = gw.patch(f"/consumers/{c['id']}", **kw)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["username"] == new and j["id"] == c["id"] and j["custom_id"] == c["custom_id"]
    assert j["updated_at"] >= c["updated_at"]
    assert gw.get(f"/consumers/{c['id']}").json() == j
    # by username, same values again
    r = gw.patch(f"/consumers/{new}", json={"username": new, "custom_id": c["custom_id"]})
    assert r.status_code == 200
    assert r.json()["username"] == new


def test_patch_errors(gw):
    r = gw.patch("/consumers/_inexistent_", json={"username": uniq("u")})
    assert r.status_code == 404
    assert r.json() == {"code": 6, "name": "not found",
                        "message": "could not find the entity with '{username=\"_inexistent_\"}'",
                        "fields": {"username": "_inexistent_"}}
    c = gw.create("/consumers", {"username": uniq("user")})
    r = gw.raw("PATCH", f"/consumers/{c['id']}", headers={"Content-Type": "invalid"},
               body=b'{"hello": "world"}')
    assert r.status_code == 415
    r = gw.raw("PATCH", f"/consumers/{c['id']}", body=b"invalid")
    assert r.status_code == 415
    r = gw.raw("PATCH", f"/consumers/{c['id']}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"message": "Cannot parse JSON body"}
    # clearing the only identifying field violates the entity check
    r = gw.patch(f"/consumers/{c['id']}", json={"username": None})
    assert r.status_code == 400
    assert r.json()["fields"] == {"@entity": [AT_LEAST]}


def test_put(gw):
    u = str(uuid.uuid4())
    cid = uniq("c")
    r = gw.put(f"/consumers/{u}", json={"custom_id": cid})
    assert r.status_code == 200
    assert r.json()["id"] == u and r.json()["custom_id"] == cid
    name = uniq("user")
    r = gw.put("/consumers/" + name, json={})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["username"] == name and j["custom_id"] is None
    r = gw.put("/consumers/" + name, data=[("custom_id", cid + "x")])
    assert r.status_code == 200
    assert r.json()["id"] == j["id"] and r.json()["custom_id"] == cid + "x"
    r = gw.put("/consumers/" + name, json={})
    assert r.json()["id"] == j["id"] and r.json()["custom_id"] is None
    # replace by id
    new = uniq("user")
    r = gw.put(f"/consumers/{j['id']}", json={"username": new})
    assert r.status_code == 200 and r.json()["username"] == new
    r = gw.put(f"/consumers/{uuid.uuid4()}", json={})
    assert r.status_code == 400
    assert r.json() == {"code": 2, "name": "schema violation",
                        "message": f"schema violation ({AT_LEAST})",
                        "fields": {"@entity": [AT_LEAST]}}
    r = gw.put(f"/consumers/{j['id']}", data='{"hello": "world"',
               headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"message": "Cannot parse JSON body"}


def test_delete(gw):
    c = gw.create("/consumers", {"username": uniq("user")})
    assert gw.delete(f"/consumers/{c['id']}").status_code == 204
    c = gw.create("/consumers", {"username": uniq("user")})
    r = gw.delete(f"/consumers/{c['username']}")
    assert r.status_code == 204 and r.content == b""
    assert gw.get(f"/consumers/{c['id']}").status_code == 404
    assert gw.delete(f"/consumers/{uuid.uuid4()}").status_code == 204
    assert gw.delete("/consumers/nobody-here-x").status_code == 204


def test_cascade_delete_credentials_and_plugins(gw):
    name = uniq("user")
    c = gw.create("/consumers", {"username": name})
    jwt = gw.create(f"/consumers/{name}/jwt", {})
    ka = gw.create(f"/consumers/{name}/key-auth", {})
    ba = gw.create(f"/consumers/{name}/basic-auth", {"username": uniq("ba"), "password": "pw"})
    acl = gw.create(f"/consumers/{name}/acls", {"group": "g1"})
    oa = gw.create(f"/consumers/{name}/oauth2", {"name": "app"})
    p = gw.create(f"/consumers/{name}/plugins", {"name": "rate-limiting",
                                                "config": {"minute": 10}})
    assert gw.delete(f"/consumers/{name}").status_code == 204
    assert gw.get(f"/consumers/{c['id']}").status_code == 404
    for path in (f"/jwts/{jwt['id']}", f"/key-auths/{ka['id']}", f"/basic-auths/{ba['id']}",
                 f"/acls/{acl['id']}", f"/oauth2/{oa['id']}", f"/plugins/{p['id']}"):
        assert gw.get(path).status_code == 404, path


def test_consumer_plugins(gw):
    name = uniq("user")
    c = gw.create("/consumers", {"username": name})
    r = gw.post(f"/consumers/{name}/plugins",
                data=[("name", "rate-limiting"), ("config.minute", "60")])
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["consumer"] == {"id": c["id"]}
    assert p["config"]["minute"] == 60
    r = gw.post(f"/consumers/{c['id']}/plugins",
                json={"name": "rate-limiting", "config": {"minute": 5}})
    assert r.status_code == 409
    assert r.json() == {
        "code": 5, "name": "unique constraint violation",
        "message": (f"UNIQUE violation detected on '{{consumer={{id=\"{c['id']}\"}},"
                    f"name=\"rate-limiting\",route=null,service=null}}'"),
        "fields": {"name": "rate-limiting", "consumer": {"id": c["id"]}, "route": None,
                   "service": None}}
    r = gw.post(f"/consumers/{c['id']}/plugins", json={})
    assert r.status_code == 400
    assert r.json() == schema_violation({"name": "required field missing"},
                                        "schema violation (name: required field missing)")
    r = gw.get(f"/consumers/{name}/plugins")
    assert r.status_code == 200 and r.json() == {"data": [p], "next": None}
    r = gw.get(f"/consumers/{name}/plugins", data="this fails if decoded as json",
               headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    r = gw.patch(f"/consumers/{name}/plugins/{p['id']}", json={"name": "foo"})
    assert r.status_code == 400
    assert r.json()["name"] == "schema violation"
    assert r.json()["fields"]["name"] == ("plugin 'foo' not enabled; add it to the 'plugins' "
                                          "configuration property")
    r = gw.patch(f"/consumers/{name}/plugins/{p['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert gw.get(f"/plugins/{p['id']}/consumer").json() == c
    r = gw.delete(f"/consumers/{name}/plugins/{uuid.uuid4()}")
    assert r.status_code == 404
    assert gw.delete(f"/consumers/{name}/plugins/{p['id']}").status_code == 204


def test_auth_plugins_cannot_be_scoped_to_consumer(gw):
    name = uniq("user")
    gw.create("/consumers", {"username": name})
    for plugin in ("jwt", "key-auth", "basic-auth", "acl", "oauth2", "cors"):
        body = {"name": plugin}
        if plugin == "acl":
            body["config"] = {"allow": ["a"]}
        if plugin == "oauth2":
            body["config"] = {"enable_client_credentials": True}
        r = gw.post(f"/consumers/{name}/plugins", json=body)
        assert r.status_code == 400, (plugin, r.text)
        assert r.json() == schema_violation({"consumer": "value must be null"},
                                            "schema violation (consumer: value must be null)"), \
            plugin


def test_username_filter(gw):
    name = "uf-" + uuid.uuid4().hex[:8]
    c = gw.post("/consumers", json={"username": name}).json()
    r = gw.get(f"/consumers?username={name}")
    assert r.status_code == 200 and r.json() == {"data": [c], "next": None}
    r = gw.get("/consumers?username=nobody-" + uuid.uuid4().hex[:6])
    assert r.json() == {"data": [], "next": None}
    r = gw.get("/consumers?username=")
    assert r.status_code == 400
    assert r.json() == {"message": "username must be an unempty string"}
