"""Admin API: /plugins, nested plugins, /plugins/enabled, /schemas/plugins (Kong 3.9
spec/02-integration/04-admin_api/04-plugins_routes_spec.lua, admin-api.md §3, §6, §7, §8 and
differences.md: comma splitting of plugin name lists in form bodies, acl whitelist/blacklist)."""
import uuid

import pytest

from apitest import assert_json_ct, gw, is_int, schema_violation, uniq  # noqa: F401

NOT_ENABLED = "plugin '{}' not enabled; add it to the 'plugins' configuration property"
PLUGIN_FIELDS = {"id", "name", "instance_name", "created_at", "updated_at", "route", "service",
                 "consumer", "config", "protocols", "enabled", "tags"}
BUNDLED = ["acl", "basic-auth", "cors", "file-log", "http-log", "jwt", "key-auth", "oauth2",
           "rate-limiting"]


def _svc(gw):
    name = uniq("svc")
    return gw.create("/services", {"name": name, "host": "a.test"})


def test_plugins_enabled(gw):
    r = gw.get("/plugins/enabled")
    assert r.status_code == 200
    assert_json_ct(r)
    en = r.json()["enabled_plugins"]
    assert isinstance(en, list)
    for p in BUNDLED:
        assert p in en, p


def test_create_global_and_defaults(gw):
    s = _svc(gw)
    r = gw.post("/plugins", json={"name": "key-auth", "service": {"id": s["id"]}})
    assert r.status_code == 201, r.text
    j = r.json()
    assert set(j) == PLUGIN_FIELDS
    assert j["service"] == {"id": s["id"]} and j["route"] is None and j["consumer"] is None
    assert j["enabled"] is True and j["instance_name"] is None and j["tags"] is None
    assert j["protocols"] == ["grpc", "grpcs", "http", "https"]
    assert is_int(j["created_at"])
    c = j["config"]
    assert c["key_names"] == ["apikey"]
    assert c["hide_credentials"] is False
    assert c["key_in_header"] is True and c["key_in_query"] is True and c["key_in_body"] is False
    assert c["run_on_preflight"] is True
    assert c["anonymous"] is None and c["realm"] is None


def test_jwt_defaults(gw):
    s = _svc(gw)
    j = gw.create(f"/services/{s['name']}/plugins", {"name": "jwt"})
    c = j["config"]
    assert c["uri_param_names"] == ["jwt"]
    assert c["cookie_names"] == []
    assert c["header_names"] == ["authorization"]
    assert c["key_claim_name"] == "iss"
    assert c["secret_is_base64"] is False
    assert c["claims_to_verify"] is None
    assert c["anonymous"] is None
    assert c["run_on_preflight"] is True
    assert c["maximum_expiration"] == 0


def test_rate_limiting_form_coercion_and_defaults(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['name']}/plugins",
                data=[("name", "rate-limiting"), ("config.minute", "60"),
                      ("config.policy", "local")])
    assert r.status_code == 201, r.text
    c = r.json()["config"]
    assert c["minute"] == 60 and is_int(c["minute"]), c["minute"]
    assert c["policy"] == "local"
    assert c["limit_by"] == "consumer"
    assert c["fault_tolerant"] is True
    assert c["hide_client_headers"] is False
    assert c["error_code"] == 429
    assert c["error_message"] == "API rate limit exceeded"
    assert c["sync_rate"] == -1
    assert c["second"] is None and c["hour"] is None
    assert c["redis"]["port"] == 6379 and c["redis"]["timeout"] == 2000
    assert c["redis"]["database"] == 0


def test_json_config_not_coerced(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['name']}/plugins",
                json={"name": "rate-limiting", "config": {"minute": "60"}})
    assert r.status_code == 400
    assert r.json() == schema_violation({"config": {"minute": "expected a number"}},
                                        "schema violation (config.minute: expected a number)")


def test_rate_limiting_needs_a_limit(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['name']}/plugins", json={"name": "rate-limiting"})
    assert r.status_code == 400
    m = ("at least one of these fields must be non-empty: 'config.second', 'config.minute', "
         "'config.hour', 'config.day', 'config.month', 'config.year'")
    assert r.json() == {"code": 2, "name": "schema violation",
                        "message": f"schema violation ({m})", "fields": {"@entity": [m]}}


def test_unknown_plugin(gw):
    r = gw.post("/plugins", json={"name": "foo"})
    assert r.status_code == 400
    m = NOT_ENABLED.format("foo")
    assert r.json() == schema_violation({"name": m}, f"schema violation (name: {m})")
    r = gw.post("/plugins", data=[("name", "no-such-plugin")])
    assert r.status_code == 400
    assert r.json()["fields"] == {"name": NOT_ENABLED.format("no-such-plugin")}


