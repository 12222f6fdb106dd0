"""Behaviours of services: latency against load, and overload turned into errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from orgtwin.behaviours.base import Behaviour
from orgtwin.scenario.organisation import LatencySpec

_LATENCY = LatencySpec()


class LatencyCurve(Behaviour):
    """Latency against utilisation, queueing-shaped, with overload turned into errors.

    ``p50 = base_ms × (1 + queueing_factor × u / (1 − u))`` for ``u < u_max``, capped
    at ``timeout_ms``; above capacity the excess is rejected, so overload shows as
    errors (``1 − 1/u``), never as infinite latency.

    Args:
        base_ms: latency with no queueing, ms (scalar or one per service).
        queueing_factor: how sharply latency grows as the service fills up.
        timeout_ms: the latency cap (requests slower than this time out).
        p95_over_p50: ratio of the 95th percentile to the median.
        u_max: utilisation above which queueing stops growing (the queue is full).
    """

    spec = LatencySpec

    def __init__(
        self,
        base_ms: ArrayLike = _LATENCY.base_ms,
        queueing_factor: ArrayLike = _LATENCY.queueing_factor,
        timeout_ms: ArrayLike = _LATENCY.timeout_ms,
        p95_over_p50: ArrayLike = _LATENCY.p95_over_p50,
        u_max: float = 0.98,
    ) -> None:
        self.base_ms = base_ms
        self.queueing_factor = queueing_factor
        self.timeout_ms = timeout_ms
        self.p95_over_p50 = p95_over_p50
        self.u_max = u_max

    @classmethod
    def from_specs(cls, specs: Sequence[LatencySpec], **params: Any) -> LatencyCurve:
        """One curve per service, as arrays: the curves of ``specs``, in order.

        Example:
            >>> curve = LatencyCurve.from_specs([LatencySpec(base_ms=10), LatencySpec()])
            >>> curve.predict([0.0, 0.0]).tolist()
            [10.0, 20.0]
        """
        names = ("base_ms", "queueing_factor", "timeout_ms", "p95_over_p50")
        columns = {name: np.array([getattr(s, name) for s in specs]) for name in names}
        return cls(**(columns | params))

    def predict(self, utilisation: ArrayLike) -> NDArray[np.float64]:
        """Median latency (ms) at each utilisation."""
        u = np.minimum(np.asarray(utilisation, dtype=float), self.u_max)
        p50 = self.base_ms * (1.0 + self.queueing_factor * u / (1.0 - u))
        return np.minimum(p50, self.timeout_ms)

    def predict_p95(self, utilisation: ArrayLike) -> NDArray[np.float64]:
        """95th-percentile latency (ms) at each utilisation."""
        return self.predict_quantiles(utilisation)[1]

    def predict_quantiles(self, utilisation: ArrayLike) -> tuple[NDArray, NDArray]:
        """Median and 95th-percentile latency (ms) at each utilisation, in one pass."""
        p50 = self.predict(utilisation)
        return p50, np.minimum(p50 * self.p95_over_p50, self.timeout_ms)

    @staticmethod
    def overload_error(utilisation: ArrayLike) -> NDArray[np.float64]:
        """Share of requests rejected because demand exceeds capacity."""
        u = np.asarray(utilisation, dtype=float)
        return np.where(u > 1.0, 1.0 - 1.0 / np.maximum(u, 1.0), 0.0)


Z95 = 1.6448536269514722
"""The standard normal's 95th percentile."""


def count_variance(calls: ArrayLike) -> NDArray[np.float64]:
    """The variance of the number of calls a request makes, given their mean ``calls``:
    the least variable count with that mean, ``⌊F⌋`` or ``⌈F⌉`` calls
    (``frac(F) · (1 − frac(F))``): a request's calls follow its code path, not chance.

    Example:
        >>> count_variance([0.25, 1.0, 2.5]).tolist()
        [0.1875, 0.0, 0.25]
    """
    f = np.asarray(calls, dtype=float)
    part = f - np.floor(f)
    return part * (1.0 - part)


