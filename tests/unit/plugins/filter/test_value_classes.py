# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based tests of the value classes every entry point checks (issue 25).

Generated values of each class (text, numbers, ports, port sets, paths, environments,
calendars, IDN names) go through the shared checks (module_utils/_validate.py), the
input_problems filter the roles use, and the Cloudflare modules' argument checks. The
invariant: a value is refused with the variable (or option) named, or it is accepted and then
works: text stays one line where it is written, a number converts, a path created under a
scratch root stays inside it and is never a system folder, an environment renders one line per
name, a calendar the controller-side check refuses is one systemd refuses too.

The oracles are written independently of the code under test (unicodedata, os.path, a short
list of system folders, systemd-analyze itself). Example counts are kept small: the whole file
runs in about 20 seconds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import shutil
import subprocess
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ansible_collections.selfhost.mastodon.plugins.filter.input_problems import input_problems
from ansible_collections.selfhost.mastodon.plugins.module_utils import _validate as v

FAST = settings(max_examples=150, deadline=None)
SLOW = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def is_line_breaking_or_control(char):
    return unicodedata.category(char) == 'Cc' or char in '\u2028\u2029'


# Text: any Unicode, with the characters that cause trouble made likely.
TRICKY = st.sampled_from(['\n', '\r', '\t', '\x00', '\x0b', '\x0c', '\x1c', '\x85', '\u2028',
                          '\u2029', '\x7f', ' ', '$', '"', "'", '\\', '%', 'é', '\u00df'])
TEXT = st.lists(st.one_of(st.characters(), TRICKY), max_size=20).map(''.join)


@FAST
@given(TEXT)
@example('admin\n')
@example('v4.7.6\r\n')
def test_text_is_refused_or_stays_one_line(value):
    problem = v.text_problem(value)
    if problem is None:
        assert value != ''
        assert not any(is_line_breaking_or_control(c) for c in value)
        # Working: written as a line of a unit or an env file, it reads back as one line.
        assert (value + '\n').splitlines() == [value]
    else:
        assert value == '' or any(is_line_breaking_or_control(c) for c in value)


@FAST
@given(TEXT)
@example('admin\n')
def test_a_pattern_matches_the_whole_value(value):
    problem = v.text_problem(value, pattern='[a-z_][a-z0-9_-]{0,31}', what='a user name')
    if problem is None:
        assert value[0] in 'abcdefghijklmnopqrstuvwxyz_' and len(value) <= 32
        assert set(value) <= set('abcdefghijklmnopqrstuvwxyz0123456789_-')


NUMBERS = st.one_of(st.integers(min_value=-10 ** 6, max_value=10 ** 6), st.booleans(), st.none(),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-100000, 100000).map(str),
                    st.integers(-100, 100000).map(lambda i: '%d\n' % i),
                    st.sampled_from(['yes', 'no', 'nan', 'inf', '-inf', '1e999', ' 22', '0x10', '']))


@FAST
@given(NUMBERS, st.integers(-10, 10), st.integers(0, 70000))
def test_numbers_are_finite_whole_and_in_range_or_refused(value, low, span):
    high = low + span
    problem = v.number_problem(value, low, high)
    if problem is None:
        assert not isinstance(value, bool) and value is not None
        number = int(value) if not isinstance(value, float) else value
        assert not isinstance(number, float) or (math.isfinite(number) and number.is_integer())
        assert low <= int(number) <= high
        if isinstance(value, str):
            assert value == value.strip()
    else:
        assert 'yes/no' in problem or 'number' in problem or 'between' in problem


