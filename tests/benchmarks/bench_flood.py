# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Relay flood benchmark (`make bench-flood`): how fast the flood guard stops a flood.

Runs the Molecule scenario `flood` (a container: real systemd, PostgreSQL, Redis, the real
flood guard on its 5-second timer; the Mastodon TEST DOUBLE and its relay simulator, a
stand-in for a busy relay, writing remote media into an 80 MB tmpfs at 2 MB/s and pushing
60 Sidekiq jobs/s), then prints from the figures the scenario's verifier recorded:

* the flood rate (MB/s of remote media, jobs/s into Sidekiq's queues),
* the guard's reaction time: from the moment the media cache crossed its cap to the moment the
  relay was disabled (sampled every 0.5 s),
* the lowest free disk seen on the cache filesystem (and the guard's floor),
* the Sidekiq backlog's peak and its drain time after the relay stopped.

    python tests/benchmarks/bench_flood.py [--distro debian13]      run the scenario, print
    python tests/benchmarks/bench_flood.py --from results.json      print a recorded run
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def report(data):
    s = data["summary"]
    drain = (s["drained_at"] - s["stopped_sending_at"]) if s.get("drained_at") is not None else None
    lines = [
        "Relay flood benchmark (scenario flood: container, TEST DOUBLE relay simulator, real flood guard)",
        "  flood rate:            %.1f MB/s remote media, %.0f jobs/s into Sidekiq (%.1f MB, %d jobs sent)"
        % (s["mb_per_second"], s["jobs_per_second"], s["written_mb"], s["jobs_pushed"]),
        "  threshold crossed:     %.1f s after the flood began (media cache > %d MB on a %d MB tmpfs)"
        % (data["crossed_at"], data["cache_cap_mb"], data["tmpfs_mb"]),
        "  guard reaction time:   %.1f s from crossing to relays disabled (timer every 5 s)"
        % data["reaction_seconds"],
        "  lowest free disk:      %d MB (guard floor %d MB; writes refused for lack of space: %d)"
        % (s["lowest_free_mb"], data["floor_mb"], s["enospc"]),
        "  Sidekiq backlog peak:  %d jobs at %.1f s" % (s["backlog_peak"], s["backlog_peak_at"] or 0),
        "  backlog drain time:    %s after the relay stopped"
        % ("%.1f s" % drain if drain is not None else "NOT DRAINED"),
        "  guard log during the flood:",
    ]
    lines += ["    " + line for line in data.get("guard_log", []) if "ok: " not in line][:8]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distro", default=os.environ.get("D", "debian13"))
    parser.add_argument("--from", dest="from_file")
    args = parser.parse_args()
    path = args.from_file
    if not path:
        path = os.path.join(ROOT, ".build", "bench-flood-%s.json" % args.distro)
        if os.path.exists(path):
            os.unlink(path)
        env = dict(os.environ, FLOOD_RESULTS=path)
        run = subprocess.run(["bash", os.path.join(ROOT, "tests", "platform", "run-tests.sh"), "molecule",
                              "flood:%s" % args.distro], env=env, check=False)
        if not os.path.exists(path):
            print("bench-flood: the flood scenario recorded no figures (exit %d)" % run.returncode, file=sys.stderr)
            return 1
    with open(path, encoding="utf-8") as handle:
        print(report(json.load(handle)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
