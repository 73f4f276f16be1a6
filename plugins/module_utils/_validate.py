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
import math
import re

from ansible_collections.selfhost.mastodon.plugins.module_utils._ingress_rules import (
    origin_service_problem,
)

try:
    # UTS 46 (what browsers use) instead of Python's own codec, which is IDNA 2003 and maps
    # some names differently (faß.de becomes fass.de there, xn--fa-hia.de in a browser).
    import idna as _idna
    HAS_IDNA = True
except ImportError:  # pragma: no cover - the controller's requirements hold idna
    _idna = None
    HAS_IDNA = False

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
    if name.startswith('*.'):
        rest, problem = to_a_labels(name[2:])
        return (None, problem) if problem else ('*.' + rest, None)
    if HAS_IDNA:
        try:
            return _idna.encode(name, uts46=True).decode('ascii'), None
        except (_idna.IDNAError, UnicodeError, ValueError):
            return None, ('holds a label that cannot be converted to A-labels (xn--...) under '
                          'UTS 46, the rule browsers use')
    # Without the idna package (documented in the README's requirements): Python's codec,
    # IDNA 2003, which differs from UTS 46 for a few characters (such as "ß").
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
        if not LABEL_RE.fullmatch(label):
            return ('has a label with characters other than a-z, 0-9 and "-", or a "-" at '
                    'the start or end of a label')
    if not TLD_RE.fullmatch(labels[-1]):
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
    return None if pattern.fullmatch(value) else if_mismatch


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
    if not S3_BUCKET_NAME_RE.fullmatch(name):
        return ('must be lowercase letters, digits, "." and "-", starting and ending with a '
                'letter or digit')
    if '..' in name:
        return 'must not hold two dots in a row'
    if IPV4_LIKE_RE.fullmatch(name):
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


# --- One way to check the classes of values every entry point takes ------------------------
# (issue 25: text, numbers, ports, paths, environment values, calendars). Every function below
# returns a problem text without the value (the caller may quote it when it is not a secret),
# or None. The roles reach them through the ``input_problems`` filter, the modules call them
# directly.

# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators. A trailing
# line break is a control character too: a YAML block scalar (``|``) and
# ``ansible-vault encrypt_string`` both add one, and ``$`` in ``re.match`` matches before it.
CONTROL_RE = re.compile(u'[\x00-\x1f\x7f-\x9f\u2028\u2029]')
INTEGER_RE = re.compile(r'[+-]?[0-9]+')
ENV_NAME_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')

# Folders a role must never own (create with its own mode, chmod, or delete): the system's
# own folders, and their direct files' parents. A home folder itself (/root, /home/<user>)
# is refused too; a folder inside one is fine.
SYSTEM_DIRS = frozenset([
    '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32',
    '/lost+found', '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/run/lock', '/run/user',
    '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/games', '/usr/include',
    '/usr/lib', '/usr/lib64', '/usr/libexec', '/usr/local', '/usr/local/bin', '/usr/local/etc',
    '/usr/local/games', '/usr/local/include', '/usr/local/lib', '/usr/local/sbin',
    '/usr/local/share', '/usr/local/src', '/usr/sbin', '/usr/share', '/usr/src', '/var',
    '/var/backups', '/var/cache', '/var/lib', '/var/local', '/var/lock', '/var/log',
    '/var/mail', '/var/opt', '/var/run', '/var/spool', '/var/tmp', '/var/www',
    '/etc/ssl', '/etc/ssl/certs', '/etc/ssl/private', '/etc/systemd', '/etc/systemd/system',
    '/etc/default', '/etc/ssh', '/etc/nginx', '/etc/letsencrypt', '/etc/letsencrypt/live',
    '/etc/apt', '/etc/cron.d', '/etc/sudoers.d', '/etc/security', '/etc/profile.d',
    '/lib/systemd', '/lib/systemd/system', '/usr/lib/systemd', '/usr/lib/systemd/system',
])
# Trees where nothing is a file or folder of a role's own.
VIRTUAL_TREES = ('/proc', '/sys', '/dev')
HOME_TREES = ('/home', '/root')


