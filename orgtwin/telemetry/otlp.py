"""OpenTelemetry spans exported as OTLP JSON, read into the ``spans`` table.

The OpenTelemetry Collector's file exporter (``format: json``) writes one
``ExportTraceServiceRequest`` per line: ``resourceSpans[] → scopeSpans[] → spans[]``, the
service's name in the resource attribute ``service.name``. Following the OTLP/JSON
specification, ``traceId``, ``spanId`` and ``parentSpanId`` are **hex** text (not the
base64 of protobuf's default JSON mapping), times are nanoseconds since the epoch written
as decimal text, and ``status.code`` is an integer (0 unset, 1 ok, 2 error). This reader
also accepts base64 ids (what ``google.protobuf.json_format`` writes) and enum names
(``STATUS_CODE_ERROR``), so files written either way read the same.

In a telemetry folder, files named ``spans.otlp.json`` / ``spans.otlp.jsonl``, any
``*.otlp.json`` / ``*.otlp.jsonl`` file at the top of the folder, and such files inside a
``spans/`` subfolder are read as spans. A span's row number is its position in the file
(1-based, in file order).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import polars as pl

from orgtwin.errors import TelemetryError
from orgtwin.telemetry.schemas import SPANS

__all__ = ["OTLP_SUFFIXES", "read_otlp_spans"]

OTLP_SUFFIXES = (".otlp.json", ".otlp.jsonl")
"""File name endings read as OTLP JSON spans."""
MAX_LINE_BYTES = 64 * 1024 * 1024
"""Longest line (one export request) read, in bytes."""

_HEX = re.compile(r"^[0-9a-fA-F]*$")
_STATUS = {
    0: "unset",
    1: "ok",
    2: "error",
    "STATUS_CODE_UNSET": "unset",
    "STATUS_CODE_OK": "ok",
    "STATUS_CODE_ERROR": "error",
}


def read_otlp_spans(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Read an OTLP JSON file (one export request per line) into the ``spans`` schema.

    Args:
        path: the file.

    Returns:
        One row per span, the columns of :data:`~orgtwin.telemetry.schemas.SPANS` plus
        ``kind`` (the span kind, an integer or its name as written) and ``__row`` (the
        span's position in the file, from 1). A root span has a null ``parent_id``.

    Raises:
        TelemetryError: a line is not JSON, is not an export request, or is too long;
            the message names the file and the line.
    """
    shown = os.fspath(path)
    rows = list(_spans(shown))
    schema = {**SPANS, "kind": pl.String, "__row": pl.UInt32}
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(rows, schema={**schema, "start": pl.Int64, "end": pl.Int64}, orient="row")
    start = pl.col("start")
    return frame.select(
        *(c for c in SPANS if c not in ("start", "duration_ms")),
        (start // 1000).cast(pl.Datetime("us")).alias("start"),
        ((pl.col("end") - start) / 1e6).alias("duration_ms"),
        "kind",
        "__row",
    ).select(*schema)


def _spans(shown: str) -> Iterator[tuple[Any, ...]]:
    """Every span of the file, as a row of the frame :func:`read_otlp_spans` builds."""
    n = 0
    with open(shown, "rb") as handle:
        for number, line in enumerate(_lines(handle, shown), start=1):
            if not line.strip():
                continue
            for resource in _request(line, shown, number).get("resourceSpans") or []:
                service = _service(resource.get("resource") or {})
                for scope in resource.get("scopeSpans") or []:
                    for span in scope.get("spans") or []:
                        n += 1
                        yield _row(span, service, n)


def _lines(handle: Any, shown: str) -> Iterator[bytes]:
    while line := handle.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES:
            limit = MAX_LINE_BYTES // 1024 // 1024
            raise TelemetryError(f"{shown}: has a line longer than {limit} MiB")
        yield line


def _request(line: bytes, shown: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise TelemetryError(f"{shown}: line {number} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("resourceSpans", []), list):
        raise TelemetryError(
            f"{shown}: line {number} must be an OTLP ExportTraceServiceRequest "
            "(an object with resourceSpans), got something else"
        )
    return data


def _service(resource: dict[str, Any]) -> str | None:
    for attribute in resource.get("attributes") or []:
        if attribute.get("key") == "service.name":
            value = attribute.get("value") or {}
            return value.get("stringValue")
    return None


def _row(span: dict[str, Any], service: str | None, n: int) -> tuple[Any, ...]:
    status = (span.get("status") or {}).get("code", 0)
    kind = span.get("kind")
    return (
        hex_id(span.get("traceId"), 16),
        hex_id(span.get("spanId"), 8),
        hex_id(span.get("parentSpanId"), 8),
        service,
        span.get("name"),
        _nanos(span.get("startTimeUnixNano")),
        None,
        _STATUS.get(status, str(status)),
        None if kind is None else str(kind),
        n,
        _nanos(span.get("endTimeUnixNano")),
    )


def hex_id(value: Any, n_bytes: int) -> str | None:
    """A trace or span id as lower-case hex: from hex (OTLP/JSON) or base64 (protobuf JSON).

    An empty id (a root span's parent) is None; an id that is neither is kept as written,
    so that validation can name it.
    """
    if not isinstance(value, str) or not value or value.strip("0") == "":
        return None
    if len(value) == 2 * n_bytes and _HEX.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.hex() if len(raw) == n_bytes else value


def _nanos(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
