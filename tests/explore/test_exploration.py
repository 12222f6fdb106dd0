"""Explore: controls with bounds the scenario accepts, lean runs, parallel runs, figures.

The Explore page's library calls: the controls of every scenario file apply at their
bounds and refuse values beyond them; a lean run keeps the KPIs of a full one; a run in
the process pool equals a serial one; a known effect shows with the right sign; the
figures for cards and charts hold together; and bad input is refused with its bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orgtwin import run
from orgtwin.errors import ExploreError, LeverError, ResultsError
from orgtwin.explore import (
    MAX_DAYS,
    MAX_SEEDS,
    apply_controls,
    check_bounds,
    controls,
    explore,
    explore_from,
    kpi_cards,
    run_base,
    run_change,
    series_bands,
)
from orgtwin.explore.controls import Control, knob
from orgtwin.runs.pool import shutdown_pools
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_FILES = sorted((ROOT / "scenarios").glob("*.yaml"))
CAB = str(ROOT / "scenarios" / "cab_policy.yaml")
PRICE = str(ROOT / "scenarios" / "price_increase.yaml")
PRICE_PATH = "interventions[0].price_usd_month"


@pytest.fixture(scope="module")
def price_runs() -> dict[str, Any]:
    """The price increase (12 → 15 USD) and a steeper one (→ 20 USD), 30 days × 3 seeds."""
    first = explore(PRICE, days=30, seeds=3)
    steeper = explore(PRICE, {PRICE_PATH: 20.0}, days=30, seeds=3, base=first.base)
    return {"first": first, "steeper": steeper}


@pytest.fixture(scope="module")
def pool() -> Any:
    """Shut the worker pools down once this module's tests are done."""
    yield
    shutdown_pools()


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("days", "seeds", "bound"),
    [(0, 8, f"days must be an integer between 1 and {MAX_DAYS}, got 0"),
     (400, 8, f"days must be an integer between 1 and {MAX_DAYS}, got 400"),
     (90, 0, f"seeds must be an integer between 1 and {MAX_SEEDS}, got 0"),
     (90, 100, f"seeds must be an integer between 1 and {MAX_SEEDS}, got 100"),
     (2.5, 8, "days must be an integer"), (90, True, "seeds must be an integer")],
)  # fmt: skip
def test_check_bounds_refuses_with_the_bound_stated(days: Any, seeds: Any, bound: str):
    with pytest.raises(ExploreError, match=bound) as caught:
        check_bounds(days, seeds)
    assert isinstance(caught.value, ValueError)


def test_check_bounds_accepts_the_bounds_themselves():
    check_bounds(1, 1)
    check_bounds(MAX_DAYS, MAX_SEEDS)


def test_runs_refuse_out_of_bounds_before_running():
    with pytest.raises(ExploreError, match="between 1 and 365"):
        run_change(CAB, (), days=400, seeds=2)
    with pytest.raises(ExploreError, match="between 1 and 32"):
        run_base(CAB, days=14, seeds=100)


# --------------------------------------------------------------------------- controls


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_controls_cover_every_intervention_and_its_fields(path: Path):
    scenario = load_scenario(path)
    paths = {c.path for c in controls(scenario)}
    for i, iv in enumerate(scenario.interventions):
        assert {f"interventions[{i}].active", f"interventions[{i}].at"} <= paths
        fields = {
            name for name in type(iv).model_fields
            if knob(type(iv), name) is not None and getattr(iv, name) is not None
        }  # fmt: skip
        assert {f"interventions[{i}].{name}" for name in fields} <= paths, iv.kind
        if iv.until is not None:
            lengths = {f"interventions[{i}].duration_{unit}" for unit in ("hours", "days")}
            assert paths & lengths, f"{iv.kind} ends but has no length control"
    if not scenario.interventions:
        assert any(p.startswith("teams.") and p.endswith("oncall_size") for p in paths)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_control_applies_at_its_bounds_and_refuses_beyond(path: Path):
    scenario = load_scenario(path)
    for control in controls(scenario):
        assert control.kind in ("int", "float", "bool", "choice")
        for value in _allowed(control):
            changed = apply_controls(scenario, {control.path: value})
            assert isinstance(changed, Scenario)
        for value in _refused(control):
            with pytest.raises(LeverError, match=_bounds_words(control)):
                apply_controls(scenario, {control.path: value})
    assert scenario.model_dump() == load_scenario(path).model_dump(), "the original changed"


