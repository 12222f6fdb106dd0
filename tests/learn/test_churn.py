"""The churn learner: scikit-learn conventions, recovery of the twin's own hazard, Telco.

``check_estimator`` does not apply: the learner takes a ``customers`` table with named
columns (segment, price, tenure, churned), not an ``X, y`` pair of arrays; clone,
get_params/set_params and the fitted attributes are checked instead.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from orgtwin.behaviours.users import ChurnHazard
from orgtwin.learn.base import HoldoutScore
from orgtwin.learn.churn import ChurnLearner, concordance_index
from orgtwin.scenario.organisation import ChurnSpec
from orgtwin.units import DAYS_PER_MONTH
from tests.learn.real_data import telco_split

TRUTH = {
    "basic": ChurnHazard(
        base_monthly=0.04,
        price_elasticity=1.2,
        tenure_coef=-0.4,
        experience_coef=2.0,
        reference_price_usd_month=20.0,
    ),
    "pro": ChurnHazard(
        base_monthly=0.02,
        price_elasticity=0.6,
        tenure_coef=-0.2,
        experience_coef=2.0,
        reference_price_usd_month=50.0,
    ),
}


def draw_customers(seed: int, n: int = 2500, window_months: float = 12.0) -> pl.DataFrame:
    """Customers of two segments churning by :class:`ChurnHazard` itself, watched for
    ``window_months`` from a random entry tenure (exact churn times)."""
    rng = np.random.default_rng(seed)
    frames = []
    for segment, law in TRUTH.items():
        ref = law.reference_price_usd_month
        price = ref * np.exp(rng.normal(0.0, 0.3, n))
        experience = rng.exponential(0.1, n)
        entry = rng.uniform(0.0, 24.0, n)
        rate = np.array([math.exp(law.log_base(p)) for p in price]) * DAYS_PER_MONTH
        rate *= np.exp(law.experience_coef * experience)
        k = law.tenure_coef + 1.0
        target = (1 + entry) ** k + rng.exponential(1.0, n) * k / rate
        churn_at = np.where(target > 0, target ** (1 / k) - 1, np.inf)
        end = entry + window_months
        start = np.datetime64("2026-01-01") - (entry * DAYS_PER_MONTH).astype("timedelta64[D]")
        frames.append(
            pl.DataFrame(
                {
                    "segment": segment,
                    "start": start,
                    "price": price,
                    "experience": experience,
                    "entry_tenure_months": entry,
                    "tenure_months": np.minimum(churn_at, end),
                    "churned": churn_at <= end,
                }
            )
        )
    return pl.concat(frames)


def test_clone_and_params_follow_scikit_learn() -> None:
    learner = ChurnLearner(covariates=("a",), window_months=1.0, event_time="interval")
    twin = clone(learner)
    assert twin.get_params() == learner.get_params()
    assert twin.set_params(l2=0.5).l2 == 0.5
    fitted = ChurnLearner().fit(draw_customers(0, n=400))
    assert fitted.segments_ == ["basic", "pro"] and fitted.coef_.shape == fitted.cov_.shape[:1]
    assert not hasattr(clone(fitted), "coef_")
    assert [f.entity for f in fitted.fits()] == ["segment basic", "segment pro"]


def test_recovers_the_twins_hazard_within_its_intervals_over_seeds() -> None:
    names = ("base_monthly", "price_elasticity", "tenure_coef")
    hits = total = 0
    for seed in range(8):
        learner = ChurnLearner().fit(draw_customers(seed))
        assert learner.converged_
        for segment, law in TRUTH.items():
            for e in learner.estimates(segment=segment):
                if e.name in names:
                    assert e.source == "learned" and e.low <= e.value <= e.high
                    hits += e.covers(getattr(law, e.name))
                    total += 1
            exp = learner.estimates(segment=segment)[-1]
            assert exp.name == "experience_coef"
            hits, total = hits + exp.covers(2.0), total + 1
    # 95% intervals: the share covering the truth stays above 0.95 minus 3 binomial sd
    assert hits / total >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / total)


def draw_snapshot(seed: int, n: int = 4000) -> pl.DataFrame:
    """One month of customers of every tenure (0–72 months): who left in that month,
    by :class:`ChurnHazard` itself (the shape of a churn snapshot such as Telco's)."""
    rng = np.random.default_rng(seed)
    frames = []
    for segment, law in TRUTH.items():
        ref = law.reference_price_usd_month
        price = ref * np.exp(rng.normal(0.0, 0.3, n))
        tenure = rng.integers(1, 73, n).astype(float)
        rate = np.array([math.exp(law.log_base(p)) for p in price]) * DAYS_PER_MONTH
        k = law.tenure_coef + 1.0
        expected = rate * ((1 + tenure) ** k - tenure**k) / k
        churned = rng.random(n) < -np.expm1(-expected)
        frames.append(pl.DataFrame({
            "segment": segment, "price": price, "tenure_months": tenure, "churned": churned,
        }))  # fmt: skip
    return pl.concat(frames)


def test_recovers_the_hazard_from_one_month_snapshots_over_seeds() -> None:
    names = ("base_monthly", "price_elasticity", "tenure_coef")
    hits = total = 0
    for seed in range(8):
        learner = ChurnLearner(window_months=1.0, event_time="interval").fit(draw_snapshot(seed))
        for segment, law in TRUTH.items():
            for e in learner.estimates(segment=segment):
                if e.name in names:
                    hits, total = hits + e.covers(getattr(law, e.name)), total + 1
    assert hits / total >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / total)


