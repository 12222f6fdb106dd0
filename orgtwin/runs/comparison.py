"""Comparing runs: the change of every KPI from one run set to another, with its uncertainty.

:func:`compare` turns two sets into one row per KPI: the change in the mean with a
confidence interval across seeds, paired by seed when both sets ran the same seeds.

Example:
    >>> import orgtwin
    >>> base = orgtwin.run("scenarios/baseline.yaml", days=20, seeds=2)
    >>> cab = orgtwin.run("scenarios/cab_policy.yaml", days=20, seeds=2)
    >>> table = compare(base, cab, kpis=["lead_time_hours", "deploy_frequency_per_day"])
    >>> table["method"].to_list()
    ['paired', 'paired']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from orgtwin.errors import ResultsError, did_you_mean, in_brackets
from orgtwin.runs import stats
from orgtwin.runs.results import RunSet
from orgtwin.runs.stats import interval
from orgtwin.world.kpis import KPIS

COMPARISON: dict[str, pl.DataType] = {
    "kpi": pl.String(),
    "unit": pl.String(),
    "base_mean": pl.Float64(),
    "change_mean": pl.Float64(),
    "delta": pl.Float64(),  # change_mean - base_mean, in the KPI's unit
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "rel_delta": pl.Float64(),  # delta / |base_mean|; null when base_mean is 0
    "n": pl.Int64(),
    "significant": pl.Boolean(),
    "direction": pl.String(),  # up | down | flat
    "better": pl.Boolean(),  # null when the KPI has no good direction or did not move
    "method": pl.String(),  # paired | welch
}
"""Schema of :func:`compare`'s result."""


