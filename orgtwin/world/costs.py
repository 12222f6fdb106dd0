"""The whole cost of a run: people in money, the lifetime value of users, run rates.

The KPIs declared in :data:`orgtwin.world.kpis.KPIS` that put engineers' time and the
future of the user base in money are computed here, from the run's series and incident
table and the scenario's cost settings (:class:`orgtwin.scenario.spec.CostSpec`). The
simulation never reads these settings: they price what it did.

- **Unplanned work** (engineer-hours): toil (the series' ``team.toil_hours``), incident
  response (:data:`RESPONDERS_PER_INCIDENT` engineers for every hour from an incident's
  detection to its resolution, or to the end of the run, drills included: they take
  people's time too) and pages (``costs.hours_per_page`` for every page).
- **People cost** (USD): unplanned work at ``costs.engineer_cost_usd_hour``, plus
  ``costs.replacement_cost_usd`` for every engineer who left.
- **Customer lifetime value** (USD): for each segment with paying users at the end, its
  paying users × margin per user-month / (monthly churn + monthly discount rate), over
  the run's last :data:`LIFETIME_WINDOW_DAYS` days. The margin per user-month is the
  segment's revenue per paying user-month less the infrastructure and vendor cost per
  active user-month (free users' cost is not charged to paying users). The monthly churn
  is the segment's churned users per mean active user, per month; the discount rate
  comes from ``costs.discount_rate_yearly``, so that a segment that never churns still
  has a finite value. A month is :data:`orgtwin.units.DAYS_PER_MONTH` days.
- **Run rates**, which the verdict projects beyond the run: the margin after people cost
  per day over the last :data:`RATE_WINDOW_DAYS` days, and the net growth of active
  users per 30 days over the last :data:`GROWTH_WINDOW_DAYS` days, compounded.

Windows shorter than the run are trailing windows ending at the run's last hour; a run
shorter than a window uses all of it.
"""

from __future__ import annotations

import math
from datetime import datetime

import polars as pl

from orgtwin.agents.teams import RESPONDERS_PER_INCIDENT
from orgtwin.scenario.spec import CostSpec
from orgtwin.units import DAYS_PER_MONTH, HOURS_PER_DAY, HOURS_PER_MONTH, SECONDS_PER_HOUR

RATE_WINDOW_DAYS = 7
"""Days at the end of a run over which the margin run rate is measured (a whole week)."""
LIFETIME_WINDOW_DAYS = 30
"""Days at the end of a run over which price, cost per user and churn are measured."""
GROWTH_WINDOW_DAYS = 30
"""Days at the end of a run over which the growth of active users is measured."""
GROWTH_PERIOD_DAYS = 30
"""The "month" of the growth KPI, days (as the monthly churn KPI)."""

SERIES_READ = ("active_users", "paying_users", "revenue_usd", "churned", "cost_usd",
                  "toil_hours", "pages", "left")  # fmt: skip
"""The series metrics these KPIs read."""


def whole_cost(
    series: pl.DataFrame,
    incidents: pl.DataFrame,
    *,
    start: datetime,
    days: int,
    costs: CostSpec,
) -> dict[str, float]:
    """Unplanned work, people cost, margin after people cost and the run rates.

    Args:
        series: the run's per-tick series (hourly), ``entity_type`` and ``metric`` as text.
        incidents: every incident of the run, drills included.
        start: wall time of tick 0.
        days: length of the run, days.
        costs: what engineers' time and turnover cost.

    Returns:
        ``unplanned_hours``, ``people_cost_usd``, ``margin_after_people_usd``,
        ``margin_per_day_end_usd`` and ``user_growth_monthly_pct``.
    """
    end = days * HOURS_PER_DAY
    hours, people = _people(series, incidents, 0, end, start, costs)
    margin = _money(series, 0, end) - people
    window = min(RATE_WINDOW_DAYS, days)
    lo = end - window * HOURS_PER_DAY
    _, people_end = _people(series, incidents, lo, end, start, costs)
    margin_end = _money(series, lo, end) - people_end
    return {
        "unplanned_hours": hours,
        "people_cost_usd": people,
        "margin_after_people_usd": margin,
        "margin_per_day_end_usd": margin_end / window,
        "user_growth_monthly_pct": _growth(series, end),
    }


