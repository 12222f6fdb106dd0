"""Running scenarios: one seed (:func:`simulate`) or many (:func:`run`), here or in a pool.

Seeds are derived, never drawn: replicate ``r`` of a run with base seed ``s`` uses
``derive_seed(s, r)``, so the same scenario and base seed give identical results on
any machine and in any order, serially or in worker processes (:mod:`orgtwin.runs.pool`),
where each worker also computes its runs' KPI summaries, so the parent only gathers frames.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from orgtwin.errors import RunError, whole_number
from orgtwin.runs.metrics import check_decides
from orgtwin.runs.pool import ShippedScenario, check_workers, run_in_pool, ship, unship
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.scenario.load import check_timing, load_scenario
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry.recording import check_tables
from orgtwin.world.model import OrgModel
from orgtwin.world.rng import derive_seed

ScenarioLike = Scenario | str | os.PathLike[str] | Mapping
SeriesResolution = Literal["hourly", "daily"]
SERIES_RESOLUTIONS: tuple[SeriesResolution, ...] = ("hourly", "daily")
KPI_TABLES: tuple[str, ...] = ("deploys", "incidents", "pages")
"""The telemetry tables the KPI summary reads (pass as ``tables=`` when only KPIs matter)."""
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
            every table by default. The KPI summary needs :data:`KPI_TABLES`.
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
            (:func:`~orgtwin.runs.metrics.check_decides`); nothing has run yet.

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
    check_decides(sc)
    days = sc.days if days is None else check_setting("days", days)
    n = sc.seeds if seeds is None else check_setting("seeds", seeds)
    base = sc.seed if seed is None else check_setting("seed", seed)
    options = {"days": days, "behaviours": behaviours, **(LEAN if lean else {})}
    jobs = [{"seed": derive_seed(base, r), "replicate": r, **options} for r in range(n)]
    if check_workers(workers) > 1 and n > 1:
        return RunSet.from_runs(run_in_pool(simulate_shipped, ship(sc), jobs, workers=workers))
    return RunSet.from_runs([simulate(sc, **job) for job in jobs])


# --------------------------------------------------------------------------- worker pool


@dataclass(frozen=True, eq=False)
class SummarisedRun(RunResult):
    """A run whose KPI summary was computed where it ran (in a worker process).

    Attributes:
        kpis: KPI name -> value, as :func:`orgtwin.runs.metrics.summarise` gave it.
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
