"""mastodon-status's "what is waiting" checks (issue 27), all warnings, never failures: a newer
Mastodon patch of the installed series or a newer series (from `git ls-remote --tags origin`
lines, written as git prints them, annotated tags with their ^{} line), the installed and the
newest available cloudflared (apt-cache policy as apt prints it), and the reboot flag that
unattended upgrades leave (a fake flag file in a temporary folder)."""

import os
import re

from support.ops_scripts import STATUS, load_script

status = load_script("mastodon_status_waiting", STATUS)

LS_REMOTE = [
    "1111111111111111111111111111111111111111\trefs/tags/v4.6.9",
    "2222222222222222222222222222222222222222\trefs/tags/v4.7.6",
    "3333333333333333333333333333333333333333\trefs/tags/v4.7.7",
    "4444444444444444444444444444444444444444\trefs/tags/v4.7.8",
    "5555555555555555555555555555555555555555\trefs/tags/v4.7.8^{}",
    "6666666666666666666666666666666666666666\trefs/tags/v4.7.9-rc.1",
    "7777777777777777777777777777777777777777\trefs/tags/v4.8.0-alpha.1",
]
DOUBLE = r"^v(\d+)\.(\d+)\.(\d+)-double$"


def test_nothing_newer_is_ok_not_a_warning():
    values, result = status.release_check("v4.7.8", LS_REMOTE)
    assert result["ok"] and not result.get("warn")
    assert values["mastodon_patch_waiting"] is None and values["mastodon_series_waiting"] is None


def test_a_newer_patch_is_a_warning_with_its_notes_and_security_from_the_tag_message():
    messages = {"v4.7.8": "Mastodon v4.7.8\n\nSecurity: fix GHSA-xxxx-yyyy-zzzz"}
    values, result = status.release_check("v4.7.6", LS_REMOTE, message=messages.get)
    assert result["ok"] and result["warn"] and result["line"].startswith("WARN release: v4.7.6 runs")
    # The newest stable patch of the series: not the release candidate, not the 4.8 alpha.
    assert values["mastodon_patch_waiting"] == "v4.7.8"
    assert values["mastodon_series_waiting"] is None
    assert "v4.7.9-rc.1" not in result["line"] and "v4.8.0" not in result["line"]
    assert "https://github.com/mastodon/mastodon/releases/tag/v4.7.8" in result["line"]
    assert "mentions SECURITY" in result["line"] and values["mastodon_security"] == {"v4.7.8": True}


def test_security_in_the_tag_name_or_no_message_fetched():
    result = status.release_check("v4.7.7", LS_REMOTE, message=lambda tag: None)[1]
    assert "tag message not fetched" in result["line"]
    result = status.release_check("v4.7.7", LS_REMOTE, message=lambda tag: "Mastodon v4.7.8")[1]
    assert "no security mention" in result["line"]
    tags = LS_REMOTE + ["8888888888888888888888888888888888888888\trefs/tags/v4.7.10-security"]
    values, result = status.release_check("v4.7.8", tags, pattern=r"^v(\d+)\.(\d+)\.(\d+)(?:-security)?$")
    assert values["mastodon_patch_waiting"] == "v4.7.10-security" and "mentions SECURITY" in result["line"]


def test_a_newer_series_is_named_and_never_automatic():
    tags = LS_REMOTE + ["9999999999999999999999999999999999999999\trefs/tags/v4.8.1"]
    values, result = status.release_check("v4.7.8", tags)
    assert result["warn"] and values["mastodon_series_waiting"] == "v4.8.1"
    assert "new series v4.8.1" in result["line"] and "never automatic" in result["line"]


def test_the_double_s_tags_and_its_pre_release():
    tags = ["a\trefs/tags/v4.9.0-double", "b\trefs/tags/v4.9.1-double", "c\trefs/tags/v4.9.2-rc.1-double",
            "d\trefs/tags/v4.10.0-double"]
    values, result = status.release_check("v4.9.0-double", tags, pattern=DOUBLE)
    assert values["mastodon_patch_waiting"] == "v4.9.1-double"
    assert values["mastodon_series_waiting"] == "v4.10.0-double"
    assert "rc.1" not in result["line"]


def test_unlisted_tags_or_unknown_release_is_a_warning_not_a_failure():
    values, result = status.release_check("v4.7.7", None)
    assert result["ok"] and result["warn"] and "cannot list the tags" in result["line"]
    values, result = status.release_check("", LS_REMOTE)
    assert result["ok"] and result["warn"]


POLICY = """cloudflared:
  Installed: 2025.8.1
  Candidate: 2025.11.1
  Version table:
     2025.11.1 500
        500 https://pkg.cloudflare.com/cloudflared any/main amd64 Packages
 *** 2025.8.1 500
        500 https://pkg.cloudflare.com/cloudflared any/main amd64 Packages
        100 /var/lib/dpkg/status
"""


def test_cloudflared_upgrade_waiting_is_a_warning_with_both_versions():
    values, result = status.cloudflared_check(POLICY)
    assert result["ok"] and result["warn"]
    assert values == {"cloudflared_installed": "2025.8.1", "cloudflared_candidate": "2025.11.1"}
    assert "2025.8.1 installed, 2025.11.1 available" in result["line"]


def test_cloudflared_current_is_ok():
    values, result = status.cloudflared_check(POLICY.replace("Installed: 2025.8.1", "Installed: 2025.11.1"))
    assert result["ok"] and not result.get("warn") and "2025.11.1, the newest" in result["line"]


def test_cloudflared_not_from_apt_shows_the_binary_s_version():
    policy = "cloudflared:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n"
    values, result = status.cloudflared_check(policy, binary=lambda: "2025.9.0")
    assert result["ok"] and not result.get("warn") and "2025.9.0, not from the apt repository" in result["line"]
    assert status.cloudflared_check("", binary=lambda: None)[1]["ok"]


def test_reboot_needed_since_the_flag_s_time(tmp_path):
    flag = tmp_path / "reboot-required"
    flag.write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.12.0-1-amd64\nlibc6\nlibc6\n")
    since = 1796083200  # 2026-12-01 00:00 UTC
    os.utime(flag, (since, since))
    values, result = status.reboot_check(str(flag), now=since + 3 * 86400)
    assert result["ok"] and result["warn"]
    assert values == {"reboot_required": True, "reboot_required_since": "2026-12-01 00:00 UTC"}
    assert re.search(r"NEEDED since 2026-12-01 00:00 UTC \(3 days\) for libc6, linux-image", result["line"])


def test_no_reboot_flag_is_ok(tmp_path):
    values, result = status.reboot_check(str(tmp_path / "reboot-required"))
    assert result["ok"] and not result.get("warn") and values == {"reboot_required": False}


def test_the_checks_are_asked_for_only():
    for name in ("release", "cloudflared", "reboot"):
        assert name in status.CHECKS and name not in status.DEFAULT_CHECKS


def test_a_waiting_reboot_keeps_the_report_healthy(tmp_path):
    import argparse
    flag = tmp_path / "reboot-required"
    flag.write_text("")
    args = argparse.Namespace(checks="reboot", reboot_flag=str(flag))
    report = status.report(guard=None, cfg={}, args=args)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["reboot"] and report["checks"][0]["warn"]
