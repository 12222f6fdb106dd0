"""Running scenarios: one seed (:func:`simulate`) or many (:func:`run`), here or in a pool.

Seeds are derived, never drawn: replicate ``r`` of a run with base seed ``s`` uses
``derive_seed(s, r)``, so the same scenario and base seed give identical results on
any machine and in any order, serially or in worker processes (:mod:`orgtwin.runs.pool`),
where each worker also computes its runs' KPI summaries, so the parent only gathers frames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from orgtwin.errors import RunError, whole_number
from orgtwin.runs.pool import (
    ShippedScenario,
    check_workers,
    run_in_pool,
    ship,
    submit_in_pool,
    unship,
)
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.scenario.load import check_timing, load_scenario
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry.recording import check_tables
from orgtwin.world.kpis import KPI_TABLES, check_decides
from orgtwin.world.model import OrgModel
from orgtwin.world.rng import derive_seed

ScenarioLike = Scenario | str | os.PathLike[str] | Mapping
SeriesResolution = Literal["hourly", "daily"]
SERIES_RESOLUTIONS: tuple[SeriesResolution, ...] = ("hourly", "daily")
LEAN: dict[str, Any] = {"tables": (*KPI_TABLES, "calls", "vendor_status"), "series": "daily"}
"""Options of :func:`simulate` for a lean run (``run(..., lean=True)``): the small event
tables and the series as daily means."""


def setting_bounds(name: str) -> tuple[int, int | None]:
    """The smallest and largest value of a run setting, as declared on :class:`Scenario`.

    The bounds of ``days``, ``seeds`` and ``seed`` are declared once, on the scenario's
    fields; :func:`run`, :func:`simulate` and the command line read them from there.

    Args:
        name: ``"days"``, ``"seeds"`` or ``"seed"``.

    Returns:
        ``(low, high)``; ``high`` is None where the field declares no upper bound.

    Example:
        >>> setting_bounds("seeds")
        (1, 1000)
    """
    declared = {
        key: getattr(rule, key)
        for rule in Scenario.model_fields[name].metadata
        for key in ("ge", "gt", "le", "lt")
        if getattr(rule, key, None) is not None
    }
    if "ge" not in declared and "gt" not in declared:
        raise TypeError(f"Scenario.{name} must declare a lower bound, got {declared}")
    low = declared["ge"] if "ge" in declared else declared["gt"] + 1
    if "le" in declared:
        return low, declared["le"]
    return low, declared["lt"] - 1 if "lt" in declared else None


def check_setting(name: str, value: object) -> int:
    """``value`` as an int, if it is within the bounds of the scenario field ``name``.

    Raises:
        RunError: ``value`` is not a whole number within :func:`setting_bounds`.
    """
    low, high = setting_bounds(name)
    return whole_number(value, name=name, low=low, high=high, error=RunError)


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
        behaviours: replacement behaviours by key (see
            :class:`orgtwin.world.build.Behaviours`).
        tables: names of the telemetry tables to build (the others are left empty, in
            their schema; they cost time and memory: ``user_days`` is the dearest);
            every table by default. The KPI summary needs
            :data:`~orgtwin.world.kpis.KPI_TABLES`.
        series: ``"hourly"`` (every tick) or ``"daily"``: one row per day, ``tick``
            the day's first hour and ``value`` the mean over the day's hours; the KPIs
            are then computed from every hour first (the result is a
            :class:`SummarisedRun`).

    Returns:
        The run's :class:`RunResult`.

    Raises:
        RunError: ``days`` or ``seed`` is out of the bounds a scenario's fields declare
            (:func:`setting_bounds`), ``series`` or ``tables`` names something unknown, or
            a replacement behaviour's key names nothing in this scenario.

    Example:
        >>> from orgtwin import load_scenario
        >>> result = simulate(load_scenario("scenarios/baseline.yaml"), seed=1, days=2)
        >>> result.events["deploys"].columns[:3], result.summary()["users"] > 0
        (['time', 'service', 'team'], True)
    """
    sc = as_scenario(scenario)
    days = sc.days if days is None else check_setting("days", days)
    seed = check_setting("seed", seed)
    check_timing(sc, days)
    if series not in SERIES_RESOLUTIONS:
        raise RunError(f"series must be 'hourly' or 'daily', got {series!r}")
    check_tables(tables)
    model = OrgModel(sc, seed=seed, days=days, behaviours=behaviours)
    model.run()
    model.finish()
    world = model.world
    result = RunResult(
        scenario=sc.name,
        seed=seed,
        replicate=replicate,
        start=sc.start,
        days=days,
        slo_availability=sc.slo.availability_target,
        slo_latency_p95_ms=sc.slo.latency_p95_ms,
        series=world.recorder.to_frame(),
        events=world.events.tables(world.recorder, only=tables),
        costs=sc.costs,
    )
    if series == "daily":
        return SummarisedRun.of(result, series=world.recorder.daily_frame())
    return result


