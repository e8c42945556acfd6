"""The seed tutorials' gateway steps, replayed end to end: the admin calls as curl sends them
(form data, the same paths and fields), then the proxy calls the tutorials print, with the
status codes they promise. Tokens are minted as the tutorials mint them: seed 000 with Node's
jsonwebtoken (`iss` = the consumer's username, `keyid` = the credential key aigw generated),
seed 001 with PyJWT (`iss` = the username, the secret the user chose). Both work with aigw's
`consumer_fallback` (Kong would answer 401 "No credentials found for given 'iss'").

Runs on SQLite and on PostgreSQL. The tutorials' upstream hosts (ai-orchestrator:5000,
host.docker.internal:8080) are replaced by a local upstream, as the tutorials tell the reader
to do; seed 000's Redis host `redis` by the test's Redis."""
import datetime
import time

import jwt as pyjwt
import pytest

from aigwtest import get, http, wait_until
from apitest import gw  # noqa: F401
from jwtnode import node_mint
from upstreams import Upstream

@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


def _ok(r, status=201):
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


def _fresh_minute(margin=12):
    """Waits (at most `margin` s) so that a burst of requests ends inside one calendar minute,
    as a reader's 65-request loop does."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.second >= 60 - margin:
        time.sleep(60 - now.second - now.microsecond / 1e6 + 0.05)


def _node_mint(payload, secret, keyid):
    """jwt.sign(payload, secret, {algorithm: 'HS256', keyid}) with Node's jsonwebtoken, as
    seed 000 writes it."""
    return node_mint(payload, secret, {"algorithm": "HS256", "keyid": keyid})


def _status_burst(url, n, headers):
    codes = []
    for _ in range(n):
        codes.append(get(url, headers=headers, timeout=10).status_code)
    return codes


def test_seed_000_gateway(gw, up, redis):
    proxy = gw.inst.proxy_url
    # 2. service, route, routing
    _ok(gw.curl("POST", "/services", "name=ai-orchestrator", f"url=http://127.0.0.1:{up.port}"))
    _ok(gw.curl("POST", "/services/ai-orchestrator/routes", "paths[]=/ai-workflow"))
    # the route is live on the proxy within milliseconds of the commit
    wait_until(lambda: get(proxy + "/ai-workflow/health", timeout=10).status_code == 200, 5,
               what="the new route")
    r = get(proxy + "/ai-workflow/health", timeout=10)
    assert r.json()["target"] == "/health"

    # 3. jwt on the service, consumer, credential; a Node-minted token as the tutorial mints it
    _ok(gw.curl("POST", "/services/ai-orchestrator/plugins", "name=jwt"))
    _ok(gw.curl("POST", "/consumers", "username=ai-client-app"))
    cred = _ok(gw.curl("POST", "/consumers/ai-client-app/jwt"))
    now = int(time.time())
    token = _node_mint({"iss": "ai-client-app", "sub": "ai-client-app", "exp": now + 300},
                       cred["secret"], cred["key"])
    auth = {"Host": "localhost", "Authorization": f"Bearer {token}"}
    time.sleep(0.3)   # the plugin and credential reach the proxy within 100 ms
    r = get(proxy + "/ai-workflow/health", headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    seen = {k.lower(): v for k, v in r.json()["headers"]}
    assert seen["x-consumer-username"] == "ai-client-app"
    assert seen["x-credential-identifier"] == cred["key"]
    # "Without the JWT, you'll get 401 Unauthorized."
    r = get(proxy + "/ai-workflow/health", timeout=10)
    assert r.status_code == 401
    assert r.json() == {"message": "Unauthorized"}

    # 4. roles with acl (the tutorial's `config.whitelist=ai-operator,ai-admin`)
    _ok(gw.curl("POST", "/consumers/ai-client-app/acls", "group=ai-operator"))
    _ok(gw.curl("POST", "/services/ai-orchestrator/plugins", "name=acl",
                "config.whitelist=ai-operator,ai-admin"))
    _ok(gw.curl("POST", "/consumers", "username=ai-observer-app"))
    other = _ok(gw.curl("POST", "/consumers/ai-observer-app/jwt"))
    _ok(gw.curl("POST", "/consumers/ai-observer-app/acls", "group=ai-observer"))
    other_tok = _node_mint({"iss": "ai-observer-app", "exp": now + 300}, other["secret"],
                           other["key"])
    time.sleep(0.3)
    assert get(proxy + "/ai-workflow/health", headers=auth, timeout=10).status_code == 200
    r = get(proxy + "/ai-workflow/health", timeout=10,
            headers={"Authorization": f"Bearer {other_tok}"})
    assert r.status_code == 403
    assert r.json()["message"] == "You cannot consume this service"

    # 5. rate limiting, local: "The first 60 requests return 200; subsequent requests 429"
    rl = _ok(gw.curl("POST", "/services/ai-orchestrator/plugins", "name=rate-limiting",
                     "config.minute=60", "config.policy=local"))
    time.sleep(0.3)
    _fresh_minute()
    codes = _status_burst(proxy + "/ai-workflow/health", 65, auth)
    assert codes == [200] * 60 + [429] * 5, codes
    r = get(proxy + "/ai-workflow/health", headers=auth, timeout=10)
    assert r.status_code == 429
    assert r.json()["message"] == "API rate limit exceeded"
    assert int(r.headers["Retry-After"]) >= 1

    # the redis policy (the tutorial's `config.redis_host=redis`; here the test's Redis)
    assert gw.delete(f"/plugins/{rl['id']}").status_code == 204
    _ok(gw.curl("POST", "/services/ai-orchestrator/plugins", "name=rate-limiting",
                "config.minute=60", "config.policy=redis",
                f"config.redis_host={redis.host}", f"config.redis_port={redis.port}"))
    time.sleep(0.3)
    _fresh_minute()
    # a separate key space per run: limit by the consumer, whose id is new in this database
    codes = _status_burst(proxy + "/ai-workflow/health", 65, auth)
    assert codes == [200] * 60 + [429] * 5, codes


def test_seed_001_gateway(gw, up):
    proxy = gw.inst.proxy_url
    _ok(gw.curl("POST", "/services", "name=agent-service", f"url=http://127.0.0.1:{up.port}"))
    _ok(gw.curl("POST", "/routes", "service.name=agent-service", "paths[]=/api/agent"))
    _ok(gw.curl("POST", "/services/agent-service/plugins", "name=jwt"))
    _ok(gw.curl("POST", "/consumers", "username=ai-client"))
    _ok(gw.curl("POST", "/consumers/ai-client/jwt", "algorithm=HS256", "secret=supersecretkey"))
    payload = {"iss": "ai-client", "iat": int(time.time()), "exp": int(time.time()) + 3600}
    token = pyjwt.encode(payload, "supersecretkey", algorithm="HS256")
    time.sleep(0.3)

    # "401 Unauthorized for missing JWT, 200 OK for valid JWT"
    assert get(proxy + "/api/agent", timeout=10).status_code == 401
    r = http("POST", proxy + "/api/agent", timeout=10, data='{"input": "test"}',
             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["body"] == '{"input": "test"}'
    # "Kong will reject unauthorized or expired tokens"
    expired = pyjwt.encode({"iss": "ai-client", "exp": int(time.time()) - 10},
                           "supersecretkey", algorithm="HS256")
    r = get(proxy + "/api/agent", headers={"Authorization": f"Bearer {expired}"}, timeout=10)
    assert r.status_code == 401
    assert r.json() == {"exp": "token expired"}
    forged = pyjwt.encode(payload, "not-the-secret", algorithm="HS256")
    r = get(proxy + "/api/agent", headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    assert r.status_code == 401
    assert r.json() == {"message": "Invalid signature"}

    # rate limiting: 60/minute, then 429
    _ok(gw.curl("POST", "/services/agent-service/plugins", "name=rate-limiting",
                "config.minute=60", "config.policy=local"))
    time.sleep(0.3)
    _fresh_minute()
    codes = _status_burst(proxy + "/api/agent", 61, {"Authorization": f"Bearer {token}"})
    assert codes == [200] * 60 + [429], codes
