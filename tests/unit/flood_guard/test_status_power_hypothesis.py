"""Hypothesis over generated power supply trees (mastodon-status's power check).

Invariant: the check warns exactly when a battery of the machine is discharging or every
external supply (Mains, USB...) is offline while a battery exists; whatever the tree holds
(missing files, garbage bytes, a folder where a file should be, odd names) it never crashes
and never makes the host unhealthy. The trees are written into a temporary folder (a FAKE
sysfs). Hypothesis is in tests/unit/requirements.txt (ansible-test units installs it); a
plain pytest run without it skips this file, and test_status_power.py's seeded generator
still checks the same invariant.
"""

import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as s  # noqa: E402

from test_status_power import check_tree  # noqa: E402


def attribute(*known):
    return s.one_of(
        s.none(),                                    # the file is absent
        s.sampled_from(known),                       # a value a kernel writes
        s.just("<dir>"),                             # unreadable: a folder in its place
        s.text(max_size=20),                         # any text
        s.binary(max_size=40),                       # any bytes
        s.sampled_from(known).map(lambda v: f"  {v}\n\n"),  # padded
    )


SUPPLY = s.fixed_dictionaries({
    "type": attribute("Battery", "Mains", "USB", "USB_C", "USB_PD", "UPS", "Wireless"),
    "status": attribute("Charging", "Discharging", "Not charging", "Full", "Unknown"),
    "online": attribute("0", "1"),
    "capacity": attribute("0", "5", "47", "100", "255", "-1"),
    "scope": attribute("System", "Device", "Unknown"),
})
NAME = s.text(alphabet=s.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
              min_size=1, max_size=12).filter(lambda n: n not in (".", ".."))
TREE = s.lists(s.tuples(NAME, SUPPLY), max_size=5, unique_by=lambda t: t[0])


@settings(max_examples=300, deadline=None)
@given(TREE)
def test_warns_iff_on_battery_and_never_crashes(supplies):
    with tempfile.TemporaryDirectory() as folder:
        check_tree(Path(folder) / "power_supply", supplies)
