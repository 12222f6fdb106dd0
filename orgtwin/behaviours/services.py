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
