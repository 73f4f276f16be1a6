# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloudflare_tunnel_route writes in an order that never leaves less than before, against the
Cloudflare emulator (a test stand-in for Cloudflare's API on 127.0.0.1): the CNAME replaces
address records in one batch, concurrent runs on one tunnel keep every rule, the owner's own
path rules survive, and a zone that is not active is refused before any write."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

import pytest

from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflare import (
    cloudflare_argument_spec,
)
from ansible_collections.selfhost.mastodon.plugins.modules import cloudflare_tunnel_route
from ansible_collections.selfhost.mastodon.plugins.modules.cloudflare_tunnel_route import (
    TunnelRoute,
    check_params,
)

HOST = 'social.example.test'
TUNNEL = '6ff42ae2-765d-4adf-8112-31c55c1551ef'
BATCH = '/zones/{zone_id}/dns_records/batch'


def names(emu, name=HOST):
    return sorted((r['type'], r['content']) for r in emu.store.dns_records.values()
                  if r['name'] == name)


def seed_with(ingress=None, records=(), zones=None):
    from cloudflare_emulator import DEFAULT_SEED
    seed = {'tunnels': [{'name': 'mastodon', 'id': TUNNEL,
                         'config': {'ingress': list(ingress or [])}}],
            'dns_records': list(records)}
    if zones is not None:
        seed['zones'] = DEFAULT_SEED['zones'] + list(zones)
    return seed


def args_for(emu, **kwargs):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    args = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL,
                tunnel=TUNNEL, hostname=HOST)
    args.update(kwargs)
    return args


# ------------------------------------------------------------------ DNS: one step

def test_a_and_aaaa_are_replaced_by_the_cname_in_one_batch(emulator_factory, run_module):
    emu = emulator_factory(seed=seed_with(records=[
        {'zone': 'example.test', 'type': 'A', 'name': HOST, 'content': '192.0.2.10'},
        {'zone': 'example.test', 'type': 'AAAA', 'name': HOST, 'content': '2001:db8::10'}]))
    res = run_module(cloudflare_tunnel_route.main, args_for(emu, overwrite_dns=True))
    assert not res.failed, res.result
    assert names(emu) == [('CNAME', '%s.cfargotunnel.com' % TUNNEL)]
    dns_writes = [(r['method'], r['route']) for r in emu.writes() if '/zones' in r['route']]
    assert dns_writes == [('POST', BATCH)]
    assert res.result['dns_record']['type'] == 'CNAME'


def test_a_refused_replacement_keeps_the_old_records(emulator_factory, run_module, sleeps):
    """Before: DELETE A, DELETE AAAA, then a refused POST left the name with no address."""
    emu = emulator_factory(seed=seed_with(records=[
        {'zone': 'example.test', 'type': 'A', 'name': HOST, 'content': '192.0.2.10'},
        {'zone': 'example.test', 'type': 'AAAA', 'name': HOST, 'content': '2001:db8::10'}]))
    emu.set_fault(status=400, code=9999, message='Refused for the test', method='POST',
                  path='/dns_records', count=1)
    res = run_module(cloudflare_tunnel_route.main, args_for(emu, overwrite_dns=True))
    res.failure_saying('Refused for the test', 'Records now on that name', '192.0.2.10')
    assert names(emu) == [('A', '192.0.2.10'), ('AAAA', '2001:db8::10')]


def test_a_lost_batch_answer_is_adopted(emulator_factory, run_module, sleeps):
    """The batch went through but its answer was lost: the resent batch fails on its deletes,
    and the run adopts the CNAME it finds (and the A record gone)."""
    emu = emulator_factory(seed=seed_with(records=[
        {'zone': 'example.test', 'type': 'A', 'name': HOST, 'content': '192.0.2.10'}]))
    emu.set_fault(lose_answer=True, method='POST', path='/dns_records/batch', count=1)
    res = run_module(cloudflare_tunnel_route.main, args_for(emu, overwrite_dns=True))
    assert not res.failed, res.result
    assert names(emu) == [('CNAME', '%s.cfargotunnel.com' % TUNNEL)]
    assert res.result['dns_record']['type'] == 'CNAME'


def test_emulator_batch_is_all_or_nothing(emulator):
    """The stand-in models Cloudflare's one-transaction batch: a refused post undoes the
    deletes before it."""
    import requests
    from cloudflare_emulator import TOKEN_FULL, ZONE_ID
    a = emulator.store.create_dns_record(ZONE_ID, {'type': 'A', 'name': HOST,
                                                   'content': '192.0.2.10'})
    answer = requests.post('%s/zones/%s/dns_records/batch' % (emulator.api_url, ZONE_ID),
                           headers={'Authorization': 'Bearer %s' % TOKEN_FULL},
                           json={'deletes': [{'id': a['id']}],
                                 'posts': [{'type': 'CNAME', 'name': HOST, 'content': HOST}]})
    assert answer.status_code == 400 and answer.json()['success'] is False
    assert names(emulator) == [('A', '192.0.2.10')]
    answer = requests.post('%s/zones/%s/dns_records/batch' % (emulator.api_url, ZONE_ID),
                           headers={'Authorization': 'Bearer %s' % TOKEN_FULL},
                           json={'deletes': [{'id': a['id']}],
                                 'posts': [{'type': 'CNAME', 'name': HOST,
                                            'content': 'x.cfargotunnel.com'}]})
    assert answer.status_code == 200, answer.text
    assert [r['type'] for r in answer.json()['result']['posts']] == ['CNAME']
    assert names(emulator) == [('CNAME', 'x.cfargotunnel.com')]


