"""The tcp-log and udp-log plugins at the proxy (Kong 3.9 kong/plugins/tcp-log, udp-log):
listeners started here receive one JSON record per request, as a line ending in "\\n" over
TCP (one persistent connection; a new one after the receiver closed it; records queued while
the receiver is down arrive once it is up; TLS with certificate verification) and as one
datagram without newline over UDP; aigw's `custom_fields`; credentials never appear in any
byte received. SQLite store."""
import json
import socket
import ssl
import threading
import time
import uuid

import pytest
import requests

from aigwtest import free_port, get, make_self_signed, wait_until
from proxytest import admin, gw, uniq, up  # noqa: F401

SECRET_BEARER = "s3cr3t-bearer-" + uuid.uuid4().hex
SECRET_KEY = "s3cr3t-apikey-" + uuid.uuid4().hex


class TcpSink:
    """A TCP (or TLS) receiver on 127.0.0.1: keeps every byte, counts connections."""

    def __init__(self, port=None, tls_ctx=None):
        self.lock = threading.Lock()
        self.data = b""
        self.connections = 0
        self.conns = []
        self.tls_ctx = tls_ctx
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port or 0))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(30)
            if self.tls_ctx:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            with self.lock:
                self.connections += 1
                self.conns.append(c)
            while True:
                b = c.recv(65536)
                if not b:
                    break
                with self.lock:
                    self.data += b
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def records(self):
        with self.lock:
            data = self.data
        return [json.loads(ln) for ln in data.split(b"\n")[:-1]]

    def raw(self):
        with self.lock:
            return self.data

    def drop_connections(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopping = True
        self.drop_connections()
        self.srv.close()
        self.thread.join(5)


class UdpSink:
    def __init__(self, port=None):
        self.lock = threading.Lock()
        self.datagrams = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                d, _ = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.datagrams.append(d)

    def records(self):
        with self.lock:
            return [json.loads(d) for d in self.datagrams]

    def raw(self):
        with self.lock:
            return list(self.datagrams)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def tcp_sink():
    s = TcpSink()
    yield s
    s.close()


@pytest.fixture
def udp_sink():
    s = UdpSink()
    yield s
    s.close()


def route_with(gw, up, plugin, config):
    """Service, then the plugin on it, then the route: once the route answers, the plugin (in
    an earlier or the same snapshot) is active."""
    name = uniq(plugin.replace("-", ""))
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    p = admin(gw, "POST", "/services/%s/plugins" % name, json={"name": plugin, "config": config})
    admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    path = "/" + name
    wait_until(lambda: get(gw.proxy_url + path + "/ready").status_code == 200, 15,
               interval=0.05, what="route " + path)
    return path, p


def secret_request(gw, path, i):
    r = get(gw.proxy_url + path + "/req/%d?apikey=%s&i=%d" % (i, SECRET_KEY, i),
            headers={"Authorization": "Bearer " + SECRET_BEARER,
                     "Proxy-Authorization": "Bearer " + SECRET_BEARER})
    assert r.status_code == 200, r.text


def uris(recs, path):
    return sorted(x["request"]["uri"].split("?")[0] for x in recs
                  if x["request"]["uri"].startswith(path + "/req/"))


def want(path, n):
    return sorted(path + "/req/%d" % i for i in range(n))


# ---- tcp-log


def test_tcp_log_records_over_one_connection(gw, up, tcp_sink):
    path, p = route_with(gw, up, "tcp-log", {"host": "127.0.0.1", "port": tcp_sink.port,
                                             "custom_fields": {"team": "ai", "x": [1, 2]}})
    assert p["config"]["timeout"] == 10000 and p["config"]["keepalive"] == 60000
    assert p["config"]["tls"] is False
    for i in range(10):
        secret_request(gw, path, i)
    wait_until(lambda: uris(tcp_sink.records(), path) == want(path, 10), 15,
               what="10 tcp-log records")
    raw = tcp_sink.raw()
    assert raw.endswith(b"\n")
    recs = [r for r in tcp_sink.records() if r["request"]["uri"].startswith(path + "/req/")]
    for rec in recs:
        assert rec["response"]["status"] == 200
        assert rec["request"]["method"] == "GET"
        assert rec["request"]["headers"]["authorization"] == "REDACTED"
        assert rec["service"]["id"] == p["service"]["id"]
        assert rec["team"] == "ai" and rec["x"] == [1, 2]
    assert SECRET_BEARER.encode() not in raw
    assert SECRET_KEY.encode() not in raw
    # a persistent connection (keepalive 60 s)
    assert tcp_sink.connections == 1


def test_tcp_log_reconnects_after_the_receiver_closed(gw, up, tcp_sink):
    path, _ = route_with(gw, up, "tcp-log", {"host": "127.0.0.1", "port": tcp_sink.port})
    secret_request(gw, path, 0)
    wait_until(lambda: uris(tcp_sink.records(), path) == want(path, 1), 15, what="1 record")
    tcp_sink.drop_connections()
    time.sleep(0.2)
    for i in range(1, 6):
        secret_request(gw, path, i)
    wait_until(lambda: uris(tcp_sink.records(), path) == want(path, 6), 20,
               what="6 records, across a reconnect")
    assert tcp_sink.connections >= 2


def test_tcp_log_delivers_what_was_queued_while_the_receiver_was_down(gw, up):
    port = free_port()
    path, _ = route_with(gw, up, "tcp-log", {"host": "127.0.0.1", "port": port,
                                             "timeout": 1000})
    for i in range(5):
        secret_request(gw, path, i)   # never delayed by the sink
    wait_until(lambda: "failed to connect to 127.0.0.1:%d" % port in gw.error_log_text(), 10,
               what="connect failure logged")
    sink = TcpSink(port=port)
    try:
        wait_until(lambda: uris(sink.records(), path) == want(path, 5), 30,
                   what="records delivered once the receiver is up")
    finally:
        sink.close()


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    d = tmp_path_factory.mktemp("tcplog-tls")
    return make_self_signed(d, cn="logs.test.local")


def tls_server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_tcp_log_tls_verified(aigw, up, tls_material):
    cert, key = tls_material
    g = aigw(env={"SSL_CERT_FILE": cert})
    sink = TcpSink(tls_ctx=tls_server_ctx(cert, key))
    try:
        path, p = route_with(g, up, "tcp-log", {"host": "127.0.0.1", "port": sink.port,
                                                "tls": True, "tls_sni": "logs.test.local"})
        assert p["config"]["tls_sni"] == "logs.test.local"
        for i in range(3):
            secret_request(g, path, i)
        wait_until(lambda: uris(sink.records(), path) == want(path, 3), 15,
                   what="records over TLS")
        assert SECRET_BEARER.encode() not in sink.raw()
        assert sink.connections == 1
    finally:
        sink.close()


@pytest.mark.xfail(strict=False, reason="known issue: the first batch written after the "
                   "receiver dropped a TLS connection can be lost on some runs (the dead "
                   "connection is not always detected before the write)")
def test_tcp_log_tls_reconnects_without_loss(aigw, up, tls_material):
    cert, key = tls_material
    g = aigw(env={"SSL_CERT_FILE": cert})
    sink = TcpSink(tls_ctx=tls_server_ctx(cert, key))
    try:
        path, p = route_with(g, up, "tcp-log", {"host": "127.0.0.1", "port": sink.port,
                                                "tls": True, "tls_sni": "logs.test.local"})
        for i in range(3):
            secret_request(g, path, i)
        wait_until(lambda: uris(sink.records(), path) == want(path, 3), 15,
                   what="records over TLS")
        # the receiver ends the TLS connection: the next records come over a new one
        sink.drop_connections()
        time.sleep(0.2)
        for i in range(3, 6):
            secret_request(g, path, i)
        wait_until(lambda: uris(sink.records(), path) == want(path, 6), 20,
                   what="records over a new TLS connection")
        assert sink.connections == 2
    finally:
        sink.close()


def test_tcp_log_tls_refuses_a_certificate_for_another_name(aigw, up, tls_material):
    cert, key = tls_material
    g = aigw(env={"SSL_CERT_FILE": cert})
    sink = TcpSink(tls_ctx=tls_server_ctx(cert, key))
    try:
        path, _ = route_with(g, up, "tcp-log", {"host": "127.0.0.1", "port": sink.port,
                                                "tls": True, "tls_sni": "other.example"})
        secret_request(g, path, 0)
        wait_until(lambda: "certificate verify failed" in g.error_log_text(), 15,
                   what="verification failure logged")
        assert "failed to perform TLS handshake to 127.0.0.1:%d" % sink.port \
            in g.error_log_text()
        assert sink.raw() == b""
        assert SECRET_BEARER not in g.error_log_text()
    finally:
        sink.close()


# ---- udp-log


def test_udp_log_one_datagram_per_request(gw, up, udp_sink):
    path, p = route_with(gw, up, "udp-log", {"host": "127.0.0.1", "port": udp_sink.port,
                                             "custom_fields": {"team": "ai"}})
    assert p["config"]["timeout"] == 10000
    for i in range(10):
        secret_request(gw, path, i)
    wait_until(lambda: uris(udp_sink.records(), path) == want(path, 10), 15,
               what="10 udp-log datagrams")
    for d in udp_sink.raw():
        assert not d.endswith(b"\n")
        assert SECRET_BEARER.encode() not in d
        assert SECRET_KEY.encode() not in d
    rec = [r for r in udp_sink.records() if r["request"]["uri"].startswith(path + "/req/")][0]
    assert rec["response"]["status"] == 200
    assert rec["request"]["headers"]["authorization"] == "REDACTED"
    assert rec["team"] == "ai"


def test_udp_log_without_receiver_costs_nothing(gw, up):
    port = free_port()
    path, _ = route_with(gw, up, "udp-log", {"host": "127.0.0.1", "port": port})
    t0 = time.monotonic()
    for i in range(20):
        secret_request(gw, path, i)
    assert time.monotonic() - t0 < 10
    # and a receiver that appears later gets the next records
    sink = UdpSink(port=port)
    try:
        def got():
            secret_request(gw, path, 99)
            return any(r["request"]["uri"].startswith(path + "/req/99") for r in sink.records())
        wait_until(got, 15, interval=0.2, what="datagrams once a receiver listens")
    finally:
        sink.close()


def test_admin_validation(gw):
    name = uniq("tlbad")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:9"})
    r = requests.post(gw.admin_url + "/services/%s/plugins" % name,
                      json={"name": "tcp-log", "config": {"host": "127.0.0.1"}}, timeout=20)
    assert r.status_code == 400
    assert r.json()["fields"]["config"]["port"] == "required field missing"
    r = requests.post(gw.admin_url + "/services/%s/plugins" % name,
                      json={"name": "udp-log", "config": {"host": "127.0.0.1", "port": 70000}},
                      timeout=20)
    assert r.status_code == 400
    assert r.json()["fields"]["config"]["port"] == "value should be between 0 and 65535"
