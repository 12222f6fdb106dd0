"""What a sweep says: lever effects with uncertainty, lever importance, a plain-text report.

Every function takes the ``runs`` frame of a sweep: one row per (point, replicate) with
``point``, ``replicate``, ``seed``, one column per lever (named by its path), every KPI of
:data:`orgtwin.world.kpis.KPIS` and ``error`` (null when the run succeeded). Rows with an
error, or with a lever left null, are ignored; a KPI that is ``NaN`` (undefined) in a run
leaves that run out of that KPI. Numeric levers (integers, floats) are ordered; string and
boolean levers are categorical.

- :func:`lever_effects`: per lever and KPI, the change of the mean KPI from the lever's
  lowest to its highest level (Welch interval) and the standardised slope of a joint OLS fit.
- :func:`lever_importance`: permutation importance of each lever in a random-forest surrogate.
- :func:`importance_sentence`: the ranking in one sentence ("Spot share (every service)
  matters most for availability; on-call size (every team) barely matters"), or
  "inconclusive" when the surrogate explains less than :data:`MIN_SURROGATE_R2` of the
  held-out variance.
- :func:`effects_in_words`: the effects table with labels and formatted numbers, for people.
- :func:`format_sweep_report`: all of it, and optionally a discovered box, as plain text
  for the CLI.

Levers are named in words by :func:`orgtwin.scenario.wording.lever_label`, KPIs by
:attr:`orgtwin.world.kpis.Kpi.label`; raw paths stay in the tables for downloads.

Scenario discovery (PRIM: a box of lever ranges where a condition on the KPIs such as
``"availability_pct < 99.9"`` mostly holds) lives in :mod:`orgtwin.sweeps.discovery`;
:func:`discover`, :func:`parse_condition`, :class:`Discovery` and :class:`Limit` are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.model_selection import GroupShuffleSplit

from orgtwin.errors import ResultsError, did_you_mean, in_brackets
from orgtwin.runs import stats
from orgtwin.scenario.wording import lever_label
from orgtwin.sweeps.discovery import (
    Discovery,
    Limit,
    default_condition,
    discover,
    is_categorical,
    parse_condition,
    successful_runs,
)
from orgtwin.units import format_delta, format_table, format_value, in_sentence, with_unit
from orgtwin.world.kpis import KPIS

__all__ = [
    "BIN_SHARE",
    "EFFECTS",
    "MAIN_KPIS",
    "MAX_LEVELS",
    "MIN_IMPORTANCE_RUNS",
    "MIN_SURROGATE_R2",
    "TEST_SHARE",
    "Discovery",
    "Limit",
    "default_condition",
    "discover",
    "effects_in_words",
    "format_sweep_report",
    "importance_sentence",
    "is_conclusive",
    "lever_effects",
    "lever_importance",
    "parse_condition",
]

MAIN_KPIS = (
    "users", "churned", "revenue_usd", "infra_cost_usd", "availability_pct",
    "latency_p95_ms", "incidents", "pages", "fatigue", "change_failure_rate_pct",
)  # fmt: skip
"""KPIs analysed by default (those present in ``runs``)."""
MAX_LEVELS = 10
"""A numeric lever with more distinct values than this is binned into quintiles."""
BIN_SHARE = 0.2
"""Share of runs in the lowest and highest bin of a binned lever (quintiles)."""
MIN_IMPORTANCE_RUNS = 10
"""Fewest successful runs :func:`lever_importance` ranks levers on."""
TEST_SHARE = 0.25
"""Share of the sweep's points held out to score the importance surrogate."""
MIN_SURROGATE_R2 = 0.3
"""Least held-out R² of the surrogate for its ranking to be said: below it the levers
explain less than 30% of the KPI's variance between held-out runs, the rest is seed noise
or interactions the forest missed, and shuffling a lever mostly measures that noise."""
BARELY = 0.1
"""A lever whose importance is below this share of the top lever's "barely matters"."""

EFFECTS: dict[str, pl.DataType] = {
    "lever": pl.String(),
    "kpi": pl.String(),
    "unit": pl.String(),
    "low_level": pl.String(),  # "4", "0.25", "cab", or "<= 0.18" for a binned lever
    "high_level": pl.String(),
    "mean_at_low": pl.Float64(),
    "mean_at_high": pl.Float64(),
    "effect": pl.Float64(),  # mean_at_high - mean_at_low, in the KPI's unit
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "slope_per_sd": pl.Float64(),  # KPI change per standard deviation of the lever (OLS)
    "slope_ci_low": pl.Float64(),
    "slope_ci_high": pl.Float64(),
    "significant": pl.Boolean(),  # the effect's interval excludes zero
}
"""Schema of :func:`lever_effects`' result."""


