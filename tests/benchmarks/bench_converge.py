# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: how long playbooks/site.yml takes on the demo, first converge and no-op re-run.

    make bench-converge            (or: .venv/bin/python tests/benchmarks/bench_converge.py [--keep])

It removes the demo (`tests/platform/demo.sh down`), brings it up again (`demo.sh up`: the
Cloudflare emulator, a fresh container playing the laptop, the Mastodon TEST DOUBLE, then the
first converge of site.yml), and runs site.yml once more, which must change nothing. It prints
the wall time of each site.yml run, their ratio and the task counts of each run (ok, changed,
skipped), as the PLAY RECAP gives them. It measures and prints; it asserts only that the second
run changed nothing (a no-op that changes something is not a no-op). The figures depend on the
machine and its load: read them, do not compare them with a fixed budget.

Stand-ins, as in the demo: the Cloudflare emulator, the connector stand-in and the Mastodon TEST
DOUBLE; everything else is the real site.yml on a systemd container over `docker exec`.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)", re.M)
SITE_TIME = re.compile(r"\(site\.yml: (\d+) s\)")


def env():
    e = dict(os.environ)
    e["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + e.get("PATH", "")
    e["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".build", "collections")
    e["ANSIBLE_ROLES_PATH"] = os.path.join(ROOT, "roles")
    e.setdefault("ANSIBLE_PIPELINING", "True")
    e["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
    e["ANSIBLE_FORCE_COLOR"] = "0"
    return e


def run(argv, log):
    """Run argv in the project folder; return (seconds, output); stop on failure."""
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    took = time.monotonic() - start
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(proc.stdout)
    if proc.returncode != 0:
        sys.exit(f"bench-converge: {' '.join(argv)} failed (exit {proc.returncode}); see {log}")
    return took, proc.stdout


def recap(output):
    rows = [m.groupdict() for m in RECAP.finditer(output)]
    if not rows:
        sys.exit("bench-converge: no PLAY RECAP in the output")
    row = rows[-1]
    return {k: int(v) for k, v in row.items() if k != "host"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", action="store_true", help="leave the demo running afterwards")
    args = parser.parse_args()
    log = os.path.join(ROOT, ".build", "bench-converge.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    open(log, "w", encoding="utf-8").close()
    demo = ["bash", "tests/platform/demo.sh"]
    print("bench-converge: removing any earlier demo, then a first converge on a fresh container",
          flush=True)
    run(demo + ["down"], log)
    out = run(demo + ["up"], log)[1]
    first_site = SITE_TIME.search(out)
    first = recap(out)
    first_s = int(first_site.group(1)) if first_site else None
    print("bench-converge: second run of site.yml (expected to change nothing)", flush=True)
    second_s, out2 = run(["ansible-playbook", "-i", "inventories/demo", "playbooks/site.yml"], log)
    second = recap(out2)
    if not args.keep:
        run(demo + ["down"], log)

    def tasks(r):
        return r["ok"] + r["skipped"]

    print()
    print(f"{'run':<22}{'wall s':>8}{'tasks':>8}{'ok':>6}{'changed':>9}{'skipped':>9}")
    print(f"{'first converge':<22}{first_s if first_s is not None else '?':>8}{tasks(first):>8}"
          f"{first['ok']:>6}{first['changed']:>9}{first['skipped']:>9}")
    print(f"{'no-op re-run':<22}{second_s:>8.0f}{tasks(second):>8}{second['ok']:>6}"
          f"{second['changed']:>9}{second['skipped']:>9}")
    if first_s:
        print(f"ratio no-op / first: {second_s / first_s:.2f}")
    slowest = re.findall(r"^(\S.*?) -{2,} (\d+\.\d+)s$", out2, re.M)
    if slowest:
        print("slowest tasks of the no-op re-run:")
        for name, secs in slowest[:8]:
            print(f"  {float(secs):6.2f} s  {name}")
    print(f"log: {log}")
    if second["changed"] or second["failed"]:
        sys.exit(f"bench-converge: the re-run was not a no-op (changed={second['changed']}, "
                 f"failed={second['failed']})")


if __name__ == "__main__":
    main()
