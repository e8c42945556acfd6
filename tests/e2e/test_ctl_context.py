"""aigwctl's named contexts (issue 8 item 5): the config file, `context set/use/list/show/delete`,
a context pointing at a running aigwd, and the precedence flag > env > context > default."""
import json
import os
import stat
import subprocess

import pytest

from aigwtest import LOCAL, aigwctl_bin, free_ports


class Ctl:
    def __init__(self, home, xdg=True):
        self.home = home
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("AIGW_") and k != "XDG_CONFIG_HOME"}
        self.env.update(HOME=str(home), NO_COLOR="1")
        if xdg:
            self.env["XDG_CONFIG_HOME"] = str(home / "xdg")
        self.conf = (home / "xdg" if xdg else home / ".config") / "aigw" / "aigwctl.conf"

    def run(self, *args, expect=0, env=None):
        e = dict(self.env)
        e.update(env or {})
        r = subprocess.run([aigwctl_bin(), *args], env=e, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert "Sanitizer" not in r.stderr, r.stderr
        if expect is not None:
            assert r.returncode == expect, (
                f"aigwctl {' '.join(args)} -> {r.returncode} (want {expect})\n"
                f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def json(self, *args, expect=0, env=None):
        return json.loads(self.run(*args, "-o", "json", expect=expect, env=env).stdout)


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def test_set_use_list_show_delete(gw, tmp_path):
    ctl = Ctl(tmp_path)
    assert ctl.json("context", "list") == []
    (dead,) = free_ports(1)
    out = ctl.run("context", "set", "local", "--admin-url", gw.admin_url, "--proxy-url",
                  gw.proxy_url, "--timeout", "7", "--header", "Kong-Admin-Token: s3cret").stdout
    assert "created context local" in out
    ctl.run("context", "set", "broken", "--admin-url", f"http://{LOCAL}:{dead}")
    st = os.stat(ctl.conf)
    assert stat.S_IMODE(st.st_mode) == 0o600
    text = ctl.conf.read_text()
    assert "[context local]" in text and "header = Kong-Admin-Token: s3cret" in text
    lst = ctl.json("context", "list")
    assert [c["name"] for c in lst] == ["local", "broken"]
    assert not any(c["current"] for c in lst)
    # header values never shown
    assert lst[0]["headers"] == ["Kong-Admin-Token: ***"]
    assert "s3cret" not in ctl.run("context", "list", "-o", "table").stdout
    shown = ctl.json("context", "show", "local")
    assert shown["admin_url"] == gw.admin_url and shown["timeout"] == 7
    # No current context: the defaults.
    eff = ctl.json("context", "show")
    assert eff["context"] is None and eff["admin_url"] == "http://127.0.0.1:8001"

    ctl.run("context", "use", "local")
    assert "current-context = local" in ctl.conf.read_text()
    assert [c["name"] for c in ctl.json("context", "list") if c["current"]] == ["local"]
    eff = ctl.json("context", "show")
    assert eff["context"] == "local" and eff["admin_url"] == gw.admin_url
    assert eff["timeout"] == 7 and eff["headers"] == ["Kong-Admin-Token: ***"]
    # A context pointing at the running aigwd works for real commands.
    info = ctl.json("info")
    assert "node_id" in info
    svc = ctl.json("service", "create", "ctx-svc", "--url", "http://127.0.0.1:9")
    assert svc["name"] == "ctx-svc"
    # --context picks another one for one command; AIGW_CONTEXT too.
    r = ctl.run("--context", "broken", "service", "list", expect=3)
    assert f"{LOCAL}:{dead}" in r.stderr
    ctl.run("service", "list", env={"AIGW_CONTEXT": "broken"}, expect=3)
    r = ctl.run("--context", "nope", "service", "list", expect=2)
    assert "no context 'nope'" in r.stderr

    # update keeps what is not given
    ctl.run("context", "set", "local", "--insecure")
    shown = ctl.json("context", "show", "local")
    assert shown["insecure"] is True and shown["admin_url"] == gw.admin_url
    assert shown["headers"] == ["Kong-Admin-Token: ***"]
    ctl.run("context", "set", "local", "--clear-headers", "--secure")
    shown = ctl.json("context", "show", "local")
    assert shown["headers"] == [] and shown["insecure"] is False

    ctl.run("context", "delete", "local")
    assert "current-context" not in ctl.conf.read_text()
    assert [c["name"] for c in ctl.json("context", "list")] == ["broken"]
    r = ctl.run("context", "use", "local", expect=1)
    assert "no context 'local'" in r.stderr
    r = ctl.run("context", "delete", "local", expect=1)
    ctl.run("service", "delete", "ctx-svc", "--admin-url", gw.admin_url)


def test_precedence(gw, tmp_path):
    ctl = Ctl(tmp_path)
    (dead, dead2) = free_ports(2)
    ctl.run("context", "set", "dead", "--admin-url", f"http://{LOCAL}:{dead}")
    ctl.run("context", "use", "dead")
    # context alone: the dead gateway
    r = ctl.run("status", expect=3)
    assert f":{dead}" in r.stderr
    # env beats context
    env = {"AIGW_ADMIN_URL": gw.admin_url}
    assert "connections_accepted" in ctl.json("status", env=env)["server"]
    assert ctl.json("context", "show", env=env)["admin_url"] == gw.admin_url
    # flag beats env and context (leading or trailing)
    r = ctl.run("--admin-url", f"http://{LOCAL}:{dead2}", "status", env=env, expect=3)
    assert f":{dead2}" in r.stderr
    ctl.json("status", "--admin-url", gw.admin_url)
    eff = ctl.json("context", "show", "--admin-url", "http://x.test:1", env=env)
    assert eff["admin_url"] == "http://x.test:1" and eff["context"] == "dead"
    # flag timeout beats the context's
    ctl.run("context", "set", "dead", "--timeout", "3")
    assert ctl.json("context", "show")["timeout"] == 3
    assert ctl.json("context", "show", "--timeout", "9")["timeout"] == 9


def test_default_path_without_xdg(gw, tmp_path):
    ctl = Ctl(tmp_path, xdg=False)
    ctl.run("context", "set", "home", "--admin-url", gw.admin_url)
    assert (tmp_path / ".config" / "aigw" / "aigwctl.conf").exists()
    ctl.run("context", "use", "home")
    assert ctl.json("context", "show")["admin_url"] == gw.admin_url


def test_bad_input(tmp_path):
    ctl = Ctl(tmp_path)
    r = ctl.run("context", "set", "x", "--admin-url", "127.0.0.1:8001", expect=2)
    assert "not an http:// or https:// URL" in r.stderr
    r = ctl.run("context", "set", "bad name", expect=2)
    assert "not a context name" in r.stderr
    r = ctl.run("context", "set", "x", "--header", "NoColon", expect=2)
    assert "Name: value" in r.stderr
    r = ctl.run("context", "use", expect=2)
    assert "name the context" in r.stderr
    r = ctl.run("context", "sho", expect=2)
    assert "did you mean 'context show'" in r.stderr
    # A malformed file: one message naming file:line, exit 2, for any command.
    ctl.conf.parent.mkdir(parents=True, exist_ok=True)
    ctl.conf.write_text("current-context = a\n\n[context a]\nadmin-url = http://127.0.0.1:1\n"
                        "colour = blue\n")
    r = ctl.run("service", "list", expect=2)
    assert f"{ctl.conf}:5: unknown setting 'colour'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    ctl.conf.write_text("[context a\n")
    r = ctl.run("context", "list", expect=2)
    assert f"{ctl.conf}:1:" in r.stderr
    ctl.conf.write_text("admin-url = http://127.0.0.1:1\n")
    r = ctl.run("status", expect=2)
    assert f"{ctl.conf}:1: a setting outside a [context NAME] section" in r.stderr
    ctl.conf.write_text("current-context = gone\n[context a]\ntimeout = soon\n")
    r = ctl.run("status", expect=2)
    assert f"{ctl.conf}:3: timeout must be a number of seconds" in r.stderr
    ctl.conf.write_text("# comment\ncurrent-context = gone\n[context a]\n")
    r = ctl.run("status", expect=2)
    assert "current-context 'gone' is not defined" in r.stderr
