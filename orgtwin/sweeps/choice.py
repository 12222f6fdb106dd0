"""Which back end a sweep runs on when ``runner="auto"``: the one expected to finish first.

Serial work costs what the runs cost. Ray divides that work among its workers but first
has to start: a local Ray head, its workers importing orgtwin and warming up, and stopping
it all at the end. On a 2-core machine that added about 25 s to a sweep
(``ray_sweep_overhead_s`` in ``benchmarks/README.md``), so a 12-run sweep of 1.2 s runs
takes 14 s serially and about 24 s or more on Ray. :func:`choose_runner` compares the two
estimates from the pilot's time per run and picks serial unless Ray is expected to be
faster.

A sweep given a cluster (``address``) or ``runner="ray"`` always runs on Ray; this module
only decides ``runner="auto"``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

RAY_START_S = 25.0
"""Expected cost of a local Ray for one sweep, s: start the head, first tasks, workers
importing orgtwin and warming up, stop (measured within sweeps on a 2-core machine:
``ray_sweep_overhead_s`` in ``benchmarks/README.md``)."""
RAY_CONNECT_S = 3.0
"""Expected cost of using a running cluster (``RAY_ADDRESS``), s: connect, workers importing
orgtwin, disconnect (an estimate, not measured)."""


@dataclass(frozen=True)
class RunnerChoice:
    """The back end ``runner="auto"`` picked, and why.

    Attributes:
        runner: ``"serial"`` or ``"ray"``.
        serial_s: expected time of the remaining runs serially, s.
        ray_s: expected time on Ray (start-up included), s.
        reason: one line for people, with both estimates.
    """

    runner: Literal["serial", "ray"]
    serial_s: float
    ray_s: float
    reason: str


def choose_runner(
    *, n_runs: int, run_s: float, workers: int | None = None, start_s: float = RAY_START_S
) -> RunnerChoice:
    """Pick serial or Ray for ``n_runs`` runs of ``run_s`` each, whichever should end first.

    Serially the runs take ``n_runs × run_s``. On Ray they take ``start_s`` plus the
    runs spread over the workers that can run at once (``ceil(n_runs / workers) ×
    run_s``). Ray is picked only when that is shorter, so one worker never picks Ray.

    Args:
        n_runs: runs left to do.
        run_s: wall time of one run, s (the pilot's: it already reflects the scenario's
            size and the days per run).
        workers: workers Ray would run at once (default: this machine's cores).
        start_s: Ray's start-up and wind-down cost, s (:data:`RAY_START_S` for a local
            Ray, :data:`RAY_CONNECT_S` for a running cluster).

    Returns:
        The choice, with both estimates and a one-line reason.

    Example:
        >>> choose_runner(n_runs=11, run_s=1.2, workers=2).runner
        'serial'
        >>> choose_runner(n_runs=400, run_s=1.2, workers=2).runner
        'ray'
    """
    parallel = max(1, min(workers or os.cpu_count() or 1, max(n_runs, 1)))
    serial_s = n_runs * run_s
    ray_s = start_s + math.ceil(n_runs / parallel) * run_s
    runner: Literal["serial", "ray"] = "ray" if ray_s < serial_s else "serial"
    work = f"{n_runs:,} runs x {run_s:.2g} s = {serial_s:.0f} s serially"
    on_ray = f"Ray: {start_s:.0f} s to start + {ray_s - start_s:.0f} s on {parallel} workers"
    sign = "<" if runner == "ray" else ">="
    reason = f"{runner}: {on_ray} = {ray_s:.0f} s {sign} {work}"
    return RunnerChoice(runner, serial_s, ray_s, reason)
