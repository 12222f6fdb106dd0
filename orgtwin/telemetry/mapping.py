"""Mapping files: how an organisation's own telemetry files become the twin's tables.

Real telemetry never matches :data:`~orgtwin.telemetry.schemas.TELEMETRY_TABLES` exactly.
A mapping file (YAML, safe-loaded and bounded like a scenario file) says, per table, which
files make it and how their columns become the table's fields::

    tables:
      customers:
        files: [Telco-Customer-Churn.csv]          # globs, relative to the folder read
        columns: {customer: customerID, price: MonthlyCharges, tenure_months: tenure,
                  segment: Contract, churned: Churn}   # field: source column
        values: {churned: {"Yes": true, "No": false}}  # field: {source value: value}
        drop: [TotalCharges]                       # source columns left out
      spans:
        files: ["trace/*_trace.csv.gz"]
        columns: {service: PodName, start: StartTimeUnixNano, duration_ms: Duration}
        extract: {service: '^(.+?)-[0-9a-f]+-[0-9a-z]+$'}  # field: regex, first group kept
        scale: {duration_ms: 0.001}                # field: factor (µs → ms)
        time: {start: {unit: ns}}                  # epoch numbers, or text (below)
        constants: {status: unset}                 # field: one value for every row

``time:`` says, per time field, either ``unit`` (``ns``, ``us``, ``ms`` or ``s``: epoch
numbers, with ``offset_s`` added for a shifted epoch) or ``format`` (``iso``, the default,
or a strftime format such as ``"%d/%m/%Y %H:%M"``), and ``timezone`` (an IANA name) for
text without an offset; every time becomes UTC, timezone-naive. The source column
``"@file"`` is the name of the file a row came from (for a ``key`` per file).
``files_relative_to: mapping`` resolves the globs against the mapping file's folder
instead of the telemetry folder.

Source columns no field names are kept as extra columns (covariates), except those in
``drop``. The mapped frame then goes through the same validation as any telemetry table
(:func:`orgtwin.telemetry.folder.read_telemetry`). Every problem in a mapping file is
found in one pass and raised as one :class:`~orgtwin.errors.TelemetryError`, each line
``file: tables.customers.columns.price must be …, got …``.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal, NamedTuple

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orgtwin.errors import ScenarioError, TelemetryError, did_you_mean
from orgtwin.scenario.checks import show
from orgtwin.scenario.load import read_yaml  # the bounded, strict YAML reader
from orgtwin.telemetry.schemas import TABLE_RULES, TELEMETRY_TABLES

__all__ = [
    "FILE_COLUMN",
    "Parsed",
    "TableMapping",
    "TelemetryMapping",
    "TimeSpec",
    "apply_mapping",
    "epoch_us",
    "load_mapping",
    "parse_column",
    "usable",
]

FILE_COLUMN = "@file"
"""The source column that holds the name of the file each row came from."""

Scalar = str | int | float | bool | None
_UNITS_PER_US = {"ns": (1, 1000), "us": (1, 1), "ms": (1000, 1), "s": (1_000_000, 1)}
"""Epoch unit → (multiply, divide) to microseconds."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeSpec(_Strict):
    """How one time field is written in the source.

    Attributes:
        unit: epoch numbers in ``ns``, ``us``, ``ms`` or ``s``; None for text.
        format: text as ``iso`` (ISO 8601, with or without an offset) or a strftime format.
        offset_s: seconds added to every epoch number (a shifted epoch: ``-200000000``).
        timezone: IANA time zone of text without an offset (default UTC).
    """

    unit: Literal["ns", "us", "ms", "s"] | None = None
    format: str = Field("iso", min_length=1, max_length=200)
    offset_s: float = Field(0.0, allow_inf_nan=False)
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in zoneinfo.available_timezones() | {"UTC"}:
            raise ValueError(f"must be an IANA time zone such as 'Europe/Berlin', got {value!r}")
        return value


class TableMapping(_Strict):
    """How one table is made from source files (fields: the module docstring)."""

    files: list[str] = Field(min_length=1, max_length=100)
    columns: dict[str, str] = {}
    constants: dict[str, Scalar] = {}
    values: dict[str, dict[str | int | float | bool, Scalar]] = {}
    extract: dict[str, str] = {}
    scale: dict[str, float] = {}
    time: dict[str, TimeSpec] = {}
    drop: list[str] = []
    separator: str = Field(",", min_length=1, max_length=1)

    @field_validator("extract")
    @classmethod
    def _one_group(cls, value: dict[str, str]) -> dict[str, str]:
        for field, pattern in value.items():
            try:
                groups = re.compile(pattern).groups
            except re.error as exc:
                raise ValueError(
                    f"{field} must be a regular expression, got {pattern!r}: {exc}"
                ) from None
            if groups < 1:
                raise ValueError(f"{field} must have a capturing group, got {pattern!r}")
        return value