def run(
    scenario: ScenarioLike,
    *,
    days: int | None = None,
    seeds: int | None = None,
    seed: int | None = None,
    behaviours: Mapping[str, object] | None = None,
    workers: int | None = None,
    lean: bool = False,
) -> RunSet:
    """Run a scenario over several seeds.

    Replicate ``r`` runs with seed ``derive_seed(seed, r)``: the same scenario and base
    seed give the same runs on any machine, serially or in worker processes.

    Args:
        scenario: a :class:`Scenario`, or a path to a scenario file.
        days: days per run (default: the scenario's ``days``).
        seeds: number of seeds (default: the scenario's ``seeds``).
        seed: base seed the runs' seeds derive from (default: the scenario's ``seed``).
        behaviours: replacement behaviours by key (see
            :class:`orgtwin.world.build.Behaviours`); with ``workers`` they must pickle.
        workers: run the seeds in the persistent pool of this many worker processes
            (see :func:`orgtwin.runs.pool.process_pool`); ``None`` or 1 runs them here,
            one after the other. The results are the same either way.
        lean: keep less, to answer within seconds (an interactive page): every KPI is
            still computed from every hour, but the series keeps daily means and only
            the small event tables are built (:data:`LEAN`).

    Returns:
        A :class:`RunSet`: ``.summary`` (one row per seed), ``.series``, ``.tables``.

    Raises:
        RunError: ``days``, ``seeds`` or ``seed`` is out of the bounds a scenario's fields
            declare (:func:`setting_bounds`), or ``workers`` is not a whole number between
            1 and :data:`~orgtwin.runs.pool.MAX_WORKERS`; nothing has run yet.
        ScenarioError: the scenario's ``decides`` names something that is not a KPI
            (:func:`~orgtwin.world.kpis.check_decides`); nothing has run yet.

    Example:
        >>> import orgtwin
        >>> runs = orgtwin.run("scenarios/baseline.yaml", days=7, seeds=2)
        >>> runs.summary.height, runs.series["tick"].max()
        (2, 167)
        >>> orgtwin.run("scenarios/baseline.yaml", days=7, seeds=2, lean=True).series[
        ...     "tick"].max()
        144
    """
    sc = as_scenario(scenario)
    jobs = _jobs(sc, days=days, seeds=seeds, seed=seed, behaviours=behaviours, lean=lean)
    if check_workers(workers) > 1 and len(jobs) > 1:
        return RunSet.from_runs(run_in_pool(simulate_shipped, ship(sc), jobs, workers=workers))
    return RunSet.from_runs([simulate(sc, **job) for job in jobs])


def _jobs(
    sc: Scenario,
    *,
    days: int | None,
    seeds: int | None,
    seed: int | None,
    behaviours: Mapping[str, object] | None = None,
    lean: bool = False,
) -> list[dict[str, Any]]:
    """The keyword arguments of :func:`simulate` for each seed of a run, in replicate order
    (every setting checked first)."""
    check_decides(sc)
    days = sc.days if days is None else check_setting("days", days)
    n = sc.seeds if seeds is None else check_setting("seeds", seeds)
    base = sc.seed if seed is None else check_setting("seed", seed)
    options = {"days": days, "behaviours": behaviours, **(LEAN if lean else {})}
    return [{"seed": derive_seed(base, r), "replicate": r, **options} for r in range(n)]


# --------------------------------------------------------------------------- started runs


