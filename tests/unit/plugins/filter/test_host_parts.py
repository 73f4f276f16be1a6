# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""selfhost.mastodon.host_parts: which parts of the site a host plays, from the inventory groups."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.mastodon.plugins.filter.host_parts import FilterModule, host_parts

PARTS = ("db", "redis", "web", "sidekiq", "app", "connector", "primary")


def test_the_filter_is_registered():
    assert FilterModule().filters()["host_parts"] is host_parts


def test_one_laptop_plays_every_part():
    groups = {"all": ["laptop"], "ungrouped": [], "mastodon": ["laptop"]}
    parts = host_parts(groups, "laptop")
    assert all(parts[p] for p in PARTS), parts
    assert parts["primary_host"] == "laptop"
    assert parts["db_hosts"] == parts["redis_hosts"] == parts["app_hosts"] == parts["connectors"] == ["laptop"]
    assert parts["lan_clients"] == []
    assert parts["multi_host"] is False and parts["app_groups"] is False


def test_the_example_multi_layout():
    # inventories/example-multi: the old laptop holds the database and Redis, the new one the app.
    groups = {"mastodon": ["laptop", "old-laptop"], "mastodon_db": ["old-laptop"],
              "mastodon_redis": ["old-laptop"], "mastodon_web": ["laptop"], "mastodon_sidekiq": ["laptop"]}
    old = host_parts(groups, "old-laptop")
    new = host_parts(groups, "laptop")
    assert (old["db"], old["redis"], old["app"], old["primary"]) == (True, True, False, False)
    assert (new["db"], new["redis"], new["app"], new["primary"]) == (False, False, True, True)
    # No mastodon_connectors group: every host runs a connector replica.
    assert old["connector"] and new["connector"]
    assert old["lan_clients"] == ["laptop"] and new["lan_clients"] == []
    assert old["primary_host"] == new["primary_host"] == "laptop"
    assert old["multi_host"] and old["app_groups"]


def test_the_primary_is_the_first_web_host_by_name_then_the_first_app_host():
    groups = {"mastodon_web": ["web2", "web1"], "mastodon_sidekiq": ["a-sidekiq"]}
    assert host_parts(groups, "a-sidekiq")["primary_host"] == "web1"
    groups = {"mastodon_sidekiq": ["sk2", "sk1"]}
    assert host_parts(groups, "sk2")["primary_host"] == "sk1"


def test_the_inventory_choice_wins():
    groups = {"mastodon_web": ["web1", "web2"]}
    assert host_parts(groups, "web2", "web2")["primary"] is True
    assert host_parts(groups, "web1", "web2")["primary"] is False
    # Empty means "the rule".
    assert host_parts(groups, "web1", "")["primary"] is True
    assert host_parts(groups, "web1", None)["primary"] is True


def test_web_and_sidekiq_split():
    groups = {"mastodon_web": ["w"], "mastodon_sidekiq": ["s"]}
    w, s = host_parts(groups, "w"), host_parts(groups, "s")
    assert (w["web"], w["sidekiq"], w["app"]) == (True, False, True)
    assert (s["web"], s["sidekiq"], s["app"]) == (False, True, True)
    # Only a sidekiq group: its hosts are the app hosts and also serve the web interface.
    only = host_parts({"mastodon_sidekiq": ["s"]}, "s")
    assert only["web"] and only["sidekiq"]


def test_a_missing_group_means_this_host_an_empty_group_means_none():
    groups = {"mastodon_db": [], "mastodon_web": ["a"]}
    parts = host_parts(groups, "a")
    assert parts["db"] is False and parts["db_hosts"] == []
    assert parts["redis"] is True and parts["redis_hosts"] == ["a"]


def test_connectors_group():
    groups = {"mastodon_connectors": ["c1"], "mastodon_web": ["c1", "w2"]}
    assert host_parts(groups, "c1")["connector"] is True
    assert host_parts(groups, "w2")["connector"] is False


@pytest.mark.parametrize("groups,host", [
    ([], "a"), ({"mastodon_db": "a"}, "a"), ({"mastodon_db": None}, "a"), ({}, ""),
])
def test_bad_input_is_refused(groups, host):
    with pytest.raises(AnsibleFilterError):
        host_parts(groups, host)


# --- generated layouts ------------------------------------------------------------------

HOSTS = st.lists(st.from_regex(r"\A[a-z][a-z0-9-]{0,8}\Z"), min_size=1, max_size=6, unique=True)


@st.composite
def layouts(draw):
    """An inventory: its hosts (group "mastodon") and any of the optional groups over them."""
    hosts = draw(HOSTS)
    groups = {"all": list(hosts), "mastodon": list(hosts)}
    for name in ("mastodon_db", "mastodon_redis", "mastodon_web", "mastodon_sidekiq", "mastodon_connectors"):
        if draw(st.booleans()):
            groups[name] = draw(st.lists(st.sampled_from(hosts), unique=True))
    return groups


def _has_app_group_hosts(groups):
    return bool(groups.get("mastodon_web") or groups.get("mastodon_sidekiq"))


@settings(max_examples=300, deadline=None)
@given(layouts())
def test_exactly_one_primary_and_it_is_an_app_host(groups):
    if not _has_app_group_hosts(groups):
        return  # no app group: every host is an app of its own (see the next test)
    results = {h: host_parts(groups, h) for h in groups["mastodon"]}
    primaries = [h for h, r in results.items() if r["primary"]]
    assert len(primaries) == 1, results
    assert results[primaries[0]]["app"]
    assert {r["primary_host"] for r in results.values()} == {primaries[0]}


@settings(max_examples=200, deadline=None)
@given(HOSTS)
def test_without_any_optional_group_every_host_plays_everything(hosts):
    groups = {"all": list(hosts), "mastodon": list(hosts), "ungrouped": []}
    for h in hosts:
        parts = host_parts(groups, h)
        assert all(parts[p] for p in PARTS), parts
        assert parts["multi_host"] is False


@settings(max_examples=300, deadline=None)
@given(layouts())
def test_the_parts_cover_db_redis_and_app(groups):
    results = [host_parts(groups, h) for h in groups["mastodon"]]
    # A missing group means "each host"; a present one must have someone, which the union shows.
    if groups.get("mastodon_db", True):
        assert any(r["db"] for r in results)
    if groups.get("mastodon_redis", True):
        assert any(r["redis"] for r in results)
    assert any(r["app"] for r in results)
    for h, r in zip(groups["mastodon"], results):
        # An app host serves the web interface or runs Sidekiq (or both), and only an app host.
        assert r["app"] == (r["web"] or r["sidekiq"]), (h, r)
        assert r["app"] == (h in r["app_hosts"]), (h, r)


@settings(max_examples=300, deadline=None)
@given(layouts(), st.randoms(use_true_random=False))
def test_the_host_order_in_the_groups_changes_nothing(groups, rnd):
    shuffled = {}
    for name, members in groups.items():
        members = list(members)
        rnd.shuffle(members)
        shuffled[name] = members
    for h in groups["mastodon"]:
        assert host_parts(groups, h) == host_parts(shuffled, h)
