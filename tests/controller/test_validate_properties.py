"""Property-based tests of the roles' validate entry points (issue 25), run with ansible-playbook.

Hypothesis draws a batch of (role, variable, value) from the value classes (ports and their
collisions, text with line breaks, numbers, yes/no values, paths in and out of system folders,
environments, calendars); each becomes a host of one generated inventory, and one
ansible-playbook run in check mode (local connection) checks them all, so the run stays
bounded (two runs of 40 hosts, about 45 s). The invariant for every host: refused in the validate entry point
before any change with the variable named, or accepted and the value is one that works, as an
oracle written independently of the checks says (a port 1-65535 no other service binds, one
line of text, a folder no role may own never owned, a calendar systemd-analyze accepts).

Values that hold "{" or "%" are left out: an inventory value is a template, so those are
template syntax, not values. Float NaN and infinities are drawn too (the inventory is written as
YAML, so they reach Ansible as floats, not as JSON's NaN/Infinity text): the number options have
type raw in the argument specs, so the roles' own first check names them (ansible-core's int
check would stop on .inf with "cannot convert Infinity to integer" and no name).
"""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support.ansible_cli import ansible_playbook

PLAYBOOK = Path(__file__).resolve().parent / "files" / "validate_only.yml"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK05CmPYQtL8EQFfIEkFl8WpPjSAyElLclJ+gXT0Ugg8 test"
BASE = {
    "base_os": {"base_os_ssh_authorized_keys": [KEY], "base_os_admin_user": "admin"},
    "selfsigned_tls": {"selfsigned_tls_domain": "social.example.org"},
    "mastodon_stack": {"mastodon_stack_domain": "social.example.org",
                       "mastodon_stack_owner_email": "owner@example.org"},
    "cloudflare_tunnel": {"cloudflare_tunnel_hostname": "social.example.org",
                          "cloudflare_tunnel_account_id": "0123456789abcdef0123456789abcdef",
                          "cloudflare_tunnel_api_token": "tok-en-0b7e-not-real"},
    "mastodon_ops": {},
}
# Ports the roles bind by default, per variable: a port given to the variable must differ.
TAKEN = {
    "base_os_ssh_port": {443, 3000, 4000, 6379, 20241},
    "mastodon_stack_web_port": {22, 443, 4000, 6379, 5432, 20241},
    "cloudflare_tunnel_metrics_port": {22, 443, 3000, 4000, 6379},
}
NEVER_OWNED = {"/", "/etc", "/var", "/usr", "/root", "/home", "/bin", "/sbin", "/lib", "/boot",
               "/dev", "/proc", "/sys", "/run", "/tmp", "/opt", "/srv", "/var/lib", "/var/log",
               "/var/backups", "/usr/local", "/etc/ssl", "/etc/systemd", "/var/cache"}

TRICKY = st.sampled_from(["\n", "\r", "\t", "\x0b", "\x1c", "\x85", "\u2028", " ", "$", "'", '"',
                          "\\", "é"])
TEXT = st.lists(st.one_of(st.characters(blacklist_characters="{}%#", blacklist_categories=("Cs",)),
                          TRICKY), max_size=12).map("".join)
PORTS = st.one_of(st.integers(-5, 70000), st.sampled_from(
    [22, 443, 3000, 4000, 5432, 6379, 20241, True, False, "443", "22\n", "8080", "yes", 1.5, 80.0,
     float("nan"), float("inf"), float("-inf"), "inf"]))
PART = st.sampled_from(["etc", "var", "usr", "root", "home", "admin", "backups", "mastodon", "log",
                        "lib", "..", ".", "", "a b", "x\n", "secrets.env", "proc", "ssl"])
PATHS = st.one_of(st.lists(PART, max_size=4).map(lambda parts: "/" + "/".join(parts)),
                  st.sampled_from(sorted(NEVER_OWNED)), TEXT)
