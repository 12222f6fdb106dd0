"""The ripple: where a change landed in the organisation, and the chain that carried it.

:func:`ripple` takes the runs of a base and of a change (the same seeds, so runs pair up)
and returns a :class:`Ripple`:

- ``nodes``: every user segment, team, service and vendor, each with the headline figure
  of its kind (:data:`NODE_FIGURES`: users churned, pages per on-call engineer, error
  rates) in base and change, the change's interval across
  seeds and an ``impact`` in [-1, 1] for colour: negative is worse, positive better, 0
  when the figure did not move beyond noise;
- ``edges``: who depends on whom: a segment ``uses`` the entry services of its features,
  a service ``calls`` another and ``depends`` on vendors, a team ``owns`` services;
- ``chain`` and ``sentence``: the largest effects in causal order (:data:`STAGES`, the
  order of DESIGN.md: the intervention, then process, incidents, pages, fatigue,
  restore time and attrition, delivery, errors and latency, users, money), keeping only
  figures whose interval excludes zero and that moved by at least ``min_rel_change``::

      weekly approval board → batch size ×3.1 → lead time ×4.2 → change failure +7.2 pts
      → pages +35% → fatigue ↑ → restore time +20% → churn +0.10 pts

Changes of percentages are in percentage points (``pts``), ratios above 2 as ``×N``,
figures on a 0–1 scale (fatigue) as ``↑``/``↓``, the rest in percent. Pure polars and
numpy: no UI library is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl

from orgtwin.runs import metrics, stats
from orgtwin.runs.comparison import compare
from orgtwin.runs.results import RunSet
from orgtwin.scenario.spec import Scenario
from orgtwin.units import HOURS_PER_DAY

NodeKind = Literal["segment", "team", "service", "vendor"]


class NodeFigure(NamedTuple):
    """The figure a node of one kind is judged by.

    Attributes:
        name: what the figure is called in :attr:`Ripple.nodes` (``metric``).
        metric: the series metric it is made from (see :mod:`orgtwin.runs.metrics`).
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

STAGES: tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...] = (
    ("process", 3, (("batch_size", "batch size"), ("lead_time_hours", "lead time"),
                    ("change_failure_rate_pct", "change failure"))),
    ("incidents", 1, (("incidents", "incidents"),)),
    ("pages", 2, (("pages", "pages"), ("off_hours_pages", "off-hours pages"),
                  ("pages_per_oncall_engineer", "pages per on-call engineer"))),
    ("fatigue", 1, (("fatigue", "fatigue"),)),
    ("people", 1, (("time_to_restore_hours", "restore time"), ("attrition", "attrition"))),
    ("delivery", 1, (("deploy_frequency_per_day", "deploys"),
                     ("feature_throughput_per_week", "feature throughput"))),
    ("service", 1, (("error_budget_used", "errors"), ("latency_p95_ms", "p95 latency"),
                    ("tickets", "tickets"))),
    ("users", 1, (("churn_rate_monthly_pct", "churn"), ("users", "users"))),
    ("money", 2, (("revenue_usd", "revenue"), ("infra_cost_usd", "infra cost"),
                  ("vendor_cost_usd", "vendor cost"))),
)  # fmt: skip
"""Causal stages in order: (name, most links kept, ((figure, words), …)). A stage keeps
its largest moves (by relative size), in the order listed; a move alike (within 5%) an
earlier one of its stage is left out."""
NOTHING_MOVED = "Nothing moved beyond noise."


