"""The automatic patch upgrade (mastodon-autoupgrade, run by its timer's service) with the
Mastodon TEST DOUBLE: new tags appear in the double's bare repository (a stand-in for
github.com/mastodon/mastodon), the service is started as the timer starts it, and

- a newer patch of the installed series is applied; every row written before is still there;
- a patch whose migration fails is rolled back: the old release serves, no row is lost, and
  the failure mail reaches an SMTP server in the container (a ~40-line STAND-IN, below);
- a pre-release tag and a tag of another series are never chosen.

The tests run after test_flood.py (file order) and build on each other. The upgrade and the
rollback times are printed (pytest -s, or the verifier's output) and written to
$AUTOUPGRADE_RESULTS (default: .build/autoupgrade-results.json in the project).
"""

import base64
import json
import os
import time

import pytest
from support.ansible_cli import ansible_playbook

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
RESULTS = os.environ.get("AUTOUPGRADE_RESULTS", os.path.join(PROJECT, ".build", "autoupgrade-results.json"))
LIVE = "/home/mastodon/live"
STATE = "/var/lib/mastodon-ops/autoupgrade.json"
LOG = "/var/log/mastodon-ops/autoupgrade.log"
MAILS = "/tmp/smtp-standin-mails"
SMTP_PASSWORD = "smtp-standin-pw-3e9a"  # mastodon_stack_smtp_password in group_vars/all/main.yml
SERVICE = "mastodon-autoupgrade.service"
WORK = "/srv/mastodon-double-work"     # the double's work tree (tests/mastodon_double/prepare.yml)
BARE = "/srv/mastodon-double.git"
PSQL = "runuser -u mastodon -- psql -X -At -v ON_ERROR_STOP=1 -d mastodon_production"

