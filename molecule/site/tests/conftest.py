"""Shared helpers for the site scenario's tests: the visitor's view through the emulated edge.

The Cloudflare side is the project's emulator (a TEST STAND-IN for Cloudflare), running in the
container selfhost-cf-emulator-site-<distro>; prepare.yml recorded where the controller reaches it in
emulator/emulator.json. Visitors connect to its edge on 127.0.0.1 with HTTPS (a test CA made by
prepare.yml) and the Host/SNI of the Mastodon domain, as a browser would.
"""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import base64
import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from support.edge_visit import visit_edge
from cloudflare_emulator import TOKEN_FULL as API_TOKEN  # the seeded test token the inventory uses

DOMAIN = "social.example.test"
EMULATOR_CONTAINER = "selfhost-cf-emulator-site-" + (os.environ.get("SELFHOST_DISTRO") or "debian13")
TOKEN_FILE = "/etc/cloudflared/tunnel-token"
CA_FILE = f"/etc/ssl/selfhost/{DOMAIN}-origin.pem"


def ephemeral():
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


@pytest.fixture(scope="session")
def emulator():
    return json.loads((ephemeral() / "emulator" / "emulator.json").read_text())


def control(emulator, method, sub):
    """Call the emulator's test-control API (never counted in its request log)."""
    req = urllib.request.Request(f"{emulator['api']}/__emulator__{sub}", method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (127.0.0.1 only)
        return json.loads(resp.read())


def visit(emulator, path, timeout=30):
    """GET https://DOMAIN<path> through the emulated edge; return (status, headers, body)."""
    return visit_edge(emulator["edge_port"], emulator["edge_ca"], DOMAIN, path, "site-test", timeout)


def visit_until(emulator, path, want, timeout=60):
    """Visit until the status is *want* (the connector picks up configuration changes)."""
    deadline = time.monotonic() + timeout
    while True:
        result = visit(emulator, path)
        if result[0] == want or time.monotonic() > deadline:
            return result
        time.sleep(1)


def ansible_log_runs():
    """The scenario's ansible.log split into runs: list of (pid, first_ts, last_ts, text)."""
    runs = {}
    order = []
    pattern = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) p=(\d+) ")
    current = None
    for line in (ephemeral() / "ansible.log").read_text(errors="replace").splitlines():
        match = pattern.match(line)
        if match:
            stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000
            current = match.group(3)
            if current not in runs:
                runs[current] = [stamp, stamp, []]
                order.append(current)
            runs[current][1] = stamp
        if current:
            runs[current][2].append(line)
    return [(pid, runs[pid][0], runs[pid][1], "\n".join(runs[pid][2])) for pid in order]


def dry_run_pids():
    """{phase: pid} of the dry runs (site.yml --check --diff) that tasks/dry_run.yml started
    from prepare.yml ("fresh") and side_effect.yml ("converged"); they log to ansible.log too."""
    return {path.stem: path.read_text().strip() for path in sorted((ephemeral() / "dry-run").glob("*.pid"))}


def site_runs():
    """The runs of the site playbook, in order: Molecule's converge, its idempotence step and
    side_effect.yml's converge in verify mode (each ansible-playbook run Molecule starts is
    logged to ansible.log, molecule.yml's ANSIBLE_LOG_PATH); not the dry runs."""
    dry = set(dry_run_pids().values())
    return [run for run in ansible_log_runs()
            if "PLAY [Deploy Mastodon behind a Cloudflare Tunnel]" in run[3] and run[0] not in dry]


@pytest.fixture(scope="module")
def secrets(host):
    """Every secret value the run handled: API token, tunnel token and secret, Mastodon's."""
    with host.sudo():
        token = host.file(TOKEN_FILE).content_string.strip()
        values = {"Cloudflare API token": API_TOKEN, "tunnel token": token}
        decoded = json.loads(base64.b64decode(token + "=" * (-len(token) % 4)))
        values["tunnel secret"] = decoded["s"]
        for path in ("/etc/mastodon/secrets.env",):
            if host.file(path).exists:
                for line in host.file(path).content_string.splitlines():
                    key, sep, value = line.partition("=")
                    value = value.strip().strip('"').strip("'")
                    # VAPID_PUBLIC_KEY is public by design (browsers receive it).
                    if sep and not key.startswith("#") and "PUBLIC" not in key and len(value) >= 16:
                        values[f"Mastodon {key.strip()}"] = value
        password = host.file("/root/mastodon-owner-password.txt")
        if password.exists and password.content_string.strip():
            values["owner password"] = password.content_string.strip()
    return values


def docker_exec(container, *command, check=True):
    return subprocess.run(["docker", "exec", container, *command], capture_output=True,
                          text=True, check=check, timeout=60)
