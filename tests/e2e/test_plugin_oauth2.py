"""The oauth2 plugin at the proxy (kong/plugins/oauth2/access.lua, 3.9.3): the token and
authorize endpoints (client_credentials, password, authorization_code with PKCE,
refresh_token), resource access with the issued tokens, and seed 000's oauth2 step."""
import base64
import hashlib
import urllib.parse

import pytest
import requests

from aigwtest import JSON_CT, http, wait_until
from upstreams import Upstream

INVALID = "The access token is invalid or has expired"
INVALID_WWW = 'Bearer error="invalid_token" error_description="%s"' % INVALID


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def admin(gw, method, path, status=None, **kw):
    r = requests.request(method, gw.admin_url + path, timeout=10, **kw)
    if status is None:
        assert r.status_code < 300, (method, path, r.status_code, r.text)
    else:
        assert r.status_code == status, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


_n = [0]


def uniq(p):
    _n[0] += 1
    return "%s%d" % (p, _n[0])


def plain(gw, path):
    return gw.proxy_url + path


def tls(gw, path):
    return gw.proxy_ssl_url + path


def setup_api(gw, up, config, creds=(), name=None, ready=None):
    """A service (the echo upstream) with one route /<name> and the oauth2 plugin; consumers
    and credentials first (creds: list of dicts for POST /consumers/{c}/oauth2), so that once
    the proxy applies the plugin it knows them too. Returns (name, plugin, [credentials])."""
    name = name or uniq("oa")
    svc = admin(gw, "POST", "/services", data={"name": name,
                                               "url": "http://127.0.0.1:%d" % up.port})
    admin(gw, "POST", "/services/%s/routes" % name, data={"paths[]": "/" + name})
    made = []
    for c in creds:
        user = uniq("user")
        admin(gw, "POST", "/consumers", json={"username": user})
        cred = admin(gw, "POST", "/consumers/%s/oauth2" % user, json=c)
        cred["username"] = user
        made.append(cred)
    plugin = admin(gw, "POST", "/services/%s/plugins" % name,
                   json={"name": "oauth2", "config": config})
    wait_until(ready or (lambda: http("GET", plain(gw, "/" + name)).status_code == 401), 10,
               what="oauth2 on /" + name)
    return name, plugin, made, svc


def token(gw, name, data, headers=None, https=True):
    url = (tls if https else plain)(gw, "/%s/oauth2/token" % name)
    return http("POST", url, data=data, headers=headers or {})


def authorize(gw, name, data):
    return http("POST", tls(gw, "/%s/oauth2/authorize" % name), data=data)


def echo(r):
    assert r.status_code == 200, r.text
    j = r.json()
    j["h"] = {k.lower(): v for k, v in j["headers"]}
    return j


def bearer(t):
    return {"Authorization": "Bearer " + t}


def assert_token_headers(r):
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"
    assert r.headers["Content-Type"] == JSON_CT


# --------------------------------------------------------------------------------------------
# seed 000, "Alternative: OAuth2 Plugin", as written, then the client_credentials flow the
# Kong OAuth2 documentation it points to walks through


