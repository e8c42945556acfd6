"""Shared pieces of the proxy and plugin e2e tests: a module-wide echo upstream and aigw
instance, the admin call that asserts success, unique names, and Kong's error JSON shape."""
import re
import uuid

import pytest
import requests

from upstreams import Upstream

# kong.response.error's JSON template: {"message":..., "request_id":...}, pretty-printed
ERR_RE = re.compile(r'^\{\n  "message":"(?P<m>[^"]*)",\n  "request_id":"(?P<rid>[0-9a-f]+)"\n\}\n?$')
JSON_CT = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def up():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def gw(aigw_module):
    return aigw_module()


def admin(gw, method, path, **kw):
    """One admin call that must succeed (2xx); its JSON body, or None when empty."""
    kw.setdefault("timeout", 20)
    r = requests.request(method, gw.admin_url + path, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.text else None


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])
