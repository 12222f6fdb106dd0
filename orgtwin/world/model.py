"""The model: one Mesa model holding users, services, vendors and teams; one tick = one hour.

:meth:`OrgModel.step` advances the world by an hour, in this order:

1. the hour begins: teams get this hour's row of counts, scheduled interventions apply
   (or revert);
2. user segments open sessions on features (:meth:`~OrgModel.open_sessions`);
3. features send requests to entry services; the service mesh routes demand through the
   call graph and autoscales (sized for the demand of ``lag_hours`` ago); vendors answer
   (or are down, or rate-limit), and every service's capacity, latency, errors and cost
   follow (:meth:`~OrgModel.serve_requests`);
4. users meet the errors and latency of the features they used, and the ledger books
   the hour (:meth:`~OrgModel.meet_service`);
5. vendor outages and overloaded services raise incidents (:meth:`~OrgModel.raise_incidents`);
6. teams work, deploy, respond to incidents and get paged (:meth:`~OrgModel.work`);
7. the hour is recorded (:meth:`~OrgModel.record`), and the clock moves on.

At the end of each day (:meth:`~OrgModel.end_day`), segments update experience, churn
and arrivals and raise tickets, which become toil for the teams whose services caused
the bad sessions; teams recover, lose and hire people.

The model keeps Mesa's run protocol: ``model.running`` turns False after the last hour
(the run's books are then closed, :meth:`~OrgModel.finish`), a step past the end raises
:class:`~orgtwin.errors.RunError`, ``model.datacollector`` is a :class:`mesa.DataCollector`
(:class:`~orgtwin.world.collecting.OrgCollector`: hourly series, the run's KPIs, agents
on request), and :func:`mesa.batch_run` takes the scenario, ``seed``, ``days`` and any
lever path as parameters (see :mod:`orgtwin.world.collecting` for the whole API).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np
from numpy.typing import NDArray

from orgtwin.agents.services import Service
from orgtwin.agents.teams import GAUGES, Team
from orgtwin.agents.users import UserSegment
from orgtwin.agents.vendors import Vendor
from orgtwin.errors import LeverError, RunError, did_you_mean, whole_number
from orgtwin.scenario.levers import apply_levers
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_MONTH, SECONDS_PER_HOUR
from orgtwin.world.build import World, build_world
from orgtwin.world.collecting import OrgCollector
from orgtwin.world.drive import Drive

ARGUMENTS = ("scenario", "seed", "days", "behaviours", "drive", "agent_reporters")
"""The named arguments of :class:`OrgModel`; any other keyword is a lever path."""


@dataclass(slots=True)
class Hour:
    """What one hour passes from step to step (every array is per feature unless said)."""

    hour_of_week: int  # UTC, 0 = Monday 00:00
    sessions: NDArray | None = None  # [segments, features]
    feature_sessions: NDArray | None = None
    feature_requests: NDArray | None = None
    calls: NDArray | None = None  # per vendor, calls per second
    vendor_error: NDArray | None = None  # per vendor
    feature_error: NDArray | None = None
    feature_p95: NDArray | None = None
    bad: NDArray | None = None  # per segment: bad sessions


class OrgModel(mesa.Model):
    """A software organisation and its production system.

    Args:
        scenario: the validated scenario, or a path to a scenario file (or a mapping), which
            is loaded with :func:`~orgtwin.scenario.load.load_scenario`.
        seed: the run's seed; every entity derives its own stream from it.
        days: days to simulate (default: the scenario's ``days``); one step is one hour.
        behaviours: replacement behaviours by key (see
            :class:`orgtwin.world.build.Behaviours`), e.g. a churn hazard learned from
            telemetry: ``{"churn/free": fitted}``.
        drive: the inputs production was given, imposed hour by hour (a shadow replay:
            :class:`~orgtwin.world.drive.Drive`); None: the twin draws its own.
        agent_reporters: which agents the data collector reads every hour: False (none,
            the fastest), True (every kind), or kinds by name (``("teams", "services")``)
            or class (``(Team,)``); see :mod:`orgtwin.world.collecting`.
        **levers: lever paths and their values, applied to the scenario with
            :func:`~orgtwin.scenario.levers.apply_levers` (``**{"teams.*.oncall_size": 2}``);
            how :func:`mesa.batch_run` passes a lever as a parameter.

    Attributes:
        scenario: the scenario, levers applied.
        seed: the run's seed.
        world: everything the model holds (:class:`~orgtwin.world.build.World`).
        running: True until the last hour is simulated (Mesa's run protocol).
        datacollector: the :class:`~orgtwin.world.collecting.OrgCollector`.

    Raises:
        LeverError: a keyword is neither an argument nor a lever path of the scenario, or a
            lever's value is out of bounds.
        RunError: ``days`` is not a whole number >= 1, ``agent_reporters`` names an unknown
            kind, or a replacement behaviour's key names nothing in this world.
        ScenarioError: a scenario file is invalid.

    Example:
        >>> from orgtwin import load_scenario
        >>> model = OrgModel(load_scenario("scenarios/baseline.yaml"), seed=1, days=2)
        >>> model.run()
        >>> model.tick, len(model.world.teams), model.world.events.deploys[0].team
        (48, 5, 'data')
        >>> model.running, len(model.teams.select(lambda team: team.oncall_size >= 2))
        (False, 5)
        >>> cheaper = OrgModel("scenarios/baseline.yaml", seed=1, days=2,
        ...                    **{"segments.pro_us.price_usd_month": 12})
        >>> cheaper.scenario.segments["pro_us"].price_usd_month
        12.0
    """

    def __init__(
        self,
        scenario: Scenario | str | os.PathLike[str] | Mapping[str, Any],
        *,
        seed: int,
        days: int | None = None,
        behaviours: Mapping[str, object] | None = None,
        drive: Drive | None = None,
        agent_reporters: bool | Collection[str | type] = False,
        **levers: Any,
    ) -> None:
        super().__init__(rng=seed)
        sc = _scenario(scenario)
        if levers:
            _check_lever_names(levers)
            sc = apply_levers(sc, levers)
        days = None if days is None else whole_number(days, name="days", error=RunError)
        self.scenario = sc
        self.seed = seed
        self._closed = False  # the run's books (see finish)
        self.world: World = build_world(
            self, sc, seed=seed, days=days, behaviours=behaviours, drive=drive
        )
        self.running = self.world.clock.tick < self.world.clock.n_ticks
        self.datacollector = OrgCollector(self, agent_reporters=agent_reporters)

    @property
    def tick(self) -> int:
        """The hour being simulated (0 = the scenario's start)."""
        return self.world.clock.tick

    @property
    def day(self) -> int:
        """The day being simulated (0 = the first)."""
        return self.world.clock.day

    @property
    def n_ticks(self) -> int:
        """Hours in the run."""
        return self.world.clock.n_ticks

    @property
    def days(self) -> int:
        """Days in the run."""
        return self.world.clock.n_ticks // HOURS_PER_DAY

    # ------------------------------------------------------------------ the agents

    @property
    def segments(self) -> mesa.agent.AgentSet:
        """The user segments, from Mesa's registry (``agents_by_type[UserSegment]``)."""
        return self._registered(UserSegment)

    @property
    def services(self) -> mesa.agent.AgentSet:
        """The services, from Mesa's registry (``agents_by_type[Service]``)."""
        return self._registered(Service)

    @property
    def vendors(self) -> mesa.agent.AgentSet:
        """The vendors, from Mesa's registry (``agents_by_type[Vendor]``); may be empty."""
        return self._registered(Vendor)

    @property
    def teams(self) -> mesa.agent.AgentSet:
        """The teams, from Mesa's registry (``agents_by_type[Team]``)."""
        return self._registered(Team)

    def _registered(self, kind: type[mesa.Agent]) -> mesa.agent.AgentSet:
        """The agents of one kind, in the order they were made (the scenario's order).

        Mesa's registry is where a user finds the agents (``select``, ``do``, ``groupby``);
        the world's lists (:class:`~orgtwin.world.build.World`) index the same agents in
        the order of the vectorised arrays, for the hourly hot paths.
        """
        found = self.agents_by_type.get(kind)
        return found if found is not None else mesa.agent.AgentSet([], random=self.random)

    # ------------------------------------------------------------------ the hour

    def step(self) -> None:
        """Advance the world by one hour; the data collector reads the hour.

        Raises:
            RunError: every hour of the run is simulated already (``running`` is False);
                ``steps`` is left as it was.
        """
        if self.world.clock.tick >= self.world.clock.n_ticks:
            self.steps -= 1  # Mesa counted the step before calling it
            days = f"{self.days} day{'s' if self.days != 1 else ''}"
            raise RunError(
                f"{self.scenario.source}: the run is over after {days} ({self.n_ticks} hours; "
                f"the last was day {self.days - 1}, counting from 0): step() must not be "
                f"called once model.running is False; make a new OrgModel with more days"
            )
        hour = self.begin_hour()
        self.open_sessions(hour)
        self.serve_requests(hour)
        self.meet_service(hour)
        self.raise_incidents()
        self.work()
        self.record(hour)
        self.datacollector.collect(self)
        self.end_hour()

    def begin_hour(self) -> Hour:
        """Teams get this hour's row of counts; the interventions due now apply or revert."""
        world = self.world
        t = world.clock.tick
        for team, row in zip(world.teams, world.team_counts[t], strict=True):
            team.count_into(row)  # the teams count this hour's events straight into the series
        for action in world.schedule.get(t, ()):
            action()
        return Hour(world.clock.hour_of_week())

    def open_sessions(self, hour: Hour) -> None:
        """Every segment opens this hour's sessions on its features (in a replay, the
        sessions observed where there are some)."""
        world = self.world
        hour.sessions = world.population.open_sessions(
            hour.hour_of_week, world.features.surge, world.sessions_rng
        )
        observed = None if world.drive is None else world.drive.sessions_at(world.clock.tick)
        if observed is not None:
            hour.sessions = world.population.impose_sessions(
                hour.sessions, observed, world.features.surge
            )
        hour.feature_sessions = hour.sessions.sum(axis=0)

    def serve_requests(self, hour: Hour) -> None:
        """Requests flow from features through the mesh to the vendors, and are served."""
        world = self.world
        features, mesh = world.features, world.mesh
        hour.feature_requests = hour.feature_sessions * features.requests_per_session
        external = np.bincount(
            features.entry, hour.feature_requests / SECONDS_PER_HOUR, minlength=len(mesh.names)
        )
        observed = None if world.drive is None else world.drive.entry_at(world.clock.tick)
        if observed is not None:  # a replay: the requests production received from outside
            external = np.where(np.isnan(observed), external, observed)
        mesh.route(external)
        mesh.autoscale()
        hour.calls = mesh.vendor_calls()
        hour.vendor_error = world.vendor_status.errors(world.clock.tick, hour.calls)
        peak = float(world.cloud_peak[hour.hour_of_week])
        mesh.serve(hour.vendor_error, world.vendor_status.latency_ms, peak)

    def meet_service(self, hour: Hour) -> None:
        """Users meet the errors and latency of their features; the ledger books the hour."""
        world = self.world
        features, mesh = world.features, world.mesh
        hour.feature_error = mesh.error_rate[features.entry]
        hour.feature_p95 = mesh.latency_p95_ms[features.entry]
        bad_share = -np.expm1(
            features.visible_requests_per_session
            * np.log1p(-np.minimum(hour.feature_error, 1 - 1e-12))
        )
        bad_share *= features.visible
        hour.bad = world.population.meet_service(hour.sessions, bad_share, hour.feature_p95)
        assert hour.vendor_error is not None
        world.ledger.account(mesh, hour.vendor_error)

    def raise_incidents(self) -> None:
        """Vendor outages that begin now and overloaded services open incidents."""
        self.world.desk.raise_incidents()

    def work(self) -> None:
        """Every team works its hour: incidents, toil, features, deploys (in a replay,
        driven teams ship the deploys production made this hour)."""
        world = self.world
        for team in world.teams:  # the world's index: self.teams.do("step") costs more hourly
            team.step()
        if world.drive is not None:
            for team, service, batch in world.drive.deploys.get(world.clock.tick, ()):
                world.team(team).ship(world.clock.tick, world.service_index(service), batch)

    def record(self, hour: Hour) -> None:
        """Write this hour's figures into the series, by metric."""
        world = self.world
        t, rec, mesh = world.clock.tick, world.recorder, world.mesh
        active = world.population.active  # users move only at the end of a day
        prices = np.array([s.price_usd_month for s in world.segments])
        paying = active * (prices > 0)
        rec.write(
            "segment", t, active_users=active, paying_users=paying,
            revenue_usd=paying * (prices / HOURS_PER_MONTH),
            sessions=hour.sessions.sum(axis=1), bad_sessions=hour.bad,
        )  # fmt: skip
        rec.write(
            "service", t, demand_rps=mesh.demand_rps, capacity_rps=mesh.capacity_rps,
            utilisation=mesh.utilisation, replicas=mesh.replicas,
            latency_p50_ms=mesh.latency_p50_ms, latency_p95_ms=mesh.latency_p95_ms,
            error_rate=mesh.error_rate, cost_usd=mesh.cost_usd,
            preempted_replicas=mesh.preempted,
        )  # fmt: skip
        vendors = world.vendor_status
        rec.write(
            "vendor", t, calls_rps=hour.calls, up=vendors.up_now,
            error_rate=hour.vendor_error,
            cost_usd=hour.calls * (SECONDS_PER_HOUR * vendors.price_per_call),
        )  # fmt: skip
        assert hour.feature_requests is not None and hour.feature_error is not None
        rec.write(
            "feature", t, sessions=hour.feature_sessions, requests=hour.feature_requests,
            errors=hour.feature_requests * hour.feature_error, latency_p95_ms=hour.feature_p95,
        )  # fmt: skip
        rec.write_table("team", t, GAUGES, [team.gauges() for team in world.teams])

    def end_hour(self) -> None:
        """The mesh's hour ends; the day ends after its last hour; the clock moves on.

        After the run's last hour, ``running`` turns False and the books close
        (:meth:`finish`).
        """
        world = self.world
        world.mesh.end_hour()
        if world.clock.ends_day():
            self.end_day()
        world.clock.advance()
        if world.clock.tick >= world.clock.n_ticks:
            self.running = False
            self.finish()

    # ------------------------------------------------------------------ the day

    def end_day(self) -> None:
        """Segments churn, gain users and raise tickets; teams recover, lose and hire."""
        world = self.world
        clock, ledger = world.clock, world.ledger
        world.events.today = clock.day
        self.segments.do("end_day")  # Mesa's registry, in scenario order (once a day)
        world.recorder.write(
            "segment", clock.tick,
            churned=[s.churned_today for s in world.segments],
            acquired=[s.acquired_today for s in world.segments],
            tickets=[s.tickets_today for s in world.segments],
        )  # fmt: skip
        world.population.refresh()
        tickets = np.array([s.tickets_today for s in world.segments], dtype=float).sum()
        for team, share in zip(world.teams, ledger.ticket_shares() * tickets, strict=True):
            team.raise_tickets(share)
        ledger.close_day()
        availability = self.scenario.slo.availability_target
        for i, team in enumerate(world.teams):
            gate = team.budget_gate
            used = (
                None
                if gate is None
                else ledger.budget_used(i, gate.window_days, clock.day, availability)
            )
            team.end_day(clock.day, used)

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Run every tick of the scenario that is left (Mesa's ``run_model`` does the same)."""
        while self.world.clock.tick < self.world.clock.n_ticks:
            self.step()

    def finish(self) -> None:
        """Close the run's books: open incidents, call totals and outages go to the log.

        Done once: the last hour calls it, and a later call does nothing.
        """
        if self._closed:
            return
        self._closed = True
        world = self.world
        world.desk.finish()
        mesh, ledger, events = world.mesh, world.ledger, world.events
        for i, caller in enumerate(mesh.names):
            for j in np.flatnonzero(mesh.fanout[i]):
                events.call_totals(
                    caller,
                    mesh.names[j],
                    float(ledger.service_request_totals[i] * mesh.fanout[i, j]),
                )
        for i, caller in enumerate(mesh.names):
            for v in np.flatnonzero(ledger.vendor_call_totals[i]):
                events.call_totals(
                    caller, world.vendors[v].name, float(ledger.vendor_call_totals[i, v])
                )
        for vendor, start, end in world.vendor_status.windows():
            events.outage(vendor, start, end)


def _scenario(scenario: object) -> Scenario:
    """``scenario`` as a :class:`Scenario`: loaded if it is a path or a mapping.

    Raises:
        RunError: it is none of these (a Scenario given bare to :func:`mesa.batch_run`
            arrives as one of its fields: put it in a list).
    """
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str | os.PathLike | Mapping):
        return load_scenario(scenario)
    raise RunError(
        f"scenario must be a Scenario, a path to a scenario file or a mapping, got "
        f"{type(scenario).__name__} {scenario!r:.60} (in mesa.batch_run, put a Scenario in a "
        f"list: parameters={{'scenario': [scenario], ...}})"
    )


def _check_lever_names(levers: Mapping[str, Any]) -> None:
    """Refuse a keyword that is neither an argument of :class:`OrgModel` nor a lever path.

    A dotted path is checked by :func:`~orgtwin.scenario.levers.apply_levers`; a plain
    name must be a top-level field of the scenario.

    Raises:
        LeverError: a plain name that is no field of a scenario (with a hint).
    """
    fields = [f for f, info in Scenario.model_fields.items() if not info.exclude]
    for name in levers:
        if "." in name or "[" in name or name in fields:
            continue
        hint = did_you_mean(name, [*ARGUMENTS, *fields]) or (
            "did you mean 'seed'?" if name in ("rng", "random_seed") else None
        )
        raise LeverError(
            name,
            f"must be an argument of OrgModel ({', '.join(ARGUMENTS)}) or a lever path like "
            f"teams.*.oncall_size, got {name}={levers[name]!r}",
            hint,
        )
