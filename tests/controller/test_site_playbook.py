"""Controller-side checks of playbooks/site.yml: it parses (by path and through the collection as
selfhost.mastodon.site), the example inventory satisfies every role's argument spec, and a
wrong inventory fails in the first play, before any role runs and before anything changes.

The inventory checks run the playbook against the controller itself with a local connection,
but safely: --check, and --tags selfhost_checks_only so that only tasks tagged "always" run
(fact gathering, the site's checks and the roles' argument-spec validation); every task that
could change something is skipped by the tag filter even if a check wrongly passed.
"""
import re
import sys

import pytest

from support.ansible_cli import ROOT, ansible_playbook

SITE = ROOT / "playbooks" / "site.yml"
ROLES = ("base_os", "selfsigned_tls", "mastodon_stack", "cloudflare_tunnel")


VALID = {
    "selfhost_domain": "social.example.org",
    "selfhost_admin_user": "admin",
    "selfhost_ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK05CmPYQtL8EQFfIEkFl8WpPjSAyElLclJ+gXT0Ugg8 test"],
    "selfhost_owner_username": "owner",
    "selfhost_owner_email": "owner@example.org",
    "selfhost_cloudflare_account_id": "0123456789abcdef0123456789abcdef",
    "selfhost_cloudflare_api_token": "not-a-real-token-only-for-the-argument-spec-check",
}


