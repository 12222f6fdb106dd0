"""Users: segments of individual customers, each user a slot in a set of numpy arrays.

A :class:`UserSegment` is one Mesa agent standing for every user who shares a plan, a
price and a time zone. Its users live in arrays (active, intensity, experience, tenure,
churn clock) so a day of a million users is a handful of vector operations.

Each hour the segment opens sessions by its hour-of-week profile and spreads them over
its features; the sessions meet the errors and latency of the services behind those
features. Each day every user's experience is updated from what the segment met, each
user churns by a hazard (experience, price, tenure), new users arrive by the acquisition
behaviour, and bad sessions turn into support tickets.

Churn uses an exponential clock: each user draws a threshold ``Exp(1)`` on arrival and
leaves when the hazard accumulated since then passes it. That is the same law as a daily
coin toss with ``p = 1 − exp(−hazard)``, costs no random numbers per user per day, and
keeps a user's fate aligned between two runs with the same seed (common random numbers),
so a comparison sees the change, not the noise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import mesa
import numpy as np

from orgtwin.units import DAYS_PER_MONTH, HOURS_PER_DAY, HOURS_PER_WEEK

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from orgtwin.behaviours import Acquisition, ChurnHazard, DemandProfile
    from orgtwin.scenario.organisation import SegmentSpec
    from orgtwin.telemetry.recording import EventLog


class UserSegment(mesa.Agent):
    """A segment of users with per-user state held in arrays.

    Args:
        model: the Mesa model the segment belongs to (for registration only).
        name: segment name.
        spec: the segment as the scenario declares it (plan, price, users, habits).
        feature_weights: share of sessions per feature, one entry per model feature.
        profile: behaviour with ``predict(hour_of_week)`` (relative rate, mean 1).
        churn: behaviour with ``predict(experience, tenure_days, price)`` (daily hazard).
        acquisition: behaviour with ``predict(price_usd_month=, active=, experience=)``.
        sample_size: users whose daily activity is recorded (the first slots).
        events: the run's event log (the sampled users' days are recorded there).
        new_ids: gives ``n`` fresh, unique user ids.
        rng: this segment's random generator.
    """

    def __init__(
        self,
        model: mesa.Model,
        *,
        name: str,
        spec: SegmentSpec,
        feature_weights: NDArray[np.float64],
        profile: DemandProfile,
        churn: ChurnHazard,
        acquisition: Acquisition,
        sample_size: int,
        events: EventLog,
        new_ids: Callable[[int], NDArray[np.int64]],
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.plan = spec.plan
        self.price_usd_month = float(spec.price_usd_month)
        self.sessions_per_user_day = float(spec.sessions_per_user_day)
        self.intensity_sigma = float(spec.intensity_sigma)
        self.feature_weights = np.asarray(feature_weights, dtype=float)
        self.churn = churn
        self.acquisition = acquisition
        self.tickets_per_bad_session = float(spec.tickets_per_bad_session)
        self.slow_session_ms = float(spec.slow_session_ms)
        self.memory = float(0.5 ** (1.0 / spec.churn.experience_half_life_days))
        self.events = events
        self.new_ids = new_ids
        self.stream = rng
        utc_hours = np.arange(HOURS_PER_WEEK)
        self.hourly_rate = profile.predict(utc_hours + spec.utc_offset_hours) / HOURS_PER_DAY
        self.burst_cv = float(getattr(profile, "burst_cv", 0.0))  # a replaced law may lack it
        self.intensity_total = 0.0  # sum of every active user's intensity, kept as users move
        n_users = spec.n_users
        self._allocate(max(16, int(n_users * 1.25)))
        self._arrive(n_users, tenure_mean_days=spec.initial_tenure_months_mean * DAYS_PER_MONTH)
        self.sample_size = min(int(sample_size), n_users)
        self._reset_day()
        self.churned_today = 0
        self.acquired_today = 0
        self.tickets_today = 0

    # ------------------------------------------------------------------ levers

    def set_price(self, price_usd_month: float) -> None:
        """Charge a new price from now on (churn and acquisition respond to it)."""
        self.price_usd_month = float(price_usd_month)

    def set_feature_share(self, feature: int, share: float) -> None:
        """Weight of one feature in the segment's sessions (0: the feature is not used)."""
        self.feature_weights[feature] = share

    # ------------------------------------------------------------------ state

    def _allocate(self, capacity: int) -> None:
        """Create (or grow) the per-user arrays; new slots start inactive."""
        old = getattr(self, "intensity", None)
        size = 0 if old is None else old.size
        grow = capacity - size

        def extend(name: str, fill: float, dtype: type) -> None:
            extra = np.full(grow, fill, dtype=dtype)
            current = getattr(self, name, None)
            setattr(self, name, extra if current is None else np.concatenate([current, extra]))

        extend("intensity", 0.0, np.float32)  # 0 for an empty slot
        extend("experience", 0.0, np.float32)  # smoothed bad sessions a day
        extend("tenure_days", 0.0, np.float32)
        extend("clock", 0.0, np.float32)  # hazard accumulated since arrival
        extend("threshold", np.inf, np.float32)  # churn when clock >= threshold
        extend("user_id", -1, np.int64)
        free = np.arange(capacity - 1, size - 1, -1, dtype=np.int64)
        old_free = getattr(self, "free_slots", np.empty(0, dtype=np.int64))
        self.free_slots = np.concatenate([free, old_free])

    @property
    def active_users(self) -> int:
        """Users currently subscribed."""
        return self.intensity.size - self.free_slots.size

    @property
    def paying(self) -> bool:
        """Whether this segment's users pay."""
        return self.price_usd_month > 0

    def _arrive(self, n: int, *, tenure_mean_days: float = 0.0) -> None:
        """Place ``n`` new users in free slots (lowest slots first)."""
        if n <= 0:
            return
        if n > self.free_slots.size:
            self._allocate(2 * self.intensity.size + n)
        slots = self.free_slots[-n:]
        self.free_slots = self.free_slots[:-n]
        sigma = self.intensity_sigma
        self.intensity[slots] = self.stream.lognormal(-0.5 * sigma * sigma, sigma, size=n)
        self.threshold[slots] = self.stream.standard_exponential(size=n, dtype=np.float32)
        self.tenure_days[slots] = (
            self.stream.exponential(tenure_mean_days, size=n) if tenure_mean_days > 0 else 0.0
        )
        self.experience[slots] = 0.0
        self.clock[slots] = 0.0
        self.user_id[slots] = self.new_ids(n)
        self.intensity_total += float(self.intensity[slots].sum(dtype=np.float64))

    def _leave(self, slots: NDArray[np.int64]) -> None:
        self.intensity_total -= float(self.intensity[slots].sum(dtype=np.float64))
        self.intensity[slots] = 0.0
        self.threshold[slots] = np.inf
        self.free_slots = np.concatenate([self.free_slots, slots[::-1]])

    def _reset_day(self) -> None:
        self.day_sessions = 0.0
        self.day_bad = 0.0
        self.day_latency_weighted = 0.0

    # ------------------------------------------------------------------ daily

    def end_day(self) -> None:
        """Update experience, churn, arrivals and tickets at the end of a day."""
        bad_share = self.day_bad / self.day_sessions if self.day_sessions > 0 else 0.0
        daily_bad = np.float32(self.sessions_per_user_day * bad_share * (1.0 - self.memory))
        self.experience *= np.float32(self.memory)
        self.experience += daily_bad * self.intensity
        hazard = self.churn.predict(self.experience, self.tenure_days, self.price_usd_month)
        self.clock += hazard
        churned = np.flatnonzero(self.clock >= self.threshold)
        self._record_sample(churned, bad_share)
        self._leave(churned)
        self.tenure_days += np.float32(1.0)
        self.churned_today = int(churned.size)
        mean_experience = self.sessions_per_user_day * bad_share
        expected = self.acquisition.predict(
            price_usd_month=self.price_usd_month,
            active=self.active_users,
            experience=mean_experience,
        )
        self.acquired_today = int(self.stream.poisson(expected))
        self._arrive(self.acquired_today)
        self.tickets_today = int(self.stream.poisson(self.day_bad * self.tickets_per_bad_session))
        self._reset_day()

    def _record_sample(self, churned: NDArray[np.int64], bad_share: float) -> None:
        """Record the day's activity of the sampled users (the first slots)."""
        k = self.sample_size
        if k == 0 or self.day_sessions <= 0:
            return
        live = np.flatnonzero(self.intensity[:k] > 0)
        per_intensity = self.day_sessions / max(self.intensity_total, 1e-9)
        sessions = self.stream.poisson(self.intensity[live] * per_intensity)
        errors = self.stream.binomial(sessions, min(max(bad_share, 0.0), 1.0))
        left = np.zeros(k, dtype=bool)
        left[churned[churned < k]] = True
        self.events.user_day(
            segment=self.name,
            plan=self.plan,
            price=self.price_usd_month,
            user=self.user_id[live],
            sessions=sessions,
            errors=errors,
            latency=self.day_latency_weighted / self.day_sessions,
            churned=left[live],
            tenure=self.tenure_days[live],
        )


