# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""selfhost.mastodon.ip_networks filter and ip_in_networks test (network membership)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.selfhost.mastodon.plugins.filter.ip_networks import FilterModule, ip_networks
from ansible_collections.selfhost.mastodon.plugins.test.ip_in_networks import TestModule as InNetworksTests, ip_in_networks

LAN = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"]


def test_plugins_are_registered():
    assert FilterModule().filters()["ip_networks"] is ip_networks
    assert InNetworksTests().tests()["ip_in_networks"] is ip_in_networks


def test_split_and_normalise():
    result = ip_networks(["192.168.1.7/24", "10.0.0.1", "2001:db8::1/48", "fe80::/10", "10.0.0.1"])
    assert result == {"v4": ["192.168.1.0/24", "10.0.0.1/32"],
                      "v6": ["2001:db8::/48", "fe80::/10"], "invalid": []}


@pytest.mark.parametrize("bad", ["", "lan", "300.1.1.1", "10.0.0.0/33", "::/129", " 10.0.0.0/8",
                                 "10.0.0.0/8 ", "192.168.1.0/24,10.0.0.0/8", None, 7])
def test_invalid_entries_are_listed(bad):
    assert ip_networks(["10.0.0.0/8", bad])["invalid"] == [str(bad)]


def test_a_string_instead_of_a_list_is_invalid():
    assert ip_networks("10.0.0.0/8")["invalid"] == ["10.0.0.0/8"]


@pytest.mark.parametrize("address,inside", [
    ("192.168.1.20", True), ("10.255.0.1", True), ("172.31.255.255", True),
    ("172.32.0.1", False), ("8.8.8.8", False), ("100.64.0.1", False),
    ("fd12:3456::1", True), ("fe80::1", True), ("fe80::1%eth0", True), ("2001:db8::1", False),
    ("::ffff:192.168.0.9", True), ("::ffff:8.8.8.8", False), ("not-an-ip", False), ("", False),
])
def test_membership_in_the_lan_default(address, inside):
    assert ip_in_networks(address, LAN) is inside


def test_invalid_networks_are_ignored_and_empty_list_is_false():
    assert ip_in_networks("10.1.1.1", ["garbage", "10.0.0.0/8"]) is True
    assert ip_in_networks("10.1.1.1", []) is False
