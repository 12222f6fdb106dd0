"""The model: one Mesa model holding users, services, vendors and teams; one tick = one hour.

Each hour, in order:

1. scheduled interventions apply (or revert);
2. user segments open sessions on features; features send requests to entry services;
3. the service mesh routes demand through the call graph and autoscales (sized for the
   demand of ``lag_hours`` ago); vendors answer (or are down, or rate-limit), and every
   service's capacity, latency, errors and cost follow;
4. users meet the errors and latency of the features they used;
5. overloaded services open capacity incidents, vendor outages open vendor incidents;
6. teams work, deploy, respond to incidents and get paged;
7. the hour is recorded.

At the end of each day, segments update experience, churn and arrivals and raise
tickets, which become toil for the teams whose services caused the bad sessions; teams
recover, lose and hire people.
"""

from __future__ import annotations

from collections.abc import Mapping

import mesa
import numpy as np

from orgtwin import behaviours as bh
from orgtwin.agents.teams import TEAM_GAUGES, Incident, Team
from orgtwin.agents.users import SegmentBlock
from orgtwin.agents.vendors import Vendor
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry import recording
from orgtwin.units import HOURS_PER_MONTH, SECONDS_PER_HOUR
from orgtwin.world import build as world
from orgtwin.world import effects as interventions
from orgtwin.world.rng import entity_rng

CAPACITY_INCIDENT_ERROR = 0.05  # overload share that opens a capacity incident
BUDGET_WINDOW_MAX_DAYS = 90


