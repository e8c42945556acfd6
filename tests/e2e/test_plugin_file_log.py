"""The file-log plugin at the proxy (Kong 3.9 kong/plugins/file-log): one JSON record per
request and line in `path`; `reopen`; rotation with SIGUSR1 (logrotate's rename + signal: new
lines go to the new file, none is lost); a path that cannot be opened is reported in the error
log and never costs a request; seed 001's form-encoded admin call; aigw's `custom_fields`;
credentials never reach the file. SQLite store."""
import json
import os
import re
import signal
import threading
import time
import uuid

import requests

from aigwtest import get, wait_until
from proxytest import admin, gw, uniq, up  # noqa: F401

SECRET_BEARER = "s3cr3t-bearer-" + uuid.uuid4().hex
SECRET_KEY = "s3cr3t-apikey-" + uuid.uuid4().hex


def lines(path, warmups=False):
    """The complete lines of the file (a line being written is left out), parsed; without the
    records of warm() requests unless warmups."""
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        return []
    out = []
    for ln in data.split(b"\n")[:-1]:
        rec = json.loads(ln)
        if warmups or "/warmup" not in rec["request"]["uri"]:
            out.append(rec)
    return out


def route_with_file_log(gw, up, config, form=False):
    name = uniq("fl")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    if form:
        r = requests.post(gw.admin_url + "/services/%s/plugins" % name,
                          data=[("name", "file-log")] + [("config." + k, v)
                                                         for k, v in config.items()],
                          timeout=20)
        assert r.status_code == 201, r.text
        plugin = r.json()
    else:
        plugin = admin(gw, "POST", "/services/%s/plugins" % name,
                       json={"name": "file-log", "config": config})
    return "/" + name, plugin


def warm(gw, path, logfile):
    """Sends requests until one is logged (the plugin reached the proxy). Returns 0: the
    warm-up records are left out of lines(), whenever they land."""
    def logged():
        r = get(gw.proxy_url + path + "/warmup")
        assert r.status_code == 200, r.text
        return any(rec["request"]["uri"].startswith(path + "/warmup") for rec in lines(logfile, True))
    wait_until(logged, 15, interval=0.1, what="file-log active on " + path)
    return 0


def wait_lines(logfile, n, timeout=10):
    return wait_until(lambda: len(lines(logfile)) >= n and lines(logfile), timeout,
                      what="%d lines in %s" % (n, logfile))


def test_one_json_line_per_request(gw, up, tmp_path):
    logfile = str(tmp_path / "access.log")
    path, plugin = route_with_file_log(gw, up, {"path": logfile,
                                                "custom_fields": {"env": "test", "n": 7}})
    assert plugin["config"]["reopen"] is False
    assert plugin["config"]["custom_fields"] == {"env": "test", "n": 7}
    base = warm(gw, path, logfile)
    r = get(gw.proxy_url + path + "/one?x=1", headers={"X-Trace": "abc"})
    assert r.status_code == 200
    r2 = requests.post(gw.proxy_url + path + "/two", data=b"hello", timeout=10)
    assert r2.status_code == 200
    recs = wait_lines(logfile, base + 2)[base:]
    assert len(recs) == 2
    one = next(x for x in recs if x["request"]["uri"].startswith(path + "/one"))
    two = next(x for x in recs if x["request"]["uri"].startswith(path + "/two"))
    assert one["request"]["method"] == "GET"
    assert one["request"]["uri"] == path + "/one?x=1"
    assert one["request"]["querystring"] == {"x": "1"}
    assert one["request"]["headers"]["x-trace"] == "abc"
    assert one["request"]["url"].endswith(path + "/one?x=1")
    assert one["response"]["status"] == 200
    assert one["upstream_status"] == "200"   # Kong: ngx.var.upstream_status, a string
    assert one["client_ip"] == "127.0.0.1"
    assert one["service"]["id"] == plugin["service"]["id"]
    assert isinstance(one["started_at"], int) and one["started_at"] > 1600000000000
    assert set(one["latencies"]) >= {"kong", "proxy", "request"}
    assert one["source"] == "upstream"
    assert one["env"] == "test" and one["n"] == 7
    assert two["request"]["method"] == "POST"
    assert two["response"]["status"] == 200
    # the file: 0644, each record exactly one line of compact JSON
    assert os.stat(logfile).st_mode & 0o777 == 0o644
    raw = open(logfile, "rb").read()
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == len(lines(logfile, True))


