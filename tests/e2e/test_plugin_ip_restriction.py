"""The ip-restriction plugin at the proxy (Kong 3.9 kong/plugins/ip-restriction,
reference/plugins.md "ip-restriction").

The client address is checked against `deny` first, then `allow` (addresses and CIDR ranges,
IPv4 and IPv6); a refused request gets Kong's error JSON (403 `IP address not allowed:
<address>` by default, or `status` / `message`) and never reaches the upstream. The address is
nginx's $remote_addr: the peer's, or the X-Real-IP header's when the peer is in trusted_ips.

The instance listens on 127.0.0.1 and on [::1] and trusts ::1 only, so real IPv6 clients are
tested, IPv4 clients cannot choose their address with X-Real-IP, and clients on ::1 can (to
test other addresses)."""
import socket

import pytest
import requests

from aigwtest import LOCAL, RawConn, free_ports, wait_until
from proxytest import ERR_RE, JSON_CT, admin, uniq, up  # noqa: F401

V6 = "::1"


def _v6_available():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind((V6, 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def gw(aigw_module):
    p4, p6, ssl4, adm, adm_ssl = free_ports(5)
    listen = "%s:%d, %s:%d ssl" % (LOCAL, p4, LOCAL, ssl4)
    if _v6_available():
        listen += ", [::1]:%d" % p6
    g = aigw_module(env={"AIGW_PROXY_LISTEN": listen,
                         "AIGW_ADMIN_LISTEN": "%s:%d, %s:%d ssl" % (LOCAL, adm, LOCAL, adm_ssl),
                         "AIGW_TRUSTED_IPS": "::1"})
    g.port4 = p4
    g.port6 = p6 if _v6_available() else None
    return g


def raw(port, path, headers=None, host=LOCAL, method="GET"):
    with RawConn(port, host=host) as c:
        return c.request(method, path, headers=headers)


def v4(gw, path, headers=None):
    return raw(gw.port4, path, headers)


def v6(gw, path, headers=None):
    if gw.port6 is None:
        pytest.fail("IPv6 loopback (::1) is not available on this host")
    return raw(gw.port6, path, headers, host=V6)


def site(gw, up, config, probe=None):
    """A service with ip-restriction, then its route: once the route answers, the plugin
    (created before it) is in place too. probe(r), if given, must also hold for a request
    from 127.0.0.1."""
    name = uniq("ipr")
    admin(gw, "POST", "/services", json={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    admin(gw, "POST", "/services/%s/plugins" % name,
          json={"name": "ip-restriction", "config": config})
    route = admin(gw, "POST", "/services/%s/routes" % name, json={"paths": ["/" + name]})
    path = "/" + name
    wait_until(lambda: (lambda r: r.status != 404 and (probe is None or probe(r)))(v4(gw, path)),
               5, interval=0.02, what=path)
    return path, route


def assert_refused(r, status, message):
    assert r.status == status, r
    assert r.header("Content-Type") == JSON_CT
    m = ERR_RE.match(r.body.decode())
    assert m, r.body
    assert m.group("m") == message
    assert m.group("rid") == r.header("X-Kong-Request-Id")
    assert r.header("X-Upstream") is None


def proxied(r):
    assert r.status == 200, r
    assert r.header("X-Upstream") == "echo"
    return r.json()


def refused_v4(r):
    return r.status == 403


# --------------------------------------------------------------------------------------------
# IPv4


def test_deny_exact(gw, up):
    path, _ = site(gw, up, {"deny": ["127.0.0.1"]}, refused_v4)
    n = len(up.requests)
    assert_refused(v4(gw, path), 403, "IP address not allowed: 127.0.0.1")
    assert len(up.requests) == n


def test_deny_other_passes(gw, up):
    path, _ = site(gw, up, {"deny": ["127.0.0.2", "10.0.0.0/8"]})
    proxied(v4(gw, path))


def test_allow_cidr(gw, up):
    path, _ = site(gw, up, {"allow": ["127.0.0.0/8"]})
    proxied(v4(gw, path))


def test_allow_cidr_with_host_bits(gw, up):
    path, _ = site(gw, up, {"allow": ["127.0.0.200/24"]})
    proxied(v4(gw, path))


def test_allow_other_refused(gw, up):
    path, _ = site(gw, up, {"allow": ["10.0.0.0/8", "127.0.0.2"]}, refused_v4)
    assert_refused(v4(gw, path), 403, "IP address not allowed: 127.0.0.1")


def test_deny_wins_over_allow(gw, up):
    path, _ = site(gw, up, {"allow": ["127.0.0.0/8"], "deny": ["127.0.0.1/32"]}, refused_v4)
    assert_refused(v4(gw, path), 403, "IP address not allowed: 127.0.0.1")


def test_allow_all_ipv4(gw, up):
    path, _ = site(gw, up, {"allow": ["0.0.0.0/0"]})
    proxied(v4(gw, path))


def test_ipv6_list_refuses_ipv4_client(gw, up):
    # an IPv4 client matches no IPv6 entry, not even ::/0 or the IPv4-mapped form
    path, _ = site(gw, up, {"allow": ["::/0", "::ffff:127.0.0.1"]}, refused_v4)
    assert_refused(v4(gw, path), 403, "IP address not allowed: 127.0.0.1")


def test_custom_status_and_message(gw, up):
    path, _ = site(gw, up, {"deny": ["127.0.0.1"], "status": 401, "message": "Go away"},
                   lambda r: r.status == 401)
    assert_refused(v4(gw, path), 401, "Go away")


def test_message_inserted_verbatim(gw, up):
    # kong.response.error formats the message into its template without JSON escaping
    path, _ = site(gw, up, {"deny": ["127.0.0.1"], "message": 'Go "away"'}, refused_v4)
    r = v4(gw, path)
    assert r.status == 403
    assert r.header("Content-Type") == JSON_CT
    assert r.body.decode() == '{\n  "message":"Go "away"",\n  "request_id":"%s"\n}' % \
        r.header("X-Kong-Request-Id")


def test_custom_status_default_message(gw, up):
    path, _ = site(gw, up, {"deny": ["127.0.0.1"], "status": 451}, lambda r: r.status == 451)
    assert_refused(v4(gw, path), 451, "IP address not allowed: 127.0.0.1")


def test_custom_message_default_status(gw, up):
    path, _ = site(gw, up, {"allow": ["10.0.0.1"], "message": "Nope"}, refused_v4)
    assert_refused(v4(gw, path), 403, "Nope")


def test_status_kong_cannot_send(gw, up):
    # kong.response.error refuses a code outside 400..599: a Lua error, i.e. a 500
    path, _ = site(gw, up, {"deny": ["127.0.0.1"], "status": 302}, lambda r: r.status == 500)
    assert_refused(v4(gw, path), 500, "An unexpected error occurred")


def test_untrusted_peer_cannot_choose_address(gw, up):
    path, _ = site(gw, up, {"deny": ["10.1.2.3"]})
    proxied(v4(gw, path, {"X-Real-IP": "10.1.2.3"}))
    path, _ = site(gw, up, {"allow": ["10.1.2.3"]}, refused_v4)
    assert_refused(v4(gw, path, {"X-Real-IP": "10.1.2.3"}), 403,
                   "IP address not allowed: 127.0.0.1")


def test_comma_separated_form(gw, up):
    """aigw splits `a,b` into two entries (reference/differences.md)."""
    name = uniq("iprform")
    admin(gw, "POST", "/services", data={"name": name, "url": "http://127.0.0.1:%d" % up.port})
    p = admin(gw, "POST", "/services/%s/plugins" % name,
              data={"name": "ip-restriction", "config.deny": "10.0.0.0/8,127.0.0.1"})
    admin(gw, "POST", "/services/%s/routes" % name, data={"paths[]": "/" + name})
    assert p["config"]["deny"] == ["10.0.0.0/8", "127.0.0.1"]
    wait_until(lambda: v4(gw, "/" + name).status == 403, 5, interval=0.02, what=name)
    assert_refused(v4(gw, "/" + name), 403, "IP address not allowed: 127.0.0.1")


def test_admin_validation(gw):
    r = requests.post(gw.admin_url + "/plugins", timeout=10,
                      json={"name": "ip-restriction", "config": {"allow": ["10.0.0.300"]}})
    assert r.status_code == 400, r.text
    assert r.json()["fields"]["config"]["allow"] == ["invalid ip or cidr range: '10.0.0.300'"]
    r = requests.post(gw.admin_url + "/plugins", timeout=10,
                      json={"name": "ip-restriction", "config": {}})
    assert r.status_code == 400, r.text
    assert "at least one of these fields must be non-empty: 'config.allow', 'config.deny'" in \
        r.json()["fields"]["@entity"]


def test_accept_html(gw, up):
    path, _ = site(gw, up, {"deny": ["127.0.0.1"]}, refused_v4)
    r = v4(gw, path, {"Accept": "text/html"})
    assert r.status == 403
    assert r.header("Content-Type").startswith("text/html")
    assert b"IP address not allowed: 127.0.0.1" in r.body


# --------------------------------------------------------------------------------------------
# IPv6 clients (a real ::1 peer) and addresses from X-Real-IP (::1 is trusted)


def test_ipv6_peer_allowed(gw, up):
    path, _ = site(gw, up, {"allow": ["::1"]}, refused_v4)
    proxied(v6(gw, path))


def test_ipv6_peer_denied_by_range(gw, up):
    path, _ = site(gw, up, {"deny": ["::/0"]})
    assert_refused(v6(gw, path), 403, "IP address not allowed: ::1")
    proxied(v4(gw, path))


def test_ipv6_peer_ipv4_list(gw, up):
    path, _ = site(gw, up, {"allow": ["127.0.0.0/8"]})
    assert_refused(v6(gw, path), 403, "IP address not allowed: ::1")


def test_real_ip_from_trusted_peer(gw, up):
    path, _ = site(gw, up, {"deny": ["10.1.2.0/24", "2001:db8::/32"]})
    assert_refused(v6(gw, path, {"X-Real-IP": "10.1.2.3"}), 403,
                   "IP address not allowed: 10.1.2.3")
    assert_refused(v6(gw, path, {"X-Real-IP": "2001:db8:1::5"}), 403,
                   "IP address not allowed: 2001:db8:1::5")
    b = proxied(v6(gw, path, {"X-Real-IP": "10.1.3.3"}))
    assert b["method"] == "GET"
    proxied(v6(gw, path, {"X-Real-IP": "2001:db9::5"}))
    proxied(v6(gw, path))


def test_real_ip_allow_list_v6_prefix(gw, up):
    path, _ = site(gw, up, {"allow": ["2001:db8:0:1::/65"]}, refused_v4)
    proxied(v6(gw, path, {"X-Real-IP": "2001:db8:0:1:7fff::1"}))
    assert_refused(v6(gw, path, {"X-Real-IP": "2001:db8:0:1:8000::1"}), 403,
                   "IP address not allowed: 2001:db8:0:1:8000::1")
