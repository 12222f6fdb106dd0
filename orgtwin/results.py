"""Run results: one run, the seeds of one scenario, their files on disk, and comparisons.

A :class:`RunResult` is what the simulator returns for one seed. A :class:`RunSet` holds
several seeds of one scenario as polars frames (the frames are the source of truth, so a
set loaded from disk is as good as one just simulated). :func:`compare` turns two sets
into one row per KPI: the change in the mean with a confidence interval across seeds.

Example:
    >>> from orgtwin.results import RunSet, compare  # doctest: +SKIP
    >>> base, cab = RunSet.load("out/base"), RunSet.load("out/cab")  # doctest: +SKIP
    >>> compare(base, cab, kpis=["lead_time_hours"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from orgtwin import metrics, tables
from orgtwin.errors import ResultsError, did_you_mean, in_brackets

RUN_COLUMNS: dict[str, pl.DataType] = {
    "run_id": pl.String(),  # f"{scenario}/{replicate}"
    "scenario": pl.String(),
    "replicate": pl.Int64(),
    "seed": pl.Int64(),
    "days": pl.Int64(),
}
KEY_COLUMNS: dict[str, pl.DataType] = {"run_id": pl.String(), "seed": pl.Int64()}
"""Columns in front of every row of a set's series and event tables."""

SUMMARY = RUN_COLUMNS | {name: pl.Float64() for name in metrics.KPIS}
"""Schema of :attr:`RunSet.summary`: one row per run, every KPI of :data:`metrics.KPIS`."""

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


@dataclass(frozen=True, eq=False)
class RunResult:
    """One simulated run (one seed) of a scenario.

    Attributes:
        scenario: the scenario name.
        seed: the seed the run used.
        replicate: index of the run among the seeds of a multi-seed run, 0..M-1.
        start: wall time of tick 0 (timezone-naive UTC).
        days: length of the run, days (one tick is one hour).
        slo_availability: the availability target, a fraction (``0.999``).
        slo_latency_p95_ms: the p95 latency target, ms.
        series: per-tick values, schema :data:`orgtwin.tables.SERIES`.
        events: every table of :data:`orgtwin.tables.EVENT_TABLES`, in its schema.
    """

    scenario: str
    seed: int
    replicate: int
    start: datetime
    days: int
    slo_availability: float
    slo_latency_p95_ms: float
    series: pl.DataFrame
    events: dict[str, pl.DataFrame]

    def __post_init__(self) -> None:
        missing = [name for name in tables.EVENT_TABLES if name not in self.events]
        if missing:
            raise ResultsError(
                f"run {self.scenario}/{self.replicate}: events must hold every table of "
                f"{', '.join(tables.EVENT_TABLES)}, missing {', '.join(missing)}"
            )

    @property
    def run_id(self) -> str:
        """``"<scenario>/<replicate>"``."""
        return f"{self.scenario}/{self.replicate}"

    def summary(self) -> dict[str, float]:
        """Every KPI of the run (see :func:`orgtwin.metrics.summarise`)."""
        return metrics.summarise(self)


