"""aigwctl's generated documents (issue 8, item 1): the man page and the bash, zsh and fish
completions come from the command table (`aigwctl __gen man|bash|zsh|fish`); the completions ask
`aigwctl __complete KIND` for live names. Bash completion is simulated the way readline drives
it (COMP_WORDS split at ':' as COMP_WORDBREAKS does, COMP_CWORD, COMP_LINE, COMP_POINT), fish's
through `complete -C`. Whether the committed files equal the generated ones is ctest
cli.docs_drift (cmake/aigwctl-docs.cmake)."""
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from aigwtest import LOCAL, free_ports, http


def _aigwctl():
    b = os.environ.get("AIGWCTL_BIN")
    if not b:
        b = str(Path(os.environ.get("AIGW_SOURCE_DIR", ".")) / "build" / "aigwctl")
    return b


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGW_", "KONG_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               XDG_DATA_HOME=str(tmp_path / "data"), NO_COLOR="1",
               PATH=os.path.dirname(os.path.abspath(_aigwctl())) + os.pathsep + env.get("PATH", ""))
    env.update(extra)
    return env


def _gen(kind, tmp_path):
    r = subprocess.run([_aigwctl(), "__gen", kind], capture_output=True, text=True, timeout=30,
                       env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory):
    d = tmp_path_factory.mktemp("bashgen")
    p = d / "aigwctl.bash"
    p.write_text(_gen("bash", d))
    return p


def _readline_words(line):
    """COMP_WORDS as bash builds them: split at blanks, and ':' (in COMP_WORDBREAKS) is a word."""
    words = []
    for tok in line.split():
        parts = re.split(r"(:)", tok)
        words.extend(p for p in parts if p != "")
    if line.endswith(" ") or not words:
        words.append("")
    return words


def bash_complete(script, line, tmp_path, **env):
    """Candidates bash would offer at the end of line (COMPREPLY)."""
    words = _readline_words(line)
    prog = (f"source {shlex.quote(str(script))}\n"
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\nCOMP_LINE={shlex.quote(line)}\n"
            f"COMP_POINT={len(line)}\n"
            "_aigwctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["/bin/bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                       text=True, timeout=30, env=_env(tmp_path, **env))
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    return [w for w in r.stdout.split("\n") if w != ""]


