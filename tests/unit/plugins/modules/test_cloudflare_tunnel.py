# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhost.mastodon.cloudflare_tunnel end to end against the Cloudflare emulator (a test
stand-in for Cloudflare's API on 127.0.0.1)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import time

from ansible_collections.selfhost.mastodon.plugins.module_utils import _cloudflare
from ansible_collections.selfhost.mastodon.plugins.modules import cloudflare_tunnel


def decode_token(token):
    return json.loads(base64.b64decode(token))


def tunnels_named(emu, name, deleted=False):
    return [t for t in emu.store.tunnels.values()
            if t['name'] == name and bool(t['deleted_at']) == deleted]


def test_create_then_noop(emulator, cf_args, run_module):
    from cloudflare_emulator import ACCOUNT_ID
    first = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'))
    assert not first.failed, first.result
    assert first.result['changed'] is True
    tunnel = first.result['tunnel']
    assert tunnel['name'] == 'mastodon'
    assert tunnel['status'] == 'inactive'
    assert tunnel['connections'] == 0
    assert tunnel['created_at']
    token = decode_token(first.result['token'])
    assert token['a'] == ACCOUNT_ID and token['t'] == tunnel['id'] and token['s']
    # created remotely managed, one list + one create (the token comes with the create)
    assert [(r['method'], r['route']) for r in emulator.requests] == [
        ('GET', '/accounts/{account_id}/cfd_tunnel'),
        ('POST', '/accounts/{account_id}/cfd_tunnel')]
    assert emulator.requests[0]['query']['name'] == 'mastodon'
    assert emulator.requests[0]['query']['is_deleted'] == 'false'
    assert emulator.requests[1]['json'] == {'name': 'mastodon', 'config_src': 'cloudflare'}
    assert len(tunnels_named(emulator, 'mastodon')) == 1

    emulator.clear_log()
    second = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'))
    assert second.result['changed'] is False
    assert second.result['tunnel']['id'] == tunnel['id']
    assert second.result['token'] == first.result['token']
    assert emulator.writes() == []
    assert len(emulator.requests) == 2
    assert len(tunnels_named(emulator, 'mastodon')) == 1


def test_check_mode_create_writes_nothing(emulator, cf_args, run_module):
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'), check_mode=True, diff=True)
    assert res.result['changed'] is True
    assert res.result['tunnel'] is None and res.result['token'] is None
    assert res.result['diff'] == {'before': {'state': 'absent'},
                                  'after': {'state': 'present', 'name': 'mastodon',
                                            'config_src': 'cloudflare'}}
    assert emulator.writes() == []
    assert tunnels_named(emulator, 'mastodon') == []


def test_diff_on_delete(emulator, cf_args, run_module):
    created = run_module(cloudflare_tunnel.main, cf_args(name='mastodon')).result['tunnel']
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', state='absent'),
                     check_mode=True, diff=True)
    assert res.result['changed'] is True
    assert res.result['diff']['before'] == {'state': 'present', 'name': 'mastodon',
                                            'id': created['id'], 'config_src': 'cloudflare'}
    assert res.result['diff']['after'] == {'state': 'absent'}
    assert len(tunnels_named(emulator, 'mastodon')) == 1


def test_soft_deleted_tunnel_is_ignored(emulator_factory, cf_args, run_module, sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    old_id = '11111111-2222-4333-8444-555555555555'
    emu = emulator_factory(seed={'tunnels': [{'name': 'mastodon', 'id': old_id, 'deleted': True}]})
    args = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL, name='mastodon')
    res = run_module(cloudflare_tunnel.main, args)
    assert res.result['changed'] is True
    assert res.result['tunnel']['id'] != old_id
    assert len(tunnels_named(emu, 'mastodon')) == 1


def test_locally_managed_tunnel_is_an_error(emulator_factory, run_module, sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    emu = emulator_factory(seed={'tunnels': [{'name': 'mastodon', 'config_src': 'local'}]})
    args = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL, name='mastodon')
    for state in ('present', 'absent'):
        res = run_module(cloudflare_tunnel.main, dict(args, state=state))
        res.failure_saying('locally managed')
    assert emu.writes() == []
    assert len(tunnels_named(emu, 'mastodon')) == 1


def test_delete_cleans_connections_first_then_absent_is_ok(emulator, cf_args, run_module):
    created = run_module(cloudflare_tunnel.main, cf_args(name='mastodon')).result['tunnel']
    emulator.clear_log()
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', state='absent'))
    assert res.result['changed'] is True
    assert res.result['tunnel'] is None and res.result['token'] is None
    assert [(r['method'], r['route']) for r in emulator.writes()] == [
        ('DELETE', '/accounts/{account_id}/cfd_tunnel/{tunnel_id}/connections'),
        ('DELETE', '/accounts/{account_id}/cfd_tunnel/{tunnel_id}')]
    assert emulator.store.tunnels[created['id']]['deleted_at']

    emulator.clear_log()
    again = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', state='absent'))
    assert again.result['changed'] is False
    assert emulator.writes() == []


def _connect(emu, tunnel_id, n):
    emu.store.add_connection(
        tunnel_id,
        {'id': 'client-%d' % n, 'version': '2024.8.2', 'arch': 'linux_amd64',
         'run_at': '2026-01-01T00:00:00Z', 'features': []},
        {'id': 'conn-%d' % n, 'colo_name': 'EMU', 'origin_ip': '127.0.0.1',
         'opened_at': '2026-01-01T00:00:00Z', 'is_pending_reconnect': False,
         'client_id': 'client-%d' % n, 'client_version': '2024.8.2', 'uuid': 'conn-%d' % n})


