"""Core performance benchmark of the orgtwin engine; prints one JSON object on stdout.

Run from the repository root: ``python benchmarks/bench_core.py [--quick]``. Progress goes to
stderr. Every time is wall time (``time.perf_counter``) inside one warm process, so Python
start-up and imports are excluded; ``gc.collect()`` runs before each timed run.

Figures:

- ``baseline_year_s``: median over runs of building ``OrgModel`` for ``scenarios/baseline.yaml``
  (~200k users) and ``model.run()`` for a year, one seed.
- ``baseline_year_with_tables_s``: the same through ``orgtwin.runs.runner.simulate`` (adds the
  polars series and the telemetry tables).
- ``million_users_year_s``: the baseline scaled to 1,000,000 users (every segment's
  ``n_users``, acquisition ``base_per_day``, service ``replicas`` and autoscale
  ``max_replicas`` multiplied by the same factor), build + run for a year, median.
- ``million_users_peak_rss_mib``: peak resident memory of a fresh child process doing one
  such run (``getrusage(RUSAGE_CHILDREN).ru_maxrss``, KiB on Linux), in MiB.
- ``user_days_per_s``: throughput of the daily per-user update alone: every segment's
  ``end_day()`` of the 1M-user model, fed a plausible day (1% bad sessions); user-days per
  second, median over repeats of 30 days.
- ``tick_overhead_ms``: median wall time of one ``model.step()`` for a tiny scenario
  (1 segment of 10 users, 1 feature, 1 service, 1 team, no vendors) over ~2,000 ticks.
- ``vs_mesa_loop_speedup``: per-user-day cost of the same daily update written as plain
  Mesa agents (``vs_mesa_loop_users`` of them, scalar state, ``shuffle_do("step")``)
  divided by the vectorised per-user-day cost (``1 / user_days_per_s``, at 1M users).

``machine`` holds the machine's reference figure (``benchmarks/machine.py``: the wall time
of a fixed mix of the engine's kind of work) and ``per_reference`` each time divided by it,
ratios that compare across machines.

``targets`` holds each target's bound (``user_days_per_s`` and ``vs_mesa_loop_speedup`` are
lower bounds, the rest upper bounds); ``meets`` says, per key, whether it is met.

``--quick`` makes one run of each timing and simulates 90 days instead of 365 for the
"year" figures (keys keep their names; ``quick`` is true and ``year_days`` says 90).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mesa  # noqa: E402

from orgtwin.runs.runner import simulate  # noqa: E402
from orgtwin.scenario.load import load_scenario  # noqa: E402
from orgtwin.scenario.spec import Scenario  # noqa: E402
from orgtwin.units import DAYS_PER_MONTH  # noqa: E402
from orgtwin.world.model import OrgModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import meets, per_reference, reference  # noqa: E402

BASELINE = ROOT / "scenarios" / "baseline.yaml"
SEED = 7
MILLION = 1_000_000
MESA_USERS = 20_000
TARGETS: dict[str, tuple[str, float]] = {
    "baseline_year_s": ("<=", 2.0),
    "million_users_year_s": ("<=", 20.0),
    "million_users_peak_rss_mib": ("<=", 1536.0),
    "user_days_per_s": (">=", 2e7),
    "tick_overhead_ms": ("<=", 0.5),
    "vs_mesa_loop_speedup": (">=", 20.0),
}
TINY: dict[str, Any] = {
    "name": "tiny",
    "days": 90,
    "segments": {"solo": {"n_users": 10, "features": {"app": 1.0}}},
    "features": {"app": {"entry": "api"}},
    "services": {"api": {"team": "ops", "replicas": 2, "capacity_rps_per_replica": 10}},
    "teams": {"ops": {"headcount": 2, "oncall_size": 1}},
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call of ``fn``, after a garbage collection."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn: Callable[[], object], runs: int, label: str) -> float:
    times = []
    for i in range(runs):
        times.append(timed(fn))
        log(f"{label} run {i + 1}/{runs}: {times[-1]:.3f} s")
    return statistics.median(times)


def million_scenario() -> Scenario:
    """The baseline scaled to 1M users, with arrivals and service capacity scaled alike."""
    base = load_scenario(BASELINE)
    factor = MILLION / sum(s.n_users for s in base.segments.values())
    names = list(base.segments)
    sizes = [round(base.segments[n].n_users * factor) for n in names]
    sizes[0] += MILLION - sum(sizes)  # exactly 1,000,000 in total
    overrides: dict[str, Any] = {
        "segments": {
            n: {
                "n_users": k,
                "acquisition": {"base_per_day": base.segments[n].acquisition.base_per_day * factor},
            }
            for n, k in zip(names, sizes, strict=True)
        },
        "services": {
            n: {
                "replicas": max(1, round(s.replicas * factor)),
                "autoscale": {"max_replicas": max(1, round(s.autoscale.max_replicas * factor))},
            }
            for n, s in base.services.items()
        },
    }
    return load_scenario(BASELINE, overrides=overrides)


def run_model(scenario: Scenario, days: int) -> None:
    OrgModel(scenario, seed=SEED, days=days).run()


def child_million(days: int) -> None:
    """Body of the ``--child-million`` subprocess: one 1M-user run, nothing on stdout."""
    run_model(million_scenario(), days)


def peak_rss_mib(days: int, quick: bool) -> float:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-million"]
    subprocess.run(cmd + (["--quick"] if quick else []), check=True, stdout=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def user_days_per_s(scenario: Scenario, repeats: int, days: int = 30) -> float:
    """User-days per second of every segment's ``end_day()`` at 1M users."""
    model = OrgModel(scenario, seed=SEED, days=days * repeats + 1)
    rates = []
    for _ in range(repeats):
        user_days, elapsed = 0, 0.0
        gc.collect()
        for _ in range(days):
            for seg in model.world.segments:
                seg.day_sessions = seg.intensity_total * seg.sessions_per_user_day
                seg.day_bad = 0.01 * seg.day_sessions
                seg.day_latency_weighted = 150.0 * seg.day_sessions
                user_days += seg.active_users
            start = time.perf_counter()
            for seg in model.world.segments:
                seg.end_day()
            elapsed += time.perf_counter() - start
        rates.append(user_days / elapsed)
    return statistics.median(rates)


