# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ip_networks
short_description: Sort a list of IP addresses and networks into IPv4, IPv6 and invalid
version_added: 0.1.0
description:
  - Each entry is an IPv4 or IPv6 address or a CIDR network. Host bits are cleared
    (C(192.168.1.7/24) becomes C(192.168.1.0/24)); a bare address becomes a C(/32) or C(/128).
  - Uses Python's C(ipaddress) on the controller; no other collection is needed.
options:
  _input:
    description: The addresses and networks.
    type: list
    elements: raw
    required: true
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: Split the SSH sources
  ansible.builtin.set_fact:
    sources: "{{ base_os_ssh_allowed_sources | selfhost.mastodon.ip_networks }}"
"""

RETURN = r"""
_value:
  description: The networks by family, and the entries that are not addresses or networks.
  type: dict
  contains:
    v4:
      description: IPv4 networks in CIDR notation.
      type: list
      elements: str
    v6:
      description: IPv6 networks in CIDR notation.
      type: list
      elements: str
    invalid:
      description: The entries that are neither (as given, converted to text).
      type: list
      elements: str
"""

from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import parse_network


def ip_networks(values):
    out = {'v4': [], 'v6': [], 'invalid': []}
    if isinstance(values, (str, bytes)) or not hasattr(values, '__iter__'):
        out['invalid'].append(str(values))
        return out
    for value in values:
        net = parse_network(value)
        if net is None:
            out['invalid'].append(str(value))
            continue
        bucket = out['v4'] if net.version == 4 else out['v6']
        if str(net) not in bucket:
            bucket.append(str(net))
    return out


class FilterModule(object):
    def filters(self):
        return {'ip_networks': ip_networks}
