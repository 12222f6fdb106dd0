"""The ripple: where a change landed in the organisation, and the mechanism that carried it.

:func:`ripple` takes the runs of a base and of a change (the same seeds, so runs pair up)
and returns a :class:`Ripple`:

- ``nodes``: every user segment, team, service and vendor, each with the headline figure
  of its kind (:data:`NODE_FIGURES`: users churned, pages per on-call engineer, error
  rates) in base and change, the change's interval across
  seeds and an ``impact`` in [-1, 1] for colour: negative is worse, positive better, 0
  when the figure did not move beyond noise;
- ``edges``: who depends on whom: a segment ``uses`` the entry services of its features,
  a service ``calls`` another and ``depends`` on vendors, a team ``owns`` services;
- ``chain`` and ``sentence``: the mechanism that carried the change, step by step along
  the model's causal graph of figures (:mod:`orgtwin.explore.mechanisms`): from what the
  lever moves first to what that moves, and so on. A figure joins the chain only when
  its paired interval excludes zero, it moved by at least ``min_rel_change``, and it is
  downstream of a figure of the step before along a mechanism (in that mechanism's
  direction). The links of one step are separated by commas, the ones that lead on
  written last::

      approval board every 2 weeks → lead time ×4.2, batch size ×3.1, deploys -80%
      → change failure +7.2 pts, pages +35% → off-hours pages +40% → fatigue ↑

- ``notes``: large moves no such chain reaches, said as such ("lead time +20%, but no
  path of the model leads there from the price: read it as noise"), never joined to it.

The chain is traced by :mod:`orgtwin.explore.chain` from the figures this module
compares (KPIs, the batch size and a few series figures, :attr:`Ripple.figures`);
:func:`orgtwin.explore.drill.drill` says what moved at one figure or node: which teams'
pages, which services' errors, which incidents. Pure polars and numpy: no UI library is
imported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl

from orgtwin.explore import mechanisms
from orgtwin.explore.chain import ChainStep, trace
from orgtwin.explore.controls import controls
from orgtwin.runs import stats
from orgtwin.runs.comparison import compare
from orgtwin.runs.results import RunSet
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry import series as series_metrics
from orgtwin.units import HOURS_PER_DAY
from orgtwin.world.kpis import KPIS

NodeKind = Literal["segment", "team", "service", "vendor"]


class NodeFigure(NamedTuple):
    """The figure a node of one kind is judged by.

    Attributes:
        name: what the figure is called in :attr:`Ripple.nodes` (``metric``).
        metric: the series metric it is made from (see :mod:`orgtwin.world.kpis`).
        accrued: True: the run's total (``churned`` users); False: the mean over hours.
        per: a gauge to divide by (its mean over the run), or None.
        higher_is_better: which way is good.
        floor: the smallest base the relative change is taken against for ``impact`` (a
            figure near zero would otherwise swing from noise-sized moves).
    """

    name: str
    metric: str
    accrued: bool
    per: str | None
    higher_is_better: bool
    floor: float


NODE_FIGURES: dict[NodeKind, NodeFigure] = {
    "segment": NodeFigure("churned", "churned", True, None, False, 10.0),
    "team": NodeFigure("pages_per_oncall_engineer", "pages", True, "oncall_size", False, 0.5),
    "service": NodeFigure("error_rate", "error_rate", False, None, False, 1e-4),
    "vendor": NodeFigure("error_rate", "error_rate", False, None, False, 1e-4),
}
"""Node kind -> its headline figure: users churned, pages per on-call engineer (what wears
a team out), error rates."""
IMPACT_SCALE = 2.0
"""``impact = ±tanh(IMPACT_SCALE × relative change)``: 10% → 0.20, 50% → 0.76."""


@dataclass(frozen=True, eq=False)
class Ripple:
    """Where a change landed (see the module docstring).

    Attributes:
        nodes: columns ``id`` (``"team:web"``), ``kind``, ``name``, ``metric``,
            ``base``, ``change`` (means across seeds), ``delta``, ``ci_low``,
            ``ci_high``, ``rel_change`` (signed; null when base is 0), ``impact``
            (-1 worst .. +1 best; 0 unless significant) and ``significant``.
        edges: columns ``source``, ``target`` (node ids), ``kind`` (``uses``,
            ``calls``, ``depends``, ``owns``) and ``label`` (the features of a ``uses``).
        chain: the links of the chain, the change first, then step by step; empty when
            nothing the change moves first moved beyond noise.
        sentence: the chain in words: ``" → "`` between steps, ``", "`` between the
            links of one step.
        unexplained: material moves no chain reaches, largest first (``via`` None).
        notes: the largest of those in words, each saying why it is not in the chain.
        figures: every figure of the chain's graph, base against change (``key``,
            ``words``, ``unit``, ``base``, ``change``, ``delta``, ``ci_low``, ``ci_high``,
            ``rel_change``, ``significant``).
    """

    nodes: pl.DataFrame
    edges: pl.DataFrame
    chain: list[ChainStep]
    sentence: str
    unexplained: list[ChainStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: pl.DataFrame = field(default_factory=pl.DataFrame)


def ripple(
    base: RunSet,
    change: RunSet,
    scenario: Scenario,
    *,
    comparison: pl.DataFrame | None = None,
    cause: str | None = None,
    confidence: float = 0.95,
    min_rel_change: float = 0.002,
    levers: Sequence[str] | None = None,
) -> Ripple:
    """Trace where a change landed: the graph coloured by impact, and the chain of effects.

    Args:
        base: the base's runs.
        change: the change's runs (best on the same seeds: runs then pair up).
        scenario: the changed scenario (its entities and dependencies make the graph).
        comparison: ``compare(base, change, confidence=confidence)`` if already done.
        cause: the change in words for the chain's first link (default: the scenario's
            interventions in words, see :func:`intervention_words`).
        confidence: coverage of the intervals, 0..1 exclusive.
        min_rel_change: smallest relative move a chain link needs (0.002 = 0.2%).
        levers: what was moved: intervention kinds or control paths
            (``segments.pro_us.price_usd_month``); default: the scenario's interventions
            and the controls ``cause`` names (see :func:`levers_of`).

    Returns:
        The :class:`Ripple`.
    """
    stats.check_confidence(confidence)
    if comparison is None:
        comparison = compare(base, change, confidence=confidence)
    table = _figure_frame(_figures(base, change, comparison, confidence))
    cause = cause or intervention_words(scenario)
    moved = levers_of(scenario, cause) if levers is None else [_lever(scenario, x) for x in levers]
    traced = trace(table, cause, moved, min_rel_change=min_rel_change)
    return Ripple(
        nodes=_nodes(base, change, scenario, confidence),
        edges=edges(scenario),
        chain=traced.chain,
        sentence=traced.sentence,
        unexplained=traced.unexplained,
        notes=traced.notes,
        figures=table,
    )


def levers_of(scenario: Scenario, cause: str | None = None) -> list[str]:
    """What a changed scenario moved: its interventions' kinds, then the levers of the
    controls whose labels ``cause`` names (``"Price (segment pro_us) 12 → 15"``)."""
    found = [iv.kind for iv in scenario.interventions]
    if cause:
        found += [_lever(scenario, c.path) for c in controls(scenario) if c.label in cause]
    return list(dict.fromkeys(x for x in found if x))


def _lever(scenario: Scenario, lever: str) -> str:
    """An intervention kind or a control path as a lever of :data:`mechanisms.LEVERS`."""
    if lever in mechanisms.LEVERS:
        return lever
    if lever.startswith("interventions["):
        index = int(lever[len("interventions[") : lever.index("]")])
        if index < len(scenario.interventions):
            return scenario.interventions[index].kind
    return mechanisms.lever_of(lever) or lever


# --------------------------------------------------------------------------- graph


def node_ids(scenario: Scenario) -> list[tuple[str, NodeKind, str]]:
    """``(id, kind, name)`` of every segment, team, service and vendor, in that order."""
    kinds: tuple[tuple[NodeKind, str], ...] = (
        ("segment", "segments"), ("team", "teams"), ("service", "services"),
        ("vendor", "vendors"),
    )  # fmt: skip
    return [
        (f"{kind}:{name}", kind, name)
        for kind, attribute in kinds
        for name in getattr(scenario, attribute)
    ]


def edges(scenario: Scenario) -> pl.DataFrame:
    """Who depends on whom in ``scenario``: ``source``, ``target``, ``kind``, ``label``.

    A segment uses the features it lists that are launched, and every feature a
    ``feature_launch`` launches (the launch gives it to every segment); a vendor swap's
    replacement counts as a dependency of the services that call the vendor it replaces.
    """
    rows: list[tuple[str, str, str, str]] = []
    launches = [iv.feature for iv in scenario.interventions if iv.kind == "feature_launch"]
    for name, segment in scenario.segments.items():
        entries: dict[str, list[str]] = {}
        used = [f for f in segment.features if scenario.features[f].launched or f in launches]
        for feature in dict.fromkeys([*used, *launches]):
            entries.setdefault(scenario.features[feature].entry, []).append(feature)
        rows += [
            (f"segment:{name}", f"service:{entry}", "uses", ", ".join(features))
            for entry, features in entries.items()
        ]
    swaps = [(iv.vendor, iv.to) for iv in scenario.interventions if iv.kind == "vendor_swap"]
    for name, service in scenario.services.items():
        rows += [(f"service:{name}", f"service:{c}", "calls", "") for c in service.calls]
        vendors = list(service.vendors)
        vendors += [to for old, to in swaps if old in service.vendors and to not in vendors]
        rows += [(f"service:{name}", f"vendor:{v}", "depends", "") for v in vendors]
        rows.append((f"team:{service.team}", f"service:{name}", "owns", ""))
    schema = {"source": pl.String, "target": pl.String, "kind": pl.String, "label": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _nodes(base: RunSet, change: RunSet, scenario: Scenario, confidence: float) -> pl.DataFrame:
    """Every node with its headline figure in base and change, and its impact."""
    by_seed = {"base": _entity_figures(base), "change": _entity_figures(change)}
    rows = []
    for node_id, kind, name in node_ids(scenario):
        spec = NODE_FIGURES[kind]
        a, b = (by_seed[side].get((kind, name), {}) for side in ("base", "change"))
        moved = paired_move(a, b, confidence)
        impact = 0.0
        if moved.significant and moved.delta is not None and moved.base is not None:
            rel = moved.delta / max(abs(moved.base), spec.floor)
            impact = math.tanh(IMPACT_SCALE * rel) * (1.0 if spec.higher_is_better else -1.0)
        rows.append({
            "id": node_id, "kind": kind, "name": name, "metric": spec.name,
            "base": moved.base, "change": moved.change, "delta": moved.delta,
            "ci_low": moved.low, "ci_high": moved.high, "rel_change": moved.rel,
            "impact": impact, "significant": moved.significant,
        })  # fmt: skip
    schema = {"id": pl.String, "kind": pl.String, "name": pl.String, "metric": pl.String}
    schema |= {c: pl.Float64 for c in ("base", "change", "delta", "ci_low", "ci_high")}
    schema |= {"rel_change": pl.Float64, "impact": pl.Float64, "significant": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


def _entity_figures(runset: RunSet) -> dict[tuple[str, str], dict[int, float]]:
    """(kind, name) -> seed -> the node's headline figure in that seed's run."""
    pairs = {(kind, m) for kind, spec in NODE_FIGURES.items() for m in (spec.metric, spec.per) if m}
    wanted = pl.any_horizontal(
        [(pl.col("entity_type") == kind) & (pl.col("metric") == m) for kind, m in sorted(pairs)]
    )
    frame = (
        runset.series.lazy()
        .filter(wanted)
        .group_by("seed", "entity_type", "entity", "metric")
        .agg(pl.col("value").mean())
        .select("seed", pl.col("entity_type", "entity", "metric").cast(pl.String), "value")
        .collect()
    )
    means = {(kind, name, metric, seed): v for seed, kind, name, metric, v in frame.iter_rows()}
    hours = runset.days * HOURS_PER_DAY
    out: dict[tuple[str, str], dict[int, float]] = {}
    for (kind, name, metric, seed), value in means.items():
        spec = NODE_FIGURES[kind]  # type: ignore[index]
        if metric != spec.metric:
            continue
        figure = value * hours if spec.accrued else value
        if spec.per is not None:
            per = means.get((kind, name, spec.per, seed), 0.0)
            figure = figure / per if per else math.nan
        out.setdefault((kind, name), {})[seed] = figure
    return out


# --------------------------------------------------------------------------- moves


class Move(NamedTuple):
    """A figure base against change: means over seeds, the change, its interval."""

    base: float | None
    change: float | None
    delta: float | None
    low: float | None
    high: float | None
    rel: float | None
    significant: bool


def paired_move(base: dict[int, float], change: dict[int, float], confidence: float) -> Move:
    """Means and the interval of their difference: paired by seed when the seeds agree
    (else Welch's); ``significant`` when the interval excludes zero."""
    a = np.array([v for v in base.values() if math.isfinite(v)])
    b = np.array([v for v in change.values() if math.isfinite(v)])
    if a.size == 0 or b.size == 0:
        return Move(None, None, None, None, None, None, False)
    common = sorted(set(base) & set(change))
    if common and set(base) == set(change):
        diffs = np.array([change[s] - base[s] for s in common])
        _, half, _ = stats.mean_interval(diffs, confidence=confidence)
    else:
        half = stats.welch_half_width(a, b, confidence=confidence)
    base_mean, change_mean = float(a.mean()), float(b.mean())
    delta = change_mean - base_mean
    if abs(delta) <= 1e-12 * max(abs(base_mean), abs(change_mean)):
        return Move(base_mean, change_mean, 0.0, None, None, 0.0 if base_mean else None, False)
    low, high = (None, None) if half is None else (delta - half, delta + half)
    significant = low is not None and high is not None and not low <= 0.0 <= high
    rel = delta / abs(base_mean) if base_mean else None
    return Move(base_mean, change_mean, delta, low, high, rel, significant)


def _batch_size(base: RunSet, change: RunSet, confidence: float) -> dict[str, Any]:
    """Mean changes per deploy, per seed, base against change."""
    sides = []
    for runset in (base, change):
        deploys = runset.events("deploys")
        per_seed = deploys.group_by("seed").agg(pl.col("batch_size").cast(pl.Float64).mean())
        sides.append(dict(zip(per_seed["seed"], per_seed["batch_size"], strict=True)))
    moved = paired_move(sides[0], sides[1], confidence)
    return {"unit": "changes", "higher_is_better": None, **moved._asdict()}


def _kpi_figures(comparison: pl.DataFrame) -> dict[str, dict[str, Any]]:
    out = {}
    for row in comparison.iter_rows(named=True):
        kpi = row["kpi"]
        out[kpi] = {
            "unit": row["unit"], "higher_is_better": KPIS[kpi].higher_is_better,
            "base": row["base_mean"], "change": row["change_mean"], "delta": row["delta"],
            "low": row["ci_low"], "high": row["ci_high"], "rel": row["rel_delta"],
            "significant": bool(row["significant"]),
        }  # fmt: skip
    return out


def _figures(
    base: RunSet, change: RunSet, comparison: pl.DataFrame, confidence: float
) -> dict[str, dict[str, Any]]:
    """Every figure of :data:`mechanisms.FIGURES` that the runs give, base against change."""
    kpis = _kpi_figures(comparison)
    out = {f.key: kpis[f.key] for f in mechanisms.FIGURES if f.key in kpis}
    out["batch_size"] = _batch_size(base, change, confidence)
    wanted = {f.key: f.series for f in mechanisms.FIGURES if f.series is not None}
    sides = [_series_totals(runset, wanted) for runset in (base, change)]
    for key, (entity_type, metric) in wanted.items():
        declared = series_metrics.metric(entity_type, metric)
        moved = paired_move(sides[0].get(key, {}), sides[1].get(key, {}), confidence)
        out[key] = {"unit": declared.unit, "higher_is_better": mechanisms.BETTER.get(key),
                    **moved._asdict()}  # fmt: skip
    return out


def _series_totals(
    runset: RunSet, wanted: dict[str, tuple[str, str]]
) -> dict[str, dict[int, float]]:
    """Figure -> seed -> its total over the run (accruing metrics) or mean (gauges),
    summed over entities: the mean over ticks of the per-tick sum, times the run's hours
    for a metric that accrues (the series may be daily means: the total is the same)."""
    pairs = {(e, m) for e, m in wanted.values()}
    chosen = pl.any_horizontal(
        [(pl.col("entity_type") == e) & (pl.col("metric") == m) for e, m in sorted(pairs)]
    )
    frame = (
        runset.series.lazy()
        .filter(chosen)
        .select("seed", "tick", pl.col("entity_type", "metric").cast(pl.String), "value")
        .group_by("seed", "entity_type", "metric", "tick")
        .agg(pl.col("value").sum())
        .group_by("seed", "entity_type", "metric")
        .agg(pl.col("value").mean())
        .collect()
    )
    hours = runset.days * HOURS_PER_DAY
    means = {(e, m, seed): v for seed, e, m, v in frame.iter_rows()}
    out: dict[str, dict[int, float]] = {}
    for key, (e, m) in wanted.items():
        scale = hours if series_metrics.metric(e, m).accrues else 1.0
        out[key] = {seed: means.get((e, m, seed), 0.0) * scale for seed in runset.seeds}
    return out


def _figure_frame(figures: dict[str, dict[str, Any]]) -> pl.DataFrame:
    """The figures as a table (:attr:`Ripple.figures`), in causal order."""
    rows = [
        {"key": key, "words": mechanisms.WORDS[key], "unit": f["unit"], "base": f["base"],
         "change": f["change"], "delta": f["delta"], "ci_low": f["low"], "ci_high": f["high"],
         "rel_change": f["rel"], "significant": bool(f["significant"])}
        for key, f in sorted(figures.items(), key=lambda kv: mechanisms.ORDER[kv[0]])
    ]  # fmt: skip
    schema = {"key": pl.String, "words": pl.String, "unit": pl.String}
    schema |= {c: pl.Float64 for c in ("base", "change", "delta", "ci_low", "ci_high")}
    schema |= {"rel_change": pl.Float64, "significant": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- chain


# --------------------------------------------------------------------------- words


def intervention_words(scenario: Scenario) -> str:
    """The scenario's interventions in plain words, joined by ``" + "``.

    Each kind says itself (:meth:`~orgtwin.scenario.interventions.InterventionSpec.words`).

    Example:
        >>> from orgtwin.scenario.load import load_scenario
        >>> intervention_words(load_scenario("scenarios/price_increase.yaml"))
        'price $12 → $15'
    """
    words = [iv.words(scenario) for iv in scenario.interventions]
    return " + ".join(words) or "the change"
