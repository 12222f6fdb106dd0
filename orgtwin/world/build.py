"""Building the world: a scenario turned into agents, behaviours and their shared parts.

:func:`build_world` is the one build step. It returns a :class:`World`, whose fields say
everything a running model holds, and which the model owns. Every agent is handed its
collaborators (the clock, the event log, the incident desk) when it is made; behaviours
are built from their specs unless the caller replaces one by key (:class:`Behaviours`).

Each entity gets its own random stream (:func:`~orgtwin.world.rng.entity_rng`), so adding
a team does not reshuffle the users' fates, and two runs with the same seed share their
randomness wherever their worlds agree (common random numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import mesa
import numpy as np
from numpy.typing import NDArray

from orgtwin import behaviours as bh
from orgtwin.agents.services import Service, ServiceMesh
from orgtwin.agents.teams import COUNTS, Team
from orgtwin.agents.users import SegmentBlock, UserSegment
from orgtwin.agents.vendors import Vendor
from orgtwin.errors import RunError
from orgtwin.scenario.fields import Selector
from orgtwin.scenario.interventions import Action
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry.recording import EventLog, SeriesRecorder
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_WEEK, Clock
from orgtwin.world.desk import IncidentDesk
from orgtwin.world.drive import Drive
from orgtwin.world.effects import schedule
from orgtwin.world.parts import Features, Ledger, UserIds, VendorStatus
from orgtwin.world.rng import entity_rng

B = TypeVar("B")

CLOUD_PEAK = bh.DemandProfile(peak_hour=16, night_level=0.3, weekend_level=0.8)
"""Load on the cloud provider over the week: spot replicas are reclaimed more at its peak."""


@dataclass(eq=False)
class World:
    """Everything a running model holds, declared in one place (built by :func:`build_world`).

    The agents are registered with the model when they are made, so Mesa's registry
    (``model.agents_by_type``, and :class:`~orgtwin.world.model.OrgModel`'s ``segments``,
    ``services``, ``vendors`` and ``teams`` AgentSets) is where a user finds them. The
    lists here hold the same agents in scenario order, the order of the vectorised arrays
    (the mesh, the population, the recorder's columns): an index for the hourly hot paths,
    which step agents by position. Agents are neither added nor removed during a run.

    Attributes:
        scenario: the scenario the world was built from.
        clock: the run's time.
        events: the event log (deploys, pages, incidents, sampled users' days…).
        recorder: the per-tick series.
        features: the product features.
        segments: the user segments (agents), in scenario order (an index of the registry).
        population: every segment's hourly figures stacked.
        sessions_rng: the random stream of the hour's sessions.
        mesh: every service's state, advanced together.
        services: the service agents (views on the mesh), in scenario order (an index of
            the registry).
        vendors: the vendor agents, in scenario order (an index of the registry).
        vendor_status: the vendors' figures as arrays, and their outages.
        teams: the team agents, in scenario order (an index of the registry).
        service_team: index of the team that owns each service.
        desk: the incident desk.
        ledger: error budgets, blame for bad sessions, call totals.
        cloud_peak: the cloud's relative load at each hour of the week.
        team_counts: ``[ticks, teams, counts]`` view of the recorder's team counts: each
            hour, each team counts its events into its row (:data:`~orgtwin.agents.teams.COUNTS`).
        schedule: tick -> the intervention actions that run at its start.
        behaviour_keys: keys of every behaviour, for replacing one (see :class:`Behaviours`).
        drive: the observed inputs of a replay (:class:`~orgtwin.world.drive.Drive`), or
            None.
    """

    scenario: Scenario
    clock: Clock
    events: EventLog
    recorder: SeriesRecorder
    features: Features
    segments: list[UserSegment]
    population: SegmentBlock
    sessions_rng: np.random.Generator
    mesh: ServiceMesh
    services: list[Service]
    vendors: list[Vendor]
    vendor_status: VendorStatus
    teams: list[Team]
    service_team: NDArray[np.int64]
    desk: IncidentDesk
    ledger: Ledger
    cloud_peak: NDArray[np.float64]
    team_counts: NDArray[np.float64]
    schedule: dict[int, list[Action]] = field(default_factory=dict)
    behaviour_keys: tuple[str, ...] = ()
    drive: Drive | None = None

    # ----------------------------------------------------------------- lookups

    def segments_named(self, selector: Selector) -> list[UserSegment]:
        """The user segments a selector names (``"*"``: all), in scenario order."""
        return [s for s in self.segments if selector == "*" or s.name in selector]

    def teams_named(self, selector: Selector) -> list[Team]:
        """The teams a selector names (``"*"``: all), in scenario order."""
        return [t for t in self.teams if selector == "*" or t.name in selector]

    def service_indices(self, selector: Selector) -> list[int]:
        """Indices of the services a selector names (``"*"``: all)."""
        return [i for i, name in enumerate(self.mesh.names) if selector == "*" or name in selector]

    def feature_indices(self, selector: Selector) -> list[int]:
        """Indices of the features a selector names (``"*"``: all)."""
        names = self.features.names
        return [i for i, name in enumerate(names) if selector == "*" or name in selector]

    def vendor(self, name: str) -> Vendor:
        """The vendor of that name."""
        return self.vendors[self.vendor_index(name)]

    def vendor_index(self, name: str) -> int:
        """Index of the vendor of that name."""
        return [v.name for v in self.vendors].index(name)

    def team(self, name: str) -> Team:
        """The team of that name."""
        return next(t for t in self.teams if t.name == name)

    def service_index(self, name: str) -> int:
        """Index of the service of that name in the mesh."""
        return self.mesh.names.index(name)

    def owner(self, service: int) -> Team:
        """The team that owns a service."""
        return self.teams[self.service_team[service]]


class Behaviours:
    """The behaviours of a world: each built from its spec, unless replaced by key.

    Keys name a behaviour and, where it is per entity, the entity: ``demand/<segment>``,
    ``churn/<segment>``, ``acquisition/<segment>``, ``latency`` (every service at once),
    ``outages/<vendor>``, ``change_failure/<team>``, ``incident_timing/<team>``.

    Args:
        replacements: behaviours to use instead of the built ones, by key (a churn hazard
            learned from telemetry: ``{"churn/free": fitted}``).
    """

    def __init__(self, replacements: Mapping[str, object] | None = None) -> None:
        self.replacements = dict(replacements or {})
        self.keys: list[str] = []

    def pick(self, key: str, built: B) -> B:
        """The behaviour for ``key``: its replacement if one was given, else ``built``."""
        self.keys.append(key)
        return self.replacements.get(key, built)  # type: ignore[return-value]

    def check(self) -> None:
        """Refuse replacements whose key names no behaviour of this world.

        Raises:
            RunError: a key is unknown (the message lists the known keys).
        """
        unknown = sorted(set(self.replacements) - set(self.keys))
        if unknown:
            known = ", ".join(sorted(self.keys))
            raise RunError(
                f"behaviours: keys must name a behaviour of this scenario ({known}), "
                f"got {', '.join(unknown)}"
            )


def build_world(
    model: mesa.Model,
    scenario: Scenario,
    *,
    seed: int,
    days: int | None = None,
    behaviours: Mapping[str, object] | None = None,
    drive: Drive | None = None,
) -> World:
    """Build the world of a scenario: agents registered with ``model``, behaviours, parts.

    Args:
        model: the Mesa model that registers the agents.
        scenario: the validated scenario.
        seed: the run's seed; every entity derives its own stream from it.
        days: days to simulate (default: the scenario's ``days``).
        behaviours: replacement behaviours by key (see :class:`Behaviours`).
        drive: the inputs production was given (a replay): driven teams ship only the
            deploys it lists, and its outages replace the vendors' drawn ones.

    Raises:
        RunError: a replacement behaviour's key names nothing in this world.
    """
    days = scenario.days if days is None else int(days)
    clock = Clock(scenario.start, n_ticks=days * HOURS_PER_DAY)
    picked = Behaviours(behaviours)
    service_names = list(scenario.services)
    events = EventLog(start=scenario.start, service_names=service_names)
    mesh = ServiceMesh.from_specs(
        scenario.services,
        list(scenario.vendors),
        latency=picked.pick(
            "latency", bh.LatencyCurve.from_specs([s.latency for s in scenario.services.values()])
        ),
        rng=entity_rng(seed, "mesh", "services"),
    )
    services = [
        Service(model, name=name, index=i, team=spec.team, mesh=mesh)
        for i, (name, spec) in enumerate(scenario.services.items())
    ]
    features = Features(scenario.features, {name: i for i, name in enumerate(service_names)})
    segments = _segments(model, scenario, features, events, picked, seed)
    vendors = [
        Vendor(
            model,
            name=name,
            spec=spec,
            outages=picked.pick(f"outages/{name}", bh.VendorOutages.from_spec(spec)),
            rng=entity_rng(seed, "vendor", name),
        )
        for name, spec in scenario.vendors.items()
    ]
    for vendor in vendors:
        vendor.plan_outages(clock.n_ticks)
    vendor_status = VendorStatus(vendors, clock.n_ticks)
    desk = IncidentDesk(clock=clock, mesh=mesh, events=events, vendors=vendor_status)
    teams = [
        Team(
            model,
            name=name,
            spec=spec,
            services=[i for i, s in enumerate(services) if s.team == name],
            change_failure=picked.pick(
                f"change_failure/{name}", bh.ChangeFailure.from_spec(spec.change_failure)
            ),
            timing=picked.pick(
                f"incident_timing/{name}", bh.IncidentTiming.from_spec(spec.incidents)
            ),
            clock=clock,
            events=events,
            desk=desk,
            rng=entity_rng(seed, "team", name),
        )
        for name, spec in scenario.teams.items()
    ]
    team_index = {team.name: t for t, team in enumerate(teams)}
    service_team = np.array([team_index[s.team] for s in services], dtype=np.int64)
    desk.staff(teams, service_team)
    picked.check()
    recorder = SeriesRecorder(
        clock.n_ticks,
        {
            "segment": [s.name for s in segments],
            "service": service_names,
            "vendor": [v.name for v in vendors],
            "feature": features.names,
            "team": [t.name for t in teams],
        },
    )
    world = World(
        scenario=scenario,
        clock=clock,
        events=events,
        recorder=recorder,
        features=features,
        segments=segments,
        population=SegmentBlock(segments),
        sessions_rng=entity_rng(seed, "sessions", "all"),
        mesh=mesh,
        services=services,
        vendors=vendors,
        vendor_status=vendor_status,
        teams=teams,
        service_team=service_team,
        desk=desk,
        ledger=Ledger(service_team, len(teams), mesh.vendor_fanout.shape),
        cloud_peak=CLOUD_PEAK.predict(np.arange(HOURS_PER_WEEK) - clock.offset),
        team_counts=recorder.counters("team", COUNTS),
        behaviour_keys=tuple(picked.keys),
        drive=drive,
    )
    world.schedule.update(schedule(world, scenario.interventions))
    if drive is not None:
        for team in teams:
            team.driven = team.name in drive.driven_teams
        if drive.outages is not None:  # production's outages, not the drawn ones
            for vendor in vendors:
                vendor.planned_outages = sorted(
                    (start, end) for name, start, end in drive.outages if name == vendor.name
                )
    vendor_status.plan()  # after the interventions: a scheduled outage joins the plan
    return world


def _segments(
    model: mesa.Model,
    scenario: Scenario,
    features: Features,
    events: EventLog,
    picked: Behaviours,
    seed: int,
) -> list[UserSegment]:
    """One :class:`UserSegment` per scenario segment, with its behaviours."""
    new_ids = UserIds()
    segments = []
    for name, spec in scenario.segments.items():
        weights = np.zeros(len(features.names))
        total = sum(spec.features.values())
        for feature, share in spec.features.items():
            if scenario.features[feature].launched:
                weights[features.index[feature]] = share / total
        reference = spec.churn.reference_price_usd_month
        reference = spec.price_usd_month if reference is None else reference
        segments.append(
            UserSegment(
                model,
                name=name,
                spec=spec,
                feature_weights=weights,
                profile=picked.pick(
                    f"demand/{name}", bh.DemandProfile.from_spec(spec.demand_profile)
                ),
                churn=picked.pick(
                    f"churn/{name}",
                    bh.ChurnHazard.from_spec(spec.churn, reference_price_usd_month=reference),
                ),
                acquisition=picked.pick(
                    f"acquisition/{name}",
                    bh.Acquisition.from_spec(spec.acquisition, reference_price_usd_month=reference),
                ),
                sample_size=scenario.telemetry.user_sample_per_segment,
                events=events,
                new_ids=new_ids,
                rng=entity_rng(seed, "segment", name),
            )
        )
    return segments
