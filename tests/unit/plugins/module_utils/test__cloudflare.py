# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the private Cloudflare client.

Transport details (envelope, pagination, retry timing, error text) are tested against a
scripted HTTP server on 127.0.0.1 that answers a queue of canned responses, so each test
controls exactly what the client sees. Behaviour against Cloudflare's semantics (auth
errors, token verification, zones) is tested against the project's emulator.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import threading

try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
except ImportError:  # pragma: no cover
    BaseHTTPRequestHandler = HTTPServer = None

import pytest

from ansible_collections.selfhost.mastodon.plugins.module_utils._cloudflare import (
    CloudflareClient,
    CloudflareError,
)

ACCOUNT = '0123456789abcdef0123456789abcdef'


def envelope(result=None, success=True, errors=None, result_info=None):
    body = {'success': success, 'errors': errors or [], 'messages': [], 'result': result}
    if result_info is not None:
        body['result_info'] = result_info
    return body


class ScriptedServer(object):
    """HTTP server answering queued (status, body, headers) responses; logs requests."""

    def __init__(self):
        self.responses = []
        self.log = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length) if length else b''
                server.log.append(dict(method=self.command, path=self.path,
                                       auth=self.headers.get('Authorization'),
                                       body=json.loads(raw) if raw else None))
                if not server.responses:
                    status, body, headers = 500, {'unexpected': True}, {}
                else:
                    status, body, headers = server.responses.pop(0)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/client/v4' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def add(self, status, body, headers=None):
        self.responses.append((status, body, headers))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def make_client(url, **kwargs):
    kwargs.setdefault('retry_budget', 60)
    kwargs.setdefault('retry_max_wait', 30)
    return CloudflareClient('test-token', ACCOUNT, api_url=url, timeout=5, **kwargs)


# ------------------------------------------------------------------ envelope

def test_success_envelope_returns_result_and_sends_bearer(server, sleeps):
    server.add(200, envelope({'id': 'abc', 'name': 'blog'}))
    client = make_client(server.url)
    assert client.get_tunnel('abc') == {'id': 'abc', 'name': 'blog'}
    assert server.log[0]['auth'] == 'Bearer test-token'
    assert server.log[0]['path'] == '/client/v4/accounts/%s/cfd_tunnel/abc' % ACCOUNT
    assert sleeps == []


def test_error_envelope_names_call_codes_and_messages(server, sleeps):
    server.add(409, envelope(None, success=False,
                             errors=[{'code': 1013, 'message': 'You already have a tunnel with this name'}]))
    client = make_client(server.url)
    with pytest.raises(CloudflareError) as info:
        client.create_tunnel('blog')
    exc = info.value
    assert exc.codes == [1013]
    assert exc.has_code(1013)
    assert exc.status == 409
    assert 'create tunnel (POST /accounts/%s/cfd_tunnel)' % ACCOUNT in exc.msg
    assert '[1013] You already have a tunnel with this name' in exc.msg
    assert server.log[0]['body'] == {'name': 'blog', 'config_src': 'cloudflare'}
    assert sleeps == []  # a 4xx is not retried


@pytest.mark.parametrize('status, error, call, flag, in_msg', [
    (200, (7003, 'Could not route'), ('get_tunnel', 'x'), 'is_not_found', '[7003] Could not route'),
    (403, (10000, 'Authentication error'), ('list_tunnels', 'blog'), 'is_auth_error',
     'is_deleted=false&name=blog&page=1&per_page=100'),
], ids=['success false with HTTP 200 is an error', 'authentication error'])
def test_error_envelope_is_recognised(server, sleeps, status, error, call, flag, in_msg):
    server.add(status, envelope(None, success=False, errors=[{'code': error[0], 'message': error[1]}]))
    with pytest.raises(CloudflareError) as info:
        getattr(make_client(server.url), call[0])(*call[1:])
    assert getattr(info.value, flag)
    assert in_msg in info.value.msg


