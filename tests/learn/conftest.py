"""Shared fixtures of the learner tests: a scenario built to give learners data.

``learning_spec`` is a small organisation as a plain mapping (a fresh copy per test):
one segment of 300 users that shrinks (high churn, few arrivals, so the ``user_days``
sample sees every arrival), two teams (one batching its deploys, one shipping
continuously) whose deploys fail often and whose incidents take hours, and a flaky
vendor. Fatigue and expertise effects on failures and restore times are off (telemetry
cannot show them), so the learners' estimates are the spec's values. ``learning_telemetry(seed)``
runs it once per seed and session and returns its tables.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from orgtwin import load_scenario, simulate
from orgtwin.scenario.spec import Scenario

LEARNING_DAYS = 120
_RESPONSE = {
    "detect_median_hours": 2.0, "detect_sigma": 0.8,
    "restore_median_hours": 3.0, "restore_sigma": 0.7,
    "fatigue_coef": 0.0, "expertise_coef": 0.0, "batch_coef": 0.4,
}  # fmt: skip
LEARNING_SPEC: dict[str, Any] = {
    "name": "learning",
    "start": "2026-01-05T00:00:00",
    "days": LEARNING_DAYS,
    "seed": 1,
    "telemetry": {"user_sample_per_segment": 1000},
    "segments": {
        "main": {
            "plan": "free",
            "n_users": 300,
            "sessions_per_user_day": 1.0,
            "features": {"browse": 1.0},
            "churn": {
                "base_monthly": 0.4,
                "tenure_coef": 0.0,
                "price_elasticity": 0.0,
                "experience_coef": 0.0,
            },
            "acquisition": {"base_per_day": 3.0, "word_of_mouth_per_user_day": 0.0005},
        }
    },
    "features": {"browse": {"entry": "gateway", "requests_per_session": 20}},
    "services": {
        "gateway": {
            "team": "web",
            "replicas": 3,
            "capacity_rps_per_replica": 20,
            "calls": {"api": 1.0},
            "vendors": {"flaky": 0.2},
        },
        "api": {"team": "ops", "replicas": 3, "capacity_rps_per_replica": 20},
    },
    "vendors": {"flaky": {"outage_rate_per_month": 10.0, "outage_hours_mean": 2.0}},
    "teams": {
        "web": {
            "headcount": 8,
            "oncall_size": 4,
            "changes_per_engineer_day": 3.0,
            "deploy_policy": {"kind": "batched", "every_hours": 6, "working_hours_only": False},
            "change_failure": {"base": 0.08, "batch_coef": 0.6, "fatigue_coef": 0.0},
            "incidents": _RESPONSE,
        },
        "ops": {
            "headcount": 8,
            "oncall_size": 4,
            "changes_per_engineer_day": 3.0,
            "change_failure": {"base": 0.08, "batch_coef": 0.8, "fatigue_coef": 0.0},
            "incidents": _RESPONSE,
        },
    },
}


@pytest.fixture
def learning_spec() -> dict[str, Any]:
    """The learning scenario as a mapping (a fresh copy)."""
    return copy.deepcopy(LEARNING_SPEC)


@pytest.fixture(scope="session")
def learning_scenario() -> Scenario:
    """The learning scenario, loaded."""
    return load_scenario(copy.deepcopy(LEARNING_SPEC))


_RUNS: dict[int, dict[str, pl.DataFrame]] = {}


@pytest.fixture(scope="session")
def learning_telemetry(learning_scenario: Scenario) -> Callable[[int], dict[str, pl.DataFrame]]:
    """The telemetry tables of one run of the learning scenario, by seed (run once)."""

    def tables(seed: int) -> dict[str, pl.DataFrame]:
        if seed not in _RUNS:
            _RUNS[seed] = simulate(learning_scenario, seed=seed, days=LEARNING_DAYS).events
        return _RUNS[seed]

    return tables


@pytest.fixture(scope="session")
def enough_covered() -> Callable[[int], int]:
    """The fewest of ``n`` 95% intervals that must cover the truth.

    A count below it has a chance under 0.1% if the intervals are right (the binomial's
    0.1% quantile), so a failure means a wrong interval, not bad luck.
    """
    from scipy import stats

    def enough(n: int, level: float = 0.95) -> int:
        return int(stats.binom.ppf(0.001, n, level))

    return enough
