"""Drift watch: follow what production does against what the twin says it should, and
raise an alarm when one behaviour of one entity moved.

:func:`watch` reads telemetry in time order, turns each behaviour and entity into a
stream of standardised residuals (:mod:`orgtwin.fidelity.residuals`: observed against what
the twin predicts given the observed inputs), and runs a two-sided CUSUM on each stream
(:mod:`orgtwin.fidelity.detect`), one alarm per episode of a shift. Thresholds are never
a library's defaults: each stream's
threshold is calibrated by simulation to the false-alarm budget, by default at most one
false alarm per week per behaviour, split across the behaviour's entities. The null
streams are drawn from the stream's own residuals in a reference window (the twin's own
misfit while production was as learned), resampled in blocks to keep their correlation,
or, without a reference window, from the standard normal.

An alarm says which behaviour and entity, since when (the change point), how big in the
behaviour's own units (the mean residual since the change point: "+180 ms"), and its
likely reach: what stands downstream of the entity along the call graph (the services
that call a slow service, the features entering through them, the segments using those).

Example:
    >>> import tempfile
    >>> from orgtwin.runs.synth import synth
    >>> from orgtwin.scenario import load_scenario
    >>> base = load_scenario("scenarios/baseline.yaml", overrides={
    ...     "segments": {s: {"n_users": 200} for s in ("free", "pro_us", "pro_eu", "enterprise")}})
    >>> folder = synth(base, days=14, seed=1, out=tempfile.mkdtemp() + "/telemetry")
    >>> found = watch(base, folder)
    >>> sorted(found.alarms.columns)[:3], found.thresholds.height > 0
    (['behaviour', 'direction', 'entity'], True)
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from orgtwin.errors import TelemetryError
from orgtwin.fidelity import detect
from orgtwin.fidelity.residuals import residuals as residual_streams
from orgtwin.scenario import Scenario, load_scenario
from orgtwin.telemetry.folder import Telemetry, read_telemetry

ALARMS: dict[str, pl.DataType] = {
    "behaviour": pl.String(),
    "entity": pl.String(),
    "since": pl.Datetime("us"),
    "raised": pl.Datetime("us"),
    "direction": pl.String(),
    "shift_sd": pl.Float64(),
    "magnitude": pl.Float64(),
    "unit": pl.String(),
    "reach": pl.String(),
    "words": pl.String(),
}
"""The alarms table: one row per alarm, in the order raised."""
ALARMS_COLUMNS = {
    "behaviour": "The behaviour that drifted (latency, demand, change_failure…)",
    "entity": "The service, segment, team or vendor it drifted for",
    "since": "The change point: the first point of the run of residuals that raised it",
    "raised": "When the alarm was raised (the point where the CUSUM crossed its threshold)",
    "direction": "up or down: the residuals rose above or fell below the twin's prediction",
    "shift_sd": "Mean standardised residual from the change point to the alarm (in sd)",
    "magnitude": "Mean residual over the same points, in the behaviour's own unit",
    "unit": "The behaviour's unit (ms, requests per hour, failure probability…)",
    "reach": "What stands downstream along the call graph, comma separated",
    "words": "The alarm in a sentence",
}
THRESHOLDS = {
    "behaviour": pl.String(),
    "entity": pl.String(),
    "points": pl.Int64(),
    "points_per_week": pl.Float64(),
    "false_alarm_rate": pl.Float64(),
    "threshold": pl.Float64(),
    "null": pl.String(),
}
"""One row per stream watched: its calibrated CUSUM threshold and how it was calibrated."""

NULL_SIMULATIONS = 400
"""The most null streams simulated per stream to calibrate its threshold."""
NULL_POINTS = 1024
"""The most points per simulated null stream."""
COUNTS = frozenset({"churn", "change_failure", "errors", "demand", "vendor_outages"})
"""Behaviours whose residuals are counts: without enough reference residuals, their null
streams are simulated from the twin's count noise (:func:`_count_null`)."""
COUNT_SIMULATIONS = 100
"""The most null streams simulated per count stream."""
NULL_ALARMS = 300
"""False alarms a null simulation is sized to show at the rate it calibrates for (its
count's relative noise about 6%, which the calibration's confidence bound absorbs)."""
MIN_SIMULATIONS = 16
"""The fewest null streams simulated, whatever the rate."""
NULL_RUN_LENGTHS = 20
"""Average run lengths between false alarms a simulated null stream spans, at least."""
MIN_NULL_POINTS = 256
"""The fewest points per simulated null stream, whatever the rate."""
NULL_BLOCK = 6
"""Points per block when null streams are resampled from the reference residuals."""


