"""mastodon-status's power check (status.yml warns when the laptop runs on battery).

The kernel lists power supplies as folders of /sys/class/power_supply with one small text
file per attribute (type, status, online, capacity, scope). The tests build such trees in a
temporary folder (a FAKE sysfs, passed with --power-supply-dir) the way real laptops show
them, then generate trees at random (seeded, always run) and with Hypothesis to check the
rule and that no tree crashes the check. Hypothesis is in tests/unit/requirements.txt
(ansible-test units installs it); a plain pytest run without it skips that one test, and the
seeded generator still checks the same invariant.
"""

import json
import os
import random
import tempfile
from pathlib import Path

import pytest

from support.ops_scripts import GUARD, STATUS, load_script

try:
    import hypothesis
    from hypothesis import strategies as hs
except ImportError:  # a plain pytest run in a venv without it
    hypothesis = None


st = load_script("mastodon_status_power", STATUS)


def supply(root, name, **attributes):
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in attributes.items():
        (folder / key).write_bytes(value if isinstance(value, bytes) else f"{value}\n".encode())
    return folder


def power(root):
    return st.power_check(str(root))


# --- Laptops as the kernel shows them ---------------------------------------------------------


def test_thinkpad_on_mains_is_fine(tmp_path):
    supply(tmp_path, "AC", type="Mains", online=1)
    supply(tmp_path, "BAT0", type="Battery", status="Charging", capacity=80, scope="System")
    values, result = power(tmp_path)
    assert result == {"name": "power", "ok": True,
                      "line": "ok   power: on external power (AC; BAT0 charging, 80% charge)"}
    assert values["power"]["on_battery"] is False


def test_thinkpad_on_battery_warns_with_the_charge(tmp_path):
    supply(tmp_path, "AC", type="Mains", online=0)
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", capacity=47)
    values, result = power(tmp_path)
    assert result["ok"] is True and result["warn"] is True
    assert result["line"] == ("WARN power: ON BATTERY (BAT0 discharging, 47% charge): plug the laptop in; "
                              "the server stops when the battery is empty")
    assert values["power"] == {"on_battery": True,
                               "batteries": [{"name": "BAT0", "status": "Discharging", "capacity": 47}]}


def test_full_battery_not_charging_on_mains_is_fine(tmp_path):
    """A full battery says "Not charging" or "Full" while the laptop runs on mains."""
    supply(tmp_path, "ADP1", type="Mains", online=1)
    supply(tmp_path, "BAT1", type="Battery", status="Not charging", capacity=100)
    _values, result = power(tmp_path)
    assert result["line"].startswith("ok   power: on external power (ADP1; BAT1 not charging, 100% charge")


def test_mains_offline_warns_even_when_the_battery_does_not_say_discharging(tmp_path):
    supply(tmp_path, "AC", type="Mains", online=0)
    supply(tmp_path, "BAT0", type="Battery", status="Unknown")
    _values, result = power(tmp_path)
    assert result.get("warn") and "BAT0 unknown, charge unknown" in result["line"]


def test_usb_c_charger_in_one_port_and_the_other_port_empty_is_fine(tmp_path):
    supply(tmp_path, "ucsi-source-psy-USBC000:001", type="USB", online=1)
    supply(tmp_path, "ucsi-source-psy-USBC000:002", type="USB", online=0)
    supply(tmp_path, "BAT0", type="Battery", status="Charging", capacity=60)
    _values, result = power(tmp_path)
    assert "warn" not in result and result["ok"], result


def test_a_discharging_mouse_battery_does_not_count(tmp_path):
    supply(tmp_path, "AC", type="Mains", online=1)
    supply(tmp_path, "BAT0", type="Battery", status="Full", capacity=100)
    supply(tmp_path, "hidpp_battery_0", type="Battery", status="Discharging", capacity=30, scope="Device")
    _values, result = power(tmp_path)
    assert "warn" not in result, result
    assert "hidpp" not in result["line"]


def test_two_batteries_one_discharging_warns_and_lists_both(tmp_path):
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", capacity=12)
    supply(tmp_path, "BAT1", type="Battery", status="Unknown", capacity=95)
    _values, result = power(tmp_path)
    assert result.get("warn")
    assert "BAT0 discharging, 12% charge, BAT1 unknown, 95% charge" in result["line"]


@pytest.mark.parametrize("layout", ["no folder", "empty folder", "desktop with mains only"])
def test_no_battery_is_not_a_laptop_and_not_an_error(tmp_path, layout):
    root = tmp_path / "power_supply"
    if layout != "no folder":
        root.mkdir()
    if layout == "desktop with mains only":
        supply(root, "AC", type="Mains", online=1)
    values, result = power(root)
    assert result["ok"] is True and "warn" not in result
    assert result["line"].startswith("ok   power: not a laptop / unknown (no ")
    assert str(root) in result["line"]
    assert values["power"] in (None, {"on_battery": False, "batteries": []})


def test_garbage_and_unreadable_files_do_not_crash(tmp_path):
    supply(tmp_path, "BAT0", type=b"Battery\xff\xfe", status=b"\x00\x01", capacity="lots")
    folder = supply(tmp_path, "AC", type="Mains")
    (folder / "online").mkdir()  # a folder where a file should be: unreadable
    (tmp_path / "stray-file").write_text("not a supply")
    _values, result = power(tmp_path)
    assert result["ok"] is True
    assert result["line"].startswith("ok   power: not a laptop / unknown (no battery")  # type is garbage


