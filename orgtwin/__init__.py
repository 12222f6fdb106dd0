"""orgtwin: an agent-based digital twin of a software organisation and its production system.

Five lines from a scenario to a comparison::

    import orgtwin
    cab = orgtwin.load_scenario("scenarios/cab_policy.yaml")
    change = orgtwin.run(cab, days=90, seeds=8)           # polars frames per seed
    base = orgtwin.run(orgtwin.base_of(cab), days=90, seeds=8)
    print(orgtwin.compare(base, change))                  # deltas with 95% intervals
"""

from orgtwin.errors import OrgTwinError, ResultsError, ScenarioError, TelemetryError
from orgtwin.loading import load_scenario
from orgtwin.metrics import KPIS
from orgtwin.model import OrgModel
from orgtwin.results import RunResult, RunSet, compare
from orgtwin.runner import base_of, derive_seed, run, simulate
from orgtwin.scenario import Scenario
from orgtwin.sweeps import SweepResult, sweep

__all__ = [
    "KPIS",
    "OrgModel",
    "OrgTwinError",
    "ResultsError",
    "RunResult",
    "RunSet",
    "Scenario",
    "ScenarioError",
    "SweepResult",
    "TelemetryError",
    "base_of",
    "compare",
    "derive_seed",
    "load_scenario",
    "run",
    "simulate",
    "sweep",
]
