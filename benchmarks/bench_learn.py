"""Learning benchmark: figures on the public data sets, and learning from 10 million spans.

Run from the repository root: ``python benchmarks/bench_learn.py [--quick]``. Prints one
JSON object on stdout; progress goes to stderr.

Figures on the data sets of ``../shared/data``, each read through its mapping file in
``examples/telemetry/`` as the tests read it (``tests/learn/real_data.py``); every key is
null, with a ``note``, when the folder is absent:

- ``telco_auc``, ``telco_logistic_auc``: ROC AUC on the test part of a stratified 70/30
  split (seed 42) of IBM Telco churn, of :class:`ChurnLearner` (contract as segment,
  monthly charge as price, the other columns but ``TotalCharges`` as covariates; a
  one-month snapshot) and of a logistic regression on the same columns, fitted in this
  run; ``telco_c_index``: the learner's concordance index on tenure.
- ``nyc_taxi_mape``, ``nyc_taxi_seasonal_naive_mape``: hourly MAPE over 2014-09-22..28 of
  :class:`DemandLearner` trained on 09-01..21, and of "the same hour last week".
- ``nezha_edge_precision``, ``nezha_edge_recall``: the call graph
  :class:`StructureLearner` finds in Nezha's spans against ``dependency.csv``.
- ``nezha_latency_mape_median``, ``nezha_constant_mape_median``: the median over services
  of each service's MAPE of p90 latency on its last 30% of fault-free minutes, for the
  curve :class:`LatencyLearner` fits on the first 70% (``utilisation="auto"``: per
  service, CPU or requests per second over a fitted capacity) and for their median.
- ``azure_cv``: per class of the Azure LLM inference trace (``code``, ``conv``), the CV of
  the inter-arrival times (1 for Poisson); ``azure_burst_cv_per_minute``: the CV of the
  per-minute rate beyond Poisson, the twin's ``demand_profile.burst_cv`` at that window.

Learning from spans: ``learn_10m_spans_s`` is the wall time of reading a Parquet telemetry
folder of 10 million synthetic spans with :func:`read_telemetry` (validation included),
learning the call graph (:class:`StructureLearner`, given the lazy table) and the latency
curves (spans per service and minute: requests, p50 and p95 latency, utilisation as the
spans over the service's capacity, then :class:`LatencyLearner`). It runs in a fresh child
process (timed after its imports), whose peak resident memory (``VmHWM`` of
``/proc/self/status``) is ``learn_peak_rss_mib``. The spans are generated first by this
benchmark (``generate_spans_s``, not part of the figure) with a seeded numpy generator:
traces entering ``frontend`` make Poisson numbers of calls along a fixed graph, one
internal span under every call, durations log-normal around each service's queueing
curve at the minute's planned load. ``learn_stages_s`` splits the time; ``learn_check``
says whether the learned graph is the generator's and compares one fan-out with its truth.

``--quick`` uses 1 million spans (the keys keep their names; ``n_spans`` says how many).
``machine`` and ``per_reference`` are as in the other benchmarks (``benchmarks/machine.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orgtwin.learn.latency import LatencyLearner  # noqa: E402
from orgtwin.learn.structure import StructureLearner  # noqa: E402
from orgtwin.telemetry.folder import read_telemetry  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import meets, per_reference, reference  # noqa: E402

SEED = 42
FULL_SPANS, QUICK_SPANS = 10_000_000, 1_000_000
TARGETS: dict[str, tuple[str, float | str]] = {
    "learn_10m_spans_s": ("<=", 60.0),
    "learn_peak_rss_mib": ("<=", 2048.0),
    "telco_auc": (">=", "telco_logistic_auc"),
    "telco_c_index": (">=", 0.86),
    "nyc_taxi_mape": ("<", "nyc_taxi_seasonal_naive_mape"),
    "nezha_edge_precision": (">=", 1.0),
    "nezha_edge_recall": (">=", 13 / 14),
    "nezha_latency_mape_median": ("<=", "nezha_constant_mape_median"),
}
"""Per key, the bound: a number, or another key's value (the baseline to beat)."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data sets


def telco_figures() -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    from orgtwin.learn.churn import concordance_index
    from tests.learn.real_data import telco_split

    split = telco_split(seed=SEED)
    return {
        "telco_auc": roc_auc_score(split.y, split.learner.predict_proba(split.test)),
        "telco_logistic_auc": roc_auc_score(split.y, split.logistic),
        "telco_c_index": concordance_index(
            split.test["tenure_months"].to_numpy(),
            split.y,
            split.learner.predict_log_hazard(split.test),
        ),
    }


