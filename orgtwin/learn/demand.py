"""Demand learned from an arrivals series: hour-of-week profile, level and trend.

:class:`DemandLearner` fits hourly counts (an ``arrivals`` or ``requests`` series: ``time``,
``count``) with a Poisson GLM (:class:`sklearn.linear_model.PoissonRegressor`):
``log E[count] = level[week] + shape[hour of week]`` (one level per week: a local level,
carried forward to forecast; or one log-linear trend, ``level="trend"``). The shape is
free (168 values) and becomes the ``profile`` of a
:class:`~orgtwin.scenario.organisation.DemandProfileSpec`; the parametric form's
``peak_hour``, ``night_level`` and ``weekend_level`` are fitted to it as the closest
match (least squares on the log rates), for reports and for a twin that keeps the form.

**Robust to holidays and outliers.** A day whose total is far from what the fit expects
(a holiday, a storm, a marathon) would bend the profile, so fitting repeats against a
smooth log-linear level (whatever ``level`` the final fit takes): after each fit, each
day's log ratio ``log(observed / expected)`` is standardised by the median and the MAD
(× 1.4826) over the days; days beyond ``outlier_z`` (3.5 by default) get weight 0 in the
next fit; the loop stops when the set of dropped days no longer changes (at most
``max_iter`` fits). At most a quarter of the days are ever dropped (the worst ones).

Intervals of the parametric values come from the fit to the profile: each of the 168 log
rates has the standard error of a Poisson mean over its hours (times the Pearson
dispersion of the GLM), the least-squares covariance is scaled by the residual variance
(the form's misfit widens it, as ``curve_fit`` does with ``absolute_sigma=False``), and
the peak hour's interval spans the peak hours whose fit is within the 95% chi-square
bound (1 degree of freedom) of the best.

Example:
    >>> import numpy as np, polars as pl
    >>> from datetime import datetime, timedelta
    >>> hours = [datetime(2026, 1, 5) + timedelta(hours=h) for h in range(24 * 21)]
    >>> rate = [100 + 80 * np.sin(np.pi * (t.hour / 24)) for t in hours]
    >>> arrivals = pl.DataFrame({"time": hours, "count": rate})
    >>> learner = DemandLearner().fit(arrivals)
    >>> len(learner.profile_), learner.spec().peak_hour
    (168, 12)
"""

from __future__ import annotations

import math
import warnings
from datetime import timedelta
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, stats
from sklearn.base import clone
from sklearn.linear_model import PoissonRegressor
from sklearn.utils.validation import check_is_fitted

from orgtwin.behaviours.users import DemandProfile
from orgtwin.learn.base import Estimate, Fit, HoldoutScore, Learner
from orgtwin.scenario.organisation import DemandProfileSpec
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_WEEK

_MAD_TO_SD = 1.4826
_Z95 = float(stats.norm.ppf(0.975))
_MAX_DROPPED_SHARE = 0.25


def hourly_counts(arrivals: pl.DataFrame, *, utc_offset_hours: int = 0) -> pl.DataFrame:
    """Sum ``count`` (or count rows when absent) per hour: ``time``, ``count``,
    ``hour_of_week`` (local, 0 = Monday 00:00), ``day`` (local date)."""
    counted = arrivals if "count" in arrivals.columns else arrivals.with_columns(count=1.0)
    local = pl.col("time") + pl.duration(hours=utc_offset_hours)
    return (
        counted.group_by(pl.col("time").dt.truncate("1h"))
        .agg(pl.col("count").sum().cast(pl.Float64))
        .sort("time")
        .with_columns(
            hour_of_week=(local.dt.weekday().cast(pl.Int64) - 1) * HOURS_PER_DAY
            + local.dt.hour().cast(pl.Int64),
            day=local.dt.date(),
        )
    )


