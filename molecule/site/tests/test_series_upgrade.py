"""A series in mastodon_stack_version (issue 27): side_effect.yml's verify mode converge runs
site.yml with mastodon_stack_version "4.9" on the laptop converged at v4.9.0-double. The TEST
DOUBLE's repository (tests/mastodon_double/prepare.yml) holds v4.9.1-double, the pre-release
v4.9.2-rc.1-double and v4.10.0-double: "4.9" must mean v4.9.1-double (never the pre-release,
never the other series), and site.yml must move there through upgrade.yml's path: the release
notes of each release it crosses, a backup first, then the move, logged in the upgrade log."""
import re

from conftest import site_runs

LIVE = "/home/mastodon/live"
UPGRADE_LOG = "/var/log/mastodon-ops/upgrade.log"
NOTES = "https://github.com/mastodon/mastodon/releases/tag/"


def verify_run():
    runs = site_runs()
    assert len(runs) >= 3, "ansible.log has no verify mode converge (side_effect.yml)"
    return runs[2][3]


def test_the_repository_really_offers_a_pre_release_and_another_series(host):
    tags = host.check_output("runuser -u mastodon -- git -C %s ls-remote --tags --refs origin", LIVE)
    for tag in ("v4.9.1-double", "v4.9.2-rc.1-double", "v4.10.0-double"):
        assert "refs/tags/" + tag in tags, tags


def test_the_series_moved_the_laptop_to_its_newest_stable_patch(host):
    assert host.check_output("runuser -u mastodon -- git -C %s describe --tags", LIVE) == "v4.9.1-double"
    text = verify_run()
    assert "mastodon_stack_version 4.9 means v4.9.1-double" in re.sub(r"\s+", " ", text)
    for wrong in ("v4.9.2-rc.1-double", "v4.10.0-double"):
        assert f"Check out Mastodon {wrong}" not in text and f"means {wrong}" not in text, wrong
        assert f"mastodon_stack_version={wrong}" not in text, wrong


def test_site_moved_through_the_upgrade_path_backup_first():
    text = verify_run()
    order = ["Show the release notes of each release this upgrade crosses",
             "Back up first (the upgrade guide's first step)",
             "Move to the new release with the mastodon_stack role, mastodon_stack_version=v4.9.1-double",
             "Restart the services after the post-deployment migrations"]
    where = [text.find(name) for name in order]
    assert all(i >= 0 for i in where), list(zip(order, where))
    assert where == sorted(where), list(zip(order, where))
    assert NOTES + "v4.9.1-double" in text
    assert NOTES + "v4.9.2-rc.1-double" not in text and NOTES + "v4.10.0-double" not in text


def test_the_upgrade_log_names_the_backup_taken_before_the_move(host):
    with host.sudo():
        log = host.file(UPGRADE_LOG).content_string
        started = log.index("upgrade v4.9.0-double -> v4.9.1-double: started")
        backup = re.search(r"upgrade v4\.9\.0-double -> v4\.9\.1-double: backup (\S+)", log)
        done = log.index("upgrade v4.9.0-double -> v4.9.1-double: done")
        assert backup and started < backup.start() < done, log
        assert host.file(backup.group(1)).is_directory, backup.group(1)


def test_the_pinned_runs_before_did_not_upgrade():
    runs = site_runs()
    for run in runs[:2]:
        text = run[3]
        assert "Back up first (the upgrade guide's first step)" not in text
