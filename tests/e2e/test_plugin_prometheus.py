"""The prometheus plugin (Kong 3.9 kong/plugins/prometheus) as a user sees it: GET /metrics on
the admin and the status listener (node metrics always; request metrics only while the plugin
is configured, gated by its *_metrics flags), exact request counts by service/route/code/
source, latency histograms, bandwidth, upstream target health, the consumer label, and a real
Prometheus server (Debian's `prometheus`) scraping the status listener."""
import os
import re
import signal
import subprocess
import time
import urllib.parse

import pytest
import requests

from aigwtest import LOCAL, NO_ROUTE, free_port, get, set_pdeathsig, wait_until
from upstreams import Upstream

PROMETHEUS = "/usr/bin/prometheus"
CT = "text/plain; charset=UTF-8"


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    sp = free_port()
    g = aigw_module(env={"AIGW_STATUS_LISTEN": "%s:%d" % (LOCAL, sp)})
    g.status_url = "http://%s:%d" % (LOCAL, sp)
    return g


def admin(gw, method, path, **kw):
    r = requests.request(method, gw.admin_url + path, timeout=10, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


def routed(url):
    r = get(url, timeout=10)
    if r.status_code != 404:
        return True
    try:
        return r.json().get("message") != NO_ROUTE
    except ValueError:
        return True


_n = [0]


def wait_config(gw, up):
    """Everything created so far is served: a new probe route on its own service routes."""
    _n[0] += 1
    probe = "probe%d" % _n[0]
    admin(gw, "POST", "/services", json={"name": probe, "url": "http://%s:%d" % (LOCAL, up.port)})
    admin(gw, "POST", "/services/%s/routes" % probe, json={"name": probe, "paths": ["/" + probe]})
    wait_until(lambda: routed(gw.proxy_url + "/" + probe), 10, what="probe route")


def scrape(url):
    r = get(url + "/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == CT
    return r.text


def samples(text):
    """{'name{labels}': value} of every sample line (the exposition's own order kept aside)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        out[key] = float(val)
    return out


def req_key(service, route, code, source, consumer=""):
    return ('kong_http_requests_total{service="%s",route="%s",code="%s",source="%s",'
            'workspace="default",consumer="%s"}' % (service, route, code, source, consumer))


def check_format(text):
    """Text format 0.0.4 as Kong writes it: each family's HELP then TYPE, then its samples,
    families contiguous."""
    seen, family = set(), None
    lines = text.splitlines()
    assert text.endswith("\n")
    for i, line in enumerate(lines):
        if line.startswith("# HELP "):
            family = line.split(" ")[2]
            assert family not in seen, family
            seen.add(family)
            assert lines[i + 1].startswith("# TYPE %s " % family), lines[i + 1]
            assert lines[i + 1].split(" ")[3] in ("counter", "gauge", "histogram")
        elif line.startswith("# TYPE "):
            assert line.split(" ")[2] == family
        else:
            assert re.match(r'^[a-z_:][a-z0-9_:]*(\{([a-z_][a-z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                            r'[0-9.e+-]+$', line), line
            assert line.startswith(family), (family, line)


# ------------------------------------------------------------------------------------------


def test_metrics_without_plugin_has_node_metrics_only(gw, up):
    node_id = admin(gw, "GET", "/")["node_id"]
    for base in (gw.admin_url, gw.status_url):
        text = scrape(base)
        check_format(text)
        s = samples(text)
        assert s["kong_datastore_reachable"] == 1
        assert s['kong_node_info{node_id="%s",version="3.9.1"}' % node_id] == 1
        for state in ("accepted", "active", "handled", "reading", "total", "waiting",
                      "writing"):
            assert ('kong_nginx_connections_total{node_id="%s",subsystem="http",state="%s"}'
                    % (node_id, state)) in s
        assert s['kong_nginx_connections_total{node_id="%s",subsystem="http",state="active"}'
                 % node_id] >= 1          # this scrape's own connection
        assert 'kong_nginx_requests_total{node_id="%s",subsystem="http"}' % node_id in s
        assert "# TYPE kong_datastore_reachable gauge\n" in text
        assert "kong_http_requests_total" not in text
        assert "kong_nginx_metric_errors_total" not in text
        assert "kong_upstream_target_health" not in text
        assert "aigw_config_version" in s
    # the status listener serves /metrics and /status, nothing of the admin API
    assert get(gw.status_url + "/services").status_code == 404
    # only GET (and HEAD/OPTIONS) on /metrics
    assert requests.post(gw.admin_url + "/metrics", timeout=10).status_code == 405


def test_request_counts_exact_on_both_listeners(gw, up):
    admin(gw, "POST", "/plugins", json={"name": "prometheus", "config": {
        "status_code_metrics": True, "latency_metrics": True, "bandwidth_metrics": True,
        "upstream_health_metrics": True, "per_consumer": True}})
    url = "http://%s:%d" % (LOCAL, up.port)
    admin(gw, "POST", "/services", json={"name": "prom-svc", "url": url})
    admin(gw, "POST", "/services/prom-svc/routes", json={"name": "prom-route", "paths": ["/prom"]})
    # a route without a name is labelled with its id; a service without a name with its host
    svc = admin(gw, "POST", "/services", json={"url": url})
    anon = admin(gw, "POST", "/services/%s/routes" % svc["id"], json={"paths": ["/prom-anon"]})
    # an answer produced by a plugin is source="kong"
    admin(gw, "POST", "/services/prom-svc/routes", json={"name": "prom-term",
                                                         "paths": ["/prom-term"]})
    admin(gw, "POST", "/routes/prom-term/plugins", json={"name": "request-termination",
                                                          "config": {"status_code": 418}})
    wait_config(gw, up)

    for _ in range(7):
        assert get(gw.proxy_url + "/prom/x").status_code == 200
    for _ in range(3):
        assert get(gw.proxy_url + "/prom/status/503").status_code == 503
    for _ in range(2):
        assert get(gw.proxy_url + "/prom-term").status_code == 418
    assert get(gw.proxy_url + "/prom-anon").status_code == 200
    assert get(gw.proxy_url + "/nothing-routes-here").status_code == 404   # not recorded

    for base in (gw.admin_url, gw.status_url):
        text = scrape(base)
        check_format(text)
        s = samples(text)
        assert s[req_key("prom-svc", "prom-route", "200", "service")] == 7
        assert s[req_key("prom-svc", "prom-route", "503", "service")] == 3
        assert s[req_key("prom-svc", "prom-term", "418", "kong")] == 2
        assert s[req_key("127.0.0.1", anon["id"], "200", "service")] == 1
        assert not [k for k in s if 'code="404"' in k]
        assert s["kong_nginx_metric_errors_total"] == 0
        lab = 'service="prom-svc",route="prom-route",workspace="default"'
        for h in ("kong_request_latency_ms", "kong_upstream_latency_ms", "kong_kong_latency_ms"):
            assert s["%s_count{%s}" % (h, lab)] == 10, h
            assert s['%s_bucket{%s,le="+Inf"}' % (h, lab)] == 10, h
            assert "# TYPE %s histogram\n" % h in text
        # a plugin's answer has no upstream latency
        tl = 'service="prom-svc",route="prom-term",workspace="default"'
        assert s["kong_request_latency_ms_count{%s}" % tl] == 2
        assert "kong_upstream_latency_ms_count{%s}" % tl not in s
        # Kong's bucket bounds (le="1" is the first of kong_latency_ms)
        assert re.search(r'kong_upstream_latency_ms_bucket\{%s,le="25"\} 10\n' % lab, text)
        ing = s['kong_bandwidth_bytes{service="prom-svc",route="prom-route",direction="ingress",'
                'workspace="default",consumer=""}']
        egr = s['kong_bandwidth_bytes{service="prom-svc",route="prom-route",direction="egress",'
                'workspace="default",consumer=""}']
        assert ing > 10 * len("GET /prom/x HTTP/1.1\r\n")
        assert egr > 7 * 50


def test_upstream_target_health(gw, up):
    admin(gw, "POST", "/upstreams", json={"name": "prom-up"})
    admin(gw, "POST", "/upstreams/prom-up/targets",
          json={"target": "%s:%d" % (LOCAL, up.port)})
    admin(gw, "POST", "/services", json={"name": "prom-up-svc", "host": "prom-up"})
    admin(gw, "POST", "/services/prom-up-svc/routes", json={"name": "prom-up-route",
                                                             "paths": ["/prom-up"]})
    wait_config(gw, up)
    assert get(gw.proxy_url + "/prom-up").status_code == 200
    s = samples(scrape(gw.status_url))
    t = "%s:%d" % (LOCAL, up.port)
    for state, v in (("healthchecks_off", 1), ("healthy", 0), ("unhealthy", 0),
                     ("dns_error", 0)):
        key = ('kong_upstream_target_health{upstream="prom-up",target="%s",address="%s",'
               'state="%s",subsystem="http"}' % (t, t, state))
        assert s[key] == v, key


def test_per_consumer_label(gw, up):
    admin(gw, "POST", "/consumers", json={"username": "prom-alice"})
    admin(gw, "POST", "/consumers/prom-alice/key-auth", json={"key": "prom-alice-key"})
    admin(gw, "POST", "/services/prom-svc/routes", json={"name": "prom-auth",
                                                         "paths": ["/prom-auth"]})
    admin(gw, "POST", "/routes/prom-auth/plugins", json={"name": "key-auth"})
    wait_config(gw, up)
    for _ in range(4):
        assert get(gw.proxy_url + "/prom-auth", headers={"apikey": "prom-alice-key"}).status_code == 200
    assert get(gw.proxy_url + "/prom-auth").status_code == 401
    s = samples(scrape(gw.admin_url))
    assert s[req_key("prom-svc", "prom-auth", "200", "service", "prom-alice")] == 4
    assert s[req_key("prom-svc", "prom-auth", "401", "kong")] == 1
    assert s['kong_bandwidth_bytes{service="prom-svc",route="prom-auth",direction="egress",'
             'workspace="default",consumer="prom-alice"}'] > 0


def test_flags_gate_metrics(gw, up):
    """A route-scoped instance with the default flags records nothing for its route."""
    admin(gw, "POST", "/services/prom-svc/routes", json={"name": "prom-quiet",
                                                         "paths": ["/prom-quiet"]})
    admin(gw, "POST", "/routes/prom-quiet/plugins", json={"name": "prometheus"})
    wait_config(gw, up)
    assert get(gw.proxy_url + "/prom-quiet").status_code == 200
    text = scrape(gw.admin_url)
    assert 'route="prom-quiet"' not in text
    # that instance has upstream_health_metrics off: the last request logged by it turned
    # the export off (Kong's set_export_upstream_health_metrics)
    assert "kong_upstream_target_health" not in text


# ------------------------------------------------------------------------------------------
# a real Prometheus


def prom_query(port, q):
    r = requests.get("http://%s:%d/api/v1/query" % (LOCAL, port), params={"query": q},
                     timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]


def test_real_prometheus_scrapes_status_listener(gw, up, tmp_path):
    assert os.access(PROMETHEUS, os.X_OK), \
        "%s missing: install Debian's prometheus package (scripts/install-deps)" % PROMETHEUS
    for _ in range(5):
        assert get(gw.proxy_url + "/prom/x").status_code == 200
    want = samples(scrape(gw.status_url))[req_key("prom-svc", "prom-route", "200", "service")]
    status_port = int(gw.status_url.rsplit(":", 1)[1])
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: aigw\n    scrape_interval: 1s\n"
        "    static_configs:\n      - targets: ['%s:%d']\n" % (LOCAL, status_port))
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([PROMETHEUS, "--config.file=%s" % cfg,
                          "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                          "--web.listen-address=%s:%d" % (LOCAL, port)],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         preexec_fn=set_pdeathsig)
    try:
        def target_up():
            r = requests.get("http://%s:%d/api/v1/targets" % (LOCAL, port), timeout=5).json()
            ts = r["data"]["activeTargets"]
            return ts and ts[0]["health"] == "up" and ts[0]

        t = wait_until(target_up, 30, interval=0.5, what="prometheus target up")
        assert t["scrapeUrl"] == "http://%s:%d/metrics" % (LOCAL, status_port)
        assert t["lastError"] == ""

        def value():
            res = prom_query(port, 'kong_http_requests_total{service="prom-svc",'
                                   'route="prom-route",code="200"}')
            return res and float(res[0]["value"][1]) == want and res[0]

        res = wait_until(value, 30, interval=0.5, what="kong_http_requests_total in prometheus")
        m = res["metric"]
        assert m["source"] == "service" and m["workspace"] == "default"
        assert "consumer" not in m       # Prometheus stores an empty label as no label
        assert m["job"] == "aigw"
        # histograms arrive as histograms: a quantile can be computed from the buckets
        q = prom_query(port, 'histogram_quantile(0.5, kong_request_latency_ms_bucket'
                             '{service="prom-svc",route="prom-route"})')
        assert q and float(q[0]["value"][1]) >= 0
        assert prom_query(port, "kong_datastore_reachable")[0]["value"][1] == "1"
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        log.close()