@dataclass(frozen=True)
class Watch:
    """What :func:`watch` found.

    Attributes:
        alarms: the alarms (schema :data:`ALARMS`), in the order raised.
        residuals: every stream's points (time, behaviour, entity, observed, expected,
            residual, z, unit).
        thresholds: each stream's calibration (schema :data:`THRESHOLDS`).
    """

    alarms: pl.DataFrame
    residuals: pl.DataFrame
    thresholds: pl.DataFrame

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the alarms as Parquet, whole or not at all (a temporary file beside it,
        renamed); returns the path."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            self.alarms.write_parquet(temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target


def watch(
    scenario: str | os.PathLike[str] | Scenario,
    telemetry: str | os.PathLike[str] | Telemetry,
    *,
    mapping: str | os.PathLike[str] | None = None,
    reference: tuple[datetime, datetime] | None = None,
    alarms_per_week: float = 1.0,
    k: float = 0.5,
    seed: int = 0,
    clip: float | None = None,
    pool: bool = False,
    calibrated: dict[tuple, float] | None = None,
) -> Watch:
    """Watch telemetry against the twin of ``scenario``.

    Args:
        scenario: the twin (a learned scenario, usually).
        telemetry: the telemetry folder (or one already read).
        mapping: a mapping file, where the folder's files are not in the twin's shapes.
        reference: a window in which production was as the twin learned it: the
            residuals there set each stream's scale and its null streams. None: the
            residuals' own robust scale, and standard normal null streams.
        alarms_per_week: the false-alarm budget per behaviour (split across its
            entities).
        k: the CUSUM's allowance, in sd: half the smallest shift worth catching.
        seed: the seed of the null simulations (the same inputs give the same alarms).
        clip: where given, each standardised residual is clipped to ``±clip`` before
            the CUSUM, and the null streams alike (so the budget holds): one point adds
            at most ``clip − k``, so an isolated outlier (a histogram quantile jumping
            one bucket for a minute) cannot raise an alarm alone, while a shift that
            lasts still does. None: no clipping.
        pool: with a reference window, resample each stream's null streams from the
            reference residuals of all the behaviour's entities together, each
            standardised by its own mean and sd (each stream is still watched
            standardised by its own): a short reference (hours of per-minute metrics)
            holds too few of the rare excursions that a budget of one false alarm in
            days per stream must allow for, and the behaviour's entities together hold
            more. False: each stream's own.
        calibrated: thresholds calibrated before, keyed by everything their simulation
            depends on (the rate, ``k``, ``clip``, ``seed``, the stream's name and the
            reference residuals resampled), reused where the key matches and added to:
            the same thresholds a new calibration would give, without its cost.
            :func:`follow` keeps one across its looks at the folder. Thresholds on the
            twin's count noise depend on the stream's every point, so are not kept.

    Returns:
        The alarms, the residual streams and each stream's threshold.
    """
    twin = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    tel = telemetry if isinstance(telemetry, Telemetry) else read_telemetry(
        telemetry, mapping=mapping
    )  # fmt: skip
    points = residual_streams(twin, tel.tables, reference=reference)  # reads what it needs
    calibrated = {} if calibrated is None else calibrated
    kept = _Calibration(k=k, seed=seed, clip=clip, thresholds=calibrated)
    alarms: list[dict] = []
    thresholds: list[dict] = []
    entities = points.group_by("behaviour").agg(pl.col("entity").n_unique()).rows()
    per_behaviour = dict(entities)
    pooled = _pooled(points, reference) if pool and reference is not None else {}
    for (behaviour, entity), stream in _streams(points):
        z = stream["z"].to_numpy().astype(float)
        times = stream["time"]
        per_week = _points_per_week(times)
        rate = detect.false_alarm_rate(alarms_per_week, per_week, per_behaviour[behaviour])
        h, how = _threshold(stream, reference, rate, kept, pooled.get(behaviour))
        if how.startswith("block bootstrap"):  # as its null streams are: detect.null_streams
            z = detect.standardise(z, _reference_z(stream, reference))
        if clip is not None:
            z = np.clip(z, -clip, clip)
        thresholds.append(dict(behaviour=behaviour, entity=entity, points=z.size,
                               points_per_week=per_week, false_alarm_rate=rate, threshold=h,
                               null=how))  # fmt: skip
        for change in episodes(detect.cusum(z, k=k, h=h, rearm="restart"), z):
            alarms.append(_alarm(twin, stream, behaviour, entity, change))
    order = ("raised", "behaviour", "entity")  # ties (both sides at once): as raised
    alarm_frame = pl.DataFrame(alarms, schema=ALARMS).sort(order, maintain_order=True)
    return Watch(alarm_frame, points, pl.DataFrame(thresholds, schema=THRESHOLDS))


