# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_ingress_rules: the origin services cloudflared accepts, against cloudflared's own verdicts.

VERDICTS is the table: each service with the verdict of cloudflared 2026.8.2
(``ingress/ingress.go`` validateIngress, built with Go 1.26's net/url) and, for a refusal, the
rule it breaks. The cases marked "ingress_test" are cloudflared's own test cases
(``ingress/ingress_test.go``: TestParseIngress and friends); the others are read from the source
(the branch of validateIngress or of url.Parse named next to them).

The Hypothesis test builds services from parts whose verdicts come from the same reading
(scheme, host, port, path, query, fragment) and checks the whole verdict and the rule named.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.selfhost.mastodon.plugins.module_utils import _ingress_rules as ir

OK = None
SYNTAX, SCHEME_HOST, NO_PATH, STATUS = (ir.RULE_URL_SYNTAX, ir.RULE_SCHEME_HOST, ir.RULE_NO_PATH,
                                        ir.RULE_STATUS)

VERDICTS = [
    # cloudflared's own test cases (ingress_test.go)
    ('unix:/tmp/echo.sock', OK),                     # ingress_test: unix socket
    ('unix+tls:/tmp/echo.sock', OK),                 # ingress_test: unix+tls socket
    ('https://localhost:8000', OK),                  # ingress_test: Multiple rules
    ('wss://localhost:8000', OK),                    # ingress_test: ws service
    ('https://local host:8000', SYNTAX),             # ingress_test: Invalid service
    ('localhost:8000', SCHEME_HOST),                 # ingress_test: Service must have a scheme
    ('https://localhost:8000/static/', NO_PATH),     # ingress_test: Service can't have a path
    ('http_status:asdf', STATUS),                    # ingress_test: Invalid HTTP status
    ('http_status:8080', STATUS),                    # ingress_test: Invalid HTTP status code
    ('http_status:404', OK),                         # ingress_test: Valid HTTP status
    ('hello_world', OK),                             # ingress_test: Valid hello world service
    ('tcp://127.0.0.1', OK),                         # ingress_test: TCP services
    ('tcp://localhost:8000', OK),                    # ingress_test: TCP services
    ('ssh://127.0.0.1', OK),                         # ingress_test: SSH services
    ('rdp://127.0.0.1', OK),                         # ingress_test: RDP services
    ('smb://127.0.0.1', OK),                         # ingress_test: SMB services
    ('ftp://127.0.0.1', OK),                         # ingress_test: Other TCP services
    ('socks-proxy', OK),                             # ingress_test: SOCKS services
    ('bastion', OK),                                 # ingress_test: Bastion service
    # the two the issue measured against the real connector
    ('https://localhost:443/', NO_PATH),             # u.Path != "" ("/" is a path)
    ('socks5', SCHEME_HOST),                         # no scheme: url.Parse gives Path "socks5"
    # validateIngress branches
    ('hello-world', OK),                             # HelloWorldFlag spelling
    ('unix:', OK),                                   # "No validation necessary" for unix:
    ('unix:relative.sock', OK),
    ('unix:///run/x.sock', OK),
    ('http_status:100', OK),
    ('http_status:999', OK),
    ('http_status:99', STATUS),                      # < 100
    ('http_status:1000', STATUS),                    # > 999
    ('http_status:+200', OK),                        # strconv.Atoi takes a sign
    ('http_status:0200', OK),                        # and leading zeros
    ('http_status:-200', STATUS),
    ('http_status:', STATUS),
    ('http_status: 404', STATUS),
    ('http_status:404 ', STATUS),
    ('Hello_World', SCHEME_HOST),                    # the names are case-sensitive
    ('SOCKS-PROXY', SCHEME_HOST),
    ('', SCHEME_HOST),                               # url.Parse("") has no scheme
    ('https://localhost:443', OK),
    ('http://localhost', OK),
    ('HTTPS://LOCALHOST:443', OK),                   # the scheme is lower-cased
    ('socks5://127.0.0.1:1080', OK),                 # any scheme: TCP over WebSocket
    ('foo+bar.baz-1://host', OK),
    ('http://localhost:8000?x=1', OK),               # a query is not a path
    ('http://localhost:8000?', OK),
    ('http://localhost:8000#top', OK),               # nor is a fragment
    ('http://user:pass@localhost:8000', OK),         # userinfo is parsed, not refused
    ('http://localhost:99999', OK),                  # url.Parse does not bound the port
    ('http://localhost:', OK),                       # an empty port is a valid optional port
    ('http://[::1]:8080', OK),
    ('http://[fe80::1%25eth0]:8080', OK),
    ('http://münchen.example', OK),                  # non-ASCII host bytes pass
    ('http://xn--mnchen-3ya.example', OK),
    ('https://localhost:443/api', NO_PATH),
    ('https://localhost:443/?x=1', NO_PATH),
    ('tcp://localhost:22/', NO_PATH),                # the path rule is for every URL service
    ('http:/localhost', SCHEME_HOST),                # one slash: no authority
    ('http:localhost:80', SCHEME_HOST),              # opaque
    ('http://:80', SCHEME_HOST),                     # empty host name
    ('http://', SCHEME_HOST),
    ('//localhost:80', SCHEME_HOST),                 # no scheme
    ('/run/x.sock', SCHEME_HOST),
    ('://localhost', SYNTAX),                        # missing protocol scheme
    ('1http://localhost', SYNTAX),                   # first path segment cannot contain colon
    (' https://localhost', SYNTAX),
    ('https://localhost:443 x', SYNTAX),             # invalid port
    ('https://localhost:80:80', SYNTAX),             # Go 1.26 strict colons
    ('https://::1', SYNTAX),
    ('https://localhost:abc', SYNTAX),
    ('https://[1.2.3.4]:80', SYNTAX),                # a bracketed host must be IPv6
    ('https://[localhost]:80', SYNTAX),
    ('https://[::1', SYNTAX),                        # missing ']'
    ('https://a[::1]', SYNTAX),                      # '[' not first
    ('https://[::1]x', SYNTAX),                      # invalid port after host
    ('https://local{host}', SYNTAX),                 # invalid character in host name
    ('https://loc%41lhost', SYNTAX),                 # %-escape of ASCII in a host
    ('https://localhost\n', SYNTAX),                 # control character
    ('https://localhost/%zz', SYNTAX),               # invalid escape (a path anyway)
    ('https://localhost#%zz', SYNTAX),               # invalid escape in the fragment
    ('https://ü@localhost', SYNTAX),                 # invalid userinfo
    ('https://us%zz@localhost', SYNTAX),
]


@pytest.mark.parametrize('service, rule', VERDICTS, ids=[repr(v[0]) for v in VERDICTS])
def test_cloudflareds_verdicts(service, rule):
    refusal = ir.origin_service_refusal(service)
    assert (refusal and refusal[0]) == rule, refusal


def test_a_refusal_names_the_rule_and_the_consequence():
    problem = ir.origin_service_problem('https://localhost:443/')
    assert 'no path on the origin' in problem and 'whole configuration' in problem
    assert 'socks-proxy' in ir.origin_service_problem('socks5')
    assert ir.origin_service_problem('socks-proxy') is None


def test_not_text_is_refused():
    assert ir.origin_service_refusal(443)[0] == ir.RULE_TYPE


# ----------------------------------------------------------------- property-based
# Each part carries cloudflared's verdict for it (None: fine; else the rule it breaks).
SCHEMES = st.sampled_from([
    ('http', None), ('https', None), ('ws', None), ('wss', None), ('tcp', None), ('ssh', None),
    ('rdp', None), ('smb', None), ('ftp', None), ('socks5', None), ('HTTPS', None),
    ('', SCHEME_HOST),            # "//host": no scheme
])
HOSTS = st.sampled_from([
    ('localhost', None), ('127.0.0.1', None), ('origin.example.test', None), ('[::1]', None),
    ('[2001:db8::1]', None), ('münchen.example', None), ('a_b', None),
    ('', SCHEME_HOST), ('[127.0.0.1]', SYNTAX), ('local host', SYNTAX), ('a{b', SYNTAX),
    ('[::1', SYNTAX), ('%41', SYNTAX),
])
PORTS = st.sampled_from([
    ('', None), (':443', None), (':8080', None), (':', None), (':99999', None),
    (':x', SYNTAX), (':80:80', SYNTAX), (': 1', SYNTAX),
])
PATHS = st.sampled_from([
    ('', None), ('/', NO_PATH), ('/api', NO_PATH), ('/a/b/', NO_PATH), ('/%zz', SYNTAX),
])
QUERIES = st.sampled_from([('', None), ('?', None), ('?x=1', None), ('?%zz', None), ('?a/b', None)])
FRAGMENTS = st.sampled_from([('', None), ('#top', None), ('#a/b', None), ('#%zz', SYNTAX)])

# url.Parse fails first (SYNTAX wins over every later check), then the scheme/host check,
# then the path.
ORDER = (SYNTAX, SCHEME_HOST, NO_PATH)


@settings(max_examples=400, deadline=None)
@given(SCHEMES, HOSTS, PORTS, PATHS, QUERIES, FRAGMENTS)
def test_url_services_get_cloudflareds_verdict(scheme, host, port, path, query, fragment):
    parts = [scheme, host, port, path, query, fragment]
    service = (scheme[0] + ':' if scheme[0] else '') + '//' + ''.join(p[0] for p in parts[1:])
    broken = set(p[1] for p in parts if p[1])
    if host[0] == '' and port[1] is None:
        broken.add(SCHEME_HOST)
    if scheme[0] == '' and host[0] == '' and port[0] == '':
        # "//" + path: no scheme, no host
        broken.add(SCHEME_HOST)
    expected = next((rule for rule in ORDER if rule in broken), None)
    refusal = ir.origin_service_refusal(service)
    assert (refusal and refusal[0]) == expected, (service, refusal)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-2000, max_value=2000), st.sampled_from(['', '+', '0']))
def test_http_status_codes(code, prefix):
    text = prefix + str(code) if code >= 0 else str(code)
    refusal = ir.origin_service_refusal('http_status:' + text)
    assert (refusal is None) == (100 <= code <= 999), (text, refusal)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=40))
def test_any_text_gets_an_answer_and_unix_sockets_always_pass(text):
    refusal = ir.origin_service_refusal(text)
    assert refusal is None or (refusal[0] in ORDER + (STATUS,) and refusal[1])
    assert ir.origin_service_refusal('unix:' + text) is None
    assert ir.origin_service_refusal('unix+tls:' + text) is None
