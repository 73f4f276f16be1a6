# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad inputs for every module: each is refused before any change, with a message that names
the option, and no secret in the output.

The Cloudflare modules run against the project's Cloudflare emulator (a test stand-in on
127.0.0.1): "before any change" means the emulator saw no request at all (local checks) or no
write. mastodon_secrets runs on a temporary folder: "before any change" means the file is
byte for byte the same.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from bad_inputs.recorder import record

from ansible_collections.selfhost.mastodon.plugins.modules import (
    cloudflare_tunnel,
    cloudflare_tunnel_info,
    cloudflare_tunnel_route,
    mastodon_secrets,
)

HOST = 'social.example.test'

# (module, option named in the message, arguments over the valid ones)
CLOUDFLARE_CASES = {
    'route hostname empty': (cloudflare_tunnel_route, 'hostname', dict(hostname='', dns=False)),
    'route hostname with scheme': (cloudflare_tunnel_route, 'hostname', dict(hostname='https://' + HOST)),
    'route hostname with path': (cloudflare_tunnel_route, 'hostname', dict(hostname=HOST + '/x')),
    'route hostname with port': (cloudflare_tunnel_route, 'hostname', dict(hostname=HOST + ':443')),
    'route hostname wildcard not asked': (cloudflare_tunnel_route, 'hostname', dict(hostname='*.example.test')),
    'route hostname single label': (cloudflare_tunnel_route, 'hostname', dict(hostname='localhost')),
    'route hostname empty label': (cloudflare_tunnel_route, 'hostname', dict(hostname='a..example.test')),
    'route hostname label too long': (cloudflare_tunnel_route, 'hostname', dict(hostname='x' * 64 + '.example.test')),
    'route hostname too long': (cloudflare_tunnel_route, 'hostname',
                                dict(hostname='.'.join(['a' * 60] * 5) + '.test')),
    'route hostname with space': (cloudflare_tunnel_route, 'hostname', dict(hostname='soc ial.example.test')),
    'route hostname leading hyphen': (cloudflare_tunnel_route, 'hostname', dict(hostname='-x.example.test')),
    'route hostname underscore': (cloudflare_tunnel_route, 'hostname', dict(hostname='a_b.example.test')),
    'route hostname bad idna': (cloudflare_tunnel_route, 'hostname', dict(hostname='\u2603\u2603..example.test')),
    # the two services the real cloudflared 2026.8.2 refused (issue 26); ftp:// is accepted
    'route service trailing slash': (cloudflare_tunnel_route, 'service', dict(service='https://localhost:443/')),
    'route service socks5': (cloudflare_tunnel_route, 'service', dict(service='socks5')),
    'route service trailing word': (cloudflare_tunnel_route, 'service', dict(service='https://localhost:443 x')),
    'route service empty': (cloudflare_tunnel_route, 'service', dict(service='')),
    'route service no scheme': (cloudflare_tunnel_route, 'service', dict(service='localhost:443')),
    'route service bad status': (cloudflare_tunnel_route, 'service', dict(service='http_status:99')),
    'route service with path': (cloudflare_tunnel_route, 'service', dict(service='https://localhost/m')),
    'route tunnel bad name': (cloudflare_tunnel_route, 'tunnel', dict(tunnel='bad name!')),
    'route tunnel empty': (cloudflare_tunnel_route, 'tunnel', dict(tunnel='')),
    'route account id malformed': (cloudflare_tunnel_route, 'account_id', dict(account_id='not-an-account')),
    'route account id upper case': (cloudflare_tunnel_route, 'account_id',
                                    dict(account_id='0123456789ABCDEF0123456789ABCDEF')),
    'route account id path': (cloudflare_tunnel_route, 'account_id',
                              dict(account_id='../zones/0123456789abcdef0123456789')),
    'route zone with scheme': (cloudflare_tunnel_route, 'zone', dict(zone='https://example.test')),
    'route ca_pool relative': (cloudflare_tunnel_route, 'ca_pool', dict(ca_pool='ca.pem', no_tls_verify=False)),
    'route connect_timeout negative': (cloudflare_tunnel_route, 'connect_timeout', dict(connect_timeout=-1)),
    'route api_url not http': (cloudflare_tunnel_route, 'api_url', dict(api_url='ftp://api.example')),
    'route api_token with space': (cloudflare_tunnel_route, 'api_token', dict(api_token='abc def')),
    'tunnel name empty': (cloudflare_tunnel, 'name', dict(name='')),
    'tunnel name too long': (cloudflare_tunnel, 'name', dict(name='x' * 64)),
    'tunnel name slash': (cloudflare_tunnel, 'name', dict(name='a/b')),
    'tunnel name leading dash': (cloudflare_tunnel, 'name', dict(name='-mastodon')),
    'tunnel account id malformed': (cloudflare_tunnel, 'account_id', dict(account_id='12345')),
    'tunnel api_token empty': (cloudflare_tunnel, 'api_token', dict(api_token='')),
    'info account id malformed': (cloudflare_tunnel_info, 'account_id', dict(account_id='xyz')),
    # Issue 25: a trailing line break (re.match with $ let it through) and retry settings.
    'tunnel name trailing newline': (cloudflare_tunnel, 'name', dict(name='mastodon\n')),
    'tunnel account id trailing newline': (cloudflare_tunnel, 'account_id',
                                           dict(account_id='0123456789abcdef0123456789abcdef\n')),
    'route hostname trailing newline': (cloudflare_tunnel_route, 'hostname', dict(hostname=HOST + '\n')),
    'route api_url trailing newline': (cloudflare_tunnel_route, 'api_url',
                                       dict(api_url='https://api.example\n')),
    'info retry_budget nan': (cloudflare_tunnel_info, 'retry_budget', dict(retry_budget=float('nan'))),
    'info retry_budget infinite': (cloudflare_tunnel_info, 'retry_budget', dict(retry_budget=float('inf'))),
    'info retry_max_wait negative': (cloudflare_tunnel_info, 'retry_max_wait', dict(retry_max_wait=-1.0)),
    'info timeout zero': (cloudflare_tunnel_info, 'timeout', dict(timeout=0.0)),
    'info timeout negative': (cloudflare_tunnel_info, 'timeout', dict(timeout=-3.0)),
    'info timeout nan': (cloudflare_tunnel_info, 'timeout', dict(timeout=float('nan'))),
}


