"""The series registry (orgtwin/telemetry/series.py): every per-tick figure, declared once.

The registry lists each entity type's metrics in recording order (``metrics_of``,
``accrued_metrics``, ``metric``); a real run of the small scenario records every
registered metric for every entity, and moves every metric that must move within a day
(a stressed variant moves the rest); a metric's flags agree with its unit and with what
it counts, and :func:`orgtwin.explore.series_bands` adds up accruing metrics over a
day and averages gauges, summing extensive metrics across entities and averaging
intensive ones, so that a day's totals match the event tables and the KPIs.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import polars as pl
import pytest
from orgtwin.agents.teams import GAUGES

import orgtwin
from orgtwin.explore import series_bands
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry.series import (
    ENTITY_TYPES,
    SERIES_METRICS,
    SeriesMetric,
    accrued_metrics,
    metric,
    metrics_of,
)
from orgtwin.units import HOURS_PER_DAY

SEEDS = (1, 2, 3)
ATTRIBUTES = {"segment": "segments", "service": "services", "vendor": "vendors",
              "feature": "features", "team": "teams"}  # fmt: skip
"""Entity type -> the scenario's mapping of those entities."""
ALL = [(m.entity_type, m.name) for m in SERIES_METRICS]

MAY_STAY_ZERO = {
    ("segment", "tickets"): "raised from a day's few bad sessions, which may raise none",
    ("service", "preempted_replicas"): "the small scenario runs no spot replicas",
    ("team", "failed_deploys"): "a day's few deploys may all succeed",
    ("team", "pages"): "no incident, no page",
    ("team", "off_hours_pages"): "no incident, no page",
    ("team", "fatigue"): "only off-hours pages tire engineers",
    ("team", "left"): "attrition is a few engineers a year",
    ("team", "hired"): "leavers are replaced after a hiring lag of weeks",
    ("team", "toil_hours"): "a day's tickets become toil the next day",
}
"""Metrics that may stay zero for every entity in one day of the small scenario, and why."""


def tidy(result: RunResult | RunSet) -> pl.DataFrame:
    return result.series.with_columns(pl.col("entity_type", "entity", "metric").cast(pl.String))


def stressed(spec: dict[str, Any]) -> Scenario:
    """The small scenario made to move every metric within two days: spot replicas that
    are reclaimed often, deploys that fail half the time, a vendor outage at night (pages
    off hours), engineers who leave when tired and are replaced at once, and a ticket for
    every bad session."""
    spec = copy.deepcopy(spec)
    for service in spec["services"].values():
        service |= {"spot_share": 1.0, "spot_preemption_per_hour": 0.2}
    for segment in spec["segments"].values():
        segment["tickets_per_bad_session"] = 1.0
    for team in spec["teams"].values():
        team["change_failure"] = {"base": 0.5}
        team["people"] = {"fatigue_per_offhours_page": 1.0, "attrition_fatigue_coef": 50.0,
                          "hiring_lag_days": 0}  # fmt: skip
    spec["interventions"] = [{"kind": "vendor_outage", "vendor": "stripe", "at": "1h",
                              "until": "4h"}]  # fmt: skip
    return orgtwin.load_scenario(spec)


# --------------------------------------------------------------------------- the registry


def test_metrics_of_lists_each_types_metrics_in_registry_order():
    assert [m.entity_type for m in SERIES_METRICS] == sorted(
        (m.entity_type for m in SERIES_METRICS), key=ENTITY_TYPES.index
    ), "grouped by entity type, in ENTITY_TYPES order"
    assert [name for kind in ENTITY_TYPES for name in metrics_of(kind)] == [
        m.name for m in SERIES_METRICS
    ]
    for kind in ENTITY_TYPES:
        names = metrics_of(kind)
        assert names and len(set(names)) == len(names), kind
    with pytest.raises(KeyError, match="'nobody' is not an entity type"):
        metrics_of("nobody")


def test_accrued_metrics_are_the_accruing_ones_in_order():
    for kind in ENTITY_TYPES:
        expected = tuple(n for n in metrics_of(kind) if metric(kind, n).accrues)
        assert accrued_metrics(kind) == expected, kind
    assert set(accrued_metrics("vendor")) == {"cost_usd"}


def test_metric_returns_the_declaration_and_refuses_unknown_names():
    for declared in SERIES_METRICS:
        assert metric(declared.entity_type, declared.name) is declared
    cost = metric("vendor", "cost_usd")
    assert isinstance(cost, SeriesMetric)
    assert (cost.unit, cost.accrues, cost.intensive) == ("USD", True, False)
    with pytest.raises(KeyError, match=r"vendor\.pages is not a series metric"):
        metric("vendor", "pages")  # a team's metric
    with pytest.raises(KeyError, match="is not a series metric"):
        metric("team", "page")


