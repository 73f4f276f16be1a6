"""Bad inputs for every role's validate entry point (and site.yml's first play), run on the
controller with ansible-playbook: each must be refused in the validate entry point, before any
change, with a message that names the variable, and without printing any secret.

One ansible-playbook run per role: every case is a host of its own in a generated inventory
(local connection, check mode), so that one run measures many cases. The JSON callback gives
each host's result; the raw output is searched for the secrets.
"""
import json
import sys
from pathlib import Path

import pytest
import yaml

from bad_inputs.recorder import record
from support.ansible_cli import ansible_playbook

PLAYBOOK = Path(__file__).resolve().parent / "files" / "validate_only.yml"

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK05CmPYQtL8EQFfIEkFl8WpPjSAyElLclJ+gXT0Ugg8 test"
PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
           "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
           "QyNTUxOQAAACBsecretbodysecretbodysecretbodysecretbodysecretbodyAAAA==\n"
           "-----END OPENSSH PRIVATE KEY-----\n")
SECRETS = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "secretbodysecretbody",
           "pw-ssh-login-9f3a", "tok-en-0b7e-not-real", "smtp-pw-51c0", "ab12" * 32, "short-pw-1",
           "s3-keyid-4d2a-not-real", "s3-secret-8e5f-not-real"]
CASE_FILE = Path(__file__).resolve().parent / "files" / "bad_inputs_roles.yml"


def load_cases(path=CASE_FILE):
    """The case file as (baseline per role, {case: (role, variable named, values)})."""
    data = yaml.safe_load(path.read_text())

    def values_of(values):
        values = dict(values)
        preset = values.pop("with", None)
        return dict(data["presets"][preset], **values) if preset else values

    cases = {}
    for role, role_cases in data["cases"].items():
        for case, entry in role_cases.items():
            if isinstance(entry, dict):  # {variable: bad value}: the message names it
                named = [key for key in entry if key != "with"]
                assert len(named) == 1, "%s: name the variable: [variable, {values}]" % case
                entry = [named[0], entry]
            variable, values = entry
            cases[case] = (role, variable, values_of(values))
    return data["baseline"], cases


BASE, CASES = load_cases()
ROLES = sorted(BASE)


def private_key_file(tmp):
    path = Path(tmp) / "id_ed25519"
    path.write_text(PRIVATE)
    return str(path)


def files(tmp):
    tmp = Path(tmp)
    (tmp / "empty.pub").write_text("")
    (tmp / "comments.pub").write_text("# my key\n\n# nothing else\n")
    (tmp / "garbage.pub").write_text("this is not a key\n")
    return tmp


def host_name(case):
    return "case_" + "".join(c if c.isalnum() else "_" for c in case)


def fill(value, tmp, private):
    """The case file's placeholders replaced (see its header)."""
    if isinstance(value, str):
        for placeholder, text in (("{tmp}", str(tmp)), ("{private}", private),
                                  ("{private_key_text}", PRIVATE), ("{key}", KEY),
                                  ("{key_blob}", KEY.split()[1]), ("{secret_hex}", "ab12" * 32)):
            value = value.replace(placeholder, text)
        return value
    if isinstance(value, list):
        return [fill(v, tmp, private) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, tmp, private) for k, v in value.items()}
    return value


def host_vars(role, values, tmp, private):
    """A case's host: the role's baseline with the case's values, run locally unless it says."""
    values = fill(dict(BASE[role], **values), tmp, private)
    values.pop("HOME", None)  # the case's HOME is the run's (see outcomes)
    return dict(values, case_role=role, ansible_connection=values.get("ansible_connection", "local"),
                ansible_python_interpreter=sys.executable)


