"""Reload under load drops no request: keep-alive clients (plain and TLS) hammer a proxied route
while the admin API creates, updates and deletes other services and routes, the route under
load itself is updated (so every worker swaps its runtime many times), the daemon is reloaded
(SIGHUP and `aigwd reload`) with a changed configuration file, and the TLS certificate for the
clients' SNI is replaced. Every request must get the upstream's 200; no connection may fail.
A server-sent-events stream and a slow request in flight across all of that complete intact.
The fixtures fail the run on any sanitizer report from aigwd."""
import http.client as httpclient
import json
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from aigwtest import (RawConn, aigwd_bin, get, make_self_signed, peer_cert_der, session,
                      tls_connect, wait_until)
from upstreams import Upstream

LOAD_SECONDS = 4.0
PLAIN_CLIENTS = 6
TLS_CLIENTS = 2
SNI = "load.test"
TIMEOUT = 10


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module(conf="log_level = notice\n")


def admin(gw, method, path, **kw):
    r = requests.request(method, gw.admin_url + path, timeout=TIMEOUT, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


def route_to(gw, up, name, path, **route_fields):
    admin(gw, "POST", "/services", data={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    data = {"paths[]": path}
    data.update(route_fields)
    route = admin(gw, "POST", "/services/%s/routes" % name, data=data)
    wait_until(lambda: get(gw.proxy_url + path + "/ready").status_code == 200, 5,
               what="route " + path)
    return route


# what a snapshot read half before and half after a commit looks like in the error log (see
# test_snapshot_is_one_point_in_time)
TORN_MARKERS = (": certificate ", " is not in the configuration")


def is_torn(line):
    return "[error]" in line and any(m in line for m in TORN_MARKERS) and \
        ("not found" in line or "not loaded" in line)


def der(path):
    return ssl.PEM_cert_to_DER_cert(Path(path).read_text())


def aigwd_reload(gw):
    r = subprocess.run([aigwd_bin(), "reload", "-p", str(gw.prefix)], env=gw.env,
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout, r.stderr)


def log_level(gw):
    return get(gw.admin_url + "/").json()["configuration"]["log_level"]


class _SockConn(RawConn):
    """RawConn over an already connected (TLS) socket."""

    def __init__(self, sock, timeout=TIMEOUT):
        self.timeout = timeout
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = b""


class Load:
    """Client threads until stop is set: plain ones on requests.Session keep-alive, TLS ones on
    raw keep-alive connections with SNI, reconnecting every few requests so that handshakes
    keep happening while the certificate changes."""

    def __init__(self, gw, prefix):
        self.gw, self.prefix = gw, prefix
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = {"plain": 0, "tls": 0}
        self.failures = []
        self.certs_seen = set()
        self.threads = []

    def fail(self, what):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(what)

    def check(self, status, body, path, where):
        if status != 200:
            self.fail("%s %s: status %s %r" % (where, path, status, body[:300]))
            return False
        try:
            target = json.loads(body)["target"]
        except ValueError:
            self.fail("%s %s: not the upstream's answer: %r" % (where, path, body[:300]))
            return False
        # strip_path is toggled under load: either form is right, nothing else is
        if target not in (path, path[len(self.prefix):]):
            self.fail("%s %s: upstream saw %r" % (where, path, target))
            return False
        return True

    def plain(self, k):
        i = 0
        with session() as s:
            while not self.stop.is_set():
                i += 1
                path = "%s/p%d/%d" % (self.prefix, k, i)
                try:
                    r = s.get(self.gw.proxy_url + path, timeout=TIMEOUT)
                except requests.RequestException as e:
                    self.fail("plain %s: %r" % (path, e))
                    continue
                if self.check(r.status_code, r.content, path, "plain"):
                    with self.lock:
                        self.ok["plain"] += 1

    def tls(self, k):
        i = 0
        c = None
        while not self.stop.is_set():
            try:
                if c is None or i % 5 == 0:
                    if c is not None:
                        c.close()
                    sock = tls_connect(self.gw.ports["proxy_ssl"], server_hostname=SNI,
                                       timeout=TIMEOUT)
                    with self.lock:
                        self.certs_seen.add(sock.getpeercert(binary_form=True))
                    c = _SockConn(sock)
                i += 1
                path = "%s/t%d/%d" % (self.prefix, k, i)
                r = c.request("GET", path, host=SNI)
            except (OSError, ssl.SSLError, ConnectionError, AssertionError) as e:
                self.fail("tls request %d: %r" % (i, e))
                c = None
                continue
            if self.check(r.status, r.body, path, "tls"):
                with self.lock:
                    self.ok["tls"] += 1
        if c is not None:
            c.close()

    def start(self):
        for k in range(PLAIN_CLIENTS):
            self.threads.append(threading.Thread(target=self.plain, args=(k,), daemon=True))
        for k in range(TLS_CLIENTS):
            self.threads.append(threading.Thread(target=self.tls, args=(k,), daemon=True))
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(TIMEOUT + 5)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"


def test_reload_under_load_drops_no_request(gw, up, tmp_path):
    route = route_to(gw, up, "load", "/load", strip_path="false")
    c1, k1 = make_self_signed(tmp_path / "one", cn=SNI)
    c2, k2 = make_self_signed(tmp_path / "two", cn=SNI)
    c3, k3 = make_self_signed(tmp_path / "three", cn="other.test")
    pems = {1: (Path(c1).read_text(), Path(k1).read_text()),
            2: (Path(c2).read_text(), Path(k2).read_text())}
    cert = admin(gw, "POST", "/certificates", json={"cert": pems[1][0], "key": pems[1][1],
                                                    "snis": [SNI]})
    wait_until(lambda: peer_cert_der(gw.ports["proxy_ssl"], SNI) == der(c1), 5,
               what="the certificate for " + SNI)

    load = Load(gw, "/load")
    admin_errors = []
    stats = {"route_swaps": 0, "sighup": 0, "aigwd_reload": 0, "cert_changes": 0,
             "entities": 0}
    last = {}
    log_offset = len(gw.error_log_text())

    def guarded(fn):
        def run():
            n = 0
            while not load.stop.is_set():
                n += 1
                try:
                    fn(n)
                except AssertionError as e:
                    admin_errors.append(str(e))
        return run

    def swap_route(n):
        # (b) the route under load: every worker swaps its runtime
        admin(gw, "PATCH", "/routes/" + route["id"],
              data={"strip_path": "true" if n % 2 else "false"})
        stats["route_swaps"] += 1
        load.stop.wait(0.02)

    def churn_entities(n):
        # (a) other services and routes come and go
        admin(gw, "POST", "/services",
              data={"name": "tmp%d" % n, "url": "http://127.0.0.1:%d/x" % up.port})
        admin(gw, "POST", "/services/tmp%d/routes" % n,
              data={"name": "tmp-route%d" % n, "paths[]": "/tmp%d" % n})
        if n > 1:
            admin(gw, "PATCH", "/services/tmp%d" % (n - 1),
                  data={"path": "/changed", "retries": "1"})
            admin(gw, "PATCH", "/routes/tmp-route%d" % (n - 1),
                  data={"paths[]": "/tmp%d-moved" % (n - 1)})
        if n > 2:
            admin(gw, "DELETE", "/routes/tmp-route%d" % (n - 2))
            admin(gw, "DELETE", "/services/tmp%d" % (n - 2))
        last["entities"] = n
        stats["entities"] += 1

    def reload_daemon(n):
        # (c) reloads, with a configuration file that really changed
        Path(gw.conf_path).write_text("log_level = %s\n" % ("info" if n % 2 else "notice"))
        if n % 4 == 0:
            aigwd_reload(gw)
            stats["aigwd_reload"] += 1
        else:
            gw.send_signal(signal.SIGHUP)
            stats["sighup"] += 1
        load.stop.wait(0.2)

    def churn_certs(n):
        # (d) the certificate for the TLS clients' SNI, and another one that comes and goes
        which = 2 if n % 2 else 1
        admin(gw, "PATCH", "/certificates/" + cert["id"],
              json={"cert": pems[which][0], "key": pems[which][1]})
        last["cert"] = which
        extra = admin(gw, "POST", "/certificates",
                      json={"cert": Path(c3).read_text(), "key": Path(k3).read_text(),
                            "snis": ["other%d.test" % n]})
        admin(gw, "DELETE", "/certificates/" + extra["id"])
        stats["cert_changes"] += 1
        load.stop.wait(0.2)

    load.start()
    workers = [threading.Thread(target=guarded(f), daemon=True)
               for f in (swap_route, churn_entities, reload_daemon, churn_certs)]
    for t in workers:
        t.start()
    try:
        time.sleep(LOAD_SECONDS)
    finally:
        load.finish()
        for t in workers:
            t.join(TIMEOUT + 25)
        assert not any(t.is_alive() for t in workers), "an admin thread hung"
    i = last["entities"]
    # the proxy catches up with the last change (aigw: within 100 ms of the commit)
    wait_until(lambda: get(gw.proxy_url + "/tmp%d/x" % i).status_code == 200, 5,
               what="the last route /tmp%d" % i)

    assert gw.alive(), gw.diagnostics()
    assert load.failures == [], load.failures
    assert not admin_errors, admin_errors[:5]
    total = load.ok["plain"] + load.ok["tls"]
    assert load.ok["plain"] >= 100 and load.ok["tls"] >= 10, (load.ok, stats)
    assert stats["route_swaps"] >= 10 and stats["sighup"] >= 2 and stats["aigwd_reload"] >= 1, \
        stats
    assert stats["cert_changes"] >= 4, stats
    # only the certificate entity's two versions were ever served for the SNI
    assert load.certs_seen <= {der(c1), der(c2)}, len(load.certs_seen)
    assert len(load.certs_seen) == 2, "the certificate change was never seen by a client"
    # and the last version wins
    want_cert = der(c2) if last["cert"] == 2 else der(c1)
    wait_until(lambda: peer_cert_der(gw.ports["proxy_ssl"], SNI) == want_cert, 5,
               what="the last certificate")
    # the configuration file's last state is live
    want = Path(gw.conf_path).read_text().split("=")[1].strip()
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: log_level(gw) == want, 5, what="log_level " + want)
    # the churned entities: the last two are still there, the rest are gone
    names = {s["name"] for s in admin(gw, "GET", "/services?size=1000")["data"]}
    tmp = {n for n in names if n.startswith("tmp")}
    assert tmp == {"tmp%d" % j for j in range(max(1, i - 1), i + 1)}, (tmp, i)
    assert get(gw.proxy_url + "/tmp%d/x" % i).status_code == 200
    assert get(gw.proxy_url + "/tmp%d-moved/x" % (i - 1)).status_code == 200
    assert get(gw.proxy_url + "/tmp%d" % (i - 2)).status_code == 404
    # nothing went wrong inside either: no error, let alone worse, in the error log (a torn
    # snapshot would show here too)
    lines = gw.error_log_text()[log_offset:].splitlines()
    bad = [ln for ln in lines if any(m in ln for m in ("[error]", "[crit]", "[alert]", "[emerg]"))]
    assert not bad, bad[:10]
    print("load: %s, %s" % (load.ok, stats), "total", total)


def read_events(resp, n, deadline):
    """Reads n SSE events from resp (http.client, chunked decoded); returns their tokens."""
    tokens, buf = [], b""
    while len(tokens) < n and time.monotonic() < deadline:
        d = resp.read1(65536)
        if not d:
            break
        buf += d
        while b"\n\n" in buf:
            ev, _, buf = buf.partition(b"\n\n")
            assert ev.startswith(b"data: "), ev
            tokens.append(json.loads(ev[len(b"data: "):])["token"])
    return tokens, buf


def test_streams_in_flight_across_reloads_complete(gw, up):
    route = route_to(gw, up, "stream", "/stream", strip_path="false")
    n_events = 12
    conn = httpclient.HTTPConnection("127.0.0.1", gw.ports["proxy"], timeout=TIMEOUT)
    slow = httpclient.HTTPConnection("127.0.0.1", gw.ports["proxy"], timeout=TIMEOUT)
    try:
        conn.request("GET", "/stream/sse/%d/150" % n_events)
        slow.request("POST", "/stream/sleep/1500/slow", body=b"payload")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/event-stream"
        deadline = time.monotonic() + 15
        tokens, rest = read_events(resp, 2, deadline)
        assert tokens == [0, 1], tokens
        # while the stream runs: the runtime is swapped, the daemon reloaded twice over
        for j in range(4):
            admin(gw, "PATCH", "/routes/" + route["id"],
                  data={"strip_path": "false", "regex_priority": str(j)})
            admin(gw, "POST", "/services", data={"name": "side%d" % j,
                                                 "url": "http://127.0.0.1:%d" % up.port})
            admin(gw, "DELETE", "/services/side%d" % j)
        Path(gw.conf_path).write_text("log_level = info\n")
        gw.send_signal(signal.SIGHUP)
        wait_until(lambda: log_level(gw) == "info", 5, what="the first reload")
        Path(gw.conf_path).write_text("log_level = notice\n")
        aigwd_reload(gw)
        wait_until(lambda: log_level(gw) == "notice", 5, what="the second reload")
        more, rest = read_events(resp, n_events - 2, deadline)
        tokens += more
        assert tokens == list(range(n_events)), tokens
        # the stream ends properly (last chunk), not cut
        assert resp.read() == b"" and rest == b""
        assert resp.isclosed()
        # the slow request sent before the reloads gets its answer, with its body
        sresp = slow.getresponse()
        assert sresp.status == 200
        b = json.loads(sresp.read())
        assert b["target"] == "/stream/sleep/1500/slow" and b["body"] == "payload"
        # and both connections are still good for another request
        conn.request("GET", "/stream/after")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["target"] == "/stream/after"
        slow.request("GET", "/stream/after2")
        r = slow.getresponse()
        assert r.status == 200 and json.loads(r.read())["target"] == "/stream/after2"
    finally:
        conn.close()
        slow.close()
    assert gw.alive(), gw.diagnostics()


def test_snapshot_is_one_point_in_time(gw, tmp_path):
    """The proxy's configuration is read from the store while admin writes commit: it must be
    the state after some commit, never half of one. POST /certificates with snis writes a
    certificate and its snis in one transaction; a snapshot that holds the sni but not its
    certificate was torn in two."""
    cert, key = make_self_signed(tmp_path / "torn", cn="torn.test")
    body = {"cert": Path(cert).read_text(), "key": Path(key).read_text()}
    offset = len(gw.error_log_text())
    stop = threading.Event()
    errors = []

    def writer(k):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                c = admin(gw, "POST", "/certificates",
                          json=dict(body, snis=["torn%d-%d.test" % (k, n)]))
                admin(gw, "DELETE", "/certificates/" + c["id"])
            except AssertionError as e:
                errors.append(str(e))
                return

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(6)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    torn = []
    try:
        while time.monotonic() - t0 < 15 and not torn and not errors:
            time.sleep(0.1)
            torn = [ln for ln in gw.error_log_text()[offset:].splitlines() if is_torn(ln)]
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT + 5)
    assert not errors, errors[:3]
    assert not torn, torn[:5]
