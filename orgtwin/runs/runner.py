"""Running scenarios: one seed (:func:`simulate`) or many (:func:`run`), here or in a pool.

Seeds are derived, never drawn: replicate ``r`` of a run with base seed ``s`` uses
``derive_seed(s, r)``, so the same scenario and base seed give identical results on
any machine and in any order, serially or in worker processes (:mod:`orgtwin.runs.pool`),
where each worker also computes its runs' KPI summaries, so the parent only gathers frames.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from orgtwin.errors import OrgTwinError
from orgtwin.runs.pool import ShippedScenario, check_workers, run_in_pool, ship, unship
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.scenario.load import check_timing, load_scenario
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry import recording
from orgtwin.telemetry import schemas as tables
from orgtwin.units import HOURS_PER_DAY
from orgtwin.world.model import OrgModel
from orgtwin.world.rng import derive_seed

ScenarioLike = Scenario | str | os.PathLike[str] | Mapping
SeriesResolution = Literal["hourly", "daily"]
SERIES_RESOLUTIONS: tuple[SeriesResolution, ...] = ("hourly", "daily")
KPI_TABLES: tuple[str, ...] = ("deploys", "incidents", "pages")
"""The telemetry tables the KPI summary reads (pass as ``tables=`` when only KPIs matter)."""


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


def simulate_shipped(shipped: ShippedScenario, **options: Any) -> SummarisedRun:
    """:func:`simulate` a shipped scenario and summarise it (the job of a pool worker).

    Args:
        shipped: the scenario, from :func:`ship`.
        **options: keyword arguments of :func:`simulate` (``seed``, ``days``…).
    """
    return SummarisedRun.of(simulate(unship(shipped), **options))


def base_of(scenario: ScenarioLike) -> Scenario | None:
    """The scenario ``scenario`` extends, loaded, or None if it extends nothing."""
    sc = as_scenario(scenario)
    return None if sc.base is None else load_scenario(Path(sc.base))