@dataclass(frozen=True, eq=False)
class RunSet:
    """Several seeds of one scenario, as frames.

    Attributes:
        scenario: the scenario name.
        days: length of every run, days.
        summary: one row per run, schema :data:`SUMMARY`, ordered by replicate.
        series: every run's series, ``run_id`` and ``seed`` in front of
            :data:`orgtwin.tables.SERIES`.
        tables: every event table by name, ``run_id`` and ``seed`` in front of its schema.

    Example:
        >>> runset = RunSet.from_runs(runs)  # doctest: +SKIP
        >>> runset.summary.select("seed", "users", "availability_pct")  # doctest: +SKIP
    """

    scenario: str
    days: int
    summary: pl.DataFrame
    series: pl.DataFrame
    tables: dict[str, pl.DataFrame]

    @classmethod
    def from_runs(cls, runs: Sequence[RunResult]) -> RunSet:
        """Gather runs of one scenario (any order) into a set.

        Raises:
            ResultsError: no runs, runs of different scenarios or lengths, a replicate
                given twice, or a table without the columns of its schema.
        """
        if not runs:
            raise ResultsError("runs must hold at least one RunResult, got none")
        _check_alike(runs)
        runs = sorted(runs, key=lambda run: run.replicate)
        summary = pl.DataFrame(
            [
                {
                    "run_id": run.run_id,
                    "scenario": run.scenario,
                    "replicate": run.replicate,
                    "seed": run.seed,
                    "days": run.days,
                    **run.summary(),
                }
                for run in runs
            ],
            schema=SUMMARY,
        )
        series = pl.concat([_keyed(run, run.series, "series", tables.SERIES) for run in runs])
        event_tables = {
            name: pl.concat([_keyed(run, run.events[name], name, schema) for run in runs])
            for name, schema in tables.EVENT_TABLES.items()
        }
        return cls(runs[0].scenario, runs[0].days, summary, series, event_tables)

    @property
    def seeds(self) -> list[int]:
        """The seed of every run, in replicate order."""
        return self.summary["seed"].to_list()

    def __len__(self) -> int:
        return self.summary.height

    def events(self, name: str) -> pl.DataFrame:
        """One event table of every run, ``run_id`` and ``seed`` in front.

        Raises:
            ResultsError: ``name`` is not a telemetry table.
        """
        if name not in self.tables:
            raise ResultsError(
                f"name must be one of {', '.join(self.tables)}, got {name!r}"
                + in_brackets(did_you_mean(name, self.tables))
            )
        return self.tables[name]

    def describe(self, *, confidence: float = 0.95) -> pl.DataFrame:
        """Mean of every KPI over the seeds, with a Student-t interval for the mean.

        Args:
            confidence: coverage of the interval, 0..1 exclusive.

        Returns:
            Columns ``kpi``, ``unit``, ``mean``, ``ci_low``, ``ci_high``, ``n`` (runs with a
            finite value); the interval is null below two runs.
        """
        metrics.check_confidence(confidence)
        rows = []
        for kpi, spec in metrics.KPIS.items():
            mean, half, n = metrics.mean_interval(
                self.summary[kpi].to_numpy(), confidence=confidence
            )
            low, high = _interval(mean, half)
            rows.append((kpi, spec.unit, mean, low, high, n))
        schema = {"kpi": pl.String, "unit": pl.String, "mean": pl.Float64}
        schema |= {"ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.Int64}
        return pl.DataFrame(rows, schema=schema, orient="row")

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the set as Parquet: ``summary``, ``series`` and one file per event table.

        Every file is first written under a temporary name in ``directory``; only when
        all are written are they renamed into place (``summary.parquet`` last), so a
        failure leaves the previous contents, never a half-written file.

        Returns:
            The directory.
        """
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        files = {f"{name}.parquet": frame for name, frame in self.tables.items()}
        files |= {"series.parquet": self.series, "summary.parquet": self.summary}
        staged: list[tuple[Path, Path]] = []
        try:
            for filename, frame in files.items():
                handle, tmp = tempfile.mkstemp(dir=root, prefix=f".{filename}.", suffix=".tmp")
                os.close(handle)
                staged.append((Path(tmp), root / filename))
                _write_frame(frame, Path(tmp))
            for tmp, final in staged:
                os.replace(tmp, final)
        finally:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
        return root

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> RunSet:
        """Read a set written by :meth:`save`.

        Raises:
            ResultsError: the directory or a file is missing, unreadable, lacks a column
                or holds no run; the message names the file and the columns expected.
        """
        root = Path(directory)
        if not root.is_dir():
            raise ResultsError(
                f"{root}: must be a directory written by RunSet.save "
                "(summary.parquet, series.parquet, one <table>.parquet per event table), "
                "got no such directory"
            )
        summary = _read(root / "summary.parquet", SUMMARY)
        if summary.height == 0:
            raise ResultsError(f"{root / 'summary.parquet'}: must hold at least one run, got 0")
        series = _read(root / "series.parquet", KEY_COLUMNS | tables.SERIES)
        event_tables = {
            name: _read(root / f"{name}.parquet", KEY_COLUMNS | schema)
            for name, schema in tables.EVENT_TABLES.items()
        }
        return cls(summary["scenario"][0], int(summary["days"][0]), summary, series, event_tables)


def _check_alike(runs: Sequence[RunResult]) -> None:
    first = runs[0]
    for run in runs:
        if (run.scenario, run.days) != (first.scenario, first.days):
            raise ResultsError(
                f"runs must share one scenario and length, got {first.scenario!r} "
                f"({first.days} days) and {run.scenario!r} ({run.days} days)"
            )
    replicates = [run.replicate for run in runs]
    if len(set(replicates)) != len(replicates):
        raise ResultsError(f"replicates must be distinct, got {sorted(replicates)}")


def _keyed(run: RunResult, frame: pl.DataFrame, name: str, schema: dict) -> pl.DataFrame:
    """``frame`` in ``schema`` with the run's ``run_id`` and ``seed`` in front."""
    missing = [column for column in schema if column not in frame.columns]
    if missing:
        raise ResultsError(
            f"run {run.run_id}: {name} must have columns {', '.join(schema)}, "
            f"missing {', '.join(missing)}"
        )
    return frame.select(
        pl.lit(run.run_id, pl.String).alias("run_id"),
        pl.lit(run.seed, pl.Int64).alias("seed"),
        *(pl.col(column).cast(dtype) for column, dtype in schema.items()),
    )


def _write_frame(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path)


def _read(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Read one Parquet file and check it holds ``schema``'s columns and types."""
    expected = f"a Parquet file with columns {', '.join(schema)}"
    if not path.is_file():
        raise ResultsError(f"{path}: must be {expected}, got no such file")
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ResultsError(f"{path}: must be {expected}, got an unreadable file ({exc})") from exc
    missing = [column for column in schema if column not in frame.columns]
    if missing:
        raise ResultsError(f"{path}: must be {expected}, missing {', '.join(missing)}")
    wrong = [f"{c} is {frame.schema[c]}" for c, t in schema.items() if frame.schema[c] != t]
    if wrong:
        kinds = ", ".join(f"{c} {t}" for c, t in schema.items())
        raise ResultsError(f"{path}: columns must be {kinds}, got {', '.join(wrong)}")
    return frame.select(list(schema))


# --------------------------------------------------------------------------- comparison


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
        kpis: names from :data:`orgtwin.metrics.KPIS`; all of them by default.
        confidence: coverage of the interval, 0..1 exclusive.

    Returns:
        One row per KPI, schema :data:`COMPARISON`. ``n`` is the number of paired seeds
        (``paired``) or the smaller sample (``welch``). Below two, the interval is null
        and ``significant`` is false. ``significant`` means the interval excludes zero;
        a KPI that did not move is ``flat`` and never significant.

    Raises:
        ResultsError: an unknown KPI or a confidence outside (0, 1).

    Example:
        >>> table = compare(base, cab, kpis=["lead_time_hours"])  # doctest: +SKIP
        >>> table.select("kpi", "delta", "ci_low", "ci_high", "significant")  # doctest: +SKIP
    """
    names = _check_kpis(kpis)
    metrics.check_confidence(confidence)
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
    _, half, n = metrics.mean_interval(b - a, confidence=confidence)
    return _Estimate(float(a.mean()), float(b.mean()), half, n)


def _welch(base: pl.Series, change: pl.Series, confidence: float) -> _Estimate:
    a, b = base.to_numpy(), change.to_numpy()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n = min(a.size, b.size)
    if n == 0:
        return _Estimate(None, None, None, 0)
    half = metrics.welch_half_width(a, b, confidence=confidence)
    return _Estimate(float(a.mean()), float(b.mean()), half, n)


def _comparison_row(kpi: str, estimate: _Estimate, method: str) -> dict[str, object]:
    spec = metrics.KPIS[kpi]
    row: dict[str, object] = {"kpi": kpi, "unit": spec.unit, "n": estimate.n, "method": method}
    row |= {"base_mean": estimate.base_mean, "change_mean": estimate.change_mean}
    row |= {"significant": False}
    if estimate.base_mean is None or estimate.change_mean is None:
        return row
    base_mean, change_mean = estimate.base_mean, estimate.change_mean
    delta = change_mean - base_mean
    flat = abs(delta) <= 1e-12 * max(abs(base_mean), abs(change_mean))
    low, high = _interval(delta, estimate.half_width)
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


def _interval(centre: float | None, half: float | None) -> tuple[float | None, float | None]:
    if centre is None or half is None:
        return None, None
    return centre - half, centre + half


def _check_kpis(kpis: Sequence[str] | None) -> list[str]:
    if kpis is None:
        return list(metrics.KPIS)
    if isinstance(kpis, str):
        raise ResultsError(f"kpis must be a sequence of KPI names, got the string {kpis!r}")
    for kpi in kpis:
        if kpi not in metrics.KPIS:
            raise ResultsError(
                f"kpis must be names from metrics.KPIS, got {kpi!r}"
                + in_brackets(did_you_mean(kpi, metrics.KPIS))
            )
    return list(kpis)
