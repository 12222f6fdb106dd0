"""Synthetic telemetry: a scenario run once, written as a telemetry folder.

A scenario can stand in for a real organisation: :func:`synth` runs it for one seed and
writes its event tables (``requests``, ``calls``, ``deploys``, ``incidents``,
``user_days``, ``vendor_status``, ``pages``) as ``<out>/<table>.parquet``, in the schemas
of :mod:`orgtwin.telemetry.schemas` (``requests`` with each calling service's client
latency, its callees' latency mixed in the proportions of its calls), with two tables
an organisation's billing and analytics would hold beside them:

- ``customers``: one row per user of the ``user_days`` sample (billing's view), made by
  :func:`orgtwin.telemetry.derived.customers_from_user_days`;
- ``arrivals``: the sessions each segment opened, hour by hour (``key``: the segment).

Learning from that folder and comparing with the scenario is the known-answer test of
every learner. The ``user_days`` table (and so ``customers``, and the arrivals of new
users the acquisition learner counts) holds a sample of each segment
(``telemetry.user_sample_per_segment``); for the users' behaviours to be learned whole,
sample every user.

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "telemetry"
    >>> folder = synth("scenarios/baseline.yaml", days=2, seed=1, out=out)
    >>> sorted(p.name for p in folder.iterdir())[:2]
    ['arrivals.parquet', 'calls.parquet']
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from orgtwin.errors import RunError
from orgtwin.runs.results import RunResult
from orgtwin.runs.runner import ScenarioLike, simulate
from orgtwin.telemetry import schemas
from orgtwin.telemetry.derived import customers_from_user_days
from orgtwin.telemetry.folder import write_telemetry


def synth(
    scenario: ScenarioLike,
    *,
    days: int,
    seed: int = 0,
    out: str | os.PathLike[str],
) -> Path:
    """Run ``scenario`` once and write its telemetry tables to the folder ``out``.

    The folder is written whole or not at all (by
    :func:`orgtwin.telemetry.folder.write_telemetry`: a temporary folder beside ``out``,
    then renamed).

    Args:
        scenario: a loaded scenario, a path to a scenario file, or a mapping.
        days: days to simulate.
        seed: the run's seed (used as given).
        out: the telemetry folder to create; it must not exist, or be empty.

    Returns:
        The folder written, holding ``<table>.parquet`` for every table of
        :data:`orgtwin.telemetry.schemas.EVENT_TABLES`, and ``customers`` and
        ``arrivals``.

    Raises:
        RunError: ``out`` exists and is not an empty folder, or the run settings are out
            of bounds (see :func:`orgtwin.runs.runner.simulate`).
    """
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RunError(f"out must be a new or empty folder, got {folder} (it holds files already)")
    result = simulate(scenario, seed=seed, days=days)
    tables = {name: result.events[name] for name in schemas.EVENT_TABLES}
    tables["customers"] = customers_from_user_days(result.events["user_days"])
    tables["arrivals"] = arrivals(result)
    write_telemetry(folder, tables)
    return folder


def arrivals(result: RunResult) -> pl.DataFrame:
    """The ``arrivals`` table of a run: sessions opened per segment and hour (``key``: the
    segment), in the schema :data:`orgtwin.telemetry.schemas.ARRIVALS`."""
    sessions = result.series.filter(
        (pl.col("entity_type") == "segment") & (pl.col("metric") == "sessions")
    )
    start = pl.lit(result.start, dtype=pl.Datetime("us"))
    return sessions.select(
        time=start + pl.duration(hours=pl.col("tick")),
        count=pl.col("value").cast(pl.Float64),
        key=pl.col("entity").cast(pl.String),
    ).sort("key", "time")
