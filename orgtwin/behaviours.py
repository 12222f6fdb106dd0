"""Behaviours: the small, swappable laws the agents follow.

Each behaviour is a scikit-learn style estimator (see :class:`Behaviour`): ``__init__``
stores its parameters and nothing else, parameters are inspectable with ``get_params()``,
and the agents only call its ``predict``/``sample`` methods, batched over whole
populations. The classes here are the default parametric forms; a behaviour learned from
telemetry replaces one by offering the same methods, without touching the agents.

Parameters may be scalars or numpy arrays (one value per entity), so one behaviour
object serves a whole population at once — e.g. a single :class:`LatencyCurve` holds
the curve of every service in the mesh. Nothing here imports mesa.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

HOURS_PER_WEEK = 168
DAYS_PER_MONTH = 30.4375


class Behaviour:
    """Base of every behaviour: the scikit-learn estimator protocol, without scikit-learn.

    ``get_params``/``set_params`` read and write the ``__init__`` arguments, so
    ``sklearn.base.clone``, grid searches and pipelines treat a behaviour like any
    estimator, while importing orgtwin stays free of scikit-learn (and SciPy).
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The behaviour's parameters by name (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Behaviour:
        """Set parameters by name; returns the behaviour.

        Raises:
            ValueError: a name is not a parameter of this behaviour.
        """
        known = self._param_names()
        for name, value in params.items():
            if name not in known:
                allowed = ", ".join(known)
                raise ValueError(
                    f"{type(self).__name__}: parameter must be one of {allowed}, got {name!r}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _logit(p: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def _expit(x: ArrayLike) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


class DemandProfile(Behaviour):
    """Relative session rate by local hour of the week (mean 1 over a week).

    Weekdays follow a raised-cosine day around ``peak_hour`` over a night floor;
    weekends are the weekday shape scaled by ``weekend_level``.

    Args:
        peak_hour: local hour (0–23) of the daily peak.
        night_level: rate at the quietest hour relative to the peak (0–1].
        weekend_level: weekend rate relative to weekdays.

    Example:
        >>> p = DemandProfile(peak_hour=14).predict(np.arange(168))
        >>> round(float(p.mean()), 6), int(p[:24].argmax())
        (1.0, 14)
    """

    def __init__(
        self, peak_hour: int = 14, night_level: float = 0.15, weekend_level: float = 0.55
    ) -> None:
        self.peak_hour = peak_hour
        self.night_level = night_level
        self.weekend_level = weekend_level

    def _week(self) -> NDArray[np.float64]:
        hours = np.arange(HOURS_PER_WEEK)
        hour_of_day = hours % 24
        distance = np.minimum(
            np.abs(hour_of_day - self.peak_hour), 24 - np.abs(hour_of_day - self.peak_hour)
        )
        day_shape = 0.5 * (1.0 + np.cos(np.pi * np.clip(distance / 12.0, 0.0, 1.0)))
        rate = self.night_level + (1.0 - self.night_level) * day_shape**1.5
        weekend = hours >= 5 * 24  # hour-of-week 0 is Monday 00:00
        rate = np.where(weekend, rate * self.weekend_level, rate)
        return rate / rate.mean()

    def predict(self, hour_of_week: ArrayLike) -> NDArray[np.float64]:
        """Relative rate (mean 1 over a week) at each local hour of the week."""
        return self._week()[np.asarray(hour_of_week, dtype=int) % HOURS_PER_WEEK]


class LatencyCurve(Behaviour):
    """Latency against utilisation, queueing-shaped, with overload turned into errors.

    ``p50 = base_ms × (1 + queueing_factor × u / (1 − u))`` for ``u < u_max``, capped
    at ``timeout_ms``; above capacity the excess is rejected, so overload shows as
    errors (``1 − 1/u``), never as infinite latency.

    Args:
        base_ms: latency with no queueing, ms (scalar or one per service).
        queueing_factor: how sharply latency grows as the service fills up.
        timeout_ms: the latency cap (requests slower than this time out).
        p95_over_p50: ratio of the 95th percentile to the median.
        u_max: utilisation above which queueing stops growing (the queue is full).
    """

    def __init__(
        self,
        base_ms: ArrayLike = 20.0,
        queueing_factor: ArrayLike = 1.0,
        timeout_ms: ArrayLike = 5000.0,
        p95_over_p50: ArrayLike = 3.0,
        u_max: float = 0.98,
    ) -> None:
        self.base_ms = base_ms
        self.queueing_factor = queueing_factor
        self.timeout_ms = timeout_ms
        self.p95_over_p50 = p95_over_p50
        self.u_max = u_max

    def predict(self, utilisation: ArrayLike) -> NDArray[np.float64]:
        """Median latency (ms) at each utilisation."""
        u = np.minimum(np.asarray(utilisation, dtype=float), self.u_max)
        p50 = self.base_ms * (1.0 + self.queueing_factor * u / (1.0 - u))
        return np.minimum(p50, self.timeout_ms)

    def predict_p95(self, utilisation: ArrayLike) -> NDArray[np.float64]:
        """95th-percentile latency (ms) at each utilisation."""
        return self.predict_quantiles(utilisation)[1]

    def predict_quantiles(self, utilisation: ArrayLike) -> tuple[NDArray, NDArray]:
        """Median and 95th-percentile latency (ms) at each utilisation, in one pass."""
        p50 = self.predict(utilisation)
        return p50, np.minimum(p50 * self.p95_over_p50, self.timeout_ms)

    @staticmethod
    def overload_error(utilisation: ArrayLike) -> NDArray[np.float64]:
        """Share of requests rejected because demand exceeds capacity."""
        u = np.asarray(utilisation, dtype=float)
        return np.where(u > 1.0, 1.0 - 1.0 / np.maximum(u, 1.0), 0.0)


class ChangeFailure(Behaviour):
    """Probability that a deploy fails: ``logit p = logit base + b·log(batch) + f·fatigue``.

    Args:
        base: failure probability of a one-change deploy by a rested team.
        batch_coef: log-odds per log of batch size (bigger batches fail more).
        fatigue_coef: log-odds per unit of fatigue of the deploying team.
    """

    def __init__(
        self, base: float = 0.06, batch_coef: float = 0.45, fatigue_coef: float = 0.8
    ) -> None:
        self.base = base
        self.batch_coef = batch_coef
        self.fatigue_coef = fatigue_coef

    def predict_proba(self, batch_size: ArrayLike, fatigue: ArrayLike = 0.0) -> NDArray | float:
        """Failure probability of deploys of the given batch sizes (a float for scalars)."""
        if isinstance(batch_size, int | float) and isinstance(fatigue, int | float):
            z = (
                math.log(self.base / (1.0 - self.base))
                + self.batch_coef * math.log(max(batch_size, 1.0))
                + self.fatigue_coef * fatigue
            )
            return 1.0 / (1.0 + math.exp(-z))  # one deploy at a time: no array round trip
        batch = np.maximum(np.asarray(batch_size, dtype=float), 1.0)
        z = _logit(self.base) + self.batch_coef * np.log(batch) + self.fatigue_coef * fatigue
        return _expit(z)


class IncidentTiming(Behaviour):
    """Time to detect and time to restore an incident (log-normal, in hours).

    Restore time stretches with the responder's fatigue and with the size of the change
    that caused it (more suspects), and shrinks with the team's expertise.

    Args:
        detect_median_hours: median time from start to detection.
        detect_sigma: log-normal shape of detection time.
        restore_median_hours: median time from detection to resolution.
        restore_sigma: log-normal shape of restore time.
        fatigue_coef: log-duration per unit of responder fatigue.
        expertise_coef: log-duration per unit of team expertise (reduces time).
        batch_coef: log-duration per log of the causing batch size.
    """

    def __init__(
        self,
        detect_median_hours: float = 0.25,
        detect_sigma: float = 0.6,
        restore_median_hours: float = 1.5,
        restore_sigma: float = 0.7,
        fatigue_coef: float = 0.6,
        expertise_coef: float = 0.3,
        batch_coef: float = 0.25,
    ) -> None:
        self.detect_median_hours = detect_median_hours
        self.detect_sigma = detect_sigma
        self.restore_median_hours = restore_median_hours
        self.restore_sigma = restore_sigma
        self.fatigue_coef = fatigue_coef
        self.expertise_coef = expertise_coef
        self.batch_coef = batch_coef

    def sample_detect(self, rng: np.random.Generator, normal: float | None = None) -> float:
        """Hours from incident start to detection (pass ``normal`` to reuse a draw)."""
        z = rng.standard_normal() if normal is None else normal
        return float(self.detect_median_hours * np.exp(self.detect_sigma * z))

    def restore_median(self, fatigue: float, expertise: float, batch_size: float = 1.0) -> float:
        """Median restore time (hours) for a responder and a causing batch."""
        shift = (
            self.fatigue_coef * fatigue
            - self.expertise_coef * (expertise - 1.0)
            + self.batch_coef * np.log(max(batch_size, 1.0))
        )
        return float(self.restore_median_hours * np.exp(shift))

    def sample_restore(
        self,
        rng: np.random.Generator,
        *,
        fatigue: float,
        expertise: float,
        batch_size: float = 1.0,
        normal: float | None = None,
    ) -> float:
        """Hours from detection to resolution."""
        z = rng.standard_normal() if normal is None else normal
        median = self.restore_median(fatigue, expertise, batch_size)
        return float(median * np.exp(self.restore_sigma * z))


class VendorOutages(Behaviour):
    """Vendor outages as a Poisson process with exponential durations.

    Args:
        rate_per_month: expected outages per 30.4-day month.
        hours_mean: mean outage length, hours.
    """

    def __init__(self, rate_per_month: float = 0.5, hours_mean: float = 2.0) -> None:
        self.rate_per_month = rate_per_month
        self.hours_mean = hours_mean

    def sample(self, rng: np.random.Generator, horizon_hours: int) -> list[tuple[int, int]]:
        """Outages over ``horizon_hours`` as ``(start_hour, end_hour)`` pairs (end exclusive)."""
        rate_per_hour = self.rate_per_month / (DAYS_PER_MONTH * 24.0)
        n = int(rng.poisson(rate_per_hour * horizon_hours))
        starts = np.sort(rng.integers(0, horizon_hours, size=n))
        lengths = np.maximum(1, np.rint(rng.exponential(self.hours_mean, size=n))).astype(int)
        return [
            (int(s), int(min(s + d, horizon_hours))) for s, d in zip(starts, lengths, strict=True)
        ]


class ChurnHazard(Behaviour):
    """Daily churn hazard of each user (proportional hazards).

    ``hazard = h0 · exp(e·experience) · (price / ref)^p · (1 + tenure_months)^t`` with
    ``h0`` the daily hazard that gives ``base_monthly`` churn for a neutral user at the
    reference price. Users churn when their accumulated hazard passes a threshold drawn
    once per user (an exponential clock), which is the same law as a daily coin toss.

    Args:
        base_monthly: monthly churn probability of a neutral user at the reference price.
        experience_coef: log-hazard per unit of experience (smoothed bad sessions a day).
        price_elasticity: log-hazard per log of price over the reference price.
        tenure_coef: log-hazard per log(1 + tenure in months).
        reference_price_usd_month: the price ``base_monthly`` was measured at.
    """

    def __init__(
        self,
        base_monthly: float = 0.03,
        experience_coef: float = 4.0,
        price_elasticity: float = 1.0,
        tenure_coef: float = -0.35,
        reference_price_usd_month: float = 0.0,
    ) -> None:
        self.base_monthly = base_monthly
        self.experience_coef = experience_coef
        self.price_elasticity = price_elasticity
        self.tenure_coef = tenure_coef
        self.reference_price_usd_month = reference_price_usd_month

    def log_base(self, price_usd_month: float) -> float:
        """Log of the daily hazard of a neutral, new user at this price."""
        h0 = -np.log1p(-self.base_monthly) / DAYS_PER_MONTH
        ref = self.reference_price_usd_month
        price_term = 0.0
        if ref > 0 and price_usd_month > 0:
            price_term = self.price_elasticity * np.log(price_usd_month / ref)
        return float(np.log(h0) + price_term)

    def predict(
        self, experience: NDArray, tenure_days: NDArray, price_usd_month: float
    ) -> NDArray[np.float32]:
        """Daily hazard of each user (float32, same shape as ``experience``)."""
        z = (
            np.float32(self.log_base(price_usd_month))
            + np.float32(self.experience_coef) * experience
        )
        z += np.float32(self.tenure_coef) * np.log1p(tenure_days * np.float32(1 / DAYS_PER_MONTH))
        return np.exp(z, out=z)


class Acquisition(Behaviour):
    """Expected new users per day.

    ``(base + wom · active) · (price / ref)^elasticity · exp(−penalty · experience)``

    Args:
        base_per_day: arrivals a day from marketing and search at the reference price.
        price_elasticity: arrivals respond to price with this elasticity (negative).
        word_of_mouth_per_user_day: arrivals a day brought by each active user.
        experience_penalty: damping of word of mouth by the segment's mean experience.
        reference_price_usd_month: the price ``base_per_day`` was measured at.
    """

    def __init__(
        self,
        base_per_day: float = 100.0,
        price_elasticity: float = -1.2,
        word_of_mouth_per_user_day: float = 0.0002,
        experience_penalty: float = 3.0,
        reference_price_usd_month: float = 0.0,
    ) -> None:
        self.base_per_day = base_per_day
        self.price_elasticity = price_elasticity
        self.word_of_mouth_per_user_day = word_of_mouth_per_user_day
        self.experience_penalty = experience_penalty
        self.reference_price_usd_month = reference_price_usd_month

    def predict(self, *, price_usd_month: float, active: float, experience: float) -> float:
        """Expected arrivals for one day."""
        ref = self.reference_price_usd_month
        price_factor = 1.0
        if ref > 0 and price_usd_month > 0:
            price_factor = (price_usd_month / ref) ** self.price_elasticity
        wom = (
            self.word_of_mouth_per_user_day * active * np.exp(-self.experience_penalty * experience)
        )
        return float((self.base_per_day + wom) * price_factor)
