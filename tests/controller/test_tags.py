"""Tags of playbooks/site.yml (docs/configuring.md, "Tags"): which tasks --tags and --skip-tags
select, read from `ansible-playbook --list-tasks` on inventories/example (nothing runs).

Every role task carries its role's name; base_os, mastodon_stack and mastodon_ops tag each phase;
the input checks and the facts every phase reads are tagged always. --list-tasks shows the tasks
of imported files (with their inherited tags) and the include tasks themselves: an included
file's tasks get the include's tags through `apply`, which test_includes_pass_their_tags_on
checks in the task files. The phases of base_os, mastodon_stack and mastodon_ops are in their
tasks/converge.yml, included (tagged always, so that --tags reaches inside) only when something
changed since the last complete run (docs/performance.md): listed() puts the tasks --list-tasks
gives for that file, imported with the same arguments, where its include is, which is what a run
with those tags executes when the role has something to do.
"""
import re
from collections import namedtuple

import pytest
import yaml

from support.ansible_cli import ROOT, ansible_playbook

SITE = ROOT / "playbooks" / "site.yml"
ROLES = ("base_os", "selfsigned_tls", "mastodon_stack", "mastodon_ops", "cloudflare_tunnel")
PHASED = ("base_os", "mastodon_stack", "mastodon_ops")
LINE = re.compile(r"^\s{6}(?:selfhost\.mastodon\.(?P<role>\w+) : )?(?P<name>.*?)\tTAGS: \[(?P<tags>[^\]]*)\]$")
Task = namedtuple("Task", "role name tags")
ZONE_CHECK = "Check the hostname's zone at Cloudflare before anything changes"
CHECKS = "Check every role's variables before any role runs"


# The include of each role's converge.yml in its main.yml (the name up to its templated reason).
CONVERGE = {
    "base_os": "Update, secure and harden the base system - ",
    "mastodon_stack": "Install, configure and run Mastodon - ",
    "mastodon_ops": "Install the day-2 scripts and timers - ",
}


def _parse(run):
    assert run.returncode == 0, run.output[-3000:]
    tasks = []
    for line in run.stdout.splitlines():
        match = LINE.match(line)
        if match:
            tags = {t.strip() for t in match["tags"].split(",") if t.strip()}
            tasks.append(Task(match["role"], match["name"], tags))
    return tasks


def _converge_tasks(role, args, tmp_path_factory):
    """The tasks of ROLE's tasks/converge.yml that *args* select, imported as site.yml's role is."""
    book = tmp_path_factory.mktemp("converge") / "converge.yml"
    book.write_text(yaml.safe_dump([{
        "name": "The phases of " + role, "hosts": "mastodon", "gather_facts": False,
        "tasks": [{"name": "Phases", "ansible.builtin.import_role": {
            "name": "selfhost.mastodon." + role, "tasks_from": "converge"}, "tags": [role]}]}]))
    return _parse(ansible_playbook(book, "--list-tasks", *args, inventory="inventories/example", timeout=300))


def listed(*args, factory=None):
    """The tasks site.yml would run with *args*: Task(role or None, name, tags) per task."""
    run = ansible_playbook(SITE, "--list-tasks", *args, inventory="inventories/example", timeout=300)
    tasks = []
    for task in _parse(run):
        if task.role in CONVERGE and task.name.startswith(CONVERGE[task.role]):
            assert task.tags == {"always", task.role}, task
            tasks.extend(_converge_tasks(task.role, args, factory or _FACTORY[0]))
        else:
            tasks.append(task)
    assert tasks, run.output[-3000:]
    return tasks


_FACTORY = []


@pytest.fixture(scope="module", autouse=True)
def _factory(tmp_path_factory):
    _FACTORY[:] = [tmp_path_factory]
    yield


def test_each_phased_role_includes_its_phases_once():
    for role, name in CONVERGE.items():
        main = yaml.safe_load((ROOT / "roles" / role / "tasks" / "main.yml").read_text())
        includes = [t for t in main if (t.get("ansible.builtin.include_tasks") or {}) == {"file": "converge.yml"}]
        assert len(includes) == 1 and includes[0]["name"].startswith(name), role
        assert includes[0]["tags"] == ["always"] and includes[0]["when"] == f"__{role}_converge_due | bool"


def roles_with_work(tasks):
    """The roles of which a task other than the always ones (checks, facts) is selected."""
    return {t.role for t in tasks if t.role and "always" not in t.tags}


@pytest.fixture(scope="module")
def everything():
    return listed()


def test_every_role_task_carries_its_role_and_a_phase(everything):
    roles = {t.role for t in everything if t.role}
    assert roles == set(ROLES)
    for task in everything:
        if not task.role:
            continue
        assert task.role in task.tags, task
        if task.role in PHASED and "always" not in task.tags:
            assert [tag for tag in task.tags if tag.startswith(task.role + "_")], task


