"""Print the bad-input figures of issue 12 from what the cases recorded.

    python tests/bad_inputs/summary.py LOG     figures from a log written by a test run
    python tests/bad_inputs/summary.py         runs the bad-input suites first (project venv)

The suites: tests/unit/plugins/modules/test_bad_inputs.py (every module, against the
Cloudflare emulator and temporary folders), tests/controller/test_bad_inputs_roles.py (every
role's validate entry point, through ansible-playbook) and tests/controller/test_ops_scripts.py
(mastodon-restore and mastodon-backup). Each case records what it observed
(tests/bad_inputs/recorder.py). Exit status 1 when a figure is not what it must be.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITES = ["tests/unit/plugins/modules/test_bad_inputs.py", "tests/controller/test_bad_inputs_roles.py",
          "tests/controller/test_ops_scripts.py"]


def run_suites(log):
    env = dict(os.environ, SELFHOST_BAD_INPUTS_LOG=str(log),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
                          cwd=str(ROOT), env=env, check=False).returncode


def figures(log):
    cases = {}
    for line in Path(log).read_text().splitlines():
        entry = json.loads(line)
        cases[(entry["suite"], entry["case"])] = entry  # the last run of a case counts
    counts = collections.Counter()
    by_suite = collections.Counter()
    accepted = []
    for (suite, case), e in sorted(cases.items()):
        by_suite[suite] += 1
        if not e["refused"]:
            counts["accepted"] += 1
            accepted.append("%s: %s (%s)" % (suite, case, e.get("accepted_why") or "no reason given"))
        elif e["changed"]:
            counts["refused after a change"] += 1
        elif e["names_variable"]:
            counts["refused before any change, variable named"] += 1
        else:
            counts["refused before any change, variable NOT named"] += 1
        if e["secret_printed"]:
            counts["secrets printed"] += 1
    return cases, counts, by_suite, accepted


def main():
    if len(sys.argv) > 1:
        log = Path(sys.argv[1])
        rc = 0
    else:
        log = Path(tempfile.mkstemp(prefix="bad-inputs-", suffix=".jsonl")[1])
        rc = run_suites(log)
    cases, counts, by_suite, accepted = figures(log)
    print("bad inputs: %d cases (%s)" % (len(cases), ", ".join("%s %d" % kv for kv in sorted(by_suite.items()))))
    for label in ("refused before any change, variable named",
                  "refused before any change, variable NOT named",
                  "refused after a change", "accepted", "secrets printed"):
        print("  %-48s %d" % (label, counts[label]))
    for line in accepted:
        print("  accepted: " + line)
    bad = (counts["refused after a change"] or counts["accepted"] or counts["secrets printed"]
           or counts["refused before any change, variable NOT named"] or len(cases) < 80)
    return 1 if bad or rc else 0


if __name__ == "__main__":
    sys.exit(main())