# --------------------------------------------------------------------------- effects


def lever_effects(
    runs: pl.DataFrame,
    levers: Sequence[str],
    *,
    kpis: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """Marginal effect of each lever on each KPI, with its uncertainty.

    The runs at a lever's lowest and at its highest level are compared, averaging over
    the other levers and the seeds: ``effect = mean_at_high - mean_at_low`` with Welch's
    interval for a difference of means. The levels are:

    - a numeric lever with at most :data:`MAX_LEVELS` distinct values (a grid): its
      smallest and largest value;
    - a numeric lever with more (a Latin hypercube): the lowest and highest quintile bins,
      the runs at or below the 20th and at or above the 80th percentile (``"<= 0.18"``);
    - a categorical lever: the categories with the lowest and the highest mean KPI. With
      ``k`` categories the interval is Bonferroni-widened over the ``k(k-1)/2`` pairs, so
      picking the extreme pair does not make it too narrow.

    ``slope_per_sd`` comes from one OLS fit of the KPI on all levers jointly (numeric
    levers standardised, categorical ones one-hot): the KPI's change per standard
    deviation of the lever, the others held fixed. It is null for categorical levers.

    Args:
        runs: the sweep's runs (see the module docstring).
        levers: lever columns to analyse.
        kpis: KPI columns; by default those of :data:`MAIN_KPIS` present in ``runs``.
        confidence: coverage of the intervals, 0..1 exclusive.

    Returns:
        One row per lever and KPI (lever-major), schema :data:`EFFECTS`; null intervals
        where a group has fewer than two runs.

    Raises:
        ResultsError: a lever or KPI is not a column of ``runs``, or a bad confidence.
    """
    stats.check_confidence(confidence)
    names = _kpis(runs, kpis)
    frame = successful_runs(runs, levers, names)
    rows = []
    for kpi in names:
        valid = frame.filter(pl.col(kpi).is_finite())
        slopes = _slopes(valid, levers, kpi, confidence)
        for lever in levers:
            rows.append(_effect_row(valid, lever, kpi, confidence) | slopes.get(lever, {}))
    order = {lever: i for i, lever in enumerate(levers)}
    rows.sort(key=lambda row: order[row["lever"]])
    return pl.DataFrame(rows, schema=EFFECTS)


def _effect_row(frame: pl.DataFrame, lever: str, kpi: str, confidence: float) -> dict[str, Any]:
    unit = KPIS[kpi].unit if kpi in KPIS else ""
    row: dict[str, Any] = {"lever": lever, "kpi": kpi, "unit": unit, "significant": False}
    if frame.is_empty():
        return row
    column = frame[lever]
    if is_categorical(column.dtype):
        means = frame.group_by(pl.col(lever).cast(pl.String)).agg(pl.col(kpi).mean())
        means = means.sort(kpi, lever)
        low, high = means[lever][0], means[lever][-1]
        pairs = means.height * (means.height - 1) // 2
        confidence = 1.0 - (1.0 - confidence) / max(pairs, 1)
        in_low, in_high = column.cast(pl.String) == low, column.cast(pl.String) == high
    elif column.n_unique() <= MAX_LEVELS:
        low, high = _level(column.min()), _level(column.max())
        in_low, in_high = column == column.min(), column == column.max()
    else:
        cut_low, cut_high = column.quantile(BIN_SHARE), column.quantile(1.0 - BIN_SHARE)
        low, high = f"<= {_level(cut_low)}", f">= {_level(cut_high)}"
        in_low, in_high = column <= cut_low, column >= cut_high
    values = frame[kpi].to_numpy()
    a, b = values[in_low.to_numpy()], values[in_high.to_numpy()]
    row |= {"low_level": low, "high_level": high}
    row |= {"mean_at_low": float(a.mean()), "mean_at_high": float(b.mean())}
    if column.n_unique() < 2:  # a lever that never moved has no effect to estimate
        return row
    row["effect"] = float(b.mean() - a.mean())
    half = stats.welch_half_width(a, b, confidence=confidence)
    if half is not None:
        row |= {"ci_low": row["effect"] - half, "ci_high": row["effect"] + half}
        row["significant"] = not row["ci_low"] <= 0.0 <= row["ci_high"]
    return row


def _slopes(
    frame: pl.DataFrame, levers: Sequence[str], kpi: str, confidence: float
) -> dict[str, dict[str, float]]:
    """OLS of the KPI on all levers: per numeric lever, its slope per SD and interval."""
    columns: list[np.ndarray] = [np.ones(frame.height)]
    numeric: dict[str, int] = {}  # lever -> index of its coefficient
    for lever in levers:
        column = frame[lever]
        if is_categorical(column.dtype):
            categories = column.cast(pl.String)
            for category in sorted(categories.unique().to_list())[1:]:
                columns.append((categories == category).to_numpy().astype(float))
        elif frame.height > 1 and (column.std() or 0.0) > 0.0:
            x = column.cast(pl.Float64).to_numpy()
            numeric[lever] = len(columns)
            columns.append((x - x.mean()) / x.std(ddof=1))
    x, y = np.column_stack(columns), frame[kpi].to_numpy()
    dof = frame.height - x.shape[1]
    if dof < 1:
        return {}
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    sigma2 = float(np.sum((y - x @ beta) ** 2)) / dof
    se = np.sqrt(np.maximum(np.diag(np.linalg.pinv(x.T @ x)) * sigma2, 0.0))
    t = stats.t_quantile(0.5 + confidence / 2.0, dof)
    return {
        lever: {
            "slope_per_sd": float(beta[j]),
            "slope_ci_low": float(beta[j] - t * se[j]),
            "slope_ci_high": float(beta[j] + t * se[j]),
        }
        for lever, j in numeric.items()
    }


# --------------------------------------------------------------------------- importance


def lever_importance(
    runs: pl.DataFrame,
    levers: Sequence[str],
    *,
    kpi: str,
    n_repeats: int = 10,
    random_state: int = 0,
) -> pl.DataFrame:
    """How much each lever drives a KPI: permutation importance in a surrogate model.

    A random forest (200 trees, at least 3 runs per leaf) learns the KPI from the lever
    values (categorical levers ordinal-encoded) on about three quarters of the sweep's
    points; on the held-out points each lever is shuffled ``n_repeats`` times and the
    importance is the mean drop of the surrogate's R². Points, not runs, are held out (when
    there are at least four), so the replicates of one point never sit on both sides.
    Deterministic given ``random_state``.

    Args:
        runs: the sweep's runs (see the module docstring).
        levers: lever columns to rank.
        kpi: the KPI column to explain.
        n_repeats: shuffles per lever.
        random_state: seed of the split, the forest and the shuffles.

    Returns:
        One row per lever, most important first: ``kpi``, ``lever``, ``importance_mean``
        and ``importance_std`` (drop of R²), ``rank`` (1 = most important) and
        ``surrogate_r2``, the surrogate's R² on the held-out runs (the same in every
        row; a low value means the ranking explains little).

    Raises:
        ResultsError: fewer than :data:`MIN_IMPORTANCE_RUNS` successful runs with a finite
            KPI, a constant KPI, or an unknown column.
    """
    frame = successful_runs(runs, levers, [_kpis(runs, [kpi])[0]])
    frame = frame.filter(pl.col(kpi).is_finite())
    if frame.height < MIN_IMPORTANCE_RUNS:
        raise ResultsError(
            f"cannot rank levers: runs must have at least {MIN_IMPORTANCE_RUNS} successful "
            f"runs with a finite {kpi}, got {frame.height} (sweep more points or seeds)"
        )
    if frame[kpi].n_unique() == 1:
        raise ResultsError(
            f"cannot rank levers: kpi {kpi} is constant over the sweep, got {frame[kpi][0]} "
            "in every run (no lever moves it; pick another KPI)"
        )
    x = np.column_stack([_ordinal(frame[lever]) for lever in levers])
    y = frame[kpi].to_numpy()
    by_point = "point" in frame.columns and frame["point"].n_unique() * TEST_SHARE >= 1
    groups = frame["point"].to_numpy() if by_point else np.arange(frame.height)
    split = GroupShuffleSplit(n_splits=1, test_size=TEST_SHARE, random_state=random_state)
    train, test = next(split.split(x, y, groups))
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=3, random_state=random_state)
    forest.fit(x[train], y[train])
    scores = permutation_importance(
        forest, x[test], y[test], n_repeats=n_repeats, random_state=random_state
    )
    table = pl.DataFrame(
        {
            "kpi": kpi,
            "lever": list(levers),
            "importance_mean": scores.importances_mean,
            "importance_std": scores.importances_std,
        }
    )
    table = table.sort("importance_mean", descending=True, maintain_order=True)
    return table.with_columns(
        rank=pl.int_range(1, table.height + 1, dtype=pl.Int64),
        surrogate_r2=pl.lit(float(forest.score(x[test], y[test])), dtype=pl.Float64),
    )


