"""Runs first (file order): the second converge, as molecule's idempotence step would, but
started here so that it can be timed, its output kept, and the emulator's request log read
for exactly this run. Then: no secret in any converge output, nor in the process list."""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (WRITE_METHODS, ansible_env, control, ephemeral, inventory, site_runs)

SECOND_OUTPUT = "second-converge.out"


@pytest.fixture(scope="module")
def second_converge(emulator):
    control(emulator, "DELETE", "/requests")
    start = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", "-i", inventory(), str(Path(__file__).resolve().parents[1] / "converge.yml")],
        env=ansible_env(), capture_output=True, text=True, timeout=1800, check=False)
    took = time.monotonic() - start
    output = proc.stdout + proc.stderr
    (ephemeral() / SECOND_OUTPUT).write_text(output)
    requests = control(emulator, "GET", "/requests")["requests"]
    return proc.returncode, output, took, requests


def test_second_converge_changes_nothing_on_the_host(second_converge, capsys):
    rc, output, second, _ = second_converge
    first_runs = site_runs()
    if first_runs:  # a figure to read, not a pass mark: speed is measured by make bench-converge
        _, begin, end, _ = first_runs[0]
        with capsys.disabled():
            print(f"\n[site] wall time: first converge {end - begin:.0f} s, "
                  f"second converge {second:.0f} s (printed only; timings are not asserted)")
    assert rc == 0, output[-4000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+).*failed=(\d+)", output, re.M)
    assert recap, output[-2000:]
    changed = [line for line in output.splitlines() if line.startswith("changed:")]
    assert all(c == "0" and f == "0" for _, c, f in recap), "\n".join(changed) or output[-3000:]


def test_second_converge_sends_no_write_to_cloudflare(second_converge):
    rc, _, _, requests = second_converge
    assert rc == 0
    writes = [f"{r['method']} {r['path']}" for r in requests if r["method"] in WRITE_METHODS]
    assert not writes
    # It did ask the API (the role reads tunnel, token, route, zone, DNS record, status).
    assert len(requests) >= 4, requests


def test_no_secret_in_the_ansible_output(second_converge, secrets):
    outputs = {"first converge": site_runs()[0][3], "second converge": second_converge[1]}
    assert len(secrets) >= 3
    leaks = [f"{name} in the {run} output" for run, text in outputs.items()
             for name, value in secrets.items() if value and value in text]
    assert not leaks


def test_no_secret_in_the_process_list(host, secrets):
    with host.sudo():
        # Every process's command line (what ps shows) and cloudflared's environment.
        listing = host.check_output("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done")
        pid = host.check_output("systemctl show -p MainPID --value cloudflared.service").strip()
        environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    assert "--token-file /etc/cloudflared/tunnel-token" in listing
    leaks = [name for name, value in secrets.items() if value in listing or value in environ]
    assert not leaks
