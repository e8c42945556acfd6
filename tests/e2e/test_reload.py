"""Reload rebinding listeners and re-reading certificates, the status listener, aigwctl, and
a database that cannot be reached."""
import os
import signal
import socket
import subprocess

from aigwtest import (port_refused, LOCAL, NO_ROUTE, free_ports, get, make_self_signed, peer_cert_der,
                      pem_certs_der, wait_until)




def test_reload_rebinds_changed_listeners(aigw):
    p1, p2, adm = free_ports(3)
    gw = aigw(conf=f"proxy_listen = {LOCAL}:{p1}\nadmin_listen = {LOCAL}:{adm}\n")
    assert get(f"http://{LOCAL}:{p1}/x").status_code == 404
    assert port_refused(p2)
    with open(gw.conf_path, "w") as f:
        f.write(f"proxy_listen = {LOCAL}:{p2}\nadmin_listen = {LOCAL}:{adm}\n")
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: not port_refused(p2), 5, what="the new proxy port to listen")
    r = get(f"http://{LOCAL}:{p2}/x")
    assert r.status_code == 404 and r.json()["message"] == NO_ROUTE
    wait_until(lambda: port_refused(p1), 5, what="the old proxy port to close")
    assert gw.alive()


def test_reload_rereads_certificates(aigw, tmp_path):
    cert, key = make_self_signed(tmp_path / "one", cn="one.test")
    p, ps, adm = free_ports(3)
    conf = (f"proxy_listen = {LOCAL}:{p}, {LOCAL}:{ps} ssl\nadmin_listen = {LOCAL}:{adm}\n"
            f"ssl_cert = {cert}\nssl_cert_key = {key}\n")
    gw = aigw(conf=conf)
    first = peer_cert_der(ps)
    assert first in pem_certs_der(cert)
    # Replace the files in place, as a certificate renewal does, then reload.
    cert2, key2 = make_self_signed(tmp_path / "two", cn="two.test")
    os.replace(cert2, cert)
    os.replace(key2, key)
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: peer_cert_der(ps) != first, 5, what="the renewed certificate")
    assert peer_cert_der(ps) in pem_certs_der(cert)


def test_status_listener(aigw):
    (sp,) = free_ports(1)
    gw = aigw(env={"AIGW_STATUS_LISTEN": f"{LOCAL}:{sp}"})
    r = get(f"http://{LOCAL}:{sp}/status")
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body["server"]["total_requests"], int)
    assert body["database"]["reachable"] is True
    # Only /status lives there: the admin API does not leak onto the status port.
    assert get(f"http://{LOCAL}:{sp}/").status_code == 404
    assert get(gw.admin_url + "/").status_code == 200


def test_status_units(aigw):
    gw = aigw()
    mem = get(gw.admin_url + "/status?unit=b").json()["memory"]
    assert isinstance(mem["rss"], int) and mem["rss"] > 0
    mem = get(gw.admin_url + "/status?unit=k&scale=1").json()["memory"]
    assert mem["rss"].endswith(" KiB") and "." in mem["rss"]
    assert get(gw.admin_url + "/status?unit=x").status_code == 400


def test_options_on_admin_paths(aigw):
    gw = aigw()
    import requests
    r = requests.options(gw.admin_url + "/status", timeout=5)
    assert r.status_code == 204
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"


def test_unreachable_postgres_refuses_start(aigw_run):
    (port,) = free_ports(1)
    r = aigw_run(["start", "-p", "{prefix}"], env={
        "AIGW_DATABASE": "postgres", "AIGW_PG_HOST": LOCAL, "AIGW_PG_PORT": str(port),
        "AIGW_PG_PASSWORD": "NotInTheLogs42"})
    assert r.rc == 1
    assert "PostgreSQL" in r.stderr and str(port) in r.stderr
    assert "NotInTheLogs42" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def _aigwctl():
    b = os.environ.get("AIGWCTL_BIN")
    if b:
        return b
    return os.path.join(os.path.dirname(os.environ.get("AIGWD_BIN", "build/aigwd")), "aigwctl")


def test_aigwctl_status_and_info(aigw):
    gw = aigw()
    env = dict(os.environ, AIGW_ADMIN_URL=gw.admin_url)
    r = subprocess.run([_aigwctl(), "status"], env=env, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    assert '"connections_accepted"' in r.stdout
    r = subprocess.run([_aigwctl(), "--admin-url", gw.admin_url, "info"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0 and '"node_id"' in r.stdout
    (closed,) = free_ports(1)
    r = subprocess.run([_aigwctl(), "--admin-url", f"http://{LOCAL}:{closed}", "status"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 3 and "cannot reach" in r.stderr
    r = subprocess.run([_aigwctl(), "bogus"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