def is_conclusive(ranks: pl.DataFrame) -> bool:
    """Whether a lever ranking may be said: its surrogate's held-out R² is at least
    :data:`MIN_SURROGATE_R2` and shuffling the top lever hurts the surrogate."""
    r2, top = ranks["surrogate_r2"][0], ranks["importance_mean"][0]
    return r2 is not None and r2 >= MIN_SURROGATE_R2 and top > 0.0


def importance_sentence(ranks: pl.DataFrame) -> str:
    """The lever ranking in one sentence, or why it is inconclusive.

    Example: "Spot share (every service) matters most for availability, then deploy policy
    (every team); on-call size (every team) barely matters." A ranking whose surrogate
    explains little (held-out R² below :data:`MIN_SURROGATE_R2`), or where no lever's
    shuffling hurts the surrogate, is inconclusive and says so instead of ranking.

    Args:
        ranks: :func:`lever_importance`'s result (one KPI).

    Returns:
        One sentence, ending with a full stop.
    """
    kpi = ranks["kpi"][0]
    what = in_sentence(KPIS[kpi].label) if kpi in KPIS else kpi
    r2, top = ranks["surrogate_r2"][0], ranks["importance_mean"][0]
    if not is_conclusive(ranks):
        return (
            f"Inconclusive: the levers explain little of {what} (the surrogate's held-out R² is "
            f"{r2:.2f}, below {MIN_SURROGATE_R2}), so no lever can be said to matter most; "
            "sweep more seeds or wider ranges."
        )
    labels = [lever_label(lever) for lever in ranks["lever"]]
    others = list(zip(labels[1:], ranks["importance_mean"][1:] / top, strict=True))
    then = [in_sentence(label) for label, share in others if share >= BARELY]
    barely = [in_sentence(label) for label, share in others if share < BARELY]
    text = f"{labels[0]} matters most for {what}"
    if then:
        text += f", then {_listed(then)}"
    if barely:
        text += f"; {_listed(barely)} barely matter{'s' if len(barely) == 1 else ''}"
    return text + "."


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _ordinal(column: pl.Series) -> np.ndarray:
    """Numeric levers as floats, categorical ones as the rank of their sorted category."""
    if is_categorical(column.dtype):
        return (column.cast(pl.String).rank("dense") - 1).cast(pl.Float64).to_numpy()
    return column.cast(pl.Float64).to_numpy()


