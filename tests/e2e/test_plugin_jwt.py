"""The jwt plugin at the proxy (Kong 3.9 kong/plugins/jwt, reference/plugins.md "jwt").

Everything is created through the admin API as the seed tutorials do (service, route, plugin,
consumer, POST /consumers/{c}/jwt). Tokens are minted by PyJWT 2.6 (Debian python3-jwt, the
seed 001 way) and by Node's jsonwebtoken (the seed 000 way), installed here from the npm
registry into the build directory: when that install fails the Node cases fail, they are not
skipped. Keys are generated with python3-cryptography.

What a user sees is asserted: status, body (Kong's exit JSON), Content-Type and
WWW-Authenticate; on success the headers the upstream receives (X-Consumer-ID,
X-Consumer-Username, X-Credential-Identifier = the jwt secret's key)."""
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt as pyjwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from aigwtest import http, wait_until
from jwtnode import node_mint
from upstreams import Upstream

JSON_CT = "application/json; charset=utf-8"
HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# fixtures and helpers


_gw = [None]
_up_port = [None]


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    _up_port[0] = u.port
    yield u
    u.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    g = aigw_module()
    _gw[0] = g
    return g


def admin(gw, method, path, **kw):
    r = requests.request(method, gw.admin_url + path, timeout=10, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header, claims, sig=b"sig"):
    """A token from raw parts: dicts are JSON-encoded, str/bytes taken as they are."""
    def part(x):
        return b64u(json.dumps(x, separators=(",", ":"))) if isinstance(x, (dict, list)) \
            else b64u(x)
    return "%s.%s.%s" % (part(header), part(claims), b64u(sig) if isinstance(sig, bytes) else sig)


def pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def hdr(body, name):
    vals = [v for k, v in body["headers"] if k.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (vals or None)


NOW = int(time.time())


class World:
    """The entities of this file, created once."""


@pytest.fixture(scope="module")
def w(gw, up):
    s = World()
    s.gw = gw
    url = "http://127.0.0.1:%d" % up.port
    admin(gw, "POST", "/services", data={"name": "jwt-svc", "url": url})

    def route(path, config=None, name=None):
        r = admin(gw, "POST", "/services/jwt-svc/routes",
                  json={"name": name or path.strip("/"), "paths": [path]})
        body = {"name": "jwt"}
        if config is not None:
            body["config"] = config
        admin(gw, "POST", "/routes/%s/plugins" % r["id"], json=body)
        return r

    route("/jwt")
    route("/strict", {"consumer_fallback": False})
    route("/claims", {"claims_to_verify": ["exp"], "maximum_expiration": 3600})
    route("/nbfclaim", {"claims_to_verify": ["nbf"]})
    route("/realm", {"realm": "kong"})
    route("/sources", {"uri_param_names": ["jwt", "token"], "cookie_names": ["jwt_c"],
                       "header_names": ["authorization", "x-jwt"]})
    route("/preflight", {"run_on_preflight": False})
    route("/anon", {"anonymous": "anon"})
    route("/b64", {"secret_is_base64": True})
    route("/kidclaim", {"key_claim_name": "kid"})

    admin(gw, "POST", "/consumers", data={"username": "anon"})
    s.alice = admin(gw, "POST", "/consumers", data={"username": "alice", "custom_id": "a-1"})
    s.alice_cred = admin(gw, "POST", "/consumers/alice/jwt",
                         data={"key": "alice-key", "secret": "alice-secret"})
    # One consumer with a credential per asymmetric algorithm and HS384/HS512.
    s.multi = admin(gw, "POST", "/consumers", data={"username": "multi"})
    s.keys = {}
    s.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    s.rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                "ES512", "EdDSA"]:
        if alg[:2] in ("RS", "PS"):
            k = s.rsa
        elif alg == "EdDSA":
            k = ed25519.Ed25519PrivateKey.generate()
        else:
            k = ec.generate_private_key(curves[alg])
        s.keys[alg] = k
        admin(gw, "POST", "/consumers/multi/jwt",
              data={"key": "multi-" + alg, "algorithm": alg, "rsa_public_key": pem_public(k)})
    for alg in ["HS384", "HS512"]:
        admin(gw, "POST", "/consumers/multi/jwt",
              data={"key": "multi-" + alg, "algorithm": alg, "secret": "multi-secret-" + alg})
    # Two credentials: the username fallback does not apply.
    admin(gw, "POST", "/consumers", data={"username": "dave"})
    admin(gw, "POST", "/consumers/dave/jwt", data={"key": "dave-1", "secret": "d1"})
    admin(gw, "POST", "/consumers/dave/jwt", data={"key": "dave-2", "secret": "d2"})
    # secret_is_base64: a base64url secret, and one with the standard alphabet's '+' '/'.
    s.erin_secret = b"\x00binary\xff secret"
    admin(gw, "POST", "/consumers", data={"username": "erin"})
    admin(gw, "POST", "/consumers/erin/jwt",
          data={"key": "erin-key", "secret": b64u(s.erin_secret)})
    admin(gw, "POST", "/consumers", data={"username": "frank"})
    admin(gw, "POST", "/consumers/frank/jwt", data={"key": "frank-key", "secret": "ab+c/def"})
    # ES256 credential without a public key (Kong's schema does not require one for ES*).
    admin(gw, "POST", "/consumers", data={"username": "gina"})
    admin(gw, "POST", "/consumers/gina/jwt", data={"key": "gina-key", "algorithm": "ES256"})

    ok = pyjwt.encode({"iss": "alice-key"}, "alice-secret", algorithm="HS256")
    wait_until(lambda: call("/strict", ok).status_code == 200, 10, what="jwt config loaded")
    # The last entity created is visible too.
    tok = pyjwt.encode({"iss": "gina-key"}, "x", algorithm="HS256")
    wait_until(lambda: call("/strict", tok).json().get("message") == "Invalid algorithm", 10,
               what="last credential loaded")
    s.gw = gw
    return s


