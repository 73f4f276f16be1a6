"""mastodon-autoupgrade's pure parts: which tag it applies (Hypothesis over generated tag lists:
never a pre-release, never another series, always the newest patch of the installed one), the
release-specific steps between two releases, and the status line its state file gives; plus its
mail, sent to a TEST STAND-IN SMTP server on 127.0.0.1 (never with the password in the output)."""

import json
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from support.ops_scripts import FILES, STATUS, load_script

import os

AUTOUPGRADE = os.path.normpath(os.path.join(FILES, "mastodon-autoupgrade"))
au = load_script("mastodon_autoupgrade_unit", AUTOUPGRADE)
status = load_script("mastodon_status_autoupgrade", STATUS)

REAL = r'^v(\d+)\.(\d+)\.(\d+)$'            # mastodon_stack_release_tag_pattern's default
DOUBLE = r'^v(\d+)\.(\d+)\.(\d+)-double$'   # the TEST DOUBLE's (tests/mastodon_double)
LOOSE = r'^v(\d+)\.(\d+)\.(\d+)'            # a pattern without $: pre-releases pass it


def test_ls_remote_output_gives_each_tag_once():
    out = ("a1\trefs/tags/v4.7.6\n"
           "a2\trefs/tags/v4.7.6^{}\n"
           "a3\trefs/tags/v4.7.7\n"
           "a4\trefs/heads/main\n")
    assert au.ls_remote_tags(out) == ["v4.7.6", "v4.7.7"]


@pytest.mark.parametrize("tags, installed, pattern, chosen", [
    (["v4.7.6", "v4.7.7", "v4.8.0"], "v4.7.6", REAL, "v4.7.7"),
    (["v4.7.6", "v4.7.10", "v4.7.9"], "v4.7.6", REAL, "v4.7.10"),        # numbers, not text
    (["v4.7.6", "v4.7.8-rc.1", "v4.8.0"], "v4.7.6", LOOSE, None),        # rc never, 4.8 never
    (["v4.7.7", "v4.7.6"], "v4.7.7", REAL, None),                        # nothing newer
    (["v4.9.1-double", "v4.9.3-rc.1-double", "v4.10.0-double", "v4.9.2-double"], "v4.9.0-double", DOUBLE,
     "v4.9.2-double"),
    (["v4.7.7"], "main", REAL, None),                                    # not a release: nothing
])
def test_choose_patch_examples(tags, installed, pattern, chosen):
    assert au.choose_patch(tags, installed, pattern) == chosen


SUFFIXES = ["", "-rc.1", "-rc1", "-beta.2", "-alpha", "rc2", "-pre", ".beta1"]
tag = hs.builds(lambda major, minor, patch, suffix: f"v{major}.{minor}.{patch}{suffix}",
                hs.integers(3, 5), hs.integers(0, 12), hs.integers(0, 30), hs.sampled_from(SUFFIXES))


@settings(max_examples=300, deadline=None)
@given(tags=hs.lists(tag, max_size=40), installed=hs.tuples(hs.integers(3, 5), hs.integers(0, 12), hs.integers(0, 30)),
       pattern=hs.sampled_from([REAL, LOOSE]))
def test_choose_patch_never_a_prerelease_never_another_series_always_the_newest_patch(tags, installed, pattern):
    here = "v%d.%d.%d" % installed
    chosen = au.choose_patch(tags, here, pattern)
    stable_same_series = [t for t in tags
                          if not any(s and t.endswith(s) for s in SUFFIXES)
                          and tuple(int(x) for x in t[1:].split(".")[:2]) == installed[:2]]
    newer = [t for t in stable_same_series if int(t.split(".")[2]) > installed[2]]
    if not newer:
        assert chosen is None
        return
    assert chosen in newer                                               # a stable tag of the series
    assert int(chosen.split(".")[2]) == max(int(t.split(".")[2]) for t in newer)   # the newest patch


@settings(max_examples=200, deadline=None)
@given(tags=hs.lists(tag, max_size=40), installed=hs.tuples(hs.integers(3, 5), hs.integers(0, 12), hs.integers(0, 30)))
def test_newer_series_is_only_reported_from_a_later_series(tags, installed):
    newer = au.newer_series(tags, "v%d.%d.%d" % installed, REAL)
    if newer is not None:
        key = au.release_key(newer, REAL)
        assert key is not None and key[:2] > installed[:2]


def test_steps_between_two_releases_in_release_order():
    steps = [{"version": "v4.9.3", "argv": ["b"]}, {"version": "v4.2.0", "argv": ["old"]},
             {"version": "v4.9.1", "argv": ["a"]}, {"version": "v4.9.4", "argv": ["later"]}]
    chosen = au.steps_between(steps, "v4.9.0-double", "v4.9.3-double", DOUBLE)
    assert [s["argv"] for s in chosen] == [["a"], ["b"]]


