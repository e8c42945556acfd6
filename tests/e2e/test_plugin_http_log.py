"""The http-log plugin at the proxy (Kong 3.9 kong/plugins/http-log): every request's record is
sent as JSON to `http_endpoint` by a background queue; a collector that is down, slow,
unresolvable or answering >= 300 never costs a request, its batches are retried with backoff
and dropped after queue.max_retry_time with Kong's message; batches (max_batch_size > 1) are
JSON arrays; userinfo becomes Basic auth; custom headers; aigw's `custom_fields`; credentials
of the proxied request never reach the collector. Collectors are python http.server instances
on 127.0.0.1 started by the tests. SQLite store."""
import base64
import json
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from aigwtest import LOCAL, free_port, get, make_self_signed, wait_until
from proxytest import admin, gw, uniq, up  # noqa: F401

SECRET_BEARER = "s3cr3t-bearer-" + uuid.uuid4().hex
SECRET_KEY = "s3cr3t-apikey-" + uuid.uuid4().hex
SECRET_PASS = "pw-" + uuid.uuid4().hex[:12]


class Collector:
    """An HTTP log collector on a free 127.0.0.1 port. mode: "ok" (200), "status" (answers
    `status`), "hang" (waits `hang` seconds, then 200), "fail_first" (500 for the first
    `fail_first` requests, then 200). Records every request it got (also the failed ones)."""

    def __init__(self, mode="ok", status=500, hang=5.0, fail_first=0, tls=None):
        self.mode, self.status, self.hang, self.fail_first = mode, status, hang, fail_first
        self.lock = threading.Lock()
        self.got = []           # (method, path, headers dict lowercased, body bytes)
        self.peers = []         # the client port of each request
        self.stopping = threading.Event()
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with owner.lock:
                    owner.got.append((self.command, self.path,
                                      {k.lower(): v for k, v in self.headers.items()}, body))
                    owner.peers.append(self.client_address[1])
                    k = len(owner.got)
                code = 200
                if owner.mode == "status":
                    code = owner.status
                elif owner.mode == "hang":
                    owner.stopping.wait(owner.hang)
                elif owner.mode == "fail_first" and k <= owner.fail_first:
                    code = 500
                out = b'{"collector":"says no"}' if code >= 300 else b"ok"
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

            do_POST = do_PUT = do_PATCH = _any

        self.srv = ThreadingHTTPServer((LOCAL, 0), H)
        self.srv.daemon_threads = True
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
            self.scheme = "https"
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def url(self, path="/logs", userinfo=None):
        return "%s://%s%s:%d%s" % (self.scheme, userinfo + "@" if userinfo else "", LOCAL,
                                   self.port, path)

    def requests(self):
        with self.lock:
            return list(self.got)

    def records(self):
        """Every record received (a batch array is flattened), in order."""
        out = []
        for _, _, _, body in self.requests():
            v = json.loads(body)
            out.extend(v if isinstance(v, list) else [v])
        return out

    def close(self):
        self.stopping.set()
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)