def test_seed000_oauth2_client_credentials(gw, up):
    svc = admin(gw, "POST", "/services", data="name=ai-orchestrator&url=http://127.0.0.1:%d"
                % up.port, headers={"Content-Type": "application/x-www-form-urlencoded"})
    admin(gw, "POST", "/services/ai-orchestrator/routes", data="paths[]=/ai-workflow",
          headers={"Content-Type": "application/x-www-form-urlencoded"})
    cons = admin(gw, "POST", "/consumers", data="username=ai-client-app",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    # curl -i -X POST http://localhost:8001/services/ai-orchestrator/plugins --data 'name=oauth2'
    #   --data 'config.scopes=ai:read,ai:write' --data 'config.mandatory_scope=true'
    #   --data 'config.enable_client_credentials=true'
    r = requests.post(gw.admin_url + "/services/ai-orchestrator/plugins",
                      data="name=oauth2&config.scopes=ai:read,ai:write&"
                           "config.mandatory_scope=true&config.enable_client_credentials=true",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["config"]["scopes"] == ["ai:read", "ai:write"]
    assert p["config"]["token_expiration"] == 7200
    assert len(p["config"]["provision_key"]) == 32
    cred = admin(gw, "POST", "/consumers/ai-client-app/oauth2", data={"name": "ai-workflow-app"})
    wait_until(lambda: http("GET", plain(gw, "/ai-workflow/health")).status_code == 401, 10,
               what="oauth2 applied")

    # no token at all
    r = http("GET", plain(gw, "/ai-workflow/health"))
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_request",
                        "error_description": "The access token is missing"}
    assert r.headers["WWW-Authenticate"] == "Bearer"

    # the token, over HTTPS
    r = token(gw, "ai-workflow", {"grant_type": "client_credentials",
                                  "client_id": cred["client_id"],
                                  "client_secret": cred["client_secret"],
                                  "scope": "ai:read ai:write"})
    assert r.status_code == 200, r.text
    assert_token_headers(r)
    t = r.json()
    assert set(t) == {"access_token", "token_type", "expires_in"}   # no refresh token
    assert t["token_type"] == "bearer" and t["expires_in"] == 7200
    assert len(t["access_token"]) == 32 and t["access_token"].isalnum()

    # the token as the admin API shows it (bound to the service)
    row = admin(gw, "GET", "/oauth2_tokens/" + t["access_token"])
    assert row["service"] == {"id": svc["id"]}
    assert row["credential"] == {"id": cred["id"]}
    assert row["scope"] == "ai:read ai:write"

    # calling the API with it
    up.reset()
    j = echo(http("GET", plain(gw, "/ai-workflow/health"), headers=bearer(t["access_token"])))
    h = j["h"]
    assert h["x-consumer-id"] == cons["id"]
    assert h["x-consumer-username"] == "ai-client-app"
    assert h["x-credential-identifier"] == cred["client_id"]
    assert h["x-authenticated-scope"] == "ai:read ai:write"
    assert "x-authenticated-userid" not in h
    assert "x-anonymous-consumer" not in h
    assert h["authorization"] == "Bearer " + t["access_token"]    # hide_credentials=false

    # mandatory_scope: no scope
    r = token(gw, "ai-workflow", {"grant_type": "client_credentials",
                                  "client_id": cred["client_id"],
                                  "client_secret": cred["client_secret"]})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_scope", "error_description": "You must specify a scope"}


# --------------------------------------------------------------------------------------------
# client_credentials failures


@pytest.fixture(scope="module")
def cc(gw, up):
    name, plugin, creds, svc = setup_api(
        gw, up, {"scopes": ["read", "write"], "mandatory_scope": True,
                 "enable_client_credentials": True},
        creds=[{"name": "app", "redirect_uris": ["https://app.example/cb"]}])
    return name, plugin, creds[0]


def test_client_credentials_ok_with_state_and_basic(gw, cc):
    name, _, cred = cc
    r = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"], "scope": "read",
                         "state": "s1"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "s1"
    basic = base64.b64encode(("%s:%s" % (cred["client_id"], cred["client_secret"])).encode())
    r = token(gw, name, {"grant_type": "client_credentials", "scope": "read write"},
              headers={"Authorization": "Basic " + basic.decode()})
    assert r.status_code == 200, r.text
    # trailing slash on the endpoint path, JSON body
    r = http("POST", tls(gw, "/%s/x/oauth2/token/" % name),
             json={"grant_type": "client_credentials", "client_id": cred["client_id"],
                   "client_secret": cred["client_secret"], "scope": "write"})
    assert r.status_code == 200, r.text


def test_client_credentials_failures(gw, cc):
    name, _, cred = cc
    base = {"grant_type": "client_credentials", "client_id": cred["client_id"],
            "client_secret": cred["client_secret"], "scope": "read"}

    r = token(gw, name, dict(base, client_secret="wrong"))
    assert r.status_code == 400
    assert_token_headers(r)
    assert r.json() == {"error": "invalid_client",
                        "error_description": "Invalid client authentication"}
    assert "WWW-Authenticate" not in r.headers

    r = token(gw, name, dict(base, client_id="nobody"))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client"

    bad = base64.b64encode(("%s:nope" % cred["client_id"]).encode()).decode()
    r = token(gw, name, {"grant_type": "client_credentials", "scope": "read"},
              headers={"Authorization": "Basic " + bad})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="OAuth2.0"'
    assert r.json() == {"error": "invalid_client",
                        "error_description": "Invalid client authentication"}

    r = token(gw, name, dict(base, scope="read admin"))
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_scope",
                        "error_description": '"admin" is an invalid scope'}

    r = token(gw, name, {k: v for k, v in base.items() if k != "scope"})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_scope", "error_description": "You must specify a scope"}

    r = token(gw, name, dict(base, grant_type="password"))     # not enabled here
    assert r.status_code == 400
    assert r.json() == {"error": "unsupported_grant_type",
                        "error_description": "Invalid grant_type"}

    # authenticated_userid given: the provision_key is checked
    r = token(gw, name, dict(base, authenticated_userid="u1", provision_key="bad"))
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_provision_key",
                        "error_description": "Invalid provision_key"}


