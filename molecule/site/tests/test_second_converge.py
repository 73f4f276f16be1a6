"""The second converge (Molecule's idempotence step, which fails the scenario on any change):
it changed nothing, sent no write to the Cloudflare emulator (its request log during that run,
read by time), and no secret shows in any site.yml output (converge, idempotence, the verify
mode converge of side_effect.yml) nor in the process list."""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import re

import pytest

from cloudflare_emulator import WRITE_METHODS
from conftest import control, site_runs


@pytest.fixture(scope="module")
def runs():
    found = site_runs()
    assert len(found) >= 2, "ansible.log has no converge and idempotence run of site.yml"
    return found


@pytest.fixture(scope="module")
def second_run_requests(emulator, runs):
    """The emulator's log entries (API requests) made while the idempotence step ran."""
    _, begin, end, _ = runs[1]
    entries = control(emulator, "GET", "/requests")["requests"]
    return [e for e in entries if begin - 0.5 <= e["time"] <= end + 0.5]


def test_second_converge_changed_nothing(runs, capsys):
    (_, begin1, end1, _), (_, begin2, end2, text) = runs[0], runs[1]
    # Figures to read, not pass marks: speed is measured by make bench-converge.
    with capsys.disabled():
        print(f"\n[site] wall time: first converge {end1 - begin1:.0f} s, "
              f"second converge {end2 - begin2:.0f} s (printed only; timings are not asserted)")
    recap = re.findall(r"\| (\S+)\s+: ok=\d+\s+changed=(\d+).*failed=(\d+)", text)
    assert recap, text[-2000:]
    assert all(c == "0" and f == "0" for _, c, f in recap), text[-3000:]


def test_second_converge_sends_no_write_to_cloudflare(second_run_requests):
    writes = [f"{r['method']} {r['path']}" for r in second_run_requests if r["method"] in WRITE_METHODS]
    assert not writes
    # It did ask the API (the role reads tunnel, token, route, zone, DNS record, status).
    assert len(second_run_requests) >= 4, second_run_requests


def test_no_secret_in_the_ansible_output(runs, secrets):
    names = ["first converge", "second converge", "verify mode converge"]
    outputs = {(names[i] if i < len(names) else f"run {i + 1}"): run[3] for i, run in enumerate(runs)}
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


def test_the_first_converge_ends_with_the_summary(runs):
    text = runs[0][3]
    tail = text[text.rindex("Show the summary"):]
    for needed in ("https://social.example.test/", "owner@example.test",
                   "root-only file /root/mastodon-owner-password.txt", "two-factor authentication",
                   "playbooks/status.yml", "backup.yml -e mastodon_ops_backup_fetch=true", "Time per role"):
        assert needed in tail, (needed, tail[:3000])
    for role in ("base_os", "selfsigned_tls", "mastodon_stack", "mastodon_ops", "cloudflare_tunnel"):
        assert re.search(rf"{role}: \d+ min \d+ s", tail), (role, tail[:3000])
    # The summary is the last task: only the recap follows it.
    assert "TASK [" not in tail.split("\n", 1)[1], tail[:3000]
