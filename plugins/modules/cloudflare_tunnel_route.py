#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cloudflare_tunnel_route
short_description: Publish a hostname through a remotely managed Cloudflare Tunnel
version_added: 0.1.0
description:
  - Does what the Zero Trust dashboard's "Published application routes" do, idempotently.
  - Keeps exactly one ingress rule without a path for O(hostname) in the tunnel's remote
    configuration, with the given service and origin settings. Rules for other hostnames, and
    rules for paths of O(hostname) (the owner's own), stay as they are; a new rule goes just
    before the catch-all, below them. A catch-all rule stays last; if the configuration has
    none, C(http_status:404) is added.
  - The ingress list is read last, right before it is written, and read again after each
    write; when another run on the same tunnel replaced the list in between (Cloudflare's API
    has no compare-and-swap for it), the rule is put back into the newer list, at most five
    times. See RV(config_attempts).
  - With O(dns=true), keeps a proxied CNAME O(hostname) -> C(<tunnel id>.cfargotunnel.com)
    in the zone of the hostname. An A, AAAA or CNAME record of that name that points
    elsewhere is never replaced unless O(overwrite_dns=true); the error names the record.
    With O(overwrite_dns=true) the CNAME replaces them in one DNS batch
    (C(POST /zones/{zone_id}/dns_records/batch), one transaction at Cloudflare), so the name
    is never left without an address, even when the change is refused.
  - A zone that is not active (pending, initializing, moved, deactivated) or is paused is
    refused before any write.
  - Every value is checked locally before the first call (hostname, service, tunnel name,
    account id, zone), and every read happens before the first write, so a refused read (bad
    token, missing permission) stops the run before anything changes.
  - The tunnel configuration is written before the DNS record. A rule without a DNS record is
    invisible, while a CNAME without a rule would answer 404 on the public name. A DNS record
    that already exists after a lost answer (Cloudflare codes 81053, 81057, 81058) is adopted
    when it points at this tunnel.
  - A no-op run sends three requests when O(tunnel) is the tunnel id (zone, DNS records,
    configuration) and four when it is a name. A write of the configuration costs one more
    read, which checks it.
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
extends_documentation_fragment:
  - selfhost.mastodon.cloudflare
  - selfhost.mastodon.cloudflare.attributes
options:
  tunnel:
    description:
      - Name or id (UUID) of a remotely managed tunnel, for example RV(selfhost.mastodon.cloudflare_tunnel#module:tunnel.id).
      - Passing the id saves the request that looks the name up.
    type: str
    required: true
  hostname:
    description:
      - Public hostname to publish, for example V(social.example.org).
      - A host name only (RFC 1123, at most 253 characters), without scheme, path or port, not
        empty. Internationalised names are converted to their A-labels (C(xn--...)).
      - A wildcard (C(*.example.org)) only with O(wildcard=true).
    type: str
    required: true
  wildcard:
    description:
      - Allow a wildcard O(hostname) (C(*.example.org)).
    type: bool
    default: false
  service:
    description:
      - Where the connector sends requests for O(hostname), as in cloudflared's ingress rules
        (V(https://localhost:443), V(http://127.0.0.1:3000), V(http_status:404), ...).
      - Checked before any call against cloudflared's own ingress rules, because cloudflared
        refuses a whole configuration (every hostname of the tunnel then answers 503) for one
        service it refuses. It accepts a URL with a scheme and a host name and B(no path), not
        even a trailing C(/) (V(https://localhost:443), V(tcp://localhost:22), V(ssh://...),
        V(rdp://...), V(smb://...), any other scheme is TCP over WebSocket); C(unix:PATH),
        C(unix+tls:PATH); C(http_status:NNN) (100-999); and the services C(hello_world),
        C(socks-proxy) (not C(socks5)) and C(bastion). The error names the rule broken.
    type: str
    default: https://localhost:443
  no_tls_verify:
    description:
      - Do not verify the origin's TLS certificate (C(originRequest.noTLSVerify)).
      - Defaults to V(true) because the origin in this collection serves a self-signed
        certificate; without it Cloudflare answers 502. Prefer O(ca_pool) with
        O(no_tls_verify=false) when the connector host has the origin's CA.
    type: bool
    default: true
  origin_server_name:
    description:
      - Hostname the connector expects in the origin certificate (C(originRequest.originServerName)).
      - Not set means leave as it is; an empty string removes it.
    type: str
  ca_pool:
    description:
      - Path, on the connector host, of a CA bundle to verify the origin certificate with
        (C(originRequest.caPool)).
      - Not set means leave as it is; an empty string removes it.
    type: str
  http_host_header:
    description:
      - Host header sent to the origin (C(originRequest.httpHostHeader)).
      - Not set means leave as it is; an empty string removes it.
    type: str
  connect_timeout:
    description:
      - Seconds the connector waits for a TCP connection to the origin (C(originRequest.connectTimeout)).
      - Not set means leave as it is.
    type: int
  zone:
    description:
      - Name of the zone that holds the DNS record.
      - By default the longest zone of the account that O(hostname) falls in, so
        V(a.sub.example.org) goes to zone V(sub.example.org) when the account has both
        V(sub.example.org) and V(example.org).
    type: str
  dns:
    description:
      - Manage the CNAME record for O(hostname). V(false) touches only the tunnel configuration.
    type: bool
    default: true
  overwrite_dns:
    description:
      - Replace an A, AAAA or CNAME record of O(hostname) that does not point at this tunnel.
    type: bool
    default: false
  state:
    description:
      - V(present) publishes the hostname.
      - V(absent) removes the ingress rule for O(hostname) and the CNAME, but the CNAME only if
        it points at this tunnel.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: selfhost.mastodon.cloudflare_tunnel
  - module: selfhost.mastodon.cloudflare_tunnel_info
'''

EXAMPLES = r'''
- name: Ensure the Mastodon tunnel exists
  selfhost.mastodon.cloudflare_tunnel:
    name: mastodon
  register: mastodon_tunnel
  no_log: true

- name: Publish social.example.org through the tunnel to the local nginx
  selfhost.mastodon.cloudflare_tunnel_route:
    tunnel: "{{ mastodon_tunnel.tunnel.id }}"
    hostname: social.example.org
    service: https://localhost:443
    no_tls_verify: true

- name: Verify the origin certificate against a CA on the connector host instead
  selfhost.mastodon.cloudflare_tunnel_route:
    tunnel: mastodon
    hostname: social.example.org
    no_tls_verify: false
    ca_pool: /etc/cloudflared/origin-ca.pem
    origin_server_name: social.example.org

- name: Set the credentials once for every Cloudflare module of the play
  module_defaults:
    group/selfhost.mastodon.cloudflare:
      account_id: "{{ cloudflare_account_id }}"
      api_token: "{{ vault_cloudflare_api_token }}"
  block:
    - name: Publish a second hostname on the same tunnel
      selfhost.mastodon.cloudflare_tunnel_route:
        tunnel: "{{ mastodon_tunnel.tunnel.id }}"
        hostname: files.example.org
        service: http://127.0.0.1:9000

- name: Unpublish the hostname
  selfhost.mastodon.cloudflare_tunnel_route:
    tunnel: mastodon
    hostname: social.example.org
    state: absent
'''

RETURN = r'''
tunnel_id:
  description: Id of the tunnel. V(null) in check mode when the tunnel does not exist yet.
  returned: always
  type: str
  sample: 6ff42ae2-765d-4adf-8112-31c55c1551ef
rule:
  description: The ingress rule for the hostname after the run; V(null) after V(state=absent).
  returned: always
  type: dict
  sample: {hostname: social.example.org, service: "https://localhost:443", originRequest: {noTLSVerify: true}}
ingress:
  description: All ingress rules of the tunnel after the run (or as they would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - {hostname: social.example.org, service: "https://localhost:443", originRequest: {noTLSVerify: true}}
    - {service: "http_status:404"}
config_attempts:
  description: How many writes of the configuration it took (more than 1 when another write
    replaced the list in between).
  returned: when the configuration was written
  type: int
  sample: 1
config_version:
  description: Version of the tunnel's remote configuration after the run.
  returned: success
  type: int
  sample: 3
zone:
  description: The zone that holds the DNS record.
  returned: when O(dns=true)
  type: dict
  contains:
    id:
      description: Zone id.
      type: str
    name:
      description: Zone name.
      type: str
dns_record:
  description: The CNAME record for the hostname after the run; V(null) when absent.
  returned: when O(dns=true)
  type: dict
  sample: {id: 372e67954025e0ba6aaa6d586b9e0b59, type: CNAME, name: social.example.org,
           content: 6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com, proxied: true}
'''

import collections
import random
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflare import (
    CODES_DNS_EXISTS,
    PERM_DNS,
    PERM_TUNNEL,
    CloudflareError,
    CloudflareModuleHelper,
    cloudflare_argument_spec,
    is_tunnel_id,
    locally_managed_msg,
    tunnel_cname_target,
)
from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import (
    domain_name_problem,
    service_problem,
    to_a_labels,
    tunnel_name_problem,
)

ORIGIN_OPTIONS = (
    ('origin_server_name', 'originServerName'),
    ('ca_pool', 'caPool'),
    ('http_host_header', 'httpHostHeader'),
    ('connect_timeout', 'connectTimeout'),
)
ADDRESS_TYPES = ('A', 'AAAA', 'CNAME')

# What the read step found (nothing written yet).
Current = collections.namedtuple('Current', 'tunnel_id config_result config ingress zone records')
# The DNS part of a plan: records to delete, (record, desired) to update, a record to create,
# and the record expected afterwards.
DnsPlan = collections.namedtuple('DnsPlan', 'deletes update create final')
# Everything a run will write, decided before the first write.
RoutePlan = collections.namedtuple(
    'RoutePlan', 'rule ingress config_changed dns dns_changed')


def is_catch_all(rule):
    return not rule.get('hostname') and not rule.get('path')


def normalize_rule(rule):
    """A rule without empty values, for comparison and stable diffs."""
    out = {}
    for key, value in rule.items():
        if value is None or value == '' or value == {} or value == []:
            continue
        out[key] = normalize_rule(value) if isinstance(value, dict) else value
    return out


def desired_rule(params, existing):
    origin = dict((existing or {}).get('originRequest') or {})
    if params['no_tls_verify']:
        origin['noTLSVerify'] = True
    else:
        origin.pop('noTLSVerify', None)
    for option, key in ORIGIN_OPTIONS:
        value = params[option]
        if value is None:
            continue
        if value == '':
            origin.pop(key, None)
        else:
            origin[key] = value
    rule = {'hostname': params['hostname'], 'service': params['service']}
    if origin:
        rule['originRequest'] = origin
    return rule


def owned_rule(rule, hostname):
    """True for the rule this module keeps for hostname: that hostname and no path.

    A rule of the same hostname with a path is the owner's own (for example a path sent to
    another service); it is never replaced or removed here."""
    return (rule.get('hostname') or '').lower() == hostname and not rule.get('path')


def plan_ingress(ingress, hostname, rule):
    """New ingress list: exactly one path-less rule for hostname (none when rule is None).

    Every other rule stays where it is: other hostnames, the hostname's rules with a path,
    the catch-all. A new rule goes just before the catch-all, so the hostname's path rules
    above it keep matching first."""
    hostname = hostname.lower()
    new = []
    placed = False
    for existing in ingress:
        if owned_rule(existing, hostname):
            if rule is not None and not placed:
                new.append(rule)
                placed = True
            continue
        new.append(existing)
    if rule is not None and not placed:
        if new and is_catch_all(new[-1]):
            new.insert(len(new) - 1, rule)
        else:
            new.append(rule)
    if new and not is_catch_all(new[-1]):
        new.append({'service': 'http_status:404'})
    return new


def rule_in_place(ingress, hostname, rule):
    """True when ingress holds exactly the wanted path-less rule for hostname (or none)."""
    owned = [normalize_rule(r) for r in ingress if owned_rule(r, hostname.lower())]
    if rule is None:
        return not owned
    return owned == [normalize_rule(rule)]


def record_view(record):
    if not record:
        return None
    return dict(id=record.get('id'), type=record.get('type'), name=record.get('name'),
                content=record.get('content'), proxied=record.get('proxied'))


def describe_record(record):
    return '%s %s -> %s (id %s%s)' % (record.get('type'), record.get('name'),
                                      record.get('content'), record.get('id'),
                                      ', proxied' if record.get('proxied') else '')


class TunnelRoute(object):

    # Writes of the ingress list: attempts, and the pause (seconds, jittered) before the
    # read that checks each write. time.sleep, not the client's sleep, so that the retry
    # waits tests record are the client's alone.
    CONFIG_ATTEMPTS = 5
    SETTLE = (0.2, 0.6)
    pause = staticmethod(time.sleep)

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.helper = CloudflareModuleHelper(module)
        self.client = self.helper.client
        self.changed = False
        self.result = {}

    def fail(self, exc, permission):
        self.helper.fail(exc, permission, changed=self.changed)

    # ---------------------------------------------------------------- reads

    def resolve_tunnel(self):
        tunnel = self.params['tunnel']
        if is_tunnel_id(tunnel):
            return tunnel.lower()
        found = self.helper.call(PERM_TUNNEL, self.client.list_tunnels, tunnel)
        if not found:
            return None
        if found[0].get('remote_config') is False:
            self.module.fail_json(msg=locally_managed_msg(tunnel, found[0]['id']))
        return found[0]['id']

    def read_config(self, tunnel_id):
        try:
            return self.client.get_tunnel_config(tunnel_id)
        except CloudflareError as exc:
            if exc.is_not_found and not exc.is_auth_error:
                return None
            self.fail(exc, PERM_TUNNEL)

    def read_dns(self):
        hostname = self.params['hostname']
        zone = self.helper.require_zone(hostname, self.params['zone'])
        records = self.helper.call(PERM_DNS, self.client.list_dns_records, zone['id'], hostname)
        records = [r for r in records if r.get('type') in ADDRESS_TYPES]
        return zone, records

    # ---------------------------------------------------------------- DNS plan

    def plan_dns(self, records, target, state):
        """The DnsPlan for the DNS records of the hostname."""
        hostname = self.params['hostname']
        ours = [r for r in records if r.get('type') == 'CNAME'
                and (r.get('content') or '').lower() == target]
        others = [r for r in records if r not in ours]
        desired = {'type': 'CNAME', 'name': hostname, 'content': target, 'proxied': True,
                   'ttl': 1}
        if state == 'absent':
            return DnsPlan(ours, None, None, None)
        if others and not self.params['overwrite_dns']:
            self.module.fail_json(
                msg='%s already has DNS record(s) that do not point at the tunnel (%s): %s. '
                    'Remove them or set overwrite_dns=true to replace them.'
                    % (hostname, target, '; '.join(describe_record(r) for r in others)),
                conflicting_records=[record_view(r) for r in others])
        deletes = list(others) + ours[1:]
        if ours:
            keep = ours[0]
            if keep.get('proxied'):
                return DnsPlan(deletes, None, None, keep)
            return DnsPlan(deletes, (keep, desired), None, dict(keep, proxied=True))
        cnames = [r for r in others if r.get('type') == 'CNAME']
        if cnames:
            keep = cnames[0]
            deletes = [r for r in deletes if r is not keep]
            return DnsPlan(deletes, (keep, desired), None, dict(keep, **desired))
        return DnsPlan(deletes, None, desired, dict(desired, id=None))

    # ---------------------------------------------------------------- run

    def run(self):
        current = self.read()
        plan = self.plan(current)
        result = dict(changed=plan.config_changed or plan.dns_changed,
                      tunnel_id=current.tunnel_id,
                      rule=normalize_rule(plan.rule) if plan.rule else None,
                      ingress=[normalize_rule(r) for r in plan.ingress],
                      config_version=current.config_result.get('version'))
        final = plan.dns.final if plan.dns else None
        if not self.module.check_mode:
            final = self.write(current, plan, result)
        if self.params['dns']:
            result['zone'] = dict(id=current.zone['id'], name=current.zone['name'])
            result['dns_record'] = record_view(final)
        if self.module._diff:
            result['diff'] = self.diff(current, plan, result, final)
        self.module.exit_json(**result)

    def read(self):
        """Every read of the run; exits early when there is nothing to do."""
        p = self.params
        state = p['state']
        tunnel_id = self.resolve_tunnel()
        if tunnel_id is None:
            if state == 'absent':
                self.module.exit_json(changed=False, tunnel_id=None, rule=None, ingress=[],
                                      msg='Tunnel %s does not exist; nothing to remove.' % p['tunnel'])
            if self.module.check_mode:
                self.module.exit_json(changed=True, tunnel_id=None, rule=None, ingress=[],
                                      msg='Tunnel %s does not exist yet (check mode); the route '
                                          'would be created once it does.' % p['tunnel'])
            self.module.fail_json(msg='No non-deleted tunnel named %s in account %s; create it '
                                      'first with selfhost.mastodon.cloudflare_tunnel.'
                                  % (p['tunnel'], self.client.account_id))

        # The DNS reads first and the configuration last: the time between reading the
        # ingress list and writing it back is then only the planning, which narrows the
        # window in which another run's write could be overwritten (see write_config).
        zone = records = None
        if p['dns']:
            zone, records = self.read_dns()
        config_result = self.read_config(tunnel_id)
        if config_result is None and state == 'present':
            self.module.fail_json(msg='Tunnel %s was not found in account %s.'
                                  % (tunnel_id, self.client.account_id))
        config_result = config_result or {}
        if config_result.get('source') == 'local':
            self.module.fail_json(msg=locally_managed_msg(tunnel_id))
        config = dict(config_result.get('config') or {})
        return Current(tunnel_id, config_result, config, list(config.get('ingress') or []),
                       zone, records)

    def plan(self, current):
        """Decide every write from what was read; nothing is written here."""
        p = self.params
        hostname = p['hostname']
        current_rules = [r for r in current.ingress if owned_rule(r, hostname.lower())]
        rule = None
        if p['state'] == 'present':
            rule = desired_rule(p, current_rules[0] if current_rules else None)
        new_ingress = plan_ingress(current.ingress, hostname, rule) if (current.ingress or rule) else []
        config_changed = ([normalize_rule(r) for r in new_ingress]
                          != [normalize_rule(r) for r in current.ingress])
        dns = None
        if p['dns']:
            dns = self.plan_dns(current.records, tunnel_cname_target(current.tunnel_id), p['state'])
        dns_changed = bool(dns and (dns.deletes or dns.update or dns.create))
        return RoutePlan(rule, new_ingress, config_changed, dns, dns_changed)

    def write(self, current, plan, result):
        """Tunnel configuration first, then DNS. Returns the DNS record after the run."""
        self.changed = False
        if plan.config_changed:
            self.write_config(current, plan, result)
        if plan.dns is not None:
            return self.write_dns(current.zone, plan.dns)
        return None

    def write_config(self, current, plan, result):
        """Write the ingress list, then read it back until the rule is there.

        Cloudflare's PUT .../configurations replaces the whole list and takes no version to
        compare with (no compare-and-swap), so two runs for different hostnames on one
        tunnel can each read the list and write it back without the other's rule. After
        each write this waits a moment (SETTLE, jittered), reads the list again and checks
        that the path-less rule for the hostname is as wanted; when another run's write
        replaced it, the rule is put back into that newer list and written again, at most
        CONFIG_ATTEMPTS times. Each run guards its own rule this way, so every rule of
        concurrent runs survives, except when another run's write lands more than SETTLE
        after its own read (a write held back by a long 429 Retry-After, say): that run's
        list is older than this run's check, which has already passed.
        """
        hostname = self.params['hostname']
        config, ingress = current.config, plan.ingress
        for attempt in range(1, self.CONFIG_ATTEMPTS + 1):
            try:
                written = self.client.put_tunnel_config(current.tunnel_id,
                                                        dict(config, ingress=ingress))
            except CloudflareError as exc:
                self.fail(exc, PERM_TUNNEL)
            self.changed = True
            written = written or {}
            self.pause(random.uniform(*self.SETTLE))
            seen = self.read_config(current.tunnel_id) or {}
            seen_config = dict(seen.get('config') or {})
            seen_ingress = list(seen_config.get('ingress') or [])
            if rule_in_place(seen_ingress, hostname, plan.rule):
                result['ingress'] = [normalize_rule(r) for r in seen_ingress]
                result['config_version'] = seen.get('version', written.get('version'))
                result['config_attempts'] = attempt
                return
            # Another run wrote its own list after ours: keep its rules and put ours back.
            config, ingress = seen_config, plan_ingress(seen_ingress, hostname, plan.rule)
            if attempt < self.CONFIG_ATTEMPTS:
                self.pause(random.uniform(0.1, 0.5) * attempt)
        self.module.fail_json(
            msg='The ingress rule for %s was replaced by another write to tunnel %s after each '
                'of %d attempts (another run or a person editing the same tunnel at the same '
                'time). Run again once the other change is done.'
                % (hostname, current.tunnel_id, self.CONFIG_ATTEMPTS), changed=self.changed)

    def diff(self, current, plan, result, final):
        before = {'ingress': [normalize_rule(r) for r in current.ingress]}
        after = {'ingress': result['ingress']}
        if plan.dns is not None:
            records = current.records
            before['dns_records'] = sorted(
                [self._diff_record(r) for r in records],
                key=lambda r: (r['type'], r['content'] or ''))
            replaced = [plan.dns.update[0]] if plan.dns.update is not None else []
            after_records = [r for r in records
                             if r not in plan.dns.deletes and r not in replaced
                             and (final is None or r.get('id') != final.get('id'))]
            if final is not None:
                after_records.append(final)
            after['dns_records'] = sorted(
                [self._diff_record(r) for r in after_records],
                key=lambda r: (r['type'], r['content'] or ''))
        return dict(before=before, after=after)

    @staticmethod
    def _diff_record(record):
        return dict(type=record.get('type'), name=record.get('name'),
                    content=record.get('content'), proxied=record.get('proxied'))

    def write_dns(self, zone, plan):
        """Write the DNS plan so that the name never has less than before.

        A record that replaces others (a CNAME in place of A/AAAA records, or of another
        tunnel's CNAME) goes in one batch with their deletion: Cloudflare runs a batch in
        one database transaction, all or nothing, so a refused create leaves the old
        records in place instead of a name without any address."""
        deletes, update, create, final = plan.deletes, plan.update, plan.create, plan.final
        if deletes and (update is not None or create is not None):
            return self.replace_dns(zone, plan)
        for record in deletes:
            try:
                self.client.delete_dns_record(zone['id'], record['id'])
            except CloudflareError as exc:
                if not exc.is_not_found or exc.is_auth_error:
                    self.fail(exc, PERM_DNS)
            self.changed = True
        if update is not None:
            record, desired = update
            try:
                final = self.client.update_dns_record(zone['id'], record['id'], desired)
            except CloudflareError as exc:
                self.fail(exc, PERM_DNS)
            self.changed = True
        if create is not None:
            try:
                final = self.client.create_dns_record(zone['id'], create)
            except CloudflareError as exc:
                if not exc.has_code(*CODES_DNS_EXISTS):
                    self.fail(exc, PERM_DNS)
                final = self.adopt_dns(zone, create['content'], exc)
            self.changed = True
        return final

    def replace_dns(self, zone, plan):
        """Deletes plus the update or create in one batch (one request)."""
        puts = [(plan.update[0]['id'], plan.update[1])] if plan.update is not None else []
        posts = [plan.create] if plan.create is not None else []
        target = (plan.update[1] if plan.update is not None else plan.create)['content']
        try:
            done = self.client.batch_dns_records(
                zone['id'], deletes=[r['id'] for r in plan.deletes], puts=puts, posts=posts)
        except CloudflareError as exc:
            if exc.is_auth_error:
                self.fail(exc, PERM_DNS)
            # Nothing of a refused batch is applied. A batch whose answer was lost and that
            # was sent again fails on its deletes although the first one went through: adopt
            # the result when the old records are gone and the CNAME is there.
            final = self.adopt_dns(zone, target, exc, gone=[r['id'] for r in plan.deletes])
            self.changed = True
            return final
        self.changed = True
        written = (done.get('puts') or []) + (done.get('posts') or [])
        return written[0] if written else plan.final

    def adopt_dns(self, zone, target, exc, gone=()):
        """The CNAME to this tunnel found on the name after a refused write, or fail."""
        name = self.params['hostname']
        records = self.helper.call(PERM_DNS, self.client.list_dns_records, zone['id'], name)
        ours = [r for r in records if r.get('type') == 'CNAME'
                and (r.get('content') or '').lower() == target]
        if not ours or any(r.get('id') in gone for r in records):
            self.module.fail_json(
                msg='%s Records now on that name: %s.' % (
                    exc.msg, '; '.join(describe_record(r) for r in records
                                       if r.get('type') in ADDRESS_TYPES) or 'none'),
                changed=self.changed)
        return ours[0]


def main():
    argument_spec = cloudflare_argument_spec()
    argument_spec.update(
        tunnel=dict(type='str', required=True),
        hostname=dict(type='str', required=True),
        service=dict(type='str', default='https://localhost:443'),
        no_tls_verify=dict(type='bool', default=True),
        origin_server_name=dict(type='str'),
        ca_pool=dict(type='str'),
        http_host_header=dict(type='str'),
        connect_timeout=dict(type='int'),
        zone=dict(type='str'),
        wildcard=dict(type='bool', default=False),
        dns=dict(type='bool', default=True),
        overwrite_dns=dict(type='bool', default=False),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_params(module)
    TunnelRoute(module).run()


def check_params(module):
    """Refuse a bad value before any call to Cloudflare; normalise the hostname."""
    p = module.params
    hostname = p['hostname']
    if isinstance(hostname, str) and hostname.endswith('.') and not hostname.endswith('..'):
        hostname = hostname[:-1]
    hostname = hostname.lower() if isinstance(hostname, str) else hostname
    problem = domain_name_problem(hostname, wildcard=p['wildcard'], idna=True)
    if problem:
        module.fail_json(msg='hostname %r %s. Nothing was sent to Cloudflare.' % (p['hostname'], problem))
    p['hostname'] = to_a_labels(hostname)[0]
    if p['state'] == 'present':
        problem = service_problem(p['service'])
        if problem:
            module.fail_json(msg='service %r %s. Nothing was sent to Cloudflare.' % (p['service'], problem))
    if not is_tunnel_id(p['tunnel'] or ''):
        problem = tunnel_name_problem(p['tunnel'])
        if problem:
            module.fail_json(msg='tunnel (a tunnel name or id) %s. Nothing was sent to Cloudflare.' % problem)
    if p['zone']:
        zone = p['zone'].rstrip('.').lower()
        problem = domain_name_problem(zone, idna=True)
        if problem:
            module.fail_json(msg='zone %r %s. Nothing was sent to Cloudflare.' % (p['zone'], problem))
        p['zone'] = to_a_labels(zone)[0]
    if p['connect_timeout'] is not None and p['connect_timeout'] < 0:
        module.fail_json(msg='connect_timeout must be 0 or more. Nothing was sent to Cloudflare.')
    if p['ca_pool'] and not p['ca_pool'].startswith('/'):
        module.fail_json(msg='ca_pool must be an absolute path on the connector host. Nothing '
                             'was sent to Cloudflare.')


if __name__ == '__main__':
    main()
