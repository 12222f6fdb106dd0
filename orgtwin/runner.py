"""Running scenarios: one seed (:func:`simulate`) or many (:func:`run`).

Seeds are derived, never drawn: replicate ``r`` of a run with base seed ``s`` uses
``derive_seed(s, r)``, so the same scenario and base seed give identical results on
any machine and in any order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from orgtwin import tables
from orgtwin.loading import check_timing, load_scenario
from orgtwin.model import OrgModel
from orgtwin.results import RunResult, RunSet
from orgtwin.scenario import Scenario

ScenarioLike = Scenario | str | os.PathLike[str] | Mapping


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
) -> RunResult:
    """Run one seed of a scenario and return its series, events and summary.

    Args:
        scenario: a :class:`Scenario`, or a path to a scenario file.
        seed: the run's seed (used as given, not derived).
        days: days to simulate (default: the scenario's ``days``).
        replicate: the run's index among the seeds of a multi-seed run.
        behaviours: replacement behaviours by key (see :func:`orgtwin.world.behaviour`).

    Returns:
        The run's :class:`RunResult`.
    """
    sc = as_scenario(scenario)
    days = sc.days if days is None else int(days)
    check_timing(sc, days)
    model = OrgModel(sc, seed=seed, days=days, behaviours=behaviours)
    model.run()
    model.finish()
    return RunResult(
        scenario=sc.name,
        seed=seed,
        replicate=replicate,
        start=sc.start,
        days=days,
        slo_availability=sc.slo.availability_target,
        slo_latency_p95_ms=sc.slo.latency_p95_ms,
        series=model.recorder.to_frame(),
        events=telemetry(model),
    )


def telemetry(model: OrgModel) -> dict[str, pl.DataFrame]:
    """Every telemetry table of a finished model, in the schemas of :mod:`orgtwin.tables`."""
    log = model.events
    return {
        "requests": _requests_table(model),
        "calls": _calls_table(model),
        "deploys": log.deploys_table(),
        "incidents": log.incidents_table(),
        "user_days": log.user_days_table(),
        "vendor_status": _vendor_status_table(model),
        "pages": log.pages_table(),
    }


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
) -> RunSet:
    """Run a scenario over several seeds.

    Args:
        scenario: a :class:`Scenario`, or a path to a scenario file.
        days: days per run (default: the scenario's ``days``).
        seeds: number of seeds (default: the scenario's ``seeds``).
        seed: base seed the runs' seeds derive from (default: the scenario's ``seed``).
        behaviours: replacement behaviours by key (see :func:`orgtwin.world.behaviour`).

    Returns:
        A :class:`RunSet`: ``.summary`` (one row per seed), ``.series``, ``.tables``.

    Example:
        >>> import orgtwin
        >>> runs = orgtwin.run("scenarios/baseline.yaml", days=7, seeds=2)
        >>> runs.summary.height
        2
    """
    sc = as_scenario(scenario)
    n = sc.seeds if seeds is None else int(seeds)
    base = sc.seed if seed is None else int(seed)
    results = [
        simulate(sc, seed=derive_seed(base, r), days=days, replicate=r, behaviours=behaviours)
        for r in range(n)
    ]
    return RunSet.from_runs(results)


def base_of(scenario: ScenarioLike) -> Scenario | None:
    """The scenario ``scenario`` extends, loaded, or None if it extends nothing."""
    sc = as_scenario(scenario)
    return None if sc.base is None else load_scenario(Path(sc.base))
