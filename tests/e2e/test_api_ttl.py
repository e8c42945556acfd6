"""Admin API: Kong's `ttl` option of key-auth credentials (entities with `ttl = true`), on both
stores: a credential created with ttl=N seconds is served with the seconds it has left and
disappears after them (GET 404, lists and /tags omit it, its key is free again, the proxy's
snapshot drops it); bad values are Kong's code 11 (kong/api/endpoints.lua extract_options,
kong/db/dao/init.lua validate_options_value); in DB-less documents `ttl` is an expiry time."""
import time

import requests

from aigwtest import wait_until
from apitest import gw, is_int, schema_violation, uniq  # noqa: F401

TTL_MSG = "must be an integer between 0 and 100000000"
TTL_ERR = {"code": 11, "name": "invalid options",
           "message": f"invalid option (ttl: {TTL_MSG})", "options": {"ttl": TTL_MSG}}


def _consumer(gw):
    return gw.create("/consumers", {"username": uniq("ttl-user")})


def _gone(gw, path, timeout=8):
    wait_until(lambda: gw.get(path).status_code == 404, timeout, interval=0.2,
               what=f"{path} to expire")


def test_expires_after_ttl(gw):
    c = _consumer(gw)
    cn = c["username"]
    tag = uniq("tag")
    r = gw.post(f"/consumers/{cn}/key-auth", json={"ttl": 2, "tags": [tag]})
    assert r.status_code == 201, r.text
    cred = r.json()
    assert cred["ttl"] in (1, 2) and is_int(cred["ttl"])
    assert cred["consumer"] == {"id": c["id"]} and isinstance(cred["key"], str)
    kid, key = cred["id"], cred["key"]
    # While alive: every read shows the whole seconds left.
    for path in (f"/consumers/{cn}/key-auth/{kid}", f"/key-auths/{kid}", f"/key-auths/{key}"):
        r = gw.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["id"] == kid and 0 <= r.json()["ttl"] <= 2
    rows = gw.get(f"/consumers/{cn}/key-auth").json()["data"]
    assert [x["id"] for x in rows] == [kid] and 0 <= rows[0]["ttl"] <= 2
    assert [x["entity_id"] for x in gw.get(f"/tags/{tag}").json()["data"]] == [kid]
    # Afterwards: gone from every read, within a few seconds.
    _gone(gw, f"/key-auths/{kid}")
    assert gw.get(f"/consumers/{cn}/key-auth/{kid}").status_code == 404
    assert gw.get(f"/key-auths/{key}").status_code == 404
    assert gw.get(f"/consumers/{cn}/key-auth").json()["data"] == []
    assert kid not in [x["id"] for x in gw.get("/key-auths?size=1000").json()["data"]]
    assert gw.get(f"/tags/{tag}").json()["data"] == []
    # PATCH of an expired credential: not found, as any missing entity.
    assert gw.patch(f"/key-auths/{kid}", json={"tags": ["x"]}).status_code == 404
    # Its key is free again (the row is not merely hidden).
    r = gw.post(f"/consumers/{cn}/key-auth", json={"key": key})
    assert r.status_code == 201, r.text
    assert "ttl" not in r.json()


def test_without_ttl_no_field_and_no_expiry(gw):
    c = _consumer(gw)
    r = gw.post(f"/consumers/{c['id']}/key-auth", json={})
    assert r.status_code == 201 and "ttl" not in r.json()
    r = gw.post(f"/consumers/{c['id']}/key-auth", json={"ttl": 0})
    assert r.status_code == 201 and "ttl" not in r.json()
    kid = r.json()["id"]
    r = gw.get(f"/key-auths/{kid}")
    assert r.status_code == 200 and "ttl" not in r.json()