class TelemetryMapping(_Strict):
    """A validated mapping file.

    Attributes:
        tables: per table name, how to make it.
        files_relative_to: ``folder`` (the telemetry folder read) or ``mapping`` (the
            mapping file's folder): what the ``files`` globs are relative to.
        source: the mapping file, as given (for messages); set by :func:`load_mapping`.
    """

    tables: dict[str, TableMapping] = Field(min_length=1)
    files_relative_to: Literal["folder", "mapping"] = "folder"
    source: str = Field("<mapping>", exclude=True)

    def base(self, folder: Path) -> Path:
        """The folder the ``files`` globs are relative to, when reading ``folder``."""
        if self.files_relative_to == "mapping" and self.source != "<mapping>":
            return Path(self.source).parent
        return folder


def load_mapping(path: str | os.PathLike[str]) -> TelemetryMapping:
    """Read and validate a mapping file, finding every problem in one pass.

    Args:
        path: the YAML file.

    Returns:
        The mapping, with ``source`` set to ``path`` as given.

    Raises:
        TelemetryError: the file cannot be read (not a regular file, over 1 MiB, not
            YAML, duplicate keys…) or does not describe a mapping: unknown tables or
            fields, bad units, time zones or patterns; the message lists every problem
            as ``file: path problem``.

    Example:
        >>> m = load_mapping("examples/telemetry/nyc_taxi.yaml")
        >>> list(m.tables)
        ['arrivals']
    """
    shown = os.fspath(path)
    try:
        data = read_yaml(Path(shown).resolve(), shown)
    except ScenarioError as exc:
        text = f"{exc.problem}{f' ({exc.hint})' if exc.hint else ''}"
        for scenario, mapping in _REWORDED:
            text = text.replace(scenario, mapping)
        raise TelemetryError(f"{shown}: {text}") from None
    problems = _shape_problems(data) + _field_problems(data)
    if problems:
        lines = [
            f"{shown}: {where} {problem}".replace(": ", ": ", 1) for where, problem in problems
        ]
        count = f"{len(lines)} problem{'s' if len(lines) > 1 else ''}"
        raise TelemetryError(f"{shown}: {count} in the mapping file", lines)
    mapping = TelemetryMapping.model_validate(data)
    return mapping.model_copy(update={"source": shown})


_REWORDED = (
    ("a scenario is", "a mapping file is"),
    ("scenarios are", "mapping files are"),
    ("scenario keys", "mapping keys"),
    ("to be a scenario", "to be a mapping file"),
)
"""The scenario reader's words, as a mapping file's."""


def _shape_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Pydantic's errors as ``(dotted path, problem)``."""
    try:
        TelemetryMapping.model_validate(data)
    except ValidationError as exc:
        return [_translate(err) for err in exc.errors(include_url=False)]
    return []


_WORDS = {
    "float_": "a number",
    "int_": "an integer",
    "bool_": "true or false",
    "string_type": "text",
    "dict_": "a mapping",
    "model_": "a mapping",
    "list_": "a list",
    "finite_number": "a finite number",
}


def _translate(err: Any) -> tuple[str, str]:
    loc = [p for p in err["loc"] if p not in ("str", "int", "float", "bool", "none")]
    loc = [p for p in loc if not str(p).startswith(("literal[", "function-after["))]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if err["type"] == "extra_forbidden":
        return path, "is not a known key"
    if err["type"] == "missing":
        return path, "is required"
    kind = str(err["type"])
    for prefix, words in _WORDS.items():
        if kind.startswith(prefix):
            return path, f"must be {words}, got {show(err['input'])}"
    if kind == "too_short":
        return path, f"must have at least {err['ctx']['min_length']} entry, got none"
    message = str(err.get("ctx", {}).get("error", err["msg"]))
    message = message.replace("Input should be", "must be").replace("Value error, ", "")
    if not message.startswith("must") and " must " in message:  # "field must …" from a validator
        field, _, message = message.partition(" ")
        path = f"{path}.{field}"
    got = (
        "" if err["type"].startswith(("value_error", "missing")) else f", got {show(err['input'])}"
    )
    return path, f"{message[:1].lower()}{message[1:]}{got}"


