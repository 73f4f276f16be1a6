"""Controller-side checks of the day-2 playbooks (playbooks/backup|restore|upgrade|status|teardown).

Syntax of every playbook, the helper scripts' shell syntax, and the teardown's refusal without
confirmation (it must stop before touching any host: the inventory host is unreachable on
purpose, so any task that reached it would fail differently).
"""

import json
import os
import re
import subprocess
import sys

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


# --- one variable layer: the day-2 playbooks read an inventory written for site.yml -----------
# An inventory like inventories/example sets only the site-level names (selfhost_*). Each
# day-2 playbook includes roles through include_role; the probe below includes the SAME roles
# (read from the playbook itself, with the playbook's own include vars) through their validate
# entry points, public, on the controller with a local connection (checks only: nothing
# changes), then prints the role variables the playbook's tasks use. Before the roles' defaults
# fell back to the site-level names, status.yml had no account or token and teardown.yml no
# tunnel hostname.

SITE_LEVEL = {
    "selfhost_domain": "social.example.org",
    "selfhost_admin_user": "admin",
    "selfhost_ssh_authorized_keys": [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK05CmPYQtL8EQFfIEkFl8WpPjSAyElLclJ+gXT0Ugg8 test"],
    "selfhost_owner_username": "owner",
    "selfhost_owner_email": "owner@example.org",
    "selfhost_cloudflare_account_id": "0123456789abcdef0123456789abcdef",
    "selfhost_cloudflare_api_token": "not-a-real-token-day2-probe",
}
PROBES = {
    "mastodon_ops": ["mastodon_ops_domain", "mastodon_ops_tunnel_name", "mastodon_ops_cloudflare_account_id"],
    "cloudflare_tunnel": ["cloudflare_tunnel_hostname", "cloudflare_tunnel_name", "cloudflare_tunnel_account_id"],
    "mastodon_stack": ["mastodon_stack_domain", "mastodon_stack_owner_email", "mastodon_stack_owner_username"],
}
TOKENS = {"mastodon_ops": "mastodon_ops_cloudflare_api_token", "cloudflare_tunnel": "cloudflare_tunnel_api_token"}


def _role_includes(name):
    """(role, include vars) of every include_role in playbooks/<name>.yml, in order."""
    import yaml  # pylint: disable=import-outside-toplevel

    found = []
    for play in yaml.safe_load((ROOT / "playbooks" / f"{name}.yml").read_text()):
        for task in play.get("tasks", []):
            inc = task.get("ansible.builtin.include_role")
            if inc:
                found.append((inc["name"].split(".")[-1], task.get("vars", {})))
    return found


def _probe(tmp_path, name, extra_inventory=None, inventory=None):
    import yaml  # pylint: disable=import-outside-toplevel

    args = ["--check"]
    if inventory is None:
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"mastodon": {"hosts": {"checkhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            **SITE_LEVEL, **(extra_inventory or {})}}}}}}))
    else:  # a project inventory, probed on the controller instead of its host
        args += ["-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}"]
    includes = _role_includes(name)
    assert includes, name
    roles = sorted({include[0] for include in includes})
    probe = {var: "{{ %s }}" % var for role in roles for var in PROBES[role]}
    probe.update({TOKENS[role] + "_set": "{{ %s | length > 0 }}" % TOKENS[role] for role in roles if role in TOKENS})
    tasks = [{"name": f"Check {role} as {name}.yml includes it",
              "ansible.builtin.include_role": {"name": f"selfhost.mastodon.{role}", "tasks_from": "validate",
                                               "public": True},
              "vars": include_vars} for role, include_vars in includes]
    tasks.append({"name": "Show the role variables", "ansible.builtin.debug": {
        "msg": "PROBE {{ __probe | to_json }}"}, "vars": {"__probe": probe}})
    playbook = tmp_path / "probe.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Probe", "hosts": "mastodon", "gather_facts": True,
                                         "gather_subset": ["min"], "tasks": tasks}], sort_keys=False))
    out = ansible_playbook(playbook, *args, inventory=inventory, timeout=600)
    assert out.returncode == 0, out.output[-4000:]
    assert SITE_LEVEL["selfhost_cloudflare_api_token"] not in out.output
    match = re.search(r'"msg": "PROBE (.*)"\n', out.stdout)
    assert match, out.stdout[-3000:]
    return roles, json.loads(match.group(1).encode().decode("unicode_escape"))


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_day2_playbook_resolves_the_role_variables_from_the_site_level_names(tmp_path, name):
    roles, values = _probe(tmp_path, name)
    expected = {
        "mastodon_ops_domain": "social.example.org", "mastodon_ops_tunnel_name": "social.example.org",
        "mastodon_ops_cloudflare_account_id": SITE_LEVEL["selfhost_cloudflare_account_id"],
        "mastodon_ops_cloudflare_api_token_set": True,
        "cloudflare_tunnel_hostname": "social.example.org", "cloudflare_tunnel_name": "social.example.org",
        "cloudflare_tunnel_account_id": SITE_LEVEL["selfhost_cloudflare_account_id"],
        "cloudflare_tunnel_api_token_set": True,
        "mastodon_stack_domain": "social.example.org", "mastodon_stack_owner_email": "owner@example.org",
        "mastodon_stack_owner_username": "owner",
    }
    assert "mastodon_ops" in roles, roles
    assert values == {k: v for k, v in expected.items() if k in values}, values
    assert len(values) >= 4, values


def test_a_role_variable_in_the_inventory_wins_over_the_site_level_name(tmp_path):
    _roles, values = _probe(tmp_path, "teardown", {"cloudflare_tunnel_hostname": "tunnel.example.org"})
    assert values["cloudflare_tunnel_hostname"] == "tunnel.example.org"
    assert values["cloudflare_tunnel_name"] == "tunnel.example.org"
    assert values["mastodon_ops_tunnel_name"] == "tunnel.example.org"
    assert values["mastodon_ops_domain"] == "social.example.org"


def test_no_playbook_copies_the_mapping():
    # One place maps the site-level names onto the roles: the roles' defaults. No playbook sets
    # a role variable from a selfhost_* name (play vars, set_fact or include vars).
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue
            assert not re.search(r"^\s*\w+:\s*.*\{\{\s*selfhost_(domain|admin_user|ssh_authorized_keys|owner_\w+|cloudflare_\w+)",
                                 line), f"{path.name}: {line}"


@pytest.mark.parametrize("name", ["status", "teardown", "backup"])
def test_the_demo_inventory_drives_the_day2_playbooks(tmp_path, name):
    # The README's day-2 commands after `make demo` (ansible-playbook -i inventories/demo
    # playbooks/status.yml ...): the demo inventory sets only the site-level names.
    _roles, values = _probe(tmp_path, name, inventory=str(ROOT / "inventories" / "demo"))
    assert values["mastodon_ops_domain"] == "social.example.test", values
    assert values["mastodon_ops_cloudflare_account_id"] == "0123456789abcdef0123456789abcdef", values
    assert values["mastodon_ops_cloudflare_api_token_set"] is True, values
    if name == "teardown":
        assert values["cloudflare_tunnel_hostname"] == "social.example.test", values
