"""The cors plugin at the proxy (Kong 3.9 kong/plugins/cors, reference/plugins.md "cors").

Preflights (OPTIONS + Origin + Access-Control-Request-Method) are answered by aigw with 200,
an empty body and the Access-Control-* headers, before any auth plugin (a jwt-protected route
still answers its preflight); other requests are proxied and get Access-Control-Allow-Origin,
-Credentials and -Expose-Headers on the way back, also on answers produced by other plugins.
Origins: none / "*", one plain origin (sent verbatim), lists of plain origins (compared after
Kong's normalisation: default ports dropped, case kept), regexes (anchored; matched against
the host when the pattern has no ':'), the literal `null` origin. Every response is read raw,
so repeated headers (Vary) and exact values are asserted as a browser receives them."""
import socketserver
import threading

import pytest
import requests

from aigwtest import RawConn, free_port, wait_until
from proxytest import ERR_RE, JSON_CT, admin, gw, uniq, up  # noqa: F401
from upstreams import Upstream

DEFAULT_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"


def raw(gw, method, path, headers=None):
    with RawConn(gw.ports["proxy"]) as c:
        return c.request(method, path, headers=headers)


def site(gw, up_port, config, extra=()):
    """A service + route with the cors plugin (config None: defaults) and extra plugins."""
    name = uniq("cors")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up_port})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    body = {"name": "cors"}
    if config is not None:
        body["config"] = config
    admin(gw, "POST", "/routes/%s/plugins" % route["id"], json=body)
    for pname, cfg in extra:
        admin(gw, "POST", "/routes/%s/plugins" % route["id"], json={"name": pname, "config": cfg})
    path = "/" + name
    # live once the cors plugin is in (every configuration sets one of these on a GET with an
    # Origin)
    def live():
        r = raw(gw, "GET", path, {"Origin": "http://probe.test"})
        acao = r.header("Access-Control-Allow-Origin")
        return r.status != 404 and ((acao is not None and acao != "http://upstream.test") or
                                    "Origin" in r.header_all("Vary"))
    wait_until(live, 5, interval=0.02, what=path)
    return path


def preflight(gw, path, origin="http://a.test", method="POST", extra=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    h.update(extra or {})
    return raw(gw, "OPTIONS", path, h)


def cors_headers(r):
    return sorted((k, v) for k, v in r.headers
                  if k.lower().startswith("access-control-") or k.lower() == "vary")


def assert_preflight_answer(r):
    """aigw's own preflight answer: 200, empty body, never the upstream."""
    assert r.status == 200, r
    assert r.body == b""
    assert r.header("Content-Length") == "0"
    assert r.header("X-Upstream") is None
    assert r.header("Content-Type") is None


def proxied(r, status=200):
    assert r.status == status, r
    assert r.header("X-Upstream") == "echo"
    return r.json()


# --------------------------------------------------------------------------------------------
# defaults: every origin


@pytest.fixture(scope="module")
def default_site(gw, up):
    return site(gw, up.port, None)


def test_default_preflight(gw, up, default_site):
    n = len(up.requests)
    r = preflight(gw, default_site)
    assert_preflight_answer(r)
    assert cors_headers(r) == [("Access-Control-Allow-Methods", DEFAULT_METHODS),
                               ("Access-Control-Allow-Origin", "*")]
    assert len(up.requests) == n


def test_default_preflight_echoes_request_headers(gw, default_site):
    r = preflight(gw, default_site, extra={"Access-Control-Request-Headers": "X-Foo, Content-Type"})
    assert_preflight_answer(r)
    assert r.header("Access-Control-Allow-Headers") == "X-Foo, Content-Type"
    assert r.header("Access-Control-Max-Age") is None
    assert r.header("Access-Control-Allow-Credentials") is None
    assert r.header_all("Vary") == []


def test_default_simple_request(gw, default_site):
    r = raw(gw, "GET", default_site, {"Origin": "http://a.test"})
    b = proxied(r)
    assert b["method"] == "GET"
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "*")]
    # Kong sets it also without an Origin
    r = raw(gw, "GET", default_site)
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "*")]


