"""The drift watch against Nezha's injected faults: the whole run, and its figures.

Nezha's OnlineBoutique day (2022-08-22, ``../shared/data/nezha_onlineboutique``) has 24
faults injected between 03:53 and 07:53, one about every 8 minutes (``cpu_contention``,
``cpu_consumed``, ``network_delay``, ``exception``, ``return``), and no fault from about
08:00 to midnight. :func:`nezha_watch_figures`:

1. reads the pod metrics through the example mapping, each row's time cut to its minute
   (the ten pods are sampled within a second of each other, at about hh:mm:19), so the
   pods' rows line up; as the latency the twin knows, the server p90
   (``PodServerLatencyP90(s)``, the quantile nearest the median the files have: the
   twin's curve is then a p90 curve); as the client latency, the client p95
   (``PodClientLatencyP95(s)``: how long the pod waits on its calls, against its
   callees' server p95; the mix of the callees takes each one's p95 over its p90 for
   its p95 over its median, a narrower spread than the median would give, so the mix
   follows a slow callee more closely); the other columns as mapped. The files' success
   rate is 0 in every row of every pod, so it says nothing and no errors are derived;
2. learns the calls per request from the spans (``only=["structure"]``), then the
   twin's latency (``only=["latency"]``) on 08:00–18:00, from :data:`BASE` (the shop's
   ten services, the calls of ``dependency.csv``). The spans are the only ones there
   are, five minutes around the first two faults (03:52–03:55, 04:01–04:03): the call
   graph a team has from its tracing anyway. Without them the calls per request are 1
   on every edge, and the frontend's own latency (measured less its calls') is 0;
3. watches the whole day with 08:00–18:00 as the reference window, with a budget of
   one false alarm per hour over all the behaviours watched (``alarms_per_week`` =
   168 over their number); each behaviour's threshold is calibrated to it;
4. scores the alarms against ``fault_list.json``: a fault is detected when an alarm is
   known within 5 minutes of its start, an alarm on a row being known at the end of the
   row's minute (its time, plus the pods' sampling offset, plus a minute: a row shows a
   fault begun during its minute, which also bounds the delay from below); false alarms
   are those raised on the evening, 18:00 to midnight, which learning never saw;
5. runs the plain threshold detector in the same way (:func:`threshold_baseline`).
"""

from __future__ import annotations

import json
import time as clock
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from orgtwin.fidelity.residuals import residuals
from orgtwin.fidelity.watch import watch
from orgtwin.learn import learn
from orgtwin.scenario import Scenario
from orgtwin.telemetry.folder import Telemetry
from tests.learn.real_data import NEZHA, TWINS, nezha_faults, read_example, require

BASE = TWINS / f"{NEZHA}.yaml"
"""The base twin: the shop's services under Nezha's names, one team owning them."""
DAY = datetime(2022, 8, 22)
LEARN = (DAY.replace(hour=8), DAY.replace(hour=18))
"""Fault-free minutes the twin learns on, and the watch's reference window."""
EVENING = (DAY.replace(hour=18), DAY + timedelta(days=1))
"""Fault-free minutes learning never saw: false alarms are counted here."""
DETECT_WITHIN = timedelta(minutes=5)
ALARMS_PER_HOUR = 1.0
"""The false-alarm budget, over everything watched."""
K = 1.0
"""The CUSUM's allowance: half of a 2 sd shift, the smallest worth catching within
minutes (a fault that the 5-minute target asks for moves a stream by several sd)."""
CLIP = 4.0
"""Each standardised residual counts at most ±4 sd: one minute's outlier (a histogram
quantile one bucket up) adds at most ``CLIP − K``, below any calibrated threshold, so
only a shift over several minutes raises an alarm."""
BASELINE_METRICS = ("requests", "cpu", "latency_p50_ms", "latency_p95_ms")
"""The raw per-pod metrics the threshold baseline watches (the twin's inputs)."""


def nezha_requests() -> tuple[pl.DataFrame, timedelta]:
    """Nezha's per-pod minutes in the twin's ``requests`` shape (with
    ``client_latency_p95_ms``), and the pods' sampling offset within the minute (the
    median of each row's time past its minute)."""
    raw = read_example(NEZHA).tables["requests"].collect()
    offset = (raw["time"] - raw["time"].dt.truncate("1m")).median()
    requests = raw.with_columns(
        pl.col("time").dt.truncate("1m"),
        # a NaN is no figure; the mapping reads the client p95 (PodClientLatencyP95(s))
        pl.col("requests", "cpu", "latency_p95_ms", "client_latency_p95_ms").fill_nan(None),
        latency_p50_ms=(pl.col("PodServerLatencyP90(s)").cast(pl.Float64) * 1000.0).fill_nan(None),
    )
    assert isinstance(offset, timedelta)
    return requests, offset


