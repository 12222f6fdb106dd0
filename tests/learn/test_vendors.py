"""The vendor outage learner: conventions, coverage on the behaviour's own draws (merged
as the simulator merges overlapping outages), the round trip, thin data.

``check_estimator`` does not apply: the learner takes a ``vendor_status`` table of
outage windows and the window it covers, not an ``X, y`` pair of arrays; clone,
get_params/set_params and the fitted attributes are checked instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from sklearn.base import clone

from orgtwin.behaviours.vendors import VendorOutages
from orgtwin.learn.vendors import VendorOutageLearner
from orgtwin.scenario.organisation import VendorSpec
from tests.learn.conftest import LEARNING_DAYS

T0 = datetime(2026, 1, 5)
HOURS = 24 * 120
TRUTH = {"outage_rate_per_month": 12.0, "outage_hours_mean": 2.5}


def drawn_status(seed: int, rate: float = 12.0, mean: float = 2.5) -> pl.DataFrame:
    """Outages the behaviour draws over :data:`HOURS`, overlapping ones merged."""
    merged: list[list[int]] = []
    for start, end in sorted(VendorOutages(rate, mean).sample(np.random.default_rng(seed), HOURS)):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return pl.DataFrame(
        {
            "vendor": ["flaky"] * len(merged),
            "outage_start": [T0 + timedelta(hours=s) for s, _ in merged],
            "outage_end": [T0 + timedelta(hours=e) for _, e in merged],
        },
        schema={
            "vendor": pl.String,
            "outage_start": pl.Datetime("us"),
            "outage_end": pl.Datetime("us"),
        },
    )


def learner(**options) -> VendorOutageLearner:
    return VendorOutageLearner(vendor="flaky", start=T0, end=T0 + timedelta(hours=HOURS), **options)


def test_learner_follows_sklearn_conventions() -> None:
    one = learner()
    twin = clone(one)
    assert twin.get_params() == one.get_params()
    assert twin.set_params(min_outages=3).min_outages == 3
    assert not [k for k in vars(one) if k.endswith("_")]
    assert one.fit(drawn_status(0)) is one
    assert {"estimates_", "up_hours_", "lengths_", "censored_"} <= set(vars(one))
    assert one.fits()[0].entity == "vendor flaky"


def test_intervals_cover_the_behaviours_truth(enough_covered) -> None:
    seeds = range(30)
    covered = dict.fromkeys(TRUTH, 0)
    for seed in seeds:
        for e in learner().fit(drawn_status(seed)).estimates():
            assert e.source == "learned"
            covered[e.name] += e.covers(TRUTH[e.name])
    assert min(covered.values()) >= enough_covered(len(seeds)), covered


def test_round_trip_recovers_the_scenario(
    learning_telemetry, learning_scenario, enough_covered
) -> None:
    truth = learning_scenario.vendors["flaky"]
    start = learning_scenario.start
    covered, total = 0, 0
    for seed in range(8):
        status = learning_telemetry(seed)["vendor_status"]
        fitted = VendorOutageLearner(
            vendor="flaky", start=start, end=start + timedelta(days=LEARNING_DAYS)
        ).fit(status)
        for e in fitted.estimates():
            assert e.source == "learned", fitted.warnings()
            covered += e.covers(getattr(truth, e.name))
            total += 1
    assert covered >= enough_covered(total)


def test_thin_data_shrink_toward_the_prior_and_say_so() -> None:
    prior = VendorSpec(outage_rate_per_month=3.0, outage_hours_mean=6.0)
    data = drawn_status(1, rate=1.0, mean=1.0)
    assert 0 < data.height < 10
    fitted = learner(prior=prior).fit(data)
    rate, mean = fitted.estimates()
    assert rate.source == mean.source == "shrunk"
    assert data.height / (HOURS / 730.5) < rate.value < 3.0
    assert rate.low < rate.value < rate.high
    assert sum("shrunk toward the prior" in w for w in fitted.warnings()) == 2


def test_no_outage_keeps_the_mean_and_gives_a_finite_rate() -> None:
    empty = drawn_status(0).clear()
    rate, mean = learner().fit(empty).estimates()
    assert mean.source == "prior" and rate.source == "shrunk"
    assert 0 < rate.value < VendorSpec().outage_rate_per_month


def test_a_window_not_given_is_guessed_with_a_warning() -> None:
    fitted = VendorOutageLearner(vendor="flaky").fit(drawn_status(2))
    assert any("window was not given" in w for w in fitted.warnings())


def test_holdout_beats_a_wrong_prior() -> None:
    prior = VendorSpec(outage_rate_per_month=0.5, outage_hours_mean=2.0)
    score = learner(prior=prior).fit(drawn_status(3)).holdout()
    assert score is not None and score.beats_baseline
