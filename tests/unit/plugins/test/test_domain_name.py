# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one domain-name test, the value_problem filter and the shared checks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.mastodon.plugins.filter.value_problem import FilterModule, value_problem
from ansible_collections.selfhost.mastodon.plugins.module_utils import _validate as v
from ansible_collections.selfhost.mastodon.plugins.test.domain_name import TestModule as DomainNameTests, domain_name

GOOD = ["social.example.com", "example.org", "a.b.c.d.example.co.uk", "xn--bcher-kva.example",
        "m.example.xn--p1ai", "1.example.com", "a-b.example.com", "x" * 63 + ".example.com"]
BAD = {
    "": "is empty",
    "localhost": "at least two labels",
    "Social.Example.com": "lower case",
    "https://social.example.com": "without a scheme",
    "social.example.com/path": "without a path",
    "social.example.com:443": "without a port",
    "social.example.com.": "end with a dot",
    "social..example.com": "empty label",
    "-social.example.com": "a \"-\" at the start or end",
    "social-.example.com": "a \"-\" at the start or end",
    "soc ial.example.com": "spaces",
    " social.example.com": "spaces around",
    "social_x.example.com": "characters other than",
    "*.example.com": "wildcard",
    "social.example.c": "top-level label",
    "social.example.123": "top-level label",
    "x" * 64 + ".example.com": "longer than 63",
    ".".join(["a" * 60] * 5) + ".com": "longer than 253",
    "bücher.example": "A-label",
    "a.*.example.com": "single leading wildcard",
}


def test_plugins_are_registered():
    assert DomainNameTests().tests()["domain_name"] is domain_name
    assert FilterModule().filters()["value_problem"] is value_problem


@pytest.mark.parametrize("name", GOOD)
def test_good_names(name):
    assert domain_name(name) is True
    assert value_problem(name) == ""


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_names_say_why(name):
    assert domain_name(name) is False
    assert BAD[name] in value_problem(name)


@pytest.mark.parametrize("value", [None, 42, ["social.example.com"]])
def test_non_strings(value):
    assert domain_name(value) is False


def test_wildcard_only_when_asked():
    assert domain_name("*.example.com", wildcard=True) is True
    assert domain_name("*.*.example.com", wildcard=True) is False
    assert value_problem("*.example.com", "wildcard_domain_name") == ""


def test_idna_conversion_for_modules():
    assert v.to_a_labels("bücher.example") == ("xn--bcher-kva.example", None)
    assert v.domain_name_problem("bücher.example", idna=True) is None


# cloudflared's verdicts (release 2026.8.2, ingress/ingress.go; the whole table is in
# tests/unit/plugins/module_utils/test__ingress_rules.py).
@pytest.mark.parametrize("service", [
    "https://localhost:443", "http://127.0.0.1:3000", "https://[::1]:8443", "http://localhost",
    "unix:///run/nginx.sock", "unix+tls:///run/x.sock", "tcp://localhost:5432", "ssh://localhost:22",
    "rdp://localhost:3389", "smb://fileserver", "socks5://localhost:1080", "http_status:404",
    "hello_world", "bastion", "socks-proxy",
    # cloudflared accepts these too (any scheme; credentials, ports and unix paths unchecked)
    "ftp://bad", "https://user:pw@localhost", "https://localhost:70000", "https://localhost:0",
    "unix://relative.sock",
])
def test_services_cloudflared_accepts(service):
    assert value_problem(service, "service") == ""


@pytest.mark.parametrize("service,fragment", [
    ("", "scheme and hostname"), ("https://localhost:443 x", "URL syntax"),
    ("localhost:443", "scheme and hostname"), ("http_status:99", "http_status code"),
    ("http_status:abc", "http_status code"), ("https://localhost/mastodon", "no path"),
    ("https://localhost:443/", "no path"), ("socks5", "socks-proxy"),
    ("https://", "scheme and hostname"), ("https://exa mple", "URL syntax"),
])
def test_services_refused(service, fragment):
    assert fragment in value_problem(service, "service")


@pytest.mark.parametrize("name,ok", [
    ("social.example.com", True), ("my-tunnel_1", True), ("", False), ("-bad", False),
    ("has space", False), ("x" * 64, False), ("tunnel/../x", False),
])
def test_tunnel_names(name, ok):
    assert (value_problem(name, "tunnel_name") == "") is ok


@pytest.mark.parametrize("account,ok", [
    ("0123456789abcdef0123456789abcdef", True), ("0123456789ABCDEF0123456789ABCDEF", False),
    ("0123456789abcdef", False), ("", False), ("0123456789abcdef0123456789abcdeg", False),
    ("../../zones/0123456789abcdef0123", False),
])
def test_account_ids(account, ok):
    assert (value_problem(account, "account_id") == "") is ok


def test_unknown_kind_is_an_error():
    with pytest.raises(AnsibleFilterError):
        value_problem("x", "colour")


@pytest.mark.parametrize("value", ["10.0.0.0/8", "::1", "192.168.1.7/24"])
def test_parse_network(value):
    assert v.parse_network(value) is not None


@pytest.mark.parametrize("name", ["mastodon-media", "media.example.org", "abc", "a" * 63, "0media9"])
def test_s3_bucket_names_accepted(name):
    assert value_problem(name, "s3_bucket_name") == ""


@pytest.mark.parametrize("name,why", [
    ("", "is empty"), ("ab", "3 to 63"), ("a" * 64, "3 to 63"), ("Media", "lowercase"),
    ("-media", "starting and ending"), ("media-", "starting and ending"), ("my_media", "lowercase"),
    ("media..x", "two dots"), ("192.168.1.10", "IP address"), (None, "is empty"),
])
def test_s3_bucket_names_refused_with_a_reason(name, why):
    assert why in value_problem(name, "s3_bucket_name")


@pytest.mark.parametrize("name,problem", [
    ("mastodon-media", ""), ("media.example.org", "only lowercase letters, digits and hyphens"),
    ("ab", "3 to 63"), ("", "empty"),
])
def test_r2_bucket_names_use_r2s_stricter_rule(name, problem):
    if problem:
        assert problem in value_problem(name, "r2_bucket_name")
    else:
        assert value_problem(name, "r2_bucket_name") == ""


def test_the_cloudflared_kinds_of_value_problem():
    assert value_problem(["--loglevel", "debug"], "cloudflared_tunnel_args") == ""
    assert "before \"run\"" in value_problem(["--token-file", "/x"], "cloudflared_tunnel_args")
    assert value_problem("cloudflared version 2026.8.2 (built x)", "cloudflared_version") == ""
    assert "2025.4.0" in value_problem("cloudflared version 2024.12.2 (built x)", "cloudflared_version")
