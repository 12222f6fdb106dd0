"""A sweep's results folder: manifest, design and Parquet shards, locked, checked, atomic.

Layout of a folder::

    manifest.json                 what the sweep is (scenario hash, levers, design, seeds…)
    design.parquet                one row per point: ``point`` and one column per lever
    runs/part-<point>-<replicate>.parquet     one row per run of a chunk
    series/part-<point>-<replicate>.parquet   the chunk's series (unless series is "none")
    sweep.lock                    while a sweep writes to the folder: its pid and host
    quarantine/                   bad files moved aside by a repair (same relative paths)

A shard is named by the first unit of its chunk. Every file is written under a temporary
name in its own folder and renamed into place (``os.replace``), so a file is either
complete or absent. A chunk's series shard is written before its runs shard: the runs
shards alone say which runs are done, and a series shard without its runs shard (the
driver died between the two) is removed when the folder is opened again.

**One writer.** A sweep holds :class:`FolderLock` (an exclusive ``flock`` on
``sweep.lock``, which records its pid) while it writes; another sweep into the folder is
refused, naming that pid. The kernel drops the lock when its process dies, so the lock
file of a dead sweep is taken over.

**Fingerprints.** Every Parquet file carries the *fingerprint* of its sweep (a hash of
the manifest fields in :data:`COMPARED`) in its key-value metadata. A file of another
sweep is never counted: with the manifest present it is a bad file; with the manifest
missing, a folder holding such files is refused.

**Checks.** On resume and on load every shard is checked: readable Parquet, the expected
columns and types, the fingerprint, and the rows it should hold (its name is its first
run, runs in range and in order, each run in one shard only, a series shard holding the
series of exactly its runs shard's successful runs). A bad file is named in a
:class:`~orgtwin.errors.SweepError`; a sweep with ``repair=True`` moves it (with its twin
shard) into ``quarantine/`` and reruns the runs it held.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl

from orgtwin.errors import SweepError
from orgtwin.scenario.levers import parse_levers
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.executors import RUN_SCHEMA, series_schema
from orgtwin.world.kpis import KPIS

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock falls back to the pid alone
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 2
"""Version of the folder's layout (2: shards carry their sweep's fingerprint)."""
MANIFEST = "manifest.json"
DESIGN = "design.parquet"
RUNS = "runs"
SERIES = "series"
LOCK = "sweep.lock"
QUARANTINE = "quarantine"
TEMP_MARK = ".tmp-"
FINGERPRINT_KEY = "orgtwin.sweep.fingerprint"
"""Key of the fingerprint in a Parquet file's key-value metadata."""
COMPARED = (
    "format_version",
    "scenario_sha256",
    "levers",
    "design",
    "n",
    "seeds",
    "seed",
    "seed_scheme",
    "days",
    "series",
)
"""Manifest fields that define a sweep: they must agree for a sweep to resume into an
existing folder, and their hash is the fingerprint every shard carries."""
REPAIR_HINT = (
    "rerun the same sweep with --repair (repair=True in Python) to move bad files to "
    "{quarantine}/ and rerun their runs"
)
_SHARD = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_READ_ERRORS = (OSError, pl.exceptions.PolarsError, pl.exceptions.PanicException)


def scenario_sha256(scenario: Scenario) -> str:
    """SHA-256 of the canonical JSON of a scenario (what it simulates, not where it came from)."""
    return _sha256(scenario.model_dump(mode="json"))