@pytest.fixture
def collector():
    made = []

    def make(**kw):
        c = Collector(**kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def route_with_http_log(gw, up, config):
    """A service with http-log, then its route: once the route answers, the plugin is live."""
    name = uniq("hl")
    svc = admin(gw, "POST", "/services", json={"name": name,
                                               "url": "http://127.0.0.1:%d" % up.port})
    plugin = admin(gw, "POST", "/services/%s/plugins" % name,
                   json={"name": "http-log", "config": config})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    wait_until(lambda: get(gw.proxy_url + "/" + name + "/ready").status_code == 200, 15,
               interval=0.1, what="route " + name)
    return "/" + name, svc, route, plugin


def timed_get(url, **kw):
    t0 = time.monotonic()
    r = get(url, **kw)
    return r, time.monotonic() - t0


def fast_queue(**kw):
    q = {"max_retry_time": 1, "initial_retry_delay": 0.1, "max_retry_delay": 0.5}
    q.update(kw)
    return q


def test_records_reach_the_collector(gw, up, collector):
    c = collector()
    path, svc, route, plugin = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/logs"),
        "headers": {"X-Log-Token": "hdr-value", "X-Empty-Not": "x"},
        "custom_fields": {"env": "test", "n": 7, "tags": ["a", "b"]},
    })
    assert plugin["config"]["custom_fields"] == {"env": "test", "n": 7, "tags": ["a", "b"]}
    assert plugin["config"]["method"] == "POST"
    assert plugin["config"]["queue"]["max_batch_size"] == 1
    r = get(gw.proxy_url + path + "/one?x=1&apikey=" + SECRET_KEY,
            headers={"Authorization": "Bearer " + SECRET_BEARER, "X-Trace": "abc"})
    assert r.status_code == 200
    rec = wait_until(lambda: next((x for x in c.records()
                                   if x["request"]["uri"].startswith(path + "/one")), None),
                     10, what="the record at the collector")
    method, target, headers, body = next(q for q in c.requests() if b"/one" in q[3])
    assert method == "POST" and target == "/logs"
    assert headers["content-type"] == "application/json"
    assert headers["x-log-token"] == "hdr-value"
    assert headers["content-length"] == str(len(body))
    assert "authorization" not in headers
    assert isinstance(json.loads(body), dict)       # batch size 1: the object itself
    assert rec["request"]["method"] == "GET"
    assert rec["request"]["uri"].startswith(path + "/one?x=1&apikey=")
    assert rec["request"]["querystring"]["x"] == "1"
    assert rec["request"]["headers"]["x-trace"] == "abc"
    assert rec["request"]["headers"]["authorization"] == "REDACTED"
    assert rec["response"]["status"] == 200
    assert rec["route"]["id"] == route["id"]
    assert rec["service"]["name"] == svc["name"]
    assert rec["service"]["id"] == svc["id"]
    assert rec["client_ip"] == "127.0.0.1"
    assert set(rec["latencies"]) >= {"kong", "proxy", "request"}
    assert rec["source"] == "upstream"
    assert rec["env"] == "test" and rec["n"] == 7 and rec["tags"] == ["a", "b"]
    # the request's credentials never reach the collector
    for _, _, h, b in c.requests():
        blob = b + json.dumps(h).encode()
        assert SECRET_BEARER.encode() not in blob
        assert SECRET_KEY.encode() not in blob


def test_basic_auth_from_userinfo_method_and_content_type(gw, up, collector):
    c = collector()
    path, _, _, _ = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/in", userinfo="loguser:" + SECRET_PASS),
        "method": "PUT",
        "content_type": "application/json; charset=utf-8",
        "headers": {"X-Custom": "1"},
    })
    assert get(gw.proxy_url + path + "/auth").status_code == 200
    wait_until(lambda: any(b"/auth" in q[3] for q in c.requests()), 10,
               what="the record at the collector")
    method, target, headers, _ = next(q for q in c.requests() if b"/auth" in q[3])
    assert method == "PUT" and target == "/in"
    want = "Basic " + base64.b64encode(("loguser:" + SECRET_PASS).encode()).decode()
    assert headers["authorization"] == want
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-custom"] == "1"
    assert SECRET_PASS not in gw.error_log_text()


def test_batching_sends_one_json_array(gw, up, collector):
    c = collector()
    path, _, _, plugin = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/batch"),
        "queue": {"max_batch_size": 5, "max_coalescing_delay": 5},
    })
    assert plugin["config"]["queue"]["max_batch_size"] == 5
    # the readiness probe was request 1 of the batch; four more fill it
    t0 = time.monotonic()
    for i in range(4):
        assert get(gw.proxy_url + path + "/b/%d" % i).status_code == 200
    wait_until(lambda: c.requests(), 10, what="a batch at the collector")
    assert time.monotonic() - t0 < 4    # a full batch does not wait for the delay
    reqs = c.requests()
    assert len(reqs) == 1
    body = json.loads(reqs[0][3])
    assert isinstance(body, list) and len(body) == 5
    uris = sorted(x["request"]["uri"] for x in body)
    assert uris == sorted([path + "/ready"] + [path + "/b/%d" % i for i in range(4)])
    # a partial batch goes after max_coalescing_delay, still as an array
    assert get(gw.proxy_url + path + "/late").status_code == 200
    time.sleep(1)
    assert len(c.requests()) == 1
    wait_until(lambda: len(c.requests()) == 2, 10, what="the partial batch")
    body = json.loads(c.requests()[1][3])
    assert isinstance(body, list) and [x["request"]["uri"] for x in body] == [path + "/late"]


