# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils file is PRIVATE to the selfhost.mastodon collection. It can change at
# any time; do not import it from other collections.

"""The one Cloudflare v4 API client of the collection.

It owns authentication (Bearer API token), the Cloudflare envelope (success, errors,
messages, result, result_info), pagination, retries (429 with Retry-After, 5xx and
connection errors with capped exponential backoff, all within one time budget per module
run) and error texts that say which call failed, what Cloudflare answered and how long the
client waited. Modules call the endpoint methods at the end of the class and never build
URLs themselves.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.selfhost.mastodon.plugins.module_utils._validate import account_id_problem, number_problem

try:
    import requests
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

DEFAULT_API_URL = 'https://api.cloudflare.com/client/v4'

# Permission names as the Cloudflare dashboard shows them when creating an API token.
PERM_TUNNEL = 'Account / Cloudflare Tunnel / Edit'
PERM_ZONE_READ = 'Zone / Zone / Read'
PERM_DNS = 'Zone / DNS / Edit'

# Error codes Cloudflare uses for authentication and authorisation failures. (1001 is
# "Invalid request": a malformed call, never a token problem.)
AUTH_ERROR_CODES = frozenset([1000, 6003, 6111, 9103, 9106, 9109, 10000, 10001])
# Codes that say the request itself was malformed: explained as such, never as a permission.
CODES_INVALID_REQUEST = frozenset([1001, 7000, 7003])
# 1013: a tunnel with this name already exists; 1022: tunnel still has active connections;
# 81053: a DNS record with that name already exists (A/AAAA/CNAME conflict); 81057: the same
# record already exists; 81058: an identical record already exists. After a lost answer to a
# create that reached Cloudflare, the retry gets one of these: the record is then adopted if
# it is ours.
CODE_TUNNEL_NAME_TAKEN = 1013
CODE_TUNNEL_ACTIVE_CONNECTIONS = 1022
CODE_DNS_CONFLICT = 81053
CODES_DNS_EXISTS = (81053, 81057, 81058)
CODES_NOT_FOUND = frozenset([1003, 81044, 7003])

TUNNEL_ID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')


def cloudflare_argument_spec():
    """Options shared by every module of the collection that talks to Cloudflare.

    Documented in the ``selfhost.mastodon.cloudflare`` doc fragment.
    """
    return dict(
        api_token=dict(type='str', required=True, no_log=True,
                       fallback=(env_fallback, ['CLOUDFLARE_API_TOKEN'])),
        account_id=dict(type='str', required=True,
                        fallback=(env_fallback, ['CLOUDFLARE_ACCOUNT_ID'])),
        api_url=dict(type='str', default=DEFAULT_API_URL,
                     fallback=(env_fallback, ['CLOUDFLARE_API_URL'])),
        timeout=dict(type='float', default=30),
        retry_budget=dict(type='float', default=60),
        retry_max_wait=dict(type='float', default=30),
    )


def is_tunnel_id(value):
    return bool(value) and bool(TUNNEL_ID_RE.fullmatch(value.lower()))


def tunnel_cname_target(tunnel_id):
    return '%s.cfargotunnel.com' % tunnel_id


def locally_managed_msg(tunnel, tunnel_id=None):
    """The one refusal for a locally managed tunnel (created with ``cloudflared tunnel create``,
    config_src local): its configuration lives on the connector host, not in Cloudflare."""
    return ('Tunnel %s%s is locally managed (created with "cloudflared tunnel create", config_src '
            'local): its ingress rules live in config.yml on the connector host, not in '
            'Cloudflare. These modules manage only remotely managed tunnels; rename or delete '
            'that tunnel.' % (tunnel, ' (id %s)' % tunnel_id if tunnel_id else ''))


class CloudflareError(Exception):
    """A Cloudflare API call failed (after any retries)."""

    def __init__(self, msg, call=None, status=None, errors=None, waited=0.0, attempts=1):
        super(CloudflareError, self).__init__(msg)
        self.msg = msg
        self.call = call
        self.status = status
        self.errors = errors or []
        self.waited = waited
        self.attempts = attempts

    @property
    def codes(self):
        return [e.get('code') for e in self.errors if isinstance(e, dict)]

    def has_code(self, *codes):
        return any(c in codes for c in self.codes)

    @property
    def is_invalid_request(self):
        return any(c in CODES_INVALID_REQUEST for c in self.codes)

    @property
    def is_auth_error(self):
        if self.is_invalid_request:
            return False
        return self.status in (401, 403) or any(c in AUTH_ERROR_CODES for c in self.codes)

    @property
    def is_not_found(self):
        return self.status == 404 or any(c in CODES_NOT_FOUND for c in self.codes)

    def __str__(self):
        return self.msg


def _format_errors(errors):
    parts = []
    for err in errors or []:
        if isinstance(err, dict):
            code = err.get('code')
            message = err.get('message', '')
            parts.append('[%s] %s' % (code, message) if code is not None else str(message))
        else:
            parts.append(str(err))
    return '; '.join(parts)


def _connection_detail(exc):
    """Short text for a requests exception: its class and the innermost reason."""
    text = str(exc)
    match = re.search(r'(\[Errno -?\d+\][^\'")]*)', text)
    if match:
        return '%s (%s)' % (exc.__class__.__name__, match.group(1).strip())
    if 'timed out' in text.lower():
        return '%s (timed out)' % exc.__class__.__name__
    return exc.__class__.__name__


class CloudflareClient(object):
    """Cloudflare v4 API client used by the selfhost.mastodon modules.

    ``sleep`` and ``clock`` are class attributes so that unit tests can replace them and
    check retry timing without waiting.
    """

    sleep = staticmethod(time.sleep)
    clock = staticmethod(time.monotonic)

    # Backoff for 5xx answers and connection errors: BACKOFF_BASE * 2**n seconds, capped
    # by the retry_max_wait option.
    BACKOFF_BASE = 1.0
    # Retry-After missing or unreadable on a 429: wait this long (capped like backoff).
    DEFAULT_RETRY_AFTER = 5.0
    PER_PAGE_TUNNELS = 100
    PER_PAGE_ZONES = 50
    PER_PAGE_DNS = 100

    def __init__(self, api_token, account_id, api_url=DEFAULT_API_URL, timeout=30,
                 retry_budget=60, retry_max_wait=30, user_agent='selfhost.mastodon'):
        if not HAS_REQUESTS:
            raise CloudflareError('The Python library requests is required')
        self.api_token = api_token
        self.account_id = account_id
        self.api_url = (api_url or DEFAULT_API_URL).rstrip('/')
        self.timeout = timeout
        self.retry_budget = float(retry_budget)
        self.retry_max_wait = float(retry_max_wait)
        # Seconds spent waiting for retries during this run (shared budget).
        self.waited = 0.0
        self.request_count = 0
        self.session = requests.Session()
        self.session.headers.update({
            'Authorization': 'Bearer %s' % api_token,
            'Accept': 'application/json',
            'User-Agent': user_agent,
        })

    # ------------------------------------------------------------------ transport

    def _url(self, path):
        return self.api_url + path

    @staticmethod
    def _describe(method, path, query):
        if query:
            q = '&'.join('%s=%s' % (k, v) for k, v in sorted(query.items()))
            return '%s %s?%s' % (method, path, q)
        return '%s %s' % (method, path)

    def _parse_retry_after(self, value):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None
        return max(seconds, 0.0)

    def request(self, method, path, what, query=None, body=None, expect_envelope=True):
        """Send one API call with retries; return the decoded envelope.

        ``what`` is a short human description of the call used in error messages.
        Raises CloudflareError when the call fails after retries or Cloudflare answers
        success=false.
        """
        call = '%s (%s)' % (what, self._describe(method, path, query))
        attempts = 0
        backoff_step = 0
        while True:
            attempts += 1
            retry_reason = None
            wait = None
            response = None
            try:
                self.request_count += 1
                kwargs = dict(params=query, timeout=self.timeout)
                if body is not None:
                    kwargs['data'] = json.dumps(body)
                    kwargs['headers'] = {'Content-Type': 'application/json'}
                response = self.session.request(method, self._url(path), **kwargs)
            except requests.exceptions.RequestException as exc:
                retry_reason = 'connection error: %s' % _connection_detail(exc)
                wait = min(self.BACKOFF_BASE * (2 ** backoff_step), self.retry_max_wait)
                backoff_step += 1
            else:
                if response.status_code == 429:
                    retry_after = self._parse_retry_after(response.headers.get('Retry-After'))
                    if retry_after is None:
                        retry_after = min(self.DEFAULT_RETRY_AFTER, self.retry_max_wait)
                    retry_reason = 'HTTP 429 rate limited (Retry-After: %s)' % (
                        response.headers.get('Retry-After', 'not given'))
                    wait = retry_after
                elif response.status_code >= 500:
                    retry_reason = 'HTTP %s' % response.status_code
                    wait = min(self.BACKOFF_BASE * (2 ** backoff_step), self.retry_max_wait)
                    backoff_step += 1

            if retry_reason is None:
                return self._decode(response, call, attempts, expect_envelope)

            remaining = self.retry_budget - self.waited
            if wait > remaining:
                errors = []
                if response is not None:
                    errors = self._errors_from(response)
                detail = ''
                if errors:
                    detail = ' Cloudflare answered: %s.' % _format_errors(errors)
                raise CloudflareError(
                    'Cloudflare API call %s failed: %s.%s Gave up after %d attempt(s) and '
                    '%.1f s of waiting: the next wait (%.1f s) would exceed the retry budget '
                    '(retry_budget=%.0f s, %.1f s left).'
                    % (call, retry_reason, detail, attempts, self.waited, wait,
                       self.retry_budget, max(remaining, 0.0)),
                    call=call, status=response.status_code if response is not None else None,
                    errors=errors, waited=self.waited, attempts=attempts)
            if wait > 0:
                self.sleep(wait)
            self.waited += wait

    @staticmethod
    def _errors_from(response):
        try:
            data = response.json()
        except ValueError:
            return []
        if isinstance(data, dict):
            return data.get('errors') or []
        return []

    def _decode(self, response, call, attempts, expect_envelope):
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or 'success' not in data:
            if 200 <= response.status_code < 300 and not expect_envelope:
                return {'success': True, 'result': data, 'errors': [], 'messages': []}
            text = (response.text or '')[:200]
            raise CloudflareError(
                'Cloudflare API call %s failed: HTTP %s without a Cloudflare JSON envelope '
                '(body starts: %r)%s.' % (call, response.status_code, text, self._waited_note()),
                call=call, status=response.status_code, waited=self.waited, attempts=attempts)
        if not data.get('success') or response.status_code >= 400:
            errors = data.get('errors') or []
            raise CloudflareError(
                'Cloudflare API call %s failed: HTTP %s, Cloudflare errors: %s%s.'
                % (call, response.status_code, _format_errors(errors) or 'none given',
                   self._waited_note()),
                call=call, status=response.status_code, errors=errors, waited=self.waited,
                attempts=attempts)
        return data

    def _waited_note(self):
        if self.waited:
            return ' (after %.1f s of retry waits)' % self.waited
        return ''

    def paginate(self, path, what, query=None, per_page=50):
        """Return every result of a paged list call, following result_info."""
        results = []
        page = 1
        while True:
            q = dict(query or {})
            q['page'] = page
            q['per_page'] = per_page
            data = self.request('GET', path, what, query=q)
            chunk = data.get('result') or []
            results.extend(chunk)
            info = data.get('result_info') or {}
            total_pages = info.get('total_pages')
            if total_pages is None:
                total_count = info.get('total_count')
                if total_count is not None and info.get('per_page'):
                    total_pages = -(-int(total_count) // int(info['per_page']))
            if total_pages is not None:
                if page >= int(total_pages):
                    break
            elif len(chunk) < per_page:
                break
            if not chunk:
                break
            page += 1
        return results

    # ------------------------------------------------------------------ token check

    def explain_auth_failure(self, error, permission):
        """Return a sentence saying why a call was refused: bad token or missing permission.

        Called only after a call failed with an auth/permission error, so that a healthy
        run never pays for a token verification request.
        """
        status = None
        where = None
        verify_errors = []
        for path, label in (('/user/tokens/verify', 'user token'),
                            ('/accounts/%s/tokens/verify' % self.account_id,
                             'account-owned token')):
            try:
                data = self.request('GET', path, 'verify the API token')
            except CloudflareError as exc:
                verify_errors.append('%s: %s' % (path, _format_errors(exc.errors) or
                                                 'HTTP %s' % exc.status))
                continue
            status = (data.get('result') or {}).get('status')
            where = label
            break
        if status is None:
            return ('The API token is invalid: Cloudflare accepted it neither as a user token '
                    'nor as an account-owned token of account %s (%s). Create a new token '
                    'and pass it as api_token or CLOUDFLARE_API_TOKEN.'
                    % (self.account_id, '; '.join(verify_errors)))
        if status != 'active':
            return 'The API token (%s) is %s; enable it or create a new one.' % (where, status)
        return ('The API token is a valid, active %s, so it lacks a permission: give it '
                '"%s" (for account %s and the zone of the hostname).'
                % (where, permission, self.account_id))

    # ------------------------------------------------------------------ endpoints

    def _tunnels_path(self, tunnel_id=None, suffix=''):
        path = '/accounts/%s/cfd_tunnel' % self.account_id
        if tunnel_id:
            path += '/%s' % tunnel_id
        return path + suffix

    def list_tunnels(self, name=None):
        """Non-deleted tunnels (optionally only those named ``name``)."""
        query = {'is_deleted': 'false'}
        if name is not None:
            query['name'] = name
        tunnels = self.paginate(self._tunnels_path(), 'list tunnels', query=query,
                                per_page=self.PER_PAGE_TUNNELS)
        result = [t for t in tunnels if not t.get('deleted_at')]
        if name is not None:
            result = [t for t in result if t.get('name') == name]
        return result

    def get_tunnel(self, tunnel_id):
        return self.request('GET', self._tunnels_path(tunnel_id), 'get tunnel')['result']

    def create_tunnel(self, name):
        return self.request('POST', self._tunnels_path(), 'create tunnel',
                            body={'name': name, 'config_src': 'cloudflare'})['result']

    def get_tunnel_token(self, tunnel_id):
        return self.request('GET', self._tunnels_path(tunnel_id, '/token'),
                            'get tunnel token')['result']

    def delete_tunnel_connections(self, tunnel_id):
        return self.request('DELETE', self._tunnels_path(tunnel_id, '/connections'),
                            'clean up tunnel connections', body={})

    def delete_tunnel(self, tunnel_id):
        return self.request('DELETE', self._tunnels_path(tunnel_id), 'delete tunnel', body={})

    def remove_tunnel(self, tunnel_id):
        """Clean up the tunnel's connections, then delete it.

        While Cloudflare answers 1022 (the tunnel still has active connections, for example
        because a connector reconnected), clean up and try again with capped exponential
        backoff, within the same retry budget as every other call. Returns False when the
        tunnel was already gone.
        """
        step = 0
        while True:
            try:
                self.delete_tunnel_connections(tunnel_id)
                self.delete_tunnel(tunnel_id)
                return True
            except CloudflareError as exc:
                if exc.is_not_found:
                    return False
                if not exc.has_code(CODE_TUNNEL_ACTIVE_CONNECTIONS):
                    raise
                wait = min(self.BACKOFF_BASE * (2 ** step), self.retry_max_wait)
                step += 1
                if wait > self.retry_budget - self.waited:
                    raise CloudflareError(
                        '%s The tunnel still has active connections after %.1f s of waiting '
                        '(retry_budget=%.0f s): stop every cloudflared connector that runs '
                        'this tunnel, then run again.' % (exc.msg, self.waited, self.retry_budget),
                        call=exc.call, status=exc.status, errors=exc.errors, waited=self.waited)
                self.sleep(wait)
                self.waited += wait

    def get_tunnel_config(self, tunnel_id):
        return self.request('GET', self._tunnels_path(tunnel_id, '/configurations'),
                            'get tunnel configuration')['result'] or {}

    def put_tunnel_config(self, tunnel_id, config):
        return self.request('PUT', self._tunnels_path(tunnel_id, '/configurations'),
                            'update tunnel configuration', body={'config': config})['result']

    def find_zone(self, hostname, zone=None):
        """Return the zone for ``hostname``.

        With ``zone`` given, look up exactly that zone. Otherwise pick the longest zone of
        the account that the hostname falls in, using one suffix query
        (``name=ends_with:<last two labels>``); if the server does not support that filter
        operator, fall back to exact-name queries from the longest candidate down.
        """
        hostname = hostname.rstrip('.').lower()
        base = {'account.id': self.account_id}
        if zone:
            zone = zone.rstrip('.').lower()
            query = dict(base, name=zone)
            found = [z for z in self.paginate('/zones', 'find zone', query=query,
                                              per_page=self.PER_PAGE_ZONES)
                     if z.get('name', '').lower() == zone]
            if not found:
                return None
            if hostname != zone and not hostname.endswith('.' + zone):
                raise CloudflareError('Hostname %s is not inside zone %s.' % (hostname, zone))
            return found[0]

        labels = hostname.split('.')
        candidates = ['.'.join(labels[i:]) for i in range(len(labels) - 1)]
        suffix = '.'.join(labels[-2:])
        query = dict(base, name='ends_with:%s' % suffix)
        zones = self.paginate('/zones', 'find zone', query=query, per_page=self.PER_PAGE_ZONES)
        best = self._longest(zones, candidates)
        if best is not None:
            return best
        for candidate in candidates:
            query = dict(base, name=candidate)
            zones = self.paginate('/zones', 'find zone', query=query,
                                  per_page=self.PER_PAGE_ZONES)
            best = self._longest(zones, candidates)
            if best is not None:
                return best
        return None

    @staticmethod
    def _longest(zones, candidates):
        by_name = dict((z.get('name', '').lower(), z) for z in zones)
        for candidate in candidates:  # longest first
            if candidate in by_name:
                return by_name[candidate]
        return None

    def list_dns_records(self, zone_id, name):
        records = self.paginate('/zones/%s/dns_records' % zone_id, 'list DNS records',
                                query={'name': name}, per_page=self.PER_PAGE_DNS)
        return [r for r in records if r.get('name', '').lower() == name.lower()]

    def create_dns_record(self, zone_id, record):
        return self.request('POST', '/zones/%s/dns_records' % zone_id, 'create DNS record',
                            body=record)['result']

    def update_dns_record(self, zone_id, record_id, record):
        return self.request('PUT', '/zones/%s/dns_records/%s' % (zone_id, record_id),
                            'overwrite DNS record', body=record)['result']

    def delete_dns_record(self, zone_id, record_id):
        return self.request('DELETE', '/zones/%s/dns_records/%s' % (zone_id, record_id),
                            'delete DNS record')

    def batch_dns_records(self, zone_id, deletes=(), puts=(), posts=()):
        """One POST /zones/{zone_id}/dns_records/batch: Cloudflare runs it in one database
        transaction (all or nothing), deletes first, then patches, puts and posts, so a CNAME
        can take the place of the A/AAAA records of its name without a moment with neither.
        ``puts`` are (record id, record) pairs."""
        body = {}
        if deletes:
            body['deletes'] = [{'id': record_id} for record_id in deletes]
        if puts:
            body['puts'] = [dict(record, id=record_id) for record_id, record in puts]
        if posts:
            body['posts'] = list(posts)
        return self.request('POST', '/zones/%s/dns_records/batch' % zone_id,
                            'replace DNS records in one batch', body=body)['result'] or {}

    # ------------------------------------------------------------------ R2 (object storage)
    # Cloudflare API reference, R2: POST/GET /accounts/{account_id}/r2/buckets,
    # GET/DELETE .../r2/buckets/{bucket_name}, GET/POST .../{bucket_name}/domains/custom,
    # GET/PUT/DELETE .../domains/custom/{domain}. Bodies: {name, locationHint, storageClass}
    # for a bucket; {domain, zoneId, enabled, minTLS} for a custom domain. The jurisdiction
    # travels in the cf-r2-jurisdiction header (as cloudflare-python sends it).

    def _r2_path(self, bucket=None, suffix=''):
        path = '/accounts/%s/r2/buckets' % self.account_id
        if bucket:
            path += '/%s' % bucket
        return path + suffix

    def _r2_call(self, jurisdiction, method, path, what, body=None):
        """One R2 call; ``jurisdiction`` other than default goes in the cf-r2-jurisdiction header."""
        if not jurisdiction or jurisdiction == 'default':
            return self.request(method, path, what, body=body)
        self.session.headers[R2_JURISDICTION_HEADER] = jurisdiction
        try:
            return self.request(method, path, '%s (jurisdiction %s)' % (what, jurisdiction),
                                body=body)
        finally:
            self.session.headers.pop(R2_JURISDICTION_HEADER, None)

    def get_r2_bucket(self, name, jurisdiction=None):
        """The bucket, or None when Cloudflare answers that it does not exist."""
        try:
            return self._r2_call(jurisdiction, 'GET', self._r2_path(name),
                                 'get R2 bucket')['result']
        except CloudflareError as exc:
            if exc.has_code(CODE_R2_NO_SUCH_BUCKET) and not exc.is_auth_error:
                return None
            raise

    def create_r2_bucket(self, name, location_hint=None, storage_class=None, jurisdiction=None):
        body = {'name': name}
        if location_hint:
            body['locationHint'] = location_hint
        if storage_class:
            body['storageClass'] = storage_class
        return self._r2_call(jurisdiction, 'POST', self._r2_path(), 'create R2 bucket',
                             body=body)['result']

    def delete_r2_bucket(self, name, jurisdiction=None):
        return self._r2_call(jurisdiction, 'DELETE', self._r2_path(name), 'delete R2 bucket')

    def list_r2_custom_domains(self, name, jurisdiction=None):
        result = self._r2_call(jurisdiction, 'GET', self._r2_path(name, '/domains/custom'),
                               'list custom domains of R2 bucket')['result'] or {}
        return result.get('domains') or []

    def create_r2_custom_domain(self, name, domain, zone_id, enabled, min_tls,
                                jurisdiction=None):
        body = {'domain': domain, 'zoneId': zone_id, 'enabled': enabled}
        if min_tls:
            body['minTLS'] = min_tls
        return self._r2_call(jurisdiction, 'POST', self._r2_path(name, '/domains/custom'),
                             'connect custom domain to R2 bucket', body=body)['result']

    def update_r2_custom_domain(self, name, domain, enabled, min_tls, jurisdiction=None):
        body = {'enabled': enabled}
        if min_tls:
            body['minTLS'] = min_tls
        return self._r2_call(jurisdiction, 'PUT',
                             self._r2_path(name, '/domains/custom/%s' % domain),
                             'update custom domain of R2 bucket', body=body)['result']

    def delete_r2_custom_domain(self, name, domain, jurisdiction=None):
        return self._r2_call(jurisdiction, 'DELETE',
                             self._r2_path(name, '/domains/custom/%s' % domain),
                             'disconnect custom domain from R2 bucket')


def zone_status_problem(zone):
    """Why a zone cannot carry a route yet ('' when it is active and not paused).

    Cloudflare answers for a zone's names only once the zone is active: a zone still
    ``initializing`` or ``pending`` waits for the registrar to name Cloudflare's nameservers,
    a ``moved`` zone's nameservers point elsewhere again, a ``deactivated`` or ``read only``
    zone serves nothing, and a paused zone does not proxy, so a tunnel's CNAME would not work.
    """
    name = zone.get('name')
    status = zone.get('status') or 'unknown'
    if status == 'active' and not zone.get('paused'):
        return ''
    if status == 'active':
        return ('Zone %s is paused at Cloudflare (it answers DNS only and proxies nothing, so '
                'a tunnel route would not work): resume it in the dashboard (zone Overview, '
                '"Resume Cloudflare") and run again. Nothing was changed.' % name)
    hints = {
        'initializing': 'its set-up at Cloudflare is not finished',
        'pending': "its registrar does not name Cloudflare's nameservers (%s) yet"
                   % (', '.join(zone.get('name_servers') or []) or 'see the zone Overview'),
        'moved': "its nameservers no longer point at Cloudflare's",
        'deactivated': 'Cloudflare deactivated it',
    }
    return ('Zone %s is %s at Cloudflare, not active: %s. Cloudflare answers for its names '
            'only once it is active; finish its activation (dashboard, zone Overview) and run '
            'again. Nothing was changed.' % (name, status, hints.get(status, 'it serves nothing')))


class CloudflareModuleHelper(object):
    """Glue between an AnsibleModule and the client: builds it, turns errors into fail_json."""

    def __init__(self, module):
        self.module = module
        p = module.params
        # Local checks before any call: a malformed account id would otherwise come back as
        # an unexplained 403/404 from Cloudflare.
        problem = account_id_problem(p['account_id'])
        if problem:
            module.fail_json(msg='account_id %s. Nothing was sent to Cloudflare.' % problem)
        if not re.fullmatch(r'https?://[^\s/]+(/[^\s]*)?', p['api_url'] or ''):
            module.fail_json(msg='api_url must be an http(s) URL such as %s. Nothing was sent to '
                                 'Cloudflare.' % DEFAULT_API_URL)
        if not p['api_token'] or any(c.isspace() for c in p['api_token']):
            module.fail_json(msg='api_token is empty or holds spaces (its value is not shown). '
                                 'Nothing was sent to Cloudflare.')
        for option, low, high in (('timeout', 0.001, 3600), ('retry_budget', 0, 86400),
                                  ('retry_max_wait', 0, 3600)):
            problem = number_problem(p[option], low, high, integer=False)
            if problem:
                module.fail_json(msg='%s %s (seconds). Nothing was sent to Cloudflare.'
                                     % (option, problem))
        if not HAS_REQUESTS:
            module.fail_json(msg=missing_required_lib('requests'),
                             exception=REQUESTS_IMPORT_ERROR)
        self.client = CloudflareClient(
            api_token=p['api_token'], account_id=p['account_id'], api_url=p['api_url'],
            timeout=p['timeout'], retry_budget=p['retry_budget'],
            retry_max_wait=p['retry_max_wait'])

    def call(self, permission, func, *args, **kwargs):
        """Run one client call; on failure explain it and fail the module."""
        try:
            return func(*args, **kwargs)
        except CloudflareError as exc:
            self.fail(exc, permission)

    def require_zone(self, hostname, zone=None, why='Add the zone to the account'):
        """The account's zone that holds hostname; fails the module when there is none."""
        try:
            found = self.client.find_zone(hostname, zone)
        except CloudflareError as exc:
            if exc.call is None:
                self.module.fail_json(msg=exc.msg)
            self.fail(exc, PERM_ZONE_READ)
        if found is None:
            self.module.fail_json(
                msg='No zone of account %s contains %s%s. %s, or give the token "%s" on it '
                    '(Cloudflare lists only zones the token may read).'
                    % (self.client.account_id, hostname,
                       ' (looked for zone %s)' % zone if zone else '', why, PERM_ZONE_READ))
        problem = zone_status_problem(found)
        if problem:
            self.module.fail_json(msg=problem, zone=dict(id=found.get('id'), name=found.get('name'),
                                                         status=found.get('status')))
        return found

    def fail(self, exc, permission=None, **result):
        msg = exc.msg
        if exc.is_invalid_request:
            msg = ('%s Cloudflare refused the request itself as malformed (not a token '
                   'permission problem): check the values given to the module.' % msg)
        elif permission and exc.is_auth_error:
            try:
                msg = '%s %s' % (msg, self.client.explain_auth_failure(exc, permission))
            except CloudflareError as verify_exc:  # pragma: no cover - defensive
                msg = '%s (verifying the token failed too: %s)' % (msg, verify_exc.msg)
        result.setdefault('changed', False)
        self.module.fail_json(msg=msg, cloudflare_errors=exc.errors,
                              api_requests=self.client.request_count,
                              retry_waited=round(self.client.waited, 1), **result)


