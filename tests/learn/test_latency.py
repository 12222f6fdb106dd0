"""The latency learner: scikit-learn conventions, recovery of the twin's own curve (against
CPU and against load over capacity), the choice of source, Nezha.

``check_estimator`` does not apply: the learner takes a ``requests`` table (service, cpu or
requests, latency columns), not an ``X, y`` pair; clone, get_params/set_params and the
fitted attributes are checked instead.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from orgtwin.behaviours.services import LatencyCurve
from orgtwin.learn.base import HoldoutScore
from orgtwin.learn.latency import LatencyLearner
from orgtwin.scenario.organisation import LatencySpec
from tests.learn.real_data import nezha_fault_free, read_example, time_split

TRUTH = {
    "api": LatencyCurve(base_ms=20.0, queueing_factor=1.5, p95_over_p50=2.5),
    "db": LatencyCurve(base_ms=4.0, queueing_factor=0.5, p95_over_p50=1.5),
}


def draw_requests(seed: int, n: int = 300, noise: float = 0.1) -> pl.DataFrame:
    """Hourly rows whose latency follows each service's :class:`LatencyCurve`, with
    log-normal noise of ``noise`` on the median and on the p95."""
    rng = np.random.default_rng(seed)
    frames = []
    for service, curve in TRUTH.items():
        u = rng.uniform(0.05, 0.85, n)
        p50, p95 = curve.predict_quantiles(u)
        frames.append(pl.DataFrame({
            "time": [datetime(2026, 1, 1) + timedelta(hours=h) for h in range(n)],
            "service": service, "cpu": u,
            "latency_p50_ms": p50 * np.exp(rng.normal(0, noise, n)),
            "latency_p95_ms": p95 * np.exp(rng.normal(0, noise, n)),
        }))  # fmt: skip
    return pl.concat(frames)


def with_load(rows: pl.DataFrame, capacity: float = 50.0, replicas: float = 2.0) -> pl.DataFrame:
    """``rows`` with the hour's ``requests`` and ``replicas`` that make ``cpu`` the twin's
    utilisation: requests per second per replica over ``capacity``."""
    return rows.with_columns(
        (pl.col("cpu") * capacity * replicas * 3600).alias("requests"),
        pl.lit(replicas).alias("replicas"),
    )


def test_clone_and_params_follow_scikit_learn() -> None:
    learner = LatencyLearner(latency_column="latency_p90_ms", loss="linear", min_rows=3)
    assert clone(learner).get_params() == learner.get_params()
    learner = LatencyLearner(utilisation="auto", capacity={"api": 50.0})
    assert clone(learner).get_params() == learner.get_params()
    with pytest.raises(ValueError, match="utilisation"):
        LatencyLearner(utilisation="memory").fit(draw_requests(0, n=50))
    with pytest.raises(ValueError, match="requests"):
        LatencyLearner(utilisation="load").fit(draw_requests(0, n=50))
    fitted = LatencyLearner().fit(draw_requests(0, n=50))
    assert fitted.services_ == ["api", "db"] and set(fitted.params_) == {"api", "db"}
    assert [f.entity for f in fitted.fits()] == ["service api", "service db"]
    assert not hasattr(clone(fitted), "params_")


@pytest.mark.parametrize("loss", ["linear", "soft_l1"])
def test_recovers_the_twins_curve_within_its_intervals_over_seeds(loss: str) -> None:
    """The Wald intervals hold for plain least squares and, with the sandwich variance,
    for the robust loss (measured over 40 seeds: 98.8% and 97.5%)."""
    hits = total = 0
    for seed in range(10):
        learner = LatencyLearner(loss=loss).fit(draw_requests(seed))
        for service, curve in TRUTH.items():
            for e in learner.estimates(service):
                assert e.source == "learned" and e.low <= e.value <= e.high
                hits, total = hits + e.covers(float(getattr(curve, e.name))), total + 1
    assert hits / total >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / total)


def test_load_over_the_twins_capacity_is_the_twins_utilisation() -> None:
    """Given the capacity, load per replica over it is the twin's utilisation: the fit is
    the CPU fit. Without it the capacity is found (measured within 2.4% over 5 seeds) and the
    curve with it (measured at most 5.9%, on average at most 1.9% off the truth over the
    rows' load, whose noise is 10%; the Wald intervals are
    conditional on the capacity, so they are not checked here)."""
    for seed in range(5):
        rows = with_load(draw_requests(seed))
        by_cpu = LatencyLearner().fit(rows)
        given = LatencyLearner(utilisation="load", capacity={"api": 50.0, "db": 50.0}).fit(rows)
        assert given.interval_s_ == {"api": 3600.0, "db": 3600.0}
        assert given.utilisation_ == {"api": "load", "db": "load"}
        for service in TRUTH:
            np.testing.assert_allclose(given.params_[service], by_cpu.params_[service], rtol=1e-5)
        found = LatencyLearner(utilisation="load").fit(rows)
        for service, curve in TRUTH.items():
            assert abs(found.capacity_[service] / 50.0 - 1) < 0.05
            at = rows.filter(pl.col("service") == service)
            truth = curve.predict(at["cpu"].to_numpy())
            fitted = found.predict(service, found.utilisation_of(service, at))
            assert np.max(np.abs(fitted / truth - 1)) < 0.1
            assert np.mean(np.abs(fitted / truth - 1)) < 0.03


def test_auto_takes_the_source_that_drives_latency() -> None:
    """Latency follows load over capacity for one service and CPU for the other, the other
    column being unrelated noise: ``auto`` takes the right one for each."""
    rng = np.random.default_rng(105)  # not draw_requests' seed: its draws would come again
    rows = with_load(draw_requests(5))
    api = (rows["service"] == "api").to_numpy()
    noise = rng.uniform(0.05, 0.85, rows.height)
    rows = rows.with_columns(
        pl.Series("cpu", np.where(api, noise, rows["cpu"])),
        pl.Series("requests", np.where(api, rows["requests"], noise * 50.0 * 2 * 3600)),
    )
    learner = LatencyLearner(utilisation="auto").fit(rows)
    assert learner.utilisation_ == {"api": "load", "db": "cpu"}
    for service, right in (("api", "load"), ("db", "cpu")):
        scores = learner.validation_[service]
        assert scores[right] < 0.5 * min(v for k, v in scores.items() if k != right)


def test_a_quiet_service_gets_its_median() -> None:
    """Latency flat within 0.5%, with one minute in ten three times slower: the robust
    loss's scale follows the residuals, so ``base_ms`` is the median (within 0.2%); a
    fixed scale of 0.1 on the log made it least squares there (0.3% to 1.4% off)."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        latency = 4.6 * np.exp(rng.normal(0, 0.005, 300))
        latency[rng.random(300) < 0.1] *= 3
        rows = pl.DataFrame(
            {"service": "q", "cpu": rng.uniform(0.01, 0.05, 300), "latency_p50_ms": latency}
        )
        base = LatencyLearner().fit(rows).estimates("q")[0]
        assert abs(base.value / float(np.median(latency)) - 1) < 0.002


