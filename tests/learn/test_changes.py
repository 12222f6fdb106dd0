"""The change failure learner: conventions, coverage on the behaviour's own draws, the
round trip through the simulator, thin data.

``check_estimator`` does not apply: the learner takes a ``deploys`` table with named
columns (time, team, batch_size, failed), not an ``X, y`` pair of arrays; clone,
get_params/set_params and the fitted attributes are checked instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from sklearn.base import clone

from orgtwin.behaviours.teams import ChangeFailure
from orgtwin.learn.changes import ChangeFailureLearner
from orgtwin.scenario.organisation import ChangeFailureSpec

T0 = datetime(2026, 1, 5)
TRUTH = {"base": 0.05, "batch_coef": 0.8}


def drawn_deploys(seed: int, n: int = 1200, *, batch_max: int = 12) -> pl.DataFrame:
    """Deploys whose failures the behaviour draws, batches of 1 to ``batch_max`` changes."""
    rng = np.random.default_rng(seed)
    batch = rng.integers(1, batch_max + 1, size=n)
    failed = rng.random(n) < ChangeFailure(**TRUTH, fatigue_coef=0.0).predict_proba(batch)
    return pl.DataFrame(
        {
            "time": [T0 + timedelta(hours=i) for i in range(n)],
            "team": "web",
            "batch_size": batch,
            "failed": failed,
        }
    )


def test_learner_follows_sklearn_conventions() -> None:
    learner = ChangeFailureLearner(team="web")
    twin = clone(learner)
    assert twin.get_params() == learner.get_params()
    assert twin.set_params(min_failures=5).min_failures == 5
    assert not [k for k in vars(learner) if k.endswith("_")]
    assert learner.fit(drawn_deploys(0)) is learner
    assert {"estimates_", "theta_", "covariance_", "n_failures_"} <= set(vars(learner))
    assert learner.fits()[0].entity == "team web"


def test_intervals_cover_the_behaviours_truth(enough_covered) -> None:
    seeds = range(20)
    covered = dict.fromkeys(TRUTH, 0)
    for seed in seeds:
        for e in ChangeFailureLearner().fit(drawn_deploys(seed)).estimates():
            if e.name in covered:
                assert e.source == "learned"
                covered[e.name] += e.covers(TRUTH[e.name])
    assert min(covered.values()) >= enough_covered(len(seeds)), covered


def test_round_trip_recovers_the_scenario(
    learning_telemetry, learning_scenario, enough_covered
) -> None:
    covered, total = 0, 0
    for seed in range(8):
        deploys = learning_telemetry(seed)["deploys"]
        for team in ("web", "ops"):
            truth = learning_scenario.teams[team].change_failure
            learner = ChangeFailureLearner(team=team, prior=ChangeFailureSpec()).fit(deploys)
            for e in learner.estimates():
                if e.name in TRUTH:
                    assert e.source == "learned", learner.warnings()
                    covered += e.covers(getattr(truth, e.name))
                    total += 1
    assert covered >= enough_covered(total)


def test_fatigue_stays_prior_and_says_so() -> None:
    learner = ChangeFailureLearner(prior=ChangeFailureSpec(fatigue_coef=0.5)).fit(drawn_deploys(1))
    fatigue = learner.estimates()[2]
    assert (fatigue.name, fatigue.source, fatigue.value) == ("fatigue_coef", "prior", 0.5)
    assert any("fatigue_coef kept from the prior" in w for w in learner.warnings())


def test_one_batch_size_cannot_inform_the_slope() -> None:
    learner = ChangeFailureLearner().fit(drawn_deploys(2, batch_max=1))
    base, slope, _ = learner.estimates()
    assert base.source == "learned" and slope.source == "prior"
    assert base.covers(TRUTH["base"])


def test_thin_data_shrink_toward_the_prior_and_say_so() -> None:
    prior = ChangeFailureSpec(base=0.3, batch_coef=0.0)
    data = drawn_deploys(3, n=150)
    assert data["failed"].sum() < 30
    shrunk = ChangeFailureLearner(prior=prior).fit(data)
    alone = ChangeFailureLearner(prior=prior, min_failures=1).fit(data)
    base = shrunk.estimates()[0]
    assert base.source == "shrunk"
    assert alone.params()["base"] < base.value < 0.3
    assert any("shrunk toward the prior" in w for w in shrunk.warnings())


def test_holdout_beats_the_constant_rate() -> None:
    score = ChangeFailureLearner().fit(drawn_deploys(4, n=3000)).holdout()
    assert score is not None and score.beats_baseline and not score.higher_is_better
