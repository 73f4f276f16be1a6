"""The user's path, end to end: the README's commands, as printed, from a fresh laptop to
teardown, on an inventory made from inventories/example the way the README tells a user to.

The commands are taken from README.md by block name (tests/support/readme.py), never copied
here, and typed one line after another into one bash on a pseudo-terminal (support.shell_session)
in a copy of this clone, with HOME set to a user's home folder (its ~/.ssh/id_ed25519 is the
key inventories/example names, ~/.vault-pass the vault password file the README makes). Prompts
are answered as a person answers them: the installer account's password at "SSH password:"
and "BECOME password", "yes" at teardown's confirmation.

The tests run in file order and build on each other; after a failed step the later ones are
skipped (they would only repeat it). Each step's time and PLAY RECAP go to journey.json in the
scenario's folder, and the last test prints them as a table.

Stand-ins (named as such): the Cloudflare emulator, the connector stand-in, the Mastodon TEST
DOUBLE; the $EDITOR is tests/editor.py, writing what a person would type (TEST STAND-IN).
"""
# pylint: disable=redefined-outer-name  # pytest fixtures

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL, ZONE_ID
from support.edge_visit import visit_edge
from support.readme import block
from support.shell_session import ShellSession
from support.user_clone import copy_clone, user_env

ROOT = Path(__file__).resolve().parents[3]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
DISTRO = os.environ.get("SELFHOST_DISTRO") or "debian13"
CLONE = EPHEMERAL / "clone"
HOME = EPHEMERAL / "home"
PLAN = EPHEMERAL / "edit-plan.json"
# Kept after Molecule's destroy (which removes the ephemeral folder): .build/logs/.
LOGS = ROOT / ".build" / "logs" / f"journey-{DISTRO}"
RECORD = LOGS / "journey.json"
DOMAIN = "social.example.test"
USER = "admin"  # the account the installer made, and selfhost_admin_user of inventories/example
DOUBLE_FIRST, DOUBLE_NEXT = "v4.9.0-double", "v4.9.1-double"
LIVE = "/home/mastodon/live"
VAULT_PASSPHRASE = "correct horse battery staple, journey " + DISTRO
ANSWER_PASSWORD = r"SSH password: ?$|BECOME password[^:]*: ?$"
ANSWER_YES = r"Type yes to go on[^\n]*:\s*$"

_state = {"failed": None, "steps": []}


# --- set-up -------------------------------------------------------------------------------

def installer_password():
    return (EPHEMERAL / "installer-password").read_text().strip()


def emulator():
    return json.loads((EPHEMERAL / "emulator" / "emulator.json").read_text())


def container_ip(host):
    """The laptop's address on the scenario's own network (selfhost-journey-<distro>)."""
    out = subprocess.run(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}",
                          host.backend.host], capture_output=True, text=True, check=True).stdout
    networks = json.loads(out)
    return networks[next(n for n in networks if n.startswith("selfhost-journey"))]["IPAddress"]


