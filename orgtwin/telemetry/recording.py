"""Recording a run: per-tick figures into preallocated arrays, events into plain lists.

During a run nothing is built per row: gauges go into one ``[ticks, entities, metrics]``
array per entity type and events are appended as tuples. At the end the arrays become
the tidy series (``tick, entity_type, entity, metric, value``) and the events become the
telemetry tables of :mod:`orgtwin.tables`, with one vectorised conversion each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

from orgtwin.telemetry import schemas as tables

SEGMENT_METRICS = (
    "active_users", "paying_users", "revenue_usd", "churned", "acquired", "tickets",
    "sessions", "bad_sessions",
)  # fmt: skip
SERVICE_METRICS = (
    "demand_rps", "capacity_rps", "utilisation", "replicas", "latency_p50_ms",
    "latency_p95_ms", "error_rate", "cost_usd", "preempted_replicas",
)  # fmt: skip
VENDOR_METRICS = ("calls_rps", "up", "error_rate", "cost_usd")
FEATURE_METRICS = ("sessions", "requests", "errors", "latency_p95_ms")


@dataclass
class SeriesRecorder:
    """Preallocated per-tick arrays, one per entity type.

    Args:
        n_ticks: ticks in the run.
        entities: entity type → entity names.
        metrics: entity type → metric names.
    """

    n_ticks: int
    entities: dict[str, list[str]]
    metrics: dict[str, tuple[str, ...]]
    arrays: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.arrays = {
            kind: np.zeros((self.n_ticks, len(names), len(self.metrics[kind])))
            for kind, names in self.entities.items()
        }

    def metric(self, kind: str, name: str) -> np.ndarray:
        """The ``[ticks, entities]`` slice of one metric."""
        return self.arrays[kind][:, :, self.metrics[kind].index(name)]

    def to_frame(self) -> pl.DataFrame:
        """The tidy series: one row per tick × entity × metric."""
        names = list(dict.fromkeys(n for kind in self.entities for n in self.entities[kind]))
        metric_names = list(dict.fromkeys(m for kind in self.entities for m in self.metrics[kind]))
        entity_cats = pl.Series(names, dtype=pl.Categorical)
        metric_cats = pl.Series(metric_names, dtype=pl.Categorical)
        parts = []
        for kind, entity_names in self.entities.items():
            values = self.arrays[kind]
            n_e, n_m = values.shape[1], values.shape[2]
            if n_e == 0:
                continue
            entity_codes = np.array([names.index(n) for n in entity_names], dtype=np.uint32)
            metric_codes = np.array(
                [metric_names.index(m) for m in self.metrics[kind]], dtype=np.uint32
            )
            entity_type = pl.Series([kind], dtype=pl.Categorical)
            parts.append(
                pl.DataFrame(
                    {
                        "tick": np.repeat(np.arange(self.n_ticks, dtype=np.int32), n_e * n_m),
                        "entity_type": entity_type.gather(
                            np.zeros(values[..., 0].size * n_m, dtype=np.uint32)
                        ),
                        "entity": entity_cats.gather(
                            np.tile(np.repeat(entity_codes, n_m), self.n_ticks)
                        ),
                        "metric": metric_cats.gather(np.tile(metric_codes, self.n_ticks * n_e)),
                        "value": values.reshape(-1),
                    }
                )
            )
        return pl.concat(parts).select(list(tables.SERIES))


@dataclass
class EventLog:
    """Events of one run as plain rows, turned into telemetry tables at the end."""

    start: datetime
    service_names: list[str]
    deploys: list[tuple] = field(default_factory=list)
    incidents: list[tuple] = field(default_factory=list)
    pages: list[tuple] = field(default_factory=list)
    user_days: list[tuple] = field(default_factory=list)
    today: int = 0
    """Day index (from the start) that ``user_day`` rows belong to; set by the model."""

    def deploy(
        self, tick: int, service: int, team: str, batch: int, failed: bool, lead_hours: float
    ) -> None:
        """Record a deploy."""
        self.deploys.append((tick, self.service_names[service], team, batch, failed, lead_hours))

    def page(self, tick: int, team: str, off_hours: bool, incident_id: int) -> None:
        """Record a page."""
        self.pages.append((tick, team, off_hours, incident_id))

    def incident(self, incident: object, team: str) -> None:
        """Record an incident once it is resolved (or still open at the end)."""
        i = incident
        self.incidents.append(
            (i.incident_id, self.service_names[i.service], team, i.severity, i.cause,
             i.started, i.detected, i.resolved)
        )  # fmt: skip

    def user_day(self, *, segment: str, plan: str, price: float, **columns: object) -> None:
        """Record one segment-day of the sampled users (arrays, one entry per user)."""
        self.user_days.append((self.today, segment, plan, price, columns))

    # ------------------------------------------------------------------ tables

    def _time(self, ticks: pl.Expr) -> pl.Expr:
        return pl.lit(self.start, dtype=pl.Datetime("us")) + pl.duration(hours=ticks)

    def deploys_table(self) -> pl.DataFrame:
        """The ``deploys`` table."""
        cols = {
            "tick": pl.Int64, "service": pl.String, "team": pl.String,
            "batch_size": pl.Int64, "failed": pl.Boolean, "lead_time_hours": pl.Float64,
        }  # fmt: skip
        frame = pl.DataFrame(self.deploys, schema=cols, orient="row")
        frame = frame.with_columns(time=self._time(pl.col("tick")))
        return frame.select([pl.col(c).cast(t) for c, t in tables.DEPLOYS.items()])

    def pages_table(self) -> pl.DataFrame:
        """The ``pages`` table."""
        frame = pl.DataFrame(
            self.pages,
            schema={
                "tick": pl.Int64,
                "team": pl.String,
                "off_hours": pl.Boolean,
                "incident_id": pl.Int64,
            },
            orient="row",
        ).with_columns(time=self._time(pl.col("tick")))
        return frame.select([pl.col(c).cast(t) for c, t in tables.PAGES.items()])

    def incidents_table(self) -> pl.DataFrame:
        """The ``incidents`` table (``resolved`` null for incidents open at the end)."""
        cols = {"incident_id": pl.Int64, "service": pl.String, "team": pl.String,
                "severity": pl.Int64, "cause": pl.String, "started": pl.Int64,
                "detected": pl.Int64, "resolved": pl.Int64}  # fmt: skip
        frame = pl.DataFrame(self.incidents, schema=cols, orient="row")
        frame = frame.with_columns(
            [
                self._time(pl.col(c).cast(pl.Int64)).alias(c)
                for c in ("started", "detected", "resolved")
            ]
        )
        return frame.sort("incident_id").select(
            [pl.col(c).cast(t) for c, t in tables.INCIDENTS.items()]
        )

    def user_days_table(self) -> pl.DataFrame:
        """The ``user_days`` table of the sampled users."""
        if not self.user_days:
            return tables.empty("user_days")
        frames = []
        start_day = np.datetime64(self.start.date(), "D")
        for day, segment, plan, price, cols in self.user_days:
            n = len(cols["user"])
            frames.append(
                pl.DataFrame(
                    {
                        "day": np.full(n, start_day + day),
                        "user": cols["user"],
                        "segment": np.full(n, segment),
                        "plan": np.full(n, plan),
                        "price": np.full(n, price),
                        "sessions": cols["sessions"],
                        "errors": cols["errors"],
                        "latency": np.full(n, cols["latency"]),
                        "churned": cols["churned"],
                    }
                )
            )
        frame = pl.concat(frames, how="vertical_relaxed")
        return frame.select([pl.col(c).cast(t) for c, t in tables.USER_DAYS.items()])