def test_experience_stays_at_the_prior_without_session_data() -> None:
    customers = draw_customers(1, n=600).drop("experience")
    prior = ChurnSpec(experience_coef=3.0)
    learner = ChurnLearner(prior=prior).fit(customers)
    experience = {e.name: e for e in learner.estimates(segment="pro")}["experience_coef"]
    assert (experience.source, experience.value) == ("prior", 3.0)
    spec = learner.specs()["pro"]
    assert spec.experience_coef == 3.0 and spec.reference_price_usd_month == pytest.approx(
        float(customers.filter(pl.col("segment") == "pro")["price"].median())
    )


def test_holdout_beats_the_segment_churn_rate() -> None:
    score = ChurnLearner().holdout(draw_customers(2, n=1500))
    assert isinstance(score, HoldoutScore) and score.beats_baseline


def test_concordance_index_counts_ties_as_half() -> None:
    time, event = np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0])
    assert concordance_index(time, event, np.array([1.0, 1.0, 1.0])) == 0.5
    assert concordance_index(time, event, np.array([1.0, 2.0, 3.0])) == 0.0


def test_telco_discrimination_and_calibration_match_a_logistic_regression() -> None:
    """IBM Telco: contract is the segment, monthly charge the price; the other columns
    (not TotalCharges, which is tenure × price) shift the log-hazard. Each customer is
    watched over the last month (the snapshot says who left then). Read through
    ``examples/telemetry/telco_churn.yaml``: the covariates are the columns it keeps."""
    split = telco_split(seed=42)
    assert len(split.covariates) == 15 and "TotalCharges" not in split.covariates
    test, y, learner = split.test, split.y, split.learner
    auc_logistic = roc_auc_score(y, split.logistic)
    probability = learner.predict_proba(test)
    auc = roc_auc_score(y, probability)
    assert auc >= auc_logistic > 0.83

    log_hazard = learner.predict_log_hazard(test)
    assert concordance_index(test["tenure_months"].to_numpy(), y, log_hazard) >= 0.86

    deciles = np.quantile(probability, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(deciles, probability, side="right") - 1, 0, 9)
    gaps = [abs(probability[bins == b].mean() - y[bins == b].mean()) for b in range(10)]
    assert max(gaps) <= 0.03  # measured 2.7 pp; a decile's binomial sd is up to 3.4 pp
    expected = np.array([probability[bins == b].sum() for b in range(10)])
    observed = np.array([y[bins == b].sum() for b in range(10)])
    sizes = np.bincount(bins, minlength=10)
    hosmer_lemeshow = np.sum((observed - expected) ** 2 / (expected * (1 - expected / sizes)))
    assert stats.chi2.sf(hosmer_lemeshow, 8) > 0.05


def test_one_price_per_segment_keeps_the_elasticity_at_the_prior() -> None:
    """A segment whose customers all pay one price cannot tell its elasticity: it is the
    prior's, marked prior, and the other parameters still have intervals."""
    customers = draw_customers(3, n=800).with_columns(
        price=pl.when(pl.col("segment") == "basic").then(10.0).otherwise(pl.col("price"))
    )
    learner = ChurnLearner(prior=ChurnSpec(price_elasticity=2.5)).fit(customers)
    basic = {e.name: e for e in learner.estimates(segment="basic")}
    pro = {e.name: e for e in learner.estimates(segment="pro")}
    assert (basic["price_elasticity"].source, basic["price_elasticity"].value) == ("prior", 2.5)
    assert pro["price_elasticity"].source == "learned"
    assert pro["price_elasticity"].low < pro["price_elasticity"].high
    assert basic["tenure_coef"].low < basic["tenure_coef"].value < basic["tenure_coef"].high
    assert np.isfinite(learner.cov_).all()
