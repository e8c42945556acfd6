"""TLS on the proxy: certificates and snis entities chosen by SNI (and changed without a
restart), and TLS to https upstreams with tls_verify and ca_certificates."""
import ssl
import subprocess
from pathlib import Path

import pytest
import requests

from aigwtest import get, peer_cert_der, wait_until
from upstreams import Upstream


def make_cert(d, cn, ca=None, san=None):
    """A certificate for cn (self-signed, or signed by ca=(cert, key)); returns paths."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    key, cert = d / (cn + ".key"), d / (cn + ".pem")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    str(key)], check=True, capture_output=True, timeout=30)
    ext = d / (cn + ".ext")
    ext.write_text("subjectAltName=DNS:%s\n" % (san or cn) +
                   ("basicConstraints=critical,CA:TRUE\n" if ca is None and san == "ca" else ""))
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", str(key), "-subj", "/CN=" + cn,
                        "-days", "1", "-out", str(cert), "-addext",
                        "subjectAltName=DNS:" + cn, "-addext", "basicConstraints=critical,CA:TRUE"],
                       check=True, capture_output=True, timeout=30)
    else:
        csr = d / (cn + ".csr")
        subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=" + cn,
                        "-out", str(csr)], check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", ca[0], "-CAkey", ca[1],
                        "-CAcreateserial", "-days", "1", "-out", str(cert), "-extfile", str(ext)],
                       check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


def der(path):
    return ssl.PEM_cert_to_DER_cert(Path(path).read_text())


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def post(gw, path, **kw):
    r = requests.post(gw.admin_url + path, timeout=10, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def test_certificate_chosen_by_sni_and_live_without_restart(gw, tmp_path):
    port = gw.ports["proxy_ssl"]
    default = peer_cert_der(port, "api.example.test")
    c1, k1 = make_cert(tmp_path, "api.example.test")
    c2, k2 = make_cert(tmp_path, "wild.example.test")
    post(gw, "/certificates", json={"cert": Path(c1).read_text(), "key": Path(k1).read_text(),
                                    "snis": ["api.example.test"]})
    post(gw, "/certificates", json={"cert": Path(c2).read_text(), "key": Path(k2).read_text(),
                                    "snis": ["*.example.test"]})
    wait_until(lambda: peer_cert_der(port, "api.example.test") == der(c1) and
               peer_cert_der(port, "other.example.test") == der(c2), 5, what="both snis")
    assert peer_cert_der(port, "api.example.test") == der(c1)       # exact beats wildcard
    assert peer_cert_der(port, "other.example.test") == der(c2)     # wildcard
    assert peer_cert_der(port, "unknown.test") == default            # the default certificate
    assert default != der(c1)


def test_https_upstream_with_and_without_verification(gw, tmp_path):
    ca_c, ca_k = make_cert(tmp_path / "ca", "Test CA")
    leaf_c, leaf_k = make_cert(tmp_path / "leaf", "localhost", ca=(ca_c, ca_k))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(leaf_c, leaf_k)
    up = Upstream(tls_ctx=sctx)
    try:
        url = "https://localhost:%d" % up.port
        post(gw, "/services", data={"name": "tls-plain", "url": url})
        post(gw, "/services/tls-plain/routes", data={"paths[]": "/tls-plain"})
        wait_until(lambda: get(gw.proxy_url + "/tls-plain/x").status_code == 200, 5,
                   what="https upstream")
        r = get(gw.proxy_url + "/tls-plain/x")
        assert r.json()["target"] == "/x"

        # tls_verify without a CA that signed the leaf: the handshake fails, 502
        post(gw, "/services", data={"name": "tls-verify", "url": url, "tls_verify": "true",
                                    "retries": "0"})
        post(gw, "/services/tls-verify/routes", data={"paths[]": "/tls-verify"})
        wait_until(lambda: get(gw.proxy_url + "/tls-verify").status_code == 502, 5,
                   what="verification failure")

        # with the CA as a ca_certificates entity: verified, 200
        ca = post(gw, "/ca_certificates", json={"cert": Path(ca_c).read_text()})
        post(gw, "/services", json={"name": "tls-ca", "url": url, "tls_verify": True,
                                    "ca_certificates": [ca["id"]]})
        post(gw, "/services/tls-ca/routes", data={"paths[]": "/tls-ca"})
        wait_until(lambda: get(gw.proxy_url + "/tls-ca/y").status_code == 200, 5,
                   what="verified upstream")
    finally:
        up.close()
