"""Running scenarios: one seed (:func:`simulate`) or many (:func:`run`), here or in a pool.

Seeds are derived, never drawn: replicate ``r`` of a run with base seed ``s`` uses
``derive_seed(s, r)``, so the same scenario and base seed give identical results on
any machine and in any order, serially or in worker processes.

Parallel runs (``run(..., workers=4)``) use a persistent pool of worker processes
(:func:`process_pool`): started with the ``spawn`` method of a private context (the
global start method is left alone), created on first use, kept and reused by every
later call with the same number of workers (so an interactive page pays the start-up
once), and shut down when the interpreter exits. A scenario travels to the workers as
its JSON dict and is validated again there; each worker also computes its runs' KPI
summaries, so the parent only gathers frames.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from orgtwin import recording, tables
from orgtwin.errors import OrgTwinError
from orgtwin.loading import check_timing, load_scenario
from orgtwin.model import OrgModel
from orgtwin.results import RunResult, RunSet
from orgtwin.scenario import HOURS_PER_DAY, Scenario

ScenarioLike = Scenario | str | os.PathLike[str] | Mapping
POOL_START_METHOD = "spawn"
"""Start method of the worker processes (a private context; the global one is untouched)."""
MAX_WORKERS = 256
"""Most worker processes one pool may have."""
SeriesResolution = Literal["hourly", "daily"]
SERIES_RESOLUTIONS: tuple[SeriesResolution, ...] = ("hourly", "daily")
KPI_TABLES: tuple[str, ...] = ("deploys", "incidents", "pages")
"""The telemetry tables the KPI summary reads (pass as ``tables=`` when only KPIs matter)."""
ShippedScenario = tuple[dict[str, Any], str, str | None]
"""A scenario on its way to a worker: its JSON dict, ``source`` and ``base``."""


def derive_seed(base: int, *keys: int) -> int:
    """A 63-bit seed derived from a base seed and integer keys (replicate, point…).

    Example:
        >>> derive_seed(7, 0) == derive_seed(7, 0) != derive_seed(7, 1)
        True
    """
    state = np.random.SeedSequence([int(base), *map(int, keys)]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def as_scenario(scenario: ScenarioLike) -> Scenario:
    """Load ``scenario`` if it is a path or a mapping; return it as is if already loaded."""
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def simulate(
    scenario: ScenarioLike,
    *,
    seed: int,
    days: int | None = None,
    replicate: int = 0,
    behaviours: Mapping[str, object] | None = None,
    tables: Collection[str] | None = None,
    series: SeriesResolution = "hourly",
) -> RunResult:
    """Run one seed of a scenario and return its series, events and summary.

    Args:
        scenario: a :class:`Scenario`, or a path to a scenario file.
        seed: the run's seed (used as given, not derived).
        days: days to simulate (default: the scenario's ``days``).
        replicate: the run's index among the seeds of a multi-seed run.
        behaviours: replacement behaviours by key (see :func:`orgtwin.world.behaviour`).
        tables: names of the telemetry tables to build (the others are left empty, in
            their schema; they cost time and memory: ``user_days`` is the dearest);
            every table by default. The KPI summary needs ``deploys``, ``incidents``
            and ``pages``.
        series: ``"hourly"`` (every tick) or ``"daily"``: one row per day, ``tick``
            the day's first hour and ``value`` the mean over the day's hours; the KPIs
            are then computed from every hour first (the result is a
            :class:`SummarisedRun`).

    Returns:
        The run's :class:`RunResult`.

    Raises:
        OrgTwinError: ``series`` or ``tables`` names something unknown.
    """
    sc = as_scenario(scenario)
    days = sc.days if days is None else int(days)
    check_timing(sc, days)
    if series not in SERIES_RESOLUTIONS:
        raise OrgTwinError(f"series must be 'hourly' or 'daily', got {series!r}")
    _check_tables(tables)
    model = OrgModel(sc, seed=seed, days=days, behaviours=behaviours)
    model.run()
    model.finish()
    result = RunResult(
        scenario=sc.name,
        seed=seed,
        replicate=replicate,
        start=sc.start,
        days=days,
        slo_availability=sc.slo.availability_target,
        slo_latency_p95_ms=sc.slo.latency_p95_ms,
        series=model.recorder.to_frame(),
        events=telemetry(model, only=tables),
    )
    if series == "daily":
        return SummarisedRun.of(result, series=daily_series(model.recorder))
    return result


def daily_series(recorder: recording.SeriesRecorder) -> pl.DataFrame:
    """A run's series at daily resolution, straight from its recorder's arrays.

    Returns:
        Schema :data:`orgtwin.tables.SERIES`, one row per day × entity × metric:
        ``tick`` is the day's first hour, ``value`` the mean over the day's hours.
    """
    days = recorder.n_ticks // HOURS_PER_DAY
    daily = recording.SeriesRecorder(days, recorder.entities, recorder.metrics)
    daily.arrays = {
        kind: values[: days * HOURS_PER_DAY]
        .reshape(days, HOURS_PER_DAY, *values.shape[1:])
        .mean(axis=1)
        for kind, values in recorder.arrays.items()
    }
    return daily.to_frame().with_columns(pl.col("tick") * HOURS_PER_DAY)


def telemetry(model: OrgModel, *, only: Collection[str] | None = None) -> dict[str, pl.DataFrame]:
    """Every telemetry table of a finished model, in the schemas of :mod:`orgtwin.tables`.

    Args:
        model: a model that has run.
        only: names of the tables to build; the others come back empty (all by default).

    Raises:
        OrgTwinError: ``only`` names a table that does not exist.
    """
    log = model.events
    builders: dict[str, Callable[[], pl.DataFrame]] = {
        "requests": lambda: _requests_table(model),
        "calls": lambda: _calls_table(model),
        "deploys": log.deploys_table,
        "incidents": log.incidents_table,
        "user_days": log.user_days_table,
        "vendor_status": lambda: _vendor_status_table(model),
        "pages": log.pages_table,
    }
    _check_tables(only)
    wanted = set(builders) if only is None else set(only)
    return {
        name: build() if name in wanted else tables.empty(name) for name, build in builders.items()
    }


def _check_tables(names: Collection[str] | None) -> None:
    unknown = sorted(set(names or ()) - set(tables.EVENT_TABLES))
    if unknown or isinstance(names, str):
        known = ", ".join(tables.EVENT_TABLES)
        raise OrgTwinError(f"tables must name telemetry tables ({known}), got {names!r}")


def _requests_table(model: OrgModel) -> pl.DataFrame:
    rec = model.recorder
    n_ticks, names = rec.n_ticks, model.mesh.names
    demand = rec.metric("service", "demand_rps") * 3600.0
    start = np.datetime64(model.scenario.start, "us")
    times = start + np.arange(n_ticks).astype("timedelta64[h]")
    frame = pl.DataFrame(
        {
            "time": np.repeat(times, len(names)),
            "service": np.tile(np.array(names), n_ticks),
            "requests": demand.reshape(-1),
            "errors": (demand * rec.metric("service", "error_rate")).reshape(-1),
            "latency_p50_ms": rec.metric("service", "latency_p50_ms").reshape(-1),
            "latency_p95_ms": rec.metric("service", "latency_p95_ms").reshape(-1),
            "cpu": rec.metric("service", "utilisation").reshape(-1),
            "replicas": rec.metric("service", "replicas").reshape(-1),
        }
    )
    return frame.select([pl.col(c).cast(t) for c, t in tables.REQUESTS.items()])


def _calls_table(model: OrgModel) -> pl.DataFrame:
    mesh = model.mesh
    totals = model.service_request_totals
    rows = [
        (caller, mesh.names[j], float(totals[i] * mesh.fanout[i, j]))
        for i, caller in enumerate(mesh.names)
        for j in np.flatnonzero(mesh.fanout[i])
    ]
    vendor_names = [v.name for v in model.vendors]
    rows += [
        (caller, vendor_names[v], float(model.vendor_call_totals[i, v]))
        for i, caller in enumerate(mesh.names)
        for v in np.flatnonzero(model.vendor_call_totals[i])
    ]
    return pl.DataFrame(rows, schema=tables.CALLS, orient="row")


def _vendor_status_table(model: OrgModel) -> pl.DataFrame:
    start = model.scenario.start
    rows = [
        (v.name, start + timedelta(hours=s), start + timedelta(hours=min(e, model.n_ticks)))
        for v in model.vendors
        for s, e in v.outage_windows()
        if s < model.n_ticks
    ]
    return pl.DataFrame(rows, schema=tables.VENDOR_STATUS, orient="row")


def run(
    scenario: ScenarioLike,
    *,
    days: int | None = None,
    seeds: int | None = None,
    seed: int | None = None,
    behaviours: Mapping[str, object] | None = None,
    workers: int | None = None,
) -> RunSet:
    """Run a scenario over several seeds.

    Args:
        scenario: a :class:`Scenario`, or a path to a scenario file.
        days: days per run (default: the scenario's ``days``).
        seeds: number of seeds (default: the scenario's ``seeds``).
        seed: base seed the runs' seeds derive from (default: the scenario's ``seed``).
        behaviours: replacement behaviours by key (see :func:`orgtwin.world.behaviour`);
            with ``workers`` they must pickle.
        workers: run the seeds in the persistent pool of this many worker processes
            (see :func:`process_pool`); ``None`` or 1 runs them here, one after the other.
            The results are the same either way.

    Returns:
        A :class:`RunSet`: ``.summary`` (one row per seed), ``.series``, ``.tables``.

    Raises:
        OrgTwinError: ``workers`` is not an integer between 1 and :data:`MAX_WORKERS`.

    Example:
        >>> import orgtwin
        >>> runs = orgtwin.run("scenarios/baseline.yaml", days=7, seeds=2)
        >>> runs.summary.height
        2
    """
    sc = as_scenario(scenario)
    n = sc.seeds if seeds is None else int(seeds)
    base = sc.seed if seed is None else int(seed)
    if check_workers(workers) > 1:
        jobs = [
            {"seed": derive_seed(base, r), "days": days, "replicate": r, "behaviours": behaviours}
            for r in range(n)
        ]
        return RunSet.from_runs(run_in_pool(simulate_shipped, ship(sc), jobs, workers=workers))
    results = [
        simulate(sc, seed=derive_seed(base, r), days=days, replicate=r, behaviours=behaviours)
        for r in range(n)
    ]
    return RunSet.from_runs(results)


# --------------------------------------------------------------------------- worker pool


@dataclass(frozen=True, eq=False)
class SummarisedRun(RunResult):
    """A run whose KPI summary was computed where it ran (in a worker process).

    Attributes:
        kpis: KPI name -> value, as :func:`orgtwin.metrics.summarise` gave it.
    """

    kpis: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Every KPI of the run, as computed in the worker."""
        return dict(self.kpis)

    @classmethod
    def of(cls, result: RunResult, **changes: Any) -> SummarisedRun:
        """``result`` with its summary computed now (and any field replaced by ``changes``)."""
        values = {f.name: getattr(result, f.name) for f in fields(RunResult)}
        return cls(**(values | changes), kpis=result.summary())


def ship(scenario: Scenario) -> ShippedScenario:
    """A scenario as plain data for a worker process: its JSON dict, source and base."""
    return scenario.model_dump(mode="json"), scenario.source, scenario.base


def unship(shipped: ShippedScenario) -> Scenario:
    """The scenario :func:`ship` packed, validated again."""
    data, source, base = shipped
    return Scenario.model_validate(data).model_copy(update={"source": source, "base": base})


def simulate_shipped(shipped: ShippedScenario, **options: Any) -> SummarisedRun:
    """:func:`simulate` a shipped scenario and summarise it (the job of a pool worker).

    Args:
        shipped: the scenario, from :func:`ship`.
        **options: keyword arguments of :func:`simulate` (``seed``, ``days``…).
    """
    return SummarisedRun.of(simulate(unship(shipped), **options))


def check_workers(workers: int | None) -> int:
    """The number of worker processes ``workers`` asks for (1 for ``None``).

    Raises:
        OrgTwinError: ``workers`` is not an integer between 1 and :data:`MAX_WORKERS`.
    """
    if workers is None:
        return 1
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer):
        raise OrgTwinError(f"workers must be an integer >= 1 or None, got {workers!r}")
    if not 1 <= workers <= MAX_WORKERS:
        raise OrgTwinError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    return int(workers)


_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _exit_with_parent() -> None:
    """In a pool worker: end the process when the process that started it is gone.

    A parent killed by a signal (or whose exit handlers something else took over, as Ray
    does with SIGTERM) never shuts its pool down; without this its workers would linger.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="orgtwin-parent-watch", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """The persistent pool of ``workers`` processes, created on first use.

    One pool per worker count lives for the whole process: later calls (a dashboard's
    reruns) reuse its started workers. Pools are shut down at interpreter exit, or by
    :func:`shutdown_pools`.

    Args:
        workers: number of worker processes, 1 to :data:`MAX_WORKERS`.

    Raises:
        OrgTwinError: ``workers`` is out of range.
    """
    n = check_workers(workers)
    with _POOLS_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            if not _POOLS:
                atexit.register(shutdown_pools)
            context = multiprocessing.get_context(POOL_START_METHOD)
            pool = ProcessPoolExecutor(
                max_workers=n, mp_context=context, initializer=_exit_with_parent
            )
            _POOLS[n] = pool
        return pool


def warm_pool(workers: int, *, timeout_s: float = 120.0) -> ProcessPoolExecutor:
    """:func:`process_pool`, with every worker started and its imports done.

    Args:
        workers: number of worker processes.
        timeout_s: longest wait for the workers to start, s.
    """
    pool = process_pool(workers)
    n = check_workers(workers)
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < n and time.monotonic() < deadline:
        seen |= {f.result(timeout=timeout_s) for f in [pool.submit(_pid) for _ in range(2 * n)]}
    return pool


def shutdown_pools() -> None:
    """Shut every worker pool down (they are started again on demand)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def run_in_pool(
    job: Callable[..., RunResult],
    shipped: ShippedScenario,
    options: Sequence[Mapping[str, Any]],
    *,
    workers: int,
) -> list[RunResult]:
    """``job(shipped, **o)`` for every ``o`` of ``options`` in the pool; results in order.

    A pool whose worker died (killed, out of memory) is replaced and the jobs are run
    once more; a job that raises raises here.

    Args:
        job: a module-level function (workers import it by name).
        shipped: the scenario, from :func:`ship`.
        options: keyword arguments of each job.
        workers: pool size.
    """
    pool = process_pool(workers)
    try:
        return _gather(pool, job, shipped, options)
    except BrokenProcessPool:
        _forget(pool)
        return _gather(process_pool(workers), job, shipped, options)


def _gather(
    pool: ProcessPoolExecutor,
    job: Callable[..., RunResult],
    shipped: ShippedScenario,
    options: Sequence[Mapping[str, Any]],
) -> list[RunResult]:
    futures: list[Future] = [pool.submit(job, shipped, **o) for o in options]
    try:
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()


def _forget(pool: ProcessPoolExecutor) -> None:
    """Drop a broken pool so that the next call starts a fresh one."""
    with _POOLS_LOCK:
        for n, known in list(_POOLS.items()):
            if known is pool:
                del _POOLS[n]
    pool.shutdown(wait=False, cancel_futures=True)


def _pid() -> int:
    time.sleep(0.05)
    return os.getpid()


def base_of(scenario: ScenarioLike) -> Scenario | None:
    """The scenario ``scenario`` extends, loaded, or None if it extends nothing."""
    sc = as_scenario(scenario)
    return None if sc.base is None else load_scenario(Path(sc.base))
