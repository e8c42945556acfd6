"""The basic-auth plugin at the proxy (Kong 3.9 kong/plugins/basic-auth): Proxy-Authorization
then Authorization, Kong's 401 error JSON `Unauthorized` with `WWW-Authenticate: Basic
realm="..."` for every failure, the consumer headers (X-Credential-Identifier = username),
hide_credentials, anonymous. aigw difference (differences.md): passwords are Argon2id hashes,
checked off the event loop, successes cached per worker, failures rate-limited per credential
(10 failures within 10 s lock the credential's logins for 5 s)."""
import base64
import json
import socket
import threading
import time

import pytest
import requests

from aigwtest import RawConn, get, wait_until
from proxytest import ERR_RE, JSON_CT, admin, gw, uniq, up  # noqa: F401


def consumer(gw, username=None, custom_id=None, creds=()):
    data = {"username": username or uniq("c")}
    if custom_id:
        data["custom_id"] = custom_id
    c = admin(gw, "POST", "/consumers", json=data)
    out = []
    for user, pw in creds:
        out.append(admin(gw, "POST", "/consumers/%s/basic-auth" % c["id"],
                         json={"username": user, "password": pw}))
    return c, out


def route_with(gw, up, plugins, prefix="ba"):
    name = uniq(prefix)
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    for pname, cfg in plugins:
        admin(gw, "POST", "/routes/%s/plugins" % route["id"], json={"name": pname, "config": cfg})
    return "/" + name, route


def settle(gw, path, want=401):
    wait_until(lambda: get(gw.proxy_url + path).status_code == want, 5, interval=0.02,
               what=path)


def hdr(body, name):
    vals = [v for k, v in body["headers"] if k.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (vals or None)


def echo(r):
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("X-Upstream") == "echo"
    return r.json()


def basic(user, pw, scheme="Basic"):
    raw = (user + ":" + pw).encode() if isinstance(user, str) else user
    return "%s %s" % (scheme, base64.b64encode(raw).decode())


def assert_401(r, www='Basic realm="service"'):
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers["Content-Type"] == JSON_CT
    m = ERR_RE.match(r.text)
    assert m, r.text
    assert m.group("m") == "Unauthorized"
    assert m.group("rid") == r.headers["X-Kong-Request-Id"]
    assert r.headers["WWW-Authenticate"] == www
    assert "X-Upstream" not in r.headers


@pytest.fixture(scope="module")
def site(gw, up):
    u1, u2 = uniq("alice"), uniq("bob")
    c1, (cr1,) = consumer(gw, custom_id="cid-alice", creds=[(u1, "Alice-Pw-1")])
    c2, (cr2,) = consumer(gw, creds=[(u2, "p:a:ss:")])
    path, _ = route_with(gw, up, [("basic-auth", {})])
    settle(gw, path)
    return {"path": path, "u1": u1, "u2": u2, "c1": c1, "c2": c2, "cr1": cr1, "cr2": cr2}


def test_no_header(gw, site):
    assert_401(get(gw.proxy_url + site["path"]))


def test_valid_login_sets_consumer_headers(gw, site):
    auth = basic(site["u1"], "Alice-Pw-1")
    b = echo(get(gw.proxy_url + site["path"] + "/x?y=1", headers={"Authorization": auth}))
    assert hdr(b, "X-Consumer-ID") == site["c1"]["id"]
    assert hdr(b, "X-Consumer-Username") == site["c1"]["username"]
    assert hdr(b, "X-Consumer-Custom-ID") == "cid-alice"
    assert hdr(b, "X-Credential-Identifier") == site["u1"]
    assert hdr(b, "X-Anonymous-Consumer") is None
    assert hdr(b, "Authorization") == auth          # hide_credentials false
    assert b["target"] == "/x?y=1"


def test_password_with_colons(gw, site):
    b = echo(get(gw.proxy_url + site["path"], headers={"Authorization": basic(site["u2"],
                                                                              "p:a:ss:")}))
    assert hdr(b, "X-Consumer-ID") == site["c2"]["id"]
    assert hdr(b, "X-Consumer-Custom-ID") is None
    assert_401(get(gw.proxy_url + site["path"], headers={"Authorization": basic(site["u2"],
                                                                                "p:a:ss")}))


def test_wrong_password_and_unknown_user(gw, site):
    url = gw.proxy_url + site["path"]
    assert_401(get(url, headers={"Authorization": basic(site["u1"], "alice-pw-1")}))
    assert_401(get(url, headers={"Authorization": basic(site["u1"], "")}))
    assert_401(get(url, headers={"Authorization": basic("nobody-" + site["u1"], "Alice-Pw-1")}))


@pytest.mark.parametrize("value", [
    "", "Basic", "Basic ", "Bearer abc", "Basic !!!notbase64!!!", "Basic " + "QQ" * 3 + "Q",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b":only-password").decode(),
    "Digest username=x",
])
def test_malformed_headers(gw, site, value):
    assert_401(get(gw.proxy_url + site["path"], headers={"Authorization": value}))


