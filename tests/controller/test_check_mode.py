"""Check mode (--check --diff) must work: a read-only command runs in check mode too.

Ansible skips a command or shell task in check mode unless it says `check_mode: false`; a later
task that reads its registered result then meets an empty one (issue 23: `nginx -v` skipped,
then "Input version value cannot be empty"). Here every command/shell task of the roles (tasks
and handlers) that declares itself read-only with `changed_when: false` must also say
`check_mode: false` (itself or through its block), or be kept out of check mode on purpose with
a `when` condition `not ansible_check_mode` (something a real run wrote must exist first), or be
in EXCEPTIONS with the reason. The scan is checked against examples, so that it can fail.
"""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"ansible.builtin.command", "ansible.builtin.shell", "ansible.builtin.raw",
            "command", "shell", "raw", "ansible.legacy.command", "ansible.legacy.shell"}

# (file relative to the project, task name): why this read-only command is skipped in check mode.
EXCEPTIONS = {}


def _when_list(task):
    when = task.get("when", [])
    return [str(item) for item in (when if isinstance(when, list) else [when])]


def read_only_commands_skipped_in_check_mode(tasks, check_mode=None):
    """Names of the read-only (changed_when: false) command/shell tasks of *tasks* that would be
    skipped in check mode: neither `check_mode: false` (on the task or an enclosing block) nor a
    `when` that keeps them out of check mode on purpose."""
    found = []
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        mode = task.get("check_mode", check_mode)
        for key in ("block", "rescue", "always"):
            if key in task:
                found += read_only_commands_skipped_in_check_mode(task[key], mode)
        if not COMMANDS.intersection(task):
            continue
        read_only = task.get("changed_when") is False or str(task.get("changed_when")).lower() == "false"
        on_purpose = any("not ansible_check_mode" in item and " or " not in item for item in _when_list(task))
        if read_only and mode is not False and not on_purpose:
            found.append(task.get("name", "(unnamed)"))
    return found


def role_task_files():
    return sorted(list(ROOT.glob("roles/*/tasks/*.yml")) + list(ROOT.glob("roles/*/handlers/*.yml")))


def test_the_scan_finds_the_role_files():
    files = role_task_files()
    assert len(files) >= 40, files
    assert {path.parts[-3] for path in files} >= {"base_os", "selfsigned_tls", "mastodon_stack",
                                                  "cloudflare_tunnel", "mastodon_ops"}


@pytest.mark.parametrize("path", role_task_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_read_only_commands_run_in_check_mode(path):
    rel = str(path.relative_to(ROOT))
    skipped = [name for name in read_only_commands_skipped_in_check_mode(yaml.safe_load(path.read_text()))
               if (rel, name) not in EXCEPTIONS]
    assert not skipped, (f"{rel}: read-only commands (changed_when: false) without check_mode: false "
                         f"would be skipped by --check: {skipped}")


def test_the_exceptions_still_exist():
    """An exception for a task that no longer exists (or is now fine) is removed from the list."""
    for (rel, name), why in EXCEPTIONS.items():
        assert why
        assert name in read_only_commands_skipped_in_check_mode(yaml.safe_load((ROOT / rel).read_text())), rel


BAD = """
- name: Read the nginx version
  ansible.builtin.command: nginx -v
  register: version
  changed_when: false
- name: In a block without check_mode
  block:
    - name: Ask git
      ansible.builtin.shell: git describe
      changed_when: false
- name: Kept out of check mode only sometimes
  ansible.builtin.command: sshd -t
  changed_when: false
  when: not ansible_check_mode or other
"""

GOOD = """
- name: Read the nginx version
  ansible.builtin.command: nginx -v
  changed_when: false
  check_mode: false
- name: A block that runs in check mode
  check_mode: false
  block:
    - name: Ask git
      ansible.builtin.shell: git describe
      changed_when: false
- name: Check what a real run wrote
  ansible.builtin.command: sshd -t
  changed_when: false
  when: not ansible_check_mode
- name: A command that changes something is Ansible's to skip
  ansible.builtin.command: make install
  changed_when: true
- name: Not a command
  ansible.builtin.debug:
    msg: hello
  changed_when: false
"""


def test_the_scan_flags_what_check_mode_would_skip():
    assert read_only_commands_skipped_in_check_mode(yaml.safe_load(BAD)) == [
        "Read the nginx version", "Ask git", "Kept out of check mode only sometimes"]
    assert read_only_commands_skipped_in_check_mode(yaml.safe_load(GOOD)) == []
