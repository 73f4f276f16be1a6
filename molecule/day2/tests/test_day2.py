"""Day-2 operations, exercised as a user runs them: the playbooks are run with
ansible-playbook against the converged container, and the results are read from the real
PostgreSQL, Redis, systemd and files, and from the Mastodon TEST DOUBLE's invocation log
(tests/mastodon_double: its bin/rails and bin/tootctl append one JSON line per call).

The tests run in file order and build on each other (backup before restore, upgrade before
the flood guard, teardown last).
"""

import json
import os
import re
import secrets

import pytest
from support.ansible_cli import ansible_module, ansible_playbook

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
LIVE = "/home/mastodon/live"
MEDIA = f"{LIVE}/public/system"
ENV_FILE = f"{LIVE}/.env.production"
SECRETS_FILE = "/etc/mastodon/secrets.env"
BACKUPS = "/var/backups/mastodon"
DOUBLE_LOG = f"{LIVE}/log/double-invocations.log"
SERVICES = ["mastodon-web", "mastodon-sidekiq", "mastodon-streaming@4000"]
TUNNEL = "social.example.test"
STAMP = re.compile(r"/var/backups/mastodon/\d{8}-\d{8}T\d{6}Z")
# redis-cli with the password from the secrets file, through the environment (never argv).
REDIS_CLI = ("REDISCLI_AUTH=$(sed -n 's/^REDIS_PASSWORD=//p' /etc/mastodon/secrets.env) "
             "redis-cli --no-auth-warning")


def playbook(name, *extra, env=None):
    """Run playbooks/<name>.yml against the scenario's inventory; return the CompletedProcess."""
    return ansible_playbook(os.path.join(PROJECT, "playbooks", f"{name}.yml"),
                            "-e", "mastodon_ops_hosts=all", *extra, env=env)


def adhoc(module, args, env):
    """Run a collection module on the controller (the Cloudflare modules run there)."""
    out = ansible_module(module, args, env=env, timeout=120)
    assert out.returncode == 0, out.output
    return out


def sql(host, query):
    out = host.run("runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d mastodon_production -c %s", query)
    assert out.rc == 0, out.stderr
    return out.stdout


def sha256(host, path):
    return host.check_output("sha256sum %s | cut -d' ' -f1", path)


def media_checksums(host):
    out = host.check_output(
        f"cd {MEDIA} && find . -path ./cache -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum")
    return out


def invocations(host):
    return [json.loads(line) for line in host.file(DOUBLE_LOG).content_string.splitlines() if line]


def backups(host):
    return sorted(host.check_output(f"ls -1 {BACKUPS}").split())


# --- installation ------------------------------------------------------------------------


def test_timers_and_scripts_installed(host):
    for timer in ("mastodon-backup.timer", "mastodon-flood-guard.timer"):
        assert host.service(timer).is_enabled, timer
        assert host.service(timer).is_running, timer
    calendar = host.check_output("systemctl show -p TimersCalendar --value mastodon-flood-guard.timer")
    assert "*-*-* *:00/5:00" in calendar, calendar
    for script in ("mastodon-backup", "mastodon-restore", "mastodon-flood-guard", "mastodon-status"):
        f = host.file(f"/usr/local/sbin/{script}")
        assert (f.user, f.mode) == ("root", 0o750), script
    conf = host.file("/etc/mastodon-ops/ops.conf")
    assert (conf.user, conf.mode) == ("root", 0o640)
    assert host.file(BACKUPS).mode == 0o700


def test_day2_settings_come_from_the_fact_mastodon_stack_publishes(host):
    fact = json.loads(host.file("/etc/ansible/facts.d/mastodon_stack.fact").content_string)
    guard = json.loads(host.file("/etc/mastodon-ops/flood-guard.conf").content_string)
    assert guard["relay_script"] == fact["relay_script"] and host.file(fact["relay_script"]).is_file
    assert guard["app_path"] == fact["app_path"]
    assert guard["marker_file"] == fact["relays_hold_file"]
    assert f"APP_PATH={fact['app_path']}" in host.file("/etc/mastodon-ops/ops.conf").content_string


# --- backup and restore ------------------------------------------------------------------


@pytest.fixture(scope="module")
def round_trip_state():
    return {}


