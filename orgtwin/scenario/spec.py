"""The scenario format: an organisation plus the interventions that change it.

A scenario file is YAML (safe-loaded) validated into the typed objects below. Every
object forbids unknown keys, every number carries its unit in its name, and every
bound is declared once on the field. Loading (``extends:``, error messages, reference
checks) lives in :mod:`orgtwin.loading`; this module only declares the shapes.

Time inside a scenario is measured from the scenario ``start``: ``at: 30`` is day 30,
``at: "36h"`` is hour 36. One tick of the simulation is one hour.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orgtwin.units import parse_hours


class Spec(BaseModel):
    """Base of every scenario object: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Selector = Literal["*"] | list[str]
"""Names of entities of one kind, or ``"*"`` for all of them."""


# --------------------------------------------------------------------------- users


class DemandProfileSpec(Spec):
    """Hour-of-week shape of sessions, in the segment's local time (mean 1 over a week)."""

    peak_hour: Annotated[int, Field(ge=0, le=23)] = 14
    """Local hour (0–23) at which sessions peak on a weekday."""
    night_level: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15
    """Session rate at the quietest hour, relative to the peak."""
    weekend_level: Annotated[float, Field(gt=0.0, le=2.0)] = 0.55
    """Weekend session rate relative to the same weekday hour."""


class ChurnSpec(Spec):
    """Daily churn hazard: a proportional-hazards form around a monthly base rate."""

    base_monthly: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.03
    """Monthly churn probability of a new user with no bad experience, at the reference price."""
    experience_coef: NonNegative = 4.0
    """Log-hazard per unit of experience (bad sessions per day, smoothed)."""
    price_elasticity: NonNegative = 1.0
    """Log-hazard per log of price over the reference price."""
    tenure_coef: float = -0.35
    """Log-hazard per log(1 + tenure in months); negative: loyal users churn less."""
    reference_price_usd_month: NonNegative | None = None
    """Price the churn and acquisition rates were measured at; the loader sets it to the
    segment's price in the file when left out, so later price moves act against it."""
    experience_half_life_days: Positive = 7.0
    """Half-life of the memory of bad sessions, days."""


class AcquisitionSpec(Spec):
    """Daily arrivals: base rate × price response + word of mouth, damped by bad experience."""

    base_per_day: NonNegative = 100.0
    """New users a day from marketing and search, at the reference price."""
    price_elasticity: float = -1.2
    """Elasticity of arrivals to price (negative: dearer brings fewer)."""
    word_of_mouth_per_user_day: NonNegative = 0.0002
    """New users a day brought in by each active user."""
    experience_penalty: NonNegative = 3.0
    """How strongly bad experience dampens word of mouth."""


