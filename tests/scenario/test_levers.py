"""Levers (orgtwin/scenario/levers.py): parsing, applying to a scenario, and bad input.

A lever is a path into the scenario and the values to try (a range, a counted range or
a list); applying one also writes to the interventions that set the same field; bad
lever text is refused with the lever named and, where one helps, a suggestion. Designs
built from levers have their own tests (``tests/sweeps/test_design.py``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from orgtwin.errors import LeverError, ScenarioError
from orgtwin.scenario.levers import apply_levers, parse_lever, parse_levers, targets
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario


def test_parse_ranges_lists_and_counts():
    assert parse_lever("teams.platform.oncall_size=2..8").levels() == [2, 3, 4, 5, 6, 7, 8]
    spot = parse_lever("services.*.spot_share=0..0.9:10")
    assert len(spot.levels()) == 10
    assert spot.levels()[0] == 0.0 and spot.levels()[-1] == pytest.approx(0.9)
    assert parse_lever("teams.web.deploy_policy.kind=continuous,approval_board").levels() == [
        "continuous",
        "approval_board",
    ]
    assert parse_lever("segments.pro.price_usd_month=12,15,19").levels() == [12, 15, 19]


@pytest.mark.parametrize(
    ("levers", "match"),
    [
        (["teams.platform.oncall_size=8..2"], r"low to high.*did you mean 2\.\.8"),
        (["teams.platform.oncall_size=2..8", "teams.platform.oncall_size=3,4"], "given twice"),
        (["teams.platform.oncall_size"], "no '='"),
        ([], "at least one lever"),
    ],
)
def test_bad_lever_text_is_refused(levers: list[str], match: str):
    with pytest.raises(LeverError, match=match):
        parse_levers(levers)


def test_a_lever_writes_to_the_interventions_that_set_the_same_field(small_spec: dict[str, Any]):
    small_spec["interventions"] = [
        {"kind": "spot_share", "at": 1, "services": "*", "spot_share": 0.7}
    ]
    scenario = load_scenario(small_spec)
    changed = apply_levers(scenario, {"services.*.spot_share": 0.2})
    assert all(s.spot_share == 0.2 for s in changed.services.values())
    assert [iv.spot_share for iv in changed.interventions] == [0.2]
    assert scenario.interventions[0].spot_share == 0.7, "the original must not change"


def test_a_lever_on_some_entities_splits_an_intervention_that_covers_more(
    small_spec: dict[str, Any],
):
    small_spec["interventions"] = [
        {"kind": "oncall_rotation", "at": 1, "teams": "*", "oncall_size": 2}
    ]
    scenario = load_scenario(small_spec)
    before = scenario.model_dump()
    found = targets(scenario, "teams.web.oncall_size")
    assert scenario.model_dump() == before, "targets() must not change the scenario"
    assert [t.where for t in found] == [
        "teams.web.oncall_size", "interventions[0] (oncall_rotation).oncall_size",
    ]  # fmt: skip
    assert (found[1].selector, found[1].mine, found[1].others) == ("teams", ("web",),
                                                                    ("platform",))  # fmt: skip
    changed = apply_levers(scenario, {"teams.web.oncall_size": 3})
    rotations = [(iv.teams, iv.oncall_size) for iv in changed.interventions]
    assert rotations == [(["platform"], 2), (["web"], 3)]
    assert scenario.model_dump() == before, "apply_levers() changes a copy"


def test_python_tuples_are_whole_numbers_only_when_given_as_ints():
    from orgtwin.scenario.levers import make_lever

    assert make_lever("teams.web.oncall_size", (2, 5)).levels() == [2, 3, 4, 5]
    assert make_lever("services.*.spot_share", (2.0, 4.0)).levels() == [2.0, 2.5, 3.0, 3.5, 4.0]


def test_a_price_lever_moves_churn_and_revenue_against_the_files_price():
    from pathlib import Path

    import orgtwin
    from orgtwin.scenario.levers import apply_levers

    scenario = orgtwin.load_scenario(
        Path(__file__).resolve().parents[2] / "scenarios" / "baseline.yaml"
    )
    assert scenario.segments["pro_us"].churn.reference_price_usd_month == 12
    dearer = apply_levers(scenario, {"segments.pro_us.price_usd_month": 24.0})
    base = orgtwin.simulate(scenario, seed=5, days=20).summary()
    moved = orgtwin.simulate(dearer, seed=5, days=20).summary()
    assert moved["churned"] > base["churned"]
    assert moved["acquired"] < base["acquired"]
    assert moved["revenue_usd"] > base["revenue_usd"]


# --------------------------------------------------------------------------- hostile text


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("teams.web.deploy_policy.kind=[1", r"values must be numbers, true/false or names"),
        ("teams.web.deploy_policy.kind=!!python/name:os.system", "must be numbers, true/false"),
        ("teams.web.deploy_policy.kind={a: 1}", "must be numbers, true/false or names"),
        ("services.*.spot_share=.nan", "must be finite numbers"),
        ("services.*.spot_share=1e999..2", "finite ends"),
        ("services.*.spot_share=0..0.9:30000000", r"count must be between 1 and 1,000,000"),
        ("services.*.spot_share=0..1:2000000000", r"got 2,000,000,000"),
    ],
)
def test_hostile_lever_text_is_a_lever_error_at_once(text: str, match: str):
    started = time.perf_counter()
    with pytest.raises(LeverError, match=match):
        parse_lever(text)
    assert time.perf_counter() - started < 1  # 30,000,000 levels took 186 s and 1.7 GB


def test_a_wide_integer_range_is_counted_not_built():
    lever = parse_lever("seed=0..10000000000")
    assert lever.size == 10_000_000_001
    with pytest.raises(LeverError, match="at most 1,000,000 levels"):
        lever.levels()


def test_a_whole_float_sets_a_whole_number_field_and_a_fraction_does_not(
    small_scenario: Scenario,
):
    changed = apply_levers(small_scenario, {"teams.web.oncall_size": 2.0})
    assert changed.teams["web"].oncall_size == 2 and isinstance(
        changed.teams["web"].oncall_size, int
    )
    with pytest.raises(LeverError, match="valid integer"):
        apply_levers(small_scenario, {"teams.web.oncall_size": 2.5})
    with pytest.raises(LeverError, match="valid integer"):
        apply_levers(small_scenario, {"teams.web.oncall_size": True})


def test_a_lever_value_that_breaks_the_structure_is_refused(small_scenario: Scenario):
    deep = {
        "services.gateway.calls": {"catalog": 1000.0},
        "services.catalog.calls": {"users": 1000.0},
    }
    with pytest.raises(ScenarioError, match="must cause at most 1,000,000 calls"):
        apply_levers(small_scenario, deep)
