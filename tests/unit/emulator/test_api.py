"""Tests of the Cloudflare API emulator (a test stand-in): envelope, auth, rules, faults."""

import base64
import json
import time
import uuid

import pytest
import requests

from cloudflare_emulator import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    SUB_ZONE_ID,
    TOKEN_ACCOUNT_OWNED,
    TOKEN_DISABLED,
    TOKEN_FULL,
    TOKEN_INVALID,
    TOKEN_NO_DNS_EDIT,
    TOKEN_NO_TUNNEL_EDIT,
    TOKEN_NO_ZONE_READ,
    ZONE_ID,
    Emulator,
)

TUNNELS = f"/accounts/{ACCOUNT_ID}/cfd_tunnel"
INGRESS_OK = {"config": {"ingress": [
    {"hostname": "social.example.test", "service": "https://localhost:443",
     "originRequest": {"noTLSVerify": True}},
    {"service": "http_status:404"},
]}}


def create_tunnel(api, name="blog", config_src="cloudflare"):
    answer = api("POST", TUNNELS, json={"name": name, "config_src": config_src})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def assert_error(answer, status, code):
    body = answer.json()
    assert answer.status_code == status, answer.text
    assert body["success"] is False
    assert body["result"] is None
    assert body["messages"] == []
    assert [e["code"] for e in body["errors"]] == [code], body["errors"]
    return body["errors"][0]["message"]


# --------------------------------------------------------------- envelope and auth
def test_envelope_of_a_successful_list(api):
    body = api("GET", "/zones").json()
    assert set(body) == {"success", "errors", "messages", "result", "result_info"}
    assert body["success"] is True and body["errors"] == []
    assert body["result_info"] == {"page": 1, "per_page": 20, "count": 4, "total_count": 4,
                                   "total_pages": 1}


def test_missing_and_malformed_authorization(api):
    assert_error(api("GET", "/zones", token=None), 400, 9106)
    answer = api("GET", "/zones", token=None, headers={"Authorization": "Token abc"})
    assert_error(answer, 400, 6003)
    assert answer.json()["errors"][0]["error_chain"][0]["code"] == 6111


@pytest.mark.parametrize("token", [TOKEN_INVALID, TOKEN_DISABLED])
def test_invalid_or_disabled_token_is_refused(api, token):
    message = assert_error(api("GET", TUNNELS, token=token), 403, 10000)
    assert message == "Authentication error"


def test_verify_user_and_account_tokens(api):
    body = api("GET", "/user/tokens/verify").json()
    assert body["result"]["status"] == "active"
    assert body["messages"][0]["message"] == "This API Token is valid and active"
    assert assert_error(api("GET", "/user/tokens/verify", token=TOKEN_INVALID),
                        401, 1000) == "Invalid API Token"
    # an account-owned token is refused by the user endpoint but valid at the account one
    assert_error(api("GET", "/user/tokens/verify", token=TOKEN_ACCOUNT_OWNED), 401, 1000)
    answer = api("GET", f"/accounts/{ACCOUNT_ID}/tokens/verify", token=TOKEN_ACCOUNT_OWNED)
    assert answer.status_code == 200 and answer.json()["result"]["status"] == "active"
    assert_error(api("GET", f"/accounts/{OTHER_ACCOUNT_ID}/tokens/verify",
                     token=TOKEN_ACCOUNT_OWNED), 401, 1000)
    assert api("GET", "/user/tokens/verify",
               token=TOKEN_DISABLED).json()["result"]["status"] == "disabled"


def test_account_owned_token_works_on_its_account_only(api):
    assert api("GET", TUNNELS, token=TOKEN_ACCOUNT_OWNED).status_code == 200
    assert_error(api("GET", f"/accounts/{OTHER_ACCOUNT_ID}/cfd_tunnel",
                     token=TOKEN_ACCOUNT_OWNED), 403, 9109)
    names = [z["name"] for z in api("GET", "/zones", token=TOKEN_ACCOUNT_OWNED).json()["result"]]
    assert "other-account.test" not in names and "example.test" in names


