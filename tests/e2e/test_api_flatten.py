"""DB-less POST /config?flatten_errors=1: Kong 3.9's flattened errors
(kong/db/errors.lua declarative_config_flattened, kong/api/routes/config.lua): every invalid
entity becomes one entry of `flattened_errors` with its type, id, name, tags, the entity as
sent and its errors as {type, field, message}; what no entity owns stays in `fields`.
Expectations follow spec/02-integration/04-admin_api/15-off_spec.lua."""
import pytest
import requests

PROTO_MSG = "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"
TCP_MSG = ("must set one of 'sources', 'destinations', 'snis' when 'protocols' is "
           "'tcp', 'tls' or 'udp'")


@pytest.fixture(scope="module")
def admin(aigw_module, tmp_path_factory):
    f = tmp_path_factory.mktemp("flat") / "kong.yml"
    f.write_text('_format_version: "3.0"\nservices:\n- name: keep\n  url: http://127.0.0.1:9\n')
    inst = aigw_module(env={"AIGW_DATABASE": "off", "AIGW_DECLARATIVE_CONFIG": str(f)})
    yield inst.admin_url
    inst.kill_for_teardown()


def post(admin, doc, flatten="1", **kw):
    doc = dict(doc)
    doc.setdefault("_format_version", "3.0")
    params = {"flatten_errors": flatten} if flatten is not None else {}
    r = requests.post(admin + "/config", params=params, json=doc, timeout=10, **kw)
    assert r.status_code == 400, r.text
    return r.json()


def by_tag(entries, tag):
    found = [e for e in entries if e["entity"].get("tags", [None])[0] == tag]
    assert len(found) == 1, (tag, entries)
    return found[0]


def sort_errors(errs):
    return sorted(errs, key=lambda e: (e["type"], e.get("field", ""), e["message"]))


DOC = {
    "abnormal_extra_field": 123,
    "services": [
        {"name": "nope", "host": "localhost", "port": 1234, "protocol": "nope",
         "tags": ["service-01"],
         "routes": [
             {"name": "valid.route", "protocols": ["http", "https"], "methods": ["GET"],
              "hosts": ["test"], "tags": ["route_service-01", "service-01"]},
             {"name": "nope.route", "protocols": ["tcp"],
              "tags": ["route_service-02", "service-01"]}]},
        {"name": "mis-matched", "host": "localhost", "protocol": "tcp", "path": "/path",
         "tags": ["service-02"],
         "routes": [{"name": "invalid", "protocols": ["http", "https"], "hosts": ["test"],
                     "methods": ["GET"], "tags": ["route_service-03", "service-02"]}]},
        {"name": "okay", "url": "http://localhost:1234", "tags": ["service-03"],
         "routes": [{"name": "probably-valid", "protocols": ["http", "https"],
                     "methods": ["GET"], "hosts": ["test"],
                     "tags": ["route_service-04", "service-03"],
                     "plugins": [{"name": "http-log", "config": {"not_endpoint": "anything"},
                                  "tags": ["route_service_plugin-01", "route_service-04",
                                           "service-03"]}]}]},
    ],
}


def test_nested_tree_unless_asked(admin):
    body = post(admin, DOC, flatten=None)
    assert "flattened_errors" not in body
    assert body["code"] == 14 and body["name"] == "invalid declarative configuration"
    assert body["fields"] == {
        "abnormal_extra_field": "unknown field",
        "services": [
            {"protocol": PROTO_MSG, "routes": [None, {"@entity": [TCP_MSG]}]},
            {"@entity": ["failed conditional validation given value of field 'protocol'"],
             "path": "value must be null"},
            {"routes": [{"plugins": [{"config": {"http_endpoint": "required field missing",
                                                 "not_endpoint": "unknown field"}}]}]},
        ]}
    for off in ("0", "false", "off", "no", "nope"):
        assert "flattened_errors" not in post(admin, DOC, flatten=off)


