"""orgtwin: an agent-based digital twin of a software organisation and its production system.

Five lines from a scenario to a comparison:

    >>> import orgtwin
    >>> cab = orgtwin.load_scenario("scenarios/cab_policy.yaml")
    >>> change = orgtwin.run(cab, days=30, seeds=4)            # polars frames per seed
    >>> base = orgtwin.run(orgtwin.base_of(cab), days=30, seeds=4)
    >>> table = orgtwin.compare(base, change)                  # deltas with 95% intervals
    >>> table.filter(table["kpi"] == "lead_time_hours")["direction"].item()
    'up'

The engine is arranged in stage packages, in the order data flows through them; a
lower stage never imports a higher one:

==============================  =========================================================
:mod:`orgtwin.errors`,          one exception hierarchy; time and unit constants, the
:mod:`orgtwin.units`            run's clock, numbers formatted for people
:mod:`orgtwin.scenario`         the scenario format: specs, loading, checks, levers
:mod:`orgtwin.behaviours`       the swappable laws agents follow (latency, churn…)
:mod:`orgtwin.telemetry`        table schemas, the series registry, recording a run
:mod:`orgtwin.agents`           the Mesa agents: users, services, vendors, teams
:mod:`orgtwin.world`            the world a scenario builds, and :class:`OrgModel`
:mod:`orgtwin.learn`            behaviours learned from telemetry
:mod:`orgtwin.fidelity`         shadow replay and its scorecard; the drift watch
:mod:`orgtwin.runs`             simulate seeds, results, KPIs, comparisons, reports
:mod:`orgtwin.sweeps`           designs of lever values × seeds, on Ray; their analysis
:mod:`orgtwin.explore`          one scenario against its base, for interactive pages
:mod:`orgtwin.cli`,             the ``orgtwin`` command and the Streamlit dashboard
:mod:`orgtwin.dashboard`
==============================  =========================================================

This module is the public facade: what a researcher needs, in a few names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from orgtwin.errors import (
    ExploreError,
    LearnError,
    LeverError,
    OrgTwinError,
    ResultsError,
    RunError,
    ScenarioError,
    SweepError,
    SweepInterrupted,
    TelemetryError,
)

if TYPE_CHECKING:  # for readers and type checkers; at run time each name loads on first use
    from orgtwin.fidelity.scorecard import validate
    from orgtwin.fidelity.watch import watch
    from orgtwin.runs import (
        RunResult,
        RunSet,
        base_of,
        compare,
        compare_scenarios,
        run,
        simulate,
    )
    from orgtwin.runs.synth import synth
    from orgtwin.scenario import Scenario, load_scenario
    from orgtwin.sweeps import SweepResult, sweep
    from orgtwin.telemetry.folder import read_telemetry
    from orgtwin.world import OrgModel, derive_seed
    from orgtwin.world.kpis import KPIS

_LAZY = {
    "KPIS": "orgtwin.world.kpis",
    "RunResult": "orgtwin.runs",
    "RunSet": "orgtwin.runs",
    "base_of": "orgtwin.runs",
    "compare": "orgtwin.runs",
    "compare_scenarios": "orgtwin.runs",
    "run": "orgtwin.runs",
    "simulate": "orgtwin.runs",
    "Scenario": "orgtwin.scenario",
    "load_scenario": "orgtwin.scenario",
    "SweepResult": "orgtwin.sweeps",
    "sweep": "orgtwin.sweeps",
    "OrgModel": "orgtwin.world",
    "derive_seed": "orgtwin.world",
    "read_telemetry": "orgtwin.telemetry.folder",
    "synth": "orgtwin.runs.synth",
    "watch": "orgtwin.fidelity.watch",
    "validate": "orgtwin.fidelity.scorecard",
}
"""Public name -> the stage package that defines it. Importing ``orgtwin`` loads only the
errors; a stage loads when one of its names is first used, so ``import orgtwin.behaviours``
does not pull in Mesa, and the command line starts quickly."""

__all__ = [
    "KPIS",
    "ExploreError",
    "LearnError",
    "LeverError",
    "OrgModel",
    "OrgTwinError",
    "ResultsError",
    "RunError",
    "RunResult",
    "RunSet",
    "Scenario",
    "ScenarioError",
    "SweepError",
    "SweepInterrupted",
    "SweepResult",
    "TelemetryError",
    "base_of",
    "compare",
    "compare_scenarios",
    "derive_seed",
    "learn",
    "load_scenario",
    "read_telemetry",
    "run",
    "simulate",
    "sweep",
    "synth",
    "validate",
    "watch",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its stage package on first use."""
    if name == "learn":  # the learning package, callable as orgtwin.learn(telemetry, base=…)
        return importlib.import_module("orgtwin.learn")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'orgtwin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "learn"})