def test_teams_record_their_gauges_then_their_counts():
    assert metrics_of("team") == (*GAUGES, *accrued_metrics("team"))
    assert not any(metric("team", name).accrues for name in GAUGES)


# --------------------------------------------------------------------------- the flags


RATE_UNITS = {"rps", "ms", "0-1", "fraction", "1/0"}


@pytest.mark.parametrize("declared", SERIES_METRICS, ids=lambda m: f"{m.entity_type}.{m.name}")
def test_flags_agree_with_the_unit(declared: SeriesMetric):
    if declared.accrues:
        assert not declared.intensive, "a rate or level is never added up over time"
        assert declared.unit not in RATE_UNITS
    if declared.unit in RATE_UNITS:
        assert not declared.accrues
    if declared.unit == "USD":
        assert declared.accrues and not declared.intensive, "money accrues and adds up"
    if declared.unit in {"ms", "0-1", "fraction", "1/0"}:
        assert declared.intensive, "rates and levels are averaged across entities"


IN_THE_HOUR = [m for m in SERIES_METRICS if " in the hour" in m.description]


@pytest.mark.parametrize(
    "declared",
    IN_THE_HOUR,
    ids=lambda m: f"{m.entity_type}.{m.name}",
)
def test_what_happens_in_the_hour_accrues(declared: SeriesMetric):
    assert declared.accrues, declared.description


# --------------------------------------------------------------------------- a real run


def test_a_run_records_every_metric_for_every_entity_every_hour(small_scenario: Scenario):
    series = tidy(orgtwin.simulate(small_scenario, seed=SEEDS[0], days=1))
    expected = {
        (kind, entity, name)
        for kind in ENTITY_TYPES
        for entity in getattr(small_scenario, ATTRIBUTES[kind])
        for name in metrics_of(kind)
    }
    per_key = series.group_by("entity_type", "entity", "metric").agg(
        pl.col("tick").sort().alias("ticks")
    )
    assert set(per_key.select("entity_type", "entity", "metric").rows()) == expected
    assert all(ticks == list(range(HOURS_PER_DAY)) for ticks in per_key["ticks"].to_list())
    assert series.height == len(expected) * HOURS_PER_DAY


@pytest.mark.parametrize("seed", SEEDS)
def test_a_day_of_the_small_scenario_moves_every_metric_that_must_move(
    small_scenario: Scenario, seed: int
):
    series = tidy(orgtwin.simulate(small_scenario, seed=seed, days=1))
    assert series["value"].is_finite().all() and (series["value"] >= 0).all()
    largest = series.group_by("entity_type", "metric").agg(pl.col("value").max())
    moved = {(kind, name) for kind, name, value in largest.rows() if value > 0}
    assert set(ALL) <= set(largest.select("entity_type", "metric").rows())
    stayed_zero = set(ALL) - moved
    assert stayed_zero <= set(MAY_STAY_ZERO), sorted(stayed_zero - set(MAY_STAY_ZERO))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_stressed_small_scenario_moves_every_metric(small_spec: dict[str, Any], seed: int):
    series = tidy(orgtwin.simulate(stressed(small_spec), seed=seed, days=2))
    moved = set(series.filter(pl.col("value") > 0).select("entity_type", "metric").unique().rows())
    assert set(ALL) - moved == set()


# --------------------------------------------------------------------------- series_bands


@pytest.fixture
def stressed_runs(small_spec: dict[str, Any]) -> RunSet:
    """The stressed small scenario, two days by two seeds."""
    return orgtwin.run(stressed(small_spec), days=2, seeds=2, seed=5)