# --------------------------------------------------------------------------- report


def format_sweep_report(
    runs: pl.DataFrame,
    levers: Sequence[str],
    *,
    kpis: Sequence[str] | None = None,
    condition: str | pl.Expr | None = None,
) -> str:
    """A sweep's lever effects, lever importance and discovered box, as plain text.

    Args:
        runs: the sweep's runs (see the module docstring).
        levers: lever columns.
        kpis: KPIs of the effects table; by default those of :data:`MAIN_KPIS` present.
            Importance is ranked for ``availability_pct`` if among them, else the first.
        condition: a condition for :func:`discover`; no discovery section when None.

    Returns:
        The report, newline-separated (no trailing newline).
    """
    names = _kpis(runs, kpis)
    n_failed = runs.filter(pl.col("error").is_not_null()).height if "error" in runs.columns else 0
    lines = [
        f"Sweep: {runs.height} runs ({n_failed} failed), levers: {', '.join(levers)}",
        "",
        "Lever effects, lowest to highest level (* = 95% CI excludes zero):",
        _effects_table(lever_effects(runs, levers, kpis=names)),
    ]
    headline = "availability_pct" if "availability_pct" in names else names[0]
    lines += ["", f"Lever importance for {headline} (random-forest surrogate):"]
    try:
        ranks = lever_importance(runs, levers, kpi=headline)
    except ResultsError as error:
        lines.append(f"- {error}")
    else:
        lines[-1] = lines[-1][:-2] + f", held-out R² {ranks['surrogate_r2'][0]:.2f}):"
        sentence = importance_sentence(ranks)
        lines.append(sentence)
        rows = [
            [
                str(r["rank"]),
                r["lever"],
                f"{r['importance_mean']:.3f}",
                f"{r['importance_std']:.3f}",
            ]
            for r in ranks.iter_rows(named=True)
        ]
        headers = ["rank", "lever", "importance", "std"]
        if is_conclusive(ranks):  # an inconclusive ranking is not shown
            lines.append(format_table(headers, rows, right=[0, 2, 3]))
    if condition is not None:
        found = discover(runs, levers, condition=condition)
        lines += ["", "Scenario discovery (PRIM):", found.in_words(), f"- {found.describe()}."]
    return "\n".join(lines)