# ------------------------------------------------------------------ rules the module does not own

def test_owner_path_rules_of_the_hostname_survive_present_and_absent(
        emulator_factory, run_module):
    path_rule = {'hostname': HOST, 'path': '^/media/', 'service': 'http://127.0.0.1:9000'}
    other = {'hostname': 'blog.example.test', 'service': 'http://127.0.0.1:2368'}
    emu = emulator_factory(seed=seed_with(ingress=[path_rule, other,
                                                   {'service': 'http_status:404'}]))
    res = run_module(cloudflare_tunnel_route.main, args_for(emu, dns=False))
    assert not res.failed, res.result
    rules = emu.store.tunnels[TUNNEL]['config']['ingress']
    assert [(r.get('hostname'), r.get('path')) for r in rules] == [
        (HOST, '^/media/'), ('blog.example.test', None), (HOST, None), (None, None)]
    res = run_module(cloudflare_tunnel_route.main, args_for(emu, dns=False, state='absent'))
    assert not res.failed, res.result
    rules = emu.store.tunnels[TUNNEL]['config']['ingress']
    assert [(r.get('hostname'), r.get('path')) for r in rules] == [
        (HOST, '^/media/'), ('blog.example.test', None), (None, None)]


# ------------------------------------------------------------------ concurrent runs

class _Exit(Exception):
    def __init__(self, result, failed):
        super(_Exit, self).__init__(result)
        self.result, self.failed = result, failed


class _StubModule(object):
    """Just enough of AnsibleModule for TunnelRoute, one per thread (module arguments are
    process-wide in AnsibleModule, so threads cannot each run main())."""

    check_mode = False
    _diff = False

    def __init__(self, params):
        spec = cloudflare_argument_spec()
        spec.update(tunnel={}, hostname={}, service={'default': 'https://localhost:443'},
                    no_tls_verify={'default': True}, origin_server_name={}, ca_pool={},
                    http_host_header={}, connect_timeout={}, zone={},
                    wildcard={'default': False}, dns={'default': True},
                    overwrite_dns={'default': False}, state={'default': 'present'})
        self.params = dict((k, v.get('default')) for k, v in spec.items())
        self.params.update(params)

    def exit_json(self, **kwargs):
        raise _Exit(kwargs, False)

    def fail_json(self, **kwargs):
        raise _Exit(kwargs, True)


def _run_in_thread(args, barriers, results):
    module = _StubModule(args)
    try:
        check_params(module)
        route = TunnelRoute(module)
        real_get, real_put = route.client.get_tunnel_config, route.client.put_tunnel_config
        state = {'read': False, 'written': False}

        def get_then_wait(tunnel_id):
            config = real_get(tunnel_id)
            if not state['read']:
                state['read'] = True
                barriers[0].wait(timeout=30)  # both runs hold the same list before either writes
            return config

        def put_then_wait(tunnel_id, config):
            written = real_put(tunnel_id, config)
            if not state['written']:
                state['written'] = True
                barriers[1].wait(timeout=30)  # both lists are written before either checks
            return written

        route.client.get_tunnel_config = get_then_wait
        route.client.put_tunnel_config = put_then_wait
        route.run()
    except _Exit as exc:
        results.append(exc)
    except Exception as exc:  # pragma: no cover - reported by the assertion below
        results.append(_Exit({'msg': repr(exc)}, True))


