# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhost.mastodon.cloudflare_tunnel_route end to end against the Cloudflare emulator
(a test stand-in for Cloudflare's API on 127.0.0.1)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.selfhost.mastodon.plugins.modules import (
    cloudflare_tunnel,
    cloudflare_tunnel_route,
)

HOST = 'social.example.test'
ROUTE_CONFIG = '/accounts/{account_id}/cfd_tunnel/{tunnel_id}/configurations'


def records(emu, name=HOST):
    return sorted([r for r in emu.store.dns_records.values() if r['name'] == name],
                  key=lambda r: (r['type'], r['content']))


def ingress(emu, tunnel_id):
    config = emu.store.tunnels[tunnel_id]['config'] or {}
    return config.get('ingress') or []


def strip(rules):
    """Ingress rules without the empty originRequest Cloudflare echoes back."""
    out = []
    for rule in rules:
        rule = dict(rule)
        if not rule.get('originRequest'):
            rule.pop('originRequest', None)
        out.append(rule)
    return out


@pytest.fixture
def tunnel_id(emulator, cf_args, run_module):
    res = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'))
    assert not res.failed, res.result
    emulator.clear_log()
    return res.result['tunnel']['id']


def run_route(run_module, cf_args, check_mode=False, diff=False, **kwargs):
    kwargs.setdefault('hostname', HOST)
    return run_module(cloudflare_tunnel_route.main, cf_args(**kwargs), check_mode=check_mode,
                      diff=diff)


# ------------------------------------------------------------------ create / no-op / change

