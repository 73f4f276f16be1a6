"""Unit tests of roles/mastodon_ops/files/mastodon-flood-guard (the relay flood guard) and of
mastodon-status, which measures with the guard's code (status.yml's host checks).

The program is loaded from its file. Redis is a small RESP server on 127.0.0.1 holding data
the way Sidekiq stores it (a TEST STAND-IN: lists queue:<name>, the `queues` set, the `retry`,
`schedule` and `dead` sorted sets; SCAN answers in one batch); bin/rails and bin/tootctl are shell stand-ins that record their
arguments, so the guard's real subprocess path runs.
"""

import fcntl
import http.server
import io
import json
import os
import socketserver
import threading
import time

import pytest

from support.ops_scripts import GUARD, STATUS, load_script


fg = load_script("mastodon_flood_guard", GUARD)
st = load_script("mastodon_status", STATUS)


# --- a RESP stand-in for Redis ---------------------------------------------------------------


class FakeRedis(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, password=None):
        self.data = {"sets": {}, "lists": {}, "zsets": {}}
        self.password = password
        self.commands = []
        self.used_memory = 3 * 1024 * 1024
        super().__init__(("127.0.0.1", 0), _RespHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]


class _RespHandler(socketserver.StreamRequestHandler):
    def _arg(self):
        size = int(self.rfile.readline()[1:-2])
        data = self.rfile.read(size + 2)[:-2]
        return data.decode()

    def _send(self, value):
        if value is None:
            self.wfile.write(b"$-1\r\n")
        elif isinstance(value, int):
            self.wfile.write(b":%d\r\n" % value)
        elif isinstance(value, list):
            self.wfile.write(b"*%d\r\n" % len(value))
            for item in value:
                self._send(item)
        elif isinstance(value, Exception):
            self.wfile.write(b"-%s\r\n" % str(value).encode())
        else:
            data = value.encode()
            self.wfile.write(b"$%d\r\n%s\r\n" % (len(data), data))

    def handle(self):
        authed = self.server.password is None
        while True:
            head = self.rfile.readline()
            if not head:
                return
            args = [self._arg() for _unused in range(int(head[1:-2]))]
            cmd = args[0].upper()
            self.server.commands.append(args if cmd != "AUTH" else ["AUTH", "***"])
            d = self.server.data
            if cmd == "AUTH":
                authed = args[1] == self.server.password
                self.wfile.write(b"+OK\r\n" if authed else b"-WRONGPASS invalid password\r\n")
            elif not authed:
                self.wfile.write(b"-NOAUTH Authentication required.\r\n")
            elif cmd == "SMEMBERS":
                self._send(sorted(d["sets"].get(args[1], [])))
            elif cmd == "LLEN":
                self._send(len(d["lists"].get(args[1], [])))
            elif cmd == "LINDEX":
                items = d["lists"].get(args[1], [])
                i = int(args[2])
                self._send(items[i] if -len(items) <= i < len(items) else None)
            elif cmd == "INFO":
                self._send("# Memory\r\nused_memory:%d\r\nused_memory_human:x\r\n" % self.server.used_memory)
            elif cmd == "ZCARD":
                self._send(len(d["zsets"].get(args[1], [])))
            elif cmd == "SCAN":  # one batch: SCAN 0 MATCH <prefix>* COUNT n
                prefix = args[3].rstrip("*") if len(args) > 3 else ""
                self._send(["0", sorted(k for k in d["lists"] if k.startswith(prefix))])
            else:
                self._send(Exception(f"ERR unknown command {cmd}"))


def sidekiq_push(redis, queue, enqueued_at, count=1):
    """LPUSH as Sidekiq does: the newest job on the left, the oldest on the right."""
    redis.data["sets"].setdefault("queues", set()).add(queue)
    items = redis.data["lists"].setdefault(f"queue:{queue}", [])
    for _unused in range(count):
        items.insert(0, json.dumps({"class": "ActivityPub::ProcessingWorker", "queue": queue,
                                    "enqueued_at": enqueued_at, "jid": "x"}))


@pytest.fixture
def redis():
    server = FakeRedis()
    yield server
    server.shutdown()
    server.server_close()


# --- an installation in a temporary folder -------------------------------------------------

