"""Plain-text reports of run sets and comparisons, for the CLI and logs.

Pure string functions: no colour, no terminal library. Numbers are formatted by unit:
thousands separators, percentages with two decimals (their changes in percentage points,
``pp``), money with ``$`` and no cents from $1,000 up.

Example:
    >>> import orgtwin
    >>> base = orgtwin.run("scenarios/baseline.yaml", days=20, seeds=2)
    >>> cab = orgtwin.run("scenarios/cab_policy.yaml", days=20, seeds=2)
    >>> text = format_comparison(orgtwin.compare(base, cab), base_name="baseline",
    ...                          change_name="cab_policy", seeds=2, days=20)
    >>> text.splitlines()[0]
    'cab_policy vs baseline: 2 seeds x 20 days, paired by seed'
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from orgtwin.runs.results import RunSet
from orgtwin.units import MISSING, format_delta, format_table, format_value, with_unit
from orgtwin.world.kpis import KPIS

_SHORT_UNITS = {"h", "ms"}
"""Units written after every value in a sentence; others only after its interval."""


def format_summary(runset: RunSet, *, confidence: float = 0.95) -> str:
    """One line per KPI: its mean over the seeds and the confidence interval of the mean.

    Args:
        runset: the runs to summarise.
        confidence: coverage of the interval, 0..1 exclusive.

    Returns:
        A header line and an aligned table, newline-separated (no trailing newline).
    """
    described = runset.describe(confidence=confidence)
    level = _percent_label(confidence)
    rows = [
        [
            row["kpi"],
            row["unit"],
            format_value(row["mean"], row["unit"]),
            _range(row["ci_low"], row["ci_high"], row["unit"], signed=False),
        ]
        for row in described.iter_rows(named=True)
    ]
    header = f"{runset.scenario}: {_plural(len(runset), 'seed')} x {_plural(runset.days, 'day')}"
    table = format_table(["KPI", "unit", "mean", f"{level} CI"], rows, right=[2, 3])
    return f"{header}\n\n{table}"


def format_comparison(
    cmp: pl.DataFrame,
    *,
    base_name: str,
    change_name: str,
    seeds: int,
    days: int,
    confidence: float = 0.95,
) -> str:
    """A comparison table followed by what moved beyond noise, in plain language.

    Args:
        cmp: the result of :func:`orgtwin.runs.comparison.compare`.
        base_name: what the base set is called (a scenario name).
        change_name: what the changed set is called.
        seeds: seeds per scenario.
        days: length of each run, days.
        confidence: the coverage ``cmp`` was computed with.

    Returns:
        The report, newline-separated (no trailing newline).
    """
    level = _percent_label(confidence)
    methods = set(cmp["method"].to_list()) if "method" in cmp.columns else set()
    pairing = ", paired by seed" if methods == {"paired"} else ""
    lines = [
        f"{change_name} vs {base_name}: {_plural(seeds, 'seed')} x {_plural(days, 'day')}{pairing}",
        f"base = {base_name}, change = {change_name}; * = beyond noise at {level}",
        "",
        _comparison_table(cmp, level),
        "",
        "What moved beyond noise:",
    ]
    moved = cmp.filter(pl.col("significant"))
    if moved.is_empty():
        lines.append(f"- Nothing: no KPI's {level} interval excludes zero.")
        most_seeds = cmp["n"].max()
        if not isinstance(most_seeds, int) or most_seeds < 2:
            lines.append("- With fewer than two seeds there is no interval; run more seeds.")
    else:
        lines += [_sentence(row, level) for row in moved.iter_rows(named=True)]
    return "\n".join(lines)


def _comparison_table(cmp: pl.DataFrame, level: str) -> str:
    rows = [
        [
            row["kpi"],
            row["unit"],
            format_value(row["base_mean"], row["unit"]),
            format_value(row["change_mean"], row["unit"]),
            format_delta(row["delta"], row["unit"]),
            _range(row["ci_low"], row["ci_high"], row["unit"], signed=True),
            "*" if row["significant"] else "",
        ]
        for row in cmp.iter_rows(named=True)
    ]
    headers = ["KPI", "unit", "base", "change", "delta", f"{level} CI", ""]
    return format_table(headers, rows, right=[2, 3, 4, 5])


def _sentence(row: dict[str, Any], level: str) -> str:
    """One line: ``- Lead time for changes rose 310% (from 6.2 h to 25.4 h; 95% CI …): worse.``"""
    kpi, unit = row["kpi"], row["unit"]
    label = KPIS[kpi].label if kpi in KPIS else kpi
    short = f" {unit}" if unit in _SHORT_UNITS else ""
    rel = row["rel_delta"]
    if unit == "%":
        size = format_delta(row["delta"], unit)[1:]
    elif rel is not None and math.isfinite(rel):
        size = _relative(abs(rel))
    else:
        size = f"by {format_delta(row['delta'], unit)[1:]}{short}"
    start = format_value(row["base_mean"], unit) + short
    end = format_value(row["change_mean"], unit) + short
    interval = with_unit(_range(row["ci_low"], row["ci_high"], unit, signed=True), unit)
    verb = "rose" if row["direction"] == "up" else "fell"
    judgement = {True: ": better", False: ": worse"}.get(row["better"], "")
    return f"- {label} {verb} {size} (from {start} to {end}; {level} CI {interval}){judgement}."


def _range(low: float | None, high: float | None, unit: str, *, signed: bool) -> str:
    if _missing(low) or _missing(high):
        return MISSING
    show = format_delta if signed else format_value
    if unit == "%" and signed:  # one "pp" after the pair, not after each bound
        return f"{show(low, unit)[:-3]} to {show(high, unit)}"
    return f"{show(low, unit)} to {show(high, unit)}"


def _relative(fraction: float) -> str:
    """A relative change in percent: two significant figures below 1% (``0.042%``, not
    ``0.0%``), one decimal below 10%, whole percent above."""
    percent = 100.0 * fraction
    if 0 < percent < 1:
        return f"{percent:.2g}%"
    return f"{percent:,.1f}%" if percent < 10 else f"{percent:,.0f}%"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _percent_label(confidence: float) -> str:
    return f"{100.0 * confidence:g}%"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
