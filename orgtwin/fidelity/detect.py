"""Change detection on standardised residuals: two-sided CUSUM, calibrated by simulation.

The drift watch follows, per behaviour and entity, a stream of standardised residuals
``z`` (what production shows against what the twin predicts, scaled so that ``z`` has
mean 0 and sd 1 while the twin mirrors production). A change in production shows as a
shift in the mean of ``z``; :func:`cusum` finds it with the two-sided tabular CUSUM::

    S⁺ ← max(0, S⁺ + z − k)        S⁻ ← max(0, S⁻ − z − k)

and alarms when either statistic exceeds ``h``. ``k`` is half the shift (in sd) the
detector is tuned to (``k = 0.5``: a 1 sd shift). Each alarm is a :class:`Change`: since
when (``start``, the first point after the alarmed statistic was last at 0, the classic
CUSUM change-point estimate), when it was raised (``alarm``), which way (``direction``)
and how big (``shift``, the mean of ``z`` from ``start`` to ``alarm``, in sd units;
:meth:`Change.in_units` turns it into the behaviour's units).

**One alarm per change.** By default (``rearm="at_zero"``) the alarmed side stays quiet,
its statistic held at ``h``, until the statistic returns to 0 (the shift is over: under
no change ``S`` falls by about ``k`` per point, so it re-arms about ``h / k`` points after
the shift ends). A lasting shift raises one alarm, not one every ``h / (|shift| − k)``
points; a shift just above ``k`` can touch 0 now and then and so alarm again. The other
side keeps watching. ``rearm="restart"`` is the textbook variant: both statistics
restart at 0 after an alarm, so a lasting shift alarms again and again.

**Thresholds come from calibration, never from defaults.** :func:`calibrate` finds the
smallest ``h`` whose realised false-alarm rate (alarms per point) on null streams (drawn
as if the twin mirrors production) is at most the rate the user's budget allows
(:func:`false_alarm_rate`: one false alarm per week per behaviour, the budget split
evenly over the streams watched), with 90% confidence on the simulation's count. Null
streams are the twin's own residuals resampled (:func:`null_streams`: point by point, by
moving blocks, or through an autoregressive sieve when the residuals are autocorrelated)
or plain ``rng.standard_normal((n_sims, n_points))``; the live stream is standardised as
they are (:func:`standardise`). When the rate is too small for the
simulation to show (fewer than ``min_alarms`` expected false alarms in it), the average
run length, which grows about exponentially in ``h``, is extrapolated: Siegmund's curve
of the ARL against ``h`` is fitted over the reachable part and solved for the target.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rate = false_alarm_rate(per_week=1.0, points_per_week=168, streams=20)
    >>> round(1 / rate)  # each stream: a false alarm every 3,360 points on average
    3360
    >>> h = calibrate(rng.standard_normal((400, 1000)), rate=rate)
    >>> round(h, 1)
    7.0
    >>> z = rng.standard_normal(600)
    >>> z[300:] += 1.0  # production changed at point 300: one sd up
    >>> [(c.start, c.alarm, c.direction, round(c.shift, 1)) for c in cusum(z, h=h)]
    [(299, 307, 1, 1.3)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import linalg, optimize, stats

Rearm = Literal["at_zero", "restart"]

WARMUP = 256
"""Points each chunk of a long null stream runs before its alarms count (see
:func:`calibrate`): two CUSUM paths fed the same points meet once both touch 0, which
under no change happens every few points."""

CHUNK = 1024
"""Counted points per chunk when :func:`calibrate` cuts long null streams."""


@dataclass(frozen=True)
class Change:
    """A change of the mean of a residual stream, as one alarm reports it.

    Attributes:
        start: index of the estimated change point: the first point after the alarmed
            statistic was last at 0.
        alarm: index of the point where the statistic crossed the threshold.
        direction: +1 when the residuals went up, −1 when they went down.
        shift: mean of the residuals from ``start`` to ``alarm`` inclusive (NaN points
            left out), in sd units; its sign is ``direction``'s. Being selected by the
            alarm, it overstates small shifts somewhat.
    """

    start: int
    alarm: int
    direction: int
    shift: float

    @property
    def delay(self) -> int:
        """Points from the estimated change point to the alarm (0: alarmed at once)."""
        return self.alarm - self.start

    def in_units(self, scale: float) -> float:
        """The shift in the behaviour's units, given the residual scale (the sd of the
        residual in those units that ``z`` was divided by).

        For residuals whose scale varies point by point (a Poisson count's sd is the
        square root of its predicted mean), average the raw residuals (observed minus
        predicted) from :attr:`start` to :attr:`alarm` instead.

        Raises:
            ValueError: ``scale`` not positive.
        """
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        return self.shift * float(scale)


def cusum(z: np.ndarray, *, k: float = 0.5, h: float, rearm: Rearm = "at_zero") -> list[Change]:
    """Two-sided tabular CUSUM of one standardised residual stream.

    Args:
        z: the residuals, 1-D; NaN points are skipped (the statistics do not move).
        k: the allowance, in sd: half the shift the detector is tuned to; >= 0.
        h: the threshold, in sd: from :func:`calibrate`, never a default; > 0.
        rearm: ``"at_zero"`` (one alarm per change: the alarmed side stays quiet until
            its statistic returns to 0) or ``"restart"`` (both sides restart at 0).

    Returns:
        The alarms, in order.

    Raises:
        ValueError: ``z`` not 1-D, ``k`` < 0, ``h`` not positive, unknown ``rearm``.
    """
    values = np.asarray(z, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"z must be 1-D, got shape {values.shape}")
    _check(k=k, h=h, rearm=rearm)
    restart = rearm == "restart"
    changes: list[Change] = []
    up = down = 0.0
    up_start = down_start = 0
    up_quiet = down_quiet = False
    for i, x in enumerate(values.tolist()):  # the hot loop: comparisons, no calls
        if x != x:  # NaN: skipped
            continue
        was_up, was_down = up, down
        up = up + x - k
        if up < 0.0:
            up = 0.0
        down = down - x - k
        if down < 0.0:
            down = 0.0
        if up > 0 and was_up == 0:
            up_start = i
        if down > 0 and was_down == 0:
            down_start = i
        fire_up = up > h and not up_quiet
        fire_down = down > h and not down_quiet
        if fire_up:
            changes.append(_change(values, up_start, i, +1))
        if fire_down:
            changes.append(_change(values, down_start, i, -1))
        if restart:
            if fire_up or fire_down:
                up = down = 0.0
            continue
        up_quiet = (up_quiet or fire_up) and up > 0
        down_quiet = (down_quiet or fire_down) and down > 0
        if up > h:
            up = h
        if down > h:
            down = h
    return changes


def _change(values: np.ndarray, start: int, alarm: int, direction: int) -> Change:
    return Change(
        start=start,
        alarm=alarm,
        direction=direction,
        shift=float(np.nanmean(values[start : alarm + 1])),
    )


def count_alarms(
    z: np.ndarray, *, k: float = 0.5, h: float | np.ndarray, rearm: Rearm = "at_zero",
    skip: int = 0,
) -> np.ndarray:  # fmt: skip
    """Alarms :func:`cusum` raises on each of many streams, for one or many thresholds.

    Loops over points, vectorised over streams and thresholds: the fast path of
    calibration (about 10⁷ stream-points a second per threshold).

    Args:
        z: the streams, shape ``(n_streams, n_points)``; NaN points are skipped.
        k: the allowance, in sd; >= 0.
        h: a threshold, or a 1-D array of thresholds; each > 0.
        rearm: as in :func:`cusum`.
        skip: alarms at points before this index are run but not counted (a warm-up).

    Returns:
        Alarm counts: shape ``(n_streams,)`` for one threshold, ``(len(h), n_streams)``
        for an array of them.

    Raises:
        ValueError: ``z`` not 2-D, bad ``k``, ``h`` or ``rearm``.
    """
    values = np.asarray(z, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"z must be 2-D (n_streams, n_points), got shape {values.shape}")
    thresholds = np.atleast_1d(np.asarray(h, dtype=float))
    if thresholds.ndim != 1:
        raise ValueError(f"h must be a number or a 1-D array, got shape {thresholds.shape}")
    for one in thresholds:
        _check(k=k, h=float(one), rearm=rearm)
    return _count_columns(_Columns.of(values), k=k, thresholds=thresholds, rearm=rearm,
                          skip=skip, one=np.ndim(h) == 0)  # fmt: skip


@dataclass(frozen=True, eq=False)
class _Columns:
    """Streams laid out point by point for :func:`count_alarms`' loop (made once, counted
    against many thresholds by :func:`calibrate`)."""

    columns: np.ndarray  # [points, streams], contiguous
    gaps: np.ndarray  # [points, streams]: NaN there
    any_gap: np.ndarray  # [points]

    @classmethod
    def of(cls, values: np.ndarray) -> _Columns:
        columns = np.ascontiguousarray(values.T)
        gaps = np.isnan(columns)
        return cls(columns, gaps, gaps.any(axis=1))


def _count_columns(
    laid: _Columns, *, k: float, thresholds: np.ndarray, rearm: Rearm, skip: int, one: bool
) -> np.ndarray:
    """:func:`count_alarms` on streams laid out already (arguments checked)."""
    columns, gaps, any_gap = laid.columns, laid.gaps, laid.any_gap
    n_points, n_streams = columns.shape
    shape = (thresholds.size, n_streams)
    cap = np.broadcast_to(thresholds[:, None], shape).copy()
    up, down = np.zeros(shape), np.zeros(shape)
    up_quiet, down_quiet = np.zeros(shape, bool), np.zeros(shape, bool)
    fire, fire_down = np.zeros(shape, bool), np.zeros(shape, bool)
    counts = np.zeros(shape, np.int64)
    restart = rearm == "restart"
    for j in range(n_points):
        x = columns[j]
        if any_gap[j]:
            keep = ~gaps[j]
            x = np.where(keep, x, 0.0)
            old_up, old_down = up.copy(), down.copy()
        np.add(up, x - k, out=up)
        np.maximum(up, 0.0, out=up)
        np.subtract(down, x + k, out=down)
        np.maximum(down, 0.0, out=down)
        if any_gap[j]:
            up = np.where(keep, up, old_up)
            down = np.where(keep, down, old_down)
        np.greater(up, cap, out=fire)
        np.greater(down, cap, out=fire_down)
        if restart:
            if j >= skip:
                counts += fire
                counts += fire_down
            either = fire | fire_down
            up[either] = 0.0
            down[either] = 0.0
            continue
        fire &= ~up_quiet
        fire_down &= ~down_quiet
        if j >= skip:
            counts += fire
            counts += fire_down
        np.minimum(up, cap, out=up)
        np.minimum(down, cap, out=down)
        up_quiet |= fire
        up_quiet &= up > 0
        down_quiet |= fire_down
        down_quiet &= down > 0
    return counts[0] if one else counts


def false_alarm_rate(per_week: float, points_per_week: float, streams: int = 1) -> float:
    """The false-alarm probability per point and stream that the budget allows.

    The budget is the expected number of false alarms per week over all the streams
    watched (every behaviour and entity). It is split evenly over the streams (the
    Bonferroni correction): each may raise ``per_week / streams`` a week, that is
    ``per_week / (streams · points_per_week)`` a point, so the expected total is at most
    ``per_week`` a week however many streams are watched. For the default budget of the
    drift watch, one false alarm per week per behaviour, call it once per behaviour with
    ``per_week=1`` and ``streams`` its entities; for one per week overall, with
    ``streams`` every behaviour's entities together.

    Args:
        per_week: false alarms a week allowed over all streams; > 0.
        points_per_week: residual points a stream yields a week (168 when hourly); > 0.
        streams: the streams watched; >= 1.

    Returns:
        The rate, in (0, 1): the ``rate`` of :func:`calibrate`; its inverse is the
        average run length between false alarms each stream must reach.

    Raises:
        ValueError: an argument out of range, or a budget of one alarm a point or more.
    """
    if not per_week > 0 or not points_per_week > 0:
        raise ValueError(
            f"per_week and points_per_week must be > 0, got {per_week}, {points_per_week}"
        )
    if int(streams) != streams or streams < 1:
        raise ValueError(f"streams must be an integer >= 1, got {streams}")
    rate = per_week / (points_per_week * streams)
    if rate >= 1:
        raise ValueError(f"a budget of {per_week} a week allows an alarm every point or more")
    return float(rate)


def null_streams(
    reference: np.ndarray,
    n_sims: int,
    n_points: int,
    rng: np.random.Generator | int,
    *,
    block: int = 1,
    ar: int = 0,
) -> np.ndarray:
    """Residual streams as the fitted twin makes them while it mirrors production.

    Resamples a reference window of the twin's own residuals (NaN left out), in one of
    three ways:

    - point by point (``block`` 1, ``ar`` 0): for residuals without autocorrelation;
    - a moving-block bootstrap (``block`` > 1): blocks of ``block`` consecutive points,
      starts drawn uniformly. It keeps the autocorrelation up to about ``block`` lags
      without a model, but breaks it at each block's edge, so its sums vary a little
      less than the reference's: for an AR(1) of φ = 0.3, blocks of 50 let through some
      10% more false alarms than the budget, blocks of 100 to 200 none measurable. Its
      long-run variance is noisy, about ``sqrt(4·block / (3·n))`` relative for ``n``
      reference points, so take a long reference;
    - an autoregressive sieve (``ar`` = p > 0): an AR(p) fitted to the reference (Yule-
      Walker), run on its own residuals resampled point by point (after a burn-in). No
      block edges, and the autocorrelation comes from p coefficients; for residuals
      that carry over from point to point (hourly latency, counts) the better choice.

    The streams are standardised by the reference's mean and sd; standardise the live
    stream the same way (:func:`standardise`). For Gaussian nulls use
    ``rng.standard_normal((n_sims, n_points))``.

    A threshold calibrated on them is only as good as the reference. Its mean and sd
    enter every live point: from 5,000 points the mean is off by about 0.014 sd, which
    moves the false-alarm rate of one side by some 20% at ``h`` near 7. Measured for a
    week's budget over 20 hourly streams (52 false alarms a year allowed) and an AR(1)
    of φ = 0.3: calibrated from references of 10⁵ points (blocks of 100 to 200), a year
    of fresh streams raised 52 on average with an sd of 12 over 30 references; from
    10⁶ points, 51 with an sd of 8.5 (the Poisson noise alone: 7.2). Residuals of the
    fitted twin simulated against itself make a reference as long as wanted.

    Args:
        reference: the twin's residuals over a window where it mirrored production, 1-D.
        n_sims: streams to draw; >= 1.
        n_points: points per stream; >= 1.
        rng: a generator, or a seed for one.
        block: the block length; 1 <= block <= the finite points of ``reference``.
        ar: the order of the autoregressive sieve; 0 (none) <= ar < a tenth of the
            finite points of ``reference``; not with ``block`` > 1.

    Returns:
        Shape ``(n_sims, n_points)``.

    Raises:
        ValueError: fewer than 2 finite reference points, a constant reference, or a
            size, block or order out of range.
    """
    finite = _finite_reference(reference)
    if n_sims < 1 or n_points < 1:
        raise ValueError(f"n_sims and n_points must be >= 1, got {n_sims}, {n_points}")
    if not 1 <= block <= finite.size:
        raise ValueError(f"block must be in [1, {finite.size}] (the reference), got {block}")
    if not 0 <= ar < finite.size / 10 or (ar > 0 and block > 1):
        raise ValueError(
            f"ar must be in [0, {finite.size / 10:g}) and not with block > 1, got {ar}"
        )
    generator = np.random.default_rng(rng)
    if ar > 0:
        return _sieve(standardise(finite, finite), ar, n_sims, n_points, generator)
    blocks = -(-n_points // block)
    starts = generator.integers(0, finite.size - block + 1, size=(n_sims, blocks))
    picks = (starts[:, :, None] + np.arange(block)).reshape(n_sims, blocks * block)
    return standardise(finite[picks[:, :n_points]], finite)


def _sieve(
    y: np.ndarray, order: int, n_sims: int, n_points: int, rng: np.random.Generator
) -> np.ndarray:
    """Streams of an AR(``order``) fitted to ``y`` (mean 0, sd 1) by Yule-Walker, driven
    by its own residuals resampled point by point, after a burn-in."""
    n = y.size
    autocov = np.array([np.dot(y[: n - lag], y[lag:]) / n for lag in range(order + 1)])
    phi = linalg.solve_toeplitz(autocov[:-1], autocov[1:])
    lagged = np.column_stack([y[order - i - 1 : n - i - 1] for i in range(order)])
    innovations = y[order:] - lagged @ phi
    innovations -= innovations.mean()
    burn = 20 * order + 100
    shocks = innovations[rng.integers(0, innovations.size, size=(burn + n_points, n_sims))]
    out = np.zeros((burn + n_points, n_sims))
    for t in range(order, burn + n_points):
        out[t] = out[t - order : t][::-1].T @ phi + shocks[t]
    return np.ascontiguousarray(out[burn:].T)


def standardise(z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``z`` less the reference's mean, over its sd (``ddof=1``; NaN left out).

    Raises:
        ValueError: fewer than 2 finite reference points, or a constant reference.
    """
    finite = _finite_reference(reference)
    return (np.asarray(z, dtype=float) - finite.mean()) / finite.std(ddof=1)


