"""mastodon-status's memory check: what each service of the memory budget uses (systemd's
MemoryCurrent) against its share (MemoryHigh of the capped Mastodon units, MemoryLow of
PostgreSQL and Redis), read from `systemctl show` (a stand-in answers here, in its format)."""

import subprocess

from support.ops_scripts import STATUS, load_script

status = load_script("mastodon_status_memory", STATUS)
MB = 1024 * 1024
INFINITY = str(2 ** 64 - 1)


def unit(name, current, high="infinity", maximum="infinity", low="0", active="active", load="loaded"):
    return "\n".join([f"Id={name}", f"LoadState={load}", f"ActiveState={active}", f"MemoryCurrent={current}",
                      f"MemoryHigh={high}", f"MemoryMax={maximum}", f"MemoryLow={low}"])


def systemctl(*blocks, rc=0, stderr=""):
    calls = []

    def run(argv, **_kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, rc, "\n\n".join(blocks) + "\n", stderr)
    run.calls = calls
    return run


def test_each_service_against_its_share():
    run = systemctl(
        unit("mastodon-web.service", 412 * MB, 525 * MB, 787 * MB),
        unit("mastodon-sidekiq.service", 300 * MB, 500 * MB, 750 * MB),
        unit("mastodon-streaming@4000.service", 60 * MB, 100 * MB, 150 * MB),
        unit("postgresql@17-main.service", 120 * MB, low=str(1300 * MB)),
        unit("redis-server.service", 5 * MB, low=str(248 * MB)),
        unit("mastodon-streaming@4001.service", "[not set]", active="inactive"),
    )
    values, result = status.memory_check(run)
    assert run.calls[0][:2] == ["systemctl", "show"]
    assert "mastodon-streaming@*.service" in run.calls[0] and "postgresql@*.service" in run.calls[0]
    assert result["ok"] is True
    assert result["line"] == (
        "ok   memory: mastodon-sidekiq 300 MB of 500 MB; mastodon-streaming@4000 60 MB of 100 MB; "
        "mastodon-web 412 MB of 525 MB; postgresql@17-main 120 MB (share 1300 MB, protected); "
        "redis-server 5 MB (share 248 MB, protected)")
    assert values["memory"]["mastodon-web"] == {"current": 412, "high": 525, "max": 787, "low": None}
    assert "mastodon-streaming@4001" not in values["memory"]


def test_a_capped_unit_above_its_share_fails():
    run = systemctl(unit("mastodon-sidekiq.service", 600 * MB, 500 * MB, 750 * MB),
                    unit("mastodon-web.service", INFINITY))
    _values, result = status.memory_check(run)
    assert result["ok"] is False
    assert result["line"] == ("FAIL memory: mastodon-sidekiq 600 MB of 500 MB (OVER its share); "
                              "mastodon-web ? MB (no share set)")


def test_no_service_here_and_no_systemd():
    _values, result = status.memory_check(systemctl(unit("mastodon-web.service", "[not set]", load="not-found")))
    assert result == {"name": "memory", "ok": True, "line": "ok   memory: no service of the memory budget runs here"}
    _values, result = status.memory_check(systemctl(rc=1, stderr="System has not been booted with systemd"))
    assert result["warn"] is True and result["line"].startswith("WARN memory: cannot ask systemd (System has not")
