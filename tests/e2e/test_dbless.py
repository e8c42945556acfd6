"""DB-less mode (database = off): the node runs from a declarative file, the admin API reads
it, refuses entity writes as Kong does, and POST /config replaces the whole configuration."""
import requests

from aigwtest import get, wait_until

KONG_YML = """_format_version: "3.0"
services:
- name: ai-orchestrator
  url: http://127.0.0.1:5000
  routes:
  - name: workflow
    paths: [/ai-workflow]
consumers:
- username: ai-client
  jwt_secrets:
  - key: mykey
    secret: s3cret
"""


def test_dbless(aigw, tmp_path):
    f = tmp_path / "kong.yml"
    f.write_text(KONG_YML)
    gw = aigw(env={"AIGW_DATABASE": "off", "AIGW_DECLARATIVE_CONFIG": str(f)})
    a = gw.admin_url
    svc = requests.get(a + "/services/ai-orchestrator", timeout=10).json()
    assert svc["host"] == "127.0.0.1" and svc["port"] == 5000
    routes = requests.get(a + "/services/ai-orchestrator/routes", timeout=10).json()["data"]
    assert [r["paths"] for r in routes] == [["/ai-workflow"]]
    assert requests.get(a + "/consumers/ai-client/jwt/mykey", timeout=10).status_code == 200
    # Entity writes are Kong's 405 "operation unsupported".
    r = requests.post(a + "/services", data={"name": "x", "url": "http://x"}, timeout=10)
    assert r.status_code == 405
    assert r.json() == {"code": 12, "name": "operation unsupported",
                        "message": "cannot create 'services' entities when not using a database"}
    r = requests.patch(a + "/services/ai-orchestrator", data={"retries": "1"}, timeout=10)
    assert r.status_code == 405
    assert r.json()["message"] == ("cannot update 'services' entities by 'name' when not "
                                   "using a database")
    assert requests.delete(a + f"/services/{svc['id']}", timeout=10).status_code == 405
    # GET /config gives the configuration as YAML.
    cfg = requests.get(a + "/config", timeout=10).json()["config"]
    assert "ai-orchestrator" in cfg and "_format_version" in cfg
    # POST /config replaces everything; the same body with check_hash=1 is a 304.
    new = '_format_version: "3.0"\nservices:\n- name: other\n  url: http://127.0.0.1:9\n'
    hdr = {"Content-Type": "application/yaml"}
    r = requests.post(a + "/config", data=new, headers=hdr, timeout=10)
    assert r.status_code == 201, r.text
    assert [s["name"] for s in r.json()["services"]] == ["other"]
    assert requests.get(a + "/services/ai-orchestrator", timeout=10).status_code == 404
    assert requests.get(a + "/consumers/ai-client", timeout=10).status_code == 404
    r = requests.post(a + "/config?check_hash=1", data=new, headers=hdr, timeout=10)
    assert r.status_code == 304
    # The form of seed tools (config=<text>) and JSON documents work too.
    r = requests.post(a + "/config", data={"config": KONG_YML}, timeout=10)
    assert r.status_code == 201 and requests.get(a + "/services/ai-orchestrator",
                                                 timeout=10).status_code == 200
    r = requests.post(a + "/config", json={"_format_version": "3.0", "services": [
        {"name": "json-svc", "url": "http://127.0.0.1:8"}]}, timeout=10)
    assert r.status_code == 201
    # An invalid document is Kong's code 14 and changes nothing.
    r = requests.post(a + "/config", json={"_format_version": "3.0",
                                           "services": [{"name": "bad"}]}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == 14
    assert requests.get(a + "/services/json-svc", timeout=10).status_code == 200
    # The snapshot follows: /status reports a configuration hash that changed.
    h1 = requests.get(a + "/status", timeout=10).json()["configuration_hash"]
    requests.post(a + "/config", data=new, headers=hdr, timeout=10)
    wait_until(lambda: requests.get(a + "/status", timeout=10).json()["configuration_hash"]
               != h1, 5, what="a new configuration hash")
    assert get(gw.proxy_url + "/x").status_code == 404


def test_db_mode_refuses_config(aigw):
    gw = aigw()
    r = requests.get(gw.admin_url + "/config", timeout=10)
    assert r.status_code == 400
    assert r.json() == {"message": "this endpoint is only available when Kong is configured "
                                   "to not use a database"}


def test_bad_declarative_file_refuses_start(aigw_run, tmp_path):
    f = tmp_path / "bad.yml"
    f.write_text('_format_version: "3.0"\nservices:\n- name: nohost\n')
    r = aigw_run(["start", "-p", "{prefix}"], env={"AIGW_DATABASE": "off",
                                                   "AIGW_DECLARATIVE_CONFIG": str(f)})
    assert r.rc == 1
    assert "declarative" in r.stderr and "host" in r.stderr


def test_dbless_reload_rereads_file(aigw, tmp_path):
    import signal
    f = tmp_path / "kong.yml"
    f.write_text(KONG_YML)
    gw = aigw(env={"AIGW_DATABASE": "off", "AIGW_DECLARATIVE_CONFIG": str(f)})
    a = gw.admin_url
    f.write_text('_format_version: "3.0"\nservices:\n- name: reloaded\n  url: http://127.0.0.1:7\n')
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: requests.get(a + "/services/reloaded", timeout=10).status_code == 200, 5,
               what="the re-read declarative file")
    assert requests.get(a + "/services/ai-orchestrator", timeout=10).status_code == 404
    # A broken file keeps what runs.
    f.write_text('_format_version: "3.0"\nservices:\n- name: broken\n')
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in gw.error_log_text(), 5, what="the reload error")
    assert requests.get(a + "/services/reloaded", timeout=10).status_code == 200
