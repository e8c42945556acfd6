"""Hybrid mode with cluster_mtls = pki: control plane and data planes hold certificates of
their own, issued by one CA (cluster_ca_cert); the DP checks the CP's name
(cluster_server_name). ECDSA P-256 keys here, so snapshots are signed with ECDSA over
SHA-256 (the shared-mode tests use Ed25519). What a user sees: a write reaches a DP whose
certificate the CA issued; a DP with a certificate from another CA, or an expired one, is
refused; a DP that expects another CP name refuses the CP and keeps serving what it has."""
import base64
import datetime
import json
import ipaddress

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aigwtest import LOCAL, free_port, wait_until
from test_hybrid import admin, dps_of, proxied, wait_proxied
from upstreams import Upstream


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(d, stem):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(stem)).issuer_name(_name(stem))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    (d / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def issue(d, stem, ca_key, ca_cert, dns, expired=False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=30)
    cert = (x509.CertificateBuilder().subject_name(_name(dns)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(dns), x509.IPAddress(ipaddress.ip_address(LOCAL))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (d / f"{stem}.key").chmod(0o600)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = make_ca(d, "ca")
    issue(d, "cp", ca_key, ca, "cp.cluster.test")
    issue(d, "dp", ca_key, ca, "dp.cluster.test")
    other_key, other = make_ca(d, "other-ca")
    issue(d, "rogue", other_key, other, "dp.cluster.test")
    issue(d, "expired", ca_key, ca, "dp.cluster.test", expired=True)
    return d


def conf(d, role, cport, stem, extra=""):
    common = (f"cluster_mtls = pki\ncluster_ca_cert = {d}/ca.crt\n"
              f"cluster_cert = {d}/{stem}.crt\ncluster_cert_key = {d}/{stem}.key\n"
              f"log_level = info\n")
    if role == "cp":
        return (f"role = control_plane\nproxy_listen = off\n"
                f"cluster_listen = {LOCAL}:{cport}\n" + common + extra)
    return (f"role = data_plane\ndatabase = off\nadmin_listen = off\n"
            f"cluster_control_plane = {LOCAL}:{cport}\ncluster_ping_interval = 1\n"
            + common + extra)


def test_pki_mode(aigw_module, pki):
    up = Upstream()
    try:
        cport = free_port()
        # the CP's certificate and CA as PEM text, its key base64-encoded (Kong's three forms;
        # the DPs use paths)
        cp = aigw_module(conf=(f"role = control_plane\nproxy_listen = off\n"
                               f"cluster_listen = {LOCAL}:{cport}\ncluster_mtls = pki\n"
                               f"log_level = info\n"),
                         env={"AIGW_CLUSTER_CERT": (pki / "cp.crt").read_text(),
                              "AIGW_CLUSTER_CA_CERT": (pki / "ca.crt").read_text(),
                              "AIGW_CLUSTER_CERT_KEY":
                                  base64.b64encode((pki / "cp.key").read_bytes()).decode()})
        shown = requests.get(cp.admin_url + "/", timeout=5).json()["configuration"]
        assert shown["cluster_cert_key"] == "******"          # never the key itself
        assert "PRIVATE KEY" not in json.dumps(shown)
        port = free_port()
        dp = aigw_module(conf=conf(pki, "dp", cport, "dp",
                                   f"proxy_listen = {LOCAL}:{port}\n"
                                   "cluster_server_name = cp.cluster.test\n"))
        wait_until(lambda: len(dps_of(cp)["data"]) == 1, 10, what="the data plane connected")
        admin(cp, "POST", "/services", data={"name": "pk", "url": f"http://{LOCAL}:{up.port}"})
        admin(cp, "POST", "/services/pk/routes", data={"name": "pk", "paths[]": "/pk"})
        wait_proxied(port, "/pk")
        admin(cp, "POST", "/services/pk/routes", data={"name": "pk2", "paths[]": "/pk2"})
        wait_proxied(port, "/pk2")                       # a delta, ECDSA-signed
        assert "configuration delta from the control plane" in dp.error_log_text()

        def refused(stem, server_name, where, message):
            """A DP with that certificate and expected CP name: message appears in the log
            of `where` ("cp" or "dp"), the DP proxies nothing, the CP lists no new one."""
            p = free_port()
            d = aigw_module(conf=conf(pki, "dp", cport, stem, f"proxy_listen = {LOCAL}:{p}\n"
                                      f"cluster_server_name = {server_name}\n"))
            log = (cp if where == "cp" else d).error_log_text
            wait_until(lambda: message in log(), 10, what=message)
            assert proxied(p, "/pk") == 404
            assert len(dps_of(cp)["data"]) == 1
            return d

        # a certificate from another CA, or of the right CA but expired: the CP refuses it
        rogue = refused("rogue", "cp.cluster.test", "cp", "its certificate is not accepted "
                        "(unable to get local issuer certificate)")
        # the DP sees the refusal as an alert or as the link closing, depending on timing
        wait_until(lambda: "unknown ca" in rogue.error_log_text() or
                   "cannot greet the control plane" in rogue.error_log_text(), 10,
                   what="the rogue data plane logs the refusal")
        rogue.stop()
        refused("expired", "cp.cluster.test", "cp",
                "its certificate is not accepted (certificate has expired)").stop()
        # a DP expecting another control plane name refuses this one
        refused("dp", "elsewhere.cluster.test", "dp", "the control plane's certificate is not "
                "accepted (hostname mismatch)").stop()
    finally:
        up.close()
