"""A package list per part of the site (mastodon_stack vars/main.yml __mastodon_stack_host_packages),
computed by ansible-playbook from the role's own defaults and vars for two inventories: one
laptop (the group "mastodon" alone) must get exactly the packages of the list before the split;
on several hosts the db host gets PostgreSQL (and PgBouncer) without the web and app packages,
the redis host Redis alone, and an app host with both elsewhere no server."""
import json
import sys
from pathlib import Path

import pytest
import yaml

from support.ansible_cli import ansible_playbook

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "files" / "package_lists.yml"
ROLE = ROOT / "roles" / "mastodon_stack"

# The role's apt list before the split (one laptop): these base packages, then
# mastodon_stack_packages, the Ruby build or system packages and the distribution's PostgreSQL.
# nftables came later, for the loopback guard (mastodon_stack_loopback_guard, on by default).
BEFORE_SPLIT_BASE = ["acl", "ca-certificates", "curl", "git", "gnupg", "lsb-release", "nginx",
                     "python3-psycopg2", "redis-server", "redis-tools", "libjemalloc2", "nftables"]


def package_lists(tmp_path, inventory, extra=()):
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    proc = ansible_playbook(PLAYBOOK, *extra, inventory=path, timeout=300)
    assert proc.returncode == 0, proc.output[-3000:]
    lists = {}
    for line in proc.stdout.splitlines():
        if '"msg": "PACKAGES ' in line:
            entry = json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"][len("PACKAGES "):])
            lists[entry["host"]] = set(entry["packages"])
    return lists


def host(name):
    return {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}


@pytest.fixture(scope="module")
def role_vars():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    return defaults, internal


@pytest.mark.parametrize("ruby_source", ["rbenv", "system"])
def test_one_laptop_gets_the_same_packages_as_before_the_split(tmp_path, role_vars, ruby_source):
    defaults, internal = role_vars
    lists = package_lists(tmp_path, {"all": {"children": {"mastodon": {"hosts": host("laptop")}}}},
                          ["-e", f"mastodon_stack_ruby_source={ruby_source}"])
    ruby = (internal["__mastodon_stack_build_packages"] if ruby_source == "rbenv"
            else internal["__mastodon_stack_system_ruby_packages"])
    before = set(BEFORE_SPLIT_BASE + defaults["mastodon_stack_packages"] + ruby
                 + internal["__mastodon_stack_postgresql_packages"])
    assert lists["laptop"] == before, (lists["laptop"] - before, before - lists["laptop"])


def test_several_hosts_get_the_packages_of_their_parts(tmp_path, role_vars):
    defaults, dummy = role_vars
    hosts = {**host("nas"), **host("cache"), **host("web1")}
    inventory = {"all": {"children": {
        "mastodon": {"hosts": hosts},
        "mastodon_db": {"hosts": {"nas": {}}},
        "mastodon_redis": {"hosts": {"cache": {}}},
        "mastodon_web": {"hosts": {"web1": {}}},
        "mastodon_sidekiq": {"hosts": {"web1": {}}},
    }}}
    lists = package_lists(tmp_path, inventory, ["-e", "mastodon_stack_pgbouncer_enabled=true"])
    app_only = {"nginx", "git", "libjemalloc2", "ruby", "ruby-dev", "build-essential", "ffmpeg", "nftables"}
    assert {"postgresql", "postgresql-contrib", "pgbouncer", "python3-psycopg2"} <= lists["nas"]
    assert not lists["nas"] & (app_only | {"redis-server"}), lists["nas"] & (app_only | {"redis-server"})
    assert {"redis-server", "redis-tools"} <= lists["cache"]
    assert not lists["cache"] & (app_only | {"postgresql", "pgbouncer"}), lists["cache"]
    assert {"nginx", "postgresql-client", "redis-tools", "nftables"} <= lists["web1"]
    assert set(defaults["mastodon_stack_packages"]) <= lists["web1"]
    assert not lists["web1"] & {"postgresql", "pgbouncer", "redis-server"}, lists["web1"]
