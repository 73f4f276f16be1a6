"""The command blocks of the README and docs/, as a user reads them.

Every fenced ``bash`` block in README.md and docs/*.md carries a marker on the line before it:

    <!-- user-path: NAME -->                 a test runs this block's lines, as printed
    <!-- not run by the tests: WHY -->       it cannot run here, and the README says why

Tests take a block by name with :func:`block` (never a copy of its text), so a change of a
command in the README changes what the tests type. tests/controller/test_readme_blocks.py
checks that every block is marked and that every named block is used by a test.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!--\s*(user-path:\s*(?P<name>[\w.-]+)|not run by the tests:\s*(?P<why>.+?))\s*-->\s*$")


class Block:
    """One fenced block: where it is, its marker and its text."""

    def __init__(self, path, line, lang, text, name=None, why=None):
        self.path, self.line, self.lang, self.text = path, line, lang, text
        self.name, self.why = name, why

    def commands(self):
        """The block's commands, one per line as a person types them: comment lines and
        blank lines dropped, lines ending in a backslash joined with the next."""
        out, pending = [], ""
        for raw in self.text.splitlines():
            line = raw.rstrip()
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            out.append((pending + line.strip()).strip())
            pending = ""
        if pending:
            out.append(pending.strip())
        return out

    def __repr__(self):
        return f"{self.path.name}:{self.line} ({self.name or self.why or 'unmarked'})"


def blocks(paths=None):
    """Every fenced block of the given Markdown files (default: README.md and docs/*.md)."""
    found = []
    for path in paths or DOCS:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            fence = _FENCE.match(lines[i])
            if not fence:
                i += 1
                continue
            start, lang, body = i, fence.group(1), []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            mark = _MARK.match(lines[start - 1].strip()) if start > 0 else None
            found.append(Block(Path(path), start + 1, lang, "\n".join(body),
                               mark.group("name") if mark else None,
                               mark.group("why") if mark else None))
            i += 1
    return found


def block(name):
    """The one block marked ``user-path: NAME``."""
    named = [b for b in blocks() if b.name == name]
    if len(named) != 1:
        raise LookupError(f"{len(named)} blocks are marked 'user-path: {name}' in README.md and docs/")
    return named[0]
