"""Proxy port with no routes: Kong's 404 body, request ids, TLS (versions, ALPN, certificates)."""
import re
import ssl
import warnings
from pathlib import Path

import pytest

from aigwtest import (JSON_CT, NO_ROUTE, get, http, insecure_tls_ctx, make_self_signed,
                      pem_certs_der, peer_cert_der, tls_connect)

KONG_BODY_RE = re.compile(r'^\{\n  "message":"no Route matched with those values",\n'
                          r'  "request_id":"[0-9a-f]+"\n\}\n?$')


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def check_no_route(r):
    assert r.status_code == 404, r.text
    assert r.headers.get("Content-Type") == JSON_CT
    body = r.json()
    assert body["message"] == NO_ROUTE
    rid = r.headers.get("X-Kong-Request-Id")
    assert rid, dict(r.headers)
    if "request_id" in body:
        assert body["request_id"] == rid
        assert KONG_BODY_RE.match(r.text), repr(r.text)
    return rid


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/anything", None),
    ("GET", "/", None),
    ("POST", "/anything/else?x=1", b'{"prompt":"hello"}'),
    ("GET", "/ai-workflow/health", None),
    ("DELETE", "/v1/agents/42", None),
])
def test_no_route_404(gw, method, path, body):
    headers = {"Content-Type": "application/json"} if body else {}
    check_no_route(http(method, gw.proxy_url + path, data=body, headers=headers))


def test_request_ids_differ(gw):
    a = check_no_route(get(gw.proxy_url + "/a"))
    b = check_no_route(get(gw.proxy_url + "/b"))
    assert a != b


def test_no_route_over_tls(gw):
    assert gw.proxy_ssl_url
    check_no_route(get(gw.proxy_ssl_url + "/anything", verify=False))


def test_tls12_and_tls13(gw):
    port = gw.ports["proxy_ssl"]
    for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        s = tls_connect(port, insecure_tls_ctx(min_version=v, max_version=v))
        try:
            assert s.version() == name
            s.sendall(b"GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 404"), data[:200]
        finally:
            s.close()


def test_tls11_refused(gw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = insecure_tls_ctx(min_version=ssl.TLSVersion.TLSv1,
                               max_version=ssl.TLSVersion.TLSv1_1)
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except ssl.SSLError:
            pass
    try:
        s = tls_connect(gw.ports["proxy_ssl"], ctx)
    except ssl.SSLError as e:
        if "no protocols available" in str(e).lower():
            pytest.skip("the local OpenSSL client will not offer TLS 1.1")
        return  # refused by the server: what we want
    except ConnectionResetError:
        return  # also a refusal
    v = s.version()
    s.close()
    pytest.fail(f"server accepted a {v} handshake")


def test_alpn_http11(gw):
    s = tls_connect(gw.ports["proxy_ssl"], insecure_tls_ctx(alpn=["h2", "http/1.1"]))
    try:
        assert s.selected_alpn_protocol() == "http/1.1"
    finally:
        s.close()


def _ssl_files(prefix):
    d = Path(prefix) / "ssl"
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()} \
        if d.is_dir() else {}


def test_self_signed_created_and_reused(aigw):
    first = aigw()
    files = _ssl_files(first.prefix)
    assert files, f"no files in {first.prefix}/ssl after the first start"
    der1 = peer_cert_der(first.ports["proxy_ssl"])
    # the presented certificate is one of those files
    certs = [c for name in files for c in pem_certs_der(first.prefix / "ssl" / name)]
    assert der1 in certs, "the proxy's certificate is not among the files in <prefix>/ssl"
    assert first.stop() == 0

    second = aigw(prefix=first.prefix)
    assert _ssl_files(second.prefix) == files, "certificate files changed on restart"
    assert peer_cert_der(second.ports["proxy_ssl"]) == der1


@pytest.mark.parametrize("var_prefix", ["AIGW", "KONG"])
def test_configured_certificate(aigw, tmp_path, var_prefix):
    cert, key = make_self_signed(tmp_path / "cert", cn="test.local")
    gw = aigw(env={f"{var_prefix}_SSL_CERT": cert, f"{var_prefix}_SSL_CERT_KEY": key})
    want = pem_certs_der(cert)[0]
    assert peer_cert_der(gw.ports["proxy_ssl"]) == want
    pem = ssl.get_server_certificate(("127.0.0.1", gw.ports["proxy_ssl"]), timeout=10)
    assert ssl.PEM_cert_to_DER_cert(pem) == want
    check_no_route(get(gw.proxy_ssl_url + "/x", verify=False))


def test_still_alive(gw):
    assert gw.alive()
    assert get(gw.admin_url + "/status").status_code == 200


def test_error_format_follows_accept(gw):
    """kong.response.error answers in the format the Accept header asks for."""
    r = get(gw.proxy_url + "/html", headers={"Accept": "text/html,application/xml;q=0.9"})
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<p>no Route matched with those values.</p>" in r.text
    r = get(gw.proxy_url + "/plain", headers={"Accept": "text/plain"})
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.text.startswith("no Route matched with those values\nrequest_id: ")
    r = get(gw.proxy_url + "/xml", headers={"Accept": "application/xml"})
    assert "<message>no Route matched with those values</message>" in r.text


def test_plain_http_on_tls_port(gw):
    """Plain HTTP sent to the TLS port gets a readable 400 (nginx's 497), then a close."""
    r = get(f"http://127.0.0.1:{gw.ports['proxy_ssl']}/x")
    assert r.status_code == 400
    assert r.json()["message"] == "The plain HTTP request was sent to HTTPS port"
    assert r.headers.get("Connection", "").lower() == "close"
    # The TLS port still speaks TLS to everyone else.
    r = get(gw.proxy_ssl_url + "/y", verify=False)
    assert r.status_code == 404
