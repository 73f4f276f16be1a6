"""The lockout guard: a broken inventory stops the role before any change, and the owner can
still log in with the old key afterwards. Each case runs the role again with ansible-playbook
(molecule/base_os/negative.yml) against the converged container.

The last cases go through a REAL SSH connection from the controller to the container (its
address on the project's own test network selfhost-base_os), as mastoadmin with the admin key,
so that the guard's "the play logs in through sshd" path runs too.
"""

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from support.ansible_cli import ansible_playbook

from test_base_os import ADMIN, PORT, container_ip, ssh_key, ssh_password

SCENARIO = Path(__file__).resolve().parent.parent
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
WATCHED = [
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d/00-selfhost.conf",
    f"/home/{ADMIN}/.ssh/authorized_keys",
    "/etc/nftables.conf",
    "/etc/passwd",
]


def run_playbook(extra_vars, extra_args=()):
    return ansible_playbook(SCENARIO / "negative.yml", *extra_args, "-e", json.dumps(extra_vars),
                            timeout=600)


def fingerprint(host, skip=None):
    """Hashes of the files the role would change, plus the loaded firewall table."""
    return {
        path: hashlib.sha256(host.file(path).content).hexdigest()
        for path in WATCHED if path != skip
    } | {"ruleset": host.check_output("nft list table inet selfhost_filter")}


# Changes the broken runs would make if the guard let them through.
WOULD_CHANGE = {"base_os_ssh_port": 2200, "base_os_ssh_permit_root_login": "no",
                "base_os_ssh_authorized_keys_exclusive": True}

ED25519_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIGm0Qm3YkQ1lEoBLJZ0NTz1f7x0kBvTO7mvD1u4rV8Yx"

CASES = {
    "empty key list": ([], "base_os_ssh_authorized_keys is empty"),
    "not base64": (["ssh-ed25519 AAAAC3Nza!!not-base64 someone"], "Not a valid public key"),
    "type does not match the blob": ([f"ssh-rsa {ED25519_BLOB} x"], "Not a valid public key"),
    "unknown key type": ([f"ssh-foo {ED25519_BLOB} x"], "Not a valid public key"),
    "missing key file": (["/nonexistent/id_ed25519.pub"], "neither a public key line"),
    "garbage": (["hello world"], "neither a public key line"),
    "one good one bad": ([f"ssh-ed25519 {ED25519_BLOB} ok", "ssh-ed25519 AAAA"],
                         "Not a valid public key"),
    # The easy slip: the private key instead of the .pub. Refused, and none of it is shown.
    "private key instead of the .pub": ([str(EPHEMERAL / "keys" / "id_admin")], "PRIVATE key file"),
    # Zero keys is a lock-out on the README's first run (password login): refused.
    "empty .pub file": ([str(EPHEMERAL / "keys" / "empty.pub")], "holds no public key"),
    "comment-only .pub file": ([str(EPHEMERAL / "keys" / "comments.pub")], "holds no public key"),
}


def private_key_lines():
    text = (EPHEMERAL / "keys" / "id_admin").read_text()
    return [line for line in text.splitlines() if line and "PRIVATE KEY" not in line]


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_key_list_changes_nothing(host, case):
    keys, message = CASES[case]
    (EPHEMERAL / "keys" / "empty.pub").write_text("")
    (EPHEMERAL / "keys" / "comments.pub").write_text("# my key\n\n# (nothing else)\n")
    before = fingerprint(host)
    result = run_playbook({"base_os_ssh_authorized_keys": keys, **WOULD_CHANGE})
    output = result.stdout + result.stderr
    for line in private_key_lines():
        assert line not in output, "a line of the private key was printed"
    assert result.returncode == 2, output
    assert message in output, output
    assert "Nothing was changed" in output
    assert "changed=0" in output, output
    assert fingerprint(host) == before
    login = ssh_key(host, ADMIN, "admin")
    assert login.rc == 0 and login.stdout.strip() == ADMIN, login.stderr


def test_argument_spec_rejects_wrong_types(host):
    before = fingerprint(host)
    result = run_playbook({"base_os_ssh_permit_root_login": "yes"})
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "base_os_ssh_permit_root_login" in output and "prohibit-password" in output
    assert fingerprint(host) == before


# --- Through a real SSH connection --------------------------------------------------------


