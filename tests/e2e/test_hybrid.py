"""Hybrid mode: a control plane (SQLite here; PostgreSQL in test_hybrid_pg.py) pushes signed,
compressed configuration snapshots over mutual TLS 1.3 to data planes, which verify, cache
and serve them. What a user sees: a write on the CP's admin API is proxied by every DP within
a bounded time; DPs keep serving through a CP outage and restart from their cache; a DP with
another certificate, a DP of another major version and a tampered snapshot are refused with
a clear reason; /clustering/data-planes lists the DPs as Kong does.

Fake peers (a DP that claims another version, a CP that sends tampered snapshots) speak the
framing of aigwd/cluster/proto.h with Python's ssl module."""
import hashlib
import json
import os
import signal
import socket
import ssl
import stat
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from aigwtest import LOCAL, aigwd_bin, clean_env, free_port, get, wait_until
from upstreams import Upstream

HELLO, SNAPSHOT, PING, PONG, REFUSE, DELTA, RESYNC = 1, 2, 3, 4, 5, 6, 7
PROPAGATION_S = 5.0


# ---- helpers --------------------------------------------------------------------------------


def gen_cert(d, *args):
    d.mkdir(parents=True, exist_ok=True)
    return subprocess.run([aigwd_bin(), "hybrid", "gen_cert", *args], cwd=str(d),
                          env=clean_env(), capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def cp_conf(certs, cluster_port, extra=""):
    return (f"role = control_plane\nproxy_listen = off\n"
            f"cluster_listen = {LOCAL}:{cluster_port}\n"
            f"cluster_cert = {certs}/cluster.crt\ncluster_cert_key = {certs}/cluster.key\n"
            f"log_level = info\n{extra}")


def dp_conf(certs, cluster_port, proxy_port, extra=""):
    return (f"role = data_plane\ndatabase = off\nadmin_listen = off\n"
            f"proxy_listen = {LOCAL}:{proxy_port}\n"
            f"cluster_control_plane = {LOCAL}:{cluster_port}\n"
            f"cluster_cert = {certs}/cluster.crt\ncluster_cert_key = {certs}/cluster.key\n"
            f"cluster_ping_interval = 1\nlog_level = info\n{extra}")


def admin(node, method, path, **kw):
    r = requests.request(method, node.admin_url + path, timeout=10, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


def proxied(port, path):
    try:
        return get(f"http://{LOCAL}:{port}{path}", timeout=3).status_code
    except Exception:
        return None


def wait_proxied(port, path, status=200, timeout=PROPAGATION_S):
    wait_until(lambda: proxied(port, path) == status, timeout,
               what=f"{path} -> {status} on :{port}")


def frame(t, payload=b""):
    return struct.pack(">BI", t, len(payload)) + payload


def read_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            chunk = s.recv(n - len(b))
            if not chunk:
                raise EOFError("closed")
            b += chunk
        return b
    t, n = struct.unpack(">BI", exact(5))
    return t, exact(n)


def snapshot_payload(doc, version, key, tamper=None):
    raw = json.dumps(doc, separators=(",", ":")).encode()
    body = (b"AIGWSNP1" + struct.pack(">Q", version) + hashlib.sha256(raw).digest()
            + struct.pack(">Q", len(raw)) + zlib.compress(raw))
    sig = key.sign(body)
    p = bytearray(body + sig + struct.pack(">H", len(sig)))
    if tamper == "flip":
        p[70] ^= 0x01         # a byte of the zlib stream, after signing
    return bytes(p)


def compact(doc):
    return json.dumps(doc, separators=(",", ":")).encode()


def delta_payload(base_doc, doc, version, key, base_hash=None, tamper=None):
    """A DELTA payload (aigwd/cluster/proto.h) from base_doc to doc."""
    a, b = compact(base_doc), compact(doc)
    pre = 0
    while pre < min(len(a), len(b)) and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < min(len(a), len(b)) - pre and a[-1 - suf] == b[-1 - suf]:
        suf += 1
    body = (b"AIGWDLT1" + struct.pack(">Q", version) + hashlib.sha256(b).digest()
            + struct.pack(">Q", len(b)) + (base_hash or hashlib.sha256(a).digest())
            + struct.pack(">QQ", pre, suf) + zlib.compress(b[pre:len(b) - suf]))
    sig = key.sign(body)
    p = bytearray(body + sig + struct.pack(">H", len(sig)))
    if tamper == "flip":
        p[110] ^= 0x01
    return bytes(p)


def signed_part(p):
    return p[:len(p) - 2 - struct.unpack(">H", p[-2:])[0]]


def cached_json(prefix, journal=True):
    """The declarative JSON a DP restarted now would serve (aigwd/cluster/dp.c): the cache
    file (magic, generation, key, SNAPSHOT payload), then, with journal, the deltas of the
    journal beside it when it belongs to that cache file."""
    b = (Path(prefix) / "cluster_config.cache").read_bytes()
    assert b[:8] == b"AIGWDPC2"
    gen = b[8:24]
    kl = struct.unpack(">I", b[24:28])[0]
    p = b[28 + kl:]
    text = zlib.decompress(signed_part(p)[56:])
    jp = Path(prefix) / "cluster_config.cache.journal"
    if journal and jp.exists():
        j = jp.read_bytes()
        assert j[:8] == b"AIGWDPJ1"
        if j[8:24] == gen:
            off = 24
            while off + 4 <= len(j):
                n = struct.unpack(">I", j[off:off + 4])[0]
                d = j[off + 4:off + 4 + n]
                assert len(d) == n and d[:8] == b"AIGWDLT1"
                assert d[56:88] == hashlib.sha256(text).digest()
                pre, suf = struct.unpack(">QQ", d[88:104])
                text = text[:pre] + zlib.decompress(signed_part(d)[104:]) + text[len(text) - suf:]
                assert hashlib.sha256(text).digest() == d[16:48]
                off += 4 + n
    return json.loads(text)


def dps_of(cp):
    r = requests.get(cp.admin_url + "/clustering/data-planes", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    r = gen_cert(d)
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("other")
    assert gen_cert(d).returncode == 0
    return d


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def cluster(aigw_module, certs):
    cport = free_port()
    cp = aigw_module(conf=cp_conf(certs, cport))
    p1, p2 = free_port(), free_port()
    dp1 = aigw_module(conf=dp_conf(certs, cport, p1))
    dp2 = aigw_module(conf=dp_conf(certs, cport, p2))
    wait_until(lambda: len(dps_of(cp)["data"]) == 2, 10, what="two data planes connected")
    return {"cp": cp, "dps": [dp1, dp2], "ports": [p1, p2], "cport": cport}


# ---- gen_cert and settings ------------------------------------------------------------------


def test_gen_cert_makes_the_shared_pair(tmp_path):
    r = gen_cert(tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Successfully generated certificate/key pairs" in r.stdout
    crt, key = tmp_path / "cluster.crt", tmp_path / "cluster.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(crt.stat().st_mode) == 0o644
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-subject", "-dates",
                           "-text"], capture_output=True, text=True, check=True).stdout
    assert "CN = kong_clustering" in text and "ED25519" in text
    # never overwrites
    r = gen_cert(tmp_path)
    assert r.returncode == 1 and "already exists" in r.stderr
    # named files and days
    r = gen_cert(tmp_path, "a.crt", "a.key", "-d", "10")
    assert r.returncode == 0, r.stderr
    out = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "a.crt"), "-noout",
                          "-checkend", str(11 * 86400)], capture_output=True, text=True)
    assert out.returncode == 1          # expires within 11 days
    r = gen_cert(tmp_path, "only.crt")
    assert r.returncode == 2 and "both cert and key path" in r.stderr


