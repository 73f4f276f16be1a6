"""The dry run a user types, `ansible-playbook -i <inventory> playbooks/site.yml --check --diff`
(tasks/dry_run.yml), twice: on the fresh laptop (prepare.yml, before converge) it finishes and
shows changes, on the converged laptop (side_effect.yml, after Molecule's idempotence step) it
finishes with changed=0. Each run's output and exit code are in <ephemeral>/dry-run/; its recap
is read from the run's own lines in ansible.log (by its pid) too, so that the two agree."""
# pylint: disable=disallowed-name  # "_" for values a test does not look at
import re

import pytest

from conftest import ansible_log_runs, dry_run_pids, ephemeral

RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def dry_run(phase):
    folder = ephemeral() / "dry-run"
    assert (folder / f"{phase}.rc").exists(), f"the {phase} dry run did not run (no {phase}.rc)"
    output = (folder / f"{phase}.log").read_text(errors="replace")
    recap = [(host, int(ok), int(changed), int(unreachable), int(failed))
             for host, ok, changed, unreachable, failed in RECAP.findall(output)]
    return int((folder / f"{phase}.rc").read_text()), output, recap


def changed_task_names(output):
    """The tasks that reported a change (their TASK line comes before the "changed:" line)."""
    names, task = [], None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line[6:line.rfind("]")]
        elif line.startswith("changed:") and task not in names:
            names.append(task)
    return names


@pytest.mark.parametrize("phase", ["fresh", "converged"])
def test_dry_run_finishes(phase, capsys):
    rc, output, recap = dry_run(phase)
    assert recap, f"the {phase} dry run has no recap:\n{output[-3000:]}"
    with capsys.disabled():
        print(f"\n[site] dry run on the {phase} laptop: "
              + ", ".join(f"{host} ok={ok} changed={changed} failed={failed}" for host, ok, changed, _, failed in recap))
    assert rc == 0, output[-3000:]
    assert all(failed == 0 and unreachable == 0 for _, _, _, unreachable, failed in recap), output[-3000:]
    # It went through every role (the last play's tasks are the roles'), not just the checks.
    assert "TASK [selfhost.mastodon.cloudflare_tunnel :" in output, output[-3000:]


def test_dry_run_on_the_fresh_laptop_shows_what_it_would_do():
    _, output, recap = dry_run("fresh")
    assert recap and all(changed > 0 for _, _, changed, _, _ in recap), output[-3000:]
    # --diff shows the files a real run would write (the sudo rule, for one).
    assert "--- before" in output and "+++ after" in output, output[-3000:]


def test_dry_run_on_the_converged_laptop_changes_nothing():
    _, output, recap = dry_run("converged")
    changed_tasks = changed_task_names(output)
    assert recap and all(changed == 0 for _, _, changed, _, _ in recap), (changed_tasks, output[-3000:])


def test_dry_runs_are_in_ansible_log():
    pids = dry_run_pids()
    assert set(pids) == {"fresh", "converged"}, pids
    runs = {pid: text for pid, _, _, text in ansible_log_runs()}
    for phase, pid in pids.items():
        assert pid in runs, f"the {phase} dry run (pid {pid}) is not in ansible.log"
        assert RECAP.search(re.sub(r"^.*? p=\d+ u=\S+ n=\S+ \S*\| ", "", runs[pid], flags=re.M)), phase


def test_no_secret_in_the_dry_run_output(secrets):
    assert len(secrets) >= 3
    leaks = [f"{name} in the {phase} dry run" for phase in ("fresh", "converged")
             for name, value in secrets.items() if value and value in dry_run(phase)[1]]
    assert not leaks
