"""What an Ansible user checks before trusting a release: every public plugin documented, with
the version it came in; one minimum ansible-core, the one tested; a deploy-only requirements
file that agrees with the test one."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"))


def ansible_doc(*args):
    result = subprocess.run([str(BIN / "ansible-doc"), *args], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"ansible-doc {args}: {result.stderr}"
    assert "[ERROR]" not in result.stderr and "[WARNING]" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def pins(name):
    found = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line.strip())
        if match:
            found[re.sub(r"\[.*\]", "", match.group(1)).lower()] = match.group(2)
    return found


@pytest.mark.parametrize("kind", ["module", "filter", "test", "lookup"])
def test_every_plugin_is_documented_with_the_collection_version(kind):
    listed = ansible_doc("-t", kind, "-l", "selfhost.mastodon", "-j")
    assert listed, f"no {kind} plugin listed"
    undocumented = sorted(name for name, text in listed.items() if not text or text == "UNDOCUMENTED")
    assert not undocumented, f"undocumented {kind} plugins: {undocumented}"
    docs = ansible_doc("-t", kind, "-j", *sorted(listed))
    for name in sorted(listed):
        doc = docs[name]["doc"]
        assert doc.get("short_description"), name
        assert str(doc.get("version_added")) == GALAXY["version"], (
            f"{name}: version_added {doc.get('version_added')!r}, galaxy.yml {GALAXY['version']}")
        for option, spec in (doc.get("options") or {}).items():
            added = spec.get("version_added")
            assert added is None or str(added) == GALAXY["version"], f"{name} option {option}: {added}"


def test_one_minimum_ansible_core_and_it_is_the_tested_one():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    minimum = re.fullmatch(r">=(\d+\.\d+)\.0", runtime["requires_ansible"])
    assert minimum, runtime["requires_ansible"]
    tested = ".".join(pins("requirements-dev.txt")["ansible-core"].split(".")[:2])
    assert minimum.group(1) == tested, f"requires_ansible {runtime['requires_ansible']}, tested {tested}"
    for meta in sorted(ROOT.glob("roles/*/meta/main.yml")):
        info = yaml.safe_load(meta.read_text(encoding="utf-8"))["galaxy_info"]
        assert str(info["min_ansible_version"]) == tested, f"{meta}: {info['min_ansible_version']}"


def test_deploy_requirements_are_a_subset_of_the_tested_ones():
    deploy, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert "ansible-core" in deploy and "ansible" in deploy
    differing = {name: (version, dev.get(name)) for name, version in deploy.items() if dev.get(name) != version}
    assert not differing, f"requirements.txt pins that requirements-dev.txt does not test: {differing}"
    for tool in ("molecule", "ansible-lint", "pytest", "moto"):
        assert tool not in deploy, f"{tool} is a test tool, not needed to deploy"