def tick_overhead_ms(ticks: int) -> float:
    model = OrgModel(load_scenario(TINY), seed=SEED)
    per_tick = []
    gc.collect()
    for _ in range(min(ticks, model.n_ticks)):
        start = time.perf_counter()
        model.step()
        per_tick.append(time.perf_counter() - start)
    return statistics.median(per_tick) * 1e3


class LoopUser(mesa.Agent):
    """One user as a plain Mesa agent: the daily update of ``UserSegment.end_day`` in scalars."""

    LOG_BASE = math.log(-math.log1p(-0.025) / DAYS_PER_MONTH)
    EXPERIENCE_COEF = 4.0
    TENURE_COEF = -0.35
    MEMORY = 0.5 ** (1 / 7)
    DAILY_BAD = 1.6 * 0.01 * (1 - MEMORY)

    def __init__(self, model: mesa.Model) -> None:
        super().__init__(model)
        rng = model.rng
        self.intensity = float(rng.lognormal(-0.18, 0.6))
        self.experience = 0.0
        self.tenure_days = float(rng.exponential(365.0))
        self.clock = 0.0
        self.threshold = float(rng.standard_exponential())
        self.active = True

    def step(self) -> None:
        if not self.active:
            return
        self.experience = self.MEMORY * self.experience + self.DAILY_BAD * self.intensity
        self.clock += math.exp(
            self.LOG_BASE
            + self.EXPERIENCE_COEF * self.experience
            + self.TENURE_COEF * math.log1p(self.tenure_days / DAYS_PER_MONTH)
        )
        if self.clock >= self.threshold:
            self.active = False
        self.tenure_days += 1.0


def mesa_loop_per_user_day_s(n: int, days: int, repeats: int) -> float:
    model = mesa.Model(rng=SEED)
    for _ in range(n):
        LoopUser(model)
    per_day = []
    for _ in range(repeats):
        per_day.append(timed(lambda: [model.agents.shuffle_do("step") for _ in range(days)]) / days)
    return statistics.median(per_day) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run each, 90-day 'years'")
    parser.add_argument("--child-million", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    days, runs = (90, 1) if args.quick else (365, 3)
    if args.child_million:
        child_million(days)
        return
    baseline = load_scenario(BASELINE)
    million = million_scenario()
    log("machine reference")
    machine = reference()
    results: dict[str, Any] = {"cores": os.cpu_count(), "quick": args.quick}
    results["year_days"] = days
    results["baseline_year_s"] = median_time(lambda: run_model(baseline, days), runs, "baseline")
    results["baseline_year_with_tables_s"] = median_time(
        lambda: simulate(baseline, seed=SEED, days=days), runs, "baseline+tables"
    )
    results["million_users_year_s"] = median_time(lambda: run_model(million, days), runs, "1M")
    log("1M peak RSS (child process)")
    results["million_users_peak_rss_mib"] = round(peak_rss_mib(days, args.quick), 1)
    log("user-days per second")
    results["user_days_per_s"] = user_days_per_s(million, repeats=2 if args.quick else 5)
    log("tick overhead")
    results["tick_overhead_ms"] = tick_overhead_ms(500 if args.quick else 2000)
    log("Mesa loop")
    mesa_cost = mesa_loop_per_user_day_s(MESA_USERS, days=3 if args.quick else 10, repeats=3)
    results["vs_mesa_loop_users"] = MESA_USERS
    results["mesa_loop_user_days_per_s"] = 1.0 / mesa_cost
    results["vs_mesa_loop_speedup"] = mesa_cost * results["user_days_per_s"]
    results["machine"] = machine
    results["per_reference"] = per_reference(results, machine["reference_s"])
    results["targets"] = {k: v for k, (_, v) in TARGETS.items()}
    results["meets"] = meets(results, TARGETS)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