def text_problem(value, allow_empty=False, max_length=None, pattern=None, what=None):
    """Why ``value`` is not one line of text (no control character, no trailing line break),
    or None. ``pattern`` must match the WHOLE value (``re.fullmatch``); ``what`` says what it
    should look like."""
    if not isinstance(value, str):
        return 'must be text%s' % (' (%s)' % what if what else '')
    if value == '':
        return None if allow_empty else 'is empty%s' % ('; give %s' % what if what else '')
    if CONTROL_RE.search(value):
        return ('holds a line break or another control character (a YAML block scalar "|" and '
                'ansible-vault encrypt_string add a trailing line break: use "|-" or a quoted '
                'string)')
    if max_length is not None and len(value) > max_length:
        return 'is longer than %d characters' % max_length
    if pattern is not None and re.fullmatch(pattern, value) is None:
        return 'must be %s' % (what or 'of the form %s' % pattern)
    return None


def to_number(value, integer=True):
    """``(number, problem)``: the value as an int (or a finite float when not ``integer``).

    A yes/no value is refused (YAML reads ``yes`` as true, and true is 1 to Python), and so
    are NaN, the infinities and text that is not a plain number."""
    if isinstance(value, bool):
        return None, 'is a yes/no value, not a number (YAML reads yes, no, on and off as booleans)'
    if isinstance(value, str):
        text = value.strip()
        if text != value or CONTROL_RE.search(value):
            return None, 'must be a number without spaces or line breaks'
        if INTEGER_RE.fullmatch(text):
            value = int(text)
        elif integer:
            return None, 'must be a whole number'
        else:
            try:
                value = float(text)
            except ValueError:
                return None, 'must be a number'
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None, 'must be a finite number (not NaN or infinity)'
        if integer:
            if not value.is_integer():
                return None, 'must be a whole number'
            value = int(value)
    if not isinstance(value, (int, float)):
        return None, 'must be a number'
    return value, None


