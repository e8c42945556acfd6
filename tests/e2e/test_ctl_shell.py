"""aigwctl shell: driven through a pseudo-terminal (completion, history, Ctrl-C) and from a
pipe (commands line by line). Issue 8, item 8."""
import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests


def _aigwctl():
    b = os.environ.get("AIGWCTL_BIN")
    if not b:
        b = str(Path(os.environ.get("AIGW_SOURCE_DIR", ".")) / "build" / "aigwctl")
    return b


def _env(gw, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "KONG_"))}
    env.update(AIGW_ADMIN_URL=gw.admin_url, HOME=str(tmp_path / "home"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               TERM="dumb", NO_COLOR="1", INPUTRC="/dev/null")
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


class Pty:
    """A child on a pseudo-terminal; every read bounded."""

    def __init__(self, argv, env):
        pid, fd = pty.fork()
        if pid == 0:  # the child
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd, self.buf = pid, fd, b""
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return None
        if not data:
            return None
        self.buf += data
        return True

    def expect(self, needle, timeout=10.0):
        """Waits until needle (bytes) appears after the last match; returns what came before."""
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self._read(min(left, 0.5)) is None:
                if needle in self.buf:
                    break
                raise AssertionError(f"{needle!r} not seen; got {self.buf[-2000:]!r}")
        i = self.buf.index(needle)
        before = self.buf[:i]
        self.buf = self.buf[i + len(needle):]
        return before

    def drain(self, quiet=0.3, limit=5.0):
        end = time.monotonic() + limit
        while time.monotonic() < end and self._read(quiet):
            pass
        out, self.buf = self.buf, b""
        return out

    def send(self, s):
        os.write(self.fd, s.encode() if isinstance(s, str) else s)

    def wait(self, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._read(0.1)
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                return self.status
        raise AssertionError("the shell did not exit")

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass


def _has_command(words):
    r = subprocess.run([_aigwctl(), "--help"], capture_output=True, text=True, timeout=20)
    return any(line.strip().startswith(words + " ") or line.strip() == words
               for line in r.stdout.splitlines())


def test_shell_on_a_terminal(aigw, tmp_path):
    gw = aigw()
    a = gw.admin_url
    assert requests.post(a + "/services", json={"name": "ai-orchestrator",
                                                "url": "http://127.0.0.1:5000"},
                         timeout=10).status_code == 201
    assert requests.post(a + "/consumers", json={"username": "ai-client"},
                         timeout=10).status_code == 201
    env = _env(gw, tmp_path)
    sh = Pty([_aigwctl()], env)  # no arguments on a terminal: the shell
    try:
        sh.expect(b"aigw> ")
        # A command runs; -o on one line does not stick to the next.
        sh.send("status -o json\r")
        out = sh.expect(b"aigw> ")
        assert b'"connections_accepted"' in out
        sh.send("info -o yaml\r")
        out = sh.expect(b"aigw> ")
        assert b"tagline:" in out
        # Tab completes command words...
        sh.send("conf\t")
        sh.expect(b"config ")
        sh.send("val\t")
        sh.expect(b"validate ")
        sh.send("\x15")  # Ctrl-U: clear the line
        sh.drain()
        # ... flags of the command...
        sh.send("config dump --for\t")
        sh.expect(b"--format ")
        sh.send("js\t")
        sh.expect(b"json ")
        sh.send("\x15")
        sh.drain()
        # ... and live names from the admin API.
        sh.send("jwt mint --consumer ai-\t")
        sh.expect(b"ai-client ")
        sh.send("\x15")
        sh.drain()
        if _has_command("service get"):
            sh.send("serv\t")
            sh.expect(b"service ")
            sh.send("get \t")
            sh.expect(b"ai-orchestrator ")
            sh.send("-o json\r")
            out = sh.expect(b"aigw> ")
            assert b'"name": "ai-orchestrator"' in out
        # Ctrl-C clears the line and the shell stays.
        sh.send("garbage-words")
        time.sleep(0.2)
        sh.send(b"\x03")
        sh.expect(b"^C")
        sh.expect(b"aigw> ")
        sh.send("version\r")
        out = sh.expect(b"aigw> ")
        assert b"aigwctl " in out and b"garbage" not in out
        # Errors do not end the shell; quoting works.
        sh.send("config validate 'no such file.yaml'\r")
        out = sh.expect(b"aigw> ")
        assert b"cannot open no such file.yaml" in out
        sh.send("help\r")
        out = sh.expect(b"aigw> ")
        assert b"config sync" in out
        sh.send("config validate nothing-here.yaml\r")
        sh.expect(b"aigw> ")
        sh.send("exit\r")
        assert sh.wait() == 1  # the last command's code
    finally:
        sh.close()
    hist = tmp_path / "data" / "aigw" / "history"
    assert hist.exists()
    assert (hist.stat().st_mode & 0o777) == 0o600
    lines = hist.read_text().splitlines()
    assert "status -o json" in lines and "version" in lines and "exit" in lines
    assert "garbage-words" not in lines
    # History is read back: Up-arrow (Ctrl-P) recalls the last line of the previous session.
    sh = Pty([_aigwctl(), "shell"], env)
    try:
        sh.expect(b"aigw> ")
        sh.send("\x10\x10")  # Ctrl-P twice: "exit", then the line before it
        sh.expect(b"config validate nothing-here.yaml")
        sh.send("\x15\x04")  # clear, then Ctrl-D on an empty line leaves
        assert sh.wait() == 0
    finally:
        sh.close()


def test_history_bounded(aigw, tmp_path):
    gw = aigw()
    env = _env(gw, tmp_path)
    hist = tmp_path / "data" / "aigw" / "history"
    hist.parent.mkdir(parents=True)
    hist.write_text("".join(f"version {i}\n" for i in range(1200)))
    sh = Pty([_aigwctl()], env)
    try:
        sh.expect(b"aigw> ")
        sh.send("version\r")
        sh.expect(b"aigw> ")
        sh.send("\x04")
        assert sh.wait() == 0
    finally:
        sh.close()
    lines = hist.read_text().splitlines()
    assert len(lines) <= 1000 and lines[-1] == "version"


def test_shell_from_a_pipe(aigw, tmp_path):
    gw = aigw()
    env = _env(gw, tmp_path)
    script = ("# a script\n"
              "status -o json\n"
              "\n"
              "config validate /nonexistent.yaml\n"
              "api POST /consumers username=piped -o json\n"
              "api GET /consumers/piped\n")
    r = subprocess.run([_aigwctl()], input=script, env=env, capture_output=True, text=True,
                       timeout=30)
    # Every line ran; the exit code is the last failing line's.
    assert r.returncode == 1, r.stderr
    assert "cannot open /nonexistent.yaml" in r.stderr
    assert '"connections_accepted"' in r.stdout
    docs = [d for d in r.stdout.split("\n}\n") if d.strip()]
    assert json.loads(docs[-1] + "\n}")["username"] == "piped"
    assert "aigw>" not in r.stdout  # no prompt
    # All good: exit 0. 'exit N' stops with N.
    r = subprocess.run([_aigwctl(), "shell"], input="version\nstatus -o ids\n", env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([_aigwctl(), "shell"], input="exit 7\nversion\n", env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 7 and "aigwctl" not in r.stdout
    # An unterminated quote is a usage error of that line.
    r = subprocess.run([_aigwctl()], input="api GET '/status\n", env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unterminated" in r.stderr
