"""The run KPIs: what each one means, and how one run's telemetry becomes a summary row.

:data:`KPIS` declares every KPI once (unit, which way is good, what it measures), and
:func:`summarise` computes them all from a :class:`~orgtwin.runs.results.RunResult` with
vectorised polars. Rates, shares and means that have nothing to divide by are ``NaN``
(no deploys gives a ``NaN`` change failure rate, no resolved incident a ``NaN`` MTTR);
counts and sums of nothing are ``0``. The uncertainty of a KPI's mean across seeds is
:mod:`orgtwin.runs.stats`' job.

KPIs read the per-tick series (its metrics are declared in
:data:`orgtwin.telemetry.series.SERIES_METRICS`) and the event tables.
Incidents, pages and the DORA metrics come from the event tables, not the series. The
KPIs in money beyond revenue and infrastructure and vendor cost (people, lifetime value,
run rates) are :mod:`orgtwin.world.costs`' job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

import polars as pl

from orgtwin.errors import ResultsError, ScenarioError, TelemetryError, did_you_mean
from orgtwin.scenario.spec import CostSpec, Scenario
from orgtwin.units import DAYS_PER_WEEK, SECONDS_PER_HOUR
from orgtwin.world.costs import SERIES_READ, lifetime_value, whole_cost

CHURN_PERIOD_DAYS = 30
"""The "month" of the monthly churn KPI: a period of 30 days (as the KPI says)."""
LATENCY_QUANTILE = 0.95


class Kpi(NamedTuple):
    """How one KPI is read.

    Attributes:
        unit: the unit of the value (``"%"`` values are percentages, 0..100).
        higher_is_better: ``True``/``False`` when a rise is good/bad, ``None`` when neither.
        description: ``"<label>: <definition>"``; the label names the KPI in prose.
    """

    unit: str
    higher_is_better: bool | None
    description: str

    @property
    def label(self) -> str:
        """The short human name of the KPI (``"Lead time for changes"``)."""
        return self.description.split(":", 1)[0]


KPIS: dict[str, Kpi] = {
    "users": Kpi("users", True, "Active users: active users over all segments at the end"),
    "users_start": Kpi("users", None, "Users at start: active users over all segments at tick 0"),
    "churned": Kpi("users", False, "Churned users: users who left during the run"),
    "acquired": Kpi("users", True, "Acquired users: users who joined during the run"),
    "churn_rate_monthly_pct": Kpi(
        "%", False, "Monthly churn: churned users per mean active user, per 30 days"
    ),
    "revenue_usd": Kpi("USD", True, "Revenue: revenue accrued over the run"),
    "infra_cost_usd": Kpi("USD", False, "Infrastructure cost: service replica cost"),
    "vendor_cost_usd": Kpi("USD", False, "Vendor cost: cost of calls to third parties"),
    "margin_usd": Kpi("USD", True, "Margin: revenue less infrastructure and vendor cost"),
    "people_cost_usd": Kpi(
        "USD", False, "People cost: unplanned work at the hourly cost, plus replacing leavers"
    ),
    "margin_after_people_usd": Kpi(
        "USD", True, "Margin after people cost: revenue less infrastructure, vendor and people cost"
    ),
    "margin_per_day_end_usd": Kpi(
        "USD", True, "Margin per day at the end: margin after people cost a day, last 7 days"
    ),
    "customer_lifetime_value_usd": Kpi(
        "USD", True, "Customer lifetime value: paying users x margin per user-month / churn"
    ),
    "user_growth_monthly_pct": Kpi(
        "%", True, "User growth: net change of active users per 30 days, last 30 days"
    ),
    "availability_pct": Kpi(
        "%", True, "Availability: share of feature requests served without error"
    ),
    "error_budget_used": Kpi(
        "fraction", False, "SLO error budget used: (1 - availability) / (1 - SLO target)"
    ),
    "latency_p95_ms": Kpi(
        "ms", False, "p95 latency: request-weighted 95th percentile of feature p95 latency"
    ),
    "incidents": Kpi("incidents", False, "Incidents: incidents started during the run"),
    "mttr_hours": Kpi("h", False, "Mean time to restore: mean hours from start to resolution"),
    "pages": Kpi("pages", False, "Pages: on-call pages sent"),
    "off_hours_pages": Kpi("pages", False, "Off-hours pages: pages outside working hours"),
    "pages_per_oncall_engineer": Kpi(
        "pages/engineer", False, "Pages per on-call engineer: pages / mean on-call headcount"
    ),
    "fatigue": Kpi(
        "0-1", False, "Fatigue: headcount-weighted mean engineer fatigue (1 is exhausted)"
    ),
    "attrition": Kpi("engineers", False, "Attrition: engineers who left"),
    "unplanned_hours": Kpi(
        "engineer-hours",
        False,
        "Unplanned work: engineer-hours on toil, incident response and pages",
    ),
    "tickets": Kpi("tickets", False, "Support tickets: tickets raised by users"),
    "feature_throughput_per_week": Kpi(
        "changes/week", True, "Feature throughput: changes shipped per week"
    ),
    "deploy_frequency_per_day": Kpi(
        "deploys/day", True, "Deploy frequency: production deploys per day"
    ),
    "lead_time_hours": Kpi(
        "h", False, "Lead time for changes: median hours from change ready to deployed"
    ),
    "change_failure_rate_pct": Kpi("%", False, "Change failure rate: share of deploys that failed"),
    "time_to_restore_hours": Kpi(
        "h", False, "Time to restore: median hours from incident start to resolution"
    ),
}
"""Every KPI of a run summary, in the order of the summary columns."""
KPI_TABLES: tuple[str, ...] = ("deploys", "incidents", "pages")
"""The telemetry tables the KPI summary reads (pass as ``tables=`` when only KPIs matter)."""


def summarise(
    series: pl.DataFrame,
    events: Mapping[str, pl.DataFrame],
    *,
    start: datetime,
    days: int,
    slo_availability: float,
    costs: CostSpec | None = None,
) -> dict[str, float]:
    """Compute every KPI of :data:`KPIS` for one run.

    Args:
        series: the run's per-tick series (schema :data:`orgtwin.telemetry.schemas.SERIES`).
        events: the run's telemetry tables (at least those of :data:`KPI_TABLES`).
        start: wall time of tick 0.
        days: length of the run, days.
        slo_availability: the availability target, a fraction (``0.999``).
        costs: what engineers' time and turnover cost (the defaults of
            :class:`~orgtwin.scenario.spec.CostSpec` when None); see
            :mod:`orgtwin.world.costs`.

    Returns:
        KPI name -> value, in the order of :data:`KPIS`; undefined ratios are ``NaN``.

    Raises:
        TelemetryError: an event table lacks a column the KPIs need.
    """
    series = series.filter(pl.col("metric").is_in(_SERIES_METRICS)).with_columns(
        pl.col("entity_type", "metric").cast(pl.String)
    )
    sums = _sums(series)
    out = _users(series, sums, days=days)
    out |= _money(sums)
    out |= _reliability(series, sums, slo_availability=slo_availability)
    incidents = _within(events["incidents"], start, days)
    out |= _people(series, sums, incidents, events["pages"], days=days)
    out |= dora(events["deploys"], incidents, days=days)
    costs = CostSpec() if costs is None else costs
    out |= whole_cost(series, events["incidents"], start=start, days=days, costs=costs)
    out["customer_lifetime_value_usd"] = lifetime_value(series, days=days, costs=costs)
    return {name: float(out[name]) for name in KPIS}


def check_decides(scenario: Scenario) -> list[str]:
    """The KPIs a scenario's ``decides`` names, if each is a KPI of :data:`KPIS`.

    The scenario format cannot know the KPIs (they are declared a stage above it), so
    :func:`orgtwin.run` checks them here before anything runs.

    Args:
        scenario: the scenario.

    Returns:
        ``scenario.decides``, as a list.

    Raises:
        ScenarioError: a name is not a KPI; every such name is listed, each with a hint.

    Example:
        >>> from orgtwin import load_scenario
        >>> check_decides(load_scenario("scenarios/price_increase.yaml"))[0]
        'margin_after_people_usd'
    """
    problems = [
        ScenarioError(
            scenario.source,
            f"decides[{i}]",
            f"must be a KPI name, got {name!r}",
            did_you_mean(name, KPIS) or "the KPIs are listed in docs/telemetry.md",
        )
        for i, name in enumerate(scenario.decides)
        if name not in KPIS
    ]
    if problems:
        first = problems[0]
        first.errors = problems
        raise first
    return list(scenario.decides)


def dora(deploys: pl.DataFrame, incidents: pl.DataFrame, *, days: int) -> dict[str, float]:
    """The four DORA metrics from deploy and incident events.

    Args:
        deploys: deploy events (:data:`orgtwin.telemetry.schemas.DEPLOYS`), one row per deploy.
        incidents: incident events (:data:`orgtwin.telemetry.schemas.INCIDENTS`); open ones
            (``resolved`` null) do not count towards time to restore.
        days: length of the period the events cover, days.

    Returns:
        ``deploy_frequency_per_day`` (deploys per day), ``lead_time_hours`` (median over
        changes, hours: a deploy of ``batch_size`` changes counts ``batch_size`` times),
        ``change_failure_rate_pct`` (failed deploys per deploy, %) and
        ``time_to_restore_hours`` (median over resolved incidents, hours). Lead time,
        failure rate and time to restore are ``NaN`` when nothing defines them.

    Raises:
        ResultsError: ``days`` is not positive.
        TelemetryError: a table lacks a needed column.

    Example:
        >>> from orgtwin.telemetry import schemas as tables
        >>> kpis = dora(tables.empty("deploys"), tables.empty("incidents"), days=7)
        >>> kpis["deploy_frequency_per_day"], kpis["lead_time_hours"]
        (0.0, nan)
    """
    if days < 1:
        raise ResultsError(f"days must be an integer >= 1, got {days!r}")
    _require(deploys, "deploys", ("batch_size", "failed", "lead_time_hours"))
    n_deploys = deploys.height
    n_failed = int(deploys["failed"].sum())
    return {
        "deploy_frequency_per_day": n_deploys / days,
        "lead_time_hours": _change_weighted_median(deploys),
        "change_failure_rate_pct": 100.0 * n_failed / n_deploys if n_deploys else math.nan,
        "time_to_restore_hours": _median(_restore_hours(incidents)),
    }


# --------------------------------------------------------------------------- series KPIs

_SERIES_METRICS = [
    "active_users", "revenue_usd", "churned", "acquired", "tickets",  # segment
    "cost_usd",  # service, vendor
    "requests", "errors", "latency_p95_ms",  # feature
    "headcount", "oncall_size", "fatigue", "left", "changes_shipped",  # team
    *SERIES_READ,  # the whole cost (orgtwin.world.costs)
]  # fmt: skip


def _sums(series: pl.DataFrame) -> dict[str, float]:
    """Total of every ``entity_type.metric`` over entities and ticks (0 when absent).

    Each total adds its values in row order (a list per group, then summed), so it does
    not depend on how polars splits the work across threads: the same run gives the
    same bits in any process.
    """
    totals = (
        series.group_by("entity_type", "metric")
        .agg(pl.col("value"))
        .with_columns(pl.col("value").list.sum())
    )
    keys = (totals["entity_type"] + "." + totals["metric"]).to_list()
    return dict(zip(keys, totals["value"].to_list(), strict=True))


def _per_tick(series: pl.DataFrame, entity_type: str, metric: str) -> pl.Series:
    """Sum over entities of one metric at each tick, ordered by tick."""
    return (
        series.filter((pl.col("entity_type") == entity_type) & (pl.col("metric") == metric))
        .group_by("tick")
        .agg(pl.col("value"))  # summed in row order: see _sums
        .sort("tick")["value"]
        .list.sum()
    )


def _paired(series: pl.DataFrame, entity_type: str, value: str, weight: str) -> pl.DataFrame:
    """Columns ``value`` and ``weight``: two metrics of the same entity at the same tick."""
    kind = series.filter(pl.col("entity_type") == entity_type)
    left = kind.filter(pl.col("metric") == value).select("entity", "tick", "value")
    right = kind.filter(pl.col("metric") == weight).select(
        "entity", "tick", pl.col("value").alias("weight")
    )
    return left.join(right, on=["entity", "tick"], how="inner", maintain_order="left")


def _users(series: pl.DataFrame, sums: dict[str, float], *, days: int) -> dict[str, float]:
    active = _per_tick(series, "segment", "active_users")
    churned = sums.get("segment.churned", 0.0)
    mean_active = active.mean() if active.len() else 0.0
    return {
        "users": active[-1] if active.len() else 0.0,
        "users_start": active[0] if active.len() else 0.0,
        "churned": churned,
        "acquired": sums.get("segment.acquired", 0.0),
        "churn_rate_monthly_pct": (
            100.0 * churned / mean_active / days * CHURN_PERIOD_DAYS if mean_active else math.nan
        ),
        "tickets": sums.get("segment.tickets", 0.0),
    }


def _money(sums: dict[str, float]) -> dict[str, float]:
    revenue = sums.get("segment.revenue_usd", 0.0)
    infra = sums.get("service.cost_usd", 0.0)
    vendor = sums.get("vendor.cost_usd", 0.0)
    return {
        "revenue_usd": revenue,
        "infra_cost_usd": infra,
        "vendor_cost_usd": vendor,
        "margin_usd": revenue - infra - vendor,
    }


def _reliability(
    series: pl.DataFrame, sums: dict[str, float], *, slo_availability: float
) -> dict[str, float]:
    requests = sums.get("feature.requests", 0.0)
    errors = sums.get("feature.errors", 0.0)
    availability = 1.0 - errors / requests if requests else math.nan
    latency = _paired(series, "feature", "latency_p95_ms", "requests")
    return {
        "availability_pct": 100.0 * availability,
        "error_budget_used": (1.0 - availability) / (1.0 - slo_availability),
        "latency_p95_ms": weighted_quantile(latency["value"], latency["weight"], LATENCY_QUANTILE),
    }


def _people(
    series: pl.DataFrame,
    sums: dict[str, float],
    incidents: pl.DataFrame,
    pages: pl.DataFrame,
    *,
    days: int,
) -> dict[str, float]:
    _require(pages, "pages", ("off_hours",))
    n_pages = pages.height
    oncall = _per_tick(series, "team", "oncall_size").mean()
    fatigue = _paired(series, "team", "fatigue", "headcount")
    headcount = fatigue["weight"].sum()
    restore = _restore_hours(incidents)
    return {
        "incidents": float(incidents.height),
        "mttr_hours": float(restore.mean()) if restore.len() else math.nan,  # type: ignore[arg-type]
        "pages": float(n_pages),
        "off_hours_pages": float(pages["off_hours"].sum()),
        "pages_per_oncall_engineer": n_pages / oncall if oncall else math.nan,
        "fatigue": (
            (fatigue["value"] * fatigue["weight"]).sum() / headcount if headcount else math.nan
        ),
        "attrition": sums.get("team.left", 0.0),
        "feature_throughput_per_week": (
            sums.get("team.changes_shipped", 0.0) / days * DAYS_PER_WEEK
        ),
    }


# --------------------------------------------------------------------------- helpers


def weighted_quantile(values: pl.Series, weights: pl.Series, q: float) -> float:
    """The ``q`` quantile of ``values`` where each value counts ``weights`` times.

    The result is the smallest value at or below which at least ``q`` of the total weight
    lies (the inverse of the weighted distribution function, no interpolation).

    Args:
        values: the values, any order.
        weights: non-negative weights aligned with ``values``.
        q: the quantile, 0..1.

    Returns:
        The quantile, or ``NaN`` when the total weight is zero.

    Example:
        >>> weighted_quantile(pl.Series([10.0, 500.0]), pl.Series([96.0, 4.0]), 0.95)
        10.0
    """
    frame = pl.DataFrame({"v": values, "w": weights}).drop_nulls().drop_nans().sort("v")
    total = frame["w"].sum()
    if not total or total <= 0:
        return math.nan
    frame = frame.with_columns(cum=pl.col("w").cum_sum())
    hit = frame.filter(pl.col("cum") >= q * total * (1.0 - 1e-12))
    return float(hit["v"][0])


def _change_weighted_median(deploys: pl.DataFrame) -> float:
    """Median lead time over changes: the median of each deploy repeated batch_size times."""
    frame = (
        deploys.select("lead_time_hours", pl.col("batch_size").cast(pl.Int64))
        .drop_nulls()
        .filter(pl.col("batch_size") > 0)
        .sort("lead_time_hours")
        .with_columns(cum=pl.col("batch_size").cum_sum())
    )
    n_changes = int(frame["batch_size"].sum())
    if n_changes == 0:
        return math.nan
    # 0-based positions of the middle change(s) in the expanded, sorted list.
    middle = [(n_changes - 1) // 2, n_changes // 2]
    picks = [frame.filter(pl.col("cum") > k)["lead_time_hours"][0] for k in middle]
    return float(sum(picks) / 2.0)


def _restore_hours(incidents: pl.DataFrame) -> pl.Series:
    """Hours from start to resolution of every resolved incident."""
    _require(incidents, "incidents", ("started", "resolved"))
    span = (pl.col("resolved") - pl.col("started")).dt.total_seconds(fractional=True)
    span = span / SECONDS_PER_HOUR
    return incidents.filter(pl.col("resolved").is_not_null()).select(span.alias("h"))["h"]


def _median(values: pl.Series) -> float:
    """Median of ``values``, ``NaN`` when there are none."""
    return float(values.median()) if values.len() else math.nan  # type: ignore[arg-type]


PLANNED_CAUSES = ("chaos",)
"""Incident causes that are planned exercises, not failures: left out of incident KPIs."""


def _within(incidents: pl.DataFrame, start: datetime, days: int) -> pl.DataFrame:
    """Unplanned incidents that started in ``[start, start + days)``."""
    _require(incidents, "incidents", ("started", "cause"))
    end = start + timedelta(days=days)
    return incidents.filter(
        pl.col("started").is_between(start, end, closed="left"),
        ~pl.col("cause").is_in(PLANNED_CAUSES),
    )


def _require(frame: pl.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TelemetryError(
            f"{name} table must have columns {', '.join(columns)}, "
            f"got {', '.join(frame.columns) or 'no columns'}"
        )


# --------------------------------------------------------------------------- across seeds
