"""The rate-limiting plugin (Kong 3.9 kong/plugins/rate-limiting) as a user sees it: seed
000's "60 per minute, the 61st is 429", Kong's headers, hide_client_headers, custom
error_code/error_message, limit_by header/ip, exactness under concurrency with 2 workers
(local) and with two aigw nodes sharing one Redis (redis), Redis failures with
fault_tolerant true/false, a Redis that stops answering (timeout), recovery after a Redis
restart, AUTH and database selection."""
import concurrent.futures
import email.utils
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

from aigwtest import LOCAL, NO_ROUTE, Redis, free_port, get, set_pdeathsig, wait_until
from aigwtest import _RespReader
from upstreams import Upstream

ZERO = "00000000-0000-0000-0000-000000000000"
RL_HEADERS = ("X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute", "RateLimit-Limit",
              "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def admin(gw, method, path, **kw):
    r = requests.request(method, gw.admin_url + path, timeout=10, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


_n = [0]


def uniq(prefix):
    _n[0] += 1
    return "%s%d%s" % (prefix, _n[0], uuid.uuid4().hex[:6])


def routed(url):
    r = get(url, timeout=10)
    if r.status_code != 404:
        return True
    try:
        return r.json().get("message") != NO_ROUTE
    except ValueError:
        return True


def limited_service(gw, up, config=None, form=None, service_id=None):
    """A service with the plugin and one route, visible to the proxy, and not one request
    counted yet: the plugin and route are created first, then a probe route on another
    service; once the probe routes, the earlier entities are served too."""
    name = uniq("rl")
    data = {"name": name, "url": "http://%s:%d" % (LOCAL, up.port)}
    if service_id:
        data["id"] = service_id
    svc = admin(gw, "POST", "/services", json=data)
    if form is not None:
        admin(gw, "POST", "/services/%s/plugins" % name, data=form)
    else:
        admin(gw, "POST", "/services/%s/plugins" % name,
              json={"name": "rate-limiting", "config": config})
    path = "/" + name
    admin(gw, "POST", "/services/%s/routes" % name, json={"paths": [path]})
    probe = uniq("probe")
    admin(gw, "POST", "/services", json={"name": probe, "url": data["url"]})
    admin(gw, "POST", "/services/%s/routes" % probe, json={"paths": ["/" + probe]})
    wait_until(lambda: routed(gw.proxy_url + "/" + probe), 10, what="probe route")
    return gw.proxy_url + path, svc["id"]


def away_from_minute_edge(need=10.0):
    """Bursts must fit in one calendar minute: wait (< need s) for the next one if close."""
    left = 60 - (time.time() % 60)
    if left < need:
        time.sleep(left + 0.3)


def statuses(url, n, headers=None):
    return [get(url, headers=headers or {}).status_code for _ in range(n)]


def concurrent_statuses(urls, n):
    def one(i):
        return get(urls[i % len(urls)], timeout=30).status_code
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        return list(ex.map(one, range(n)))


# ------------------------------------------------------------------------------------------
# local policy


def test_seed000_local_60_per_minute(gw, up):
    # curl -X POST /services/ai-orchestrator/plugins --data name=rate-limiting
    #   --data config.minute=60 --data config.policy=local
    url, _ = limited_service(gw, up, form={"name": "rate-limiting", "config.minute": "60",
                                           "config.policy": "local"})
    away_from_minute_edge()
    codes = statuses(url + "/health", 65)
    assert codes == [200] * 60 + [429] * 5, codes


def test_headers_on_proxied_and_429(gw, up):
    url, _ = limited_service(gw, up, config={"minute": 3})
    away_from_minute_edge()
    for i in range(3):
        r = get(url + "/x")
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit-Minute"] == "3"
        assert r.headers["X-RateLimit-Remaining-Minute"] == str(2 - i)
        assert r.headers["RateLimit-Limit"] == "3"
        assert r.headers["RateLimit-Remaining"] == str(2 - i)
        sec = email.utils.parsedate_to_datetime(r.headers["Date"]).second
        assert abs(int(r.headers["RateLimit-Reset"]) - (60 - sec)) <= 1
        assert "Retry-After" not in r.headers
        assert r.json()["path"] if "path" in r.json() else True   # the upstream answered
    r = get(url + "/x")
    assert r.status_code == 429
    body = r.json()
    assert body["message"] == "API rate limit exceeded"
    assert "request_id" in body
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-RateLimit-Limit-Minute"] == "3"
    assert r.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["Retry-After"] == r.headers["RateLimit-Reset"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60


def test_several_periods_most_constrained(gw, up):
    url, _ = limited_service(gw, up, config={"minute": 5, "hour": 100, "day": 1000})
    away_from_minute_edge()
    r = get(url)
    assert r.status_code == 200
    h = r.headers
    assert (h["X-RateLimit-Limit-Minute"], h["X-RateLimit-Remaining-Minute"]) == ("5", "4")
    assert (h["X-RateLimit-Limit-Hour"], h["X-RateLimit-Remaining-Hour"]) == ("100", "99")
    assert (h["X-RateLimit-Limit-Day"], h["X-RateLimit-Remaining-Day"]) == ("1000", "999")
    assert "X-RateLimit-Limit-Second" not in h
    assert (h["RateLimit-Limit"], h["RateLimit-Remaining"]) == ("5", "4")
    codes = statuses(url, 5)
    assert codes == [200] * 4 + [429]
    # The refused request was not counted towards the hour (local counts admitted ones).
    r = get(url)
    assert r.status_code == 429
    assert r.headers["X-RateLimit-Remaining-Hour"] == "95"
    assert r.headers["X-RateLimit-Remaining-Minute"] == "0"


def test_hide_client_headers_and_custom_error(gw, up):
    url, _ = limited_service(gw, up, config={"minute": 2, "hide_client_headers": True,
                                             "error_code": 503,
                                             "error_message": "slow down"})
    away_from_minute_edge()
    for _ in range(2):
        r = get(url)
        assert r.status_code == 200
        assert not [k for k in r.headers if "ratelimit" in k.lower()], r.headers
    r = get(url)
    assert r.status_code == 503
    assert r.json()["message"] == "slow down"
    assert not [k for k in r.headers if "ratelimit" in k.lower()]
    assert "Retry-After" not in r.headers


def test_limit_by_header_falls_back_to_ip(gw, up):
    url, _ = limited_service(gw, up, config={"minute": 2, "limit_by": "header",
                                             "header_name": "X-Tenant"})
    away_from_minute_edge()
    assert statuses(url, 3, {"X-Tenant": "a"}) == [200, 200, 429]
    assert statuses(url, 3, {"X-Tenant": "b"}) == [200, 200, 429]
    # no header: the client IP is the identifier, a counter of its own
    assert statuses(url, 3) == [200, 200, 429]


def test_limit_by_path(gw, up):
    name_url, _ = limited_service(gw, up, config={"minute": 1, "limit_by": "path",
                                                  "path": "/will-not-match"})
    away_from_minute_edge()
    # Kong compares the request path with conf.path: no match -> the client IP
    assert statuses(name_url + "/a", 1) == [200]
    assert statuses(name_url + "/b", 1) == [429]


def test_limit_by_consumer_with_key_auth(gw, up):
    name = uniq("cons")
    svc = admin(gw, "POST", "/services", json={"name": name,
                                               "url": "http://%s:%d" % (LOCAL, up.port)})
    admin(gw, "POST", "/services/%s/plugins" % name, json={"name": "key-auth"})
    admin(gw, "POST", "/services/%s/plugins" % name,
          json={"name": "rate-limiting", "config": {"minute": 2}})
    keys = {}
    for who in ("alice", "bob"):
        c = admin(gw, "POST", "/consumers", json={"username": uniq(who)})
        keys[who] = admin(gw, "POST", "/consumers/%s/key-auth" % c["id"],
                          json={"key": uniq("key-" + who)})["key"]
    admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    probe = uniq("probe")
    admin(gw, "POST", "/services", json={"name": probe, "url": "http://%s:%d" % (LOCAL, up.port)})
    admin(gw, "POST", "/services/%s/routes" % probe, json={"paths": ["/" + probe]})
    wait_until(lambda: routed(gw.proxy_url + "/" + probe), 10, what="probe route")
    url = gw.proxy_url + "/" + name
    assert svc["id"]
    away_from_minute_edge()
    assert statuses(url, 3, {"apikey": keys["alice"]}) == [200, 200, 429]
    assert statuses(url, 3, {"apikey": keys["bob"]}) == [200, 200, 429]
    # key-auth (1250) runs first: no key is a 401, never counted
    assert statuses(url, 1) == [401]


def test_route_scoped_instance_key(gw, up, redis):
    name = uniq("rt")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://%s:%d" % (LOCAL, up.port)})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    admin(gw, "POST", "/routes/%s/plugins" % route["id"],
          json={"name": "rate-limiting",
                "config": {"hour": 10, "policy": "redis", "limit_by": "header",
                           "header_name": "X-Who",
                           "redis": {"host": LOCAL, "port": redis.port}}})
    probe = uniq("probe")
    admin(gw, "POST", "/services", json={"name": probe, "url": "http://%s:%d" % (LOCAL, up.port)})
    admin(gw, "POST", "/services/%s/routes" % probe, json={"paths": ["/" + probe]})
    wait_until(lambda: routed(gw.proxy_url + "/" + probe), 10, what="probe route")
    r = get(gw.proxy_url + "/" + name, headers={"X-Who": "tenant-7"})
    assert r.status_code == 200
    assert r.headers["X-RateLimit-Remaining-Hour"] == "9"
    keys = redis_keys(redis, "ratelimit:%s:*" % route["id"])
    assert len(keys) == 1, keys
    parts = keys[0].split(":")
    assert parts[2] == ZERO and parts[3] == "tenant-7" and parts[5] == "hour"
    assert int(parts[4]) % 3600000 == 0
    assert redis.cmd("GET", keys[0]) == "1"


def test_local_exact_under_concurrency(gw, up):
    url, _ = limited_service(gw, up, config={"minute": 60})
    away_from_minute_edge(15)
    codes = concurrent_statuses([url], 65)
    assert codes.count(200) == 60 and codes.count(429) == 5, sorted(codes)


def test_local_counters_survive_reload(gw, up):
    url, _ = limited_service(gw, up, config={"minute": 3})
    away_from_minute_edge()
    assert statuses(url, 2) == [200, 200]
    # an unrelated change rebuilds the runtime
    probe = uniq("reload")
    admin(gw, "POST", "/services", json={"name": probe, "url": "http://%s:%d" % (LOCAL, up.port)})
    admin(gw, "POST", "/services/%s/routes" % probe, json={"paths": ["/" + probe]})
    wait_until(lambda: routed(gw.proxy_url + "/" + probe), 10, what="reload")
    assert statuses(url, 2) == [200, 429]


# ------------------------------------------------------------------------------------------
# redis policy


def redis_keys(r, pattern):
    return r.cmd("KEYS", pattern) or []


def test_seed000_redis_flat_fields(gw, up, redis):
    url, sid = limited_service(gw, up, form={"name": "rate-limiting", "config.minute": "60",
                                             "config.policy": "redis",
                                             "config.redis_host": LOCAL,
                                             "config.redis_port": str(redis.port)})
    away_from_minute_edge()
    codes = statuses(url + "/health", 65)
    assert codes == [200] * 60 + [429] * 5, codes
    keys = redis_keys(redis, "ratelimit:*:%s:*" % sid)
    assert len(keys) == 1, keys
    k = keys[0]
    parts = k.split(":")
    assert parts[0] == "ratelimit" and parts[1] == ZERO and parts[2] == sid
    assert parts[3] == "127.0.0.1" and parts[-1] == "minute"
    assert int(parts[4]) % 60000 == 0
    # Kong's usage() INCRs every request, refused ones too
    assert redis.cmd("GET", k) == "65"
    assert 0 < redis.cmd("TTL", k) <= 60


def test_redis_headers(gw, up, redis):
    url, _ = limited_service(gw, up, config={"minute": 2, "policy": "redis",
                                             "redis": {"host": LOCAL, "port": redis.port}})
    away_from_minute_edge()
    r = get(url)
    assert r.status_code == 200
    assert r.headers["X-RateLimit-Remaining-Minute"] == "1"
    assert r.headers["RateLimit-Remaining"] == "1"
    get(url)
    r = get(url)
    assert r.status_code == 429
    assert r.json()["message"] == "API rate limit exceeded"
    assert r.headers["Retry-After"] == r.headers["RateLimit-Reset"]


def test_redis_host_name_resolved(gw, up, redis):
    url, _ = limited_service(gw, up, config={"minute": 2, "policy": "redis",
                                             "redis": {"host": "localhost",
                                                       "port": redis.port}})
    away_from_minute_edge()
    r = get(url)
    assert r.status_code == 200 and r.headers["RateLimit-Remaining"] == "1"
    assert statuses(url, 2) == [200, 429]


def test_redis_two_nodes_exact(aigw_module, gw, up, redis):
    gw2 = aigw_module()
    sid = str(uuid.uuid4())
    conf = {"minute": 60, "policy": "redis", "redis": {"host": LOCAL, "port": redis.port}}
    url1, _ = limited_service(gw, up, config=conf, service_id=sid)
    url2, _ = limited_service(gw2, up, config=conf, service_id=sid)
    # the same service id on both nodes: the same Redis counter (route paths differ)
    away_from_minute_edge(15)
    codes = concurrent_statuses([url1, url2], 65)
    assert codes.count(200) == 60 and codes.count(429) == 5, sorted(codes)
    assert get(url1).status_code == 429
    assert get(url2).status_code == 429


# ------------------------------------------------------------------------------------------
# a Redis of our own, to kill, stop and restart


class OwnRedis:
    def __init__(self, tmp, port=None, password=None):
        self.exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.dir = tmp
        self.port = port or free_port()
        self.password = password
        self.proc = None

    def start(self):
        argv = [self.exe, "--port", str(self.port), "--bind", LOCAL, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir)]
        if self.password:
            argv += ["--requirepass", self.password]
        self.log = open(os.path.join(str(self.dir), "redis.log"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=set_pdeathsig)
        wait_until(self.ping, 10, what="redis-server on %d" % self.port)

    def ping(self):
        try:
            return self.cmds(["PING"])[-1] == "PONG"
        except OSError:
            return False

    def cmds(self, *commands):
        out = []
        with socket.create_connection((LOCAL, self.port), timeout=5) as s:
            if self.password:
                commands = (["AUTH", self.password],) + commands
            for c in commands:
                s.sendall(Redis.encode(*c))
                out.append(_RespReader(s, time.monotonic() + 5).read())
        return out

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc:
            self.log.close()
        self.proc = None


@pytest.fixture
def own_redis(tmp_path):
    made = []

    def make(**kw):
        r = OwnRedis(tmp_path, **kw)
        made.append(r)
        r.start()
        return r
    yield make
    for r in made:
        r.kill()


def has_rl_headers(r):
    return any(h in r.headers for h in RL_HEADERS)


def test_redis_down_fault_tolerant_then_recovers(gw, up, own_redis):
    rd = own_redis()
    url, _ = limited_service(gw, up, config={"minute": 1000, "policy": "redis",
                                             "redis": {"host": LOCAL, "port": rd.port}})
    r = get(url)
    assert r.status_code == 200 and has_rl_headers(r)
    rd.kill()
    for _ in range(3):
        t0 = time.monotonic()
        r = get(url)
        assert r.status_code == 200, r.text
        assert not has_rl_headers(r), r.headers
        assert time.monotonic() - t0 < 3
    rd.start()   # same port
    wait_until(lambda: has_rl_headers(get(url)), 10, what="rate-limit headers again")
    assert "rate-limiting: failed to get usage" in gw.error_log_text()


def test_redis_down_not_fault_tolerant(gw, up, own_redis):
    rd = own_redis(password="s3cr3t-pass")
    url, _ = limited_service(gw, up, config={"minute": 1000, "policy": "redis",
                                             "fault_tolerant": False,
                                             "redis": {"host": LOCAL, "port": rd.port,
                                                       "password": "s3cr3t-pass",
                                                       "database": 3}})
    r = get(url)
    assert r.status_code == 200 and has_rl_headers(r)
    # AUTH and SELECT 3 were used: the counter lives in database 3
    keys = rd.cmds(["SELECT", "3"], ["KEYS", "ratelimit:*"])[-1]
    assert len(keys) == 1 and keys[0].endswith(":minute")
    assert rd.cmds(["KEYS", "ratelimit:*"])[-1] == []
    rd.kill()
    r = get(url)
    assert r.status_code == 500
    assert r.json()["message"] == "An unexpected error occurred"
    assert not has_rl_headers(r)
    rd.start()
    wait_until(lambda: get(url).status_code == 200, 10, what="recovery")
    assert "s3cr3t-pass" not in gw.error_log_text()


def test_redis_wrong_password(gw, up, own_redis):
    rd = own_redis(password="right")
    url, _ = limited_service(gw, up, config={"minute": 10, "policy": "redis",
                                             "fault_tolerant": False,
                                             "redis": {"host": LOCAL, "port": rd.port,
                                                       "password": "wrong-one"}})
    r = get(url)
    assert r.status_code == 500
    assert "wrong-one" not in gw.error_log_text()


def test_redis_stopped_times_out(gw, up, own_redis):
    rd = own_redis()
    url, _ = limited_service(gw, up, config={"minute": 1000, "policy": "redis",
                                             "redis": {"host": LOCAL, "port": rd.port,
                                                       "timeout": 300}})
    assert has_rl_headers(get(url))
    os.kill(rd.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            t0 = time.monotonic()
            r = get(url, timeout=10)
            took = time.monotonic() - t0
            assert r.status_code == 200
            assert not has_rl_headers(r)
            assert took < 2.0, took
    finally:
        os.kill(rd.proc.pid, signal.SIGCONT)
    wait_until(lambda: has_rl_headers(get(url)), 10, what="rate-limit headers again")
    assert "timeout waiting for Redis" in gw.error_log_text()


def test_client_gone_while_redis_reply_pending(gw, up, own_redis):
    """Clients that leave while their Redis call is pending: the late replies must not touch
    their requests (ASan would report it at teardown), and the gateway keeps serving."""
    rd = own_redis()
    url, _ = limited_service(gw, up, config={"minute": 1000, "policy": "redis",
                                             "redis": {"host": LOCAL, "port": rd.port,
                                                       "timeout": 5000}})
    assert has_rl_headers(get(url))
    os.kill(rd.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(4):
            with pytest.raises(requests.exceptions.ReadTimeout):
                get(url, timeout=0.3)
    finally:
        os.kill(rd.proc.pid, signal.SIGCONT)
    wait_until(lambda: has_rl_headers(get(url)), 10, what="rate-limit headers again")
    assert gw.alive()


def test_redis_ssl_refused_at_configure(gw, up, redis):
    """hiredis 0.14 has no TLS: the instance cannot be used, so the requests it applies to
    fail closed (500, never unlimited) with a clear error in the log; the rest of the
    configuration (here a new limited service) goes on loading and working."""
    name = uniq("ssl")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://%s:%d" % (LOCAL, up.port)})
    admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    p = admin(gw, "POST", "/services/%s/plugins" % name,
              json={"name": "rate-limiting",
                    "config": {"minute": 5, "policy": "redis",
                               "redis": {"host": LOCAL, "port": redis.port, "ssl": True}}})
    wait_until(lambda: "config.redis.ssl = true is not supported" in gw.error_log_text(), 10,
               what="the configure error")
    r = get(gw.proxy_url + "/" + name)
    assert r.status_code == 500
    assert r.json() == {"message": "An unexpected error occurred"}
    url, _ = limited_service(gw, up, config={"minute": 5})
    assert get(url).status_code == 200
    admin(gw, "DELETE", "/plugins/%s" % p["id"])
    wait_until(lambda: get(gw.proxy_url + "/" + name).status_code == 200, 10,
               what="the service without the plugin")


def test_cluster_policy_in_the_database(gw, up):
    url, _ = limited_service(gw, up, config={"minute": 2, "policy": "cluster"})
    away_from_minute_edge()
    codes = statuses(url, 3)
    assert codes == [200, 200, 429], codes
    r = get(url)
    assert r.status_code == 429
    assert r.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert "counts on this node only" not in gw.error_log_text()


def test_cluster_two_nodes_one_postgres_exact(aigw, postgres, up):
    """Two aigw nodes on one PostgreSQL share the cluster counters: exactly the limit."""
    g1 = aigw(env=postgres.env_for_aigw())
    g2 = aigw(env=postgres.env_for_aigw())
    url1, _ = limited_service(g1, up, config={"minute": 20, "policy": "cluster"})
    # the same route (and plugin) through the second node's proxy, once it has loaded them
    url2 = g2.proxy_url + url1[len(g1.proxy_url):]
    probe = uniq("probe")
    admin(g1, "POST", "/services", json={"name": probe, "url": "http://%s:%d" % (LOCAL, up.port)})
    admin(g1, "POST", "/services/%s/routes" % probe, json={"paths": ["/" + probe]})
    wait_until(lambda: routed(g2.proxy_url + "/" + probe), 15, what="node 2 has the routes")
    away_from_minute_edge(15)
    codes = concurrent_statuses([url1, url2], 25)
    assert codes.count(200) == 20 and codes.count(429) == 5, sorted(codes)
    assert get(url2).status_code == 429
    assert get(url1).status_code == 429