STANDIN = """#!/bin/sh
# TEST STAND-IN of bin/{name}: records its arguments and the relay action, exits {rc}.
echo "{name} $* action=${{MASTODON_STACK_RELAYS_ACTION:-}} env=$RAILS_ENV" >> "{record}"
echo '{out}'
exit {rc}
"""


def install(tmp_path, redis_port, rails_rc=0, tootctl_rc=0, **overrides):
    live = tmp_path / "live"
    (live / "bin").mkdir(parents=True)
    (live / "public" / "system" / "cache").mkdir(parents=True)
    record = tmp_path / "calls.log"
    for name, rc, out in (("rails", rails_rc, '{"disabled":["https://relay.test/inbox"]}'),
                          ("tootctl", tootctl_rc, "Removed 3 media attachments (approx. 12 MB)")):
        path = live / "bin" / name
        path.write_text(STANDIN.format(name=name, record=record, rc=rc, out=out))
        path.chmod(0o755)
    script = tmp_path / "mastodon_stack_relays.rb"
    script.write_text("# relay script\n")
    cfg = dict(fg.DEFAULTS)
    cfg.update({
        "media_dir": str(live / "public" / "system"),
        "live_dir": str(live),
        "app_user": "",
        "app_path": os.environ.get("PATH", "/usr/bin:/bin"),
        "redis_port": redis_port,
        "relay_script": str(script),
        "log_file": str(tmp_path / "log" / "flood-guard.log"),
        "marker_file": str(tmp_path / "state" / "flood-guard.tripped"),
        "lock_file": str(tmp_path / "ops.lock"),
        "lock_wait_seconds": 0,
        "min_free_mb": 1,
        "cache_cap_mb": 1000,
    })
    cfg.update(overrides)
    conf = tmp_path / "flood-guard.conf"
    conf.write_text(json.dumps(cfg))
    return cfg, conf, record


def calls(record):
    return record.read_text().splitlines() if record.exists() else []


# --- the decision --------------------------------------------------------------------------

CFG = dict(fg.DEFAULTS, min_free_mb=100, cache_cap_mb=50, max_backlog=10, max_oldest_job_age_seconds=60,
           max_retry_scheduled=5, max_database_mb=500, max_redis_mb=200)
HEALTHY = {"errors": {}, "free_mb": 1000, "cache_mb": 10, "database_mb": 100, "redis_mb": 20,
           "sidekiq": {"queues": {"default": 3}, "enqueued": 3, "oldest_age_seconds": 5, "retry": 1, "schedule": 1}}


def with_(**changes):
    m = json.loads(json.dumps(HEALTHY))
    for key, value in changes.items():
        if key in m["sidekiq"]:
            m["sidekiq"][key] = value
        else:
            m[key] = value
    return m


def test_decide_healthy_is_empty():
    assert fg.decide(HEALTHY, CFG) == []


@pytest.mark.parametrize("changes, expected", [
    ({"free_mb": 99}, "free disk 99 MB < 100 MB"),
    ({"cache_mb": 51}, "media cache 51 MB > 50 MB"),
    ({"enqueued": 11}, "Sidekiq backlog 11 jobs > 10"),
    ({"oldest_age_seconds": 61}, "oldest Sidekiq job 61 s old > 60 s"),
    ({"retry": 3, "schedule": 3}, "Sidekiq retry+schedule 6 jobs > 5"),
    ({"database_mb": 501}, "database 501 MB > 500 MB"),
    ({"redis_mb": 201}, "Redis memory 201 MB > 200 MB"),
])
def test_decide_each_threshold_trips_alone(changes, expected):
    assert fg.decide(with_(**changes), CFG) == [expected]


@pytest.mark.parametrize("changes", [{"free_mb": 100}, {"cache_mb": 50}, {"enqueued": 10},
                                     {"oldest_age_seconds": 60}, {"retry": 5, "schedule": 0},
                                     {"database_mb": 500}, {"redis_mb": 200}])
def test_decide_at_the_threshold_is_fine(changes):
    assert fg.decide(with_(**changes), CFG) == []


def test_decide_zero_switches_optional_checks_off():
    cfg = dict(CFG, max_backlog=0, max_oldest_job_age_seconds=0, max_retry_scheduled=0, max_database_mb=0,
               max_redis_mb=0)
    m = with_(enqueued=10 ** 6, oldest_age_seconds=10 ** 6, retry=10 ** 6, database_mb=10 ** 6, redis_mb=10 ** 6)
    assert fg.decide(m, cfg) == []


