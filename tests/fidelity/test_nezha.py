"""The drift watch against Nezha's 24 injected faults (real data; skips without them).

The twin learns its latency on the fault-free 08:00–18:00 of 2022-08-22 and watches the
day with that window as its reference (:func:`tests.fidelity.nezha.nezha_watch_figures`);
false alarms are counted on 18:00–24:00, which learning never saw. The target of the
issue is 20 of the 24 faults within 5 minutes at no more than one false alarm per
fault-free hour. Measured (budget one false alarm an hour over the four behaviours the
pod metrics feed, ``k`` 1, residuals clipped at ±4 sd, null streams pooled per
behaviour): 21 of 24 within 5 minutes, 0.5 false alarms an hour on the evening (0.33 to
0.83 over null-simulation seeds 0–4, 21 of 24 at each); the plain threshold detector on
the raw metrics, calibrated to the same budget on the learning window, 14 of 24 at 2.8
false alarms an hour. Every ``cpu_contention`` and ``cpu_consumed`` fault is caught
(utilisation against load, latency against utilisation), 2 of 3 ``return`` and 2 of 3
``exception`` faults (calls or latency move), and 6 of 7 ``network_delay`` faults: the
delay is on the faulted pod's network, so its own server latency holds, and its callers
wait longer on their calls than the callees' server latency explains (the client
latency stream). The one missed is checkout's: its only caller, the frontend, makes
fewer than 1% of its calls to it (0.035 of about 10 a request), too few to move the
p95 of its wait. The other two missed are the frontend's ``exception`` and adservice's
``return``. Before the client latency
stream: 16 of 24, 1 of 7 ``network_delay``. The test asserts the target (a margin of
one fault), the budget, the network delays caught (a margin of one), and at least as
many as the threshold detector.

The replay scorecard of the same evening (:func:`tests.fidelity.nezha.nezha_replay_figures`):
the twin learned on 08:00–18:00, fed the frontend's requests, mirrors every other
service's hourly requests better than persistence. Its latency mirrors on every
service (median MAPE 1.5%, no line biased, since latency adds up along calls by moments
and the learner takes own latency out the same way) but does not beat persistence
(0.9%) on an evening whose load never moves (an expected failure, with the figures).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from orgtwin.behaviours import LatencyCurve
from orgtwin.fidelity.residuals import residuals
from orgtwin.scenario import load_scenario
from tests.fidelity.nezha import (
    BASE,
    LEARN,
    describe,
    nezha_replay_figures,
    nezha_requests,
    nezha_watch_figures,
)
from tests.learn.real_data import NEZHA, nezha_dependencies, require


def test_the_nezha_base_scenario_loads_with_the_shops_services_and_calls() -> None:
    """The base twin names Nezha's ten services, one team owning them, and the calls of
    ``dependency.csv`` between services (no more, no fewer)."""
    scenario = load_scenario(BASE)
    assert len(scenario.services) == 10 and list(scenario.teams) == ["boutique"]
    edges = {(a, b) for a, spec in scenario.services.items() for b in spec.calls}
    require(f"{NEZHA}/fault/metric/dependency.csv")
    assert edges == nezha_dependencies()


def test_without_a_median_the_latency_stream_compares_the_95th_percentile() -> None:
    """Nezha's mapped metrics have p95 but no median: the latency stream compares each
    service's own p95 with the curve's p95 (``p95_over_p50`` times the median)."""
    requests, _ = nezha_requests()
    requests = requests.drop("latency_p50_ms").filter(pl.col("time") < LEARN[0])
    twin = load_scenario(BASE)
    points = residuals(twin, {"requests": requests}).filter(pl.col("behaviour") == "latency")
    assert set(points["entity"]) == set(twin.services)
    shipping = points.filter(pl.col("entity") == "shippingservice")  # calls nothing
    cpu = requests.filter(pl.col("service") == "shippingservice").sort("time")
    cpu = cpu.filter(pl.col("time").is_in(shipping["time"].implode()))
    curve = LatencyCurve.from_spec(twin.services["shippingservice"].latency)
    assert np.allclose(shipping["expected"], curve.predict_p95(cpu["cpu"].to_numpy()))
    assert np.allclose(shipping["observed"], cpu["latency_p95_ms"])


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    require(f"{NEZHA}/fault/fault_list.json")
    return nezha_watch_figures()


def test_the_client_latency_stream_follows_the_services_that_call_others() -> None:
    """The frontend, checkout and recommendation call other services; their client
    latency (the wait on their calls) is watched against their callees' latency."""
    requests, _ = nezha_requests()
    requests = requests.filter(pl.col("time") < LEARN[0])
    twin = load_scenario(BASE)
    points = residuals(twin, {"requests": requests}).filter(pl.col("behaviour") == "client_latency")
    callers = {name for name, spec in twin.services.items() if spec.calls}
    assert set(points["entity"]) == callers
    assert points["unit"].unique().to_list() == ["ms"]