def test_missing_name(gw):
    for kw in ({"json": {}}, {"data": [("enabled", "true")]}):
        r = gw.post("/plugins", **kw)
        assert r.status_code == 400
        assert r.json() == schema_violation({"name": "required field missing"},
                                            "schema violation (name: required field missing)")


def test_unknown_config_field(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['id']}/plugins", json={"name": "key-auth",
                                                     "config": {"keys": "foo"}})
    assert r.status_code == 400
    assert r.json() == schema_violation({"config": {"keys": "unknown field"}},
                                        "schema violation (config.keys: unknown field)")


def test_nested_service_plugins_and_409(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['name']}/plugins",
                data=[("name", "key-auth"), ("config.key_names[1]", "apikey"),
                      ("config.key_names[2]", "key")])
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["config"]["key_names"] == ["apikey", "key"]
    r = gw.post(f"/services/{s['id']}/plugins", json={"name": "basic-auth"})
    assert r.status_code == 201
    r = gw.post(f"/services/{s['id']}/plugins", data=[("name", "basic-auth")])
    assert r.status_code == 409
    assert r.json() == {
        "code": 5, "name": "unique constraint violation",
        "message": (f"UNIQUE violation detected on '{{consumer=null,name=\"basic-auth\","
                    f"route=null,service={{id=\"{s['id']}\"}}}}'"),
        "fields": {"consumer": None, "name": "basic-auth", "route": None,
                   "service": {"id": s["id"]}}}
    r = gw.get(f"/services/{s['id']}/plugins")
    assert r.status_code == 200
    assert len(r.json()["data"]) == 2
    r = gw.get(f"/services/{s['name']}/plugins/{p['id']}")
    assert r.status_code == 200 and r.json() == p
    r = gw.patch(f"/services/{s['id']}/plugins/{p['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = gw.patch(f"/services/{s['id']}/plugins/{p['id']}", json={"foo": "bar"})
    assert r.status_code == 400
    assert r.json() == schema_violation({"foo": "unknown field"},
                                        "schema violation (foo: unknown field)")
    assert gw.get(f"/plugins/{p['id']}").json()["config"]["key_names"] == ["apikey", "key"]
    r = gw.patch(f"/services/{s['id']}/plugins/{uuid.uuid4()}", json={"enabled": False})
    assert r.status_code == 404
    # removing the foreign key reference
    r = gw.patch(f"/services/{s['id']}/plugins/{p['id']}", json={"service": None})
    assert r.status_code == 200 and r.json()["service"] is None
    assert gw.get(f"/services/{s['id']}/plugins/{p['id']}").status_code == 404


def test_global_409(gw):
    r = gw.post("/plugins", json={"name": "cors"})
    assert r.status_code == 201, r.text
    p = r.json()
    try:
        r = gw.post("/plugins", json={"name": "cors"})
        assert r.status_code == 409
        assert r.json() == {
            "code": 5, "name": "unique constraint violation",
            "message": ("UNIQUE violation detected on '{consumer=null,name=\"cors\","
                        "route=null,service=null}'"),
            "fields": {"consumer": None, "name": "cors", "route": None, "service": None}}
    finally:
        assert gw.delete(f"/plugins/{p['id']}").status_code == 204


def test_get_patch_put_delete_plugin(gw):
    s = _svc(gw)
    inst = "name-" + uuid.uuid4().hex
    p = gw.create("/plugins", {"name": "key-auth", "instance_name": inst,
                               "service": {"id": s["id"]},
                               "config": {"key_names": ["testkey"]}})
    for key in (p["id"], inst):
        r = gw.get(f"/plugins/{key}")
        assert r.status_code == 200 and r.json() == p
    assert gw.get(f"/plugins/{uuid.uuid4()}").status_code == 404
    assert gw.get("/plugins/not-found").json() == {"message": "Not found"}
    r = gw.patch(f"/plugins/{inst}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    # config is merged on PATCH
    r = gw.patch(f"/plugins/{p['id']}", json={"config": {"hide_credentials": True}})
    assert r.status_code == 200
    assert r.json()["config"]["key_names"] == ["testkey"]
    assert r.json()["config"]["hide_credentials"] is True
    r = gw.patch(f"/plugins/{p['id']}", json={"config": "bar"})
    assert r.status_code == 400
    assert r.json() == schema_violation({"config": "expected a record"},
                                        "schema violation (config: expected a record)")
    r = gw.patch(f"/plugins/{p['id']}", json={"tags": None})
    assert r.status_code == 200
    # PUT replace by instance_name keeps the id
    r = gw.put(f"/plugins/{inst}", json={"name": "key-auth", "service": {"id": s["id"]},
                                         "config": {"key_names": ["testkey2"]}})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["id"] == p["id"] and j["instance_name"] == inst
    assert j["config"]["key_names"] == ["testkey2"]
    assert j["enabled"] is True  # back to the default
    assert gw.delete(f"/plugins/{inst}").status_code == 204
    assert gw.get(f"/plugins/{inst}").status_code == 404
    assert gw.delete(f"/plugins/{uuid.uuid4()}").status_code == 204
    assert gw.delete("/plugins/not-found").status_code == 204


def test_put_creates_plugin(gw):
    s = _svc(gw)
    u = str(uuid.uuid4())
    r = gw.put(f"/plugins/{u}", json={"name": "key-auth", "service": {"id": s["id"]}})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == u
    inst = "name-" + uuid.uuid4().hex
    s2 = _svc(gw)
    r = gw.put(f"/plugins/{inst}", json={"name": "key-auth", "service": {"id": s2["id"]}})
    assert r.status_code == 200, r.text
    assert r.json()["instance_name"] == inst


def test_patch_form_infers_config_without_name(gw):
    s = _svc(gw)
    p = gw.create(f"/services/{s['id']}/plugins", {"name": "rate-limiting",
                                                  "config": {"minute": 60}})
    r = gw.patch(f"/plugins/{p['id']}", data=[("config.minute", "30"), ("config.hour", "1000")])
    assert r.status_code == 200, r.text
    c = r.json()["config"]
    assert c["minute"] == 30 and is_int(c["minute"]) and c["hour"] == 1000


def test_reverse_endpoints(gw):
    s = _svc(gw)
    p = gw.create(f"/services/{s['id']}/plugins", {"name": "key-auth"})
    r = gw.get(f"/plugins/{p['id']}/service")
    assert r.status_code == 200 and r.json() == s
    assert gw.get(f"/plugins/{p['id']}/route").status_code == 404
    assert gw.get(f"/plugins/{p['id']}/consumer").status_code == 404
    r = gw.delete(f"/plugins/{p['id']}/service")
    assert r.status_code == 405 and r.json() == {"message": "Method not allowed"}


def test_plugins_collection(gw):
    r = gw.get("/plugins")
    assert r.status_code == 200
    assert isinstance(r.json()["data"], list)
    for m in ("DELETE", "PUT", "PATCH"):
        r = gw.request(m, "/plugins", json={})
        assert r.status_code == 405
        assert r.json() == {"message": "Method not allowed"}


def test_plugin_foreign_key_missing(gw):
    u = str(uuid.uuid4())
    r = gw.post("/plugins", json={"name": "key-auth", "service": {"id": u}})
    assert r.status_code == 400
    assert r.json() == {
        "code": 4, "name": "foreign key violation",
        "message": (f"the foreign key '{{id=\"{u}\"}}' does not reference an existing "
                    f"'services' entity."),
        "fields": {"service": {"id": u}}}


# ---- aigw differences (differences.md)

def test_form_comma_split_plugin_name_lists(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['id']}/plugins",
                data=[("name", "acl"), ("config.allow", "ai-operator, ai-admin")])
    assert r.status_code == 201, r.text
    assert r.json()["config"]["allow"] == ["ai-operator", "ai-admin"]
    assert r.json()["config"]["deny"] is None
    s2 = _svc(gw)
    r = gw.post(f"/services/{s2['id']}/plugins",
                data=[("name", "oauth2"), ("config.scopes", "ai:read,ai:write"),
                      ("config.mandatory_scope", "true"),
                      ("config.enable_client_credentials", "true")])
    assert r.status_code == 201, r.text
    c = r.json()["config"]
    assert c["scopes"] == ["ai:read", "ai:write"]
    assert c["mandatory_scope"] is True and c["enable_client_credentials"] is True
    # JSON is never split
    s3 = _svc(gw)
    r = gw.post(f"/services/{s3['id']}/plugins",
                json={"name": "acl", "config": {"allow": ["a,b"]}})
    assert r.status_code == 201
    assert r.json()["config"]["allow"] == ["a,b"]


def test_acl_whitelist_blacklist_aliases(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['id']}/plugins",
                data=[("name", "acl"), ("config.whitelist", "ai-operator,ai-admin")])
    assert r.status_code == 201, r.text
    c = r.json()["config"]
    assert c["allow"] == ["ai-operator", "ai-admin"]
    assert "whitelist" not in c and "blacklist" not in c
    s2 = _svc(gw)
    r = gw.post(f"/services/{s2['id']}/plugins",
                json={"name": "acl", "config": {"blacklist": ["bad"]}})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["deny"] == ["bad"]
    assert r.json()["config"]["allow"] is None
    assert gw.get(f"/plugins/{r.json()['id']}").json()["config"]["deny"] == ["bad"]


