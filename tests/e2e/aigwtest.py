"""Helpers for the aigw end-to-end suite: ports, raw HTTP/1.1 connections, TLS clients,
the aigwd process wrapper, and small PostgreSQL / Redis clients (psql CLI, raw RESP).

Only loopback (127.0.0.1) is ever contacted. Every wait has a deadline.
"""
import ctypes
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import weakref
from pathlib import Path

import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

LOCAL = "127.0.0.1"
JSON_CT = "application/json; charset=utf-8"
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "ThreadSanitizer",
)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
NO_ROUTE = "no Route matched with those values"


# --------------------------------------------------------------------------------------------
# ports, paths, misc


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago (the small race is accepted)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOCAL, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_ports(n):
    """n distinct TCP ports free on 127.0.0.1 a moment ago: all are held open until every one
    is chosen, so the kernel cannot hand the same port out twice."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((LOCAL, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_refused(port):
    """True when nothing accepts on 127.0.0.1:port. A connection the kernel queued on a
    listener that is then closed is reset: that counts as refused too."""
    try:
        s = socket.create_connection((LOCAL, port), timeout=1)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    s.close()
    return False


def repo_root():
    src = os.environ.get("AIGW_SOURCE_DIR")
    if src:
        return Path(src)
    return Path(__file__).resolve().parents[2]


def aigwd_bin():
    b = os.environ.get("AIGWD_BIN")
    if b:
        return str(Path(b).resolve())
    return str(repo_root() / "build" / "aigwd")


def aigwctl_bin():
    """AIGWCTL_BIN, else the aigwctl beside AIGWD_BIN (one build directory)."""
    b = os.environ.get("AIGWCTL_BIN")
    if b:
        return b
    return os.path.join(os.path.dirname(os.environ.get("AIGWD_BIN", "build/aigwd")), "aigwctl")


def set_pdeathsig():
    """preexec_fn: the child gets SIGKILL if pytest dies, so nothing outlives a killed run."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def clean_env(extra=None):
    """os.environ without KONG_*, AIGW_* and proxy variables, then `extra` applied
    (a value of None removes the key)."""
    env = {}
    for k, v in os.environ.items():
        if k.startswith(("KONG_", "AIGW_")):
            continue
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            continue
        env[k] = v
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def find_sanitizer_report(text):
    if not text:
        return None
    for m in SANITIZER_MARKERS:
        i = text.find(m)
        if i >= 0:
            return text[max(0, i - 200): i + 6000]
    return None


def read_text(path):
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or timeout (AssertionError)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # keep polling; report the last error on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
        return st != "Z"
    except OSError:
        return False


def pid_is_aigwd(pid):
    """True if pid runs the aigwd binary under test (used before killing a daemonised aigwd)."""
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        if any(a.decode(errors="replace") == aigwd_bin() for a in argv[:2]):
            return True
    except OSError:
        pass
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    exe = exe.replace(" (deleted)", "")
    try:
        return os.path.samefile(exe, aigwd_bin()) or os.path.basename(exe) == "aigwd"
    except OSError:
        return os.path.basename(exe) == "aigwd"


# --------------------------------------------------------------------------------------------
# HTTP: a requests session that never uses proxies from the environment


def session():
    s = requests.Session()
    s.trust_env = False
    return s


def http(method, url, **kw):
    """One request on its own connection (closed afterwards, as curl would), no env proxies."""
    kw.setdefault("timeout", 10)
    kw.setdefault("verify", False)
    kw.setdefault("allow_redirects", False)
    with session() as s:
        return s.request(method, url, **kw)


def get(url, **kw):
    return http("GET", url, **kw)


# --------------------------------------------------------------------------------------------
# raw HTTP/1.x over a socket


class RawResponse:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return (f"<RawResponse {self.status} {self.reason!r} headers={self.headers!r} "
                f"body={self.body[:300]!r}>")


