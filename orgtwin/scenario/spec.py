"""The scenario: an organisation plus the interventions that change it, and run settings.

A scenario file is YAML (safe-loaded) validated into :class:`Scenario`. Every object
forbids unknown keys, every number carries its unit in its name, and every bound is
declared once on the field. The organisation's specs live in
:mod:`orgtwin.scenario.organisation`, the interventions in
:mod:`orgtwin.scenario.interventions`; loading (``extends:``) in
:mod:`orgtwin.scenario.load` and the checks that word problems in
:mod:`orgtwin.scenario.checks`.

Time inside a scenario is measured from the scenario ``start``: ``at: 30`` is day 30,
``at: "36h"`` is hour 36. One tick of the simulation is one hour.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from orgtwin.scenario.fields import Milliseconds, Name, Number, Spec, Start, Whole
from orgtwin.scenario.interventions import Intervention
from orgtwin.scenario.organisation import (
    FeatureSpec,
    SegmentSpec,
    ServiceSpec,
    TeamSpec,
    VendorSpec,
)

MAX_DAYS = 3650
"""Longest run, days (ten years)."""
MAX_ENTITIES = 1000
"""Most entries of each kind: segments, features, services, vendors, teams, interventions."""
MAX_DECIDING = 10
"""Most KPIs a scenario's ``decides`` may name."""


class SloSpec(Spec):
    """Service-level objectives the organisation holds itself to."""

    availability_target: Annotated[Number, Field(gt=0.0, lt=1.0)] = 0.999
    """Share of requests that must succeed (0.999 = three nines)."""
    latency_p95_ms: Milliseconds = 1000.0
    """p95 latency objective of the features, ms."""


class CostSpec(Spec):
    """What engineers' time and turnover cost, and how future margin is discounted.

    The KPIs that put people in money (``people_cost_usd``, ``margin_after_people_usd``)
    and the customer lifetime value read these settings; the simulation does not.
    """

    engineer_cost_usd_hour: Annotated[Number, Field(ge=0.0, le=10_000.0)] = 100.0
    """Loaded cost of one engineer-hour (salary, benefits, overhead), USD: 100 is about
    200,000 USD a year over 2,000 working hours."""
    hours_per_page: Annotated[Number, Field(ge=0.0, le=24.0)] = 1.0
    """Engineer-hours a page costs beyond working the incident: waking or breaking off,
    triage, hand-over and lost focus."""
    replacement_cost_usd: Annotated[Number, Field(ge=0.0, le=10_000_000.0)] = 50_000.0
    """Cost of replacing an engineer who leaves (recruiting, onboarding, months of
    ramp-up), USD."""
    discount_rate_yearly: Annotated[Number, Field(ge=0.01, le=1.0)] = 0.10
    """Yearly rate at which future margin is discounted in customer lifetime value (0.10:
    a dollar a year from now is worth 91 cents today); at least 1%, so that users who never
    leave have a finite value."""


class TelemetrySpec(Spec):
    """What the run records beyond KPIs."""

    user_sample_per_segment: Annotated[Whole, Field(ge=0, le=100_000)] = 200
    """Users per segment whose daily activity goes into the ``user_days`` table."""


class Scenario(Spec):
    """A whole organisation plus the interventions applied to it.

    Example:
        >>> from orgtwin import load_scenario
        >>> sc = load_scenario("scenarios/baseline.yaml")
        >>> sorted(sc.teams)[:2]
        ['core', 'data']
    """

    name: Name
    """Short name of the scenario, used in reports and run ids."""
    description: str = ""
    """What the scenario holds, in plain words."""
    question: Annotated[str, Field(max_length=1000)] = ""
    """What the scenario asks, in a lead's words ("Does the extra revenue of a higher Pro
    price outweigh the users we lose?"); the verdict of a comparison answers it."""
    decides: Annotated[list[Name], Field(max_length=MAX_DECIDING)] = []
    """The KPIs that answer the question, most important first (names from
    ``orgtwin.KPIS``, checked when the scenario runs); the verdict leads with them."""
    start: Start = datetime(2026, 1, 5)
    """Wall time of the first hour (UTC; a time zone is converted to UTC); the hour-of-week
    profiles follow it."""
    days: Annotated[Whole, Field(ge=1, le=MAX_DAYS)] = 90
    """Days a run lasts (override with --days)."""
    seed: Annotated[Whole, Field(ge=0)] = 0
    """Base seed the runs' seeds derive from, a whole number of any size (override with
    --seed)."""
    seeds: Annotated[Whole, Field(ge=1, le=1000)] = 8
    """Seeds a run uses by default (override with --seeds)."""
    slo: SloSpec = SloSpec()
    """Service-level objectives."""
    costs: CostSpec = CostSpec()
    """What engineers' time and turnover cost (for the KPIs in money, not the simulation)."""
    telemetry: TelemetrySpec = TelemetrySpec()
    """What a run records beyond KPIs."""
    segments: Annotated[dict[Name, SegmentSpec], Field(max_length=MAX_ENTITIES)]
    """User segments by name."""
    features: Annotated[dict[Name, FeatureSpec], Field(max_length=MAX_ENTITIES)]
    """Product features by name."""
    services: Annotated[dict[Name, ServiceSpec], Field(max_length=MAX_ENTITIES)]
    """Services by name (their calls must form a DAG)."""
    vendors: Annotated[dict[Name, VendorSpec], Field(max_length=MAX_ENTITIES)] = {}
    """Third-party vendors by name."""
    teams: Annotated[dict[Name, TeamSpec], Field(max_length=MAX_ENTITIES)]
    """Engineering teams by name (each owns at least one service)."""
    interventions: Annotated[list[Intervention], Field(max_length=MAX_ENTITIES)] = []
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

    @field_validator("decides")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"must name each KPI once, got {', '.join(repeated)} more than once")
        return value