def lost_line(endpoint_label, n=1):
    return ("[http-log %s] queue: could not send entries due to max_retry_time exceeded. "
            "%d queue entries were lost" % (endpoint_label, n))


def assert_traffic_unaffected(gw, path, n=5):
    for i in range(n):
        r, dt = timed_get(gw.proxy_url + path + "/t/%d" % i)
        assert r.status_code == 200, r.text
        assert dt < 1.0, "request %d took %.2f s" % (i, dt)


def test_seed_000_unresolvable_collector(gw, up):
    # seed 000: config.http_endpoint=http://log-collector:8080/logs (a host that does not
    # resolve): the proxy answers normally, the entries are retried, then dropped
    path, _, _, _ = route_with_http_log(gw, up, {
        "http_endpoint": "http://log-collector:8080/logs",
        "timeout": 1000,
        "queue": fast_queue(),
    })
    assert_traffic_unaffected(gw, path)
    label = "http://log-collector:8080/logs"
    wait_until(lambda: gw.error_log_text().count(lost_line(label)) >= 6, 30,
               what="the entries dropped after max_retry_time")
    log = gw.error_log_text()
    assert re.search(r"\[http-log http://log-collector:8080/logs\] queue: handler could not "
                     r"process entries: failed request to log-collector:8080: ", log)


def test_refusing_collector(gw, up):
    port = free_port()      # nothing listens there
    path, _, _, _ = route_with_http_log(gw, up, {
        "http_endpoint": "http://127.0.0.1:%d/logs" % port,
        "queue": fast_queue(),
    })
    assert_traffic_unaffected(gw, path)
    label = "http://127.0.0.1:%d/logs" % port
    wait_until(lambda: gw.error_log_text().count(lost_line(label)) >= 6, 30,
               what="the entries dropped after max_retry_time")
    assert ("queue: handler could not process entries: failed request to 127.0.0.1:%d: "
            % port) in gw.error_log_text()


def test_hanging_collector_times_out(gw, up, collector):
    c = collector(mode="hang", hang=10)
    path, _, _, _ = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/slow"),
        "timeout": 300,
        "queue": fast_queue(),
    })
    assert_traffic_unaffected(gw, path, n=3)
    label = c.url("/slow")
    wait_until(lambda: lost_line(label) in gw.error_log_text(), 30,
               what="the entry dropped after max_retry_time")
    log = gw.error_log_text()
    assert re.search(r"\[http-log %s\] queue: handler could not process entries: failed "
                     r"request to 127\.0\.0\.1:%d: .*[Tt]imed? ?out" % (re.escape(label), c.port),
                     log)
    # each attempt was cut at the timeout: several attempts within max_retry_time
    assert len(c.requests()) >= 2


def test_collector_answering_500_is_retried_then_dropped(gw, up, collector):
    c = collector(mode="status", status=500)
    path, _, _, _ = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/err"),
        "queue": fast_queue(),
    })
    r, dt = timed_get(gw.proxy_url + path + "/x")
    assert r.status_code == 200 and dt < 1.0
    label = c.url("/err")
    wait_until(lambda: gw.error_log_text().count(lost_line(label)) >= 2, 30,
               what="the entries dropped after max_retry_time")
    log = gw.error_log_text()
    assert ("[http-log %s] queue: handler could not process entries: request to "
            "127.0.0.1:%d returned status code 500 and body {\"collector\":\"says no\"}"
            % (label, c.port)) in log
    # the same record was sent again and again (retries), not once
    xs = [q for q in c.requests() if (path + "/x").encode() in q[3]]
    assert len(xs) >= 3
    assert len({q[3] for q in xs}) == 1


