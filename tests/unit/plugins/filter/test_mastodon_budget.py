# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the memory budget and retention settings filters (plugins/filter/mastodon_budget.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.mastodon.plugins.filter import mastodon_budget as mb


def test_eight_gb_laptop_budget():
    b = mb.mastodon_memory_budget(7953)  # what an "8 GB" laptop reports as memtotal_mb
    assert (b["web_concurrency"], b["max_threads"], b["sidekiq_threads"], b["db_pool"]) == (1, 5, 5, 5)
    assert b["postgresql_max_connections"] == 1 * 5 + 5 + 10 + 10
    assert b["postgresql_shared_buffers_mb"] == 7953 * 12 // 100
    assert b["postgresql_work_mem_mb"] == 7953 // (30 * 16)
    assert b["redis_expected_mb"] == 7953 // 32
    total = mb.mastodon_memory_sum(b, 7953)
    assert total["limit_mb"] == 7953 // 2
    assert total["fits"] is True
    assert total["total_mb"] == sum(line["mb"] for line in total["lines"])
    # 525 Puma + 500 Sidekiq + 100 streaming + 954 shared_buffers + 30 x (16 + 10) + 248 Redis
    assert total["total_mb"] == 525 + 500 + 100 + 954 + 30 * 26 + 248


@pytest.mark.parametrize("mem, workers, sidekiq", [
    (8192, 1, 5), (16384, 2, 10), (24576, 3, 15), (65536, 4, 25), (262144, 4, 25)])
def test_budget_grows_with_memory_within_bounds(mem, workers, sidekiq):
    b = mb.mastodon_memory_budget(mem)
    assert (b["web_concurrency"], b["sidekiq_threads"], b["db_pool"]) == (workers, sidekiq, sidekiq)
    assert 128 <= b["postgresql_shared_buffers_mb"] <= 2048
    assert 4 <= b["postgresql_work_mem_mb"] <= 32
    assert 128 <= b["redis_expected_mb"] <= 1024
    assert mb.mastodon_memory_sum(b, mem)["fits"], mb.mastodon_memory_sum(b, mem)["table"]


def test_four_gb_does_not_fit_half_of_ram():
    # The smallest box the derivation serves still needs more than 2 GB: the role refuses it
    # unless the limit is overridden (mastodon_stack_memory_limit_override).
    b = mb.mastodon_memory_budget(4096)
    total = mb.mastodon_memory_sum(b, 4096)
    assert total["fits"] is False and total["total_mb"] > 2048


def test_too_much_for_the_limit_is_reported():
    b = dict(mb.mastodon_memory_budget(8192), web_concurrency=6, sidekiq_threads=40)
    total = mb.mastodon_memory_sum(b, 8192)
    assert total["fits"] is False
    assert "OVER THE LIMIT" in total["table"][-1]
    assert mb.mastodon_memory_sum(b, 8192, limit_mb=total["total_mb"])["fits"] is True


def test_figures_can_be_overridden():
    b = mb.mastodon_memory_budget(8192)
    base = mb.mastodon_memory_sum(b, 8192)["total_mb"]
    assert mb.mastodon_memory_sum(b, 8192, figures={"puma_worker": 500})["total_mb"] == base + 100


def test_small_machine_and_bad_input_are_refused():
    with pytest.raises(AnsibleFilterError, match="at least 1 GB"):
        mb.mastodon_memory_budget(512)
    with pytest.raises(AnsibleFilterError, match="whole number"):
        mb.mastodon_memory_budget("lots")


def test_settings_changes_from_psql_output():
    out = "media_cache_retention_period|--- 7\n\ncontent_cache_retention_period|--- '14'\n"
    wanted = {"media_cache_retention_period": 7, "content_cache_retention_period": 30,
              "backups_retention_period": 7}
    changes = mb.mastodon_settings_changes(out, wanted)
    assert changes == [
        {"name": "backups_retention_period", "before": "", "after": "7",
         "line": "backups_retention_period: (unset) -> 7"},
        {"name": "content_cache_retention_period", "before": "14", "after": "30",
         "line": "content_cache_retention_period: 14 -> 30"},
    ]


def test_settings_unchanged_gives_nothing_and_empty_means_unset():
    out = "media_cache_retention_period|--- 7\nbackups_retention_period|--- \n"
    assert mb.mastodon_settings_changes(out, {"media_cache_retention_period": "7",
                                              "backups_retention_period": ""}) == []
    assert mb.mastodon_settings_changes("", {"media_cache_retention_period": None}) == []


def test_limits_give_each_unit_its_share_of_the_budget():
    settings = dict(mb.mastodon_memory_budget(7953), streaming_processes=2)
    total = mb.mastodon_memory_sum(settings, 7953)
    limits = mb.mastodon_memory_limits(total, 150)
    # Puma: 1 worker x (400 + 5 x 25); Sidekiq: 350 + 5 x 30; streaming: 100 per instance.
    assert limits["web"] == {"share_mb": 525, "high_mb": 525, "max_mb": 787}
    assert limits["sidekiq"] == {"share_mb": 500, "high_mb": 500, "max_mb": 750}
    assert limits["streaming"] == {"share_mb": 100, "high_mb": 100, "max_mb": 150}
    by_name = dict((line["name"], line["mb"]) for line in total["lines"])
    assert limits["postgresql"]["low_mb"] == by_name["PostgreSQL shared_buffers"] + by_name["PostgreSQL connections"]
    assert limits["redis"] == {"share_mb": 7953 // 32, "low_mb": 7953 // 32}
    # Every share together is the budget's total (streaming counted per instance).
    assert (limits["web"]["share_mb"] + limits["sidekiq"]["share_mb"] + 2 * limits["streaming"]["share_mb"]
            + limits["postgresql"]["share_mb"] + limits["redis"]["share_mb"]) == total["total_mb"]


def test_limits_refuse_a_max_below_the_share():
    total = mb.mastodon_memory_sum(mb.mastodon_memory_budget(7953), 7953)
    with pytest.raises(AnsibleFilterError, match="max_percent 90"):
        mb.mastodon_memory_limits(total, 90)
    assert mb.mastodon_memory_limits(total, 100)["web"]["max_mb"] == 525