def compare(
    base: RunSet,
    change: RunSet,
    *,
    kpis: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """Change of every KPI's mean from ``base`` to ``change``, with its uncertainty.

    When both sets ran the same seeds, runs are matched by seed and the interval is a
    Student-t interval of the paired differences (common random numbers cancel, so it
    is much tighter). Otherwise it is Welch's interval for a difference of means. Runs
    whose KPI is ``NaN`` (undefined) are left out of that KPI.

    Args:
        base: the reference set.
        change: the set with the change applied.
        kpis: names from :data:`orgtwin.world.kpis.KPIS`; all of them by default.
        confidence: coverage of the interval, 0..1 exclusive.

    Returns:
        One row per KPI, schema :data:`COMPARISON`. ``n`` is the number of paired seeds
        (``paired``) or the smaller sample (``welch``). Below two, the interval is null
        and ``significant`` is false. ``significant`` means the interval excludes zero;
        a KPI that did not move is ``flat`` and never significant.

    Raises:
        ResultsError: an unknown KPI or a confidence outside (0, 1).

    Example:
        >>> import orgtwin
        >>> base = orgtwin.run("scenarios/baseline.yaml", days=30, seeds=3)
        >>> cab = orgtwin.run("scenarios/cab_policy.yaml", days=30, seeds=3)
        >>> row = compare(base, cab, kpis=["lead_time_hours"]).row(0, named=True)
        >>> row["direction"], row["significant"], row["ci_low"] > 0  # boards make changes wait
        ('up', True, True)
    """
    names = _check_kpis(kpis)
    stats.check_confidence(confidence)
    paired = _same_seeds(base.summary, change.summary)
    joined = base.summary.join(change.summary, on="seed", suffix="_change") if paired else None
    rows = []
    for kpi in names:
        if joined is not None:
            estimate = _paired(joined[kpi], joined[f"{kpi}_change"], confidence)
        else:
            estimate = _welch(base.summary[kpi], change.summary[kpi], confidence)
        rows.append(_comparison_row(kpi, estimate, "paired" if paired else "welch"))
    return pl.DataFrame(rows, schema=COMPARISON)


class _Estimate(NamedTuple):
    base_mean: float | None
    change_mean: float | None
    half_width: float | None  # of the interval around change_mean - base_mean
    n: int


def _paired(base: pl.Series, change: pl.Series, confidence: float) -> _Estimate:
    a, b = base.to_numpy(), change.to_numpy()
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size == 0:
        return _Estimate(None, None, None, 0)
    _, half, n = stats.mean_interval(b - a, confidence=confidence)
    return _Estimate(float(a.mean()), float(b.mean()), half, n)


def _welch(base: pl.Series, change: pl.Series, confidence: float) -> _Estimate:
    a, b = base.to_numpy(), change.to_numpy()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n = min(a.size, b.size)
    if n == 0:
        return _Estimate(None, None, None, 0)
    half = stats.welch_half_width(a, b, confidence=confidence)
    return _Estimate(float(a.mean()), float(b.mean()), half, n)


def _comparison_row(kpi: str, estimate: _Estimate, method: str) -> dict[str, object]:
    spec = KPIS[kpi]
    row: dict[str, object] = {"kpi": kpi, "unit": spec.unit, "n": estimate.n, "method": method}
    row |= {"base_mean": estimate.base_mean, "change_mean": estimate.change_mean}
    row |= {"significant": False}
    if estimate.base_mean is None or estimate.change_mean is None:
        return row
    base_mean, change_mean = estimate.base_mean, estimate.change_mean
    delta = change_mean - base_mean
    flat = abs(delta) <= 1e-12 * max(abs(base_mean), abs(change_mean))
    low, high = interval(delta, estimate.half_width)
    direction = "flat" if flat else ("up" if delta > 0 else "down")
    row |= {"delta": 0.0 if flat else delta, "ci_low": low, "ci_high": high}
    row["rel_delta"] = (0.0 if flat else delta / abs(base_mean)) if base_mean != 0 else None
    crosses_zero = low is None or high is None or low <= 0.0 <= high
    row["significant"] = not flat and not crosses_zero
    row["direction"] = direction
    if not flat and spec.higher_is_better is not None:
        row["better"] = (direction == "up") == spec.higher_is_better
    return row


def _same_seeds(base: pl.DataFrame, change: pl.DataFrame) -> bool:
    """Whether both sets ran exactly the same distinct seeds."""
    a, b = base["seed"], change["seed"]
    return a.n_unique() == a.len() and b.n_unique() == b.len() and set(a) == set(b)


def _check_kpis(kpis: Sequence[str] | None) -> list[str]:
    if kpis is None:
        return list(KPIS)
    if isinstance(kpis, str):
        raise ResultsError(f"kpis must be a sequence of KPI names, got the string {kpis!r}")
    for kpi in kpis:
        if kpi not in KPIS:
            raise ResultsError(
                f"kpis must be names from orgtwin.KPIS, got {kpi!r}"
                + in_brackets(did_you_mean(kpi, KPIS))
            )
    return list(kpis)


SCENARIOS_COMPARISON: dict[str, pl.DataType] = {
    "scenario": pl.String(),
    "kpi": pl.String(),
    "label": pl.String(),
    "unit": pl.String(),
    "mean": pl.Float64(),
    "ci_low": pl.Float64(),  # interval of the mean across seeds
    "ci_high": pl.Float64(),
    "delta": pl.Float64(),  # mean - the first scenario's mean; null for the first
    "delta_low": pl.Float64(),
    "delta_high": pl.Float64(),
    "significant": pl.Boolean(),
    "better": pl.Boolean(),
}
"""Schema of :func:`compare_scenarios`' result."""


def compare_scenarios(
    runsets: Sequence[RunSet],
    *,
    kpis: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """Several scenarios side by side: each KPI's mean, and its change against the first.

    Run every set on the same seeds so that each change is a paired comparison (the noise
    of the seeds cancels, see :func:`compare`).

    Args:
        runsets: two or more run sets; the first is the reference.
        kpis: names from :data:`orgtwin.world.kpis.KPIS`; all of them by default.
        confidence: coverage of the intervals, 0..1 exclusive.

    Returns:
        One row per (scenario, KPI), scenarios in the order given, schema
        :data:`SCENARIOS_COMPARISON`; the delta columns are null for the first scenario.

    Raises:
        ResultsError: fewer than one run set, an unknown KPI or a confidence outside (0, 1).

    Example:
        >>> import orgtwin
        >>> sets = [orgtwin.run(f"scenarios/{name}.yaml", days=20, seeds=2)
        ...         for name in ("baseline", "price_increase")]
        >>> table = compare_scenarios(sets, kpis=["revenue_usd"])
        >>> table.select("scenario", "delta").rows()[0]
        ('baseline', None)
    """
    if not runsets:
        raise ResultsError("runsets must hold at least one RunSet, got none")
    names = _check_kpis(kpis)
    stats.check_confidence(confidence)
    first = runsets[0]
    frames = []
    for i, runset in enumerate(runsets):
        described = runset.describe(confidence=confidence).filter(pl.col("kpi").is_in(names))
        frame = described.select(
            pl.lit(runset.scenario, pl.String).alias("scenario"),
            "kpi",
            pl.col("kpi").replace_strict({k: KPIS[k].label for k in names}).alias("label"),
            "unit",
            "mean",
            "ci_low",
            "ci_high",
        )
        if i == 0:
            versus = pl.DataFrame(schema={"kpi": pl.String} | _DELTAS)
        else:
            versus = compare(first, runset, kpis=names, confidence=confidence).select(
                "kpi",
                "delta",
                pl.col("ci_low").alias("delta_low"),
                pl.col("ci_high").alias("delta_high"),
                "significant",
                "better",
            )
        frames.append(frame.join(versus, on="kpi", how="left", maintain_order="left"))
    return pl.concat(frames).select([pl.col(c).cast(t) for c, t in SCENARIOS_COMPARISON.items()])


_DELTAS = {
    c: SCENARIOS_COMPARISON[c]
    for c in ("delta", "delta_low", "delta_high", "significant", "better")
}
