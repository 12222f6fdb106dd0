"""The incident timing learner: conventions, coverage on the behaviour's own draws, the
round trip through the simulator, thin data.

``check_estimator`` does not apply: the learner takes an ``incidents`` table with named
datetime columns (started, detected, resolved), not an ``X, y`` pair of arrays; clone,
get_params/set_params and the fitted attributes are checked instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from sklearn.base import clone

from orgtwin.behaviours.teams import IncidentTiming
from orgtwin.learn.incidents import IncidentTimingLearner
from orgtwin.scenario.organisation import IncidentResponseSpec
from tests.learn.conftest import LEARNING_DAYS

T0 = datetime(2026, 1, 5)
TRUTH = {
    "detect_median_hours": 2.0,
    "detect_sigma": 0.8,
    "restore_median_hours": 3.0,
    "restore_sigma": 0.7,
}
LEARNED = tuple(TRUTH)


def drawn_incidents(
    seed: int, n: int = 150, *, days: int = 60, canary: bool = False, batch_coef: float = 0.0
) -> pl.DataFrame:
    """Incidents whose times the behaviour draws and the simulator rounds, some still open.

    Each is caused by a failed deploy (column ``batch_size``, for :func:`failed_deploys`)
    an hour before it starts, on a service of its own.
    """
    rng = np.random.default_rng(seed)
    timing = IncidentTiming(**TRUTH, batch_coef=batch_coef)
    end = T0 + timedelta(days=days)
    rows = []
    for hour in np.sort(rng.integers(1, 24 * days, size=n)):
        started = T0 + timedelta(hours=int(hour))
        batch = int(rng.integers(1, 20))
        detect = timing.sample_detect(rng) * (0.5 if canary else 1.0)
        detected = started + timedelta(hours=int(np.ceil(detect)))
        hours = timing.sample_restore(rng, fatigue=0.0, expertise=1.0, batch_size=batch)
        resolved = detected + timedelta(hours=max(1, int(np.ceil(hours))))
        rows.append((started, detected, resolved if resolved < end else None, batch))
    return pl.DataFrame(
        {
            "service": [f"s{i}" for i in range(n)],
            "team": "web",
            "cause": "deploy",
            "started": [r[0] for r in rows],
            "detected": [r[1] for r in rows],
            "resolved": [r[2] for r in rows],
            "batch_size": [r[3] for r in rows],
        },
        schema_overrides={c: pl.Datetime("us") for c in ("started", "detected", "resolved")},
    )


def failed_deploys(incidents: pl.DataFrame) -> pl.DataFrame:
    """The failed deploys behind :func:`drawn_incidents`, an hour before each started."""
    return incidents.select(
        time=pl.col("started") - pl.duration(hours=1),
        service="service",
        team="team",
        batch_size="batch_size",
        failed=pl.lit(True),
    )


def test_learner_follows_sklearn_conventions() -> None:
    learner = IncidentTimingLearner(team="web", min_incidents=20)
    twin = clone(learner)
    assert twin.get_params() == learner.get_params()
    assert twin.set_params(canary=True).canary is True
    assert not [k for k in vars(learner) if k.endswith("_")]  # __init__ stores only
    fitted = learner.fit(drawn_incidents(0))
    assert fitted is learner
    assert {"estimates_", "detect_", "restore_", "family_scores_"} <= set(vars(learner))
    assert learner.fits()[0].entity == "team web"


def test_intervals_cover_the_behaviours_truth(enough_covered) -> None:
    seeds = range(20)
    covered = dict.fromkeys(LEARNED, 0)
    for seed in seeds:
        for e in (
            IncidentTimingLearner(end=T0 + timedelta(days=60))
            .fit(drawn_incidents(seed))
            .estimates()
        ):
            if e.name in covered:
                assert e.source == "learned"
                covered[e.name] += e.covers(TRUTH[e.name])
    assert min(covered.values()) >= enough_covered(len(seeds)), covered


def test_canary_halving_is_undone(enough_covered) -> None:
    seeds = range(10)
    covered = 0
    for seed in seeds:
        data = drawn_incidents(seed, canary=True)
        learned = IncidentTimingLearner(canary=True).fit(data).params()
        plain = IncidentTimingLearner(canary=False).fit(data).params()
        assert plain["detect_median_hours"] < learned["detect_median_hours"]
        est = IncidentTimingLearner(canary=True).fit(data).estimates()[0]
        covered += est.covers(TRUTH["detect_median_hours"])
    assert covered >= enough_covered(len(seeds))


def test_batch_coef_is_learned_from_the_deploys(enough_covered) -> None:
    seeds = range(20)
    covered = dict.fromkeys((*LEARNED, "batch_coef"), 0)
    truth = TRUTH | {"batch_coef": 0.4}
    for seed in seeds:
        data = drawn_incidents(seed, n=200, batch_coef=0.4)
        learner = IncidentTimingLearner().fit(data, deploys=failed_deploys(data))
        for e in learner.estimates():
            if e.name in covered:
                assert e.source == "learned"
                covered[e.name] += e.covers(truth[e.name])
    assert min(covered.values()) >= enough_covered(len(seeds)), covered


def test_round_trip_recovers_the_scenario(
    learning_telemetry, learning_scenario, enough_covered
) -> None:
    end = learning_scenario.start + timedelta(days=LEARNING_DAYS)
    covered, total = 0, 0
    for seed in range(8):
        tables = learning_telemetry(seed)
        for team in ("web", "ops"):
            truth = learning_scenario.teams[team].incidents
            learner = IncidentTimingLearner(team=team, end=end)
            learner.fit(tables["incidents"], deploys=tables["deploys"])
            for e in learner.estimates():
                if e.name in (*LEARNED, "batch_coef"):
                    assert e.source == "learned", learner.warnings()
                    covered += e.covers(getattr(truth, e.name))
                    total += 1
    assert covered >= enough_covered(total)


def test_what_the_table_cannot_inform_stays_prior() -> None:
    prior = IncidentResponseSpec(fatigue_coef=1.1, expertise_coef=0.2, batch_coef=0.5)
    learner = IncidentTimingLearner(prior=prior).fit(drawn_incidents(1))
    kept = {e.name: e for e in learner.estimates() if e.source == "prior"}
    assert set(kept) == {"fatigue_coef", "expertise_coef", "batch_coef"}  # no deploys given
    assert kept["fatigue_coef"].value == 1.1 == kept["fatigue_coef"].low


def test_thin_data_shrink_toward_the_prior_and_say_so() -> None:
    prior = IncidentResponseSpec(restore_median_hours=10.0)
    data = drawn_incidents(2, n=15, days=200)
    fitted = IncidentTimingLearner(prior=prior, min_incidents=1000).fit(data)
    alone = IncidentTimingLearner(prior=prior, min_incidents=1).fit(data)
    restore = {e.name: e for e in fitted.estimates()}["restore_median_hours"]
    assert restore.source == "shrunk"
    raw = alone.params()["restore_median_hours"]
    assert raw < restore.value < 10.0
    assert any("shrunk toward the prior" in w for w in fitted.warnings())


def test_detection_within_the_hour_cannot_be_told() -> None:
    # a 15-minute median puts nearly every detection in the first hour: the prior stays
    rng = np.random.default_rng(3)
    data = drawn_incidents(3).with_columns(
        detected=pl.col("started") + pl.duration(hours=1),
        resolved=pl.col("started") + pl.duration(hours=pl.lit(rng.integers(2, 8, size=150))),
    )
    learner = IncidentTimingLearner().fit(data)
    detect = learner.estimates()[0]
    assert detect.source == "prior"
    assert any("cannot be told" in w for w in learner.warnings())


def test_families_are_compared_and_the_holdout_beats_an_exponential() -> None:
    learner = IncidentTimingLearner().fit(drawn_incidents(4, n=400, days=120))
    assert set(learner.family_scores_["restore"]) == {"lognormal", "gamma", "weibull"}
    score = learner.holdout()
    assert score is not None and score.beats_baseline
    assert score.n_train > score.n_test > 0


def test_no_incident_keeps_the_prior_and_says_so() -> None:
    learner = IncidentTimingLearner(team="nobody").fit(drawn_incidents(5))
    assert {e.source for e in learner.estimates()} == {"prior"}
    assert learner.holdout() is None
    assert len(learner.warnings()) == 2
