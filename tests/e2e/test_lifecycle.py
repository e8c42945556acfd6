"""Process lifecycle: pid file, health/stop/reload commands, daemon mode, graceful SIGTERM,
SIGHUP reload (good and bad config), SIGUSR1 log reopening, and what the access log holds."""
import os
import signal
import socket
import time
from pathlib import Path

from aigwtest import (port_refused, LOCAL, NO_ROUTE, RawConn, default_listen_env, get, pid_alive,
                      wait_until)


def test_pid_file(aigw):
    gw = aigw()
    pf = gw.pid_file()
    assert pf.is_file()
    assert int(pf.read_text().strip()) == gw.pid
    assert gw.stop() == 0
    assert not pf.exists(), "pid file left behind after a clean stop"


def test_health_and_stop_commands(aigw, aigw_run):
    gw = aigw()
    rc, out, err = aigw_run(["health", "-p", str(gw.prefix)], defaults=False)
    assert rc == 0, (out, err)
    rc, out, err = aigw_run(["stop", "-p", str(gw.prefix)], defaults=False)
    assert rc == 0, (out, err)
    assert gw.wait_exit(20) == 0, gw.diagnostics()
    assert not gw.pid_file().exists()
    rc, out, err = aigw_run(["health", "-p", str(gw.prefix)], defaults=False)
    assert rc == 1, (out, err)


def test_daemon_mode(aigw_run):
    env, ports = default_listen_env()
    res = aigw_run(["start", "--daemon", "-p", "{prefix}"], env=env)
    rc, out, err = res
    assert rc == 0, (out, err)
    prefix = res.prefix
    # returns once listening: no polling needed before the first request
    r = get(f"http://{LOCAL}:{ports['admin']}/status", timeout=5)
    assert r.status_code == 200
    assert get(f"http://{LOCAL}:{ports['proxy']}/x").status_code == 404
    pid = int((Path(prefix) / "pids" / "aigwd.pid").read_text().strip())
    assert pid_alive(pid)
    rc, out, err = aigw_run(["health", "-p", str(prefix)], defaults=False)
    assert rc == 0, (out, err)
    rc, out, err = aigw_run(["stop", "-p", str(prefix)], defaults=False)
    assert rc == 0, (out, err)
    wait_until(lambda: not pid_alive(pid), 20, what="the daemon to exit")
    assert not (Path(prefix) / "pids" / "aigwd.pid").exists()




def test_sigterm_finishes_inflight_request(aigw):
    gw = aigw()
    c = RawConn(gw.ports["proxy"], timeout=10)
    try:
        # a first request makes sure the server has accepted this connection
        assert c.request("GET", "/warmup").status == 404
        c.send(b"POST /inflight HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        time.sleep(0.1)
        gw.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        refused = False
        while time.monotonic() - t0 < 0.7:
            if port_refused(gw.ports["proxy"]):
                refused = True
                break
            time.sleep(0.05)
        c.send(b"67890")
        r = c.read_response()
        assert r.status == 404, r
        assert r.json()["message"] == NO_ROUTE
    finally:
        c.close()
    rc = gw.wait_exit(20)
    assert rc == 0, f"exit status {rc}\n{gw.diagnostics()}"
    assert refused, "new connections were still accepted 0.7 s after SIGTERM"


def _root_conf(gw):
    return get(gw.admin_url + "/").json()["configuration"]


def test_reload(aigw, aigw_run):
    gw = aigw(conf="log_level = notice\n")
    assert _root_conf(gw)["log_level"] == "notice"
    admin_ka = RawConn(gw.ports["admin"])
    proxy_ka = RawConn(gw.ports["proxy"])
    try:
        assert admin_ka.request("GET", "/status").status == 200
        assert proxy_ka.request("GET", "/before").status == 404
        Path(gw.conf_path).write_text("log_level = debug\n")
        rc, out, err = aigw_run(["reload", "-p", str(gw.prefix)], defaults=False)
        assert rc == 0, (out, err)
        wait_until(lambda: _root_conf(gw)["log_level"] == "debug", 5,
                   what="log_level to become debug after reload")
        assert admin_ka.request("GET", "/status").status == 200
        assert proxy_ka.request("GET", "/after").status == 404
    finally:
        admin_ka.close()
        proxy_ka.close()
    assert gw.alive()


def test_reload_bad_config_keeps_old(aigw):
    gw = aigw(conf="log_level = notice\n")
    Path(gw.conf_path).write_text("# broken\nlog_level = loud\n")
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: "loud" in gw.error_log_text() + gw.stderr_text(), 5,
               what="the reload error in the error log")
    assert "log_level" in gw.error_log_text() + gw.stderr_text()
    assert gw.alive()
    assert get(gw.admin_url + "/status").status_code == 200
    assert _root_conf(gw)["log_level"] == "notice"
    assert get(gw.proxy_url + "/still").status_code == 404


def test_sigusr1_reopens_logs(aigw):
    gw = aigw()
    logs = gw.prefix / "logs"
    assert get(gw.proxy_url + "/before-rotate").status_code == 404
    wait_until(lambda: "/before-rotate" in gw.access_log_text(), 5,
               what="the first request in access.log")
    os.rename(logs / "access.log", logs / "access.log.1")
    gw.send_signal(signal.SIGUSR1)
    sent = []

    def rotated():
        path = f"/after-rotate-{len(sent)}"
        sent.append(path)
        assert get(gw.proxy_url + path).status_code == 404
        text = gw.access_log_text()
        return any(p in text for p in sent)

    wait_until(rotated, 5, interval=0.2, what="a new access.log with the new request")
    assert "/before-rotate" in (logs / "access.log.1").read_text()
    assert gw.alive()


def test_access_log_masks_secrets(aigw):
    gw = aigw(env={"AIGW_LOG_LEVEL": "debug"})
    r = get(gw.proxy_url + "/anything?apikey=SECRETKEY123",
            headers={"Authorization": "Bearer abc.def.ghi"})
    assert r.status_code == 404

    def logged():
        return [ln for ln in gw.access_log_text().splitlines()
                if "/anything" in ln and "404" in ln]

    wait_until(logged, 5, what="the request in logs/access.log")
    time.sleep(0.2)  # let any other log writes land
    for p in sorted((gw.prefix / "logs").rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            assert b"SECRETKEY123" not in data, f"api key leaked into {p}"
            assert b"abc.def.ghi" not in data, f"bearer token leaked into {p}"
