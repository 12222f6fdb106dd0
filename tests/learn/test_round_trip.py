"""The round trip through the whole pipeline: a scenario's synthetic telemetry, written as a
folder by ``synth`` and learned back by ``learn``, gives intervals that cover the
scenario's own values, for every behaviour, over several seeds.

This is the test that fails when a learner (or the way :func:`orgtwin.learn.learn` feeds
it, or the way ``synth`` writes the tables) is wrong: each behaviour's 95% intervals must
cover the truth about as often as 95% intervals do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from orgtwin.learn import learn
from orgtwin.learn.base import Fit
from orgtwin.runs.synth import synth
from orgtwin.scenario.spec import Scenario
from tests.learn.conftest import LEARNING_DAYS

SEEDS = range(6)
WHERE = {
    "structure": "services.{entity}.{name}",
    "demand": "segments.{entity}.demand_profile.{name}",
    "latency": "services.{entity}.latency.{name}",
    "change_failure": "teams.{entity}.change_failure.{name}",
    "incident_timing": "teams.{entity}.incidents.{name}",
    "churn": "segments.{entity}.churn.{name}",
    "acquisition": "segments.{entity}.acquisition.{name}",
    "vendor_outages": "vendors.{entity}.{name}",
}
"""Where each behaviour's parameters sit in the scenario (``calls.api`` → ``calls.api``)."""


def truth(scenario: Scenario, fit: Fit, name: str) -> Any:
    """The scenario's own value of one of ``fit``'s parameters (a vendor call of a service
    is under ``vendors``)."""
    entity = fit.entity.split(" ", 1)[-1]
    if fit.behaviour == "structure" and name.split(".")[1] in scenario.vendors:
        name = name.replace("calls.", "vendors.", 1)
    value: Any = scenario
    for part in WHERE[fit.behaviour].format(entity=entity, name=name).split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


@pytest.fixture(scope="module")
def learned(learning_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> list:
    """One learning per seed: the report of ``learn`` on that seed's synthetic folder."""
    reports = []
    for seed in SEEDS:
        out = tmp_path_factory.mktemp(f"seed{seed}") / "telemetry"
        folder = synth(learning_scenario, days=LEARNING_DAYS, seed=seed, out=out)
        twin, report = learn(folder, base=learning_scenario)
        reports.append((folder, twin, report))
    return reports


def test_every_behaviour_is_learned_from_the_synthetic_folder(learned):
    for folder, twin, report in learned:
        assert {f.behaviour for f in report.fits} == set(WHERE), folder
        assert not report.warnings, report.warnings  # every table was there and used
        assert twin.segments["main"].demand_profile.profile is not None  # the free shape
        assert twin.services["gateway"].vendors == {"flaky": pytest.approx(0.2)}


@pytest.mark.parametrize("behaviour", sorted(WHERE))
def test_the_truth_lies_in_the_learned_intervals_over_seeds(
    behaviour: str, learned, learning_scenario: Scenario, enough_covered
):
    covered = []
    for _, _, report in learned:
        for fit in (f for f in report.fits if f.behaviour == behaviour):
            for e in fit.estimates:
                if e.source == "prior" or e.name == "peak_hour":
                    continue
                assert e.low <= e.value <= e.high, (fit.entity, e)
                covered.append(e.covers(truth(learning_scenario, fit, e.name)))
    assert len(covered) >= len(SEEDS), f"{behaviour}: too few learned parameters"
    assert sum(covered) >= enough_covered(len(covered)), (behaviour, covered)


def test_the_peak_hour_is_the_scenarios(learned, learning_scenario: Scenario):
    peak = learning_scenario.segments["main"].demand_profile.peak_hour
    found = [
        e.value for _, _, r in learned for f in r.fits for e in f.estimates if e.name == "peak_hour"
    ]
    assert found == [peak] * len(SEEDS)


def test_the_learned_twin_runs_like_the_scenario(learned, learning_scenario: Scenario):
    """Learned from its own telemetry, the twin's users, churn, arrivals and incidents
    match the scenario's: the means over seeds differ by less than 4 standard errors
    (plus 3% of the scenario's mean, for what the learned values may be off by)."""
    import orgtwin

    _, twin, _ = learned[0]
    seeds = range(100, 108)
    runs = {
        name: [orgtwin.simulate(sc, days=28, seed=s).summary() for s in seeds]
        for name, sc in (("truth", learning_scenario), ("twin", twin))
    }
    for kpi in ("users", "churned", "acquired", "incidents"):
        a = np.array([r[kpi] for r in runs["truth"]], dtype=float)
        b = np.array([r[kpi] for r in runs["twin"]], dtype=float)
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        assert abs(a.mean() - b.mean()) <= 4 * se + 0.03 * a.mean(), (kpi, a, b)


def test_the_path_helper_finds_calls_and_vendor_calls(learning_scenario: Scenario):
    fit = Fit("structure", "service gateway", [])
    assert truth(learning_scenario, fit, "calls.flaky") == 0.2
    assert truth(learning_scenario, fit, "calls.api") == 1.0
