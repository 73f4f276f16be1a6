"""Fault suite for the day-2 scripts mastodon-backup, mastodon-restore and mastodon-flood-guard.

The scripts run as they ship (roles/mastodon_ops/files), as root, on a site made in a temporary
folder. Stand-ins on PATH take the place of PostgreSQL, systemd and git (they are stand-ins,
not the real programs): a "database" is a folder under pg/, pg_dump writes a dump in two writes,
pg_restore copies one back. Faults are injected from outside, as they happen on a laptop: the
backup is killed between two writes, the disk fills up (a 256 KiB tmpfs, and a df that reports
little space), the clock is behind, ahead or steps back, another account tries to hold the
lock, the disk runs low while a backup holds the lock.

Each case records what it observed (tests/support/faults.py): a backup that was complete
before the fault and is gone or damaged after it (or a restore that left the live state
changed when it failed) is "lost"; two complete backups of one run, or two with one sequence
number, are "duplicated". The figures are printed by tests/support/faults.py at the end of
`make controller`; every case also asserts its facts.
"""
import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from support.faults import record
from support.ops_scripts import GUARD, load_script

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "mastodon_ops" / "files"
SECRET = "SECRET_KEY_BASE=" + "fa017" * 20
DOMAIN = "social.example.org"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the day-2 scripts run as root")

STANDINS = {
    # runuser -u USER -- COMMAND...: run COMMAND (the stand-ins need no other account).
    "runuser": 'while [ "$1" != -- ]; do shift; done; shift; exec "$@"\n',
    "systemctl": 'echo "systemctl $*" >>"$SITE/calls.log"\n',
    "git": '[ -s "$SITE/release" ] || exit 128; cat "$SITE/release"\n',
    # pg_dump --format=custom --dbname=NAME: two writes, a pause between them when asked.
    "pg_dump": ('db=${2#--dbname=}\nprintf "PGDMP"\ncat "$SITE/pg/$db/data"\n'
                '[ ! -e "$SITE/dump.pause" ] || { touch "$SITE/dump.paused"; sleep 60; }\n'
                'head -c "$(cat "$SITE/dump.size" 2>/dev/null || echo 1000)" /dev/zero\n'),
    "pg_restore": ('if [ "$1" = --list ]; then [ "$(head -c 5 "$2")" = PGDMP ]; exit; fi\n'
                   'for a; do case "$a" in --dbname=*) db=${a#--dbname=} ;; esac; done\n'
                   '[ ! -e "$SITE/restore.fail" ] || { echo "pg_restore: error: stand-in fault" >&2; exit 1; }\n'
                   'tail -c +6 | head -c "$(stat -c %s "$SITE/pg/seed")" >"$SITE/pg/$db/data"\n'),
    "createdb": 'for a; do name=$a; done; mkdir "$SITE/pg/$name"\n',
    "dropdb": 'for a; do name=$a; done; rm -rf -- "${SITE:?}/pg/$name"\n',
    # psql: the three statements the scripts send (size, exists, terminate) and -c RENAME.
    "psql": ('args="$*"\nif [[ "$args" == *" -c "* ]]; then\n'
             '  [[ "$args" =~ ALTER\\ DATABASE\\ \\"([^\\"]+)\\"\\ RENAME\\ TO\\ \\"([^\\"]+)\\" ]] || exit 1\n'
             '  mv -T "$SITE/pg/${BASH_REMATCH[1]}" "$SITE/pg/${BASH_REMATCH[2]}"; exit\nfi\n'
             'sql=$(cat)\nfor a; do case "$a" in db=*|name=*) v=${a#*=} ;; esac; done\n'
             'case "$sql" in\n'
             '  *pg_database_size*) cat "$SITE/db.size" 2>/dev/null || echo 4096 ;;\n'
             '  *"FROM pg_database"*) [ ! -d "$SITE/pg/$v" ] || echo 1 ;;\n'
             '  *pg_terminate_backend*) echo 0 ;;\nesac\n'),
    # df: the real one, unless a test reports a nearly full disk.
    "df": ('if [ -s "$SITE/df.free" ]; then echo "Avail Mounted on"; echo "$(cat "$SITE/df.free") /fake"; '
           'else exec /usr/bin/df "$@"; fi\n'),
    # date: the real one at a clock a test sets (behind, ahead, stepped back).
    "date": 'if [ -s "$SITE/clock" ]; then exec /usr/bin/date -d "@$(cat "$SITE/clock")" "$@"; fi; exec /usr/bin/date "$@"\n',
}


