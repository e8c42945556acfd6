"""The acl plugin at the proxy (Kong 3.9 kong/plugins/acl): allow / deny lists against the
authenticated consumer's groups, Kong's error JSON answers (403 `You cannot consume this
service`, 401 `Unauthorized`), the upstream header X-Consumer-Groups and hide_groups_header;
aigw's whitelist / blacklist aliases, including seed 000's exact admin call. Consumers are
authenticated with key-auth. SQLite store."""
import uuid

import pytest
import requests

from aigwtest import get, wait_until
from proxytest import ERR_RE, JSON_CT, admin, gw, uniq, up  # noqa: F401

FORBIDDEN = "You cannot consume this service"


def consumer(gw, groups=(), key=None, username=None):
    c = admin(gw, "POST", "/consumers", json={"username": username or uniq("c")})
    for g in groups:
        admin(gw, "POST", "/consumers/%s/acls" % c["id"], json={"group": g})
    if key:
        admin(gw, "POST", "/consumers/%s/key-auth" % c["id"], json={"key": key})
    return c


def route_with(gw, up, plugins):
    name = uniq("acl")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    for pname, cfg in plugins:
        body = {"name": pname}
        if cfg is not None:
            body["config"] = cfg
        admin(gw, "POST", "/routes/%s/plugins" % route["id"], json=body)
    return "/" + name, route


