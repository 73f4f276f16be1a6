# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file_state test: a path as stat described it, against a kind, owner, group and mode."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

import pytest

from ansible_collections.selfhost.mastodon.plugins.test.file_state import TestModule, file_state

RIGHT = {"exists": True, "isdir": True, "isreg": False, "pw_name": "root", "gr_name": "root", "mode": "0755"}


def test_registered_under_its_name():
    assert TestModule().tests()["file_state"] is file_state


def test_right_folder():
    assert file_state(RIGHT, "directory", "root", "root", "0755")


@pytest.mark.parametrize("change", [
    {"exists": False}, {"isdir": False}, {"pw_name": "mastodon"}, {"gr_name": "adm"}, {"mode": "0750"},
])
def test_any_difference_is_false(change):
    assert not file_state(dict(RIGHT, **change), "directory", "root", "root", "0755")


def test_kind_matters_and_missing_is_false():
    assert not file_state(RIGHT, "file", "root", "root", "0755")
    assert not file_state({"exists": False}, "file", "root", "root", "0644")
    assert not file_state(None, "file", "root", "root", "0644")


def test_unknown_kind_refused():
    with pytest.raises(ValueError, match="file or directory"):
        file_state(RIGHT, "link", "root", "root", "0755")


def test_content_compared_by_checksum():
    text = u"table inet selfhost_filter {}\n\u00e9\n"
    found = dict(RIGHT, isdir=False, isreg=True, mode="0644",
                 checksum=hashlib.sha1(text.encode("utf-8")).hexdigest())
    assert file_state(found, "file", "root", "root", "0644", content=text)
    assert not file_state(found, "file", "root", "root", "0644", content=text + "x")
    no_checksum = dict(found)
    del no_checksum["checksum"]
    assert not file_state(no_checksum, "file", "root", "root", "0644", content=text)
    assert file_state(no_checksum, "file", "root", "root", "0644"), "without content the checksum is not needed"
