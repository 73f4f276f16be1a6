"""The long steps of the install (files/mastodon-long-step) as a person on the laptop meets them.

The converge ran bundle install, yarn install, bin/rails db:setup and assets:precompile through
the runner, as transient systemd units logging to /var/log/mastodon-build/<step>.log. The
commands those units ran are the TEST DOUBLE's (tests/mastodon_double: bin/rails) and the real
Debian bundler and corepack's Yarn; the mechanism (systemd-run, the logs, attach) is the real one.
"""

import shlex

import pytest

RUNNER = "/usr/local/sbin/mastodon-long-step"
LOG_DIR = "/var/log/mastodon-build"


@pytest.mark.parametrize("step, line", [
    ("bundle-install", "Bundle complete"),
    ("yarn-install", "Done"),
    ("db-setup", "Created database 'mastodon_production' (TEST DOUBLE)"),
    ("assets-precompile", "Compiled assets (TEST DOUBLE)"),
])
def test_step_log_holds_the_step_output_and_is_not_world_readable(host, step, line):
    log = host.file("%s/%s.log" % (LOG_DIR, step))
    assert log.is_file, step
    assert (log.user, log.group, log.mode) == ("root", "adm", 0o640)
    content = log.content_string
    assert content.startswith("# %s: " % step)  # the runner's header: command, user, start time
    assert line in content


def test_log_folder_readable_by_root_and_adm_only(host):
    folder = host.file(LOG_DIR)
    assert (folder.user, folder.group, folder.mode) == ("root", "adm", 0o750)


def test_no_step_unit_or_environment_file_left_after_the_run(host):
    units = host.run("systemctl list-units --all --plain --no-legend 'mastodon-step-*'")
    assert units.rc == 0 and units.stdout.strip() == ""
    assert host.run("ls -A /run/mastodon-long-step").stdout.strip() == ""


def _start(host, name, command, key="k1", extra=""):
    return host.run("%s start %s --user mastodon --chdir /home/mastodon --key %s %s -- %s"
                    % (RUNNER, name, key, extra, command))


def _run_of(host, name):
    """The unit's main process and invocation (a second start would make a new one)."""
    return host.run("systemctl show -p MainPID -p InvocationID mastodon-step-%s.service" % name).stdout


def test_start_again_attaches_to_the_running_step(host):
    first = _start(host, "selftest-sleep", "/bin/sleep 60")
    try:
        assert first.rc == 0 and first.stdout.startswith("started:"), first.stdout + first.stderr
        run = _run_of(host, "selftest-sleep")
        assert "MainPID=0" not in run and "InvocationID=\n" not in run
        again = _start(host, "selftest-sleep", "/bin/sleep 60")
        assert again.rc == 0 and again.stdout.startswith("attached:"), again.stdout + again.stderr
        assert _run_of(host, "selftest-sleep") == run  # the same process, not a second one
        dry = _start(host, "selftest-sleep", "/bin/sleep 60", extra="--check")
        assert dry.stdout.startswith("would attach:")
        # Another release's run of the same step is refused while this one runs.
        other = _start(host, "selftest-sleep", "/bin/sleep 60", key="k2")
        assert other.rc != 0 and "still going" in other.stderr
        polled = host.run("%s wait selftest-sleep --for 1" % RUNNER)
        assert polled.rc == 75 and polled.stdout.startswith("running: selftest-sleep")
    finally:
        host.run("systemctl stop mastodon-step-selftest-sleep.service")
        host.run("systemctl reset-failed mastodon-step-selftest-sleep.service")


def test_wait_reports_the_duration_and_clears_the_unit(host):
    assert _start(host, "selftest-ok", "/bin/sh -c 'sleep 2; echo all done'").rc == 0
    done = host.run("%s wait selftest-ok --for 30" % RUNNER)
    assert done.rc == 0, done.stdout + done.stderr
    seconds = int(done.stdout.split(" took ")[1].split(" s ")[0])
    assert 2 <= seconds <= 10
    assert "all done" in host.file(LOG_DIR + "/selftest-ok.log").content_string
    state = host.run("systemctl show -p LoadState --value mastodon-step-selftest-ok.service")
    assert state.stdout.strip() == "not-found"


def test_a_failed_step_fails_the_wait_with_its_status_and_the_log_tail(host):
    assert _start(host, "selftest-fail", "/bin/sh -c 'echo the step broke; exit 3'").rc == 0
    failed = host.run("%s wait selftest-fail --for 30" % RUNNER)
    assert failed.rc == 3
    assert "FAILED" in failed.stdout and "the step broke" in failed.stdout
    state = host.run("systemctl show -p LoadState --value mastodon-step-selftest-fail.service")
    assert state.stdout.strip() == "not-found"


def test_environment_reaches_the_step_but_not_the_command_line_or_the_unit(host):
    value = "s3cret it's $HOME \"q\" # \\ $(id) `x`  two  "
    started = host.run("SELFTEST_SECRET=%s %s start selftest-env --user mastodon --chdir /home/mastodon "
                       "--key k1 --env SELFTEST_SECRET -- /bin/sh -c 'sleep 2; printenv SELFTEST_SECRET'"
                       % (shlex.quote(value), RUNNER))
    assert started.rc == 0, started.stderr
    shown = host.run("systemctl show mastodon-step-selftest-env.service").stdout
    processes = host.run("cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
    assert host.run("%s wait selftest-env --for 30" % RUNNER).rc == 0
    assert "s3cret" not in shown and "s3cret" not in processes
    assert value + "\n" in host.file(LOG_DIR + "/selftest-env.log").content_string
