# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhost.mastodon.cloudflare_r2_bucket end to end against the Cloudflare emulator
(a test stand-in for Cloudflare's API on 127.0.0.1)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import pytest
from ansible.module_utils.common.warnings import get_warning_messages

from ansible_collections.selfhost.mastodon.plugins.module_utils import _cloudflare
from ansible_collections.selfhost.mastodon.plugins.modules import cloudflare_r2_bucket

BUCKET = 'mastodon-media'
MEDIA = 'media.example.test'
BUCKETS = '/accounts/{account_id}/r2/buckets'
ONE_BUCKET = '/accounts/{account_id}/r2/buckets/{bucket_name}'
DOMAINS = '/accounts/{account_id}/r2/buckets/{bucket_name}/domains/custom'
ONE_DOMAIN = '/accounts/{account_id}/r2/buckets/{bucket_name}/domains/custom/{domain}'


def calls(emu):
    return [(r['method'], r['route']) for r in emu.requests]


def buckets(emu):
    """Every bucket the emulator holds, keyed by jurisdiction:name."""
    return dict(('%s:%s' % (b['jurisdiction'], b['name']), b)
                for b in emu.store.r2_buckets.values())


def domains_of(emu, name=BUCKET, jurisdiction='default'):
    bucket = buckets(emu).get('%s:%s' % (jurisdiction, name))
    return None if bucket is None else dict(bucket['domains'])


def run(run_module, cf_args, check_mode=False, diff=False, **kwargs):
    kwargs.setdefault('name', BUCKET)
    return run_module(cloudflare_r2_bucket.main, cf_args(**kwargs), check_mode=check_mode,
                      diff=diff)


# ------------------------------------------------------------------ create / no-op / change

def test_create_with_custom_domain_then_noop(emulator, cf_args, run_module):
    from cloudflare_emulator import ACCOUNT_ID, ZONE_ID
    res = run(run_module, cf_args, custom_domain=MEDIA, location_hint='weur')
    assert not res.failed, res.result
    assert res.result['changed'] is True
    assert calls(emulator) == [('GET', ONE_BUCKET), ('GET', '/zones'), ('POST', BUCKETS),
                               ('POST', DOMAINS)]
    post_bucket, post_domain = emulator.writes()
    assert post_bucket['json'] == {'name': BUCKET, 'locationHint': 'weur'}
    assert post_domain['json'] == {'domain': MEDIA, 'zoneId': ZONE_ID, 'enabled': True,
                                   'minTLS': '1.2'}
    [stored] = buckets(emulator).values()
    assert (stored['name'], stored['location'], stored['jurisdiction']) == (
        BUCKET, 'weur', 'default')
    assert stored['domains'][MEDIA]['zoneId'] == ZONE_ID
    assert stored['domains'][MEDIA]['minTLS'] == '1.2'
    assert res.result['bucket']['name'] == BUCKET
    assert res.result['custom_domains'] == [
        {'domain': MEDIA, 'enabled': True, 'min_tls': '1.2', 'zone': 'example.test'}]
    assert res.result['s3_env'] == {
        'S3_ENABLED': 'true', 'S3_BUCKET': BUCKET,
        'S3_ENDPOINT': 'https://%s.r2.cloudflarestorage.com' % ACCOUNT_ID,
        'S3_ALIAS_HOST': MEDIA, 'S3_REGION': 'auto', 'S3_PROTOCOL': 'https',
        'S3_PERMISSION': ''}

    emulator.clear_log()
    again = run(run_module, cf_args, custom_domain=MEDIA, location_hint='weur')
    assert not again.failed, again.result
    assert again.result['changed'] is False
    assert emulator.writes() == []
    assert calls(emulator) == [('GET', ONE_BUCKET), ('GET', DOMAINS)]
    assert again.result['custom_domains'][0]['status'] == {'ownership': 'active',
                                                           'ssl': 'active'}
    assert again.result['s3_env'] == res.result['s3_env']
    assert len(buckets(emulator)) == 1


def test_bucket_without_custom_domain_leaves_domains_alone(emulator, cf_args, run_module):
    run(run_module, cf_args, custom_domain=MEDIA)
    emulator.clear_log()
    res = run(run_module, cf_args)
    assert res.result['changed'] is False
    assert emulator.writes() == []
    assert list(domains_of(emulator)) == [MEDIA]
    # one enabled custom domain: it is the alias host Mastodon should use
    assert res.result['s3_env']['S3_ALIAS_HOST'] == MEDIA


def test_domain_settings_change_is_one_put(emulator, cf_args, run_module):
    run(run_module, cf_args, custom_domain=MEDIA)
    emulator.clear_log()
    res = run(run_module, cf_args, custom_domain=MEDIA, min_tls='1.3',
              custom_domain_enabled=False, diff=True)
    assert res.result['changed'] is True
    assert [(r['method'], r['route'], r['json']) for r in emulator.writes()] == [
        ('PUT', ONE_DOMAIN, {'enabled': False, 'minTLS': '1.3'})]
    assert domains_of(emulator)[MEDIA]['minTLS'] == '1.3'
    assert domains_of(emulator)[MEDIA]['enabled'] is False
    diff = res.result['diff']
    assert diff['before']['custom_domains'] == [
        {'domain': MEDIA, 'enabled': True, 'min_tls': '1.2', 'zone': 'example.test'}]
    assert diff['after']['custom_domains'] == [
        {'domain': MEDIA, 'enabled': False, 'min_tls': '1.3', 'zone': 'example.test'}]
    # a disabled domain serves nothing, so it is not offered as Mastodon's alias host
    assert 'S3_ALIAS_HOST' not in res.result['s3_env']
    emulator.clear_log()
    assert run(run_module, cf_args, custom_domain=MEDIA, min_tls='1.3',
               custom_domain_enabled=False).result['changed'] is False
    assert emulator.writes() == []


def test_change_of_hostname_with_purge(emulator, cf_args, run_module):
    run(run_module, cf_args, custom_domain=MEDIA)
    emulator.clear_log()
    res = run(run_module, cf_args, custom_domain='files.example.test', diff=True)
    # without purge the old hostname stays connected
    assert res.result['changed'] is True
    assert sorted(domains_of(emulator)) == ['files.example.test', MEDIA]
    emulator.clear_log()
    res = run(run_module, cf_args, custom_domain='files.example.test', purge_custom_domains=True,
              diff=True)
    assert res.result['changed'] is True
    assert [(r['method'], r['route']) for r in emulator.writes()] == [('DELETE', ONE_DOMAIN)]
    assert emulator.writes()[0]['path'].endswith('/domains/custom/' + MEDIA)
    assert sorted(domains_of(emulator)) == ['files.example.test']
    assert [d['domain'] for d in res.result['diff']['before']['custom_domains']] == [
        'files.example.test', MEDIA]
    assert [d['domain'] for d in res.result['diff']['after']['custom_domains']] == [
        'files.example.test']


def test_explicit_zone_and_longest_zone_match(emulator, cf_args, run_module):
    from cloudflare_emulator import SUB_ZONE_ID, ZONE_ID
    res = run(run_module, cf_args, custom_domain='media.sub.example.test')
    assert not res.failed, res.result
    assert domains_of(emulator)['media.sub.example.test']['zoneId'] == SUB_ZONE_ID
    # the same hostname through the parent zone: disconnected and connected again
    emulator.clear_log()
    res = run(run_module, cf_args, custom_domain='media.sub.example.test',
              custom_domain_zone='example.test')
    assert res.result['changed'] is True
    assert [(r['method'], r['route']) for r in emulator.writes()] == [
        ('DELETE', ONE_DOMAIN), ('POST', DOMAINS)]
    assert domains_of(emulator)['media.sub.example.test']['zoneId'] == ZONE_ID


def test_hostname_outside_every_zone_fails_before_writing(emulator, cf_args, run_module):
    res = run(run_module, cf_args, custom_domain='media.elsewhere.invalid')
    res.failure_saying('No zone of account')
    assert emulator.writes() == []
    assert buckets(emulator) == {}


def test_existing_bucket_settings_are_reported_not_changed(emulator_factory, run_module,
                                                           sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    emu = emulator_factory(seed={'r2_buckets': [
        {'name': BUCKET, 'location': 'apac', 'storage_class': 'InfrequentAccess'}]})
    args = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL, name=BUCKET,
                location_hint='weur', storage_class='Standard')
    res = run_module(cloudflare_r2_bucket.main, args)
    assert not res.failed, res.result
    assert res.result['changed'] is False
    assert emu.writes() == []
    warnings = ' '.join(get_warning_messages())
    assert 'location apac, not weur' in warnings
    assert 'storage class InfrequentAccess, not Standard' in warnings


def test_jurisdiction_goes_in_the_header_and_endpoint(emulator, cf_args, run_module):
    from cloudflare_emulator import ACCOUNT_ID
    res = run(run_module, cf_args, jurisdiction='eu', custom_domain=MEDIA)
    assert not res.failed, res.result
    assert list(buckets(emulator)) == ['eu:%s' % BUCKET]
    assert res.result['s3_env']['S3_ENDPOINT'] == (
        'https://%s.eu.r2.cloudflarestorage.com' % ACCOUNT_ID)
    # the same name in the default jurisdiction is another bucket
    emulator.clear_log()
    res = run(run_module, cf_args)
    assert res.result['changed'] is True
    assert sorted(buckets(emulator)) == ['default:%s' % BUCKET, 'eu:%s' % BUCKET]


# ------------------------------------------------------------------ check and diff mode

def test_check_mode_reads_everything_and_writes_nothing(emulator, cf_args, run_module):
    res = run(run_module, cf_args, custom_domain=MEDIA, check_mode=True, diff=True)
    assert not res.failed, res.result
    assert res.result['changed'] is True
    assert emulator.writes() == []
    assert buckets(emulator) == {}
    assert calls(emulator) == [('GET', ONE_BUCKET), ('GET', '/zones')]
    diff = res.result['diff']
    assert diff['before'] == {}
    assert diff['after'] == {
        'name': BUCKET, 'location': None, 'storage_class': 'Standard',
        'jurisdiction': 'default',
        'custom_domains': [{'domain': MEDIA, 'enabled': True, 'min_tls': '1.2',
                            'zone': 'example.test'}]}
    # the prediction matches what the real run then does
    real = run(run_module, cf_args, custom_domain=MEDIA, diff=True)
    assert real.result['diff']['after']['custom_domains'] == diff['after']['custom_domains']
    assert real.result['diff']['after']['name'] == BUCKET


def test_check_mode_delete_writes_nothing(emulator, cf_args, run_module):
    run(run_module, cf_args, custom_domain=MEDIA)
    emulator.clear_log()
    res = run(run_module, cf_args, state='absent', check_mode=True, diff=True)
    assert res.result['changed'] is True
    assert emulator.writes() == []
    assert list(domains_of(emulator)) == [MEDIA]
    assert len(buckets(emulator)) == 1
    assert res.result['diff']['after'] == {}
    assert res.result['diff']['before']['custom_domains'][0]['domain'] == MEDIA


# ------------------------------------------------------------------ delete

def test_delete_disconnects_domains_then_deletes(emulator, cf_args, run_module):
    run(run_module, cf_args, custom_domain=MEDIA)
    emulator.clear_log()
    res = run(run_module, cf_args, state='absent')
    assert res.result['changed'] is True
    assert [(r['method'], r['route']) for r in emulator.writes()] == [
        ('DELETE', ONE_DOMAIN), ('DELETE', ONE_BUCKET)]
    assert buckets(emulator) == {}
    assert res.result['bucket'] is None and res.result['s3_env'] is None
    emulator.clear_log()
    again = run(run_module, cf_args, state='absent')
    assert again.result['changed'] is False
    assert emulator.writes() == []
    assert calls(emulator) == [('GET', ONE_BUCKET)]


def test_delete_of_a_bucket_with_objects_is_refused(emulator_factory, run_module, sleeps):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    emu = emulator_factory(seed={'r2_buckets': [{'name': BUCKET, 'object_count': 3}]})
    args = dict(api_url=emu.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL, name=BUCKET,
                state='absent')
    res = run_module(cloudflare_r2_bucket.main, args)
    res.failure_saying('[10008]', 'never deletes objects')
    assert len(buckets(emu)) == 1


# ------------------------------------------------------------------ errors, retries, tokens

@pytest.mark.parametrize('name, problem', [
    ('ab', 'it has 2 characters'),
    ('a' * 64, 'it has 64 characters'),
    ('Media', "it contains 'M'"),
    ('media_files', "it contains '_'"),
    ('media.files', "it contains '.'"),
    ('-media', 'starts or ends with a hyphen'),
    ('media-', 'starts or ends with a hyphen'),
])
def test_bad_bucket_name_is_refused_before_any_call(emulator, cf_args, run_module, name,
                                                    problem):
    res = run(run_module, cf_args, name=name)
    assert res.failed
    assert problem in res.result['msg']
    assert 'not a valid R2 bucket name' in res.result['msg']
    assert emulator.requests == []


def test_good_edge_names_are_accepted(emulator, cf_args, run_module):
    for name in ('abc', 'a' * 63, '0-9'):
        res = run(run_module, cf_args, name=name)
        assert not res.failed, res.result
    assert len(buckets(emulator)) == 3


def test_emulator_refuses_a_bad_name_too(emulator, cf_args):
    """The module's local check mirrors the API's rule (code 10005)."""
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    client = _cloudflare.CloudflareClient(TOKEN_FULL, ACCOUNT_ID, api_url=emulator.api_url)
    with pytest.raises(_cloudflare.CloudflareError) as info:
        client.create_r2_bucket('Bad_Name')
    assert info.value.has_code(10005)
    assert info.value.status == 400


def test_missing_r2_permission_is_named_and_nothing_written(emulator, cf_args, run_module):
    from cloudflare_emulator import TOKEN_NO_R2_EDIT
    res = run(run_module, cf_args, custom_domain=MEDIA, api_token=TOKEN_NO_R2_EDIT)
    msg = res.failure_saying('create R2 bucket (POST /accounts/', '[10000] Authentication error',
                             'Account / Workers R2 Storage / Edit')
    assert TOKEN_NO_R2_EDIT not in msg
    assert [r['status'] for r in emulator.writes()] == [403]
    assert buckets(emulator) == {}


def test_read_only_token_fails_on_the_first_read(emulator, cf_args, run_module):
    from cloudflare_emulator import TOKEN_READ_ONLY
    res = run(run_module, cf_args, api_token=TOKEN_READ_ONLY)
    res.failure_saying('get R2 bucket (GET /accounts/')
    assert emulator.writes() == []


def test_rate_limit_and_5xx_are_retried_without_duplicates(emulator, cf_args, run_module,
                                                           sleeps):
    emulator.set_fault(status=429, count=1, retry_after=3, method='POST')
    emulator.add_fault(status=502, count=1, method='POST')
    emulator.add_fault(status=503, count=1, html=True, path='/domains/custom')
    res = run(run_module, cf_args, custom_domain=MEDIA)
    assert not res.failed, res.result
    assert sleeps == [3.0, 1.0, 1.0]  # Retry-After, then backoff restarting per call
    posts = [(r['route'], r['status']) for r in emulator.writes()]
    assert posts == [(BUCKETS, 429), (BUCKETS, 502), (BUCKETS, 200), (DOMAINS, 503),
                     (DOMAINS, 200)]
    assert len(buckets(emulator)) == 1
    assert list(domains_of(emulator)) == [MEDIA]


def test_lost_create_answer_is_adopted_not_duplicated(emulator, cf_args, run_module,
                                                      monkeypatch):
    """The create reached Cloudflare but its answer was lost (client timeout): the retried
    create is answered 10004 (exists, and you own it) and the module adopts the bucket."""
    waits = []

    def slow_sleep(seconds):
        waits.append(seconds)
        time.sleep(1.5)  # really wait, so that the emulator finishes the first create

    monkeypatch.setattr(_cloudflare.CloudflareClient, 'sleep', staticmethod(slow_sleep))
    emulator.set_fault(delay=1.0, count=1, method='POST', path='/r2/buckets')
    res = run(run_module, cf_args, timeout=0.5)
    assert not res.failed, res.result
    posts = [r for r in emulator.requests if r['method'] == 'POST']
    assert [p['status'] for p in posts] == [200, 409]
    assert waits == [1.0]
    assert len(buckets(emulator)) == 1
    assert res.result['changed'] is True
    assert res.result['bucket']['name'] == BUCKET


def test_domain_of_another_bucket_is_a_clear_error(emulator, cf_args, run_module):
    run(run_module, cf_args, name='other-bucket', custom_domain=MEDIA)
    emulator.clear_log()
    res = run(run_module, cf_args, custom_domain=MEDIA)
    res.failure_saying('connected to another R2 bucket')
    assert list(domains_of(emulator, 'other-bucket')) == [MEDIA]
    assert domains_of(emulator) == {}


def test_budget_exhausted_names_the_call(emulator, cf_args, run_module, sleeps):
    emulator.set_fault(status=429, count=100, retry_after=20)
    res = run(run_module, cf_args, retry_budget=45)
    res.failure_saying('get R2 bucket (GET /accounts/',
                       'Gave up after 3 attempt(s) and 40.0 s of waiting')
    assert emulator.writes() == []


def test_environment_fallbacks(emulator, run_module, monkeypatch):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    monkeypatch.setenv('CLOUDFLARE_API_TOKEN', TOKEN_FULL)
    monkeypatch.setenv('CLOUDFLARE_ACCOUNT_ID', ACCOUNT_ID)
    monkeypatch.setenv('CLOUDFLARE_API_URL', emulator.api_url)
    res = run_module(cloudflare_r2_bucket.main, {'name': BUCKET})
    assert not res.failed, res.result
    assert len(buckets(emulator)) == 1


def test_in_the_cloudflare_action_group():
    """module_defaults: group/selfhost.mastodon.cloudflare sets its credentials too."""
    import os

    import yaml
    runtime = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'meta',
                           'runtime.yml')
    with open(runtime) as handle:
        groups = yaml.safe_load(handle)['action_groups']
    assert 'cloudflare_r2_bucket' in groups['cloudflare']


@pytest.mark.parametrize('hostname', ['media', 'https://media.example.test',
                                      'media.example.test:443'])
def test_custom_domain_must_be_a_hostname(emulator, cf_args, run_module, hostname):
    res = run(run_module, cf_args, custom_domain=hostname)
    res.failure_saying('custom_domain must be a hostname')
    assert emulator.requests == []


def test_alias_host_only_when_unambiguous(emulator, cf_args, run_module):
    run(run_module, cf_args, custom_domain=MEDIA)
    run(run_module, cf_args, custom_domain='files.example.test')
    res = run(run_module, cf_args)
    assert res.result['changed'] is False
    assert [d['domain'] for d in res.result['custom_domains']] == ['files.example.test', MEDIA]
    assert 'S3_ALIAS_HOST' not in res.result['s3_env']