def test_form_body_and_bad_values(gw):
    c = _consumer(gw)
    cn = c["username"]
    # curl --data ttl=30: the form value is a number to Kong (arguments.lua tonumber)
    r = gw.curl("POST", f"/consumers/{cn}/key-auth", "ttl=30")
    assert r.status_code == 201, r.text
    assert 29 <= r.json()["ttl"] <= 30
    for bad in (-1, 1.5, 100000001, "soon", True):
        r = gw.post(f"/consumers/{cn}/key-auth", json={"ttl": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json() == TTL_ERR, bad
    r = gw.curl("POST", "/key-auths", f"consumer.id={c['id']}", "ttl=-5")
    assert r.status_code == 400 and r.json() == TTL_ERR
    # Entities without `ttl = true` know no such field.
    r = gw.post("/consumers", json={"username": uniq("u"), "ttl": 10})
    assert r.status_code == 400
    assert r.json() == schema_violation({"ttl": "unknown field"},
                                        "schema violation (ttl: unknown field)")
    r = gw.post(f"/consumers/{cn}/basic-auth", json={"username": uniq("b"), "password": "pw",
                                                     "ttl": 10})
    assert r.status_code == 400 and r.json()["fields"] == {"ttl": "unknown field"}


def test_update_keeps_extends_or_clears(gw):
    c = _consumer(gw)
    r = gw.post(f"/consumers/{c['id']}/key-auth", json={"ttl": 100})
    kid = r.json()["id"]
    # PATCH without ttl keeps the expiry.
    r = gw.patch(f"/key-auths/{kid}", json={"tags": ["a"]})
    assert r.status_code == 200, r.text
    assert 98 <= r.json()["ttl"] <= 100
    assert 98 <= gw.get(f"/key-auths/{kid}").json()["ttl"] <= 100
    # PATCH with ttl starts a new one.
    r = gw.patch(f"/key-auths/{kid}", json={"ttl": 5000})
    assert r.status_code == 200 and 4998 <= r.json()["ttl"] <= 5000
    assert 4998 <= gw.get(f"/key-auths/{kid}").json()["ttl"] <= 5000
    # PATCH ttl=0 removes it.
    r = gw.patch(f"/key-auths/{kid}", json={"ttl": 0})
    assert r.status_code == 200 and "ttl" not in r.json()
    assert "ttl" not in gw.get(f"/key-auths/{kid}").json()
    # PUT replaces the whole entity: with ttl it expires, without it does not.
    r = gw.put(f"/key-auths/{kid}", json={"consumer": {"id": c["id"]}, "ttl": 60})
    assert r.status_code == 200, r.text
    assert 58 <= gw.get(f"/key-auths/{kid}").json()["ttl"] <= 60
    r = gw.put(f"/key-auths/{kid}", json={"consumer": {"id": c["id"]}})
    assert r.status_code == 200
    assert "ttl" not in gw.get(f"/key-auths/{kid}").json()


def test_snapshot_drops_expired(gw):
    """The proxy's configuration (GET /status configuration_hash) changes once the credential
    expires: the expired row is deleted, which publishes a new snapshot."""
    c = _consumer(gw)

    def conf_hash():
        return gw.get("/status").json()["configuration_hash"]

    r = gw.post(f"/consumers/{c['id']}/key-auth", json={"ttl": 4})
    assert r.status_code == 201
    kid = r.json()["id"]

    def settled():
        # The snapshot with the consumer and the new credential (published within a
        # second): the hash no longer moves.
        h = conf_hash()
        time.sleep(1.2)
        return h if conf_hash() == h else None

    h_alive = wait_until(settled, 6, what="a settled configuration")
    assert gw.get(f"/key-auths/{kid}").status_code == 200, "expired too early for this test"
    deadline = time.time() + 10
    # ... then one without it.
    while time.time() < deadline and conf_hash() == h_alive:
        time.sleep(0.2)
    assert conf_hash() != h_alive, "no new snapshot after the credential expired"
    assert gw.get(f"/key-auths/{kid}").status_code == 404


def test_dbless_ttl_is_an_expiry_time(aigw, tmp_path):
    now = int(time.time())
    doc = f"""_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials:
  - key: alive-key
    ttl: {now + 3600}
  - key: dead-key
    ttl: {now - 10}
  - key: plain-key
"""
    f = tmp_path / "kong.yml"
    f.write_text(doc)
    inst = aigw(env={"AIGW_DATABASE": "off", "AIGW_DECLARATIVE_CONFIG": str(f)})
    a = inst.admin_url
    r = requests.get(a + "/key-auths/alive-key", timeout=10)
    assert r.status_code == 200, r.text
    assert 3590 <= r.json()["ttl"] <= 3600
    assert requests.get(a + "/key-auths/dead-key", timeout=10).status_code == 404
    assert "ttl" not in requests.get(a + "/key-auths/plain-key", timeout=10).json()
    keys = sorted(x["key"] for x in requests.get(a + "/key-auths", timeout=10).json()["data"])
    assert keys == ["alive-key", "plain-key"]
    # GET /config writes the expiry time back, as `kong config db_export` does.
    cfg = requests.get(a + "/config", timeout=10).json()["config"]
    line = [ln for ln in cfg.splitlines() if "ttl:" in ln and "~" not in ln]
    assert len(line) == 1 and abs(int(line[0].split(":")[1]) - (now + 3600)) <= 2, cfg
    # POST /config: the same rules for a new document.
    r = requests.post(a + "/config", json={"_format_version": "3.0", "consumers": [
        {"username": "bob", "keyauth_credentials": [{"key": "k2", "ttl": now + 2}]}]},
        timeout=10)
    assert r.status_code == 201, r.text
    assert requests.get(a + "/key-auths/k2", timeout=10).json()["ttl"] <= 2
    wait_until(lambda: requests.get(a + "/key-auths/k2", timeout=10).status_code == 404, 8,
               interval=0.2, what="k2 to expire")