def test_hybrid_roles_need_the_cluster_pair(aigw_run, tmp_path):
    f = tmp_path / "x.conf"
    f.write_text("role = control_plane\n")
    r = aigw_run(["check", str(f)])
    assert r.rc == 1 and "cluster certificate and key must be provided" in r.stderr, r
    f.write_text("role = data_plane\ndatabase = off\ncluster_cert = /x.crt\n"
                 "cluster_cert_key = /x.key\ncluster_mtls = pki\n")
    r = aigw_run(["check", str(f)])
    assert r.rc == 1 and "cluster_ca_cert must be specified" in r.stderr, r
    f.write_text("cluster_max_payload = 1000\n")
    r = aigw_run(["check", str(f)])
    assert r.rc == 1 and "cluster_max_payload must be 4194304" in r.stderr, r


# ---- propagation ----------------------------------------------------------------------------


def test_admin_write_reaches_both_data_planes(cluster, up):
    cp, ports = cluster["cp"], cluster["ports"]
    for p in ports:
        assert proxied(p, "/hy") == 404
    admin(cp, "POST", "/services", data={"name": "hy", "url": f"http://{LOCAL}:{up.port}"})
    t0 = time.monotonic()
    admin(cp, "POST", "/services/hy/routes", data={"name": "hy", "paths[]": "/hy"})
    for p in ports:
        wait_proxied(p, "/hy")
    took = time.monotonic() - t0
    print(f"propagation to 2 data planes: {took * 1000:.0f} ms")
    # an update and a delete travel too
    admin(cp, "PATCH", "/routes/hy", data={"paths[]": "/hy2"})
    for p in ports:
        wait_proxied(p, "/hy2")
        wait_proxied(p, "/hy", 404)


