"""Explore (orgtwin/explore/exploration.py): bounds, lean runs, parallel runs, explorations.

The Explore page's library calls: days and seeds are refused beyond their bounds with
the bound stated; a lean run keeps the KPIs of a full one; a run in the process pool
equals a serial one; a known effect (a price increase raises revenue) shows with the
right sign, and moving its control moves the result. The controls and the figures have
their own tests (``test_controls.py``, ``test_figures.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orgtwin import run
from orgtwin.errors import ExploreError
from orgtwin.explore import (
    MAX_DAYS,
    MAX_SEEDS,
    check_bounds,
    exploration,
    explore,
    explore_from,
    run_base,
    run_change,
)
from orgtwin.runs.pool import shutdown_pools
from orgtwin.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
CAB = str(ROOT / "scenarios" / "cab_policy.yaml")
PRICE = str(ROOT / "scenarios" / "price_increase.yaml")
PRICE_PATH = "interventions[0].price_usd_month"


@pytest.fixture(scope="module")
def price_runs(price_increase_exploration: Any) -> dict[str, Any]:
    """The price increase (12 → 15 USD) and a steeper one (→ 20 USD), 30 days × 3 seeds."""
    first = price_increase_exploration
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
    [(0, 8, f"days must be a whole number between 1 and {MAX_DAYS}, got 0"),
     (400, 8, f"days must be a whole number between 1 and {MAX_DAYS}, got 400"),
     (90, 0, f"seeds must be a whole number between 1 and {MAX_SEEDS}, got 0"),
     (90, 100, f"seeds must be a whole number between 1 and {MAX_SEEDS}, got 100"),
     (2.5, 8, "days must be a whole number"), (90, True, "seeds must be a whole number")],
)  # fmt: skip
def test_check_bounds_refuses_with_the_bound_stated(days: Any, seeds: Any, bound: str):
    with pytest.raises(ExploreError, match=bound) as caught:
        check_bounds(days, seeds)
    assert isinstance(caught.value, ValueError)


def test_check_bounds_accepts_the_bounds_themselves():
    check_bounds(1, 1)
    check_bounds(MAX_DAYS, MAX_SEEDS)


def test_runs_refuse_out_of_bounds_before_running(monkeypatch: pytest.MonkeyPatch):
    ran: list[Any] = []
    monkeypatch.setattr(exploration, "run", lambda *args, **kwargs: ran.append(args))
    with pytest.raises(ExploreError, match="between 1 and 365"):
        run_change(CAB, (), days=400, seeds=2)
    with pytest.raises(ExploreError, match="between 1 and 32"):
        run_base(CAB, days=14, seeds=100)
    assert ran == [], "nothing ran"
    run_base(CAB, days=14, seeds=2)
    assert len(ran) == 1, "the patched run is the one the explore runs call"


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