def test_missing_permissions(api):
    assert api("GET", TUNNELS, token=TOKEN_NO_TUNNEL_EDIT).status_code == 200
    assert_error(api("POST", TUNNELS, token=TOKEN_NO_TUNNEL_EDIT, json={"name": "x"}),
                 403, 10000)
    record = {"type": "A", "name": "x.example.test", "content": "192.0.2.1"}
    assert api("GET", f"/zones/{ZONE_ID}/dns_records", token=TOKEN_NO_DNS_EDIT).status_code == 200
    assert_error(api("POST", f"/zones/{ZONE_ID}/dns_records", token=TOKEN_NO_DNS_EDIT,
                     json=record), 403, 10000)
    # without Zone Read the zone list is empty (Cloudflare filters by token scope)
    assert api("GET", "/zones", token=TOKEN_NO_ZONE_READ).json()["result"] == []
    assert_error(api("GET", f"/zones/{ZONE_ID}", token=TOKEN_NO_ZONE_READ), 403, 10000)
    assert api("GET", f"/zones/{ZONE_ID}/dns_records", token=TOKEN_NO_ZONE_READ).ok


def test_unknown_route_and_ids(api):
    assert_error(api("GET", "/nothing/here"), 404, 7003)
    assert_error(api("GET", f"/zones/{'9' * 32}"), 404, 7003)
    assert_error(api("GET", f"{TUNNELS}/{uuid.uuid4()}"), 404, 1003)
    assert_error(api("GET", f"/zones/{ZONE_ID}/dns_records/{'8' * 32}"), 404, 81044)


# --------------------------------------------------------------- tunnels
def test_create_tunnel_result_and_token_format(api):
    tunnel = create_tunnel(api)
    assert uuid.UUID(tunnel["id"])
    assert tunnel["account_tag"] == ACCOUNT_ID and tunnel["name"] == "blog"
    assert tunnel["status"] == "inactive" and tunnel["connections"] == []
    assert tunnel["remote_config"] is True and tunnel["conns_active_at"] is None
    assert tunnel["deleted_at"] is None and tunnel["created_at"].endswith("Z")
    decoded = json.loads(base64.b64decode(tunnel["token"]))
    assert decoded["a"] == ACCOUNT_ID and decoded["t"] == tunnel["id"]
    assert len(base64.b64decode(decoded["s"])) == 32
    assert tunnel["credentials_file"]["TunnelSecret"] == decoded["s"]
    token = api("GET", f"{TUNNELS}/{tunnel['id']}/token").json()["result"]
    assert token == tunnel["token"]
    assert "secret" not in api("GET", f"{TUNNELS}/{tunnel['id']}").json()["result"]


def test_given_tunnel_secret_is_used_and_validated(api):
    secret = base64.b64encode(b"x" * 32).decode()
    tunnel = api("POST", TUNNELS, json={"name": "s", "tunnel_secret": secret}).json()["result"]
    assert json.loads(base64.b64decode(tunnel["token"]))["s"] == secret
    assert tunnel["config_src"] == "local" and tunnel["remote_config"] is False
    assert_error(api("POST", TUNNELS, json={"name": "s2", "tunnel_secret": "c2hvcnQ="}),
                 400, 1001)


def test_duplicate_name_is_1013_but_allowed_after_soft_delete(api):
    first = create_tunnel(api)
    assert_error(api("POST", TUNNELS, json={"name": "blog"}), 409, 1013)
    deleted = api("DELETE", f"{TUNNELS}/{first['id']}", json={}).json()["result"]
    assert deleted["deleted_at"]
    second = create_tunnel(api)
    listed = api("GET", TUNNELS, params={"name": "blog", "is_deleted": "false"}).json()["result"]
    assert [t["id"] for t in listed] == [second["id"]]
    everything = api("GET", TUNNELS, params={"name": "blog"}).json()["result"]
    assert {t["id"] for t in everything} == {first["id"], second["id"]}
    only_deleted = api("GET", TUNNELS, params={"is_deleted": "true"}).json()["result"]
    assert [t["id"] for t in only_deleted] == [first["id"]]
    # a deleted tunnel still answers GET, with deleted_at set
    assert api("GET", f"{TUNNELS}/{first['id']}").json()["result"]["deleted_at"]


def test_pagination_of_tunnels():
    with Emulator(seed={"bulk_tunnels": {"count": 45, "deleted_every": 5}}) as emu:
        headers = {"Authorization": f"Bearer {TOKEN_FULL}"}
        seen = []
        page = 1
        while True:
            body = requests.get(emu.api_url + TUNNELS, headers=headers, timeout=10,
                                params={"is_deleted": "false", "per_page": 10,
                                        "page": page}).json()
            seen += [t["name"] for t in body["result"]]
            info = body["result_info"]
            assert info["per_page"] == 10 and info["total_count"] == 36
            if page >= info["total_pages"]:
                break
            page += 1
        assert page == 4 and len(seen) == len(set(seen)) == 36
        default = requests.get(emu.api_url + TUNNELS, headers=headers, timeout=10).json()
        assert default["result_info"]["per_page"] == 20 and len(default["result"]) == 20
        assert default["result_info"]["total_count"] == 45


