"""Benchmark of the fidelity stage: the drift watch, shadow replay, and the real data.

Run from the repository root: ``python benchmarks/bench_fidelity.py [--days DAYS]``.
Prints one JSON object:

- ``watch_events_per_s``: telemetry rows (every table ``watch`` reads, summed) divided by
  the wall time of :func:`orgtwin.fidelity.watch.watch` on the baseline scenario's
  synthetic telemetry of ``--days`` days (364, a year, by default), the first 28 days its
  reference window, the median of :data:`WATCH_RUNS` whole runs (as bench_core takes
  medians; ``watch_first_s`` is the first, which also imports what the watch loads);
  target ≥ 200,000 on 2 cores;
- ``watch_s`` and its parts: ``residuals_s`` (the residual streams, timed again alone),
  ``detect_s`` (the CUSUMs, timed again alone) and ``calibrate_s`` (the rest: every
  stream's threshold by simulation, once per rate for standard normal null streams);
- ``rows``, ``streams``, ``alarms``;
- ``replay_week_s``: a week of the baseline replayed over five seeds, fed its synthetic
  telemetry's arrivals, deploys and outages, and scored (:func:`orgtwin.validate`, the
  telemetry read included); target ≤ 10 s; ``replay_trust``: the scorecard's trust;
- Nezha's injected faults (:func:`tests.fidelity.nezha.nezha_watch_figures`):
  ``nezha_faults_detected_5min`` (of 24; target 20) against
  ``nezha_threshold_baseline_detected_5min`` (a plain threshold on the raw metrics,
  same budget, same run), ``nezha_false_alarms_per_hour`` (fault-free evening; target
  ≤ 1), ``nezha_median_detect_s``, per fault type ``nezha_detected_<type>`` and
  ``nezha_detect_s_<type>``, ``nezha_first_alarm_on_faulted_service``;
- Nezha's replayed evening (:func:`tests.fidelity.nezha.nezha_replay_figures`):
  ``nezha_replay_{requests,latency}_mape_median`` against
  ``nezha_replay_{requests,latency}_persistence_mape_median``;
- NYC taxi's anomaly windows (:func:`tests.fidelity.nyc.nyc_watch_figures`):
  ``nyc_taxi_window_recall`` and ``nyc_taxi_false_alarms_per_week`` (target ≤ 1);
- ``machine``: the reference figure of the machine (``benchmarks/machine.py``) and the
  times in units of it (``per_reference``); ``targets`` and ``meets``.

The real-data keys are null, with a note, where ``../shared/data`` lacks the set.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orgtwin.fidelity import detect, validate, watch  # noqa: E402
from orgtwin.fidelity.residuals import residuals  # noqa: E402
from orgtwin.runs.synth import synth  # noqa: E402
from orgtwin.scenario import load_scenario  # noqa: E402
from orgtwin.telemetry.folder import read_telemetry  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import meets, per_reference, reference  # noqa: E402

TARGETS: dict[str, tuple[str, float | str]] = {
    "watch_events_per_s": (">=", 200_000.0),
    "replay_week_s": ("<=", 10.0),
    "nezha_faults_detected_5min": (">=", 20.0),
    "nezha_false_alarms_per_hour": ("<=", 1.0),
    "nezha_threshold_baseline_detected_5min": ("<=", "nezha_faults_detected_5min"),
    "nezha_replay_requests_mape_median": ("<=", "nezha_replay_requests_persistence_mape_median"),
    "nezha_replay_latency_mape_median": ("<=", "nezha_replay_latency_persistence_mape_median"),
    "nyc_taxi_false_alarms_per_week": ("<=", 1.0),
}
"""Per key, the bound: a number, or another key's value (the baseline to beat)."""
REPLAY_SEEDS = 5


