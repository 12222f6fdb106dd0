"""Figures for pages: KPI cards from a comparison, and time series with bands across seeds.

Pure polars: a page turns these frames and dicts into cards and charts. Both work on
full run sets (:func:`orgtwin.run`) and lean ones (:mod:`orgtwin.explore`, series as
daily means).

Example:
    >>> import orgtwin
    >>> runs = orgtwin.run("scenarios/baseline.yaml", days=3, seeds=2)
    >>> series_bands(runs, entity_type="team", metric="pages").columns
    ['day', 'mean', 'low', 'high', 'n']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import polars as pl

from orgtwin.errors import ResultsError, did_you_mean, in_brackets
from orgtwin.runs import stats
from orgtwin.runs.results import RunSet
from orgtwin.telemetry import series as registry
from orgtwin.units import HOURS_PER_DAY, format_delta, format_value, with_unit
from orgtwin.world.kpis import KPIS

HEADLINE_KPIS: tuple[str, ...] = (
    "users", "churn_rate_monthly_pct", "revenue_usd", "margin_after_people_usd",
    "infra_cost_usd", "availability_pct",
    "latency_p95_ms", "incidents", "off_hours_pages", "fatigue", "lead_time_hours",
    "change_failure_rate_pct", "deploy_frequency_per_day",
)  # fmt: skip
"""KPIs the Explore page shows as cards, in order."""
Freq = Literal["day", "week"]


def kpi_cards(
    comparison: pl.DataFrame, kpis: Sequence[str] = HEADLINE_KPIS, *, confidence: float = 0.95
) -> list[dict[str, Any]]:
    """One card per KPI: base, change and the change's interval, formatted for people.

    Args:
        comparison: `Exploration.comparison` (:mod:`orgtwin.explore`) or any
            :func:`orgtwin.runs.comparison.compare` result.
        kpis: the KPIs to show, in order; they must be in ``comparison``.
        confidence: the coverage ``comparison`` was computed with (for the words).

    Returns:
        Dicts with ``kpi``, ``label``, ``unit``, ``base``, ``change``, ``delta``,
        ``rel_delta``, ``ci_low``, ``ci_high``, ``significant``, ``better`` (None when
        the KPI has no good direction or did not move), ``direction``, ``base_text``,
        ``change_text``, ``delta_text`` and ``text`` (``"+0.40 pp (95% CI +0.20 to
        +0.60 pp)"``).

    Raises:
        ResultsError: a KPI is not in ``comparison``.
    """
    rows = {row["kpi"]: row for row in comparison.iter_rows(named=True)}
    level = f"{100 * confidence:g}%"
    cards = []
    for kpi in kpis:
        if kpi not in rows:
            raise ResultsError(
                f"kpis must be KPIs of the comparison, got {kpi!r}"
                + in_brackets(did_you_mean(kpi, rows))
            )
        row = rows[kpi]
        unit = row["unit"]
        delta_text = with_unit(format_delta(row["delta"], unit), unit)
        low, high = row["ci_low"], row["ci_high"]
        interval = (
            f"{level} CI {_bare(format_delta(low, unit))} to "
            f"{with_unit(format_delta(high, unit), unit)}"
            if low is not None and high is not None
            else f"no {level} CI with fewer than 2 seeds"
        )
        cards.append({
            "kpi": kpi, "label": KPIS[kpi].label, "unit": unit,
            "base": row["base_mean"], "change": row["change_mean"], "delta": row["delta"],
            "rel_delta": row["rel_delta"], "ci_low": low, "ci_high": high,
            "significant": bool(row["significant"]), "better": row["better"],
            "direction": row["direction"],
            "base_text": with_unit(format_value(row["base_mean"], unit), unit),
            "change_text": with_unit(format_value(row["change_mean"], unit), unit),
            "delta_text": delta_text, "text": f"{delta_text} ({interval})",
        })  # fmt: skip
    return cards


def _bare(text: str) -> str:
    return text.removesuffix(" pp")


def series_bands(
    runset: RunSet,
    *,
    entity_type: str,
    metric: str,
    entity: str | None = None,
    freq: Freq = "day",
    confidence: float = 0.95,
) -> pl.DataFrame:
    """A metric over time: its mean across seeds with a confidence band, for a chart.

    Each seed's value per period is first made from its series: within a period, gauges
    are averaged and accrued figures (such as ``churned`` or ``pages``, see
    :data:`~orgtwin.telemetry.series.SERIES_METRICS`)
    are summed (a day's total); across entities (``entity=None``), levels and rates
    (intensive metrics) are averaged and the others summed. The band is the Student-t
    interval of the mean across seeds (``confidence``), not the spread of the seeds.

    Args:
        runset: a run set (lean or full).
        entity_type: ``segment``, ``service``, ``vendor``, ``feature`` or ``team``.
        metric: a metric of that type (see :mod:`orgtwin.telemetry.series`).
        entity: one entity's name, or None for all of them together.
        freq: ``"day"`` or ``"week"`` (7-day periods from the start).
        confidence: coverage of the band, 0..1 exclusive.

    Returns:
        Columns ``day`` (first day of the period, 0-based), ``mean``, ``low``, ``high``
        and ``n`` (seeds); with one seed, ``low`` and ``high`` equal ``mean``.

    Raises:
        ResultsError: an unknown entity type, metric, entity or frequency.
    """
    stats.check_confidence(confidence)
    _check_series_request(runset, entity_type, metric, entity, freq)
    declared = registry.metric(entity_type, metric)
    accrued = declared.accrues
    rows = runset.series.lazy().filter(
        pl.col("entity_type") == entity_type, pl.col("metric") == metric,
        *([pl.col("entity") == entity] if entity is not None else []),
    )  # fmt: skip
    day = (pl.col("tick") // HOURS_PER_DAY).cast(pl.Int64).alias("day")
    per_entity = rows.group_by("seed", "entity", day).agg(pl.col("value").mean())
    across = pl.col("value").mean() if declared.intensive else pl.col("value").sum()
    daily = per_entity.group_by("seed", "day").agg(across)
    if accrued:
        daily = daily.with_columns(pl.col("value") * HOURS_PER_DAY)
    if freq == "week":
        period = (pl.col("day") // 7 * 7).alias("day")
        within = pl.col("value").sum() if accrued else pl.col("value").mean()
        daily = daily.group_by("seed", period).agg(within)
    out = daily.group_by("day").agg(
        pl.col("value").mean().alias("mean"),
        pl.col("value").std().fill_null(0.0).alias("sd"),
        pl.len().alias("n"),
    )
    frame = out.sort("day").collect()
    quantiles = {n: _t(n, confidence) for n in frame["n"].unique().to_list()}
    t = frame["n"].replace_strict(quantiles, return_dtype=pl.Float64)
    half = (t * frame["sd"] / frame["n"].cast(pl.Float64).sqrt()).fill_nan(0.0)
    return frame.select(
        "day", "mean", (pl.col("mean") - half).alias("low"), (pl.col("mean") + half).alias("high"),
        pl.col("n").cast(pl.Int64),
    )  # fmt: skip


def _t(n: int, confidence: float) -> float:
    """Student-t quantile of a two-sided interval from ``n`` values (0 below two)."""
    return stats.t_quantile(0.5 + confidence / 2.0, n - 1) if n >= 2 else 0.0


def _check_series_request(
    runset: RunSet, entity_type: str, metric: str, entity: str | None, freq: str
) -> None:
    if entity_type not in registry.ENTITY_TYPES:
        raise ResultsError(
            f"entity_type must be one of {', '.join(registry.ENTITY_TYPES)}, got {entity_type!r}"
            + in_brackets(did_you_mean(entity_type, registry.ENTITY_TYPES))
        )
    known = registry.metrics_of(entity_type)
    if metric not in known:
        raise ResultsError(
            f"metric must be a {entity_type} metric ({', '.join(known)}), got {metric!r}"
            + in_brackets(did_you_mean(metric, known))
        )
    if freq not in ("day", "week"):
        raise ResultsError(f"freq must be 'day' or 'week', got {freq!r}")
    if entity is not None:
        names = (
            runset.series.lazy().filter(pl.col("entity_type") == entity_type)
            .select(pl.col("entity").cast(pl.String).unique()).collect()["entity"].to_list()
        )  # fmt: skip
        if entity not in names:
            raise ResultsError(
                f"entity must be a {entity_type} of {runset.scenario}, got {entity!r}"
                + in_brackets(did_you_mean(entity, names))
            )