class SegmentBlock:
    """Every segment's hourly figures stacked, so an hour of all users is a few array ops.

    The block owns the feature-weight matrix: each segment's ``feature_weights`` becomes a
    row view of it, so a change to one segment's weights (a feature launch) is seen here.
    Intensity totals and active users change only when users arrive or leave, at the end
    of a day; :meth:`refresh` reads them again then.

    Args:
        segments: the segments, in model order.
    """

    def __init__(self, segments: list[UserSegment]) -> None:
        self.segments = list(segments)
        self.weights = np.array([s.feature_weights for s in self.segments], dtype=float)
        for i, segment in enumerate(self.segments):
            segment.feature_weights = self.weights[i]
        rates = [s.hourly_rate * s.sessions_per_user_day for s in self.segments]
        self.rates = np.array(rates).T  # [hour of week, segment]: sessions per unit intensity
        self.tolerance = np.array([[s.slow_session_ms] for s in self.segments])
        burst = np.array([s.burst_cv for s in self.segments])
        self.bursty = np.flatnonzero(burst > 0)
        self.burst_shape = 1.0 / burst[self.bursty] ** 2  # gamma factor: mean 1, CV burst
        self.refresh()

    def refresh(self) -> None:
        """Read every segment's users and total intensity again (after arrivals and churn).

        Users arrive and leave only at the end of a day, so these hold for the whole day.
        """
        self.intensity = np.array([s.intensity_total for s in self.segments])
        self.active = np.array([s.active_users for s in self.segments], dtype=float)

    def open_sessions(self, hour_of_week: int, surge: NDArray, rng: np.random.Generator) -> NDArray:
        """Sessions this hour of every segment on every feature: Poisson around the
        profile, the rate of a bursty segment first scaled by its hour's gamma factor."""
        expected = (self.intensity * self.rates[hour_of_week])[:, None] * self.weights
        expected *= surge
        if self.bursty.size:  # no draw otherwise: Poisson segments keep their streams
            factor = rng.gamma(self.burst_shape, 1.0 / self.burst_shape)
            expected[self.bursty] *= factor[:, None]
        return rng.poisson(expected).astype(float)

    def impose_sessions(self, drawn: NDArray, observed: NDArray, surge: NDArray) -> NDArray:
        """The hour's sessions with each segment's total set to ``observed`` (``NaN``:
        the drawn ones kept), split across features by its weights and the surges."""
        shares = self.weights * surge
        totals = shares.sum(axis=1, keepdims=True)
        shares = np.divide(shares, totals, out=np.zeros_like(shares), where=totals > 0)
        seen = np.isfinite(observed)
        out = drawn.copy()
        out[seen] = observed[seen, None] * shares[seen]
        return out

    def meet_service(
        self, sessions: NDArray, bad_share: NDArray, latency_p95_ms: NDArray
    ) -> NDArray:
        """Every segment takes in one hour of service quality; returns each one's bad sessions.

        A session is bad if a request failed or the feature was slower (p95) than the
        segment tolerates.
        """
        share = np.where(latency_p95_ms > self.tolerance, 1.0, bad_share)
        bad = (sessions * share).sum(axis=1)
        totals = sessions.sum(axis=1)
        latency = sessions @ latency_p95_ms
        for i, segment in enumerate(self.segments):
            segment.day_sessions += totals[i]
            segment.day_bad += bad[i]
            segment.day_latency_weighted += latency[i]
        return bad
