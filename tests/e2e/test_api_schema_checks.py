"""GET /schemas/{entity} and /schemas/plugins/{name}: `entity_checks` as Kong 3.9.3 lists them
(kong/api/routes/kong.lua, api_helpers.schema_to_jsonable: each check as written in
kong/db/schema/entities/*.lua, typedefs.lua, kong/plugins/*/daos.lua and schema.lua, minus its
functions). Routes are those of router_flavor = traditional_compatible."""
import pytest
import requests


@pytest.fixture(scope="module")
def admin(aigw_module):
    inst = aigw_module()
    yield inst.admin_url
    inst.kill_for_teardown()


def schema(admin, name):
    r = requests.get(f"{admin}/schemas/{name}", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"fields", "entity_checks"}
    return body


def field(body, name):
    for one in body["fields"]:
        if name in one:
            return one[name]
    return None


def tls_only(name):
    return {"conditional": {"if_field": "protocol", "if_match": {"not_one_of": ["https", "tls"]},
                            "then_field": name, "then_match": {"eq": None}}}


def needs(if_field, value, then_field):
    return {"conditional": {"if_field": if_field, "if_match": {"match": f"^{value}$"},
                            "then_field": then_field, "then_match": {"required": True}}}


def fallback(value, allowed):
    return {"conditional": {"if_field": "hash_on", "if_match": {"match": f"^{value}$"},
                            "then_field": "hash_fallback", "then_match": {"one_of": allowed}}}


def test_services(admin):
    assert schema(admin, "services")["entity_checks"] == [
        {"conditional": {"if_field": "protocol",
                         "if_match": {"one_of": ["tcp", "tls", "udp", "grpc", "grpcs"]},
                         "then_field": "path", "then_match": {"eq": None}}},
        tls_only("client_certificate"), tls_only("tls_verify"), tls_only("tls_verify_depth"),
        tls_only("ca_certificates")]


def test_routes(admin):
    body = schema(admin, "routes")
    assert body["entity_checks"] == [
        {"conditional": {
            "if_field": "protocols",
            "if_match": {"elements": {"type": "string",
                                      "not_one_of": ["grpcs", "https", "tls", "tls_passthrough"]}},
            "then_field": "snis", "then_match": {"len_eq": 0},
            "then_err": "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or "
                        "'tls_passthrough'"}},
        {"custom_entity_check": {"field_sources": ["path_handling"]}},
        {"custom_entity_check": {
            "field_sources": ["id", "protocols", "snis", "sources", "destinations", "methods",
                              "hosts", "paths", "headers", "expression", "regex_priority",
                              "priority"],
            "run_with_missing_fields": True}}]
    # typedefs.sources / destinations: the element records carry their own check.
    for name in ("sources", "destinations"):
        el = field(body, name)["elements"]
        assert el["type"] == "record"
        assert el["entity_checks"] == [{"at_least_one_of": ["ip", "port"]}]


def test_consumers_certificates_credentials(admin):
    assert schema(admin, "consumers")["entity_checks"] == [
        {"at_least_one_of": ["custom_id", "username"]}]
    assert schema(admin, "certificates")["entity_checks"] == [
        {"mutually_required": ["cert_alt", "key_alt"]},
        {"custom_entity_check": {"field_sources": ["cert", "key"]}},
        {"custom_entity_check": {"field_sources": ["cert_alt", "key_alt"]}},
        {"custom_entity_check": {"field_sources": ["cert", "cert_alt"]}}]
    assert schema(admin, "ca_certificates")["entity_checks"] == [
        {"custom_entity_check": {"field_sources": ["cert"]}}]
    assert schema(admin, "jwt_secrets")["entity_checks"] == [
        {"conditional": {"if_field": "algorithm",
                         "if_match": {"match_any": {"patterns": [
                             "^RS256$", "^RS384$", "^RS512$", "^PS256$", "^PS384$", "^PS512$",
                             "^EdDSA$"]}},
                         "then_field": "rsa_public_key", "then_match": {"required": True}}}]
    for name in ("snis", "targets", "plugins", "keyauth_credentials", "basicauth_credentials",
                 "acls", "oauth2_credentials"):
        assert schema(admin, name)["entity_checks"] == [], name