def test_the_robust_loss_shrugs_off_spikes() -> None:
    rows = draw_requests(3, noise=0.05)
    spiky = rows.with_columns(
        pl.when(pl.int_range(pl.len()) % 20 == 0)
        .then(pl.col("latency_p50_ms") * 10)
        .otherwise(pl.col("latency_p50_ms"))
    )
    base = {e.name: e.value for e in LatencyLearner().fit(spiky).estimates("api")}["base_ms"]
    assert abs(base / 20.0 - 1) < 0.05


def test_a_thin_service_keeps_the_prior_and_the_spec_drives_the_curve() -> None:
    prior = LatencySpec(base_ms=50.0)
    learner = LatencyLearner(prior=prior, min_rows=100).fit(draw_requests(1, n=20))
    assert learner.services_ == [] and len(learner.warnings()) == 2
    assert {e.source for e in learner.estimates("api")} == {"prior"}
    fitted = LatencyLearner().fit(draw_requests(2))
    np.testing.assert_allclose(fitted.predict("api", [0.5]), fitted.curve("api").predict([0.5]))
    assert fitted.spec("api").timeout_ms == LatencySpec().timeout_ms


def test_holdout_beats_a_constant_median_when_load_drives_latency() -> None:
    score = LatencyLearner().holdout(draw_requests(4))
    assert isinstance(score, HoldoutScore) and score.beats_baseline


QUIET = ("cartservice", "emailservice", "paymentservice", "shippingservice")
"""Nezha services whose p90 stays within about 2% of 4.6 ms: nothing to learn but the level."""


