"""Recording a run (orgtwin/telemetry/recording.py), on tiny hand-made recorders and events.

:class:`SeriesRecorder` writes figures by metric name (all at once, some, or a row per
entity) and refuses a name that is not a metric; its counter views write through and
must name consecutive metrics; ``to_frame`` and ``daily_frame`` give the tidy series with
one row per tick (or day), entity and metric. :class:`EventLog` turns hand-made events
into every telemetry table, each in its schema, with ticks as wall times and services by
name.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from orgtwin.errors import RunError
from orgtwin.telemetry import schemas
from orgtwin.telemetry.recording import EventLog, SeriesRecorder
from orgtwin.telemetry.series import accrued_metrics, metrics_of

START = datetime(2026, 1, 5, 6)
ENTITIES = {"vendor": ["stripe", "authz"], "team": ["web"], "feature": []}


def recorder(n_ticks: int = 3) -> SeriesRecorder:
    return SeriesRecorder(n_ticks, ENTITIES)


def value(frame: pl.DataFrame, tick: int, entity_type: str, entity: str, metric: str) -> float:
    found = frame.filter(
        pl.col("tick") == tick,
        pl.col("entity_type") == entity_type,
        pl.col("entity") == entity,
        pl.col("metric") == metric,
    )
    assert found.height == 1, (tick, entity_type, entity, metric)
    return float(found["value"][0])


def has_schema(frame: pl.DataFrame, schema: dict) -> bool:
    """The frame's columns, in order, with the schema's types (``Categorical`` of any kind)."""
    return frame.columns == list(schema) and all(
        frame.schema[name] == dtype for name, dtype in schema.items()
    )


# --------------------------------------------------------------------------- the series


def test_the_recorder_keeps_the_registry_metrics_in_its_order():
    rec = recorder()
    for kind, names in ENTITIES.items():
        assert rec.metrics[kind] == metrics_of(kind)
        assert rec.arrays[kind].shape == (3, len(names), len(metrics_of(kind)))
        assert not rec.arrays[kind].any()


def test_write_sets_the_named_metrics_of_every_entity_and_nothing_else():
    rec = recorder()
    rec.write("vendor", 1, up=[1.0, 0.0], cost_usd=[2.5, 0.25])
    assert rec.metric("vendor", "up").tolist() == [[0, 0], [1, 0], [0, 0]]
    assert rec.metric("vendor", "cost_usd")[1].tolist() == [2.5, 0.25]
    assert (
        not rec.metric("vendor", "calls_rps").any() and not rec.metric("vendor", "error_rate").any()
    )


def test_writing_every_metric_in_order_or_in_any_order_gives_the_same_arrays():
    figures = {name: [float(i), float(10 * i)] for i, name in enumerate(metrics_of("vendor"), 1)}
    in_order, shuffled = recorder(), recorder()
    in_order.write("vendor", 2, **figures)
    shuffled.write("vendor", 2, **dict(reversed(figures.items())))
    np.testing.assert_array_equal(in_order.arrays["vendor"], shuffled.arrays["vendor"])
    for name, values in figures.items():
        assert in_order.metric("vendor", name)[2].tolist() == values


def test_write_by_a_name_that_is_not_a_metric_is_refused():
    rec = recorder()
    with pytest.raises(KeyError, match="outage"):
        rec.write("vendor", 0, outage=[1.0, 0.0])
    with pytest.raises(KeyError, match="pages"):
        rec.write("vendor", 0, up=[1.0, 1.0], pages=[1.0, 0.0])  # a team's metric


def test_write_table_sets_consecutive_metrics_from_one_row_per_entity():
    rec = SeriesRecorder(2, {"team": ["web", "core"]})
    names = metrics_of("team")[:3]
    rec.write_table("team", 1, names, [(6.0, 3.0, 0.25), (4.0, 2.0, 0.5)])
    assert rec.metric("team", names[0])[1].tolist() == [6.0, 4.0]
    assert rec.metric("team", names[1])[1].tolist() == [3.0, 2.0]
    assert rec.metric("team", names[2])[1].tolist() == [0.25, 0.5]
    assert not rec.arrays["team"][0].any()
    assert not rec.metric("team", metrics_of("team")[3]).any()
    with pytest.raises(KeyError, match="consecutive"):
        rec.write_table("team", 1, [names[0], names[2]], [(1.0, 2.0), (3.0, 4.0)])


def test_counters_write_through_and_refuse_metrics_that_are_not_consecutive():
    rec = SeriesRecorder(4, {"team": ["web", "core"]})
    first, second, third = accrued_metrics("team")[:3]  # consecutive, as teams count them
    counts = rec.counters("team", [first, second, third])
    assert counts.shape == (4, 2, 3)
    counts[2, 1, 0] += 3  # core counts three at tick 2
    counts[2, 1, 2] += 1
    assert rec.metric("team", first)[:, 1].tolist() == [0, 0, 3, 0]
    assert rec.metric("team", third)[:, 1].tolist() == [0, 0, 1, 0]
    assert not rec.metric("team", second).any() and not rec.metric("team", first)[:, 0].any()
    with pytest.raises(KeyError, match="consecutive"):
        rec.counters("team", [first, third])
    with pytest.raises(KeyError, match="consecutive"):
        rec.counters("team", [second, first])
    with pytest.raises(KeyError):
        rec.counters("team", ["deploy"])


def test_to_frame_has_one_row_per_tick_entity_and_metric():
    rec = recorder(n_ticks=2)
    rec.write("vendor", 0, up=[1.0, 0.0])
    rec.write("vendor", 1, cost_usd=[4.0, 8.0])
    rec.write_table("team", 1, ["headcount"], [(6.0,)])
    frame = rec.to_frame()
    assert has_schema(frame, schemas.SERIES)
    n_vendor, n_team = 2 * len(metrics_of("vendor")), len(metrics_of("team"))
    assert frame.height == 2 * (n_vendor + n_team), "features have no entity: no rows"
    keys = frame.select("tick", "entity_type", "entity", "metric")
    assert keys.n_unique() == frame.height
    assert set(frame["entity_type"].cast(pl.String)) == {"vendor", "team"}
    assert value(frame, 0, "vendor", "authz", "up") == 0.0
    assert value(frame, 0, "vendor", "stripe", "up") == 1.0
    assert value(frame, 1, "vendor", "authz", "cost_usd") == 8.0
    assert value(frame, 1, "team", "web", "headcount") == 6.0
    assert frame["value"].sum() == pytest.approx(1.0 + 4.0 + 8.0 + 6.0)


def test_daily_frame_holds_each_days_mean_at_its_first_hour():
    rec = SeriesRecorder(50, {"team": ["web"]})  # two days and two hours: the rest is left out
    fatigue = np.arange(50, dtype=float)
    rec.metric("team", "fatigue")[:, 0] = fatigue
    rec.counters("team", ["pages"])[30, 0, 0] = 24.0
    daily = rec.daily_frame()
    assert has_schema(daily, schemas.SERIES)
    assert daily.height == 2 * len(metrics_of("team"))
    assert sorted(set(daily["tick"].to_list())) == [0, 24]
    assert value(daily, 0, "team", "web", "fatigue") == pytest.approx(fatigue[:24].mean())
    assert value(daily, 24, "team", "web", "fatigue") == pytest.approx(fatigue[24:48].mean())
    assert value(daily, 24, "team", "web", "pages") == pytest.approx(1.0), "a mean, not a sum"
    assert value(daily, 0, "team", "web", "pages") == 0.0


# --------------------------------------------------------------------------- events


@pytest.fixture
def log() -> EventLog:
    """A day of events of two services: two deploys, two incidents, two pages, calls, an
    outage and two segment-days of sampled users."""
    events = EventLog(start=START, service_names=["api", "db"])
    events.deploy(3, 1, "core", 4, True, 5.5)
    events.deploy(0, 0, "web", 1, False, 2.0)
    events.page(4, "core", True, 7)
    events.page(9, "core", False, 7)
    incident = SimpleNamespace(
        incident_id=7, service=1, severity=2, cause="deploy", started=3, detected=4, resolved=10
    )
    events.incident(incident, "core")
    still_open = SimpleNamespace(
        incident_id=2, service=0, severity=1, cause="vendor", started=20, detected=21,
        resolved=None,
    )  # fmt: skip
    events.incident(still_open, "web")
    events.call_totals("api", "db", 1234.5)
    events.call_totals("db", "stripe", 10.0)
    events.outage("stripe", 20, 23)
    events.today = 0
    events.user_day(
        segment="pro", plan="pro", price=20.0, user=np.array([11, 12]),
        sessions=np.array([3, 0]), errors=np.array([1, 0]), latency=180.0,
        churned=np.array([False, True]), tenure=np.array([3.0, 40.0], dtype=np.float32),
    )  # fmt: skip
    events.today = 1
    events.user_day(
        segment="free", plan="free", price=0.0, user=np.array([5]), sessions=np.array([2]),
        errors=np.array([0]), latency=90.0, churned=np.array([False]),
        tenure=np.array([0.0], dtype=np.float32),
    )  # fmt: skip
    return events


def a_day_of_services() -> SeriesRecorder:
    rec = SeriesRecorder(24, {"service": ["api", "db"]})
    for tick in range(24):
        rec.write(
            "service", tick, demand_rps=[1.0 + tick, 0.5], error_rate=[0.01, 0.0],
            latency_p50_ms=[20.0, 5.0], latency_p95_ms=[60.0, 15.0],
            utilisation=[0.1 * (tick % 10), 0.2], replicas=[3.0, 2.0],
        )  # fmt: skip
    return rec


def at(hours: int) -> datetime:
    return START + timedelta(hours=hours)


def test_tables_builds_every_table_in_its_schema(log: EventLog):
    tables = log.tables(a_day_of_services())
    assert list(tables) == list(schemas.EVENT_TABLES)
    for name, frame in tables.items():
        assert has_schema(frame, schemas.EVENT_TABLES[name]), name
        assert frame.height > 0, name


def test_event_tables_hold_the_events_with_times_and_service_names(log: EventLog):
    tables = log.tables(a_day_of_services())
    deploys = tables["deploys"].sort("time")
    assert deploys.rows(named=True) == [
        {"time": at(0), "service": "api", "team": "web", "batch_size": 1, "failed": False,
         "lead_time_hours": 2.0},
        {"time": at(3), "service": "db", "team": "core", "batch_size": 4, "failed": True,
         "lead_time_hours": 5.5},
    ]  # fmt: skip
    incidents = tables["incidents"]
    assert incidents["incident_id"].to_list() == [2, 7], "in incident order"
    resolved = incidents.filter(pl.col("incident_id") == 7).row(0, named=True)
    assert resolved == {
        "incident_id": 7, "service": "db", "team": "core", "severity": 2, "cause": "deploy",
        "started": at(3), "detected": at(4), "resolved": at(10),
    }  # fmt: skip
    still_open = incidents.filter(pl.col("incident_id") == 2).row(0, named=True)
    assert (still_open["service"], still_open["resolved"]) == ("api", None)
    pages = tables["pages"]
    assert pages["time"].to_list() == [at(4), at(9)]
    assert pages["off_hours"].to_list() == [True, False]
    assert set(pages["incident_id"]) == {7}
    calls = {(r["caller"], r["callee"]): r["count"] for r in tables["calls"].iter_rows(named=True)}
    assert calls == {("api", "db"): 1234.5, ("db", "stripe"): 10.0}
    outage = tables["vendor_status"].row(0, named=True)
    assert outage == {"vendor": "stripe", "outage_start": at(20), "outage_end": at(23)}


def test_user_days_table_has_one_row_per_sampled_user_and_day(log: EventLog):
    days = log.tables(a_day_of_services())["user_days"].sort("day", "user")
    assert days["day"].to_list() == [date(2026, 1, 5), date(2026, 1, 5), date(2026, 1, 6)]
    assert days["user"].to_list() == [11, 12, 5]
    assert days["segment"].to_list() == ["pro", "pro", "free"]
    assert days["price"].to_list() == [20.0, 20.0, 0.0]
    assert days["sessions"].to_list() == [3, 0, 2] and days["errors"].to_list() == [1, 0, 0]
    assert days["latency"].to_list() == [180.0, 180.0, 90.0]
    assert days["churned"].to_list() == [False, True, False]
    assert days["tenure_days"].to_list() == [3.0, 40.0, 0.0]


def test_requests_table_is_every_service_hour_of_the_series(log: EventLog):
    rec = a_day_of_services()
    table = log.tables(rec)["requests"]
    assert table.height == 24 * 2
    assert table.select("time", "service").n_unique() == table.height
    api = table.filter(pl.col("service") == "api").sort("time")
    assert api["time"].to_list() == [at(h) for h in range(24)]
    np.testing.assert_allclose(api["requests"].to_numpy(), (1.0 + np.arange(24)) * 3600)
    np.testing.assert_allclose(api["errors"].to_numpy(), (1.0 + np.arange(24)) * 3600 * 0.01)
    np.testing.assert_allclose(api["cpu"].to_numpy(), rec.metric("service", "utilisation")[:, 0])
    assert set(api["latency_p95_ms"]) == {60.0} and set(api["replicas"]) == {3.0}
    db = table.filter(pl.col("service") == "db")
    assert set(db["errors"]) == {0.0} and set(db["requests"]) == {0.5 * 3600}


def test_tables_builds_only_the_tables_asked_for(log: EventLog):
    tables = log.tables(a_day_of_services(), only=["pages"])
    assert list(tables) == list(schemas.EVENT_TABLES)
    assert tables["pages"].height == 2
    for name, frame in tables.items():
        assert has_schema(frame, schemas.EVENT_TABLES[name]), name
        if name != "pages":
            assert frame.is_empty(), name


@pytest.mark.parametrize("only", [["page"], "pages", ["pages", "outages"]])
def test_tables_refuses_names_that_are_not_telemetry_tables(log: EventLog, only: object):
    with pytest.raises(RunError, match="tables must name telemetry tables"):
        log.tables(a_day_of_services(), only=only)  # type: ignore[arg-type]


def test_an_empty_log_gives_empty_tables_in_their_schemas():
    tables = EventLog(start=START, service_names=["api"]).tables(
        SeriesRecorder(0, {"service": ["api"]})
    )
    for name, frame in tables.items():
        assert frame.is_empty() and has_schema(frame, schemas.EVENT_TABLES[name]), name