def follow(
    scenario: str | os.PathLike[str] | Scenario,
    folder: str | os.PathLike[str],
    *,
    emit: Callable[[dict[str, Any]], None],
    stop: threading.Event,
    poll_s: float = 10.0,
    mapping: str | os.PathLike[str] | None = None,
    reference: tuple[datetime, datetime] | None = None,
    alarms_per_week: float = 1.0,
    k: float = 0.5,
    seed: int = 0,
    clip: float | None = None,
    pool: bool = False,
    on_watch: Callable[[Watch], None] | None = None,
) -> None:
    """Watch a telemetry folder as files arrive, until ``stop`` is set.

    A table may be a subfolder of files read in name order (``requests/part-0007.parquet``),
    so a collector that drops a new file every few minutes feeds the watch. Every
    ``poll_s`` seconds, when the folder's files changed (new files, or a file rewritten),
    it is watched again and each alarm not seen before is handed to ``emit`` (a row of
    :data:`ALARMS` as a dict), in the order raised. Earlier alarms stand as more data
    comes: the residuals and the CUSUM look only backwards, and each stream's threshold
    depends on its reference window and rate, not on its length. The thresholds
    calibrated on reference residuals and on the standard normal are kept from one look
    to the next (``calibrated`` of :func:`watch`), so a look costs mostly the residuals.
    A folder caught half written (a table that does not read) is tried again at the
    next poll.

    Args:
        scenario: the twin.
        folder: the telemetry folder.
        emit: called with each new alarm.
        stop: set it to end the watch (it ends within ``poll_s``).
        poll_s: seconds between looks at the folder.
        mapping, reference, alarms_per_week, k, seed, clip, pool: as for :func:`watch`.
        on_watch: called with each new :class:`Watch` (to save the alarms, say).
    """
    twin = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    seen: set[tuple[str, str, datetime]] = set()
    stamp: tuple = ()
    calibrated: dict[tuple, float] = {}  # what each look calibrated, for the next
    while not stop.is_set():
        now = _stamp(Path(folder))
        if now != stamp:
            try:
                found = watch(twin, folder, mapping=mapping, reference=reference,
                              alarms_per_week=alarms_per_week, k=k, seed=seed, clip=clip,
                              pool=pool, calibrated=calibrated)  # fmt: skip
            except TelemetryError:
                found = None  # half written: the next poll reads it whole
            if found is not None:
                stamp = now
                for row in found.alarms.iter_rows(named=True):
                    key = (row["behaviour"], row["entity"], row["raised"])
                    if key not in seen:
                        seen.add(key)
                        emit(row)
                if on_watch is not None:
                    on_watch(found)
        stop.wait(poll_s)


