"""request-transformer and response-transformer at the proxy (Kong 3.9
kong/plugins/request-transformer/access.lua, response-transformer/header_transformer.lua):
what the upstream receives (the echo upstream answers with the request it got) and the
response headers the client sees. SQLite store."""
import json

import pytest
import requests

from aigwtest import RawConn, get, http, wait_until
from proxytest import ERR_RE, admin, gw, uniq, up  # noqa: F401


def route_with(gw, up, plugins, svc_path=""):
    name = uniq("xf")
    admin(gw, "POST", "/services",
          json={"name": name, "url": "http://127.0.0.1:%d%s" % (up.port, svc_path)})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    for pname, cfg in plugins:
        admin(gw, "POST", "/routes/%s/plugins" % route["id"], json={"name": pname, "config": cfg})
    return "/" + name, route


def settle(gw, path, pred):
    wait_until(lambda: pred(get(gw.proxy_url + path)), 5, interval=0.02, what=path)


def headers_of(body, name):
    return [v for k, v in body["headers"] if k.lower() == name.lower()]


def names_of(body):
    return [k for k, _ in body["headers"]]


def echo(r):
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("X-Upstream") == "echo"
    return r.json()


# ---- request-transformer: headers ------------------------------------------------------------

@pytest.fixture(scope="module")
def hdr_route(gw, up):
    path, _ = route_with(gw, up, [("request-transformer", {
        "remove": {"headers": ["x-remove", "x-absent"]},
        "rename": {"headers": ["x-old:x-new", "x-none:x-other"]},
        "replace": {"headers": ["x-rep:replaced", "x-not-there:z"]},
        "add": {"headers": ["x-keep:not-added", "x-added:v:with:colons"]},
        "append": {"headers": ["x-keep:second", "x-app:1", "x-app:2"]},
    })])
    settle(gw, path, lambda r: r.status_code == 200 and headers_of(r.json(), "x-added"))
    return path


def test_request_headers(gw, up, hdr_route):
    b = echo(get(gw.proxy_url + hdr_route, headers={
        "X-Remove": "gone", "X-Old": "moved", "X-Rep": "orig", "X-Keep": "kept",
        "X-Other-Client": "untouched"}))
    assert headers_of(b, "x-remove") == []
    assert headers_of(b, "x-old") == []
    assert headers_of(b, "x-new") == ["moved"]
    assert headers_of(b, "x-other") == []
    assert headers_of(b, "x-rep") == ["replaced"]
    assert headers_of(b, "x-not-there") == []
    assert headers_of(b, "x-keep") == ["kept", "second"]
    assert headers_of(b, "x-added") == ["v:with:colons"]
    assert headers_of(b, "x-app") == ["1", "2"]
    assert headers_of(b, "x-other-client") == ["untouched"]
    # exactly one Host, one Content-Length at most
    assert len(headers_of(b, "host")) == 1


def test_request_headers_without_client_ones(gw, up, hdr_route):
    b = echo(get(gw.proxy_url + hdr_route))
    assert headers_of(b, "x-new") == []
    assert headers_of(b, "x-rep") == []
    # absent: add sets it, then append adds a second line
    assert headers_of(b, "x-keep") == ["not-added", "second"]
    assert headers_of(b, "x-added") == ["v:with:colons"]


def test_replace_host_and_framing_headers(gw, up):
    path, _ = route_with(gw, up, [("request-transformer", {
        "replace": {"headers": ["host:example.test"]},
        "add": {"headers": ["content-length:999", "x-mark:1"]},
    })])
    settle(gw, path, lambda r: r.status_code == 200 and headers_of(r.json(), "x-mark"))
    r = http("POST", gw.proxy_url + path, data=b"abc")
    b = echo(r)
    assert headers_of(b, "host") == ["example.test"]
    assert headers_of(b, "content-length") == ["3"]
    assert b["body"] == "abc"


def test_header_value_with_crlf_fails_closed(gw, up):
    # a value that would split the header line is refused (the instance fails closed)
    # instead of reaching the upstream as an extra header
    up.reset()
    path, _ = route_with(gw, up, [("request-transformer",
                                   {"add": {"headers": ["x-a:v\r\nx-injected: 1"]}})])
    wait_until(lambda: get(gw.proxy_url + path).status_code == 500, 5, interval=0.02)
    with up.lock:
        assert not any(k.lower() == "x-injected" for rq in up.requests for k, _ in rq["headers"])


# ---- request-transformer: query string, method, uri ------------------------------------------