class SegmentSpec(Spec):
    """A group of users sharing plan, price, time zone and behaviour."""

    plan: str = "free"
    """Plan name; a segment pays if its price is above zero."""
    n_users: Annotated[int, Field(ge=0, le=50_000_000)]
    """Users in the segment at the start."""
    price_usd_month: NonNegative = 0.0
    """Price per user per month, USD."""
    utc_offset_hours: Annotated[int, Field(ge=-12, le=14)] = 0
    """Time zone of the segment (drives its daily demand curve)."""
    sessions_per_user_day: Positive = 1.0
    """Mean sessions a day of a user of average intensity."""
    intensity_sigma: Annotated[float, Field(ge=0.0, le=3.0)] = 0.6
    """Log-normal spread of usage intensity between users (mean 1)."""
    features: dict[str, Positive]
    """Feature → relative share of this segment's sessions."""
    demand_profile: DemandProfileSpec = DemandProfileSpec()
    """Hour-of-week shape of the segment's sessions."""
    churn: ChurnSpec = ChurnSpec()
    """The segment's churn hazard."""
    acquisition: AcquisitionSpec = AcquisitionSpec()
    """How the segment gains new users."""
    tickets_per_bad_session: Probability = 0.02
    """Chance that a bad session becomes a support ticket."""
    slow_session_ms: Positive = 2000.0
    """A session slower than this (p95, ms) counts as a bad experience."""
    initial_tenure_months_mean: NonNegative = 12.0
    """Mean tenure of the users present at the start, months."""

    @field_validator("features")
    @classmethod
    def _some_features(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("must name at least one feature")
        return value


class FeatureSpec(Spec):
    """A product feature: sessions that use it send requests into one entry service."""

    entry: str
    """The service the feature's requests enter."""
    requests_per_session: Positive = 25.0
    """Requests a session of this feature sends to its entry service."""
    user_visible_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    """Share of the requests whose failure the user notices (the rest are retried or
    run in the background); a session is bad if any of those fails."""
    launched: bool = True
    """False: the feature exists but carries no traffic until a ``feature_launch``."""


# --------------------------------------------------------------------------- services


class LatencySpec(Spec):
    """Latency-vs-load curve: ``base_ms × (1 + queueing_factor × u / (1 − u))``, capped."""

    base_ms: Positive = 20.0
    """Latency of an idle service, ms (its own work, without dependencies)."""
    queueing_factor: NonNegative = 1.0
    """How sharply latency grows with utilisation (1 = M/M/1-like)."""
    timeout_ms: Positive = 5000.0
    """Latency cap: slower requests time out."""
    p95_over_p50: Annotated[float, Field(ge=1.0)] = 2.0
    """Ratio of the 95th-percentile latency to the median."""


class AutoscaleSpec(Spec):
    """Target-tracking autoscaling with a lag and bounds."""

    enabled: bool = True
    """Whether the service autoscales (otherwise replicas stay fixed)."""
    target_utilisation: Annotated[float, Field(gt=0.0, le=1.0)] = 0.6
    """Utilisation the autoscaler sizes replicas for."""
    min_replicas: Annotated[int, Field(ge=1)] = 2
    """Fewest replicas the autoscaler keeps."""
    max_replicas: Annotated[int, Field(ge=1)] = 50
    """Most replicas the autoscaler may run."""
    lag_hours: Annotated[int, Field(ge=0, le=48)] = 1
    """Hours between a change in demand and the capacity for it (0: within the hour)."""

    @model_validator(mode="after")
    def _bounds(self) -> AutoscaleSpec:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas must be >= min_replicas ({self.min_replicas}), "
                f"got {self.max_replicas}"
            )
        return self


class ServiceSpec(Spec):
    """A microservice: owner, capacity, latency curve, cost, dependencies."""

    team: str
    """The team that owns the service (deploys it and is paged for it)."""
    replicas: Annotated[int, Field(ge=1, le=100_000)]
    """Replicas at the start."""
    capacity_rps_per_replica: Positive
    """Requests per second one replica serves at full utilisation."""
    replica_cost_usd_hour: NonNegative = 0.1
    """On-demand price of one replica-hour, USD."""
    spot_share: Probability = 0.0
    """Share of replicas run on spot instances."""
    spot_discount: Probability = 0.65
    """Price discount of a spot replica-hour against on-demand."""
    spot_preemption_per_hour: Probability = 0.004
    """Chance a spot replica is reclaimed in an hour at regional peak (less off-peak)."""
    spot_recovery_hours: Annotated[int, Field(ge=1, le=48)] = 2
    """Hours to replace a reclaimed spot replica."""
    base_error_rate: Probability = 0.00002
    """Share of requests a healthy service fails anyway."""
    latency: LatencySpec = LatencySpec()
    """The service's latency-vs-load curve."""
    autoscale: AutoscaleSpec = AutoscaleSpec()
    """The service's autoscaling policy."""
    calls: dict[str, NonNegative] = {}
    """Callee service → calls per request received."""
    vendors: dict[str, NonNegative] = {}
    """Vendor → calls per request received."""