def test_decide_a_missing_measurement_is_pressure():
    m = with_()
    del m["sidekiq"]
    m["errors"] = {"sidekiq backlog": "Connection refused"}
    assert fg.decide(m, CFG) == ["cannot measure sidekiq backlog: Connection refused"]


def test_decide_free_disk_still_judged_when_others_fail():
    m = {"errors": {"media cache": "permission denied", "sidekiq backlog": "timeout"}, "free_mb": 3}
    reasons = fg.decide(m, CFG)
    assert "free disk 3 MB < 100 MB" in reasons
    assert len(reasons) == 3


def test_job_time_reads_seconds_and_milliseconds():
    assert fg.job_time(1700000000.25) == 1700000000.25      # Sidekiq <= 7: float seconds
    assert fg.job_time(1700000000250) == 1700000000.25      # Sidekiq 8: integer milliseconds


# --- measurements against the stand-ins ------------------------------------------------------


def test_sidekiq_backlog_as_sidekiq_stores_it(redis):
    now = time.time()
    sidekiq_push(redis, "default", now - 500, count=2)   # the oldest, on the right
    sidekiq_push(redis, "default", now - 10, count=3)
    sidekiq_push(redis, "pull", (now - 50) * 1000, count=4)  # Sidekiq 8: milliseconds
    redis.data["zsets"] = {"retry": ["a", "b"], "schedule": ["c"]}
    client = fg.Redis("127.0.0.1", redis.port)
    try:
        sk = fg.sidekiq_backlog(client, now)
    finally:
        client.close()
    assert sk["queues"] == {"default": 5, "pull": 4}
    assert sk["enqueued"] == 9
    assert 499 <= sk["oldest_age_seconds"] <= 501
    assert (sk["retry"], sk["schedule"]) == (2, 1)
    assert ["LINDEX", "queue:default", "-1"] in redis.commands


def test_redis_password_is_read_from_the_env_file_and_sent(tmp_path):
    server = FakeRedis(password="s3cret pass")
    try:
        env = tmp_path / ".env.production"
        env.write_text("REDIS_HOST=127.0.0.1\nREDIS_PASSWORD='s3cret pass'\n")
        cfg, _conf, _record = install(tmp_path, server.port, redis_password_files=[str(tmp_path / "none"), str(env)])
        m = fg.measure(cfg)
        assert "sidekiq" in m, m
        assert server.commands[0] == ["AUTH", "***"]
        cfg["redis_password_files"] = []
        m = fg.measure(cfg)
        assert "NOAUTH" in m["errors"]["sidekiq backlog"]
    finally:
        server.shutdown()
        server.server_close()


def test_measure_reads_free_disk_with_statvfs_and_cache_size(tmp_path, redis):
    cfg, _conf, _record = install(tmp_path, redis.port)
    blob = os.path.join(cfg["media_dir"], "cache", "media_attachments", "x.bin")
    os.makedirs(os.path.dirname(blob))
    with open(blob, "wb") as handle:
        handle.write(os.urandom(3 * 1024 * 1024))
    m = fg.measure(cfg)
    st = os.statvfs(cfg["media_dir"])
    assert abs(m["free_mb"] - st.f_bavail * st.f_frsize // fg.MB) <= 4
    assert m["cache_mb"] == 3
    assert m["errors"] == {}
    assert "database_mb" not in m  # max_database_mb 0: not measured
    assert "redis_mb" not in m


def test_redis_memory_from_info(tmp_path, redis):
    redis.used_memory = 300 * 1024 * 1024
    cfg, _conf, _record = install(tmp_path, redis.port, max_redis_mb=256)
    m = fg.measure(cfg)
    assert m["redis_mb"] == 300
    assert fg.decide(m, cfg) == ["Redis memory 300 MB > 256 MB"]


def test_measure_keeps_going_when_redis_is_down(tmp_path):
    cfg, _conf, _record = install(tmp_path, 1)  # nothing listens on port 1
    m = fg.measure(cfg)
    assert "free_mb" in m and "cache_mb" in m
    assert "sidekiq backlog" in m["errors"]


def test_database_size_through_psql(tmp_path, redis):
    cfg, _conf, _record = install(tmp_path, redis.port, max_database_mb=10)
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "psql").write_text('#!/bin/sh\n# TEST STAND-IN of psql\necho "$*" > "%s/psql.args"\necho 52428800\n'
                               % tmp_path)
    (fake / "psql").chmod(0o755)
    cfg["app_path"] = f"{fake}:{cfg['app_path']}"
    m = fg.measure(cfg)
    assert m["database_mb"] == 50
    assert "pg_database_size(current_database())" in (tmp_path / "psql.args").read_text()
    assert fg.decide(m, cfg) == ["database 50 MB > 10 MB"]


