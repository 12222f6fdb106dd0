"""Dashboard benchmark: how long the Explore page takes to answer a lever change.

Run from the repository root: ``python benchmarks/bench_app.py [--reps N]``. Prints one
JSON object on stdout (progress on stderr). Times are wall time (``time.perf_counter``) in
one warm process: Python start-up, imports and the start of the worker processes are
excluded, as the app keeps its process pool warm (:func:`orgtwin.runs.pool.warm_pool`).

Measured through the library calls the Explore page makes (:mod:`orgtwin.explore`), on
``scenarios/cab_policy.yaml``, 90 days × 8 seeds, base against change:

- ``explore_rerun_s``: median over ``--reps`` lever changes of
  :func:`~orgtwin.explore.run_change` (a new ``meeting_every_hours`` each time, so its
  cache would be cold) + :func:`~orgtwin.explore.explore_from` (compare and ripple) +
  :func:`~orgtwin.explore.series_bands` for the page's charts (base and change) +
  :func:`~orgtwin.explore.kpi_cards`, with the base already run (the app caches it);
- ``explore_cold_base_s``: the same with the base run too (a first visit);
- ``stages_s``: the median of each part of a rerun (``change``, ``compare_ripple``,
  ``figures``); ``seed_run_s`` and ``seed_run_cpu_s``: the wall and CPU time of one lean
  seed run in this process, and ``pool_floor_s = ceil(seeds / workers) × seed_run_cpu_s``,
  the least the change's runs can take on ``workers`` free cores.

``target_s`` is 3.0; ``meets`` says whether ``explore_rerun_s`` is within it. Compare
figures only from the same machine (``cores`` is printed) and a quiet one: ``load_avg_1m``
is the 1-minute load average before and after (above ``cores``, other work competed).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orgtwin import explore  # noqa: E402
from orgtwin.runs.pool import shutdown_pools, warm_pool  # noqa: E402
from orgtwin.runs.results import RunSet  # noqa: E402
from orgtwin.runs.runner import LEAN, simulate  # noqa: E402
from orgtwin.scenario.load import load_scenario  # noqa: E402
from orgtwin.world.rng import derive_seed  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import per_reference, reference  # noqa: E402

SCENARIO = str(ROOT / "scenarios" / "cab_policy.yaml")
LEVER = "interventions[0].meeting_every_hours"
VALUES = (336, 72, 504, 120, 240, 48, 600, 96, 432, 144)
"""A new lever value per rep (hours between board meetings; the file says 168)."""
CHARTS = (
    ("segment", "active_users"),
    ("feature", "errors"),
    ("team", "pages"),
    ("service", "cost_usd"),
)
"""The series the Explore page charts (base and change each)."""
DAYS, SEEDS, TARGET_S = 90, 8, 3.0


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def figures(base: RunSet, change: RunSet, found: explore.Exploration) -> None:
    """What the page draws from an exploration: KPI cards and the charts' bands."""
    explore.kpi_cards(found.comparison)
    for runset in (base, change):
        for entity_type, metric in CHARTS:
            explore.series_bands(runset, entity_type=entity_type, metric=metric)


def rerun(base: RunSet, value: int, workers: int) -> dict[str, float]:
    """One lever change with the base already run: the stages' wall times, s."""
    scenario = load_scenario(SCENARIO)
    values = ((LEVER, value),)
    gc.collect()
    start = time.perf_counter()
    change = explore.run_change(SCENARIO, values, days=DAYS, seeds=SEEDS, workers=workers)
    ran = time.perf_counter()
    found = explore.explore_from(base, change, scenario, values=values)
    compared = time.perf_counter()
    figures(base, change, found)
    done = time.perf_counter()
    return {"change": ran - start, "compare_ripple": compared - ran, "figures": done - compared,
            "total": done - start}  # fmt: skip


def cold(workers: int) -> tuple[RunSet, float]:
    """A first visit: base and change both run; returns the base and the wall time, s."""
    gc.collect()
    start = time.perf_counter()
    base = explore.run_base(SCENARIO, days=DAYS, seeds=SEEDS, workers=workers)
    change = explore.run_change(SCENARIO, (), days=DAYS, seeds=SEEDS, workers=workers)
    found = explore.explore_from(base, change, load_scenario(SCENARIO))
    figures(base, change, found)
    return base, time.perf_counter() - start


def seed_run_s() -> tuple[float, float]:
    """One lean seed run of the change in this process: wall and CPU time, s."""
    scenario = load_scenario(SCENARIO)
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    simulate(scenario, seed=derive_seed(scenario.seed, 0), days=DAYS, **LEAN)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="lever changes timed (>= 3)")
    parser.add_argument("--workers", type=int, help="worker processes (default: every core)")
    args = parser.parse_args()
    reps = min(max(3, args.reps), len(VALUES))
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    workers = max(1, min(args.workers or cores, SEEDS))
    log(f"starting {workers} worker processes")
    warm_pool(workers)
    try:
        log("first visit (base and change cold)")
        base, cold_s = cold(workers)
        runs = []
        for value in VALUES[:reps]:
            runs.append(rerun(base, value, workers))
            log(f"{LEVER}={value}: {runs[-1]['total']:.2f} s")
        singles = [seed_run_s() for _ in range(3)]
    finally:
        shutdown_pools()
    rerun_s = statistics.median(r["total"] for r in runs)
    results: dict[str, Any] = {
        "explore_rerun_s": round(rerun_s, 3),
        "explore_cold_base_s": round(cold_s, 3),
        "target_s": TARGET_S,
        "meets": rerun_s <= TARGET_S,
        "cores": cores,
        "workers": workers,
        "scenario": "scenarios/cab_policy.yaml",
        "days": DAYS,
        "seeds": SEEDS,
        "reps": reps,
        "explore_rerun_runs_s": [round(r["total"], 3) for r in runs],
        "stages_s": {
            stage: round(statistics.median(r[stage] for r in runs), 3)
            for stage in ("change", "compare_ripple", "figures")
        },
        "seed_run_s": round(statistics.median(wall for wall, _ in singles), 3),
        "seed_run_cpu_s": round(statistics.median(cpu for _, cpu in singles), 3),
        "pool_floor_s": round(
            math.ceil(SEEDS / workers) * statistics.median(cpu for _, cpu in singles), 3
        ),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    machine = reference()
    results["machine"] = machine
    results["per_reference"] = per_reference(results, machine["reference_s"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
