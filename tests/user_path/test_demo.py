"""The README's demo, typed as printed: `make demo`, then the day-2 commands the README gives
for the demo (status, backup, teardown) and `make demo-clean`, in one shell on a
pseudo-terminal, in a copy of this clone (its own .build/demo), as a person runs them.

Run by `make test` beside the Molecule scenarios (tests/platform/matrix.yml: demo). The demo's
stand-ins are the ones it names itself: the Cloudflare emulator, the connector stand-in and the
Mastodon TEST DOUBLE. The demo's containers and ports are fixed (tests/platform/demo.sh), so
only one demo runs at a time on a machine.
"""
# pylint: disable=redefined-outer-name  # pytest fixtures

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL, ZONE_ID
from support.edge_visit import visit_edge
from support.readme import block
from support.shell_session import ShellSession
from support.user_clone import copy_clone, user_env

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".build" / "user-path-demo"
CLONE = WORK / "clone"
LAPTOP = "selfhost-demo-laptop"
EMULATOR = "selfhost-cf-emulator-demo"
_state = {"failed": None, "times": []}


def running(name):
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", name],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() == "true"


def api(path):
    port = os.environ.get("SELFHOST_DEMO_API_PORT", "18787")
    req = urllib.request.Request(f"http://127.0.0.1:{port}/client/v4{path}",
                                 headers={"Authorization": f"Bearer {TOKEN_FULL}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (127.0.0.1 only)
        return json.loads(resp.read())["result"]


@pytest.fixture(scope="module")
def shell():
    if running(LAPTOP) or running(EMULATOR):
        pytest.fail(f"a demo is already running ({LAPTOP}); `make demo-clean` it first")
    if WORK.exists():
        shutil.rmtree(WORK)
    copy_clone(CLONE)
    session = ShellSession(CLONE, user_env(), WORK / "shell.log")
    yield session
    session.close()
    subprocess.run(["docker", "rm", "-f", LAPTOP, EMULATOR], capture_output=True, check=False)
    subprocess.run(["docker", "network", "rm", "selfhost-demo"], capture_output=True, check=False)


def type_block(shell, name):
    if _state["failed"]:
        pytest.skip(f"an earlier step failed: {_state['failed']}")
    results = []
    for line in block(name).commands():
        result = shell.run(line, timeout=2400)
        results.append(result)
        _state["times"].append((line, round(result.seconds, 1), result.changed() if result.recap() else "-"))
        if result.rc != 0:
            _state["failed"] = line
            pytest.fail(f"`{line}` exited {result.rc}:\n{result.output[-6000:]}")
    return results


def test_make_demo(shell):
    result = type_block(shell, "demo")[-1]
    assert running(LAPTOP) and running(EMULATOR)
    assert "failed=0" in result.output and "unreachable=0" in result.output
    # A visitor through the emulated edge and the tunnel, as the demo's printed curl does.
    edge_port = os.environ.get("SELFHOST_DEMO_EDGE_PORT", "18443")
    edge_ca = str(CLONE / ".build/demo/emulator/edge-ca.pem")
    status, _headers, body = visit_edge(edge_port, edge_ca, "social.example.test", "/health", "user-path-demo")
    assert status == 200, body


def test_day2_on_the_demo(shell):
    """status (healthy), backup, teardown (the tunnel and its DNS record gone from the
    emulator), then make demo-clean (the containers gone)."""
    assert api(f"/accounts/{ACCOUNT_ID}/cfd_tunnel?is_deleted=false"), "make demo left no tunnel"
    if _state["failed"]:
        pytest.skip(f"an earlier step failed: {_state['failed']}")
    seen = []
    for line in block("demo-day2").commands():
        result = shell.run(line, timeout=1200)
        seen.append(line)
        _state["times"].append((line, round(result.seconds, 1), result.changed() if result.recap() else "-"))
        assert result.rc == 0, f"`{line}` exited {result.rc}:\n{result.output[-6000:]}"
        assert TOKEN_FULL not in result.output, f"the API token was printed by `{line}`"
        if "status.yml" in line:
            assert re.search(r"\): HEALTHY", result.output), result.output[-3000:]
        if "teardown.yml" in line:
            assert api(f"/accounts/{ACCOUNT_ID}/cfd_tunnel?is_deleted=false") == []
            assert api(f"/zones/{ZONE_ID}/dns_records?name=social.example.test") == []
    assert any("status.yml" in s for s in seen) and any("teardown.yml" in s for s in seen)
    assert any("demo-clean" in s for s in seen)
    assert not running(LAPTOP) and not running(EMULATOR)


def test_times():
    lines = ["demo user path: seconds | changed | command"]
    lines += [f"  {s:>7} {c!s:>7}  {line}" for line, s, c in _state["times"]]
    print("\n".join(lines))
    assert _state["times"] and not _state["failed"], _state["failed"]
