#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cloudflare_r2_bucket
short_description: Manage a Cloudflare R2 bucket and its public custom domain
version_added: 0.1.0
description:
  - Creates or deletes an R2 (object storage) bucket in a Cloudflare account, and connects a
    custom domain of a zone of the account to it, so that the objects are served publicly at
    C(https://<custom domain>/<key>). This is where Mastodon keeps its media once
    C(S3_ENABLED=true) (see the examples and the notes).
  - The bucket is looked up by name in the given O(jurisdiction); only the custom domain's
    settings (O(custom_domain_enabled), O(min_tls)) can change on an existing bucket.
    O(location_hint) and O(storage_class) apply when the bucket is created; a bucket that
    differs is reported in a warning, not recreated.
  - Every read happens before the first write. A no-op run sends two requests (the bucket
    and its custom domains); a zone lookup is added when a custom domain has to be connected.
  - The module never deletes objects. Deleting a bucket that still holds objects fails with
    Cloudflare's error 10008.
author:
  - selfhost.mastodon developers (@selfhost-mastodon)
extends_documentation_fragment:
  - selfhost.mastodon.cloudflare
  - selfhost.mastodon.cloudflare.attributes
options:
  name:
    description:
      - Name of the bucket.
      - R2's rule is checked before any request is sent - 3 to 63 characters, lowercase
        letters, digits and hyphens, starting and ending with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) creates the bucket if needed and connects O(custom_domain).
      - V(absent) disconnects the bucket's custom domains, then deletes the bucket. The bucket
        must be empty.
    type: str
    choices: [present, absent]
    default: present
  jurisdiction:
    description:
      - R2 jurisdiction of the bucket (data residency). A bucket exists in exactly one
        jurisdiction, fixed at creation; the same name can exist once per jurisdiction.
      - Sent as the C(cf-r2-jurisdiction) header, as Cloudflare's SDKs do.
    type: str
    choices: [default, eu, fedramp, us]
    default: default
  location_hint:
    description:
      - Where the bucket should be placed when it is created (best effort, Cloudflare's
        C(locationHint)).
      - Not set means Cloudflare chooses a location close to where the request comes from.
    type: str
    choices: [apac, eeur, enam, weur, wnam, oc]
  storage_class:
    description:
      - Default storage class for new objects, set when the bucket is created.
      - Not set means Cloudflare's default, C(Standard).
    type: str
    choices: [Standard, InfrequentAccess]
  custom_domain:
    description:
      - Public hostname that serves the bucket's objects, for example V(media.example.org).
        It must lie in a zone of the same account (Cloudflare adds the DNS record and the
        certificate itself).
      - Not set means leave the bucket's custom domains as they are.
    type: str
  custom_domain_zone:
    description:
      - Name of the zone of O(custom_domain).
      - By default the longest zone of the account that O(custom_domain) falls in.
      - A custom domain that is connected through another zone is disconnected and connected
        again through this one (the API cannot move it).
    type: str
  custom_domain_enabled:
    description:
      - Whether the bucket is publicly readable at O(custom_domain).
    type: bool
    default: true
  min_tls:
    description:
      - Minimum TLS version visitors of O(custom_domain) must speak.
      - Cloudflare's own default is V(1.0); this module asks for V(1.2) unless told otherwise.
    type: str
    choices: ['1.0', '1.1', '1.2', '1.3']
    default: '1.2'
  purge_custom_domains:
    description:
      - Disconnect every custom domain of the bucket other than O(custom_domain).
      - Use it when the media hostname changes, so that the old hostname stops serving media.
    type: bool
    default: false