def _count_null(
    stream: pl.DataFrame, rng: np.random.Generator, shape: tuple[int, int]
) -> np.ndarray | None:
    """Null streams of a count behaviour, simulated from the twin's count noise.

    At points drawn from the stream's own, a Poisson count around the expected one, over
    the stream's own scale (``residual / z``), as the stream's residuals are standardised.
    The Poisson mean is capped at the scale's square, as counts of yes-or-no events
    (deploys failing, users leaving) vary less than Poisson; for demand, the variance the
    scale holds beyond Poisson (burstiness, the level's own error) is added as a normal
    draw. Sparse counts (a user leaving a day where 0.2 are expected) are far from normal:
    a normal null would set their thresholds too low. None when the stream has too few
    points with a scale.
    """
    expected = stream["expected"].to_numpy().astype(float)
    residual = stream["residual"].to_numpy().astype(float)
    z = stream["z"].to_numpy().astype(float)
    finite = np.isfinite(z) & np.isfinite(expected) & np.isfinite(residual)
    scaled = finite & (np.abs(z) > 1e-9) & (np.abs(residual) > 1e-9)
    if scaled.sum() < 4:
        return None
    scale = np.full(z.shape, np.median(np.abs(residual[scaled] / z[scaled])))
    scale[scaled] = np.abs(residual[scaled] / z[scaled])
    scale, expected = scale[finite], np.maximum(expected[finite], 0.0)
    mean = np.minimum(expected, scale**2)
    extra = np.sqrt(np.maximum(scale**2 - expected, 0.0))
    if stream["behaviour"][0] != "demand":
        extra = np.zeros_like(extra)  # the scale's floor (errors) is not noise
    pick = rng.integers(0, mean.size, size=shape)
    m = mean[pick]
    draws = rng.poisson(m) - m + extra[pick] * rng.standard_normal(pick.shape)
    return draws / scale[pick]


def _stamp(folder: Path) -> tuple:
    """The folder's files with their sizes and modification times, in name order."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def episodes(changes: list[detect.Change], z: np.ndarray | None = None) -> list[detect.Change]:
    """One alarm per episode: after an alarm the CUSUM restarts at 0, and an alarm of the
    same direction whose run began right after the last one (the statistic never fell
    back to 0 in between: the same shift, still there) is the same episode, not a new
    one. A shift that lasts raises one alarm; a false alarm just before a real change
    does not hide it once the statistic has touched 0. With the stream's ``z``, the shift
    must also have held: a point between the two alarms on the other side of 0 (the
    shift paused, as when one fault ends and the next begins before the statistic has
    drained) makes the second alarm a new episode."""
    out: list[detect.Change] = []
    last: dict[int, int] = {}
    for change in changes:
        before = last.get(change.direction)
        if before == change.start - 1 and (
            z is None or bool(np.all(z[before + 1 : change.alarm + 1] * change.direction > 0))
        ):
            last[change.direction] = change.alarm
            continue
        out.append(change)
        last[change.direction] = change.alarm
    return out


def _streams(points: pl.DataFrame) -> Iterator[tuple[tuple[str, str], pl.DataFrame]]:
    """Each behaviour's and entity's points in time order, in the order they first come
    (one pass over the table, not one filter per stream)."""
    parts = points.sort("time", maintain_order=True).partition_by(
        "behaviour", "entity", maintain_order=True, as_dict=True
    )
    for key, stream in parts.items():
        yield (str(key[0]), str(key[1])), stream


def _points_per_week(times: pl.Series) -> float:
    """Points a week, from the stream's median spacing (hourly: 168)."""
    if times.len() < 2:
        return 1.0
    step = times.diff().drop_nulls().median()
    seconds = step.total_seconds() if isinstance(step, timedelta) else 3600.0
    return timedelta(weeks=1).total_seconds() / max(seconds, 1.0)


