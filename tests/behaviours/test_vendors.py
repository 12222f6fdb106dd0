"""Behaviours of vendors (orgtwin/behaviours/vendors.py): outages as a Poisson process.

Over a long horizon and several seeds, :class:`~orgtwin.behaviours.VendorOutages` draws
as many outages as its monthly rate says (within four standard deviations of a Poisson
count), in time order, inside the horizon, at least an hour long and as long as its
mean on average.
"""

from __future__ import annotations

import numpy as np
import pytest

from orgtwin import behaviours as bh
from orgtwin.units import DAYS_PER_MONTH


def test_vendor_outage_count_matches_its_rate():
    outages = bh.VendorOutages(rate_per_month=2.0, hours_mean=3.0)
    horizon = int(1000 * DAYS_PER_MONTH * 24)  # 1,000 months
    expected = 2.0 * 1000
    for seed in range(3):
        windows = outages.sample(np.random.default_rng(seed), horizon)
        assert abs(len(windows) - expected) < 4 * np.sqrt(expected)
        starts = np.array([s for s, _ in windows])
        lengths = np.array([e - s for s, e in windows])
        assert (np.diff(starts) >= 0).all() and starts.min() >= 0
        assert (lengths >= 1).all() and max(e for _, e in windows) <= horizon
        assert lengths.mean() == pytest.approx(3.0, rel=0.1)