def _allowed(control: Control) -> list[Any]:
    if control.kind == "bool":
        return [True, False]
    if control.kind == "choice":
        return list(control.choices)
    assert control.low is not None and control.high is not None and control.step
    assert control.low <= control.value <= control.high
    return [control.low, control.high]


def _refused(control: Control) -> list[Any]:
    if control.kind == "bool":
        return ["yes"]
    if control.kind == "choice":
        return ["no-such-choice"]
    assert control.low is not None and control.high is not None and control.step
    return [control.low - control.step, control.high + control.step]


def _bounds_words(control: Control) -> str:
    if control.kind in ("bool", "choice"):
        return "must be"
    return f"must be between {control.low:g} and {control.high:g}"


def test_control_values_land_where_they_say():
    cab = load_scenario(CAB)
    changed = apply_controls(cab, {"interventions[0].meeting_every_hours": 336})
    assert changed.interventions[0].meeting_every_hours == 336
    assert cab.interventions[0].meeting_every_hours == 168
    assert apply_controls(cab, {"interventions[0].active": False}).interventions == []
    baseline = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    moved = apply_controls(baseline, {"teams.platform.oncall_size": 2})
    assert moved.teams["platform"].oncall_size == 2
    assert moved.teams["web"].oncall_size == baseline.teams["web"].oncall_size


def test_moving_the_start_of_an_outage_keeps_its_length():
    outage = load_scenario(ROOT / "scenarios" / "vendor_outage.yaml")
    iv = outage.interventions[0]
    length = iv.end_hour - iv.start_hour
    moved = apply_controls(outage, {"interventions[0].at": 20}).interventions[0]
    assert (moved.start_hour, moved.end_hour) == (20 * 24, 20 * 24 + length)
    longer = apply_controls(outage, {"interventions[0].duration_hours": 12}).interventions[0]
    assert (longer.start_hour, longer.end_hour) == (iv.start_hour, iv.start_hour + 12)


def test_unchanged_values_leave_the_scenario_as_it_is():
    for path in SCENARIO_FILES:
        scenario = load_scenario(path)
        same = apply_controls(scenario, {c.path: c.value for c in controls(scenario)})
        assert same.model_dump() == scenario.model_dump(), path.stem


# --------------------------------------------------------------------------- runs


def test_price_up_raises_revenue(price_runs: dict[str, Any]):
    first = price_runs["first"]
    revenue = first.comparison.filter(pl.col("kpi") == "revenue_usd").row(0, named=True)
    assert revenue["delta"] > 0 and revenue["significant"], revenue
    assert first.base_name == "baseline" and first.scenario_name == "price_increase"
    assert (first.days, first.seeds) == (30, 3)


def test_changing_a_control_changes_the_result(price_runs: dict[str, Any]):
    first, steeper = price_runs["first"], price_runs["steeper"]

    def revenue_delta(found: Any) -> float:
        return found.comparison.filter(pl.col("kpi") == "revenue_usd")["delta"][0]

    assert revenue_delta(steeper) > revenue_delta(first) > 0
    assert steeper.values == {PRICE_PATH: 20.0}
    assert not steeper.change.summary.equals(first.change.summary)
    assert steeper.base is first.base


def test_a_lean_run_keeps_the_kpis_of_a_full_run():
    lean = run_base(CAB, days=14, seeds=2)
    full = run(ROOT / "scenarios" / "baseline.yaml", days=14, seeds=2, seed=7)
    assert_frame_equal(lean.summary, full.summary)
    assert lean.series.schema == full.series.schema
    assert lean.series["tick"].n_unique() == 14
    assert lean.events("user_days").is_empty() and lean.events("deploys").height > 0


