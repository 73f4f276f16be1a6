# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""selfhost.mastodon.ssh_public_keys: counts keys, not entries; never shows a private key."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from support.ssh_keys import PRIVATE_KEY, PRIVATE_SNIPPETS, ecdsa256, ed25519, line, rsa

from ansible_collections.selfhost.mastodon.plugins.filter.ssh_public_keys import (
    FilterModule,
    key_problem,
    ssh_public_keys,
)

NAME = "base_os_ssh_authorized_keys"


def check(entries):
    return ssh_public_keys(entries, name=NAME)


def no_secret(result):
    text = json.dumps(result)
    for snippet in PRIVATE_SNIPPETS:
        assert snippet not in text


def test_filter_is_registered():
    assert FilterModule().filters()["ssh_public_keys"] is ssh_public_keys


@pytest.mark.parametrize("make", [ed25519, rsa, ecdsa256])
def test_good_key_lines_are_counted(make):
    key = make()
    result = check([key])
    assert result["problems"] == []
    assert result["keys"] == [key]
    assert result["blobs"] == [" ".join(key.split()[:2])]


def test_file_with_several_keys_and_comments_counts_every_key(tmp_path):
    keys = [ed25519(), rsa()]
    pub = tmp_path / "keys.pub"
    pub.write_text("# my keys\n\n%s\n  %s  \n" % tuple(keys))
    result = check([str(pub)])
    assert result["problems"] == []
    assert result["keys"] == keys


def test_tilde_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    key = ed25519()
    (tmp_path / "id.pub").write_text(key + "\n")
    assert check(["~/id.pub"])["keys"] == [key]


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "# a\n#b\n   \n"])
def test_empty_or_comment_only_file_is_zero_keys_and_refused(tmp_path, content):
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(content)
    result = check([str(pub)])
    assert result["keys"] == []
    assert len(result["problems"]) == 1
    assert "holds no public key" in result["problems"][0] and NAME + "[0]" in result["problems"][0]


def test_private_key_file_is_refused_without_showing_it(tmp_path):
    private = tmp_path / "id_ed25519"
    private.write_text(PRIVATE_KEY)
    result = check([str(private)])
    assert result["keys"] == []
    assert "PRIVATE key file" in result["problems"][0]
    assert str(private) + ".pub" in result["problems"][0]
    no_secret(result)


def test_pasted_private_key_is_refused_without_showing_it():
    result = check([PRIVATE_KEY])
    assert result["keys"] == [] and "PRIVATE key" in result["problems"][0]
    assert "(its content is not shown)" in result["problems"][0]
    no_secret(result)


def test_putty_private_key_file_is_refused(tmp_path):
    ppk = tmp_path / "key.ppk"
    ppk.write_text("PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\nSecretSecretSecret\n")
    result = check([str(ppk)])
    assert "PRIVATE key file" in result["problems"][0]
    no_secret(result)


def test_binary_file_is_refused_without_content(tmp_path):
    blob = tmp_path / "blob.pub"
    blob.write_bytes(b"\xff\xfeSecretSecretSecret\x00")
    result = check([str(blob)])
    assert "not a text file" in result["problems"][0]
    no_secret(result)


@pytest.mark.parametrize("entry,fragment", [
    ("ssh-ed25519 AAAAC3Nza!!not-base64 someone", "not valid base64"),
    ("ssh-ed25519 AAAA", "not valid base64"),
    ("ssh-ed25519", "no base64 part"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP comment", "key type sshd does not accept"),
    ("ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIGm0 x", "key type sshd does not accept"),
    ("hello world", "neither a public key line"),
    ("/nonexistent/id_ed25519.pub", "neither a public key line"),
    ("", "is empty"),
    ("   ", "is empty"),
])
def test_bad_entries_are_refused(entry, fragment):
    result = check([entry])
    assert result["keys"] == []
    assert len(result["problems"]) == 1
    assert fragment in result["problems"][0]
    assert NAME + "[0]" in result["problems"][0]


def test_type_that_does_not_match_the_blob_is_refused():
    key = ed25519()
    result = check(["ssh-rsa " + key.split()[1]])
    assert "not a ssh-rsa key" in result["problems"][0]


@pytest.mark.parametrize("bad", [
    lambda: line("ssh-ed25519", os.urandom(31)),
    lambda: line("ssh-ed25519", os.urandom(32), b"trailing"),
    lambda: rsa(bits=512),
    lambda: line("ecdsa-sha2-nistp256", b"nistp384", b"\x04" + os.urandom(64)),
    lambda: line("ecdsa-sha2-nistp256", b"nistp256", b"\x02" + os.urandom(32)),
])
def test_malformed_key_bodies_are_refused(bad):
    assert "well-formed" in key_problem(bad())


def test_truncated_wire_format_is_refused():
    key = ed25519().split()
    blob = key[1][:-8]
    blob = blob + "=" * (-len(blob) % 4)
    assert key_problem("ssh-ed25519 %s" % blob) is not None


def test_one_good_one_bad_counts_the_good_and_reports_the_bad():
    good = ed25519()
    result = check([good, "ssh-ed25519 AAAA"])
    assert result["keys"] == [good]
    assert len(result["problems"]) == 1 and NAME + "[1]" in result["problems"][0]


def test_a_bad_line_inside_a_file_is_named_by_line_number_without_content(tmp_path):
    pub = tmp_path / "keys.pub"
    pub.write_text("%s\nssh-ed25519 AAAAC3NzaSecretSecretSecret!!\n" % ed25519())
    result = check([str(pub)])
    assert len(result["keys"]) == 1
    assert "line 2" in result["problems"][0]
    no_secret(result)


def test_unprintable_path_like_values_are_not_shown():
    long_base64 = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" * 3
    result = check([long_base64])
    assert "(value not shown)" in result["problems"][0]
    no_secret(result)


@pytest.mark.parametrize("value", ["ssh-ed25519 AAAA", 42, None])
def test_not_a_list_or_not_strings(value):
    if isinstance(value, str):
        result = check(value)
        assert "must be a list" in result["problems"][0]
    else:
        result = check([value])
        assert "is not a string" in result["problems"][0]
    assert result["keys"] == []