def task_results(stdout):
    """(host, task result, item) for every item of every task in the JSON callback's output;
    a result without loop items is its own item."""
    for play in json.loads(stdout)["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                for item in result.get("results") or [result]:
                    yield host, result, item


def run_validate(hosts, inventory, home, *args, env=None, timeout=600):
    """validate_only.yml in check mode over *hosts* (written to *inventory*): the process.

    Written as YAML, as a user's inventory is: a float NaN or infinity stays one (.nan, .inf),
    where JSON's NaN and Infinity would reach Ansible as text."""
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return ansible_playbook(PLAYBOOK, "--check", *args, inventory=inventory, timeout=timeout,
                            env=dict({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
                                      "HOME": str(home)}, **(env or {})))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Run every role's cases (one ansible-playbook run per role) and the valid baseline of
    every role (one run); return per-host facts."""
    tmp = files(tmp_path_factory.mktemp("bad-inputs"))
    private = private_key_file(tmp)
    runs = {role: {host_name(case): host_vars(role, values, tmp, private)
                   for case, (case_role, _var, values) in CASES.items() if case_role == role}
            for role in ROLES}
    # The valid baseline of every role must pass: the checks refuse bad values only.
    runs["accepted"] = {"accepted_" + role: host_vars(role, {}, tmp, private) for role in ROLES}
    results = {}
    for run, hosts in runs.items():
        proc = run_validate(hosts, tmp / ("inventory-%s.yml" % run), tmp, "--forks", "10",
                            env={"SSH_AUTH_SOCK": None}, timeout=900)
        facts = {host: {"failed": False, "msgs": [], "accepted": False, "changed": False} for host in hosts}
        for host, result, item in task_results(proc.stdout):
            if host not in facts:
                continue
            facts[host]["changed"] |= bool(result.get("changed"))
            if item.get("failed"):
                facts[host]["failed"] = True
                facts[host]["msgs"].append(str(item.get("msg", "")))
            if result.get("msg") == "VALIDATE-ACCEPTED":
                facts[host]["accepted"] = True
        secret_printed = any(secret in proc.output for secret in SECRETS)
        for host, host_facts in facts.items():
            results[host] = dict(host_facts, secret_printed=secret_printed, raw_tail=proc.output[-3000:])
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_refused_in_validate_with_the_variable_named(outcomes, case):
    _role, variable, _overrides = CASES[case]
    facts = outcomes[host_name(case)]
    names = any(variable in msg for msg in facts["msgs"])
    record("roles", case, facts["failed"] and not facts["accepted"], facts["changed"], names,
           facts["secret_printed"])
    assert facts["failed"] and not facts["accepted"], facts
    assert not facts["changed"], facts
    assert names, facts["msgs"]
    assert not facts["secret_printed"]


@pytest.mark.parametrize("role", ROLES)
def test_the_valid_baseline_is_accepted(outcomes, role):
    facts = outcomes["accepted_" + role]
    assert facts["accepted"] and not facts["failed"], facts


def test_deprecated_admin_names_are_still_read_and_warned_about(tmp_path):
    """mastodon_stack_admin_* (the names before mastodon_stack_owner_*) still drive the checks
    for one release, with a deprecation warning naming the new names."""
    stack = {"mastodon_stack_domain": "social.example.org", "case_role": "mastodon_stack",
             "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {"alias_good": dict(stack, mastodon_stack_admin_email="owner@example.org",
                                mastodon_stack_admin_username="me"),
             "alias_bad": dict(stack, mastodon_stack_admin_email="owner.example.org")}
    proc = run_validate(hosts, tmp_path / "inventory-alias.yml", tmp_path)
    msgs = {host: [] for host in hosts}
    for host, _result, item in task_results(proc.stdout):
        msgs[host].append((bool(item.get("failed")), str(item.get("msg", ""))))
    good = msgs["alias_good"]
    assert (False, "VALIDATE-ACCEPTED") in good, good
    assert any("DEPRECATED: mastodon_stack_admin_email, mastodon_stack_admin_username will be removed" in m
               and "mastodon_stack_owner_email, mastodon_stack_owner_username" in m for _f, m in good), good
    bad = msgs["alias_bad"]
    assert any(failed and "mastodon_stack_owner_email ('owner.example.org')" in m for failed, m in bad), bad
    assert (False, "VALIDATE-ACCEPTED") not in bad, bad


def test_short_retention_is_kept_only_with_the_override_and_a_warning(tmp_path):
    """A media cache retention below Mastodon's advice of 14 days passes only with
    mastodon_stack_retention_allow_short, and then with a warning naming the variable; the
    defaults (media 14, content cache and statuses timer off) pass without one."""
    stack = {"mastodon_stack_domain": "social.example.org", "mastodon_stack_owner_email": "owner@example.org",
             "case_role": "mastodon_stack", "ansible_connection": "local",
             "ansible_python_interpreter": sys.executable}
    hosts = {"short_allowed": dict(stack, mastodon_stack_media_cache_retention_days=7,
                                   mastodon_stack_retention_allow_short=True),
             "defaults": dict(stack)}
    proc = run_validate(hosts, tmp_path / "inventory-retention.yml", tmp_path)
    msgs = {host: [] for host in hosts}
    for host, _result, item in task_results(proc.stdout):
        msgs[host].append((bool(item.get("failed")), str(item.get("msg", ""))))
    allowed = msgs["short_allowed"]
    assert (False, "VALIDATE-ACCEPTED") in allowed, allowed
    assert any("WARNING: mastodon_stack_media_cache_retention_days is below 14 days" in m
               for _f, m in allowed), allowed
    defaults = msgs["defaults"]
    assert (False, "VALIDATE-ACCEPTED") in defaults, defaults
    assert not [m for _f, m in defaults if "WARNING" in m], defaults
