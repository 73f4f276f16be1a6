"""The lock-out guard of base_os covers key logins (issue 25).

With base_os_ssh_authorized_keys_exclusive true, every key of the admin account that is not
in base_os_ssh_authorized_keys is removed. The guard must refuse, before any change, when none
of the listed keys is one the controller logs in with, whichever way it logs in: the key file
of ansible_ssh_private_key_file, a key in ssh-agent, or ssh's default key (~/.ssh/id_ed25519).

Each case is a host that logs in over ssh to 127.0.0.1 port 9 (nothing listens there): a host
the guard refuses fails in the guard, with the variable named; a host the guard lets through
reaches the first task that uses the connection and is unreachable there. Real key pairs are
made with ssh-keygen in a scratch folder, and a real ssh-agent is started for the agent cases.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.ansible_cli import ansible_playbook

PLAYBOOK = Path(__file__).resolve().parent / "files" / "validate_only.yml"
GUARD_VAR = "base_os_ssh_authorized_keys_exclusive"


def keypair(folder, name):
    path = Path(folder) / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True, capture_output=True)
    return path, path.with_suffix(".pub").read_text().strip()


def host(keys, exclusive=True, **extra):
    return dict({"case_role": "base_os", "base_os_admin_user": "admin",
                 "base_os_ssh_authorized_keys": keys,
                 "base_os_ssh_authorized_keys_exclusive": exclusive,
                 "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9,
                 "ansible_user": "admin", "ansible_python_interpreter": sys.executable,
                 "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes"}, **extra)


def outcomes(tmp, name, hosts, env):
    """{host: 'refused' | 'passed' | 'accepted'} and the failure messages."""
    inventory = Path(tmp) / ("inventory-%s.json" % name)
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    proc = ansible_playbook(PLAYBOOK, "--check", "--forks", "10", inventory=inventory,
                            timeout=600, env=dict({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
                                                  **env))
    seen = {name_: {"state": "accepted", "msgs": []} for name_ in hosts}
    for play in json.loads(proc.stdout)["plays"]:
        for task in play["tasks"]:
            for host_name, result in task["hosts"].items():
                if result.get("unreachable"):
                    seen[host_name]["state"] = "passed"
                elif result.get("failed"):
                    seen[host_name]["state"] = "refused"
                    seen[host_name]["msgs"].append(str(result.get("msg", "")))
                if result.get("changed"):
                    seen[host_name]["changed"] = True
    return seen


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lockout")
    login, login_pub = keypair(tmp, "login")
    _other, other_pub = keypair(tmp, "other")
    return tmp, login, login_pub, other_pub


def check(seen, refused, passed):
    for name in refused:
        assert seen[name]["state"] == "refused", (name, seen[name])
        assert any(GUARD_VAR in msg for msg in seen[name]["msgs"]), (name, seen[name])
        assert not seen[name].get("changed"), (name, seen[name])
    for name in passed:
        assert seen[name]["state"] == "passed", (name, seen[name])


def test_key_file_login(keys):
    tmp, login, login_pub, other_pub = keys
    empty_home = tmp / "home-empty"
    empty_home.mkdir(exist_ok=True)
    hosts = {
        # The rotation done in the wrong order: the new key only, the login key gone.
        "file_missing": host([other_pub], ansible_ssh_private_key_file=str(login)),
        "file_present": host([other_pub, login_pub], ansible_ssh_private_key_file=str(login)),
        # Not exclusive: the other keys stay, nothing to refuse.
        "file_not_exclusive": host([other_pub], exclusive=False, ansible_ssh_private_key_file=str(login)),
        # The play logs in as another account: the admin's keys are not its login.
        "file_other_user": host([other_pub], ansible_user="deploy", ansible_ssh_private_key_file=str(login)),
        # No key the controller holds at all (no key file, no agent, no default key).
        "nothing_offered": host([other_pub]),
    }
    seen = outcomes(tmp, "file", hosts, {"HOME": str(empty_home), "SSH_AUTH_SOCK": None})
    check(seen, refused=["file_missing", "nothing_offered"],
          passed=["file_present", "file_not_exclusive", "file_other_user"])


def test_default_key_login(keys):
    tmp, login, login_pub, other_pub = keys
    home = tmp / "home-default"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".pub"):
        (home / ".ssh" / ("id_ed25519" + suffix)).write_bytes(Path(str(login) + suffix).read_bytes())
    os.chmod(home / ".ssh" / "id_ed25519", 0o600)
    hosts = {"default_missing": host([other_pub]), "default_present": host([login_pub])}
    seen = outcomes(tmp, "default", hosts, {"HOME": str(home), "SSH_AUTH_SOCK": None})
    check(seen, refused=["default_missing"], passed=["default_present"])


def test_agent_login(keys):
    tmp, login, login_pub, other_pub = keys
    empty_home = tmp / "home-agent"
    empty_home.mkdir(exist_ok=True)
    sock = tmp / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _attempt in range(50):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.1"], check=True)
        subprocess.run(["ssh-add", str(login)], env=dict(os.environ, SSH_AUTH_SOCK=str(sock)),
                       check=True, capture_output=True)
        hosts = {"agent_missing": host([other_pub]), "agent_present": host([login_pub])}
        seen = outcomes(tmp, "agent", hosts, {"HOME": str(empty_home), "SSH_AUTH_SOCK": str(sock)})
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
    check(seen, refused=["agent_missing"], passed=["agent_present"])
