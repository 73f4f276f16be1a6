# -*- coding: utf-8 -*-
# Copyright (c) selfhost.mastodon developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: how long playbooks/site.yml takes on the demo, first converge and no-op re-run.

    make bench-converge            (or: .venv/bin/python tests/benchmarks/bench_converge.py [--keep] [--repeat N])

It removes the demo (`tests/platform/demo.sh down`), brings it up again (`demo.sh up`: the
Cloudflare emulator, a fresh container playing the laptop, the Mastodon TEST DOUBLE, then the
first converge of site.yml), and runs site.yml again, which must change nothing, over both
connections a real laptop or the demo uses: `docker exec` (the demo's inventory) and SSH (the
same demo laptop, which runs sshd after base_os: the admin account and the demo's key, as
ansible.cfg sets SSH up, ControlPersist and pipelining). With --repeat N each no-op runs N
times, the two connections alternating. It prints the wall time of each site.yml run, the
ratio and the task counts of each run (ok, changed, skipped), as the PLAY RECAP gives them. It measures and prints; it asserts only that the second
run changed nothing (a no-op that changes something is not a no-op). The figures depend on the
machine and its load: read them, do not compare them with a fixed budget.

Stand-ins, as in the demo: the Cloudflare emulator, the connector stand-in and the Mastodon TEST
DOUBLE; everything else is the real site.yml on a systemd container over `docker exec` or SSH.
"""
import argparse
import json
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
DEMO_HOST = "selfhost-demo-laptop"
DEMO_NETWORK = "selfhost-demo"


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


def ssh_inventory():
    """An inventory that reaches the demo laptop over SSH: the demo's own group_vars (a link),
    the host's address on the demo network, the admin account and the demo's key."""
    address = subprocess.run(
        ["docker", "inspect", "-f", '{{json .NetworkSettings.Networks}}', DEMO_HOST],
        capture_output=True, text=True, check=True).stdout
    ip = json.loads(address)[DEMO_NETWORK]["IPAddress"]
    # Two levels below the project, as inventories/demo is: its __demo_root is inventory_dir/../..
    folder = os.path.join(ROOT, ".build", "bench-ssh")
    os.makedirs(folder, exist_ok=True)
    link = os.path.join(folder, "group_vars")
    if not os.path.islink(link):
        os.symlink(os.path.join("..", "..", "inventories", "demo", "group_vars"), link)
    host = {
        "ansible_connection": "ssh",
        "ansible_host": ip,
        "ansible_user": "mastoadmin",
        "ansible_ssh_private_key_file": os.path.join(ROOT, ".build", "demo", "keys", "id_admin"),
        # A fresh container has a new host key each time: not a host to remember.
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    hosts = os.path.join(folder, "hosts.yml")
    with open(hosts, "w", encoding="utf-8") as handle:
        json.dump({"all": {"children": {"mastodon": {"hosts": {DEMO_HOST: host}}}}}, handle, indent=2)
    return hosts


def recap(output):
    rows = [m.groupdict() for m in RECAP.finditer(output)]
    if not rows:
        sys.exit("bench-converge: no PLAY RECAP in the output")
    row = rows[-1]
    return {k: int(v) for k, v in row.items() if k != "host"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", action="store_true", help="leave the demo running afterwards")
    parser.add_argument("--repeat", type=int, default=1, help="no-op runs per connection (alternating)")
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
    inventories = {"docker exec": "inventories/demo", "ssh": ssh_inventory()}
    noops = []  # {"connection", "took", "recap", "output"}
    for turn in range(args.repeat):
        for connection, inventory in inventories.items():
            # The SSH inventory is another inventory, and one of base_os's inputs differs between
            # the two (measured: base_os alone re-ran), so the first run after a switch runs
            # base_os in full and records it (docs/configuring.md, "Re-runs skip what did not change"). That run changes
            # nothing either; it is printed as "switch", the next one is the no-op.
            for kind in ("switch", "no-op"):
                print(f"bench-converge: {kind} run {turn + 1} of site.yml over {connection} "
                      "(expected to change nothing)", flush=True)
                took, output = run(["ansible-playbook", "-i", inventory, "playbooks/site.yml"], log)
                noops.append({"connection": connection, "kind": kind, "took": took,
                              "recap": recap(output), "output": output})
    if not args.keep:
        run(demo + ["down"], log)

    def tasks(r):
        return r["ok"] + r["skipped"]

    print()
    print(f"{'run':<26}{'wall s':>8}{'tasks':>8}{'ok':>6}{'changed':>9}{'skipped':>9}")
    print(f"{'first converge':<26}{first_s if first_s is not None else '?':>8}{tasks(first):>8}"
          f"{first['ok']:>6}{first['changed']:>9}{first['skipped']:>9}")
    for noop in noops:
        label, r = f"{noop['kind']} ({noop['connection']})", noop["recap"]
        print(f"{label:<26}{noop['took']:>8.0f}{tasks(r):>8}{r['ok']:>6}{r['changed']:>9}{r['skipped']:>9}")
    if first_s:
        for connection in inventories:
            best = min(n["took"] for n in noops if n["connection"] == connection and n["kind"] == "no-op")
            print(f"ratio no-op ({connection}, best) / first: {best / first_s:.2f}")
    with open("/proc/loadavg", encoding="utf-8") as handle:
        print(f"load average at the end: {' '.join(handle.read().split()[:3])}")
    for connection in inventories:
        output = next(n["output"] for n in noops if n["connection"] == connection and n["kind"] == "no-op")
        slowest = re.findall(r"^(\S.*?) -{2,} (\d+\.\d+)s$", output, re.M)
        if slowest:
            print(f"slowest tasks of the first no-op run over {connection}:")
            for name, secs in slowest[:8]:
                print(f"  {float(secs):6.2f} s  {name}")
    print(f"log: {log}")
    bad = [n for n in noops if n["recap"]["changed"] or n["recap"]["failed"]]
    if bad:
        sys.exit("bench-converge: a re-run was not a no-op: " + ", ".join(
            f"{n['connection']} changed={n['recap']['changed']} failed={n['recap']['failed']}" for n in bad))


if __name__ == "__main__":
    main()