def by_hand(runs: RunSet, declared: SeriesMetric) -> list[float]:
    """A metric's daily value, mean over seeds, aggregated as its flags say."""
    rows = tidy(runs).filter(
        pl.col("entity_type") == declared.entity_type, pl.col("metric") == declared.name
    )
    rows = rows.with_columns(day=pl.col("tick") // HOURS_PER_DAY)
    over_time = pl.col("value").sum() if declared.accrues else pl.col("value").mean()
    across = pl.col("value").mean() if declared.intensive else pl.col("value").sum()
    per_entity = rows.group_by("seed", "entity", "day").agg(over_time)
    per_seed = per_entity.group_by("seed", "day").agg(across)
    return per_seed.group_by("day").agg(pl.col("value").mean()).sort("day")["value"].to_list()


def test_series_bands_add_up_accruing_metrics_and_average_gauges(stressed_runs: RunSet):
    for declared in SERIES_METRICS:
        bands = series_bands(
            stressed_runs, entity_type=declared.entity_type, metric=declared.name, freq="day"
        )
        expected = by_hand(stressed_runs, declared)
        assert bands["day"].to_list() == list(range(len(expected)))
        assert bands["mean"].to_list() == pytest.approx(expected, rel=1e-9, abs=1e-12), declared


def daily(runs: RunSet, entity_type: str, name: str) -> np.ndarray:
    bands = series_bands(runs, entity_type=entity_type, metric=name, freq="day")
    return bands["mean"].to_numpy()


def events_per_day(runs: RunSet, table: str, start: Any, *where: pl.Expr) -> np.ndarray:
    """Events of a table each day, mean over the seeds (days without events count 0)."""
    frame = runs.events(table).filter(*where)
    day = ((frame["time"] - start).dt.total_hours() // HOURS_PER_DAY).to_numpy()
    seeds = frame["seed"].to_numpy()
    counts = [[np.sum((seeds == s) & (day == d)) for d in range(runs.days)] for s in runs.seeds]
    return np.mean(counts, axis=0)


def test_a_days_accrued_figures_are_the_days_events(stressed_runs: RunSet, small_spec: dict):
    runs, start = stressed_runs, stressed(small_spec).start
    deploys = events_per_day(runs, "deploys", start)
    assert deploys.sum() > 0
    np.testing.assert_allclose(daily(runs, "team", "deploys"), deploys)
    failed = events_per_day(runs, "deploys", start, pl.col("failed"))
    assert failed.sum() > 0
    np.testing.assert_allclose(daily(runs, "team", "failed_deploys"), failed)
    pages = events_per_day(runs, "pages", start)
    assert pages.sum() > 0
    np.testing.assert_allclose(daily(runs, "team", "pages"), pages)
    off_hours = events_per_day(runs, "pages", start, pl.col("off_hours"))
    assert off_hours.sum() > 0
    np.testing.assert_allclose(daily(runs, "team", "off_hours_pages"), off_hours)
    np.testing.assert_allclose(
        daily(runs, "feature", "sessions"), daily(runs, "segment", "sessions")
    )


@pytest.mark.parametrize(
    ("entity_type", "name", "kpi"),
    [("segment", "revenue_usd", "revenue_usd"), ("segment", "churned", "churned"),
     ("segment", "acquired", "acquired"), ("segment", "tickets", "tickets"),
     ("service", "cost_usd", "infra_cost_usd"), ("vendor", "cost_usd", "vendor_cost_usd"),
     ("team", "pages", "pages"), ("team", "left", "attrition")],
)  # fmt: skip
def test_a_runs_daily_totals_add_up_to_its_kpi(
    stressed_runs: RunSet, entity_type: str, name: str, kpi: str
):
    total = daily(stressed_runs, entity_type, name).sum()
    assert total > 0
    assert total == pytest.approx(stressed_runs.summary[kpi].mean(), rel=1e-9)


def test_a_gauge_is_averaged_over_the_day_not_added_up(stressed_runs: RunSet):
    up = daily(stressed_runs, "vendor", "up")  # stripe is down from 01:00 to 04:00 on day 0
    assert up.tolist() == pytest.approx([(21 / 24 + 1.0) / 2, 1.0])
    hourly = (
        tidy(stressed_runs)
        .filter(pl.col("entity_type") == "team", pl.col("metric") == "headcount")
        .group_by("seed", "tick")
        .agg(pl.col("value").sum())
        .with_columns(day=pl.col("tick") // HOURS_PER_DAY)
    )
    headcount = daily(stressed_runs, "team", "headcount")
    for day, level in enumerate(headcount):
        hours = hourly.filter(pl.col("day") == day)["value"]
        assert hours.min() <= level <= hours.max(), "a level, not 24 hours of it"


def resolve(dotted: str) -> object:
    """The object a dotted path names (a module, then attributes)."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(dotted)


@pytest.mark.parametrize("declared", SERIES_METRICS, ids=lambda m: f"{m.entity_type}.{m.name}")
def test_each_metric_names_its_writer_and_the_writer_names_the_metric(declared: SeriesMetric):
    import inspect

    writer = resolve(declared.writer)
    source = inspect.getsource(writer)  # type: ignore[arg-type]
    assert f"{declared.name}" in source, f"{declared.writer} does not write {declared.name}"