# --- a whole run ---------------------------------------------------------------------------


def test_healthy_run_logs_one_ok_line_and_acts_not(tmp_path, redis):
    _cfg, conf, record = install(tmp_path, redis.port)
    assert fg.main(["--config", str(conf)]) == 0
    log = (tmp_path / "log" / "flood-guard.log").read_text().splitlines()
    assert len(log) == 1 and "mastodon-flood-guard: ok: free disk" in log[0]
    assert calls(record) == []
    assert not (tmp_path / "state" / "flood-guard.tripped").exists()


def test_tripped_run_disables_relays_clears_cache_and_leaves_marker(tmp_path, redis):
    sidekiq_push(redis, "ingress", time.time() - 30, count=5)
    _cfg, conf, record = install(tmp_path, redis.port, max_backlog=4)
    assert fg.main(["--config", str(conf)]) == 0
    assert calls(record) == ["rails runner %s action=disable-all env=production" % (tmp_path / "mastodon_stack_relays.rb"),
                             "tootctl media remove --days 0 action= env=production",
                             "tootctl media remove --prune-profiles --days 0 action= env=production",
                             "tootctl preview_cards remove --days 0 action= env=production",
                             "tootctl emoji purge --remote-only action= env=production"]
    log = (tmp_path / "log" / "flood-guard.log").read_text()
    assert "TRIPPED: Sidekiq backlog 5 jobs > 4" in log
    assert 'relays disabled: {"disabled":["https://relay.test/inbox"]}' in log
    for cleared in ("media attachments cleared (tootctl media remove --days 0)",
                    "avatars and headers cleared (tootctl media remove --prune-profiles --days 0)",
                    "preview cards cleared (tootctl preview_cards remove --days 0)",
                    "remote custom emojis cleared (tootctl emoji purge --remote-only)"):
        assert cleared in log
    assert "written: relays stay disabled until mastodon-flood-guard --reset" in log
    marker = json.loads((tmp_path / "state" / "flood-guard.tripped").read_text())
    assert marker["reasons"] == ["Sidekiq backlog 5 jobs > 4"]

    # Pressure gone: no action, but the log says the relays stay disabled.
    redis.data["lists"].clear()
    assert fg.main(["--config", str(conf)]) == 0
    assert len(calls(record)) == 5
    last = (tmp_path / "log" / "flood-guard.log").read_text().splitlines()[-1]
    assert "ok: " in last and "relays stay disabled: tripped since " + marker["tripped_at"] in last

    # --reset clears the marker and says so.
    assert fg.main(["--config", str(conf), "--reset"]) == 0
    assert not (tmp_path / "state" / "flood-guard.tripped").exists()
    assert "reset: marker cleared" in (tmp_path / "log" / "flood-guard.log").read_text()


def test_unmeasurable_redis_trips_and_free_disk_action_still_runs(tmp_path):
    _cfg, conf, record = install(tmp_path, 1)
    assert fg.main(["--config", str(conf)]) == 0
    assert [c.split()[0] for c in calls(record)] == ["rails"] + ["tootctl"] * 4
    assert "TRIPPED: cannot measure sidekiq backlog" in (tmp_path / "log" / "flood-guard.log").read_text()


def test_failed_action_is_logged_exit_1_and_the_other_action_still_runs(tmp_path, redis):
    _cfg, conf, record = install(tmp_path, redis.port, rails_rc=3, min_free_mb=10 ** 9)
    assert fg.main(["--config", str(conf)]) == 1
    assert [c.split()[0] for c in calls(record)] == ["rails"] + ["tootctl"] * 4
    log = (tmp_path / "log" / "flood-guard.log").read_text()
    assert "FAILED to disable relays: exit 3" in log
    assert "media attachments cleared" in log
    assert (tmp_path / "state" / "flood-guard.tripped").exists()