def checks_only(tmp_path, overrides=None, drop=()):
    """Run only the site's checks against the controller (local connection, check mode)."""
    import yaml  # pylint: disable=import-outside-toplevel

    values = {k: v for k, v in VALID.items() if k not in drop}
    values.update(overrides or {})
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"mastodon": {"hosts": {
        "checkhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                      **values}}}}}}))
    run = ansible_playbook(SITE, "--check", "--tags", "selfhost_checks_only", inventory=inventory, timeout=600)
    return run.returncode, run.output


def recap_changed(output):
    return [int(n) for n in re.findall(r"changed=(\d+)", output)]


@pytest.mark.parametrize("target", [str(SITE), "selfhost.mastodon.site"])
def test_site_playbook_syntax(target):
    run = ansible_playbook(target, "--syntax-check", inventory="localhost,", timeout=600)
    assert run.returncode == 0, run.output


def deploy_play_roles():
    """The roles the deploy play imports, in order (tasks with import_role)."""
    import yaml  # pylint: disable=import-outside-toplevel

    plays = yaml.safe_load(SITE.read_text())
    deploy = next(p for p in plays if p["name"] == "Deploy Mastodon behind a Cloudflare Tunnel")
    return [t["ansible.builtin.import_role"]["name"] for t in deploy["tasks"] if "ansible.builtin.import_role" in t]


def test_site_runs_the_roles_in_the_story_order():
    # mastodon_ops is part of the main job: the day-2 scripts, the nightly backup and the flood
    # guard timers are on the laptop after site.yml, not only after backup.yml.
    assert deploy_play_roles() == [f"selfhost.mastodon.{role}" for role in
                                   ("base_os", "selfsigned_tls", "mastodon_stack", "mastodon_ops", "cloudflare_tunnel")]


def test_site_maps_no_variable_itself():
    # One variable layer: the roles' defaults fall back to the site-level names; the playbook
    # copies no mapping (no play vars, no set_fact of a role variable).
    import yaml  # pylint: disable=import-outside-toplevel

    for play in yaml.safe_load(SITE.read_text()):
        assert "vars" not in play, play["name"]
    code = [line for line in SITE.read_text().splitlines() if not line.lstrip().startswith("#")]
    for line in code:
        assert not re.match(r"\s*(selfsigned_tls|mastodon_stack|cloudflare_tunnel|base_os)_\w+:", line), line


def test_the_summary_closes_the_run_and_never_shows_the_password():
    import yaml  # pylint: disable=import-outside-toplevel

    deploy = yaml.safe_load(SITE.read_text())[-1]
    last = deploy["post_tasks"][-1]
    assert "ansible.builtin.debug" in last
    summary = last["vars"]["__selfhost_summary"]
    for needed in ("https://", "mastodon_stack_owner_email", "mastodon_stack_owner_password_file",
                   "two-factor", "status.yml", "backup", "__selfhost_times"):
        assert needed in summary, needed
    # The file's path, never its content: no lookup or slurp of it anywhere in the playbook.
    assert "slurp" not in SITE.read_text() and "lookup('ansible.builtin.file'" not in SITE.read_text()


def test_every_role_has_an_argument_spec():
    for role in ROLES:
        assert (ROOT / "roles" / role / "meta" / "argument_specs.yml").is_file(), role


def test_a_valid_inventory_passes_every_check_and_changes_nothing(tmp_path):
    rc, out = checks_only(tmp_path)
    assert rc == 0, out[-4000:]
    assert "PLAY [Deploy Mastodon behind a Cloudflare Tunnel]" in out
    for role in ROLES:
        assert f"selfhost.mastodon.{role} : Validating arguments against arg spec" in out, role
    assert recap_changed(out) and set(recap_changed(out)) == {0}


def test_the_example_inventory_passes_every_check(tmp_path, monkeypatch):
    # The example's secrets come from a vault file the user makes; stand-in values here. Its
    # key file (~/.ssh/id_ed25519.pub) is the owner's: a stand-in home holds one.
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519.pub").write_text(VALID["selfhost_ssh_authorized_keys"][0] + "\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    run = ansible_playbook(SITE, "--check", "--tags", "selfhost_checks_only",
                           "-e", "ansible_connection=local",
                           "-e", f"ansible_python_interpreter={sys.executable}",
                           "-e", "vault_cloudflare_api_token=stand-in", "-e", "vault_smtp_password=stand-in",
                           inventory="inventories/example", timeout=600)
    assert run.returncode == 0, run.output[-4000:]
    assert set(recap_changed(run.output)) == {0}


@pytest.mark.parametrize("case,overrides,drop,message", [
    ("no domain", {}, ("selfhost_domain",), "set the site-level selfhost_domain in the inventory"),
    ("no API token", {}, ("selfhost_cloudflare_api_token",), "selfhost_cloudflare_api_token"),
    ("no keys", {}, ("selfhost_ssh_authorized_keys",), "the site-level selfhost_ssh_authorized_keys"),
    ("no e-mail", {}, ("selfhost_owner_email",), "set the site-level selfhost_owner_email"),
    ("no account", {}, ("selfhost_cloudflare_account_id",), "set the site-level selfhost_cloudflare_account_id"),
    ("keys not a list", {"selfhost_ssh_authorized_keys": "ssh-ed25519 AAAA"}, (),
     "base_os_ssh_authorized_keys"),
    ("bad TLS mode", {"cloudflare_tunnel_origin_tls": "sometimes"}, (),
     "cloudflare_tunnel_origin_tls must be one of"),
    ("bad install method", {"cloudflare_tunnel_install_method": "curl-pipe-bash"}, (),
     "cloudflare_tunnel_install_method must be one of"),
    ("bad SSH port type", {"base_os_ssh_port": "twenty-two"}, (), "base_os_ssh_port"),
])
def test_a_wrong_inventory_fails_before_any_role_runs(tmp_path, case, overrides, drop, message):
    rc, out = checks_only(tmp_path, overrides, drop)
    assert rc != 0, f"{case}: the checks passed\n{out[-3000:]}"
    assert message in out, f"{case}:\n{out[-3000:]}"
    # Failed in the first play: no role started, nothing changed.
    assert "PLAY [Deploy Mastodon behind a Cloudflare Tunnel]" not in out, case
    assert set(recap_changed(out)) == {0}, case
    # The API token never shows, even in a failure.
    assert VALID["selfhost_cloudflare_api_token"] not in out, case
