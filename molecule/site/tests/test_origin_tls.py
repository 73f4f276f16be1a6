"""Runs last (file order): the story's 502 and the verified origin. The route is switched
with the collection's module (No TLS Verify off, no CA pool: cloudflared cannot verify the
self-signed origin, the edge answers 502), then the role's verify mode is converged (caPool =
the CA selfsigned_tls published, originServerName = the domain: 200), then the route goes
back to the story's No TLS Verify."""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import json
import subprocess
from pathlib import Path

import pytest

from conftest import (ACCOUNT_ID, API_TOKEN, CA_FILE, DOMAIN, ansible_env, control, inventory,
                      visit_until)


def route(emulator, **options):
    args = dict(tunnel=DOMAIN, hostname=DOMAIN, service="https://localhost:443",
                api_url=emulator["api"], account_id=ACCOUNT_ID, **options)
    env = ansible_env()
    env["CLOUDFLARE_API_TOKEN"] = API_TOKEN
    proc = subprocess.run(["ansible", "localhost", "-m", "selfhost.mastodon.cloudflare_tunnel_route",
                           "-a", json.dumps(args)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def origin_request(emulator):
    for tunnel in control(emulator, "GET", "/state")["tunnels"].values():
        if tunnel["name"] == DOMAIN and not tunnel.get("deleted_at"):
            rules = [r for r in tunnel["config"]["ingress"] if r.get("hostname") == DOMAIN]
            return rules[0].get("originRequest", {})
    raise AssertionError("no tunnel in the emulator's state")


@pytest.fixture(scope="module")
def restore_no_tls_verify(emulator):
    yield
    route(emulator, no_tls_verify=True, ca_pool="", origin_server_name="")


def test_without_no_tls_verify_and_without_ca_pool_the_edge_answers_502(emulator, restore_no_tls_verify):
    route(emulator, no_tls_verify=False, ca_pool="", origin_server_name="")
    assert origin_request(emulator).get("noTLSVerify") is not True
    status, _, body = visit_until(emulator, "/health", 502)
    assert status == 502, body


def test_verify_mode_checks_the_origin_against_the_published_ca(emulator, restore_no_tls_verify):
    proc = subprocess.run(
        ["ansible-playbook", "-i", inventory(), str(Path(__file__).resolve().parents[1] / "converge.yml"),
         "-e", "cloudflare_tunnel_origin_tls=verify",
         # Only the tunnel role's tasks: the rest was converged (and re-checked) already.
         "--start-at-task", "selfhost.mastodon.cloudflare_tunnel : Check the hostname, account, tunnel name and origin service"],
        env=ansible_env(), capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Route the hostname to the origin, TLS mode verify" in proc.stdout
    origin = origin_request(emulator)
    # noTLSVerify off: false or left out (cloudflared's default is to verify).
    assert origin.get("noTLSVerify") is not True
    assert origin.get("caPool") == CA_FILE
    assert origin.get("originServerName") == DOMAIN
    status, _, body = visit_until(emulator, "/health", 200)
    assert status == 200, body