def test_busy_lock_skips_the_run(tmp_path, redis):
    _cfg, conf, record = install(tmp_path, redis.port, min_free_mb=10 ** 9)
    fd = os.open(tmp_path / "ops.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert fg.main(["--config", str(conf)]) == 75
    finally:
        os.close(fd)
    assert calls(record) == []
    assert "SKIPPED: " in (tmp_path / "log" / "flood-guard.log").read_text()


def test_low_disk_while_the_lock_is_busy_asks_the_backup_to_yield(tmp_path, redis):
    # The holder here is not a backup, so nothing yields: the guard skips after its wait, and
    # the request it left is what a running mastodon-backup watches for.
    _cfg, conf, record = install(tmp_path, redis.port, min_free_mb=10 ** 9)
    fd = os.open(tmp_path / "ops.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert fg.main(["--config", str(conf)]) == 75
    finally:
        os.close(fd)
    assert "free disk" in (tmp_path / "yield-request").read_text()
    assert "asked a running backup to yield" in (tmp_path / "log" / "flood-guard.log").read_text()
    # Once the guard holds the lock, the request is gone.
    assert fg.main(["--config", str(conf)]) == 0
    assert not (tmp_path / "yield-request").exists()


def test_the_lock_is_private_and_refused_in_a_folder_others_may_write(tmp_path, redis):
    _cfg, conf, record = install(tmp_path, redis.port)
    settings = json.loads(conf.read_text())
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    settings["lock_file"] = str(shared / "ops.lock")
    conf.write_text(json.dumps(settings))
    assert fg.main(["--config", str(conf)]) == 2
    assert not (shared / "ops.lock").exists()
    settings["lock_file"] = str(tmp_path / "private" / "ops.lock")
    conf.write_text(json.dumps(settings))
    fg.main(["--config", str(conf)])
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "private" / "ops.lock").stat().st_mode & 0o777 == 0o600


def test_status_changes_nothing(tmp_path, redis, capsys):
    _cfg, conf, record = install(tmp_path, redis.port, min_free_mb=10 ** 9)
    assert fg.main(["--config", str(conf), "--status"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reasons"][0].startswith("free disk ")
    assert out["marker"] is None
    assert calls(record) == []


def test_bad_settings_exit_2(tmp_path):
    (tmp_path / "bad.conf").write_text("{not json")
    assert fg.main(["--config", str(tmp_path / "bad.conf")]) == 2


def test_log_line_format(tmp_path):
    out = io.StringIO()
    guard = fg.Guard(dict(fg.DEFAULTS, log_file=str(tmp_path / "g.log")), out=out)
    guard.log("ok: test")
    line = out.getvalue().strip()
    assert line.endswith(" mastodon-flood-guard: ok: test")
    assert (tmp_path / "g.log").read_text().strip() == line


# --- mastodon-status (status.yml's host checks, measured with the guard's code) --------------


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.server.hosts.append(self.headers.get("Host"))
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def health():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.hosts = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def status_run(tmp_path, conf, health_port, capsys, *extra):
    backups = tmp_path / "backups"
    backups.mkdir(exist_ok=True)
    # No power supply folder (as in a container) and no .env.production: the power and smtp
    # checks have their own tests (test_status_power.py, test_status_smtp.py).
    rc = st.main(["--config", str(conf), "--guard", GUARD, "--url", f"http://127.0.0.1:{health_port}/health",
                  "--domain", "social.example.test", "--min-free-mb", "1", "--max-queue", "3",
                  "--backup-dir", str(backups), "--power-supply-dir", str(tmp_path / "no-sysfs"),
                  "--env-file", str(tmp_path / "no-live" / ".env.production"), *extra])
    assert rc == 0
    return {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


def test_status_healthy_report(tmp_path, redis, health, capsys):
    _cfg, conf, _record = install(tmp_path, redis.port)
    sidekiq_push(redis, "default", time.time(), count=2)
    redis.data["lists"]["queue:pull"] = ["job"]  # a queue key the `queues` set does not list
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 7200))
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / stamp).mkdir()
    (tmp_path / "backups" / "not-a-backup").mkdir()
    checks = status_run(tmp_path, conf, health.server_address[1], capsys)
    assert [c["ok"] for c in checks.values()] == [True] * 9, checks
    assert checks["power"]["line"].startswith("ok   power: not a laptop / unknown (no power supply in ")
    assert checks["smtp"]["line"].startswith("WARN smtp: unknown: cannot read ")
    assert checks["https"]["line"] == f"ok   HTTPS through nginx http://127.0.0.1:{health.server_address[1]}/health: 200 OK"
    assert health.hosts == ["social.example.test"]
    assert checks["sidekiq queues"]["line"] == "ok   Sidekiq queues: default 2, pull 1, (retry) 0, (dead) 0 (maximum 3)"
    assert checks["backup"]["line"].startswith(f"ok   last backup: {stamp}, 2.0 h ago (maximum 36 h)")
    assert checks["disk"]["line"].startswith("ok   disk free on /")
    assert checks["media cache"]["line"] == "ok   media cache 0 MB (flood guard cap 1000 MB)"
    # --media-dir (status.yml passes mastodon_ops_media_dir) wins over the guard's settings.
    big = tmp_path / "other" / "cache"
    big.mkdir(parents=True)
    (big / "blob").write_bytes(b"x" * (2 * 1024 * 1024))
    checks = status_run(tmp_path, conf, health.server_address[1], capsys, "--media-dir", str(big.parent))
    assert checks["media cache"]["line"] == "ok   media cache 2 MB (flood guard cap 1000 MB)"
    assert checks["flood guard"]["line"] == "ok   flood guard: not tripped (now: within thresholds)"


def test_status_reports_each_problem(tmp_path, redis, health, capsys):
    cfg, conf, _record = install(tmp_path, redis.port)
    sidekiq_push(redis, "default", time.time(), count=4)
    old = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 48 * 3600))
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / old).mkdir()
    os.makedirs(os.path.dirname(cfg["marker_file"]))
    with open(cfg["marker_file"], "w", encoding="utf-8") as handle:
        json.dump({"tripped_at": "2026-12-01T10:00:00Z", "reasons": ["free disk 1 MB < 5 MB"]}, handle)
    checks = status_run(tmp_path, conf, health.server_address[1], capsys,
                        "--url", f"http://127.0.0.1:{health.server_address[1]}/down", "--min-free-mb", str(1 << 40))
    assert {n for n, c in checks.items() if not c["ok"]} == {"https", "disk", "sidekiq queues", "backup", "flood guard"}
    assert checks["https"]["line"].startswith("FAIL HTTPS through nginx ") and ": 503 " in checks["https"]["line"]
    assert "default 4" in checks["sidekiq queues"]["line"]
    assert checks["backup"]["line"].startswith(f"FAIL last backup: {old}, 48.0 h ago")
    assert checks["flood guard"]["line"].startswith(
        "FAIL flood guard TRIPPED since 2026-12-01T10:00:00Z: free disk 1 MB < 5 MB; the listed relays stay disabled")
    # Read only: the marker is still there, nothing ran in the application.
    assert os.path.exists(cfg["marker_file"])


