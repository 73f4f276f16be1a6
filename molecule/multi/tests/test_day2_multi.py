"""Day-2 on several hosts (docs/several-hosts.md, "Day-2 on several hosts"), run as
a user runs it: the playbooks with ansible-playbook against the scenario's inventory (db, web1,
web2), the results read from the real PostgreSQL, Redis, systemd and files, and from the
Mastodon TEST DOUBLE's invocation log (tests/mastodon_double).

- backup.yml: the database dump is made on the db host, the files on the primary app host
  (web1: the first web host by name), under one name;
- restore.yml: each part goes back on its host, with the app stopped on both web hosts while
  the database is restored;
- status.yml: one report per host with only the parts it plays, the tunnel once;
- upgrade.yml: the migrations run on exactly one host, then the other web host restarts.

The tests run in file order and build on each other (backup before restore).
"""
import json
import os
import re
import secrets

import pytest
from support.ansible_cli import ansible_playbook

from conftest import ACCOUNT, API_TOKEN, DB, WEB1, WEB2, WEBS, shell, visit

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
BACKUPS = "/var/backups/mastodon"
LIVE = "/home/mastodon/live"
MEDIA = f"{LIVE}/public/system"
ENV_FILE = f"{LIVE}/.env.production"
DOUBLE_LOG = f"{LIVE}/log/double-invocations.log"
PHOTO = f"{MEDIA}/media_attachments/files/000/000/042/original/multi.jpg"
REDIS_CLI = ("REDISCLI_AUTH=$(sed -n 's/^REDIS_PASSWORD=//p' /etc/mastodon/secrets.env) "
             "redis-cli --no-auth-warning")
STATE = {}


def playbook(name, *extra, env=None):
    return ansible_playbook(os.path.join(PROJECT, "playbooks", f"{name}.yml"), *extra, env=env, timeout=1800)


# status.yml reads the tunnel from the emulator's API (a TEST STAND-IN for Cloudflare's) with
# the seeded test token, given as a user gives it outside site.yml: in the environment.
STATUS_ENV = {"CLOUDFLARE_API_TOKEN": API_TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT}


def sql(query):
    out = shell(DB, f"runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d mastodon_production -c \"{query}\"")
    return out.stdout.strip()


def listing(container, path):
    return sorted(shell(container, f"ls -1 {path}", check=False).stdout.split())


def unix_time(container, unit, prop):
    out = shell(container, f"systemctl show -P {prop} --timestamp=unix {unit}").stdout.strip()
    assert out.startswith("@"), (container, unit, prop, out)
    return int(out[1:])