def _finite_reference(reference: np.ndarray) -> np.ndarray:
    values = np.asarray(reference, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        raise ValueError(f"reference must hold at least 2 finite points, got {finite.size}")
    if not finite.std() > 0:
        raise ValueError("reference is constant: it has no scale to standardise by")
    return finite


def calibrate(
    null: np.ndarray, *, k: float = 0.5, rate: float, rearm: Rearm = "at_zero",
    min_alarms: int = 10, confidence: float = 0.9,
) -> float:  # fmt: skip
    """The threshold ``h`` whose false-alarm rate on ``null`` is at most ``rate``.

    The realised rate (alarms per finite point, all streams together) falls as ``h``
    grows. When ``null`` holds enough points to show the rate (``rate`` × points >=
    ``min_alarms``), ``h`` is found by bisection on it (a grid, then nine-way sections of
    the bracket until it is 0.01 sd wide) and is the bracket's upper end: the smallest
    ``h`` tried whose rate is within ``rate`` with the ``confidence`` given (the
    one-sided Poisson upper limit of the alarms counted; at 0.9 and some 300 alarms
    expected, about 7% fewer alarms than the budget allows, which absorbs the noise of
    the simulation; 0.5 reads the count as it is).

    Otherwise the average run length (ARL: points per alarm) is extrapolated. CUSUM's
    ARL grows about exponentially in ``h``; Siegmund's approximation for Gaussian
    residuals is ``ARL = (e^{b(h + 1.166)} − b(h + 1.166) − 1) / (4k²)`` with ``b = 2k``
    (so ``log ARL ≈ 2k·(h + 1.166) − log(4k²)`` for large ``h``). That curve, with
    ``b`` and the scale free (other residuals have another ``b``), is fitted to
    ``log ARL`` against ``h`` by least squares weighted by the alarm counts, over the
    reachable part (ARL of at least 50 points, at least ``min_alarms`` alarms, on 16
    thresholds) and solved for ``ARL = 1 / rate``. A plain line through the reachable
    part would be too steep (the curve bends towards its asymptote) and ``h`` too low.
    Measured on Gaussian streams over 30 seeds: from 10⁵ simulated points the
    extrapolated ``h`` for a rate of 10⁻⁶ is 0.15 sd above Siegmund's on average (the
    safe side), with an sd of 0.29 (a factor of about 1.3 in the ARL) and at most 0.73
    off; simulate more points to narrow it.

    Long streams are cut into chunks of :data:`CHUNK` points, each run after the
    :data:`WARMUP` points before it (alarms counted only past them), so that the cost is
    under half a second per 10⁶ simulated points (measured) whatever their shape.

    Args:
        null: residual streams under no change, shape ``(n_sims, n_points)``
            (:func:`null_streams`).
        k: the allowance the detector will run with; >= 0.
        rate: the false alarms allowed per point and stream (:func:`false_alarm_rate`);
            in (0, 1).
        rearm: the variant the detector will run with (:func:`cusum`).
        min_alarms: the fewest expected false alarms the simulation must show to be read
            directly, and a reachable threshold to have; >= 1.
        confidence: how sure the bisection must be that the rate on the null is within
            ``rate``; in (0, 1). Not applied to an extrapolated rate.

    Returns:
        The threshold, in sd.

    Raises:
        ValueError: an argument out of range, ``null`` not 2-D or with fewer than 10
            finite points, no ``h`` up to 64 sd that keeps within ``rate`` (streams not
            standardised), or a rate to extrapolate to from fewer than
            ``1000 · min_alarms`` points.
    """
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1) (false alarms per point), got {rate}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if min_alarms < 1:
        raise ValueError(f"min_alarms must be >= 1, got {min_alarms}")
    _check(k=k, h=1.0, rearm=rearm)
    streams = np.asarray(null, dtype=float)
    if streams.ndim != 2:
        raise ValueError(f"null must be 2-D (n_sims, n_points), got shape {streams.shape}")
    points = int(np.isfinite(streams).sum())
    if points < 10:
        raise ValueError(f"null must hold at least 10 finite points, got {points}")
    streams, skip = _chunks(streams)

    def upper(counts: np.ndarray) -> np.ndarray:
        """The Poisson upper confidence limit of the expected alarms (Garwood)."""
        return stats.chi2.ppf(confidence, 2 * (counts + 1)) / 2

    laid = _Columns.of(streams)  # once, for every threshold tried

    def alarms(hs: np.ndarray) -> np.ndarray:
        for one in hs:
            _check(k=k, h=float(one), rearm=rearm)
        counted = _count_columns(laid, k=k, thresholds=hs, rearm=rearm, skip=skip, one=False)
        return counted.sum(axis=1)

    grid = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    counts = alarms(grid)
    if rate * points >= max(min_alarms, upper(np.zeros(1))[0] + 1):
        within = np.flatnonzero(upper(counts) <= rate * points)
        if within.size == 0:
            raise ValueError(
                f"no threshold up to {grid[-1]} sd keeps the rate within {rate}: "
                "are the null streams standardised?"
            )
        high = float(grid[within[0]])
        low = float(grid[within[0] - 1]) if within[0] > 0 else 0.0
        while high - low > 0.01:
            inner = np.linspace(low, high, 10)[1:-1]
            ok = upper(alarms(inner)) <= rate * points
            first = int(np.argmax(ok)) if ok.any() else inner.size
            high = float(inner[first]) if first < inner.size else high
            low = float(inner[first - 1]) if first > 0 else low
        return high
    reachable = np.flatnonzero(counts >= min_alarms)
    top = int(reachable[-1]) if reachable.size else -1
    if points < 1000 * min_alarms or top < 0 or top + 1 >= grid.size:
        raise ValueError(
            f"null holds too few points ({points}) to extrapolate to a rate of {rate}: "
            f"simulate at least {1000 * min_alarms} points"
        )
    loose = np.flatnonzero(counts > points / 50)
    low = float(grid[loose[-1]]) if loose.size else 0.0
    fine = np.linspace(low, float(grid[top + 1]), 17)[1:]
    fine_counts = alarms(fine)
    used = (fine_counts >= min_alarms) & (fine_counts <= points / 50)
    if used.sum() < 3:
        raise ValueError(
            f"the false-alarm rate of the null streams falls too steeply in h to extrapolate "
            f"to a rate of {rate}: simulate at least {math.ceil(min_alarms / rate)} points"
        )
    log_arl = np.log(points / fine_counts[used])
    return _extrapolate(fine[used], log_arl, fine_counts[used], math.log(1 / rate))


