"""Admin API: /routes (Kong 3.9 spec/02-integration/04-admin_api/09-routes_routes_spec.lua,
admin-api.md §4, §6). Every test runs on SQLite and on PostgreSQL."""
import uuid

import pytest

from apitest import PROTOCOLS_MSG, assert_json_ct, gw, is_int, schema_violation, uniq  # noqa: F401

MUST_HTTPS = ("must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' "
              "when 'protocols' is 'https'")
MUST_HTTP = "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'"
ROUTE_FIELDS = {"id", "created_at", "updated_at", "name", "protocols", "methods", "hosts", "paths",
                "headers", "https_redirect_status_code", "regex_priority", "strip_path",
                "path_handling", "preserve_host", "request_buffering", "response_buffering",
                "snis", "sources", "destinations", "tags", "service"}


def test_create_route_json_defaults(gw):
    s = gw.create("/services", {"host": "service.test"})
    r = gw.post("/routes", json={"protocols": ["http"], "hosts": ["my.route.test"],
                                 "headers": {"location": ["my-location"]},
                                 "service": {"id": s["id"]}})
    assert r.status_code == 201, r.text
    assert_json_ct(r)
    j = r.json()
    assert ROUTE_FIELDS <= set(j), ROUTE_FIELDS - set(j)
    assert j["hosts"] == ["my.route.test"]
    assert j["headers"] == {"location": ["my-location"]}
    assert is_int(j["created_at"]) and is_int(j["updated_at"])
    assert j["regex_priority"] == 0
    assert j["name"] is None and j["paths"] is None and j["methods"] is None
    assert j["preserve_host"] is False
    assert j["strip_path"] is True
    assert j["https_redirect_status_code"] == 426
    assert j["path_handling"] == "v0"
    assert j["request_buffering"] is True and j["response_buffering"] is True
    assert j["protocols"] == ["http"]
    assert j["service"] == {"id": s["id"]}
    for k in ("snis", "sources", "destinations", "tags"):
        assert j[k] is None, k


def test_create_route_default_protocols(gw):
    j = gw.create("/routes", {"paths": ["/" + uniq("p")]})
    assert j["protocols"] == ["http", "https"]
    assert j["service"] is None


def test_create_route_form_arrays(gw):
    s = gw.create("/services", {"host": "service.test"})
    r = gw.post("/routes", data=[("protocols", "http"), ("methods", "GET"), ("methods", "POST"),
                                 ("hosts[]", "foo.api.test"), ("hosts[]", "bar.api.test"),
                                 ("paths[1]", "/foo"), ("paths[2]", "/bar"),
                                 ("service.id", s["id"])])
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["hosts"] == ["foo.api.test", "bar.api.test"]
    assert j["paths"] == ["/foo", "/bar"]
    assert j["methods"] == ["GET", "POST"]
    assert j["protocols"] == ["http"]
    assert j["service"]["id"] == s["id"]


def test_form_single_value_is_array_and_no_comma_split(gw):
    r = gw.post("/routes", data=[("paths[]", "/x,y"), ("hosts", "a.test")])
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["paths"] == ["/x,y"]  # entity fields are never split on commas
    assert j["hosts"] == ["a.test"]


@pytest.mark.parametrize("kind", ["form", "json"])
def test_create_route_service_by_name(gw, kind):
    name = uniq("svc")
    s = gw.create("/services", {"name": name, "host": "service.test"})
    if kind == "json":
        r = gw.post("/routes", json={"protocols": ["http"], "methods": ["GET", "POST", "PATCH"],
                                     "hosts": ["foo.api.test", "bar.api.test"],
                                     "paths": ["/foo", "/bar"], "service": {"name": name}})
    else:
        r = gw.post("/routes", data=[("protocols", "http"), ("methods", "GET"),
                                     ("methods", "POST"), ("methods", "PATCH"),
                                     ("hosts", "foo.api.test"), ("hosts", "bar.api.test"),
                                     ("paths", "/foo"), ("paths", "/bar"), ("service.name", name)])
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["hosts"] == ["foo.api.test", "bar.api.test"]
    assert j["paths"] == ["/foo", "/bar"]
    assert j["methods"] == ["GET", "POST", "PATCH"]
    assert j["service"] == {"id": s["id"]}