def test_status_warns_in_the_report_but_stays_healthy(tmp_path, capsys):
    """Through main(), as status.yml runs it: the JSON has the WARN line, ok stays true."""
    conf = tmp_path / "flood-guard.conf"
    conf.write_text(json.dumps({"live_dir": str(tmp_path / "live"), "media_dir": str(tmp_path / "media")}))
    sysfs = tmp_path / "sys"
    supply(sysfs, "AC", type="Mains", online=0)
    supply(sysfs, "BAT0", type="Battery", status="Discharging", capacity=33)
    assert st.main(["--config", str(conf), "--guard", GUARD, "--checks", "power",
                    "--power-supply-dir", str(sysfs)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert [c["line"][:34] for c in report["checks"]] == ["WARN power: ON BATTERY (BAT0 disch"]
    # The environment variable does the same (for a test that cannot pass options).
    os.environ["MASTODON_STATUS_POWER_SUPPLY_DIR"] = str(sysfs)
    try:
        assert st.main(["--config", str(conf), "--guard", GUARD, "--checks", "power"]) == 0
    finally:
        del os.environ["MASTODON_STATUS_POWER_SUPPLY_DIR"]
    assert json.loads(capsys.readouterr().out)["checks"][0].get("warn") is True


# --- Generated trees: the rule, and no crash ---------------------------------------------------

TYPES = ["Battery", "Mains", "USB", "USB_C", "UPS", "Wireless", "battery", "", None]
STATUSES = ["Charging", "Discharging", "Not charging", "Full", "Unknown", "discharging", "", None]
ONLINE = ["0", "1", "2", "", "yes", None]
CAPACITY = ["0", "47", "100", "101", "-3", "x", "", None]
SCOPES = ["System", "Device", "Unknown", None]
GARBAGE = [b"\xff\xfe\x00", b"\n\n", b"Battery" * 1000, "Discharging\u2028".encode()]


def write_tree(root, supplies):
    """supplies: [(name, {attribute: str|bytes|None (absent)|"<dir>" (unreadable)})]"""
    root.mkdir(parents=True, exist_ok=True)
    for name, attributes in supplies:
        folder = root / name
        folder.mkdir()
        for key, value in attributes.items():
            if value is None:
                continue
            if value == "<dir>":
                (folder / key).mkdir()
            else:
                (folder / key).write_bytes(value if isinstance(value, bytes) else value.encode())


def expected_on_battery(supplies):
    """The rule, from the attribute values as written (independent of the program's code)."""
    def text(value):
        if value is None or value == "<dir>":
            return ""
        raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return raw.strip()
    batteries = [a for _n, a in supplies
                 if text(a.get("type")).lower() == "battery" and text(a.get("scope")).lower() != "device"]
    external = [a for _n, a in supplies
                if text(a.get("type")).lower() == "mains" or text(a.get("type")).lower().startswith("usb")]
    discharging = any(text(b.get("status")).lower() == "discharging" for b in batteries)
    unplugged = bool(batteries) and bool(external) and not any(text(e.get("online")) == "1" for e in external)
    return discharging or unplugged


def check_tree(root, supplies):
    write_tree(root, supplies)
    values, result = st.power_check(str(root))
    json.dumps([values, result])  # what main() prints must be JSON
    assert result["ok"] is True, result  # never unhealthy, whatever the tree
    assert result["name"] == "power"
    warned = bool(result.get("warn"))
    assert warned == expected_on_battery(supplies), (supplies, result)
    assert result["line"].startswith("WARN power: ON BATTERY" if warned else "ok   power: ")
    assert "\n" not in result["line"]


def random_value(rng, choices):
    return rng.choice(GARBAGE) if rng.random() < 0.05 else (
        "<dir>" if rng.random() < 0.03 else rng.choice(choices))


def test_generated_trees_follow_the_rule_and_never_crash(tmp_path):
    rng = random.Random(20261207)
    for case in range(400):
        supplies = [(f"PS{i}", {"type": random_value(rng, TYPES), "status": random_value(rng, STATUSES),
                                "online": random_value(rng, ONLINE), "capacity": random_value(rng, CAPACITY),
                                "scope": random_value(rng, SCOPES)})
                    for i in range(rng.randint(0, 4))]
        check_tree(tmp_path / f"case{case}", supplies)


# Hypothesis: the same invariant over trees it generates and shrinks. Attributes are absent,
# a value a kernel writes (padded or not), a folder where the file should be, any text or any
# bytes; supply names are any file name.
if hypothesis is not None:
    def attribute(*known):
        return hs.one_of(
            hs.none(), hs.sampled_from(known), hs.just("<dir>"), hs.text(max_size=20),
            hs.binary(max_size=40), hs.sampled_from(known).map(lambda v: f"  {v}\n\n"))

    SUPPLY = hs.fixed_dictionaries({
        "type": attribute("Battery", "Mains", "USB", "USB_C", "USB_PD", "UPS", "Wireless"),
        "status": attribute("Charging", "Discharging", "Not charging", "Full", "Unknown"),
        "online": attribute("0", "1"),
        "capacity": attribute("0", "5", "47", "100", "255", "-1"),
        "scope": attribute("System", "Device", "Unknown"),
    })
    NAME = hs.text(alphabet=hs.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
                   min_size=1, max_size=12).filter(lambda n: n not in (".", ".."))
    TREE = hs.lists(hs.tuples(NAME, SUPPLY), max_size=5, unique_by=lambda t: t[0])

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(TREE)
    def test_hypothesis_warns_iff_on_battery_and_never_crashes(supplies):
        with tempfile.TemporaryDirectory() as folder:
            check_tree(Path(folder) / "power_supply", supplies)
else:
    @pytest.mark.skip(reason="hypothesis is not installed here (tests/unit/requirements.txt: make units has it)")
    def test_hypothesis_warns_iff_on_battery_and_never_crashes():
        pass