WATCH_RUNS = 3
"""Whole runs of the watch timed; the median is the figure."""


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
        runs = []
        for _ in range(WATCH_RUNS):  # each a whole watch: read, residuals, calibrate, detect
            started = time.perf_counter()
            found = watch.watch(base, folder, reference=window)
            runs.append(time.perf_counter() - started)
        watch_s = statistics.median(runs)
        started = time.perf_counter()
        points = residuals(base, telemetry.tables, reference=window)
        residuals_s = time.perf_counter() - started
        print("[bench] replaying a week of the baseline", file=sys.stderr)
        started = time.perf_counter()
        week = (base.start + timedelta(days=28), base.start + timedelta(days=35))
        card = validate(base, folder, start=week[0], end=week[1], seeds=REPLAY_SEEDS)
        replay_week_s = time.perf_counter() - started
    detect_s = _detect_s(points, found.thresholds)
    calibrate_s = max(watch_s - residuals_s - detect_s, 0.0)
    figures = {
        "cores": __import__("os").cpu_count(),
        "days": args.days,
        "rows": rows,
        "streams": found.thresholds.height,
        "alarms": found.alarms.height,
        "watch_s": watch_s,
        "watch_first_s": runs[0],
        "residuals_s": residuals_s,
        "calibrate_s": calibrate_s,
        "detect_s": detect_s,
        "watch_events_per_s": rows / watch_s,
        "replay_week_s": replay_week_s,
        "replay_trust": card.trust,
    }
    real, notes = data_set_figures()
    figures |= real
    timed = ("watch_s", "residuals_s", "calibrate_s", "detect_s", "replay_week_s",
             "watch_events_per_s", "nezha_watch_seconds", "nezha_replay_seconds",
             "nyc_taxi_watch_s")  # fmt: skip
    ratios = per_reference(
        {k: figures[k] for k in timed if figures.get(k) is not None},
        float(machine["reference_s"]),
    )
    out = figures | {"machine": machine, "per_reference": ratios,
                     "targets": {k: v for k, (_, v) in TARGETS.items()},
                     "meets": meets(figures, TARGETS)}  # fmt: skip
    if notes:
        out["note"] = "; ".join(notes)
    print(json.dumps(out, indent=2))


def data_set_figures() -> tuple[dict[str, Any], list[str]]:
    """The real-data figures, or null keys and a note where a data set is absent."""
    from tests.fidelity.nezha import nezha_replay_figures, nezha_watch_figures
    from tests.learn.real_data import DATA

    sets = {
        "nezha_onlineboutique": (
            lambda: nezha_watch_figures() | nezha_replay_figures(),
            ("nezha_faults_detected_5min", "nezha_threshold_baseline_detected_5min",
             "nezha_false_alarms_per_hour", "nezha_median_detect_s"),
        ),
        "nyc_taxi": (nyc_figures, ("nyc_taxi_window_recall", "nyc_taxi_false_alarms_per_week")),
    }  # fmt: skip
    figures: dict[str, Any] = {}
    notes = []
    for name, (compute, keys) in sets.items():
        if not (DATA / name).is_dir():
            figures |= dict.fromkeys(keys)
            notes.append(f"{DATA / name} is absent: {', '.join(keys)} not measured")
            continue
        print(f"[bench] data set {name}", file=sys.stderr)
        figures |= {k: _finite(v) for k, v in compute().items()}
    return figures, notes


def nyc_figures() -> dict[str, Any]:
    """NYC taxi's figures under their benchmark keys."""
    from tests.fidelity.nyc import nyc_watch_figures

    found = nyc_watch_figures()
    return {
        "nyc_taxi_window_recall": found["window_recall"],
        "nyc_taxi_false_alarms_per_week": found["false_alarms_per_week"],
        "nyc_taxi_windows_recalled": found["recalled"],
        "nyc_taxi_windows_missed": found["missed"],
        "nyc_taxi_watch_s": found["seconds"],
    }


def _finite(value: Any) -> Any:
    """NaN (a fault type never detected) as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


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
