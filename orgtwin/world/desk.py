"""The incident desk: where the organisation's incidents are opened, applied and closed.

Teams open incidents here when a deploy fails or a drill starts; the desk opens the ones
the production system raises itself (a vendor outage, an overloaded service), gives
every incident its id, turns the incidents open on a service into that service's
degradation, and records each one in the event log when it is resolved.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from orgtwin.agents.services import ServiceMesh
from orgtwin.agents.teams import Incident, Team
from orgtwin.telemetry.recording import EventLog
from orgtwin.units import Clock
from orgtwin.world.parts import VendorStatus

CAPACITY_INCIDENT_ERROR = 0.05
"""Share of requests rejected for overload at which a service opens a capacity incident."""
LOAD_OK_ERROR = 0.01
"""Overload share below which a capacity incident is over."""


class IncidentDesk:
    """Opens, tracks and closes incidents (the desk a :class:`Team` is handed).

    Args:
        clock: the run's clock.
        mesh: the service mesh (incidents degrade its services).
        events: the event log (resolved incidents are recorded there).
        vendors: the vendors' status (vendor incidents last while their vendor is down).
    """

    def __init__(
        self, *, clock: Clock, mesh: ServiceMesh, events: EventLog, vendors: VendorStatus
    ) -> None:
        self.clock = clock
        self.mesh = mesh
        self.events = events
        self.vendors = vendors
        self.teams: list[Team] = []
        self.service_team = np.zeros(0, dtype=np.int64)
        self.capacity_open: set[int] = set()
        self._next_id = 0

    def staff(self, teams: Sequence[Team], service_team: NDArray[np.int64]) -> None:
        """Hand the desk the teams and who owns which service (once they are built)."""
        self.teams = list(teams)
        self.service_team = service_team

    def owner(self, service: int) -> Team:
        """The team that owns a service."""
        return self.teams[self.service_team[service]]

    # ------------------------------------------------------------------ one incident

    def open(
        self, *, team: Team, service: int, severity: int, cause: str, started: int,
        error_rate: float = 0.0, batch_size: int = 1, resolve_when: str = "restored",
        vendor: int | None = None,
    ) -> Incident:  # fmt: skip
        """Open an incident owned by ``team``; its effects begin at ``started``."""
        incident = Incident(
            incident_id=self._next_id, service=service, severity=severity, cause=cause,
            started=started, error_rate=error_rate, batch_size=batch_size,
            resolve_when=resolve_when, vendor=vendor,
        )  # fmt: skip
        self._next_id += 1
        team.take_incident(incident)
        if started <= self.clock.tick:
            self.apply(service)
        return incident

    def apply(self, service: int) -> None:
        """Recompute one service's degradation from the incidents open on it now."""
        tick = self.clock.tick
        rates = [
            i.error_rate
            for i in self.owner(service).open_incidents
            if i.service == service and i.started <= tick and i.resolved != tick
        ]
        self.mesh.set_incidents(service, rates, 0.0)

    def close(self, incident: Incident) -> None:
        """Record a resolved incident and lift its effect."""
        self.events.incident(incident, self.owner(incident.service).name)
        self.apply(incident.service)
        if incident.cause == "capacity":
            self.capacity_open.discard(incident.service)

    def cleared(self, incident: Incident) -> bool:
        """Whether what an incident waits for is over: its vendor is up, or the load is ok."""
        if incident.resolve_when == "vendor_up":
            return bool(self.vendors.up_now[incident.vendor])
        if incident.resolve_when == "load_ok":
            return bool(self.mesh.overload_error[incident.service] < LOAD_OK_ERROR)
        return False

    # ------------------------------------------------------------------ raised by production

    def raise_incidents(self) -> None:
        """Open the incidents of this hour: vendor outages that begin, overloaded services."""
        starting = self.vendors.outage_starts.get(self.clock.tick)
        if starting:
            self._open_vendor_incidents(starting)
        if self.mesh.overload_error.max() > CAPACITY_INCIDENT_ERROR:
            self._open_capacity_incidents()

    def _open_capacity_incidents(self) -> None:
        overloaded = np.flatnonzero(self.mesh.overload_error > CAPACITY_INCIDENT_ERROR)
        for service in overloaded:
            if service in self.capacity_open:
                continue
            self.capacity_open.add(int(service))
            self.open(
                team=self.owner(service), service=int(service), severity=2, cause="capacity",
                started=self.clock.tick, resolve_when="load_ok",
            )  # fmt: skip

    def _open_vendor_incidents(self, vendors: list[int]) -> None:
        """One incident per vendor and team whose services call it, on its first such service."""
        fanout = self.mesh.vendor_fanout
        for v in vendors:
            callers = np.flatnonzero(fanout[:, v] > 0)
            for t in sorted({int(self.service_team[s]) for s in callers}):
                service = int(next(s for s in callers if self.service_team[s] == t))
                self.open(
                    team=self.teams[t], service=service, severity=2, cause="vendor",
                    started=self.clock.tick, resolve_when="vendor_up", vendor=v,
                )  # fmt: skip

    def finish(self) -> None:
        """Record the incidents still open at the end of the run (``resolved`` stays empty)."""
        for team in self.teams:
            for incident in team.open_incidents:
                if incident.started < self.clock.n_ticks:
                    incident.resolved = None
                    self.events.incident(incident, team.name)
            team.open_incidents = []
