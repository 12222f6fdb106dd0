"""Regenerate the golden summary: ``make golden`` (or ``python tests/golden/regenerate.py``).

The golden scenario (``tests/golden/small.yaml``) runs its seeds; every KPI of every run
is written to ``tests/golden/small_summary.json``. ``tests/runs/test_golden.py`` runs the
scenario again and compares, so any change of behaviour shows there as a diff of this
file. Regenerate it only for a change of behaviour you mean to make, and say so in the
commit message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "small.yaml"
SUMMARY = HERE / "small_summary.json"


def golden_summary() -> dict[str, Any]:
    """Every KPI of every seed of the golden scenario, as JSON-ready data."""
    import orgtwin

    runs = orgtwin.run(orgtwin.load_scenario(SCENARIO))
    return {
        "scenario": runs.scenario,
        "days": runs.days,
        "runs": runs.summary.drop("scenario", "days").to_dicts(),
    }


def main() -> int:
    """Write the golden summary next to this file."""
    text = json.dumps(golden_summary(), indent=1) + "\n"
    temp = SUMMARY.with_suffix(".json.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(SUMMARY)
    print(f"wrote {SUMMARY.relative_to(HERE.parents[1])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