def test_zone_pagination_limits_and_filters(api):
    info = api("GET", "/zones", params={"per_page": 1000}).json()["result_info"]
    assert info["per_page"] == 50
    assert api("GET", "/zones", params={"per_page": 1}).json()["result_info"]["per_page"] == 5
    names = [z["name"] for z in api("GET", "/zones",
                                    params={"name": "sub.example.test"}).json()["result"]]
    assert names == ["sub.example.test"]
    ours = api("GET", "/zones", params={"account.id": ACCOUNT_ID}).json()["result"]
    assert {z["name"] for z in ours} == {"example.test", "sub.example.test", "unrelated.test"}
    assert ours[0]["account"]["id"] == ACCOUNT_ID and ours[0]["status"] == "active"
    ends = api("GET", "/zones", params={"name": "ends_with:example.test"}).json()["result"]
    assert len(ends) == 2


def test_configuration_versions_and_ingress_validation(api):
    tunnel = create_tunnel(api)
    path = f"{TUNNELS}/{tunnel['id']}/configurations"
    fresh = api("GET", path).json()["result"]
    assert fresh["version"] == 0 and fresh["config"] is None
    assert fresh["tunnel_id"] == tunnel["id"]
    first = api("PUT", path, json=INGRESS_OK).json()["result"]
    second = api("PUT", path, json=INGRESS_OK).json()["result"]
    assert (first["version"], second["version"]) == (1, 2)
    got = api("GET", path).json()["result"]
    assert got["version"] == 2
    assert got["config"]["ingress"][0]["originRequest"] == {"noTLSVerify": True}
    assert got["config"]["ingress"][1] == {"service": "http_status:404", "originRequest": {}}

    no_catch_all = {"config": {"ingress": [{"hostname": "a.example.test",
                                            "service": "http://localhost:80"}]}}
    message = assert_error(api("PUT", path, json=no_catch_all), 400, 1056)
    assert "last ingress rule must match all URLs" in message
    middle_catch_all = {"config": {"ingress": [{"service": "http://localhost:80"},
                                               {"service": "http_status:404"}]}}
    assert "no hostname" in assert_error(api("PUT", path, json=middle_catch_all), 400, 1056)
    no_service = {"config": {"ingress": [{"hostname": "a.example.test"},
                                         {"service": "http_status:404"}]}}
    assert "missing a service" in assert_error(api("PUT", path, json=no_service), 400, 1056)
    snake = {"config": {"ingress": [{"hostname": "a.example.test", "service": "https://x",
                                     "originRequest": {"no_tls_verify": True}},
                                    {"service": "http_status:404"}]}}
    assert "camelCase" in assert_error(api("PUT", path, json=snake), 400, 1001)
    all_keys = {"config": {"ingress": [
        {"hostname": "a.example.test", "service": "https://localhost:443",
         "originRequest": {"noTLSVerify": False, "caPool": "/etc/ssl/ca.pem",
                           "originServerName": "mastodon.internal",
                           "httpHostHeader": "a.example.test", "connectTimeout": 30}},
        {"service": "http_status:404"}]}}
    assert api("PUT", path, json=all_keys).json()["result"]["version"] == 3
    assert api("GET", path).json()["result"]["version"] == 3


def test_local_tunnel_configuration_cannot_be_put(api):
    tunnel = create_tunnel(api, name="local", config_src="local")
    assert_error(api("PUT", f"{TUNNELS}/{tunnel['id']}/configurations", json=INGRESS_OK),
                 400, 1001)


def test_delete_with_active_connections_is_1022(emu, api):
    tunnel = create_tunnel(api)
    emu.store.add_connection(tunnel["id"], {"id": "client-1", "arch": "x", "version": "v",
                                            "config_version": 0, "features": [], "run_at": "t"},
                             {"id": "conn-1", "uuid": "conn-1", "client_id": "client-1",
                              "client_version": "v", "colo_name": "EMU", "opened_at": "t",
                              "origin_ip": "127.0.0.1", "is_pending_reconnect": False})
    got = api("GET", f"{TUNNELS}/{tunnel['id']}").json()["result"]
    assert got["status"] == "healthy" and len(got["connections"]) == 1
    clients = api("GET", f"{TUNNELS}/{tunnel['id']}/connections").json()["result"]
    assert clients[0]["id"] == "client-1" and clients[0]["conns"][0]["colo_name"] == "EMU"
    assert_error(api("DELETE", f"{TUNNELS}/{tunnel['id']}", json={}), 400, 1022)
    assert api("DELETE", f"{TUNNELS}/{tunnel['id']}/connections", json={}).ok
    assert api("GET", f"{TUNNELS}/{tunnel['id']}").json()["result"]["status"] == "down"
    assert api("DELETE", f"{TUNNELS}/{tunnel['id']}", json={}).ok


