"""Node's jsonwebtoken for the e2e tests, as seed tutorial 000 mints tokens: installed from the
npm registry once into the build directory (scripts/install-deps installs Node.js and npm); a
failed install fails the tests that need it, it never skips them."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

NODE_DIR = None


def node_env():
    """jsonwebtoken from the npm registry, installed once into the build directory."""
    global NODE_DIR
    if NODE_DIR:
        return NODE_DIR
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are required (scripts/install-deps installs them)",
                    pytrace=False)
    base = Path(os.environ.get("AIGWD_BIN", "build/aigwd")).resolve().parent / "e2e-jwt-node"
    base.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "jwt_node" / "package.json", base / "package.json")
    shutil.copy(HERE / "jwt_node" / "mint.js", base / "mint.js")
    if not (base / "node_modules" / "jsonwebtoken" / "package.json").exists():
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(base)],
                           cwd=str(base), capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            pytest.fail("npm install jsonwebtoken failed (%d):\n%s\n%s" %
                        (r.returncode, r.stdout[-2000:], r.stderr[-2000:]), pytrace=False)
    NODE_DIR = base
    return base


def node_mint(payload, secret, options):
    base = node_env()
    r = subprocess.run(["node", str(base / "mint.js"), json.dumps(payload), secret,
                        json.dumps(options)], cwd=str(base), capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()
