"""Regenerate the generated pages of the docs: ``make docs`` (or ``python docs/regenerate.py``).

- ``docs/scenarios.md``: the text between its ``scenario-reference`` markers becomes the
  output of :func:`orgtwin.scenario.reference.scenario_reference`;
- ``docs/telemetry.md``: the whole page becomes
  :func:`orgtwin.runs.reference.telemetry_reference`.

``tests/test_docs.py`` fails until both pages agree with the code. Each file is written
under a temporary name and renamed into place.
"""

from __future__ import annotations

import sys
from pathlib import Path

from orgtwin.runs.reference import telemetry_reference
from orgtwin.scenario.reference import scenario_reference

DOCS = Path(__file__).resolve().parent
START = "<!-- scenario-reference:start -->"
END = "<!-- scenario-reference:end -->"


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)


def main() -> int:
    """Regenerate both pages; say which changed."""
    scenarios = DOCS / "scenarios.md"
    page = scenarios.read_text(encoding="utf-8")
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    pages = {
        scenarios: f"{head}{START}\n{scenario_reference()}\n{END}{tail}",
        DOCS / "telemetry.md": telemetry_reference() + "\n",
    }
    for path, text in pages.items():
        if path.read_text(encoding="utf-8") != text:
            write(path, text)
            print(f"rewrote {path.relative_to(DOCS.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
