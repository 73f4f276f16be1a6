"""No secret through ``-vvv --diff`` (issue 25): a static check of every task of every role.

What it checks, task by task (tasks, handlers, blocks):
- a task that writes a file holding a secret (redis.conf, which holds requirepass; the secrets
  file; .env.production; .pgpass; PgBouncer's user list; the tunnel token; the owner's password
  file) runs with ``no_log: true`` and ``diff: false``: a diff of such a file prints the secret,
  even when the task's own line is not one (the audit's redis.conf finding);
- a task whose arguments hold secret material (a token, a password, the secrets file's
  content) runs with ``no_log: true``, unless the module option that carries it is ``no_log``
  in the module's own argument spec (listed below with the reason).

This is the cheap check, not a run: the run-based one (grep every secret of a converged laptop
out of a ``site.yml -vvv --diff`` run) needs the site scenario and is left to its verifier.
"""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("ansible.builtin.template", "ansible.builtin.lineinfile", "ansible.builtin.copy",
           "ansible.builtin.blockinfile", "ansible.builtin.replace", "selfhost.mastodon.managed_files")
SECRET_FILES = re.compile(r"redis\.conf|secrets_file|\.env\.production|\.pgpass|userlist\.txt|"
                          r"token_file|password_file")
SECRET_REFS = re.compile(r"api_token|smtp_password|es_password|secret_access_key|access_key_id|"
                         r"REDIS_PASSWORD|__mastodon_stack_secrets_raw|__mastodon_stack_redis_secrets|"
                         r"b64decode|mastodon_stack_secrets\b")
# Tasks whose secret travels in a module option that is no_log in the module's argument spec,
# or that only name where a secret is read on the host (the value never is an argument).
ALLOWED = {
    ("mastodon_ops/tasks/status.yml", "Read the tunnel from Cloudflare's API"):
        "api_token is no_log in cloudflare_argument_spec()",
    ("mastodon_ops/tasks/teardown.yml", "Empty Redis"):
        "the script reads REDIS_PASSWORD from the secrets file on the host; only the file name is an argument",
    ("mastodon_stack/tasks/cluster_secrets.yml",
     "Keep the site's secrets on the first app host, with the database password for the LAN"):
        "mastodon_secrets' supplied option is no_log",
    ("mastodon_stack/tasks/config.yml", "Keep Mastodon's secrets, generating only the missing ones (never regenerated)"):
        "mastodon_secrets' supplied option is no_log",
}


def tasks_of(items, inherited=None):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        no_log = task.get("no_log", inherited)
        diff = task.get("diff")
        if any(key in task for key in ("block", "rescue", "always")):
            for key in ("block", "rescue", "always"):
                for inner, inner_no_log, inner_diff in tasks_of(task.get(key), no_log):
                    yield inner, inner_no_log, inner_diff if inner_diff is not None else diff
            continue
        yield task, no_log, diff


def all_tasks():
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")) + sorted(ROOT.glob("roles/*/handlers/*.yml")):
        for task, no_log, diff in tasks_of(yaml.safe_load(path.read_text())):
            yield str(path.relative_to(ROOT / "roles")), task, no_log, diff


TASKS = list(all_tasks())


def module_args(task):
    return {key: value for key, value in task.items() if "." in key}


def test_there_are_tasks_to_check():
    assert len(TASKS) > 200


@pytest.mark.parametrize("where,task,no_log,diff", [
    t for t in TASKS if any(m in t[1] for m in WRITERS)
    and SECRET_FILES.search(json.dumps(module_args(t[1])))
], ids=lambda value: value if isinstance(value, str) else "")
def test_a_file_holding_a_secret_is_written_without_log_and_diff(where, task, no_log, diff):
    assert no_log is True and diff is False, (where, task.get("name"), no_log, diff)


def test_every_secret_in_task_arguments_is_hidden():
    leaks = []
    for where, task, no_log, _diff in TASKS:
        if "ansible.builtin.assert" in task or no_log:
            continue
        text = json.dumps(module_args(task)) + json.dumps(task.get("vars", {}))
        if SECRET_REFS.search(text) and (where, task.get("name")) not in ALLOWED:
            leaks.append((where, task.get("name"), sorted(set(SECRET_REFS.findall(text)))))
    assert not leaks, leaks


def test_the_redis_conf_edits_are_all_hidden():
    """The audit's finding: site.yml -vvv --diff printed the Redis password through the diff of
    the maxmemory-policy edit of redis.conf."""
    edits = [(where, task.get("name"), no_log, diff) for where, task, no_log, diff in TASKS
             if "redis.conf" in json.dumps(module_args(task)) and "ansible.builtin.lineinfile" in task]
    assert len(edits) >= 3, edits
    assert all(no_log is True and diff is False for _w, _n, no_log, diff in edits), edits
