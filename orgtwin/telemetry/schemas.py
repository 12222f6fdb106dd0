"""The telemetry tables: one schema each, shared by the simulator, the KPIs and learning.

The simulator records its events in exactly these shapes, so a scenario can stand in for
a real organisation: its tables feed the run summary now and learned behaviours later.
Times are timezone-naive UTC datetimes (microseconds); durations carry their unit.
"""

from __future__ import annotations

import polars as pl

REQUESTS = {
    "time": pl.Datetime("us"),
    "service": pl.String,
    "requests": pl.Float64,  # requests received in the hour
    "errors": pl.Float64,  # requests that failed (own errors and failed dependencies)
    "latency_p50_ms": pl.Float64,
    "latency_p95_ms": pl.Float64,
    "cpu": pl.Float64,  # utilisation of live capacity, 0..1 (can exceed 1 under overload)
    "replicas": pl.Float64,
}
CALLS = {"caller": pl.String, "callee": pl.String, "count": pl.Float64}
DEPLOYS = {
    "time": pl.Datetime("us"),
    "service": pl.String,
    "team": pl.String,
    "batch_size": pl.Int64,  # changes shipped together
    "failed": pl.Boolean,
    "lead_time_hours": pl.Float64,  # mean over the batch of (deploy time - change ready time)
}
INCIDENTS = {
    "incident_id": pl.Int64,
    "service": pl.String,
    "team": pl.String,
    "severity": pl.Int64,  # 1 (worst) .. 3
    "cause": pl.String,  # deploy | vendor | capacity | chaos
    "started": pl.Datetime("us"),
    "detected": pl.Datetime("us"),
    "resolved": pl.Datetime("us"),  # null while still open at the end of the run
}
USER_DAYS = {
    "day": pl.Date,
    "user": pl.Int64,
    "segment": pl.String,
    "plan": pl.String,
    "price": pl.Float64,  # USD per month
    "sessions": pl.Int64,
    "errors": pl.Int64,  # sessions with a bad experience (error or too slow)
    "latency": pl.Float64,  # session-weighted p95 latency the user saw that day, ms
    "churned": pl.Boolean,
}
VENDOR_STATUS = {
    "vendor": pl.String,
    "outage_start": pl.Datetime("us"),
    "outage_end": pl.Datetime("us"),
}
PAGES = {
    "time": pl.Datetime("us"),
    "team": pl.String,
    "off_hours": pl.Boolean,
    "incident_id": pl.Int64,
}
SERIES = {
    "tick": pl.Int32,
    "entity_type": pl.Categorical,
    "entity": pl.Categorical,
    "metric": pl.Categorical,
    "value": pl.Float64,
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


def empty(name: str) -> pl.DataFrame:
    """An empty frame with the schema of telemetry table ``name``."""
    return pl.DataFrame(schema=EVENT_TABLES[name])
