"""The release preflight and the series guard, run for real: each case runs the role again
with ansible-playbook (molecule/mastodon_stack/negative.yml) against the converged container.

The TEST DOUBLE repository (prepare.yml) has v4.9.0-double (installed by converge),
v4.9.1-double and v4.10.0-double, whose .nvmrc, package.json engines.node, .ruby-version and
Gemfile ask for Node.js 99 and Ruby 9.9. Runs after test_mastodon_stack.py (file order); the
last case moves the server to v4.9.1-double.
"""

import json
import re
from pathlib import Path

from support.ansible_cli import ansible_playbook

SCENARIO = Path(__file__).resolve().parent.parent
LIVE = "/home/mastodon/live"
INVOCATIONS = LIVE + "/log/double-invocations.log"
STAMPS = "/home/mastodon/.mastodon-stack"


def run_role(extra_vars):
    result = ansible_playbook(SCENARIO / "negative.yml", "-e", json.dumps(extra_vars), timeout=900)
    # One text as a person reads it, the messages' line wrapping undone.
    result.output = re.sub(r"\s+", " ", result.output)
    return result


def state(host):
    """What a refused run must leave alone: the checked-out release, a clean working tree, the
    TEST DOUBLE's invocation log (bundle/yarn/rails/tootctl never ran) and the build stamps."""
    return {
        "release": host.check_output("runuser -u mastodon -- git -C %s describe --tags", LIVE),
        "dirty": host.check_output("runuser -u mastodon -- git -C %s status --porcelain --untracked-files=no", LIVE),
        "invocations": host.file(INVOCATIONS).content_string,
        "stamps": host.check_output("cat %s/*.commit", STAMPS),
        "bundle": host.check_output("stat -c %%Y %s/vendor/bundle", LIVE),
    }


def test_site_refuses_to_cross_a_series(host):
    before = state(host)
    run = run_role({"mastodon_stack_version": "v4.10.0-double"})
    assert run.returncode != 0
    assert "This server runs v4.9.0-double and mastodon_stack_version asks for v4.10.0-double" in run.output
    assert "run playbooks/upgrade.yml" in run.output
    assert state(host) == before


def test_preflight_stops_a_release_the_host_cannot_build(host):
    before = state(host)
    # What playbooks/upgrade.yml passes after its backup; PostgreSQL's minimum raised as well.
    run = run_role({"mastodon_stack_version": "v4.10.0-double", "mastodon_stack_allow_series_change": True,
                    "mastodon_stack_preflight_minimums": {"postgresql": "99", "redis": "7.0", "libvips": "8.13"}})
    out = run.output
    assert run.returncode != 0
    assert "PREFLIGHT FAILED: this host cannot install Mastodon v4.10.0-double" in out
    ruby = re.search(r"Ruby: v4\.10\.0-double needs Ruby >= 9\.9\.0; the host offers (\d+\.\d+(?:\.\d+)?) "
                     r"\(the distribution's ruby package, mastodon_stack_ruby_source: system\)\. "
                     r"Change mastodon_stack_ruby_source \(rbenv builds Ruby 9\.9\.0\)", out)
    assert ruby, out[-3000:]
    node = re.search(r"Node\.js: v4\.10\.0-double needs Node\.js >=99; the host offers (\d+\.\d+\.\d+) "
                     r"\(the distribution's nodejs package, mastodon_stack_nodejs_source: distribution\)\. "
                     r"Change mastodon_stack_nodejs_source", out)
    assert node, out[-3000:]
    assert re.search(r"PostgreSQL: v4\.10\.0-double needs PostgreSQL >= 99; the host offers \d+ ", out)
    # Only what fails is listed (Redis 8.0 and libvips 8.16 meet the minimums).
    assert "Redis: v4.10.0-double needs" not in out and "libvips: v4.10.0-double needs" not in out
    # The offers are the host's real ones.
    assert host.check_output("ruby -e 'print RUBY_VERSION'").startswith(ruby.group(1))
    assert host.check_output("node --version") == "v" + node.group(1)
    # Stopped before anything was built or checked out.
    assert state(host) == before
    for unit in ("mastodon-web", "mastodon-sidekiq", "mastodon-streaming@4000"):
        assert host.service(unit).is_running, unit


def test_preflight_accepts_the_installed_release(host):
    run = run_role({})
    assert run.returncode == 0, run.output[-3000:]
    assert re.search(r"Preflight passed for v4\.9\.0-double: Ruby >= 3\.1\.0 <- system \d+\.\d+", run.output)
    assert re.search(r"Node\.js >=18\.19 <- distribution \d+\.\d+\.\d+", run.output)
    assert "changed=0" in run.output


def test_latest_stays_in_the_installed_series(host):
    run = run_role({"mastodon_stack_version": "latest"})
    assert run.returncode == 0, run.output[-3000:]
    assert "v4.10.0-double is out, but this server runs v4.9.0-double" in run.output
    assert "stays in the 4.9 series (v4.9.1-double). site.yml never moves to another series" in run.output
    assert "run playbooks/upgrade.yml" in run.output
    assert host.check_output("runuser -u mastodon -- git -C %s describe --tags", LIVE) == "v4.9.1-double"
