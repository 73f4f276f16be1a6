# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils file is PRIVATE to the selfhost.mastodon collection. It can change at
# any time; do not import it from other collections.

"""cloudflared's command-line flags, where it takes them, and the check of
``cloudflare_tunnel_extra_args``.

cloudflared prints "Incorrect Usage" and its help and exits 0 on an unknown or misplaced flag
(or a flag value it cannot parse), so systemd's ``Restart=on-failure`` never fires and the
connector simply is not there. The role therefore refuses, before anything changes, a command
line cloudflared would refuse.

The unit runs ``cloudflared --no-autoupdate tunnel --metrics ADDR <extra args> run
--token-file FILE``: the extra arguments are ``tunnel`` flags. The tables below were read in
cloudflared's source (release 2026.8.2: ``cmd/cloudflared/tunnel/cmd.go`` tunnelFlags,
``subcommands.go`` buildRunCommand, ``cliutil/logger.go``, ``proxydns/cmd.go``), with each
flag's aliases and the kind of value urfave/cli parses (a value that does not parse is
"Incorrect Usage" too). The connector stand-in (tests/cloudflare_emulator/cloudflared_standin.py)
carries the same tables; a unit test keeps them equal.

Standard library only; nothing here runs cloudflared.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# The oldest cloudflared the role runs: --token-file (the unit's way to read the token
# without putting it on a command line) exists since 2025.4.0.
MIN_VERSION = '2025.4.0'


def _table(kinds):
    table = {}
    for kind, names in kinds.items():
        for name in names.split():
            table[name] = kind
    return table


TUNNEL_FLAGS = _table({
    'bool': (
        'bastion f h hello-world help http2-origin is-autoupdated management-diagnostics '
        'no-autoupdate no-chunked-encoding no-prechecks no-tls-verify overwrite-dns '
        'post-quantum pq proxy-dns proxy-no-happy-eyeballs quic-disable-pmtu-discovery socks5 '
        'ssh-server stdin-control ui use-reconnect-token'
    ),
    'int': (
        'compression-quality ha-connections heartbeat-count max-edge-addr-retries '
        'max-fetch-size proxy-dns-max-upstream-conns proxy-dns-port '
        'proxy-keepalive-connections proxy-port quic-connection-level-flow-control-limit '
        'quic-stream-level-flow-control-limit retries'
    ),
    'duration': (
        'autoupdate-freq dial-edge-timeout grace-period heartbeat-interval '
        'metrics-update-freq proxy-connect-timeout proxy-connection-timeout '
        'proxy-expect-continue-timeout proxy-keepalive-timeout proxy-tcp-keepalive '
        'proxy-tls-timeout rpc-timeout ssh-idle-timeout ssh-max-timeout write-stream-timeout'
    ),
    'string': (
        'access-key-id api-ca-key api-email api-key api-url bucket-name cacert config '
        'cred-file credentials-file edge edge-bind-address edge-ip-version host-key-path '
        'hostname http-host-header id label lb-pool local-ssh-port log-directory logfile '
        'loglevel management-hostname metrics n name origin-ca-pool origin-server-name '
        'origincert output p pidfile proto-loglevel protocol proxy-address proxy-dns-address '
        'proxy-dns-bootstrap proxy-dns-upstream quick-service region region-name s3-url-host '
        'secret-id service-op-ip session-token tag trace-output transport-loglevel '
        'unix-socket url'
    ),
})

RUN_FLAGS = _table({
    'bool': (
        'bastion h hello-world help http2-origin no-chunked-encoding no-tls-verify '
        'post-quantum pq proxy-no-happy-eyeballs socks5 ssh-server'
    ),
    'int': (
        'proxy-keepalive-connections proxy-port'
    ),
    'uint': (
        'max-active-flows'
    ),
    'duration': (
        'proxy-connect-timeout proxy-connection-timeout proxy-expect-continue-timeout '
        'proxy-keepalive-timeout proxy-tcp-keepalive proxy-tls-timeout ssh-idle-timeout '
        'ssh-max-timeout'
    ),
    'string': (
        'F access-key-id bucket-name cred-file credentials-contents credentials-file '
        'dns-resolver-addrs features host-key-path http-host-header icmpv4-src icmpv6-src '
        'local-ssh-port management-hostname origin-ca-pool origin-server-name p protocol '
        'proxy-address region-name s3-url-host secret-id service-op-ip session-token token '
        'token-file unix-socket url'
    ),
})

# Flags the role sets itself on the unit's command line: an extra one would fight it.
ROLE_OWNED = {
    'metrics': 'cloudflare_tunnel_metrics_port (the role waits for /ready there)',
    'no-autoupdate': 'the role (updates come from the package manager)',
    'token': 'the role (the token stays in cloudflare_tunnel_token_file, off the command line)',
    'token-file': 'the role (cloudflare_tunnel_token_file)',
}

_BOOL_VALUES = ('1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False')
_INT_RE = re.compile(r'[+-]?(?:0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|0[bB][01]+(?:_[01]+)*'
                     r'|0[oO]?[0-7]*(?:_[0-7]+)*|[1-9][0-9]*(?:_[0-9]+)*)')
_DURATION_RE = re.compile(u'[+-]?(?:0|(?:(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)'
                          u'(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)')
# systemd would split, expand or unquote these in ExecStart.
_UNIT_UNSAFE_RE = re.compile(r'[\s"\'\\%$;]')


def value_problem(kind, value):
    """Why urfave/cli cannot parse ``value`` for a flag of ``kind``, or None."""
    if kind == 'bool' and value not in _BOOL_VALUES:
        return 'takes true or false'
    if kind in ('int', 'uint') and (not _INT_RE.fullmatch(value)
                                    or kind == 'uint' and value.startswith('-')):
        return 'takes a whole number'
    if kind == 'duration' and not _DURATION_RE.fullmatch(value):
        return 'takes a Go duration such as 30s, 2m or 1h30m'
    return None


def tunnel_args_problem(args, table=None):
    """Why ``args`` cannot go between ``tunnel`` and ``run`` on cloudflared's command line
    (the place of cloudflare_tunnel_extra_args), or None."""
    table = TUNNEL_FLAGS if table is None else table
    if not isinstance(args, (list, tuple)):
        return 'must be a list of strings'
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not isinstance(arg, str) or arg == '':
            return 'item %d must be a non-empty string' % index
        if _UNIT_UNSAFE_RE.search(arg):
            return ('item %d (%r) holds a space, a quote, a backslash, "%%", "$" or ";", which '
                    'systemd would split or expand; give the flag and its value as two items'
                    % (index, arg))
        if not arg.startswith('-') or arg in ('-', '--'):
            return ('item %d (%r) is not a flag: cloudflared would take it for a command or an '
                    'argument ("run" and the token are added by the role)' % (index, arg))
        name, has_value, value = arg.lstrip('-').partition('=')
        if arg.startswith('---') or name == '':
            return 'item %d (%r) is not a flag cloudflared can parse' % (index, arg)
        kind = table.get(name)
        if kind is None:
            return ('item %d (%r): cloudflared has no flag "--%s" before "run" (it would print '
                    '"Incorrect Usage" and exit 0, and no connector would run)' % (index, arg, name))
        if name in ROLE_OWNED:
            return 'item %d (%r) is set by %s' % (index, arg, ROLE_OWNED[name])
        if kind == 'bool':
            if has_value and value_problem(kind, value):
                return 'item %d (%r): --%s %s' % (index, arg, name, value_problem(kind, value))
            continue
        if not has_value:
            if index >= len(args):
                return 'item %d (%r): --%s needs a value (the next item)' % (index, arg, name)
            value = args[index]
            index += 1
            if not isinstance(value, str) or _UNIT_UNSAFE_RE.search(value):
                return ('item %d (%r) holds a space, a quote, a backslash, "%%", "$" or ";", '
                        'which systemd would split or expand' % (index, value))
        problem = value_problem(kind, value)
        if problem:
            return 'item %d: --%s %s (not %r)' % (index, name, problem, value)
    return None


def version_problem(text):
    """Why the output of ``cloudflared --version`` names a release older than MIN_VERSION
    (or none at all), or None."""
    match = re.search(r'version (\d+)\.(\d+)\.(\d+)', text or '')
    if not match:
        return 'does not say which cloudflared release it is (%r)' % (text or '')[:80]
    found = tuple(int(part) for part in match.groups())
    if found < tuple(int(part) for part in MIN_VERSION.split('.')):
        return ('is cloudflared %s; the role needs %s or newer (--token-file)'
                % ('.'.join(match.groups()), MIN_VERSION))
    return None
