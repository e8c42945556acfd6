"""aigwctl loadtest (issue 8 item 7) against a real aigwd and an echo upstream.

The headline check: `loadtest --rpm 65 --expect 200=60,429=5` passes against a route limited to
60 per minute (rate-limiting, policy local) and fails with exit 4 against a 100/minute route.
Both runs start at the next whole minute (the default alignment) and run concurrently, so this
file takes one to two minutes. Reports are parsed from -o json. Every run has a subprocess
timeout; targets are 127.0.0.1 only (the non-loopback case is refused before any request)."""
import json
import os
import socket
import subprocess
import time

import pytest

from aigwtest import aigwctl_bin, clean_env, find_sanitizer_report, free_ports
from proxytest import admin, up  # noqa: F401 (up: a fixture)


@pytest.fixture(scope="module")
def gw(aigw_module, up):
    g = aigw_module()
    admin(g, "POST", "/services", json={"name": "ai-orchestrator", "url": f"http://127.0.0.1:{up.port}"})
    for name, minute in (("limit60", 60), ("limit100", 100)):
        admin(g, "POST", "/services/ai-orchestrator/routes", json={"name": name, "paths": [f"/{name}"]})
        # As the seed types it: form fields config.minute=60 config.policy=local.
        admin(g, "POST", f"/routes/{name}/plugins",
              data={"name": "rate-limiting", "config.minute": str(minute), "config.policy": "local"})
    admin(g, "POST", "/services/ai-orchestrator/routes", json={"name": "open", "paths": ["/open"]})
    return g


def env_for(gw):
    return clean_env({"AIGW_ADMIN_URL": gw.admin_url, "AIGW_PROXY_URL": gw.proxy_url, "NO_COLOR": "1",
                      "HOME": os.environ.get("HOME", "/tmp")})


def run(env, *args, timeout=60):
    r = subprocess.run([aigwctl_bin(), *args], env=env, capture_output=True, text=True, timeout=timeout)
    rep = find_sanitizer_report(r.stderr)
    assert rep is None, rep
    return r