def test_acl_exactly_one(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['id']}/plugins",
                json={"name": "acl", "config": {"allow": ["a"], "deny": ["b"]}})
    assert r.status_code == 400
    assert ("exactly one of these fields must be non-empty: 'config.allow', 'config.deny'"
            in r.json()["fields"]["@entity"])
    r = gw.post(f"/services/{s['id']}/plugins", json={"name": "acl"})
    assert r.status_code == 400
    assert r.json()["code"] == 2


def test_http_log_and_file_log(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['id']}/plugins", json={"name": "http-log"})
    assert r.status_code == 400
    assert r.json() == schema_violation(
        {"config": {"http_endpoint": "required field missing"}},
        "schema violation (config.http_endpoint: required field missing)")
    r = gw.post(f"/services/{s['id']}/plugins",
                data=[("name", "http-log"), ("config.http_endpoint", "http://log.test:8080/logs")])
    assert r.status_code == 201, r.text
    c = r.json()["config"]
    assert c["http_endpoint"] == "http://log.test:8080/logs"
    assert c["method"] == "POST" and c["content_type"] == "application/json"
    assert c["timeout"] == 10000 and c["keepalive"] == 60000
    r = gw.post(f"/services/{s['id']}/plugins",
                json={"name": "file-log", "config": {"path": "/tmp/a*b"}})
    assert r.status_code == 400
    assert r.json()["fields"] == {"config": {"path": "not a valid filename"}}
    r = gw.post(f"/services/{s['id']}/plugins",
                data=[("name", "file-log"), ("config.path", "/tmp/kong-access.log")])
    assert r.status_code == 201, r.text
    assert r.json()["config"]["path"] == "/tmp/kong-access.log"
    assert r.json()["config"]["reopen"] is False


