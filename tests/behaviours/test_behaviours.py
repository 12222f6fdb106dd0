"""Behaviours: each law moves the way the design says, and each is a proper estimator.

The laws are checked on their own (no model) and, for overload, end to end: a service
pushed to three times its capacity rejects about two thirds of its requests, keeps a
finite latency, and opens a capacity incident that closes when the load falls back.
"""

from __future__ import annotations

import inspect
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from orgtwin import behaviours as bh
from orgtwin import load_scenario, simulate
from orgtwin.units import DAYS_PER_MONTH

U = np.linspace(0.0, 0.97, 98)


def is_increasing(values: np.ndarray) -> bool:
    return bool((np.diff(values) > 0).all())


# --------------------------------------------------------------------------- latency


def test_latency_rises_with_utilisation():
    curve = bh.LatencyCurve(base_ms=20.0, queueing_factor=1.5, timeout_ms=1e9)
    p50, p95 = curve.predict_quantiles(U)
    assert is_increasing(p50) and is_increasing(p95)
    assert p50[0] == pytest.approx(20.0)
    assert (p95 >= p50).all()
    np.testing.assert_allclose(curve.predict_p95(U), p95)


@pytest.mark.parametrize("u", [0.98, 1.0, 1.5, 3.0, 100.0, np.inf])
def test_latency_is_finite_and_capped_at_and_above_capacity(u: float):
    curve = bh.LatencyCurve(base_ms=50.0, queueing_factor=2.0, timeout_ms=3000.0)
    p50, p95 = curve.predict_quantiles(np.array([u]))
    assert np.isfinite(p50).all() and np.isfinite(p95).all()
    assert p50[0] <= 3000.0 and p95[0] <= 3000.0
    assert p50[0] >= curve.predict(np.array([0.9]))[0], "overload is never faster than load"


def test_overload_error_is_the_rejected_excess():
    u = np.array([0.0, 0.5, 0.999, 1.0, 1.25, 2.0, 3.0, 10.0])
    expected = np.where(u > 1, 1 - 1 / np.maximum(u, 1), 0.0)
    np.testing.assert_allclose(bh.LatencyCurve.overload_error(u), expected)
    assert bh.LatencyCurve.overload_error(np.array([3.0]))[0] == pytest.approx(2 / 3)
    assert (bh.LatencyCurve.overload_error(u[u <= 1]) == 0).all()


OVERLOAD_START, OVERLOAD_END = 24, 48
SURGE = 6.0  # 0.5 → 3 times capacity


def overload_spec() -> dict:
    """One leaf service at half its capacity, flat demand; a ×6 surge on day 1."""
    return {
        "name": "overload",
        "days": 3,
        "segments": {
            "all": {
                "n_users": 10000,
                "sessions_per_user_day": 24,  # 10,000 sessions an hour
                "intensity_sigma": 0.0,
                "features": {"use": 1.0},
                "demand_profile": {"night_level": 1.0, "weekend_level": 1.0},
                "churn": {"experience_coef": 0.0},
                "acquisition": {"base_per_day": 0, "word_of_mouth_per_user_day": 0},
            }
        },
        "features": {"use": {"entry": "api", "requests_per_session": 0.36}},  # 1 rps
        "services": {
            "api": {
                "team": "ops",
                "replicas": 2,
                "capacity_rps_per_replica": 1.0,
                "base_error_rate": 0.0,
                "latency": {"base_ms": 20, "timeout_ms": 2000, "p95_over_p50": 3},
                "autoscale": {"enabled": False},
            }
        },
        "teams": {"ops": {"headcount": 3, "oncall_size": 2, "changes_per_engineer_day": 0}},
        "interventions": [
            {"kind": "traffic_surge", "multiplier": SURGE,
             "at": f"{OVERLOAD_START}h", "until": f"{OVERLOAD_END}h"}
        ],
    }  # fmt: skip