def test_the_watch_catches_nezhas_faults_within_5_minutes(figures: dict[str, float]) -> None:
    detected = figures["nezha_faults_detected_5min"]
    assert detected >= 20, describe(figures)
    assert figures["nezha_detected_network_delay"] >= 5, describe(figures)
    for kind in ("cpu_contention", "cpu_consumed"):  # CPU taken away: utilisation shows it
        assert (
            figures[f"nezha_detected_{kind}"] >= {"cpu_contention": 8, "cpu_consumed": 3}[kind]
        ), describe(figures)


def test_the_watch_stays_within_one_false_alarm_per_fault_free_hour(
    figures: dict[str, float],
) -> None:
    assert figures["nezha_false_alarms_per_hour"] <= 1.0, describe(figures)


def test_the_twin_is_not_worse_than_the_threshold_baseline(figures: dict[str, float]) -> None:
    assert (
        figures["nezha_faults_detected_5min"] >= figures["nezha_threshold_baseline_detected_5min"]
    ), describe(figures)


@pytest.fixture(scope="module")
def replayed() -> dict[str, float]:
    require(f"{NEZHA}/fault/metric/dependency.csv")
    return nezha_replay_figures()


def test_the_replayed_evening_mirrors_each_services_requests_better_than_persistence(
    replayed: dict[str, float],
) -> None:
    """The twin learned on 08:00–18:00, replayed over 18:00–24:00 fed the frontend's
    requests: every other service's hourly requests follow from the calls per request.
    Measured: median MAPE 1.7% against 3.3% for persistence (the last hour before,
    carried forward), 8 of 9 services at or below it. Every line of the scorecard
    mirrors, latency too (median MAPE 1.5%): while the twin added its callees' p95 to a
    caller's, the frontend's p95 read 12% low and its line was biased."""
    assert (
        replayed["nezha_replay_requests_mape_median"]
        < replayed["nezha_replay_requests_persistence_mape_median"]
    ), describe(replayed)
    assert replayed["nezha_replay_requests_beats_persistence"] >= 7, describe(replayed)
    assert replayed["nezha_replay_mirrors_share"] >= 0.95, describe(replayed)
    assert replayed["nezha_replay_latency_mape_median"] < 0.025, describe(replayed)


@pytest.mark.xfail(
    strict=True,
    reason="measured: latency p95 median MAPE 1.5% against 0.9% for persistence, 3 of 10 "
    "services at or below it, every line mirroring. Nezha's evening load is constant, so "
    "the last hour's p95 carried forward is as near as the hour-to-hour noise of a "
    "quantised p95 (checkout: 475 ms in 5 of 6 hours), which no model of load can follow",
)
def test_the_replayed_evening_mirrors_latency_better_than_persistence(
    replayed: dict[str, float],
) -> None:
    assert (
        replayed["nezha_replay_latency_mape_median"]
        <= replayed["nezha_replay_latency_persistence_mape_median"]
    ), describe(replayed)
