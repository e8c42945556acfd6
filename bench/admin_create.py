"""bench/admin helper: POSTs N services (or N routes nested under them) over keep-alive
connections from several threads and prints the rate. Run by bench/admin with Debian's
/usr/bin/python3. The client is Python: the figure is a lower bound of what aigwd does."""
import http.client
import sys
import threading
import time

port, kind, n, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
failed = []


def worker(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdr = {"Content-Type": "application/x-www-form-urlencoded"}
    for i in range(k, n, threads):
        if kind == "services":
            path, body = "/services", f"name=bench-{i}&url=http://127.0.0.1:9/{i}"
        else:
            path, body = f"/services/bench-{i}/routes", f"name=bench-route-{i}&paths[]=/b{i}"
        c.request("POST", path, body, hdr)
        r = c.getresponse()
        r.read()
        if r.status != 201:
            failed.append(r.status)
    c.close()


t0 = time.monotonic()
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
dt = time.monotonic() - t0
print(f"{kind}: {n} created in {dt:.2f} s -> {n / dt:.0f}/s" +
      (f" ({len(failed)} failed: {sorted(set(failed))})" if failed else ""))