def fingerprint(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest fields that define a sweep (:data:`COMPARED`).

    Example:
        >>> fingerprint({"days": 3, "seeds": 2}) == fingerprint({"seeds": 2, "days": 3})
        True
    """
    return _sha256({key: manifest.get(key) for key in COMPARED})


def _sha256(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_atomic(path: Path, write: Any) -> None:
    """Write a file by ``write(temp_path)`` then rename it to ``path`` (same folder)."""
    temp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_parquet_atomic(
    frame: pl.DataFrame, path: Path, metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``frame`` to ``path`` as Parquet (with key-value ``metadata``), atomically."""
    if metadata is None:
        write_atomic(path, frame.write_parquet)
    else:
        write_atomic(path, lambda temp: frame.write_parquet(temp, metadata=dict(metadata)))


# --------------------------------------------------------------------------- the lock


class FolderLock:
    """An exclusive lock on a results folder while a sweep writes to it.

    The lock is an ``flock`` on ``<out>/sweep.lock``, a file that records the holder's
    pid and host. The kernel releases it when the holder's process ends, however it
    ends, so a lock file left by a dead sweep is simply taken over. Where ``flock`` is
    not available, the file's pid is checked instead: a lock of a pid that no longer
    runs on this host is taken over. Releasing removes the file.

    Args:
        out: the results folder (created if missing).
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.release()

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            SweepError: another sweep holds it (its pid is named), or ``out`` is a file.
        """
        if self.out.exists() and not self.out.is_dir():
            raise SweepError(f"{self.out}: out must be a folder, got a file")
        self.out.mkdir(parents=True, exist_ok=True)
        for _ in range(100):  # retried only when the lock file was replaced meanwhile
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = self._lock(fd)
            except BaseException:
                os.close(fd)
                raise
            if locked:
                self._fd = fd
                self._record(fd)
                return
            os.close(fd)
        raise SweepError(f"{self.path}: lock must be free, got it replaced again and again")

    def _lock(self, fd: int) -> bool:
        """Lock ``fd``; False when the file at the path is no longer the one locked."""
        state = _flock(fd)
        if state == "held":
            raise SweepError(self._busy(_read_holder(self.path, wait_s=0.5) or {}))
        if state == "unsupported":  # no flock here: a live pid in the file holds the lock
            holder = _read_holder(self.path, wait_s=0.0)
            if holder is not None and _alive(holder):
                raise SweepError(self._busy(holder))
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _record(self, fd: int) -> None:
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))

    def _busy(self, holder: Mapping[str, Any]) -> str:
        pid, host = holder.get("pid", "unknown"), holder.get("host", "unknown")
        since = f" since {holder['since']}" if holder.get("since") else ""
        note = ""
        if isinstance(pid, int) and host == socket.gethostname() and not _pid_runs(pid):
            note = f"; pid {pid} has exited but a process it started still holds the lock"
        return (
            f"{self.path}: the results folder must be free, got another sweep writing to it "
            f"(pid {pid} on {host}{since}{note}; wait for it to finish, then rerun to "
            "resume, or use another --out)"
        )

    def release(self) -> None:
        """Remove the lock file and drop the lock (nothing happens if it is not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def _flock(fd: int) -> str:
    """Lock ``fd`` without waiting: ``"locked"``, ``"held"`` elsewhere, or ``"unsupported"``."""
    if fcntl is None:
        return "unsupported"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    except OSError:  # a filesystem without flock: the pid in the file decides
        return "unsupported"
    return "locked"


def _read_holder(path: Path, *, wait_s: float) -> dict[str, Any] | None:
    """The holder recorded in a lock file; None when it is empty or unreadable.

    Args:
        path: the lock file.
        wait_s: how long to wait for a record (the holder writes it just after locking).
    """
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.suppress(OSError, json.JSONDecodeError):
            record = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(record, dict):
                return record
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _alive(holder: Mapping[str, Any]) -> bool:
    """Whether a recorded holder may still run: its pid lives here, or it is elsewhere."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return True
    return _pid_runs(pid)