NESTED = st.recursive(
    st.one_of(st.floats(), st.integers(), st.text(max_size=5), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8)


def _floats_in(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, (list, dict)):
        for element in (value.values() if isinstance(value, dict) else value):
            yield from _floats_in(element)


@FAST
@given(NESTED)
@example(float('inf'))
@example([4000, float('-inf')])
@example({'port': float('nan')})
@example('inf')
def test_finite_refuses_every_nan_or_infinity_anywhere_in_a_value(value):
    """The roles' first check (value_problem 'finite'): any float NaN or infinity in the value,
    at any depth, is refused; everything else (text included) is left to the other checks."""
    problem = v.finite_problem(value)
    has_non_finite = any(not math.isfinite(number) for number in _floats_in(value))
    assert (problem is not None) == has_non_finite, (value, problem)
    if problem:
        assert 'finite' in problem
        filtered = input_problems([{'name': 'my_number', 'value': value, 'kind': 'finite'}])
        assert len(filtered) == 1 and filtered[0].startswith('my_number ')


@FAST
@given(NUMBERS)
@example(True)
@example('22\n')
def test_ports_are_one_to_65535_and_never_yes(value):
    problem = v.port_problem(value)
    if problem is None:
        assert type(value) in (int, float, str)
        assert 1 <= int(float(value)) <= 65535
    else:
        assert 'port between 1 and 65535' in problem


PORT_SETS = st.lists(st.tuples(st.sampled_from(['base_os_ssh_port', 'mastodon_stack_web_port',
                                                'mastodon_stack_streaming_ports', 'nginx',
                                                'cloudflare_tunnel_metrics_port']),
                               st.one_of(st.integers(1, 30), st.lists(st.integers(1, 30), max_size=3))),
                     max_size=6)


@FAST
@given(PORT_SETS)
def test_every_port_is_bound_once_or_the_collision_is_named(pairs):
    problems = v.port_collisions(pairs)
    flat = [(name, port) for name, ports in pairs for port in (ports if isinstance(ports, list) else [ports])]
    ports = [port for _name, port in flat]
    if not problems:
        assert len(ports) == len(set(ports))
    else:
        assert len(ports) != len(set(ports))
        for problem in problems:
            assert any(name in problem for name, _port in flat)


# An independent list: folders no role may own (create with its own mode, or delete).
NEVER_OWNED = {'/', '/etc', '/var', '/usr', '/root', '/home', '/bin', '/sbin', '/lib', '/boot',
               '/dev', '/proc', '/sys', '/run', '/tmp', '/opt', '/srv', '/var/lib', '/var/log',
               '/var/backups', '/usr/local', '/usr/local/bin', '/usr/local/sbin', '/etc/ssl',
               '/etc/systemd', '/etc/systemd/system', '/var/tmp', '/var/cache', '/usr/share'}
PART = st.one_of(st.sampled_from(['etc', 'var', 'usr', 'root', 'home', 'lib', 'backups', 'log',
                                  'mastodon', 'admin', 'local', 'sbin', '..', '.', '', 'a b',
                                  'x\n', 'secrets.env', 'proc', 'tmp', 'systemd', 'system']),
                 st.text('abcdefgh-_.', min_size=1, max_size=6))
PATHS = st.one_of(st.lists(PART, max_size=4).map(lambda parts: '/' + '/'.join(parts)),
                  st.lists(PART, min_size=1, max_size=3).map('/'.join),
                  st.sampled_from(sorted(NEVER_OWNED)), TEXT)


def _creates_inside(root, path, folder):
    """Working: the path made under a scratch root stays inside it."""
    target = os.path.join(root, path.lstrip('/'))
    os.makedirs(target if folder else os.path.dirname(target), exist_ok=True)
    if not folder:
        with open(target, 'w') as handle:
            handle.write('x\n')
    return os.path.realpath(target).startswith(os.path.realpath(root) + os.sep)


@settings(max_examples=150, deadline=None)
@given(PATHS, st.sampled_from(['owned_dir', 'owned_file', 'dir', 'file']))
@example('/etc/mastodon-secrets.env', 'owned_file')
@example('/var', 'owned_dir')
@example('/home/admin', 'owned_dir')
@example('/var/backups/mastodon/', 'owned_dir')
def test_paths_are_plain_and_never_a_system_folder_the_role_owns(path, kind):
    problem = v.path_problem(path, kind)
    if problem is not None:
        return
    assert path.startswith('/') and os.path.normpath(path) == path
    assert not any(c.isspace() or is_line_breaking_or_control(c) for c in path)
    if kind in ('owned_dir', 'owned_file'):
        folder = path if kind == 'owned_dir' else os.path.dirname(path)
        assert folder not in NEVER_OWNED
        parts = folder.split('/')[1:]
        assert not (parts[0] == 'home' and len(parts) == 2)
        assert parts[0] not in ('proc', 'sys', 'dev')
    root = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'selfhost-paths-%d' % os.getpid())
    try:
        assert _creates_inside(root, path, folder=kind.endswith('dir'))
    finally:
        shutil.rmtree(root, ignore_errors=True)


ENV = st.dictionaries(st.one_of(st.from_regex(r'[A-Za-z_][A-Za-z0-9_]{0,8}', fullmatch=True),
                                st.sampled_from(['1X', 'A-B', 'A B', '', 'TUNNEL_TOKEN'])),
                      st.one_of(TEXT, st.integers(), st.booleans(), st.none(),
                                st.floats(allow_nan=True, allow_infinity=True)), max_size=4)


@FAST
@given(ENV)
@example({'SINGLE_USER_MODE': 'true\nEVIL=1'})
def test_environments_render_one_line_per_name_or_are_refused(env):
    problems = v.env_problem(env, reserved={'TUNNEL_TOKEN': 'the token file'})
    if not problems:
        lines = ''.join('Environment="%s=%s"\n' % (name, value) for name, value in env.items())
        assert len(lines.splitlines()) == len(env)
        assert 'TUNNEL_TOKEN' not in env
    for problem in problems:
        # The values are never quoted (they may be secrets).
        assert not any(isinstance(value, str) and len(value) > 3 and value in problem
                       for value in env.values())


