# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ip_in_networks
short_description: Test whether an IP address lies in one of a list of networks
version_added: 0.1.0
description:
  - An IPv4-mapped IPv6 address (C(::ffff:192.0.2.1)) counts as its IPv4 address.
  - Entries of the list that are not networks are ignored (check them with
    P(selfhost.mastodon.ip_networks#filter)).
options:
  _input:
    description: The address.
    type: str
    required: true
  networks:
    description: Addresses or CIDR networks.
    type: list
    elements: str
    required: true
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: The controller must be allowed in
  ansible.builtin.assert:
    that: client_address is selfhost.mastodon.ip_in_networks(base_os_ssh_allowed_sources)
"""

RETURN = r"""
_value:
  description: Whether the address is in one of the networks.
  type: bool
"""

import ipaddress

from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import parse_network


def ip_in_networks(address, networks):
    try:
        addr = ipaddress.ip_address(str(address).strip().split('%', maxsplit=1)[0])
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for value in networks or []:
        net = parse_network(value)
        if net is not None and net.version == addr.version and addr in net:
            return True
    return False


class TestModule(object):
    def tests(self):
        return {'ip_in_networks': ip_in_networks}
