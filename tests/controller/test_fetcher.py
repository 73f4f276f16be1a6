"""mastodon-fetcher (roles/mastodon_ops/files) against STAND-INS, on the controller.

Two tiny HTTP servers stand in for what the fetcher talks to (neither is Mastodon):
- a REMOTE INSTANCE STAND-IN serving a public hashtag timeline of thousands of posts (all of
  them in one page, whatever `limit` asks: a remote that misbehaves), a status context, and on
  demand 429 with Retry-After or 500;
- a LOCAL INSTANCE STAND-IN serving followed_tags and search?resolve=true with the owner's
  token (it counts every resolve of every URL and keeps one copy a post), the owner's lookup,
  statuses and contexts.
The fetcher runs in-process with a clock the tests move (hours and days pass in milliseconds)
and, for the token and pause checks, as the installed program in a subprocess.
"""
import importlib.machinery
import importlib.util
import json
import os
import stat
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "mastodon_ops" / "files" / "mastodon-fetcher"
TOKEN = "tok-" + "f3tch3r" * 6
T0 = 1_800_000_000.0


def load():
    loader = importlib.machinery.SourceFileLoader("mastodon_fetcher", str(SCRIPT))
    spec = importlib.util.spec_from_loader("mastodon_fetcher", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


fetcher_mod = load()


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 whose GET answers come from handle(path, query, headers)."""

    def __init__(self, handle):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parsed = urlparse(self.path)
                status, body, headers = handle(parsed.path, parse_qs(parsed.query), self.headers)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        outer.requests = []

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Remote:
    """REMOTE INSTANCE STAND-IN: a hashtag timeline of `posts` posts; `mode` 'ok', '429' or '500'."""

    def __init__(self, posts=3000, mode="ok", retry_after="120", now=lambda: T0):
        self.posts, self.mode, self.retry_after, self.now = posts, mode, retry_after, now
        self.hits = []
        self.created = {}
        self.server = Server(self.handle)
        self.host = self.server.host

    def url(self, i):
        return "https://%s/@someone/%d" % (self.host, 100000 + i)

    def handle(self, path, query, headers):
        self.hits.append(path)
        if "Authorization" in headers:
            return 400, {"error": "a token was sent to a remote"}, {}
        if self.mode == "429":
            return 429, {"error": "Too many requests"}, {"Retry-After": self.retry_after}
        if self.mode == "500":
            return 500, {"error": "boom"}, {}
        if path.startswith("/api/v1/timelines/tag/"):
            # Each post keeps the time it was made (first seen by this stand-in), as a real one does.
            for i in range(self.posts):
                self.created.setdefault(i, self.now() - i)
            return 200, [{"id": str(100000 + i), "url": self.url(i), "uri": self.url(i),
                          "created_at": fetcher_mod.datetime.datetime.fromtimestamp(
                              self.created[i], fetcher_mod.datetime.timezone.utc).isoformat()}
                         for i in range(self.posts)], {}
        if path.startswith("/api/v1/statuses/") and path.endswith("/context"):
            return 200, {"ancestors": [], "descendants": [{"url": self.url(900000 + i)} for i in range(5)]}, {}
        return 404, {"error": "not found"}, {}


class Local:
    """LOCAL INSTANCE STAND-IN: followed tags, search?resolve=true (counted), the owner's replies."""

    def __init__(self, tags=("cats",), owner_statuses=()):
        self.tags, self.owner_statuses = list(tags), list(owner_statuses)
        self.resolves = Counter()
        self.posts = set()
        self.contexts = {}
        self.bad_auth = 0
        self.server = Server(self.handle)
        self.url = "http://" + self.server.host

    def handle(self, path, query, headers):
        authorized = headers.get("Authorization") == "Bearer " + TOKEN
        if path == "/api/v1/followed_tags":
            if not authorized:
                self.bad_auth += 1
                return 401, {"error": "The access token is invalid"}, {}
            return 200, [{"name": t, "following": True} for t in self.tags], {}
        if path == "/api/v2/search":
            if not authorized:
                self.bad_auth += 1
                return 401, {"error": "The access token is invalid"}, {}
            assert query["resolve"] == ["true"] and query["type"] == ["statuses"]
            url = query["q"][0]
            self.resolves[url] += 1
            self.posts.add(url)  # one copy a post, as Mastodon keeps
            return 200, {"accounts": [], "hashtags": [], "statuses": [{"id": "1", "uri": url}]}, {}
        if path == "/api/v1/accounts/lookup":
            return 200, {"id": "7", "username": "owner"}, {}
        if path == "/api/v1/accounts/7/statuses":
            return 200, self.owner_statuses, {}
        if path.startswith("/api/v1/statuses/") and path.endswith("/context"):
            return 200, self.contexts.get(path.split("/")[4], {"ancestors": [], "descendants": []}), {}
        return 404, {"error": "not found"}, {}


@pytest.fixture()
def cfg(tmp_path):
    def make(local, instances, **extra):
        token_file = tmp_path / "fetcher.token"
        token_file.write_text(TOKEN + "\n")
        token_file.chmod(0o600)
        values = dict(fetcher_mod.DEFAULTS, local_url=local.url, local_domain="social.example.test",
                      token_file=str(token_file), state_file=str(tmp_path / "state" / "fetcher-state.json"),
                      log_file=str(tmp_path / "log" / "fetcher.log"), lock_file=str(tmp_path / "run" / "fetcher.lock"),
                      guard_marker_file=str(tmp_path / "flood-guard.tripped"), instances=instances,
                      remote_url="http://{host}", timeout_seconds=5)
        values.update(extra)
        return values
    return make


class Clock:
    def __init__(self, start=T0):
        self.now = start

    def __call__(self):
        return self.now


def run_once(config, clock, save=None):
    kwargs = {"clock": clock}
    if save:
        kwargs["save"] = save
    return fetcher_mod.Fetcher(config, TOKEN, **kwargs).run()


@pytest.fixture(scope="module")
def big_remote():
    clock = Clock()
    remote = Remote(posts=3000, now=clock)
    yield remote, clock
    remote.server.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(per_hour=st.integers(1, 40), per_day=st.integers(1, 120), runs=st.integers(1, 30),
       minutes=st.sampled_from([5, 15, 30, 60, 180]))
def test_the_budget_holds_against_thousands_of_posts(tmp_path_factory, big_remote, per_hour, per_day, runs, minutes):
    remote, clock = big_remote
    local = Local(tags=("cats", "dogs"))
    try:
        tmp = tmp_path_factory.mktemp("budget")
        token_file = tmp / "t"
        token_file.write_text(TOKEN)
        config = dict(fetcher_mod.DEFAULTS, local_url=local.url, token_file=str(token_file),
                      state_file=str(tmp / "state.json"), log_file=str(tmp / "log"),
                      guard_marker_file=str(tmp / "marker"), instances=[remote.host], remote_url="http://{host}",
                      posts_per_hour=per_hour, posts_per_day=per_day, requests_per_host_per_hour=1000,
                      conversation_statuses=0)
        times = []
        run_clock = Clock()
        clock.now = run_clock.now
        for _run in range(runs):
            before = sum(local.resolves.values())
            assert run_once(config, run_clock) == 0
            times += [run_clock.now] * (sum(local.resolves.values()) - before)
            run_clock.now += minutes * 60
            clock.now = run_clock.now
        # Never the same URL twice across runs; never more than the budget in any hour or day.
        assert max(local.resolves.values(), default=1) == 1
        for t in times:
            assert sum(1 for u in times if t - 3600 < u <= t) <= per_hour
            assert sum(1 for u in times if t - 86400 < u <= t) <= per_day
        total_hours = runs * minutes / 60
        assert len(times) <= per_day * (int(total_hours // 24) + 1)
        # The budget is used, not just respected: the first run takes a full hour's share.
        assert len(times) >= min(per_hour, per_day)
    finally:
        local.server.close()


def test_requests_per_host_per_hour_hold(cfg):
    clock = Clock()
    remote = Remote(posts=50, now=clock)
    local = Local(tags=["t%d" % i for i in range(30)])
    try:
        config = cfg(local, [remote.host], requests_per_host_per_hour=7, posts_per_hour=10000, posts_per_day=10000)
        for _run in range(4):
            run_once(config, clock)
            clock.now += 600
        assert len(remote.hits) == 7
        clock.now += 3600
        run_once(config, clock)
        assert len(remote.hits) == 14
    finally:
        remote.server.close()
        local.server.close()


@pytest.mark.parametrize("mode", ["429", "500"])
def test_a_failing_remote_is_backed_off(cfg, mode):
    clock = Clock()
    bad = Remote(posts=10, mode=mode, retry_after="600", now=clock)
    good = Remote(posts=10, now=clock)
    local = Local()
    try:
        config = cfg(local, [bad.host, good.host], backoff_seconds=60)
        run_once(config, clock)
        assert len(bad.hits) == 1 and len(local.posts) == 10  # the other host is served
        state = json.loads(Path(config["state_file"]).read_text())
        wait = 600 if mode == "429" else 60  # Retry-After honoured; else the first step
        assert state["backoff"][bad.host]["until"] == pytest.approx(T0 + wait)
        # Runs before the back-off ends send nothing to that host.
        for step in range(1, 4):
            clock.now = T0 + wait * step / 4
            run_once(config, clock)
        assert len(bad.hits) == 1
        clock.now = T0 + wait + 1
        run_once(config, clock)
        assert len(bad.hits) == 2
        # The second failure waits longer (exponential; Retry-After when larger).
        state = json.loads(Path(config["state_file"]).read_text())
        second = state["backoff"][bad.host]["until"] - clock.now
        assert second == pytest.approx(600 if mode == "429" else 120)
        # Back to health: the back-off goes, the posts come.
        bad.mode = "ok"
        clock.now += second + 1
        run_once(config, clock)
        state = json.loads(Path(config["state_file"]).read_text())
        assert bad.host not in state["backoff"] and len(local.posts) == 20
    finally:
        for s in (bad, good, local):
            s.server.close()


def test_missing_replies_of_the_owners_conversations_are_fetched(cfg):
    clock = Clock()
    remote = Remote(posts=0, now=clock)
    local = Local(tags=(), owner_statuses=[{"id": "55", "in_reply_to_id": "54"}, {"id": "56", "in_reply_to_id": None}])
    local.contexts["55"] = {"ancestors": [{"url": "https://%s/@alice/4242" % remote.host}], "descendants": []}
    try:
        run_once(cfg(local, []), clock)
        assert "/api/v1/statuses/4242/context" in remote.hits
        assert local.posts == {remote.url(900000 + i) for i in range(5)}
    finally:
        remote.server.close()
        local.server.close()


def test_the_replies_of_a_quiet_owners_conversation_are_not_fetched_again_days_later(cfg):
    """The owner posts nothing for weeks: the same recent posts are read run after run; their
    replies (no age limit: a reply to an old post can be new) are fetched once, not again when the
    hashtag posts' memory would have expired (a regression: 72 hours)."""
    clock = Clock()
    remote = Remote(posts=0, now=clock)
    local = Local(tags=(), owner_statuses=[{"id": "55", "in_reply_to_id": "54"}])
    local.contexts["55"] = {"ancestors": [{"url": "https://%s/@alice/4242" % remote.host}], "descendants": []}
    try:
        config = cfg(local, [])
        for _day in range(20):
            run_once(config, clock)
            clock.now += 86400
        assert sum(local.resolves.values()) == 5 and max(local.resolves.values()) == 1, local.resolves
    finally:
        remote.server.close()
        local.server.close()


class Killed(BaseException):
    """The fault injected into a state write: the process dies there."""


@pytest.mark.parametrize("where", ["before_rename", "after_rename"])
def test_state_survives_a_kill_at_every_write(cfg, where):
    """Kill run after run at its 1st, 2nd, 3rd, 1st... state write (each kind of write: the
    'pending' before a resolve, the 'done' after it): nothing lost, nothing fetched twice except
    a post whose 'done' record the kill prevented (resolved once more; one copy kept)."""
    clock = Clock()
    remote = Remote(posts=12, now=clock)
    local = Local()
    try:
        config = cfg(local, [remote.host], posts_per_hour=1000, posts_per_day=1000)
        kills = 0
        in_flight = 0
        for n in range(1, 200):
            writes = [0]

            def save(path, state, n=n):
                writes[0] += 1
                if writes[0] == n % 3 + 1:
                    if where == "before_rename":  # the temp file is written, the rename never comes
                        tmp = Path(path).with_name(".fetcher-state.killed")
                        tmp.parent.mkdir(exist_ok=True)
                        tmp.write_text(json.dumps(state)[: 40])
                        raise Killed()
                    fetcher_mod.save_state(path, state)
                    raise Killed()
                fetcher_mod.save_state(path, state)

            before = sum(local.resolves.values())
            try:
                run_once(config, clock, save=save)
            except Killed:
                kills += 1
                # The state on disk is complete JSON (old or new), never a torn write.
                state = json.loads(Path(config["state_file"]).read_text())
                in_flight += len(state["pending"])
                continue
            finally:
                assert sum(local.resolves.values()) >= before
            break
        assert kills >= 10
        assert local.posts == {remote.url(i) for i in range(12)}  # nothing lost
        twice = [u for u, c in local.resolves.items() if c > 1]
        print("kills %d, resolves in flight at a kill %d, posts resolved twice %d" % (kills, in_flight, len(twice)))
        assert all(c <= 2 for c in local.resolves.values())
        # Only a post whose 'done' record the kill prevented is resolved again, once.
        assert len(twice) <= in_flight
        if where == "before_rename":
            assert len(twice) <= kills // 2 + 1
        run_once(config, clock)
        assert sum(local.resolves.values()) == 12 + len(twice)  # a further run fetches nothing
    finally:
        remote.server.close()
        local.server.close()


def run_program(config, tmp_path, *args):
    conf = tmp_path / "fetcher.conf"
    conf.write_text(json.dumps(config))
    return subprocess.run([sys.executable, str(SCRIPT), "--config", str(conf), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_token_is_never_printed_logged_or_on_a_command_line(cfg, tmp_path):
    remote = Remote(posts=30)
    local = Local()
    try:
        config = cfg(local, [remote.host, "127.0.0.1:9"])  # and one host that refuses connections
        proc = run_program(config, tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert len(local.posts) == 30 and local.bad_auth == 0
        texts = [proc.stdout, proc.stderr, Path(config["log_file"]).read_text(),
                 Path(config["state_file"]).read_text(), " ".join(proc.args)]
        assert "30 post(s) fetched" in proc.stdout
        for text in texts:
            assert TOKEN not in text and TOKEN[4:20] not in text
        # A wrong token: the run fails, naming neither token.
        Path(config["token_file"]).write_text("wrong-" + TOKEN[::-1])
        proc = run_program(config, tmp_path)
        assert proc.returncode == 1 and "HTTP 401" in proc.stdout
        assert TOKEN[::-1] not in proc.stdout + proc.stderr
    finally:
        remote.server.close()
        local.server.close()


def test_create_token_once_root_only_never_printed(cfg, tmp_path):
    local = Local()
    live = tmp_path / "live"
    (live / "bin").mkdir(parents=True)
    calls = tmp_path / "rails-calls"
    # STAND-IN for bin/rails runner: prints the token line the role's Ruby script prints.
    rails = live / "bin" / "rails"
    rails.write_text("#!/bin/sh\necho \"$MASTODON_OPS_FETCHER_SCOPES $*\" >>%s\n"
                     "echo 'booted'\necho 'mastodon-fetcher-token: %s'\n" % (calls, TOKEN))
    rails.chmod(0o755)
    try:
        config = cfg(local, [], live_dir=str(live), app_user="", app_path="/usr/bin:/bin")
        token_file = Path(config["token_file"])
        token_file.unlink()
        proc = run_program(config, tmp_path, "--create-token")
        assert proc.returncode == 0, proc.stderr
        assert TOKEN not in proc.stdout + proc.stderr
        st_ = token_file.stat()
        assert stat.S_IMODE(st_.st_mode) == 0o600 and st_.st_uid == os.geteuid()
        assert token_file.read_text().strip() == TOKEN
        assert calls.read_text().startswith("read:follows read:search runner ")
        # Never regenerated once created.
        proc = run_program(config, tmp_path, "--create-token")
        assert proc.returncode == 0 and "kept" in proc.stdout
        assert len(calls.read_text().splitlines()) == 1
        # A failing script: no file, the output's last line without the token.
        token_file.unlink()
        rails.write_text("#!/bin/sh\necho 'mastodon-fetcher-token: %s'\necho 'no local account owner' >&2\n"
                         "exit 1\n" % TOKEN)
        proc = run_program(config, tmp_path, "--create-token")
        assert proc.returncode == 1 and "no local account owner" in proc.stderr
        assert TOKEN not in proc.stdout + proc.stderr and not token_file.exists()
    finally:
        local.server.close()


def test_paused_while_the_flood_guard_has_tripped(cfg, tmp_path):
    remote = Remote(posts=5)
    local = Local()
    try:
        config = cfg(local, [remote.host])
        Path(config["guard_marker_file"]).write_text('{"tripped_at": "now", "reasons": ["cache"]}')
        proc = run_program(config, tmp_path)
        assert proc.returncode == 0 and "paused by the flood guard" in proc.stdout
        assert remote.hits == [] and not local.resolves
        os.unlink(config["guard_marker_file"])  # the reset
        proc = run_program(config, tmp_path)
        assert proc.returncode == 0 and len(local.posts) == 5
    finally:
        remote.server.close()
        local.server.close()