def concurrent_rounds(emu, rounds):
    """Run two route runs for two hostnames on one tunnel at once, *rounds* times, each time
    from the seeded list; return the rounds that lost a rule, the failures and the attempts.

    Two barriers make the race happen every round: both runs read the same list, both write
    their own version of it (the second write drops the first run's rule), and only then do
    they check. The one window the module leaves open (a write that lands more than SETTLE
    after its read, when the other run has already checked) is documented in
    TunnelRoute.write_config, not exercised here."""
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    hosts = ['a.example.test', 'b.example.test']
    lost, failures, attempts = 0, [], []
    for _round in range(rounds):
        emu.reset()
        barriers = [threading.Barrier(len(hosts)), threading.Barrier(len(hosts))]
        results = []
        threads = [threading.Thread(target=_run_in_thread, args=(dict(
            api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL, tunnel=TUNNEL,
            hostname=host, dns=False), barriers, results)) for host in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        failures += [r.result['msg'] for r in results if r.failed]
        attempts += [r.result.get('config_attempts') for r in results if not r.failed]
        rules = emu.store.tunnels[TUNNEL]['config']['ingress']
        present = set(r.get('hostname') for r in rules)
        missing = [h for h in hosts + [HOST, 'blog.example.test'] if h not in present]
        if missing:
            lost += 1
        assert (rules[0].get('hostname'), rules[0].get('path')) == (HOST, '^/media/')
        assert rules[-1]['service'] == 'http_status:404' and not rules[-1].get('hostname')
    return lost, failures, attempts


def test_concurrent_runs_on_one_tunnel_keep_every_rule(emulator_factory, monkeypatch, sleeps):
    emu = emulator_factory(seed=seed_with(ingress=[
        {'hostname': HOST, 'path': '^/media/', 'service': 'http://127.0.0.1:9000'},
        {'hostname': 'blog.example.test', 'service': 'http://127.0.0.1:2368'},
        {'service': 'http_status:404'}]))
    monkeypatch.setattr(TunnelRoute, 'SETTLE', (0.01, 0.05))
    lost, failures, attempts = concurrent_rounds(emu, 30)
    assert failures == []
    assert lost == 0
    # the race happened every round: one of the two runs had to write its rule again
    assert len([a for a in attempts if a >= 2]) >= 30, attempts


def test_a_rule_replaced_every_time_fails_with_a_message(emulator_factory, run_module,
                                                         monkeypatch):
    """Another writer that keeps replacing the list: bounded attempts, then a clear failure."""
    emu = emulator_factory(seed=seed_with(ingress=[{'service': 'http_status:404'}]))
    monkeypatch.setattr(TunnelRoute, 'SETTLE', (0, 0))
    monkeypatch.setattr(TunnelRoute, 'pause', staticmethod(
        lambda seconds: emu.store.put_configuration(
            emu.store.tunnels[TUNNEL]['account_tag'], TUNNEL,
            {'config': {'ingress': [{'service': 'http_status:404'}]}})))
    res = run_module(cloudflare_tunnel_route.main, args_for(emu, dns=False))
    res.failure_saying('replaced by another write', 'after each of 5 attempts')
    assert len([r for r in emu.writes() if r['method'] == 'PUT']) == 5


# ------------------------------------------------------------------ zone status

@pytest.mark.parametrize('status', ['pending', 'moved', 'initializing'])
def test_a_zone_that_is_not_active_is_refused_before_any_write(emulator_factory, run_module,
                                                               status):
    from cloudflare_emulator import PENDING_ZONE, PENDING_ZONE_NAME
    emu = emulator_factory(seed=seed_with(zones=[dict(PENDING_ZONE, status=status)]))
    res = run_module(cloudflare_tunnel_route.main,
                     args_for(emu, hostname='social.%s' % PENDING_ZONE_NAME))
    res.failure_saying('Zone %s is %s at Cloudflare, not active' % (PENDING_ZONE_NAME, status),
                       'Nothing was changed')
    assert emu.writes() == []


# ------------------------------------------------------------------ the validate play's zone check

@pytest.mark.parametrize('hostname, status, says', [
    ('social.example.test', 'active', ''),
    ('social.pending.test', 'pending', 'Zone pending.test is pending at Cloudflare, not active'),
    ('social.pending.test', 'moved', 'Zone pending.test is moved at Cloudflare, not active'),
    ('social.nowhere.test', 'active', 'No zone of account'),
], ids=['active', 'pending', 'moved', 'no zone'])
def test_info_zone_check_reads_only(emulator_factory, run_module, hostname, status, says):
    from ansible_collections.selfhost.mastodon.plugins.modules import cloudflare_tunnel_info
    from cloudflare_emulator import PENDING_ZONE
    emu = emulator_factory(seed=seed_with(zones=[dict(PENDING_ZONE, status=status)]))
    res = run_module(cloudflare_tunnel_info.main, args_for(emu, tunnel='mastodon',
                                                           include_config=False,
                                                           hostname=hostname))
    assert not res.failed, res.result
    if says:
        assert says in res.result['zone_problem'], res.result['zone_problem']
    else:
        assert res.result['zone_problem'] == ''
        assert res.result['zone']['name'] == 'example.test'
    assert emu.writes() == []
    assert len(emu.requests) <= 4  # tunnels, then the zone (exact names when no suffix match)


def test_info_zone_check_paused_zone(emulator_factory, run_module):
    from ansible_collections.selfhost.mastodon.plugins.modules import cloudflare_tunnel_info
    emu = emulator_factory(seed=seed_with())
    for zone in emu.store.zones.values():
        zone['paused'] = True
    res = run_module(cloudflare_tunnel_info.main, args_for(emu, include_config=False,
                                                           hostname=HOST, tunnel='mastodon'))
    assert 'paused' in res.result['zone_problem']
