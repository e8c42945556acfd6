"""Seed tutorial 001 (/work/shared/seeds/001_9d653986c7596d14.txt), replayed verbatim against
the admin API (same paths, same --data strings, sent as curl sends them). The tutorial runs
Kong on PostgreSQL; this runs on SQLite and on PostgreSQL.

Skipped here (later issues, not the admin API): docker run, the FastAPI agent, token minting
with PyJWT, the proxy calls (401 without JWT, 200 with, 429, HTTPS on 8443), `kong reload` with
new certificates."""
from apitest import JSON_CT, UUID_RE, gw  # noqa: F401


def _ok(r, status=201):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("Content-Type") == JSON_CT, r.headers
    return r.json()


def test_tutorial_001_admin_calls(gw):
    # Configure gateway routing: "Kong Admin API response showing successful creation of
    # service and route."
    svc = _ok(gw.curl("POST", "/services", "name=agent-service",
                      "url=http://host.docker.internal:8080"))
    assert svc["name"] == "agent-service"
    assert (svc["protocol"], svc["host"], svc["port"], svc["path"]) == \
        ("http", "host.docker.internal", 8080, None)
    rt = _ok(gw.curl("POST", "/routes", "service.name=agent-service", "paths[]=/api/agent"))
    assert rt["paths"] == ["/api/agent"]
    assert rt["service"] == {"id": svc["id"]}
    assert UUID_RE.match(rt["id"])

    # JWT plugin on the service
    jp = _ok(gw.curl("POST", "/services/agent-service/plugins", "name=jwt"))
    assert jp["name"] == "jwt" and jp["service"] == {"id": svc["id"]}

    # Consumer and a JWT credential with a given secret
    cons = _ok(gw.curl("POST", "/consumers", "username=ai-client"))
    assert cons["username"] == "ai-client"
    cred = _ok(gw.curl("POST", "/consumers/ai-client/jwt", "algorithm=HS256",
                       "secret=supersecretkey"))
    assert cred["algorithm"] == "HS256"
    assert cred["secret"] == "supersecretkey"
    assert isinstance(cred["key"], str) and cred["key"]
    assert cred["consumer"] == {"id": cons["id"]}
    # (PyJWT token with iss=ai-client and the proxy checks: later issue, skipped)

    # Rate limiting
    rl = _ok(gw.curl("POST", "/services/agent-service/plugins", "name=rate-limiting",
                     "config.minute=60", "config.policy=local"))
    assert rl["config"]["minute"] == 60 and isinstance(rl["config"]["minute"], int)
    assert rl["config"]["policy"] == "local"

    # (TLS: openssl + docker cp + kong reload: later issue, skipped)

    # Logging
    fl = _ok(gw.curl("POST", "/services/agent-service/plugins", "name=file-log",
                     "config.path=/tmp/kong-access.log"))
    assert fl["config"]["path"] == "/tmp/kong-access.log"
    assert fl["config"]["reopen"] is False

    # the configuration as the admin API now reports it
    assert gw.get("/routes/" + rt["id"] + "/service").json()["name"] == "agent-service"
    names = sorted(p["name"] for p in gw.get("/services/agent-service/plugins").json()["data"])
    assert names == ["file-log", "jwt", "rate-limiting"]
    creds = gw.get("/consumers/ai-client/jwt").json()["data"]
    assert [c["secret"] for c in creds] == ["supersecretkey"]


def test_tutorial_001_route_unknown_service_name(gw):
    # a typo in service.name: Kong's foreign-key-unresolved error, not a 500
    r = gw.curl("POST", "/routes", "service.name=agent-servce", "paths[]=/api/agent2")
    assert r.status_code == 400, r.text
    msg = ("the foreign key cannot be resolved with '{name=\"agent-servce\"}' "
           "for an existing 'services' entity")
    assert r.json() == {"code": 13, "name": "foreign keys unresolved",
                        "message": f"foreign key unresolved (service.name: {msg})",
                        "fields": {"service": {"name": msg}}}
