# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""selfhost.mastodon.content_digest: one digest that changes with any file's path or bytes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.selfhost.mastodon.plugins.lookup.content_digest import content_digest

names = st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?\.(yml|py|j2)", fullmatch=True)
trees = st.dictionaries(names, st.binary(max_size=64), min_size=1, max_size=6)


def write(root, tree):
    for name, data in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@settings(max_examples=60, deadline=None)
@given(tree=trees, data=st.data())
def test_any_change_of_a_file_changes_the_digest(tmp_path_factory, tree, data):
    root = tmp_path_factory.mktemp("tree")
    write(root, tree)
    before = content_digest([str(root)])
    assert content_digest([str(root)]) == before
    name = data.draw(st.sampled_from(sorted(tree)))
    change = data.draw(st.sampled_from(["bytes", "rename", "add"]))
    if change == "bytes":
        (root / name).write_bytes(tree[name] + b"x")
    elif change == "rename":
        (root / name).rename(root / (name + ".old"))
    else:
        (root / "added.yml").write_bytes(b"")
    assert content_digest([str(root)]) != before


def test_byte_code_caches_do_not_count(tmp_path):
    write(tmp_path, {"a.py": b"x = 1\n"})
    before = content_digest([str(tmp_path)])
    write(tmp_path, {"__pycache__/a.cpython-313.pyc": b"\0", "b.pyc": b"\0"})
    assert content_digest([str(tmp_path)]) == before


def test_the_order_of_the_folders_counts_and_a_missing_one_is_empty(tmp_path):
    write(tmp_path / "one", {"a.yml": b"1"})
    write(tmp_path / "two", {"a.yml": b"1"})
    one, two, missing = str(tmp_path / "one"), str(tmp_path / "two"), str(tmp_path / "none")
    assert content_digest([one, two]) == content_digest([two, one])  # same bytes, same names
    assert content_digest([one, missing]) != content_digest([missing, one])
    assert content_digest([missing]) == content_digest([str(tmp_path / "other-missing")])
