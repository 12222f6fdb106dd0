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

from orgtwin.scenario.fields import Positive, Spec
from orgtwin.scenario.interventions import Intervention
from orgtwin.scenario.organisation import (
    FeatureSpec,
    SegmentSpec,
    ServiceSpec,
    TeamSpec,
    VendorSpec,
)


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
