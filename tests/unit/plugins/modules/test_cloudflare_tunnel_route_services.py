# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloudflare_tunnel_route's origin services: what cloudflared refuses is refused before any
request (naming cloudflared's rule), what cloudflared accepts is routed.

Against the Cloudflare emulator (a test stand-in for Cloudflare's API on 127.0.0.1). The
verdicts are cloudflared 2026.8.2's (see tests/unit/plugins/module_utils/test__ingress_rules.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.selfhost.mastodon.plugins.modules import (
    cloudflare_tunnel,
    cloudflare_tunnel_route,
)

HOST = 'social.example.test'

REFUSED = {
    'https://localhost:443/': 'no path on the origin',
    'https://localhost:443/mastodon': 'no path on the origin',
    'socks5': 'scheme and hostname',
    'localhost:443': 'scheme and hostname',
    'https://localhost:80:80': 'URL syntax',
    'http_status:1000': 'http_status code',
}

ACCEPTED = [
    'socks-proxy', 'bastion', 'hello_world', 'ftp://127.0.0.1', 'tcp://localhost:22',
    'https://localhost:443?x=1', 'unix:/run/mastodon/web.sock', 'http_status:418',
    'https://[::1]:443',
]


@pytest.fixture
def tunnel_id(emulator, cf_args, run_module):
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'))
    assert not res.failed, res.result
    emulator.clear_log()
    return res.result['tunnel']['id']


@pytest.mark.parametrize('service', sorted(REFUSED))
def test_a_service_cloudflared_refuses_is_refused_before_any_request(
        emulator, cf_args, run_module, tunnel_id, service):
    res = run_module(cloudflare_tunnel_route.main, cf_args(tunnel='mastodon', hostname=HOST, service=service))
    assert res.failed, res.result
    assert emulator.requests == [], emulator.requests
    msg = res.result['msg']
    assert msg.startswith('service %r' % service), msg
    assert REFUSED[service] in msg and 'Nothing was sent to Cloudflare' in msg, msg


@pytest.mark.parametrize('service', ACCEPTED)
def test_a_service_cloudflared_accepts_is_routed(emulator, cf_args, run_module, tunnel_id, service):
    res = run_module(cloudflare_tunnel_route.main, cf_args(tunnel='mastodon', hostname=HOST, service=service))
    assert not res.failed, res.result
    rules = emulator.store.tunnels[tunnel_id]['config']['ingress']
    assert [r['service'] for r in rules if r.get('hostname') == HOST] == [service]