def test_scheme_variants(gw, site):
    url = gw.proxy_url + site["path"]
    # [Bb]asic, any spaces, padding optional
    for scheme in ("basic", "Basic  "):
        v = "%s %s" % (scheme, base64.b64encode(("%s:Alice-Pw-1" % site["u1"]).encode())
                       .decode())
        assert echo(get(url, headers={"Authorization": v}))
    raw = base64.b64encode(("%s:Alice-Pw-1x" % site["u1"]).encode()).decode()
    assert raw.endswith("=")
    b = echo(get(url, headers={"Authorization": "Basic " + basic(site["u1"], "Alice-Pw-1")[6:]
                               .rstrip("=")}))
    assert hdr(b, "X-Consumer-ID") == site["c1"]["id"]
    # BASIC is not [Bb]asic
    assert_401(get(url, headers={"Authorization": "BASIC " + basic(site["u1"],
                                                                   "Alice-Pw-1")[6:]}))


def test_client_consumer_headers_overwritten(gw, site):
    b = echo(get(gw.proxy_url + site["path"], headers={
        "Authorization": basic(site["u2"], "p:a:ss:"), "X-Consumer-ID": "fake",
        "X-Consumer-Username": "root", "X-Consumer-Custom-ID": "fake",
        "X-Credential-Identifier": "fake", "X-Anonymous-Consumer": "true"}))
    assert hdr(b, "X-Consumer-ID") == site["c2"]["id"]
    assert hdr(b, "X-Consumer-Username") == site["c2"]["username"]
    assert hdr(b, "X-Consumer-Custom-ID") is None
    assert hdr(b, "X-Credential-Identifier") == site["u2"]
    assert hdr(b, "X-Anonymous-Consumer") is None


def test_proxy_authorization_first(gw, site):
    url = gw.proxy_url + site["path"]
    good1 = basic(site["u1"], "Alice-Pw-1")
    good2 = basic(site["u2"], "p:a:ss:")
    # both valid: Proxy-Authorization wins
    b = echo(get(url, headers={"Proxy-Authorization": good1, "Authorization": good2}))
    assert hdr(b, "X-Consumer-ID") == site["c1"]["id"]
    # Proxy-Authorization with an unknown user: Authorization is tried
    b = echo(get(url, headers={"Proxy-Authorization": basic("ghost", "x"),
                               "Authorization": good2}))
    assert hdr(b, "X-Consumer-ID") == site["c2"]["id"]
    # malformed Proxy-Authorization: Authorization is tried
    b = echo(get(url, headers={"Proxy-Authorization": "junk", "Authorization": good2}))
    assert hdr(b, "X-Consumer-ID") == site["c2"]["id"]
    # a known user with a wrong password in Proxy-Authorization fails, whatever follows
    assert_401(get(url, headers={"Proxy-Authorization": basic(site["u1"], "bad"),
                                 "Authorization": good2}))
    # Proxy-Authorization alone
    b = echo(get(url, headers={"Proxy-Authorization": good1}))
    assert hdr(b, "X-Credential-Identifier") == site["u1"]


def test_realm(gw, up):
    path, _ = route_with(gw, up, [("basic-auth", {"realm": "ai-land"})])
    settle(gw, path)
    assert_401(get(gw.proxy_url + path), www='Basic realm="ai-land"')
    assert_401(get(gw.proxy_url + path, headers={"Authorization": "Basic x"}),
               www='Basic realm="ai-land"')


