"""Fixtures for the aigw end-to-end suite.

Run one file the way ctest does:
    AIGWD_BIN=build/aigwd /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e/test_admin.py

Fixtures
    aigw          factory (function scope): aigw(env=None, conf=None, args=None, wait=True,
                  prefix=None, defaults=True) -> AigwInstance, started and ready
    aigw_module   the same factory with module scope (one daemon shared by a file's tests)
    aigw_run      aigw_run(args, env=None, conf=None, timeout=20, defaults=True) -> RunResult
                  (rc, stdout, stderr); "{prefix}" and "{conf}" in args are replaced
    postgres      session: a throw-away PostgreSQL 15 on a free port (.psql(sql) -> stdout)
    redis         session: a redis-server on a free port (.cmd(*args) -> parsed reply)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aigwtest import (  # noqa: E402
    conf_value,
    AigwInstance, LOCAL, Postgres, Redis, RunResult, aigwd_bin, clean_env, find_sanitizer_report,
    free_port, merge_defaults, pid_alive, pid_is_aigwd, read_text, reap_instances,
    set_pdeathsig,
)

__all__ = ["free_port"]


def pytest_configure(config):
    config.addinivalue_line("filterwarnings",
                            "ignore::urllib3.exceptions.InsecureRequestWarning")
    config.addinivalue_line("filterwarnings", "ignore:ssl.TLSVersion:DeprecationWarning")


def _require_aigwd():
    b = aigwd_bin()
    if not os.path.isfile(b) or not os.access(b, os.X_OK):
        pytest.fail(f"aigwd binary not found or not executable: {b} "
                    f"(set AIGWD_BIN or build into $AIGW_SOURCE_DIR/build)", pytrace=False)
    return b


# --------------------------------------------------------------------------------------------
# aigwd


class AigwFactory:
    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.instances = []
        self.runs = {}          # prefix -> how many starts on it
        self.extra_prefixes = []  # prefixes used by aigw_run (daemon mode etc.)

    def new_dir(self, name="aigw"):
        return Path(self.tmp.mktemp(name))

    def __call__(self, env=None, conf=None, args=None, wait=True, prefix=None, defaults=True,
                 timeout=15.0, bootstrap=True):
        _require_aigwd()
        base = None
        if prefix is None:
            base = self.new_dir()
            prefix = base / "prefix"
        prefix = Path(prefix)
        prefix.mkdir(parents=True, exist_ok=True)
        conf_path = None
        if conf is not None:
            conf_path = prefix.parent / (prefix.name + ".aigw.conf")
            conf_path.write_text(conf)
        full_env = clean_env(merge_defaults(env, conf) if defaults else dict(env or {}))
        n = self.runs.get(str(prefix), 0) + 1
        self.runs[str(prefix)] = n
        inst = AigwInstance(prefix, full_env, conf_path, args, n)
        self.instances.append(inst)
        dbless = "off" in (full_env.get("AIGW_DATABASE"), full_env.get("KONG_DATABASE")) or \
            (conf is not None and conf_value(conf, "database") == "off")
        if bootstrap and not dbless:
            bootstrap_database(prefix, full_env, conf_path)
        inst.start()
        if wait:
            inst.wait_ready(timeout)
        return inst

    def close(self):
        notes, reports = [], []
        for inst in self.instances:
            note = inst.kill_for_teardown()
            if note:
                notes.append(note)
            rep = inst.sanitizer_report()
            if rep:
                reports.append(f"[{inst.argv}]\n{rep}")
        for prefix in self.extra_prefixes:
            _kill_daemon_from_pidfile(prefix)
            rep = find_sanitizer_report(read_text(Path(prefix) / "logs" / "error.log"))
            if rep:
                reports.append(f"[daemon on {prefix}]\n{rep}")
        for n in notes:
            warnings.warn(n)
        if reports:
            pytest.fail("sanitizer report from aigwd:\n" + "\n\n".join(reports), pytrace=False)


def bootstrap_database(prefix, env, conf_path=None):
    """`aigwd migrations bootstrap` as a user runs it before the first start (a no-op when the
    database is already bootstrapped or database = off)."""
    argv = [aigwd_bin(), "migrations", "bootstrap", "-p", str(prefix)]
    if conf_path:
        argv += ["-c", str(conf_path)]
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"migrations bootstrap failed ({r.returncode}):\n{r.stderr}"


def _kill_daemon_from_pidfile(prefix):
    """A daemon we started with `aigwd start --daemon`: stop it if it is still running."""
    pf = Path(prefix) / "pids" / "aigwd.pid"
    try:
        pid = int(pf.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if not pid_alive(pid) or not pid_is_aigwd(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid) and pid_is_aigwd(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def aigw(tmp_path_factory):
    f = AigwFactory(tmp_path_factory)
    yield f
    f.close()


@pytest.fixture(scope="module")
def aigw_module(tmp_path_factory):
    f = AigwFactory(tmp_path_factory)
    yield f
    f.close()


@pytest.fixture
def aigw_run(tmp_path_factory):
    """Runs `aigwd <args>` to completion. Output goes to files (not pipes), so a daemon that
    keeps inherited descriptors cannot make the wait hang."""
    factory = AigwFactory(tmp_path_factory)

    def run(args, env=None, conf=None, timeout=20, defaults=True, prefix=None, bootstrap=True):
        b = _require_aigwd()
        base = factory.new_dir("run")
        prefix = Path(prefix) if prefix else base / "prefix"
        conf_path = base / "aigw.conf"
        if conf is not None:
            conf_path.write_text(conf)
        full_env = clean_env(merge_defaults(env, conf) if defaults else dict(env or {}))
        argv = [b] + [str(a).replace("{prefix}", str(prefix)).replace("{conf}", str(conf_path))
                      for a in args]
        if any("{prefix}" in str(a) for a in args):
            prefix.mkdir(parents=True, exist_ok=True)
            factory.extra_prefixes.append(str(prefix))
        if bootstrap and args and args[0] == "start" and "{prefix}" in [str(a) for a in args]:
            # As a user does before the first start. A start that must fail on its
            # configuration fails in bootstrap the same way: then let start show it.
            prefix.mkdir(parents=True, exist_ok=True)
            bargv = [b, "migrations", "bootstrap", "-p", str(prefix)]
            if conf is not None:
                bargv += ["-c", str(conf_path)]
            subprocess.run(bargv, env=full_env, capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        out_p, err_p = base / "stdout", base / "stderr"
        with open(out_p, "wb") as out, open(err_p, "wb") as err:
            p = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err, cwd=str(base), start_new_session=True,
                                 preexec_fn=set_pdeathsig)
            deadline = time.monotonic() + timeout
            rc = None
            while True:
                reap_instances()
                rc = p.poll()
                if rc is not None or time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
            if rc is None:
                p.kill()
                p.wait(timeout=10)
                pytest.fail(f"`{' '.join(argv)}` did not exit within {timeout} s\n"
                            f"stderr:\n{read_text(err_p)[-3000:]}\nstdout:\n"
                            f"{read_text(out_p)[-3000:]}", pytrace=False)
        so, se = read_text(out_p), read_text(err_p)
        rep = find_sanitizer_report(se) or find_sanitizer_report(so)
        if rep:
            pytest.fail(f"sanitizer report from `{' '.join(argv)}`:\n{rep}", pytrace=False)
        return RunResult(rc, so, se, prefix=prefix, conf_path=conf_path, env=full_env,
                         argv=argv)

    yield run
    factory.close()


# --------------------------------------------------------------------------------------------
# PostgreSQL 15


PG_BIN = "/usr/lib/postgresql/15/bin"


def _as_pg(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


@pytest.fixture(scope="session")
def postgres():
    for tool in ("initdb", "pg_ctl"):
        if not os.access(f"{PG_BIN}/{tool}", os.X_OK):
            pytest.fail(f"PostgreSQL 15 is required: {PG_BIN}/{tool} is missing "
                        f"(apt-get install postgresql-15)", pytrace=False)
    if not os.access("/usr/bin/psql", os.X_OK):
        pytest.fail("/usr/bin/psql is missing (apt-get install postgresql-client-15)",
                    pytrace=False)
    d = tempfile.mkdtemp(prefix="aigw-pg-")
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    os.chmod(d, 0o700)
    data, log = f"{d}/data", f"{d}/log"
    port = free_port()
    env = {k: v for k, v in clean_env().items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    started = False

    def run(argv, timeout=60):
        r = subprocess.run(_as_pg(argv), env=env, cwd=d, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    try:
        rc, out, err = run([f"{PG_BIN}/initdb", "-D", data, "-U", "aigw", "--auth=trust",
                            "-E", "UTF8", "--locale=C.UTF-8"])
        if rc != 0:
            pytest.fail(f"initdb failed ({rc}):\n{out}\n{err}", pytrace=False)
        opts = (f"-p {port} -k {d} -c listen_addresses={LOCAL} -c fsync=off "
                f"-c synchronous_commit=off")
        rc, out, err = run([f"{PG_BIN}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "30",
                            "-o", opts, "start"])
        started = True
        if rc != 0:
            pytest.fail(f"pg_ctl start failed ({rc}):\n{out}\n{err}\n{read_text(log)[-3000:]}",
                        pytrace=False)
        pg = Postgres(LOCAL, port, "aigw", "aigw_test", d)
        pg.psql("CREATE DATABASE aigw_test", database="postgres")
        yield pg
    finally:
        if started:
            try:
                rc, out, err = run([f"{PG_BIN}/pg_ctl", "-D", data, "-m", "fast", "-w", "-t",
                                    "30", "stop"])
            except subprocess.TimeoutExpired:
                rc = -1
            if rc != 0:
                try:
                    pid = int(Path(f"{data}/postmaster.pid").read_text().splitlines()[0])
                    if pid_alive(pid):
                        os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Redis


@pytest.fixture(scope="session")
def redis(tmp_path_factory):
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(exe, os.X_OK):
        pytest.fail("redis-server is required (apt-get install redis-server)", pytrace=False)
    d = tmp_path_factory.mktemp("redis")
    port = free_port()
    logf = open(d / "redis.log", "wb")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", LOCAL, "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--dir", str(d)],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd=str(d),
        start_new_session=True, preexec_fn=set_pdeathsig)
    r = Redis(LOCAL, port, proc)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with {proc.returncode}:\n"
                            f"{read_text(d / 'redis.log')[-3000:]}", pytrace=False)
            try:
                if r.cmd("PING", timeout=1) == "PONG":
                    break
            except OSError:
                pass
            if time.monotonic() >= deadline:
                pytest.fail("redis-server did not answer PING within 15 s:\n"
                            f"{read_text(d / 'redis.log')[-3000:]}", pytrace=False)
            time.sleep(0.05)
        yield r
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        logf.close()