def _pid_runs(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (POSIX; elsewhere assumed running)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class BadFile:
    """A file of the folder that fails its check.

    Attributes:
        path: the file.
        problem: ``"<what> must be <expected>, got <found>"``.
        foreign: the file is readable but carries another sweep's fingerprint (or none).
    """

    path: Path
    problem: str
    foreign: bool = False


class _Bad(Exception):  # noqa: N818 (a check that failed, caught within this module)
    """Raised by a check; carries the :class:`BadFile`."""

    def __init__(self, path: Path, problem: str, *, foreign: bool = False) -> None:
        super().__init__(problem)
        self.bad = BadFile(path, problem, foreign)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreadable(path: Path, exc: BaseException) -> _Bad:
    return _Bad(path, "file must be readable Parquet, got a truncated or corrupt file "
                f"({_first_line(exc)})")  # fmt: skip


def _read(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """Read a Parquet file, or raise :class:`_Bad` naming what is wrong with it."""
    try:
        return pl.read_parquet(path, columns=columns)
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from None


def _read_schema(path: Path) -> pl.Schema:
    try:
        return pl.Schema(pl.read_parquet_schema(path))
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from None


def _check_fingerprint(path: Path, expected: str | None) -> None:
    """The file's fingerprint must be ``expected`` (None: a folder of format 1, unchecked)."""
    if expected is None:
        return
    try:
        found = pl.read_parquet_metadata(path).get(FINGERPRINT_KEY)
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from None
    if found != expected:
        got = f"{found[:12]}…" if found else "none"
        raise _Bad(path, f"fingerprint must be {expected[:12]}… (this sweep's), got {got} "
                   "(a file of another sweep)", foreign=True)  # fmt: skip


def _check_columns(path: Path, found: pl.Schema, expected: Mapping[str, pl.DataType]) -> None:
    for name, dtype in expected.items():
        if name not in found:
            raise _Bad(path, f"columns must include {name!r} ({dtype}), got none")
        if found[name] != dtype:
            raise _Bad(path, f"column {name!r} must be {dtype}, got {found[name]}")
    extra = [name for name in found if name not in expected]
    if extra:
        raise _Bad(path, f"columns must be only the sweep's, got also {extra[0]!r}")
    if list(found) != list(expected):
        raise _Bad(path, f"columns must be in the order {', '.join(expected)}, got "
                   f"{', '.join(found)}")  # fmt: skip


def _check_runs_rows(path: Path, runs: pl.DataFrame, points: int, seeds: int) -> None:
    """A runs shard holds runs in range, in order, each once, the first one its name's."""
    if runs.height == 0:
        raise _Bad(path, "rows must be at least one run, got none")
    point, replicate = runs["point"], runs["replicate"]
    if point.null_count() or replicate.null_count():
        raise _Bad(path, "point and replicate must be set in every row, got nulls")
    if point.min() < 0 or point.max() >= points:  # type: ignore[operator]
        raise _Bad(path, f"point must be in 0..{points - 1}, got {point.min()}..{point.max()}")
    if replicate.min() < 0 or replicate.max() >= seeds:  # type: ignore[operator]
        raise _Bad(path, f"replicate must be in 0..{seeds - 1}, got "
                   f"{replicate.min()}..{replicate.max()}")  # fmt: skip
    if not (point * seeds + replicate).diff().drop_nulls().gt(0).all():
        raise _Bad(path, "runs must be distinct and in (point, replicate) order, got "
                   "a repeated or out-of-order run")  # fmt: skip
    match = _SHARD.match(path.name)
    first = (int(point[0]), int(replicate[0]))
    if match is None or (int(match[1]), int(match[2])) != first:
        raise _Bad(path, f"first run must be the one its name says, got (point {first[0]}, "
                   f"replicate {first[1]})")  # fmt: skip


def _check_design(path: Path, design: pl.DataFrame, lever_paths: list[str], n: int) -> None:
    names = ["point", *lever_paths]
    if design.columns != names:
        raise _Bad(path, f"columns must be {', '.join(names)}, got {', '.join(design.columns)}")
    if design.schema["point"] != pl.Int64 or design["point"].to_list() != list(range(n)):
        raise _Bad(path, f"point must be 0..{n - 1} (Int64), one row each, got another "
                   f"column of {design.height} rows")  # fmt: skip


def _units(runs: pl.DataFrame) -> pl.DataFrame:
    """``point``, ``replicate`` and ``ok`` (the run succeeded) of a runs frame."""
    return runs.select("point", "replicate", ok=pl.col("error").is_null())


def _name(path: Path, out: Path) -> str:
    try:
        return str(path.relative_to(out))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- the store


class SweepStore:
    """The results folder of one sweep.

    Args:
        out: the folder.

    Attributes:
        out: the folder.
        manifest: the manifest read or written (empty until :meth:`open` or :meth:`load`),
            with its ``fingerprint``.
        design: the design (None until :meth:`open` or :meth:`load`).
        quarantined: files a repair moved into ``quarantine/`` (paths inside it).
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.manifest: dict[str, Any] = {}
        self.design: pl.DataFrame | None = None
        self.quarantined: list[Path] = []
        self._done: pl.DataFrame | None = None

    @property
    def runs_dir(self) -> Path:
        """``<out>/runs``."""
        return self.out / RUNS

    @property
    def series_dir(self) -> Path:
        """``<out>/series``."""
        return self.out / SERIES

    @property
    def quarantine_dir(self) -> Path:
        """``<out>/quarantine``."""
        return self.out / QUARANTINE

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint this folder's files must carry (None for a folder of format 1)."""
        if self.manifest.get("format_version", 1) < 2:
            return None
        return fingerprint(self.manifest)

    def lock(self) -> FolderLock:
        """The folder's lock, to hold (``with store.lock():``) while writing to it."""
        return FolderLock(self.out)

    def attach(self, manifest: Mapping[str, Any], design: pl.DataFrame) -> SweepStore:
        """Use an already loaded manifest and design (nothing is read)."""
        self.manifest, self.design = dict(manifest), design
        return self

    # ----------------------------------------------------------------- open / create

    def open(self, manifest: Mapping[str, Any], design: pl.DataFrame, *,
             repair: bool = False) -> SweepStore:  # fmt: skip
        """Start a new sweep in the folder, or check that it holds this very sweep.

        Hold :meth:`lock` around this and every write. Every file already there is
        checked (see the module's docstring).

        Args:
            manifest: what the sweep is (its fingerprint is added).
            design: its design.
            repair: move bad files into ``quarantine/`` (their runs are then missing, so
                the sweep reruns them) instead of refusing them.

        Raises:
            SweepError: the folder holds another sweep (the first differing manifest
                field is named), files of another sweep without a manifest, files that
                are not a sweep's, or (without ``repair``) a bad file, named.
        """
        self.manifest = {**manifest, "fingerprint": fingerprint(manifest)}
        self.design, self.quarantined = design, []
        old = self._old_manifest(repair=repair)
        if old is None:
            self._check_empty()
        else:
            self._check_same(old, manifest)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        if manifest["series"] != "none":
            self.series_dir.mkdir(exist_ok=True)
        self._tidy()
        self._settle(self._check_all(design), manifest_missing=old is None, repair=repair)
        if not (self.out / DESIGN).is_file():
            write_parquet_atomic(design, self.out / DESIGN, self._metadata())
        if old is None:
            text = json.dumps(self.manifest, indent=2) + "\n"
            write_atomic(self.out / MANIFEST, lambda temp: temp.write_text(text, "utf-8"))
        return self

    def load(self) -> tuple[dict[str, Any], pl.DataFrame]:
        """Read an existing folder's manifest and design (checked).

        Raises:
            SweepError: the folder is not a sweep's results folder, or its design is bad.
        """
        self.manifest = self._read_manifest()
        path = self.out / DESIGN
        if not path.is_file():
            raise SweepError(f"{self.out}: must be a sweep's folder with {MANIFEST} and "
                             f"{DESIGN}, got an incomplete folder")  # fmt: skip
        try:
            self.design = self._checked_design(path)
        except _Bad as bad:
            raise self._error([bad.bad]) from None
        return self.manifest, self.design

    def _old_manifest(self, *, repair: bool) -> dict[str, Any] | None:
        """The manifest in the folder; None when there is none (or a repair moved it)."""
        if not (self.out / MANIFEST).is_file():
            return None
        try:
            return self._read_manifest()
        except SweepError:
            if not repair:
                raise
        self._quarantine([self.out / MANIFEST])
        return None

    def _read_manifest(self) -> dict[str, Any]:
        path = self.out / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SweepError(
                f"{path}: must be the manifest of a sweep, got an unreadable file "
                f"({_first_line(exc)}; {self._hint()})"
            ) from None
        if not isinstance(manifest, dict) or not all(key in manifest for key in COMPARED):
            raise SweepError(
                f"{path}: must be the manifest of a sweep, with {', '.join(COMPARED)}, got "
                f"another JSON file ({self._hint()})"
            )
        return manifest

    def _check_same(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        for key in COMPARED:
            if old.get(key) != new.get(key):
                raise SweepError(
                    f"{self.out}: holds another sweep: its {key} must be {new.get(key)!r} "
                    f"to resume this one, got {old.get(key)!r} (use another --out, or delete "
                    "the folder to start over)"
                )

    def _check_empty(self) -> None:
        """Without a manifest, the folder may hold only a sweep's files (checked later)."""
        if not self.out.exists():
            self.out.mkdir(parents=True)
            return
        if not self.out.is_dir():
            raise SweepError(f"{self.out}: out must be a folder, got a file")
        allowed = (DESIGN, RUNS, SERIES, LOCK, QUARANTINE)
        strays = [p.name for p in self.out.iterdir()
                  if p.name not in allowed and TEMP_MARK not in p.name]  # fmt: skip
        if strays:
            raise SweepError(
                f"{self.out}: out must be an empty folder or a sweep's results folder, got "
                f"a folder with {', '.join(sorted(strays)[:3])} (use another --out)"
            )

    def _tidy(self) -> None:
        """Remove temporary files of an interrupted write and orphan series shards."""
        for folder in (self.out, self.runs_dir, self.series_dir):
            if folder.is_dir():
                for path in folder.glob(f".*{TEMP_MARK}*"):
                    path.unlink(missing_ok=True)
        if self.series_dir.is_dir():
            done = {p.name for p in self.runs_dir.glob("part-*.parquet")}
            for path in self.series_dir.glob("part-*.parquet"):
                if path.name not in done:
                    path.unlink()

    # ----------------------------------------------------------------- checking

    def _check_all(self, design: pl.DataFrame) -> list[BadFile]:
        """Check the design and every shard; keep the units of the good runs shards."""
        bad = []
        path = self.out / DESIGN
        if path.is_file():
            try:
                if not self._checked_design(path).equals(design):
                    raise _Bad(path, "values must be this sweep's design, got other values")
            except _Bad as exc:
                bad.append(exc.bad)
        runs, bad_runs = self._check_runs()
        bad += bad_runs
        if self.manifest["series"] != "none":
            bad += self._check_series(runs)
        bad_names = {b.path.name for b in bad if b.path.parent in (self.runs_dir, self.series_dir)}
        good = [units for path, units in runs.items() if path.name not in bad_names]
        self._done = pl.concat(good) if good else _units(pl.DataFrame(schema=RUN_SCHEMA))
        return bad

    def _checked_design(self, path: Path) -> pl.DataFrame:
        design = _read(path)
        _check_fingerprint(path, self.fingerprint)
        lever_paths = [lever.path for lever in parse_levers(self.manifest["levers"])]
        _check_design(path, design, lever_paths, int(self.manifest["n"]))
        return design

    def _runs_schema(self) -> dict[str, pl.DataType]:
        assert self.design is not None
        levers = {name: dtype for name, dtype in self.design.schema.items() if name != "point"}
        head = {name: RUN_SCHEMA[name] for name in ("point", "replicate", "seed")}
        tail = {name: RUN_SCHEMA[name] for name in (*KPIS, "wall_s", "error")}
        return head | levers | tail

    def _read_runs_shard(self, path: Path) -> pl.DataFrame:
        runs = _read(path)
        _check_fingerprint(path, self.fingerprint)
        _check_columns(path, runs.schema, self._runs_schema())
        _check_runs_rows(path, runs, int(self.manifest["n"]), int(self.manifest["seeds"]))
        return runs

    def _check_runs(self, keep: bool = False) -> tuple[dict[Path, pl.DataFrame], list[BadFile]]:
        """Check every runs shard: path -> its units (whole runs with ``keep``), bad files."""
        frames: dict[Path, pl.DataFrame] = {}
        bad: list[BadFile] = []
        for path in self.shards(RUNS):
            try:
                runs = self._read_runs_shard(path)
            except _Bad as exc:
                bad.append(exc.bad)
                continue
            frames[path] = runs if keep else _units(runs)
        bad += self._duplicates(frames)
        return frames, bad

    def _duplicates(self, frames: Mapping[Path, pl.DataFrame]) -> list[BadFile]:
        """Every shard holding a run that another shard holds too."""
        if not frames:
            return []
        paths = list(frames)
        keyed = pl.concat([frames[p].select("point", "replicate").with_columns(
            shard=pl.lit(i, pl.Int64)) for i, p in enumerate(paths)])  # fmt: skip
        twice = keyed.filter(pl.struct("point", "replicate").is_duplicated())
        bad = []
        for (index,), rows in twice.group_by("shard", maintain_order=True):
            point, replicate = rows.row(0)[:2]
            others = twice.filter(point=point, replicate=replicate)["shard"]
            other = paths[next(i for i in others if i != index)]
            problem = (f"run (point {point}, replicate {replicate}) must be in one shard only, "
                       f"got it in {_name(other, self.out)} too")  # fmt: skip
            bad.append(BadFile(paths[index], problem))
        return bad

    def _check_series(self, runs: Mapping[Path, pl.DataFrame]) -> list[BadFile]:
        """Check the series shard of every good runs shard."""
        bad = []
        for path, units in runs.items():
            try:
                self._check_series_shard(self.series_dir / path.name, path, units)
            except _Bad as exc:
                bad.append(exc.bad)
        return bad

    def _check_series_shard(self, path: Path, runs_path: Path, units: pl.DataFrame) -> None:
        if not path.is_file():
            mode = self.manifest["series"]
            raise _Bad(runs_path, f"its series shard must exist (series={mode!r}), got "
                                f"none at {_name(path, self.out)}")  # fmt: skip
        schema = _read_schema(path)
        _check_fingerprint(path, self.fingerprint)
        _check_columns(path, schema, series_schema(self.manifest["series"]))
        held = _read(path, ["point", "replicate"]).unique()
        ok = units.filter("ok").select("point", "replicate")
        missing = ok.join(held, on=["point", "replicate"], how="anti").sort("point", "replicate")
        extra = held.join(ok, on=["point", "replicate"], how="anti").sort("point", "replicate")
        if missing.height or extra.height:
            (point, replicate), how = (missing.row(0), "without") if missing.height else (
                extra.row(0), "with")  # fmt: skip
            raise _Bad(path, f"runs must be the {ok.height} successful runs of "
                       f"{_name(runs_path, self.out)}, got {held.height}, {how} (point {point}, "
                       f"replicate {replicate})")  # fmt: skip

    # ----------------------------------------------------------------- bad files

    def _settle(self, bad: list[BadFile], *, manifest_missing: bool, repair: bool) -> None:
        """Refuse another sweep's files, and bad files unless repairing (then move them)."""
        if not bad:
            return
        foreign = [b for b in bad if b.foreign]
        if manifest_missing and foreign:
            first = foreign[0]
            raise SweepError(
                f"{self.out}: out must be an empty folder or this sweep's results folder, got "
                f"a folder without {MANIFEST} holding another sweep's files "
                f"({_name(first.path, self.out)}: {first.problem}; use another --out, or "
                "delete the folder to start over)"
            )
        if not repair:
            raise self._error(bad)
        moved = {b.path for b in bad}
        twins = {self._twin(p) for p in moved if p.parent in (self.runs_dir, self.series_dir)}
        self._quarantine(sorted(moved | {t for t in twins if t.is_file()}))

    def _twin(self, path: Path) -> Path:
        """A runs shard's series shard, and the other way round."""
        other = self.series_dir if path.parent == self.runs_dir else self.runs_dir
        return other / path.name

    def _quarantine(self, paths: list[Path]) -> None:
        """Move files into ``quarantine/`` under their relative paths (never overwriting)."""
        for path in paths:
            target = self.quarantine_dir / path.relative_to(self.out)
            target.parent.mkdir(parents=True, exist_ok=True)
            stem, n = target.name, 1
            while target.exists():
                target = target.with_name(f"{stem}.{n}")
                n += 1
            os.replace(path, target)
            self.quarantined.append(target)

    def _hint(self) -> str:
        return REPAIR_HINT.format(quarantine=self.quarantine_dir)

    def _error(self, bad: list[BadFile]) -> SweepError:
        first = bad[0]
        more = f"{len(bad) - 1} more bad file{'s' * (len(bad) > 2)}; " if len(bad) > 1 else ""
        return SweepError(f"{first.path}: {first.problem} ({more}{self._hint()})")

    # ----------------------------------------------------------------- shards

    def shards(self, kind: str = RUNS) -> list[Path]:
        """The finished shards of ``kind`` (``"runs"`` or ``"series"``), by first unit."""
        folder = self.out / kind
        keyed = []
        for path in folder.glob("part-*.parquet"):
            match = _SHARD.match(path.name)
            if match:
                keyed.append(((int(match[1]), int(match[2])), path))
        return [path for _, path in sorted(keyed)]

    def done(self) -> pl.DataFrame:
        """``point``, ``replicate`` and ``ok`` of every run in a good shard (after :meth:`open`)."""
        if self._done is None:
            raise SweepError(f"{self.out}: must be opened before its runs are counted")
        return self._done

    def write_chunk(self, runs: pl.DataFrame, series: pl.DataFrame | None) -> None:
        """Save one finished chunk: its series shard first, then its runs shard."""
        point, replicate = runs["point"][0], runs["replicate"][0]
        name = f"part-{point}-{replicate}.parquet"
        if series is not None:
            write_parquet_atomic(series, self.series_dir / name, self._metadata())
        write_parquet_atomic(runs, self.runs_dir / name, self._metadata())

    def _metadata(self) -> dict[str, str]:
        return {FINGERPRINT_KEY: fingerprint(self.manifest)}

    def read_runs(self) -> pl.DataFrame:
        """Every saved run, sorted by point and replicate (every shard checked).

        Raises:
            SweepError: no run is saved yet, or a runs shard is bad (named).
        """
        frames, bad = self._check_runs(keep=True)
        if bad:
            raise self._error(bad)
        if not frames:
            raise SweepError(f"{self.out}: has no finished runs yet")
        return pl.concat(list(frames.values())).sort("point", "replicate")

    def scan_series(self) -> pl.LazyFrame:
        """A lazy scan of the series of every saved run (every shard checked).

        Raises:
            SweepError: the sweep kept no series, none is saved yet, or a shard is bad.
        """
        if self.manifest.get("series") == "none":
            raise SweepError(
                f"{self.out}: series must be kept to scan them, got a sweep run with "
                "series='none' (rerun into another folder with series='daily' or 'hourly')"
            )
        runs, bad = self._check_runs()
        bad += self._check_series(runs)
        if bad:
            raise self._error(bad)
        if not runs:
            raise SweepError(f"{self.out}: has no finished series yet")
        return pl.scan_parquet([self.series_dir / path.name for path in runs])
