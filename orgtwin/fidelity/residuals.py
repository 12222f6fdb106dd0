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
  (:func:`orgtwin.learn.own_latency`: measured minus its calls') against
  :meth:`LatencyCurve.predict <orgtwin.behaviours.LatencyCurve.predict>` at the measured
  utilisation (``cpu``). The twin's latency is deterministic given the load, so how far
  real latency wanders is learned: the log residual is divided by its sd in the
  reference window (without one: MAD × 1.4826 over the stream), at least
  :data:`LATENCY_LOG_SD_FLOOR`;
- ``demand`` (per segment and hour, sessions per hour): the arrivals against ``level ×
  profile``, the profile the scenario's (so a change of shape shows), the level the one
  of the two weeks before the hour, extrapolated by their log-linear trend (so steady
  growth or decline of a stable twin raises no alarm, while a step in the level shows
  for about a week: long enough for the detector);
  ``z = (obs − exp) / sqrt(exp + burst_cv²·exp² + exp²·var(log level))``;
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
  ``z = (obs − exp) / sqrt(Σp(1 − p))``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from orgtwin.behaviours import ChangeFailure, ChurnHazard, LatencyCurve
from orgtwin.learn import own_latency, weekly_profile
from orgtwin.scenario import Scenario
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_WEEK

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
DEMAND_WINDOW_HOURS = HOURS_PER_WEEK
"""Hours in each of the two trailing windows the demand level and trend come from (a
whole week each, so the profile weighs every hour of the week once)."""


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
    hour; the log residual over its sd in the reference window (or its robust sd)."""
    own = own_latency(tables["requests"], scenario).filter(
        pl.col("cpu").is_not_null() & (pl.col("latency_p50_ms") > 0)
    )
    frames = []
    for (service,), rows in own.sort("time").group_by("service", maintain_order=True):
        curve = LatencyCurve.from_spec(scenario.services[service].latency)
        observed = rows["latency_p50_ms"].to_numpy()
        expected = np.asarray(curve.predict(rows["cpu"].to_numpy()), dtype=float)
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
    robust sd over the whole stream; at least :data:`LATENCY_LOG_SD_FLOOR`."""
    if in_reference is not None and in_reference.sum() >= 2:
        scale = float(np.std(log_residual[in_reference], ddof=1))
    else:
        centre = np.median(log_residual)
        scale = MAD_TO_SD * float(np.median(np.abs(log_residual - centre)))
    return max(scale, LATENCY_LOG_SD_FLOOR)


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
    the week, mean 1; ``burst``: the burst CV at each)."""
    counted = (
        arrivals.group_by(pl.col("time").dt.truncate("1h"))
        .agg(pl.col("count").sum().cast(pl.Float64))
        .sort("time")
    )
    w = DEMAND_WINDOW_HOURS
    if counted.height == 0:
        return None
    grid = pl.datetime_range(
        counted["time"].min(), counted["time"].max(), "1h", eager=True, time_unit="us"
    )
    if grid.len() <= 2 * w:
        return None
    hourly = pl.DataFrame({"time": grid}).join(counted, on="time", how="left").fill_null(0.0)
    times = hourly["time"]
    counts = hourly["count"].to_numpy()
    weekday = times.dt.weekday().cast(pl.Int64).to_numpy() - 1  # Monday: 0
    how = (weekday * HOURS_PER_DAY + times.dt.hour().cast(pl.Int64).to_numpy()) % HOURS_PER_WEEK
    share, cv = rates[how], burst[how]
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    t = np.arange(2 * w, counts.size)
    last = cumulative[t] - cumulative[t - w]  # the week before the hour
    before = cumulative[t - w] - cumulative[t - 2 * w]  # the week before that
    usable = (last > 0) & (before > 0)
    t, last, before = t[usable], last[usable], before[usable]
    ahead = (w + 1) / (2 * w)  # weeks from the middle of the last week to the hour
    log_level = np.log(last / w) + ahead * np.log(last / before)
    mean_square = float(np.mean(rates**2))
    cv_week = float(np.mean(burst**2))

    def log_variance(total: np.ndarray) -> np.ndarray:
        return (total + cv_week * total**2 * mean_square / w) / total**2

    var_log = (1 + ahead) ** 2 * log_variance(last) + ahead**2 * log_variance(before)
    expected = np.exp(log_level) * share[t]
    variance = expected + (cv[t] ** 2 + var_log) * expected**2
    observed = counts[t]
    return pl.DataFrame(
        {
            "time": times.gather(t),
            "entity": entity,
            "observed": observed,
            "expected": expected,
            "z": (observed - expected) / np.sqrt(variance),
        }
    )


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
    daily = (
        trials.group_by("time")
        .agg(
            observed=pl.col("y").cast(pl.Float64).sum(),
            expected=pl.col("p").sum(),
            variance=(pl.col("p") * (1 - pl.col("p"))).sum(),
        )
        .filter(pl.col("variance") > 0)
    )
    return daily.select(
        "time",
        entity=pl.lit(entity),
        observed="observed",
        expected="expected",
        z=(pl.col("observed") - pl.col("expected")) / pl.col("variance").sqrt(),
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
            calls[:, vendors.index(vendor)] += count[:, i] * per_request / 3600.0
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


# --------------------------------------------------------------------------- the streams

STREAMS: tuple[Stream, ...] = (
    Stream("latency", ("requests",), _latency, "ms",
           "own median latency against the latency curve at the measured utilisation"),
    Stream("demand", ("arrivals",), _demand, "sessions per hour",
           "arrivals against the recent level times the hour-of-week profile"),
    Stream("change_failure", ("deploys",), _change_failure, "failed deploys per day",
           "failed deploys against the change-failure law at the day's batch sizes"),
    Stream("errors", ("requests",), _errors, "failed requests per hour",
           "failed requests against the twin's at the load, the callees' errors and vendors",
           ("vendor_status", "incidents")),
    Stream("churn", ("user_days",), _churn, "users per day",
           "users who left against the churn hazard of the users active that day"),
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
            around the twin's (without one: a robust sd over the whole stream). The
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
