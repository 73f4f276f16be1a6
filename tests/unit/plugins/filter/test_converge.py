# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""selfhost.mastodon.converge_plan / converge_record / converge_checks / converge_facts: a role
skips its tasks only when its record, its inputs and the host's state all say nothing changed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.mastodon.plugins.filter.converge import (
    FilterModule, converge_checks, converge_facts, converge_plan, converge_record)

RECORD = "/var/lib/selfhost-mastodon/converged/base_os.json"
NOW = 1_800_000_000
DAY = 86400

paths = st.lists(st.from_regex(r"/etc/[a-z]{1,8}(/[a-z.@-]{1,8}){0,2}", fullmatch=True), max_size=6, unique=True)
sha1 = st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
states = st.one_of(st.none(), sha1, st.sampled_from(["directory", "link"]))
units = st.lists(st.from_regex(r"[a-z][a-z-]{0,12}\.(service|timer)", fullmatch=True), max_size=5, unique=True)


def stat_of(state):
    if state is None:
        return {"exists": False, "isreg": False, "isdir": False, "islnk": False}
    if state == "directory":
        return {"exists": True, "isreg": False, "isdir": True, "islnk": False}
    if state == "link":
        return {"exists": True, "isreg": False, "isdir": False, "islnk": True}
    return {"exists": True, "isreg": True, "isdir": False, "islnk": False, "checksum": state}


def show(units, inactive=(), disabled=()):
    blocks = []
    for unit in units:
        blocks.append("Id=%s\nActiveState=%s\nUnitFileState=%s" % (
            unit, "inactive" if unit in inactive else "active", "disabled" if unit in disabled else "enabled"))
    return {"rc": 0, "stdout": "\n\n".join(blocks)}


def probe(files, record=None, missing=(), unit_list=(), inactive=(), disabled=()):
    result = {"stat": {path: stat_of(state) for path, state in files.items()},
              "content": {RECORD: record}, "packages": {"missing": list(missing)}, "commands": {}}
    if unit_list:
        result["commands"]["units"] = show(unit_list, inactive, disabled)
    return result


def converged(files, inputs="digest", at=NOW - 60, **extra):
    """What the host looks like right after a complete run that wrote its record."""
    record = converge_record(probe(files), inputs=inputs, files=list(files), now=at, **extra)
    return json.dumps(record)


def plan(files, record, inputs="digest", unit_list=(), **kwargs):
    probe_kwargs = {k: kwargs.pop(k) for k in ("missing", "inactive", "disabled") if k in kwargs}
    return converge_plan(probe(files, record, unit_list=unit_list, **probe_kwargs), record=RECORD,
                         inputs=inputs, files=list(files), units=list(unit_list), now=NOW, **kwargs)


def test_the_filters_are_registered():
    filters = FilterModule().filters()
    assert filters["converge_plan"] is converge_plan and filters["converge_record"] is converge_record
    assert filters["converge_checks"] is converge_checks and filters["converge_facts"] is converge_facts


@settings(max_examples=150, deadline=None)
@given(files=st.dictionaries(st.from_regex(r"/etc/[a-z]{1,10}", fullmatch=True), states, max_size=6), unit_list=units)
def test_nothing_changed_means_nothing_to_do(files, unit_list):
    decision = plan(files, converged(files), unit_list=unit_list)
    assert decision["due"] is False and decision["record"] is False
    assert decision["why"].startswith("nothing changed since the complete run of ")


@settings(max_examples=150, deadline=None)
@given(files=st.dictionaries(st.from_regex(r"/etc/[a-z]{1,10}", fullmatch=True), states, min_size=1, max_size=6),
       data=st.data())
def test_any_changed_file_makes_the_role_run(files, data):
    record = converged(files)
    path = data.draw(st.sampled_from(sorted(files)))
    now_state = data.draw(states.filter(lambda s: s != files[path]))
    decision = plan(dict(files, **{path: now_state}), record)
    assert decision["due"] is True and path in decision["why"] and decision["record"] is True


@settings(max_examples=100, deadline=None)
@given(unit_list=units.filter(bool), data=st.data())
def test_a_stopped_or_disabled_unit_makes_the_role_run(unit_list, data):
    files = {"/etc/a": "0" * 40}
    unit = data.draw(st.sampled_from(unit_list))
    how = data.draw(st.sampled_from(["inactive", "disabled"]))
    decision = plan(files, converged(files), unit_list=unit_list, **{how: [unit]})
    assert decision["due"] is True and unit in decision["why"]


