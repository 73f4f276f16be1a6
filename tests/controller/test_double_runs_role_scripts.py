"""The Mastodon TEST DOUBLE runs the role's own Ruby scripts: what ships is what runs.

mastodon_stack ships Ruby scripts that it (and mastodon_ops' flood guard) runs with
`bin/rails runner FILE`. The double's bin/rails (tests/mastodon_double) evaluates that file
against small stand-ins of the Mastodon models it touches (lib/double_app.rb), and must not
re-implement a script: a re-implementation would keep the tests green while the shipped script
is broken. Ruby is not installed on the controller, so this checks the source; the Molecule
scenario mastodon_stack checks on the host that the double ran the installed file (its path and
SHA-256 in the double's log).
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "tests" / "mastodon_double"
TEMPLATES = ROOT / "roles" / "mastodon_stack" / "templates"
# Everything of the double that runs Ruby for bin/rails: the script and its libraries.
DOUBLE_RUBY = [DOUBLE / "bin" / "rails"] + sorted((DOUBLE / "lib").glob("*.rb"))


def _scripts():
    """The Ruby scripts the role runs with `bin/rails runner` (the templates of its tasks)."""
    tasks = "\n".join(p.read_text() for p in (ROOT / "roles" / "mastodon_stack" / "tasks").glob("*.yml"))
    names = sorted(set(re.findall(r"bin/rails runner [^\n]*?/(\w+\.rb)", tasks)))
    assert names, "no bin/rails runner script found in roles/mastodon_stack/tasks"
    return names


def test_the_role_runs_its_two_scripts():
    # If a script is added, this list (and the stand-ins, if it touches other models) grows.
    assert _scripts() == ["mastodon_stack_relays.rb", "mastodon_stack_settings.rb"]


@pytest.mark.parametrize("path", DOUBLE_RUBY, ids=lambda p: p.name)
def test_the_double_does_not_reimplement_a_script(path):
    text = path.read_text()
    # A re-implementation recognises the script by its name or reads the scripts' inputs itself.
    for script in _scripts():
        assert script not in text, "%s names %s" % (path, script)
    assert "MASTODON_STACK_" not in text, "%s reads the role scripts' environment" % path
    for gone in ("relays_runner", "settings_runner"):
        assert gone not in text


def test_bin_rails_runner_evaluates_the_file_it_logged():
    rails = (DOUBLE / "bin" / "rails").read_text()
    branch = rails[rails.index("when 'runner'"):]
    branch = branch[:branch.index("\nelse\n")]
    # The bytes hashed for the log are the bytes evaluated.
    assert "'runner_sha256' => Digest::SHA256.hexdigest(runner_source)" in rails
    assert re.search(r"source = runner_file \? runner_source\b", branch)
    assert re.search(r"^\s*eval\(source, TOPLEVEL_BINDING, runner_file", branch, re.M)
    assert "require_relative '../lib/double_app'" in branch


def _calls(receiver, text):
    return set(re.findall(r"\b%s\.(\w+[!?]?)" % receiver, text))


def test_the_stand_ins_define_what_the_scripts_call_and_no_more():
    app = (DOUBLE / "lib" / "double_app.rb").read_text()
    relays = (TEMPLATES / "mastodon_stack_relays.rb.j2").read_text()
    settings = (TEMPLATES / "mastodon_stack_settings.rb.j2").read_text()
    relay_class = app[app.index("class Relay <"):app.index("\nend\n", app.index("class Relay <"))]
    base = app[app.index("class StandInRecord"):app.index("class Relay <")]

    def defined(name, text):
        return re.search(r"def (self\.)?%s[\s(]" % re.escape(name), text)

    class_calls = _calls("Relay", relays)
    assert class_calls == {"find_each", "find_by", "create!"}, class_calls
    for name in class_calls:
        assert defined(name, base), name
    record_calls = _calls("relay", relays)
    assert record_calls - {"nil?"} == {"idle?", "disable!", "enable!", "destroy!", "inbox_url"}, record_calls
    for name in ("disable!", "enable!"):
        assert defined(name, relay_class), name
    assert defined("destroy!", base)
    assert "STATES = %w[idle pending accepted rejected]" in relay_class  # Mastodon's enum order
    assert "stand_in_table 'relays', %w[id inbox_url state]" in relay_class
    # Setting[key] and Setting[key] = value, the only Setting calls of the settings script.
    assert set(re.findall(r"\bSetting(\W)", settings)) == {"["}
    setting_class = app[app.index("class Setting <"):]
    assert "def [](key)" in setting_class and "def []=(key, value)" in setting_class
    assert "index_with" in settings and "def index_with" in app
    # Nothing answers every call: no method_missing, no respond_to_missing? in the stand-ins.
    assert "method_missing" not in app and "respond_to_missing" not in app
