"""Teams: engineers who ship changes, carry the pager and restore service.

A :class:`Team` owns services. In working hours its engineers split their time between
incidents, toil (support tickets) and feature work; feature work produces changes that
wait in a queue per service until the deploy policy ships them — every hour
(continuous), on a fixed cadence (batched) or after a change-approval board meets. A
deploy fails with a probability that grows with the batch and with fatigue; a failed
deploy starts an incident after a latent delay, with a blast radius cut by canaries.
Incidents are detected after a delay, page the engineer on call (off-hours pages build
fatigue), and are restored after a time stretched by fatigue and by the size of the
batch that caused them, and shortened by expertise; the failed changes go back to the
queue. Each day fatigue recovers a little, engineers leave by a hazard that rises with
fatigue (an exponential clock per engineer, as for users), and leavers are replaced
after a hiring lag unless hiring is frozen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import mesa
import numpy as np

from orgtwin.telemetry.series import accrued_metrics
from orgtwin.units import (
    HOURS_PER_DAY,
    HOURS_PER_WEEK,
    WORK_END_HOUR,
    WORK_START_HOUR,
    WORKWEEK_HOURS,
    Clock,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from orgtwin.behaviours import ChangeFailure, IncidentTiming
    from orgtwin.scenario.organisation import TeamSpec
    from orgtwin.telemetry.recording import EventLog

SEVERITY_ERROR_SHARE = {1: 1.0, 2: 0.25, 3: 0.04}
RESPONDERS_PER_INCIDENT = 2.0
PAGING_SEVERITY = 2  # incidents of this severity or worse page the on-call engineer
DRILL_HOUR = 11  # chaos drills start at 11:00 local time
WORKDAYS_PER_MONTH = 21.7


@dataclass
class Incident:
    """One incident, from start to resolution (times are ticks)."""

    incident_id: int
    service: int
    severity: int
    cause: str
    started: int
    error_rate: float
    capacity_loss: float = 0.0
    batch_size: int = 1
    detected: int | None = None
    resolved: int | None = None
    resolve_when: str = "restored"  # restored | vendor_up | load_ok
    vendor: int | None = None
    rollback: list[list[int]] = field(default_factory=list)
    next_page: int | None = None


@dataclass
class DeployPolicy:
    """When a team may ship. ``anchor`` is the tick of the first slot."""

    kind: str = "continuous"
    every_hours: int = 24
    working_hours_only: bool = True
    anchor: int = 0


class Drills(Protocol):
    """A programme of chaos drills (an intervention's settings, read by the team)."""

    drills_per_month: float
    drill_hours: float
    expertise_per_drill: float


class BudgetGate(Protocol):
    """An error-budget policy: freeze deploys while too much of the budget is used."""

    window_days: int
    freeze_above_budget_used: float


class IncidentDesk(Protocol):
    """What a team needs from the desk that keeps the organisation's incidents."""

    def open(
        self, *, team: Team, service: int, severity: int, cause: str, started: int,
        error_rate: float = 0.0, batch_size: int = 1, resolve_when: str = "restored",
        vendor: int | None = None,
    ) -> Incident:  # fmt: skip
        """Open an incident owned by ``team``; its effects begin at ``started``."""
        ...

    def apply(self, service: int) -> None:
        """Recompute one service's degradation from the incidents open on it."""
        ...

    def close(self, incident: Incident) -> None:
        """Record a resolved incident and lift its effect."""
        ...

    def cleared(self, incident: Incident) -> bool:
        """Whether what an incident waits for is over (the vendor is up, the load is ok)."""
        ...


GAUGES = ("headcount", "oncall_size", "fatigue", "expertise", "pending_changes")
"""The team's state the series records each hour (see :meth:`Team.gauges`)."""
COUNTS = accrued_metrics("team")
"""What a team counts each hour: the team metrics of the series that accrue."""
COUNTED = {name: i for i, name in enumerate(COUNTS)}
"""Count name -> its place in the row of this hour's counts the model hands the team."""


class Team(mesa.Agent):
    """An engineering team.

    Args:
        model: the Mesa model the team belongs to (for registration only).
        name: team name.
        spec: the team as the scenario declares it (people, rotation, policy, habits).
        services: indices (in the service mesh) of the services the team owns.
        change_failure: behaviour with ``predict_proba(batch_size, fatigue)``.
        timing: behaviour with ``sample_detect`` and ``sample_restore`` (hours).
        clock: the run's clock.
        events: the run's event log (deploys and pages are recorded there).
        desk: the incident desk (incidents are opened, applied and closed there).
        rng: this team's random generator (split into one stream per purpose).
    """

    def __init__(
        self,
        model: mesa.Model,
        *,
        name: str,
        spec: TeamSpec,
        services: list[int],
        change_failure: ChangeFailure,
        timing: IncidentTiming,
        clock: Clock,
        events: EventLog,
        desk: IncidentDesk,
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.services = list(services)
        self.clock = clock
        self.events = events
        self.desk = desk
        self.utc_offset_hours = spec.utc_offset_hours
        self.changes_per_engineer_day = spec.changes_per_engineer_day
        self.toil_hours_per_ticket = spec.toil_hours_per_ticket
        self.pipeline_hours = spec.pipeline_hours
        self.canary = spec.canary
        self.canary_blast_radius = spec.change_failure.canary_blast_radius
        policy = spec.deploy_policy
        anchor = clock.first_tick_at(spec.utc_offset_hours, weekday=0, hour=10)
        self.policy = DeployPolicy(policy.kind, policy.every_hours, policy.working_hours_only,
                                   anchor)  # fmt: skip
        self.change_failure = change_failure
        self.timing = timing
        self.incident_error_rate = spec.incidents.deploy_incident_error_rate
        self.escalate_every_hours = spec.incidents.escalate_every_hours
        self.people = spec.people.model_copy()
        self.expertise = spec.expertise
        self.oncall_target = spec.oncall_size
        streams = rng.spawn(4)
        self.rng_work, self.rng_deploy, self.rng_incident, self.rng_people = streams
        self.fatigue = np.zeros(0)
        self._mean_fatigue = 0.0
        self.attrition_clock = np.zeros(0)
        self.attrition_threshold = np.zeros(0)
        self._hire(spec.headcount)
        self.hires_due: deque[int] = deque()  # days on which a hire starts
        self.open_reqs = 0
        self.hiring_frozen = False
        self.freezes = 0
        self.budget_frozen = False
        self.budget_gate: BudgetGate | None = None
        self.pending: dict[int, deque[list[int]]] = {s: deque() for s in self.services}
        self.pending_changes = 0  # changes waiting in all queues
        self._service_share = np.full(len(self.services), 1 / max(len(self.services), 1))
        self.work_done = 0.0
        self.toil_backlog_hours = 0.0
        self.open_incidents: list[Incident] = []
        self.drills: Drills | None = None
        self.counts = np.zeros(len(COUNTED))
        self.driven = False
        """Whether the team's deploys are driven from outside (a replay ships the deploys
        production made, :meth:`ship`): its own pace queues no changes and its policy
        ships none."""

    # ------------------------------------------------------------------ people

    @property
    def headcount(self) -> int:
        """Engineers in the team now."""
        return int(self.fatigue.size)

    @property
    def oncall_size(self) -> int:
        """Engineers in the rotation now (the target, if the team is big enough)."""
        return max(1, min(self.oncall_target, self.headcount))

    @property
    def mean_fatigue(self) -> float:
        """Mean fatigue per engineer (0 = rested, 1 ≈ exhausted)."""
        return self._mean_fatigue

    def _fatigue_changed(self) -> None:
        self._mean_fatigue = float(self.fatigue.mean()) if self.fatigue.size else 0.0

    def _hire(self, n: int) -> None:
        if n <= 0:
            return
        self.fatigue = np.concatenate([self.fatigue, np.zeros(n)])
        self._fatigue_changed()
        self.attrition_clock = np.concatenate([self.attrition_clock, np.zeros(n)])
        draws = self.rng_people.standard_exponential(n)
        self.attrition_threshold = np.concatenate([self.attrition_threshold, draws])
        if self.headcount > n:  # newcomers dilute the team's expertise a little
            self.expertise *= 1.0 - 0.3 * n / self.headcount

    def _remove(self, who: NDArray[np.int64]) -> None:
        keep = np.ones(self.headcount, dtype=bool)
        keep[who] = False
        self.fatigue = self.fatigue[keep]
        self._fatigue_changed()
        self.attrition_clock = self.attrition_clock[keep]
        self.attrition_threshold = self.attrition_threshold[keep]

    def on_call(self, tick: int) -> int:
        """Index of the engineer on call at ``tick`` (weekly rotation)."""
        week = (tick + self.utc_offset_hours) // HOURS_PER_WEEK
        return int(week % self.oncall_size) if self.headcount else -1

    def change_headcount(self, change: int, day: int) -> None:
        """Hire (after the hiring lag) or lay off engineers."""
        if change > 0:
            self.open_reqs += change
            self._schedule_hires(day)
        elif change < 0:
            n = min(-change, self.headcount - 1)
            who = self.rng_people.choice(self.headcount, size=n, replace=False)
            self._remove(who)

    def _schedule_hires(self, day: int) -> None:
        if self.hiring_frozen:
            return
        lag = int(self.people.hiring_lag_days)
        self.hires_due.extend([day + lag] * self.open_reqs)
        self.open_reqs = 0

    def set_hiring_frozen(self, frozen: bool, day: int) -> None:
        """Freeze hiring (leavers are not replaced) or lift the freeze."""
        self.hiring_frozen = frozen
        if frozen:
            self.open_reqs += len(self.hires_due)
            self.hires_due.clear()
        else:
            self._schedule_hires(day)

    def set_oncall_target(self, size: int) -> None:
        """Engineers the rotation should have (fewer while the team is smaller)."""
        self.oncall_target = int(size)

    # ------------------------------------------------------------------ policies

    def set_policy(self, policy: DeployPolicy) -> None:
        """Ship by another deploy policy from now on."""
        self.policy = policy

    def board_policy(self, meeting_every_hours: int) -> DeployPolicy:
        """The policy of a change-approval board meeting every so often, Tuesdays 10:00 local."""
        anchor = self.clock.first_tick_at(self.utc_offset_hours, weekday=1, hour=10)
        return DeployPolicy("approval_board", meeting_every_hours, True, anchor)

    def freeze_deploys(self) -> None:
        """No deploys until the freeze is lifted (freezes nest)."""
        self.freezes += 1

    def lift_freeze(self) -> None:
        """Lift one freeze."""
        self.freezes -= 1

    def set_drills(self, drills: Drills | None) -> None:
        """Run a programme of chaos drills (None: no drills)."""
        self.drills = drills

    def set_budget_gate(self, gate: BudgetGate | None) -> None:
        """Freeze deploys while the error budget is spent (None: never)."""
        self.budget_gate = gate

    def raise_tickets(self, tickets: float) -> None:
        """Support tickets caused by the team's services become toil."""
        self.toil_backlog_hours += tickets * self.toil_hours_per_ticket

    # ------------------------------------------------------------------ the hour

    def step(self) -> None:
        """One hour: incidents move on, engineers work, the deploy policy may ship."""
        tick = self.clock.tick
        working = self.clock.is_working_hour(tick, self.utc_offset_hours)
        if self.open_incidents:
            self._progress_incidents(tick)
        if working:
            self._work(tick)
        if self.driven:
            return
        if self._may_deploy(tick, working):
            for service in self.services:
                if self.pending[service]:
                    self.deploy(tick, service)

    def _work(self, tick: int) -> None:
        busy = RESPONDERS_PER_INCIDENT * sum(
            1 for i in self.open_incidents if i.detected is not None and i.detected <= tick
        )
        hours = max(self.headcount - busy, 0.0)
        toil = min(self.toil_backlog_hours, 0.5 * hours)
        self.toil_backlog_hours -= toil
        feature_hours = hours - toil
        self.counts[COUNTED["toil_hours"]], self.counts[COUNTED["feature_hours"]] = (
            toil,
            feature_hours,
        )
        rate = self.changes_per_engineer_day / (WORK_END_HOUR - WORK_START_HOUR)
        self.work_done += feature_hours * rate / (1.0 + self.mean_fatigue)
        n = int(self.work_done)
        if n == 0:
            return
        self.work_done -= n
        if self.driven:
            return  # what ships is what production shipped (:meth:`ship`)
        per_service = self.rng_work.multinomial(n, self._service_share)
        for service, count in zip(self.services, per_service, strict=True):
            if count:
                self.pending[service].append([tick, int(count)])
        self.pending_changes += n

    def _may_deploy(self, tick: int, working: bool) -> bool:
        if self.freezes > 0 or self.budget_frozen:
            return False
        policy = self.policy
        if policy.working_hours_only and not working:
            return False
        if policy.kind == "continuous":
            return True
        return (tick - policy.anchor) % policy.every_hours == 0

    def deploy(
        self, tick: int, service: int, *, extra_changes: int = 0, canary: bool | None = None
    ) -> None:
        """Ship the changes of ``service`` that are through the pipeline (plus extras)."""
        queue = self.pending[service]
        chunks = []
        while queue and queue[0][0] <= tick - self.pipeline_hours:
            chunks.append(queue.popleft())
        self.pending_changes -= sum(c for _, c in chunks)
        if extra_changes:
            chunks.append([tick, extra_changes])
        if chunks:
            self._ship(tick, service, chunks, canary)

    def ship(self, tick: int, service: int, batch: int, lead_hours: float = 0.0) -> None:
        """Ship ``batch`` changes of ``service`` now, ready ``lead_hours`` ago (a deploy
        production made, replayed): it fails by the team's change-failure law."""
        self._ship(tick, service, [[tick - round(lead_hours), max(int(batch), 1)]], None)

    def _ship(self, tick: int, service: int, chunks: list[list[int]], canary: bool | None) -> None:
        batch = sum(c for _, c in chunks)
        lead = sum((tick - t) * c for t, c in chunks) / batch
        p_fail = float(self.change_failure.predict_proba(batch, self.mean_fatigue))
        u_fail, u_severity, u_latent = self.rng_deploy.random(3)
        failed = bool(u_fail < p_fail)
        self.counts[COUNTED["deploys"]] += 1
        self.events.deploy(tick, service, self.name, batch, failed, lead)
        if not failed:
            self.counts[COUNTED["changes_shipped"]] += batch
            return
        self.counts[COUNTED["failed_deploys"]] += 1
        severity = self._severity(batch, u_severity)
        blast = self.canary_blast_radius if (self.canary if canary is None else canary) else 1.0
        latent = int(-np.log1p(-u_latent) * 3.0)  # hours until the defect bites (mean ≈ 2.5)
        incident = self.desk.open(
            team=self,
            service=service,
            severity=severity,
            cause="deploy",
            started=tick + latent,
            error_rate=self.incident_error_rate * SEVERITY_ERROR_SHARE[severity] * blast,
            batch_size=batch,
        )
        incident.rollback = chunks

    @staticmethod
    def _severity(batch: int, u: float) -> int:
        """Severity of a failed deploy: bigger batches break more at once."""
        p_sev1 = min(0.6, 0.03 * batch)
        p_sev2 = min(0.5, 0.1 + 0.04 * batch)
        if u < p_sev1:
            return 1
        return 2 if u < p_sev1 + p_sev2 else 3

    # ------------------------------------------------------------------ incidents

    def take_incident(self, incident: Incident) -> None:
        """Own a new incident: set its detection time."""
        detect = self.timing.sample_detect(self.rng_incident)
        if self.canary and incident.cause == "deploy":
            detect *= 0.5  # canary analysis spots bad deploys sooner
        if incident.cause == "chaos":
            detect = 0.0
        incident.detected = incident.started + int(np.ceil(detect))
        self.open_incidents.append(incident)

    def _progress_incidents(self, tick: int) -> None:
        for incident in list(self.open_incidents):
            if incident.started == tick:
                self.desk.apply(incident.service)
            if incident.detected == tick:
                self._on_detect(incident, tick)
            elif incident.next_page is not None and tick >= incident.next_page:
                self._page(incident, tick)
            if tick >= incident.detected and self._is_resolved(incident, tick):
                self._resolve(incident, tick)

    def _on_detect(self, incident: Incident, tick: int) -> None:
        if incident.resolve_when == "restored":
            engineer = self.on_call(tick)
            fatigue = float(self.fatigue[engineer]) if engineer >= 0 else 0.0
            hours = self.timing.sample_restore(
                self.rng_incident,
                fatigue=fatigue,
                expertise=self.expertise,
                batch_size=incident.batch_size,
            )
            if incident.cause == "chaos":
                hours = self.drills.drill_hours if self.drills else 1.0
            incident.resolved = tick + max(1, int(np.ceil(hours)))
        if incident.severity <= PAGING_SEVERITY:
            self._page(incident, tick)

    def _page(self, incident: Incident, tick: int) -> None:
        working = self.clock.is_working_hour(tick, self.utc_offset_hours)
        engineer = self.on_call(tick)
        if not working and engineer >= 0:
            self.fatigue[engineer] += self.people.fatigue_per_offhours_page
            self._fatigue_changed()
            self.counts[COUNTED["off_hours_pages"]] += 1
        self.counts[COUNTED["pages"]] += 1
        self.events.page(tick, self.name, not working, incident.incident_id)
        incident.next_page = tick + self.escalate_every_hours

    def _is_resolved(self, incident: Incident, tick: int) -> bool:
        if incident.resolve_when != "restored":
            return self.desk.cleared(incident)
        return incident.resolved is not None and tick >= incident.resolved

    def _resolve(self, incident: Incident, tick: int) -> None:
        incident.resolved = tick
        self.open_incidents.remove(incident)
        self.desk.close(incident)
        if incident.rollback:  # the failed changes go back to the queue, as they were
            self.pending[incident.service].extendleft(reversed(incident.rollback))
            self.pending_changes += sum(c for _, c in incident.rollback)
        if incident.cause != "chaos":
            self.expertise += self.people.expertise_per_incident

    # ------------------------------------------------------------------ the day

    def end_day(self, day: int, budget_used: float | None = None) -> None:
        """Recovery, attrition, hiring, expertise decay, error-budget gate, chaos drills.

        Args:
            day: the day that ends (0 = the first).
            budget_used: share of the error budget the team's services used over the
                window of its error-budget policy (None without a policy).
        """
        recovery = np.full(self.headcount, 1.0 - self.people.fatigue_recovery_per_day)
        on_call = self.on_call(day * HOURS_PER_DAY)
        if on_call >= 0:
            recovery[on_call] = 1.0  # carrying the pager is no rest
        self.fatigue *= recovery
        self._fatigue_changed()
        self.expertise *= 1.0 - self.people.expertise_decay_per_day
        self._attrition(day)
        while self.hires_due and self.hires_due[0] <= day:
            self.hires_due.popleft()
            self._hire(1)
            self.counts[COUNTED["hired"]] += 1
        gate = self.budget_gate
        self.budget_frozen = (
            gate is not None and budget_used is not None
            and budget_used > gate.freeze_above_budget_used
        )  # fmt: skip
        if self.drills is not None:
            self._plan_drill(day, self.drills)

    def _attrition(self, day: int) -> None:
        base = self.people.attrition_base_yearly / 365.0
        self.attrition_clock += base * np.exp(self.people.attrition_fatigue_coef * self.fatigue)
        leavers = np.flatnonzero(self.attrition_clock >= self.attrition_threshold)
        if leavers.size == 0:
            return
        if leavers.size >= self.headcount:  # the last engineer stays to keep the lights on
            leavers = leavers[1:]
        self._remove(leavers)
        self.counts[COUNTED["left"]] += leavers.size
        self.open_reqs += int(leavers.size)
        self._schedule_hires(day)

    def _plan_drill(self, day: int, drills: Drills) -> None:
        """Maybe schedule a drill at the first 11:00 local after the day ends, on weekdays."""
        draw = self.rng_incident.random()
        tomorrow = (day + 1) * HOURS_PER_DAY
        local = self.clock.hour_of_week(tomorrow, self.utc_offset_hours)
        start = tomorrow + (DRILL_HOUR - local) % HOURS_PER_DAY
        weekday = self.clock.hour_of_week(start, self.utc_offset_hours) < WORKWEEK_HOURS
        if not weekday or draw >= drills.drills_per_month / WORKDAYS_PER_MONTH:
            return
        service = self.services[int(self.rng_incident.integers(len(self.services)))]
        self.desk.open(
            team=self, service=service, severity=3, cause="chaos", started=start,
            error_rate=0.01 * self.canary_blast_radius,
        )  # fmt: skip
        self.expertise += drills.expertise_per_drill

    # ------------------------------------------------------------------ figures

    def gauges(self) -> tuple[float, ...]:
        """The team's state now, in :data:`GAUGES` order."""
        return (
            self.headcount, self.oncall_size, self._mean_fatigue, self.expertise,
            self.pending_changes,
        )  # fmt: skip

    def count_into(self, row: NDArray) -> None:
        """Count this hour's events into ``row`` (zeroed, laid out as :data:`COUNTED`)."""
        self.counts = row
