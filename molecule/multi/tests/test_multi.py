"""Several hosts as a visitor and an operator see them: the site answers through the emulated
edge (TEST STAND-IN for Cloudflare) with two connectors on one tunnel, keeps answering with a
connector or a whole web host stopped, Sidekiq works off jobs through the remote Redis, the
database and Redis are reachable from the app hosts only, and no secret is in the output."""
import re
import subprocess

import pytest

from conftest import (DB, EMULATOR_CONTAINER, WEB1, WEB2, WEBS, address, connectors,
                      docker_exec, ephemeral, shell, visit, wait_for)

CONNECT = ("import socket,sys\n"
           "s=socket.socket(); s.settimeout(5)\n"
           "try:\n"
           "    s.connect((sys.argv[1], int(sys.argv[2]))); print('OPEN')\n"
           "except Exception as e:\n"
           "    print('BLOCKED', type(e).__name__)\n")


def probe(container, target, port):
    return docker_exec(container, "python3", "-c", CONNECT, target, str(port)).stdout.strip()


def test_the_site_answers_through_the_edge(emulator):
    status, body = visit(emulator, "/health")
    assert status == 200, body[:300]


def test_two_connectors_on_the_tunnel_one_per_web_host(emulator):
    assert connectors(emulator) == sorted([address(WEB1), address(WEB2)])


def test_visitors_are_spread_over_both_web_hosts(emulator):
    """nginx's access log on each web host: both served some of 30 visits."""
    before = {web: int(shell(web, "wc -l < /var/log/nginx/access.log").stdout) for web in WEBS}
    for dummy in range(30):
        assert visit(emulator, "/health")[0] == 200
    after = {web: int(shell(web, "wc -l < /var/log/nginx/access.log").stdout) for web in WEBS}
    served = {web: after[web] - before[web] for web in WEBS}
    assert all(count > 0 for count in served.values()), served


def test_env_production_is_identical_on_the_app_hosts():
    sums = {web: shell(web, "sha256sum /home/mastodon/live/.env.production").stdout.split()[0]
            for web in WEBS}
    assert len(set(sums.values())) == 1, sums
    env = shell(WEB1, "grep -E '^(DB_HOST|REDIS_HOST|DB_SSLMODE)=' /home/mastodon/live/.env.production").stdout
    assert f"DB_HOST='{address(DB)}'" in env and f"REDIS_HOST='{address(DB)}'" in env, env
    assert "DB_SSLMODE='require'" in env


def test_secrets_are_identical_on_every_host_and_root_only():
    sums = set()
    for container in (DB, WEB1, WEB2):
        mode = shell(container, "stat -c '%U %a' /etc/mastodon/secrets.env").stdout.strip()
        assert mode == "root 600", (container, mode)
        sums.add(shell(container, "sha256sum /etc/mastodon/secrets.env").stdout.split()[0])
    assert len(sums) == 1


def test_database_from_an_app_host_needs_tls_and_a_scram_password():
    db = address(DB)
    query = "psql -X -t -A -d mastodon_production -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'"
    with_tls = shell(WEB1, f"su mastodon -s /bin/sh -c \"PGPASSFILE=/home/mastodon/.pgpass "
                           f"PGSSLMODE=require PGHOST={db} PGUSER=mastodon {query}\"", check=False)
    assert with_tls.returncode == 0 and with_tls.stdout.strip() == "t", with_tls.stderr
    without_tls = shell(WEB1, f"su mastodon -s /bin/sh -c \"PGPASSFILE=/home/mastodon/.pgpass "
                              f"PGSSLMODE=disable PGHOST={db} PGUSER=mastodon {query}\"", check=False)
    assert without_tls.returncode != 0 and "no encryption" in without_tls.stderr, without_tls.stderr
    method = shell(DB, "su postgres -c \"psql -X -t -A -c \\\"SELECT left(rolpassword, 13) FROM "
                       "pg_authid WHERE rolname = 'mastodon'\\\"\"").stdout.strip()
    assert method == "SCRAM-SHA-256"


