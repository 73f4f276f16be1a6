# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for selfhost.mastodon.host_probe: paths described as stat would, files read,
packages split by a (fake) dpkg-query, read-only commands run; never changed, also in check mode.

Paths, files and commands are real (in a temporary folder, /bin/sh); dpkg-query is a fake that
answers from a table. The molecule scenarios run the module against Debian and Ubuntu.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

import pytest

from ansible_collections.selfhost.mastodon.plugins.modules import host_probe as mod  # noqa: E402


@pytest.fixture
def probe(run_module):
    def run(args, check_mode=False):
        return run_module(mod.main, args, check_mode=check_mode)
    return run


def test_paths_described_like_stat(probe, tmp_path):
    folder = tmp_path / "conf.d"
    folder.mkdir(mode=0o750)
    os.chmod(str(folder), 0o750)
    regular = tmp_path / "file"
    regular.write_text(u"hello\n")
    link = tmp_path / "link"
    link.symlink_to("file")
    paths = [str(folder), str(regular), str(link), str(tmp_path / "nothing")]
    result = probe({"paths": paths, "checksum": True}).result
    assert result["changed"] is False
    found = result["stat"]
    assert found[str(folder)]["isdir"] and found[str(folder)]["mode"] == "0750"
    assert found[str(regular)]["isreg"] and found[str(regular)]["size"] == 6
    assert found[str(regular)]["checksum"] == hashlib.sha1(b"hello\n").hexdigest()
    assert found[str(link)]["islnk"] and found[str(link)]["lnk_target"] == "file"
    assert "checksum" not in found[str(link)], "a link is not followed"
    assert found[str(tmp_path / "nothing")] == {"exists": False, "isreg": False, "isdir": False, "islnk": False}


def test_checksum_only_when_asked(probe, tmp_path):
    regular = tmp_path / "file"
    regular.write_text(u"x")
    assert "checksum" not in probe({"paths": [str(regular)]}).result["stat"][str(regular)]


def test_read_gives_text_or_none(probe, tmp_path):
    present = tmp_path / "swappiness"
    present.write_text(u"60\n")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (mod.MAX_READ + 1))
    result = probe({"read": [str(present), str(tmp_path / "absent"), str(big)]}).result
    assert result["content"] == {str(present): u"60\n", str(tmp_path / "absent"): None, str(big): None}


def test_packages_split_by_dpkg(probe, monkeypatch):
    calls = []

    def fake(self, args, **kwargs):
        calls.append(list(args))
        if len(args) == 4:  # the second query, over every package: status and Provides
            return 0, "installed\tpostgresql-contrib (= 17)\nconfig-files\tnginx-core\ninstalled\t\n", ""
        table = {"openssh-server": "installed", "nftables": "config-files", "tzdata": "installed"}
        # dpkg-query prints ${binary:Package} with the architecture for Multi-Arch: same
        # packages, and the plain ${Package}; an unknown name goes to stderr.
        bases = [n.split(":")[0] for n in args[3:]]
        lines = ["%s:amd64\t%s\t%s" % (n, n, table[n]) for n in bases if n in table]
        return 1, "\n".join(lines) + "\n", "dpkg-query: no packages found matching nginx\n"

    monkeypatch.setattr(mod.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    monkeypatch.setattr(mod.AnsibleModule, "run_command", fake)
    names = ["openssh-server", "nftables", "nginx", "tzdata:amd64", "nodejs=22.*", "postgresql-contrib", "nginx-core"]
    result = probe({"packages": names}).result
    assert result["packages"] == {"installed": ["openssh-server", "tzdata:amd64", "postgresql-contrib"],
                                  "missing": ["nftables", "nginx", "nodejs=22.*", "nginx-core"]}
    assert len(calls) == 2, "one dpkg-query for the names, one for what installed packages provide"
    assert "nodejs=22.*" not in calls[0], "a pinned version is left to apt"


def test_provides_not_asked_when_all_found(probe, monkeypatch):
    calls = []

    def fake(self, args, **kwargs):
        calls.append(list(args))
        return 0, "sudo\tsudo\tinstalled\n", ""

    monkeypatch.setattr(mod.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    monkeypatch.setattr(mod.AnsibleModule, "run_command", fake)
    assert probe({"packages": ["sudo"]}).result["packages"] == {"installed": ["sudo"], "missing": []}
    assert len(calls) == 1


def test_no_dpkg_means_all_missing(probe, monkeypatch):
    monkeypatch.setattr(mod.AnsibleModule, "get_bin_path", lambda self, name, required=False: None)
    assert probe({"packages": ["nginx"]}).result["packages"] == {"installed": [], "missing": ["nginx"]}


def test_commands_run_and_report(probe, tmp_path):
    result = probe({"commands": {
        "ok": {"argv": ["/bin/sh", "-c", "pwd; echo err >&2"], "chdir": str(tmp_path)},
        "fails": {"argv": ["/bin/sh", "-c", "exit 3"]},
        "absent": {"argv": [str(tmp_path / "no-such-program")]},
        "nodir": {"argv": ["/bin/true"], "chdir": str(tmp_path / "nope")},
    }}, check_mode=True).result
    cmds = result["commands"]
    assert cmds["ok"] == {"rc": 0, "stdout": str(tmp_path) + "\n", "stderr": "err\n"}
    assert cmds["fails"]["rc"] == 3
    assert cmds["absent"]["rc"] == 127 and cmds["nodir"]["rc"] == 127
    assert result["changed"] is False


@pytest.mark.parametrize("spec, words", [
    ({"argv": []}, ["commands.bad", "argv"]),
    ("ls", ["commands.bad", "argv"]),
    ({"argv": ["true"], "user": "x"}, ["commands.bad", "unknown keys user"]),
])
def test_bad_commands_fail_naming_them(probe, spec, words):
    exit_ = probe({"commands": {"bad": spec}})
    assert exit_.failure_saying(*words)