def nyc_taxi_figures() -> dict[str, float]:
    from orgtwin.learn.demand import DemandLearner, hourly_counts, mape, seasonal_naive
    from tests.learn.real_data import read_example

    arrivals = hourly_counts(read_example("nyc_taxi").tables["arrivals"].collect())
    train_from, test_from = datetime(2014, 9, 1), datetime(2014, 9, 22)
    test_to = test_from + timedelta(days=7)
    train = arrivals.filter(pl.col("time").is_between(train_from, test_from, closed="left"))
    test = arrivals.filter(pl.col("time").is_between(test_from, test_to, closed="left"))
    learner = DemandLearner().fit(train)
    actual = test["count"].to_numpy()
    return {
        "nyc_taxi_mape": mape(actual, learner.predict(test["time"])),
        "nyc_taxi_seasonal_naive_mape": mape(actual, seasonal_naive(arrivals, test["time"])),
    }


def nezha_figures() -> dict[str, float]:
    from orgtwin.learn.structure import edge_scores
    from tests.learn.real_data import (
        nezha_dependencies,
        nezha_fault_free,
        read_example,
        time_split,
    )

    telemetry = read_example("nezha_onlineboutique")
    learner = StructureLearner().fit(telemetry.tables["spans"])
    precision, recall = edge_scores(learner.edges(), nezha_dependencies())
    requests = nezha_fault_free(telemetry.tables["requests"].collect())
    train, test = time_split(requests, 0.7)
    latency = LatencyLearner(latency_column="latency_p90_ms", utilisation="auto").fit(train)
    learned, constant = latency.mape_by_service(test, train)
    return {
        "nezha_edge_precision": precision,
        "nezha_edge_recall": recall,
        "nezha_latency_mape_median": float(np.median(list(learned.values()))),
        "nezha_constant_mape_median": float(np.median(list(constant.values()))),
    }


def azure_figures() -> dict[str, Any]:
    from orgtwin.learn.arrivals import diagnose_arrivals
    from tests.learn.real_data import read_example

    arrivals = read_example("azure_llm_inference").tables["arrivals"]
    cv, burst = {}, {}
    for kind in ("code", "conv"):
        rows = arrivals.filter(pl.col("key") == kind).collect()
        cv[kind] = diagnose_arrivals(rows, window_s=1.0).cv
        burst[kind] = diagnose_arrivals(rows, window_s=60.0).burst_cv
    return {"azure_cv": cv, "azure_burst_cv_per_minute": burst}


DATA_SETS = {
    "telco_churn": (telco_figures, ("telco_auc", "telco_logistic_auc", "telco_c_index")),
    "nyc_taxi": (nyc_taxi_figures, ("nyc_taxi_mape", "nyc_taxi_seasonal_naive_mape")),
    "nezha_onlineboutique": (
        nezha_figures,
        (
            "nezha_edge_precision",
            "nezha_edge_recall",
            "nezha_latency_mape_median",
            "nezha_constant_mape_median",
        ),
    ),
    "azure_llm_inference": (azure_figures, ("azure_cv", "azure_burst_cv_per_minute")),
}


def data_set_figures() -> tuple[dict[str, Any], list[str]]:
    from tests.learn.real_data import DATA

    figures: dict[str, Any] = {}
    notes = []
    for name, (compute, keys) in DATA_SETS.items():
        if not (DATA / name).is_dir():
            figures |= dict.fromkeys(keys)
            notes.append(f"{DATA / name} is absent: {', '.join(keys)} not measured")
            continue
        log(f"data set {name}")
        figures |= compute()
    return figures, notes


# --------------------------------------------------------------------------- synthetic spans

SERVICES = ("frontend", "cart", "catalog", "currency", "recommend", "ad", "checkout",
            "shipping", "payment", "email")  # fmt: skip
CALLS = {
    "frontend": {"cart": 1.0, "catalog": 3.0, "currency": 2.0, "recommend": 1.0, "ad": 1.0,
                 "checkout": 0.2, "shipping": 0.5},
    "recommend": {"catalog": 1.0},
    "checkout": {"cart": 1.0, "payment": 1.0, "email": 1.0, "shipping": 1.0, "currency": 2.0},
}  # fmt: skip
"""Mean calls per request of the caller (Poisson numbers of calls); two levels deep."""
BASE_MS = np.linspace(2.0, 20.0, len(SERVICES))
QUEUEING = np.linspace(0.3, 2.0, len(SERVICES))
SIGMA = np.log(2.5) / 1.6448536269514722  # p95 / p50 = 2.5
PEAK_UTILISATION = 0.8
MINUTES = 1440
START = datetime(2026, 1, 5)
TRACES_PER_CHUNK = 50_000