def test_create_then_noop_by_id(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import ZONE_ID
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert not res.failed, res.result
    assert res.result['changed'] is True
    assert strip(ingress(emulator, tunnel_id)) == [
        {'hostname': HOST, 'service': 'https://localhost:443',
         'originRequest': {'noTLSVerify': True}},
        {'service': 'http_status:404'}]
    [cname] = records(emulator)
    assert (cname['type'], cname['content'], cname['proxied']) == (
        'CNAME', '%s.cfargotunnel.com' % tunnel_id, True)
    assert cname['zone_id'] == ZONE_ID
    assert res.result['dns_record']['id'] == cname['id']
    assert res.result['zone'] == {'id': ZONE_ID, 'name': 'example.test'}
    assert res.result['config_version'] == 1
    # reads first (the configuration last, right before it is written), then the
    # configuration and the read that checks it, then DNS (a CNAME without a rule would be a
    # 404 on the public name; a rule without a CNAME is invisible)
    assert [(r['method'], r['route']) for r in emulator.requests] == [
        ('GET', '/zones'),
        ('GET', '/zones/{zone_id}/dns_records'),
        ('GET', ROUTE_CONFIG),
        ('PUT', ROUTE_CONFIG),
        ('GET', ROUTE_CONFIG),
        ('POST', '/zones/{zone_id}/dns_records')]

    emulator.clear_log()
    again = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert again.result['changed'] is False
    assert emulator.writes() == []
    assert len(emulator.requests) == 3
    assert len(records(emulator)) == 1
    assert emulator.store.tunnels[tunnel_id]['config_version'] == 1


def test_noop_by_name_costs_one_more_request(emulator, cf_args, run_module, tunnel_id):
    run_route(run_module, cf_args, tunnel='mastodon')
    emulator.clear_log()
    res = run_route(run_module, cf_args, tunnel='mastodon')
    assert res.result['changed'] is False
    assert res.result['tunnel_id'] == tunnel_id
    assert emulator.writes() == []
    assert len(emulator.requests) == 4
    assert emulator.requests[0]['query']['name'] == 'mastodon'


def test_change_service_only_rewrites_the_rule(emulator, cf_args, run_module, tunnel_id):
    run_route(run_module, cf_args, tunnel=tunnel_id)
    emulator.clear_log()
    res = run_route(run_module, cf_args, tunnel=tunnel_id, service='https://127.0.0.1:8443',
                    diff=True)
    assert res.result['changed'] is True
    assert [(r['method'], r['route']) for r in emulator.writes()] == [('PUT', ROUTE_CONFIG)]
    assert strip(ingress(emulator, tunnel_id))[0]['service'] == 'https://127.0.0.1:8443'
    diff = res.result['diff']
    assert diff['before']['ingress'][0]['service'] == 'https://localhost:443'
    assert diff['after']['ingress'][0]['service'] == 'https://127.0.0.1:8443'
    assert diff['before']['dns_records'] == diff['after']['dns_records']
    assert res.result['config_version'] == 2


def test_origin_settings(emulator, cf_args, run_module, tunnel_id):
    res = run_route(run_module, cf_args, tunnel=tunnel_id, no_tls_verify=False,
                    ca_pool='/etc/cloudflared/origin-ca.pem', origin_server_name=HOST,
                    http_host_header=HOST, connect_timeout=15)
    assert res.result['changed'] is True
    assert strip(ingress(emulator, tunnel_id))[0] == {
        'hostname': HOST, 'service': 'https://localhost:443',
        'originRequest': {'caPool': '/etc/cloudflared/origin-ca.pem', 'originServerName': HOST,
                          'httpHostHeader': HOST, 'connectTimeout': 15}}
    emulator.clear_log()
    same = run_route(run_module, cf_args, tunnel=tunnel_id, no_tls_verify=False,
                     ca_pool='/etc/cloudflared/origin-ca.pem', origin_server_name=HOST,
                     http_host_header=HOST, connect_timeout=15)
    assert same.result['changed'] is False
    assert emulator.writes() == []
    # an empty string removes a setting; no_tls_verify back to true
    run_route(run_module, cf_args, tunnel=tunnel_id, ca_pool='', http_host_header='')
    assert strip(ingress(emulator, tunnel_id))[0]['originRequest'] == {
        'noTLSVerify': True, 'originServerName': HOST, 'connectTimeout': 15}


def test_other_rules_untouched_and_catch_all_kept_last(emulator_factory, run_module, sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    other = {'hostname': 'blog.example.test', 'service': 'http://127.0.0.1:2368',
             'originRequest': {'httpHostHeader': 'blog.example.test'}}
    old = {'hostname': HOST, 'path': '/api', 'service': 'http://127.0.0.1:3000'}
    old2 = {'hostname': HOST, 'service': 'http://127.0.0.1:4000'}
    catch_all = {'service': 'http_status:503'}
    emu = emulator_factory(seed={'tunnels': [{
        'name': 'mastodon', 'id': '6ff42ae2-765d-4adf-8112-31c55c1551ef',
        'config': {'ingress': [old, other, old2, catch_all]}}]})
    args = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL,
                tunnel='mastodon', hostname=HOST, dns=False)
    res = run_module(cloudflare_tunnel_route.main, args)
    assert res.result['changed'] is True
    rules = strip(ingress(emu, '6ff42ae2-765d-4adf-8112-31c55c1551ef'))
    # Only the path-less rule of the hostname is the module's (replaced where it was); the
    # owner's own rule for a path of the hostname stays, still above it.
    assert rules == [
        old,
        other,
        {'hostname': HOST, 'service': 'https://localhost:443',
         'originRequest': {'noTLSVerify': True}},
        catch_all]
    # dns=false never looks at zones or records
    assert not [r for r in emu.requests if r['route'].startswith('/zones')]
    assert 'dns_record' not in res.result


def test_absent_removes_rule_and_own_cname(emulator, cf_args, run_module, tunnel_id):
    run_route(run_module, cf_args, tunnel=tunnel_id)
    run_route(run_module, cf_args, tunnel=tunnel_id, hostname='blog.example.test',
              service='http://127.0.0.1:2368')
    emulator.clear_log()
    res = run_route(run_module, cf_args, tunnel=tunnel_id, state='absent', diff=True)
    assert res.result['changed'] is True
    assert records(emulator) == []
    assert len(records(emulator, 'blog.example.test')) == 1
    assert strip(ingress(emulator, tunnel_id)) == [
        {'hostname': 'blog.example.test', 'service': 'http://127.0.0.1:2368',
         'originRequest': {'noTLSVerify': True}},
        {'service': 'http_status:404'}]
    assert res.result['diff']['after']['dns_records'] == []
    assert len(res.result['diff']['before']['dns_records']) == 1
    emulator.clear_log()
    again = run_route(run_module, cf_args, tunnel=tunnel_id, state='absent')
    assert again.result['changed'] is False
    assert emulator.writes() == []


def test_absent_keeps_cname_of_another_tunnel(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import ZONE_ID
    foreign = '99999999-8888-4777-8666-555555555555.cfargotunnel.com'
    emulator.store.create_dns_record(ZONE_ID, {'type': 'CNAME', 'name': HOST,
                                               'content': foreign, 'proxied': True})
    res = run_route(run_module, cf_args, tunnel=tunnel_id, state='absent')
    assert res.result['changed'] is False
    assert [r['content'] for r in records(emulator)] == [foreign]
    assert emulator.writes() == []


def test_absent_when_tunnel_is_gone(emulator, cf_args, run_module):
    res = run_route(run_module, cf_args, tunnel='no-such-tunnel', state='absent')
    assert not res.failed
    assert res.result['changed'] is False
    assert emulator.writes() == []


# ------------------------------------------------------------------ check and diff mode

def test_check_mode_predicts_without_writing(emulator, cf_args, run_module, tunnel_id):
    res = run_route(run_module, cf_args, tunnel=tunnel_id, check_mode=True, diff=True)
    assert res.result['changed'] is True
    assert emulator.writes() == []
    assert records(emulator) == []
    assert emulator.store.tunnels[tunnel_id]['config'] is None
    # every read is done
    assert [r['route'] for r in emulator.requests] == [
        '/zones', '/zones/{zone_id}/dns_records', ROUTE_CONFIG]
    diff = res.result['diff']
    assert diff['before'] == {'ingress': [], 'dns_records': []}
    assert diff['after'] == {
        'ingress': [{'hostname': HOST, 'service': 'https://localhost:443',
                     'originRequest': {'noTLSVerify': True}},
                    {'service': 'http_status:404'}],
        'dns_records': [{'type': 'CNAME', 'name': HOST, 'proxied': True,
                         'content': '%s.cfargotunnel.com' % tunnel_id}]}
    # the prediction matches what a real run then does
    real = run_route(run_module, cf_args, tunnel=tunnel_id, diff=True)
    assert real.result['diff']['after'] == diff['after']
    assert real.result['ingress'] == diff['after']['ingress']


def test_check_mode_with_tunnel_not_created_yet(emulator, cf_args, run_module):
    res = run_route(run_module, cf_args, tunnel='mastodon', check_mode=True)
    assert not res.failed
    assert res.result['changed'] is True
    assert emulator.writes() == []


def test_missing_tunnel_is_an_error(emulator, cf_args, run_module):
    res = run_route(run_module, cf_args, tunnel='mastodon')
    res.failure_saying('No non-deleted tunnel named mastodon')


def test_diff_records_are_sorted(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import ZONE_ID
    for content in ('192.0.2.9', '192.0.2.1'):
        emulator.store.create_dns_record(ZONE_ID, {'type': 'A', 'name': HOST, 'content': content})
    emulator.store.create_dns_record(ZONE_ID, {'type': 'AAAA', 'name': HOST, 'content': '2001:db8::1'})
    res = run_route(run_module, cf_args, tunnel=tunnel_id, overwrite_dns=True, check_mode=True,
                    diff=True)
    before = res.result['diff']['before']['dns_records']
    assert [(r['type'], r['content']) for r in before] == [
        ('A', '192.0.2.1'), ('A', '192.0.2.9'), ('AAAA', '2001:db8::1')]
    assert [r['type'] for r in res.result['diff']['after']['dns_records']] == ['CNAME']


# ------------------------------------------------------------------ DNS conflicts

def test_existing_a_record_is_never_replaced_silently(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import ZONE_ID
    a = emulator.store.create_dns_record(ZONE_ID, {'type': 'A', 'name': HOST,
                                                   'content': '192.0.2.10', 'proxied': True})
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    res.failure_saying('A %s -> 192.0.2.10 (id %s, proxied)' % (HOST, a['id']),
                       'overwrite_dns=true')
    assert res.result['conflicting_records'][0]['id'] == a['id']
    # checked before any write: the tunnel configuration is untouched too
    assert emulator.writes() == []
    assert emulator.store.tunnels[tunnel_id]['config'] is None

    emulator.clear_log()
    res = run_route(run_module, cf_args, tunnel=tunnel_id, overwrite_dns=True)
    assert not res.failed, res.result
    assert res.result['changed'] is True
    assert [(r['type'], r['content']) for r in records(emulator)] == [
        ('CNAME', '%s.cfargotunnel.com' % tunnel_id)]
    # The A record and the CNAME change in one batch (one transaction): never no address.
    assert [(r['method'], r['route']) for r in emulator.writes()] == [
        ('PUT', ROUTE_CONFIG), ('POST', '/zones/{zone_id}/dns_records/batch')]


def test_cname_of_other_tunnel_is_conflict_then_overwritten(emulator, cf_args, run_module,
                                                            tunnel_id):
    from cloudflare_emulator import ZONE_ID
    foreign = emulator.store.create_dns_record(
        ZONE_ID, {'type': 'CNAME', 'name': HOST, 'proxied': True,
                  'content': '99999999-8888-4777-8666-555555555555.cfargotunnel.com'})
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert res.failed
    assert 'CNAME %s -> 99999999-8888-4777-8666-555555555555.cfargotunnel.com (id %s' % (
        HOST, foreign['id']) in res.result['msg']
    assert emulator.writes() == []

    res = run_route(run_module, cf_args, tunnel=tunnel_id, overwrite_dns=True)
    assert res.result['changed'] is True
    [cname] = records(emulator)
    assert cname['id'] == foreign['id']  # overwritten in place
    assert cname['content'] == '%s.cfargotunnel.com' % tunnel_id


def test_unproxied_own_cname_is_fixed(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import ZONE_ID
    emulator.store.create_dns_record(ZONE_ID, {'type': 'CNAME', 'name': HOST, 'proxied': False,
                                               'content': '%s.cfargotunnel.com' % tunnel_id})
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert res.result['changed'] is True
    [cname] = records(emulator)
    assert cname['proxied'] is True


def test_other_record_types_are_left_alone(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import ZONE_ID
    emulator.store.create_dns_record(ZONE_ID, {'type': 'TXT', 'name': '_acme.' + HOST,
                                               'content': 'keep-me'})
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert not res.failed, res.result
    assert len(records(emulator, '_acme.' + HOST)) == 1


# ------------------------------------------------------------------ zones

def test_longest_zone_match(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import SUB_ZONE_ID
    res = run_route(run_module, cf_args, tunnel=tunnel_id, hostname='a.sub.example.test')
    assert not res.failed, res.result
    assert res.result['zone'] == {'id': SUB_ZONE_ID, 'name': 'sub.example.test'}
    [cname] = records(emulator, 'a.sub.example.test')
    assert cname['zone_id'] == SUB_ZONE_ID
    zone_queries = [r for r in emulator.requests if r['route'] == '/zones']
    assert len(zone_queries) == 1


def test_explicit_zone(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import ZONE_ID
    res = run_route(run_module, cf_args, tunnel=tunnel_id, hostname='a.sub.example.test',
                    zone='example.test')
    assert res.result['zone']['id'] == ZONE_ID
    assert records(emulator, 'a.sub.example.test')[0]['zone_id'] == ZONE_ID


def test_hostname_outside_every_zone(emulator, cf_args, run_module, tunnel_id):
    res = run_route(run_module, cf_args, tunnel=tunnel_id, hostname='social.nowhere.test')
    res.failure_saying('No zone of account')
    assert emulator.writes() == []


# ------------------------------------------------------------------ faults

def test_rate_limit_retry_after_is_honoured(emulator, cf_args, run_module, tunnel_id, sleeps):
    emulator.set_fault(status=429, count=2, retry_after=4, path='/dns_records')
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert not res.failed, res.result
    assert sleeps == [4.0, 4.0]
    assert len(records(emulator)) == 1


def test_5xx_is_retried_with_backoff(emulator, cf_args, run_module, tunnel_id, sleeps):
    emulator.set_fault(status=503, count=3, method='PUT')
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert not res.failed, res.result
    assert sleeps == [1.0, 2.0, 4.0]
    assert emulator.store.tunnels[tunnel_id]['config_version'] == 1


def test_html_5xx_is_retried(emulator, cf_args, run_module, tunnel_id, sleeps):
    emulator.set_fault(status=502, count=1, html=True)
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert not res.failed, res.result
    assert sleeps == [1.0]


def test_slow_answer_times_out_and_is_retried(emulator, cf_args, run_module, tunnel_id, sleeps):
    emulator.set_fault(delay=1.0, count=1, path='/dns_records', method='GET')
    res = run_route(run_module, cf_args, tunnel=tunnel_id, timeout=0.3)
    assert not res.failed, res.result
    assert sleeps == [1.0]
    assert len(records(emulator)) == 1


def test_budget_exhausted_message(emulator, cf_args, run_module, tunnel_id, sleeps):
    emulator.set_fault(status=429, count=100, retry_after=20)
    res = run_route(run_module, cf_args, tunnel=tunnel_id, retry_budget=45)
    res.failure_saying('find zone (GET /zones', '[971]',
                       'Gave up after 3 attempt(s) and 40.0 s of waiting')
    assert res.result['retry_waited'] == 40.0
    assert sleeps == [20.0, 20.0]
    assert emulator.writes() == []


# ------------------------------------------------------------------ tokens

# A token that cannot do the job: the message says why; an invalid token or one without Zone
# Read is stopped before any write is sent, a read-only token's writes are all refused.
@pytest.mark.parametrize('token, says, sent', [
    ('TOKEN_INVALID', 'The API token is invalid', 'none'),
    ('TOKEN_NO_ZONE_READ', 'Zone / Zone / Read', 'none'),
    ('TOKEN_READ_ONLY', 'Account / Cloudflare Tunnel / Edit', 'refused'),
], ids=['invalid token stops before anything', 'missing zone read is explained before writes',
        'read-only token'])
def test_token_that_cannot_route_is_explained(emulator, cf_args, run_module, tunnel_id, token,
                                              says, sent):
    import cloudflare_emulator
    res = run_route(run_module, cf_args, tunnel=tunnel_id,
                    api_token=getattr(cloudflare_emulator, token))
    res.failure_saying(says)
    assert emulator.writes(accepted=(sent == 'refused')) == []


def test_missing_dns_edit_names_permission_and_writes_nothing(emulator, cf_args, run_module,
                                                              tunnel_id):
    from cloudflare_emulator import TOKEN_NO_DNS_EDIT
    res = run_route(run_module, cf_args, tunnel=tunnel_id, api_token=TOKEN_NO_DNS_EDIT)
    res.failure_saying('create DNS record (POST /zones/', 'Zone / DNS / Edit')
    # The configuration goes first: the rule exists (invisible without a DNS record), and no
    # CNAME points at a tunnel without a rule for it.
    assert [r['method'] for r in emulator.writes(accepted=True)] == ['PUT']
    assert records(emulator) == []
    assert res.result['changed'] is True


def test_account_owned_token(emulator, cf_args, run_module, tunnel_id):
    from cloudflare_emulator import TOKEN_ACCOUNT_OWNED
    res = run_route(run_module, cf_args, tunnel=tunnel_id, api_token=TOKEN_ACCOUNT_OWNED)
    assert not res.failed, res.result
    assert res.result['changed'] is True
    assert len(records(emulator)) == 1


def test_account_owned_token_missing_permission_is_recognised(emulator_factory, run_module,
                                                              sleeps):
    from cloudflare_emulator import ACCOUNT_ID
    from cloudflare_emulator.seed import default_seed
    seed = default_seed()
    seed['tokens'].append({'value': 'account-token-no-dns', 'owner': ACCOUNT_ID,
                           'permissions': ['account:cloudflare_tunnel:edit', 'zone:zone:read',
                                           'zone:dns:read']})
    seed['tunnels'] = [{'name': 'mastodon'}]
    emu = emulator_factory(seed=seed)
    res = run_module(cloudflare_tunnel_route.main, dict(
        api_url=emu.api_url, account_id=ACCOUNT_ID, api_token='account-token-no-dns',
        tunnel='mastodon', hostname=HOST))
    res.failure_saying('valid, active account-owned token', 'Zone / DNS / Edit')
    verify = [r['path'] for r in emu.requests if r['path'].endswith('/tokens/verify')]
    assert verify == ['/client/v4/user/tokens/verify',
                      '/client/v4/accounts/%s/tokens/verify' % ACCOUNT_ID]


# ------------------------------------------------------------------ interrupted runs

def test_interrupted_after_tunnel_converges(emulator, cf_args, run_module):
    """Run 1 created the tunnel and stopped; run 2 (tunnel + route) converges, no duplicates."""
    first = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'))
    tid = first.result['tunnel']['id']
    again = run_module(cloudflare_tunnel.main, cf_args(name='mastodon'))
    assert again.result['changed'] is False and again.result['tunnel']['id'] == tid
    res = run_route(run_module, cf_args, tunnel=tid)
    assert res.result['changed'] is True
    assert len([t for t in emulator.store.tunnels.values() if t['name'] == 'mastodon']) == 1
    assert len(records(emulator)) == 1


def test_interrupted_between_config_and_dns_converges(emulator, cf_args, run_module, tunnel_id,
                                                      sleeps):
    emulator.set_fault(status=503, count=50, method='POST', path='/dns_records')
    broken = run_route(run_module, cf_args, tunnel=tunnel_id, retry_budget=5)
    assert broken.failed
    assert broken.result['changed'] is True  # the rule was written before the failure
    assert 'create DNS record (POST' in broken.result['msg']
    assert records(emulator) == []
    emulator.clear_faults()
    emulator.clear_log()
    res = run_route(run_module, cf_args, tunnel=tunnel_id)
    assert not res.failed, res.result
    assert res.result['changed'] is True
    assert [(r['method'], r['route']) for r in emulator.writes()] == [
        ('POST', '/zones/{zone_id}/dns_records')]
    assert len(records(emulator)) == 1


# ------------------------------------------------------------------ scale

def test_cost_does_not_grow_with_the_account(emulator_factory, run_module, sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    emu = emulator_factory(seed={'bulk_tunnels': {'count': 300, 'deleted_every': 3},
                                 'tunnels': [{'name': 'mastodon'}]})
    args = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL,
                tunnel='mastodon', hostname=HOST)
    first = run_module(cloudflare_tunnel_route.main, args)
    assert not first.failed, first.result
    emu.clear_log()
    res = run_module(cloudflare_tunnel_route.main, args)
    assert res.result['changed'] is False
    assert len(emu.requests) == 4


def test_locally_managed_tunnel_is_refused(emulator_factory, run_module, sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    tid = '6ff42ae2-765d-4adf-8112-31c55c1551ef'
    emu = emulator_factory(seed={'tunnels': [{'name': 'laptop', 'id': tid, 'config_src': 'local'}]})
    for wanted in ('laptop', tid):
        res = run_module(cloudflare_tunnel_route.main, dict(
            api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL,
            tunnel=wanted, hostname=HOST))
        res.failure_saying('locally managed')
    assert emu.writes() == []