OVERSHOOT = 1.166
"""Siegmund's correction of the threshold for the overshoot of a Gaussian CUSUM, in sd."""


def _log_excess(x: np.ndarray | float) -> np.ndarray:
    """``log(eˣ − x − 1)`` for ``x`` > 0, without overflow."""
    x = np.asarray(x, dtype=float)
    big = np.maximum(x, 1.0)
    small = np.clip(x, 1e-6, 1.0)
    return np.where(
        x > 1.0, big + np.log1p(-(1.0 + big) * np.exp(-big)), np.log(np.expm1(small) - small)
    )


def _extrapolate(h: np.ndarray, log_arl: np.ndarray, counts: np.ndarray, target: float) -> float:
    """The ``h`` where Siegmund's curve ``log ARL = a + log(e^{b(h + c)} − b(h + c) − 1)``
    (``c`` :data:`OVERSHOOT`), fitted to ``log_arl`` by weighted least squares (weights:
    the alarm counts; ``a`` in closed form for each ``b``), reaches ``target``."""
    weights = counts / counts.sum()

    def misfit(b: float) -> float:
        shape = _log_excess(b * (h + OVERSHOOT))
        a = float(np.sum(weights * (log_arl - shape)))
        return float(np.sum(weights * (log_arl - a - shape) ** 2))

    b = float(optimize.minimize_scalar(misfit, bounds=(1e-3, 50.0), method="bounded").x)
    a = float(np.sum(weights * (log_arl - _log_excess(b * (h + OVERSHOOT)))))
    if target <= a + float(_log_excess(b * (h.max() + OVERSHOOT))):
        return float(h.max())

    def gap(x: float) -> float:
        return a + float(_log_excess(b * (x + OVERSHOOT))) - target

    upper = float(h.max()) + 1.0
    while gap(upper) < 0:
        upper *= 2
    return float(optimize.brentq(gap, float(h.max()), upper, xtol=1e-4))


def _chunks(streams: np.ndarray) -> tuple[np.ndarray, int]:
    """Long streams cut into chunks of :data:`CHUNK` counted points, each led by the
    :data:`WARMUP` points before it (NaN, which the detector skips, before the first
    point and after the last), and the warm-up to skip."""
    n_sims, n_points = streams.shape
    if n_points <= 2 * (CHUNK + WARMUP):
        return streams, 0
    n_chunks = -(-n_points // CHUNK)
    padded = np.full((n_sims, WARMUP + n_chunks * CHUNK), np.nan)
    padded[:, WARMUP : WARMUP + n_points] = streams
    windows = np.arange(n_chunks)[:, None] * CHUNK + np.arange(WARMUP + CHUNK)
    return padded[:, windows].reshape(-1, WARMUP + CHUNK), WARMUP


def _check(*, k: float, h: float, rearm: str) -> None:
    if not k >= 0:
        raise ValueError(f"k must be >= 0 (the allowance, in sd), got {k}")
    if not h > 0:
        raise ValueError(f"h must be > 0 (the threshold, in sd), got {h}")
    if rearm not in ("at_zero", "restart"):
        raise ValueError(f"rearm must be 'at_zero' or 'restart', got {rearm!r}")
