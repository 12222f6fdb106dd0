"""The world's shared parts that are not agents: product features, vendor status, the ledger.

- :class:`Features`: each product feature's entry service, requests per session, and the
  two things interventions change, user visibility (dark launches) and surges;
- :class:`VendorStatus`: every vendor's figures as arrays, and whether each vendor is up
  in every hour of the run (outages are planned before the run starts);
- :class:`UserIds`: user ids, unique across segments;
- :class:`Ledger`: the run's accounts: errors against each team's SLO error budget over
  a rolling window, blame for bad sessions (which routes support tickets), and the call
  totals of the ``calls`` table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from orgtwin.agents.services import ServiceMesh
from orgtwin.agents.vendors import Vendor
from orgtwin.scenario.organisation import FeatureSpec
from orgtwin.units import SECONDS_PER_HOUR

BUDGET_WINDOW_MAX_DAYS = 90
"""Longest error-budget window a policy may count over, days."""


class Features:
    """Product features as arrays, one entry per feature in scenario order.

    Args:
        specs: feature name -> its spec.
        service_index: service name -> index in the mesh.

    Attributes:
        names: feature names.
        index: feature name -> index.
        entry: index of each feature's entry service.
        requests_per_session: requests a session sends to the entry service.
        visible_requests_per_session: of those, requests whose failure the user notices.
        visible: 1 while a feature's errors are visible to users, 0 behind a dark launch.
        surge: factor on each feature's sessions (traffic surges multiply it).
    """

    def __init__(self, specs: Mapping[str, FeatureSpec], service_index: Mapping[str, int]):
        self.names = list(specs)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.entry = np.array([service_index[s.entry] for s in specs.values()], dtype=np.int64)
        self.requests_per_session = np.array([s.requests_per_session for s in specs.values()])
        self.visible_requests_per_session = np.array(
            [s.requests_per_session * s.user_visible_share for s in specs.values()]
        )
        self.visible = np.ones(len(self.names))
        self.surge = np.ones(len(self.names))

    def set_visible(self, feature: int, visible: float) -> None:
        """Show a feature's errors to users (1) or hide them behind a flag (0)."""
        self.visible[feature] = visible

    def scale_surge(self, features: Sequence[int], factor: float) -> None:
        """Multiply the sessions of some features by ``factor`` (surges stack)."""
        self.surge[features] *= factor


class UserIds:
    """Fresh, unique user ids, shared by every segment of a run."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self, n: int) -> NDArray[np.int64]:
        """``n`` new ids."""
        ids = np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return ids


class VendorStatus:
    """Every vendor's latency, error rate, rate limit and price as arrays, and its outages.

    Args:
        vendors: the vendor agents, in scenario order.
        n_ticks: ticks in the run.

    Attributes:
        up: ``[ticks, vendors]``, whether each vendor is up in each hour (after :meth:`plan`).
        outage_starts: tick -> the vendors whose outage begins then.
        up_now: each vendor's status in the current hour.
    """

    def __init__(self, vendors: Sequence[Vendor], n_ticks: int) -> None:
        self.vendors = list(vendors)
        self.n_ticks = n_ticks
        self.latency_ms = np.array([v.latency_ms for v in vendors])
        self.error_rate = np.array([v.error_rate for v in vendors])
        self.rate_limit_rps = np.array([v.rate_limit_rps for v in vendors])
        self.price_per_call = np.array([v.price_usd_per_1k_calls / 1000 for v in vendors])
        self.up = np.ones((n_ticks, len(vendors)), dtype=bool)
        self.outage_starts: dict[int, list[int]] = {}
        self.up_now = self.up[0] if n_ticks else np.ones(0, dtype=bool)

    def plan(self) -> None:
        """Mark every planned outage (drawn and scheduled) down, hour by hour."""
        for v, vendor in enumerate(self.vendors):
            for start, end in vendor.outage_windows():
                if start >= self.n_ticks:
                    continue
                self.up[start:end, v] = False
                self.outage_starts.setdefault(start, []).append(v)
        self.up_now = self.up[0] if self.n_ticks else np.ones(0, dtype=bool)

    def errors(self, tick: int, calls_rps: NDArray) -> NDArray:
        """Each vendor's error share of its calls at ``tick`` (down, rate-limited, or its own)."""
        self.up_now = self.up[tick]
        return Vendor.errors(calls_rps, self.up_now, self.error_rate, self.rate_limit_rps)

    def windows(self) -> list[tuple[str, int, int]]:
        """Every outage within the run: ``(vendor, start, end)``, end capped at the run's end."""
        return [
            (vendor.name, start, min(end, self.n_ticks))
            for vendor in self.vendors
            for start, end in vendor.outage_windows()
            if start < self.n_ticks
        ]


class Ledger:
    """The run's accounts: error budgets, blame for bad sessions, and call totals.

    Args:
        service_team: index of the team that owns each service.
        n_teams: teams in the world.
        vendor_fanout_shape: ``(services, vendors)``.
    """

    def __init__(
        self, service_team: NDArray[np.int64], n_teams: int, vendor_fanout_shape: tuple[int, int]
    ) -> None:
        self.service_team = service_team
        self.n_teams = n_teams
        self.budget = np.zeros((BUDGET_WINDOW_MAX_DAYS, n_teams, 2))  # errors, requests
        self.budget_today = np.zeros((n_teams, 2))
        self.blame_today = np.zeros(n_teams)
        self.vendor_call_totals = np.zeros(vendor_fanout_shape)
        self.service_request_totals = np.zeros(vendor_fanout_shape[0])

    def account(self, mesh: ServiceMesh, vendor_error: NDArray) -> None:
        """Book one hour: errors and requests per team, blame for errors, calls."""
        served = mesh.demand_rps * SECONDS_PER_HOUR
        vendor_caused = mesh.vendor_fanout @ vendor_error
        blame = served * np.minimum(mesh.own_error + vendor_caused, 1.0)
        team = self.service_team
        self.blame_today += np.bincount(team, blame, minlength=self.n_teams)
        self.budget_today[:, 0] += np.bincount(
            team, served * mesh.error_rate, minlength=self.n_teams
        )
        self.budget_today[:, 1] += np.bincount(team, served, minlength=self.n_teams)
        self.vendor_call_totals += served[:, None] * mesh.vendor_fanout
        self.service_request_totals += served

    def ticket_shares(self) -> NDArray:
        """Each team's share of the day's blame (equal shares on a blameless day); resets it."""
        blame = self.blame_today
        share = blame / blame.sum() if blame.sum() > 0 else np.full(self.n_teams, 1 / self.n_teams)
        self.blame_today = np.zeros_like(blame)
        return share

    def close_day(self) -> None:
        """Move the day's errors and requests into the rolling window."""
        self.budget = np.roll(self.budget, 1, axis=0)
        self.budget[0] = self.budget_today
        self.budget_today = np.zeros_like(self.budget_today)

    def budget_used(self, team: int, window_days: int, day: int, availability: float) -> float:
        """Share of a team's error budget its services used over the last ``window_days``.

        Args:
            team: the team's index.
            window_days: days counted (fewer on the first days of the run).
            day: the day that just closed (0 = the first).
            availability: the availability target the budget comes from.
        """
        window = min(window_days, day + 1)
        errors, requests = self.budget[:window, team].sum(axis=0)
        allowed = 1.0 - availability
        return float(errors / requests / allowed) if requests > 0 else 0.0