def test_options_without_request_method_is_proxied(gw, default_site):
    r = raw(gw, "OPTIONS", default_site, {"Origin": "http://a.test"})
    assert proxied(r)["method"] == "OPTIONS"
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "*")]
    # and without Origin
    r = raw(gw, "OPTIONS", default_site, {"Access-Control-Request-Method": "GET"})
    assert proxied(r)["method"] == "OPTIONS"
    assert r.header("Access-Control-Allow-Methods") is None


def test_star_is_default(gw, up):
    path = site(gw, up.port, {"origins": ["*"]})
    r = raw(gw, "GET", path, {"Origin": "http://z.test"})
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "*")]


# --------------------------------------------------------------------------------------------
# one plain origin: verbatim


def test_single_origin_verbatim(gw, up):
    path = site(gw, up.port, {"origins": ["http://example.com:80"]})
    for origin in ("http://example.com", "http://other.test", None):
        r = raw(gw, "GET", path, {"Origin": origin} if origin else None)
        proxied(r)
        assert cors_headers(r) == [("Access-Control-Allow-Origin", "http://example.com:80"),
                                   ("Vary", "Origin")], origin
    r = preflight(gw, path, origin="http://other.test")
    assert_preflight_answer(r)
    assert cors_headers(r) == [("Access-Control-Allow-Methods", DEFAULT_METHODS),
                               ("Access-Control-Allow-Origin", "http://example.com:80"),
                               ("Vary", "Origin")]


# --------------------------------------------------------------------------------------------
# lists of plain origins


@pytest.fixture(scope="module")
def list_site(gw, up):
    return site(gw, up.port, {"origins": ["http://a.test", "https://b.test:8443", "null"],
                              "exposed_headers": ["X-Total", "X-Page"],
                              "headers": ["X-A", "X-B"], "methods": ["GET", "POST"],
                              "max_age": 3600})


@pytest.mark.parametrize("origin,want", [
    ("http://a.test", "http://a.test"),
    ("http://a.test:80", "http://a.test"),          # the default port is dropped
    ("http://a.test/some/path?q=1", "http://a.test"),
    ("https://b.test:8443", "https://b.test:8443"),
    ("null", "null"),
    ("http://a.test:8080", None),
    ("https://a.test", None),
    ("https://b.test", None),
    ("HTTP://A.TEST", None),                         # no case folding, as Kong
    ("http://c.test", None),
])
def test_list_simple_request(gw, list_site, origin, want):
    r = raw(gw, "GET", list_site, {"Origin": origin})
    proxied(r)
    got = [("Access-Control-Expose-Headers", "X-Total,X-Page"), ("Vary", "Origin")]
    if want:
        got.append(("Access-Control-Allow-Origin", want))
    assert cors_headers(r) == sorted(got)


def test_list_no_origin_header(gw, list_site):
    r = raw(gw, "GET", list_site)
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Expose-Headers", "X-Total,X-Page"),
                               ("Vary", "Origin")]


def test_list_preflight(gw, up, list_site):
    n = len(up.requests)
    r = preflight(gw, list_site, origin="http://a.test:80",
                  extra={"Access-Control-Request-Headers": "X-Other"})
    assert_preflight_answer(r)
    assert cors_headers(r) == [("Access-Control-Allow-Headers", "X-A,X-B"),
                               ("Access-Control-Allow-Methods", "GET,POST"),
                               ("Access-Control-Allow-Origin", "http://a.test"),
                               ("Access-Control-Max-Age", "3600"),
                               ("Vary", "Origin")]
    r = preflight(gw, list_site, origin="http://evil.test")
    assert_preflight_answer(r)
    assert cors_headers(r) == [("Access-Control-Allow-Headers", "X-A,X-B"),
                               ("Access-Control-Allow-Methods", "GET,POST"),
                               ("Access-Control-Max-Age", "3600"),
                               ("Vary", "Origin")]
    assert len(up.requests) == n


