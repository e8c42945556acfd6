"""Admin API: credentials of the bundled auth plugins (jwt, key-auth, basic-auth, acls, oauth2),
nested under /consumers/{c}/... and top-level (/jwts, /key-auths, /basic-auths, /acls, /oauth2);
admin-api.md §4, §7, differences.md (basic-auth password stored as an Argon2id/PBKDF2 hash)."""
import re
import uuid

import pytest

from apitest import assert_json_ct, gw, is_int, schema_violation, uniq  # noqa: F401

AUTO_RE = re.compile(r"^[A-Za-z0-9]+$")

# (nested path, top-level path, endpoint key field, minimal body, field set)
CREDS = [
    ("jwt", "jwts", "key", {}, {"id", "created_at", "consumer", "key", "secret",
                               "rsa_public_key", "algorithm", "tags"}),
    ("key-auth", "key-auths", "key", {}, {"id", "created_at", "consumer", "key", "tags"}),
    ("basic-auth", "basic-auths", "username", None, {"id", "created_at", "consumer", "username",
                                                     "password", "tags"}),
    ("acls", "acls", "group", None, {"id", "created_at", "consumer", "group", "tags"}),
    ("oauth2", "oauth2", "client_id", {"name": "app"},
     {"id", "created_at", "consumer", "name", "client_id", "client_secret", "hash_secret",
      "redirect_uris", "tags", "client_type"}),
]


def _consumer(gw):
    name = uniq("user")
    return gw.create("/consumers", {"username": name})


def _min_body(nested, body):
    if body is not None:
        return dict(body)
    if nested == "basic-auth":
        return {"username": uniq("ba"), "password": "s3cret-pw"}
    return {"group": uniq("grp")}


@pytest.mark.parametrize("nested,top,key,body,fields", CREDS, ids=[c[0] for c in CREDS])
def test_crud_nested_and_top_level(gw, nested, top, key, body, fields):
    c = _consumer(gw)
    cn = c["username"]
    r = gw.post(f"/consumers/{cn}/{nested}", json=_min_body(nested, body))
    assert r.status_code == 201, r.text
    assert_json_ct(r)
    cred = r.json()
    assert set(cred) == fields, set(cred) ^ fields
    assert cred["consumer"] == {"id": c["id"]}
    assert is_int(cred["created_at"])
    assert "updated_at" not in cred
    # nested GET by id and by endpoint key
    for k in (cred["id"], cred[key]):
        r = gw.get(f"/consumers/{cn}/{nested}/{k}")
        assert r.status_code == 200, (k, r.text)
        assert r.json()["id"] == cred["id"]
    # nested list
    r = gw.get(f"/consumers/{c['id']}/{nested}")
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["data"]] == [cred["id"]]
    assert r.json()["next"] is None
    # top-level
    r = gw.get(f"/{top}/{cred['id']}")
    assert r.status_code == 200 and r.json()["id"] == cred["id"]
    r = gw.get(f"/{top}")
    assert r.status_code == 200 and isinstance(r.json()["data"], list)
    r = gw.get(f"/{top}/{cred['id']}/consumer")
    assert r.status_code == 200 and r.json() == c
    # another consumer does not see it
    other = _consumer(gw)
    assert gw.get(f"/consumers/{other['username']}/{nested}/{cred['id']}").status_code == 404
    assert gw.delete(f"/consumers/{other['username']}/{nested}/{cred['id']}").status_code == 404
    # PATCH nested
    r = gw.patch(f"/consumers/{cn}/{nested}/{cred['id']}", json={"tags": ["t1"]})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["t1"]
    # unknown consumer
    r = gw.get(f"/consumers/no-such-consumer-x/{nested}")
    assert r.status_code == 404 and r.json() == {"message": "Not found"}
    r = gw.post(f"/consumers/no-such-consumer-x/{nested}", json=_min_body(nested, body))
    assert r.status_code == 404 and r.json() == {"message": "Not found"}
    # nested DELETE of a missing child: 404; existing: 204
    assert gw.delete(f"/consumers/{cn}/{nested}/{uuid.uuid4()}").status_code == 404
    r = gw.delete(f"/consumers/{cn}/{nested}/{cred['id']}")
    assert r.status_code == 204 and r.content == b""
    assert gw.get(f"/{top}/{cred['id']}").status_code == 404
    # top-level DELETE of a missing one: 204
    assert gw.delete(f"/{top}/{uuid.uuid4()}").status_code == 204


