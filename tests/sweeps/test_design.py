"""Designs (orgtwin/sweeps/design.py): which lever values a sweep runs, one row per point.

A grid holds every combination of the levers' levels once and refuses to grow beyond
its bound; a Latin hypercube puts exactly one point in each stratum of every lever and
depends only on its seed; ``make_design`` needs ``n`` for a hypercube; and
``validate_design`` refuses levers that do not fit the scenario before anything runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from orgtwin.errors import LeverError
from orgtwin.scenario.levers import parse_levers
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.design import (
    MAX_POINTS,
    grid,
    grid_size,
    latin_hypercube,
    make_design,
    validate_design,
)


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
    assert grid_size(levers) == points


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
    assert make_design(levers, "lhs", n=4, seed=3).equals(latin_hypercube(levers, 4, seed=3))
    assert make_design(levers).equals(grid(levers))


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


def test_grid_size_counts_without_building_anything(monkeypatch: pytest.MonkeyPatch):
    from orgtwin.scenario.levers import Lever

    def refuse(self: Lever) -> list:
        raise AssertionError("grid_size must not build levels")

    monkeypatch.setattr(Lever, "levels", refuse)
    levers = ["a.b.c=0..10000000000", "d.e.f=0..1:1000000", "g.h.i=x,y,z"]
    assert grid_size(levers) == 10_000_000_001 * 1_000_000 * 3


def test_a_grid_too_large_is_refused_before_any_level_is_built(monkeypatch: pytest.MonkeyPatch):
    from orgtwin.scenario.levers import Lever

    monkeypatch.setattr(Lever, "levels", lambda self: pytest.fail("built levels first"))
    levers = parse_levers(["a.b.c=0..1:1000000", "d.e.f=0..1:1000000", "g.h.i=0..2000000000"])
    with pytest.raises(LeverError, match=r"at most 1,000,000 points, got 2,000,000,001,"):
        grid(levers)  # 2e21 points: np.prod overflowed int64; the count is exact now