def closest_parametric(
    profile: NDArray[np.float64], log_sd: NDArray[np.float64] | None = None
) -> dict[str, tuple[float, float, float]]:
    """The :class:`DemandProfile` parameters whose weekly shape is closest to ``profile``
    (168 relative rates), as ``name -> (value, low, high)`` with 95% intervals.

    Least squares on the log rates, each weighted by ``1 / log_sd`` (equal weights when
    None); the peak hour is searched within 3 hours of the weekdays' busiest hour.
    """
    sd = np.ones(HOURS_PER_WEEK) if log_sd is None else np.asarray(log_sd, dtype=float)
    target = np.log(profile / profile.mean())
    weekday_peak = int(np.argmax(profile[: 5 * HOURS_PER_DAY].reshape(5, -1).mean(0)))
    fits = {}
    for peak in (weekday_peak + np.arange(-3, 4)) % HOURS_PER_DAY:

        def residual(x: NDArray, peak: int = int(peak)) -> NDArray:
            law = DemandProfile(peak_hour=peak, night_level=x[0], weekend_level=x[1])
            return (np.log(law.predict(np.arange(HOURS_PER_WEEK))) - target) / sd

        fits[int(peak)] = optimize.least_squares(
            residual, x0=[0.3, 0.8], bounds=([1e-3, 1e-3], [1.0, 2.0]), method="trf"
        )
    peak, best = min(fits.items(), key=lambda item: item[1].cost)
    s2 = 2.0 * best.cost / (HOURS_PER_WEEK - 3)  # residual variance, as curve_fit scales
    jac = best.jac
    cov = np.linalg.pinv(jac.T @ jac) * s2
    out = {}
    for i, name in enumerate(("night_level", "weekend_level")):
        half = _Z95 * math.sqrt(max(cov[i, i], 0.0))
        out[name] = (float(best.x[i]), float(best.x[i] - half), float(best.x[i] + half))
    bound = stats.chi2.ppf(0.95, 1) * s2 / 2.0  # on the scale of cost = ½·Σ residual²
    close = [
        (h - peak + 12) % HOURS_PER_DAY - 12 for h, f in fits.items() if f.cost - best.cost <= bound
    ]
    return {"peak_hour": (float(peak), float(peak + min(close)), float(peak + max(close)))} | out