@pytest.fixture()
def site(tmp_path):
    """A Mastodon host in a folder: settings, stand-ins, a database, media and config files."""
    s = tmp_path
    (s / "bin").mkdir()
    for name, body in STANDINS.items():
        path = s / "bin" / name
        path.write_text("#!/bin/bash\nSITE=%s\n%s" % (s, body))
        path.chmod(0o755)
    (s / "pg" / "mastodon_production").mkdir(parents=True)
    (s / "pg" / "seed").write_bytes(b"rows of the live database v1\n")
    (s / "pg" / "mastodon_production" / "data").write_bytes((s / "pg" / "seed").read_bytes())
    live = s / "live"
    (live / "bin").mkdir(parents=True)
    rails = live / "bin" / "rails"
    rails.write_text('#!/bin/bash\necho "rails $*" >>%s/calls.log\n' % s)
    rails.chmod(0o755)
    (s / "release").write_text("v4.3.2\n")
    env_file, secrets_file = live / ".env.production", s / "etc" / "secrets.env"
    secrets_file.parent.mkdir()
    env_file.write_text("LOCAL_DOMAIN=%s\n%s\n" % (DOMAIN, SECRET))
    secrets_file.write_text(SECRET + "\n")
    media = s / "media"
    (media / "media_attachments").mkdir(parents=True)
    (media / "media_attachments" / "photo.jpg").write_bytes(b"\xff\xd8 photo" * 100)
    (media / "cache").mkdir()
    (media / "cache" / "remote.jpg").write_bytes(b"remote")
    backups = s / "backups"
    (s / "run").mkdir(mode=0o755)
    conf = s / "ops.conf"
    conf.write_text("\n".join([
        "APP_USER=nobody", "APP_PATH=/usr/bin:/bin", f"LIVE_DIR={live}", f"ENV_FILE={env_file}",
        f"SECRETS_FILE={secrets_file}", f"MEDIA_DIR={media}", "DB_NAME=mastodon_production",
        "DB_OWNER=nobody", "REDIS_HOST=127.0.0.1", "REDIS_PORT=6379", "REDIS_SERVICE=redis-server",
        "SERVICES='mastodon-web mastodon-sidekiq'", f"BACKUP_DIR={backups}", "BACKUP_KEEP=3",
        "BACKUP_MEDIA=true", "BACKUP_MEDIA_CACHE=false", "BACKUP_REDIS=false", "REDIS_SAVE_TIMEOUT=5",
        "RESTORE_MEDIA=true", "RESTORE_REDIS=false", "REDIS_LOCAL=false", f"DOMAIN={DOMAIN}",
        f"LOCK_FILE={s / 'run' / 'mastodon-ops' / 'ops.lock'}", ""]))
    return dict(root=s, conf=conf, backups=backups, media=media, env_file=env_file,
                secrets_file=secrets_file, live=live, lock=s / "run" / "mastodon-ops" / "ops.lock")


def env(site):
    return dict(os.environ, MASTODON_OPS_CONFIG=str(site["conf"]), LOCK_WAIT="2",
                PATH="%s:%s" % (site["root"] / "bin", os.environ["PATH"]))