def test_create_grpc_route(gw):
    j = gw.create("/routes", {"protocols": ["grpc", "grpcs"], "hosts": ["my.route.test"]})
    assert j["strip_path"] is False
    assert j["protocols"] == ["grpc", "grpcs"]


def test_malformed_json(gw):
    r = gw.post("/routes", data='{"hello": "world"', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"message": "Cannot parse JSON body"}


@pytest.mark.parametrize("kind", ["form", "json"])
def test_invalid_input(gw, kind):
    def post(body_json, body_form):
        if kind == "json":
            return gw.post("/routes", json=body_json)
        if body_form:
            return gw.post("/routes", data=body_form)
        return gw.raw("POST", "/routes",
                      headers={"Content-Type": "application/x-www-form-urlencoded",
                               "Content-Length": "0"})

    r = post({}, [])
    assert r.status_code == 400, r.text
    assert r.json() == {"code": 2, "name": "schema violation",
                        "message": f"schema violation ({MUST_HTTPS})",
                        "fields": {"@entity": [MUST_HTTPS]}}
    r = post({"protocols": ["https"]}, [("protocols", "https")])
    assert r.status_code == 400
    assert r.json() == {"code": 2, "name": "schema violation",
                        "message": f"schema violation ({MUST_HTTPS})",
                        "fields": {"@entity": [MUST_HTTPS]}}
    r = post({"protocols": ["http"]}, [("protocols", "http")])
    assert r.status_code == 400
    assert r.json()["fields"] == {"@entity": [MUST_HTTP]}
    r = post({"methods": ["GET"], "protocols": ["foo", "http"]},
             [("methods", "GET"), ("protocols", "foo"), ("protocols", "http")])
    assert r.status_code == 400
    assert r.json() == {"code": 2, "name": "schema violation",
                        "message": f"schema violation (protocols.1: {PROTOCOLS_MSG})",
                        "fields": {"protocols": [PROTOCOLS_MSG]}}
    r = post({"methods": ["GET"], "protocols": ["foo", "http"], "service": {"protocol": "foo"}},
             [("methods", "GET"), ("protocols", "foo"), ("protocols", "http"),
              ("service.protocol", "foo")])
    assert r.status_code == 400
    assert r.json() == {
        "code": 2, "name": "schema violation",
        "message": (f"2 schema violations (protocols.1: {PROTOCOLS_MSG}; "
                    f"service.protocol: {PROTOCOLS_MSG})"),
        "fields": {"protocols": [PROTOCOLS_MSG], "service": {"protocol": PROTOCOLS_MSG}}}
    r = post({"methods": ["GET"], "service": {"name": "non-existing"}},
             [("methods", "GET"), ("service.name", "non-existing")])
    assert r.status_code == 400
    msg = ("the foreign key cannot be resolved with '{name=\"non-existing\"}' "
           "for an existing 'services' entity")
    assert r.json() == {"code": 13, "name": "foreign keys unresolved",
                        "message": f"foreign key unresolved (service.name: {msg})",
                        "fields": {"service": {"name": msg}}}
    r = post({"methods": ["GET"], "service": {"name": None}},
             [("methods", "GET"), ("service.name", "")])
    assert r.status_code == 400
    assert r.json() == schema_violation({"service": {"id": "missing primary key"}},
                                        "schema violation (service.id: missing primary key)")
    r = post({"methods": ["GET"], "service": {"protocol": "http"}},
             [("methods", "GET"), ("service.protocol", "http")])
    assert r.status_code == 400
    assert r.json() == schema_violation({"service": {"id": "missing primary key"}},
                                        "schema violation (service.id: missing primary key)")


def test_foreign_key_missing(gw):
    u = str(uuid.uuid4())
    r = gw.post("/routes", json={"paths": ["/fk"], "service": {"id": u}})
    assert r.status_code == 400
    assert r.json() == {
        "code": 4, "name": "foreign key violation",
        "message": (f"the foreign key '{{id=\"{u}\"}}' does not reference an existing "
                    f"'services' entity."),
        "fields": {"service": {"id": u}}}


