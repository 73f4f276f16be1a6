# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""selfhost.mastodon.ssh_login: the public halves the controller can prove, never a private key."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import shutil
import subprocess

import pytest

from support.ssh_keys import PRIVATE_KEY, PRIVATE_SNIPPETS, ed25519

from ansible_collections.selfhost.mastodon.plugins.lookup import ssh_login


def test_pub_file_next_to_the_private_key_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key = ed25519()
    (tmp_path / "id_ed25519").write_text(PRIVATE_KEY)
    (tmp_path / "id_ed25519.pub").write_text(key + "\n")
    keys = ssh_login.public_halves([str(tmp_path / "id_ed25519"), ""], agent=True)
    assert keys == [key]
    for snippet in PRIVATE_SNIPPETS:
        assert snippet not in json.dumps(keys)


def test_missing_files_give_no_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert ssh_login.public_halves([str(tmp_path / "nope")]) == []


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
def test_public_half_is_derived_when_there_is_no_pub_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", str(key)], check=True)
    expected = (tmp_path / "id.pub").read_text().split()[:2]
    (tmp_path / "id.pub").unlink()
    keys = ssh_login.public_halves([str(key)])
    assert [k.split()[:2] for k in keys] == [expected]
    assert "PRIVATE" not in json.dumps(keys)


def test_agent_keys_are_listed(tmp_path, monkeypatch):
    key = ed25519()
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setattr(ssh_login, "_run", lambda argv: key + "\n" if argv[0] == "ssh-add" else "")
    assert ssh_login.public_halves([], agent=True) == [key]
    assert ssh_login.public_halves([], agent=False) == []


def test_a_pub_file_without_its_private_half_proves_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    (tmp_path / "id_ed25519.pub").write_text(ed25519() + "\n")
    assert ssh_login.public_halves([str(tmp_path / "id_ed25519")]) == []
    assert ssh_login.public_halves([str(tmp_path / "id_ed25519.pub")]) == []


def test_default_identities_are_looked_at(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    key = ed25519()
    (tmp_path / ".ssh" / "id_ed25519").write_text(PRIVATE_KEY)
    (tmp_path / ".ssh" / "id_ed25519.pub").write_text(key + "\n")
    assert ssh_login.public_halves([], default_identities=True) == [key]
    assert ssh_login.public_halves([], default_identities=False) == []