def test_ttl_is_not_a_field(admin):
    body = schema(admin, "keyauth_credentials")
    assert [next(iter(f)) for f in body["fields"]] == ["id", "created_at", "consumer", "key",
                                                        "tags"]


def test_upstreams(admin):
    assert schema(admin, "upstreams")["entity_checks"] == [
        needs("hash_on", "header", "hash_on_header"),
        needs("hash_fallback", "header", "hash_fallback_header"),
        needs("hash_on", "cookie", "hash_on_cookie"),
        needs("hash_fallback", "cookie", "hash_on_cookie"),
        fallback("none", ["none"]),
        fallback("cookie", ["none"]),
        fallback("consumer", ["none", "ip", "header", "cookie", "path", "query_arg",
                              "uri_capture"]),
        fallback("ip", ["none", "consumer", "header", "cookie", "path", "query_arg",
                        "uri_capture"]),
        fallback("path", ["none", "consumer", "header", "cookie", "query_arg", "ip",
                          "uri_capture"]),
        {"distinct": ["hash_on_header", "hash_fallback_header"]},
        needs("hash_on", "query_arg", "hash_on_query_arg"),
        needs("hash_fallback", "query_arg", "hash_fallback_query_arg"),
        {"distinct": ["hash_on_query_arg", "hash_fallback_query_arg"]},
        needs("hash_on", "uri_capture", "hash_on_uri_capture"),
        needs("hash_fallback", "uri_capture", "hash_fallback_uri_capture"),
        {"distinct": ["hash_on_uri_capture", "hash_fallback_uri_capture"]}]


def config_needs(if_field, eq, then_field):
    return {"conditional": {"if_field": if_field, "if_match": {"eq": eq},
                            "then_field": then_field, "then_match": {"required": True}}}


def test_plugins(admin):
    assert schema(admin, "plugins/acl")["entity_checks"] == [
        {"only_one_of": ["config.allow", "config.deny"]},
        {"at_least_one_of": ["config.allow", "config.deny"]}]
    assert schema(admin, "plugins/ip-restriction")["entity_checks"] == [
        {"at_least_one_of": ["config.allow", "config.deny"]}]
    assert schema(admin, "plugins/jwt")["entity_checks"] == [
        {"conditional": {"if_field": "config.maximum_expiration", "if_match": {"gt": 0},
                         "then_field": "config.claims_to_verify",
                         "then_match": {"contains": "exp"}}}]
    assert schema(admin, "plugins/rate-limiting")["entity_checks"] == [
        {"at_least_one_of": ["config.second", "config.minute", "config.hour", "config.day",
                             "config.month", "config.year"]},
        config_needs("config.policy", "redis", "config.redis.host"),
        config_needs("config.policy", "redis", "config.redis.port"),
        config_needs("config.policy", "redis", "config.redis.timeout"),
        config_needs("config.limit_by", "header", "config.header_name"),
        config_needs("config.limit_by", "path", "config.path")]
    assert schema(admin, "plugins/ai-prompt-guard")["entity_checks"] == [
        {"at_least_one_of": ["config.allow_patterns", "config.deny_patterns"]},
        {"conditional": {"if_field": "config.match_all_roles", "if_match": {"eq": True},
                         "then_field": "config.allow_all_conversation_history",
                         "then_match": {"eq": False}}}]
    # oauth2 declares its check on the config record itself.
    body = schema(admin, "plugins/oauth2")
    assert body["entity_checks"] == []
    assert field(body, "config")["entity_checks"] == [
        config_needs("mandatory_scope", True, "scopes")]
    for name in ("cors", "key-auth", "basic-auth", "http-log", "file-log"):
        body = schema(admin, f"plugins/{name}")
        assert body["entity_checks"] == [], name
        assert "entity_checks" not in field(body, "config"), name


def test_unknown_names_still_404(admin):
    r = requests.get(f"{admin}/schemas/nope", timeout=10)
    assert r.status_code == 404 and r.json() == {"message": "No entity named 'nope'"}
    r = requests.get(f"{admin}/schemas/plugins/nope", timeout=10)
    assert r.status_code == 404 and r.json() == {"message": "No plugin named 'nope'"}
