"""Configuration sources and errors: conf file, KONG_/AIGW_ env precedence, listen values,
bad values, ports in use, `aigwd check`, certificates, version and help."""
import re
import socket

import pytest

from aigwtest import LOCAL, free_port, free_ports, get, wait_until


def _lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def test_unknown_key_warns_but_starts(aigw):
    gw = aigw(conf="log_level = notice\nfrobnicate_the_widgets = yes\n")
    assert get(gw.admin_url + "/status").status_code == 200
    wait_until(lambda: "frobnicate_the_widgets" in gw.stderr_text() + gw.error_log_text(),
               5, what="a warning naming the unknown key")


def test_invalid_value_in_file(aigw_run):
    conf = "# aigw test configuration\nlog_level = loud\n"
    res = aigw_run(["start", "-p", "{prefix}", "-c", "{conf}"], conf=conf, timeout=10)
    rc, out, err = res
    assert rc == 1, (rc, out, err)
    where = f"{res.conf_path}:2"
    hits = [ln for ln in _lines(err) if "log_level" in ln and "loud" in ln and where in ln]
    assert hits, f"no stderr line names log_level, loud and {where}:\n{err}"


def test_invalid_env_listen(aigw_run):
    rc, out, err = aigw_run(["start", "-p", "{prefix}"], env={"KONG_ADMIN_LISTEN": "garbage"},
                            timeout=10)
    assert rc == 1, (rc, out, err)
    assert any("KONG_ADMIN_LISTEN" in ln for ln in _lines(err)), err


def _log_level(gw):
    return get(gw.admin_url + "/").json()["configuration"]["log_level"]


def test_precedence_aigw_kong_file(aigw):
    conf = "log_level = warn\n"
    gw = aigw(conf=conf)
    assert _log_level(gw) == "warn"
    gw.stop()
    gw = aigw(conf=conf, env={"KONG_LOG_LEVEL": "info"})
    assert _log_level(gw) == "info"
    gw.stop()
    gw = aigw(conf=conf, env={"KONG_LOG_LEVEL": "info", "AIGW_LOG_LEVEL": "debug"})
    assert _log_level(gw) == "debug"


def test_kong_admin_listen_seed_style(aigw):
    a, b = free_ports(2)
    gw = aigw(env={"KONG_ADMIN_LISTEN": f"{LOCAL}:{a}, {LOCAL}:{b} ssl"})
    assert gw.ports["admin"] == a and gw.ports["admin_ssl"] == b
    r = get(f"http://{LOCAL}:{a}/status")
    assert r.status_code == 200
    r = get(f"https://{LOCAL}:{b}/status", verify=False)
    assert r.status_code == 200
    conf = get(f"http://{LOCAL}:{a}/").json()["configuration"]
    assert isinstance(conf["admin_listen"], list) and len(conf["admin_listen"]) == 2


def test_port_in_use(aigw_run):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind((LOCAL, 0))
        blocker.listen(8)
        port = blocker.getsockname()[1]
        listen = f"{LOCAL}:{port}"
        rc, out, err = aigw_run(["start", "-p", "{prefix}"],
                                env={"AIGW_ADMIN_LISTEN": listen}, timeout=10)
        assert rc == 1, (rc, out, err)
        hits = [ln for ln in _lines(err) if listen in ln and "in use" in ln.lower()]
        assert hits, f"no stderr line names {listen} and 'in use':\n{err}"
    finally:
        blocker.close()


GOOD_CONF = """# a valid configuration
log_level = info
proxy_listen = 127.0.0.1:18000, 127.0.0.1:18443 ssl
admin_listen = 127.0.0.1:18001
client_max_body_size = 2m
"""


def test_check_good(aigw_run):
    rc, out, err = aigw_run(["check", "{conf}"], conf=GOOD_CONF, defaults=False)
    assert rc == 0, (out, err)
    assert "valid" in (out + err).lower()


def test_check_bad(aigw_run):
    res = aigw_run(["check", "{conf}"], conf=GOOD_CONF + "log_level = loud\n", defaults=False)
    rc, out, err = res
    assert rc == 1, (out, err)
    assert "log_level" in out + err and "loud" in out + err


def test_unreadable_certificate(aigw_run, tmp_path):
    cert, key = str(tmp_path / "no-such-cert.pem"), str(tmp_path / "no-such-key.pem")
    rc, out, err = aigw_run(["start", "-p", "{prefix}"],
                            env={"AIGW_SSL_CERT": cert, "AIGW_SSL_CERT_KEY": key}, timeout=10)
    assert rc == 1, (rc, out, err)
    assert any(cert in ln or key in ln for ln in _lines(err)), err


def test_version(aigw_run):
    rc, out, err = aigw_run(["version"], defaults=False)
    assert rc == 0, err
    assert re.search(r"\d+\.\d+\.\d+", out), out


@pytest.mark.parametrize("args", [["--help"], ["start", "--help"]], ids=["top", "start"])
def test_help(aigw_run, args):
    rc, out, err = aigw_run(args, defaults=False)
    assert rc == 0, (out, err)
    assert "usage" in (out + err).lower()
