"""The organisation a scenario describes: users, features, services, vendors and teams.

Every key carries its unit in its name and declares its bounds and default once, on the
field; the docstring under the field is its meaning. Behaviours take their parameters
and defaults from these specs (see :mod:`orgtwin.behaviours`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from orgtwin.scenario.fields import (
    CallsPerRequest,
    Flag,
    Milliseconds,
    Name,
    Number,
    Price,
    Probability,
    Spec,
    Whole,
)

# --------------------------------------------------------------------------- users


class DemandProfileSpec(Spec):
    """Hour-of-week shape of sessions, in the segment's local time (mean 1 over a week)."""

    peak_hour: Annotated[Whole, Field(ge=0, le=23)] = 14
    """Local hour (0–23) at which sessions peak on a weekday."""
    night_level: Annotated[Number, Field(gt=0.0, le=1.0)] = 0.15
    """Session rate at the quietest hour, relative to the peak (a ratio)."""
    weekend_level: Annotated[Number, Field(gt=0.0, le=2.0)] = 0.55
    """Weekend session rate relative to the same weekday hour (a ratio)."""
    profile: (
        Annotated[
            list[Annotated[Number, Field(gt=0.0, le=1000.0)]],
            Field(min_length=168, max_length=168),
        ]
        | None
    ) = None
    """A free shape instead of the parametric one (a learned profile): 168 relative
    rates, hour of the week from Monday 00:00 local time, rescaled to mean 1 when loaded;
    when set, ``peak_hour``, ``night_level`` and ``weekend_level`` are not used."""
    burst_cv: Annotated[Number, Field(ge=0.0, le=10.0)] = 0.0
    """How bursty sessions arrive: the coefficient of variation of each hour's rate around
    the profile (a gamma factor drawn per hour), so an hour's count has variance
    ``mean + burst_cv² · mean²``; 0: Poisson arrivals around the profile."""

    @field_validator("profile")
    @classmethod
    def _mean_one(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        mean = sum(value) / len(value)
        return [v / mean for v in value]


class ChurnSpec(Spec):
    """Daily churn hazard: a proportional-hazards form around a monthly base rate."""

    base_monthly: Annotated[Number, Field(ge=0.0, lt=1.0)] = 0.03
    """Monthly churn probability of a new user with no bad experience, at the reference
    price."""
    experience_coef: Annotated[Number, Field(ge=0.0, le=20.0)] = 4.0
    """Log-hazard per unit of experience (bad sessions per day, smoothed)."""
    price_elasticity: Annotated[Number, Field(ge=0.0, le=10.0)] = 1.0
    """Log-hazard per log of price over the reference price."""
    tenure_coef: Annotated[Number, Field(ge=-10.0, le=2.0)] = -0.35
    """Log-hazard per log(1 + tenure in months); negative: loyal users churn less."""
    reference_price_usd_month: Price | None = None
    """Price the churn and acquisition rates were measured at, USD per user per month
    (0, or at least 0.01); the loader sets it to the segment's price in the file
    when left out, so later price moves act against it."""
    experience_half_life_days: Annotated[Number, Field(ge=0.01, le=3650.0)] = 7.0
    """Half-life of the memory of bad sessions, days."""


class AcquisitionSpec(Spec):
    """Daily arrivals: base rate × price response + word of mouth, damped by bad experience."""

    base_per_day: Annotated[Number, Field(ge=0.0, le=1_000_000.0)] = 100.0
    """New users a day from marketing and search, at the reference price (users/day)."""
    price_elasticity: Annotated[Number, Field(ge=-10.0, le=10.0)] = -1.2
    """Elasticity of arrivals to price (negative: dearer brings fewer)."""
    word_of_mouth_per_user_day: Annotated[Number, Field(ge=0.0, le=0.1)] = 0.0002
    """New users a day brought in by each active user (users/user/day)."""
    experience_penalty: Annotated[Number, Field(ge=0.0, le=100.0)] = 3.0
    """How strongly bad experience dampens word of mouth (per bad session a day)."""


class SegmentSpec(Spec):
    """A group of users sharing plan, price, time zone and behaviour."""

    plan: Name = "free"
    """Plan name; a segment pays if its price is above zero."""
    n_users: Annotated[Whole, Field(ge=0, le=50_000_000)]
    """Users in the segment at the start."""
    price_usd_month: Price = 0.0
    """Price per user per month, USD: 0 (free), or at least 0.01."""
    utc_offset_hours: Annotated[Whole, Field(ge=-12, le=14)] = 0
    """Time zone of the segment, hours from UTC (drives its daily demand curve)."""
    sessions_per_user_day: Annotated[Number, Field(gt=0.0, le=1000.0)] = 1.0
    """Mean sessions a day of a user of average intensity (sessions/day)."""
    intensity_sigma: Annotated[Number, Field(ge=0.0, le=3.0)] = 0.6
    """Log-normal spread of usage intensity between users (mean 1)."""
    features: dict[Name, Annotated[Number, Field(gt=0.0, le=1_000_000.0)]]
    """Feature → relative share of this segment's sessions (a weight)."""
    demand_profile: DemandProfileSpec = DemandProfileSpec()
    """Hour-of-week shape of the segment's sessions."""
    churn: ChurnSpec = ChurnSpec()
    """The segment's churn hazard."""
    acquisition: AcquisitionSpec = AcquisitionSpec()
    """How the segment gains new users."""
    tickets_per_bad_session: Probability = 0.02
    """Chance that a bad session becomes a support ticket."""
    slow_session_ms: Milliseconds = 2000.0
    """A session slower than this (p95, ms) counts as a bad experience."""
    initial_tenure_months_mean: Annotated[Number, Field(ge=0.0, le=1200.0)] = 12.0
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
    requests_per_session: Annotated[Number, Field(gt=0.0, le=100_000.0)] = 25.0
    """Requests a session of this feature sends to its entry service."""
    user_visible_share: Annotated[Number, Field(gt=0.0, le=1.0)] = 0.2
    """Share of the requests whose failure the user notices (the rest are retried or
    run in the background); a session is bad if any of those fails."""
    launched: Flag = True
    """False: the feature exists but carries no traffic until a ``feature_launch``."""


# --------------------------------------------------------------------------- services


class LatencySpec(Spec):
    """Latency-vs-load curve: ``base_ms × (1 + queueing_factor × u / (1 − u))``, capped."""

    base_ms: Milliseconds = 20.0
    """Latency of an idle service, ms (its own work, without dependencies)."""
    queueing_factor: Annotated[Number, Field(ge=0.0, le=1000.0)] = 1.0
    """How sharply latency grows with utilisation (1 = M/M/1-like)."""
    timeout_ms: Milliseconds = 5000.0
    """Latency cap, ms: slower requests time out."""
    p95_over_p50: Annotated[Number, Field(ge=1.0, le=100.0)] = 2.0
    """Ratio of the 95th-percentile latency to the median."""


class AutoscaleSpec(Spec):
    """Target-tracking autoscaling with a lag and bounds."""

    enabled: Flag = True
    """Whether the service autoscales (otherwise replicas stay fixed)."""
    target_utilisation: Annotated[Number, Field(ge=0.01, le=1.0)] = 0.6
    """Utilisation the autoscaler sizes replicas for."""
    min_replicas: Annotated[Whole, Field(ge=1, le=100_000)] = 2
    """Fewest replicas the autoscaler keeps."""
    max_replicas: Annotated[Whole, Field(ge=1, le=100_000)] = 50
    """Most replicas the autoscaler may run."""
    lag_hours: Annotated[Whole, Field(ge=0, le=48)] = 1
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
    replicas: Annotated[Whole, Field(ge=1, le=100_000)]
    """Replicas at the start."""
    capacity_rps_per_replica: Annotated[Number, Field(ge=0.001, le=1_000_000.0)]
    """Requests per second one replica serves at full utilisation (rps)."""
    replica_cost_usd_hour: Annotated[Number, Field(ge=0.0, le=10_000.0)] = 0.1
    """On-demand price of one replica-hour, USD."""
    spot_share: Probability = 0.0
    """Share of replicas run on spot instances."""
    spot_discount: Probability = 0.65
    """Price discount of a spot replica-hour against on-demand."""
    spot_preemption_per_hour: Probability = 0.004
    """Chance a spot replica is reclaimed in an hour at regional peak (less off-peak)."""
    spot_recovery_hours: Annotated[Whole, Field(ge=1, le=48)] = 2
    """Hours to replace a reclaimed spot replica."""
    base_error_rate: Probability = 0.00002
    """Share of requests a healthy service fails anyway."""
    latency: LatencySpec = LatencySpec()
    """The service's latency-vs-load curve."""
    autoscale: AutoscaleSpec = AutoscaleSpec()
    """The service's autoscaling policy."""
    calls: dict[Name, CallsPerRequest] = {}
    """Callee service → calls per request received."""
    vendors: dict[Name, CallsPerRequest] = {}
    """Vendor → calls per request received."""


class VendorSpec(Spec):
    """A third party: latency, price, rate limit and an outage process."""

    kind: Name = "saas"
    """What the vendor provides (payments, auth, email, cdn, cloud…), for reports."""
    latency_ms: Milliseconds = 100.0
    """Latency each call adds, ms."""
    price_usd_per_1k_calls: Annotated[Number, Field(ge=0.0, le=10_000.0)] = 0.0
    """Price per thousand calls, USD."""
    rate_limit_rps: Annotated[Number, Field(gt=0.0, le=1_000_000_000.0)] | None = None
    """Calls per second above which the vendor rejects calls (none: unlimited)."""
    error_rate: Probability = 0.00005
    """Share of calls that fail while the vendor is up."""
    outage_rate_per_month: Annotated[Number, Field(ge=0.0, le=100.0)] = 0.5
    """Expected outages a month (a Poisson process)."""
    outage_hours_mean: Annotated[Number, Field(gt=0.0, le=8760.0)] = 2.0
    """Mean length of an outage, hours."""
    sla_availability: Probability = 0.999
    """Availability the vendor promises, for reports."""


# --------------------------------------------------------------------------- teams


class DeployPolicySpec(Spec):
    """When a team ships: every hour, in fixed batches, or after an approval board meets."""

    kind: Literal["continuous", "batched", "approval_board"] = "continuous"
    """``continuous`` (every working hour), ``batched`` (in batches, one per deploy interval
    ``every_hours``) or ``approval_board`` (after the board meets, once per interval)."""
    every_hours: Annotated[Whole, Field(ge=1, le=24 * 90)] = 24
    """Batch interval for ``batched``; meeting cadence for ``approval_board``."""
    working_hours_only: Flag = True
    """Whether deploys happen only in the team's working hours."""


class ChangeFailureSpec(Spec):
    """Change failure probability: ``logit p = logit base + b·log(batch) + f·fatigue``."""

    base: Annotated[Number, Field(ge=0.000001, lt=1.0)] = 0.03
    """Failure probability of a one-change deploy by a rested team."""
    batch_coef: Annotated[Number, Field(ge=0.0, le=10.0)] = 1.0
    """Log-odds of failure per log of batch size."""
    fatigue_coef: Annotated[Number, Field(ge=0.0, le=100.0)] = 0.8
    """Log-odds of failure per unit of the team's fatigue."""
    canary_blast_radius: Probability = 0.15
    """Share of traffic a failed canary deploy reaches before it is rolled back."""


class IncidentResponseSpec(Spec):
    """Time to detect and time to restore (log-normal), shaped by fatigue and expertise."""

    detect_median_hours: Annotated[Number, Field(gt=0.0, le=168.0)] = 0.25
    """Median time from an incident's start to its detection, hours."""
    detect_sigma: Annotated[Number, Field(ge=0.0, le=3.0)] = 0.6
    """Log-normal spread of the time to detect."""
    restore_median_hours: Annotated[Number, Field(gt=0.0, le=720.0)] = 1.5
    """Median time from detection to resolution, hours."""
    restore_sigma: Annotated[Number, Field(ge=0.0, le=3.0)] = 0.7
    """Log-normal spread of the time to restore."""
    fatigue_coef: Annotated[Number, Field(ge=0.0, le=5.0)] = 0.6
    """Log restore time per unit of the responder's fatigue."""
    expertise_coef: Annotated[Number, Field(ge=0.0, le=5.0)] = 0.3
    """Log restore time per unit of expertise above typical (negative effect)."""
    batch_coef: Annotated[Number, Field(ge=0.0, le=5.0)] = 0.4
    """Log restore time per log of the size of the batch that caused the incident."""
    escalate_every_hours: Annotated[Whole, Field(ge=1, le=168)] = 2
    """An unresolved incident pages again this often, hours."""
    deploy_incident_error_rate: Probability = 0.08
    """Error rate a failed deploy adds to its service (before blast-radius limits)."""


class PeopleSpec(Spec):
    """Fatigue, attrition and hiring."""

    fatigue_per_offhours_page: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.25
    """Fatigue each off-hours page adds to the paged engineer (1 ≈ exhausted)."""
    fatigue_recovery_per_day: Probability = 0.08
    """Share of fatigue an engineer sheds each day off the pager."""
    attrition_base_yearly: Probability = 0.12
    """Yearly attrition rate (hazard) of a rested engineer: 0.12 means about 11% leave in a
    year (1 − e^−0.12)."""
    attrition_fatigue_coef: Annotated[Number, Field(ge=0.0, le=100.0)] = 2.0
    """Log attrition hazard per unit of fatigue."""
    hiring_lag_days: Annotated[Whole, Field(ge=0, le=730)] = 60
    """Days from an open position to a new engineer starting."""
    expertise_per_incident: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.03
    """Expertise the team gains from each incident it resolves (1 = typical)."""
    expertise_decay_per_day: Probability = 0.002
    """Share of expertise lost each day without practice."""


class TeamSpec(Spec):
    """An engineering team: people, on-call rotation, deploy policy, reliability habits."""

    headcount: Annotated[Whole, Field(ge=1, le=10_000)]
    """Engineers at the start."""
    oncall_size: Annotated[Whole, Field(ge=1, le=10_000)]
    """Engineers sharing the on-call rotation (weekly shifts)."""
    utc_offset_hours: Annotated[Whole, Field(ge=-12, le=14)] = 0
    """Time zone of the team, hours from UTC (working hours, off-hours pages)."""
    changes_per_engineer_day: Annotated[Number, Field(ge=0.0, le=100.0)] = 1.0
    """Changes an engineer finishes in a day of feature work (changes/day)."""
    toil_hours_per_ticket: Annotated[Number, Field(ge=0.0, le=100.0)] = 0.5
    """Engineer-hours one support ticket costs the team."""
    pipeline_hours: Annotated[Whole, Field(ge=0, le=24 * 14)] = 3
    """Hours from a finished change to deployable (review and CI)."""
    canary: Flag = False
    """Whether deploys go out as canaries (smaller blast radius, faster detection)."""
    deploy_policy: DeployPolicySpec = DeployPolicySpec()
    """When the team may ship."""
    change_failure: ChangeFailureSpec = ChangeFailureSpec()
    """How likely a deploy fails."""
    incidents: IncidentResponseSpec = IncidentResponseSpec()
    """How incidents are detected and restored."""
    people: PeopleSpec = PeopleSpec()
    """Fatigue, attrition, hiring and expertise."""
    expertise: Annotated[Number, Field(ge=0.0, le=10.0)] = 1.0
    """Starting expertise (1 = typical)."""

    @model_validator(mode="after")
    def _rotation_fits(self) -> TeamSpec:
        if self.oncall_size > self.headcount:
            raise ValueError(
                f"oncall_size must be <= headcount ({self.headcount}), got {self.oncall_size}"
            )
        return self
