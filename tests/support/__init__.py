"""Helpers shared by the project's pytest suites (Molecule verifiers, tests/controller, tests/unit).

pytest.ini at the repository root puts ``tests/`` on ``sys.path`` for every pytest run from a
clone, so a test imports them as ``from support.ansible_cli import ansible_playbook``.
"""