@pytest.mark.parametrize("flag", ["1", "true", "TRUE", "on", "yes"])
def test_flattened(admin, flag):
    body = post(admin, DOC, flatten=flag)
    assert set(body) == {"code", "name", "message", "fields", "flattened_errors"}
    assert body["code"] == 14 and body["name"] == "invalid declarative configuration"
    # Top-level fields have no entity: they stay, and the message shows only them.
    assert body["fields"] == {"abnormal_extra_field": "unknown field"}
    assert body["message"] == ('declarative config is invalid: '
                               '{abnormal_extra_field="unknown field"}')
    flat = body["flattened_errors"]
    assert len(flat) == 4
    assert by_tag(flat, "service-01") == {
        "entity_type": "service", "entity_name": "nope", "entity_tags": ["service-01"],
        "entity": {"name": "nope", "host": "localhost", "port": 1234, "protocol": "nope",
                   "tags": ["service-01"]},
        "errors": [{"type": "field", "field": "protocol", "message": PROTO_MSG}]}
    assert by_tag(flat, "route_service-02") == {
        "entity_type": "route", "entity_name": "nope.route",
        "entity_tags": ["route_service-02", "service-01"],
        "entity": {"name": "nope.route", "protocols": ["tcp"],
                   "tags": ["route_service-02", "service-01"]},
        "errors": [{"type": "entity", "message": TCP_MSG}]}
    mis = by_tag(flat, "service-02")
    assert mis["entity"] == {"name": "mis-matched", "host": "localhost", "protocol": "tcp",
                             "path": "/path", "tags": ["service-02"]}
    assert sort_errors(mis["errors"]) == [
        {"type": "entity",
         "message": "failed conditional validation given value of field 'protocol'"},
        {"type": "field", "field": "path", "message": "value must be null"}]
    plugin = by_tag(flat, "route_service_plugin-01")
    assert plugin["entity_type"] == "plugin" and plugin["entity_name"] == "http-log"
    assert plugin["entity"] == {"name": "http-log", "config": {"not_endpoint": "anything"},
                                "tags": ["route_service_plugin-01", "route_service-04",
                                         "service-03"]}
    assert sort_errors(plugin["errors"]) == [
        {"type": "field", "field": "config.http_endpoint", "message": "required field missing"},
        {"type": "field", "field": "config.not_endpoint", "message": "unknown field"}]
    # Kong's order: collections and positions descending, children before their parent.
    assert [e["entity"]["tags"][0] for e in flat] == [
        "route_service_plugin-01", "service-02", "route_service-02", "service-01"]
    # Nothing was loaded.
    assert requests.get(admin + "/services/keep", timeout=10).status_code == 200


def test_entity_fields_only_when_valid(admin):
    flat = post(admin, {"services": [
        {"id": 1234, "name": False, "url": "http://localhost:1234",
         "tags": ["svc-a", [1.5]]},
        {"name": "", "url": "http://localhost:1234", "tags": ["svc-b"]},
        {"name": "invalid-tags", "url": "http://localhost:1234",
         "tags": ["svc-c", "invalid-tags", [1, 2, 3], True]},
    ]})["flattened_errors"]
    a = by_tag(flat, "svc-a")
    assert {"entity_id", "entity_name", "entity_tags"} & set(a) == set()
    assert a["entity"] == {"id": 1234, "name": False, "url": "http://localhost:1234",
                           "tags": ["svc-a", [1.5]]}
    assert sort_errors(a["errors"]) == [
        {"type": "field", "field": "id", "message": "expected a string"},
        {"type": "field", "field": "name", "message": "expected a string"},
        {"type": "field", "field": "tags.2", "message": "expected a string"}]
    b = by_tag(flat, "svc-b")
    assert "entity_name" not in b and b["entity_tags"] == ["svc-b"]
    assert b["errors"] == [{"type": "field", "field": "name",
                            "message": "length must be at least 1"}]
    c = by_tag(flat, "svc-c")
    assert c["entity_name"] == "invalid-tags" and "entity_tags" not in c
    assert c["errors"] == [
        {"type": "field", "field": "tags.4", "message": "expected a string"},
        {"type": "field", "field": "tags.3", "message": "expected a string"}]


def test_ids_and_parent_keys(admin):
    sid = "cb019421-62c2-47a8-b714-d7567b114037"
    flat = post(admin, {"services": [
        {"id": sid, "name": "test", "host": "localhost", "port": 1234, "protocol": "nope",
         "tags": ["svc"],
         "routes": [{"super_duper_invalid": True, "tags": ["rt"]}]}]})["flattened_errors"]
    svc = by_tag(flat, "svc")
    assert svc["entity_id"] == sid and svc["entity"]["id"] == sid
    assert "routes" not in svc["entity"]
    rt = by_tag(flat, "rt")
    assert rt["entity"] == {"super_duper_invalid": True, "tags": ["rt"],
                            "service": {"id": sid}}
    assert rt["errors"] == [{"type": "field", "field": "super_duper_invalid",
                             "message": "unknown field"}]


