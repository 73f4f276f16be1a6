"""The collection as a user gets it: built with ansible-galaxy, installed, addressed by FQCN."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args, env=None, cwd=ROOT):
    result = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run("ansible-galaxy", "collection", "build", "--force", "--output-path", str(out), ".")
    found = list(out.glob("selfhost-mastodon-*.tar.gz"))
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    path = tmp_path_factory.mktemp("collections")
    # --no-deps: the dependencies come from the `ansible` package here (Galaxy is unreachable).
    # --force: the working copy is visible as selfhost.mastodon too (.build/collections), and
    # ansible-galaxy would otherwise call the collection installed and skip it.
    run("ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", str(path), str(tarball))
    # Only the installed copy, plus the collections bundled with the `ansible` package.
    import ansible_collections  # pylint: disable=import-outside-toplevel
    bundled = Path(ansible_collections.__path__[0]).parent
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=f"{path}{os.pathsep}{bundled}")
    return path, env


def test_tarball_leaves_out_development_files(tarball):
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "galaxy.yml" not in names  # replaced by MANIFEST.json
    assert "MANIFEST.json" in names
    for unwanted in (".venv", ".build", "molecule", ".ci", "tests/platform"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in names), unwanted
    assert any(n.startswith("roles/") for n in names)
    assert any(n.startswith("plugins/modules/") for n in names)


def test_manifest_declares_dependencies(tarball):
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    deps = manifest["collection_info"]["dependencies"]
    for name in ("ansible.posix", "community.crypto", "community.general", "community.postgresql"):
        assert name in deps
    assert manifest["collection_info"]["license"] == ["GPL-3.0-or-later"]


def test_installed_collection_is_listed(installed):
    path, env = installed
    out = run("ansible-galaxy", "collection", "list", "selfhost.mastodon", "-p", str(path), env=env)
    assert "selfhost.mastodon" in out


def test_modules_are_documented_by_fqcn(installed):
    env = installed[1]
    listed = run("ansible-doc", "-l", "selfhost.mastodon", "-j", env=env)
    modules = json.loads(listed)
    expected = {"selfhost.mastodon.cloudflare_tunnel", "selfhost.mastodon.cloudflare_tunnel_route",
                "selfhost.mastodon.cloudflare_tunnel_info"}
    missing = expected - set(modules)
    assert not missing, f"not installed or not documented: {sorted(missing)}"
    for name in sorted(expected):
        doc = json.loads(run("ansible-doc", "-j", name, env=env))
        assert doc[name]["doc"]["short_description"]


def test_roles_are_addressable_by_fqcn(installed):
    env = installed[1]
    roles = json.loads(run("ansible-doc", "-t", "role", "-l", "selfhost.mastodon", "-j", env=env))
    for role in ("base_os", "selfsigned_tls", "mastodon_stack"):
        assert f"selfhost.mastodon.{role}" in roles, sorted(roles)
