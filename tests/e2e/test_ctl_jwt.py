"""aigwctl jwt mint and jwt decode (issue 8 item 6) against a real aigwd.

The gateway is set up through the admin API (service -> echo upstream, route, jwt plugin,
consumers and jwt credentials); aigwctl mints tokens that the proxy must accept (the upstream
sees the consumer headers) and that PyJWT (Debian python3-jwt) verifies with the credential's
key; decode is checked on its JSON output. aigwctl is built with ASan/LSan in the debug build:
a sanitizer report on stderr fails the test."""
import json
import os
import subprocess
import time

import jwt as pyjwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aigwtest import aigwctl_bin, clean_env, find_sanitizer_report
from proxytest import admin, up  # noqa: F401 (up: a fixture)


class Ctl:
    def __init__(self, gw):
        self.env = clean_env({"AIGW_ADMIN_URL": gw.admin_url, "AIGW_PROXY_URL": gw.proxy_url,
                              "NO_COLOR": "1", "HOME": os.environ.get("HOME", "/tmp")})

    def __call__(self, *args, input=None, timeout=30):
        r = subprocess.run([aigwctl_bin(), *args], env=self.env, capture_output=True, text=True,
                           input=input, timeout=timeout)
        rep = find_sanitizer_report(r.stderr)
        assert rep is None, rep
        return r


@pytest.fixture(scope="module")
def rsa_keys():
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()
    pub = k.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return priv, pub


@pytest.fixture(scope="module")
def setup(aigw_module, up, rsa_keys):
    gw = aigw_module()
    admin(gw, "POST", "/services", json={"name": "ai-orchestrator",
                                          "url": f"http://127.0.0.1:{up.port}"})
    admin(gw, "POST", "/services/ai-orchestrator/routes", json={"name": "r1", "paths": ["/ai-workflow"]})
    admin(gw, "POST", "/routes/r1/plugins", json={"name": "jwt"})
    admin(gw, "POST", "/consumers", json={"username": "ai-client"})
    hs = admin(gw, "POST", "/consumers/ai-client/jwt", json={"algorithm": "HS256"})
    admin(gw, "POST", "/consumers", json={"username": "rs-client"})
    rs = admin(gw, "POST", "/consumers/rs-client/jwt",
               json={"algorithm": "RS256", "rsa_public_key": rsa_keys[1]})
    admin(gw, "POST", "/consumers", json={"username": "multi"})
    m1 = admin(gw, "POST", "/consumers/multi/jwt", json={"key": "multi-one"})
    m2 = admin(gw, "POST", "/consumers/multi/jwt", json={"key": "multi-two", "algorithm": "HS512"})
    admin(gw, "POST", "/consumers", json={"username": "nocred"})
    return {"gw": gw, "ctl": Ctl(gw), "hs": hs, "rs": rs, "m1": m1, "m2": m2}


def proxy_get(gw, token):
    return requests.get(gw.proxy_url + "/ai-workflow", headers={"Authorization": f"Bearer {token}"},
                        timeout=10)


def upstream_headers(resp):
    return {k.lower(): v for k, v in resp.json()["headers"]}


def test_mint_hs256_accepted_by_proxy_and_pyjwt(setup):
    ctl, gw, cred = setup["ctl"], setup["gw"], setup["hs"]
    r = ctl("jwt", "mint", "--consumer", "ai-client")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.endswith("\n") and r.stdout.count("\n") == 1
    token = r.stdout.strip()
    assert token.count(".") == 2
    claims = pyjwt.decode(token, cred["secret"], algorithms=["HS256"])
    assert claims["iss"] == cred["key"]
    assert claims["exp"] - claims["iat"] == 300
    assert abs(claims["iat"] - time.time()) < 30
    assert pyjwt.get_unverified_header(token)["alg"] == "HS256"
    p = proxy_get(gw, token)
    assert p.status_code == 200, p.text
    h = upstream_headers(p)
    assert h["x-consumer-username"] == "ai-client"
    assert h["x-credential-identifier"] == cred["key"]
    # The same command in the shell's $(...) form a user types.
    sh = subprocess.run(["/bin/sh", "-c", f'TOKEN=$("{aigwctl_bin()}" jwt mint --consumer ai-client) && '
                         'printf "%s" "$TOKEN"'], env=ctl.env, capture_output=True, text=True,
                        timeout=30)
    assert sh.returncode == 0 and sh.stdout.count(".") == 2 and "\n" not in sh.stdout