def load_by_minute() -> np.ndarray:
    """The share of the day's traces in each minute: a daily curve, 0.2 to 1 of the peak."""
    minute = np.arange(MINUTES)
    curve = 0.6 - 0.4 * np.cos(2 * np.pi * minute / MINUTES)
    return curve / curve.sum()


def spans_per_trace() -> np.ndarray:
    """Expected spans of each service per trace (a call makes two: entry and internal)."""
    out = np.zeros(len(SERVICES))
    out[0] = 2.0
    for callee, mean in CALLS["frontend"].items():
        out[SERVICES.index(callee)] += 2 * mean
        for second, mean2 in CALLS.get(callee, {}).items():
            out[SERVICES.index(second)] += 2 * mean * mean2
    return out


def capacity_per_minute(n_traces: int) -> dict[str, float]:
    """Spans per minute each service can take: its busiest minute runs at 80% utilisation."""
    peak = load_by_minute().max() * n_traces * spans_per_trace() / PEAK_UTILISATION
    return dict(zip(SERVICES, peak.tolist(), strict=True))


_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)]).view(np.uint16)


def hex_ids(values: np.ndarray, width: int = 16) -> pl.Series:
    """Unsigned 64-bit numbers as fixed-width hex text (two of them for ``width`` 32)."""
    parts = [values, values * np.uint64(0x9E3779B97F4A7C15)] if width == 32 else [values]
    octets = np.hstack([p.astype(">u8").view(np.uint8).reshape(-1, 8) for p in parts])
    chars = np.ascontiguousarray(_HEX_PAIRS[octets])
    return pl.Series(chars.view(f"S{width}").ravel()).cast(pl.String)


def _scramble(counter: np.ndarray) -> np.ndarray:
    """A bijection of 64-bit numbers, so that ids look random and stay unique."""
    x = counter.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(31))


def span_chunk(
    rng: np.random.Generator, first_trace: int, first_span: int, n_traces: int
) -> pl.DataFrame:
    """The spans of ``n_traces`` traces (ids counted from ``first_trace``, ``first_span``)."""
    minute = rng.choice(MINUTES, n_traces, p=load_by_minute())
    trace_of: list[np.ndarray] = []
    parent_of: list[np.ndarray] = []
    service_of: list[np.ndarray] = []
    next_span = first_span

    def add(traces: np.ndarray, parents: np.ndarray, code: int) -> np.ndarray:
        """Entry spans of service ``code`` under ``parents``, an internal span under each;
        returns the internal spans' ids (the parents of the calls they make)."""
        nonlocal next_span
        n = len(traces)
        entry = np.arange(next_span, next_span + n)
        next_span += 2 * n
        trace_of.extend([traces, traces])
        parent_of.extend([parents, entry])
        service_of.append(np.full(2 * n, code))
        return entry + n

    traces = np.arange(n_traces)
    root_inner = add(traces, np.full(n_traces, -1), 0)
    for callee, mean in CALLS["frontend"].items():
        k = rng.poisson(mean, n_traces)
        callers = np.repeat(traces, k)
        inner = add(callers, np.repeat(root_inner, k), SERVICES.index(callee))
        for second, mean2 in CALLS.get(callee, {}).items():
            k2 = rng.poisson(mean2, len(inner))
            add(np.repeat(callers, k2), np.repeat(inner, k2), SERVICES.index(second))
    trace = np.concatenate(trace_of)
    parent = np.concatenate(parent_of)
    code = np.concatenate(service_of)
    load = load_by_minute()
    u = PEAK_UTILISATION * load[minute[trace]] / load.max()
    p50 = BASE_MS[code] * (1 + QUEUEING[code] * u / (1 - u))
    duration = p50 * np.exp(SIGMA * rng.standard_normal(len(code)))
    offset_us = (minute[trace] * 60 + rng.uniform(0, 59, len(code))) * 1e6
    names = np.asarray(SERVICES)
    spans = pl.DataFrame(
        {
            "trace_id": hex_ids(_scramble(trace + first_trace), 32),
            "span_id": hex_ids(_scramble(np.arange(first_span, next_span))),
            "parent_id": hex_ids(_scramble(np.maximum(parent, 0))),
            "service": names[code],
            "operation": np.char.add(names[code], ".Call"),
            "start": np.datetime64(START, "us") + offset_us.astype("timedelta64[us]"),
            "duration_ms": duration,
            "status": np.where(rng.random(len(code)) < 0.01, "error", "ok"),
        }
    )
    root = pl.Series(parent < 0)
    return spans.with_columns(
        pl.when(root).then(None).otherwise(pl.col("parent_id")).alias("parent_id")
    )


