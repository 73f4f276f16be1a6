# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhost.mastodon.cloudflare_tunnel_info end to end against the Cloudflare emulator
(a test stand-in for Cloudflare's API on 127.0.0.1)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.selfhost.mastodon.plugins.modules import (
    cloudflare_tunnel,
    cloudflare_tunnel_info,
    cloudflare_tunnel_route,
)


def test_one_tunnel_with_config_and_connections(emulator, cf_args, run_module):
    tid = run_module(cloudflare_tunnel.main, cf_args(name='mastodon')).result['tunnel']['id']
    run_module(cloudflare_tunnel_route.main, cf_args(tunnel=tid, hostname='social.example.test'))
    emulator.store.add_connection(
        tid, {'id': 'client-1', 'version': '2024.8.2', 'arch': 'linux_amd64',
              'run_at': '2026-01-01T00:00:00Z', 'features': []},
        {'id': 'conn-1', 'colo_name': 'EMU', 'origin_ip': '127.0.0.1',
         'opened_at': '2026-01-01T00:00:00Z', 'is_pending_reconnect': False,
         'client_id': 'client-1', 'client_version': '2024.8.2', 'uuid': 'conn-1'})
    emulator.clear_log()
    for wanted in ('mastodon', tid):
        res = run_module(cloudflare_tunnel_info.main, cf_args(tunnel=wanted), check_mode=True)
        assert not res.failed, res.result
        assert res.result['changed'] is False
        [info] = res.result['tunnels']
        assert info['id'] == tid and info['name'] == 'mastodon'
        assert info['status'] == 'healthy'
        assert info['connection_count'] == 1
        assert info['connections'][0]['colo_name'] == 'EMU'
        assert info['config_version'] == 1
        assert [r.get('hostname') for r in info['ingress']] == ['social.example.test', None]
        assert info['ingress'][0]['originRequest'] == {'noTLSVerify': True}
    assert emulator.writes() == []


def test_unknown_tunnel_gives_empty_list(emulator, cf_args, run_module):
    for wanted in ('nope', '11111111-2222-4333-8444-555555555555'):
        res = run_module(cloudflare_tunnel_info.main, cf_args(tunnel=wanted))
        assert not res.failed, res.result
        assert res.result['tunnels'] == []


def test_lists_every_tunnel_across_pages(emulator_factory, run_module, sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    emu = emulator_factory(seed={'bulk_tunnels': {'count': 250, 'deleted_every': 5}})
    res = run_module(cloudflare_tunnel_info.main, dict(
        api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL, include_config=False))
    assert not res.failed, res.result
    names = [t['name'] for t in res.result['tunnels']]
    expected = ['bulk-%05d' % i for i in range(250) if i % 5 != 0]
    assert names == expected  # 200 live tunnels, soft-deleted ones excluded
    pages = [r['query']['page'] for r in emu.requests]
    assert pages == ['1', '2']  # 100 per page
    assert all(r['query']['is_deleted'] == 'false' for r in emu.requests)


def test_permission_error_is_explained(emulator, cf_args, run_module):
    from cloudflare_emulator import TOKEN_DISABLED
    res = run_module(cloudflare_tunnel_info.main, cf_args(api_token=TOKEN_DISABLED))
    res.failure_saying('list tunnels (GET /accounts/', 'is disabled')
