"""The README tells the truth: its generated reference, commands, scenarios, KPIs and example.

The scenario reference between the README's markers must equal what
:func:`orgtwin.reference.scenario_reference` generates from the scenario models, so a
schema change without a README update fails here. The Python example is executed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from orgtwin.runs.metrics import KPIS
from orgtwin.scenario.reference import scenario_reference

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START = "<!-- scenario-reference:start -->"
END = "<!-- scenario-reference:end -->"
EXAMPLE = re.compile(r"^<!-- example:python -->\n```python\n(.*?)^```$", re.M | re.S)


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The text of a ``## heading`` section, up to the next ``##`` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md must have a '## {heading}' section"
    return match.group(1)


def test_scenario_reference_matches_the_models(readme: str) -> None:
    assert readme.count(START) == 1 and readme.count(END) == 1, (
        f"README.md must hold {START} and {END} once each"
    )
    pasted = readme.split(START, 1)[1].split(END, 1)[0].strip("\n")
    assert pasted == scenario_reference(), (
        "README.md's scenario reference is out of date with the scenario models (or the "
        "docstrings it borrows from behaviours and agents): run "
        f"`python -m orgtwin.reference` and paste its output between {START} and {END}"
    )


def test_quick_start_names_make_app_and_make_test(readme: str) -> None:
    quick_start = _section(readme, "Quick start")
    assert "make app" in quick_start
    assert "make test" in quick_start
    assert "make run" in readme


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_scenario_file_is_in_the_readme(readme: str, path: Path) -> None:
    assert f"`{path.name}`" in readme, f"README.md's scenarios table must list {path.name}"


def test_every_kpi_is_in_the_readme(readme: str) -> None:
    missing = [kpi for kpi in KPIS if f"`{kpi}`" not in readme]
    assert not missing, f"README.md's KPI table must list {', '.join(missing)}"


@pytest.mark.slow
def test_python_example_runs(readme: str) -> None:
    blocks = EXAMPLE.findall(readme)
    assert len(blocks) == 1, "README.md must have one ```python block after <!-- example:python -->"
    done = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"the README's Python example failed:\n{done.stderr}"
    for kpi in ("deploy_frequency_per_day", "lead_time_hours", "change_failure_rate_pct"):
        assert kpi in done.stdout, f"the example must print the comparison of {kpi}"