def test_uniqueness_errors(admin):
    # Kong issue #12167: the second consumer gets the error, with its own id.
    c2 = "a73dc9a7-93df-584d-97c0-7f41a1bbce32"
    body = post(admin, {"consumers": [
        {"id": "a73dc9a7-93df-584d-97c0-7f41a1bbce3d", "username": "test-consumer-1",
         "tags": ["consumer-1"]},
        {"id": c2, "username": "test-consumer-1", "tags": ["consumer-2"]}]})
    assert body["fields"] == {}
    assert body["message"] == "declarative config is invalid: {}"
    assert body["flattened_errors"] == [{
        "entity_type": "consumer", "entity_id": c2, "entity_tags": ["consumer-2"],
        "entity": {"id": c2, "username": "test-consumer-1", "tags": ["consumer-2"]},
        "errors": [{"type": "entity", "message": "uniqueness violation: 'consumers' entity "
                                                 "with username set to 'test-consumer-1' "
                                                 "already declared"}]}]
    # Two targets with the same address get the same derived id: the second is reported
    # with it, under its upstream.
    uid = "f9792964-6797-482c-bfdf-08220a4f6839"
    body = post(admin, {"upstreams": [{"name": "u", "id": uid, "targets": [
        {"target": "10.244.0.12:80", "weight": 1, "tags": ["target-1"]},
        {"target": "10.244.0.12:80", "weight": 1, "tags": ["target-2"]}]}]})
    [entry] = body["flattened_errors"]
    assert entry["entity_type"] == "target" and entry["entity_tags"] == ["target-2"]
    assert entry["entity"]["upstream"] == {"id": uid}
    assert entry["entity"]["id"] == entry["entity_id"]
    assert entry["errors"] == [{"type": "entity", "message": (
        "uniqueness violation: 'targets' entity with primary key set to "
        f"'{entry['entity_id']}' already declared")}]


def test_unattributable_errors_stay_in_fields(admin):
    # A reference error is keyed by name, not by position: it stays in `fields`.
    body = post(admin, {"routes": [{"name": "r1", "paths": ["/"], "service": "nosuch"}]})
    assert body["flattened_errors"] == []
    assert body["fields"] == {"routes": {"r1": [
        "invalid reference 'service: nosuch' (no such entry in 'services')"]}}
    # An element that is not an entity stays too.
    body = post(admin, {"services": [1]})
    assert body["flattened_errors"] == []
    assert body["fields"] == {"services": ["expected a record"]}
    assert body["message"] == 'declarative config is invalid: {services={"expected a record"}}'
    # Nested elements that are no entity stay errors of their parent (Kong 3.9 drops them).
    flat = post(admin, {"services": [{"name": "s", "url": "http://x", "tags": ["s"],
                                      "routes": [1, {"paths": [2], "tags": ["r"]}]}]})
    flat = flat["flattened_errors"]
    assert by_tag(flat, "s")["errors"] == [{"type": "field", "field": "routes.1",
                                            "message": "expected a record"}]
    assert by_tag(flat, "s")["entity"] == {"name": "s", "url": "http://x", "tags": ["s"]}
    assert by_tag(flat, "r")["errors"] == [{"type": "field", "field": "paths.1",
                                            "message": "expected a string"}]


def test_body_forms_and_unparsable(admin):
    # config=<text> in a form, the option in the body's arguments too (Kong merges them).
    doc = '{"_format_version": "3.0", "consumers": [{"tags": ["c"]}]}'
    r = requests.post(admin + "/config", data={"config": doc, "flatten_errors": "1"},
                      timeout=10)
    assert r.status_code == 400
    assert r.json()["flattened_errors"] == [{
        "entity_type": "consumer", "entity_tags": ["c"], "entity": {"tags": ["c"]},
        "errors": [{"type": "entity",
                    "message": "at least one of these fields must be non-empty: "
                               "'custom_id', 'username'"}]}]
    r = requests.post(admin + "/config?flatten_errors=1", data="services: [", timeout=10,
                      headers={"Content-Type": "application/yaml"})
    assert r.status_code == 400
    body = r.json()
    # Not a document at all: Kong answers before it could flatten anything.
    assert "flattened_errors" not in body and body["code"] == 14
    assert body["fields"]["error"].startswith("failed parsing declarative configuration: ")
