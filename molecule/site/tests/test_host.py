"""The laptop itself: the firewall lets nothing in but SSH (the connector only dials out), SSH
with the admin key still works, and the connector runs from the role's real unit and
root-only token file."""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import subprocess
import time

import pytest

from conftest import EMULATOR_CONTAINER, TOKEN_FILE, docker_exec, ephemeral

PROBE_PORT = 8099
CONNECT = ("import socket,sys\n"
           "s=socket.socket(); s.settimeout(5)\n"
           "try:\n"
           "    s.connect((sys.argv[1], int(sys.argv[2]))); print('OPEN', s.recv(64))\n"
           "except Exception as e:\n"
           "    print('BLOCKED', type(e).__name__)\n")


@pytest.fixture(scope="module")
def laptop_ip(host):
    return host.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def probe_listener(host):
    """A listener on every address of the laptop, to show the firewall (not a missing
    listener) is what keeps a port closed."""
    with host.sudo():
        host.run(f"systemctl stop site-probe.service; systemd-run --unit site-probe "
                 f"python3 -m http.server {PROBE_PORT} --bind 0.0.0.0")
        for _ in range(30):
            if host.socket(f"tcp://0.0.0.0:{PROBE_PORT}").is_listening:
                break
            time.sleep(0.5)
    yield PROBE_PORT
    with host.sudo():
        host.run("systemctl stop site-probe.service")


def from_another_machine(ip, port):
    """Connect from the emulator's container (another machine on the network)."""
    return docker_exec(EMULATOR_CONTAINER, "python3", "-c", CONNECT, ip, str(port)).stdout


def test_inbound_is_dropped_but_ssh(host, laptop_ip, probe_listener):
    assert host.run(f"python3 -c \"import urllib.request;urllib.request.urlopen('http://127.0.0.1:{probe_listener}/')\"").rc == 0
    assert from_another_machine(laptop_ip, probe_listener).startswith("BLOCKED")
    assert from_another_machine(laptop_ip, 443).startswith("BLOCKED")
    ssh = from_another_machine(laptop_ip, 22)
    assert ssh.startswith("OPEN") and "SSH-2.0" in ssh
    with host.sudo():
        rules = host.check_output("nft list ruleset")
    assert "policy drop" in rules


def test_ssh_login_with_the_admin_key_still_works(laptop_ip):
    key = ephemeral() / "keys" / "id_admin"
    proc = subprocess.run(
        ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
         f"mastoadmin@{laptop_ip}", "id -un"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "mastoadmin"


def test_connector_service_from_the_roles_unit(host):
    service = host.service("cloudflared")
    assert service.is_running and service.is_enabled
    unit = host.file("/etc/systemd/system/cloudflared.service").content_string
    assert f"--no-autoupdate tunnel --metrics 127.0.0.1:20241 run --token-file {TOKEN_FILE}" in unit
    assert "After=network-online.target nginx.service" in unit
    assert "Restart=on-failure" in unit
    assert f"TUNNEL_EDGE={EMULATOR_CONTAINER}:7844" in unit
    # The connector STAND-IN, installed through the role's "binary" method.
    assert "cloudflared STAND-IN" in host.file("/usr/local/bin/cloudflared").content_string


def test_token_file_is_root_only_and_nowhere_else(host):
    with host.sudo():
        token_file = host.file(TOKEN_FILE)
        assert token_file.user == "root" and token_file.group == "root"
        assert token_file.mode == 0o600
        assert host.file("/etc/cloudflared").mode == 0o700
        token = token_file.content_string.strip()
        assert token not in host.file("/etc/systemd/system/cloudflared.service").content_string
        assert token not in host.check_output("journalctl -u cloudflared --no-pager -n 500")


def test_connector_ready_and_listening_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:20241").is_listening
    assert not host.socket("tcp://0.0.0.0:20241").is_listening
    out = host.check_output("python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:20241/ready').read().decode())\"")
    assert '"readyConnections"' in out


# --- day 1 holds what the README promises: the day-2 timers come with site.yml ---------------


@pytest.mark.parametrize("timer", [
    "mastodon-backup.timer", "mastodon-flood-guard.timer",          # mastodon_ops (site.yml, not backup.yml)
    "mastodon-media-remove.timer",  # mastodon_stack's clean-up (the statuses timer is off by default)
    "mastodon-preview-cards-remove.timer", "mastodon-prune-profiles.timer",
])
def test_site_installs_and_starts_the_timers(host, timer):
    unit = host.service(timer)
    assert unit.is_enabled, timer
    assert unit.is_running, timer


def test_site_installs_the_day2_scripts(host):
    for script in ("mastodon-backup", "mastodon-restore", "mastodon-flood-guard", "mastodon-status"):
        f = host.file(f"/usr/local/sbin/{script}")
        assert f.exists and f.user == "root" and f.mode == 0o750, script
