"""Uncertainty across seeds (orgtwin/runs/stats.py): Student-t and Welch intervals, scipy-free.

:func:`t_quantile` matches the printed t table and, where scipy is installed, scipy for
fractional degrees of freedom; :func:`mean_interval` is the Student-t interval of a
sample's finite values; :func:`welch_half_width` is Welch's interval of a difference of
means, with the Welch-Satterthwaite degrees of freedom.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from orgtwin.errors import ResultsError
from orgtwin.runs import stats


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 7, 2.365),
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 30, 2.042),
        (0.995, 10, 3.169),
        (0.95, 5, 2.015),
        (0.9, 3, 1.638),
        (0.975, 120, 1.980),
        (0.025, 7, -2.365),
        (0.5, 4, 0.0),
        (0.975, 1e9, 1.960),
    ],
)
def test_t_quantile_matches_the_table(p: float, df: float, expected: float) -> None:
    assert round(stats.t_quantile(p, df), 3) == expected


def test_t_quantile_matches_scipy_for_fractional_df() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (0.7, 2.5, 4.3, 11.8, 57.2):
        for p in (0.6, 0.95, 0.975, 0.999):
            assert stats.t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-7)


def test_t_quantile_rejects_out_of_range_arguments() -> None:
    with pytest.raises(ResultsError, match="p must be between 0 and 1"):
        stats.t_quantile(1.0, 3)
    with pytest.raises(ResultsError, match="df must be > 0, got 0"):
        stats.t_quantile(0.9, 0)


def test_mean_interval_leaves_out_nan_and_has_no_half_width_below_two_values() -> None:
    mean, half, n = stats.mean_interval(np.array([1.0, 2.0, 3.0, np.nan]))
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(4.303 * 1.0 / math.sqrt(3), abs=1e-3)
    assert stats.mean_interval(np.array([4.0])) == (4.0, None, 1)
    assert stats.mean_interval(np.array([])) == (None, None, 0)


def test_welch_half_width_with_equal_sizes_and_variances_has_2n_minus_2_df() -> None:
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([11.0, 12.0, 13.0, 14.0])
    # both variances 5/3, so df = 2 (n - 1) = 6 and t(0.975, 6) = 2.4469
    expected = 2.4469 * math.sqrt(2 * (5 / 3) / 4)
    assert stats.welch_half_width(a, b) == pytest.approx(expected, abs=1e-4)
    assert stats.welch_half_width(b, a) == stats.welch_half_width(a, b)


def test_welch_half_width_matches_scipy_for_unequal_variances() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(8)
    for n_a, n_b in ((3, 9), (5, 5), (12, 4)):
        a, b = rng.normal(0, 1, n_a), rng.normal(3, 4, n_b)
        result = scipy_stats.ttest_ind(b, a, equal_var=False)
        low, high = result.confidence_interval(0.9)
        half = stats.welch_half_width(a, b, confidence=0.9)
        assert half == pytest.approx((high - low) / 2, rel=1e-6)
        assert (low + high) / 2 == pytest.approx(b.mean() - a.mean())


def test_welch_half_width_is_none_below_two_values_and_zero_without_spread() -> None:
    assert stats.welch_half_width(np.array([1.0]), np.array([2.0, 3.0])) is None
    assert stats.welch_half_width(np.array([1.0, 2.0]), np.array([])) is None
    assert stats.welch_half_width(np.array([5.0, 5.0]), np.array([7.0, 7.0, 7.0])) == 0.0


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95, -0.5])
def test_confidence_outside_zero_to_one_is_refused(confidence: float) -> None:
    with pytest.raises(ResultsError, match=r"confidence must be between 0 and 1 \(exclusive\)"):
        stats.check_confidence(confidence)
    with pytest.raises(ResultsError, match="confidence must be between 0 and 1"):
        stats.mean_interval(np.array([1.0, 2.0]), confidence=confidence)


def test_interval_is_centre_plus_and_minus_half_or_none() -> None:
    assert stats.interval(10.0, 2.5) == (7.5, 12.5)
    assert stats.interval(None, 2.5) == (None, None)
    assert stats.interval(10.0, None) == (None, None)