def test_exit_of_a_plugin_is_logged_with_source_kong(gw, up, tmp_path):
    logfile = str(tmp_path / "term.log")
    path, plugin = route_with_file_log(gw, up, {"path": logfile})
    base = warm(gw, path, logfile)
    admin(gw, "POST", "/services/%s/plugins" % plugin["service"]["id"],
          json={"name": "request-termination", "config": {"status_code": 418,
                                                           "message": "teapot"}})
    wait_until(lambda: get(gw.proxy_url + path + "/t").status_code == 418, 15,
               interval=0.1, what="request-termination active")
    recs = wait_lines(logfile, base + 1)
    last = recs[-1]
    assert last["response"]["status"] == 418
    assert last["source"] == "kong"


def test_secrets_never_reach_the_file(gw, up, tmp_path):
    logfile = str(tmp_path / "secrets.log")
    path, _ = route_with_file_log(gw, up, {"path": logfile})
    base = warm(gw, path, logfile)
    r = get(gw.proxy_url + path + "/s?apikey=" + SECRET_KEY + "&ok=1",
            headers={"Authorization": "Bearer " + SECRET_BEARER,
                     "Proxy-Authorization": "Basic " + SECRET_KEY,
                     "Cookie": "session=" + SECRET_BEARER})
    assert r.status_code == 200
    recs = wait_lines(logfile, base + 1)
    rec = recs[-1]
    assert rec["request"]["headers"]["authorization"] == "REDACTED"
    assert rec["request"]["querystring"]["ok"] == "1"
    raw = open(logfile, "rb").read()
    assert SECRET_BEARER.encode() not in raw
    assert SECRET_KEY.encode() not in raw


def test_seed_001_form_call(gw, up, tmp_path):
    # seed 001: --data "name=file-log" --data "config.path=/tmp/kong-access.log"
    logfile = str(tmp_path / "kong-access.log")
    path, plugin = route_with_file_log(gw, up, {"path": logfile}, form=True)
    assert plugin["config"]["path"] == logfile
    assert plugin["config"]["reopen"] is False
    base = warm(gw, path, logfile)
    assert get(gw.proxy_url + path + "/seed").status_code == 200
    recs = wait_lines(logfile, base + 1)
    assert recs[-1]["request"]["uri"] == path + "/seed"


def test_rotation_with_sigusr1_loses_nothing(gw, up, tmp_path):
    logfile = str(tmp_path / "rot.log")
    rotated = str(tmp_path / "rot.log.1")
    path, _ = route_with_file_log(gw, up, {"path": logfile})
    base = warm(gw, path, logfile)
    for i in range(20):
        assert get(gw.proxy_url + path + "/before/%d" % i).status_code == 200
    wait_lines(logfile, base + 20)
    os.rename(logfile, rotated)
    # lines written after the rename but before the signal still go to the renamed file
    for i in range(5):
        assert get(gw.proxy_url + path + "/between/%d" % i).status_code == 200
    # the log phase is asynchronous: let the queue write them before the signal
    wait_lines(rotated, base + 25)
    notices = gw.error_log_text().count("reopening log files")
    gw.send_signal(signal.SIGUSR1)
    wait_until(lambda: gw.error_log_text().count("reopening log files") > notices, 10,
               what="aigwd handled SIGUSR1")
    for i in range(20):
        assert get(gw.proxy_url + path + "/after/%d" % i).status_code == 200
    wait_until(lambda: len(lines(logfile)) >= 20, 10, what="20 lines in the new file")
    new = [x["request"]["uri"] for x in lines(logfile)]
    assert sorted(new) == sorted(path + "/after/%d" % i for i in range(20))
    want_old = [path + "/before/%d" % i for i in range(20)] + \
        [path + "/between/%d" % i for i in range(5)]
    wait_until(lambda: len(lines(rotated)) >= 25, 10, what="old file complete")
    old = [x["request"]["uri"] for x in lines(rotated)]
    assert sorted(old) == sorted(want_old)


