"""The request-size-limiting plugin at the proxy (Kong 3.9 kong/plugins/request-size-limiting):
Content-Length checked first, else the body's size; 413 `Request size limit exceeded` (417
with `Expect: 100-continue`), 411 `A valid Content-Length header is required` with
require_content_length; Kong's error JSON with request_id. SQLite store."""
import pytest

from aigwtest import RawConn, get, http, wait_until
from proxytest import ERR_RE, JSON_CT, admin, gw, uniq, up  # noqa: F401

LIMIT = "Request size limit exceeded"
NEED_CL = "A valid Content-Length header is required"


def route_with(gw, up, cfg):
    name = uniq("rsl")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    admin(gw, "POST", "/routes/%s/plugins" % route["id"],
          json={"name": "request-size-limiting", "config": cfg})
    path = "/" + name
    # live once a too-big body is refused
    wait_until(lambda: http("POST", gw.proxy_url + path, data=b"x" * 4096).status_code in
               (411, 413), 5, interval=0.02, what=path)
    return path


def assert_error(status, headers, text, want_status, message):
    assert status == want_status, (status, text)
    assert headers["Content-Type"] == JSON_CT
    m = ERR_RE.match(text)
    assert m, text
    assert m.group("m") == message
    assert m.group("rid") == headers["X-Kong-Request-Id"]
    assert "X-Upstream" not in headers


def raw(gw, method, path, headers, body=b""):
    with RawConn(gw.ports["proxy"], timeout=10) as c:
        head = "%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, path)
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        c.send(head.encode() + b"\r\n" + body)
        r = c.read_response()
        while r.status == 100:
            r = c.read_response()
        return r


def chunked(body, piece=500):
    out = b""
    for i in range(0, len(body), piece):
        p = body[i:i + piece]
        out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


@pytest.fixture(scope="module")
def kb_route(gw, up):
    return route_with(gw, up, {"allowed_payload_size": 1, "size_unit": "kilobytes"})


def test_schema_defaults(gw):
    r = admin(gw, "POST", "/plugins", json={"name": "request-size-limiting"})
    try:
        assert r["config"] == {"allowed_payload_size": 128, "size_unit": "megabytes",
                               "require_content_length": False}
    finally:
        admin(gw, "DELETE", "/plugins/" + r["id"])


def test_within_limit_is_proxied(gw, up, kb_route):
    r = http("POST", gw.proxy_url + kb_route, data=b"a" * 1024)
    assert r.status_code == 200, r.text
    assert r.headers["X-Upstream"] == "echo"
    assert r.json()["body"] == "a" * 1024
    r = get(gw.proxy_url + kb_route)
    assert r.status_code == 200


def test_over_limit_413(gw, up, kb_route):
    r = http("POST", gw.proxy_url + kb_route, data=b"a" * 1025)
    assert_error(r.status_code, r.headers, r.text, 413, LIMIT)


def test_content_length_checked_before_body(gw, up, kb_route):
    # an Accept asking for another format gets Kong's error in that format
    r = http("POST", gw.proxy_url + kb_route, data=b"a" * 2000,
             headers={"Accept": "text/plain"})
    assert r.status_code == 413
    assert r.headers["Content-Type"].startswith("text/plain")
    assert LIMIT in r.text


def test_expect_100_continue_417(gw, up, kb_route):
    r = raw(gw, "POST", kb_route, [("Content-Length", "2000"), ("Expect", " 100-Continue ")],
            b"b" * 2000)
    assert_error(r.status, dict(r.headers), r.body.decode(), 417, LIMIT)
    # within the limit, Expect does not matter
    r = raw(gw, "POST", kb_route, [("Content-Length", "10"), ("Expect", "100-continue")],
            b"b" * 10)
    assert r.status == 200, r.body


def test_chunked_body_size_counted(gw, up, kb_route):
    r = raw(gw, "POST", kb_route, [("Transfer-Encoding", "chunked")], chunked(b"c" * 2000))
    assert_error(r.status, dict(r.headers), r.body.decode(), 413, LIMIT)
    r = raw(gw, "POST", kb_route, [("Transfer-Encoding", "chunked")], chunked(b"c" * 1000))
    assert r.status == 200, r.body
    assert r.json()["body"] == "c" * 1000


def test_bytes_unit(gw, up):
    path = route_with(gw, up, {"allowed_payload_size": 10, "size_unit": "bytes"})
    assert http("POST", gw.proxy_url + path, data=b"0123456789").status_code == 200
    r = http("POST", gw.proxy_url + path, data=b"0123456789A")
    assert_error(r.status_code, r.headers, r.text, 413, LIMIT)


def test_megabytes_unit(gw, up):
    path = route_with(gw, up, {"allowed_payload_size": 0, "size_unit": "megabytes"})
    # 0 MB: any body is too big; no body passes
    assert get(gw.proxy_url + path).status_code == 200
    r = http("POST", gw.proxy_url + path, data=b"x")
    assert_error(r.status_code, r.headers, r.text, 413, LIMIT)


def test_require_content_length(gw, up):
    path = route_with(gw, up, {"allowed_payload_size": 1, "size_unit": "kilobytes",
                               "require_content_length": True})
    r = raw(gw, "GET", path, [])
    assert_error(r.status, dict(r.headers), r.body.decode(), 411, NEED_CL)
    # Content-Length: 0 is a valid one
    r = raw(gw, "POST", path, [("Content-Length", "0")])
    assert r.status == 200, r.body
    # chunked requests are exempt and measured by their body
    r = raw(gw, "POST", path, [("Transfer-Encoding", "chunked")], chunked(b"d" * 100))
    assert r.status == 200, r.body
    r = raw(gw, "POST", path, [("Transfer-Encoding", "chunked")], chunked(b"d" * 1500))
    assert_error(r.status, dict(r.headers), r.body.decode(), 413, LIMIT)
    r = raw(gw, "POST", path, [("Content-Length", "5000")], b"e" * 5000)
    assert_error(r.status, dict(r.headers), r.body.decode(), 413, LIMIT)
