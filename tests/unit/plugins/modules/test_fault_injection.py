# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection for the Cloudflare modules, against the emulator's fault knobs (a test
stand-in for Cloudflare on 127.0.0.1): rate limits, 5xx, timeouts, dropped connections and
answers lost after each write. Whatever happens, no duplicate is made, and a run interrupted
by a fault is healed by the next run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import pytest

from ansible_collections.selfhost.mastodon.plugins.modules import cloudflare_tunnel, cloudflare_tunnel_route

HOST = 'social.example.test'

# The writes of a first deployment, in order, as (method, path fragment).
WRITES = {
    'create tunnel': ('POST', '/cfd_tunnel'),
    'put configuration': ('PUT', '/configurations'),
    'create dns record': ('POST', '/dns_records'),
}
FAULTS = {
    'rate limited': dict(status=429, retry_after=1),
    'server error': dict(status=503),
    'html 502': dict(status=502, html=True),
    'dropped before the write': dict(close_connection=True),
    'answer lost after the write': dict(lose_answer=True),
    'timeout, write done late': dict(delay=1.5),
}


def deploy(run_module, emulator, **extra):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    base = dict(api_url=emulator.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL,
                timeout=1, retry_budget=20, **extra)
    tunnel = run_module(cloudflare_tunnel.main, dict(base, name='mastodon'))
    if tunnel.failed:
        return tunnel
    return run_module(cloudflare_tunnel_route.main,
                      dict(base, tunnel=tunnel.result['tunnel']['id'], hostname=HOST))


def converged(emulator):
    tunnels = [t for t in emulator.store.tunnels.values()
               if t['name'] == 'mastodon' and not t.get('deleted_at')]
    assert len(tunnels) == 1, tunnels
    tunnel = tunnels[0]
    rules = (tunnel.get('config') or {}).get('ingress') or []
    assert [r.get('hostname') for r in rules] == [HOST, None], rules
    records = [r for r in emulator.store.dns_records.values() if r['name'] == HOST]
    assert len(records) == 1, records
    assert records[0]['content'] == '%s.cfargotunnel.com' % tunnel['id']
    return tunnel


@pytest.mark.parametrize('fault', sorted(FAULTS))
@pytest.mark.parametrize('write', sorted(WRITES))
def test_fault_on_each_write_is_healed_without_duplicates(emulator, run_module, write, fault):
    method, path = WRITES[write]
    emulator.set_fault(method=method, path=path, count=1, **FAULTS[fault])
    first = deploy(run_module, emulator)
    if first.failed:
        # An interrupted run: the next one must heal it.
        emulator.clear_faults()
        second = deploy(run_module, emulator)
        assert not second.failed, second.result
    converged(emulator)
    # A write the fault held back lands up to `delay` seconds after it was sent (Cloudflare
    # carrying out a request whose answer timed out): let it land before counting the next
    # run's writes.
    time.sleep(FAULTS[fault].get('delay', 0))
    # And a further run changes nothing.
    emulator.clear_log()
    again = deploy(run_module, emulator)
    assert not again.failed and again.result['changed'] is False, again.result
    assert [r for r in emulator.requests if r['method'] in ('POST', 'PUT', 'PATCH', 'DELETE')] == []


@pytest.mark.parametrize('write', sorted(WRITES))
def test_a_fault_that_outlasts_the_retry_budget_is_healed_by_the_next_run(emulator, run_module, write):
    method, path = WRITES[write]
    emulator.set_fault(method=method, path=path, count=100, status=503)
    first = deploy(run_module, emulator, )
    first.failure_saying('retry budget')
    emulator.clear_faults()
    second = deploy(run_module, emulator)
    assert not second.failed, second.result
    converged(emulator)


@pytest.mark.parametrize('write', sorted(WRITES))
def test_an_answer_lost_after_a_write_is_adopted_in_the_same_run(emulator, run_module, write):
    """The retry of a write that reached Cloudflare meets its own result (1013 for the tunnel
    name, 81057 for the identical DNS record): adopted, not an error and not a duplicate."""
    method, path = WRITES[write]
    emulator.set_fault(method=method, path=path, count=1, lose_answer=True)
    result = deploy(run_module, emulator)
    assert not result.failed, result.result
    converged(emulator)
    retried = [r for r in emulator.requests if r['method'] == method and path in r['path']]
    assert len(retried) == 2, retried  # the lost one and the retry
