"""The acquisition learner: conventions, coverage on the behaviour's own draws, the round
trip through the simulator, word of mouth where the data can tell it, thin data.

``check_estimator`` does not apply: the learner takes a ``user_days`` table (a row per
user and day) and counts arrivals itself, not an ``X, y`` pair of arrays; clone,
get_params/set_params and the fitted attributes are checked instead.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
from sklearn.base import clone

from orgtwin.behaviours.users import Acquisition
from orgtwin.learn.acquisition import AcquisitionLearner, daily_arrivals
from orgtwin.scenario.organisation import AcquisitionSpec

D0 = date(2026, 1, 5)


def drawn_user_days(
    seed: int, *, base: float = 4.0, wom: float = 0.0005, n_users: int = 200,
    churn: float = 0.01, days: int = 90,
) -> pl.DataFrame:  # fmt: skip
    """Every user's days, arrivals drawn by the behaviour at the end of each day."""
    rng = np.random.default_rng(seed)
    law = Acquisition(base_per_day=base, word_of_mouth_per_user_day=wom)
    users, next_id = list(range(n_users)), n_users
    rows: dict[str, list] = {"day": [], "user": [], "churned": []}
    for d in range(days):
        leaving = rng.random(len(users)) < churn
        rows["day"] += [D0 + timedelta(days=d)] * len(users)
        rows["user"] += users
        rows["churned"] += leaving.tolist()
        users = [u for u, gone in zip(users, leaving, strict=True) if not gone]
        arrivals = int(rng.poisson(law.predict(price_usd_month=0, active=len(users), experience=0)))
        users += list(range(next_id, next_id + arrivals))
        next_id += arrivals
    return pl.DataFrame(rows).with_columns(segment=pl.lit("main"), errors=pl.lit(0))


def test_learner_follows_sklearn_conventions() -> None:
    learner = AcquisitionLearner(segment="main")
    twin = clone(learner)
    assert twin.get_params() == learner.get_params()
    assert twin.set_params(min_arrivals=5).min_arrivals == 5
    assert not [k for k in vars(learner) if k.endswith("_")]
    assert learner.fit(drawn_user_days(0)) is learner
    assert {"estimates_", "daily_", "theta_", "wom_learned_"} <= set(vars(learner))
    assert learner.fits()[0].entity == "segment main"


def test_arrivals_are_counted_from_first_days() -> None:
    data = drawn_user_days(1, days=30)
    daily = daily_arrivals(data)
    assert daily.height == 29  # the last day's arrivals are not in the table
    # every user seen after the first day arrived on a day the table covers
    assert daily["arrivals"].sum() == data["user"].n_unique() - 200


def test_intervals_cover_the_behaviours_truth(enough_covered) -> None:
    seeds = range(20)
    prior = AcquisitionSpec(word_of_mouth_per_user_day=0.0005)
    covered = 0
    for seed in seeds:
        base = AcquisitionLearner(prior=prior).fit(drawn_user_days(seed)).estimates()[0]
        assert base.source == "learned"
        covered += base.covers(4.0)
    assert covered >= enough_covered(len(seeds))


def test_word_of_mouth_is_learned_when_the_users_grow(enough_covered) -> None:
    seeds = range(10)
    covered = 0
    for seed in seeds:
        data = drawn_user_days(seed, base=5.0, wom=0.01, n_users=50, churn=0.0, days=120)
        learner = AcquisitionLearner(prior=AcquisitionSpec(word_of_mouth_per_user_day=0.005))
        base, wom, *_ = learner.fit(data).estimates()
        assert wom.source == "learned"
        covered += wom.covers(0.01) and base.covers(5.0)
    assert covered >= enough_covered(len(seeds), 0.95**2)


def test_flat_users_keep_word_of_mouth_prior_and_say_so() -> None:
    learner = AcquisitionLearner().fit(drawn_user_days(2))
    assert learner.estimates()[1].source == "prior"
    assert any("word_of_mouth_per_user_day kept from the prior" in w for w in learner.warnings())


def test_round_trip_recovers_the_scenario(
    learning_telemetry, learning_scenario, enough_covered
) -> None:
    truth = learning_scenario.segments["main"].acquisition
    prior = truth.model_copy(update={"base_per_day": 50.0})  # a wrong base to learn away from
    seeds = range(10)
    covered = 0
    for seed in seeds:
        learner = AcquisitionLearner(segment="main", prior=prior).fit(
            learning_telemetry(seed)["user_days"]
        )
        base = learner.estimates()[0]
        assert base.source == "learned", learner.warnings()
        covered += base.covers(truth.base_per_day)
    assert covered >= enough_covered(len(seeds))


def test_thin_data_shrink_toward_the_prior_and_say_so() -> None:
    data = drawn_user_days(3, base=0.5, days=30)
    prior = AcquisitionSpec(base_per_day=5.0, word_of_mouth_per_user_day=0.0005)
    shrunk = AcquisitionLearner(prior=prior).fit(data)
    alone = AcquisitionLearner(prior=prior, min_arrivals=1).fit(data)
    base = shrunk.estimates()[0]
    assert base.source == "shrunk"
    assert alone.estimates()[0].value < base.value < 5.0
    assert any("shrunk toward the prior" in w for w in shrunk.warnings())


def test_holdout_scores_against_the_training_mean() -> None:
    data = drawn_user_days(4, base=5.0, wom=0.01, n_users=50, churn=0.0, days=120)
    score = (
        AcquisitionLearner(prior=AcquisitionSpec(word_of_mouth_per_user_day=0.005))
        .fit(data)
        .holdout()
    )
    assert score is not None and score.baseline_name == "the training mean"
    assert score.beats_baseline  # a growing base of users: the mean lags behind


def test_too_few_days_keep_the_prior_and_say_so() -> None:
    learner = AcquisitionLearner().fit(drawn_user_days(5, days=1))
    assert {e.source for e in learner.estimates()} == {"prior"}
    assert learner.holdout() is None
    assert any("kept from the prior" in w for w in learner.warnings())
