"""Arrival diagnostics: Poisson, bursty and regular processes told apart; Azure LLM traces.

Not an estimator (a function returning a dataclass), so there is nothing to clone.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from orgtwin.learn.arrivals import diagnose_arrivals
from tests.learn.real_data import read_example

START = datetime(2026, 1, 1)


def frame(seconds: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"time": [START + timedelta(seconds=float(s)) for s in seconds]})


def test_a_poisson_process_is_near_poisson_and_passes_the_dispersion_test() -> None:
    rejections, n_seeds = 0, 40
    for seed in range(n_seeds):
        gaps = np.random.default_rng(seed).exponential(0.5, 4000)
        d = diagnose_arrivals(frame(gaps.cumsum()), window_s=10)
        assert d.verdict == "near_poisson" and abs(d.cv - 1) < 0.1
        rejections += d.dispersion_p_value < 0.05
    # the test's size is 5%: rejections stay under 5% plus 3 binomial sd
    assert rejections / n_seeds <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / n_seeds)


def test_batches_are_bursty_and_a_clock_is_regular() -> None:
    rng = np.random.default_rng(1)
    batches = np.repeat(rng.exponential(20.0, 200).cumsum(), rng.geometric(0.05, 200))
    bursty = diagnose_arrivals(frame(batches + rng.uniform(0, 0.01, batches.size)))
    assert bursty.verdict == "bursty" and bursty.dispersion_index > 5
    assert bursty.dispersion_p_value < 1e-6
    clock = diagnose_arrivals(frame(np.arange(2000) * 1.0 + rng.normal(0, 0.05, 2000)))
    assert clock.verdict == "regular" and clock.cv < 0.1


def test_a_count_column_repeats_rows_and_bad_input_is_refused() -> None:
    times = [START, START + timedelta(seconds=1), START + timedelta(seconds=2)]
    d = diagnose_arrivals(pl.DataFrame({"time": times, "count": [2, 0, 3]}))
    assert d.n_arrivals == 5
    with pytest.raises(ValueError, match="at least 3 arrivals"):
        diagnose_arrivals(pl.DataFrame({"time": times[:2]}))
    with pytest.raises(ValueError, match="window_s must be > 0"):
        diagnose_arrivals(pl.DataFrame({"time": times}), window_s=0)


@pytest.mark.parametrize(
    ("kind", "verdict", "cv_low", "cv_high"),
    [("code", "bursty", 12.0, 14.0), ("conv", "near_poisson", 1.0, 1.2)],
)
def test_azure_llm_code_is_bursty_and_conv_near_poisson(
    kind: str, verdict: str, cv_low: float, cv_high: float
) -> None:
    """Azure LLM inference, one hour: measured CV 13.15 (code) and 1.09 (conv)."""
    arrivals = read_example("azure_llm_inference").tables["arrivals"]
    d = diagnose_arrivals(arrivals.filter(pl.col("key") == kind).collect(), window_s=1.0)
    assert d.verdict == verdict and cv_low <= d.cv <= cv_high


def test_azure_code_burstiness_is_one_the_twin_can_draw() -> None:
    """Counted per minute (the finest window with a few hundred requests), Azure's code
    requests vary far beyond Poisson and conversations barely; a twin segment given the
    code requests' ``burst_cv`` draws counts that vary as much (learned back, its
    interval covers the value)."""
    import copy

    from orgtwin import load_scenario, simulate
    from orgtwin.learn.demand import DemandLearner
    from orgtwin.runs.synth import arrivals as twin_arrivals
    from tests.learn.conftest import LEARNING_SPEC

    arrivals = read_example("azure_llm_inference").tables["arrivals"].collect()
    code, conv = (
        diagnose_arrivals(arrivals.filter(pl.col("key") == k), window_s=60.0)
        for k in ("code", "conv")
    )
    assert code.burst_cv > 2 * conv.burst_cv and code.burst_cv > 0.5  # measured 1.03, 0.25
    spec = copy.deepcopy(LEARNING_SPEC)
    spec["segments"]["main"]["demand_profile"] = {"burst_cv": code.burst_cv}
    spec["segments"]["main"]["n_users"] = 3000  # enough sessions an hour to see it
    run = simulate(load_scenario(spec), seed=1, days=42)
    (burst,) = [
        e for e in DemandLearner().fit(twin_arrivals(run)).estimates() if e.name == "burst_cv"
    ]
    assert burst.covers(code.burst_cv), (burst, code.burst_cv)