def calls_moments(
    calls: ArrayLike, mean: ArrayLike, variance: ArrayLike
) -> tuple[NDArray, NDArray]:
    """The mean and variance that calls add to a request: ``Σ F · mean`` and
    ``Σ (F · variance + Var(N) · mean²)`` over the last axis, ``F`` the calls per request
    to each callee (or vendor), ``N`` their number (:func:`count_variance`), ``mean`` and
    ``variance`` each call's (a vendor's: its latency, variance 0).

    Example:
        >>> [m.tolist() for m in calls_moments([2.5, 1.0], [10.0, 40.0], [4.0, 0.0])]
        [65.0, 35.0]
    """
    f = np.asarray(calls, dtype=float)
    m = np.asarray(mean, dtype=float)
    return np.sum(f * m, axis=-1), np.sum(f * variance + count_variance(f) * m * m, axis=-1)


def lognormal_moments(p50: ArrayLike, p95: ArrayLike) -> tuple[NDArray, NDArray]:
    """Mean and variance of the lognormal latency with this median and 95th percentile
    (a 95th percentile below the median is taken as the median: no spread)."""
    median = np.asarray(p50, dtype=float)
    ratio = np.asarray(p95, dtype=float) / np.where(median > 0, median, 1.0)
    sigma = np.log(np.maximum(ratio, 1.0)) / Z95
    mean = median * np.exp(0.5 * sigma**2)
    return mean, mean**2 * np.expm1(sigma**2)


def lognormal_quantiles(mean: ArrayLike, variance: ArrayLike) -> tuple[NDArray, NDArray]:
    """Median and 95th percentile of the lognormal latency with this mean and variance
    (Fenton–Wilkinson: a sum of latencies read as the lognormal of its first two
    moments); 0 where the mean is not positive."""
    m = np.asarray(mean, dtype=float)
    positive = m > 0
    safe = np.where(positive, m, 1.0)
    s2 = np.log1p(np.maximum(np.asarray(variance, dtype=float), 0.0) / safe**2)
    p50 = np.where(positive, safe * np.exp(-0.5 * s2), 0.0)
    return p50, p50 * np.exp(Z95 * np.sqrt(s2))