class RawConn:
    """A client connection speaking HTTP/1.x by hand; every read is bounded by `timeout`."""

    def __init__(self, port, host=LOCAL, timeout=10.0, tls=False, tls_ctx=None):
        self.timeout = timeout
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = tls_ctx or insecure_tls_ctx()
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed while reading a response")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by peer")
        self.buf += chunk

    def _read_until(self, marker, deadline):
        while marker not in self.buf:
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head=False, timeout=None):
        """Reads one response. head=True: the request was HEAD, so no body follows."""
        deadline = time.monotonic() + (timeout or self.timeout)
        raw_head = self._read_until(b"\r\n\r\n", deadline)
        lines = raw_head[:-4].decode("latin-1").split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError(f"bad status line: {lines[0]!r}")
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        resp = RawResponse(version, status, reason, headers, b"", raw_head)
        if head or status in (204, 304) or 100 <= status < 200:
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        cl = resp.header("content-length")
        if "chunked" in te:
            body = b""
            while True:
                size_line = self._read_until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers until an empty line
                    while self._read_until(b"\r\n", deadline) != b"\r\n":
                        pass
                    break
                body += self._read_exact(size, deadline)
                self._read_exact(2, deadline)
            resp.body = body
        elif cl is not None:
            resp.body = self._read_exact(int(cl), deadline)
        else:
            # read until close
            try:
                while True:
                    self._fill(deadline)
            except ConnectionError:
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method="GET", path="/", headers=None, body=b"", version="HTTP/1.1",
                host="localhost"):
        h = [f"{method} {path} {version}", f"Host: {host}"]
        for k, v in (headers or {}).items():
            h.append(f"{k}: {v}")
        if isinstance(body, str):
            body = body.encode()
        if body and not any(k.lower() in ("content-length", "transfer-encoding")
                            for k in (headers or {})):
            h.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(h) + "\r\n\r\n").encode() + body)
        return self.read_response(head=(method == "HEAD"))

    def closed_by_peer(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within timeout with no further bytes."""
        deadline = time.monotonic() + timeout
        if self.buf:
            raise AssertionError(f"unexpected extra bytes: {self.buf[:200]!r}")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            except ssl.SSLError:
                return True
            if not chunk:
                return True
            raise AssertionError(f"unexpected extra bytes before close: {chunk[:200]!r}")


# --------------------------------------------------------------------------------------------
# TLS


def insecure_tls_ctx(min_version=None, max_version=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, ctx=None, server_hostname="localhost", timeout=10.0):
    """Returns a connected SSLSocket (the caller closes it)."""
    ctx = ctx or insecure_tls_ctx()
    raw = socket.create_connection((LOCAL, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def peer_cert_der(port, server_hostname="localhost"):
    s = tls_connect(port, server_hostname=server_hostname)
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def pem_certs_der(path):
    """DER bytes of every certificate in a PEM file."""
    text = read_text(path)
    out = []
    for m in re.finditer(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S):
        out.append(ssl.PEM_cert_to_DER_cert(m.group(0)))
    return out


def make_self_signed(dirpath, cn="test.local"):
    """openssl req -x509 ... as the brief says; returns (cert_path, key_path)."""
    dirpath = Path(dirpath)
    dirpath.mkdir(parents=True, exist_ok=True)
    cert, key = dirpath / "c.pem", dirpath / "k.pem"
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", f"/CN={cn}", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return str(cert), str(key)


# --------------------------------------------------------------------------------------------
# listen values


def parse_listen(value):
    """'127.0.0.1:8001, 127.0.0.1:8444 ssl' -> [(connect_host, port, is_ssl), ...]; 'off' -> []."""
    value = (value or "").strip()
    if not value or value.lower() == "off":
        return []
    out = []
    for part in value.split(","):
        toks = part.split()
        if not toks:
            continue
        addr = toks[0]
        host, _, port = addr.rpartition(":")
        host = host.strip("[]")
        if host in ("0.0.0.0", "*", "", "::", "localhost"):
            host = LOCAL
        try:
            port = int(port)
        except ValueError:
            continue
        out.append((host, port, "ssl" in toks[1:]))
    return out


def conf_value(conf_text, key):
    """Last `key = value` in kong.conf-style text (comments stripped), or None."""
    val = None
    for ln in (conf_text or "").splitlines():
        m = re.match(r"^\s*" + re.escape(key) + r"\s*=\s*(.*?)\s*$", ln)
        if m:
            v = m.group(1)
            v = re.sub(r"\s+#.*$", "", v)
            val = v
    return val


# --------------------------------------------------------------------------------------------
# aigwd


_LIVE = weakref.WeakSet()


def reap_instances():
    """Reaps every aigwd we started that has exited. `aigwd stop` waits until the pid is gone,
    and a zombie child of pytest would otherwise look alive to it."""
    for inst in list(_LIVE):
        if inst.proc is not None:
            inst.proc.poll()


class AigwInstance:
    """One `aigwd start` subprocess on a prefix."""

    def __init__(self, prefix, env, conf_path, args, run_index):
        self.prefix = Path(prefix)
        self.env = env
        self.conf_path = conf_path
        suffix = "" if run_index == 1 else f".{run_index}"
        self.stdout_path = self.prefix / f"aigwd{suffix}.stdout"
        self.stderr_path = self.prefix / f"aigwd{suffix}.stderr"
        self.argv = [aigwd_bin(), "start", "-p", str(self.prefix)]
        if conf_path:
            self.argv += ["-c", str(conf_path)]
        self.argv += list(args or [])
        self.proc = None
        self.ports = {}
        self.proxy_url = self.proxy_ssl_url = self.admin_url = self.admin_ssl_url = None
        self._resolve_urls()

    def _listen_value(self, key):
        up = key.upper()
        for name in ("AIGW_" + up, "KONG_" + up):
            if name in self.env:
                return self.env[name]
        if self.conf_path:
            v = conf_value(read_text(self.conf_path), key)
            if v is not None:
                return v
        return None

    def _resolve_urls(self):
        for key, kind in (("proxy_listen", "proxy"), ("admin_listen", "admin")):
            entries = parse_listen(self._listen_value(key))
            plain = [e for e in entries if not e[2]]
            tls = [e for e in entries if e[2]]
            if plain:
                self.ports[kind] = plain[0][1]
                setattr(self, f"{kind}_url", f"http://{plain[0][0]}:{plain[0][1]}")
            if tls:
                self.ports[kind + "_ssl"] = tls[0][1]
                setattr(self, f"{kind}_ssl_url", f"https://{tls[0][0]}:{tls[0][1]}")

    # -- process control

    def start(self):
        self.prefix.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=str(self.prefix), start_new_session=True, preexec_fn=set_pdeathsig)
        _LIVE.add(self)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Sends sig and waits; SIGKILL (and AssertionError) if it has not exited by timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"aigwd (pid {self.proc.pid}) did not exit within {timeout} s of signal {sig}; "
                f"killed.\n{self.diagnostics()}")

    def kill_for_teardown(self):
        """SIGTERM, 20 s, SIGKILL. Returns a note if it had to kill, else None."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
            return None
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            return f"aigwd pid {self.proc.pid} ignored SIGTERM for 20 s and was killed"

    # -- readiness

    def ready_check(self):
        if self.admin_url:
            return get(self.admin_url + "/status", timeout=2).status_code == 200
        if self.admin_ssl_url:
            return get(self.admin_ssl_url + "/status", timeout=2).status_code == 200
        port = self.ports.get("proxy") or self.ports.get("proxy_ssl")
        if port is None:
            raise AssertionError("no admin and no proxy listener to wait for")
        with socket.create_connection((LOCAL, port), timeout=1):
            return True

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"aigwd exited with {self.proc.returncode} before it was ready\n"
                    f"{self.diagnostics()}")
            try:
                if self.ready_check():
                    return self
            except Exception as e:
                last = e
            if time.monotonic() >= deadline:
                raise AssertionError(f"aigwd not ready within {timeout} s (last: {last!r})\n"
                                     f"{self.diagnostics()}")
            time.sleep(0.05)

    # -- output

    def stdout_text(self):
        return read_text(self.stdout_path)

    def stderr_text(self):
        return read_text(self.stderr_path)

    def error_log_text(self):
        return read_text(self.prefix / "logs" / "error.log")

    def access_log_text(self):
        return read_text(self.prefix / "logs" / "access.log")

    def pid_file(self):
        return self.prefix / "pids" / "aigwd.pid"

    def diagnostics(self, limit=4000):
        def tail(s):
            return s[-limit:] if len(s) > limit else s
        return (f"argv: {self.argv}\n--- stderr ---\n{tail(self.stderr_text())}\n"
                f"--- stdout ---\n{tail(self.stdout_text())}\n"
                f"--- logs/error.log ---\n{tail(self.error_log_text())}")

    def sanitizer_report(self):
        for text in (self.stderr_text(), self.stdout_text(), self.error_log_text()):
            rep = find_sanitizer_report(text)
            if rep:
                return rep
        return None


