"""PostgreSQL stopped mid-run: the admin API answers 503 with a JSON message within
pg_timeout, /status shows database.reachable false, the proxy keeps serving, and everything
recovers when the database is back."""
import os
import subprocess
import time

import requests

from aigwtest import LOCAL, NO_ROUTE, get, wait_until

PG_BIN = "/usr/lib/postgresql/15/bin"


def _pg_ctl(pg, *args):
    argv = [f"{PG_BIN}/pg_ctl", "-D", f"{pg.dir}/data", "-l", f"{pg.dir}/log", "-w", "-t", "30"]
    argv += list(args)
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=pg.dir,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr


def test_postgres_outage(postgres, aigw):
    pg = postgres
    pg.psql("CREATE DATABASE outage", database="postgres")
    gw = aigw(env={"AIGW_DATABASE": "postgres", "AIGW_PG_HOST": LOCAL,
                   "AIGW_PG_PORT": str(pg.port), "AIGW_PG_USER": "aigw",
                   "AIGW_PG_DATABASE": "outage", "AIGW_PG_TIMEOUT": "2000"})
    r = requests.post(gw.admin_url + "/services", data={"name": "before",
                                                         "url": "http://127.0.0.1:9"},
                      timeout=10)
    assert r.status_code == 201, r.text
    opts = (f"-p {pg.port} -k {pg.dir} -c listen_addresses={LOCAL} -c fsync=off "
            f"-c synchronous_commit=off")
    _pg_ctl(pg, "-m", "fast", "stop")
    try:
        t0 = time.monotonic()
        r = requests.get(gw.admin_url + "/services", timeout=15)
        elapsed = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.headers["Content-Type"].startswith("application/json")
        assert "database" in r.json()["message"]
        assert elapsed < 6, f"the admin API took {elapsed:.1f} s with pg_timeout = 2 s"
        r = requests.post(gw.admin_url + "/services", data={"name": "during", "url": "http://127.0.0.1:9"}, timeout=15)
        assert r.status_code == 503
        assert requests.get(gw.admin_url + "/status", timeout=15).json()["database"] == \
            {"reachable": False}
        # The proxy does not depend on the database.
        r = get(gw.proxy_url + "/anything")
        assert r.status_code == 404 and r.json()["message"] == NO_ROUTE
    finally:
        _pg_ctl(pg, "-o", opts, "start")
    wait_until(lambda: requests.get(gw.admin_url + "/status", timeout=15)
               .json()["database"]["reachable"], 15, what="the database to be reachable again")
    r = requests.get(gw.admin_url + "/services/before", timeout=10)
    assert r.status_code == 200 and r.json()["name"] == "before"
    assert requests.get(gw.admin_url + "/services/during", timeout=10).status_code == 404
    assert gw.alive()