def test_hide_credentials(gw, up):
    u = uniq("hide")
    c, _ = consumer(gw, creds=[(u, "Hide-Pw-1")])
    path, _ = route_with(gw, up, [("basic-auth", {"hide_credentials": True})])
    settle(gw, path)
    url = gw.proxy_url + path
    good = basic(u, "Hide-Pw-1")
    b = echo(get(url, headers={"Authorization": good, "X-Other": "1"}))
    assert hdr(b, "X-Consumer-ID") == c["id"]
    assert hdr(b, "Authorization") is None and hdr(b, "X-Other") == "1"
    # Proxy-Authorization used: it is removed; Authorization was not read and goes on
    b = echo(get(url, headers={"Proxy-Authorization": good, "Authorization": "Bearer t"}))
    assert hdr(b, "Proxy-Authorization") is None
    assert hdr(b, "Authorization") == "Bearer t"
    # Proxy-Authorization unknown, Authorization used: both were read, both removed
    b = echo(get(url, headers={"Proxy-Authorization": basic("ghost", "x"),
                               "Authorization": good}))
    assert hdr(b, "Proxy-Authorization") is None and hdr(b, "Authorization") is None


def test_anonymous(gw, up):
    anon, _ = consumer(gw, username=uniq("anon"))
    u = uniq("real")
    real, _ = consumer(gw, creds=[(u, "Real-Pw-1")])
    path, _ = route_with(gw, up, [("basic-auth", {"anonymous": anon["username"]})])
    url = gw.proxy_url + path
    wait_until(lambda: hdr(get(url).json(), "X-Anonymous-Consumer") == "true", 5,
               interval=0.02, what="anonymous")
    for h in ({}, {"Authorization": "junk"}, {"Authorization": basic(u, "wrong")},
              {"Authorization": basic("ghost", "x")}):
        r = get(url, headers=h)
        b = echo(r)
        assert hdr(b, "X-Consumer-ID") == anon["id"]
        assert hdr(b, "X-Anonymous-Consumer") == "true"
        assert hdr(b, "X-Credential-Identifier") is None
        assert "WWW-Authenticate" not in r.headers
    b = echo(get(url, headers={"Authorization": basic(u, "Real-Pw-1")}))
    assert hdr(b, "X-Consumer-ID") == real["id"]
    assert hdr(b, "X-Credential-Identifier") == u
    assert hdr(b, "X-Anonymous-Consumer") is None


def test_password_change_invalidates_cache(gw, up):
    u = uniq("chg")
    c, (cred,) = consumer(gw, creds=[(u, "Old-Pw-1")])
    path, _ = route_with(gw, up, [("basic-auth", {})])
    settle(gw, path)
    url = gw.proxy_url + path
    wait_until(lambda: get(url, headers={"Authorization": basic(u, "Old-Pw-1")}).status_code
               == 200, 5, interval=0.02, what="credential")
    # cached now; change the password
    admin(gw, "PATCH", "/basic-auths/%s" % cred["id"], json={"password": "New-Pw-2"})
    wait_until(lambda: get(url, headers={"Authorization": basic(u, "New-Pw-2")}).status_code
               == 200, 5, interval=0.05, what="new password")
    assert_401(get(url, headers={"Authorization": basic(u, "Old-Pw-1")}))
    # deleting the credential ends it, cached or not
    admin(gw, "DELETE", "/basic-auths/%s" % cred["id"])
    wait_until(lambda: get(url, headers={"Authorization": basic(u, "New-Pw-2")}).status_code
               == 401, 5, interval=0.05, what="deleted")


def test_failures_lock_the_credential_for_a_while(gw, up):
    u, other = uniq("lock"), uniq("free")
    c, _ = consumer(gw, creds=[(u, "Lock-Pw-1")])
    c2, _ = consumer(gw, creds=[(other, "Free-Pw-1")])
    path, _ = route_with(gw, up, [("basic-auth", {})])
    settle(gw, path)
    url = gw.proxy_url + path
    for i in range(10):
        assert_401(get(url, headers={"Authorization": basic(u, "guess-%d" % i)}))
    t0 = time.monotonic()
    # locked: even the right password is refused (it was never cached as a success)
    assert_401(get(url, headers={"Authorization": basic(u, "Lock-Pw-1")}))
    # another credential is not affected
    assert echo(get(url, headers={"Authorization": basic(other, "Free-Pw-1")}))
    # after the lock (5 s), the right password works again
    wait_until(lambda: get(url, headers={"Authorization": basic(u, "Lock-Pw-1")}).status_code
               == 200, 10, interval=0.25, what="lock released")
    assert time.monotonic() - t0 >= 3.5


