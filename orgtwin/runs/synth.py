"""Synthetic telemetry: a scenario run once, written as a telemetry folder.

A scenario can stand in for a real organisation: :func:`synth` runs it for one seed and
writes its event tables (``requests``, ``calls``, ``deploys``, ``incidents``,
``user_days``, ``vendor_status``, ``pages``) as ``<out>/<table>.parquet``, in the schemas
of :mod:`orgtwin.telemetry.schemas`. Learning from that folder and comparing with the
scenario is the known-answer test of every learner.

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "telemetry"
    >>> folder = synth("scenarios/baseline.yaml", days=2, seed=1, out=out)
    >>> sorted(p.name for p in folder.iterdir())[:2]
    ['calls.parquet', 'deploys.parquet']
"""

from __future__ import annotations

import os
from pathlib import Path

from orgtwin.errors import RunError
from orgtwin.runs.runner import ScenarioLike, simulate
from orgtwin.telemetry import schemas
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
        :data:`orgtwin.telemetry.schemas.EVENT_TABLES`.

    Raises:
        RunError: ``out`` exists and is not an empty folder, or the run settings are out
            of bounds (see :func:`orgtwin.runs.runner.simulate`).
    """
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RunError(f"out must be a new or empty folder, got {folder} (it holds files already)")
    result = simulate(scenario, seed=seed, days=days)
    write_telemetry(folder, {name: result.events[name] for name in schemas.EVENT_TABLES})
    return folder
