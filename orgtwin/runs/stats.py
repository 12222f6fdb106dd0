"""Uncertainty across seeds: Student-t intervals of a mean and Welch intervals of a difference.

Scipy-free: :func:`t_quantile` inverts Student's t distribution by bisection on its
distribution function (the regularised incomplete beta function). Every KPI interval in
orgtwin comes from here.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from orgtwin.errors import ResultsError


def check_confidence(confidence: float) -> None:
    """Refuse a confidence level outside (0, 1).

    Raises:
        ResultsError: ``confidence`` is not strictly between 0 and 1.
    """
    if not 0.0 < confidence < 1.0:
        raise ResultsError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")


def welch_half_width(a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95) -> float | None:
    """Half width of Welch's interval for ``mean(b) − mean(a)``; None below two values each.

    Example:
        >>> round(welch_half_width(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])), 3)
        4.155
    """
    if a.size < 2 or b.size < 2:
        return None
    var_a, var_b = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(var_a + var_b)
    if se == 0.0:
        return 0.0
    df = se**4 / (var_a**2 / (a.size - 1) + var_b**2 / (b.size - 1))
    return t_quantile(0.5 + confidence / 2.0, df) * se


def mean_interval(
    values: np.ndarray, *, confidence: float = 0.95
) -> tuple[float | None, float | None, int]:
    """Mean of a sample and the half width of its Student-t confidence interval.

    Args:
        values: the sample (one value per seed); non-finite values are left out.
        confidence: coverage of the interval, 0..1 exclusive.

    Returns:
        ``(mean, half_width, n)`` over the ``n`` finite values; the mean is ``None`` when
        ``n`` is 0 and the half width ``None`` when ``n`` is below 2.

    Example:
        >>> mean, half, n = mean_interval(np.array([1.0, 2.0, 3.0]))
        >>> mean, round(half, 3), n
        (2.0, 2.484, 3)
    """
    check_confidence(confidence)
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = int(values.size)
    if n == 0:
        return None, None, 0
    if n == 1:
        return float(values[0]), None, 1
    spread = float(values.std(ddof=1)) / math.sqrt(n)
    return float(values.mean()), t_quantile(0.5 + confidence / 2.0, n - 1) * spread, n


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution (the inverse of its distribution function).

    Computed by bisection on the distribution function, which is evaluated through the
    regularised incomplete beta function; accurate to about 1e-7 for any ``df > 0``
    (above 1e7 degrees of freedom, the normal quantile).

    Args:
        p: probability, 0..1 exclusive.
        df: degrees of freedom, > 0 (need not be an integer).

    Returns:
        ``t`` such that ``P(T <= t) = p``.

    Raises:
        ResultsError: ``p`` or ``df`` is out of range.

    Example:
        >>> round(t_quantile(0.975, 7), 3)
        2.365
    """
    if not 0.0 < p < 1.0:
        raise ResultsError(f"p must be between 0 and 1 (exclusive), got {p}")
    if not df > 0.0:
        raise ResultsError(f"df must be > 0, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if df > 1e7:
        return NormalDist().inv_cdf(p)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if _t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def _t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for ``t >= 0``."""
    return 1.0 - 0.5 * _beta_inc(df / 2.0, 0.5, df / (df + t * t))


def _beta_inc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def interval(centre: float | None, half: float | None) -> tuple[float | None, float | None]:
    if centre is None or half is None:
        return None, None
    return centre - half, centre + half