def call(path, token=None, method="GET", headers=None, **kw):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    return http(method, _gw[0].proxy_url + path, headers=h, **kw)


def ok(r, username, cred_key, consumer_id=None):
    assert r.status_code == 200, (r.status_code, r.text, r.headers)
    b = r.json()
    assert hdr(b, "X-Consumer-Username") == username
    assert hdr(b, "X-Credential-Identifier") == cred_key
    if consumer_id:
        assert hdr(b, "X-Consumer-ID") == consumer_id
    assert hdr(b, "X-Anonymous-Consumer") is None
    return b


def denied(r, body, www="Bearer error=\"invalid_token\""):
    assert r.status_code == 401, (r.status_code, r.text)
    if isinstance(body, str):
        body = {"message": body}
    assert r.json() == body, r.text
    assert r.headers.get("Content-Type") == JSON_CT
    assert r.headers.get("WWW-Authenticate") == www
    # Kong's exit JSON: compact, no request_id.
    assert r.text == json.dumps(body, separators=(",", ":")), r.text


def hs(claims, secret="alice-secret", alg="HS256", headers=None):
    return pyjwt.encode(claims, secret, algorithm=alg, headers=headers)


# --------------------------------------------------------------------------------------------
# success


def test_hs256_pyjwt_sets_consumer_headers(w):
    tok = hs({"iss": "alice-key", "exp": NOW + 600, "nbf": NOW - 10})
    r = call("/jwt", tok, headers={"X-Consumer-Username": "mallory",
                                   "X-Credential-Identifier": "forged",
                                   "X-Anonymous-Consumer": "true"})
    b = ok(r, "alice", "alice-key", w.alice["id"])
    assert hdr(b, "X-Consumer-Custom-ID") == "a-1"
    # The token itself reaches the upstream (jwt has no hide_credentials).
    assert hdr(b, "Authorization") == "Bearer " + tok


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_hs384_hs512(w, alg):
    ok(call("/jwt", hs({"iss": "multi-" + alg}, "multi-secret-" + alg, alg)), "multi",
       "multi-" + alg)


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                                 "ES384", "ES512", "EdDSA"])
def test_asymmetric_pyjwt(w, alg):
    tok = pyjwt.encode({"iss": "multi-" + alg, "exp": NOW + 600}, w.keys[alg], algorithm=alg)
    ok(call("/jwt", tok), "multi", "multi-" + alg, w.multi["id"])
    # The same token with a flipped signature byte is refused.
    head, claims, sig = tok.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 1
    denied(call("/jwt", "%s.%s.%s" % (head, claims, b64u(bytes(raw)))), "Invalid signature")