def finite_problem(value):
    """Why ``value`` holds a number that is not finite, or None.

    NaN and the infinities (YAML ``.nan``, ``.inf``, ``-.inf``, ``1.0e+999``) are refused
    anywhere in the value, lists and mappings included: ``int()`` of an infinity raises an
    error that names no variable (ansible-core's own int check and the ``int`` filter alike),
    and a NaN compares false with every bound, so a range check alone lets it through. Text
    is left to the other checks (``number_problem`` refuses ``inf`` and ``nan`` written as
    text, and Jinja's ``int`` reads them as 0 without an error)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else 'must be a finite number (not .inf, -.inf or .nan)'
    if isinstance(value, (list, tuple)):
        return next((problem for problem in map(finite_problem, value) if problem), None)
    if isinstance(value, dict):
        return next((problem for problem in map(finite_problem, value.values()) if problem), None)
    return None


def number_problem(value, minimum=None, maximum=None, integer=True):
    """Why ``value`` is not a finite number within [minimum, maximum], or None."""
    number, problem = to_number(value, integer=integer)
    if problem:
        return problem
    if minimum is not None and number < minimum:
        if maximum is not None:
            return 'must be between %s and %s' % (minimum, maximum)
        return 'must be %s or more' % minimum
    if maximum is not None and number > maximum:
        if minimum is not None:
            return 'must be between %s and %s' % (minimum, maximum)
        return 'must be %s or less' % maximum
    return None


def port_problem(value):
    """Why ``value`` is not a TCP port (1-65535, not a yes/no value), or None."""
    problem = number_problem(value, 1, 65535)
    return problem and '%s (a port between 1 and 65535)' % problem


def port_collisions(ports):
    """Problems for ports bound twice. ``ports``: (name, port) pairs, as many as the roles
    bind on one host; a name may hold a list of ports. Unparseable ports are skipped (their
    own check names them)."""
    seen = {}
    problems = []
    for name, value in ports:
        for port in (value if isinstance(value, (list, tuple)) else [value]):
            number, problem = to_number(port)
            if problem:
                continue
            if number in seen and seen[number] != name:
                problems.append('%s and %s both use port %d; each must have its own'
                                % (seen[number], name, number))
            elif number in seen:
                problems.append('%s holds port %d twice' % (name, number))
            else:
                seen[number] = name
    return problems


def _parts(path):
    return path.split('/')[1:]


def path_problem(value, kind='file'):
    """Why ``value`` is not a usable absolute path of the given kind, or None.

    ``file`` and ``dir``: absolute, one line, no ``.``/``..``/empty component, no spaces.
    ``owned_dir``: a folder the role creates with its own mode or deletes, so never a system
    folder (/etc, /var, /usr, /root, / ...), a home folder itself or a virtual tree.
    ``owned_file``: a file whose folder the role owns (creates with its own mode): its folder
    follows ``owned_dir``, so /etc/secrets.env is refused (the role would chmod /etc).
    ``controller_dir``: a folder on the controller (absolute and one line; spaces allowed).
    """
    problem = text_problem(value, what='an absolute path')
    if problem:
        return problem
    if not value.startswith('/'):
        return 'must be an absolute path (starting with /)'
    if kind == 'controller_dir':
        return None
    if value == '/':
        return 'must not be / itself'
    if any(c.isspace() for c in value):
        return 'must not hold spaces'
    if value.endswith('/') or '//' in value or any(part in ('', '.', '..') for part in _parts(value)):
        return 'must be a plain absolute path (no "..", ".", "//" or trailing "/")'
    if kind in ('owned_dir', 'owned_file'):
        folder = value if kind == 'owned_dir' else (value.rsplit('/', 1)[0] or '/')
        if folder in SYSTEM_DIRS:
            if kind == 'owned_dir':
                return ('is a system folder; give a folder of its own (such as %s/mastodon), '
                        'which the role creates with its own owner and mode' % folder.rstrip('/'))
            return ('is directly inside the system folder %s, whose owner and mode the role '
                    'would change; put it in a folder of its own (such as %s/mastodon/%s)'
                    % (folder, folder.rstrip('/'), value.rsplit('/', 1)[1]))
        if any(folder == tree or folder.startswith(tree + '/') for tree in VIRTUAL_TREES):
            return 'is in a virtual file system (/proc, /sys, /dev)'
        parts = _parts(folder)
        if parts[0] in ('home',) and len(parts) == 2:
            return ('is a home folder itself; give a folder inside it (such as %s/backups)'
                    % folder)
    return None


def env_problem(env, reserved=(), secret_names=None):
    """Problems of an environment mapping (name: value) written into a unit or a file: names
    must be shell/systemd variable names, values one line of text. ``reserved``: names the
    role refuses (it sets them itself, or they would put a secret in a readable file);
    ``secret_names``: a pattern of names refused because they look like secrets.
    Values are never quoted (they may be secrets)."""
    if env is None:
        return []
    if not isinstance(env, dict):
        return ['must be a mapping of NAME: value']
    problems = []
    for name in sorted(env, key=str):
        value = env[name]
        if not isinstance(name, str) or ENV_NAME_RE.fullmatch(name) is None:
            problems.append('has a name that is not an environment variable name (letters, '
                            'digits and "_", not starting with a digit)')
            continue
        if name in reserved:
            problems.append('sets %s, which the role must not write there (%s)'
                            % (name, reserved[name] if isinstance(reserved, dict) else 'reserved'))
            continue
        if secret_names and re.search(secret_names, name, re.IGNORECASE):
            problems.append('sets %s, which looks like a secret: the file it goes to is readable '
                            'by every local account; keep secrets out of it' % name)
            continue
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            problems.append('%s must be text or a number' % name)
            continue
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            problems.append('%s must be a finite number' % name)
            continue
        if CONTROL_RE.search(str(value)):
            problems.append('%s holds a line break or another control character (its value is '
                            'not shown)' % name)
    return problems


CALENDAR_RE = re.compile(r'[A-Za-z0-9*/:,.~+ _-]+')


def calendar_problem(value):
    """The controller-side part of a systemd calendar check: one line of the characters
    calendar expressions use. The host's ``systemd-analyze calendar`` has the last word (the
    roles run it read-only in their validate entry point)."""
    return text_problem(value, pattern=CALENDAR_RE,
                        what='a systemd calendar expression such as "*-*-* 03:30:00"')


PROTECT_HOME_TREES = ('/home', '/root', '/run/user')


def protect_home_problem(value):
    """Why a file a unit with ``ProtectHome=yes`` must read is hidden from it, or None."""
    if isinstance(value, str) and any(value == tree or value.startswith(tree + '/')
                                      for tree in PROTECT_HOME_TREES):
        return ('is under /home, /root or /run/user, which the service cannot see '
                '(its unit has ProtectHome=yes); put it under /etc or /var/lib')
    return None
