# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for selfhost.mastodon.managed_files: writes, no-ops, attributes, check and diff mode.

Real files in a temporary folder; owner and group are the test's own user and group, so the
tests run as any user.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import json
import os
import pwd
import stat

import pytest

from ansible_collections.selfhost.mastodon.plugins.modules import managed_files as mod  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run_module(files, capsys, check_mode=False, diff=False, folders=None):
    args = {"files": files}
    if folders is not None:
        args["folders"] = folders
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mod.main()
    return json.loads(capsys.readouterr().out)


def spec(path, content, mode="0644"):
    return {"path": str(path), "content": content, "owner": OWNER, "group": GROUP, "mode": mode}


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_writes_new_files_then_changes_nothing(tmp_path, capsys):
    files = [spec(tmp_path / "a.service", "[Unit]\nDescription=a\n"),
             spec(tmp_path / "a.timer", "[Timer]\nOnCalendar=daily\n", mode="0600")]
    first = run_module(files, capsys)
    assert first["changed"] is True
    assert first["changed_files"] == [str(tmp_path / "a.service"), str(tmp_path / "a.timer")]
    assert (tmp_path / "a.service").read_text() == "[Unit]\nDescription=a\n"
    assert (tmp_path / "a.timer").read_text() == "[Timer]\nOnCalendar=daily\n"
    assert mode_of(tmp_path / "a.service") == 0o644
    assert mode_of(tmp_path / "a.timer") == 0o600
    second = run_module(files, capsys)
    assert second["changed"] is False
    assert second["changed_files"] == []
    # No temporary file is left behind.
    assert sorted(os.listdir(str(tmp_path))) == ["a.service", "a.timer"]


def test_only_the_file_that_differs_is_rewritten(tmp_path, capsys):
    same, other = tmp_path / "same.conf", tmp_path / "other.conf"
    same.write_text("keep\n")
    other.write_text("old\n")
    os.chmod(str(same), 0o644)
    os.chmod(str(other), 0o644)
    inode = os.stat(str(same)).st_ino
    result = run_module([spec(same, "keep\n"), spec(other, "new\n")], capsys)
    assert result["changed_files"] == [str(other)]
    assert other.read_text() == "new\n"
    assert os.stat(str(same)).st_ino == inode


def test_mode_alone_is_corrected(tmp_path, capsys):
    path = tmp_path / "unit.service"
    path.write_text("x\n")
    os.chmod(str(path), 0o666)
    result = run_module([spec(path, "x\n")], capsys)
    assert result["changed_files"] == [str(path)]
    assert mode_of(path) == 0o644


def test_check_mode_reports_and_writes_nothing(tmp_path, capsys):
    existing = tmp_path / "existing.conf"
    existing.write_text("old\n")
    os.chmod(str(existing), 0o644)
    absent = tmp_path / "absent.conf"
    result = run_module([spec(existing, "new\n"), spec(absent, "fresh\n")], capsys, check_mode=True)
    assert result["changed"] is True
    assert result["changed_files"] == [str(existing), str(absent)]
    assert existing.read_text() == "old\n"
    assert not absent.exists()


def test_diff_shows_content_and_attribute_changes(tmp_path, capsys):
    content_path = tmp_path / "content.conf"
    content_path.write_text("old\n")
    os.chmod(str(content_path), 0o644)
    mode_path = tmp_path / "mode.conf"
    mode_path.write_text("same\n")
    os.chmod(str(mode_path), 0o600)
    result = run_module([spec(content_path, "new\n"), spec(mode_path, "same\n"),
                         spec(tmp_path / "new.conf", "fresh\n")], capsys, check_mode=True, diff=True)
    diffs = result["diff"]
    by_header = {d["after_header"]: d for d in diffs}
    assert by_header[str(content_path)]["before"] == "old\n"
    assert by_header[str(content_path)]["after"] == "new\n"
    assert by_header[str(tmp_path / "new.conf")]["before"] == ""
    assert by_header[str(tmp_path / "new.conf")]["after"] == "fresh\n"
    attributes = by_header[str(mode_path) + " (attributes)"]
    assert attributes["before"]["mode"] == "0600"
    assert attributes["after"]["mode"] == "0644"
    assert mode_of(mode_path) == 0o600


def test_no_diff_entries_when_nothing_changes(tmp_path, capsys):
    path = tmp_path / "same.conf"
    files = [spec(path, "same\n")]
    run_module(files, capsys)
    result = run_module(files, capsys, diff=True)
    assert result["changed"] is False
    assert result["diff"] == []


def test_missing_folder_fails_with_its_name(tmp_path, capsys):
    path = tmp_path / "missing" / "unit.service"
    result = run_module([spec(path, "x\n")], capsys)
    assert result["failed"] is True
    assert str(tmp_path / "missing") in result["msg"]
    assert not path.exists()


def test_the_same_path_twice_is_refused(tmp_path, capsys):
    path = tmp_path / "twice.conf"
    result = run_module([spec(path, "a\n"), spec(path, "b\n")], capsys)
    assert result["failed"] is True
    assert "twice" in result["msg"]
    assert not path.exists()


def test_check_mode_counts_a_file_in_a_missing_folder_as_new(tmp_path, capsys):
    target = tmp_path / "not-yet" / "a.conf"
    result = run_module([spec(target, "x = 1\n")], capsys, check_mode=True, diff=True)
    assert result["changed"] is True and result["changed_files"] == [str(target)]
    assert result["diff"][0]["after"] == "x = 1\n" and result["diff"][0]["before"] == ""
    assert not (tmp_path / "not-yet").exists()


def folder(path, mode="0755"):
    return {"path": str(path), "owner": OWNER, "group": GROUP, "mode": mode}


def test_folders_are_made_with_their_parents_before_the_files_then_nothing_changes(tmp_path, capsys):
    private = tmp_path / "etc" / "example"
    first = run_module([spec(private / "token", "secret\n", mode="0600")], capsys, folders=[folder(private, "0700")])
    assert first["changed"] is True
    assert first["changed_folders"] == [str(private)] and first["changed_files"] == [str(private / "token")]
    assert mode_of(private) == 0o700 and (private / "token").read_text() == "secret\n"
    second = run_module([spec(private / "token", "secret\n", mode="0600")], capsys, folders=[folder(private, "0700")])
    assert second["changed"] is False and second["changed_folders"] == [] and second["changed_files"] == []


def test_a_folder_mode_alone_is_corrected(tmp_path, capsys):
    existing = tmp_path / "conf.d"
    existing.mkdir(mode=0o777)
    os.chmod(str(existing), 0o777)
    result = run_module([], capsys, diff=True, folders=[folder(existing, "0755")])
    assert result["changed"] is True and result["changed_folders"] == [str(existing)]
    assert mode_of(existing) == 0o755
    assert result["diff"][0]["before"]["mode"] == "0777" and result["diff"][0]["after"]["mode"] == "0755"


def test_check_mode_makes_no_folder_and_counts_its_files_as_new(tmp_path, capsys):
    missing = tmp_path / "new"
    result = run_module([spec(missing / "a.conf", "a\n")], capsys, check_mode=True, folders=[folder(missing)])
    assert result["changed"] is True
    assert result["changed_folders"] == [str(missing)] and result["changed_files"] == [str(missing / "a.conf")]
    assert not missing.exists()


def test_a_file_where_a_folder_should_be_fails(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    result = run_module([], capsys, folders=[folder(blocker)])
    assert result["failed"] is True and "exists and is not a folder" in result["msg"]