NUMBERS = st.one_of(st.integers(-10, 400), st.booleans(), st.sampled_from(["7", "7\n", "nan", "x", 2.5, 3.0]),
                    st.sampled_from([float("inf"), float("-inf"), float("nan"), float("1.0e+999")]))
CALENDARS = st.one_of(st.sampled_from(["daily", "*-*-* 03:30:00", "*:0/5", "Sun *-*-* 05:10:00",
                                       "*-*-* 25:00:00", "every day", "*-*-* 03:30:00\n", "Mon..Fri 9:00",
                                       "", "hourly", "*-02-30 00:00:00"]),
                      st.text("0123456789*:/-., ~SunMofd", max_size=14))
ENVS = st.dictionaries(st.one_of(st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True),
                                 st.sampled_from(["A B", "1X", "TUNNEL_TOKEN", "MY_SECRET"])),
                       st.one_of(TEXT, st.integers(0, 9)), max_size=3)

# (role, variable, class, values)
SUBJECTS = [
    ("base_os", "base_os_ssh_port", "port", PORTS),
    ("base_os", "base_os_admin_user", "user", TEXT),
    ("base_os", "base_os_swappiness", "number:0:200", NUMBERS),
    ("mastodon_stack", "mastodon_stack_web_port", "port", PORTS),
    ("mastodon_stack", "mastodon_stack_secrets_file", "owned_file", PATHS),
    ("mastodon_stack", "mastodon_stack_live_dir", "owned_dir", PATHS),
    ("mastodon_stack", "mastodon_stack_env_extra", "env", ENVS),
    ("mastodon_stack", "mastodon_stack_media_remove_on_calendar", "calendar", CALENDARS),
    ("cloudflare_tunnel", "cloudflare_tunnel_metrics_port", "port", PORTS),
    ("cloudflare_tunnel", "cloudflare_tunnel_token_file", "token_file", PATHS),
    ("cloudflare_tunnel", "cloudflare_tunnel_environment", "unit_env", ENVS),
    ("mastodon_ops", "mastodon_ops_backup_dir", "owned_dir", PATHS),
    ("mastodon_ops", "mastodon_ops_backup_keep", "number:1:10000", NUMBERS),
    ("mastodon_ops", "mastodon_ops_backup_on_calendar", "calendar", CALENDARS),
    ("selfsigned_tls", "selfsigned_tls_dir", "owned_dir", PATHS),
    ("selfsigned_tls", "selfsigned_tls_valid_days", "number:31:36500", NUMBERS),  # > renew_before_days (30)
]


def one_line(text):
    return isinstance(text, str) and text != "" and (text + "\n").splitlines() == [text]


def plain_path(path):
    return (isinstance(path, str) and path.startswith("/") and os.path.normpath(path) == path
            and "//" not in path
            and path != "/" and one_line(path) and not any(c.isspace() for c in path))


def owned_ok(folder):
    parts = folder.split("/")[1:]
    return folder not in NEVER_OWNED and not (parts[0] == "home" and len(parts) == 2) \
        and parts[0] not in ("proc", "sys", "dev")


def whole_number(value, low, high):
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        if value != value.strip() or not value.strip().lstrip("-").isdigit():
            return False
        value = int(value)
    if isinstance(value, float):
        if math.isnan(value) or not value.is_integer():
            return False
        value = int(value)
    return low <= value <= high


def systemd_accepts(calendar):
    if not shutil.which("systemd-analyze"):
        return True
    return subprocess.run(["systemd-analyze", "calendar", "--", calendar], capture_output=True,
                          check=False, timeout=10).returncode == 0


