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
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from orgtwin.units import HOURS_PER_WEEK

if TYPE_CHECKING:
    from numpy.typing import NDArray

WORK_START, WORK_END = 9, 18
SEVERITY_ERROR_SHARE = {1: 1.0, 2: 0.25, 3: 0.04}
RESPONDERS_PER_INCIDENT = 2.0
PAGING_SEVERITY = 2  # incidents of this severity or worse page the on-call engineer


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


class Team(mesa.Agent):
    """An engineering team.

    Args:
        model: the owning model.
        name: team name.
        services: indices (in the service mesh) of the services the team owns.
        headcount: engineers at the start.
        oncall_size: engineers sharing the on-call rotation.
        utc_offset_hours: the team's time zone.
        changes_per_engineer_day: changes an engineer finishes in a day of feature work.
        toil_hours_per_ticket: engineer-hours one support ticket costs.
        pipeline_hours: hours from a finished change to deployable (review, CI).
        canary: whether deploys go out as canaries.
        canary_blast_radius: share of traffic a failing canary reaches.
        policy: the deploy policy.
        change_failure: behaviour with ``predict_proba(batch_size, fatigue)``.
        timing: behaviour with ``sample_detect`` and ``sample_restore`` (hours).
        incident_error_rate: error rate a severity-1 failed deploy adds to its service.
        escalate_every_hours: an open incident pages again this often.
        people: fatigue, attrition and hiring parameters (a mapping).
        expertise: starting expertise (1 = typical).
        rng: this team's random generator (split into one stream per purpose).
    """

    def __init__(
        self,
        model: mesa.Model,
        *,
        name: str,
        services: list[int],
        headcount: int,
        oncall_size: int,
        utc_offset_hours: int,
        changes_per_engineer_day: float,
        toil_hours_per_ticket: float,
        pipeline_hours: int,
        canary: bool,
        canary_blast_radius: float,
        policy: DeployPolicy,
        change_failure: Any,
        timing: Any,
        incident_error_rate: float,
        escalate_every_hours: int,
        people: dict[str, float],
        expertise: float,
        rng: np.random.Generator,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.services = list(services)
        self.utc_offset_hours = utc_offset_hours
        self.changes_per_engineer_day = changes_per_engineer_day
        self.toil_hours_per_ticket = toil_hours_per_ticket
        self.pipeline_hours = pipeline_hours
        self.canary = canary
        self.canary_blast_radius = canary_blast_radius
        self.policy = policy
        self.change_failure = change_failure
        self.timing = timing
        self.incident_error_rate = incident_error_rate
        self.escalate_every_hours = escalate_every_hours
        self.people = dict(people)
        self.expertise = expertise
        self.oncall_target = oncall_size
        streams = rng.spawn(4)
        self.rng_work, self.rng_deploy, self.rng_incident, self.rng_people = streams
        self.fatigue = np.zeros(0)
        self._mean_fatigue = 0.0
        self.attrition_clock = np.zeros(0)
        self.attrition_threshold = np.zeros(0)
        self._hire(headcount)
        self.hires_due: deque[int] = deque()  # days on which a hire starts
        self.open_reqs = 0
        self.hiring_frozen = False
        self.freezes = 0
        self.budget_frozen = False
        self.budget_gate: tuple[int, float] | None = None  # (window days, budget limit)
        self.pending: dict[int, deque[list[int]]] = {s: deque() for s in self.services}
        self.pending_changes = 0  # changes waiting in all queues
        self._service_share = np.full(len(self.services), 1 / max(len(self.services), 1))
        self.work_done = 0.0
        self.toil_backlog_hours = 0.0
        self.open_incidents: list[Incident] = []
        self.chaos: dict[str, float] | None = None
        self.counts = np.zeros(len(TEAM_COUNTS))

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
        lag = int(self.people["hiring_lag_days"])
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

    # ------------------------------------------------------------------ the hour

    def local_time(self, tick: int) -> tuple[int, bool]:
        """Local hour of day and whether it is a working hour, at ``tick``."""
        hour_of_week = (tick + self.model.hour_of_week_offset + self.utc_offset_hours) % 168
        hour = hour_of_week % 24
        return hour, hour_of_week < 120 and WORK_START <= hour < WORK_END

    def step(self) -> None:
        """One hour: incidents move on, engineers work, the deploy policy may ship."""
        tick = self.model.tick
        _, working = self.local_time(tick)
        if self.open_incidents:
            self._progress_incidents(tick)
        if working:
            self._work(tick)
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
        self.counts[TOIL], self.counts[FEATURE] = toil, feature_hours
        rate = self.changes_per_engineer_day / (WORK_END - WORK_START)
        self.work_done += feature_hours * rate / (1.0 + self.mean_fatigue)
        n = int(self.work_done)
        if n == 0:
            return
        self.work_done -= n
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
        if not chunks:
            return
        batch = sum(c for _, c in chunks)
        lead = sum((tick - t) * c for t, c in chunks) / batch
        p_fail = float(self.change_failure.predict_proba(batch, self.mean_fatigue))
        u_fail, u_severity, u_latent = self.rng_deploy.random(3)
        failed = bool(u_fail < p_fail)
        self.counts[DEPLOYS] += 1
        self.model.events.deploy(tick, service, self.name, batch, failed, lead)
        if not failed:
            self.counts[SHIPPED] += batch
            return
        self.counts[FAILED] += 1
        severity = self._severity(batch, u_severity)
        blast = self.canary_blast_radius if (self.canary if canary is None else canary) else 1.0
        latent = int(-np.log1p(-u_latent) * 3.0)  # hours until the defect bites (mean ≈ 2.5)
        incident = self.model.open_incident(
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
                self.model.apply_incidents(incident.service)
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
                hours = self.chaos["drill_hours"] if self.chaos else 1.0
            incident.resolved = tick + max(1, int(np.ceil(hours)))
        if incident.severity <= PAGING_SEVERITY:
            self._page(incident, tick)

    def _page(self, incident: Incident, tick: int) -> None:
        _, working = self.local_time(tick)
        engineer = self.on_call(tick)
        if not working and engineer >= 0:
            self.fatigue[engineer] += self.people["fatigue_per_offhours_page"]
            self._fatigue_changed()
            self.counts[OFF_HOURS_PAGES] += 1
        self.counts[PAGES] += 1
        self.model.events.page(tick, self.name, not working, incident.incident_id)
        incident.next_page = tick + self.escalate_every_hours

    def _is_resolved(self, incident: Incident, tick: int) -> bool:
        if incident.resolve_when == "vendor_up":
            return bool(self.model.vendor_up_now[incident.vendor])
        if incident.resolve_when == "load_ok":
            return bool(self.model.mesh.overload_error[incident.service] < 0.01)
        return incident.resolved is not None and tick >= incident.resolved

    def _resolve(self, incident: Incident, tick: int) -> None:
        incident.resolved = tick
        self.open_incidents.remove(incident)
        self.model.close_incident(incident)
        if incident.rollback:  # the failed changes go back to the queue, as they were
            self.pending[incident.service].extendleft(reversed(incident.rollback))
            self.pending_changes += sum(c for _, c in incident.rollback)
        if incident.cause != "chaos":
            self.expertise += self.people["expertise_per_incident"]

    # ------------------------------------------------------------------ the day

    def end_day(self, day: int, budget_used: float | None = None) -> None:
        """Recovery, attrition, hiring, expertise decay, error-budget gate, chaos drills.

        Args:
            day: the day that ends (0 = the first).
            budget_used: share of the error budget the team's services used over the
                window of its error-budget policy (None without a policy).
        """
        recovery = np.full(self.headcount, 1.0 - self.people["fatigue_recovery_per_day"])
        on_call = self.on_call(day * 24)
        if on_call >= 0:
            recovery[on_call] = 1.0  # carrying the pager is no rest
        self.fatigue *= recovery
        self._fatigue_changed()
        self.expertise *= 1.0 - self.people["expertise_decay_per_day"]
        self._attrition(day)
        while self.hires_due and self.hires_due[0] <= day:
            self.hires_due.popleft()
            self._hire(1)
            self.counts[HIRED] += 1
        gate = self.budget_gate
        self.budget_frozen = gate is not None and budget_used is not None and budget_used > gate[1]
        if self.chaos is not None:
            self._plan_drill(day)

    def _attrition(self, day: int) -> None:
        base = self.people["attrition_base_yearly"] / 365.0
        self.attrition_clock += base * np.exp(self.people["attrition_fatigue_coef"] * self.fatigue)
        leavers = np.flatnonzero(self.attrition_clock >= self.attrition_threshold)
        if leavers.size == 0:
            return
        if leavers.size >= self.headcount:  # the last engineer stays to keep the lights on
            leavers = leavers[1:]
        self._remove(leavers)
        self.counts[LEFT] += leavers.size
        self.open_reqs += int(leavers.size)
        self._schedule_hires(day)

    def _plan_drill(self, day: int) -> None:
        """Maybe schedule a drill tomorrow at 11:00 local on a weekday."""
        chaos = self.chaos
        assert chaos is not None
        draw = self.rng_incident.random()
        tomorrow = (day + 1) * 24
        hour_of_week = (tomorrow + self.model.hour_of_week_offset + self.utc_offset_hours) % 168
        if hour_of_week >= 120 or draw >= chaos["drills_per_month"] / 21.7:
            return
        start = tomorrow + 11 - self.utc_offset_hours
        service = self.services[int(self.rng_incident.integers(len(self.services)))]
        self.model.open_incident(
            team=self, service=service, severity=3, cause="chaos", started=start,
            error_rate=0.01 * self.canary_blast_radius,
        )  # fmt: skip
        self.expertise += chaos["expertise_per_drill"]

    @staticmethod
    def series_metrics() -> tuple[str, ...]:
        """Names of the team's figures in the time series: its gauges, then its counts."""
        return TEAM_GAUGES + TEAM_COUNTS

    def gauges(self) -> tuple[float, ...]:
        """The team's state now, in :data:`TEAM_GAUGES` order."""
        return (
            self.headcount, self.oncall_size, self._mean_fatigue, self.expertise,
            self.pending_changes,
        )  # fmt: skip

    def count_into(self, row: NDArray) -> None:
        """Count this hour's events into ``row`` (:data:`TEAM_COUNTS` order, zeroed)."""
        self.counts = row


TEAM_GAUGES = ("headcount", "oncall_size", "fatigue", "expertise", "pending_changes")
TEAM_COUNTS = (
    "changes_shipped", "deploys", "failed_deploys", "pages", "off_hours_pages",
    "left", "hired", "toil_hours", "feature_hours",
)  # fmt: skip
SHIPPED, DEPLOYS, FAILED, PAGES, OFF_HOURS_PAGES, LEFT, HIRED, TOIL, FEATURE = range(9)
