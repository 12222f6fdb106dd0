"""Run results: one run, the seeds of one scenario, and their files on disk.

A :class:`RunResult` is what the simulator returns for one seed. A :class:`RunSet` holds
several seeds of one scenario as polars frames (the frames are the source of truth, so a
set loaded from disk is as good as one just simulated). A results folder holds a set and,
under ``base/``, its base scenario's (:func:`save_results`); it is written as a whole.

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
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from orgtwin.errors import ResultsError, did_you_mean, in_brackets
from orgtwin.runs import stats
from orgtwin.runs.stats import interval
from orgtwin.scenario.spec import CostSpec
from orgtwin.telemetry import schemas as tables
from orgtwin.world.kpis import KPIS, summarise

RUN_COLUMNS: dict[str, pl.DataType] = {
    "run_id": pl.String(),  # f"{scenario}/{replicate}"
    "scenario": pl.String(),
    "replicate": pl.Int64(),
    "seed": pl.Int64(),
    "days": pl.Int64(),
}
KEY_COLUMNS: dict[str, pl.DataType] = {"run_id": pl.String(), "seed": pl.Int64()}
"""Columns in front of every row of a set's series and event tables."""

SUMMARY = RUN_COLUMNS | {name: pl.Float64() for name in KPIS}
"""Schema of :attr:`RunSet.summary`: one row per run, every KPI of
:data:`~orgtwin.world.kpis.KPIS`."""
RESULT_FILES: tuple[str, ...] = (
    *(f"{name}.parquet" for name in tables.EVENT_TABLES),
    "series.parquet",
    "summary.parquet",
)
"""The files :meth:`RunSet.save` writes into a results folder, in the order it writes them."""
BASE_FOLDER = "base"
"""The folder inside a results folder that holds the base scenario's runs."""


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
        costs: what engineers' time and turnover cost, for the KPIs in money.
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
    costs: CostSpec = field(default_factory=CostSpec)

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
        """Every KPI of the run (see :func:`orgtwin.world.kpis.summarise`)."""
        return summarise(
            self.series, self.events, start=self.start, days=self.days,
            slo_availability=self.slo_availability, costs=self.costs,
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
        for kpi, spec in KPIS.items():
            mean, half, n = stats.mean_interval(self.summary[kpi].to_numpy(), confidence=confidence)
            low, high = interval(mean, half)
            rows.append((kpi, spec.unit, mean, low, high, n))
        schema = {"kpi": pl.String, "unit": pl.String, "mean": pl.Float64}
        schema |= {"ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.Int64}
        return pl.DataFrame(rows, schema=schema, orient="row")

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the set as Parquet: ``summary``, ``series`` and one file per event table.

        The folder is written as a whole by :func:`save_results`: a failure or a kill
        leaves the previous contents, never a half-written file or a mixture of old and
        new files.

        Args:
            directory: the results folder: a new or empty folder, or (with
                ``overwrite``) one of earlier results.
            overwrite: replace earlier results in ``directory`` (the whole folder).

        Returns:
            The directory.

        Raises:
            ResultsError: ``directory`` cannot take the results (see
                :func:`check_results_folder`) or a file could not be written.
        """
        return save_results(directory, self, overwrite=overwrite)

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


# --------------------------------------------------------------------------- folders


def check_results_folder(directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check that a run's results can be written to ``directory``, before running it.

    ``directory`` must be a folder, or a path where one can be created, in a folder
    orgtwin can write in (checked by creating and removing a temporary file in each
    folder a write touches). An existing folder must hold nothing but orgtwin results
    and what an interrupted write left; earlier results are replaced, as a whole, only
    with ``overwrite``.

    Args:
        directory: the results folder.
        overwrite: whether earlier results in ``directory`` may be replaced.

    Returns:
        ``directory`` with symbolic links resolved: the folder a write replaces.

    Raises:
        ResultsError: ``directory`` is a file, a mount point, the current folder or
            one around it, holds a file orgtwin did not write, holds earlier results and
            ``overwrite`` is false, or is in a folder orgtwin cannot write in.
    """
    shown = Path(directory)
    folder = shown.resolve()
    try:
        if folder.exists():
            _check_existing(folder, shown, overwrite=overwrite)
        around = _nearest_folder(folder.parent)
        _probe(around, around)
    except OSError as exc:
        raise _unwritable(shown, exc) from exc
    return folder


def save_results(
    directory: str | os.PathLike[str],
    runs: RunSet,
    base: RunSet | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a run set, and its base scenario's under ``base/``, as one folder.

    The new folder is written beside ``directory`` under a temporary name, then swapped
    in: the earlier folder is renamed aside, the new one renamed into place and the
    earlier one removed. A failure or a kill leaves the earlier results whole, never a
    mixture of old and new files nor a stale ``base/``. Temporary folders that an
    interrupted write left beside ``directory`` (holding only orgtwin results) are
    removed first.

    Args:
        directory: the results folder (see :func:`check_results_folder`).
        runs: the run set written at the top of the folder.
        base: the base scenario's run set, written under ``base/``; None for none.
        overwrite: replace earlier results in ``directory``.

    Returns:
        ``directory``.

    Raises:
        ResultsError: ``directory`` fails :func:`check_results_folder`, or a file could
            not be written (the earlier contents are kept).
    """
    shown = Path(directory)
    folder = check_results_folder(shown, overwrite=overwrite)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(folder)
        staged = _sibling(folder, "new")
        try:
            _write_folder(staged, runs, base)
            _swap_in(staged, folder)
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # gone already once swapped in
    except OSError as exc:
        raise _unwritable(shown, exc, kept=True) from exc
    return shown


def _check_existing(folder: Path, shown: Path, *, overwrite: bool) -> None:
    """Check an existing results folder: ours, replaceable and writable."""
    if not folder.is_dir():
        raise ResultsError(f"{shown}: must be a folder, got a file")
    if os.path.ismount(folder) or _holds_the_current_folder(folder):
        what = "a mount point" if os.path.ismount(folder) else "the current folder or one around it"
        raise ResultsError(
            f"{shown}: must be a folder that can be replaced as a whole, got {what} "
            "(name a new folder inside it)"
        )
    stranger = _stranger(folder)
    if stranger is not None:
        raise ResultsError(
            f"{shown}: must be a new or empty folder or one of orgtwin results, got "
            f"{stranger}, which orgtwin did not write (nothing was changed)"
        )
    earlier = _earlier_result(folder)
    if earlier is not None and not overwrite:
        raise ResultsError(
            f"{shown}: must be a new or empty folder, got earlier results ({earlier}); "
            "--overwrite (overwrite=True in Python) replaces them"
        )
    _probe(folder, shown)


def _holds_the_current_folder(folder: Path) -> bool:
    """Whether the process works in ``folder`` or below it (a swap would pull it away)."""
    try:
        return Path.cwd().resolve().is_relative_to(folder)
    except OSError:  # the current folder is gone already
        return False


def _earlier_result(folder: Path) -> str | None:
    """A result file in ``folder`` or its ``base/`` (the summary if there), or None."""
    for where in (folder, folder / BASE_FOLDER):
        present = [name for name in RESULT_FILES if (where / name).is_file()]
        if present:  # RESULT_FILES ends with the summary
            return (where / present[-1]).relative_to(folder).as_posix()
    return None


def _stranger(folder: Path, *, top: bool = True) -> str | None:
    """The first entry of ``folder`` that orgtwin did not write, as a relative path."""
    for entry in sorted(folder.iterdir()):
        if top and entry.name == BASE_FOLDER and entry.is_dir() and not entry.is_symlink():
            inner = _stranger(entry, top=False)
            if inner is not None:
                return f"{BASE_FOLDER}/{inner}"
        elif not (entry.is_file() and (entry.name in RESULT_FILES or _is_leftover(entry.name))):
            return entry.name + ("/" if entry.is_dir() else "")
    return None


def _is_leftover(name: str) -> bool:
    """Whether ``name`` is a temporary file of an interrupted :meth:`RunSet.save`."""
    return name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in RESULT_FILES)


def _nearest_folder(path: Path) -> Path:
    """``path`` or its nearest existing ancestor, which must be a folder."""
    while not path.exists() and path.parent != path:
        path = path.parent
    if not path.is_dir():
        raise ResultsError(f"{path}: must be a folder, got a file")
    return path


def _probe(folder: Path, shown: Path) -> None:
    """Create and remove a temporary file in ``folder`` (unnamed where the system allows)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise _unwritable(shown, exc) from exc


def _unwritable(shown: Path, exc: OSError, *, kept: bool = False) -> ResultsError:
    """The error for a folder where writing failed with ``exc``."""
    kept_words = "; the earlier contents are kept" if kept else ""
    return ResultsError(
        f"{shown}: must be a folder orgtwin can write in, got {exc.strerror or exc}{kept_words}"
    )


def _sibling(folder: Path, tag: str) -> Path:
    """A fresh temporary name beside ``folder``: ``.<name>.<pid>-<random>.<tag>.tmp``."""
    return folder.with_name(f".{folder.name}.{os.getpid()}-{secrets.token_hex(4)}.{tag}.tmp")


def _writer_alive(name: str, prefix: str) -> bool:
    """Whether the temporary folder ``name`` belongs to a write still running here (its
    pid is alive): another ``save_results`` into the same folder at the same time."""
    pid, sep, _ = name[len(prefix) :].partition("-")
    if not (sep and pid.isdigit() and int(pid) > 0):  # os.kill(0, …) is the process group
        return False
    try:
        os.kill(int(pid), 0)
    except PermissionError:  # alive, another user's
        return True
    except (ProcessLookupError, OverflowError):  # gone, or no pid at all
        return False
    return True


def _remove_leftovers(folder: Path) -> None:
    """Remove the temporary folders interrupted writes left beside ``folder``.

    Only folders named ``.<name>.*.tmp`` that hold nothing but orgtwin results go, and
    not those of a write whose process still runs.
    """
    prefix = f".{folder.name}."
    for entry in folder.parent.iterdir():
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        if _writer_alive(entry.name, prefix):
            continue
        try:
            ours = entry.is_dir() and not entry.is_symlink() and _stranger(entry) is None
        except OSError:  # unreadable: not ours to judge, so left alone
            continue
        if ours:
            shutil.rmtree(entry, ignore_errors=True)


def _write_folder(folder: Path, runs: RunSet, base: RunSet | None) -> None:
    """Create ``folder`` and write ``runs`` into it, ``base`` under ``base/``."""
    folder.mkdir()
    _write_set(runs, folder)
    if base is not None:
        (folder / BASE_FOLDER).mkdir()
        _write_set(base, folder / BASE_FOLDER)


def _write_set(runs: RunSet, folder: Path) -> None:
    frames = {f"{name}.parquet": frame for name, frame in runs.tables.items()}
    frames |= {"series.parquet": runs.series, "summary.parquet": runs.summary}
    for filename in RESULT_FILES:
        _write_frame(frames[filename], folder / filename)


def _swap_in(staged: Path, folder: Path) -> None:
    """Rename ``staged`` to ``folder``; an existing ``folder`` goes aside, then away."""
    if not folder.exists():
        staged.rename(folder)
        return
    aside = _sibling(folder, "old")
    folder.rename(aside)
    try:
        staged.rename(folder)
    except BaseException:
        aside.rename(folder)
        raise
    shutil.rmtree(aside, ignore_errors=True)


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
