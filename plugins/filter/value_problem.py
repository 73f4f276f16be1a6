# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: value_problem
short_description: Say why a value is not of the expected kind
version_added: 0.1.0
description:
  - Returns an empty string when the value is fine, otherwise a short reason (for example
    C(must be a host name without a scheme (no https://))), to put after the variable name in
    a message. The checks are the ones the collection's modules make before any API call.
  - The reason never quotes the value.
options:
  _input:
    description: The value to check.
    type: raw
    required: true
  kind:
    description:
      - C(domain_name) (see P(selfhost.mastodon.domain_name#test)), C(wildcard_domain_name)
        (the same, a leading C(*.) allowed), C(service) (an origin cloudflared accepts),
        C(tunnel_name), C(account_id) (a Cloudflare account id, 32 hex characters),
        C(s3_bucket_name) (Amazon S3's bucket naming rule), C(r2_bucket_name) (Cloudflare R2's
        stricter one - no dots), C(cloudflared_tunnel_args) (a list of cloudflared flags that
        can go between C(tunnel) and C(run), as C(cloudflare_tunnel_extra_args) does),
        C(cloudflared_version) (the output of C(cloudflared --version), a release the roles run),
        C(finite) (no float NaN or infinity anywhere in the value, lists and mappings included;
        the roles check their number, list and mapping variables with it first).
    type: str
    default: domain_name
    choices: [domain_name, wildcard_domain_name, service, tunnel_name, account_id, s3_bucket_name,
              r2_bucket_name, cloudflared_tunnel_args,
              cloudflared_version, finite]
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
"""

EXAMPLES = r"""
- name: Check the tunnel's origin service
  ansible.builtin.assert:
    that: (cloudflare_tunnel_service | selfhost.mastodon.value_problem('service')) == ''
    fail_msg: "cloudflare_tunnel_service {{ cloudflare_tunnel_service | selfhost.mastodon.value_problem('service') }}"
"""

RETURN = r"""
_value:
  description: The reason, or an empty string when the value is fine.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflare import r2_bucket_name_problem
from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflared_flags import (
    tunnel_args_problem,
    version_problem as cloudflared_version_problem,
)
from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import (
    account_id_problem,
    domain_name_problem,
    finite_problem,
    s3_bucket_name_problem,
    service_problem,
    tunnel_name_problem,
)


def _wildcard_domain_name_problem(value):
    return domain_name_problem(value, wildcard=True)


CHECKS = {
    'domain_name': domain_name_problem,
    'wildcard_domain_name': _wildcard_domain_name_problem,
    'service': service_problem,
    'tunnel_name': tunnel_name_problem,
    'account_id': account_id_problem,
    's3_bucket_name': s3_bucket_name_problem,
    'r2_bucket_name': r2_bucket_name_problem,
    'cloudflared_tunnel_args': tunnel_args_problem,
    'cloudflared_version': cloudflared_version_problem,
    'finite': finite_problem,
}


def value_problem(value, kind='domain_name'):
    if kind not in CHECKS:
        raise AnsibleFilterError('value_problem: unknown kind %r' % (kind,))
    return CHECKS[kind](value) or ''


class FilterModule(object):
    def filters(self):
        return {'value_problem': value_problem}