def test_mint_claims_ttl_headers(setup):
    ctl, cred = setup["ctl"], setup["hs"]
    r = ctl("jwt", "mint", "--consumer", "ai-client", "--ttl", "2h", "--claim", "role=operator",
            "--claim", "n=42", "--claim", "flag=true", "--claim", 'obj={"a":[1,2]}',
            "--claim", "word=hello world", "--header", "x-env=test", "--kid")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    claims = pyjwt.decode(token, cred["secret"], algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 7200
    assert claims["role"] == "operator" and claims["n"] == 42 and claims["flag"] is True
    assert claims["obj"] == {"a": [1, 2]} and claims["word"] == "hello world"
    hdr = pyjwt.get_unverified_header(token)
    assert hdr["kid"] == cred["key"] and hdr["x-env"] == "test"
    for ttl, secs in (("30s", 30), ("90", 90), ("1d", 86400), ("5m", 300)):
        t = ctl("jwt", "mint", "--consumer", "ai-client", "--ttl", ttl).stdout.strip()
        c = pyjwt.decode(t, cred["secret"], algorithms=["HS256"])
        assert c["exp"] - c["iat"] == secs, ttl
    bad = ctl("jwt", "mint", "--consumer", "ai-client", "--ttl", "soon")
    assert bad.returncode == 2 and "--ttl" in bad.stderr and bad.stdout == ""
    bad = ctl("jwt", "mint", "--consumer", "ai-client", "--claim", "novalue")
    assert bad.returncode == 2 and "--claim" in bad.stderr


def test_mint_rs256_with_private_key(setup, rsa_keys, tmp_path):
    ctl, gw, cred = setup["ctl"], setup["gw"], setup["rs"]
    keyfile = tmp_path / "priv.pem"
    keyfile.write_text(rsa_keys[0])
    r = ctl("jwt", "mint", "--consumer", "rs-client", "--private-key", str(keyfile))
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert pyjwt.get_unverified_header(token)["alg"] == "RS256"
    claims = pyjwt.decode(token, rsa_keys[1], algorithms=["RS256"])
    assert claims["iss"] == cred["key"]
    p = proxy_get(gw, token)
    assert p.status_code == 200, p.text
    assert upstream_headers(p)["x-consumer-username"] == "rs-client"
    # Without the private key: a usage error that says what to give.
    r = ctl("jwt", "mint", "--consumer", "rs-client")
    assert r.returncode == 2 and "--private-key" in r.stderr and r.stdout == ""
    # decode verifies with the PEM public key and with the consumer's rsa_public_key.
    pubfile = tmp_path / "pub.pem"
    pubfile.write_text(rsa_keys[1])
    d = ctl("jwt", "decode", token, "--public-key", str(pubfile), "-o", "json")
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout)["signature_valid"] is True
    d = ctl("jwt", "decode", token, "--consumer", "rs-client", "-o", "json")
    assert d.returncode == 0 and json.loads(d.stdout)["signature_valid"] is True
    # An RS256 token checked with a secret is refused, not HMAC-verified with the PEM.
    d = ctl("jwt", "decode", token, "--secret", rsa_keys[1], "-o", "json")
    assert d.returncode == 1 and json.loads(d.stdout)["signature_valid"] is False


def test_mint_es256(setup, tmp_path):
    ctl, gw = setup["ctl"], setup["gw"]
    k = ec.generate_private_key(ec.SECP256R1())
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()
    pub = k.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    admin(gw, "POST", "/consumers", json={"username": "es-client"})
    cred = admin(gw, "POST", "/consumers/es-client/jwt", json={"algorithm": "ES256", "rsa_public_key": pub})
    keyfile = tmp_path / "ec.pem"
    keyfile.write_text(priv)
    r = ctl("jwt", "mint", "--consumer", "es-client", "--private-key", str(keyfile))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    token = r.stdout.strip()
    assert pyjwt.decode(token, pub, algorithms=["ES256"])["iss"] == cred["key"]
    p = proxy_get(gw, token)
    assert p.status_code == 200, p.text
    assert upstream_headers(p)["x-consumer-username"] == "es-client"
    d = ctl("jwt", "decode", token, "--consumer", "es-client", "-o", "json")
    assert d.returncode == 0 and json.loads(d.stdout)["signature_valid"] is True


def test_mint_several_credentials_need_key(setup):
    ctl, m1, m2 = setup["ctl"], setup["m1"], setup["m2"]
    r = ctl("jwt", "mint", "--consumer", "multi")
    assert r.returncode == 2 and r.stdout == ""
    assert "--key" in r.stderr and "multi-one" in r.stderr and "multi-two" in r.stderr
    r = ctl("jwt", "mint", "--consumer", "multi", "--key", "multi-two")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    claims = pyjwt.decode(token, m2["secret"], algorithms=["HS512"])
    assert claims["iss"] == "multi-two"
    r = ctl("jwt", "mint", "--consumer", "multi", "--key", "nope")
    assert r.returncode == 1 and "nope" in r.stderr and "multi-one" in r.stderr
    assert m1["key"] == "multi-one"