def test_token_sources(w):
    tok = hs({"iss": "alice-key"})
    ok(call("/sources?token=" + tok), "alice", "alice-key")
    ok(call("/sources?jwt=" + tok), "alice", "alice-key")
    ok(call("/sources", headers={"Cookie": "a=b; jwt_c=" + tok + "; c=d"}), "alice", "alice-key")
    ok(call("/sources", headers={"X-JWT": "Bearer " + tok}), "alice", "alice-key")
    # The same token from several places is one token.
    ok(call("/sources?jwt=%s&token=%s" % (tok, tok), tok,
            headers={"X-JWT": "Bearer " + tok, "Cookie": "jwt_c=" + tok}), "alice", "alice-key")
    # Kong's regex: [Bb]earer, any whitespace, unanchored.
    ok(call("/jwt", headers={"Authorization": "bearer " + tok}), "alice", "alice-key")
    ok(call("/jwt", headers={"Authorization": "Bearer \t  " + tok}), "alice", "alice-key")
    # Not a configured source: ignored.
    denied(call("/jwt?token=" + tok), "Unauthorized", "Bearer")
    denied(call("/jwt", headers={"Cookie": "jwt_c=" + tok}), "Unauthorized", "Bearer")


def test_key_claim_from_jose_header(w):
    # key_claim_name=kid, absent from the claims: read from the JOSE header (Kong).
    tok = hs({"sub": "x"}, headers={"kid": "alice-key"})
    ok(call("/kidclaim", tok), "alice", "alice-key")
    denied(call("/kidclaim", hs({"sub": "x"})), "No mandatory 'kid' in claims")


def test_claims_ok(w):
    ok(call("/claims", hs({"iss": "alice-key", "exp": NOW + 1800})), "alice", "alice-key")
    ok(call("/nbfclaim", hs({"iss": "alice-key", "nbf": NOW - 5})), "alice", "alice-key")


def test_verified_token_cache_rechecks_time_and_config(w):
    """A token that passed is remembered per worker; its exp is checked again on every
    request and a config change (the credential deleted) ends what was remembered."""
    admin(w.gw, "POST", "/consumers", data={"username": "ivan"})
    cred = admin(w.gw, "POST", "/consumers/ivan/jwt", data={"key": "ivan-key", "secret": "h"})
    wait_until(lambda: call("/jwt", hs({"iss": "ivan-key"}, "h")).status_code == 200, 10,
               what="ivan's credential loaded")
    exp = int(time.time()) + 3
    short = hs({"iss": "ivan-key", "exp": exp}, "h")
    lasting = hs({"iss": "ivan-key"}, "h")
    for _ in range(8):   # every worker sees both tokens, twice
        ok(call("/jwt", short), "ivan", "ivan-key")
        ok(call("/jwt", lasting), "ivan", "ivan-key")
    wait_until(lambda: time.time() > exp + 1, 6, what="the short token's exp")
    for _ in range(8):
        denied(call("/jwt", short), {"exp": "token expired"})
    admin(w.gw, "DELETE", "/consumers/ivan/jwt/" + cred["id"])
    wait_until(lambda: call("/jwt", lasting).status_code == 401, 10, what="credential deleted")
    for _ in range(8):
        denied(call("/jwt", lasting), "No credentials found for given 'iss'")


def test_run_on_preflight_false(w):
    r = call("/preflight", method="OPTIONS")
    assert r.status_code == 200, r.text
    assert hdr(r.json(), "X-Consumer-Username") is None
    denied(call("/preflight"), "Unauthorized", "Bearer")
    # Default run_on_preflight=true: OPTIONS is authenticated.
    denied(call("/jwt", method="OPTIONS"), "Unauthorized", "Bearer")


