"""Run ansible-playbook and ansible from tests: one way, for every suite.

Every run gets this clone's collection (``.build/collections``) and roles, no colour codes in
its output, no retry files and no host key prompt; ``.output`` on the result is stdout and
stderr together (ansible-core 2.19 prints task errors on stderr), as a person reads them.

In a Molecule verifier the inventory is the folder Molecule passes to ansible-playbook
(``$MOLECULE_EPHEMERAL_DIRECTORY/inventory``: its generated hosts file, the scenario's
``hosts`` and ``group_vars``), so that a run started by a test sees exactly the values and
groups the converge saw.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def ansible_env(env=None):
    """os.environ plus the settings every run from a test needs, then *env* on top (a value
    of None there removes the variable).

    ANSIBLE_LOG_PATH is dropped (unless *env* sets it): runs started by tests stay out of the
    scenario's ansible.log, which speaks of the runs Molecule made.
    """
    run_env = dict(os.environ)
    run_env.pop("ANSIBLE_LOG_PATH", None)
    run_env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build" / "collections"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    })
    for name, value in (env or {}).items():
        if value is None:
            run_env.pop(name, None)
        else:
            run_env[name] = value
    return run_env


def molecule_inventory():
    """The inventory folder of the running Molecule scenario."""
    return str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory")


def _run(cmd, env, timeout, cwd):
    result = subprocess.run([str(c) for c in cmd], env=ansible_env(env), capture_output=True,
                            text=True, timeout=timeout, cwd=str(cwd or ROOT),
                            stdin=subprocess.DEVNULL, check=False)
    result.stdout = _COLOUR.sub("", result.stdout)
    result.stderr = _COLOUR.sub("", result.stderr)
    result.output = result.stdout + result.stderr
    return result


def ansible_playbook(playbook, *args, inventory=None, env=None, timeout=1200, cwd=None):
    """Run ansible-playbook *playbook* (a path) with *args*; return the CompletedProcess.

    *inventory*: a path or host list; by default the running Molecule scenario's inventory.
    """
    inventory = inventory or molecule_inventory()
    return _run([BIN / "ansible-playbook", "-i", inventory, *args, playbook], env, timeout, cwd)


def ansible_module(module, args, *, host="localhost", env=None, timeout=300, cwd=None):
    """Run one module ad hoc (the collection's Cloudflare modules run on the controller)."""
    return _run([BIN / "ansible", host, "-m", module, "-a", json.dumps(args)], env, timeout, cwd)
