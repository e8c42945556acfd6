"""Admin API basics: GET /status, GET /, errors, TLS, HEAD, keep-alive."""
import pytest

from aigwtest import JSON_CT, UUID_RE, RawConn, get, http, session

SECRET = "Sup3rSecret"


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module(env={"AIGW_PG_PASSWORD": SECRET})


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def test_status_shape(gw):
    r = get(gw.admin_url + "/status")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == JSON_CT
    body = r.json()
    server = body["server"]
    for k in ("connections_accepted", "connections_active", "connections_handled",
              "connections_reading", "connections_writing", "connections_waiting",
              "total_requests"):
        assert _is_int(server[k]), (k, server.get(k))
        assert server[k] >= 0, (k, server[k])
    assert server["connections_active"] >= 1
    assert body["database"]["reachable"] is True
    assert "memory" in body


def test_status_total_requests_increases(gw):
    a = get(gw.admin_url + "/status").json()["server"]["total_requests"]
    get(gw.proxy_url + "/count-me")
    b = get(gw.admin_url + "/status").json()["server"]["total_requests"]
    assert b > a


def test_root_shape(gw):
    r = get(gw.admin_url + "/")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == JSON_CT
    body = r.json()
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["tagline"], str) and body["tagline"]
    assert isinstance(body["hostname"], str) and body["hostname"]
    assert isinstance(body["edition"], str) and body["edition"]
    assert UUID_RE.match(body["node_id"]), body["node_id"]
    timers = body["timers"]
    assert _is_int(timers["running"]) and _is_int(timers["pending"])
    plugins = body["plugins"]
    assert isinstance(plugins["available_on_server"], dict)
    assert isinstance(plugins["enabled_in_cluster"], list)
    conf = body["configuration"]
    assert isinstance(conf, dict)
    assert isinstance(conf["admin_listen"], list)
    assert conf["database"] == "sqlite"


def _walk(v, path="configuration"):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _walk(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _walk(x, f"{path}[{i}]")
    else:
        yield path, v


def test_root_hides_pg_password(gw):
    r = get(gw.admin_url + "/")
    assert SECRET not in r.text
    conf = r.json()["configuration"]
    for path, v in _walk(conf):
        assert SECRET not in str(v), path
    assert conf["pg_password"] == "******"


def test_node_id_survives_restart(aigw):
    first = aigw()
    node_id = get(first.admin_url + "/").json()["node_id"]
    assert UUID_RE.match(node_id)
    assert first.stop() == 0
    second = aigw(prefix=first.prefix)
    assert get(second.admin_url + "/").json()["node_id"] == node_id


def test_admin_over_tls(gw):
    assert gw.admin_ssl_url
    r = get(gw.admin_ssl_url + "/status", verify=False)
    assert r.status_code == 200
    assert r.json()["database"]["reachable"] is True


def test_unknown_path_404(gw):
    r = get(gw.admin_url + "/no/such/endpoint-here")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == JSON_CT
    assert r.json() == {"message": "Not found"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_root_wrong_method_405(gw, method):
    r = http(method, gw.admin_url + "/")
    assert r.status_code == 405
    assert r.json() == {"message": "Method not allowed"}


def test_head_status(gw):
    r = http("HEAD", gw.admin_url + "/status")
    assert r.status_code == 200
    assert r.content == b""
    # on the wire: no body bytes after a HEAD response; the next response follows at once
    with RawConn(gw.ports["admin"]) as c:
        c.send(b"HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.read_response(head=True)
        assert h.status == 200
        g = c.read_response()
        assert g.status == 200, g
        assert g.json()["database"]["reachable"] is True


def test_keepalive_session(gw):
    s = session()
    try:
        r1 = s.get(gw.admin_url + "/status", timeout=10)
        r2 = s.get(gw.admin_url + "/", timeout=10)
        assert r1.status_code == 200 and r2.status_code == 200
        assert r2.json()["tagline"]
    finally:
        s.close()
    with RawConn(gw.ports["admin"]) as c:
        for _ in range(3):
            r = c.request("GET", "/status")
            assert r.status == 200
            assert (r.header("connection") or "").lower() != "close"


def test_still_alive(gw):
    assert gw.alive()
    assert get(gw.admin_url + "/status").status_code == 200