def lifetime_value(series: pl.DataFrame, *, days: int, costs: CostSpec) -> float:
    """Customer lifetime value of the paying users at the end of a run (see the module).

    Args:
        series: the run's per-tick series (hourly), ``entity_type`` and ``metric`` as text.
        days: length of the run, days.
        costs: the discount rate of future margin.

    Returns:
        The value, USD: 0 when nobody pays at the end. The discount rate is at least 1%
        (:class:`~orgtwin.scenario.spec.CostSpec`), so users who never leave have a
        finite value.
    """
    end = days * HOURS_PER_DAY
    window = min(LIFETIME_WINDOW_DAYS, days)
    lo = end - window * HOURS_PER_DAY
    months = window / DAYS_PER_MONTH
    cost = _sum(series, "service", "cost_usd", lo, end)
    cost += _sum(series, "vendor", "cost_usd", lo, end)
    user_months = _sum(series, "segment", "active_users", lo, end) / HOURS_PER_MONTH
    cost_per_user_month = cost / user_months if user_months else 0.0
    discount = (1.0 + costs.discount_rate_yearly) ** (1.0 / 12.0) - 1.0
    total = 0.0
    for segment in _entities(series, "segment"):
        paying_end = _at(series, "segment", "paying_users", end - 1, segment)
        paying_months = _sum(series, "segment", "paying_users", lo, end, segment) / HOURS_PER_MONTH
        if paying_end <= 0 or paying_months <= 0:
            continue
        price = _sum(series, "segment", "revenue_usd", lo, end, segment) / paying_months
        active_mean = _sum(series, "segment", "active_users", lo, end, segment) / (end - lo)
        churned = _sum(series, "segment", "churned", lo, end, segment)
        churn = churned / active_mean / months if active_mean else 0.0
        total += paying_end * (price - cost_per_user_month) / (churn + discount)
    return total


def project(margin_per_day: float, growth_monthly_pct: float, extra_days: int) -> float:
    """Margin over ``extra_days`` after a run: its end rate carried forward, compounding.

    Day ``t`` after the run earns ``margin_per_day × g^t``, where ``g`` is the daily
    factor of the users' net growth (``(1 + growth_monthly_pct / 100) ^ (1/30)``): a user
    base that shrinks takes its margin with it, day after day. It is a projection, not a
    simulation: prices, costs and behaviours stay as they were at the end of the run.

    Args:
        margin_per_day: margin after people cost per day at the end of the run, USD.
        growth_monthly_pct: net growth of active users per 30 days at the end, %.
        extra_days: days projected beyond the run, 0 or more.

    Returns:
        The projected margin, USD (``NaN`` when either rate is ``NaN``).

    Example:
        >>> project(100.0, 0.0, 30), round(project(100.0, -10.0, 30))
        (3000.0, 2842)
    """
    if extra_days <= 0:
        return 0.0
    if math.isnan(margin_per_day) or math.isnan(growth_monthly_pct):
        return math.nan
    g = (1.0 + growth_monthly_pct / 100.0) ** (1.0 / GROWTH_PERIOD_DAYS)
    if abs(g - 1.0) < 1e-12:
        return margin_per_day * extra_days
    return margin_per_day * g * (g**extra_days - 1.0) / (g - 1.0)


# --------------------------------------------------------------------------- helpers