class OrgModel(mesa.Model):
    """A software organisation and its production system.

    Args:
        scenario: the validated scenario.
        seed: the run's seed; every entity derives its own stream from it.
        days: days to simulate (default: the scenario's ``days``).
        behaviours: replacement behaviours by key (see :func:`orgtwin.world.behaviour`),
            e.g. a churn hazard learned from telemetry: ``{"churn/free": fitted}``.

    Example:
        >>> from orgtwin import load_scenario
        >>> model = OrgModel(load_scenario("scenarios/baseline.yaml"), seed=1, days=2)
        >>> model.run()
        >>> model.tick
        48
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        days: int | None = None,
        behaviours: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(rng=seed)
        self.scenario = scenario
        self.seed = seed
        self.days = int(days if days is not None else scenario.days)
        self.n_ticks = self.days * 24
        self.tick = 0
        self.day = 0
        self.hour_of_week_offset = scenario.start.weekday() * 24 + scenario.start.hour
        self._next_user_id = 0
        self._next_incident_id = 0
        self.behaviour_overrides = dict(behaviours or {})
        self.behaviour_keys: list[str] = []
        world.build_mesh(self, scenario, seed)
        world.build_features(self, scenario)
        self.events = recording.EventLog(start=scenario.start, service_names=self.mesh.names)
        world.build_segments(self, scenario, seed)
        self.population = SegmentBlock(self.segments)
        self.sessions_rng = entity_rng(seed, "sessions", "all")
        world.build_vendors(self, scenario, seed)
        world.build_teams(self, scenario, seed)
        world.check_behaviour_keys(self)
        self._setup_vendor_arrays()
        self.actions = interventions.schedule(self, scenario.interventions)
        self._plan_vendor_status()
        self.capacity_open: set[int] = set()
        self.recorder = self._make_recorder()
        self._budget = np.zeros((BUDGET_WINDOW_MAX_DAYS, len(self.teams), 2))
        self._budget_today = np.zeros((len(self.teams), 2))
        self._blame_today = np.zeros(len(self.teams))
        self.vendor_call_totals = np.zeros_like(self.mesh.vendor_fanout)
        self.service_request_totals = np.zeros(len(self.services))
        how = np.arange(168) - self.hour_of_week_offset
        self.cloud_peak = bh.DemandProfile(16, 0.3, 0.8).predict(how)

    # ------------------------------------------------------------------ set-up

    def new_user_ids(self, n: int) -> np.ndarray:
        """Fresh, unique user ids."""
        ids = np.arange(self._next_user_id, self._next_user_id + n, dtype=np.int64)
        self._next_user_id += n
        return ids

    def local_anchor(self, utc_offset_hours: int, *, weekday: int, hour: int) -> int:
        """First tick at which it is ``weekday`` (0 = Monday) ``hour`` in a time zone."""
        return (weekday * 24 + hour - self.hour_of_week_offset - utc_offset_hours) % 168

    def _setup_vendor_arrays(self) -> None:
        vendors = self.vendors
        self.vendor_latency_ms = np.array([v.latency_ms for v in vendors])
        self.vendor_error_rate = np.array([v.error_rate for v in vendors])
        self.vendor_rate_limit = np.array([v.rate_limit_rps for v in vendors])
        self.vendor_price_per_call = np.array([v.price_usd_per_1k_calls / 1000 for v in vendors])

    def _plan_vendor_status(self) -> None:
        """Vendor up/down for every hour, and the hours at which outages begin."""
        self.vendor_up = np.ones((self.n_ticks, len(self.vendors)), dtype=bool)
        self.outage_starts: dict[int, list[int]] = {}
        for v, vendor in enumerate(self.vendors):
            for start, end in vendor.outage_windows():
                if start >= self.n_ticks:
                    continue
                self.vendor_up[start:end, v] = False
                self.outage_starts.setdefault(start, []).append(v)
        self.vendor_up_now = self.vendor_up[0] if self.n_ticks else np.ones(0, dtype=bool)

    def _make_recorder(self) -> recording.SeriesRecorder:
        return recording.SeriesRecorder(
            n_ticks=self.n_ticks,
            entities={
                "segment": [s.name for s in self.segments],
                "service": self.mesh.names,
                "vendor": [v.name for v in self.vendors],
                "feature": self.feature_names,
                "team": [t.name for t in self.teams],
            },
            metrics={
                "segment": recording.SEGMENT_METRICS,
                "service": recording.SERVICE_METRICS,
                "vendor": recording.VENDOR_METRICS,
                "feature": recording.FEATURE_METRICS,
                "team": Team.series_metrics(),
            },
        )

    # ------------------------------------------------------------------ incidents

    def open_incident(
        self, *, team: Team, service: int, severity: int, cause: str, started: int,
        error_rate: float = 0.0, batch_size: int = 1, resolve_when: str = "restored",
        vendor: int | None = None,
    ) -> Incident:  # fmt: skip
        """Create an incident owned by ``team``; its effects begin at ``started``."""
        incident = Incident(
            incident_id=self._next_incident_id, service=service, severity=severity,
            cause=cause, started=started, error_rate=error_rate, batch_size=batch_size,
            resolve_when=resolve_when, vendor=vendor,
        )  # fmt: skip
        self._next_incident_id += 1
        team.take_incident(incident)
        if started <= self.tick:
            self.apply_incidents(service)
        return incident

    def apply_incidents(self, service: int) -> None:
        """Recompute one service's degradation from the incidents open on it."""
        team = self.teams[self.service_team[service]]
        rates = [
            i.error_rate
            for i in team.open_incidents
            if i.service == service and i.started <= self.tick and i.resolved != self.tick
        ]
        self.mesh.set_incidents(service, rates, 0.0)

    def close_incident(self, incident: Incident) -> None:
        """Record a resolved incident and lift its effect."""
        team = self.teams[self.service_team[incident.service]]
        self.events.incident(incident, team.name)
        self.apply_incidents(incident.service)
        if incident.cause == "capacity":
            self.capacity_open.discard(incident.service)

    def _open_capacity_incidents(self) -> None:
        overloaded = np.flatnonzero(self.mesh.overload_error > CAPACITY_INCIDENT_ERROR)
        for service in overloaded:
            if service in self.capacity_open:
                continue
            self.capacity_open.add(int(service))
            self.open_incident(
                team=self.teams[self.service_team[service]], service=int(service), severity=2,
                cause="capacity", started=self.tick, resolve_when="load_ok",
            )  # fmt: skip

    def _open_vendor_incidents(self, vendors: list[int]) -> None:
        fanout = self.mesh.vendor_fanout
        for v in vendors:
            callers = np.flatnonzero(fanout[:, v] > 0)
            for t in sorted({int(self.service_team[s]) for s in callers}):
                service = int(next(s for s in callers if self.service_team[s] == t))
                self.open_incident(
                    team=self.teams[t], service=service, severity=2, cause="vendor",
                    started=self.tick, resolve_when="vendor_up", vendor=v,
                )  # fmt: skip

    # ------------------------------------------------------------------ the hour

    def step(self) -> None:
        """Advance the world by one hour."""
        t = self.tick
        counts = self.recorder.arrays["team"][t, :, len(TEAM_GAUGES) :]
        for team, row in zip(self.teams, counts, strict=True):
            team.count_into(row)  # the teams count this hour's events straight into the series
        for action in self.actions.get(t, ()):
            action()
        hour_of_week = (t + self.hour_of_week_offset) % 168
        sessions = self.population.open_sessions(hour_of_week, self.surge, self.sessions_rng)
        feature_sessions = sessions.sum(axis=0)
        feature_requests = feature_sessions * self.requests_per_session
        external = np.bincount(
            self.feature_entry, feature_requests / SECONDS_PER_HOUR, minlength=len(self.services)
        )
        mesh = self.mesh
        mesh.route(external)
        mesh.autoscale()
        calls = mesh.vendor_calls()
        self.vendor_up_now = self.vendor_up[t]
        vendor_error = Vendor.errors(
            calls, self.vendor_up_now, self.vendor_error_rate, self.vendor_rate_limit
        )
        mesh.serve(vendor_error, self.vendor_latency_ms, float(self.cloud_peak[hour_of_week]))
        feature_error = mesh.error_rate[self.feature_entry]
        feature_p95 = mesh.latency_p95_ms[self.feature_entry]
        bad_share = -np.expm1(
            self.visible_requests_per_session * np.log1p(-np.minimum(feature_error, 1 - 1e-12))
        )
        bad_share *= self.feature_visible
        bad = self.population.meet_service(sessions, bad_share, feature_p95)
        self._account(vendor_error, calls)
        if t in self.outage_starts:
            self._open_vendor_incidents(self.outage_starts[t])
        if mesh.overload_error.max() > CAPACITY_INCIDENT_ERROR:
            self._open_capacity_incidents()
        for team in self.teams:
            team.step()
        features = (feature_sessions, feature_requests, feature_error, feature_p95)
        self._record(t, sessions, bad, features, calls, vendor_error)
        mesh.end_hour()
        if (t + 1) % 24 == 0:
            self._end_day()
        self.tick += 1

    def _account(self, vendor_error: np.ndarray, calls: np.ndarray) -> None:
        """Per-team error-budget and blame sums, and call totals for the calls table."""
        mesh = self.mesh
        served = mesh.demand_rps * SECONDS_PER_HOUR
        vendor_caused = mesh.vendor_fanout @ vendor_error
        blame = served * np.minimum(mesh.own_error + vendor_caused, 1.0)
        self._blame_today += np.bincount(self.service_team, blame, minlength=len(self.teams))
        self._budget_today[:, 0] += np.bincount(
            self.service_team, served * mesh.error_rate, minlength=len(self.teams)
        )
        self._budget_today[:, 1] += np.bincount(
            self.service_team, served, minlength=len(self.teams)
        )
        self.vendor_call_totals += served[:, None] * mesh.vendor_fanout
        self.service_request_totals += served

    def _record(
        self,
        t: int,
        sessions: np.ndarray,
        bad: list[float],
        features: tuple,
        calls: np.ndarray,
        vendor_error: np.ndarray,
    ) -> None:
        """Write this hour's figures into the recorder's arrays (rows of tick ``t``)."""
        arrays = self.recorder.arrays
        mesh = self.mesh
        seg = arrays["segment"][t]
        seg[:, 0] = [s.active_users for s in self.segments]
        prices = np.array([s.price_usd_month for s in self.segments])
        np.multiply(seg[:, 0], prices > 0, out=seg[:, 1])
        np.multiply(seg[:, 1], prices / HOURS_PER_MONTH, out=seg[:, 2])
        seg[:, 6] = sessions.sum(axis=1)
        seg[:, 7] = bad
        arrays["service"][t].T[:] = (
            mesh.demand_rps, mesh.capacity_rps, mesh.utilisation, mesh.replicas,
            mesh.latency_p50_ms, mesh.latency_p95_ms, mesh.error_rate, mesh.cost_usd,
            mesh.preempted,
        )  # fmt: skip
        vendor_cost = calls * (SECONDS_PER_HOUR * self.vendor_price_per_call)
        arrays["vendor"][t].T[:] = (calls, self.vendor_up_now, vendor_error, vendor_cost)
        f_sessions, f_requests, f_error, f_p95 = features
        arrays["feature"][t].T[:] = (f_sessions, f_requests, f_requests * f_error, f_p95)
        gauges = np.array([team.gauges() for team in self.teams], dtype=float)
        arrays["team"][t, :, : len(TEAM_GAUGES)] = gauges  # one conversion, not one per cell

    # ------------------------------------------------------------------ the day

    def _end_day(self) -> None:
        t = self.tick
        self.events.today = self.day
        seg = self.recorder.arrays["segment"][t]
        tickets = np.zeros(len(self.segments))
        for i, segment in enumerate(self.segments):
            segment.end_day()
            seg[i, 3:6] = (segment.churned_today, segment.acquired_today, segment.tickets_today)
            tickets[i] = segment.tickets_today
        self.population.refresh()
        self._route_tickets(tickets.sum())
        self._budget = np.roll(self._budget, 1, axis=0)
        self._budget[0] = self._budget_today
        self._budget_today = np.zeros_like(self._budget_today)
        for i, team in enumerate(self.teams):
            team.end_day(self.day, self._budget_used(i, team))
        self.day += 1

    def _route_tickets(self, n_tickets: float) -> None:
        """Tickets become toil for the teams whose services caused the bad sessions."""
        blame = self._blame_today
        share = (
            blame / blame.sum()
            if blame.sum() > 0
            else np.full(len(self.teams), 1 / len(self.teams))
        )
        for team, k in zip(self.teams, share * n_tickets, strict=True):
            team.toil_backlog_hours += k * team.toil_hours_per_ticket
        self._blame_today = np.zeros_like(blame)

    def _budget_used(self, i: int, team: Team) -> float | None:
        if team.budget_gate is None:
            return None
        window = min(team.budget_gate[0], self.day + 1)
        errors, requests = self._budget[:window, i].sum(axis=0)
        allowed = 1.0 - self.scenario.slo.availability_target
        return float(errors / requests / allowed) if requests > 0 else 0.0

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Run every tick of the scenario."""
        while self.tick < self.n_ticks:
            self.step()

    def finish(self) -> None:
        """Record incidents still open at the end (``resolved`` stays empty)."""
        for team in self.teams:
            for incident in team.open_incidents:
                if incident.started < self.n_ticks:
                    incident.resolved = None
                    self.events.incident(incident, team.name)
            team.open_incidents = []