def invocations(container):
    out = shell(container, f"cat {DOUBLE_LOG}", check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def test_backup_takes_the_database_on_the_db_host_and_the_files_on_the_primary_app_host():
    tag = "multi" + secrets.token_hex(4)
    sql(f"INSERT INTO accounts (username, domain) VALUES ('{tag}', NULL)")
    shell(DB, f"{REDIS_CLI} SET multi:roundtrip {tag}")
    shell(WEB1, f"mkdir -p $(dirname {PHOTO}) && head -c 200000 /dev/urandom > {PHOTO} "
                f"&& chown -R mastodon:mastodon {MEDIA}")
    STATE.update(tag=tag, photo=shell(WEB1, f"sha256sum {PHOTO}").stdout.split()[0])

    run = playbook("backup")
    assert run.returncode == 0, run.output[-6000:]
    found = re.findall(r"Backup (\d{8}T\d{6}Z): /var/backups/mastodon/", run.stdout)
    assert found, run.stdout[-3000:]
    stamp = STATE["stamp"] = found[-1]
    # Each host numbers its own backups: <sequence>-<the shared time>.
    path = f"{BACKUPS}/[0-9]*-{stamp}"

    # The db host: the dump pg_dump made there (with the new row) and the Redis snapshot.
    assert listing(DB, path) == ["SHA256SUMS", "backup.info", "database.dump", "redis.rdb"]
    info = shell(DB, f"cat {path}/backup.info").stdout
    assert "host=db\n" in info and "parts=database redis\n" in info, info
    rows = shell(DB, f"pg_restore --data-only --table=accounts --file=- {path}/database.dump").stdout
    assert tag in rows
    # The primary app host: the secrets, .env.production and the media, no database.
    assert listing(WEB1, path) == ["SHA256SUMS", "backup.info", "config.tar", "media.tar"]
    info = shell(WEB1, f"cat {path}/backup.info").stdout
    assert "host=web1\n" in info and "parts=config media\n" in info, info
    assert "multi.jpg" in shell(WEB1, f"tar -tf {path}/media.tar").stdout
    for container in (DB, WEB1):
        shell(container, f"cd {path} && sha256sum --check --strict --quiet SHA256SUMS")
        assert shell(container, f"stat -c '%U %a' {path}").stdout.strip() == "root 700"
    # The other web host holds no part (its files are the primary's).
    assert listing(WEB2, path) == []
    # The nightly timer where a part is kept; the flood guard on the app hosts only.
    timers = ((DB, "enabled", "disabled"), (WEB1, "enabled", "enabled"), (WEB2, "disabled", "enabled"))
    for container, backup_timer, guard_timer in timers:
        assert shell(container, "systemctl is-enabled mastodon-backup.timer", check=False).stdout.strip() == backup_timer
        assert shell(container, "systemctl is-enabled mastodon-flood-guard.timer",
                     check=False).stdout.strip() == guard_timer, container


def test_restore_puts_each_part_back_on_its_host_with_the_app_stopped_everywhere():
    assert "stamp" in STATE, "the backup test must run first"
    tag = STATE["tag"]
    # Lose what the backup holds, on each host; web2's .env.production drifts from web1's.
    sql(f"DELETE FROM accounts WHERE username = '{tag}'")
    sql("INSERT INTO accounts (username) VALUES ('after_the_backup')")
    shell(DB, f"{REDIS_CLI} DEL multi:roundtrip")
    shell(WEB1, f"rm -f {PHOTO}")
    shell(WEB2, f"echo '# drift' >> {ENV_FILE}")

    run = playbook("restore")  # "latest": the newest name both the db host and web1 hold
    assert run.returncode == 0, run.output[-6000:]

    assert sql(f"SELECT count(*) FROM accounts WHERE username = '{tag}'") == "1"
    assert sql("SELECT count(*) FROM accounts WHERE username = 'after_the_backup'") == "0"
    assert shell(DB, f"{REDIS_CLI} GET multi:roundtrip").stdout.strip() == tag
    assert shell(WEB1, f"sha256sum {PHOTO}").stdout.split()[0] == STATE["photo"]
    env_sums = {web: shell(web, f"sha256sum {ENV_FILE}").stdout.split()[0] for web in WEBS}
    assert len(set(env_sums.values())) == 1, env_sums
    assert shell(WEB2, f"stat -c '%U %a' {ENV_FILE}").stdout.strip() == "mastodon 600"

    # The database was put back while Puma was stopped on both web hosts: the restored
    # database was created after each host's stop and before its start (one clock: the
    # containers share the machine's).
    created = int(float(sql("SELECT extract(epoch FROM (pg_stat_file('base/' || oid || '/PG_VERSION')).modification) "
                            "FROM pg_database WHERE datname = 'mastodon_production'")))
    for web in WEBS:
        stopped = unix_time(web, "mastodon-web", "InactiveEnterTimestamp")
        started = unix_time(web, "mastodon-web", "ActiveEnterTimestamp")
        assert stopped <= created <= started, (web, stopped, created, started)
        for unit in ("mastodon-web", "mastodon-sidekiq", "mastodon-streaming@4000", "mastodon-flood-guard.timer"):
            assert shell(web, f"systemctl is-active {unit}", check=False).stdout.strip() == "active", (web, unit)


def test_the_site_answers_through_the_edge_after_the_restore(emulator):
    status, body = visit(emulator, "/health")
    assert status == 200, body[:300]


# The status reports as Ansible returned them (ansible.posix.json callback): {host: [lines]}.
JSON_ENV = dict(STATUS_ENV, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")


def reports(run):
    # The JSON document starts at the first line that is "{"; Molecule's environment also turns
    # on the profile_tasks and timer callbacks, which print lines before and after it.
    start = re.search(r"^\{$", run.stdout, re.MULTILINE)
    assert start, f"no JSON document in the output: {run.output[-4000:]}"
    data, _end = json.JSONDecoder().raw_decode(run.stdout, start.start())
    found = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith("Show the status"):  # "<role> : Show the status"
                found.update({host: result["msg"] for host, result in task["hosts"].items()})
    return found


@pytest.fixture(scope="module")
def status_run():
    return playbook("status", env=JSON_ENV)


def report(run, host):
    lines = reports(run).get(host)
    assert lines, f"no status report of {host}: {run.output[-4000:]}"
    return lines


def test_status_reports_per_host_only_the_parts_each_plays(status_run):
    assert status_run.returncode == 0, status_run.output[-6000:]
    db, web1, web2 = report(status_run, DB), report(status_run, WEB1), report(status_run, WEB2)
    assert db[0].endswith("): HEALTHY") and db[1] == "parts: database, redis", db
    assert web1[1] == "parts: app (primary), connector" and web2[1] == "parts: app, connector", (web1, web2)
    db_text = "\n".join(db)
    assert "service postgresql: active" in db_text and "service redis-server: active" in db_text
    for absent in ("mastodon-web", "nginx", "cloudflared", "HTTPS", "Sidekiq", "flood guard", "tunnel"):
        assert absent not in db_text, (absent, db)
    assert "last backup: " in db_text and "disk free on " in db_text
    for lines in (web1, web2):
        text = "\n".join(lines)
        for present in ("service mastodon-web: active", "service nginx: active", "service cloudflared: active",
                        "HTTPS through nginx", "Sidekiq queues", "flood guard: not tripped"):
            assert present in text, (present, lines)
        assert "service postgresql" not in text and "service redis-server" not in text, lines
    # The site's check, once: the tunnel with both connectors, in the primary's report only.
    assert sum("tunnel social.example.test" in line for line in web1 + web2 + db) == 1
    tunnel = [re.match(r"ok   tunnel social\.example\.test: status healthy, (\d+) connection", line) for line in web1]
    assert any(m and int(m.group(1)) >= 2 for m in tunnel), web1  # one connector or more on each web host
    assert "last backup: " in "\n".join(web1) and "last backup: " not in "\n".join(web2)


def test_the_primary_host_is_a_variable_not_the_inventory_order():
    """mastodon_stack_primary_host moves the primary (read only: status.yml). web2 then is the
    host that should hold the files of the backups, and has none: its report says so (and the
    run fails on it), web1's no longer looks for them."""
    run = playbook("status", "-e", f"mastodon_stack_primary_host={WEB2}", env=JSON_ENV)
    web1, web2 = report(run, WEB1), report(run, WEB2)
    assert web2[1] == "parts: app (primary), connector" and web1[1] == "parts: app, connector", (web1, web2)
    assert any(line.startswith("FAIL last backup: none") for line in web2), web2
    assert not any("last backup" in line for line in web1), web1
    assert any("tunnel social.example.test" in line for line in web2), web2
    assert run.returncode != 0


def test_upgrade_migrates_once_then_restarts_the_other_web_host_after_the_first():
    before = {web: len(invocations(web)) for web in WEBS}
    before_backups = {c: listing(c, BACKUPS) for c in (DB, WEB1, WEB2)}
    run = playbook("upgrade", "-e", "mastodon_ops_upgrade_version=v4.9.1-double")
    assert run.returncode == 0, run.output[-8000:]

    new = {web: invocations(web)[before[web]:] for web in WEBS}
    migrations = {web: [c for c in calls if c["program"] == "rails" and c["argv"] == ["db:migrate"]]
                  for web, calls in new.items()}
    # The pre- and post-deployment migrations on web1 (the primary) alone; web2 none.
    assert [c["skip_post_deployment_migrations"] for c in migrations[WEB1]] == ["true", None], migrations
    assert migrations[WEB2] == [], migrations
    versions = sql("SELECT version FROM schema_migrations ORDER BY version").split()
    assert "v4.9.1-double-pre" in versions and "v4.9.1-double-post" in versions
    # Both run the new release; web2 built its assets and restarted after web1 was back.
    for web in WEBS:
        assert shell(web, f"runuser -u mastodon -- git -C {LIVE} describe --tags").stdout.strip() == "v4.9.1-double"
        assert shell(web, "systemctl is-active mastodon-web").stdout.strip() == "active"
    assert any(c["argv"] == ["assets:precompile"] for c in new[WEB2]), new[WEB2]
    assert unix_time(WEB2, "mastodon-web", "ActiveEnterTimestamp") >= unix_time(WEB1, "mastodon-web", "ActiveEnterTimestamp")
    # One backup first, its parts on the db host and web1, none on web2.
    added = {c: sorted(set(listing(c, BACKUPS)) - set(before_backups[c])) for c in (DB, WEB1, WEB2)}
    assert len(added[DB]) == 1 and added[DB] == added[WEB1] and added[WEB2] == [], added
    assert "release=v4.9.0-double" in shell(WEB1, f"cat {BACKUPS}/{added[WEB1][0]}/backup.info").stdout