def test_mint_consumer_without_credential_or_unknown(setup):
    ctl = setup["ctl"]
    r = ctl("jwt", "mint", "--consumer", "nocred")
    assert r.returncode == 1 and r.stdout == ""
    assert ("consumer nocred has no jwt credential; create one with: aigwctl jwt create "
            "--consumer nocred") in r.stderr
    r = ctl("jwt", "mint", "--consumer", "ghost")
    assert r.returncode == 1 and r.stdout == ""
    assert "404" in r.stderr
    r = ctl("jwt", "mint")
    assert r.returncode == 2 and "--consumer" in r.stderr


def test_decode_and_verify(setup):
    ctl, cred = setup["ctl"], setup["hs"]
    token = ctl("jwt", "mint", "--consumer", "ai-client", "--claim", "role=x").stdout.strip()
    # Not checked.
    d = ctl("jwt", "decode", token, "-o", "json")
    assert d.returncode == 0, d.stderr
    j = json.loads(d.stdout)
    assert j["signature_valid"] is None
    assert j["header"]["alg"] == "HS256"
    assert j["claims"]["iss"] == cred["key"] and j["claims"]["role"] == "x"
    assert j["expired"] is False
    # With the consumer's credential, fetched from the admin API.
    d = ctl("jwt", "decode", token, "--consumer", "ai-client", "-o", "json")
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout)["signature_valid"] is True
    # With the right and a wrong secret.
    d = ctl("jwt", "decode", token, "--secret", cred["secret"], "-o", "json")
    assert d.returncode == 0 and json.loads(d.stdout)["signature_valid"] is True
    d = ctl("jwt", "decode", token, "--secret", "wrong-secret", "-o", "json")
    assert d.returncode == 1
    assert json.loads(d.stdout)["signature_valid"] is False
    assert "does not verify" in d.stderr
    # Another consumer's credential does not verify it.
    d = ctl("jwt", "decode", token, "--consumer", "multi", "-o", "json")
    assert d.returncode == 1 and json.loads(d.stdout)["signature_valid"] is False
    # From stdin, with a pasted Bearer prefix.
    d = ctl("jwt", "decode", "-", "--consumer", "ai-client", "-o", "json",
            input=f"Bearer {token}\n")
    assert d.returncode == 0 and json.loads(d.stdout)["claims"]["role"] == "x"
    # The human form shows the dates and the verdict.
    d = ctl("jwt", "decode", token, "--consumer", "ai-client", "-o", "table")
    assert d.returncode == 0
    assert "UTC" in d.stdout and "valid for" in d.stdout and "Signature: valid" in d.stdout
    d = ctl("jwt", "decode", token, "-o", "table")
    assert "not checked" in d.stdout
    # Garbage.
    d = ctl("jwt", "decode", "not-a-token")
    assert d.returncode == 2 and "not a JWT" in d.stderr


def test_decode_expired(setup):
    ctl, gw = setup["ctl"], setup["gw"]
    past = int(time.time()) - 3600
    token = ctl("jwt", "mint", "--consumer", "ai-client", "--claim", f"exp={past}").stdout.strip()
    assert pyjwt.decode(token, options={"verify_signature": False})["exp"] == past
    d = ctl("jwt", "decode", token, "-o", "json")
    assert d.returncode == 0 and json.loads(d.stdout)["expired"] is True
    d = ctl("jwt", "decode", token, "--consumer", "ai-client", "-o", "json")
    j = json.loads(d.stdout)
    assert d.returncode == 1 and j["signature_valid"] is True and j["expired"] is True
    assert "expired" in d.stderr
    d = ctl("jwt", "decode", token, "-o", "table")
    assert "expired 1h" in d.stdout
    assert proxy_get(gw, token).status_code == 401


def test_loadtest_with_jwt_consumer(setup):
    ctl = setup["ctl"]
    r = ctl("loadtest", "--rps", "20", "--requests", "6", "--no-align", "--path", "/ai-workflow",
            "--jwt-consumer", "ai-client", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == {"200": 6}
    r = ctl("loadtest", "--rps", "20", "--requests", "3", "--no-align", "--path", "/ai-workflow",
            "-o", "json")
    assert json.loads(r.stdout)["status"] == {"401": 3}