def test_parallel_runs_equal_serial_runs(pool: Any):
    serial = run(CAB, days=16, seeds=3)
    parallel = run(CAB, days=16, seeds=3, workers=2)
    assert_frame_equal(serial.summary, parallel.summary)
    assert_frame_equal(serial.series, parallel.series)
    for name, table in serial.tables.items():
        assert_frame_equal(table, parallel.tables[name])
    values = (("interventions[0].meeting_every_hours", 72),)
    lean_serial = run_change(CAB, values, days=16, seeds=3)
    lean_parallel = run_change(CAB, values, days=16, seeds=3, workers=2)
    assert_frame_equal(lean_serial.summary, lean_parallel.summary)
    assert_frame_equal(lean_serial.series, lean_parallel.series)


def test_explore_from_refuses_sets_of_other_days():
    base = run_base(CAB, days=16, seeds=2)
    change = run_change(CAB, (), days=17, seeds=2)
    with pytest.raises(ExploreError, match="must share days and seeds"):
        explore_from(base, change, load_scenario(CAB))


# --------------------------------------------------------------------------- figures


@pytest.mark.parametrize(
    ("entity_type", "metric", "kpi"),
    [("team", "pages", "pages"), ("segment", "churned", "churned"),
     ("segment", "revenue_usd", "revenue_usd"), ("segment", "active_users", None),
     ("service", "error_rate", None), ("team", "fatigue", None)],
)  # fmt: skip
def test_series_bands_hold_the_mean_inside_the_band(
    price_runs: dict[str, Any], entity_type: str, metric: str, kpi: str | None
):
    runs = price_runs["first"].change
    for freq in ("day", "week"):
        bands = series_bands(runs, entity_type=entity_type, metric=metric, freq=freq)
        assert bands.columns == ["day", "mean", "low", "high", "n"]
        assert bands.height == (30 if freq == "day" else 5)
        assert (bands["low"] <= bands["mean"] + 1e-9).all()
        assert (bands["mean"] <= bands["high"] + 1e-9).all()
        assert (bands["n"] == 3).all()
        if kpi is not None:  # a day's totals add up to the run's KPI
            assert bands["mean"].sum() == pytest.approx(runs.summary[kpi].mean(), rel=1e-9)


def test_series_bands_of_one_entity_and_bad_requests(price_runs: dict[str, Any]):
    runs = price_runs["first"].change
    one = series_bands(runs, entity_type="team", metric="pages", entity="web")
    every = series_bands(runs, entity_type="team", metric="pages")
    assert (one["mean"] <= every["mean"] + 1e-9).all()
    with pytest.raises(ResultsError, match="did you mean 'pages'"):
        series_bands(runs, entity_type="team", metric="pagez")
    with pytest.raises(ResultsError, match="entity_type must be one of"):
        series_bands(runs, entity_type="teams", metric="pages")
    with pytest.raises(ResultsError, match="entity must be a team"):
        series_bands(runs, entity_type="team", metric="pages", entity="nobody")
    with pytest.raises(ResultsError, match="freq must be"):
        series_bands(runs, entity_type="team", metric="pages", freq="hour")  # type: ignore[arg-type]


def test_kpi_cards_follow_the_comparison(price_runs: dict[str, Any]):
    comparison = price_runs["first"].comparison
    cards = kpi_cards(comparison, ["revenue_usd", "churn_rate_monthly_pct"])
    revenue, churn = cards
    row = comparison.filter(pl.col("kpi") == "revenue_usd").row(0, named=True)
    assert revenue["label"] == "Revenue" and revenue["unit"] == "USD"
    assert revenue["delta"] == row["delta"] and revenue["significant"] == row["significant"]
    assert revenue["text"].startswith("+$") and "95% CI +$" in revenue["text"]
    assert churn["text"].endswith(" pp)") and " pp (95% CI " in churn["text"]
    with pytest.raises(ResultsError, match="did you mean 'revenue_usd'"):
        kpi_cards(comparison, ["revenue"])
