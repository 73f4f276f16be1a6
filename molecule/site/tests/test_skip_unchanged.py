"""Re-runs skip what did not change (docs/configuring.md): three runs of site.yml a user types,
after the leak check's run left a record of a complete run for base_os, mastodon_stack and
mastodon_ops (side_effect.yml, tasks/skip_run.yml; outputs in <ephemeral>/skip-runs/):

  full    -e selfhost_skip_unchanged=false: every task runs and nothing changes (the check of
          every task that Molecule's idempotence step made before re-runs skipped the roles)
  noop    the default: each of the three roles skips its tasks after one read, nothing changes
  edited  after a line added to nginx's site file and mastodon-backup.timer stopped by hand:
          mastodon_stack and mastodon_ops run again and put both back; base_os skips
"""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import re

import pytest

from conftest import ephemeral
from test_dry_run import RECAP, changed_task_names

INCLUDES = {
    "base_os": "Update, secure and harden the base system - ",
    "mastodon_stack": "Install, configure and run Mastodon - ",
    "mastodon_ops": "Install the day-2 scripts and timers - ",
}


def run(name):
    folder = ephemeral() / "skip-runs"
    assert (folder / f"{name}.rc").exists(), f"the {name} run did not run"
    rc, millis = (int(v) for v in (folder / f"{name}.rc").read_text().split())
    output = (folder / f"{name}.log").read_text(errors="replace")
    return rc, millis / 1000, output


def reasons(output):
    """Why each role's tasks ran or not: the include task's name after the dash."""
    found = {}
    for role, include in INCLUDES.items():
        match = re.search(r"^TASK \[selfhost\.mastodon\." + role + " : " + re.escape(include) + r"(.*)\] \*+$",
                          output, re.M)
        assert match, f"no include task of {role}"
        found[role] = match.group(1)
    return found


def tasks_run(output):
    return sum(int(ok) for _host, ok, *_ in RECAP.findall(output))


@pytest.fixture(scope="module")
def runs():
    return {name: run(name) for name in ("full", "noop", "edited")}


def test_every_task_runs_with_skipping_off_and_changes_nothing(runs):
    rc, _secs, output = runs["full"]
    assert rc == 0, output[-3000:]
    assert set(reasons(output).values()) == {"every task runs (skipping unchanged runs is off)"}
    changed = [int(c) for _h, _o, c, _u, _f in RECAP.findall(output)]
    assert changed and not any(changed), changed_task_names(output)


def test_the_default_re_run_skips_the_three_roles_and_changes_nothing(runs, capsys):
    rc, secs, output = runs["noop"]
    assert rc == 0, output[-3000:]
    for role, why in reasons(output).items():
        assert why.startswith("nothing changed since the complete run of "), (role, why)
    changed = [int(c) for _h, _o, c, _u, _f in RECAP.findall(output)]
    assert changed and not any(changed), changed_task_names(output)
    _rc, full_secs, full = runs["full"]
    with capsys.disabled():  # figures to read; speed is measured by make bench-converge
        print(f"\n[site] re-run with every task {full_secs:.0f} s ({tasks_run(full)} tasks ok), "
              f"default re-run {secs:.0f} s ({tasks_run(output)} tasks ok)")
    # The three roles' phases (about 95 tasks that reach the laptop) are not run: what is left is
    # the input checks, the release read, selfsigned_tls and cloudflare_tunnel.
    assert tasks_run(output) < tasks_run(full) * 0.7, (tasks_run(output), tasks_run(full))


def test_a_hand_edit_and_a_stopped_timer_are_put_back(runs, host):
    rc, _secs, output = runs["edited"]
    assert rc == 0, output[-3000:]
    why = reasons(output)
    assert why["mastodon_stack"] == "changed since the last run: /etc/nginx/sites-available/mastodon"
    assert why["mastodon_ops"] == "not running or not enabled: mastodon-backup.timer"
    assert why["base_os"].startswith("nothing changed since the complete run of ")
    with host.sudo():
        assert "edited by hand" not in host.file("/etc/nginx/sites-available/mastodon").content_string
    assert host.service("mastodon-backup.timer").is_running