def test_body_without_envelope_is_reported(server, sleeps):
    server.add(502, b'<html>Bad gateway</html>')
    server.add(400, b'<html>Bad request</html>')
    with pytest.raises(CloudflareError) as info:
        make_client(server.url).get_tunnel('x')
    assert 'HTTP 400 without a Cloudflare JSON envelope' in info.value.msg
    assert '<html>Bad request' in info.value.msg
    assert sleeps == [1.0]  # the 502 was retried once after 1 s


# ------------------------------------------------------------------ pagination

def test_pagination_follows_total_pages(server, sleeps):
    for page in (1, 2, 3):
        server.add(200, envelope([{'id': 't%d' % page, 'name': 'n%d' % page}],
                                 result_info={'page': page, 'per_page': 1, 'count': 1,
                                              'total_count': 3, 'total_pages': 3}))
    result = make_client(server.url).list_tunnels()
    assert [t['id'] for t in result] == ['t1', 't2', 't3']
    assert [r['path'].split('page=')[1].split('&')[0] for r in server.log] == ['1', '2', '3']
    assert len(server.log) == 3


def test_pagination_without_total_pages_stops_on_short_page(server, sleeps):
    client = make_client(server.url)
    client.PER_PAGE_DNS = 2
    server.add(200, envelope([{'id': '1', 'name': 'a.example.test', 'type': 'A'},
                              {'id': '2', 'name': 'a.example.test', 'type': 'AAAA'}]))
    server.add(200, envelope([{'id': '3', 'name': 'a.example.test', 'type': 'TXT'}]))
    records = client.list_dns_records('zone1', 'a.example.test')
    assert [r['id'] for r in records] == ['1', '2', '3']
    assert len(server.log) == 2


def test_list_tunnels_filters_deleted_and_other_names(server, sleeps):
    server.add(200, envelope([
        {'id': '1', 'name': 'blog', 'deleted_at': '2024-01-01T00:00:00Z'},
        {'id': '2', 'name': 'blog-old', 'deleted_at': None},
        {'id': '3', 'name': 'blog', 'deleted_at': None},
    ], result_info={'page': 1, 'per_page': 100, 'total_pages': 1, 'count': 3, 'total_count': 3}))
    assert [t['id'] for t in make_client(server.url).list_tunnels('blog')] == ['3']


# ------------------------------------------------------------------ retries

def test_429_honours_retry_after(server, sleeps):
    server.add(429, envelope(None, success=False, errors=[{'code': 971, 'message': 'Please wait'}]),
               headers={'Retry-After': '7'})
    server.add(200, envelope({'id': 'x'}))
    client = make_client(server.url)
    assert client.get_tunnel('x') == {'id': 'x'}
    assert sleeps == [7.0]
    assert client.waited == 7.0
    assert len(server.log) == 2


def test_429_retry_after_is_honoured_even_above_max_wait(server, sleeps):
    server.add(429, envelope(None, success=False), headers={'Retry-After': '45'})
    server.add(200, envelope({'id': 'x'}))
    make_client(server.url, retry_max_wait=10).get_tunnel('x')
    assert sleeps == [45.0]


def test_429_without_retry_after_uses_default(server, sleeps):
    server.add(429, envelope(None, success=False))
    server.add(200, envelope({'id': 'x'}))
    make_client(server.url).get_tunnel('x')
    assert sleeps == [CloudflareClient.DEFAULT_RETRY_AFTER]


def test_5xx_backoff_is_exponential_and_capped(server, sleeps):
    for dummy in range(5):
        server.add(503, envelope(None, success=False, errors=[{'code': 10013, 'message': 'unavailable'}]))
    server.add(200, envelope({'id': 'x'}))
    make_client(server.url, retry_max_wait=5).get_tunnel('x')
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_budget_exhaustion_message(server, sleeps):
    for dummy in range(10):
        server.add(429, envelope(None, success=False, errors=[{'code': 10429, 'message': 'Rate limited'}]),
                   headers={'Retry-After': '4'})
    client = make_client(server.url, retry_budget=10)
    with pytest.raises(CloudflareError) as info:
        client.get_tunnel_config('abc')
    msg = info.value.msg
    assert sleeps == [4.0, 4.0]
    assert len(server.log) == 3
    assert 'get tunnel configuration (GET /accounts/%s/cfd_tunnel/abc/configurations)' % ACCOUNT in msg
    assert 'HTTP 429' in msg and 'Retry-After: 4' in msg
    assert '[10429] Rate limited' in msg
    assert 'Gave up after 3 attempt(s) and 8.0 s of waiting' in msg
    assert 'retry_budget=10 s' in msg
    assert info.value.waited == 8.0