def test_cors_defaults(gw):
    s = _svc(gw)
    r = gw.post(f"/services/{s['id']}/plugins",
                data=[("name", "cors"),
                      ("config.origins", "https://a.test,https://b.test")])
    assert r.status_code == 201, r.text
    c = r.json()["config"]
    assert c["origins"] == ["https://a.test", "https://b.test"]
    assert c["methods"] == ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE",
                            "CONNECT"]
    assert c["credentials"] is False and c["preflight_continue"] is False
    assert c["max_age"] is None and c["headers"] is None and c["exposed_headers"] is None


# ---- schemas

def test_plugin_schemas(gw):
    for name in BUNDLED:
        r = gw.get(f"/schemas/plugins/{name}")
        assert r.status_code == 200, name
        j = r.json()
        assert isinstance(j["fields"], list) and isinstance(j.get("entity_checks", []), list)
        assert '"fields":{' not in r.text.replace(" ", "")
        cfg = [f["config"] for f in j["fields"] if "config" in f]
        assert cfg and cfg[0]["type"] == "record" and isinstance(cfg[0]["fields"], list)
    r = gw.get("/schemas/plugins/foobar")
    assert r.status_code == 404
    assert r.json() == {"message": "No plugin named 'foobar'"}


def test_plugin_schema_defaults(gw):
    j = gw.get("/schemas/plugins/key-auth").json()
    cfg = [f["config"] for f in j["fields"] if "config" in f][0]
    fields = {list(f)[0]: list(f.values())[0] for f in cfg["fields"]}
    assert fields["key_names"]["default"] == ["apikey"]
    assert fields["hide_credentials"]["default"] is False


def test_plugin_validate(gw):
    r = gw.post("/schemas/plugins/validate",
                json={"name": "key-auth", "config": {"key_names": ["foo", "bar"],
                                                     "hide_credentials": True}})
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "schema validation successful"}
    r = gw.post("/schemas/plugins/validate", json={"name": "key-auth",
                                                   "config": {"keys": "foo"}})
    assert r.status_code == 400
    assert r.json()["name"] == "schema violation"
    # validation stores nothing
    n = len(gw.get("/plugins?size=1000").json()["data"])
    gw.post("/schemas/plugins/validate", json={"name": "cors"})
    assert len(gw.get("/plugins?size=1000").json()["data"]) == n