def test_tags_select_one_role(everything):
    only = listed("--tags", "mastodon_stack")
    assert roles_with_work(only) == {"mastodon_stack"}
    stack = [(t.role, t.name) for t in everything if t.role == "mastodon_stack"]
    assert [(t.role, t.name) for t in only if t.role == "mastodon_stack"] == stack
    # The other roles' input checks still run (tagged always); their work does not.
    assert ("base_os", "Check the inputs before changing anything") in [(t.role, t.name) for t in only]
    assert not [t for t in only if t.role == "base_os" and "firewall" in t.name.lower()]
    # The R2 bucket, whose settings mastodon_stack writes, comes with it.
    assert "Create the R2 bucket for Mastodon's media (cloudflare_tunnel_r2_bucket)" in [t.name for t in only]


def test_skip_tags_leaves_a_role_out_entirely(everything):
    without = listed("--skip-tags", "base_os")
    assert not [t for t in without if t.role == "base_os"]  # its checks too
    assert roles_with_work(without) == set(ROLES) - {"base_os"}
    assert len(without) == len(everything) - len([t for t in everything if t.role == "base_os"])


def test_a_phase_tag_selects_that_phase_and_what_it_reads():
    firewall = listed("--tags", "base_os_firewall")
    names = {t.name for t in firewall if t.role == "base_os"}
    assert "Tell whether the machine is a container" in names  # a fact every phase reads
    assert any("firewall table" in n for n in names)  # the shared read, tagged with each phase
    assert roles_with_work(firewall) == {"base_os"}
    for task in firewall:
        assert task.tags & {"always", "base_os_firewall"}, task.name
    assert not [t for t in firewall if t.role == "base_os" and "sshd" in t.name.lower() and "firewall" not in t.name.lower()]

    relays = listed("--tags", "mastodon_stack_relays")
    assert roles_with_work(relays) == {"mastodon_stack"}
    work = [t for t in relays if t.role == "mastodon_stack" and "always" not in t.tags]
    assert work and all("mastodon_stack_relays" in t.tags for t in work)
    assert not [t for t in work if "nginx" in t.name.lower()]


def test_skip_a_phase_keeps_the_rest(everything):
    without = listed("--skip-tags", "mastodon_stack_nginx")
    gone = {(t.role, t.name) for t in everything} - {(t.role, t.name) for t in without}
    assert gone and all(role == "mastodon_stack" for role, name in gone)
    assert all("nginx" in name.lower() or "site" in name.lower() for role, name in gone), gone
    assert roles_with_work(without) == set(ROLES)


def test_the_cloudflare_zone_check_keeps_its_tag(everything):
    assert ZONE_CHECK in [t.name for t in everything]
    assert ZONE_CHECK not in [t.name for t in listed("--skip-tags", "selfhost_cloudflare_zone")]
    zone = listed("--tags", "selfhost_cloudflare_zone")
    assert ZONE_CHECK in [t.name for t in zone] and CHECKS in [t.name for t in zone]
    assert not roles_with_work(zone)


def test_includes_pass_their_tags_on():
    # A tag on include_tasks/include_role marks only the include: its file's tasks need `apply`.
    for path in sorted((ROOT / "roles").glob("*/tasks/main.yml")) + [SITE]:
        text = yaml.safe_load(path.read_text())
        tasks = [t for play in text for t in play.get("tasks", []) + play.get("pre_tasks", [])] \
            if path == SITE else text
        for task in tasks:
            if (task.get("ansible.builtin.include_tasks") or {}) == {"file": "converge.yml"}:
                # Tagged always, no apply: each phase in converge.yml carries the role's tags.
                phases = yaml.safe_load(path.with_name("converge.yml").read_text())
                assert all(path.parent.parent.name in (p.get("tags") or []) for p in phases), path
                continue
            for key in ("ansible.builtin.include_tasks", "ansible.builtin.include_role"):
                if key in task and "tags" in task:
                    applied = (task[key] or {}).get("apply", {}) if isinstance(task[key], dict) else {}
                    assert set(applied.get("tags", [])) == set(task["tags"]), (path.name, task["name"])


def test_the_documented_table_names_every_tag(everything):
    # Every tag of site.yml and of the included converge.yml files (listed() puts them in).
    tags = set().union(*(task.tags for task in everything))
    tags.discard("always")
    assert len(tags) > 20
    table = (ROOT / "docs" / "configuring.md").read_text().split("## Tags", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)`", table, re.M))
    assert tags == documented, (sorted(tags - documented), sorted(documented - tags))
