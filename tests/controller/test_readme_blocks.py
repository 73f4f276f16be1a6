"""The README and docs/ as a user reads them: every command block is either typed by a test
(marked `<!-- user-path: NAME -->`, taken by name from the page, never copied) or marked
`<!-- not run by the tests: WHY -->` with its reason; and what the blocks name exists."""

import re
import shlex
from pathlib import Path

import pytest

from support.readme import ROOT, Block, blocks

SHELL_LANGS = {"bash", "sh", "shell", "console"}
# Where the named blocks are typed: the journey scenario and the demo's user path.
CONSUMERS = [ROOT / "molecule/journey/tests/test_journey.py", ROOT / "tests/user_path/test_demo.py"]


def shell_blocks():
    return [b for b in blocks() if b.lang in SHELL_LANGS]


def test_every_command_block_is_marked():
    unmarked = [repr(b) for b in shell_blocks() if not (b.name or b.why)]
    assert not unmarked, f"command blocks with no user-path or not-run marker: {unmarked}"


def test_not_run_blocks_say_why():
    for b in shell_blocks():
        if b.why is not None:
            assert len(b.why.split()) >= 3, f"{b!r}: say why it cannot run here"


def test_named_blocks_are_unique_and_typed_by_a_test():
    names = [b.name for b in blocks() if b.name]
    assert len(names) == len(set(names)), names
    sources = "\n".join(p.read_text(encoding="utf-8") for p in CONSUMERS)
    used = set(re.findall(r"""\b(?:block|run_block|type_block)\((?:shell, )?["']([\w.-]+)["']""", sources))
    assert set(names) <= used, f"README blocks no test types: {sorted(set(names) - used)}"
    assert used <= set(names), f"tests type blocks the README lacks: {sorted(used - set(names))}"


def test_the_readme_is_for_the_laptop_owner():
    size = (ROOT / "README.md").stat().st_size
    assert size < 14_000, f"README.md is {size} bytes; the rest belongs in docs/"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"\b[0-9a-f]{7,40}\b`", text), "commit hashes in the README"
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+)\)", text):
        assert (ROOT / link).exists(), f"README links to a missing {link}"


def test_what_the_named_blocks_name_exists():
    """Playbooks, inventories and make targets in the typed blocks exist in the clone."""
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for b in shell_blocks():
        if not b.name:
            continue
        for command in b.commands():
            words = shlex.split(command.split(" #", 1)[0])
            for word in words:
                if word.startswith("playbooks/"):
                    assert (ROOT / word).is_file(), f"{b!r}: {word}"
            if words[:1] == ["make"]:
                assert words[1] in targets, f"{b!r}: make {words[1]}"
            if "-i" in words:
                inventory = words[words.index("-i") + 1]
                if inventory != "inventories/mine":  # the user's copy of inventories/example
                    assert (ROOT / inventory).is_dir(), f"{b!r}: {inventory}"


@pytest.mark.parametrize("text, commands", [
    ("a\n# comment\n\nb --x \\\n  --y\n", ["a", "b --x --y"]),
    ("  # indented comment\nc # trailing\n", ["c # trailing"]),
    ("d \\\n", ["d"]),
    ("", []),
])
def test_commands_split_as_a_shell_reads_lines(text, commands):
    assert Block(Path("x.md"), 1, "bash", text).commands() == commands


def test_markers_are_read_from_the_line_before(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- user-path: one -->\n```bash\nls\n```\n\ntext\n```bash\npwd\n```\n"
                    "<!-- not run by the tests: needs a real account -->\n```bash\nx\n```\n")
    found = blocks([page])
    assert [(b.name, b.why) for b in found] == [
        ("one", None), (None, None), (None, "needs a real account")]