@pytest.fixture()
def ssh_inventory(host, tmp_path):
    """An inventory that reaches the same container through sshd, as the owner would."""
    name = host.backend.host
    path = tmp_path / "ssh.yml"
    path.write_text(json.dumps({"all": {"hosts": {name: {
        "ansible_connection": "ssh",
        "ansible_host": container_ip(host),
        "ansible_port": PORT,
        "ansible_user": ADMIN,
        "ansible_become": True,
        "ansible_ssh_private_key_file": str(EPHEMERAL / "keys" / "id_admin"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }}}}))
    return ["-i", str(path)]


def test_controller_outside_the_ssh_sources_is_stopped(host, ssh_inventory):
    before = fingerprint(host)
    result = run_playbook({"base_os_ssh_allowed_sources": ["192.0.2.0/24"]}, ssh_inventory)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "not in base_os_ssh_allowed_sources" in output, output
    assert fingerprint(host) == before


def test_login_user_without_key_is_stopped(host, ssh_inventory):
    """The play logs in over sshd as mastoadmin, but base_os_admin_user names another account
    and mastoadmin's ~/.ssh/authorized_keys is gone: once passwords are off, mastoadmin could
    not come back. (sshd still lets the play in through ~/.ssh/authorized_keys2, Debian's
    second AuthorizedKeysFile, which the guard deliberately does not count.)"""
    assert ".ssh/authorized_keys2" in host.check_output("/usr/sbin/sshd -T | grep ^authorizedkeysfile")
    home = f"/home/{ADMIN}/.ssh"
    moved = host.run(f"mv {home}/authorized_keys {home}/authorized_keys2")
    assert moved.rc == 0, moved.stderr
    try:
        before = fingerprint(host, skip=f"{home}/authorized_keys")
        result = run_playbook({"base_os_admin_user": "someoneelse"}, ssh_inventory)
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert "logs in as 'mastoadmin', which is not base_os_admin_user" in output, output
        assert "has no ~/.ssh/authorized_keys" in output, output
        assert fingerprint(host, skip=f"{home}/authorized_keys") == before
        assert not host.user("someoneelse").exists
    finally:
        host.run(f"mv {home}/authorized_keys2 {home}/authorized_keys")
    login = ssh_key(host, ADMIN, "admin")
    assert login.rc == 0, login.stderr


def test_rerun_over_ssh_changes_nothing(host, ssh_inventory):
    before = fingerprint(host)
    result = run_playbook({}, ssh_inventory)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "changed=0" in output and "failed=0" in output, output
    # The guard took its SSH path: it checked the login and the controller's address.
    assert "the login check is skipped" not in output
    for task in ("the login account must still have a key after the change",
                 "the controller must be inside the SSH source ranges"):
        assert re.search(rf"Guard - {task}\][^\n]*\n(?:[^\n]*\n){{0,2}}?ok: \[", output), task
    assert fingerprint(host) == before


def test_firewall_reload_keeps_the_ssh_session(host, ssh_inventory):
    """The play that (re)loads the firewall runs over SSH itself and must finish: the table is
    first removed, then the role loads it again (and with ping turned off, so the file
    changes too) while its own SSH connection is open. A second run puts ping back."""
    assert host.run("nft delete table inet selfhost_filter").rc == 0
    try:
        result = run_playbook({"base_os_firewall_allow_ping": False}, ssh_inventory)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert re.search(r"Load the firewall rules\][^\n]*\n(?:[^\n]*\n){0,2}?changed: \[", output)
        assert "echo-request" not in host.check_output("nft list table inet selfhost_filter")
    finally:
        restored = run_playbook({}, ssh_inventory)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "echo-request" in host.check_output("nft list table inet selfhost_filter")
    login = ssh_key(host, ADMIN, "admin")
    assert login.rc == 0, login.stderr


def test_overriding_dropin_is_caught_before_reload(host):
    """A file that sorts before 00-selfhost.conf ("-" sorts before "0") turns passwords back
    on: sshd would take its values (first match wins). The role must notice through sshd -T and stop, and sshd must
    not be reloaded with it."""
    evil = "/etc/ssh/sshd_config.d/0-override.conf"
    host.run(f"printf 'PasswordAuthentication yes\\nAuthenticationMethods any\\n' > {evil}")
    try:
        result = run_playbook({})
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert "another file in /etc/ssh overrides" in output, output
        assert "PasswordAuthentication yes" in output
        # The running sshd was not reloaded: it still refuses the (right) password.
        refused = ssh_password(host, ADMIN)
        assert refused.rc != 0 and "Permission denied (publickey)" in refused.stderr
    finally:
        host.run(f"rm -f {evil}")
    assert host.check_output("/usr/sbin/sshd -T | grep ^passwordauthentication") == (
        "passwordauthentication no"
    )