@pytest.mark.parametrize("state, ok, warn, text", [
    (None, True, False, "automatic patch upgrade: no run yet"),
    ({"result": "current", "running": "v4.7.7", "finished_at": "T"}, True, False, "v4.7.7 is the newest patch"),
    ({"result": "upgraded", "installed": "v4.7.6", "target": "v4.7.7", "finished_at": "T", "upgrade_seconds": 42,
      "backup": "/b"}, True, False, "upgraded v4.7.6 -> v4.7.7"),
    ({"result": "rolled_back", "installed": "v4.7.6", "running": "v4.7.6", "target": "v4.7.7", "failed_step": "health check",
      "finished_at": "T"}, True, True, "v4.7.7 FAILED at health check"),
    ({"result": "held", "target": "v4.7.7", "reason": "v4.7.7 was rolled back at T"}, True, True, "v4.7.7 is held"),
    ({"result": "rollback_failed", "target": "v4.7.7", "backup": "/b", "finished_at": "T"}, False, False, "ROLLBACK FAILED"),
])
def test_status_line_of_the_state_file(tmp_path, state, ok, warn, text):
    path = tmp_path / "autoupgrade.json"
    if state is not None:
        path.write_text(json.dumps(state))
    _values, result = status.autoupgrade_check(str(path))
    assert result["ok"] is ok and bool(result.get("warn")) is warn, result
    assert text in result["line"], result


def test_status_asks_for_the_check_only_with_its_state_file(tmp_path):
    assert "autoupgrade" in status.CHECKS


# --- the mail, to a stand-in SMTP server ------------------------------------------------------