@dataclass(frozen=True)
class _Calibration:
    """What every stream's calibration shares: the detector's allowance, the seed, the
    clip, and the thresholds calibrated already (:func:`watch`'s ``calibrated``)."""

    k: float
    seed: int
    clip: float | None
    thresholds: dict[tuple, float]

    def threshold(self, key: tuple, rate: float, simulate: Callable[[], np.ndarray]) -> float:
        """The threshold kept under ``key`` (with the shared settings), or calibrated on
        ``simulate()``'s null streams (clipped as the stream will be) and kept."""
        key = (*key, rate, self.k, self.clip, self.seed)
        if key not in self.thresholds:
            self.thresholds[key] = self.calibrate(simulate(), rate)
        return self.thresholds[key]

    def calibrate(self, null: np.ndarray, rate: float) -> float:
        """The threshold on ``null``, clipped as the stream will be."""
        null = null if self.clip is None else np.clip(null, -self.clip, self.clip)
        return detect.calibrate(null, k=self.k, rate=rate, rearm="restart")


def _threshold(
    stream: pl.DataFrame,
    reference: tuple[datetime, datetime] | None,
    rate: float,
    kept: _Calibration,
    pooled: np.ndarray | None = None,
) -> tuple[float, str]:
    """One stream's calibrated threshold, and how its null streams were made.

    Null streams are the stream's reference residuals resampled in blocks where it has
    enough that vary; else, for counts, the twin's count noise around the stream's
    expected counts; else the standard normal, whose threshold depends on the rate alone
    and is calibrated once per rate. Each stream's simulation has its own generator,
    seeded from the seed and the stream's name, so a threshold does not depend on which
    other streams are watched. ``pooled``: the behaviour's standardised reference
    residuals (:func:`_pooled`), resampled instead of the stream's own. Thresholds on
    reference residuals and on the standard normal are kept in ``kept`` under what
    their simulation depends on.
    """
    name = f"{stream['behaviour'][0]}/{stream['entity'][0]}".encode()
    seed = kept.seed
    if reference is not None:
        ref = _reference_z(stream, reference)
        if ref.size >= 4 * NULL_BLOCK and ref.std() > 1e-6:  # a twin exact there has none
            how = f"block bootstrap of {ref.size} reference residuals"
            if pooled is not None:
                ref = pooled
                how = f"block bootstrap of {ref.size} reference residuals of the behaviour"
            digest = hashlib.blake2b(np.ascontiguousarray(ref).tobytes(), digest_size=16)

            def resampled(ref: np.ndarray = ref) -> np.ndarray:
                rng = np.random.default_rng([seed, zlib.crc32(name)])
                return detect.null_streams(ref, *_null_shape(rate), rng, block=NULL_BLOCK)

            key = ("block bootstrap", name, digest.hexdigest())
            return kept.threshold(key, rate, resampled), how
    if stream["behaviour"][0] in COUNTS:
        rng = np.random.default_rng([seed, zlib.crc32(name), 1])
        null = _count_null(stream, rng, _null_shape(rate, COUNT_SIMULATIONS))
        if null is not None:
            return kept.calibrate(null, rate), "the twin's count noise around its expected counts"

    def normal() -> np.ndarray:
        return np.random.default_rng([seed, 0]).standard_normal(_null_shape(rate))

    return kept.threshold(("standard normal",), rate, normal), "standard normal"


def _null_shape(rate: float, most: int = NULL_SIMULATIONS) -> tuple[int, int]:
    """How many null streams to simulate, and how long, for a false-alarm ``rate`` per
    point: each :data:`NULL_RUN_LENGTHS` average run lengths (``1 / rate``) long, within
    :data:`MIN_NULL_POINTS` and :data:`NULL_POINTS`; enough of them to expect
    :data:`NULL_ALARMS` false alarms, within :data:`MIN_SIMULATIONS` and ``most`` (where
    the rate is too small for that, the threshold is extrapolated:
    :func:`~orgtwin.fidelity.detect.calibrate`).

    The detector restarts at 0 after each alarm, as each null stream starts, so a stream
    of a few run lengths counts the rate as a long one does; and the calibration's cost
    is a loop over points. A sparse stream (a day's churn, an incident's restore: a few
    points a week, allowed many alarms per point) is calibrated on few short streams,
    an hourly one on the most.

    Example:
        >>> _null_shape(1e-5), _null_shape(0.036), _null_shape(0.5)
        ((400, 1024), (16, 556), (16, 256))
    """
    points = int(min(NULL_POINTS, max(MIN_NULL_POINTS, math.ceil(NULL_RUN_LENGTHS / rate))))
    simulations = math.ceil(NULL_ALARMS / (rate * points))
    return int(min(most, max(MIN_SIMULATIONS, simulations))), points