def test_changes_travel_as_deltas_and_are_checkpointed(cluster, up):
    """One write goes out as a DELTA (the bytes that changed); each DP journals it before it
    applies it, so its cache and journal always give what it serves; after a quiet second the
    CP sends the whole snapshot, which replaces both."""
    cp, dps, ports = cluster["cp"], cluster["dps"], cluster["ports"]
    admin(cp, "POST", "/services/hy/routes", data={"name": "dl1", "paths[]": "/dl1"})
    for p in ports:
        wait_proxied(p, "/dl1")
    for d in dps:
        assert any(r.get("name") == "dl1" for r in cached_json(d.prefix)["routes"])
        assert "configuration delta from the control plane" in d.error_log_text()
    assert "pushed to 2 data plane(s), 2 as a delta" in cp.error_log_text()
    for d in dps:
        journal = Path(d.prefix) / "cluster_config.cache.journal"
        wait_until(lambda: not journal.exists(), 10, what="the checkpoint replaced the journal")
        assert any(r.get("name") == "dl1"
                   for r in cached_json(d.prefix, journal=False)["routes"])
        assert "cached whole" in d.error_log_text()


def test_data_planes_endpoint(cluster):
    cp = cluster["cp"]
    status = requests.get(cp.admin_url + "/status", timeout=5).json()
    want = status["configuration_hash"]

    def synced():
        d = dps_of(cp)["data"]
        return len(d) == 2 and all(x["config_hash"] == want for x in d)
    wait_until(synced, 10, what="both data planes report the CP's hash")
    body = dps_of(cp)
    assert body["next"] is None
    for dp in body["data"]:
        assert dp["ip"] == LOCAL
        assert dp["sync_status"] == "normal"
        assert len(dp["config_hash"]) == 32
        assert dp["version"]
        assert dp["hostname"] == socket.gethostname()
        assert abs(dp["last_seen"] - time.time()) < 10
        assert 1209600 - 20 < dp["ttl"] <= 1209600
    ids = {x["id"] for x in body["data"]}
    r = requests.get(cp.admin_url + "/clustering/status", timeout=5)
    assert r.status_code == 200 and r.headers["Deprecation"] == "true"
    assert set(r.json()) == ids
    for v in r.json().values():
        assert set(v) == {"config_hash", "hostname", "ip", "last_seen"}


def test_data_planes_endpoint_elsewhere(aigw):
    gw = aigw()
    r = requests.get(gw.admin_url + "/clustering/data-planes", timeout=5)
    assert r.status_code == 400
    assert r.json() == {"message": "this endpoint is only available when Kong is configured to "
                                   "run as Control Plane for the cluster"}


def test_cluster_rate_limiting_policy_refused_on_the_control_plane(cluster):
    r = requests.post(cluster["cp"].admin_url + "/plugins", timeout=5,
                      json={"name": "rate-limiting", "config": {"minute": 5,
                                                                "policy": "cluster"}})
    assert r.status_code == 400, r.text
    assert r.json()["fields"] == {"config": {"policy": "expected one of: local, redis"}}
    r = requests.post(cluster["cp"].admin_url + "/plugins", timeout=5,
                      json={"name": "rate-limiting", "config": {"minute": 5, "policy": "local"},
                            "enabled": False})
    assert r.status_code == 201, r.text


# ---- refusals -------------------------------------------------------------------------------


def test_wrong_certificate_is_rejected(aigw_module, cluster, other_certs):
    cp = cluster["cp"]
    port = free_port()
    bad = aigw_module(conf=dp_conf(other_certs, cluster["cport"], port))
    wait_until(lambda: "is not accepted" in bad.error_log_text(), 10,
               what="the DP logs the refusal")
    wait_until(lambda: "bad certificate" in cp.error_log_text()
               or "not the same certificate" in cp.error_log_text(), 10,
               what="the CP logs the refusal")
    assert proxied(port, "/hy2") == 404
    assert len(dps_of(cp)["data"]) == 2
    bad.stop()