def test_list_with_star_allows_all(gw, up):
    path = site(gw, up.port, {"origins": ["http://a.test", "*"]})
    r = raw(gw, "GET", path, {"Origin": "http://anything.test"})
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "*"), ("Vary", "Origin")]
    r = raw(gw, "GET", path)
    proxied(r)
    assert cors_headers(r) == [("Vary", "Origin")]


# --------------------------------------------------------------------------------------------
# regexes


@pytest.fixture(scope="module")
def regex_site(gw, up):
    return site(gw, up.port, {"origins": [r"(.*\.)?example\.org", r"https://.*\.example\.com",
                                          r"^http://local\d+\.test:8\d+$"]})


@pytest.mark.parametrize("origin,want", [
    # no ':' in the pattern: the host is matched, the normalised origin is sent back
    ("https://example.org", "https://example.org"),
    ("http://api.example.org:8080", "http://api.example.org:8080"),
    ("https://api.example.org:443", "https://api.example.org"),
    ("https://example.org.evil.test", None),         # anchored at the end
    ("https://evilexample.org", None),               # anchored at the start
    ("https://EXAMPLE.org", None),
    # with ':' the whole normalised origin is matched
    ("https://x.example.com", "https://x.example.com"),
    ("https://x.example.com:443", "https://x.example.com"),
    ("https://x.example.com:8443", None),
    ("http://x.example.com", None),
    ("http://local12.test:8000", "http://local12.test:8000"),
    ("http://local12.test", None),
    ("null", None),
])
def test_regex_origins(gw, regex_site, origin, want):
    r = raw(gw, "GET", regex_site, {"Origin": origin})
    proxied(r)
    assert r.header_all("Access-Control-Allow-Origin") == ([want] if want else [])
    assert r.header_all("Vary") == ["Origin"]


def test_regex_preflight(gw, regex_site):
    r = preflight(gw, regex_site, origin="https://deep.sub.example.org")
    assert_preflight_answer(r)
    assert r.header("Access-Control-Allow-Origin") == "https://deep.sub.example.org"


def test_invalid_regex_refused_by_admin(gw, up):
    name = uniq("corsbad")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    r = requests.post(gw.admin_url + "/services/%s/plugins" % name, timeout=10,
                      json={"name": "cors", "config": {"origins": ["(unclosed"]}})
    assert r.status_code == 400, r.text
    assert r.json()["fields"]["config"]["origins"] == ["'(unclosed' is not a valid regex"]


# --------------------------------------------------------------------------------------------
# credentials, private network, preflight_continue


def test_credentials_with_star_echoes_origin(gw, up):
    path = site(gw, up.port, {"credentials": True})
    r = raw(gw, "GET", path, {"Origin": "http://Some.Test:80"})
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Origin", "http://Some.Test:80"),
                               ("Vary", "Origin")]
    r = raw(gw, "GET", path)
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "*")]
    r = preflight(gw, path, origin="http://b.test")
    assert_preflight_answer(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Methods", DEFAULT_METHODS),
                               ("Access-Control-Allow-Origin", "http://b.test"),
                               ("Vary", "Origin")]


def test_credentials_with_list(gw, up):
    path = site(gw, up.port, {"credentials": True, "origins": ["http://a.test", "http://b.test"]})
    r = raw(gw, "GET", path, {"Origin": "http://b.test"})
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Origin", "http://b.test"),
                               ("Vary", "Origin")]
    # Kong sends the credentials header even when the origin is not allowed
    r = raw(gw, "GET", path, {"Origin": "http://c.test"})
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]


