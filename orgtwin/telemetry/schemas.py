"""The telemetry tables: one schema each, shared by the simulator, the KPIs and learning.

The simulator records its events in exactly these shapes, so a scenario can stand in for
a real organisation: its tables feed the run summary now and learned behaviours later.
Times are timezone-naive UTC datetimes (microseconds); durations carry their unit.

Beside each schema, a mapping of the same columns to what each one means
(``REQUESTS_COLUMNS`` for ``REQUESTS``…), gathered in :data:`COLUMN_DESCRIPTIONS`; the
telemetry reference (``python -m orgtwin.runs.reference``) is generated from them.
"""

from __future__ import annotations

import polars as pl

REQUESTS = {
    "time": pl.Datetime("us"),
    "service": pl.String,
    "requests": pl.Float64,
    "errors": pl.Float64,
    "latency_p50_ms": pl.Float64,
    "latency_p95_ms": pl.Float64,
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
    "series": SERIES_COLUMNS,
}
"""What each column of each table means: the event tables by name, and ``"series"``."""


def empty(name: str) -> pl.DataFrame:
    """An empty frame with the schema of telemetry table ``name``."""
    return pl.DataFrame(schema=EVENT_TABLES[name])
