"""Controller-side checks of the day-2 playbooks (playbooks/backup|restore|upgrade|status|teardown).

Syntax of every playbook, the helper scripts' shell syntax, and the teardown's refusal without
confirmation (it must stop before touching any host: the inventory host is unreachable on
purpose, so any task that reached it would fail differently).
"""

import os
import subprocess

import pytest

from support.ansible_cli import ROOT, ansible_playbook

PLAYBOOKS = ["backup", "restore", "upgrade", "status", "teardown", "flood_guard_reset"]


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_playbook_syntax(name):
    out = ansible_playbook(ROOT / "playbooks" / f"{name}.yml", "--syntax-check", inventory="localhost,",
                           timeout=600)
    assert out.returncode == 0, out.output


@pytest.mark.parametrize("script", ["mastodon-backup", "mastodon-restore"])
def test_script_shell_syntax(script):
    path = os.path.join(ROOT, "roles", "mastodon_ops", "files", script)
    out = subprocess.run(["bash", "-n", path], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_flood_guard_is_python_and_answers_help():
    path = os.path.join(ROOT, "roles", "mastodon_ops", "files", "mastodon-flood-guard")
    out = subprocess.run(["python3", path, "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "--reset" in out.stdout and "--status" in out.stdout


def test_teardown_refuses_without_confirmation(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    mastodon:\n      hosts:\n"
        "        unreachable.invalid:\n          ansible_host: 192.0.2.1\n")
    out = ansible_playbook(ROOT / "playbooks" / "teardown.yml", inventory=inventory, timeout=120)
    assert out.returncode != 0
    assert "Teardown not confirmed: nothing was changed" in out.stdout, out.stdout + out.stderr
    assert "UNREACHABLE" not in out.stdout


def test_teardown_wrong_answer_is_refused(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    mastodon:\n      hosts:\n        h1:\n"
                         "          ansible_host: 192.0.2.1\n")
    out = ansible_playbook(ROOT / "playbooks" / "teardown.yml", "-e", "confirm_teardown=y",
                           inventory=inventory, timeout=120)
    assert out.returncode != 0
    assert "Teardown not confirmed" in out.stdout, out.stdout + out.stderr
