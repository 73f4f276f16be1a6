# -*- coding: utf-8 -*-
# Copyright: contributors to selfhost.mastodon
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the mastodon_stack role: the memory budget, each service's limits from it, and
the retention settings' diff.

The arithmetic lives here, not in Jinja, so that it has unit tests
(tests/unit/plugins/filter/test_mastodon_budget.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

# Per-process figures (MB) used when the role passes none; the role's defaults/main.yml
# (mastodon_stack_memory_figures_mb) documents where they come from.
DEFAULT_FIGURES = {
    "puma_worker": 400,
    "puma_thread": 25,
    "sidekiq_process": 350,
    "sidekiq_thread": 30,
    "streaming_process": 100,
    "postgresql_connection": 10,
}


def _clamp(value, low, high):
    return max(low, min(high, value))


def _int(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s must be a whole number, got %r" % (name, value))


def mastodon_memory_budget(memtotal_mb, shared_buffers_percent=12, shared_buffers_max_mb=2048):
    """Process and database sizes derived from the machine's memory (MB).

    8 GB: 1 Puma worker x 5 threads, Sidekiq -c 5, DB_POOL 5, PostgreSQL max_connections 30,
    shared_buffers 983 MB, work_mem 17 MB, Redis expected at 256 MB.
    """
    mem = _int(memtotal_mb, "memtotal_mb")
    if mem < 1024:
        raise AnsibleFilterError("memtotal_mb %d: Mastodon needs at least 1 GB of memory" % mem)
    steps = mem // 8192  # one step per 8 GB
    web_concurrency = _clamp(steps, 1, 4)
    max_threads = 5  # Mastodon's default MAX_THREADS
    sidekiq_threads = _clamp(5 * steps, 5, 25)  # 25: Mastodon's own sidekiq.service
    db_pool = sidekiq_threads  # DB_POOL of the Sidekiq unit: one connection per thread
    streaming = 1
    # Puma: one connection per thread; Sidekiq: DB_POOL; streaming: its pool of 10; psql,
    # tootctl and rails runner: 10.
    max_connections = web_concurrency * max_threads + db_pool + 10 * streaming + 10
    shared_buffers = _clamp(mem * _int(shared_buffers_percent, "shared_buffers_percent") // 100, 128,
                            _int(shared_buffers_max_mb, "shared_buffers_max_mb"))
    work_mem = _clamp(mem // (max_connections * 16), 4, 32)
    return {
        "web_concurrency": web_concurrency,
        "max_threads": max_threads,
        "sidekiq_threads": sidekiq_threads,
        "db_pool": db_pool,
        "streaming_processes": streaming,
        "postgresql_max_connections": max_connections,
        "postgresql_shared_buffers_mb": shared_buffers,
        "postgresql_work_mem_mb": work_mem,
        "redis_expected_mb": _clamp(mem // 32, 128, 1024),
    }


def mastodon_memory_sum(settings, memtotal_mb, limit_mb=None, figures=None):
    """The memory the settings may use, line by line, and whether it fits under the limit.

    settings: web_concurrency, max_threads, sidekiq_threads, streaming_processes,
    postgresql_max_connections, postgresql_shared_buffers_mb, postgresql_work_mem_mb,
    redis_expected_mb. Returns lines (name, detail, mb), total_mb, limit_mb, fits, table.
    """
    fig = dict(DEFAULT_FIGURES)
    fig.update(figures or {})
    s = dict((k, _int(v, k)) for k, v in settings.items())
    mem = _int(memtotal_mb, "memtotal_mb")
    limit = mem // 2 if limit_mb in (None, "", 0, "0") else _int(limit_mb, "limit_mb")
    lines = [
        ("Puma (web)", "%d worker(s) x (%d MB + %d threads x %d MB)" % (
            s["web_concurrency"], fig["puma_worker"], s["max_threads"], fig["puma_thread"]),
         s["web_concurrency"] * (fig["puma_worker"] + s["max_threads"] * fig["puma_thread"])),
        ("Sidekiq", "%d MB + %d threads x %d MB" % (fig["sidekiq_process"], s["sidekiq_threads"], fig["sidekiq_thread"]),
         fig["sidekiq_process"] + s["sidekiq_threads"] * fig["sidekiq_thread"]),
        ("Streaming", "%d process(es) x %d MB" % (s["streaming_processes"], fig["streaming_process"]),
         s["streaming_processes"] * fig["streaming_process"]),
        ("PostgreSQL shared_buffers", "", s["postgresql_shared_buffers_mb"]),
        ("PostgreSQL connections", "%d x (work_mem %d MB + %d MB)" % (
            s["postgresql_max_connections"], s["postgresql_work_mem_mb"], fig["postgresql_connection"]),
         s["postgresql_max_connections"] * (s["postgresql_work_mem_mb"] + fig["postgresql_connection"])),
        ("Redis (expected, noeviction)", "", s["redis_expected_mb"]),
    ]
    total = sum(mb for _name, _detail, mb in lines)
    width = max(len(name) for name, _d, _mb in lines)
    table = ["%-*s %6s MB  %s" % (width, name, mb, detail) for name, detail, mb in lines]
    table.append("%-*s %6s MB  limit %s MB of %s MB RAM: %s" % (
        width, "Total", total, limit, mem, "fits" if total <= limit else "OVER THE LIMIT"))
    return {
        "lines": [{"name": n, "detail": d, "mb": mb} for n, d, mb in lines],
        "total_mb": total,
        "limit_mb": limit,
        "memtotal_mb": mem,
        "fits": total <= limit,
        "streaming_processes": s["streaming_processes"],
        "table": table,
    }


def mastodon_memory_limits(budget, max_percent=150):
    """Each service's share of the memory budget (the result of mastodon_memory_sum), as the
    systemd limits the role writes (MB).

    Mastodon's units are capped: MemoryHigh at their share (the kernel reclaims and throttles
    above it), MemoryMax at max_percent of it (the unit is stopped there and Restart=always
    starts it again). The streaming share is per instance (mastodon-streaming@ is a template).
    PostgreSQL and Redis are protected instead (MemoryLow at their share: memory the kernel
    does not reclaim from them while others have some to give): a cap would kill a database
    backend or a Redis that keeps Sidekiq's jobs (noeviction).
    """
    percent = _int(max_percent, "max_percent")
    if percent < 100:
        raise AnsibleFilterError("max_percent %d: MemoryMax cannot be below the share (MemoryHigh)" % percent)
    by_name = dict((line["name"], line["mb"]) for line in budget["lines"])
    streaming_total = by_name["Streaming"]
    processes = budget.get("streaming_processes") or 1
    shares = {
        "web": by_name["Puma (web)"],
        "sidekiq": by_name["Sidekiq"],
        "streaming": streaming_total // max(_int(processes, "streaming_processes"), 1),
    }
    limits = dict((name, {"share_mb": mb, "high_mb": mb, "max_mb": mb * percent // 100})
                  for name, mb in shares.items())
    postgresql = by_name["PostgreSQL shared_buffers"] + by_name["PostgreSQL connections"]
    redis = by_name["Redis (expected, noeviction)"]
    limits["postgresql"] = {"share_mb": postgresql, "low_mb": postgresql}
    limits["redis"] = {"share_mb": redis, "low_mb": redis}
    return limits


def _setting_value(raw):
    """A value of Mastodon's settings table (a YAML scalar such as '--- 7') as a string."""
    text = raw.strip()
    if text.startswith("---"):
        text = text[3:].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return "" if text in ("", "~", "null") else text


def mastodon_settings_changes(psql_output, desired):
    """Compare `SELECT var, value FROM settings` (psql -A -t -F '|') with the wanted values.

    Returns a list sorted by name of {name, before, after, line} for the settings that differ
    (a missing setting has before ''; a wanted value of None or '' means "no retention").
    """
    current = {}
    for line in str(psql_output or "").splitlines():
        name, sep, value = line.partition("|")
        if sep and name.strip():
            current[name.strip()] = _setting_value(value)
    changes = []
    for name in sorted(desired):
        after = "" if desired[name] in (None, "") else str(_int(desired[name], name))
        before = current.get(name, "")
        if before != after:
            changes.append({"name": name, "before": before, "after": after,
                            "line": "%s: %s -> %s" % (name, before or "(unset)", after or "(unset)")})
    return changes


class FilterModule(object):
    def filters(self):
        return {
            "mastodon_memory_budget": mastodon_memory_budget,
            "mastodon_memory_sum": mastodon_memory_sum,
            "mastodon_memory_limits": mastodon_memory_limits,
            "mastodon_settings_changes": mastodon_settings_changes,
        }
