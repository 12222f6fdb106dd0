"""Recording a run: per-tick figures into preallocated arrays, events into plain lists.

During a run nothing is built per row: the figures of each entity type go into one
``[ticks, entities, metrics]`` array (:class:`SeriesRecorder`), written by metric name in
the order of the series registry (:mod:`orgtwin.telemetry.series`), and events are
appended as named tuples (:class:`EventLog`). At the end the arrays become the tidy
series (``tick, entity_type, entity, metric, value``) and the events become the
telemetry tables of :mod:`orgtwin.telemetry.schemas`, with one vectorised conversion each.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from orgtwin.errors import RunError
from orgtwin.telemetry import schemas
from orgtwin.telemetry.derived import client_latency_p95
from orgtwin.telemetry.series import metrics_of
from orgtwin.units import HOURS_PER_DAY, SECONDS_PER_HOUR

# --------------------------------------------------------------------------- the series


class SeriesRecorder:
    """Preallocated per-tick arrays, one per entity type, written by metric name.

    Args:
        n_ticks: ticks in the run.
        entities: entity type -> entity names, in the order of
            :data:`~orgtwin.telemetry.series.ENTITY_TYPES`.
        metrics: entity type -> metric names; by default those of the series registry.

    Attributes:
        arrays: entity type -> ``[ticks, entities, metrics]`` array of values.
    """

    def __init__(
        self,
        n_ticks: int,
        entities: Mapping[str, Sequence[str]],
        metrics: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.n_ticks = n_ticks
        self.entities = {kind: list(names) for kind, names in entities.items()}
        self.metrics = {
            kind: tuple(metrics[kind] if metrics is not None else metrics_of(kind))
            for kind in self.entities
        }
        self.columns = {
            kind: {name: i for i, name in enumerate(names)} for kind, names in self.metrics.items()
        }
        self.arrays = {
            kind: np.zeros((n_ticks, len(names), len(self.metrics[kind])))
            for kind, names in self.entities.items()
        }
        self._blocks: dict[tuple[str, tuple[str, ...]], slice] = {}

    def write(self, kind: str, tick: int, **figures: Any) -> None:
        """Set metrics of every entity of ``kind`` at ``tick`` (one value per entity each).

        Raises:
            KeyError: a name is not a metric of ``kind``.
        """
        row = self.arrays[kind][tick]
        if tuple(figures) == self.metrics[kind]:  # every metric, in order: one assignment
            row.T[:] = tuple(figures.values())
            return
        columns = self.columns[kind]
        for name, values in figures.items():
            row[:, columns[name]] = values

    def write_table(
        self, kind: str, tick: int, names: Sequence[str], table: Sequence[Sequence[float]]
    ) -> None:
        """Set metrics at ``tick`` from one row per entity (``table[entity][i]`` is metric
        ``names[i]``)."""
        self.arrays[kind][tick][:, self._block(kind, names)] = table

    def counters(self, kind: str, names: Sequence[str]) -> np.ndarray:
        """A writable ``[ticks, entities, len(names)]`` view of metrics, to count into.

        Raises:
            KeyError: ``names`` are not consecutive metrics of ``kind``, in order.
        """
        return self.arrays[kind][:, :, self._block(kind, names)]

    def _block(self, kind: str, names: Sequence[str]) -> slice:
        """The columns of consecutive metrics ``names`` of ``kind``, as a slice."""
        key = (kind, tuple(names))
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = self._find_block(kind, names)
        return block

    def _find_block(self, kind: str, names: Sequence[str]) -> slice:
        first = self.columns[kind][names[0]]
        block = slice(first, first + len(names))
        if tuple(names) != self.metrics[kind][block]:
            raise KeyError(f"{kind}: {', '.join(names)} must be consecutive metrics, in order")
        return block

    def metric(self, kind: str, name: str) -> np.ndarray:
        """The ``[ticks, entities]`` slice of one metric."""
        return self.arrays[kind][:, :, self.columns[kind][name]]

    def to_frame(self) -> pl.DataFrame:
        """The tidy series: one row per tick × entity × metric, schema ``SERIES``."""
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
        return pl.concat(parts).select(list(schemas.SERIES))

    def daily_frame(self) -> pl.DataFrame:
        """The series at daily resolution: ``tick`` is each day's first hour and ``value``
        the mean over the day's hours (schema ``SERIES``, one row per day × entity × metric).
        """
        days = self.n_ticks // HOURS_PER_DAY
        daily = SeriesRecorder(days, self.entities, self.metrics)
        daily.arrays = {
            kind: values[: days * HOURS_PER_DAY]
            .reshape(days, HOURS_PER_DAY, *values.shape[1:])
            .mean(axis=1)
            for kind, values in self.arrays.items()
        }
        return daily.to_frame().with_columns(pl.col("tick") * HOURS_PER_DAY)


# --------------------------------------------------------------------------- events


class DeployEvent(NamedTuple):
    """A deploy (``tick`` is the hour it went out)."""

    tick: int
    service: str
    team: str
    batch_size: int
    failed: bool
    lead_time_hours: float


class PageEvent(NamedTuple):
    """A page of the on-call engineer."""

    tick: int
    team: str
    off_hours: bool
    incident_id: int


class IncidentEvent(NamedTuple):
    """An incident, recorded once resolved (times are ticks; ``resolved`` None if open)."""

    incident_id: int
    service: str
    team: str
    severity: int
    cause: str
    started: int
    detected: int | None
    resolved: int | None


class CallsEvent(NamedTuple):
    """Calls from a service to a service or vendor over the whole run."""

    caller: str
    callee: str
    count: float


class OutageEvent(NamedTuple):
    """A vendor outage, from ``start`` to ``end`` (ticks, end exclusive)."""

    vendor: str
    start: int
    end: int


@dataclass
class EventLog:
    """Events of one run as named tuples, turned into telemetry tables at the end.

    Attributes:
        start: wall time of tick 0.
        service_names: services by index (events name services by index).
        today: day index (from the start) that :meth:`user_day` rows belong to.
    """

    start: datetime
    service_names: list[str]
    deploys: list[DeployEvent] = field(default_factory=list)
    incidents: list[IncidentEvent] = field(default_factory=list)
    pages: list[PageEvent] = field(default_factory=list)
    user_days: list[tuple] = field(default_factory=list)
    calls: list[CallsEvent] = field(default_factory=list)
    outages: list[OutageEvent] = field(default_factory=list)
    today: int = 0

    def deploy(
        self, tick: int, service: int, team: str, batch: int, failed: bool, lead_hours: float
    ) -> None:
        """Record a deploy."""
        self.deploys.append(
            DeployEvent(tick, self.service_names[service], team, batch, failed, lead_hours)
        )

    def page(self, tick: int, team: str, off_hours: bool, incident_id: int) -> None:
        """Record a page."""
        self.pages.append(PageEvent(tick, team, off_hours, incident_id))

    def incident(self, incident: Any, team: str) -> None:
        """Record an incident once it is resolved (or still open at the end)."""
        i = incident
        self.incidents.append(
            IncidentEvent(i.incident_id, self.service_names[i.service], team, i.severity,
                          i.cause, i.started, i.detected, i.resolved)
        )  # fmt: skip

    def user_day(self, *, segment: str, plan: str, price: float, **columns: object) -> None:
        """Record one segment-day of the sampled users (arrays, one entry per user)."""
        self.user_days.append((self.today, segment, plan, price, columns))

    def call_totals(self, caller: str, callee: str, count: float) -> None:
        """Record the calls of a whole run from one service to a service or vendor."""
        self.calls.append(CallsEvent(caller, callee, count))

    def outage(self, vendor: str, start: int, end: int) -> None:
        """Record a vendor outage."""
        self.outages.append(OutageEvent(vendor, start, end))

    # ------------------------------------------------------------------ tables

    def tables(
        self, recorder: SeriesRecorder, *, only: Collection[str] | None = None
    ) -> dict[str, pl.DataFrame]:
        """Every telemetry table of the run, in the schemas of :mod:`orgtwin.telemetry.schemas`.

        Args:
            recorder: the run's series (the ``requests`` table is made from it).
            only: names of the tables to build; the others come back empty, in their
                schema (every table by default; ``user_days`` is the dearest).

        Raises:
            RunError: ``only`` names a table that does not exist.
        """
        builders: dict[str, Callable[[], pl.DataFrame]] = {
            "requests": lambda: self.requests_table(recorder),
            "calls": self.calls_table,
            "deploys": self.deploys_table,
            "incidents": self.incidents_table,
            "user_days": self.user_days_table,
            "vendor_status": self.vendor_status_table,
            "pages": self.pages_table,
        }
        check_tables(only)
        wanted = set(builders) if only is None else set(only)
        return {
            name: build() if name in wanted else schemas.empty(name)
            for name, build in builders.items()
        }

    def _time(self, ticks: pl.Expr) -> pl.Expr:
        return pl.lit(self.start, dtype=pl.Datetime("us")) + pl.duration(hours=ticks)

    def requests_table(self, recorder: SeriesRecorder) -> pl.DataFrame:
        """The ``requests`` table: every service's hour, from the recorded series."""
        n_ticks, names = recorder.n_ticks, recorder.entities["service"]
        demand = recorder.metric("service", "demand_rps") * SECONDS_PER_HOUR
        latency_p50 = recorder.metric("service", "latency_p50_ms")
        latency_p95 = recorder.metric("service", "latency_p95_ms")
        client = self._client_latency(names, latency_p50, latency_p95)
        start = np.datetime64(self.start, "us")
        times = start + np.arange(n_ticks).astype("timedelta64[h]")
        frame = pl.DataFrame(
            {
                "time": np.repeat(times, len(names)),
                "service": np.tile(np.array(names), n_ticks),
                "requests": demand.reshape(-1),
                "errors": (demand * recorder.metric("service", "error_rate")).reshape(-1),
                "latency_p50_ms": latency_p50.reshape(-1),
                "latency_p95_ms": latency_p95.reshape(-1),
                "client_latency_p95_ms": client.reshape(-1),
                "cpu": recorder.metric("service", "utilisation").reshape(-1),
                "replicas": recorder.metric("service", "replicas").reshape(-1),
            }
        )
        return frame.select([pl.col(c).cast(t) for c, t in schemas.REQUESTS.items()]).with_columns(
            pl.col("client_latency_p95_ms").fill_nan(None)  # calls no service: not measured
        )

    def _client_latency(
        self, names: list[str], latency_p50: np.ndarray, latency_p95: np.ndarray
    ) -> np.ndarray:
        """Each service's client latency ``[tick, service]``: the 95th percentile of its
        calls to other services, mixed over its callees in the proportions of the run's
        calls (:func:`~orgtwin.telemetry.derived.client_latency_p95`, each callee's
        latency lognormal with its recorded median and 95th percentile; the simulator's
        calls take no network time). NaN for a service that called no service (or before
        the run's calls are recorded)."""
        index = {name: i for i, name in enumerate(names)}
        weights = np.zeros((len(names), len(names)))
        for call in self.calls:
            if call.caller in index and call.callee in index:
                weights[index[call.caller], index[call.callee]] += call.count
        ratio = latency_p95 / np.where(latency_p50 > 0, latency_p50, np.nan)
        client = np.full(latency_p95.shape, np.nan)
        for i, total in enumerate(weights.sum(axis=1)):
            callees = np.flatnonzero(weights[i] > 0)
            if total > 0:
                share = weights[i, callees] / total
                client[:, i] = client_latency_p95(latency_p95[:, callees], share, ratio[:, callees])
        return client

    def calls_table(self) -> pl.DataFrame:
        """The ``calls`` table."""
        return pl.DataFrame(self.calls, schema=schemas.CALLS, orient="row")

    def vendor_status_table(self) -> pl.DataFrame:
        """The ``vendor_status`` table."""
        rows = [
            (o.vendor, self.start + timedelta(hours=o.start), self.start + timedelta(hours=o.end))
            for o in self.outages
        ]
        return pl.DataFrame(rows, schema=schemas.VENDOR_STATUS, orient="row")

    def deploys_table(self) -> pl.DataFrame:
        """The ``deploys`` table."""
        cols = {
            "tick": pl.Int64, "service": pl.String, "team": pl.String,
            "batch_size": pl.Int64, "failed": pl.Boolean, "lead_time_hours": pl.Float64,
        }  # fmt: skip
        frame = pl.DataFrame(self.deploys, schema=cols, orient="row")
        frame = frame.with_columns(time=self._time(pl.col("tick")))
        return frame.select([pl.col(c).cast(t) for c, t in schemas.DEPLOYS.items()])

    def pages_table(self) -> pl.DataFrame:
        """The ``pages`` table."""
        cols = {"tick": pl.Int64, "team": pl.String, "off_hours": pl.Boolean,
                "incident_id": pl.Int64}  # fmt: skip
        frame = pl.DataFrame(self.pages, schema=cols, orient="row")
        frame = frame.with_columns(time=self._time(pl.col("tick")))
        return frame.select([pl.col(c).cast(t) for c, t in schemas.PAGES.items()])

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
            [pl.col(c).cast(t) for c, t in schemas.INCIDENTS.items()]
        )

    def user_days_table(self) -> pl.DataFrame:
        """The ``user_days`` table of the sampled users."""
        if not self.user_days:
            return schemas.empty("user_days")
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
                        "tenure_days": cols["tenure"],
                    }
                )
            )
        frame = pl.concat(frames, how="vertical_relaxed")
        return frame.select([pl.col(c).cast(t) for c, t in schemas.USER_DAYS.items()])


def check_tables(names: Collection[str] | None) -> None:
    """Refuse table names that are not telemetry tables.

    Raises:
        RunError: an unknown name, or a single string instead of a collection.
    """
    unknown = sorted(set(names or ()) - set(schemas.EVENT_TABLES))
    if unknown or isinstance(names, str):
        known = ", ".join(schemas.EVENT_TABLES)
        raise RunError(f"tables must name telemetry tables ({known}), got {names!r}")
