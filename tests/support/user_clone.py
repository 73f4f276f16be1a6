"""A user's clone for the user-path tests: a copy of this clone (its tracked and new files,
nothing ignored) with the project venv linked in as .venv, and the environment of a user's
shell before the README activates that venv. The README's commands run in the copy, so what
they write (inventories/mine, .build/demo) is the copy's own."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_clone(dest):
    """Make *dest* (removed first) a copy of this clone; return it."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def user_env(**extra):
    """os.environ without the test run's Ansible, Molecule, pytest and venv settings, and with
    PATH as a user's shell has it before `. .venv/bin/activate`; *extra* on top."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "MOLECULE_", "PYTEST", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                  if not p.startswith(str(ROOT / ".venv")))
    env["TERM"] = "dumb"
    env.update(extra)
    return env