def nezha_watch_figures() -> dict[str, float]:
    """Learn on 08:00–18:00, watch the day, score against the injected faults.

    Returns:
        ``nezha_faults_detected_5min`` (of 24), ``nezha_threshold_baseline_detected_5min``,
        ``nezha_false_alarms_per_hour`` (18:00–24:00), ``nezha_median_detect_s`` (over the
        faults detected), ``nezha_detect_s_<type>`` (median per fault type, NaN where
        none was detected), ``nezha_detected_<type>`` (count), ``nezha_first_alarm_on_
        faulted_service`` (share of the detected faults whose first alarm names the
        faulted pod's service), ``nezha_unmatched_alarms_morning`` (alarms 03:51–08:00
        within 5 minutes of no fault), ``nezha_watch_seconds``; and the same figures of
        the threshold baseline, named ``nezha_threshold_…``.
    """
    started = clock.perf_counter()
    requests, offset = nezha_requests()
    telemetry = Telemetry(tables={"requests": requests.lazy()}, files={})
    spans = read_example(NEZHA)
    graph, _ = learn(spans, base=BASE, only=["structure"])
    twin, _ = learn(telemetry.between(*LEARN), base=graph, only=["latency"])
    behaviours = _behaviours_watched(twin, requests)
    found = watch(
        twin, telemetry, reference=LEARN, alarms_per_week=168.0 * ALARMS_PER_HOUR / behaviours,
        k=K, clip=CLIP, pool=True,
    )  # fmt: skip
    faults = _faults()
    figures = _score(found.alarms, faults, offset, "nezha")
    baseline = threshold_baseline(requests)
    figures |= _score(baseline, faults, offset, "nezha_threshold")
    figures["nezha_threshold_baseline_detected_5min"] = figures[
        "nezha_threshold_faults_detected_5min"
    ]
    figures["nezha_behaviours_watched"] = float(behaviours)
    figures["nezha_watch_seconds"] = clock.perf_counter() - started
    return figures


def _behaviours_watched(twin: Scenario, requests: pl.DataFrame) -> int:
    """The behaviours the tables feed (the budget is split across them)."""
    points = residuals(twin, {"requests": requests.filter(pl.col("time") < LEARN[0])})
    return max(points["behaviour"].n_unique(), 1)


def _faults() -> pl.DataFrame:
    """The injected faults: time, service (the pod's deployment) and type."""
    data = json.loads(require(f"{NEZHA}/fault/fault_list.json").read_text())
    rows = [
        (datetime.fromisoformat(f["inject_time"]), f["inject_pod"].rsplit("-", 2)[0],
         f["inject_type"])
        for faults in data.values()
        for f in faults
    ]  # fmt: skip
    assert len(rows) == len(nezha_faults())
    return pl.DataFrame(rows, schema=["time", "service", "type"], orient="row").sort("time")


def _score(
    alarms: pl.DataFrame, faults: pl.DataFrame, offset: timedelta, name: str
) -> dict[str, float]:
    """Faults detected within :data:`DETECT_WITHIN`, detection delays per type, the
    first alarmed entity, and false alarms per evening hour, for ``alarms`` (``raised``,
    ``entity``)."""
    # a row's figure covers the minute from its time (the pods' offset past the minute
    # its stamp names): an alarm on it is known at the minute's end, and counts for a
    # fault that began before then
    at = (alarms["raised"] + offset + timedelta(minutes=1)).to_list()
    entities = alarms["entity"].to_list()
    delays: dict[str, list[float]] = {}
    first_right = 0
    matched: set[int] = set()
    detected = 0
    for when, service, kind in faults.iter_rows():
        hits = [(a - when, i) for i, a in enumerate(at) if timedelta(0) < a - when <= DETECT_WITHIN]
        delays.setdefault(kind, [])
        if not hits:
            continue
        detected += 1
        matched |= {i for _, i in hits}
        delay, first = min(hits)
        delays[kind].append(delay.total_seconds())
        first_right += entities[first] == service
    evening = sum(EVENING[0] <= a < EVENING[1] for a in at)
    hours = (EVENING[1] - EVENING[0]).total_seconds() / 3600.0
    morning = [
        i for i, a in enumerate(at) if a < LEARN[0] and i not in matched
    ]  # alarms of the faulted morning that match no fault
    every = [d for kind in delays.values() for d in kind]
    out = {
        f"{name}_faults_detected_5min": float(detected),
        f"{name}_false_alarms_per_hour": evening / hours,
        f"{name}_median_detect_s": float(np.median(every)) if every else float("nan"),
        f"{name}_first_alarm_on_faulted_service": first_right / detected if detected else 0.0,
        f"{name}_unmatched_alarms_morning": float(len(morning)),
    }
    for kind, values in sorted(delays.items()):
        out[f"{name}_detected_{kind}"] = float(len(values))
        out[f"{name}_detect_s_{kind}"] = float(np.median(values)) if values else float("nan")
    return out