def test_reopen_true_follows_a_renamed_path_without_signal(gw, up, tmp_path):
    logfile = str(tmp_path / "reopen.log")
    path, plugin = route_with_file_log(gw, up, {"path": logfile, "reopen": True})
    assert plugin["config"]["reopen"] is True
    warm(gw, path, logfile)
    os.rename(logfile, logfile + ".old")
    assert get(gw.proxy_url + path + "/r").status_code == 200
    recs = wait_lines(logfile, 1)
    assert [x["request"]["uri"] for x in recs] == [path + "/r"]
    assert lines(logfile + ".old") == []


def test_unopenable_path_logs_an_error_and_serves_requests(gw, up, tmp_path):
    missing_dir = tmp_path / ("missing-" + uuid.uuid4().hex[:6])
    logfile = str(missing_dir / "x.log")
    path, _ = route_with_file_log(gw, up, {"path": logfile})
    # the configuration load reports the path and the reason
    wait_until(lambda: 'cannot open "%s"' % logfile in gw.error_log_text(), 15,
               what="file-log open error in the error log")
    assert "No such file or directory" in gw.error_log_text()
    wait_until(lambda: get(gw.proxy_url + path + "/a").status_code == 200, 15,
               interval=0.1, what="route live")
    for i in range(10):
        r = get(gw.proxy_url + path + "/b/%d" % i)
        assert r.status_code == 200, r.text
    assert not os.path.exists(logfile)
    # once the directory exists, the next batches are written
    missing_dir.mkdir()
    wait_until(lambda: (get(gw.proxy_url + path + "/c").status_code == 200
                        and any(x["request"]["uri"] == path + "/c" for x in lines(logfile))),
               15, interval=0.2, what="lines after the directory appeared")


def test_admin_refuses_bad_filename(gw):
    name = uniq("flbad")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:9"})
    for bad in ("/tmp/a*b", "/tmp/a&b", "/tmp/a%b", "/tmp/a\\b", "/tmp/a`b"):
        r = requests.post(gw.admin_url + "/services/%s/plugins" % name,
                          json={"name": "file-log", "config": {"path": bad}}, timeout=20)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["fields"]["config"]["path"] == "not a valid filename"


def test_write_errors_are_logged_rate_limited_and_cost_no_request(gw, up):
    # /dev/full: open succeeds, every write fails with ENOSPC (a full disk)
    path, _ = route_with_file_log(gw, up, {"path": "/dev/full"})
    msg = 'file-log: cannot write to "/dev/full": No space left on device'

    def logged():
        assert get(gw.proxy_url + path + "/a").status_code == 200
        return msg in gw.error_log_text()
    wait_until(logged, 15, interval=0.1, what="write error in the error log")
    for i in range(30):
        assert get(gw.proxy_url + path + "/b/%d" % i).status_code == 200
    time.sleep(0.5)
    # at most one such line per 10 s, with the count of dropped entries
    assert gw.error_log_text().count(msg) == 1
    assert re.search(re.escape(msg) + r"; \d+ log entries dropped \(\d+ in all\)",
                     gw.error_log_text())


def test_concurrent_requests_give_whole_lines(gw, up, tmp_path):
    logfile = str(tmp_path / "many.log")
    path, _ = route_with_file_log(gw, up, {"path": logfile})
    warm(gw, path, logfile)

    def worker(t):
        s = requests.Session()
        for i in range(40):
            r = s.get(gw.proxy_url + path + "/c/%d/%d" % (t, i), timeout=10)
            assert r.status_code == 200

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    recs = wait_lines(logfile, 320, timeout=20)   # every line parses as JSON
    got = sorted(x["request"]["uri"] for x in recs)
    assert got == sorted(path + "/c/%d/%d" % (t, i) for t in range(8) for i in range(40))


def test_patching_the_path_moves_new_lines(gw, up, tmp_path):
    first, second = str(tmp_path / "first.log"), str(tmp_path / "second.log")
    path, plugin = route_with_file_log(gw, up, {"path": first})
    warm(gw, path, first)
    admin(gw, "PATCH", "/plugins/" + plugin["id"], json={"config": {"path": second}})
    warm(gw, path, second)
    n_first = len(lines(first, True))
    for i in range(5):
        assert get(gw.proxy_url + path + "/p/%d" % i).status_code == 200
    recs = wait_lines(second, 5)
    assert sorted(x["request"]["uri"] for x in recs) == sorted(path + "/p/%d" % i
                                                              for i in range(5))
    assert len(lines(first, True)) == n_first
