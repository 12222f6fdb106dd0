"""The series registry: every per-tick figure a run records, declared once.

A run records one value per tick, entity and metric (the tidy ``series`` table, schema
:data:`orgtwin.telemetry.schemas.SERIES`). :data:`SERIES_METRICS` declares each metric
once: the entity type it belongs to, its name, unit, whether it is a *gauge* (a level at
the end of the hour, averaged over time) or *accrues* within the hour (a count or sum,
added up over time), whether it is *intensive* (a rate or level, averaged across
entities) or extensive (summed across entities), and what it means. The recorder stores
metrics in this order, writers name the metrics they write, and the KPIs, charts and
docs read their units and kinds from here.

Like :mod:`orgtwin.units`, this module imports nothing but the standard library, so the
agents may read the names of the figures they count.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

EntityType = Literal["segment", "service", "vendor", "feature", "team"]
ENTITY_TYPES: tuple[EntityType, ...] = ("segment", "service", "vendor", "feature", "team")
"""Entity types of the series, in recording order."""


class SeriesMetric(NamedTuple):
    """One figure of the per-tick series.

    Attributes:
        entity_type: the kind of entity that has it.
        name: the ``metric`` column's value.
        unit: unit of the value (``"rps"``, ``"USD"``, ``"0-1"``…).
        accrues: True when the value accrues within the tick (summed over time: a day's
            total is the sum of its hours); False for a gauge (averaged over time).
        intensive: True for rates and levels, averaged across entities; False for
            amounts, summed across entities.
        description: what the value is, in plain words.
        writer: what writes it, as a dotted path (the model's hourly record by default);
            ``tests/telemetry/test_series.py`` checks that the writer names the metric.
    """

    entity_type: EntityType
    name: str
    unit: str
    accrues: bool
    intensive: bool
    description: str
    writer: str = "orgtwin.world.model.OrgModel.record"


_GAUGE, _ACCRUES = False, True
_EXTENSIVE, _INTENSIVE = False, True
_END_OF_DAY = "orgtwin.world.model.OrgModel.end_day"
_TEAM_STATE = "orgtwin.agents.teams.Team.gauges"
_TEAM_COUNTS = "orgtwin.agents.teams.Team"  # counted where they happen, into COUNTED

SERIES_METRICS: tuple[SeriesMetric, ...] = (
    # segments of users
    SeriesMetric("segment", "active_users", "users", _GAUGE, _EXTENSIVE,
                 "Users subscribed at the end of the hour"),
    SeriesMetric("segment", "paying_users", "users", _GAUGE, _EXTENSIVE,
                 "Subscribed users of a segment with a price above zero"),
    SeriesMetric("segment", "revenue_usd", "USD", _ACCRUES, _EXTENSIVE,
                 "Revenue accrued in the hour: paying users × price per hour"),
    SeriesMetric("segment", "churned", "users", _ACCRUES, _EXTENSIVE,
                 "Users who left (recorded in the last hour of each day)", _END_OF_DAY),
    SeriesMetric("segment", "acquired", "users", _ACCRUES, _EXTENSIVE,
                 "Users who joined (recorded in the last hour of each day)", _END_OF_DAY),
    SeriesMetric("segment", "tickets", "tickets", _ACCRUES, _EXTENSIVE,
                 "Support tickets raised (recorded in the last hour of each day)", _END_OF_DAY),
    SeriesMetric("segment", "sessions", "sessions", _ACCRUES, _EXTENSIVE,
                 "Sessions opened in the hour"),
    SeriesMetric("segment", "bad_sessions", "sessions", _ACCRUES, _EXTENSIVE,
                 "Sessions that met an error or a feature slower than the segment tolerates"),
    # services
    SeriesMetric("service", "demand_rps", "rps", _GAUGE, _EXTENSIVE,
                 "Requests per second received, external and from callers"),
    SeriesMetric("service", "capacity_rps", "rps", _GAUGE, _EXTENSIVE,
                 "Requests per second the live replicas can serve"),
    SeriesMetric("service", "utilisation", "0-1", _GAUGE, _INTENSIVE,
                 "Demand over live capacity (above 1: overloaded)"),
    SeriesMetric("service", "replicas", "replicas", _GAUGE, _EXTENSIVE,
                 "Replicas running"),
    SeriesMetric("service", "latency_p50_ms", "ms", _GAUGE, _INTENSIVE,
                 "Median latency, dependencies included"),
    SeriesMetric("service", "latency_p95_ms", "ms", _GAUGE, _INTENSIVE,
                 "95th-percentile latency, dependencies included"),
    SeriesMetric("service", "error_rate", "fraction", _GAUGE, _INTENSIVE,
                 "Share of requests that failed, failing dependencies included"),
    SeriesMetric("service", "cost_usd", "USD", _ACCRUES, _EXTENSIVE,
                 "Replica cost of the hour (spot replicas at their discount)"),
    SeriesMetric("service", "preempted_replicas", "replicas", _ACCRUES, _EXTENSIVE,
                 "Spot replicas reclaimed in the hour"),
    # vendors
    SeriesMetric("vendor", "calls_rps", "rps", _GAUGE, _EXTENSIVE,
                 "Calls per second to the vendor"),
    SeriesMetric("vendor", "up", "1/0", _GAUGE, _INTENSIVE,
                 "1 while the vendor is up, 0 during an outage"),
    SeriesMetric("vendor", "error_rate", "fraction", _GAUGE, _INTENSIVE,
                 "Share of calls that failed (outage, rate limit or the vendor's own errors)"),
    SeriesMetric("vendor", "cost_usd", "USD", _ACCRUES, _EXTENSIVE,
                 "Price of the hour's calls"),
    # product features
    SeriesMetric("feature", "sessions", "sessions", _ACCRUES, _EXTENSIVE,
                 "Sessions that used the feature in the hour"),
    SeriesMetric("feature", "requests", "requests", _ACCRUES, _EXTENSIVE,
                 "Requests the feature sent to its entry service"),
    SeriesMetric("feature", "errors", "requests", _ACCRUES, _EXTENSIVE,
                 "Of those, requests that failed"),
    SeriesMetric("feature", "latency_p95_ms", "ms", _GAUGE, _INTENSIVE,
                 "95th-percentile latency of the feature's entry service"),
    # teams
    SeriesMetric("team", "headcount", "engineers", _GAUGE, _EXTENSIVE,
                 "Engineers in the team", _TEAM_STATE),
    SeriesMetric("team", "oncall_size", "engineers", _GAUGE, _EXTENSIVE,
                 "Engineers sharing the on-call rotation", _TEAM_STATE),
    SeriesMetric("team", "fatigue", "0-1", _GAUGE, _INTENSIVE,
                 "Mean fatigue of the team's engineers (1 is exhausted)", _TEAM_STATE),
    SeriesMetric("team", "expertise", "1 = typical", _GAUGE, _INTENSIVE,
                 "The team's expertise at restoring service", _TEAM_STATE),
    SeriesMetric("team", "pending_changes", "changes", _GAUGE, _EXTENSIVE,
                 "Finished changes waiting to be deployed", _TEAM_STATE),
    SeriesMetric("team", "changes_shipped", "changes", _ACCRUES, _EXTENSIVE,
                 "Changes deployed successfully", _TEAM_COUNTS),
    SeriesMetric("team", "deploys", "deploys", _ACCRUES, _EXTENSIVE,
                 "Production deploys", _TEAM_COUNTS),
    SeriesMetric("team", "failed_deploys", "deploys", _ACCRUES, _EXTENSIVE,
                 "Deploys that failed", _TEAM_COUNTS),
    SeriesMetric("team", "pages", "pages", _ACCRUES, _EXTENSIVE,
                 "On-call pages sent", _TEAM_COUNTS),
    SeriesMetric("team", "off_hours_pages", "pages", _ACCRUES, _EXTENSIVE,
                 "Pages outside the on-call engineer's working hours", _TEAM_COUNTS),
    SeriesMetric("team", "left", "engineers", _ACCRUES, _EXTENSIVE,
                 "Engineers who left (recorded at the end of the day)", _TEAM_COUNTS),
    SeriesMetric("team", "hired", "engineers", _ACCRUES, _EXTENSIVE,
                 "Engineers who started (recorded at the end of the day)", _TEAM_COUNTS),
    SeriesMetric("team", "toil_hours", "engineer-hours", _ACCRUES, _EXTENSIVE,
                 "Engineer-hours spent on support tickets", _TEAM_COUNTS),
    SeriesMetric("team", "feature_hours", "engineer-hours", _ACCRUES, _EXTENSIVE,
                 "Engineer-hours spent on feature work", _TEAM_COUNTS),
)  # fmt: skip
"""Every series metric, grouped by entity type in :data:`ENTITY_TYPES` order; within a
type, the order the recorder stores them in."""


def metrics_of(entity_type: str) -> tuple[str, ...]:
    """Names of the metrics of one entity type, in recording order.

    Raises:
        KeyError: ``entity_type`` is not one of :data:`ENTITY_TYPES`.

    Example:
        >>> metrics_of("vendor")
        ('calls_rps', 'up', 'error_rate', 'cost_usd')
    """
    if entity_type not in ENTITY_TYPES:
        raise KeyError(f"{entity_type!r} is not an entity type of the series")
    return tuple(m.name for m in SERIES_METRICS if m.entity_type == entity_type)


def metric(entity_type: str, name: str) -> SeriesMetric:
    """The declaration of one metric.

    Raises:
        KeyError: no such metric of that entity type.
    """
    for declared in SERIES_METRICS:
        if declared.entity_type == entity_type and declared.name == name:
            return declared
    raise KeyError(f"{entity_type}.{name} is not a series metric")


def accrued_metrics(entity_type: str) -> tuple[str, ...]:
    """Names of the metrics of one entity type that accrue within a tick, in recording order.

    Example:
        >>> accrued_metrics("vendor")
        ('cost_usd',)
    """
    return tuple(m.name for m in SERIES_METRICS if m.entity_type == entity_type and m.accrues)
