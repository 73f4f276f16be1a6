# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils file is PRIVATE to the selfhost.mastodon collection. It can change at
# any time; do not import it from other collections.

"""Value checks shared by the collection's modules and plugins.

One definition of "a domain name" for the whole collection (the ``domain_name`` test plugin
and the Cloudflare modules use it), plus the checks the Cloudflare modules make before any
call: service URLs cloudflared accepts, tunnel names and account ids.

Every function returns a problem text (a sentence without the value when the value could be
a secret) or ``None`` when the value is fine. Nothing here talks to the network.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.selfhost.mastodon.plugins.module_utils._ingress_rules import (
    origin_service_problem,
)

LABEL_RE = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
TLD_RE = re.compile(r'^[a-z]([a-z0-9-]{0,61}[a-z0-9])$')
ACCOUNT_ID_RE = re.compile(r'^[0-9a-f]{32}$')
TUNNEL_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$')


def to_a_labels(name):
    """The A-label (punycode) form of a name that may hold Unicode labels.

    Returns ``(ascii_name, problem)``.
    """
    if not isinstance(name, str):
        return None, 'must be a string'
    try:
        name.encode('ascii')
        return name, None
    except UnicodeEncodeError:
        pass
    labels = []
    for label in name.split('.'):
        try:
            labels.append(label.encode('idna').decode('ascii'))
        except UnicodeError:
            return None, 'holds a label that cannot be converted to IDNA A-labels (xn--...)'
    return '.'.join(labels), None


def domain_name_problem(name, wildcard=False, idna=False):
    """Why ``name`` is not a fully qualified lower-case DNS host name (RFC 1123), or None.

    ``wildcard``: a leading ``*.`` label is allowed. ``idna``: Unicode labels are allowed and
    checked in their A-label form (the caller converts with :func:`to_a_labels`).
    """
    if not isinstance(name, str):
        return 'must be a string (a domain name such as social.example.com)'
    if name == '':
        return 'is empty; give a domain name such as social.example.com'
    if name != name.strip():
        return 'has spaces around it'
    if '://' in name or name.startswith('//'):
        return 'must be a host name without a scheme (no https://)'
    if '/' in name or '?' in name or '#' in name:
        return 'must be a host name without a path'
    if ':' in name:
        return 'must be a host name without a port'
    if any(c.isspace() for c in name):
        return 'must not contain spaces'
    if idna:
        name, problem = to_a_labels(name)
        if problem:
            return problem
    elif any(ord(c) > 127 for c in name):
        return 'holds non-ASCII characters; write it in its A-label form (xn--...)'
    if name.endswith('.'):
        return 'must not end with a dot'
    if name != name.lower():
        return 'must be lower case'
    labels = name.split('.')
    if labels[0] == '*':
        if not wildcard:
            return 'is a wildcard (*.), which is not allowed here'
        labels = labels[1:]
    if '*' in name[1:] or (labels and labels[0] == '*'):
        return 'has a "*" that is not a single leading wildcard label'
    if len(name) > 253:
        return 'is longer than 253 characters'
    if len(labels) < 2:
        return 'must have at least two labels (such as social.example.com)'
    for label in labels:
        if label == '':
            return 'has an empty label (two dots in a row)'
        if len(label) > 63:
            return 'has a label longer than 63 characters'
        if not LABEL_RE.match(label):
            return ('has a label with characters other than a-z, 0-9 and "-", or a "-" at '
                    'the start or end of a label')
    if not TLD_RE.match(labels[-1]):
        return 'must end with a top-level label of two or more characters that starts with a letter'
    return None


def is_domain_name(name, wildcard=False):
    return domain_name_problem(name, wildcard=wildcard) is None


def service_problem(service):
    """Why ``service`` is not an origin service cloudflared accepts, or None.

    One definition for the route module and the roles' checks: cloudflared's own ingress
    rules, in _ingress_rules (it refuses a whole configuration for one bad service)."""
    return origin_service_problem(service)


def _pattern_problem(value, pattern, if_empty, if_mismatch):
    """The one-pattern checks: ``if_empty`` for an empty or non-text value, ``if_mismatch``
    when ``pattern`` does not match, None when it does."""
    if not isinstance(value, str) or value == '':
        return if_empty
    return None if pattern.match(value) else if_mismatch


def tunnel_name_problem(name):
    return _pattern_problem(
        name, TUNNEL_NAME_RE, 'is empty',
        'must be 1-63 characters: letters, digits, ".", "_" or "-", starting with a letter or digit')


def account_id_problem(account_id):
    """Cloudflare account ids are 32 lower-case hexadecimal characters."""
    return _pattern_problem(
        account_id, ACCOUNT_ID_RE,
        'is empty; copy the account id from the Cloudflare dashboard (32 hex characters)',
        'is not a Cloudflare account id (32 lower-case hexadecimal characters, as in the '
        'dashboard URL dash.cloudflare.com/<account id>)')


S3_BUCKET_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')
IPV4_LIKE_RE = re.compile(r'^\d+\.\d+\.\d+\.\d+$')


def s3_bucket_name_problem(name):
    """Amazon S3's bucket naming rule, which S3-compatible stores follow (R2's is stricter).

    3 to 63 characters: lowercase letters, digits, "." and "-", starting and ending with a
    letter or digit, no two dots in a row, not shaped like an IPv4 address.
    """
    if not isinstance(name, str) or name == '':
        return 'is empty'
    if not 3 <= len(name) <= 63:
        return 'has %d characters; bucket names have 3 to 63' % len(name)
    if not S3_BUCKET_NAME_RE.match(name):
        return ('must be lowercase letters, digits, "." and "-", starting and ending with a '
                'letter or digit')
    if '..' in name:
        return 'must not hold two dots in a row'
    if IPV4_LIKE_RE.match(name):
        return 'must not look like an IP address'
    return None


def parse_network(value):
    """An ip_network for an address or CIDR network text (host bits cleared), or None."""
    if not isinstance(value, str) or value.strip() != value or not value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
