# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ssh_public_keys
short_description: Read and check SSH public keys given as key lines or key files
version_added: 0.1.0
description:
  - Takes a list whose entries are either public key lines (C(ssh-ed25519 AAAA... comment))
    or paths of public key files on the controller (C(~/.ssh/id_ed25519.pub)), reads the
    files and checks every key. It counts keys, not entries.
  - A key is usable when its type is one sshd accepts and its base64 part decodes to a
    well-formed key of that type.
  - Problems never quote the content of an entry or file. A private key (given by mistake in
    place of the C(.pub) file, or pasted as an entry) is named as such, and none of it is
    shown. An empty file or a file with only comments is a problem (it holds no key).
options:
  _input:
    description: The entries.
    type: list
    elements: raw
    required: true
  name:
    description: The variable name used in the problem texts.
    type: str
    default: keys
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: Read the keys
  ansible.builtin.set_fact:
    keys: "{{ base_os_ssh_authorized_keys | selfhost.mastodon.ssh_public_keys(name='base_os_ssh_authorized_keys') }}"
"""

RETURN = r"""
_value:
  description: What was found.
  type: dict
  contains:
    keys:
      description: The usable key lines, normalised to C(type base64 [comment]).
      type: list
      elements: str
    blobs:
      description: The same keys as C(type base64), without comments, for comparisons.
      type: list
      elements: str
    problems:
      description: One sentence per unusable entry or line; never any of its content.
      type: list
      elements: str
"""

import base64
import binascii
import os
import re
import struct

KEY_TYPES = (
    'ssh-ed25519',
    'ssh-rsa',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'sk-ssh-ed25519@openssh.com',
    'sk-ecdsa-sha2-nistp256@openssh.com',
)
KEY_LINE_START = re.compile(r'^(ssh-|ecdsa-|sk-)\S*\s')
PRIVATE_MARKERS = (b'PRIVATE KEY', b'PuTTY-User-Key-File', b'SSH2 ENCRYPTED PRIVATE KEY')
EC_POINT_BYTES = {'nistp256': 65, 'nistp384': 97, 'nistp521': 133}
MAX_FILE_BYTES = 1024 * 1024


def _wire_strings(blob):
    """Split an SSH wire-format blob into its length-prefixed strings, or None."""
    out, pos = [], 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            return None
        (size,) = struct.unpack('>I', blob[pos:pos + 4])
        pos += 4
        if pos + size > len(blob):
            return None
        out.append(blob[pos:pos + size])
        pos += size
    return out


def key_problem(line):
    """Why a single key line is not a usable public key, or None. Never quotes the line."""
    fields = line.split(None, 2)
    if len(fields) < 2:
        return 'has no base64 part after the key type'
    key_type, b64 = fields[0], fields[1]
    if key_type not in KEY_TYPES:
        return 'has a key type sshd does not accept (use one of %s)' % ', '.join(KEY_TYPES)
    if not re.match(r'^AAAA[A-Za-z0-9+/]+={0,2}$', b64) or len(b64) % 4:
        return 'has a base64 part that is not valid base64'
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return 'has a base64 part that is not valid base64'
    parts = _wire_strings(blob)
    if not parts or parts[0] != key_type.encode('ascii'):
        return 'has a base64 part that is not a %s key' % key_type
    ok = False
    if key_type == 'ssh-ed25519':
        ok = len(parts) == 2 and len(parts[1]) == 32
    elif key_type == 'sk-ssh-ed25519@openssh.com':
        ok = len(parts) == 3 and len(parts[1]) == 32
    elif key_type == 'ssh-rsa':
        # exponent, modulus; OpenSSH refuses moduli under 1024 bits.
        ok = len(parts) == 3 and len(parts[2].lstrip(b'\0')) * 8 >= 1024
    elif key_type.startswith('ecdsa-sha2-'):
        curve = key_type[len('ecdsa-sha2-'):]
        ok = (len(parts) == 3 and parts[1] == curve.encode('ascii')
              and len(parts[2]) == EC_POINT_BYTES[curve] and parts[2][:1] == b'\x04')
    elif key_type == 'sk-ecdsa-sha2-nistp256@openssh.com':
        ok = (len(parts) == 4 and parts[1] == b'nistp256'
              and len(parts[2]) == 65 and parts[2][:1] == b'\x04')
    if not ok:
        return 'has a base64 part that is not a well-formed %s key' % key_type
    return None


def _safe_path(entry):
    """The entry as it may be shown: only when it looks like a file path."""
    if (len(entry) <= 200 and '\n' not in entry
            and (entry.startswith(('/', '~', './', '../')) or entry.endswith('.pub'))):
        return '"%s"' % entry
    return '(value not shown)'


def _parse_lines(text, where, out):
    found = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        problem = key_problem(line)
        if problem:
            out['problems'].append('Not a valid public key: %s line %d %s.' % (where, number, problem))
            continue
        fields = line.split(None, 2)
        out['keys'].append(' '.join(fields))
        out['blobs'].append(' '.join(fields[:2]))
        found += 1
    return found


def ssh_public_keys(entries, name='keys'):
    out = {'keys': [], 'blobs': [], 'problems': []}
    if isinstance(entries, (str, bytes)) or not hasattr(entries, '__iter__'):
        out['problems'].append('%s must be a list of key lines or key files.' % name)
        return out
    for index, entry in enumerate(entries):
        label = '%s[%d]' % (name, index)
        if not isinstance(entry, str):
            out['problems'].append('%s is not a string.' % label)
            continue
        text = entry.strip()
        if any(marker.decode('ascii') in text for marker in PRIVATE_MARKERS):
            out['problems'].append(
                '%s is a PRIVATE key (its content is not shown). Give the public key: the line '
                'from the .pub file, or the path of the .pub file. Treat that private key as '
                'exposed if it was written somewhere others can read.' % label)
            continue
        if KEY_LINE_START.match(text + ' ') and '\n' not in text:
            _parse_lines(text, label, out)
            continue
        if not text:
            out['problems'].append('%s is empty.' % label)
            continue
        shown = _safe_path(text)
        path = os.path.expanduser(text) if '\n' not in text else None
        if not path or not os.path.isfile(path) or not os.access(path, os.R_OK):
            out['problems'].append(
                '%s %s is neither a public key line ("ssh-ed25519 AAAA... comment") nor the '
                'path of a readable public key file on the controller.' % (label, shown))
            continue
        with open(path, 'rb') as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if any(marker in data for marker in PRIVATE_MARKERS):
            out['problems'].append(
                '%s %s is a PRIVATE key file (its content is not shown). Give the public key '
                'file next to it (%s.pub).' % (label, shown, text))
            continue
        if len(data) > MAX_FILE_BYTES:
            out['problems'].append('%s %s is too large to be a public key file.' % (label, shown))
            continue
        try:
            content = data.decode('utf-8')
        except UnicodeDecodeError:
            out['problems'].append('%s %s is not a text file (its content is not shown).' % (label, shown))
            continue
        if _parse_lines(content, '%s %s' % (label, shown), out) == 0:
            out['problems'].append(
                '%s %s holds no public key (the file is empty or has only comments).' % (label, shown))
    return out


class FilterModule(object):
    def filters(self):
        return {'ssh_public_keys': ssh_public_keys}