def test_retry_succeeds_once_the_collector_recovers(gw, up, collector):
    c = collector(mode="fail_first", fail_first=2)
    path, _, _, _ = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/flaky"),
        "queue": {"max_retry_time": 30, "initial_retry_delay": 0.05},
    })
    # the readiness record: 500, 500, then 200
    wait_until(lambda: len(c.requests()) >= 3, 10, what="three attempts")
    got = c.requests()
    assert got[0][3] == got[1][3] == got[2][3]
    assert get(gw.proxy_url + path + "/after").status_code == 200
    wait_until(lambda: any(x["request"]["uri"] == path + "/after" for x in c.records()), 10,
               what="the next record")
    assert lost_line(c.url("/flaky")) not in gw.error_log_text()


def test_custom_fields_by_lua_is_ignored_with_a_warning(gw, up, collector):
    c = collector()
    path, _, _, plugin = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/lua"),
        "custom_fields_by_lua": {"x": "return 1"},
    })
    assert plugin["config"]["custom_fields_by_lua"] == {"x": "return 1"}
    wait_until(lambda: c.records(), 10, what="a record")
    assert "x" not in c.records()[0]
    assert ("[warn]" in gw.error_log_text() and
            "http-log %s: custom_fields_by_lua is ignored" % c.url("/lua")
            in gw.error_log_text())


def test_admin_refuses_authorization_header_with_userinfo(gw):
    name = uniq("hlbad")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:9"})
    r = requests.post(gw.admin_url + "/services/%s/plugins" % name,
                      json={"name": "http-log",
                            "config": {"http_endpoint": "http://u:p@127.0.0.1:9/x",
                                       "headers": {"Authorization": "Bearer x"}}}, timeout=20)
    assert r.status_code == 400
    assert r.json()["fields"]["config"] == ("specifying both an 'Authorization' header and "
                                            "user info in 'http_endpoint' is not allowed")


def test_https_collector_certificate_is_verified(gw, up, collector, tmp_path):
    cert, key = make_self_signed(tmp_path / "tls", cn="localhost")
    c = collector(tls=(cert, key))
    path, _, _, _ = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/tls"),
        "queue": fast_queue(),
    })
    assert_traffic_unaffected(gw, path, n=1)
    label = c.url("/tls")
    wait_until(lambda: lost_line(label) in gw.error_log_text(), 30,
               what="the entry dropped after max_retry_time")
    assert re.search(r"\[http-log %s\] queue: handler could not process entries: failed "
                     r"request to 127\.0\.0\.1:%d: .*(certificate|SSL)" % (re.escape(label), c.port),
                     gw.error_log_text())
    assert c.requests() == []      # nothing was delivered to an unverified peer


def test_config_change_takes_effect_and_unrelated_reloads_lose_nothing(gw, up, collector):
    c = collector()
    path, svc, _, plugin = route_with_http_log(gw, up, {
        "http_endpoint": c.url("/re"),
        "headers": {"X-Gen": "one"},
    })
    wait_until(lambda: c.requests(), 10, what="the first record")
    # a reload for something else: the queue (and its entries) carries over
    for i in range(10):
        assert get(gw.proxy_url + path + "/a/%d" % i).status_code == 200
        if i == 5:
            admin(gw, "POST", "/services", json={"name": uniq("other"),
                                                 "url": "http://127.0.0.1:9"})
    wait_until(lambda: {path + "/a/%d" % i for i in range(10)} <=
               {x["request"]["uri"] for x in c.records()}, 10, what="all ten records")
    admin(gw, "PATCH", "/plugins/%s" % plugin["id"],
          json={"config": {"headers": {"X-Gen": "two"}}})

    def second_gen():
        assert get(gw.proxy_url + path + "/b").status_code == 200
        return any(h.get("x-gen") == "two" for _, _, h, _ in c.requests())
    wait_until(second_gen, 15, interval=0.2, what="records sent with the new header")


def test_keepalive_reuses_the_connection(gw, up, collector):
    c = collector()
    path, _, _, _ = route_with_http_log(gw, up, {"http_endpoint": c.url("/ka")})
    for i in range(4):
        assert get(gw.proxy_url + path + "/k/%d" % i).status_code == 200
    wait_until(lambda: len(c.requests()) >= 5, 10, what="five records")
    with c.lock:
        peers = list(c.peers)
    assert len(set(peers)) == 1, peers     # one connection for all of them