def test_status_redis_password_goes_over_the_socket_and_a_missing_redis_is_reported(tmp_path, health, capsys):
    server = FakeRedis(password="s3cret-redis-password")
    try:
        secrets = tmp_path / "secrets.env"
        secrets.write_text("REDIS_PASSWORD=s3cret-redis-password\n")
        _cfg, conf, _record = install(tmp_path, server.port, redis_password_files=[str(secrets)])
        checks = status_run(tmp_path, conf, health.server_address[1], capsys)
        assert checks["sidekiq queues"]["ok"], checks
        assert server.commands[0] == ["AUTH", "***"]
    finally:
        server.shutdown()
        server.server_close()
    checks = status_run(tmp_path, conf, health.server_address[1], capsys)
    assert checks["sidekiq queues"]["line"].startswith("FAIL Sidekiq queues: Redis unreachable: ")
    assert "s3cret" not in json.dumps(checks)


def test_status_checks_only_the_parts_a_host_plays(tmp_path, capsys):
    """Several hosts: a db host (status.yml passes --checks disk,backup and --disk-dir) reports
    its disk and its backup part, and asks neither nginx nor Redis nor the guard: the URL and
    the Redis port given here answer nothing, so any of those checks would fail."""
    _cfg, conf, _record = install(tmp_path, 1)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 3600))
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / stamp).mkdir()
    data = tmp_path / "pgdata"
    data.mkdir()
    checks = status_run(tmp_path, conf, 1, capsys, "--checks", "disk,backup", "--disk-dir", str(data),
                        "--media-dir", str(tmp_path / "no-such-media"))
    assert list(checks) == ["disk", "backup"], checks
    assert all(c["ok"] for c in checks.values()), checks
    with pytest.raises(SystemExit):
        st.main(["--config", str(conf), "--checks", "disk,nginx"])
    assert "unknown check(s): nginx" in capsys.readouterr().err
    # Without --checks every check runs, as on one laptop.
    assert len(status_run(tmp_path, conf, 1, capsys)) == 9