def _field_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Tables and fields that do not exist, and options that do not fit the field's type."""
    problems: list[tuple[str, str]] = []
    tables = data.get("tables")
    if not isinstance(tables, dict):
        return problems
    for table, spec in tables.items():
        if table not in TELEMETRY_TABLES:
            hint = (
                did_you_mean(str(table), TELEMETRY_TABLES)
                or f"tables: {', '.join(TELEMETRY_TABLES)}"
            )
            problems.append((f"tables.{table}", f"is not a telemetry table ({hint})"))
            continue
        if isinstance(spec, dict):
            problems += _table_field_problems(str(table), spec)
    return problems


def _table_field_problems(table: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    schema = TELEMETRY_TABLES[table]
    times = TABLE_RULES[table].times
    problems = []
    for option in ("columns", "constants", "values", "extract", "scale", "time"):
        fields = spec.get(option)
        if not isinstance(fields, dict):
            continue
        for field in fields:
            where = f"tables.{table}.{option}.{field}"
            if field not in schema:
                hint = did_you_mean(str(field), schema) or f"fields: {', '.join(schema)}"
                problems.append((where, f"is not a field of {table} ({hint})"))
            elif option == "time" and field not in times:
                problems.append(
                    (where, f"must be a time field ({', '.join(times)}), got {field!r}")
                )
            elif option == "scale" and schema[field] not in (pl.Float64, pl.Int64):
                problems.append((where, f"must be a numeric field, got {field!r}"))
    return problems


# --------------------------------------------------------------------------- applying


def apply_mapping(
    frame: pl.LazyFrame, spec: TableMapping, *, file_name: str
) -> tuple[pl.LazyFrame, list[tuple[str, str]]]:
    """Rename, derive and drop the columns of one source file's frame.

    Args:
        frame: the file's columns as read (CSV: all text).
        spec: the table's mapping.
        file_name: the file's name, the value of the ``"@file"`` source column.

    Returns:
        The frame with target field names (values still raw: parsing and scaling are
        :func:`orgtwin.telemetry.folder.read_telemetry`'s), and the problems found as
        ``(mapping path, problem)``: source columns the file lacks.
    """
    have = frame.collect_schema().names()
    problems = []
    for field, column in spec.columns.items():
        if column != FILE_COLUMN and column not in have:
            hint = did_you_mean(column, have)
            note = f" ({hint})" if hint else ""
            problems.append(
                (f"columns.{field}", f"names column {column!r}, which the file lacks{note}")
            )
    given = set(have) | set(spec.columns) | set(spec.constants)
    for option, fields in (("extract", spec.extract), ("values", spec.values)):
        problems += [
            (
                f"{option}.{field}",
                f"names field {field!r}, which neither columns: nor the file gives",
            )
            for field in fields
            if field not in given
        ]
    if problems:
        return frame, problems
    mapped = {
        field: pl.lit(file_name) if column == FILE_COLUMN else pl.col(column)
        for field, column in spec.columns.items()
    }
    used = set(spec.columns.values()) | set(spec.drop)
    kept = [c for c in have if c not in used and c not in mapped and c not in spec.constants]
    frame = frame.select(*kept, *(expr.alias(field) for field, expr in mapped.items()))
    frame = frame.with_columns(pl.lit(value).alias(f) for f, value in spec.constants.items())
    derived = [_extracted(f, p) for f, p in spec.extract.items()]
    derived += [_replaced(f, m) for f, m in spec.values.items()]
    for expr in derived:
        frame = frame.with_columns(expr)
    return frame, []


def _extracted(field: str, pattern: str) -> pl.Expr:
    text = pl.col(field).cast(pl.String)
    return text.str.extract(pattern, 1).fill_null(text).alias(field)


def _replaced(field: str, values: dict[Any, Scalar]) -> pl.Expr:
    old = [_text(k) for k in values]
    new = [None if v is None else _text(v) for v in values.values()]
    text = pl.col(field).cast(pl.String)
    return text.replace_strict(old, new, default=text, return_dtype=pl.String).alias(field)


def _text(value: Any) -> str:
    """A YAML scalar as the text a CSV would hold (``true``, ``3``, ``2.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return show(value) if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- parsing

_OFFSET = r"(Z|z|[+-]\d{2}:?\d{2})$"
_ISO_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M")
_TRUE_FALSE = {"true": True, "false": False, "t": True, "f": False, "1": True, "0": False}


class Parsed(NamedTuple):
    """One source column parsed into its field's type.

    Attributes:
        value: the typed column.
        bad: true where a value is present in the source but cannot be parsed.
        aware: for text times, true where the text carries a UTC offset, false where a
            time parsed without one (a file with both has mixed time zones), null where
            nothing parsed; None for other columns.
    """

    value: pl.Expr
    bad: pl.Expr
    aware: pl.Expr | None = None


def usable(raw: pl.DataType, target: pl.DataType, spec: TimeSpec | None) -> str | None:
    """Why a source column of type ``raw`` cannot become ``target``, or None if it can."""
    if raw.is_nested() or raw == pl.Binary or raw == pl.Object:
        return f"must be a column of plain values, got {raw}"
    if target in (pl.Date, pl.Datetime("us")) and (raw.is_numeric() and spec is None):
        return f"must be date-times or text, got {raw} (give its epoch unit in a mapping file)"
    return None


def parse_column(
    name: str, raw: pl.DataType, target: pl.DataType, spec: TimeSpec | None, scale: float | None
) -> Parsed:
    """Parse source column ``name`` (of type ``raw``) into ``target``.

    Text numbers and booleans (``true``/``false``/``1``/``0``) are parsed, times as
    described in :class:`TimeSpec` (ISO 8601 by default), numbers multiplied by ``scale``.
    """
    column = pl.col(name)
    present = column.is_not_null()
    if target in (pl.Date, pl.Datetime("us")):
        value, aware = _time(column, raw, spec or TimeSpec())
        if target == pl.Date:
            value = value.dt.date()
        return Parsed(value, present & value.is_null(), aware)
    if target == pl.Boolean and raw == pl.String:
        lowered = column.str.strip_chars().str.to_lowercase()
        value = lowered.replace_strict(_TRUE_FALSE, default=None, return_dtype=pl.Boolean)
    elif raw == pl.String and target != pl.String:
        value = column.str.strip_chars().cast(target, strict=False)
    else:
        value = column.cast(target, strict=False)
    if scale is not None:
        value = (value * scale).cast(target)
    return Parsed(value, present & value.is_null())


def _time(column: pl.Expr, raw: pl.DataType, spec: TimeSpec) -> tuple[pl.Expr, pl.Expr | None]:
    """A time column as UTC-naive microseconds, and whether it carried an offset (ISO text)."""
    if spec.unit is not None:
        number = column.str.strip_chars() if raw == pl.String else column
        return epoch_us(number, spec).cast(pl.Datetime("us")), None
    if isinstance(raw, pl.Datetime):
        value = (
            column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            if raw.time_zone
            else column
        )
        return value.cast(pl.Datetime("us")), None
    if raw == pl.Date:
        return column.cast(pl.Datetime("us")), None
    text = column.cast(pl.String).str.strip_chars()
    if spec.format != "iso":
        aware = "%z" in spec.format or "%:z" in spec.format
        value = text.str.to_datetime(spec.format, time_unit="us", strict=False)
        if aware:
            return value.dt.convert_time_zone("UTC").dt.replace_time_zone(None), None
        return _localised(value, spec.timezone), None
    offset = text.str.extract(_OFFSET, 1)
    body = text.str.replace(_OFFSET, "").str.strip_chars().str.replace("T", " ", literal=True)
    local = pl.coalesce(
        *(body.str.to_datetime(f, time_unit="us", strict=False) for f in _ISO_FORMATS),
        body.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")),
    )
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    digits = offset.str.replace_all(r"[^0-9]", "")
    hours = digits.str.slice(0, 2).cast(pl.Int64, strict=False)
    minutes = hours * 60 + digits.str.slice(2, 2).cast(pl.Int64, strict=False)
    shift = pl.duration(minutes=(sign * minutes).fill_null(0))
    value = (
        pl.when(offset.is_null()).then(_localised(local, spec.timezone)).otherwise(local - shift)
    )
    aware = pl.when(offset.is_not_null()).then(True).when(local.is_not_null()).then(False)
    return value, aware


def _localised(value: pl.Expr, timezone: str | None) -> pl.Expr:
    """Naive local times in ``timezone`` as naive UTC (a time a clock skips: null)."""
    if timezone is None or timezone == "UTC":
        return value
    zoned = value.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    return zoned.dt.convert_time_zone("UTC").dt.replace_time_zone(None)


def epoch_us(number: pl.Expr, spec: TimeSpec) -> pl.Expr:
    """Epoch numbers (in ``spec.unit``, shifted by ``spec.offset_s``) as microseconds.

    Whole numbers (text or integers) convert exactly, nanoseconds included; fractions
    through floating point.
    """
    multiply, divide = _UNITS_PER_US[spec.unit or "s"]
    whole = number.cast(pl.Int64, strict=False)
    real = number.cast(pl.Float64, strict=False)
    exact = whole * multiply // divide
    approx = (real * multiply / divide).round(0).cast(pl.Int64, strict=False)
    offset = round(spec.offset_s * 1_000_000)
    return pl.when(whole.cast(pl.Float64) == real).then(exact).otherwise(approx) + offset
