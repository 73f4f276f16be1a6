"""Each host runs its parts of the site and nothing else: the packages of its parts, PgBouncer in
transaction mode on the db host for the app hosts' services (migrations straight to PostgreSQL),
and each web host's Sidekiq works off its own queues (mastodon_stack_sidekiq_queues of the
scenario's group_vars: default on both, push/mailers/scheduler on web1, ingress/pull on web2).

The jobs are the Mastodon TEST DOUBLE's (its Sidekiq stand-in honours -q) through the real Redis
on the db host; PostgreSQL, PgBouncer and Redis are the real Debian packages.

This file sorts before test_multi.py, whose last test stops web2 for good."""
import json
import time

import pytest

from conftest import (DB, EMULATOR_CONTAINER, WEB1, WEB2, WEBS, address, docker_exec, shell,
                      wait_for)
from test_multi import probe

LIVE = "/home/mastodon/live"


def installed(container, package):
    status = shell(container, f"dpkg-query -W -f='${{Status}}' {package} 2>/dev/null", check=False)
    return status.stdout.strip() == "install ok installed"


def redis_cli(container):
    return (f"REDISCLI_AUTH=$(sed -n 's/^REDIS_PASSWORD=//p' /etc/mastodon/secrets.env) "
            f"redis-cli --no-auth-warning -h {address(DB)}")


def psql_as_mastodon(container, port, sql, sslmode="require", extra=""):
    """psql as the mastodon user of an app host, the password from its .pgpass."""
    return shell(container, f"su mastodon -s /bin/sh -c \"PGPASSFILE=/home/mastodon/.pgpass {extra} "
                            f"PGSSLMODE={sslmode} PGHOST={address(DB)} PGPORT={port} PGUSER=mastodon "
                            f"psql -X -t -A -d mastodon_production -c '{sql}'\"", check=False)


# --- a package list per part -----------------------------------------------------------------

@pytest.mark.parametrize("package", ["postgresql", "pgbouncer", "redis-server"])
def test_the_db_host_has_the_database_and_redis(package):
    assert installed(DB, package)


@pytest.mark.parametrize("package", ["nginx", "ruby", "nodejs", "ffmpeg", "libvips-tools"])
def test_the_db_host_has_no_web_or_app_build_package(package):
    assert not installed(DB, package), f"{package} is installed on the db host"


@pytest.mark.parametrize("web", WEBS)
def test_the_web_hosts_run_no_postgresql_or_redis_server(web):
    for package in ("postgresql", "redis-server"):
        assert not installed(web, package), (web, package)
    # Nothing listens on the server ports locally: the services use the db host's.
    for port in (5432, 6379):
        assert probe(web, "127.0.0.1", port).startswith("BLOCKED"), (web, port)
    # What they do need: nginx and the clients (psql for the role's checks, redis-cli).
    for package in ("nginx", "postgresql-client", "redis-tools"):
        assert installed(web, package), (web, package)


# --- PgBouncer on the db host ----------------------------------------------------------------

def test_pgbouncer_runs_in_transaction_mode_with_tls_and_scram():
    assert shell(DB, "systemctl is-active pgbouncer").stdout.strip() == "active"
    ini = shell(DB, "cat /etc/pgbouncer/pgbouncer.ini").stdout
    settings = {k.strip(): v.strip() for k, sep, v in (line.partition("=") for line in ini.splitlines())
                if sep and not k.strip().startswith(";")}
    assert settings["pool_mode"] == "transaction"
    assert settings["auth_type"] == "scram-sha-256"
    assert settings["client_tls_sslmode"] == "require"
    assert settings["listen_port"] == "6432"
    assert settings["listen_addr"] == f"127.0.0.1,{address(DB)}"
    for path in ("/etc/pgbouncer/pgbouncer.ini", "/etc/pgbouncer/userlist.txt"):
        assert shell(DB, f"stat -c '%U:%G %a' {path}").stdout.strip() == "root:postgres 640", path


def test_an_app_host_reaches_postgresql_through_pgbouncer():
    """Through 6432 PostgreSQL sees PgBouncer's loopback connection; through 5432 the web host."""
    via_pgbouncer = psql_as_mastodon(WEB1, 6432, "SELECT host(inet_client_addr())")
    assert via_pgbouncer.returncode == 0, via_pgbouncer.stderr
    assert via_pgbouncer.stdout.strip() == "127.0.0.1"
    direct = psql_as_mastodon(WEB1, 5432, "SELECT host(inet_client_addr())")
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.strip() == address(WEB1)


