# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetcher vs relay benchmark (`make bench-fetcher`): a day of mastodon-fetcher beside a relay.

Two parts, printed side by side:

1. MEASURED here: the real mastodon-fetcher (roles/mastodon_ops/files) runs a simulated day
   (96 runs, one every 15 minutes, the clock moved in-process) at the role's default budget
   against STAND-INS: 3 remote instances (tiny HTTP servers whose hashtag timelines always hold
   40 new posts: busier than the budget) x 3 followed hashtags, and a local instance that
   counts the resolves. Measured: posts brought, requests per remote host, the state file's
   size, the fetcher's own time per post.
2. A MODEL (not a measurement) of what those posts cost the laptop, beside a relay at the
   story's rate (42 GB of remote media a day): media per remote post taken from the relay
   simulator of the flood scenario (2.0 MB/s with 60 posts/s, docs/performance.md), one
   Sidekiq processing job per post either way, and the backlog a day leaves behind for a few
   Sidekiq capacities (jobs/s the laptop works off).

    python tests/benchmarks/bench_fetcher.py
"""

import contextlib
import datetime
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "roles", "mastodon_ops", "files", "mastodon-fetcher")

STORY_GB_PER_DAY = 42.0        # the story: a big relay, one day, an 8 GB laptop
SIM_MB_PER_S, SIM_POSTS_PER_S = 2.0, 60.0   # the flood scenario's relay simulator
CAPACITIES = (5, 10, 20)       # Sidekiq jobs/s the laptop works off (model inputs)
INSTANCES, TAGS, RUNS, MINUTES = 3, 3, 96, 15


def load_fetcher():
    loader = importlib.machinery.SourceFileLoader("mastodon_fetcher", SCRIPT)
    spec = importlib.util.spec_from_loader("mastodon_fetcher", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def serve(handle):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            parsed = urlparse(self.path)
            status, body = handle(parsed.path, parse_qs(parsed.query))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, "127.0.0.1:%d" % httpd.server_address[1]


def measure():
    fetcher = load_fetcher()
    clock = [1_800_000_000.0]
    remote_hits = Counter()
    resolves = Counter()
    servers = []

    def remote_handler(name):
        def handle(path, query):
            remote_hits[name] += 1
            stamp = datetime.datetime.fromtimestamp(clock[0], datetime.timezone.utc).isoformat()
            base = int(clock[0]) * 100  # 40 new posts at every request: a busy hashtag
            return 200, [{"url": "https://%s/@a/%d" % (name, base + i), "created_at": stamp} for i in range(40)]
        return handle

    instances = []
    for _instance in range(INSTANCES):
        holder = {}
        httpd, host = serve(lambda p, q, h=holder: h["f"](p, q))
        holder["f"] = remote_handler(host)
        servers.append(httpd)
        instances.append(host)

    def local(path, query):
        if path == "/api/v1/followed_tags":
            return 200, [{"name": "tag%d" % i} for i in range(TAGS)]
        if path == "/api/v2/search":
            resolves[query["q"][0]] += 1
            return 200, {"statuses": [{"id": "1"}]}
        if path == "/api/v1/accounts/lookup":
            return 200, {"id": "1"}
        return 200, []

    httpd, local_host = serve(local)
    servers.append(httpd)
    with tempfile.TemporaryDirectory() as tmp:
        token = os.path.join(tmp, "token")
        with open(token, "w", encoding="utf-8") as handle:
            handle.write("bench-token\n")
        cfg = dict(fetcher.DEFAULTS, local_url="http://" + local_host, token_file=token,
                   state_file=os.path.join(tmp, "state.json"), log_file=os.path.join(tmp, "log"),
                   guard_marker_file=os.path.join(tmp, "marker"), instances=instances, remote_url="http://{host}")
        started = time.process_time()
        wall = time.monotonic()
        with open(os.devnull, "w", encoding="utf-8") as quiet, contextlib.redirect_stdout(quiet):
            for _run in range(RUNS):
                fetcher.Fetcher(cfg, "bench-token", clock=lambda: clock[0]).run()
                clock[0] += MINUTES * 60
        cpu = time.process_time() - started
        wall = time.monotonic() - wall
        state_bytes = os.path.getsize(cfg["state_file"])
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()
    posts = sum(resolves.values())
    return {"posts": posts, "duplicates": sum(c - 1 for c in resolves.values()),
            "max_requests_per_host": max(remote_hits.values()), "requests": sum(remote_hits.values()),
            "state_kb": state_bytes / 1024.0, "cpu_ms_per_post": 1000.0 * cpu / max(posts, 1),
            "wall_s": wall, "budget_day": cfg["posts_per_day"], "budget_hour": cfg["posts_per_hour"],
            "req_budget": cfg["requests_per_host_per_hour"]}


def model(posts_per_day):
    mb_per_post = SIM_MB_PER_S / SIM_POSTS_PER_S
    return {"posts": posts_per_day, "disk_mb": posts_per_day * mb_per_post, "jobs": posts_per_day,
            "backlog": {c: max(0, posts_per_day - c * 86400) for c in CAPACITIES}}


def main():
    m = measure()
    relay_posts = STORY_GB_PER_DAY * 1024 / (SIM_MB_PER_S / SIM_POSTS_PER_S)
    fetcher_side, relay_side = model(m["posts"]), model(relay_posts)
    # The relay's jobs arrive at their daily mean rate; the backlog is what a day leaves.
    lines = [
        "Fetcher vs relay, one day (MEASURED: the real mastodon-fetcher against stand-ins, simulated clock)",
        "  fetcher runs:              %d (every %d min), %d instances x %d followed hashtags, default budget"
        % (RUNS, MINUTES, INSTANCES, TAGS),
        "  budget:                    %d posts/hour, %d posts/day, %d requests/host/hour"
        % (m["budget_hour"], m["budget_day"], m["req_budget"]),
        "  posts brought:             %d (fetched twice: %d)" % (m["posts"], m["duplicates"]),
        "  remote requests:           %d in all, at most %d to one host" % (m["requests"], m["max_requests_per_host"]),
        "  state file after the day:  %.0f KB" % m["state_kb"],
        "  fetcher CPU per post:      %.2f ms (%.1f s wall for the day's %d runs)"
        % (m["cpu_ms_per_post"], m["wall_s"], RUNS),
        "",
        "Per day, side by side (MODEL from the figures above: %.3f MB of media per remote post as the"
        % (SIM_MB_PER_S / SIM_POSTS_PER_S),
        "relay simulator writes it, one Sidekiq job per post; not measured on a real Mastodon)",
        "  %-34s %16s %16s" % ("", "fetcher (default)", "relay (story)"),
        "  %-34s %16d %16d" % ("posts brought in", fetcher_side["posts"], relay_side["posts"]),
        "  %-34s %16.0f %16.0f" % ("disk used by remote media (MB)", fetcher_side["disk_mb"], relay_side["disk_mb"]),
        "  %-34s %16d %16d" % ("Sidekiq jobs enqueued", fetcher_side["jobs"], relay_side["jobs"]),
    ]
    for capacity in CAPACITIES:
        label = "backlog left at %d jobs/s" % capacity
        lines.append("  %-34s %16d %16d" % (label, fetcher_side["backlog"][capacity], relay_side["backlog"][capacity]))
    print("\n".join(lines))
    # The measured part must hold the budget, or the benchmark fails.
    ok = m["posts"] <= m["budget_day"] and m["duplicates"] == 0 and m["max_requests_per_host"] <= m["req_budget"] * 24
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
