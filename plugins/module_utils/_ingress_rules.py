# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils file is PRIVATE to the selfhost.mastodon collection. It can change at
# any time; do not import it from other collections.

"""The origin services cloudflared accepts in an ingress rule, checked before any request.

cloudflared refuses a pushed (remote) configuration WHOLE when one rule's ``service`` is
wrong: it keeps its previous configuration (or answers 503 for every hostname after a fresh
start) while Cloudflare's API accepted the configuration. So the route module refuses, before
any call, every service cloudflared's ingress validation refuses, and nothing else.

The rules below were read in cloudflared's source (release 2026.8.2, ``ingress/ingress.go``,
``validateIngress``; its tests in ``ingress/ingress_test.go``), which is built with Go 1.26:

* ``unix:PATH`` and ``unix+tls:PATH``: any text after the prefix (no validation);
* ``http_status:CODE``: CODE is a Go integer (``strconv.Atoi``: an optional sign and ASCII
  digits) between 100 and 999;
* ``hello_world`` (and its spelling ``hello-world``), ``socks-proxy``, ``bastion``;
* anything else goes through Go's ``url.Parse``; it must parse, have a scheme AND a host name,
  and no path at all (even a lone trailing ``/``: "ingress rules don't support proxying to a
  different path on the origin service"). Any scheme is accepted: http, https, ws and wss are
  proxied as HTTP, every other scheme (tcp, ssh, rdp, smb, or any other) as TCP over WebSocket.

``go_url_parse`` follows Go 1.26's ``net/url.Parse`` far enough to give its verdict (accepted
or the error text), including the strict colons of Go 1.26 (``http://a:1:2`` is refused) and
its check that a bracketed host is an IPv6 address. One approximation: the IPv6 address inside
brackets is checked with Python's ``ipaddress`` instead of Go's ``netip.ParseAddr``.

Nothing here talks to the network; standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

SPECIAL_SERVICES = ('hello_world', 'hello-world', 'socks-proxy', 'bastion')
UNIX_PREFIXES = ('unix:', 'unix+tls:')
HTTP_STATUS_PREFIX = 'http_status:'
_GO_INT_RE = re.compile(r'[+-]?[0-9]+')

# The rule names a refusal carries (the "rule" of origin_service_refusal).
RULE_TYPE = 'service is text'
RULE_STATUS = 'http_status code'
RULE_URL_SYNTAX = 'URL syntax (Go net/url)'
RULE_SCHEME_HOST = 'scheme and hostname'
RULE_NO_PATH = 'no path on the origin'

# Spellings people try that cloudflared does not know, with what it knows instead.
HINTS = {
    'socks5': 'socks-proxy',
    'socks': 'socks-proxy',
    'hello world': 'hello_world',
    'helloworld': 'hello_world',
}


class GoURLError(ValueError):
    """What Go's url.Parse answers for a URL it refuses."""


def _ishex(c):
    return c in b'0123456789abcdefABCDEF'


def _unhex(c):
    return int(chr(c), 16)


_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_OK = frozenset(b"-._:~!$&'()*+,;=%@")


def _host_should_escape(c):
    """Go's shouldEscape(c, encodeHost) for an ASCII byte."""
    if 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5a or 0x61 <= c <= 0x7a:
        return False
    return c not in _HOST_OK