# --------------------------------------------------------------- DNS
def test_dns_create_filter_update_delete(api):
    records = f"/zones/{ZONE_ID}/dns_records"
    created = api("POST", records, json={"type": "CNAME", "name": "social",
                                         "content": "abc.cfargotunnel.com.", "proxied": True,
                                         "ttl": 300}).json()["result"]
    assert created["name"] == "social.example.test" and created["ttl"] == 1
    assert created["content"] == "abc.cfargotunnel.com" and created["proxied"] is True
    api("POST", records, json={"type": "TXT", "name": "other.example.test", "content": "x"})
    found = api("GET", records, params={"name": "social.example.test",
                                        "type": "CNAME"}).json()
    assert [r["id"] for r in found["result"]] == [created["id"]]
    assert api("GET", records, params={"name": "nope.example.test"}).json()["result"] == []
    patched = api("PATCH", f"{records}/{created['id']}",
                  json={"content": "def.cfargotunnel.com"}).json()["result"]
    assert patched["content"] == "def.cfargotunnel.com" and patched["proxied"] is True
    put = api("PUT", f"{records}/{created['id']}",
              json={"type": "CNAME", "name": "social.example.test",
                    "content": "ghi.cfargotunnel.com"}).json()["result"]
    assert put["proxied"] is False  # PUT overwrites: omitted proxied is the default false
    assert api("DELETE", f"{records}/{created['id']}").json()["result"] == {"id": created["id"]}
    assert_error(api("GET", f"{records}/{created['id']}"), 404, 81044)


def test_dns_name_conflicts(api):
    records = f"/zones/{ZONE_ID}/dns_records"
    a = {"type": "A", "name": "www.example.test", "content": "192.0.2.1"}
    assert api("POST", records, json=a).ok
    assert_error(api("POST", records, json=a), 400, 81057)
    cname = {"type": "CNAME", "name": "www.example.test", "content": "x.cfargotunnel.com",
             "proxied": True}
    message = assert_error(api("POST", records, json=cname), 400, 81053)
    assert message == "An A, AAAA, or CNAME record with that host already exists."
    assert api("POST", records, json=dict(cname, name="app.example.test")).ok
    assert_error(api("POST", records, json=dict(a, name="app.example.test")), 400, 81054)
    assert_error(api("POST", records, json={"type": "TXT", "name": "t.example.test",
                                            "content": "x", "proxied": True}), 400, 9004)


def test_seeded_dns_records_and_subzone():
    seed = {"dns_records": [{"zone": "sub.example.test", "type": "A",
                             "name": "app.sub.example.test", "content": "192.0.2.7"}]}
    with Emulator(seed=seed) as emu:
        answer = requests.get(f"{emu.api_url}/zones/{SUB_ZONE_ID}/dns_records", timeout=10,
                              headers={"Authorization": f"Bearer {TOKEN_FULL}"}).json()
        assert [r["name"] for r in answer["result"]] == ["app.sub.example.test"]
        assert emu.store.zone_for_hostname("x.app.sub.example.test")["id"] == SUB_ZONE_ID


# --------------------------------------------------------------- faults and log
def test_rate_limit_fault_with_retry_after(emu, api):
    emu.set_fault(status=429, count=2, retry_after=3)
    for attempt in range(2):
        answer = api("GET", "/zones", params={"attempt": attempt})
        assert answer.headers["Retry-After"] == "3"
        assert_error(answer, 429, 971)
    assert api("GET", "/zones").status_code == 200
    assert [r["status"] for r in emu.requests] == [429, 429, 200]
    assert emu.requests[0]["fault"]["status"] == 429


def test_server_error_delay_and_close_faults(emu, api):
    emu.set_fault(status=503, count=1)
    assert api("GET", "/zones").status_code == 503
    emu.set_fault(status=502, count=1, html=True)
    answer = api("GET", "/zones")
    assert answer.status_code == 502 and answer.headers["Content-Type"] == "text/html"
    emu.set_fault(delay=0.5, count=1)
    started = time.monotonic()
    assert api("GET", "/zones").status_code == 200
    assert time.monotonic() - started >= 0.5
    emu.set_fault(close_connection=True, count=1)
    with pytest.raises(requests.ConnectionError):
        api("GET", "/zones")
    assert api("GET", "/zones").ok


