# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for selfhost.mastodon.systemd_units: one `systemctl show`, then enable and start
only the units that need it; check mode; unknown and masked units.

systemctl is a fake here (the module's run_command answers from a table of unit states and
records the calls); the molecule scenarios run the module against a real systemd.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.selfhost.mastodon.plugins.modules import systemd_units as mod  # noqa: E402


class FakeSystemctl:
    """Answers `systemctl show` from *units* ({name: (load, file_state, active)}) and records
    every call; `enable` and `start` change the table as systemd would."""

    def __init__(self, units, fail_on=None):
        self.units = dict(units)
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, args):
        argv = list(args)
        self.calls.append(argv[1:])
        verb, names = argv[1], [a for a in argv[2:] if not a.startswith("-")]
        if verb == self.fail_on:
            return 1, "", "Failed to %s: Access denied" % verb
        if verb == "show":
            blocks = []
            for name in names:
                load, file_state, active = self.units.get(name, ("not-found", "", "inactive"))
                blocks.append("Id=%s\nLoadState=%s\nActiveState=%s\nUnitFileState=%s\n"
                              % (name, load, active, file_state))
            return 0, "\n".join(blocks), ""
        for name in names:
            load, file_state, active = self.units[name]
            self.units[name] = (load, "enabled" if verb == "enable" else file_state,
                                "active" if verb == "start" else active)
        return 0, "", ""


@pytest.fixture
def systemd(run_module, monkeypatch):
    """Run the module on *names* against *fake* (the shared run_module fixture of
    tests/unit/conftest.py); return its result dict."""
    monkeypatch.setattr(mod.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/bin/systemctl")

    def run(names, fake, check_mode=False):
        monkeypatch.setattr(mod.AnsibleModule, "run_command", lambda self, args, **kwargs: fake(args))
        return run_module(mod.main, {"names": names}, check_mode=check_mode).result

    return run


def test_enables_and_starts_only_the_units_that_need_it_then_changes_nothing(systemd):
    fake = FakeSystemctl({
        "a.service": ("loaded", "enabled", "active"),
        "b.timer": ("loaded", "disabled", "active"),
        "c@4000.service": ("loaded", "disabled", "inactive"),
        "d.service": ("loaded", "enabled", "failed"),
    })
    names = ["a.service", "b.timer", "c@4000.service", "d.service"]
    first = systemd(names, fake)
    assert first["changed"] is True
    assert first["enabled_units"] == ["b.timer", "c@4000.service"]
    assert first["started_units"] == ["c@4000.service", "d.service"]
    assert fake.calls == [
        ["show", "--property=Id,LoadState,UnitFileState,ActiveState", "--"] + names,
        ["enable", "--", "b.timer", "c@4000.service"],
        ["start", "--", "c@4000.service", "d.service"],
    ]
    fake.calls = []
    second = systemd(names, fake)
    assert second == {"changed": False, "enabled_units": [], "started_units": []}
    assert [call[0] for call in fake.calls] == ["show"]


@pytest.mark.parametrize("file_state", ["static", "generated", "enabled-runtime", "transient"])
@pytest.mark.parametrize("active", ["active", "activating", "reloading"])
def test_static_units_count_as_enabled_and_starting_ones_as_running(file_state, active, systemd):
    fake = FakeSystemctl({"a.service": ("loaded", file_state, active)})
    result = systemd(["a.service"], fake)
    assert result["changed"] is False and fake.calls[1:] == []


@pytest.mark.parametrize("file_state", ["disabled", "indirect", "alias", "linked"])
def test_other_unit_file_states_are_enabled(file_state, systemd):
    fake = FakeSystemctl({"a.service": ("loaded", file_state, "active")})
    result = systemd(["a.service"], fake)
    assert result["enabled_units"] == ["a.service"] and fake.calls[1] == ["enable", "--", "a.service"]


def test_check_mode_reports_and_changes_nothing(systemd):
    fake = FakeSystemctl({"a.timer": ("loaded", "disabled", "inactive")})
    result = systemd(["a.timer"], fake, check_mode=True)
    assert result["changed"] is True
    assert result["enabled_units"] == ["a.timer"] and result["started_units"] == ["a.timer"]
    assert [call[0] for call in fake.calls] == ["show"]
    assert fake.units["a.timer"] == ("loaded", "disabled", "inactive")


def test_unknown_and_masked_units_fail_before_anything_changes(systemd):
    fake = FakeSystemctl({
        "a.service": ("loaded", "disabled", "inactive"),
        "m.service": ("masked", "masked", "inactive"),
    })
    result = systemd(["a.service", "nope.service", "m.service"], fake)
    assert result["failed"] is True
    assert "systemd does not know nope.service" in result["msg"]
    assert "masked (systemctl unmask first): m.service" in result["msg"]
    assert [call[0] for call in fake.calls] == ["show"]


def test_a_failing_systemctl_fails_the_task_with_its_message(systemd):
    fake = FakeSystemctl({"a.service": ("loaded", "disabled", "active")}, fail_on="enable")
    result = systemd(["a.service"], fake)
    assert result["failed"] is True
    assert "systemctl enable -- a.service failed (exit 1): Failed to enable: Access denied" in result["msg"]


def test_an_empty_list_changes_nothing(systemd):
    fake = FakeSystemctl({})
    result = systemd([], fake)
    assert result["changed"] is False and fake.calls == []


def test_parse_show_splits_the_blocks_in_order():
    text = "Id=a.service\nLoadState=loaded\n\nId=b.timer\nLoadState=not-found\nUnitFileState=\n"
    assert mod.parse_show(text) == [{"Id": "a.service", "LoadState": "loaded"},
                                    {"Id": "b.timer", "LoadState": "not-found", "UnitFileState": ""}]


def test_check_mode_counts_a_unit_not_installed_yet_as_one_to_enable_and_start(systemd):
    fake = FakeSystemctl({"m.service": ("masked", "masked", "inactive")})
    result = systemd(["new.service"], fake, check_mode=True)
    assert result["changed"] is True and result["enabled_units"] == result["started_units"] == ["new.service"]
    masked = systemd(["new.service", "m.service"], fake, check_mode=True)
    assert masked["failed"] is True and "m.service" in masked["msg"] and "new.service" not in masked["msg"]
