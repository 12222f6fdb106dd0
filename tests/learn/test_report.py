"""The fit report and the learned scenario file: what a lead and a tool read of a learning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from orgtwin.errors import ScenarioError
from orgtwin.learn.base import Estimate, Fit, HoldoutScore, shrink
from orgtwin.learn.report import LearnReport
from orgtwin.learn.twin import learned_scenario, nested, write_scenario
from orgtwin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.yaml"


def _report() -> LearnReport:
    rate = Estimate("outage_rate_per_month", 0.8, 0.3, 1.5, "learned", "per month", "Poisson", 12)
    mean = Estimate("outage_hours_mean", 2.0, 1.0, 3.0, "shrunk", "hours", "exponential", 12)
    kept = Estimate("latency_ms", 120.0, math.nan, math.nan, "prior", "ms", "", 0)
    holdout = HoldoutScore("mean log-likelihood", -1.2, -1.5, "training mean", True, 40, 10)
    fit = Fit("vendor_outages", "vendor stripe", [rate, mean, kept], holdout, 12, ["thin data"])
    dropped = {"incidents": {"end before start": 3}}
    return LearnReport("acme", "scenarios/baseline.yaml", "telemetry/", [fit],
                       rows={"vendor_status": 12}, dropped=dropped)  # fmt: skip


def test_the_report_says_rows_dropped_by_reason_and_each_parameter_with_its_source(
    tmp_path: Path,
):
    json_path, md_path = _report().save(tmp_path)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["dropped"] == {"incidents": {"end before start": 3}}
    estimates = {e["name"]: e for e in data["fits"][0]["estimates"]}
    assert estimates["latency_ms"]["low"] is None  # NaN is written as null, never as NaN
    assert estimates["outage_hours_mean"]["source"] == "shrunk"
    assert data["fits"][0]["holdout"]["beats_baseline"] is True
    text = md_path.read_text(encoding="utf-8")
    assert "| incidents | 0 | 3 | end before start: 3 |" in text
    assert "| outage_hours_mean | 2 | 1 – 3 | hours | shrunk to prior |" in text
    assert "beats training mean (-1.5)" in text and "- ⚠ thin data" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]


def test_a_learned_scenario_file_loads_as_written_and_says_where_values_came_from(
    tmp_path: Path,
):
    base = load_scenario(BASELINE)
    twin = learned_scenario(base, {"vendors.stripe.outage_rate_per_month": 0.8}, name="acme")
    path = write_scenario(tmp_path / "acme.yaml", twin, _report())
    text = path.read_text(encoding="utf-8")
    assert "outage_rate_per_month = 0.8 (0.3 – 1.5, learned) per month" in text
    assert "latency_ms" not in text.split("\n\n")[0]  # priors are not listed as learned
    again = load_scenario(path)
    assert again.vendors["stripe"].outage_rate_per_month == 0.8
    assert again.model_dump(exclude={"name", "description"}) == twin.model_dump(
        exclude={"name", "description"}
    )
    assert again.teams == base.teams


def test_a_learned_value_outside_its_range_is_a_scenario_error():
    base = load_scenario(BASELINE)
    with pytest.raises(ScenarioError, match="outage_rate_per_month"):
        learned_scenario(base, {"vendors.stripe.outage_rate_per_month": 1e6}, name="acme")


def test_nested_paths_and_shrinkage():
    assert nested({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    value, source = shrink(10.0, 2.0, n=5, prior_n=15)
    assert (value, source) == (4.0, "shrunk")
    assert shrink(10.0, 2.0, n=10_000, prior_n=15)[1] == "learned"