def test_grpc_errors(gw):
    r = gw.post("/routes", json={"protocols": ["grpc", "grpcs"]})
    assert r.status_code == 400
    m = "must set one of 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'grpcs'"
    assert r.json() == {"code": 2, "name": "schema violation",
                        "message": f"schema violation ({m})", "fields": {"@entity": [m]}}
    r = gw.post("/routes", json={"protocols": ["grpc", "grpcs"], "paths": ["/"],
                                 "strip_path": True})
    assert r.status_code == 400
    m = "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'"
    assert r.json() == schema_violation({"strip_path": m}, f"schema violation (strip_path: {m})")
    r = gw.post("/routes", json={"protocols": ["grpc", "grpcs"], "paths": ["/"],
                                 "methods": ["GET"]})
    assert r.status_code == 400
    m = "cannot set 'methods' when 'protocols' is 'grpc' or 'grpcs'"
    assert r.json() == schema_violation({"methods": m}, f"schema violation (methods: {m})")


def test_host_header_forbidden(gw):
    r = gw.post("/routes", json={"headers": {"host": ["a.test"]}})
    assert r.status_code == 400
    assert r.json()["code"] == 2
    assert ("cannot contain 'host' header, which must be specified in the 'hosts' attribute"
            in r.json()["message"])


def test_bad_paths(gw):
    r = gw.post("/routes", json={"paths": ["foo"]})
    assert r.status_code == 400
    assert r.json()["fields"] == {"paths": ["should start with: / (fixed path) or ~/ (regex path)"]}
    r = gw.post("/routes", json={"paths": ["/a//b"]})
    assert r.status_code == 400
    assert r.json()["fields"] == {"paths": ["must not have empty segments"]}


def test_bad_redirect_code(gw):
    r = gw.post("/routes", json={"paths": ["/r"], "https_redirect_status_code": 300})
    assert r.status_code == 400
    assert r.json()["fields"] == {"https_redirect_status_code":
                                  "expected one of: 426, 301, 302, 307, 308"}


def test_get_patch_put_delete(gw):
    name = uniq("rt")
    rt = gw.create("/routes", {"name": name, "paths": ["/my-route"]})
    for key in (rt["id"], name):
        r = gw.get(f"/routes/{key}")
        assert r.status_code == 200 and r.json() == rt
    r = gw.patch(f"/routes/{name}", json={"methods": ["GET"], "strip_path": False})
    assert r.status_code == 200
    j = r.json()
    assert j["methods"] == ["GET"] and j["strip_path"] is False and j["paths"] == ["/my-route"]
    r = gw.patch(f"/routes/{rt['id']}", data=[("regex_priority", "5"), ("preserve_host", "true")])
    assert r.status_code == 200, r.text
    assert r.json()["regex_priority"] == 5 and r.json()["preserve_host"] is True
    r = gw.patch(f"/routes/{rt['id']}", json={"regex_priority": "foobar"})
    assert r.status_code == 400
    assert r.json() == schema_violation({"regex_priority": "expected an integer"},
                                        "schema violation (regex_priority: expected an integer)")
    # PUT replaces: methods back to null, name kept from the URL
    r = gw.put(f"/routes/{name}", json={"paths": ["/replaced"]})
    assert r.status_code == 200
    j = r.json()
    assert j["id"] == rt["id"] and j["name"] == name
    assert j["paths"] == ["/replaced"] and j["methods"] is None and j["regex_priority"] == 0
    assert gw.delete(f"/routes/{name}").status_code == 204
    assert gw.get(f"/routes/{rt['id']}").status_code == 404
    assert gw.delete(f"/routes/{name}").status_code == 204


def test_put_creates(gw):
    u = str(uuid.uuid4())
    r = gw.put(f"/routes/{u}", json={"paths": ["/put-created"]})
    assert r.status_code == 200
    assert r.json()["id"] == u
    r = gw.put(f"/routes/{uuid.uuid4()}", json={"methods": ["GET"], "protocols": ["foo", "http"]})
    assert r.status_code == 400
    assert r.json()["fields"] == {"protocols": [PROTOCOLS_MSG]}


