"""Every ready scenario loads, runs, and asks one question against the baseline.

A scenario whose intervention starts after day 30 runs until the day after it starts
(a run may not end before its interventions begin).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from orgtwin import load_scenario, simulate

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"
FILES = sorted(SCENARIOS.glob("*.yaml"))
CHANGES = [path for path in FILES if path != BASELINE]
MIN_DAYS = 30


def test_the_folder_holds_a_baseline_and_questions():
    assert BASELINE in FILES
    assert len(CHANGES) >= 5
    baseline = load_scenario(BASELINE)
    assert baseline.base is None and baseline.interventions == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_runs_and_summarises(path: Path):
    scenario = load_scenario(path)
    last_start = max((i.start_hour for i in scenario.interventions), default=0)
    days = max(MIN_DAYS, last_start // 24 + 1)
    result = simulate(scenario, seed=1, days=days)
    summary = result.summary()
    assert math.isfinite(summary["users"]) and summary["users"] > 0
    assert math.isfinite(summary["revenue_usd"]) and summary["revenue_usd"] > 0
    assert 0 < summary["availability_pct"] <= 100
    assert result.series["tick"].max() == days * 24 - 1


@pytest.mark.parametrize("path", CHANGES, ids=lambda p: p.stem)
def test_scenario_extends_the_baseline_and_asks_a_question(path: Path):
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("# "), "the file opens with a comment: the question"
    opening = []
    for line in lines:
        if not line.startswith("#"):
            break
        opening.append(line)
    assert "?" in " ".join(opening), "the opening comment asks a question"
    raw = yaml.safe_load(text)
    assert raw.get("interventions"), "the file itself adds at least one intervention"
    scenario = load_scenario(path)
    assert scenario.base == str(BASELINE.resolve())
    assert scenario.name == path.stem
    assert len(scenario.interventions) == len(raw["interventions"])
