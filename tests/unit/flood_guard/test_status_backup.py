"""mastodon-status's backup check: the newest backup's age, and "none" judged by what the
nightly timer says (a new installation whose timer never fired is fine; a timer that fired
and left no backup, or no running timer, is not)."""


import pytest

from support.ops_scripts import STATUS, load_script

status = load_script("mastodon_status_backup", STATUS)
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize("timer, ok", [
    ({"ActiveState": "active", "LastTriggerUSec": "n/a", "NextElapseUSecRealtime": "Tue 2027-01-16 03:30:00 UTC"}, True),
    ({"ActiveState": "active", "LastTriggerUSec": "", "NextElapseUSecRealtime": ""}, True),
    ({"ActiveState": "active", "LastTriggerUSec": "Mon 2027-01-15 03:30:00 UTC"}, False),
    ({"ActiveState": "inactive", "LastTriggerUSec": "n/a"}, False),
    ({}, False),
])
def test_no_backup_is_fine_only_before_the_timer_first_fired(tmp_path, timer, ok):
    values, result = status.backup_check(str(tmp_path), 36, NOW, timer_state=lambda: timer)
    assert values == {"last_backup": None}
    assert result["ok"] is ok, result
    assert ("none yet" in result["line"]) is ok


def test_a_missing_backup_folder_counts_as_none(tmp_path):
    values, result = status.backup_check(str(tmp_path / "missing"), 36, NOW,
                                         timer_state=lambda: {"ActiveState": "inactive"})
    assert not result["ok"] and "none in" in result["line"]


@pytest.mark.parametrize("age_hours, ok", [(1, True), (35.9, True), (36.2, False), (200, False)])
def test_the_newest_backup_is_judged_by_its_age(tmp_path, age_hours, ok):
    import datetime
    for hours in (age_hours + 48, age_hours):
        taken = datetime.datetime.fromtimestamp(NOW - hours * 3600, datetime.timezone.utc)
        (tmp_path / taken.strftime("%Y%m%dT%H%M%SZ")).mkdir()
    (tmp_path / "not-a-backup").mkdir()
    never = {"ActiveState": "active", "LastTriggerUSec": "n/a"}
    values, result = status.backup_check(str(tmp_path), 36, NOW, timer_state=lambda: never)
    assert result["ok"] is ok, result
    assert abs(values["backup_age_hours"] - age_hours) <= 0.1


def test_the_newest_backup_is_the_highest_sequence_number_whatever_its_time(tmp_path):
    # A backup made while the clock was 73 years ahead, then two at the right time: the newest
    # is the last one made (sequence 3), and bare timestamps from before sequence numbers (0)
    # count as older than any numbered one.
    for name in ("20260101T000000Z", "00000001-20991231T000000Z", "00000002-20270114T000000Z",
                 "00000003-20270115T070000Z", ".partial-00000004-20270115T075000Z"):
        (tmp_path / name).mkdir()
    never = {"ActiveState": "active", "LastTriggerUSec": "n/a"}
    values, result = status.backup_check(str(tmp_path), 36, NOW, timer_state=lambda: never)
    assert values["last_backup"] == "00000003-20270115T070000Z", values
    assert result["ok"] and abs(values["backup_age_hours"] - 1) <= 0.1