def test_an_app_host_reads_the_remote_database_and_redis_from_env_production(tmp_path):
    """Several hosts: with services_env_file set (an app host whose PostgreSQL and Redis are on
    the db host), the guard and mastodon-status ask Redis and PostgreSQL there, with the
    password file for psql and no password in the settings; without it (one laptop) nothing
    changes."""
    env = tmp_path / ".env.production"
    env.write_text("REDIS_HOST='192.0.2.10'\nREDIS_PORT=6380\nREDIS_PASSWORD='not-read-here'\n"
                   "DB_HOST='192.0.2.10'\nDB_USER='mastodon'\nDB_PORT=5432\nDB_SSLMODE='require'\n")
    conf = tmp_path / "flood-guard.conf"
    conf.write_text(json.dumps({"services_env_file": str(env), "pgpass_file": "/home/mastodon/.pgpass"}))
    cfg = fg.load_config(str(conf))
    assert (cfg["redis_host"], cfg["redis_port"]) == ("192.0.2.10", 6380)
    assert cfg["db_env"] == {"PGHOST": "192.0.2.10", "PGPORT": "5432", "PGUSER": "mastodon",
                             "PGSSLMODE": "require", "PGPASSFILE": "/home/mastodon/.pgpass"}
    assert "not-read-here" not in json.dumps(cfg)
    conf.write_text(json.dumps({"services_env_file": ""}))
    cfg = fg.load_config(str(conf))
    assert cfg["redis_host"] == "127.0.0.1" and "db_env" not in cfg


# --- every cache cleared, hysteresis, timeouts and the time under the lock --------------------


def test_clean_up_uses_mastodons_own_commands_for_every_cache():
    # Flags as lib/mastodon/cli/{media,preview_cards,emoji}.rb define them; --prune-profiles
    # (avatars and headers) rather than --remove-headers (headers only): tootctl refuses both.
    commands = dict(fg.clean_up_commands(dict(fg.DEFAULTS, media_remove_days=2)))
    assert commands == {
        "media attachments": ["media", "remove", "--days", "2"],
        "avatars and headers": ["media", "remove", "--prune-profiles", "--days", "2"],
        "preview cards": ["preview_cards", "remove", "--days", "2"],
        "remote custom emojis": ["emoji", "purge", "--remote-only"],
    }


def test_decide_hysteresis_holds_the_same_pressure_and_trips_on_new():
    cfg = dict(CFG, rearm_growth_percent=10)  # margins: cache 5 MB, free disk 10 MB
    baseline = {"at": "T", "cache_mb": 80, "free_mb": 60}
    # Still past both thresholds, not grown: held, no reason.
    m = with_(cache_mb=85, free_mb=50)
    assert fg.decide(m, cfg) == ["free disk 50 MB < 100 MB", "media cache 85 MB > 50 MB"]
    assert fg.decide(m, cfg, baseline) == []
    assert set(fg.held(m, cfg, baseline)) == {"cache_mb", "free_mb"}
    # Grown past the margin: new pressure.
    assert fg.decide(with_(cache_mb=86, free_mb=50), cfg, baseline) == ["media cache 86 MB > 50 MB"]
    assert fg.decide(with_(cache_mb=80, free_mb=49), cfg, baseline) == ["free disk 49 MB < 100 MB"]
    # Other reasons are never held.
    assert fg.decide(with_(cache_mb=80, free_mb=60, enqueued=11), cfg, baseline) == ["Sidekiq backlog 11 jobs > 10"]


def fill_cache(cfg, name, mb):
    folder = os.path.join(cfg["media_dir"], "cache", "media_attachments")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(os.urandom(mb * 1024 * 1024))


