"""Verify real Mastodon built by mastodon_stack (scenario mastodon_real; needs internet, not in CI)."""

import json
import re

import pytest


@pytest.mark.parametrize("unit", [
    "mastodon-web.service", "mastodon-sidekiq.service", "mastodon-streaming@4000.service",
    "nginx.service", "postgresql.service", "redis-server.service",
])
def test_service_active_and_enabled(host, unit):
    assert host.service(unit).is_running and host.service(unit).is_enabled


def test_health_through_nginx(host):
    result = host.run("curl -sk --max-time 30 -o /dev/null -w '%{http_code}' https://localhost/health")
    assert result.stdout == "200"


def test_streaming_health_through_nginx(host):
    result = host.run("curl -sk --max-time 30 https://localhost/api/v1/streaming/health")
    assert result.stdout == "OK"


def test_instance_api_reports_the_domain(host):
    result = host.run("curl -sk --max-time 30 -H 'Host: social.example.test' https://localhost/api/v2/instance")
    assert json.loads(result.stdout)["domain"] == "social.example.test"


def test_owner_account_exists(host):
    result = host.run("cd /home/mastodon/live && sudo -u mastodon env RAILS_ENV=production PATH=/home/mastodon/.rbenv/shims:/usr/bin:/bin "
                      "bin/rails runner 'print Account.find_local(\"owner\")&.user&.role&.name'")
    assert result.stdout.strip().endswith("Owner")


def test_assets_built(host):
    assert host.file("/home/mastodon/live/public/packs").is_directory or \
        host.file("/home/mastodon/live/public/assets").is_directory


def test_release_and_ruby_are_what_the_release_asks_for(host):
    # The default series (roles/mastodon_stack/defaults/main.yml: "4.7", its newest stable tag)
    # passed the preflight, and rbenv built exactly the release's .ruby-version before bundle install.
    live = "/home/mastodon/live"
    release = host.check_output("runuser -u mastodon -- git -C %s describe --tags", live)
    assert re.match(r"^v4\.7\.([7-9]|[1-9][0-9]+)$", release), release
    wanted = host.file(live + "/.ruby-version").content_string.strip()
    built = host.check_output("/home/mastodon/.rbenv/versions/%s/bin/ruby -e 'print RUBY_VERSION'", wanted)
    assert built == wanted