@dataclass(frozen=True)
class ChainStep:
    """One link of the chain of effects.

    Attributes:
        key: ``"cause"`` for the first step, else the figure (a KPI or ``batch_size``).
        label: the figure in words (``"change failure"``), or the change itself.
        text: the link as written in the sentence (``"change failure +7.2 pts"``).
        base: the figure's mean over the base's seeds (None for the cause).
        change: its mean over the change's seeds.
        delta: ``change - base``.
        rel_change: ``delta / |base|`` (None when base is 0).
        better: whether the move is good (None when neither or for the cause).
    """

    key: str
    label: str
    text: str
    base: float | None = None
    change: float | None = None
    delta: float | None = None
    rel_change: float | None = None
    better: bool | None = None


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
        chain: the links of the chain, the change first; empty when nothing moved.
        sentence: the chain in words, ``" → "`` between links.
    """

    nodes: pl.DataFrame
    edges: pl.DataFrame
    chain: list[ChainStep]
    sentence: str


def ripple(
    base: RunSet,
    change: RunSet,
    scenario: Scenario,
    *,
    comparison: pl.DataFrame | None = None,
    cause: str | None = None,
    confidence: float = 0.95,
    min_rel_change: float = 0.005,
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
        min_rel_change: smallest relative move a chain link needs (0.005 = 0.5%).

    Returns:
        The :class:`Ripple`.
    """
    stats.check_confidence(confidence)
    if comparison is None:
        comparison = compare(base, change, confidence=confidence)
    figures = _kpi_figures(comparison)
    figures["batch_size"] = _batch_size(base, change, confidence)
    chain = _chain(figures, cause or intervention_words(scenario), min_rel_change)
    sentence = " → ".join(step.text for step in chain) if chain else NOTHING_MOVED
    return Ripple(
        nodes=_nodes(base, change, scenario, confidence),
        edges=edges(scenario),
        chain=chain,
        sentence=sentence,
    )


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

    A vendor swap's replacement counts as a dependency of the services that call the
    vendor it replaces.
    """
    rows: list[tuple[str, str, str, str]] = []
    for name, segment in scenario.segments.items():
        entries: dict[str, list[str]] = {}
        for feature in segment.features:
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
        moved = _moved(a, b, confidence)
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


class _Move(NamedTuple):
    base: float | None
    change: float | None
    delta: float | None
    low: float | None
    high: float | None
    rel: float | None
    significant: bool


def _moved(base: dict[int, float], change: dict[int, float], confidence: float) -> _Move:
    """Means and the interval of their difference: paired by seed when the seeds agree."""
    a = np.array([v for v in base.values() if math.isfinite(v)])
    b = np.array([v for v in change.values() if math.isfinite(v)])
    if a.size == 0 or b.size == 0:
        return _Move(None, None, None, None, None, None, False)
    common = sorted(set(base) & set(change))
    if common and set(base) == set(change):
        diffs = np.array([change[s] - base[s] for s in common])
        _, half, _ = stats.mean_interval(diffs, confidence=confidence)
    else:
        half = stats.welch_half_width(a, b, confidence=confidence)
    base_mean, change_mean = float(a.mean()), float(b.mean())
    delta = change_mean - base_mean
    if abs(delta) <= 1e-12 * max(abs(base_mean), abs(change_mean)):
        return _Move(base_mean, change_mean, 0.0, None, None, 0.0 if base_mean else None, False)
    low, high = (None, None) if half is None else (delta - half, delta + half)
    significant = low is not None and high is not None and not low <= 0.0 <= high
    rel = delta / abs(base_mean) if base_mean else None
    return _Move(base_mean, change_mean, delta, low, high, rel, significant)


def _batch_size(base: RunSet, change: RunSet, confidence: float) -> dict[str, Any]:
    """Mean changes per deploy, per seed, base against change."""
    sides = []
    for runset in (base, change):
        deploys = runset.events("deploys")
        per_seed = deploys.group_by("seed").agg(pl.col("batch_size").cast(pl.Float64).mean())
        sides.append(dict(zip(per_seed["seed"], per_seed["batch_size"], strict=True)))
    moved = _moved(sides[0], sides[1], confidence)
    return {"unit": "changes", "higher_is_better": None, **moved._asdict()}


def _kpi_figures(comparison: pl.DataFrame) -> dict[str, dict[str, Any]]:
    out = {}
    for row in comparison.iter_rows(named=True):
        kpi = row["kpi"]
        out[kpi] = {
            "unit": row["unit"], "higher_is_better": metrics.KPIS[kpi].higher_is_better,
            "base": row["base_mean"], "change": row["change_mean"], "delta": row["delta"],
            "low": row["ci_low"], "high": row["ci_high"], "rel": row["rel_delta"],
            "significant": bool(row["significant"]),
        }  # fmt: skip
    return out


# --------------------------------------------------------------------------- chain


def _chain(
    figures: dict[str, dict[str, Any]], cause: str, min_rel_change: float
) -> list[ChainStep]:
    """The links that moved, in causal order: per stage its largest distinct moves."""
    links: list[tuple[str, str]] = []
    for _, keep, members in STAGES:
        moved: list[tuple[str, str]] = []
        for key, words in members:  # a move alike an earlier one of its stage adds nothing
            figure = figures.get(key)
            if figure is None or not _material(figure, min_rel_change):
                continue
            if not any(_alike(figure, figures[k]) for k, _ in moved):
                moved.append((key, words))
        largest = sorted(moved, key=lambda m: -_size(figures[m[0]]))[:keep]
        links += [link for link in moved if link in largest]
    steps = [_step(key, words, figures[key]) for key, words in links]
    return [ChainStep("cause", cause, cause), *steps] if steps else []


def _alike(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two figures moved by the same proportion (one adds nothing to the other)."""
    if a["rel"] is None or b["rel"] is None:
        return False
    return abs(a["rel"] - b["rel"]) <= 0.05 * max(abs(a["rel"]), abs(b["rel"]))


def _material(figure: dict[str, Any], min_rel_change: float) -> bool:
    if not figure["significant"] or figure["delta"] is None:
        return False
    return figure["rel"] is None or abs(figure["rel"]) >= min_rel_change


def _size(figure: dict[str, Any]) -> float:
    return math.inf if figure["rel"] is None else abs(figure["rel"])


def _step(key: str, words: str, figure: dict[str, Any]) -> ChainStep:
    good = figure["higher_is_better"]
    better = None if good is None else (figure["delta"] > 0) == good
    return ChainStep(
        key, words, f"{words} {format_move(figure['base'], figure['change'], figure['unit'])}",
        base=figure["base"], change=figure["change"], delta=figure["delta"],
        rel_change=figure["rel"], better=better,
    )  # fmt: skip


def format_move(base: float, change: float, unit: str) -> str:
    """A move from ``base`` to ``change`` as a chain link writes it.

    Example:
        >>> format_move(3.0, 10.2, "%"), format_move(2.0, 6.2, "changes")
        ('+7.2 pts', '×3.1')
        >>> format_move(100.0, 140.0, "pages"), format_move(0.1, 0.2, "0-1")
        ('+40%', '↑')
    """
    delta = change - base
    if unit == "%":
        digits = 1 if abs(delta) >= 1 else 2 if abs(delta) >= 0.01 else 3
        return f"{delta:+.{digits}f} pts"
    if unit == "0-1":
        return "↑" if delta > 0 else "↓"
    if base == 0:
        return f"{delta:+.3g}"
    ratio = change / base
    if ratio > 2:
        return f"×{ratio:.1f}" if ratio < 10 else f"×{ratio:.0f}"
    percent = 100.0 * delta / abs(base)
    return f"{percent:+.0f}%" if abs(percent) >= 10 else f"{percent:+.1f}%"


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