def test_endpoint_method_and_https(gw, cc):
    name, _, cred = cc
    # GET: 405, even over plain HTTP (checked before the HTTPS rule)
    r = http("GET", plain(gw, "/%s/oauth2/token" % name))
    assert r.status_code == 405
    assert r.json() == {"error": "invalid_method",
                        "error_description": "The HTTP method GET is invalid for the token "
                                             "endpoint"}
    assert r.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_method" error_description="The HTTP method GET is invalid '
        'for the token endpoint"')
    r = http("PUT", tls(gw, "/%s/oauth2/authorize" % name))
    assert r.status_code == 405
    assert r.json()["error_description"] == ("The HTTP method PUT is invalid for the "
                                             "authorization endpoint")
    # plain HTTP
    r = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"], "scope": "read"}, https=False)
    assert r.status_code == 400
    assert_token_headers(r)
    assert r.json() == {"error": "access_denied", "error_description": "You must use HTTPS"}
    # X-Forwarded-Proto from an untrusted peer changes nothing
    r = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"], "scope": "read"},
              headers={"X-Forwarded-Proto": "https"}, https=False)
    assert r.status_code == 400
    assert r.json()["error_description"] == "You must use HTTPS"


def test_resource_access_token_locations(gw, up, cc):
    name, _, cred = cc
    t = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"], "scope": "read"}).json()
    at = t["access_token"]
    for how in ({"headers": {"Authorization": "Bearer " + at}},
                {"headers": {"Authorization": "token " + at}},
                {"params": {"access_token": at}}):
        j = echo(http("GET", plain(gw, "/" + name + "/r"), **how))
        assert j["h"]["x-credential-identifier"] == cred["client_id"]
        assert j["h"]["x-authenticated-scope"] == "read"
    j = echo(http("POST", plain(gw, "/" + name + "/r"), data={"access_token": at, "x": "1"}))
    assert j["h"]["x-consumer-username"] == cred["username"]
    assert "access_token=" in j["body"]                       # not hidden by default

    # missing / invalid
    r = http("GET", plain(gw, "/" + name + "/r"), params={"access_token": ""})
    assert r.status_code == 401
    assert r.json()["error_description"] == "The access token is missing"
    r = http("GET", plain(gw, "/" + name + "/r"), headers=bearer("nope"))
    assert r.status_code == 401
    assert r.headers["Content-Type"] == JSON_CT
    assert r.json() == {"error": "invalid_token", "error_description": INVALID}
    assert r.headers["WWW-Authenticate"] == INVALID_WWW
    # a non-bearer Authorization value is taken as the token itself
    r = http("GET", plain(gw, "/" + name + "/r"), headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    # client-sent identity headers are replaced
    j = echo(http("GET", plain(gw, "/" + name + "/r"),
                  headers={"Authorization": "Bearer " + at, "X-Consumer-Username": "admin",
                           "X-Authenticated-Scope": "write", "X-Authenticated-UserId": "root"}))
    assert j["h"]["x-consumer-username"] == cred["username"]
    assert j["h"]["x-authenticated-scope"] == "read"
    assert "x-authenticated-userid" not in j["h"]


# --------------------------------------------------------------------------------------------
# password grant (what replaces seed 002's hand-written token endpoint)


def test_password_grant_and_refresh(gw, up):
    name, plugin, creds, _ = setup_api(
        gw, up, {"scopes": ["workflows"], "enable_password_grant": True,
                 "hide_credentials": True, "realm": "agents"},
        creds=[{"name": "agent-portal", "redirect_uris": ["https://portal.example/cb"]}])
    cred, pk = creds[0], plugin["config"]["provision_key"]
    base = {"grant_type": "password", "client_id": cred["client_id"],
            "client_secret": cred["client_secret"], "provision_key": pk,
            "authenticated_userid": "agentA", "scope": "workflows"}
    r = token(gw, name, dict(base, provision_key="wrong"))
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_provision_key",
                        "error_description": "Invalid provision_key"}
    r = token(gw, name, {k: v for k, v in base.items() if k != "authenticated_userid"})
    assert r.json() == {"error": "invalid_authenticated_userid",
                        "error_description": "Missing authenticated_userid parameter"}
    r = token(gw, name, dict(base, authenticated_userid="   "))
    assert r.json()["error"] == "invalid_authenticated_userid"
    r = token(gw, name, dict(base, redirect_uri="https://evil.example/"))
    assert r.json() == {"error": "invalid_request",
                        "error_description": "Invalid redirect_uri that does not match with "
                                             "any redirect_uri created with the application"}

    r = token(gw, name, base)
    assert r.status_code == 200, r.text
    assert_token_headers(r)
    t = r.json()
    assert set(t) == {"access_token", "token_type", "expires_in", "refresh_token"}
    up.reset()
    j = echo(http("POST", plain(gw, "/%s/trigger" % name), headers=bearer(t["access_token"]),
                  json={"workflow": "x"}))
    assert j["h"]["x-authenticated-userid"] == "agentA"
    assert j["h"]["x-authenticated-scope"] == "workflows"
    assert "authorization" not in j["h"]                      # hide_credentials

    # realm in the challenges
    r = http("GET", plain(gw, "/" + name))
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="agents"'
    r = http("GET", plain(gw, "/" + name), headers=bearer("nope"))
    assert r.headers["WWW-Authenticate"] == (
        'Bearer realm="agents" error="invalid_token" error_description="%s"' % INVALID)

    # query / body tokens are removed before proxying with hide_credentials
    j = echo(http("POST", plain(gw, "/%s/q?access_token=%s&keep=1" % (name, t["access_token"])),
                  data={"a": "1"}))
    assert j["target"].endswith("?keep=1")
    j = echo(http("POST", plain(gw, "/%s/b" % name),
                  data={"a": "1", "access_token": t["access_token"]}))
    assert j["body"] == "a=1"

    # refresh: a new pair; the old access and refresh tokens stop working
    r = token(gw, name, {"grant_type": "refresh_token", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"],
                         "refresh_token": t["refresh_token"]})
    assert r.status_code == 200, r.text
    t2 = r.json()
    assert t2["access_token"] != t["access_token"]
    assert t2["refresh_token"] != t["refresh_token"]
    r = http("GET", plain(gw, "/" + name), headers=bearer(t["access_token"]))
    assert r.status_code == 401
    echo(http("GET", plain(gw, "/" + name), headers=bearer(t2["access_token"])))
    r = token(gw, name, {"grant_type": "refresh_token", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"],
                         "refresh_token": t["refresh_token"]})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request",
                        "error_description": "Invalid refresh_token"}


