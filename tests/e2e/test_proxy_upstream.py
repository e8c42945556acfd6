"""Proxying to real upstreams: Kong's upstream URI, headers, errors, streaming, keep-alive,
https-only routes and the first plugins (request-termination, correlation-id)."""
import http.client as httpclient
import json
import socket
import time

import pytest
import requests

from aigwtest import NO_ROUTE, RawConn, free_port, get, http, wait_until
from upstreams import Upstream

UPSTREAM_502 = "An invalid response was received from the upstream server"
UPSTREAM_504 = "The upstream server is timing out"


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def admin(gw, method, path, **kw):
    r = requests.request(method, gw.admin_url + path, timeout=10, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


_n = [0]


def uniq(prefix):
    _n[0] += 1
    return "%s%d" % (prefix, _n[0])


def route_to(gw, url, paths, service_fields=None, **route_fields):
    """A service for url with one route; waits until the proxy serves it."""
    name = uniq("svc")
    data = {"name": name, "url": url}
    data.update(service_fields or {})
    admin(gw, "POST", "/services", data=data)
    rdata = {"paths[]": paths}
    rdata.update(route_fields)
    route = admin(gw, "POST", "/services/%s/routes" % name, data=rdata)
    wait_until(lambda: routed(gw.proxy_url + paths[0]), 5, what="route " + paths[0])
    return name, route


def routed(url):
    r = get(url, timeout=10, allow_redirects=False)
    if r.status_code != 404:
        return True
    try:
        return r.json().get("message") != NO_ROUTE
    except ValueError:
        return True


def echo(r):
    assert r.status_code == 200, r.text
    return r.json()


def hdr(body, name):
    vals = [v for k, v in body["headers"] if k.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (vals or None)


def test_seed000_health_reaches_upstream_with_kong_headers(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/ai-workflow"])
    r = get(gw.proxy_url + "/ai-workflow/health?probe=1", headers={"X-Client": "yes"})
    b = echo(r)
    assert b["method"] == "GET"
    assert b["target"] == "/health?probe=1"
    assert hdr(b, "Host") == "127.0.0.1:%d" % up.port
    assert hdr(b, "X-Forwarded-For") == "127.0.0.1"
    assert hdr(b, "X-Real-IP") == "127.0.0.1"
    assert hdr(b, "X-Forwarded-Proto") == "http"
    assert hdr(b, "X-Forwarded-Host") == "127.0.0.1"
    assert hdr(b, "X-Forwarded-Port") == str(gw.ports["proxy"])
    assert hdr(b, "X-Forwarded-Path") == "/ai-workflow/health"
    assert hdr(b, "X-Forwarded-Prefix") == "/ai-workflow"
    assert hdr(b, "Via") == "1.1 aigw/0.1.0"
    assert hdr(b, "X-Client") == "yes"
    assert hdr(b, "Connection") == "keep-alive"
    # the same request id on both sides
    assert hdr(b, "X-Kong-Request-Id") == r.headers["X-Kong-Request-Id"]
    assert r.headers["Via"] == "1.1 aigw/0.1.0"
    assert r.headers["X-Upstream"] == "echo"
    assert int(r.headers["X-Kong-Upstream-Latency"]) >= 0
    assert int(r.headers["X-Kong-Proxy-Latency"]) >= 0
    assert "X-Kong-Response-Latency" not in r.headers


def test_client_forwarded_headers_untrusted(gw, up):
    b = echo(get(gw.proxy_url + "/ai-workflow/x", headers={
        "X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example", "X-Real-IP": "10.9.9.9", "Via": "1.1 other"}))
    # XFF is appended to, the rest is replaced: the peer is not in trusted_ips
    assert hdr(b, "X-Forwarded-For") == "10.0.0.1, 127.0.0.1"
    assert hdr(b, "X-Forwarded-Proto") == "http"
    assert hdr(b, "X-Forwarded-Host") == "127.0.0.1"
    assert hdr(b, "X-Real-IP") == "127.0.0.1"
    assert hdr(b, "Via") == "1.1 other, 1.1 aigw/0.1.0"


def test_hop_by_hop_headers_removed(gw, up):
    c = RawConn(gw.ports["proxy"])
    c.send(b"GET /ai-workflow/hop HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\n"
           b"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nTE: gzip\r\n"
           b"X-Kept: 2\r\n\r\n")
    resp = c.read_response()
    b = resp.json()
    names = [k.lower() for k, _ in b["headers"]]
    assert "x-secret" not in names and "keep-alive" not in names
    assert "proxy-connection" not in names and "te" not in names
    assert hdr(b, "X-Kept") == "2"
    c.close()


@pytest.mark.parametrize("svc_path,strip,req,want", [
    (None, True, "/foo/bar", "/bar"),
    (None, True, "/foo", "/"),
    (None, True, "/foobar", "/bar"),
    (None, False, "/foo/bar", "/foo/bar"),
    ("/api", True, "/foo/bar", "/api/bar"),
    ("/api", True, "/foo", "/api"),
    ("/api", True, "/foo/", "/api/"),
    ("/api", False, "/foo/bar", "/api/foo/bar"),
    ("/api/", True, "/foo", "/api"),
    ("/api/", True, "/foo/bar", "/api/bar"),
    ("/api/", False, "/foo/bar", "/api/foo/bar"),
])
def test_upstream_uri_table(gw, up, svc_path, strip, req, want):
    prefix = "/" + uniq("t")
    url = "http://127.0.0.1:%d%s" % (up.port, svc_path or "")
    route_to(gw, url, [prefix + "/foo"], strip_path=str(strip).lower())
    b = echo(get(gw.proxy_url + prefix + req))
    if strip:
        assert b["target"] == want
    else:
        assert b["target"] == want.replace("/foo", prefix + "/foo", 1)


def test_query_string_and_escaping(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/q"])
    assert echo(get(gw.proxy_url + "/q/a?x=1&y=%20z"))["target"] == "/a?x=1&y=%20z"
    c = RawConn(gw.ports["proxy"])
    c.send(b"GET /q/a? HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response().json()["target"] == "/a?"
    c.send(b"GET /q/%61%2fb%20c HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response().json()["target"] == "/a%2Fb%20c"
    c.close()


def test_dot_segments_cannot_escape_the_route(gw, up):
    # /q/../admin normalises to /admin, which no route matches
    c = RawConn(gw.ports["proxy"])
    c.send(b"GET /q/../admin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response().status == 404
    c.send(b"GET /q/%2e%2e/%2e%2e/etc HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response().status in (400, 404)
    c.close()


def test_preserve_host(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/keep-host"], preserve_host="true")
    b = echo(get(gw.proxy_url + "/keep-host", headers={"Host": "Api.Example.com:8000"}))
    assert hdr(b, "Host") == "Api.Example.com:8000"
    assert hdr(b, "X-Forwarded-Host") == "api.example.com"


def test_post_body_and_chunked_request(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/body"])
    b = echo(http("POST", gw.proxy_url + "/body", data=b'{"prompt":"hi"}',
                  headers={"Content-Type": "application/json"}))
    assert b["body"] == '{"prompt":"hi"}'
    assert hdr(b, "Content-Length") == "15"
    assert hdr(b, "Content-Type") == "application/json"

    def gen():
        yield b"hello "
        yield b"world"
    b = echo(http("POST", gw.proxy_url + "/body", data=gen()))
    assert b["body"] == "hello world"
    assert hdr(b, "Transfer-Encoding") is None
    big = b"x" * (3 * 1024 * 1024)
    b = echo(http("PUT", gw.proxy_url + "/body", data=big))
    assert len(b["body"]) == len(big)


def test_status_codes_and_chunked_response_pass_through(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/st"], strip_path="false")
    r = get(gw.proxy_url + "/st/status/404")
    assert r.status_code == 404 and r.json()["target"] == "/st/status/404"
    r = get(gw.proxy_url + "/st/status/204")
    assert r.status_code == 204 and r.content == b""
    r = get(gw.proxy_url + "/st/chunked/x")
    assert r.status_code == 200 and r.json()["target"] == "/st/chunked/x"
    assert r.headers.get("Transfer-Encoding") == "chunked"
    r = http("HEAD", gw.proxy_url + "/st/head")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) > 0


def test_http10_client_gets_close_delimited_body(gw, up):
    c = RawConn(gw.ports["proxy"])
    c.send(b"GET /st/chunked/ten HTTP/1.0\r\nHost: x\r\n\r\n")
    raw = b""
    c.sock.settimeout(10)
    while True:
        d = c.sock.recv(65536)
        if not d:
            break
        raw += d
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert json.loads(body)["target"] == "/st/chunked/ten"


def test_dead_upstream_is_502_after_retries(gw):
    port = free_port()
    route_to(gw, "http://127.0.0.1:%d" % port, ["/dead"], {"retries": "2"})
    r = get(gw.proxy_url + "/dead")
    assert r.status_code == 502
    assert r.json()["message"] == UPSTREAM_502
    assert r.json()["request_id"] == r.headers["X-Kong-Request-Id"]
    # curl sends Accept: */*, a bare client nothing: nginx's errors are text/plain then
    c = RawConn(gw.ports["proxy"])
    c.send(b"GET /dead HTTP/1.1\r\nHost: x\r\n\r\n")
    resp = c.read_response()
    assert resp.status == 502
    assert resp.header("Content-Type").startswith("text/plain")
    assert resp.body.decode().startswith(UPSTREAM_502 + "\nrequest_id: ")
    c.close()


def test_slow_upstream_is_504_and_retried(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/slow"],
             {"read_timeout": "300", "retries": "1"}, strip_path="false")
    up.reset()
    r = get(gw.proxy_url + "/slow/sleep/1500/x", timeout=20)
    assert r.status_code == 504
    assert r.json()["message"] == UPSTREAM_504
    # a GET is retried once (retries=1): two requests reached the upstream
    wait_until(lambda: len([q for q in up.requests if q["target"].startswith("/slow/sleep")]) == 2,
               5, what="two tries")
    up.reset()
    r = http("POST", gw.proxy_url + "/slow/sleep/1500/y", data=b"x", timeout=20)
    assert r.status_code == 504
    time.sleep(0.5)
    # a POST already sent is never retried
    assert len([q for q in up.requests if q["target"].startswith("/slow/sleep")]) == 1


def test_unresolvable_host_is_503(gw):
    route_to(gw, "http://log-collector.invalid:8080", ["/nodns"])
    r = get(gw.proxy_url + "/nodns")
    assert r.status_code == 503
    assert r.json()["message"] == "name resolution failed"


def test_bad_upstream_responses(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/bad"], {"retries": "0"}, strip_path="false")
    r = get(gw.proxy_url + "/bad/garbage")
    assert r.status_code == 502 and r.json()["message"] == UPSTREAM_502
    r = get(gw.proxy_url + "/bad/close-before")
    assert r.status_code == 502
    # a body cut short reaches the client cut short and closed, never padded or mixed
    c = RawConn(gw.ports["proxy"])
    c.send(b"GET /bad/close-mid-body HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = b""
    c.sock.settimeout(10)
    while True:
        d = c.sock.recv(65536)
        if not d:
            break
        raw += d
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000" in head and body == b"0123456789"
    c.close()
    # and the gateway still serves the next request
    assert get(gw.proxy_url + "/bad/ok").status_code == 200


def test_upstream_http10_close_delimited(gw, up):
    r = get(gw.proxy_url + "/bad/http10")
    assert r.status_code == 200
    assert r.json()["target"] == "/bad/http10"


def test_sse_events_stream_as_they_arrive(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/llm"], strip_path="false")
    conn = httpclient.HTTPConnection("127.0.0.1", gw.ports["proxy"], timeout=10)
    conn.request("GET", "/llm/sse/4/400")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    arrivals = []
    buf = b""
    while len(arrivals) < 4:
        d = resp.read1(65536)
        if not d:
            break
        buf += d
        while b"\n\n" in buf:
            ev, _, buf = buf.partition(b"\n\n")
            sent = json.loads(ev.decode().split("data: ", 1)[1])["t"]
            arrivals.append((sent, time.time()))
    conn.close()
    assert len(arrivals) == 4
    # each event reached the client before the upstream sent the next one (400 ms later)
    for i in range(3):
        assert arrivals[i][1] < arrivals[i + 1][0], arrivals


def test_upstream_keepalive_reuses_connections(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/ka"])
    up.reset()
    s = requests.Session()
    for _ in range(30):
        assert s.get(gw.proxy_url + "/ka/x", timeout=10).status_code == 200
    # one connection per worker at most, not one per request
    assert up.connections <= 4, up.connections


def test_https_only_route(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/secure"], protocols=["https"])
    r = get(gw.proxy_url + "/secure/x", allow_redirects=False)
    assert r.status_code == 426
    assert r.json()["message"] == "Please use HTTPS protocol"
    assert r.headers["Upgrade"] == "TLS/1.2, HTTP/1.1"
    r = get(gw.proxy_ssl_url + "/secure/x", verify=False)
    assert r.status_code == 200
    assert hdr(r.json(), "X-Forwarded-Proto") == "https"
    assert hdr(r.json(), "X-Forwarded-Port") == str(gw.ports["proxy_ssl"])
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/moved"], protocols=["https"],
             https_redirect_status_code="301")
    r = get(gw.proxy_url + "/moved/a?b=1", headers={"Host": "api.example.com:8000"},
            allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"] == "https://api.example.com/moved/a?b=1"


def test_route_without_service_is_503(gw):
    admin(gw, "POST", "/routes", data={"paths[]": "/orphan"})
    wait_until(lambda: get(gw.proxy_url + "/orphan").status_code == 503, 5, what="route")
    r = get(gw.proxy_url + "/orphan")
    assert r.json()["message"] == "no Service found with those values"


def test_admin_change_is_live_quickly(gw, up):
    name = uniq("live")
    admin(gw, "POST", "/services", data={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    t0 = time.time()
    admin(gw, "POST", "/services/%s/routes" % name, data={"paths[]": "/" + name})
    wait_until(lambda: get(gw.proxy_url + "/" + name).status_code == 200, 5, interval=0.01,
               what="new route live")
    # Kong polls every 5 s; aigw publishes after the commit (the figure is in the note)
    assert time.time() - t0 < 5


def test_request_termination(gw, up):
    name, route = route_to(gw, "http://127.0.0.1:%d" % up.port, ["/term"])
    admin(gw, "POST", "/routes/%s/plugins" % route["id"],
          data={"name": "request-termination", "config.status_code": "403",
                "config.message": "maintenance"})
    wait_until(lambda: get(gw.proxy_url + "/term").status_code == 403, 5, what="plugin")
    r = get(gw.proxy_url + "/term")
    assert r.text == '{"message":"maintenance"}'
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "X-Kong-Response-Latency" in r.headers
    assert "Via" not in r.headers


def test_request_termination_trigger_body_and_service_scope(gw, up):
    name, route = route_to(gw, "http://127.0.0.1:%d" % up.port, ["/trig"])
    admin(gw, "POST", "/services/%s/plugins" % name,
          data={"name": "request-termination", "config.status_code": "418",
                "config.body": "short and stout", "config.content_type": "text/teapot",
                "config.trigger": "X-Teapot"})
    wait_until(lambda: get(gw.proxy_url + "/trig", headers={"X-Teapot": "1"}).status_code == 418,
               5, what="plugin")
    r = get(gw.proxy_url + "/trig", headers={"X-Teapot": "1"})
    assert r.text == "short and stout" and r.headers["Content-Type"] == "text/teapot"
    assert get(gw.proxy_url + "/trig?X-Teapot=1").status_code == 418
    assert get(gw.proxy_url + "/trig").status_code == 200


def test_route_plugin_beats_service_plugin(gw, up):
    name, route = route_to(gw, "http://127.0.0.1:%d" % up.port, ["/prec"])
    admin(gw, "POST", "/services/%s/plugins" % name,
          data={"name": "request-termination", "config.status_code": "410"})
    admin(gw, "POST", "/routes/%s/plugins" % route["id"],
          data={"name": "request-termination", "config.status_code": "409"})
    wait_until(lambda: get(gw.proxy_url + "/prec").status_code == 409, 5, what="route wins")


def test_correlation_id(gw, up):
    name, route = route_to(gw, "http://127.0.0.1:%d" % up.port, ["/corr"])
    admin(gw, "POST", "/routes/%s/plugins" % route["id"],
          data={"name": "correlation-id", "config.header_name": "X-Correlation",
                "config.generator": "uuid", "config.echo_downstream": "true"})
    wait_until(lambda: "X-Correlation" in get(gw.proxy_url + "/corr").headers, 5, what="plugin")
    r = get(gw.proxy_url + "/corr")
    b = echo(r)
    cid = hdr(b, "X-Correlation")
    assert len(cid) == 36 and cid[14] == "4"
    assert r.headers["X-Correlation"] == cid
    r = get(gw.proxy_url + "/corr", headers={"X-Correlation": "mine"})
    assert hdr(echo(r), "X-Correlation") == "mine" and r.headers["X-Correlation"] == "mine"


def test_client_abort_mid_stream_leaves_gateway_healthy(gw, up):
    s = socket.create_connection(("127.0.0.1", gw.ports["proxy"]), timeout=5)
    s.sendall(b"GET /llm/sse/20/100 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.close()
    s = socket.create_connection(("127.0.0.1", gw.ports["proxy"]), timeout=5)
    s.sendall(b"GET /slow/sleep/1000/x HTTP/1.1\r\nHost: x\r\n\r\n")
    s.close()
    time.sleep(0.3)
    assert get(gw.proxy_url + "/ka/after").status_code == 200


def test_websocket_upgrade_passes_through(gw, up):
    route_to(gw, "http://127.0.0.1:%d" % up.port, ["/sock"], strip_path="false")
    s = socket.create_connection(("127.0.0.1", gw.ports["proxy"]), timeout=10)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    s.sendall(("GET /sock/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        assert d, head
        head += d
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    hs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    assert hs["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert hs["upgrade"].lower() == "websocket"
    s.sendall(b"hello")
    got = rest
    while len(got) < 10:
        d = s.recv(4096)
        assert d
        got += d
    assert got == b"echo:hello"
    # a large message crosses in pieces; each piece the echo server gets is prefixed
    s.sendall(b"x" * 100000)
    got = b""
    while len(got.replace(b"echo:", b"")) < 100000:
        d = s.recv(65536)
        assert d
        got += d
    assert got.replace(b"echo:", b"") == b"x" * 100000
    s.close()
    # the upstream saw Kong's upgrade headers
    req = [q for q in up.requests if q["target"] == "/sock/ws"][-1]
    hdrs = {k.lower(): v for k, v in req["headers"]}
    assert hdrs["connection"] == "keep-alive, Upgrade" and hdrs["upgrade"] == "websocket"


def test_correlation_id_tracker(gw, up):
    name, route = route_to(gw, "http://127.0.0.1:%d" % up.port, ["/track"])
    admin(gw, "POST", "/routes/%s/plugins" % route["id"],
          data={"name": "correlation-id", "config.generator": "tracker"})
    wait_until(lambda: hdr(echo(get(gw.proxy_url + "/track")), "Kong-Request-ID") is not None,
               5, what="plugin")
    s = requests.Session()
    ids = [hdr(echo(s.get(gw.proxy_url + "/track", timeout=10)), "Kong-Request-ID")
           for _ in range(2)]
    # Kong: server_addr-server_port-pid-connection-connection_requests-time
    parts = [i.split("-") for i in ids]
    for p in parts:
        assert p[0] == "127.0.0.1" and p[1] == str(gw.ports["proxy"]), p
        assert int(p[2]) > 0 and float(p[5]) > 1e9
    # the same keep-alive connection, one request later
    assert parts[0][3] == parts[1][3]
    assert int(parts[1][4]) == int(parts[0][4]) + 1
