"""Figures of the day-2 fault suite (tests/controller/test_ops_faults.py): faults injected,
backups or live state lost, backups duplicated.

Each case calls record(); the records go to the file named by SELFHOST_FAULTS_LOG (one JSON
object a line) when it is set. `python tests/support/faults.py LOG` prints the figures and
exits 1 when anything was lost or duplicated. The cases assert the same facts themselves.
"""
import json
import os
import sys


def record(case, lost, duplicated):
    path = os.environ.get("SELFHOST_FAULTS_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"case": case, "lost": int(lost), "duplicated": int(duplicated)}) + "\n")


def summary(path):
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    lost = sum(r["lost"] for r in rows)
    duplicated = sum(r["duplicated"] for r in rows)
    for r in rows:
        if r["lost"] or r["duplicated"]:
            print(f"  {r['case']}: lost {r['lost']}, duplicated {r['duplicated']}")
    print(f"day-2 fault suite: faults injected {len(rows)}, lost {lost}, duplicated {duplicated}")
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(summary(sys.argv[1]))