def test_reuse_refresh_token(gw, up):
    name, plugin, creds, _ = setup_api(
        gw, up, {"enable_password_grant": True, "reuse_refresh_token": True},
        creds=[{"name": "p", "redirect_uris": ["https://p.example/cb"]}])
    cred, pk = creds[0], plugin["config"]["provision_key"]
    t = token(gw, name, {"grant_type": "password", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"], "provision_key": pk,
                         "authenticated_userid": "u"}).json()
    ref = {"grant_type": "refresh_token", "client_id": cred["client_id"],
           "client_secret": cred["client_secret"], "refresh_token": t["refresh_token"]}
    r1 = token(gw, name, ref)
    assert r1.status_code == 200, r1.text
    assert r1.json()["refresh_token"] == t["refresh_token"]
    r2 = token(gw, name, ref)
    assert r2.status_code == 200, r2.text
    assert r2.json()["refresh_token"] == t["refresh_token"]
    # only the latest access token is valid
    assert http("GET", plain(gw, "/" + name),
                headers=bearer(r1.json()["access_token"])).status_code == 401
    echo(http("GET", plain(gw, "/" + name), headers=bearer(r2.json()["access_token"])))
    echo(http("GET", plain(gw, "/" + name), headers=bearer(r2.json()["access_token"])))


