"""Several auth plugins on one route (Kong 3.9, reference/plugins.md 1.3 / 1.4): without
`anonymous` every plugin must pass ("logical AND"); with `anonymous` on each, the first to
authenticate wins and later ones do nothing ("logical OR"), the anonymous consumer being the
fallback; plugins scoped to a consumer apply once an auth plugin identified that consumer
(request-termination on the anonymous consumer is Kong's documented way to require one of
the methods); acl after either method. SQLite store."""
import base64
import uuid

import pytest

from aigwtest import get, wait_until
from proxytest import ERR_RE, admin, gw, uniq, up  # noqa: F401


def hdr(body, name):
    vals = [v for k, v in body["headers"] if k.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (vals or None)


def echo(r):
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("X-Upstream") == "echo"
    return r.json()


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def error_message(r):
    m = ERR_RE.match(r.text)
    assert m, r.text
    return m.group("m")


def route_with(gw, up, plugins):
    name = uniq("multi")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    for pname, cfg in plugins:
        admin(gw, "POST", "/routes/%s/plugins" % route["id"], json={"name": pname, "config": cfg})
    return "/" + name, route


@pytest.fixture(scope="module")
def people(gw):
    """kc: a key-auth consumer; bc: a basic-auth consumer; both: has both; anon: no
    credentials."""
    t = uuid.uuid4().hex[:8]
    out = {"t": t}
    for name in ("kc", "bc", "both", "anon"):
        out[name] = admin(gw, "POST", "/consumers", json={"username": "%s-%s" % (name, t)})
    out["kc_key"] = admin(gw, "POST", "/consumers/%s/key-auth" % out["kc"]["id"],
                          json={"key": "kc-key-" + t})
    out["both_key"] = admin(gw, "POST", "/consumers/%s/key-auth" % out["both"]["id"],
                            json={"key": "both-key-" + t})
    out["bc_user"] = "bc-user-" + t
    admin(gw, "POST", "/consumers/%s/basic-auth" % out["bc"]["id"],
          json={"username": out["bc_user"], "password": "Bc-Pw-1"})
    out["both_user"] = "both-user-" + t
    admin(gw, "POST", "/consumers/%s/basic-auth" % out["both"]["id"],
          json={"username": out["both_user"], "password": "Both-Pw-1"})
    admin(gw, "POST", "/consumers/%s/acls" % out["kc"]["id"], json={"group": "keyed"})
    admin(gw, "POST", "/consumers/%s/acls" % out["bc"]["id"], json={"group": "basic"})
    return out


def test_logical_and(gw, up, people):
    t = people["t"]
    path, _ = route_with(gw, up, [("key-auth", {}), ("basic-auth", {})])
    url = gw.proxy_url + path
    wait_until(lambda: get(url, headers={"apikey": "kc-key-" + t}).status_code == 401, 5,
               interval=0.02, what="plugins")
    # key-auth (1250) runs first
    r = get(url, headers={"Authorization": basic(people["bc_user"], "Bc-Pw-1")})
    assert r.status_code == 401 and error_message(r) == "No API key found in request"
    assert r.headers["WWW-Authenticate"] == "Key"
    # key passes, basic-auth then fails
    r = get(url, headers={"apikey": "kc-key-" + t})
    assert r.status_code == 401 and error_message(r) == "Unauthorized"
    assert r.headers["WWW-Authenticate"] == 'Basic realm="service"'
    # both: the later plugin (basic-auth) sets the final identity
    b = echo(get(url, headers={"apikey": "kc-key-" + t,
                               "Authorization": basic(people["bc_user"], "Bc-Pw-1")}))
    assert hdr(b, "X-Consumer-ID") == people["bc"]["id"]
    assert hdr(b, "X-Credential-Identifier") == people["bc_user"]


@pytest.fixture(scope="module")
def or_route(gw, up, people):
    """key-auth OR basic-auth, both with the anonymous consumer, which request-termination
    (scoped to it) answers with 401: Kong's recipe for "one of the methods is required"."""
    anon = people["anon"]
    path, route = route_with(gw, up, [("key-auth", {"anonymous": anon["id"]}),
                                      ("basic-auth", {"anonymous": anon["username"]})])
    admin(gw, "POST", "/plugins", json={
        "name": "request-termination", "route": {"id": route["id"]},
        "consumer": {"id": anon["id"]},
        "config": {"status_code": 401, "message": "Sign in with a key or a password"}})
    url = gw.proxy_url + path
    wait_until(lambda: get(url).status_code == 401, 5, interval=0.02, what="or route")
    return path


def test_or_nothing_is_terminated_for_anonymous(gw, or_route):
    r = get(gw.proxy_url + or_route)
    assert r.status_code == 401
    assert r.text == '{"message":"Sign in with a key or a password"}'
    assert "WWW-Authenticate" not in r.headers


def test_or_key_alone(gw, or_route, people):
    b = echo(get(gw.proxy_url + or_route, headers={"apikey": "kc-key-" + people["t"]}))
    assert hdr(b, "X-Consumer-ID") == people["kc"]["id"]
    assert hdr(b, "X-Credential-Identifier") == people["kc_key"]["id"]
    assert hdr(b, "X-Anonymous-Consumer") is None


def test_or_basic_alone(gw, or_route, people):
    # key-auth fails and sets the anonymous consumer; basic-auth (no credential yet) then
    # authenticates and replaces it
    b = echo(get(gw.proxy_url + or_route,
                 headers={"Authorization": basic(people["bc_user"], "Bc-Pw-1")}))
    assert hdr(b, "X-Consumer-ID") == people["bc"]["id"]
    assert hdr(b, "X-Credential-Identifier") == people["bc_user"]
    assert hdr(b, "X-Anonymous-Consumer") is None


def test_or_first_method_wins(gw, or_route, people):
    # a valid key: basic-auth does nothing, even with a wrong password
    b = echo(get(gw.proxy_url + or_route, headers={
        "apikey": "kc-key-" + people["t"], "Authorization": basic(people["bc_user"], "bad")}))
    assert hdr(b, "X-Consumer-ID") == people["kc"]["id"]
    assert hdr(b, "X-Credential-Identifier") == people["kc_key"]["id"]


def test_or_both_wrong_is_anonymous(gw, or_route, people):
    r = get(gw.proxy_url + or_route, headers={
        "apikey": "wrong", "Authorization": basic(people["bc_user"], "bad")})
    assert r.status_code == 401
    assert r.text == '{"message":"Sign in with a key or a password"}'


def test_or_without_termination_passes_anonymous(gw, up, people):
    anon = people["anon"]
    path, _ = route_with(gw, up, [("key-auth", {"anonymous": anon["id"]}),
                                  ("basic-auth", {"anonymous": anon["id"]})])
    url = gw.proxy_url + path
    wait_until(lambda: hdr(get(url).json(), "X-Anonymous-Consumer") == "true", 5,
               interval=0.02, what="anonymous")
    b = echo(get(url, headers={"Authorization": basic("ghost", "x"), "apikey": "ghost"}))
    assert hdr(b, "X-Consumer-ID") == anon["id"]
    assert hdr(b, "X-Consumer-Username") == anon["username"]
    assert hdr(b, "X-Anonymous-Consumer") == "true"
    assert hdr(b, "X-Credential-Identifier") is None


def test_or_with_acl(gw, up, people):
    anon = people["anon"]
    path, _ = route_with(gw, up, [("key-auth", {"anonymous": anon["id"]}),
                                  ("basic-auth", {"anonymous": anon["id"]}),
                                  ("acl", {"allow": ["keyed", "basic"]})])
    url = gw.proxy_url + path
    wait_until(lambda: get(url).status_code == 401, 5, interval=0.02, what="acl")
    # the anonymous consumer has no groups and no credential: acl says 401
    r = get(url)
    assert r.status_code == 401 and error_message(r) == "Unauthorized"
    b = echo(get(url, headers={"apikey": "kc-key-" + people["t"]}))
    assert hdr(b, "X-Consumer-Groups") == "keyed"
    b = echo(get(url, headers={"Authorization": basic(people["bc_user"], "Bc-Pw-1")}))
    assert hdr(b, "X-Consumer-Groups") == "basic"
    # "both" has credentials for both methods but no group
    r = get(url, headers={"apikey": "both-key-" + people["t"]})
    assert r.status_code == 403 and error_message(r) == "You cannot consume this service"


def test_consumer_scoped_plugin_after_authentication(gw, up, people):
    """request-termination scoped to one consumer (no route): applies to that consumer on any
    route once key-auth or basic-auth identified it, and to nobody else."""
    t = uuid.uuid4().hex[:8]
    blocked = admin(gw, "POST", "/consumers", json={"username": "blocked-" + t})
    admin(gw, "POST", "/consumers/%s/key-auth" % blocked["id"], json={"key": "blocked-" + t})
    admin(gw, "POST", "/consumers/%s/basic-auth" % blocked["id"],
          json={"username": "blocked-user-" + t, "password": "Blk-Pw-1"})
    path1, _ = route_with(gw, up, [("key-auth", {})])
    path2, _ = route_with(gw, up, [("basic-auth", {})])
    admin(gw, "POST", "/consumers/%s/plugins" % blocked["id"], json={
        "name": "request-termination", "config": {"status_code": 403,
                                                  "message": "account suspended"}})
    u1, u2 = gw.proxy_url + path1, gw.proxy_url + path2
    wait_until(lambda: get(u1, headers={"apikey": "blocked-" + t}).status_code == 403, 5,
               interval=0.02, what="consumer plugin")
    r = get(u1, headers={"apikey": "blocked-" + t})
    assert r.text == '{"message":"account suspended"}'
    wait_until(lambda: get(u2, headers={"Authorization": basic("blocked-user-" + t,
                                                               "Blk-Pw-1")}).status_code == 403,
               5, interval=0.05, what="consumer plugin (basic)")
    r = get(u2, headers={"Authorization": basic("blocked-user-" + t, "Blk-Pw-1")})
    assert r.text == '{"message":"account suspended"}'
    # a failed authentication never reaches the consumer's plugin
    r = get(u2, headers={"Authorization": basic("blocked-user-" + t, "wrong")})
    assert r.status_code == 401 and error_message(r) == "Unauthorized"
    # other consumers pass
    assert hdr(echo(get(u1, headers={"apikey": "kc-key-" + people["t"]})),
               "X-Consumer-ID") == people["kc"]["id"]
    assert hdr(echo(get(u2, headers={"Authorization": basic(people["bc_user"], "Bc-Pw-1")})),
               "X-Consumer-ID") == people["bc"]["id"]