def test_private_network(gw, up):
    path = site(gw, up.port, {"private_network": True})
    r = preflight(gw, path, extra={"Access-Control-Request-Private-Network": "true"})
    assert_preflight_answer(r)
    assert r.header("Access-Control-Allow-Private-Network") == "true"
    for v in (None, "false", "TRUE"):
        r = preflight(gw, path, extra={"Access-Control-Request-Private-Network": v} if v else None)
        assert_preflight_answer(r)
        assert r.header("Access-Control-Allow-Private-Network") is None, v
    # off by default
    r = preflight(gw, site(gw, up.port, None),
                  extra={"Access-Control-Request-Private-Network": "true"})
    assert r.header("Access-Control-Allow-Private-Network") is None


def test_preflight_continue(gw, up):
    path = site(gw, up.port, {"preflight_continue": True, "origins": ["http://a.test"]})
    r = preflight(gw, path, origin="http://a.test")
    b = proxied(r)
    assert b["method"] == "OPTIONS"
    # the upstream answers the preflight: nothing is added
    assert cors_headers(r) == []
    r = raw(gw, "GET", path, {"Origin": "http://a.test"})
    proxied(r)
    assert r.header("Access-Control-Allow-Origin") == "http://a.test"


# --------------------------------------------------------------------------------------------
# with an auth plugin (priority below cors)


def test_preflight_before_jwt(gw, up):
    path = site(gw, up.port, {"origins": ["http://app.test"], "credentials": True},
                extra=[("jwt", {})])
    wait_until(lambda: raw(gw, "GET", path, {"Origin": "http://app.test"}).status == 401, 5,
               interval=0.02, what="jwt")
    n = len(up.requests)
    r = preflight(gw, path, origin="http://app.test",
                  extra={"Access-Control-Request-Headers": "Authorization"})
    assert_preflight_answer(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Headers", "Authorization"),
                               ("Access-Control-Allow-Methods", DEFAULT_METHODS),
                               ("Access-Control-Allow-Origin", "http://app.test"),
                               ("Vary", "Origin")]
    assert len(up.requests) == n
    # the actual request is refused by jwt, and the browser can read why
    r = raw(gw, "GET", path, {"Origin": "http://app.test"})
    assert r.status == 401, r
    assert r.json() == {"message": "Unauthorized"}
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Origin", "http://app.test"),
                               ("Vary", "Origin")]
    assert len(up.requests) == n


def test_error_from_other_plugin_gets_headers(gw, up):
    path = site(gw, up.port, {"origins": ["http://a.test", "http://b.test"]},
                extra=[("request-termination", {"status_code": 403, "message": "nope"})])
    wait_until(lambda: raw(gw, "GET", path).status == 403, 5, interval=0.02, what="rt")
    r = raw(gw, "GET", path, {"Origin": "http://b.test"})
    assert r.status == 403
    assert r.json() == {"message": "nope"}
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "http://b.test"),
                               ("Vary", "Origin")]


# --------------------------------------------------------------------------------------------
# an upstream that sends its own Vary and Access-Control-Allow-Origin


class _VaryHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = sock.recv(65536)
                if not d:
                    return
                buf += d
            body = b"hello"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Vary: Accept-Encoding\r\n"
                         b"Access-Control-Allow-Origin: http://upstream.test\r\n"
                         b"Access-Control-Expose-Headers: X-Up\r\n"
                         b"Content-Length: 5\r\nConnection: close\r\n\r\n" + body)
        except OSError:
            pass


