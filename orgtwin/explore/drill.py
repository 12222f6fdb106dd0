"""Drill into a ripple: what moved at one figure of the chain, or at one node of the graph.

:func:`drill` answers a click on the ripple: for a figure of the chain (``"pages"``,
``"incidents"``, ``"error_budget_used"``…) which teams, services or segments carried its
move, each with its own paired interval across seeds, and the events behind it (the
incidents, the pages); for a node of the graph (``"team:web"``) which of its figures
moved. Read from the runs' series and tables: the same seeds pair up, as in the ripple.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import polars as pl

from orgtwin.errors import ExploreError
from orgtwin.explore import mechanisms
from orgtwin.explore.ripple import paired_move
from orgtwin.runs.results import RunSet
from orgtwin.telemetry import series as series_metrics
from orgtwin.units import HOURS_PER_DAY

MAX_EVENTS = 50
"""Most event rows a drill returns."""


class Source(NamedTuple):
    """Where a figure's per-entity breakdown is read.

    Attributes:
        entity_type: ``"team"``, ``"service"``, ``"segment"`` or ``"vendor"``.
        metric: a series metric of that entity type, or a table read (``"incidents"``,
            ``"deploys"``, ``"failed"``, ``"batch_size"``, ``"lead_time_hours"``,
            ``"restore_hours"``, ``"failed_pct"``).
        table: the event table the figure's events come from, or None.
    """

    entity_type: str
    metric: str
    table: str | None = None


SOURCES: dict[str, Source] = {
    "batch_size": Source("team", "batch_size", "deploys"),
    "lead_time_hours": Source("team", "lead_time_hours", "deploys"),
    "deploy_frequency_per_day": Source("team", "deploys", "deploys"),
    "change_failure_rate_pct": Source("team", "failed_pct", "deploys"),
    "failed_deploys": Source("team", "failed_deploys", "deploys"),
    "incidents": Source("service", "incidents", "incidents"),
    "pages": Source("team", "pages", "pages"),
    "off_hours_pages": Source("team", "off_hours_pages", "pages"),
    "pages_per_oncall_engineer": Source("team", "pages", "pages"),
    "fatigue": Source("team", "fatigue"),
    "expertise": Source("team", "expertise"),
    "time_to_restore_hours": Source("team", "restore_hours", "incidents"),
    "mttr_hours": Source("team", "restore_hours", "incidents"),
    "attrition": Source("team", "left"),
    "headcount": Source("team", "headcount"),
    "toil_hours": Source("team", "toil_hours"),
    "feature_hours": Source("team", "feature_hours"),
    "feature_throughput_per_week": Source("team", "changes_shipped"),
    "churn_rate_monthly_pct": Source("segment", "churned"),
    "acquired": Source("segment", "acquired"),
    "users": Source("segment", "active_users"),
    "sessions": Source("segment", "sessions"),
    "load": Source("service", "demand_rps"),
    "preemptions": Source("service", "preempted_replicas"),
    "error_budget_used": Source("service", "error_rate"),
    "latency_p95_ms": Source("service", "latency_p95_ms"),
    "bad_sessions": Source("segment", "bad_sessions"),
    "tickets": Source("segment", "tickets"),
    "revenue_usd": Source("segment", "revenue_usd"),
    "infra_cost_usd": Source("service", "cost_usd"),
    "vendor_cost_usd": Source("vendor", "cost_usd"),
}
"""Figure of the chain -> where its breakdown by entity is read."""
_TABLE_READS = {"incidents": "incidents", "deploys": "deploys", "failed_pct": "%",
                "batch_size": "changes", "lead_time_hours": "h", "restore_hours": "h"}  # fmt: skip
"""The figures read from the event tables rather than the series, with their units."""
_UNIT_SUFFIXES = ("_usd", "_rps", "_ms", "_hours", "_pct")
_COLUMNS = {"entity": pl.String, "metric": pl.String, "figure": pl.String, "unit": pl.String,
            "base": pl.Float64,
            "change": pl.Float64, "delta": pl.Float64, "ci_low": pl.Float64,
            "ci_high": pl.Float64, "rel_change": pl.Float64, "significant": pl.Boolean,
            "share": pl.Float64}  # fmt: skip


@dataclass(frozen=True, eq=False)
class Drill:
    """What moved at one figure or node.

    Attributes:
        key: the figure (``"pages"``) or node (``"team:web"``) drilled into.
        title: it in words (``"pages, by team"``).
        rows: one row per entity (a figure) or per metric (a node): ``entity``,
            ``metric``, ``figure`` (it in words), ``unit``, ``base``, ``change`` (means
            over seeds), ``delta``, ``ci_low``,
            ``ci_high``, ``rel_change``, ``significant`` and ``share`` (of the total
            change, for figures that add up over entities; else null); largest move first.
        events: the change's events behind the figure for the entities that moved most
            (incidents, pages, deploys), at most :data:`MAX_EVENTS` rows; may be empty.
        words: one sentence: how many moved beyond noise and which most.
    """

    key: str
    title: str
    rows: pl.DataFrame
    events: pl.DataFrame
    words: str


def drill(base: RunSet, change: RunSet, key: str, *, confidence: float = 0.95) -> Drill:
    """What moved at a figure of the chain, by entity, or at a node of the graph, by metric.

    Args:
        base: the base's runs.
        change: the change's runs (the same seeds: entities pair up by seed).
        key: a figure of :data:`SOURCES` (a chain step's ``key``) or a node id
            (``"team:web"``, ``"service:auth"``, ``"segment:pro_us"``, ``"vendor:stripe"``).
        confidence: coverage of the intervals, 0..1 exclusive.

    Returns:
        The :class:`Drill`.

    Raises:
        ExploreError: ``key`` is neither a figure nor a node id.
    """
    if key in SOURCES:
        return _drill_figure(base, change, key, confidence)
    kind, _, name = key.partition(":")
    if kind in ("team", "service", "segment", "vendor") and name:
        return _drill_node(base, change, kind, name, confidence)
    known = ", ".join(sorted(SOURCES))
    raise ExploreError(f"key must be a figure ({known}) or a node id like 'team:web', got {key!r}")


def _drill_figure(base: RunSet, change: RunSet, key: str, confidence: float) -> Drill:
    source = SOURCES[key]
    sides = [_per_entity(runset, source) for runset in (base, change)]
    rows = _rows(sides, confidence, entity_type=source.entity_type, metric=source.metric)
    additive = source.metric in {"incidents", "deploys"} or (
        source.metric not in _TABLE_READS
        and not series_metrics.metric(source.entity_type, source.metric).intensive
    )
    total = rows["delta"].sum() if rows.height else 0.0
    rows = rows.with_columns(
        share=(pl.col("delta") / total) if additive and total else pl.lit(None, pl.Float64)
    )
    title = f"{mechanisms.WORDS[key]}, by {source.entity_type}"
    moved = _top(rows)
    events = _events(change, source, moved)
    return Drill(key, title, rows, events, _words(mechanisms.WORDS[key], source, rows))


def _drill_node(base: RunSet, change: RunSet, kind: str, name: str, confidence: float) -> Drill:
    per_metric = []
    for metric in series_metrics.metrics_of(kind):
        source = Source(kind, metric)
        sides = [_per_entity(runset, source, only=name) for runset in (base, change)]
        per_metric.append(_rows(sides, confidence, entity_type=kind, metric=metric))
    rows = pl.concat(per_metric).with_columns(share=pl.lit(None, pl.Float64))
    rows = rows.sort(pl.col("significant"), pl.col("rel_change").abs(), descending=True,
                     nulls_last=True)  # fmt: skip
    moved = rows.filter(pl.col("significant"))
    listed = ", ".join(
        f"{r['figure']} {_pct(r['rel_change'])}" for r in moved.head(4).iter_rows(named=True)
    )
    words = f"{kind} {name}: {moved.height} of {rows.height} figures moved beyond noise" + (
        f"; most: {listed}." if listed else "."
    )
    events = _node_events(change, kind, name)
    return Drill(f"{kind}:{name}", f"{kind} {name}, by figure", rows, events, words)


# --------------------------------------------------------------------------- per entity


def _per_entity(
    runset: RunSet, source: Source, *, only: str | None = None
) -> dict[str, dict[int, float]]:
    """Entity -> seed -> the figure in that seed's run (0 for counts of nothing)."""
    if source.metric in _TABLE_READS:
        frame = _from_table(runset, source)
    else:
        frame = _from_series(runset, source)
    if only is not None:
        frame = frame.filter(pl.col("entity") == only)
    out: dict[str, dict[int, float]] = {}
    for entity, seed, value in frame.select("entity", "seed", "value").iter_rows():
        out.setdefault(entity, {})[seed] = value
    counts = source.metric in {"incidents", "deploys"}
    for per_seed in out.values():  # a seed without events counted nothing there
        for seed in runset.seeds:
            per_seed.setdefault(seed, 0.0 if counts else math.nan)
    return out


def _from_series(runset: RunSet, source: Source) -> pl.DataFrame:
    declared = series_metrics.metric(source.entity_type, source.metric)
    scale = runset.days * HOURS_PER_DAY if declared.accrues else 1.0
    return (
        runset.series.lazy()
        .filter((pl.col("entity_type") == source.entity_type) & (pl.col("metric") == source.metric))
        .group_by("seed", pl.col("entity").cast(pl.String))
        .agg(value=pl.col("value").mean() * scale)
        .collect()
    )


def _from_table(runset: RunSet, source: Source) -> pl.DataFrame:
    group = ["seed", source.entity_type]
    if source.metric == "incidents":
        frame = runset.tables["incidents"].group_by(group).agg(value=pl.len().cast(pl.Float64))
    elif source.metric == "restore_hours":
        hours = (pl.col("resolved") - pl.col("started")).dt.total_minutes() / 60.0
        frame = runset.tables["incidents"].group_by(group).agg(value=hours.mean())
    else:
        deploys = runset.tables["deploys"]
        value = {
            "deploys": pl.len().cast(pl.Float64),
            "failed_pct": 100.0 * pl.col("failed").cast(pl.Float64).mean(),
            "batch_size": pl.col("batch_size").cast(pl.Float64).mean(),
            "lead_time_hours": pl.col("lead_time_hours").mean(),
        }[source.metric]
        frame = deploys.group_by(group).agg(value=value)
    return frame.rename({source.entity_type: "entity"})


def _rows(
    sides: list[dict[str, dict[int, float]]], confidence: float, *, entity_type: str,
    metric: str,
) -> pl.DataFrame:  # fmt: skip
    rows = []
    figure, unit = figure_words(metric), _unit(entity_type, metric)
    for entity in sorted(set(sides[0]) | set(sides[1])):
        a, b = sides[0].get(entity, {}), sides[1].get(entity, {})
        moved = paired_move(a, b, confidence)
        rows.append({
            "entity": entity, "metric": metric, "figure": figure, "unit": unit,
            "base": moved.base, "change": moved.change,
            "delta": moved.delta, "ci_low": moved.low, "ci_high": moved.high,
            "rel_change": moved.rel, "significant": moved.significant, "share": None,
        })  # fmt: skip
    frame = pl.DataFrame(rows, schema=_COLUMNS)
    return frame.sort(
        pl.col("significant"), pl.col("delta").abs(), descending=True, nulls_last=True
    )


def figure_words(metric: str) -> str:
    """A figure a drill reads, in words: its name without the unit, spaced.

    Example:
        >>> figure_words("revenue_usd"), figure_words("latency_p95_ms"), figure_words("left")
        ('revenue', 'latency p95', 'left')
    """
    for suffix in _UNIT_SUFFIXES:
        if metric.endswith(suffix) and metric != suffix[1:]:
            metric = metric.removesuffix(suffix)
            break
    return metric.replace("_", " ")


def _unit(entity_type: str, metric: str) -> str:
    if metric in _TABLE_READS:
        return _TABLE_READS[metric]
    return series_metrics.metric(entity_type, metric).unit


def _top(rows: pl.DataFrame, n: int = 3) -> list[str]:
    """The entities that moved beyond noise, largest first (else the largest moves)."""
    moved = rows.filter(pl.col("significant"))
    return (moved if moved.height else rows).head(n)["entity"].to_list()


def _events(change: RunSet, source: Source, entities: list[str]) -> pl.DataFrame:
    if source.table is None or source.table not in change.tables:
        return pl.DataFrame()
    table = change.tables[source.table].filter(pl.col(source.entity_type).is_in(entities))
    if source.metric == "off_hours_pages":
        table = table.filter(pl.col("off_hours"))
    if source.metric in {"failed_deploys", "failed_pct"}:
        table = table.filter(pl.col("failed"))
    return table.drop("run_id").head(MAX_EVENTS)


def _node_events(change: RunSet, kind: str, name: str) -> pl.DataFrame:
    for table in ("incidents", "pages", "deploys"):
        frame = change.tables.get(table)
        if frame is not None and kind in frame.columns:
            return frame.filter(pl.col(kind) == name).drop("run_id").head(MAX_EVENTS)
    return pl.DataFrame()


def _words(label: str, source: Source, rows: pl.DataFrame) -> str:
    moved = rows.filter(pl.col("significant"))
    kinds = f"{source.entity_type}s" if rows.height != 1 else source.entity_type
    head = f"{label}: {moved.height} of {rows.height} {kinds} moved beyond noise"
    if not moved.height:
        return head + "."
    parts = []
    for r in moved.head(3).iter_rows(named=True):
        share = f", {r['share']:.0%} of the change" if r["share"] is not None else ""
        parts.append(f"{r['entity']} {_pct(r['rel_change'])}{share}")
    return f"{head}; most: {'; '.join(parts)}."


def _pct(rel: float | None) -> str:
    return "(from 0)" if rel is None else f"{rel:+.0%}" if abs(rel) >= 0.1 else f"{rel:+.1%}"