def _effects_table(effects: pl.DataFrame) -> str:
    rows = []
    for row in effects.iter_rows(named=True):
        unit = row["unit"]
        interval = f"{format_delta(row['ci_low'], unit)} to {format_delta(row['ci_high'], unit)}"
        rows.append(
            [
                row["lever"],
                row["kpi"],
                f"{row['low_level'] or '?'} → {row['high_level'] or '?'}",
                " → ".join(format_value(row[k], unit) for k in ("mean_at_low", "mean_at_high")),
                format_delta(row["effect"], unit),
                interval if row["ci_low"] is not None else "n/a",
                "*" if row["significant"] else "",
            ]
        )
    headers = ["lever", "KPI", "low → high", "mean", "effect", "95% CI", ""]
    return format_table(headers, rows, right=[3, 4, 5])


def effects_in_words(effects: pl.DataFrame) -> pl.DataFrame:
    """:func:`lever_effects` for people: labels, formatted numbers, a yes/no for "clear".

    Args:
        effects: :func:`lever_effects`' result.

    Returns:
        One row per lever and KPI, all text: ``Lever``, ``KPI``, ``From → to`` (the
        lever's levels), ``Mean from → to`` and ``Change`` (formatted for the KPI's
        unit), ``95% interval`` and ``Clear`` ("yes" when the interval excludes zero).
    """
    rows = []
    for row in effects.iter_rows(named=True):
        unit = row["unit"]
        kpi = KPIS[row["kpi"]].label if row["kpi"] in KPIS else row["kpi"]
        interval = "n/a"
        if row["ci_low"] is not None:
            low, high = (format_delta(row[k], unit) for k in ("ci_low", "ci_high"))
            interval = f"{low} to {high}"
        means = [
            with_unit(format_value(row[k], unit), unit) for k in ("mean_at_low", "mean_at_high")
        ]
        rows.append(
            {
                "Lever": lever_label(row["lever"]),
                "KPI": kpi,
                "From → to": f"{row['low_level'] or '?'} → {row['high_level'] or '?'}",
                "Mean from → to": " → ".join(means),
                "Change": with_unit(format_delta(row["effect"], unit), unit),
                "95% interval": interval,
                "Clear": "yes" if row["significant"] else "no",
            }
        )
    columns = ["Lever", "KPI", "From → to", "Mean from → to", "Change", "95% interval", "Clear"]
    return pl.DataFrame(rows, schema={c: pl.String() for c in columns})


# --------------------------------------------------------------------------- helpers


def _kpis(runs: pl.DataFrame, kpis: Sequence[str] | None) -> list[str]:
    if isinstance(kpis, str):
        raise ResultsError(f"kpis must be a sequence of KPI names, got the string {kpis!r}")
    names = list(kpis) if kpis is not None else [k for k in MAIN_KPIS if k in runs.columns]
    names = names or [k for k in KPIS if k in runs.columns]
    for name in names:
        if name not in runs.columns or not runs.schema[name].is_numeric():
            raise ResultsError(
                f"kpis must be numeric columns of runs, got {name!r}"
                + in_brackets(did_you_mean(name, runs.columns))
            )
    if not names:
        raise ResultsError("runs must have KPI columns, got none of orgtwin.KPIS")
    return names


def _level(value: Any) -> str:
    """A lever value for people: ``"4"``, ``"0.25"``, ``"1500"``, ``"cab"``."""
    if not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
