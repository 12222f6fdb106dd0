"""Levers and designs: parsing, grid sizes, Latin hypercube strata, and bad input.

Every bad lever is refused before a sweep starts, with the lever named and, where one
helps, a suggestion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from orgtwin.errors import LeverError
from orgtwin.scenario.levers import apply_levers, parse_lever, parse_levers
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.design import MAX_POINTS, grid, latin_hypercube, make_design, validate_design


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
    ("levers", "points"),
    [
        (["a.b.c=1..3"], 3),
        (["a.b.c=1..3", "d.e.f=0..1:5"], 15),
        (["a.b.c=1..3", "d.e.f=0..1:5", "g.h.i=x,y"], 30),
    ],
)
def test_grid_has_every_combination_once(levers: list[str], points: int):
    design = grid(parse_levers(levers))
    assert design.height == points
    assert design["point"].to_list() == list(range(points))
    paths = [lever.split("=")[0] for lever in levers]
    assert design.select(paths).unique().height == points


def test_latin_hypercube_puts_one_point_in_each_stratum():
    levers = parse_levers({"services.*.spot_share": "0..0.9:10", "teams.web.fatigue_x": (0.5, 8.0)})
    n = 25
    design = latin_hypercube(levers, n, seed=7)
    assert design.height == n
    for lever in levers:
        values = design[lever.path].to_numpy()
        assert lever.low is not None and lever.high is not None
        strata = np.floor((values - lever.low) / (lever.high - lever.low) * n).astype(int)
        assert sorted(strata.tolist()) == list(range(n)), lever.path
    assert latin_hypercube(levers, n, seed=7).equals(design)
    assert not latin_hypercube(levers, n, seed=8).equals(design)


def test_make_design_needs_n_for_lhs_and_a_known_kind():
    levers = parse_levers(["a.b.c=0..1"])
    with pytest.raises(LeverError, match="needs n"):
        make_design(levers, "lhs")
    with pytest.raises(LeverError, match="must be 'grid' or 'lhs'"):
        make_design(levers, "sobol")  # type: ignore[arg-type]


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


def test_a_grid_too_large_is_refused():
    levers = parse_levers([f"x.y.l{i}=0..1:20" for i in range(5)])  # 20**5 = 3.2M points
    assert math.prod(len(lv.levels()) for lv in levers) > MAX_POINTS
    with pytest.raises(LeverError, match="at most 1,000,000 points"):
        grid(levers)


@pytest.mark.parametrize(
    ("lever", "match"),
    [
        ("teams.platform.oncal_size=2..4", "did you mean 'oncall_size'"),
        ("teams.platfrom.oncall_size=2..4", "did you mean 'platform'"),
        ("services.*.spot_share=0..1.5:4", "spot_share"),
        ("teams.platform.oncall_size=0..3", "oncall_size"),
    ],
)
def test_levers_that_do_not_fit_the_scenario_fail_before_anything_runs(
    small_scenario: Scenario, lever: str, match: str
):
    levers = parse_levers([lever])
    with pytest.raises(LeverError, match=match):
        validate_design(small_scenario, levers, grid(levers))


def test_a_lever_writes_to_the_interventions_that_set_the_same_field(small_spec: dict[str, Any]):
    small_spec["interventions"] = [
        {"kind": "spot_share", "at": 1, "services": "*", "spot_share": 0.7}
    ]
    scenario = load_scenario(small_spec)
    changed = apply_levers(scenario, {"services.*.spot_share": 0.2})
    assert all(s.spot_share == 0.2 for s in changed.services.values())
    assert [iv.spot_share for iv in changed.interventions] == [0.2]
    assert scenario.interventions[0].spot_share == 0.7, "the original must not change"


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