class StandIn:
    """TEST STAND-IN SMTP server: EHLO with AUTH PLAIN, takes any login, keeps the commands."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.lines = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, dummy = self.sock.accept()
        rfile = conn.makefile("rb")

        def say(text):
            conn.sendall((text + "\r\n").encode())
        say("220 stand-in")
        data = False
        for raw in rfile:
            line = raw.decode().rstrip("\r\n")
            self.lines.append(line)
            if data:
                if line == ".":
                    data = False
                    say("250 queued")
                continue
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                say("250-stand-in")
                say("250 AUTH PLAIN")
            elif verb == "DATA":
                data = True
                say("354 go")
            elif verb == "QUIT":
                say("221 bye")
                break
            elif verb == "AUTH":
                say("235 ok")
            else:
                say("250 ok")
        conn.close()


PASSWORD = "pw-autoupgrade-unit-7f2c"


def make_run(tmp_path, port):
    env = tmp_path / ".env.production"
    env.write_text(f"SMTP_SERVER=127.0.0.1\nSMTP_PORT={port}\nSMTP_LOGIN=notifications\nSMTP_PASSWORD={PASSWORD}\n"
                   "SMTP_AUTH_METHOD=plain\nSMTP_FROM_ADDRESS=notifications@social.example.test\n")
    cfg = {"env_file": str(env), "owner_email": "owner@example.test", "domain": "social.example.test"}
    run = au.Run.__new__(au.Run)
    run.cfg, run.status, run.lines = cfg, status, []
    return run


def test_mail_goes_to_the_owner_with_the_instance_login(tmp_path, capsys):
    server = StandIn()
    run = make_run(tmp_path, server.port)
    assert run.mail("Mastodon on x: upgrade to v4.7.7 FAILED, rolled back to v4.7.6", "body") == "mailed owner@example.test"
    server.thread.join(5)
    assert "rcpt to:<owner@example.test>" in [line.lower() for line in server.lines]
    assert any(line.startswith("AUTH PLAIN ") for line in server.lines)
    assert "Subject: Mastodon on x: upgrade to v4.7.7 FAILED, rolled back to v4.7.6" in server.lines
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err


def test_mail_failure_is_reported_without_the_password(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there
    result = make_run(tmp_path, port).mail("s", "b")
    assert result.startswith("mail to owner@example.test FAILED: connection refused"), result
    assert PASSWORD not in result


# --- one run, end to end, with the host's commands recorded instead of run -------------------


class FakeHost:
    """Stands in for the host: the commands mastodon-autoupgrade runs are recorded; the checkout
    follows `git checkout`; a target in `failing` fails its pre-deployment migration."""

    def __init__(self, tmp_path, running="v4.9.0-double", tags=(), failing=()):
        self.tmp, self.running, self.tags, self.failing = tmp_path, running, list(tags), set(failing)
        self.calls, self.mails = [], []

    def install(self, monkeypatch):
        host = self

        def app(run, step, argv, extra=None, timeout=3600):
            host.calls.append(("app", step, " ".join(argv)))
            if argv[:3] == ["git", "-C", run.cfg["live_dir"]] and argv[3] == "describe":
                return host.running + "\n"
            if argv[:2] == ["git", "ls-remote"]:
                return "".join(f"0\trefs/tags/{t}\n" for t in host.tags)
            if argv[:2] == ["git", "-C"] and argv[3] == "checkout":
                host.running = argv[-1]
            if argv[-1] == "db:migrate" and (extra or {}).get("SKIP_POST_DEPLOYMENT_MIGRATIONS") and host.running in host.failing:
                raise au.StepFailed(step, "exit 1: migration failed")
            if argv[:2] == ["git", "-C"] and argv[3] == "show":
                return "3.3.0\n"
            return ""

        def root(run, step, argv, timeout=3600, locked=False):
            host.calls.append(("root", step, " ".join(argv), locked))
            if argv[0].endswith("mastodon-backup"):
                backup = host.tmp / "backups" / "00000001-20270101T050000Z"
                backup.mkdir(parents=True, exist_ok=True)
                return f"mastodon-backup: done\n{backup}\n"
            return ""

        monkeypatch.setattr(au.Run, "app", app)
        monkeypatch.setattr(au.Run, "root", root)
        monkeypatch.setattr(au.Run, "health", lambda run: [])
        monkeypatch.setattr(au.Run, "stamp", lambda run: host.calls.append(("stamp", host.running)))
        monkeypatch.setattr(au.Run, "mail", lambda run, subject, body: host.mails.append((subject, body)) or "mailed")
        monkeypatch.setattr(au.Run, "npm_registry", lambda run: None)


def config(tmp_path, follow=True):
    cfg = {"follow": follow, "configured_version": "latest", "live_dir": str(tmp_path / "live"), "app_user": "mastodon",
           "git_url": "/srv/repo.git", "tag_pattern": DOUBLE, "state_file": str(tmp_path / "state.json"),
           "services": ["mastodon-web"], "bin_dir": "/usr/local/sbin", "lock_file": str(tmp_path / "run" / "ops.lock"),
           "lock_wait_seconds": 1, "log_file": str(tmp_path / "autoupgrade.log"), "status_program": STATUS,
           "app_path": "/usr/bin", "home": str(tmp_path), "bundle": "bundle", "yarn": "yarn", "steps": []}
    path = tmp_path / "autoupgrade.conf"
    path.write_text(json.dumps(cfg))
    return str(path)


TAGS = ["v4.9.0-double", "v4.9.1-double", "v4.9.2-double", "v4.9.3-rc.1-double", "v4.10.0-double"]


def test_a_run_backs_up_first_then_follows_the_upgrade_guide(tmp_path, monkeypatch):
    host = FakeHost(tmp_path, tags=TAGS)
    host.install(monkeypatch)
    assert au.main(["--config", config(tmp_path)]) == 0
    steps = [c[1] for c in host.calls if c[0] in ("app", "root")]
    order = ["back up first", "check out v4.9.2-double", "bundle install", "yarn install", "pre-deployment migrations",
             "precompile the assets", "restart the services", "post-deployment migrations", "restart the services"]
    found = [s for s in steps if s in order]
    assert found == order, steps
    assert all(c[3] for c in host.calls if c[0] == "root" and c[1] == "back up first")  # under the held lock
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["result"], state["running"], state["newer_series"]) == ("upgraded", "v4.9.2-double", "v4.10.0-double")
    assert host.mails and "upgraded v4.9.0-double -> v4.9.2-double" in host.mails[0][0]
    assert ("stamp", "v4.9.2-double") in host.calls


def test_a_failed_migration_is_rolled_back_then_held(tmp_path, monkeypatch):
    host = FakeHost(tmp_path, running="v4.9.1-double", tags=TAGS, failing={"v4.9.2-double"})
    host.install(monkeypatch)
    assert au.main(["--config", config(tmp_path)]) == 1
    steps = [c[1] for c in host.calls if c[0] in ("app", "root")]
    rollback = steps[steps.index("pre-deployment migrations"):]
    assert rollback[:5] == ["pre-deployment migrations", "check out v4.9.1-double", "bundle install", "yarn install",
                            "precompile the assets"], rollback
    assert "restore the backup" in rollback and "pre-deployment migrations" not in rollback[1:]
    restore = [c for c in host.calls if c[0] == "root" and c[1] == "restore the backup"][0]
    assert restore[2].endswith("mastodon-restore " + str(tmp_path / "backups" / "00000001-20270101T050000Z")) and restore[3]
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["result"], state["running"], state["failed_step"]) == ("rolled_back", "v4.9.1-double",
                                                                         "pre-deployment migrations")
    assert "FAILED, rolled back to v4.9.1-double" in host.mails[-1][0]
    # The next run does not try the same release again, and mails nobody.
    host.calls.clear()
    mails = len(host.mails)
    assert au.main(["--config", config(tmp_path)]) == 0
    assert json.loads((tmp_path / "state.json").read_text())["result"] == "held"
    assert not [c for c in host.calls if c[0] == "root"] and len(host.mails) == mails


def test_a_pinned_version_changes_nothing(tmp_path, monkeypatch):
    host = FakeHost(tmp_path, tags=TAGS)
    host.install(monkeypatch)
    assert au.main(["--config", config(tmp_path, follow=False)]) == 0
    assert json.loads((tmp_path / "state.json").read_text())["result"] == "pinned"
    assert not [c for c in host.calls if c[0] == "root"] and not host.mails
