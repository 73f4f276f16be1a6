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


FIRST_RELEASE = "0.1.0"
NOT_IN_A_FIRST_RELEASE = ("breaking_changes", "deprecated_features", "removed_features")


def test_the_first_release_is_cut_with_a_summary_and_nothing_breaking():
    # Cut with antsibull-changelog (docs/development.md, "Releasing"): changelogs/changelog.yaml
    # and CHANGELOG.rst. A first release breaks, deprecates and removes nothing: there was
    # nothing released before it.
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))["releases"]
    assert FIRST_RELEASE in releases, sorted(releases)
    changes = releases[FIRST_RELEASE]["changes"]
    assert len(changes.get("release_summary", "")) > 100
    assert changes.get("minor_changes")
    for section in NOT_IN_A_FIRST_RELEASE:
        assert section not in changes, f"{section} in the first release: {changes[section]}"
    text = (ROOT / "CHANGELOG.rst").read_text(encoding="utf-8")
    assert f"v{FIRST_RELEASE}" in text and "Release Summary" in text


def test_fragments_still_to_join_the_first_release_break_nothing():
    # While galaxy.yml says 0.1.0, the release is cut again after each merge (the fragments
    # waiting in changelogs/fragments join it): they must fit a first release too.
    if str(GALAXY["version"]) != FIRST_RELEASE:
        pytest.skip("galaxy.yml is past the first release")  # pragma: no cover
    for fragment in sorted((ROOT / "changelogs" / "fragments").glob("*.y*ml")):
        sections = yaml.safe_load(fragment.read_text(encoding="utf-8")) or {}
        assert not set(sections) & set(NOT_IN_A_FIRST_RELEASE), fragment.name


def test_the_changelog_lints():
    result = subprocess.run([str(BIN / "antsibull-changelog"), "lint"], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
