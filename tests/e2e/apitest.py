"""Helpers for the admin API suites (tests/e2e/test_api_*.py).

`gw` is a module-scoped fixture parametrised over both stores ("sqlite", "postgres"): every test
in a file that uses it runs once against an aigwd on the embedded SQLite store and once against
aigwd on a real PostgreSQL (a fresh database per module instance). Import it into a test module
with `from apitest import gw  # noqa: F401`.

`gw` is an Admin client: gw.get/post/put/patch/delete/options(path, **requests kwargs) -> Response
(JSON bodies with json=, curl-style form bodies with data=[(k, v), ...], multipart with files=),
gw.curl(method, path, *data) sends exactly what `curl -X METHOD --data a --data b` sends (raw,
unencoded body joined with '&', Content-Type application/x-www-form-urlencoded), gw.store is the
store name.
"""
import json
import re
import urllib.parse
import uuid as uuidlib

import pytest

from aigwtest import JSON_CT, UUID_RE, RawConn, http

__all__ = ["gw", "Admin", "uniq", "JSON_CT", "UUID_RE", "assert_json_ct", "is_int",
           "schema_violation", "PROTOCOLS_MSG", "page_all", "q"]

PROTOCOLS_MSG = "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"


def uniq(prefix="x"):
    """A name nobody else in this daemon uses (letters, digits and '-')."""
    return f"{prefix}-{uuidlib.uuid4().hex[:12]}"


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def assert_json_ct(r):
    assert r.headers.get("Content-Type") == JSON_CT, (r.status_code, r.headers, r.text[:300])


def schema_violation(fields, message):
    """Kong's full body for a schema violation (code 2)."""
    return {"code": 2, "name": "schema violation", "message": message, "fields": fields}


class CurlResponse:
    """What `curl -i` shows: status, headers, body; .json()."""

    def __init__(self, raw):
        self.status_code = raw.status
        self.headers = {k: v for k, v in raw.headers}
        self.content = raw.body
        self.text = raw.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.text)

    def __repr__(self):
        return f"<CurlResponse {self.status_code} {self.text[:400]!r}>"


class Admin:
    def __init__(self, inst, store):
        self.inst = inst
        self.store = store
        self.url = inst.admin_url
        self.port = inst.ports["admin"]

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 15)
        return http(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def options(self, path, **kw):
        return self.request("OPTIONS", path, **kw)

    def raw(self, method, path, headers=None, body=b""):
        """One request sent byte for byte as given (plus Host and Content-Length)."""
        with RawConn(self.port) as c:
            return CurlResponse(c.request(method, path, headers=headers, body=body,
                                          host=f"localhost:{self.port}"))

    def curl(self, method, path, *data):
        """`curl -i -X METHOD http://localhost:8001PATH --data d1 --data d2 ...` as curl 8 sends
        it: the --data strings joined with '&', not URL-encoded, with
        Content-Type: application/x-www-form-urlencoded when there is data."""
        headers = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
        body = b""
        if data:
            body = "&".join(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.raw(method, path, headers=headers, body=body)

    # conveniences for setup steps (assert success)
    def create(self, path, body, status=201):
        r = self.post(path, json=body)
        assert r.status_code == status, (path, body, r.status_code, r.text)
        return r.json()


def page_all(gw, path, size=None):
    """Follows `next` from path; returns every row."""
    rows = []
    url = path
    if size:
        url += ("&" if "?" in url else "?") + f"size={size}"
    seen = 0
    while url:
        r = gw.get(url)
        assert r.status_code == 200, (url, r.text)
        b = r.json()
        rows.extend(b["data"])
        url = b.get("next")
        seen += 1
        assert seen < 200, "pagination does not end"
    return rows


def _pg_dbname(request):
    mod = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.lower())[-30:]
    return f"api_{mod}_{uuidlib.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(request, aigw_module):
    env = {}
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres")
        db = _pg_dbname(request)
        pg.psql(f"CREATE DATABASE {db}", database="postgres")
        env = {
            "AIGW_DATABASE": "postgres",
            "AIGW_PG_HOST": pg.host,
            "AIGW_PG_PORT": str(pg.port),
            "AIGW_PG_USER": pg.user,
            "AIGW_PG_DATABASE": db,
        }
    inst = aigw_module(env=env)
    yield Admin(inst, request.param)
    # stop it now (the factory checks for sanitizer reports at the end of the module)
    inst.kill_for_teardown()


def q(s):
    """URL-encode a path segment or query value."""
    return urllib.parse.quote(s, safe="")
