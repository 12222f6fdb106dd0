"""The run KPIs (orgtwin/world/kpis.py): each computed from a tiny hand-made run.

Every expected value is worked out here from the hand-made series and event tables;
the DORA metrics are also checked against a direct count on random deploys.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from orgtwin.errors import ResultsError, TelemetryError
from orgtwin.runs.results import RunResult
from orgtwin.telemetry import schemas as tables
from orgtwin.world.kpis import KPIS, dora, weighted_quantile

START = datetime(2026, 1, 5)
DAYS = 2


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def make_series(values: dict[tuple[str, str, str], list[float]]) -> pl.DataFrame:
    """(entity_type, entity, metric) -> one value per tick, as a SERIES frame."""
    rows = [
        (tick, kind, entity, metric, float(value))
        for (kind, entity, metric), per_tick in values.items()
        for tick, value in enumerate(per_tick)
    ]
    return pl.DataFrame(rows, schema=tables.SERIES, orient="row")


def make_run(
    series: dict[tuple[str, str, str], list[float]],
    *,
    deploys: pl.DataFrame | None = None,
    incidents: pl.DataFrame | None = None,
    pages: pl.DataFrame | None = None,
    days: int = DAYS,
) -> RunResult:
    events = {name: tables.empty(name) for name in tables.EVENT_TABLES}
    for name, frame in (("deploys", deploys), ("incidents", incidents), ("pages", pages)):
        if frame is not None:
            events[name] = frame
    return RunResult(
        scenario="tiny",
        seed=7,
        replicate=0,
        start=START,
        days=days,
        slo_availability=0.999,
        slo_latency_p95_ms=300.0,
        series=make_series(series),
        events=events,
    )


def deploys_frame(batch: list[int], lead: list[float], failed: list[bool]) -> pl.DataFrame:
    n = len(batch)
    return pl.DataFrame(
        {
            "time": [at(h) for h in range(n)],
            "service": ["api"] * n,
            "team": ["core"] * n,
            "batch_size": batch,
            "failed": failed,
            "lead_time_hours": lead,
        },
        schema=tables.DEPLOYS,
    )


def incidents_frame(spans: list[tuple[float, float | None]]) -> pl.DataFrame:
    """(started, resolved) in hours from START; resolved None = still open."""
    n = len(spans)
    return pl.DataFrame(
        {
            "incident_id": list(range(n)),
            "service": ["api"] * n,
            "team": ["core"] * n,
            "severity": [2] * n,
            "cause": ["deploy"] * n,
            "started": [at(s) for s, _ in spans],
            "detected": [at(s + 0.1) for s, _ in spans],
            "resolved": [None if r is None else at(r) for _, r in spans],
        },
        schema=tables.INCIDENTS,
    )


def pages_frame(off_hours: list[bool]) -> pl.DataFrame:
    n = len(off_hours)
    return pl.DataFrame(
        {
            "time": [at(h) for h in range(n)],
            "team": ["core"] * n,
            "off_hours": off_hours,
            "incident_id": [0] * n,
        },
        schema=tables.PAGES,
    )


# Four ticks; two segments, one service, one vendor, two features, two teams.
SERIES = {
    ("segment", "free", "active_users"): [100, 90, 80, 70],
    ("segment", "pro", "active_users"): [50, 50, 60, 60],
    ("segment", "free", "churned"): [0, 10, 10, 10],
    ("segment", "pro", "churned"): [0, 0, 5, 0],
    ("segment", "pro", "acquired"): [0, 0, 10, 0],
    ("segment", "free", "revenue_usd"): [0, 0, 0, 0],
    ("segment", "pro", "revenue_usd"): [10, 10, 10, 10],
    ("segment", "free", "tickets"): [1, 0, 0, 0],
    ("segment", "pro", "tickets"): [0, 0, 2, 0],
    ("service", "api", "cost_usd"): [2.5, 2.5, 2.5, 2.5],
    ("service", "api", "latency_p95_ms"): [9999, 9999, 9999, 9999],  # not a feature: ignored
    ("vendor", "pay", "cost_usd"): [1, 1, 1, 1],
    ("feature", "search", "requests"): [100, 100, 100, 100],
    ("feature", "search", "errors"): [1, 0, 0, 1],
    ("feature", "search", "latency_p95_ms"): [100, 120, 110, 130],
    ("feature", "checkout", "requests"): [50, 50, 0, 0],
    ("feature", "checkout", "errors"): [0, 3, 0, 0],
    ("feature", "checkout", "latency_p95_ms"): [400, 500, 300, 900],
    ("team", "core", "headcount"): [4, 4, 4, 4],
    ("team", "edge", "headcount"): [2, 2, 2, 2],
    ("team", "core", "fatigue"): [0.1, 0.2, 0.3, 0.4],
    ("team", "edge", "fatigue"): [0.5, 0.5, 0.5, 0.5],
    ("team", "core", "oncall_size"): [2, 2, 2, 2],
    ("team", "edge", "oncall_size"): [1, 1, 1, 1],
    ("team", "core", "left"): [0, 0, 0, 1],
    ("team", "core", "changes_shipped"): [2, 0, 3, 1],
    ("team", "edge", "changes_shipped"): [1, 1, 0, 0],
}


@pytest.fixture
def summary() -> dict[str, float]:
    run = make_run(
        SERIES,
        # lead times 1, 10, 4, 2 with batches 1, 5, 2, 1: the changes' median is 10
        deploys=deploys_frame([1, 5, 2, 1], [1.0, 10.0, 4.0, 2.0], [False, True, False, True]),
        # resolved after 2, 0.5 and 6 h, one still open, one started before the run
        incidents=incidents_frame([(1, 3), (5, 5.5), (10, 16), (20, None), (-24, -14)]),
        pages=pages_frame([True, False, False, True, False, False]),
    )
    return run.summary()


def test_summary_has_every_kpi_in_order(summary: dict[str, float]) -> None:
    assert list(summary) == list(KPIS)
    assert all(isinstance(value, float) for value in summary.values())


def test_users_are_summed_over_segments_at_the_first_and_last_tick(summary) -> None:
    assert summary["users"] == 70 + 60
    assert summary["users_start"] == 100 + 50
    assert summary["churned"] == 35
    assert summary["acquired"] == 10
    assert summary["tickets"] == 3


def test_monthly_churn_is_churned_per_mean_active_user_per_30_days(summary) -> None:
    mean_active = (150 + 140 + 140 + 130) / 4
    assert summary["churn_rate_monthly_pct"] == pytest.approx(100 * 35 / mean_active / DAYS * 30)


def test_money_sums_and_margin(summary) -> None:
    assert summary["revenue_usd"] == 40
    assert summary["infra_cost_usd"] == 10
    assert summary["vendor_cost_usd"] == 4
    assert summary["margin_usd"] == 26


def test_availability_is_one_minus_errors_over_requests(summary) -> None:
    assert summary["availability_pct"] == pytest.approx(100 * (1 - 5 / 500))
    assert summary["error_budget_used"] == pytest.approx((5 / 500) / 0.001)


def test_latency_p95_weights_each_feature_tick_by_its_requests(summary) -> None:
    # 475 of 500 requests fall at or below 500 ms; the 900 ms tick had no requests.
    assert summary["latency_p95_ms"] == 500


def test_people_kpis(summary) -> None:
    assert summary["fatigue"] == pytest.approx((4 * 1.0 + 2 * 2.0) / (6 * 4))
    assert summary["attrition"] == 1
    assert summary["feature_throughput_per_week"] == pytest.approx(8 / DAYS * 7)
    assert summary["pages"] == 6
    assert summary["off_hours_pages"] == 2
    assert summary["pages_per_oncall_engineer"] == pytest.approx(6 / 3)


def test_incidents_count_only_those_started_in_the_run(summary) -> None:
    assert summary["incidents"] == 4
    assert summary["mttr_hours"] == pytest.approx((2 + 0.5 + 6) / 3)
    assert summary["time_to_restore_hours"] == pytest.approx(2.0)


def test_dora_from_the_deploy_table(summary) -> None:
    assert summary["deploy_frequency_per_day"] == pytest.approx(4 / DAYS)
    assert summary["change_failure_rate_pct"] == pytest.approx(50.0)
    assert summary["lead_time_hours"] == pytest.approx(10.0)


def test_dora_matches_a_direct_count() -> None:
    rng = np.random.default_rng(3)
    n = 57
    batch = rng.integers(1, 6, n)
    lead = rng.gamma(2.0, 5.0, n).round(1)
    failed = rng.random(n) < 0.2
    starts = rng.uniform(0, 48, 9)
    hours = rng.gamma(1.5, 2.0, 9)
    deploys = deploys_frame(batch.tolist(), lead.tolist(), failed.tolist())
    incidents = incidents_frame(list(zip(starts.tolist(), (starts + hours).tolist(), strict=True)))

    kpis = dora(deploys, incidents, days=3)

    assert kpis["deploy_frequency_per_day"] == pytest.approx(n / 3)
    assert kpis["change_failure_rate_pct"] == pytest.approx(100 * failed.sum() / n)
    assert kpis["lead_time_hours"] == pytest.approx(np.median(np.repeat(lead, batch)))
    assert kpis["time_to_restore_hours"] == pytest.approx(np.median(hours), abs=1e-6)


def test_lead_time_with_an_even_number_of_changes_averages_the_middle_two() -> None:
    deploys = deploys_frame([2, 2], [1.0, 5.0], [False, False])
    kpis = dora(deploys, tables.empty("incidents"), days=1)
    assert kpis["lead_time_hours"] == 3.0


def test_no_deploys_or_incidents_gives_nan_for_undefined_ratios() -> None:
    kpis = dora(tables.empty("deploys"), tables.empty("incidents"), days=5)
    assert kpis["deploy_frequency_per_day"] == 0.0
    for name in ("lead_time_hours", "change_failure_rate_pct", "time_to_restore_hours"):
        assert math.isnan(kpis[name]), name


def test_open_incidents_do_not_count_towards_restore_times() -> None:
    summary = make_run(SERIES, incidents=incidents_frame([(2, None)])).summary()
    assert summary["incidents"] == 1
    assert math.isnan(summary["mttr_hours"])
    assert math.isnan(summary["time_to_restore_hours"])


def test_an_empty_run_gives_zero_counts_and_nan_ratios() -> None:
    summary = make_run({}).summary()
    for name in ("users", "churned", "revenue_usd", "margin_usd", "incidents", "pages"):
        assert summary[name] == 0.0, name
    for name in ("availability_pct", "latency_p95_ms", "fatigue", "churn_rate_monthly_pct"):
        assert math.isnan(summary[name]), name


def test_availability_without_errors_is_100_and_uses_no_budget() -> None:
    series = {
        ("feature", "a", "requests"): [10, 20],
        ("feature", "a", "errors"): [0, 0],
    }
    summary = make_run(series).summary()
    assert summary["availability_pct"] == 100.0
    assert summary["error_budget_used"] == 0.0


def test_dora_rejects_bad_days_and_tables() -> None:
    with pytest.raises(ResultsError, match="days must be an integer >= 1, got 0"):
        dora(tables.empty("deploys"), tables.empty("incidents"), days=0)
    with pytest.raises(TelemetryError, match="deploys table must have columns"):
        dora(pl.DataFrame({"time": []}), tables.empty("incidents"), days=1)


def test_weighted_quantile_ignores_zero_weights() -> None:
    values = pl.Series([1.0, 2.0, 3.0, 100.0])
    weights = pl.Series([1.0, 1.0, 2.0, 0.0])
    assert weighted_quantile(values, weights, 0.25) == 1.0
    assert weighted_quantile(values, weights, 0.5) == 2.0
    assert weighted_quantile(values, weights, 0.6) == 3.0
    assert weighted_quantile(values, weights, 1.0) == 3.0
    assert math.isnan(weighted_quantile(values, pl.Series([0.0] * 4), 0.5))


def test_kpi_table_declares_every_kpi_in_summary_order() -> None:
    assert list(KPIS) == [
        "users", "users_start", "churned", "acquired", "churn_rate_monthly_pct",
        "revenue_usd", "infra_cost_usd", "vendor_cost_usd", "margin_usd",
        "people_cost_usd", "margin_after_people_usd", "margin_per_day_end_usd",
        "customer_lifetime_value_usd", "user_growth_monthly_pct",
        "availability_pct", "error_budget_used", "latency_p95_ms", "incidents",
        "mttr_hours", "pages", "off_hours_pages", "pages_per_oncall_engineer", "fatigue",
        "attrition", "unplanned_hours", "tickets", "feature_throughput_per_week",
        "deploy_frequency_per_day", "lead_time_hours", "change_failure_rate_pct",
        "time_to_restore_hours",
    ]  # fmt: skip
    assert KPIS["lead_time_hours"].label == "Lead time for changes"
    assert KPIS["lead_time_hours"].higher_is_better is False
    margin = KPIS["margin_usd"]
    assert (margin.unit, margin.higher_is_better) == ("USD", True)
    assert margin.description.startswith("Margin: ")
