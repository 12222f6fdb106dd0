"""Behaviours of users: when sessions happen, who churns, who arrives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel

from orgtwin.behaviours.base import Behaviour
from orgtwin.scenario.organisation import AcquisitionSpec, ChurnSpec, DemandProfileSpec
from orgtwin.units import DAYS_PER_MONTH, HOURS_PER_DAY, HOURS_PER_WEEK, WORKWEEK_HOURS

_DEMAND, _CHURN, _ACQUISITION = DemandProfileSpec(), ChurnSpec(), AcquisitionSpec()


class DemandProfile(Behaviour):
    """Relative session rate by local hour of the week (mean 1 over a week).

    Weekdays follow a raised-cosine day around ``peak_hour`` over a night floor;
    weekends are the weekday shape scaled by ``weekend_level``. A ``profile`` (168
    relative rates from Monday 00:00, as a learner gives) replaces that form when set.

    Args:
        peak_hour: local hour (0–23) of the daily peak.
        night_level: rate at the quietest hour relative to the peak (0–1].
        weekend_level: weekend rate relative to weekdays.
        profile: 168 positive relative rates by hour of the week, or None for the
            parametric form; rescaled to mean 1.
        burst_cv: coefficient of variation of each hour's rate around the profile (0:
            Poisson arrivals); the segment draws the hour's gamma factor.

    Example:
        >>> p = DemandProfile(peak_hour=14).predict(np.arange(168))
        >>> round(float(p.mean()), 6), int(p[:24].argmax())
        (1.0, 14)
    """

    spec = DemandProfileSpec

    def __init__(
        self,
        peak_hour: int = _DEMAND.peak_hour,
        night_level: float = _DEMAND.night_level,
        weekend_level: float = _DEMAND.weekend_level,
        profile: Sequence[float] | None = _DEMAND.profile,
        burst_cv: float = _DEMAND.burst_cv,
    ) -> None:
        self.peak_hour = peak_hour
        self.night_level = night_level
        self.weekend_level = weekend_level
        self.profile = profile
        self.burst_cv = burst_cv

    def _week(self) -> NDArray[np.float64]:
        if self.profile is not None:
            week = np.asarray(self.profile, dtype=float)
            if week.shape != (HOURS_PER_WEEK,):
                raise ValueError(f"profile must hold 168 rates, got shape {week.shape}")
            return week / week.mean()
        hours = np.arange(HOURS_PER_WEEK)
        hour_of_day = hours % HOURS_PER_DAY
        distance = np.minimum(
            np.abs(hour_of_day - self.peak_hour), 24 - np.abs(hour_of_day - self.peak_hour)
        )
        day_shape = 0.5 * (1.0 + np.cos(np.pi * np.clip(distance / 12.0, 0.0, 1.0)))
        rate = self.night_level + (1.0 - self.night_level) * day_shape**1.5
        weekend = hours >= WORKWEEK_HOURS  # hour-of-week 0 is Monday 00:00
        rate = np.where(weekend, rate * self.weekend_level, rate)
        return rate / rate.mean()

    def predict(self, hour_of_week: ArrayLike) -> NDArray[np.float64]:
        """Relative rate (mean 1 over a week) at each local hour of the week."""
        return self._week()[np.asarray(hour_of_week, dtype=int) % HOURS_PER_WEEK]


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

    spec = ChurnSpec

    def __init__(
        self,
        base_monthly: float = _CHURN.base_monthly,
        experience_coef: float = _CHURN.experience_coef,
        price_elasticity: float = _CHURN.price_elasticity,
        tenure_coef: float = _CHURN.tenure_coef,
        reference_price_usd_month: float = 0.0,
    ) -> None:
        self.base_monthly = base_monthly
        self.experience_coef = experience_coef
        self.price_elasticity = price_elasticity
        self.tenure_coef = tenure_coef
        self.reference_price_usd_month = reference_price_usd_month

    @classmethod
    def from_spec(cls, spec: BaseModel, **params: Any) -> ChurnHazard:
        """The hazard a :class:`~orgtwin.scenario.organisation.ChurnSpec` declares.

        A spec's reference price left unset (``None``: the loader pins it to the
        segment's price) becomes 0: no price term, unless ``params`` gives one.
        """
        reference = getattr(spec, "reference_price_usd_month", None)
        params.setdefault("reference_price_usd_month", reference or 0.0)
        return super().from_spec(spec, **params)

    def log_base(self, price_usd_month: float) -> float:
        """Log of the daily hazard of a neutral, new user at this price."""
        h0 = -np.log1p(-self.base_monthly) / DAYS_PER_MONTH
        if h0 <= 0.0:  # nobody leaves on their own
            return -np.inf
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

    spec = AcquisitionSpec

    def __init__(
        self,
        base_per_day: float = _ACQUISITION.base_per_day,
        price_elasticity: float = _ACQUISITION.price_elasticity,
        word_of_mouth_per_user_day: float = _ACQUISITION.word_of_mouth_per_user_day,
        experience_penalty: float = _ACQUISITION.experience_penalty,
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