def test_backup_writes_root_only_dated_directory(host, round_trip_state):
    tag = secrets.token_hex(4)
    sql(host, f"INSERT INTO accounts (username, domain) VALUES "
              f"('alice{tag}', NULL), ('bob{tag}', 'remote.example'), ('carol{tag}', 'other.example')")
    host.run_expect([0], f"{REDIS_CLI} SET day2:roundtrip %s", tag)
    for rel in ("media_attachments/files/000/000/001/original/photo.jpg",
                "accounts/avatars/000/000/001/original/avatar.png",
                "cache/media_attachments/files/999/remote.jpg"):
        path = f"{MEDIA}/{rel}"
        host.run_expect([0], f"mkdir -p $(dirname {path}) && head -c 300000 /dev/urandom > {path} "
                             f"&& chown -R mastodon:mastodon {MEDIA}")
    round_trip_state.update(
        tag=tag,
        rows=sql(host, "SELECT id, username, domain FROM accounts ORDER BY id"),
        media=media_checksums(host),
        env=sha256(host, ENV_FILE), secrets=sha256(host, SECRETS_FILE),
        env_stat=host.check_output("stat -c '%U %G %a' " + ENV_FILE),
        secrets_stat=host.check_output("stat -c '%U %G %a' " + SECRETS_FILE),
    )
    assert "photo.jpg" in round_trip_state["media"]
    assert "remote.jpg" not in round_trip_state["media"]

    run = playbook("backup")
    assert run.returncode == 0, run.stdout + run.stderr
    found = STAMP.findall(run.stdout)
    assert found, run.stdout
    path = found[-1]
    round_trip_state["backup"] = path

    d = host.file(path)
    assert (d.user, d.group, d.mode) == ("root", "root", 0o700)
    names = sorted(host.check_output(f"ls -1 {path}").split())
    assert names == ["SHA256SUMS", "backup.info", "config.tar", "database.dump", "media.tar", "redis.rdb"]
    for name in names:
        f = host.file(f"{path}/{name}")
        assert (f.user, f.mode) == ("root", 0o600), name
    host.run_expect([0], f"cd {path} && sha256sum --check --strict SHA256SUMS")
    # pg_dump custom format, the media without the remote cache, both config files.
    assert host.check_output(f"head -c 5 {path}/database.dump") == "PGDMP"
    media_list = host.check_output(f"tar -tf {path}/media.tar")
    assert "photo.jpg" in media_list and "avatar.png" in media_list
    assert "cache" not in media_list
    config_list = host.check_output(f"tar -tf {path}/config.tar").split()
    assert config_list == ["home/mastodon/live/.env.production", "etc/mastodon/secrets.env"]
    assert "release=v4.9.0-double" in host.file(f"{path}/backup.info").content_string


