"""The whole cost (orgtwin/world/costs.py): people in money, lifetime value, run rates.

Each KPI is recomputed by hand from a simulated run's series and incident table, with
plain Python over the rows; the cost settings price what the run did without changing it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

from orgtwin import load_scenario, run, simulate
from orgtwin.errors import ScenarioError
from orgtwin.runs.results import RunResult
from orgtwin.scenario.spec import CostSpec
from orgtwin.telemetry import schemas as tables
from orgtwin.units import DAYS_PER_MONTH, HOURS_PER_MONTH
from orgtwin.world import costs
from orgtwin.world.kpis import KPIS
from tests.conftest import SMALL

DAYS = 10
COSTS = {"engineer_cost_usd_hour": 80.0, "hours_per_page": 2.0, "replacement_cost_usd": 30_000.0,
         "discount_rate_yearly": 0.2}  # fmt: skip
MONEY_KPIS = ("people_cost_usd", "margin_after_people_usd", "margin_per_day_end_usd",
              "customer_lifetime_value_usd")  # fmt: skip


@pytest.fixture(scope="module")
def costed_run() -> RunResult:
    """Ten days of the small scenario with its own cost settings and attrition to price."""
    spec: dict[str, Any] = {**SMALL, "costs": COSTS}
    spec["teams"] = {
        name: {**team, "people": {"attrition_base_yearly": 1.0}}
        for name, team in SMALL["teams"].items()
    }
    return simulate(load_scenario(spec), seed=7, days=DAYS)  # a seed where someone leaves


def values(result: RunResult, kind: str, metric: str, entity: str | None = None) -> dict:
    """tick -> the metric summed over the entities of a kind (or one entity)."""
    out: dict[int, float] = {}
    for row in result.series.iter_rows(named=True):
        kind_and_metric = row["entity_type"] == kind and row["metric"] == metric
        if kind_and_metric and entity in (None, row["entity"]):
            out[row["tick"]] = out.get(row["tick"], 0.0) + row["value"]
    return out


def total(result: RunResult, kind: str, metric: str, lo: int = 0, entity: str | None = None):
    return sum(v for t, v in values(result, kind, metric, entity).items() if t >= lo)


def response_hours(result: RunResult, lo: int, hi: int) -> float:
    hours = 0.0
    for row in result.events["incidents"].iter_rows(named=True):
        if row["detected"] is None:
            continue
        detected = (row["detected"] - result.start) / timedelta(hours=1)
        resolved = (
            hi if row["resolved"] is None else (row["resolved"] - result.start) / timedelta(hours=1)
        )
        hours += max(min(resolved, hi) - max(detected, lo), 0.0) if detected < hi else 0.0
    return 2.0 * hours  # two responders per incident


def test_people_cost_and_margin_are_the_hand_computed_sums(costed_run: RunResult) -> None:
    kpis = costed_run.summary()
    end = DAYS * 24
    toil = total(costed_run, "team", "toil_hours")
    pages = total(costed_run, "team", "pages")
    left = total(costed_run, "team", "left")
    assert left > 0 and pages > 0 and toil > 0  # every part is priced
    hours = toil + response_hours(costed_run, 0, end) + 2.0 * pages
    assert kpis["unplanned_hours"] == pytest.approx(hours, rel=1e-9)
    assert kpis["people_cost_usd"] == pytest.approx(80.0 * hours + 30_000.0 * left, rel=1e-9)
    assert kpis["attrition"] == left and kpis["pages"] == pages
    margin = kpis["revenue_usd"] - kpis["infra_cost_usd"] - kpis["vendor_cost_usd"]
    assert kpis["margin_after_people_usd"] == pytest.approx(
        margin - kpis["people_cost_usd"], rel=1e-9
    )


def test_run_rates_are_the_last_week_and_the_last_month(costed_run: RunResult) -> None:
    kpis = costed_run.summary()
    end, lo = DAYS * 24, (DAYS - 7) * 24
    money = (total(costed_run, "segment", "revenue_usd", lo)
             - total(costed_run, "service", "cost_usd", lo)
             - total(costed_run, "vendor", "cost_usd", lo))  # fmt: skip
    hours = (total(costed_run, "team", "toil_hours", lo) + response_hours(costed_run, lo, end)
             + 2.0 * total(costed_run, "team", "pages", lo))  # fmt: skip
    people = 80.0 * hours + 30_000.0 * total(costed_run, "team", "left", lo)
    assert kpis["margin_per_day_end_usd"] == pytest.approx((money - people) / 7, rel=1e-9)
    active = values(costed_run, "segment", "active_users")
    growth = (active[end - 1] / active[0]) ** (30 / ((end - 1) / 24)) - 1  # run < 30 days
    assert kpis["user_growth_monthly_pct"] == pytest.approx(100 * growth, rel=1e-9)


def test_lifetime_value_is_margin_per_user_month_over_churn(costed_run: RunResult) -> None:
    end = DAYS * 24  # shorter than the 30-day window: the whole run
    cost = total(costed_run, "service", "cost_usd") + total(costed_run, "vendor", "cost_usd")
    cost_per_user_month = cost / (total(costed_run, "segment", "active_users") / HOURS_PER_MONTH)
    discount = 1.2 ** (1 / 12) - 1
    expected = 0.0
    for segment in ("free", "pro"):
        paying = values(costed_run, "segment", "paying_users", segment)
        if paying[end - 1] == 0:
            continue  # the free segment pays nothing and is worth nothing here
        revenue = total(costed_run, "segment", "revenue_usd", entity=segment)
        price = revenue / (sum(paying.values()) / HOURS_PER_MONTH)
        mean_active = total(costed_run, "segment", "active_users", entity=segment) / end
        churn = total(costed_run, "segment", "churned", entity=segment) / mean_active
        churn /= DAYS / DAYS_PER_MONTH
        expected += paying[end - 1] * (price - cost_per_user_month) / (churn + discount)
    assert price == pytest.approx(20.0, rel=1e-6)  # the pro price, per user-month
    value = costed_run.summary()["customer_lifetime_value_usd"]
    assert value == pytest.approx(expected, rel=1e-9)


def test_cost_settings_price_the_run_without_changing_it(small_spec: dict[str, Any]) -> None:
    plain = simulate(load_scenario(small_spec), seed=2, days=3).summary()
    small_spec["costs"] = {"engineer_cost_usd_hour": 200.0, "hours_per_page": 0.0}
    dear = simulate(load_scenario(small_spec), seed=2, days=3).summary()
    for kpi in KPIS:
        if kpi not in (*MONEY_KPIS, "unplanned_hours"):
            assert dear[kpi] == plain[kpi] or (math.isnan(dear[kpi]) and math.isnan(plain[kpi]))
    page_hours = plain["pages"] * CostSpec().hours_per_page
    assert dear["unplanned_hours"] == pytest.approx(plain["unplanned_hours"] - page_hours)
    assert dear["people_cost_usd"] == pytest.approx(200.0 * dear["unplanned_hours"])


def test_response_hours_count_from_detection_to_resolution_within_the_window() -> None:
    start = datetime(2026, 1, 5)
    at = [start + timedelta(hours=h) for h in (0, 2, 5, 10, 12)]
    incidents = pl.DataFrame(
        {"incident_id": [1, 2, 3], "service": ["a"] * 3, "team": ["t"] * 3,
         "severity": [2] * 3, "cause": ["deploy", "chaos", "vendor"],
         "started": [at[0], at[0], at[3]], "detected": [at[1], at[1], at[4]],
         "resolved": [at[2], None, None]},
        schema=tables.INCIDENTS,
    )  # fmt: skip
    # 2..5 resolved, 2.. still open, 12.. still open: responders x hours in [0, 24)
    assert costs.response_hours(incidents, start=start, lo=0, hi=24) == 2 * (3 + 22 + 12)
    assert costs.response_hours(incidents, start=start, lo=4, hi=13) == 2 * (1 + 9 + 1)
    assert costs.response_hours(incidents.clear(), start=start, lo=0, hi=24) == 0.0


@pytest.mark.parametrize(
    ("growth", "expected"),
    [(0.0, 100.0 * 365), (-10.0, None), (5.0, None)],
)
def test_projection_compounds_the_end_rate_by_the_users_growth(growth, expected) -> None:
    by_day = [costs.project(100.0, growth, days) for days in (0, 30, 180, 365)]
    assert by_day[0] == 0.0
    assert by_day == sorted(by_day)  # a positive margin grows with the horizon
    g = (1 + growth / 100) ** (1 / 30)
    hand = sum(100.0 * g**t for t in range(1, 366))
    assert by_day[-1] == pytest.approx(hand if expected is None else expected, rel=1e-9)
    assert math.isnan(costs.project(math.nan, growth, 30))


def test_decides_must_name_kpis(small_spec: dict[str, Any]) -> None:
    small_spec["decides"] = ["margin_after_people_usd", "margn_usd", "happiness"]
    scenario = load_scenario(small_spec)
    with pytest.raises(ScenarioError) as caught:
        run(scenario, days=1, seeds=1)  # refused before anything runs
    lines = [e.line for e in caught.value.errors]
    assert lines[0] == (
        "<scenario>: decides[1] must be a KPI name, got 'margn_usd' (did you mean 'margin_usd'?)"
    )
    assert lines[1].startswith("<scenario>: decides[2] must be a KPI name, got 'happiness'")
    small_spec["decides"] = ["users", "users"]
    with pytest.raises(ScenarioError, match="decides must name each KPI once"):
        load_scenario(small_spec)