def generate_spans(folder: Path, n_spans: int, seed: int = SEED) -> dict[str, float]:
    """Write ``n_spans`` spans as ``folder/spans/part-*.parquet``; returns the capacity
    per minute of each service (spans)."""
    rng = np.random.default_rng(seed)
    (folder / "spans").mkdir(parents=True)
    written = traces = part = 0
    per_trace = spans_per_trace().sum()
    while written < n_spans:
        n_traces = min(TRACES_PER_CHUNK, int((n_spans - written) / per_trace * 1.02) + 10)
        chunk = span_chunk(rng, traces, written, n_traces)
        chunk = chunk.head(n_spans - written)  # every span comes after its parent
        chunk.write_parquet(folder / "spans" / f"part-{part:04d}.parquet")
        written, traces, part = written + chunk.height, traces + n_traces, part + 1
    return capacity_per_minute(traces)


# --------------------------------------------------------------------------- learning


def requests_from_spans(spans: pl.LazyFrame, capacity: dict[str, float]) -> pl.DataFrame:
    """Per service and minute: spans, p50 and p95 duration, utilisation (spans / capacity)."""
    per_minute = pl.DataFrame({"service": list(capacity), "capacity": list(capacity.values())})
    return (
        spans.group_by("service", pl.col("start").dt.truncate("1m").alias("time"))
        .agg(
            pl.len().cast(pl.Float64).alias("requests"),
            pl.col("duration_ms").median().alias("latency_p50_ms"),
            pl.col("duration_ms").quantile(0.95).alias("latency_p95_ms"),
        )
        .collect(engine="streaming")
        .join(per_minute, on="service")
        .with_columns((pl.col("requests") / pl.col("capacity")).alias("cpu"))
        .sort("service", "time")
    )


def learn_spans(folder: Path, capacity: dict[str, float]) -> dict[str, Any]:
    """Read the folder and learn structure and latency; times per stage and what was learned."""
    gc.collect()
    start = time.perf_counter()
    telemetry = read_telemetry(folder)
    read = time.perf_counter()
    structure = StructureLearner().fit(telemetry.tables["spans"])
    learned = time.perf_counter()
    latency = LatencyLearner().fit(requests_from_spans(telemetry.tables["spans"], capacity))
    end = time.perf_counter()
    truth = {(a, b) for a, callees in CALLS.items() for b in callees}
    return {
        "n_spans": telemetry.rows["spans"],
        "total_s": end - start,
        "stages_s": {"read": read - start, "structure": learned - read, "latency": end - learned},
        "edges_found": structure.edges() == truth,
        "frontend_catalog_calls": structure.fanout("frontend", "catalog"),
        "latency_services": len(latency.services_),
    }


def child_learn(folder: Path) -> None:
    """Body of the ``--child-learn`` subprocess: learn, then print the figures and VmHWM."""
    capacity = json.loads((folder.parent / "capacity.json").read_text())
    figures = learn_spans(folder, capacity)
    status = Path("/proc/self/status").read_text()
    peak_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
    )
    print(json.dumps(figures | {"peak_rss_mib": peak_kib / 1024.0}))


def span_figures(n_spans: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench_learn_"))
    try:
        log(f"generating {n_spans:,} spans")
        start = time.perf_counter()
        capacity = generate_spans(work / "telemetry", n_spans)
        generated = time.perf_counter() - start
        (work / "capacity.json").write_text(json.dumps(capacity))
        log(f"generated in {generated:.1f} s; reading and learning (child process)")
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child-learn",
            str(work / "telemetry"),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        child = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"learned in {child['total_s']:.1f} s, peak RSS {child['peak_rss_mib']:.0f} MiB")
    return {
        "n_spans": child["n_spans"],
        "generate_spans_s": generated,
        "learn_10m_spans_s": child["total_s"],
        "learn_stages_s": child["stages_s"],
        "learn_peak_rss_mib": round(child["peak_rss_mib"], 1),
        "learn_check": {
            "edges_found": child["edges_found"],
            "frontend_catalog_calls": child["frontend_catalog_calls"],
            "true_frontend_catalog_calls": CALLS["frontend"]["catalog"],
            "latency_services": child["latency_services"],
        },
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 million spans instead of 10")
    parser.add_argument("--child-learn", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_learn:
        child_learn(args.child_learn)
        return
    log("machine reference")
    machine = reference()
    results: dict[str, Any] = {"cores": os.cpu_count(), "quick": args.quick}
    figures, notes = data_set_figures()
    results |= figures
    results |= span_figures(QUICK_SPANS if args.quick else FULL_SPANS)
    results["machine"] = machine
    results["per_reference"] = per_reference(results, machine["reference_s"])
    results["targets"] = {k: v for k, (_, v) in TARGETS.items()}
    results["meets"] = meets(results, TARGETS)
    if notes:
        results["note"] = "; ".join(notes)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
