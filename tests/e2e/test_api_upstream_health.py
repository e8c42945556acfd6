"""Kong 3.9's upstream health endpoints (kong/api/routes/upstreams.lua):
GET /upstreams/{u}/health[?balancer_health=1], GET /upstreams/{u}/targets/all and
PUT /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy, against a live proxy with real
upstream servers, on both stores."""
import collections
import uuid

import pytest

from aigwtest import JSON_CT, free_port, get, wait_until
from apitest import gw, q, uniq  # noqa: F401
from upstreams import Upstream

NOT_FOUND = {"message": "Not found"}
PASSIVE = {"passive": {"unhealthy": {"tcp_failures": 1}}}


@pytest.fixture(scope="module")
def ups():
    u = [Upstream() for _ in range(2)]
    yield u
    for x in u:
        x.close()


@pytest.fixture(scope="module")
def node_id(gw):  # noqa: F811
    return gw.get("/").json()["node_id"]


def proxy(gw, path):  # noqa: F811
    return get(gw.inst.proxy_url + path)


def make_upstream(gw, targets, path=None, **fields):  # noqa: F811
    """An upstream with targets [(target, weight)], and when path is given a service and a
    route to it (retries 0, so every proxied request meets exactly one target)."""
    name = uniq("up")
    body = {"name": name}
    body.update(fields)
    up = gw.create("/upstreams", body)
    created = [gw.create("/upstreams/%s/targets" % name, {"target": t, "weight": w})
               for t, w in targets]
    # the proxy reports health once its balancer has the new targets (milliseconds; longer on
    # PostgreSQL on a busy machine)
    ids = {t["id"] for t in created}
    wait_until(lambda: {d["id"] for d in health(gw, name)["data"] if "health" in d} >= ids, 10,
               what="the upstream's targets on the proxy")
    if path:
        gw.create("/services", {"name": name + "-svc", "host": name, "retries": 0})
        gw.create("/services/%s-svc/routes" % name, {"paths": [path]})
        wait_until(lambda: proxy(gw, path).status_code != 404, 10, what="route " + path)
    return up, created


