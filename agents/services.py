"""Services: a dependency graph of microservices, computed all at once.

:class:`Service` is the Mesa agent a researcher reads and inspects: one per service,
with its owner and its live figures. The hot path lives in :class:`ServiceMesh`, which
holds the state of every service in arrays and advances them together each hour:

1. demand: external requests enter at entry services and propagate down the call graph
   by fan-out, ``d = (I − Fᵀ)⁻¹ · external`` (``F[a, b]`` = calls to ``b`` per request
   to ``a``); every request is accounted for;
2. capacity: replicas × per-replica throughput, less replicas lost to spot preemption
   and capacity lost to incidents; utilisation = demand / capacity;
3. latency and errors: each service's own latency follows its latency-vs-load curve,
   overload is rejected as errors; latency adds up along call paths by its moments
   (:class:`~orgtwin.behaviours.LatencyComposition`: quantiles do not add), and
   failures compound, vendors included:
   ``log(1 − e_total) = (I − F)⁻¹ · (log(1 − e_own) + G·log(1 − e_vendor))``;
4. autoscaling towards a target utilisation with a lag and bounds (before serving);
5. cost per replica-hour, with spot replicas at a discount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from orgtwin.behaviours import LatencyComposition

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from orgtwin.behaviours import LatencyCurve
    from orgtwin.scenario.organisation import ServiceSpec

_MAX_ERROR = 1.0 - 1e-12


class ServiceMesh:
    """Vectorised state of every service, advanced one hour at a time.

    Args:
        names: service names, in index order.
        fanout: ``F[a, b]`` calls to service ``b`` per request to ``a`` (a DAG).
        vendor_fanout: ``G[a, v]`` calls to vendor ``v`` per request to ``a``.
        replicas: replicas at the start.
        capacity_rps_per_replica: throughput of one replica, requests per second.
        replica_cost_usd_hour: on-demand price of one replica-hour, USD.
        spot_share, spot_discount, spot_preemption_per_hour, spot_recovery_hours: spot
            capacity: the share of replicas on spot, its price discount, the chance a spot
            replica is reclaimed in an hour at peak, and the hours to replace one.
        base_error_rate: errors a healthy service returns anyway.
        latency: behaviour with ``predict``, ``predict_p95`` and ``overload_error``.
        autoscale_enabled, target_utilisation, min_replicas, max_replicas, lag_hours:
            the autoscaling policy of each service.
        rng: the mesh's random generator (spot preemptions).
    """

    def __init__(
        self,
        *,
        names: list[str],
        fanout: NDArray,
        vendor_fanout: NDArray,
        replicas: NDArray,
        capacity_rps_per_replica: NDArray,
        replica_cost_usd_hour: NDArray,
        spot_share: NDArray,
        spot_discount: NDArray,
        spot_preemption_per_hour: NDArray,
        spot_recovery_hours: NDArray,
        base_error_rate: NDArray,
        latency: LatencyCurve,
        autoscale_enabled: NDArray,
        target_utilisation: NDArray,
        min_replicas: NDArray,
        max_replicas: NDArray,
        lag_hours: NDArray,
        rng: np.random.Generator,
    ) -> None:
        n = len(names)
        self.names = list(names)
        self.fanout = np.asarray(fanout, dtype=float)
        self.vendor_fanout = np.asarray(vendor_fanout, dtype=float)
        identity = np.eye(n)
        # (I - F)^-1 = I + F + F² + … of a DAG's non-negative fan-out is non-negative; the
        # inverse's rounding leaves entries of -1e-17 where it is 0, which would give
        # services negative requests. They are zeroed.
        self.demand_operator = np.maximum(np.linalg.inv(identity - self.fanout.T), 0.0)
        self.composition = LatencyComposition(self.fanout, self.vendor_fanout)
        self.path_operator = self.composition.path_operator
        self.replicas = np.asarray(replicas, dtype=float).copy()
        self.capacity_rps_per_replica = np.asarray(capacity_rps_per_replica, dtype=float)
        self.replica_cost_usd_hour = np.asarray(replica_cost_usd_hour, dtype=float)
        self.spot_share = np.asarray(spot_share, dtype=float).copy()
        self.spot_discount = np.asarray(spot_discount, dtype=float)
        self.spot_preemption_per_hour = np.asarray(spot_preemption_per_hour, dtype=float)
        self.base_error_rate = np.asarray(base_error_rate, dtype=float)
        self._base_ok = 1.0 - self.base_error_rate  # share of requests a healthy service serves
        self.latency = latency
        self.autoscale_enabled = np.asarray(autoscale_enabled, dtype=bool).copy()
        self.target_utilisation = np.asarray(target_utilisation, dtype=float).copy()
        self.min_replicas = np.asarray(min_replicas, dtype=float).copy()
        self.max_replicas = np.asarray(max_replicas, dtype=float).copy()
        self.lag_hours = np.asarray(lag_hours, dtype=int).copy()
        self.stream = rng
        self._recovery = np.asarray(spot_recovery_hours, dtype=int)
        self._preempted_ring = np.zeros((self._recovery.max() + 1, n))
        self._lost_before = np.zeros(n)
        self._no_preemption = np.zeros(n)
        self._spot_used = False
        self._desired_ring = np.tile(self.replicas, (49, 1))
        self._position = 0
        self._index = np.arange(n)
        self.incident_error = np.zeros(n)
        self.incident_capacity_loss = np.zeros(n)
        self._zero_state(n)

    @classmethod
    def from_specs(
        cls,
        specs: Mapping[str, ServiceSpec],
        vendors: Sequence[str],
        *,
        latency: LatencyCurve,
        rng: np.random.Generator,
    ) -> ServiceMesh:
        """The mesh of the services a scenario declares, in its order.

        Args:
            specs: service name -> its spec (calls name services and vendors).
            vendors: vendor names, in index order.
            latency: the latency curves of every service (one behaviour, arrays inside).
            rng: the mesh's random generator.
        """
        names = list(specs)
        index = {name: i for i, name in enumerate(names)}
        vendor_index = {name: v for v, name in enumerate(vendors)}
        fanout = np.zeros((len(names), len(names)))
        vendor_fanout = np.zeros((len(names), len(vendors)))
        for i, spec in enumerate(specs.values()):
            for callee, calls in spec.calls.items():
                fanout[i, index[callee]] = calls
            for vendor, calls in spec.vendors.items():
                vendor_fanout[i, vendor_index[vendor]] = calls

        def column(get: Any) -> NDArray:
            return np.array([get(spec) for spec in specs.values()])

        return cls(
            names=names,
            fanout=fanout,
            vendor_fanout=vendor_fanout,
            replicas=column(lambda s: s.replicas),
            capacity_rps_per_replica=column(lambda s: s.capacity_rps_per_replica),
            replica_cost_usd_hour=column(lambda s: s.replica_cost_usd_hour),
            spot_share=column(lambda s: s.spot_share),
            spot_discount=column(lambda s: s.spot_discount),
            spot_preemption_per_hour=column(lambda s: s.spot_preemption_per_hour),
            spot_recovery_hours=column(lambda s: s.spot_recovery_hours),
            base_error_rate=column(lambda s: s.base_error_rate),
            latency=latency,
            autoscale_enabled=column(lambda s: s.autoscale.enabled),
            target_utilisation=column(lambda s: s.autoscale.target_utilisation),
            min_replicas=column(lambda s: s.autoscale.min_replicas),
            max_replicas=column(lambda s: s.autoscale.max_replicas),
            lag_hours=column(lambda s: s.autoscale.lag_hours),
            rng=rng,
        )

    def _zero_state(self, n: int) -> None:
        for name in (
            "demand_rps", "capacity_rps", "utilisation", "own_error", "overload_error",
            "error_rate", "latency_p50_ms", "latency_p95_ms", "cost_usd", "preempted",
            "lost_replicas",
        ):  # fmt: skip
            setattr(self, name, np.zeros(n))

    # ------------------------------------------------------------------ the hour

    def route(self, external_rps: NDArray) -> NDArray:
        """Demand at every service (rps) from external demand at the entry services."""
        self.demand_rps = self.demand_operator @ external_rps
        return self.demand_rps

    def vendor_calls(self) -> NDArray:
        """Calls per second to each vendor, from the current demand."""
        return self.demand_rps @ self.vendor_fanout

    def serve(self, vendor_error: NDArray, vendor_latency_ms: NDArray, peak_factor: float) -> None:
        """Compute capacity, latency, errors and cost for the current demand."""
        self._preempt(peak_factor)
        live = np.maximum(self.replicas - self.lost_replicas, 0.0)
        self.capacity_rps = (
            live * self.capacity_rps_per_replica * (1.0 - self.incident_capacity_loss)
        )
        self.utilisation = self.demand_rps / np.maximum(self.capacity_rps, 1e-9)
        self.overload_error = self.latency.overload_error(self.utilisation)
        own_ok = self._base_ok * (1.0 - self.overload_error) * (1.0 - self.incident_error)
        self.own_error = 1.0 - own_ok
        vendor_ok = np.log1p(-np.minimum(vendor_error, _MAX_ERROR))
        log_ok = np.log(np.maximum(own_ok, 1.0 - _MAX_ERROR)) + self.vendor_fanout @ vendor_ok
        self.error_rate = -np.expm1(self.path_operator @ log_ok)
        own_p50, own_p95 = self.latency.predict_quantiles(self.utilisation)
        self.latency_p50_ms, self.latency_p95_ms = self.composition.total(
            own_p50, own_p95, vendor_latency_ms
        )
        self.cost_usd = self.replicas * self.replica_unit_cost()

    def replica_unit_cost(self) -> NDArray:
        """Blended price of one replica-hour (on-demand and spot), USD."""
        return self.replica_cost_usd_hour * (1.0 - self.spot_share * self.spot_discount)

    def _preempt(self, peak_factor: float) -> None:
        """Reclaim spot replicas; each stays lost for its service's recovery time."""
        ring = self._preempted_ring
        if not self._spot_used:  # no spot replica has run yet: nothing to reclaim or recover
            if not self.spot_share.any():
                self.preempted = self.lost_replicas = self._no_preemption
                return
            self._spot_used = True
        size = ring.shape[0]
        slot = self._position % size
        expiring = ring[(slot - self._recovery) % size, self._index]
        self._lost_before += self.preempted - expiring  # lost in earlier, still-recovering hours
        ring[slot] = 0.0
        if not self.spot_share.any() and not self._lost_before.any():
            self.preempted = self._no_preemption
            self.lost_replicas = self._lost_before
            return
        spot_live = np.maximum(np.rint(self.replicas * self.spot_share) - self._lost_before, 0.0)
        p = np.minimum(self.spot_preemption_per_hour * peak_factor, 1.0)
        self.preempted = self.stream.binomial(spot_live.astype(np.int64), p).astype(float)
        ring[slot] = self.preempted
        self.lost_replicas = self._lost_before + self.preempted

    def autoscale(self) -> None:
        """Size every service for the demand it saw ``lag_hours`` ago.

        Call after :meth:`route` and before :meth:`serve`: with ``lag_hours = 0`` the
        scaler keeps up within the hour; with a lag of ``k`` the replicas serving this
        hour were sized for the demand of ``k`` hours ago, so a steep ramp overloads.
        """
        desired = np.ceil(
            self.demand_rps / (self.capacity_rps_per_replica * self.target_utilisation)
        )
        desired = np.minimum(np.maximum(desired, self.min_replicas), self.max_replicas)
        ring = self._desired_ring
        ring[self._position % ring.shape[0]] = desired
        arriving = ring[(self._position - self.lag_hours) % ring.shape[0], self._index]
        self.replicas = np.where(self.autoscale_enabled, arriving, self.replicas)

    def end_hour(self) -> None:
        """Move the mesh's clock on by one hour."""
        self._position += 1

    # ------------------------------------------------------------------ levers

    def autoscaling(self, services: list[int]) -> dict[str, NDArray]:
        """The autoscaling settings of some services (copies), as :meth:`set_autoscaling`
        takes them."""
        return {
            "enabled": self.autoscale_enabled[services].copy(),
            "target_utilisation": self.target_utilisation[services].copy(),
            "min_replicas": self.min_replicas[services].copy(),
            "max_replicas": self.max_replicas[services].copy(),
            "lag_hours": self.lag_hours[services].copy(),
        }

    def set_autoscaling(
        self,
        services: list[int],
        *,
        enabled: Any = None,
        target_utilisation: Any = None,
        min_replicas: Any = None,
        max_replicas: Any = None,
        lag_hours: Any = None,
    ) -> None:
        """Change some autoscaling settings of some services (None leaves one as it is)."""
        settings = (
            (self.autoscale_enabled, enabled), (self.target_utilisation, target_utilisation),
            (self.min_replicas, min_replicas), (self.max_replicas, max_replicas),
            (self.lag_hours, lag_hours),
        )  # fmt: skip
        for array, value in settings:
            if value is not None:
                array[services] = value

    def set_spot_share(self, services: list[int], share: Any) -> None:
        """Run this share of some services' replicas on spot instances."""
        self.spot_share[services] = share

    def reroute_vendor(self, vendor: int, to: int) -> NDArray:
        """Send every call to ``vendor`` to ``to`` instead; returns the calls as they were."""
        before = self.vendor_fanout.copy()
        self.vendor_fanout[:, to] += self.vendor_fanout[:, vendor]
        self.vendor_fanout[:, vendor] = 0.0
        return before

    def restore_vendor_calls(self, calls: NDArray) -> None:
        """Route vendor calls as ``calls`` says (as :meth:`reroute_vendor` returned them)."""
        self.vendor_fanout[:] = calls

    def set_incidents(self, service: int, error_rates: list[float], capacity_loss: float) -> None:
        """Set the combined effect of the open incidents on one service."""
        self.incident_error[service] = 1.0 - float(np.prod([1.0 - e for e in error_rates]))
        self.incident_capacity_loss[service] = capacity_loss


