"""Behaviours of services: latency against load, and overload turned into errors."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from orgtwin.behaviours.base import Behaviour


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

    def __init__(
        self,
        base_ms: ArrayLike = 20.0,
        queueing_factor: ArrayLike = 1.0,
        timeout_ms: ArrayLike = 5000.0,
        p95_over_p50: ArrayLike = 3.0,
        u_max: float = 0.98,
    ) -> None:
        self.base_ms = base_ms
        self.queueing_factor = queueing_factor
        self.timeout_ms = timeout_ms
        self.p95_over_p50 = p95_over_p50
        self.u_max = u_max

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