def _people(
    series: pl.DataFrame, incidents: pl.DataFrame, lo: int, hi: int, start: datetime,
    costs: CostSpec,
) -> tuple[float, float]:  # fmt: skip
    """Unplanned engineer-hours and people cost (USD) of ticks ``[lo, hi)``."""
    toil = _sum(series, "team", "toil_hours", lo, hi)
    pages = _sum(series, "team", "pages", lo, hi)
    left = _sum(series, "team", "left", lo, hi)
    hours = toil + response_hours(incidents, start=start, lo=lo, hi=hi)
    hours += pages * costs.hours_per_page
    return hours, hours * costs.engineer_cost_usd_hour + left * costs.replacement_cost_usd


def response_hours(incidents: pl.DataFrame, *, start: datetime, lo: int, hi: int) -> float:
    """Engineer-hours of incident response that fall in ticks ``[lo, hi)``.

    Every incident takes :data:`RESPONDERS_PER_INCIDENT` engineers from its detection to
    its resolution (an open one: to ``hi``); an undetected one takes nobody yet.

    Args:
        incidents: incident events (``detected``, ``resolved``), drills included.
        start: wall time of tick 0.
        lo: first tick of the window.
        hi: the tick after the window's last.

    Returns:
        Responder-hours within the window.
    """
    if incidents.is_empty():
        return 0.0

    def tick(column: str) -> pl.Expr:
        since = (pl.col(column) - pl.lit(start)).dt.total_seconds(fractional=True)
        return since / SECONDS_PER_HOUR

    span = incidents.filter(pl.col("detected").is_not_null()).select(
        tick("detected").clip(lo, hi).alias("from"),
        tick("resolved").fill_null(float(hi)).clip(lo, hi).alias("to"),
    )
    hours = (span["to"] - span["from"]).clip(lower_bound=0.0)
    return RESPONDERS_PER_INCIDENT * float(sum(hours.to_list()))


def _money(series: pl.DataFrame, lo: int, hi: int) -> float:
    """Revenue less infrastructure and vendor cost of ticks ``[lo, hi)``."""
    revenue = _sum(series, "segment", "revenue_usd", lo, hi)
    return (
        revenue
        - _sum(series, "service", "cost_usd", lo, hi)
        - _sum(series, "vendor", "cost_usd", lo, hi)
    )


def _growth(series: pl.DataFrame, end: int) -> float:
    """Net growth of active users per 30 days over the last days of the run, %."""
    last = end - 1
    first = max(last - GROWTH_WINDOW_DAYS * HOURS_PER_DAY, 0)
    span_days = (last - first) / HOURS_PER_DAY
    start_users = _at(series, "segment", "active_users", first)
    if span_days <= 0 or start_users <= 0:
        return math.nan
    ratio = _at(series, "segment", "active_users", last) / start_users
    return 100.0 * (ratio ** (GROWTH_PERIOD_DAYS / span_days) - 1.0)


def _of(series: pl.DataFrame, entity_type: str, metric: str, entity: str | None) -> pl.DataFrame:
    rows = series.filter((pl.col("entity_type") == entity_type) & (pl.col("metric") == metric))
    return rows if entity is None else rows.filter(pl.col("entity") == entity)


def _sum(
    series: pl.DataFrame, entity_type: str, metric: str, lo: int, hi: int,
    entity: str | None = None,
) -> float:  # fmt: skip
    """Total of one metric over ticks ``[lo, hi)`` (and one entity, or all)."""
    rows = _of(series, entity_type, metric, entity).filter(pl.col("tick").is_between(lo, hi - 1))
    return float(sum(rows["value"].to_list()))  # in row order: the same bits in any process


def _at(
    series: pl.DataFrame, entity_type: str, metric: str, tick: int, entity: str | None = None
) -> float:
    """Sum over entities of one metric at one tick."""
    rows = _of(series, entity_type, metric, entity).filter(pl.col("tick") == tick)
    return float(sum(rows["value"].to_list()))


def _entities(series: pl.DataFrame, entity_type: str) -> list[str]:
    """Names of the entities of one type, in the order of their first row."""
    names = series.filter(pl.col("entity_type") == entity_type)["entity"]
    return names.unique(maintain_order=True).to_list()
