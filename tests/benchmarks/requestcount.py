"""Summaries of the Cloudflare emulator's request log for request-count benchmarks.

The emulator is a TEST STAND-IN for Cloudflare.  This helper turns its request log into
counts a benchmark script can print and assert on (not a timing benchmark)::

    from benchmarks.requestcount import summarize, format_summary
    emu.clear_log()
    ... run the modules ...
    summary = summarize(emu)            # or summarize(list_of_log_entries)
    print(format_summary(summary, title="no-op run"))
    assert summary["total"] <= 5

Works with an in-process ``Emulator`` (``.requests``), a list of log entries, or the
``api_url`` of an out-of-process emulator (read over ``/__emulator__/requests``).
"""

from __future__ import annotations

import collections
import json
import urllib.request

from cloudflare_emulator import WRITE_METHODS


def _entries(source):
    if isinstance(source, str):
        with urllib.request.urlopen(source.rstrip("/") + "/__emulator__/requests",
                                    timeout=10) as answer:
            return json.load(answer)["requests"]
    if hasattr(source, "requests"):
        return source.requests
    return list(source)


def summarize(source):
    """Count requests: total, reads, writes, by ``METHOD route`` and by status."""
    entries = _entries(source)
    by_route = collections.Counter(f"{e['method']} {e.get('route', e['path'])}"
                                   for e in entries)
    by_status = collections.Counter(str(e["status"]) for e in entries)
    writes = sum(1 for e in entries if e["method"] in WRITE_METHODS)
    return {
        "total": len(entries),
        "reads": len(entries) - writes,
        "writes": writes,
        "by_route": dict(sorted(by_route.items())),
        "by_status": dict(sorted(by_status.items())),
        "faults": sum(1 for e in entries if e.get("fault")),
    }


def format_summary(summary, title="requests"):
    """Human-readable lines for a summary from :func:`summarize`."""
    lines = [f"{title}: {summary['total']} requests ({summary['reads']} reads, "
             f"{summary['writes']} writes, {summary['faults']} answered by injected faults)"]
    for route, count in summary["by_route"].items():
        lines.append(f"  {count:3d}  {route}")
    return "\n".join(lines)