# --------------------------------------------------------------------------------------------
# authorization code


def test_authorization_code_flow(gw, up):
    name, plugin, creds, _ = setup_api(
        gw, up, {"scopes": ["email", "profile"], "enable_authorization_code": True},
        creds=[{"name": "web", "redirect_uris": ["https://app.example/cb?x=1"]}])
    cred, pk = creds[0], plugin["config"]["provision_key"]
    ask = {"provision_key": pk, "authenticated_userid": "user-7", "response_type": "code",
           "client_id": cred["client_id"], "scope": "email profile", "state": "st 1"}
    r = authorize(gw, name, ask)
    assert r.status_code == 200, r.text
    assert_token_headers(r)
    u = urllib.parse.urlsplit(r.json()["redirect_uri"])
    assert (u.scheme, u.netloc, u.path) == ("https", "app.example", "/cb")
    assert u.query.startswith("code=") and u.query.endswith("&state=st%201&x=1")
    code = urllib.parse.parse_qs(u.query)["code"][0]

    # errors come back in the redirect_uri, with status 400
    r = authorize(gw, name, dict(ask, scope="admin"))
    assert r.status_code == 400
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.json()["redirect_uri"]).query)
    assert q["error"] == ["invalid_scope"]
    assert q["error_description"] == ['"admin" is an invalid scope']
    r = authorize(gw, name, dict(ask, provision_key="x"))
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_provision_key",
                        "error_description": "Invalid provision_key", "state": "st 1"}
    r = authorize(gw, name, dict(ask, client_id="nobody"))
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_client",
                        "error_description": "Invalid client authentication", "state": "st 1"}
    r = authorize(gw, name, dict(ask, response_type="token"))       # implicit not enabled
    assert r.status_code == 400
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.json()["redirect_uri"]).query)
    assert q["error"] == ["unsupported_response_type"]
    r = http("POST", plain(gw, "/%s/oauth2/authorize" % name), data=ask)
    assert r.status_code == 400
    assert r.json() == {"error": "access_denied", "error_description": "You must use HTTPS",
                        "state": "st 1"}

    ex = {"grant_type": "authorization_code", "client_id": cred["client_id"],
          "client_secret": cred["client_secret"], "code": code}
    r = token(gw, name, dict(ex, client_secret="bad"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = token(gw, name, ex)
    assert r.status_code == 200, r.text
    t = r.json()
    assert "refresh_token" in t and t["expires_in"] == 7200
    j = echo(http("GET", plain(gw, "/" + name), headers=bearer(t["access_token"])))
    assert j["h"]["x-authenticated-userid"] == "user-7"
    assert j["h"]["x-authenticated-scope"] == "email profile"
    # a code works once
    r = token(gw, name, ex)
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request", "error_description": "Invalid code"}

    # refresh keeps the user and scope
    r = token(gw, name, {"grant_type": "refresh_token", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"],
                         "refresh_token": t["refresh_token"], "state": "z"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "z"
    j = echo(http("GET", plain(gw, "/" + name), headers=bearer(r.json()["access_token"])))
    assert j["h"]["x-authenticated-userid"] == "user-7"
    assert j["h"]["x-authenticated-scope"] == "email profile"


def test_authorization_code_pkce_public_client(gw, up):
    name, plugin, creds, _ = setup_api(
        gw, up, {"enable_authorization_code": True},
        creds=[{"name": "spa", "client_type": "public",
                "redirect_uris": ["https://spa.example/cb"]}])
    cred, pk = creds[0], plugin["config"]["provision_key"]
    ask = {"provision_key": pk, "authenticated_userid": "u", "response_type": "code",
           "client_id": cred["client_id"]}
    r = authorize(gw, name, ask)
    assert r.status_code == 400
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.json()["redirect_uri"]).query)
    assert q["error_description"] == ["code_challenge is required for public clients"]
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .decode().rstrip("=")
    r = authorize(gw, name, dict(ask, code_challenge=challenge, code_challenge_method="S256"))
    assert r.status_code == 200, r.text
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(r.json()["redirect_uri"]).query)["code"][0]
    ex = {"grant_type": "authorization_code", "client_id": cred["client_id"], "code": code}
    r = token(gw, name, dict(ex, client_secret="x"))
    assert r.json() == {"error": "invalid_request",
                        "error_description": "client_secret is disallowed for public clients"}
    r = token(gw, name, ex)
    assert r.json() == {"error": "invalid_request",
                        "error_description": "code_verifier is required for PKCE "
                                             "authorization requests"}
    r = token(gw, name, dict(ex, code_verifier="short"))
    assert r.json()["error_description"] == "code_verifier must be between 43 and 128 characters"
    r = token(gw, name, dict(ex, code_verifier="w" * 50))
    assert r.json() == {"error": "invalid_grant", "error_description": "Invalid code"}
    r = token(gw, name, dict(ex, code_verifier=verifier))
    assert r.status_code == 200, r.text
    echo(http("GET", plain(gw, "/" + name), headers=bearer(r.json()["access_token"])))


# --------------------------------------------------------------------------------------------
# expiry, service binding, hashed secrets, anonymous


def test_expired_token(gw, up):
    name, _, creds, _ = setup_api(gw, up, {"enable_client_credentials": True,
                                           "token_expiration": 3},
                                  creds=[{"name": "short"}])
    cred = creds[0]
    r = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                         "client_secret": cred["client_secret"]})
    assert r.status_code == 200 and r.json()["expires_in"] == 3
    at = r.json()["access_token"]
    echo(http("GET", plain(gw, "/" + name), headers=bearer(at)))
    wait_until(lambda: http("GET", plain(gw, "/" + name), headers=bearer(at)).status_code == 401,
               8, what="the token to expire")
    r = http("GET", plain(gw, "/" + name), headers=bearer(at))
    assert r.json() == {"error": "invalid_token", "error_description": INVALID}
    assert r.headers["WWW-Authenticate"] == INVALID_WWW


