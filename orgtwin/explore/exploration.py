"""Explore: one scenario with its levers moved, against its base, for an interactive page.

The Explore page of the dashboard makes these calls (each cached apart, on small keys):

1. :func:`controls` lists the scenario's knobs (see :mod:`orgtwin.explore.controls`);
2. :func:`run_base` runs the base once per (scenario, days, seeds, seed);
3. :func:`run_change` runs the scenario with the knobs' values, on the same seeds;
4. :func:`explore_from` compares the two and traces the ripple (:mod:`orgtwin.explore.ripple`);
5. :func:`kpi_cards` and :func:`series_bands` (from :mod:`orgtwin.explore.figures`) give what its
   cards and charts show.

:func:`explore` does 2–4 in one call. The base of a scenario is the scenario it extends
(``extends:``), or, for a scenario that extends nothing, the scenario as written: moving
a lever of the baseline compares the moved baseline with the baseline.

Runs here are *lean*, to answer within seconds: each run's KPI summary is computed from
its full hourly record (in the worker process that ran it), but the run set keeps its
series at daily resolution (one row per day: ``tick`` is the day's first hour, ``value``
the mean over the day's 24 hours) and leaves the ``requests`` and ``user_days`` tables
empty. Use :func:`orgtwin.run` for every hour and table.

Inputs are bounded: ``days`` 1..:data:`MAX_DAYS`, ``seeds`` 1..:data:`MAX_SEEDS`
(intervals need at least 2).

Example:
    >>> check_bounds(90, 8)
    >>> check_bounds(400, 8)
    Traceback (most recent call last):
    ...
    orgtwin.errors.ExploreError: days must be a whole number between 1 and 365, got 400
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from orgtwin.errors import ExploreError, whole_number
from orgtwin.explore.controls import apply_controls, controls
from orgtwin.explore.ripple import Ripple, levers_of, ripple
from orgtwin.runs.comparison import compare
from orgtwin.runs.results import RunSet
from orgtwin.runs.runner import PendingRuns, ScenarioLike, as_scenario, base_of, run, start_runs
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario

MAX_DAYS = 365
"""Longest run an exploration may ask for, days."""
MAX_SEEDS = 32
"""Most seeds an exploration may ask for."""
ESTIMATE_SEEDS = 2
"""Seeds of a first estimate (:func:`start_lean`): shown at once, refined by the rest."""
Values = Mapping[str, Any] | Sequence[tuple[str, Any]]
"""Control values: a mapping, or ``(path, value)`` pairs (hashable, for caches)."""


def check_bounds(days: int, seeds: int) -> None:
    """Refuse run lengths and seed counts an interactive page should not ask for.

    Args:
        days: days per run, 1..:data:`MAX_DAYS`.
        seeds: seeds per scenario, 1..:data:`MAX_SEEDS`.

    Raises:
        ExploreError: either is not a whole number within its bounds (the message states
            them).
    """
    whole_number(days, name="days", high=MAX_DAYS, error=ExploreError)
    whole_number(seeds, name="seeds", high=MAX_SEEDS, error=ExploreError)


# --------------------------------------------------------------------------- runs


def run_base(
    scenario_path: str,
    *,
    days: int,
    seeds: int,
    seed: int | None = None,
    workers: int | None = None,
    root: str | os.PathLike[str] | None = None,
) -> RunSet:
    """Lean runs of the base of a scenario file (see the module docstring).

    Args:
        scenario_path: the explored scenario's file.
        days: days per run, 1..:data:`MAX_DAYS`.
        seeds: seeds, 1..:data:`MAX_SEEDS`.
        seed: base seed of the runs' seeds (default: the explored scenario's ``seed``).
        workers: worker processes (see :func:`orgtwin.runs.pool.process_pool`); None: serial.
        root: the folder the scenario and every base it extends must lie in (see
            :func:`~orgtwin.scenario.load.load_scenario`); None: anywhere.

    Returns:
        The base's run set (lean).
    """
    scenario = load_scenario(scenario_path, root=root)
    return _run_lean(
        _base_scenario(scenario, root), days=days, seeds=seeds, seed=_seed(scenario, seed),
        workers=workers,
    )  # fmt: skip


def run_change(
    scenario_path: str,
    values: Values,
    *,
    days: int,
    seeds: int,
    seed: int | None = None,
    workers: int | None = None,
    root: str | os.PathLike[str] | None = None,
) -> RunSet:
    """Lean runs of a scenario file with control values applied, on the base's seeds.

    Args:
        scenario_path: the explored scenario's file.
        values: control values, ``(path, value)`` pairs or a mapping (see :func:`controls`).
        days: days per run, 1..:data:`MAX_DAYS`.
        seeds: seeds, 1..:data:`MAX_SEEDS`.
        seed: base seed of the runs' seeds (default: the scenario's ``seed``).
        workers: worker processes; None: serial.
        root: the folder the scenario and every base it extends must lie in; None:
            anywhere.

    Returns:
        The changed scenario's run set (lean).

    Raises:
        LeverError: a value does not fit its control (the message names the range).
        ExploreError: ``days`` or ``seeds`` is out of bounds.
    """
    scenario = load_scenario(scenario_path, root=root)
    changed = apply_controls(scenario, dict(values))
    return _run_lean(changed, days=days, seeds=seeds, seed=_seed(scenario, seed), workers=workers)


def start_lean(
    scenarios: Sequence[Scenario], *, days: int, seeds: int, seed: int, workers: int | None
) -> list[PendingRuns]:
    """Start lean runs of several scenarios in the worker pool, without waiting.

    The first :data:`ESTIMATE_SEEDS` seeds of every scenario are queued first:
    ``pending.first(ESTIMATE_SEEDS)`` gives an estimate at once, ``pending.result()`` the
    same run set as :func:`run_change`/:func:`run_base` (the estimate's seeds are reused).

    Args:
        scenarios: the loaded scenarios (the base: :func:`base_scenario`; a change:
            :func:`apply_controls`).
        days: days per run, 1..:data:`MAX_DAYS`.
        seeds: seeds, 1..:data:`MAX_SEEDS`.
        seed: base seed of every scenario's seeds.
        workers: worker processes; None: serial, run here before returning.

    Raises:
        ExploreError: ``days`` or ``seeds`` is out of bounds (nothing has started).
    """
    check_bounds(days, seeds)
    return start_runs(scenarios, days=days, seeds=seeds, seed=seed, workers=workers, lean=True)


def base_scenario(scenario_path: str, *, root: str | os.PathLike[str] | None = None) -> Scenario:
    """The scenario a scenario file is compared with: the one it extends, else itself."""
    return _base_scenario(load_scenario(scenario_path, root=root), root)


def _run_lean(
    scenario: Scenario, *, days: int, seeds: int, seed: int, workers: int | None
) -> RunSet:
    check_bounds(days, seeds)
    return run(scenario, days=days, seeds=seeds, seed=seed, workers=workers, lean=True)


def _base_scenario(scenario: Scenario, root: str | os.PathLike[str] | None = None) -> Scenario:
    """What a scenario is compared with: the scenario it extends (read inside ``root``,
    if given), else itself."""
    if root is not None and scenario.base is not None:
        return load_scenario(scenario.base, root=root)
    return base_of(scenario) or scenario


def _seed(scenario: Scenario, seed: int | None) -> int:
    return scenario.seed if seed is None else int(seed)


# --------------------------------------------------------------------------- exploration


@dataclass(frozen=True, eq=False)
class Exploration:
    """A scenario with its levers moved, against its base.

    Attributes:
        scenario_name: the explored scenario's name.
        base_name: the base's name (the scenario it extends, or itself).
        days: days per run.
        seeds: seeds per scenario (the same seeds for both, so runs pair up).
        values: the control values applied, path -> value.
        base: the base's runs.
        change: the changed scenario's runs.
        comparison: every KPI, base against change (:func:`orgtwin.runs.comparison.compare`).
        ripple: where the change landed (:class:`orgtwin.explore.ripple.Ripple`).
    """

    scenario_name: str
    base_name: str
    days: int
    seeds: int
    values: dict[str, Any]
    base: RunSet
    change: RunSet
    comparison: pl.DataFrame
    ripple: Ripple = field(repr=False)


def explore(
    scenario: ScenarioLike,
    values: Values = (),
    *,
    days: int,
    seeds: int,
    seed: int | None = None,
    workers: int | None = None,
    base: RunSet | None = None,
) -> Exploration:
    """Run a scenario with control values against its base, compare, trace the ripple.

    Args:
        scenario: the explored scenario, loaded or a path.
        values: control values (see :func:`controls`); none: the scenario as written.
        days: days per run, 1..:data:`MAX_DAYS`.
        seeds: seeds per scenario, 1..:data:`MAX_SEEDS`.
        seed: base seed of both sets' seeds (default: the scenario's ``seed``).
        workers: worker processes; None: serial.
        base: the base's runs when already done (same days and seeds), else run here.

    Returns:
        The :class:`Exploration`.

    Raises:
        LeverError: a value does not fit its control.
        ExploreError: ``days``/``seeds`` out of bounds, or ``base`` of other days or seeds.
    """
    sc = as_scenario(scenario)
    check_bounds(days, seeds)
    values = dict(values)
    run_seed = _seed(sc, seed)
    if base is None:
        base = _run_lean(_base_scenario(sc), days=days, seeds=seeds, seed=run_seed,
                         workers=workers)  # fmt: skip
    changed = apply_controls(sc, values)
    change = _run_lean(changed, days=days, seeds=seeds, seed=run_seed, workers=workers)
    return explore_from(base, change, sc, values=values)


def explore_from(
    base: RunSet, change: RunSet, scenario: Scenario, *, values: Values = ()
) -> Exploration:
    """Compare two run sets and trace the ripple: the cheap half of :func:`explore`.

    Args:
        base: the base's runs (:func:`run_base`).
        change: the changed scenario's runs (:func:`run_change`), same days and seeds.
        scenario: the explored scenario as loaded (before ``values``).
        values: the control values ``change`` ran with.

    Raises:
        ExploreError: the sets differ in days or seeds.
    """
    if base.days != change.days or sorted(base.seeds) != sorted(change.seeds):
        raise ExploreError(
            f"base and change must share days and seeds, got {base.days} days × seeds "
            f"{base.seeds} and {change.days} days × seeds {change.seeds}"
        )
    values = dict(values)
    changed = apply_controls(scenario, values)
    comparison = compare(base, change)
    cause = _cause(scenario, values)
    levers = [*levers_of(changed), *values]  # the interventions, and the controls moved
    traced = ripple(base, change, changed, comparison=comparison, cause=cause, levers=levers)
    return Exploration(
        scenario_name=scenario.name,
        base_name=base.scenario,
        days=change.days,
        seeds=len(change),
        values=values,
        base=base,
        change=change,
        comparison=comparison,
        ripple=traced,
    )


def _cause(scenario: Scenario, values: Mapping[str, Any]) -> str | None:
    """The change in words, for the ripple's first step (None: the ripple's default)."""
    if scenario.base is not None:
        return None  # the interventions of the changed scenario say it
    moved = [
        f"{c.label} {_show(c.value)} → {_show(values[c.path])}"
        for c in controls(scenario)
        if c.path in values and values[c.path] != c.value
    ]
    return "; ".join(moved) or None


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
