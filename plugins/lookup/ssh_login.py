# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ssh_login
short_description: What the controller can prove about its SSH login
version_added: 0.1.0
description:
  - Tells whether this ansible-playbook run was started with C(--ask-pass) (C(-k)), and
    lists the public keys whose private halves the controller holds, so that a role can check
    that a key it installs is one the owner can really log in with.
  - The public keys come from the given private key files and ssh's default ones (the C(.pub)
    file next to each private key file, or C(ssh-keygen -y) for a key without a passphrase) and,
    with O(agent=true), from the ssh-agent (C(ssh-add -L)). Private key content is never
    returned.
options:
  _terms:
    description: Paths of private key files on the controller (for example the value of
      C(ansible_ssh_private_key_file)). Empty values are ignored.
    type: list
    elements: str
    required: false
  agent:
    description: Also list the keys of the ssh-agent named by C(SSH_AUTH_SOCK).
    type: bool
    default: true
  default_identities:
    description:
      - Also look at the key files ssh tries by default (C(~/.ssh/id_ed25519), C(~/.ssh/id_ecdsa),
        C(~/.ssh/id_rsa) and their security-key variants). A key counts only when its private
        file is there.
    type: bool
    default: true
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: What the controller can prove
  ansible.builtin.set_fact:
    login: "{{ lookup('selfhost.mastodon.ssh_login', ansible_ssh_private_key_file | default('')) }}"
"""

RETURN = r"""
_raw:
  description: One dictionary.
  type: list
  elements: dict
  contains:
    asks_password:
      description: Whether the run was started with C(--ask-pass).
      type: bool
    keys:
      description: Public key lines the controller holds the private halves of.
      type: list
      elements: str
"""

import os
import subprocess

from ansible.plugins.lookup import LookupBase

try:
    from ansible import context
except ImportError:  # pragma: no cover
    context = None


def _run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ''
    return proc.stdout if proc.returncode == 0 else ''


DEFAULT_IDENTITIES = ('~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa',
                      '~/.ssh/id_ed25519_sk', '~/.ssh/id_ecdsa_sk')


def public_halves(paths, agent=True, default_identities=False):
    keys = []
    paths = list(paths) + (list(DEFAULT_IDENTITIES) if default_identities else [])
    for path in paths:
        if not path:
            continue
        path = os.path.expanduser(str(path))
        if path.endswith('.pub'):
            path = path[:-4]
        if not os.path.isfile(path):
            # No private half on this controller: nothing is proven.
            continue
        pub = path + '.pub'
        text = ''
        if os.path.isfile(pub):
            with open(pub, 'r', encoding='utf-8', errors='replace') as handle:
                text = handle.read(65536)
        else:
            # Only the public half is printed; -P '' fails on a key with a passphrase.
            text = _run(['ssh-keygen', '-y', '-P', '', '-f', path])
        keys.extend(line.strip() for line in text.splitlines() if line.strip())
    if agent and os.environ.get('SSH_AUTH_SOCK'):
        keys.extend(line.strip() for line in _run(['ssh-add', '-L']).splitlines()
                    if line.strip() and ' ' in line.strip())
    # Public halves only: a line that looks like private key material is dropped.
    return [key for key in keys if 'PRIVATE KEY' not in key]


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        asks = False
        if context is not None and context.CLIARGS:
            asks = bool(context.CLIARGS.get('ask_pass'))
        return [{'asks_password': asks,
                 'keys': public_halves(terms or [], agent=self.get_option('agent'),
                                       default_identities=self.get_option('default_identities'))}]
