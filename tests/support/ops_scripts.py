"""mastodon_ops's Python programs (roles/mastodon_ops/files: mastodon-flood-guard and
mastodon-status have no .py suffix, as installed) loaded as modules for the unit tests."""

import importlib.machinery
import importlib.util
import os

FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles", "mastodon_ops", "files")
GUARD = os.path.normpath(os.path.join(FILES, "mastodon-flood-guard"))
STATUS = os.path.normpath(os.path.join(FILES, "mastodon-status"))


def load_script(name, path):
    """The program at *path* as a fresh module called *name* (each test file its own copy)."""
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