def test_patch_missing_404(gw):
    r = gw.patch(f"/routes/{uuid.uuid4()}", json={"paths": ["/x"]})
    assert r.status_code == 404
    assert r.json()["code"] == 6


def test_collection_405(gw):
    for m in ("DELETE", "PUT", "PATCH"):
        r = gw.request(m, "/routes", json={})
        assert r.status_code == 405
        assert r.json() == {"message": "Method not allowed"}


def test_options(gw):
    r = gw.options("/routes")
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS, POST"
    assert r.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = gw.options("/routes/test")
    assert r.status_code == 204
    assert r.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"


def test_nested_under_service(gw):
    sname = uniq("svc")
    s = gw.create("/services", {"name": sname, "host": "a.test"})
    # POST nested: the service comes from the URL, the body value is ignored
    other = gw.create("/services", {"host": "b.test"})
    r = gw.post(f"/services/{sname}/routes",
                json={"paths": ["/nested"], "service": {"id": other["id"]}})
    assert r.status_code == 201, r.text
    rt = r.json()
    assert rt["service"] == {"id": s["id"]}
    r = gw.patch(f"/services/{sname}/routes/{rt['id']}", json={"hosts": ["n.test"]})
    assert r.status_code == 200 and r.json()["hosts"] == ["n.test"]
    r = gw.put(f"/services/{sname}/routes/{rt['id']}", json={"paths": ["/p2"]})
    assert r.status_code == 200 and r.json()["service"] == {"id": s["id"]}
    # a route of another service is not found under this one
    rt2 = gw.create(f"/services/{other['id']}/routes", {"paths": ["/o"]})
    assert gw.get(f"/services/{sname}/routes/{rt2['id']}").status_code == 404
    assert gw.delete(f"/services/{sname}/routes/{rt2['id']}").status_code == 404
    assert gw.get(f"/routes/{rt2['id']}").status_code == 200
    assert gw.delete(f"/services/{sname}/routes/{rt['id']}").status_code == 204
    assert gw.get(f"/routes/{rt['id']}").status_code == 404


def test_nested_paging_next(gw):
    sname = uniq("svc")
    gw.create("/services", {"name": sname, "host": "a.test"})
    for i in range(3):
        gw.create(f"/services/{sname}/routes", {"paths": [f"/np{i}"]})
    j = gw.get(f"/services/{sname}/routes?size=2").json()
    assert len(j["data"]) == 2
    assert j["next"].startswith(f"/services/{sname}/routes?offset="), j["next"]
    j2 = gw.get(j["next"]).json()
    assert len(j2["data"]) == 1 and j2["next"] is None


def test_route_plugins_nested(gw):
    rt = gw.create("/routes", {"paths": ["/" + uniq("rp")]})
    r = gw.post(f"/routes/{rt['id']}/plugins",
                data=[("name", "key-auth"), ("config.key_names[1]", "apikey"),
                      ("config.key_names[2]", "key")])
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["route"] == {"id": rt["id"]}
    assert j["config"]["key_names"] == ["apikey", "key"]
    r = gw.post(f"/routes/{rt['id']}/plugins", json={"name": "key-auth"})
    assert r.status_code == 409
    assert r.json() == {
        "code": 5, "name": "unique constraint violation",
        "message": (f"UNIQUE violation detected on '{{consumer=null,name=\"key-auth\","
                    f"route={{id=\"{rt['id']}\"}},service=null}}'"),
        "fields": {"consumer": None, "name": "key-auth", "route": {"id": rt["id"]},
                   "service": None}}
    r = gw.post(f"/routes/{rt['id']}/plugins", json={})
    assert r.status_code == 400
    assert r.json() == schema_violation({"name": "required field missing"},
                                        "schema violation (name: required field missing)")
    # deleting the route removes its plugin
    assert gw.delete(f"/routes/{rt['id']}").status_code == 204
    assert gw.get(f"/plugins/{j['id']}").status_code == 404
