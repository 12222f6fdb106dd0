"""Shared fixtures: the repository paths, a short seeded baseline run, a small scenario.

``small_spec`` is a complete scenario as a plain mapping (a fresh copy per test, so a
test may change it); ``small_scenario`` is the same mapping loaded and validated. It has
2 segments, 3 features, 5 services in a DAG with fan-out (a diamond: gateway calls
catalog and users, catalog calls users again), 2 vendors and 2 teams, and runs a day in
well under a second.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from orgtwin import load_scenario, simulate
from orgtwin.runs.results import RunResult
from orgtwin.scenario.spec import Scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"
BASELINE_SEED = 11
BASELINE_DAYS = 14

SMALL: dict[str, Any] = {
    "name": "small",
    "start": "2026-01-05T00:00:00",
    "days": 7,
    "seed": 3,
    "seeds": 2,
    "segments": {
        "free": {
            "plan": "free",
            "n_users": 20000,
            "price_usd_month": 0,
            "sessions_per_user_day": 1.0,
            "features": {"browse": 0.7, "search": 0.3},
            "acquisition": {"base_per_day": 60},
        },
        "pro": {
            "plan": "pro",
            "n_users": 6000,
            "price_usd_month": 20,
            "utc_offset_hours": -5,
            "sessions_per_user_day": 2.0,
            "features": {"browse": 0.5, "search": 0.2, "buy": 0.3},
            "acquisition": {"base_per_day": 20},
        },
    },
    "features": {
        "browse": {"entry": "gateway", "requests_per_session": 12},
        "search": {"entry": "catalog", "requests_per_session": 6},
        "buy": {"entry": "checkout", "requests_per_session": 4},
    },
    "services": {
        "gateway": {
            "team": "web",
            "replicas": 3,
            "capacity_rps_per_replica": 8,
            "calls": {"catalog": 2.0, "users": 1.0},
        },
        "catalog": {
            "team": "web",
            "replicas": 3,
            "capacity_rps_per_replica": 10,
            "calls": {"users": 0.5},
        },
        "checkout": {
            "team": "web",
            "replicas": 2,
            "capacity_rps_per_replica": 5,
            "replica_cost_usd_hour": 0.2,
            "calls": {"users": 1.0, "payments": 0.8},
        },
        "users": {
            "team": "platform",
            "replicas": 4,
            "capacity_rps_per_replica": 15,
            "replica_cost_usd_hour": 0.3,
            "vendors": {"authz": 0.1},
        },
        "payments": {
            "team": "platform",
            "replicas": 2,
            "capacity_rps_per_replica": 5,
            "replica_cost_usd_hour": 0.25,
            "spot_discount": 0.5,
            "vendors": {"stripe": 1.0},
        },
    },
    "vendors": {
        "stripe": {"kind": "payments", "latency_ms": 200, "price_usd_per_1k_calls": 2.0},
        "authz": {"kind": "auth", "latency_ms": 50, "price_usd_per_1k_calls": 0.1},
    },
    "teams": {
        "web": {"headcount": 6, "oncall_size": 3, "changes_per_engineer_day": 1.5},
        "platform": {"headcount": 4, "oncall_size": 2, "utc_offset_hours": 1},
    },
}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (scenario paths in docs and examples are relative to it)."""
    return ROOT


@pytest.fixture(scope="session")
def baseline_path() -> Path:
    """``scenarios/baseline.yaml``."""
    return BASELINE


@pytest.fixture(scope="session")
def baseline_scenario(baseline_path: Path) -> Scenario:
    """The baseline scenario, loaded once."""
    return load_scenario(baseline_path)


@pytest.fixture(scope="session")
def baseline_run(baseline_scenario: Scenario) -> RunResult:
    """One 14-day run of the baseline with a fixed seed (shared: do not mutate)."""
    return simulate(baseline_scenario, seed=BASELINE_SEED, days=BASELINE_DAYS)


@pytest.fixture
def small_spec() -> dict[str, Any]:
    """The small scenario as a mapping; a fresh deep copy for every test."""
    return copy.deepcopy(SMALL)


@pytest.fixture
def small_scenario(small_spec: dict[str, Any]) -> Scenario:
    """The small scenario, validated."""
    return load_scenario(small_spec)
