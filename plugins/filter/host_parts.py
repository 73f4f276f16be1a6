# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which parts of the site (database, Redis, web, Sidekiq, tunnel connector) a host plays.

The one place that reads the optional inventory groups (docs/several-hosts.md);
the roles and playbooks call it instead of repeating the rules in Jinja. Unit tests:
tests/unit/plugins/filter/test_host_parts.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: host_parts
short_description: The parts of the Mastodon site a host plays, from the inventory's groups
version_added: 0.1.0
description:
  - Reads the optional groups C(mastodon_db), C(mastodon_redis), C(mastodon_web),
    C(mastodon_sidekiq) and C(mastodon_connectors). A group the inventory does not have means
    "this host", so with none of them (the one-laptop inventory) the host plays every part.
  - The app hosts are the hosts of C(mastodon_web) and C(mastodon_sidekiq) together (this host
    when both groups are missing or empty).
  - The primary app host (it generates the secrets, migrates the database, creates the owner;
    day-2 backs up its files and upgrades it first) is O(primary_override) when set, else the
    first host of C(mastodon_web) by name, else the first app host by name. Never the inventory's
    host order, which Molecule and dynamic inventories change from run to run.
  - Every list in the result is sorted by name, so nothing depends on the inventory's host order.
options:
  _input:
    description: The C(groups) magic variable (group name to list of host names).
    type: dict
    required: true
  host:
    description: The host asked about, normally C(inventory_hostname).
    type: str
    required: true
  primary_override:
    description: The primary app host chosen in the inventory (C(mastodon_stack_primary_host)); empty
      for the rule above.
    type: str
    default: ''
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: Open PostgreSQL only on the database host
  ansible.builtin.debug:
    msg: "{{ 'db host' if (groups | selfhost.mastodon.host_parts(inventory_hostname)).db else 'no db here' }}"

- name: The primary app host, with the inventory's choice
  ansible.builtin.debug:
    msg: "{{ (groups | selfhost.mastodon.host_parts(inventory_hostname, mastodon_stack_primary_host)).primary_host }}"
"""

RETURN = r"""
_value:
  description: The parts this host plays and the hosts of each part.
  type: dict
  contains:
    db:
      description: This host runs PostgreSQL (in C(mastodon_db), or that group is missing).
      type: bool
    redis:
      description: This host runs Redis (in C(mastodon_redis), or that group is missing).
      type: bool
    web:
      description: This host serves the web interface (in C(mastodon_web); without hosts in that
        group, every app host).
      type: bool
    sidekiq:
      description: This host runs Sidekiq (in C(mastodon_sidekiq); without hosts in that group, every
        app host).
      type: bool
    app:
      description: This host runs the application (web or Sidekiq, and nginx).
      type: bool
    connector:
      description: This host runs a cloudflared replica (in C(mastodon_connectors), or that group is
        missing).
      type: bool
    primary:
      description: This host is the primary app host.
      type: bool
    primary_host:
      description: The name of the primary app host.
      type: str
    multi_host:
      description: The inventory has at least one of the groups mastodon_db, mastodon_redis, mastodon_web,
        mastodon_sidekiq (the parts are split between hosts).
      type: bool
    app_groups:
      description: The inventory has mastodon_web or mastodon_sidekiq (several app hosts may exist).
      type: bool
    db_hosts:
      description: The database hosts.
      type: list
      elements: str
    redis_hosts:
      description: The Redis hosts.
      type: list
      elements: str
    app_hosts:
      description: The app hosts.
      type: list
      elements: str
    connectors:
      description: The connector hosts.
      type: list
      elements: str
    lan_clients:
      description: The app hosts other than this one (the hosts a database or Redis host lets in).
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

OPTIONAL_GROUPS = ("mastodon_db", "mastodon_redis", "mastodon_web", "mastodon_sidekiq", "mastodon_connectors")
SPLIT_GROUPS = OPTIONAL_GROUPS[:4]


def _members(groups, name):
    hosts = groups[name]
    if isinstance(hosts, (str, bytes)) or not hasattr(hosts, "__iter__"):
        raise AnsibleFilterError("host_parts: group %s must be a list of host names, got %r" % (name, hosts))
    return sorted(set(to_text(h) for h in hosts))


def host_parts(groups, host, primary_override=""):
    """The parts *host* plays in the site the inventory's *groups* describe."""
    if not isinstance(groups, dict):
        raise AnsibleFilterError("host_parts: the input must be the groups mapping, got %r" % type(groups).__name__)
    if not host:
        raise AnsibleFilterError("host_parts: the host name is empty")
    host = to_text(host)
    present = {name: _members(groups, name) for name in OPTIONAL_GROUPS if name in groups}

    def hosts_of(name):
        return present[name] if name in present else [host]

    db_hosts = hosts_of("mastodon_db")
    redis_hosts = hosts_of("mastodon_redis")
    connectors = hosts_of("mastodon_connectors")
    web_group = present.get("mastodon_web", [])
    sidekiq_group = present.get("mastodon_sidekiq", [])
    app_hosts = sorted(set(web_group) | set(sidekiq_group)) or [host]
    app = host in app_hosts
    override = to_text(primary_override or "")
    primary_host = override or (web_group + app_hosts)[0]
    return {
        "db": host in db_hosts,
        "redis": host in redis_hosts,
        # An app host without a group of its kind (or with both groups empty) does both.
        "web": host in web_group if web_group else app,
        "sidekiq": host in sidekiq_group if sidekiq_group else app,
        "app": app,
        "connector": host in connectors,
        "primary": host == primary_host,
        "primary_host": primary_host,
        "multi_host": any(name in present for name in SPLIT_GROUPS),
        "app_groups": "mastodon_web" in present or "mastodon_sidekiq" in present,
        "db_hosts": db_hosts,
        "redis_hosts": redis_hosts,
        "app_hosts": app_hosts,
        "connectors": connectors,
        "lan_clients": [h for h in app_hosts if h != host],
    }


class FilterModule(object):
    def filters(self):
        return {"host_parts": host_parts}
