"""The $EDITOR of the journey's user: it writes what a person would type into each file the
README's `$EDITOR ...` line opens. TEST STAND-IN for a person at an editor.

The test writes the plan for the next edit to the JSON file named by JOURNEY_EDIT_PLAN:
``{"<file name or path suffix>": {"set": {key: value}, "content": "..."}}``.
- "set": a top-level key of a YAML file gets the value (written as JSON, which YAML reads);
  a key the file lacks is added at the end, one it has is replaced with its block (the lines
  indented under it), so the file never holds a key twice;
- "content": the whole file is this text (a file that did not exist, like ~/.vault-pass).
Every file the editor is opened with must have a plan entry and every entry must be used, so a
README line that opens other files than the test expects fails the test.
"""

import json
import os
import re
import sys
from pathlib import Path


def set_key(text, key, value):
    lines = text.splitlines()
    new = f"{key}: {json.dumps(value)}"
    for i, line in enumerate(lines):
        if re.match(rf"^{re.escape(key)}:(\s|$)", line):
            end = i + 1
            while end < len(lines) and (lines[end].startswith((" ", "\t", "- "))):
                end += 1
            lines[i:end] = [new]
            break
    else:
        lines.append(new)
    return "\n".join(lines) + "\n"


def main(paths):
    plan = json.loads(Path(os.environ["JOURNEY_EDIT_PLAN"]).read_text(encoding="utf-8"))
    used = set()
    for arg in paths:
        path = Path(arg).expanduser()
        keys = [k for k in plan if str(path).endswith(k)]
        if len(keys) != 1:
            sys.exit(f"editor: no single plan entry for {arg} (plan: {sorted(plan)})")
        edit = plan[keys[0]]
        used.add(keys[0])
        text = edit["content"] if "content" in edit else path.read_text(encoding="utf-8")
        for key, value in edit.get("set", {}).items():
            text = set_key(text, key, value)
        path.write_text(text, encoding="utf-8")
    unused = set(plan) - used
    if unused:
        sys.exit(f"editor: the README's line did not open {sorted(unused)}")


if __name__ == "__main__":
    main(sys.argv[1:])