def test_incompatible_version_is_refused(cluster, certs):
    cp = cluster["cp"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(certs / "cluster.crt"), str(certs / "cluster.key"))
    node = "11111111-2222-4333-8444-555555555555"
    with socket.create_connection((LOCAL, cluster["cport"]), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="kong_clustering") as s:
            hello = {"node_id": node, "hostname": "old-dp", "version": "99.0.0",
                     "config_hash": ""}
            s.sendall(frame(HELLO, json.dumps(hello).encode()))
            t, payload = read_frame(s)
    assert t == REFUSE
    assert b"incompatible" in payload and b"major versions differ" in payload
    row = [d for d in dps_of(cp)["data"] if d["id"] == node]
    assert row and row[0]["sync_status"] == "kong_version_incompatible"
    assert "refused: data plane version 99.0.0 is incompatible" in cp.error_log_text()


# ---- outages --------------------------------------------------------------------------------


def test_control_plane_outage(aigw_module, cluster, up):
    cp, dps, ports = cluster["cp"], cluster["dps"], cluster["ports"]
    cp.stop(signal.SIGKILL)
    for p in ports:
        assert proxied(p, "/hy2") == 200
    time.sleep(2.5)                          # past 1.5 ping intervals: links are gone
    for p in ports:
        assert proxied(p, "/hy2") == 200
    assert "stays in use" in dps[0].error_log_text()

    # a DP restarted while the CP is down serves its cached configuration at once
    dps[0].stop()
    dp1 = aigw_module(conf=Path(dps[0].conf_path).read_text(), prefix=dps[0].prefix)
    assert proxied(ports[0], "/hy2") == 200
    assert "found a cached configuration" in dp1.error_log_text()

    # the CP comes back: both DPs reconnect and follow new writes
    cp2 = aigw_module(conf=Path(cp.conf_path).read_text(), prefix=cp.prefix)
    wait_until(lambda: len([d for d in dps_of(cp2)["data"]
                            if d["sync_status"] == "normal"]) == 2, 20,
               what="both data planes back")
    admin(cp2, "POST", "/services/hy/routes", data={"name": "back", "paths[]": "/back"})
    for p in ports:
        wait_proxied(p, "/back", timeout=10)
    cluster["cp"] = cp2
    cluster["dps"][0] = dp1


# ---- a fake control plane: tampered, foreign and broken snapshots ---------------------------