def hdr(body, name):
    vals = [v for k, v in body["headers"] if k.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (vals or None)


def groups(b):
    """X-Consumer-Groups as the set it lists ("g1, g2": the snapshot's order, which like
    Kong's database order is not the order of creation)."""
    v = hdr(b, "X-Consumer-Groups")
    assert v is not None and isinstance(v, str), v
    parts = v.split(", ")
    assert all(p and "," not in p and p.strip() == p for p in parts), v
    return sorted(parts)


def echo(r):
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("X-Upstream") == "echo"
    return r.json()


def assert_error(r, status, message):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == JSON_CT
    m = ERR_RE.match(r.text)
    assert m, r.text
    assert m.group("m") == message
    assert m.group("rid") == r.headers["X-Kong-Request-Id"]
    assert "WWW-Authenticate" not in r.headers
    assert "X-Upstream" not in r.headers


def key(k):
    return {"apikey": k}


def settle(gw, path, k, want):
    wait_until(lambda: get(gw.proxy_url + path, headers=key(k)).status_code == want, 5,
               interval=0.02, what=path)


@pytest.fixture(scope="module")
def allow_site(gw, up):
    t = uuid.uuid4().hex[:8]
    op = consumer(gw, ["ai-operator", "ai-observer"], key="op-" + t)
    obs = consumer(gw, ["ai-observer"], key="obs-" + t)
    none = consumer(gw, [], key="none-" + t)
    path, _ = route_with(gw, up, [("key-auth", {}),
                                  ("acl", {"allow": ["ai-operator", "ai-admin"]})])
    settle(gw, path, "obs-" + t, 403)
    return {"path": path, "t": t, "op": op, "obs": obs, "none": none}


def test_allow_member_passes_with_groups_header(gw, allow_site):
    b = echo(get(gw.proxy_url + allow_site["path"], headers=key("op-" + allow_site["t"])))
    assert groups(b) == sorted(["ai-operator", "ai-observer"])
    assert hdr(b, "X-Consumer-ID") == allow_site["op"]["id"]


def test_allow_non_member_forbidden(gw, allow_site):
    assert_error(get(gw.proxy_url + allow_site["path"], headers=key("obs-" + allow_site["t"])),
                 403, FORBIDDEN)


def test_allow_consumer_without_groups_forbidden(gw, allow_site):
    assert_error(get(gw.proxy_url + allow_site["path"], headers=key("none-" + allow_site["t"])),
                 403, FORBIDDEN)


def test_client_groups_header_overwritten(gw, allow_site):
    b = echo(get(gw.proxy_url + allow_site["path"],
                 headers={"apikey": "op-" + allow_site["t"], "X-Consumer-Groups": "ai-admin"}))
    assert groups(b) == sorted(["ai-operator", "ai-observer"])
    # a client claiming a group does not get in
    assert_error(get(gw.proxy_url + allow_site["path"],
                     headers={"apikey": "obs-" + allow_site["t"],
                              "X-Consumer-Groups": "ai-operator"}), 403, FORBIDDEN)


def test_group_added_later_applies(gw, allow_site):
    t = uuid.uuid4().hex[:8]
    c = consumer(gw, ["x"], key="late-" + t)
    url = gw.proxy_url + allow_site["path"]
    wait_until(lambda: get(url, headers=key("late-" + t)).status_code == 403, 5, interval=0.02,
               what="consumer")
    admin(gw, "POST", "/consumers/%s/acls" % c["id"], json={"group": "ai-admin"})
    wait_until(lambda: get(url, headers=key("late-" + t)).status_code == 200, 5, interval=0.02,
               what="group added")
    assert groups(echo(get(url, headers=key("late-" + t)))) == sorted(["x", "ai-admin"])


def test_no_authentication_is_401(gw, up):
    path, _ = route_with(gw, up, [("acl", {"allow": ["a"]})])
    wait_until(lambda: get(gw.proxy_url + path).status_code == 401, 5, interval=0.02,
               what=path)
    assert_error(get(gw.proxy_url + path), 401, "Unauthorized")


def test_deny_list(gw, up):
    t = uuid.uuid4().hex[:8]
    bad = consumer(gw, ["banned", "other"], key="bad-" + t)
    good = consumer(gw, ["other", "more"], key="good-" + t)
    none = consumer(gw, [], key="none-" + t)
    path, _ = route_with(gw, up, [("key-auth", {}), ("acl", {"deny": ["banned"]})])
    settle(gw, path, "bad-" + t, 403)
    url = gw.proxy_url + path
    assert_error(get(url, headers=key("bad-" + t)), 403, FORBIDDEN)
    b = echo(get(url, headers=key("good-" + t)))
    assert groups(b) == sorted(["other", "more"])
    assert hdr(b, "X-Consumer-ID") == good["id"]
    # no groups: passes a deny list, and no groups header goes up (not even the client's)
    b = echo(get(url, headers={"apikey": "none-" + t, "X-Consumer-Groups": "banned"}))
    assert hdr(b, "X-Consumer-ID") == none["id"]
    assert hdr(b, "X-Consumer-Groups") is None
    assert bad


def test_hide_groups_header(gw, up):
    t = uuid.uuid4().hex[:8]
    consumer(gw, ["g1"], key="h-" + t)
    consumer(gw, ["g2"], key="h2-" + t)
    path, _ = route_with(gw, up, [("key-auth", {}),
                                  ("acl", {"allow": ["g1"], "hide_groups_header": True})])
    settle(gw, path, "h2-" + t, 403)
    b = echo(get(gw.proxy_url + path, headers={"apikey": "h-" + t, "X-Consumer-Groups": "fake"}))
    assert hdr(b, "X-Consumer-Groups") is None


def test_always_use_authenticated_groups_accepted(gw, up):
    t = uuid.uuid4().hex[:8]
    consumer(gw, ["g1"], key="au-" + t)
    consumer(gw, ["g2"], key="au2-" + t)
    path, _ = route_with(gw, up, [("key-auth", {}),
                                  ("acl", {"allow": ["g1"],
                                           "always_use_authenticated_groups": True})])
    settle(gw, path, "au2-" + t, 403)
    assert hdr(echo(get(gw.proxy_url + path, headers=key("au-" + t))),
               "X-Consumer-Groups") == "g1"
    assert_error(get(gw.proxy_url + path, headers=key("au2-" + t)), 403, FORBIDDEN)


def test_anonymous_consumer_groups(gw, up):
    """The anonymous consumer's own groups are checked; without groups an allow list answers
    401 (no credential), not 403."""
    t = uuid.uuid4().hex[:8]
    anon_ok = consumer(gw, ["public"])
    anon_none = consumer(gw, [])
    consumer(gw, ["public"], key="k-" + t)
    p1, _ = route_with(gw, up, [("key-auth", {"anonymous": anon_ok["id"]}),
                                ("acl", {"allow": ["public"]})])
    p2, _ = route_with(gw, up, [("key-auth", {"anonymous": anon_none["id"]}),
                                ("acl", {"allow": ["public"]})])
    wait_until(lambda: hdr(get(gw.proxy_url + p1).json(), "X-Consumer-Groups") == "public", 5,
               interval=0.02, what=p1)
    wait_until(lambda: get(gw.proxy_url + p2).status_code == 401, 5, interval=0.02, what=p2)
    b = echo(get(gw.proxy_url + p1))
    assert hdr(b, "X-Anonymous-Consumer") == "true"
    assert hdr(b, "X-Consumer-Groups") == "public"
    assert_error(get(gw.proxy_url + p2), 401, "Unauthorized")
    # with a real key the consumer's own groups count
    assert hdr(echo(get(gw.proxy_url + p2, headers=key("k-" + t))), "X-Consumer-Groups") == \
        "public"


def test_blacklist_alias(gw, up):
    t = uuid.uuid4().hex[:8]
    consumer(gw, ["evil"], key="e-" + t)
    consumer(gw, ["fine"], key="f-" + t)
    name = uniq("bl")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    admin(gw, "POST", "/services/%s/plugins" % name, json={"name": "key-auth"})
    p = admin(gw, "POST", "/services/%s/plugins" % name,
              data="name=acl&config.blacklist=evil,worse",
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert p["config"]["deny"] == ["evil", "worse"] and p["config"]["allow"] is None
    settle(gw, "/" + name, "e-" + t, 403)
    assert_error(get(gw.proxy_url + "/" + name, headers=key("e-" + t)), 403, FORBIDDEN)
    assert echo(get(gw.proxy_url + "/" + name, headers=key("f-" + t)))


def test_seed000_acl_whitelist(aigw, up):
    """Seed 000 section 4, the admin calls as written (form data), on a fresh daemon; the
    service points at the echo upstream instead of ai-orchestrator:5000, and consumers are
    authenticated with key-auth (the seed uses jwt) so only acl is under test here."""
    gw = aigw()

    def curl(method, path, *data):
        r = requests.request(method, gw.admin_url + path, data="&".join(data),
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=10)
        assert r.status_code == 201, (path, r.status_code, r.text)
        return r.json()

    curl("POST", "/services", "name=ai-orchestrator", "url=http://127.0.0.1:%d" % up.port)
    curl("POST", "/services/ai-orchestrator/routes", "paths[]=/ai-workflow")
    curl("POST", "/services/ai-orchestrator/plugins", "name=key-auth")
    app = curl("POST", "/consumers", "username=ai-client-app")
    curl("POST", "/consumers/ai-client-app/key-auth", "key=app-key")
    curl("POST", "/consumers/ai-client-app/acls", "group=ai-operator")
    curl("POST", "/consumers", "username=other-app")
    curl("POST", "/consumers/other-app/key-auth", "key=other-key")
    curl("POST", "/consumers/other-app/acls", "group=ai-observer")
    # curl -i -X POST http://localhost:8001/services/ai-orchestrator/plugins \
    #   --data "name=acl" --data "config.whitelist=ai-operator,ai-admin"
    aclp = curl("POST", "/services/ai-orchestrator/plugins", "name=acl",
                "config.whitelist=ai-operator,ai-admin")
    assert aclp["config"]["allow"] == ["ai-operator", "ai-admin"]
    url = gw.proxy_url + "/ai-workflow/health"
    wait_until(lambda: get(url, headers=key("other-key")).status_code == 403, 5, interval=0.02,
               what="acl live")
    # "Only consumers with the correct ACL group will be authorized."
    b = echo(get(url, headers=key("app-key")))
    assert b["target"] == "/health"
    assert hdr(b, "X-Consumer-Username") == "ai-client-app"
    assert hdr(b, "X-Consumer-ID") == app["id"]
    assert hdr(b, "X-Consumer-Groups") == "ai-operator"
    assert_error(get(url, headers=key("other-key")), 403, FORBIDDEN)
    r = get(url)
    assert r.status_code == 401 and r.json()["message"] == "No API key found in request"
