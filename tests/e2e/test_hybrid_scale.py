"""Hybrid mode at scale: one control plane feeds 50 data planes. One is a real aigwd data
plane (it proxies); 49 are connections from this test that speak the wire format of
aigwd/cluster/proto.h like a data plane: they apply each SNAPSHOT and DELTA, check the
result's sha256 against the one the frame carries, and report it in their PING as a data
plane does. What a user sees: every data plane is listed in /clustering/data-planes with
the control plane's configuration after each write, the admin API keeps answering while 50
pushes go out, and a change reaches all of them as a delta."""
import hashlib
import json
import socket
import ssl
import struct
import subprocess
import threading
import uuid
import zlib

import pytest
import requests

from aigwtest import LOCAL, aigwd_bin, clean_env, free_port, wait_until
from test_hybrid import (DELTA, HELLO, PING, PONG, SNAPSHOT, admin, cp_conf, dp_conf, dps_of,
                         frame, gen_cert, read_frame, signed_part, wait_proxied)
from upstreams import Upstream

FAKES = 49


class WireDP:
    """A data plane as the control plane sees it: HELLO, then frames applied in order."""

    def __init__(self, certs, port, version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(str(certs / "cluster.crt"), str(certs / "cluster.key"))
        self.node = str(uuid.uuid4())
        raw = socket.create_connection((LOCAL, port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="kong_clustering")
        hello = {"node_id": self.node, "hostname": f"wire-{self.node[:8]}",
                 "version": version, "config_hash": ""}
        self.s.sendall(frame(HELLO, json.dumps(hello).encode()))
        self.text = None
        self.hash = ""
        self.kinds = []          # the frame types that changed its configuration
        self.errors = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def apply(self, t, p):
        body = signed_part(p)
        want = body[16:48]
        if t == SNAPSHOT:
            assert body[:8] == b"AIGWSNP1"
            text = zlib.decompress(body[56:])
        else:
            assert body[:8] == b"AIGWDLT1"
            assert body[56:88] == hashlib.sha256(self.text).digest(), "delta for another base"
            pre, suf = struct.unpack(">QQ", body[88:104])
            text = self.text[:pre] + zlib.decompress(body[104:]) + self.text[len(self.text) - suf:]
        assert hashlib.sha256(text).digest() == want, "sha256 mismatch"
        with self.lock:
            if text != self.text:
                self.kinds.append(t)
            self.text = text
            self.hash = want.hex()

    def run(self):
        self.s.settimeout(0.5)
        while not self.stop:
            try:
                t, p = read_frame(self.s)
            except (socket.timeout, TimeoutError):
                continue
            except (EOFError, OSError, ssl.SSLError):
                return
            if t in (SNAPSHOT, DELTA):
                try:
                    self.apply(t, p)
                except AssertionError as e:
                    self.errors.append(str(e))
                    return
                self.s.sendall(frame(PING, self.hash.encode()))
            elif t != PONG:
                self.errors.append(f"unexpected frame {t}")
                return

    def close(self):
        self.stop = True
        self.t.join(5)
        self.s.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    assert gen_cert(d).returncode == 0
    return d


def test_one_control_plane_feeds_fifty_data_planes(aigw_module, certs):
    up = Upstream()
    cport = free_port()
    cp = aigw_module(conf=cp_conf(certs, cport))
    version = subprocess.run([aigwd_bin(), "version"], capture_output=True, text=True,
                             timeout=10, env=clean_env()).stdout.split()[-1]   # "aigw X.Y.Z"
    pport = free_port()
    aigw_module(conf=dp_conf(certs, cport, pport))
    fakes = []
    try:
        for _ in range(FAKES):
            fakes.append(WireDP(certs, cport, version))
        wait_until(lambda: len(dps_of(cp)["data"]) == FAKES + 1, 20,
                   what=f"{FAKES + 1} data planes connected")

        admin(cp, "POST", "/services", data={"name": "sc", "url": f"http://{LOCAL}:{up.port}"})
        for i in range(3):
            admin(cp, "POST", "/services/sc/routes", data={"name": f"sc{i}",
                                                           "paths[]": f"/sc{i}"})
            # the admin API answers while the pushes go out
            assert requests.get(cp.admin_url + "/routes", timeout=5).status_code == 200
            wait_proxied(pport, f"/sc{i}", timeout=15)   # 50 links on 2 cores, sanitizers

        def all_in_step():
            rows = dps_of(cp)["data"]
            hashes = {r["config_hash"] for r in rows}
            return len(rows) == FAKES + 1 and len(hashes) == 1 and \
                all(r["sync_status"] == "normal" for r in rows)
        wait_until(all_in_step, 20, what="every data plane reports the same configuration")
        for f in fakes:
            assert not f.errors, f.errors
            doc = json.loads(f.text)
            assert {r["name"] for r in doc["routes"]} >= {"sc0", "sc1", "sc2"}
            # the first configuration came whole, later changes as deltas
            assert f.kinds[0] == SNAPSHOT and DELTA in f.kinds[1:], f.kinds
        assert f"pushed to {FAKES + 1} data plane(s), {FAKES + 1} as a delta" in \
            cp.error_log_text()
    finally:
        for f in fakes:
            f.close()
        up.close()