notes:
  - The API token needs C(Account / Workers R2 Storage / Edit) on the account, and
    C(Zone / Zone / Read) on the zone of O(custom_domain) when one has to be connected.
  - Mastodon reads media from R2 through its S3 settings. Create an R2 API token ("Manage R2
    API Tokens", permission C(Object Read & Write) on this bucket); its access key id and
    secret are C(AWS_ACCESS_KEY_ID) and C(AWS_SECRET_ACCESS_KEY). Then set C(S3_ENABLED=true),
    C(S3_BUCKET=<name>), C(S3_ENDPOINT=https://<account_id>.r2.cloudflarestorage.com) (RV(s3_env)
    has it, with the jurisdiction), C(S3_ALIAS_HOST=<custom domain>), C(S3_REGION=auto),
    C(S3_PROTOCOL=https) and C(S3_PERMISSION=) (empty, because R2 has no object ACLs).
  - "Moving existing media: before switching C(S3_ENABLED) on, copy
    C(/home/mastodon/live/public/system) into the bucket, for example
    C(rclone copy /home/mastodon/live/public/system r2:<bucket>) (an rclone remote of type
    s3, provider Cloudflare, with the endpoint above) or
    C(aws s3 sync /home/mastodon/live/public/system s3://<bucket> --endpoint-url
    https://<account_id>.r2.cloudflarestorage.com). Then set the S3 variables, restart
    Mastodon's web, streaming and Sidekiq services, run the copy once more to catch files
    written meanwhile, and keep the local copy until the site shows old media from
    C(https://<custom domain>/)."
seealso:
  - name: Mastodon documentation, configuring object storage
    description: Mastodon's S3 settings.
    link: https://docs.joinmastodon.org/admin/optional/object-storage/
  - name: Cloudflare R2, public buckets and custom domains
    description: How a custom domain serves a bucket.
    link: https://developers.cloudflare.com/r2/buckets/public-buckets/
'''

EXAMPLES = r'''
- name: Create the media bucket and serve it at media.example.org
  selfhost.mastodon.cloudflare_r2_bucket:
    name: mastodon-media
    custom_domain: media.example.org
    location_hint: weur
    account_id: "{{ cloudflare_account_id }}"
    api_token: "{{ vault_cloudflare_api_token }}"
  register: media_bucket

- name: Show the S3 settings Mastodon needs (add the R2 API token's key pair yourself)
  ansible.builtin.debug:
    msg: "{{ media_bucket.s3_env }}"

# The same settings written out, for .env.production (or the inventory of the role that
# writes it). R2 has no ACLs, hence the empty S3_PERMISSION.
#   S3_ENABLED=true
#   S3_BUCKET=mastodon-media
#   S3_ENDPOINT=https://<account_id>.r2.cloudflarestorage.com
#   S3_ALIAS_HOST=media.example.org
#   S3_REGION=auto
#   S3_PROTOCOL=https
#   S3_PERMISSION=
#   AWS_ACCESS_KEY_ID=<access key id of an R2 API token>
#   AWS_SECRET_ACCESS_KEY=<its secret access key>

- name: Move the media to a new hostname and stop serving the old one
  selfhost.mastodon.cloudflare_r2_bucket:
    name: mastodon-media
    custom_domain: files.example.org
    purge_custom_domains: true
    min_tls: '1.3'

- name: Keep the bucket in the EU jurisdiction
  selfhost.mastodon.cloudflare_r2_bucket:
    name: mastodon-media
    jurisdiction: eu
    custom_domain: media.example.org

- name: Delete the (empty) bucket and its custom domains
  selfhost.mastodon.cloudflare_r2_bucket:
    name: mastodon-media
    state: absent
'''

RETURN = r'''
bucket:
  description: The bucket after the run; V(null) when absent (or not yet created, in check mode).
  returned: always
  type: dict
  sample: {name: mastodon-media, location: weur, storage_class: Standard, jurisdiction: default,
           creation_date: "2026-12-03T08:00:00.000Z"}
custom_domains:
  description: Custom domains of the bucket after the run (as they would be, in check mode),
    sorted by domain.
  returned: always
  type: list
  elements: dict
  contains:
    domain:
      description: The hostname.
      type: str
    enabled:
      description: Whether the bucket is publicly readable there.
      type: bool
    min_tls:
      description: Minimum TLS version.
      type: str
    zone:
      description: Name of the zone the hostname is in.
      type: str
    status:
      description: Cloudflare's C(ownership) and C(ssl) status of the hostname, when known.
      type: dict
  sample: [{domain: media.example.org, enabled: true, min_tls: '1.2', zone: example.org,
            status: {ownership: active, ssl: active}}]
s3_env:
  description:
    - Mastodon's object storage settings for this bucket (without the R2 API token's key
      pair, which this module does not create). V(null) after O(state=absent).
    - C(S3_ALIAS_HOST) is the custom domain when it is enabled (without O(custom_domain), the
      bucket's only enabled custom domain, if it has exactly one).
  returned: always
  type: dict
  sample: {S3_ENABLED: 'true', S3_BUCKET: mastodon-media,
           S3_ENDPOINT: 'https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com',
           S3_ALIAS_HOST: media.example.org, S3_REGION: auto, S3_PROTOCOL: https,
           S3_PERMISSION: ''}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflare import (
    CODE_R2_BUCKET_EXISTS,
    CODE_R2_BUCKET_NOT_EMPTY,
    PERM_R2,
    R2_JURISDICTIONS,
    R2_LOCATION_HINTS,
    R2_MIN_TLS,
    R2_STORAGE_CLASSES,
    CloudflareError,
    CloudflareModuleHelper,
    cloudflare_argument_spec,
    r2_bucket_name_problem,
    r2_s3_endpoint,
)


def bucket_view(bucket):
    if not bucket:
        return None
    return dict((key, bucket.get(key)) for key in
                ('name', 'location', 'storage_class', 'jurisdiction', 'creation_date'))


def domain_view(entry, zone_name=None):
    view = dict(domain=entry.get('domain'), enabled=entry.get('enabled'),
                min_tls=entry.get('minTLS') or '1.0',
                zone=entry.get('zoneName') or zone_name)
    if entry.get('status') is not None:
        view['status'] = entry['status']
    return view


def diff_view(bucket, domains):
    """What the diff shows: the bucket's settings and its domains, without status or dates."""
    if bucket is None:
        return {}
    view = bucket_view(bucket)
    view.pop('creation_date', None)
    view['custom_domains'] = sorted(
        [dict((k, v) for k, v in d.items() if k != 'status') for d in domains],
        key=lambda d: d['domain'])
    return view


class R2Bucket(object):

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.helper = CloudflareModuleHelper(module)
        self.client = self.helper.client
        self.jurisdiction = self.params['jurisdiction']
        self.changed = False

    def fail(self, exc, permission=PERM_R2):
        self.helper.fail(exc, permission, changed=self.changed)

    def call(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CloudflareError as exc:
            self.fail(exc)

    # ---------------------------------------------------------------- reads

    def read(self):
        name = self.params['name']
        bucket = self.call(self.client.get_r2_bucket, name, self.jurisdiction)
        domains = []
        if bucket is not None:
            domains = [domain_view(d) for d in
                       self.call(self.client.list_r2_custom_domains, name, self.jurisdiction)]
        return bucket, domains

    def find_zone(self, hostname):
        return self.helper.require_zone(
            hostname, self.params['custom_domain_zone'],
            why="An R2 custom domain must be in a zone of the bucket's account; add the zone")

    # ---------------------------------------------------------------- run

    def run(self):
        bucket, domains = self.read()
        if self.params['state'] == 'absent':
            self.remove(bucket, domains)
        else:
            self.ensure(bucket, domains)

    def finish(self, bucket, before, after, s3_env):
        diff_before, diff_after = diff_view(*before), diff_view(*after)
        result = dict(changed=self.changed or diff_before != diff_after,
                      bucket=bucket_view(bucket),
                      custom_domains=sorted(after[1], key=lambda d: d['domain']) if bucket else [],
                      s3_env=s3_env)
        if self.module._diff:
            result['diff'] = dict(before=diff_before, after=diff_after)
        self.module.exit_json(**result)

    def remove(self, bucket, domains):
        name = self.params['name']
        before = (bucket, domains)
        if bucket is not None and not self.module.check_mode:
            for entry in domains:
                try:
                    self.client.delete_r2_custom_domain(name, entry['domain'], self.jurisdiction)
                except CloudflareError as exc:
                    if not exc.is_not_found or exc.is_auth_error:
                        self.fail(exc)
                self.changed = True
            try:
                self.client.delete_r2_bucket(name, self.jurisdiction)
            except CloudflareError as exc:
                if exc.has_code(CODE_R2_BUCKET_NOT_EMPTY):
                    self.module.fail_json(
                        msg='%s R2 bucket %s still holds objects; this module never deletes '
                            'objects. Empty it first (for example rclone purge r2:%s), then run '
                            'again.' % (exc.msg, name, name),
                        changed=self.changed, cloudflare_errors=exc.errors)
                if not exc.is_not_found or exc.is_auth_error:
                    self.fail(exc)
            self.changed = True
        self.finish(None, before, (None, []), None)

    def ensure(self, bucket, domains):
        p = self.params
        name = p['name']
        hostname = p['custom_domain']
        before = (bucket, list(domains))

        if bucket is not None:
            self.warn_fixed_settings(bucket)

        # ---- plan the custom domains (everything read; nothing written yet)
        purge = [d for d in domains if p['purge_custom_domains'] and d['domain'] != hostname]
        current = [d for d in domains if d['domain'] == hostname]
        current = current[0] if current else None
        zone = None
        reconnect = False
        if hostname:
            wanted_zone = (p['custom_domain_zone'] or '').rstrip('.').lower()
            if current is None or (wanted_zone and current.get('zone') != wanted_zone):
                zone = self.find_zone(hostname)
                reconnect = current is not None and current.get('zone') != zone['name']
        desired = None
        if hostname:
            desired = dict(domain=hostname, enabled=p['custom_domain_enabled'],
                           min_tls=p['min_tls'],
                           zone=zone['name'] if zone else current.get('zone'))
        update = (current is not None and not reconnect
                  and (current['enabled'], current['min_tls']) != (desired['enabled'],
                                                                   desired['min_tls']))
        create = hostname is not None and (current is None or reconnect)

        after_domains = [d for d in domains if d not in purge and d is not current]
        if desired is not None:
            after_domains.append(dict(desired, status=current.get('status'))
                                 if current is not None and not reconnect else desired)
        after_bucket = bucket or dict(name=name, location=p['location_hint'],
                                      storage_class=p['storage_class'] or 'Standard',
                                      jurisdiction=self.jurisdiction, creation_date=None)

        if not self.module.check_mode:
            if bucket is None:
                after_bucket = self.create_bucket()
            for entry in purge + ([current] if reconnect else []):
                self.disconnect(entry['domain'])
            if update:
                self.call(self.client.update_r2_custom_domain, name, hostname,
                          p['custom_domain_enabled'], p['min_tls'], self.jurisdiction)
                self.changed = True
            if create:
                self.connect(hostname, zone)
        if hostname:
            alias = hostname if p['custom_domain_enabled'] else None
        else:
            alias = self.existing_alias(after_domains)
        self.finish(after_bucket, before, (after_bucket, after_domains), self.s3_env(alias))

    def warn_fixed_settings(self, bucket):
        p = self.params
        hint = p['location_hint']
        if hint and (bucket.get('location') or '').lower() != hint:
            self.module.warn('R2 bucket %s is in location %s, not %s: a location hint applies '
                             'only when a bucket is created.'
                             % (p['name'], bucket.get('location'), hint))
        if p['storage_class'] and bucket.get('storage_class') not in (None, p['storage_class']):
            self.module.warn('R2 bucket %s has storage class %s, not %s: this module sets the '
                             'storage class only when it creates the bucket.'
                             % (p['name'], bucket.get('storage_class'), p['storage_class']))

    @staticmethod
    def existing_alias(domains):
        enabled = [d['domain'] for d in domains if d.get('enabled')]
        return enabled[0] if len(enabled) == 1 else None

    def s3_env(self, alias_host):
        env = dict(S3_ENABLED='true', S3_BUCKET=self.params['name'],
                   S3_ENDPOINT=r2_s3_endpoint(self.client.account_id, self.jurisdiction),
                   S3_REGION='auto', S3_PROTOCOL='https', S3_PERMISSION='')
        if alias_host:
            env['S3_ALIAS_HOST'] = alias_host
        return env

    # ---------------------------------------------------------------- writes

    def create_bucket(self):
        p = self.params
        try:
            created = self.client.create_r2_bucket(p['name'], p['location_hint'],
                                                   p['storage_class'], self.jurisdiction)
        except CloudflareError as exc:
            if not exc.has_code(CODE_R2_BUCKET_EXISTS) or exc.is_auth_error:
                self.fail(exc)
            # A retried create whose first attempt reached Cloudflare, or a bucket made
            # since the read: it is this account's bucket of that name, so adopt it.
            created = self.call(self.client.get_r2_bucket, p['name'], self.jurisdiction)
            if created is None:
                self.fail(exc)
        self.changed = True
        return created

    def disconnect(self, domain):
        try:
            self.client.delete_r2_custom_domain(self.params['name'], domain, self.jurisdiction)
        except CloudflareError as exc:
            if not exc.is_not_found or exc.is_auth_error:
                self.fail(exc)
        self.changed = True

    def connect(self, hostname, zone):
        p = self.params
        try:
            self.client.create_r2_custom_domain(p['name'], hostname, zone['id'],
                                                p['custom_domain_enabled'], p['min_tls'],
                                                self.jurisdiction)
        except CloudflareError as exc:
            if exc.status != 409 or exc.is_auth_error:
                self.fail(exc)
            # Already connected: to this bucket by a retried request (adopt it when the
            # settings match), or to another bucket (say so).
            mine = [d for d in self.call(self.client.list_r2_custom_domains, p['name'],
                                         self.jurisdiction) if d.get('domain') == hostname]
            if not mine:
                self.module.fail_json(
                    msg='%s %s is connected to another R2 bucket (or used by another '
                        'Cloudflare product); disconnect it there first.' % (exc.msg, hostname),
                    changed=self.changed, cloudflare_errors=exc.errors)
            if (mine[0].get('enabled'), mine[0].get('minTLS')) != (p['custom_domain_enabled'],
                                                                   p['min_tls']):
                self.call(self.client.update_r2_custom_domain, p['name'], hostname,
                          p['custom_domain_enabled'], p['min_tls'], self.jurisdiction)
        self.changed = True


def main():
    argument_spec = cloudflare_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        jurisdiction=dict(type='str', default='default', choices=list(R2_JURISDICTIONS)),
        location_hint=dict(type='str', choices=list(R2_LOCATION_HINTS)),
        storage_class=dict(type='str', choices=list(R2_STORAGE_CLASSES)),
        custom_domain=dict(type='str'),
        custom_domain_zone=dict(type='str'),
        custom_domain_enabled=dict(type='bool', default=True),
        min_tls=dict(type='str', default='1.2', choices=list(R2_MIN_TLS)),
        purge_custom_domains=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problem = r2_bucket_name_problem(module.params['name'])
    if problem:
        module.fail_json(msg='%r is not a valid R2 bucket name: %s. R2 bucket names have 3 to 63 '
                             'characters: lowercase letters, digits and hyphens, starting and '
                             'ending with a letter or digit.' % (module.params['name'], problem))
    if module.params['custom_domain'] is not None:
        hostname = module.params['custom_domain'].strip().rstrip('.').lower()
        if '.' not in hostname or '/' in hostname or ':' in hostname:
            module.fail_json(msg='custom_domain must be a hostname such as media.example.org, '
                                 'not %r.' % module.params['custom_domain'])
        module.params['custom_domain'] = hostname
    R2Bucket(module).run()


if __name__ == '__main__':
    main()
