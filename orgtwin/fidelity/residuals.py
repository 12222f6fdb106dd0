"""Residual streams: what telemetry shows against what the twin predicts given the inputs.

The drift watch follows, per behaviour and entity, the residual between an observed
figure and the twin's prediction *given the observed inputs* (latency given the load,
demand given the profile and the recent level, deploy failures given the batch sizes,
churn given the users at risk), standardised so that ``z`` is about N(0, 1) while the
twin mirrors production. A change detector (CUSUM on ``z``) then says when it stops.

Each behaviour's stream is declared once in :data:`STREAMS` (its name, the tables it
needs, the function, its unit and what it compares); :func:`residuals` runs every stream
whose tables are there and stacks their points:

- ``latency`` (per service and hour, ms): each service's own median latency
  (:func:`orgtwin.learn.own_latency`: measured less its calls', by moments) against
  :meth:`LatencyCurve.predict <orgtwin.behaviours.LatencyCurve.predict>` at the measured
  utilisation (``cpu``). The twin's latency is deterministic given the load, so how far
  real latency wanders is learned: the log residual is divided by its sd in the
  reference window (without one: MAD × 1.4826 over the stream), at least
  :data:`LATENCY_LOG_SD_FLOOR`. A table without any median (metrics that keep tail
  percentiles only) gives the own 95th percentile against the curve's instead;
- ``utilisation`` (per service and row, share of capacity): the measured ``cpu``
  against the twin's utilisation at the measured load, ``requests / (seconds · replicas
  · capacity_rps_per_replica)`` (a row's seconds: the table's median spacing, so hourly
  telemetry and per-minute metrics alike). CPU taken by something other than the
  requests shows here, where the latency curve reads it as load;
- ``calls`` (per called service and row, requests): the requests a service gets against
  its callers' measured requests times the calls per request; a caller that stops
  calling (an early error return) shows as its callees' load falling. The scenario's
  capacity and calls per request are planning figures no learner sets from per-service
  metrics, so these two streams take their level from the reference window (the
  median log residual there) and their scale as latency does; without a reference
  window, the scenario's level;
- ``client_latency`` (per calling service and row, ms): how long a service waits on its
  calls (the ``requests`` table's optional ``client_latency_p95_ms``) against the 95th
  percentile of the mix of its callees' measured latency in the scenario's calls per
  request (:func:`orgtwin.telemetry.derived.client_latency_p95`), at the level of the
  reference window as ``utilisation`` and ``calls`` (the network's share is in it). A
  callee slow on its own moves both; a delay on the network between them (on the
  callee's pod, whose own latency holds) moves the wait alone. Without the column, no
  stream;
- ``demand`` (per segment and hour, sessions per hour): the arrivals against ``level ×
  profile × correction``, each from the hours before only (:func:`_demand_filter`): the
  profile the scenario's; the level smoothed over about two days; each hour of the
  week's correction of the profile smoothed from week to week (so a change of shape or
  level shows for a day to a week or two, long enough for the detector, then is the
  norm, and steady growth or decline raises no alarm). Counts are clipped at
  :data:`DEMAND_CLIP` sd before they move the level or the shape, so a holiday shows
  whole and the weeks after it are judged against a level it did not drag.
  ``z = (obs − exp) / sqrt(v · max(φ², floor))``, ``v = exp + burst_cv²·exp²`` the
  twin's noise, ``φ²`` the residual's own robust spread over it over the last week, at
  least the floor the smoothing's error adds: real demand that wanders more than its
  twin says is judged by the spread it shows;
- ``change_failure`` (per team and day, failed deploys): failed deploys against the sum
  of the scenario's failure probabilities of the day's batch sizes,
  ``z = (Σy − Σp) / sqrt(Σp(1 − p))``. Fatigue is not in telemetry: it is taken as 0
  (a rested team), so a team whose ``fatigue_coef`` is above 0 fails a little more
  often than this predicts;
- ``errors`` (per service and hour, failed requests per hour): the failures the
  ``requests`` table counts against the twin's at the measured utilisation (its base
  error rate and overload), the callees' measured error rates and the vendors' outages
  (``vendor_status``) and rate limits, compounded as the simulator does; hours with an
  incident open on the service give no point (the share of requests an incident breaks
  is not in telemetry). The twin's own part is Poisson:
  ``z = (obs − exp) / sqrt(max(own, 1))``, ``own`` the expected failures of the service
  itself and its vendors;
- ``churn`` (per segment and day, users per day): the users of ``user_days`` who left
  against the sum of their churn probabilities ``1 − exp(−hazard)``, the hazard of
  :class:`~orgtwin.behaviours.ChurnHazard` at each user's tenure and price with
  experience 0 (bad experience is not in telemetry),
  ``z = (obs − exp) / sqrt(Σp(1 − p))``;
- ``restore`` (per team and incident, hours): each restored deploy incident's time to
  restore (``resolved − detected``, whole hours) against the team's log-normal restore
  law (:class:`~orgtwin.behaviours.IncidentTiming`) at fatigue 0 and expertise 1 (a
  rested, typical responder: telemetry shows neither) and the batch of the service's
  latest failed deploy before it (with ``deploys``), one point at its resolve time; ``z``
  the law's mean normal score over the hour it was rounded to, scaled to sd 1
  (:func:`_hour_bin_z`), so a slower restore is positive. Open incidents give no point;
- ``vendor_outages`` (per vendor and day, outages per day): outages started
  (``vendor_status``) against the vendor's Poisson rate over the hours of the day the
  telemetry covers, ``z = (obs − exp) / sqrt(exp)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy import special

from orgtwin.behaviours import (
    ChangeFailure,
    ChurnHazard,
    IncidentTiming,
    LatencyCurve,
    VendorOutages,
)
from orgtwin.behaviours.teams import MAX_INCIDENT_HOURS
from orgtwin.learn import own_latency, weekly_profile
from orgtwin.learn.incidents import causing_batch
from orgtwin.scenario import Scenario
from orgtwin.telemetry.derived import client_latency_p95
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_MONTH, HOURS_PER_WEEK

Window = tuple[datetime, datetime]
"""A time window ``(start, end)``: ``start <= time < end``."""

COLUMNS = {
    "time": pl.Datetime("us"),
    "behaviour": pl.String,
    "entity": pl.String,
    "observed": pl.Float64,
    "expected": pl.Float64,
    "residual": pl.Float64,
    "z": pl.Float64,
    "unit": pl.String,
}
"""The columns of :func:`residuals` and their types."""

LATENCY_LOG_SD_FLOOR = 0.01
"""The least sd of the latency log residual (1%): a twin whose latency is exactly right
in the reference window (a simulated production) would otherwise turn rounding into
alarms."""
MAD_TO_SD = 1.4826
"""Median absolute deviation to standard deviation, for normal data."""
_MAX_ERROR = 1.0 - 1e-12
"""The highest error share the simulator compounds along calls (a vendor that is down)."""
_LOG_MAX_HOURS = math.log(MAX_INCIDENT_HOURS)
DEMAND_WARMUP_HOURS = 2 * HOURS_PER_WEEK
"""Hours the demand filter runs before its points count (two weeks: the level, the
shape's corrections and the spread settle)."""
DEMAND_LEVEL_GAIN = 1.0 / (2 * HOURS_PER_DAY)
"""How far each hour moves the demand level towards what it saw (two days' memory): a
step in the level shows for a day or two, long enough for the detector, and the level
keeps up with a population growing by a quarter a week (its lag is two days' growth)."""
DEMAND_SHAPE_GAIN = 0.5
"""How far each hour moves its own hour of the week's correction of the profile (about
two weeks' memory): a lasting change of shape shows for a week or two, then is the
norm; with the level, the corrections also take up steady growth or decline."""
DEMAND_SPREAD_GAIN = 1.0 / HOURS_PER_WEEK
"""How far each hour moves the demand residual's spread (a week's memory)."""
DEMAND_CLIP = 2.0
"""The largest residual (in sd, on the square-root scale) an hour feeds the level and
the shape: an anomaly (a holiday, a storm) barely moves them, so it shows whole and
the weeks after it are judged against a level and a shape it did not drag."""
DEMAND_SPREAD_CLIP = 2.5
"""The largest standardised residual (in sd of the current spread) an hour feeds the
spread."""


@dataclass(frozen=True)
class Stream:
    """One behaviour's residual stream.

    Attributes:
        behaviour: the behaviour (the ``behaviour`` column).
        tables: the telemetry tables it needs (all of them).
        run: the points from the scenario, the tables and the reference window: a frame
            with ``time``, ``entity``, ``observed``, ``expected`` and ``z``.
        unit: the unit of ``observed``, ``expected`` and ``residual``.
        words: what it compares, in plain words.
    """

    behaviour: str
    tables: tuple[str, ...]
    run: Callable[[Scenario, Mapping[str, pl.DataFrame], Window | None], pl.DataFrame]
    unit: str
    words: str
    optional: tuple[str, ...] = ()
    """Tables it uses where they are there."""


# --------------------------------------------------------------------------- latency


def _latency(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Own median latency against the curve at the measured utilisation, per service and
    row; the log residual over its sd in the reference window (or its robust sd).

    Where the table has no median at all (``latency_p50_ms`` null throughout, as in
    metrics that keep only tail percentiles), the own 95th percentile is compared with
    the curve's (:meth:`LatencyCurve.predict_p95
    <orgtwin.behaviours.LatencyCurve.predict_p95>`) instead.
    """
    requests = tables["requests"]
    tail = "latency_p95_ms" in requests.columns and (
        "latency_p50_ms" not in requests.columns
        or requests["latency_p50_ms"].null_count() == requests.height
    )
    column = "latency_p95_ms" if tail else "latency_p50_ms"
    own = own_latency(requests, scenario).filter(
        pl.col("cpu").is_finite() & pl.col(column).is_finite() & (pl.col(column) > 0)
    )
    frames = []
    for (service,), rows in own.sort("time").group_by("service", maintain_order=True):
        curve = LatencyCurve.from_spec(scenario.services[service].latency)
        observed = rows[column].to_numpy()
        predict = curve.predict_p95 if tail else curve.predict
        expected = np.asarray(predict(rows["cpu"].to_numpy()), dtype=float)
        log_residual = np.log(observed) - np.log(expected)
        scale = _log_scale(log_residual, _inside(rows["time"], reference))
        frames.append(
            pl.DataFrame(
                {
                    "time": rows["time"],
                    "entity": service,
                    "observed": observed,
                    "expected": expected,
                    "z": log_residual / scale,
                }
            )
        )
    return _stack(frames)


def _log_scale(log_residual: np.ndarray, in_reference: np.ndarray | None) -> float:
    """The sd of the log residual in the reference window (2 points or more), else its
    robust sd over the whole stream; at least :data:`LATENCY_LOG_SD_FLOOR`. Points that
    are not finite are left out."""
    finite = np.isfinite(log_residual)
    if in_reference is not None and (in_reference & finite).sum() >= 2:
        scale = float(np.std(log_residual[in_reference & finite], ddof=1))
    elif finite.any():
        centre = np.median(log_residual[finite])
        scale = MAD_TO_SD * float(np.median(np.abs(log_residual[finite] - centre)))
    else:
        scale = 0.0
    return max(scale, LATENCY_LOG_SD_FLOOR)


def _log_ratio_points(
    entity: str,
    times: pl.Series,
    observed: np.ndarray,
    planned: np.ndarray,
    reference: Window | None,
) -> pl.DataFrame | None:
    """Points of a ratio stream whose level is a planning figure of the scenario.

    The log residual ``log(observed / planned)`` is centred on its median in the
    reference window (the level production had there, which the twin's capacity or
    calls per request may not state: no learner sets them from per-service metrics) and
    scaled by :func:`_log_scale`; ``expected`` is ``planned`` at that level. Without a
    reference window the level is the scenario's (centre 0). Rows where either figure is
    not positive give no point; None when none is left.
    """
    keep = np.isfinite(observed) & np.isfinite(planned) & (observed > 0) & (planned > 0)
    if not keep.any():
        return None
    times, observed, planned = times.filter(pl.Series(keep)), observed[keep], planned[keep]
    log_residual = np.log(observed) - np.log(planned)
    inside = _inside(times, reference)
    centre = 0.0
    if inside is not None and inside.sum() >= 2:
        centre = float(np.median(log_residual[inside]))
    scale = _log_scale(log_residual - centre, inside)
    return pl.DataFrame(
        {
            "time": times,
            "entity": entity,
            "observed": observed,
            "expected": planned * np.exp(centre),
            "z": (log_residual - centre) / scale,
        }
    )


def _interval_seconds(times: pl.Series) -> float:
    """Seconds a row of a per-interval table covers: the median spacing of its distinct
    times (hourly telemetry: 3600; per-minute metrics: 60); an hour with one time."""
    step = times.unique().sort().diff().drop_nulls().median()
    if isinstance(step, timedelta) and step.total_seconds() > 0:
        return step.total_seconds()
    return 3600.0


def _wide(requests: pl.DataFrame, column: str, names: list[str]) -> pl.DataFrame:
    """``column`` of ``requests`` with one column per service of ``names`` (those there),
    one row per time at which all of them have it, sorted by time."""
    there = set(requests["service"].unique().to_list())
    present = [n for n in names if n in there]
    rows = requests.filter(pl.col("service").is_in(present) & pl.col(column).is_not_null())
    wide = rows.pivot(on="service", index="time", values=column, aggregate_function="mean")
    return wide.select("time", *[n for n in present if n in wide.columns]).drop_nulls().sort("time")


# --------------------------------------------------------------------------- utilisation


def _utilisation(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Measured utilisation (``cpu``) against the twin's at the measured load, per service
    and row: ``requests / (seconds · replicas · capacity_rps_per_replica)``, the rows'
    replicas where measured (else the scenario's), at the level of the reference window
    (:func:`_log_ratio_points`). CPU taken by something other than the requests (a noisy
    neighbour, a runaway loop) shows here, while the latency curve, which reads the
    utilisation as given, would take the slower responses for the load's."""
    requests = tables["requests"].filter(
        pl.col("service").is_in(list(scenario.services))
        & pl.col("cpu").is_not_null()
        & (pl.col("requests") > 0)
    )
    frames = []
    for (service,), rows in requests.sort("time").group_by("service", maintain_order=True):
        spec = scenario.services[service]
        seconds = _interval_seconds(rows["time"])
        replicas = (
            rows["replicas"].fill_null(spec.replicas).to_numpy().astype(float)
            if "replicas" in rows.columns
            else np.full(rows.height, float(spec.replicas))
        )
        planned = rows["requests"].to_numpy() / (
            seconds * np.maximum(replicas, 1e-9) * spec.capacity_rps_per_replica
        )
        observed = rows["cpu"].to_numpy().astype(float)
        frames.append(_log_ratio_points(service, rows["time"], observed, planned, reference))
    return _stack(frames)


# --------------------------------------------------------------------------- calls


def _calls(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Requests each called service gets against its callers' measured requests times
    the scenario's calls per request, ``Σ_c F_c · requests_c``, per row, at the level of
    the reference window (:func:`_log_ratio_points`). A service that is also a feature's
    entry (its load is partly the users') gives no point, nor a row where one of its
    callers was not measured. A caller that stops calling (an early error return, a
    broken client) shows as its callees' load falling while its own holds."""
    names = list(scenario.services)
    entries = {feature.entry for feature in scenario.features.values()}
    callers = {
        callee: {name: spec.calls[callee] for name, spec in scenario.services.items()
                 if callee in spec.calls}
        for callee in names
    }  # fmt: skip
    wide = _wide(tables["requests"], "requests", names)
    frames = []
    for callee, by in callers.items():
        if not by or callee in entries or not {callee, *by} <= set(wide.columns):
            continue
        planned = sum(per * wide[caller].to_numpy() for caller, per in by.items())
        observed = wide[callee].to_numpy().astype(float)
        frames.append(_log_ratio_points(callee, wide["time"], observed, planned, reference))
    return _stack(frames)


# --------------------------------------------------------------------------- client latency


def _client_latency(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Each calling service's client latency (``client_latency_p95_ms``: how long it waits
    on its calls) against what its callees' own measured latency implies, per row: the
    95th percentile of the mix of its calls
    (:func:`~orgtwin.telemetry.derived.client_latency_p95`: each callee's latency
    lognormal with its measured 95th percentile and its 95th percentile over its median,
    measured where the table has a median, else the twin's curve's; mixed in the
    scenario's calls per request), at the level of the reference window
    (:func:`_log_ratio_points`: the network's share is learned there). A callee that is
    slow on its own moves both sides; a slow network between them (a delay on a callee's
    pod, a congested link) moves the caller's wait alone. A table without the column, a
    service that calls no service, and a row where one of its callees was not measured
    give no point."""
    requests = tables["requests"]
    if "client_latency_p95_ms" not in requests.columns:
        return _stack([])
    names = list(scenario.services)
    median = "latency_p50_ms" in requests.columns and (
        requests["latency_p50_ms"].null_count() < requests.height
    )
    rows = requests.filter(pl.col("service").is_in(names)).select(
        "time",
        "service",
        client=pl.col("client_latency_p95_ms"),
        server=pl.col("latency_p95_ms"),
        ratio=pl.col("latency_p95_ms") / pl.col("latency_p50_ms") if median else pl.lit(None),
    )
    wide = {
        column: rows.pivot(on="service", index="time", values=column, aggregate_function="mean")
        for column in ("client", "server", "ratio")
    }
    times = wide["client"].sort("time")["time"]
    frame = pl.DataFrame({"time": times})
    aligned = {  # each figure at the client's times, once
        column: frame.join(table, on="time", how="left", maintain_order="left")
        for column, table in wide.items()
    }
    frames = []
    for caller, spec in scenario.services.items():
        calls = {b: per for b, per in spec.calls.items() if b in names and per > 0}
        if not calls or caller not in wide["client"].columns:
            continue
        if set(calls) - set(wide["server"].columns):
            continue
        observed = _column(aligned["client"], caller)
        server = np.column_stack([_column(aligned["server"], b) for b in calls])
        curve = [LatencyCurve.from_spec(scenario.services[b].latency).p95_over_p50 for b in calls]
        ratio = np.column_stack([_column(aligned["ratio"], b) for b in calls])
        ratio = np.where(np.isfinite(ratio) & (ratio > 0), ratio, np.array(curve, dtype=float))
        share = np.array(list(calls.values())) / sum(calls.values())
        planned = client_latency_p95(server, share, ratio)
        frames.append(_log_ratio_points(caller, times, observed, planned, reference))
    return _stack(frames)


def _column(aligned: pl.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` of a frame aligned to the stream's times, as floats (NaN where
    missing; all NaN where the frame has no such column)."""
    if name not in aligned.columns:
        return np.full(aligned.height, np.nan)
    return aligned[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _inside(times: pl.Series, window: Window | None) -> np.ndarray | None:
    """Whether each time falls in ``window`` (None without one)."""
    if window is None:
        return None
    start, end = window
    return ((times >= start) & (times < end)).to_numpy()


# --------------------------------------------------------------------------- demand


def _demand(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Arrivals per segment and hour against the trailing level times the profile.

    Arrivals whose ``key`` names segments of the scenario are one series per segment;
    without such keys, all arrivals are one series (entity ``all``) whose profile mixes
    the segments' by their sessions a day, each in its own local time.
    """
    arrivals = tables["arrivals"]
    keys = set(arrivals["key"].drop_nulls().unique().to_list()) if "key" in arrivals else set()
    hours = np.arange(HOURS_PER_WEEK)
    series: list[tuple[str, pl.DataFrame, np.ndarray, np.ndarray]] = []
    named = [name for name in scenario.segments if name in keys]
    for name in named:
        segment = scenario.segments[name]
        rates = np.roll(weekly_profile(segment.demand_profile), -segment.utc_offset_hours)
        rows = arrivals.filter(pl.col("key") == name)
        burst = np.full(HOURS_PER_WEEK, segment.demand_profile.burst_cv)
        series.append((name, rows, rates, burst))
    if not named and scenario.segments:
        mix = np.zeros(HOURS_PER_WEEK)
        spread = np.zeros(HOURS_PER_WEEK)
        for segment in scenario.segments.values():
            weight = segment.n_users * segment.sessions_per_user_day
            part = (
                weight
                * weekly_profile(segment.demand_profile)[
                    (hours + segment.utc_offset_hours) % HOURS_PER_WEEK
                ]
            )
            mix += part
            spread += (segment.demand_profile.burst_cv * part) ** 2
        if mix.sum() > 0:
            burst = np.sqrt(spread) / np.maximum(mix, 1e-300)
            series.append(("all", arrivals, mix / mix.mean(), burst))
    return _stack([_demand_points(name, rows, rates, burst) for name, rows, rates, burst in series])


def _demand_points(
    entity: str, arrivals: pl.DataFrame, rates: np.ndarray, burst: np.ndarray
) -> pl.DataFrame | None:
    """The demand points of one series (``rates``: the relative rate at each UTC hour of
    the week, mean 1; ``burst``: the burst CV at each), from the hours after the warm-up
    (:data:`DEMAND_WARMUP_HOURS`)."""
    counted = (
        arrivals.group_by(pl.col("time").dt.truncate("1h"))
        .agg(pl.col("count").sum().cast(pl.Float64))
        .sort("time")
    )
    if counted.height == 0:
        return None
    grid = pl.datetime_range(
        counted["time"].min(), counted["time"].max(), "1h", eager=True, time_unit="us"
    )
    if grid.len() <= DEMAND_WARMUP_HOURS:
        return None
    hourly = pl.DataFrame({"time": grid}).join(counted, on="time", how="left").fill_null(0.0)
    times = hourly["time"]
    counts = hourly["count"].to_numpy()
    weekday = times.dt.weekday().cast(pl.Int64).to_numpy() - 1  # Monday: 0
    how = (weekday * HOURS_PER_DAY + times.dt.hour().cast(pl.Int64).to_numpy()) % HOURS_PER_WEEK
    expected, sd = _demand_filter(counts, how, rates, burst)
    t = np.arange(DEMAND_WARMUP_HOURS, counts.size)
    return pl.DataFrame(
        {
            "time": times.gather(t),
            "entity": entity,
            "observed": counts[t],
            "expected": expected[t],
            "z": (counts[t] - expected[t]) / sd[t],
        }
    )


def _demand_filter(
    counts: np.ndarray, how: np.ndarray, rates: np.ndarray, burst: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each hour's expected count and its sd, from the hours before it only.

    ``expected = level × rate[h] × correction[h]`` (``h`` the hour of the week). Each
    hour's count is first clipped to :data:`DEMAND_CLIP` sd of the expected one, on the
    square-root scale (where a count's noise is about symmetric, so clipping does not
    bias the level of small counts): ``obs*``. The level is an exponential smoothing
    of ``obs* / rate[h]`` (gain :data:`DEMAND_LEVEL_GAIN`); the correction of the hour
    of the week, one of ``obs*`` over ``level × rate[h]``, from one week to the next
    (gain :data:`DEMAND_SHAPE_GAIN`). The corrections start at 1 (the twin's profile)
    and follow a lasting change of shape; together they also take up the level's lag
    behind steady growth or decline. Both are means of ratios, not of logs (a log
    would bias a small count's expected value by half its log variance), and only the
    corrections divide by an estimate, the slow level: the expected count is about
    unbiased however small the counts.

    The model's variance is ``v = exp + burst_cv²·exp²``. The spread ``φ²`` is the mean
    square of ``(obs − exp) / sqrt(v)`` (each clipped at :data:`DEMAND_SPREAD_CLIP`
    times the current spread, made consistent for normal residuals), smoothed by
    :data:`DEMAND_SPREAD_GAIN`; the sd is ``sqrt(v · max(φ², floor))``, the floor
    ``1 + a/(2 − a) + g/(2 − g)`` (``a``, ``g`` the gains) what the smoothing's own
    error adds to the model's variance. A twin that mirrors production gives z of sd
    about 1; real demand that wanders more than its twin says is judged by the spread
    it shows.
    """
    n = counts.size
    rate = np.maximum(rates, 1e-12)
    cv2 = burst.astype(float) ** 2
    a, g = DEMAND_LEVEL_GAIN, DEMAND_SHAPE_GAIN
    floor = 1.0 + a / (2.0 - a) + g / (2.0 - g)
    first = min(n, HOURS_PER_WEEK)
    level = max(float(np.sum(counts[:first])), 0.5) / float(np.sum(rate[how[:first]]))
    correction = np.ones(HOURS_PER_WEEK)  # per hour of the week
    spread = floor
    c, c_spread = DEMAND_CLIP, DEMAND_SPREAD_CLIP
    consistency = _clipped_square_mean(c_spread)
    expected, sd = [0.0] * n, [0.0] * n
    # A recursion, hour by hour: on Python floats (the same IEEE doubles as numpy's,
    # without the cost of indexing arrays one scalar at a time).
    rate_of, cv2_of, corrections = rate.tolist(), cv2.tolist(), correction.tolist()
    for i, (h, count) in enumerate(zip(how.tolist(), counts.astype(float).tolist(), strict=True)):
        mu = level * rate_of[h] * corrections[h]
        model = mu + cv2_of[h] * mu * mu
        scale = math.sqrt(model * max(spread, floor))
        expected[i], sd[i] = mu, scale
        root, half = math.sqrt(mu), c * scale / (2.0 * math.sqrt(mu))
        clipped = min(max(math.sqrt(count), root - half), root + half) ** 2
        level += a * (clipped / rate_of[h] - level)
        corrections[h] += g * (clipped / (level * rate_of[h]) - corrections[h])
        residual = count - mu
        spread += DEMAND_SPREAD_GAIN * (
            min(residual * residual / model, c_spread**2 * max(spread, floor)) / consistency
            - spread
        )
    return np.array(expected), np.array(sd)


def _clipped_square_mean(c: float) -> float:
    """``E[min(Z², c²)]`` for a standard normal ``Z``."""
    inside = math.erf(c / math.sqrt(2.0))
    density = math.exp(-c * c / 2.0) / math.sqrt(2.0 * math.pi)
    return inside - 2.0 * c * density + c * c * (1.0 - inside)


# --------------------------------------------------------------------------- change failure


def _change_failure(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Failed deploys per team and day against the sum of the law's probabilities of the
    day's batch sizes (fatigue taken as 0)."""
    deploys = tables["deploys"].filter(
        pl.col("team").is_in(list(scenario.teams)) & pl.col("failed").is_not_null()
    )
    frames = []
    for (team,), rows in deploys.group_by("team", maintain_order=True):
        law = ChangeFailure.from_spec(scenario.teams[team].change_failure)
        p = np.asarray(law.predict_proba(rows["batch_size"].fill_null(1).to_numpy(), 0.0))
        days = pl.DataFrame({"time": rows["time"].dt.truncate("1d"), "y": rows["failed"], "p": p})
        frames.append(_daily_bernoulli(team, days))
    return _stack(frames)


def _daily_bernoulli(entity: str, trials: pl.DataFrame) -> pl.DataFrame:
    """Per day, the successes of independent trials against the sum of their
    probabilities: ``z = (Σy − Σp) / sqrt(Σp(1 − p))`` (days whose variance is 0 give no
    point).

    Args:
        entity: the entity the trials belong to.
        trials: ``time`` (the day), ``y`` (bool: the outcome) and ``p`` (its probability).

    Returns:
        ``time``, ``entity``, ``observed``, ``expected`` and ``z`` per day.
    """
    ordered = trials.sort("time", maintain_order=True)  # each day's trials in their order
    if ordered.height == 0:
        return _stack([])
    times = ordered["time"]
    starts = np.flatnonzero(np.r_[True, (times[1:] != times[:-1]).to_numpy()])
    # Sums in a fixed order (a hashed group-by adds floats in whatever order its threads
    # take them, which moves the last bits from one run to the next).
    y = ordered["y"].cast(pl.Float64).to_numpy()
    p = ordered["p"].to_numpy().astype(float)
    observed = np.add.reduceat(y, starts)
    expected = np.add.reduceat(p, starts)
    variance = np.add.reduceat(p * (1.0 - p), starts)
    keep = variance > 0
    return pl.DataFrame(
        {
            "time": times.gather(starts[keep]),
            "entity": entity,
            "observed": observed[keep],
            "expected": expected[keep],
            "z": (observed[keep] - expected[keep]) / np.sqrt(variance[keep]),
        }
    )


# --------------------------------------------------------------------------- churn


def _churn(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Users who left per segment and day against the sum of the active users' churn
    probabilities (experience 0, tenure and price from ``user_days``)."""
    user_days = tables["user_days"].filter(pl.col("segment").is_in(list(scenario.segments)))
    frames = []
    for (name,), rows in user_days.group_by("segment", maintain_order=True):
        segment = scenario.segments[name]
        reference_price = segment.churn.reference_price_usd_month
        hazard = ChurnHazard.from_spec(
            segment.churn,
            reference_price_usd_month=(
                segment.price_usd_month if reference_price is None else reference_price
            ),
        )
        tenure = rows["tenure_days"].fill_null(0.0).to_numpy().astype(np.float32)
        prices = rows["price"].fill_null(segment.price_usd_month).to_numpy()
        h = np.zeros(rows.height)
        for price in np.unique(prices):
            at = prices == price
            zero = np.zeros(int(at.sum()), dtype=np.float32)
            h[at] = hazard.predict(zero, tenure[at], float(price))
        p = -np.expm1(-h)
        days = pl.DataFrame(
            {"time": rows["day"].cast(pl.Datetime("us")), "y": rows["churned"], "p": p}
        )
        frames.append(_daily_bernoulli(name, days))
    return _stack(frames)


# --------------------------------------------------------------------------- errors


def _errors(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Failed requests per service and hour against the twin's, given the load, the
    callees' measured error rates and the vendors' outages.

    ``1 − e = (1 − base)(1 − overload(cpu)) · Π_v (1 − e_v)^G · Π_b (1 − e_b)^F`` with
    ``e_b`` each callee's measured rate and ``e_v`` a vendor's: 1 while down (the
    ``vendor_status`` table), else its error rate and the excess over its rate limit at
    the calls the measured requests make. Hours with an incident open on the service
    (other than a vendor's or an overload's, which add no error of their own) give no
    point: the share of requests an incident breaks is not in telemetry.
    ``z = (obs − exp) / sqrt(max(exp_own, 1))``, ``exp_own`` the failures of the
    service's own and its vendors' part (Poisson), at least one failure's worth.
    """
    names = list(scenario.services)
    requests = tables["requests"].filter(
        pl.col("service").is_in(names)
        & pl.col("errors").is_not_null()
        & pl.col("cpu").is_not_null()
        & (pl.col("requests") > 0)
    )
    present = [n for n in names if n in set(requests["service"].unique().to_list())]
    usable = [n for n in present if set(scenario.services[n].calls) <= set(present)]
    if not usable:
        return _stack([])
    wide = {
        column: requests.pivot(on="service", index="time", values=column)
        .select("time", *present).drop_nulls().sort("time")
        for column in ("requests", "errors", "cpu")
    }  # fmt: skip
    times = wide["requests"]["time"]
    seconds = _interval_seconds(times)  # per row: 3600 for hourly telemetry
    for column in ("errors", "cpu"):
        wide[column] = pl.DataFrame({"time": times}).join(wide[column], on="time", how="left")
    count = wide["requests"].select(present).to_numpy()
    failed = wide["errors"].select(present).to_numpy()
    cpu = wide["cpu"].select(present).to_numpy()
    rate = np.clip(failed / count, 0.0, 1.0)
    vendors = list(scenario.vendors)
    vendor_ok = np.ones((times.len(), len(vendors)))
    calls = np.zeros((times.len(), len(vendors)))
    for i, name in enumerate(present):
        for vendor, per_request in scenario.services[name].vendors.items():
            calls[:, vendors.index(vendor)] += count[:, i] * per_request / seconds
    status = tables.get("vendor_status")
    for v, (vendor, spec) in enumerate(scenario.vendors.items()):
        limit = np.inf if spec.rate_limit_rps is None else spec.rate_limit_rps
        limited = np.where(calls[:, v] > limit, 1.0 - limit / np.maximum(calls[:, v], 1e-12), 0.0)
        vendor_ok[:, v] = (1.0 - spec.error_rate) * (1.0 - limited)
        if status is not None:
            for start, end in (
                status.filter(pl.col("vendor") == vendor)
                .select("outage_start", "outage_end")
                .iter_rows()
            ):
                down = (times >= start).to_numpy()
                if end is not None:
                    down &= (times < end).to_numpy()
                vendor_ok[down, v] = 0.0
    incidents = tables.get("incidents")
    frames = []
    for name in usable:
        i = present.index(name)
        spec = scenario.services[name]
        own_ok = (1.0 - spec.base_error_rate) * (
            1.0 - LatencyCurve.overload_error(np.nan_to_num(cpu[:, i]))
        )
        for vendor, per_request in spec.vendors.items():
            # as the simulator compounds it: a vendor that is down fails all but 1e-12
            vendor_part = np.maximum(vendor_ok[:, vendors.index(vendor)], 1.0 - _MAX_ERROR)
            own_ok = own_ok * vendor_part**per_request
        ok = own_ok.copy()
        for callee, per_call in spec.calls.items():
            ok = ok * (1.0 - rate[:, present.index(callee)]) ** per_call
        expected = count[:, i] * (1.0 - ok)
        variance = np.maximum(count[:, i] * (1.0 - own_ok), 1.0)
        keep = np.isfinite(cpu[:, i]) & np.isfinite(failed[:, i])
        if incidents is not None:
            keep &= ~_incident_hours(incidents, name, times)
        frames.append(
            pl.DataFrame(
                {
                    "time": times.filter(pl.Series(keep)),
                    "entity": name,
                    "observed": failed[keep, i],
                    "expected": expected[keep],
                    "z": (failed[keep, i] - expected[keep]) / np.sqrt(variance[keep]),
                }
            )
        )
    return _stack(frames)


def _incident_hours(incidents: pl.DataFrame, service: str, times: pl.Series) -> np.ndarray:
    """Whether an incident that may break requests is open on ``service`` at each time:
    from its start to the hour after its resolution (to the end while still open)."""
    out = np.zeros(times.len(), dtype=bool)
    rows = incidents.filter(
        (pl.col("service") == service) & ~pl.col("cause").is_in(["vendor", "capacity"])
    )
    for start, end in rows.select("started", "resolved").iter_rows():
        since = (times >= start).to_numpy()
        if end is not None:
            since &= (times <= end + timedelta(hours=1)).to_numpy()
        out |= since
    return out


# --------------------------------------------------------------------------- restore


def _restore(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Each restored deploy incident's restore time (``resolved − detected``, whole
    hours) against the team's restore-time law, one point at its resolve time.

    The law (:class:`~orgtwin.behaviours.IncidentTiming`) is log-normal around
    :meth:`restore_median <orgtwin.behaviours.IncidentTiming.restore_median>` at fatigue 0
    and expertise 1 (a rested, typical responder: telemetry shows neither) and the batch
    of the latest failed deploy of the service before the incident (with the ``deploys``
    table; else one change), as the learner fits it. Only deploy incidents are restored
    by hand (vendor and capacity incidents end when their cause does, drills take their
    set hours); incidents still open give no point. ``z`` is :func:`_hour_bin_z`: a
    slower restore is a positive ``z``.
    """
    incidents = tables["incidents"].filter(
        pl.col("team").is_in(list(scenario.teams))
        & (pl.col("cause") == "deploy")
        & pl.col("detected").is_not_null()
        & pl.col("resolved").is_not_null()
    )
    incidents = causing_batch(incidents, tables.get("deploys"))
    frames = []
    for (team,), rows in incidents.sort("resolved").group_by("team", maintain_order=True):
        law = IncidentTiming.from_spec(scenario.teams[team].incidents)
        hours = (rows["resolved"] - rows["detected"]).dt.total_seconds().to_numpy() / 3600.0
        median = np.array(
            [law.restore_median(0.0, 1.0, b) for b in rows["batch_size"].to_list()]
        )  # fatigue 0, expertise 1: what the learner's restore median stands for
        frames.append(
            pl.DataFrame(
                {
                    "time": rows["resolved"],
                    "entity": team,
                    "observed": np.maximum(np.ceil(hours), 1.0),
                    "expected": median,
                    "z": _hour_bin_z(hours, np.log(median), law.restore_sigma),
                }
            )
        )
    return _stack(frames)


def _hour_bin_z(hours: np.ndarray, log_median: np.ndarray, sigma: float) -> np.ndarray:
    """Standard scores of whole-hour durations under a log-normal law.

    The simulator rounds a restore time up to whole hours (at least one), so a duration
    of ``d`` hours says the latent one lay in ``(d − 1, d]`` (``(0, 1]`` for 1): its
    score is the mean of the law's standard normal over that bin, ``E[Z | bin]``, divided
    by the sd of that mean over all bins, ``sqrt(Σ p_b E[Z | b]²)``, so that ``z`` has
    mean 0 and sd 1 exactly under the law (a mid-bin probability transform would be
    narrower than N(0, 1) where the bins are coarse against the spread). Bins beyond
    :data:`~orgtwin.behaviours.teams.MAX_INCIDENT_HOURS` (or 8 sd) are one.

    Args:
        hours: the durations, hours.
        log_median: the law's log median per duration.
        sigma: the law's log sd.

    Returns:
        ``z`` per duration (NaN where the law puts all its weight in one bin).
    """
    sigma = max(float(sigma), 1e-3)
    whole = np.maximum(np.ceil(hours), 1.0)
    z = np.full(whole.shape, np.nan)
    for mu in np.unique(log_median):
        at = log_median == mu
        last = int(
            min(math.ceil(math.exp(min(mu + 8.0 * sigma, _LOG_MAX_HOURS))), MAX_INCIDENT_HOURS)
        )
        edges = np.append(np.arange(last + 1, dtype=float), np.inf)
        with np.errstate(divide="ignore"):
            a = (np.log(edges[:-1]) - mu) / sigma
            b = (np.log(edges[1:]) - mu) / sigma
        upper = a > 0  # the far side of each bin's tail, for precision
        p = np.where(upper, special.ndtr(-a) - special.ndtr(-b), special.ndtr(b) - special.ndtr(a))
        density = np.exp(-0.5 * np.square(np.stack([a, b]))) / math.sqrt(2.0 * math.pi)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(p > 1e-300, (density[0] - density[1]) / p, np.where(upper, a, b))
        scale = math.sqrt(float(np.sum(p * np.square(np.nan_to_num(mean)))))
        if scale > 1e-12:
            z[at] = mean[np.minimum(whole[at], last + 1).astype(int) - 1] / scale
    return z


# --------------------------------------------------------------------------- vendor outages


def _vendor_outages(
    scenario: Scenario, tables: Mapping[str, pl.DataFrame], reference: Window | None
) -> pl.DataFrame:
    """Outages started per vendor and day against the vendor's outage rate (Poisson):
    ``expected = rate_per_month × hours of the day watched / HOURS_PER_MONTH``,
    ``z = (obs − exp) / sqrt(exp)``.

    The days are those the ``requests`` table covers (its first row to the end of its
    last); without it, the first outage start to the last outage end (which overstates
    the rate a little, as the learner's fallback does). The hours a vendor is down count
    as watched (at an outage a month or so, they barely change the expected count).
    """
    status = tables["vendor_status"].filter(
        pl.col("vendor").is_in(list(scenario.vendors)) & pl.col("outage_start").is_not_null()
    )
    span = _watched_span(tables.get("requests"), status)
    if span is None:
        return _stack([])
    start, end = span
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    days = np.arange(np.datetime64(first, "us"), np.datetime64(end, "us"), np.timedelta64(1, "D"))
    lo = np.maximum(days, np.datetime64(start, "us"))
    hi = np.minimum(days + np.timedelta64(1, "D"), np.datetime64(end, "us"))
    watched = (hi - lo) / np.timedelta64(1, "h")
    grid = pl.DataFrame({"time": pl.Series(days).cast(pl.Datetime("us")), "hours": watched})
    counts = (
        status.filter(pl.col("outage_start").is_between(start, end, closed="left"))
        .group_by("vendor", time=pl.col("outage_start").dt.truncate("1d"))
        .agg(observed=pl.len().cast(pl.Float64))
    )
    frames = []
    for vendor, spec in scenario.vendors.items():
        rate = VendorOutages.from_spec(spec).rate_per_month / HOURS_PER_MONTH  # per hour
        rows = grid.join(counts.filter(pl.col("vendor") == vendor).drop("vendor"), on="time",
                         how="left")  # fmt: skip
        frames.append(
            rows.filter((pl.col("hours") > 0) & (rate > 0)).select(
                "time",
                entity=pl.lit(vendor),
                observed=pl.col("observed").fill_null(0.0),
                expected=pl.col("hours") * rate,
                z=(pl.col("observed").fill_null(0.0) - pl.col("hours") * rate)
                / (pl.col("hours") * rate).sqrt(),
            )
        )
    return _stack(frames)


def _watched_span(requests: pl.DataFrame | None, status: pl.DataFrame) -> Window | None:
    """The window the telemetry covers: the ``requests`` table's first time to the end
    of its last row; without it (or rows), the first outage start to the last outage end
    (or start); None without any."""
    if requests is not None and requests.height:
        times = requests["time"]
        step = timedelta(seconds=_interval_seconds(times))
        return times.min(), times.max() + step  # type: ignore[operator]
    if not status.height:
        return None
    ends = pl.concat([status["outage_start"], status["outage_end"].drop_nulls()])
    return status["outage_start"].min(), ends.max() + timedelta(microseconds=1)  # type: ignore[operator]


# --------------------------------------------------------------------------- the streams

STREAMS: tuple[Stream, ...] = (
    Stream("latency", ("requests",), _latency, "ms",
           "own median latency against the latency curve at the measured utilisation"),
    Stream("utilisation", ("requests",), _utilisation, "share of capacity",
           "measured utilisation against the twin's at the measured load"),
    Stream("calls", ("requests",), _calls, "requests",
           "requests a service gets against its callers' requests times the calls per request"),
    Stream("client_latency", ("requests",), _client_latency, "ms",
           "time a service waits on its calls against its callees' own latency"),
    Stream("demand", ("arrivals",), _demand, "sessions per hour",
           "arrivals against the recent level times the hour-of-week profile"),
    Stream("change_failure", ("deploys",), _change_failure, "failed deploys per day",
           "failed deploys against the change-failure law at the day's batch sizes"),
    Stream("errors", ("requests",), _errors, "failed requests per hour",
           "failed requests against the twin's at the load, the callees' errors and vendors",
           ("vendor_status", "incidents")),
    Stream("churn", ("user_days",), _churn, "users per day",
           "users who left against the churn hazard of the users active that day"),
    Stream("restore", ("incidents",), _restore, "hours",
           "time to restore a deploy incident against the team's restore-time law",
           ("deploys",)),
    Stream("vendor_outages", ("vendor_status",), _vendor_outages, "outages per day",
           "vendor outages started against the vendor's outage rate", ("requests",)),
)  # fmt: skip
"""Every residual stream, in the order they run."""


def _stack(frames: list[pl.DataFrame | None]) -> pl.DataFrame:
    """The points of one stream's entities as one frame (``time``, ``entity``,
    ``observed``, ``expected``, ``z``)."""
    columns = ("time", "entity", "observed", "expected", "z")
    schema = {name: COLUMNS[name] for name in columns}
    parts = [
        frame.select([pl.col(c).cast(t) for c, t in schema.items()])
        for frame in frames
        if frame is not None and frame.height
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def residuals(
    scenario: Scenario,
    tables: Mapping[str, pl.DataFrame | pl.LazyFrame],
    *,
    reference: Window | None = None,
) -> pl.DataFrame:
    """The standardised residual streams of every behaviour the tables feed.

    Args:
        scenario: the twin (its behaviours' laws and parameters).
        tables: telemetry tables by name, in the schemas of
            :mod:`orgtwin.telemetry.schemas` (``requests``, ``arrivals``, ``deploys``,
            ``user_days``; lazy frames are collected). A stream whose tables are missing
            is skipped.
        reference: ``(start, end)``, a window in which the twin is taken to mirror
            production: the latency stream learns there how far real latency wanders
            around the twin's (without one: a robust sd over the whole stream), and the
            utilisation, calls and client latency streams their level and scale. The
            other streams are standardised by the twin's own randomness and ignore it.

    Returns:
        One row per point, sorted by ``time``, ``behaviour`` and ``entity``, with the
        columns of :data:`COLUMNS`: ``observed`` and ``expected`` in the stream's
        ``unit``, ``residual = observed − expected``, and ``z``, the residual
        standardised (about N(0, 1) while the twin mirrors production; for latency on
        the log scale).
    """
    collected: dict[str, pl.DataFrame] = {}
    frames = []
    for stream in STREAMS:
        if not all(name in tables for name in stream.tables):
            continue
        for name in (*stream.tables, *(t for t in stream.optional if t in tables)):
            if name not in collected:
                table = tables[name]
                collected[name] = table.collect() if isinstance(table, pl.LazyFrame) else table
        points = stream.run(scenario, collected, reference)
        frames.append(
            points.with_columns(
                behaviour=pl.lit(stream.behaviour),
                residual=pl.col("observed") - pl.col("expected"),
                unit=pl.lit(stream.unit),
            ).select(list(COLUMNS))
        )
    if not frames:
        return pl.DataFrame(schema=COLUMNS)
    out = pl.concat(frames).select([pl.col(c).cast(t) for c, t in COLUMNS.items()])
    return out.filter(pl.col("z").is_finite()).sort("time", "behaviour", "entity")


def describe() -> dict[str, tuple[str, str]]:
    """Every stream's unit and plain description, by behaviour.

    Returns:
        behaviour -> ``(unit, words)``.
    """
    return {s.behaviour: (s.unit, s.words) for s in STREAMS}


__all__ = ["COLUMNS", "STREAMS", "Stream", "Window", "describe", "residuals"]