class RunResult(tuple):
    """(rc, stdout, stderr) that also carries .prefix, .conf_path, .ports, .env."""

    def __new__(cls, rc, out, err, **attrs):
        self = super().__new__(cls, (rc, out, err))
        for k, v in attrs.items():
            setattr(self, k, v)
        return self

    rc = property(lambda self: self[0])
    stdout = property(lambda self: self[1])
    stderr = property(lambda self: self[2])


def default_listen_env():
    """Loopback listeners on free ports, as the brief asks. Returns (env, ports)."""
    names = ("proxy", "proxy_ssl", "admin", "admin_ssl")
    ports = dict(zip(names, free_ports(len(names))))
    env = {
        "AIGW_PROXY_LISTEN": f"{LOCAL}:{ports['proxy']}, {LOCAL}:{ports['proxy_ssl']} ssl",
        "AIGW_ADMIN_LISTEN": f"{LOCAL}:{ports['admin']}, {LOCAL}:{ports['admin_ssl']} ssl",
        "AIGW_STATUS_LISTEN": "off",
        "AIGW_WORKER_PROCESSES": "2",
    }
    return env, ports


def merge_defaults(env, conf_text):
    """Default env, minus any key the caller sets via AIGW_/KONG_ env or the conf file."""
    defaults, _ = default_listen_env()
    env = dict(env or {})
    out = {}
    for k, v in defaults.items():
        key = k[len("AIGW_"):]
        if k in env or ("KONG_" + key) in env:
            continue
        if conf_text and conf_value(conf_text, key.lower()) is not None:
            continue
        out[k] = v
    out.update(env)
    return out


