"""Scenario discovery (orgtwin/sweeps/discovery.py): PRIM on synthetic sweeps with known boxes.

The synthetic sweeps (fixtures ``slo_sweep`` and ``synthetic_sweep``) break their SLO in
a box of lever ranges built in: PRIM recovers it exactly without noise and within a grid
step with label noise, its peeling trajectory shrinks, its rules separate the runs kept
from those peeled, a categorical lever is restricted to a category, and conditions are
parsed safely (comparisons only, column names checked).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

from orgtwin.errors import OrgTwinError, ResultsError
from orgtwin.sweeps.discovery import (
    SLO_MISSED,
    Discovery,
    default_condition,
    discover,
    parse_condition,
)

POLICY = "teams.web.deploy_policy.kind"
BREAKS = "availability_pct < 99.9"
Synthetic = Callable[..., pl.DataFrame]


def box_mask(runs: pl.DataFrame, found: Discovery) -> pl.Series:
    """Which runs lie in the box, rebuilt from its limits."""
    mask = pl.repeat(True, runs.height, eager=True)
    for lever, limit in found.limits.items():
        if limit.categories is not None:
            mask &= runs[lever].cast(pl.String).is_in(limit.categories)
        if limit.lower is not None:
            mask &= runs[lever] > limit.lower
        if limit.upper is not None:
            mask &= runs[lever] < limit.upper
    return mask


def test_discovery_recovers_the_box_exactly_without_noise(slo_sweep: Any):
    slo = slo_sweep
    found = discover(slo(), [slo.oncall, slo.spot], condition=BREAKS)
    assert found.rules() == [f"{slo.oncall} < {slo.oncall_cut}", f"{slo.spot} > {slo.spot_cut}"]
    assert found.coverage == 1.0 and found.density == 1.0
    n_true = sum(o < slo.oncall_cut for o in slo.oncall_levels) * sum(
        s > slo.spot_cut for s in slo.spot_levels
    )
    assert found.n_cases == found.n_in_box == 3 * n_true


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discovery_with_label_noise_cuts_within_one_grid_step(slo_sweep: Any, seed: int):
    # The box holds a quarter of the points, so 5% false alarms outside it leave the true
    # box above 80% coverage (in expectation 87%).
    slo = slo_sweep
    oncall, spot = slo.oncall_levels[:5], slo.spot_levels[3:]
    runs = slo(noise=0.05, seed=seed, oncall=oncall, spot=spot, replicates=6)
    found = discover(runs, [slo.oncall, slo.spot], condition=BREAKS)
    oncall_limit, spot_limit = found.limits[slo.oncall], found.limits[slo.spot]
    assert oncall_limit.lower is None and abs(oncall_limit.upper - slo.oncall_cut) <= 1
    assert spot_limit.upper is None and abs(spot_limit.lower - slo.spot_cut) <= 0.1 + 1e-9
    assert found.coverage >= 0.8 and found.density >= 0.8
    assert box_mask(runs, found).sum() == found.n_in_box


def test_trajectory_shrinks_and_the_chosen_step_is_reported(slo_sweep: Any):
    slo = slo_sweep
    runs = slo(noise=0.05)
    found = discover(runs, [slo.oncall, slo.spot], condition=BREAKS)
    path = found.trajectory
    assert (path["n_in_box"].diff().drop_nulls() < 0).all()
    assert (path["coverage"].diff().drop_nulls() <= 0).all()
    chosen = path.row(found.chosen_step, named=True)
    assert (chosen["coverage"], chosen["density"]) == (found.coverage, found.density)
    eligible = path.filter(pl.col("coverage") >= 0.8)
    assert found.density == eligible["density"].max()


def test_discovery_rules_separate_kept_from_peeled_on_random_points():
    rng = np.random.default_rng(6)
    n = 600
    runs = pl.DataFrame({"a": rng.random(n) * 10, "b": rng.random(n)})
    runs = runs.with_columns(pages=((pl.col("a") > 7.3) & (pl.col("b") < 0.42)).cast(pl.Float64))
    found = discover(runs, ["a", "b"], condition="pages > 0.5")
    assert box_mask(runs, found).sum() == found.n_in_box
    assert abs(found.limits["a"].lower - 7.3) < 1 and abs(found.limits["b"].upper - 0.42) < 0.1
    assert all(len(rule) < 20 for rule in found.rules()), found.rules()  # round cut points


def test_discovery_restricts_a_categorical_lever(slo_sweep: Any, synthetic_sweep: Synthetic):
    oncall = slo_sweep.oncall
    runs = synthetic_sweep(
        {POLICY: ["cab", "continuous", "weekly"], oncall: list(slo_sweep.oncall_levels)},
        2,
        lambda f: {"pages": np.where((f[POLICY] == "cab") & (f[oncall] < 3), 50.0, 5.0)},
    )
    found = discover(runs, [POLICY, oncall], condition="pages >= 50")
    assert found.limits[POLICY].categories == ("cab",)
    assert f"{POLICY} == 'cab'" in found.rules() and f"{oncall} < 3" in found.rules()
    assert found.density == 1.0 and found.coverage == 1.0


def test_a_condition_that_never_or_always_holds_is_explained(slo_sweep: Any):
    slo = slo_sweep
    runs = slo()
    never = discover(runs, [slo.oncall, slo.spot], condition="availability_pct > 100")
    always = discover(runs, [slo.oncall, slo.spot], condition="availability_pct > 0")
    assert never.n_cases == 0 and "none of the" in never.describe() and never.limits == {}
    assert always.n_cases == runs.height and "holds in all" in always.describe()


def test_a_condition_no_lever_explains_keeps_the_box_of_all_runs(synthetic_sweep: Synthetic):
    rng = np.random.default_rng(7)
    runs = synthetic_sweep({"x1": [0, 1, 2, 3]}, 50, lambda f: {"pages": rng.random(f.height)})
    found = discover(runs, ["x1"], condition="pages < 0.5", min_coverage=0.99)
    assert found.chosen_step == 0 and found.limits == {} and found.support == 1.0
    assert "no box of lever ranges" in found.describe()


def test_describe_reads_as_one_sentence_with_the_numbers(slo_sweep: Any):
    slo = slo_sweep
    runs = slo()
    found = discover(runs, [slo.oncall, slo.spot], condition=BREAKS)
    text = found.describe()
    assert text.startswith("availability_pct < 99.9 holds in 100% of runs where ")
    assert " and ".join(found.rules()) in text
    assert f"{found.n_in_box} of {runs.height} runs" in text
    assert "\n" not in text and ". " not in text, "one sentence"


def test_failed_and_undefined_runs_are_left_out_of_discovery(slo_sweep: Any):
    slo = slo_sweep
    runs = slo()
    broken = runs.head(10).with_columns(availability_pct=pl.lit(0.0), error=pl.lit("boom"))
    undefined = runs.head(5).with_columns(availability_pct=pl.lit(math.nan))
    everything = pl.concat([runs, broken, undefined])
    found = discover(everything, [slo.oncall, slo.spot], condition=BREAKS)
    clean = discover(runs, [slo.oncall, slo.spot], condition=BREAKS)
    assert found.n_runs == runs.height and found.n_cases == clean.n_cases


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "availability_pct < __import__('os').system('true')",
        "availability_pct < 99.9 or pages > 1",
        "availability_pct <",
        "",
    ],
)
def test_condition_parsing_refuses_anything_but_comparisons(slo_sweep: Any, text: str):
    with pytest.raises(OrgTwinError, match="condition must be"):
        parse_condition(text)
    with pytest.raises(ValueError):
        discover(slo_sweep(), [slo_sweep.oncall, slo_sweep.spot], condition=text)


def test_condition_names_must_be_columns_and_expressions_work_too(slo_sweep: Any):
    slo = slo_sweep
    runs = slo()
    with pytest.raises(ResultsError, match="did you mean 'availability_pct'"):
        discover(runs, [slo.oncall], condition="availabilty_pct < 99.9")
    by_text = discover(runs, [slo.oncall, slo.spot], condition=BREAKS)
    by_expr = discover(runs, [slo.oncall, slo.spot], condition=pl.col("availability_pct") < 99.9)
    assert by_expr.rules() == by_text.rules() and by_expr.n_in_box == by_text.n_in_box
    both = parse_condition("availability_pct >= 99.9 and availability_pct != 99.95")
    assert runs.filter(both).height == runs.filter(pl.col("availability_pct") >= 99.9).height


@pytest.mark.parametrize(
    ("option", "value"),
    [("peel_alpha", 0.7), ("peel_alpha", 0.0), ("min_coverage", 0.0), ("min_coverage", 1.2),
     ("min_support", 1.0)],
)  # fmt: skip
def test_discovery_options_are_checked(slo_sweep: Any, option: str, value: float):
    with pytest.raises(ResultsError, match=f"{option} must be"):
        discover(slo_sweep(), [slo_sweep.oncall], condition=BREAKS, **{option: value})


def _held(runs: pl.DataFrame, condition: str) -> int:
    return runs.filter(parse_condition(condition)).height


def test_the_default_condition_splits_the_runs():
    budget = [0.3, 0.6, 1.4, 0.8, 1.1, 0.5]
    runs = pl.DataFrame({
        "error_budget_used": budget,
        "availability_pct": [100.0 - 0.1 * b for b in budget],
        "pages": [3.0, 5.0, 9.0, 4.0, 8.0, 4.0],
        "error": [None] * 6,
    })  # fmt: skip
    assert default_condition(runs) == SLO_MISSED and _held(runs, SLO_MISSED) == 2
    met = runs.with_columns(error_budget_used=pl.lit(0.5))  # every run meets its SLO
    worse = default_condition(met)  # the worse half of availability
    assert worse.startswith("availability_pct < ") and _held(met, worse) == 3
    pages = default_condition(met, kpi="pages")  # lower is better: the upper half
    assert pages.startswith("pages > ") and 0 < _held(met, pages) < met.height
    ties = met.with_columns(pages=pl.Series([1.0, 4.0, 4.0, 4.0, 4.0, 4.0]))
    assert default_condition(ties, kpi="pages") == "pages >= 4"  # nothing above the median
    same = met.with_columns(pages=pl.lit(4.0))  # no condition on pages splits the runs
    assert default_condition(same, kpi="pages") == SLO_MISSED