class _VaryServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@pytest.fixture(scope="module")
def vary_up():
    srv = _VaryServer(("127.0.0.1", 0), _VaryHandler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_upstream_headers(gw, vary_up):
    path = site(gw, vary_up, {"origins": ["http://a.test", "http://b.test"],
                              "exposed_headers": ["X-Mine"]})
    r = raw(gw, "GET", path, {"Origin": "http://a.test"})
    assert r.status == 200 and r.body == b"hello"
    # Vary is appended to, the allowed origin and exposed headers replace the upstream's
    assert r.header_all("Vary") == ["Accept-Encoding", "Origin"]
    assert r.header_all("Access-Control-Allow-Origin") == ["http://a.test"]
    assert r.header_all("Access-Control-Expose-Headers") == ["X-Mine"]
    # an origin that is not allowed: the upstream's header is removed too
    r = raw(gw, "GET", path, {"Origin": "http://c.test"})
    assert r.status == 200
    assert r.header_all("Access-Control-Allow-Origin") == []
    assert r.header_all("Vary") == ["Accept-Encoding", "Origin"]


def test_upstream_headers_allow_all(gw, vary_up):
    path = site(gw, vary_up, None)
    r = raw(gw, "GET", path, {"Origin": "http://a.test"})
    assert r.status == 200
    assert r.header_all("Access-Control-Allow-Origin") == ["*"]
    assert r.header_all("Vary") == ["Accept-Encoding"]
    # not configured: the upstream's own exposed headers stay
    assert r.header_all("Access-Control-Expose-Headers") == ["X-Up"]


# --------------------------------------------------------------------------------------------
# an empty Origin header on a preflight: Kong's origin parser fails the request


def test_empty_origin_preflight(gw, list_site):
    r = raw(gw, "OPTIONS", list_site, {"Origin": "", "Access-Control-Request-Method": "GET"})
    assert r.status == 500, r
    assert r.header("Content-Type") == JSON_CT
    m = ERR_RE.match(r.body.decode())
    assert m and m.group("m") == "An unexpected error occurred", r


def test_global_and_route_instances(gw, up):
    """A route-scoped cors instance wins over a service-scoped one (Kong's lookup_cfg)."""
    name = uniq("corsscope")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    admin(gw, "POST", "/services/%s/plugins" % name,
          json={"name": "cors", "config": {"origins": ["http://svc.test"]}})
    admin(gw, "POST", "/routes/%s/plugins" % route["id"],
          json={"name": "cors", "config": {"origins": ["http://route.test"]}})
    wait_until(lambda: raw(gw, "GET", "/" + name).header("Access-Control-Allow-Origin")
               == "http://route.test", 5, interval=0.02, what="route instance")


def test_global_instance_on_unmatched_request(aigw_module):
    """A global cors instance also decorates aigw's own 404 (Kong runs global plugins'
    header_filter when no route matched); a preflight there is not answered by cors (its
    access phase never ran) but gets the same headers on the 404."""
    g = aigw_module()
    up = Upstream()
    try:
        admin(g, "POST", "/plugins", json={"name": "cors",
                                           "config": {"origins": ["http://a.test"],
                                                      "credentials": True}})
        # a route created after it: once it answers, the global instance is in place
        admin(g, "POST", "/services", json={"name": "s", "url": "http://127.0.0.1:%d" % up.port})
        admin(g, "POST", "/services/s/routes", json={"paths": ["/somewhere"]})
        wait_until(lambda: raw(g, "GET", "/somewhere", {"Origin": "http://a.test"})
                   .header("Access-Control-Allow-Origin") == "http://a.test", 5, interval=0.02,
                   what="global cors")
    finally:
        up.close()
    r = raw(g, "GET", "/nowhere", {"Origin": "http://a.test"})
    assert r.status == 404
    m = ERR_RE.match(r.body.decode())
    assert m and m.group("m") == "no Route matched with those values", r
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Origin", "http://a.test"),
                               ("Vary", "Origin")]
    r = preflight(g, "/nowhere", origin="http://a.test")
    assert r.status == 404
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Origin", "http://a.test"),
                               ("Vary", "Origin")]