def _unescape(s, mode):
    """Go's unescape(s, mode) on bytes: the unescaped bytes or GoURLError.

    ``mode`` is 'host', 'zone' or anything else (path, fragment, userinfo: only the
    %-escapes are checked)."""
    i = 0
    out = bytearray()
    while i < len(s):
        c = s[i]
        if c == 0x25:  # '%'
            if i + 2 >= len(s) or not _ishex(s[i + 1]) or not _ishex(s[i + 2]):
                raise GoURLError('invalid URL escape %r' % s[i:i + 3].decode('utf-8', 'replace'))
            three = s[i:i + 3]
            value = _unhex(s[i + 1]) << 4 | _unhex(s[i + 2])
            if mode == 'host' and _unhex(s[i + 1]) < 8 and three != b'%25':
                raise GoURLError('invalid URL escape %r' % three.decode())
            if mode == 'zone' and three != b'%25' and value != 0x20 and (
                    value < 0x80 and _host_should_escape(value)):
                raise GoURLError('invalid URL escape %r' % three.decode())
            out.append(value)
            i += 3
            continue
        if mode in ('host', 'zone') and c < 0x80 and _host_should_escape(c):
            raise GoURLError('invalid character %r in host name' % chr(c))
        out.append(c)
        i += 1
    return bytes(out)


def _valid_optional_port(port):
    return port == b'' or (port[:1] == b':' and all(0x30 <= c <= 0x39 for c in port[1:]))


def _is_ipv6_literal(text):
    """Whether ``text`` (the unescaped inside of [...]) is an IPv6 address for netip.ParseAddr
    that is not an IPv4 address. Raises GoURLError with the reason otherwise."""
    try:
        text = text.decode('ascii')
    except UnicodeDecodeError:
        raise GoURLError('invalid host: ParseAddr: unexpected character')
    address, sep, zone = text.partition('%')
    if sep and not zone:
        raise GoURLError('invalid host: ParseAddr: zone must be a non-empty string')
    if ':' not in address:
        if '.' in address:
            raise GoURLError('invalid IP-literal')
        raise GoURLError('invalid host: ParseAddr(%r): unable to parse IP' % text)
    try:
        ipaddress.IPv6Address(address)
    except ValueError as exc:
        raise GoURLError('invalid host: ParseAddr(%r): %s' % (text, exc))
    return True


def _parse_host(host):
    """Go 1.26 parseHost: the unescaped host (with port) or GoURLError."""
    open_at = host.rfind(b'[')
    if open_at > 0:
        raise GoURLError('invalid IP-literal')
    if open_at == 0:
        close_at = host.rfind(b']')
        if close_at < 0:
            raise GoURLError("missing ']' in host")
        colon_port = host[close_at + 1:]
        if not _valid_optional_port(colon_port):
            raise GoURLError('invalid port %r after host' % colon_port.decode('utf-8', 'replace'))
        inside = host[1:close_at]
        zone_at = inside.find(b'%25')
        if zone_at >= 0:
            unescaped = _unescape(inside[:zone_at], 'host') + _unescape(inside[zone_at:], 'zone')
        else:
            unescaped = _unescape(inside, 'host')
        _is_ipv6_literal(unescaped)
        return b'[' + unescaped + b']' + colon_port
    colon_at = host.find(b':')
    if colon_at >= 0 and not _valid_optional_port(host[colon_at:]):
        # Go 1.26 (urlstrictcolons): the first colon starts the port.
        raise GoURLError('invalid port %r after host' % host[colon_at:].decode('utf-8', 'replace'))
    return _unescape(host, 'host')


def _parse_authority(authority):
    at = authority.rfind(b'@')
    host = _parse_host(authority[at + 1:] if at >= 0 else authority)
    if at >= 0:
        userinfo = authority[:at]
        for ch in userinfo.decode('utf-8', 'replace'):
            if not (ch.isascii() and ch.isalnum()) and ord(ch) not in _USERINFO_OK:
                raise GoURLError('net/url: invalid userinfo')
        for part in userinfo.split(b':', 1):
            _unescape(part, 'userinfo')
    return host