def run(site, script, *args, timeout=60):
    proc = subprocess.run(["bash", str(FILES / script), *args], capture_output=True, text=True,
                          env=env(site), timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def start(site, script, *args):
    return subprocess.Popen(["bash", str(FILES / script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env(site), start_new_session=True)


def wait_for(path, seconds=20):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def complete(site):
    """Complete backups, oldest first by sequence: {name: sha256sum --check passes}."""
    names = [p.name for p in site["backups"].iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if site["backups"].exists() else []
    names.sort(key=lambda n: (int(n.split("-")[0]) if "-" in n else 0, n))
    return {n: subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"],
                              cwd=site["backups"] / n, capture_output=True, check=False).returncode == 0
            for n in names}


def partials(site):
    return sorted(p.name for p in site["backups"].glob(".partial-*")) if site["backups"].exists() else []


def lost_and_duplicated(before, after, made=0):
    """Backups complete before and gone or damaged after, outside what retention removed, and
    backups sharing a sequence number; `made`: complete backups the runs reported."""
    lost = sum(1 for n, ok in before.items() if ok and n in after and not after[n])
    seqs = [n.split("-")[0] for n in after if "-" in n]
    duplicated = len(seqs) - len(set(seqs))
    return lost, duplicated + max(0, len(after) - len(before) - made)


def live_state(site):
    s = site["root"]
    media = {str(p.relative_to(site["media"])): p.read_bytes() for p in site["media"].rglob("*") if p.is_file()} \
        if site["media"].exists() else {}
    return dict(db=(s / "pg" / "mastodon_production" / "data").read_bytes()
                if (s / "pg" / "mastodon_production" / "data").exists() else None,
                env=site["env_file"].read_bytes(), secrets=site["secrets_file"].read_bytes(), media=media)


# --- killed mid-write ------------------------------------------------------------------------


def test_backup_killed_between_two_writes_leaves_nothing_that_counts(site):
    rc, out = run(site, "mastodon-backup")
    assert rc == 0, out
    first = complete(site)
    (site["root"] / "dump.pause").touch()
    proc = start(site, "mastodon-backup")
    wait_for(site["root"] / "dump.paused")
    os.killpg(proc.pid, signal.SIGKILL)  # power cut: no trap runs
    proc.wait()
    left = partials(site)
    after_kill = complete(site)
    (site["root"] / "dump.pause").unlink()
    rc, out = run(site, "mastodon-backup")
    after = complete(site)
    lost, dup = lost_and_duplicated(first, after, made=1)
    record("backup killed between two writes", lost=lost, duplicated=dup)
    assert len(left) == 1 and after_kill == first, (left, after_kill)  # the fault did hit mid-write
    assert rc == 0 and "removing the partial folder of an interrupted run" in out, out
    assert partials(site) == [] and all(after.values()) and len(after) == 2, after
    assert list(after)[-1].startswith("00000002-"), after
    assert (lost, dup) == (0, 0)


def test_restore_killed_while_staging_leaves_the_live_state(site):
    rc, out = run(site, "mastodon-backup")
    assert rc == 0, out
    (site["root"] / "pg" / "mastodon_production" / "data").write_bytes(b"rows written after the backup\n")
    before = live_state(site)
    pause = site["root"] / "bin" / "pg_restore"
    original = pause.read_text()
    pause.write_text(original.replace('tail -c +6', 'touch "$SITE/restore.paused"; sleep 60; tail -c +6'))
    proc = start(site, "mastodon-restore", "latest")
    wait_for(site["root"] / "restore.paused")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    after = live_state(site)
    calls = (site["root"] / "calls.log").read_text() if (site["root"] / "calls.log").exists() else ""
    pause.write_text(original)
    rc, out = run(site, "mastodon-restore", "latest")  # the next run completes
    lost = int(after != before or "systemctl stop" in calls)
    record("restore killed while staging", lost=lost, duplicated=0)
    assert after == before and "systemctl stop" not in calls
    assert rc == 0, out
    assert live_state(site)["db"] == b"rows of the live database v1\n"


# --- full disk -------------------------------------------------------------------------------


def test_backup_refused_when_the_estimate_does_not_fit(site):
    run(site, "mastodon-backup")
    first = complete(site)
    (site["root"] / "db.size").write_text(str(500 * 1024 * 1024) + "\n")
    (site["root"] / "df.free").write_text(str(200 * 1024 * 1024) + "\n")
    rc, out = run(site, "mastodon-backup")
    after = complete(site)
    lost, dup = lost_and_duplicated(first, after)
    record("backup on a nearly full disk (estimate)", lost=lost, duplicated=dup)
    assert rc != 0
    assert "not enough free space" in out and str(site["backups"]) in out, out
    assert "needed about 614 MiB" in out and "free 200 MiB" in out, out
    assert after == first and partials(site) == [] and (lost, dup) == (0, 0)


def test_backup_that_hits_enospc_removes_its_partial_folder(site):
    site["backups"].mkdir(mode=0o700)
    with open(site["conf"], "a", encoding="utf-8") as conf:
        conf.write("BACKUP_SPACE_MARGIN_MB=0\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(site["backups"])], check=True)
    try:
        rc, out = run(site, "mastodon-backup")  # small: fits
        assert rc == 0, out
        first = complete(site)
        # The estimate fits (df reports room), the dump does not: a disk that filled meanwhile.
        (site["root"] / "df.free").write_text(str(10 * 1024 ** 3) + "\n")
        (site["root"] / "dump.size").write_text(str(1024 * 1024) + "\n")
        rc, out = run(site, "mastodon-backup")
        after = complete(site)
        left = partials(site)
        lost, dup = lost_and_duplicated(first, after)
        record("backup hits a full disk (ENOSPC)", lost=lost, duplicated=dup)
        assert rc != 0 and "No space left" in out, out
        assert left == [] and after == first and (lost, dup) == (0, 0)
        assert not (site["backups"] / ".sequence.new").exists()
    finally:
        subprocess.run(["umount", str(site["backups"])], check=True)


# --- clock behind, ahead, stepped back -------------------------------------------------------

DAY = 86400
NOW = 1796000000  # 2026-11


@pytest.mark.parametrize("case,clocks", [
    ("clock behind (2020 after 2026)", [NOW, NOW, NOW - 6 * 365 * DAY, NOW - 6 * 365 * DAY + 60]),
    ("clock ahead (a 2099 backup, then the right time)", [NOW + 73 * 365 * DAY, NOW, NOW + 60, NOW + 120]),
    ("clock stepped back at every run", [NOW, NOW - DAY, NOW - 2 * DAY, NOW - 3 * DAY, NOW - 4 * DAY]),
])
def test_clock_steps_never_reorder_backups(site, case, clocks):
    made, lost, dup = [], 0, 0
    for clock in clocks:
        (site["root"] / "clock").write_text(str(clock))
        before = complete(site)
        rc, out = run(site, "mastodon-backup")
        assert rc == 0, out
        made.append(out.strip().splitlines()[-1].rsplit("/", 1)[-1])
        after = complete(site)
        # The backup just made is kept and is "latest"; retention removed only older ones.
        rc, verify = run(site, "mastodon-restore", "--verify", "latest")
        assert rc == 0 and made[-1] in verify, verify
        if made[-1] not in after:
            lost += 1
        lost_now, dup_now = lost_and_duplicated(before, after, made=1)
        lost, dup = lost + lost_now, dup + dup_now
    final = list(complete(site))
    record(case, lost=lost, duplicated=dup)
    assert final == made[-3:], (final, made)  # BACKUP_KEEP=3: the three last made, in order
    assert (lost, dup) == (0, 0)


# --- a lock held by another account ----------------------------------------------------------


def test_another_account_cannot_hold_the_lock(site):
    rc, out = run(site, "mastodon-backup")  # makes the lock folder and the lock
    assert rc == 0, out
    lock_dir = site["lock"].parent
    assert (lock_dir.stat().st_mode & 0o777, site["lock"].stat().st_mode & 0o777) == (0o700, 0o600)
    holder = subprocess.run(["runuser", "-u", "nobody", "--", "flock", "-n", str(site["lock"]), "true"],
                            capture_output=True, text=True, check=False)
    first = complete(site)
    rc, out = run(site, "mastodon-backup")
    after = complete(site)
    lost, dup = lost_and_duplicated(first, after, made=1)
    record("lock held by another account", lost=lost + int(rc != 0), duplicated=dup)
    assert holder.returncode != 0 and "Permission denied" in holder.stderr, holder
    assert rc == 0 and len(after) == 2, out
    assert (lost, dup) == (0, 0)


def test_a_lock_folder_another_account_may_write_is_refused(site):
    lock_dir = site["lock"].parent
    lock_dir.mkdir(mode=0o777)
    lock_dir.chmod(0o777)
    rc, out = run(site, "mastodon-backup")
    record("lock folder open to other accounts", lost=0, duplicated=0)
    assert rc != 0 and "writable by other accounts" in out, out
    assert not site["backups"].exists() or complete(site) == {}


# --- low disk while a backup holds the lock: the guard acts, the backup yields ----------------


def test_the_backup_yields_to_the_flood_guard_on_low_disk(site):
    rc, out = run(site, "mastodon-backup")
    assert rc == 0, out
    first = complete(site)
    (site["root"] / "dump.pause").touch()
    proc = start(site, "mastodon-backup")
    wait_for(site["root"] / "dump.paused")
    guard = load_script("mastodon_flood_guard_faults", GUARD)
    cfg = dict(guard.DEFAULTS, media_dir=str(site["media"]), lock_file=str(site["lock"]),
               log_file=str(site["root"] / "guard.log"), min_free_mb=10 ** 9)
    began = time.monotonic()
    fd = guard.take_lock(cfg["lock_file"], 30, on_busy=lambda: guard.ask_backup_to_yield(cfg, guard.Guard(cfg)))
    waited = time.monotonic() - began
    out = proc.communicate(timeout=30)[0]
    try:
        after = complete(site)
        lost, dup = lost_and_duplicated(first, after)
        record("low disk while a backup holds the lock", lost=lost, duplicated=dup)
        assert fd is not None and waited < 10, waited
        assert proc.returncode == 75 and "YIELDED to the flood guard" in out, out
        assert partials(site) == [] and after == first and (lost, dup) == (0, 0)
        assert "asked a running backup to yield" in (site["root"] / "guard.log").read_text()
    finally:
        if fd is not None:
            os.close(fd)


# --- restore: identity first, staged, normalised ---------------------------------------------


def make_backup(site, release="v4.3.2"):
    (site["root"] / "release").write_text(release + "\n")
    rc, out = run(site, "mastodon-backup")
    assert rc == 0, out
    return out.strip().splitlines()[-1]


@pytest.mark.parametrize("case,checkout,fragment", [
    ("backup of a newer release", "v4.2.9", "Move this host to v4.3.2 first"),
    ("backup of another domain", "v4.3.2", "a Mastodon instance cannot change its domain"),
    ("unreadable dump", "v4.3.2", "cannot be read by pg_restore"),
    ("pg_restore fails while staging", "v4.3.2", "FAILED before the swap"),
])
def test_restore_refuses_or_fails_without_changing_the_live_state(site, case, checkout, fragment):
    backup = make_backup(site)
    (site["root"] / "release").write_text(checkout + "\n")
    if case == "backup of another domain":
        (site["conf"]).write_text(site["conf"].read_text().replace(f"DOMAIN={DOMAIN}", "DOMAIN=other.example.net"))
    if case == "unreadable dump":
        dump = Path(backup) / "database.dump"
        dump.write_bytes(b"garbage" + dump.read_bytes()[5:])
        subprocess.run("sha256sum -- * > SHA256SUMS.new && grep -v SHA256SUMS SHA256SUMS.new > SHA256SUMS; "
                       "rm SHA256SUMS.new", shell=True, cwd=backup, check=True)
    if case == "pg_restore fails while staging":
        (site["root"] / "restore.fail").touch()
    (site["root"] / "pg" / "mastodon_production" / "data").write_bytes(b"newer rows\n")
    site["secrets_file"].write_text(SECRET + "\nNEWER=1\n")
    before = live_state(site)
    rc, out = run(site, "mastodon-restore", backup)
    calls = (site["root"] / "calls.log").read_text() if (site["root"] / "calls.log").exists() else ""
    after = live_state(site)
    lost = int(after != before or "systemctl stop" in calls)
    record("restore: " + case, lost=lost, duplicated=0)
    assert rc != 0 and fragment in out and "nothing was changed" in out, out
    assert lost == 0, calls
    assert not (site["root"] / "pg" / "mastodon_production_restore").exists()
    assert SECRET.split("=")[1] not in out


def test_restore_of_an_older_release_runs_the_migrations(site):
    backup = make_backup(site, "v4.3.1")
    (site["root"] / "release").write_text("v4.3.2\n")
    rc, out = run(site, "mastodon-restore", backup)
    calls = (site["root"] / "calls.log").read_text()
    assert rc == 0, out
    assert "the database migrations (bin/rails db:migrate) run after the restore" in out, out
    assert "rails db:migrate" in calls
    assert calls.index("systemctl stop") < calls.index("rails db:migrate") < calls.index("systemctl start")


def test_restore_same_release_swaps_everything_and_normalises_owners(site):
    backup = make_backup(site)
    # A media.tar with a setuid file and a foreign owner, as an attacker's or another host's.
    media_tar = Path(backup) / "media.tar"
    with tarfile.open(media_tar, "a") as tar:
        info = tarfile.TarInfo("./media_attachments/evil")
        info.mode, info.uid, info.gid, info.size = 0o4777, 4242, 4242, 3
        tar.addfile(info, io.BytesIO(b"#!/"))
    subprocess.run("sha256sum -- $(ls | grep -v SHA256SUMS) > SHA256SUMS", shell=True, cwd=backup, check=True)
    (site["root"] / "pg" / "mastodon_production" / "data").write_bytes(b"rows written after the backup\n")
    (site["media"] / "media_attachments" / "photo.jpg").unlink()
    rc, out = run(site, "mastodon-restore", backup)
    assert rc == 0, out
    state = live_state(site)
    assert state["db"] == b"rows of the live database v1\n"
    assert "media_attachments/photo.jpg" in state["media"] and "cache/remote.jpg" in state["media"]
    evil = (site["media"] / "media_attachments" / "evil").stat()
    assert evil.st_mode & 0o7002 == 0 and (evil.st_uid, evil.st_gid) == (65534, 65534), oct(evil.st_mode)
    leftovers = [p.name for p in site["root"].rglob("*before*restore*")] + \
        [p.name for p in site["root"].rglob("*restore-new*")] + sorted(os.listdir(site["root"] / "pg"))
    assert leftovers == ["mastodon_production", "seed"], leftovers


# --- the media folder at backup time ---------------------------------------------------------


def test_symlinked_media_folder_is_followed(site):
    real = site["root"] / "disk2" / "system"
    real.parent.mkdir()
    site["media"].rename(real)
    site["media"].symlink_to(real)
    backup = make_backup(site)
    names = tarfile.open(Path(backup) / "media.tar").getnames()
    assert "./media_attachments/photo.jpg" in names


@pytest.mark.parametrize("case", ["dangling media link", "link inside the media folder"])
def test_media_that_would_be_missing_is_refused_at_backup_time(site, case):
    if case == "dangling media link":
        os.rename(site["media"], site["root"] / "gone")
        site["media"].symlink_to(site["root"] / "unmounted" / "system")
        fragment = "does not exist"
    else:
        other = site["root"] / "disk2" / "accounts"
        other.mkdir(parents=True)
        (site["media"] / "accounts").symlink_to(other)
        fragment = "holds a symbolic link"
    rc, out = run(site, "mastodon-backup")
    record("backup: " + case, lost=0, duplicated=0)
    assert rc != 0 and fragment in out, out
    assert complete(site) == {} and partials(site) == []


def test_a_host_without_the_app_backs_up_its_database(site):
    """The database host of several has no .env.production (no app there): the backup must not
    end on the missing file (pipefail once ended it with exit 2 and no message); the domain
    comes from ops.conf."""
    site["env_file"].unlink()
    conf = site["conf"].read_text().replace("BACKUP_MEDIA=true", "BACKUP_MEDIA=false")
    site["conf"].write_text(conf + "BACKUP_CONFIG=false\nBACKUP_DATABASE=true\n")
    rc, out = run(site, "mastodon-backup")
    assert rc == 0, out
    (name,) = complete(site)
    info = (site["backups"] / name / "backup.info").read_text()
    assert f"domain={DOMAIN}\n" in info, info
    assert "parts=database\n" in info, info