def test_delete_retries_while_connector_reconnects(emulator, cf_args, run_module, sleeps):
    tunnel_id = run_module(cloudflare_tunnel.main, cf_args(name='mastodon')).result['tunnel']['id']
    _connect(emulator, tunnel_id, 0)
    reconnects = []

    def reconnect(tid, removed):
        # A connector that is still running comes back right after each clean-up, twice.
        if len(reconnects) < 2:
            reconnects.append(tid)
            _connect(emulator, tid, len(reconnects))

    emulator.store.on_connections_removed(reconnect)
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', state='absent'))
    assert not res.failed, res.result
    assert res.result['changed'] is True
    statuses = [r['status'] for r in emulator.requests if r['method'] == 'DELETE'
                and r['route'].endswith('{tunnel_id}')]
    assert statuses == [400, 400, 200]
    assert sleeps == [1.0, 2.0]
    assert emulator.store.tunnels[tunnel_id]['deleted_at']


def test_delete_gives_up_when_connections_stay(emulator, cf_args, run_module, sleeps):
    tunnel_id = run_module(cloudflare_tunnel.main, cf_args(name='mastodon')).result['tunnel']['id']
    _connect(emulator, tunnel_id, 0)
    emulator.store.on_connections_removed(lambda tid, removed: _connect(emulator, tid, 9))
    res = run_module(cloudflare_tunnel.main,
                     cf_args(name='mastodon', state='absent', retry_budget=10))
    res.failure_saying('[1022]', 'delete tunnel (DELETE /accounts/',
                       'stop every cloudflared connector', '7.0 s of waiting')
    assert sleeps == [1.0, 2.0, 4.0]
    assert not emulator.store.tunnels[tunnel_id]['deleted_at']


def test_lost_create_answer_is_adopted_not_duplicated(emulator, cf_args, run_module,
                                                      monkeypatch):
    """The create reached Cloudflare but its answer was lost (client timeout): the retried
    create is answered 1013 (name taken) and the module adopts the tunnel it created."""
    waits = []

    def slow_sleep(seconds):
        waits.append(seconds)
        time.sleep(1.5)  # really wait, so the emulator finishes the first create meanwhile

    monkeypatch.setattr(_cloudflare.CloudflareClient, 'sleep', staticmethod(slow_sleep))
    emulator.set_fault(delay=1.0, count=1, method='POST')
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', timeout=0.5))
    assert not res.failed, res.result
    posts = [r for r in emulator.requests if r['method'] == 'POST']
    assert [p['status'] for p in posts] == [200, 409]
    assert waits == [1.0]
    assert len(tunnels_named(emulator, 'mastodon')) == 1
    assert res.result['tunnel']['id'] == tunnels_named(emulator, 'mastodon')[0]['id']
    assert decode_token(res.result['token'])['t'] == res.result['tunnel']['id']


def test_missing_tunnel_edit_permission_is_explained(emulator, cf_args, run_module):
    from cloudflare_emulator import TOKEN_NO_TUNNEL_EDIT
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', api_token=TOKEN_NO_TUNNEL_EDIT))
    res.failure_saying('create tunnel (POST', '[10000] Authentication error',
                       'valid, active user token', 'Account / Cloudflare Tunnel / Edit')
    assert emulator.writes(accepted=True) == []
    assert tunnels_named(emulator, 'mastodon') == []


def test_invalid_token_is_explained(emulator, cf_args, run_module):
    from cloudflare_emulator import TOKEN_INVALID
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', api_token=TOKEN_INVALID))
    res.failure_saying('The API token is invalid')
    assert TOKEN_INVALID not in res.result['msg']
    assert emulator.writes() == []


def test_disabled_token_is_explained(emulator, cf_args, run_module):
    from cloudflare_emulator import TOKEN_DISABLED
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', api_token=TOKEN_DISABLED))
    res.failure_saying('is disabled')
    assert emulator.writes() == []


def test_account_owned_token_works(emulator, cf_args, run_module):
    from cloudflare_emulator import TOKEN_ACCOUNT_OWNED
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon', api_token=TOKEN_ACCOUNT_OWNED))
    assert not res.failed, res.result
    assert res.result['changed'] is True


def test_environment_fallbacks(emulator, run_module, monkeypatch):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    monkeypatch.setenv('CLOUDFLARE_API_TOKEN', TOKEN_FULL)
    monkeypatch.setenv('CLOUDFLARE_ACCOUNT_ID', ACCOUNT_ID)
    monkeypatch.setenv('CLOUDFLARE_API_URL', emulator.api_url)
    res = run_module(cloudflare_tunnel.main, {'name': 'mastodon'})
    assert not res.failed, res.result
    assert len(tunnels_named(emulator, 'mastodon')) == 1


def test_rate_limit_on_create_is_honoured(emulator, cf_args, run_module, sleeps):
    emulator.set_fault(status=429, count=2, retry_after=3)
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'))
    assert not res.failed, res.result
    assert sleeps == [3.0, 3.0]
    assert len(tunnels_named(emulator, 'mastodon')) == 1
