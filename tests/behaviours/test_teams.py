"""Behaviours of teams (orgtwin/behaviours/teams.py): change failure and incident timing.

:class:`~orgtwin.behaviours.ChangeFailure` rises with the batch size and with fatigue
and equals its base for a one-change deploy by a rested team;
:class:`~orgtwin.behaviours.IncidentTiming` restores slower with fatigue and bigger
batches, faster with expertise, and its draws at a standard normal of 0 are its medians.
"""

from __future__ import annotations

import numpy as np
import pytest

from orgtwin import behaviours as bh


def is_increasing(values: np.ndarray) -> bool:
    return bool((np.diff(values) > 0).all())


def test_change_failure_rises_with_batch_and_fatigue():
    cf = bh.ChangeFailure(base=0.05, batch_coef=0.5, fatigue_coef=1.0)
    batches = np.array([1, 2, 5, 10, 50, 200])
    assert is_increasing(cf.predict_proba(batches, 0.0))
    fatigue = np.linspace(0.0, 2.0, 9)
    assert is_increasing(cf.predict_proba(np.full(9, 3), fatigue))
    assert float(cf.predict_proba(1, 0.0)) == pytest.approx(0.05)
    p = cf.predict_proba(batches, 5.0)
    assert ((p > 0) & (p < 1)).all()


@pytest.mark.parametrize(("batch", "fatigue"), [(1, 0.0), (3, 0.5), (40, 2.0), (0, 1.0)])
def test_change_failure_of_one_deploy_equals_that_of_a_batch_of_one(batch: int, fatigue: float):
    cf = bh.ChangeFailure(base=0.05, batch_coef=0.5, fatigue_coef=1.0)
    scalar = cf.predict_proba(batch, fatigue)
    assert isinstance(scalar, float)
    assert scalar == pytest.approx(float(cf.predict_proba(np.array([batch]), fatigue)[0]))


def test_restore_time_rises_with_fatigue_and_batch_and_falls_with_expertise():
    timing = bh.IncidentTiming()
    fatigue = [timing.restore_median(f, 1.0) for f in (0.0, 0.5, 1.0, 2.0)]
    batch = [timing.restore_median(0.0, 1.0, b) for b in (1, 2, 10, 100)]
    expertise = [timing.restore_median(0.0, e) for e in (0.5, 1.0, 1.5, 3.0)]
    assert is_increasing(np.array(fatigue)) and is_increasing(np.array(batch))
    assert is_increasing(-np.array(expertise))
    assert timing.restore_median(0.0, 1.0, 1) == pytest.approx(timing.restore_median_hours)
    rng = np.random.default_rng(0)
    at_median = timing.sample_restore(rng, fatigue=1.0, expertise=1.0, batch_size=4, normal=0.0)
    assert at_median == pytest.approx(timing.restore_median(1.0, 1.0, 4))
    assert timing.sample_detect(rng, normal=0.0) == pytest.approx(timing.detect_median_hours)


def test_restore_and_detect_times_stop_at_a_year_however_tired_the_responder():
    timing = bh.IncidentTiming(fatigue_coef=5.0, restore_sigma=3.0, detect_sigma=3.0)
    rng = np.random.default_rng(0)
    ceiling = bh.teams.MAX_INCIDENT_HOURS
    assert timing.restore_median(1_000.0, 1.0) == ceiling  # exp(5000) would be infinite
    tired = timing.sample_restore(rng, fatigue=1_000.0, expertise=1.0, normal=0.0)
    assert tired == ceiling
    assert timing.sample_restore(rng, fatigue=0.0, expertise=1.0, normal=-3.0) < ceiling
    assert timing.sample_detect(rng, normal=400.0) == ceiling
