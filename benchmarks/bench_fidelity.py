"""Benchmark of the drift watch: telemetry rows a second through ``watch``.

Run from the repository root: ``python benchmarks/bench_fidelity.py [--days DAYS]``.
Prints one JSON object:

- ``watch_events_per_s``: telemetry rows (every table ``watch`` reads, summed) divided by
  the wall time of :func:`orgtwin.fidelity.watch.watch` on the baseline scenario's
  synthetic telemetry of ``--days`` days (364, a year, by default), the first 28 days its
  reference window; target ≥ 200,000 on 2 cores;
- ``watch_s`` and its parts: ``residuals_s`` (the residual streams, timed again alone),
  ``detect_s`` (the CUSUMs, timed again alone) and ``calibrate_s`` (the rest: every
  stream's threshold by simulation, once per rate for standard normal null streams);
- ``rows``, ``streams``, ``alarms``;
- ``machine``: the reference figure of the machine (``benchmarks/machine.py``) and the
  times in units of it (``per_reference``).

The other keys of the fidelity issue (Nezha's injected faults, NYC taxi's anomaly
windows, a week of replay) wait for the checks against real data and shadow replay.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orgtwin.fidelity import detect, watch  # noqa: E402
from orgtwin.fidelity.residuals import residuals  # noqa: E402
from orgtwin.runs.synth import synth  # noqa: E402
from orgtwin.scenario import load_scenario  # noqa: E402
from orgtwin.telemetry.folder import read_telemetry  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import per_reference, reference  # noqa: E402

TARGETS = {"watch_events_per_s": (">=", 200_000.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=364, help="days of telemetry (default 364)")
    args = parser.parse_args()
    print("[bench] machine reference", file=sys.stderr)
    machine = reference()
    base = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"[bench] synthesising {args.days} days of the baseline", file=sys.stderr)
        folder = synth(base, days=args.days, seed=1, out=Path(tmp) / "telemetry")
        window = (base.start, base.start + timedelta(days=28))
        telemetry = read_telemetry(folder)
        rows = sum(telemetry.rows.values())
        print(f"[bench] watching {rows:,} rows", file=sys.stderr)
        started = time.perf_counter()
        found = watch.watch(base, folder, reference=window)
        watch_s = time.perf_counter() - started
        started = time.perf_counter()
        points = residuals(base, telemetry.tables, reference=window)
        residuals_s = time.perf_counter() - started
    detect_s = _detect_s(points, found.thresholds)
    calibrate_s = max(watch_s - residuals_s - detect_s, 0.0)
    figures = {
        "cores": __import__("os").cpu_count(),
        "days": args.days,
        "rows": rows,
        "streams": found.thresholds.height,
        "alarms": found.alarms.height,
        "watch_s": watch_s,
        "residuals_s": residuals_s,
        "calibrate_s": calibrate_s,
        "detect_s": detect_s,
        "watch_events_per_s": rows / watch_s,
    }
    ratios = per_reference(figures, float(machine["reference_s"]))
    meets = {key: figures[key] >= target for key, (_, target) in TARGETS.items()}
    out = figures | {"machine": machine, "per_reference": ratios, "targets": TARGETS,
                     "meets": meets}  # fmt: skip
    print(json.dumps(out, indent=2))


def _detect_s(points, thresholds) -> float:
    """The time of running every stream's CUSUM again at its calibrated threshold."""
    total = 0.0
    for row in thresholds.iter_rows(named=True):
        stream = points.filter(
            (points["behaviour"] == row["behaviour"]) & (points["entity"] == row["entity"])
        )
        z = stream["z"].to_numpy()
        started = time.perf_counter()
        detect.cusum(z, h=row["threshold"], rearm="restart")
        total += time.perf_counter() - started
    return total


if __name__ == "__main__":
    main()