def threshold_baseline(requests: pl.DataFrame) -> pl.DataFrame:
    """The plain threshold detector: per pod and raw metric (:data:`BASELINE_METRICS`),
    an alarm when the value leaves the learning window's mean ± c·sd, one alarm per run
    of minutes outside the band (an episode); ``c`` the least on a grid of 0.05 whose
    alarms in the learning window stay within the budget (:data:`ALARMS_PER_HOUR`).

    Returns:
        The alarms: ``raised`` (the first minute outside), ``entity`` (the pod's
        service) and ``metric``.
    """
    long = requests.unpivot(
        index=["time", "service"], on=list(BASELINE_METRICS), variable_name="metric"
    ).drop_nulls("value")
    inside = pl.col("time").is_between(*LEARN, closed="left")
    bands = (
        long.filter(inside)
        .group_by("service", "metric")
        .agg(mean=pl.col("value").mean(), sd=pl.col("value").std())
    )
    long = long.join(bands, on=["service", "metric"]).sort("service", "metric", "time")
    z = ((pl.col("value") - pl.col("mean")) / pl.col("sd")).abs().fill_nan(0.0)
    scored = long.with_columns(z=z)
    budget = ALARMS_PER_HOUR * (LEARN[1] - LEARN[0]).total_seconds() / 3600.0

    def alarms(c: float) -> pl.DataFrame:
        out = scored.with_columns(outside=pl.col("z") > c)
        start = pl.col("outside") & ~pl.col("outside").shift(1, fill_value=False).over(
            "service", "metric"
        )
        return out.filter(start).select(raised="time", entity="service", metric="metric")

    for c in np.arange(1.0, 50.0, 0.05):
        found = alarms(float(c))
        if found.filter(pl.col("raised").is_between(*LEARN, closed="left")).height <= budget:
            return found.sort("raised")
    return alarms(50.0).sort("raised")


def nezha_replay_figures(seeds: int = 3) -> dict[str, float]:
    """The replay scorecard of the fault-free evening, the twin learned on 08:00–18:00.

    The telemetry is the example mapping's as it is (pod p95, no median: the learner fits
    each curve to its p95). The calls per request come from the spans (the only ones,
    around the first faults), scaled to the requests each service's metrics counted over
    08:00–18:00; the latency curves from 08:00–18:00. The replay of 18:00–24:00 is fed
    the frontend's observed requests; each service's hourly requests and p95 are scored
    against persistence, which without an earlier day is the last hour before the
    window (17:00–18:00) carried forward.

    Returns:
        ``nezha_replay_{requests,latency}_mape_median`` and ``…_persistence_mape_median``
        (medians over services), ``nezha_replay_{requests,latency}_beats_persistence``
        (services whose MAPE is at most persistence's, of those scored),
        ``nezha_replay_{requests,latency}_services``, ``nezha_replay_mirrors_share`` and
        ``nezha_replay_seconds``.
    """
    from dataclasses import replace

    from orgtwin.fidelity import replay, score

    started = clock.perf_counter()
    telemetry = read_example(NEZHA)
    window = telemetry.between(*LEARN)
    window = replace(window, tables={**window.tables, "spans": telemetry.tables["spans"]})
    twin, _ = learn(window, base=BASE, only=["structure", "latency"])
    card = score(replay(twin, telemetry, start=EVENING[0], end=EVENING[1], seeds=seeds))
    out: dict[str, float] = {}
    for name, kpi in (("requests", "requests"), ("latency", "latency_p95_ms")):
        lines = card.lines.filter(
            (pl.col("kpi") == kpi) & pl.col("persistence_score").is_not_null()
        )
        twin_mape, persisted = lines["twin_score"], lines["persistence_score"]
        out[f"nezha_replay_{name}_mape_median"] = float(twin_mape.median())
        out[f"nezha_replay_{name}_persistence_mape_median"] = float(persisted.median())
        out[f"nezha_replay_{name}_beats_persistence"] = float((twin_mape <= persisted).sum())
        out[f"nezha_replay_{name}_services"] = float(lines.height)
    out["nezha_replay_mirrors_share"] = card.counts()["mirrors"] / max(card.lines.height, 1)
    out["nezha_replay_seconds"] = clock.perf_counter() - started
    return out


def describe(figures: dict[str, float]) -> str:
    """The figures, one a line (for a test's failure message or a benchmark log)."""
    return "\n".join(f"{k}: {v:.3g}" for k, v in sorted(figures.items()))


__all__ = [
    "BASE", "describe", "nezha_replay_figures", "nezha_watch_figures", "threshold_baseline",
]  # fmt: skip