def test_anonymous(w):
    r = call("/anon")
    assert r.status_code == 200, r.text
    b = r.json()
    assert hdr(b, "X-Consumer-Username") == "anon"
    assert hdr(b, "X-Anonymous-Consumer") == "true"
    assert hdr(b, "X-Credential-Identifier") is None
    r = call("/anon", hs({"iss": "alice-key"}, "wrong"))
    assert r.status_code == 200 and hdr(r.json(), "X-Consumer-Username") == "anon"
    ok(call("/anon", hs({"iss": "alice-key"})), "alice", "alice-key")


def test_secret_is_base64(w):
    ok(call("/b64", hs({"iss": "erin-key"}, w.erin_secret)), "erin", "erin-key")
    denied(call("/b64", hs({"iss": "erin-key"}, b64u(w.erin_secret))), "Invalid signature")
    # Kong decodes the secret as base64url: '+' and '/' make it invalid.
    denied(call("/b64", hs({"iss": "frank-key"}, "x")), "Invalid key/secret")
    # Without secret_is_base64 the stored text is the secret.
    ok(call("/jwt", hs({"iss": "erin-key"}, b64u(w.erin_secret))), "erin", "erin-key")


# --------------------------------------------------------------------------------------------
# the seed tutorials


@pytest.fixture(scope="module")
def seed000(w):
    """Seed 000: consumer ai-client-app, POST /consumers/ai-client-app/jwt (auto key and
    secret), the plugin on the service."""
    gw = w.gw
    admin(gw, "POST", "/services", data={"name": "ai-orchestrator",
                                         "url": "http://127.0.0.1:%d" % up_port(gw)})
    admin(gw, "POST", "/services/ai-orchestrator/routes", data={"paths[]": "/ai-workflow"})
    admin(gw, "POST", "/services/ai-orchestrator/plugins", data={"name": "jwt"})
    admin(gw, "POST", "/consumers", data={"username": "ai-client-app"})
    cred = admin(gw, "POST", "/consumers/ai-client-app/jwt")
    admin(gw, "POST", "/routes", json={"name": "ai-workflow-strict",
                                       "service": {"name": "ai-orchestrator"},
                                       "paths": ["/ai-workflow-strict"]})
    admin(gw, "POST", "/routes/ai-workflow-strict/plugins",
          json={"name": "jwt", "config": {"consumer_fallback": False}})
    wait_until(lambda: call("/ai-workflow-strict/health").status_code == 401, 10,
               what="seed 000 routes")
    return cred


def up_port(gw):
    return _up_port[0]


def test_seed000_node_jsonwebtoken(w, seed000):
    # const token = jwt.sign(payload, 'YOUR_JWT_SECRET',
    #                        { algorithm: 'HS256', keyid: 'YOUR_JWT_KEY' });
    tok = node_mint({"iss": "ai-client-app", "sub": "ai-client-app"}, seed000["secret"],
                    {"algorithm": "HS256", "keyid": seed000["key"], "seed_exp": True})
    assert json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))["kid"] == seed000["key"]
    # "You should receive a 200 OK response."
    ok(call("/ai-workflow/health", tok), "ai-client-app", seed000["key"])
    # "Without the JWT, you'll get 401 Unauthorized."
    denied(call("/ai-workflow/health"), "Unauthorized", "Bearer")
    # Kong's strict lookup: iss is not a credential key.
    denied(call("/ai-workflow-strict/health", tok), "No credentials found for given 'iss'")
    # The kid fallback still verifies with that credential's secret.
    bad = node_mint({"iss": "ai-client-app"}, "not-the-secret",
                    {"algorithm": "HS256", "keyid": seed000["key"]})
    denied(call("/ai-workflow/health", bad), "Invalid signature")
    # And with its algorithm.
    bad = node_mint({"iss": "ai-client-app"}, seed000["secret"],
                    {"algorithm": "HS512", "keyid": seed000["key"]})
    denied(call("/ai-workflow/health", bad), "Invalid algorithm")


