"""OTLP JSON spans (orgtwin/telemetry/otlp.py), written by the OpenTelemetry SDK itself.

Real spans are recorded with ``opentelemetry-sdk`` (an in-memory exporter), encoded with
the OTLP exporter's own ``encode_spans`` and written one ExportTraceServiceRequest per
line with protobuf's JSON mapping. The Collector's file exporter follows the OTLP/JSON
spec (hex ids, integer enums), protobuf's default mapping does not (base64 ids, enum
names): both read into the same spans table, with service, parent, status and duration.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from pathlib import Path

import polars as pl
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import Status, StatusCode

from orgtwin.errors import TelemetryError
from orgtwin.telemetry.folder import read_telemetry
from orgtwin.telemetry.otlp import hex_id, read_otlp_spans

EPOCH = dt.datetime(1970, 1, 1)


def record_spans() -> list:
    """A web request calling the database twice, the second call failing; a second trace."""
    finished: list = []
    for service in ("web", "batch"):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("orgtwin.tests")
        with tracer.start_as_current_span(f"{service} root"):
            with tracer.start_as_current_span("query"):
                time.sleep(0.002)
            with tracer.start_as_current_span("query") as failing:
                failing.set_status(Status(StatusCode.ERROR, "timeout"))
        finished.append(exporter.get_finished_spans())
    return finished


def collector_line(spans) -> str:
    """One line as the Collector's file exporter writes it: hex ids, integer enums."""
    request = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource in request["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(request)


def protobuf_line(spans) -> str:
    """One line in protobuf's default JSON mapping: base64 ids, enum names."""
    return json.dumps(MessageToDict(encode_spans(spans)))


@pytest.fixture(scope="module")
def recorded() -> list:
    return record_spans()


def test_collector_json_reads_into_the_spans_table(tmp_path: Path, recorded) -> None:
    (tmp_path / "spans.otlp.jsonl").write_text("\n".join(collector_line(s) for s in recorded))
    telemetry = read_telemetry(tmp_path)
    spans = telemetry.tables["spans"].collect()
    assert spans.height == 6 and telemetry.rows == {"spans": 6}
    sdk = {format(s.context.span_id, "016x"): s for batch in recorded for s in batch}
    assert set(spans["span_id"]) == set(sdk)
    for row in spans.iter_rows(named=True):
        span = sdk[row["span_id"]]
        assert row["trace_id"] == format(span.context.trace_id, "032x")
        assert row["parent_id"] == (span.parent and format(span.parent.span_id, "016x"))
        assert row["operation"] == span.name
        assert row["duration_ms"] == pytest.approx((span.end_time - span.start_time) / 1e6)
        assert row["start"] == EPOCH + dt.timedelta(microseconds=span.start_time // 1000)
    web = spans.filter(pl.col("service") == "web").sort("start")
    assert web["status"].to_list() == ["unset", "unset", "error"]
    assert web.filter(pl.col("parent_id").is_null())["operation"].to_list() == ["web root"]
    assert web.filter(pl.col("operation") == "query")["duration_ms"].max() >= 2


def test_protobuf_default_json_reads_the_same(tmp_path: Path, recorded) -> None:
    hexed, based = tmp_path / "a.otlp.jsonl", tmp_path / "b.otlp.jsonl"
    hexed.write_text("\n".join(collector_line(s) for s in recorded) + "\n")
    based.write_text("\n".join(protobuf_line(s) for s in recorded) + "\n")
    columns = ["trace_id", "span_id", "parent_id", "service", "start", "status"]
    assert read_otlp_spans(hexed).select(columns).equals(read_otlp_spans(based).select(columns))


def test_spans_subfolder_mixes_otlp_and_csv(tmp_path: Path, recorded) -> None:
    (tmp_path / "spans").mkdir()
    (tmp_path / "spans" / "batch1.otlp.json").write_text(collector_line(recorded[0]))
    (tmp_path / "spans" / "extra.csv").write_text(
        "trace_id,span_id,parent_id,service,operation,start,duration_ms,status\n"
        "t9,s9,,cron,tick,2024-01-01T00:00:00Z,1,ok\n"
    )
    spans = read_telemetry(tmp_path).tables["spans"].collect()
    assert spans.height == 4 and "cron" in spans["service"].to_list()


def test_a_line_that_is_not_otlp_is_named(tmp_path: Path, recorded) -> None:
    path = tmp_path / "spans.otlp.jsonl"
    path.write_text(collector_line(recorded[0]) + "\n{not json\n")
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(tmp_path)
    assert f"{path}: line 2 is not JSON" in str(caught.value)


def test_a_span_without_ids_is_named_by_its_position(tmp_path: Path, recorded) -> None:
    request = json.loads(collector_line(recorded[0]))
    del request["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"]
    path = tmp_path / "spans.otlp.jsonl"
    path.write_text(json.dumps(request))
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(tmp_path)
    assert caught.value.problems == [
        f"{path}: spans.span_id row 2 must not be null (a key of spans)"
    ]


def test_ids_hex_or_base64() -> None:
    raw = bytes(range(8))
    assert hex_id(raw.hex(), 8) == hex_id(base64.b64encode(raw).decode(), 8) == raw.hex()
    assert hex_id("", 8) is None and hex_id("0000000000000000", 8) is None
    assert hex_id("not an id", 8) == "not an id"