def test_a_service_at_three_times_capacity_rejects_two_thirds():
    run = simulate(load_scenario(overload_spec()), seed=1)

    def metric(name: str) -> np.ndarray:
        frame = run.series.filter(
            (pl.col("entity_type") == "service") & (pl.col("metric") == name)
        ).sort("tick")
        return frame["value"].to_numpy()

    u, error = metric("utilisation"), metric("error_rate")
    p50, p95 = metric("latency_p50_ms"), metric("latency_p95_ms")
    surge = slice(OVERLOAD_START, OVERLOAD_END)
    assert u[surge].mean() == pytest.approx(3.0, rel=0.02)
    assert u[:OVERLOAD_START].mean() == pytest.approx(0.5, rel=0.02)
    np.testing.assert_allclose(error, np.where(u > 1, 1 - 1 / u, 0.0), atol=1e-12)
    assert error[surge].mean() == pytest.approx(2 / 3, abs=0.01)
    assert (error[:OVERLOAD_START] == 0).all() and (error[OVERLOAD_END:] == 0).all()
    assert np.isfinite(p95).all() and (p95 <= 2000.0).all()
    assert p50[surge] == pytest.approx(20 * (1 + 0.98 / 0.02)), "queue full, not infinite"
    capacity = run.events["incidents"].filter(pl.col("cause") == "capacity")
    assert capacity.height == 1
    assert capacity["started"][0] == run.start + timedelta(hours=OVERLOAD_START)
    assert capacity["resolved"][0] == run.start + timedelta(hours=OVERLOAD_END)


# --------------------------------------------------------------------------- teams


def test_change_failure_rises_with_batch_and_fatigue():
    cf = bh.ChangeFailure(base=0.05, batch_coef=0.5, fatigue_coef=1.0)
    batches = np.array([1, 2, 5, 10, 50, 200])
    assert is_increasing(cf.predict_proba(batches, 0.0))
    fatigue = np.linspace(0.0, 2.0, 9)
    assert is_increasing(cf.predict_proba(np.full(9, 3), fatigue))
    assert float(cf.predict_proba(1, 0.0)) == pytest.approx(0.05)
    p = cf.predict_proba(batches, 5.0)
    assert ((p > 0) & (p < 1)).all()


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


# --------------------------------------------------------------------------- users


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


# --------------------------------------------------------------------------- vendors


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


# --------------------------------------------------------------------------- estimators

NON_DEFAULT = {
    bh.DemandProfile: {"peak_hour": 9, "night_level": 0.3, "weekend_level": 0.8},
    bh.LatencyCurve: {"base_ms": np.array([5.0, 9.0]), "queueing_factor": 2.0,
                      "timeout_ms": 900.0, "p95_over_p50": 4.0, "u_max": 0.95},
    bh.ChangeFailure: {"base": 0.1, "batch_coef": 0.3, "fatigue_coef": 0.2},
    bh.IncidentTiming: {"detect_median_hours": 1.0, "detect_sigma": 0.1,
                        "restore_median_hours": 2.0, "restore_sigma": 0.2, "fatigue_coef": 0.3,
                        "expertise_coef": 0.4, "batch_coef": 0.5},
    bh.VendorOutages: {"rate_per_month": 3.0, "hours_mean": 4.0},
    bh.ChurnHazard: {"base_monthly": 0.05, "experience_coef": 2.0, "price_elasticity": 0.5,
                     "tenure_coef": -0.1, "reference_price_usd_month": 9.0},
    bh.Acquisition: {"base_per_day": 7.0, "price_elasticity": -0.5,
                     "word_of_mouth_per_user_day": 0.001, "experience_penalty": 1.0,
                     "reference_price_usd_month": 9.0},
}  # fmt: skip


def test_every_behaviour_is_covered():
    declared = {
        obj
        for _, obj in inspect.getmembers(bh, inspect.isclass)
        if issubclass(obj, bh.Behaviour) and obj is not bh.Behaviour
    }
    assert declared == set(NON_DEFAULT)


@pytest.mark.parametrize("cls", list(NON_DEFAULT), ids=lambda c: c.__name__)
def test_behaviours_store_only_their_arguments_and_clone(cls: type):
    params = NON_DEFAULT[cls]
    signature = inspect.signature(cls.__init__).parameters
    assert set(params) == set(signature) - {"self"}, "the test names every argument"
    obj = cls(**params)
    assert set(vars(obj)) == set(params), "__init__ stores its arguments and nothing else"
    got = obj.get_params()
    assert set(got) == set(params)
    for name, value in params.items():
        assert got[name] is value
    twin = clone(obj)
    assert type(twin) is cls and twin is not obj
    for name, value in twin.get_params().items():
        np.testing.assert_array_equal(value, params[name])
    default = cls()
    assert set(default.get_params()) == set(params)
    default.set_params(**params)
    assert default.get_params() == got
