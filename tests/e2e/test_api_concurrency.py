"""Concurrent writers never half-apply: racing creates of the same names give exactly one 201
per name and 409 for the others, on both stores; and aigwd refuses to start on a database
that was never bootstrapped."""
import threading

import requests

from apitest import gw  # noqa: F401  (parametrised fixture: sqlite and postgres)


def test_racing_creates(gw):  # noqa: F811
    names = [f"race-{i}" for i in range(20)]
    results = {n: [] for n in names}
    lock = threading.Lock()

    def worker():
        s = requests.Session()
        for n in names:
            r = s.post(gw.url + "/services", data={"name": n, "url": "http://127.0.0.1:9"},
                       timeout=30)
            with lock:
                results[n].append(r.status_code)

    ts = [threading.Thread(target=worker) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for n, codes in results.items():
        assert sorted(codes) == [201] + [409] * 5, (n, codes)
    listed = requests.get(gw.url + "/services?size=1000", timeout=30).json()["data"]
    assert sorted(s["name"] for s in listed if s["name"].startswith("race-")) == sorted(names)


def test_start_refuses_unbootstrapped(aigw_run):
    r = aigw_run(["start", "-p", "{prefix}"], bootstrap=False)
    assert r.rc == 1
    assert "aigwd migrations bootstrap" in r.stderr