def test_node_jsonwebtoken_rs256(w):
    tok = node_mint({"iss": "multi-RS256"}, pem_private(w.rsa), {"algorithm": "RS256"})
    ok(call("/jwt", tok), "multi", "multi-RS256")
    tok = node_mint({"iss": "multi-ES256"}, pem_private(w.keys["ES256"]), {"algorithm": "ES256"})
    ok(call("/jwt", tok), "multi", "multi-ES256")


@pytest.fixture(scope="module")
def seed001(w):
    """Seed 001: consumer ai-client with an HS256 credential whose secret is supersecretkey."""
    gw = w.gw
    admin(gw, "POST", "/consumers", data={"username": "ai-client"})
    cred = admin(gw, "POST", "/consumers/ai-client/jwt",
                 data={"algorithm": "HS256", "secret": "supersecretkey"})
    tok = pyjwt.encode({"iss": "ai-client"}, "supersecretkey", algorithm="HS256")
    wait_until(lambda: call("/jwt", tok).status_code == 200, 10, what="seed 001 consumer")
    return cred


def test_seed001_pyjwt(w, seed001):
    now = int(time.time())
    payload = {"iss": "ai-client", "iat": now, "exp": now + 3600}
    tok = pyjwt.encode(payload, "supersecretkey", algorithm="HS256")
    # The credential found through the username: its auto-generated key is the identifier.
    ok(call("/jwt", tok), "ai-client", seed001["key"])
    denied(call("/strict", tok), "No credentials found for given 'iss'")
    # "Kong will reject unauthorized or expired tokens."
    expired = pyjwt.encode({"iss": "ai-client", "iat": now - 7200, "exp": now - 3600},
                           "supersecretkey", algorithm="HS256")
    denied(call("/jwt", expired), {"exp": "token expired"})
    denied(call("/jwt", pyjwt.encode(payload, "wrong", algorithm="HS256")), "Invalid signature")


# --------------------------------------------------------------------------------------------
# the negative suite: (name, path, request kwargs or token, expected body, WWW-Authenticate)

E = 'Bearer error="invalid_token"'
ALICE = {"iss": "alice-key"}


def _rsa_pem_as_hmac(w):
    # The HS/RS confusion: HS256 with the RSA credential's public PEM as the HMAC secret
    # (PyJWT refuses to do this, so the token is made by hand).
    return _hmac_token({"iss": "multi-RS256"}, pem_public(w.rsa).encode())