class DemandLearner(Learner):
    """Hour-of-week demand profile, level and trend of an hourly count series.

    Args:
        outlier_z: days whose robust z-score of log(observed/expected) exceeds this get
            weight 0 in the next fit.
        max_iter: most fits in the outlier loop.
        level: how the level moves over the window. ``weekly``: one level per week (a
            local level, robust to a window that starts in a holiday season); the
            forecast carries the last week's level forward and the trend is the slope of
            the weekly log levels (reported, not extrapolated). ``trend``: one log-linear
            trend, extrapolated. ``flat``: one level.
        utc_offset_hours: the local time zone of the profile, hours from UTC.
        prior: the base scenario's demand profile, for what the data cannot inform.

    Attributes:
        profile_: 168 relative rates (mean 1) from Monday 00:00 local time.
        level_: expected count per hour (mean over the week) at the end of training.
        trend_per_week_: growth of the log rate per week.
        week_levels_: with ``level="weekly"``, each week's expected count per hour.
        dropped_days_: the days left out as outliers.
        parametric_: the closest ``peak_hour``, ``night_level``, ``weekend_level``.
        burst_: ``burst_cv`` with its 95% interval: how far the hourly counts vary beyond
            Poisson around the fit (the twin draws each hour's rate with that CV).
        n_hours_: hours used.
    """

    behaviour: ClassVar[str] = "demand"

    def __init__(
        self,
        *,
        outlier_z: float = 3.5,
        max_iter: int = 5,
        level: Literal["weekly", "trend", "flat"] = "weekly",
        utc_offset_hours: int = 0,
        prior: DemandProfileSpec | None = None,
    ) -> None:
        self.outlier_z = outlier_z
        self.max_iter = max_iter
        self.level = level
        self.utc_offset_hours = utc_offset_hours
        self.prior = prior

    def _weeks(self, times: pl.Series) -> NDArray[np.float64]:
        """Weeks since the first training hour (fractional)."""
        return (times - self.t0_).dt.total_seconds().to_numpy() / (HOURS_PER_WEEK * 3600)

    def _design(self, hours: pl.DataFrame, level: str | None = None) -> NDArray[np.float64]:
        onehot = np.zeros((hours.height, HOURS_PER_WEEK))
        onehot[np.arange(hours.height), hours["hour_of_week"].to_numpy()] = 1.0
        weeks = self._weeks(hours["time"])
        level = level or self.level
        if level == "weekly":  # one level per week of the window (the first is 0)
            index = np.floor(weeks).astype(int)
            dummies = np.zeros((hours.height, self.n_weeks_))
            dummies[np.arange(hours.height), index] = 1.0
            return np.column_stack([onehot, dummies[:, 1:]])
        if level == "flat":
            return onehot
        return np.column_stack([onehot, weeks])

    def _glm(self, x: NDArray, y: NDArray, weight: NDArray) -> PoissonRegressor:
        scale = max(float(np.average(y, weights=weight)), 1e-9)
        glm = PoissonRegressor(alpha=1e-8, solver="newton-cholesky", max_iter=100, tol=1e-8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs' ConvergenceWarning at the tiny tol
            return glm.fit(x, y / scale, sample_weight=weight)

    def fit(self, arrivals: pl.DataFrame, y: Any = None) -> DemandLearner:
        """Fit to an ``arrivals`` table (``time``, optional ``count``); returns ``self``."""
        if "time" not in arrivals.columns:
            raise ValueError(f"arrivals must have a column 'time', got {arrivals.columns}")
        if self.level not in ("weekly", "trend", "flat"):
            raise ValueError(f"level must be 'weekly', 'trend' or 'flat', got {self.level!r}")
        hours = hourly_counts(arrivals, utc_offset_hours=self.utc_offset_hours)
        self.t0_ = hours["time"].min()
        self.t_end_ = hours["time"].max()
        self.n_weeks_ = int(np.floor(self._weeks(hours["time"]).max())) + 1
        x, counts = self._design(hours), hours["count"].to_numpy()
        missing = set(range(HOURS_PER_WEEK)) - set(hours["hour_of_week"].to_list())
        if missing:
            raise ValueError(f"arrivals must cover every hour of the week, missing {len(missing)}")
        days = hours["day"].to_numpy()
        weight, dropped = np.ones(len(counts)), set()
        # outliers are found against a smooth level: a week's own level would take in
        # part of a holiday in it, and make the same days of the other weeks look odd
        smooth = x if self.level != "weekly" else self._design(hours, "trend")
        for _ in range(self.max_iter):
            glm = self._glm(smooth, counts, weight)
            now = self._outlier_days(days, counts, glm.predict(smooth))
            if now == dropped:
                break
            dropped = now
            weight = np.where(np.isin(days, list(dropped)), 0.0, 1.0)
        self.dropped_days_ = sorted(dropped)
        self.warnings_ = (
            [f"demand: {len(dropped)} day(s) left out as outliers: "
             + ", ".join(str(d) for d in self.dropped_days_)]
            if dropped else []
        )  # fmt: skip
        self.n_hours_ = int(weight.sum())
        if smooth is not x:
            glm = self._glm(x, counts, weight)
        week = np.floor(self._weeks(hours["time"])).astype(int)
        self._store(glm, week, counts, weight)
        self.parametric_ = closest_parametric(self.profile_, self._log_sd(glm, x, counts, weight))
        self.burst_ = self._burst(glm, x, counts, weight, days)
        return self

    def _burst(
        self, glm: PoissonRegressor, x: NDArray, counts: NDArray, weight: NDArray, days: NDArray
    ) -> tuple[float, float, float]:
        """``burst_cv`` (value, low, high): the variance of the hourly counts beyond
        Poisson, relative to the squared mean (a method of moments on the fit's residuals,
        each inflated by ``1 / (1 − leverage)`` for what the fit took in, and the squared
        mean cleared of the fitted mean's own variance), with a 95% interval by
        resampling days."""
        used = weight > 0
        scale = max(float(np.average(counts, weights=weight)), 1e-9)
        mu = glm.predict(x[used]) * scale
        y = counts[used]
        design = np.column_stack([np.ones(y.size), x[used]])
        inverse = np.linalg.pinv(design.T @ (design * mu[:, None]))
        leverage = np.clip(mu * np.einsum("ij,jk,ik->i", design, inverse, design), 0.0, 0.99)
        spread = (y - mu) ** 2 / (1.0 - leverage)  # unbiased for the hour's variance
        _, index = np.unique(days[used], return_inverse=True)
        # the fitted mean is noisy too: its square overstates the true one's by its
        # variance, about leverage × the hour's variance
        per_day = np.stack([np.bincount(index, v) for v in (spread, mu, mu**2 - leverage * spread)])

        def cv2(totals: NDArray) -> NDArray:
            return (totals[0] - totals[1]) / np.maximum(totals[2], 1e-12)

        rng = np.random.default_rng(0)  # fixed: the same data give the same interval
        picks = rng.integers(0, per_day.shape[1], size=(400, per_day.shape[1]))
        draws = cv2(per_day[:, picks].sum(axis=2))
        low, high = np.quantile(draws, [0.025, 0.975])
        value = float(cv2(per_day.sum(axis=1)))
        root = lambda v: math.sqrt(max(float(v), 0.0))  # noqa: E731
        return root(value), root(min(low, value)), root(max(high, value))

    def _outlier_days(self, days: NDArray, counts: NDArray, expected: NDArray) -> set:
        unique, index = np.unique(days, return_inverse=True)
        ratio = np.log(np.maximum(np.bincount(index, counts), 0.5) / np.bincount(index, expected))
        mad = _MAD_TO_SD * np.median(np.abs(ratio - np.median(ratio)))
        z = np.abs(ratio - np.median(ratio)) / max(mad, 1e-9)
        worst = np.argsort(-z)[: int(len(unique) * _MAX_DROPPED_SHARE)]
        return {unique[i] for i in worst if z[i] > self.outlier_z}

    def _store(
        self, glm: PoissonRegressor, week: NDArray, counts: NDArray, weight: NDArray
    ) -> None:
        scale = max(float(np.average(counts, weights=weight)), 1e-9)
        shape = glm.coef_[:HOURS_PER_WEEK]
        self.profile_ = np.exp(shape - np.log(np.mean(np.exp(shape))))
        log_mean = glm.intercept_ + np.log(np.mean(np.exp(shape))) + np.log(scale)
        if self.level == "weekly":
            levels = np.concatenate([[0.0], glm.coef_[HOURS_PER_WEEK:]])
            seen = np.bincount(week, weight, self.n_weeks_) > 0  # weeks not all left out
            self.week_levels_ = np.exp(levels + log_mean)
            if seen.sum() >= 2:
                self.trend_per_week_ = float(np.polyfit(np.flatnonzero(seen), levels[seen], 1)[0])
            else:
                self.trend_per_week_ = 0.0
            self.level_ = float(self.week_levels_[np.flatnonzero(seen)[-1]])
            return
        self.trend_per_week_ = float(glm.coef_[HOURS_PER_WEEK]) if self.level == "trend" else 0.0
        weeks = (self.t_end_ - self.t0_).total_seconds() / (HOURS_PER_WEEK * 3600)
        self.level_ = float(np.exp(log_mean + self.trend_per_week_ * weeks))

    def _log_sd(
        self, glm: PoissonRegressor, x: NDArray, counts: NDArray, weight: NDArray
    ) -> NDArray:
        """Standard error of each hour-of-week log rate: Poisson, times the dispersion."""
        scale = max(float(np.average(counts, weights=weight)), 1e-9)
        expected = glm.predict(x) * scale
        used = weight > 0
        pearson = np.sum((counts[used] - expected[used]) ** 2 / expected[used])
        dispersion = max(pearson / max(used.sum() - x.shape[1], 1), 1.0)
        per_hour = np.bincount(
            np.argmax(x[:, :HOURS_PER_WEEK], axis=1), weight * expected, HOURS_PER_WEEK
        )
        return np.sqrt(dispersion / np.maximum(per_hour, 1e-9))

    # ------------------------------------------------------------------ predictions

    def predict(self, times: pl.Series) -> NDArray[np.float64]:
        """Expected count in each hour starting at ``times`` (trend extrapolated)."""
        check_is_fitted(self, "profile_")
        frame = hourly_counts(
            pl.DataFrame({"time": times, "count": 0.0}), utc_offset_hours=self.utc_offset_hours
        )
        frame = pl.DataFrame({"time": times}).join(frame, on="time", how="left")
        weeks_from_end = (frame["time"] - self.t_end_).dt.total_seconds().to_numpy() / (
            HOURS_PER_WEEK * 3600
        )
        profile = self.profile_[frame["hour_of_week"].to_numpy()]
        if self.level == "weekly":  # the last week's level carried forward
            return self.level_ * profile
        return self.level_ * profile * np.exp(self.trend_per_week_ * weeks_from_end)

    # ------------------------------------------------------------------ report

    def spec(self) -> DemandProfileSpec:
        """The learned profile as a spec: the free shape, with the closest parametric
        values beside it."""
        check_is_fitted(self, "profile_")
        base = self.prior or DemandProfileSpec()
        values = {e.name: e.value for e in self.estimates()}
        values["peak_hour"] = int(values["peak_hour"])
        return base.model_copy(update=values | {"profile": [float(v) for v in self.profile_]})

    def estimates(self) -> list[Estimate]:
        """The closest parametric form's values (the free profile is in :meth:`spec`)."""
        check_is_fitted(self, "profile_")
        units = {"peak_hour": "hour of day", "night_level": "ratio", "weekend_level": "ratio"}
        method = "Poisson GLM profile, closest parametric form (weighted least squares)"
        shape = [
            Estimate(name, value, low, high, "learned", units[name], method, self.n_hours_)
            for name, (value, low, high) in self.parametric_.items()
        ]
        burst = Estimate("burst_cv", *self.burst_, "learned",
                         "coefficient of variation of the hourly rate",
                         "hourly variance beyond Poisson around the GLM, day-bootstrap interval",
                         self.n_hours_)  # fmt: skip
        return [*shape, burst]

    def fits(self) -> list[Fit]:
        """The report's one :class:`Fit` (entity ``""``: the series as a whole)."""
        check_is_fitted(self, "profile_")
        return [Fit(self.behaviour, "", self.estimates(), None, self.n_hours_, self.warnings())]

    def holdout(self, arrivals: pl.DataFrame, *, test_hours: int = HOURS_PER_WEEK) -> HoldoutScore:
        """Refit on all but the last ``test_hours`` hours; hourly MAPE on those against
        the same hour a week before (seasonal naive)."""
        hours = hourly_counts(arrivals, utc_offset_hours=self.utc_offset_hours)
        cut_time = hours["time"].max() - timedelta(hours=test_hours - 1)
        train = hours.filter(pl.col("time") < cut_time)
        test = hours.filter(pl.col("time") >= cut_time)
        learner = clone(self).fit(train.select("time", "count"))
        naive = seasonal_naive(hours, test["time"])
        return HoldoutScore(
            "hourly MAPE",
            mape(test["count"].to_numpy(), learner.predict(test["time"])),
            mape(test["count"].to_numpy(), naive),
            "same hour last week",
            False,
            train.height,
            test.height,
        )


def weekly_profile(spec: DemandProfileSpec) -> NDArray[np.float64]:
    """The 168 relative rates (mean 1, local hour of the week from Monday 00:00) a demand
    profile spec gives: its free ``profile``, or its parametric form."""
    return DemandProfile.from_spec(spec).predict(np.arange(HOURS_PER_WEEK))


def seasonal_naive(hours: pl.DataFrame, times: pl.Series) -> NDArray[np.float64]:
    """The count a week before each of ``times`` (from an hourly ``time``, ``count`` frame)."""
    before = pl.DataFrame({"time": times - timedelta(hours=HOURS_PER_WEEK)})
    return before.join(hours.select("time", "count"), on="time", how="left")["count"].to_numpy()


def mape(actual: NDArray, predicted: NDArray) -> float:
    """Mean absolute percentage error, as a share (0.07 = 7%), over the hours with a
    count (an hour of none has no percentage error); NaN when there are none."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    counted = actual > 0
    if not counted.any():
        return math.nan
    return float(np.mean(np.abs(predicted[counted] - actual[counted]) / actual[counted]))
