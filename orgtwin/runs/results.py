"""Run results: one run, the seeds of one scenario, and their files on disk.

A :class:`RunResult` is what the simulator returns for one seed. A :class:`RunSet` holds
several seeds of one scenario as polars frames (the frames are the source of truth, so a
set loaded from disk is as good as one just simulated).

Example:
    >>> import tempfile, orgtwin
    >>> runs = orgtwin.run("scenarios/baseline.yaml", days=2, seeds=2)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     again = RunSet.load(runs.save(folder))
    >>> again.summary.equals(runs.summary), sorted(again.tables)[:2]
    (True, ['calls', 'deploys'])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from orgtwin.errors import ResultsError, did_you_mean, in_brackets
from orgtwin.runs import metrics, stats
from orgtwin.runs.stats import interval
from orgtwin.telemetry import schemas as tables

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
        series: per-tick values, schema :data:`orgtwin.telemetry.schemas.SERIES`.
        events: every table of :data:`orgtwin.telemetry.schemas.EVENT_TABLES`, in its schema.
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
        """Every KPI of the run (see :func:`orgtwin.runs.metrics.summarise`)."""
        return metrics.summarise(
            self.series, self.events, start=self.start, days=self.days,
            slo_availability=self.slo_availability,
        )  # fmt: skip


@dataclass(frozen=True, eq=False)
class RunSet:
    """Several seeds of one scenario, as frames.

    Attributes:
        scenario: the scenario name.
        days: length of every run, days.
        summary: one row per run, schema :data:`SUMMARY`, ordered by replicate.
        series: every run's series, ``run_id`` and ``seed`` in front of
            :data:`orgtwin.telemetry.schemas.SERIES`.
        tables: every event table by name, ``run_id`` and ``seed`` in front of its schema.

    Example:
        >>> from orgtwin import load_scenario, simulate
        >>> baseline = load_scenario("scenarios/baseline.yaml")
        >>> runs = [simulate(baseline, seed=s, days=2, replicate=r) for r, s in enumerate([4, 9])]
        >>> runset = RunSet.from_runs(runs)
        >>> runset.summary.select("seed", "replicate").rows(), len(runset)
        ([(4, 0), (9, 1)], 2)
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
        stats.check_confidence(confidence)
        rows = []
        for kpi, spec in metrics.KPIS.items():
            mean, half, n = stats.mean_interval(self.summary[kpi].to_numpy(), confidence=confidence)
            low, high = interval(mean, half)
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
