"""mastodon_stack's nginx site (templates/nginx-mastodon.conf.j2) against Mastodon's own
dist/nginx.conf as it stands since upstream commit 335eeb6 (2026-02-17; the file of v4.6.5):
the same locations and directives, and only the differences the template comments with
"DIFFERS:" (loopback only, no port 80, the self-signed certificate, the visitor's address from
CF-Connecting-IP, several streaming processes). Rendered on the controller from the role's
defaults and vars; `nginx -t` on the rendered file runs in the mastodon_stack scenario
(molecule/mastodon_stack), where nginx is installed."""
import json
import re
import sys
from pathlib import Path

import pytest

from support.ansible_cli import ansible_playbook

PLAYBOOK = Path(__file__).resolve().parent / "files" / "nginx_render.yml"
STATIC = ["assets", "avatars", "emoji", "headers", "ocr", "packs", "sounds"]


def render(tmp_path, name="site.conf", **extra):
    out = tmp_path / name
    values = {"mastodon_stack_domain": "social.example.org", "__mastodon_stack_nginx_http2_directive": True,
              "out": str(out), "ansible_python_interpreter": sys.executable}
    values.update(extra)
    proc = ansible_playbook(PLAYBOOK, "-c", "local", "-e", json.dumps(values), inventory="localhost,", timeout=300)
    assert proc.returncode == 0, proc.output[-3000:]
    return out.read_text()


def parse(text):
    """nginx configuration -> nested list of (name, args, children); comments dropped."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};]+', re.sub(r"#[^\n]*", "", text))
    stack, block, words = [], [], []
    for token in tokens:
        if token == ";":
            block.append((words[0], words[1:], None))
            words = []
        elif token == "{":
            child = []
            block.append((words[0], words[1:], child))
            stack.append(block)
            block, words = child, []
        elif token == "}":
            assert not words, words
            block = stack.pop()
        else:
            words.append(token)
    assert not stack and not words
    return block


def find(block, name):
    return [item for item in block if item[0] == name]


def directives(block):
    return {(name, " ".join(args)) for name, args, children in block if children is None}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    text = render(tmp_path_factory.mktemp("nginx"))
    return text, parse(text)


def server(parsed):
    servers = find(parsed, "server")
    assert len(servers) == 1, "one server block: no port-80 redirect server"
    return servers[0][2]


def locations(block):
    return {" ".join(args): children for name, args, children in find(block, "location")}


def test_locations_are_those_of_the_current_dist_file(site):
    assert sorted(locations(server(site[1]))) == sorted(
        ["/", "@mastodon", "^~ /api/v1/streaming", "^~ /system/"] + ["^~ /%s/" % p for p in STATIC])


def test_static_files_never_reach_rails(site):
    """The prefix locations serve from the public folder only (a missing file is a 404): no
    try_files to Rails, no proxy_pass; /system/ keeps the hardening headers of user uploads."""
    found = locations(server(site[1]))
    for prefix in STATIC + ["system"]:
        block = found["^~ /%s/" % prefix]
        assert not [d for d in block if d[0] in ("try_files", "proxy_pass")], prefix
        assert ("add_header", 'Strict-Transport-Security "max-age=63072000; includeSubDomains"') in directives(block)
    system = directives(found["^~ /system/"])
    assert ("add_header", 'Cache-Control "public, max-age=2419200, immutable"') in system
    assert ("add_header", "X-Content-Type-Options nosniff") in system
    assert ("add_header", "Content-Security-Policy \"default-src 'none'; form-action 'none'\"") in system
    assert directives(found["/"]) == {("add_header", 'Strict-Transport-Security "max-age=63072000; includeSubDomains"'),
                                      ("try_files", "$uri @mastodon")}


def test_server_directives_of_the_dist_file(site):
    block = server(site[1])
    found = directives(block)
    for expected in [("proxy_read_timeout", "120"), ("gzip_static", "on"), ("keepalive_timeout", "70"),
                     ("ssl_protocols", "TLSv1.2 TLSv1.3"), ("ssl_session_tickets", "off"),
                     ("client_max_body_size", "99m"), ("error_page", "404 500 501 502 503 504 /500.html"),
                     ("root", "/home/mastodon/live/public")]:
        assert expected in found, expected
    gzip_types = dict(found)["gzip_types"].split()
    assert "application/rss+xml" in gzip_types and "application/xml+rss" not in gzip_types
    assert dict(found)["ssl_ciphers"].startswith("ECDHE-ECDSA-AES128-GCM-SHA256:")
    mastodon = directives(locations(block)["@mastodon"])
    for expected in [("proxy_pass", "http://backend"), ("proxy_cache", "CACHE"), ("proxy_pass_header", "Server"),
                     ("add_header", "X-Cached $upstream_cache_status"), ("proxy_set_header", "X-Real-IP $remote_addr")]:
        assert expected in mastodon, expected
    streaming = directives(locations(block)["^~ /api/v1/streaming"])
    assert ("proxy_pass", "http://streaming") in streaming and ("proxy_buffering", "off") in streaming


def test_differences_from_the_dist_file_are_the_commented_ones(site):
    text, parsed = site
    block = server(parsed)
    # Loopback only, https only, the self-signed pair, the visitor's address from Cloudflare.
    assert [" ".join(args) for name, args, children in find(block, "listen")] == ["127.0.0.1:443 ssl"]
    assert ("http2", "on") in directives(block)
    assert ("ssl_certificate", "/etc/letsencrypt/live/social.example.org/fullchain.pem") in directives(block)
    assert ("real_ip_header", "CF-Connecting-IP") in directives(block)
    assert ("set_real_ip_from", "127.0.0.1") in directives(block)
    # Each difference carries its reason.
    reasons = re.findall(r"# DIFFERS[:(]| DIFFERS \(", text)
    assert len(reasons) >= 8, reasons
    for word in ("port-80", "loopback only", "self-signed", "visitor's address",
                 "streaming process"):
        assert word in text, word


def test_old_nginx_listen_syntax_streaming_ports_and_proxies(tmp_path):
    text = render(tmp_path, __mastodon_stack_nginx_http2_directive=False, mastodon_stack_streaming_ports=[4000, 4001],
                  mastodon_stack_trusted_proxies=["127.0.0.1", "::1"])
    block = server(parse(text))
    assert [" ".join(args) for name, args, children in find(block, "listen")] == ["127.0.0.1:443 ssl http2"]
    assert not find(block, "http2")
    assert sorted(a for n, a in directives(block) if n == "set_real_ip_from") == ["127.0.0.1", "::1"]
    upstream = {" ".join(args): children for name, args, children in find(parse(text), "upstream")}
    assert directives(upstream["streaming"]) == {
        ("least_conn", ""), ("server", "127.0.0.1:4000 fail_timeout=0"), ("server", "127.0.0.1:4001 fail_timeout=0")}