def _base(module, emulator):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    args = dict(api_url=emulator.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL)
    if module is cloudflare_tunnel_route:
        args.update(tunnel='mastodon', hostname=HOST)
    elif module is cloudflare_tunnel:
        args.update(name='mastodon')
    return args


@pytest.mark.parametrize('case', sorted(CLOUDFLARE_CASES))
def test_cloudflare_bad_input_is_refused_before_any_call(emulator, run_module, case):
    from cloudflare_emulator import TOKEN_FULL
    module, option, override = CLOUDFLARE_CASES[case]
    args = _base(module, emulator)
    args.update(override)
    before = json.dumps(emulator.store.snapshot() if hasattr(emulator.store, 'snapshot') else None)
    res = run_module(module.main, args)
    output = json.dumps(res.result)
    refused = res.failed
    sent = len(emulator.requests)
    names = option in res.result.get('msg', '')
    secret = TOKEN_FULL in output or (override.get('api_token') or '\0') in output
    record('modules', case, refused, sent > 0, names, secret)
    assert refused, res.result
    assert sent == 0, emulator.requests  # refused before any call, so before any change
    assert names, res.result['msg']
    assert 'Nothing was sent to Cloudflare' in res.result['msg'] or option == 'api_token'
    assert not secret
    assert before == json.dumps(emulator.store.snapshot() if hasattr(emulator.store, 'snapshot') else None)


def test_wildcard_hostname_is_accepted_when_asked(emulator, run_module):
    """The one wildcard case that is right to accept: the user asked for it."""
    args = _base(cloudflare_tunnel_route, emulator)
    run_module(cloudflare_tunnel.main, dict(_base(cloudflare_tunnel, emulator)))
    args.update(hostname='*.example.test', wildcard=True, dns=False)
    res = run_module(cloudflare_tunnel_route.main, args)
    assert not res.failed, res.result
    assert res.result['rule']['hostname'] == '*.example.test'


def test_idna_hostname_is_sent_as_a_labels(emulator, run_module):
    run_module(cloudflare_tunnel.main, dict(_base(cloudflare_tunnel, emulator)))
    args = _base(cloudflare_tunnel_route, emulator)
    args.update(hostname='b\u00fccher.example.test', dns=False)
    res = run_module(cloudflare_tunnel_route.main, args)
    assert not res.failed, res.result
    assert res.result['rule']['hostname'] == 'xn--bcher-kva.example.test'


def test_invalid_request_is_not_explained_as_a_permission(emulator, run_module):
    """Code 1001 (invalid request) or 7003 (malformed identifier) from Cloudflare is a
    malformed request, not a missing token permission: no token verification follows."""
    from ansible_collections.selfhost.mastodon.plugins.module_utils import _cloudflare
    exc = _cloudflare.CloudflareError('x', status=400, errors=[{'code': 1001, 'message': 'Invalid request'}])
    assert exc.is_invalid_request and not exc.is_auth_error
    exc = _cloudflare.CloudflareError('x', status=404, errors=[{'code': 7003, 'message': 'Could not route'}])
    assert exc.is_invalid_request and not exc.is_auth_error
    run_module(cloudflare_tunnel.main, dict(_base(cloudflare_tunnel, emulator)))
    emulator.clear_log()
    # The module's own checks keep malformed values from Cloudflare, so the emulator is asked
    # to refuse the PUT with 1001 as Cloudflare does for a malformed body.
    args = _base(cloudflare_tunnel_route, emulator)
    args.update(dns=False)
    emulator.set_fault(status=400, code=1001, message='Invalid request: malformed', method='PUT')
    res = run_module(cloudflare_tunnel_route.main, args)
    res.failure_saying('malformed (not a token permission problem)')
    assert 'lacks a permission' not in res.result['msg']
    assert not any(r['path'].endswith('/tokens/verify') for r in emulator.requests)