def test_a_cache_left_above_the_cap_trips_again_only_when_it_grows(tmp_path, redis):
    # The stand-in tootctl deletes nothing: what the clean-up leaves stays (followed accounts'
    # media, say). cap 1 MB; margin 100 % of it.
    cfg, conf, record = install(tmp_path, redis.port, cache_cap_mb=1, rearm_growth_percent=100)
    baseline_file = tmp_path / "state" / "flood-guard.baseline.json"
    fill_cache(cfg, "a", 3)
    assert fg.main(["--config", str(conf)]) == 0
    assert len(calls(record)) == 5
    assert json.loads(baseline_file.read_text())["cache_mb"] == 3
    # Same pressure: no action, the log says why.
    assert fg.main(["--config", str(conf)]) == 0
    assert len(calls(record)) == 5
    last = (tmp_path / "log" / "flood-guard.log").read_text().splitlines()[-1]
    assert "ok: " in last and "media cache 3 MB > 1 MB but not grown since the clean-up" in last
    # New pressure: 3 MB more than the clean-up left.
    fill_cache(cfg, "b", 3)
    assert fg.main(["--config", str(conf)]) == 0
    assert len(calls(record)) == 10
    assert json.loads(baseline_file.read_text())["cache_mb"] == 6
    # Back under the cap: the baseline goes, the next flood trips from scratch.
    for name in ("a", "b"):
        os.unlink(os.path.join(cfg["media_dir"], "cache", "media_attachments", name))
    assert fg.main(["--config", str(conf)]) == 0
    assert not baseline_file.exists()


SLOW = """#!/bin/sh
# TEST STAND-IN of a bin/tootctl that outlasts its timeout and has a child of its own (as
# runuser -> bundler -> ruby): records both process ids.
sleep 300 &
echo $! >> "{pids}"
echo $$ >> "{pids}"
wait
"""


def process_gone(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # dead, waiting for its parent to reap it


def test_a_command_that_times_out_is_killed_with_its_process_group(tmp_path, redis):
    cfg, conf, record = install(tmp_path, redis.port, min_free_mb=10 ** 9, command_timeout_seconds=1)
    pids = tmp_path / "pids"
    tootctl = tmp_path / "live" / "bin" / "tootctl"
    tootctl.write_text(SLOW.format(pids=pids))
    started = time.monotonic()
    assert fg.main(["--config", str(conf)]) == 1
    assert time.monotonic() - started < 4 * (1 + fg.KILL_GRACE_SECONDS) + 10
    log = (tmp_path / "log" / "flood-guard.log").read_text()
    assert log.count("timed out after 1 s: process group ") == 4, log
    assert "FAILED to clear media attachments (tootctl media remove --days 0): exit 124" in log
    started_pids = [int(x) for x in pids.read_text().split()]
    assert len(started_pids) == 8  # 4 commands, each a shell and its sleep
    deadline = time.monotonic() + 5
    while not all(process_gone(pid) for pid in started_pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in started_pids if not process_gone(pid)] == []
    # A failed clean-up sets no baseline: the next run tries again.
    assert not (tmp_path / "state" / "flood-guard.baseline.json").exists()


def test_no_time_left_under_the_lock_skips_the_commands(tmp_path, redis):
    _cfg, conf, record = install(tmp_path, redis.port, min_free_mb=10 ** 9, hold_lock_seconds=0)
    assert fg.main(["--config", str(conf)]) == 1
    assert calls(record) == []
    log = (tmp_path / "log" / "flood-guard.log").read_text()
    assert "FAILED to disable relays: not started: no time left under the lock" in log
    assert log.count("SKIPPED clearing ") == 4
    assert (tmp_path / "state" / "flood-guard.tripped").exists()


def test_the_guard_leaves_the_lock_before_the_backup_stops_waiting():
    # mastodon-backup waits LOCK_WAIT (default below) for the lock; the guard's time under the
    # lock, plus the kill grace of a command cut at the end, stays below it.
    import re

    with open(os.path.join(os.path.dirname(GUARD), "mastodon-backup"), encoding="utf-8") as handle:
        waits = re.findall(r"LOCK_WAIT:-(\d+)", handle.read())
    assert waits, "mastodon-backup has no LOCK_WAIT default"
    assert fg.DEFAULTS["hold_lock_seconds"] + 2 * fg.KILL_GRACE_SECONDS < min(int(w) for w in waits)