class VendorSpec(Spec):
    """A third party: latency, price, rate limit and an outage process."""

    kind: str = "saas"
    """What the vendor provides (payments, auth, email, cdn, cloud…), for reports."""
    latency_ms: Positive = 100.0
    """Latency each call adds, ms."""
    price_usd_per_1k_calls: NonNegative = 0.0
    """Price per thousand calls, USD."""
    rate_limit_rps: Positive | None = None
    """Calls per second above which the vendor rejects calls (none: unlimited)."""
    error_rate: Probability = 0.00005
    """Share of calls that fail while the vendor is up."""
    outage_rate_per_month: NonNegative = 0.5
    """Expected outages a month (a Poisson process)."""
    outage_hours_mean: Positive = 2.0
    """Mean length of an outage, hours."""
    sla_availability: Probability = 0.999
    """Availability the vendor promises, for reports."""


# --------------------------------------------------------------------------- teams


class DeployPolicySpec(Spec):
    """When a team ships: every hour, in fixed batches, or after an approval board meets."""

    kind: Literal["continuous", "batched", "approval_board"] = "continuous"
    """``continuous`` (every working hour), ``batched`` (every ``every_hours``) or
    ``approval_board`` (after the board meets, every ``every_hours``)."""
    every_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 24
    """Batch interval for ``batched``; meeting cadence for ``approval_board``."""
    working_hours_only: bool = True
    """Whether deploys happen only in the team's working hours."""


class ChangeFailureSpec(Spec):
    """Change failure probability: ``logit p = logit base + b·log(batch) + f·fatigue``."""

    base: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.03
    """Failure probability of a one-change deploy by a rested team."""
    batch_coef: NonNegative = 1.0
    """Log-odds of failure per log of batch size."""
    fatigue_coef: NonNegative = 0.8
    """Log-odds of failure per unit of the team's fatigue."""
    canary_blast_radius: Probability = 0.15
    """Share of traffic a failed canary deploy reaches before it is rolled back."""


class IncidentResponseSpec(Spec):
    """Time to detect and time to restore (log-normal), shaped by fatigue and expertise."""

    detect_median_hours: Positive = 0.25
    """Median time from an incident's start to its detection, hours."""
    detect_sigma: NonNegative = 0.6
    """Log-normal spread of the time to detect."""
    restore_median_hours: Positive = 1.5
    """Median time from detection to resolution, hours."""
    restore_sigma: NonNegative = 0.7
    """Log-normal spread of the time to restore."""
    fatigue_coef: NonNegative = 0.6
    """Log restore time per unit of the responder's fatigue."""
    expertise_coef: NonNegative = 0.3
    """Log restore time per unit of expertise above typical (negative effect)."""
    batch_coef: NonNegative = 0.4
    """Log restore time per log of the size of the batch that caused the incident."""
    escalate_every_hours: Annotated[int, Field(ge=1, le=168)] = 2
    """An unresolved incident pages again this often."""
    deploy_incident_error_rate: Probability = 0.08
    """Error rate a failed deploy adds to its service (before blast-radius limits)."""


class PeopleSpec(Spec):
    """Fatigue, attrition and hiring."""

    fatigue_per_offhours_page: NonNegative = 0.25
    """Fatigue each off-hours page adds to the paged engineer (1 ≈ exhausted)."""
    fatigue_recovery_per_day: Probability = 0.08
    """Share of fatigue an engineer sheds each day off the pager."""
    attrition_base_yearly: Probability = 0.12
    """Yearly attrition of a rested engineer."""
    attrition_fatigue_coef: NonNegative = 2.0
    """Log attrition hazard per unit of fatigue."""
    hiring_lag_days: Annotated[int, Field(ge=0, le=730)] = 60
    """Days from an open position to a new engineer starting."""
    expertise_per_incident: NonNegative = 0.03
    """Expertise the team gains from each incident it resolves."""
    expertise_decay_per_day: Probability = 0.002
    """Share of expertise lost each day without practice."""


