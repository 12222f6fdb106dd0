"""The verdict: one paragraph that answers a scenario's question, with its uncertainty.

A scenario states its ``question`` and the KPIs that answer it (``decides``, most
important first). :func:`verdict` reads the comparison of the scenario's runs with its
base's and says, KPI by KPI in that order, how much each moved and how sure that is: a
change whose 95% interval spans zero is *not distinguishable from zero*, never a rise or
a fall. Numbers are formatted for their unit (:mod:`orgtwin.units`).

**The projection.** With ``horizon_days`` beyond the run, the verdict adds the margin
after people cost over the whole horizon: the run's own, plus, for each seed, each
scenario's margin per day over its last week carried forward with its users growing or
shrinking at their net growth rate of the last 30 days, compounded daily
(:func:`orgtwin.world.costs.project`). The difference is paired by seed like the
comparison, with its interval across seeds. It is a projection, labelled as one: prices,
costs and behaviours stay as they were at the end of the run, and a user base that
shrinks a little faster takes a little more margin with it every day.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from orgtwin.errors import ExploreError, whole_number
from orgtwin.runs import stats
from orgtwin.runs.comparison import compare
from orgtwin.runs.results import RunSet
from orgtwin.scenario.spec import Scenario
from orgtwin.units import format_delta, format_value, with_unit
from orgtwin.world.costs import project
from orgtwin.world.kpis import KPIS, check_decides

PROJECTED_KPI = "margin_after_people_usd"
"""The KPI a projection carries beyond the run."""
MAX_HORIZON_DAYS = 3650
"""Longest horizon a verdict projects to, days (ten years)."""


def verdict(
    base: RunSet,
    change: RunSet,
    scenario: Scenario,
    *,
    horizon_days: int | None = None,
    confidence: float = 0.95,
) -> str:
    """One paragraph answering ``scenario.question`` from its runs against its base's.

    Args:
        base: the base scenario's runs.
        change: the scenario's runs, on the same seeds for a paired comparison.
        scenario: the scenario (its ``question`` and ``decides``; without ``decides`` the
            verdict leads with margin after people cost and users).
        horizon_days: days to answer for; beyond the run's days, the margin is projected
            (see the module docstring). Default: the run's days, no projection.
        confidence: coverage of the intervals, 0..1 exclusive.

    Returns:
        The paragraph, one line of text.

    Raises:
        ScenarioError: ``decides`` names something that is not a KPI.
        ExploreError: ``horizon_days`` is not a whole number from the run's days to
            :data:`MAX_HORIZON_DAYS`.

    Example:
        >>> import orgtwin
        >>> sc = orgtwin.load_scenario("scenarios/price_increase.yaml")
        >>> base = orgtwin.run(orgtwin.base_of(sc), days=21, seeds=2)
        >>> change = orgtwin.run(sc, days=21, seeds=2)
        >>> verdict(base, change, sc, horizon_days=365).startswith("If we raise the Pro plan")
        True
    """
    decides = check_decides(scenario) or [PROJECTED_KPI, "users"]
    days = change.days
    horizon = days if horizon_days is None else horizon_days
    horizon = whole_number(
        horizon, name="horizon_days", low=days, high=MAX_HORIZON_DAYS, error=ExploreError
    )
    table = compare(base, change, kpis=decides, confidence=confidence)
    rows = {row["kpi"]: row for row in table.iter_rows(named=True)}
    level = f"{100.0 * confidence:g}%"
    paired = ", paired by seed" if set(table["method"]) == {"paired"} else ""
    parts = [scenario.question.strip()] if scenario.question.strip() else []
    clauses = [_clause(rows[kpi], level) for kpi in decides]
    parts.append(
        f"Over {days} days ({len(change)} seeds{paired}), against {base.scenario}, "
        f"{scenario.name} {_join(clauses)}."
    )
    parts.append(_answer(rows[decides[0]], level))
    if horizon > days:
        parts.append(_projection(base, change, horizon - days, horizon, level, confidence))
    return " ".join(parts)


# --------------------------------------------------------------------------- sentences


def _clause(row: dict[str, Any], level: str) -> str:
    """What one KPI did: ``adds $380,112 to margin after people cost (95% CI …)``."""
    kpi, unit = row["kpi"], row["unit"]
    label = _lower(KPIS[kpi].label)
    delta = row["delta"]
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return f"leaves {label} without an estimate"
    interval = _interval(row, level)
    if not row["significant"]:
        said = with_unit(format_delta(delta, unit), unit)
        return f"changes {label} by {said}, not distinguishable from zero ({interval})"
    size = with_unit(format_value(abs(delta), unit), unit) if unit != "%" else _pp(delta)
    if unit == "USD":
        verb = "adds" if delta > 0 else "takes"
        return f"{verb} {size} {'to' if delta > 0 else 'off'} {label} ({interval})"
    if unit == "users":
        more = "more" if delta > 0 else "fewer"
        return f"ends with {format_value(abs(delta), unit)} {more} {label} ({interval})"
    verb = "raises" if delta > 0 else "lowers"
    start = with_unit(format_value(row["base_mean"], unit), unit)
    end = with_unit(format_value(row["change_mean"], unit), unit)
    return f"{verb} {label} by {size}, from {start} to {end} ({interval})"


def _answer(row: dict[str, Any], level: str) -> str:
    """The answer on the KPI that decides first."""
    label = _lower(KPIS[row["kpi"]].label)
    if not row["significant"]:
        why = (
            "the same in every seed"
            if row["direction"] == "flat"
            else "more seeds or a longer run may tell them apart"
        )
        return (
            f"On {label}, what decides first, the change is not distinguishable from zero "
            f"at {level}: {why}."
        )
    better = row["better"]
    judged = {True: "better", False: "worse"}.get(better, "different")
    return f"On {label}, what decides first, the change is {judged} beyond noise at {level}."


def _projection(
    base: RunSet, change: RunSet, extra: int, horizon: int, level: str, confidence: float
) -> str:
    """The margin over the horizon: the run's, plus each seed's run rates carried forward."""
    low, mid, high = _projected_delta(base, change, extra, confidence)
    label = _lower(KPIS[PROJECTED_KPI].label)
    method = (
        f"a projection, not a simulation: each run's {label} per day over its last week "
        "carried forward, its users growing or shrinking at their rate of the last 30 days"
    )
    if mid is None or math.isnan(mid):
        return f"Projected to {horizon} days ({method}), there is no estimate."
    said = format_delta(mid, "USD")
    interval = (
        f"{level} CI {format_delta(low, 'USD')} to {format_delta(high, 'USD')}"
        if low is not None and high is not None
        else f"no {level} interval with fewer than two seeds"
    )
    spans = low is None or high is None or low <= 0.0 <= high
    judged = (
        "not distinguishable from zero" if spans else ("still positive" if mid > 0 else "negative")
    )
    return (
        f"Projected to {horizon} days ({method}), the change in {label} comes to {said} "
        f"({interval}): {judged}."
    )


def _projected_delta(
    base: RunSet, change: RunSet, extra: int, confidence: float
) -> tuple[float | None, float | None, float | None]:
    """Interval and mean of the change in margin over the horizon, paired by seed if it can."""
    a, b = _horizon_margin(base.summary, extra), _horizon_margin(change.summary, extra)
    paired = set(a) == set(b) and len(a) == base.summary.height == change.summary.height
    if paired:
        diffs = np.array([b[seed] - a[seed] for seed in a])
        mean, half, _ = stats.mean_interval(diffs, confidence=confidence)
    else:
        x, y = np.array(list(a.values())), np.array(list(b.values()))
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        mean = float(y.mean() - x.mean()) if x.size and y.size else None
        half = stats.welch_half_width(x, y, confidence=confidence)
    if mean is None or half is None:
        return None, mean, None
    return mean - half, mean, mean + half


def _horizon_margin(summary: pl.DataFrame, extra: int) -> dict[int, float]:
    """Seed -> margin after people cost of the run plus its projection over ``extra`` days."""
    return {
        row["seed"]: row[PROJECTED_KPI]
        + project(row["margin_per_day_end_usd"], row["user_growth_monthly_pct"], extra)
        for row in summary.iter_rows(named=True)
    }


def _interval(row: dict[str, Any], level: str) -> str:
    unit, low, high = row["unit"], row["ci_low"], row["ci_high"]
    if low is None or high is None:
        return f"no {level} interval with fewer than two seeds"
    if unit == "%":
        return f"{level} CI {format_delta(low, unit)[:-3]} to {format_delta(high, unit)}"
    span = f"{format_delta(low, unit)} to {format_delta(high, unit)}"
    return f"{level} CI {with_unit(span, unit)}"


def _pp(delta: float) -> str:
    """A change of a percentage, unsigned: ``0.23 pp``."""
    return format_delta(abs(delta), "%")[1:]


def _lower(label: str) -> str:
    """A label inside a sentence: ``Active users`` -> ``active users``, ``SLO …`` kept."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _join(clauses: list[str]) -> str:
    if len(clauses) <= 1:
        return "".join(clauses)
    return "; ".join(clauses[:-1]) + "; and " + clauses[-1]