def go_url_parse(raw):
    """Parse ``raw`` as Go 1.26's url.Parse does.

    Returns a dict with ``scheme``, ``opaque``, ``host`` and ``path`` (text), or raises
    GoURLError with Go's reason."""
    data = raw.encode('utf-8', 'surrogateescape') if isinstance(raw, str) else bytes(raw)
    data, hash_sign, fragment = data.partition(b'#')
    if any(c < 0x20 or c == 0x7f for c in data):
        raise GoURLError('net/url: invalid control character in URL')
    result = {'scheme': '', 'opaque': '', 'host': '', 'path': ''}
    if data == b'*':
        result['path'] = '*'
        rest = None
    else:
        scheme, rest = b'', data
        for index, c in enumerate(data):
            if 0x41 <= c <= 0x5a or 0x61 <= c <= 0x7a:
                continue
            if 0x30 <= c <= 0x39 or c in b'+-.':
                if index == 0:
                    break
                continue
            if c == 0x3a:  # ':'
                if index == 0:
                    raise GoURLError('missing protocol scheme')
                scheme, rest = data[:index], data[index + 1:]
            break
        result['scheme'] = scheme.decode('ascii').lower()
        if rest.endswith(b'?') and rest.count(b'?') == 1:
            rest = rest[:-1]
        else:
            rest = rest.partition(b'?')[0]
        if not rest.startswith(b'/'):
            if result['scheme']:
                result['opaque'] = rest.decode('utf-8', 'replace')
                rest = None
            elif b':' in rest.partition(b'/')[0]:
                raise GoURLError('first path segment in URL cannot contain colon')
    if rest is not None:
        if (result['scheme'] or not rest.startswith(b'///')) and rest.startswith(b'//'):
            authority, slash, path = rest[2:].partition(b'/')
            result['host'] = _parse_authority(authority).decode('utf-8', 'replace')
            rest = slash + path
        result['path'] = _unescape(rest, 'path').decode('utf-8', 'replace')
    if hash_sign and fragment:
        _unescape(fragment, 'fragment')
    return result


def go_url_hostname(host):
    """Go's URL.Hostname(): the host without a valid port and without IPv6 brackets."""
    colon = host.rfind(':')
    if colon >= 0 and _valid_optional_port(host[colon:].encode('utf-8', 'replace')):
        host = host[:colon]
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    return host


def origin_service_refusal(service):
    """Why cloudflared refuses ``service`` as an ingress rule's origin: ``(rule, reason)``,
    or None when cloudflared accepts it."""
    if not isinstance(service, str):
        return RULE_TYPE, 'must be text'
    if service.startswith(UNIX_PREFIXES):
        return None
    if service.startswith(HTTP_STATUS_PREFIX):
        code = service[len(HTTP_STATUS_PREFIX):]
        if not _GO_INT_RE.fullmatch(code):
            return RULE_STATUS, ('invalid HTTP status code: %r is not a number (give one '
                                 'such as http_status:404)' % code)
        if not 100 <= int(code) <= 999:
            return RULE_STATUS, 'invalid HTTP status code: %d (100-999)' % int(code)
        return None
    if service in SPECIAL_SERVICES:
        return None
    try:
        parsed = go_url_parse(service)
    except GoURLError as exc:
        return RULE_URL_SYNTAX, 'is not a URL cloudflared can parse (%s)' % exc
    if not parsed['scheme'] or not go_url_hostname(parsed['host']):
        hint = HINTS.get(service.strip().lower())
        return RULE_SCHEME_HOST, (
            'is an invalid address: it needs a scheme and a hostname (https://localhost:443), '
            'or must be one of %s, unix:PATH, unix+tls:PATH, http_status:NNN%s'
            % (', '.join(SPECIAL_SERVICES),
               '; cloudflared spells this service "%s"' % hint if hint else ''))
    if parsed['path']:
        return RULE_NO_PATH, (
            'has a path (%r): cloudflared refuses any path on the origin service, even a '
            'lone trailing "/" (the path is the visitor\'s own); remove it' % parsed['path'])
    return None


def origin_service_problem(service):
    """The refusal as one sentence for an error message (the rule named), or None."""
    refusal = origin_service_refusal(service)
    if refusal is None:
        return None
    rule, reason = refusal
    return '%s; cloudflared refuses it (its ingress rule "%s"), and then its whole configuration' % (
        reason, rule)