def _help_commands(tmp_path):
    """The non-hidden commands as `aigwctl --help` lists them (first word of each entry)."""
    r = subprocess.run([_aigwctl(), "--help"], capture_output=True, text=True, timeout=30,
                       env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    body = r.stdout.split("Commands:\n", 1)[1].split("\nGlobal flags:", 1)[0]
    cmds = []
    for ln in body.splitlines():
        if ln.startswith("  ") and not ln.startswith("    ") and ln.strip():
            words = []
            for w in ln.split():
                if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", w):
                    break
                words.append(w)
            cmds.append(words)
    return cmds


# ---- bash ----


def test_bash_top_level_words(bash_script, tmp_path):
    got = bash_complete(bash_script, "aigwctl ", tmp_path)
    firsts = []
    for words in _help_commands(tmp_path):
        if words and words[0] not in firsts:
            firsts.append(words[0])
    assert sorted(got) == sorted(firsts)
    for w in ("service", "route", "consumer", "plugin", "jwt", "status", "config", "api"):
        assert w in got
    assert not any(w.startswith("__") for w in got), got  # hidden commands stay hidden
    assert bash_complete(bash_script, "aigwctl ser", tmp_path) == ["service"]
    assert sorted(bash_complete(bash_script, "aigwctl co", tmp_path)) == \
        sorted(w for w in firsts if w.startswith("co"))


def test_bash_subcommands(bash_script, tmp_path):
    got = bash_complete(bash_script, "aigwctl service ", tmp_path)
    assert sorted(got) == ["create", "delete", "get", "list", "update", "upsert"]
    assert bash_complete(bash_script, "aigwctl service up", tmp_path) == ["update", "upsert"]
    # Global flags before the command words do not change the tree.
    assert bash_complete(bash_script, "aigwctl -o json --timeout 3 service cr", tmp_path) == ["create"]
    assert "mint" in bash_complete(bash_script, "aigwctl jwt ", tmp_path)
    # A whole command does not offer command words again.
    assert "create" not in bash_complete(bash_script, "aigwctl service get x ", tmp_path)


def test_bash_flags_of_route_create(bash_script, tmp_path):
    got = bash_complete(bash_script, "aigwctl route create --", tmp_path)
    for f in ("--service", "--paths", "--hosts", "--methods", "--name", "--tags",
              "--admin-url", "--output", "--help"):
        assert f in got, (f, got)
    assert "--url" not in got  # a service's flag, not a route's
    assert bash_complete(bash_script, "aigwctl route create --pa", tmp_path) == ["--paths"]
    # Only global flags before a command is complete.
    top = bash_complete(bash_script, "aigwctl --", tmp_path)
    assert "--admin-url" in top and "--paths" not in top


def test_bash_output_values(bash_script, tmp_path):
    assert sorted(bash_complete(bash_script, "aigwctl -o ", tmp_path)) == \
        ["ids", "json", "table", "yaml"]
    assert bash_complete(bash_script, "aigwctl service list --output y", tmp_path) == ["yaml"]
    assert bash_complete(bash_script, "aigwctl service list --output=j", tmp_path) == \
        ["--output=json"]
    # A valued flag's value is skipped when finding the command words.
    assert "create" in bash_complete(bash_script, "aigwctl -o json service ", tmp_path)


def test_bash_files_and_urls(bash_script, tmp_path):
    d = tmp_path / "cfgs"
    d.mkdir()
    (d / "kong.yaml").write_text("_format_version: '3.0'\n")
    (d / "kong.json").write_text("{}\n")
    got = bash_complete(bash_script, f"aigwctl config sync {d}/kong.", tmp_path)
    assert sorted(got) == [f"{d}/kong.json", f"{d}/kong.yaml"]
    # A URL is split at ':' by bash: the candidates are what follows the last ':' typed.
    got = bash_complete(bash_script, "aigwctl --admin-url http://127.0.0.1:80", tmp_path,
                        AIGW_ADMIN_URL="http://127.0.0.1:8055")
    assert sorted(got) == ["8000", "8001", "8055"]
    got = bash_complete(bash_script, "aigwctl --admin-url http", tmp_path)
    assert "http://127.0.0.1:8001" in got


def _mk(gw, path, **form):
    r = http("POST", gw.admin_url + path, data=form)
    assert r.status_code == 201, r.text
    return r.json()


def test_bash_live_names(bash_script, tmp_path, aigw):
    gw = aigw()
    _mk(gw, "/services", name="ai-orchestrator", url="http://127.0.0.1:5000")
    _mk(gw, "/services", name="ai-billing", url="http://127.0.0.1:5001")
    anon = _mk(gw, "/services", url="http://127.0.0.1:5002")  # no name: completed by id
    _mk(gw, "/consumers", username="ai-client")
    url = gw.admin_url
    got = bash_complete(bash_script, f"aigwctl --admin-url {url} service get ", tmp_path)
    assert sorted(got) == sorted(["ai-orchestrator", "ai-billing", anon["id"]])
    got = bash_complete(bash_script, f"aigwctl service get --admin-url {url} ai-o", tmp_path)
    assert got == ["ai-orchestrator"]
    got = bash_complete(bash_script, f"aigwctl --admin-url={url} route create --service ai-",
                        tmp_path)
    assert sorted(got) == ["ai-billing", "ai-orchestrator"]
    got = bash_complete(bash_script, "aigwctl jwt mint --consumer ", tmp_path, AIGW_ADMIN_URL=url)
    assert got == ["ai-client"]
    # Through a context of the contexts file.
    cfg = tmp_path / "cfg" / "aigw"
    cfg.mkdir(parents=True)
    (cfg / "aigwctl.conf").write_text(f"[context local]\nadmin-url = {url}\n\n"
                                      "[context prod]\nadmin-url = http://127.0.0.1:1\n")
    (cfg / "aigwctl.conf").chmod(0o600)
    assert sorted(bash_complete(bash_script, "aigwctl --context ", tmp_path)) == ["local", "prod"]
    got = bash_complete(bash_script, "aigwctl --context local consumer get ", tmp_path)
    assert got == ["ai-client"]
    # Plugin names the node has.
    got = bash_complete(bash_script, f"aigwctl --admin-url {url} plugin enable rate-", tmp_path)
    assert "rate-limiting" in got


# ---- __complete ----


def test_complete_is_silent_and_bounded(tmp_path):
    (closed,) = free_ports(1)
    r = subprocess.run([_aigwctl(), "--admin-url", f"http://{LOCAL}:{closed}", "__complete",
                        "service"], capture_output=True, text=True, timeout=20, env=_env(tmp_path))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # A node that accepts and never answers: given up after about 2 s, silently.
    s = socket.socket()
    s.bind((LOCAL, 0))
    s.listen(8)
    try:
        t0 = time.monotonic()
        r = subprocess.run([_aigwctl(), "--admin-url", f"http://{LOCAL}:{s.getsockname()[1]}",
                            "__complete", "consumer"], capture_output=True, text=True, timeout=20,
                           env=_env(tmp_path))
        took = time.monotonic() - t0
    finally:
        s.close()
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert 1.5 < took < 6, took
    # Static kinds need no node; an unknown kind prints nothing.
    r = subprocess.run([_aigwctl(), "__complete", "method"], capture_output=True, text=True,
                       timeout=20, env=_env(tmp_path))
    assert r.returncode == 0 and "GET" in r.stdout.split() and "PATCH" in r.stdout.split()
    r = subprocess.run([_aigwctl(), "__complete", "no-such-kind"], capture_output=True, text=True,
                       timeout=20, env=_env(tmp_path))
    assert (r.returncode, r.stdout) == (0, "")


# ---- zsh and fish ----


# Outside a completion widget zsh has no compadd: this replacement for the compsys functions
# the script calls prints what would be offered
# (the words of a _describe array, compadd -a's array, _files's request).
ZSH_COMPSYS = r"""
_describe() { local -a arr; arr=("${(@P)${@[-1]}}"); print -l -- "${arr[@]%%:*}" }
_wanted() { shift 3; "$@" }
compadd() { [[ $1 == -a ]] && print -l -- "${(@P)2}" }
_files() { print -- "<files $*>" }
_message() { : }
compset() { : }
words=("${(@s: :)LINE}")
CURRENT=${#words}
source $SCRIPT
"""


def test_zsh_script(tmp_path, aigw):
    zsh = shutil.which("zsh")
    if not zsh:
        pytest.skip("zsh is not installed")
    p = tmp_path / "_aigwctl"
    p.write_text(_gen("zsh", tmp_path))
    assert p.read_text().startswith("#compdef aigwctl\n")
    r = subprocess.run([zsh, "-n", str(p)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    compsys = tmp_path / "compsys.zsh"
    compsys.write_text(ZSH_COMPSYS)

    def zsh_complete(line, **env):
        r = subprocess.run([zsh, "-f", str(compsys)], capture_output=True, text=True, timeout=30,
                           env=_env(tmp_path, LINE=line, SCRIPT=str(p), **env))
        assert r.returncode == 0 and r.stderr == "", r.stderr
        return r.stdout.split()

    top = zsh_complete("aigwctl ")
    assert "service" in top and "config" in top and "__gen" not in top
    assert sorted(zsh_complete("aigwctl service ")) == \
        ["create", "delete", "get", "list", "update", "upsert"]
    flags = zsh_complete("aigwctl route create --")
    assert "--paths" in flags and "--service" in flags and "--output" in flags
    assert sorted(zsh_complete("aigwctl -o ")) == ["ids", "json", "table", "yaml"]
    assert zsh_complete("aigwctl config sync ") == ["<files", ">"]
    gw = aigw()
    _mk(gw, "/services", name="ai-orchestrator", url="http://127.0.0.1:5000")
    assert zsh_complete(f"aigwctl --admin-url {gw.admin_url} service get ") == ["ai-orchestrator"]
    assert zsh_complete("aigwctl service get ", AIGW_ADMIN_URL=gw.admin_url) == ["ai-orchestrator"]
    assert "PATCH" in zsh_complete("aigwctl api ")


def test_fish_script(tmp_path, aigw):
    fish = shutil.which("fish")
    if not fish:
        pytest.skip("fish is not installed")
    p = tmp_path / "aigwctl.fish"
    p.write_text(_gen("fish", tmp_path))
    r = subprocess.run([fish, "-n", str(p)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    gw = aigw()
    _mk(gw, "/services", name="ai-orchestrator", url="http://127.0.0.1:5000")

    def fish_complete(line, **env):
        cmd = f"source {shlex.quote(str(p))}; complete -C {shlex.quote(line)}"
        r = subprocess.run([fish, "--no-config", "-c", cmd], capture_output=True, text=True,
                           timeout=60, env=_env(tmp_path, **env))
        assert r.returncode == 0, r.stderr
        return [ln.split("\t")[0] for ln in r.stdout.splitlines() if ln]

    top = fish_complete("aigwctl ")
    assert "service" in top and "route" in top and "__gen" not in top
    assert sorted(fish_complete("aigwctl service ")) == \
        ["create", "delete", "get", "list", "update", "upsert"]
    flags = fish_complete("aigwctl route create --")
    assert "--paths" in flags and "--service" in flags and "--admin-url" in flags
    assert sorted(fish_complete("aigwctl service list -o ")) == ["ids", "json", "table", "yaml"]
    got = fish_complete(f"aigwctl --admin-url {gw.admin_url} service get ")
    assert got == ["ai-orchestrator"]
    # With no connection flag typed (static kinds, and the environment's admin URL).
    assert sorted(fish_complete("aigwctl api P")) == ["PATCH", "POST", "PUT"]
    assert fish_complete("aigwctl schema show ser") == ["service"]
    assert fish_complete("aigwctl service get ai", AIGW_ADMIN_URL=gw.admin_url) == \
        ["ai-orchestrator"]


# ---- the man page ----


def test_man_page_lint_and_content(tmp_path):
    text = _gen("man", tmp_path)
    p = tmp_path / "aigwctl.1"
    p.write_text(text)
    mandoc = shutil.which("mandoc")
    if not mandoc:
        pytest.skip("mandoc is not installed")
    r = subprocess.run([mandoc, "-Tlint", "-W", "warning", str(p)], capture_output=True,
                       text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = subprocess.run([mandoc, "-Tascii", str(p)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, MANWIDTH="200"))
    assert r.returncode == 0
    page = re.sub(r".\x08", "", r.stdout)
    for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "GLOBAL FLAGS", "ENVIRONMENT",
                "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{sec}$", page, re.M), sec
    flat = " ".join(page.split())
    # Every command of --help, and no hidden one.
    for words in _help_commands(tmp_path):
        assert "aigwctl " + " ".join(words) in flat, words
    assert "__gen" not in flat and "__complete" not in flat
    for env in ("AIGW_ADMIN_URL", "AIGW_PROXY_URL", "AIGW_CONTEXT", "NO_COLOR",
                "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        assert env in flat, env
    for ex in ("aigwctl service create ai-orchestrator --url http://127.0.0.1:5000",
               "aigwctl route create --service ai-orchestrator --paths /ai-workflow",
               "aigwctl plugin enable jwt --service ai-orchestrator",
               "TOKEN=$(aigwctl jwt mint --consumer ai-client)",
               "aigwctl acl add --consumer ai-client --group ai-operator",
               "--expect 200=60,429=5"):
        assert ex in flat, ex
    assert "aigw.conf(5)" in flat and "aigwd(8)" in flat
    # Deterministic.
    assert _gen("man", tmp_path) == text


def test_man_examples_parse(tmp_path):
    """Every aigwctl line of EXAMPLES names a command of the table with flags it accepts."""
    text = _gen("man", tmp_path)
    ex = text.split(".Sh EXAMPLES\n", 1)[1].split(".Sh ", 1)[0]
    lines = []
    for block in re.findall(r"\.Bd -literal -offset indent\n(.*?)\n\.Ed", ex, re.S):
        block = block.replace("\\e\n", " ")
        lines += [ln for ln in block.splitlines() if "aigwctl " in ln]
    assert len(lines) >= 10
    firsts = {w[0] for w in _help_commands(tmp_path)}
    missing = []
    for ln in lines:
        m = re.search(r"aigwctl ([^)]*)", ln)
        argv = shlex.split(m.group(1))
        if argv[0] not in firsts:
            missing.append(argv[0])
            continue
        r = subprocess.run([_aigwctl()] + argv + ["--help"], capture_output=True, text=True,
                           timeout=20, env=_env(tmp_path))
        assert r.returncode == 0 and r.stdout.startswith("Usage: aigwctl "), (ln, r.stderr)
    if missing:
        pytest.skip(f"commands of the examples not in the table yet: {sorted(set(missing))}")
