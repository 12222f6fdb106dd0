"""A reference figure of the machine a benchmark runs on, so that figures compare across machines.

Machines of the same kind differ: one drew random numbers 3.5× slower than another, and
a baseline year took 1.9 s on one and 6.2 s on the other. Each benchmark therefore also
times :func:`reference_workload`, a fixed mix of the work the engine does (many numpy
calls on small arrays, a few on large ones, random draws, plain Python), and prints each
of its times divided by that reference: a ratio that does not depend on the machine.

Run it alone with ``python benchmarks/machine.py`` (one JSON object on stdout).
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import time

import numpy as np

RUNS = 5


def reference_workload() -> None:
    """The fixed work whose wall time is the machine's reference figure (about 0.3 s)."""
    rng = np.random.default_rng(20261130)
    operator = np.linalg.inv(np.eye(18) - 0.04 * rng.random((18, 18)))
    demand = rng.random(18)
    for _ in range(4000):  # an hour of the mesh: many calls on 18-element arrays
        routed = operator @ demand
        used = np.minimum(routed / 2.0, 0.98)
        latency = 20.0 * (1.0 + used / (1.0 - used))
        demand = np.maximum(demand + 1e-3 * (latency.mean() - latency) / 100.0, 0.0)
        np.bincount(np.arange(18) % 5, routed, minlength=5)
    users = rng.random(1_000_000, dtype=np.float32)
    for _ in range(10):  # a day of a million users: a few calls on large arrays
        hazard = np.exp(users * np.float32(0.3))
        users = users * np.float32(0.9) + hazard * np.float32(1e-3)
        np.flatnonzero(users > 1.5)
    rng.poisson(rng.random(200_000) * 3.0)  # random draws
    rng.standard_exponential(1_000_000, dtype=np.float32)
    totals: dict[int, float] = {}
    for i in range(200_000):  # plain Python: the agents' bookkeeping
        totals[i % 97] = totals.get(i % 97, 0.0) + i * 0.5


def reference() -> dict[str, object]:
    """The machine's reference figure: the median wall time of :func:`reference_workload`.

    Returns:
        ``reference_s`` (seconds, median of :data:`RUNS` runs), ``reference_runs_s`` (every
        run), ``python`` and ``numpy`` versions, ``processor``.
    """
    times = []
    for _ in range(RUNS):
        gc.collect()
        start = time.perf_counter()
        reference_workload()
        times.append(time.perf_counter() - start)
    return {
        "reference_s": statistics.median(times),
        "reference_runs_s": [round(t, 4) for t in times],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "processor": platform.processor() or platform.machine(),
    }


def meets(
    results: dict[str, object], targets: dict[str, tuple[str, object]]
) -> dict[str, bool | None]:
    """Per target key, whether its figure meets the bound: ``(op, bound)`` with ``op`` one
    of ``<=``, ``<``, ``>=`` and ``bound`` a number or another key (the baseline to beat);
    None where the figure or a keyed bound is missing (a data set absent)."""
    out: dict[str, bool | None] = {}
    for key, (op, bound) in targets.items():
        value = results.get(key)
        target = results.get(bound) if isinstance(bound, str) else bound
        if value is None or target is None:
            out[key] = None
        elif op == "<=":
            out[key] = value <= target
        elif op == "<":
            out[key] = value < target
        else:
            out[key] = value >= target
    return out


def per_reference(figures: dict[str, object], reference_s: float) -> dict[str, float]:
    """The figures in units of the reference, which compare across machines.

    A time (a key ending in ``_s``) becomes how many reference workloads it lasts
    (``baseline_year_s`` -> ``baseline_year_per_reference``); a rate (``_per_s``) how
    much it does in one reference time (``user_days_per_s`` -> ``user_days_per_reference``).
    """
    out = {}
    for key, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or "target" in key:
            continue
        if key.endswith("_per_s"):
            out[f"{key[:-6]}_per_reference"] = value * reference_s
        elif key.endswith("_s"):
            out[f"{key[:-2]}_per_reference"] = value / reference_s
    return out


if __name__ == "__main__":
    print(json.dumps(reference(), indent=2))
