"""Seed tutorial 002 (/work/shared/seeds/002_5372ba5eb9e60da6.txt) builds its own FastAPI layer
and makes no call to a Kong admin API, so there is nothing to replay verbatim. What applies to
the admin API is the health probe ("Use this endpoint for uptime monitoring and orchestration
health probes": GET /status, status code and database.reachable) and the configuration the
tutorial hand-writes, expressed as aigw plugins a user would create through the admin API:
CORS with the two trusted origins and credentials, 10 requests/minute per client IP, an access
log. The token endpoint, roles (403), HTTPS and the behaviour at the proxy are later issues."""
from apitest import JSON_CT, gw  # noqa: F401


def test_health_probe(gw):
    r = gw.curl("GET", "/status")
    assert r.status_code == 200
    assert r.headers.get("Content-Type") == JSON_CT
    assert r.json()["database"]["reachable"] is True
    r = gw.raw("HEAD", "/status")
    assert r.status_code == 200 and r.content == b""


def test_tutorial_002_configuration_as_plugins(gw):
    assert gw.curl("POST", "/services", "name=ai-workflow-api",
                   "url=http://localhost:8000").status_code == 201
    r = gw.curl("POST", "/services/ai-workflow-api/routes", "paths[]=/workflows",
                "paths[]=/auth")
    assert r.status_code == 201, r.text
    assert r.json()["paths"] == ["/workflows", "/auth"]
    r = gw.curl("POST", "/services/ai-workflow-api/plugins", "name=cors",
                "config.origins=https://your-frontend-domain.com,"
                "https://trusted-agent-domain.com", "config.credentials=true")
    assert r.status_code == 201, r.text
    c = r.json()["config"]
    assert c["origins"] == ["https://your-frontend-domain.com",
                            "https://trusted-agent-domain.com"]
    assert c["credentials"] is True
    r = gw.curl("POST", "/services/ai-workflow-api/plugins", "name=rate-limiting",
                "config.minute=10", "config.limit_by=ip")
    assert r.status_code == 201, r.text
    assert r.json()["config"]["minute"] == 10 and r.json()["config"]["limit_by"] == "ip"
    r = gw.curl("POST", "/services/ai-workflow-api/plugins", "name=file-log",
                "config.path=/tmp/api_access.log")
    assert r.status_code == 201, r.text
    # the tutorial's CORS pitfall: a method wildcard is not a valid cors method in Kong
    r = gw.post("/plugins", json={"name": "cors", "config": {"methods": ["*"]}})
    assert r.status_code == 400
    assert r.json()["code"] == 2