def test_restore_round_trip(host, round_trip_state):
    state = round_trip_state
    assert "backup" in state, "the backup test must run first"
    # Lose everything the backup holds. The flood guard's timer stops meanwhile: with the
    # secrets file gone it could not read Redis, and a measurement it cannot make counts as
    # pressure (it would trip and turn the relays off, as it should on a real server).
    host.run_expect([0], "systemctl stop mastodon-flood-guard.timer")
    for unit in SERVICES:
        host.run_expect([0], "systemctl stop %s", unit)
    host.run_expect([0], "runuser -u postgres -- dropdb --force mastodon_production")
    assert host.run("runuser -u postgres -- psql -d mastodon_production -c 'SELECT 1'").rc != 0
    host.run_expect([0], f"{REDIS_CLI} DEL day2:roundtrip")
    host.run_expect([0], f"rm -rf {MEDIA}/media_attachments {MEDIA}/accounts {ENV_FILE} {SECRETS_FILE}")
    # As on a new laptop whose first converge made another Redis password: the restore must
    # make Redis ask for the restored one.
    host.run_expect([0], "sed -i 's/^requirepass .*/requirepass another-machines-password-0123/' "
                         "/etc/redis/redis.conf && systemctl restart redis-server")

    run = playbook("restore", "-e", f"mastodon_ops_restore_from={state['backup']}")
    assert run.returncode == 0, run.stdout + run.stderr

    assert sql(host, "SELECT id, username, domain FROM accounts ORDER BY id") == state["rows"]
    assert state["tag"] in state["rows"]
    assert media_checksums(host) == state["media"]
    assert sha256(host, ENV_FILE) == state["env"]
    assert sha256(host, SECRETS_FILE) == state["secrets"]
    assert host.check_output("stat -c '%U %G %a' " + ENV_FILE) == state["env_stat"]
    assert host.check_output("stat -c '%U %G %a' " + SECRETS_FILE) == state["secrets_stat"]
    assert host.check_output(f"{REDIS_CLI} GET day2:roundtrip") == state["tag"]
    assert "another-machines-password" not in host.file("/etc/redis/redis.conf").content_string
    owner = sql(host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
    assert owner.strip() == "mastodon"
    for unit in SERVICES:
        assert host.service(unit).is_running, unit
    host.run_expect([0], "systemctl start mastodon-flood-guard.timer")
    assert not host.file("/var/lib/mastodon-ops/flood-guard.tripped").exists


def test_restore_refuses_a_corrupted_backup(host, round_trip_state):
    src = round_trip_state["backup"]
    host.run_expect([0], f"rm -rf /root/corrupt && cp -a {src} /root/corrupt")
    host.run_expect([0], "printf 'X' | dd of=/root/corrupt/media.tar bs=1 seek=1000 conv=notrunc status=none")
    sql(host, "INSERT INTO accounts (username) VALUES ('after_restore_marker')")
    run = playbook("restore", "-e", "mastodon_ops_restore_from=/root/corrupt")
    assert run.returncode != 0
    assert "checksum mismatch" in run.output
    # Nothing changed: services untouched, the newer row still there.
    assert "after_restore_marker" in sql(host, "SELECT username FROM accounts")
    for unit in SERVICES:
        assert host.service(unit).is_running, unit
    host.run_expect([0], "rm -rf /root/corrupt")


def test_timer_service_backup_and_retention(host):
    # The timer's service runs the same script; the scenario keeps 3 backups.
    for _attempt in range(3):
        host.run_expect([0], "systemctl start mastodon-backup.service")
    assert len(backups(host)) == 3
    journal = host.check_output("journalctl -u mastodon-backup.service --no-pager")
    assert "retention (3 kept): removing" in journal


# --- status ------------------------------------------------------------------------------


def test_status_healthy_one_screen(host):
    host.run_expect([0], f"{REDIS_CLI} RPUSH queue:default job1 job2")
    try:
        run = playbook("status")
    finally:
        host.run(f"{REDIS_CLI} DEL queue:default")
    out = run.output
    assert run.returncode == 0, out
    assert "social.example.test): HEALTHY" in out
    for line in ("ok   service mastodon-web: active", "ok   service mastodon-sidekiq: active",
                 "ok   service mastodon-streaming@4000: active", "ok   service postgresql: active",
                 "ok   HTTPS through nginx https://127.0.0.1/health: 200",
                 "ok   disk free on ", "ok   media cache ", "default 2", "ok   last backup: "):
        assert line in out, line


def test_status_fails_when_sidekiq_is_stopped(host):
    host.run_expect([0], "systemctl stop mastodon-sidekiq")
    try:
        run = playbook("status")
    finally:
        host.run_expect([0], "systemctl start mastodon-sidekiq")
    assert run.returncode != 0
    assert "UNHEALTHY" in run.output
    assert "FAIL service mastodon-sidekiq: inactive" in run.output
    assert "Unhealthy: service mastodon-sidekiq" in run.output


@pytest.fixture(scope="module")
def emulator():
    from cloudflare_emulator import ACCOUNT_ID, TOKEN_FULL, Emulator  # noqa: PLC0415

    emu = Emulator().start()
    env = {"CLOUDFLARE_API_URL": emu.api_url, "CLOUDFLARE_API_TOKEN": TOKEN_FULL,
           "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID}
    # Named like the cloudflare_tunnel role names it by default: after the hostname.
    adhoc("selfhost.mastodon.cloudflare_tunnel", {"name": TUNNEL}, env)
    adhoc("selfhost.mastodon.cloudflare_tunnel_route", {"tunnel": TUNNEL, "hostname": TUNNEL}, env)
    yield emu, env
    emu.stop()


def test_status_reads_the_tunnel_from_the_api(host, emulator):
    emu, env = emulator
    emu.clear_log()
    # The account and token from the inventory's site-level variables, not the environment.
    run = playbook("status", "-e", "mastodon_ops_status_tunnel=true",
                   env={"CLOUDFLARE_API_URL": env["CLOUDFLARE_API_URL"]})
    # The tunnel exists (created through the emulator) but no connector runs: unhealthy.
    assert run.returncode != 0
    assert f"FAIL tunnel {TUNNEL}: status inactive, 0 connection(s)" in run.output
    assert "FAIL service cloudflared" in run.output
    # Read only: status sent requests to the tunnel API, and none of them writes.
    sent = emu.requests
    assert any("/cfd_tunnel" in r.get("path", "") for r in sent), sent
    assert all(r.get("method") == "GET" for r in sent), sent


# --- upgrade -----------------------------------------------------------------------------


def test_upgrade_refuses_to_skip_a_minor_series(host):
    before_log = len(invocations(host))
    before_backups = backups(host)
    run = playbook("upgrade", "-e", "mastodon_ops_upgrade_version=v4.11.0-double")
    assert run.returncode != 0
    assert "REFUSED: v4.9.0-double -> v4.11.0-double" in run.output
    assert len(invocations(host)) == before_log
    assert backups(host) == before_backups


def _task_sequence(json_output):
    """(task name, changed) in run order from the ansible.posix.json callback."""
    # The JSON document, then the profile_tasks summary the scenario's ansible.cfg enables.
    data, _end = json.JSONDecoder().raw_decode(json_output[json_output.index("{"):])
    seq = []
    for play in data["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if not result.get("skipped"):
                    seq.append((task["task"]["name"], bool(result.get("changed"))))
    return seq


def _index(seq, fragment, start=0):
    for i in range(start, len(seq)):
        if fragment in seq[i][0] and seq[i][1]:
            return i
    raise AssertionError(f"no changed task matching {fragment!r} after position {start}: {seq}")


def test_upgrade_between_releases_in_the_guide_order(host):
    before_log = len(invocations(host))
    before_backups = backups(host)
    run = playbook("upgrade", "-e", "mastodon_ops_upgrade_version=v4.9.1-double",
                   env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr

    # The order of the steps, as Ansible ran them.
    seq = _task_sequence(run.stdout)
    i = _index(seq, "Back up the database, secrets, media and Redis")
    i = _index(seq, "Check out Mastodon v4.9.1-double", i)
    bundle = next(k for k in range(i, len(seq)) if "bundle" in seq[k][0].lower())
    yarn = _index(seq, "yarn install", bundle)
    pre = _index(seq, "pre-deployment migrations", yarn)
    assets = _index(seq, "Precompile the assets", pre)
    restart = _index(seq, "Restart Mastodon services", assets)
    post = _index(seq, "post-deployment migrations", restart)
    steps = _index(seq, "Run the release-specific upgrade steps", post)
    _index(seq, "Restart the services after the post-deployment migrations", steps)

    # The exact Mastodon commands, their environment and release, from the TEST DOUBLE's log.
    new = invocations(host)[before_log:]
    calls = [(c["program"], c["argv"], c["skip_post_deployment_migrations"], c["release"], c["user"])
             for c in new]
    assert calls == [
        ("rails", ["db:migrate"], "true", "v4.9.1-double", "mastodon"),
        ("rails", ["assets:precompile"], None, "v4.9.1-double", "mastodon"),
        ("rails", ["db:migrate"], None, "v4.9.1-double", "mastodon"),
        # The release-specific step of v4.9.1-double (mastodon_ops_upgrade_steps), after the
        # post-deployment migrations; neither the search-only step nor v4.9.0-double's.
        ("tootctl", ["cache", "clear"], None, "v4.9.1-double", "mastodon"),
    ], calls
    assert all(c["rails_env"] == "production" for c in new)

    # A backup of the old release was taken first.
    added = sorted(set(backups(host)) - set(before_backups))
    assert len(added) == 1
    info = host.file(f"{BACKUPS}/{added[0]}/backup.info").content_string
    assert "release=v4.9.0-double" in info

    assert host.check_output(f"runuser -u mastodon -- git -C {LIVE} describe --tags") == "v4.9.1-double"
    versions = sql(host, "SELECT version FROM schema_migrations ORDER BY version").split()
    assert "v4.9.1-double-pre" in versions and "v4.9.1-double-post" in versions
    for unit in SERVICES:
        assert host.service(unit).is_running, unit
    log = host.file("/var/log/mastodon-ops/upgrade.log").content_string
    assert "v4.9.0-double -> v4.9.1-double: done" in log


def test_failed_upgrade_stops_with_state_and_rollback(host):
    run = playbook("upgrade", "-e", "mastodon_ops_upgrade_version=v4.9.2-double")
    out = run.output
    assert run.returncode != 0
    assert "UPGRADE FAILED: v4.9.1-double -> v4.9.2-double" in out
    assert "Running before the upgrade: v4.9.1-double" in out
    backup = re.search(r"Backup taken before the upgrade: (/var/backups/mastodon/\d{8}-\d{8}T\d{6}Z)", out)
    assert backup, out[-3000:]
    assert host.file(backup.group(1)).is_directory
    assert f"git -C {LIVE} checkout v4.9.1-double" in out
    assert f"/usr/local/sbin/mastodon-restore {backup.group(1)}" in out
    # The running release was not touched.
    assert host.check_output(f"runuser -u mastodon -- git -C {LIVE} describe --tags") == "v4.9.1-double"
    for unit in SERVICES:
        assert host.service(unit).is_running, unit


def test_upgrade_to_a_release_the_host_cannot_build_stops_at_the_preflight(host):
    # v4.10.0-double asks for Node.js 99 and Ruby 9.9 (.nvmrc, package.json engines.node,
    # .ruby-version, Gemfile). One series up, so upgrade.yml takes its backup and hands over
    # to mastodon_stack, whose preflight must stop before anything is checked out or built.
    before_log = len(invocations(host))
    run = playbook("upgrade", "-e", "mastodon_ops_upgrade_version=v4.10.0-double")
    out = run.output
    assert run.returncode != 0
    assert "UPGRADE FAILED: v4.9.1-double -> v4.10.0-double" in out
    assert "PREFLIGHT FAILED: this host cannot install Mastodon v4.10.0-double" in out
    assert "Node.js: v4.10.0-double needs Node.js >=99" in out
    assert "Ruby: v4.10.0-double needs Ruby >= 9.9.0" in out
    assert invocations(host)[before_log:] == []
    assert host.check_output(f"runuser -u mastodon -- git -C {LIVE} describe --tags") == "v4.9.1-double"
    assert host.check_output(f"runuser -u mastodon -- git -C {LIVE} status --porcelain --untracked-files=no") == ""
    for unit in SERVICES:
        assert host.service(unit).is_running, unit


# --- relay flood guard ------------------------------------------------------------------
# The flood guard has a scenario of its own (molecule/flood): a relay simulator floods a tmpfs
# media cache and Sidekiq's queues while the guard runs from its timer.


def test_flood_guard_reports_healthy(host):
    host.run_expect([0], "systemctl start mastodon-flood-guard.service")
    last = host.file("/var/log/mastodon-ops/flood-guard.log").content_string.splitlines()[-1]
    assert "mastodon-flood-guard: ok: free disk " in last, last
    assert "Sidekiq " in last and "database " in last, last
    assert not host.file("/var/lib/mastodon-ops/flood-guard.tripped").exists


# --- teardown (last: it stops everything) ------------------------------------------------


def test_teardown_refuses_without_confirmation(host):
    run = playbook("teardown")
    assert run.returncode != 0
    assert "Teardown not confirmed: nothing was changed" in run.output
    for unit in SERVICES:
        assert host.service(unit).is_running, unit


def test_teardown_removes_route_dns_tunnel_and_stops_services(host, emulator):
    emu, env = emulator
    tunnels = adhoc("selfhost.mastodon.cloudflare_tunnel_info", {"tunnel": TUNNEL}, env)
    assert f'"name": "{TUNNEL}"' in tunnels.stdout
    assert "cfargotunnel.com" in json.dumps(emu.state()["dns_records"])
    # As the README prints it: the hostname, account and token come from the inventory's
    # site-level variables (group_vars); only the emulator's address travels in the environment.
    run = playbook("teardown", "-e", "confirm_teardown=yes",
                   env={"CLOUDFLARE_API_URL": env["CLOUDFLARE_API_URL"]})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr
    info = adhoc("selfhost.mastodon.cloudflare_tunnel_info", {"tunnel": TUNNEL}, env)
    assert '"tunnels": []' in info.stdout
    assert "cfargotunnel.com" not in json.dumps(emu.state()["dns_records"])
    for unit in SERVICES:
        assert not host.service(unit).is_running, unit
        assert not host.service(unit).is_enabled, unit
    assert not host.service("mastodon-flood-guard.timer").is_running
    # The data stays.
    assert host.file(ENV_FILE).exists and host.file(SECRETS_FILE).exists
    assert host.run("runuser -u postgres -- psql -d mastodon_production -c 'SELECT 1'").rc == 0
    assert len(backups(host)) == 3