def test_systemctl_is_not_trusted_for_several_units_at_once():
    # `systemctl is-active a b` exits 0 when ANY is active: the plan reads every unit's state.
    checks = converge_checks(["a.timer", "b.timer"])
    assert list(checks) == ["units"] and checks["units"]["argv"][:2] == ["systemctl", "show"]
    assert converge_checks([]) == {}
    files = {"/etc/a": None}
    failed_read = probe(files, converged(files), unit_list=["a.timer"])
    failed_read["commands"]["units"] = {"rc": 1, "stdout": ""}
    decision = converge_plan(failed_read, record=RECORD, inputs="digest", files=list(files), units=["a.timer"], now=NOW)
    assert decision["due"] is True
    # A unit systemctl does not list at all counts as not running.
    partial = probe(files, converged(files), unit_list=["a.timer"])
    decision = converge_plan(partial, record=RECORD, inputs="digest", files=list(files), units=["a.timer", "b.timer"], now=NOW)
    assert decision["due"] is True and "b.timer" in decision["why"]


@settings(max_examples=100, deadline=None)
@given(old=st.text(min_size=1, max_size=20), new=st.text(min_size=1, max_size=20))
def test_changed_inputs_make_the_role_run(old, new):
    files = {"/etc/a": "1" * 40}
    decision = plan(files, converged(files, inputs=old), inputs=new)
    assert decision["due"] is (old != new)


@pytest.mark.parametrize("record", [None, "", "not json", "[]", "{}", '{"version": 2, "inputs": "digest"}',
                                    '{"version": 1, "inputs": "digest"}', '{"version": 1, "inputs": "digest", "at": "x"}'])
def test_a_missing_or_unreadable_record_makes_the_role_run(record):
    decision = plan({"/etc/a": None}, record)
    assert decision["due"] is True and decision["record"] is True


@settings(max_examples=100, deadline=None)
@given(age_days=st.floats(min_value=0, max_value=400), limit=st.integers(min_value=1, max_value=365))
def test_an_old_record_means_a_full_check(age_days, limit):
    files = {"/etc/a": None}
    decision = plan(files, converged(files, at=NOW - age_days * DAY), max_age_days=limit)
    assert decision["due"] is (age_days * DAY > limit * DAY)


def test_a_record_from_the_future_is_not_trusted():
    files = {"/etc/a": None}
    assert plan(files, converged(files, at=NOW + 3600))["due"] is True
    assert plan(files, converged(files, at=NOW + 60))["due"] is False


def test_a_renewal_time_is_kept():
    files = {"/etc/a": None}
    assert plan(files, converged(files, due_at=NOW + 10))["due"] is False
    decision = plan(files, converged(files, due_at=NOW - 10))
    assert decision["due"] is True and "renewal" in decision["why"]


def test_missing_packages_make_the_role_run():
    files = {"/etc/a": None}
    decision = plan(files, converged(files), missing=["nginx"])
    assert decision["due"] is True and "nginx" in decision["why"]


def test_a_new_file_in_the_list_makes_the_role_run():
    files = {"/etc/a": None}
    decision = plan(dict(files, **{"/etc/b": None}), converged(files))
    assert decision["due"] is True


@pytest.mark.parametrize("kwargs,why", [({"enabled": False}, "off"), ({"partial": True}, "tags")])
def test_off_or_tags_always_run_and_tags_never_record(kwargs, why):
    files = {"/etc/a": None}
    decision = plan(files, converged(files), **kwargs)
    assert decision["due"] is True and why in decision["why"]
    assert decision["record"] is False


def test_bad_inputs_are_refused():
    with pytest.raises(AnsibleFilterError):
        converge_plan("text", record=RECORD, inputs="x")
    with pytest.raises(AnsibleFilterError):
        converge_plan({}, record=RECORD, inputs="x", max_age_days="soon")
    with pytest.raises(AnsibleFilterError):
        converge_record(None, inputs="x")
    with pytest.raises(AnsibleFilterError):
        converge_facts([])


def test_the_facts_are_the_stable_ones():
    facts = {"distribution": "Debian", "memtotal_mb": 8000, "date_time": {"epoch": "1"}, "memfree_mb": 12,
             "ansible_local": {"mastodon_stack": {}}, "default_ipv4": {"address": "10.0.0.2"}}
    assert converge_facts(facts) == {"distribution": "Debian", "memtotal_mb": 8000, "default_ipv4": {"address": "10.0.0.2"}}
