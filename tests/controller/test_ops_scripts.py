"""Bad inputs for the day-2 scripts mastodon-restore and mastodon-backup, run on the controller.

The scripts run for real, with a settings file and a backup made here, and with stand-ins on
PATH for every command that would change the system (systemctl, runuser, redis-cli, install):
each stand-in records its call and fails. "Refused before any change" means: the script
failed with a message naming what is wrong, and no stand-in was called and no file outside
the backup was written. The scripts need root (they check it), as on the server.
"""
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from bad_inputs.recorder import record

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "mastodon_ops" / "files"

SECRET = "SECRET_KEY_BASE=" + "5ec7e7" * 20
STANDINS = ["systemctl", "runuser", "redis-cli", "install", "dropdb", "createdb", "pg_restore",
            "psql", "pg_dump"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the day-2 scripts run as root")


@pytest.fixture()
def site(tmp_path):
    """Settings, stand-ins and one valid backup."""
    live = tmp_path / "live"
    live.mkdir()
    env_file, secrets_file = live / ".env.production", tmp_path / "etc" / "secrets.env"
    secrets_file.parent.mkdir()
    env_file.write_text("LOCAL_DOMAIN=social.example.org\n" + SECRET + "\n")
    secrets_file.write_text(SECRET + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    for name in STANDINS:
        stub = bin_dir / name
        stub.write_text('#!/bin/sh\necho "%s $*" >>%s\nexit 1\n' % (name, calls))
        stub.chmod(0o755)
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    conf = tmp_path / "ops.conf"
    conf.write_text("\n".join([
        "APP_USER=mastodon", "APP_PATH=/usr/bin", f"LIVE_DIR={live}", f"ENV_FILE={env_file}",
        f"SECRETS_FILE={secrets_file}", f"MEDIA_DIR={tmp_path / 'media'}", "DB_NAME=mastodon_production",
        "DB_OWNER=mastodon", "REDIS_HOST=127.0.0.1", "REDIS_PORT=6379", "REDIS_SERVICE=redis-server",
        "SERVICES='mastodon-web mastodon-sidekiq'", f"BACKUP_DIR={backups}", "BACKUP_KEEP=3",
        "BACKUP_MEDIA=true", "BACKUP_MEDIA_CACHE=false", "BACKUP_REDIS=false", "REDIS_SAVE_TIMEOUT=5",
        "RESTORE_MEDIA=true", "RESTORE_REDIS=true", ""]))
    backup = backups / "20260101T033000Z"
    backup.mkdir(mode=0o700)
    make_config_tar(backup / "config.tar", [str(env_file)[1:], str(secrets_file)[1:]], tmp_path)
    (backup / "database.dump").write_bytes(b"PGDMP stand-in")
    (backup / "backup.info").write_text("created=20260101T033000Z\n")
    write_sums(backup)
    return dict(tmp=tmp_path, conf=conf, bin=bin_dir, calls=calls, backup=backup,
                env_file=env_file, secrets_file=secrets_file, backups=backups)


def make_config_tar(path, members, tmp, extra=None):
    with tarfile.open(path, "w") as tar:
        for member in members:
            data = ("content of %s\n" % member).encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)


def write_sums(backup, names=None):
    names = names or sorted(p.name for p in backup.iterdir() if p.name != "SHA256SUMS")
    lines = ["%s  %s" % (hashlib.sha256((backup / n).read_bytes()).hexdigest(), n) for n in names]
    (backup / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def run(site, script, *args, lock=None):
    env = dict(os.environ, MASTODON_OPS_CONFIG=str(site["conf"]),
               MASTODON_OPS_LOCK=str(lock or site["tmp"] / "ops.lock"), LOCK_WAIT="1",
               PATH="%s:%s" % (site["bin"], os.environ["PATH"]))
    proc = subprocess.run(["bash", str(FILES / script), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def tarinfo(name, kind=tarfile.REGTYPE, linkname="", size=1):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


# Tar files whose members try to leave the restore's paths; each case: (the tar file, its
# members as a function of the two expected config.tar members -> (names, extra TarInfo)).
TAR_DAMAGE = {
    "config.tar with dotdot member": ("config.tar", lambda m: ([m[0], "../../etc/cron.d/evil"], [])),
    "config.tar with absolute member": ("config.tar", lambda m: ([m[0], "/etc/cron.d/evil"], [])),
    "config.tar with an extra member": ("config.tar", lambda m: (m + ["etc/passwd"], [])),
    "config.tar with a link at an expected path": (
        "config.tar", lambda m: ([m[0]], [tarinfo(m[1], tarfile.SYMTYPE, "/etc/shadow")])),
    "config.tar with an unexpected path": ("config.tar", lambda m: ([m[0], "home/mastodon/.bashrc"], [])),
    "media.tar with dotdot": ("media.tar", lambda m: ([], [tarinfo("../../../etc/evil")])),
    "media.tar with a symlink": ("media.tar", lambda m: ([], [tarinfo("cache", tarfile.SYMTYPE, "/etc")])),
}


def damage(site, case):
    """Break the backup as the case says; return (argument, text the message must hold)."""
    b, tmp = site["backup"], site["tmp"]
    members = [str(site["env_file"])[1:], str(site["secrets_file"])[1:]]
    if case == "relative path":
        return "backups/20260101T033000Z", "absolute path"
    if case == "path with dotdot":
        return str(site["backups"]) + "/../backups/20260101T033000Z", ".."
    if case == "symlink to the backup":
        (tmp / "link").symlink_to(b)
        return str(tmp / "link"), "symbolic link"
    if case == "not a directory":
        return str(b / "database.dump"), "is not a directory"
    if case == "no SHA256SUMS":
        (b / "SHA256SUMS").unlink()
        return str(b), "SHA256SUMS is missing"
    if case == "garbage line in SHA256SUMS":
        with open(b / "SHA256SUMS", "a") as handle:
            handle.write("this is not a checksum line\n")
        return str(b), "SHA256SUMS has a line"
    if case == "SHA256SUMS lists a foreign file":
        (b / "evil.sh").write_text("echo hi\n")
        write_sums(b)
        return str(b), "evil.sh"
    if case == "SHA256SUMS lists a file twice":
        text = (b / "SHA256SUMS").read_text()
        (b / "SHA256SUMS").write_text(text + text.splitlines()[0] + "\n")
        return str(b), "twice"
    if case == "database.dump not listed":
        write_sums(b, ["backup.info", "config.tar"])
        return str(b), "database.dump"
    if case == "unlisted extra file":
        (b / "media.tar").write_bytes(b"")
        return str(b), "media.tar"
    if case == "listed file missing":
        (b / "backup.info").unlink()
        return str(b), "backup.info"
    if case == "checksum mismatch":
        (b / "database.dump").write_bytes(b"PGDMP tampered")
        return str(b), "checksum mismatch"
    if case in TAR_DAMAGE:
        # A tar file replaced by one with the case's members: (names with content, TarInfo).
        tar_name, content = TAR_DAMAGE[case]
        names, extra = content(members)
        make_config_tar(b / tar_name, names, tmp, extra=extra)
        write_sums(b)
        return str(b), tar_name
    raise AssertionError(case)


RESTORE_CASES = ["relative path", "path with dotdot", "symlink to the backup", "not a directory",
                 "no SHA256SUMS", "garbage line in SHA256SUMS", "SHA256SUMS lists a foreign file",
                 "SHA256SUMS lists a file twice", "database.dump not listed", "unlisted extra file",
                 "listed file missing", "checksum mismatch", "config.tar with dotdot member",
                 "config.tar with absolute member", "config.tar with an extra member",
                 "config.tar with a link at an expected path", "config.tar with an unexpected path",
                 "media.tar with dotdot", "media.tar with a symlink"]


def snapshot(site):
    return {p: p.read_bytes() for p in (site["env_file"], site["secrets_file"])}


@pytest.mark.parametrize("case", RESTORE_CASES)
def test_restore_refuses_a_bad_backup_before_any_change(site, case):
    argument, fragment = damage(site, case)
    before = snapshot(site)
    rc, out = run(site, "mastodon-restore", argument)
    changed = site["calls"].exists() or snapshot(site) != before
    secret = SECRET in out or SECRET.split("=")[1] in out
    record("ops scripts", "restore " + case, rc != 0, changed, fragment in out, secret)
    assert rc != 0, out
    assert fragment in out, out
    assert "nothing was changed" in out, out
    assert not changed, site["calls"].read_text() if site["calls"].exists() else "files changed"
    assert not secret


def test_a_valid_backup_passes_every_check(site):
    """The same checks accept a good backup: it gets as far as staging the database into a
    scratch database (the stand-ins fail there), and that failure changes nothing live: the
    services were never stopped and the config files are as they were."""
    restore = site["bin"] / "pg_restore"
    restore.write_text('#!/bin/sh\necho "pg_restore $*" >>%s\n[ "$1" = --list ]\n' % site["calls"])
    before = snapshot(site)
    rc, out = run(site, "mastodon-restore", str(site["backup"]))
    calls = site["calls"].read_text()
    assert rc != 0  # the stand-in runuser fails on purpose
    assert "pg_restore --list" in calls and "dropdb --if-exists mastodon_production_restore" in calls, calls
    assert "systemctl" not in calls and snapshot(site) == before, calls
    assert "FAILED before the swap" in out and "nothing was changed" in out, out


@pytest.mark.parametrize("script,args", [("mastodon-restore", ["latest"]), ("mastodon-backup", [])])
def test_the_ops_lock_keeps_a_second_run_out(site, script, args):
    lock = site["tmp"] / "held.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "20"])
    try:
        for dummy in range(50):
            if subprocess.run(["flock", "-n", str(lock), "true"], check=False).returncode != 0:
                break
            subprocess.run(["sleep", "0.1"], check=False)
        before = sorted(p.name for p in site["backups"].iterdir())
        rc, out = run(site, script, *args, lock=lock)
    finally:
        holder.kill()
        holder.wait()
    changed = site["calls"].exists() or sorted(p.name for p in site["backups"].iterdir()) != before
    record("ops scripts", script + " while the lock is held", rc != 0, changed, str(lock) in out, SECRET in out)
    assert rc != 0 and str(lock) in out, out
    assert not changed


def test_backup_trap_never_removes_what_it_did_not_make(site):
    """A failing backup removes only its own work folder, and only once it exists."""
    rc, out = run(site, "mastodon-backup")  # the stand-in runuser (psql, pg_dump) fails
    assert rc != 0 and "mastodon_production" in out and "nothing was written" in out, out
    assert sorted(p.name for p in site["backups"].iterdir()) == ["20260101T033000Z"]


def run_with_fd(site, script, fd, *args, lock):
    env = dict(os.environ, MASTODON_OPS_CONFIG=str(site["conf"]), MASTODON_OPS_LOCK=str(lock), LOCK_WAIT="1",
               MASTODON_OPS_LOCK_FD=str(fd), PATH="%s:%s" % (site["bin"], os.environ["PATH"]))
    proc = subprocess.run(["bash", str(FILES / script), *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False, pass_fds=(fd,))
    return proc.returncode, proc.stdout + proc.stderr


def test_the_lock_passed_by_autoupgrade_is_used_not_waited_for(site):
    """mastodon-autoupgrade holds the lock for a whole upgrade and passes its descriptor: the
    restore it runs goes on at once (as far as the stand-ins let it); a descriptor of another
    file is refused before any change."""
    import fcntl
    restore = site["bin"] / "pg_restore"
    restore.write_text('#!/bin/sh\necho "pg_restore $*" >>%s\n[ "$1" = --list ]\n' % site["calls"])
    lock = site["tmp"] / "run" / "ops.lock"
    lock.parent.mkdir(mode=0o700)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    other = os.open(site["tmp"] / "other.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        rc, out = run_with_fd(site, "mastodon-restore", fd, str(site["backup"]), lock=lock)
        assert "pg_restore --list" in site["calls"].read_text(), out   # past the lock, into the checks
        assert "holds" not in out, out
        site["calls"].unlink()
        rc, out = run_with_fd(site, "mastodon-restore", other, str(site["backup"]), lock=lock)
        assert rc != 0 and "MASTODON_OPS_LOCK_FD does not hold" in out and "nothing was changed" in out, out
        assert not site["calls"].exists()
    finally:
        os.close(fd)
        os.close(other)
