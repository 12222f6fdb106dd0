"""Telemetry folders: read an organisation's telemetry into typed tables, validated; write one.

A telemetry folder holds one entry per table of
:data:`~orgtwin.telemetry.schemas.TELEMETRY_TABLES`: ``<table>.parquet``,
``<table>.csv`` or ``<table>.csv.gz``, or a subfolder ``<table>/`` of such files (read
together, in name order). Spans may also come as OTLP JSON (:mod:`orgtwin.telemetry.otlp`).
Anything else is ignored and listed in :attr:`Telemetry.ignored`. A mapping file
(:mod:`orgtwin.telemetry.mapping`) says how files of another shape make the tables.

Reading is lazy: CSV and Parquet files are scanned, never loaded whole; validation runs as
streaming aggregations (one per file, one over the ids), and only the first problem rows
are materialised.
Every table is checked against its schema and its :class:`~orgtwin.telemetry.schemas.TableRules`:

- table problems: a file that cannot be read, a missing column, a column of a type that
  cannot hold the field (nested values; epoch numbers without a unit);
- row problems, each named by file, table, column and row (1-based within its file,
  header excluded): a value that cannot be parsed into the field's type, an unparseable
  time, a time without a UTC offset among times with one (mixed time zones), a null key,
  a negative count or duration, an end before its start, a duplicate id.

Every problem of every table is found in one pass and raised as one
:class:`~orgtwin.errors.TelemetryError` (at most :data:`MAX_LISTED` lines per table, the
rest counted). With ``drop_bad_rows=True`` rows with row problems are dropped instead and
counted per reason in :attr:`Telemetry.dropped`; table problems still raise. Nothing is
dropped silently.

Files are bounded: only regular files are read, and with symbolic links followed every
file must lie inside the folder read (or the mapping's base folder).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import polars as pl

from orgtwin.errors import TelemetryError, did_you_mean
from orgtwin.scenario.checks import show
from orgtwin.telemetry import mapping as mapping_
from orgtwin.telemetry.otlp import OTLP_SUFFIXES, read_otlp_spans
from orgtwin.telemetry.schemas import TABLE_RULES, TELEMETRY_TABLES
from orgtwin.units import DAYS_PER_MONTH

__all__ = ["MAX_LISTED", "TABLE_SUFFIXES", "Telemetry", "read_telemetry", "write_telemetry"]

TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz")
"""File endings read as a table (besides OTLP JSON for spans)."""
MAX_LISTED = 20
"""Problems listed per table in an error; past them, the rest are counted."""
REASONS = (
    "wrong type",
    "unparseable time",
    "mixed time zones",
    "null key",
    "unknown value",
    "negative",
    "end before start",
    "duplicate id",
)
"""Why a row can be bad: the keys of :attr:`Telemetry.dropped`."""

_ROW, _FILE = "__row", "__file"
_FLAG, _RAW, _ZONE, _NULL = "__bad", "__raw", "__zone", "__null"


@dataclass
class Telemetry:
    """Telemetry read from a folder: typed lazy tables and what was read to make them.

    Attributes:
        tables: per table found, a LazyFrame with the table's schema (columns in schema
            order, optional columns the source lacks all null) then the source's extra
            columns (CSV: as text).
        files: per table, the files it was read from.
        dropped: per table, rows dropped by reason (``drop_bad_rows=True``; a row with two
            kinds of problem counts under both). Empty when nothing was dropped.
        rows: per table, rows read (before any drop).
        ignored: entries of the folder that are no table's file.
    """

    tables: dict[str, pl.LazyFrame]
    files: dict[str, list[Path]]
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    ignored: list[Path] = field(default_factory=list)

    def since(self, start: datetime) -> Telemetry:
        """The same telemetry from ``start`` on (lazily): each table's rows at or after
        it by the table's first time column (``requests.time``, ``incidents.started``,
        ``user_days.day``…); customers still customers then, watched from then (their
        ``entry_tenure_months`` raised to their tenure at ``start`` where ``start`` is
        known). Tables without time (``calls``) are kept whole."""
        at = pl.lit(start, dtype=pl.Datetime("us"))
        tables = {}
        for name, frame in self.tables.items():
            times = TABLE_RULES[name].times if name in TABLE_RULES else ()
            if name == "customers":
                tenure_then = (
                    (at - pl.col("start").cast(pl.Datetime("us"))).dt.total_seconds()
                    / 86400.0
                    / (DAYS_PER_MONTH)
                )
                frame = frame.filter(
                    pl.col("end").is_null() | (pl.col("end").cast(pl.Datetime("us")) >= at)
                ).with_columns(
                    entry_tenure_months=pl.max_horizontal(
                        pl.col("entry_tenure_months").fill_null(0.0),
                        tenure_then.clip(0.0).fill_null(0.0),
                    )
                )
            elif times:
                frame = frame.filter(pl.col(times[0]).cast(pl.Datetime("us")) >= at)
            tables[name] = frame
        return replace(self, tables=tables)

    def between(self, start: datetime, end: datetime) -> Telemetry:
        """The same telemetry in ``[start, end)`` (lazily): :meth:`since` ``start``, then
        each table's rows before ``end`` by its first time column (``customers`` and
        tables without time are kept as :meth:`since` leaves them)."""
        at = pl.lit(end, dtype=pl.Datetime("us"))
        tables = {}
        for name, frame in self.since(start).tables.items():
            times = TABLE_RULES[name].times if name in TABLE_RULES else ()
            if times and name != "customers":
                frame = frame.filter(pl.col(times[0]).cast(pl.Datetime("us")) < at)
            tables[name] = frame
        return replace(self, tables=tables)


def read_telemetry(
    folder: str | os.PathLike[str],
    *,
    mapping: str | os.PathLike[str] | None = None,
    drop_bad_rows: bool = False,
) -> Telemetry:
    """Read and validate a telemetry folder.

    Args:
        folder: the folder.
        mapping: a mapping file saying how its files make the tables (tables it does not
            map are read by name from the folder, as without one).
        drop_bad_rows: drop rows with row problems (counted per reason) instead of raising.

    Returns:
        The tables found, typed and lazy, with the files read, rows read and dropped.

    Raises:
        TelemetryError: the folder or mapping cannot be read, or any table has problems
            (with ``drop_bad_rows``: table problems only); one error lists them all.

    Example:
        >>> import tempfile
        >>> from datetime import datetime
        >>> folder = Path(tempfile.mkdtemp()) / "telemetry"
        >>> arrivals = pl.DataFrame({"time": [datetime(2024, 1, 1)], "count": [3.0]})
        >>> write_telemetry(folder, {"arrivals": arrivals})
        >>> telemetry = read_telemetry(folder)
        >>> telemetry.rows, telemetry.tables["arrivals"].collect().columns
        ({'arrivals': 1}, ['time', 'count', 'key'])
    """
    shown = os.fspath(folder)
    root = Path(shown)
    if not root.is_dir():
        raise TelemetryError(f"{shown}: must be a telemetry folder, got {_kind(root)}")
    spec = None if mapping is None else mapping_.load_mapping(mapping)
    files, ignored, problems = _files(root, spec)
    telemetry = Telemetry(tables={}, files=files, ignored=ignored)
    unlisted = 0  # problems counted, not listed, beyond the line that counts them
    for table, paths in files.items():
        table_spec = spec.tables.get(table) if spec else None
        found, more = _read_table(telemetry, table, paths, table_spec, drop_bad_rows)
        problems += found
        unlisted += more
    if problems:
        total = len(problems) + unlisted
        count = f"{total:,} problem{'s' if total != 1 else ''}"
        raise TelemetryError(f"{shown}: {count} in the telemetry", problems)
    return telemetry


def write_telemetry(folder: str | os.PathLike[str], tables: dict[str, pl.DataFrame]) -> None:
    """Write tables as a telemetry folder of Parquet files, atomically.

    The tables are written into a temporary folder beside ``folder``, which then takes
    its place: a reader sees the old folder or the new one, never half of one.

    Args:
        folder: the folder to write; an existing one is replaced if it is a telemetry
            folder (every entry a table's file) or empty.
        tables: DataFrames by table name (names of
            :data:`~orgtwin.telemetry.schemas.TELEMETRY_TABLES`).

    Raises:
        TelemetryError: an unknown table name, or ``folder`` exists and is not a
            telemetry folder (nothing is written then).
    """
    shown = os.fspath(folder)
    target = Path(shown)
    unknown = [name for name in tables if name not in TELEMETRY_TABLES]
    if unknown:
        hint = (
            did_you_mean(unknown[0], TELEMETRY_TABLES) or f"tables: {', '.join(TELEMETRY_TABLES)}"
        )
        raise TelemetryError(f"{shown}: {unknown[0]!r} is not a telemetry table ({hint})")
    if target.exists() or target.is_symlink():
        _check_replaceable(target, shown)
    temp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temp.mkdir(parents=True)
    try:
        for name, frame in tables.items():
            frame.write_parquet(temp / f"{name}.parquet")
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            temp.rename(target)
            shutil.rmtree(old)
        else:
            temp.rename(target)
    finally:
        if temp.exists():
            shutil.rmtree(temp)


# --------------------------------------------------------------------------- finding files


def _table_of(entry: Path) -> str | None:
    """The table a top-level folder entry holds, or None (by its name; not followed)."""
    name = entry.name
    if entry.is_dir() and not entry.is_symlink():
        return name if name in TELEMETRY_TABLES else None
    for suffix in TABLE_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in TELEMETRY_TABLES:
            return name[: -len(suffix)]
    return "spans" if name.endswith(OTLP_SUFFIXES) else None


def _files(
    root: Path, spec: mapping_.TelemetryMapping | None
) -> tuple[dict[str, list[Path]], list[Path], list[str]]:
    """Files per table, the entries ignored, and problems (bad globs, unsafe files)."""
    files: dict[str, list[Path]] = {}
    ignored: list[Path] = []
    problems: list[str] = []
    mapped = set(spec.tables) if spec else set()
    for entry in sorted(root.iterdir()):
        table = _table_of(entry)
        if table is None or table in mapped:
            ignored.append(entry)
        elif entry.is_dir():
            inside = sorted(p for p in entry.iterdir() if p.name.endswith(_SUFFIXES[table]))
            ignored += sorted(set(entry.iterdir()) - set(inside))
            files.setdefault(table, []).extend(inside)
        else:
            files.setdefault(table, []).append(entry)
    if spec:
        base = spec.base(root)
        for table, table_spec in spec.tables.items():
            files[table] = _globbed(base, table, table_spec, spec.source, problems)
        used = [path.resolve() for paths in files.values() for path in paths]
        ignored = [e for e in ignored if not any(_inside(p, e.resolve()) for p in used)]
    for table, paths in files.items():
        inside = spec.base(root) if spec and table in mapped else root
        unsafe = {path: why for path in paths if (why := _unsafe(path, inside, table))}
        problems += unsafe.values()
        files[table] = [path for path in paths if path not in unsafe]  # never opened
    return files, ignored, problems


_SUFFIXES = {table: TABLE_SUFFIXES for table in TELEMETRY_TABLES}
_SUFFIXES["spans"] = TABLE_SUFFIXES + OTLP_SUFFIXES


def _globbed(
    base: Path, table: str, spec: mapping_.TableMapping, source: str, problems: list[str]
) -> list[Path]:
    found: list[Path] = []
    for i, pattern in enumerate(spec.files):
        where = f"{source}: tables.{table}.files[{i}]"
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            problems.append(f"{where} must be a pattern inside {base}, got {pattern!r}")
            continue
        matches = sorted(p for p in base.glob(pattern) if p.name.endswith(_SUFFIXES[table]))
        if not matches:
            problems.append(f"{where} matches no CSV, CSV.gz or Parquet file in {base}")
        found += [p for p in matches if p not in found]
    return found


def _unsafe(path: Path, root: Path, table: str) -> str | None:
    """Why a file may not be read (outside the folder, not a regular file), or None."""
    resolved = path.resolve()
    if not _inside(resolved, root.resolve()):
        return f"{path}: {table} file lies outside the folder (through a symbolic link); refused"
    if not resolved.is_file():
        return f"{path}: {table} file must be a regular file, got {_kind(resolved)}"
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _kind(path: Path) -> str:
    if not path.exists():
        return "nothing (it does not exist)"
    return "a folder" if path.is_dir() else "a file" if path.is_file() else "a special file"


def _check_replaceable(target: Path, shown: str) -> None:
    if target.is_symlink() or not target.is_dir():
        raise TelemetryError(f"{shown}: must be a folder to write telemetry into, got a file")
    strangers = [e.name for e in target.iterdir() if _table_of(e) is None]
    if strangers:
        raise TelemetryError(
            f"{shown}: is not a telemetry folder (it holds {', '.join(sorted(strangers)[:5])}); "
            "refusing to replace it"
        )


# --------------------------------------------------------------------------- one table


def _scan(path: Path, separator: str) -> pl.LazyFrame:
    """One file, lazily, with its row numbers (CSV: every column as text)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pl.scan_parquet(path).with_row_index(_ROW, offset=1)
    if name.endswith(OTLP_SUFFIXES):
        return read_otlp_spans(path).lazy()
    return pl.scan_csv(
        path, infer_schema=False, separator=separator, row_index_name=_ROW, row_index_offset=1
    )


def _read_table(
    telemetry: Telemetry,
    table: str,
    paths: list[Path],
    spec: mapping_.TableMapping | None,
    drop: bool,
) -> tuple[list[str], int]:
    """Read, parse and check one table into ``telemetry``; return its problems (and how
    many more the last line counts, beyond itself)."""
    frames, problems = [], []
    for i, path in enumerate(paths):
        frame, found = _parsed_file(table, path, i, spec)
        problems += found
        if frame is not None:
            frames.append(frame)
    if problems or not frames:
        return problems, 0
    combined = pl.concat(frames, how="diagonal_relaxed")
    kept = _schema_columns(combined, table)
    try:
        # file by file: one pass over all files at once holds several files' rows in memory
        per_file = pl.concat([_count_per_file(f) for f in frames], how="diagonal_relaxed")
        duplicates = {c: _duplicates(combined, c) for c in TABLE_RULES[table].unique}
    except pl.exceptions.PolarsError as exc:
        return [_unreadable(frames, paths, table, exc)], 0
    telemetry.rows[table] = int(per_file["__len"].sum())
    flags = [c for c in per_file.columns if c.startswith(_FLAG)]
    bad = {f: int(per_file[f].sum()) for f in flags if per_file[f].sum()}
    combined = _second_pass_flags(combined, per_file, duplicates, bad)
    flags = list(bad)
    if bad and not drop:
        return _row_problems(combined, table, paths, bad)
    if bad:
        any_bad = pl.any_horizontal(flags)
        telemetry.dropped[table] = _dropped(combined, flags)
        combined = combined.filter(~any_bad)
    telemetry.tables[table] = combined.select(kept)
    return [], 0


def _count_per_file(frame: pl.LazyFrame) -> pl.DataFrame:
    """One streaming pass (of one file's frame, or several): per file, rows, rows per
    problem flag, and times with and without a UTC offset per time column."""
    names = frame.collect_schema().names()
    zones = [c for c in names if c.startswith(_ZONE)]
    return (
        frame.group_by(_FILE)
        .agg(
            pl.len().alias("__len"),
            *(pl.col(c).sum() for c in names if c.startswith(_FLAG)),
            *(pl.col(z).sum().alias(f"{z}|aware") for z in zones),
            *((~pl.col(z)).sum().alias(f"{z}|naive") for z in zones),
        )
        .collect(engine="streaming")
    )


def _duplicates(frame: pl.LazyFrame, column: str) -> int:
    """Rows whose id an earlier row has. Ids whose 64-bit hashes all differ are distinct,
    which one count of the hashes shows; only otherwise (a duplicate, or two ids sharing
    a hash) are the ids themselves grouped, a group-by many times larger."""
    ids = frame.select(column).filter(pl.col(column).is_not_null())
    hashes = ids.select(pl.len(), pl.col(column).hash().n_unique().alias("distinct"))
    found = hashes.collect(engine="streaming")
    if found["len"][0] == found["distinct"][0]:
        return 0
    counts = frame.group_by(column).agg(pl.len()).filter(pl.col(column).is_not_null())
    extra = counts.select((pl.col("len") - 1).sum()).collect(engine="streaming")
    return int(extra[0, 0] or 0)


def _second_pass_flags(
    frame: pl.LazyFrame, per_file: pl.DataFrame, duplicates: dict[str, int], bad: dict[str, int]
) -> pl.LazyFrame:
    """Add the flags the first pass could only count: duplicate ids and times without an
    offset in files whose other times carry one. ``bad`` gains their counts."""
    for column, n in duplicates.items():
        if n:
            duplicate = pl.col(column).is_not_null() & ~pl.col(column).is_first_distinct()
            frame = frame.with_columns(duplicate.alias(_flag("duplicate id", column)))
            bad[_flag("duplicate id", column)] = n
    for name in per_file.columns:
        if not name.startswith(_ZONE) or not name.endswith("|aware"):
            continue
        zone = name.removesuffix("|aware")
        mixed = per_file.filter((pl.col(name) > 0) & (pl.col(f"{zone}|naive") > 0))
        if mixed.height:
            flag = _flag("mixed time zones", zone.removeprefix(_ZONE))
            naive = ~pl.col(zone) & pl.col(_FILE).is_in(mixed[_FILE].to_list())
            frame = frame.with_columns(naive.fill_null(False).alias(flag))
            bad[flag] = int(mixed[f"{zone}|naive"].sum())
    return frame


def _unreadable(frames: list[pl.LazyFrame], paths: list[Path], table: str, exc: Exception) -> str:
    """The file whose rows polars could not read (malformed CSV), found file by file."""
    for frame, path in zip(frames, paths, strict=True):  # noqa: B007 (the path found)
        try:
            frame.select(pl.all().exclude(_ROW).is_null().sum()).collect(engine="streaming")
        except pl.exceptions.PolarsError as found:
            exc = found
            break
    else:
        path = paths[0].parent
    message = str(exc).strip().splitlines()[0]
    return f"{path}: {table} file cannot be read: {message}"


def _parsed_file(
    table: str, path: Path, index: int, spec: mapping_.TableMapping | None
) -> tuple[pl.LazyFrame | None, list[str]]:
    """One file's frame with typed fields, raw values and problem flags, or its problems."""
    try:
        frame = _scan(path, spec.separator if spec else ",")
        names = frame.collect_schema().names()
    except TelemetryError as exc:
        return None, [str(exc.args[0])]
    except (pl.exceptions.PolarsError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, [f"{path}: {table} file cannot be read: {message}"]
    if not [n for n in names if n != _ROW]:
        return None, [f"{path}: {table} file has no columns"]
    try:
        if spec is not None:
            frame, found = mapping_.apply_mapping(frame, spec, file_name=path.name)
            if found:
                return None, [f"{path}: mapping {table}.{w} {p}" for w, p in found]
        return _typed(frame, table, path, index, spec)
    except pl.exceptions.PolarsError as exc:  # a plan polars refuses: say so, by file
        message = str(exc).strip().splitlines()[0]
        return None, [f"{path}: {table} file cannot be read as mapped: {message}"]


def _typed(
    frame: pl.LazyFrame, table: str, path: Path, index: int, spec: mapping_.TableMapping | None
) -> tuple[pl.LazyFrame | None, list[str]]:
    schema, rules = TELEMETRY_TABLES[table], TABLE_RULES[table]
    raw = frame.collect_schema()
    have = [c for c in raw.names() if c != _ROW]
    missing = [c for c in schema if c not in raw and c not in rules.optional]
    problems = [_missing(path, table, missing, have)] if missing else []
    for column, dtype in schema.items():
        time = spec.time.get(column) if spec else None
        if column in raw and (why := mapping_.usable(raw[column], dtype, time)):
            problems.append(f"{path}: {table}.{column} {why}")
    if problems:
        return None, problems
    values, flags, raws = [], [], []
    for column, dtype in schema.items():
        if column not in raw:
            values.append(pl.lit(None, dtype).alias(column))
            continue
        time = spec.time.get(column) if spec else None
        scale = spec.scale.get(column) if spec else None
        parsed = mapping_.parse_column(column, raw[column], dtype, time, scale)
        values.append(parsed.value.alias(column))
        raws.append(pl.col(column).cast(pl.String).alias(f"{_RAW}{column}"))
        if column in rules.keys:  # cheaper than the raw text, which only messages need
            raws.append(pl.col(column).is_null().alias(f"{_NULL}{column}"))
        reason = "unparseable time" if column in rules.times else "wrong type"
        flags.append(parsed.bad.alias(_flag(reason, column)))
        if parsed.aware is not None:
            flags.append(parsed.aware.alias(f"{_ZONE}{column}"))
    extras = [c for c in have if c not in schema]
    typed = frame.select(
        pl.lit(index, pl.Int32).alias(_FILE), pl.col(_ROW), *values, *extras, *raws, *flags
    )
    return typed.with_columns(_rule_flags(table)), []


def _missing(path: Path, table: str, missing: list[str], have: list[str]) -> str:
    """``file: table is missing column 'x' (did you mean 'y'?)``, for one or several."""
    hint = did_you_mean(missing[0], have) if len(missing) == 1 else None
    shown = ", ".join(have[:12]) + (", …" if len(have) > 12 else "")
    columns = (
        f"column {missing[0]!r}"
        if len(missing) == 1
        else "columns " + ", ".join(map(repr, missing))
    )
    return f"{path}: {table} is missing {columns} ({hint or f'it has: {shown}'})"


def _rule_flags(table: str) -> list[pl.Expr]:
    """Flags for the table's rules on typed values: null keys, negatives, order."""
    rules = TABLE_RULES[table]
    # a key that is there but cannot be parsed is a wrong type, not also a null key
    flags = [pl.col(f"{_NULL}{c}").alias(_flag("null key", c)) for c in rules.keys]
    flags += [
        (pl.col(c) < 0).fill_null(False).alias(_flag("negative", c)) for c in rules.non_negative
    ]
    flags += [
        (~pl.col(c).is_in(allowed)).fill_null(False).alias(_flag("unknown value", c))
        for c, allowed in rules.choices
    ]
    flags += [
        (pl.col(later) < pl.col(earlier))
        .fill_null(False)
        .alias(_flag("end before start", later, earlier))
        for earlier, later in rules.ordered
    ]
    return flags


def _flag(reason: str, column: str, other: str = "") -> str:
    return f"{_FLAG}|{reason}|{column}|{other}"


def _schema_columns(frame: pl.LazyFrame, table: str) -> list[str]:
    names = frame.collect_schema().names()
    return [
        *TELEMETRY_TABLES[table],
        *(n for n in names if n not in TELEMETRY_TABLES[table] and not n.startswith("__")),
    ]


def _dropped(frame: pl.LazyFrame, flags: list[str]) -> dict[str, int]:
    """Rows with problems per reason (a row counts once per reason)."""
    by_reason: dict[str, list[str]] = {}
    for f in flags:
        by_reason.setdefault(f.split("|")[1], []).append(f)
    counts = frame.select(
        pl.any_horizontal(fs).sum().alias(reason) for reason, fs in by_reason.items()
    ).collect(engine="streaming")
    return {reason: int(counts[0, reason]) for reason in by_reason if counts[0, reason]}


# --------------------------------------------------------------------------- wording


def _row_problems(
    frame: pl.LazyFrame, table: str, paths: list[Path], bad: dict[str, int]
) -> tuple[list[str], int]:
    """The first :data:`MAX_LISTED` row problems of a table in words (then a line counting
    the rest, if any), and how many problems that line stands for beyond itself."""
    flags = list(bad)
    rows = frame.filter(pl.any_horizontal(flags)).head(MAX_LISTED).collect(engine="streaming")
    lines: list[str] = []
    for row in rows.iter_rows(named=True):
        for flag in flags:
            if row[flag] and len(lines) < MAX_LISTED:
                lines.append(_problem(row, flag, table, paths))
    rest = sum(bad.values()) - len(lines)
    if rest > 0:  # one more line, counting the rest
        reasons = {}
        for flag, n in bad.items():
            reasons[flag.split("|")[1]] = reasons.get(flag.split("|")[1], 0) + n
        counted = ", ".join(f"{reason} {n:,}" for reason, n in reasons.items())
        lines.append(f"{table}: … and {rest:,} more problems (in all: {counted})")
    return lines, max(rest - 1, 0)


def _problem(row: dict, flag: str, table: str, paths: list[Path]) -> str:
    _, reason, column, other = flag.split("|")
    where = f"{paths[row[_FILE]]}: {table}.{column} row {row[_ROW]}"
    got = row.get(f"{_RAW}{column}")
    if reason == "null key":
        return f"{where} must not be null (a key of {table})"
    if reason == "wrong type":
        return f"{where} must be {_noun(TELEMETRY_TABLES[table][column])}, got {show(got)}"
    if reason == "unparseable time" and TELEMETRY_TABLES[table][column] == pl.Date:
        return f"{where} must be a date (ISO 8601, or as the mapping says), got {show(got)}"
    if reason == "unparseable time":
        return f"{where} must be a date-time (ISO 8601, or as the mapping says), got {show(got)}"
    if reason == "mixed time zones":
        return f"{where} has no UTC offset while other rows of the file carry one, got {show(got)}"
    if reason == "unknown value":
        allowed = dict(TABLE_RULES[table].choices)[column]
        return f"{where} must be one of {', '.join(map(repr, allowed))}, got {show(got)}"
    if reason == "negative":
        return f"{where} must be >= 0, got {show(row[column])}"
    if reason == "end before start":
        return f"{where} must not be before {other} ({row[column]} < {row[other]})"
    return f"{where} duplicates the id {show(row[column])} of an earlier row"


def _noun(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "true or false"
    if dtype == pl.Int64:
        return "an integer"
    return "a number" if dtype == pl.Float64 else f"a {dtype}"
