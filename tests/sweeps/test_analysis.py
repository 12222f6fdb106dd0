"""Sweep analysis on synthetic sweeps whose answers are built in: effects, importance, PRIM."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orgtwin.errors import OrgTwinError, ResultsError
from orgtwin.sweeps.analysis import format_sweep_report, lever_effects, lever_importance
from orgtwin.sweeps.discovery import Discovery, discover, parse_condition

ONCALL = "teams.platform.oncall_size"
SPOT = "services.*.spot_share"
POLICY = "teams.web.deploy_policy.kind"
ONCALL_LEVELS = list(range(1, 9))
SPOT_LEVELS = [round(0.1 * i, 1) for i in range(10)]
ONCALL_CUT, SPOT_CUT = 4, 0.6  # cases of interest: oncall < 4 and spot > 0.6


def sweep(levers: dict[str, list], replicates: int, kpis) -> pl.DataFrame:
    """A grid sweep: every combination of lever values x replicates, KPIs from ``kpis(frame)``."""
    points = list(itertools.product(*levers.values()))
    frame = pl.DataFrame(
        {
            "point": np.repeat(np.arange(len(points)), replicates),
            "replicate": np.tile(np.arange(replicates), len(points)),
            **{
                name: [p[i] for p in points for _ in range(replicates)]
                for i, name in enumerate(levers)
            },
        }
    ).with_columns(seed=pl.col("point") * 100 + pl.col("replicate"))
    return frame.with_columns(**kpis(frame), error=pl.lit(None, dtype=pl.String))


def linear_runs(seed: int = 1) -> pl.DataFrame:
    """pages = 3 * x1 + 0 * x2 + N(0, 1), x1 and x2 on 5-level grids, 4 replicates."""
    rng = np.random.default_rng(seed)
    return sweep(
        {"x1": [0, 1, 2, 3, 4], "x2": [0.0, 0.5, 1.0, 1.5, 2.0]},
        4,
        lambda f: {"pages": 3.0 * f["x1"].to_numpy() + rng.normal(0.0, 1.0, f.height)},
    )


def slo_runs(
    *, noise: float = 0.0, seed: int = 2, oncall=ONCALL_LEVELS, spot=SPOT_LEVELS, replicates=3
) -> pl.DataFrame:
    """availability < 99.9 exactly when oncall < 4 and spot > 0.6, labels flipped w.p. noise."""
    rng = np.random.default_rng(seed)

    def kpis(f: pl.DataFrame) -> dict[str, np.ndarray]:
        bad = (f[ONCALL].to_numpy() < ONCALL_CUT) & (f[SPOT].to_numpy() > SPOT_CUT)
        bad ^= rng.random(f.height) < noise
        return {"availability_pct": np.where(bad, 99.5, 99.95) + rng.normal(0, 0.01, f.height)}

    return sweep({ONCALL: oncall, SPOT: spot}, replicates, kpis)


def row(effects: pl.DataFrame, lever: str, kpi: str = "pages") -> dict:
    return effects.filter(lever=lever, kpi=kpi).row(0, named=True)


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


# --------------------------------------------------------------------------- effects


def test_effect_of_a_linear_lever_is_slope_times_range_and_a_null_lever_crosses_zero():
    runs = linear_runs()
    effects = lever_effects(runs, ["x1", "x2"], kpis=["pages"])
    x1, x2 = row(effects, "x1"), row(effects, "x2")
    truth = 3.0 * (runs["x1"].max() - runs["x1"].min())
    assert (x1["low_level"], x1["high_level"]) == ("0", "4")
    assert x1["ci_low"] <= truth <= x1["ci_high"] and x1["ci_low"] > 0 and x1["significant"]
    assert x2["ci_low"] <= 0.0 <= x2["ci_high"] and not x2["significant"]
    assert x1["effect"] == pytest.approx(x1["mean_at_high"] - x1["mean_at_low"])


def test_standardised_slope_interval_holds_the_true_slope_per_sd():
    runs = linear_runs()
    effects = lever_effects(runs, ["x1", "x2"], kpis=["pages"])
    x1, x2 = row(effects, "x1"), row(effects, "x2")
    assert x1["slope_ci_low"] <= 3.0 * runs["x1"].std() <= x1["slope_ci_high"]
    assert x2["slope_ci_low"] <= 0.0 <= x2["slope_ci_high"]


def test_many_distinct_values_are_binned_into_quintiles():
    rng = np.random.default_rng(3)
    x = rng.random(400)
    runs = pl.DataFrame({"x": x, "pages": 3.0 * x + rng.normal(0, 0.2, x.size)})
    effect = row(lever_effects(runs, ["x"], kpis=["pages"]), "x")
    low, high = np.quantile(x, 0.2), np.quantile(x, 0.8)
    truth = 3.0 * (x[x >= high].mean() - x[x <= low].mean())
    assert effect["low_level"].startswith("<=") and effect["high_level"].startswith(">=")
    assert effect["ci_low"] <= truth <= effect["ci_high"]


def test_categorical_lever_compares_its_worst_and_best_category():
    rng = np.random.default_rng(4)
    runs = sweep(
        {POLICY: ["approval_board", "cab", "continuous"], "x1": [1, 2]},
        10,
        lambda f: {"pages": 5.0 * (f[POLICY] == "cab").to_numpy() + rng.normal(0, 1, f.height)},
    )
    effect = row(lever_effects(runs, [POLICY, "x1"], kpis=["pages"]), POLICY)
    assert effect["high_level"] == "cab" and effect["low_level"] != "cab"
    assert effect["ci_low"] <= 5.0 <= effect["ci_high"] and effect["significant"]
    assert effect["slope_per_sd"] is None


def test_failed_runs_are_ignored():
    runs = linear_runs()
    failed = runs.head(6).with_columns(x1=pl.lit(99, dtype=pl.Int64), error=pl.lit("lost"))
    # Failed runs have null KPIs; one that left a value behind must be ignored all the same.
    with_failures = pl.concat(
        [
            runs,
            failed.with_columns(pages=pl.lit(None, dtype=pl.Float64)),
            failed.with_columns(pages=pl.lit(1000.0)),
        ]
    )
    assert_frame_equal(
        lever_effects(with_failures, ["x1", "x2"], kpis=["pages"]),
        lever_effects(runs, ["x1", "x2"], kpis=["pages"]),
    )
    assert_frame_equal(
        lever_importance(with_failures, ["x1", "x2"], kpi="pages"),
        lever_importance(runs, ["x1", "x2"], kpi="pages"),
    )


def test_default_kpis_are_the_main_ones_present_and_unknown_columns_are_refused():
    runs = linear_runs().with_columns(availability_pct=pl.lit(99.9), margin_usd=pl.lit(1.0))
    assert set(lever_effects(runs, ["x1"])["kpi"]) == {"pages", "availability_pct"}
    with pytest.raises(ResultsError, match="did you mean 'x1'"):
        lever_effects(runs, ["x11"])
    with pytest.raises(ResultsError, match="kpis"):
        lever_effects(runs, ["x1"], kpis="pages")


# --------------------------------------------------------------------------- importance


def test_importance_ranks_the_strong_lever_first_and_pure_noise_last():
    rng = np.random.default_rng(5)
    runs = sweep(
        {"x1": [0, 1, 2, 3, 4], "x2": [0, 1, 2, 3, 4], "noise": [0.0, 0.5, 1.0]},
        2,
        lambda f: {
            "pages": 3.0 * f["x1"].to_numpy() + f["x2"].to_numpy() + rng.normal(0, 1, f.height)
        },
    )
    ranks = lever_importance(runs, ["noise", "x2", "x1"], kpi="pages", random_state=1)
    assert ranks["lever"].to_list() == ["x1", "x2", "noise"]
    assert ranks["rank"].to_list() == [1, 2, 3]
    assert ranks["surrogate_r2"].n_unique() == 1 and ranks["surrogate_r2"][0] > 0.5
    again = lever_importance(runs, ["noise", "x2", "x1"], kpi="pages", random_state=1)
    assert_frame_equal(ranks, again)


def test_importance_refuses_a_constant_kpi_and_too_few_runs():
    runs = linear_runs().with_columns(pages=pl.lit(7.0))
    with pytest.raises(ResultsError, match="cannot rank levers: kpi pages is constant"):
        lever_importance(runs, ["x1", "x2"], kpi="pages")
    with pytest.raises(ResultsError, match="at least"):
        lever_importance(linear_runs().head(5), ["x1", "x2"], kpi="pages")


# --------------------------------------------------------------------------- discovery


def test_discovery_recovers_the_box_exactly_without_noise():
    found = discover(slo_runs(), [ONCALL, SPOT], condition="availability_pct < 99.9")
    assert found.rules() == [f"{ONCALL} < {ONCALL_CUT}", f"{SPOT} > {SPOT_CUT}"]
    assert found.coverage == 1.0 and found.density == 1.0
    n_true = sum(o < ONCALL_CUT for o in ONCALL_LEVELS) * sum(s > SPOT_CUT for s in SPOT_LEVELS)
    assert found.n_cases == found.n_in_box == 3 * n_true


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discovery_with_label_noise_cuts_within_one_grid_step(seed: int):
    # The box holds a quarter of the points, so 5% false alarms outside it leave the true
    # box above 80% coverage (in expectation 87%).
    oncall, spot = ONCALL_LEVELS[:5], SPOT_LEVELS[3:]
    runs = slo_runs(noise=0.05, seed=seed, oncall=oncall, spot=spot, replicates=6)
    found = discover(runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
    oncall, spot = found.limits[ONCALL], found.limits[SPOT]
    assert oncall.lower is None and abs(oncall.upper - ONCALL_CUT) <= 1
    assert spot.upper is None and abs(spot.lower - SPOT_CUT) <= 0.1 + 1e-9
    assert found.coverage >= 0.8 and found.density >= 0.8
    assert box_mask(runs, found).sum() == found.n_in_box


def test_trajectory_shrinks_and_the_chosen_step_is_reported():
    runs = slo_runs(noise=0.05)
    found = discover(runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
    path = found.trajectory
    assert (path["n_in_box"].diff().drop_nulls() < 0).all()
    assert (path["coverage"].diff().drop_nulls() <= 0).all()
    chosen = path.row(found.chosen_step, named=True)
    assert (chosen["coverage"], chosen["density"]) == (found.coverage, found.density)
    eligible = path.filter(pl.col("coverage") >= 0.8)
    assert found.density == eligible["density"].max()


def test_discovery_rules_separate_kept_from_peeled_on_a_latin_hypercube():
    rng = np.random.default_rng(6)
    n = 600
    runs = pl.DataFrame({"a": rng.random(n) * 10, "b": rng.random(n)})
    runs = runs.with_columns(pages=((pl.col("a") > 7.3) & (pl.col("b") < 0.42)).cast(pl.Float64))
    found = discover(runs, ["a", "b"], condition="pages > 0.5")
    assert box_mask(runs, found).sum() == found.n_in_box
    assert abs(found.limits["a"].lower - 7.3) < 1 and abs(found.limits["b"].upper - 0.42) < 0.1
    assert all(len(rule) < 20 for rule in found.rules()), found.rules()  # round cut points


def test_discovery_restricts_a_categorical_lever():
    runs = sweep(
        {POLICY: ["cab", "continuous", "weekly"], ONCALL: ONCALL_LEVELS},
        2,
        lambda f: {"pages": np.where((f[POLICY] == "cab") & (f[ONCALL] < 3), 50.0, 5.0)},
    )
    found = discover(runs, [POLICY, ONCALL], condition="pages >= 50")
    assert found.limits[POLICY].categories == ("cab",)
    assert f"{POLICY} == 'cab'" in found.rules() and f"{ONCALL} < 3" in found.rules()
    assert found.density == 1.0 and found.coverage == 1.0


def test_a_condition_that_never_or_always_holds_is_explained():
    runs = slo_runs()
    never = discover(runs, [ONCALL, SPOT], condition="availability_pct > 100")
    always = discover(runs, [ONCALL, SPOT], condition="availability_pct > 0")
    assert never.n_cases == 0 and "none of the" in never.describe() and never.limits == {}
    assert always.n_cases == runs.height and "holds in all" in always.describe()


def test_a_condition_no_lever_explains_keeps_the_box_of_all_runs():
    rng = np.random.default_rng(7)
    runs = sweep({"x1": [0, 1, 2, 3]}, 50, lambda f: {"pages": rng.random(f.height)})
    found = discover(runs, ["x1"], condition="pages < 0.5", min_coverage=0.99)
    assert found.chosen_step == 0 and found.limits == {} and found.support == 1.0
    assert "no box of lever ranges" in found.describe()


def test_describe_reads_as_one_sentence_with_the_numbers():
    runs = slo_runs()
    found = discover(runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
    text = found.describe()
    assert text.startswith("availability_pct < 99.9 holds in 100% of runs where ")
    assert " and ".join(found.rules()) in text
    assert f"{found.n_in_box} of {runs.height} runs" in text


def test_failed_and_undefined_runs_are_left_out_of_discovery():
    runs = slo_runs()
    broken = runs.head(10).with_columns(availability_pct=pl.lit(0.0), error=pl.lit("boom"))
    undefined = runs.head(5).with_columns(availability_pct=pl.lit(math.nan))
    everything = pl.concat([runs, broken, undefined])
    found = discover(everything, [ONCALL, SPOT], condition="availability_pct < 99.9")
    clean = discover(runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
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
def test_condition_parsing_refuses_anything_but_comparisons(text: str):
    with pytest.raises(OrgTwinError, match="condition must be"):
        parse_condition(text)
    with pytest.raises(ValueError):
        discover(slo_runs(), [ONCALL, SPOT], condition=text)


def test_condition_names_must_be_columns_and_expressions_work_too():
    runs = slo_runs()
    with pytest.raises(ResultsError, match="did you mean 'availability_pct'"):
        discover(runs, [ONCALL], condition="availabilty_pct < 99.9")
    by_text = discover(runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
    by_expr = discover(runs, [ONCALL, SPOT], condition=pl.col("availability_pct") < 99.9)
    assert by_expr.rules() == by_text.rules() and by_expr.n_in_box == by_text.n_in_box
    both = parse_condition("availability_pct >= 99.9 and availability_pct != 99.95")
    assert runs.filter(both).height == runs.filter(pl.col("availability_pct") >= 99.9).height


def test_discovery_options_are_checked():
    with pytest.raises(ResultsError, match="peel_alpha must be"):
        discover(slo_runs(), [ONCALL], condition="availability_pct < 99.9", peel_alpha=0.7)


# --------------------------------------------------------------------------- report


def test_sweep_report_has_effects_importance_and_the_discovery_sentence():
    runs = slo_runs(noise=0.05)
    failed = runs.head(3).with_columns(
        availability_pct=pl.lit(None, dtype=pl.Float64), error=pl.lit("boom")
    )
    all_runs = pl.concat([runs, failed])
    text = format_sweep_report(all_runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
    found = discover(all_runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
    assert ONCALL in text and SPOT in text and "3 failed" in text
    assert found.describe() in text
    assert "Lever importance for availability_pct" in text
    assert "\x1b" not in text
    no_condition = format_sweep_report(runs, [ONCALL, SPOT])
    assert "discovery" not in no_condition.lower()
