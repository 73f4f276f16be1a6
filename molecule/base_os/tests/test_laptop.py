"""The laptop is a server: closing the lid does nothing and nothing can put it to sleep.

Checked as the owner would on the laptop: the logind drop-in, logind's merged configuration
(systemd-analyze cat-config), the values the running logind uses (its D-Bus properties) and
the masked targets. The last tests take the laptop back to a fresh state for these settings
(no drop-in, targets not masked) and run the role again with ansible-playbook
(molecule/base_os/negative.yml, with a valid inventory): in check mode, with the variable
turned off, and for real.
"""

import json
import re
from pathlib import Path

import pytest
from support.ansible_cli import ansible_playbook

SCENARIO = Path(__file__).resolve().parent.parent
DROPIN = "/etc/systemd/logind.conf.d/50-selfhost-lid.conf"
LID_KEYS = ["HandleLidSwitch", "HandleLidSwitchExternalPower", "HandleLidSwitchDocked"]
TARGETS = ["sleep.target", "suspend.target", "hibernate.target", "hybrid-sleep.target",
           "suspend-then-hibernate.target"]
BUS = "org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager"


def effective_settings(text):
    """Key -> value of logind's [Login] settings as systemd reads them: the last one wins."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def logind_active(host):
    return host.run("systemctl is-active systemd-logind.service").stdout.strip() == "active"


def running_lid_settings(host):
    """What the running logind does with the lid, from its D-Bus properties."""
    out = host.check_output(f"busctl get-property {BUS} {' '.join(LID_KEYS)}")
    return dict(zip(LID_KEYS, re.findall(r'^s "([^"]*)"$', out, re.M)))


def target_states(host):
    out = host.run(f"systemctl is-enabled {' '.join(TARGETS)}").stdout.split()
    return dict(zip(TARGETS, out))


def fresh_laptop(host):
    """Undo what the role did for the lid and the targets, as on a laptop never converged."""
    assert host.run(f"rm -f {DROPIN}").rc == 0
    assert host.run(f"systemctl unmask {' '.join(TARGETS)}").rc == 0
    if logind_active(host):
        assert host.run("systemctl kill --kill-whom=main --signal=SIGHUP "
                        "systemd-logind.service").rc == 0


def task_changed(output, name):
    """True when the task (or handler) *name* reported changed before the next task began."""
    return re.search(rf"{re.escape(name)}[^\n]*\n(?:(?!TASK \[|RUNNING HANDLER \[)[^\n]*\n)*?"
                     rf"changed: \[", output) is not None


def run_role(*args, extra_vars=None):
    return ansible_playbook(SCENARIO / "negative.yml", *args, "-e", json.dumps(extra_vars or {}),
                            timeout=600)


# --- After the converge -------------------------------------------------------------------


def test_lid_dropin(host):
    dropin = host.file(DROPIN)
    assert dropin.is_file
    assert (dropin.user, dropin.group, dropin.mode) == ("root", "root", 0o644)
    text = dropin.content_string
    assert text.startswith("# Managed by Ansible (selfhost.mastodon.base_os)")
    assert "[Login]" in text
    assert {k: v for k, v in effective_settings(text).items() if k in LID_KEYS} == dict.fromkeys(
        LID_KEYS, "ignore")


def test_logind_configuration_ignores_the_lid(host):
    merged = host.check_output("systemd-analyze cat-config systemd/logind.conf")
    assert f"# {DROPIN}" in merged
    settings = effective_settings(merged)
    for key in LID_KEYS:
        assert settings.get(key) == "ignore", key


def test_running_logind_ignores_the_lid(host):
    if not logind_active(host):
        pytest.skip("systemd-logind does not run on this image")
    assert running_lid_settings(host) == dict.fromkeys(LID_KEYS, "ignore")


@pytest.mark.parametrize("target", TARGETS)
def test_sleep_target_is_masked(host, target):
    assert host.run(f"systemctl is-enabled {target}").stdout.strip() == "masked"
    link = host.file(f"/etc/systemd/system/{target}")
    assert link.is_symlink and link.linked_to == "/dev/null"


# --- Runs of the role from a fresh state (drop-in gone, targets unmasked) --------------------


def test_check_mode_on_a_fresh_laptop_shows_and_changes_nothing(host):
    fresh_laptop(host)
    try:
        before = target_states(host)
        assert "masked" not in before.values(), before
        result = run_role("--check", "--diff")
        assert result.returncode == 0, result.output
        assert task_changed(result.output, "Make closing the lid do nothing"), result.output
        for key in LID_KEYS:
            assert f"+{key}=ignore" in result.output, key
        for target in TARGETS:
            assert re.search(rf"changed: \[[^\]]+\] => \(item={re.escape(target)}\)",
                             result.output), target
        assert "failed=0" in result.output
        # Nothing was written or masked.
        assert not host.file(DROPIN).exists
        assert target_states(host) == before
    finally:
        restored = run_role("--tags", "base_os_laptop")
    assert restored.returncode == 0, restored.output
    assert host.file(DROPIN).exists


def test_turned_off_leaves_logind_and_the_targets_alone(host):
    fresh_laptop(host)
    try:
        before = target_states(host)
        result = run_role("--tags", "base_os_laptop",
                          extra_vars={"base_os_laptop_no_sleep": False})
        assert result.returncode == 0, result.output
        assert "changed=0" in result.output, result.output
        assert not host.file(DROPIN).exists
        assert target_states(host) == before
    finally:
        restored = run_role("--tags", "base_os_laptop")
    assert restored.returncode == 0, restored.output


def test_a_run_on_a_fresh_laptop_applies_it_and_the_running_logind_follows(host):
    fresh_laptop(host)
    active = logind_active(host)
    if active:
        # Without the drop-in, logind is back to its defaults: the lid suspends on battery.
        assert running_lid_settings(host)["HandleLidSwitch"] == "suspend"
    result = run_role()
    assert result.returncode == 0, result.output
    assert "failed=0" in result.output
    if active:
        assert task_changed(result.output, "Reload systemd-logind"), result.output
        assert running_lid_settings(host) == dict.fromkeys(LID_KEYS, "ignore")
    assert set(target_states(host).values()) == {"masked"}
    again = run_role("--tags", "base_os_laptop")
    assert again.returncode == 0 and "changed=0" in again.output, again.output