def health(gw, up, **params):  # noqa: F811
    r = gw.get("/upstreams/%s/health" % up, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == JSON_CT
    return r.json()


def states(gw, up):  # noqa: F811
    return {d["target"]: d["health"] for d in health(gw, up)["data"]}


def served(gw, ups, path, n=20):  # noqa: F811
    """How many of n proxied requests each upstream server answered."""
    before = [len(u.requests) for u in ups]
    codes = collections.Counter(proxy(gw, path).status_code for _ in range(n))
    assert codes == {200: n}, codes
    return [len(u.requests) - before[i] for i, u in enumerate(ups)]


# ---- GET /upstreams/{u}/health -------------------------------------------------------------


def test_health_without_health_checks(gw, ups, node_id):  # noqa: F811
    t0, t1 = "127.0.0.1:%d" % ups[0].port, "127.0.0.1:%d" % ups[1].port
    up, (a, b) = make_upstream(gw, [(t0, 100), (t1, 0)])
    for suffix in ("", "/"):
        r = gw.get("/upstreams/%s/health%s" % (up["name"], suffix))
        assert r.status_code == 200, r.text
        j = r.json()
        assert set(j) == {"data", "next", "node_id"}
        assert j["next"] is None and j["node_id"] == node_id
        # newest first, every target (weight 0 too), the entity plus health and data
        assert [d["id"] for d in j["data"]] == [b["id"], a["id"]]
        for d, t in zip(j["data"], (b, a)):
            assert d["health"] == "HEALTHCHECKS_OFF"
            for k in ("id", "target", "weight", "upstream", "created_at"):
                assert d[k] == t[k], k
            ip, port = d["target"].split(":")
            assert d["data"]["host"] == ip and d["data"]["port"] == int(port)
            assert d["data"]["nodeWeight"] == t["weight"]
            assert d["data"]["addresses"] == [{"ip": ip, "port": int(port), "weight": t["weight"],
                                               "health": "HEALTHCHECKS_OFF"}]
    # by id as well
    assert [d["id"] for d in health(gw, up["id"])["data"]] == [b["id"], a["id"]]


def test_balancer_health_without_health_checks(gw, ups, node_id):  # noqa: F811
    up, _ = make_upstream(gw, [("127.0.0.1:%d" % ups[0].port, 100)])
    j = health(gw, up["name"], balancer_health="1")
    assert set(j) == {"data", "next", "node_id"}
    assert j["next"] is None and j["node_id"] == node_id
    d = j["data"]
    assert d["health"] == "HEALTHCHECKS_OFF" and d["balancer_health"] == "HEALTHY"
    assert d["id"] == up["id"]
    assert d["details"]["healthy"] is True
    assert d["details"]["weight"] == {"total": 100, "unavailable": 0, "available": 100}
    [host] = d["details"]["hosts"]
    assert host["addresses"] == [{"ip": "127.0.0.1", "port": ups[0].port, "weight": 100,
                                  "healthy": True}]
    # only "1" asks for the balancer's view
    assert isinstance(health(gw, up["name"], balancer_health="true")["data"], list)


def test_health_of_an_upstream_without_targets(gw, node_id):  # noqa: F811
    up, _ = make_upstream(gw, [])
    r = gw.get("/upstreams/%s/health" % up["name"])
    assert r.status_code == 200
    assert r.json() == {"data": [], "next": None, "node_id": node_id}
    assert '"data":[]' in r.text
    j = health(gw, up["name"], balancer_health="1")
    assert j["data"]["balancer_health"] == "UNHEALTHY"
    assert j["data"]["details"]["hosts"] == {}   # Lua's empty table


def test_health_pages(gw, ups, node_id):  # noqa: F811
    up, created = make_upstream(gw, [("127.0.0.1:%d" % (20000 + i), 10) for i in range(3)])
    newest_first = [t["id"] for t in reversed(created)]
    j = health(gw, up["name"], size="2")
    assert [d["id"] for d in j["data"]] == newest_first[:2]
    assert j["offset"] == "2"
    assert j["next"] == "/upstreams/%s/health?offset=2" % up["name"]
    j = health(gw, up["name"], offset="2")
    assert [d["id"] for d in j["data"]] == newest_first[2:]
    assert j["next"] is None and "offset" not in j
    r = gw.get("/upstreams/%s/health?size=many" % up["name"])
    assert r.status_code == 400
    assert r.json() == {"code": 9, "name": "invalid size", "message": "size must be a number"}


def test_health_404(gw):  # noqa: F811
    for key in ("no-such-upstream", str(uuid.uuid4())):
        for path in ("/upstreams/%s/health", "/upstreams/%s/health?balancer_health=1",
                     "/upstreams/%s/targets/all"):
            r = gw.get(path % key)
            assert r.status_code == 404, path
            assert r.json() == NOT_FOUND


def test_health_right_after_a_write(gw, ups):  # noqa: F811
    """The runtime follows the store a few milliseconds behind: the admin API waits for it,
    so a client reads its own writes."""
    up, _ = make_upstream(gw, [("127.0.0.1:%d" % ups[0].port, 100)], healthchecks=PASSIVE)
    assert states(gw, up["name"]) == {"127.0.0.1:%d" % ups[0].port: "HEALTHY"}
    t = gw.create("/upstreams/%s/targets" % up["name"],
                  {"target": "127.0.0.1:%d" % ups[1].port})
    d = health(gw, up["name"])["data"][0]
    assert d["id"] == t["id"] and d["health"] == "HEALTHY"


# ---- passive checks and manual health ------------------------------------------------------


def test_passive_checks_mark_a_dead_target_unhealthy(gw, ups):  # noqa: F811
    dead = free_port()
    live_t, dead_t = "127.0.0.1:%d" % ups[0].port, "127.0.0.1:%d" % dead
    up, _ = make_upstream(gw, [(live_t, 100), (dead_t, 100)], "/uh-passive", healthchecks=PASSIVE)
    assert states(gw, up["name"]) == {live_t: "HEALTHY", dead_t: "HEALTHY"}
    codes = collections.Counter(proxy(gw, "/uh-passive").status_code for _ in range(10))
    assert codes[502] == 1 and codes[200] == 9, codes
    j = health(gw, up["name"])
    by = {d["target"]: d for d in j["data"]}
    assert by[dead_t]["health"] == "UNHEALTHY" and by[live_t]["health"] == "HEALTHY"
    assert by[dead_t]["data"]["addresses"][0]["health"] == "UNHEALTHY"
    assert by[dead_t]["data"]["weight"] == {"total": 100, "unavailable": 100, "available": 0}
    b = health(gw, up["name"], balancer_health="1")["data"]
    assert b["health"] == "HEALTHY" and b["balancer_health"] == "HEALTHY"
    assert b["details"]["weight"] == {"total": 200, "unavailable": 100, "available": 100}
    hosts = {h["port"]: h["addresses"][0]["healthy"] for h in b["details"]["hosts"]}
    assert hosts == {ups[0].port: True, dead: False}
    # back by hand
    r = gw.put("/upstreams/%s/targets/%s/healthy" % (up["name"], dead_t))
    assert r.status_code == 204 and r.content == b""
    assert states(gw, up["name"]) == {live_t: "HEALTHY", dead_t: "HEALTHY"}


def test_put_unhealthy_and_healthy(gw, ups):  # noqa: F811
    t0, t1 = "127.0.0.1:%d" % ups[0].port, "127.0.0.1:%d" % ups[1].port
    up, (a, b) = make_upstream(gw, [(t0, 100), (t1, 100)], "/uh-manual", healthchecks=PASSIVE)
    assert min(served(gw, ups, "/uh-manual")) > 0

    r = gw.put("/upstreams/%s/targets/%s/unhealthy" % (up["name"], t1))
    assert r.status_code == 204 and r.content == b""
    assert states(gw, up["name"]) == {t0: "HEALTHY", t1: "UNHEALTHY"}
    assert served(gw, ups, "/uh-manual") == [20, 0]

    # by upstream id and target id
    r = gw.put("/upstreams/%s/targets/%s/healthy" % (up["id"], b["id"]))
    assert r.status_code == 204
    assert states(gw, up["name"]) == {t0: "HEALTHY", t1: "HEALTHY"}
    assert min(served(gw, ups, "/uh-manual")) > 0

    # with an address: ip:port, or ip (port 8000, not this target's: nothing changes)
    r = gw.put("/upstreams/%s/targets/%s/%s/unhealthy" % (up["name"], t0, t0))
    assert r.status_code == 204
    assert states(gw, up["name"]) == {t0: "UNHEALTHY", t1: "HEALTHY"}
    assert served(gw, ups, "/uh-manual") == [0, 20]
    r = gw.put("/upstreams/%s/targets/%s/127.0.0.1/healthy" % (up["name"], t0))
    assert r.status_code == 204
    assert states(gw, up["name"])[t0] == "UNHEALTHY"
    r = gw.put("/upstreams/%s/targets/%s/%s/healthy" % (up["name"], t0, t0))
    assert r.status_code == 204
    assert states(gw, up["name"])[t0] == "HEALTHY"

    # every target unhealthy: Kong's 503
    for t in (t0, t1):
        assert gw.put("/upstreams/%s/targets/%s/unhealthy" % (up["name"], t)).status_code == 204
    r = proxy(gw, "/uh-manual")
    assert r.status_code == 503
    assert r.json()["message"] == "failure to get a peer from the ring-balancer"
    b = health(gw, up["name"], balancer_health="1")["data"]
    assert b["health"] == "UNHEALTHY" and b["balancer_health"] == "UNHEALTHY"
    for t in (t0, t1):
        assert gw.put("/upstreams/%s/targets/%s/healthy" % (up["name"], t)).status_code == 204
    assert min(served(gw, ups, "/uh-manual")) > 0


def test_put_health_by_host_name(gw, ups):  # noqa: F811
    t = "localhost:%d" % ups[0].port
    up, _ = make_upstream(gw, [(t, 100)], "/uh-named", healthchecks=PASSIVE)
    assert proxy(gw, "/uh-named").status_code == 200
    assert gw.put("/upstreams/%s/targets/%s/unhealthy" % (up["name"], t)).status_code == 204
    assert states(gw, up["name"]) == {t: "UNHEALTHY"}
    assert proxy(gw, "/uh-named").status_code == 503
    assert gw.put("/upstreams/%s/targets/%s/healthy" % (up["name"], t)).status_code == 204
    assert states(gw, up["name"]) == {t: "HEALTHY"}
    assert proxy(gw, "/uh-named").status_code == 200


def test_put_health_without_health_checks_is_400(gw, ups):  # noqa: F811
    t = "127.0.0.1:%d" % ups[0].port
    up, _ = make_upstream(gw, [(t, 100)])
    for path in ("/upstreams/%s/targets/%s/unhealthy", "/upstreams/%s/targets/%s/healthy",
                 "/upstreams/%s/targets/%s/127.0.0.1/healthy"):
        r = gw.put(path % (up["name"], t))
        assert r.status_code == 400
        assert r.json() == {"message": "no healthchecker found for %s" % up["name"]}
    assert states(gw, up["name"]) == {t: "HEALTHCHECKS_OFF"}


def test_put_health_404s(gw, ups):  # noqa: F811
    """kong/spec 08-targets_routes_spec: every combination of valid and invalid upstream and
    target."""
    t = "127.0.0.1:%d" % ups[0].port
    up, (target,) = make_upstream(gw, [(t, 10)], healthchecks=PASSIVE)
    _, (other,) = make_upstream(gw, [(t, 10)], healthchecks=PASSIVE)
    for i, u in enumerate((str(uuid.uuid4()), "invalid", up["name"], up["id"])):
        for j, tg in enumerate((str(uuid.uuid4()), "invalid:1234", other["id"], t,
                                target["id"])):
            for e in ("healthy", "unhealthy"):
                path = "/upstreams/%s/targets/%s/%s" % (u, tg, e)
                r = gw.put(path)
                expected = 204 if i >= 2 and j >= 3 else 404
                assert r.status_code == expected, path
                if expected == 404:
                    assert r.json() == NOT_FOUND, path
    # the target string as stored: no port is not the same target
    r = gw.put("/upstreams/%s/targets/127.0.0.1/healthy" % up["name"])
    assert r.status_code == 404


def test_put_health_methods(gw, ups):  # noqa: F811
    t = "127.0.0.1:%d" % ups[0].port
    up, _ = make_upstream(gw, [(t, 10)], healthchecks=PASSIVE)
    for path in ("/upstreams/%s/targets/%s/healthy", "/upstreams/%s/targets/%s/127.0.0.1/unhealthy"):
        p = path % (up["name"], t)
        for m in ("POST", "GET", "DELETE", "PATCH"):
            r = gw.request(m, p)
            assert r.status_code == 405, (m, p)
            assert r.json() == {"message": "Method not allowed"}
        r = gw.options(p)
        assert r.status_code == 204 and r.headers["Allow"] == "OPTIONS, PUT"
    for path in ("/upstreams/%s/health", "/upstreams/%s/targets/all"):
        p = path % up["name"]
        r = gw.options(p)
        assert r.status_code == 204 and r.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert gw.post(p).status_code == 405
        assert gw.request("HEAD", p).status_code == 200


def test_put_health_bad_bodies(gw, ups):  # noqa: F811
    t = "127.0.0.1:%d" % ups[0].port
    up, _ = make_upstream(gw, [(t, 10)], healthchecks=PASSIVE)
    p = "/upstreams/%s/targets/%s/unhealthy" % (up["name"], t)
    r = gw.put(p, data="{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json() == {"message": "Cannot parse JSON body"}
    r = gw.put(p, data="x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    # an address Kong cannot read raises an error in its handler
    r = gw.put("/upstreams/%s/targets/%s/1.2.3.999/unhealthy" % (up["name"], t))
    assert r.status_code == 500 and r.json() == {"message": "An unexpected error occurred"}
    assert states(gw, up["name"]) == {t: "HEALTHY"}


# ---- GET /upstreams/{u}/targets/all --------------------------------------------------------


def test_targets_all(gw):  # noqa: F811
    up, created = make_upstream(gw, [("10.0.0.%d:80" % i, 0 if i == 2 else 10) for i in range(1, 5)])
    rows, url, pages = [], "/upstreams/%s/targets/all?size=3" % up["name"], 0
    while url:
        r = gw.get(url)
        assert r.status_code == 200, r.text
        j = r.json()
        rows.extend(j["data"])
        if j["next"]:
            assert isinstance(j["offset"], str)
            assert j["next"] == "/upstreams/%s/targets/all?offset=%s" % (up["name"],
                                                                         q(j["offset"]))
            url = j["next"] + "&size=3"
        else:
            assert "offset" not in j
            url = None
        pages += 1
    assert pages == 2
    assert sorted(r["id"] for r in rows) == sorted(t["id"] for t in created)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {r["target"]: r["weight"] for r in rows}["10.0.0.2:80"] == 0
    r = gw.get("/upstreams/%s/targets/all?size=0" % up["name"])
    assert r.status_code == 400
    assert r.json() == {"code": 9, "name": "invalid size",
                        "message": "size must be an integer between 1 and 1000"}

    empty, _ = make_upstream(gw, [])
    r = gw.get("/upstreams/%s/targets/all" % empty["id"])
    assert r.status_code == 200 and r.json() == {"data": [], "next": None}
    assert '"data":[]' in r.text


def test_endpoints_lists_the_health_routes(gw):  # noqa: F811
    data = gw.get("/endpoints").json()["data"]
    for ep in ("/upstreams/{upstreams}/health", "/upstreams/{upstreams}/targets/all",
               "/upstreams/{upstreams}/targets/{targets}/healthy",
               "/upstreams/{upstreams}/targets/{targets}/unhealthy",
               "/upstreams/{upstreams}/targets/{targets}/{address}/healthy",
               "/upstreams/{upstreams}/targets/{targets}/{address}/unhealthy"):
        assert ep in data, ep