# --------------------------------------------------------------------------------------------
# PostgreSQL (psql CLI)


def _pg_env():
    return {k: v for k, v in clean_env().items() if not k.startswith("PG")}


class Postgres:
    def __init__(self, host, port, user, database, dirpath):
        self.host, self.port, self.user, self.database = host, port, user, database
        self.dir = dirpath

    def psql(self, sql, database=None, timeout=30):
        r = subprocess.run(
            ["/usr/bin/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", self.user,
             "-d", database or self.database, "-c", sql],
            env=_pg_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"psql failed ({r.returncode}): {sql!r}\n"
                                 f"{r.stderr.decode(errors='replace')}")
        return r.stdout.decode()

    def env_for_aigw(self):
        return {
            "AIGW_DATABASE": "postgres",
            "AIGW_PG_HOST": self.host,
            "AIGW_PG_PORT": str(self.port),
            "AIGW_PG_USER": self.user,
            "AIGW_PG_DATABASE": self.database,
        }


# --------------------------------------------------------------------------------------------
# Redis (raw RESP)


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, host, port, proc=None):
        self.host, self.port, self.proc = host, port, proc

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def cmd(self, *args, timeout=5.0):
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(self.encode(*args))
            reader = _RespReader(s, time.monotonic() + timeout)
            v = reader.read()
        if isinstance(v, RedisError):
            raise v
        return v


class _RespReader:
    def __init__(self, sock, deadline):
        self.sock, self.deadline, self.buf = sock, deadline, b""

    def _fill(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("redis reply deadline passed")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def read(self):
        ln = self._line()
        t, rest = ln[:1], ln[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError(f"bad RESP line {ln!r}")