@pytest.fixture(scope="module")
def nezha_split() -> tuple[pl.DataFrame, pl.DataFrame]:
    requests = nezha_fault_free(read_example("nezha_onlineboutique").tables["requests"].collect())
    return time_split(requests, 0.7)


def test_nezha_fault_free_minutes_by_cpu_are_no_worse_than_a_constant_median(
    nezha_split: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """Online Boutique, fault-free minutes, p90 against CPU (the files have no median),
    first 70% of each service's minutes to learn, last 30% to score (as the benchmark).
    A load generator at a constant rate: CPU hardly moves and latency hardly with it, so
    the curve is within a few tenths of a point of the constant median. Measured MAPE,
    curve vs constant: adservice 17.43% vs 17.80% (a JVM: CPU spikes come with latency;
    also ahead at train shares 0.5, 0.6, 0.8: −0.24 to −0.38 points), currencyservice
    17.46 vs 17.64, recommendationservice 22.10 vs 22.35, checkoutservice 40.40 vs 40.21,
    productcatalogservice 15.56 vs 15.34, the quiet services equal; mean 13.61% vs 13.65%,
    median 16.49% vs 16.49%. The fixed robust scale of before gave mean 13.77%: it missed
    the quiet services' median (shippingservice 0.95% vs 0.72%)."""
    train, test = nezha_split
    learner = LatencyLearner(latency_column="latency_p90_ms").fit(train)
    learned, constant = learner.mape_by_service(test, train)
    assert len(learned) == 10 and set(learner.utilisation_.values()) == {"cpu"}
    assert np.mean(list(learned.values())) < np.mean(list(constant.values()))
    assert learned["adservice"] < constant["adservice"] - 0.002
    for service in QUIET:
        assert abs(learned[service] - constant[service]) < 0.0005


def test_nezha_fault_free_minutes_by_load_beat_a_constant_median_over_services(
    nezha_split: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """The same minutes with ``utilisation="auto"``: per service, CPU or requests per
    second over a fitted capacity, whichever predicted the later half of the training
    minutes better. Measured MAPE, curve vs constant: productcatalogservice 14.82% vs
    15.34% (load), recommendationservice 21.89 vs 22.35 (load), currencyservice 17.46 vs
    17.64 (cpu), adservice 17.88 vs 17.80 (load), frontend 18.86 vs 18.75 (load),
    checkoutservice 42.86 vs 40.21 (load: ~16 requests a minute, a p90 of a handful of
    calls and a steep curve fitted to noise), the quiet services equal. Median over
    services 16.14% vs 16.49%, but mean 13.81% vs 13.65% (checkoutservice). At train
    shares 0.5, 0.6, 0.8 the median is 0.25, 0.24, 0.13 points under the constant's: the
    bound asserted is 0.1 point. The gain is small because the load barely varies either:
    a curve fitted to the scored minutes themselves reaches a median of about 15.9%."""
    train, test = nezha_split
    learner = LatencyLearner(latency_column="latency_p90_ms", utilisation="auto").fit(train)
    learned, constant = learner.mape_by_service(test, train)
    assert len(learned) == 10 and "load" in learner.utilisation_.values()
    assert np.median(list(learned.values())) < np.median(list(constant.values())) - 0.001
    assert learned["productcatalogservice"] < constant["productcatalogservice"] - 0.003
    for service in QUIET:
        assert abs(learned[service] - constant[service]) < 0.0005


def test_a_cpu_curve_sets_the_capacity_at_which_the_cpu_is_full() -> None:
    """Where the curve is against CPU and the load is measured, ``cpu_capacity_`` is the
    load per replica at which the CPU would be full: the twin's utilisation (load over
    capacity) is then the CPU share the curve was fitted against. A load-curve service
    has none."""
    rows = with_load(draw_requests(11), capacity=50.0, replicas=2.0)
    jitter = np.random.default_rng(12).normal(0.0, 0.05, rows.height)
    rows = rows.with_columns(pl.col("requests") * np.exp(jitter))  # CPU is not exactly load
    learner = LatencyLearner(utilisation="cpu").fit(rows)
    for service in TRUTH:
        assert learner.cpu_capacity_[service] == pytest.approx(50.0, rel=0.02)
    assert LatencyLearner(utilisation="cpu").fit(draw_requests(11)).cpu_capacity_ == {}
    by_load = LatencyLearner(utilisation="load", capacity=50.0).fit(rows)
    assert by_load.cpu_capacity_ == {}