# ---------------------------------------------------------------------- R2 (object storage)

PERM_R2 = 'Account / Workers R2 Storage / Edit'
R2_JURISDICTION_HEADER = 'cf-r2-jurisdiction'
R2_JURISDICTIONS = ('default', 'eu', 'fedramp', 'us')
R2_LOCATION_HINTS = ('apac', 'eeur', 'enam', 'weur', 'wnam', 'oc')
R2_STORAGE_CLASSES = ('Standard', 'InfrequentAccess')
R2_MIN_TLS = ('1.0', '1.1', '1.2', '1.3')
# R2's codes (developers.cloudflare.com/r2/api/error-codes): 10004 the bucket already exists
# (and you own it), 10006 no such bucket, 10008 the bucket is not empty.
CODE_R2_BUCKET_EXISTS = 10004
CODE_R2_NO_SUCH_BUCKET = 10006
CODE_R2_BUCKET_NOT_EMPTY = 10008

R2_BUCKET_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$')


def r2_bucket_name_problem(name):
    """Why ``name`` is not a valid R2 bucket name, or None when it is.

    R2's rule: 3 to 63 characters, lowercase letters, digits and hyphens, starting and
    ending with a letter or digit.
    """
    if not isinstance(name, str) or not name:
        return 'the name is empty'
    if not 3 <= len(name) <= 63:
        return 'it has %d characters; R2 bucket names have 3 to 63' % len(name)
    bad = sorted(set(c for c in name if not (c.isdigit() or ('a' <= c <= 'z') or c == '-')))
    if bad:
        return ('it contains %s; only lowercase letters, digits and hyphens are allowed'
                % ', '.join(repr(c) for c in bad))
    if name.startswith('-') or name.endswith('-'):
        return 'it starts or ends with a hyphen'
    if not R2_BUCKET_NAME_RE.fullmatch(name):  # pragma: no cover - covered by the checks above
        return 'it does not match %s' % R2_BUCKET_NAME_RE.pattern
    return None


def r2_s3_endpoint(account_id, jurisdiction=None):
    """The S3 API endpoint of an account's R2 buckets (per jurisdiction)."""
    if jurisdiction and jurisdiction != 'default':
        return 'https://%s.%s.r2.cloudflarestorage.com' % (account_id, jurisdiction)
    return 'https://%s.r2.cloudflarestorage.com' % account_id