def test_pgbouncer_refuses_clients_without_tls_or_with_a_wrong_password():
    without_tls = psql_as_mastodon(WEB1, 6432, "SELECT 1", sslmode="disable")
    assert without_tls.returncode != 0 and "SSL required" in without_tls.stderr, without_tls.stderr
    wrong = psql_as_mastodon(WEB1, 6432, "SELECT 1",
                             extra="PGPASSWORD=not-the-password PGPASSFILE=/dev/null")
    # PgBouncer 1.24 says "SASL authentication failed" (scram-sha-256), PostgreSQL "password
    # authentication failed".
    assert wrong.returncode != 0 and "authentication failed" in wrong.stderr, wrong.stderr


def test_pgbouncer_is_open_to_the_app_hosts_alone():
    for web in WEBS:
        assert probe(web, address(DB), 6432) == "OPEN", web
    assert probe(EMULATOR_CONTAINER, address(DB), 6432).startswith("BLOCKED")


@pytest.mark.parametrize("web", WEBS)
def test_the_services_are_given_pgbouncer_and_no_prepared_statements(web):
    env = shell(web, f"grep -E '^(DB_PORT|PREPARED_STATEMENTS)=' {LIVE}/.env.production").stdout.split()
    assert sorted(env) == ["DB_PORT=6432", "PREPARED_STATEMENTS='false'"], env
    # What the running Sidekiq stand-in was given (its first line in the journal).
    line = shell(web, "journalctl -u mastodon-sidekiq -o cat --no-pager | grep 'TEST DOUBLE) concurrency' "
                      "| tail -n 1").stdout
    assert f"DB_HOST={address(DB)} DB_PORT=6432 PREPARED_STATEMENTS=false" in line, line


def test_the_migrations_went_straight_to_postgresql():
    """bin/rails db:setup and db:migrate (the double's log of every invocation) on 5432."""
    migrations = []
    for web in WEBS:
        log = shell(web, f"cat {LIVE}/log/double-invocations.log", check=False).stdout
        migrations += [json.loads(line) for line in log.splitlines()
                       if line.strip() and json.loads(line)["argv"][:1] in (["db:setup"], ["db:migrate"])]
    assert migrations, "no db:setup or db:migrate in the double's invocation log"
    assert {entry.get("db_port") for entry in migrations} == {"5432"}, migrations


# --- Sidekiq queues per host -----------------------------------------------------------------

def test_each_sidekiq_unit_has_its_hosts_queues():
    expected = {WEB1: "-q default,8 -q push,6 -q mailers,2 -q scheduler",
                WEB2: "-q default,8 -q ingress,4 -q pull"}
    for web, queues in expected.items():
        unit = shell(web, "systemctl cat mastodon-sidekiq").stdout
        start = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
        assert len(start) == 1 and start[0].endswith(queues), (web, start)
        assert queues in shell(web, "ps -eo args=").stdout, f"no process with {queues} on {web}"


def _queue_length(queue):
    return int(shell(WEB1, f"{redis_cli(WEB1)} LLEN queue:{queue}").stdout.strip())


def _push(queue, jid):
    cli = redis_cli(WEB1)
    shell(WEB1, f"{cli} SADD queues {queue} >/dev/null && {cli} LPUSH queue:{queue} "
                f"'{{\"class\":\"QueueSplitTest\",\"jid\":\"{jid}\",\"enqueued_at\":0}}'")


@pytest.mark.parametrize("stopped, own_queue, other_queue", [
    (WEB2, "ingress", "push"),   # web2 stopped: its ingress job waits, web1 takes the push job
    (WEB1, "push", "ingress"),   # web1 stopped: its push job waits, web2 takes the ingress job
])
def test_each_hosts_sidekiq_works_off_only_its_queues(stopped, own_queue, other_queue):
    """With one host's Sidekiq stopped, the other takes the jobs of its own queues and leaves
    the stopped host's queue alone until that host's Sidekiq is back."""
    docker_exec(stopped, "systemctl", "stop", "mastodon-sidekiq")
    try:
        assert wait_for(lambda: _queue_length(own_queue) == 0 and _queue_length(other_queue) == 0,
                        timeout=30), "queues not empty before the test"
        _push(own_queue, f"split-{own_queue}")
        _push(other_queue, f"split-{other_queue}")
        assert wait_for(lambda: _queue_length(other_queue) == 0, timeout=30), \
            f"the running Sidekiq did not take the {other_queue} job"
        # The running host polled after both pushes (it took the second job) and again for two
        # seconds (4 polls a second): it left the first job alone.
        time.sleep(2)
        assert _queue_length(own_queue) == 1, f"the {own_queue} job was taken by the wrong host"
    finally:
        docker_exec(stopped, "systemctl", "start", "mastodon-sidekiq")
    assert wait_for(lambda: _queue_length(own_queue) == 0, timeout=30), \
        f"{stopped}'s Sidekiq did not take its {own_queue} job after its start"
