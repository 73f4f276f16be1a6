"""Disaster recovery from the off-site copy alone (runs after test_offsite.py): a second, bare
container (a new laptop) on the scenario network, the same inventory values (group_vars of
this scenario) and the documented one command: converge (as site.yml on a user's laptop), then
restore.yml with mastodon_ops_restore_from=offsite. The database rows, the media, the secrets
file and .env.production must be identical (checksums) to the old laptop's, which has not
changed since its newest snapshot on the SFTP server. The time from bare to serving is printed.

It converges a whole second stack (about as long as the scenario's own converge). It runs in
`make test` (tests/platform/matrix.yml); SELFHOST_OFFSITE_RECOVERY=0 in the environment leaves
it out of a quicker run of the scenario by hand (reported as skipped).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.ansible_cli import ansible_playbook

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
SCENARIO = Path(__file__).resolve().parents[1]
DISTRO = os.environ.get("SELFHOST_DISTRO") or "debian13"
OLD = f"selfhost-offsite-{DISTRO}"
NEW = f"selfhost-offsite-new-{DISTRO}"
NETWORK = f"selfhost-offsite-{DISTRO}"
IMAGE = os.environ.get("SELFHOST_IMAGE") or f"selfhost/{DISTRO}-systemd:latest"
APT_CACHE = os.environ.get("SELFHOST_APT_CACHE") or "/var/cache/selfhost-mastodon/apt"
CAPS = ["AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE",
        "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
        "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
        "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN",
        "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
        "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM"]
LIVE = "/home/mastodon/live"

pytestmark = pytest.mark.skipif(os.environ.get("SELFHOST_OFFSITE_RECOVERY") == "0",
                                reason="SELFHOST_OFFSITE_RECOVERY=0: the disaster recovery run left out")


def sh(container, script, check=True, timeout=300):
    out = subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True,
                         text=True, timeout=timeout, check=False)
    if check:
        assert out.returncode == 0, f"{script}\n{out.stdout}\n{out.stderr}"
    return out


def figure(line):
    print(f"\nFIGURE {line}", file=sys.stderr)
    with open(PROJECT / ".build" / "offsite-figures.txt", "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {DISTRO} {line}\n")


def fingerprint(container):
    """Checksums of what must come back: every table's rows, the media, the secrets, .env.production."""
    tables = sh(container, "runuser -u postgres -- psql -X -At -d mastodon_production -c "
                "\"SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1\"").stdout.split()
    assert tables
    query = " UNION ALL ".join(
        f"SELECT '{t}', count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM public.\"{t}\" x"
        for t in tables)
    rows = sh(container, f"runuser -u postgres -- psql -X -At -F ' ' -d mastodon_production -c {json.dumps(query)}").stdout
    media = sh(container, f"cd {LIVE}/public/system && find . -path ./cache -prune -o -type f -print0 "
                          "| sort -z | xargs -0 -r sha256sum | sha256sum").stdout.split()[0]
    files = sh(container, f"sha256sum /etc/mastodon/secrets.env {LIVE}/.env.production").stdout
    return {"rows": dict(line.split(" ", 1) for line in rows.splitlines()), "media": media, "files": files}


@pytest.fixture(scope="module")
def new_laptop(tmp_path_factory):
    subprocess.run(["docker", "rm", "-f", NEW], capture_output=True, check=False, timeout=120)
    cmd = ["docker", "run", "-d", "--name", NEW, "--hostname", "mastodon", "--network", NETWORK,
           "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
           "-v", f"{APT_CACHE}/{DISTRO}-offsite-new:/var/cache/apt/archives:rw",
           "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
           "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
           "--label", "selfhost.mastodon=new laptop of the disaster recovery test (molecule offsite)"]
    for cap in CAPS:
        cmd += ["--cap-add", cap]
    if (os.environ.get("SELFHOST_PRIVILEGED") or "false") == "true":
        cmd.append("--privileged")
    started = time.monotonic()
    subprocess.run(cmd + [IMAGE, "/lib/systemd/systemd"], check=True, capture_output=True, timeout=300)
    inventory = tmp_path_factory.mktemp("new-laptop")
    (inventory / "hosts.yml").write_text(json.dumps(
        {"mastodon": {"hosts": {NEW: {"ansible_connection": "community.docker.docker"}}}}))
    (inventory / "group_vars").symlink_to(SCENARIO / "group_vars")
    try:
        yield {"inventory": str(inventory), "started": started}
    finally:
        subprocess.run(["docker", "rm", "-f", NEW], capture_output=True, check=False, timeout=120)


def test_a_new_laptop_serves_again_from_the_off_site_copy_alone(new_laptop):
    before = fingerprint(OLD)
    state = json.loads(sh(OLD, "cat /var/lib/mastodon-ops/offsite.json").stdout)
    inv = new_laptop["inventory"]
    # TEST SET-UP ONLY: the Mastodon TEST DOUBLE's repository (GitHub stands in for it on a
    # user's laptop); not counted in the time to serve.
    prep_started = time.monotonic()
    proc = ansible_playbook(str(PROJECT / "tests" / "mastodon_double" / "prepare.yml"), inventory=inv)
    assert proc.returncode == 0, proc.output[-3000:]
    prep = time.monotonic() - prep_started
    # The documented command (README, docs/backups.md), with converge.yml in site.yml's place.
    # The new laptop's inventory name differs from the old one's here: the old name is given.
    one_started = time.monotonic()
    proc = ansible_playbook(str(PROJECT / "playbooks" / "restore.yml"),
                            "-e", "mastodon_ops_restore_from=offsite",
                            "-e", f"mastodon_ops_offsite_host={OLD}",
                            str(SCENARIO / "converge.yml"), inventory=inv, timeout=2400)
    assert proc.returncode == 0, proc.output[-5000:]
    one_command = time.monotonic() - one_started
    sh(NEW, "curl -fsk -o /dev/null -H 'Host: social.example.test' https://127.0.0.1/health")
    total = time.monotonic() - new_laptop["started"] - prep
    figure(f"disaster recovery: the one command {one_command:.0f} s; bare container to serving {total:.0f} s "
           f"(without the test double's repository set-up, {prep:.0f} s)")
    after = fingerprint(NEW)
    differing = sorted(t for t in before["rows"] if before["rows"][t] != after["rows"].get(t))
    assert not differing, {t: (before["rows"][t], after["rows"].get(t)) for t in differing}
    assert after["rows"].keys() == before["rows"].keys()
    assert after["media"] == before["media"]
    assert after["files"] == before["files"]
    rows = sum(int(v.split()[0]) for v in after["rows"].values())
    age_h = (time.time() - state["last_snapshot"]["epoch"]) / 3600
    figure(f"disaster recovery: {len(after['rows'])} tables, {rows} rows identical, 0 lost since the "
           f"snapshot; media, secrets and .env.production identical; snapshot age at restore {age_h:.2f} h")