@pytest.mark.parametrize("port", [5432, 6379])
def test_database_and_redis_refuse_a_host_outside_the_app_hosts(port):
    """The emulator's container is on the same network but not an app host: the db host's
    firewall drops it; from web1 the same port is open (the control)."""
    assert probe(WEB1, address(DB), port) == "OPEN"
    assert probe(EMULATOR_CONTAINER, address(DB), port).startswith("BLOCKED")


def test_sidekiq_on_the_other_host_works_off_a_job_web1_queued():
    """Sidekiq (the double's, through the real Redis on the db host) stopped on web1; a job
    web1 pushes is taken by web2's Sidekiq (default: a queue both hosts work off)."""
    db = address(DB)
    cli = (f"REDISCLI_AUTH=$(sed -n 's/^REDIS_PASSWORD=//p' /etc/mastodon/secrets.env) "
           f"redis-cli --no-auth-warning -h {db}")
    docker_exec(WEB1, "systemctl", "stop", "mastodon-sidekiq")
    try:
        assert shell(WEB2, "systemctl is-active mastodon-sidekiq").stdout.strip() == "active"
        shell(WEB1, f"{cli} SADD queues default && {cli} LPUSH queue:default "
                    "'{\"class\":\"MultiTest\",\"enqueued_at\":0}'")
        drained = wait_for(lambda: shell(WEB1, f"{cli} LLEN queue:default").stdout.strip() == "0",
                           timeout=30)
        assert drained, "web2's Sidekiq did not take the job web1 queued"
    finally:
        docker_exec(WEB1, "systemctl", "start", "mastodon-sidekiq")


def test_the_site_keeps_answering_with_one_connector_stopped(emulator):
    docker_exec(WEB1, "systemctl", "stop", "cloudflared")
    try:
        assert wait_for(lambda: connectors(emulator) == [address(WEB2)], timeout=30), connectors(emulator)
        statuses = [visit(emulator, "/health")[0] for dummy in range(10)]
        assert statuses == [200] * 10
    finally:
        docker_exec(WEB1, "systemctl", "start", "cloudflared")
    assert wait_for(lambda: len(connectors(emulator)) == 2, timeout=60)


def test_no_secret_in_the_output():
    log = (ephemeral() / "ansible.log").read_text(errors="replace")
    assert "PLAY RECAP" in log
    values = {}
    for line in shell(DB, "cat /etc/mastodon/secrets.env").stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#") and "PUBLIC" not in key and len(value) >= 16:
            values[key] = value
    values["tunnel token"] = shell(WEB1, "cat /etc/cloudflared/tunnel-token").stdout.strip()
    assert "DB_PASS" in values and "REDIS_PASSWORD" in values
    leaked = [name for name, value in values.items() if value in log]
    assert not leaked, f"secrets in ansible.log: {leaked}"


def test_the_connectors_restart_in_turn_on_a_new_cloudflared():
    """Issue 27: a new cloudflared binary restarts each connector (cloudflared-restart.path),
    never both at once: the first connector host by name at once, the next one
    cloudflare_tunnel_upgrade_restart_spacing (120 s) later, so the tunnel keeps a connector."""
    waits = {}
    for web in WEBS:
        assert shell(web, "systemctl is-active cloudflared-restart.path").stdout.strip() == "active", web
        unit = shell(web, "cat /etc/systemd/system/cloudflared-restart.service").stdout
        waits[web] = int(re.search(r"^ExecStartPre=/bin/sleep (\d+)$", unit, re.M).group(1))
    assert sorted(waits.values()) == [0, 120], waits


def test_the_site_keeps_answering_with_a_web_host_down(emulator):
    """Last: the whole web2 container stops (its connector and its web processes with it)."""
    web2 = address(WEB2)
    subprocess.run(["docker", "stop", "-t", "5", WEB2], check=True, capture_output=True, timeout=60)
    assert wait_for(lambda: web2 not in connectors(emulator), timeout=30), connectors(emulator)
    statuses = [visit(emulator, "/health")[0] for dummy in range(10)]
    assert statuses == [200] * 10
