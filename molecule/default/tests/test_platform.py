"""The container platform every scenario relies on: systemd, services, apt."""


def test_systemd_is_pid_1(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_system_is_up(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    # "degraded" only means some unit that containers cannot run failed; list it if so.
    failed = host.run("systemctl --failed --no-legend --plain").stdout
    assert state in ("running", "degraded"), state
    assert "cron" not in failed


def test_service_started_and_enabled(host):
    cron = host.service("cron")
    assert cron.is_running
    assert cron.is_enabled


def test_service_survives_restart(host):
    assert host.run("systemctl restart cron").rc == 0
    assert host.service("cron").is_running


def test_apt_reaches_the_archive(host):
    # A simulated install needs package lists fetched from the archive by converge.
    result = host.run("apt-get install --simulate --no-install-recommends hello")
    assert result.rc == 0, result.stderr
    assert "Inst hello" in result.stdout
