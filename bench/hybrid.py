"""bench/hybrid helper (see bench/hybrid). One CP on SQLite (the N routes loaded with
`aigwd config db_import`) and one DP, both on loopback; each sample POSTs a new route on the
CP and polls the DP (one keep-alive connection, no sleep) until the route matches (502 from
the unreachable upstream instead of 404). A thread samples the DP's VmRSS every millisecond."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ["AIGWD_BIN"]
SAMPLES = int(os.environ.get("SAMPLES", "30"))


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def env(**kw):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "KONG_"))}
    e.update({"AIGW_" + k.upper(): str(v) for k, v in kw.items()})
    return e


def wait(pred, t=60):
    end = time.monotonic() + t
    while time.monotonic() < end:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("timed out")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(n, tmp):
    certs = f"{tmp}/certs"
    os.makedirs(certs)
    subprocess.run([BIN, "hybrid", "gen_cert"], cwd=certs, check=True, capture_output=True)
    doc = {"_format_version": "3.0", "services": [
        {"name": f"s{i}", "url": f"http://127.0.0.1:9/{i}",
         "routes": [{"name": f"r{i}", "paths": [f"/r{i}"]}]} for i in range(n)]}
    with open(f"{tmp}/kong.json", "w") as f:
        json.dump(doc, f)
    cport, aport, dport = port(), port(), port()
    common = dict(cluster_cert=f"{certs}/cluster.crt", cluster_cert_key=f"{certs}/cluster.key",
                  log_level="info", proxy_access_log="off", admin_access_log="off")
    cpe = env(role="control_plane", prefix=f"{tmp}/cp", proxy_listen="off",
              admin_listen=f"127.0.0.1:{aport}", cluster_listen=f"127.0.0.1:{cport}", **common)
    dpe = env(role="data_plane", database="off", prefix=f"{tmp}/dp", admin_listen="off",
              proxy_listen=f"127.0.0.1:{dport}", worker_processes=1,
              cluster_control_plane=f"127.0.0.1:{cport}", **common)
    subprocess.run([BIN, "migrations", "bootstrap"], env=cpe, check=True, capture_output=True)
    subprocess.run([BIN, "config", "db_import", f"{tmp}/kong.json"], env=cpe, check=True,
                   capture_output=True)
    procs = [subprocess.Popen([BIN, "start"], env=cpe, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        a = http.client.HTTPConnection("127.0.0.1", aport, timeout=30)
        wait(lambda: socket.create_connection(("127.0.0.1", aport), 1).close() or True)
        procs.append(subprocess.Popen([BIN, "start"], env=dpe, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        d = [http.client.HTTPConnection("127.0.0.1", dport, timeout=30)]

        def status(path):
            try:
                d[0].request("GET", path)
                r = d[0].getresponse()
                r.read()
                return r.status
            except (OSError, http.client.HTTPException):
                d[0].close()
                d[0] = http.client.HTTPConnection("127.0.0.1", dport, timeout=30)
                return 0
        wait(lambda: status(f"/r{n - 1}") != 404, 120)
        dpid = procs[1].pid
        time.sleep(0.5)
        rest = rss_kb(dpid)
        peak = [rest]
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(dpid))
                time.sleep(0.001)
        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        lat = []
        hdr = {"Content-Type": "application/x-www-form-urlencoded"}
        for i in range(SAMPLES):
            t0 = time.monotonic()
            a.request("POST", "/services/s0/routes", f"name=probe{i}&paths[]=/p{i}x", hdr)
            r = a.getresponse()
            r.read()
            assert r.status == 201, r.status
            while status(f"/p{i}x") in (404, 0):
                if time.monotonic() - t0 > 30:
                    raise SystemExit(f"probe {i} never arrived")
            lat.append((time.monotonic() - t0) * 1000)
            time.sleep(0.05)
        stop.set()
        th.join()
        lat.sort()
        log = open(f"{tmp}/cp/logs/error.log").read()
        m = re.findall(r"cluster: configuration \d+ \((\d+) bytes, (\d+) compressed", log)
        js, zs = (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)
        build = [float(x) for x in re.findall(r"configuration snapshot \d+: .*, ([\d.]+) ms", log)]
        full = [float(x) for x in re.findall(r"compressed, ([\d.]+) ms\) encoded", log)]
        dl = re.findall(r"delta (\d+) bytes, ([\d.]+) ms\) pushed", log)
        dsize, dtime = [int(x[0]) for x in dl], [float(x[1]) for x in dl]
        dlog = open(f"{tmp}/dp/logs/error.log").read()
        load = [float(x) for x in re.findall(r"from the control plane \d+ .* routes, ([\d.]+) ms", dlog)]
        rload = [float(x) for x in re.findall(r", load ([\d.]+),", dlog)]
        med = lambda v: sorted(v)[len(v) // 2] if v else 0.0  # noqa: E731
        p = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]  # noqa: E731
        print(f"{n:>6} routes: propagation p50 {p(0.5):6.1f} ms  p99 {p(0.99):6.1f} ms  "
              f"max {lat[-1]:6.1f} ms | snapshot {js / 1e6:.2f} MB json, {zs / 1e6:.2f} MB "
              f"zlib | DP RSS {rest / 1024:.1f} MB at rest, {peak[0] / 1024:.1f} MB peak "
              f"({peak[0] / rest:.2f}x)\n        median steps: CP build {med(build[-SAMPLES:]):.1f} ms, "
              f"delta+sign {med(dtime[-SAMPLES:]):.1f} ms ({len(dl)} deltas, median "
              f"{med(dsize[-SAMPLES:])} bytes; whole snapshot encoded {len(full)}x, "
              f"{med(full):.1f} ms), DP verify+load+cache {med(load[-SAMPLES:]):.1f} ms "
              f"(of which runtime load {med(rload[-SAMPLES:]):.1f} ms)", flush=True)
    finally:
        for pr in reversed(procs):
            pr.send_signal(signal.SIGTERM)
            try:
                pr.wait(30)
            except subprocess.TimeoutExpired:
                pr.kill()


def main():
    sizes = [int(x) for x in " ".join(sys.argv[1:]).split()] or [100, 1000, 10000]
    print(f"aigw hybrid propagation ({SAMPLES} samples per size, {BIN})")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            run(n, tmp)


main()