def test_token_bound_to_its_service(gw, up):
    a, _, creds, _ = setup_api(gw, up, {"enable_client_credentials": True},
                               creds=[{"name": "both"}])
    b, _, _, _ = setup_api(gw, up, {"enable_client_credentials": True})
    cred = creds[0]
    at = token(gw, a, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                       "client_secret": cred["client_secret"]}).json()["access_token"]
    echo(http("GET", plain(gw, "/" + a), headers=bearer(at)))
    r = http("GET", plain(gw, "/" + b), headers=bearer(at))
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_token", "error_description": INVALID}

    # global_credentials on both: one token for both
    g1, _, gcreds, _ = setup_api(gw, up, {"enable_client_credentials": True,
                                          "global_credentials": True}, creds=[{"name": "g"}])
    g2, _, _, _ = setup_api(gw, up, {"enable_client_credentials": True,
                                     "global_credentials": True})
    gc = gcreds[0]
    gt = token(gw, g1, {"grant_type": "client_credentials", "client_id": gc["client_id"],
                        "client_secret": gc["client_secret"]}).json()["access_token"]
    echo(http("GET", plain(gw, "/" + g2), headers=bearer(gt)))
    # ... but not where the plugin is not global
    r = http("GET", plain(gw, "/" + a), headers=bearer(gt))
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_token",
                        "error_description": "The access token is global, but the current "
                                             "plugin is configured without 'global_credentials'"}


