"""The one-word switch between configurations: the last line of params.yaml, `config: *<name>`.

    $ python -m analysis.config            # prints the active configuration
    $ python -m analysis.config offline    # sets `config: *offline` (what `make demo` does)
    $ python -m analysis.config paper      # sets `config: *paper`   (what `make paper` does)

The edit is textual, so comments and layout of params.yaml stay as they are.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from analysis.io import write_text
from analysis.params import PARAMS_FILE, load_params

SWITCH = re.compile(r"^config:\s*\*(?P<name>[\w-]+)\s*$", re.MULTILINE)


def current(path: Path = PARAMS_FILE) -> str:
    match = SWITCH.search(path.read_text(encoding="utf-8"))
    if not match:
        raise SystemExit(f"{path}: no `config: *<name>` line found")
    return match.group("name")


def switch(name: str, path: Path = PARAMS_FILE) -> bool:
    """Point `config:` at configuration `name`; return whether the file changed."""
    text = path.read_text(encoding="utf-8")
    known = sorted(load_params(path).get("configs", {}))
    if name not in known:
        raise SystemExit(f"unknown configuration {name!r}; params.yaml defines: {', '.join(known)}")
    if not SWITCH.search(text):
        raise SystemExit(f"{path}: no `config: *<name>` line found")
    new = SWITCH.sub(f"config: *{name}", text, count=1)
    if new != text:
        write_text(path, new)
    return new != text


def main(argv: list[str]) -> None:
    if not argv:
        print(current())
        return
    changed = switch(argv[0])
    print(f"params.yaml: config: *{argv[0]}" + ("" if changed else " (unchanged)"))


if __name__ == "__main__":
    main(sys.argv[1:])