def test_rpm65_limit_holds_at_60_and_not_at_100(gw):
    env = env_for(gw)
    procs = {}
    for name in ("limit60", "limit100"):
        procs[name] = subprocess.Popen(
            [aigwctl_bin(), "loadtest", "--rpm", "65", "--path", f"/{name}", "--expect", "200=60,429=5",
             "-o", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    try:
        for name, p in procs.items():
            # At most 60 s waiting for the minute + 59.1 s of sending + slack.
            so, se = p.communicate(timeout=150)
            out[name] = (p.returncode, so, se)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    rc, so, se = out["limit60"]
    assert find_sanitizer_report(se) is None, se
    assert "for the next minute window" in se or "waiting" not in se
    rep = json.loads(so)
    assert rc == 0, (so, se)
    assert rep["status"] == {"200": 60, "429": 5}
    assert rep["sent"] == 65 and rep["completed"] == 65
    assert rep["expect"]["met"] is True
    # 65 requests over 64 intervals of 60/65 s: 59.1 s of sending at 65/min.
    assert 63 <= rep["achieved_rpm"] <= 67, rep
    rc, so, se = out["limit100"]
    rep = json.loads(so)
    assert rc == 4, (so, se)
    assert rep["status"] == {"200": 65}
    assert rep["expect"]["met"] is False
    assert "expectation not met: 200: expected 60" in se
    assert "429: expected 5 (tolerance 0), got 0" in se


def test_quick_rps_report(gw):
    env = env_for(gw)
    t0 = time.monotonic()
    r = run(env, "loadtest", "--rps", "20", "--requests", "40", "--path", "/open", "-o", "json")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["status"] == {"200": 40}
    assert rep["requests"] == 40 and rep["sent"] == 40 and rep["completed"] == 40
    assert rep["errors"] == {}
    assert rep["target_rps"] == 20
    assert 18 <= rep["achieved_rps"] <= 22, rep
    lat = rep["latency_ms"]
    assert set(lat) >= {"p50", "p90", "p99", "max"}
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] < 5000
    assert sum(b["count"] for b in rep["histogram"]) == 40
    # 39 intervals of 50 ms (+ at most 1 s waiting for the next second).
    assert 1.9 <= rep["elapsed_s"] < 5 and took < 15
    # The human report on request.
    r = run(env, "loadtest", "--rps", "50", "--requests", "10", "--no-align", "--path", "/open",
            "-o", "table", "--expect", "200=10")
    assert r.returncode == 0, r.stderr
    assert "200" in r.stdout and "p99" in r.stdout and "expectations met" in r.stdout
    # --tolerance: 10 answered, 8 expected, tolerance 2 passes, tolerance 1 fails.
    r = run(env, "loadtest", "--rps", "50", "--requests", "10", "--no-align", "--path", "/open",
            "-o", "json", "--expect", "200=8", "--tolerance", "2")
    assert r.returncode == 0, r.stderr
    r = run(env, "loadtest", "--rps", "50", "--requests", "10", "--no-align", "--path", "/open",
            "-o", "json", "--expect", "200=8", "--tolerance", "1")
    assert r.returncode == 4 and "200: expected 8 (tolerance 1), got 10" in r.stderr


def test_headers_method_and_data_reach_target(gw, up):
    env = env_for(gw)
    up.reset()
    r = run(env, "loadtest", "--rps", "50", "--requests", "3", "--no-align", "--path", "/open/x",
            "-H", "X-Load: yes", "--method", "put", "--data", '{"a":1}', "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == {"200": 3}
    with up.lock:
        reqs = list(up.requests)
    assert len(reqs) == 3
    for q in reqs:
        h = {k.lower(): v for k, v in q["headers"]}
        assert q["method"] == "PUT" and h["x-load"] == "yes" and q["body"] == b'{"a":1}'


def test_latency_counts_from_schedule_under_concurrency_cap(up):
    # Straight at the echo upstream: each answer takes 300 ms, one at a time, while requests are
    # due every 50 ms: later requests wait, and the wait is in their latency.
    env = clean_env({"NO_COLOR": "1"})
    r = run(env, "loadtest", "--rps", "20", "--requests", "6", "--no-align", "--concurrency", "1",
            "--url", f"http://127.0.0.1:{up.port}/sleep/300", "-o", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["status"] == {"200": 6}
    assert rep["latency_ms"]["p50"] >= 300
    # The 6th was due at 250 ms and answered after ~1800 ms.
    assert rep["latency_ms"]["max"] >= 1300, rep
    assert rep["max_send_lag_ms"] >= 1000, rep


def test_refused_target_bounded_and_reported():
    (closed,) = free_ports(1)
    env = clean_env({"NO_COLOR": "1"})
    t0 = time.monotonic()
    r = run(env, "loadtest", "--rps", "20", "--requests", "10", "--no-align",
            "--url", f"http://127.0.0.1:{closed}/", "-o", "json", timeout=30)
    assert time.monotonic() - t0 < 15
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    assert rep["status"] == {"error": 10}
    assert any("Connection refused" in k or "connect" in k for k in rep["errors"]), rep
    assert rep["latency_ms"]["p50"] is None
    assert "no request to" in r.stderr and "was answered" in r.stderr
    r = run(env, "loadtest", "--rps", "20", "--requests", "4", "--no-align",
            "--url", f"http://127.0.0.1:{closed}/", "-o", "json", "--expect", "200=4")
    assert r.returncode == 4


def test_unanswered_target_never_hangs_past_timeout():
    # A listener that never accepts: connections sit in the backlog, nothing answers.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    port = s.getsockname()[1]
    try:
        env = clean_env({"NO_COLOR": "1"})
        t0 = time.monotonic()
        r = run(env, "--timeout", "1", "loadtest", "--rps", "10", "--requests", "5", "--no-align",
                "--concurrency", "2", "--url", f"http://127.0.0.1:{port}/", "-o", "json", timeout=30)
        took = time.monotonic() - t0
    finally:
        s.close()
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["status"] == {"error": 5}
    # Last due at 0.4 s + 1 s timeout + 1 s slack.
    assert took < 5, took


def test_refuses_non_loopback_and_bad_flags(gw):
    env = env_for(gw)
    for url in ("http://192.0.2.1/", "http://example.com/", "http://[2001:db8::1]/"):
        r = run(env, "loadtest", "--rps", "1", "--url", url)
        assert r.returncode == 2 and "not a loopback address" in r.stderr and r.stdout == ""
    for args in ([], ["--rpm", "1", "--rps", "1"], ["--rpm", "0"], ["--rps", "x"],
                 ["--rps", "1", "--expect", "200"], ["--rps", "1", "--expect", "abc=1"],
                 ["--rps", "1", "--duration", "1q"], ["--rps", "1", "-H", "novalue"],
                 ["--rps", "1", "--url", "ftp://127.0.0.1/"]):
        r = run(env, "loadtest", *args)
        assert r.returncode == 2, (args, r.stderr)
