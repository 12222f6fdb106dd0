"""Sweep analysis (orgtwin/sweeps/analysis.py) on synthetic sweeps with built-in answers.

Lever effects hold the true effect of a linear lever in their interval and cross zero
for a lever without effect; many distinct values are binned into quintiles and a
categorical lever compares its extreme categories; failed runs are ignored; lever
importance ranks the strong lever first and noise last; and the plain-text report holds
the effects, the importance and the discovery's sentence. PRIM itself is tested in
``test_discovery.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orgtwin.errors import ResultsError
from orgtwin.sweeps.analysis import format_sweep_report, lever_effects, lever_importance
from orgtwin.sweeps.discovery import discover

POLICY = "teams.web.deploy_policy.kind"
Synthetic = Callable[..., pl.DataFrame]


@pytest.fixture
def linear_runs(synthetic_sweep: Synthetic) -> Callable[..., pl.DataFrame]:
    """``linear_runs(seed=1)``: pages = 3 * x1 + 0 * x2 + N(0, 1), x1 and x2 on 5-level
    grids, 4 replicates."""

    def make(seed: int = 1) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        return synthetic_sweep(
            {"x1": [0, 1, 2, 3, 4], "x2": [0.0, 0.5, 1.0, 1.5, 2.0]},
            4,
            lambda f: {"pages": 3.0 * f["x1"].to_numpy() + rng.normal(0.0, 1.0, f.height)},
        )

    return make


def row(effects: pl.DataFrame, lever: str, kpi: str = "pages") -> dict:
    return effects.filter(lever=lever, kpi=kpi).row(0, named=True)


# --------------------------------------------------------------------------- effects


def test_effect_of_a_linear_lever_is_slope_times_range_and_a_null_lever_crosses_zero(
    linear_runs: Callable[..., pl.DataFrame],
):
    runs = linear_runs()
    effects = lever_effects(runs, ["x1", "x2"], kpis=["pages"])
    x1, x2 = row(effects, "x1"), row(effects, "x2")
    truth = 3.0 * (runs["x1"].max() - runs["x1"].min())
    assert (x1["low_level"], x1["high_level"]) == ("0", "4")
    assert x1["ci_low"] <= truth <= x1["ci_high"] and x1["ci_low"] > 0 and x1["significant"]
    assert x2["ci_low"] <= 0.0 <= x2["ci_high"] and not x2["significant"]
    assert x1["effect"] == pytest.approx(x1["mean_at_high"] - x1["mean_at_low"])


def test_standardised_slope_interval_holds_the_true_slope_per_sd(
    linear_runs: Callable[..., pl.DataFrame],
):
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


def test_categorical_lever_compares_its_worst_and_best_category(synthetic_sweep: Synthetic):
    rng = np.random.default_rng(4)
    runs = synthetic_sweep(
        {POLICY: ["approval_board", "cab", "continuous"], "x1": [1, 2]},
        10,
        lambda f: {"pages": 5.0 * (f[POLICY] == "cab").to_numpy() + rng.normal(0, 1, f.height)},
    )
    effect = row(lever_effects(runs, [POLICY, "x1"], kpis=["pages"]), POLICY)
    assert effect["high_level"] == "cab" and effect["low_level"] != "cab"
    assert effect["ci_low"] <= 5.0 <= effect["ci_high"] and effect["significant"]
    assert effect["slope_per_sd"] is None


def test_failed_runs_are_ignored(linear_runs: Callable[..., pl.DataFrame]):
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


def test_default_kpis_are_the_main_ones_present_and_unknown_columns_are_refused(
    linear_runs: Callable[..., pl.DataFrame],
):
    runs = linear_runs().with_columns(availability_pct=pl.lit(99.9), margin_usd=pl.lit(1.0))
    assert set(lever_effects(runs, ["x1"])["kpi"]) == {"pages", "availability_pct"}
    with pytest.raises(ResultsError, match="did you mean 'x1'"):
        lever_effects(runs, ["x11"])
    with pytest.raises(ResultsError, match="kpis"):
        lever_effects(runs, ["x1"], kpis="pages")


# --------------------------------------------------------------------------- importance


def test_importance_ranks_the_strong_lever_first_and_pure_noise_last(synthetic_sweep: Synthetic):
    rng = np.random.default_rng(5)
    runs = synthetic_sweep(
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


def test_importance_refuses_a_constant_kpi_and_too_few_runs(
    linear_runs: Callable[..., pl.DataFrame],
):
    runs = linear_runs().with_columns(pages=pl.lit(7.0))
    with pytest.raises(ResultsError, match="cannot rank levers: kpi pages is constant"):
        lever_importance(runs, ["x1", "x2"], kpi="pages")
    with pytest.raises(ResultsError, match="at least"):
        lever_importance(linear_runs().head(5), ["x1", "x2"], kpi="pages")


# --------------------------------------------------------------------------- report


def test_sweep_report_has_effects_importance_and_the_discovery_sentence(slo_sweep: Any):
    runs = slo_sweep(noise=0.05)
    failed = runs.head(3).with_columns(
        availability_pct=pl.lit(None, dtype=pl.Float64), error=pl.lit("boom")
    )
    all_runs = pl.concat([runs, failed])
    levers = [slo_sweep.oncall, slo_sweep.spot]
    text = format_sweep_report(all_runs, levers, condition="availability_pct < 99.9")
    found = discover(all_runs, levers, condition="availability_pct < 99.9")
    assert slo_sweep.oncall in text and slo_sweep.spot in text and "3 failed" in text
    assert "Lever effects, lowest to highest level" in text
    effects = lever_effects(all_runs, levers)
    assert all(kpi in text for kpi in effects["kpi"]), "every KPI of the effects is listed"
    assert found.describe() in text
    assert "Lever importance for availability_pct" in text
    assert "\x1b" not in text
    no_condition = format_sweep_report(runs, levers)
    assert "discovery" not in no_condition.lower()
