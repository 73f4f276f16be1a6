#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cloudflare_tunnel
short_description: Create or delete a remotely managed Cloudflare Tunnel
version_added: 0.1.0
description:
  - Ensures a Cloudflare Tunnel with the given name exists in the account, remotely managed
    (C(config_src=cloudflare)), as the Zero Trust dashboard creates it, or that it does not.
  - Returns the tunnel and its connector token, which C(cloudflared tunnel run --token-file)
    reads.
  - Soft-deleted tunnels of the same name are ignored.
  - A no-op run sends two requests (list the tunnel by name, read its token).
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
extends_documentation_fragment:
  - selfhost.mastodon.cloudflare
  - selfhost.mastodon.cloudflare.attributes
options:
  name:
    description:
      - Name of the tunnel. Unique among the account's non-deleted tunnels.
      - 1 to 63 letters, digits, C(.), C(_) or C(-), starting with a letter or digit; checked
        before any call.
    type: str
    required: true
  state:
    description:
      - V(present) finds the non-deleted tunnel of that name or creates it remotely managed.
        A locally managed tunnel (created with C(cloudflared tunnel create)) of that name is
        an error.
      - V(absent) cleans up the tunnel's connections, then deletes it. A locally managed
        tunnel of that name is an error here too, because the module never deletes a tunnel it
        could not have created. While Cloudflare
        answers that the tunnel still has active connections (error 1022), the module
        cleans up and retries within O(retry_budget). A tunnel that is already absent is
        not an error.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The returned RV(token) is a secret that lets anyone run a connector for this tunnel.
    The module cannot hide a value inside its own result, so B(the calling task must set
    C(no_log=true)) and pass the token on only to a file with restrictive mode.
seealso:
  - module: selfhost.mastodon.cloudflare_tunnel_route
  - module: selfhost.mastodon.cloudflare_tunnel_info
'''

EXAMPLES = r'''
- name: Ensure the Mastodon tunnel exists
  selfhost.mastodon.cloudflare_tunnel:
    name: mastodon
    account_id: 0123456789abcdef0123456789abcdef
    api_token: "{{ vault_cloudflare_api_token }}"
  register: mastodon_tunnel
  no_log: true  # the result carries the connector token

- name: Delete the tunnel (stop cloudflared first)
  selfhost.mastodon.cloudflare_tunnel:
    name: mastodon
    state: absent
'''

RETURN = r'''
tunnel:
  description:
    - The tunnel. In check mode, when the tunnel would be created, V(null).
    - V(null) after V(state=absent).
  returned: always
  type: dict
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
      description: Tunnel status as Cloudflare reports it.
      type: str
      sample: inactive
      choices: [inactive, degraded, healthy, down]
    created_at:
      description: When the tunnel was created.
      type: str
      sample: "2026-11-27T06:00:00Z"
    connections:
      description: Number of connections between connectors and Cloudflare's edge.
      type: int
      sample: 0
    remote_config:
      description: Whether the tunnel is remotely managed (always V(true) for tunnels this module returns).
      type: bool
      sample: true
token:
  description:
    - Connector token of the tunnel (base64 of a JSON object with keys C(a), C(t), C(s)).
    - Secret. Use C(no_log) on the task.
    - V(null) in check mode when the tunnel would be created, and after V(state=absent).
  returned: always
  type: str
  sample: eyJhIjoiMDEyMyIsInQiOiI2ZmY0IiwicyI6IkFBQUEifQ==
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflare import (
    CODE_TUNNEL_NAME_TAKEN,
    PERM_TUNNEL,
    CloudflareError,
    CloudflareModuleHelper,
    cloudflare_argument_spec,
    locally_managed_msg,
)
from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import tunnel_name_problem


def tunnel_summary(tunnel):
    if not tunnel:
        return None
    return dict(
        id=tunnel.get('id'),
        name=tunnel.get('name'),
        status=tunnel.get('status'),
        created_at=tunnel.get('created_at'),
        connections=len(tunnel.get('connections') or []),
        remote_config=bool(tunnel.get('remote_config', True)),
    )


def diff_state(tunnel):
    if not tunnel:
        return {'state': 'absent'}
    return {'state': 'present', 'name': tunnel.get('name'), 'id': tunnel.get('id'),
            'config_src': 'cloudflare' if tunnel.get('remote_config', True) else 'local'}


def main():
    argument_spec = cloudflare_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problem = tunnel_name_problem(module.params['name'])
    if problem:
        module.fail_json(msg='name (the tunnel name) %s. Nothing was sent to Cloudflare.' % problem)
    helper = CloudflareModuleHelper(module)
    client = helper.client
    name = module.params['name']
    state = module.params['state']

    found = helper.call(PERM_TUNNEL, client.list_tunnels, name)
    if len(found) > 1:
        module.fail_json(msg='Cloudflare lists %d non-deleted tunnels named %s (ids %s); '
                             'delete the extra ones.' % (len(found), name,
                                                         ', '.join(t['id'] for t in found)))
    current = found[0] if found else None
    if current is not None and current.get('remote_config') is False:
        module.fail_json(msg=locally_managed_msg(name, current.get('id')))

    result = dict(changed=False, tunnel=None, token=None)
    before = diff_state(current)

    if state == 'present':
        tunnel = current
        token = None
        if current is None:
            result['changed'] = True
            if not module.check_mode:
                try:
                    tunnel = client.create_tunnel(name)
                except CloudflareError as exc:
                    if not exc.has_code(CODE_TUNNEL_NAME_TAKEN):
                        helper.fail(exc, PERM_TUNNEL)
                    # A retried create whose first attempt reached Cloudflare: adopt it.
                    again = helper.call(PERM_TUNNEL, client.list_tunnels, name)
                    if not again:
                        helper.fail(exc, PERM_TUNNEL)
                    tunnel = again[0]
                token = tunnel.get('token')
        if tunnel is not None and not token:
            token = helper.call(PERM_TUNNEL, client.get_tunnel_token, tunnel['id'])
        result['tunnel'] = tunnel_summary(tunnel)
        result['token'] = token
        after = diff_state(tunnel) if tunnel else {'state': 'present', 'name': name,
                                                   'config_src': 'cloudflare'}
    else:
        after = {'state': 'absent'}
        if current is not None:
            result['changed'] = True
            if not module.check_mode:
                try:
                    client.remove_tunnel(current['id'])
                except CloudflareError as exc:
                    helper.fail(exc, PERM_TUNNEL)

    if module._diff:
        result['diff'] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