HAS_SYSTEMD_ANALYZE = shutil.which('systemd-analyze') is not None
CALENDARS = st.one_of(
    st.builds('{0}-{1}-{2} {3}:{4}:{5}'.format,
              st.sampled_from(['*', '2026', '*/2']), st.sampled_from(['*', '01', '12', '13']),
              st.sampled_from(['*', '01', '31', '32']), st.sampled_from(['00', '03', '23', '24', '*']),
              st.sampled_from(['00', '30', '59', '60', '0/5']), st.sampled_from(['00', '59', '61'])),
    st.sampled_from(['daily', 'weekly', 'hourly', 'Sun *-*-* 05:10:00', '*:0/5', 'Mon..Fri 9:00',
                     'every day', 'noon', '*-*-* 03:30:00\n', 'Sun,Wed 04:00', '']),
    st.text('0123456789*:/-., ~SunMofd', max_size=14))


@pytest.mark.skipif(not HAS_SYSTEMD_ANALYZE, reason='systemd-analyze is not on this controller')
@settings(max_examples=60, deadline=None)
@given(CALENDARS)
def test_the_controller_side_calendar_check_never_refuses_what_systemd_accepts(value):
    """The roles run systemd-analyze on the host; the controller-side check before it must
    not refuse a calendar systemd accepts, unless it holds a line break."""
    problem = v.calendar_problem(value)
    proc = subprocess.run(['systemd-analyze', 'calendar', '--', value], capture_output=True,
                          check=False, timeout=10)
    if problem is not None and not any(is_line_breaking_or_control(c) for c in value):
        assert proc.returncode != 0, (value, problem)


LABEL_CHARS = st.sampled_from(list('abcxyz019-') + ['ä', 'ß', 'ς', 'é', 'ü', 'İ', '\u200d', 'Ⅸ', '١'])
NAMES = st.lists(st.lists(LABEL_CHARS, min_size=1, max_size=8).map(''.join), min_size=2, max_size=3).map('.'.join)


@FAST
@given(NAMES)
@example('faß.de')
@example('straße.example')
def test_idn_names_are_converted_with_uts46_or_refused(name):
    idna = pytest.importorskip('idna')
    ascii_name, problem = v.to_a_labels(name)
    try:
        expected = idna.encode(name, uts46=True).decode('ascii')
    except (idna.IDNAError, UnicodeError, ValueError):
        expected = None
    if all(ord(c) < 128 for c in name):
        assert ascii_name == name
        return
    assert ascii_name == expected
    assert (problem is None) == (expected is not None)


def test_sharp_s_is_kept_as_browsers_do():
    assert v.to_a_labels('faß.de') == ('xn--fa-hia.de', None)
    assert v.to_a_labels('*.faß.de') == ('*.xn--fa-hia.de', None)


CHECK_KINDS = st.sampled_from(['text', 'number', 'port', 'ports', 'owned_dir', 'owned_file', 'file',
                               'dir', 'calendar', 'env', 'domain_name', 'tunnel_name', 'account_id'])
VALUES = st.one_of(TEXT, NUMBERS, PATHS, st.lists(NUMBERS, max_size=3), ENV)


@FAST
@given(st.lists(st.tuples(CHECK_KINDS, VALUES, st.booleans()), max_size=5))
def test_the_filter_names_every_variable_and_never_quotes_a_secret(checks):
    named = [{'name': 'var_%d_%s' % (i, kind), 'value': value, 'kind': kind, 'secret': secret}
             for i, (kind, value, secret) in enumerate(checks)]
    problems = input_problems(named)
    for problem in problems:
        assert problem.startswith('var_')
        assert '\n' not in problem
    for check in named:
        if check['secret'] and isinstance(check['value'], str) and len(check['value']) >= 6:
            assert not any(check['value'] in problem for problem in input_problems([check]))
    # Every refused check is named once at least; a check that is named was refused.
    refused = {p.split(' ', 1)[0] for p in problems}
    for check in named:
        if check['kind'] == 'env':
            continue
        alone = input_problems([check])
        assert (check['name'] in refused) == bool(alone)


# The modules' argument checks: the retry settings (issue 25: endless retries, raw errors).
RETRY_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, min_value=None),
                         st.integers(-5, 100000).map(float))


@SLOW
@given(st.sampled_from(['timeout', 'retry_budget', 'retry_max_wait']), RETRY_VALUES)
@example('retry_budget', float('nan'))
@example('retry_max_wait', float('inf'))
@example('timeout', -1.0)
def test_cloudflare_retry_settings_are_refused_before_any_call_or_work(emulator, run_module,
                                                                       option, value):
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL
    from ansible_collections.selfhost.mastodon.plugins.modules import cloudflare_tunnel_info
    emulator.requests.clear()
    args = dict(api_url=emulator.api_url, account_id=ACCOUNT_ID, api_token=TOKEN_FULL)
    args[option] = value
    res = run_module(cloudflare_tunnel_info.main, args)
    finite = math.isfinite(value)
    in_range = finite and {'timeout': 0.001 <= value <= 3600, 'retry_budget': 0 <= value <= 86400,
                           'retry_max_wait': 0 <= value <= 3600}[option]
    if res.failed and not emulator.requests:
        assert option in res.result['msg'] and 'Nothing was sent to Cloudflare' in res.result['msg']
        assert not in_range, (option, value, res.result['msg'])
    else:
        assume(in_range)
        assert not res.failed, res.result
        assert emulator.requests