class LatencyComposition:
    """How a request's latency adds up along its calls: a service's latency is its own,
    plus each call's to a vendor, plus each call's to a callee (the callee's own latency
    and its calls', recursively).

    Quantiles do not add: the 95th percentile of a request that makes ten calls is far
    below the sum of the ten calls' 95th percentiles. The composition adds moments. Each
    service's own latency is lognormal with its median and 95th percentile; a request of
    service ``a`` makes ``N_ab`` calls to ``b`` (mean ``F_ab``, the calls per request;
    variance :func:`count_variance`), each taking an independent draw of ``b``'s total
    latency; then

    ``mean_a = own_mean_a + Σ_b F_ab · mean_b + vendors``,
    ``var_a = own_var_a + Σ_b (F_ab · var_b + Var(N_ab) · mean_b²) + vendors'``,

    that is ``mean = P (own_mean + vendor_ms)`` and ``var = P (own_var + vendor_var +
    C mean²)`` with ``P = (I − F)⁻¹`` the path operator and ``C`` the calls' count
    variance, and each total is read as the lognormal of its mean and variance
    (:func:`lognormal_quantiles`). A service that calls nothing keeps its own quantiles;
    vendors answer in a fixed time (``latency_ms``), so only the number of their calls
    varies.

    Args:
        fanout: calls per request ``F[caller, callee]``, shape ``[n, n]`` (a DAG).
        vendor_fanout: calls per request to each vendor, shape ``[n, vendors]``.

    Example:
        >>> import numpy as np
        >>> chain = LatencyComposition(np.array([[0.0, 10.0], [0.0, 0.0]]), np.zeros((2, 0)))
        >>> p50, p95 = chain.total(np.array([5.0, 10.0]), np.array([10.0, 30.0]), np.zeros(0))
        >>> p95.round(1).tolist()  # ten calls of p95 30 ms: far below 10 + 10 × 30
        [184.2, 30.0]
    """

    def __init__(self, fanout: ArrayLike, vendor_fanout: ArrayLike) -> None:
        f = np.asarray(fanout, dtype=float)
        # (I - F)^-1 = I + F + F² + … of a DAG's non-negative fan-out is non-negative; the
        # inverse's rounding leaves entries of -1e-17 where it is 0. They are zeroed.
        self.path_operator = np.maximum(np.linalg.inv(np.eye(f.shape[0]) - f), 0.0)
        self.count_variance = count_variance(f)
        self.vendor_fanout = np.asarray(vendor_fanout, dtype=float)
        self.calls_nothing = ~(f.any(axis=1) | self.vendor_fanout.any(axis=1))
        self._vendor_ms: NDArray | None = None  # the last vendor latency, and its moments
        self._vendor_moments: tuple[NDArray, NDArray] = (np.zeros(0), np.zeros(0))
        self._ratio: NDArray | None = None  # the last own p95/p50, and its factors
        self._factors: tuple[NDArray, NDArray] = (np.zeros(0), np.zeros(0))

    def vendors(self, vendor_latency_ms: ArrayLike) -> tuple[NDArray, NDArray]:
        """The mean and variance each service's vendor calls add to a request, ms."""
        return calls_moments(self.vendor_fanout, vendor_latency_ms, 0.0)

    def total(
        self,
        own_p50: NDArray,
        own_p95: NDArray,
        vendor_latency_ms: ArrayLike,
    ) -> tuple[NDArray, NDArray]:
        """Every service's median and 95th-percentile latency per request (ms), from the
        services' own quantiles (medians > 0) and the vendors' latency.

        The simulator's hot path (every hour): :func:`lognormal_moments` and
        :func:`lognormal_quantiles` written out with as few array operations as they
        take, and the parts that stay (the vendors', the own spread: a curve's p95 is a
        fixed multiple of its median below the timeout) kept while they are unchanged."""
        ms = np.asarray(vendor_latency_ms, dtype=float)
        if self._vendor_ms is None or not np.array_equal(ms, self._vendor_ms):
            self._vendor_ms, self._vendor_moments = ms.copy(), self.vendors(ms)
        vendor_mean, vendor_var = self._vendor_moments
        ratio = own_p95 / own_p50
        if self._ratio is None or not np.array_equal(ratio, self._ratio):
            log_ratio = np.log(np.maximum(ratio, 1.0))
            s2 = log_ratio * log_ratio * (1.0 / (Z95 * Z95))
            self._ratio, self._factors = ratio, (np.exp(0.5 * s2), np.expm1(s2))
        mean_factor, var_factor = self._factors
        own_mean = own_p50 * mean_factor
        mean = self.path_operator @ (own_mean + vendor_mean)
        square = mean * mean
        own_var = own_mean * own_mean * var_factor
        var = self.path_operator @ (own_var + vendor_var + self.count_variance @ square)
        s2 = np.log1p(var / square)
        p50 = mean * np.exp(-0.5 * s2)
        p95 = p50 * np.exp(Z95 * np.sqrt(s2))
        leaf = self.calls_nothing  # its own quantiles as they are, not their rounding
        return np.where(leaf, own_p50, p50), np.where(leaf, own_p95, p95)


def own_quantiles(
    total_p50: ArrayLike,
    total_p95: ArrayLike,
    calls: ArrayLike,
    callee_p50: ArrayLike,
    callee_p95: ArrayLike,
    vendor_mean: float = 0.0,
    vendor_var: float = 0.0,
    floor_ms: float = 1e-3,
) -> tuple[NDArray, NDArray]:
    """A service's own median and 95th percentile, from its measured total and its
    callees' measured totals: :class:`LatencyComposition` undone for one service.

    ``own_mean = mean − Σ F_b · mean_b − vendors``, ``own_var = var − Σ (F_b · var_b +
    Var(N_b) · mean_b²) − vendors'``; a mean below ``floor_ms`` (the calls explain all of
    the latency, or more: noise) is ``floor_ms``, a variance below 0 is 0.

    Args:
        total_p50, total_p95: the service's measured quantiles, one per row.
        calls: calls per request to each callee ``[callees]``.
        callee_p50, callee_p95: the callees' measured quantiles ``[rows, callees]``.
        vendor_mean, vendor_var: what its vendor calls add
            (:meth:`LatencyComposition.vendors`).
        floor_ms: the least own mean latency.

    Returns:
        The own median and 95th percentile per row, ms.
    """
    mean, var = lognormal_moments(total_p50, total_p95)
    calls_mean, calls_var = calls_moments(calls, *lognormal_moments(callee_p50, callee_p95))
    mean = mean - calls_mean - vendor_mean
    var = var - calls_var - vendor_var
    return lognormal_quantiles(np.maximum(mean, floor_ms), np.maximum(var, 0.0))