@dataclass(frozen=True, eq=False)
class PendingRuns:
    """The seeds of a run, started in the worker pool and gathered as they finish.

    Made by :func:`start_runs`. Replicate ``r`` is the same run :func:`run` makes, so
    :meth:`first` of ``k`` seeds equals ``run(..., seeds=k)`` and :meth:`result` equals
    ``run(...)``: an estimate from the first seeds is refined by the rest, none run twice.

    Attributes:
        shipped: the scenario, from :func:`~orgtwin.runs.pool.ship`.
        jobs: the keyword arguments of :func:`simulate` per replicate.
        futures: one per replicate.
        workers: the pool's size.
    """

    shipped: ShippedScenario
    jobs: list[dict[str, Any]]
    futures: list[Future]
    workers: int
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def seeds(self) -> int:
        """Seeds of the whole run."""
        return len(self.jobs)

    def done(self, seeds: int | None = None) -> bool:
        """Whether the first ``seeds`` seeds (default: all) have finished."""
        wanted = self.futures[: self.seeds if seeds is None else seeds]
        return all(f.done() and not f.cancelled() for f in wanted)

    def first(self, seeds: int) -> RunSet:
        """The run set of the first ``seeds`` seeds, waiting for them only.

        Raises:
            RunError: ``seeds`` is not between 1 and :attr:`seeds`.
        """
        k = whole_number(seeds, name="seeds", high=self.seeds, error=RunError)
        return RunSet.from_runs([self._result(r) for r in range(k)])

    def result(self) -> RunSet:
        """The run set of every seed, waiting for them."""
        return self.first(self.seeds)

    def cancel_queued(self) -> None:
        """Take the seeds that have not started off the pool's queue (another run needs
        the workers first); waiting for them queues them again."""
        for future in self.futures:
            future.cancel()

    def _result(self, r: int) -> SummarisedRun:
        while True:
            with self._lock:
                if self.futures[r].cancelled():
                    self._queue_again()
                future = self.futures[r]
            try:
                return future.result()
            except CancelledError:  # cancelled by another thread meanwhile: queue it again
                continue
            except BrokenProcessPool:  # a worker died: run it again in a fresh pool
                (again,) = run_in_pool(
                    simulate_shipped, self.shipped, [self.jobs[r]], workers=self.workers
                )
                self.futures[r] = _finished(again)
                return again

    def _queue_again(self) -> None:
        """Submit the cancelled seeds again, in replicate order."""
        cancelled = [r for r, f in enumerate(self.futures) if f.cancelled()]
        jobs = [(self.shipped, self.jobs[r]) for r in cancelled]
        queued = submit_in_pool(simulate_shipped, jobs, workers=self.workers)
        for r, future in zip(cancelled, queued, strict=True):
            self.futures[r] = future


def start_runs(
    scenarios: Sequence[ScenarioLike],
    *,
    days: int | None = None,
    seeds: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    lean: bool = False,
) -> list[PendingRuns]:
    """Start :func:`run` of several scenarios in the worker pool, without waiting.

    The seeds are queued replicate by replicate (every scenario's first seed, then every
    second seed…), so the first seeds of all of them finish first: a page shows an estimate
    from those and refines it as the rest arrive.

    Args:
        scenarios: the scenarios, loaded or paths.
        days, seeds, seed, lean: as for :func:`run` (each scenario's own defaults).
        workers: pool size; ``None`` or 1 runs every seed here, now, one after the other.

    Returns:
        One :class:`PendingRuns` per scenario, in order.

    Raises:
        RunError: a setting is out of bounds (nothing has started).
    """
    loaded = [as_scenario(sc) for sc in scenarios]
    jobs = [_jobs(sc, days=days, seeds=seeds, seed=seed, lean=lean) for sc in loaded]
    shipped = [ship(sc) for sc in loaded]
    n = check_workers(workers)
    if n == 1:
        futures = [[_finished(simulate_shipped(s, **job)) for job in js]
                   for s, js in zip(shipped, jobs, strict=True)]  # fmt: skip
    else:
        order = sorted(
            ((r, i) for i, js in enumerate(jobs) for r in range(len(js))), key=lambda ri: ri
        )
        queued = submit_in_pool(
            simulate_shipped, [(shipped[i], jobs[i][r]) for r, i in order], workers=n
        )
        by_job = dict(zip(order, queued, strict=True))
        futures = [[by_job[r, i] for r in range(len(js))] for i, js in enumerate(jobs)]
    return [PendingRuns(s, js, fs, n) for s, js, fs in zip(shipped, jobs, futures, strict=True)]


def _finished(result: SummarisedRun) -> Future:
    done: Future = Future()
    done.set_result(result)
    return done


# --------------------------------------------------------------------------- worker pool


@dataclass(frozen=True, eq=False)
class SummarisedRun(RunResult):
    """A run whose KPI summary was computed where it ran (in a worker process).

    Attributes:
        kpis: KPI name -> value, as :func:`orgtwin.world.kpis.summarise` gave it.
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
