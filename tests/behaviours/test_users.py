"""Behaviours of users (orgtwin/behaviours/users.py): demand, churn and acquisition.

:class:`~orgtwin.behaviours.DemandProfile` has mean 1 over a week and peaks at its peak
hour; :class:`~orgtwin.behaviours.ChurnHazard` rises with bad experience and price and
falls with tenure, and gives its monthly base rate for a neutral user;
:class:`~orgtwin.behaviours.Acquisition` falls with price and bad experience.
"""

from __future__ import annotations

import numpy as np
import pytest

from orgtwin import behaviours as bh
from orgtwin.units import DAYS_PER_MONTH


def is_increasing(values: np.ndarray) -> bool:
    return bool((np.diff(values) > 0).all())


def test_churn_hazard_rises_with_experience_and_price_and_falls_with_tenure():
    churn = bh.ChurnHazard(reference_price_usd_month=10.0)
    zeros = np.zeros(5, dtype=np.float32)
    experience = np.linspace(0, 1, 5, dtype=np.float32)
    tenure = np.array([0, 30, 180, 365, 1000], dtype=np.float32)
    assert is_increasing(churn.predict(experience, zeros, 10.0))
    assert is_increasing(-churn.predict(zeros, tenure, 10.0))
    by_price = [churn.predict(zeros[:1], zeros[:1], p)[0] for p in (5.0, 10.0, 15.0, 30.0)]
    assert is_increasing(np.array(by_price))
    neutral = float(churn.predict(zeros[:1], zeros[:1], 10.0)[0])
    monthly = 1 - np.exp(-neutral * DAYS_PER_MONTH)
    assert monthly == pytest.approx(churn.base_monthly, rel=1e-5)


def test_acquisition_falls_with_price_and_bad_experience():
    acq = bh.Acquisition(reference_price_usd_month=12.0)
    by_price = [acq.predict(price_usd_month=p, active=1e5, experience=0.0) for p in (6, 12, 15, 30)]
    assert is_increasing(-np.array(by_price))
    assert by_price[1] == pytest.approx(acq.base_per_day + acq.word_of_mouth_per_user_day * 1e5)
    by_experience = [acq.predict(price_usd_month=12, active=1e5, experience=e) for e in (0, 1, 2)]
    assert is_increasing(-np.array(by_experience))


@pytest.mark.parametrize("peak_hour", [0, 9, 14, 23])
def test_demand_profile_has_mean_one_and_peaks_at_peak_hour(peak_hour: int):
    profile = bh.DemandProfile(peak_hour=peak_hour, night_level=0.2, weekend_level=0.5)
    week = profile.predict(np.arange(168))
    assert week.mean() == pytest.approx(1.0)
    for day in range(5):
        assert int(week[day * 24 : (day + 1) * 24].argmax()) == peak_hour
    assert week[5 * 24 + peak_hour] == pytest.approx(0.5 * week[peak_hour])
    np.testing.assert_allclose(profile.predict(np.arange(168) + 168), week)


def test_a_churn_spec_without_a_pinned_price_has_no_price_term():
    from orgtwin.scenario.organisation import ChurnSpec

    unpinned = bh.ChurnHazard.from_spec(ChurnSpec())
    pinned = bh.ChurnHazard.from_spec(ChurnSpec(reference_price_usd_month=10.0))
    assert unpinned.reference_price_usd_month == 0.0
    assert unpinned.log_base(40.0) == unpinned.log_base(5.0)
    assert pinned.log_base(20.0) > pinned.log_base(10.0)


@pytest.mark.filterwarnings("error")
def test_a_segment_nobody_leaves_on_their_own_has_zero_hazard_without_warnings():
    hazard = bh.ChurnHazard(base_monthly=0.0, experience_coef=1.0)
    assert hazard.log_base(10.0) == -np.inf
    daily = hazard.predict(np.full(4, 3.0, dtype=np.float32), np.zeros(4), 10.0)
    assert (daily == 0.0).all()