# TEST STAND-IN for an SMTP server: EHLO offering AUTH PLAIN/LOGIN, takes any login, writes
# each mail (envelope, AUTH argument, data) as a JSON file into MAILS.
SMTP_STANDIN = r'''
import json, os, socketserver, sys, time
OUT = sys.argv[2]
os.makedirs(OUT, exist_ok=True)
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        say = lambda text: self.wfile.write((text + "\r\n").encode())
        mail = {"auth": None, "from": None, "to": []}
        say("220 smtp stand-in (TEST)")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250-stand-in"); say("250-AUTH PLAIN LOGIN"); say("250 8BITMIME")
            elif verb == "AUTH":
                parts = cmd.split()
                if len(parts) > 2:
                    mail["auth"] = parts[2]
                else:
                    say("334 ")
                    mail["auth"] = self.rfile.readline().decode().strip()
                say("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                mail["from"] = cmd[10:]; say("250 OK")
            elif verb == "RCPT":
                mail["to"].append(cmd[8:]); say("250 OK")
            elif verb == "DATA":
                say("354 go ahead")
                data = []
                while True:
                    part = self.rfile.readline()
                    if part in (b".\r\n", b".\n", b""):
                        break
                    data.append(part[1:] if part.startswith(b"..") else part)
                with open(os.path.join(OUT, "%.6f.json" % time.time()), "w") as handle:
                    json.dump(dict(mail, data=b"".join(data).decode("utf-8", "replace")), handle)
                say("250 OK queued")
            elif verb == "QUIT":
                say("221 bye"); return
            else:
                say("250 OK")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''

TIMES = {}


def sql(host, query):
    out = host.run(f"{PSQL} -c \"{query}\"")
    assert out.rc == 0, out.stderr
    return out.stdout


def rows(host):
    """Every row of the double's tables, as text: what must survive an upgrade and a rollback."""
    return {table: sql(host, f"SELECT * FROM {table} ORDER BY 1")
            for table in ("accounts", "users", "relays", "settings")}


def running(host):
    return host.check_output(f"runuser -u mastodon -- git -C {LIVE} describe --tags --exact-match HEAD")


def state(host):
    return json.loads(host.file(STATE).content_string)


def mails(host):
    """The mails the SMTP stand-in received, oldest first (headers unfolded)."""
    out = host.check_output(f"python3 -c 'import glob, json; print(json.dumps([json.load(open(f)) for f in "
                            f"sorted(glob.glob(\"{MAILS}/*.json\"))]))'")
    found = json.loads(out or "[]")
    for mail in found:
        mail["data"] = mail["data"].replace("\r\n ", " ").replace("\n ", " ")
    return found


def http_code(host, url):
    return host.check_output(f"python3 -c 'import urllib.request, urllib.error, sys\n"
                             f"try: print(urllib.request.urlopen(sys.argv[1], timeout=5).status)\n"
                             f"except urllib.error.HTTPError as e: print(e.code)' {url}")


def add_tag(host, tag, base, fail_migration=False):
    """A new release in the double's repository, as upstream pushes a tag."""
    extra = "touch db/double_migration_fails && git add db/double_migration_fails && " if fail_migration else ""
    host.run_expect([0], f"cd {WORK} && git checkout -q {base} && echo {tag} > db/double_release && {extra}"
                         f"git commit -q -am 'Mastodon TEST DOUBLE {tag}' && git tag {tag} && "
                         f"git push -q {BARE} refs/tags/{tag}")


def start_service(host):
    """As the timer starts it; returns (exit status of systemctl start, seconds)."""
    started = time.monotonic()
    run = host.run(f"systemctl start {SERVICE}")
    return run.rc, round(time.monotonic() - started, 1)


def write_row(host, name):
    sql(host, f"INSERT INTO accounts (username, domain) VALUES ('{name}', NULL)")


@pytest.fixture(scope="module", autouse=True)
def smtp_standin(host):
    host.run_expect([0], f"cat > /tmp/smtp-standin.py <<'EOF'\n{SMTP_STANDIN}\nEOF\n"
                         f"rm -rf {MAILS} && systemd-run --unit=smtp-standin --collect "
                         f"/usr/bin/python3 /tmp/smtp-standin.py 2525 {MAILS}")
    host.run_expect([0], "for i in $(seq 50); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 2525), 1)' "
                         "2>/dev/null && exit 0; sleep 0.2; done; exit 1")
    yield
    host.run("systemctl stop smtp-standin")
    with open(RESULTS, "w", encoding="utf-8") as handle:
        json.dump(TIMES, handle, indent=1)
    print(f"\nautomatic upgrade times (s): {json.dumps(TIMES)}")


def test_timer_installed_and_an_exact_tag_pins_the_release(host):
    assert host.run("systemctl is-enabled mastodon-autoupgrade.timer").stdout.strip() == "enabled"
    assert host.run("systemctl is-active mastodon-autoupgrade.timer").stdout.strip() == "active"
    before = running(host)
    rc, dummy = start_service(host)
    assert rc == 0, host.run(f"journalctl -u {SERVICE} --no-pager -n 30").stdout
    st = state(host)
    # group_vars pin mastodon_stack_version to a tag: the newer v4.9.1-double is seen, not applied.
    assert st["result"] == "pinned" and st["target"] == "v4.9.1-double", st
    assert running(host) == before


def test_a_newer_patch_is_applied_and_every_row_survives(host):
    # The inventory now follows the series (mastodon_stack_version: latest), as the README says.
    run = ansible_playbook(os.path.join(PROJECT, "molecule", "flood", "ops.yml"), "-e", "mastodon_stack_version=latest",
                           env={"ANSIBLE_PIPELINING": "1"})
    assert run.returncode == 0, run.output[-4000:]
    add_tag(host, "v4.9.2-double", "v4.9.1-double")
    # Never chosen: a pre-release above it (and v4.10.0-double, another series, prepare.yml's).
    add_tag(host, "v4.9.3-rc.1-double", "v4.9.2-double")
    for i in range(3):
        write_row(host, f"before-upgrade-{i}")
    before_rows = rows(host)
    before = running(host)
    rc, seconds = start_service(host)
    journal = host.run(f"journalctl -u {SERVICE} --no-pager -n 60").stdout
    assert rc == 0, journal
    TIMES["upgrade_wall_seconds"] = seconds
    st = state(host)
    assert st["result"] == "upgraded", st
    assert (st["installed"], st["target"]) == (before, "v4.9.2-double")
    assert st["newer_series"] == "v4.10.0-double"
    TIMES["upgrade_seconds"] = st["upgrade_seconds"]
    assert running(host) == "v4.9.2-double"
    assert rows(host) == before_rows
    migrations = sql(host, "SELECT version FROM schema_migrations WHERE version LIKE 'v4.9.2-double-%' ORDER BY 1")
    assert migrations.split() == ["v4.9.2-double-post", "v4.9.2-double-pre"]
    assert host.file(st["backup"]).is_directory
    assert http_code(host, "http://127.0.0.1:3000/health") == "200"
    # The build stamps now name the new commit: the next site.yml does not build it again.
    commit = host.check_output(f"runuser -u mastodon -- git -C {LIVE} rev-parse HEAD")
    assert host.file("/home/mastodon/.mastodon-stack/assets.commit").content_string.strip() == commit
    sent = [m for m in mails(host) if "upgraded" in m["data"]]
    assert sent and "<owner@example.test>" in sent[-1]["to"][0], mails(host)


def test_a_failing_migration_is_rolled_back_and_the_owner_is_mailed(host):
    add_tag(host, "v4.9.4-double", "v4.9.2-double", fail_migration=True)
    for i in range(3):
        write_row(host, f"before-failed-upgrade-{i}")
    before_rows = rows(host)
    before_mails = len(mails(host))
    rc, seconds = start_service(host)
    journal = host.run(f"journalctl -u {SERVICE} --no-pager -n 80").stdout
    assert rc != 0, journal  # the service reports the failed upgrade
    TIMES["failed_upgrade_and_rollback_wall_seconds"] = seconds
    st = state(host)
    assert st["result"] == "rolled_back", st
    assert st["target"] == "v4.9.4-double" and st["failed_step"] == "pre-deployment migrations", st
    TIMES["rollback_seconds"] = st["rollback_seconds"]
    TIMES["failed_upgrade_seconds"] = st["upgrade_seconds"]
    # The old release serves, with every row written before the upgrade.
    assert running(host) == "v4.9.2-double"
    assert rows(host) == before_rows
    assert sql(host, "SELECT count(*) FROM schema_migrations WHERE version LIKE 'v4.9.4-double-%'").strip() == "0"
    manifest = json.loads(host.file(f"{LIVE}/public/packs/manifest.json").content_string)
    assert manifest["release"] == "v4.9.2-double"
    assert http_code(host, "http://127.0.0.1:3000/health") == "200"
    assert http_code(host, "http://127.0.0.1:4000/api/v1/streaming/health") == "200"
    # The failure mail reached the SMTP server, sent with the instance's own login.
    new = mails(host)[before_mails:]
    failed = [m for m in new if "FAILED, rolled back to v4.9.2-double" in m["data"]]
    assert failed, new
    assert base64.b64decode(failed[0]["auth"]) == b"\0notifications\0" + SMTP_PASSWORD.encode()
    assert "pre-deployment migrations" in failed[0]["data"]
    # The password is in no log, no state file, no output.
    for text in (journal, host.file(STATE).content_string, host.file(LOG).content_string):
        assert SMTP_PASSWORD not in text


def test_the_rolled_back_patch_is_held_and_status_reports_it(host):
    backups = host.check_output("ls /var/backups/mastodon")
    rc, dummy = start_service(host)
    assert rc == 0
    st = state(host)
    assert st["result"] == "held" and st["target"] == "v4.9.4-double", st
    assert host.check_output("ls /var/backups/mastodon") == backups  # nothing tried, nothing backed up
    assert running(host) == "v4.9.2-double"
    run = ansible_playbook(os.path.join(PROJECT, "playbooks", "status.yml"), "-e", "mastodon_ops_hosts=all",
                           env={"ANSIBLE_PIPELINING": "1"})
    assert "WARN automatic patch upgrade: v4.9.4-double is held" in run.output, run.output[-3000:]