def test_headers_on_upstream_error(gw):
    """Kong's error_page goes through header_filter: a 502 from a dead upstream is readable
    by the browser too."""
    name = uniq("cors502")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % free_port()})
    admin(gw, "POST", "/services/%s/plugins" % name,
          json={"name": "cors", "config": {"origins": ["http://a.test"]}})
    admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    wait_until(lambda: raw(gw, "GET", "/" + name).status == 502, 5, interval=0.02, what=name)
    r = raw(gw, "GET", "/" + name, {"Origin": "http://a.test"})
    assert r.status == 502
    assert cors_headers(r) == [("Access-Control-Allow-Origin", "http://a.test"),
                               ("Vary", "Origin")]


# --------------------------------------------------------------------------------------------
# Kong's own expectations (spec/03-plugins/13-cors/01-access_spec.lua, regex_testcases): for
# each origins setting, request Origin -> the ACAO sent back (True: the Origin itself, False:
# none)

KONG_CASES = [
    (["foo.test"], {
        "http://evil.test": "foo.test", "http://foo.test:8000": "foo.test",
        "https://bar.test:1234": "foo.test"}),
    (["https://bar.test:1234"], {
        "http://evil.test": "https://bar.test:1234", "http://foo.test:80": "https://bar.test:1234",
        "https://bar.test:1234": "https://bar.test:1234"}),
    ([r"foo\.test"], {
        "http://evil.test": False, "http://foo.test": True, "http://foo.test.evil.test": False,
        "http://something.foo.test": False, "http://evilfoo.test": False,
        "http://foo.test:80": "http://foo.test", "http://foo.test:8000": True,
        "https://foo.test:8000": True, "http://foo.test:90": True, "http://foobtest": False,
        "https://bar.test:1234": False}),
    ([r"(.*[./])?foo\.test"], {
        "http://evil.test": False, "http://foo.test": True, "http://foo.test.evil.test": False,
        "http://something.foo.test": True, "http://evilfoo.test": False,
        "http://foo.test:80": "http://foo.test", "http://foo.test:8000": True,
        "https://foo.test:8000": True, "http://foo.test:90": True, "http://foobtest": False,
        "https://bar.test:1234": False}),
    ([r"(.*[./])?foo\.test:8000"], {
        "http://evil.test": False, "http://foo.test": False, "http://foo.test.evil.test": False,
        "http://something.foo.test": False, "http://evilfoo.test": False,
        "http://foo.test:80": False, "http://foo.test:8000": True, "https://foo.test:8000": True,
        "http://foo.test:90": False, "http://foobtest": False, "https://bar.test:1234": False}),
    ([r"https://(.*[.])?foo\.test:8000"], {
        "http://evil.test": False, "http://foo.test": False, "http://foo.test.evil.test": False,
        "http://something.foo.test": False, "http://foo.test:80": False,
        "http://foo.test:8000": False, "https://foo.test:8000": True, "http://foo.test:90": False,
        "http://foobtest": False, "https://bar.test:1234": False}),
    ([r"^http://(.*[.])?foo\.test(:(80|90))?$"], {
        "http://evil.test": False, "http://foo.test": True, "http://foo.test.evil.test": False,
        "http://something.foo.test": True, "http://foo.test:80": "http://foo.test",
        "http://foo.test:8000": False, "https://foo.test:8000": False, "http://foo.test:90": True,
        "http://foobtest": False, "https://bar.test:1234": False}),
    (["foo.test", "bar.test"], {
        "http://evil.test": False, "http://foo.test": False, "http://foo.test.evil.test": False,
        "http://foo.test:80": False, "http://foo.test:8000": False, "http://foo.test:90": False,
        "http://foobtest": False, "https://bar.test:1234": False}),
    (["http://foo.test", "https://bar.test:1234"], {
        "http://evil.test": False, "http://foo.test": True, "http://foo.test.evil.test": False,
        "http://foo.test:80": "http://foo.test", "http://foo.test:8000": False,
        "http://foo.test:90": False, "http://foobtest": False, "https://bar.test:1234": True}),
    (["bar.test", r"foo\.test"], {
        "http://evil.test": False, "http://foo.test": True, "http://foo.test.evil.test": False,
        "http://something.foo.test": False, "http://foo.test:80": "http://foo.test",
        "http://foo.test:8000": True, "http://foo.test:90": True, "http://foobtest": False,
        "https://bar.test:1234": False}),
    (["bar.test", r"(.*\.)?foo\.test"], {
        "http://evil.test": False, "http://foo.test": True, "http://foo.test.evil.test": False,
        "http://something.foo.test": True, "http://foo.test:80": "http://foo.test",
        "http://foo.test:8000": True, "http://foo.test:90": True, "http://foobtest": False,
        "https://bar.test:1234": False}),
    (["bar.test", r"(.*[./])?foo\.test:8000"], {
        "http://evil.test": False, "http://foo.test": False, "http://foo.test.evil.test": False,
        "http://something.foo.test": False, "http://foo.test:80": False,
        "http://foo.test:8000": True, "https://foo.test:8000": True, "http://foo.test:90": False,
        "http://foobtest": False, "https://bar.test:1234": False}),
    (["bar.test", r"https://(.*\.)?foo\.test:8000"], {
        "http://evil.test": False, "http://foo.test": False, "http://foo.test.evil.test": False,
        "http://something.foo.test": False, "http://foo.test:80": False,
        "http://foo.test:8000": False, "https://foo.test:8000": True, "http://foo.test:90": False,
        "http://foobtest": False, "https://bar.test:1234": False}),
]