def test_logins_do_not_block_the_loop(gw, up):
    """20 logins whose hashes are computed at once; a request to a route without auth is
    answered meanwhile without waiting for them."""
    users = [(uniq("par"), "Par-Pw-%d" % i) for i in range(20)]
    c, _ = consumer(gw, creds=users)
    path, _ = route_with(gw, up, [("basic-auth", {})])
    free, _ = route_with(gw, up, [], prefix="free")
    settle(gw, path)
    settle(gw, free, 200)
    url = gw.proxy_url + path
    results = [None] * len(users)
    start = threading.Event()

    def login(i):
        start.wait(5)
        results[i] = get(url, headers={"Authorization": basic(*users[i])}, timeout=30)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(len(users))]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    start.set()
    time.sleep(0.03)
    plain = []
    for _ in range(3):
        q0 = time.monotonic()
        r = get(gw.proxy_url + free, timeout=10)
        plain.append((time.monotonic() - q0, r.status_code))
    for t in threads:
        t.join(30)
    total = time.monotonic() - t0
    assert all(s == 200 for _, s in plain)
    for r in results:
        assert r is not None and r.status_code == 200, r
        assert hdr(r.json(), "X-Consumer-ID") == c["id"]
    # the plain requests were answered long before the logins finished
    assert max(d for d, _ in plain) < 0.5, (plain, total)
    assert max(d for d, _ in plain) < total / 2, (plain, total)


def test_client_leaving_during_the_hash(gw, up):
    u = uniq("leave")
    consumer(gw, creds=[(u, "Leave-Pw-1")])
    path, _ = route_with(gw, up, [("basic-auth", {})])
    settle(gw, path)
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
           % (path, basic(u, "Leave-Pw-1"))).encode()
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", gw.ports["proxy"]), timeout=5)
        s.sendall(req)
        s.close()
    time.sleep(0.5)
    # the daemon is fine and the credential still works (sanitizers are checked at teardown)
    c = RawConn(gw.ports["proxy"])
    c.send(req)
    resp = c.read_response()
    c.close()
    assert resp.status == 200
    assert json.loads(resp.body)["method"] == "GET"


def test_keep_alive_connection_after_async_login(gw, site):
    c = RawConn(gw.ports["proxy"])
    for pw, want in (("Alice-Pw-1", 200), ("nope", 401), ("Alice-Pw-1", 200)):
        c.send(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
                % (site["path"], basic(site["u1"], pw))).encode())
        assert c.read_response().status == want
    c.close()


def test_shutdown_while_hashing(aigw, up):
    """SIGTERM while logins are being hashed: a clean exit, no leak or sanitizer report
    (checked by the fixture at teardown)."""
    inst = aigw()
    u = uniq("bye")
    c = requests.post(inst.admin_url + "/consumers", json={"username": uniq("c")}, timeout=10)
    assert c.status_code == 201
    assert requests.post(inst.admin_url + "/consumers/%s/basic-auth" % c.json()["id"],
                         json={"username": u, "password": "Bye-Pw-1"},
                         timeout=10).status_code == 201
    path, _ = route_with(inst, up, [("basic-auth", {})])
    settle(inst, path)
    socks = []
    for i in range(12):
        pw = "Bye-Pw-1" if i % 2 else "wrong-%d" % i
        s = socket.create_connection(("127.0.0.1", inst.ports["proxy"]), timeout=5)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
                   % (path, basic(u, pw))).encode())
        socks.append(s)
    time.sleep(0.02)
    assert inst.stop(timeout=20) == 0
    for s in socks:
        s.close()


def test_concurrent_logins_same_credential(gw, up):
    """20 simultaneous logins of one user (one check under way per worker, the others wait
    for it), mixed with clients that leave and wrong passwords: every answer is right."""
    u = uniq("same")
    c, _ = consumer(gw, creds=[(u, "Same-Pw-1")])
    path, _ = route_with(gw, up, [("basic-auth", {})])
    settle(gw, path)
    url = gw.proxy_url + path
    leavers = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", gw.ports["proxy"]), timeout=5)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
                   % (path, basic(u, "Same-Pw-1"))).encode())
        leavers.append(s)
    results = {}
    start = threading.Event()

    def login(i, pw):
        start.wait(5)
        results[i] = get(url, headers={"Authorization": basic(u, pw)}, timeout=30)

    pws = ["Same-Pw-1"] * 20 + ["Same-Pw-2"] * 3
    threads = [threading.Thread(target=login, args=(i, pw)) for i, pw in enumerate(pws)]
    for t in threads:
        t.start()
    start.set()
    for s in leavers:
        s.close()
    for t in threads:
        t.join(30)
    for i, pw in enumerate(pws):
        r = results.get(i)
        assert r is not None
        if pw == "Same-Pw-1":
            assert r.status_code == 200, r.text
            assert hdr(r.json(), "X-Consumer-ID") == c["id"]
        else:
            assert_401(r)
