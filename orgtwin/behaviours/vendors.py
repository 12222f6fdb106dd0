"""Behaviours of vendors: when outages happen and how long they last."""

from __future__ import annotations

import numpy as np

from orgtwin.behaviours.base import Behaviour
from orgtwin.units import DAYS_PER_MONTH


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