def works(kind, variable, value):
    """The oracle: would this value work where the role puts it?"""
    if kind == "port":
        return whole_number(value, 1, 65535) and int(float(value)) not in TAKEN[variable]
    if kind == "user":
        return one_line(value) and value != "root" and len(value) <= 32 and value[0] in "abcdefghijklmnopqrstuvwxyz_" \
            and set(value) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-")
    if kind.startswith("number:"):
        _n, low, high = kind.split(":")
        return whole_number(value, int(low), int(high))
    if kind == "owned_dir":
        return plain_path(value) and owned_ok(value)
    if kind in ("owned_file", "token_file"):
        ok = plain_path(value) and owned_ok(os.path.dirname(value))
        if kind == "token_file":
            ok = ok and value.split("/")[1] not in ("root", "home")
        return ok
    if kind in ("env", "unit_env"):
        lines = "".join('Environment="%s=%s"\n' % item for item in value.items())
        ok = len(lines.splitlines()) == len(value) and all(
            name.replace("_", "A").isalnum() and not name[0].isdigit() and name.isascii() for name in value)
        if kind == "unit_env":
            ok = ok and not any(word in name for name in value for word in ("TOKEN", "SECRET"))
        return ok
    if kind == "calendar":
        return one_line(value) and systemd_accepts(value)
    raise AssertionError(kind)


def run_batch(tmp, batch):
    hosts = {}
    for index, (subject, value) in enumerate(batch):
        role, variable, _kind, _values = SUBJECTS[subject]
        hosts["h%02d" % index] = dict(BASE[role], case_role=role, ansible_connection="local",
                                      ansible_python_interpreter=sys.executable, **{variable: value})
    inventory = Path(tmp) / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    proc = ansible_playbook(PLAYBOOK, "--check", "--forks", "10", inventory=inventory, timeout=900,
                            env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "HOME": str(tmp),
                                 "SSH_AUTH_SOCK": None})
    facts = {name: {"accepted": False, "failed": False, "changed": False, "msgs": []} for name in hosts}
    for play in json.loads(proc.stdout)["plays"]:
        for task in play["tasks"]:
            for name, result in task["hosts"].items():
                facts[name]["changed"] |= bool(result.get("changed"))
                for item in result.get("results") or [result]:
                    if item.get("failed"):
                        facts[name]["failed"] = True
                        facts[name]["msgs"].append(str(item.get("msg", "")))
                if result.get("msg") == "VALIDATE-ACCEPTED":
                    facts[name]["accepted"] = True
    return hosts, facts


def _value_for(index):
    return st.tuples(st.just(index), SUBJECTS[index][3])


# Every subject once (in a drawn order), then more drawn at random: 40 hosts per run.
BATCH = st.tuples(
    st.permutations(range(len(SUBJECTS))).flatmap(lambda order: st.tuples(*[_value_for(i) for i in order])),
    st.lists(st.integers(0, len(SUBJECTS) - 1).flatmap(_value_for), min_size=24, max_size=24),
).map(lambda parts: list(parts[0]) + parts[1])


# Two runs: Hypothesis's first example is its simplest one, the second is drawn at random.
@settings(max_examples=2, deadline=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(BATCH)
def test_every_generated_value_is_refused_with_its_name_or_works(tmp_path_factory, batch):
    tmp = tmp_path_factory.mktemp("validate-properties")
    hosts, facts = run_batch(tmp, batch)
    wrong = []
    for index, (subject, value) in enumerate(batch):
        _role, variable, kind, _values = SUBJECTS[subject]
        host = facts["h%02d" % index]
        good = works(kind, variable, value)
        if host["accepted"] and not host["failed"]:
            if not good:
                wrong.append(("accepted but would not work", variable, value))
        elif not any(variable in msg for msg in host["msgs"]):
            wrong.append(("refused without naming the variable", variable, value, host["msgs"]))
        elif good:
            wrong.append(("refused a value that works", variable, value, host["msgs"]))
        if host["changed"]:
            wrong.append(("changed something", variable, value))
    accepted = sum(1 for host in facts.values() if host["accepted"] and not host["failed"])
    print("validate properties: %d inputs, %d refused, %d accepted, %d wrong"
          % (len(batch), len(batch) - accepted, accepted, len(wrong)))
    assert not wrong, wrong