def container_network():
    """The scenario network's range, as base_os_ssh_allowed_sources wants it: the controller
    reaches the laptop from it, as a user's desktop does from the home LAN."""
    out = subprocess.run(["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}",
                          f"selfhost-journey-{DISTRO}"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def shell_env():
    return user_env(HOME=str(HOME), JOURNEY_EDIT_PLAN=str(PLAN),
                    EDITOR=f"{sys.executable} {Path(__file__).parent / 'editor.py'}",
                    ANSIBLE_NOCOLOR="1")  # readable logs; the commands themselves are as printed


@pytest.fixture(scope="module")
def shell(host):
    copy_clone(CLONE)
    # What a user did before the README: logged in once with ssh, which recorded the host key.
    known = subprocess.run(["ssh-keyscan", "-T", "10", container_ip(host)], capture_output=True,
                           text=True, check=True).stdout
    (HOME / ".ssh" / "known_hosts").write_text(known)
    LOGS.mkdir(parents=True, exist_ok=True)
    RECORD.write_text("[]")
    session = ShellSession(CLONE, shell_env(), LOGS / "shell.log")
    yield session
    session.close()


def plan_edits(plan):
    PLAN.write_text(json.dumps(plan))


def require_previous_steps():
    if _state["failed"]:
        pytest.skip(f"an earlier step failed: {_state['failed']}")


def run_block(shell, name, answers=(), step=None, expect_rc=0):
    """Type every command of the README block *name*; record and return the results."""
    require_previous_steps()
    results = []
    for line in block(name).commands():
        result = shell.run(line, answers=answers)
        results.append(result)
        _state["steps"].append({"step": step or name, "line": line, "rc": result.rc,
                                "seconds": round(result.seconds, 1), "recap": result.recap()})
        RECORD.write_text(json.dumps(_state["steps"], indent=1))
        if result.rc != expect_rc:
            _state["failed"] = f"{name}: {line}"
            pytest.fail(f"`{line}` exited {result.rc}:\n{result.output[-6000:]}")
    return results


def playbook_results(results):
    return [r for r in results if "ansible-playbook" in r.line]


def assert_no_secret(results):
    for result in results:
        for secret in (TOKEN_FULL, installer_password(), VAULT_PASSPHRASE):
            assert secret not in result.output, f"a secret was printed by `{result.line}`"


def sql(host, query):
    out = host.run("runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d mastodon_production -c %s",
                   query)
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def api(path):
    req = urllib.request.Request(f"{emulator()['api']}{path}",
                                 headers={"Authorization": f"Bearer {TOKEN_FULL}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (127.0.0.1 only)
        return json.loads(resp.read())["result"]


def ssh_login(host, password=None):
    """An SSH login as the installer account, with the password or with the user's key."""
    base = ["ssh", "-o", "BatchMode=no", "-o", f"UserKnownHostsFile={HOME / '.ssh' / 'known_hosts'}",
            "-o", "ConnectTimeout=10", "-o", "NumberOfPasswordPrompts=1"]
    if password:
        cmd = ["sshpass", "-e", *base, "-o", "PreferredAuthentications=password,keyboard-interactive",
               "-o", "PubkeyAuthentication=no"]
        env = dict(os.environ, SSHPASS=password)
    else:
        cmd = [*base, "-o", "PasswordAuthentication=no", "-i", str(HOME / ".ssh" / "id_ed25519")]
        env = dict(os.environ)
    return subprocess.run([*cmd, f"{USER}@{container_ip(host)}", "id", "-un"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


# --- the journey ----------------------------------------------------------------------------

def test_01_inventory_from_the_example(host, shell):
    """cp -r inventories/example inventories/mine, $EDITOR, the vault encrypted with a password
    file: the README's block, with the editor writing what a user types."""
    require_previous_steps()
    ip, network = container_ip(host), container_network()
    emu = emulator()
    standin = {
        # Where this laptop is, and the lean settings of a container (no swap, no clock, no
        # package upgrades in a test run).
        "base_os_ssh_allowed_sources": [network],
        "base_os_upgrade": "none",
        "base_os_unattended_upgrades": False,
        "base_os_time_sync_enabled": False,
        "base_os_swap_size_mb": -1,
        "selfhost_domain": DOMAIN,
        # No mail server here: the README's "leave the server empty to send no mail".
        "mastodon_stack_smtp_server": "",
        # STAND-INS: the Mastodon TEST DOUBLE's repository and system Ruby/Node.js
        # (tests/mastodon_double/inventory_vars.yml), the emulator, the connector stand-in.
        "mastodon_stack_version": DOUBLE_FIRST,
        "mastodon_stack_git_url": "/srv/mastodon-double.git",
        "mastodon_stack_release_tag_pattern": r"^v(\d+)\.(\d+)\.(\d+)-double$",
        "mastodon_stack_ruby_source": "system",
        "mastodon_stack_nodejs_source": "distribution",
        "mastodon_stack_postgresql_source": "distribution",
        "mastodon_stack_node_environment": {
            "NODE_EXTRA_CA_CERTS": "/usr/local/share/selfhost-test/controller-ca.crt"},
        "cloudflare_tunnel_api_url": emu["api"],
        "cloudflare_tunnel_install_method": "binary",
        "cloudflare_tunnel_binary_src": str(CLONE / "tests/cloudflare_emulator/cloudflared_standin.py"),
        "cloudflare_tunnel_environment": {"TUNNEL_EDGE": emu["connector"]},
        "cloudflare_tunnel_ready_timeout": 60,
    }
    plans = [
        {"hosts.yml": {"set": {}}, "all/main.yml": {"set": standin}},
        {"all/vault.yml": {"set": {"vault_cloudflare_api_token": TOKEN_FULL,
                                   "vault_smtp_password": "no-mail-server-in-this-test"}}},
        {".vault-pass": {"content": VAULT_PASSPHRASE + "\n"}},
    ]
    # hosts.yml: the laptop's address; everything else in it is the example's.
    hosts_yml = CLONE / "inventories/example/hosts.yml"
    assert "ansible_host: 192.168.1.50" in hosts_yml.read_text()
    plans[0]["hosts.yml"] = {"content": hosts_yml.read_text().replace(
        "ansible_host: 192.168.1.50", f"ansible_host: {ip}")}
    plans = iter(plans)
    for line in block("quickstart-inventory").commands():
        if "$EDITOR" in line:
            plan_edits(next(plans))
        result = shell.run(line)
        _state["steps"].append({"step": "inventory", "line": line, "rc": result.rc,
                                "seconds": round(result.seconds, 1), "recap": {}})
        if result.rc != 0:
            _state["failed"] = f"quickstart-inventory: {line}"
            pytest.fail(f"`{line}` exited {result.rc}:\n{result.output[-4000:]}")
    vault = CLONE / "inventories/mine/group_vars/all/vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256"), "vault.yml is not encrypted"
    assert TOKEN_FULL not in vault.read_text()
    assert oct((HOME / ".vault-pass").stat().st_mode & 0o777) == "0o600"


def test_02_dry_run_on_the_fresh_laptop(host, shell):
    """The first dry run logs in with the installer account's password; it shows what it
    would do and changes nothing."""
    require_previous_steps()
    assert not host.package("nginx").is_installed
    results = run_block(shell, "quickstart-dry-run-first", step="dry run (fresh)",
                        answers=[(ANSWER_PASSWORD, installer_password())])
    runs = playbook_results(results)
    assert runs and all(r.failed() == 0 for r in runs), runs[-1].output[-3000:]
    assert runs[-1].changed() > 0, "a dry run on a fresh laptop must show changes"
    assert not host.package("nginx").is_installed, "the dry run installed nginx"
    assert not host.file(f"/home/{USER}/.ssh/authorized_keys").exists, "the dry run wrote a key"
    assert_no_secret(results)


def test_03_site(host, shell):
    """site.yml, first run, with the password; it ends with the summary a person reads."""
    require_previous_steps()
    results = run_block(shell, "quickstart-site-first", step="site.yml (first)",
                        answers=[(ANSWER_PASSWORD, installer_password())])
    run = playbook_results(results)[-1]
    assert run.failed() == 0
    assert f"https://{DOMAIN}/" in run.output, "the summary names the public URL"
    assert "/root/mastodon-owner-password.txt" in run.output, "the summary says where the password is"
    owner_password = host.file("/root/mastodon-owner-password.txt").content_string.strip()
    assert owner_password and owner_password not in run.output
    assert_no_secret(results)
    emu = emulator()
    status, _headers, body = visit_edge(emu["edge_port"], emu["edge_ca"], DOMAIN, "/health", "journey")
    assert status == 200, body
    # What site.yml promises for day 1 is on the laptop after it.
    for timer in ("mastodon-backup.timer", "mastodon-flood-guard.timer"):
        assert host.service(timer).is_enabled and host.service(timer).is_running, timer


def test_04_dry_run_on_the_converged_laptop(host, shell):
    """From now on the key logs in; a dry run changes nothing and reports changed=0; a
    password login is refused."""
    require_previous_steps()
    results = run_block(shell, "quickstart-dry-run", step="dry run (converged)")
    run = playbook_results(results)[-1]
    assert run.failed() == 0 and run.changed() == 0, run.output[-5000:]
    # Nothing changed since the first run: the three roles that keep a record skip their tasks
    # after one read each, and say so (docs/configuring.md, "Re-runs skip what did not change").
    for include in ("Update, secure and harden the base system", "Install, configure and run Mastodon",
                    "Install the day-2 scripts and timers"):
        assert f"{include} - nothing changed since the complete run of " in run.output, include
    refused = ssh_login(host, installer_password())
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stderr
    allowed = ssh_login(host)
    assert allowed.returncode == 0 and allowed.stdout.strip() == USER, allowed.stderr


def test_05_status(host, shell):
    require_previous_steps()
    results = run_block(shell, "day2-status", step="status.yml")
    assert playbook_results(results)[-1].failed() == 0
    assert re.search(r"\): HEALTHY", results[-1].output), results[-1].output[-3000:]
    assert_no_secret(results)


def test_06_backup_and_restore(host, shell):
    """A row written before the backup is there after the restore; one written after the
    backup is gone (the restore brings back the backup's state, nothing else)."""
    require_previous_steps()
    sql(host, "CREATE TABLE IF NOT EXISTS journey_marker (v text); TRUNCATE journey_marker;"
              " INSERT INTO journey_marker VALUES ('before-backup')")
    env_before = host.check_output(f"sha256sum {LIVE}/.env.production | cut -d' ' -f1")
    results = run_block(shell, "day2-backup", step="backup.yml")
    assert playbook_results(results)[-1].failed() == 0
    sql(host, "INSERT INTO journey_marker VALUES ('after-backup')")
    results = run_block(shell, "day2-restore", step="restore.yml")
    assert playbook_results(results)[-1].failed() == 0
    assert sql(host, "SELECT string_agg(v, ',' ORDER BY v) FROM journey_marker") == "before-backup"
    assert host.check_output(f"sha256sum {LIVE}/.env.production | cut -d' ' -f1") == env_before
    emu = emulator()
    deadline = time.monotonic() + 60
    while True:
        status, _headers, body = visit_edge(emu["edge_port"], emu["edge_ca"], DOMAIN, "/health", "journey")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert status == 200, body


def test_07_upgrade(host, shell):
    """The README's upgrade: the new tag in the inventory with $EDITOR, then upgrade.yml."""
    require_previous_steps()
    plan_edits({"all/main.yml": {"set": {"mastodon_stack_version": DOUBLE_NEXT}}})
    results = run_block(shell, "day2-upgrade", step="upgrade.yml")
    assert playbook_results(results)[-1].failed() == 0
    tag = host.check_output(f"runuser -u mastodon -- git -C {LIVE} describe --tags --exact-match HEAD")
    assert tag.strip() == DOUBLE_NEXT


def test_08_flood_guard_reset(host, shell):
    require_previous_steps()
    results = run_block(shell, "day2-flood-guard-reset", step="flood_guard_reset.yml")
    assert playbook_results(results)[-1].failed() == 0


def test_09_teardown(host, shell):
    """Teardown asks; "yes" takes the route, the DNS record and the tunnel away."""
    require_previous_steps()
    assert api(f"/accounts/{ACCOUNT_ID}/cfd_tunnel?is_deleted=false")
    results = run_block(shell, "day2-teardown", step="teardown.yml",
                        answers=[(ANSWER_YES, "yes")])
    assert playbook_results(results)[-1].failed() == 0
    assert api(f"/accounts/{ACCOUNT_ID}/cfd_tunnel?is_deleted=false") == []
    assert api(f"/zones/{ZONE_ID}/dns_records?name={DOMAIN}") == []
    assert not host.service("cloudflared").is_running


def test_10_times(shell):
    """The journey's figures: each command's time and changed count (printed with -s/-v)."""
    steps = json.loads(RECORD.read_text())
    assert steps, "no step ran"
    lines = [f"journey ({DISTRO}): step | seconds | changed | command"]
    for s in steps:
        changed = sum(c.get("changed", 0) for c in s["recap"].values()) if s["recap"] else "-"
        lines.append(f"  {s['step']:<24} {s['seconds']:>7} {changed!s:>8}  {s['line'][:90]}")
    total = sum(s["seconds"] for s in steps)
    lines.append(f"  total {total:.0f} s")
    print("\n".join(lines))
    assert not _state["failed"], _state["failed"]
