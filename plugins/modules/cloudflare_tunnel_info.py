#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cloudflare_tunnel_info
short_description: Read Cloudflare Tunnels, their connections and remote configuration
version_added: 0.1.0
description:
  - Read only. Returns the status and connections of one tunnel (by name or id) or of every
    non-deleted tunnel of the account, with the version and ingress rules of each tunnel's
    remote configuration.
  - Soft-deleted tunnels are never returned. Paged answers are followed to the last page.
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
extends_documentation_fragment:
  - selfhost.mastodon.cloudflare
  - selfhost.mastodon.cloudflare.info_module
options:
  tunnel:
    description:
      - Name or id (UUID) of the tunnel to read.
      - Not set means every non-deleted tunnel of the account.
    type: str
  include_config:
    description:
      - Also read each tunnel's remote configuration (one request per tunnel).
    type: bool
    default: true
  hostname:
    description:
      - Also find the zone of the account that holds this public hostname, and whether it is
        active (one or two requests), for a check before anything changes. See RV(zone) and
        RV(zone_problem).
      - Not set means no zone lookup.
    type: str
  zone:
    description:
      - With O(hostname), the name of the zone to look for instead of the longest one of the
        account that O(hostname) falls in.
    type: str
seealso:
  - module: selfhost.mastodon.cloudflare_tunnel
  - module: selfhost.mastodon.cloudflare_tunnel_route
'''

EXAMPLES = r'''
- name: Read the Mastodon tunnel
  selfhost.mastodon.cloudflare_tunnel_info:
    tunnel: mastodon
  register: mastodon_tunnel_info

- name: Show whether a connector is connected
  ansible.builtin.debug:
    msg: "{{ mastodon_tunnel_info.tunnels[0].status }}, {{ mastodon_tunnel_info.tunnels[0].connection_count }} connection(s)"

- name: Check that the zone of social.example.org exists and is active, before any change
  selfhost.mastodon.cloudflare_tunnel_info:
    tunnel: mastodon
    include_config: false
    hostname: social.example.org
  register: mastodon_zone_check
  failed_when: mastodon_zone_check.zone_problem | length > 0

- name: List every tunnel without reading configurations
  selfhost.mastodon.cloudflare_tunnel_info:
    include_config: false
'''

RETURN = r'''
zone:
  description:
    - The zone that holds O(hostname) (V(null) when the account has none), with its status
      (C(active), C(pending), C(initializing), C(moved), C(deactivated), ...) and whether it
      is paused.
  returned: when O(hostname) is set
  type: dict
  sample: {id: 023e105f4ecef8ad9ca31a8372d0c353, name: example.org, status: active, paused: false}
zone_problem:
  description:
    - Why no route can be published for O(hostname) yet (no zone of the account holds it, or
      its zone is not active or is paused), as a sentence; empty when the zone is usable.
  returned: when O(hostname) is set
  type: str
tunnels:
  description: The tunnels found, sorted by name. Empty when the named tunnel does not exist.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: UUID of the tunnel.
      type: str
      sample: 6ff42ae2-765d-4adf-8112-31c55c1551ef
    name:
      description: Name of the tunnel.
      type: str
      sample: mastodon
    status:
      description: Tunnel status.
      type: str
      sample: healthy
    created_at:
      description: When the tunnel was created.
      type: str
    remote_config:
      description: Whether the tunnel is remotely managed.
      type: bool
    connection_count:
      description: Number of connections to Cloudflare's edge.
      type: int
      sample: 2
    connections:
      description: The connections as Cloudflare lists them (C(colo_name), C(client_id), C(origin_ip), C(opened_at), ...).
      type: list
      elements: dict
    config_version:
      description: Version of the remote configuration. V(null) if never configured.
      type: int
      returned: when O(include_config=true)
      sample: 3
    ingress:
      description: Ingress rules of the remote configuration, in order.
      type: list
      elements: dict
      returned: when O(include_config=true)
      sample:
        - {hostname: social.example.org, service: "https://localhost:443", originRequest: {noTLSVerify: true}}
        - {service: "http_status:404"}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflare import (
    PERM_TUNNEL,
    PERM_ZONE_READ,
    CloudflareError,
    CloudflareModuleHelper,
    cloudflare_argument_spec,
    is_tunnel_id,
    zone_status_problem,
)
from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import (
    domain_name_problem,
    to_a_labels,
)


def zone_check(module, helper):
    """(zone, problem) for O(hostname): read only, never fails for a missing zone."""
    p = module.params
    values = {}
    for option in ('hostname', 'zone'):
        value = (p[option] or '').rstrip('.').lower()
        if value:
            problem = domain_name_problem(value, idna=True)
            if problem:
                module.fail_json(msg='%s %r %s. Nothing was sent to Cloudflare.'
                                     % (option, p[option], problem))
            value = to_a_labels(value)[0]
        values[option] = value
    try:
        found = helper.client.find_zone(values['hostname'], values['zone'] or None)
    except CloudflareError as exc:
        if exc.call is None:  # the hostname is not inside the zone given
            return None, exc.msg
        helper.fail(exc, PERM_ZONE_READ)
    if found is None:
        return None, ('No zone of account %s contains %s%s. Add the zone to the account (and '
                      'let it become active), or give the token "%s" on it (Cloudflare lists '
                      'only zones the token may read). Nothing was changed.'
                      % (helper.client.account_id, values['hostname'],
                         ' (looked for zone %s)' % values['zone'] if values['zone'] else '',
                         PERM_ZONE_READ))
    zone = dict(id=found.get('id'), name=found.get('name'), status=found.get('status'),
                paused=bool(found.get('paused')))
    return zone, zone_status_problem(found)


def main():
    argument_spec = cloudflare_argument_spec()
    argument_spec.update(
        tunnel=dict(type='str'),
        include_config=dict(type='bool', default=True),
        hostname=dict(type='str'),
        zone=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    helper = CloudflareModuleHelper(module)
    client = helper.client
    wanted = module.params['tunnel']

    if wanted and is_tunnel_id(wanted):
        try:
            tunnels = [client.get_tunnel(wanted.lower())]
        except CloudflareError as exc:
            if not exc.is_not_found or exc.is_auth_error:
                helper.fail(exc, PERM_TUNNEL)
            tunnels = []
        tunnels = [t for t in tunnels if not t.get('deleted_at')]
    else:
        tunnels = helper.call(PERM_TUNNEL, client.list_tunnels, wanted)

    out = []
    for tunnel in sorted(tunnels, key=lambda t: (t.get('name') or '', t.get('id') or '')):
        connections = tunnel.get('connections') or []
        item = dict(id=tunnel.get('id'), name=tunnel.get('name'), status=tunnel.get('status'),
                    created_at=tunnel.get('created_at'),
                    remote_config=bool(tunnel.get('remote_config', True)),
                    connection_count=len(connections), connections=connections)
        if module.params['include_config']:
            config = helper.call(PERM_TUNNEL, client.get_tunnel_config, tunnel['id'])
            item['config_version'] = config.get('version')
            item['ingress'] = (config.get('config') or {}).get('ingress') or []
        out.append(item)
    extra = {}
    if module.params['hostname']:
        extra['zone'], extra['zone_problem'] = zone_check(module, helper)
    module.exit_json(changed=False, tunnels=out, **extra)


if __name__ == '__main__':
    main()