class Service(mesa.Agent):
    """One microservice: its owner, dependencies and live figures (a view on the mesh).

    Args:
        model: the Mesa model the service belongs to (for registration only).
        name: service name.
        index: the service's position in the mesh arrays.
        team: name of the owning team.
        mesh: the shared :class:`ServiceMesh`.
    """

    def __init__(self, model: mesa.Model, *, name: str, index: int, team: str, mesh: ServiceMesh):
        super().__init__(model)
        self.name = name
        self.index = index
        self.team = team
        self.mesh = mesh

    @property
    def callees(self) -> list[str]:
        """Services this one calls."""
        row = self.mesh.fanout[self.index]
        return [self.mesh.names[j] for j in np.flatnonzero(row)]

    @property
    def replicas(self) -> float:
        """Replicas running now."""
        return float(self.mesh.replicas[self.index])

    @property
    def utilisation(self) -> float:
        """Demand over live capacity in the last hour."""
        return float(self.mesh.utilisation[self.index])

    @property
    def error_rate(self) -> float:
        """Share of requests that failed in the last hour, dependencies included."""
        return float(self.mesh.error_rate[self.index])

    @property
    def latency_p95_ms(self) -> float:
        """95th-percentile latency in the last hour, dependencies included, ms."""
        return float(self.mesh.latency_p95_ms[self.index])
