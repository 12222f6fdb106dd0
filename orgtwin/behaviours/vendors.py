"""Behaviours of vendors: when outages happen and how long they last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from orgtwin.behaviours.base import Behaviour
from orgtwin.scenario.organisation import VendorSpec
from orgtwin.units import HOURS_PER_MONTH

_VENDOR = VendorSpec()


class VendorOutages(Behaviour):
    """Vendor outages as a Poisson process with exponential durations.

    Args:
        rate_per_month: expected outages per 30.4-day month.
        hours_mean: mean outage length, hours.
    """

    spec = VendorSpec
    spec_fields: ClassVar[Mapping[str, str]] = {
        "rate_per_month": "outage_rate_per_month",
        "hours_mean": "outage_hours_mean",
    }

    def __init__(
        self,
        rate_per_month: float = _VENDOR.outage_rate_per_month,
        hours_mean: float = _VENDOR.outage_hours_mean,
    ) -> None:
        self.rate_per_month = rate_per_month
        self.hours_mean = hours_mean

    def sample(self, rng: np.random.Generator, horizon_hours: int) -> list[tuple[int, int]]:
        """Outages over ``horizon_hours`` as ``(start_hour, end_hour)`` pairs (end exclusive)."""
        rate_per_hour = self.rate_per_month / HOURS_PER_MONTH
        n = int(rng.poisson(rate_per_hour * horizon_hours))
        starts = np.sort(rng.integers(0, horizon_hours, size=n))
        lengths = np.maximum(1, np.rint(rng.exponential(self.hours_mean, size=n))).astype(int)
        return [
            (int(s), int(min(s + d, horizon_hours))) for s, d in zip(starts, lengths, strict=True)
        ]
