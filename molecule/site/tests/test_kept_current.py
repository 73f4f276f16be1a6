"""Kept current (issue 27) on the converged laptop: a new cloudflared binary restarts the
connector by itself (cloudflared-restart.path; the laptop is the only connector, so its turn is
at once), the apt origin is left out where cloudflared does not come from Cloudflare's
repository (here the connector STAND-IN, install_method binary), and mastodon-status says what
is waiting: a newer Mastodon series (the TEST DOUBLE's v4.10.0-double; its pre-release
v4.9.2-rc.1-double is no patch), the installed cloudflared, and the reboot flag with its time."""
import json
import time

from conftest import visit_until

BIN = "/usr/local/bin/cloudflared"
STATUS = ["/usr/bin/python3", "/usr/local/sbin/mastodon-status", "--checks", "release,cloudflared,reboot",
          "--tag-pattern", r"^v(\d+)\.(\d+)\.(\d+)-double$", "--cloudflared-bin", BIN]


def invocation(host):
    return host.check_output("systemctl show cloudflared.service -p InvocationID --value")


def test_the_binary_is_watched_and_the_apt_origin_left_out(host):
    assert host.service("cloudflared-restart.path").is_running
    assert host.service("cloudflared-restart.path").is_enabled
    assert f"PathChanged={BIN}" in host.file("/etc/systemd/system/cloudflared-restart.path").content_string
    # One connector: its turn is at once.
    assert "ExecStartPre=/bin/sleep 0\n" in host.file("/etc/systemd/system/cloudflared-restart.service").content_string
    # The STAND-IN is not from Cloudflare's repository: unattended upgrades are not told about it.
    assert not host.file("/etc/apt/apt.conf.d/53selfhost-cloudflared-upgrades").exists


def test_a_new_binary_restarts_the_connector(host, emulator):
    before = invocation(host)
    with host.sudo():
        # As dpkg does: the new file beside the old one, then renamed over it.
        host.check_output(f"cp -p {BIN} {BIN}.dpkg-new && mv -f {BIN}.dpkg-new {BIN}")
    deadline = time.monotonic() + 60
    while invocation(host) == before and time.monotonic() < deadline:
        time.sleep(1)
    assert invocation(host) != before, "cloudflared was not restarted after its binary changed"
    assert host.service("cloudflared").is_running
    status, _headers, body = visit_until(emulator, "/health", 200, timeout=90)
    assert status == 200, body


def test_status_says_what_is_waiting(host):
    with host.sudo():
        host.check_output("rm -f /run/reboot-required* && touch -d '2026-12-01 06:00 UTC' /run/reboot-required"
                          " && echo linux-image-amd64 > /run/reboot-required.pkgs")
        try:
            out = host.check_output(" ".join(f"'{a}'" for a in STATUS))
        finally:
            host.run("rm -f /run/reboot-required /run/reboot-required.pkgs")
    report = json.loads(out)
    lines = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True, report
    release = lines["release"]
    assert release["warn"] and release["line"].startswith("WARN release: v4.9.1-double runs"), release
    assert "new series v4.10.0-double" in release["line"] and "rc.1" not in release["line"]
    assert report["measurements"]["mastodon_patch_waiting"] is None
    assert "not from the apt repository" in lines["cloudflared"]["line"], lines["cloudflared"]
    assert lines["reboot"]["warn"] and "NEEDED since 2026-12-01 06:00 UTC" in lines["reboot"]["line"]
    assert "linux-image-amd64" in lines["reboot"]["line"]
