"""Off-site backups (restic) against real servers: an OpenSSH SFTP server in its own container
(prepare.yml) and moto's S3 server on the controller (an S3 TEST STAND-IN, not Cloudflare R2
or AWS), bound to the scenario network's gateway address only.

The tests talk to the containers with ``docker exec`` (no testinfra ``host`` fixture: each
test runs once) and run in file order, building on each other: first backup, second backup
(the bytes it sends), a dropped connection in the middle of an upload, secrets, status, S3.
The figures are printed (run pytest with -s, as the verifier does with -v) for the report.
"""
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.ansible_cli import ansible_playbook

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SCENARIO = Path(__file__).resolve().parents[1]
DISTRO = os.environ.get("SELFHOST_DISTRO") or "debian13"
LAPTOP = f"selfhost-offsite-{DISTRO}"
SFTP = f"selfhost-offsite-sftp-{DISTRO}"
NETWORK = f"selfhost-offsite-{DISTRO}"
PASSWORD = "test-only-restic-password-4f1c9a"  # group_vars/all/main.yml (a test value)
S3_KEY_ID = "TESTSTANDINKEYID0001"
S3_SECRET = "test-stand-in-secret-7d2e61b0c4"
STATE = "/var/lib/mastodon-ops/offsite.json"
MEDIA = "/home/mastodon/live/public/system"
FIGURES = {}


def sh(container, script, check=True, timeout=300):
    out = subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True,
                         text=True, timeout=timeout, check=False)
    if check:
        assert out.returncode == 0, f"{script}\n{out.stdout}\n{out.stderr}"
    return out


def state():
    return json.loads(sh(LAPTOP, f"cat {STATE}").stdout)


def local_backup():
    return sh(LAPTOP, "mastodon-backup").stdout.strip().splitlines()[-1]


def offsite_backup(env="", check=True, timeout=600):
    return sh(LAPTOP, f"{env} mastodon-offsite-backup", check=check, timeout=timeout)


def restic(args, check=True):
    """restic on the laptop with the role's files (the repository from restic.env)."""
    script = ("set -a; . /etc/mastodon-ops/offsite/offsite.conf; . /etc/mastodon-ops/offsite/restic.env; set +a; "
              'if [ -n "$SFTP_COMMAND" ]; then exec restic -o "sftp.command=$SFTP_COMMAND" ' + args + "; "
              "else exec restic " + args + "; fi")
    return sh(LAPTOP, script, check=check)


def snapshots():
    return json.loads(restic("snapshots --json").stdout)


# What ps shows (every process's command line), read from /proc: the laptop has no procps.
PS = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <\"$f\" 2>/dev/null; echo; done"
RESTIC_RUNNING = "grep -qx restic /proc/[0-9]*/comm 2>/dev/null"


# The figures are also appended to .build/offsite-figures.txt (pytest shows a passing test's
# output only with -s).
FIGURES_FILE = PROJECT / ".build" / "offsite-figures.txt"


def add_media(name, size):
    """Random bytes in the uploaded media (made on first upload: a fresh install has none)."""
    sh(LAPTOP, f"install -d -o mastodon -g mastodon {MEDIA} && head -c {size} /dev/urandom > {MEDIA}/{name} "
               f"&& chown mastodon:mastodon {MEDIA}/{name}")