class FakeCP:
    def __init__(self, certs):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(str(certs / "cluster.crt"), str(certs / "cluster.key"))
        self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ctx.load_verify_locations(str(certs / "cluster.crt"))
        self.ls = socket.socket()
        self.ls.bind((LOCAL, 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.conn = None
        self.hashes = []
        self.resyncs = 0
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        raw, _ = self.ls.accept()
        s = self.ctx.wrap_socket(raw, server_side=True)
        t, _ = read_frame(s)
        assert t == HELLO
        with self.lock:
            self.conn = s
        s.settimeout(0.5)
        while not self.stop:
            try:
                t, payload = read_frame(s)
            except (socket.timeout, TimeoutError):
                continue
            except (EOFError, OSError, ssl.SSLError):
                return
            if t == PING:
                with self.lock:
                    self.hashes.append(payload.decode())
                    s.sendall(frame(PONG))
            elif t == RESYNC:
                with self.lock:
                    self.resyncs += 1

    def send(self, payload, t=SNAPSHOT):
        wait_until(lambda: self.conn is not None, 10, what="the DP connected")
        with self.lock:
            self.conn.sendall(frame(t, payload))

    def last_hash(self):
        with self.lock:
            return self.hashes[-1] if self.hashes else None

    def close(self):
        self.stop = True
        self.t.join(5)
        if self.conn:
            self.conn.close()
        self.ls.close()


def test_tampered_snapshots_are_rejected(aigw, cluster, certs, other_certs):
    doc = cached_json(cluster["dps"][1].prefix)
    assert any(r.get("name") == "back" for r in doc["routes"])
    key = load_pem_private_key((certs / "cluster.key").read_bytes(), None)
    other = load_pem_private_key((other_certs / "cluster.key").read_bytes(), None)
    fake = FakeCP(certs)
    try:
        port = free_port()
        dp = aigw(conf=dp_conf(certs, fake.port, port))
        fake.send(snapshot_payload(doc, 7, key))
        wait_proxied(port, "/back")
        good = hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()
        wait_until(lambda: fake.last_hash() == good, 5, what="the DP reports the new hash")

        changed = dict(doc, routes=[dict(r, paths=["/evil"]) for r in doc["routes"]])
        log = lambda: dp.error_log_text()  # noqa: E731
        fake.send(snapshot_payload(changed, 8, key, tamper="flip"))
        wait_until(lambda: log().count("bad signature") == 1, 5, what="tampered: rejected")
        fake.send(snapshot_payload(changed, 8, other))
        wait_until(lambda: log().count("bad signature") == 2, 5, what="foreign key: rejected")
        p = snapshot_payload(changed, 8, key)
        fake.send(p[:40])
        wait_until(lambda: "truncated snapshot" in log(), 5, what="truncated: rejected")
        broken = dict(doc, routes=[dict(r, service={"id": "00000000-0000-4000-8000-00000000dead"})
                                   for r in doc["routes"]])
        fake.send(snapshot_payload(broken, 9, key))
        wait_until(lambda: "not loaded" in log(), 5, what="unloadable: rejected")
        # through all of that the first configuration kept serving
        assert proxied(port, "/back") == 200
        assert proxied(port, "/evil") == 404
        assert fake.last_hash() == good
        # and the cache still holds it
        assert cached_json(dp.prefix) == doc
    finally:
        fake.close()


def test_deltas_apply_whole_or_not_at_all(aigw, certs, up):
    """A DELTA rebuilds the configuration from the one in use: one for another base or with a
    flipped byte is refused (the DP asks for the whole snapshot), a good one is journalled and
    survives a restart without the CP; a torn journal tail is cut off."""
    key = load_pem_private_key((certs / "cluster.key").read_bytes(), None)
    sid = "5e4d0000-0000-4000-8000-000000000001"
    svc = {"id": sid, "name": "f", "protocol": "http", "host": LOCAL, "port": up.port}

    def route(n):
        return {"id": f"5e4d0000-0000-4000-8000-00000000010{n}", "name": f"f{n}",
                "paths": [f"/f{n}"], "service": {"id": sid}}
    doc1 = {"_format_version": "3.0", "services": [svc], "routes": [route(1)]}
    doc2 = dict(doc1, routes=[route(1), route(2)])
    doc3 = dict(doc1, routes=[route(1), route(3)])
    fake = FakeCP(certs)
    port = free_port()
    try:
        dp = aigw(conf=dp_conf(certs, fake.port, port))
        fake.send(snapshot_payload(doc1, 1, key))
        wait_proxied(port, "/f1")
        fake.send(delta_payload(doc1, doc2, 2, key), DELTA)
        wait_proxied(port, "/f2")
        h2 = hashlib.sha256(compact(doc2)).hexdigest()
        wait_until(lambda: fake.last_hash() == h2, 5, what="the DP reports the delta's hash")
        assert cached_json(dp.prefix) == doc2
        assert cached_json(dp.prefix, journal=False) == doc1

        log = lambda: dp.error_log_text()  # noqa: E731
        fake.send(delta_payload(doc1, doc3, 3, key), DELTA)      # doc1 is not in use any more
        wait_until(lambda: fake.resyncs == 1, 5, what="another base: the DP asks for all")
        assert "the delta applies to configuration" in log()
        fake.send(delta_payload(doc2, doc3, 3, key, tamper="flip"), DELTA)
        wait_until(lambda: fake.resyncs == 2, 5, what="flipped: the DP asks for all")
        assert "bad signature: the delta" in log()
        assert proxied(port, "/f3") == 404
        assert proxied(port, "/f2") == 200
        assert fake.last_hash() == h2
    finally:
        fake.close()
    dp.stop()
    journal = Path(dp.prefix) / "cluster_config.cache.journal"
    with open(journal, "ab") as f:
        f.write(struct.pack(">I", 4096) + b"torn")               # a crash mid-append
    dp2 = aigw(conf=dp_conf(certs, free_port(), port), prefix=dp.prefix)
    assert proxied(port, "/f2") == 200                           # cache + journal, no CP
    assert "1 cached delta(s) applied" in dp2.error_log_text()
    assert "cut off" in dp2.error_log_text()
    assert cached_json(dp2.prefix) == doc2
