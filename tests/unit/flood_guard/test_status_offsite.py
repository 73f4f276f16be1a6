"""mastodon-status's off-site check: the newest restic snapshot's age, size and bytes sent from
the state file mastodon-offsite-backup writes, and the last `restic check`; "none" judged by
what the off-site timer says, as for the local backup; a failed check is unhealthy."""

import json
from types import SimpleNamespace

import pytest

from support.ops_scripts import STATUS, load_script

status = load_script("mastodon_status_offsite", STATUS)
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NEVER = {"ActiveState": "active", "LastTriggerUSec": "n/a", "NextElapseUSecRealtime": "Tue 2027-01-16 04:30:00 UTC"}
FIRED = {"ActiveState": "active", "LastTriggerUSec": "Mon 2027-01-15 04:30:00 UTC"}


def write_state(tmp_path, **state):
    path = tmp_path / "offsite.json"
    path.write_text(json.dumps(state))
    return str(path)


def snapshot(age_hours, added=1234, total=50 * 1024 * 1024):
    return {"epoch": NOW - age_hours * 3600, "time": "2027-01-15T04:30:00Z", "snapshot_id": "0123456789abcdef",
            "data_added": added, "total_bytes_processed": total, "source": "20270115T033000Z"}


@pytest.mark.parametrize("timer, ok", [(NEVER, True), (FIRED, False), ({"ActiveState": "inactive"}, False), ({}, False)])
def test_no_snapshot_is_fine_only_before_the_timer_first_fired(tmp_path, timer, ok):
    values, result = status.offsite_check(str(tmp_path / "missing.json"), 36, NOW, timer_state=lambda: timer)
    assert values["offsite_snapshot"] is None
    assert result["ok"] is ok, result
    assert ("no snapshot yet" in result["line"]) is ok


@pytest.mark.parametrize("age_hours, ok", [(1, True), (35.9, True), (36.2, False), (200, False)])
def test_the_newest_snapshot_is_judged_by_its_age(tmp_path, age_hours, ok):
    path = write_state(tmp_path, last_snapshot=snapshot(age_hours))
    values, result = status.offsite_check(path, 36, NOW, timer_state=lambda: FIRED)
    assert result["ok"] is ok, result
    assert abs(values["offsite_age_hours"] - age_hours) <= 0.1
    assert values["offsite_size_bytes"] == 50 * 1024 * 1024 and values["offsite_added_bytes"] == 1234
    assert "01234567" in result["line"] and "50.0 MiB" in result["line"] and "1.2 KiB sent" in result["line"]


@pytest.mark.parametrize("check_ok", [True, False])
def test_a_failed_restic_check_is_unhealthy(tmp_path, check_ok):
    path = write_state(tmp_path, last_snapshot=snapshot(2),
                       last_check={"time": "2027-01-14T05:30:00Z", "epoch": NOW - 26 * 3600, "ok": check_ok})
    values, result = status.offsite_check(path, 36, NOW, timer_state=lambda: FIRED)
    assert result["ok"] is check_ok, result
    assert values["offsite_check_ok"] is check_ok
    assert ("passed" if check_ok else "FAILED") in result["line"]


def test_a_broken_state_file_counts_as_none(tmp_path):
    path = tmp_path / "offsite.json"
    path.write_text("{not json")
    _values, result = status.offsite_check(str(path), 36, NOW, timer_state=lambda: FIRED)
    assert not result["ok"] and "no snapshot recorded" in result["line"]


def test_the_check_runs_only_when_asked(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(status, "offsite_check", lambda *a: calls.append(a) or ({}, status.check("offsite", True, "x")))
    monkeypatch.setattr(status, "CHECKS", ("offsite",))
    status.report(None, {}, SimpleNamespace(checks=None, offsite_state=None), now=NOW)
    assert calls == []
    status.report(None, {}, SimpleNamespace(checks="offsite", offsite_state=None, max_offsite_age_hours=36), now=NOW)
    assert len(calls) == 1
