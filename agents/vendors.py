"""Vendors: third parties the services call (cloud, payments, auth, e-mail, CDN…).

A :class:`Vendor` has a latency, a price per call, an optional rate limit and an outage
process (a behaviour with ``sample(rng, horizon_hours)``). Outages are planned for the
whole run when the model starts, so an hour's status is a lookup; scenario outages
(``vendor_outage``) are added to the plan. Calls above the rate limit are rejected, so a
traffic surge shows as vendor errors, as it does in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from orgtwin.behaviours import VendorOutages
    from orgtwin.scenario.organisation import VendorSpec


class Vendor(mesa.Agent):
    """A third-party dependency.

    Args:
        model: the Mesa model the vendor belongs to (for registration only).
        name: vendor name.
        spec: the vendor as the scenario declares it (latency, price, limits, SLA).
        outages: behaviour with ``sample(rng, horizon_hours) -> [(start, end), ...]``.
        rng: this vendor's random generator.
    """

    def __init__(
        self,
        model: mesa.Model,
        *,
        name: str,
        spec: VendorSpec,
        outages: VendorOutages,
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.kind = spec.kind
        self.latency_ms = float(spec.latency_ms)
        self.price_usd_per_1k_calls = float(spec.price_usd_per_1k_calls)
        limit = spec.rate_limit_rps
        self.rate_limit_rps = np.inf if limit is None else float(limit)
        self.error_rate = float(spec.error_rate)
        self.outages = outages
        self.sla_availability = float(spec.sla_availability)
        self.stream = rng
        self.planned_outages: list[tuple[int, int]] = []

    def plan_outages(self, horizon_hours: int) -> list[tuple[int, int]]:
        """Draw this run's outages as ``(start_hour, end_hour)`` pairs."""
        self.planned_outages = self.outages.sample(self.stream, horizon_hours)
        return self.planned_outages

    def force_outage(self, start_hour: int, end_hour: int) -> None:
        """Add an outage from ``start_hour`` to ``end_hour`` (exclusive)."""
        self.planned_outages = sorted([*self.planned_outages, (start_hour, end_hour)])

    def outage_windows(self) -> list[tuple[int, int]]:
        """Planned outages with overlapping windows merged, in time order."""
        merged: list[list[int]] = []
        for start, end in sorted(self.planned_outages):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(s, e) for s, e in merged]

    @staticmethod
    def errors(
        calls_rps: NDArray, up: NDArray, error_rate: NDArray, rate_limit_rps: NDArray
    ) -> NDArray:
        """Error share of every vendor's calls: down → 1; over the limit → the excess."""
        limited = np.where(
            calls_rps > rate_limit_rps, 1.0 - rate_limit_rps / np.maximum(calls_rps, 1e-12), 0.0
        )
        healthy = 1.0 - (1.0 - error_rate) * (1.0 - limited)
        return np.where(up, healthy, 1.0)
