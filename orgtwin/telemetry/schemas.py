"""The telemetry tables: one schema each, shared by the simulator, the KPIs and learning.

The simulator records its events in exactly these shapes, so a scenario can stand in for
a real organisation: its tables feed the run summary now and learned behaviours later.
Times are timezone-naive UTC datetimes (microseconds); durations carry their unit.

Beside each schema, a mapping of the same columns to what each one means
(``REQUESTS_COLUMNS`` for ``REQUESTS``…), gathered in :data:`COLUMN_DESCRIPTIONS`; the
telemetry reference (``python -m orgtwin.runs.reference``) is generated from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

REQUESTS = {
    "time": pl.Datetime("us"),
    "service": pl.String,
    "requests": pl.Float64,
    "errors": pl.Float64,
    "latency_p50_ms": pl.Float64,
    "latency_p95_ms": pl.Float64,
    "client_latency_p95_ms": pl.Float64,
    "cpu": pl.Float64,
    "replicas": pl.Float64,
}
REQUESTS_COLUMNS = {
    "time": "Start of the hour",
    "service": "The service",
    "requests": "Requests received in the hour",
    "errors": "Requests that failed (own errors and failed dependencies)",
    "latency_p50_ms": "Median latency, dependencies included, ms",
    "latency_p95_ms": "95th-percentile latency, dependencies included, ms",
    "client_latency_p95_ms": "95th-percentile latency of the service's calls to other services "
    "as it waits on them (the callees' latency and the network between), ms; null when not "
    "measured or the service calls no other service",
    "cpu": "Utilisation of live capacity, 0..1 (can exceed 1 under overload)",
    "replicas": "Replicas running",
}
CALLS = {"caller": pl.String, "callee": pl.String, "count": pl.Float64}
CALLS_COLUMNS = {
    "caller": "The calling service",
    "callee": "The service or vendor called",
    "count": "Calls over the whole run",
}
DEPLOYS = {
    "time": pl.Datetime("us"),
    "service": pl.String,
    "team": pl.String,
    "batch_size": pl.Int64,
    "failed": pl.Boolean,
    "lead_time_hours": pl.Float64,
}
DEPLOYS_COLUMNS = {
    "time": "Hour the deploy went out",
    "service": "The service deployed",
    "team": "The team that deployed it",
    "batch_size": "Changes shipped together",
    "failed": "Whether the deploy failed",
    "lead_time_hours": "Mean over the batch of (deploy time - change ready time), hours",
}
INCIDENTS = {
    "incident_id": pl.Int64,
    "service": pl.String,
    "team": pl.String,
    "severity": pl.Int64,
    "cause": pl.String,
    "started": pl.Datetime("us"),
    "detected": pl.Datetime("us"),
    "resolved": pl.Datetime("us"),
}
INCIDENTS_COLUMNS = {
    "incident_id": "Incident number, unique within a run",
    "service": "The service affected",
    "team": "The team that owns the service",
    "severity": "1 (worst) to 3",
    "cause": "What started it: deploy, vendor, capacity or chaos (a drill)",
    "started": "When the incident began",
    "detected": "When the team noticed it",
    "resolved": "When service was restored; null while still open at the end of the run",
}
USER_DAYS = {
    "day": pl.Date,
    "user": pl.Int64,
    "segment": pl.String,
    "plan": pl.String,
    "price": pl.Float64,
    "sessions": pl.Int64,
    "errors": pl.Int64,
    "latency": pl.Float64,
    "churned": pl.Boolean,
    "tenure_days": pl.Float64,
}
USER_DAYS_COLUMNS = {
    "day": "The day (UTC)",
    "user": "User id, unique across segments",
    "segment": "The user's segment",
    "plan": "The segment's plan",
    "price": "Price the user pays, USD per month",
    "sessions": "Sessions the user opened that day",
    "errors": "Sessions with a bad experience (error or too slow)",
    "latency": "Session-weighted p95 latency of the segment's sessions that day, ms",
    "churned": "Whether the user left that day",
    "tenure_days": "Days the user had been a customer at the start of the day; null when unknown",
}
VENDOR_STATUS = {
    "vendor": pl.String,
    "outage_start": pl.Datetime("us"),
    "outage_end": pl.Datetime("us"),
}
VENDOR_STATUS_COLUMNS = {
    "vendor": "The vendor",
    "outage_start": "First hour of the outage",
    "outage_end": "End of the outage (exclusive)",
}
PAGES = {
    "time": pl.Datetime("us"),
    "team": pl.String,
    "off_hours": pl.Boolean,
    "incident_id": pl.Int64,
}
PAGES_COLUMNS = {
    "time": "Hour of the page",
    "team": "The team whose on-call engineer was paged",
    "off_hours": "Whether the page came outside the team's working hours",
    "incident_id": "The incident that caused the page",
}
SPANS = {
    "trace_id": pl.String,
    "span_id": pl.String,
    "parent_id": pl.String,
    "service": pl.String,
    "operation": pl.String,
    "start": pl.Datetime("us"),
    "duration_ms": pl.Float64,
    "status": pl.String,
}
SPANS_COLUMNS = {
    "trace_id": "The trace the span belongs to (hex text)",
    "span_id": "The span, unique across the table (hex text)",
    "parent_id": "The calling span; null for a trace's root span",
    "service": "The service that ran the span",
    "operation": "What it did (RPC method, HTTP route…)",
    "start": "When the span started",
    "duration_ms": "How long it took, ms",
    "status": "ok, error or unset; null when the source does not say",
}
CUSTOMERS = {
    "customer": pl.String,
    "segment": pl.String,
    "plan": pl.String,
    "price": pl.Float64,
    "start": pl.Date,
    "end": pl.Date,
    "tenure_months": pl.Float64,
    "churned": pl.Boolean,
    "entry_tenure_months": pl.Float64,
}
CUSTOMERS_COLUMNS = {
    "customer": "Customer id, unique across the table",
    "segment": "The customer's segment (or contract kind)",
    "plan": "The customer's plan; null when the source has none",
    "price": "Price the customer pays, USD per month",
    "start": "Day the customer joined (UTC); null when unknown",
    "end": "Day the customer left (UTC); null while still a customer",
    "tenure_months": "Months as a customer, up to leaving or to the snapshot",
    "churned": "Whether the customer has left",
    "entry_tenure_months": "Tenure in months when the table begins to watch the customer "
    "(a table that covers a window sees earlier customers from its start); null: since "
    "joining",
}
ARRIVALS = {"time": pl.Datetime("us"), "count": pl.Float64, "key": pl.String}
ARRIVALS_COLUMNS = {
    "time": "Start of the interval (or the instant of one arrival)",
    "count": "Requests or arrivals in the interval starting at time (1 for one arrival)",
    "key": "What the count is of (a service, feature or segment); null for the total",
}
SERIES = {
    "tick": pl.Int32,
    "entity_type": pl.Categorical,
    "entity": pl.Categorical,
    "metric": pl.Categorical,
    "value": pl.Float64,
}
SERIES_COLUMNS = {
    "tick": "Hour from the scenario start (daily series: the day's first hour)",
    "entity_type": "segment, service, vendor, feature or team",
    "entity": "Name of the entity",
    "metric": "Name of the figure (a series metric of the entity type)",
    "value": "The figure, in the metric's unit (daily series: the mean over the day's hours)",
}

EVENT_TABLES: dict[str, dict[str, pl.DataType]] = {
    "requests": REQUESTS,
    "calls": CALLS,
    "deploys": DEPLOYS,
    "incidents": INCIDENTS,
    "user_days": USER_DAYS,
    "vendor_status": VENDOR_STATUS,
    "pages": PAGES,
}
"""Every telemetry table by name, in the order they are written."""

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "requests": REQUESTS_COLUMNS,
    "calls": CALLS_COLUMNS,
    "deploys": DEPLOYS_COLUMNS,
    "incidents": INCIDENTS_COLUMNS,
    "user_days": USER_DAYS_COLUMNS,
    "vendor_status": VENDOR_STATUS_COLUMNS,
    "pages": PAGES_COLUMNS,
    "spans": SPANS_COLUMNS,
    "customers": CUSTOMERS_COLUMNS,
    "arrivals": ARRIVALS_COLUMNS,
    "series": SERIES_COLUMNS,
}
"""What each column of each table means: the telemetry tables by name, and ``"series"``."""

TELEMETRY_TABLES: dict[str, dict[str, pl.DataType]] = {
    **EVENT_TABLES,
    "spans": SPANS,
    "customers": CUSTOMERS,
    "arrivals": ARRIVALS,
}
"""Every table an organisation's telemetry is read into: the event tables a run writes,
then the inputs only real telemetry has (spans, a customer snapshot, arrival counts)."""


@dataclass(frozen=True)
class TableRules:
    """What a valid row of one telemetry table is, beyond its column types.

    Attributes:
        keys: columns that must not be null.
        unique: columns whose values identify a row (no two rows share one).
        times: date and date-time columns (parsed from text, checked for time zones).
        non_negative: numeric columns that must be >= 0 (counts, durations, prices).
        ordered: ``(earlier, later)`` pairs: where both are set, ``earlier <= later``.
        optional: columns a source may lack; they are added, all null.
        choices: ``(column, allowed values)`` pairs for text columns with a fixed set.
    """

    keys: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    ordered: tuple[tuple[str, str], ...] = ()
    optional: tuple[str, ...] = ()
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()


TABLE_RULES: dict[str, TableRules] = {
    "requests": TableRules(
        keys=("time", "service"),
        times=("time",),
        non_negative=(
            "requests",
            "errors",
            "latency_p50_ms",
            "latency_p95_ms",
            "client_latency_p95_ms",
            "cpu",
            "replicas",
        ),
        optional=(
            "errors",
            "latency_p50_ms",
            "latency_p95_ms",
            "client_latency_p95_ms",
            "cpu",
            "replicas",
        ),
    ),
    "calls": TableRules(keys=("caller", "callee"), non_negative=("count",)),
    "deploys": TableRules(
        keys=("time", "service"),
        times=("time",),
        non_negative=("batch_size", "lead_time_hours"),
        optional=("team", "batch_size", "lead_time_hours"),
    ),
    "incidents": TableRules(
        keys=("incident_id", "service", "started"),
        unique=("incident_id",),
        times=("started", "detected", "resolved"),
        ordered=(("started", "detected"), ("detected", "resolved"), ("started", "resolved")),
        optional=("team", "severity", "cause"),
    ),
    "user_days": TableRules(
        keys=("day", "user"),
        times=("day",),
        non_negative=("price", "sessions", "errors", "latency", "tenure_days"),
        optional=("plan", "latency", "tenure_days"),
    ),
    "vendor_status": TableRules(
        keys=("vendor", "outage_start"),
        times=("outage_start", "outage_end"),
        ordered=(("outage_start", "outage_end"),),
    ),
    "pages": TableRules(
        keys=("time", "team"), times=("time",), optional=("off_hours", "incident_id")
    ),
    "spans": TableRules(
        keys=("trace_id", "span_id", "service", "start", "duration_ms"),
        unique=("span_id",),
        times=("start",),
        non_negative=("duration_ms",),
        optional=("operation", "status"),
        choices=(("status", ("ok", "error", "unset")),),
    ),
    "customers": TableRules(
        keys=("customer",),
        unique=("customer",),
        times=("start", "end"),
        non_negative=("price", "tenure_months", "entry_tenure_months"),
        ordered=(("start", "end"), ("entry_tenure_months", "tenure_months")),
        optional=("plan", "start", "end", "entry_tenure_months"),
    ),
    "arrivals": TableRules(
        keys=("time", "count"), times=("time",), non_negative=("count",), optional=("key",)
    ),
}
"""The validation rules of each telemetry table (:class:`TableRules`), read by
:func:`orgtwin.telemetry.folder.read_telemetry`."""


def empty(name: str) -> pl.DataFrame:
    """An empty frame with the schema of telemetry table ``name``."""
    return pl.DataFrame(schema=TELEMETRY_TABLES[name])
