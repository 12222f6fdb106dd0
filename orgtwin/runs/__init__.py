"""Runs and results: simulate seeds, keep them as polars frames, compare and report them.

- :mod:`~orgtwin.runs.runner`: :func:`simulate` one seed, :func:`run` many (or
  :func:`start_runs` without waiting);
- :mod:`~orgtwin.runs.pool`: the persistent pool of worker processes;
- :mod:`~orgtwin.runs.results`: :class:`RunResult`, :class:`RunSet`, Parquet files;
- :mod:`~orgtwin.runs.stats`: intervals across seeds;
- :mod:`~orgtwin.runs.comparison`: :func:`compare` two run sets KPI by KPI;
- :mod:`~orgtwin.runs.report`: plain-text summaries and comparisons;
- :mod:`~orgtwin.runs.reference`: the telemetry reference (``docs/telemetry.md``).

What a run's KPIs mean and how they are computed is the world's
(:mod:`orgtwin.world.kpis`, :mod:`orgtwin.world.costs`), next to the model that reports
them; :data:`KPIS` is re-exported here.

May import every lower stage: errors, units, scenario, behaviours, telemetry, agents,
world (and, once they exist, learn and fidelity).
"""

from orgtwin.runs.comparison import compare, compare_scenarios
from orgtwin.runs.pool import shutdown_pools, warm_pool
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.runs.runner import PendingRuns, base_of, run, simulate, start_runs
from orgtwin.world.kpis import KPIS

__all__ = [
    "KPIS",
    "PendingRuns",
    "RunResult",
    "RunSet",
    "base_of",
    "compare",
    "compare_scenarios",
    "run",
    "shutdown_pools",
    "simulate",
    "start_runs",
    "warm_pool",
]
