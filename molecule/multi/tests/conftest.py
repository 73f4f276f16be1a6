"""Shared helpers for the multi scenario's tests: three hosts (db, web1, web2) and the Cloudflare
emulator (a TEST STAND-IN for Cloudflare) on one Docker network.

The tests talk to the containers with ``docker exec`` and to the emulated edge on 127.0.0.1, as
a visitor's browser would (HTTPS, Host/SNI of the Mastodon domain). They use no testinfra
``host`` fixture, so each test runs once, not once per host.
"""
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from support.edge_visit import visit_edge
from cloudflare_emulator import TOKEN_FULL as API_TOKEN  # the seeded test token of the inventory

DOMAIN = "social.example.test"
DISTRO = os.environ.get("SELFHOST_DISTRO") or "debian13"
EMULATOR_CONTAINER = f"selfhost-cf-emulator-multi-{DISTRO}"
ACCOUNT = "0123456789abcdef0123456789abcdef"
DB = f"selfhost-multi-db-{DISTRO}"
WEB1 = f"selfhost-multi-web1-{DISTRO}"
WEB2 = f"selfhost-multi-web2-{DISTRO}"
WEBS = (WEB1, WEB2)


def ephemeral():
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


@pytest.fixture(scope="session")
def emulator():
    return json.loads((ephemeral() / "emulator" / "emulator.json").read_text())


def docker_exec(container, *command, check=True, timeout=60):
    return subprocess.run(["docker", "exec", container, *command], capture_output=True,
                          text=True, check=check, timeout=timeout)


def shell(container, script, check=True, timeout=60):
    return docker_exec(container, "sh", "-c", script, check=check, timeout=timeout)


def address(container):
    return shell(container, "hostname -I").stdout.split()[0]


def api(emulator, path):
    """GET a Cloudflare v4 API path on the emulator with the inventory's test token."""
    req = urllib.request.Request(f"{emulator['api']}{path}",
                                 headers={"Authorization": f"Bearer {API_TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (127.0.0.1 only)
        return json.loads(resp.read())["result"]


def connectors(emulator):
    """The origin addresses of the connectors live on the site's tunnel, per connector."""
    tunnels = [t for t in api(emulator, f"/accounts/{ACCOUNT}/cfd_tunnel?is_deleted=false")
               if not t.get("deleted_at")]
    assert len(tunnels) == 1, f"one tunnel expected, the emulator has {len(tunnels)}"
    clients = api(emulator, f"/accounts/{ACCOUNT}/cfd_tunnel/{tunnels[0]['id']}/connections")
    return sorted({conn["origin_ip"] for client in clients for conn in client["conns"]})


def visit(emulator, path, timeout=30):
    """GET https://DOMAIN<path> through the emulated edge; return (status, body)."""
    status, dummy, body = visit_edge(emulator["edge_port"], emulator["edge_ca"], DOMAIN, path,
                                     "multi-test", timeout)
    return status, body


def wait_for(predicate, timeout=60, interval=1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