def test_retry_after_beyond_budget_fails_without_waiting(server, sleeps):
    server.add(429, envelope(None, success=False), headers={'Retry-After': '3600'})
    with pytest.raises(CloudflareError) as info:
        make_client(server.url, retry_budget=60).get_tunnel('x')
    assert sleeps == []
    assert 'next wait (3600.0 s) would exceed the retry budget' in info.value.msg


def test_budget_is_shared_across_calls(server, sleeps):
    server.add(429, envelope(None, success=False), headers={'Retry-After': '6'})
    server.add(200, envelope({'id': 'x'}))
    server.add(429, envelope(None, success=False), headers={'Retry-After': '6'})
    client = make_client(server.url, retry_budget=10)
    client.get_tunnel('x')
    with pytest.raises(CloudflareError) as info:
        client.get_tunnel('x')
    assert sleeps == [6.0]
    assert '6.0 s of waiting' in info.value.msg


def test_zero_budget_never_retries(server, sleeps):
    server.add(503, envelope(None, success=False))
    with pytest.raises(CloudflareError):
        make_client(server.url, retry_budget=0).get_tunnel('x')
    assert sleeps == []
    assert len(server.log) == 1


def _free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_connection_errors_are_retried_then_reported(sleeps):
    url = 'http://127.0.0.1:%d/client/v4' % _free_port()
    client = make_client(url, retry_budget=7)
    with pytest.raises(CloudflareError) as info:
        client.list_tunnels('blog')
    assert sleeps == [1.0, 2.0, 4.0]
    assert 'connection error: ConnectionError ([Errno 111] Connection refused)' in info.value.msg
    assert 'Gave up after 4 attempt(s) and 7.0 s of waiting' in info.value.msg
    assert client.request_count == 4


# ------------------------------------------------------------------ zones

def test_find_zone_falls_back_to_exact_names(server, sleeps):
    """A server that does not know the ends_with operator answers no zone: exact lookups follow."""
    info = {'page': 1, 'per_page': 50, 'total_pages': 1, 'count': 0, 'total_count': 0}
    server.add(200, envelope([], result_info=info))                      # ends_with:example.test
    server.add(200, envelope([], result_info=info))                      # a.sub.example.test
    server.add(200, envelope([{'id': 'z2', 'name': 'sub.example.test'}], result_info=info))
    zone = make_client(server.url).find_zone('a.sub.example.test')
    assert zone['id'] == 'z2'
    assert 'name=ends_with%3Aexample.test' in server.log[0]['path']
    assert 'name=a.sub.example.test' in server.log[1]['path']
    assert 'name=sub.example.test' in server.log[2]['path']
    assert 'account.id=%s' % ACCOUNT in server.log[0]['path']


def test_find_zone_picks_longest_from_one_suffix_query(server, sleeps):
    info = {'page': 1, 'per_page': 50, 'total_pages': 1, 'count': 3, 'total_count': 3}
    server.add(200, envelope([{'id': 'z1', 'name': 'example.test'},
                              {'id': 'z3', 'name': 'notexample.test'},
                              {'id': 'z2', 'name': 'sub.example.test'}], result_info=info))
    client = make_client(server.url)
    assert client.find_zone('a.sub.example.test')['id'] == 'z2'
    assert len(server.log) == 1


def test_find_zone_explicit_zone_must_contain_hostname(server, sleeps):
    info = {'page': 1, 'per_page': 50, 'total_pages': 1, 'count': 1, 'total_count': 1}
    server.add(200, envelope([{'id': 'z9', 'name': 'unrelated.test'}], result_info=info))
    with pytest.raises(CloudflareError) as exc:
        make_client(server.url).find_zone('social.example.test', zone='unrelated.test')
    assert 'not inside zone unrelated.test' in exc.value.msg