def test_querystring(gw, up):
    path, _ = route_with(gw, up, [("request-transformer", {
        "remove": {"querystring": ["drop"]},
        "rename": {"querystring": ["b:bb"]},
        "replace": {"querystring": ["a:A B", "absent:x"]},
        "add": {"querystring": ["c:3", "a:no"]},
        "append": {"querystring": ["multi:2"]},
    })])
    settle(gw, path, lambda r: r.status_code == 200 and "c=3" in r.json()["target"])
    b = echo(get(gw.proxy_url + path + "/x?z=last&b=2&a=1&drop=x&multi=1"))
    # Kong's set_query: each argument encoded, then sorted (strip_path: the path is /x)
    assert b["target"] == "/x?a=A%20B&bb=2&c=3&multi=1&multi=2&z=last"
    b = echo(get(gw.proxy_url + path))
    assert b["target"] == "/?a=no&c=3&multi=2"


def test_http_method_and_uri(gw, up):
    path, _ = route_with(gw, up, [("request-transformer", {
        "http_method": "GET",
        "replace": {"uri": "/new path/x"},
    })])
    settle(gw, path, lambda r: r.status_code == 200 and r.json()["target"].startswith("/new"))
    r = http("POST", gw.proxy_url + path + "?q=1", data="f=1&g=x+y",
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    b = echo(r)
    assert b["method"] == "GET"
    # the form's arguments join the query string (Kong: GET/HEAD/TRACE with a form body)
    assert b["target"] == "/new%20path/x?f=1&g=x%20y&q=1"
    r = http("PUT", gw.proxy_url + path, data='{"a":1}',
             headers={"Content-Type": "application/json"})
    b = echo(r)
    assert b["method"] == "GET"
    assert b["target"] == "/new%20path/x"
    assert b["body"] == '{"a":1}'


def test_uri_not_starting_with_slash_is_500(gw, up):
    path, _ = route_with(gw, up, [("request-transformer", {"replace": {"uri": "relative"}})])
    settle(gw, path, lambda r: r.status_code == 500)
    r = get(gw.proxy_url + path)
    assert r.status_code == 500
    m = ERR_RE.match(r.text)
    assert m and m.group("m") == "An unexpected error occurred", r.text


# ---- request-transformer: bodies -------------------------------------------------------------

BODY_CFG = {
    "remove": {"body": ["secret"]},
    "rename": {"body": ["old:new"]},
    "replace": {"body": ["rep:R"]},
    "add": {"body": ["added:yes", "rep:not"]},
    "append": {"body": ["list:two"]},
}


@pytest.fixture(scope="module")
def body_route(gw, up):
    path, _ = route_with(gw, up, [("request-transformer", BODY_CFG)])
    settle(gw, path, lambda r: r.status_code == 200)
    wait_until(lambda: "added" in http(
        "POST", gw.proxy_url + path, data="{}",
        headers={"Content-Type": "application/json"}).json()["body"], 5, interval=0.02)
    return path


def test_json_body(gw, up, body_route):
    r = http("POST", gw.proxy_url + body_route,
             data=json.dumps({"secret": "s", "old": 1, "rep": "r", "list": "one", "keep": True}),
             headers={"Content-Type": "application/json; charset=utf-8"})
    b = echo(r)
    got = json.loads(b["body"])
    assert got == {"new": 1, "rep": "R", "list": ["one", "two"], "keep": True, "added": "yes"}
    assert headers_of(b, "content-length") == [str(len(b["body"].encode("latin-1")))]


def test_json_body_not_json_left_alone(gw, up, body_route):
    r = http("POST", gw.proxy_url + body_route, data="{not json",
             headers={"Content-Type": "application/json"})
    assert echo(r)["body"] == "{not json"


def test_form_body(gw, up, body_route):
    r = http("POST", gw.proxy_url + body_route, data="secret=s&old=1&rep=r&list=one&k=a+b",
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    b = echo(r)
    assert b["body"] == "rep=R&list=one&list=two&k=a%20b&new=1&added=yes"
    assert headers_of(b, "content-length") == [str(len(b["body"]))]


def test_multipart_body(gw, up, body_route):
    files = {"secret": (None, "s"), "rep": (None, "r"), "f": ("a.txt", b"file\r\ndata",
                                                             "text/plain")}
    req = requests.Request("POST", gw.proxy_url + body_route, files=files).prepare()
    boundary = req.headers["Content-Type"].split("boundary=")[1]
    r = http("POST", gw.proxy_url + body_route, data=req.body,
             headers={"Content-Type": req.headers["Content-Type"]})
    b = echo(r)
    body = b["body"]
    assert 'name="secret"' not in body
    assert body.endswith("--%s--\r\n" % boundary)
    assert 'Content-Disposition: form-data; name="rep"\r\n\r\nR\r\n' in body
    assert 'Content-Disposition: form-data; name="added"\r\n\r\nyes\r\n' in body
    assert 'filename="a.txt"' in body and "file\r\ndata" in body


def test_other_content_types_untouched(gw, up, body_route):
    r = http("POST", gw.proxy_url + body_route, data="secret=s",
             headers={"Content-Type": "text/plain"})
    assert echo(r)["body"] == "secret=s"


# ---- response-transformer --------------------------------------------------------------------

def raw_get(gw, path):
    with RawConn(gw.ports["proxy"], timeout=10) as c:
        return c.request("GET", path)


@pytest.fixture(scope="module")
def resp_route(gw, up):
    path, _ = route_with(gw, up, [("response-transformer", {
        "remove": {"headers": ["date"]},
        "rename": {"headers": ["x-upstream:x-origin", "x-absent:x-never"]},
        "replace": {"headers": ["content-type:application/json; charset=utf-8", "x-none:1"]},
        "add": {"headers": ["x-origin:not-added", "x-added:a:b", "content-type:no"]},
        "append": {"headers": ["x-multi:1", "x-multi:2"]},
    })])
    wait_until(lambda: raw_get(gw, path).header("x-added"), 5, interval=0.02, what=path)
    return path


def test_response_headers(gw, up, resp_route):
    r = raw_get(gw, resp_route)
    assert r.status == 200
    assert r.header("X-Upstream") is None
    # add tests the headers as they were when the plugin started (Kong's snapshot), where
    # x-origin did not exist yet: it replaces the renamed value
    assert r.header_all("x-origin") == ["not-added"]
    assert r.header_all("x-never") == []
    assert r.header("content-type") == "application/json; charset=utf-8"
    assert r.header_all("x-none") == []
    assert r.header_all("x-added") == ["a:b"]
    assert r.header_all("x-multi") == ["1", "2"]
    # the upstream's Date is removed; the proxy adds its own as nginx does
    assert len(r.header_all("date")) == 1
    assert json.loads(r.body)["method"] == "GET"


def test_response_headers_on_plugin_exit(gw, up):
    path, _ = route_with(gw, up, [
        ("response-transformer", {"add": {"headers": ["x-added:1"]},
                                  "remove": {"headers": ["content-type"]}}),
        ("request-termination", {"status_code": 403, "message": "no"}),
    ])
    wait_until(lambda: get(gw.proxy_url + path).status_code == 403, 5, interval=0.02)
    r = raw_get(gw, path)
    assert r.status == 403
    assert r.header_all("x-added") == ["1"]
    assert r.header_all("content-type") == []
    assert r.body == b'{"message":"no"}'


@pytest.fixture(scope="module")
def json_route(gw, up):
    path, _ = route_with(gw, up, [("response-transformer", {
        "remove": {"json": ["headers"]},
        "rename": {"json": ["method:verb"]},
        "replace": {"json": ["target:hidden"]},
        "add": {"json": ["added:1", "num:2"], "json_types": ["string", "number"]},
        "append": {"json": ["list:a"]},
    })])
    wait_until(lambda: "verb" in get(gw.proxy_url + path).text, 5, interval=0.02, what=path)
    return path


def check_json_body(r, verb="GET"):
    """The echo's JSON answer as the transformer leaves it, sent with its new length."""
    assert r.status == 200, r
    assert r.header("transfer-encoding") is None
    assert int(r.header("content-length")) == len(r.body)
    b = json.loads(r.body)
    assert "headers" not in b and "method" not in b
    assert b["verb"] == verb and b["target"] == "hidden"
    assert b["added"] == "1" and b["num"] == 2 and b["list"] == ["a"]
    return b


def test_response_json_body(gw, up, json_route):
    check_json_body(raw_get(gw, json_route))
    # an upstream answering in chunks is collected whole, then sent with a length
    check_json_body(raw_get(gw, json_route + "/chunked/x"))
    # an HTTP/1.0 upstream whose body ends with the connection
    check_json_body(raw_get(gw, json_route + "/http10"))
    # a body of megabytes, read in many pieces
    big = b"x" * (3 << 20)
    with RawConn(gw.ports["proxy"], timeout=30) as c:
        r = c.request("POST", json_route, headers={"Content-Type": "text/plain"}, body=big)
    assert len(check_json_body(r, "POST")["body"]) == len(big)
    with RawConn(gw.ports["proxy"], timeout=10) as c:
        r = c.request("HEAD", json_route)
    assert r.status == 200 and r.body == b""


def test_response_json_ops_leave_other_bodies(gw, up, json_route):
    # not JSON: streamed as it comes, events intact
    r = raw_get(gw, json_route + "/sse/3/10")
    assert r.status == 200 and r.body.count(b"data: ") == 3
    assert r.header("transfer-encoding") == "chunked"


def test_response_json_ops_on_plugin_exit(gw, up):
    # Kong runs body_filter on kong.response.exit answers too
    path, _ = route_with(gw, up, [
        ("response-transformer", {"add": {"json": ["x:1"]}}),
        ("request-termination", {"status_code": 403, "message": "no"}),
    ])
    wait_until(lambda: get(gw.proxy_url + path).status_code == 403, 5, interval=0.02)
    r = raw_get(gw, path)
    assert r.status == 403
    assert json.loads(r.body) == {"message": "no", "x": "1"}
    assert int(r.header("content-length")) == len(r.body)