def test_hashed_client_secret(gw, up):
    name, _, creds, _ = setup_api(gw, up, {"enable_client_credentials": True},
                                  creds=[{"name": "h", "hash_secret": True,
                                          "client_secret": "s3cret-value"}])
    cred = creds[0]
    assert cred["client_secret"].startswith("$argon2id$")
    ok = {"grant_type": "client_credentials", "client_id": cred["client_id"],
          "client_secret": "s3cret-value"}
    r = token(gw, name, ok)
    assert r.status_code == 200, r.text
    r = token(gw, name, dict(ok, client_secret="wrong"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"
    r = token(gw, name, dict(ok, client_secret=cred["client_secret"]))   # the hash itself
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def test_anonymous(gw, up):
    anon = admin(gw, "POST", "/consumers", json={"username": uniq("anon")})
    name = uniq("oa")
    name, _, creds, _ = setup_api(gw, up, {"enable_client_credentials": True,
                                           "anonymous": anon["id"]},
                                  creds=[{"name": "x"}], name=name,
                                  ready=lambda: "x-anonymous-consumer" in echo(
                                      http("GET", plain(gw, "/" + name)))["h"])
    j = echo(http("GET", plain(gw, "/" + name), headers={"X-Authenticated-Scope": "x"}))
    assert j["h"]["x-anonymous-consumer"] == "true"
    assert j["h"]["x-consumer-id"] == anon["id"]
    assert "x-authenticated-scope" not in j["h"]
    cred = creds[0]
    at = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                          "client_secret": cred["client_secret"]}).json()["access_token"]
    j = echo(http("GET", plain(gw, "/" + name), headers=bearer(at)))
    assert j["h"]["x-consumer-username"] == cred["username"]
    assert "x-anonymous-consumer" not in j["h"]


def test_many_concurrent_token_checks(gw, up, cc):
    """The store thread answers many requests at once; all of them resume."""
    import concurrent.futures as cf
    name, _, cred = cc
    at = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                          "client_secret": cred["client_secret"], "scope": "read"}
               ).json()["access_token"]

    def one(i):
        h = bearer(at) if i % 2 == 0 else bearer("bad%d" % i)
        return http("GET", plain(gw, "/%s/c%d" % (name, i)), headers=h).status_code

    with cf.ThreadPoolExecutor(16) as ex:
        codes = list(ex.map(one, range(64)))
    assert codes == [200 if i % 2 == 0 else 401 for i in range(64)]


