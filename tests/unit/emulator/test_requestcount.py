"""Tests of the request-count summary helper used by the benchmarks (emulator: a stand-in)."""

import requests

from benchmarks.requestcount import format_summary, summarize
from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL


def test_summary_counts_reads_writes_and_routes(emu):
    headers = {"Authorization": f"Bearer {TOKEN_FULL}"}
    base = f"{emu.api_url}/accounts/{ACCOUNT_ID}/cfd_tunnel"
    requests.get(base, headers=headers, params={"name": "a"}, timeout=10)
    created = requests.post(base, headers=headers, json={"name": "a"}, timeout=10).json()
    requests.get(f"{base}/{created['result']['id']}/token", headers=headers, timeout=10)
    emu.set_fault(status=429, count=1, retry_after=1)
    requests.get(base, headers=headers, timeout=10)
    summary = summarize(emu)
    assert summary["total"] == 4 and summary["reads"] == 3 and summary["writes"] == 1
    assert summary["faults"] == 1
    assert summary["by_route"] == {
        "GET /accounts/{account_id}/cfd_tunnel": 2,
        "GET /accounts/{account_id}/cfd_tunnel/{tunnel_id}/token": 1,
        "POST /accounts/{account_id}/cfd_tunnel": 1,
    }
    assert summary["by_status"] == {"200": 3, "429": 1}
    assert summarize(emu.api_url) == summary  # the same over the HTTP control endpoint
    text = format_summary(summary, title="first run")
    assert text.splitlines()[0].startswith("first run: 4 requests (3 reads, 1 writes")