def test_fault_filters_by_method_and_path(emu, api):
    emu.set_fault(status=503, count=5, method="POST", path="/dns_records")
    assert api("GET", f"/zones/{ZONE_ID}/dns_records").ok
    answer = api("POST", f"/zones/{ZONE_ID}/dns_records",
                 json={"type": "A", "name": "f.example.test", "content": "192.0.2.1"})
    assert answer.status_code == 503


def test_request_log_and_http_control(emu, api):
    api("GET", "/zones", params={"name": "example.test"})
    api("POST", TUNNELS, json={"name": "logged"})
    control = emu.api_url + "/__emulator__"
    logged = requests.get(control + "/requests", timeout=10).json()["requests"]
    assert [(r["method"], r["route"]) for r in logged] == [
        ("GET", "/zones"), ("POST", "/accounts/{account_id}/cfd_tunnel")]
    assert logged[0]["query"] == {"name": "example.test"}
    assert logged[1]["json"] == {"name": "logged"} and logged[1]["status"] == 200
    requests.post(control + "/faults", json={"status": 429, "count": 1, "retry_after": 2},
                  timeout=10)
    assert api("GET", "/zones").status_code == 429
    state = requests.get(control + "/state", timeout=10).json()
    assert any(t["name"] == "logged" for t in state["tunnels"].values())
    requests.post(control + "/reset", timeout=10)
    assert emu.requests == []
    assert api("GET", TUNNELS).json()["result"] == []
    assert len(emu.requests) == 1  # the GET just above, control calls are never logged
    requests.delete(control + "/requests", timeout=10)
    assert emu.requests == []


def test_state_file_survives_restart(tmp_path):
    state = tmp_path / "state.json"
    headers = {"Authorization": f"Bearer {TOKEN_FULL}"}
    with Emulator(state_file=str(state)) as emu:
        tunnel = requests.post(emu.api_url + TUNNELS, headers=headers, timeout=10,
                               json={"name": "demo", "config_src": "cloudflare"}).json()["result"]
        requests.put(f"{emu.api_url}{TUNNELS}/{tunnel['id']}/configurations", headers=headers,
                     json=INGRESS_OK, timeout=10)
        requests.post(f"{emu.api_url}/zones/{ZONE_ID}/dns_records", headers=headers,
                      timeout=10, json={"type": "CNAME", "name": "social.example.test",
                                        "content": f"{tunnel['id']}.cfargotunnel.com",
                                        "proxied": True})
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    with Emulator(state_file=str(state)) as emu:
        found = requests.get(emu.api_url + TUNNELS, headers=headers, timeout=10,
                             params={"name": "demo"}).json()["result"]
        assert [t["id"] for t in found] == [tunnel["id"]]
        token = requests.get(f"{emu.api_url}{TUNNELS}/{tunnel['id']}/token", headers=headers,
                             timeout=10).json()["result"]
        assert token == tunnel["token"]
        config = requests.get(f"{emu.api_url}{TUNNELS}/{tunnel['id']}/configurations",
                              headers=headers, timeout=10).json()["result"]
        assert config["version"] == 1
        records = requests.get(f"{emu.api_url}/zones/{ZONE_ID}/dns_records", headers=headers,
                               timeout=10).json()["result"]
        assert [r["name"] for r in records] == ["social.example.test"]


def test_command_line_by_path_prints_ports_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "cloudflare_emulator", "emulator.py")
    state = tmp_path / "state.json"
    log_file = tmp_path / "requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, script, "--host", "127.0.0.1", "--api-port", "0", "--edge-port", "0",
         "--connector-port", "0", "--state-file", str(state), "--log-file", str(log_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["api"].endswith("/client/v4") and ready["connector"].startswith("127.0.0.1:")
        headers = {"Authorization": f"Bearer {TOKEN_FULL}"}
        created = requests.post(ready["api"] + TUNNELS, headers=headers, timeout=10,
                                json={"name": "cli", "config_src": "cloudflare"})
        assert created.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert "stand-in" in subprocess.run([sys.executable, script, "--help"], text=True,
                                        capture_output=True, check=True).stdout
    saved = json.loads(state.read_text())
    assert [t["name"] for t in saved["tunnels"].values()] == ["cli"]
    logged = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(e["method"], e["route"]) for e in logged] == [
        ("POST", "/accounts/{account_id}/cfd_tunnel")]
