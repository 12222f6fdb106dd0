"""Executing a sweep: one chunk of runs, and the back ends that schedule chunks.

A *unit* is one run of a sweep: a point of the design, a replicate, its seed and its
lever values. A *chunk* is a short list of consecutive units, the unit of scheduling:
big enough that per-task overhead stays small, small enough that the work balances.

:func:`run_chunk` is pure (a scenario as a plain mapping in, polars frames out), so the
serial back end and a Ray worker on another machine run the very same code and give the
same rows. A back end only schedules chunks and hands each finished one to the driver's
``on_chunk`` callback, which writes it to disk: workers never touch the results folder
(a cluster's nodes need not share the driver's filesystem).

Back ends are context managers with a ``workers`` attribute and a ``run`` method:
:class:`SerialBackend` (in this process) and :class:`RayBackend` (local Ray sized to the
machine, or an existing cluster). Ray is imported only inside :class:`RayBackend`, never
when orgtwin is imported.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import numpy as np
import polars as pl

from orgtwin.runs.runner import simulate
from orgtwin.scenario.levers import apply_levers
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.runtime import ray_runtime
from orgtwin.units import HOURS_PER_DAY
from orgtwin.world.kpis import KPI_TABLES, KPIS

SeriesMode = Literal["none", "daily", "hourly"]
SERIES_MODES: tuple[SeriesMode, ...] = ("none", "daily", "hourly")

TASK_NAME = "orgtwin_sweep_chunk"
"""Name of the Ray task that runs a chunk (worker processes show ``ray::<name>``)."""
MAX_RETRIES = 3
"""Times Ray reruns a chunk whose worker process died."""
IN_FLIGHT_PER_WORKER = 2
"""Chunks submitted per worker at most: enough to keep workers busy, few enough that
finished results never pile up in the driver."""

TARGET_CHUNK_S = 2.0
"""Least work per chunk the chunking aims at, s: a task's start and hand-over cost Ray
about 10 ms, which this keeps under one percent."""
MAX_RESULTS_PER_S = 25.0
"""Chunk results per second the chunking lets all workers together hand the driver at
most: with many workers the chunks grow (``workers / MAX_RESULTS_PER_S`` s of work), so
that taking a result in and writing its shard (a few ms each) never makes workers wait."""
CHUNKS_PER_WORKER = 3
"""Fewest chunks per worker, so that the last chunks balance across workers."""
MAX_CHUNK_ROWS = 1_000_000
"""Most series rows a chunk may hold (bounds the memory of one chunk's results)."""

RUN_SCHEMA: dict[str, pl.DataType] = {
    "point": pl.Int64(),
    "replicate": pl.Int64(),
    "seed": pl.Int64(),
    **{name: pl.Float64() for name in KPIS},
    "wall_s": pl.Float64(),  # wall time of the run, s
    "error": pl.String(),  # "<ExceptionType>: <message>", null when the run succeeded
}
"""Columns a chunk's runs frame has (the driver adds the lever columns after ``seed``)."""


@dataclass(frozen=True)
class Unit:
    """One run of a sweep.

    Attributes:
        point: row of the design, 0-based.
        replicate: index of the seed at this point, 0-based.
        seed: the run's seed (see :func:`orgtwin.sweeps.api.sweep` for how it is derived).
        values: lever path -> value at this point.
    """

    point: int
    replicate: int
    seed: int
    values: Mapping[str, Any]


OnChunk = Callable[[Sequence[Unit], pl.DataFrame, pl.DataFrame | None], None]
"""Called by a back end in the driver with each finished chunk: units, runs, series."""
ChunkFn = Callable[..., tuple[pl.DataFrame, pl.DataFrame | None]]
"""What runs a chunk: ``(scenario, units, *, days, series) -> (runs, series)``."""


# --------------------------------------------------------------------------- one chunk


def run_chunk(
    scenario: Mapping[str, Any] | Scenario,
    units: Sequence[Unit],
    *,
    days: int,
    series: SeriesMode,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Run every unit of a chunk; a run that raises becomes a row with its error.

    Args:
        scenario: the swept scenario, as ``Scenario.model_dump(mode="json")`` or loaded.
        units: the runs to do, in order.
        days: days per run.
        series: ``"none"``, ``"daily"`` (daily means of every hourly value) or
            ``"hourly"`` (every tick).

    Returns:
        The runs frame (schema :data:`RUN_SCHEMA`, one row per unit, in order) and the
        series frame (None when ``series`` is ``"none"``).
    """
    base = scenario if isinstance(scenario, Scenario) else Scenario.model_validate(scenario)
    rows: list[dict[str, Any]] = []
    frames: list[pl.DataFrame] = []
    for unit in units:
        row, frame = _run_unit(base, unit, days=days, series=series)
        rows.append(row)
        if frame is not None:
            frames.append(frame)
    runs = pl.DataFrame(rows, schema=RUN_SCHEMA, orient="row")
    if series == "none":
        return runs, None
    return runs, pl.concat(frames) if frames else empty_series(series)


def _run_unit(
    base: Scenario, unit: Unit, *, days: int, series: SeriesMode
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    started = time.perf_counter()
    kpis: Mapping[str, float] = {}
    frame = error = None
    try:
        scenario = apply_levers(base, unit.values)
        result = simulate(
            scenario,
            seed=unit.seed,
            days=days,
            replicate=unit.replicate,
            tables=KPI_TABLES,  # a sweep keeps KPIs and series, not the event tables
            series="daily" if series == "daily" else "hourly",
        )
        kpis = result.summary()
        if series != "none":
            frame = series_frame(result.series, unit, series)
    except Exception as exc:  # a failing run is recorded with its point; the sweep goes on
        kpis, frame, error = {}, None, f"{type(exc).__name__}: {exc}"
    row = {"point": unit.point, "replicate": unit.replicate, "seed": unit.seed}
    row |= {name: kpis.get(name) for name in KPIS}
    row |= {"wall_s": time.perf_counter() - started, "error": error}
    return row, frame


def series_frame(series: pl.DataFrame, unit: Unit, mode: SeriesMode) -> pl.DataFrame:
    """One run's series as stored by a sweep: daily means or every tick, keyed by unit.

    Args:
        series: the run's series (schema :data:`orgtwin.telemetry.schemas.SERIES`), daily means as
            :func:`orgtwin.runs.runner.simulate` gives them with ``series="daily"`` in that mode.
        unit: the run.
        mode: ``"daily"`` (``day``, the mean over the day's hours) or ``"hourly"``
            (``tick``, as recorded).
    """
    frame = series.with_columns(pl.col("entity_type", "entity", "metric").cast(pl.String))
    if mode == "daily":  # already daily means (simulate(series="daily")): tick = day's first hour
        frame = frame.with_columns(day=pl.col("tick") // HOURS_PER_DAY)
    time_column = "day" if mode == "daily" else "tick"
    return frame.select(
        pl.lit(unit.point, pl.Int64).alias("point"),
        pl.lit(unit.replicate, pl.Int64).alias("replicate"),
        pl.col(time_column).cast(pl.Int32),
        "entity_type",
        "entity",
        "metric",
        pl.col("value").cast(pl.Float64),
    )


def empty_series(mode: SeriesMode) -> pl.DataFrame:
    """A series frame with no rows, in the schema ``mode`` stores."""
    return pl.DataFrame(schema=series_schema(mode))


def series_schema(mode: SeriesMode) -> dict[str, pl.DataType]:
    """Columns of the stored series in ``mode`` (``"daily"`` or ``"hourly"``)."""
    time_column = "day" if mode == "daily" else "tick"
    return {
        "point": pl.Int64(),
        "replicate": pl.Int64(),
        time_column: pl.Int32(),
        "entity_type": pl.String(),
        "entity": pl.String(),
        "metric": pl.String(),
        "value": pl.Float64(),
    }


# --------------------------------------------------------------------------- chunks


def chunk_seconds(workers: int) -> float:
    """Work per chunk the chunking aims at for ``workers`` workers, s.

    Example:
        >>> chunk_seconds(2), chunk_seconds(64)
        (2.0, 2.56)
    """
    return max(TARGET_CHUNK_S, workers / MAX_RESULTS_PER_S)


def chunk_size(run_s: float, rows_per_run: int, n_units: int, workers: int) -> int:
    """Runs per chunk: about :func:`chunk_seconds` of work, balanced and memory-bounded.

    Args:
        run_s: estimated wall time of one run, s.
        rows_per_run: series rows one run keeps.
        n_units: runs to chunk.
        workers: workers sharing them.

    Example:
        >>> chunk_size(0.5, 0, 200, 2), chunk_size(0.02, 0, 200, 2)
        (4, 33)
    """
    by_time = math.ceil(chunk_seconds(workers) / max(run_s, 1e-4))
    balanced = max(1, n_units // (CHUNKS_PER_WORKER * workers))
    by_rows = max(1, MAX_CHUNK_ROWS // max(rows_per_run, 1))
    return max(1, min(by_time, balanced, by_rows))


def plan_chunks(unit: Callable[[int], Unit], indexes: np.ndarray, size: int, workers: int
                ) -> Iterator[list[Unit]]:  # fmt: skip
    """Chunks of ``size`` runs, smaller towards the end so that workers finish together.

    Args:
        unit: the run at an index.
        indexes: the runs to chunk, in order.
        size: runs per chunk (see :func:`chunk_size`).
        workers: workers sharing the chunks.
    """
    start = 0
    while start < indexes.size:
        left = indexes.size - start
        step = max(1, min(size, left // (CHUNKS_PER_WORKER * workers)))
        yield [unit(i) for i in indexes[start : start + step]]
        start += step


# --------------------------------------------------------------------------- back ends


@dataclass
class Lost:
    """Units a back end could not complete (their chunk failed even after retries)."""

    units: list[Unit] = field(default_factory=list)
    last_error: str | None = None


class SerialBackend:
    """Runs chunks one after the other in this process (small sweeps, debugging).

    Attributes:
        workers: always 1.
        name: ``"serial"``.
    """

    name = "serial"

    def __init__(self) -> None:
        self.workers = 1

    def __enter__(self) -> SerialBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, scenario: Mapping[str, Any], chunks: Iterable[Sequence[Unit]], *,
            days: int, series: SeriesMode, on_chunk: OnChunk, lost: Lost | None = None
            ) -> Lost:  # fmt: skip
        """Run every chunk and hand it to ``on_chunk``; nothing is ever lost here."""
        for chunk in chunks:
            runs, frames = run_chunk(scenario, chunk, days=days, series=series)
            on_chunk(chunk, runs, frames)
        return lost or Lost()


class RayBackend:
    """Runs chunks as Ray tasks: a local Ray sized to the machine, or a cluster.

    Entering uses this process's Ray runtime (:func:`orgtwin.sweeps.runtime.ray_runtime`:
    a local Ray bound to 127.0.0.1, a cluster, or the Ray the caller initialised), shared
    with any other sweep of the process; leaving releases it. A chunk whose worker
    process dies is rerun (:data:`MAX_RETRIES` times); results are taken as they finish
    (``ray.wait``) with at most :data:`IN_FLIGHT_PER_WORKER` chunks per worker submitted,
    so the driver holds only a few chunks' results at any time.

    Args:
        address: ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` of a running
            cluster; None starts a local Ray, unless ``RAY_ADDRESS`` is set (then that
            cluster is used). If Ray is already initialised in this process, it is used.
        workers: local: CPUs given to a local Ray this sweep starts (default: every
            core); a cluster, or a runtime already running: chunks the sweep plans for
            (default: its CPUs).
        task: what a Ray task runs on a chunk (default :func:`run_chunk`; the sweep
            benchmark gives one that sleeps, to time the orchestration alone).

    Attributes:
        workers: number of workers the sweep plans for.
        name: ``"ray"``.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None,
                 task: ChunkFn | None = None) -> None:  # fmt: skip
        self.address = address
        self.requested = workers
        self.workers = workers or 1
        self.task = task or run_chunk
        self._ray: Any = None
        self._session = contextlib.ExitStack()

    def __enter__(self) -> RayBackend:
        self._ray = self._session.enter_context(
            ray_runtime(address=self.address, cpus=self.requested)
        )
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, self.requested or cpus)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._session.close()

    def run(self, scenario: Mapping[str, Any], chunks: Iterable[Sequence[Unit]], *,
            days: int, series: SeriesMode, on_chunk: OnChunk, lost: Lost | None = None
            ) -> Lost:  # fmt: skip
        """Submit chunks as workers free up; hand each finished one to ``on_chunk``.

        Returns:
            ``lost`` (or a new :class:`Lost`) with the units of chunks that failed even
            after :data:`MAX_RETRIES` retries added.

        Raises:
            KeyboardInterrupt: as it came; finished chunks are already handed over. The
                chunks in flight are left to Ray, which stops a job's tasks when its driver
                disconnects (cancelling them here can crash Ray's task manager when a
                task finishes at that very moment: ``task_manager.cc`` check failure).
        """
        ray = self._ray
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(self.task).options(name=TASK_NAME)
        scenario_ref = ray.put(dict(scenario))
        pending: dict[Any, Sequence[Unit]] = {}
        todo = iter(chunks)
        lost = lost or Lost()
        while True:
            while len(pending) < IN_FLIGHT_PER_WORKER * self.workers:
                chunk = next(todo, None)
                if chunk is None:
                    break
                pending[task.remote(scenario_ref, chunk, days=days, series=series)] = chunk
            if not pending:
                return lost
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                self._collect(ref, pending.pop(ref), on_chunk, lost)

    def _collect(self, ref: Any, chunk: Sequence[Unit], on_chunk: OnChunk, lost: Lost) -> None:
        try:
            runs, frames = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            lost.units.extend(chunk)
            lost.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            return
        on_chunk(chunk, runs, frames)
