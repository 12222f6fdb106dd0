"""What drives a replay: the inputs production was given, imposed on the world hour by hour.

A twin run draws its own inputs: sessions from each segment's demand profile, deploys
from each team's pace and policy, vendor outages from each vendor's outage law. A shadow
replay (:mod:`orgtwin.fidelity.shadow`) instead feeds the world what production was fed,
as observed in telemetry, so that what follows (load through the call graph, latency,
errors, incidents, restores, churn) can be compared with what production did:

- ``sessions``: each segment's sessions in each hour (``NaN``: the twin draws its own
  that hour), split across the segment's features by its feature shares;
- ``entry_rps``: requests per second arriving at each service from outside in each hour
  (``NaN``: the twin's own), for telemetry that has requests at the entry points but no
  sessions;
- ``deploys``: the deploys that went out, by hour: a driven team ships these (its own
  pace and policy make none), each failing by the team's change-failure law;
- ``outages``: the vendors' outages, replacing every vendor's drawn ones.

Everything else (the users' churn, the teams' detection and restore times, fatigue,
autoscaling) is the twin's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class Drive:
    """The observed inputs of a replay, in ticks from the run's start.

    Attributes:
        sessions: ``[ticks, segments]`` (segments in scenario order), or None.
        entry_rps: ``[ticks, services]`` (services in scenario order), or None.
        deploys: tick -> ``(team, service, batch_size)`` of each deploy then (names).
        driven_teams: the teams whose deploys are driven (those the deploys table holds);
            the others deploy on their own.
        outages: ``(vendor, start tick, end tick)`` of each outage (end exclusive), or
            None to leave the vendors' drawn outages.
    """

    sessions: NDArray[np.float64] | None = None
    entry_rps: NDArray[np.float64] | None = None
    deploys: Mapping[int, Sequence[tuple[str, str, int]]] = field(default_factory=dict)
    driven_teams: frozenset[str] = frozenset()
    outages: Sequence[tuple[str, int, int]] | None = None

    def sessions_at(self, tick: int) -> NDArray[np.float64] | None:
        """Each segment's observed sessions at ``tick`` (``NaN`` where not observed), or
        None when sessions are not driven or the tick is past the observations."""
        if self.sessions is None or tick >= self.sessions.shape[0]:
            return None
        return self.sessions[tick]

    def entry_at(self, tick: int) -> NDArray[np.float64] | None:
        """Each service's requests per second from outside at ``tick`` (``NaN`` where
        not observed), or None."""
        if self.entry_rps is None or tick >= self.entry_rps.shape[0]:
            return None
        return self.entry_rps[tick]


__all__ = ["Drive"]