def _pooled(points: pl.DataFrame, reference: tuple[datetime, datetime]) -> dict[str, np.ndarray]:
    """Per behaviour, the reference residuals of its streams that have enough that vary
    (as :func:`_threshold` asks), each standardised by its own mean and sd, one stream
    after the other."""
    parts: dict[str, list[np.ndarray]] = {}
    for (behaviour, _), stream in _streams(points):
        ref = _reference_z(stream, reference)
        if ref.size >= 4 * NULL_BLOCK and ref.std() > 1e-6:
            parts.setdefault(behaviour, []).append(detect.standardise(ref, ref))
    return {behaviour: np.concatenate(refs) for behaviour, refs in parts.items()}


def _reference_z(stream: pl.DataFrame, reference: tuple[datetime, datetime]) -> np.ndarray:
    """The stream's finite ``z`` in the reference window. Where its null streams are
    resampled from them, the stream is watched standardised by their mean and sd, as the
    null streams are (:func:`orgtwin.fidelity.detect.null_streams`): a twin whose
    residuals sit a little off 0 there (a median fit of skewed latency) would otherwise
    raise alarms beyond the budget; a shift is then counted from the reference's level."""
    times = stream["time"]  # in order (:func:`_streams`)
    low, high = (int(times.search_sorted(edge, side="left")) for edge in reference)
    z = stream["z"][low:high].to_numpy().astype(float)
    return z[np.isfinite(z)]


def _alarm(
    twin: Scenario, stream: pl.DataFrame, behaviour: str, entity: str, change: detect.Change
) -> dict:
    since, raised = stream["time"][change.start], stream["time"][change.alarm]
    part = stream[change.start : change.alarm + 1]
    magnitude = float(np.nanmean(part["residual"].to_numpy()))
    unit = str(stream["unit"][0])
    direction = "up" if change.direction > 0 else "down"
    downstream = reach(twin, behaviour, entity)
    words = (
        f"{entity}: {behaviour.replace('_', ' ')} is {magnitude:+.3g} {unit} against the "
        f"twin since {since:%Y-%m-%d %H:%M}"
        + (f"; downstream: {', '.join(downstream)}" if downstream else "")
    )
    return dict(behaviour=behaviour, entity=entity, since=since, raised=raised,
                direction=direction, shift_sd=float(change.shift), magnitude=magnitude,
                unit=unit, reach=", ".join(downstream), words=words)  # fmt: skip


def reach(twin: Scenario, behaviour: str, entity: str) -> list[str]:
    """What stands downstream of ``entity`` along the call graph: for a service (or a
    vendor), every service that calls it directly or through others, the features that
    enter through any of those, and the segments that use those features; for a team,
    the same from each service it owns. Named ``service x``, ``feature y``, ``segment z``.
    """
    del behaviour  # the graph is the same whichever behaviour drifted
    services = twin.services
    if entity in twin.teams:
        starts = {name for name, spec in services.items() if spec.team == entity}
    elif entity in services:
        starts = {entity}
    elif entity in twin.vendors:
        starts = {name for name, spec in services.items() if entity in spec.vendors}
    else:
        return []
    hit = set(starts)
    frontier = list(starts)
    while frontier:
        callee = frontier.pop()
        for name, spec in services.items():
            if callee in spec.calls and name not in hit:
                hit.add(name)
                frontier.append(name)
    features = sorted(f for f, spec in twin.features.items() if spec.entry in hit)
    segments = sorted(
        s for s, spec in twin.segments.items() if any(spec.features.get(f, 0) for f in features)
    )
    named = [f"service {s}" for s in sorted(hit - {entity})]
    return named + [f"feature {f}" for f in features] + [f"segment {s}" for s in segments]