@pytest.mark.parametrize("top", ["jwts", "key-auths", "basic-auths", "acls", "oauth2"])
def test_top_level_post_needs_consumer(gw, top):
    body = {"jwts": {}, "key-auths": {}, "basic-auths": {"username": uniq("u"), "password": "p"},
            "acls": {"group": "g"}, "oauth2": {"name": "n"}}[top]
    r = gw.post(f"/{top}", json=body)
    assert r.status_code == 400, r.text
    assert r.json() == schema_violation({"consumer": "required field missing"},
                                        "schema violation (consumer: required field missing)")
    c = _consumer(gw)
    body["consumer"] = {"id": c["id"]}
    r = gw.post(f"/{top}", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["consumer"] == {"id": c["id"]}


def test_jwt_no_body_generates_key_and_secret(gw):
    c = _consumer(gw)
    # curl -X POST with no data: no Content-Type, no body
    r = gw.curl("POST", f"/consumers/{c['username']}/jwt")
    assert r.status_code == 201, r.text
    j = r.json()
    assert isinstance(j["key"], str) and AUTO_RE.match(j["key"])
    assert isinstance(j["secret"], str) and AUTO_RE.match(j["secret"])
    assert j["algorithm"] == "HS256"
    assert j["rsa_public_key"] is None
    j2 = gw.create(f"/consumers/{c['id']}/jwt", {})
    assert j2["key"] != j["key"] and j2["secret"] != j["secret"]
    # by key, nested and top-level
    assert gw.get(f"/consumers/{c['username']}/jwt/{j['key']}").json()["id"] == j["id"]
    assert gw.get(f"/jwts/{j['key']}").json()["id"] == j["id"]
    assert gw.get(f"/jwts/{j['key']}").json()["secret"] == j["secret"]


def test_jwt_given_secret_and_errors(gw):
    c = _consumer(gw)
    r = gw.post(f"/consumers/{c['username']}/jwt",
                data=[("algorithm", "HS256"), ("secret", "supersecretkey")])
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["secret"] == "supersecretkey" and j["algorithm"] == "HS256"
    r = gw.post(f"/consumers/{c['username']}/jwt", json={"key": j["key"]})
    assert r.status_code == 409
    assert r.json() == {"code": 5, "name": "unique constraint violation",
                        "message": f"UNIQUE violation detected on '{{key=\"{j['key']}\"}}'",
                        "fields": {"key": j["key"]}}
    r = gw.post(f"/consumers/{c['username']}/jwt", json={"algorithm": "RS256"})
    assert r.status_code == 400
    assert r.json()["fields"] == {
        "rsa_public_key": "required field missing",
        "@entity": ["failed conditional validation given value of field 'algorithm'"]}
    r = gw.post(f"/consumers/{c['username']}/jwt", json={"algorithm": "XX999"})
    assert r.status_code == 400
    assert r.json()["fields"] == {"algorithm": "expected one of: HS256, HS384, HS512, RS256, "
                                               "RS384, RS512, ES256, ES384, ES512, PS256, "
                                               "PS384, PS512, EdDSA"}


def test_key_auth(gw):
    c = _consumer(gw)
    k = gw.create(f"/consumers/{c['username']}/key-auth", {})
    assert AUTO_RE.match(k["key"])
    given = "my-key-" + uuid.uuid4().hex
    r = gw.post(f"/consumers/{c['username']}/key-auth", data=[("key", given)])
    assert r.status_code == 201 and r.json()["key"] == given
    r = gw.post(f"/consumers/{c['username']}/key-auth", data=[("key", given)])
    assert r.status_code == 409
    assert r.json()["message"] == f"UNIQUE violation detected on '{{key=\"{given}\"}}'"
    assert gw.get(f"/key-auths/{given}").json()["key"] == given
    r = gw.put(f"/consumers/{c['username']}/key-auth/{given}", json={"tags": ["x"]})
    assert r.status_code == 200 and r.json()["key"] == given and r.json()["tags"] == ["x"]


def test_basic_auth_password_never_in_clear(gw):
    c = _consumer(gw)
    user = uniq("ba")
    pw = "Clear-Text-Pw-123"
    r = gw.post(f"/consumers/{c['username']}/basic-auth",
                data=[("username", user), ("password", pw)])
    assert r.status_code == 201, r.text
    assert pw not in r.text
    j = r.json()
    assert j["username"] == user
    assert isinstance(j["password"], str) and j["password"] and j["password"] != pw
    # a salted modern hash, not Kong's bare sha1 hex
    assert not re.fullmatch(r"[0-9a-f]{40}", j["password"])
    for path in (f"/basic-auths/{j['id']}", f"/basic-auths/{user}",
                 f"/consumers/{c['username']}/basic-auth/{user}", "/basic-auths?size=1000",
                 f"/consumers/{c['id']}/basic-auth"):
        r = gw.get(path)
        assert r.status_code == 200, path
        assert pw not in r.text, path
    # updating the password re-hashes it
    r = gw.patch(f"/basic-auths/{j['id']}", json={"password": "Another-Pw-456"})
    assert r.status_code == 200
    assert "Another-Pw-456" not in r.text and r.json()["password"] != j["password"]
    # required fields and uniqueness
    r = gw.post(f"/consumers/{c['username']}/basic-auth", json={"username": uniq("u")})
    assert r.status_code == 400
    assert r.json()["fields"] == {"password": "required field missing"}
    r = gw.post(f"/consumers/{c['username']}/basic-auth", json={"username": user,
                                                               "password": "x"})
    assert r.status_code == 409
    assert r.json()["message"] == f"UNIQUE violation detected on '{{username=\"{user}\"}}'"


def test_acls_by_group(gw):
    c = _consumer(gw)
    cn = c["username"]
    r = gw.curl("POST", f"/consumers/{cn}/acls", "group=ai-operator")
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["group"] == "ai-operator" and a["consumer"] == {"id": c["id"]}
    r = gw.get(f"/consumers/{cn}/acls/ai-operator")
    assert r.status_code == 200 and r.json()["id"] == a["id"]
    r = gw.patch(f"/consumers/{cn}/acls/ai-operator", json={"tags": ["t"]})
    assert r.status_code == 200 and r.json()["tags"] == ["t"]
    # PUT creates a missing group
    r = gw.put(f"/consumers/{cn}/acls/ai-admin", json={})
    assert r.status_code == 200, r.text
    assert r.json()["group"] == "ai-admin"
    groups = sorted(x["group"] for x in gw.get(f"/consumers/{cn}/acls").json()["data"])
    assert groups == ["ai-admin", "ai-operator"]
    # a group the consumer does not have
    assert gw.get(f"/consumers/{cn}/acls/nope").status_code == 404
    assert gw.patch(f"/consumers/{cn}/acls/nope", json={"tags": ["t"]}).status_code == 404
    assert gw.delete(f"/consumers/{cn}/acls/nope").status_code == 404
    other = _consumer(gw)
    assert gw.get(f"/consumers/{other['username']}/acls/ai-operator").status_code == 404
    assert gw.delete(f"/consumers/{cn}/acls/ai-operator").status_code == 204
    r = gw.post(f"/consumers/{cn}/acls", json={})
    assert r.status_code == 400
    assert r.json() == schema_violation({"group": "required field missing"},
                                        "schema violation (group: required field missing)")


def test_oauth2(gw):
    c = _consumer(gw)
    cn = c["username"]
    r = gw.post(f"/consumers/{cn}/oauth2",
                data=[("name", "my-app"), ("redirect_uris[]", "https://app.test/cb")])
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["name"] == "my-app"
    assert AUTO_RE.match(o["client_id"]) and AUTO_RE.match(o["client_secret"])
    assert o["hash_secret"] is False
    assert o["client_type"] == "confidential"
    assert o["redirect_uris"] == ["https://app.test/cb"]
    assert gw.get(f"/oauth2/{o['client_id']}").json()["id"] == o["id"]
    r = gw.post(f"/consumers/{cn}/oauth2", json={"name": "x", "redirect_uris": ["not-valid"]})
    assert r.status_code == 400
    assert r.json()["fields"] == {"redirect_uris": ["cannot parse 'not-valid'"]}
    r = gw.post(f"/consumers/{cn}/oauth2",
                json={"name": "x", "redirect_uris": ["http://a.test/#frag"]})
    assert r.status_code == 400
    assert r.json()["fields"] == {"redirect_uris": ["fragment not allowed in "
                                                    "'http://a.test/#frag'"]}
    r = gw.post(f"/consumers/{cn}/oauth2", json={})
    assert r.status_code == 400
    assert r.json()["fields"] == {"name": "required field missing"}


def test_credentials_tags(gw):
    c = _consumer(gw)
    tag = uniq("ct")
    k = gw.create(f"/consumers/{c['id']}/key-auth", {"tags": [tag]})
    r = gw.get(f"/key-auths?tags={tag}")
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["data"]] == [k["id"]]


def test_oauth2_hash_secret(gw):
    """hash_secret=true: the client secret is kept only as a hash (Kong hashes it too)."""
    c = gw.post("/consumers", json={"username": "hs-" + uuid.uuid4().hex[:8]}).json()
    r = gw.post(f"/consumers/{c['id']}/oauth2",
                json={"name": "app", "client_secret": "plain-secret", "hash_secret": True})
    assert r.status_code == 201, r.text
    assert r.json()["client_secret"] != "plain-secret"
    assert r.json()["client_secret"].startswith("$argon2id$")
    r = gw.post(f"/consumers/{c['id']}/oauth2", json={"name": "app2", "client_secret": "kept"})
    assert r.status_code == 201 and r.json()["client_secret"] == "kept"