@pytest.mark.parametrize("origins,cases", KONG_CASES, ids=[",".join(c[0]) for c in KONG_CASES])
def test_kong_regex_cases(gw, up, origins, cases):
    path = site(gw, up.port, {"origins": origins})
    for origin, want in cases.items():
        if want is True:
            want = origin
        for method, hdrs in (("GET", {"Origin": origin}),
                             ("OPTIONS", {"Origin": origin,
                                          "Access-Control-Request-Method": "GET"})):
            r = raw(gw, method, path, hdrs)
            assert r.header_all("Access-Control-Allow-Origin") == ([want] if want else []), \
                (origins, method, origin)
            assert r.header_all("Vary") == ["Origin"]


def test_seed_002_frontend_and_agent_origins(gw, up):
    """Seed 002's setup, as its admin call posts it (form body, comma-separated origins):
    a browser front end and an agent domain with credentials."""
    name = uniq("seed002")
    admin(gw, "POST", "/services", data={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    p = admin(gw, "POST", "/services/%s/plugins" % name,
              data={"name": "cors", "config.origins": "https://your-frontend-domain.com,"
                                                      "https://trusted-agent-domain.com",
                    "config.credentials": "true"})
    assert p["config"]["origins"] == ["https://your-frontend-domain.com",
                                      "https://trusted-agent-domain.com"]
    admin(gw, "POST", "/services/%s/routes" % name, data={"paths[]": "/" + name})
    path = "/" + name
    wait_until(lambda: raw(gw, "GET", path).status == 200, 5, interval=0.02, what=path)
    r = preflight(gw, path, origin="https://your-frontend-domain.com", method="POST",
                  extra={"Access-Control-Request-Headers": "authorization,content-type"})
    assert_preflight_answer(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Headers", "authorization,content-type"),
                               ("Access-Control-Allow-Methods", DEFAULT_METHODS),
                               ("Access-Control-Allow-Origin", "https://your-frontend-domain.com"),
                               ("Vary", "Origin")]
    r = raw(gw, "GET", path, {"Origin": "https://trusted-agent-domain.com:443"})
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"),
                               ("Access-Control-Allow-Origin", "https://trusted-agent-domain.com"),
                               ("Vary", "Origin")]
    r = raw(gw, "GET", path, {"Origin": "https://evil.example"})
    proxied(r)
    assert cors_headers(r) == [("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