def test_emulator_answers_a_malformed_account_id_like_cloudflare(emulator):
    import requests
    from cloudflare_emulator import TOKEN_FULL
    answer = requests.get(emulator.api_url + '/accounts/not-an-id/cfd_tunnel',
                          headers={'Authorization': 'Bearer ' + TOKEN_FULL}, timeout=10)
    assert answer.status_code == 404
    assert answer.json()['errors'][0]['code'] == 7003


# ------------------------------------------------------------------ mastodon_secrets

def _secrets_file(tmp_path, run_module):
    path = tmp_path / 'secrets.env'
    res = run_module(mastodon_secrets.main, dict(path=str(path)))
    assert not res.failed, res.result
    return path, mastodon_secrets.parse_secrets_file(path.read_text())


def _damage(kind, text, values):
    if kind == 'truncated':
        return text[:-30]
    if kind == 'garbled line':
        return text.replace('OTP_SECRET=', 'OTP_SECRET ', 1)
    if kind == 'empty file':
        return ''
    if kind == 'empty value':
        return text.replace('=' + values['OTP_SECRET'], '=')
    if kind == 'short hex':
        return text.replace(values['SECRET_KEY_BASE'], values['SECRET_KEY_BASE'][:10])
    if kind == 'bad vapid':
        return text.replace(values['VAPID_PRIVATE_KEY'], 'AAAA')
    if kind == 'duplicate name':
        return text + 'OTP_SECRET=%s\n' % ('0' * 128)
    if kind == 'binary':
        return None
    raise AssertionError(kind)


SECRETS_DAMAGE = ['truncated', 'garbled line', 'empty file', 'empty value', 'short hex',
                  'bad vapid', 'duplicate name', 'binary']


@pytest.mark.parametrize('kind', SECRETS_DAMAGE)
def test_secrets_damaged_file_is_refused(tmp_path, run_module, kind):
    path, values = _secrets_file(tmp_path, run_module)
    content = _damage(kind, path.read_text(), values)
    if content is None:
        path.write_bytes(b'\xff\x00garbage')
    else:
        path.write_text(content)
    before = path.read_bytes()
    res = run_module(mastodon_secrets.main, dict(path=str(path)))
    output = json.dumps(res.result)
    secret = any(v in output or v[:10] in output for v in values.values())
    names = 'secrets file' in res.result.get('msg', '') and str(path) in res.result.get('msg', '')
    record('modules', 'secrets ' + kind, res.failed, path.read_bytes() != before, names, secret)
    assert res.failed and names and not secret
    assert path.read_bytes() == before


@pytest.mark.parametrize('kind', ['missing', 'different'])
def test_secrets_disagreeing_with_env_production_is_refused(tmp_path, run_module, kind):
    path, values = _secrets_file(tmp_path, run_module)
    env = tmp_path / '.env.production'
    env_values = dict(values)
    if kind == 'different':
        env_values['SECRET_KEY_BASE'] = 'ef' * 64
    env.write_text(''.join('%s=%s\n' % item for item in sorted(env_values.items())))
    if kind == 'missing':
        path.write_text(''.join('%s=%s\n' % item for item in sorted(values.items()) if item[0] != 'OTP_SECRET'))
    before = path.read_bytes()
    res = run_module(mastodon_secrets.main, dict(path=str(path), env_file=str(env)))
    output = json.dumps(res.result)
    secret = any(v in output for v in env_values.values())
    names = ('OTP_SECRET' if kind == 'missing' else 'SECRET_KEY_BASE') in res.result.get('msg', '')
    record('modules', 'secrets env ' + kind, res.failed, path.read_bytes() != before, names, secret)
    assert res.failed and names and not secret
    assert path.read_bytes() == before


@pytest.mark.parametrize('case,args,option', [
    ('unknown supplied name', dict(supplied={'NOPE': 'x'}), 'NOPE'),
    ('supplied value with quote', dict(supplied={'OTP_SECRET': 'a"b; rm -rf /'}), 'OTP_SECRET'),
    ('world readable mode', dict(mode='0644'), 'mode'),
    ('mode not octal', dict(mode='rw-r--r--'), 'mode'),
])
def test_secrets_bad_options_are_refused(tmp_path, run_module, case, args, option):
    path = tmp_path / 'secrets.env'
    res = run_module(mastodon_secrets.main, dict(path=str(path), **args))
    output = json.dumps(res.result)
    secret = 'rm -rf' in output
    names = option in res.result.get('msg', '')
    record('modules', 'secrets ' + case, res.failed, path.exists(), names, secret)
    assert res.failed and names and not secret
    assert not path.exists()