class TeamSpec(Spec):
    """An engineering team: people, on-call rotation, deploy policy, reliability habits."""

    headcount: Annotated[int, Field(ge=1, le=10_000)]
    """Engineers at the start."""
    oncall_size: Annotated[int, Field(ge=1, le=10_000)]
    """Engineers sharing the on-call rotation (weekly shifts)."""
    utc_offset_hours: Annotated[int, Field(ge=-12, le=14)] = 0
    """Time zone of the team (working hours, off-hours pages)."""
    changes_per_engineer_day: NonNegative = 1.0
    """Changes an engineer finishes in a day of feature work."""
    toil_hours_per_ticket: NonNegative = 0.5
    """Engineer-hours one support ticket costs the team."""
    pipeline_hours: Annotated[int, Field(ge=0, le=24 * 14)] = 3
    """Hours from a finished change to deployable (review and CI)."""
    canary: bool = False
    """Whether deploys go out as canaries (smaller blast radius, faster detection)."""
    deploy_policy: DeployPolicySpec = DeployPolicySpec()
    """When the team may ship."""
    change_failure: ChangeFailureSpec = ChangeFailureSpec()
    """How likely a deploy fails."""
    incidents: IncidentResponseSpec = IncidentResponseSpec()
    """How incidents are detected and restored."""
    people: PeopleSpec = PeopleSpec()
    """Fatigue, attrition, hiring and expertise."""
    expertise: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    """Starting expertise (1 = typical)."""

    @model_validator(mode="after")
    def _rotation_fits(self) -> TeamSpec:
        if self.oncall_size > self.headcount:
            raise ValueError(
                f"oncall_size must be <= headcount ({self.headcount}), got {self.oncall_size}"
            )
        return self


# --------------------------------------------------------------------------- interventions