def test_client_gone_while_the_token_is_checked(gw, up, cc):
    """Clients that close right after sending: their requests are canceled while the store
    thread works; the gateway keeps serving (and the sanitizers see no use after free)."""
    import socket
    name, _, cred = cc
    at = token(gw, name, {"grant_type": "client_credentials", "client_id": cred["client_id"],
                          "client_secret": cred["client_secret"], "scope": "read"}
               ).json()["access_token"]
    port = gw.ports["proxy"]
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        tok = at if i % 2 else "bad"
        s.sendall(("GET /%s/gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   % (name, tok)).encode())
        s.close()
    echo(http("GET", plain(gw, "/" + name), headers=bearer(at)))


DBLESS_YML = """_format_version: "3.0"
services:
- name: ai-orchestrator
  url: http://127.0.0.1:%d
  routes:
  - name: workflow
    paths: [/ai-workflow]
  plugins:
  - name: oauth2
    config:
      scopes: [ai:read, ai:write]
      mandatory_scope: true
      enable_client_credentials: true
      provision_key: pk-0123456789
consumers:
- username: ai-client-app
  oauth2_credentials:
  - name: app
    client_id: cid-1
    client_secret: csecret-1
"""


def test_dbless_tokens_are_node_local(aigw, up, tmp_path):
    """DB-less: aigw keeps tokens in the node's own store (the declarative data file), so the
    endpoints work; they are lost when the configuration is replaced or the node restarts."""
    f = tmp_path / "kong.yml"
    f.write_text(DBLESS_YML % up.port)
    g = aigw(env={"AIGW_DATABASE": "off", "AIGW_DECLARATIVE_CONFIG": str(f)})
    wait_until(lambda: http("GET", g.proxy_url + "/ai-workflow").status_code == 401, 10,
               what="oauth2 applied")
    r = http("POST", g.proxy_ssl_url + "/ai-workflow/oauth2/token",
             data={"grant_type": "client_credentials", "client_id": "cid-1",
                   "client_secret": "csecret-1", "scope": "ai:read"})
    assert r.status_code == 200, r.text
    at = r.json()["access_token"]
    r = http("GET", g.proxy_url + "/ai-workflow/x", headers=bearer(at))
    assert r.status_code == 200, r.text
    # POST /config replaces everything, tokens included
    r = requests.post(g.admin_url + "/config", data={"config": DBLESS_YML % up.port},
                      timeout=10)
    assert r.status_code == 201, r.text
    wait_until(lambda: http("GET", g.proxy_url + "/ai-workflow/x",
                            headers=bearer(at)).status_code == 401, 10, what="token gone")


def test_implicit_grant(gw, up):
    name, plugin, creds, _ = setup_api(
        gw, up, {"enable_implicit_grant": True},
        creds=[{"name": "imp", "redirect_uris": ["https://imp.example/cb?a=b"]}])
    cred, pk = creds[0], plugin["config"]["provision_key"]
    r = authorize(gw, name, {"provision_key": pk, "authenticated_userid": "u9",
                             "response_type": "token", "client_id": cred["client_id"],
                             "state": "s"})
    assert r.status_code == 200, r.text
    u = urllib.parse.urlsplit(r.json()["redirect_uri"])
    assert u.query == "a=b"
    f = urllib.parse.parse_qs(u.fragment)
    assert f["token_type"] == ["bearer"] and f["expires_in"] == ["7200"]
    assert f["state"] == ["s"] and "refresh_token" not in f
    assert list(urllib.parse.parse_qs(u.fragment)) == sorted(f)       # sorted as Kong
    j = echo(http("GET", plain(gw, "/" + name), headers=bearer(f["access_token"][0])))
    assert j["h"]["x-authenticated-userid"] == "u9"


def test_https_terminated_by_a_trusted_proxy(aigw, up):
    g = aigw(env={"AIGW_TRUSTED_IPS": "127.0.0.1"})
    name, _, creds, _ = setup_api(g, up, {"enable_client_credentials": True,
                                          "accept_http_if_already_terminated": True},
                                  creds=[{"name": "t"}])
    cred = creds[0]
    body = {"grant_type": "client_credentials", "client_id": cred["client_id"],
            "client_secret": cred["client_secret"]}
    r = token(g, name, body, https=False)
    assert r.json()["error_description"] == "You must use HTTPS"
    r = token(g, name, body, headers={"X-Forwarded-Proto": "https"}, https=False)
    assert r.status_code == 200, r.text
    r = token(g, name, body, headers={"X-Forwarded-Proto": "https, http"}, https=False)
    assert r.status_code == 400
    assert r.json() == {"error": "access_denied",
                        "error_description": "Only one X-Forwarded-Proto header allowed"}


def test_postgres_store(aigw, postgres, up):
    """The same flow with PostgreSQL: tokens and codes in its tables."""
    g = aigw(env=postgres.env_for_aigw())
    name, plugin, creds, _ = setup_api(
        g, up, {"enable_authorization_code": True, "enable_client_credentials": True},
        creds=[{"name": "pg", "redirect_uris": ["https://pg.example/cb"]}])
    cred, pk = creds[0], plugin["config"]["provision_key"]
    r = authorize(g, name, {"provision_key": pk, "authenticated_userid": "u",
                            "response_type": "code", "client_id": cred["client_id"]})
    assert r.status_code == 200, r.text
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(r.json()["redirect_uri"]).query)["code"][0]
    r = token(g, name, {"grant_type": "authorization_code", "client_id": cred["client_id"],
                        "client_secret": cred["client_secret"], "code": code})
    assert r.status_code == 200, r.text
    j = echo(http("GET", plain(g, "/" + name), headers=bearer(r.json()["access_token"])))
    assert j["h"]["x-authenticated-userid"] == "u"
