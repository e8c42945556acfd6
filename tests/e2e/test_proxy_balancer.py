"""Upstreams and targets: weighted round-robin, consistent hashing, passive and active health
checks, target names through DNS, and Kong's 503 when no target can be used."""
import collections
import time

import pytest
import requests

from aigwtest import free_port, get, wait_until
from upstreams import Upstream

NO_PEER = "failure to get a peer from the ring-balancer"


@pytest.fixture(scope="module")
def ups():
    u = [Upstream() for _ in range(3)]
    yield u
    for x in u:
        x.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def post(gw, path, **kw):
    r = requests.post(gw.admin_url + path, timeout=10, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def setup_upstream(gw, name, targets, path, **fields):
    data = {"name": name}
    data.update(fields)
    post(gw, "/upstreams", json=data)
    for t, w in targets:
        post(gw, "/upstreams/%s/targets" % name, json={"target": t, "weight": w})
    post(gw, "/services", json={"name": name + "-svc", "host": name, "retries": 0})
    post(gw, "/services/%s-svc/routes" % name, json={"paths": [path]})
    wait_until(lambda: get(gw.proxy_url + path).status_code != 404, 5, what="route " + path)


def served_by(ups, before):
    return [i for i, u in enumerate(ups) if len(u.requests) > before[i]]


def test_weighted_round_robin(gw, ups):
    setup_upstream(gw, "rr", [("127.0.0.1:%d" % ups[0].port, 300),
                              ("127.0.0.1:%d" % ups[1].port, 100)], "/rr")
    before = [len(u.requests) for u in ups]
    for _ in range(40):
        assert get(gw.proxy_url + "/rr").status_code == 200
    got = [len(u.requests) - before[i] for i, u in enumerate(ups)]
    assert got[0] == 30 and got[1] == 10 and got[2] == 0, got


def test_host_header_is_the_target_or_host_header(gw, ups):
    b = get(gw.proxy_url + "/rr").json()
    host = [v for k, v in b["headers"] if k == "Host"][0]
    assert host in ("127.0.0.1:%d" % ups[0].port, "127.0.0.1:%d" % ups[1].port)
    post(gw, "/upstreams", json={"name": "hh", "host_header": "api.internal"})
    post(gw, "/upstreams/hh/targets", json={"target": "127.0.0.1:%d" % ups[2].port})
    post(gw, "/services", json={"name": "hh-svc", "host": "hh"})
    post(gw, "/services/hh-svc/routes", json={"paths": ["/hh"]})
    wait_until(lambda: get(gw.proxy_url + "/hh").status_code == 200, 5, what="hh")
    b = get(gw.proxy_url + "/hh").json()
    assert [v for k, v in b["headers"] if k == "Host"] == ["api.internal:%d" % ups[2].port]


def test_consistent_hashing_on_header(gw, ups):
    setup_upstream(gw, "ch", [("127.0.0.1:%d" % p.port, 100) for p in ups], "/ch",
                   algorithm="consistent-hashing", hash_on="header", hash_on_header="X-User")
    owners = {}
    for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
        seen = set()
        for _ in range(5):
            before = [len(u.requests) for u in ups]
            assert get(gw.proxy_url + "/ch", headers={"X-User": user}).status_code == 200
            seen.update(served_by(ups, before))
        assert len(seen) == 1, (user, seen)   # one user, always the same target
        owners[user] = seen.pop()
    assert len(set(owners.values())) >= 2     # and users spread over targets


def test_target_name_resolved_by_dns(gw, ups):
    setup_upstream(gw, "named", [("localhost:%d" % ups[2].port, 100)], "/named")
    before = len(ups[2].requests)
    assert get(gw.proxy_url + "/named").status_code == 200
    assert len(ups[2].requests) == before + 1


def test_no_target_is_503(gw):
    post(gw, "/upstreams", json={"name": "empty"})
    post(gw, "/services", json={"name": "empty-svc", "host": "empty"})
    post(gw, "/services/empty-svc/routes", json={"paths": ["/empty"]})
    wait_until(lambda: get(gw.proxy_url + "/empty").status_code == 503, 5, what="503")
    assert get(gw.proxy_url + "/empty").json()["message"] == NO_PEER


def test_passive_health_checks_take_a_failing_target_out(gw, ups):
    dead = free_port()
    setup_upstream(gw, "pas", [("127.0.0.1:%d" % ups[0].port, 100), ("127.0.0.1:%d" % dead, 100)],
                   "/pas", healthchecks={"passive": {"unhealthy": {"tcp_failures": 1}}})
    codes = collections.Counter(get(gw.proxy_url + "/pas").status_code for _ in range(10))
    # at most one request met the dead target before it was marked unhealthy
    assert codes[502] <= 1 and codes[200] >= 9, codes
    health = requests.get(gw.admin_url + "/upstreams/pas/health", timeout=10)
    if health.status_code == 200:
        states = {d["target"]: d["health"] for d in health.json()["data"]}
        assert states["127.0.0.1:%d" % dead] == "UNHEALTHY"
        assert states["127.0.0.1:%d" % ups[0].port] == "HEALTHY"


def test_active_health_checks_revive_a_target(gw):
    up = Upstream()
    port = up.port
    try:
        setup_upstream(gw, "act", [("127.0.0.1:%d" % port, 100)], "/act", healthchecks={
            "active": {"http_path": "/status/200", "healthy": {"interval": 0.2, "successes": 1},
                       "unhealthy": {"interval": 0.2, "http_failures": 1, "tcp_failures": 1}}})
        assert get(gw.proxy_url + "/act").status_code == 200
        up.close()
        wait_until(lambda: get(gw.proxy_url + "/act").status_code == 503, 10,
                   what="dead target marked unhealthy")
        up2 = None
        deadline = time.time() + 10
        while up2 is None and time.time() < deadline:
            try:
                up2 = Upstream(port=port)
            except OSError:
                time.sleep(0.1)
        assert up2 is not None
        try:
            wait_until(lambda: get(gw.proxy_url + "/act").status_code == 200, 10,
                       what="target revived")
        finally:
            up2.close()
    finally:
        pass
