"""Behaviours of services (orgtwin/behaviours/services.py): the latency curve and overload.

:class:`~orgtwin.behaviours.LatencyCurve` is checked on its own (latency rises with load,
stays finite and capped at and above capacity, overload becomes rejected requests) and
end to end: a service pushed to three times its capacity rejects about two thirds of its
requests, keeps a finite latency, and opens a capacity incident that closes when the
load falls back. :class:`~orgtwin.behaviours.LatencyComposition` (how latency adds up
along calls) is checked against a simulation of requests, and undone by
:func:`~orgtwin.behaviours.services.own_quantiles`.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from orgtwin import behaviours as bh
from orgtwin import load_scenario, simulate
from orgtwin.behaviours.services import own_quantiles
from orgtwin.scenario.organisation import LatencySpec

U = np.linspace(0.0, 0.97, 98)


def is_increasing(values: np.ndarray) -> bool:
    return bool((np.diff(values) > 0).all())


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


def test_one_curve_from_several_specs_is_each_specs_curve_in_order():
    specs = [
        LatencySpec(base_ms=10.0, queueing_factor=0.5, timeout_ms=400.0, p95_over_p50=3.0),
        LatencySpec(),
        LatencySpec(base_ms=80.0, queueing_factor=2.0, timeout_ms=9000.0, p95_over_p50=1.5),
    ]
    together = bh.LatencyCurve.from_specs(specs, u_max=0.9)
    assert together.u_max == 0.9
    for u in (0.0, 0.5, 0.95, 2.0):
        p50, p95 = together.predict_quantiles(np.full(len(specs), u))
        for i, spec in enumerate(specs):
            alone = bh.LatencyCurve.from_spec(spec, u_max=0.9)
            one_p50, one_p95 = alone.predict_quantiles(np.array([u]))
            assert p50[i] == pytest.approx(one_p50[0]) and p95[i] == pytest.approx(one_p95[0])


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


# --------------------------------------------------------------------------- composition

# A front calls a middle 2.5 times a request and a leaf 4 times; the middle calls the leaf
# 0.5 times (a request makes ⌊F⌋ or ⌈F⌉ calls) and a vendor of 40 ms 1.2 times.
FANOUT = np.array([[0.0, 2.5, 4.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
VENDORS = np.array([[0.0], [1.2], [0.0]])
VENDOR_MS = np.array([40.0])
OWN_P50 = np.array([20.0, 15.0, 8.0])
OWN_P95 = np.array([60.0, 30.0, 40.0])


def simulated_requests(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Each service's latency over ``n`` simulated requests: own lognormal draws, calls
    made ⌊F⌋ or ⌈F⌉ times, each call an independent request to the callee."""
    sigma = np.log(OWN_P95 / OWN_P50) / 1.6448536269514722

    def calls(f: float, size: int) -> np.ndarray:
        return (np.floor(f) + (rng.random(size) < f - np.floor(f))).astype(int)

    def latency(service: int, size: int) -> np.ndarray:
        total = OWN_P50[service] * np.exp(sigma[service] * rng.standard_normal(size))
        total += calls(VENDORS[service, 0], size) * VENDOR_MS[0]
        for callee in np.flatnonzero(FANOUT[service]):
            count = calls(FANOUT[service, callee], size)
            draws = latency(callee, int(count.sum()))
            total += np.bincount(np.repeat(np.arange(size), count), draws, minlength=size)
        return total

    return [latency(service, n) for service in range(3)]


def test_latency_adds_up_along_calls_as_simulated_requests_do():
    """The composed mean is exact (within four standard errors of 100,000 simulated
    requests, over three seeds) and the p95 within 3% of theirs. The median is the
    lognormal reading's weak side: within 3% on the front, whose ten-odd calls sum to a
    near-lognormal, but the middle's one or two vendor calls of 40 ms make a two-humped
    latency whose median lies 8% below the reading's. The front's p95 is far below the
    sum of its calls' p95s, which is what the twin used to add."""
    composition = bh.LatencyComposition(FANOUT, VENDORS)
    p50, p95 = composition.total(OWN_P50, OWN_P95, VENDOR_MS)
    mean, _ = bh.services.lognormal_moments(p50, p95)
    for seed in (1, 2, 3):
        requests = simulated_requests(np.random.default_rng(seed), 100_000)
        for service, latency in enumerate(requests):
            error = latency.std() / np.sqrt(latency.size)
            assert abs(latency.mean() - mean[service]) < 4 * error, (seed, service)
            assert np.quantile(latency, 0.95) == pytest.approx(p95[service], rel=0.03)
            median = (0.03, 0.1, 0.03)[service]
            assert np.quantile(latency, 0.5) == pytest.approx(p50[service], rel=median)
    summed = np.linalg.inv(np.eye(3) - FANOUT) @ (OWN_P95 + VENDORS @ VENDOR_MS)
    assert p95[0] < 0.8 * summed[0], (p95[0], summed[0])
    assert (p50[2], p95[2]) == (OWN_P50[2], OWN_P95[2]), "a service that calls nothing: its own"


def test_own_quantiles_undo_the_composition():
    """From every service's composed quantiles, each one's own quantiles come back."""
    composition = bh.LatencyComposition(FANOUT, VENDORS)
    p50, p95 = composition.total(OWN_P50, OWN_P95, VENDOR_MS)
    vendor_mean, vendor_var = composition.vendors(VENDOR_MS)
    for service in range(3):
        callees = np.flatnonzero(FANOUT[service])
        own_p50, own_p95 = own_quantiles(
            p50[service : service + 1], p95[service : service + 1], FANOUT[service, callees],
            p50[None, callees], p95[None, callees], vendor_mean[service], vendor_var[service],
        )  # fmt: skip
        assert own_p50[0] == pytest.approx(OWN_P50[service], rel=1e-9), service
        assert own_p95[0] == pytest.approx(OWN_P95[service], rel=1e-9), service


def test_calls_vary_as_little_as_their_mean_allows():
    assert bh.services.count_variance([0.0, 1.0, 3.0]).tolist() == [0.0, 0.0, 0.0]
    assert bh.services.count_variance([0.5, 2.25]) == pytest.approx([0.25, 0.1875])