class InterventionSpec(Spec):
    """Common fields: when the change starts and (optionally) ends."""

    at: float | str = 0
    """Start: days from the scenario start, or a duration string like ``"36h"``."""
    until: float | str | None = None
    """End (exclusive); the change is reverted then. ``None``: lasts to the end."""
    label: str | None = None
    """A name for the change in reports and lever paths (interventions.<label>.<field>)."""

    @field_validator("at", "until")
    @classmethod
    def _time(cls, value: float | str | None) -> float | str | None:
        if value is None:
            return value
        if parse_hours(value) < 0:
            raise ValueError(f"must be at or after the scenario start (>= 0), got {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> InterventionSpec:
        if self.until is not None and parse_hours(self.until) <= parse_hours(self.at):
            raise ValueError(f"until must be after at ({self.at!r}), got {self.until!r}")
        return self

    @property
    def start_hour(self) -> int:
        """Start tick (hours from the scenario start)."""
        return parse_hours(self.at)

    @property
    def end_hour(self) -> int | None:
        """End tick (exclusive), or ``None``."""
        return None if self.until is None else parse_hours(self.until)


class PriceChange(InterventionSpec):
    """Set a new price (or scale the price) for some segments."""

    kind: Literal["price_change"]
    segments: Selector = "*"
    """Segments whose price changes (names, or "*" for all)."""
    price_usd_month: NonNegative | None = None
    """The new price, USD per month (or give factor)."""
    factor: Positive | None = None
    """Multiply the current price by this (or give price_usd_month)."""

    @model_validator(mode="after")
    def _one_of(self) -> PriceChange:
        if (self.price_usd_month is None) == (self.factor is None):
            raise ValueError("needs exactly one of price_usd_month or factor")
        return self


class FeatureLaunch(InterventionSpec):
    """Launch a feature: it starts carrying traffic, shipped as one large deploy.

    ``dark: true`` runs the feature behind a flag: its traffic loads the services but its
    errors stay invisible to users, and the launch deploy goes out as a canary. At
    ``until`` a dark launch is revealed to users.
    """

    kind: Literal["feature_launch"]
    feature: str
    """The feature to launch (declared in features, usually with launched: false)."""
    session_share: Annotated[float, Field(gt=0.0, le=5.0)] = 0.2
    """Sessions using the feature, relative to a segment's existing sessions."""
    launch_changes: Annotated[int, Field(ge=1, le=10_000)] = 25
    """Size of the launch deploy, in changes."""
    dark: bool = False
    """Launch behind a flag: load without user-visible errors until until."""


class ApprovalBoard(InterventionSpec):
    """A change-approval board: changes wait for the board, which meets on a cadence."""

    kind: Literal["approval_board"]
    teams: Selector = "*"
    """Teams whose changes need the board (names, or "*")."""
    meeting_every_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 168
    """Hours between board meetings (168: weekly)."""


class DeployFreeze(InterventionSpec):
    """No deploys while it lasts; changes queue up."""

    kind: Literal["deploy_freeze"]
    teams: Selector = "*"
    """Teams that may not deploy (names, or "*")."""


class OncallRotation(InterventionSpec):
    """Change the number of engineers sharing the on-call rotation."""

    kind: Literal["oncall_rotation"]
    teams: Selector = "*"
    """Teams whose rotation changes (names, or "*")."""
    oncall_size: Annotated[int, Field(ge=1, le=10_000)]
    """Engineers in the new rotation."""


class Staffing(InterventionSpec):
    """Hire or lay off engineers, or freeze hiring (leavers are not replaced)."""

    kind: Literal["staffing"]
    teams: Selector = "*"
    """Teams affected (names, or "*")."""
    headcount_change: Annotated[int, Field(ge=-10_000, le=10_000)] = 0
    """Engineers hired (positive, after the hiring lag) or laid off (negative, at once)."""
    hiring_freeze: bool = False
    """Leavers are not replaced until until."""


class AutoscalingPolicy(InterventionSpec):
    """Change autoscaling for some services (fields left out keep their value)."""

    kind: Literal["autoscaling_policy"]
    services: Selector = "*"
    """Services whose autoscaling changes (names, or "*")."""
    enabled: bool | None = None
    """Turn autoscaling on or off."""
    target_utilisation: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    """New target utilisation."""
    min_replicas: Annotated[int, Field(ge=1)] | None = None
    """New replica floor."""
    max_replicas: Annotated[int, Field(ge=1)] | None = None
    """New replica ceiling."""
    lag_hours: Annotated[int, Field(ge=0, le=48)] | None = None
    """New scaling lag, hours."""


class SpotShare(InterventionSpec):
    """Run a share of replicas on spot instances (cheaper, preemptible)."""

    kind: Literal["spot_share"]
    services: Selector = "*"
    """Services affected (names, or "*")."""
    spot_share: Probability
    """Share of replicas on spot instances."""


class VendorSwap(InterventionSpec):
    """Route every call to one vendor to another vendor declared in ``vendors``."""

    kind: Literal["vendor_swap"]
    vendor: str
    """The vendor being replaced."""
    to: str
    """The replacement, declared in vendors."""


class VendorOutage(InterventionSpec):
    """A vendor is down from ``at`` to ``until`` (both required)."""

    kind: Literal["vendor_outage"]
    vendor: str
    """The vendor that is down."""

    @model_validator(mode="after")
    def _bounded(self) -> VendorOutage:
        if self.until is None:
            raise ValueError("vendor_outage needs an end: set until")
        return self


class ChaosProgram(InterventionSpec):
    """Planned failure drills in working hours: they build expertise at a small risk."""

    kind: Literal["chaos_program"]
    teams: Selector = "*"
    """Teams running drills (names, or "*")."""
    drills_per_month: Annotated[float, Field(gt=0.0, le=60.0)] = 2.0
    """Drills a month per team, on weekdays at 11:00 local."""
    drill_hours: Annotated[float, Field(gt=0.0, le=24.0)] = 2.0
    """Length of a drill, hours."""
    expertise_per_drill: NonNegative = 0.05
    """Expertise a drill adds to the team."""


class ErrorBudgetPolicy(InterventionSpec):
    """Freeze a team's deploys while its services have burnt their error budget."""

    kind: Literal["error_budget_policy"]
    teams: Selector = "*"
    """Teams under the policy (names, or "*")."""
    window_days: Annotated[int, Field(ge=1, le=90)] = 28
    """Window over which the error budget is counted, days."""
    freeze_above_budget_used: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    """Freeze deploys while the share of the budget used exceeds this (1 = all of it)."""


class TrafficSurge(InterventionSpec):
    """Multiply the sessions of some features (a campaign, a season, a news spike)."""

    kind: Literal["traffic_surge"]
    features: Selector = "*"
    """Features whose sessions surge (names, or "*")."""
    multiplier: Annotated[float, Field(gt=0.0, le=100.0)] = 2.0
    """Factor on those features' sessions."""


Intervention = Annotated[
    PriceChange
    | FeatureLaunch
    | ApprovalBoard
    | DeployFreeze
    | OncallRotation
    | Staffing
    | AutoscalingPolicy
    | SpotShare
    | VendorSwap
    | VendorOutage
    | ChaosProgram
    | ErrorBudgetPolicy
    | TrafficSurge,
    Field(discriminator="kind"),
]
INTERVENTION_KINDS: tuple[str, ...] = (
    "price_change",
    "feature_launch",
    "approval_board",
    "deploy_freeze",
    "oncall_rotation",
    "staffing",
    "autoscaling_policy",
    "spot_share",
    "vendor_swap",
    "vendor_outage",
    "chaos_program",
    "error_budget_policy",
    "traffic_surge",
)


# --------------------------------------------------------------------------- scenario


class SloSpec(Spec):
    """Service-level objectives the organisation holds itself to."""

    availability_target: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.999
    """Share of requests that must succeed (0.999 = three nines)."""
    latency_p95_ms: Positive = 1000.0
    """p95 latency objective of the features, ms."""


class TelemetrySpec(Spec):
    """What the run records beyond KPIs."""

    user_sample_per_segment: Annotated[int, Field(ge=0, le=100_000)] = 200
    """Users per segment whose daily activity goes into the ``user_days`` table."""


class Scenario(Spec):
    """A whole organisation plus the interventions applied to it.

    Example:
        >>> from orgtwin import load_scenario
        >>> sc = load_scenario("scenarios/baseline.yaml")
        >>> sorted(sc.teams)[:2]
        ['core', 'data']
    """

    name: str
    """Short name of the scenario, used in reports and run ids."""
    description: str = ""
    """What the scenario holds, in plain words."""
    start: datetime = datetime(2026, 1, 5)
    """Wall time of the first hour (UTC); the hour-of-week profiles follow it."""
    days: Annotated[int, Field(ge=1, le=3650)] = 90
    """Days a run lasts (override with --days)."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Base seed the runs' seeds derive from (override with --seed)."""
    seeds: Annotated[int, Field(ge=1, le=1000)] = 8
    """Seeds a run uses by default (override with --seeds)."""
    slo: SloSpec = SloSpec()
    """Service-level objectives."""
    telemetry: TelemetrySpec = TelemetrySpec()
    """What a run records beyond KPIs."""
    segments: dict[str, SegmentSpec]
    """User segments by name."""
    features: dict[str, FeatureSpec]
    """Product features by name."""
    services: dict[str, ServiceSpec]
    """Services by name (their calls must form a DAG)."""
    vendors: dict[str, VendorSpec] = {}
    """Third-party vendors by name."""
    teams: dict[str, TeamSpec]
    """Engineering teams by name."""
    interventions: list[Intervention] = []
    """Changes applied during the run, each with at and an optional until."""
    base: str | None = Field(default=None, exclude=True)
    """Path of the scenario this one extends (set by the loader from ``extends:``)."""
    source: str = Field(default="<scenario>", exclude=True)
    """Where the scenario was loaded from, for messages."""

    @field_validator("segments", "features", "services", "teams")
    @classmethod
    def _not_empty(cls, value: dict) -> dict:
        if not value:
            raise ValueError("must declare at least one entry")
        return value