def figure(name, value):
    FIGURES[name] = value
    print(f"\nFIGURE {name}: {value}", file=sys.stderr)
    with open(FIGURES_FILE, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {DISTRO} {name}: {value}\n")


# --- installation ------------------------------------------------------------------------


def test_secret_files_are_root_only():
    for name in ("password", "restic.env", "ssh_key", "ssh_config", "offsite.conf"):
        mode = sh(LAPTOP, f"stat -c '%U %G %a' /etc/mastodon-ops/offsite/{name}").stdout.split()
        assert mode == ["root", "root", "600"], (name, mode)
    assert sh(LAPTOP, "stat -c %a /etc/mastodon-ops/offsite").stdout.strip() == "700"
    assert sh(LAPTOP, "cat /etc/mastodon-ops/offsite/password").stdout == PASSWORD


def test_timers_run_after_the_local_backup():
    for timer in ("mastodon-offsite-backup.timer", "mastodon-offsite-check.timer"):
        assert sh(LAPTOP, f"systemctl is-enabled {timer}").stdout.strip() == "enabled"
        assert sh(LAPTOP, f"systemctl is-active {timer}").stdout.strip() == "active"
    after = sh(LAPTOP, "systemctl show -p After --value mastodon-offsite-backup.service").stdout
    assert "mastodon-backup.service" in after


def test_the_repository_was_created_once_on_the_sftp_server():
    assert sh(SFTP, "test -f /srv/restic/mastodon/config && stat -c %U /srv/restic/mastodon/config").stdout.strip() == "restic"
    # The role's init step finds it: "exists", nothing overwritten.
    assert sh(LAPTOP, "mastodon-offsite-backup --init").stdout.strip() == "exists"


# --- backups -----------------------------------------------------------------------------


def test_first_backup_goes_to_the_sftp_server():
    # Some media, so that the first backup has something to send: 6 MB of random bytes.
    add_media("offsite-test.bin", 6_000_000)
    newest = local_backup()
    started = time.monotonic()
    out = sh(LAPTOP, "systemctl start mastodon-offsite-backup.service", timeout=600)
    figure("first backup seconds", round(time.monotonic() - started, 1))
    assert out.returncode == 0
    snap = state()["last_snapshot"]
    assert snap["source"] == newest.rsplit("/", 1)[1]
    assert snap["data_added"] > 6_000_000 * 0.9, snap
    figure("first backup bytes sent (data_added)", snap["data_added"])
    figure("first backup bytes in the snapshot", snap["total_bytes_processed"])
    snaps = snapshots()
    assert len(snaps) == 1 and snaps[0]["short_id"] in snap["snapshot_id"]
    assert snaps[0]["hostname"] == LAPTOP and "selfhost-mastodon" in snaps[0]["tags"]
    # The service's journal has the summary line.
    journal = sh(LAPTOP, "journalctl -u mastodon-offsite-backup.service --no-pager").stdout
    assert "bytes sent" in journal
    # The staging links are gone; the local backup is untouched.
    assert sh(LAPTOP, "test ! -e /var/backups/mastodon/.offsite-upload", check=False).returncode == 0
    sh(LAPTOP, f"cd {newest} && sha256sum --quiet -c SHA256SUMS")


def test_a_second_backup_of_an_unchanged_instance_sends_almost_nothing():
    first = state()["last_snapshot"]["data_added"]
    local_backup()
    offsite_backup()
    second = state()["last_snapshot"]["data_added"]
    figure("second backup bytes sent (data_added)", second)
    assert second < first / 10, (first, second)
    # Retention (keep-daily 7 and so on): while fewer than 7 days have snapshots, restic (0.17
    # and later) keeps the oldest one as well as each day's newest; both are here.
    ids = [s["id"] for s in sorted(snapshots(), key=lambda s: s["time"])]
    assert len(ids) == 2 and ids[-1] == state()["last_snapshot"]["snapshot_id"], ids


def test_a_connection_dropped_mid_upload_then_the_next_run_completes():
    add_media("offsite-big.bin", 30_000_000)
    local_backup()
    before = state()["last_snapshot"]["snapshot_id"]
    ids_before = [s["id"] for s in sorted(snapshots(), key=lambda s: s["time"])]
    # Slow the upload (2 MiB/s) for this one run, in the background.
    sh(LAPTOP, "MASTODON_OPS_OFFSITE_LIMIT_UPLOAD_KIB=2048 setsid sh -c "
               "'mastodon-offsite-backup >/tmp/offsite-fault.log 2>&1; echo $? >/tmp/offsite-fault.rc' "
               "</dev/null >/dev/null 2>&1 &")
    # Wait until the upload is under way (the repository's data grows), then drop the
    # connection: kill the SFTP session of the user restic on the server (sshd stays up).
    grown = False
    base = int(sh(SFTP, "du -sb /srv/restic/mastodon/data | cut -f1").stdout)
    for _attempt in range(120):
        now = int(sh(SFTP, "du -sb /srv/restic/mastodon/data | cut -f1").stdout)
        if now > base + 4_000_000:
            grown = True
            break
        time.sleep(0.5)
    assert grown, "the upload did not start"
    sh(SFTP, "pkill -KILL -u restic")
    for _attempt in range(300):
        if sh(LAPTOP, "test -f /tmp/offsite-fault.rc", check=False).returncode == 0:
            break
        time.sleep(1)
    rc = sh(LAPTOP, "cat /tmp/offsite-fault.rc").stdout.strip()
    log = sh(LAPTOP, "cat /tmp/offsite-fault.log").stdout
    print(f"\ninterrupted run (exit {rc}):\n{log[-1500:]}", file=sys.stderr)
    assert rc != "0", log
    assert sorted(s["id"] for s in snapshots()) == sorted(ids_before), "an interrupted upload must not leave a snapshot"
    assert "last_failure" in state()
    # The next run completes (it takes over what was uploaded) and the repository checks out.
    offsite_backup()
    after = state()["last_snapshot"]
    # Retention: the day's earlier newest snapshot (the second backup's) is gone; the oldest stays.
    ids = [s["id"] for s in sorted(snapshots(), key=lambda s: s["time"])]
    assert after["snapshot_id"] != before and ids == [ids_before[0], after["snapshot_id"]], (ids_before, ids)
    figure("run after the dropped connection: bytes sent", after["data_added"])
    out = sh(LAPTOP, "systemctl start mastodon-offsite-check.service && journalctl -u mastodon-offsite-check.service --no-pager")
    assert "no errors were found" in out.stdout, out.stdout
    assert state()["last_check"]["ok"] is True


# --- secrets -----------------------------------------------------------------------------


def test_secrets_stay_out_of_ps_the_journal_and_world_readable_files():
    key_line = sh(LAPTOP, "sed -n 2p /etc/mastodon-ops/offsite/ssh_key").stdout.strip()
    assert len(key_line) > 20
    # ps during a run: every process's command line while a backup is going on (new media, so
    # that the slowed upload lasts a few seconds).
    add_media("offsite-ps.bin", 5_000_000)
    local_backup()
    sh(LAPTOP, "MASTODON_OPS_OFFSITE_LIMIT_UPLOAD_KIB=512 setsid sh -c 'mastodon-offsite-backup >/dev/null 2>&1' "
               "</dev/null >/dev/null 2>&1 &")
    seen = ""
    for _attempt in range(20):
        seen += sh(LAPTOP, PS).stdout
        time.sleep(0.3)
    assert "restic" in seen
    sh(LAPTOP, f"while {RESTIC_RUNNING}; do sleep 1; done", timeout=300)
    journal = sh(LAPTOP, "journalctl --no-pager -o cat").stdout
    for secret in (PASSWORD, key_line):
        assert secret not in seen
        assert secret not in journal
    # World-readable files holding the password or the key: none.
    hits = sh(LAPTOP, "grep -rlsF -e " + shlex.quote(PASSWORD) + " -e " + shlex.quote(key_line)
              + " /etc /var /home /root /tmp /run /usr/local 2>/dev/null || true").stdout.split()
    for path in hits:
        mode = int(sh(LAPTOP, f"stat -c %a {shlex.quote(path)}").stdout.strip(), 8)
        assert not mode & 0o004, f"{path} holds a secret and is world-readable"
    print(f"\nfiles holding the repository password or key (all root-only): {hits}", file=sys.stderr)


# --- status ------------------------------------------------------------------------------


def test_status_shows_the_newest_snapshot_and_the_last_check():
    proc = ansible_playbook(str(PROJECT / "playbooks" / "status.yml"), "-e", "mastodon_ops_hosts=all")
    assert proc.returncode == 0, proc.output[-3000:]
    line = [ln for ln in proc.output.splitlines() if "ok   off-site: snapshot " in ln]
    assert line, proc.output[-3000:]
    assert "MiB" in line[0] and "sent" in line[0] and "passed" in line[0], line
    print(f"\nstatus: {line[0].strip()}", file=sys.stderr)
    # Older than the threshold: unhealthy.
    sh(LAPTOP, f"python3 -c \"import json; p='{STATE}'; d=json.load(open(p)); d['last_snapshot']['epoch'] -= 40*3600; "
               "json.dump(d, open(p, 'w'))\"")
    proc = ansible_playbook(str(PROJECT / "playbooks" / "status.yml"), "-e", "mastodon_ops_hosts=all")
    assert proc.returncode != 0
    assert any("FAIL" in ln and "off-site:" in ln for ln in proc.output.splitlines()), proc.output[-3000:]


# --- S3 (moto's server: an S3 TEST STAND-IN) ---------------------------------------------


def gateway():
    out = subprocess.run(["docker", "network", "inspect", NETWORK, "-f", "{{(index .IPAM.Config 0).Gateway}}"],
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def moto():
    address = gateway()
    with socket.socket() as s:
        s.bind((address, 0))
        port = s.getsockname()[1]
    moto_bin = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(moto_bin), "-H", address, "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _attempt in range(60):
            try:
                socket.create_connection((address, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield f"http://{address}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        # Back to the SFTP repository (group_vars): a laptop left pointed at a stopped S3
        # server would make a later run wait on restic's retries.
        back = ansible_playbook(str(SCENARIO / "offsite_ops.yml"), timeout=900)
        assert back.returncode == 0, back.output[-3000:]


def test_backup_to_an_s3_bucket(moto, tmp_path):
    settings = tmp_path / "s3.json"
    settings.write_text(json.dumps({
        "mastodon_ops_offsite_repository": f"s3:{moto}/mastodon-offsite",
        "mastodon_ops_offsite_s3_access_key_id": S3_KEY_ID,
        "mastodon_ops_offsite_s3_secret_access_key": S3_SECRET,
        "mastodon_ops_offsite_s3_region": "us-east-1",
    }))
    settings.chmod(0o600)
    proc = ansible_playbook(str(SCENARIO / "offsite_ops.yml"), "-e", f"@{settings}")
    assert proc.returncode == 0, proc.output[-3000:]
    assert "Create the off-site repository unless it exists" in proc.output
    assert S3_SECRET not in proc.output
    env = sh(LAPTOP, "cat /etc/mastodon-ops/offsite/restic.env").stdout
    assert "AWS_SECRET_ACCESS_KEY=" in env and "s3:http" in env
    started = time.monotonic()
    offsite_backup()
    figure("S3 first backup seconds", round(time.monotonic() - started, 1))
    figure("S3 first backup bytes sent", state()["last_snapshot"]["data_added"])
    local_backup()
    offsite_backup()
    figure("S3 second backup bytes sent", state()["last_snapshot"]["data_added"])
    ids = [s["id"] for s in sorted(snapshots(), key=lambda s: s["time"])]
    assert len(ids) == 2 and ids[-1] == state()["last_snapshot"]["snapshot_id"], ids
    sh(LAPTOP, "mastodon-offsite-backup --check")
    journal = sh(LAPTOP, "journalctl --no-pager -o cat").stdout
    assert S3_SECRET not in journal
    ps = sh(LAPTOP, PS).stdout
    assert S3_SECRET not in ps
    print(f"\nFIGURES {json.dumps(FIGURES)}", file=sys.stderr)