def _hmac_token(claims, secret, alg="HS256"):
    h = b64u(json.dumps({"alg": alg, "typ": "JWT"}))
    c = b64u(json.dumps(claims))
    sig = hmac.new(secret, ("%s.%s" % (h, c)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (h, c, b64u(sig))


NEGATIVE = [
    ("no token", "/jwt", {}, "Unauthorized", "Bearer"),
    ("basic scheme", "/jwt", {"headers": {"Authorization": "Basic YWxpY2U6eA=="}},
     "Unauthorized", "Bearer"),
    ("bearer without token", "/jwt", {"headers": {"Authorization": "Bearer "}},
     "Unauthorized", "Bearer"),
    ("BEARER upper case", "/jwt", {"headers": {"Authorization": "BEARER x.y.z"}},
     "Unauthorized", "Bearer"),
    ("empty query token", "/jwt?jwt=", {}, "Unauthorized", "Bearer"),
    ("query flag without value", "/jwt?jwt", {}, "Unrecognizable token", E),
    ("multiple tokens", "/jwt?jwt=a.b.c", {"token": lambda w: hs(ALICE)},
     "Multiple tokens provided", E),
    ("multiple query values", "/jwt?jwt=a.b.c&jwt=d.e.f", {}, "Multiple tokens provided", E),
    ("bad base64 header", "/jwt", {"token": "!!!.e30.c2ln"}, "Bad token; invalid JSON", E),
    ("bad base64 claims", "/jwt", {"token": b64u('{"alg":"HS256"}') + ".e3+.c2ln"},
     "Bad token; invalid JSON", E),
    ("bad JSON header", "/jwt", {"token": raw_token('{"alg":"HS256"', ALICE)},
     "Bad token; invalid JSON", E),
    ("bad JSON claims", "/jwt", {"token": raw_token({"alg": "HS256"}, '{"iss":')},
     "Bad token; invalid JSON", E),
    ("one part", "/jwt", {"token": "abc"}, "Bad token; invalid JSON", E),
    ("two parts", "/jwt", {"token": b64u('{"alg":"HS256"}') + "." + b64u('{"iss":"a"}')},
     "Bad token; invalid JSON", E),
    ("alg none", "/jwt", {"token": raw_token({"alg": "none", "typ": "JWT"}, ALICE, "")},
     "Bad token; invalid alg", E),
    ("alg missing", "/jwt", {"token": raw_token({"typ": "JWT"}, ALICE)},
     "Bad token; invalid alg", E),
    ("alg lower case", "/jwt", {"token": raw_token({"alg": "hs256"}, ALICE)},
     "Bad token; invalid alg", E),
    ("alg not a string", "/jwt", {"token": raw_token({"alg": 256}, ALICE)},
     "Bad token; invalid alg", E),
    ("claims not an object", "/jwt", {"token": raw_token({"alg": "HS256"}, "123")},
     "Bad token; invalid claims", E),
    ("signature not base64url", "/jwt", {"token": raw_token({"alg": "HS256"}, ALICE, "c2l+")},
     "Bad token; invalid signature", E),
    ("four parts", "/jwt", {"token": raw_token({"alg": "HS256"}, ALICE, "c2ln.c2ln")},
     "Bad token; invalid signature", E),
    ("missing iss", "/jwt", {"token": lambda w: hs({"sub": "alice"})},
     "No mandatory 'iss' in claims", E),
    ("empty iss", "/jwt", {"token": lambda w: hs({"iss": ""})}, "Invalid 'iss' in claims", E),
    ("numeric iss", "/jwt", {"token": lambda w: hs({"iss": 42})},
     "No credentials found for given 'iss'", E),
    ("unknown key", "/jwt", {"token": lambda w: hs({"iss": "nobody"})},
     "No credentials found for given 'iss'", E),
    ("username of a consumer with two credentials", "/jwt",
     {"token": lambda w: hs({"iss": "dave"}, "d1")}, "No credentials found for given 'iss'", E),
    ("kid fallback off", "/strict",
     {"token": lambda w: hs({"iss": "alice"}, headers={"kid": "alice-key"})},
     "No credentials found for given 'iss'", E),
    ("username fallback off", "/strict", {"token": lambda w: hs({"iss": "alice"})},
     "No credentials found for given 'iss'", E),
    ("wrong secret", "/jwt", {"token": lambda w: hs(ALICE, "not-alice-secret")},
     "Invalid signature", E),
    ("empty signature", "/jwt", {"token": lambda w: hs(ALICE).rsplit(".", 1)[0] + "."},
     "Invalid signature", E),
    ("other HS alg than the credential", "/jwt", {"token": lambda w: hs(ALICE, alg="HS384")},
     "Invalid algorithm", E),
    ("RS token for an HS credential", "/jwt",
     {"token": lambda w: pyjwt.encode(ALICE, w.rsa, algorithm="RS256")}, "Invalid algorithm", E),
    ("HS256 signed with the RSA public key", "/jwt", {"token": _rsa_pem_as_hmac},
     "Invalid algorithm", E),
    ("RS256 signed by another key", "/jwt",
     {"token": lambda w: pyjwt.encode({"iss": "multi-RS256"}, w.rsa_other, algorithm="RS256")},
     "Invalid signature", E),
    ("RS256 token for the PS256 credential", "/jwt",
     {"token": lambda w: raw_token({"alg": "PS256"}, {"iss": "multi-PS256"},
                                   pyjwt.encode({"iss": "multi-PS256"}, w.rsa,
                                                algorithm="RS256").split(".")[2])},
     "Invalid signature", E),
    ("ES256 signature of the wrong length", "/jwt",
     {"token": lambda w: raw_token({"alg": "ES256"}, {"iss": "multi-ES256"}, b"\x01" * 63)},
     "Invalid signature", E),
    ("ES credential without a key", "/jwt",
     {"token": lambda w: raw_token({"alg": "ES256"}, {"iss": "gina-key"}, b"\x01" * 64)},
     "Invalid key/secret", E),
    ("expired", "/jwt", {"token": lambda w: hs({"iss": "alice-key", "exp": NOW - 10})},
     {"exp": "token expired"}, E),
    ("exp equal to now", "/jwt", {"token": lambda w: hs({"iss": "alice-key",
                                                         "exp": int(time.time())})},
     {"exp": "token expired"}, E),
    ("nbf in the future", "/jwt", {"token": lambda w: hs({"iss": "alice-key",
                                                          "nbf": NOW + 3600})},
     {"nbf": "token not valid yet"}, E),
    ("non-numeric exp", "/claims", {"token": lambda w: _hmac_token(
        {"iss": "alice-key", "exp": "tomorrow"}, b"alice-secret")},
     {"exp": "must be a number"}, E),
    ("non-numeric exp, not listed", "/jwt", {"token": lambda w: _hmac_token(
        {"iss": "alice-key", "exp": "tomorrow"}, b"alice-secret")},
     {"exp": "must be a number"}, E),
    ("exp missing but listed", "/claims", {"token": lambda w: hs(ALICE)},
     {"exp": "must be a number"}, E),
    ("nbf missing but listed", "/nbfclaim", {"token": lambda w: hs(ALICE)},
     {"nbf": "must be a number"}, E),
    ("maximum_expiration exceeded", "/claims",
     {"token": lambda w: hs({"iss": "alice-key", "exp": NOW + 7200})},
     {"exp": "exceeds maximum allowed expiration"}, E),
    ("huge token", "/jwt",
     {"token": lambda w: hs({"iss": "alice-key", "pad": "x" * 5000}, "wrong")},
     "Invalid signature", E),
    ("huge garbage token", "/jwt", {"token": "A" * 6000}, "Bad token; invalid JSON", E),
    ("realm, no token", "/realm", {}, "Unauthorized", 'Bearer realm="kong"'),
    ("realm, bad token", "/realm", {"token": "x.y"}, "Bad token; invalid JSON",
     'Bearer realm="kong" error="invalid_token"'),
    ("bad token in a cookie", "/sources", {"headers": {"Cookie": "jwt_c=abc"}},
     "Bad token; invalid JSON", E),
    ("token in cookie and header differ", "/sources",
     {"headers": {"Cookie": "jwt_c=abc", "X-JWT": "Bearer def"}}, "Multiple tokens provided", E),
]


@pytest.mark.parametrize("name,path,req,body,www", NEGATIVE, ids=[n[0] for n in NEGATIVE])
def test_negative(w, name, path, req, body, www):
    req = dict(req)
    tok = req.pop("token", None)
    if callable(tok):
        tok = tok(w)
    denied(call(path, tok, **req), body, www)


def test_negative_suite_is_large_enough():
    assert len(NEGATIVE) >= 25


def test_unparseable_public_key_is_a_server_error(w):
    # Kong's schema checks the PEM of RS/PS/EdDSA credentials only: an ES256 credential can
    # hold a key that does not parse. Kong's verifier asserts on it (a 500); so does aigw,
    # with Kong's error JSON (request_id), and the request does not reach the upstream.
    admin(w.gw, "POST", "/consumers", data={"username": "hank"})
    admin(w.gw, "POST", "/consumers/hank/jwt",
          data={"key": "hank-key", "algorithm": "ES256", "rsa_public_key": "not a key"})
    tok = raw_token({"alg": "ES256"}, {"iss": "hank-key"}, b"\x01" * 64)
    wait_until(lambda: call("/jwt", tok).status_code != 401, 10, what="hank loaded")
    r = call("/jwt", tok)
    assert r.status_code == 500, r.text
    b = r.json()
    assert b["message"] == "An unexpected error occurred"
    assert len(b["request_id"]) == 32
    assert r.headers.get("WWW-Authenticate") is None
